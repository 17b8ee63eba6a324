//! Pure `w:g2` stanza builders and parsers of answers and `w:gp2` notifications
//! (features.md §5; whatsmeow `group.go`, Baileys `groups.ts`). Nothing here holds state.
//!
//! Public so that independent implementations can be compared with them (the Baileys
//! differential test in `tests/tests/groups_interop.rs`). Every IQ is built without its id (the IQ
//! table assigns it). Parsers take what the network
//! sent and bound what they keep by `limits::GROUP_*`.

use crate::binary::{DEFAULT_USER_SERVER, GROUP_SERVER, HIDDEN_USER_SERVER, Jid, Node, Value};
use crate::limits::{
    GROUP_MAX_CHANGES_PER_NOTIFICATION, GROUP_MAX_DESCRIPTION_BYTES, GROUP_MAX_PARTICIPANTS,
    GROUP_MAX_SUBJECT_BYTES, GROUPS_MAX_LISTED, PROFILE_PICTURE_MAX_BYTES,
};

use super::super::command::CommandError;
use super::types::{
    AddressingMode, GroupChange, GroupInfo, GroupNotification, GroupParticipant, GroupSetting,
    JoinRequest, MembershipChange, ParticipantAction, ParticipantResult, ParticipantRole,
    ParticipantStatus,
};

/// A group JID from the application (`<id>@g.us`).
pub fn group_jid(text: &str) -> Result<Jid, CommandError> {
    match text.parse::<Jid>() {
        Ok(jid) if jid.server == GROUP_SERVER && !jid.user.is_empty() => Ok(jid),
        _ => Err(CommandError::InvalidAddress),
    }
}

/// A user JID from the application (phone number or LID, no device).
pub fn user_jid(text: &str) -> Result<Jid, CommandError> {
    match text.parse::<Jid>() {
        Ok(jid)
            if (jid.server == DEFAULT_USER_SERVER || jid.server == HIDDEN_USER_SERVER)
                && !jid.user.is_empty() =>
        {
            Ok(jid.to_non_device())
        }
        _ => Err(CommandError::InvalidAddress),
    }
}

/// Users from the application: each valid, none twice, at most `GROUP_MAX_PARTICIPANTS`.
pub fn user_jids(texts: &[String]) -> Result<Vec<Jid>, CommandError> {
    if texts.len() > GROUP_MAX_PARTICIPANTS {
        return Err(CommandError::InvalidMessage);
    }
    let mut jids: Vec<Jid> = Vec::with_capacity(texts.len());
    for text in texts {
        let jid = user_jid(text)?;
        if !jids.contains(&jid) {
            jids.push(jid);
        }
    }
    Ok(jids)
}

/// `to="@g.us"`: the group server itself.
fn group_server() -> Jid {
    Jid::new("", GROUP_SERVER)
}

fn g2(kind: &'static str, to: Jid, child: Node) -> Node {
    Node::new("iq")
        .attr("to", Value::Jid(to))
        .attr("type", kind)
        .attr("xmlns", "w:g2")
        .children_from([child])
}

fn participant_nodes(users: &[Jid]) -> Vec<Node> {
    users
        .iter()
        .map(|jid| Node::new("participant").attr("jid", Value::Jid(jid.clone())))
        .collect()
}

/// Create: `<create subject key><participant jid/>…</create>` to `@g.us` (`key`: a fresh
/// message id, as Baileys sends).
pub fn create(subject: &str, key: &str, participants: &[Jid]) -> Node {
    g2(
        "set",
        group_server(),
        Node::new("create")
            .attr("subject", subject.to_owned())
            .attr("key", key.to_owned())
            .children_from(participant_nodes(participants)),
    )
}

/// Metadata: `<query request="interactive"/>`.
pub fn metadata(group: Jid) -> Node {
    g2(
        "get",
        group,
        Node::new("query").attr("request", "interactive"),
    )
}

/// Every group we are in: `<participating><participants/><description/></participating>`.
pub fn participating() -> Node {
    g2(
        "get",
        group_server(),
        Node::new("participating")
            .children_from([Node::new("participants"), Node::new("description")]),
    )
}

/// `<add|remove|promote|demote><participant jid/>…</…>`.
pub fn participants(group: Jid, action: ParticipantAction, users: &[Jid]) -> Node {
    g2(
        "set",
        group,
        Node::new(action.tag()).children_from(participant_nodes(users)),
    )
}

/// `<subject>name</subject>`.
pub fn subject(group: Jid, subject: &str) -> Node {
    g2(
        "set",
        group,
        Node::new("subject").bytes(subject.as_bytes().to_vec()),
    )
}

