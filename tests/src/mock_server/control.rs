//! The control endpoint's requests: the routes, their JSON bodies, and the errors a backend
//! answers with.
//!
//! | method | path | body | does |
//! | --- | --- | --- | --- |
//! | GET | `/health` | | `{"ok": true}` |
//! | POST | `/accounts` | `{"phone"?, "name"?}` | creates an account (a phone number and a primary phone) |
//! | GET | `/accounts` | | lists the accounts |
//! | GET | `/accounts/{phone}/devices` | | lists the account's devices |
//! | POST | `/accounts/{phone}/scan` | `{"qr"}` | the phone scans the QR string a client shows |
//! | POST | `/accounts/{phone}/code` | `{"code"}` | the phone enters the pairing code a client shows |
//! | POST | `/accounts/{phone}/send` | `{"to", "text", "count"?}` | the phone sends a text message (`count` of them: `"<text> <i>"`) |
//! | GET | `/accounts/{phone}/messages` | | the messages the phone received |
//! | POST | `/groups` | `{"creator", "subject"?, "members", "addressing_mode"?}` | creates a group of existing accounts (`"lid"` or `"pn"`, the default) |
//! | GET | `/groups/{id}` | | the group's state: subject, members, admins, description, settings, invite code |
//! | POST | `/groups/{id}/participants` | `{"actor", "action", "participants"}` | an admin (`actor`) adds, removes, promotes or demotes accounts (`add`, `remove`, `promote`, `demote`); answers a result per participant (`error`: the code, or null) |
//! | POST | `/group-options` | `{"add_restricted"?, "max_size"?, "rate_limit_next"?}` | group rules: accounts only their contacts may add (403 with an invite), the most members a group holds (419), the next group requests answered 429 |
//! | POST | `/accounts/{phone}/remove-device` | `{"device"}` | the phone unlinks a device |
//! | POST | `/accounts/{phone}/reinstall` | `{"to"?, "text"?}` | the phone re-registers with a new identity key (its companions are unlinked), then optionally sends a text |
//! | POST | `/stream-error` | `{"code", "device"? , "conn"?}` | the server ends a stream with this code |
//! | GET | `/connections` | | the open connections and who is logged in on each |
//! | GET | `/handshakes` | | the `Origin` and path of each websocket upgrade (answered by the network layer: [`super::handshakes`]) |
//! | GET | `/events` | | the simulation's recent events, oldest first |
//! | POST | `/restart` | | the server restarts: every connection drops |
//! | POST | `/fail-next-login` | `{"reason"}` | the next login gets `<failure reason>` |
//! | POST | `/server-options` | `{"abrupt_restart"?}` | fault options of the server |
//! | GET | `/wire-stats` | | the server's wire checks: requests answered 501, phash mismatches, key reuse |
//! | POST | `/accounts/{phone}/app-state` | `{"action", "chat" or "chats", "until"?}` | the phone changes a chat setting (one patch; with `chats`, one mutation per chat in that patch) |
//! | POST | `/accounts/{phone}/app-state-options` | `{"auto_share"?, "external_snapshots"?, "external_mutations"?}` | how the phone and server handle app state; answers with the counters `external_patches_served`, `snapshots_served` |
//! | GET | `/accounts/{phone}/chat-settings?chat=` | | the phone's settings of a chat |
//! | GET | `/v/...` (a blob's direct path) | | the stored media blob, as raw bytes (the media host); 404 when unknown or expired |
//! | POST | `/mms/{kind}/{token}?auth=&token=` | the encrypted file | a media upload (the media host): the `media_conn` auth is checked (401), the token against the file's hash; answers `{"url", "direct_path"}` |
//! | POST | `/accounts/{phone}/send-media` | `{"to", "kind", "data_base64", "mimetype", "caption"?}` | the phone sends media (`image`, `video`, `gif`, `audio`, `ptt`, `document`, `sticker`) |
//! | POST | `/expire-media` | `{"direct_path"}` | the media hosts forget a blob until its phone uploads it again (media retry) |
//! | POST | `/revoke-media-auth` | | every `media_conn` auth token issued so far is refused (401) from now on |
//!
//! Calls, presence and contacts have their routes in [`super::social`], status posts in
//! [`super::status`].

