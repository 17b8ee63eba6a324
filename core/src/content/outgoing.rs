//! What the client adds to a message it sends, and the stanza attributes its content calls for.
//!
//! Stanza attributes (whatsmeow `getTypeFromMessage`, `getMediaTypeFromMessage`,
//! `getEditAttribute`, `getMessageContent`; Baileys `getMessageType`, `getMediaType`;
//! features.md 7.1):
//!
//! | content | `<message type>` | `edit` | `<meta polltype>` | `<enc decrypt-fail="hide">` |
//! |---|---|---|---|---|
//! | reaction, encrypted reaction | `reaction` | `7` when removing | | yes |
//! | poll creation / vote | `poll` | | `creation` / `vote` | vote |
//! | image, video, audio, document, sticker, contact(s), live location, link preview | `media` | | | |
//! | revoke | `text` | `7` own, `8` admin | | yes |
//! | edit | `text` | `1` | | yes |
//! | pin | `text` | `2` | | yes |
//! | anything else | `text` | | | |
//!
//! Media also name their kind on every `<enc>` (`mediatype`: `image`, `video`, `gif`, `audio`,
//! `ptt`, `document`, `sticker`, `vcard`, `contact_array`, `livelocation`, `url`), as Baileys
//! does.

use super::unwrap::{content_of, wrapper_of};
use crate::limits::CONTENT_MAX_WRAPPERS;
use crate::proto::wa;

/// `ProtocolMessage.Type.REVOKE`.
pub const PROTOCOL_REVOKE: i32 = 0;
/// `ProtocolMessage.Type.MESSAGE_EDIT`.
pub const PROTOCOL_MESSAGE_EDIT: i32 = 14;
/// `messageContextInfo.deviceListMetadataVersion` as WhatsApp Web sends it.
pub const DEVICE_LIST_METADATA_VERSION: i32 = 2;
/// `KeepInChatMessage.keepType` UNDO_KEEP_FOR_ALL.
const UNDO_KEEP_FOR_ALL: i32 = 2;

/// The attributes of the `<message>` stanza and its `<enc>` children for a content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StanzaAttrs {
    /// `<message type>`: `text`, `media`, `reaction` or `poll`.
    pub kind: &'static str,
    /// `<message edit>`: `1` edit, `2` pin, `7` the sender's revoke, `8` an admin's revoke.
    pub edit: Option<&'static str>,
    /// The `polltype` of a `<meta>` child: `creation` or `vote`.
    pub poll: Option<&'static str>,
    /// `decrypt-fail="hide"` on every `<enc>`: receivers show no placeholder if it fails.
    pub hide_failure: bool,
    /// `mediatype` on every `<enc>`.
    pub media_type: Option<&'static str>,
}

/// The media type of a content, when it is media.
pub fn media_type(content: &wa::Message) -> Option<&'static str> {
    if content
        .extended_text_message
        .as_ref()
        .is_some_and(|text| text.title.is_some())
    {
        Some("url")
    } else if content.image_message.is_some() {
        Some("image")
    } else if let Some(video) = &content.video_message {
        Some(if video.gif_playback == Some(true) {
            "gif"
        } else {
            "video"
        })
    } else if let Some(audio) = &content.audio_message {
        Some(if audio.ptt == Some(true) {
            "ptt"
        } else {
            "audio"
        })
    } else if content.contact_message.is_some() {
        Some("vcard")
    } else if content.document_message.is_some() {
        Some("document")
    } else if content.contacts_array_message.is_some() {
        Some("contact_array")
    } else if content.live_location_message.is_some() {
        Some("livelocation")
    } else if content.sticker_message.is_some() {
        Some("sticker")
    } else {
        None
    }
}

fn edit_attr(content: &wa::Message) -> Option<&'static str> {
    if let Some(protocol) = &content.protocol_message {
        let own = protocol.key.as_ref().and_then(|k| k.from_me) == Some(true);
        match protocol.r#type {
            Some(PROTOCOL_REVOKE) if protocol.key.is_some() => {
                return Some(if own { "7" } else { "8" });
            }
            Some(PROTOCOL_MESSAGE_EDIT) if protocol.edited_message.is_some() => return Some("1"),
            _ => {}
        }
    }
    if content
        .reaction_message
        .as_ref()
        .is_some_and(|r| r.text.as_deref().unwrap_or_default().is_empty())
    {
        return Some("7");
    }
    if content.keep_in_chat_message.as_ref().is_some_and(|keep| {
        keep.key.as_ref().and_then(|k| k.from_me) == Some(true)
            && keep.keep_type == Some(UNDO_KEEP_FOR_ALL)
    }) {
        return Some("7");
    }
    content.pin_in_chat_message.as_ref().map(|_| "2")
}

