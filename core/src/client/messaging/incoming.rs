//! Incoming `<message>` stanzas: who sent what to which chat, and their decryption.
//!
//! As the server delivers them (tulir/whatsmeow `message.go` `parseMessageInfo`;
//! WhiskeySockets/Baileys `src/Utils/decode-wa-message.ts` `decodeMessageNode`):
//! - from a peer: `<message from="<peer device>" id t type>`;
//! - a copy of our own message from another of our devices:
//!   `<message from="<own device>" recipient="<peer>" …>`;
//! - in a group: `<message from="<group>" participant="<sender device>" …>`.
//!
//! The content is one or more `<enc v="2" type="pkmsg|msg|skmsg">` children, decrypted in
//! order (a sender key distributed in a pkmsg/msg is used by the skmsg beside it). The whole
//! stanza decrypts or nothing changes: every record update is committed only after the last
//! `<enc>` decrypted. The other form of the sender's address arrives in `participant_pn`,
//! `sender_pn` (LID-addressed) or `participant_lid`, `sender_lid` (phone-number-addressed);
//! on a copy of our own message, `peer_recipient_pn` / `peer_recipient_lid` is the other form
//! of the recipient, the chat, not of the sender (tulir/whatsmeow `parseMessageSource`:
//! `RecipientAlt`; Baileys `extractAddressingContext` reads it as the sender's, which would map
//! our own number to the peer's LID).

use rand_core::CryptoRng;

use crate::binary::{BROADCAST_SERVER, GROUP_SERVER, HIDDEN_USER_SERVER};
use crate::binary::{Jid, Node};
use crate::limits::MESSAGING_MAX_ENCS_PER_STANZA;
use crate::proto::wa;
use crate::signal::{DecryptError, PreKeyId, PreKeySource};

use super::address::DeviceAddress;
use super::content::{Decoded, decode_padded};
use super::error::MessagingError;
use super::keystore::{HeldMessage, Keystore, OwnIdentity, SessionUpdate};
use super::usync::attr_text;

/// The kind of an `<enc>` child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncKind {
    /// A prekey message that may start a 1:1 session.
    PreKey,
    /// A message on an established 1:1 session.
    Whisper,
    /// A group message encrypted with the sender's sender key.
    SenderKey,
    /// Anything else (e.g. `msmsg` for bot messages), not decrypted by walink.
    Other(String),
}

/// One `<enc>` child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enc {
    /// Its type.
    pub kind: EncKind,
    /// The retry count (`count`), 0 when absent.
    pub count: u32,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

/// What an incoming message stanza says before decryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingStanza {
    /// The message id.
    pub id: String,
    /// The raw `from` attribute.
    pub from: String,
    /// The chat: the peer's user JID, the group JID, or (for our own messages from another
    /// device) the recipient.
    pub chat: String,
    /// The device that sent it.
    pub sender: DeviceAddress,
    /// The sender's user in the other address form, when the stanza says (user JID text).
    pub sender_alt: Option<String>,
    /// For our own messages from another device: the recipient's user in the other address
    /// form (`peer_recipient_pn` / `peer_recipient_lid`), when the stanza says.
    pub recipient_alt: Option<String>,
    /// The group, for group messages.
    pub group: Option<String>,
    /// Whether another device of our own account sent it.
    pub from_me: bool,
    /// The raw `participant` attribute.
    pub participant: Option<String>,
    /// The raw `recipient` attribute.
    pub recipient: Option<String>,
    /// The server timestamp (`t`, Unix seconds), 0 when absent.
    pub timestamp: u64,
    /// The `t` attribute as sent, for the retry receipt.
    pub t: Option<String>,
    /// The sender's push name (`notify`).
    pub push_name: Option<String>,
    /// The stanza `type` (`text`, `media` …).
    pub kind: String,
    /// The `category` attribute (`peer` for messages between our own devices).
    pub category: Option<String>,
    /// The `<enc>` children, in order.
    pub encs: Vec<Enc>,
}

impl IncomingStanza {
    /// The highest retry count among the `<enc>` children (0 for a first delivery).
    #[cfg(any(test, feature = "internals-for-benches"))]
    pub fn retry_count(&self) -> u32 {
        self.encs.iter().map(|enc| enc.count).max().unwrap_or(0)
    }
}

