//! The server's half of message routing, for simulations and tests: what the server delivers
//! to one recipient device for a `<message>` a device sent. walink's client never calls this;
//! walink-sim and the messaging tests do, so that both sides of the wire are exercised with
//! the same stanza shapes (see the module docs of [`super::outgoing`] and
//! [`super::incoming`]).

use crate::binary::GROUP_SERVER;
use crate::binary::{Jid, Node, Value};

use super::address::DeviceAddress;

/// The stanza the server delivers to `recipient` for `stanza` sent by `sender`, stamped with
/// the server time `t` (seconds); `None` when nothing in it is for that device.
pub fn deliver(
    stanza: &Node,
    sender: &DeviceAddress,
    recipient: &DeviceAddress,
    t: u64,
) -> Option<Node> {
    let to = stanza.attr_jid("to")?;
    let id = stanza.attr_str("id")?.to_owned();
    let recipient_jid = recipient.to_jid();
    let mut encs: Vec<Node> = Vec::new();
    if let Some(participants) = stanza.child("participants") {
        for target in participants.children_by_tag("to") {
            if target.attr_jid("jid").as_ref() == Some(&recipient_jid) {
                encs.extend(target.children_by_tag("enc").cloned());
            }
        }
    }
    let is_group = to.server == GROUP_SERVER;
    // A retry resend goes to one device: `participant` in groups, `device_fanout="false"` or a
    // device JID in `to` otherwise.
    let direct_to_device = stanza.get_attr("participant").is_some()
        || (!is_group && (to.device != 0 || stanza.attr_str("device_fanout") == Some("false")));
    if direct_to_device {
        // A retry resend addressed to one device: its enc sits directly under <message>.
        let target = stanza.attr_jid("participant").unwrap_or_else(|| to.clone());
        if target != recipient_jid {
            return None;
        }
        encs.extend(stanza.children_by_tag("enc").cloned());
    } else if is_group {
        encs.extend(
            stanza
                .children_by_tag("enc")
                .filter(|enc| enc.attr_str("type") == Some("skmsg"))
                .cloned(),
        );
    }
    if encs.is_empty() {
        return None;
    }
    let mut node = Node::new("message").attr("id", id);
    if is_group {
        node = node
            .attr("from", Value::Jid(to))
            .attr("participant", Value::Jid(sender.to_jid()));
    } else {
        node = node.attr("from", Value::Jid(sender.to_jid()));
        let chat = stanza
            .attr_jid("recipient")
            .unwrap_or_else(|| to.to_non_device());
        let same_user = sender.user == recipient.user && sender.lid == recipient.lid;
        if same_user {
            node = node.attr("recipient", Value::Jid(Jid::new(chat.user, chat.server)));
        }
    }
    node = node
        .attr("type", stanza.attr_str("type").unwrap_or("text").to_owned())
        .attr("t", t.to_string());
    Some(node.children_from(encs))
}
