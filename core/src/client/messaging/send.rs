//! The sending half of the `Messaging` sub-machine: one send at a time, in command order. For a
//! group, its member list first (`w:g2`); then device lists (usync) for the peer (or members)
//! and our own account, the records of every
//! device (`Output::Load`), the device lists checked against the signed key-index lists
//! (fetching the bundle of a primary whose identity is not known yet, to check with), for a
//! group our sender key rotated if a device that may hold it left, prekey bundles for devices
//! without a session, then encryption; the
//! ratchet steps and the retry-buffer entry are persisted before the stanza is transmitted, and
//! the command completes with `MessageSent { id }` when the server acknowledges the message.
//!
//! A transmitted stanza is kept (in memory and as an `Outbox` record persisted with the ratchet
//! steps) until the server acknowledges it. A connection that ends before the ack does not fail
//! the command: after the next login the same stanza (same id, same ciphertexts) is sent again,
//! as WhatsApp Web does; the server drops a second copy of an id it already has, and receivers
//! remember the ids they received. The command ends with the ack, or with `TimedOut` after
//! `MESSAGING_MAX_SEND_ATTEMPTS` transmissions. A restored client resends the stanzas its
//! predecessor left unacknowledged (their commands died with it, so no event follows).

use std::collections::VecDeque;

use prost::Message as _;

use crate::binary::{Jid, Node};
use crate::limits::{
    MESSAGING_MAX_PARKED, MESSAGING_MAX_SEND_ATTEMPTS, MESSAGING_MAX_UNACKED,
    MESSAGING_MAX_UNACKED_STANZA,
};
use crate::proto::{wa, walink as pb};
use crate::store::{Batch, Change, Record, RecordKey, RestoreError, Space};

use super::super::command::{CommandError, CommandId, CommandOutput};
use super::super::context::Context;
use super::super::event::Event;
use super::super::iq::{IqError, IqResult};
use super::super::output::{LoadId, Outputs};
use super::content::text_message;
use super::device_list;
use super::id::generate_message_id;
use super::outgoing::{DirectMessage, GroupMessage, Outgoing, build_direct, build_group};
use super::peer::build_peer;
use super::prekeys::{build_prekey_fetch, parse_prekey_reply};
use super::receiver::{STATUS_BROADCAST, batch_of};
use super::records::Records;
use super::usync::{UserDevices, build_device_query, parse_device_reply};
use super::{DeviceAddress, MessagingError, MessagingIq, MessagingLoad};

/// What a send command carries.
#[derive(Debug)]
pub(crate) enum Content {
    /// A text, sent as `conversation`.
    Text(String),
    /// A decoded `Message`.
    Message(Box<wa::Message>),
}

/// One message on its way.
#[derive(Debug)]
struct Job {
    command: CommandId,
    id: String,
    /// The peer (device 0) for a 1:1 chat; for a group, our own address (unused).
    to: DeviceAddress,
    /// The group, for a group message.
    group: Option<String>,
    /// The group's addressing mode, from its metadata.
    addressing_mode: Option<String>,
    /// The group's members (device 0 of each).
    members: Vec<DeviceAddress>,
    /// A peer message for our primary phone only (`category="peer"`, [`super::peer`]).
    peer: bool,
    message: wa::Message,
    /// The usync reply: every user's listed devices and signed key-index list.
    users: Vec<UserDevices>,
    devices: Vec<DeviceAddress>,
    own_devices: Vec<DeviceAddress>,
}

/// What a job from this account itself is (`Sender::enqueue_own`).
struct OwnJob {
    /// `status@broadcast` for a status post.
    group: Option<String>,
    /// A status post's audience (device 0 of each).
    members: Vec<DeviceAddress>,
    /// A peer message for our primary phone.
    peer: bool,
}

/// Where the current job is.
#[derive(Debug, Default, PartialEq, Eq)]
enum Stage {
    /// Nothing in flight.
    #[default]
    Idle,
    /// Waiting for the LID mapping of the peer.
    Mapping,
    /// Waiting for the group's metadata.
    GroupInfo,
    /// Waiting for the usync reply.
    Devices,
    /// Waiting for the device records.
    Records,
    /// Waiting for the bundles of primaries whose identity is not known yet.
    Identities,
    /// Waiting for prekey bundles.
    Bundles,
}

/// A transmitted message awaiting the server's ack.
#[derive(Debug)]
struct Unacked {
    id: String,
    /// The command to complete; `None` for a stanza restored from the store.
    command: Option<CommandId>,
    /// The stanza as transmitted, kept (and persisted) for a resend; `None` when it was too
    /// large or too many were kept.
    stanza: Option<Node>,
    /// Transmissions so far.
    attempts: u32,
    sequence: u64,
}

