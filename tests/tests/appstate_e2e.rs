//! App-state sync end to end through walink-sim: the phone and linked walink clients mute, pin
//! and archive chats; clients catch up after being offline, wait for keys they lack, and
//! survive a tampering server without corrupting their stored state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use walink_core::appstate::{
    ChatSettings, Collection, MessageRange, MuteUntil, SettingChange, SyncAction,
};
use walink_core::client::{Client, Command, CommandOutput, Config, Event, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_core::store::{Record, Space};
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, World};

const T0: u64 = 1_780_000_000_000;
const ALICE: &str = "15551234567";
const BOB: &str = "15557654321";
const CHAT: &str = "15557654321@s.whatsapp.net";

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

fn world(seed: u64) -> World {
    let mut world = World::new(seed, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    world.server.set_app_state_auto_share(ALICE, true);
    world
}

/// Links a new walink client to Alice's account by QR and waits until it is connected.
fn link(world: &mut World) -> usize {
    let client = world.add_client(config());
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, |w| !w.clients[client].qrs().is_empty()));
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, ALICE, &qr).unwrap();
    let deadline = world.now + 30_000;
    assert!(world.run_until(deadline, |w| w.client_state(client)
        == Some(&State::Connected)));
    client
}

fn device_of(world: &World, client: usize) -> u16 {
    world.clients[client].client.jid().unwrap().device
}

fn changes(world: &World, client: usize) -> Vec<SettingChange> {
    world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::AppStateChanged { change, .. } => Some(change.clone()),
            _ => None,
        })
        .collect()
}

/// The last full settings event for `chat`.
fn settings_event(world: &World, client: usize, chat: &str) -> Option<ChatSettings> {
    world.clients[client]
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::ChatSettings { chat: c, settings } if c == chat => Some(settings.clone()),
            _ => None,
        })
}

/// Asks the client for `chat`'s settings (`Command::GetChatSettings`).
fn read_settings(world: &mut World, client: usize, chat: &str) -> ChatSettings {
    let id = world
        .command(
            client,
            Command::GetChatSettings {
                chat: chat.to_owned(),
            },
        )
        .unwrap();
    world.clients[client]
        .events
        .iter()
        .find_map(|e| match e {
            Event::CommandDone {
                id: done,
                result: Ok(CommandOutput::ChatSettings(settings)),
            } if *done == id => Some(settings.clone()),
            _ => None,
        })
        .expect("GetChatSettings answers at once")
}

/// Runs a command to its `CommandDone` and returns whether it succeeded.
fn run_command(world: &mut World, client: usize, command: Command) -> bool {
    let id = world.command(client, command).unwrap();
    let deadline = world.now + 20_000;
    let done = |w: &World| {
        w.clients[client].events.iter().find_map(|e| match e {
            Event::CommandDone { id: d, result } if *d == id => Some(result.is_ok()),
            _ => None,
        })
    };
    assert!(
        world.run_until(deadline, |w| done(w).is_some()),
        "command ended"
    );
    done(world).unwrap()
}

fn app_state_records(world: &World, client: usize) -> BTreeMap<(String, String), Vec<u8>> {
    world.clients[client]
        .store
        .iter()
        .filter(|((space, _), _)| space.starts_with("app-state"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn fatal(world: &World, client: usize) -> bool {
    world.clients[client]
        .events
        .iter()
        .any(|e| matches!(e, Event::AppStateFatal { .. }))
}

fn mute(chat: &str) -> SyncAction {
    SyncAction::Mute {
        chat: chat.to_owned(),
        until: MuteUntil::Forever,
    }
}

#[test]
fn the_phone_mutes_a_chat_and_a_linked_client_sees_it() {
    let mut world = world(11);
    let client = link(&mut world);
    // The key share arrived with the first login.
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, |w| {
        w.clients[client]
            .store
            .keys()
            .any(|(space, _)| space == "app-state-key")
    }));
    let now = world.now;
    world
        .server
        .phone_app_state(now, ALICE, &[mute(CHAT)])
        .unwrap();
    world.flush();
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, |w| {
        settings_event(w, client, CHAT).is_some_and(|s| s.muted_until == Some(MuteUntil::Forever))
    }));
    assert!(changes(&world, client).contains(&SettingChange::Muted {
        chat: CHAT.to_owned(),
        until: Some(MuteUntil::Forever),
    }));
    assert_eq!(
        read_settings(&mut world, client, CHAT).muted_until,
        Some(MuteUntil::Forever)
    );
    // The view survives a host crash. This host passes only the spaces loaded at start; the
    // view is loaded on demand, and readable before the client is connected again.
    world.crash(client);
    let records: Vec<Record> = world.clients[client]
        .records()
        .into_iter()
        .filter(|r| r.space.loaded_at_start())
        .collect();
    assert!(records.iter().any(|r| r.space == Space::AppStateKey));
    world.clients[client].client = Client::new(config(), records).unwrap();
    assert_eq!(
        read_settings(&mut world, client, CHAT).muted_until,
        Some(MuteUntil::Forever)
    );
    let deadline = world.now + 30_000;
    assert!(world.run_until(deadline, |w| w.client_state(client)
        == Some(&State::Connected)));
    world.run_for(2_000);
    assert_eq!(
        read_settings(&mut world, client, CHAT).muted_until,
        Some(MuteUntil::Forever)
    );
    assert!(!fatal(&world, client));
    assert!(world.server.phone_app_state_errors(ALICE).is_empty());
}

