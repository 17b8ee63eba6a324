//! Where each collection stands, where the states load stands, and what the one IQ carries.
//!
//! A collection's [`Slot`] holds one [`Phase`] (ready, waiting for keys, or downloading the
//! blobs of a parked answer), whether a sync of it is due at the next free IQ, and its retry
//! counts; the transitions live with the jobs that make them (`keys`, `blobs`, `sync`).

use crate::appstate::{KeyId, OutgoingPatch};

use super::super::Timestamp;
use super::blobs::Parked;
use super::commands::Queued;

/// What one collection waits for.
#[derive(Debug, Default)]
pub(super) enum Phase {
    /// Nothing: it is synced as far as the last answer went.
    #[default]
    Ready,
    /// Its last answer needed these keys; they were asked from the own devices, and are asked
    /// again on `timer` (set when the current input is handled).
    WaitingForKeys {
        ids: Vec<KeyId>,
        timer: Option<KeyRequestTimer>,
    },
    /// Its last answer is parked until the host downloaded its external blobs.
    /// Boxed: an answer is rarely parked, and five inline answers would grow every client.
    Downloading(Box<Parked>),
}

/// One collection's sync state.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) phase: Phase,
    /// A sync to send when the IQ is free (`Some(true)`: from a snapshot).
    pub(super) due: Option<bool>,
    /// Refetches in a row (a gap the server does not fill).
    pub(super) refetches: u32,
    /// Failed blob downloads in a row.
    pub(super) blob_failures: u32,
}

impl Slot {
    /// Marks a sync due (from a snapshot when `snapshot`, or when one was already asked for).
    pub(super) fn want(&mut self, snapshot: bool) {
        *self.due.get_or_insert(false) |= snapshot;
    }
}

/// The key request of a collection waiting for keys: how many were sent, and when the next
/// is due (or, after the last, when the wait ends fatally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyRequestTimer {
    pub(super) sent: u32,
    pub(super) due: Timestamp,
}

/// The load of the collection states and the view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Load {
    /// Not asked for yet.
    #[default]
    Unloaded,
    /// Asked from the host.
    Loading,
    /// Loaded, or given at start.
    Loaded,
}

/// The one app-state IQ at a time.
#[derive(Debug, Default)]
pub(super) enum InFlight {
    /// None: the next sync or command may go.
    #[default]
    None,
    /// A sync of some collections.
    Sync,
    /// A command's patch, kept to adopt its state when the server accepts it (boxed: the
    /// other variants are empty).
    Send(Box<(Queued, OutgoingPatch)>),
}
