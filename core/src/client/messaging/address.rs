//! One address per peer device, and the mapping between phone-number JIDs and LIDs.
//!
//! A WhatsApp account has two user identifiers: its phone number (`<pn>@s.whatsapp.net`) and a
//! LID (`<lid>@lid`), an opaque id that hides the number. Since 2025 the server addresses most
//! traffic by LID and tells the client the other form in stanza attributes (`sender_lid`,
//! `participant_pn`, `peer_recipient_lid` ...; Baileys `extractAddressingContext` in
//! `src/Utils/decode-wa-message.ts`) and in usync replies (`<lid val=…>`). walink keeps one
//! [`LidMap`] per client and keys every Signal record by the LID form when the mapping is known
//! (Baileys migrates sessions to the LID form the same way, `migrateSession`), so a peer reached
//! under either form uses one session.

use std::collections::HashMap;

use crate::binary::Jid;
use crate::binary::{DEFAULT_USER_SERVER, HIDDEN_USER_SERVER};
use crate::limits::MESSAGING_MAX_LID_MAPPINGS;

use super::error::MessagingError;

/// One device of one user, in the phone-number or the LID form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceAddress {
    /// The user part: digits of the phone number or of the LID.
    pub user: String,
    /// The device id (0 is the primary phone).
    pub device: u16,
    /// Whether this is the LID form (`@lid`) rather than the phone-number form.
    pub lid: bool,
}

impl DeviceAddress {
    /// The address of a user or LID JID, with its device. Anything else (groups, broadcast,
    /// servers, agents) is refused.
    pub fn from_jid(jid: &Jid) -> Result<DeviceAddress, MessagingError> {
        let lid = match &*jid.server {
            DEFAULT_USER_SERVER => false,
            HIDDEN_USER_SERVER => true,
            _ => return Err(MessagingError::InvalidAddress),
        };
        if jid.user.is_empty() || jid.agent != 0 || !jid.user.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MessagingError::InvalidAddress);
        }
        Ok(DeviceAddress {
            user: jid.user.clone(),
            device: jid.device,
            lid,
        })
    }

    /// Parses the text form of a user or LID JID.
    pub fn parse(text: &str) -> Result<DeviceAddress, MessagingError> {
        let jid: Jid = text.parse().map_err(|_| MessagingError::InvalidAddress)?;
        DeviceAddress::from_jid(&jid)
    }

    /// The server part for this form.
    pub fn server(&self) -> &'static str {
        if self.lid {
            HIDDEN_USER_SERVER
        } else {
            DEFAULT_USER_SERVER
        }
    }

    /// The JID on the wire (`user:device@server`).
    pub fn to_jid(&self) -> Jid {
        Jid::device(self.user.clone(), self.device, self.server())
    }

    /// The key of this device's records in the store: `<user>.<device>@<server>`. Built by hand:
    /// it is made several times per message, and `format!` costs more than the rest of it.
    pub fn record_key(&self) -> String {
        let server = self.server();
        let mut key = String::with_capacity(self.user.len() + server.len() + 7);
        key.push_str(&self.user);
        key.push('.');
        push_decimal(&mut key, self.device);
        key.push('@');
        key.push_str(server);
        key
    }

    /// Parses a key written by [`DeviceAddress::record_key`].
    pub fn from_record_key(key: &str) -> Option<DeviceAddress> {
        let (left, server) = key.split_once('@')?;
        let (user, device) = left.rsplit_once('.')?;
        let lid = match server {
            DEFAULT_USER_SERVER => false,
            HIDDEN_USER_SERVER => true,
            _ => return None,
        };
        if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(DeviceAddress {
            user: user.to_owned(),
            device: device.parse().ok()?,
            lid,
        })
    }

    /// The same user's device `device`.
    pub fn with_device(&self, device: u16) -> DeviceAddress {
        DeviceAddress {
            user: self.user.clone(),
            device,
            lid: self.lid,
        }
    }
}

/// Appends `value` in decimal.
fn push_decimal(out: &mut String, value: u16) {
    let mut digits = [0u8; 5];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

impl core::fmt::Display for DeviceAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.to_jid())
    }
}

/// The phone-number user ↔ LID user mapping, learned from stanzas and usync replies.
#[derive(Clone, Debug, Default)]
pub struct LidMap {
    pn_to_lid: HashMap<String, String>,
    lid_to_pn: HashMap<String, String>,
}

impl LidMap {
    /// An empty map.
    pub fn new() -> LidMap {
        LidMap::default()
    }

