//! What a sub-machine may touch while it handles one input: the device, the connection, the
//! IQ table, loads, fetches and the generator, through methods, plus [`Requests`] that
//! `client/mod.rs` carries out after the sub-machine returns (a state, close the connection,
//! refill prekeys, hand something to another sub-machine).

use crate::binary::{Jid, Node};
use crate::store::{Batch, RecordKey};

use super::Timestamp;
use super::command::CommandId;
use super::config::Config;
use super::connection::{Connection, SendError};
use super::device::Device;
use super::event::{State, StateReason};
use super::fetch::{FetchId, FetchRequest, Fetches};
use super::iq::Iqs;
use super::output::{CloseReason, LoadId, LocalFault, Output, Outputs, ProtocolError};
use super::owner::{AnyTag, Tag};
use super::rng::Rng;

/// Loads awaiting their answer.
#[derive(Debug, Default)]
pub(crate) struct Loads {
    next: u64,
    pending: Vec<(LoadId, AnyTag)>,
}

impl Loads {
    /// The tag of an answered load (`None` for an unknown or repeated id).
    pub(crate) fn take(&mut self, id: LoadId) -> Option<AnyTag> {
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

/// What sub-machines ask `client/mod.rs` to do once they return: their one way up. The
/// dispatcher carries it out after every step (`Client::step`), so no request waits for a
/// later input; sub-machines fill it through [`Context`]'s methods only.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    /// Enter this lifecycle state.
    pub(crate) state: Option<(State, StateReason)>,
    /// Close the connection for this reason.
    pub(crate) close: Option<CloseReason>,
    /// Upload a fresh batch of one-time prekeys.
    pub(crate) refill_prekeys: bool,
    /// App-state sync keys that arrived in a key share (already persisted).
    pub(crate) app_state_keys: Vec<crate::appstate::SyncKey>,
    /// An app-state key request to send to this account's own devices.
    pub(crate) app_state_key_request: Option<crate::proto::wa::Message>,
    /// History-sync notifications from our own phone (already acknowledged).
    pub(crate) history_notifications:
        Vec<(String, crate::proto::wa::message::HistorySyncNotification)>,
    /// Phone-number users and their LID users, to store.
    pub(crate) lid_mappings: Vec<(String, String)>,
    /// Messages to send for these commands (to, message), e.g. once their media is uploaded.
    pub(crate) messages: Vec<(CommandId, String, Box<crate::proto::wa::Message>)>,
}

/// The shared parts of the client, lent to one sub-machine for one input. Its fields are
/// private: a sub-machine reads and changes them through the methods below.
pub(crate) struct Context<'a> {
    now: Timestamp,
    config: &'a Config,
    device: &'a mut Device,
    rng: &'a mut Rng,
    conn: &'a mut Connection,
    iqs: &'a mut Iqs,
    loads: &'a mut Loads,
    fetches: &'a mut Fetches,
    requests: &'a mut Requests,
    /// Whether the client is logged in (`State::Connected`).
    connected: bool,
}

/// What a [`Context`] borrows (`client/mod.rs` lends its own fields).
pub(crate) struct Lent<'a> {
    pub(crate) config: &'a Config,
    pub(crate) device: &'a mut Device,
    pub(crate) rng: &'a mut Rng,
    pub(crate) conn: &'a mut Connection,
    pub(crate) iqs: &'a mut Iqs,
    pub(crate) loads: &'a mut Loads,
    pub(crate) fetches: &'a mut Fetches,
    pub(crate) requests: &'a mut Requests,
}

impl<'a> Context<'a> {
    /// A context over `lent` for an input at `now`; `connected` when the lifecycle is
    /// `State::Connected`.
    pub(crate) fn new(now: Timestamp, connected: bool, lent: Lent<'a>) -> Context<'a> {
        Context {
            now,
            config: lent.config,
            device: lent.device,
            rng: lent.rng,
            conn: lent.conn,
            iqs: lent.iqs,
            loads: lent.loads,
            fetches: lent.fetches,
            requests: lent.requests,
            connected,
        }
    }
}

impl Context<'_> {
    /// The time of the input.
    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &Config {
        self.config
    }

    /// The device's own keys and addresses.
    pub(crate) fn device(&self) -> &Device {
        self.device
    }

    /// The device, to change (every change returns the batch to persist).
    pub(crate) fn device_mut(&mut self) -> &mut Device {
        self.device
    }

    /// The client's generator.
    pub(crate) fn rng(&mut self) -> &mut Rng {
        self.rng
    }

