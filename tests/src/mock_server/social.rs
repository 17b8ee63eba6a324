//! The control routes of calls, presence and contacts (tests/src/sim/server/social.rs):
//!
//! | method | path | body | does |
//! | --- | --- | --- | --- |
//! | POST | `/accounts/{phone}/call` | `{"to", "video"?, "group"?}` | the phone calls `to`; answers `{"call_id"}` |
//! | POST | `/calls/{call_id}/accept` | | the callee's phone accepts (its companions stop ringing) |
//! | POST | `/calls/{call_id}/end` | `{"timeout"?}` | the caller hangs up (`timeout`: a missed call) |
//! | GET | `/rejected-calls` | | the calls companions rejected: `[{by, device, call_id, creator, to}]` |
//! | POST | `/accounts/{phone}/presence` | `{"available"}` | the phone goes online or offline |
//! | GET | `/accounts/{phone}/presence` | | `{"online", "subscribers"}` |
//! | POST | `/accounts/{phone}/chat-state` | `{"chat", "state"}` | the phone types (`composing`, `recording`, `paused`) in a chat (an account or a group id) |
//! | GET | `/chat-states` | | the chat states phones received: `[{account, from, chat, state}]` |
//! | POST | `/accounts/{phone}/privacy` | `{"category", "value"}` | the phone changes a privacy setting (`last`, `profile`, `status`, ...) |
//! | POST | `/accounts/{phone}/privacy-token` | `{"to"}` | the phone issues `to` a trusted-contact privacy token |
//! | POST | `/accounts/{phone}/profile` | `{"picture"?, "about"?, "business"?}` | sets the picture id (`null` removes it), the about text, a business description |
//! | GET | `/accounts/{phone}/blocked` | | `{"blocked": [phone]}` |
//! | POST | `/fail-next-contact-query` | `{"code"}` | the next contact query is answered with this error (400, 401, 429, ...) |
//! | GET | `/accounts/{phone}/social-stanzas` | | the call, presence, chat-state and contact-query stanzas the account's companions sent, as `{tag, attrs, content}` (bytes as hex, children as arrays) |

use serde_json::{Value, json};

use super::control::ControlError;
use crate::sim::Server;

/// One call, presence or contact control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocialControl {
    /// The phone of `from` calls `to`.
    Call {
        /// The caller.
        from: String,
        /// The callee.
        to: String,
        /// A video call.
        video: bool,
        /// The group id of a group call.
        group: Option<String>,
    },
    /// The callee's phone accepts.
    Accept {
        /// The call id.
        call_id: String,
    },
    /// The caller hangs up.
    End {
        /// The call id.
        call_id: String,
        /// Nobody answered.
        timeout: bool,
    },
    /// The rejected calls.
    RejectedCalls,
    /// The phone goes online or offline.
    Presence {
        /// The account.
        account: String,
        /// Online.
        available: bool,
    },
    /// Whether the account is online, and its live subscribers.
    PresenceOf {
        /// The account.
        account: String,
    },
    /// The phone types in a chat.
    ChatState {
        /// The account.
        account: String,
        /// An account or a group id.
        chat: String,
        /// `composing`, `recording` or `paused`.
        state: String,
    },
    /// The chat states phones received.
    ChatStates,
    /// A privacy setting changes.
    Privacy {
        /// The account.
        account: String,
        /// The category.
        category: String,
        /// Its value.
        value: String,
    },
    /// The phone issues a privacy token.
    PrivacyToken {
        /// The issuer.
        account: String,
        /// The holder.
        to: String,
    },
    /// Picture, about text, business description.
    Profile {
        /// The account.
        account: String,
        /// `Some(None)` removes the picture.
        picture: Option<Option<String>>,
        /// The about text.
        about: Option<String>,
        /// A business description.
        business: Option<String>,
    },
    /// The account's block list.
    Blocked {
        /// The account.
        account: String,
    },
    /// The stanzas an account's companions sent.
    Stanzas {
        /// The account.
        account: String,
    },
    /// The next contact query fails with this code.
    FailNextContactQuery {
        /// The error code.
        code: u16,
    },
}

fn string(body: &Value, name: &str) -> Result<String, ControlError> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ControlError::BadRequest(format!("\"{name}\" must be a string")))
}

fn opt_string(body: &Value, name: &str) -> Result<Option<String>, ControlError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ControlError::BadRequest(format!(
            "\"{name}\" must be a string"
        ))),
    }
}

