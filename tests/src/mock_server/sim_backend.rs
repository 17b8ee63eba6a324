//! The simulation ([`crate::sim::Server`]) as a mock-server [`Backend`]: connections map to
//! the server's connections one to one, control requests to the server's phone and fault
//! controls, and the server's events are kept (bounded) for `GET /events`.

use std::collections::VecDeque;

use serde_json::{Value, json};
use walink_core::appstate::{MessageRange, MuteUntil, SyncAction};

use super::device_connections::DeviceConnections;
use super::{Backend, BackendOutput, ConnId, ControlError, ControlRequest, now_ms};
use crate::sim::{
    ConnId as SimConn, Server, ServerConfig, ServerOutput, SimError, SimRng, StreamErrorKind,
};

/// The most server events kept for `GET /events`; older ones are dropped.
pub const MAX_KEPT_EVENTS: usize = 1_000;

/// The first phone number handed out when `POST /accounts` names none.
const FIRST_AUTO_NUMBER: u64 = 15_550_000_001;

/// The simulated server behind a mock server.
pub struct SimBackend {
    server: Server,
    next_number: u64,
    events: VecDeque<String>,
    dropped_events: u64,
    device_connections: DeviceConnections,
}

impl SimBackend {
    /// A server whose every random choice follows from `seed`.
    pub fn new(seed: u64) -> Self {
        SimBackend {
            server: Server::new(ServerConfig::new(SimRng::from_u64(seed).bytes::<32>())),
            next_number: FIRST_AUTO_NUMBER,
            events: VecDeque::new(),
            dropped_events: 0,
            device_connections: DeviceConnections::default(),
        }
    }

    /// The server, for in-process tests.
    pub fn server(&self) -> &Server {
        &self.server
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            self.device_connections.observe(now_ms(), &event);
            self.keep(format!("{event:?}"));
        }
    }

    fn keep(&mut self, line: String) {
        if self.events.len() == MAX_KEPT_EVENTS {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(line);
    }

    fn account_json(&self, user: &str) -> Value {
        match self.server.account(user) {
            Some(account) => json!({
                "phone": account.user,
                "jid": account.jid().to_string(),
                "lid": account.lid_jid().to_string(),
                "name": account.push_name,
                "devices": account.devices.len(),
            }),
            None => json!({ "phone": user }),
        }
    }

    fn devices_json(&self, user: &str) -> Result<Value, ControlError> {
        let account = self
            .server
            .account(user)
            .ok_or_else(|| ControlError::NotFound(format!("account {user}")))?;
        let devices: Vec<Value> = account
            .devices
            .values()
            .map(|device| {
                json!({
                    "id": device.id,
                    "jid": account.device_jid(device.id).to_string(),
                    "name": device.name,
                    "platform_type": device.platform_type,
                    "online": device.id == 0
                        || self.server.device_conn(user, device.id).is_some(),
                })
            })
            .collect();
        Ok(json!({ "devices": devices }))
    }

    fn create_account(
        &mut self,
        phone: Option<String>,
        name: Option<String>,
    ) -> Result<Value, ControlError> {
        let phone = match phone {
            Some(phone) => {
                let digits = phone.trim_start_matches('+').to_owned();
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ControlError::BadRequest(format!(
                        "phone {phone:?} is not a number"
                    )));
                }
                digits
            }
            None => loop {
                let candidate = self.next_number.to_string();
                self.next_number += 1;
                if self.server.account(&candidate).is_none() {
                    break candidate;
                }
            },
        };
        let name = name.unwrap_or_else(|| format!("Phone {phone}"));
        self.server
            .create_account(&phone, &name)
            .map_err(control_error)?;
        Ok(self.account_json(&phone))
    }

    fn stream_error(
        &mut self,
        code: u16,
        device: Option<String>,
        conn: Option<u64>,
    ) -> Result<Value, ControlError> {
        let kind = match code {
            515 => StreamErrorKind::RestartRequired,
            440 => StreamErrorKind::Replaced,
            401 => StreamErrorKind::Unauthorized,
            429 => StreamErrorKind::RateLimited,
            500..=599 => StreamErrorKind::ServerError(code),
            _ => {
                return Err(ControlError::BadRequest(format!(
                    "code {code} is not one of 401, 429, 440, 515, 5xx \
                     (401 device_removed: POST /accounts/{{phone}}/remove-device)"
                )));
            }
        };
        let conn = match (conn, device) {
            (Some(conn), _) => SimConn(conn),
            (None, Some(device)) => {
                let (user, id) = parse_device(&device)?;
                self.server
                    .device_conn(&user, id)
                    .ok_or_else(|| ControlError::NotFound(format!("no connection of {device}")))?
            }
            (None, None) => {
                return Err(ControlError::BadRequest(
                    "name a \"device\" or a \"conn\"".into(),
                ));
            }
        };
        self.server
            .send_stream_error(conn, kind)
            .map_err(control_error)?;
        Ok(json!({ "conn": conn.0, "code": code }))
    }
}

