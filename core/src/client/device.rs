//! The device's own keys and identity: generated once, persisted as records, restored by
//! `Client::new`.

use zeroize::Zeroizing;

use crate::binary::Jid;
use crate::limits::MESSAGING_MAX_RETRY_PRE_KEYS;
use crate::noise::NoiseKeyPair;
use crate::noise::payload::{self, ClientProfile, PayloadError, RegistrationKeys};
use crate::pair;
use crate::proto::wa::ClientPayload;
use crate::signal::{IdentityKeyPair, KeyPair, PrivateKey, xeddsa};
use crate::store::{self, Batch, Change, DeviceData, PreKeyData, Record, RestoreError, Space};

use super::rng::Rng;

/// One-time prekey ids are 24-bit and never reused.
const MAX_PRE_KEY_ID: u32 = (1 << 24) - 1;

/// The device: own keys, own addresses once paired, the signed ADV identity.
pub(crate) struct Device {
    data: DeviceData,
    noise: NoiseKeyPair,
    identity: IdentityKeyPair,
    signed_pre_key: KeyPair,
    signed_pre_key_signature: [u8; 64],
}

impl core::fmt::Debug for Device {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Device")
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl Device {
    /// A new, unpaired device with fresh keys, and the records that store it.
    pub(crate) fn generate(rng: &mut Rng) -> (Device, Batch) {
        let noise_private = Zeroizing::new(rng.bytes::<32>());
        let identity_private = Zeroizing::new(rng.bytes::<32>());
        // Any non-zero value that fits the 4-byte field; WhatsApp Web uses 14 bits.
        let registration_id = 1 + rng.below(16_383) as u32;
        let signed = PreKeyData {
            id: 1,
            private: Zeroizing::new(rng.bytes::<32>()),
            signature: None,
        };
        let data = DeviceData {
            noise_private,
            identity_private,
            registration_id,
            adv_secret: Zeroizing::new(rng.bytes::<32>()),
            signed_pre_key_id: signed.id,
            next_pre_key_id: 1,
            uploaded_pre_key_id: 0,
            jid: None,
            lid: None,
            signed_identity: None,
            platform: None,
            business_name: None,
            routing_info: None,
            login_count: 0,
            retry_pre_key_ids: Vec::new(),
        };
        let identity =
            IdentityKeyPair::from_private(PrivateKey::from_bytes(*data.identity_private));
        let signed_pre_key = KeyPair::from_private(PrivateKey::from_bytes(*signed.private));
        let signature = identity
            .private_key()
            .sign(&signed_pre_key.public.serialize(), rng);
        let signed = PreKeyData {
            signature: Some(signature),
            ..signed
        };
        let device = Device {
            noise: NoiseKeyPair::from_private(*data.noise_private),
            identity,
            signed_pre_key,
            signed_pre_key_signature: signature,
            data,
        };
        let batch = Batch {
            changes: vec![
                Change::Put(store::encode_pre_key(&signed)),
                Change::Put(store::encode_device(&device.data)),
            ],
        };
        (device, batch)
    }

    /// The device stored in `device` and its signed prekeys.
    pub(crate) fn restore(
        device: &Record,
        signed_pre_keys: &[&Record],
    ) -> Result<Device, RestoreError> {
        let data = store::decode_device(device)?;
        let mut current = None;
        for record in signed_pre_keys {
            let key = store::decode_pre_key(record)?;
            if key.id == data.signed_pre_key_id {
                current = Some(key);
            }
        }
        let signed = current.ok_or_else(|| RestoreError::BadField {
            space: Space::Device,
            key: store::DEVICE_KEY.to_owned(),
            field: "signed_pre_key_id",
        })?;
        let identity =
            IdentityKeyPair::from_private(PrivateKey::from_bytes(*data.identity_private));
        let signed_pre_key = KeyPair::from_private(PrivateKey::from_bytes(*signed.private));
        let signature = signed.signature.ok_or_else(|| RestoreError::BadField {
            space: Space::SignedPreKey,
            key: signed.id.to_string(),
            field: "signature",
        })?;
        if !xeddsa::verify(
            identity.identity_key().0.raw(),
            &signed_pre_key.public.serialize(),
            &signature,
        ) {
            return Err(RestoreError::BadField {
                space: Space::SignedPreKey,
                key: signed.id.to_string(),
                field: "signature",
            });
        }
        Ok(Device {
            noise: NoiseKeyPair::from_private(*data.noise_private),
            identity,
            signed_pre_key,
            signed_pre_key_signature: signature,
            data,
        })
    }

    /// The record of the device as it is now.
    pub(crate) fn record(&self) -> Record {
        store::encode_device(&self.data)
    }

    /// A batch that stores the device as it is now.
    pub(crate) fn persist(&self) -> Batch {
        Batch {
            changes: vec![Change::Put(self.record())],
        }
    }

    /// The stored fields.
    pub(crate) fn data(&self) -> &DeviceData {
        &self.data
    }

    /// Whether the device was linked to an account (it has its own JID).
    pub(crate) fn is_paired(&self) -> bool {
        self.data.jid.is_some()
    }

    /// Own phone-number device JID.
    pub(crate) fn jid(&self) -> Option<&Jid> {
        self.data.jid.as_ref()
    }

    /// Own LID device JID.
    pub(crate) fn lid(&self) -> Option<&Jid> {
        self.data.lid.as_ref()
    }

    /// The Noise static key.
    pub(crate) fn noise(&self) -> &NoiseKeyPair {
        &self.noise
    }

    /// The Signal identity key pair.
    pub(crate) fn identity(&self) -> &IdentityKeyPair {
        &self.identity
    }

    /// The Signal registration id.
    pub(crate) fn registration_id(&self) -> u32 {
        self.data.registration_id
    }

    /// The current signed prekey: id, key pair and signature.
    pub(crate) fn signed_pre_key(&self) -> (u32, &KeyPair, &[u8; 64]) {
        (
            self.data.signed_pre_key_id,
            &self.signed_pre_key,
            &self.signed_pre_key_signature,
        )
    }

    /// The account's signature of this device (`ADVSignedDeviceIdentity`, sent with every
    /// `pkmsg`); empty before pairing.
    pub(crate) fn signed_identity(&self) -> Vec<u8> {
        self.data.signed_identity.clone().unwrap_or_default()
    }

    /// The identity as the pairing functions take it.
    pub(crate) fn pair_identity(&self) -> pair::KeyPair {
        pair::KeyPair::from_private(*self.data.identity_private)
    }

    /// The Noise key as the pairing functions take it.
    pub(crate) fn pair_noise(&self) -> pair::KeyPair {
        pair::KeyPair::from_private(*self.data.noise_private)
    }

    /// The current adv secret.
    pub(crate) fn adv_secret(&self) -> pair::AdvSecret {
        pair::AdvSecret::new(*self.data.adv_secret)
    }

    /// Replaces the adv secret (a QR refresh or `companion_finish`); returns the batch.
    pub(crate) fn set_adv_secret(&mut self, secret: &pair::AdvSecret) -> Batch {
        self.data.adv_secret = Zeroizing::new(*secret.as_bytes());
        self.persist()
    }

    /// The ClientPayload for the next handshake: registration while unpaired, login after.
    pub(crate) fn client_payload(
        &self,
        profile: &ClientProfile,
    ) -> Result<ClientPayload, PayloadError> {
        match &self.data.jid {
            Some(jid) => {
                let username = jid.user.parse::<u64>().unwrap_or_default();
                Ok(payload::login_payload(
                    profile,
                    username,
                    u32::from(jid.device),
                ))
            }
            None => payload::registration_payload(profile, &self.registration_keys()),
        }
    }

    fn registration_keys(&self) -> RegistrationKeys {
        RegistrationKeys {
            registration_id: self.data.registration_id,
            identity_public: *self.identity.identity_key().0.raw(),
            signed_prekey_id: self.data.signed_pre_key_id,
            signed_prekey_public: *self.signed_pre_key.public.raw(),
            signed_prekey_signature: self.signed_pre_key_signature,
        }
    }

    /// Records the pairing: own JID and LID, the signed identity, platform and business name.
    /// Returns the batch that stores it (with the primary's identity as trusted for device 0
    /// of the account's LID and phone number).
    pub(crate) fn set_paired(
        &mut self,
        jid: Jid,
        lid: Option<Jid>,
        signed_identity: Vec<u8>,
        platform: String,
        business_name: Option<String>,
        primary_identity: &[u8; 32],
    ) -> Batch {
        let mut changes = Vec::with_capacity(3);
        for account in [Some(&jid), lid.as_ref()].into_iter().flatten() {
            let primary = Jid::device(account.user.clone(), 0, account.server.clone());
            changes.push(Change::Put(store::encode_identity(
                &primary,
                primary_identity,
            )));
        }
        self.data.jid = Some(jid);
        self.data.lid = lid;
        self.data.signed_identity = Some(signed_identity);
        self.data.platform = Some(platform);
        self.data.business_name = business_name;
        changes.push(Change::Put(self.record()));
        Batch { changes }
    }

    /// Stores the LID the server gave in `<success>`; the batch is empty when nothing changed.
    pub(crate) fn set_lid(&mut self, lid: Jid) -> Batch {
        if self.data.lid.as_ref() == Some(&lid) {
            return Batch::default();
        }
        self.data.lid = Some(lid);
        self.persist()
    }

    /// Counts a successful login.
    pub(crate) fn count_login(&mut self) -> Batch {
        self.data.login_count = self.data.login_count.saturating_add(1);
        self.persist()
    }

    /// Stores the edge-routing blob for the next connection.
    pub(crate) fn set_routing_info(&mut self, routing: Vec<u8>) -> Batch {
        if self.data.routing_info.as_deref() == Some(routing.as_slice()) {
            return Batch::default();
        }
        self.data.routing_info = Some(routing);
        self.persist()
    }

    /// Draws `count` new one-time prekeys with fresh ids. Returns their ids and public keys
    /// and the batch that stores them (and the advanced id counter); the batch must be
    /// persisted before the upload leaves.
    pub(crate) fn generate_pre_keys(
        &mut self,
        count: u32,
        rng: &mut Rng,
    ) -> (Vec<(u32, [u8; 32])>, Batch) {
        let mut keys = Vec::with_capacity(count as usize);
        let mut changes = Vec::with_capacity(count as usize + 1);
        for _ in 0..count {
            let id = self.data.next_pre_key_id;
            // Wrap to 1 after the 24-bit maximum: by then the oldest ids are long consumed.
            self.data.next_pre_key_id = if id >= MAX_PRE_KEY_ID { 1 } else { id + 1 };
            let private = Zeroizing::new(rng.bytes::<32>());
            let public = *PrivateKey::from_bytes(*private).public_key().raw();
            changes.push(Change::Put(store::encode_pre_key(&PreKeyData {
                id,
                private,
                signature: None,
            })));
            keys.push((id, public));
        }
        if let Some(&(last, _)) = keys.last() {
            self.data.uploaded_pre_key_id = last;
        }
        changes.push(Change::Put(self.record()));
        (keys, Batch { changes })
    }

    /// Draws one one-time prekey for a retry receipt. The last
    /// [`MESSAGING_MAX_RETRY_PRE_KEYS`] such keys are kept: the oldest beyond is deleted in the
    /// same batch and its id returned (a copy in memory must go too), so that a stranger's
    /// undecryptable messages cannot make the device store prekeys without bound.
    pub(crate) fn generate_retry_pre_key(
        &mut self,
        rng: &mut Rng,
    ) -> ((u32, [u8; 32]), Batch, Option<u32>) {
        let (keys, mut batch) = self.generate_pre_keys(1, rng);
        let key = keys.first().copied().unwrap_or_default();
        self.data.retry_pre_key_ids.push(key.0);
        let dropped = (self.data.retry_pre_key_ids.len() > MESSAGING_MAX_RETRY_PRE_KEYS)
            .then(|| self.data.retry_pre_key_ids.remove(0));
        // The device record last in the batch is written again with the ring.
        batch.changes.pop();
        if let Some(old) = dropped {
            batch.changes.push(Change::Delete {
                space: Space::PreKey,
                key: old.to_string(),
            });
        }
        batch.changes.push(Change::Put(self.record()));
        (key, batch, dropped)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::noise::payload::WebVersion;

    fn records(batch: &Batch) -> Vec<Record> {
        batch
            .changes
            .iter()
            .filter_map(|change| match change {
                Change::Put(record) => Some(record.clone()),
                Change::Delete { .. } | Change::DeleteAll => None,
            })
            .collect()
    }

    #[test]
    fn a_generated_device_restores_identically() {
        let mut rng = Rng::from_seed([1; 32]);
        let (device, batch) = Device::generate(&mut rng);
        let stored = records(&batch);
        let device_record = stored.iter().find(|r| r.space == Space::Device).unwrap();
        let signed: Vec<&Record> = stored
            .iter()
            .filter(|r| r.space == Space::SignedPreKey)
            .collect();
        let restored = Device::restore(device_record, &signed).unwrap();
        assert_eq!(restored.data(), device.data());
        assert_eq!(restored.noise().public_key(), device.noise().public_key());
        assert!(!restored.is_paired());
        let profile = ClientProfile::new(WebVersion::new(2, 3000, 1), "walink");
        let payload = restored.client_payload(&profile).unwrap();
        assert!(payload.device_pairing_data.is_some());
    }

    #[test]
    fn a_missing_or_forged_signed_prekey_is_refused() {
        let mut rng = Rng::from_seed([2; 32]);
        let (_, batch) = Device::generate(&mut rng);
        let stored = records(&batch);
        let device_record = stored.iter().find(|r| r.space == Space::Device).unwrap();
        assert!(matches!(
            Device::restore(device_record, &[]),
            Err(RestoreError::BadField {
                field: "signed_pre_key_id",
                ..
            })
        ));
        let mut forged = stored
            .iter()
            .find(|r| r.space == Space::SignedPreKey)
            .unwrap()
            .clone();
        let mut data = store::decode_pre_key(&forged).unwrap();
        data.signature = Some([7; 64]);
        forged = store::encode_pre_key(&data);
        assert!(matches!(
            Device::restore(device_record, &[&forged]),
            Err(RestoreError::BadField {
                field: "signature",
                ..
            })
        ));
    }

    #[test]
    fn prekeys_get_fresh_ids_and_are_persisted() {
        let mut rng = Rng::from_seed([3; 32]);
        let (mut device, _) = Device::generate(&mut rng);
        let (first, batch) = device.generate_pre_keys(3, &mut rng);
        let (second, _) = device.generate_pre_keys(2, &mut rng);
        let ids: Vec<u32> = first.iter().chain(&second).map(|(id, _)| *id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        assert_eq!(batch.changes.len(), 4);
        assert_eq!(device.data().next_pre_key_id, 6);
    }
}
