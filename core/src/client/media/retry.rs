//! The media re-upload request ("media retry") and the phone's answer.
//!
//! ```text
//! retryKey = HKDF-SHA256(mediaKey, salt none, "WhatsApp Media Retry Notification", 32)
//! <receipt id=<message id> to=<own user, non-AD> type="server-error">
//!   <encrypt><enc_p>AES-256-GCM(retryKey, iv, aad = id, ServerErrorReceipt{id})</enc_p>
//!            <enc_iv>iv (12 bytes)</enc_iv></encrypt>
//!   <rmr jid=<chat> from_me="true|false" [participant=<sender>]/>
//! </receipt>
//! ```
//! answered by `<notification type="mediaretry" id=<message id>>` holding `<rmr …/>` and either
//! `<error code=…/>` or the same `<encrypt>` sealing a `MediaRetryNotification` (whatsmeow
//! mediaretry.go, Baileys `encryptMediaRetryRequest` / `decodeMediaRetryNode`).

use prost::Message as _;
use zeroize::Zeroizing;

use crate::binary::Node;
use crate::proto::wa::{MediaRetryNotification, ServerErrorReceipt, media_retry_notification};

const RETRY_INFO: &[u8] = b"WhatsApp Media Retry Notification";

/// The re-upload request's addressing.
pub(crate) struct RetryTarget<'a> {
    pub(crate) message_id: &'a str,
    pub(crate) own_user: &'a str,
    pub(crate) chat: &'a str,
    pub(crate) from_me: bool,
    pub(crate) participant: Option<&'a str>,
}

fn retry_key(media_key: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    walink_crypto::hkdf_sha256(None, media_key, RETRY_INFO, key.as_mut_slice()).then_some(key)
}

/// The `<receipt type="server-error">` asking the phone to upload the media again.
pub(crate) fn request(media_key: &[u8], iv: [u8; 12], target: &RetryTarget<'_>) -> Option<Node> {
    let key = retry_key(media_key)?;
    let payload = ServerErrorReceipt {
        stanza_id: Some(target.message_id.to_owned()),
    }
    .encode_to_vec();
    let sealed =
        walink_crypto::Aes256GcmKey::new(&key).seal(&iv, target.message_id.as_bytes(), &payload)?;
    let mut rmr = Node::new("rmr")
        .attr("jid", target.chat.to_owned())
        .attr("from_me", if target.from_me { "true" } else { "false" });
    if let Some(participant) = target.participant {
        rmr = rmr.attr("participant", participant.to_owned());
    }
    let encrypt = Node::new("encrypt").children_from([
        Node::new("enc_p").bytes(sealed),
        Node::new("enc_iv").bytes(iv.to_vec()),
    ]);
    Some(
        Node::new("receipt")
            .attr("id", target.message_id.to_owned())
            .attr("to", target.own_user.to_owned())
            .attr("type", "server-error")
            .children_from([encrypt, rmr]),
    )
}

/// The `<receipt type="server-error" category="peer">` asking our phone to upload an expired
/// history blob again: the same sealed payload as a media retry, for the notification's
/// message `message_id`, without `<rmr>` (whatsmeow `SendHistorySyncServerErrorReceipt`).
pub(crate) fn history_request(
    media_key: &[u8],
    iv: [u8; 12],
    message_id: &str,
    own_user: &str,
) -> Option<Node> {
    let mut node = request(
        media_key,
        iv,
        &RetryTarget {
            message_id,
            own_user,
            chat: "",
            from_me: false,
            participant: None,
        },
    )?;
    if let crate::binary::Content::Nodes(children) = &mut node.content {
        children.retain(|child| child.tag != "rmr");
    }
    node.set_attr("category", "peer");
    Some(node)
}

/// What the phone answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RetryAnswer {
    /// Uploaded again at this direct path.
    Uploaded { direct_path: String },
    /// The phone could not (`<error code>`, a result other than success, or an answer that
    /// does not open with the media key).
    Failed,
}

/// Reads a `mediaretry` notification for the media of `media_key`, sent as message `id`.
pub(crate) fn answer(node: &Node, id: &str, media_key: &[u8]) -> RetryAnswer {
    let opened = (|| {
        let encrypt = node.child("encrypt")?;
        let sealed = encrypt.child("enc_p")?.content_bytes()?;
        let iv: [u8; 12] = encrypt.child("enc_iv")?.content_bytes()?.try_into().ok()?;
        let key = retry_key(media_key)?;
        let plain = walink_crypto::Aes256GcmKey::new(&key).open(&iv, id.as_bytes(), sealed)?;
        MediaRetryNotification::decode(plain.as_slice()).ok()
    })();
    let Some(notification) = opened else {
        return RetryAnswer::Failed;
    };
    let success = notification.result == Some(media_retry_notification::ResultType::Success as i32);
    match notification.direct_path {
        Some(direct_path)
            if success
                && direct_path.starts_with('/')
                && notification.stanza_id.as_deref() == Some(id) =>
        {
            RetryAnswer::Uploaded { direct_path }
        }
        _ => RetryAnswer::Failed,
    }
}