/// The `Outbox` record of a kept stanza.
fn outbox_put(unacked: &Unacked, stanza: &[u8]) -> Change {
    Change::Put(Record {
        space: Space::Outbox,
        key: unacked.id.clone(),
        value: pb::OutboxRecord {
            format_version: Some(super::keystore::MESSAGING_RECORD_FORMAT),
            stanza: Some(stanza.to_vec()),
            attempts: Some(unacked.attempts),
            sequence: Some(unacked.sequence),
        }
        .encode_to_vec(),
    })
}

/// Outgoing messages.
#[derive(Debug, Default)]
pub(crate) struct Sender {
    queue: VecDeque<Job>,
    stage: Stage,
    /// Every outbox load in flight with its keys (a load issued before a disconnect is still
    /// answered, and its answer applies to its own keys).
    requested: Vec<(LoadId, Vec<RecordKey>)>,
    /// The load the current job waits for (its LID mapping or its records).
    awaiting: Option<LoadId>,
    /// Every record key the current job uses once its devices are known (kept in memory until
    /// it is encrypted).
    job_keys: Vec<RecordKey>,
    /// Transmitted messages awaiting the server's ack, oldest first.
    awaiting_ack: VecDeque<Unacked>,
    /// The sequence number of the next kept stanza.
    outbox_sequence: u64,
    /// For group messages awaiting their ack: the group and the devices the stanza handed our
    /// sender key to, counted as holding it once the ack arrives.
    distributed: Vec<(String, String, Vec<DeviceAddress>)>,
}

fn fail(command: CommandId, error: CommandError, out: &mut Outputs) {
    out.event(Event::CommandDone {
        id: command,
        result: Err(error),
    });
}

impl Sender {
    /// Takes the `Outbox` records of a restored client: stanzas its predecessor transmitted
    /// without an ack, resent after the next login.
    pub(crate) fn restore(&mut self, records: &[Record]) -> Result<(), RestoreError> {
        let mut restored = Vec::new();
        for record in records.iter().filter(|r| r.space == Space::Outbox) {
            let malformed = || RestoreError::Malformed {
                space: record.space,
                key: record.key.clone(),
            };
            let decoded =
                pb::OutboxRecord::decode(record.value.as_slice()).map_err(|_| malformed())?;
            match decoded.format_version {
                Some(super::keystore::MESSAGING_RECORD_FORMAT) => {}
                version => {
                    return Err(RestoreError::UnsupportedVersion {
                        space: record.space,
                        key: record.key.clone(),
                        version: version.unwrap_or_default(),
                    });
                }
            }
            let stanza = crate::binary::decode(&decoded.stanza.unwrap_or_default())
                .map_err(|_| malformed())?;
            if stanza.tag != "message" || stanza.attr_str("id") != Some(record.key.as_str()) {
                return Err(RestoreError::BadField {
                    space: record.space,
                    key: record.key.clone(),
                    field: "stanza",
                });
            }
            restored.push(Unacked {
                id: record.key.clone(),
                command: None,
                stanza: Some(stanza),
                attempts: decoded.attempts.unwrap_or_default(),
                sequence: decoded.sequence.unwrap_or_default(),
            });
        }
        restored.sort_by_key(|u| u.sequence);
        // The client never keeps more; a store that holds more keeps the oldest in memory
        // (the others stay stored, unsent).
        restored.truncate(MESSAGING_MAX_UNACKED);
        self.outbox_sequence = restored.last().map_or(0, |u| u.sequence.saturating_add(1));
        self.awaiting_ack = restored.into();
        Ok(())
    }

    /// The client logged in (`Connected`): stanzas still unacknowledged are sent again, oldest
    /// first and before anything new, unchanged; one that was sent
    /// [`MESSAGING_MAX_SEND_ATTEMPTS`] times fails with `TimedOut` instead.
    pub(crate) fn handle_connected(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        let mut batch = Batch::default();
        let mut resend = Vec::new();
        let mut kept = VecDeque::new();
        for mut unacked in core::mem::take(&mut self.awaiting_ack) {
            let Some(stanza) = unacked.stanza.take() else {
                kept.push_back(unacked);
                continue;
            };
            if unacked.attempts >= MESSAGING_MAX_SEND_ATTEMPTS {
                batch.changes.push(Change::Delete {
                    space: Space::Outbox,
                    key: unacked.id.clone(),
                });
                self.distributed.retain(|(id, _, _)| *id != unacked.id);
                if let Some(command) = unacked.command {
                    fail(command, CommandError::TimedOut, out);
                }
                continue;
            }
            unacked.attempts += 1;
            batch
                .changes
                .push(outbox_put(&unacked, &crate::binary::encode(&stanza)));
            resend.push(stanza.clone());
            unacked.stanza = Some(stanza);
            kept.push_back(unacked);
        }
        self.awaiting_ack = kept;
        if !batch.changes.is_empty() {
            ctx.persist(batch, out);
        }
        for stanza in &resend {
            if ctx.send(stanza, out).is_err() {
                // The connection is gone again: the next login sends it.
                break;
            }
        }
    }