/// The stanza attributes for `message` (its wrappers looked through).
pub fn stanza_attrs(message: &wa::Message) -> StanzaAttrs {
    let content = content_of(message);
    let reaction = content.reaction_message.is_some() || content.enc_reaction_message.is_some();
    let poll = if content.poll_update_message.is_some() {
        Some("vote")
    } else if super::poll::creation(content).is_some() {
        Some("creation")
    } else {
        None
    };
    let media_type = media_type(content);
    let kind = if reaction {
        "reaction"
    } else if poll.is_some() {
        "poll"
    } else if media_type.is_some() {
        "media"
    } else {
        "text"
    };
    let edit = edit_attr(content);
    StanzaAttrs {
        kind,
        edit,
        poll,
        hide_failure: edit.is_some() || reaction || poll == Some("vote"),
        media_type,
    }
}

/// Whether a content is an add-on to another message (it needs no secret of its own).
fn is_add_on(content: &wa::Message) -> bool {
    content.reaction_message.is_some()
        || content.enc_reaction_message.is_some()
        || content.poll_update_message.is_some()
        || content.protocol_message.is_some()
        || content.pin_in_chat_message.is_some()
        || content.keep_in_chat_message.is_some()
        || content.secret_encrypted_message.is_some()
}

/// Runs `f` on the content of `message` (inside its wrappers).
fn with_content_mut(message: &mut wa::Message, f: impl FnOnce(&mut wa::Message)) {
    let mut content = message;
    for _ in 0..CONTENT_MAX_WRAPPERS {
        let Some(wrapper) = wrapper_of(content) else {
            break;
        };
        match wrapper
            .slot(content)
            .as_mut()
            .and_then(|future_proof| future_proof.message.as_deref_mut())
        {
            Some(inner) => content = inner,
            None => return,
        }
    }
    f(content)
}

