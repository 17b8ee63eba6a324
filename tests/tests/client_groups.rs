//! Group administration between walink clients and walink-sim's server (docs/groups.md):
//! create with per-participant results, metadata, the groups we are in, add / remove /
//! promote / demote with the server's admin rules, subject, description, settings, invite
//! codes, join by code, leave; the failure answers arrive as typed errors, and the members'
//! clients learn each change from `w:gp2` notifications as typed events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hostile_support;

use hostile_support::*;
use walink_core::client::groups::{
    GroupChange, GroupCommand, GroupInfo, GroupOutput, GroupSetting, MembershipChange,
    ParticipantAction, ParticipantRole, ParticipantStatus,
};
use walink_core::client::{Command, CommandError, CommandOutput, Event};
use walink_sim::sim::{Faults, World};

fn jid(user: &str) -> String {
    format!("{user}@s.whatsapp.net")
}

fn run(
    world: &mut World,
    client: usize,
    command: GroupCommand,
) -> Result<GroupOutput, CommandError> {
    let result = world
        .command_and_wait(client, Command::Group(command), 30_000)
        .expect("the command ends");
    world.run_for(2_000);
    match result {
        Ok(CommandOutput::Group(output)) => Ok(*output),
        Ok(CommandOutput::None) => Err(CommandError::InvalidState),
        Ok(other) => panic!("unexpected output {other:?}"),
        Err(error) => Err(error),
    }
}

fn run_none(world: &mut World, client: usize, command: GroupCommand) -> Result<(), CommandError> {
    let result = world
        .command_and_wait(client, Command::Group(command), 30_000)
        .expect("the command ends");
    world.run_for(2_000);
    match result {
        Ok(CommandOutput::None) => Ok(()),
        Ok(other) => panic!("unexpected output {other:?}"),
        Err(error) => Err(error),
    }
}

fn info(world: &mut World, client: usize, group: &str) -> GroupInfo {
    match run(
        world,
        client,
        GroupCommand::GetInfo {
            group: group.into(),
        },
    ) {
        Ok(GroupOutput::Info(info)) => info,
        other => panic!("metadata: {other:?}"),
    }
}

