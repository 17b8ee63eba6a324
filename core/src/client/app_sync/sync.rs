//! The sync IQ: sending the next one when the IQ is free, and applying its answer (or taking
//! the recovery its failure calls for).

use crate::appstate::{Collection, PatchError, Recovery, decode_patch, decode_snapshot};
use crate::binary::Node;
use crate::limits::APPSTATE_CLIENT_MAX_REFETCHES;
use crate::proto::wa;

use super::super::command::CommandError;
use super::super::context::Context;
use super::super::event::Event;
use super::super::iq::{self, IqError, IqResult};
use super::super::output::Outputs;
use super::blobs::external_reference;
use super::events::{AppStateFailure, done};
use super::slot::{InFlight, Load};
use super::{AppStateIq, AppSync, Decoded, XMLNS};

impl AppSync {
    /// Sends the next IQ when it is free: a sync of the due collections first, then the next
    /// command's patch.
    pub(super) fn pump(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        let parked = Collection::ALL.iter().any(|c| self.is_parked(*c));
        if !matches!(self.in_flight, InFlight::None) || parked || !ctx.is_connected() {
            return;
        }
        if self.load != Load::Loaded {
            self.start_load(ctx, out);
            return;
        }
        let wanted: Vec<(Collection, bool)> = self
            .slots
            .iter_mut()
            .filter_map(|(collection, slot)| Some((*collection, slot.due.take()?)))
            .collect();
        if !wanted.is_empty() {
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
                Ok(_) => self.in_flight = InFlight::Sync,
                Err(_) => {
                    for (collection, snapshot) in wanted {
                        self.slot_mut(collection).due = Some(snapshot);
                    }
                }
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
                        Ok(_) => self.in_flight = InFlight::Send(Box::new((queued, outgoing))),
                        Err(_) => done(out, queued.id, Err(CommandError::NotConnected)),
                    }
                    return;
                }
                Err(error) => done(out, queued.id, Err(error)),
            }
        }
    }

    /// The answer to a sync of `wanted`.
    pub(super) fn sync_answer(
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
                    self.slot_mut(*collection).want(*snapshot);
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
            let (code, text) = iq::code_and_text(node.child("error"));
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
    pub(super) fn apply_decoded(
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
                self.slot_mut(collection).refetches = 0;
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
                    self.slot_mut(collection).want(false);
                }
            }
            Err(error) => self.recover(collection, snapshot_asked, error, out),
        }
    }

    /// Follows `PatchError::recovery()`: wait for keys, refetch (a snapshot after too many
    /// refetches in a row), fetch a snapshot once, or report the collection fatal.
    pub(super) fn recover(
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
                self.wait_for_keys(collection, ids);
            }
            Recovery::Ignore => {}
            Recovery::FetchMissingPatches => {
                let slot = self.slot_mut(collection);
                slot.refetches += 1;
                let snapshot = slot.refetches > APPSTATE_CLIENT_MAX_REFETCHES;
                slot.want(snapshot);
            }
            Recovery::FetchSnapshot if !snapshot_asked => {
                self.slot_mut(collection).due = Some(true);
            }
            Recovery::FetchSnapshot | Recovery::Fatal => out.event(Event::AppStateFatal {
                collection,
                error: AppStateFailure::Patch(error),
            }),
        }
    }
}
