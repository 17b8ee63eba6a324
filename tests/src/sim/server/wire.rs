//! What the server checks on the wire beyond routing: a message id it already routed for a
//! sending device is acknowledged and dropped (WhatsApp's server deduplicates by sender and
//! id, so a client may resend an unacknowledged message); every message key a sender uses is
//! recorded, and a second use with other bytes is reported as key reuse; a group message's
//! participant hash (`phash`) is compared with the server's own view; and injected IQ errors.

use super::*;

use walink_core::proto::wa::SenderKeyMessage;
use walink_core::signal::{PreKeySignalMessage, SignalMessage};

/// Message ids remembered per sending device for deduplication.
pub const ROUTED_IDS_PER_DEVICE: usize = 4096;

/// Message-key uses remembered for the key-reuse check (a test-sized bound).
pub const MAX_KEY_USES: usize = 1_000_000;

/// One use of a message key seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyUse {
    /// A 1:1 Signal message: sender, recipient device, the sender's ratchet key, the counter.
    Session {
        /// The sending device as the stanza names it.
        sender: String,
        /// The receiving device (`user:device`).
        recipient: String,
        /// The ratchet public key of the sending chain.
        ratchet: Vec<u8>,
        /// The message counter in that chain.
        counter: u32,
    },
    /// A sender-key message: sender, group, key id, iteration.
    SenderKey {
        /// The sending device as the stanza names it.
        sender: String,
        /// The group.
        group: String,
        /// The sender key id.
        key_id: u32,
        /// The iteration.
        iteration: u32,
    },
}

/// The server's wire checks and injected errors.
#[derive(Debug, Default)]
pub(super) struct WireChecks {
    routed: BTreeMap<(String, u16), VecDeque<String>>,
    /// Duplicate first sends dropped.
    pub(super) duplicates: u64,
    key_uses: BTreeMap<KeyUse, [u8; 32]>,
    /// Key uses seen a second time with other bytes.
    pub(super) key_reuses: Vec<KeyUse>,
    /// Key uses checked.
    pub(super) key_uses_checked: u64,
    /// Group messages whose `phash` differed from the server's view.
    pub(super) phash_mismatches: u64,
    /// IQ errors to inject: (how many more, code).
    pub(super) iq_failures: Option<(u32, u16)>,
    /// IQ errors injected so far.
    pub(super) iq_failures_sent: u64,
    /// Device-list queries answered.
    pub(super) usync_answered: u64,
    /// Chance per message stanza to a companion that it is delivered twice.
    pub(super) duplicate_per_mille: u32,
    /// Message stanzas delivered twice so far.
    pub(super) duplicated: u64,
    /// The last message stanzas delivered to each companion, for `redeliver`.
    delivered: BTreeMap<(String, u16), VecDeque<Node>>,
}

/// Message stanzas kept per companion for [`Server::redeliver`].
pub const DELIVERED_KEPT: usize = 256;

impl WireChecks {
    pub(super) fn log_delivery(&mut self, user: &str, device: u16, stanza: &Node) {
        let kept = self.delivered.entry((user.to_owned(), device)).or_default();
        if kept.len() >= DELIVERED_KEPT {
            kept.pop_front();
        }
        kept.push_back(stanza.clone());
    }

    /// Whether `id` from `sender` was routed before; remembers it otherwise.
    pub(super) fn seen(&mut self, sender: &(String, u16), id: &str) -> bool {
        let ids = self.routed.entry(sender.clone()).or_default();
        if ids.iter().any(|known| known == id) {
            self.duplicates += 1;
            return true;
        }
        if ids.len() >= ROUTED_IDS_PER_DEVICE {
            ids.pop_front();
        }
        ids.push_back(id.to_owned());
        false
    }

