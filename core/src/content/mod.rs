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

pub mod addon;
mod keys;
pub mod outgoing;
pub mod poll;
mod unwrap;
pub mod wire;

pub use keys::{Perspective, normalize_keys};
#[cfg(any(test, feature = "internals-for-benches"))]
pub(crate) use unwrap::has_content;
pub use unwrap::{Unwrapped, Wrapper, content_of, unwrap};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::Jid;
    use crate::proto::wa;
    use prost::Message as _;

    proptest::proptest! {
        /// Whatever bytes a peer sends as a message, the content rules never panic: the message
        /// decodes or not, unwraps, has its keys rewritten and gets stanza attributes.
        #[test]
        fn any_message_bytes_go_through_the_content_rules(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            from_me in proptest::prelude::any::<bool>(),
        ) {
            let _ = wire::fields(&bytes).count();
            let Ok(message) = wa::Message::decode(bytes.as_slice()) else {
                return Ok(());
            };
            let attrs = outgoing::stanza_attrs(&message);
            proptest::prop_assert!(["text", "media", "reaction", "poll"].contains(&attrs.kind));
            let mut prepared = message.clone();
            outgoing::prepare(&mut prepared, [1; 32], 5);
            let mut unwrapped = unwrap(message).message;
            let chat: Jid = "120363000000000001@g.us".parse().unwrap_or_default();
            let sender: Jid = "222@s.whatsapp.net".parse().unwrap_or_default();
            let own = [Jid::new("111", crate::binary::DEFAULT_USER_SERVER)];
            normalize_keys(
                &mut unwrapped,
                &Perspective { chat: &chat, sender: &sender, from_me, own: &own },
            );
            let _ = poll::creation(content_of(&unwrapped)).map(poll::option_names);
        }
    }
}
