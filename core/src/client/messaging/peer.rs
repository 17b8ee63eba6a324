//! Peer messages to this account's primary phone only (features.md §2.7): the on-demand
//! history request (`PEER_DATA_OPERATION_REQUEST_MESSAGE`) is encrypted for our device 0 alone
//! and sent as WhatsApp Web sends it (whatsmeow `preparePeerMessageNode`, Baileys
//! `sendPeerDataOperationMessage`):
//!
//! ```text
//! <message id to="<own user, non-AD>" type="text" category="peer" push_priority="high_force">
//!   <meta appdata="default"/>
//!   <enc v="2" type="pkmsg|msg">…</enc>
//!   [<device-identity>…</device-identity>]      when a pkmsg
//! </message>
//! ```
//!
//! No `<participants>` and no device-sent wrapper: the server hands the stanza to the device
//! the `enc` was made for, our phone, and to none of our companions.

use rand_core::CryptoRng;

use crate::binary::{Node, Value};
use crate::proto::wa;

use super::address::DeviceAddress;
use super::content::encode_padded;
use super::error::MessagingError;
use super::keystore::Keystore;

/// Encrypts `message` for `primary` (our own device 0) as a peer message with id `id`.
pub(crate) fn build_peer<R: CryptoRng + ?Sized>(
    keystore: &mut Keystore,
    id: &str,
    message: &wa::Message,
    primary: &DeviceAddress,
    device_identity: &[u8],
    rng: &mut R,
) -> Result<Node, MessagingError> {
    if primary.device != 0 || !keystore.own().is_own_user(primary) {
        return Err(MessagingError::InvalidAddress);
    }
    let ciphertext = keystore.encrypt(primary, &encode_padded(message, rng))?;
    let pre_key = ciphertext.enc_type() == "pkmsg";
    let mut children = vec![
        Node::new("meta").attr("appdata", "default"),
        Node::new("enc")
            .attr("v", "2")
            .attr("type", ciphertext.enc_type())
            .bytes(ciphertext.serialize().to_vec()),
    ];
    if pre_key {
        children.push(Node::new("device-identity").bytes(device_identity.to_vec()));
    }
    Ok(Node::new("message")
        .attr("id", id.to_owned())
        .attr("to", Value::Jid(primary.with_device(0).to_jid()))
        .attr("type", "text")
        .attr("category", "peer")
        .attr("push_priority", "high_force")
        .children_from(children))
}
