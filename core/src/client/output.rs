//! What the client asks of its host, and the one ordered queue it is collected in.

use std::collections::VecDeque;

use crate::binary::DecodeError;
use crate::frame::FrameError;
use crate::noise::{HandshakeError, TransportError};
use crate::store::{Batch, RecordKey};

use super::command::CommandId;
use super::event::Event;
use super::fetch::{FetchId, FetchRequest};

/// One thing for the host to do. Drain them with `Client::poll_output`, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open the socket ([`CHAT_URL`](super::endpoints::CHAT_URL), binary messages, with the
    /// `Origin` header [`ORIGIN`](super::endpoints::ORIGIN)), then call `handle_connected`, or
    /// `handle_closed(CloseReason::Network)` if it cannot be opened.
    Connect,
    /// Apply these changes atomically (await them, for asynchronous stores) before carrying
    /// out any later output.
    Persist(Batch),
    /// Read these records (after applying every earlier `Persist`) and hand the ones that
    /// exist to `Client::handle_loaded` with the same id. Missing keys are simply left out.
    Load {
        /// Names the answer.
        id: LoadId,
        /// The records wanted.
        keys: Vec<RecordKey>,
    },
    /// Carry out this HTTPS request (off the step loop: later inputs need not wait for it) and
    /// hand what happened to `Client::handle_fetched` with the same id: the status and body of
    /// any response, or the transport's failure. Answer every fetch once, also when it failed.
    Fetch {
        /// Names the answer.
        id: FetchId,
        /// What to send, where, and how much to read back.
        request: FetchRequest,
    },
    /// Write these bytes to the socket: one complete frame (3-byte length + payload); the
    /// first frame of a connection also carries the connection header `"WA" 06 03`.
    Transmit(Vec<u8>),
    /// Something for the application.
    Event(Event),
    /// Close the socket. The client already knows why; do not call `handle_closed` for it.
    Close(CloseReason),
}

/// Names one `Output::Load` and its answer. Opaque: a host hands back the id it was given
/// ([`LoadId::as_u64`], [`LoadId::from_u64`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoadId(pub(crate) u64);

impl LoadId {
    /// The id as a number, for a host that hands it across a language boundary.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id a host was given as a number (by [`Self::as_u64`]).
    pub fn from_u64(id: u64) -> Self {
        Self(id)
    }
}

/// Why a connection ended: given by the host to `handle_closed`, or by the client in
/// `Output::Close`.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The socket failed, could not be opened, or the peer closed it.
    Network,
    /// The host or a `Command::Disconnect` closed it.
    Local,
    /// The server ended the stream with `<stream:error>`.
    StreamError {
        /// The `code` attribute (515, 401, 503, ...), when present.
        code: Option<u16>,
        /// The `type` of a `<conflict>` child (`"replaced"`, `"device_removed"`), when present.
        conflict: Option<String>,
    },
    /// The server refused the login with `<failure reason="N">`.
    Failure {
        /// The reason code (401, 403, 405, 503, ...).
        reason: u16,
    },
    /// The server sent `xmlstreamend`.
    ServerClosed,
    /// The peer broke the protocol; the connection cannot continue.
    Protocol(ProtocolError),
    /// The socket did not open or the handshake did not finish in time.
    ConnectTimeout,
    /// A keepalive ping got no answer in time: the socket is dead.
    KeepaliveTimeout,
    /// Every QR ref expired and no pairing code is outstanding.
    QrRefsExhausted,
    /// The device was logged out locally (`Command::Logout`).
    LoggedOut,
}

/// Why the protocol could not go on: the server's fault (`Frame` to `Peer`, `MalformedPairing`)
/// or this client's own (`Local`, `BadOwnKeys`).
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A frame could not be cut from the byte stream.
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// The Noise handshake failed (including the certificate chain).
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// A transport frame failed to decrypt or decode.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A frame body is not a valid node.
    #[error("node: {0}")]
    Decode(#[from] DecodeError),
    /// The server did what the current state cannot accept.
    #[error("server: {0}")]
    Peer(PeerFault),
    /// This client ran into one of its own limits.
    #[error("local: {0}")]
    Local(LocalFault),
    /// The server's `pair-device` or `pair-success` is malformed.
    #[error("malformed pairing stanza")]
    MalformedPairing,
    /// The device's own keys could not build a ClientPayload.
    #[error("own keys cannot build a client payload")]
    BadOwnKeys,
}

/// What the server did that the current state cannot accept.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerFault {
    /// A frame arrived while no connection was open.
    #[error("a frame while no connection was open")]
    FrameWhileClosed,
    /// A request of the post-login round trip was refused with this code (0 when the answer
    /// has none).
    #[error("post-login {step:?} refused with code {code}")]
    PostLoginRefused {
        /// The request.
        step: PostLoginStep,
        /// The `<error code>`.
        code: u16,
    },
    /// A request of the post-login round trip was not answered in time.
    #[error("post-login {0:?} not answered in time")]
    PostLoginTimedOut(PostLoginStep),
}

/// The requests of the post-login round trip.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostLoginStep {
    /// The server's count of this device's one-time prekeys.
    PreKeyCount,
    /// The upload of fresh one-time prekeys.
    PreKeyUpload,
    /// `<active/>`.
    Active,
}

/// A limit of this client that stopped the protocol.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalFault {
    /// More IQs await their answers than `limits::CLIENT_MAX_PENDING_IQS`.
    #[error("too many IQs await their answers")]
    TooManyPendingIqs,
}

/// The one ordered queue of a client. Sub-machines push; the host drains. Its `Debug` shows
/// how many outputs wait, not what they hold (events carry plaintext, batches keys).
#[derive(Default)]
pub(crate) struct Outputs {
    queue: VecDeque<Output>,
}

impl core::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Outputs")
            .field("waiting", &self.queue.len())
            .finish()
    }
}

impl Outputs {
    /// Appends an output.
    pub(crate) fn push(&mut self, output: Output) {
        self.queue.push_back(output);
    }

    /// Appends an event.
    pub(crate) fn event(&mut self, event: Event) {
        // The outcome of a command the client issued on its own is not the host's.
        if matches!(&event, Event::CommandDone { id, .. } if *id == CommandId::INTERNAL) {
            return;
        }
        self.push(Output::Event(event));
    }

    /// Appends a batch, unless it is empty.
    pub(crate) fn persist(&mut self, batch: Batch) {
        if !batch.is_empty() {
            self.push(Output::Persist(batch));
        }
    }

    /// The next output, releasing the queue's memory once it runs dry.
    pub(crate) fn pop(&mut self) -> Option<Output> {
        let next = self.queue.pop_front();
        if next.is_none() && self.queue.capacity() > 16 {
            self.queue = VecDeque::new();
        }
        next
    }

    /// Whether no output waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Outputs waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}
