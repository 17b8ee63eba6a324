//! The client (initiator) side of WhatsApp's Noise XX handshake (transport.md §2.3) as a pure
//! state machine: [`ClientHandshake::start`] gives the ClientHello, [`ClientHandshake::finish`]
//! takes the ServerHello and gives the ClientFinish and the transport ciphers. Both work on frame
//! payloads (serialized `HandshakeMessage`s); the connection header and the 3-byte length prefix
//! belong to the frame layer.
//!
//! WhatsApp deviates from textbook Noise: the empty payload of the first message is never mixed
//! into the handshake hash (transport.md §2.2, appendix A.2), so stock Noise libraries do not
//! interoperate and the steps are written out here.

use core::fmt;

use prost::Message;

use crate::limits::{MAX_FRAME_PAYLOAD, NOISE_MAX_HANDSHAKE_MESSAGE};
use crate::proto::wa::HandshakeMessage;
use crate::proto::wa::handshake_message::{ClientFinish, ClientHello};

use super::cert::{CertError, TrustRoot, VerifiedChain, verify_chain};
use super::keys::{EphemeralKey, NoiseKeyPair, PublicKeyBytes, diffie_hellman};
use super::symmetric::{SymmetricError, SymmetricState};
use super::transport::TransportCipher;

/// The Noise protocol name, padded with four zero bytes to exactly 32 bytes so that it is used as
/// the initial hash as is (whatsmeow `NoiseStartPattern`, Baileys `NOISE_MODE`).
pub const PROTOCOL_NAME: &[u8; 32] = b"Noise_XX_25519_AESGCM_SHA256\0\0\0\0";

/// The Noise prologue: the 4-byte connection header `"WA" 0x06 0x03` (socket version 6,
/// token dictionary 3). An edge-routing pre-intro in front of it is never part of the prologue
/// (transport.md §1.3).
pub const PROLOGUE: [u8; 4] = [0x57, 0x41, 0x06, 0x03];

/// Why the handshake failed. Every variant ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The server's message is larger than [`NOISE_MAX_HANDSHAKE_MESSAGE`].
    #[error("handshake message too large")]
    TooLarge,
    /// The server's message is not a valid `HandshakeMessage` protobuf.
    #[error("handshake message is not a valid protobuf")]
    Malformed,
    /// The message has no ServerHello, or the ServerHello lacks its ephemeral, static or payload.
    #[error("server hello is missing a part")]
    MissingPart,
    /// The server ephemeral key or the decrypted static key is not 32 bytes.
    #[error("server key has the wrong length")]
    BadKeyLength,
    /// A server key is a low-order point: the shared secret would be all zeros.
    #[error("server key is a low-order point")]
    WeakKey,
    /// The encrypted static key or certificate did not authenticate.
    #[error("handshake ciphertext failed to decrypt")]
    Decrypt,
    /// The server's certificate chain was refused.
    #[error("server certificate: {0}")]
    Certificate(#[from] CertError),
    /// The ClientPayload given by the caller does not fit in one frame.
    #[error("client payload too large")]
    PayloadTooLarge,
}

impl From<SymmetricError> for HandshakeError {
    fn from(_: SymmetricError) -> Self {
        // Counters cannot run out within three handshake messages, and every key is mixed in
        // before use, so the only reachable failure is an unauthenticated ciphertext.
        HandshakeError::Decrypt
    }
}

/// The client after sending ClientHello, waiting for the ServerHello.
pub struct ClientHandshake {
    state: SymmetricState,
    ephemeral: EphemeralKey,
    root: TrustRoot,
}

impl fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("ephemeral", &self.ephemeral)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// The outcome of a completed handshake.
pub struct Completed {
    /// The ClientFinish frame payload to send (a serialized `HandshakeMessage`).
    pub client_finish: Vec<u8>,
    /// The transport ciphers, ready before the ClientFinish leaves, so that the server's first
    /// encrypted frame can never arrive before them.
    pub transport: TransportCipher,
    /// The server's Noise static key, as certified by the chain.
    pub server_static: PublicKeyBytes,
    /// What the verified certificate chain said.
    pub chain: VerifiedChain,
}

