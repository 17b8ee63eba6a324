//! Login (transport.md §6.1–§6.7): `<success>` and `<failure>`, the post-login round trip
//! (prekey count and upload, `<active/>`), prekey refills, and the `<ib>` notices (offline
//! delivery markers, dirty bits, edge routing).

use crate::binary::{Content, Node};
use crate::limits::{CLIENT_PREKEY_MIN_COUNT, CLIENT_PREKEY_UPLOAD_COUNT};

use super::context::Context;
use super::event::{Event, OfflinePreview};
use super::iq::{self, IqError, IqResult};
use super::owner::{Owner, Tag};

/// Tags of the login IQs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginIq {
    /// Post-login: the server's prekey count.
    PreKeyCount,
    /// A prekey upload.
    PreKeyUpload,
    /// Post-login: `<active/>`.
    Active,
    /// Cleaning dirty bits.
    DirtyClean,
}

impl Tag for LoginIq {
    const OWNER: Owner = Owner::Login;
}
use super::output::{CloseReason, Outputs, PeerFault, PostLoginStep, ProtocolError};

/// One week and three days in milliseconds, for `unified_session`.
const WEEK_MS: u64 = 7 * 24 * 3600 * 1000;
const THREE_DAYS_MS: u64 = 3 * 24 * 3600 * 1000;

/// Where the login of the current connection stands.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum Phase {
    /// No `<success>` on this connection yet.
    #[default]
    Waiting,
    /// `<success>` arrived; the post-login IQs are out.
    PostLogin {
        /// The prekey count was answered and any needed upload succeeded.
        prekeys_done: bool,
        /// `<active/>` was answered.
        active_done: bool,
    },
    /// The post-login round trip succeeded.
    Done,
}

/// The login of the current connection.
#[derive(Debug, Default)]
pub(crate) struct Login {
    phase: Phase,
    /// Server clock minus local clock, milliseconds (from `<success t>`).
    server_offset_ms: i64,
}

/// What a login input led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoginProgress {
    /// Nothing for mod.rs to do.
    Nothing,
    /// `<success>` was accepted: now `LoggingIn`.
    Accepted,
    /// The post-login round trip succeeded: now `Connected`.
    Done,
}

impl Login {
    /// The connection ended.
    pub(crate) fn reset(&mut self) {
        self.phase = Phase::Waiting;
    }

    /// `<success t lid …/>`: store the LID and the clock offset, count the login, start the
    /// post-login round trip. Ignored on a connection whose device is not paired (whatsmeow
    /// `handleConnectSuccess` since 5f04eac).
    pub(crate) fn handle_success(
        &mut self,
        node: &Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) -> LoginProgress {
        if !ctx.device().is_paired() || self.phase != Phase::Waiting {
            return LoginProgress::Nothing;
        }
        if let Some(t) = node.attr_str("t").and_then(|t| t.parse::<i64>().ok()) {
            self.server_offset_ms = t.saturating_mul(1000).saturating_sub(ctx.now() as i64);
        }
        if let Some(lid) = node.attr_jid("lid") {
            let own_device = ctx.device().jid().map(|jid| jid.device).unwrap_or_default();
            let lid = crate::binary::Jid::device(lid.user, own_device, lid.server);
            let batch = ctx.device_mut().set_lid(lid);
            ctx.persist(batch, out);
        }
        let batch = ctx.device_mut().count_login();
        ctx.persist(batch, out);
        self.phase = Phase::PostLogin {
            prekeys_done: false,
            active_done: false,
        };
        let count = iq::iq("get", "encrypt", vec![Node::new("count")]);
        let active = iq::iq("set", "passive", vec![Node::new("active")]);
        let sent = ctx
            .send_iq(count, LoginIq::PreKeyCount, None, out)
            .and_then(|_| ctx.send_iq(active, LoginIq::Active, None, out));
        if sent.is_err() {
            return LoginProgress::Nothing;
        }
        let session = (ctx.now() as i64)
            .saturating_add(self.server_offset_ms)
            .max(0) as u64;
        let unified = Node::new("ib").children_from([Node::new("unified_session").attr(
            "id",
            (session.saturating_add(THREE_DAYS_MS) % WEEK_MS).to_string(),
        )]);
        let _ = ctx.send(&unified, out);
        LoginProgress::Accepted
    }

