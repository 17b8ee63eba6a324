//! Keepalive (transport.md §6.3): a `w:p` ping IQ every 15–30 s (WhatsApp Web's
//! `15 s × (1 + random())`), answered within 20 s or the socket counts as dead, is closed and
//! a reconnect follows at once.

use crate::binary::Node;

use super::Timestamp;
use super::context::Context;
use super::iq;
use super::output::Outputs;
use super::owner::{Owner, Tag};

/// The tag of the keepalive's ping IQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ping;

impl Tag for Ping {
    const OWNER: Owner = Owner::Keepalive;
}

/// When the next ping is due.
#[derive(Debug, Default)]
pub(crate) struct Keepalive {
    next_ping: Option<Timestamp>,
}

impl Keepalive {
    /// Starts pinging (the connection logged in or is waiting to pair).
    pub(crate) fn start(&mut self, ctx: &mut Context<'_>) {
        self.schedule(ctx);
    }

    /// Stops pinging (the connection ended).
    pub(crate) fn stop(&mut self) {
        self.next_ping = None;
    }

    fn schedule(&mut self, ctx: &mut Context<'_>) {
        let (min, max) = (ctx.config().keepalive_min_ms, ctx.config().keepalive_max_ms);
        let spread = max.saturating_sub(min);
        self.next_ping = Some(
            ctx.now()
                .saturating_add(min)
                .saturating_add(ctx.rng().below(spread.saturating_add(1))),
        );
    }

    /// Sends the ping when due. The ping's deadline is the IQ's: when it passes, mod.rs closes
    /// the connection with `CloseReason::KeepaliveTimeout`.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        let Some(due) = self.next_ping else {
            return;
        };
        if ctx.now() < due {
            return;
        }
        if !ctx.iq_pending(|_: &Ping| true) {
            let ping = iq::iq("get", "w:p", Vec::new());
            let deadline = ctx.config().keepalive_deadline_ms;
            let _ = ctx.send_iq(ping, Ping, Some(deadline), out);
        }
        self.schedule(ctx);
    }

    /// When the next ping is due.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.next_ping
    }
}

/// The answer to a server ping (`<iq type="get" xmlns="urn:xmpp:ping">`).
pub(crate) fn pong(ping: &Node) -> Node {
    iq::result_for(ping)
}
