//! Presence and chat state: our own availability, subscriptions to contacts' presence (with
//! their privacy token), typing / recording / paused, and the updates that arrive
//! (protocol notes features.md §4).
//!
//! ```text
//! <presence type="available|unavailable" name="<push name>"/>                      own presence
//! <presence type="subscribe" to="<user>" id>[<tctoken t>token</tctoken>]</presence>  subscribe
//! <chatstate from="<own JID or own LID>" to="<chat>"><composing [media="audio"]/>|<paused/></chatstate>
//! <presence from="<user>" [type="unavailable"] [last="<unix s>|deny"]/>              update
//! <chatstate from="<user or group>" [participant]><composing|paused/></chatstate>    update
//! ```
//!
//! The forms are WhiskeySockets/Baileys' (`sendPresenceUpdate`, `presenceSubscribe`,
//! `handlePresenceUpdate`), checked against tulir/whatsmeow `presence.go`: whatsmeow sends no
//! `from` on chat states and no `id` on a subscription; both are accepted by the server.

use crate::binary::{GROUP_SERVER, HIDDEN_USER_SERVER, Jid, Node};
use crate::limits::{
    CONTACTS_MAX_PRIVACY_TOKENS, PRESENCE_MAX_SUBSCRIPTIONS, PRIVACY_TOKEN_MAX_BYTES,
};
use crate::proto::walink::PrivacyTokenRecord;
use crate::signal::RecordError;

/// What this account is doing in a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatState {
    /// Typing.
    Composing,
    /// Recording a voice note.
    Recording,
    /// Stopped typing or recording.
    Paused,
}

/// A contact's presence (`Event::Presence`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceUpdate {
    /// The contact (or the group, for a group's online count).
    pub jid: Jid,
    /// Online now.
    pub available: bool,
    /// When they were last seen, Unix seconds, when they share it.
    pub last_seen: Option<u64>,
    /// They hide their last-seen time (`last="deny"`).
    pub last_seen_hidden: bool,
}

/// A chat state of someone in a chat (`Event::ChatState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatStateUpdate {
    /// The chat: the contact, or the group.
    pub chat: Jid,
    /// Who is typing (the contact, or the group participant).
    pub sender: Jid,
    /// What they are doing.
    pub state: ChatState,
}

/// `<presence type name/>`: our own availability under our push name (`@` removed, as
/// WhatsApp Web does).
pub fn build_own_presence(available: bool, push_name: &str) -> Node {
    Node::new("presence")
        .attr("name", push_name.replace('@', ""))
        .attr(
            "type",
            if available {
                "available"
            } else {
                "unavailable"
            },
        )
}

/// `<presence type="subscribe" to id>` with the contact's privacy token when we hold one.
pub fn build_subscribe(id: &str, to: &Jid, token: Option<&PrivacyToken>) -> Node {
    let node = Node::new("presence")
        .attr("to", to.clone())
        .attr("id", id.to_owned())
        .attr("type", "subscribe");
    match token {
        Some(token) => node.children_from([Node::new("tctoken")
            .attr("t", token.timestamp.to_string())
            .bytes(token.token.clone())]),
        None => node,
    }
}

/// `<presence type="unsubscribe" to id>`: no more updates of that contact (whatsapp-rust
/// sends it; WhatsApp Web too when a chat is closed).
pub fn build_unsubscribe(id: &str, to: &Jid) -> Node {
    Node::new("presence")
        .attr("to", to.clone())
        .attr("id", id.to_owned())
        .attr("type", "unsubscribe")
}

/// `<chatstate from to>` with `<composing/>`, `<composing media="audio"/>` or `<paused/>`.
/// `from` is our LID when the chat is a LID, else our phone-number JID (Baileys).
pub fn build_chat_state(own: &Jid, own_lid: Option<&Jid>, to: &Jid, state: ChatState) -> Node {
    let from = match own_lid {
        Some(lid) if to.server == HIDDEN_USER_SERVER => lid.clone(),
        _ => own.clone(),
    };
    let child = match state {
        ChatState::Composing => Node::new("composing"),
        ChatState::Recording => Node::new("composing").attr("media", "audio"),
        ChatState::Paused => Node::new("paused"),
    };
    Node::new("chatstate")
        .attr("from", from)
        .attr("to", to.clone())
        .children_from([child])
}