impl fmt::Debug for Completed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completed")
            .field("client_finish_len", &self.client_finish.len())
            .field("transport", &self.transport)
            .field("server_static", &self.server_static)
            .field("chain", &self.chain)
            .finish()
    }
}

impl ClientHandshake {
    /// Starts a handshake with the connection's ephemeral key, trusting `root` for the server's
    /// certificate chain. Returns the state and the ClientHello frame payload (36 bytes), which
    /// the frame layer sends behind the connection header.
    pub fn start(ephemeral: EphemeralKey, root: TrustRoot) -> (ClientHandshake, Vec<u8>) {
        let mut state = SymmetricState::new(PROTOCOL_NAME);
        state.mix_hash(&PROLOGUE);
        let ephemeral_public = ephemeral.public_key();
        state.mix_hash(&ephemeral_public);
        // WhatsApp sends no payload in message 1 and, unlike textbook Noise, does not mix the
        // empty payload into the hash.
        let hello = HandshakeMessage {
            client_hello: Some(ClientHello {
                ephemeral: Some(ephemeral_public.to_vec()),
                ..ClientHello::default()
            }),
            ..HandshakeMessage::default()
        }
        .encode_to_vec();
        (
            ClientHandshake {
                state,
                ephemeral,
                root,
            },
            hello,
        )
    }

    /// Processes the ServerHello frame payload at `now_ms` (unix milliseconds, for the
    /// certificates' validity), authenticates the device with `noise_key` and sends the
    /// serialized `ClientPayload` `client_payload` (see [`super::payload`]).
    pub fn finish(
        self,
        server_hello: &[u8],
        noise_key: &NoiseKeyPair,
        client_payload: &[u8],
        now_ms: u64,
    ) -> Result<Completed, HandshakeError> {
        let root = self.root;
        self.finish_with(
            server_hello,
            noise_key,
            client_payload,
            |chain, server_static| verify_chain(chain, &root, server_static, now_ms),
        )
    }

