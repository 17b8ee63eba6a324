//! Group commands, outputs and notifications for JavaScript (`index.d.ts`: `GroupCommand`
//! types, `GroupInfo`, `GroupChange`). Every conversion matches exhaustively (walink-core's
//! `exhaustive` feature), so a core variant added later fails to compile here.

use walink_core::client::Command;
use walink_core::client::groups::{
    AddressingMode, GroupChange, GroupCommand, GroupInfo, GroupNotification, GroupOutput,
    GroupParticipant, GroupSetting, MembershipChange, ParticipantAction, ParticipantResult,
    ParticipantRole, ParticipantStatus,
};
use wasm_bindgen::JsValue;

use crate::js::{Obj, Reader, array, strings};

/// A group command by its `type`, or `None` when `name` is no group command.
pub(crate) fn command_from_js(name: &str, r: &Reader<'_>) -> Result<Option<Command>, JsValue> {
    let fields: &[&str] = match name {
        "createGroup" => &["type", "subject", "participants"],
        "groupInfo" | "groupInviteCode" | "revokeGroupInvite" | "leaveGroup" => &["type", "group"],
        "listGroups" => &["type"],
        "changeGroupParticipants" => &["type", "group", "action", "participants"],
        "setGroupSubject" => &["type", "group", "subject"],
        "setGroupDescription" => &["type", "group", "description"],
        "setGroupSetting" => &["type", "group", "setting", "value"],
        "joinGroup" => &["type", "code"],
        "groupJoinRequests" => &["type", "group"],
        "resolveGroupJoinRequests" => &["type", "group", "approve", "participants"],
        "acceptGroupInvite" => &["type", "group", "code", "expiration", "inviter"],
        "setPicture" => &["type", "jid", "jpeg"],
        _ => return Ok(None),
    };
    r.only(fields)?;
    let command = match name {
        "createGroup" => GroupCommand::Create {
            subject: r.string("subject")?,
            participants: r.strings("participants")?,
        },
        "groupInfo" => GroupCommand::GetInfo {
            group: r.string("group")?,
        },
        "listGroups" => GroupCommand::ListJoined,
        "changeGroupParticipants" => {
            let action = r.string("action")?;
            let action = match action.as_str() {
                "add" => ParticipantAction::Add,
                "remove" => ParticipantAction::Remove,
                "promote" => ParticipantAction::Promote,
                "demote" => ParticipantAction::Demote,
                _ => return Err(r.error(&format!("unknown participant action {action:?}"))),
            };
            GroupCommand::ChangeParticipants {
                group: r.string("group")?,
                action,
                participants: r.strings("participants")?,
            }
        }
        "setGroupSubject" => GroupCommand::SetSubject {
            group: r.string("group")?,
            subject: r.string("subject")?,
        },
        "setGroupDescription" => GroupCommand::SetDescription {
            group: r.string("group")?,
            description: r.opt_string("description")?,
        },
        "setGroupSetting" => {
            let setting = r.string("setting")?;
            let setting = match setting.as_str() {
                "announce" => GroupSetting::Announce(r.bool("value")?),
                "locked" => GroupSetting::Locked(r.bool("value")?),
                "approvalRequired" => GroupSetting::ApprovalRequired(r.bool("value")?),
                "membersCanAdd" => GroupSetting::MembersCanAdd(r.bool("value")?),
                "ephemeral" => GroupSetting::Ephemeral(
                    r.opt_u32("value")?
                        .ok_or_else(|| r.error("missing field \"value\""))?,
                ),
                _ => return Err(r.error(&format!("unknown group setting {setting:?}"))),
            };
            GroupCommand::SetSetting {
                group: r.string("group")?,
                setting,
            }
        }
        "groupInviteCode" => GroupCommand::GetInviteCode {
            group: r.string("group")?,
        },
        "revokeGroupInvite" => GroupCommand::RevokeInviteCode {
            group: r.string("group")?,
        },
        "joinGroup" => GroupCommand::JoinWithInvite {
            code: r.string("code")?,
        },
        "groupJoinRequests" => GroupCommand::ListJoinRequests {
            group: r.string("group")?,
        },
        "resolveGroupJoinRequests" => GroupCommand::ResolveJoinRequests {
            group: r.string("group")?,
            approve: r.bool("approve")?,
            participants: r.strings("participants")?,
        },
        "acceptGroupInvite" => GroupCommand::AcceptInvite {
            group: r.string("group")?,
            code: r.string("code")?,
            expiration: r.u64("expiration")?,
            inviter: r.string("inviter")?,
        },
        "setPicture" => GroupCommand::SetPicture {
            jid: r.string("jid")?,
            jpeg: r.opt_bytes("jpeg")?,
        },
        _ => GroupCommand::Leave {
            group: r.string("group")?,
        },
    };
    Ok(Some(Command::Group(command)))
}

