//! One connection: the connection header, the Noise handshake (ClientHello, ServerHello checked
//! against the trust root, ClientFinish with the registration or login payload), then every
//! frame through the transport cipher and the binary codec.

use prost::Message as _;

use crate::binary::Node;
use crate::frame::{self, FrameDecoder};
use crate::limits::CLIENT_IDLE_BUFFER_CAPACITY;
use crate::noise::{ClientHandshake, EphemeralKey, TransportCipher};

use super::Timestamp;
use super::config::Config;
use super::device::Device;
use super::output::{Output, Outputs, PeerFault, ProtocolError};
use super::rng::Rng;

enum Phase {
    /// No socket.
    Closed,
    /// `Output::Connect` issued; waiting for the host.
    Opening,
    /// ClientHello sent; waiting for the ServerHello.
    Handshake(Box<ClientHandshake>),
    /// Handshake done: frames are transport-encrypted nodes.
    Open(Box<TransportCipher>),
}

/// The socket-facing half of the client.
pub(crate) struct Connection {
    phase: Phase,
    decoder: FrameDecoder,
    /// The socket must open and the server answer the login by then.
    deadline: Option<Timestamp>,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let phase = match self.phase {
            Phase::Closed => "closed",
            Phase::Opening => "opening",
            Phase::Handshake(_) => "handshake",
            Phase::Open(_) => "open",
        };
        f.debug_struct("Connection")
            .field("phase", &phase)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Default for Connection {
    fn default() -> Self {
        Connection {
            phase: Phase::Closed,
            decoder: FrameDecoder::new(),
            deadline: None,
        }
    }
}

/// Why a node could not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendError {
    /// There is no open, handshaken connection.
    NotOpen,
    /// The cipher refused (the connection must close).
    Failed(ProtocolError),
}

impl Connection {
    /// Asks the host for a socket; the socket and handshake must be done by `now + timeout`.
    /// Without a `now` (a client not yet driven by any input) the deadline is armed by the
    /// first input, through [`Connection::arm`].
    pub(crate) fn open(&mut self, now: Option<Timestamp>, timeout: u64, out: &mut Outputs) {
        self.close();
        self.phase = Phase::Opening;
        self.deadline = now.map(|now| now.saturating_add(timeout));
        out.push(Output::Connect);
    }

    /// Arms the connection deadline if an attempt is under way without one.
    pub(crate) fn arm(&mut self, now: Timestamp, timeout: u64) {
        if self.deadline.is_none() && matches!(self.phase, Phase::Opening | Phase::Handshake(_)) {
            self.deadline = Some(now.saturating_add(timeout));
        }
    }

    /// Whether a socket is wanted or open.
    pub(crate) fn is_active(&self) -> bool {
        !matches!(self.phase, Phase::Closed)
    }

    /// Whether the host was asked for a socket and has not reported it open yet.
    pub(crate) fn is_opening(&self) -> bool {
        matches!(self.phase, Phase::Opening)
    }

    /// Whether the handshake finished (nodes can be sent).
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// When the connection attempt times out.
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        self.deadline
    }

    /// The first node arrived: the connection attempt succeeded.
    pub(crate) fn clear_deadline(&mut self) {
        self.deadline = None;
    }

    /// The socket opened: send the connection header and ClientHello with a fresh ephemeral key.
    pub(crate) fn handle_connected(
        &mut self,
        device: &Device,
        config: &Config,
        rng: &mut Rng,
        out: &mut Outputs,
    ) -> Result<(), ProtocolError> {
        let ephemeral = EphemeralKey::from_private(rng.bytes());
        let (handshake, hello) = ClientHandshake::start(ephemeral, config.trust_root);
        // A routing blob too large for the pre-intro falls back to the plain header.
        let mut bytes = frame::connection_header(device.data().routing_info.as_deref())
            .or_else(|_| frame::connection_header(None))?;
        frame::encode_frame_into(&hello, &mut bytes)?;
        self.phase = Phase::Handshake(Box::new(handshake));
        self.decoder = FrameDecoder::new();
        out.push(Output::Transmit(bytes));
        Ok(())
    }

    /// Appends received bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
    }

    /// The next node received, finishing the handshake on the way (the ClientFinish is
    /// transmitted when the ServerHello arrives). `Ok(None)` when more bytes are needed.
    pub(crate) fn next_node(
        &mut self,
        now: Timestamp,
        device: &Device,
        config: &Config,
        out: &mut Outputs,
    ) -> Result<Option<Node>, ProtocolError> {
        loop {
            let Some(payload) = self.decoder.next_frame()? else {
                self.release_buffer();
                return Ok(None);
            };
            match core::mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Handshake(handshake) => {
                    let client_payload = device
                        .client_payload(&config.profile)
                        .map_err(|_| ProtocolError::BadOwnKeys)?
                        .encode_to_vec();
                    let done = handshake.finish(&payload, device.noise(), &client_payload, now)?;
                    let finish = frame::encode_frame(&done.client_finish)?;
                    self.phase = Phase::Open(Box::new(done.transport));
                    out.push(Output::Transmit(finish));
                }
                Phase::Open(mut cipher) => {
                    let node = cipher.decrypt_node(&payload);
                    self.phase = Phase::Open(cipher);
                    return Ok(Some(node?));
                }
                other @ (Phase::Closed | Phase::Opening) => {
                    self.phase = other;
                    return Err(ProtocolError::Peer(PeerFault::FrameWhileClosed));
                }
            }
        }
    }

    /// Encrypts and transmits `node`.
    pub(crate) fn send(&mut self, node: &Node, out: &mut Outputs) -> Result<(), SendError> {
        let Phase::Open(cipher) = &mut self.phase else {
            return Err(SendError::NotOpen);
        };
        // `encrypt_node` gives the framed message: length prefix and ciphertext.
        let framed = cipher
            .encrypt_node(node)
            .map_err(|e| SendError::Failed(e.into()))?;
        out.push(Output::Transmit(framed));
        Ok(())
    }

    /// Forgets the socket, the ciphers and every buffered byte.
    pub(crate) fn close(&mut self) {
        self.phase = Phase::Closed;
        self.decoder = FrameDecoder::new();
        self.deadline = None;
    }

    fn release_buffer(&mut self) {
        if self.decoder.buffered() == 0 {
            self.decoder = FrameDecoder::new();
        } else if self.decoder.buffered() < CLIENT_IDLE_BUFFER_CAPACITY {
            // Keep the partial frame; the decoder compacts itself on the next push.
        }
    }
}
