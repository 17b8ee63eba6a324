//! Acks, delivery and read receipts, and retry receipts, as WhatsApp Web sends them.
//!
//! - ack (WhiskeySockets/Baileys `src/Utils/stanza-ack.ts` `buildAckStanza`, which follows
//!   WA Web's `WAWebHandleMsgSendAck`): `<ack id=… to=<from> class=<tag> [participant]
//!   [recipient] [type] [from=<own jid> for messages] [error=<code>]>`. A message that
//!   decrypted is answered with a delivery receipt instead; a message that did not is answered
//!   with a retry receipt and a nack (`error` set).
//! - delivery receipt (Baileys `sendReceipt`; tulir/whatsmeow `receipt.go`
//!   `sendMessageReceipt`): `<receipt id to=<chat> [participant=<sender> in groups]>`, with
//!   `type="sender"` (and `to=<sender device>`, `recipient=<chat>` for 1:1) for our own
//!   messages from another device, `type="peer_msg"` for `category="peer"` messages.
//! - read receipt: `<receipt id to=<chat> [participant] type="read" t=<seconds>>` with further
//!   ids in `<list><item id/></list>`.
//! - retry receipt (Baileys `sendRetryRequest`; whatsmeow `retry.go` `sendRetryReceipt`):
//!   `<receipt id to=<from> type="retry" [participant] [recipient]><retry count id t v="1"
//!   error="0"/><registration>4 bytes</registration>[<keys>…</keys>]</receipt>`; the keys
//!   (a fresh one-time prekey, our signed prekey, identity and device identity) are included
//!   from the second retry on, or at once when we have no session with the sender.

use crate::binary::{Jid, Node, Value};
use crate::signal::{DecryptError, PreKeyBundle};

use super::address::DeviceAddress;
use super::error::MessagingError;
use super::incoming::IncomingStanza;
use super::keystore::HeldMessage;
use super::prekeys::{parse_bundle, parse_registration, registration_bytes};
use super::usync::attr_text;

fn jid_or_text(text: &str) -> Value {
    match text.parse::<Jid>() {
        Ok(jid) => Value::Jid(jid),
        Err(_) => Value::Str(text.to_owned().into()),
    }
}

/// The ack for any stanza the server expects one for; `error` makes it a nack.
pub fn build_ack(node: &Node, own_jid: Option<&Jid>, error: Option<u16>) -> Node {
    let mut ack = Node::new("ack").attr("id", attr_text(node, "id").unwrap_or_default());
    if let Some(from) = node.get_attr("from") {
        ack = ack.attr("to", from.clone());
    }
    ack = ack.attr("class", node.tag.clone());
    if let Some(error) = error {
        ack = ack.attr("error", error.to_string());
    }
    for key in ["participant", "recipient", "type"] {
        if let Some(value) = node.get_attr(key) {
            ack = ack.attr(key, value.clone());
        }
    }
    if node.tag == "message" {
        if let Some(own) = own_jid {
            ack = ack.attr("from", Value::Jid(own.clone()));
        }
    }
    ack
}

/// The delivery receipt for a message that decrypted.
pub fn build_delivery_receipt(stanza: &IncomingStanza) -> Node {
    let mut receipt = Node::new("receipt").attr("id", stanza.id.clone());
    if stanza.category.as_deref() == Some("peer") {
        return receipt
            .attr("to", jid_or_text(&stanza.from))
            .attr("type", "peer_msg");
    }
    if stanza.from_me {
        if stanza.group.is_some() {
            receipt = receipt
                .attr("to", jid_or_text(&stanza.chat))
                .attr("participant", Value::Jid(stanza.sender.to_jid()));
        } else {
            receipt = receipt
                .attr("to", Value::Jid(stanza.sender.to_jid()))
                .attr("recipient", jid_or_text(&stanza.chat));
        }
        return receipt.attr("type", "sender");
    }
    receipt = receipt.attr("to", jid_or_text(&stanza.chat));
    if stanza.group.is_some() {
        receipt = receipt.attr("participant", Value::Jid(stanza.sender.to_jid()));
    }
    receipt
}

/// A read receipt for `ids` (at least one) in `chat`; `participant` is the sender in a group.
pub fn build_read_receipt(
    chat: &str,
    participant: Option<&str>,
    ids: &[String],
    now_ms: u64,
) -> Result<Node, MessagingError> {
    let (first, rest) = ids
        .split_first()
        .ok_or(MessagingError::Malformed("read receipt without ids"))?;
    let chat: Jid = chat.parse().map_err(|_| MessagingError::InvalidAddress)?;
    let mut receipt = Node::new("receipt")
        .attr("id", first.clone())
        .attr("to", Value::Jid(chat));
    if let Some(participant) = participant {
        let participant: Jid = participant
            .parse()
            .map_err(|_| MessagingError::InvalidAddress)?;
        receipt = receipt.attr("participant", Value::Jid(participant));
    }
    receipt = receipt
        .attr("type", "read")
        .attr("t", (now_ms / 1000).to_string());
    if !rest.is_empty() {
        receipt = receipt.children_from([Node::new("list").children_from(
            rest.iter()
                .map(|id| Node::new("item").attr("id", id.clone())),
        )]);
    }
    Ok(receipt)
}

