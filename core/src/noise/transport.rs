//! The two transport ciphers after the handshake (transport.md §2.5): AES-256-GCM with an empty
//! AAD and a per-direction u32 counter as nonce. Each frame payload is one ciphertext.
//!
//! Frames are strictly ordered and counters never resynchronise, so the first frame that fails
//! to decrypt poisons the receiving side: every later frame is refused too, and the connection
//! must be closed. A replayed, reordered, dropped or tampered frame therefore always ends in
//! [`TransportError::Decrypt`] or [`TransportError::Poisoned`], and nothing unauthenticated is
//! ever returned.

use core::fmt;

use walink_crypto::Aes256GcmKey;

use crate::binary::{self, DecodeError, Node};
use crate::frame;
use crate::limits::MAX_FRAME_PAYLOAD;

use super::symmetric::{TAG_LEN, nonce};

/// Why a transport frame could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The frame did not authenticate: tampered, replayed, reordered or from another session.
    #[error("transport frame failed to decrypt")]
    Decrypt,
    /// An earlier frame failed to decrypt; the connection must be closed.
    #[error("an earlier transport frame failed; the connection is unusable")]
    Poisoned,
    /// The frame is shorter than an AES-GCM tag.
    #[error("transport frame is too short")]
    TooShort,
    /// The plaintext or ciphertext does not fit in one frame.
    #[error("transport frame exceeds the maximum frame size")]
    TooLarge,
    /// 2^32 frames were sent or received in one direction; the connection must be renewed.
    #[error("transport counter exhausted")]
    CounterExhausted,
    /// The frame authenticated but its plaintext is not a valid binary node.
    #[error("transport frame is not a valid node: {0}")]
    Node(#[from] DecodeError),
}

/// One direction: a key schedule and the number of the next frame. The AES-GCM code is
/// walink-crypto's, built at opt-level 3 while this crate is at "z" (docs/decisions.md).
struct Direction {
    cipher: Aes256GcmKey,
    counter: u32,
    exhausted: bool,
}

impl Direction {
    fn new(key: &[u8; 32]) -> Self {
        Direction {
            cipher: Aes256GcmKey::new(key),
            counter: 0,
            exhausted: false,
        }
    }

    fn next_nonce(&mut self) -> Result<[u8; 12], TransportError> {
        if self.exhausted {
            return Err(TransportError::CounterExhausted);
        }
        let current = self.counter;
        match current.checked_add(1) {
            Some(next) => self.counter = next,
            None => self.exhausted = true,
        }
        Ok(nonce(current).into())
    }
}

/// The client's transport state: one cipher per direction with its counter.
pub struct TransportCipher {
    send: Direction,
    receive: Direction,
    poisoned: bool,
}

