//! walink's group stanzas and parsers against Baileys 7 (`tests/oracle/groups.mjs`): the IQs
//! for create, participants, subject, description, settings, invite codes, join and leave equal
//! what Baileys' groups socket builds for the same input (after its random ids are normalised),
//! and so do join-request listing and approval, who-may-add and V4 invite acceptance; walink
//! reads Baileys-shaped metadata, participant and join-request answers into the facts Baileys
//! extracts from them, and `w:gp2` notifications into the changes Baileys' own receive code
//! (`messages-recv.js`, `tests/oracle/group-notifications.mjs`) stores for them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value as Json, json};
use walink_core::binary::{Content, GROUP_SERVER, Jid, Node, Value};
use walink_core::client::groups::wire;
use walink_core::client::groups::{
    AddressingMode, GroupChange, GroupSetting, MembershipChange, ParticipantAction,
    ParticipantRole, ParticipantStatus,
};
use walink_sim::oracle::Oracle;

const GROUP: &str = "120363021234567890@g.us";

fn oracle() -> Oracle {
    Oracle::spawn("groups.mjs").expect("node and tests/oracle/node_modules are available")
}

/// A node as the oracle's JSON: attributes as text (sorted), bytes as hex.
fn node_json(node: &Node) -> Json {
    let mut attrs: Vec<(String, Json)> = node
        .attrs
        .iter()
        .map(|attr| {
            let text = match &attr.value {
                Value::Str(text) => text.to_string(),
                Value::Jid(jid) => jid.to_string(),
            };
            (attr.key.to_string(), Json::String(text))
        })
        .collect();
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    let content = match &node.content {
        Content::None => Json::Null,
        Content::Nodes(children) => Json::Array(children.iter().map(node_json).collect()),
        Content::Bytes(bytes) => json!({ "hex": hex::encode(bytes) }),
        _ => Json::Null,
    };
    json!({ "tag": node.tag.to_string(), "attrs": attrs.into_iter().collect::<serde_json::Map<_, _>>(), "content": content })
}

/// Sorts the attributes of an oracle node (and its children) so that order does not matter.
fn sorted(mut node: Json) -> Json {
    if let Some(attrs) = node["attrs"].as_object() {
        let attrs: std::collections::BTreeMap<_, _> = attrs.clone().into_iter().collect();
        node["attrs"] = json!(attrs);
    }
    if let Some(children) = node["content"].as_array() {
        node["content"] = Json::Array(children.iter().cloned().map(sorted).collect());
    }
    node
}

fn group() -> Jid {
    wire::group_jid(GROUP).unwrap()
}

