//! The `Groups` sub-machine: group administration commands (one `w:g2` IQ each, two for a
//! description whose current id is not known yet) and `w:gp2` notifications, which update
//! what the client knows of its groups and are reported as [`GroupNotification`] events
//! (features.md §5; docs/groups.md).
//!
//! What the client knows of a group (its last metadata, changed by notifications) is kept in
//! memory only, for at most `limits::GROUPS_MAX_KNOWN` groups; the server stays the source of
//! truth (`GroupCommand::GetInfo`, `ListJoined`).

mod types;
pub mod wire;

use std::collections::BTreeMap;

use crate::binary::Node;
use crate::limits::{GROUP_MAX_DESCRIPTION_BYTES, GROUP_MAX_SUBJECT_BYTES, GROUPS_MAX_KNOWN};

pub use types::{
    AddressingMode, GroupChange, GroupCommand, GroupInfo, GroupNotification, GroupOutput,
    GroupParticipant, GroupSetting, JoinRequest, MembershipChange, ParticipantAction,
    ParticipantResult, ParticipantRole, ParticipantStatus,
};

use super::command::{CommandError, CommandId, CommandOutput};
use super::context::Context;
use super::event::Event;
use super::iq::IqResult;
use super::output::Outputs;
use super::owner::{Owner, Tag};

/// What an awaited group IQ was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupIq {
    command: CommandId,
    op: Op,
}

impl Tag for GroupIq {
    const OWNER: Owner = Owner::Groups;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Create,
    Info,
    List,
    Participants(ParticipantAction),
    /// Metadata asked for the current description id, then the description is set.
    DescriptionPrev {
        group: String,
        text: Option<String>,
    },
    Done,
    InviteCode,
    Join,
    Leave(String),
    JoinRequests,
    /// Approve (`true`) or reject join requests.
    ResolveJoinRequests(bool),
    /// A V4 invite accepted for this group.
    Accepted(String),
    /// A picture set (`false`) or removed (`true`).
    Picture {
        removed: bool,
    },
}

/// The group sub-machine.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    known: BTreeMap<String, GroupInfo>,
}

/// What a notification asks of the rest of the client.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Followups {
    /// Groups a member (or one of its devices) left: our sender key there is rotated.
    pub(crate) departed: Vec<String>,
}

impl Groups {
    /// What the client knows of `group` (its last metadata with the changes announced since).
    pub(crate) fn known(&self, group: &str) -> Option<&GroupInfo> {
        self.known.get(group)
    }

    /// Runs a group command; ends in one `CommandDone`, now (refused) or with the answer.
    pub(crate) fn command(
        &mut self,
        id: CommandId,
        command: GroupCommand,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        match self.request(command, ctx) {
            Ok((iq, op)) => send(id, iq, op, ctx, out),
            Err(error) => done(id, Err(error), out),
        }
    }