#[test]
fn a_client_pins_and_archives_and_the_phone_and_another_client_see_it() {
    let mut world = world(12);
    let first = link(&mut world);
    let second = link(&mut world);
    world.run_for(3_000);
    assert!(run_command(
        &mut world,
        first,
        Command::AppState(SyncAction::Pin {
            chat: CHAT.to_owned(),
            pinned: true,
        })
    ));
    assert!(run_command(
        &mut world,
        first,
        Command::AppState(SyncAction::Archive {
            chat: CHAT.to_owned(),
            archived: true,
            range: MessageRange::default(),
        })
    ));
    // The sender's own view changed once the server accepted.
    let own = read_settings(&mut world, first, CHAT);
    assert!(own.pinned_at.is_some() && own.archived);
    // The phone applied both patches.
    let phone = world.server.phone_chat_settings(ALICE, CHAT);
    assert!(phone.pinned_at.is_some() && phone.archived, "{phone:?}");
    assert!(world.server.phone_app_state_errors(ALICE).is_empty());
    // The other client got them through server_sync.
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, |w| {
        settings_event(w, second, CHAT).is_some_and(|s| s.pinned_at.is_some() && s.archived)
    }));
    assert_eq!(read_settings(&mut world, second, CHAT), own);
    assert_eq!(
        world
            .server
            .app_state_version(ALICE, Collection::RegularLow),
        2
    );
    // Unpin from the second client travels back.
    assert!(run_command(
        &mut world,
        second,
        Command::AppState(SyncAction::Pin {
            chat: CHAT.to_owned(),
            pinned: false,
        })
    ));
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, |w| {
        settings_event(w, first, CHAT).is_some_and(|s| s.pinned_at.is_none() && s.archived)
    }));
    assert!(
        world
            .server
            .phone_chat_settings(ALICE, CHAT)
            .pinned_at
            .is_none()
    );
    assert!(!fatal(&world, first) && !fatal(&world, second));
}

#[test]
fn an_offline_client_catches_up_from_a_snapshot_and_patches() {
    let mut world = world(13);
    let online = link(&mut world);
    world.run_for(2_000);
    let now = world.now;
    // Ten chats muted by the phone: versions 1..=10, snapshots at 4 and 8.
    for i in 0..10 {
        let chat = format!("1555000{i:04}@s.whatsapp.net");
        world
            .server
            .phone_app_state(now, ALICE, &[mute(&chat)])
            .unwrap();
    }
    world.flush();
    // A client linked now starts from nothing: snapshot (v8) plus patches 9 and 10.
    let late = link(&mut world);
    let deadline = world.now + 20_000;
    let all_muted = |w: &World, c: usize| {
        (0..10).all(|i| {
            let chat = format!("1555000{i:04}@s.whatsapp.net");
            settings_event(w, c, &chat).is_some_and(|s| s.muted_until.is_some())
        })
    };
    assert!(world.run_until(deadline, |w| all_muted(w, late)));
    assert!(world.run_until(deadline, |w| all_muted(w, online)));
    let (asked, served) = world.server.app_state_snapshot_counts(ALICE);
    assert!(asked >= 1 && served >= 1, "asked {asked}, served {served}");
    // The first client goes offline, more happens, it comes back and catches up.
    assert!(run_command(&mut world, online, Command::Disconnect));
    let now = world.now;
    world
        .server
        .phone_app_state(
            now,
            ALICE,
            &[SyncAction::Unmute {
                chat: "15550000003@s.whatsapp.net".to_owned(),
            }],
        )
        .unwrap();
    // More than one answer holds (has_more_patches).
    for i in 0..10 {
        let chat = format!("1555333{i:04}@s.whatsapp.net");
        world
            .server
            .phone_app_state(now, ALICE, &[mute(&chat)])
            .unwrap();
    }
    world.flush();
    assert!(run_command(&mut world, online, Command::Connect));
    let deadline = world.now + 20_000;
    assert!(world.run_until(deadline, |w| {
        settings_event(w, online, "15553330009@s.whatsapp.net")
            .is_some_and(|s| s.muted_until.is_some())
    }));
    let deadline = world.now + 20_000;
    assert!(world.run_until(deadline, |w| {
        settings_event(w, online, "15550000003@s.whatsapp.net")
            .is_some_and(|s| s.muted_until.is_none())
    }));
    assert!(!fatal(&world, online) && !fatal(&world, late));
}

