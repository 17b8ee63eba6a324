//! Pairing: QR codes (transport.md §4) and pairing codes (§5), up to the pair-success that
//! makes the device paired.
//!
//! - `pair-device` (only from the server, with one child) is acknowledged; its refs are shown
//!   one at a time, the first for 60 s and every later one for 20 s, each QR string built at the
//!   moment it is shown from the current adv secret.
//! - When the refs run out, [`Event::QrRefsExhausted`]; the socket stays open while a pairing
//!   code is outstanding, and is closed otherwise.
//! - `companion_reg_refresh`: a new adv secret and the current ref shown again (unless a
//!   `companion_finish` waits for its pair-success, whose HMAC depends on the secret).
//! - Pairing code: validated, parked until `pair-device` arrived on an open connection, one code
//!   per connection, a fresh link key per request; it resolves only on the server's answer.
//!   `primary_hello` is answered with `companion_finish`; `refresh_code` requests a new code.
//! - `pair-success`: the ADV identity is verified and counter-signed, the device is persisted,
//!   the reply sent; the server then restarts the stream (515).

use crate::binary::{Jid, Node};
use crate::limits::{
    CLIENT_MAX_QR_REF_LEN, CLIENT_MAX_QR_REFS, CLIENT_PAIR_CODE_FINISH_TIMEOUT_MS,
    CLIENT_PAIR_CODE_LIFETIME_MS, CLIENT_PAIR_CODE_MAX_HELLOS, CLIENT_QR_FIRST_MS,
    CLIENT_QR_NEXT_MS,
};
use crate::pair::{self, ClientType, PairingCode};

use super::Timestamp;
use super::command::{CommandError, CommandId, CommandOutput};
use super::context::Context;
use super::event::{Event, PairingMode, State, StateReason};
use super::iq::{self, IqError, IqResult};
use super::output::{CloseReason, Outputs};
use super::owner::{Owner, Tag};

/// Tags of the code-pairing IQs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairingIq {
    /// Stage 1 of code pairing for this command (`None`: a server-requested refresh).
    Hello(Option<CommandId>),
    /// Stage 2 of code pairing.
    Finish,
}

impl Tag for PairingIq {
    const OWNER: Owner = Owner::Pairing;
}

/// A pairing-code request issued before the connection could take it.
#[derive(Debug)]
struct Parked {
    command: CommandId,
    phone: String,
    deadline: Timestamp,
}

/// A pairing code in flight on the current connection.
struct CodeFlow {
    /// The command to resolve, until stage 1 is answered.
    command: Option<CommandId>,
    phone: String,
    code: PairingCode,
    link_key: pair::KeyPair,
    /// `link_code_pairing_ref`, once the server accepted stage 1.
    reference: Option<Vec<u8>>,
    created: Timestamp,
    hellos: u32,
    /// `companion_finish` was sent; pair-success is due by then.
    finish_deadline: Option<Timestamp>,
}

impl core::fmt::Debug for CodeFlow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CodeFlow")
            .field("command", &self.command)
            .field("created", &self.created)
            .field("hellos", &self.hellos)
            .field("finish_deadline", &self.finish_deadline)
            .finish_non_exhaustive()
    }
}

/// The pairing state of one connection (plus a parked code request).
#[derive(Debug, Default)]
pub(crate) struct Pairing {
    /// Refs not shown yet.
    refs: Vec<String>,
    /// The ref shown now and when it expires.
    current: Option<(String, Timestamp)>,
    /// Whether the server offered pairing (`pair-device`) on this connection.
    offered: bool,
    parked: Option<Parked>,
    code: Option<CodeFlow>,
}

impl Pairing {
    /// The connection ended: its refs and any code flow die with it (a parked request waits
    /// for the next connection until its deadline).
    pub(crate) fn reset(&mut self) {
        self.refs = Vec::new();
        self.current = None;
        self.offered = false;
        self.code = None;
    }