/// Parses an incoming `<presence>` update; `None` for anything else (our own echo included).
pub fn parse_presence(node: &Node) -> Option<PresenceUpdate> {
    if node.tag != "presence" {
        return None;
    }
    let jid = node.attr_jid("from")?;
    let kind = node.attr_str("type");
    if kind.is_some_and(|k| k != "unavailable" && k != "available") {
        return None;
    }
    let last = node.attr_str("last");
    Some(PresenceUpdate {
        jid: jid.to_non_device(),
        available: kind != Some("unavailable"),
        last_seen: last.and_then(|l| l.parse().ok()).filter(|&l: &u64| l > 0),
        last_seen_hidden: last == Some("deny"),
    })
}

/// Parses an incoming `<chatstate>`; a group's needs its `participant`.
pub fn parse_chat_state(node: &Node) -> Option<ChatStateUpdate> {
    if node.tag != "chatstate" {
        return None;
    }
    let chat = node.attr_jid("from")?.to_non_device();
    let sender = if chat.server == GROUP_SERVER {
        node.attr_jid("participant")?.to_non_device()
    } else {
        chat.clone()
    };
    let child = node.children().first()?;
    let state = match child.tag.as_ref() {
        "composing" if child.attr_str("media") == Some("audio") => ChatState::Recording,
        "composing" => ChatState::Composing,
        "paused" => ChatState::Paused,
        _ => return None,
    };
    Some(ChatStateUpdate {
        chat,
        sender,
        state,
    })
}

/// A trusted-contact privacy token a contact issued to us (`<notification
/// type="privacy_token">`), shown when asking for their presence or picture.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivacyToken {
    /// When it was issued, Unix seconds.
    pub timestamp: u64,
    /// The opaque token.
    pub token: Vec<u8>,
}

impl core::fmt::Debug for PrivacyToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PrivacyToken")
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

/// The format version of `walink.PrivacyTokenRecord` this build writes and reads.
const TOKEN_RECORD_FORMAT: u32 = 1;

impl PrivacyToken {
    /// The record value (`walink.PrivacyTokenRecord`, space `privacy-token`).
    pub fn encode(&self) -> Vec<u8> {
        use prost::Message as _;
        PrivacyTokenRecord {
            format_version: Some(TOKEN_RECORD_FORMAT),
            timestamp: Some(self.timestamp),
            token: Some(self.token.clone()),
        }
        .encode_to_vec()
    }

    /// Reads a record value.
    pub fn decode(value: &[u8]) -> Result<PrivacyToken, RecordError> {
        use prost::Message as _;
        if value.len() > PRIVACY_TOKEN_MAX_BYTES + 64 {
            return Err(RecordError::TooLarge);
        }
        let record = PrivacyTokenRecord::decode(value).map_err(|_| RecordError::BadProtobuf)?;
        match record.format_version {
            Some(TOKEN_RECORD_FORMAT) => {}
            other => return Err(RecordError::UnsupportedFormat(other.unwrap_or_default())),
        }
        let token = record
            .token
            .filter(|t| !t.is_empty() && t.len() <= PRIVACY_TOKEN_MAX_BYTES)
            .ok_or(RecordError::BadField("token"))?;
        Ok(PrivacyToken {
            timestamp: record.timestamp.ok_or(RecordError::BadField("timestamp"))?,
            token,
        })
    }
}

/// The privacy tokens of a `<notification type="privacy_token">`: `(issuer user, token)` for
/// its `from` and its `sender_lid` (both forms name the same contact).
pub fn parse_privacy_tokens(node: &Node) -> Vec<(Jid, PrivacyToken)> {
    let issuers: Vec<Jid> = [node.attr_jid("from"), node.attr_jid("sender_lid")]
        .into_iter()
        .flatten()
        .map(|jid| jid.to_non_device())
        .filter(|jid| !jid.user.is_empty())
        .collect();
    let mut found = Vec::new();
    let tokens = node
        .child("tokens")
        .into_iter()
        .flat_map(|t| t.children_by_tag("token"));
    for token in tokens {
        if token.attr_str("type") != Some("trusted_contact") {
            continue;
        }
        let (Some(bytes), Some(timestamp)) = (
            token
                .content_bytes()
                .filter(|b| !b.is_empty() && b.len() <= PRIVACY_TOKEN_MAX_BYTES),
            token.attr_str("t").and_then(|t| t.parse().ok()),
        ) else {
            continue;
        };
        for issuer in &issuers {
            found.push((
                issuer.clone(),
                PrivacyToken {
                    timestamp,
                    token: bytes.to_vec(),
                },
            ));
        }
    }
    found
}

