//! Remote identities: the key trusted per device, the identity policy, keys waiting for
//! approval with the messages held meanwhile, and the notices of changes.

use prost::Message as _;

use crate::limits::MESSAGING_MAX_HELD_PER_IDENTITY;
use crate::proto::walink as pb;
use crate::signal::{IdentityKey, PublicKey, RecordError, SessionRecord};
use crate::store::Space;

use super::super::super::config::IdentityPolicy;
use super::super::address::DeviceAddress;
use super::super::error::MessagingError;
use super::{Keystore, MESSAGING_RECORD_FORMAT, RecordChange, SessionUpdate, check_format};

/// A message refused because the identity of its sender waits for approval: what a retry
/// receipt asking for it again needs (the stanza's id and addressing attributes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldMessage {
    /// The message id.
    pub id: String,
    /// The stanza's `from`.
    pub from: String,
    /// The stanza's `participant` (groups).
    pub participant: Option<String>,
    /// The stanza's `recipient` (own-device copies).
    pub recipient: Option<String>,
    /// The stanza's `t`.
    pub t: Option<String>,
}

/// The identity of one remote device: the key trusted, and (under [`IdentityPolicy::Strict`])
/// a new key waiting for the application's approval with the messages refused meanwhile.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct IdentityEntry {
    pub(super) trusted: IdentityKey,
    pub(super) pending: Option<IdentityKey>,
    pub(super) held: Vec<HeldMessage>,
}

/// A remote device presented an identity key other than the one trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityNotice {
    /// The device (canonical form).
    pub address: DeviceAddress,
    /// The key it presented.
    pub identity: IdentityKey,
    /// The key trusted before.
    pub previous: IdentityKey,
    /// Whether the new key is trusted now (`AcceptAndNotify`) or waits for approval (`Strict`).
    pub accepted: bool,
}

impl Keystore {
    /// Loads an identity record.
    pub(super) fn restore_identity(&mut self, key: &str, value: &[u8]) -> Result<(), RecordError> {
        let bad = RecordError::BadField("key");
        let address = DeviceAddress::from_record_key(key).ok_or(bad)?;
        let record = pb::IdentityRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
        check_format(record.format_version)?;
        let raw: [u8; 32] = record
            .public_key
            .as_deref()
            .and_then(|key| key.try_into().ok())
            .ok_or(RecordError::BadField("public_key"))?;
        let pending = match record.pending_public_key.as_deref() {
            None => None,
            Some(key) => Some(IdentityKey(PublicKey::from_raw(
                key.try_into()
                    .map_err(|_| RecordError::BadField("pending_public_key"))?,
            ))),
        };
        if record.held.len() > MESSAGING_MAX_HELD_PER_IDENTITY {
            return Err(RecordError::TooMany("held"));
        }
        let held = record
            .held
            .into_iter()
            .map(|held| HeldMessage {
                id: held.id.unwrap_or_default(),
                from: held.from.unwrap_or_default(),
                participant: held.participant,
                recipient: held.recipient,
                t: held.t,
            })
            .collect();
        self.identities.insert(
            address,
            IdentityEntry {
                trusted: IdentityKey(PublicKey::from_raw(raw)),
                pending,
                held,
            },
        );
        Ok(())
    }

    /// Trusts `identity` for `address` (first use, or a change accepted or approved): a key
    /// waiting for approval is dropped, its held messages stay to be asked for again.
    pub(super) fn put_identity(&mut self, address: &DeviceAddress, identity: IdentityKey) {
        match self.identities.get_mut(address) {
            Some(entry) if entry.trusted == identity => return,
            Some(entry) => {
                entry.trusted = identity;
                entry.pending = None;
            }
            None => {
                self.identities.insert(
                    address.clone(),
                    IdentityEntry {
                        trusted: identity,
                        pending: None,
                        held: Vec::new(),
                    },
                );
            }
        }
        self.write_identity(address);
    }

    /// Queues the identity record of `address` as it is in memory.
    pub(super) fn write_identity(&mut self, address: &DeviceAddress) {
        let Some(entry) = self.identities.get(address) else {
            return;
        };
        let record = pb::IdentityRecord {
            format_version: Some(MESSAGING_RECORD_FORMAT),
            public_key: Some(entry.trusted.0.raw().to_vec()),
            pending_public_key: entry.pending.map(|key| key.0.raw().to_vec()),
            held: entry
                .held
                .iter()
                .map(|held| pb::HeldMessage {
                    id: Some(held.id.clone()),
                    from: Some(held.from.clone()),
                    participant: held.participant.clone(),
                    recipient: held.recipient.clone(),
                    t: held.t.clone(),
                })
                .collect(),
        };
        self.push_change(RecordChange {
            space: Space::Identity,
            key: address.record_key(),
            value: Some(record.encode_to_vec()),
        });
    }

