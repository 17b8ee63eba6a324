//! Prekey bundles: the IQ that fetches them for devices without a session, the parsing of its
//! reply into [`PreKeyBundle`]s, and the `<keys>` block a retry receipt carries.
//!
//! Fetch (WhiskeySockets/Baileys `src/Socket/messages-send.ts` `assertSessions`; tulir/whatsmeow
//! `prekeys.go` `fetchPreKeys`):
//! `<iq id=… xmlns="encrypt" type="get" to="s.whatsapp.net"><key><user jid="<device jid>"/>…
//! </key></iq>`. Reply (Baileys `src/Utils/signal.ts` `parseAndInjectE2ESessions`; whatsmeow
//! `nodeToPreKeyBundle`): `<list><user jid=…>` with `<registration>` (4 bytes big-endian),
//! `<type>` (`05`), `<identity>` (32 bytes), `<skey><id>` (3 bytes) `<value>` (32)
//! `<signature>` (64) `</skey>`, optionally `<key><id><value></key>` (a one-time prekey), and
//! `<device-identity>`; or an `<error code text>` for that device. Keys travel without the
//! 0x05 type prefix.

use crate::binary::{Jid, Node, Value};
use crate::signal::xeddsa::SIGNATURE_LEN;
use crate::signal::{IdentityKey, PreKeyBundle, PreKeyId, PublicKey, SignedPreKeyId};

use super::address::DeviceAddress;
use super::error::MessagingError;
use super::usync::{attr_text, iq_error};

/// The `<type>` content of a key bundle: the Curve25519 key type (Baileys `KEY_BUNDLE_TYPE`).
pub const KEY_BUNDLE_TYPE: u8 = 5;

/// Builds the prekey-bundle fetch for `devices`.
pub fn build_prekey_fetch(iq_id: &str, devices: &[DeviceAddress]) -> Node {
    Node::new("iq")
        .attr("id", iq_id.to_owned())
        .attr("xmlns", "encrypt")
        .attr("type", "get")
        .attr("to", Value::Jid(Jid::server_jid()))
        .children_from([Node::new("key").children_from(
            devices
                .iter()
                .map(|device| Node::new("user").attr("jid", Value::Jid(device.to_jid()))),
        )])
}

fn public_key(bytes: &[u8]) -> Result<PublicKey, MessagingError> {
    match bytes.len() {
        32 => {
            let mut raw = [0u8; 32];
            raw.copy_from_slice(bytes);
            Ok(PublicKey::from_raw(raw))
        }
        33 => PublicKey::deserialize(bytes).map_err(|_| MessagingError::Malformed("bad key")),
        _ => Err(MessagingError::Malformed("bad key length")),
    }
}

fn child_bytes<'a>(node: &'a Node, tag: &'static str) -> Result<&'a [u8], MessagingError> {
    node.child(tag)
        .and_then(Node::content_bytes)
        .ok_or(MessagingError::Malformed(tag))
}