/// What Baileys sends for `op(args)` when every answer is `reply`: its IQs and its result.
fn baileys(oracle: &mut Oracle, op: &str, args: Json, reply: Option<&Node>) -> (Vec<Json>, Json) {
    let reply = reply.map(node_json);
    let out = oracle
        .call("build", json!({ "op": op, "args": args, "reply": reply }))
        .unwrap_or_else(|e| panic!("{op}: {e}"));
    let nodes = out["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(sorted)
        .collect();
    (nodes, out["result"].clone())
}

fn set_attr(node: &mut Json, path: &[usize], key: &str, value: &Json) {
    let mut at = node;
    for &i in path {
        at = &mut at["content"][i];
    }
    at["attrs"][key] = value.clone();
}

fn metadata_answer() -> Node {
    Node::new("iq")
        .attr("type", "result")
        .children_from([Node::new("group")
            .attr("id", "120363021234567890")
            .attr("subject", "Team ✓")
            .attr("s_t", "1700000100")
            .attr("s_o", "11@lid")
            .attr("s_o_pn", "1@s.whatsapp.net")
            .attr("creation", "1700000000")
            .attr("creator", "11@lid")
            .attr("creator_pn", "1@s.whatsapp.net")
            .attr("size", "3")
            .attr("addressing_mode", "lid")
            .children_from([
                Node::new("participant")
                    .attr("jid", "11@lid")
                    .attr("phone_number", "1@s.whatsapp.net")
                    .attr("type", "superadmin"),
                Node::new("participant")
                    .attr("jid", "22@lid")
                    .attr("phone_number", "2@s.whatsapp.net")
                    .attr("type", "admin"),
                Node::new("participant").attr("jid", "33@lid"),
                Node::new("description")
                    .attr("id", "DESC1")
                    .attr("participant", "11@lid")
                    .attr("t", "1700000200")
                    .children_from([Node::new("body").bytes("Rules: be kind".as_bytes().to_vec())]),
                Node::new("announcement"),
                Node::new("locked"),
                Node::new("membership_approval_mode")
                    .children_from([Node::new("group_join").attr("state", "on")]),
                Node::new("ephemeral").attr("expiration", "604800"),
            ])])
}

#[test]
fn create_and_participant_stanzas_equal_baileys() {
    let mut oracle = oracle();
    let members = ["15550001111@s.whatsapp.net", "15550002222@s.whatsapp.net"];
    let users: Vec<Jid> = members.iter().map(|m| m.parse().unwrap()).collect();
    let reply = metadata_answer();
    let (theirs, _) = baileys(
        &mut oracle,
        "groupCreate",
        json!(["Team ✓", members]),
        Some(&reply),
    );
    assert_eq!(theirs.len(), 1);
    // Baileys' `key` is a random message id: walink's is taken as the same.
    let key = theirs[0]["content"][0]["attrs"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let ours = sorted(node_json(&wire::create("Team ✓", &key, &users)));
    assert_eq!(ours, theirs[0], "create");

    for action in [
        ParticipantAction::Add,
        ParticipantAction::Remove,
        ParticipantAction::Promote,
        ParticipantAction::Demote,
    ] {
        let answer = Node::new("iq").children_from([Node::new(action.tag())]);
        let (theirs, _) = baileys(
            &mut oracle,
            "groupParticipantsUpdate",
            json!([GROUP, members, action.tag()]),
            Some(&answer),
        );
        let ours = sorted(node_json(&wire::participants(group(), action, &users)));
        assert_eq!(ours, theirs[0], "{action:?}");
    }
}

#[test]
fn settings_invite_join_and_leave_stanzas_equal_baileys() {
    let mut oracle = oracle();
    let cases: Vec<(&str, Json, Node)> = vec![
        (
            "groupUpdateSubject",
            json!([GROUP, "New ✓"]),
            wire::subject(group(), "New ✓"),
        ),
        (
            "groupSettingUpdate",
            json!([GROUP, "announcement"]),
            wire::setting(group(), GroupSetting::Announce(true)),
        ),
        (
            "groupSettingUpdate",
            json!([GROUP, "not_announcement"]),
            wire::setting(group(), GroupSetting::Announce(false)),
        ),
        (
            "groupSettingUpdate",
            json!([GROUP, "locked"]),
            wire::setting(group(), GroupSetting::Locked(true)),
        ),
        (
            "groupSettingUpdate",
            json!([GROUP, "unlocked"]),
            wire::setting(group(), GroupSetting::Locked(false)),
        ),
        (
            "groupToggleEphemeral",
            json!([GROUP, 86400]),
            wire::setting(group(), GroupSetting::Ephemeral(86_400)),
        ),
        (
            "groupToggleEphemeral",
            json!([GROUP, 0]),
            wire::setting(group(), GroupSetting::Ephemeral(0)),
        ),
        (
            "groupJoinApprovalMode",
            json!([GROUP, "on"]),
            wire::setting(group(), GroupSetting::ApprovalRequired(true)),
        ),
        (
            "groupJoinApprovalMode",
            json!([GROUP, "off"]),
            wire::setting(group(), GroupSetting::ApprovalRequired(false)),
        ),
        (
            "groupInviteCode",
            json!([GROUP]),
            wire::invite(group(), false),
        ),
        (
            "groupRevokeInvite",
            json!([GROUP]),
            wire::invite(group(), true),
        ),
        (
            "groupAcceptInvite",
            json!(["AbCdEf123"]),
            wire::join("AbCdEf123"),
        ),
        ("groupLeave", json!([GROUP]), wire::leave(group())),
        ("groupMetadata", json!([GROUP]), wire::metadata(group())),
        (
            "groupFetchAllParticipating",
            json!([]),
            wire::participating(),
        ),
    ];
    let reply = metadata_answer();
    for (op, args, ours) in cases {
        let (theirs, _) = baileys(&mut oracle, op, args, Some(&reply));
        assert_eq!(sorted(node_json(&ours)), theirs[0], "{op}");
    }
    // A description: Baileys reads the metadata first for `prev`, then sets with a random id.
    let (theirs, _) = baileys(
        &mut oracle,
        "groupUpdateDescription",
        json!([GROUP, "Rules ✓"]),
        Some(&reply),
    );
    assert_eq!(theirs.len(), 2);
    let id = theirs[1]["content"][0]["attrs"]["id"].clone();
    let mut ours = sorted(node_json(&wire::description(
        group(),
        Some("Rules ✓"),
        id.as_str().unwrap(),
        Some("DESC1"),
    )));
    set_attr(&mut ours, &[0], "id", &id);
    assert_eq!(ours, theirs[1], "description");
    let (theirs, _) = baileys(
        &mut oracle,
        "groupUpdateDescription",
        json!([GROUP, null]),
        Some(&reply),
    );
    let ours = sorted(node_json(&wire::description(
        group(),
        None,
        "unused",
        Some("DESC1"),
    )));
    assert_eq!(ours, theirs[1], "description deleted");
}

#[test]
fn metadata_answers_read_as_baileys_reads_them() {
    let mut oracle = oracle();
    let answer = metadata_answer();
    let theirs = oracle
        .call("metadata", json!({ "node": node_json(&answer) }))
        .unwrap();
    let ours = wire::parse_group_answer(&answer).unwrap();
    assert_eq!(theirs["id"], json!(ours.jid));
    assert_eq!(theirs["subject"], json!(ours.subject));
    assert_eq!(theirs["subjectOwner"], json!(ours.subject_owner));
    assert_eq!(theirs["subjectTime"], json!(ours.subject_time));
    assert_eq!(theirs["creation"], json!(ours.creation));
    assert_eq!(theirs["owner"], json!(ours.owner));
    assert_eq!(theirs["ownerPn"], json!(ours.owner_pn));
    assert_eq!(theirs["desc"], json!(ours.description));
    assert_eq!(theirs["descId"], json!(ours.description_id));
    assert_eq!(theirs["size"], json!(ours.size));
    assert_eq!(theirs["announce"], json!(ours.announce));
    assert_eq!(theirs["restrict"], json!(ours.locked));
    assert_eq!(theirs["joinApprovalMode"], json!(ours.approval_required));
    assert_eq!(
        theirs["addressingMode"],
        json!(match ours.addressing_mode {
            AddressingMode::Lid => "lid",
            AddressingMode::Pn => "pn",
        })
    );
    let participants = theirs["participants"].as_array().unwrap();
    assert_eq!(participants.len(), ours.participants.len());
    for (theirs, ours) in participants.iter().zip(&ours.participants) {
        assert_eq!(theirs["id"], json!(ours.jid));
        assert_eq!(
            theirs.get("phoneNumber").cloned().unwrap_or(Json::Null),
            json!(ours.phone_number)
        );
        let role = match ours.role {
            ParticipantRole::Member => Json::Null,
            ParticipantRole::Admin => json!("admin"),
            ParticipantRole::SuperAdmin => json!("superadmin"),
        };
        assert_eq!(theirs["admin"], role);
    }
    // A phone-number group without the optional parts.
    let plain = Node::new("iq").children_from([Node::new("group")
        .attr(
            "id",
            Value::Jid(Jid::new("120363000000000002", GROUP_SERVER)),
        )
        .attr("subject", "plain")
        .attr("creation", "5")
        .children_from([Node::new("participant")
            .attr("jid", "1@s.whatsapp.net")
            .attr("lid", "11@lid")])]);
    let theirs = oracle
        .call("metadata", json!({ "node": node_json(&plain) }))
        .unwrap();
    let ours = wire::parse_group_answer(&plain).unwrap();
    assert_eq!(theirs["id"], json!(ours.jid));
    assert_eq!(theirs["size"], json!(ours.size));
    assert_eq!(theirs["addressingMode"], json!("pn"));
    assert_eq!(
        theirs["participants"][0]["lid"],
        json!(ours.participants[0].lid)
    );
    assert!(!ours.announce && !ours.locked && ours.description.is_none());
}

#[test]
fn participant_results_read_as_baileys_reads_them() {
    let mut oracle = oracle();
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
            .attr("code", "INVITE")
            .attr("expiration", "1700000000")]),
        p("3@s.whatsapp.net", Some("404")),
        p("4@s.whatsapp.net", Some("408")),
        p("5@s.whatsapp.net", Some("409")),
        p("6@s.whatsapp.net", Some("419")),
        p("7@s.whatsapp.net", Some("500")),
    ])]);
    let jids: Vec<String> = (1..=7).map(|i| format!("{i}@s.whatsapp.net")).collect();
    let (_, theirs) = baileys(
        &mut oracle,
        "groupParticipantsUpdate",
        json!([GROUP, jids, "add"]),
        Some(&answer),
    );
    let ours = wire::parse_participants_answer(&answer, ParticipantAction::Add).unwrap();
    let theirs = theirs.as_array().unwrap();
    assert_eq!(theirs.len(), ours.len());
    for (theirs, ours) in theirs.iter().zip(&ours) {
        assert_eq!(theirs["jid"], json!(ours.jid));
        let code = match &ours.status {
            ParticipantStatus::Ok => "200".to_owned(),
            ParticipantStatus::InviteRequired { .. } | ParticipantStatus::NotAuthorized => {
                "403".into()
            }
            ParticipantStatus::NotFound => "404".into(),
            ParticipantStatus::RecentlyLeft => "408".into(),
            ParticipantStatus::AlreadyMember => "409".into(),
            ParticipantStatus::GroupFull => "419".into(),
            ParticipantStatus::Failed { code } => code.to_string(),
        };
        assert_eq!(theirs["status"], json!(code));
    }
    assert_eq!(
        ours[1].status,
        ParticipantStatus::InviteRequired {
            code: "INVITE".into(),
            expiration: 1_700_000_000
        }
    );
}