    fn request(
        &mut self,
        command: GroupCommand,
        ctx: &mut Context<'_>,
    ) -> Result<(Node, Op), CommandError> {
        if !ctx.is_connected() {
            return Err(CommandError::NotConnected);
        }
        Ok(match command {
            GroupCommand::Create {
                subject,
                participants,
            } => {
                check_text(&subject, GROUP_MAX_SUBJECT_BYTES, false)?;
                let users = wire::user_jids(&participants)?;
                let key = new_key(ctx);
                (wire::create(&subject, &key, &users), Op::Create)
            }
            GroupCommand::GetInfo { group } => (wire::metadata(wire::group_jid(&group)?), Op::Info),
            GroupCommand::ListJoined => (wire::participating(), Op::List),
            GroupCommand::ChangeParticipants {
                group,
                action,
                participants,
            } => {
                let (group, users) = group_and_users(&group, &participants)?;
                (
                    wire::participants(group, action, &users),
                    Op::Participants(action),
                )
            }
            GroupCommand::SetSubject { group, subject } => {
                check_text(&subject, GROUP_MAX_SUBJECT_BYTES, false)?;
                (wire::subject(wire::group_jid(&group)?, &subject), Op::Done)
            }
            GroupCommand::SetDescription { group, description } => {
                let jid = wire::group_jid(&group)?;
                if let Some(text) = &description {
                    check_text(text, GROUP_MAX_DESCRIPTION_BYTES, true)?;
                }
                match self.known.get(&jid.to_string()) {
                    Some(info) => {
                        let prev = info.description_id.clone();
                        let key = new_key(ctx);
                        let iq =
                            wire::description(jid, description.as_deref(), &key, prev.as_deref());
                        (iq, Op::Done)
                    }
                    None => (
                        wire::metadata(jid),
                        Op::DescriptionPrev {
                            group,
                            text: description,
                        },
                    ),
                }
            }
            GroupCommand::SetSetting { group, setting } => {
                (wire::setting(wire::group_jid(&group)?, setting), Op::Done)
            }
            GroupCommand::GetInviteCode { group } => (
                wire::invite(wire::group_jid(&group)?, false),
                Op::InviteCode,
            ),
            GroupCommand::RevokeInviteCode { group } => {
                (wire::invite(wire::group_jid(&group)?, true), Op::InviteCode)
            }
            GroupCommand::JoinWithInvite { code } => {
                let code = code.rsplit('/').next().unwrap_or_default();
                check_code(code)?;
                (wire::join(code), Op::Join)
            }
            GroupCommand::Leave { group } => {
                let jid = wire::group_jid(&group)?;
                let group = jid.to_string();
                (wire::leave(jid), Op::Leave(group))
            }
            GroupCommand::ListJoinRequests { group } => (
                wire::join_requests(wire::group_jid(&group)?),
                Op::JoinRequests,
            ),
            GroupCommand::ResolveJoinRequests {
                group,
                approve,
                participants,
            } => {
                let (group, users) = group_and_users(&group, &participants)?;
                (
                    wire::resolve_join_requests(group, approve, &users),
                    Op::ResolveJoinRequests(approve),
                )
            }
            GroupCommand::AcceptInvite {
                group,
                code,
                expiration,
                inviter,
            } => {
                let jid = wire::group_jid(&group)?;
                let inviter = wire::user_jid(&inviter)?;
                check_code(&code)?;
                let group = jid.to_string();
                (
                    wire::accept_invite(jid, &code, expiration, inviter),
                    Op::Accepted(group),
                )
            }
            GroupCommand::SetPicture { jid, jpeg } => {
                let target = picture_target(&jid, ctx)?;
                if jpeg.as_deref().is_some_and(|j| !wire::is_picture(j)) {
                    return Err(CommandError::InvalidMessage);
                }
                let removed = jpeg.is_none();
                (
                    wire::set_picture(target, jpeg.as_deref()),
                    Op::Picture { removed },
                )
            }
        })
    }

    /// The answer to a group IQ.
    pub(crate) fn handle_iq(
        &mut self,
        tag: GroupIq,
        result: IqResult,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let id = tag.command;
        let answer = match result {
            Ok(answer) => answer,
            Err(error) => return done(id, Err(error.command_error()), out),
        };
        let output = match tag.op {
            Op::Create => wire::parse_create_answer(&answer).map(|(info, participants)| {
                self.learn(&info, ctx);
                GroupOutput::Created { info, participants }
            }),
            Op::Info => wire::parse_group_answer(&answer).map(|info| {
                self.learn(&info, ctx);
                GroupOutput::Info(info)
            }),
            Op::List => wire::parse_group_list(&answer).map(|list| {
                for info in &list {
                    self.learn(info, ctx);
                }
                GroupOutput::List(list)
            }),
            Op::Participants(action) => {
                wire::parse_participants_answer(&answer, action).map(GroupOutput::Participants)
            }
            Op::DescriptionPrev { group, text } => {
                let info = match wire::parse_group_answer(&answer) {
                    Ok(info) => info,
                    Err(malformed) => return done(id, Err(malformed.into()), out),
                };
                self.learn(&info, ctx);
                let Ok(jid) = wire::group_jid(&group) else {
                    return done(id, Err(CommandError::InvalidAddress), out);
                };
                let key = new_key(ctx);
                let iq =
                    wire::description(jid, text.as_deref(), &key, info.description_id.as_deref());
                return send(id, iq, Op::Done, ctx, out);
            }
            Op::Done => return done(id, Ok(CommandOutput::None), out),
            Op::InviteCode => wire::parse_invite_answer(&answer).map(GroupOutput::InviteCode),
            Op::Join => wire::parse_join_answer(&answer).map(|(group, pending_approval)| {
                GroupOutput::Joined {
                    group,
                    pending_approval,
                }
            }),
            Op::Leave(group) => {
                self.known.remove(&group);
                return done(id, Ok(CommandOutput::None), out);
            }
            Op::JoinRequests => wire::parse_join_requests(&answer).map(GroupOutput::JoinRequests),
            Op::ResolveJoinRequests(approve) => {
                wire::parse_join_request_results(&answer, approve).map(GroupOutput::Participants)
            }
            Op::Accepted(group) => Ok(GroupOutput::Joined {
                group,
                pending_approval: false,
            }),
            Op::Picture { removed } => {
                wire::parse_picture_answer(&answer, removed).map(|id| GroupOutput::Picture { id })
            }
        };
        let result = output
            .map(|output| CommandOutput::Group(Box::new(output)))
            .map_err(CommandError::from);
        done(id, result, out);
    }

