//! The content model: every kind of message as WhatsApp's `Message` protobuf
//! (`core/proto/wa_e2e.proto`, [`crate::proto::wa::Message`]), and the pure rules around it that
//! do not depend on a connection.
//!
//! - [`unwrap()`]: the content inside future-proof wrappers (ephemeral, view-once, document with
//!   caption, edited, ...), with what was unwrapped;
//! - [`normalize_keys`]: the message keys of add-ons (reactions, votes, revokes, edits, pins)
//!   rewritten to this device's point of view;
//! - [`outgoing`]: what the client completes in a message it sends (the message secret,
//!   add-on timestamps) and the stanza attributes its content calls for;
//! - [`poll`]: option hashes and the message-secret key of poll votes, with encryption both
//!   ways;
//! - [`wire`]: a reader and writer of the protobuf wire format, for looking at raw messages
//!   without decoding them (unknown fields included) and for the hosts' JSON conversion.
//!
//! Sources: tulir/whatsmeow `send.go`, `msgsecret.go`, `types/events/events.go`
//! (`UnwrapRaw`); WhiskeySockets/Baileys `src/Utils/messages.ts` (`normalizeMessageContent`),
//! `src/Utils/process-message.ts` (`cleanMessage`, `decryptPollVote`); docs/content.md.

mod keys;
pub mod outgoing;
pub mod poll;
mod unwrap;
pub mod wire;

pub use keys::{Perspective, normalize_keys};
pub(crate) use unwrap::has_content;
pub use unwrap::{Unwrapped, Wrapper, content_of, unwrap};
