//! The app-state sync sub-machine: wires the pure `crate::appstate` layer to the connection,
//! the store and the events.
//!
//! - Sync keys arrive in an `AppStateSyncKeyShare` protocol message from the primary
//!   ([`key_share_changes`], called by messaging before its delivery receipt) and live as one
//!   record per key in `Space::AppStateKey` (loaded at start: they are few and small).
//! - Collection states and the settings view live in `Space::AppStateVersion` under the
//!   collection's name and [`VIEW_KEY`]; they are loaded on demand after the first login.
//! - After every login and on `<notification type="server_sync">` the client sends the sync IQ
//!   (`<iq xmlns="w:sync:app:state" type="set"><sync><collection name version
//!   return_snapshot/>…`), applies the answer with `CollectionState::apply_all` and persists the
//!   state, the hash and the view in one batch, or nothing.
//! - Commands encode one action each with `encode_patch` and send it in the same IQ; the
//!   command ends when the server answered.
//! - Failures follow `PatchError::recovery()`: wait for keys, refetch, fetch a snapshot, and
//!   finally [`Event::AppStateFatal`] with the last good state kept.
//!
//! - A snapshot (or a patch's mutations) in an external blob parks the collection: the client
//!   asks the host for each blob with an `Output::Fetch` (a GET of the media host and the
//!   blob's direct path), the host answers with `Client::handle_fetched`, and the apply runs
//!   once every blob arrived and decrypted. A failed or corrupt download refetches, then falls
//!   back to a snapshot, then is fatal.
//!
//! Everything runs one IQ at a time (the server's versions are linear per collection); no IQ is
//! sent while blobs are awaited.
//!
//! The files, one job each: `slot` (where each collection and the IQ stand), `sync` (the sync
//! IQ and the application of its answer), `commands` (app-state commands and their patches),
//! `keys` (key shares and key requests), `blobs` (external blob downloads), `events` (what
//! goes out: commits, events, failures).

mod blobs;
mod commands;
mod events;
mod keys;
mod slot;
mod sync;
#[cfg(test)]
mod tests;

use crate::appstate::{Collection, CollectionState, KeyId, KeyRing, SettingsView, persist};
use crate::binary::{Jid, Node};
use crate::proto::wa;
use crate::store::{Record, RecordKey, Space};

use super::command::{CommandId, CommandOutput};
use super::context::Context;
use super::iq::IqResult;
use super::output::Outputs;
use super::owner::{Owner, Tag};
use super::per_collection::PerCollection;

pub use events::AppStateFailure;
pub(crate) use keys::key_share_changes;

use commands::Queued;
use events::done;
use slot::{InFlight, Load, Phase, Slot};

/// The xmlns of the app-state sync IQ.
pub(crate) const XMLNS: &str = "w:sync:app:state";

/// The key of the settings view record in `Space::AppStateVersion`.
pub const VIEW_KEY: &str = "view";

/// Tags of the app-state IQs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppStateIq {
    /// A fetch of these collections (`true`: a snapshot was asked for).
    Sync(Vec<(Collection, bool)>),
    /// An outgoing patch for a command.
    Send(CommandId),
}

/// Tags of the app-state loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppStateLoad {
    /// The collection states and the view.
    States,
}

/// The tag of an app-state blob download (a snapshot, or a patch's mutations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppStateBlob;

impl Tag for AppStateIq {
    const OWNER: Owner = Owner::AppState;
}

impl Tag for AppStateLoad {
    const OWNER: Owner = Owner::AppState;
}

impl Tag for AppStateBlob {
    const OWNER: Owner = Owner::AppState;
}

/// A decoded sync answer: the snapshot (inline, or its blob reference) and the patches.
type Decoded = (
    Option<wa::SyncdSnapshot>,
    Option<wa::ExternalBlobReference>,
    Vec<(wa::SyncdPatch, Option<wa::SyncdMutations>)>,
);

/// The app-state sync of one client.
#[derive(Debug, Default)]
pub(crate) struct AppSync {
    ring: KeyRing,
    states: PerCollection<CollectionState>,
    view: SettingsView,
    /// Whether the states and the view are loaded (or were given at start).
    load: Load,
    /// Where each collection stands (a collection without a slot stands idle).
    slots: PerCollection<Slot>,
    /// The one IQ at a time: none, a sync, or a command's patch.
    in_flight: InFlight,
    /// Commands waiting for the IQ.
    queue: std::collections::VecDeque<Queued>,
    /// `GetChatSettings` commands waiting for the states load.
    reads: Vec<(CommandId, String)>,
    /// Key ids to ask the own devices for, once the current input is handled.
    missing: Vec<KeyId>,
}

impl AppSync {
    /// Restores keys (and, when the host gave them, states and the view) from records.
    pub(crate) fn restore(records: &[Record]) -> AppSync {
        let mut sync = AppSync::default();
        for record in records {
            match record.space {
                Space::AppStateKey => {
                    // A key that does not decode is dropped; the primary shares it again.
                    if let Ok(key) = persist::decode_key(&record.value) {
                        sync.ring.insert(key);
                    }
                }
                Space::AppStateVersion => {
                    sync.load = Load::Loaded;
                    sync.restore_state(record);
                }
                _ => {}
            }
        }
        sync
    }