use serde_json::Value;

use super::http::{Request, Response};

/// The most chats one `app-state` request may name (one mutation each, in one patch).
pub const MAX_CHATS_PER_PATCH: usize = 1_000;

/// The most texts one `send` request may ask the phone for.
pub const MAX_SEND_COUNT: u32 = 100_000;

/// One thing the control endpoint asks the backend to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRequest {
    /// Liveness check.
    Health,
    /// A call, presence or contact control ([`super::social`]).
    Social(super::social::SocialControl),
    /// A status-post control ([`super::status`]).
    Status(super::status::StatusControl),
    /// Create an account; the backend picks the number when `phone` is `None`.
    CreateAccount {
        /// The phone number, digits only.
        phone: Option<String>,
        /// The push name.
        name: Option<String>,
    },
    /// List the accounts.
    ListAccounts,
    /// List an account's devices.
    ListDevices {
        /// The account's phone number.
        account: String,
    },
    /// The account's phone scans a QR string.
    ScanQr {
        /// The account's phone number.
        account: String,
        /// The QR string as the client shows it.
        qr: String,
    },
    /// The account's phone enters a pairing code.
    EnterCode {
        /// The account's phone number.
        account: String,
        /// The eight-character code the client shows.
        code: String,
    },
    /// The account's phone sends a text message, or `count` of them.
    SendText {
        /// The account's phone number.
        account: String,
        /// The recipient: a JID (a user, a LID or a group) or a phone number.
        to: String,
        /// The text; with `count` above 1, message `i` (from 0) is `"<text> <i>"`.
        text: String,
        /// How many messages (1 to [`MAX_SEND_COUNT`]).
        count: u32,
    },
    /// The messages the account's phone received.
    Messages {
        /// The account's phone number.
        account: String,
    },
    /// Create a group of existing accounts (the creator is a member and its admin).
    CreateGroup {
        /// The creator's phone number.
        creator: String,
        /// The group's subject.
        subject: String,
        /// The other members' phone numbers.
        members: Vec<String>,
        /// Whether the group is addressed by LID (`"addressing_mode": "lid"`).
        lid_addressed: bool,
    },
    /// A group's state.
    GetGroup {
        /// The group id (the user part of its JID; a full JID is accepted).
        group: String,
    },
    /// An admin changes a group's participants.
    GroupParticipants {
        /// The group id.
        group: String,
        /// The admin's phone number.
        actor: String,
        /// `add`, `remove`, `promote` or `demote`.
        action: String,
        /// The accounts.
        participants: Vec<String>,
    },
    /// Group rules and faults.
    GroupOptions {
        /// Accounts only their contacts may add (replaces the list when given).
        add_restricted: Option<Vec<String>>,
        /// The most members a group may have.
        max_size: Option<u64>,
        /// The next this-many group requests are answered 429.
        rate_limit_next: Option<u64>,
    },
    /// The account's phone is reinstalled: a new identity key, registration id and prekeys
    /// (its companions are unlinked); then, when `to` is given, it sends `text` there.
    Reinstall {
        /// The account's phone number.
        account: String,
        /// The recipient of a text sent right after: a JID or a phone number.
        to: Option<String>,
        /// The text (default `"hello again"`).
        text: Option<String>,
    },
    /// Fault options of the server (absent: unchanged).
    ServerOptions {
        /// Close the socket together with the `515` that ends a pairing stream.
        abrupt_restart: Option<bool>,
    },
    /// The server's wire checks so far.
    WireStats,
    /// The account's phone unlinks one of its companion devices.
    RemoveDevice {
        /// The account's phone number.
        account: String,
        /// The device JID (`user:device@s.whatsapp.net`).
        device: String,
    },
    /// The server ends a stream with a `<stream:error>` of this code.
    StreamError {
        /// The code: 515, 401, 440, 500, ...
        code: u16,
        /// The device whose connection ends.
        device: Option<String>,
        /// Or the connection by number.
        conn: Option<u64>,
    },
    /// The open connections.
    ListConnections,
    /// Per device: live connections, logins, replacements (`device_connections`).
    DeviceConnections,
    /// What happened in the simulation so far (the most recent events, bounded).
    Events,
    /// The server restarts: every connection drops without a word; accounts and devices stay.
    Restart,
    /// The next login is refused with `<failure reason>` (405 outdated, 403 locked, 503, ...).
    FailNextLogin {
        /// The failure reason.
        reason: u16,
    },
    /// The account's phone changes a chat setting of one or more chats (stored as one app-state
    /// patch of one mutation per chat).
    PhoneAppState {
        /// The account's phone number.
        account: String,
        /// `mute`, `unmute`, `pin`, `unpin`, `archive` or `unarchive`.
        action: String,
        /// The chats' JIDs (`"chat"`, or the `"chats"` array): at least one, at most
        /// [`MAX_CHATS_PER_PATCH`].
        chats: Vec<String>,
        /// For `mute`: the end in Unix milliseconds (absent or 0: forever).
        until: Option<i64>,
    },
    /// How the phone and the server handle the account's app state (absent: unchanged).
    AppStateOptions {
        /// The account's phone number.
        account: String,
        /// The phone shares its sync key with each new companion.
        auto_share: Option<bool>,
        /// Snapshots are served as external blobs.
        external_snapshots: Option<bool>,
        /// Mutations of large patches are served as external blobs.
        external_mutations: Option<bool>,
    },
    /// The phone's settings of one chat.
    PhoneChatSettings {
        /// The account's phone number.
        account: String,
        /// The chat's JID.
        chat: String,
    },
    /// A media upload, `POST /mms/<kind>/<token>?auth=…`.
    Upload {
        /// The path kind (`image`, `video`, …).
        kind: String,
        /// The token: the base64 of the file's SHA-256.
        token: String,
        /// The `media_conn` auth token (empty when absent).
        auth: String,
        /// The encrypted file.
        body: Vec<u8>,
    },
    /// The phone sends media.
    PhoneSendMedia {
        /// The account's phone number.
        account: String,
        /// The recipient (a JID, or digits).
        to: String,
        /// `image`, `video`, `gif`, `audio`, `ptt`, `document` or `sticker`.
        kind: String,
        /// The file.
        data: Vec<u8>,
        /// Its MIME type.
        mimetype: String,
        /// A caption.
        caption: Option<String>,
    },
    /// Every `media_conn` auth token issued so far is refused from now on.
    RevokeMediaAuth,
    /// The media hosts forget a blob (until a re-upload).
    ExpireMedia {
        /// The blob's direct path.
        direct_path: String,
    },
    /// A stored media blob by its direct path (path and query string), served as raw bytes.
    Blob {
        /// The direct path, as `Event::AppStateDownload` names it.
        direct_path: String,
    },
}