/// The phone's side, for the tests of this crate and walink-sim's own implementation to be
/// checked against: seals `notification` as the answer to message `id`.
#[cfg(test)]
pub(crate) fn seal_answer(
    media_key: &[u8],
    id: &str,
    iv: [u8; 12],
    notification: &MediaRetryNotification,
) -> Node {
    let key = retry_key(media_key).unwrap_or_default();
    let sealed = walink_crypto::Aes256GcmKey::new(&key)
        .seal(&iv, id.as_bytes(), &notification.encode_to_vec())
        .unwrap_or_default();
    Node::new("notification")
        .attr("type", "mediaretry")
        .attr("id", id.to_owned())
        .children_from([Node::new("encrypt").children_from([
            Node::new("enc_p").bytes(sealed),
            Node::new("enc_iv").bytes(iv.to_vec()),
        ])])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_key_matches_the_known_answer() {
        let media_key: Vec<u8> = (0u8..32).collect();
        let key = retry_key(&media_key).unwrap();
        assert_eq!(
            hex::encode(*key),
            "c84dfe50a708e0ec382a7ad2ba40135256f41b652cebe2129661d27871111cb2"
        );
    }

    #[test]
    fn a_history_reupload_request_is_a_peer_receipt_without_rmr() {
        let media_key = [7u8; 32];
        let node = history_request(&media_key, [3; 12], "3EB0HIST", "1555@s.whatsapp.net").unwrap();
        assert_eq!(node.tag, "receipt");
        assert_eq!(node.attr_str("id"), Some("3EB0HIST"));
        assert_eq!(node.attr_str("to"), Some("1555@s.whatsapp.net"));
        assert_eq!(node.attr_str("type"), Some("server-error"));
        assert_eq!(node.attr_str("category"), Some("peer"));
        assert!(node.child("rmr").is_none());
        assert_eq!(node.children().len(), 1);
        let encrypt = node.child("encrypt").unwrap();
        let sealed = encrypt.child("enc_p").unwrap().content_bytes().unwrap();
        let key = retry_key(&media_key).unwrap();
        let plain = walink_crypto::Aes256GcmKey::new(&key)
            .open(&[3; 12], b"3EB0HIST", sealed)
            .unwrap();
        let receipt = ServerErrorReceipt::decode(plain.as_slice()).unwrap();
        assert_eq!(receipt.stanza_id.as_deref(), Some("3EB0HIST"));
    }

    #[test]
    fn request_opens_with_the_key_and_answers_are_checked() {
        let media_key = [5u8; 32];
        let target = RetryTarget {
            message_id: "3EB0AA",
            own_user: "1555@s.whatsapp.net",
            chat: "120363@g.us",
            from_me: false,
            participant: Some("1666@s.whatsapp.net"),
        };
        let node = request(&media_key, [1; 12], &target).unwrap();
        assert_eq!(node.attr_str("type"), Some("server-error"));
        assert_eq!(node.attr_str("to"), Some("1555@s.whatsapp.net"));
        let rmr = node.child("rmr").unwrap();
        assert_eq!(rmr.attr_str("participant"), Some("1666@s.whatsapp.net"));
        let sealed = node.child("encrypt").unwrap().child("enc_p").unwrap();
        let key = retry_key(&media_key).unwrap();
        let plain = walink_crypto::Aes256GcmKey::new(&key)
            .open(&[1; 12], b"3EB0AA", sealed.content_bytes().unwrap())
            .unwrap();
        let receipt = ServerErrorReceipt::decode(plain.as_slice()).unwrap();
        assert_eq!(receipt.stanza_id.as_deref(), Some("3EB0AA"));

        let ok = MediaRetryNotification {
            stanza_id: Some("3EB0AA".into()),
            direct_path: Some("/v/new".into()),
            result: Some(media_retry_notification::ResultType::Success as i32),
            message_secret: None,
        };
        let good = seal_answer(&media_key, "3EB0AA", [2; 12], &ok);
        assert_eq!(
            answer(&good, "3EB0AA", &media_key),
            RetryAnswer::Uploaded {
                direct_path: "/v/new".into()
            }
        );
        assert_eq!(answer(&good, "3EB0AA", &[6; 32]), RetryAnswer::Failed);
        assert_eq!(answer(&good, "OTHER", &media_key), RetryAnswer::Failed);
        let not_found = MediaRetryNotification {
            result: Some(media_retry_notification::ResultType::NotFound as i32),
            ..ok.clone()
        };
        let node = seal_answer(&media_key, "3EB0AA", [2; 12], &not_found);
        assert_eq!(answer(&node, "3EB0AA", &media_key), RetryAnswer::Failed);
        let error = Node::new("notification").children_from([Node::new("error").attr("code", "2")]);
        assert_eq!(answer(&error, "3EB0AA", &media_key), RetryAnswer::Failed);
    }
}
