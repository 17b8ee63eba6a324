//! The polls this device sent or received, kept so that their votes open and are counted.
//!
//! A vote is encrypted with its poll's message secret ([`crate::content::poll`]), so a device
//! must keep the secret of every poll it may see votes for, across restarts. Each poll is a
//! record in [`Space::Poll`] under `<chat>|<message id>` (`walink.PollRecord`: chat, author,
//! secret, option names, how many may be chosen, and the latest vote of each voter); the record
//! `index` lists them oldest first, and beyond [`CONTENT_MAX_POLLS`] the oldest is deleted in the
//! batch that adds a new one. Records are loaded on demand: an incoming vote waits (the stanza is
//! decrypted again once its poll's record is in), and so does a poll this device sends or votes
//! on. At most [`CONTENT_POLL_CACHE`] records stay in memory; the index stays once loaded.

use prost::Message as _;

use crate::binary::Jid;
use crate::content::poll::{self, VoteParties};
use crate::limits::{
    CONTENT_MAX_POLL_OPTIONS, CONTENT_MAX_POLL_VOTERS, CONTENT_MAX_POLLS, CONTENT_POLL_CACHE,
};
use crate::proto::{wa, walink as pb};
use crate::store::{Change, Record, RecordKey, Space};

use super::address::LidMap;

/// The key of the index record in [`Space::Poll`].
pub(crate) const INDEX_KEY: &str = "index";

/// The format of poll records.
const FORMAT: u32 = 1;

/// The record key of the poll `id` in `chat`.
pub(crate) fn record_key(chat: &str, id: &str) -> String {
    format!("{chat}|{id}")
}

/// A vote that opened, counted against its poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollVote {
    /// The poll's message id.
    pub poll_id: String,
    /// Who voted (a user, the LID form when known).
    pub voter: Jid,
    /// The options this vote chose, by name (empty: the voter withdrew their vote).
    pub selected: Vec<String>,
    /// Every option of the poll with the voters whose latest vote chose it, in option order.
    pub tally: Vec<PollOptionVotes>,
}

/// The voters of one option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollOptionVotes {
    /// The option's name.
    pub name: String,
    /// The voters whose latest vote chose it, in the order they first voted.
    pub voters: Vec<Jid>,
}

/// The other form (phone number or LID) of a user JID, when known.
pub(crate) fn alternate(jid: &Jid, lids: &LidMap) -> Option<Jid> {
    match &*jid.server {
        crate::binary::DEFAULT_USER_SERVER => lids
            .lid_for(&jid.user)
            .map(|lid| Jid::new(lid, crate::binary::HIDDEN_USER_SERVER)),
        crate::binary::HIDDEN_USER_SERVER => lids
            .pn_for(&jid.user)
            .map(|pn| Jid::new(pn, crate::binary::DEFAULT_USER_SERVER)),
        _ => None,
    }
}

/// `jid` and its other form, when known.
pub(crate) fn forms(jid: &Jid, lids: &LidMap) -> Vec<Jid> {
    let mut all = vec![jid.to_non_device()];
    all.extend(alternate(&all[0], lids));
    all
}

/// The identity of this account, as a poll's author or voter.
#[derive(Clone, Debug)]
pub(crate) struct Own {
    /// The phone-number user.
    pub(crate) pn: Jid,
    /// The LID user, when known.
    pub(crate) lid: Option<Jid>,
}

impl Own {
    pub(crate) fn users(&self) -> Vec<Jid> {
        let mut users = vec![self.pn.clone()];
        users.extend(self.lid.clone());
        users
    }

    fn is(&self, jid: &Jid) -> bool {
        self.users()
            .iter()
            .any(|own| own.user == jid.user && own.server == jid.server)
    }
}

/// The poll state of one client.
#[derive(Debug, Default)]
pub(crate) struct Polls {
    /// The index, once loaded: record keys, oldest first.
    index: Option<Vec<String>>,
    /// Poll records recently used, and keys found absent (`None`), most recent last.
    cache: Vec<(String, Option<pb::PollRecord>)>,
}

/// Where a received poll message was, as the poll records need it.
pub(crate) struct Received<'a> {
    /// The chat, in the forms known (the stanza's first).
    pub(crate) chats: &'a [Jid],
    /// The sender (user, no device), in the forms known (the stanza's first).
    pub(crate) senders: &'a [Jid],
    /// This account.
    pub(crate) own: &'a Own,
    /// The phone-number/LID mapping known.
    pub(crate) lids: &'a LidMap,
}

