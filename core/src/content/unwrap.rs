//! The content inside future-proof wrappers.
//!
//! A `FutureProofMessage` field holds another `Message`: disappearing messages come in
//! `ephemeralMessage`, view-once media in `viewOnceMessage` (V2, V2 extension), documents with
//! a caption in `documentWithCaptionMessage`, edits in `editedMessage` (whatsmeow's shape), and
//! so on (Baileys `normalizeMessageContent`, whatsmeow `UnwrapRaw`). The content a host wants is
//! the innermost message; what was unwrapped is kept as a list of [`Wrapper`]s.

use prost::Message as _;

use crate::limits::CONTENT_MAX_WRAPPERS;
use crate::proto::wa;

/// A wrapper a message's content was found in.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wrapper {
    /// `ephemeralMessage`: a message in a chat with disappearing messages.
    Ephemeral,
    /// `viewOnceMessage`.
    ViewOnce,
    /// `viewOnceMessageV2`.
    ViewOnceV2,
    /// `viewOnceMessageV2Extension` (view-once voice notes).
    ViewOnceV2Extension,
    /// `documentWithCaptionMessage`.
    DocumentWithCaption,
    /// `editedMessage` (an edit in whatsmeow's shape).
    Edited,
    /// `botInvokeMessage`.
    BotInvoke,
    /// `associatedChildMessage`.
    AssociatedChild,
    /// `groupStatusMessage`.
    GroupStatus,
    /// `groupStatusMessageV2`.
    GroupStatusV2,
    /// `groupMentionedMessage`.
    GroupMentioned,
    /// `lottieStickerMessage`.
    LottieSticker,
    /// `pollCreationMessageV4`.
    PollCreationV4,
}

impl Wrapper {
    /// Every wrapper, in the order they are looked for.
    pub const ALL: [Wrapper; 13] = [
        Wrapper::Ephemeral,
        Wrapper::ViewOnce,
        Wrapper::ViewOnceV2,
        Wrapper::ViewOnceV2Extension,
        Wrapper::DocumentWithCaption,
        Wrapper::Edited,
        Wrapper::BotInvoke,
        Wrapper::AssociatedChild,
        Wrapper::GroupStatus,
        Wrapper::GroupStatusV2,
        Wrapper::GroupMentioned,
        Wrapper::LottieSticker,
        Wrapper::PollCreationV4,
    ];

    /// The `Message` field it is (its protobuf JSON name).
    pub fn field_name(self) -> &'static str {
        match self {
            Wrapper::Ephemeral => "ephemeralMessage",
            Wrapper::ViewOnce => "viewOnceMessage",
            Wrapper::ViewOnceV2 => "viewOnceMessageV2",
            Wrapper::ViewOnceV2Extension => "viewOnceMessageV2Extension",
            Wrapper::DocumentWithCaption => "documentWithCaptionMessage",
            Wrapper::Edited => "editedMessage",
            Wrapper::BotInvoke => "botInvokeMessage",
            Wrapper::AssociatedChild => "associatedChildMessage",
            Wrapper::GroupStatus => "groupStatusMessage",
            Wrapper::GroupStatusV2 => "groupStatusMessageV2",
            Wrapper::GroupMentioned => "groupMentionedMessage",
            Wrapper::LottieSticker => "lottieStickerMessage",
            Wrapper::PollCreationV4 => "pollCreationMessageV4",
        }
    }

    /// Whether the content is view-once media.
    pub fn is_view_once(self) -> bool {
        matches!(
            self,
            Wrapper::ViewOnce | Wrapper::ViewOnceV2 | Wrapper::ViewOnceV2Extension
        )
    }

    pub(super) fn slot(
        self,
        message: &mut wa::Message,
    ) -> &mut Option<Box<wa::message::FutureProofMessage>> {
        match self {
            Wrapper::Ephemeral => &mut message.ephemeral_message,
            Wrapper::ViewOnce => &mut message.view_once_message,
            Wrapper::ViewOnceV2 => &mut message.view_once_message_v2,
            Wrapper::ViewOnceV2Extension => &mut message.view_once_message_v2_extension,
            Wrapper::DocumentWithCaption => &mut message.document_with_caption_message,
            Wrapper::Edited => &mut message.edited_message,
            Wrapper::BotInvoke => &mut message.bot_invoke_message,
            Wrapper::AssociatedChild => &mut message.associated_child_message,
            Wrapper::GroupStatus => &mut message.group_status_message,
            Wrapper::GroupStatusV2 => &mut message.group_status_message_v2,
            Wrapper::GroupMentioned => &mut message.group_mentioned_message,
            Wrapper::LottieSticker => &mut message.lottie_sticker_message,
            Wrapper::PollCreationV4 => &mut message.poll_creation_message_v4,
        }
    }

    fn slot_ref(self, message: &wa::Message) -> &Option<Box<wa::message::FutureProofMessage>> {
        match self {
            Wrapper::Ephemeral => &message.ephemeral_message,
            Wrapper::ViewOnce => &message.view_once_message,
            Wrapper::ViewOnceV2 => &message.view_once_message_v2,
            Wrapper::ViewOnceV2Extension => &message.view_once_message_v2_extension,
            Wrapper::DocumentWithCaption => &message.document_with_caption_message,
            Wrapper::Edited => &message.edited_message,
            Wrapper::BotInvoke => &message.bot_invoke_message,
            Wrapper::AssociatedChild => &message.associated_child_message,
            Wrapper::GroupStatus => &message.group_status_message,
            Wrapper::GroupStatusV2 => &message.group_status_message_v2,
            Wrapper::GroupMentioned => &message.group_mentioned_message,
            Wrapper::LottieSticker => &message.lottie_sticker_message,
            Wrapper::PollCreationV4 => &message.poll_creation_message_v4,
        }
    }

    /// Its field number in `Message`.
    pub fn field_number(self) -> u32 {
        match self {
            Wrapper::Ephemeral => 40,
            Wrapper::ViewOnce => 37,
            Wrapper::ViewOnceV2 => 55,
            Wrapper::ViewOnceV2Extension => 59,
            Wrapper::DocumentWithCaption => 53,
            Wrapper::Edited => 58,
            Wrapper::BotInvoke => 67,
            Wrapper::AssociatedChild => 91,
            Wrapper::GroupStatus => 96,
            Wrapper::GroupStatusV2 => 103,
            Wrapper::GroupMentioned => 62,
            Wrapper::LottieSticker => 74,
            Wrapper::PollCreationV4 => 93,
        }
    }

    pub(super) fn inner(self, message: &wa::Message) -> Option<&wa::Message> {
        self.slot_ref(message).as_ref()?.message.as_deref()
    }
}