/// A device JID `user:device@s.whatsapp.net` (or `user:device`) as (user, device).
fn parse_device(text: &str) -> Result<(String, u16), ControlError> {
    let bad =
        || ControlError::BadRequest(format!("{text:?} is not a device JID user:device@server"));
    let address = text.split('@').next().unwrap_or(text);
    let (user, device) = address.split_once(':').ok_or_else(bad)?;
    let device = device.parse::<u16>().map_err(|_| bad())?;
    if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok((user.to_owned(), device))
}

/// The JSON field in which [`ControlRequest::Blob`]'s answer carries the blob (base64); the
/// control thread serves it as raw bytes.
pub const BLOB_FIELD: &str = "blob_base64";

/// A chat-setting action of the control API as a [`SyncAction`].
fn phone_action(
    action: &str,
    chat: String,
    until: Option<i64>,
) -> Result<SyncAction, ControlError> {
    Ok(match action {
        "mute" => SyncAction::Mute {
            chat,
            until: MuteUntil::at(until.unwrap_or(0))
                .map_err(|error| ControlError::BadRequest(format!("\"until\": {error}")))?,
        },
        "unmute" => SyncAction::Unmute { chat },
        "pin" | "unpin" => SyncAction::Pin {
            chat,
            pinned: action == "pin",
        },
        "archive" | "unarchive" => SyncAction::Archive {
            chat,
            archived: action == "archive",
            range: MessageRange::default(),
        },
        other => {
            return Err(ControlError::BadRequest(format!(
                "unknown action {other:?} (mute, unmute, pin, unpin, archive, unarchive)"
            )));
        }
    })
}

/// A simulation error as the control endpoint reports it: missing things are 404, refusals 409.
fn control_error(error: SimError) -> ControlError {
    match error {
        SimError::UnknownAccount(_)
        | SimError::UnknownConnection(_)
        | SimError::UnknownRef(_)
        | SimError::NoCodeRequested(_)
        | SimError::UnknownDevice(..) => ControlError::NotFound(error.to_string()),
        other => ControlError::Refused(other.to_string()),
    }
}

impl Backend for SimBackend {
    fn connect(&mut self, now: u64) -> ConnId {
        self.server.connect(now).0
    }

    fn handle_bytes(&mut self, now: u64, conn: ConnId, bytes: &[u8]) {
        self.server.handle_bytes(now, SimConn(conn), bytes);
        self.collect_events();
    }

    fn handle_closed(&mut self, now: u64, conn: ConnId) {
        self.server.handle_closed(now, SimConn(conn));
        self.collect_events();
    }

    fn handle_timeout(&mut self, now: u64) {
        self.server.handle_timeout(now);
        self.collect_events();
    }

    fn poll_output(&mut self) -> Option<BackendOutput> {
        let output = match self.server.poll_output()? {
            ServerOutput::Transmit { conn, bytes } => BackendOutput::Transmit {
                conn: conn.0,
                bytes,
            },
            ServerOutput::Close { conn, reason } => {
                self.keep(format!("server closes {conn}: {reason:?}"));
                BackendOutput::Close { conn: conn.0 }
            }
        };
        Some(output)
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.server.poll_timeout()
    }