impl Polls {
    fn cached(&self, key: &str) -> Option<&Option<pb::PollRecord>> {
        self.cache.iter().find(|(k, _)| k == key).map(|(_, r)| r)
    }

    fn remember(&mut self, key: String, record: Option<pb::PollRecord>) {
        self.cache.retain(|(k, _)| *k != key);
        self.cache.push((key, record));
        if self.cache.len() > CONTENT_POLL_CACHE {
            self.cache.remove(0);
        }
    }

    /// The poll keys `content` (received in one of `chats`) needs in memory and lacks: the
    /// index for a poll, the poll's records for a vote.
    pub(crate) fn missing(&self, content: &wa::Message, chats: &[Jid]) -> Vec<RecordKey> {
        if poll::creation(content).is_some() {
            return self.missing_index();
        }
        match content
            .poll_update_message
            .as_ref()
            .and_then(|vote| vote.poll_creation_message_key.as_ref())
            .and_then(|key| key.id.as_deref())
        {
            Some(id) => self.missing_records(chats, id),
            None => Vec::new(),
        }
    }

    /// The index's key, unless it is loaded.
    pub(crate) fn missing_index(&self) -> Vec<RecordKey> {
        if self.index.is_some() {
            Vec::new()
        } else {
            vec![RecordKey::new(Space::Poll, INDEX_KEY.to_owned())]
        }
    }

    /// The record keys of poll `id` in any of `chats` not in memory.
    pub(crate) fn missing_records(&self, chats: &[Jid], id: &str) -> Vec<RecordKey> {
        chats
            .iter()
            .map(|chat| record_key(&chat.to_string(), id))
            .filter(|key| self.cached(key).is_none())
            .map(|key| RecordKey::new(Space::Poll, key))
            .collect()
    }

    /// Takes loaded poll records; keys of `requested` without a record are remembered as
    /// absent. A record that does not read is taken as absent.
    pub(crate) fn apply_loaded(&mut self, records: &[Record], requested: &[RecordKey]) {
        for key in requested.iter().filter(|key| key.space == Space::Poll) {
            let found = records
                .iter()
                .find(|r| r.space == Space::Poll && r.key == key.key);
            if key.key == INDEX_KEY {
                if self.index.is_none() {
                    let index = found
                        .and_then(|r| pb::PollIndexRecord::decode(r.value.as_slice()).ok())
                        .filter(|r| r.format_version == Some(FORMAT))
                        .map(|r| r.keys)
                        .unwrap_or_default();
                    self.index = Some(index);
                }
                continue;
            }
            if self.cached(&key.key).is_some() {
                // In memory already, possibly newer than the stored copy.
                continue;
            }
            let record = found
                .and_then(|r| pb::PollRecord::decode(r.value.as_slice()).ok())
                .filter(|r| r.format_version == Some(FORMAT));
            self.remember(key.key.clone(), record);
        }
    }

    /// Keeps a poll (its secret, options and author) under `chat` and `id`; the changes to
    /// persist. Nothing when the index is not loaded, the secret is not 32 bytes or the poll has
    /// more than [`CONTENT_MAX_POLL_OPTIONS`] options.
    pub(crate) fn keep(
        &mut self,
        chat: &Jid,
        id: &str,
        author: &Jid,
        poll: &wa::message::PollCreationMessage,
        secret: Option<&[u8]>,
    ) -> Vec<Change> {
        let (Some(index), Some(secret)) = (self.index.as_mut(), secret) else {
            return Vec::new();
        };
        if secret.len() != poll::SECRET_LEN || poll.options.len() > CONTENT_MAX_POLL_OPTIONS {
            return Vec::new();
        }
        let key = record_key(&chat.to_string(), id);
        let record = pb::PollRecord {
            format_version: Some(FORMAT),
            chat: Some(chat.to_string()),
            author: Some(author.to_non_device().to_string()),
            secret: Some(secret.to_vec()),
            options: poll::option_names(poll),
            selectable: poll.selectable_options_count,
            votes: Vec::new(),
        };
        let mut changes = vec![put(&key, &record)];
        index.retain(|k| *k != key);
        index.push(key.clone());
        while index.len() > CONTENT_MAX_POLLS {
            let oldest = index.remove(0);
            self.cache.retain(|(k, _)| *k != oldest);
            changes.push(Change::Delete {
                space: Space::Poll,
                key: oldest,
            });
        }
        changes.push(Change::Put(Record {
            space: Space::Poll,
            key: INDEX_KEY.to_owned(),
            value: pb::PollIndexRecord {
                format_version: Some(FORMAT),
                keys: index.clone(),
            }
            .encode_to_vec(),
        }));
        self.remember(key, Some(record));
        changes
    }