    /// A `<notification type="w:gp2">`: acknowledged, applied to what we know, reported.
    /// A malformed one is acknowledged and dropped (nothing to apply).
    pub(crate) fn handle_notification(
        &mut self,
        node: &Node,
        ctx: &mut Context<'_>,
        out: &mut Outputs,
    ) -> Followups {
        ctx.ack(node, out);
        let mut followups = Followups::default();
        let Ok(notification) = wire::parse_notification(node) else {
            return followups;
        };
        let own: Vec<String> = [ctx.own_jid(), ctx.own_lid()]
            .into_iter()
            .flatten()
            .map(|j| j.to_non_device().to_string())
            .collect();
        for change in &notification.changes {
            match change {
                GroupChange::Created(info) => self.learn(info, ctx),
                GroupChange::Participants {
                    change: MembershipChange::Removed | MembershipChange::Left,
                    ..
                } if !followups.departed.contains(&notification.group) => {
                    followups.departed.push(notification.group.clone());
                }
                GroupChange::Participants {
                    change: MembershipChange::Removed | MembershipChange::Left,
                    ..
                } => {}
                GroupChange::Participants { participants, .. } => {
                    for pair in wire::lid_pairs(participants) {
                        ctx.lid_mapping(pair);
                    }
                }
                _ => {}
            }
            if let Some(info) = self.known.get_mut(&notification.group)
                && !wire::apply(info, change, &own)
            {
                self.known.remove(&notification.group);
            }
        }
        out.event(Event::Group(notification));
        followups
    }

    /// Keeps `info` as what we know of its group (up to `GROUPS_MAX_KNOWN` groups) and
    /// stores its members' phone-number/LID pairs.
    fn learn(&mut self, info: &GroupInfo, ctx: &mut Context<'_>) {
        for pair in wire::lid_pairs(&info.participants) {
            ctx.lid_mapping(pair);
        }
        if self.known.len() < GROUPS_MAX_KNOWN || self.known.contains_key(&info.jid) {
            self.known.insert(info.jid.clone(), info.clone());
        }
    }

    /// The device is gone.
    pub(crate) fn wipe(&mut self) {
        self.known = BTreeMap::new();
    }
}

/// A group and at least one user, each valid.
fn group_and_users(
    group: &str,
    participants: &[String],
) -> Result<(crate::binary::Jid, Vec<crate::binary::Jid>), CommandError> {
    let group = wire::group_jid(group)?;
    let users = wire::user_jids(participants)?;
    if users.is_empty() {
        return Err(CommandError::InvalidMessage);
    }
    Ok((group, users))
}

/// An invite code: 1 to 64 ASCII letters and digits.
fn check_code(code: &str) -> Result<(), CommandError> {
    if code.is_empty() || code.len() > 64 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CommandError::InvalidMessage);
    }
    Ok(())
}

/// The `target` of a picture change: the group, or none for our own JID (phone number or
/// LID, any device); any other JID is refused.
fn picture_target(
    jid: &str,
    ctx: &Context<'_>,
) -> Result<Option<crate::binary::Jid>, CommandError> {
    if let Ok(group) = wire::group_jid(jid) {
        return Ok(Some(group));
    }
    let user = wire::user_jid(jid)?;
    let own = [ctx.own_jid(), ctx.own_lid()]
        .into_iter()
        .flatten()
        .any(|o| o.to_non_device() == user);
    if own {
        Ok(None)
    } else {
        Err(CommandError::InvalidAddress)
    }
}

fn check_text(text: &str, max: usize, may_be_empty: bool) -> Result<(), CommandError> {
    if (text.is_empty() && !may_be_empty) || text.len() > max {
        return Err(CommandError::InvalidMessage);
    }
    Ok(())
}

/// A fresh id for `create`'s `key` and a new description.
fn new_key(ctx: &mut Context<'_>) -> String {
    let bytes: [u8; 9] = ctx.rng().bytes();
    let mut key = String::from("3EB0");
    for b in bytes {
        key.push_str(&format!("{b:02X}"));
    }
    key
}

fn send(id: CommandId, iq: Node, op: Op, ctx: &mut Context<'_>, out: &mut Outputs) {
    let tag = GroupIq { command: id, op };
    if ctx.send_iq(iq, tag, None, out).is_err() {
        done(id, Err(CommandError::NotConnected), out);
    }
}

fn done(id: CommandId, result: Result<CommandOutput, CommandError>, out: &mut Outputs) {
    out.event(Event::CommandDone { id, result });
}
