//! Device lists as the primary phone vouches for them, and the server's faults against them.
//!
//! The phone signs an `ADVKeyIndexList` (raw id, timestamp, the latest key index it handed out,
//! the key indexes of the companions it links) with the account's identity key whenever it
//! links or unlinks a companion; the server stores what the phone signed and serves the latest
//! as `<key-index-list ts>` in usync device answers (transport notes §4.4 for the ADV protos;
//! docs/messaging.md, "Device lists"). Written here from the protocol description: the phone
//! builds and signs the list itself (`Phone::sign_key_index_list`), nothing comes from walink's
//! client.
//!
//! [`Server::link_sim_companion`] has the phone link a companion the simulation plays (a
//! [`SimCompanion`] that decrypts whatever reaches it, before and after it is unlinked).
//! Faults: [`Server::inject_device`] adds such a companion the phone never linked (its keys
//! are the server's), and [`Server::set_key_index_list_fault`] makes the server serve a list
//! the phone did not sign as it is (a bad signature, a key of the server's own, or a replay of
//! an older list).

use super::*;

use super::super::account::{SignedKeyIndexList, SimCompanion};
use walink_core::proto::wa::{AdvKeyIndexList, AdvSignedKeyIndexList};

/// Signed lists kept per account (the replay fault reaches this far back).
pub(crate) const KEY_INDEX_LISTS_KEPT: usize = 16;

/// Key indexes the server gives the companions it injects start this far above the phone's
/// latest, so that no list the phone signs covers them.
const SPY_KEY_INDEX_OFFSET: u32 = 1_000;

/// The details of a key-index list.
fn list_details(raw_id: u32, timestamp: u64, current: u32, valid: Vec<u32>) -> Vec<u8> {
    AdvKeyIndexList {
        raw_id: Some(raw_id),
        timestamp: Some(timestamp),
        current_index: Some(current),
        valid_indexes: valid,
        account_type: None,
    }
    .encode_to_vec()
}

impl Server {
    /// The phone of `account` signs the key-index list of its current companions. The
    /// timestamp is `now` in seconds, and always later than the previous list's (lists signed
    /// without a clock, on unlink, take the next second).
    pub(super) fn sign_device_list(account: &mut Account, now: Option<Timestamp>) {
        let previous = account.key_index_lists.last().map(|list| list.timestamp);
        let timestamp = match (now.map(|now| now / 1000), previous) {
            (Some(now), Some(previous)) => now.max(previous + 1),
            (Some(now), None) => now,
            (None, Some(previous)) => previous + 1,
            (None, None) => 1,
        };
        let details = list_details(
            account.raw_id,
            timestamp,
            account.next_key_index.saturating_sub(1),
            account.valid_key_indexes(),
        );
        let signature = account.phone.sign_key_index_list(&details);
        let bytes = AdvSignedKeyIndexList {
            details: Some(details),
            account_signature: Some(signature.to_vec()),
            account_signature_key: Some(account.phone.identity_public().to_vec()),
        }
        .encode_to_vec();
        account
            .key_index_lists
            .push(SignedKeyIndexList { timestamp, bytes });
        if account.key_index_lists.len() > KEY_INDEX_LISTS_KEPT {
            account.key_index_lists.remove(0);
        }
    }

    /// The `<key-index-list ts>` node served for `account`, as its fault says; none before the
    /// phone signed one (an account without companions).
    pub(super) fn served_key_index_list(account: &Account) -> Option<Node> {
        let latest = account.key_index_lists.last()?;
        let injected = || -> Vec<u32> {
            account
                .devices
                .values()
                .filter(|device| {
                    account
                        .sim_companions
                        .get(&device.id)
                        .is_some_and(|companion| !companion.vouched)
                })
                .map(|device| device.key_index)
                .collect()
        };
        let served = match account.key_index_list_fault {
            KeyIndexListFault::Honest => latest.clone(),
            KeyIndexListFault::Replay { back } => {
                let at = account.key_index_lists.len().saturating_sub(1 + back);
                account.key_index_lists.get(at).unwrap_or(latest).clone()
            }
            KeyIndexListFault::BadSignature => {
                let signed = AdvSignedKeyIndexList::decode(latest.bytes.as_slice()).ok()?;
                let list = AdvKeyIndexList::decode(signed.details.as_deref()?).ok()?;
                let mut valid = list.valid_indexes.clone();
                valid.extend(injected());
                let details = list_details(
                    account.raw_id,
                    latest.timestamp,
                    list.current_index.unwrap_or_default(),
                    valid,
                );
                let bytes = AdvSignedKeyIndexList {
                    details: Some(details),
                    ..signed
                }
                .encode_to_vec();
                SignedKeyIndexList {
                    timestamp: latest.timestamp,
                    bytes,
                }
            }
            KeyIndexListFault::ForeignKey => {
                // The server's own key: a phone of its making, seeded by the account's raw id
                // (the same run signs the same way).
                let mut seed = [0x5a; 32];
                seed[..4].copy_from_slice(&account.raw_id.to_be_bytes());
                let forger = Phone::new(seed);
                let mut valid = account.valid_key_indexes();
                valid.extend(injected());
                let timestamp = latest.timestamp + 1;
                let details = list_details(
                    account.raw_id,
                    timestamp,
                    account.next_key_index.saturating_sub(1),
                    valid,
                );
                let signature = forger.sign_key_index_list(&details);
                let bytes = AdvSignedKeyIndexList {
                    details: Some(details),
                    account_signature: Some(signature.to_vec()),
                    account_signature_key: Some(forger.identity_public().to_vec()),
                }
                .encode_to_vec();
                SignedKeyIndexList { timestamp, bytes }
            }
        };
        Some(
            Node::new("key-index-list")
                .attr("ts", served.timestamp.to_string())
                .bytes(served.bytes),
        )
    }