/// Parses an incoming `<message>` stanza.
pub fn parse_message(node: &Node, own: &OwnIdentity) -> Result<IncomingStanza, MessagingError> {
    if node.tag != "message" {
        return Err(MessagingError::Malformed("not a message"));
    }
    let id = node
        .attr_str("id")
        .filter(|id| !id.is_empty())
        .ok_or(MessagingError::Malformed("message without id"))?
        .to_owned();
    let from = node
        .attr_jid("from")
        .ok_or(MessagingError::Malformed("message without from"))?;
    let participant = attr_text(node, "participant");
    let recipient = attr_text(node, "recipient");
    // A status post (`status@broadcast`) or a broadcast list message is a group message whose
    // group is the broadcast JID (whatsmeow `parseMessageSource`; features.md 8.1).
    let (sender, chat, group) = if from.server == GROUP_SERVER || from.server == BROADCAST_SERVER {
        let participant = node
            .attr_jid("participant")
            .ok_or(MessagingError::Malformed(
                "group message without participant",
            ))?;
        let sender = DeviceAddress::from_jid(&participant)
            .map_err(|_| MessagingError::Malformed("bad participant"))?;
        (sender, from.to_string(), Some(from.to_string()))
    } else {
        let mut sender =
            DeviceAddress::from_jid(&from).map_err(|_| MessagingError::Malformed("bad from"))?;
        // Tolerated: a server that names the sending device in `participant` and the account in
        // `from` (the real server puts the device in `from`).
        if let Some(device) = node
            .attr_jid("participant")
            .and_then(|jid| DeviceAddress::from_jid(&jid).ok())
            .filter(|device| device.user == sender.user && device.lid == sender.lid)
        {
            sender = device;
        }
        let chat = match node.attr_jid("recipient") {
            Some(recipient) => {
                if !own.is_own_user(&sender) {
                    return Err(MessagingError::Malformed("recipient on a peer's message"));
                }
                recipient.to_non_device().to_string()
            }
            None => from.to_non_device().to_string(),
        };
        (sender, chat, None)
    };
    let from_me = own.is_own_user(&sender);
    let alt_keys: [&str; 2] = if sender.lid {
        ["participant_pn", "sender_pn"]
    } else {
        ["participant_lid", "sender_lid"]
    };
    let sender_alt = alt_keys
        .iter()
        .find_map(|key| node.attr_jid(key))
        .map(|jid| jid.to_non_device().to_string());
    let recipient_alt = if group.is_none() && recipient.is_some() {
        let chat_is_lid = chat
            .parse::<Jid>()
            .is_ok_and(|jid| jid.server == HIDDEN_USER_SERVER);
        let key = if chat_is_lid {
            "peer_recipient_pn"
        } else {
            "peer_recipient_lid"
        };
        node.attr_jid(key)
            .map(|jid| jid.to_non_device().to_string())
    } else {
        None
    };
    let t = node.attr_str("t").map(str::to_owned);
    let mut encs = Vec::new();
    for child in node.children_by_tag("enc") {
        let kind = match child.attr_str("type") {
            Some("pkmsg") => EncKind::PreKey,
            Some("msg") => EncKind::Whisper,
            Some("skmsg") => EncKind::SenderKey,
            Some(other) => EncKind::Other(other.to_owned()),
            None => return Err(MessagingError::Malformed("enc without type")),
        };
        let ciphertext = child
            .content_bytes()
            .ok_or(MessagingError::Malformed("enc without content"))?
            .to_vec();
        encs.push(Enc {
            kind,
            count: child
                .attr_str("count")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            ciphertext,
        });
    }
    Ok(IncomingStanza {
        id,
        from: from.to_string(),
        chat,
        sender,
        sender_alt,
        recipient_alt,
        group,
        from_me,
        participant,
        recipient,
        timestamp: t.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0),
        t,
        push_name: node.attr_str("notify").map(str::to_owned),
        kind: node.attr_str("type").unwrap_or("text").to_owned(),
        category: node.attr_str("category").map(str::to_owned),
        encs,
    })
}

/// Learns the phone-number/LID mappings the stanza's addressing attributes tell: the sender's,
/// and on a copy of our own message the recipient's.
pub fn learn_addressing(keystore: &mut Keystore, stanza: &IncomingStanza) {
    learn_pair(
        keystore,
        &stanza.sender.to_jid().to_non_device().to_string(),
        stanza.sender_alt.as_deref(),
    );
    if stanza.from_me && stanza.group.is_none() {
        learn_pair(keystore, &stanza.chat, stanza.recipient_alt.as_deref());
    }
}

