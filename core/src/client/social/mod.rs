//! Calls, presence and chat state, contact queries: the `social` sub-machine.
//!
//! Pure stanza builders and parsers live in [`calls`], [`presence`] and [`contacts`]; this
//! file holds what outlives one stanza (remembered call offers, privacy tokens, presence
//! subscriptions renewed after every reconnect, push names already reported) and turns
//! commands into stanzas and answers into `CommandDone`s.

pub mod calls;
pub mod contacts;
pub mod presence;

use crate::binary::{DEFAULT_USER_SERVER, GROUP_SERVER, HIDDEN_USER_SERVER, Jid, Node};
use crate::limits::{CALLS_MAX_PENDING_REJECTS, CONTACTS_MAX_KNOWN_LIDS, CONTACTS_MAX_PUSH_NAMES};
use crate::signal::RecordError;
use crate::store::{Batch, Change, Record, Space};

use super::command::{Command, CommandError, CommandId, CommandOutput};
use super::context::Context;
use super::event::Event;
use super::history::PushName;
use super::iq::{IqError, IqResult};
use super::output::Outputs;
use super::owner::{Owner, Tag};

pub use calls::{CallAction, CallEvent};
pub use contacts::{About, BusinessProfile, NumberInfo, ProfilePicture};
pub use presence::{ChatState, ChatStateUpdate, PresenceUpdate, PrivacyToken};

/// An IQ of this module: the command it answers and what it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocialIq {
    command: CommandId,
    query: Query,
}

impl Tag for SocialIq {
    const OWNER: Owner = Owner::Social;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Query {
    /// `CheckNumbers` with these normalized numbers.
    Numbers(Vec<String>),
    Picture,
    About,
    Business,
    BlockList,
    Block,
}

/// The state of calls, presence and contacts.
#[derive(Debug, Default)]
pub(crate) struct Social {
    offers: calls::Offers,
    presence: presence::PresenceState,
    /// Push names already reported, by user (oldest first).
    push_names: Vec<(Jid, String)>,
    /// Phone-number users and their LIDs learned from `CheckNumbers` (oldest first).
    lids: Vec<(String, String)>,
    /// `RejectCall`s sent and waiting for the server's ack: stanza id and command (oldest
    /// first, at most `CALLS_MAX_PENDING_REJECTS`).
    rejects: Vec<(String, CommandId)>,
}

/// Whether `command` is one of this module's.
pub(crate) fn owns(command: &Command) -> bool {
    matches!(
        command,
        Command::RejectCall { .. }
            | Command::SetPresence { .. }
            | Command::SubscribePresence { .. }
            | Command::UnsubscribePresence { .. }
            | Command::SendChatState { .. }
            | Command::CheckNumbers { .. }
            | Command::GetProfilePicture { .. }
            | Command::GetAbout { .. }
            | Command::GetBusinessProfile { .. }
            | Command::SetBlocked { .. }
            | Command::GetBlockList
    )
}

fn done(out: &mut Outputs, id: CommandId, result: Result<CommandOutput, CommandError>) {
    out.event(Event::CommandDone { id, result });
}

/// A user (phone-number or LID) JID without device, or `InvalidAddress`.
fn user_jid(text: &str) -> Result<Jid, CommandError> {
    let jid: Jid = text.parse().map_err(|_| CommandError::InvalidAddress)?;
    if jid.user.is_empty() || !matches!(&*jid.server, DEFAULT_USER_SERVER | HIDDEN_USER_SERVER) {
        return Err(CommandError::InvalidAddress);
    }
    Ok(jid.to_non_device())
}

/// A user or group JID without device, or `InvalidAddress`.
fn chat_jid(text: &str) -> Result<Jid, CommandError> {
    match text.parse::<Jid>() {
        Ok(jid) if jid.server == GROUP_SERVER && !jid.user.is_empty() => Ok(jid),
        _ => user_jid(text),
    }
}

impl Social {
    /// Runs one of this module's commands (see [`owns`]); ends in exactly one `CommandDone`
    /// (now, or when its IQ is answered).
    pub(crate) fn command(
        &mut self,
        id: CommandId,
        command: Command,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        if let Err(error) = self.start(id, command, ctx, out) {
            done(out, id, Err(error));
        }
    }