fn opt_bool(body: &Value, name: &str) -> Result<bool, ControlError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(on)) => Ok(*on),
        Some(_) => Err(ControlError::BadRequest(format!(
            "\"{name}\" must be a boolean"
        ))),
    }
}

/// The control of `method` and `segments`, or `None` when the route is not one of these.
pub fn parse(
    method: &str,
    segments: &[&str],
    body: impl Fn() -> Result<Value, ControlError>,
) -> Option<Result<SocialControl, ControlError>> {
    let account = |a: &str| a.trim_start_matches('+').to_owned();
    let parsed = match (method, segments) {
        ("POST", ["accounts", a, "call"]) => body().and_then(|b| {
            Ok(SocialControl::Call {
                from: account(a),
                to: account(&string(&b, "to")?),
                video: opt_bool(&b, "video")?,
                group: opt_string(&b, "group")?,
            })
        }),
        ("POST", ["calls", id, "accept"]) => Ok(SocialControl::Accept {
            call_id: (*id).to_owned(),
        }),
        ("POST", ["calls", id, "end"]) => body().and_then(|b| {
            Ok(SocialControl::End {
                call_id: (*id).to_owned(),
                timeout: opt_bool(&b, "timeout")?,
            })
        }),
        ("GET", ["rejected-calls"]) => Ok(SocialControl::RejectedCalls),
        ("POST", ["accounts", a, "presence"]) => body().and_then(|b| {
            Ok(SocialControl::Presence {
                account: account(a),
                available: opt_bool(&b, "available")?,
            })
        }),
        ("GET", ["accounts", a, "presence"]) => Ok(SocialControl::PresenceOf {
            account: account(a),
        }),
        ("POST", ["accounts", a, "chat-state"]) => body().and_then(|b| {
            Ok(SocialControl::ChatState {
                account: account(a),
                chat: string(&b, "chat")?,
                state: string(&b, "state")?,
            })
        }),
        ("GET", ["chat-states"]) => Ok(SocialControl::ChatStates),
        ("POST", ["accounts", a, "privacy"]) => body().and_then(|b| {
            Ok(SocialControl::Privacy {
                account: account(a),
                category: string(&b, "category")?,
                value: string(&b, "value")?,
            })
        }),
        ("POST", ["accounts", a, "privacy-token"]) => body().and_then(|b| {
            Ok(SocialControl::PrivacyToken {
                account: account(a),
                to: account(&string(&b, "to")?),
            })
        }),
        ("POST", ["accounts", a, "profile"]) => body().and_then(|b| {
            let picture = match b.get("picture") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(Value::String(id)) => Some(Some(id.clone())),
                Some(_) => {
                    return Err(ControlError::BadRequest(
                        "\"picture\" must be a string or null".into(),
                    ));
                }
            };
            Ok(SocialControl::Profile {
                account: account(a),
                picture,
                about: opt_string(&b, "about")?,
                business: opt_string(&b, "business")?,
            })
        }),
        ("GET", ["accounts", a, "social-stanzas"]) => Ok(SocialControl::Stanzas {
            account: account(a),
        }),
        ("GET", ["accounts", a, "blocked"]) => Ok(SocialControl::Blocked {
            account: account(a),
        }),
        ("POST", ["fail-next-contact-query"]) => body().and_then(|b| {
            let code = b
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..600).contains(c))
                .ok_or_else(|| ControlError::BadRequest("\"code\" must be 400-599".into()))?;
            Ok(SocialControl::FailNextContactQuery { code })
        }),
        _ => return None,
    };
    Some(parsed)
}