/// The `kind` of a group command's output.
pub(crate) fn output_kind(output: &GroupOutput) -> &'static str {
    match output {
        GroupOutput::Created { .. } => "groupCreated",
        GroupOutput::Info(_) => "groupInfo",
        GroupOutput::List(_) => "groupList",
        GroupOutput::Participants(_) => "groupParticipants",
        GroupOutput::InviteCode(_) => "groupInviteCode",
        GroupOutput::Joined { .. } => "groupJoined",
        GroupOutput::JoinRequests(_) => "groupJoinRequests",
        GroupOutput::Picture { .. } => "picture",
    }
}

/// The fields of a group command's output beside its `kind`.
pub(crate) fn output_fields(js: Obj, output: &GroupOutput) -> Obj {
    match output {
        GroupOutput::Created { info, participants } => js
            .set("info", info_to_js(info))
            .set("participants", array(participants, result_to_js)),
        GroupOutput::Info(info) => js.set("info", info_to_js(info)),
        GroupOutput::List(groups) => js.set("groups", array(groups, info_to_js)),
        GroupOutput::Participants(results) => js.set("results", array(results, result_to_js)),
        GroupOutput::InviteCode(code) => js.str("code", code),
        GroupOutput::Joined {
            group,
            pending_approval,
        } => js
            .str("group", group)
            .bool("pendingApproval", *pending_approval),
        GroupOutput::JoinRequests(requests) => js.set(
            "requests",
            array(requests, |r| {
                Obj::new()
                    .str("jid", &r.jid)
                    .opt_str("phoneNumber", r.phone_number.as_deref())
                    .num("requestedAt", r.requested_at as f64)
                    .done()
            }),
        ),
        GroupOutput::Picture { id } => js.opt_str("id", id.as_deref()),
    }
}

/// The fields of a `group` event beside its `type`.
pub(crate) fn notification_fields(js: Obj, n: &GroupNotification) -> Obj {
    js.str("group", &n.group)
        .opt_str("actor", n.actor.as_deref())
        .num("timestamp", n.timestamp as f64)
        .set("changes", array(&n.changes, change_to_js))
}

fn role(role: ParticipantRole) -> &'static str {
    match role {
        ParticipantRole::Member => "member",
        ParticipantRole::Admin => "admin",
        ParticipantRole::SuperAdmin => "superadmin",
    }
}

fn participant_to_js(p: &GroupParticipant) -> JsValue {
    Obj::new()
        .str("jid", &p.jid)
        .opt_str("phoneNumber", p.phone_number.as_deref())
        .opt_str("lid", p.lid.as_deref())
        .str("role", role(p.role))
        .done()
}