    /// Records the message keys of a `<message>` delivered to `recipient`.
    pub(super) fn record(&mut self, recipient: (&str, u16), stanza: &Node) {
        let sender = stanza
            .attr_jid("participant")
            .or_else(|| stanza.attr_jid("from"))
            .map(|jid| jid.to_string())
            .unwrap_or_default();
        let group = stanza
            .attr_jid("from")
            .filter(|jid| jid.server == GROUP_SERVER)
            .map(|jid| jid.to_string());
        for enc in stanza.children_by_tag("enc") {
            let Content::Bytes(bytes) = &enc.content else {
                continue;
            };
            let key = match enc.attr_str("type") {
                Some("pkmsg") => PreKeySignalMessage::deserialize(bytes)
                    .ok()
                    .map(|m| session_use(&sender, recipient, m.message())),
                Some("msg") => SignalMessage::deserialize(bytes)
                    .ok()
                    .map(|m| session_use(&sender, recipient, &m)),
                Some("skmsg") => sender_key_use(&sender, group.as_deref(), bytes),
                _ => None,
            };
            let Some(key) = key else {
                continue;
            };
            let digest: [u8; 32] = Sha256::digest(bytes).into();
            self.key_uses_checked += 1;
            match self.key_uses.get(&key) {
                Some(known) if *known != digest => self.key_reuses.push(key),
                Some(_) => {}
                None if self.key_uses.len() < MAX_KEY_USES => {
                    self.key_uses.insert(key, digest);
                }
                None => {}
            }
        }
    }
}

fn session_use(sender: &str, recipient: (&str, u16), message: &SignalMessage) -> KeyUse {
    KeyUse::Session {
        sender: sender.to_owned(),
        recipient: format!("{}:{}", recipient.0, recipient.1),
        ratchet: message.ratchet_key().serialize().to_vec(),
        counter: message.counter(),
    }
}

/// A sender-key message is a version byte, a `SenderKeyMessage` protobuf and a 64-byte
/// signature.
fn sender_key_use(sender: &str, group: Option<&str>, bytes: &[u8]) -> Option<KeyUse> {
    let body = bytes.get(1..bytes.len().checked_sub(64)?)?;
    let message = SenderKeyMessage::decode(body).ok()?;
    Some(KeyUse::SenderKey {
        sender: sender.to_owned(),
        group: group?.to_owned(),
        key_id: message.id?,
        iteration: message.iteration?,
    })
}

/// The participant list hash of `devices`, written here independently of walink's client:
/// every device in WhatsApp's AD notation `user.agent:device@server` (tulir/whatsmeow
/// `JID.ADString`, which `participantListHashV2` hashes; WhatsApp Web's `formatFull`), sorted
/// byte-wise, concatenated, SHA-256, the first six bytes in unpadded standard base64 after
/// `2:`.
pub fn participant_hash(devices: &[Jid]) -> String {
    use base64::Engine as _;
    let mut forms: Vec<Vec<u8>> = devices
        .iter()
        .map(|jid| {
            let mut form = jid.user.as_bytes().to_vec();
            form.push(b'.');
            form.extend_from_slice(jid.agent.to_string().as_bytes());
            form.push(b':');
            form.extend_from_slice(jid.device.to_string().as_bytes());
            form.push(b'@');
            form.extend_from_slice(jid.server.as_bytes());
            form
        })
        .collect();
    forms.sort();
    let mut hasher = Sha256::new();
    for form in &forms {
        hasher.update(form);
    }
    let digest = hasher.finalize();
    let mut text = String::from("2:");
    base64::engine::general_purpose::STANDARD_NO_PAD.encode_string(&digest[..6], &mut text);
    text
}

