//! App-state commands: one action each, queued for the IQ, encoded as a patch on the current
//! state, and adopted when the server accepts it (re-encoded after a conflict).

use crate::appstate::{OutgoingPatch, PatchError, SyncAction, encode_patch};
use crate::limits::{APPSTATE_CLIENT_MAX_QUEUED_COMMANDS, APPSTATE_CLIENT_MAX_REFETCHES};

use super::super::command::{CommandError, CommandId, CommandOutput};
use super::super::context::Context;
use super::super::iq::{self, IqError, IqResult};
use super::super::output::Outputs;
use super::AppSync;
use super::events::done;
use super::slot::InFlight;

/// A command waiting to be sent.
#[derive(Debug)]
pub(super) struct Queued {
    pub(super) id: CommandId,
    action: SyncAction,
    /// Conflicts met so far.
    attempts: u32,
}

impl AppSync {
    /// An app-state command: the action to encode and send.
    pub(crate) fn command(
        &mut self,
        id: CommandId,
        action: SyncAction,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if let Err(error) = action.collection().and_then(|_| action.index()) {
            return done(out, id, Err(CommandError::AppState(error)));
        }
        if !ctx.is_connected() {
            return done(out, id, Err(CommandError::NotConnected));
        }
        if self.queue.len() >= APPSTATE_CLIENT_MAX_QUEUED_COMMANDS {
            return done(
                out,
                id,
                Err(CommandError::RateLimited {
                    retry_after_ms: None,
                }),
            );
        }
        self.queue.push_back(Queued {
            id,
            action,
            attempts: 0,
        });
        self.pump(ctx, out);
    }

    /// The command's patch on the collection's current state, with the newest key.
    pub(super) fn encode(
        &self,
        queued: &Queued,
        ctx: &mut Context<'_>,
    ) -> Result<OutgoingPatch, CommandError> {
        let collection = queued.action.collection().map_err(CommandError::AppState)?;
        let key = self
            .ring
            .newest()
            .ok_or(CommandError::AppState(PatchError::MissingKeys(Vec::new())))?;
        let now = i64::try_from(ctx.now()).unwrap_or(i64::MAX);
        encode_patch(
            &self.state(collection),
            collection,
            key,
            core::slice::from_ref(&queued.action),
            now,
            ctx.rng(),
        )
        .map_err(CommandError::AppState)
    }

    /// The answer to a command's patch (`answered`: what the IQ carried).
    pub(super) fn send_answer(
        &mut self,
        id: CommandId,
        answered: InFlight,
        result: IqResult,
        out: &mut Outputs,
    ) {
        let InFlight::Send(sending) = answered else {
            return;
        };
        let (mut queued, outgoing) = *sending;
        if queued.id != id {
            return;
        }
        let node = match result {
            Ok(node) => node,
            Err(IqError::TimedOut) => return done(out, id, Err(CommandError::TimedOut)),
            Err(IqError::Disconnected) => return done(out, id, Err(CommandError::NotConnected)),
            Err(IqError::Error { code, text, .. }) => {
                return done(out, id, Err(CommandError::Rejected { code, text }));
            }
        };
        let collection = outgoing.collection;
        let answer = node
            .child("sync")
            .and_then(|s| s.children_by_tag("collection").next());
        if let Some(answer) = answer.filter(|a| a.attr_str("type") == Some("error")) {
            let (code, text) = iq::code_and_text(answer.child("error"));
            if code == 409 && queued.attempts < APPSTATE_CLIENT_MAX_REFETCHES {
                // Another device was first: catch up, then encode again on the new state.
                queued.attempts += 1;
                self.slot_mut(collection).want(false);
                self.queue.push_front(queued);
                return;
            }
            return done(out, id, Err(CommandError::Rejected { code, text }));
        }
        if self.state(collection).version() == outgoing.base_version {
            let mut view = self.view.clone();
            let changes = view.apply_mutations(&outgoing.mutations);
            self.commit(collection, outgoing.state, view, changes, out);
        } else {
            // The collection moved meanwhile: the server has the patch; fetch it.
            self.slot_mut(collection).want(false);
        }
        done(out, id, Ok(CommandOutput::None));
    }
}
