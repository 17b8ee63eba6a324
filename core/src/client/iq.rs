//! IQ plumbing: ids, IQs awaiting their answer with deadlines, and answers routed by id to
//! the tag of whoever sent the request (its own type, kept as an `owner::AnyTag`).

use crate::binary::{Jid, Node};
use crate::limits::CLIENT_MAX_PENDING_IQS;

use super::Timestamp;
use super::owner::{AnyTag, Tag};
use super::rng::Rng;

/// Why an IQ did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IqError {
    /// `type="error"` with this `<error code text>` (and the optional `backoff` seconds).
    Error {
        /// The code (0 when absent).
        code: u16,
        /// The text.
        text: String,
        /// The `backoff` attribute, seconds.
        backoff: Option<u64>,
    },
    /// No answer before the deadline.
    TimedOut,
    /// The connection ended first.
    Disconnected,
}

impl IqError {
    /// The command error for a failed request IQ, one mapping for every administrative
    /// command (groups, contacts; docs/decisions.md "IQ errors"): 401/403 `Forbidden`,
    /// 404/410 `NotFound`, 400/406 `BadRequest`, 412/419 `ResourceLimit`, 429 `RateLimited`
    /// (with the server's `backoff`), any other code `Rejected`; no answer in time
    /// `TimedOut`, a lost connection `NotConnected`.
    pub(crate) fn command_error(&self) -> super::command::CommandError {
        use super::command::CommandError;
        match self {
            IqError::TimedOut => CommandError::TimedOut,
            IqError::Disconnected => CommandError::NotConnected,
            IqError::Error {
                code,
                text,
                backoff,
            } => match code {
                401 | 403 => CommandError::Forbidden,
                404 | 410 => CommandError::NotFound,
                400 | 406 => CommandError::BadRequest,
                412 | 419 => CommandError::ResourceLimit,
                429 => CommandError::RateLimited {
                    retry_after_ms: backoff.map(|s| s.saturating_mul(1000)),
                },
                _ => CommandError::Rejected {
                    code: *code,
                    text: text.clone(),
                },
            },
        }
    }
}

/// An answer: the result node, or why there is none.
pub(crate) type IqResult = Result<Node, IqError>;

#[derive(Debug)]
struct Pending {
    id: String,
    tag: AnyTag,
    deadline: Timestamp,
}

/// The IQs of one connection.
#[derive(Debug, Default)]
pub(crate) struct Iqs {
    prefix: String,
    counter: u64,
    pending: Vec<Pending>,
}

impl Iqs {
    /// Starts a new id series (per connection): `"<u16>.<u16>-<counter>"` as Baileys.
    pub(crate) fn reset_prefix(&mut self, rng: &mut Rng) {
        let [a, b, c, d] = rng.bytes::<4>();
        self.prefix = format!(
            "{}.{}-",
            u16::from_be_bytes([a, b]),
            u16::from_be_bytes([c, d])
        );
        self.counter = 0;
    }

    /// A fresh stanza id.
    pub(crate) fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("{}{}", self.prefix, self.counter)
    }

    /// Whether more IQs can be awaited.
    pub(crate) fn has_room(&self) -> bool {
        self.pending.len() < CLIENT_MAX_PENDING_IQS
    }

    /// Whether an IQ whose tag is a `T` matching `which` is awaiting its answer.
    pub(crate) fn is_pending<T: Tag>(&self, which: impl Fn(&T) -> bool) -> bool {
        self.pending
            .iter()
            .any(|p| p.tag.get::<T>().is_some_and(&which))
    }

    /// Assigns an id to `iq` and awaits its answer until `deadline`. Returns the id.
    pub(crate) fn register(&mut self, iq: &mut Node, tag: AnyTag, deadline: Timestamp) -> String {
        let id = self.next_id();
        iq.set_attr("id", id.clone());
        self.pending.push(Pending {
            id: id.clone(),
            tag,
            deadline,
        });
        id
    }

    /// If `node` answers an awaited IQ (`<iq type="result|error" id>` from the server), the
    /// tag and the result (a result owns the node: it is moved, never copied); otherwise the
    /// node back.
    pub(crate) fn take_answer(&mut self, node: Node) -> Result<(AnyTag, IqResult), Node> {
        let index = match (node.attr_str("id"), node.attr_str("type")) {
            (Some(id), Some("result" | "error")) => self.pending.iter().position(|p| p.id == id),
            _ => None,
        };
        let Some(index) = index else {
            return Err(node);
        };
        let pending = self.pending.swap_remove(index);
        if node.attr_str("type") == Some("result") {
            return Ok((pending.tag, Ok(node)));
        }
        let error = node.child("error");
        let (code, text) = code_and_text(error);
        let backoff = error
            .and_then(|e| e.attr_str("backoff"))
            .and_then(|b| b.parse().ok());
        Ok((
            pending.tag,
            Err(IqError::Error {
                code,
                text,
                backoff,
            }),
        ))
    }

    /// Removes and returns the IQs whose deadline passed.
    pub(crate) fn take_expired(&mut self, now: Timestamp) -> Vec<AnyTag> {
        let mut expired = Vec::new();
        let mut index = 0;
        while index < self.pending.len() {
            if self.pending.get(index).is_some_and(|p| p.deadline <= now) {
                expired.push(self.pending.swap_remove(index).tag);
            } else {
                index += 1;
            }
        }
        expired
    }

    /// Removes and returns every awaited IQ (the connection ended).
    pub(crate) fn take_all(&mut self) -> Vec<AnyTag> {
        let tags = self.pending.drain(..).map(|p| p.tag).collect();
        self.pending = Vec::new();
        tags
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.pending.iter().map(|p| p.deadline).min()
    }
}