    /// The handshake with the certificate check as a parameter, so that unit tests can replay
    /// vectors whose certificate is a placeholder. Not public: the only public path verifies.
    fn finish_with(
        mut self,
        server_hello: &[u8],
        noise_key: &NoiseKeyPair,
        client_payload: &[u8],
        verify: impl FnOnce(&[u8], &PublicKeyBytes) -> Result<VerifiedChain, CertError>,
    ) -> Result<Completed, HandshakeError> {
        if server_hello.len() > NOISE_MAX_HANDSHAKE_MESSAGE {
            return Err(HandshakeError::TooLarge);
        }
        // Static (32 + 16) and payload (+16) ciphertexts ride in one frame with the payload.
        if client_payload.len() > MAX_FRAME_PAYLOAD.saturating_sub(128) {
            return Err(HandshakeError::PayloadTooLarge);
        }
        let message =
            HandshakeMessage::decode(server_hello).map_err(|_| HandshakeError::Malformed)?;
        let hello = message.server_hello.ok_or(HandshakeError::MissingPart)?;
        let (Some(ephemeral), Some(static_ct), Some(cert_ct)) =
            (hello.ephemeral, hello.r#static, hello.payload)
        else {
            return Err(HandshakeError::MissingPart);
        };
        let server_ephemeral = PublicKeyBytes::try_from(ephemeral.as_slice())
            .map_err(|_| HandshakeError::BadKeyLength)?;

        let state = &mut self.state;
        state.mix_hash(&server_ephemeral);
        let ee = diffie_hellman(self.ephemeral.secret(), &server_ephemeral)
            .ok_or(HandshakeError::WeakKey)?;
        state.mix_key(ee.as_slice());

        let static_pt = state.decrypt_and_hash(&static_ct)?;
        let server_static = PublicKeyBytes::try_from(static_pt.as_slice())
            .map_err(|_| HandshakeError::BadKeyLength)?;
        let es = diffie_hellman(self.ephemeral.secret(), &server_static)
            .ok_or(HandshakeError::WeakKey)?;
        state.mix_key(es.as_slice());

        let chain_pt = state.decrypt_and_hash(&cert_ct)?;
        let chain = verify(&chain_pt, &server_static)?;

        let encrypted_static = state.encrypt_and_hash(&noise_key.public_key())?;
        let se =
            diffie_hellman(noise_key.secret(), &server_ephemeral).ok_or(HandshakeError::WeakKey)?;
        state.mix_key(se.as_slice());
        let encrypted_payload = state.encrypt_and_hash(client_payload)?;

        let client_finish = HandshakeMessage {
            client_finish: Some(ClientFinish {
                r#static: Some(encrypted_static),
                payload: Some(encrypted_payload),
            }),
            ..HandshakeMessage::default()
        }
        .encode_to_vec();
        let (send_key, receive_key) = state.split();
        Ok(Completed {
            client_finish,
            transport: TransportCipher::new(&send_key, &receive_key),
            server_static,
            chain,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn h32(text: &str) -> [u8; 32] {
        let bytes = hex::decode(text).unwrap();
        bytes.try_into().unwrap()
    }

    /// transport.md A.1: frame 1 body and the hash after the prologue.
    #[test]
    fn a1_hello_and_prologue_hash() {
        let mut state = SymmetricState::new(PROTOCOL_NAME);
        state.mix_hash(&PROLOGUE);
        assert_eq!(
            hex::encode(state.hash()),
            "ffff0c9267310966f1311170c04b38c79504285bf5edf763e5c946492a50a755"
        );
        let ephemeral = EphemeralKey::from_private([7; 32]);
        let public = ephemeral.public_key();
        let (_, hello) = ClientHandshake::start(ephemeral, TrustRoot::WHATSAPP);
        let mut expected = hex::decode("12220a20").unwrap();
        expected.extend_from_slice(&public);
        assert_eq!(hello, expected);
    }

    /// transport.md A.2: the values captured from whatsmeow (via whatsapp-rust's test). They only
    /// verify if the empty payload of message 1 is NOT mixed into the hash.
    #[test]
    fn a2_captured_whatsmeow_values() {
        let ephemeral = EphemeralKey::from_private(h32(
            "58a49f1c633f3d5161f6b7854c13d4b28ba4b6b5fe91644a5fc3c09fd623e07d",
        ));
        let server_ephemeral =
            h32("9d9b8241572937f6672ce07221c143bc1cb1266334333f33797a592669523733");
        let mut state = SymmetricState::new(PROTOCOL_NAME);
        assert_eq!(state.chaining_key(), PROTOCOL_NAME);
        state.mix_hash(&PROLOGUE);
        state.mix_hash(&ephemeral.public_key());
        state.mix_hash(&server_ephemeral);
        let ee = diffie_hellman(ephemeral.secret(), &server_ephemeral).unwrap();
        state.mix_key(ee.as_slice());
        assert_eq!(
            hex::encode(state.chaining_key()),
            "cf20e4a2d076541a3f45609407f6501d9f20d55f40b06ff32af4573c44ab1595"
        );
        assert_eq!(
            hex::encode(state.hash()),
            "42e2950db11903f6fd490bedd1cc630feb40b1d01ac350655a98273284498a1d"
        );
        let ciphertext = hex::decode(
            "6de6577bb273d20bb64ee96ffc99fabd1390853791c26fad729806b5b7ddedc4\
             4d689b48e05068e2823b44dd533fff8d",
        )
        .unwrap();
        let server_static = state.decrypt_and_hash(&ciphertext).unwrap();
        assert_eq!(
            hex::encode(server_static.as_slice()),
            "5854d333d8e13975abd6597bbaddd49d6935ced25c93a44bd3ade508f2bec330"
        );
    }

    /// transport.md A.3: a full synthetic transcript, byte for byte. Its certificate is a
    /// placeholder, so the private entry point stands in for the chain check.
    #[test]
    fn a3_full_transcript() {
        let (handshake, hello) =
            ClientHandshake::start(EphemeralKey::from_private([1; 32]), TrustRoot::WHATSAPP);
        assert_eq!(
            hex::encode(&hello),
            "12220a20a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209"
        );
        let server_hello = hex::decode(
            "1a7b0a205dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22\
             1230fad351e77ceb11c0a3c7a310c84044831d305ad1677bb5b736eff6f6392eee8cdc9e\
             71ab200c437245ad235dd9ed16941a254675fd8f85a50efd4f9712c329ba2aa49dbb1270\
             998ef8238aa48b5e096d62499f230369ad",
        )
        .unwrap();
        let server_static_expected = NoiseKeyPair::from_private([4; 32]).public_key();
        let mut seen_chain = Vec::new();
        let done = handshake
            .finish_with(
                &server_hello,
                &NoiseKeyPair::from_private([2; 32]),
                b"CLIENTPAYLOAD-PLACEHOLDER",
                |chain, server_static| {
                    seen_chain = chain.to_vec();
                    assert_eq!(server_static, &server_static_expected);
                    Ok(VerifiedChain {
                        leaf_serial: 0,
                        intermediate_serial: 0,
                        not_before: 0,
                        not_after: 0,
                    })
                },
            )
            .unwrap();
        assert_eq!(seen_chain, b"CERTCHAIN-PLACEHOLDER");
        assert_eq!(
            hex::encode(&done.client_finish),
            "225d0a306f7715b54f3863d7c6b58baab8f65a070327545ff9ce8db3e46a1e6447aaea6f\
             3936f0b881493e1535a737159851cce312297a977c4258f86fa0ec7cb5ad102422e7d21cf\
             d76c1fb623c145cbc0122f342465b29bce8f94586e708"
        );
        let mut client = done.transport;
        let write = h32("f10d8344bf33545050601629f58c5b0fe21b913641d2eeb1f5b49d07a5a6cffe");
        let read = h32("d18c191f5a5bbf1a8f8b5d4713aebc66fb7335f082e1131687d8354d196d8b85");
        let mut server = TransportCipher::new(&read, &write);
        let first = client.encrypt(&[0]).unwrap();
        assert_eq!(hex::encode(&first), "d07b506f2f6549ba03ecd5b08268efafc4");
        assert_eq!(server.decrypt(&first).unwrap(), [0]);
        let reply = server.encrypt(b"reply").unwrap();
        assert_eq!(client.decrypt(&reply).unwrap(), b"reply");
    }

    #[test]
    fn refuses_a_missing_or_short_server_hello() {
        let noise = NoiseKeyPair::from_private([2; 32]);
        let start =
            || ClientHandshake::start(EphemeralKey::from_private([1; 32]), TrustRoot::WHATSAPP).0;
        assert_eq!(
            start().finish(&[], &noise, b"", 0).unwrap_err(),
            HandshakeError::MissingPart
        );
        assert_eq!(
            start().finish(&[0xff], &noise, b"", 0).unwrap_err(),
            HandshakeError::Malformed
        );
        assert_eq!(
            start()
                .finish(&vec![0; NOISE_MAX_HANDSHAKE_MESSAGE + 1], &noise, b"", 0)
                .unwrap_err(),
            HandshakeError::TooLarge
        );
        let low_order = HandshakeMessage {
            server_hello: Some(crate::proto::wa::handshake_message::ServerHello {
                ephemeral: Some(vec![0; 32]),
                r#static: Some(vec![0; 48]),
                payload: Some(vec![0; 16]),
            }),
            ..HandshakeMessage::default()
        }
        .encode_to_vec();
        assert_eq!(
            start().finish(&low_order, &noise, b"", 0).unwrap_err(),
            HandshakeError::WeakKey
        );
    }
}