/// `<description id [prev]><body>text</body></description>`, or `delete="true"` without body.
pub fn description(group: Jid, text: Option<&str>, id: &str, prev: Option<&str>) -> Node {
    let mut node = Node::new("description");
    node = match text {
        Some(_) => node.attr("id", id.to_owned()),
        None => node.attr("delete", "true"),
    };
    if let Some(prev) = prev {
        node = node.attr("prev", prev.to_owned());
    }
    if let Some(text) = text {
        node = node.children_from([Node::new("body").bytes(text.as_bytes().to_vec())]);
    }
    g2("set", group, node)
}

/// One setting (features.md §5.4).
pub fn setting(group: Jid, setting: GroupSetting) -> Node {
    let child = match setting {
        GroupSetting::Announce(true) => Node::new("announcement"),
        GroupSetting::Announce(false) => Node::new("not_announcement"),
        GroupSetting::Locked(true) => Node::new("locked"),
        GroupSetting::Locked(false) => Node::new("unlocked"),
        GroupSetting::ApprovalRequired(on) => Node::new("membership_approval_mode")
            .children_from([Node::new("group_join").attr("state", if on { "on" } else { "off" })]),
        GroupSetting::Ephemeral(0) => Node::new("not_ephemeral"),
        GroupSetting::Ephemeral(seconds) => {
            Node::new("ephemeral").attr("expiration", seconds.to_string())
        }
        GroupSetting::MembersCanAdd(all) => Node::new("member_add_mode").bytes(
            if all { ALL_MEMBER_ADD } else { "admin_add" }
                .as_bytes()
                .to_vec(),
        ),
    };
    g2("set", group, child)
}

/// `<invite/>`: `get` reads the code, `set` revokes it and answers the new one.
pub fn invite(group: Jid, revoke: bool) -> Node {
    g2(
        if revoke { "set" } else { "get" },
        group,
        Node::new("invite"),
    )
}

/// Join by code: `<invite code/>` to `@g.us`.
pub fn join(code: &str) -> Node {
    g2(
        "set",
        group_server(),
        Node::new("invite").attr("code", code.to_owned()),
    )
}

/// Leave: `<leave><group id=<group JID>/></leave>` to `@g.us`.
pub fn leave(group: Jid) -> Node {
    g2(
        "set",
        group_server(),
        Node::new("leave").children_from([Node::new("group").attr("id", Value::Jid(group))]),
    )
}

/// The `member_add_mode` value that lets every member add members.
const ALL_MEMBER_ADD: &str = "all_member_add";

/// The pending join requests: `get` + `<membership_approval_requests/>`.
pub fn join_requests(group: Jid) -> Node {
    g2("get", group, Node::new("membership_approval_requests"))
}

/// Approve or reject join requests: `<membership_requests_action><approve|reject><participant
/// jid/>…</…></membership_requests_action>`.
pub fn resolve_join_requests(group: Jid, approve: bool, users: &[Jid]) -> Node {
    g2(
        "set",
        group,
        Node::new("membership_requests_action").children_from([
            Node::new(join_action(approve)).children_from(participant_nodes(users))
        ]),
    )
}

fn join_action(approve: bool) -> &'static str {
    if approve { "approve" } else { "reject" }
}

/// Accept a V4 invite (`GroupInviteMessage`): `<accept code expiration admin=<inviter>/>` to
/// the group.
pub fn accept_invite(group: Jid, code: &str, expiration: u64, inviter: Jid) -> Node {
    g2(
        "set",
        group,
        Node::new("accept")
            .attr("code", code.to_owned())
            .attr("expiration", expiration.to_string())
            .attr("admin", Value::Jid(inviter)),
    )
}

/// Set (`Some` JPEG) or remove (`None`) a picture: `w:profile:picture` `set` to the server,
/// with `target` the group (none for our own picture) and `<picture type="image">JPEG</…>`;
/// no child removes it (features.md §5.4, Baileys `updateProfilePicture`).
pub fn set_picture(target: Option<Jid>, jpeg: Option<&[u8]>) -> Node {
    let mut iq = Node::new("iq");
    if let Some(target) = target {
        iq = iq.attr("target", Value::Jid(target));
    }
    iq = iq
        .attr("to", Value::Jid(Jid::server_jid()))
        .attr("type", "set")
        .attr("xmlns", "w:profile:picture");
    match jpeg {
        Some(jpeg) => iq.children_from([Node::new("picture")
            .attr("type", "image")
            .bytes(jpeg.to_vec())]),
        None => iq,
    }
}