    fn control(&mut self, now: u64, request: ControlRequest) -> Result<Value, ControlError> {
        let answer = match request {
            ControlRequest::Health => Ok(json!({ "ok": true })),
            ControlRequest::Social(control) => super::social::run(&mut self.server, now, control),
            ControlRequest::Status(control) => super::status::run(&mut self.server, now, control),
            ControlRequest::CreateAccount { phone, name } => self.create_account(phone, name),
            ControlRequest::ListAccounts => Ok(json!({
                "accounts": self
                    .server
                    .accounts()
                    .map(|account| self.account_json(&account.user))
                    .collect::<Vec<_>>(),
            })),
            ControlRequest::ListDevices { account } => self.devices_json(&account),
            ControlRequest::ScanQr { account, qr } => self
                .server
                .phone_scan_qr(now, &account, &qr)
                .map(|conn| json!({ "conn": conn.0 }))
                .map_err(control_error),
            ControlRequest::EnterCode { account, code } => self
                .server
                .phone_enter_code(now, &account, &code)
                .map(|conn| json!({ "conn": conn.0 }))
                .map_err(control_error),
            ControlRequest::RemoveDevice { account, device } => {
                let (user, id) = match parse_device(&device) {
                    Ok(parsed) => parsed,
                    Err(_) => (
                        account.clone(),
                        device.parse::<u16>().map_err(|_| {
                            ControlError::BadRequest(format!(
                                "{device:?} is neither a device JID nor a device number"
                            ))
                        })?,
                    ),
                };
                if user != account {
                    return Err(ControlError::BadRequest(format!(
                        "device {device} is not one of account {account}"
                    )));
                }
                self.server
                    .remove_device(&user, id)
                    .map(|()| json!({ "removed": format!("{user}:{id}") }))
                    .map_err(control_error)
            }
            ControlRequest::StreamError { code, device, conn } => {
                self.stream_error(code, device, conn)
            }
            ControlRequest::ListConnections => Ok(json!({
                "connections": self
                    .server
                    .connections()
                    .into_iter()
                    .map(|(conn, who)| (conn.0, who))
                    .map(|(conn, who)| match who {
                        Some((user, device)) => {
                            json!({ "conn": conn, "device": format!("{user}:{device}") })
                        }
                        None => json!({ "conn": conn, "device": null }),
                    })
                    .collect::<Vec<_>>(),
            })),
            ControlRequest::DeviceConnections => Ok(self.device_connections.report()),
            ControlRequest::Events => Ok(json!({
                "dropped": self.dropped_events,
                "events": self.events.iter().collect::<Vec<_>>(),
            })),
            ControlRequest::Restart => {
                self.server.restart();
                Ok(json!({ "restarted": true }))
            }
            ControlRequest::FailNextLogin { reason } => {
                self.server.fail_next_login(reason);
                Ok(json!({ "reason": reason }))
            }
            ControlRequest::Reinstall { account, to, text } => {
                let identity = self
                    .server
                    .reinstall_phone(&account)
                    .map_err(control_error)?;
                let id = match to {
                    Some(to) => Some(
                        self.server
                            .phone_send_text(
                                now,
                                &account,
                                &to,
                                text.as_deref().unwrap_or("hello again"),
                            )
                            .map_err(control_error)?,
                    ),
                    None => None,
                };
                Ok(json!({ "identity": hex::encode(identity), "id": id }))
            }
            ControlRequest::SendText {
                account,
                to,
                text,
                count,
            } => {
                let mut ids = Vec::new();
                for i in 0..count {
                    let text = if count == 1 {
                        text.clone()
                    } else {
                        format!("{text} {i}")
                    };
                    ids.push(
                        self.server
                            .phone_send_text(now, &account, &to, &text)
                            .map_err(control_error)?,
                    );
                }
                Ok(json!({ "id": ids.first(), "ids": ids }))
            }
            ControlRequest::CreateGroup {
                creator,
                subject,
                members,
                lid_addressed,
            } => {
                let members: Vec<&str> = members.iter().map(String::as_str).collect();
                self.server
                    .create_group_addressed(now, &creator, &subject, &members, lid_addressed)
                    .map(|jid| {
                        json!({
                            "jid": jid.to_string(),
                            "subject": subject,
                            "addressing_mode": if lid_addressed { "lid" } else { "pn" },
                        })
                    })
                    .map_err(control_error)
            }
            ControlRequest::GetGroup { group } => {
                let group = self
                    .server
                    .group(&group)
                    .ok_or_else(|| ControlError::NotFound(format!("no group {group}")))?;
                Ok(json!({
                    "jid": format!("{}@g.us", group.id),
                    "subject": group.subject,
                    "creator": group.creator,
                    "members": group.members,
                    "admins": group.admins,
                    "description": group.description.as_ref().map(|(_, text)| text),
                    "announce": group.announce,
                    "locked": group.locked,
                    "approval": group.approval,
                    "ephemeral": group.ephemeral,
                    "invite_code": group.invite_code,
                }))
            }
            ControlRequest::GroupParticipants {
                group,
                actor,
                action,
                participants,
            } => {
                let users: Vec<&str> = participants.iter().map(String::as_str).collect();
                let results = self
                    .server
                    .group_change_participants(now, &group, &actor, &action, &users)
                    .map_err(control_error)?;
                let results: Vec<_> = results
                    .iter()
                    .map(|r| json!({ "user": r.user, "error": r.error }))
                    .collect();
                Ok(json!({ "results": results }))
            }
            ControlRequest::GroupOptions {
                add_restricted,
                max_size,
                rate_limit_next,
            } => {
                let rules = self.server.group_rules_mut();
                if let Some(list) = add_restricted {
                    rules.add_restricted = list.into_iter().collect();
                }
                if let Some(max) = max_size {
                    rules.max_size = usize::try_from(max).unwrap_or(usize::MAX);
                }
                if let Some(next) = rate_limit_next {
                    rules.rate_limit_next = u32::try_from(next).unwrap_or(u32::MAX);
                }
                Ok(json!({
                    "add_restricted": rules.add_restricted,
                    "max_size": rules.max_size,
                    "rate_limit_next": rules.rate_limit_next,
                }))
            }
            ControlRequest::ServerOptions { abrupt_restart } => {
                if let Some(on) = abrupt_restart {
                    self.server.set_abrupt_restart(on);
                }
                Ok(json!({ "abrupt_restart": self.server.abrupt_restart() }))
            }
            ControlRequest::WireStats => Ok(json!({
                "requests": self.server.requests_received(),
                "unimplemented": self.server.unimplemented_requests(),
                "phash_mismatches": self.server.phash_mismatches(),
                "key_reuses": self.server.key_reuses().len(),
                "key_uses_checked": self.server.key_uses_checked(),
                "duplicate_sends": self.server.duplicate_sends(),
                "privacy_tokens_issued": self
                    .server
                    .accounts()
                    .map(|account| self.server.privacy_tokens_issued(&account.user))
                    .sum::<u64>(),
            })),
            ControlRequest::PhoneAppState {
                account,
                action,
                chats,
                until,
            } => {
                let actions = chats
                    .into_iter()
                    .map(|chat| phone_action(&action, chat, until))
                    .collect::<Result<Vec<_>, _>>()?;
                let collection = actions
                    .first()
                    .ok_or_else(|| ControlError::BadRequest("no chat".into()))?
                    .collection()
                    .map_err(|error| {
                        ControlError::BadRequest(format!("invalid action: {error}"))
                    })?;
                self.server
                    .phone_app_state(now, &account, &actions)
                    .map_err(control_error)?;
                Ok(json!({
                    "collection": collection.name(),
                    "version": self.server.app_state_version(&account, collection),
                    "mutations": actions.len(),
                }))
            }
            ControlRequest::AppStateOptions {
                account,
                auto_share,
                external_snapshots,
                external_mutations,
            } => {
                if self.server.account(&account).is_none() {
                    return Err(ControlError::NotFound(format!("account {account}")));
                }
                if let Some(on) = auto_share {
                    self.server.set_app_state_auto_share(&account, on);
                }
                if let Some(on) = external_snapshots {
                    self.server.set_app_state_external_snapshots(&account, on);
                }
                if let Some(on) = external_mutations {
                    self.server.set_app_state_external_mutations(&account, on);
                }
                let (_, snapshots_served) = self.server.app_state_snapshot_counts(&account);
                Ok(json!({
                    "account": account,
                    "external_patches_served": self.server.app_state_external_patches_served(&account),
                    "snapshots_served": snapshots_served,
                }))
            }
            ControlRequest::PhoneChatSettings { account, chat } => {
                let settings = self.server.phone_chat_settings(&account, &chat);
                Ok(json!({
                    "chat": chat,
                    "muted_until": settings.muted_until.map(|until| match until {
                        MuteUntil::Forever => 0,
                        MuteUntil::Until(at) => at,
                    }),
                    "pinned_at": settings.pinned_at,
                    "archived": settings.archived,
                    "marked_unread": settings.marked_unread,
                    "labels": settings.labels,
                }))
            }
            ControlRequest::Upload {
                kind,
                token,
                auth,
                body,
            } => {
                if !self.server.media_auth_valid(now, &auth) {
                    return Err(ControlError::Unauthorized("media_conn auth".into()));
                }
                self.server
                    .upload_blob(&kind, &token, &body)
                    .map(|direct_path| {
                        let host = crate::sim::server::MEDIA_HOSTS.first().copied();
                        json!({
                            "url": format!("https://{}{direct_path}", host.unwrap_or_default()),
                            "direct_path": direct_path,
                        })
                    })
                    .map_err(|error| ControlError::BadRequest(error.to_string()))
            }
            ControlRequest::PhoneSendMedia {
                account,
                to,
                kind,
                data,
                mimetype,
                caption,
            } => self
                .server
                .phone_send_media(
                    now,
                    &account,
                    &to,
                    &crate::sim::server::PhoneMedia {
                        kind: &kind,
                        data: &data,
                        mimetype: &mimetype,
                        caption: caption.as_deref(),
                    },
                )
                .map(|id| json!({ "id": id }))
                .map_err(control_error),
            ControlRequest::RevokeMediaAuth => {
                self.server.revoke_media_auths();
                Ok(json!({ "revoked": true }))
            }
            ControlRequest::ExpireMedia { direct_path } => {
                if self.server.expire_blob(&direct_path) {
                    Ok(json!({ "expired": true }))
                } else {
                    Err(ControlError::NotFound(format!("blob {direct_path}")))
                }
            }
            ControlRequest::Blob { direct_path } => {
                use base64::Engine as _;
                self.server
                    .download_blob(&direct_path)
                    .map(|bytes| {
                        json!({
                            BLOB_FIELD: base64::engine::general_purpose::STANDARD.encode(bytes)
                        })
                    })
                    .ok_or_else(|| ControlError::NotFound(format!("blob {direct_path}")))
            }
            ControlRequest::Messages { account } => self
                .server
                .phone_messages(&account)
                .map(|messages| {
                    json!({
                        "messages": messages
                            .iter()
                            .map(|message| json!({
                                "id": message.id,
                                "from": message.from,
                                "chat": message.chat,
                                "text": message.text,
                                "error": message.error,
                                "timestamp": message.timestamp,
                            }))
                            .collect::<Vec<_>>(),
                    })
                })
                .ok_or_else(|| ControlError::NotFound(format!("account {account}"))),
        };
        self.collect_events();
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::parse_device;

    #[test]
    fn device_jids() {
        assert_eq!(
            parse_device("15550000001:3@s.whatsapp.net"),
            Ok(("15550000001".into(), 3))
        );
        assert_eq!(parse_device("1555:12"), Ok(("1555".into(), 12)));
        assert!(parse_device("1555@s.whatsapp.net").is_err());
        assert!(parse_device("abc:1").is_err());
        assert!(parse_device("1555:x").is_err());
    }
}
