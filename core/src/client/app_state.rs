//! The app-state sub-machine: wires the pure `crate::appstate` layer to the connection, the
//! store and the events.
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

use std::collections::{BTreeSet, VecDeque};

use super::per_collection::PerCollection;

use crate::appstate::{
    Collection, CollectionState, KeyId, KeyRing, OutgoingPatch, PatchError, Recovery,
    SettingChange, SettingsView, SyncAction, SyncKey, decode_external_mutations, decode_patch,
    decode_snapshot, decrypt_external_blob, encode_patch, persist,
};
use crate::binary::{Jid, Node};
use crate::limits::{
    APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS, APPSTATE_CLIENT_KEY_REQUESTS,
    APPSTATE_CLIENT_MAX_BLOB_RETRIES, APPSTATE_CLIENT_MAX_DOWNLOADS,
    APPSTATE_CLIENT_MAX_QUEUED_COMMANDS, APPSTATE_CLIENT_MAX_REFETCHES, APPSTATE_MAX_EXTERNAL_BLOB,
    CLIENT_FETCH_TIMEOUT_MS,
};
use crate::proto::wa;
use crate::store::{Batch, Change, Record, RecordKey, Space};

use super::Timestamp;
use super::command::{CommandError, CommandId, CommandOutput};
use super::context::Context;
use super::endpoints::media_url;
use super::event::Event;
use super::fetch::{Body, FetchId, FetchRequest, FetchResult, Method, ResponseTarget};
use super::iq::{self, IqError, IqResult};
use super::output::Outputs;
use super::owner::{Owner, Tag};

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

/// The store key of a sync key record: the key id in lower-case hex.
pub(crate) fn key_record_key(id: &KeyId) -> String {
    id.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// A command waiting to be sent.
#[derive(Debug)]
struct Queued {
    id: CommandId,
    action: SyncAction,
    /// Conflicts met so far.
    attempts: u32,
}

/// Where a downloaded blob goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlobSlot {
    /// The collection's snapshot.
    Snapshot,
    /// The external mutations of the patch at this position.
    Patch(usize),
}

/// A sync answer parked until the host downloaded its external blobs.
struct Parked {
    snapshot_asked: bool,
    has_more: bool,
    snapshot: Option<wa::SyncdSnapshot>,
    patches: Vec<(wa::SyncdPatch, Option<wa::SyncdMutations>)>,
    /// The blobs still awaited, by fetch id (ascending), with their references (media keys
    /// inside). A few per answer: a list, not a map.
    pending: Vec<(FetchId, (BlobSlot, wa::ExternalBlobReference))>,
}

impl core::fmt::Debug for Parked {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The references hold media keys: only the ids and slots are shown.
        let pending: Vec<(&FetchId, &BlobSlot)> = self
            .pending
            .iter()
            .map(|(id, (slot, _))| (id, slot))
            .collect();
        f.debug_struct("Parked")
            .field("snapshot_asked", &self.snapshot_asked)
            .field("patches", &self.patches.len())
            .field("pending", &pending)
            .finish_non_exhaustive()
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        let patch_refs = self
            .patches
            .iter_mut()
            .filter_map(|(patch, _)| patch.external_mutations.as_mut());
        for reference in self
            .pending
            .iter_mut()
            .map(|(_, (_, r))| r)
            .chain(patch_refs)
        {
            if let Some(key) = reference.media_key.as_mut() {
                key.zeroize();
            }
        }
    }
}

/// The blob reference a `<snapshot>` holds, when it is one (WhatsApp's form) rather than the
/// inline `SyncdSnapshot` bytes: a 32-byte media key, a direct path and the file hash.
fn external_reference(bytes: &[u8]) -> Option<wa::ExternalBlobReference> {
    let reference = <wa::ExternalBlobReference as prost::Message>::decode(bytes).ok()?;
    let complete = reference.media_key.as_ref().is_some_and(|k| k.len() == 32)
        && reference
            .direct_path
            .as_ref()
            .is_some_and(|p| !p.is_empty())
        && reference
            .file_enc_sha256
            .as_ref()
            .is_some_and(|h| h.len() == 32);
    complete.then_some(reference)
}

/// The key request of a collection waiting for keys: how many were sent, and when the next
/// is due (or, after the last, when the wait ends fatally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyRequestTimer {
    sent: u32,
    due: Timestamp,
}

/// The wait after the `sent`-th key request: [`APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS`], doubled
/// after each request.
fn key_request_wait(sent: u32) -> u64 {
    let doublings = sent.saturating_sub(1).min(16);
    APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS.saturating_mul(1 << doublings)
}

/// A decoded sync answer: the snapshot (inline, or its blob reference) and the patches.
type Decoded = (
    Option<wa::SyncdSnapshot>,
    Option<wa::ExternalBlobReference>,
    Vec<(wa::SyncdPatch, Option<wa::SyncdMutations>)>,
);