fn group_changes(world: &World, client: usize) -> Vec<GroupChange> {
    world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Group(n) => Some(n.changes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

struct Scene {
    world: World,
    alice: usize,
    bob: usize,
}

fn scene(seed: u64) -> Scene {
    let mut world = World::new(seed, T0, Faults::none());
    for (user, name) in [
        (ALICE, "Alice"),
        (BOB, "Bob"),
        (CAROL, "Carol"),
        (DAVE, "Dave"),
    ] {
        world.server.create_account(user, name).unwrap();
    }
    let alice = link(&mut world, ALICE);
    let bob = link(&mut world, BOB);
    Scene { world, alice, bob }
}

fn create(scene: &mut Scene, members: &[&str]) -> String {
    let participants = members.iter().map(|m| jid(m)).collect();
    match run(
        &mut scene.world,
        scene.alice,
        GroupCommand::Create {
            subject: "Team".into(),
            participants,
        },
    ) {
        Ok(GroupOutput::Created { info, participants }) => {
            assert!(
                participants
                    .iter()
                    .all(|p| p.status == ParticipantStatus::Ok)
            );
            info.jid
        }
        other => panic!("create: {other:?}"),
    }
}

#[test]
fn create_read_and_list_a_group() {
    let mut s = scene(1);
    s.world
        .server
        .group_rules_mut()
        .add_restricted
        .insert(DAVE.into());
    let created = run(
        &mut s.world,
        s.alice,
        GroupCommand::Create {
            subject: "Team".into(),
            participants: vec![jid(BOB), jid(DAVE), jid("15559999999")],
        },
    );
    let Ok(GroupOutput::Created { info, participants }) = created else {
        panic!("create: {created:?}");
    };
    assert_eq!(info.subject, "Team");
    let members: Vec<&str> = info.participants.iter().map(|p| p.jid.as_str()).collect();
    assert_eq!(members, [jid(ALICE), jid(BOB)]);
    assert_eq!(info.participants[0].role, ParticipantRole::SuperAdmin);
    let status = |user: &str| {
        participants
            .iter()
            .find(|p| p.jid == jid(user))
            .map(|p| p.status.clone())
    };
    assert_eq!(status(BOB), Some(ParticipantStatus::Ok));
    assert!(matches!(
        status(DAVE),
        Some(ParticipantStatus::InviteRequired { code, expiration }) if !code.is_empty() && expiration > 0
    ));
    assert_eq!(status("15559999999"), Some(ParticipantStatus::NotFound));
    // Bob's client learned it was added; both list the group.
    assert!(group_changes(&s.world, s.bob).iter().any(|c| matches!(
        c,
        GroupChange::Participants {
            change: MembershipChange::Added,
            ..
        }
    )));
    for client in [s.alice, s.bob] {
        let Ok(GroupOutput::List(list)) = run(&mut s.world, client, GroupCommand::ListJoined)
        else {
            panic!("list");
        };
        assert_eq!(
            list.iter().map(|g| g.jid.clone()).collect::<Vec<_>>(),
            std::slice::from_ref(&info.jid)
        );
    }
    let read = info_of(&mut s, &info.jid);
    assert_eq!(read.owner.as_deref(), Some(jid(ALICE).as_str()));
    assert_eq!(
        s.world.clients[s.alice].client.group(&info.jid),
        Some(&read)
    );
}

fn info_of(s: &mut Scene, group: &str) -> GroupInfo {
    info(&mut s.world, s.alice, group)
}

#[test]
fn participants_change_with_a_result_each_and_admin_rules() {
    let mut s = scene(2);
    let group = create(&mut s, &[BOB]);
    // Bob is not an admin: the server refuses his add as a whole.
    let refused = run(
        &mut s.world,
        s.bob,
        GroupCommand::ChangeParticipants {
            group: group.clone(),
            action: ParticipantAction::Add,
            participants: vec![jid(CAROL)],
        },
    );
    assert_eq!(refused, Err(CommandError::Forbidden));
    let added = run(
        &mut s.world,
        s.alice,
        GroupCommand::ChangeParticipants {
            group: group.clone(),
            action: ParticipantAction::Add,
            participants: vec![jid(CAROL), jid(BOB), jid("15559999999")],
        },
    )
    .unwrap();
    let GroupOutput::Participants(results) = added else {
        panic!()
    };
    let statuses: Vec<_> = results.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        statuses,
        [
            ParticipantStatus::Ok,
            ParticipantStatus::AlreadyMember,
            ParticipantStatus::NotFound
        ]
    );
    let promoted = run(
        &mut s.world,
        s.alice,
        GroupCommand::ChangeParticipants {
            group: group.clone(),
            action: ParticipantAction::Promote,
            participants: vec![jid(BOB)],
        },
    );
    assert!(
        matches!(promoted, Ok(GroupOutput::Participants(ref r)) if r[0].status == ParticipantStatus::Ok)
    );
    // Now an admin, Bob removes Carol; he may not remove the super-admin.
    let removed = run(
        &mut s.world,
        s.bob,
        GroupCommand::ChangeParticipants {
            group: group.clone(),
            action: ParticipantAction::Remove,
            participants: vec![jid(CAROL), jid(ALICE)],
        },
    )
    .unwrap();
    let GroupOutput::Participants(results) = removed else {
        panic!()
    };
    assert_eq!(results[0].status, ParticipantStatus::Ok);
    assert_eq!(results[1].status, ParticipantStatus::NotAuthorized);
    // Alice's client followed every change from the notifications alone.
    let known = s.world.clients[s.alice]
        .client
        .group(&group)
        .cloned()
        .unwrap();
    let roles: Vec<_> = known
        .participants
        .iter()
        .map(|p| (p.jid.clone(), p.role))
        .collect();
    assert_eq!(
        roles,
        [
            (jid(ALICE), ParticipantRole::SuperAdmin),
            (jid(BOB), ParticipantRole::Admin)
        ]
    );
    assert_eq!(info_of(&mut s, &group).participants, known.participants);
    let changes = group_changes(&s.world, s.alice);
    for expected in [
        MembershipChange::Added,
        MembershipChange::Promoted,
        MembershipChange::Removed,
    ] {
        assert!(
            changes.iter().any(
                |c| matches!(c, GroupChange::Participants { change, .. } if *change == expected)
            ),
            "{expected:?} in {changes:?}"
        );
    }
}

#[test]
fn subject_description_and_settings() {
    let mut s = scene(3);
    let group = create(&mut s, &[BOB]);
    let g = || group.clone();
    run_none(
        &mut s.world,
        s.alice,
        GroupCommand::SetSubject {
            group: g(),
            subject: "Renamed".into(),
        },
    )
    .unwrap();
    run_none(
        &mut s.world,
        s.alice,
        GroupCommand::SetDescription {
            group: g(),
            description: Some("first".into()),
        },
    )
    .unwrap();
    // The second change names the first as `prev` (the server refuses a stale one).
    run_none(
        &mut s.world,
        s.alice,
        GroupCommand::SetDescription {
            group: g(),
            description: Some("second".into()),
        },
    )
    .unwrap();
    for setting in [
        GroupSetting::Announce(true),
        GroupSetting::Locked(true),
        GroupSetting::ApprovalRequired(true),
        GroupSetting::Ephemeral(604_800),
    ] {
        run_none(
            &mut s.world,
            s.alice,
            GroupCommand::SetSetting {
                group: g(),
                setting,
            },
        )
        .unwrap();
    }
    assert_eq!(
        run_none(
            &mut s.world,
            s.alice,
            GroupCommand::SetSetting {
                group: g(),
                setting: GroupSetting::Ephemeral(5)
            }
        ),
        Err(CommandError::BadRequest)
    );
    // Bob is no admin: settings and, in a locked group, the subject are refused.
    assert_eq!(
        run_none(
            &mut s.world,
            s.bob,
            GroupCommand::SetSetting {
                group: g(),
                setting: GroupSetting::Announce(false)
            }
        ),
        Err(CommandError::Forbidden)
    );
    assert_eq!(
        run_none(
            &mut s.world,
            s.bob,
            GroupCommand::SetSubject {
                group: g(),
                subject: "mine".into()
            }
        ),
        Err(CommandError::Forbidden)
    );
    let read = info_of(&mut s, &group);
    assert_eq!(read.subject, "Renamed");
    assert_eq!(read.description.as_deref(), Some("second"));
    assert!(read.announce && read.locked && read.approval_required);
    assert_eq!(read.ephemeral_seconds, 604_800);
    // Bob's client applied the same from notifications (it read the group once first).
    let bob_view = info(&mut s.world, s.bob, &group);
    assert_eq!(bob_view, read);
    run_none(
        &mut s.world,
        s.alice,
        GroupCommand::SetDescription {
            group: g(),
            description: None,
        },
    )
    .unwrap();
    run_none(
        &mut s.world,
        s.alice,
        GroupCommand::SetSetting {
            group: g(),
            setting: GroupSetting::Locked(false),
        },
    )
    .unwrap();
    let known = s.world.clients[s.bob]
        .client
        .group(&group)
        .cloned()
        .unwrap();
    assert_eq!(known.description, None);
    assert!(!known.locked);
    assert!(group_changes(&s.world, s.bob).contains(&GroupChange::Subject("Renamed".into())));
}

#[test]
fn invite_links_join_and_leave() {
    let mut s = scene(4);
    let group = create(&mut s, &[]);
    let Ok(GroupOutput::InviteCode(code)) = run(
        &mut s.world,
        s.alice,
        GroupCommand::GetInviteCode {
            group: group.clone(),
        },
    ) else {
        panic!("invite code");
    };
    let Ok(GroupOutput::InviteCode(new_code)) = run(
        &mut s.world,
        s.alice,
        GroupCommand::RevokeInviteCode {
            group: group.clone(),
        },
    ) else {
        panic!("revoke");
    };
    assert_ne!(code, new_code);
    assert_eq!(
        run(
            &mut s.world,
            s.bob,
            GroupCommand::JoinWithInvite { code: code.clone() }
        ),
        Err(CommandError::NotFound),
        "a revoked code"
    );
    let joined = run(
        &mut s.world,
        s.bob,
        GroupCommand::JoinWithInvite {
            code: format!("https://chat.whatsapp.com/{new_code}"),
        },
    );
    assert_eq!(
        joined,
        Ok(GroupOutput::Joined {
            group: group.clone(),
            pending_approval: false
        })
    );
    // Bob is a member now, not an admin.
    assert_eq!(
        run(
            &mut s.world,
            s.bob,
            GroupCommand::GetInviteCode {
                group: group.clone()
            }
        ),
        Err(CommandError::Forbidden)
    );
    run_none(
        &mut s.world,
        s.bob,
        GroupCommand::Leave {
            group: group.clone(),
        },
    )
    .unwrap();
    assert_eq!(
        run(
            &mut s.world,
            s.bob,
            GroupCommand::GetInfo {
                group: group.clone()
            }
        ),
        Err(CommandError::Forbidden),
        "no longer a participant"
    );
    assert!(group_changes(&s.world, s.alice).iter().any(|c| matches!(
        c,
        GroupChange::Participants {
            change: MembershipChange::Left,
            ..
        }
    )));
    assert_eq!(info_of(&mut s, &group).participants.len(), 1);
}

#[test]
fn failure_answers_are_typed_errors() {
    let mut s = scene(5);
    let group = create(&mut s, &[BOB]);
    assert_eq!(
        run(
            &mut s.world,
            s.alice,
            GroupCommand::GetInfo {
                group: "120363999999999999@g.us".into()
            }
        ),
        Err(CommandError::NotFound)
    );
    s.world.server.group_rules_mut().max_size = 2;
    let full = run(
        &mut s.world,
        s.alice,
        GroupCommand::ChangeParticipants {
            group: group.clone(),
            action: ParticipantAction::Add,
            participants: vec![jid(CAROL)],
        },
    );
    assert!(
        matches!(full, Ok(GroupOutput::Participants(ref r)) if r[0].status == ParticipantStatus::GroupFull)
    );
    s.world.server.group_rules_mut().rate_limit_next = 1;
    assert!(matches!(
        run(&mut s.world, s.alice, GroupCommand::ListJoined),
        Err(CommandError::RateLimited { .. })
    ));
    assert!(matches!(
        run(&mut s.world, s.alice, GroupCommand::ListJoined),
        Ok(GroupOutput::List(_))
    ));
    assert_eq!(
        run(
            &mut s.world,
            s.alice,
            GroupCommand::GetInfo {
                group: "not-a-group".into()
            }
        ),
        Err(CommandError::InvalidAddress)
    );
    assert_eq!(
        run_none(
            &mut s.world,
            s.alice,
            GroupCommand::SetSubject {
                group: group.clone(),
                subject: String::new()
            }
        ),
        Err(CommandError::InvalidMessage)
    );
}

/// A removal notification rotates our sender key for the group at once: the record of who
/// holds it is gone before the next send, which distributes a new key to the members left.
#[test]
fn a_removal_rotates_our_sender_key_at_the_notification() {
    let mut s = scene(6);
    let carol = link(&mut s.world, CAROL);
    let group = create(&mut s, &[BOB, CAROL]);
    send_ok(&mut s.world, s.alice, &group, "before");
    let holders = |world: &World| {
        world.clients[s.alice]
            .store
            .keys()
            .any(|(space, key)| space == "sender-key-sent" && *key == group)
    };
    assert!(holders(&s.world), "the key was distributed");
    let removed = run(
        &mut s.world,
        s.alice,
        GroupCommand::ChangeParticipants {
            group: group.clone(),
            action: ParticipantAction::Remove,
            participants: vec![jid(CAROL)],
        },
    );
    assert!(matches!(removed, Ok(GroupOutput::Participants(_))));
    assert!(!holders(&s.world), "rotated when the notification came");
    send_ok(&mut s.world, s.alice, &group, "after");
    assert!(client_texts(&s.world, s.bob).contains(&"after".to_owned()));
    assert!(!client_texts(&s.world, carol).contains(&"after".to_owned()));
}

fn setting(
    s: &mut Scene,
    client: usize,
    group: &str,
    setting: GroupSetting,
) -> Result<(), CommandError> {
    run_none(
        &mut s.world,
        client,
        GroupCommand::SetSetting {
            group: group.into(),
            setting,
        },
    )
}

#[test]
fn join_requests_are_listed_then_approved_or_rejected() {
    let mut s = scene(7);
    let (alice, bob) = (s.alice, s.bob);
    let carol = link(&mut s.world, CAROL);
    let dave = link(&mut s.world, DAVE);
    let group = create(&mut s, &[BOB]);
    setting(&mut s, alice, &group, GroupSetting::ApprovalRequired(true)).unwrap();
    let Ok(GroupOutput::InviteCode(code)) = run(
        &mut s.world,
        alice,
        GroupCommand::GetInviteCode {
            group: group.clone(),
        },
    ) else {
        panic!("invite code");
    };
    for client in [carol, dave] {
        assert_eq!(
            run(
                &mut s.world,
                client,
                GroupCommand::JoinWithInvite { code: code.clone() }
            ),
            Ok(GroupOutput::Joined {
                group: group.clone(),
                pending_approval: true
            })
        );
    }
    let list = GroupCommand::ListJoinRequests {
        group: group.clone(),
    };
    assert_eq!(
        run(&mut s.world, bob, list.clone()),
        Err(CommandError::Forbidden),
        "a member who is not an admin"
    );
    let Ok(GroupOutput::JoinRequests(requests)) = run(&mut s.world, alice, list.clone()) else {
        panic!("join requests");
    };
    let asked: Vec<&str> = requests.iter().map(|r| r.jid.as_str()).collect();
    assert_eq!(asked, [jid(CAROL), jid(DAVE)]);
    assert!(requests.iter().all(|r| r.requested_at > 0));
    let resolve = |approve, who: &[String]| GroupCommand::ResolveJoinRequests {
        group: group.clone(),
        approve,
        participants: who.to_vec(),
    };
    let Ok(GroupOutput::Participants(results)) = run(
        &mut s.world,
        alice,
        resolve(true, &[jid(CAROL), jid("15559999999")]),
    ) else {
        panic!("approve");
    };
    let statuses: Vec<_> = results.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        statuses,
        [ParticipantStatus::Ok, ParticipantStatus::NotFound]
    );
    let Ok(GroupOutput::Participants(results)) =
        run(&mut s.world, alice, resolve(false, &[jid(DAVE)]))
    else {
        panic!("reject");
    };
    assert_eq!(results[0].status, ParticipantStatus::Ok);
    assert_eq!(
        run(&mut s.world, bob, resolve(true, &[jid(DAVE)])),
        Err(CommandError::Forbidden)
    );
    assert_eq!(
        run(&mut s.world, alice, resolve(true, &[])),
        Err(CommandError::InvalidMessage)
    );
    assert!(
        s.world
            .server
            .group_join_requests(&group_id(&group))
            .is_empty()
    );
    let members: Vec<String> = info_of(&mut s, &group)
        .participants
        .into_iter()
        .map(|p| p.jid)
        .collect();
    assert_eq!(members, [jid(ALICE), jid(BOB), jid(CAROL)]);
    assert!(group_changes(&s.world, carol).iter().any(|c| matches!(
        c,
        GroupChange::Participants {
            change: MembershipChange::Added,
            ..
        }
    )));
    assert_eq!(
        run(&mut s.world, dave, GroupCommand::GetInfo { group }),
        Err(CommandError::Forbidden),
        "rejected: not a member"
    );
}