    /// The identity key trusted for `address`.
    pub fn identity(&self, address: &DeviceAddress) -> Option<IdentityKey> {
        self.identities
            .get(&self.lids.canonical(address))
            .map(|entry| entry.trusted)
    }

    /// A new identity key of `address` waiting for the application's approval.
    pub fn pending_identity(&self, address: &DeviceAddress) -> Option<IdentityKey> {
        self.identities
            .get(&self.lids.canonical(address))
            .and_then(|entry| entry.pending)
    }

    /// What the client does when a device's identity key changes.
    pub fn set_identity_policy(&mut self, policy: IdentityPolicy) {
        self.identity_policy = policy;
    }

    /// The identity changes seen since the last call (for `Event::IdentityChanged`).
    pub fn take_identity_notices(&mut self) -> Vec<IdentityNotice> {
        core::mem::take(&mut self.identity_notices)
    }

    /// The key trusted for `address` (canonical): its identity record, else the current
    /// session's remote identity.
    pub(super) fn trusted_identity(&self, address: &DeviceAddress) -> Option<IdentityKey> {
        self.identities
            .get(address)
            .map(|entry| entry.trusted)
            .or_else(|| {
                self.sessions
                    .get(address)
                    .and_then(SessionRecord::remote_identity)
            })
    }

    /// Whether `address` (canonical) may use `identity` now: the key trusted, or any key for a
    /// device never seen, or a new key under [`IdentityPolicy::AcceptAndNotify`] (reported
    /// when it is committed). Under [`IdentityPolicy::Strict`] a new key is refused; it is
    /// recorded as pending (reported once per key) with `held`, the message it came with.
    pub(super) fn admit_identity(
        &mut self,
        address: &DeviceAddress,
        identity: IdentityKey,
        held: Option<HeldMessage>,
    ) -> Result<(), MessagingError> {
        let Some(previous) = self.trusted_identity(address) else {
            return Ok(());
        };
        if previous == identity || self.identity_policy == IdentityPolicy::AcceptAndNotify {
            return Ok(());
        }
        let entry = self
            .identities
            .entry(address.clone())
            .or_insert_with(|| IdentityEntry {
                trusted: previous,
                pending: None,
                held: Vec::new(),
            });
        let new_key = entry.pending != Some(identity);
        entry.pending = Some(identity);
        if let Some(held) = held
            && !entry.held.iter().any(|h| h.id == held.id)
        {
            if entry.held.len() >= MESSAGING_MAX_HELD_PER_IDENTITY {
                entry.held.remove(0);
            }
            entry.held.push(held);
        }
        if new_key {
            self.identity_notices.push(IdentityNotice {
                address: address.clone(),
                identity,
                previous,
                accepted: false,
            });
        }
        self.write_identity(address);
        Err(MessagingError::UntrustedIdentity {
            address: address.clone(),
        })
    }

    /// Approves the key waiting for approval for `address`, if it is `identity`: it becomes the
    /// trusted key, and the messages held for it are returned (the caller asks for them again).
    /// `None` when no such key waits.
    pub fn approve_identity(
        &mut self,
        address: &DeviceAddress,
        identity: IdentityKey,
    ) -> Option<Vec<HeldMessage>> {
        let address = self.lids.canonical(address);
        let entry = self.identities.get_mut(&address)?;
        if entry.pending != Some(identity) {
            return None;
        }
        entry.trusted = identity;
        entry.pending = None;
        let held = core::mem::take(&mut entry.held);
        self.write_identity(&address);
        Some(held)
    }

    /// Trusts `identity` for `address` (canonical) after it was admitted, reporting a change.
    pub(super) fn accept_identity(&mut self, address: &DeviceAddress, identity: IdentityKey) {
        if let Some(previous) = self.trusted_identity(address)
            && previous != identity
        {
            self.identity_notices.push(IdentityNotice {
                address: address.clone(),
                identity,
                previous,
                accepted: true,
            });
        }
        self.put_identity(address, identity);
    }

    /// Checks the identity keys the prepared `updates` bring (authenticated: their messages
    /// decrypted) against the identity policy, before [`Keystore::commit`]: under
    /// [`IdentityPolicy::Strict`] a changed key is refused (nothing may be committed), recorded
    /// as waiting for approval and `held` is kept to be asked for again.
    pub fn admit_identities(
        &mut self,
        updates: &[SessionUpdate],
        held: &HeldMessage,
    ) -> Result<(), MessagingError> {
        for update in updates {
            if let SessionUpdate::Session {
                address,
                identity: Some(identity),
                ..
            } = update
            {
                self.admit_identity(address, *identity, Some(held.clone()))?;
            }
        }
        Ok(())
    }
}