/// The app-state sync of one client.
#[derive(Debug, Default)]
pub(crate) struct AppState {
    ring: KeyRing,
    states: PerCollection<CollectionState>,
    view: SettingsView,
    /// Whether the states and the view were loaded (or given at start).
    loaded: bool,
    loading: bool,
    /// Collections to fetch, with whether a snapshot is wanted.
    fetch: PerCollection<bool>,
    /// Collections parked until these keys arrive.
    waiting: PerCollection<Vec<KeyId>>,
    /// The key requests of the waiting collections, re-sent on a timer.
    key_timers: PerCollection<KeyRequestTimer>,
    /// Refetches in a row per collection (a gap the server does not fill).
    refetches: PerCollection<u32>,
    /// Commands waiting for the IQ slot.
    queue: VecDeque<Queued>,
    /// The IQ in flight: a sync, or a command's patch.
    busy: bool,
    sending: Option<(Queued, OutgoingPatch)>,
    /// `GetChatSettings` commands waiting for the states load.
    reads: Vec<(CommandId, String)>,
    /// Key ids to ask the own devices for, once the current input is handled.
    missing: Vec<KeyId>,
    /// Collections waiting for external blobs.
    /// Boxed: an answer is rarely parked, and five inline slots would grow every client.
    parked: PerCollection<Box<Parked>>,
    /// Failed blob downloads in a row per collection.
    blob_failures: PerCollection<u32>,
}

impl AppState {
    /// Restores keys (and, when the host gave them, states and the view) from records.
    pub(crate) fn restore(records: &[Record]) -> AppState {
        let mut state = AppState::default();
        for record in records {
            match record.space {
                Space::AppStateKey => {
                    // A key that does not decode is dropped; the primary shares it again.
                    if let Ok(key) = persist::decode_key(&record.value) {
                        state.ring.insert(key);
                    }
                }
                Space::AppStateVersion => {
                    state.loaded = true;
                    state.restore_state(record);
                }
                _ => {}
            }
        }
        state
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

    /// `Command::GetChatSettings`: answered from the view, once it is loaded.
    pub(crate) fn get_chat_settings(
        &mut self,
        id: CommandId,
        chat: String,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if self.loaded {
            let settings = self.view.chat(&chat);
            return done(out, id, Ok(CommandOutput::ChatSettings(settings)));
        }
        if self.reads.len() >= APPSTATE_CLIENT_MAX_QUEUED_COMMANDS {
            return done(
                out,
                id,
                Err(CommandError::RateLimited {
                    retry_after_ms: None,
                }),
            );
        }
        self.reads.push((id, chat));
        self.start_load(ctx, out);
    }

    fn start_load(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        if self.loaded || self.loading {
            return;
        }
        self.loading = true;
        let mut keys: Vec<RecordKey> = Collection::ALL
            .iter()
            .map(|c| RecordKey::new(Space::AppStateVersion, c.name()))
            .collect();
        keys.push(RecordKey::new(Space::AppStateVersion, VIEW_KEY));
        ctx.load(keys, AppStateLoad::States, out);
    }

    /// The client reached `Connected`: load what is needed, then fetch every collection.
    pub(crate) fn handle_connected(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        self.busy = false;
        self.unpark_all();
        for collection in Collection::ALL {
            if !self.waiting.contains_key(&collection) {
                let fresh = self.state(collection).version() == 0;
                let entry = self.fetch.entry(collection).or_insert(false);
                *entry |= fresh;
            }
        }
        self.pump(ctx, out);
    }

    /// The connection ended: the IQ in flight was answered with `Disconnected`.
    pub(crate) fn handle_disconnected(&mut self) {
        self.busy = false;
        self.unpark_all();
    }

    /// Drops the parked answers (their downloads are ignored when they come) and fetches the
    /// collections again.
    fn unpark_all(&mut self) {
        for (collection, parked) in core::mem::take(&mut self.parked) {
            *self.fetch.entry(collection).or_insert(false) |= parked.snapshot_asked;
        }
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
            if announced.is_none_or(|v| v > current) && !self.waiting.contains_key(&collection) {
                self.fetch.entry(collection).or_insert(false);
            }
        }
        self.pump(ctx, out);
    }

    /// Keys from a share arrived (already persisted by messaging): retry what waited for them.
    pub(crate) fn keys_arrived(
        &mut self,
        keys: Vec<SyncKey>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        for key in keys {
            self.ring.insert(key);
        }
        let ready: Vec<Collection> = self
            .waiting
            .iter()
            .filter(|(_, ids)| ids.iter().all(|id| self.ring.contains(id.as_bytes())))
            .map(|(collection, _)| *collection)
            .collect();
        for collection in ready {
            self.waiting.remove(&collection);
            self.key_timers.remove(&collection);
            self.fetch.entry(collection).or_insert(false);
        }
        self.pump(ctx, out);
    }

    /// An app-state command: `Some(action)` to send, `None` for a read of `chat`'s settings.
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

