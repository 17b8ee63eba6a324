//! Small stanza builders shared by the sub-machines.

use crate::binary::Node;

/// The `<ack>` for a received stanza (transport.md §6.6): `class` is the stanza's tag, `id` and
/// `to` (its `from`) are copied, and `participant`, `recipient` and (except for messages)
/// `type` are copied when present (tulir/whatsmeow:message.go `sendAck`).
pub(crate) fn ack_for(stanza: &Node) -> Node {
    let mut ack = Node::new("ack").attr("class", stanza.tag.clone());
    let copy = |ack: Node, from: &str, to: &'static str| match stanza.get_attr(from) {
        Some(value) => ack.attr(to, value.clone()),
        None => ack,
    };
    ack = copy(ack, "id", "id");
    ack = copy(ack, "from", "to");
    ack = copy(ack, "participant", "participant");
    ack = copy(ack, "recipient", "recipient");
    if stanza.tag != "message" {
        ack = copy(ack, "type", "type");
    }
    ack
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn acks_copy_the_addressing() {
        let receipt = Node::new("receipt")
            .attr("id", "ABC")
            .attr("from", "123@s.whatsapp.net")
            .attr("participant", "456@s.whatsapp.net")
            .attr("type", "read");
        let ack = ack_for(&receipt);
        assert_eq!(ack.attr_str("class"), Some("receipt"));
        assert_eq!(ack.attr_str("id"), Some("ABC"));
        assert_eq!(ack.attr_jid("to").unwrap().user, "123");
        assert_eq!(ack.attr_jid("participant").unwrap().user, "456");
        assert_eq!(ack.attr_str("type"), Some("read"));
        let message = Node::new("message")
            .attr("id", "X")
            .attr("from", "1@s.whatsapp.net")
            .attr("type", "text");
        assert_eq!(ack_for(&message).attr_str("type"), None);
    }
}