    /// The device was unlinked (its records are deleted): every command still waiting fails.
    pub(crate) fn wipe(&mut self, out: &mut Outputs) {
        self.handle_disconnected(out);
        for unacked in self.awaiting_ack.drain(..) {
            if let Some(command) = unacked.command {
                fail(command, CommandError::NotConnected, out);
            }
        }
        self.distributed.clear();
    }

    /// The record keys that must stay in memory now: those of every load in flight, every record
    /// of the job between its device records and its encryption, and the sender-key-sent list
    /// of each group message awaiting its ack (the ack adds to it).
    pub(crate) fn pins(&self) -> impl Iterator<Item = RecordKey> + '_ {
        let job: &[RecordKey] = if matches!(
            self.stage,
            Stage::Records | Stage::Identities | Stage::Bundles
        ) {
            &self.job_keys
        } else {
            &[]
        };
        self.requested
            .iter()
            .flat_map(|(_, keys)| keys)
            .chain(job)
            .cloned()
            .chain(
                self.distributed
                    .iter()
                    .map(|(_, group, _)| RecordKey::new(Space::SenderKeySent, group.clone())),
            )
    }

    /// A new message id for this account.
    pub(crate) fn new_id(
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) -> Option<String> {
        let own_user = records
            .keystore(ctx, out)
            .map(|k| k.own().pn.user.clone())?;
        let random: [u8; 16] = ctx.rng().bytes();
        Some(generate_message_id(ctx.now(), Some(&own_user), &random))
    }

    /// Whether a message to `group` is queued or under way.
    pub(crate) fn is_sending_to(&self, group: &str) -> bool {
        self.queue
            .iter()
            .any(|job| job.group.as_deref() == Some(group))
    }

    /// Queues a message (`message` already decoded) for `to`, under `id` (a new one when
    /// `None`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send(
        &mut self,
        command: CommandId,
        to: &str,
        content: Content,
        id: Option<String>,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if !ctx.is_connected() {
            return fail(command, CommandError::NotConnected, out);
        }
        let group = is_group(to).then(|| to.to_owned());
        let to = match (&group, DeviceAddress::parse(to)) {
            (Some(_), _) => match records.keystore(ctx, out) {
                Some(keystore) => keystore.own().pn.clone(),
                None => return fail(command, CommandError::NotPaired, out),
            },
            (None, Ok(to)) => to,
            (None, Err(_)) => return fail(command, CommandError::InvalidAddress, out),
        };
        if self.queue.len() >= MESSAGING_MAX_PARKED {
            return fail(
                command,
                CommandError::RateLimited {
                    retry_after_ms: None,
                },
                out,
            );
        }
        let Some(id) = id.or_else(|| Sender::new_id(records, ctx, out)) else {
            return fail(command, CommandError::NotPaired, out);
        };
        let message = match content {
            Content::Message(message) => *message,
            Content::Text(text) => text_message(&text, Some(ctx.rng().bytes())),
        };
        self.queue.push_back(Job {
            command,
            id,
            to: to.with_device(0),
            group,
            addressing_mode: None,
            members: Vec::new(),
            peer: false,
            message,
            users: Vec::new(),
            devices: Vec::new(),
            own_devices: Vec::new(),
        });
        self.advance(records, ctx, out);
    }

    /// Queues a peer message for our primary phone only (the on-demand history request).
    pub(crate) fn send_peer(
        &mut self,
        command: CommandId,
        message: wa::Message,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let job = OwnJob {
            group: None,
            members: Vec::new(),
            peer: true,
        };
        self.enqueue_own(command, job, message, records, ctx, out);
    }

    /// Queues a status post for `recipients` (user or LID JIDs): a sender-key message to
    /// `status@broadcast` whose members are the recipients (this account's devices are added
    /// by the device query, as for a group), with no member-list query.
    pub(crate) fn send_status(
        &mut self,
        command: CommandId,
        recipients: &[String],
        message: Box<wa::Message>,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if recipients.len() > crate::limits::MESSAGING_MAX_FANOUT {
            return fail(command, CommandError::InvalidMessage, out);
        }
        let mut members: Vec<DeviceAddress> = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            match DeviceAddress::parse(recipient) {
                Ok(address) => {
                    let address = address.with_device(0);
                    if !members.contains(&address) {
                        members.push(address);
                    }
                }
                Err(_) => return fail(command, CommandError::InvalidAddress, out),
            }
        }
        if members.is_empty() {
            return fail(command, CommandError::InvalidAddress, out);
        }
        let job = OwnJob {
            group: Some(STATUS_BROADCAST.to_owned()),
            members,
            peer: false,
        };
        self.enqueue_own(command, job, *message, records, ctx, out);
    }

    /// Queues a job addressed from this account itself (a status post, a peer message) under a
    /// new id, after the checks every send makes.
    fn enqueue_own(
        &mut self,
        command: CommandId,
        job: OwnJob,
        message: wa::Message,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if !ctx.is_connected() {
            return fail(command, CommandError::NotConnected, out);
        }
        if self.queue.len() >= MESSAGING_MAX_PARKED {
            return fail(
                command,
                CommandError::RateLimited {
                    retry_after_ms: None,
                },
                out,
            );
        }
        let Some(own) = records.keystore(ctx, out).map(|k| k.own().pn.clone()) else {
            return fail(command, CommandError::NotPaired, out);
        };
        let Some(id) = Sender::new_id(records, ctx, out) else {
            return fail(command, CommandError::NotPaired, out);
        };
        self.queue.push_back(Job {
            command,
            id,
            to: own.with_device(0),
            group: job.group,
            addressing_mode: None,
            members: job.members,
            peer: job.peer,
            message,
            users: Vec::new(),
            devices: Vec::new(),
            own_devices: Vec::new(),
        });
        self.advance(records, ctx, out);
    }

    /// Starts the next job when idle.
    fn advance(&mut self, records: &mut Records, ctx: &mut Context<'_>, out: &mut Outputs) {
        while self.stage == Stage::Idle {
            let Some(job) = self.queue.front() else {
                return;
            };
            if job.group.as_deref() == Some(STATUS_BROADCAST) {
                // A status post names its audience itself.
                self.query_devices(records, ctx, out);
                continue;
            }
            if let Some(group) = job.group.clone() {
                let iq = crate::binary::Node::new("iq")
                    .attr("type", "get")
                    .attr("xmlns", "w:g2")
                    .attr(
                        "to",
                        crate::binary::Value::Jid(group.parse().unwrap_or_default()),
                    )
                    .children_from([
                        crate::binary::Node::new("query").attr("request", "interactive")
                    ]);
                match ctx.send_iq(iq, MessagingIq::GroupInfo, None, out) {
                    Ok(_) => self.stage = Stage::GroupInfo,
                    Err(_) => self.finish(Err(CommandError::NotConnected), out),
                }
                continue;
            }
            let mapping = RecordKey::new(Space::LidMapping, job.to.user.clone());
            if !job.to.lid && !records.loaded.contains(&mapping) {
                self.stage = Stage::Mapping;
                let id = ctx.load(vec![mapping.clone()], MessagingLoad::Outbox, out);
                self.requested.push((id, vec![mapping]));
                self.awaiting = Some(id);
                return;
            }
            self.query_devices(records, ctx, out);
        }
    }

    fn query_devices(&mut self, records: &mut Records, ctx: &mut Context<'_>, out: &mut Outputs) {
        let Some(job) = self.queue.front() else {
            return;
        };
        let Some(own) = records.keystore(ctx, out).map(|k| k.own().clone()) else {
            return self.finish(Err(CommandError::NotPaired), out);
        };
        let sid = ctx.next_stanza_id();
        let mut users: Vec<DeviceAddress> = if job.group.is_some() {
            job.members.clone()
        } else {
            vec![job.to.clone()]
        };
        // Our own account once, in whichever form the list names it (a LID-addressed group
        // names it by LID; asking for the number as well would list every own device twice).
        if !users.iter().any(|user| own.is_own_user(user)) {
            users.push(own.pn.with_device(0));
        }
        let query = build_device_query("", &sid, &users);
        let mut iq = query;
        iq.attrs.retain(|attr| attr.key != "id");
        match ctx.send_iq(iq, MessagingIq::Devices, None, out) {
            Ok(_) => self.stage = Stage::Devices,
            Err(_) => self.finish(Err(CommandError::NotConnected), out),
        }
    }

    /// Ends the current job.
    fn finish(&mut self, result: Result<(), CommandError>, out: &mut Outputs) {
        self.stage = Stage::Idle;
        self.job_keys.clear();
        if let Some(job) = self.queue.pop_front()
            && let Err(error) = result
        {
            fail(job.command, error, out);
        }
    }

    /// Ends the current job, whose stanza was handed to the connection (`transmitted`) or not;
    /// `stanza` is the kept copy, when there is one.
    fn finish_sent(
        &mut self,
        stanza: Option<Node>,
        sequence: u64,
        transmitted: bool,
        out: &mut Outputs,
    ) {
        self.stage = Stage::Idle;
        self.job_keys.clear();
        let Some(job) = self.queue.pop_front() else {
            return;
        };
        if !transmitted && stanza.is_none() {
            return fail(job.command, CommandError::NotConnected, out);
        }
        self.awaiting_ack.push_back(Unacked {
            id: job.id,
            command: Some(job.command),
            stanza,
            attempts: u32::from(transmitted),
            sequence,
        });
    }

    /// Records of the outbox load `id` arrived: they apply to that load's own keys, and only
    /// the load the current job awaits moves it on (an answer to a load issued before a
    /// disconnect does not).
    pub(crate) fn handle_loaded(
        &mut self,
        id: LoadId,
        loaded: Vec<crate::store::Record>,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let keys = match self.requested.iter().position(|(load, _)| *load == id) {
            Some(index) => self.requested.remove(index).1,
            None => Vec::new(),
        };
        records.apply(loaded, keys, out);
        if self.awaiting != Some(id) {
            return self.advance(records, ctx, out);
        }
        self.awaiting = None;
        match self.stage {
            Stage::Mapping => {
                self.stage = Stage::Idle;
                self.query_devices(records, ctx, out);
            }
            Stage::Records => self.fetch_identities(records, ctx, out),
            _ => {}
        }
        self.advance(records, ctx, out);
    }

    /// An IQ answer arrived.
    pub(crate) fn handle_iq(
        &mut self,
        tag: &MessagingIq,
        result: IqResult,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let node = match result {
            Ok(node) => node,
            Err(IqError::Error { code, text, .. }) => {
                self.finish(Err(CommandError::Rejected { code, text }), out);
                return self.advance(records, ctx, out);
            }
            Err(IqError::TimedOut) => {
                self.finish(Err(CommandError::TimedOut), out);
                return self.advance(records, ctx, out);
            }
            Err(IqError::Disconnected) => {
                self.finish(Err(CommandError::NotConnected), out);
                return self.advance(records, ctx, out);
            }
        };
        match (tag, &self.stage) {
            (MessagingIq::GroupInfo, Stage::GroupInfo) => {
                let group = node.child("group");
                let members: Vec<DeviceAddress> = group
                    .map(|group| {
                        group
                            .children_by_tag("participant")
                            .filter_map(|p| p.attr_jid("jid"))
                            .filter_map(|jid| DeviceAddress::from_jid(&jid).ok())
                            .map(|address| address.with_device(0))
                            .take(crate::limits::MESSAGING_MAX_FANOUT)
                            .collect()
                    })
                    .unwrap_or_default();
                let mode = group
                    .and_then(|g| g.attr_str("addressing_mode"))
                    .map(str::to_owned);
                if members.is_empty() {
                    self.finish(Err(CommandError::InvalidAddress), out);
                    return self.advance(records, ctx, out);
                }
                if let Some(job) = self.queue.front_mut() {
                    job.members = members;
                    job.addressing_mode = mode;
                }
                self.stage = Stage::Idle;
                self.query_devices(records, ctx, out);
                return;
            }
            (MessagingIq::Devices, Stage::Devices) => {
                let users = match parse_device_reply(&node) {
                    Ok(users) => users,
                    Err(_) => {
                        self.finish(
                            Err(CommandError::Rejected {
                                code: 0,
                                text: "bad usync reply".into(),
                            }),
                            out,
                        );
                        return self.advance(records, ctx, out);
                    }
                };
                let Some(keystore) = records.keystore(ctx, out) else {
                    return;
                };
                for user in &users {
                    if let Some(lid) = &user.lid {
                        keystore.learn_lid(&user.user.user, lid);
                    }
                }
                let Some(job) = self.queue.front_mut() else {
                    return;
                };
                job.users = users;
                // The records of every listed device (its primary's identity verifies its
                // user's key-index list) and each user's last verified device list.
                let keystore = records.keystore.as_ref();
                let mut keys: Vec<RecordKey> = Vec::new();
                for user in &job.users {
                    let primary = core::iter::once(0).chain(user.devices.iter().copied());
                    for device in primary.map(|id| user.user.with_device(id)) {
                        let canonical =
                            keystore.map_or(device.clone(), |k| k.lids().canonical(&device));
                        let mut spaces = vec![Space::Session, Space::Identity];
                        if device.device == 0 {
                            spaces.push(Space::DeviceList);
                        }
                        for space in spaces {
                            keys.push(RecordKey::new(space, canonical.record_key()));
                            if canonical != device {
                                // Possibly still stored under the phone-number form (moved
                                // on load).
                                keys.push(RecordKey::new(space, device.record_key()));
                            }
                        }
                    }
                }
                if let (Some(group), Some(keystore)) = (&job.group, keystore) {
                    keys.push(RecordKey::new(Space::SenderKeySent, group.clone()));
                    keys.push(RecordKey::new(
                        Space::SenderKey,
                        format!("{group}::{}", keystore.own().group_sender().record_key()),
                    ));
                }
                crate::sort::sort_unstable(&mut keys);
                keys.dedup();
                self.job_keys = keys.clone();
                keys.retain(|key| !records.loaded.contains(key));
                self.stage = Stage::Records;
                if keys.is_empty() {
                    self.fetch_identities(records, ctx, out);
                } else {
                    let id = ctx.load(keys.clone(), MessagingLoad::Outbox, out);
                    self.requested.push((id, keys));
                    self.awaiting = Some(id);
                }
            }
            (MessagingIq::Identities, Stage::Identities) => {
                match process_bundles(&node, records, ctx, out) {
                    Ok(()) => self.resolve_devices(records, ctx, out),
                    Err(error) => self.finish(Err(error), out),
                }
            }
            (MessagingIq::Bundles, Stage::Bundles) => {
                match process_bundles(&node, records, ctx, out) {
                    Ok(()) => self.encrypt_and_send(records, ctx, out),
                    Err(error) => self.finish(Err(error), out),
                }
            }
            _ => {}
        }
        self.advance(records, ctx, out);
    }

    /// The job's records are in memory: a user whose primary identity is not known (a user
    /// never messaged) cannot have its key-index list checked, so the primary's bundle is
    /// fetched first (it starts the session the message needs anyway).
    fn fetch_identities(
        &mut self,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let Some(job) = self.queue.front() else {
            return;
        };
        let Some(keystore) = records.keystore.as_ref() else {
            return;
        };
        let unknown: Vec<DeviceAddress> = job
            .users
            .iter()
            .filter(|user| !user.key_indexes.is_empty() && user.key_index_list.is_some())
            .map(|user| user.user.with_device(0))
            .filter(|primary| {
                keystore.identity(primary).is_none() && !keystore.has_session(primary)
            })
            .collect();
        if unknown.is_empty() {
            return self.resolve_devices(records, ctx, out);
        }
        self.request_bundles(
            &unknown,
            MessagingIq::Identities,
            Stage::Identities,
            ctx,
            out,
        );
    }

    /// Decides the devices the message goes to from the usync reply: each user's devices as
    /// its signed key-index list vouches for them ([`device_list::resolve`]), a newer verified
    /// list stored; then, for a group, rotates our sender key if a device that may hold it is
    /// no longer a member device.
    fn resolve_devices(&mut self, records: &mut Records, ctx: &mut Context<'_>, out: &mut Outputs) {
        let Some(keystore) = records.keystore.as_mut() else {
            return;
        };
        let Some(job) = self.queue.front_mut() else {
            return;
        };
        let own = keystore.own().clone();
        let mut replaced = Vec::new();
        job.devices.clear();
        job.own_devices.clear();
        for user in &job.users {
            let account_key = keystore
                .identity(&user.user.with_device(0))
                .map(|identity| *identity.0.raw());
            let resolved =
                device_list::resolve(user, account_key.as_ref(), keystore.device_list(&user.user));
            if let Some(list) = resolved.store {
                keystore.put_device_list(&user.user, list);
            }
            replaced.extend(
                resolved
                    .replaced
                    .iter()
                    .map(|&id| user.user.with_device(id)),
            );
            for device in resolved.devices.iter().map(|&id| user.user.with_device(id)) {
                if job.group.is_some() {
                    if !own.is_this_device(&device) {
                        job.devices.push(device);
                    }
                } else if own.is_own_user(&device) {
                    if !own.is_this_device(&device) {
                        job.own_devices.push(device);
                    }
                } else if user.user.user == job.to.user {
                    job.devices.push(device);
                }
            }
        }
        // A peer message for the primary goes to our device 0 alone.
        if job.peer {
            job.devices.clear();
            job.own_devices.retain(|device| device.device == 0);
        }
        // A message to this account itself (a peer message such as the app-state key
        // request) goes to the own other devices only.
        let to_self = own.is_own_user(&job.to);
        if job.devices.is_empty() && (!to_self || job.own_devices.is_empty()) {
            self.finish(Err(CommandError::InvalidAddress), out);
            return self.advance(records, ctx, out);
        }
        if let Some(group) = &job.group
            && keystore.rotate_sender_key_if_departed(group, &job.devices, &replaced)
        {
            // Stanzas of the old chain awaiting their ack no longer tell who holds the key.
            self.distributed.retain(|(_, sent, _)| sent != group);
        }
        self.fetch_bundles(records, ctx, out);
    }

    fn fetch_bundles(&mut self, records: &mut Records, ctx: &mut Context<'_>, out: &mut Outputs) {
        let Some(job) = self.queue.front() else {
            return;
        };
        let Some(keystore) = records.keystore.as_ref() else {
            return;
        };
        let missing = match &job.group {
            // A status post hands our sender key to every recipient device.
            Some(group) if group == STATUS_BROADCAST => {
                keystore.devices_without_session(job.devices.iter())
            }
            Some(group) => {
                let lacking = keystore.sender_key_missing(group, job.devices.iter());
                keystore.devices_without_session(lacking.iter())
            }
            None => keystore.devices_without_session(job.devices.iter().chain(&job.own_devices)),
        };
        if missing.is_empty() {
            return self.encrypt_and_send(records, ctx, out);
        }
        self.request_bundles(&missing, MessagingIq::Bundles, Stage::Bundles, ctx, out);
    }

    /// Asks for the prekey bundles of `devices`; the answer comes back tagged `tag` while the
    /// job waits in `stage`.
    fn request_bundles(
        &mut self,
        devices: &[DeviceAddress],
        tag: MessagingIq,
        stage: Stage,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let mut iq = build_prekey_fetch("", devices);
        iq.attrs.retain(|attr| attr.key != "id");
        match ctx.send_iq(iq, tag, None, out) {
            Ok(_) => self.stage = stage,
            Err(_) => self.finish(Err(CommandError::NotConnected), out),
        }
    }

    fn encrypt_and_send(
        &mut self,
        records: &mut Records,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let Some(job) = self.queue.front() else {
            return;
        };
        let device_identity = ctx.device().signed_identity();
        let Some(keystore) = records.keystore.as_mut() else {
            return;
        };
        // A recipient whose identity key waits for approval: nothing is sent.
        if let Some(untrusted) = job
            .devices
            .iter()
            .chain(&job.own_devices)
            .find(|device| keystore.pending_identity(device).is_some())
        {
            let address = keystore.lids().canonical(untrusted).to_jid().to_string();
            let batch = batch_of(keystore.take_changes());
            if !batch.changes.is_empty() {
                ctx.persist(batch, out);
            }
            super::receiver::report_identities(keystore, out);
            self.finish(Err(CommandError::UntrustedIdentity { address }), out);
            return;
        }
        let built = match &job.group {
            None if job.peer => match job.own_devices.first() {
                Some(primary) => build_peer(
                    keystore,
                    &job.id,
                    &job.message,
                    primary,
                    &device_identity,
                    ctx.rng(),
                )
                .map(|node| Outgoing {
                    node,
                    skipped: Vec::new(),
                }),
                None => Err(MessagingError::InvalidAddress),
            },
            Some(group) => build_group(
                keystore,
                &GroupMessage {
                    id: &job.id,
                    group,
                    message: &job.message,
                    member_devices: &job.devices,
                    device_identity: &device_identity,
                    addressing_mode: job.addressing_mode.as_deref(),
                },
                ctx.rng(),
            ),
            None => build_direct(
                keystore,
                &DirectMessage {
                    id: &job.id,
                    to: &job.to,
                    message: &job.message,
                    peer_devices: &job.devices,
                    own_devices: &job.own_devices,
                    device_identity: &device_identity,
                },
                ctx.rng(),
            ),
        };
        let chat = job
            .group
            .clone()
            .unwrap_or_else(|| job.to.to_jid().to_string());
        match built {
            Ok(outgoing) => {
                // Kept for retries with the devices it went to (every member device of a
                // group) and the sender key it used: only those may ask for it again.
                let sender_key_id = job.group.as_deref().and_then(|group| {
                    keystore
                        .current_own_sender_key(group, ctx.rng())
                        .map(|distribution| distribution.key_id())
                });
                keystore.remember_sent(
                    &job.id,
                    (&chat, &job.message.encode_to_vec()),
                    job.devices.iter().chain(&job.own_devices),
                    sender_key_id,
                    ctx.now(),
                );
                if let Some(group) = &job.group {
                    // Offered the key in this stanza (persisted with it), counted as holding
                    // it only once the server has the stanza (see `handle_ack`): a crash or a
                    // cut before the ack hands it out again.
                    let devices: Vec<DeviceAddress> = outgoing
                        .node
                        .child("participants")
                        .map(|p| {
                            p.children_by_tag("to")
                                .filter_map(|to| to.attr_jid("jid"))
                                .filter_map(|jid| DeviceAddress::from_jid(&jid).ok())
                                .collect()
                        })
                        .unwrap_or_default();
                    if !devices.is_empty() {
                        keystore.offer_sender_key(group, devices.iter());
                        self.distributed
                            .push((job.id.clone(), group.clone(), devices));
                    }
                }
                let mut batch = batch_of(keystore.take_changes());
                // Its message secret, for encrypted reactions and edits to it.
                let author = keystore.own().pn.to_jid().to_non_device();
                if let Ok(chat) = chat.parse::<crate::binary::Jid>()
                    && let Some(change) =
                        super::secrets::keep_change(&chat, &job.id, &author, &job.message)
                {
                    batch.changes.push(change);
                }
                // Kept for a resend, persisted with the ratchet steps that produced it.
                let encoded = crate::binary::encode(&outgoing.node);
                let sequence = self.outbox_sequence;
                let keep = encoded.len() <= MESSAGING_MAX_UNACKED_STANZA
                    && self.awaiting_ack.len() < MESSAGING_MAX_UNACKED;
                if keep {
                    self.outbox_sequence = sequence.saturating_add(1);
                    let record = Unacked {
                        id: job.id.clone(),
                        command: None,
                        stanza: None,
                        attempts: 1,
                        sequence,
                    };
                    batch.changes.push(outbox_put(&record, &encoded));
                }
                ctx.persist(batch, out);
                let transmitted = ctx.send(&outgoing.node, out).is_ok();
                let kept = keep.then_some(outgoing.node);
                self.finish_sent(kept, sequence, transmitted, out);
            }
            Err(_) => {
                let batch = batch_of(keystore.take_changes());
                if !batch.changes.is_empty() {
                    ctx.persist(batch, out);
                }
                self.finish(Err(CommandError::InvalidAddress), out);
            }
        }
    }

    /// The server acknowledged a stanza; a message's ack completes its command.
    pub(crate) fn handle_ack(
        &mut self,
        id: &str,
        error: Option<u16>,
        records: &mut Records,
        out: &mut Outputs,
    ) {
        let Some(index) = self.awaiting_ack.iter().position(|u| u.id == id) else {
            return;
        };
        let Some(unacked) = self.awaiting_ack.remove(index) else {
            return;
        };
        let id = unacked.id;
        let mut batch = Batch::default();
        if let Some(index) = self.distributed.iter().position(|(sent, _, _)| *sent == id) {
            let (_, group, devices) = self.distributed.swap_remove(index);
            if error.is_none() {
                if let Some(keystore) = records.keystore.as_mut() {
                    keystore.confirm_sender_key(&group, devices.iter());
                    batch = batch_of(keystore.take_changes());
                }
            }
        }
        if unacked.stanza.is_some() {
            batch.changes.push(Change::Delete {
                space: Space::Outbox,
                key: id.clone(),
            });
        }
        if !batch.changes.is_empty() {
            out.persist(batch);
        }
        let Some(command) = unacked.command else {
            return;
        };
        let result = match error {
            None => Ok(CommandOutput::MessageSent { id }),
            Some(code) => Err(CommandError::Rejected {
                code,
                text: "message refused".to_owned(),
            }),
        };
        out.event(Event::CommandDone {
            id: command,
            result,
        });
    }

    /// The connection ended: commands whose stanza has not left fail, and so do transmitted
    /// ones that were not kept; kept stanzas wait for the next login (sender keys handed out
    /// by other unacknowledged group messages are handed out again next time).
    pub(crate) fn handle_disconnected(&mut self, out: &mut Outputs) {
        self.stage = Stage::Idle;
        // Loads in flight are still answered; their answers apply to their own keys.
        self.awaiting = None;
        for job in self.queue.drain(..) {
            fail(job.command, CommandError::NotConnected, out);
        }
        let mut kept = VecDeque::new();
        for unacked in self.awaiting_ack.drain(..) {
            if unacked.stanza.is_some() {
                kept.push_back(unacked);
            } else if let Some(command) = unacked.command {
                fail(command, CommandError::NotConnected, out);
            }
        }
        self.awaiting_ack = kept;
        let awaiting = &self.awaiting_ack;
        self.distributed
            .retain(|(id, _, _)| awaiting.iter().any(|u| u.id == *id));
    }
}