/// Carries out `control` on `server`.
pub fn run(server: &mut Server, now: u64, control: SocialControl) -> Result<Value, ControlError> {
    let refused = |e: crate::sim::server::SimError| ControlError::NotFound(e.to_string());
    match control {
        SocialControl::Call {
            from,
            to,
            video,
            group,
        } => server
            .phone_offer_call(now, &from, &to, video, group.as_deref())
            .map(|call_id| json!({ "call_id": call_id }))
            .map_err(refused),
        SocialControl::Accept { call_id } => server
            .phone_accept_call(now, &call_id)
            .map(|()| json!({ "ok": true }))
            .map_err(refused),
        SocialControl::End { call_id, timeout } => server
            .phone_end_call(now, &call_id, timeout)
            .map(|()| json!({ "ok": true }))
            .map_err(refused),
        SocialControl::RejectedCalls => Ok(json!({
            "rejected": server.rejected_calls().iter().map(|r| json!({
                "by": r.by, "device": r.device, "call_id": r.call_id,
                "creator": r.creator, "to": r.to,
            })).collect::<Vec<_>>(),
        })),
        SocialControl::Presence { account, available } => {
            server
                .account(&account)
                .ok_or_else(|| ControlError::NotFound(format!("account {account}")))?;
            server.phone_set_presence(now, &account, available);
            Ok(json!({ "ok": true }))
        }
        SocialControl::PresenceOf { account } => Ok(json!({
            "online": server.is_online(&account),
            "subscribers": server.presence_subscribers(&account),
        })),
        SocialControl::ChatState {
            account,
            chat,
            state,
        } => {
            if !matches!(state.as_str(), "composing" | "recording" | "paused") {
                return Err(ControlError::BadRequest(format!("unknown state {state:?}")));
            }
            server
                .phone_chat_state(&account, chat.trim_start_matches('+'), &state)
                .map(|()| json!({ "ok": true }))
                .map_err(refused)
        }
        SocialControl::ChatStates => Ok(json!({
            "chat_states": server.chat_states_seen().iter().map(|s| json!({
                "account": s.account, "from": s.from, "chat": s.chat, "state": s.state,
            })).collect::<Vec<_>>(),
        })),
        SocialControl::Privacy {
            account,
            category,
            value,
        } => {
            server.set_privacy_setting(&account, &category, &value);
            Ok(json!({ "ok": true }))
        }
        SocialControl::PrivacyToken { account, to } => server
            .phone_issue_privacy_token(now, &account, &to)
            .map(|()| json!({ "ok": true }))
            .map_err(refused),
        SocialControl::Profile {
            account,
            picture,
            about,
            business,
        } => {
            server
                .account(&account)
                .ok_or_else(|| ControlError::NotFound(format!("account {account}")))?;
            if let Some(picture) = picture {
                server.set_profile_picture(&account, picture.as_deref());
            }
            if let Some(about) = about {
                server.set_about(now, &account, &about);
            }
            if let Some(business) = business {
                server.set_business_profile(&account, &business);
            }
            Ok(json!({ "ok": true }))
        }
        SocialControl::Blocked { account } => Ok(json!({ "blocked": server.blocked_by(&account) })),
        SocialControl::Stanzas { account } => Ok(json!({
            "stanzas": server
                .social_stanzas_from(&account)
                .into_iter()
                .map(node_json)
                .collect::<Vec<_>>(),
        })),
        SocialControl::FailNextContactQuery { code } => {
            server.fail_next_contact_query(code);
            Ok(json!({ "ok": true }))
        }
    }
}

/// A node as JSON: `{tag, attrs: {name: text}, content}`, content `null`, a string, a hex
/// string under `{"bytes"}`, or an array of nodes.
pub fn node_json(node: &walink_core::binary::Node) -> Value {
    use walink_core::binary::Content;
    let attrs: serde_json::Map<String, Value> = node
        .attrs
        .iter()
        .map(|attr| (attr.key.to_string(), Value::String(attr.value.to_string())))
        .collect();
    let content = match &node.content {
        Content::None => Value::Null,
        Content::Nodes(children) => Value::Array(children.iter().map(node_json).collect()),
        Content::Bytes(bytes) => json!({ "bytes": hex::encode(bytes) }),
        Content::Str(text) => Value::String(text.to_string()),
        Content::Jid(jid) => Value::String(jid.to_string()),
    };
    json!({ "tag": node.tag.as_ref(), "attrs": attrs, "content": content })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Result<Value, ControlError> {
        Ok(json!({}))
    }

    #[test]
    fn routes_parse_and_others_are_left_alone() {
        assert_eq!(
            parse("POST", &["calls", "C1", "end"], || Ok(
                json!({"timeout": true})
            )),
            Some(Ok(SocialControl::End {
                call_id: "C1".into(),
                timeout: true
            }))
        );
        assert_eq!(
            parse("POST", &["accounts", "+1555", "call"], || Ok(
                json!({"to": "1666"})
            )),
            Some(Ok(SocialControl::Call {
                from: "1555".into(),
                to: "1666".into(),
                video: false,
                group: None
            }))
        );
        assert!(matches!(
            parse("POST", &["fail-next-contact-query"], || Ok(
                json!({"code": 99})
            )),
            Some(Err(ControlError::BadRequest(_)))
        ));
        assert_eq!(parse("GET", &["health"], empty), None);
    }
}
