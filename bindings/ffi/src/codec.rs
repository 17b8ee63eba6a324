//! The binary node codec (`walink_core::binary`) for foreign languages.
//!
//! Foreign code sees plain values: a [`Node`] with its tag, its attributes in order, and its
//! [`Content`]. JIDs travel as strings in Baileys' notation (`15551234567:12@s.whatsapp.net`); the
//! encoder sends any string that parses as a JID in JID form, so a decoded stanza re-encodes to
//! the same bytes.

use walink_core::binary;
use walink_core::limits::MAX_NODE_DEPTH;

use crate::WalinkError;

/// One node of a stanza, like an XML element: `<tag attr="value">content</tag>`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Node {
    /// The tag (`iq`, `message`, `enc`, ...).
    pub tag: String,
    /// The attributes, in order (the order is part of the bytes).
    pub attrs: Vec<Attr>,
    /// What the node holds.
    pub content: Content,
}

/// One attribute: a key and its value; a JID value is a string in Baileys' notation.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Attr {
    /// The key (`id`, `to`, `type`, ...).
    pub key: String,
    /// The value.
    pub value: String,
}

/// What a node holds.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Content {
    /// No content: `<tag/>`. (Named `Empty`, not `None`, so Swift code never confuses it with
    /// `Optional.none`.)
    Empty,
    /// Child nodes, possibly none.
    Nodes {
        /// The children, in order.
        nodes: Vec<Node>,
    },
    /// Raw bytes (length-prefixed on the wire).
    Bytes {
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A string sent in a string form (dictionary token, packed digits, JID, or raw text when
    /// nothing shorter fits); a JID is in Baileys' notation.
    Text {
        /// The string.
        text: String,
    },
}

/// Encodes a node as a frame body: the flags byte, then the node, exactly as WhatsApp Web sends it.
/// A tree deeper than the decoders accept ([`MAX_NODE_DEPTH`] levels) is `InvalidInput` with
/// code `too_deep`: no peer could read it, and the conversion below never recurses deeper.
#[uniffi::export]
pub fn encode_node(node: Node) -> Result<Vec<u8>, WalinkError> {
    crate::error::guard(|| {
        if depth_exceeds(&node, MAX_NODE_DEPTH) {
            dismantle(node);
            return Err(WalinkError::invalid(
                "too_deep",
                format!("the node is nested more than {MAX_NODE_DEPTH} levels deep"),
            ));
        }
        Ok(binary::encode(&node.into()))
    })
}

/// Decodes a frame body (flags byte, then the node; inflated first when compressed).
#[uniffi::export]
pub fn decode_node(bytes: Vec<u8>) -> Result<Node, WalinkError> {
    crate::error::guard(|| Ok(binary::decode(&bytes)?.into()))
}

/// Drops a tree of any depth without recursing (a derived drop would recurse once per level).
fn dismantle(node: Node) {
    let mut pending = vec![node];
    while let Some(mut node) = pending.pop() {
        if let Content::Nodes { nodes } = &mut node.content {
            pending.append(nodes);
        }
    }
}

/// Whether `node` has more than `limit` levels, found without recursion (a breadth-first walk
/// with an explicit queue), whatever the depth handed in.
fn depth_exceeds(node: &Node, limit: usize) -> bool {
    let mut level: Vec<&Node> = vec![node];
    let mut depth = 1;
    while !level.is_empty() {
        if depth > limit {
            return true;
        }
        level = level
            .into_iter()
            .flat_map(|n| match &n.content {
                Content::Nodes { nodes } => nodes.as_slice(),
                _ => &[],
            })
            .collect();
        depth += 1;
    }
    false
}

impl From<binary::Node> for Node {
    fn from(node: binary::Node) -> Self {
        Node {
            tag: node.tag.into_owned(),
            attrs: node
                .attrs
                .into_iter()
                .map(|attr| Attr {
                    key: attr.key.into_owned(),
                    value: attr.value.to_string(),
                })
                .collect(),
            content: match node.content {
                binary::Content::None => Content::Empty,
                binary::Content::Nodes(nodes) => Content::Nodes {
                    nodes: nodes.into_iter().map(Node::from).collect(),
                },
                binary::Content::Bytes(bytes) => Content::Bytes { bytes },
                binary::Content::Str(text) => Content::Text {
                    text: text.into_owned(),
                },
                binary::Content::Jid(jid) => Content::Text {
                    text: jid.to_string(),
                },
            },
        }
    }
}

impl From<Node> for binary::Node {
    fn from(node: Node) -> Self {
        binary::Node {
            tag: node.tag.into(),
            attrs: node
                .attrs
                .into_iter()
                .map(|attr| binary::Attr {
                    key: attr.key.into(),
                    value: binary::Value::from(attr.value),
                })
                .collect(),
            content: match node.content {
                Content::Empty => binary::Content::None,
                Content::Nodes { nodes } => {
                    binary::Content::Nodes(nodes.into_iter().map(binary::Node::from).collect())
                }
                Content::Bytes { bytes } => binary::Content::Bytes(bytes),
                Content::Text { text } => binary::Content::Str(text.into()),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text.replace(' ', "")).unwrap()
    }

    /// Stanzas whose bytes are known: transport.md appendix A.1 (keepalive, passive/active) and
    /// Baileys 7.0.0-rc14's `encodeBinaryNode` output for an iq with a device JID, bytes and text.
    const STANZAS: [&str; 3] = [
        "00 F8 09 19 08 FF 83 1B 2A 3F 16 57 04 29 11 FA 00 03",
        "00 F8 06 19 16 EC 18 04 5A F8 01 F8 01 EC 01",
        "00f80a1908ff861234b5678a1f11fa000304291657f803f80156f8040e0cf70003ff8615551234567ffc04010203faf80438fc03686578fb04deadbeeffc0b68656c6c6f20776f726c64",
    ];

    #[test]
    fn decodes_the_keepalive() {
        let node = decode_node(unhex(STANZAS[0])).unwrap();
        let attr = |key: &str, value: &str| Attr {
            key: key.into(),
            value: value.into(),
        };
        assert_eq!(
            node,
            Node {
                tag: "iq".into(),
                attrs: vec![
                    attr("id", "1.2-3"),
                    attr("xmlns", "w:p"),
                    attr("type", "get"),
                    attr("to", "@s.whatsapp.net"),
                ],
                content: Content::Empty,
            }
        );
    }

    #[test]
    fn decoded_stanzas_re_encode_byte_for_byte() {
        for stanza in STANZAS {
            let bytes = unhex(stanza);
            assert_eq!(
                encode_node(decode_node(bytes.clone()).unwrap()).unwrap(),
                bytes
            );
        }
    }

    #[test]
    fn device_jid_and_content_kinds_cross_as_strings_and_bytes() {
        let node = decode_node(unhex(STANZAS[2])).unwrap();
        let Content::Nodes { nodes } = &node.content else {
            panic!("expected children, got {:?}", node.content);
        };
        assert_eq!(nodes[1].attrs[0].value, "15551234567:3@s.whatsapp.net");
        assert_eq!(
            nodes[1].content,
            Content::Bytes {
                bytes: vec![1, 2, 3, 0xfa]
            }
        );
        assert_eq!(
            nodes[2].content,
            Content::Bytes {
                bytes: b"hello world".to_vec()
            }
        );
        assert_eq!(nodes[2].attrs[0].value, "DEADBEEF");
    }

    #[test]
    fn text_content_uses_the_string_forms() {
        let node = Node {
            tag: "count".into(),
            attrs: vec![],
            content: Content::Text { text: "5".into() },
        };
        let back = decode_node(encode_node(node.clone()).unwrap()).unwrap();
        assert_eq!(back, node);
    }

    #[test]
    fn malformed_bytes_are_an_invalid_input_error() {
        for bad in ["", "00", "00 F8", "00 F8 01 F0"] {
            let error = decode_node(unhex(bad)).unwrap_err();
            assert!(
                matches!(error, WalinkError::InvalidInput { ref code, ref reason }
                    if !reason.is_empty() && !code.is_empty()),
                "{bad}: {error:?}"
            );
        }
    }

    /// A chain of `depth` nested nodes, built without recursion.
    fn chain(depth: usize) -> Node {
        let mut node = Node {
            tag: "leaf".into(),
            attrs: vec![],
            content: Content::Empty,
        };
        for _ in 1..depth {
            node = Node {
                tag: "n".into(),
                attrs: vec![],
                content: Content::Nodes { nodes: vec![node] },
            };
        }
        node
    }

    #[test]
    fn encoding_is_bounded_in_depth() {
        let deepest = chain(MAX_NODE_DEPTH);
        let bytes = encode_node(deepest.clone()).unwrap();
        assert_eq!(decode_node(bytes).unwrap(), deepest);
        let error = encode_node(chain(MAX_NODE_DEPTH + 1)).unwrap_err();
        assert!(
            matches!(&error, WalinkError::InvalidInput { code, .. } if code == "too_deep"),
            "{error:?}"
        );
        // Far deeper than any stack would survive a recursive walk: refused (and dropped)
        // without recursing, not a crash.
        assert!(encode_node(chain(200_000)).is_err());
    }
}