/// Privacy tokens by contact and the presence subscriptions to renew after a reconnect, both
/// bounded (oldest dropped first).
#[derive(Debug, Default)]
pub(crate) struct PresenceState {
    tokens: Vec<(Jid, PrivacyToken)>,
    subscriptions: Vec<Jid>,
    /// The own presence the application last set (`None`: never set).
    pub(crate) own: Option<bool>,
}

/// What keeping a token changed, for the store.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TokenChange {
    /// The token was kept (new, or newer than the one held).
    pub(crate) kept: bool,
    /// The oldest contact's token was dropped to make room.
    pub(crate) evicted: Option<Jid>,
}

impl PresenceState {
    /// Keeps a newer token for its contact.
    pub(crate) fn learn_token(&mut self, jid: Jid, token: PrivacyToken) -> TokenChange {
        let mut change = TokenChange::default();
        match self.tokens.iter_mut().find(|(j, _)| *j == jid) {
            Some((_, kept)) if kept.timestamp <= token.timestamp => {
                change.kept = *kept != token;
                *kept = token;
            }
            Some(_) => {}
            None => {
                if self.tokens.len() >= CONTACTS_MAX_PRIVACY_TOKENS {
                    change.evicted = Some(self.tokens.remove(0).0);
                }
                self.tokens.push((jid, token));
                change.kept = true;
            }
        }
        change
    }

    /// The token `jid` issued to us, if any.
    pub(crate) fn token(&self, jid: &Jid) -> Option<&PrivacyToken> {
        let user = jid.to_non_device();
        self.tokens.iter().find(|(j, _)| *j == user).map(|(_, t)| t)
    }

    /// Remembers a subscription (to renew it after a reconnect).
    pub(crate) fn subscribe(&mut self, jid: Jid) {
        if self.subscriptions.contains(&jid) {
            return;
        }
        if self.subscriptions.len() >= PRESENCE_MAX_SUBSCRIPTIONS {
            self.subscriptions.remove(0);
        }
        self.subscriptions.push(jid);
    }

    /// Forgets a subscription (not renewed any more).
    pub(crate) fn unsubscribe(&mut self, jid: &Jid) {
        self.subscriptions.retain(|j| j != jid);
    }

