//! The `media_conn` IQ: the upload auth token and the media hosts, cached until they expire.
//!
//! `<iq xmlns="w:m" type="set" to="s.whatsapp.net"><media_conn/></iq>` is answered with
//! `<media_conn auth ttl auth_ttl max_buckets><host hostname=…/>…</media_conn>` (whatsmeow
//! mediaconn.go, Baileys `refreshMediaConn`). walink keeps the answer until
//! `min(ttl, auth_ttl)` seconds after it arrived (whatsapp-rust's choice: the token must still
//! be valid), and drops it early when a host answers 401 or 403.

use crate::binary::Node;
use crate::limits::{MEDIA_CONN_MAX_FIELD, MEDIA_CONN_MAX_HOSTS};

use super::super::Timestamp;
use super::super::iq;

/// A `media_conn` answer.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaConn {
    /// The upload auth token.
    pub auth: String,
    /// The media hosts, in the order given.
    pub hosts: Vec<String>,
    /// When the answer stops being used (ms).
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for MediaConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaConn")
            .field("hosts", &self.hosts)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl MediaConn {
    /// Whether the answer may still be used at `now`.
    pub fn is_valid(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// The request.
pub(crate) fn request() -> Node {
    iq::iq("set", "w:m", vec![Node::new("media_conn")])
}

/// A host name as a URL authority may hold it (letters, digits, `.-:[]`), within bounds.
fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MEDIA_CONN_MAX_FIELD
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Reads the answer (the IQ result), received at `now`; `None` when it has no auth, no usable
/// host or no lifetime.
pub(crate) fn parse(answer: &Node, now: Timestamp) -> Option<MediaConn> {
    let conn = answer.child("media_conn")?;
    let auth = conn.attr_str("auth")?;
    if auth.is_empty() || auth.len() > MEDIA_CONN_MAX_FIELD {
        return None;
    }
    let seconds = |name: &str| conn.attr_str(name).and_then(|v| v.parse::<u64>().ok());
    let ttl = match (seconds("ttl"), seconds("auth_ttl")) {
        (Some(ttl), Some(auth_ttl)) => ttl.min(auth_ttl),
        (Some(ttl), None) => ttl,
        (None, _) => return None,
    };
    let hosts: Vec<String> = conn
        .children_by_tag("host")
        .filter_map(|host| host.attr_str("hostname"))
        .filter(|host| plausible_host(host))
        .take(MEDIA_CONN_MAX_HOSTS)
        .map(str::to_owned)
        .collect();
    if hosts.is_empty() || ttl == 0 {
        return None;
    }
    Some(MediaConn {
        auth: auth.to_owned(),
        hosts,
        expires_at: now.saturating_add(ttl.saturating_mul(1000)),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn answer(attrs: &[(&'static str, &str)], hosts: &[&str]) -> Node {
        let mut conn = Node::new("media_conn");
        for (name, value) in attrs {
            conn = conn.attr(*name, value.to_string());
        }
        let conn = conn.children_from(
            hosts
                .iter()
                .map(|h| Node::new("host").attr("hostname", h.to_string())),
        );
        Node::new("iq").children_from([conn])
    }

    #[test]
    fn keeps_hosts_in_order_until_the_shorter_lifetime() {
        let node = answer(
            &[("auth", "tok"), ("ttl", "300"), ("auth_ttl", "21600")],
            &["mmg.whatsapp.net", "bad host/", "media-x.cdn.whatsapp.net"],
        );
        let conn = parse(&node, 1_000).unwrap();
        assert_eq!(conn.hosts, ["mmg.whatsapp.net", "media-x.cdn.whatsapp.net"]);
        assert_eq!(conn.expires_at, 301_000);
        assert!(conn.is_valid(300_999) && !conn.is_valid(301_000));
        let short = answer(&[("auth", "t"), ("ttl", "300"), ("auth_ttl", "60")], &["h"]);
        assert_eq!(parse(&short, 0).unwrap().expires_at, 60_000);
        assert!(!format!("{conn:?}").contains("tok"));
        assert_eq!(request().attr_str("xmlns"), Some("w:m"));
    }

    #[test]
    fn refuses_answers_without_auth_hosts_or_lifetime() {
        assert!(parse(&answer(&[("ttl", "300")], &["h"]), 0).is_none());
        assert!(parse(&answer(&[("auth", "t")], &["h"]), 0).is_none());
        assert!(parse(&answer(&[("auth", "t"), ("ttl", "x")], &["h"]), 0).is_none());
        assert!(parse(&answer(&[("auth", "t"), ("ttl", "0")], &["h"]), 0).is_none());
        assert!(parse(&answer(&[("auth", "t"), ("ttl", "9")], &[]), 0).is_none());
        assert!(parse(&answer(&[("auth", ""), ("ttl", "9")], &["h"]), 0).is_none());
        assert!(parse(&Node::new("iq"), 0).is_none());
    }
}
