//! The Signal protocol as WhatsApp uses it: X3DH, double ratchet, sender keys, XEdDSA, and
//! WhatsApp's random plaintext padding.
//!
//! Everything here is a pure function or a state record: no I/O, no clock, no store. Randomness
//! is passed in as a [`rand_core::CryptoRng`]. Records ([`SessionRecord`], [`SenderKeyRecord`])
//! change only when a message authenticated and decrypted, and serialize to walink's own
//! versioned protobuf (`core/proto/walink_signal.proto`). Protocol details and their sources are
//! in `docs/signal.md`.

mod crypto;
mod error;
pub mod keys;
pub mod message;
pub mod padding;
pub mod prekey;
mod ratchet;
mod record;
mod sender_key;
mod session;
#[cfg(test)]
mod test_rng;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod xeddsa;

pub use error::{BundleError, DecryptError, EncryptError, RecordError};
pub use keys::{IdentityKey, IdentityKeyPair, KeyError, KeyPair, PrivateKey, PublicKey};
pub use message::{
    CiphertextMessage, MessageError, PreKeyId, PreKeySignalMessage, SignalMessage, SignedPreKeyId,
};
pub use padding::{PaddingError, pad, unpad};
pub use prekey::{PreKey, PreKeyBundle, PreKeySource, SignedPreKey};
pub use record::{PreKeyDecryption, SESSION_RECORD_FORMAT, SessionRecord};
pub use sender_key::{SENDER_KEY_RECORD_FORMAT, SenderKeyDistributionMessage, SenderKeyRecord};