    fn restore_state(&mut self, record: &Record) {
        if record.key == VIEW_KEY {
            if let Ok(view) = persist::decode_view(&record.value) {
                self.view = view;
            }
        } else if let Ok((collection, state)) = persist::decode_collection(&record.value)
            && collection.name() == record.key
        {
            self.states.insert(collection, state);
        }
    }

    fn state(&self, collection: Collection) -> CollectionState {
        self.states.get(&collection).cloned().unwrap_or_default()
    }

    /// The collection's slot, made when it had none.
    fn slot_mut(&mut self, collection: Collection) -> &mut Slot {
        self.slots.entry(collection).or_insert(Slot::default())
    }

    /// Whether the collection waits for sync keys.
    fn is_waiting(&self, collection: Collection) -> bool {
        self.slots
            .get(&collection)
            .is_some_and(|slot| matches!(slot.phase, Phase::WaitingForKeys { .. }))
    }

    /// Whether the collection's answer is parked until its blobs arrive.
    fn is_parked(&self, collection: Collection) -> bool {
        self.slots
            .get(&collection)
            .is_some_and(|slot| matches!(slot.phase, Phase::Downloading(_)))
    }

    /// `Command::GetChatSettings`: answered from the view, once it is loaded.
    pub(crate) fn get_chat_settings(
        &mut self,
        id: CommandId,
        chat: String,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if self.load == Load::Loaded {
            let settings = self.view.chat(&chat);
            return done(out, id, Ok(CommandOutput::ChatSettings(settings)));
        }
        if self.reads.len() >= crate::limits::APPSTATE_CLIENT_MAX_QUEUED_COMMANDS {
            return done(
                out,
                id,
                Err(super::command::CommandError::RateLimited {
                    retry_after_ms: None,
                }),
            );
        }
        self.reads.push((id, chat));
        self.start_load(ctx, out);
    }

    fn start_load(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        if self.load != Load::Unloaded {
            return;
        }
        self.load = Load::Loading;
        let mut keys: Vec<RecordKey> = Collection::ALL
            .iter()
            .map(|c| RecordKey::new(Space::AppStateVersion, c.name()))
            .collect();
        keys.push(RecordKey::new(Space::AppStateVersion, VIEW_KEY));
        ctx.load(keys, AppStateLoad::States, out);
    }

    /// The records of the states load.
    pub(crate) fn handle_loaded(
        &mut self,
        records: Vec<Record>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if self.load != Load::Loaded {
            for record in records.iter().filter(|r| r.space == Space::AppStateVersion) {
                self.restore_state(record);
            }
            self.load = Load::Loaded;
            for collection in Collection::ALL {
                if self.state(collection).version() == 0
                    && let Some(snapshot) = self
                        .slots
                        .get_mut(&collection)
                        .and_then(|slot| slot.due.as_mut())
                {
                    *snapshot = true;
                }
            }
        }
        for (id, chat) in core::mem::take(&mut self.reads) {
            let settings = self.view.chat(&chat);
            done(out, id, Ok(CommandOutput::ChatSettings(settings)));
        }
        self.pump(ctx, out);
    }

    /// The client reached `Connected`: load what is needed, then fetch every collection.
    pub(crate) fn handle_connected(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        self.in_flight = InFlight::None;
        self.unpark_all();
        for collection in Collection::ALL {
            if !self.is_waiting(collection) {
                let fresh = self.state(collection).version() == 0;
                self.slot_mut(collection).want(fresh);
            }
        }
        self.pump(ctx, out);
    }

    /// The connection ended: the IQ in flight was answered with `Disconnected`.
    pub(crate) fn handle_disconnected(&mut self) {
        self.in_flight = InFlight::None;
        self.unpark_all();
    }

    /// `<notification type="server_sync">`: the server has newer patches of the named
    /// collections.
    pub(crate) fn handle_server_sync(
        &mut self,
        node: &Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        ctx.ack(node, out);
        let from_server = node
            .attr_jid("from")
            .is_some_and(|from| from == Jid::server_jid());
        if !from_server {
            return;
        }
        for child in node.children_by_tag("collection") {
            let Some(collection) = child
                .attr_str("name")
                .and_then(|name| Collection::from_name(name).ok())
            else {
                continue;
            };
            let announced = child
                .attr_str("version")
                .and_then(|v| v.parse::<u64>().ok());
            let current = self.state(collection).version();
            if announced.is_none_or(|v| v > current) && !self.is_waiting(collection) {
                self.slot_mut(collection).want(false);
            }
        }
        self.pump(ctx, out);
    }

    /// The answer to an app-state IQ.
    pub(crate) fn handle_iq(
        &mut self,
        tag: AppStateIq,
        result: IqResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let answered = core::mem::take(&mut self.in_flight);
        match tag {
            AppStateIq::Sync(wanted) => self.sync_answer(&wanted, result, ctx, out),
            AppStateIq::Send(id) => self.send_answer(id, answered, result, out),
        }
        self.request_missing(ctx);
        self.pump(ctx, out);
    }
}