fn group_id(group: &str) -> String {
    group.trim_end_matches("@g.us").to_owned()
}

fn add(s: &mut Scene, client: usize, group: &str, user: &str) -> Result<GroupOutput, CommandError> {
    run(
        &mut s.world,
        client,
        GroupCommand::ChangeParticipants {
            group: group.into(),
            action: ParticipantAction::Add,
            participants: vec![jid(user)],
        },
    )
}

#[test]
fn every_member_may_add_when_the_admins_allow_it() {
    let mut s = scene(8);
    let (alice, bob) = (s.alice, s.bob);
    let group = create(&mut s, &[BOB]);
    assert!(!info_of(&mut s, &group).members_can_add);
    assert_eq!(
        add(&mut s, bob, &group, CAROL),
        Err(CommandError::Forbidden)
    );
    assert_eq!(
        setting(&mut s, bob, &group, GroupSetting::MembersCanAdd(true)),
        Err(CommandError::Forbidden),
        "only admins change who may add"
    );
    setting(&mut s, alice, &group, GroupSetting::MembersCanAdd(true)).unwrap();
    assert!(info_of(&mut s, &group).members_can_add);
    assert!(
        group_changes(&s.world, bob).contains(&GroupChange::MembersCanAdd(true)),
        "announced to the members"
    );
    assert_eq!(
        s.world.clients[alice]
            .client
            .group(&group)
            .map(|g| g.members_can_add),
        Some(true),
        "what the client knows follows the notification"
    );
    let Ok(GroupOutput::Participants(results)) = add(&mut s, bob, &group, CAROL) else {
        panic!("a member adds");
    };
    assert_eq!(results[0].status, ParticipantStatus::Ok);
    // Adding is all a member may do.
    assert_eq!(
        run(
            &mut s.world,
            bob,
            GroupCommand::ChangeParticipants {
                group: group.clone(),
                action: ParticipantAction::Remove,
                participants: vec![jid(CAROL)],
            }
        ),
        Err(CommandError::Forbidden)
    );
    setting(&mut s, alice, &group, GroupSetting::MembersCanAdd(false)).unwrap();
    assert!(group_changes(&s.world, bob).contains(&GroupChange::MembersCanAdd(false)));
    assert_eq!(add(&mut s, bob, &group, DAVE), Err(CommandError::Forbidden));
}