/// A `GroupInfo` object.
pub(crate) fn info_to_js(info: &GroupInfo) -> JsValue {
    Obj::new()
        .str("jid", &info.jid)
        .str("subject", &info.subject)
        .opt_str("subjectOwner", info.subject_owner.as_deref())
        .num("subjectTime", info.subject_time as f64)
        .num("creation", info.creation as f64)
        .opt_str("owner", info.owner.as_deref())
        .opt_str("ownerPn", info.owner_pn.as_deref())
        .opt_str("description", info.description.as_deref())
        .opt_str("descriptionId", info.description_id.as_deref())
        .set("participants", array(&info.participants, participant_to_js))
        .set("admins", strings(info.admins().map(|p| p.jid.as_str())))
        .num("size", info.size.into())
        .bool("announce", info.announce)
        .bool("locked", info.locked)
        .bool("approvalRequired", info.approval_required)
        .num("ephemeralSeconds", info.ephemeral_seconds.into())
        .bool("membersCanAdd", info.members_can_add)
        .str(
            "addressingMode",
            match info.addressing_mode {
                AddressingMode::Pn => "pn",
                AddressingMode::Lid => "lid",
            },
        )
        .done()
}

fn result_to_js(r: &ParticipantResult) -> JsValue {
    let status = match &r.status {
        ParticipantStatus::Ok => "ok",
        ParticipantStatus::InviteRequired { .. } => "inviteRequired",
        ParticipantStatus::NotAuthorized => "notAuthorized",
        ParticipantStatus::NotFound => "notFound",
        ParticipantStatus::RecentlyLeft => "recentlyLeft",
        ParticipantStatus::AlreadyMember => "alreadyMember",
        ParticipantStatus::GroupFull => "groupFull",
        ParticipantStatus::Failed { .. } => "failed",
    };
    let js = Obj::new()
        .str("jid", &r.jid)
        .opt_str("alt", r.alt.as_deref())
        .str("status", status);
    match &r.status {
        ParticipantStatus::InviteRequired { code, expiration } => js
            .str("inviteCode", code)
            .num("inviteExpiration", *expiration as f64),
        ParticipantStatus::Failed { code } => js.num("code", (*code).into()),
        _ => js,
    }
    .done()
}

/// The `kind` of a group change.
pub(crate) fn change_kind(change: &GroupChange) -> &'static str {
    match change {
        GroupChange::Created(_) => "created",
        GroupChange::Participants { .. } => "participants",
        GroupChange::Subject(_) => "subject",
        GroupChange::Description { .. } => "description",
        GroupChange::Announce(_) => "announce",
        GroupChange::Locked(_) => "locked",
        GroupChange::ApprovalRequired(_) => "approvalRequired",
        GroupChange::Ephemeral(_) => "ephemeral",
        GroupChange::MembersCanAdd(_) => "membersCanAdd",
        GroupChange::InviteCode(_) => "inviteCode",
        GroupChange::Deleted => "deleted",
    }
}

fn change_to_js(change: &GroupChange) -> JsValue {
    let js = Obj::tagged("kind", change_kind(change));
    match change {
        GroupChange::Created(info) => js.set("info", info_to_js(info)),
        GroupChange::Participants {
            change,
            participants,
        } => js
            .str(
                "change",
                match change {
                    MembershipChange::Added => "added",
                    MembershipChange::Removed => "removed",
                    MembershipChange::Left => "left",
                    MembershipChange::Promoted => "promoted",
                    MembershipChange::Demoted => "demoted",
                },
            )
            .set("participants", array(participants, participant_to_js)),
        GroupChange::Subject(subject) => js.str("subject", subject),
        GroupChange::Description { id, text } => js
            .opt_str("id", id.as_deref())
            .opt_str("text", text.as_deref()),
        GroupChange::Announce(on)
        | GroupChange::Locked(on)
        | GroupChange::ApprovalRequired(on)
        | GroupChange::MembersCanAdd(on) => js.bool("on", *on),
        GroupChange::Ephemeral(seconds) => js.num("seconds", (*seconds).into()),
        GroupChange::InviteCode(code) => js.str("code", code),
        GroupChange::Deleted => js,
    }
    .done()
}