    /// Whether a pairing code is outstanding (requested, or shown and not expired).
    fn code_outstanding(&self, now: Timestamp) -> bool {
        self.code.as_ref().is_some_and(|flow| {
            flow.command.is_some()
                || flow.finish_deadline.is_some()
                || now < flow.created.saturating_add(CLIENT_PAIR_CODE_LIFETIME_MS)
        })
    }

    /// The pairing mode to show.
    fn mode(&self) -> PairingMode {
        if self.code.is_some() {
            PairingMode::Code
        } else {
            PairingMode::Qr
        }
    }

    /// `<iq type="set" from="s.whatsapp.net"><pair-device><ref/>…</pair-device></iq>`.
    pub(crate) fn handle_pair_device(
        &mut self,
        node: &Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let _ = ctx.send(&iq::result_for(node), out);
        if ctx.device().is_paired() {
            return;
        }
        let refs: Vec<String> = node
            .child("pair-device")
            .map(|pd| {
                pd.children_by_tag("ref")
                    .filter_map(|r| r.content_bytes())
                    .filter(|r| !r.is_empty() && r.len() <= CLIENT_MAX_QR_REF_LEN)
                    .filter_map(|r| core::str::from_utf8(r).ok())
                    .take(CLIENT_MAX_QR_REFS)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        self.offered = true;
        self.refs = refs;
        self.refs.reverse();
        self.current = None;
        ctx.set_state(
            State::AwaitingPairing { mode: self.mode() },
            StateReason::PairingOffered,
        );
        self.show_next(ctx, CLIENT_QR_FIRST_MS, out);
        if let Some(parked) = self.parked.take() {
            self.start_code(parked.command, parked.phone, ctx, out);
        }
    }

    /// Shows the next ref for `lifetime`, or reports that the refs ran out.
    fn show_next(&mut self, ctx: &mut Context<'_>, lifetime: u64, out: &mut Outputs) {
        match self.refs.pop() {
            Some(reference) => {
                let expires_at = ctx.now().saturating_add(lifetime);
                self.current = Some((reference, expires_at));
                self.emit_qr(ctx, out);
            }
            None => {
                self.current = None;
                out.event(Event::QrRefsExhausted);
                if !self.code_outstanding(ctx.now()) {
                    ctx.close(CloseReason::QrRefsExhausted);
                }
            }
        }
    }

    /// Emits the QR for the current ref, built now from the current adv secret.
    fn emit_qr(&self, ctx: &Context<'_>, out: &mut Outputs) {
        if let Some((reference, expires_at)) = &self.current {
            let client_type =
                ClientType::from_platform_type(ctx.config().profile.platform_type as i32);
            let payload = pair::qr_payload(
                reference,
                &ctx.device().pair_noise(),
                &ctx.device().pair_identity(),
                &ctx.device().adv_secret(),
                client_type,
            );
            out.event(Event::Qr {
                payload,
                expires_at: *expires_at,
            });
        }
    }

    /// `<notification type="companion_reg_refresh">` (transport.md §4.5).
    pub(crate) fn handle_reg_refresh(
        &mut self,
        node: &Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        ctx.ack(node, out);
        if ctx.device().is_paired() {
            return;
        }
        let finish_waiting = self
            .code
            .as_ref()
            .is_some_and(|flow| flow.finish_deadline.is_some());
        if finish_waiting {
            return;
        }
        let secret = pair::AdvSecret::new(ctx.rng().bytes());
        let batch = ctx.device_mut().set_adv_secret(&secret);
        ctx.persist(batch, out);
        self.emit_qr(ctx, out);
    }

    /// Timers: QR rotation, the parked request's deadline, the companion_finish deadline.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        if let Some(parked) = &self.parked
            && ctx.now() >= parked.deadline
        {
            let command = parked.command;
            self.parked = None;
            out.event(Event::CommandDone {
                id: command,
                result: Err(CommandError::TimedOut),
            });
        }
        if let Some(flow) = &self.code
            && flow.finish_deadline.is_some_and(|d| ctx.now() >= d)
        {
            // No pair-success for the companion_finish: the code is written off.
            self.code = None;
        }
        if self.exhausted() && self.code.is_some() && !self.code_outstanding(ctx.now()) {
            // The code the socket was kept open for expired unused.
            self.code = None;
        }
        if self.exhausted() && self.code.is_none() {
            ctx.close(CloseReason::QrRefsExhausted);
        }
        if let Some((_, expires_at)) = &self.current
            && ctx.now() >= *expires_at
        {
            self.show_next(ctx, CLIENT_QR_NEXT_MS, out);
        }
    }

    /// Whether the server's refs were all shown and expired on this connection.
    fn exhausted(&self) -> bool {
        self.offered && self.current.is_none() && self.refs.is_empty()
    }

    /// The earliest timer.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        // Once the refs ran out, the socket stays open only until the code expires.
        let code_expiry = self
            .code
            .as_ref()
            .filter(|flow| self.exhausted() && flow.command.is_none())
            .filter(|flow| flow.finish_deadline.is_none())
            .map(|flow| flow.created.saturating_add(CLIENT_PAIR_CODE_LIFETIME_MS));
        [
            self.current.as_ref().map(|(_, at)| *at),
            self.parked.as_ref().map(|p| p.deadline),
            self.code.as_ref().and_then(|flow| flow.finish_deadline),
            code_expiry,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// `Command::PairWithCode`. `connection_expected` tells whether a connection is open or
    /// coming (otherwise the request cannot wait for one).
    pub(crate) fn command_pair_code(
        &mut self,
        command: CommandId,
        phone: &str,
        connection_expected: bool,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let done = |out: &mut Outputs, error| {
            out.event(Event::CommandDone {
                id: command,
                result: Err(error),
            });
        };
        if ctx.device().is_paired() {
            return done(out, CommandError::AlreadyPaired);
        }
        let Ok(phone) = pair::normalize_phone_number(phone) else {
            return done(out, CommandError::InvalidPhoneNumber);
        };
        if platform_display(ctx).is_none() {
            return done(out, CommandError::UnsupportedPlatform);
        }
        if self.parked.is_some() || self.code_outstanding(ctx.now()) {
            return done(out, CommandError::PairingCodeOutstanding);
        }
        if self.offered && ctx.is_open() {
            self.start_code(command, phone, ctx, out);
        } else if connection_expected {
            self.parked = Some(Parked {
                command,
                phone,
                deadline: ctx.now().saturating_add(ctx.config().iq_timeout_ms),
            });
        } else {
            done(out, CommandError::NotConnected);
        }
    }

    /// Stage 1: `companion_hello` with a new code and a fresh link key.
    fn start_code(
        &mut self,
        command: CommandId,
        phone: String,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let code = PairingCode::from_random(ctx.rng().bytes());
        let link_key = pair::KeyPair::from_private(ctx.rng().bytes());
        let flow = CodeFlow {
            command: Some(command),
            phone,
            code,
            link_key,
            reference: None,
            created: ctx.now(),
            hellos: 0,
            finish_deadline: None,
        };
        match send_hello(&flow, ctx, out) {
            Ok(()) => {
                self.code = Some(flow);
                ctx.set_state(
                    State::AwaitingPairing {
                        mode: PairingMode::Code,
                    },
                    StateReason::PairingCodeRequested,
                );
            }
            Err(error) => out.event(Event::CommandDone {
                id: command,
                result: Err(error),
            }),
        }
    }

    /// The answer to `companion_hello` or `companion_finish`.
    pub(crate) fn handle_iq(
        &mut self,
        tag: &PairingIq,
        result: IqResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        match tag {
            PairingIq::Hello(command) => {
                let reference = result.as_ref().ok().and_then(|node| {
                    node.child("link_code_companion_reg")
                        .and_then(|reg| reg.child("link_code_pairing_ref"))
                        .and_then(Node::content_bytes)
                        .filter(|r| !r.is_empty())
                        .map(<[u8]>::to_vec)
                });
                let outcome = match (result, reference) {
                    (Ok(_), Some(reference)) => Ok(reference),
                    (Ok(_), None) => Err(CommandError::Rejected {
                        code: 500,
                        text: "missing link_code_pairing_ref".to_owned(),
                    }),
                    (Err(error), _) => Err(iq_error(error)),
                };
                let command = *command;
                // The answer belongs to the flow only if that flow is still waiting for it (a
                // refresh waits with no command).
                let current = self
                    .code
                    .as_mut()
                    .filter(|flow| flow.command == command && flow.reference.is_none());
                let done = |out: &mut Outputs, result| {
                    if let Some(id) = command {
                        out.event(Event::CommandDone { id, result });
                    }
                };
                match (current, outcome) {
                    (Some(flow), Ok(reference)) => {
                        flow.command = None;
                        flow.reference = Some(reference);
                        let code = flow.code.as_str().to_owned();
                        out.event(Event::PairingCode { code: code.clone() });
                        done(out, Ok(CommandOutput::PairingCode(code)));
                    }
                    (Some(_), Err(error)) => {
                        self.code = None;
                        if self.offered {
                            ctx.set_state(
                                State::AwaitingPairing {
                                    mode: PairingMode::Qr,
                                },
                                StateReason::PairingCodeFailed,
                            );
                        }
                        done(out, Err(error));
                        if self.exhausted() {
                            ctx.close(CloseReason::QrRefsExhausted);
                        }
                    }
                    // The flow died with its connection: the command still ends, once.
                    (None, outcome) => done(
                        out,
                        Err(outcome.err().unwrap_or(CommandError::NotConnected)),
                    ),
                }
            }
            // The server refused the bundle: this code cannot complete.
            PairingIq::Finish if result.is_err() => self.code = None,
            _ => {}
        }
    }

    /// `<notification type="link_code_companion_reg">`: `primary_hello` or `refresh_code`.
    pub(crate) fn handle_link_code(
        &mut self,
        node: &Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        ctx.ack(node, out);
        let Some(reg) = node.child("link_code_companion_reg") else {
            return;
        };
        let Some(flow) = self.code.as_mut() else {
            return;
        };
        let same_ref = reg
            .child("link_code_pairing_ref")
            .and_then(Node::content_bytes)
            .is_some_and(|r| flow.reference.as_deref() == Some(r));
        if !same_ref {
            return;
        }
        match reg.attr_str("stage") {
            Some("primary_hello") => {
                let fresh = ctx.now() < flow.created.saturating_add(CLIENT_PAIR_CODE_LIFETIME_MS);
                if !fresh || flow.hellos >= CLIENT_PAIR_CODE_MAX_HELLOS {
                    return;
                }
                flow.hellos += 1;
                let wrapped = reg
                    .child("link_code_pairing_wrapped_primary_ephemeral_pub")
                    .and_then(Node::content_bytes);
                let primary_identity = reg
                    .child("primary_identity_pub")
                    .and_then(Node::content_bytes)
                    .and_then(|k| <[u8; 32]>::try_from(k).ok());
                let (Some(wrapped), Some(primary_identity)) = (wrapped, primary_identity) else {
                    return;
                };
                let random = pair::FinishRandom {
                    adv_random: ctx.rng().bytes(),
                    bundle_salt: ctx.rng().bytes(),
                    nonce: ctx.rng().bytes(),
                };
                let Ok(finish) = pair::companion_finish(
                    &flow.code,
                    &flow.link_key,
                    &ctx.device().pair_identity(),
                    &primary_identity,
                    wrapped,
                    &random,
                ) else {
                    return;
                };
                let batch = ctx.device_mut().set_adv_secret(&finish.adv_secret);
                ctx.persist(batch, out);
                let identity = *ctx.device().identity().identity_key().0.raw();
                let request = iq::iq(
                    "set",
                    "md",
                    vec![
                        Node::new("link_code_companion_reg")
                            .attr(
                                "jid",
                                Jid::new(flow.phone.clone(), crate::binary::DEFAULT_USER_SERVER),
                            )
                            .attr("stage", "companion_finish")
                            .children_from([
                                Node::new("link_code_pairing_wrapped_key_bundle")
                                    .bytes(finish.wrapped_key_bundle.clone()),
                                Node::new("companion_identity_public").bytes(identity.to_vec()),
                                Node::new("link_code_pairing_ref")
                                    .bytes(flow.reference.clone().unwrap_or_default()),
                            ]),
                    ],
                );
                if ctx.send_iq(request, PairingIq::Finish, None, out).is_ok() {
                    flow.finish_deadline =
                        Some(ctx.now().saturating_add(CLIENT_PAIR_CODE_FINISH_TIMEOUT_MS));
                }
            }
            Some("refresh_code") => {
                if flow.finish_deadline.is_some() {
                    return;
                }
                // The server asks for a new code on the same connection: a new code and a
                // fresh link key, announced with Event::PairingCode once accepted.
                flow.code = PairingCode::from_random(ctx.rng().bytes());
                flow.link_key = pair::KeyPair::from_private(ctx.rng().bytes());
                flow.created = ctx.now();
                flow.hellos = 0;
                flow.reference = None;
                if send_hello(flow, ctx, out).is_err() {
                    self.code = None;
                }
            }
            _ => {}
        }
    }

    /// `<iq from="s.whatsapp.net"><pair-success>…</pair-success></iq>` (transport.md §4.4).
    pub(crate) fn handle_pair_success(
        &mut self,
        node: &Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let Some(success) = node.child("pair-success") else {
            return;
        };
        if ctx.device().is_paired() {
            let _ = ctx.send(&iq::error_for(node, 500, "internal-error"), out);
            return;
        }
        let identity_bytes = success
            .child("device-identity")
            .and_then(Node::content_bytes);
        let device = success.child("device");
        let jid = device.and_then(|d| d.attr_jid("jid"));
        let lid = device.and_then(|d| d.attr_jid("lid"));
        let platform = success
            .child("platform")
            .and_then(|p| p.attr_str("name"))
            .unwrap_or_default()
            .to_owned();
        let business_name = success
            .child("biz")
            .and_then(|b| b.attr_str("name"))
            .map(str::to_owned);
        let (Some(identity_bytes), Some(jid)) = (identity_bytes, jid) else {
            let _ = ctx.send(&iq::error_for(node, 500, "internal-error"), out);
            return;
        };
        let random: [u8; 64] = ctx.rng().bytes();
        let verified = match pair::verify_device_identity(
            identity_bytes,
            &ctx.device().adv_secret(),
            &ctx.device().pair_identity(),
            &random,
        ) {
            Ok(verified) => verified,
            Err(error) => {
                let (code, text) = error.reply_error();
                let _ = ctx.send(&iq::error_for(node, code, text), out);
                return;
            }
        };
        use prost::Message as _;
        let stored = verified.signed_identity.encode_to_vec();
        let batch = ctx.device_mut().set_paired(
            jid.clone(),
            lid.clone(),
            stored,
            platform.clone(),
            business_name.clone(),
            &verified.primary_identity_key,
        );
        // Persist before the reply leaves: a crash after the reply must not lose the pairing.
        ctx.persist(batch, out);
        let reply = iq::result_for(node).children_from([Node::new("pair-device-sign")
            .children_from([Node::new("device-identity")
                .attr("key-index", verified.key_index.to_string())
                .bytes(verified.reply.clone())])]);
        let _ = ctx.send(&reply, out);
        // Pairing is over on this connection: no more QR codes, and no refs to run out.
        self.refs = Vec::new();
        self.current = None;
        self.code = None;
        self.offered = false;
        out.event(Event::Paired {
            jid,
            lid,
            platform,
            business_name,
        });
    }

    /// Fails a parked request (the client stopped connecting).
    pub(crate) fn cancel_parked(&mut self, out: &mut Outputs) {
        if let Some(parked) = self.parked.take() {
            out.event(Event::CommandDone {
                id: parked.command,
                result: Err(CommandError::NotConnected),
            });
        }
    }
}

/// `companion_platform_display` for this client, if its platform can pair by code.
fn platform_display(ctx: &Context<'_>) -> Option<String> {
    let client_type = ClientType::from_platform_type(ctx.config().profile.platform_type as i32);
    pair::platform_display(client_type, ctx.config().companion_os).ok()
}

/// Sends stage 1 for `flow`.
fn send_hello(
    flow: &CodeFlow,
    ctx: &mut Context<'_>,
    out: &mut Outputs,
) -> Result<(), CommandError> {
    let display = platform_display(ctx).ok_or(CommandError::UnsupportedPlatform)?;
    let client_type = ClientType::from_platform_type(ctx.config().profile.platform_type as i32);
    let salt: [u8; 32] = ctx.rng().bytes();
    let iv: [u8; 16] = ctx.rng().bytes();
    let wrapped = pair::wrap_ephemeral_key(&flow.code, flow.link_key.public(), &salt, &iv);
    let request = iq::iq(
        "set",
        "md",
        vec![
            Node::new("link_code_companion_reg")
                .attr(
                    "jid",
                    Jid::new(flow.phone.clone(), crate::binary::DEFAULT_USER_SERVER),
                )
                .attr("stage", "companion_hello")
                .attr("should_show_push_notification", "true")
                .children_from([
                    Node::new("link_code_pairing_wrapped_companion_ephemeral_pub")
                        .bytes(wrapped.to_vec()),
                    Node::new("companion_server_auth_key_pub")
                        .bytes(ctx.device().noise().public_key().to_vec()),
                    Node::new("companion_platform_id")
                        .bytes(client_type.as_char().to_string().into_bytes()),
                    Node::new("companion_platform_display").bytes(display.into_bytes()),
                    Node::new("link_code_pairing_nonce").bytes(vec![0]),
                ]),
        ],
    );
    let tag = PairingIq::Hello(flow.command);
    ctx.send_iq(request, tag, None, out)
        .map(|_| ())
        .map_err(|_| CommandError::NotConnected)
}

/// The command error for a failed IQ (transport.md §5.2: 429 is rate limiting, with an
/// optional `backoff` in seconds).
fn iq_error(error: IqError) -> CommandError {
    match error {
        IqError::Error {
            code: 429, backoff, ..
        } => CommandError::RateLimited {
            retry_after_ms: backoff.map(|s| s.saturating_mul(1000)),
        },
        IqError::Error { code, text, .. } => CommandError::Rejected { code, text },
        IqError::TimedOut => CommandError::TimedOut,
        IqError::Disconnected => CommandError::NotConnected,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::context::testing::Parts;
    use crate::client::output::Output;

    fn pair_device(refs: usize) -> Node {
        Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("id", "1")
            .attr("type", "set")
            .children_from([Node::new("pair-device").children_from(
                (0..refs).map(|i| Node::new("ref").bytes(format!("2@{i}").into_bytes())),
            )])
    }

    fn qrs(out: &mut Outputs) -> Vec<(String, Timestamp)> {
        core::iter::from_fn(|| out.pop())
            .filter_map(|o| match o {
                Output::Event(Event::Qr {
                    payload,
                    expires_at,
                }) => Some((payload, expires_at)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn refs_rotate_60_then_20_seconds_and_run_out() {
        let mut parts = Parts::new();
        let mut pairing = Pairing::default();
        let mut out = Outputs::default();
        pairing.handle_pair_device(&pair_device(6), &mut parts.ctx(1000), &mut out);
        assert_eq!(
            parts.requests.state.take(),
            Some((
                State::AwaitingPairing {
                    mode: PairingMode::Qr
                },
                StateReason::PairingOffered
            ))
        );
        let first = qrs(&mut out);
        assert_eq!(first.len(), 1);
        assert!(first[0].0.contains("#2@0,"));
        assert_eq!(first[0].1, 61_000);
        // A spurious timer does nothing.
        pairing.handle_timeout(&mut parts.ctx(60_999), &mut out);
        assert!(qrs(&mut out).is_empty());
        let mut at = 61_000;
        for i in 1..6 {
            assert_eq!(pairing.poll_timeout(), Some(at));
            pairing.handle_timeout(&mut parts.ctx(at), &mut out);
            let shown = qrs(&mut out);
            assert_eq!(shown.len(), 1);
            assert!(shown[0].0.contains(&format!("#2@{i},")));
            assert_eq!(shown[0].1, at + 20_000);
            at += 20_000;
        }
        assert_eq!(parts.requests.close, None);
        pairing.handle_timeout(&mut parts.ctx(at), &mut out);
        let outputs: Vec<Output> = core::iter::from_fn(|| out.pop()).collect();
        assert_eq!(outputs, [Output::Event(Event::QrRefsExhausted)]);
        assert_eq!(parts.requests.close, Some(CloseReason::QrRefsExhausted));
        assert_eq!(pairing.poll_timeout(), None);
    }

    #[test]
    fn a_refresh_shows_the_same_ref_with_a_new_secret_unless_a_finish_waits() {
        let mut parts = Parts::new();
        let mut pairing = Pairing::default();
        let mut out = Outputs::default();
        pairing.handle_pair_device(&pair_device(6), &mut parts.ctx(0), &mut out);
        let before = qrs(&mut out);
        let refresh = Node::new("notification")
            .attr("from", Jid::server_jid())
            .attr("id", "n")
            .attr("type", "companion_reg_refresh");
        pairing.handle_reg_refresh(&refresh, &mut parts.ctx(5_000), &mut out);
        let outputs: Vec<Output> = core::iter::from_fn(|| out.pop()).collect();
        assert!(matches!(outputs.first(), Some(Output::Persist(_))));
        let after: Vec<(String, Timestamp)> = outputs
            .into_iter()
            .filter_map(|o| match o {
                Output::Event(Event::Qr {
                    payload,
                    expires_at,
                }) => Some((payload, expires_at)),
                _ => None,
            })
            .collect();
        assert_eq!(after.len(), 1);
        let field = |qr: &str, i: usize| qr.split(',').nth(i).unwrap().to_owned();
        assert_eq!(field(&before[0].0, 0), field(&after[0].0, 0));
        assert_ne!(field(&before[0].0, 3), field(&after[0].0, 3));
        assert_eq!(before[0].1, after[0].1);
        // With a companion_finish waiting, the secret is kept and nothing is shown.
        pairing.code = Some(CodeFlow {
            command: None,
            phone: "15551234567".into(),
            code: PairingCode::from_random([1; 5]),
            link_key: pair::KeyPair::from_private([2; 32]),
            reference: Some(b"r".to_vec()),
            created: 0,
            hellos: 1,
            finish_deadline: Some(60_000),
        });
        let secret = *parts.device.adv_secret().as_bytes();
        pairing.handle_reg_refresh(&refresh, &mut parts.ctx(6_000), &mut out);
        assert!(qrs(&mut out).is_empty());
        assert_eq!(*parts.device.adv_secret().as_bytes(), secret);
    }
}