/// Learns that user JIDs `known` and `alt` (text) are the two forms of one account, when one
/// is a phone number and the other a LID.
fn learn_pair(keystore: &mut Keystore, known: &str, alt: Option<&str>) {
    let (Ok(known), Some(Ok(alt))) = (known.parse::<Jid>(), alt.map(str::parse::<Jid>)) else {
        return;
    };
    let (Ok(known), Ok(alt)) = (
        DeviceAddress::from_jid(&known),
        DeviceAddress::from_jid(&alt),
    ) else {
        return;
    };
    match (known.lid, alt.lid) {
        (true, false) => keystore.learn_lid(&alt.user, &known.user),
        (false, true) => keystore.learn_lid(&known.user, &alt.user),
        _ => {}
    }
}

/// A decrypted message.
#[derive(Clone, Debug, PartialEq)]
pub struct Decrypted {
    /// The content (a device-sent wrapper removed).
    pub message: wa::Message,
    /// The content's bytes as they arrived (unknown fields kept).
    pub raw: Vec<u8>,
    /// Whether it carries content for the user (not only a sender key).
    pub has_content: bool,
    /// For our own messages from another device: the chat the wrapper named.
    pub device_sent_to: Option<String>,
    /// One-time prekeys consumed: the caller deletes them.
    pub consumed_pre_keys: Vec<PreKeyId>,
}

/// A stanza decrypted but not committed: the keystore is unchanged until
/// [`commit_message`], and dropping it leaves everything as it was.
#[derive(Debug)]
pub struct Opened {
    /// What the stanza decrypted to.
    pub decoded: Decoded,
    updates: Vec<SessionUpdate>,
}

/// What a retry receipt for `stanza` needs, kept when its sender's identity waits for approval.
pub fn held_message(stanza: &IncomingStanza) -> HeldMessage {
    HeldMessage {
        id: stanza.id.clone(),
        from: stanza.from.clone(),
        participant: stanza.participant.clone(),
        recipient: stanza.recipient.clone(),
        t: stanza.t.clone(),
    }
}

/// Adds `update` to the stanza's uncommitted updates, replacing an earlier one for the same
/// session or sender key (one working copy per record, however many `<enc>` use it).
fn upsert(updates: &mut Vec<SessionUpdate>, update: SessionUpdate) {
    let same = updates.iter().position(|old| match (old, &update) {
        (SessionUpdate::Session { address: a, .. }, SessionUpdate::Session { address: b, .. }) => {
            a == b
        }
        (
            SessionUpdate::SenderKey {
                group: g1,
                sender: s1,
                ..
            },
            SessionUpdate::SenderKey {
                group: g2,
                sender: s2,
                ..
            },
        ) => g1 == g2 && s1 == s2,
        _ => false,
    });
    let Some(at) = same else {
        updates.push(update);
        return;
    };
    let Some(old) = updates.get_mut(at) else {
        return;
    };
    match (old, update) {
        (
            SessionUpdate::Session {
                record,
                identity,
                consumed_pre_key,
                ..
            },
            SessionUpdate::Session {
                record: new_record,
                identity: new_identity,
                consumed_pre_key: new_consumed,
                ..
            },
        ) => {
            *record = new_record;
            *identity = new_identity.or(*identity);
            *consumed_pre_key = consumed_pre_key.or(new_consumed);
        }
        (old, update) => *old = update,
    }
}

/// Decrypts every `<enc>` of a stanza. On any failure nothing in the keystore changes.
///
/// A stanza is one message: it is refused as a whole, before anything is committed, when it
/// carries more than [`MESSAGING_MAX_ENCS_PER_STANZA`] `<enc>` children, when one of them uses
/// a message key an earlier one of the same stanza used (a replay inside the stanza: each
/// `<enc>` continues from the state the previous one left), or when more than one carries a
/// message for the user (several messages stitched into one stanza would lose all but one).
/// Under `IdentityPolicy::Strict`, a sender whose identity key changed is refused too (the
/// stanza is held to be asked for again once the key is approved).
#[cfg(any(test, feature = "internals-for-benches"))]
pub fn decrypt_message<R: CryptoRng + ?Sized, P: PreKeySource + ?Sized>(
    keystore: &mut Keystore,
    stanza: &IncomingStanza,
    pre_keys: &P,
    rng: &mut R,
) -> Result<Decrypted, MessagingError> {
    let opened = open_message(keystore, stanza, pre_keys, rng)?;
    commit_message(keystore, stanza, opened)
}