#[test]
fn a_fresh_client_without_keys_waits_and_applies_once_keys_arrive() {
    let mut world = world(14);
    world.server.set_app_state_auto_share(ALICE, false);
    let now = world.now;
    world
        .server
        .phone_app_state(now, ALICE, &[mute(CHAT)])
        .unwrap();
    let client = link(&mut world);
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, |w| {
        w.clients[client]
            .events
            .iter()
            .any(|e| matches!(e, Event::AppStateWaitingForKeys { .. }))
    }));
    // The client asked its own devices for the key; the phone got the request and answers
    // it with a share, as a primary does. No manual share here.
    let device = device_of(&world, client);
    let deadline = world.now + 10_000;
    assert!(
        world.run_until(deadline, |w| {
            w.server
                .phone_messages(ALICE)
                .unwrap_or_default()
                .iter()
                .any(|m| {
                    m.from.contains(&format!("{ALICE}:{device}@"))
                        && m.app_state_key_request
                            .as_ref()
                            .is_some_and(|ids| ids.len() == 1)
                })
        }),
        "{:?}",
        world.server.phone_messages(ALICE)
    );
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, |w| {
        settings_event(w, client, CHAT).is_some_and(|s| s.muted_until == Some(MuteUntil::Forever))
    }));
    assert!(!fatal(&world, client));
    // The request was the client's own message: the host saw no command end for it.
    assert!(
        !world.clients[client]
            .events
            .iter()
            .any(|e| matches!(e, Event::CommandDone { id, .. } if id.as_u64() == 0))
    );
}

#[test]
fn a_tampered_patch_leaves_the_records_untouched_and_triggers_the_snapshot_path() {
    let mut world = world(15);
    let client = link(&mut world);
    world.run_for(2_000);
    let device = device_of(&world, client);
    let chats: Vec<String> = (0..4)
        .map(|i| format!("1555111{i:04}@s.whatsapp.net"))
        .collect();
    // 1. Patches served to this client are corrupted: they fail, the client asks for a
    //    snapshot (version 4, nothing after it) and reaches the right state from it.
    world.server.tamper_app_state(ALICE, device, true, false);
    let (asked_before, _) = world.server.app_state_snapshot_counts(ALICE);
    let now = world.now;
    for chat in &chats {
        world
            .server
            .phone_app_state(now, ALICE, &[mute(chat)])
            .unwrap();
    }
    world.flush();
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, |w| {
        chats
            .iter()
            .all(|c| settings_event(w, client, c).is_some_and(|s| s.muted_until.is_some()))
    }));
    let (asked_after, served) = world.server.app_state_snapshot_counts(ALICE);
    assert!(asked_after > asked_before && served >= 1);
    assert!(!fatal(&world, client));

    // 2. Snapshots are corrupted too: the patch fails, the snapshot fails, a typed fatal
    //    event, and the stored app-state records are byte for byte what they were.
    world.server.tamper_app_state(ALICE, device, true, true);
    let before = app_state_records(&world, client);
    let now = world.now;
    world
        .server
        .phone_app_state(now, ALICE, &[mute(CHAT)])
        .unwrap();
    world.flush();
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, |w| fatal(w, client)));
    assert_eq!(app_state_records(&world, client), before);
    assert!(settings_event(&world, client, CHAT).is_none());

    // 3. Honest again: the next announcement brings the collection up to date.
    world.server.tamper_app_state(ALICE, device, false, false);
    let now = world.now;
    world
        .server
        .phone_app_state(now, ALICE, &[mute("15552220000@s.whatsapp.net")])
        .unwrap();
    world.flush();
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, |w| {
        settings_event(w, client, CHAT).is_some_and(|s| s.muted_until.is_some())
    }));
    let _ = BOB;
}