    /// Sends the next IQ when the slot is free.
    fn pump(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        if self.busy || !self.parked.is_empty() || !ctx.is_connected() {
            return;
        }
        if !self.loaded {
            self.start_load(ctx, out);
            return;
        }
        if !self.fetch.is_empty() {
            let wanted: Vec<(Collection, bool)> =
                core::mem::take(&mut self.fetch).into_iter().collect();
            let children = wanted
                .iter()
                .map(|(collection, snapshot)| {
                    let version = if *snapshot {
                        0
                    } else {
                        self.state(*collection).version()
                    };
                    Node::new("collection")
                        .attr("name", collection.name())
                        .attr("version", version.to_string())
                        .attr("return_snapshot", if *snapshot { "true" } else { "false" })
                })
                .collect::<Vec<_>>();
            let request = iq::iq(
                "set",
                XMLNS,
                vec![Node::new("sync").children_from(children)],
            );
            match ctx.send_iq(request, AppStateIq::Sync(wanted.clone()), None, out) {
                Ok(_) => self.busy = true,
                Err(_) => self.fetch.extend(wanted),
            }
            return;
        }
        while let Some(queued) = self.queue.pop_front() {
            match self.encode(&queued, ctx) {
                Ok(outgoing) => {
                    let bytes = prost::Message::encode_to_vec(&outgoing.patch);
                    let request = iq::iq(
                        "set",
                        XMLNS,
                        vec![
                            Node::new("sync").children_from([Node::new("collection")
                                .attr("name", outgoing.collection.name())
                                .attr("version", outgoing.base_version.to_string())
                                .attr("return_snapshot", "false")
                                .children_from([Node::new("patch").bytes(bytes)])]),
                        ],
                    );
                    let tag = AppStateIq::Send(queued.id);
                    match ctx.send_iq(request, tag, None, out) {
                        Ok(_) => {
                            self.busy = true;
                            self.sending = Some((queued, outgoing));
                        }
                        Err(_) => done(out, queued.id, Err(CommandError::NotConnected)),
                    }
                    return;
                }
                Err(error) => done(out, queued.id, Err(error)),
            }
        }
    }