/// Whether a retry receipt for this failure must carry our keys: from the second retry on, or
/// when the sender's session with us is gone (no session, unknown prekey).
pub fn retry_needs_keys(retry_count: u32, error: &MessagingError) -> bool {
    retry_count > 1
        || matches!(
            error,
            MessagingError::Decrypt(
                DecryptError::NoSession
                    | DecryptError::MissingPreKey(_)
                    | DecryptError::MissingSignedPreKey(_)
                    | DecryptError::NoSenderKey { .. }
            )
        )
}

/// The retry receipt asking the sender of `stanza` to encrypt it again. `retry_count` is this
/// request's number (1 for the first); `keys` the `<keys>` block
/// ([`super::prekeys::build_keys_node`]) when [`retry_needs_keys`].
pub fn build_retry_receipt(
    stanza: &IncomingStanza,
    retry_count: u32,
    registration_id: u32,
    keys: Option<Node>,
) -> Node {
    build_retry_request(
        &super::incoming::held_message(stanza),
        retry_count,
        registration_id,
        keys,
    )
}

/// The retry receipt for a message known by its id and addressing attributes (a stanza
/// refused earlier and asked for again).
pub fn build_retry_request(
    message: &HeldMessage,
    retry_count: u32,
    registration_id: u32,
    keys: Option<Node>,
) -> Node {
    let mut receipt = Node::new("receipt")
        .attr("id", message.id.clone())
        .attr("type", "retry")
        .attr("to", jid_or_text(&message.from));
    if let Some(recipient) = &message.recipient {
        receipt = receipt.attr("recipient", jid_or_text(recipient));
    }
    if let Some(participant) = &message.participant {
        receipt = receipt.attr("participant", jid_or_text(participant));
    }
    let mut retry = Node::new("retry")
        .attr("count", retry_count.to_string())
        .attr("id", message.id.clone());
    if let Some(t) = &message.t {
        retry = retry.attr("t", t.clone());
    }
    retry = retry.attr("v", "1").attr("error", "0");
    let mut children = vec![
        retry,
        Node::new("registration").bytes(registration_bytes(registration_id)),
    ];
    children.extend(keys);
    receipt.children_from(children)
}

/// What kind of receipt arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiptKind {
    /// Delivered to a device (no `type`).
    Delivery,
    /// Read by the recipient.
    Read,
    /// Read on another of our devices with read receipts off (`read-self`).
    ReadSelf,
    /// Played (voice notes).
    Played,
    /// Delivered to another of our devices (`sender`).
    Sender,
    /// Delivered with the recipient inactive (`inactive`).
    Inactive,
    /// A retry request.
    Retry(RetryRequest),
    /// Any other type.
    Other(String),
}

/// A retry request's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryRequest {
    /// The retry count (1 for the first request).
    pub count: u32,
    /// The requester's registration id.
    pub registration_id: Option<u32>,
    /// The requester's fresh bundle, when it sent `<keys>`.
    pub bundle: Option<PreKeyBundle>,
}

/// An incoming `<receipt>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingReceipt {
    /// The message ids it covers (the `id` attribute first, then `<list><item>`s).
    pub ids: Vec<String>,
    /// The raw `from` attribute.
    pub from: String,
    /// The device that sent it: `participant` in groups, else `from`.
    pub device: Option<DeviceAddress>,
    /// The raw `recipient` attribute.
    pub recipient: Option<String>,
    /// The server timestamp (`t`, seconds), 0 when absent.
    pub timestamp: u64,
    /// The kind.
    pub kind: ReceiptKind,
}

/// Parses an incoming `<receipt>`.
pub fn parse_receipt(node: &Node) -> Result<IncomingReceipt, MessagingError> {
    let id = node
        .attr_str("id")
        .ok_or(MessagingError::Malformed("receipt without id"))?;
    let from = attr_text(node, "from").ok_or(MessagingError::Malformed("receipt without from"))?;
    let mut ids = vec![id.to_owned()];
    if let Some(list) = node.child("list") {
        ids.extend(
            list.children_by_tag("item")
                .filter_map(|item| item.attr_str("id").map(str::to_owned)),
        );
    }
    let device = node
        .attr_jid("participant")
        .or_else(|| node.attr_jid("from"))
        .and_then(|jid| DeviceAddress::from_jid(&jid).ok());
    let kind = match node.attr_str("type") {
        None | Some("") => ReceiptKind::Delivery,
        Some("read") => ReceiptKind::Read,
        Some("read-self") => ReceiptKind::ReadSelf,
        Some("played") => ReceiptKind::Played,
        Some("sender") => ReceiptKind::Sender,
        Some("inactive") => ReceiptKind::Inactive,
        Some("retry") => {
            let retry = node
                .child("retry")
                .ok_or(MessagingError::Malformed("retry receipt without <retry>"))?;
            let registration_id = parse_registration(node).ok();
            let bundle = match (node.child("keys"), registration_id) {
                (Some(keys), Some(registration)) => Some(parse_bundle(keys, registration)?),
                _ => None,
            };
            ReceiptKind::Retry(RetryRequest {
                count: retry
                    .attr_str("count")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
                registration_id,
                bundle,
            })
        }
        Some(other) => ReceiptKind::Other(other.to_owned()),
    };
    Ok(IncomingReceipt {
        ids,
        from,
        device,
        recipient: attr_text(node, "recipient"),
        timestamp: node.attr_str("t").and_then(|t| t.parse().ok()).unwrap_or(0),
        kind,
    })
}
