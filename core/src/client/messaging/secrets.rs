//! Message secrets, kept so that the add-ons sealed with them open: encrypted reactions and
//! secret-encrypted edits ([`crate::content::addon`]) arrive as the plain reaction or edit they
//! carry.
//!
//! Every message sent, received or read from the history sync that carries a
//! `messageContextInfo.messageSecret` is kept in [`Space::MessageSecret`] under `<chat>|<id>`
//! (chat in the form the message arrived in), the value `01 || secret (32 bytes) || author`
//! (the author a user JID without a device). Records are loaded on demand: an incoming sealed
//! add-on waits once, uncommitted, like a poll vote, and is opened when its target's record is
//! in. At most [`CONTENT_SECRET_CACHE`] records stay in memory.

use zeroize::Zeroizing;

use crate::binary::Jid;
use crate::content::addon;
use crate::content::poll::SECRET_LEN;
use crate::limits::CONTENT_SECRET_CACHE;
use crate::proto::wa;
use crate::store::{Change, Record, RecordKey, Space};

use super::polls::{Received, forms};

/// The format byte of a message-secret record.
const FORMAT: u8 = 1;

/// The record key of message `id` in `chat`.
fn record_key(chat: &str, id: &str) -> String {
    format!("{chat}|{id}")
}

/// A kept secret and the message's author.
struct Kept {
    secret: Zeroizing<[u8; SECRET_LEN]>,
    author: Jid,
}

/// The record keeping the secret `message` carries (sent or received as `id` in `chat` by
/// `author`), if it carries one of 32 bytes.
pub(crate) fn keep_change(
    chat: &Jid,
    id: &str,
    author: &Jid,
    message: &wa::Message,
) -> Option<Change> {
    let secret = message
        .message_context_info
        .as_ref()?
        .message_secret
        .as_deref()
        .filter(|secret| secret.len() == SECRET_LEN)?;
    if id.is_empty() {
        return None;
    }
    let author = author.to_non_device().to_string();
    let mut value = Vec::with_capacity(1 + SECRET_LEN + author.len());
    value.push(FORMAT);
    value.extend_from_slice(secret);
    value.extend_from_slice(author.as_bytes());
    Some(Change::Put(Record {
        space: Space::MessageSecret,
        key: record_key(&chat.to_non_device().to_string(), id),
        value,
    }))
}

fn decode(value: &[u8]) -> Option<Kept> {
    let (&format, rest) = value.split_first()?;
    if format != FORMAT || rest.len() < SECRET_LEN {
        return None;
    }
    let (secret, author) = rest.split_at(SECRET_LEN);
    let mut kept = Zeroizing::new([0u8; SECRET_LEN]);
    kept.copy_from_slice(secret);
    let author = core::str::from_utf8(author).ok()?.parse::<Jid>().ok()?;
    Some(Kept {
        secret: kept,
        author,
    })
}

/// The message id a sealed add-on in `content` targets.
fn sealed_target(content: &wa::Message) -> Option<&str> {
    let key = content
        .enc_reaction_message
        .as_ref()
        .and_then(|m| m.target_message_key.as_ref())
        .or_else(|| {
            content
                .secret_encrypted_message
                .as_ref()
                .and_then(|m| m.target_message_key.as_ref())
        })?;
    key.id.as_deref().filter(|id| !id.is_empty())
}

/// The message secrets in memory (each `None` when known to be absent), oldest first.
#[derive(Default)]
pub(crate) struct Secrets {
    cache: Vec<(String, Option<Kept>)>,
}