    fn encode(
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

    /// The records of the states load.
    pub(crate) fn handle_loaded(
        &mut self,
        records: Vec<Record>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        self.loading = false;
        if !self.loaded {
            for record in records.iter().filter(|r| r.space == Space::AppStateVersion) {
                self.restore_state(record);
            }
            self.loaded = true;
            for collection in Collection::ALL {
                if self.state(collection).version() == 0
                    && let Some(snapshot) = self.fetch.get_mut(&collection)
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

    /// The answer to an app-state IQ.
    pub(crate) fn handle_iq(
        &mut self,
        tag: AppStateIq,
        result: IqResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        self.busy = false;
        match tag {
            AppStateIq::Sync(wanted) => self.sync_answer(&wanted, result, ctx, out),
            AppStateIq::Send(id) => self.send_answer(id, result, out),
        }
        self.request_missing(ctx);
        self.pump(ctx, out);
    }

    /// When the next key request (or the end of the last one's wait) is due.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.key_timers.values().map(|timer| timer.due).min()
    }

    /// Key requests nobody answered: ask again, and after the last attempt's wait report the
    /// collection fatal (it keeps its last good state; the next login or `server_sync`
    /// fetches it again, and a share arriving later is still taken).
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        let now = ctx.now();
        let due: Vec<Collection> = self
            .key_timers
            .iter()
            .filter(|(_, timer)| timer.due <= now)
            .map(|(collection, _)| *collection)
            .collect();
        for collection in due {
            let (Some(timer), Some(ids)) = (
                self.key_timers.get(&collection).copied(),
                self.waiting.get(&collection).cloned(),
            ) else {
                self.key_timers.remove(&collection);
                continue;
            };
            if timer.sent >= APPSTATE_CLIENT_KEY_REQUESTS {
                self.key_timers.remove(&collection);
                self.waiting.remove(&collection);
                out.event(Event::AppStateFatal {
                    collection,
                    error: AppStateFailure::Patch(PatchError::MissingKeys(ids)),
                });
                continue;
            }
            // Offline, the request could not leave: wait again without counting it.
            let sent = if ctx.is_connected() {
                for id in ids {
                    if !self.missing.contains(&id) {
                        self.missing.push(id);
                    }
                }
                timer.sent + 1
            } else {
                timer.sent
            };
            self.key_timers.insert(
                collection,
                KeyRequestTimer {
                    sent,
                    due: now.saturating_add(key_request_wait(sent)),
                },
            );
        }
        self.request_missing(ctx);
    }

    /// Asks the own devices for the keys found missing while handling the current input, and
    /// starts the re-ask timer of every collection that just began waiting.
    fn request_missing(&mut self, ctx: &mut Context<'_>) {
        for collection in self.waiting.keys() {
            self.key_timers
                .entry(*collection)
                .or_insert(KeyRequestTimer {
                    sent: 1,
                    due: ctx.now().saturating_add(key_request_wait(1)),
                });
        }
        let missing = core::mem::take(&mut self.missing);
        if !missing.is_empty()
            && let Ok(request) = crate::appstate::key_request_message(&missing)
        {
            // Sent by messaging to this account's own devices (see `CommandId::INTERNAL`).
            ctx.request_app_state_keys(request);
        }
    }

    /// The answer to a blob's `Output::Fetch`: the file as served, or why not.
    pub(crate) fn handle_fetched(
        &mut self,
        fetch: FetchId,
        result: FetchResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let found = self.parked.iter_mut().find_map(|(collection, parked)| {
            let at = parked.pending.iter().position(|(id, _)| *id == fetch)?;
            Some((*collection, parked.pending.remove(at).1))
        });
        // A download of an answer dropped meanwhile (a reconnect) is ignored.
        let Some((collection, (slot, mut reference))) = found else {
            return;
        };
        // Only a 2xx answer carries the file; any other status is a failed download.
        let file = result
            .ok()
            .filter(|response| (200..300).contains(&response.status));
        let opened = match file {
            None => Err(AppStateFailure::Download),
            Some(file) => decrypt_external_blob(&reference, &file.body)
                .and_then(|plain| {
                    let parked = self.parked.get_mut(&collection);
                    match (slot, parked) {
                        (BlobSlot::Snapshot, Some(parked)) => {
                            parked.snapshot = Some(decode_snapshot(&plain)?);
                            Ok(())
                        }
                        (BlobSlot::Patch(index), Some(parked)) => {
                            let mutations = decode_external_mutations(&plain)?;
                            if let Some((_, external)) = parked.patches.get_mut(index) {
                                *external = Some(mutations);
                            }
                            Ok(())
                        }
                        (_, None) => Ok(()),
                    }
                })
                .map_err(AppStateFailure::Patch),
        };
        if let Some(key) = reference.media_key.as_mut() {
            zeroize::Zeroize::zeroize(key);
        }
        match opened {
            Err(failure) => {
                if let Some(parked) = self.parked.remove(&collection) {
                    self.blob_failed(collection, parked.snapshot_asked, failure, out);
                }
            }
            Ok(()) => {
                if self
                    .parked
                    .get(&collection)
                    .is_some_and(|p| p.pending.is_empty())
                    && let Some(mut parked) = self.parked.remove(&collection)
                {
                    let snapshot = parked.snapshot.take();
                    let patches = core::mem::take(&mut parked.patches);
                    self.blob_failures.remove(&collection);
                    self.apply_decoded(
                        collection,
                        parked.snapshot_asked,
                        parked.has_more,
                        Ok((snapshot, None, patches)),
                        ctx,
                        out,
                    );
                }
            }
        }
        self.request_missing(ctx);
        self.pump(ctx, out);
    }

    /// The recovery ladder of a failed or corrupt blob: fetch the same again, then a snapshot,
    /// then report the collection fatal.
    fn blob_failed(
        &mut self,
        collection: Collection,
        snapshot_asked: bool,
        failure: AppStateFailure,
        out: &mut Outputs,
    ) {
        let count = self.blob_failures.entry(collection).or_insert(0);
        *count += 1;
        if *count <= APPSTATE_CLIENT_MAX_BLOB_RETRIES {
            *self.fetch.entry(collection).or_insert(false) |= snapshot_asked;
        } else if !snapshot_asked {
            self.fetch.insert(collection, true);
        } else {
            self.blob_failures.remove(&collection);
            out.event(Event::AppStateFatal {
                collection,
                error: failure,
            });
        }
    }

    fn sync_answer(
        &mut self,
        wanted: &[(Collection, bool)],
        result: IqResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let node = match result {
            Ok(node) => node,
            Err(IqError::Disconnected | IqError::TimedOut) => {
                // Fetched again after the next login (or now, when still connected).
                for (collection, snapshot) in wanted {
                    *self.fetch.entry(*collection).or_insert(false) |= *snapshot;
                }
                return;
            }
            Err(IqError::Error { code, text, .. }) => {
                for (collection, _) in wanted {
                    out.event(Event::AppStateFatal {
                        collection: *collection,
                        error: AppStateFailure::Rejected {
                            code,
                            text: text.clone(),
                        },
                    });
                }
                return;
            }
        };
        let answered: Vec<&Node> = node
            .child("sync")
            .map(|sync| sync.children_by_tag("collection").collect())
            .unwrap_or_default();
        for (collection, snapshot_asked) in wanted {
            let child = answered
                .iter()
                .find(|c| c.attr_str("name") == Some(collection.name()));
            match child {
                Some(child) => self.apply_collection(*collection, *snapshot_asked, child, ctx, out),
                None => out.event(Event::AppStateFatal {
                    collection: *collection,
                    error: AppStateFailure::NotAnswered,
                }),
            }
        }
    }

    fn apply_collection(
        &mut self,
        collection: Collection,
        snapshot_asked: bool,
        node: &Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if node.attr_str("type") == Some("error") {
            let error = node.child("error");
            let code = error
                .and_then(|e| e.attr_str("code"))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let text = error
                .and_then(|e| e.attr_str("text"))
                .unwrap_or_default()
                .to_owned();
            out.event(Event::AppStateFatal {
                collection,
                error: AppStateFailure::Rejected { code, text },
            });
            return;
        }
        let decoded = (|| -> Result<Decoded, PatchError> {
            let (snapshot, reference) = match node.child("snapshot").and_then(Node::content_bytes) {
                Some(bytes) => match external_reference(bytes) {
                    Some(reference) => (None, Some(reference)),
                    None => (Some(decode_snapshot(bytes)?), None),
                },
                None => (None, None),
            };
            let mut patches = Vec::new();
            if let Some(list) = node.child("patches") {
                for patch in list.children_by_tag("patch") {
                    let bytes = patch
                        .content_bytes()
                        .ok_or(PatchError::Malformed("patch"))?;
                    patches.push((decode_patch(bytes)?, None::<wa::SyncdMutations>));
                }
            }
            Ok((snapshot, reference, patches))
        })();
        let has_more = node.attr_str("has_more_patches") == Some("true");
        self.apply_decoded(collection, snapshot_asked, has_more, decoded, ctx, out);
    }

    /// Parks the answer when it needs external blobs, applies it otherwise.
    fn apply_decoded(
        &mut self,
        collection: Collection,
        snapshot_asked: bool,
        has_more: bool,
        decoded: Result<Decoded, PatchError>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let decoded = match decoded {
            Ok((snapshot, reference, patches))
                if reference.is_some()
                    || patches
                        .iter()
                        .any(|(p, m)| p.external_mutations.is_some() && m.is_none()) =>
            {
                return self.park(
                    collection,
                    snapshot_asked,
                    has_more,
                    snapshot,
                    reference,
                    patches,
                    ctx,
                    out,
                );
            }
            other => other,
        };
        let result = decoded.and_then(|(snapshot, _, patches)| {
            let current = self.state(collection);
            let applied = current.apply_all(collection, snapshot.as_ref(), &patches, &self.ring)?;
            let snapshot_version = snapshot
                .as_ref()
                .and_then(|s| s.version.as_ref())
                .and_then(|v| v.version);
            Ok((applied, snapshot_version))
        });
        match result {
            Ok((applied, snapshot_version)) => {
                self.refetches.remove(&collection);
                let mut view = self.view.clone();
                let (from_snapshot, from_patches): (Vec<_>, Vec<_>) =
                    applied.mutations.into_iter().partition(|m| {
                        snapshot_version.is_some_and(|version| m.patch_version <= version)
                    });
                let mut changes = Vec::new();
                if snapshot_version.is_some() {
                    changes.extend(view.replace_collection(collection, &from_snapshot));
                }
                changes.extend(view.apply_mutations(&from_patches));
                self.commit(collection, applied.state, view, changes, out);
                if has_more {
                    self.fetch.entry(collection).or_insert(false);
                }
            }
            Err(error) => self.recover(collection, snapshot_asked, error, out),
        }
    }

    /// Parks an answer that needs external blobs and asks the host for each of them.
    #[allow(clippy::too_many_arguments)]
    fn park(
        &mut self,
        collection: Collection,
        snapshot_asked: bool,
        has_more: bool,
        snapshot: Option<wa::SyncdSnapshot>,
        reference: Option<wa::ExternalBlobReference>,
        patches: Vec<(wa::SyncdPatch, Option<wa::SyncdMutations>)>,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let mut blobs: Vec<(BlobSlot, wa::ExternalBlobReference)> = Vec::new();
        if let Some(reference) = reference {
            blobs.push((BlobSlot::Snapshot, reference));
        }
        // Only what is still missing: a patch whose mutations were downloaded is complete.
        for (index, (patch, downloaded)) in patches.iter().enumerate() {
            if let Some(reference) = patch
                .external_mutations
                .as_ref()
                .filter(|_| downloaded.is_none())
            {
                blobs.push((BlobSlot::Patch(index), reference.clone()));
            }
        }
        if blobs.len() > APPSTATE_CLIENT_MAX_DOWNLOADS {
            return self.recover(
                collection,
                snapshot_asked,
                PatchError::TooLarge("external blobs"),
                out,
            );
        }
        let mut parked = Parked {
            snapshot_asked,
            has_more,
            snapshot,
            patches,
            pending: Vec::new(),
        };
        for (slot, reference) in blobs {
            let Some(direct_path) = reference.direct_path.clone().filter(|p| !p.is_empty()) else {
                drop(parked);
                return self.recover(
                    collection,
                    snapshot_asked,
                    PatchError::Malformed("external blob direct path"),
                    out,
                );
            };
            let request = FetchRequest {
                method: Method::Get,
                url: media_url(&ctx.config().media_origin, &direct_path),
                headers: Vec::new(),
                body: Body::Empty,
                response: ResponseTarget::Memory,
                max_response_bytes: APPSTATE_MAX_EXTERNAL_BLOB as u64,
                timeout_ms: CLIENT_FETCH_TIMEOUT_MS,
            };
            let id = ctx.fetch(request, AppStateBlob, out);
            parked.pending.push((id, (slot, reference)));
        }
        self.parked.insert(collection, Box::new(parked));
    }

    /// Persists the collection state and the view in one batch, adopts them, and reports
    /// the changes.
    fn commit(
        &mut self,
        collection: Collection,
        state: CollectionState,
        view: SettingsView,
        changes: Vec<SettingChange>,
        out: &mut Outputs,
    ) {
        out.persist(Batch {
            changes: vec![
                Change::Put(Record {
                    space: Space::AppStateVersion,
                    key: collection.name().to_owned(),
                    value: persist::encode_collection(collection, &state),
                }),
                Change::Put(Record {
                    space: Space::AppStateVersion,
                    key: VIEW_KEY.to_owned(),
                    value: persist::encode_view(&view),
                }),
            ],
        });
        self.states.insert(collection, state);
        self.view = view;
        let mut chats = BTreeSet::new();
        for change in changes {
            if let Some(chat) = chat_of(&change) {
                chats.insert(chat.to_owned());
            }
            out.event(Event::AppStateChanged { collection, change });
        }
        for chat in chats {
            let settings = self.view.chat(&chat);
            out.event(Event::ChatSettings { chat, settings });
        }
    }

    fn recover(
        &mut self,
        collection: Collection,
        snapshot_asked: bool,
        error: PatchError,
        out: &mut Outputs,
    ) {
        match error.recovery() {
            Recovery::WaitForKeys(ids) => {
                out.event(Event::AppStateWaitingForKeys {
                    collection,
                    key_ids: ids.iter().map(|id| id.as_bytes().to_vec()).collect(),
                });
                for id in &ids {
                    if !self.missing.contains(id) {
                        self.missing.push(id.clone());
                    }
                }
                self.waiting.insert(collection, ids);
            }
            Recovery::Ignore => {}
            Recovery::FetchMissingPatches => {
                let count = self.refetches.entry(collection).or_insert(0);
                *count += 1;
                let snapshot = *count > APPSTATE_CLIENT_MAX_REFETCHES;
                *self.fetch.entry(collection).or_insert(false) |= snapshot;
            }
            Recovery::FetchSnapshot if !snapshot_asked => {
                self.fetch.insert(collection, true);
            }
            Recovery::FetchSnapshot | Recovery::Fatal => out.event(Event::AppStateFatal {
                collection,
                error: AppStateFailure::Patch(error),
            }),
        }
    }

    fn send_answer(&mut self, id: CommandId, result: IqResult, out: &mut Outputs) {
        let Some((mut queued, outgoing)) = self.sending.take().filter(|(q, _)| q.id == id) else {
            return;
        };
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
            let error = answer.child("error");
            let code: u16 = error
                .and_then(|e| e.attr_str("code"))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if code == 409 && queued.attempts < APPSTATE_CLIENT_MAX_REFETCHES {
                // Another device was first: catch up, then encode again on the new state.
                queued.attempts += 1;
                self.fetch.entry(collection).or_insert(false);
                self.queue.push_front(queued);
                return;
            }
            let text = error
                .and_then(|e| e.attr_str("text"))
                .unwrap_or_default()
                .to_owned();
            return done(out, id, Err(CommandError::Rejected { code, text }));
        }
        if self.state(collection).version() == outgoing.base_version {
            let mut view = self.view.clone();
            let changes = view.apply_mutations(&outgoing.mutations);
            self.commit(collection, outgoing.state, view, changes, out);
        } else {
            // The collection moved meanwhile: the server has the patch; fetch it.
            self.fetch.entry(collection).or_insert(false);
        }
        done(out, id, Ok(CommandOutput::None));
    }
}

/// Reads an `AppStateSyncKeyShare` from a decrypted message sent by one of this account's own
/// devices (`sender` and `own` are compared by user): the keys, and the records that store
/// them. Messaging persists the records with the message's other changes, before its delivery
/// receipt, and hands the keys to the client (`Requests::app_state_keys`).
pub(crate) fn key_share_changes(
    message: &wa::Message,
    sender: &Jid,
    own: Option<&Jid>,
) -> Option<(Vec<SyncKey>, Vec<Change>)> {
    let share = message
        .protocol_message
        .as_ref()?
        .app_state_sync_key_share
        .as_ref()?;
    let own = own?;
    if sender.user != own.user || sender.server != own.server {
        return None;
    }
    let keys = crate::appstate::keys::keys_from_share(share).ok()?;
    let changes = keys
        .iter()
        .map(|key| {
            Change::Put(Record {
                space: Space::AppStateKey,
                key: key_record_key(key.id()),
                value: persist::encode_key(key),
            })
        })
        .collect();
    Some((keys, changes))
}

/// Why a collection could not be synced (in [`Event::AppStateFatal`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppStateFailure {
    /// The data failed to verify even from a fresh snapshot, or broke a bound.
    #[error("app-state data failed: {0}")]
    Patch(PatchError),
    /// The server refused the sync IQ.
    #[error("the server refused the app-state sync: {code} {text}")]
    Rejected {
        /// The `<error code>`.
        code: u16,
        /// The `<error text>`.
        text: String,
    },
    /// The server's answer did not name the collection.
    #[error("the server's answer left the collection out")]
    NotAnswered,
    /// The host could not download an external blob, even after retries.
    #[error("the host could not download an app-state blob")]
    Download,
}

