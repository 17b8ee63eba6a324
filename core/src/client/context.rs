//! What a sub-machine may touch while it handles one input: the device, the connection, the
//! IQ table, loads and the generator, plus requests that `client/mod.rs` carries out after the
//! sub-machine returns (close the connection, refill prekeys).

use crate::binary::{Jid, Node};
use crate::store::{Batch, RecordKey};

use super::Timestamp;
use super::config::Config;
use super::connection::{Connection, SendError};
use super::device::Device;
use super::fetch::{FetchId, FetchRequest, FetchTag, Fetches};
use super::iq::{IqTag, Iqs};
use super::messaging::MessagingLoad;
use super::output::{CloseReason, LoadId, Output, Outputs};
use super::rng::Rng;

/// Who asked for a load, and so who gets its records.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoadTag {
    /// A load of the messaging module.
    Messaging(MessagingLoad),
    /// A load of the app-state module.
    AppState(super::app_state::AppStateLoad),
}

/// Loads awaiting their answer.
#[allow(dead_code)]
#[derive(Debug, Default)]
pub(crate) struct Loads {
    next: u64,
    pending: Vec<(LoadId, LoadTag)>,
}

impl Loads {
    /// The tag of an answered load (`None` for an unknown or repeated id).
    // While no module defines a load tag the type is uninhabited and the tail unreachable.
    #[allow(unreachable_code)]
    pub(crate) fn take(&mut self, id: LoadId) -> Option<LoadTag> {
        let index = self
            .pending
            .iter()
            .position(|(pending, _)| *pending == id)?;
        let (_, tag) = self.pending.swap_remove(index);
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
        Some(tag)
    }
}

/// What sub-machines ask `client/mod.rs` to do once they return.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    /// Close the connection for this reason.
    pub(crate) close: Option<CloseReason>,
    /// Upload a fresh batch of one-time prekeys.
    pub(crate) refill_prekeys: bool,
    /// App-state sync keys that arrived in a key share (already persisted).
    pub(crate) app_state_keys: Vec<crate::appstate::SyncKey>,
    /// An app-state key request to send to this account's own devices.
    pub(crate) app_state_key_request: Option<crate::proto::wa::Message>,
    /// History-sync notifications from our own phone (already acknowledged).
    pub(crate) history_notifications: Vec<crate::proto::wa::message::HistorySyncNotification>,
    /// Phone-number users and their LID users, to store.
    pub(crate) lid_mappings: Vec<(String, String)>,
}

/// The shared parts of the client, lent to one sub-machine for one input. Some helpers exist
/// for the messaging module and are unused until it needs them.
#[allow(dead_code)]
pub(crate) struct Context<'a> {
    /// The time of the input.
    pub(crate) now: Timestamp,
    /// The configuration.
    pub(crate) config: &'a Config,
    /// The device's own keys and addresses.
    pub(crate) device: &'a mut Device,
    /// The client's generator.
    pub(crate) rng: &'a mut Rng,
    /// The connection.
    pub(crate) conn: &'a mut Connection,
    /// IQs awaiting answers.
    pub(crate) iqs: &'a mut Iqs,
    /// Loads awaiting answers.
    pub(crate) loads: &'a mut Loads,
    /// Fetches awaiting answers.
    pub(crate) fetches: &'a mut Fetches,
    /// Requests to mod.rs.
    pub(crate) requests: &'a mut Requests,
    /// Whether the client is logged in (`State::Connected`).
    pub(crate) connected: bool,
}

