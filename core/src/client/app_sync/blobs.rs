//! External blobs: a sync answer whose snapshot or patch mutations live on the media host is
//! parked while the host downloads them (`Output::Fetch`), and applied once all arrived.

use crate::appstate::{
    Collection, PatchError, decode_external_mutations, decode_snapshot, decrypt_external_blob,
};
use crate::limits::{
    APPSTATE_CLIENT_MAX_BLOB_RETRIES, APPSTATE_CLIENT_MAX_DOWNLOADS, APPSTATE_MAX_EXTERNAL_BLOB,
    CLIENT_FETCH_TIMEOUT_MS,
};
use crate::proto::wa;

use super::super::context::Context;
use super::super::endpoints::media_url;
use super::super::event::Event;
use super::super::fetch::{Body, FetchId, FetchRequest, FetchResult, Method, ResponseTarget};
use super::super::output::Outputs;
use super::events::AppStateFailure;
use super::slot::Phase;
use super::{AppStateBlob, AppSync};

/// Where a downloaded blob goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlobTarget {
    /// The collection's snapshot.
    Snapshot,
    /// The external mutations of the patch at this position.
    Patch(usize),
}

/// A sync answer parked until the host downloaded its external blobs.
pub(super) struct Parked {
    pub(super) snapshot_asked: bool,
    has_more: bool,
    snapshot: Option<wa::SyncdSnapshot>,
    patches: Vec<(wa::SyncdPatch, Option<wa::SyncdMutations>)>,
    /// The blobs still awaited, by fetch id (ascending), with their references (media keys
    /// inside). A few per answer: a list, not a map.
    pending: Vec<(FetchId, (BlobTarget, wa::ExternalBlobReference))>,
}

impl core::fmt::Debug for Parked {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The references hold media keys: only the ids and targets are shown.
        let pending: Vec<(&FetchId, &BlobTarget)> = self
            .pending
            .iter()
            .map(|(id, (target, _))| (id, target))
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
pub(super) fn external_reference(bytes: &[u8]) -> Option<wa::ExternalBlobReference> {
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

impl AppSync {
    /// Drops the parked answers (their downloads are ignored when they come) and fetches the
    /// collections again.
    pub(super) fn unpark_all(&mut self) {
        for collection in Collection::ALL {
            if let Some(parked) = self.take_parked(collection) {
                self.slot_mut(collection).want(parked.snapshot_asked);
            }
        }
    }

    /// Parks an answer that needs external blobs and asks the host for each of them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn park(
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
        let mut blobs: Vec<(BlobTarget, wa::ExternalBlobReference)> = Vec::new();
        if let Some(reference) = reference {
            blobs.push((BlobTarget::Snapshot, reference));
        }
        // Only what is still missing: a patch whose mutations were downloaded is complete.
        for (index, (patch, downloaded)) in patches.iter().enumerate() {
            if let Some(reference) = patch
                .external_mutations
                .as_ref()
                .filter(|_| downloaded.is_none())
            {
                blobs.push((BlobTarget::Patch(index), reference.clone()));
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
        for (target, reference) in blobs {
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
            parked.pending.push((id, (target, reference)));
        }
        self.slot_mut(collection).phase = Phase::Downloading(Box::new(parked));
    }

    /// The answer to a blob's `Output::Fetch`: the file as served, or why not.
    pub(crate) fn handle_fetched(
        &mut self,
        fetch: FetchId,
        result: FetchResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let found = self.slots.iter_mut().find_map(|(collection, slot)| {
            let Phase::Downloading(parked) = &mut slot.phase else {
                return None;
            };
            let at = parked.pending.iter().position(|(id, _)| *id == fetch)?;
            Some((*collection, parked.pending.remove(at).1))
        });
        // A download of an answer dropped meanwhile (a reconnect) is ignored.
        let Some((collection, (target, mut reference))) = found else {
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
                    let Some(slot) = self.slots.get_mut(&collection) else {
                        return Ok(());
                    };
                    let Phase::Downloading(parked) = &mut slot.phase else {
                        return Ok(());
                    };
                    match target {
                        BlobTarget::Snapshot => {
                            parked.snapshot = Some(decode_snapshot(&plain)?);
                        }
                        BlobTarget::Patch(index) => {
                            let mutations = decode_external_mutations(&plain)?;
                            if let Some((_, external)) = parked.patches.get_mut(index) {
                                *external = Some(mutations);
                            }
                        }
                    }
                    Ok(())
                })
                .map_err(AppStateFailure::Patch),
        };
        if let Some(key) = reference.media_key.as_mut() {
            zeroize::Zeroize::zeroize(key);
        }
        match opened {
            Err(failure) => {
                if let Some(parked) = self.take_parked(collection) {
                    self.blob_failed(collection, parked.snapshot_asked, failure, out);
                }
            }
            Ok(()) => {
                let complete = self.slots.get(&collection).is_some_and(
                    |slot| matches!(&slot.phase, Phase::Downloading(p) if p.pending.is_empty()),
                );
                if complete && let Some(mut parked) = self.take_parked(collection) {
                    let snapshot = parked.snapshot.take();
                    let patches = core::mem::take(&mut parked.patches);
                    self.slot_mut(collection).blob_failures = 0;
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

    /// The collection's parked answer, taken out (the collection is ready again).
    fn take_parked(&mut self, collection: Collection) -> Option<Box<Parked>> {
        let slot = self.slots.get_mut(&collection)?;
        match core::mem::take(&mut slot.phase) {
            Phase::Downloading(parked) => Some(parked),
            other => {
                slot.phase = other;
                None
            }
        }
    }

    /// The recovery ladder of a failed or corrupt blob: fetch the same again, then a snapshot,
    /// then report the collection fatal.
    pub(super) fn blob_failed(
        &mut self,
        collection: Collection,
        snapshot_asked: bool,
        failure: AppStateFailure,
        out: &mut Outputs,
    ) {
        let slot = self.slot_mut(collection);
        slot.blob_failures += 1;
        if slot.blob_failures <= APPSTATE_CLIENT_MAX_BLOB_RETRIES {
            slot.want(snapshot_asked);
        } else if !snapshot_asked {
            slot.due = Some(true);
        } else {
            slot.blob_failures = 0;
            out.event(Event::AppStateFatal {
                collection,
                error: failure,
            });
        }
    }
}