impl fmt::Debug for TransportCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportCipher")
            .field("send_counter", &self.send.counter)
            .field("receive_counter", &self.receive.counter)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl TransportCipher {
    /// A transport that encrypts with `send_key` and decrypts with `receive_key`, both counters
    /// at zero. The handshake builds it; a server-side peer passes the keys the other way round.
    pub fn new(send_key: &[u8; 32], receive_key: &[u8; 32]) -> Self {
        TransportCipher {
            send: Direction::new(send_key),
            receive: Direction::new(receive_key),
            poisoned: false,
        }
    }

    /// Encrypts one frame payload (flags byte and encoded node) into the next ciphertext.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, TransportError> {
        if plaintext.len() > MAX_FRAME_PAYLOAD.saturating_sub(TAG_LEN) {
            return Err(TransportError::TooLarge);
        }
        let nonce = self.send.next_nonce()?;
        // AES-GCM sealing only fails beyond 64 GiB, far above the frame bound checked above.
        self.send
            .cipher
            .seal(&nonce, &[], plaintext)
            .ok_or(TransportError::TooLarge)
    }

    /// Decrypts the next received frame payload. Any failure poisons the receiving side.
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.poisoned {
            return Err(TransportError::Poisoned);
        }
        let result = self.decrypt_unpoisoned(ciphertext);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn decrypt_unpoisoned(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, TransportError> {
        if ciphertext.len() < TAG_LEN {
            return Err(TransportError::TooShort);
        }
        if ciphertext.len() > MAX_FRAME_PAYLOAD {
            return Err(TransportError::TooLarge);
        }
        let nonce = self.receive.next_nonce()?;
        self.receive
            .cipher
            .open(&nonce, &[], ciphertext)
            .ok_or(TransportError::Decrypt)
    }

    /// Encodes `node` (flags byte and node) and encrypts it into one framed message, ready to
    /// write to the socket: the 3-byte length, then the ciphertext.
    pub fn encrypt_node(&mut self, node: &Node) -> Result<Vec<u8>, TransportError> {
        let ciphertext = self.encrypt(&binary::encode(node))?;
        frame::encode_frame(&ciphertext).map_err(|_| TransportError::TooLarge)
    }

    /// Decrypts one received frame payload (as cut by `frame::FrameDecoder`) and decodes the
    /// node it carries. A frame that authenticates but does not decode is still an error: the
    /// connection must be closed.
    pub fn decrypt_node(&mut self, payload: &[u8]) -> Result<Node, TransportError> {
        let plaintext = self.decrypt(payload)?;
        Ok(binary::decode(&plaintext)?)
    }

    /// Number of frames encrypted so far.
    pub fn sent(&self) -> u32 {
        self.send.counter
    }

    /// Number of frames decrypted (or refused) so far.
    pub fn received(&self) -> u32 {
        self.receive.counter
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pair() -> (TransportCipher, TransportCipher) {
        (
            TransportCipher::new(&[1; 32], &[2; 32]),
            TransportCipher::new(&[2; 32], &[1; 32]),
        )
    }

    #[test]
    fn round_trips_in_both_directions_with_counters() {
        let (mut client, mut server) = pair();
        for i in 0..5u8 {
            let frame = client.encrypt(&[0, i]).unwrap();
            assert_eq!(server.decrypt(&frame).unwrap(), [0, i]);
            let frame = server.encrypt(&[1, i]).unwrap();
            assert_eq!(client.decrypt(&frame).unwrap(), [1, i]);
        }
        assert_eq!((client.sent(), client.received()), (5, 5));
    }

    #[test]
    fn replay_reorder_and_tamper_poison_the_receiver() {
        let (mut client, mut server) = pair();
        let first = client.encrypt(b"a").unwrap();
        let second = client.encrypt(b"b").unwrap();
        assert_eq!(server.decrypt(&second), Err(TransportError::Decrypt));
        assert_eq!(server.decrypt(&first), Err(TransportError::Poisoned));

        let (mut client, mut server) = pair();
        let first = client.encrypt(b"a").unwrap();
        server.decrypt(&first).unwrap();
        assert_eq!(server.decrypt(&first), Err(TransportError::Decrypt));

        let (mut client, mut server) = pair();
        let mut first = client.encrypt(b"a").unwrap();
        first[0] ^= 1;
        assert_eq!(server.decrypt(&first), Err(TransportError::Decrypt));
        assert_eq!(server.decrypt(&[0; 3]), Err(TransportError::Poisoned));

        let (_, mut server) = pair();
        assert_eq!(server.decrypt(&[0; 3]), Err(TransportError::TooShort));
    }

    #[test]
    fn refuses_oversized_frames() {
        let (mut client, mut server) = pair();
        let big = vec![0; MAX_FRAME_PAYLOAD];
        assert_eq!(client.encrypt(&big), Err(TransportError::TooLarge));
        assert_eq!(
            server.decrypt(&vec![0; MAX_FRAME_PAYLOAD + 1]),
            Err(TransportError::TooLarge)
        );
    }

    #[test]
    fn nodes_travel_as_one_frame_each() {
        let (mut client, mut server) = pair();
        let node = Node::new("iq").attr("id", "1.2-3").attr("type", "get");
        let framed = client.encrypt_node(&node).unwrap();
        let mut decoder = frame::FrameDecoder::new();
        decoder.push(&framed);
        let payload = decoder.next_frame().unwrap().unwrap();
        assert_eq!(decoder.next_frame().unwrap(), None);
        assert_eq!(server.decrypt_node(&payload).unwrap(), node);

        let garbage = server.encrypt(&[0, 0xff, 0xff]).unwrap();
        assert!(matches!(
            client.decrypt_node(&garbage),
            Err(TransportError::Node(_))
        ));
    }

    #[test]
    fn counter_exhaustion_is_an_error() {
        let (mut client, _) = pair();
        client.send.counter = u32::MAX;
        assert!(client.encrypt(b"last").is_ok());
        assert_eq!(
            client.encrypt(b"more"),
            Err(TransportError::CounterExhausted)
        );
    }
}