/// Every action a client can send is accepted, applied by the phone without error, and seen
/// by another linked client with the same settings.
#[test]
fn every_action_travels_from_one_client_to_the_phone_and_another_client() {
    let mut world = world(16);
    let first = link(&mut world);
    let second = link(&mut world);
    world.run_for(3_000);
    let group = "120363000000000001@g.us";
    let actions = vec![
        mute(CHAT),
        SyncAction::Unmute {
            chat: CHAT.to_owned(),
        },
        SyncAction::Mute {
            chat: group.to_owned(),
            until: MuteUntil::Until(1_900_000_000_000),
        },
        SyncAction::Pin {
            chat: group.to_owned(),
            pinned: true,
        },
        SyncAction::Archive {
            chat: CHAT.to_owned(),
            archived: true,
            range: MessageRange::default(),
        },
        SyncAction::Archive {
            chat: CHAT.to_owned(),
            archived: false,
            range: MessageRange::default(),
        },
        SyncAction::MarkRead {
            chat: group.to_owned(),
            read: false,
            range: MessageRange::default(),
        },
        SyncAction::Star {
            chat: CHAT.to_owned(),
            message_id: "3EB0AA".to_owned(),
            from_me: true,
            participant: None,
            starred: true,
        },
        SyncAction::Star {
            chat: CHAT.to_owned(),
            message_id: "3EB0AA".to_owned(),
            from_me: true,
            participant: None,
            starred: false,
        },
        SyncAction::Contact {
            jid: CHAT.to_owned(),
            full_name: Some("Bob Example".to_owned()),
            first_name: Some("Bob".to_owned()),
        },
        SyncAction::LabelEdit {
            label_id: "7".to_owned(),
            name: "Clients".to_owned(),
            color: 3,
            deleted: false,
            predefined_id: None,
        },
        SyncAction::LabelChat {
            label_id: "7".to_owned(),
            chat: group.to_owned(),
            labeled: true,
        },
        SyncAction::LabelMessage {
            label_id: "7".to_owned(),
            chat: CHAT.to_owned(),
            message_id: "3EB0BB".to_owned(),
            labeled: true,
        },
        SyncAction::RemoveContact {
            jid: CHAT.to_owned(),
        },
        SyncAction::ClearChat {
            chat: group.to_owned(),
            range: MessageRange::default(),
        },
        SyncAction::DeleteChat {
            chat: "15559990000@s.whatsapp.net".to_owned(),
            range: MessageRange::default(),
        },
    ];
    for action in &actions {
        assert!(
            run_command(&mut world, first, Command::AppState(action.clone())),
            "{action:?}"
        );
    }
    assert!(world.server.phone_app_state_errors(ALICE).is_empty());
    world.run_for(5_000);
    for chat in [CHAT, group] {
        let own = read_settings(&mut world, first, chat);
        assert_eq!(read_settings(&mut world, second, chat), own, "{chat}");
        assert_eq!(world.server.phone_chat_settings(ALICE, chat), own, "{chat}");
    }
    let group_settings = read_settings(&mut world, second, group);
    assert_eq!(
        group_settings.muted_until,
        Some(MuteUntil::Until(1_900_000_000_000))
    );
    assert!(group_settings.pinned_at.is_some() && group_settings.marked_unread);
    assert!(group_settings.labels.contains("7"));
    let seen = changes(&world, second);
    assert!(seen.iter().any(
        |c| matches!(c, SettingChange::Label { label_id, label: Some(_) } if label_id == "7")
    ));
    assert!(
        seen.iter()
            .any(|c| matches!(c, SettingChange::Contact { contact: None, .. }))
    );
    assert!(
        seen.iter()
            .any(|c| matches!(c, SettingChange::ChatCleared { .. }))
    );
    assert!(
        seen.iter()
            .any(|c| matches!(c, SettingChange::Starred { starred: false, .. }))
    );
    // An invalid action fails at once with a typed error.
    let id = world
        .command(
            first,
            Command::AppState(SyncAction::Pin {
                chat: String::new(),
                pinned: true,
            }),
        )
        .unwrap();
    assert!(world.clients[first].events.iter().any(|e| matches!(
        e,
        Event::CommandDone { id: d, result: Err(walink_core::client::CommandError::AppState(_)) } if *d == id
    )));
    assert!(!fatal(&world, first) && !fatal(&world, second));
}

