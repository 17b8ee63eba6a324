//! Device lists: the usync query that asks the server for the devices (and LIDs) of users, and
//! the parsing of its reply.
//!
//! Query (WhiskeySockets/Baileys `src/Socket/socket.ts` `executeUSyncQuery` with
//! `USyncDeviceProtocol` and `USyncLIDProtocol`; tulir/whatsmeow `usync.go` `GetUserDevices`):
//!
//! ```text
//! <iq id=… to="s.whatsapp.net" type="get" xmlns="usync">
//!   <usync context="message" mode="query" sid=… last="true" index="0">
//!     <query><devices version="2"/><lid/></query>
//!     <list><user jid="<user>@s.whatsapp.net"/>…</list>
//!   </usync>
//! </iq>
//! ```
//!
//! Reply: `<iq type="result"><usync><list><user jid=…><devices><device-list><device id="0"/>
//! <device id="3" key-index="1"/>…</device-list><key-index-list ts=…>…</key-index-list>
//! </devices><lid val="<lid>@lid"/></user>…</list></usync></iq>`. A companion device (id > 0)
//! is kept only with a `key-index` (Baileys `extractDeviceJids`: "produces a bad req
//! otherwise"); a per-user `<error>` leaves that user without devices. The companions are
//! claims until the `<key-index-list>` (an `ADVSignedKeyIndexList`) verifies against the
//! user's primary identity ([`super::device_list`]).

use crate::binary::{DEFAULT_USER_SERVER, HIDDEN_USER_SERVER};
use crate::binary::{Jid, Node, Value};
use crate::limits::MESSAGING_MAX_DEVICES_PER_USER;

use super::address::DeviceAddress;
use super::error::MessagingError;

/// Builds the device-list query for `users` (user or LID JIDs; their device parts are ignored).
pub fn build_device_query(iq_id: &str, sid: &str, users: &[DeviceAddress]) -> Node {
    let list = users.iter().map(|user| {
        Node::new("user").attr(
            "jid",
            Value::Jid(Jid::new(user.user.clone(), user.server())),
        )
    });
    Node::new("iq")
        .attr("id", iq_id.to_owned())
        .attr("to", Value::Jid(Jid::server_jid()))
        .attr("type", "get")
        .attr("xmlns", "usync")
        .children_from([Node::new("usync")
            .attr("context", "message")
            .attr("mode", "query")
            .attr("sid", sid.to_owned())
            .attr("last", "true")
            .attr("index", "0")
            .children_from([
                Node::new("query")
                    .children_from([Node::new("devices").attr("version", "2"), Node::new("lid")]),
                Node::new("list").children_from(list),
            ])])
}

/// One user of a usync reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDevices {
    /// The user as the reply names it (device 0).
    pub user: DeviceAddress,
    /// The user's LID user part, when the reply carried it (for phone-number users).
    pub lid: Option<String>,
    /// The device ids the server lists (device 0, and companions with a `key-index`), ascending.
    pub devices: Vec<u16>,
    /// The `key-index` the server claims for each listed companion, by device id.
    pub key_indexes: Vec<(u16, u32)>,
    /// The signed key-index list, when the reply carried one.
    pub key_index_list: Option<SignedKeyIndexList>,
}

/// The content of a `<key-index-list ts>` node: an encoded `ADVSignedKeyIndexList` and the
/// server's `ts` (Unix seconds), which must equal the signed timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedKeyIndexList {
    /// The `ts` attribute.
    pub timestamp: u64,
    /// The encoded `ADVSignedKeyIndexList`.
    pub bytes: Vec<u8>,
}

impl UserDevices {
    /// The usable devices as addresses, in the form the user was named by.
    #[cfg(any(test, feature = "internals-for-benches"))]
    pub fn addresses(&self) -> impl Iterator<Item = DeviceAddress> + '_ {
        self.devices
            .iter()
            .map(|&device| self.user.with_device(device))
    }
}

/// A string or JID attribute as text.
pub(crate) fn attr_text(node: &Node, key: &str) -> Option<String> {
    match node.get_attr(key)? {
        Value::Str(text) => Some(text.to_string()),
        Value::Jid(jid) => Some(jid.to_string()),
    }
}

