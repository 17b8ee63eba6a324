//! App-state sync in walink-sim: the server's per-account patch storage, the sync IQ, the
//! `server_sync` push, and the phone as the keeper of the sync keys.
//!
//! The server stores each collection's patches in order (version n is the n-th patch) and,
//! every [`SNAPSHOT_EVERY`] versions, a snapshot the phone builds (a real primary uploads
//! snapshots; here the phone, which holds the keys, builds them from the records it tracks).
//! `<iq xmlns="w:sync:app:state" type="set"><sync><collection name version return_snapshot>`
//! is answered with the patches after `version` (at most [`MAX_PATCHES_PER_ANSWER`], then
//! `has_more_patches="true"`), or the latest snapshot and the patches after it. A
//! `<collection version><patch>` from a device is stored as the next version when `version`
//! is the current one (else a 409 conflict), applied by the phone, and announced to the
//! account's other companions with `<notification type="server_sync">`.
//!
//! Snapshots travel inline in `<snapshot>` (the bytes of a `SyncdSnapshot`) by default, or,
//! as WhatsApp sends them, as an `ExternalBlobReference` to an encrypted `md-app-state` blob in
//! the server's blob store (`set_app_state_external_snapshots`). Likewise a patch whose
//! mutations exceed [`EXTERNAL_MUTATIONS_ABOVE`] bytes is served with its mutations in such a
//! blob (`externalMutations`, a `SyncdMutations`) when `set_app_state_external_mutations` is on.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use prost::Message as _;
use rand_core::{TryCryptoRng, TryRng};
use walink_core::appstate::{
    ChatSettings, Collection, CollectionState, KeyId, KeyRing, Mac, SettingsView, SyncAction,
    SyncKey, encode_patch, snapshot_from_records,
};
use walink_core::binary::{DEFAULT_USER_SERVER, Jid, Node};
use walink_core::proto::wa;

use super::{ConnId, Server, SimError, Timestamp, bundle_of, iq_error, iq_result, seconds};
use crate::sim::rng::SimRng;

/// The phone uploads a snapshot every this many versions of a collection.
pub const SNAPSHOT_EVERY: u64 = 4;

/// Patches in one answer; the rest follow after `has_more_patches="true"`.
pub const MAX_PATCHES_PER_ANSWER: usize = 8;

/// A patch whose encoded mutations are longer than this many bytes is served with its mutations
/// in an external blob (when the account's external mutations are on). WhatsApp moves large
/// patches' mutations out of the stanza the same way; its exact threshold is not public, so the
/// simulation picks one that a patch of a few mutations crosses and a single mutation does not.
pub const EXTERNAL_MUTATIONS_ABOVE: usize = 1024;

/// One collection on the server, and the phone's view of it.
#[derive(Debug, Default)]
struct SimCollection {
    /// The stored patches; version n is `patches[n - 1]`.
    patches: Vec<Vec<u8>>,
    /// The latest snapshot: its version and its encoding.
    snapshot: Option<(u64, Vec<u8>)>,
    /// The phone's state of the collection.
    phone: CollectionState,
    /// The records the collection holds now, by index MAC (for snapshots).
    records: BTreeMap<Mac, wa::SyncdRecord>,
}

/// The app-state side of one account.
#[derive(Debug, Default)]
pub(crate) struct AccountAppState {
    key: Option<SyncKey>,
    shared: BTreeSet<u16>,
    auto_share: bool,
    collections: BTreeMap<Collection, SimCollection>,
    view: SettingsView,
    phone_errors: Vec<String>,
    tamper_patches: BTreeSet<u16>,
    tamper_snapshots: BTreeSet<u16>,
    snapshots_served: u64,
    snapshot_requests: u64,
    conflicts: u64,
    /// Snapshots are served as external blobs (WhatsApp's form) rather than inline.
    external_snapshots: bool,
    /// Large patches are served with their mutations in an external blob.
    external_mutations: bool,
    /// How many patches were served with external mutations.
    external_patches_served: u64,
    /// The phone leaves key requests unanswered (a primary that is offline).
    ignore_key_requests: bool,
    /// Key requests the phone received from companions.
    key_requests: u64,
}

/// The app-state side of every account.
#[derive(Debug, Default)]
pub(crate) struct AppStates {
    accounts: BTreeMap<String, AccountAppState>,
}

/// The server's generator as a `rand_core` source for `encode_patch`.
struct Rng<'a>(&'a mut SimRng);

