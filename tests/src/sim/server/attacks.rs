//! The server and its contacts as attackers, for the security tests (docs/security.md,
//! "Messaging peers"): a hostile server forges retry receipts in a device's name, holds
//! deliveries back to reshape, stitch, replay or mislabel them, hands a group's retry resends to
//! a device outside the group, and ends a stream with any conflict; a contact re-registers its
//! phone with new keys.
//!
//! Everything here is built from the protocol notes like the rest of the simulation; nothing
//! comes from walink's client code.

use super::*;

/// How a hostile server bends its own routing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hostility {
    /// A group message naming one device in `participant` (a retry resend) is delivered to that
    /// device even when its account is not a member of the group.
    pub deliver_resends_to_anyone: bool,
}

/// The attacker's state on the server: its routing knobs and the deliveries it holds back.
#[derive(Debug, Default)]
pub(super) struct Attacker {
    pub(super) hostility: Hostility,
    /// `Some` while deliveries are held (see [`Server::hold_deliveries`]).
    pub(super) held: Option<Vec<Held>>,
}

/// A delivery the server held back instead of handing it to the device.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    /// The recipient account.
    pub user: String,
    /// The recipient device.
    pub device: u16,
    /// The stanza as the server would have delivered it.
    pub stanza: Node,
}

/// The device a forged retry receipt claims to come from, and what it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForgedRetry {
    /// The account whose client is asked (it sent the message).
    pub to: (String, u16),
    /// The device the receipt names as requester; its keys (the ones the server holds) go into
    /// `<keys>` when `with_keys` is set, so whoever holds that device's private keys can read
    /// an answer.
    pub from: (String, u16),
    /// The message id asked for.
    pub id: String,
    /// The group the message belongs to (`<receipt from=group participant=from>`), if any.
    pub group: Option<Jid>,
    /// The retry count the receipt claims.
    pub count: u32,
    /// Whether to carry the requester's keys (`<registration>` is always there).
    pub with_keys: bool,
}

impl Server {
    /// Sets how the server bends its routing.
    pub fn set_hostility(&mut self, hostility: Hostility) {
        self.attacker.hostility = hostility;
    }

    /// The routing knobs in force.
    pub fn hostility(&self) -> &Hostility {
        &self.attacker.hostility
    }

    /// While `hold` is set, every stanza the server would deliver to any device (phones
    /// included) is kept back instead; [`Server::take_held`] hands them out, and
    /// [`Server::deliver`] delivers whatever the attacker makes of them.
    pub fn hold_deliveries(&mut self, hold: bool) {
        match (hold, self.attacker.held.is_some()) {
            (true, false) => self.attacker.held = Some(Vec::new()),
            (false, true) => self.attacker.held = None,
            _ => {}
        }
    }

    /// The deliveries held back so far, oldest first (holding goes on).
    pub fn take_held(&mut self) -> Vec<Held> {
        self.attacker
            .held
            .as_mut()
            .map(core::mem::take)
            .unwrap_or_default()
    }

    /// Whether a stanza for `user`'s `device` is held back (and keeps it).
    pub(super) fn hold(&mut self, user: &str, device: u16, stanza: &Node) -> bool {
        let Some(held) = self.attacker.held.as_mut() else {
            return false;
        };
        held.push(Held {
            user: user.to_owned(),
            device,
            stanza: stanza.clone(),
        });
        true
    }

    /// Delivers a retry receipt that `forged.from` never sent to `forged.to`'s device, as the
    /// server would deliver a real one: `<receipt from=<requester> id type="retry">` (or
    /// `from=<group> participant=<requester>`), `<retry count id t v="1"/>`, the requester's
    /// registration id and, with `with_keys`, its identity, signed prekey and one of its
    /// one-time prekeys from the server's store (consumed as a bundle fetch would).
    pub fn forge_retry_receipt(
        &mut self,
        now: Timestamp,
        forged: &ForgedRetry,
    ) -> Result<(), SimError> {
        let (user, device) = (&forged.from.0, forged.from.1);
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.clone()))?;
        let requester = account.device_jid(device);
        let keys = account
            .devices
            .get_mut(&device)
            .ok_or_else(|| SimError::UnknownDevice(user.clone(), device))?;
        let registration = bytes_node("registration", keys.registration_id.to_be_bytes().to_vec());
        let mut children = vec![
            Node::new("retry")
                .attr("count", forged.count.to_string())
                .attr("id", forged.id.clone())
                .attr("t", seconds(now))
                .attr("v", "1"),
            registration,
        ];
        if forged.with_keys {
            let mut bundle = vec![
                bytes_node("type", vec![5]),
                bytes_node("identity", keys.identity_public.to_vec()),
            ];
            if let Some(prekey) = keys.take_prekey() {
                bundle.push(Node::new("key").children_from([
                    bytes_node("id", id3(prekey.id)),
                    bytes_node("value", prekey.public.to_vec()),
                ]));
            }
            bundle.push(signed_prekey_node(&keys.signed_prekey));
            children.push(Node::new("keys").children_from(bundle));
        }
        let mut receipt = Node::new("receipt")
            .attr("id", forged.id.clone())
            .attr("type", "retry")
            .attr("t", seconds(now));
        receipt = match &forged.group {
            Some(group) => receipt
                .attr("from", group.clone())
                .attr("participant", requester),
            None => receipt.attr("from", requester),
        };
        let (to_user, to_device) = (&forged.to.0, forged.to.1);
        if !self
            .accounts
            .get(to_user)
            .is_some_and(|a| a.devices.contains_key(&to_device))
        {
            return Err(SimError::UnknownDevice(to_user.clone(), to_device));
        }
        self.deliver(to_user, to_device, receipt.children_from(children));
        Ok(())
    }

    /// The phone of `user` is reinstalled: a new Signal identity, registration id, signed
    /// prekey and one-time prekeys (drawn from the server's seed), published as device 0's
    /// keys; its sessions and sender keys are gone. The account's companions are unlinked, as a
    /// reinstall does (their open connections get `401 device_removed`). What the phone
    /// received before stays in its inbox (the tests' record of what the account read). Returns
    /// the new identity public key.
    pub fn reinstall_phone(&mut self, user: &str) -> Result<[u8; 32], SimError> {
        let seed = self.rng.fork_seed();
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        let phone = Phone::reinstalled(seed, &account.phone);
        let identity = phone.identity_public();
        if let Some(primary) = account.devices.get_mut(&0) {
            primary.identity_public = identity;
            primary.registration_id = phone.registration_id();
            primary.signed_prekey = phone.signed_prekey().clone();
            primary.prekeys = phone
                .prekeys()
                .into_iter()
                .map(|key| (key.id, key.public))
                .collect();
        }
        account.phone = phone;
        let companions: Vec<u16> = account
            .devices
            .keys()
            .copied()
            .filter(|&d| d != 0)
            .collect();
        for device in companions {
            self.remove_device(user, device)?;
        }
        Ok(identity)
    }
}