/// Two clients change the same collection at the same moment: the server takes the first,
/// refuses the second with a conflict, and the second catches up and sends again.
#[test]
fn concurrent_changes_resolve_through_a_conflict_and_a_refetch() {
    let mut world = world(17);
    let first = link(&mut world);
    let second = link(&mut world);
    world.run_for(3_000);
    let a = world
        .command(
            first,
            Command::AppState(SyncAction::Pin {
                chat: CHAT.to_owned(),
                pinned: true,
            }),
        )
        .unwrap();
    let b = world
        .command(
            second,
            Command::AppState(SyncAction::Archive {
                chat: CHAT.to_owned(),
                archived: true,
                range: MessageRange::default(),
            }),
        )
        .unwrap();
    let ok = |w: &World, c: usize, id| {
        w.clients[c]
            .events
            .iter()
            .any(|e| matches!(e, Event::CommandDone { id: d, result: Ok(_) } if *d == id))
    };
    let deadline = world.now + 20_000;
    assert!(world.run_until(deadline, |w| ok(w, first, a) && ok(w, second, b)));
    world.run_for(3_000);
    assert_eq!(world.server.app_state_conflicts(ALICE), 1);
    assert_eq!(
        world
            .server
            .app_state_version(ALICE, Collection::RegularLow),
        2
    );
    let phone = world.server.phone_chat_settings(ALICE, CHAT);
    assert!(phone.pinned_at.is_some() && phone.archived);
    assert_eq!(read_settings(&mut world, first, CHAT), phone);
    assert_eq!(read_settings(&mut world, second, CHAT), phone);
    assert!(world.server.phone_app_state_errors(ALICE).is_empty());
}

/// Dropped connections and host crashes in the middle of app-state traffic: commands end
/// (with success or a typed error, retried by the application), and in the end the phone and
/// both clients agree.
#[test]
fn drops_and_crashes_mid_sync_end_in_agreement() {
    let mut world = world(18);
    let a = link(&mut world);
    let b = link(&mut world);
    world.run_for(3_000);
    let other = "15558887777@s.whatsapp.net";
    // The phone mutes while B's host crashes before the announcement arrives.
    let now = world.now;
    world
        .server
        .phone_app_state(now, ALICE, &[mute(CHAT)])
        .unwrap();
    world.flush();
    world.crash(b);
    // A pins, and its connection drops while the patch is on its way.
    let pin = Command::AppState(SyncAction::Pin {
        chat: other.to_owned(),
        pinned: true,
    });
    let id = world.command(a, pin.clone()).unwrap();
    world.drop_connection(a);
    let deadline = world.now + 60_000;
    let ended = |w: &World| {
        w.clients[a].events.iter().find_map(|e| match e {
            Event::CommandDone { id: d, result } if *d == id => Some(result.clone()),
            _ => None,
        })
    };
    assert!(world.run_until(deadline, |w| ended(w).is_some()));
    // The application retries until the client is connected again and the command succeeds.
    let mut attempts = 0;
    while read_settings(&mut world, a, other).pinned_at.is_none() {
        attempts += 1;
        assert!(attempts < 10, "pin never succeeded");
        let deadline = world.now + 60_000;
        assert!(world.run_until(deadline, |w| w.client_state(a) == Some(&State::Connected)));
        run_command(&mut world, a, pin.clone());
    }
    // B reconnects after its crash and catches up; the pin reaches it too.
    let deadline = world.now + 60_000;
    assert!(world.run_until(deadline, |w| w.client_state(b) == Some(&State::Connected)));
    world.run_for(5_000);
    for chat in [CHAT, other] {
        let phone = world.server.phone_chat_settings(ALICE, chat);
        assert_eq!(read_settings(&mut world, a, chat), phone, "{chat} on A");
        assert_eq!(read_settings(&mut world, b, chat), phone, "{chat} on B");
    }
    assert_eq!(
        world.server.phone_chat_settings(ALICE, CHAT).muted_until,
        Some(MuteUntil::Forever)
    );
    assert!(
        world
            .server
            .phone_chat_settings(ALICE, other)
            .pinned_at
            .is_some()
    );
    assert!(world.server.phone_app_state_errors(ALICE).is_empty());
    assert!(!fatal(&world, a) && !fatal(&world, b));
}

/// Ten chats muted by the phone with snapshots served as external blobs; returns the chats.
fn muted_with_external_snapshots(world: &mut World) -> Vec<String> {
    world.server.set_app_state_external_snapshots(ALICE, true);
    let now = world.now;
    let chats: Vec<String> = (0..10)
        .map(|i| format!("1555333{i:04}@s.whatsapp.net"))
        .collect();
    for chat in &chats {
        world
            .server
            .phone_app_state(now, ALICE, &[mute(chat)])
            .unwrap();
    }
    world.flush();
    chats
}

fn all_muted(world: &World, client: usize, chats: &[String]) -> bool {
    chats
        .iter()
        .all(|c| settings_event(world, client, c).is_some_and(|s| s.muted_until.is_some()))
}

fn downloads_asked(world: &World, client: usize) -> usize {
    world.clients[client].fetched.len()
}