    /// Records that phone-number user `pn` is LID user `lid`. Returns whether this changed the
    /// map. A map at its bound keeps its entries and refuses new users.
    pub fn insert(&mut self, pn: &str, lid: &str) -> bool {
        if pn.is_empty() || lid.is_empty() {
            return false;
        }
        if self.pn_to_lid.get(pn).map(String::as_str) == Some(lid) {
            return false;
        }
        if !self.pn_to_lid.contains_key(pn) && self.pn_to_lid.len() >= MESSAGING_MAX_LID_MAPPINGS {
            return false;
        }
        if let Some(old_lid) = self.pn_to_lid.insert(pn.to_owned(), lid.to_owned()) {
            self.lid_to_pn.remove(&old_lid);
        }
        if let Some(old_pn) = self.lid_to_pn.insert(lid.to_owned(), pn.to_owned()) {
            if old_pn != pn {
                self.pn_to_lid.remove(&old_pn);
            }
        }
        true
    }

    /// The LID user of a phone-number user.
    pub fn lid_for(&self, pn: &str) -> Option<&str> {
        self.pn_to_lid.get(pn).map(String::as_str)
    }

    /// The phone-number user of a LID user.
    pub fn pn_for(&self, lid: &str) -> Option<&str> {
        self.lid_to_pn.get(lid).map(String::as_str)
    }

    /// How many users are mapped.
    pub fn len(&self) -> usize {
        self.pn_to_lid.len()
    }

    /// Whether no user is mapped.
    pub fn is_empty(&self) -> bool {
        self.pn_to_lid.is_empty()
    }

    /// The form Signal records of `address` are kept under: the LID form when known.
    pub fn canonical(&self, address: &DeviceAddress) -> DeviceAddress {
        if address.lid {
            return address.clone();
        }
        match self.lid_for(&address.user) {
            Some(lid) => DeviceAddress {
                user: lid.to_owned(),
                device: address.device,
                lid: true,
            },
            None => address.clone(),
        }
    }

    /// Whether two addresses name the same user (in either form).
    pub fn same_user(&self, a: &DeviceAddress, b: &DeviceAddress) -> bool {
        let a = self.canonical(a);
        let b = self.canonical(b);
        a.user == b.user && a.lid == b.lid
    }

    /// Every mapping, phone-number user first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pn_to_lid
            .iter()
            .map(|(pn, lid)| (pn.as_str(), lid.as_str()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_print_and_key() {
        let a = DeviceAddress::parse("15551234567:3@s.whatsapp.net").unwrap();
        assert_eq!(
            (a.user.as_str(), a.device, a.lid),
            ("15551234567", 3, false)
        );
        assert_eq!(a.record_key(), "15551234567.3@s.whatsapp.net");
        assert_eq!(
            DeviceAddress::from_record_key(&a.record_key()),
            Some(a.clone())
        );
        assert_eq!(a.to_string(), "15551234567:3@s.whatsapp.net");
        let l = DeviceAddress::parse("987654321@lid").unwrap();
        assert_eq!(l.record_key(), "987654321.0@lid");
        for device in [9, 10, 99, 100, 1234, u16::MAX] {
            assert_eq!(
                l.with_device(device).record_key(),
                format!("987654321.{device}@lid")
            );
        }
        assert_eq!(l.to_string(), "987654321@lid");
        for bad in [
            "123@g.us",
            "abc@s.whatsapp.net",
            "status@broadcast",
            "@lid",
            "x",
        ] {
            assert_eq!(
                DeviceAddress::parse(bad),
                Err(MessagingError::InvalidAddress),
                "{bad}"
            );
        }
        assert_eq!(DeviceAddress::from_record_key("1.x@lid"), None);
        assert_eq!(DeviceAddress::from_record_key("1.2@g.us"), None);
    }

    #[test]
    fn lid_map_is_one_to_one_and_canonicalises() {
        let mut map = LidMap::new();
        assert!(map.insert("111", "900"));
        assert!(!map.insert("111", "900"));
        let pn = DeviceAddress::parse("111:2@s.whatsapp.net").unwrap();
        let lid = map.canonical(&pn);
        assert_eq!(lid, DeviceAddress::parse("900:2@lid").unwrap());
        assert!(map.same_user(&pn, &lid));
        // Remapping the number drops the old LID's reverse entry.
        assert!(map.insert("111", "901"));
        assert_eq!(map.pn_for("900"), None);
        assert_eq!(map.pn_for("901"), Some("111"));
        // A LID moving to another number drops the old number.
        assert!(map.insert("222", "901"));
        assert_eq!(map.lid_for("111"), None);
        assert_eq!(map.len(), 1);
    }
}