#[test]
fn join_requests_add_mode_and_v4_invites_equal_baileys() {
    let mut oracle = oracle();
    let members = ["15550001111@s.whatsapp.net", "15550002222@s.whatsapp.net"];
    let users: Vec<Jid> = members.iter().map(|m| m.parse().unwrap()).collect();
    let cases: Vec<(&str, Json, Node)> = vec![
        (
            "groupRequestParticipantsList",
            json!([GROUP]),
            wire::join_requests(group()),
        ),
        (
            "groupRequestParticipantsUpdate",
            json!([GROUP, members, "approve"]),
            wire::resolve_join_requests(group(), true, &users),
        ),
        (
            "groupRequestParticipantsUpdate",
            json!([GROUP, members, "reject"]),
            wire::resolve_join_requests(group(), false, &users),
        ),
        (
            "groupMemberAddMode",
            json!([GROUP, "all_member_add"]),
            wire::setting(group(), GroupSetting::MembersCanAdd(true)),
        ),
        (
            "groupMemberAddMode",
            json!([GROUP, "admin_add"]),
            wire::setting(group(), GroupSetting::MembersCanAdd(false)),
        ),
        (
            "groupAcceptInviteV4",
            json!([
                "15550003333@s.whatsapp.net",
                { "groupJid": GROUP, "inviteCode": "AbCd123", "inviteExpiration": 1_700_000_000u64 }
            ]),
            wire::accept_invite(
                group(),
                "AbCd123",
                1_700_000_000,
                "15550003333@s.whatsapp.net".parse().unwrap(),
            ),
        ),
    ];
    let empty = Node::new("iq").attr("type", "result");
    for (op, args, ours) in cases {
        let (theirs, _) = baileys(&mut oracle, op, args, Some(&empty));
        assert_eq!(theirs.len(), 1, "{op}");
        assert_eq!(sorted(node_json(&ours)), theirs[0], "{op}");
    }
}