/// The error an IQ reply carries (`type="error"` with `<error code text>`), if any.
pub(crate) fn iq_error(node: &Node) -> Option<MessagingError> {
    if node.attr_str("type") != Some("error") {
        return None;
    }
    let error = node.child("error");
    Some(MessagingError::ServerError {
        code: error
            .and_then(|e| e.attr_str("code"))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        text: error
            .and_then(|e| e.attr_str("text"))
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Parses a usync device-list reply.
pub fn parse_device_reply(node: &Node) -> Result<Vec<UserDevices>, MessagingError> {
    if let Some(error) = iq_error(node) {
        return Err(error);
    }
    let list = node
        .child("usync")
        .and_then(|usync| usync.child("list"))
        .ok_or(MessagingError::Malformed("usync reply without <list>"))?;
    let mut users = Vec::new();
    for user in list.children_by_tag("user") {
        let Some(jid) = user.attr_jid("jid") else {
            continue;
        };
        let Ok(address) = DeviceAddress::from_jid(&jid) else {
            continue;
        };
        let address = address.with_device(0);
        let lid = user
            .child("lid")
            .and_then(|lid| lid.attr_jid("val"))
            .filter(|lid| lid.server == HIDDEN_USER_SERVER && !lid.user.is_empty())
            .map(|lid| lid.user);
        let mut devices = Vec::new();
        let mut listed = Vec::new();
        let listing = user.child("devices").filter(|d| d.child("error").is_none());
        if let Some(list) = listing.and_then(|d| d.child("device-list")) {
            for device in list.children_by_tag("device") {
                let Some(id) = device.attr_str("id").and_then(|id| id.parse::<u16>().ok()) else {
                    continue;
                };
                let key_index = device
                    .attr_str("key-index")
                    .and_then(|k| k.parse::<u32>().ok());
                if id != 0 && key_index.is_none() {
                    continue;
                }
                if !devices.contains(&id) && devices.len() < MESSAGING_MAX_DEVICES_PER_USER {
                    devices.push(id);
                    if id != 0
                        && let Some(key_index) = key_index
                    {
                        listed.push((id, key_index));
                    }
                }
            }
        }
        let key_index_list = listing
            .and_then(|d| d.child("key-index-list"))
            .and_then(|list| {
                Some(SignedKeyIndexList {
                    timestamp: list.attr_str("ts")?.parse().ok()?,
                    bytes: list.content_bytes()?.to_vec(),
                })
            });
        crate::sort::sort_unstable(&mut devices);
        // In the devices' order (ascending), without a sort of its own.
        let key_indexes = devices
            .iter()
            .filter_map(|&id| listed.iter().find(|(d, _)| *d == id).copied())
            .collect();
        users.push(UserDevices {
            user: address,
            lid: if address_is_pn(&jid) { lid } else { None },
            devices,
            key_indexes,
            key_index_list,
        });
    }
    Ok(users)
}

fn address_is_pn(jid: &Jid) -> bool {
    jid.server == DEFAULT_USER_SERVER
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn user(
        jid: &str,
        devices: &[(&'static str, Option<&'static str>)],
        lid: Option<&str>,
    ) -> Node {
        let device_list = devices.iter().map(|(id, key_index)| {
            let node = Node::new("device").attr("id", *id);
            match key_index {
                Some(k) => node.attr("key-index", *k),
                None => node,
            }
        });
        let mut children = vec![
            Node::new("devices").children_from([
                Node::new("device-list").children_from(device_list),
                Node::new("key-index-list")
                    .attr("ts", "1700000000")
                    .bytes(vec![1, 2]),
            ]),
        ];
        if let Some(lid) = lid {
            children.push(Node::new("lid").attr("val", Value::Jid(lid.parse().unwrap())));
        }
        Node::new("user")
            .attr("jid", Value::Jid(jid.parse().unwrap()))
            .children_from(children)
    }

    #[test]
    fn builds_the_query() {
        let users = [
            DeviceAddress::parse("111:4@s.whatsapp.net").unwrap(),
            DeviceAddress::parse("900@lid").unwrap(),
        ];
        let iq = build_device_query("abc.1", "sid.1", &users);
        assert_eq!(iq.attr_str("xmlns"), Some("usync"));
        let usync = iq.child("usync").unwrap();
        assert_eq!(usync.attr_str("context"), Some("message"));
        let query = usync.child("query").unwrap();
        assert_eq!(
            query.child("devices").unwrap().attr_str("version"),
            Some("2")
        );
        assert!(query.child("lid").is_some());
        let jids: Vec<String> = usync
            .child("list")
            .unwrap()
            .children_by_tag("user")
            .map(|u| u.attr_jid("jid").unwrap().to_string())
            .collect();
        assert_eq!(jids, ["111@s.whatsapp.net", "900@lid"]);
    }

    #[test]
    fn parses_devices_and_lids() {
        let reply = Node::new("iq")
            .attr("type", "result")
            .children_from([
                Node::new("usync").children_from([Node::new("list").children_from([
                    user(
                        "111@s.whatsapp.net",
                        &[("0", None), ("3", Some("1")), ("5", None), ("2", Some("2"))],
                        Some("900@lid"),
                    ),
                    user("900@lid", &[("0", None)], None),
                    Node::new("user")
                        .attr("jid", Value::Jid("222@s.whatsapp.net".parse().unwrap()))
                        .children_from([Node::new("devices")
                            .children_from([Node::new("error").attr("code", "404")])]),
                ])]),
            ]);
        let users = parse_device_reply(&reply).unwrap();
        assert_eq!(users.len(), 3);
        assert_eq!(users[0].devices, [0, 2, 3], "device 5 has no key-index");
        assert_eq!(users[0].key_indexes, [(2, 2), (3, 1)]);
        assert_eq!(
            users[0].key_index_list,
            Some(SignedKeyIndexList {
                timestamp: 1_700_000_000,
                bytes: vec![1, 2]
            })
        );
        assert_eq!(users[0].lid.as_deref(), Some("900"));
        let addresses: Vec<String> = users[0].addresses().map(|a| a.to_string()).collect();
        assert_eq!(
            addresses,
            [
                "111@s.whatsapp.net",
                "111:2@s.whatsapp.net",
                "111:3@s.whatsapp.net"
            ]
        );
        assert_eq!(users[1].devices, [0]);
        assert!(users[1].user.lid);
        assert!(users[2].devices.is_empty());
        assert_eq!(users[2].key_index_list, None);
    }

    #[test]
    fn reports_iq_errors_and_malformed_replies() {
        let error = Node::new("iq")
            .attr("type", "error")
            .children_from([Node::new("error")
                .attr("code", "500")
                .attr("text", "internal")]);
        assert_eq!(
            parse_device_reply(&error),
            Err(MessagingError::ServerError {
                code: 500,
                text: "internal".into()
            })
        );
        assert!(matches!(
            parse_device_reply(&Node::new("iq").attr("type", "result")),
            Err(MessagingError::Malformed(_))
        ));
    }
}
