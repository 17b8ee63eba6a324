//! The plaintext of an end-to-end encrypted message: WhatsApp's `Message` protobuf
//! (`core/proto/wa_e2e.proto`), WhatsApp's random padding, and the wrappers messaging adds.
//!
//! - Text: `conversation` (field 1) as WhatsApp Web and Baileys send plain text;
//!   `extendedTextMessage.text` (field 6) is read as text too.
//! - A copy for the sender's own other devices is wrapped in `deviceSentMessage` (field 31:
//!   `destinationJid` = the chat, `message` = the original), with the original's
//!   `messageContextInfo` (field 35) beside it (Baileys `relayMessage` `meMsg`; whatsmeow
//!   `send.go` `sendDM`).
//! - A sender key for a group travels in `senderKeyDistributionMessage` (field 2: `groupId`,
//!   `axolotlSenderKeyDistributionMessage`), alone in a pkmsg/msg to each member device that
//!   lacks it (Baileys `relayMessage`; whatsmeow `sendGroup`).
//! - Every serialized message is padded before encryption ([`crate::signal::pad`]).

use prost::Message as _;
use rand_core::CryptoRng;

use crate::content::wire;
use crate::limits::{MESSAGING_MAX_CONTENT_LIST, MESSAGING_MAX_NESTED_MESSAGES};
use crate::proto::wa;
use crate::proto_bounds;
use crate::proto_bounds::Field;
use crate::signal::{pad, unpad};

use super::error::MessagingError;

// --- bounds checked before a `Message` is decoded -----------------------------------------
//
// A `Message` nests: wrappers (`viewOnceMessage`, `ephemeralMessage`, ...), `deviceSentMessage`,
// edits and quoted messages each hold a whole boxed `Message`, a struct of several KB, for a few
// bytes on the wire, and a handful of lists hold structs of a hundred bytes for two. Plaintext
// comes from contacts (and `Command::SendMessage` from the host), so those are counted against
// `limits::MESSAGING_MAX_NESTED_MESSAGES` and `limits::MESSAGING_MAX_CONTENT_LIST` and charged
// to the plaintext's decode budget before prost sees it.

/// A boxed `Message` reached by field `number`.
const fn nested_message(number: u32) -> Field {
    Field {
        number,
        max: MESSAGING_MAX_NESTED_MESSAGES,
        size: size_of::<wa::Message>(),
        fields: &MESSAGE_FIELDS,
    }
}

/// A message field only looked into.
const fn into(number: u32, fields: &'static [Field]) -> Field {
    Field {
        number,
        max: usize::MAX,
        size: 0,
        fields,
    }
}

/// A list of `T` (field `number`).
const fn list<T>(number: u32) -> Field {
    Field {
        number,
        max: MESSAGING_MAX_CONTENT_LIST,
        size: size_of::<T>(),
        fields: &[],
    }
}