/// `<iq to="s.whatsapp.net" type=… xmlns=…>children</iq>` without its id (the id is assigned
/// when it is sent).
pub(crate) fn iq(kind: &'static str, xmlns: &'static str, children: Vec<Node>) -> Node {
    let node = Node::new("iq")
        .attr("to", Jid::server_jid())
        .attr("type", kind)
        .attr("xmlns", xmlns);
    if children.is_empty() {
        node
    } else {
        node.children_from(children)
    }
}

/// The empty result answering the server's IQ `request`.
pub(crate) fn result_for(request: &Node) -> Node {
    let mut reply = Node::new("iq");
    if let Some(id) = request.get_attr("id") {
        reply = reply.attr("id", id.clone());
    }
    reply.attr("to", Jid::server_jid()).attr("type", "result")
}

/// The error answering the server's IQ `request` with `code` and `text`.
pub(crate) fn error_for(request: &Node, code: u16, text: &'static str) -> Node {
    let mut reply = Node::new("iq");
    if let Some(id) = request.get_attr("id") {
        reply = reply.attr("id", id.clone());
    }
    reply
        .attr("to", Jid::server_jid())
        .attr("type", "error")
        .children_from([Node::new("error")
            .attr("code", code.to_string())
            .attr("text", text)])
}

/// The `code` (0 when absent or not a number) and `text` of an `<error>` child.
pub(crate) fn code_and_text(error: Option<&Node>) -> (u16, String) {
    let code = error
        .and_then(|e| e.attr_str("code"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let text = error
        .and_then(|e| e.attr_str("text"))
        .unwrap_or_default()
        .to_owned();
    (code, text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::owner::Owner;

    /// The tags of these tests (the keepalive's and the login's own live with them).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum IqTag {
        Ping,
        PreKeyCount,
        Active,
    }

    impl Tag for IqTag {
        const OWNER: Owner = Owner::Login;
    }

    fn tag(tag: IqTag) -> AnyTag {
        AnyTag::new(tag)
    }

    fn tags(tags: Vec<AnyTag>) -> Vec<IqTag> {
        tags.into_iter().filter_map(AnyTag::take).collect()
    }

    fn answer(id: &str, kind: &'static str) -> Node {
        Node::new("iq")
            .attr("id", id.to_owned())
            .attr("type", kind)
            .attr("from", Jid::server_jid())
    }

    #[test]
    fn answers_are_routed_by_id() {
        let mut iqs = Iqs::default();
        iqs.reset_prefix(&mut Rng::from_seed([0; 32]));
        let mut ping = iq("get", "w:p", vec![]);
        let id = iqs.register(&mut ping, tag(IqTag::Ping), 100);
        let mut count = iq("get", "encrypt", vec![Node::new("count")]);
        let other = iqs.register(&mut count, tag(IqTag::PreKeyCount), 50);
        assert_ne!(id, other);
        assert_eq!(ping.attr_str("id"), Some(id.as_str()));
        assert!(iqs.take_answer(answer("nope", "result")).is_err());
        let (answered, result) = iqs.take_answer(answer(&id, "result")).unwrap();
        assert_eq!(answered.take(), Some(IqTag::Ping));
        assert!(result.is_ok());
        assert!(iqs.take_answer(answer(&id, "result")).is_err());
        let error = answer(&other, "error").children_from([Node::new("error")
            .attr("code", "429")
            .attr("text", "rate-overlimit")
            .attr("backoff", "30")]);
        let (answered, result) = iqs.take_answer(error).unwrap();
        assert_eq!(answered.take(), Some(IqTag::PreKeyCount));
        assert_eq!(
            result,
            Err(IqError::Error {
                code: 429,
                text: "rate-overlimit".to_owned(),
                backoff: Some(30)
            })
        );
    }

    #[test]
    fn deadlines_expire_in_order() {
        let mut iqs = Iqs::default();
        let mut a = iq("get", "w:p", vec![]);
        iqs.register(&mut a, tag(IqTag::Ping), 100);
        let mut b = iq("set", "passive", vec![]);
        iqs.register(&mut b, tag(IqTag::Active), 200);
        assert_eq!(iqs.next_deadline(), Some(100));
        assert!(iqs.take_expired(99).is_empty());
        assert!(iqs.is_pending(|t: &IqTag| *t == IqTag::Ping));
        assert_eq!(tags(iqs.take_expired(100)), vec![IqTag::Ping]);
        assert!(!iqs.is_pending(|t: &IqTag| *t == IqTag::Ping));
        assert_eq!(iqs.next_deadline(), Some(200));
        assert_eq!(tags(iqs.take_all()), vec![IqTag::Active]);
        assert_eq!(iqs.next_deadline(), None);
    }
}