fn be_uint(bytes: &[u8], what: &'static str) -> Result<u32, MessagingError> {
    if bytes.is_empty() || bytes.len() > 4 {
        return Err(MessagingError::Malformed(what));
    }
    Ok(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// Reads the key children of a bundle (`<identity>`, `<skey>`, optional `<key>`), as in a fetch
/// reply's `<user>` or a retry receipt's `<keys>`.
pub fn parse_bundle(node: &Node, registration_id: u32) -> Result<PreKeyBundle, MessagingError> {
    let identity = public_key(child_bytes(node, "identity")?)?;
    let skey = node
        .child("skey")
        .ok_or(MessagingError::Malformed("skey"))?;
    let signature: [u8; SIGNATURE_LEN] = child_bytes(skey, "signature")?
        .try_into()
        .map_err(|_| MessagingError::Malformed("signature"))?;
    let pre_key = match node.child("key") {
        Some(key) => Some((
            PreKeyId(be_uint(child_bytes(key, "id")?, "key id")?),
            public_key(child_bytes(key, "value")?)?,
        )),
        None => None,
    };
    Ok(PreKeyBundle {
        registration_id,
        identity_key: IdentityKey(identity),
        signed_pre_key_id: SignedPreKeyId(be_uint(child_bytes(skey, "id")?, "skey id")?),
        signed_pre_key: public_key(child_bytes(skey, "value")?)?,
        signed_pre_key_signature: signature,
        pre_key,
    })
}

/// One device of a prekey fetch reply: its bundle, or why there is none.
pub type FetchedBundle = (DeviceAddress, Result<PreKeyBundle, MessagingError>);

/// Parses a prekey fetch reply.
pub fn parse_prekey_reply(node: &Node) -> Result<Vec<FetchedBundle>, MessagingError> {
    if let Some(error) = iq_error(node) {
        return Err(error);
    }
    let list = node
        .child("list")
        .ok_or(MessagingError::Malformed("prekey reply without <list>"))?;
    let mut out = Vec::new();
    for user in list.children_by_tag("user") {
        let Some(address) = user
            .attr_jid("jid")
            .and_then(|jid| DeviceAddress::from_jid(&jid).ok())
        else {
            continue;
        };
        let bundle = match user.child("error") {
            Some(error) => Err(MessagingError::ServerError {
                code: error
                    .attr_str("code")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
                text: attr_text(error, "text").unwrap_or_default(),
            }),
            None => child_bytes(user, "registration")
                .and_then(|bytes| be_uint(bytes, "registration"))
                .and_then(|registration| parse_bundle(user, registration)),
        };
        out.push((address, bundle));
    }
    Ok(out)
}

fn be_bytes(value: u32, len: usize) -> Vec<u8> {
    value.to_be_bytes()[4 - len..].to_vec()
}

/// The `<keys>` block of a retry receipt: our identity, a fresh one-time prekey, our signed
/// prekey and our device identity (Baileys `sendRetryRequest`; whatsmeow `sendRetryReceipt`).
pub fn build_keys_node(
    identity: &IdentityKey,
    pre_key: (PreKeyId, &PublicKey),
    signed_pre_key: (SignedPreKeyId, &PublicKey, &[u8; SIGNATURE_LEN]),
    device_identity: &[u8],
) -> Node {
    Node::new("keys").children_from([
        Node::new("type").bytes(vec![KEY_BUNDLE_TYPE]),
        Node::new("identity").bytes(identity.0.raw().to_vec()),
        Node::new("key").children_from([
            Node::new("id").bytes(be_bytes(pre_key.0.0, 3)),
            Node::new("value").bytes(pre_key.1.raw().to_vec()),
        ]),
        Node::new("skey").children_from([
            Node::new("id").bytes(be_bytes(signed_pre_key.0.0, 3)),
            Node::new("value").bytes(signed_pre_key.1.raw().to_vec()),
            Node::new("signature").bytes(signed_pre_key.2.to_vec()),
        ]),
        Node::new("device-identity").bytes(device_identity.to_vec()),
    ])
}

/// A registration id as WhatsApp sends it: 4 bytes big-endian.
pub fn registration_bytes(registration_id: u32) -> Vec<u8> {
    registration_id.to_be_bytes().to_vec()
}

/// Reads a `<registration>` child.
pub fn parse_registration(node: &Node) -> Result<u32, MessagingError> {
    be_uint(child_bytes(node, "registration")?, "registration")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::messaging::content::tests::Rng;
    use crate::signal::{IdentityKeyPair, PreKey, SignedPreKey};

    #[test]
    fn fetch_reply_round_trips_through_the_keys_block() {
        let mut rng = Rng(9);
        let identity = IdentityKeyPair::generate(&mut rng);
        let signed = SignedPreKey::generate(SignedPreKeyId(0x010203), &identity, &mut rng);
        let one_time = PreKey::generate(PreKeyId(77), &mut rng);
        let keys = build_keys_node(
            &identity.identity_key(),
            (one_time.id, &one_time.key_pair.public),
            (signed.id, &signed.key_pair.public, &signed.signature),
            b"adv",
        );
        let mut children = keys.children().to_vec();
        children.push(Node::new("registration").bytes(registration_bytes(4242)));
        let reply = Node::new("iq")
            .attr("type", "result")
            .children_from([Node::new("list").children_from([
                Node::new("user")
                    .attr("jid", Value::Jid("111:2@s.whatsapp.net".parse().unwrap()))
                    .children_from(children),
                Node::new("user")
                    .attr("jid", Value::Jid("222@s.whatsapp.net".parse().unwrap()))
                    .children_from([Node::new("error").attr("code", "406").attr("text", "x")]),
            ])]);
        let parsed = parse_prekey_reply(&reply).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].0.to_string(), "111:2@s.whatsapp.net");
        let bundle = parsed[0].1.as_ref().unwrap();
        assert_eq!(bundle.registration_id, 4242);
        assert_eq!(bundle.identity_key, identity.identity_key());
        assert_eq!(bundle.signed_pre_key_id, signed.id);
        assert_eq!(bundle.signed_pre_key, signed.key_pair.public);
        assert_eq!(bundle.signed_pre_key_signature, signed.signature);
        assert_eq!(
            bundle.pre_key,
            Some((one_time.id, one_time.key_pair.public))
        );
        assert!(matches!(
            parsed[1].1,
            Err(MessagingError::ServerError { code: 406, .. })
        ));
    }

    #[test]
    fn builds_the_fetch() {
        let iq = build_prekey_fetch("1", &[DeviceAddress::parse("900:3@lid").unwrap()]);
        assert_eq!(iq.attr_str("xmlns"), Some("encrypt"));
        let user = iq.child("key").unwrap().child("user").unwrap();
        assert_eq!(user.attr_jid("jid").unwrap().to_string(), "900:3@lid");
    }

    #[test]
    fn refuses_malformed_bundles() {
        let user = Node::new("user").children_from([Node::new("identity").bytes(vec![1; 31])]);
        assert!(matches!(
            parse_bundle(&user, 1),
            Err(MessagingError::Malformed(_))
        ));
        assert!(matches!(
            parse_bundle(&Node::new("user"), 1),
            Err(MessagingError::Malformed("identity"))
        ));
    }
}
