//! What each websocket upgrade offered: its `Origin` header and path, recorded by the network
//! layer (the backend never sees HTTP) and answered by the control endpoint's
//! `GET /handshakes`, so a test can check what a client's socket says about itself (WhatsApp
//! Web's own client sends `Origin: https://web.whatsapp.com`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use super::ConnId;
use super::http::Request;

/// The most handshakes kept; older ones are dropped (and counted).
pub const MAX_KEPT_HANDSHAKES: usize = 1_000;

/// The longest `Origin` or path kept, in bytes; a longer one is cut at a character boundary.
pub const MAX_KEPT_HEADER_BYTES: usize = 512;

/// One websocket upgrade that reached the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The connection's number, as the backend knows it.
    pub conn: ConnId,
    /// The `Origin` header, when the client sent one.
    pub origin: Option<String>,
    /// The request path (`/ws/chat`).
    pub path: String,
    /// When the upgrade completed, Unix milliseconds.
    pub at: u64,
}

impl Handshake {
    /// The handshake as the control endpoint reports it.
    pub fn to_json(&self) -> Value {
        json!({ "conn": self.conn, "origin": self.origin, "path": self.path, "at": self.at })
    }
}

#[derive(Debug, Default)]
struct Kept {
    handshakes: VecDeque<Handshake>,
    dropped: u64,
}

/// The handshakes of one server, shared by its connection threads and its control threads.
#[derive(Debug, Clone, Default)]
pub struct HandshakeLog(Arc<Mutex<Kept>>);

impl HandshakeLog {
    /// Keeps `handshake`, dropping the oldest one when [`MAX_KEPT_HANDSHAKES`] are kept.
    pub fn record(&self, mut handshake: Handshake) {
        handshake.origin = handshake.origin.map(cut);
        handshake.path = cut(handshake.path);
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.handshakes.len() == MAX_KEPT_HANDSHAKES {
            kept.handshakes.pop_front();
            kept.dropped += 1;
        }
        kept.handshakes.push_back(handshake);
    }

    /// The kept handshakes, oldest first.
    pub fn handshakes(&self) -> Vec<Handshake> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.handshakes.iter().cloned().collect()
    }

    /// `{"handshakes": [{"conn", "origin", "path", "at"}], "dropped"}`: the answer of
    /// `GET /handshakes`.
    pub fn to_json(&self) -> Value {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let handshakes: Vec<Value> = kept.handshakes.iter().map(Handshake::to_json).collect();
        json!({ "handshakes": handshakes, "dropped": kept.dropped })
    }
}

/// True for the control request this module answers: `GET /handshakes`.
pub fn is_handshakes_route(request: &Request) -> bool {
    request.method == "GET" && request.path.trim_matches('/') == "handshakes"
}

/// `text` cut to at most [`MAX_KEPT_HEADER_BYTES`] bytes, at a character boundary.
fn cut(mut text: String) -> String {
    if text.len() > MAX_KEPT_HEADER_BYTES {
        let mut end = MAX_KEPT_HEADER_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(conn: ConnId, origin: Option<&str>) -> Handshake {
        Handshake {
            conn,
            origin: origin.map(str::to_owned),
            path: "/ws/chat".into(),
            at: 1,
        }
    }

    #[test]
    fn keeps_the_newest_and_counts_the_dropped() {
        let log = HandshakeLog::default();
        for conn in 0..MAX_KEPT_HANDSHAKES as u64 + 3 {
            log.record(handshake(conn, Some("https://web.whatsapp.com")));
        }
        let kept = log.handshakes();
        assert_eq!(kept.len(), MAX_KEPT_HANDSHAKES);
        assert_eq!(kept[0].conn, 3);
        assert_eq!(log.to_json()["dropped"], 3);
    }

    #[test]
    fn a_long_origin_is_cut_at_a_character_boundary() {
        let log = HandshakeLog::default();
        let long = "é".repeat(MAX_KEPT_HEADER_BYTES);
        log.record(handshake(1, Some(&long)));
        log.record(handshake(2, None));
        let kept = log.handshakes();
        let origin = kept[0].origin.as_deref().unwrap_or_default();
        assert_eq!(origin.len(), MAX_KEPT_HEADER_BYTES);
        assert!(origin.chars().all(|c| c == 'é'));
        assert_eq!(log.to_json()["handshakes"][1]["origin"], Value::Null);
    }

    #[test]
    fn answers_only_get_handshakes() {
        let request = |method: &str, path: &str| Request {
            method: method.into(),
            path: path.into(),
            query: Vec::new(),
            body: Vec::new(),
        };
        assert!(is_handshakes_route(&request("GET", "/handshakes")));
        assert!(is_handshakes_route(&request("GET", "/handshakes/")));
        assert!(!is_handshakes_route(&request("POST", "/handshakes")));
        assert!(!is_handshakes_route(&request("GET", "/connections")));
    }
}