impl core::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Secrets")
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl Secrets {
    fn cached(&self, key: &str) -> Option<&Option<Kept>> {
        self.cache
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, kept)| kept)
    }

    fn remember(&mut self, key: String, kept: Option<Kept>) {
        self.cache.retain(|(k, _)| *k != key);
        self.cache.push((key, kept));
        if self.cache.len() > CONTENT_SECRET_CACHE {
            self.cache.remove(0);
        }
    }

    /// The record keys a sealed add-on in `content` (received in one of `chats`) needs and
    /// are not in memory.
    pub(crate) fn missing(&self, content: &wa::Message, chats: &[Jid]) -> Vec<RecordKey> {
        let Some(id) = sealed_target(content) else {
            return Vec::new();
        };
        chats
            .iter()
            .map(|chat| record_key(&chat.to_string(), id))
            .filter(|key| self.cached(key).is_none())
            .map(|key| RecordKey::new(Space::MessageSecret, key))
            .collect()
    }

    /// Takes loaded records; requested keys without a (readable) record are remembered as
    /// absent.
    pub(crate) fn apply_loaded(&mut self, records: &[Record], requested: &[RecordKey]) {
        for key in requested
            .iter()
            .filter(|key| key.space == Space::MessageSecret)
        {
            if self.cached(&key.key).is_some() {
                continue;
            }
            let kept = records
                .iter()
                .find(|r| r.space == Space::MessageSecret && r.key == key.key)
                .and_then(|r| decode(&r.value));
            self.remember(key.key.clone(), kept);
        }
    }

    /// A received message: a sealed reaction or edit in it is opened in place (it becomes the
    /// `reactionMessage` or `protocolMessage` edit a plain one is; left sealed when its
    /// target's secret is not kept or it does not open), and its own secret is kept. The
    /// change to persist with the message.
    pub(crate) fn on_received(
        &mut self,
        id: &str,
        message: &mut wa::Message,
        at: &Received<'_>,
    ) -> Option<Change> {
        self.open_in_place(message, at);
        let (chat, author) = (at.chats.first()?, at.senders.first()?);
        let change = keep_change(chat, id, author, message)?;
        if let Change::Put(record) = &change {
            self.remember(record.key.clone(), decode(&record.value));
        }
        Some(change)
    }

    fn open_in_place(&self, message: &mut wa::Message, at: &Received<'_>) {
        let Some(id) = sealed_target(message) else {
            return;
        };
        let Some(kept) = at
            .chats
            .iter()
            .find_map(|chat| self.cached(&record_key(&chat.to_string(), id))?.as_ref())
        else {
            return;
        };
        let authors = forms(&kept.author, at.lids);
        let authors: Vec<String> = authors.iter().map(ToString::to_string).collect();
        let modifiers: Vec<String> = at.senders.iter().map(ToString::to_string).collect();
        let candidates: Vec<(&str, &str)> = authors
            .iter()
            .flat_map(|a| modifiers.iter().map(move |m| (a.as_str(), m.as_str())))
            .collect();
        if let Some(sealed) = &message.enc_reaction_message
            && let Some(reaction) = addon::open_reaction(&kept.secret, &candidates, sealed)
        {
            message.enc_reaction_message = None;
            message.reaction_message = Some(reaction);
            return;
        }
        if let Some(sealed) = &message.secret_encrypted_message
            && let Some(edit) = addon::open_edit(&kept.secret, &candidates, sealed)
        {
            message.secret_encrypted_message = None;
            message.protocol_message = Some(Box::new(edit));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::client::messaging::address::LidMap;
    use crate::client::messaging::polls::Own;

    #[test]
    fn a_kept_secret_reads_back_and_a_bad_record_is_absent() {
        let chat: Jid = "1@s.whatsapp.net".parse().unwrap();
        let author: Jid = "2:3@s.whatsapp.net".parse().unwrap();
        let message = wa::Message {
            conversation: Some("hi".into()),
            message_context_info: Some(wa::MessageContextInfo {
                message_secret: Some(vec![4; 32]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let Some(Change::Put(record)) = keep_change(&chat, "M1", &author, &message) else {
            panic!("kept");
        };
        assert_eq!(record.key, "1@s.whatsapp.net|M1");
        let kept = decode(&record.value).unwrap();
        assert_eq!(*kept.secret, [4; 32]);
        assert_eq!(kept.author.to_string(), "2@s.whatsapp.net");
        assert!(decode(&record.value[..20]).is_none());
        assert!(decode(&[2; 40]).is_none());
        let mut short = message.clone();
        short.message_context_info.as_mut().unwrap().message_secret = Some(vec![4; 31]);
        assert!(keep_change(&chat, "M1", &author, &short).is_none());

        let mut secrets = Secrets::default();
        let key = RecordKey::new(Space::MessageSecret, record.key.clone());
        let reaction = wa::Message {
            enc_reaction_message: Some(wa::message::EncReactionMessage {
                target_message_key: Some(wa::MessageKey {
                    id: Some("M1".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            secrets.missing(&reaction, core::slice::from_ref(&chat)),
            vec![key.clone()]
        );
        secrets.apply_loaded(&[record], &[key]);
        assert!(secrets.missing(&reaction, &[chat]).is_empty());
    }

    #[test]
    fn an_encrypted_reaction_to_a_kept_message_arrives_as_a_reaction() {
        let chat: Jid = "1@s.whatsapp.net".parse().unwrap();
        let reactor: Jid = "1@s.whatsapp.net".parse().unwrap();
        let own = Own {
            pn: "2@s.whatsapp.net".parse().unwrap(),
            lid: None,
        };
        let lids = LidMap::default();
        let mut secrets = Secrets::default();
        let original = wa::Message {
            conversation: Some("hello".into()),
            message_context_info: Some(wa::MessageContextInfo {
                message_secret: Some(vec![6; 32]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let chats = [chat.clone()];
        let senders = [reactor.clone()];
        let at = Received {
            chats: &chats,
            senders: &senders,
            own: &own,
            lids: &lids,
        };
        let mut first = original;
        assert!(secrets.on_received("M1", &mut first, &at).is_some());
        let key = wa::MessageKey {
            remote_jid: Some(chat.to_string()),
            from_me: Some(false),
            id: Some("M1".into()),
            participant: None,
        };
        let plain = wa::message::ReactionMessage {
            text: Some("👍".into()),
            ..Default::default()
        };
        let payload = addon::seal(
            &[6; 32],
            ("M1", "1@s.whatsapp.net", "1@s.whatsapp.net"),
            addon::USE_CASE_ENC_REACTION,
            [5; 12],
            &prost::Message::encode_to_vec(&plain),
        )
        .unwrap();
        let mut sealed = wa::Message {
            enc_reaction_message: Some(wa::message::EncReactionMessage {
                target_message_key: Some(key.clone()),
                enc_payload: Some(payload),
                enc_iv: Some(vec![5; 12]),
            }),
            ..Default::default()
        };
        assert!(secrets.missing(&sealed, &chats).is_empty());
        assert!(secrets.on_received("M2", &mut sealed, &at).is_none());
        assert!(sealed.enc_reaction_message.is_none());
        let reaction = sealed.reaction_message.unwrap();
        assert_eq!(reaction.text.as_deref(), Some("👍"));
        assert_eq!(reaction.key, Some(key));
    }
}