#[test]
fn a_v4_invite_is_accepted_by_the_invited_user_only() {
    let mut s = scene(9);
    let (alice, bob) = (s.alice, s.bob);
    s.world
        .server
        .group_rules_mut()
        .add_restricted
        .insert(DAVE.into());
    let dave = link(&mut s.world, DAVE);
    let group = create(&mut s, &[]);
    let Ok(GroupOutput::Participants(results)) = add(&mut s, alice, &group, DAVE) else {
        panic!("add");
    };
    let ParticipantStatus::InviteRequired { code, expiration } = results[0].status.clone() else {
        panic!("an invite: {results:?}");
    };
    let accept = |code: &str| GroupCommand::AcceptInvite {
        group: group.clone(),
        code: code.into(),
        expiration,
        inviter: jid(ALICE),
    };
    assert_eq!(
        run(&mut s.world, bob, accept(&code)),
        Err(CommandError::NotFound),
        "the invite is Dave's"
    );
    assert_eq!(
        run(&mut s.world, dave, accept("WRONG")),
        Err(CommandError::NotFound)
    );
    assert_eq!(
        run(&mut s.world, dave, accept("not a code!")),
        Err(CommandError::InvalidMessage)
    );
    assert_eq!(
        run(&mut s.world, dave, accept(&code)),
        Ok(GroupOutput::Joined {
            group: group.clone(),
            pending_approval: false
        })
    );
    assert!(
        info_of(&mut s, &group)
            .participants
            .iter()
            .any(|p| p.jid == jid(DAVE))
    );
    assert!(
        matches!(
            run(&mut s.world, dave, accept(&code)),
            Err(CommandError::Rejected { code: 409, .. })
        ),
        "already a member"
    );
}