fn chat_of(change: &SettingChange) -> Option<&str> {
    match change {
        SettingChange::Muted { chat, .. }
        | SettingChange::Pinned { chat, .. }
        | SettingChange::Archived { chat, .. }
        | SettingChange::MarkedUnread { chat, .. }
        | SettingChange::ChatDeleted { chat }
        | SettingChange::ChatLabeled { chat, .. } => Some(chat),
        _ => None,
    }
}

fn done(out: &mut Outputs, id: CommandId, result: Result<CommandOutput, CommandError>) {
    out.event(Event::CommandDone { id, result });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::client::context::testing::Parts;

    fn share() -> (SyncKey, wa::Message) {
        let key = SyncKey::new(KeyId::new(&[0, 0, 1, 2]).unwrap(), [7; 32], None, 1_000);
        let message = wa::Message {
            protocol_message: Some(Box::new(wa::message::ProtocolMessage {
                r#type: Some(wa::message::protocol_message::Type::AppStateSyncKeyShare as i32),
                app_state_sync_key_share: Some(wa::message::AppStateSyncKeyShare {
                    keys: vec![key.to_proto()],
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        (key, message)
    }

    #[test]
    fn a_key_share_is_taken_only_from_an_own_device() {
        let (key, message) = share();
        let own: Jid = "15551234567:3@s.whatsapp.net".parse().unwrap();
        let phone: Jid = "15551234567@s.whatsapp.net".parse().unwrap();
        let stranger: Jid = "15557654321@s.whatsapp.net".parse().unwrap();
        let (keys, changes) = key_share_changes(&message, &phone, Some(&own)).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].id(), key.id());
        let Some(Change::Put(record)) = changes.first() else {
            panic!("a put");
        };
        assert_eq!(record.space, Space::AppStateKey);
        assert_eq!(record.key, "00000102");
        assert_eq!(
            persist::decode_key(&record.value).unwrap().data(),
            key.data()
        );
        // The restored ring holds it.
        let restored = AppState::restore(core::slice::from_ref(record));
        assert!(restored.ring.contains(key.id().as_bytes()));
        assert!(!restored.loaded);
        assert!(key_share_changes(&message, &stranger, Some(&own)).is_none());
        assert!(key_share_changes(&message, &phone, None).is_none());
        assert!(key_share_changes(&wa::Message::default(), &phone, Some(&own)).is_none());
    }

    #[test]
    fn restore_reads_states_and_the_view_and_skips_bad_records() {
        let state = CollectionState::new();
        let records = vec![
            Record {
                space: Space::AppStateVersion,
                key: "regular_low".to_owned(),
                value: persist::encode_collection(Collection::RegularLow, &state),
            },
            Record {
                space: Space::AppStateVersion,
                key: VIEW_KEY.to_owned(),
                value: persist::encode_view(&SettingsView::new()),
            },
            Record {
                space: Space::AppStateKey,
                key: "ff".to_owned(),
                value: vec![1, 2, 3],
            },
        ];
        let restored = AppState::restore(&records);
        assert!(restored.loaded);
        assert!(restored.ring.is_empty());
        assert!(restored.states.contains_key(&Collection::RegularLow));
    }

    fn reference(path: &str) -> wa::ExternalBlobReference {
        wa::ExternalBlobReference {
            media_key: Some(vec![0xA7; 32]),
            direct_path: Some(path.to_owned()),
            handle: None,
            file_size_bytes: Some(64),
            file_sha256: Some(vec![1; 32]),
            file_enc_sha256: Some(vec![2; 32]),
        }
    }

    fn events(out: &mut Outputs) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(output) = out.pop() {
            if let crate::client::Output::Event(event) = output {
                events.push(event);
            }
        }
        events
    }

    #[test]
    fn a_snapshot_reference_is_told_from_inline_snapshot_bytes() {
        let reference = reference("/v/t62/blob");
        let bytes = prost::Message::encode_to_vec(&reference);
        assert_eq!(external_reference(&bytes), Some(reference.clone()));
        let inline = wa::SyncdSnapshot {
            version: Some(wa::SyncdVersion { version: Some(8) }),
            records: Vec::new(),
            mac: Some(vec![3; 32]),
            key_id: Some(wa::KeyId {
                id: Some(vec![0, 0, 1, 2]),
            }),
        };
        assert_eq!(
            external_reference(&prost::Message::encode_to_vec(&inline)),
            None
        );
        // An incomplete reference is not one.
        let mut no_key = reference.clone();
        no_key.media_key = Some(vec![1; 16]);
        assert_eq!(
            external_reference(&prost::Message::encode_to_vec(&no_key)),
            None
        );
        let mut no_path = reference;
        no_path.direct_path = None;
        assert_eq!(
            external_reference(&prost::Message::encode_to_vec(&no_path)),
            None
        );
        assert_eq!(external_reference(&[0xFF, 0xFF]), None);
    }

    /// The URLs of the fetches in `out` (events and other outputs are dropped).
    fn fetched(out: &mut Outputs) -> Vec<(crate::client::FetchId, String)> {
        core::iter::from_fn(|| out.pop())
            .filter_map(|output| match output {
                crate::client::Output::Fetch { id, request } => {
                    assert_eq!(request.method, Method::Get);
                    assert_eq!(request.body, Body::Empty);
                    assert_eq!(
                        request.max_response_bytes,
                        APPSTATE_MAX_EXTERNAL_BLOB as u64
                    );
                    Some((id, request.url))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_answer_needing_blobs_is_parked_and_asks_the_host_without_the_key() {
        let mut parts = Parts::new();
        let mut state = AppState::default();
        let mut out = Outputs::default();
        let patch = wa::SyncdPatch {
            version: Some(wa::SyncdVersion { version: Some(1) }),
            external_mutations: Some(reference("/v/t62/mutations")),
            ..Default::default()
        };
        state.apply_decoded(
            Collection::RegularHigh,
            false,
            false,
            Ok((
                None,
                Some(reference("/v/t62/snapshot")),
                vec![(patch, None)],
            )),
            &mut parts.ctx(0),
            &mut out,
        );
        assert_eq!(
            fetched(&mut out),
            vec![
                (
                    crate::client::FetchId(1),
                    "https://mmg.whatsapp.net/v/t62/snapshot".to_owned()
                ),
                (
                    crate::client::FetchId(2),
                    "https://mmg.whatsapp.net/v/t62/mutations".to_owned()
                )
            ]
        );
        assert!(state.parked.contains_key(&Collection::RegularHigh));
        // Nothing was persisted, and no debug output shows the media key.
        assert!(state.states.is_empty());
        let debug = format!("{state:?}");
        assert!(!debug.contains("167, 167"), "{debug}");
        // A disconnect drops the parked answer and fetches the collection again.
        state.handle_disconnected();
        assert!(state.parked.is_empty());
        assert_eq!(state.fetch.get(&Collection::RegularHigh), Some(&false));
    }

    #[test]
    fn a_blob_answered_with_a_status_other_than_2xx_is_a_failed_download() {
        let mut parts = Parts::new();
        parts.config.media_origin = "http://127.0.0.1:9".to_owned();
        let mut state = AppState::default();
        let mut out = Outputs::default();
        let collection = Collection::RegularHigh;
        state.apply_decoded(
            collection,
            false,
            false,
            Ok((None, Some(reference("/v/t62/snapshot")), Vec::new())),
            &mut parts.ctx(0),
            &mut out,
        );
        let asked = fetched(&mut out);
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].1, "http://127.0.0.1:9/v/t62/snapshot");
        let not_found = Ok(crate::client::FetchResponse::new(404, b"not here".to_vec()));
        state.handle_fetched(asked[0].0, not_found, &mut parts.ctx(1), &mut out);
        assert!(state.parked.is_empty());
        assert_eq!(state.blob_failures.get(&collection), Some(&1));
        // A second answer to the same fetch is ignored.
        state.handle_fetched(
            asked[0].0,
            Err(crate::client::FetchError::Network),
            &mut parts.ctx(2),
            &mut out,
        );
        assert_eq!(state.blob_failures.get(&collection), Some(&1));
    }

    #[test]
    fn failed_blobs_retry_then_ask_for_a_snapshot_then_are_fatal() {
        let mut state = AppState::default();
        let mut out = Outputs::default();
        let collection = Collection::RegularLow;
        for _ in 0..APPSTATE_CLIENT_MAX_BLOB_RETRIES {
            state.blob_failed(collection, false, AppStateFailure::Download, &mut out);
            assert_eq!(state.fetch.remove(&collection), Some(false));
        }
        state.blob_failed(collection, false, AppStateFailure::Download, &mut out);
        assert_eq!(state.fetch.remove(&collection), Some(true));
        assert!(events(&mut out).is_empty());
        let corrupt = AppStateFailure::Patch(PatchError::ValueMacMismatch);
        state.blob_failed(collection, true, corrupt.clone(), &mut out);
        assert!(state.fetch.is_empty());
        assert_eq!(
            events(&mut out),
            vec![Event::AppStateFatal {
                collection,
                error: corrupt
            }]
        );
        // The count starts again after the fatal report.
        assert!(!state.blob_failures.contains_key(&collection));
    }

    #[test]
    fn key_requests_wait_longer_each_time_and_are_bounded() {
        assert_eq!(key_request_wait(1), APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS);
        assert_eq!(key_request_wait(2), 2 * APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS);
        assert_eq!(key_request_wait(3), 4 * APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS);
        // No overflow whatever the count.
        assert!(key_request_wait(u32::MAX) >= key_request_wait(3));
    }

    #[test]
    fn a_patch_whose_external_mutations_arrived_is_not_parked_again() {
        let reference = wa::ExternalBlobReference {
            media_key: Some(vec![1; 32]),
            direct_path: Some("/v/t/x.enc".to_owned()),
            file_enc_sha256: Some(vec![2; 32]),
            ..Default::default()
        };
        let patch = wa::SyncdPatch {
            external_mutations: Some(reference),
            ..Default::default()
        };
        let collection = Collection::RegularHigh;
        let mut parts = Parts::new();
        let downloads = |out: &mut Outputs| fetched(out).len();

        // Mutations not downloaded yet: parked, one download asked.
        let mut state = AppState::default();
        let mut out = Outputs::default();
        let decoded = Ok((None, None, vec![(patch.clone(), None)]));
        state.apply_decoded(
            collection,
            false,
            false,
            decoded,
            &mut parts.ctx(0),
            &mut out,
        );
        assert_eq!(downloads(&mut out), 1);
        assert!(state.parked.contains_key(&collection));

        // Downloaded: applied (here it fails to verify and takes the ladder), never re-parked.
        let mut state = AppState::default();
        let mut out = Outputs::default();
        let mutations = wa::SyncdMutations::default();
        let decoded = Ok((None, None, vec![(patch, Some(mutations))]));
        state.apply_decoded(
            collection,
            false,
            false,
            decoded,
            &mut parts.ctx(0),
            &mut out,
        );
        assert_eq!(downloads(&mut out), 0);
        assert!(state.parked.is_empty());
    }
}
