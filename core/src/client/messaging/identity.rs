//! The identity commands: `GetIdentity` reads the identity keys kept for a device, and
//! `ApproveIdentity` trusts a new key that waits for approval (`IdentityPolicy::Strict`) and asks
//! again for the messages refused meanwhile. Both wait, in order, for the device's records.

use std::collections::VecDeque;

use crate::signal::{IdentityKey, PublicKey};
use crate::store::{RecordKey, Space};

use super::super::command::{CommandError, CommandId, CommandOutput};
use super::super::context::Context;
use super::super::event::Event;
use super::super::output::Outputs;
use super::receipt::build_retry_request;
use super::receiver::batch_of;
use super::records::Records;
use super::{DeviceAddress, IdentityInfo, MessagingLoad};

/// What an identity command asks.
#[derive(Debug)]
enum Request {
    Get,
    Approve(IdentityKey),
}

/// Identity commands waiting for their records.
#[derive(Debug, Default)]
pub(crate) struct IdentityCommands {
    queue: VecDeque<(CommandId, DeviceAddress, Request)>,
    /// The keys of the load in flight.
    requested: Option<Vec<RecordKey>>,
}

fn done(id: CommandId, result: Result<CommandOutput, CommandError>, out: &mut Outputs) {
    out.event(Event::CommandDone { id, result });
}

impl IdentityCommands {
    /// `Command::GetIdentity`.
    pub(crate) fn get(
        &mut self,
        id: CommandId,
        address: &str,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        self.start(id, address, Request::Get, records, ctx, out);
    }

    /// `Command::ApproveIdentity`.
    pub(crate) fn approve(
        &mut self,
        id: CommandId,
        address: &str,
        identity: &[u8],
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let Ok(raw) = <[u8; 32]>::try_from(identity) else {
            return done(id, Err(CommandError::InvalidState), out);
        };
        let key = IdentityKey(PublicKey::from_raw(raw));
        self.start(id, address, Request::Approve(key), records, ctx, out);
    }

    fn start(
        &mut self,
        id: CommandId,
        address: &str,
        request: Request,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let Ok(address) = DeviceAddress::parse(address) else {
            return done(id, Err(CommandError::InvalidAddress), out);
        };
        if records.keystore(ctx, out).is_none() {
            return done(id, Err(CommandError::NotPaired), out);
        }
        if self.queue.len() >= crate::limits::MESSAGING_MAX_PARKED {
            let busy = CommandError::RateLimited {
                retry_after_ms: None,
            };
            return done(id, Err(busy), out);
        }
        self.queue.push_back((id, address, request));
        self.pump(records, ctx, out);
    }

    /// Records of an identity load arrived.
    pub(crate) fn handle_loaded(
        &mut self,
        loaded: Vec<crate::store::Record>,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let requested = self.requested.take().unwrap_or_default();
        records.apply(loaded, requested, out);
        self.pump(records, ctx, out);
    }

    /// The record keys of the load in flight (kept in memory until it is answered).
    pub(crate) fn pins(&self) -> impl Iterator<Item = &RecordKey> {
        self.requested.iter().flatten()
    }

    fn pump(&mut self, records: &mut Records, ctx: &mut Context<'_>, out: &mut Outputs) {
        while self.requested.is_none() {
            let Some((_, address, _)) = self.queue.front() else {
                return;
            };
            let Some(keystore) = records.keystore.as_ref() else {
                return;
            };
            let canonical = keystore.lids().canonical(address);
            let mut keys = vec![RecordKey::new(Space::Identity, canonical.record_key())];
            if !address.lid {
                keys.push(RecordKey::new(Space::LidMapping, address.user.clone()));
            }
            if canonical != *address {
                // Possibly still stored under the phone-number form (moved as it loads).
                keys.push(RecordKey::new(Space::Identity, address.record_key()));
            }
            keys.retain(|key| !records.loaded.contains(key));
            if !keys.is_empty() {
                self.requested = Some(keys.clone());
                ctx.load(keys, MessagingLoad::Identity, out);
                return;
            }
            let Some((id, address, request)) = self.queue.pop_front() else {
                return;
            };
            let result = match request {
                Request::Get => Ok(info(records, &address)),
                Request::Approve(key) => approve(records, &address, key, ctx, out),
            };
            done(id, result, out);
        }
    }
}

fn info(records: &Records, address: &DeviceAddress) -> CommandOutput {
    let keystore = records.keystore.as_ref();
    let canonical = keystore.map_or_else(|| address.clone(), |k| k.lids().canonical(address));
    CommandOutput::Identity(IdentityInfo {
        address: canonical.to_jid(),
        identity: keystore
            .and_then(|k| k.identity(address))
            .map(|key| *key.0.raw()),
        pending: keystore
            .and_then(|k| k.pending_identity(address))
            .map(|key| *key.0.raw()),
    })
}

/// Trusts `key` for `address` if it is the one waiting, then asks again for every message
/// refused meanwhile (retry receipts, persisted first).
fn approve(
    records: &mut Records,
    address: &DeviceAddress,
    key: IdentityKey,
    ctx: &mut Context<'_>,
    out: &mut Outputs,
) -> Result<CommandOutput, CommandError> {
    if !ctx.is_connected() {
        return Err(CommandError::NotConnected);
    }
    let registration_id = ctx.device().registration_id();
    let keystore = records.keystore.as_mut().ok_or(CommandError::NotPaired)?;
    let held = keystore
        .approve_identity(address, key)
        .ok_or(CommandError::InvalidState)?;
    ctx.persist(batch_of(keystore.take_changes()), out);
    for message in &held {
        let receipt = build_retry_request(message, 1, registration_id, None);
        if ctx.send(&receipt, out).is_err() {
            break;
        }
    }
    Ok(CommandOutput::None)
}