#[test]
fn join_request_answers_read_as_baileys_reads_them() {
    let mut oracle = oracle();
    let listed = Node::new("iq").children_from([Node::new("membership_approval_requests")
        .children_from([
            Node::new("membership_approval_request")
                .attr("jid", "44@lid")
                .attr("phone_number", "4@s.whatsapp.net")
                .attr("request_time", "1700000300"),
            Node::new("membership_approval_request")
                .attr("jid", "5@s.whatsapp.net")
                .attr("request_time", "1700000400"),
        ])]);
    let (_, theirs) = baileys(
        &mut oracle,
        "groupRequestParticipantsList",
        json!([GROUP]),
        Some(&listed),
    );
    let ours = wire::parse_join_requests(&listed).unwrap();
    let theirs = theirs.as_array().unwrap();
    assert_eq!(theirs.len(), ours.len());
    for (theirs, ours) in theirs.iter().zip(&ours) {
        assert_eq!(theirs["jid"], json!(ours.jid));
        assert_eq!(
            theirs.get("phone_number").cloned().unwrap_or(Json::Null),
            json!(ours.phone_number)
        );
        assert_eq!(theirs["request_time"], json!(ours.requested_at.to_string()));
    }
    for approve in [true, false] {
        let action = if approve { "approve" } else { "reject" };
        let answer = Node::new("iq").children_from([Node::new("membership_requests_action")
            .children_from([Node::new(action).children_from([
                Node::new("participant").attr("jid", "4@s.whatsapp.net"),
                Node::new("participant")
                    .attr("jid", "6@s.whatsapp.net")
                    .attr("error", "404"),
            ])])]);
        let (_, theirs) = baileys(
            &mut oracle,
            "groupRequestParticipantsUpdate",
            json!([GROUP, ["4@s.whatsapp.net", "6@s.whatsapp.net"], action]),
            Some(&answer),
        );
        let ours = wire::parse_join_request_results(&answer, approve).unwrap();
        let theirs = theirs.as_array().unwrap();
        assert_eq!(theirs.len(), ours.len());
        for (theirs, ours) in theirs.iter().zip(&ours) {
            assert_eq!(theirs["jid"], json!(ours.jid));
            let code = match ours.status {
                ParticipantStatus::Ok => "200",
                ParticipantStatus::NotFound => "404",
                _ => "other",
            };
            assert_eq!(theirs["status"], json!(code), "{action}");
        }
    }
    // Who may add, in metadata.
    for (mode, all) in [("all_member_add", true), ("admin_add", false)] {
        let answer = Node::new("iq").children_from([Node::new("group")
            .attr("id", "120363021234567890")
            .attr("subject", "s")
            .children_from([
                Node::new("participant").attr("jid", "1@s.whatsapp.net"),
                Node::new("member_add_mode").bytes(mode.as_bytes().to_vec()),
            ])]);
        let theirs = oracle
            .call("metadata", json!({ "node": node_json(&answer) }))
            .unwrap();
        let ours = wire::parse_group_answer(&answer).unwrap();
        assert_eq!(theirs["memberAddMode"], json!(all));
        assert_eq!(ours.members_can_add, all);
    }
}

