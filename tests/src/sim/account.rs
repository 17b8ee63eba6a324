//! Accounts and their devices, as the server stores them.

use std::collections::{BTreeMap, VecDeque};

use walink_core::binary::{DEFAULT_USER_SERVER, HIDDEN_USER_SERVER, Jid, Node};

use super::phone::Phone;

/// A one-time prekey a device uploaded: its 24-bit id and public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKey {
    /// The prekey id (24 bits on the wire).
    pub id: u32,
    /// The 32-byte public key.
    pub public: [u8; 32],
}

/// A device's signed prekey: id, public key and the identity key's signature over
/// `0x05 ‖ public`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedPreKey {
    /// The signed prekey id (24 bits on the wire).
    pub id: u32,
    /// The 32-byte public key.
    pub public: [u8; 32],
    /// The 64-byte XEdDSA signature.
    pub signature: [u8; 64],
}

/// One device of an account: the primary phone (device 0) or a linked companion.
#[derive(Clone, Debug)]
pub struct Device {
    /// The device id: 0 for the phone, from 1 for companions.
    pub id: u16,
    /// The Noise static key the device logs in with (companions only; the phone is simulated
    /// in-process and never connects).
    pub noise_public: Option<[u8; 32]>,
    /// The Signal identity public key.
    pub identity_public: [u8; 32],
    /// The Signal registration id.
    pub registration_id: u32,
    /// The current signed prekey.
    pub signed_prekey: SignedPreKey,
    /// One-time prekeys not handed out yet, by id.
    pub prekeys: BTreeMap<u32, [u8; 32]>,
    /// The ADV key index the phone assigned at pairing.
    pub key_index: u32,
    /// What the companion calls itself (`DeviceProps.os`).
    pub name: String,
    /// The device's platform type (`DeviceProps.platformType`).
    pub platform_type: i32,
    /// Whether the server already told the device its one-time prekeys run low (reset by the
    /// next upload).
    pub prekeys_low_notified: bool,
    /// Stanzas waiting for the device to connect and go active.
    pub offline: VecDeque<Node>,
    /// Stanzas delivered on a connection and not acknowledged yet: sent again, marked offline,
    /// on the next login (at-least-once delivery, as the real server does).
    pub unacked: Vec<Node>,
}

impl Device {
    /// Takes one one-time prekey (the lowest id), as a bundle fetch consumes it.
    pub fn take_prekey(&mut self) -> Option<PreKey> {
        let (&id, _) = self.prekeys.iter().next()?;
        let public = self.prekeys.remove(&id)?;
        Some(PreKey { id, public })
    }
}

/// A WhatsApp account: a phone number, a LID, the primary phone and the linked devices.
#[derive(Debug)]
pub struct Account {
    /// The phone number, digits only (the user part of its `s.whatsapp.net` JID).
    pub user: String,
    /// The LID user part.
    pub lid: String,
    /// The display name the phone announces (`notify`).
    pub push_name: String,
    /// The ADV raw id of the account (the same in every device identity the phone signs).
    pub raw_id: u32,
    /// The primary phone.
    pub phone: Phone,
    /// Every device, the phone (0) included, by id. Removed devices are deleted.
    pub devices: BTreeMap<u16, Device>,
    /// The next companion device id to hand out.
    pub next_device_id: u16,
    /// The next ADV key index to hand out.
    pub next_key_index: u32,
    /// Every `ADVSignedKeyIndexList` the phone signed, oldest first (the server serves the
    /// latest; a replay fault serves an older one).
    pub key_index_lists: Vec<SignedKeyIndexList>,
    /// What the server does to the list it serves (a fault; [`KeyIndexListFault::Honest`] by
    /// default).
    pub key_index_list_fault: KeyIndexListFault,
    /// Companions the simulation itself plays (their keys are the simulation's, and a
    /// [`SimCompanion`] decrypts whatever reaches them): linked by the phone, or injected by
    /// the server without the phone (a fault). Kept after they are unlinked, to show what an
    /// unlinked device could still read.
    pub sim_companions: BTreeMap<u16, SimCompanion>,
}

/// A companion device the simulation plays: a Signal device (the phone's machinery) that
/// decrypts every stanza delivered to it and keeps what it read.
#[derive(Debug)]
pub struct SimCompanion {
    /// Its keys, sessions, sender keys and inbox.
    pub device: Phone,
    /// Whether the phone linked it (its key index is in the phone's lists); `false` for a
    /// device the server injected.
    pub vouched: bool,
    /// Whether it is still a device of the account (`false` once unlinked).
    pub linked: bool,
}

/// An encoded `ADVSignedKeyIndexList` and the timestamp (Unix seconds) it was signed at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedKeyIndexList {
    /// The signed timestamp, also the `ts` attribute it is served with.
    pub timestamp: u64,
    /// The encoded `ADVSignedKeyIndexList`.
    pub bytes: Vec<u8>,
}

/// What the server serves as an account's key-index list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyIndexListFault {
    /// The phone's latest list.
    #[default]
    Honest,
    /// The phone's latest list with the spies' key indexes added to its details, keeping the
    /// phone's signature (which no longer verifies).
    BadSignature,
    /// A list covering the spies, signed by a key of the server's own, which it embeds as the
    /// account signature key.
    ForeignKey,
    /// The list the phone signed `back` changes ago (a replay: older timestamp, valid
    /// signature).
    Replay {
        /// How many lists back.
        back: usize,
    },
}

impl Account {
    /// The account's phone-number JID (no device).
    pub fn jid(&self) -> Jid {
        Jid::new(self.user.clone(), DEFAULT_USER_SERVER)
    }

    /// The account's LID JID (no device).
    pub fn lid_jid(&self) -> Jid {
        Jid::new(self.lid.clone(), HIDDEN_USER_SERVER)
    }

    /// The phone-number JID of one device.
    pub fn device_jid(&self, device: u16) -> Jid {
        Jid::device(self.user.clone(), device, DEFAULT_USER_SERVER)
    }

    /// The LID JID of one device.
    pub fn device_lid(&self, device: u16) -> Jid {
        Jid::device(self.lid.clone(), device, HIDDEN_USER_SERVER)
    }

    /// The key indexes the phone currently vouches for (every companion it linked and did not
    /// unlink; the server's spies are not among them).
    pub fn valid_key_indexes(&self) -> Vec<u32> {
        self.devices
            .values()
            .filter(|device| {
                device.id != 0
                    && self
                        .sim_companions
                        .get(&device.id)
                        .is_none_or(|companion| companion.vouched)
            })
            .map(|device| device.key_index)
            .collect()
    }
}