/// A message's content with its wrappers removed.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Unwrapped {
    /// The innermost message; the outer `messageContextInfo` is kept when the inner one has
    /// none.
    pub message: wa::Message,
    /// What was unwrapped, outermost first.
    pub wrappers: Vec<Wrapper>,
}

impl Unwrapped {
    /// Whether the content is view-once media.
    pub fn view_once(&self) -> bool {
        self.wrappers.iter().any(|w| w.is_view_once())
    }

    /// Whether the message came in a chat with disappearing messages.
    pub fn ephemeral(&self) -> bool {
        self.wrappers.contains(&Wrapper::Ephemeral)
    }
}

/// The encoded length of a message's two protocol fields (`senderKeyDistributionMessage`,
/// `messageContextInfo`).
fn protocol_len(message: &wa::Message) -> usize {
    use prost::encoding::message::encoded_len;
    message
        .sender_key_distribution_message
        .as_ref()
        .map_or(0, |skdm| encoded_len(2, skdm))
        + message
            .message_context_info
            .as_ref()
            .map_or(0, |context| encoded_len(35, context))
}

/// Whether a message holds anything besides its two protocol fields (`messageContextInfo` and
/// a sender-key distribution): every field of the proto2 `Message` is optional or repeated, and
/// a set one always adds to the encoded length. (Comparing with the default would link
/// `Message`'s `PartialEq`, a copy its `Clone`; docs/decisions.md, "wasm size".)
#[cfg(any(test, feature = "internals-for-benches"))]
pub(crate) fn has_content(message: &wa::Message) -> bool {
    message.encoded_len() != protocol_len(message)
}

/// The wrapper `message` is, when it holds nothing but one wrapper with a message inside.
pub(super) fn wrapper_of(message: &wa::Message) -> Option<Wrapper> {
    let wrapper = Wrapper::ALL
        .into_iter()
        .find(|w| w.inner(message).is_some())?;
    let wrapped = wrapper.slot_ref(message).as_deref()?;
    let wrapper_len = prost::encoding::message::encoded_len(wrapper.field_number(), wrapped);
    (message.encoded_len() == protocol_len(message) + wrapper_len).then_some(wrapper)
}