    /// The subscriptions to renew.
    pub(crate) fn subscriptions(&self) -> &[Jid] {
        &self.subscriptions
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn jid(text: &str) -> Jid {
        text.parse().unwrap()
    }

    #[test]
    fn privacy_token_records_round_trip_and_bad_ones_are_typed_errors() {
        let token = PrivacyToken {
            timestamp: 1_700_000_000,
            token: vec![1, 2, 3],
        };
        assert_eq!(PrivacyToken::decode(&token.encode()), Ok(token));
        assert_eq!(
            PrivacyToken::decode(b"\xff\xff"),
            Err(RecordError::BadProtobuf)
        );
        let empty = PrivacyToken {
            timestamp: 1,
            token: Vec::new(),
        };
        assert_eq!(
            PrivacyToken::decode(&empty.encode()),
            Err(RecordError::BadField("token"))
        );
        let huge = vec![0u8; PRIVACY_TOKEN_MAX_BYTES + 65];
        assert_eq!(PrivacyToken::decode(&huge), Err(RecordError::TooLarge));
    }

    #[test]
    fn own_presence_needs_the_push_name_without_at_signs() {
        let node = build_own_presence(true, "Ann @home");
        assert_eq!(node.attr_str("type"), Some("available"));
        assert_eq!(node.attr_str("name"), Some("Ann home"));
        assert_eq!(
            build_own_presence(false, "Ann").attr_str("type"),
            Some("unavailable")
        );
    }

    #[test]
    fn a_subscription_carries_the_privacy_token_when_one_is_held() {
        let to = jid("15551234567@s.whatsapp.net");
        let bare = build_subscribe("P1", &to, None);
        assert_eq!(bare.attr_str("type"), Some("subscribe"));
        assert!(bare.children().is_empty());
        let token = PrivacyToken {
            timestamp: 1_700_000_000,
            token: vec![1, 2, 3],
        };
        let with = build_subscribe("P1", &to, Some(&token));
        let child = with.child("tctoken").unwrap();
        assert_eq!(child.attr_str("t"), Some("1700000000"));
        assert_eq!(child.content_bytes(), Some(&[1u8, 2, 3][..]));
        assert!(!format!("{token:?}").contains("[1, 2, 3]"));
    }

    #[test]
    fn chat_states_in_both_directions() {
        let own = jid("15550000000:7@s.whatsapp.net");
        let lid = jid("99000000000001:7@lid");
        let to = jid("15551234567@s.whatsapp.net");
        let node = build_chat_state(&own, Some(&lid), &to, ChatState::Recording);
        assert_eq!(node.attr_jid("from"), Some(own.clone()));
        let child = node.child("composing").unwrap();
        assert_eq!(child.attr_str("media"), Some("audio"));
        let to_lid = jid("88000000000002@lid");
        let node = build_chat_state(&own, Some(&lid), &to_lid, ChatState::Paused);
        assert_eq!(node.attr_jid("from"), Some(lid));
        assert!(node.child("paused").is_some());

        let incoming = Node::new("chatstate")
            .attr("from", "120363000000000001@g.us")
            .attr("participant", "15551234567@s.whatsapp.net")
            .children_from([Node::new("composing")]);
        let update = parse_chat_state(&incoming).unwrap();
        assert_eq!(update.chat.server, GROUP_SERVER);
        assert_eq!(update.sender, to);
        assert_eq!(update.state, ChatState::Composing);
        let no_participant = Node::new("chatstate")
            .attr("from", "120363000000000001@g.us")
            .children_from([Node::new("composing")]);
        assert!(parse_chat_state(&no_participant).is_none());
        let unknown = Node::new("chatstate")
            .attr("from", "15551234567@s.whatsapp.net")
            .children_from([Node::new("dancing")]);
        assert!(parse_chat_state(&unknown).is_none());
    }

    #[test]
    fn presence_updates_read_last_seen() {
        let online = Node::new("presence").attr("from", "15551234567@s.whatsapp.net");
        let update = parse_presence(&online).unwrap();
        assert!(update.available && update.last_seen.is_none());
        let away = Node::new("presence")
            .attr("from", "15551234567@s.whatsapp.net")
            .attr("type", "unavailable")
            .attr("last", "1700000000");
        let update = parse_presence(&away).unwrap();
        assert!(!update.available);
        assert_eq!(update.last_seen, Some(1_700_000_000));
        let hidden = Node::new("presence")
            .attr("from", "15551234567@s.whatsapp.net")
            .attr("type", "unavailable")
            .attr("last", "deny");
        let update = parse_presence(&hidden).unwrap();
        assert!(update.last_seen_hidden && update.last_seen.is_none());
        let subscribe = online.attr("type", "subscribe");
        assert!(parse_presence(&subscribe).is_none());
    }

    #[test]
    fn privacy_tokens_are_kept_per_contact_newest_first_and_bounded() {
        let note = Node::new("notification")
            .attr("from", "15551234567@s.whatsapp.net")
            .attr("sender_lid", "88000000000002@lid")
            .attr("type", "privacy_token")
            .children_from([Node::new("tokens").children_from([Node::new("token")
                .attr("jid", "15550000000@s.whatsapp.net")
                .attr("t", "100")
                .attr("type", "trusted_contact")
                .bytes(vec![9; 8])])]);
        let found = parse_privacy_tokens(&note);
        assert_eq!(found.len(), 2);
        let mut state = PresenceState::default();
        for (jid, token) in found {
            state.learn_token(jid, token);
        }
        let pn = jid("15551234567:3@s.whatsapp.net");
        assert_eq!(state.token(&pn).unwrap().timestamp, 100);
        state.learn_token(
            pn.to_non_device(),
            PrivacyToken {
                timestamp: 50,
                token: vec![1],
            },
        );
        assert_eq!(state.token(&pn).unwrap().timestamp, 100);
        for i in 0..CONTACTS_MAX_PRIVACY_TOKENS {
            state.learn_token(
                jid(&format!("{}@s.whatsapp.net", 1_000_000 + i)),
                PrivacyToken {
                    timestamp: 1,
                    token: vec![1],
                },
            );
        }
        assert!(state.token(&pn).is_none());
        for i in 0..PRESENCE_MAX_SUBSCRIPTIONS + 2 {
            state.subscribe(jid(&format!("{}@s.whatsapp.net", 1_000_000 + i)));
        }
        assert_eq!(state.subscriptions().len(), PRESENCE_MAX_SUBSCRIPTIONS);
    }
}