/// Decrypts every `<enc>` of a stanza without changing the keystore (the first half of
/// [`decrypt_message`]): the caller may look at the content, and either commit it or drop it
/// and decrypt the stanza again later (the content module does when a poll vote needs the poll's
/// record loaded first).
pub fn open_message<R: CryptoRng + ?Sized, P: PreKeySource + ?Sized>(
    keystore: &Keystore,
    stanza: &IncomingStanza,
    pre_keys: &P,
    rng: &mut R,
) -> Result<Opened, MessagingError> {
    if stanza.encs.len() > MESSAGING_MAX_ENCS_PER_STANZA {
        return Err(MessagingError::TooManyEncs {
            count: stanza.encs.len(),
        });
    }
    let mut updates: Vec<SessionUpdate> = Vec::new();
    let mut content: Option<Decoded> = None;
    let mut fallback: Option<Decoded> = None;
    let mut decrypted_any = false;
    for enc in &stanza.encs {
        let result = match &enc.kind {
            EncKind::PreKey | EncKind::Whisper => keystore.decrypt(
                &stanza.sender,
                enc.kind == EncKind::PreKey,
                &enc.ciphertext,
                &updates,
                (pre_keys, &mut *rng),
            ),
            EncKind::SenderKey => {
                let group = stanza
                    .group
                    .as_deref()
                    .ok_or(MessagingError::Malformed("skmsg outside a group"))?;
                keystore.group_decrypt(group, &stanza.sender, &enc.ciphertext, &updates)
            }
            EncKind::Other(_) => continue,
        };
        let (plaintext, update) = match result {
            Ok(done) => done,
            // A key an earlier `<enc>` of this stanza used: not a redelivery of a message
            // received before (that fails on its first `<enc>`), but a replay inside it.
            Err(MessagingError::Decrypt(DecryptError::DuplicateMessage { .. }))
                if decrypted_any =>
            {
                return Err(MessagingError::ReplayedEnc);
            }
            Err(error) => return Err(error),
        };
        upsert(&mut updates, update);
        decrypted_any = true;
        let decoded = decode_padded(&plaintext)?;
        if decoded.device_sent_to.is_some() && !stanza.from_me {
            return Err(MessagingError::Malformed(
                "deviceSentMessage from another account",
            ));
        }
        if let Some((group, distribution)) = &decoded.sender_key {
            // A distribution is only accepted for the group the stanza belongs to (or, in a
            // 1:1 pkmsg/msg, for the group it names: WhatsApp sends it that way on retries).
            if stanza.group.as_deref().is_none_or(|g| g == group) {
                let update =
                    keystore.process_distribution(group, &stanza.sender, distribution, &updates)?;
                upsert(&mut updates, update);
            }
        }
        if decoded.has_content {
            if content.is_some() {
                return Err(MessagingError::SeveralMessages);
            }
            content = Some(decoded);
        } else if fallback.is_none() {
            fallback = Some(decoded);
        }
    }
    if !decrypted_any {
        return Err(MessagingError::Malformed("no decryptable enc"));
    }
    let decoded = content
        .or(fallback)
        .ok_or(MessagingError::Malformed("no decryptable enc"))?;
    Ok(Opened { decoded, updates })
}

/// Commits an [`open_message`]: admits the identities it met (under the identity policy) and
/// applies its session and sender-key updates.
pub fn commit_message(
    keystore: &mut Keystore,
    stanza: &IncomingStanza,
    opened: Opened,
) -> Result<Decrypted, MessagingError> {
    keystore.admit_identities(&opened.updates, &held_message(stanza))?;
    let consumed_pre_keys = keystore.commit(opened.updates);
    let decoded = opened.decoded;
    Ok(Decrypted {
        has_content: decoded.has_content,
        message: decoded.message,
        raw: decoded.raw,
        device_sent_to: decoded.device_sent_to,
        consumed_pre_keys,
    })
}