fn jpeg(tag: u8) -> Vec<u8> {
    vec![
        0xFF, 0xD8, 0xFF, 0xE0, tag, 0x10, 0x4A, 0x46, 0x49, 0x46, 0xFF, 0xD9,
    ]
}

fn picture(s: &mut Scene, client: usize, jid: &str) -> walink_core::client::ProfilePicture {
    match s.world.command_and_wait(
        client,
        Command::GetProfilePicture {
            jid: jid.into(),
            preview: false,
        },
        30_000,
    ) {
        Some(Ok(CommandOutput::ProfilePicture(p))) => p,
        other => panic!("picture: {other:?}"),
    }
}

#[test]
fn group_and_own_pictures_are_set_read_and_removed() {
    use walink_core::client::ProfilePicture;
    let mut s = scene(10);
    let (alice, bob) = (s.alice, s.bob);
    let group = create(&mut s, &[BOB]);
    let set = |jid: &str, jpeg: Option<Vec<u8>>| GroupCommand::SetPicture {
        jid: jid.into(),
        jpeg,
    };
    let Ok(GroupOutput::Picture { id: Some(id) }) =
        run(&mut s.world, alice, set(&group, Some(jpeg(1))))
    else {
        panic!("set");
    };
    let ProfilePicture::Url { id: read, .. } = picture(&mut s, bob, &group) else {
        panic!("a picture");
    };
    assert_eq!(read, id);
    assert_eq!(
        run(&mut s.world, alice, set(&group, Some(b"GIF89a".to_vec()))),
        Err(CommandError::InvalidMessage),
        "not a JPEG: refused before sending"
    );
    setting(&mut s, alice, &group, GroupSetting::Locked(true)).unwrap();
    assert_eq!(
        run(&mut s.world, bob, set(&group, Some(jpeg(2)))),
        Err(CommandError::Forbidden),
        "a locked group's picture is the admins'"
    );
    assert_eq!(
        run(&mut s.world, alice, set(&group, None)),
        Ok(GroupOutput::Picture { id: None })
    );
    assert_eq!(picture(&mut s, bob, &group), ProfilePicture::None);
    // Our own picture: the same IQ without a target.
    let Ok(GroupOutput::Picture { id: Some(own) }) =
        run(&mut s.world, alice, set(&jid(ALICE), Some(jpeg(3))))
    else {
        panic!("own picture");
    };
    assert_eq!(s.world.server.profile_picture_id(ALICE), Some(own));
    assert_eq!(
        run(&mut s.world, alice, set(&jid(BOB), Some(jpeg(4)))),
        Err(CommandError::InvalidAddress),
        "someone else's picture"
    );
    run(&mut s.world, alice, set(&jid(ALICE), None)).unwrap();
    assert_eq!(s.world.server.profile_picture_id(ALICE), None);
}
