//! 1:1 sessions: bundles, encryption, decryption, and the commit of what a decryption prepared.

use rand_core::CryptoRng;

use crate::signal::{
    CiphertextMessage, DecryptError, EncryptError, PreKeyBundle, PreKeyId, PreKeySource,
    SessionRecord,
};
use crate::store::Space;

use super::super::address::DeviceAddress;
use super::super::error::MessagingError;
use super::{Keystore, RecordChange, SessionUpdate};

impl Keystore {
    pub(super) fn put_session(&mut self, address: &DeviceAddress, record: SessionRecord) {
        self.push_change(RecordChange {
            space: Space::Session,
            key: address.record_key(),
            value: Some(record.serialize()),
        });
        self.sessions.insert(address.clone(), record);
    }

    /// Whether there is a session to encrypt for `address` with.
    pub fn has_session(&self, address: &DeviceAddress) -> bool {
        self.sessions
            .get(&self.lids.canonical(address))
            .is_some_and(SessionRecord::has_current_session)
    }

    /// The devices among `devices` without a session: the ones a bundle must be fetched for.
    pub fn devices_without_session<'a>(
        &self,
        devices: impl IntoIterator<Item = &'a DeviceAddress>,
    ) -> Vec<DeviceAddress> {
        devices
            .into_iter()
            .filter(|device| !self.has_session(device))
            .cloned()
            .collect()
    }

    /// The remote registration id of the current session with `address`.
    pub fn remote_registration_id(&self, address: &DeviceAddress) -> Option<u32> {
        self.sessions
            .get(&self.lids.canonical(address))
            .and_then(SessionRecord::remote_registration_id)
    }

    /// Starts a session with `address` from its prekey bundle (the signed prekey's signature is
    /// verified first). A bundle under an identity key other than the trusted one follows the
    /// identity policy: accepted and reported, or (strict) refused with
    /// [`MessagingError::UntrustedIdentity`] until the key is approved.
    pub fn process_bundle<R: CryptoRng + ?Sized>(
        &mut self,
        address: &DeviceAddress,
        bundle: &PreKeyBundle,
        rng: &mut R,
    ) -> Result<(), MessagingError> {
        let address = self.lids.canonical(address);
        let mut record = self.sessions.get(&address).cloned().unwrap_or_default();
        record.process_bundle(bundle, &self.own.identity, self.own.registration_id, rng)?;
        self.admit_identity(&address, bundle.identity_key, None)?;
        self.put_session(&address, record);
        self.accept_identity(&address, bundle.identity_key);
        Ok(())
    }

    /// Drops the session with `address` (a retry receipt with fresh keys replaces it).
    pub fn delete_session(&mut self, address: &DeviceAddress) {
        let address = self.lids.canonical(address);
        if self.sessions.remove(&address).is_some() {
            self.delete(Space::Session, address.record_key());
        }
    }

    /// Encrypts `plaintext` (already padded) for `address`.
    pub fn encrypt(
        &mut self,
        address: &DeviceAddress,
        plaintext: &[u8],
    ) -> Result<CiphertextMessage, MessagingError> {
        let address = self.lids.canonical(address);
        let mut record = self
            .sessions
            .get(&address)
            .cloned()
            .ok_or(EncryptError::NoSession)?;
        let message = record.encrypt(plaintext)?;
        self.put_session(&address, record);
        Ok(message)
    }

    /// Decrypts a `msg` or `pkmsg` from `address` without changing anything: the returned
    /// [`SessionUpdate`] is applied with [`Keystore::commit`] once the whole stanza decrypted.
    /// `pending` holds the updates of the same stanza not yet committed: a second message for
    /// the same session continues from the first one's state (its keys are not used twice).
    pub fn decrypt<R: CryptoRng + ?Sized, P: PreKeySource + ?Sized>(
        &self,
        address: &DeviceAddress,
        pre_key_message: bool,
        bytes: &[u8],
        pending: &[SessionUpdate],
        (pre_keys, rng): (&P, &mut R),
    ) -> Result<(Vec<u8>, SessionUpdate), MessagingError> {
        let address = self.lids.canonical(address);
        let from_pending = pending.iter().rev().find_map(|update| match update {
            SessionUpdate::Session {
                address: a, record, ..
            } if *a == address => Some(record.as_ref().clone()),
            _ => None,
        });
        let mut record = match from_pending {
            Some(record) => record,
            None => self.sessions.get(&address).cloned().unwrap_or_default(),
        };
        let (plaintext, consumed, identity) = if pre_key_message {
            let parsed = crate::signal::PreKeySignalMessage::deserialize(bytes)
                .map_err(DecryptError::from)?;
            let identity = *parsed.identity_key();
            let result = record.decrypt_pre_key_message(
                bytes,
                &self.own.identity,
                self.own.registration_id,
                pre_keys,
                rng,
            )?;
            (result.plaintext, result.consumed_pre_key, Some(identity))
        } else {
            if !record.has_current_session() && record.archived_sessions() == 0 {
                return Err(DecryptError::NoSession.into());
            }
            (record.decrypt_message(bytes, rng)?, None, None)
        };
        Ok((
            plaintext,
            SessionUpdate::Session {
                address,
                record: Box::new(record),
                identity,
                consumed_pre_key: consumed,
            },
        ))
    }

    /// Applies updates prepared by the decrypting operations. Returns the one-time prekeys they
    /// consumed (the caller deletes those).
    pub fn commit(&mut self, updates: Vec<SessionUpdate>) -> Vec<PreKeyId> {
        let mut consumed = Vec::new();
        for update in updates {
            match update {
                SessionUpdate::Session {
                    address,
                    record,
                    identity,
                    consumed_pre_key,
                } => {
                    self.put_session(&address, *record);
                    if let Some(identity) = identity {
                        self.accept_identity(&address, identity);
                    }
                    consumed.extend(consumed_pre_key);
                }
                SessionUpdate::SenderKey {
                    group,
                    sender,
                    record,
                } => self.put_sender_key(&group, &sender, record),
            }
        }
        consumed
    }
}
