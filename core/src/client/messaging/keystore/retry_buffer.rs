//! The retry buffer: sent messages kept for re-encryption when a recipient asks again.

use prost::Message as _;

use crate::limits::{
    MESSAGING_MAX_FANOUT, MESSAGING_MAX_RETRIES, MESSAGING_RETRY_BUFFER,
    MESSAGING_RETRY_BUFFER_BYTES, MESSAGING_RETRY_MAX_MESSAGE,
};
use crate::proto::walink as pb;
use crate::proto_bounds::{self, Field};
use crate::signal::RecordError;
use crate::store::Space;

use super::super::address::DeviceAddress;
use super::{Keystore, MESSAGING_RECORD_FORMAT, RETRY_ENTRY_FORMAT, RecordChange};

/// The per-device retry counts and the recipients of a retry-buffer record, counted before it
/// is decoded.
pub(super) static RETRY_ENTRY_FIELDS: [Field; 2] = [
    Field {
        number: 6,
        max: MESSAGING_MAX_FANOUT,
        size: size_of::<pb::RetryCount>() + size_of::<(String, u32)>(),
        fields: &[],
    },
    Field {
        number: 7,
        max: MESSAGING_MAX_FANOUT,
        size: size_of::<String>() + size_of::<DeviceAddress>(),
        fields: &[],
    },
];

/// One sent message kept for re-encryption. Its `Debug` shows the message's length only.
#[derive(Clone, PartialEq)]
pub struct RetryEntry {
    /// The chat it was sent to.
    pub chat: String,
    /// The serialized `Message`, unpadded.
    pub message: Vec<u8>,
    /// When it was sent.
    pub sent_at: u64,
    /// For a group message: the key id of our sender key it used (a retry hands out our sender
    /// key only while that key is current).
    pub sender_key_id: Option<u32>,
    pub(super) sequence: u64,
    pub(super) retries: Vec<(String, u32)>,
    /// The record keys of the devices it was encrypted for (every member device for a group),
    /// sorted; `None` for an entry written before walink kept them (format 1).
    pub(super) recipients: Option<Vec<String>>,
}

impl RetryEntry {
    /// The memory the entry counts against [`MESSAGING_RETRY_BUFFER_BYTES`].
    pub(super) fn weight(&self) -> usize {
        let recipients = self
            .recipients
            .iter()
            .flatten()
            .map(|key| key.len() + core::mem::size_of::<String>())
            .sum::<usize>();
        self.message.len() + self.chat.len() + recipients + core::mem::size_of::<RetryEntry>()
    }
}

impl core::fmt::Debug for RetryEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RetryEntry")
            .field("chat", &self.chat)
            .field("message_len", &self.message.len())
            .field("sent_at", &self.sent_at)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// Why a retry request is not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDenied {
    /// The message is not kept (too old, too large, or never sent): nothing to answer with.
    NotKept,
    /// The device was not one the message was encrypted for (not a member of the group when
    /// it was sent).
    NotARecipient,
    /// The device asked more than [`MESSAGING_MAX_RETRIES`] times, or claimed a count beyond.
    TooManyRetries,
}

impl Keystore {
    /// Loads a kept sent message.
    pub(super) fn restore_retry(&mut self, key: &str, value: &[u8]) -> Result<(), RecordError> {
        proto_bounds::check(value, &RETRY_ENTRY_FIELDS)?;
        let record = pb::RetryEntryRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
        let recipients = match record.format_version {
            Some(MESSAGING_RECORD_FORMAT) => None,
            Some(RETRY_ENTRY_FORMAT) => {
                if record.recipients.len() > crate::limits::MESSAGING_MAX_FANOUT {
                    return Err(RecordError::TooMany("recipients"));
                }
                let mut recipients = record.recipients;
                recipients.sort_unstable();
                Some(recipients)
            }
            other => return Err(RecordError::UnsupportedFormat(other.unwrap_or_default())),
        };
        if record.retries.len() > crate::limits::MESSAGING_MAX_FANOUT {
            return Err(RecordError::TooMany("retries"));
        }
        let sequence = record.sequence.unwrap_or_default();
        self.retry_sequence = self.retry_sequence.max(sequence.saturating_add(1));
        let entry = RetryEntry {
            chat: record.chat.unwrap_or_default(),
            message: record.message.unwrap_or_default(),
            sent_at: record.sent_at.unwrap_or_default(),
            sender_key_id: record.sender_key_id,
            sequence,
            retries: record
                .retries
                .into_iter()
                .map(|r| (r.device.unwrap_or_default(), r.count.unwrap_or_default()))
                .collect(),
            recipients,
        };
        self.retry_bytes += entry.weight();
        if let Some(old) = self.retry.insert(key.to_owned(), entry) {
            self.retry_bytes = self.retry_bytes.saturating_sub(old.weight());
        }
        self.trim_retry(0);
        Ok(())
    }

