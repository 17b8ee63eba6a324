//! The control routes of status posts (tests/src/sim/server/status.rs):
//!
//! | method | path | body | does |
//! | --- | --- | --- | --- |
//! | POST | `/accounts/{phone}/status` | `{"recipients", "text"}` | the phone posts a text status seen by `recipients` (numbers or JIDs); answers `{"id"}` |
//! | GET | `/accounts/{phone}/status-receipts` | | the receipts the phone got for its posts: `{"receipts": [{id, viewer, type, participant}]}` |
//!
//! A status a companion posts reaches the phones it names: `GET /accounts/{phone}/messages`
//! lists it with `chat` `status@broadcast`.

use serde_json::{Value, json};

use super::control::ControlError;
use crate::sim::Server;

/// The most recipients one `status` request may name.
pub const MAX_STATUS_RECIPIENTS: usize = 1_000;

/// One status control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusControl {
    /// The phone of `account` posts a text status.
    Post {
        /// The poster.
        account: String,
        /// Who may see it.
        recipients: Vec<String>,
        /// The text.
        text: String,
    },
    /// The receipts the phone of `account` got for its posts.
    Receipts {
        /// The poster.
        account: String,
    },
}

/// The status control a request names, if it is one of these routes.
pub fn parse(
    method: &str,
    segments: &[&str],
    body: impl Fn() -> Result<Value, ControlError>,
) -> Option<Result<StatusControl, ControlError>> {
    let account = |a: &str| a.trim_start_matches('+').to_owned();
    let parsed = match (method, segments) {
        ("POST", ["accounts", a, "status"]) => body().and_then(|b| {
            let text = b
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| ControlError::BadRequest("\"text\" must be a string".into()))?
                .to_owned();
            let recipients: Vec<String> = b
                .get("recipients")
                .and_then(Value::as_array)
                .filter(|list| !list.is_empty() && list.len() <= MAX_STATUS_RECIPIENTS)
                .and_then(|list| {
                    list.iter()
                        .map(|r| r.as_str().map(|r| r.trim_start_matches('+').to_owned()))
                        .collect()
                })
                .ok_or_else(|| {
                    ControlError::BadRequest(format!(
                        "\"recipients\" must be 1 to {MAX_STATUS_RECIPIENTS} strings"
                    ))
                })?;
            Ok(StatusControl::Post {
                account: account(a),
                recipients,
                text,
            })
        }),
        ("GET", ["accounts", a, "status-receipts"]) => Ok(StatusControl::Receipts {
            account: account(a),
        }),
        _ => return None,
    };
    Some(parsed)
}

/// Carries out `control` on `server`.
pub fn run(server: &mut Server, now: u64, control: StatusControl) -> Result<Value, ControlError> {
    match control {
        StatusControl::Post {
            account,
            recipients,
            text,
        } => {
            let post = walink_core::proto::wa::Message {
                extended_text_message: Some(Box::new(
                    walink_core::proto::wa::message::ExtendedTextMessage {
                        text: Some(text),
                        background_argb: Some(0xff1e_6b52),
                        font: Some(1),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            };
            let recipients: Vec<&str> = recipients.iter().map(String::as_str).collect();
            server
                .phone_post_status(now, &account, &recipients, post)
                .map(|id| json!({ "id": id }))
                .map_err(|e| ControlError::NotFound(e.to_string()))
        }
        StatusControl::Receipts { account } => Ok(json!({
            "receipts": server
                .status_receipts(&account)
                .iter()
                .map(|r| json!({
                    "id": r.id,
                    "viewer": r.viewer.to_string(),
                    "type": r.kind,
                    "participant": r.participant.as_ref().map(ToString::to_string),
                }))
                .collect::<Vec<_>>(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> impl Fn() -> Result<Value, ControlError> + '_ {
        move || serde_json::from_str(text).map_err(|e| ControlError::BadRequest(e.to_string()))
    }

    #[test]
    fn routes_parse_and_bad_bodies_are_refused() {
        assert_eq!(
            parse(
                "POST",
                &["accounts", "+1555", "status"],
                body(r#"{"recipients":["1666"],"text":"hi"}"#)
            ),
            Some(Ok(StatusControl::Post {
                account: "1555".into(),
                recipients: vec!["1666".into()],
                text: "hi".into(),
            }))
        );
        assert_eq!(
            parse("GET", &["accounts", "1555", "status-receipts"], body("{}")),
            Some(Ok(StatusControl::Receipts {
                account: "1555".into()
            }))
        );
        for bad in [
            r#"{"recipients":[],"text":"hi"}"#,
            r#"{"recipients":[1],"text":"hi"}"#,
            r#"{"recipients":["1666"]}"#,
        ] {
            assert!(matches!(
                parse("POST", &["accounts", "1555", "status"], body(bad)),
                Some(Err(ControlError::BadRequest(_)))
            ));
        }
        assert!(parse("GET", &["accounts", "1555", "status"], body("{}")).is_none());
    }
}