/// Starts a session from every bundle of a prekey fetch reply. A device the server has no
/// bundle for (its per-device `<error>`) is left out; an answer that cannot be read, or a
/// device whose bundle is malformed or whose signature does not verify, fails the send
/// ([`CommandError::BadPrekeyAnswer`], nothing sent: a message that reaches only some of the
/// recipient's devices must not look sent). A bundle under a changed identity key follows the
/// identity policy (strict: it waits for approval and the send fails in `encrypt_and_send`).
fn process_bundles(
    node: &Node,
    records: &mut Records,
    ctx: &mut Context<'_>,
    out: &mut Outputs,
) -> Result<(), CommandError> {
    let bundles = match parse_prekey_reply(node) {
        Ok(bundles) => bundles,
        Err(MessagingError::ServerError { code, text }) => {
            return Err(CommandError::Rejected { code, text });
        }
        Err(_) => return Err(CommandError::BadPrekeyAnswer { address: None }),
    };
    let Some(keystore) = records.keystore.as_mut() else {
        return Ok(());
    };
    let mut refused = None;
    for (address, bundle) in bundles {
        let result = match bundle {
            Ok(bundle) => keystore.process_bundle(&address, &bundle, ctx.rng()),
            Err(MessagingError::ServerError { .. }) => Ok(()),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) | Err(MessagingError::UntrustedIdentity { .. }) => {}
            Err(_) => {
                refused.get_or_insert_with(|| address.to_jid().to_string());
            }
        }
    }
    let Some(address) = refused else {
        return Ok(());
    };
    // The sessions the good bundles started are kept.
    let batch = batch_of(keystore.take_changes());
    if !batch.changes.is_empty() {
        ctx.persist(batch, out);
    }
    Err(CommandError::BadPrekeyAnswer {
        address: Some(address),
    })
}

/// Whether `to` is a group JID.
pub(crate) fn is_group(to: &str) -> bool {
    to.parse::<Jid>()
        .is_ok_and(|jid| jid.server == crate::binary::GROUP_SERVER)
}