    /// Keeps a sent message for retries with the devices it was encrypted for (for a group:
    /// every member device, and the key id of our sender key it used), dropping the oldest
    /// beyond [`MESSAGING_RETRY_BUFFER`] entries or [`MESSAGING_RETRY_BUFFER_BYTES`]. A message
    /// larger than [`MESSAGING_RETRY_MAX_MESSAGE`] is not kept.
    pub fn remember_sent<'a>(
        &mut self,
        id: &str,
        (chat, message): (&str, &[u8]),
        recipients: impl IntoIterator<Item = &'a DeviceAddress>,
        sender_key_id: Option<u32>,
        now: u64,
    ) {
        if message.len() > MESSAGING_RETRY_MAX_MESSAGE {
            return;
        }
        let mut recipients: Vec<String> = recipients
            .into_iter()
            .map(|device| self.lids.canonical(device).record_key())
            .collect();
        recipients.sort_unstable();
        recipients.dedup();
        let entry = RetryEntry {
            chat: chat.to_owned(),
            message: message.to_vec(),
            sent_at: now,
            sender_key_id,
            sequence: self.retry_sequence,
            retries: Vec::new(),
            recipients: Some(recipients),
        };
        self.retry_sequence = self.retry_sequence.saturating_add(1);
        self.trim_retry(entry.weight());
        self.put_retry(id, entry);
    }

    /// Drops the oldest kept messages (from memory and the store) until one more of `weight`
    /// bytes fits both bounds of the buffer.
    pub(super) fn trim_retry(&mut self, weight: usize) {
        let slots = usize::from(weight > 0);
        while self.retry.len() + slots > MESSAGING_RETRY_BUFFER
            || (self.retry_bytes + weight > MESSAGING_RETRY_BUFFER_BYTES && !self.retry.is_empty())
        {
            let oldest = self
                .retry
                .iter()
                .min_by_key(|(_, entry)| entry.sequence)
                .map(|(id, _)| id.clone());
            let Some(oldest) = oldest else {
                break;
            };
            if let Some(entry) = self.retry.remove(&oldest) {
                self.retry_bytes = self.retry_bytes.saturating_sub(entry.weight());
            }
            self.delete(Space::RetryBuffer, oldest);
        }
    }

    pub(super) fn put_retry(&mut self, id: &str, entry: RetryEntry) {
        let record = pb::RetryEntryRecord {
            format_version: Some(if entry.recipients.is_some() {
                RETRY_ENTRY_FORMAT
            } else {
                MESSAGING_RECORD_FORMAT
            }),
            chat: Some(entry.chat.clone()),
            message: Some(entry.message.clone()),
            sent_at: Some(entry.sent_at),
            sequence: Some(entry.sequence),
            retries: entry
                .retries
                .iter()
                .map(|(device, count)| pb::RetryCount {
                    device: Some(device.clone()),
                    count: Some(*count),
                })
                .collect(),
            recipients: entry.recipients.clone().unwrap_or_default(),
            sender_key_id: entry.sender_key_id,
        };
        self.push_change(RecordChange {
            space: Space::RetryBuffer,
            key: id.to_owned(),
            value: Some(record.encode_to_vec()),
        });
        self.retry_bytes += entry.weight();
        if let Some(old) = self.retry.insert(id.to_owned(), entry) {
            self.retry_bytes = self.retry_bytes.saturating_sub(old.weight());
        }
    }

    /// A kept message.
    pub fn sent_message(&self, id: &str) -> Option<&RetryEntry> {
        self.retry.get(id)
    }

    /// How many messages the retry buffer holds.
    #[cfg(any(test, feature = "internals-for-benches"))]
    pub fn retry_buffer_len(&self) -> usize {
        self.retry.len()
    }

    /// Whether `device` may have message `id` again: it must be one of the devices the message
    /// was encrypted for (a member device at send time for a group; for an entry kept before
    /// walink recorded them, a device of the 1:1 chat's user or of our own account, never for
    /// a group), ask at most [`MESSAGING_MAX_RETRIES`] times and claim no higher `count`. An
    /// answered request is counted (and persisted).
    pub fn take_retry(
        &mut self,
        id: &str,
        device: &DeviceAddress,
        count: u32,
    ) -> Result<RetryEntry, RetryDenied> {
        let entry = self.retry.get(id).ok_or(RetryDenied::NotKept)?;
        if !self.was_recipient(entry, device) {
            return Err(RetryDenied::NotARecipient);
        }
        if count > MESSAGING_MAX_RETRIES {
            return Err(RetryDenied::TooManyRetries);
        }
        let key = self.lids.canonical(device).record_key();
        let mut entry = entry.clone();
        let served = match entry.retries.iter_mut().find(|(d, _)| *d == key) {
            Some((_, served)) => served,
            None => {
                entry.retries.push((key, 0));
                let last = entry.retries.len() - 1;
                &mut entry.retries.get_mut(last).ok_or(RetryDenied::NotKept)?.1
            }
        };
        if *served >= MESSAGING_MAX_RETRIES {
            return Err(RetryDenied::TooManyRetries);
        }
        *served += 1;
        self.put_retry(id, entry.clone());
        Ok(entry)
    }

    /// Whether `device` is among the devices `entry` was encrypted for, in any form it may
    /// have been recorded under (the phone-number form when its LID was not known yet).
    pub(super) fn was_recipient(&self, entry: &RetryEntry, device: &DeviceAddress) -> bool {
        let Some(recipients) = &entry.recipients else {
            let chat = DeviceAddress::parse(&entry.chat);
            return match chat {
                Ok(chat) => self.lids.same_user(&chat, device) || self.own.is_own_user(device),
                Err(_) => false,
            };
        };
        let canonical = self.lids.canonical(device);
        let mut forms = vec![canonical.record_key(), device.record_key()];
        if canonical.lid
            && let Some(pn) = self.lids.pn_for(&canonical.user)
        {
            forms.push(
                DeviceAddress {
                    user: pn.to_owned(),
                    device: canonical.device,
                    lid: false,
                }
                .record_key(),
            );
        }
        forms
            .iter()
            .any(|form| recipients.binary_search(form).is_ok())
    }
}