    /// The record of poll `id` in one of `chats`, with its key.
    fn find(&self, chats: &[Jid], id: &str) -> Option<(String, &pb::PollRecord)> {
        chats.iter().find_map(|chat| {
            let key = record_key(&chat.to_string(), id);
            match self.cached(&key) {
                Some(Some(record)) => Some((key, record)),
                _ => None,
            }
        })
    }

    /// Handles a received message's poll content: keeps a poll, opens and counts a vote. The
    /// counted vote (when one opened) and the changes to persist with the message.
    pub(crate) fn on_received(
        &mut self,
        id: &str,
        content: &wa::Message,
        at: Received<'_>,
    ) -> (Option<PollVote>, Vec<Change>) {
        let (Some(chat), Some(sender)) = (at.chats.first(), at.senders.first()) else {
            return (None, Vec::new());
        };
        if let Some(created) = poll::creation(content) {
            let secret = content
                .message_context_info
                .as_ref()
                .and_then(|context| context.message_secret.as_deref());
            return (None, self.keep(chat, id, sender, created, secret));
        }
        let Some(update) = &content.poll_update_message else {
            return (None, Vec::new());
        };
        let (Some(poll_id), Some(vote)) = (
            update
                .poll_creation_message_key
                .as_ref()
                .and_then(|key| key.id.clone()),
            update.vote.as_ref(),
        ) else {
            return (None, Vec::new());
        };
        let Some((key, record)) = self.find(at.chats, &poll_id) else {
            return (None, Vec::new());
        };
        let mut record = record.clone();
        let voter = at
            .senders
            .iter()
            .find(|s| s.server == crate::binary::HIDDEN_USER_SERVER)
            .unwrap_or(sender)
            .clone();
        let Some(selected) = open(&record, &poll_id, at.senders, at.own, at.lids, vote) else {
            return (None, Vec::new());
        };
        let timestamp = update.sender_timestamp_ms.unwrap_or_default();
        count(&mut record, &voter, at.senders, &selected, timestamp);
        let change = put(&key, &record);
        let counted = vote_of(&record, &poll_id, voter, &selected);
        self.remember(key, Some(record));
        (Some(counted), vec![change])
    }

    /// This device's vote on poll `id` in one of `chats`: the `pollUpdateMessage` to send
    /// (encrypted with `iv`) and the changes counting it, or why not. `chats[0]` is the chat the
    /// vote goes to.
    pub(crate) fn vote(
        &mut self,
        chats: &[Jid],
        id: &str,
        options: &[String],
        own: &Own,
        iv: [u8; 12],
        now_ms: u64,
    ) -> Result<(wa::Message, Vec<Change>), VoteError> {
        let (key, record) = self.find(chats, id).ok_or(VoteError::UnknownPoll)?;
        let mut record = record.clone();
        let mut selected = Vec::new();
        for name in options {
            let index = record
                .options
                .iter()
                .position(|option| option == name)
                .ok_or(VoteError::NoSuchOption)?;
            if !selected.contains(&(index as u32)) {
                selected.push(index as u32);
            }
        }
        let limit = record.selectable.unwrap_or_default() as usize;
        if limit > 0 && selected.len() > limit {
            return Err(VoteError::TooManyOptions);
        }
        let author: Jid = record
            .author
            .as_deref()
            .and_then(|a| a.parse().ok())
            .ok_or(VoteError::UnknownPoll)?;
        // whatsmeow votes as its LID unless the poll's author is a phone number.
        let voter = match (&own.lid, &*author.server) {
            (Some(lid), crate::binary::HIDDEN_USER_SERVER) => lid.clone(),
            _ => own.pn.clone(),
        };
        let hashes: Vec<[u8; 32]> = selected
            .iter()
            .filter_map(|&i| record.options.get(i as usize))
            .map(|name| poll::option_hash(name))
            .collect();
        let parties = VoteParties {
            poll_id: id,
            author: &author.to_string(),
            voter: &voter.to_string(),
        };
        let secret = record.secret.clone().unwrap_or_default();
        let encrypted = poll::encrypt_vote(&secret, parties, &hashes, iv)
            .map_err(|_| VoteError::UnknownPoll)?;
        let chat = &chats[0];
        let group = chat.server == crate::binary::GROUP_SERVER;
        let from_me = own.is(&author);
        let timestamp = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let message = wa::Message {
            poll_update_message: Some(wa::message::PollUpdateMessage {
                poll_creation_message_key: Some(wa::MessageKey {
                    remote_jid: Some(chat.to_string()),
                    from_me: Some(from_me),
                    id: Some(id.to_owned()),
                    participant: (group && !from_me).then(|| author.to_string()),
                }),
                vote: Some(encrypted),
                metadata: None,
                sender_timestamp_ms: Some(timestamp),
            }),
            ..Default::default()
        };
        // Counted under the LID when known, as votes received are.
        let counted_as = own.lid.clone().unwrap_or_else(|| own.pn.clone());
        count(&mut record, &counted_as, &own.users(), &selected, timestamp);
        let change = put(&key, &record);
        self.remember(key, Some(record));
        Ok((message, vec![change]))
    }
}