impl TryRng for Rng<'_> {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.0.next_u64().to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or_default());
        }
        Ok(())
    }
}

impl TryCryptoRng for Rng<'_> {}

fn flip_last(bytes: &mut Option<Vec<u8>>) {
    if let Some(last) = bytes.as_mut().and_then(|b| b.last_mut()) {
        *last ^= 0x01;
    }
}

impl Server {
    fn app_account(&mut self, user: &str) -> &mut AccountAppState {
        self.app_state.accounts.entry(user.to_owned()).or_default()
    }

    /// The phone's app-state sync key, made on first use.
    fn phone_app_key(&mut self, now: Timestamp, user: &str) -> SyncKey {
        if let Some(key) = self.app_account(user).key.clone() {
            return key;
        }
        let id = self.rng.bytes::<6>();
        let data = self.rng.bytes::<32>();
        // A six-byte id is always valid.
        let id = KeyId::new(&id).unwrap_or_else(|_| unreachable!("six-byte key id"));
        let key = SyncKey::new(id, data, None, i64::try_from(now).unwrap_or(0));
        self.app_account(user).key = Some(key.clone());
        key
    }

    /// The phone shares its app-state keys with companion `device` in an encrypted
    /// `AppStateSyncKeyShare` protocol message.
    pub fn phone_share_app_state_keys(
        &mut self,
        now: Timestamp,
        user: &str,
        device: u16,
    ) -> Result<(), SimError> {
        let key = self.phone_app_key(now, user);
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
        self.phone_send_to_companion(now, user, device, &message)?;
        self.app_account(user).shared.insert(device);
        Ok(())
    }

    /// A companion of `user` asked for app-state keys: the phone shares them, unless it
    /// ignores key requests ([`Server::set_app_state_ignore_key_requests`]).
    pub(super) fn phone_answer_app_state_key_request(
        &mut self,
        now: Timestamp,
        user: &str,
        device: u16,
    ) {
        let state = self.app_account(user);
        state.key_requests += 1;
        if !state.ignore_key_requests {
            let _ = self.phone_share_app_state_keys(now, user, device);
        }
    }

    /// The phone leaves app-state key requests unanswered (`true`), as a primary that is off
    /// line does, or answers them again (`false`, the default).
    pub fn set_app_state_ignore_key_requests(&mut self, user: &str, ignore: bool) {
        self.app_account(user).ignore_key_requests = ignore;
    }

    /// How many app-state key requests the phone of `user` received.
    pub fn app_state_key_requests(&self, user: &str) -> u64 {
        self.app_state
            .accounts
            .get(user)
            .map_or(0, |a| a.key_requests)
    }

    /// Whether the phone shares its keys with a companion on its own the first time the
    /// companion becomes active, as a real primary does after linking. Off by default, so that
    /// tests of other areas see no extra message; app-state tests turn it on.
    pub fn set_app_state_auto_share(&mut self, user: &str, auto: bool) {
        self.app_account(user).auto_share = auto;
    }

    /// Corrupts what the server serves to companion `device`: every patch's MAC
    /// (`patches`), every snapshot's MAC (`snapshots`).
    pub fn tamper_app_state(&mut self, user: &str, device: u16, patches: bool, snapshots: bool) {
        let state = self.app_account(user);
        if patches {
            state.tamper_patches.insert(device);
        } else {
            state.tamper_patches.remove(&device);
        }
        if snapshots {
            state.tamper_snapshots.insert(device);
        } else {
            state.tamper_snapshots.remove(&device);
        }
    }

    /// The phone's settings of `chat`.
    pub fn phone_chat_settings(&self, user: &str, chat: &str) -> ChatSettings {
        self.app_state
            .accounts
            .get(user)
            .map(|a| a.view.chat(chat))
            .unwrap_or_default()
    }

    /// Patches the phone could not apply (always empty when every device is honest).
    pub fn phone_app_state_errors(&self, user: &str) -> Vec<String> {
        self.app_state
            .accounts
            .get(user)
            .map(|a| a.phone_errors.clone())
            .unwrap_or_default()
    }

    /// Serve the snapshots of `user` as external blobs: the `SyncdSnapshot` is encrypted as
    /// `md-app-state` media, stored in the blob store, and `<snapshot>` holds its
    /// `ExternalBlobReference` (as WhatsApp does). Off: inline snapshot bytes.
    pub fn set_app_state_external_snapshots(&mut self, user: &str, on: bool) {
        self.app_account(user).external_snapshots = on;
    }