/// Whether `bytes` may be sent as a picture: a JPEG (`FF D8 FF`) of at most
/// `PROFILE_PICTURE_MAX_BYTES`.
pub fn is_picture(bytes: &[u8]) -> bool {
    bytes.len() <= PROFILE_PICTURE_MAX_BYTES && bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// The answer to [`set_picture`]: the new picture's id; `None` for a removal (empty result).
pub fn parse_picture_answer(answer: &Node, removed: bool) -> Result<Option<String>, Malformed> {
    if removed {
        return Ok(None);
    }
    answer
        .child("picture")
        .and_then(|p| p.attr_str("id"))
        .filter(|id| !id.is_empty())
        .map(|id| Some(id.to_owned()))
        .ok_or(Malformed)
}

/// `<membership_approval_requests><membership_approval_request jid [phone_number]
/// request_time/>…`, at most `GROUP_MAX_PARTICIPANTS`.
pub fn parse_join_requests(answer: &Node) -> Result<Vec<JoinRequest>, Malformed> {
    let list = answer
        .child("membership_approval_requests")
        .ok_or(Malformed)?;
    Ok(list
        .children_by_tag("membership_approval_request")
        .take(GROUP_MAX_PARTICIPANTS)
        .filter_map(|r| {
            Some(JoinRequest {
                jid: jid_attr(r, "jid")?,
                phone_number: jid_attr(r, "phone_number"),
                requested_at: number_attr(r, "request_time").unwrap_or(0),
            })
        })
        .collect())
}

/// The answer to [`resolve_join_requests`]: one result per requester.
pub fn parse_join_request_results(
    answer: &Node,
    approve: bool,
) -> Result<Vec<ParticipantResult>, Malformed> {
    answer
        .child("membership_requests_action")
        .and_then(|a| a.child(join_action(approve)))
        .map(parse_results)
        .ok_or(Malformed)
}

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed;

impl From<Malformed> for CommandError {
    fn from(_: Malformed) -> CommandError {
        CommandError::BadAnswer
    }
}

fn text_of(node: &Node) -> Option<String> {
    node.content_bytes()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn jid_attr(node: &Node, key: &str) -> Option<String> {
    node.attr_jid(key)
        .map(|jid| jid.to_string())
        .or_else(|| node.attr_str(key).map(str::to_owned))
        .filter(|s| !s.is_empty())
}

fn number_attr<T: core::str::FromStr>(node: &Node, key: &str) -> Option<T> {
    node.attr_str(key).and_then(|v| v.parse().ok())
}

/// A `<participant jid [type] [phone_number|lid]/>`.
fn parse_participant(node: &Node) -> Option<GroupParticipant> {
    let jid = jid_attr(node, "jid")?;
    let role = match node.attr_str("type") {
        Some("superadmin") => ParticipantRole::SuperAdmin,
        Some("admin") => ParticipantRole::Admin,
        _ => ParticipantRole::Member,
    };
    let lid_form = jid.ends_with("@lid");
    Some(GroupParticipant {
        phone_number: jid_attr(node, "phone_number").filter(|_| lid_form),
        lid: jid_attr(node, "lid").filter(|_| !lid_form),
        jid,
        role,
    })
}

/// A `<group …>` node (features.md §5.1). Participants with an `error` are left out.
pub fn parse_group(group: &Node) -> Result<GroupInfo, Malformed> {
    let id = group.attr_str("id").filter(|id| !id.is_empty());
    let jid = match (id, group.attr_jid("id")) {
        (_, Some(jid)) if jid.server == GROUP_SERVER => jid.to_string(),
        (Some(id), _) if id.contains('@') => id.to_owned(),
        (Some(id), _) => format!("{id}@{GROUP_SERVER}"),
        (None, _) => return Err(Malformed),
    };
    let mut participants: Vec<GroupParticipant> = Vec::new();
    for node in group.children_by_tag("participant") {
        if participants.len() >= GROUP_MAX_PARTICIPANTS {
            break;
        }
        if node.get_attr("error").is_some() {
            continue;
        }
        if let Some(p) = parse_participant(node)
            && !participants.iter().any(|q| q.jid == p.jid)
        {
            participants.push(p);
        }
    }
    let description = group.child("description");
    let listed = u32::try_from(participants.len()).unwrap_or(u32::MAX);
    Ok(GroupInfo {
        jid,
        subject: bounded(
            group.attr_str("subject").unwrap_or_default().to_owned(),
            GROUP_MAX_SUBJECT_BYTES,
        ),
        subject_owner: jid_attr(group, "s_o"),
        subject_time: number_attr(group, "s_t").unwrap_or(0),
        creation: number_attr(group, "creation").unwrap_or(0),
        owner: jid_attr(group, "creator"),
        owner_pn: jid_attr(group, "creator_pn"),
        description: description
            .and_then(|d| d.child("body"))
            .and_then(text_of)
            .map(|t| bounded(t, GROUP_MAX_DESCRIPTION_BYTES)),
        description_id: description
            .and_then(|d| d.attr_str("id"))
            .map(str::to_owned),
        size: number_attr(group, "size").unwrap_or(listed),
        participants,
        announce: group.child("announcement").is_some(),
        locked: group.child("locked").is_some(),
        approval_required: group.child("membership_approval_mode").is_some(),
        ephemeral_seconds: group
            .child("ephemeral")
            .and_then(|e| number_attr(e, "expiration"))
            .unwrap_or(0),
        members_can_add: group.child("member_add_mode").is_some_and(all_member_add),
        addressing_mode: match group.attr_str("addressing_mode") {
            Some("lid") => AddressingMode::Lid,
            _ => AddressingMode::Pn,
        },
    })
}

fn all_member_add(node: &Node) -> bool {
    node.content_bytes() == Some(ALL_MEMBER_ADD.as_bytes())
}

/// The `<group>` child of a result.
pub fn parse_group_answer(answer: &Node) -> Result<GroupInfo, Malformed> {
    parse_group(answer.child("group").ok_or(Malformed)?)
}

/// `<groups><group/>…</groups>`, at most `GROUPS_MAX_LISTED`.
pub fn parse_group_list(answer: &Node) -> Result<Vec<GroupInfo>, Malformed> {
    let groups = answer.child("groups").ok_or(Malformed)?;
    groups
        .children_by_tag("group")
        .take(GROUPS_MAX_LISTED)
        .map(parse_group)
        .collect()
}

/// One participant's result (features.md §5.3 table).
fn parse_result(node: &Node) -> Option<ParticipantResult> {
    let jid = jid_attr(node, "jid")?;
    let alt = jid_attr(node, "phone_number").or_else(|| jid_attr(node, "lid"));
    let status = match node.attr_str("error") {
        None | Some("200") => ParticipantStatus::Ok,
        Some(code) => match code.parse::<u16>().unwrap_or(0) {
            403 => match node.child("add_request") {
                Some(request) => ParticipantStatus::InviteRequired {
                    code: request.attr_str("code").unwrap_or_default().to_owned(),
                    expiration: number_attr(request, "expiration").unwrap_or(0),
                },
                None => ParticipantStatus::NotAuthorized,
            },
            401 => ParticipantStatus::NotAuthorized,
            404 => ParticipantStatus::NotFound,
            408 => ParticipantStatus::RecentlyLeft,
            409 => ParticipantStatus::AlreadyMember,
            419 => ParticipantStatus::GroupFull,
            code => ParticipantStatus::Failed { code },
        },
    };
    Some(ParticipantResult { jid, alt, status })
}

fn parse_results(parent: &Node) -> Vec<ParticipantResult> {
    parent
        .children_by_tag("participant")
        .take(GROUP_MAX_PARTICIPANTS)
        .filter_map(parse_result)
        .collect()
}

/// The answer to `<add|remove|promote|demote>`: one result per participant.
pub fn parse_participants_answer(
    answer: &Node,
    action: ParticipantAction,
) -> Result<Vec<ParticipantResult>, Malformed> {
    answer
        .child(action.tag())
        .map(parse_results)
        .ok_or(Malformed)
}

/// The answer to create: the group, and a result for every participant it named.
pub fn parse_create_answer(
    answer: &Node,
) -> Result<(GroupInfo, Vec<ParticipantResult>), Malformed> {
    let group = answer.child("group").ok_or(Malformed)?;
    Ok((parse_group(group)?, parse_results(group)))
}

/// `<invite code/>`.
pub fn parse_invite_answer(answer: &Node) -> Result<String, Malformed> {
    answer
        .child("invite")
        .and_then(|i| i.attr_str("code"))
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .ok_or(Malformed)
}

/// The answer to a join: `<group jid/>`, or `<membership_approval_request jid/>` when an admin
/// must approve.
pub fn parse_join_answer(answer: &Node) -> Result<(String, bool), Malformed> {
    if let Some(group) = answer.child("group").and_then(|g| jid_attr(g, "jid")) {
        return Ok((group, false));
    }
    answer
        .child("membership_approval_request")
        .and_then(|r| jid_attr(r, "jid"))
        .map(|group| (group, true))
        .ok_or(Malformed)
}

/// A `<notification type="w:gp2">` (features.md §5.6). Unknown children are skipped; a
/// notification without a group sender is malformed.
pub fn parse_notification(node: &Node) -> Result<GroupNotification, Malformed> {
    let group = node
        .attr_jid("from")
        .filter(|jid| jid.server == GROUP_SERVER && !jid.user.is_empty())
        .ok_or(Malformed)?;
    let actor = node.attr_jid("participant").map(|j| j.to_non_device());
    let actor_pn = node.attr_jid("participant_pn").map(|j| j.to_non_device());
    let mut changes = Vec::new();
    for child in node
        .children()
        .iter()
        .take(GROUP_MAX_CHANGES_PER_NOTIFICATION)
    {
        let change = match child.tag.as_ref() {
            "create" => match child.child("group").map(parse_group) {
                Some(Ok(info)) => GroupChange::Created(info),
                _ => continue,
            },
            tag @ ("add" | "remove" | "leave" | "promote" | "demote") => {
                let participants: Vec<GroupParticipant> = child
                    .children_by_tag("participant")
                    .take(GROUP_MAX_PARTICIPANTS)
                    .filter_map(parse_participant)
                    .collect();
                let by_self = |p: &GroupParticipant| {
                    let user = p.jid.parse::<Jid>().ok().map(|j| j.to_non_device());
                    user.is_some() && (user == actor || user == actor_pn)
                };
                let change = match tag {
                    "add" => MembershipChange::Added,
                    "promote" => MembershipChange::Promoted,
                    "demote" => MembershipChange::Demoted,
                    "leave" => MembershipChange::Left,
                    _ if participants.len() == 1 && participants.iter().all(by_self) => {
                        MembershipChange::Left
                    }
                    _ => MembershipChange::Removed,
                };
                GroupChange::Participants {
                    change,
                    participants,
                }
            }
            "subject" => GroupChange::Subject(bounded(
                child.attr_str("subject").unwrap_or_default().to_owned(),
                GROUP_MAX_SUBJECT_BYTES,
            )),
            "description" => GroupChange::Description {
                id: child.attr_str("id").map(str::to_owned),
                text: child
                    .child("body")
                    .and_then(text_of)
                    .filter(|_| child.child("delete").is_none())
                    .map(|t| bounded(t, GROUP_MAX_DESCRIPTION_BYTES)),
            },
            "announcement" => GroupChange::Announce(true),
            "not_announcement" => GroupChange::Announce(false),
            "locked" => GroupChange::Locked(true),
            "unlocked" => GroupChange::Locked(false),
            "ephemeral" => GroupChange::Ephemeral(number_attr(child, "expiration").unwrap_or(0)),
            "not_ephemeral" => GroupChange::Ephemeral(0),
            "invite" => GroupChange::InviteCode(child.attr_str("code").unwrap_or_default().into()),
            "membership_approval_mode" => GroupChange::ApprovalRequired(
                child
                    .child("group_join")
                    .is_none_or(|j| j.attr_str("state") != Some("off")),
            ),
            "member_add_mode" => match child.content_bytes() {
                Some(b"admin_add") => GroupChange::MembersCanAdd(false),
                Some(_) if all_member_add(child) => GroupChange::MembersCanAdd(true),
                _ => continue,
            },
            "delete" => GroupChange::Deleted,
            _ => continue,
        };
        changes.push(change);
    }
    Ok(GroupNotification {
        group: group.to_string(),
        actor: actor.map(|j| j.to_string()),
        timestamp: number_attr(node, "t").unwrap_or(0),
        changes,
    })
}

/// Applies an announced change to what we know of the group. Returns `false` when the group
/// is gone for us (deleted, or we were removed or left: `own` lists our user JIDs).
pub fn apply(info: &mut GroupInfo, change: &GroupChange, own: &[String]) -> bool {
    match change {
        GroupChange::Created(new) => *info = new.clone(),
        GroupChange::Participants {
            change,
            participants,
        } => {
            for p in participants {
                let at = info.participants.iter().position(|q| same_member(q, p));
                match (change, at) {
                    (MembershipChange::Added, None)
                        if info.participants.len() < GROUP_MAX_PARTICIPANTS =>
                    {
                        info.participants.push(GroupParticipant {
                            role: ParticipantRole::Member,
                            ..p.clone()
                        });
                    }
                    (MembershipChange::Removed | MembershipChange::Left, Some(at)) => {
                        info.participants.remove(at);
                    }
                    (MembershipChange::Promoted, Some(at)) => {
                        if let Some(q) = info.participants.get_mut(at) {
                            q.role = ParticipantRole::Admin;
                        }
                    }
                    (MembershipChange::Demoted, Some(at)) => {
                        if let Some(q) = info.participants.get_mut(at) {
                            q.role = ParticipantRole::Member;
                        }
                    }
                    _ => {}
                }
                let gone = matches!(change, MembershipChange::Removed | MembershipChange::Left);
                if gone && own.iter().any(|o| is_member(o, p)) {
                    return false;
                }
            }
            info.size = u32::try_from(info.participants.len()).unwrap_or(u32::MAX);
        }
        GroupChange::Subject(subject) => info.subject = subject.clone(),
        GroupChange::Description { id, text } => {
            info.description = text.clone();
            info.description_id = id.clone();
        }
        GroupChange::Announce(on) => info.announce = *on,
        GroupChange::Locked(on) => info.locked = *on,
        GroupChange::ApprovalRequired(on) => info.approval_required = *on,
        GroupChange::Ephemeral(seconds) => info.ephemeral_seconds = *seconds,
        GroupChange::MembersCanAdd(all) => info.members_can_add = *all,
        GroupChange::InviteCode(_) => {}
        GroupChange::Deleted => return false,
    }
    true
}

/// Whether `user` (a JID string) names the member `p` in any of its forms (user and server
/// compared, the device left out; no allocation, as it runs for every member of a change).
pub fn is_member(user: &str, p: &GroupParticipant) -> bool {
    fn bare(s: &str) -> Option<(&str, &str)> {
        let (user, server) = s.split_once('@')?;
        Some((user.split(':').next().unwrap_or(user), server))
    }
    let Some(wanted) = bare(user) else {
        return false;
    };
    [Some(&p.jid), p.phone_number.as_ref(), p.lid.as_ref()]
        .into_iter()
        .flatten()
        .any(|form| bare(form) == Some(wanted))
}

fn same_member(a: &GroupParticipant, b: &GroupParticipant) -> bool {
    is_member(&b.jid, a)
        || b.phone_number.as_deref().is_some_and(|f| is_member(f, a))
        || b.lid.as_deref().is_some_and(|f| is_member(f, a))
}

/// The phone-number/LID pairs a group answer or notification teaches (users, no server).
pub fn lid_pairs(participants: &[GroupParticipant]) -> Vec<(String, String)> {
    let user = |s: &str| s.parse::<Jid>().ok();
    participants
        .iter()
        .filter_map(|p| {
            let (pn, lid) = match (&p.phone_number, &p.lid) {
                (Some(pn), _) => (user(pn)?, user(&p.jid)?),
                (_, Some(lid)) => (user(&p.jid)?, user(lid)?),
                _ => return None,
            };
            (pn.server == DEFAULT_USER_SERVER && lid.server == HIDDEN_USER_SERVER)
                .then_some((pn.user, lid.user))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn user(n: &str) -> Jid {
        Jid::new(n.to_owned(), DEFAULT_USER_SERVER)
    }

    #[test]
    fn builders_match_the_documented_shapes() {
        let g = group_jid("120363000000000001@g.us").unwrap();
        let iq = create("Team", "KEY", &[user("1"), user("2")]);
        assert_eq!(iq.attr_str("xmlns"), Some("w:g2"));
        assert_eq!(iq.attr_jid("to"), Some(group_server()));
        let c = iq.child("create").unwrap();
        assert_eq!(c.attr_str("subject"), Some("Team"));
        assert_eq!(c.children_by_tag("participant").count(), 2);
        let iq = participants(g.clone(), ParticipantAction::Promote, &[user("3")]);
        assert_eq!(iq.attr_str("type"), Some("set"));
        assert!(iq.child("promote").unwrap().child("participant").is_some());
        let iq = description(g.clone(), None, "ID", Some("PREV"));
        let d = iq.child("description").unwrap();
        assert_eq!(d.attr_str("delete"), Some("true"));
        assert_eq!(d.attr_str("prev"), Some("PREV"));
        assert!(d.child("body").is_none());
        let iq = setting(g.clone(), GroupSetting::ApprovalRequired(false));
        let j = iq.child("membership_approval_mode").unwrap();
        assert_eq!(
            j.child("group_join").unwrap().attr_str("state"),
            Some("off")
        );
        assert!(
            setting(g.clone(), GroupSetting::Ephemeral(0))
                .child("not_ephemeral")
                .is_some()
        );
        assert_eq!(invite(g.clone(), true).attr_str("type"), Some("set"));
        let l = leave(g.clone());
        assert_eq!(
            l.child("leave")
                .unwrap()
                .child("group")
                .unwrap()
                .attr_jid("id"),
            Some(g)
        );
        assert_eq!(
            join("CODE").child("invite").unwrap().attr_str("code"),
            Some("CODE")
        );
    }

    #[test]
    fn pictures_join_requests_and_v4_invites() {
        let g = group_jid("120363000000000001@g.us").unwrap();
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1];
        assert!(is_picture(&jpeg));
        assert!(!is_picture(b"GIF89a"));
        assert!(!is_picture(&vec![0xFF; PROFILE_PICTURE_MAX_BYTES + 1]));
        let set = set_picture(Some(g.clone()), Some(&jpeg));
        assert_eq!(set.attr_str("xmlns"), Some("w:profile:picture"));
        assert_eq!(set.attr_jid("target"), Some(g.clone()));
        let picture = set.child("picture").unwrap();
        assert_eq!(picture.attr_str("type"), Some("image"));
        assert_eq!(picture.content_bytes(), Some(&jpeg[..]));
        let own = set_picture(None, None);
        assert!(own.get_attr("target").is_none() && own.children().is_empty());
        let answer = Node::new("iq").children_from([Node::new("picture").attr("id", "42")]);
        assert_eq!(parse_picture_answer(&answer, false), Ok(Some("42".into())));
        assert_eq!(
            parse_picture_answer(&Node::new("iq"), false),
            Err(Malformed)
        );
        assert_eq!(parse_picture_answer(&Node::new("iq"), true), Ok(None));
        assert_eq!(parse_join_requests(&Node::new("iq")), Err(Malformed));
        assert_eq!(
            parse_join_request_results(&Node::new("iq"), true),
            Err(Malformed)
        );
        let accept = accept_invite(g, "CODE", 7, user("5"));
        let a = accept.child("accept").unwrap();
        assert_eq!(a.attr_str("expiration"), Some("7"));
        assert_eq!(a.attr_jid("admin"), Some(user("5")));
        // Who may add, from metadata and from a notification.
        let mode = |v: &str| Node::new("member_add_mode").bytes(v.as_bytes().to_vec());
        let meta = Node::new("group")
            .attr("id", "1")
            .children_from([mode("all_member_add")]);
        assert!(parse_group(&meta).unwrap().members_can_add);
        let n = parse_notification(&notification(vec![mode("admin_add"), mode("??")])).unwrap();
        assert_eq!(n.changes, vec![GroupChange::MembersCanAdd(false)]);
    }

    #[test]
    fn long_texts_are_cut_at_a_character_boundary() {
        assert_eq!(bounded("ééé".into(), 3), "é");
        assert_eq!(bounded("abc".into(), 3), "abc");
    }

    #[test]
    fn bad_addresses_are_refused() {
        assert_eq!(
            group_jid("1@s.whatsapp.net"),
            Err(CommandError::InvalidAddress)
        );
        assert_eq!(user_jid("1@g.us"), Err(CommandError::InvalidAddress));
        assert_eq!(user_jids(&["x".into()]), Err(CommandError::InvalidAddress));
        let many = vec!["1@s.whatsapp.net".to_owned(); GROUP_MAX_PARTICIPANTS + 1];
        assert_eq!(user_jids(&many), Err(CommandError::InvalidMessage));
        let twice = user_jids(&["1@s.whatsapp.net".into(), "1:3@s.whatsapp.net".into()]);
        assert_eq!(twice.unwrap().len(), 1);
    }

    fn metadata_answer() -> Node {
        Node::new("iq").children_from([Node::new("group")
            .attr("id", "120363000000000001")
            .attr("subject", "Team")
            .attr("s_t", "100")
            .attr("s_o", "1@s.whatsapp.net")
            .attr("creation", "90")
            .attr("creator", "1@s.whatsapp.net")
            .attr("addressing_mode", "lid")
            .children_from([
                Node::new("participant")
                    .attr("jid", "11@lid")
                    .attr("phone_number", "1@s.whatsapp.net")
                    .attr("type", "superadmin"),
                Node::new("participant")
                    .attr("jid", "22@lid")
                    .attr("type", "admin"),
                Node::new("participant").attr("jid", "33@lid"),
                Node::new("participant").attr("jid", "33@lid"),
                Node::new("description")
                    .attr("id", "D1")
                    .children_from([Node::new("body").bytes(b"hello".to_vec())]),
                Node::new("announcement"),
                Node::new("membership_approval_mode"),
                Node::new("ephemeral").attr("expiration", "604800"),
            ])])
    }

    #[test]
    fn metadata_is_read_with_roles_settings_and_lid_pairs() {
        let info = parse_group_answer(&metadata_answer()).unwrap();
        assert_eq!(info.jid, "120363000000000001@g.us");
        assert_eq!(info.subject, "Team");
        assert_eq!(info.owner.as_deref(), Some("1@s.whatsapp.net"));
        assert_eq!(info.participants.len(), 3);
        assert_eq!(info.size, 3);
        assert_eq!(info.admins().count(), 2);
        assert_eq!(info.description.as_deref(), Some("hello"));
        assert_eq!(info.description_id.as_deref(), Some("D1"));
        assert!(info.announce && !info.locked && info.approval_required);
        assert_eq!(info.ephemeral_seconds, 604_800);
        assert_eq!(info.addressing_mode, AddressingMode::Lid);
        assert_eq!(
            lid_pairs(&info.participants),
            vec![("1".to_owned(), "11".to_owned())]
        );
        assert_eq!(parse_group_answer(&Node::new("iq")), Err(Malformed));
    }

    #[test]
    fn participant_results_carry_each_error() {
        let p = |jid: &str, error: Option<&str>| {
            let node = Node::new("participant").attr("jid", jid.to_owned());
            match error {
                Some(e) => node.attr("error", e.to_owned()),
                None => node,
            }
        };
        let answer = Node::new("iq").children_from([Node::new("add").children_from([
            p("1@s.whatsapp.net", None),
            p("2@s.whatsapp.net", Some("403")).children_from([Node::new("add_request")
                .attr("code", "INV")
                .attr("expiration", "1700000000")]),
            p("3@s.whatsapp.net", Some("403")),
            p("4@s.whatsapp.net", Some("404")),
            p("5@s.whatsapp.net", Some("409")),
            p("6@s.whatsapp.net", Some("419")),
            p("7@s.whatsapp.net", Some("500")),
        ])]);
        let results = parse_participants_answer(&answer, ParticipantAction::Add).unwrap();
        let statuses: Vec<_> = results.iter().map(|r| r.status.clone()).collect();
        assert_eq!(
            statuses,
            vec![
                ParticipantStatus::Ok,
                ParticipantStatus::InviteRequired {
                    code: "INV".into(),
                    expiration: 1_700_000_000
                },
                ParticipantStatus::NotAuthorized,
                ParticipantStatus::NotFound,
                ParticipantStatus::AlreadyMember,
                ParticipantStatus::GroupFull,
                ParticipantStatus::Failed { code: 500 },
            ]
        );
        assert!(parse_participants_answer(&answer, ParticipantAction::Remove).is_err());
    }

    #[test]
    fn iq_errors_become_typed_command_errors() {
        use super::super::super::iq::IqError;
        let command_error = |e: IqError| e.command_error();
        let e = |code| IqError::Error {
            code,
            text: "x".into(),
            backoff: Some(2),
        };
        assert_eq!(command_error(e(401)), CommandError::Forbidden);
        assert_eq!(command_error(e(403)), CommandError::Forbidden);
        assert_eq!(command_error(e(404)), CommandError::NotFound);
        assert_eq!(command_error(e(410)), CommandError::NotFound);
        assert_eq!(command_error(e(406)), CommandError::BadRequest);
        assert_eq!(command_error(e(412)), CommandError::ResourceLimit);
        assert_eq!(command_error(e(419)), CommandError::ResourceLimit);
        assert_eq!(
            command_error(e(429)),
            CommandError::RateLimited {
                retry_after_ms: Some(2000)
            }
        );
        assert_eq!(command_error(e(400)), CommandError::BadRequest);
        assert!(matches!(
            command_error(e(503)),
            CommandError::Rejected { code: 503, .. }
        ));
        assert_eq!(command_error(IqError::TimedOut), CommandError::TimedOut);
        assert_eq!(
            command_error(IqError::Disconnected),
            CommandError::NotConnected
        );
        assert_eq!(CommandError::from(Malformed), CommandError::BadAnswer);
    }

    fn notification(children: Vec<Node>) -> Node {
        Node::new("notification")
            .attr(
                "from",
                Value::Jid(Jid::new("120363000000000001", GROUP_SERVER)),
            )
            .attr("type", "w:gp2")
            .attr("t", "1234")
            .attr("participant", Value::Jid(user("1")))
            .children_from(children)
    }

    #[test]
    fn notifications_become_typed_changes_and_update_the_group() {
        let part = |n: &str| Node::new("participant").attr("jid", Value::Jid(user(n)));
        let node = notification(vec![
            Node::new("add").children_from([part("4")]),
            Node::new("promote").children_from([part("4")]),
            Node::new("remove").children_from([part("2")]),
            Node::new("subject").attr("subject", "New"),
            Node::new("description").children_from([Node::new("delete")]),
            Node::new("locked"),
            Node::new("not_ephemeral"),
            Node::new("unknown_thing"),
        ]);
        let n = parse_notification(&node).unwrap();
        assert_eq!(n.group, "120363000000000001@g.us");
        assert_eq!(n.actor.as_deref(), Some("1@s.whatsapp.net"));
        assert_eq!(n.timestamp, 1234);
        assert_eq!(n.changes.len(), 7);
        let mut info = GroupInfo {
            participants: ["1", "2", "3"]
                .iter()
                .map(|u| GroupParticipant {
                    jid: format!("{u}@s.whatsapp.net"),
                    ..GroupParticipant::default()
                })
                .collect(),
            description: Some("old".into()),
            ephemeral_seconds: 86400,
            ..GroupInfo::default()
        };
        for change in &n.changes {
            assert!(apply(&mut info, change, &["9@s.whatsapp.net".into()]));
        }
        let members: Vec<_> = info.participants.iter().map(|p| p.jid.as_str()).collect();
        assert_eq!(
            members,
            ["1@s.whatsapp.net", "3@s.whatsapp.net", "4@s.whatsapp.net"]
        );
        assert_eq!(info.participants[2].role, ParticipantRole::Admin);
        assert_eq!(info.subject, "New");
        assert_eq!(info.description, None);
        assert!(info.locked);
        assert_eq!(info.ephemeral_seconds, 0);
        // A remove of the actor is a leave, and ours ends the group for us.
        let left = parse_notification(&notification(vec![
            Node::new("remove").children_from([part("1")]),
        ]))
        .unwrap();
        assert!(matches!(
            left.changes[0],
            GroupChange::Participants {
                change: MembershipChange::Left,
                ..
            }
        ));
        assert!(!apply(
            &mut info,
            &left.changes[0],
            &["1@s.whatsapp.net".into()]
        ));
        let bad = Node::new("notification").attr("from", "1@s.whatsapp.net");
        assert_eq!(parse_notification(&bad), Err(Malformed));
    }
}