    fn start(
        &mut self,
        id: CommandId,
        command: Command,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) -> Result<(), CommandError> {
        let own = ctx.own_jid().cloned().ok_or(CommandError::NotPaired)?;
        // Validate before asking for a connection: bad input is reported as such.
        let query = match &command {
            Command::CheckNumbers { phones } => {
                Some(Query::Numbers(contacts::normalize_numbers(phones)?))
            }
            _ => None,
        };
        if !ctx.is_connected() {
            return Err(CommandError::NotConnected);
        }
        let sent = |result: Result<(), super::connection::SendError>| {
            result.map_err(|_| CommandError::NotConnected)
        };
        match command {
            Command::RejectCall { call_id, caller } => {
                let caller: Jid = caller.parse().map_err(|_| CommandError::InvalidAddress)?;
                if call_id.is_empty() || caller.user.is_empty() {
                    return Err(CommandError::InvalidAddress);
                }
                let stanza_id = ctx.next_stanza_id();
                let stanza = calls::build_reject(&stanza_id, &own, &call_id, &caller);
                sent(ctx.send(&stanza, out))?;
                // Ends on the server's ack (Baileys waits for it too).
                if self.rejects.len() >= CALLS_MAX_PENDING_REJECTS {
                    let (_, oldest) = self.rejects.remove(0);
                    done(out, oldest, Err(CommandError::TimedOut));
                }
                self.rejects.push((stanza_id, id));
            }
            Command::SetPresence { available } => {
                let name = ctx
                    .config()
                    .profile
                    .push_name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .ok_or(CommandError::PushNameRequired)?;
                sent(ctx.send(&presence::build_own_presence(available, &name), out))?;
                self.presence.own = Some(available);
                done(out, id, Ok(CommandOutput::None));
            }
            Command::SubscribePresence { jid } => {
                let jid = user_jid(&jid)?;
                self.subscribe(&jid, ctx, out)?;
                self.presence.subscribe(jid);
                done(out, id, Ok(CommandOutput::None));
            }
            Command::UnsubscribePresence { jid } => {
                let jid = user_jid(&jid)?;
                let stanza = presence::build_unsubscribe(&ctx.next_stanza_id(), &jid);
                sent(ctx.send(&stanza, out))?;
                self.presence.unsubscribe(&jid);
                done(out, id, Ok(CommandOutput::None));
            }
            Command::SendChatState { to, state } => {
                let to = chat_jid(&to)?;
                let stanza = presence::build_chat_state(&own, ctx.own_lid(), &to, state);
                sent(ctx.send(&stanza, out))?;
                done(out, id, Ok(CommandOutput::None));
            }
            Command::CheckNumbers { .. } => {
                let Some(Query::Numbers(digits)) = query else {
                    return Err(CommandError::InvalidMessage);
                };
                let sid = ctx.next_stanza_id();
                let iq = contacts::build_number_query(&sid, &digits);
                self.ask(id, Query::Numbers(digits), iq, ctx, out)?;
            }
            Command::GetProfilePicture { jid, preview } => {
                let target = chat_jid(&jid)?;
                let own_user = own.to_non_device();
                let is_self = target == own_user
                    || ctx.own_lid().is_some_and(|l| l.to_non_device() == target);
                let token = (target.server != GROUP_SERVER && !is_self)
                    .then(|| self.presence.token(&target))
                    .flatten()
                    .map(|t| (t.timestamp, t.token.as_slice()));
                let iq = contacts::build_picture_query(&target, preview, token);
                self.ask(id, Query::Picture, iq, ctx, out)?;
            }
            Command::GetAbout { jid } => {
                let jid = user_jid(&jid)?;
                let sid = ctx.next_stanza_id();
                let iq = contacts::build_about_query(&sid, &jid);
                self.ask(id, Query::About, iq, ctx, out)?;
            }
            Command::GetBusinessProfile { jid } => {
                let iq = contacts::build_business_query(&user_jid(&jid)?);
                self.ask(id, Query::Business, iq, ctx, out)?;
            }
            Command::SetBlocked { jid, blocked } => {
                let jid = user_jid(&jid)?;
                let lid = self
                    .lids
                    .iter()
                    .find(|(pn, _)| *pn == jid.user && jid.server == DEFAULT_USER_SERVER)
                    .map(|(_, lid)| Jid::new(lid.clone(), HIDDEN_USER_SERVER));
                let iq = contacts::build_block(blocked, &jid, lid.as_ref());
                self.ask(id, Query::Block, iq, ctx, out)?;
            }
            Command::GetBlockList => {
                self.ask(
                    id,
                    Query::BlockList,
                    contacts::build_block_list_query(),
                    ctx,
                    out,
                )?;
            }
            _ => return Err(CommandError::InvalidState),
        }
        Ok(())
    }