/// Completes a message this client sends: a message secret (`messageContextInfo`, WhatsApp
/// Web attaches one to every message that can receive add-ons) unless it has one or is itself an
/// add-on, and the send time (Unix ms) of a reaction, vote, pin or edit that lacks it.
pub fn prepare(message: &mut wa::Message, secret: [u8; 32], now_ms: u64) {
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    if !is_add_on(content_of(message)) {
        let context = message
            .message_context_info
            .get_or_insert_with(|| wa::MessageContextInfo {
                device_list_metadata_version: Some(DEVICE_LIST_METADATA_VERSION),
                ..Default::default()
            });
        if context.message_secret.is_none() {
            context.message_secret = Some(secret.to_vec());
        }
    }
    with_content_mut(message, |content| {
        if let Some(reaction) = &mut content.reaction_message {
            reaction.sender_timestamp_ms.get_or_insert(now);
        }
        if let Some(vote) = &mut content.poll_update_message {
            vote.sender_timestamp_ms.get_or_insert(now);
        }
        if let Some(pin) = &mut content.pin_in_chat_message {
            pin.sender_timestamp_ms.get_or_insert(now);
        }
        if let Some(protocol) = &mut content.protocol_message {
            if protocol.r#type == Some(PROTOCOL_MESSAGE_EDIT) {
                protocol.timestamp_ms.get_or_insert(now);
            }
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(from_me: bool) -> wa::MessageKey {
        wa::MessageKey {
            remote_jid: Some("222@s.whatsapp.net".into()),
            from_me: Some(from_me),
            id: Some("3EB0AA".into()),
            participant: None,
        }
    }

    fn attrs(
        message: wa::Message,
    ) -> (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        bool,
        Option<&'static str>,
    ) {
        let a = stanza_attrs(&message);
        (a.kind, a.edit, a.poll, a.hide_failure, a.media_type)
    }

    fn protocol(kind: i32, from_me: bool, edited: bool) -> wa::Message {
        wa::Message {
            protocol_message: Some(Box::new(wa::message::ProtocolMessage {
                key: Some(key(from_me)),
                r#type: Some(kind),
                edited_message: edited.then(|| {
                    Box::new(wa::Message {
                        conversation: Some("fixed".into()),
                        ..Default::default()
                    })
                }),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn attributes_follow_the_content() {
        let text = wa::Message {
            conversation: Some("hi".into()),
            ..Default::default()
        };
        assert_eq!(attrs(text.clone()), ("text", None, None, false, None));
        let reaction = |emoji: &str| wa::Message {
            reaction_message: Some(wa::message::ReactionMessage {
                key: Some(key(false)),
                text: Some(emoji.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(attrs(reaction("👍")), ("reaction", None, None, true, None));
        assert_eq!(
            attrs(reaction("")),
            ("reaction", Some("7"), None, true, None)
        );
        assert_eq!(
            attrs(protocol(PROTOCOL_REVOKE, true, false)),
            ("text", Some("7"), None, true, None)
        );
        assert_eq!(
            attrs(protocol(PROTOCOL_REVOKE, false, false)),
            ("text", Some("8"), None, true, None)
        );
        assert_eq!(
            attrs(protocol(PROTOCOL_MESSAGE_EDIT, true, true)),
            ("text", Some("1"), None, true, None)
        );
        // whatsmeow's edit shape: the protocol message inside `editedMessage`.
        let wrapped = wa::Message {
            edited_message: Some(Box::new(wa::message::FutureProofMessage {
                message: Some(Box::new(protocol(PROTOCOL_MESSAGE_EDIT, true, true))),
            })),
            ..Default::default()
        };
        assert_eq!(attrs(wrapped), ("text", Some("1"), None, true, None));
        let poll = wa::Message {
            poll_creation_message_v3: Some(Box::default()),
            ..Default::default()
        };
        assert_eq!(attrs(poll), ("poll", None, Some("creation"), false, None));
        let vote = wa::Message {
            poll_update_message: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(attrs(vote), ("poll", None, Some("vote"), true, None));
        let pin = wa::Message {
            pin_in_chat_message: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(attrs(pin), ("text", Some("2"), None, true, None));
        let voice = wa::Message {
            ephemeral_message: Some(Box::new(wa::message::FutureProofMessage {
                message: Some(Box::new(wa::Message {
                    audio_message: Some(Box::new(wa::message::AudioMessage {
                        ptt: Some(true),
                        ..Default::default()
                    })),
                    ..Default::default()
                })),
            })),
            ..Default::default()
        };
        assert_eq!(attrs(voice), ("media", None, None, false, Some("ptt")));
        let gif = wa::Message {
            video_message: Some(Box::new(wa::message::VideoMessage {
                gif_playback: Some(true),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(attrs(gif).4, Some("gif"));
        let location = wa::Message {
            location_message: Some(Box::default()),
            ..Default::default()
        };
        assert_eq!(attrs(location), ("text", None, None, false, None));
    }

    #[test]
    fn prepare_adds_a_secret_and_add_on_times() {
        let mut text = wa::Message {
            conversation: Some("hi".into()),
            ..Default::default()
        };
        prepare(&mut text, [5; 32], 1_700_000_000_123);
        let context = text.message_context_info.clone().unwrap();
        assert_eq!(context.message_secret, Some(vec![5; 32]));
        assert_eq!(context.device_list_metadata_version, Some(2));
        // A secret the host gave stays.
        prepare(&mut text, [6; 32], 0);
        assert_eq!(
            text.message_context_info.unwrap().message_secret,
            Some(vec![5; 32])
        );

        let mut reaction = wa::Message {
            reaction_message: Some(Default::default()),
            ..Default::default()
        };
        prepare(&mut reaction, [5; 32], 42);
        assert!(reaction.message_context_info.is_none());
        assert_eq!(
            reaction.reaction_message.unwrap().sender_timestamp_ms,
            Some(42)
        );

        let mut edit = wa::Message {
            edited_message: Some(Box::new(wa::message::FutureProofMessage {
                message: Some(Box::new(protocol(PROTOCOL_MESSAGE_EDIT, true, true))),
            })),
            ..Default::default()
        };
        prepare(&mut edit, [5; 32], 43);
        let inner = edit.edited_message.unwrap().message.unwrap();
        assert_eq!(inner.protocol_message.unwrap().timestamp_ms, Some(43));
    }
}