/// Why this device cannot vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteError {
    /// No poll with that id is kept for the chat.
    UnknownPoll,
    /// An option is not one of the poll's.
    NoSuchOption,
    /// More options than the poll allows.
    TooManyOptions,
}

fn put(key: &str, record: &pb::PollRecord) -> Change {
    Change::Put(Record {
        space: Space::Poll,
        key: key.to_owned(),
        value: record.encode_to_vec(),
    })
}

/// Opens a vote on `record`, trying the forms known of its author and of the voter; the
/// indexes of the options it chose.
fn open(
    record: &pb::PollRecord,
    poll_id: &str,
    voters: &[Jid],
    own: &Own,
    lids: &LidMap,
    vote: &wa::message::PollEncValue,
) -> Option<Vec<u32>> {
    let author: Jid = record.author.as_deref()?.parse().ok()?;
    let mut authors = if own.is(&author) {
        own.users()
    } else {
        forms(&author, lids)
    };
    authors.dedup();
    // Pairs in one namespace first (a LID voter names a LID author), then the others.
    let mut pairs: Vec<(&Jid, &Jid)> = Vec::new();
    for same in [true, false] {
        for author in &authors {
            for voter in voters {
                if (author.server == voter.server) == same {
                    pairs.push((author, voter));
                }
            }
        }
    }
    let pairs: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(author, voter)| (author.to_string(), voter.to_string()))
        .collect();
    let candidates: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(author, voter)| (author.as_str(), voter.as_str()))
        .collect();
    let secret = record.secret.as_deref()?;
    let hashes = poll::decrypt_vote(secret, poll_id, &candidates, vote).ok()?;
    let mut selected = Vec::new();
    for (index, name) in record.options.iter().enumerate() {
        if hashes.iter().any(|h| h[..] == poll::option_hash(name)) {
            selected.push(index as u32);
        }
    }
    Some(selected)
}

/// Records `voter`'s vote (any of `forms` names the same voter), unless a newer one is kept.
fn count(
    record: &mut pb::PollRecord,
    voter: &Jid,
    forms: &[Jid],
    selected: &[u32],
    timestamp: i64,
) {
    let names: Vec<String> = forms
        .iter()
        .chain(core::iter::once(voter))
        .map(ToString::to_string)
        .collect();
    let existing = record
        .votes
        .iter()
        .position(|v| v.voter.as_ref().is_some_and(|name| names.contains(name)));
    if let Some(vote) = existing.and_then(|at| record.votes.get_mut(at)) {
        if vote.timestamp_ms.unwrap_or_default() <= timestamp {
            vote.voter = Some(voter.to_string());
            vote.selected = selected.to_vec();
            vote.timestamp_ms = Some(timestamp);
        }
    } else if record.votes.len() < CONTENT_MAX_POLL_VOTERS {
        record.votes.push(pb::PollVoterRecord {
            voter: Some(voter.to_string()),
            selected: selected.to_vec(),
            timestamp_ms: Some(timestamp),
        });
    }
}

fn vote_of(record: &pb::PollRecord, poll_id: &str, voter: Jid, selected: &[u32]) -> PollVote {
    let name = |i: &u32| record.options.get(*i as usize).cloned();
    PollVote {
        poll_id: poll_id.to_owned(),
        voter,
        selected: selected.iter().filter_map(name).collect(),
        tally: record
            .options
            .iter()
            .enumerate()
            .map(|(index, option)| PollOptionVotes {
                name: option.clone(),
                voters: record
                    .votes
                    .iter()
                    .filter(|vote| vote.selected.contains(&(index as u32)))
                    .filter_map(|vote| vote.voter.as_deref()?.parse().ok())
                    .collect(),
            })
            .collect(),
    }
}