/// Why a control request failed, split by who is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The caller sent a request that does not parse or names nothing sensible (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No such route (404).
    #[error("no such route: {0}")]
    NoRoute(String),
    /// The request names an account, device or connection that does not exist (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is valid but the simulation refuses it in its state (409), e.g. an expired
    /// QR or a wrong pairing code.
    #[error("refused: {0}")]
    Refused(String),
    /// A media upload without a valid `media_conn` auth token (401).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
}

impl ControlError {
    /// The HTTP response for this error.
    pub fn response(&self) -> Response {
        let status = match self {
            ControlError::BadRequest(_) => 400,
            ControlError::NoRoute(_) | ControlError::NotFound(_) => 404,
            ControlError::Refused(_) => 409,
            ControlError::Unauthorized(_) => 401,
        };
        Response::error(status, &self.to_string())
    }
}

/// Maps an HTTP request to a control request.
pub fn parse(request: &Request) -> Result<ControlRequest, ControlError> {
    let segments: Vec<&str> = request
        .path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let body = || -> Result<Value, ControlError> {
        if request.body.is_empty() {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        let value: Value = serde_json::from_slice(&request.body)
            .map_err(|error| ControlError::BadRequest(format!("body is not JSON: {error}")))?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(ControlError::BadRequest("body is not a JSON object".into()))
        }
    };
    let method = request.method.as_str();
    if let Some(status) = super::status::parse(method, &segments, body) {
        return status.map(ControlRequest::Status);
    }
    if let Some(social) = super::social::parse(method, &segments, body) {
        return social.map(ControlRequest::Social);
    }
    match (method, segments.as_slice()) {
        ("GET", ["health"]) => Ok(ControlRequest::Health),
        ("GET", ["accounts"]) => Ok(ControlRequest::ListAccounts),
        ("POST", ["accounts"]) => {
            let body = body()?;
            Ok(ControlRequest::CreateAccount {
                phone: optional_string(&body, "phone")?,
                name: optional_string(&body, "name")?,
            })
        }
        ("GET", ["accounts", account, "devices"]) => Ok(ControlRequest::ListDevices {
            account: account_of(account)?,
        }),
        ("GET", ["accounts", account, "messages"]) => Ok(ControlRequest::Messages {
            account: account_of(account)?,
        }),
        ("GET", ["accounts", account, "chat-settings"]) => Ok(ControlRequest::PhoneChatSettings {
            account: account_of(account)?,
            chat: request
                .query
                .iter()
                .find(|(key, _)| key == "chat")
                .map(|(_, value)| value.clone())
                .ok_or_else(|| ControlError::BadRequest("the query needs chat=".into()))?,
        }),
        ("POST", ["mms", kind, token]) => Ok(ControlRequest::Upload {
            kind: (*kind).to_owned(),
            token: (*token).to_owned(),
            auth: request
                .query
                .iter()
                .find(|(key, _)| key == "auth")
                .map(|(_, value)| value.clone())
                .unwrap_or_default(),
            body: request.body.clone(),
        }),
        ("POST", ["revoke-media-auth"]) => Ok(ControlRequest::RevokeMediaAuth),
        ("POST", ["expire-media"]) => Ok(ControlRequest::ExpireMedia {
            direct_path: required_string(&body()?, "direct_path")?,
        }),
        ("GET", ["v", ..]) => Ok(ControlRequest::Blob {
            direct_path: direct_path(request),
        }),
        ("POST", ["accounts", account, action]) => {
            let account = account_of(account)?;
            let body = body()?;
            match *action {
                "scan" => Ok(ControlRequest::ScanQr {
                    account,
                    qr: required_string(&body, "qr")?,
                }),
                "code" => Ok(ControlRequest::EnterCode {
                    account,
                    code: required_string(&body, "code")?,
                }),
                "send" => Ok(ControlRequest::SendText {
                    account,
                    to: required_string(&body, "to")?,
                    text: required_string(&body, "text")?,
                    count: match body.get("count") {
                        None | Some(Value::Null) => 1,
                        Some(value) => value
                            .as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .filter(|n| (1..=MAX_SEND_COUNT).contains(n))
                            .ok_or_else(|| {
                                ControlError::BadRequest(format!(
                                    "\"count\" must be 1 to {MAX_SEND_COUNT}"
                                ))
                            })?,
                    },
                }),
                "send-media" => {
                    use base64::Engine as _;
                    Ok(ControlRequest::PhoneSendMedia {
                        account,
                        to: required_string(&body, "to")?,
                        kind: required_string(&body, "kind")?,
                        data: base64::engine::general_purpose::STANDARD
                            .decode(required_string(&body, "data_base64")?)
                            .map_err(|_| {
                                ControlError::BadRequest("\"data_base64\" is not base64".into())
                            })?,
                        mimetype: required_string(&body, "mimetype")?,
                        caption: optional_string(&body, "caption")?,
                    })
                }
                "reinstall" => Ok(ControlRequest::Reinstall {
                    account,
                    to: optional_string(&body, "to")?,
                    text: optional_string(&body, "text")?,
                }),
                "remove-device" => Ok(ControlRequest::RemoveDevice {
                    account,
                    device: required_string(&body, "device")?,
                }),
                "app-state" => Ok(ControlRequest::PhoneAppState {
                    account,
                    action: required_string(&body, "action")?,
                    chats: chats_of(&body)?,
                    until: match body.get("until") {
                        None | Some(Value::Null) => None,
                        Some(value) => Some(value.as_i64().ok_or_else(|| {
                            ControlError::BadRequest("\"until\" must be a number".into())
                        })?),
                    },
                }),
                "app-state-options" => Ok(ControlRequest::AppStateOptions {
                    account,
                    auto_share: optional_bool(&body, "auto_share")?,
                    external_snapshots: optional_bool(&body, "external_snapshots")?,
                    external_mutations: optional_bool(&body, "external_mutations")?,
                }),
                _ => Err(ControlError::NoRoute(format!("{method} {}", request.path))),
            }
        }
        ("POST", ["groups"]) => {
            let body = body()?;
            let creator = account_of(&required_string(&body, "creator")?)?;
            let subject = optional_string(&body, "subject")?.unwrap_or_else(|| "group".into());
            let members = body
                .get("members")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    ControlError::BadRequest("\"members\" must be an array of phone numbers".into())
                })?
                .iter()
                .map(|member| {
                    member.as_str().ok_or_else(|| {
                        ControlError::BadRequest("\"members\" must hold strings".into())
                    })
                })
                .map(|member| member.and_then(account_of))
                .collect::<Result<Vec<_>, _>>()?;
            let lid_addressed = match optional_string(&body, "addressing_mode")?.as_deref() {
                None | Some("pn") => false,
                Some("lid") => true,
                Some(other) => {
                    return Err(ControlError::BadRequest(format!(
                        "\"addressing_mode\" must be \"lid\" or \"pn\", not {other:?}"
                    )));
                }
            };
            Ok(ControlRequest::CreateGroup {
                creator,
                subject,
                members,
                lid_addressed,
            })
        }
        ("GET", ["groups", group]) => Ok(ControlRequest::GetGroup {
            group: group_of(group),
        }),
        ("POST", ["groups", group, "participants"]) => {
            let body = body()?;
            let action = required_string(&body, "action")?;
            if !matches!(action.as_str(), "add" | "remove" | "promote" | "demote") {
                return Err(ControlError::BadRequest(format!(
                    "\"action\" must be add, remove, promote or demote, not {action:?}"
                )));
            }
            Ok(ControlRequest::GroupParticipants {
                group: group_of(group),
                actor: account_of(&required_string(&body, "actor")?)?,
                action,
                participants: accounts_of(&body, "participants")?,
            })
        }
        ("POST", ["group-options"]) => {
            let body = body()?;
            let add_restricted = match body.get("add_restricted") {
                None | Some(Value::Null) => None,
                Some(_) => Some(accounts_of(&body, "add_restricted")?),
            };
            let number = |name: &str| match body.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value.as_u64().map(Some).ok_or_else(|| {
                    ControlError::BadRequest(format!("\"{name}\" must be a number"))
                }),
            };
            Ok(ControlRequest::GroupOptions {
                add_restricted,
                max_size: number("max_size")?,
                rate_limit_next: number("rate_limit_next")?,
            })
        }
        ("POST", ["server-options"]) => {
            let body = body()?;
            Ok(ControlRequest::ServerOptions {
                abrupt_restart: optional_bool(&body, "abrupt_restart")?,
            })
        }
        ("GET", ["wire-stats"]) => Ok(ControlRequest::WireStats),
        ("POST", ["stream-error"]) => {
            let body = body()?;
            let code = body
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|code| u16::try_from(code).ok())
                .ok_or_else(|| ControlError::BadRequest("\"code\" must be a number".into()))?;
            let conn =
                match body.get("conn") {
                    None | Some(Value::Null) => None,
                    Some(value) => Some(value.as_u64().ok_or_else(|| {
                        ControlError::BadRequest("\"conn\" must be a number".into())
                    })?),
                };
            let device = optional_string(&body, "device")?;
            if conn.is_none() && device.is_none() {
                return Err(ControlError::BadRequest(
                    "name a \"device\" or a \"conn\"".into(),
                ));
            }
            Ok(ControlRequest::StreamError { code, device, conn })
        }
        ("GET", ["connections"]) => Ok(ControlRequest::ListConnections),
        ("GET", ["device-connections"]) => Ok(ControlRequest::DeviceConnections),
        ("GET", ["events"]) => Ok(ControlRequest::Events),
        ("POST", ["restart"]) => Ok(ControlRequest::Restart),
        ("POST", ["fail-next-login"]) => {
            let body = body()?;
            let reason = body
                .get("reason")
                .and_then(Value::as_u64)
                .and_then(|reason| u16::try_from(reason).ok())
                .ok_or_else(|| ControlError::BadRequest("\"reason\" must be a number".into()))?;
            Ok(ControlRequest::FailNextLogin { reason })
        }
        _ => Err(ControlError::NoRoute(format!("{method} {}", request.path))),
    }
}

