//! The node tree: a tag, ordered attributes and optional content.

use std::borrow::Cow;
use std::fmt;

use super::jid::Jid;

/// One node of a stanza, like an XML element: `<tag attr="value">content</tag>`.
///
/// Strings are `Cow<'static, str>`: decoding borrows dictionary tokens (most tags, keys and many
/// values) instead of allocating them, and builders accept both `&'static str` and `String`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// The tag, never empty on the wire (`iq`, `message`, `enc`, ...).
    pub tag: Cow<'static, str>,
    /// The attributes, in order. The order is sent as is, and Baileys' bytes depend on it.
    pub attrs: Vec<Attr>,
    /// What the node holds.
    pub content: Content,
}

/// One attribute: a key and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// The key (`id`, `to`, `type`, ...).
    pub key: Cow<'static, str>,
    /// The value.
    pub value: Value,
}

/// A string on the wire: an attribute value or string content.
///
/// On the wire a string is a dictionary token, a nibble- or hex-packed string, raw UTF-8, or a
/// JID. Decoding gives [`Value::Jid`] for the JID forms and [`Value::Str`] for the others.
/// Encoding a [`Value::Str`] that parses as a JID (it contains an `@`; see [`Jid`]'s `FromStr`)
/// sends it as a JID, as WhatsApp Web and Baileys do, so `Str("1@s.whatsapp.net")` and the
/// equivalent `Jid` give the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A text string.
    Str(Cow<'static, str>),
    /// A JID.
    Jid(Jid),
}

/// What a node holds.
///
/// On the wire, content is a list of nodes, a `BINARY_*` byte string, or any other string form
/// (token, packed, JID). Decoding gives [`Content::Bytes`] for `BINARY_*` content (even when it
/// is valid UTF-8: only the consumer knows whether it is text) and [`Content::Str`] or
/// [`Content::Jid`] for the other string forms, so a consumer that expects bytes must also accept
/// a string (Baileys sends the pairing-code nonce as the token `"0"`). Encoding [`Content::Str`]
/// follows the string rules (token, packed, JID, else raw UTF-8 bytes); a raw string therefore
/// comes back as [`Content::Bytes`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Content {
    /// No content: `<tag/>`.
    #[default]
    None,
    /// Child nodes (possibly an empty list, which is sent and decoded as such).
    Nodes(Vec<Node>),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A string sent in its string form (token, packed, JID or raw).
    Str(Cow<'static, str>),
    /// A JID.
    Jid(Jid),
}

impl Node {
    /// A node with this tag, no attributes and no content.
    pub fn new(tag: impl Into<Cow<'static, str>>) -> Self {
        Node {
            tag: tag.into(),
            attrs: Vec::new(),
            content: Content::None,
        }
    }

    /// Appends an attribute (builder style). Strings and [`Jid`]s both convert into [`Value`].
    #[must_use]
    pub fn attr(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        self.attrs.push(Attr {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Sets the children (builder style).
    #[must_use]
    pub fn children_from(mut self, children: impl IntoIterator<Item = Node>) -> Self {
        self.content = Content::Nodes(children.into_iter().collect());
        self
    }

    /// Sets byte content (builder style).
    #[must_use]
    pub fn bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.content = Content::Bytes(bytes.into());
        self
    }

    /// Sets any content (builder style).
    #[must_use]
    pub fn content(mut self, content: Content) -> Self {
        self.content = content;
        self
    }

    /// The value of the first attribute with this key.
    pub fn get_attr(&self, key: &str) -> Option<&Value> {
        self.attrs
            .iter()
            .find(|attr| attr.key == key)
            .map(|attr| &attr.value)
    }

    /// The value of an attribute that holds a text string (not a JID).
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        match self.get_attr(key)? {
            Value::Str(text) => Some(text),
            Value::Jid(_) => None,
        }
    }

    /// The value of an attribute as a JID: a JID value, or a string that parses as one.
    pub fn attr_jid(&self, key: &str) -> Option<Jid> {
        match self.get_attr(key)? {
            Value::Jid(jid) => Some(jid.clone()),
            Value::Str(text) => text.parse().ok(),
        }
    }

    /// Sets an attribute, replacing the value of an existing key in place.
    pub fn set_attr(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.attrs.iter_mut().find(|attr| attr.key == key) {
            Some(attr) => attr.value = value,
            None => self.attrs.push(Attr { key, value }),
        }
    }

    /// The child nodes; empty unless the content is a list of nodes.
    pub fn children(&self) -> &[Node] {
        match &self.content {
            Content::Nodes(children) => children,
            _ => &[],
        }
    }

    /// The first child with this tag.
    pub fn child(&self, tag: &str) -> Option<&Node> {
        self.children().iter().find(|child| child.tag == tag)
    }

    /// Every child with this tag.
    pub fn children_by_tag<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children().iter().filter(move |child| child.tag == tag)
    }

    /// The content as bytes: byte content, or the UTF-8 of string content.
    pub fn content_bytes(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Bytes(bytes) => Some(bytes),
            Content::Str(text) => Some(text.as_bytes()),
            _ => None,
        }
    }
}

impl Value {
    /// The text of a string value; `None` for a JID.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            Value::Jid(_) => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(text) => f.write_str(text),
            Value::Jid(jid) => jid.fmt(f),
        }
    }
}

impl From<&'static str> for Value {
    fn from(text: &'static str) -> Self {
        Value::Str(Cow::Borrowed(text))
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Str(Cow::Owned(text))
    }
}

impl From<Cow<'static, str>> for Value {
    fn from(text: Cow<'static, str>) -> Self {
        Value::Str(text)
    }
}

impl From<Jid> for Value {
    fn from(jid: Jid) -> Self {
        Value::Jid(jid)
    }
}

impl From<Vec<Node>> for Content {
    fn from(children: Vec<Node>) -> Self {
        Content::Nodes(children)
    }
}

impl From<Vec<u8>> for Content {
    fn from(bytes: Vec<u8>) -> Self {
        Content::Bytes(bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_getters() {
        let jid = Jid::device("1555", 2, "s.whatsapp.net");
        let mut node = Node::new("iq")
            .attr("id", "1")
            .attr("to", jid.clone())
            .children_from([Node::new("ping"), Node::new("user").bytes(vec![1, 2])]);
        node.set_attr("id", String::from("2"));
        assert_eq!(node.attr_str("id"), Some("2"));
        assert_eq!(node.attr_jid("to"), Some(jid));
        assert_eq!(node.attr_str("to"), None);
        assert_eq!(node.children().len(), 2);
        assert_eq!(
            node.child("user").and_then(Node::content_bytes),
            Some(&[1, 2][..])
        );
        assert_eq!(node.children_by_tag("ping").count(), 1);
        assert!(node.child("missing").is_none());
    }
}