impl Server {
    /// The ids of the last message stanzas (at most [`DELIVERED_KEPT`]) delivered to companion
    /// `device` of `user`, oldest first.
    pub fn delivered_ids(&self, user: &str, device: u16) -> Vec<String> {
        self.wire
            .delivered
            .get(&(user.to_owned(), device))
            .map(|kept| {
                kept.iter()
                    .filter_map(|stanza| stanza.attr_str("id").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Message ids dropped as duplicates of an earlier send by the same device.
    pub fn duplicate_sends(&self) -> u64 {
        self.wire.duplicates
    }

    /// Message keys seen twice on the wire with different bytes (must stay empty).
    pub fn key_reuses(&self) -> &[KeyUse] {
        &self.wire.key_reuses
    }

    /// How many message-key uses the key-reuse check saw.
    pub fn key_uses_checked(&self) -> u64 {
        self.wire.key_uses_checked
    }

    /// Group messages whose `phash` differed from the server's view of the group's devices.
    pub fn phash_mismatches(&self) -> u64 {
        self.wire.phash_mismatches
    }

    /// Answers the next `count` IQs of logged-in devices (pings excepted) with `<error code>`
    /// (500, 503, ...), as an overloaded server does.
    pub fn fail_next_iqs(&mut self, count: u32, code: u16) {
        self.wire.iq_failures = (count > 0).then_some((count, code));
    }

    /// Delivers message `id` to companion `device` of `user` once more, as it was delivered
    /// before (an offline queue that redelivers, or a redelivery after a lost receipt).
    pub fn redeliver(&mut self, user: &str, device: u16, id: &str) -> Result<(), SimError> {
        let stanza = self
            .wire
            .delivered
            .get(&(user.to_owned(), device))
            .and_then(|kept| kept.iter().rev().find(|s| s.attr_str("id") == Some(id)))
            .cloned()
            .ok_or_else(|| SimError::UnknownAccount(format!("{user}:{device} message {id}")))?;
        self.deliver_once(user, device, stanza);
        Ok(())
    }

    /// Each message stanza to a companion is delivered twice with this chance (per mille).
    pub fn set_duplicate_messages(&mut self, per_mille: u32) {
        self.wire.duplicate_per_mille = per_mille;
    }

    /// Device-list (usync) queries answered so far.
    pub fn usync_answered(&self) -> u64 {
        self.wire.usync_answered
    }

    /// Message stanzas delivered twice so far.
    pub fn duplicated_messages(&self) -> u64 {
        self.wire.duplicated
    }

    /// IQ errors injected so far.
    pub fn iq_failures_sent(&self) -> u64 {
        self.wire.iq_failures_sent
    }

    /// The server's participant hash of `group` for a message in `addressing_mode`: every
    /// device of every member.
    pub(super) fn group_phash(&self, group: &Group, lid: bool) -> String {
        let mut devices = Vec::new();
        for member in &group.members {
            if let Some(account) = self.accounts.get(member) {
                for &device in account.devices.keys() {
                    devices.push(if lid {
                        account.device_lid(device)
                    } else {
                        account.device_jid(device)
                    });
                }
            }
        }
        participant_hash(&devices)
    }

    /// Takes one injected IQ failure, if any is pending: its code.
    pub(super) fn take_iq_failure(&mut self) -> Option<u16> {
        let (count, code) = self.wire.iq_failures?;
        self.wire.iq_failures = (count > 1).then_some((count - 1, code));
        self.wire.iq_failures_sent += 1;
        Some(code)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::participant_hash;
    use walink_core::binary::Jid;

    fn hash(jids: &[&str]) -> String {
        let parsed: Vec<Jid> = jids.iter().map(|jid| jid.parse().unwrap()).collect();
        participant_hash(&parsed)
    }

    /// The known answers oxidezap/whatsapp-rust publishes for WhatsApp Web's form
    /// (`phash_crosscheck_vectors`, `phash_set_includes_sending_device`).
    #[test]
    fn the_server_hashes_the_ad_form() {
        assert_eq!(hash(&["5511999999999:3@s.whatsapp.net"]), "2:5s+YxCff");
        assert_eq!(hash(&["5511999999999@s.whatsapp.net"]), "2:RJWVxcMQ");
        assert_eq!(
            hash(&[
                "5511988887777:14@s.whatsapp.net",
                "7469250125917:21@s.whatsapp.net",
            ]),
            "2:AAv/hwhn"
        );
        assert_eq!(
            hash(&[
                "100000000000099:24@lid",
                "100000000000003:12@lid",
                "100000000000001@lid",
                "100000000000002@lid",
                "100000000000001:5@lid",
                "100000000000003@lid",
                "100000000000099@lid",
            ]),
            "2:sti8OtHX"
        );
    }
}