static MESSAGE_FIELDS: [Field; 31] = [
    into(3, &MEDIA_FIELDS),
    into(4, &MEDIA_FIELDS),
    into(5, &MEDIA_FIELDS),
    into(6, &MEDIA_FIELDS),
    into(7, &MEDIA_FIELDS),
    into(8, &MEDIA_FIELDS),
    into(9, &MEDIA_FIELDS),
    into(13, &CONTACTS_ARRAY_FIELDS),
    into(18, &MEDIA_FIELDS),
    into(26, &MEDIA_FIELDS),
    into(28, &GROUP_INVITE_FIELDS),
    into(66, &MEDIA_FIELDS),
    into(49, &POLL_FIELDS),
    into(60, &POLL_FIELDS),
    into(64, &POLL_FIELDS),
    into(111, &POLL_FIELDS),
    into(12, &PROTOCOL_FIELDS),
    into(31, &DEVICE_SENT_FIELDS),
    into(37, &FUTURE_PROOF_FIELDS),
    into(40, &FUTURE_PROOF_FIELDS),
    into(53, &FUTURE_PROOF_FIELDS),
    into(55, &FUTURE_PROOF_FIELDS),
    into(58, &FUTURE_PROOF_FIELDS),
    into(59, &FUTURE_PROOF_FIELDS),
    into(62, &FUTURE_PROOF_FIELDS),
    into(67, &FUTURE_PROOF_FIELDS),
    into(74, &FUTURE_PROOF_FIELDS),
    into(91, &FUTURE_PROOF_FIELDS),
    into(93, &FUTURE_PROOF_FIELDS),
    into(96, &FUTURE_PROOF_FIELDS),
    into(103, &FUTURE_PROOF_FIELDS),
];
/// `contextInfo` of the content messages.
static MEDIA_FIELDS: [Field; 1] = [into(17, &CONTEXT_INFO_FIELDS)];
static CONTEXT_INFO_FIELDS: [Field; 3] = [
    nested_message(3),
    list::<String>(15),
    list::<wa::GroupMention>(40),
];
/// `contactsArrayMessage`: its contacts (each with a `contextInfo`) and its own `contextInfo`.
static CONTACTS_ARRAY_FIELDS: [Field; 2] = [
    Field {
        number: 2,
        max: MESSAGING_MAX_CONTENT_LIST,
        size: size_of::<wa::message::ContactMessage>(),
        fields: &MEDIA_FIELDS,
    },
    into(17, &CONTEXT_INFO_FIELDS),
];
/// `groupInviteMessage.contextInfo`.
static GROUP_INVITE_FIELDS: [Field; 1] = [into(7, &CONTEXT_INFO_FIELDS)];
/// A poll's options and `contextInfo`.
static POLL_FIELDS: [Field; 2] = [
    list::<wa::message::poll_creation_message::Option>(3),
    into(5, &CONTEXT_INFO_FIELDS),
];
static FUTURE_PROOF_FIELDS: [Field; 1] = [nested_message(1)];
static DEVICE_SENT_FIELDS: [Field; 1] = [nested_message(2)];
static PROTOCOL_FIELDS: [Field; 6] = [
    nested_message(14),
    into(7, &KEY_SHARE_FIELDS),
    into(8, &KEY_REQUEST_FIELDS),
    into(10, &FATAL_FIELDS),
    into(16, &REQUEST_FIELDS),
    into(17, &RESPONSE_FIELDS),
];
static KEY_SHARE_FIELDS: [Field; 1] = [list::<wa::message::AppStateSyncKey>(1)];
static KEY_REQUEST_FIELDS: [Field; 1] = [list::<wa::message::AppStateSyncKeyId>(1)];
static FATAL_FIELDS: [Field; 1] = [list::<String>(1)];
static REQUEST_FIELDS: [Field; 1] = [list::<
    wa::message::peer_data_operation_request_message::PlaceholderMessageResendRequest,
>(5)];
static RESPONSE_FIELDS: [Field; 1] = [list::<
    wa::message::peer_data_operation_request_response_message::PeerDataOperationResult,
>(3)];

/// Decodes a `Message` once its nesting, lists and decoded size passed their bounds.
pub fn decode_message(bytes: &[u8]) -> Result<wa::Message, MessagingError> {
    proto_bounds::check(bytes, &MESSAGE_FIELDS).map_err(|_| MessagingError::BadProtobuf)?;
    wa::Message::decode(bytes).map_err(|_| MessagingError::BadProtobuf)
}

/// `messageContextInfo.deviceListMetadataVersion` as WhatsApp Web sends it.
pub use crate::content::outgoing::DEVICE_LIST_METADATA_VERSION;