    /// `<failure reason="N">`: the login was refused.
    pub(crate) fn failure_reason(node: &Node) -> CloseReason {
        let reason = node
            .attr_str("reason")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        CloseReason::Failure { reason }
    }

    /// The answer to one of the login IQs.
    pub(crate) fn handle_iq(
        &mut self,
        tag: &LoginIq,
        result: IqResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) -> LoginProgress {
        let post_login = matches!(self.phase, Phase::PostLogin { .. });
        match (tag, result) {
            (LoginIq::PreKeyCount, Ok(node)) => {
                let count = node
                    .child("count")
                    .and_then(|c| c.attr_str("value"))
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(0);
                if count < CLIENT_PREKEY_MIN_COUNT {
                    upload_prekeys(ctx, out);
                } else {
                    self.mark_prekeys_done();
                }
            }
            (LoginIq::PreKeyUpload, Ok(_)) => self.mark_prekeys_done(),
            (LoginIq::Active, Ok(_)) => {
                if let Phase::PostLogin { active_done, .. } = &mut self.phase {
                    *active_done = true;
                }
            }
            (LoginIq::DirtyClean, _) => {}
            (_, Err(IqError::Disconnected)) => {}
            // The post-login round trip failed: a fresh connection retries all of it. A refill
            // outside the round trip is retried at the next login.
            (LoginIq::PreKeyCount | LoginIq::PreKeyUpload | LoginIq::Active, Err(error))
                if post_login =>
            {
                let step = match tag {
                    LoginIq::PreKeyCount => PostLoginStep::PreKeyCount,
                    LoginIq::PreKeyUpload => PostLoginStep::PreKeyUpload,
                    _ => PostLoginStep::Active,
                };
                let fault = match error {
                    IqError::Error { code, .. } => PeerFault::PostLoginRefused { step, code },
                    IqError::TimedOut | IqError::Disconnected => PeerFault::PostLoginTimedOut(step),
                };
                ctx.close(CloseReason::Protocol(ProtocolError::Peer(fault)));
            }
            _ => {}
        }
        if let Phase::PostLogin {
            prekeys_done: true,
            active_done: true,
        } = self.phase
        {
            self.phase = Phase::Done;
            return LoginProgress::Done;
        }
        LoginProgress::Nothing
    }

    fn mark_prekeys_done(&mut self) {
        if let Phase::PostLogin { prekeys_done, .. } = &mut self.phase {
            *prekeys_done = true;
        }
    }

    /// `<ib>`: offline delivery markers become events, dirty bits are cleaned (walink syncs
    /// nothing they announce), edge routing is stored for the next connection.
    pub(crate) fn handle_ib(&mut self, node: &Node, ctx: &mut Context<'_>, out: &mut Outputs) {
        let number = |n: &Node, key: &str| {
            n.attr_str(key)
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        };
        let mut cleans = Vec::new();
        for child in node.children() {
            match child.tag.as_ref() {
                "offline_preview" => out.event(Event::OfflinePreview(OfflinePreview {
                    count: number(child, "count"),
                    messages: number(child, "message"),
                    notifications: number(child, "notification"),
                    receipts: number(child, "receipt"),
                    app_data: number(child, "appdata"),
                })),
                "offline" => out.event(Event::OfflineSyncDone {
                    count: number(child, "count"),
                }),
                "dirty" => {
                    if let Some(kind) = child.attr_str("type") {
                        let mut clean = Node::new("clean").attr("type", kind.to_owned());
                        if let Some(timestamp) = child.attr_str("timestamp") {
                            clean = clean.attr("timestamp", timestamp.to_owned());
                        }
                        cleans.push(clean);
                    }
                }
                "edge_routing" => {
                    if let Some(routing) = child
                        .child("routing_info")
                        .and_then(Node::content_bytes)
                        .filter(|r| r.len() <= crate::limits::MAX_ROUTING_INFO)
                    {
                        let batch = ctx.device_mut().set_routing_info(routing.to_vec());
                        ctx.persist(batch, out);
                    }
                }
                _ => {}
            }
        }
        if !cleans.is_empty() {
            let clean = iq::iq("set", "urn:xmpp:whatsapp:dirty", cleans);
            let _ = ctx.send_iq(clean, LoginIq::DirtyClean, None, out);
        }
    }
}