    /// The phone of `user` links a companion the simulation plays: a new device id and key
    /// index, and a new signed list (at `now`) that covers it. Returns the device id.
    pub fn link_sim_companion(&mut self, now: Timestamp, user: &str) -> Result<u16, SimError> {
        let id = self.add_sim_companion(user, None)?;
        if let Some(account) = self.accounts.get_mut(user) {
            Self::sign_device_list(account, Some(now));
        }
        Ok(id)
    }

    /// A fault: the server adds a companion to `user`'s device list that the phone never
    /// linked. Its identity, signed prekey and one-time prekeys are the server's (the
    /// simulation decrypts whatever is delivered to it). Its key index is `key_index`, or by
    /// default one no list of the phone covers. Returns the new device id.
    pub fn inject_device(&mut self, user: &str, key_index: Option<u32>) -> Result<u16, SimError> {
        let key_index = match key_index {
            Some(key_index) => key_index,
            None => {
                let account = self
                    .accounts
                    .get(user)
                    .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
                account.next_key_index + SPY_KEY_INDEX_OFFSET + u32::from(account.next_device_id)
            }
        };
        self.add_sim_companion(user, Some(key_index))
    }

    /// Adds a companion the simulation plays to `user`: with the phone's next key index
    /// (vouched for) when `injected` is `None`, else with that key index and unvouched.
    fn add_sim_companion(&mut self, user: &str, injected: Option<u32>) -> Result<u16, SimError> {
        let seed = self.rng.fork_seed();
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        let device = Phone::new(seed);
        let id = account.next_device_id;
        account.next_device_id += 1;
        let key_index = match injected {
            Some(key_index) => key_index,
            None => {
                let key_index = account.next_key_index;
                account.next_key_index += 1;
                key_index
            }
        };
        account.devices.insert(
            id,
            Device {
                id,
                noise_public: None,
                identity_public: device.identity_public(),
                registration_id: device.registration_id(),
                signed_prekey: device.signed_prekey().clone(),
                prekeys: device
                    .prekeys()
                    .into_iter()
                    .map(|key| (key.id, key.public))
                    .collect(),
                key_index,
                name: "simulated".to_owned(),
                platform_type: 0,
                prekeys_low_notified: false,
                offline: VecDeque::new(),
                unacked: Vec::new(),
            },
        );
        account.sim_companions.insert(
            id,
            SimCompanion {
                device,
                vouched: injected.is_none(),
                linked: true,
            },
        );
        Ok(id)
    }

    /// The key-index list the server serves for `user` now (fault included), as `(ts,
    /// bytes)`.
    pub fn served_key_index_list_of(&self, user: &str) -> Option<(u64, Vec<u8>)> {
        let node = Self::served_key_index_list(self.accounts.get(user)?)?;
        let ts = node.attr_str("ts")?.parse().ok()?;
        Some((ts, node.content_bytes()?.to_vec()))
    }

    /// A fault: what the server serves as `user`'s key-index list from now on.
    pub fn set_key_index_list_fault(
        &mut self,
        user: &str,
        fault: KeyIndexListFault,
    ) -> Result<(), SimError> {
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        account.key_index_list_fault = fault;
        Ok(())
    }

    /// What a companion the simulation plays received and could decrypt, in order (`None`
    /// for any other device).
    pub fn sim_companion_messages(&self, user: &str, device: u16) -> Option<&[PhoneMessage]> {
        self.accounts
            .get(user)?
            .sim_companions
            .get(&device)
            .map(|companion| companion.device.inbox())
    }

    /// A stanza for a companion the simulation plays: it decrypts what it can. Whether
    /// `device` is one.
    pub(super) fn sim_companion_receive(&mut self, user: &str, device: u16, stanza: &Node) -> bool {
        let Some(companion) = self
            .accounts
            .get_mut(user)
            .and_then(|account| account.sim_companions.get_mut(&device))
        else {
            return false;
        };
        if stanza.tag == "message" {
            let sender = stanza
                .attr_jid("participant")
                .or_else(|| stanza.attr_jid("from"))
                .map(|jid| jid.to_string())
                .unwrap_or_default();
            let group = stanza
                .attr_jid("from")
                .filter(|from| from.server == GROUP_SERVER)
                .map(|from| from.to_string());
            let encs: Vec<(String, Vec<u8>)> = stanza
                .children_by_tag("enc")
                .map(|enc| {
                    (
                        enc.attr_str("type").unwrap_or_default().to_owned(),
                        enc.content_bytes().unwrap_or_default().to_vec(),
                    )
                })
                .collect();
            let id = stanza.attr_str("id").unwrap_or_default();
            let timestamp = stanza
                .attr_str("t")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            companion
                .device
                .receive(id, &sender, group.as_deref(), &encs, timestamp);
        }
        true
    }

    /// Every companion the simulation plays that was unlinked from an account, as `(user,
    /// device)`.
    pub(super) fn unlinked_sim_companions(&self, users: &[String]) -> Vec<(String, u16)> {
        users
            .iter()
            .filter_map(|user| Some((user, self.accounts.get(user)?)))
            .flat_map(|(user, account)| {
                account
                    .sim_companions
                    .iter()
                    .filter(|(_, companion)| !companion.linked)
                    .map(move |(&device, _)| (user.clone(), device))
            })
            .collect()
    }
}