#[allow(dead_code)]
impl Context<'_> {
    /// Whether the client is logged in and the post-login round trip succeeded.
    pub(crate) fn is_connected(&self) -> bool {
        self.connected && self.conn.is_open()
    }

    /// Own phone-number device JID, once paired.
    pub(crate) fn own_jid(&self) -> Option<&Jid> {
        self.device.jid()
    }

    /// Own LID device JID, once known.
    pub(crate) fn own_lid(&self) -> Option<&Jid> {
        self.device.lid()
    }

    /// Encrypts and transmits `node`. A cipher failure also requests closing the connection.
    pub(crate) fn send(&mut self, node: &Node, out: &mut Outputs) -> Result<(), SendError> {
        let result = self.conn.send(node, out);
        if let Err(SendError::Failed(error)) = &result {
            self.requests.close = Some(CloseReason::Protocol(error.clone()));
        }
        result
    }

    /// Sends the IQ `iq` (built without id, see `iq::iq`) and awaits its answer for
    /// `timeout_ms` (the configured IQ timeout when `None`); the answer goes to `tag`'s owner.
    /// Returns the IQ's id.
    pub(crate) fn send_iq(
        &mut self,
        mut iq: Node,
        tag: IqTag,
        timeout_ms: Option<u64>,
        out: &mut Outputs,
    ) -> Result<String, SendError> {
        if !self.conn.is_open() {
            return Err(SendError::NotOpen);
        }
        if !self.iqs.has_room() {
            return Err(SendError::Failed(super::output::ProtocolError::Unexpected(
                "too many pending iqs".to_owned(),
            )));
        }
        let deadline = self
            .now
            .saturating_add(timeout_ms.unwrap_or(self.config.iq_timeout_ms));
        let id = self.iqs.register(&mut iq, tag, deadline);
        self.send(&iq, out)?;
        Ok(id)
    }

    /// Acknowledges a received `<message>`, `<receipt>`, `<notification>` or `<call>` stanza.
    pub(crate) fn ack(&mut self, stanza: &Node, out: &mut Outputs) {
        let _ = self.send(&super::stanza::ack_for(stanza), out);
    }

    /// Asks the host for records; the answer goes to `tag`'s owner.
    pub(crate) fn load(&mut self, keys: Vec<RecordKey>, tag: LoadTag, out: &mut Outputs) -> LoadId {
        self.loads.next += 1;
        let id = LoadId(self.loads.next);
        self.loads.pending.push((id, tag));
        out.push(Output::Load { id, keys });
        id
    }

    /// Asks the host for an HTTPS request; the answer goes to `tag`'s owner.
    pub(crate) fn fetch(
        &mut self,
        request: FetchRequest,
        tag: FetchTag,
        out: &mut Outputs,
    ) -> FetchId {
        let id = self.fetches.register(tag);
        out.push(Output::Fetch { id, request });
        id
    }

    /// Queues a batch to persist (before any later output).
    pub(crate) fn persist(&mut self, batch: Batch, out: &mut Outputs) {
        out.persist(batch);
    }

    /// Asks mod.rs to close the connection for `reason` once the current input is handled.
    pub(crate) fn close(&mut self, reason: CloseReason) {
        if self.requests.close.is_none() {
            self.requests.close = Some(reason);
        }
    }

    /// Asks mod.rs to upload a fresh batch of one-time prekeys.
    pub(crate) fn refill_prekeys(&mut self) {
        self.requests.refill_prekeys = true;
    }
}

/// The parts a [`Context`] borrows, owned, for the sub-machines' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::noise::payload::{ClientProfile, WebVersion};

    /// Everything a `Context` lends, with a seeded generator and a fresh device.
    pub(crate) struct Parts {
        pub(crate) config: Config,
        pub(crate) device: Device,
        pub(crate) rng: Rng,
        pub(crate) conn: Connection,
        pub(crate) iqs: Iqs,
        pub(crate) loads: Loads,
        pub(crate) fetches: Fetches,
        pub(crate) requests: Requests,
    }

    impl Parts {
        /// Fresh parts: a new device, a closed connection, nothing pending.
        pub(crate) fn new() -> Parts {
            let mut rng = Rng::from_seed([4; 32]);
            let (device, _) = Device::generate(&mut rng);
            Parts {
                config: Config::new(ClientProfile::new(WebVersion::new(2, 3000, 1), "walink")),
                device,
                rng,
                conn: Connection::default(),
                iqs: Iqs::default(),
                loads: Loads::default(),
                fetches: Fetches::default(),
                requests: Requests::default(),
            }
        }

        /// A context over these parts at `now`.
        pub(crate) fn ctx(&mut self, now: Timestamp) -> Context<'_> {
            Context {
                now,
                config: &self.config,
                device: &mut self.device,
                rng: &mut self.rng,
                conn: &mut self.conn,
                iqs: &mut self.iqs,
                loads: &mut self.loads,
                fetches: &mut self.fetches,
                requests: &mut self.requests,
                connected: false,
            }
        }
    }
}