/// A `w:gp2` notification from `1@s.whatsapp.net` with one change.
fn gp2(child: Node) -> Node {
    Node::new("notification")
        .attr(
            "from",
            Value::Jid(Jid::new("120363021234567890", GROUP_SERVER)),
        )
        .attr("type", "w:gp2")
        .attr("id", "N1")
        .attr("t", "1700000500")
        .attr("participant", "1@s.whatsapp.net")
        .children_from([child])
}

/// What Baileys' `messages.upsert` stub says for walink's change: its stub type and parameters
/// (Baileys' own receive code, `tests/oracle/group-notifications.mjs`).
fn expected_stub(change: &GroupChange) -> (Option<&'static str>, Vec<String>) {
    let on = |b: bool| if b { "on" } else { "off" }.to_owned();
    match change {
        GroupChange::Participants {
            change,
            participants,
        } => (
            Some(match change {
                MembershipChange::Added => "GROUP_PARTICIPANT_ADD",
                MembershipChange::Removed => "GROUP_PARTICIPANT_REMOVE",
                MembershipChange::Left => "GROUP_PARTICIPANT_LEAVE",
                MembershipChange::Promoted => "GROUP_PARTICIPANT_PROMOTE",
                MembershipChange::Demoted => "GROUP_PARTICIPANT_DEMOTE",
            }),
            participants.iter().map(|p| p.jid.clone()).collect(),
        ),
        GroupChange::Subject(subject) => (Some("GROUP_CHANGE_SUBJECT"), vec![subject.clone()]),
        GroupChange::Description { text, .. } => (
            Some("GROUP_CHANGE_DESCRIPTION"),
            text.iter().cloned().collect(),
        ),
        GroupChange::Announce(b) => (Some("GROUP_CHANGE_ANNOUNCE"), vec![on(*b)]),
        GroupChange::Locked(b) => (Some("GROUP_CHANGE_RESTRICT"), vec![on(*b)]),
        GroupChange::ApprovalRequired(b) => {
            (Some("GROUP_MEMBERSHIP_JOIN_APPROVAL_MODE"), vec![on(*b)])
        }
        GroupChange::MembersCanAdd(all) => (
            Some("GROUP_MEMBER_ADD_MODE"),
            vec![if *all { "all_member_add" } else { "admin_add" }.to_owned()],
        ),
        GroupChange::InviteCode(code) => (Some("GROUP_CHANGE_INVITE_LINK"), vec![code.clone()]),
        GroupChange::Created(info) => (Some("GROUP_CREATE"), vec![info.subject.clone()]),
        // Ephemeral timers are a protocol message in Baileys (checked apart).
        _ => (None, Vec::new()),
    }
}