/// Removes the wrappers around a message's content (at most [`CONTENT_MAX_WRAPPERS`]). A
/// wrapper beside other content, or without a message inside, is left as it is.
pub fn unwrap(mut message: wa::Message) -> Unwrapped {
    let mut wrappers = Vec::new();
    while wrappers.len() < CONTENT_MAX_WRAPPERS {
        let Some(wrapper) = wrapper_of(&message) else {
            break;
        };
        let Some(mut inner) = wrapper
            .slot(&mut message)
            .take()
            .and_then(|future_proof| future_proof.message)
            .map(|inner| *inner)
        else {
            break;
        };
        if inner.message_context_info.is_none() {
            inner.message_context_info = message.message_context_info.take();
        }
        message = inner;
        wrappers.push(wrapper);
    }
    Unwrapped { message, wrappers }
}

/// The content of a message by reference: [`unwrap`] without taking the message apart.
pub fn content_of(message: &wa::Message) -> &wa::Message {
    let mut content = message;
    for _ in 0..CONTENT_MAX_WRAPPERS {
        match wrapper_of(content).and_then(|w| w.inner(content)) {
            Some(inner) => content = inner,
            None => break,
        }
    }
    content
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(text: &str) -> wa::Message {
        wa::Message {
            conversation: Some(text.into()),
            ..Default::default()
        }
    }

    fn wrap(wrapper: Wrapper, inner: wa::Message) -> wa::Message {
        let mut outer = wa::Message::default();
        *wrapper.slot(&mut outer) = Some(Box::new(wa::message::FutureProofMessage {
            message: Some(Box::new(inner)),
        }));
        outer
    }

    #[test]
    fn every_wrapper_unwraps_and_is_named() {
        for wrapper in Wrapper::ALL {
            let unwrapped = unwrap(wrap(wrapper, text("hi")));
            assert_eq!(unwrapped.message, text("hi"), "{wrapper:?}");
            assert_eq!(unwrapped.wrappers, [wrapper]);
            assert_eq!(unwrapped.view_once(), wrapper.is_view_once());
            assert_eq!(unwrapped.ephemeral(), wrapper == Wrapper::Ephemeral);
            assert_eq!(content_of(&wrap(wrapper, text("hi"))), &text("hi"));
            assert!(wrapper.field_name().contains("Message"));
            let bytes = prost::Message::encode_to_vec(&wrap(wrapper, text("hi")));
            let first = crate::content::wire::fields(&bytes)
                .next()
                .unwrap()
                .unwrap();
            assert_eq!(first.0, wrapper.field_number(), "{wrapper:?}");
        }
    }

    #[test]
    fn nested_wrappers_unwrap_outermost_first_and_keep_the_context() {
        let secret = wa::MessageContextInfo {
            message_secret: Some(vec![9; 32]),
            ..Default::default()
        };
        let mut outer = wrap(Wrapper::Ephemeral, wrap(Wrapper::ViewOnceV2, text("look")));
        outer.message_context_info = Some(secret.clone());
        let unwrapped = unwrap(outer);
        assert_eq!(
            unwrapped.wrappers,
            [Wrapper::Ephemeral, Wrapper::ViewOnceV2]
        );
        assert!(unwrapped.view_once() && unwrapped.ephemeral());
        assert_eq!(unwrapped.message.conversation.as_deref(), Some("look"));
        assert_eq!(unwrapped.message.message_context_info, Some(secret));
    }

    #[test]
    fn a_wrapper_beside_other_content_or_empty_stays() {
        let mut beside = wrap(Wrapper::Ephemeral, text("inner"));
        beside.conversation = Some("outer".into());
        let unwrapped = unwrap(beside.clone());
        assert!(unwrapped.wrappers.is_empty());
        assert_eq!(unwrapped.message, beside);

        let mut empty = wa::Message::default();
        *Wrapper::ViewOnce.slot(&mut empty) = Some(Box::default());
        assert_eq!(unwrap(empty.clone()).message, empty);
        assert_eq!(content_of(&empty), &empty);
    }

    #[test]
    fn unwrapping_stops_at_the_bound() {
        let mut message = text("deep");
        for _ in 0..CONTENT_MAX_WRAPPERS + 3 {
            message = wrap(Wrapper::Ephemeral, message);
        }
        let unwrapped = unwrap(message);
        assert_eq!(unwrapped.wrappers.len(), CONTENT_MAX_WRAPPERS);
        assert!(unwrapped.message.ephemeral_message.is_some());
    }

    #[test]
    fn content_is_any_field_but_the_protocol_ones() {
        assert!(!has_content(&wa::Message::default()));
        assert!(has_content(&text("")));
        assert!(!has_content(&wa::Message {
            message_context_info: Some(Default::default()),
            sender_key_distribution_message: Some(Default::default()),
            ..Default::default()
        }));
    }
}