    fn ask(
        &mut self,
        command: CommandId,
        query: Query,
        iq: Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) -> Result<(), CommandError> {
        let tag = SocialIq { command, query };
        ctx.send_iq(iq, tag, None, out)
            .map(|_| ())
            .map_err(|_| CommandError::NotConnected)
    }

    fn subscribe(
        &self,
        jid: &Jid,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) -> Result<(), CommandError> {
        let stanza =
            presence::build_subscribe(&ctx.next_stanza_id(), jid, self.presence.token(jid));
        ctx.send(&stanza, out)
            .map_err(|_| CommandError::NotConnected)
    }

    /// The answer to one of this module's IQs.
    pub(crate) fn handle_iq(&mut self, iq: SocialIq, result: IqResult, out: &mut Outputs) {
        let answer =
            match (&iq.query, &result) {
                (Query::Picture, _) => contacts::parse_picture_answer(result.as_ref())
                    .map(CommandOutput::ProfilePicture),
                (_, Err(error)) => Err(error.command_error()),
                (Query::Numbers(digits), Ok(node)) => contacts::parse_number_answer(node, digits)
                    .map(|(infos, pairs)| {
                        for pair in pairs {
                            self.learn_lid(pair);
                        }
                        CommandOutput::Numbers(infos)
                    }),
                (Query::About, Ok(node)) => {
                    contacts::parse_about_answer(node).map(CommandOutput::About)
                }
                (Query::Business, Ok(node)) => {
                    contacts::parse_business_answer(node).map(CommandOutput::BusinessProfile)
                }
                (Query::BlockList, Ok(node)) => {
                    contacts::parse_block_list(node).map(CommandOutput::BlockList)
                }
                (Query::Block, Ok(_)) => Ok(CommandOutput::None),
            };
        done(out, iq.command, answer);
    }

    fn learn_lid(&mut self, (pn, lid): (String, String)) {
        self.lids.retain(|(p, _)| *p != pn);
        if self.lids.len() >= CONTACTS_MAX_KNOWN_LIDS {
            self.lids.remove(0);
        }
        self.lids.push((pn, lid));
    }

    /// A `<call>`: acknowledged, and reported unless it is media negotiation.
    pub(crate) fn handle_call(&mut self, node: &Node, ctx: &mut Context<'_>, out: &mut Outputs) {
        ctx.ack(node, out);
        if let Some(mut event) = calls::parse_call(node) {
            self.offers.track(&mut event);
            out.event(Event::Call(Box::new(event)));
        }
    }

    /// An `<ack class="call">`: ends the `RejectCall` it answers (an `error` code fails it,
    /// typed as IQ errors are).
    pub(crate) fn handle_call_ack(&mut self, node: &Node, out: &mut Outputs) {
        let id = node.attr_str("id").unwrap_or_default();
        let Some(at) = self.rejects.iter().position(|(s, _)| s == id) else {
            return;
        };
        let (_, command) = self.rejects.remove(at);
        let result = match node
            .attr_str("error")
            .map(|e| e.parse::<u16>().unwrap_or(0))
        {
            None => Ok(CommandOutput::None),
            Some(code) => Err(IqError::Error {
                code,
                text: String::new(),
                backoff: None,
            }
            .command_error()),
        };
        done(out, command, result);
    }

    /// The connection ended: rejects still waiting for their ack fail (`NotConnected`; the
    /// server may or may not have taken them).
    pub(crate) fn handle_disconnected(&mut self, out: &mut Outputs) {
        for (_, command) in core::mem::take(&mut self.rejects) {
            done(out, command, Err(CommandError::NotConnected));
        }
    }

    /// A `<presence>` or `<chatstate>` update (neither is acknowledged).
    pub(crate) fn handle_presence(&mut self, node: &Node, out: &mut Outputs) {
        if let Some(update) = presence::parse_presence(node) {
            out.event(Event::Presence(update));
        } else if let Some(update) = presence::parse_chat_state(node) {
            out.event(Event::ChatState(update));
        }
    }

    /// A `<notification type="privacy_token">`: acknowledged, its tokens kept and stored
    /// (space `privacy-token`, so that they survive a restart).
    pub(crate) fn handle_privacy_tokens(
        &mut self,
        node: &Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let mut batch = Batch::default();
        for (jid, token) in presence::parse_privacy_tokens(node) {
            let value = token.encode();
            let change = self.presence.learn_token(jid.clone(), token);
            if let Some(evicted) = change.evicted {
                batch.changes.push(Change::Delete {
                    space: Space::PrivacyToken,
                    key: evicted.to_string(),
                });
            }
            if change.kept {
                batch.changes.push(Change::Put(Record {
                    space: Space::PrivacyToken,
                    key: jid.to_string(),
                    value,
                }));
            }
        }
        // Stored before the ack: a token acknowledged is a token kept.
        ctx.persist(batch, out);
        ctx.ack(node, out);
    }

