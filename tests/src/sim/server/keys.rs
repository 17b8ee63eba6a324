//! Prekey bundles and the key nodes of the wire, from what the server stores.

use super::*;

/// A device's prekey bundle from what the server stores, consuming one one-time prekey.
pub(super) fn bundle_of(device: &mut Device) -> walink_core::signal::PreKeyBundle {
    use walink_core::signal::{IdentityKey, PreKeyId, PublicKey, SignedPreKeyId};
    let pre_key = device
        .take_prekey()
        .map(|key| (PreKeyId(key.id), PublicKey::from_raw(key.public)));
    walink_core::signal::PreKeyBundle {
        registration_id: device.registration_id,
        identity_key: IdentityKey(PublicKey::from_raw(device.identity_public)),
        signed_pre_key_id: SignedPreKeyId(device.signed_prekey.id),
        signed_pre_key: PublicKey::from_raw(device.signed_prekey.public),
        signed_pre_key_signature: device.signed_prekey.signature,
        pre_key,
    }
}

/// A bundle from a node holding `identity`, `skey` and optionally `key` (a prekey fetch's
/// `<user>` or a retry receipt's `<keys>`), with the registration id given.
pub(super) fn bundle_from_node(
    node: &Node,
    registration_id: u32,
) -> Option<walink_core::signal::PreKeyBundle> {
    use walink_core::signal::{IdentityKey, PreKeyId, PublicKey, SignedPreKeyId};
    let identity: [u8; 32] = child_array(node, "identity")?;
    let skey = parse_signed_prekey(node.child("skey")?)?;
    let pre_key = match node.child("key") {
        Some(key) => Some((
            PreKeyId(be_u32(child_bytes(key, "id")?)?),
            PublicKey::from_raw(child_array(key, "value")?),
        )),
        None => None,
    };
    Some(walink_core::signal::PreKeyBundle {
        registration_id,
        identity_key: IdentityKey(PublicKey::from_raw(identity)),
        signed_pre_key_id: SignedPreKeyId(skey.id),
        signed_pre_key: PublicKey::from_raw(skey.public),
        signed_pre_key_signature: skey.signature,
        pre_key,
    })
}

pub(super) fn parse_signed_prekey(node: &Node) -> Option<SignedPreKey> {
    let id = child_bytes(node, "id")?;
    if id.len() != 3 {
        return None;
    }
    Some(SignedPreKey {
        id: be_u32(id)?,
        public: child_array(node, "value")?,
        signature: child_array(node, "signature")?,
    })
}

/// The keys a device published, as a bundle fetch and a digest name them: `registration`,
/// `type`, `identity` and the signed prekey.
pub(super) fn published_keys(device: &Device) -> [Node; 4] {
    [
        bytes_node(
            "registration",
            device.registration_id.to_be_bytes().to_vec(),
        ),
        bytes_node("type", vec![5]),
        bytes_node("identity", device.identity_public.to_vec()),
        signed_prekey_node(&device.signed_prekey),
    ]
}

pub(super) fn signed_prekey_node(skey: &SignedPreKey) -> Node {
    Node::new("skey").children_from([
        bytes_node("id", id3(skey.id)),
        bytes_node("value", skey.public.to_vec()),
        bytes_node("signature", skey.signature.to_vec()),
    ])
}
