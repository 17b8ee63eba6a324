//! Small builders for the stanzas the server sends.

use walink_core::binary::{Jid, Node};

/// The server's own JID, `@s.whatsapp.net`.
pub(crate) fn server_jid() -> Jid {
    Jid::server_jid()
}

/// A node with byte content.
pub(crate) fn bytes_node(tag: &'static str, bytes: impl Into<Vec<u8>>) -> Node {
    Node::new(tag).bytes(bytes)
}

/// `<iq from="s.whatsapp.net" id type="result">` with optional children.
pub(crate) fn iq_result(id: &str, children: Vec<Node>) -> Node {
    let node = Node::new("iq")
        .attr("from", server_jid())
        .attr("id", id.to_owned())
        .attr("type", "result");
    if children.is_empty() {
        node
    } else {
        node.children_from(children)
    }
}

/// `<iq from id type="error"><error code text/></iq>`.
pub(crate) fn iq_error(id: &str, code: u16, text: &str) -> Node {
    Node::new("iq")
        .attr("from", server_jid())
        .attr("id", id.to_owned())
        .attr("type", "error")
        .children_from([Node::new("error")
            .attr("code", code.to_string())
            .attr("text", text.to_owned())])
}

/// The content of a child as bytes: byte content or string content.
pub(crate) fn child_bytes<'a>(node: &'a Node, tag: &str) -> Option<&'a [u8]> {
    node.child(tag)?.content_bytes()
}

/// A child's bytes as a fixed-size array.
pub(crate) fn child_array<const N: usize>(node: &Node, tag: &str) -> Option<[u8; N]> {
    child_bytes(node, tag)?.try_into().ok()
}

/// A big-endian unsigned number of up to four bytes.
pub(crate) fn be_u32(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 4 {
        return None;
    }
    Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// The low three bytes of an id, big-endian (prekey ids on the wire).
pub(crate) fn id3(id: u32) -> Vec<u8> {
    id.to_be_bytes()[1..].to_vec()
}