/// A blob's direct path as stored: the path, then the query string as sent (`?k=v&...`).
fn direct_path(request: &Request) -> String {
    if request.query.is_empty() {
        return request.path.clone();
    }
    let query: Vec<String> = request
        .query
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    format!("{}?{}", request.path, query.join("&"))
}

/// The chats of an `app-state` body: `"chat"` (one JID) or `"chats"` (a non-empty array of at
/// most [`MAX_CHATS_PER_PATCH`] JIDs), not both.
fn chats_of(body: &Value) -> Result<Vec<String>, ControlError> {
    let chat = optional_string(body, "chat")?;
    let chats = match body.get("chats") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        ControlError::BadRequest("\"chats\" must hold strings".into())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(ControlError::BadRequest(
                "\"chats\" must be an array of JIDs".into(),
            ));
        }
    };
    match (chat, chats) {
        (Some(chat), None) => Ok(vec![chat]),
        (None, Some(chats)) if !chats.is_empty() && chats.len() <= MAX_CHATS_PER_PATCH => Ok(chats),
        (None, Some(_)) => Err(ControlError::BadRequest(format!(
            "\"chats\" must hold 1 to {MAX_CHATS_PER_PATCH} JIDs"
        ))),
        (Some(_), Some(_)) => Err(ControlError::BadRequest(
            "name \"chat\" or \"chats\", not both".into(),
        )),
        (None, None) => Err(ControlError::BadRequest("\"chat\" is missing".into())),
    }
}