#[test]
fn a_new_client_catches_up_from_an_external_snapshot_blob() {
    let mut world = world(31);
    let first = link(&mut world);
    world.run_for(2_000);
    let chats = muted_with_external_snapshots(&mut world);
    let blobs_before = world.server.blob_count();
    // A client linked now asks for a snapshot: the server answers with a blob reference, the
    // host downloads it from the blob store, and the client applies snapshot plus patches.
    let late = link(&mut world);
    let deadline = world.now + 20_000;
    assert!(world.run_until(deadline, |w| all_muted(w, late, &chats)));
    assert!(world.run_until(deadline, |w| all_muted(w, first, &chats)));
    assert!(downloads_asked(&world, late) >= 1);
    assert!(world.blob_downloads >= 1);
    assert!(world.server.blob_count() > blobs_before);
    let (asked, served) = world.server.app_state_snapshot_counts(ALICE);
    assert!(asked >= 1 && served >= 1, "asked {asked}, served {served}");
    assert!(!fatal(&world, late) && !fatal(&world, first));
    // No request carries the media key: the download is a GET of the media host and the path.
    for url in &world.clients[late].fetched {
        assert!(
            url.starts_with("https://mmg.whatsapp.net/v/sim/md-app-state/"),
            "{url}"
        );
    }
    // The persisted state survives a restart: nothing is downloaded again for it.
    let downloads_before = world.blob_downloads;
    world.crash(late);
    world.run_for(5_000);
    assert_eq!(world.blob_downloads, downloads_before);
    assert!(
        read_settings(&mut world, late, &chats[0])
            .muted_until
            .is_some()
    );
}

#[test]
fn a_corrupt_or_failed_blob_leaves_the_records_untouched_and_recovers() {
    let mut world = world(32);
    let _first = link(&mut world);
    world.run_for(2_000);
    let chats = muted_with_external_snapshots(&mut world);

    // 1. Every download is corrupt: retries, then a typed fatal; nothing was half-applied.
    world.corrupt_blob_downloads = u32::MAX;
    let late = link(&mut world);
    let deadline = world.now + 20_000;
    assert!(world.run_until(deadline, |w| fatal(w, late)));
    // The muted chats' collection was never stored (the others, empty, were).
    let collection = mute(&chats[0]).collection().unwrap().name().to_owned();
    let key = (
        Space::AppStateVersion.as_str().to_owned(),
        collection.clone(),
    );
    assert!(!version_records(&world, late).contains_key(&key));
    assert!(
        chats
            .iter()
            .all(|c| settings_event(&world, late, c).is_none())
    );
    let corrupt_asked = downloads_asked(&world, late);
    assert!(corrupt_asked >= 2, "{corrupt_asked} downloads");
    let before = app_state_records(&world, late);

    // 2. One failed and one corrupt download, then honest ones: the retry recovers.
    world.corrupt_blob_downloads = 1;
    world.failed_blob_downloads = 1;
    assert_eq!(app_state_records(&world, late), before);
    world.drop_connection(late);
    let deadline = world.now + 30_000;
    assert!(world.run_until(deadline, |w| all_muted(w, late, &chats)));
    assert_eq!(world.corrupt_blob_downloads, 0);
    assert_eq!(world.failed_blob_downloads, 0);
    assert!(downloads_asked(&world, late) >= corrupt_asked + 3);
    assert!(version_records(&world, late).contains_key(&key));
}

fn version_records(world: &World, client: usize) -> BTreeMap<(String, String), Vec<u8>> {
    app_state_records(world, client)
        .into_iter()
        .filter(|((space, _), _)| space == Space::AppStateVersion.as_str())
        .collect()
}

/// The key requests the phone of Alice received from `client`'s device.
fn key_requests_from(world: &World, client: usize) -> usize {
    let device = device_of(world, client);
    world
        .server
        .phone_messages(ALICE)
        .unwrap_or_default()
        .iter()
        .filter(|m| {
            m.from.contains(&format!("{ALICE}:{device}@")) && m.app_state_key_request.is_some()
        })
        .count()
}

