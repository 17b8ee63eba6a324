//! The client side of WhatsApp's Noise_XX_25519_AESGCM_SHA256 handshake, the verification of
//! the server's certificate chain, the ClientPayload builders and the transport ciphers.
//!
//! Everything here is pure: no I/O, no clock (`now` is a parameter), no hidden randomness (the
//! ephemeral key is passed in). The handshake consumes and produces frame payloads; the
//! connection header and the 3-byte length prefix are the frame layer's (`crate::frame`).
//!
//! ```text
//! let (handshake, hello) = ClientHandshake::start(ephemeral, TrustRoot::WHATSAPP);
//! // send CONNECTION_HEADER + frame(hello), receive frame(server_hello)
//! let done = handshake.finish(&server_hello, &noise_key, &payload.encode_to_vec(), now_ms)?;
//! // send frame(done.client_finish); from now on every frame goes through done.transport
//! ```

mod cert;
mod handshake;
mod keys;
pub mod payload;
mod symmetric;
mod transport;

pub use cert::{CertError, CertRole, TrustRoot, VerifiedChain, verify_chain};
pub use handshake::{ClientHandshake, Completed, HandshakeError, PROLOGUE, PROTOCOL_NAME};
pub use keys::{EphemeralKey, NoiseKeyPair, PublicKeyBytes};
pub use transport::{TransportCipher, TransportError};