fn optional_bool(body: &Value, name: &str) -> Result<Option<bool>, ControlError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(on)) => Ok(Some(*on)),
        Some(_) => Err(ControlError::BadRequest(format!(
            "\"{name}\" must be true or false"
        ))),
    }
}

/// An account segment: a phone number, digits only (a leading `+` is dropped).
fn account_of(segment: &str) -> Result<String, ControlError> {
    let digits = segment.trim_start_matches('+');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ControlError::BadRequest(format!(
            "account {segment:?} is not a phone number"
        )));
    }
    Ok(digits.to_owned())
}

/// A group segment: its id, or its JID (`<id>@g.us`).
fn group_of(segment: &str) -> String {
    segment.split('@').next().unwrap_or_default().to_owned()
}

/// An array of phone numbers.
fn accounts_of(body: &Value, name: &str) -> Result<Vec<String>, ControlError> {
    body.get(name)
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ControlError::BadRequest(format!("\"{name}\" must be an array of phone numbers"))
        })?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| ControlError::BadRequest(format!("\"{name}\" must hold strings")))
                .and_then(account_of)
        })
        .collect()
}

fn optional_string(body: &Value, name: &str) -> Result<Option<String>, ControlError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ControlError::BadRequest(format!(
            "\"{name}\" must be a string"
        ))),
    }
}