#[test]
fn an_unanswered_key_request_is_asked_again_then_reported_fatal() {
    use walink_core::appstate::PatchError;
    use walink_core::client::AppStateFailure;
    use walink_core::limits::{APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS, APPSTATE_CLIENT_KEY_REQUESTS};

    let mut world = world(41);
    world.server.set_app_state_auto_share(ALICE, false);
    world.server.set_app_state_ignore_key_requests(ALICE, true);
    let now = world.now;
    world
        .server
        .phone_app_state(now, ALICE, &[mute(CHAT)])
        .unwrap();
    let client = link(&mut world);
    let waiting = |w: &World| {
        w.clients[client]
            .events
            .iter()
            .any(|e| matches!(e, Event::AppStateWaitingForKeys { .. }))
    };
    let deadline = world.now + 10_000;
    assert!(world.run_until(deadline, waiting));
    let deadline = world.now + 5_000;
    assert!(world.run_until(deadline, |w| key_requests_from(w, client) == 1));
    let started = world.now;

    // Nobody answers: the request goes out again on the schedule, 10 s then 20 s later.
    let deadline = started + APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS + 2_000;
    assert!(world.run_until(deadline, |w| key_requests_from(w, client) == 2));
    assert!(world.now >= started + APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS - 1_000);
    assert!(!fatal(&world, client));
    let deadline = world.now + 2 * APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS + 2_000;
    assert!(world.run_until(deadline, |w| key_requests_from(w, client)
        == APPSTATE_CLIENT_KEY_REQUESTS as usize));
    assert!(!fatal(&world, client), "not before the last wait ends");
    let records_before = app_state_records(&world, client);

    // After the last attempt's wait: a typed fatal naming the missing key, and no more asking.
    let deadline = world.now + 4 * APPSTATE_CLIENT_KEY_REQUEST_WAIT_MS + 2_000;
    assert!(world.run_until(deadline, |w| fatal(w, client)));
    let error = world.clients[client]
        .events
        .iter()
        .find_map(|e| match e {
            Event::AppStateFatal { collection, error } => Some((*collection, error.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(error.0, Collection::RegularHigh);
    assert!(
        matches!(&error.1, AppStateFailure::Patch(PatchError::MissingKeys(ids)) if ids.len() == 1),
        "{error:?}"
    );
    world.run_for(5 * 60_000);
    assert_eq!(
        key_requests_from(&world, client),
        APPSTATE_CLIENT_KEY_REQUESTS as usize
    );
    assert_eq!(app_state_records(&world, client), records_before);
    assert!(
        read_settings(&mut world, client, CHAT)
            .muted_until
            .is_none()
    );
    assert_eq!(world.server.app_state_key_requests(ALICE), 3);

    // The phone comes back and the next login asks again; this time the key arrives.
    world.server.set_app_state_ignore_key_requests(ALICE, false);
    world.drop_connection(client);
    let deadline = world.now + 60_000;
    assert!(world.run_until(deadline, |w| {
        settings_event(w, client, CHAT).is_some_and(|s| s.muted_until == Some(MuteUntil::Forever))
    }));
}

#[test]
fn a_patch_with_external_mutations_applies_end_to_end() {
    let mut world = world(42);
    world.server.set_app_state_external_mutations(ALICE, true);
    let a = link(&mut world);
    world.run_for(2_000);
    // One patch of 20 mutes: its mutations exceed the threshold and travel as a blob.
    let chats: Vec<String> = (0..20)
        .map(|i| format!("1555444{i:04}@s.whatsapp.net"))
        .collect();
    let actions: Vec<SyncAction> = chats.iter().map(|c| mute(c)).collect();
    let now = world.now;
    world.server.phone_app_state(now, ALICE, &actions).unwrap();
    // And a small one that stays inline.
    world
        .server
        .phone_app_state(now, ALICE, &[mute(CHAT)])
        .unwrap();
    world.flush();
    let deadline = world.now + 20_000;
    assert!(world.run_until(deadline, |w| all_muted(w, a, &chats)
        && settings_event(w, a, CHAT).is_some()));
    assert!(world.server.app_state_external_patches_served(ALICE) >= 1);
    assert!(downloads_asked(&world, a) >= 1);
    assert!(!fatal(&world, a));
    for chat in chats.iter().chain([&CHAT.to_owned()]) {
        assert_eq!(
            read_settings(&mut world, a, chat),
            world.server.phone_chat_settings(ALICE, chat),
            "{chat}"
        );
    }

    // A client linked later fetches the same patches from version 0 (no snapshot yet at 2):
    // the large one again as external mutations.
    let served = world.server.app_state_external_patches_served(ALICE);
    let late = link(&mut world);
    let deadline = world.now + 20_000;
    assert!(world.run_until(deadline, |w| all_muted(w, late, &chats)));
    assert!(world.server.app_state_external_patches_served(ALICE) > served);
    assert!(!fatal(&world, late));

    // A corrupt blob of external mutations is refused (the file's MAC), refetched, and heals.
    world.corrupt_blob_downloads = 1;
    let now = world.now;
    let more: Vec<SyncAction> = (20..40)
        .map(|i| mute(&format!("1555444{i:04}@s.whatsapp.net")))
        .collect();
    let downloads = downloads_asked(&world, a);
    world.server.phone_app_state(now, ALICE, &more).unwrap();
    world.flush();
    let deadline = world.now + 20_000;
    assert!(world.run_until(deadline, |w| w.corrupt_blob_downloads == 0));
    assert!(world.run_until(world.now + 30_000, |w| {
        (20..40).all(|i| settings_event(w, a, &format!("1555444{i:04}@s.whatsapp.net")).is_some())
    }));
    assert!(
        downloads_asked(&world, a) >= downloads + 2,
        "the corrupt file was fetched again"
    );
    assert!(!fatal(&world, a));
}

/// The stored version of `collection` and the stored settings of `chats` (from the records
/// alone, as a rebuilt client would read them).
fn stored_state(
    world: &World,
    client: usize,
    collection: Collection,
    chats: &[String],
) -> (u64, Vec<ChatSettings>) {
    use walink_core::appstate::persist;
    let records = version_records(world, client);
    let space = Space::AppStateVersion.as_str().to_owned();
    let version = records
        .get(&(space.clone(), collection.name().to_owned()))
        .map_or(0, |bytes| {
            persist::decode_collection(bytes).unwrap().1.version()
        });
    let view = records
        .get(&(space, walink_core::client::APP_STATE_VIEW_KEY.to_owned()))
        .map(|bytes| persist::decode_view(bytes).unwrap())
        .unwrap_or_default();
    (version, chats.iter().map(|c| view.chat(c)).collect())
}

#[test]
fn a_crash_between_the_outputs_of_a_patch_apply_leaves_before_or_after_never_between() {
    let chats: Vec<String> = (0..3)
        .map(|i| format!("1555666{i:04}@s.whatsapp.net"))
        .collect();
    let collection = Collection::RegularHigh;
    let mut crashed_before = 0;
    let mut crashed_after = 0;
    // Crash before the 0th, 1st, ... output the client produces once the phone's patch is
    // announced: every place between the outputs of the sync, its answer and the apply.
    for n in 0..24 {
        let mut world = world(50);
        let client = link(&mut world);
        let now = world.now;
        world
            .server
            .phone_app_state(now, ALICE, &[mute(&chats[0])])
            .unwrap();
        let deadline = world.now + 10_000;
        assert!(world.run_until(deadline, |w| settings_event(w, client, &chats[0]).is_some()));
        world.run_for(1_000);
        let before = stored_state(&world, client, collection, &chats);
        assert_eq!(before.0, 1);

        // One patch muting the three chats (the first again, with an end now).
        let now = world.now;
        let actions: Vec<SyncAction> = chats
            .iter()
            .map(|c| SyncAction::Mute {
                chat: c.clone(),
                until: MuteUntil::Until(1_900_000_000_000),
            })
            .collect();
        world.crash_after_outputs(client, n);
        world.server.phone_app_state(now, ALICE, &actions).unwrap();
        world.flush();
        let deadline = world.now + 20_000;
        world.run_until(deadline, |w| !w.crash_pending());
        let crashed = !world.crash_pending();
        world.cancel_crash();
        let after_settings: Vec<ChatSettings> = chats
            .iter()
            .map(|c| world.server.phone_chat_settings(ALICE, c))
            .collect();
        if crashed {
            assert_eq!(world.clients[client].crashes, 1);
            let stored = stored_state(&world, client, collection, &chats);
            // What the rebuilt client holds (its store) and shows (GetChatSettings, loaded
            // from the store): all of the patch or none of it.
            let shown: Vec<ChatSettings> = chats
                .iter()
                .map(|c| read_settings(&mut world, client, c))
                .collect();
            if stored.0 == before.0 {
                assert_eq!(stored, before, "crash before output {n}: half-applied");
                crashed_before += 1;
            } else {
                assert_eq!(stored.0, 2, "crash before output {n}");
                assert_eq!(
                    stored.1, after_settings,
                    "crash before output {n}: half-applied"
                );
                crashed_after += 1;
            }
            assert!(
                shown == before.1 || shown == after_settings,
                "output {n}: {shown:?}"
            );
            assert_eq!(
                shown, stored.1,
                "output {n}: the view shown is the one stored"
            );
        }
        // Whatever the crash lost, the client catches up to the phone.
        let deadline = world.now + 60_000;
        assert!(
            world.run_until(deadline, |w| {
                stored_state(w, client, collection, &chats) == (2, after_settings.clone())
            }),
            "output {n}: never caught up"
        );
        assert!(!fatal(&world, client));
        // Past the apply, later crashes add nothing: stop a few outputs after it.
        if !crashed || crashed_after >= 3 {
            break;
        }
    }
    assert!(crashed_before >= 1, "some crash came before the batch");
    assert!(crashed_after >= 1, "some crash came after the batch");
}