/// A text message, with a fresh 32-byte message secret when given (WhatsApp Web attaches one to
/// every message; reactions, polls and edits derive keys from it).
pub fn text_message(text: &str, message_secret: Option<[u8; 32]>) -> wa::Message {
    wa::Message {
        conversation: Some(text.to_owned()),
        message_context_info: message_secret.map(|secret| wa::MessageContextInfo {
            device_list_metadata_version: Some(DEVICE_LIST_METADATA_VERSION),
            message_secret: Some(secret.to_vec()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The copy of `message` for the sender's own other devices.
#[cfg(any(test, feature = "internals-for-benches"))]
pub fn device_sent(destination: &str, message: &wa::Message) -> wa::Message {
    wa::Message {
        device_sent_message: Some(Box::new(wa::message::DeviceSentMessage {
            destination_jid: Some(destination.to_owned()),
            message: Some(Box::new(message.clone())),
            phash: None,
        })),
        message_context_info: message.message_context_info.clone(),
        ..Default::default()
    }
}

/// `Message.deviceSentMessage` and `Message.messageContextInfo`, and
/// `DeviceSentMessage.message` (core/proto/wa_e2e.proto).
const TAG_DEVICE_SENT: u32 = 31;
const TAG_CONTEXT_INFO: u32 = 35;
const TAG_DEVICE_SENT_MESSAGE: u32 = 2;
/// `Message.senderKeyDistributionMessage`.
const TAG_SENDER_KEY_DISTRIBUTION: u32 = 2;

/// The encoding of [`device_sent`]`(destination, message)`, byte for byte, written without
/// copying the message: prost encodes fields in tag order, so the wrapper is the destination,
/// then the message, and the outer message the wrapper, then the context info. (The copy
/// would link `Message`'s `Clone`, 6 KB of wasm; docs/decisions.md, "wasm size".)
pub(crate) fn device_sent_bytes(destination: &str, message: &wa::Message) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let head = wa::message::DeviceSentMessage {
        destination_jid: Some(destination.to_owned()),
        message: None,
        phash: None,
    };
    let mut wrapper = head.encode_to_vec();
    prost::encoding::message::encode(TAG_DEVICE_SENT_MESSAGE, message, &mut wrapper);
    let mut out = Vec::with_capacity(wrapper.len() + 16);
    encode_key(TAG_DEVICE_SENT, WireType::LengthDelimited, &mut out);
    encode_varint(wrapper.len() as u64, &mut out);
    out.extend_from_slice(&wrapper);
    if let Some(context) = &message.message_context_info {
        prost::encoding::message::encode(TAG_CONTEXT_INFO, context, &mut out);
    }
    out
}

/// The message that hands a group's sender key to one member device.
pub fn sender_key_distribution(group: &str, distribution: &[u8]) -> wa::Message {
    wa::Message {
        sender_key_distribution_message: Some(wa::message::SenderKeyDistributionMessage {
            group_id: Some(group.to_owned()),
            axolotl_sender_key_distribution_message: Some(distribution.to_vec()),
        }),
        ..Default::default()
    }
}

/// Serializes and pads a message for encryption.
pub fn encode_padded<R: CryptoRng + ?Sized>(message: &wa::Message, rng: &mut R) -> Vec<u8> {
    pad(&message.encode_to_vec(), rng)
}

/// What a decrypted plaintext holds once unpadded and unwrapped.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The message content, with any `deviceSentMessage` wrapper removed.
    pub message: wa::Message,
    /// The content's bytes as they arrived (the device-sent wrapper removed): unknown fields,
    /// which `message` drops, are kept here.
    pub raw: Vec<u8>,
    /// Whether the content holds anything for the user: a field other than the two protocol
    /// fields (a sender-key distribution, `messageContextInfo`), known to walink or not.
    pub has_content: bool,
    /// The chat a `deviceSentMessage` was sent to (`Some` only for own-device copies).
    pub device_sent_to: Option<String>,
    /// A sender-key distribution carried by the message: `(group, serialized SKDM)`.
    pub sender_key: Option<(String, Vec<u8>)>,
}

/// Unpads, decodes and unwraps a decrypted plaintext.
pub fn decode_padded(padded: &[u8]) -> Result<Decoded, MessagingError> {
    let body = unpad(padded)?;
    let outer = decode_message(body)?;
    let sender_key = outer
        .sender_key_distribution_message
        .as_ref()
        .and_then(skdm_parts);
    let (message, raw, device_sent_to) = match outer.device_sent_message {
        Some(wrapper) => {
            let wrapper = *wrapper;
            let mut inner = wrapper.message.map(|m| *m).unwrap_or_default();
            if inner.message_context_info.is_none() {
                inner.message_context_info = outer.message_context_info;
            }
            let raw = wire::embedded(body, TAG_DEVICE_SENT)
                .and_then(|sent| wire::embedded(sent, TAG_DEVICE_SENT_MESSAGE))
                .unwrap_or_default()
                .to_vec();
            (
                inner,
                raw,
                Some(wrapper.destination_jid.unwrap_or_default()),
            )
        }
        None => (outer, body.to_vec(), None),
    };
    let sender_key = sender_key.or_else(|| {
        message
            .sender_key_distribution_message
            .as_ref()
            .and_then(skdm_parts)
    });
    Ok(Decoded {
        has_content: raw_has_user_content(&raw),
        message,
        raw,
        device_sent_to,
        sender_key,
    })
}

/// Whether encoded message bytes hold a field other than the two protocol fields
/// (`senderKeyDistributionMessage`, `messageContextInfo`): any other field, known to walink or
/// not, is content for the user.
pub fn raw_has_user_content(raw: &[u8]) -> bool {
    wire::fields(raw).any(|field| {
        field.is_ok_and(|(number, _)| {
            number != TAG_SENDER_KEY_DISTRIBUTION && number != TAG_CONTEXT_INFO
        })
    })
}

fn skdm_parts(skdm: &wa::message::SenderKeyDistributionMessage) -> Option<(String, Vec<u8>)> {
    Some((
        skdm.group_id.clone()?,
        skdm.axolotl_sender_key_distribution_message.clone()?,
    ))
}

/// The text of a message: `conversation`, or `extendedTextMessage.text`.
pub fn text_of(message: &wa::Message) -> Option<&str> {
    message.conversation.as_deref().or_else(|| {
        message
            .extended_text_message
            .as_ref()
            .and_then(|extended| extended.text.as_deref())
    })
}

/// Whether a message carries content for the user (not only a sender key or protocol data).
#[cfg(any(test, feature = "internals-for-benches"))]
pub fn has_user_content(message: &wa::Message) -> bool {
    crate::content::has_content(message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// SplitMix64 for deterministic tests.
    pub(crate) use crate::signal::testing::BenchRng as Rng;

    #[test]
    fn nesting_and_lists_are_bounded_before_decoding() {
        // `n` `viewOnceMessage` wrappers around a text.
        let wrapped = |n: usize| {
            let mut message = text_message("inside", None);
            for _ in 0..n {
                message = wa::Message {
                    view_once_message: Some(Box::new(wa::message::FutureProofMessage {
                        message: Some(Box::new(message)),
                    })),
                    ..wa::Message::default()
                };
            }
            message.encode_to_vec()
        };
        assert!(decode_message(&wrapped(MESSAGING_MAX_NESTED_MESSAGES)).is_ok());
        assert!(decode_message(&wrapped(MESSAGING_MAX_NESTED_MESSAGES + 1)).is_err());
        // A key share of `n` empty keys (protocolMessage 12, appStateSyncKeyShare 7, keys 1).
        let field = |tag: u8, body: &[u8]| {
            let mut out = vec![tag];
            prost::encoding::encode_varint(body.len() as u64, &mut out);
            out.extend_from_slice(body);
            out
        };
        let share = |n: usize| field(0x62, &field(0x3A, &[0x0Au8, 0x00].repeat(n)));
        assert!(decode_message(&share(MESSAGING_MAX_CONTENT_LIST)).is_ok());
        assert!(decode_message(&share(MESSAGING_MAX_CONTENT_LIST + 1)).is_err());
    }

    #[test]
    fn text_round_trips_through_padding() {
        let mut rng = Rng(1);
        let message = text_message("hello", Some([7; 32]));
        let padded = encode_padded(&message, &mut rng);
        let decoded = decode_padded(&padded).unwrap();
        assert_eq!(decoded.message, message);
        assert_eq!(text_of(&decoded.message), Some("hello"));
        assert_eq!(decoded.device_sent_to, None);
        assert!(has_user_content(&decoded.message));
        // Field 1 (conversation) is the first thing on the wire.
        assert_eq!(&padded[..2], &[0x0a, 5]);
    }

    #[test]
    fn device_sent_unwraps_to_the_original() {
        let mut rng = Rng(2);
        let message = text_message("to bob", Some([1; 32]));
        let wrapped = device_sent("123@s.whatsapp.net", &message);
        let decoded = decode_padded(&encode_padded(&wrapped, &mut rng)).unwrap();
        assert_eq!(decoded.message, message);
        assert_eq!(
            decoded.device_sent_to.as_deref(),
            Some("123@s.whatsapp.net")
        );
    }

    #[test]
    fn device_sent_bytes_match_the_wrapper_encoding() {
        let skdm = sender_key_distribution("1-2@g.us", &[0x33, 1, 2]);
        let long = text_message(&"x".repeat(300), Some([7; 32]));
        for message in [
            wa::Message::default(),
            text_message("to bob", Some([1; 32])),
            text_message("no context", None),
            long,
            skdm,
        ] {
            for destination in ["123@s.whatsapp.net", ""] {
                assert_eq!(
                    device_sent_bytes(destination, &message),
                    device_sent(destination, &message).encode_to_vec(),
                    "{message:?}"
                );
            }
        }
    }

    #[test]
    fn sender_key_distribution_is_found() {
        let mut rng = Rng(3);
        let skdm = sender_key_distribution("1-2@g.us", &[0x33, 1, 2]);
        let decoded = decode_padded(&encode_padded(&skdm, &mut rng)).unwrap();
        assert_eq!(
            decoded.sender_key,
            Some(("1-2@g.us".to_owned(), vec![0x33, 1, 2]))
        );
        assert!(!has_user_content(&decoded.message));
        assert_eq!(text_of(&decoded.message), None);
    }

    #[test]
    fn user_content_is_any_field_but_the_two_protocol_ones() {
        let skdm = sender_key_distribution("1-2@g.us", &[0x33, 1, 2]);
        let empty_text = wa::Message {
            conversation: Some(String::new()),
            ..wa::Message::default()
        };
        let empty_image = wa::Message {
            image_message: Some(Default::default()),
            ..wa::Message::default()
        };
        let context_only = wa::Message {
            message_context_info: Some(Default::default()),
            ..wa::Message::default()
        };
        for message in [
            wa::Message::default(),
            skdm.clone(),
            context_only.clone(),
            empty_text.clone(),
            empty_image.clone(),
            wa::Message {
                conversation: Some("hi".to_owned()),
                ..skdm.clone()
            },
        ] {
            // The definition: a copy without the two fields differs from the default.
            let mut bare = message.clone();
            bare.sender_key_distribution_message = None;
            bare.message_context_info = None;
            assert_eq!(
                has_user_content(&message),
                bare != wa::Message::default(),
                "{message:?}"
            );
        }
        assert!(has_user_content(&empty_text));
        assert!(has_user_content(&empty_image));
        assert!(!has_user_content(&context_only));
    }

    #[test]
    fn refuses_bad_padding_and_protobuf() {
        assert!(matches!(
            decode_padded(&[1, 2, 0]),
            Err(MessagingError::Padding(_))
        ));
        assert_eq!(
            decode_padded(&[0xff, 0xff, 2, 2]),
            Err(MessagingError::BadProtobuf)
        );
    }
}