    /// `count` fresh one-time prekeys and the batch that stores them.
    pub(crate) fn generate_pre_keys(&mut self, count: u32) -> (Vec<(u32, [u8; 32])>, Batch) {
        self.device.generate_pre_keys(count, self.rng)
    }

    /// A fresh prekey for a retry receipt (see `Device::generate_retry_pre_key`).
    pub(crate) fn generate_retry_pre_key(&mut self) -> ((u32, [u8; 32]), Batch, Option<u32>) {
        self.device.generate_retry_pre_key(self.rng)
    }

    /// Whether the connection is open (the handshake finished).
    pub(crate) fn is_open(&self) -> bool {
        self.conn.is_open()
    }

    /// A fresh stanza id of the connection's series.
    pub(crate) fn next_stanza_id(&mut self) -> String {
        self.iqs.next_id()
    }

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
    pub(crate) fn send_iq<T: Tag>(
        &mut self,
        mut iq: Node,
        tag: T,
        timeout_ms: Option<u64>,
        out: &mut Outputs,
    ) -> Result<String, SendError> {
        if !self.conn.is_open() {
            return Err(SendError::NotOpen);
        }
        if !self.iqs.has_room() {
            return Err(SendError::Failed(ProtocolError::Local(
                LocalFault::TooManyPendingIqs,
            )));
        }
        let deadline = self
            .now
            .saturating_add(timeout_ms.unwrap_or(self.config.iq_timeout_ms));
        let id = self.iqs.register(&mut iq, AnyTag::new(tag), deadline);
        self.send(&iq, out)?;
        Ok(id)
    }

    /// Whether an IQ whose tag is a `T` matching `which` is awaiting its answer.
    pub(crate) fn iq_pending<T: Tag>(&self, which: impl Fn(&T) -> bool) -> bool {
        self.iqs.is_pending(which)
    }

    /// Acknowledges a received `<message>`, `<receipt>`, `<notification>` or `<call>` stanza.
    pub(crate) fn ack(&mut self, stanza: &Node, out: &mut Outputs) {
        let _ = self.send(&super::stanza::ack_for(stanza), out);
    }

    /// Asks the host for records; the answer goes to `tag`'s owner.
    pub(crate) fn load<T: Tag>(
        &mut self,
        keys: Vec<RecordKey>,
        tag: T,
        out: &mut Outputs,
    ) -> LoadId {
        self.loads.next += 1;
        let id = LoadId(self.loads.next);
        self.loads.pending.push((id, AnyTag::new(tag)));
        out.push(Output::Load { id, keys });
        id
    }

    /// Asks the host for an HTTPS request; the answer goes to `tag`'s owner.
    pub(crate) fn fetch<T: Tag>(
        &mut self,
        request: FetchRequest,
        tag: T,
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

    /// Asks mod.rs to enter `state` for `reason` (the latest ask of a step wins).
    pub(crate) fn set_state(&mut self, state: State, reason: StateReason) {
        self.requests.state = Some((state, reason));
    }

    /// Hands app-state sync keys that arrived in a key share (already persisted) to the app
    /// state.
    pub(crate) fn app_state_keys(&mut self, keys: Vec<crate::appstate::SyncKey>) {
        self.requests.app_state_keys.extend(keys);
    }

    /// Asks mod.rs to send this app-state key request to the account's own devices.
    pub(crate) fn request_app_state_keys(&mut self, request: crate::proto::wa::Message) {
        self.requests.app_state_key_request = Some(request);
    }

    /// Hands a history-sync notification from our own phone (already acknowledged), carried by
    /// message `message_id`, to the history machine.
    pub(crate) fn history_notification(
        &mut self,
        message_id: String,
        note: crate::proto::wa::message::HistorySyncNotification,
    ) {
        self.requests.history_notifications.push((message_id, note));
    }

    /// Hands a phone-number user and its LID user to messaging, to store.
    pub(crate) fn lid_mapping(&mut self, pair: (String, String)) {
        self.requests.lid_mappings.push(pair);
    }

    /// Asks messaging to send `message` to `to` for `command`.
    pub(crate) fn send_message(
        &mut self,
        command: CommandId,
        to: String,
        message: Box<crate::proto::wa::Message>,
    ) {
        self.requests.messages.push((command, to, message));
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
            Context::new(
                now,
                false,
                Lent {
                    config: &self.config,
                    device: &mut self.device,
                    rng: &mut self.rng,
                    conn: &mut self.conn,
                    iqs: &mut self.iqs,
                    loads: &mut self.loads,
                    fetches: &mut self.fetches,
                    requests: &mut self.requests,
                },
            )
        }
    }
}