    /// Serve the patches of `user` whose mutations exceed [`EXTERNAL_MUTATIONS_ABOVE`] bytes
    /// with their mutations in an external blob (`SyncdPatch.externalMutations`, the patch's
    /// inline mutations empty), as WhatsApp does. Off: every patch inline.
    pub fn set_app_state_external_mutations(&mut self, user: &str, on: bool) {
        self.app_account(user).external_mutations = on;
    }

    /// How many patches of `user` were served with external mutations.
    pub fn app_state_external_patches_served(&self, user: &str) -> u64 {
        self.app_state
            .accounts
            .get(user)
            .map_or(0, |a| a.external_patches_served)
    }

    /// A stored patch as served: with its mutations moved into an external blob when they are
    /// large and the account's external mutations are on.
    fn app_state_patch_as_served(&mut self, user: &str, bytes: Vec<u8>) -> Vec<u8> {
        if !self.app_account(user).external_mutations {
            return bytes;
        }
        let Ok(mut patch) = wa::SyncdPatch::decode(bytes.as_slice()) else {
            return bytes;
        };
        let mutations = wa::SyncdMutations {
            mutations: std::mem::take(&mut patch.mutations),
        }
        .encode_to_vec();
        if mutations.len() <= EXTERNAL_MUTATIONS_ABOVE {
            return bytes;
        }
        let Some(reference) = self.app_state_blob(&mutations) else {
            return bytes;
        };
        patch.external_mutations = Some(reference);
        self.app_account(user).external_patches_served += 1;
        patch.encode_to_vec()
    }