/// Uploads a fresh batch of one-time prekeys (transport.md §6.2), unless one is in flight. The
/// keys are persisted before the upload leaves.
pub(crate) fn upload_prekeys(ctx: &mut Context<'_>, out: &mut Outputs) {
    if ctx.iq_pending(|t: &LoginIq| *t == LoginIq::PreKeyUpload) || !ctx.is_open() {
        return;
    }
    let (keys, batch) = ctx.generate_pre_keys(CLIENT_PREKEY_UPLOAD_COUNT);
    ctx.persist(batch, out);
    let id3 = |id: u32| id.to_be_bytes().get(1..).unwrap_or_default().to_vec();
    let list: Vec<Node> = keys
        .iter()
        .map(|(id, public)| {
            Node::new("key").children_from([
                Node::new("id").bytes(id3(*id)),
                Node::new("value").bytes(public.to_vec()),
            ])
        })
        .collect();
    let (signed_id, signed, signature) = ctx.device().signed_pre_key();
    let skey = Node::new("skey").children_from([
        Node::new("id").bytes(id3(signed_id)),
        Node::new("value").bytes(signed.public.raw().to_vec()),
        Node::new("signature").bytes(signature.to_vec()),
    ]);
    let upload = iq::iq(
        "set",
        "encrypt",
        vec![
            Node::new("registration").bytes(ctx.device().registration_id().to_be_bytes().to_vec()),
            Node::new("type").bytes(vec![5]),
            Node::new("identity").bytes(ctx.device().identity().identity_key().0.raw().to_vec()),
            Node::new("list").content(Content::Nodes(list)),
            skey,
        ],
    );
    let _ = ctx.send_iq(upload, LoginIq::PreKeyUpload, None, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::context::testing::Parts;

    #[test]
    fn a_failed_post_login_request_closes_with_a_typed_peer_fault() {
        let cases = [
            (
                LoginIq::PreKeyCount,
                Err(IqError::Error {
                    code: 500,
                    text: "internal-server-error".to_owned(),
                    backoff: None,
                }),
                PeerFault::PostLoginRefused {
                    step: PostLoginStep::PreKeyCount,
                    code: 500,
                },
            ),
            (
                LoginIq::Active,
                Err(IqError::TimedOut),
                PeerFault::PostLoginTimedOut(PostLoginStep::Active),
            ),
        ];
        for (tag, result, fault) in cases {
            let mut parts = Parts::new();
            let mut login = Login {
                phase: Phase::PostLogin {
                    prekeys_done: false,
                    active_done: false,
                },
                ..Login::default()
            };
            let mut out = Outputs::default();
            login.handle_iq(&tag, result, &mut parts.ctx(1_000), &mut out);
            assert_eq!(
                parts.requests.close,
                Some(CloseReason::Protocol(ProtocolError::Peer(fault)))
            );
        }
        // Outside the round trip a failure closes nothing.
        let mut parts = Parts::new();
        let mut out = Outputs::default();
        Login::default().handle_iq(
            &LoginIq::PreKeyUpload,
            Err(IqError::TimedOut),
            &mut parts.ctx(1_000),
            &mut out,
        );
        assert_eq!(parts.requests.close, None);
    }
}