#[test]
fn notifications_read_as_baileys_reads_them() {
    let mut oracle =
        Oracle::spawn("group-notifications.mjs").expect("node and tests/oracle/node_modules");
    let part = |jid: &str| Node::new("participant").attr("jid", jid.to_owned());
    let children = vec![
        Node::new("add").children_from([
            part("44@lid").attr("phone_number", "4@s.whatsapp.net"),
            part("5@s.whatsapp.net"),
        ]),
        Node::new("remove").children_from([part("2@s.whatsapp.net")]),
        Node::new("remove").children_from([part("1@s.whatsapp.net")]),
        Node::new("leave").children_from([part("3@s.whatsapp.net")]),
        Node::new("promote").children_from([part("4@s.whatsapp.net")]),
        Node::new("demote").children_from([part("4@s.whatsapp.net")]),
        Node::new("subject").attr("subject", "New ✓"),
        Node::new("description")
            .attr("id", "D2")
            .children_from([Node::new("body").bytes("Rules ✓".as_bytes().to_vec())]),
        Node::new("description")
            .attr("id", "D3")
            .children_from([Node::new("delete")]),
        Node::new("announcement"),
        Node::new("not_announcement"),
        Node::new("locked"),
        Node::new("unlocked"),
        Node::new("invite").attr("code", "NewCode1"),
        Node::new("member_add_mode").bytes(b"all_member_add".to_vec()),
        Node::new("member_add_mode").bytes(b"admin_add".to_vec()),
        Node::new("membership_approval_mode")
            .children_from([Node::new("group_join").attr("state", "on")]),
        Node::new("membership_approval_mode")
            .children_from([Node::new("group_join").attr("state", "off")]),
        Node::new("ephemeral").attr("expiration", "604800"),
        Node::new("not_ephemeral"),
        Node::new("create").children_from([metadata_answer().child("group").unwrap().clone()]),
        Node::new("delete").attr("reason", "x"),
    ];
    for child in children {
        let tag = child.tag.to_string();
        let node = gp2(child);
        let ours = wire::parse_notification(&node).unwrap();
        assert_eq!(ours.changes.len(), 1, "{tag}");
        let change = &ours.changes[0];
        let theirs = oracle
            .call("notification", json!({ "node": node_json(&node) }))
            .unwrap();
        assert_eq!(theirs["acked"], json!(1), "{tag}: acked");
        if *change == GroupChange::Deleted {
            // Baileys has no case for a deleted group: it stores nothing typed for it.
            let stored = theirs["messages"].as_array().unwrap();
            assert!(stored.iter().all(|m| m["stub"].is_null()), "{tag}");
            continue;
        }
        let message = &theirs["messages"][0];
        // Baileys files a creation under the group's owner; walink keeps the notification's
        // actor and the owner in the metadata.
        let author = match change {
            GroupChange::Created(info) => info.owner.clone(),
            _ => ours.actor.clone(),
        };
        assert_eq!(message["participant"], json!(author), "{tag}: actor");
        let (stub, params) = expected_stub(change);
        assert_eq!(message["stub"], json!(stub), "{tag}: {change:?}");
        let theirs_params: Vec<String> = message["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let text = p.as_str().unwrap();
                // Participants travel as JSON objects; their `id` is what walink names.
                serde_json::from_str::<Json>(text)
                    .ok()
                    .and_then(|o| o["id"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| text.to_owned())
            })
            .collect();
        assert_eq!(theirs_params, params, "{tag}: parameters");
        match change {
            GroupChange::Ephemeral(seconds) => {
                assert_eq!(message["ephemeral"], json!(seconds), "{tag}");
            }
            GroupChange::Created(info) => {
                assert_eq!(theirs["groups"][0]["id"], json!(info.jid));
                assert_eq!(theirs["groups"][0]["size"], json!(info.size));
            }
            GroupChange::Participants { participants, .. } => {
                // The other address form, as Baileys reads it.
                for (theirs, ours) in message["params"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(participants)
                {
                    let theirs: Json = serde_json::from_str(theirs.as_str().unwrap()).unwrap();
                    assert_eq!(
                        theirs.get("phoneNumber").cloned().unwrap_or(Json::Null),
                        json!(ours.phone_number)
                    );
                }
            }
            _ => {}
        }
    }
}