    /// The state restored from the host's records: the stored privacy tokens. A record that
    /// cannot be read is reported (`Event::RecordCorrupt`) and treated as absent.
    pub(crate) fn restore(records: &[Record], out: &mut Outputs) -> Social {
        let mut social = Social::default();
        for record in records.iter().filter(|r| r.space == Space::PrivacyToken) {
            let token = PrivacyToken::decode(&record.value);
            let jid = user_jid(&record.key).map_err(|_| RecordError::BadField("key"));
            match jid.and_then(|jid| Ok((jid, token?))) {
                Ok((jid, token)) => {
                    social.presence.learn_token(jid, token);
                }
                Err(error) => out.event(Event::RecordCorrupt {
                    space: record.space,
                    key: record.key.clone(),
                    error,
                }),
            }
        }
        social
    }

    /// Reports the push name (`notify`) a stanza carries for its sender, once per change.
    pub(crate) fn learn_push_name(&mut self, node: &Node, out: &mut Outputs) {
        let Some(name) = node
            .attr_str("notify")
            .filter(|n| !n.is_empty() && *n != "-")
        else {
            return;
        };
        let sender = node
            .attr_jid("participant")
            .or_else(|| node.attr_jid("from"))
            .filter(|j| matches!(&*j.server, DEFAULT_USER_SERVER | HIDDEN_USER_SERVER))
            .map(|j| j.to_non_device());
        let Some(jid) = sender.filter(|j| !j.user.is_empty()) else {
            return;
        };
        match self.push_names.iter().position(|(j, _)| *j == jid) {
            Some(index) if self.push_names.get(index).is_some_and(|(_, n)| n == name) => return,
            Some(index) => {
                self.push_names.remove(index);
            }
            None if self.push_names.len() >= CONTACTS_MAX_PUSH_NAMES => {
                self.push_names.remove(0);
            }
            None => {}
        }
        self.push_names.push((jid.clone(), name.to_owned()));
        out.event(Event::PushName(PushName {
            jid,
            name: name.to_owned(),
        }));
    }

    /// Logged in again: our presence and the subscriptions are renewed without the application
    /// asking (the server forgets them with the connection).
    pub(crate) fn handle_connected(&mut self, ctx: &mut Context<'_>, out: &mut Outputs) {
        if let (Some(available), Some(name)) =
            (self.presence.own, ctx.config().profile.push_name.clone())
        {
            let _ = ctx.send(&presence::build_own_presence(available, &name), out);
        }
        let subscriptions = self.presence.subscriptions().to_vec();
        for jid in &subscriptions {
            if self.subscribe(jid, ctx, out).is_err() {
                break;
            }
        }
    }

    /// The device was unlinked: forget everything learned about contacts.
    pub(crate) fn wipe(&mut self) {
        *self = Social::default();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::Output;

    #[test]
    fn stored_tokens_are_restored_and_bad_ones_reported() {
        let good = PrivacyToken {
            timestamp: 5,
            token: vec![9; 4],
        };
        let record = |key: &str, value: Vec<u8>| Record {
            space: Space::PrivacyToken,
            key: key.to_owned(),
            value,
        };
        let records = vec![
            record("15551234567@s.whatsapp.net", good.encode()),
            record("15557654321@s.whatsapp.net", vec![0xFF]),
            record("not a jid", good.encode()),
        ];
        let mut out = Outputs::default();
        let social = Social::restore(&records, &mut out);
        let jid: Jid = "15551234567@s.whatsapp.net".parse().unwrap();
        assert_eq!(social.presence.token(&jid), Some(&good));
        let mut corrupt = Vec::new();
        while let Some(output) = out.pop() {
            if let Output::Event(Event::RecordCorrupt { key, error, .. }) = output {
                corrupt.push((key, error));
            }
        }
        assert_eq!(
            corrupt,
            vec![
                (
                    "15557654321@s.whatsapp.net".to_owned(),
                    RecordError::BadProtobuf
                ),
                ("not a jid".to_owned(), RecordError::BadField("key")),
            ]
        );
    }
}