fn required_string(body: &Value, name: &str) -> Result<String, ControlError> {
    optional_string(body, name)?
        .ok_or_else(|| ControlError::BadRequest(format!("\"{name}\" is missing")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn media_routes() {
        assert_eq!(
            parse(&Request {
                query: vec![("auth".into(), "a+b".into()), ("token".into(), "T".into())],
                body: vec![1, 2, 3],
                ..request("POST", "/mms/image/T", "")
            }),
            Ok(ControlRequest::Upload {
                kind: "image".into(),
                token: "T".into(),
                auth: "a+b".into(),
                body: vec![1, 2, 3],
            })
        );
        assert_eq!(
            parse(&request(
                "POST",
                "/accounts/1555/send-media",
                r#"{"to":"1666","kind":"ptt","data_base64":"AAE=","mimetype":"audio/ogg"}"#
            )),
            Ok(ControlRequest::PhoneSendMedia {
                account: "1555".into(),
                to: "1666".into(),
                kind: "ptt".into(),
                data: vec![0, 1],
                mimetype: "audio/ogg".into(),
                caption: None,
            })
        );
        assert_eq!(
            parse(&request(
                "POST",
                "/expire-media",
                r#"{"direct_path":"/v/a"}"#
            )),
            Ok(ControlRequest::ExpireMedia {
                direct_path: "/v/a".into()
            })
        );
        for (path, body) in [
            (
                "/accounts/1555/send-media",
                r#"{"to":"1","kind":"ptt","data_base64":"!","mimetype":"x"}"#,
            ),
            ("/expire-media", "{}"),
        ] {
            assert!(matches!(
                parse(&request("POST", path, body)),
                Err(ControlError::BadRequest(_))
            ));
        }
        assert_eq!(
            ControlError::Unauthorized("x".into()).response().status,
            401
        );
    }

    #[test]
    fn groups_route() {
        assert_eq!(
            parse(&request(
                "POST",
                "/groups",
                r#"{"creator":"+1555","subject":"s","members":["1666"]}"#
            )),
            Ok(ControlRequest::CreateGroup {
                creator: "1555".into(),
                subject: "s".into(),
                members: vec!["1666".into()],
                lid_addressed: false,
            })
        );
        assert_eq!(
            parse(&request(
                "POST",
                "/groups",
                r#"{"creator":"1555","members":["1666"],"addressing_mode":"lid"}"#
            )),
            Ok(ControlRequest::CreateGroup {
                creator: "1555".into(),
                subject: "group".into(),
                members: vec!["1666".into()],
                lid_addressed: true,
            })
        );
        assert!(matches!(
            parse(&request(
                "POST",
                "/groups",
                r#"{"creator":"1555","members":[],"addressing_mode":"x"}"#
            )),
            Err(ControlError::BadRequest(_))
        ));
        assert_eq!(
            parse(&request(
                "POST",
                "/server-options",
                r#"{"abrupt_restart":true}"#
            )),
            Ok(ControlRequest::ServerOptions {
                abrupt_restart: Some(true)
            })
        );
        assert_eq!(
            parse(&request("GET", "/wire-stats", "")),
            Ok(ControlRequest::WireStats)
        );
        assert!(matches!(
            parse(&request(
                "POST",
                "/groups",
                r#"{"creator":"1555","members":[1]}"#
            )),
            Err(ControlError::BadRequest(_))
        ));
        assert!(matches!(
            parse(&request("POST", "/groups", r#"{"creator":"1555"}"#)),
            Err(ControlError::BadRequest(_))
        ));
    }

    #[test]
    fn routes() {
        assert_eq!(
            parse(&request("POST", "/accounts", r#"{"phone":"15550001"}"#)),
            Ok(ControlRequest::CreateAccount {
                phone: Some("15550001".into()),
                name: None
            })
        );
        assert_eq!(
            parse(&request(
                "POST",
                "/accounts/+1555/scan",
                r#"{"qr":"a,b,c,d,e"}"#
            )),
            Ok(ControlRequest::ScanQr {
                account: "1555".into(),
                qr: "a,b,c,d,e".into()
            })
        );
        assert_eq!(
            parse(&request(
                "POST",
                "/stream-error",
                r#"{"code":515,"conn":2}"#
            )),
            Ok(ControlRequest::StreamError {
                code: 515,
                device: None,
                conn: Some(2)
            })
        );
        assert_eq!(
            parse(&Request {
                query: vec![
                    ("ccb".into(), "11-4".into()),
                    ("_nc_sid".into(), "sim".into())
                ],
                ..request("GET", "/v/sim/md-app-state/ab.enc", "")
            }),
            Ok(ControlRequest::Blob {
                direct_path: "/v/sim/md-app-state/ab.enc?ccb=11-4&_nc_sid=sim".into()
            })
        );
        assert_eq!(
            parse(&request(
                "POST",
                "/accounts/1555/app-state",
                r#"{"action":"mute","chat":"1666@s.whatsapp.net","until":5}"#
            )),
            Ok(ControlRequest::PhoneAppState {
                account: "1555".into(),
                action: "mute".into(),
                chats: vec!["1666@s.whatsapp.net".into()],
                until: Some(5)
            })
        );
        assert_eq!(
            parse(&request(
                "POST",
                "/accounts/1555/app-state",
                r#"{"action":"pin","chats":["1666@s.whatsapp.net","1777@s.whatsapp.net"]}"#
            )),
            Ok(ControlRequest::PhoneAppState {
                account: "1555".into(),
                action: "pin".into(),
                chats: vec!["1666@s.whatsapp.net".into(), "1777@s.whatsapp.net".into()],
                until: None
            })
        );
        assert_eq!(
            parse(&request("GET", "/accounts/1555/messages", "")),
            Ok(ControlRequest::Messages {
                account: "1555".into()
            })
        );
    }

    #[test]
    fn bad_requests() {
        for (method, path, body) in [
            ("POST", "/accounts/abc/scan", r#"{"qr":"x"}"#),
            ("POST", "/accounts/1555/scan", "{}"),
            ("POST", "/accounts/1555/scan", "[1]"),
            ("POST", "/accounts/1555/scan", "{"),
            ("POST", "/accounts/1555/send", r#"{"to":"1","text":5}"#),
            (
                "POST",
                "/accounts/1555/send",
                r#"{"to":"1","text":"a","count":0}"#,
            ),
            ("POST", "/stream-error", r#"{"code":515}"#),
            ("POST", "/accounts/1555/app-state", r#"{"action":"mute"}"#),
            (
                "POST",
                "/accounts/1555/app-state",
                r#"{"action":"mute","chats":[]}"#,
            ),
            (
                "POST",
                "/accounts/1555/app-state",
                r#"{"action":"mute","chats":[1]}"#,
            ),
            (
                "POST",
                "/accounts/1555/app-state",
                r#"{"action":"mute","chats":"a"}"#,
            ),
            (
                "POST",
                "/accounts/1555/app-state",
                r#"{"action":"mute","chat":"a","chats":["b"]}"#,
            ),
            ("POST", "/stream-error", r#"{"code":70000,"conn":1}"#),
        ] {
            assert!(
                matches!(
                    parse(&request(method, path, body)),
                    Err(ControlError::BadRequest(_))
                ),
                "{method} {path} {body}"
            );
        }
        assert!(matches!(
            parse(&request("DELETE", "/accounts", "")),
            Err(ControlError::NoRoute(_))
        ));
        assert!(matches!(
            parse(&request("POST", "/accounts/1555/dance", "{}")),
            Err(ControlError::NoRoute(_))
        ));
    }
}