    /// Stores `plain` as an encrypted `md-app-state` blob and returns its reference.
    fn app_state_blob(&mut self, plain: &[u8]) -> Option<wa::ExternalBlobReference> {
        use base64::Engine as _;
        use sha2::Digest as _;
        let media_key = self.rng.bytes::<32>();
        let (file, hashes) =
            walink_core::media::encrypt(&media_key, walink_core::media::MediaType::AppState, plain)
                .ok()?;
        let token =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&file));
        let direct_path = self.upload_blob("md-app-state", &token, &file).ok()?;
        Some(wa::ExternalBlobReference {
            media_key: Some(media_key.to_vec()),
            direct_path: Some(direct_path),
            handle: None,
            file_size_bytes: Some(file.len() as u64),
            file_sha256: Some(hashes.file_sha256.to_vec()),
            file_enc_sha256: Some(hashes.file_enc_sha256.to_vec()),
        })
    }

    /// How many sync requests asked for a snapshot, and how many snapshots were served.
    pub fn app_state_snapshot_counts(&self, user: &str) -> (u64, u64) {
        self.app_state
            .accounts
            .get(user)
            .map_or((0, 0), |a| (a.snapshot_requests, a.snapshots_served))
    }

    /// How many uploaded patches were refused with a 409 conflict.
    pub fn app_state_conflicts(&self, user: &str) -> u64 {
        self.app_state.accounts.get(user).map_or(0, |a| a.conflicts)
    }

    /// The server's version of a collection of `user`.
    pub fn app_state_version(&self, user: &str, collection: Collection) -> u64 {
        self.app_state
            .accounts
            .get(user)
            .and_then(|a| a.collections.get(&collection))
            .map_or(0, |c| c.patches.len() as u64)
    }

    /// The phone applies `actions` (all of one collection) as one patch: stored as the next
    /// version and announced to every companion.
    pub fn phone_app_state(
        &mut self,
        now: Timestamp,
        user: &str,
        actions: &[SyncAction],
    ) -> Result<(), SimError> {
        if !self.accounts.contains_key(user) {
            return Err(SimError::UnknownAccount(user.to_owned()));
        }
        let collection = actions
            .first()
            .ok_or(SimError::AppState(
                walink_core::appstate::PatchError::InvalidPatch,
            ))?
            .collection()
            .map_err(SimError::AppState)?;
        let key = self.phone_app_key(now, user);
        let state = self
            .app_account(user)
            .collections
            .get(&collection)
            .map(|c| c.phone.clone())
            .unwrap_or_default();
        let outgoing = encode_patch(
            &state,
            collection,
            &key,
            actions,
            i64::try_from(now).unwrap_or(0),
            &mut Rng(&mut self.rng),
        )
        .map_err(SimError::AppState)?;
        self.store_patch(now, user, 0, collection, outgoing.patch);
        Ok(())
    }

    /// Stores `patch` as the next version of `collection`, lets the phone apply it, and
    /// announces it to every companion but `origin`.
    fn store_patch(
        &mut self,
        now: Timestamp,
        user: &str,
        origin: u16,
        collection: Collection,
        mut patch: wa::SyncdPatch,
    ) {
        let key = self.phone_app_key(now, user);
        let state = self.app_account(user);
        let sim = state.collections.entry(collection).or_default();
        let version = sim.patches.len() as u64 + 1;
        patch.version = Some(wa::SyncdVersion {
            version: Some(version),
        });
        sim.patches.push(patch.encode_to_vec());
        let mut ring = KeyRing::new();
        ring.insert(key.clone());
        match sim.phone.apply_patch(collection, &patch, None, &ring) {
            Ok(applied) => {
                sim.phone = applied.state;
                for mutation in &patch.mutations {
                    let Some(record) = mutation.record.clone() else {
                        continue;
                    };
                    let Some(index_mac) = record
                        .index
                        .as_ref()
                        .and_then(|i| i.blob.as_deref())
                        .and_then(|b| Mac::try_from(b).ok())
                    else {
                        continue;
                    };
                    if mutation.operation == Some(wa::syncd_mutation::SyncdOperation::Remove as i32)
                    {
                        sim.records.remove(&index_mac);
                    } else {
                        sim.records.insert(index_mac, record);
                    }
                }
                state.view.apply_mutations(&applied.mutations);
            }
            Err(error) => state
                .phone_errors
                .push(format!("{} v{version}: {error}", collection.name())),
        }
        if version.is_multiple_of(SNAPSHOT_EVERY)
            && let Ok(snapshot) = snapshot_from_records(
                collection,
                &key,
                version,
                sim.records.values().cloned().collect(),
            )
        {
            sim.snapshot = Some((version, snapshot.encode_to_vec()));
        }
        let companions: Vec<u16> = self
            .accounts
            .get(user)
            .map(|a| {
                a.devices
                    .keys()
                    .copied()
                    .filter(|&d| d != 0 && d != origin)
                    .collect()
            })
            .unwrap_or_default();
        for device in companions {
            let notification = Node::new("notification")
                .attr("from", Jid::server_jid())
                .attr("id", self.new_id())
                .attr("type", "server_sync")
                .attr("t", seconds(now))
                .children_from([Node::new("collection")
                    .attr("name", collection.name())
                    .attr("version", version.to_string())]);
            self.deliver(user, device, notification);
        }
    }

    /// A companion became active: the phone shares its keys the first time.
    pub(super) fn app_state_companion_active(&mut self, now: Timestamp, session: &(String, u16)) {
        let (user, device) = (session.0.clone(), session.1);
        let state = self.app_account(&user);
        if device == 0 || !state.auto_share || state.shared.contains(&device) {
            return;
        }
        let _ = self.phone_share_app_state_keys(now, &user, device);
    }

    /// `<iq xmlns="w:sync:app:state" type="set">`: fetches and outgoing patches.
    pub(super) fn app_state_iq(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        id: &str,
        node: &Node,
    ) {
        let Some(sync) = node.child("sync") else {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        };
        let (user, device) = (session.0.clone(), session.1);
        let mut answers = Vec::new();
        for request in sync.children_by_tag("collection") {
            let Some(collection) = request
                .attr_str("name")
                .and_then(|n| Collection::from_name(n).ok())
            else {
                self.send(conn, &iq_error(id, 400, "bad-request"));
                return;
            };
            let version: u64 = request
                .attr_str("version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if let Some(patch) = request.child("patch") {
                answers.push(self.app_state_upload(now, &user, device, collection, version, patch));
            } else {
                let snapshot = request.attr_str("return_snapshot") == Some("true");
                answers.push(self.app_state_fetch(&user, device, collection, version, snapshot));
            }
        }
        self.send(
            conn,
            &iq_result(id, vec![Node::new("sync").children_from(answers)]),
        );
    }

    fn app_state_upload(
        &mut self,
        now: Timestamp,
        user: &str,
        device: u16,
        collection: Collection,
        base: u64,
        patch: &Node,
    ) -> Node {
        let current = self.app_state_version(user, collection);
        let decoded = patch
            .content_bytes()
            .and_then(|bytes| wa::SyncdPatch::decode(bytes).ok());
        let error = |code: u16, text: &str| {
            Node::new("collection")
                .attr("name", collection.name())
                .attr("type", "error")
                .children_from([Node::new("error")
                    .attr("code", code.to_string())
                    .attr("text", text.to_owned())])
        };
        let Some(decoded) = decoded else {
            return error(400, "bad-request");
        };
        if base != current {
            self.app_account(user).conflicts += 1;
            return error(409, "conflict");
        }
        self.store_patch(now, user, device, collection, decoded);
        Node::new("collection")
            .attr("name", collection.name())
            .attr("version", (current + 1).to_string())
    }

    fn app_state_fetch(
        &mut self,
        user: &str,
        device: u16,
        collection: Collection,
        version: u64,
        snapshot: bool,
    ) -> Node {
        let state = self.app_account(user);
        if snapshot {
            state.snapshot_requests += 1;
        }
        let tamper_patches = state.tamper_patches.contains(&device);
        let tamper_snapshots = state.tamper_snapshots.contains(&device);
        let external = state.external_snapshots;
        let sim = state.collections.entry(collection).or_default();
        let current = sim.patches.len() as u64;
        let mut children = Vec::new();
        let mut from = version.min(current);
        let mut served_snapshot = false;
        if snapshot && let Some((at, bytes)) = sim.snapshot.clone() {
            let mut bytes = bytes;
            if tamper_snapshots && let Ok(mut decoded) = wa::SyncdSnapshot::decode(bytes.as_slice())
            {
                flip_last(&mut decoded.mac);
                bytes = decoded.encode_to_vec();
            }
            children.push(bytes);
            from = at;
            served_snapshot = true;
        } else if snapshot {
            from = 0;
        }
        let end = current.min(from + MAX_PATCHES_PER_ANSWER as u64);
        let stored: Vec<Vec<u8>> = (from..end)
            .filter_map(|index| sim.patches.get(usize::try_from(index).ok()?).cloned())
            .map(|bytes| {
                let mut bytes = bytes;
                if tamper_patches && let Ok(mut decoded) = wa::SyncdPatch::decode(bytes.as_slice())
                {
                    flip_last(&mut decoded.patch_mac);
                    bytes = decoded.encode_to_vec();
                }
                bytes
            })
            .collect();
        if served_snapshot {
            state.snapshots_served += 1;
        }
        let patches: Vec<Node> = stored
            .into_iter()
            .map(|bytes| Node::new("patch").bytes(self.app_state_patch_as_served(user, bytes)))
            .collect();
        let mut children: Vec<Node> = children
            .into_iter()
            .filter_map(|bytes| {
                if !external {
                    return Some(Node::new("snapshot").bytes(bytes));
                }
                let reference = self.app_state_blob(&bytes)?;
                Some(Node::new("snapshot").bytes(reference.encode_to_vec()))
            })
            .collect();
        if !patches.is_empty() {
            children.push(Node::new("patches").children_from(patches));
        }
        let node = Node::new("collection")
            .attr("name", collection.name())
            .attr("version", current.to_string())
            .attr(
                "has_more_patches",
                if end < current { "true" } else { "false" },
            );
        if children.is_empty() {
            node
        } else {
            node.children_from(children)
        }
    }

    /// The phone sends `message` to its own companion `device` (a fresh session from the
    /// companion's prekeys when it has none).
    fn phone_send_to_companion(
        &mut self,
        now: Timestamp,
        user: &str,
        device: u16,
        message: &wa::Message,
    ) -> Result<(), SimError> {
        let address = Jid::device(user.to_owned(), device, DEFAULT_USER_SERVER).to_string();
        let has = self
            .accounts
            .get(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?
            .phone
            .has_session(&address);
        if !has {
            let bundle = {
                let target = self
                    .accounts
                    .get_mut(user)
                    .and_then(|a| a.devices.get_mut(&device))
                    .ok_or_else(|| SimError::UnknownDevice(user.to_owned(), device))?;
                bundle_of(target)
            };
            self.check_prekeys_low(now, user, device);
            if let Some(account) = self.accounts.get_mut(user) {
                account.phone.start_session(&address, &bundle)?;
            }
        }
        let id = self.new_id();
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        let (enc_type, ciphertext) = account.phone.encrypt(&address, message)?;
        let stanza = Node::new("message")
            .attr("from", account.jid())
            .attr("id", id)
            .attr("type", "text")
            .attr("category", "peer")
            .attr("t", seconds(now))
            .children_from([Node::new("enc")
                .attr("v", "2")
                .attr("type", enc_type)
                .bytes(ciphertext)]);
        self.deliver(user, device, stanza);
        Ok(())
    }
}
