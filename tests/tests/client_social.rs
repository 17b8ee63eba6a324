//! Calls, presence and chat state, contact queries: walink clients against walink-sim's server
//! and phones (tests/src/sim/server/social.rs), including the failure answers as typed errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::client::{
    About, CallAction, CallEvent, ChatState, Command, CommandError, CommandOutput, Config, Event,
    ProfilePicture, State,
};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, World};

const T0: u64 = 1_780_000_000_000;
const ALICE: &str = "15551234567";
const BOB: &str = "15557654321";
const CAROL: &str = "15550001111";
const ALICE_JID: &str = "15551234567@s.whatsapp.net";
const BOB_JID: &str = "15557654321@s.whatsapp.net";

fn config(push_name: Option<&str>) -> Config {
    let mut profile = ClientProfile::new(WebVersion::new(2, 3000, 1_023_456_789), "walink");
    profile.push_name = push_name.map(str::to_owned);
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(profile)
    }
}

/// Alice and Bob with one walink client each (Alice's has a push name, Bob's has none).
fn world(seed: u64) -> (World, usize, usize) {
    let mut world = World::new(seed, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    world.server.create_account(CAROL, "Carol").unwrap();
    let alice = world.link_by_qr(config(Some("Alice")), ALICE).unwrap();
    let bob = world.link_by_qr(config(None), BOB).unwrap();
    (world, alice, bob)
}

fn run(world: &mut World, client: usize, command: Command) -> Result<CommandOutput, CommandError> {
    world
        .command_and_wait(client, command, 20_000)
        .expect("the command ends")
}

/// The events of `client` from index `from` on that `pick` selects.
fn events<T>(
    world: &World,
    client: usize,
    from: usize,
    pick: impl Fn(&Event) -> Option<T>,
) -> Vec<T> {
    world.clients[client].events[from..]
        .iter()
        .filter_map(pick)
        .collect()
}

fn calls(world: &World, client: usize, from: usize) -> Vec<CallEvent> {
    events(world, client, from, |e| match e {
        Event::Call(call) => Some((**call).clone()),
        _ => None,
    })
}

fn wait_for_calls(world: &mut World, client: usize, from: usize, count: usize) -> Vec<CallEvent> {
    world.run_until(world.now + 10_000, |w| {
        calls(w, client, from).len() >= count
    });
    calls(world, client, from)
}

#[test]
fn an_offered_call_is_reported_and_rejected_as_whatsapp_web_does() {
    let (mut world, alice, _bob) = world(1);
    let before = world.clients[alice].events.len();
    let now = world.now;
    let call_id = world
        .server
        .phone_offer_call(now, BOB, ALICE, false, None)
        .unwrap();
    let offer = wait_for_calls(&mut world, alice, before, 1).remove(0);
    assert_eq!(offer.call_id, call_id);
    assert_eq!(offer.action, CallAction::Offer);
    assert_eq!(offer.caller.to_string(), BOB_JID);
    assert_eq!(offer.device.to_string(), BOB_JID, "the phone is device 0");
    assert_eq!(offer.timestamp, now / 1000);
    assert!(!offer.video && !offer.is_group && !offer.offline);

    let result = run(
        &mut world,
        alice,
        Command::RejectCall {
            call_id: call_id.clone(),
            caller: offer.caller.to_string(),
        },
    );
    assert_eq!(result, Ok(CommandOutput::None));
    world.run_for(1_000);
    let rejected = world.server.rejected_calls();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].by, ALICE);
    assert_eq!(rejected[0].call_id, call_id);
    assert_eq!(rejected[0].creator, BOB_JID);
    assert_eq!(rejected[0].to, BOB_JID);
}

#[test]
fn video_and_group_calls_accepted_elsewhere_ended_and_missed() {
    let (mut world, alice, _bob) = world(2);
    let group = world
        .server
        .create_group(world.now, BOB, "Team", &[ALICE, CAROL])
        .unwrap();
    let before = world.clients[alice].events.len();
    let now = world.now;
    let video = world
        .server
        .phone_offer_call(now, BOB, ALICE, true, None)
        .unwrap();
    world.server.phone_accept_call(now, &video).unwrap();
    let grouped = world
        .server
        .phone_offer_call(now, CAROL, ALICE, false, Some(&group.user))
        .unwrap();
    world.server.phone_end_call(now, &grouped, false).unwrap();
    let missed = world
        .server
        .phone_offer_call(now, BOB, ALICE, false, None)
        .unwrap();
    world.server.phone_end_call(now, &missed, true).unwrap();
    let seen = wait_for_calls(&mut world, alice, before, 6);
    let actions: Vec<(String, CallAction, bool, bool)> = seen
        .iter()
        .map(|c| (c.call_id.clone(), c.action, c.video, c.is_group))
        .collect();
    assert_eq!(
        actions,
        vec![
            (video.clone(), CallAction::Offer, true, false),
            (video, CallAction::Accepted, true, false),
            (grouped.clone(), CallAction::Offer, false, true),
            (grouped, CallAction::Ended, false, true),
            (missed.clone(), CallAction::Offer, false, false),
            (missed, CallAction::TimedOut, false, false),
        ]
    );
    assert_eq!(seen[2].group.as_ref(), Some(&group));
    assert_eq!(
        seen[1].device.to_string(),
        ALICE_JID,
        "accepted on Alice's phone"
    );
}

#[test]
fn an_offer_that_arrived_while_offline_is_reported_as_such() {
    let (mut world, alice, _bob) = world(3);
    run(&mut world, alice, Command::Disconnect).unwrap();
    let before = world.clients[alice].events.len();
    let now = world.now;
    let call_id = world
        .server
        .phone_offer_call(now, BOB, ALICE, false, None)
        .unwrap();
    world.run_for(2_000);
    assert!(calls(&world, alice, before).is_empty());
    run(&mut world, alice, Command::Connect).unwrap();
    let offer = wait_for_calls(&mut world, alice, before, 1).remove(0);
    assert_eq!(offer.call_id, call_id);
    assert!(offer.offline);
}

fn presences(
    world: &World,
    client: usize,
    from: usize,
) -> Vec<walink_core::client::PresenceUpdate> {
    events(world, client, from, |e| match e {
        Event::Presence(p) => Some(p.clone()),
        _ => None,
    })
}

#[test]
fn own_presence_needs_a_push_name_and_reaches_subscribers() {
    let (mut world, alice, bob) = world(4);
    assert_eq!(
        run(&mut world, bob, Command::SetPresence { available: true }),
        Err(CommandError::PushNameRequired)
    );
    assert_eq!(world.server.presence_without_name(), 0, "nothing was sent");
    let before = world.clients[bob].events.len();
    run(
        &mut world,
        bob,
        Command::SubscribePresence {
            jid: ALICE_JID.into(),
        },
    )
    .unwrap();
    run(&mut world, alice, Command::SetPresence { available: true }).unwrap();
    world.run_for(1_000);
    assert!(world.server.is_online(ALICE));
    world.run_for(60_000);
    run(&mut world, alice, Command::SetPresence { available: false }).unwrap();
    world.run_for(1_000);
    let seen = presences(&world, bob, before);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(!seen[0].available, "offline when subscribing");
    assert!(seen[1].available);
    assert!(!seen[2].available);
    assert_eq!(seen[2].last_seen, Some(world.now / 1000 - 1));
    assert!(seen.iter().all(|p| p.jid.to_string() == ALICE_JID));
    assert_eq!(
        run(
            &mut world,
            bob,
            Command::SubscribePresence {
                jid: "120363000000000001@g.us".into()
            }
        ),
        Err(CommandError::InvalidAddress)
    );
}

#[test]
fn last_seen_follows_privacy_and_the_privacy_token() {
    let (mut world, _alice, bob) = world(5);
    world.server.set_privacy_setting(ALICE, "last", "contacts");
    let now = world.now;
    world.server.phone_set_presence(now, ALICE, true);
    world.flush();
    let subscribe = Command::SubscribePresence {
        jid: ALICE_JID.into(),
    };
    let before = world.clients[bob].events.len();
    run(&mut world, bob, subscribe.clone()).unwrap();
    world.run_for(1_000);
    let seen = presences(&world, bob, before);
    assert!(seen.last().unwrap().last_seen_hidden, "no token: hidden");
    world
        .server
        .phone_issue_privacy_token(now, ALICE, BOB)
        .unwrap();
    world.flush();
    world.run_for(1_000);
    let before = world.clients[bob].events.len();
    run(&mut world, bob, subscribe).unwrap();
    world.run_for(1_000);
    let seen = presences(&world, bob, before);
    assert!(seen.last().unwrap().available, "with the token: online");
}

#[test]
fn subscriptions_and_own_presence_are_renewed_after_a_reconnect() {
    let (mut world, alice, bob) = world(6);
    run(
        &mut world,
        bob,
        Command::SubscribePresence {
            jid: ALICE_JID.into(),
        },
    )
    .unwrap();
    run(&mut world, alice, Command::SetPresence { available: true }).unwrap();
    world.run_for(1_000);
    assert_eq!(world.server.presence_subscribers(ALICE), 1);
    world.drop_connection(bob);
    world.drop_connection(alice);
    let now = world.now;
    world.server.phone_set_presence(now, ALICE, false);
    world.flush();
    assert!(world.run_until(world.now + 10_000, |w| {
        w.client_state(bob) != Some(&State::Connected)
            && w.client_state(alice) != Some(&State::Connected)
    }));
    assert!(world.run_until(world.now + 60_000, |w| {
        w.client_state(bob) == Some(&State::Connected)
            && w.client_state(alice) == Some(&State::Connected)
    }));
    world.run_for(1_000);
    assert_eq!(world.server.presence_subscribers(ALICE), 1, "renewed");
    assert!(world.server.is_online(ALICE), "Alice's presence renewed");
    let before = world.clients[bob].events.len();
    let now = world.now;
    world.server.phone_set_presence(now, ALICE, false);
    world.flush();
    world.run_for(1_000);
    assert_eq!(presences(&world, bob, before).len(), 1);
}

#[test]
fn typing_recording_and_paused_in_chats_and_groups() {
    let (mut world, alice, bob) = world(7);
    let group = world
        .server
        .create_group(world.now, ALICE, "Team", &[BOB, CAROL])
        .unwrap();
    let before = world.clients[bob].events.len();
    for (to, state) in [
        (ALICE_JID.to_owned(), ChatState::Composing),
        (ALICE_JID.to_owned(), ChatState::Recording),
        (group.to_string(), ChatState::Paused),
    ] {
        run(&mut world, bob, Command::SendChatState { to, state }).unwrap();
    }
    world.run_for(1_000);
    let seen = world.server.chat_states_seen();
    let alice_saw: Vec<(&str, &str)> = seen
        .iter()
        .filter(|s| s.account == ALICE)
        .map(|s| (s.chat.as_str(), s.state.as_str()))
        .collect();
    assert_eq!(
        alice_saw,
        vec![
            (BOB_JID, "composing"),
            (BOB_JID, "recording"),
            (group.to_string().as_str(), "paused")
        ]
    );
    let alice_events = events(&world, alice, 0, |e| match e {
        Event::ChatState(s) => Some((s.chat.to_string(), s.sender.to_string(), s.state)),
        _ => None,
    });
    assert_eq!(
        alice_events,
        vec![
            (BOB_JID.to_owned(), BOB_JID.to_owned(), ChatState::Composing),
            (BOB_JID.to_owned(), BOB_JID.to_owned(), ChatState::Recording),
            (group.to_string(), BOB_JID.to_owned(), ChatState::Paused),
        ]
    );
    world
        .server
        .phone_chat_state(CAROL, &group.user, "composing")
        .unwrap();
    world.flush();
    world.run_for(1_000);
    let bob_events = events(&world, bob, before, |e| match e {
        Event::ChatState(s) => Some((s.chat.clone(), s.sender.to_string(), s.state)),
        _ => None,
    });
    assert_eq!(
        bob_events,
        vec![(
            group,
            "15550001111@s.whatsapp.net".to_owned(),
            ChatState::Composing
        )]
    );
}

#[test]
fn which_numbers_are_on_whatsapp_with_their_lids() {
    let (mut world, alice, _bob) = world(8);
    let result = run(
        &mut world,
        alice,
        Command::CheckNumbers {
            phones: vec!["+1 555 765 4321".into(), "15559990000".into(), CAROL.into()],
        },
    );
    let Ok(CommandOutput::Numbers(numbers)) = result else {
        panic!("{result:?}");
    };
    let bob_lid = world.server.account(BOB).unwrap().lid_jid();
    assert_eq!(numbers.len(), 3);
    assert_eq!(numbers[0].phone, BOB);
    assert!(numbers[0].on_whatsapp);
    assert_eq!(numbers[0].jid.to_string(), BOB_JID);
    assert_eq!(numbers[0].lid.as_ref(), Some(&bob_lid));
    assert!(!numbers[1].on_whatsapp, "not on WhatsApp is an answer");
    assert_eq!(numbers[1].lid, None);
    assert!(numbers[2].on_whatsapp);
    assert_eq!(
        run(
            &mut world,
            alice,
            Command::CheckNumbers {
                phones: vec!["12".into()]
            }
        ),
        Err(CommandError::InvalidPhoneNumber)
    );
    for (code, error) in [
        (
            429,
            CommandError::RateLimited {
                retry_after_ms: Some(30_000),
            },
        ),
        (400, CommandError::BadRequest),
        (401, CommandError::Forbidden),
    ] {
        world.server.fail_next_contact_query(code);
        assert_eq!(
            run(
                &mut world,
                alice,
                Command::CheckNumbers {
                    phones: vec![BOB.into()]
                }
            ),
            Err(error)
        );
    }
}

#[test]
fn profile_pictures_with_none_and_not_allowed_as_answers() {
    let (mut world, alice, _bob) = world(9);
    let get = |jid: &str, preview| Command::GetProfilePicture {
        jid: jid.into(),
        preview,
    };
    assert_eq!(
        run(&mut world, alice, get(BOB_JID, true)),
        Ok(CommandOutput::ProfilePicture(ProfilePicture::None))
    );
    world.server.set_profile_picture(BOB, Some("1700000001"));
    for preview in [true, false] {
        let result = run(&mut world, alice, get(BOB_JID, preview));
        let Ok(CommandOutput::ProfilePicture(ProfilePicture::Url { url, id, .. })) = result else {
            panic!("{result:?}");
        };
        assert_eq!(id, "1700000001");
        assert!(url.starts_with("https://"));
        assert!(url.contains(if preview { "preview" } else { "image" }));
    }
    world.server.set_privacy_setting(BOB, "profile", "contacts");
    assert_eq!(
        run(&mut world, alice, get(BOB_JID, true)),
        Ok(CommandOutput::ProfilePicture(ProfilePicture::NotAllowed))
    );
    let now = world.now;
    world
        .server
        .phone_issue_privacy_token(now, BOB, ALICE)
        .unwrap();
    world.flush();
    world.run_for(1_000);
    assert!(
        matches!(
            run(&mut world, alice, get(BOB_JID, true)),
            Ok(CommandOutput::ProfilePicture(ProfilePicture::Url { .. }))
        ),
        "the token Bob issued opens it"
    );
    world.server.fail_next_contact_query(429);
    assert!(matches!(
        run(&mut world, alice, get(BOB_JID, true)),
        Err(CommandError::RateLimited { .. })
    ));
    assert_eq!(
        run(&mut world, alice, get("not a jid", true)),
        Err(CommandError::InvalidAddress)
    );
}

#[test]
fn about_texts_business_profiles_and_push_names() {
    let (mut world, alice, bob) = world(10);
    let about = |jid: &str| Command::GetAbout { jid: jid.into() };
    world.server.set_about(world.now, BOB, "Hiking");
    assert_eq!(
        run(&mut world, alice, about(BOB_JID)),
        Ok(CommandOutput::About(About::NotAllowed)),
        "status is for contacts by default"
    );
    world.server.set_privacy_setting(BOB, "status", "all");
    assert_eq!(
        run(&mut world, alice, about(BOB_JID)),
        Ok(CommandOutput::About(About::Text {
            text: "Hiking".into(),
            set_at: world.now / 1000
        }))
    );
    world.server.set_business_profile(BOB, "Bikes and repairs");
    let result = run(
        &mut world,
        alice,
        Command::GetBusinessProfile {
            jid: BOB_JID.into(),
        },
    );
    let Ok(CommandOutput::BusinessProfile(Some(profile))) = result else {
        panic!("{result:?}");
    };
    assert_eq!(profile.description.as_deref(), Some("Bikes and repairs"));
    assert_eq!(
        run(
            &mut world,
            alice,
            Command::GetBusinessProfile {
                jid: "15550001111@s.whatsapp.net".into()
            }
        ),
        Ok(CommandOutput::BusinessProfile(None))
    );

    // Push names from the stanzas a contact sends, once per change.
    let before = world.clients[bob].events.len();
    for text in ["one", "two"] {
        run(
            &mut world,
            alice,
            Command::SendText {
                to: BOB_JID.into(),
                text: text.into(),
            },
        )
        .unwrap();
    }
    world.run_for(2_000);
    let names = events(&world, bob, before, |e| match e {
        Event::PushName(p) => Some((p.jid.to_string(), p.name.clone())),
        _ => None,
    });
    assert_eq!(names, vec![(ALICE_JID.to_owned(), "Alice".to_owned())]);
}

#[test]
fn block_unblock_and_the_block_list() {
    let (mut world, alice, _bob) = world(11);
    assert_eq!(
        run(&mut world, alice, Command::GetBlockList),
        Ok(CommandOutput::BlockList(Vec::new()))
    );
    // Learn Bob's LID first: blocking names the LID with the number beside it.
    run(
        &mut world,
        alice,
        Command::CheckNumbers {
            phones: vec![BOB.into()],
        },
    )
    .unwrap();
    let block = |jid: &str, blocked| Command::SetBlocked {
        jid: jid.into(),
        blocked,
    };
    run(&mut world, alice, block(BOB_JID, true)).unwrap();
    assert_eq!(world.server.blocked_by(ALICE), vec![BOB.to_owned()]);
    let Ok(CommandOutput::BlockList(list)) = run(&mut world, alice, Command::GetBlockList) else {
        panic!("a block list");
    };
    assert_eq!(
        list.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![BOB_JID]
    );
    run(&mut world, alice, block(BOB_JID, false)).unwrap();
    assert!(world.server.blocked_by(ALICE).is_empty());
    assert_eq!(
        run(&mut world, alice, block("15559990000@s.whatsapp.net", true)),
        Err(CommandError::NotFound)
    );
    world.server.fail_next_contact_query(401);
    assert_eq!(
        run(&mut world, alice, Command::GetBlockList),
        Err(CommandError::Forbidden)
    );
}

#[test]
fn social_commands_need_a_connection() {
    let (mut world, alice, _bob) = world(12);
    run(&mut world, alice, Command::Disconnect).unwrap();
    for command in [
        Command::SetPresence { available: true },
        Command::CheckNumbers {
            phones: vec![BOB.into()],
        },
        Command::GetBlockList,
    ] {
        assert_eq!(
            run(&mut world, alice, command),
            Err(CommandError::NotConnected)
        );
    }
    assert_eq!(
        run(&mut world, alice, Command::CheckNumbers { phones: vec![] }),
        Err(CommandError::InvalidMessage)
    );
}

fn done_of(
    world: &World,
    client: usize,
    id: walink_core::client::CommandId,
) -> Vec<Result<CommandOutput, CommandError>> {
    events(world, client, 0, |e| match e {
        Event::CommandDone { id: done, result } if *done == id => Some(result.clone()),
        _ => None,
    })
}

#[test]
fn a_reject_ends_on_the_servers_ack_and_fails_without_one() {
    let (mut world, alice, _bob) = world(13);
    let offer = |world: &mut World| {
        let now = world.now;
        world
            .server
            .phone_offer_call(now, BOB, ALICE, false, None)
            .unwrap()
    };
    let reject = |call_id: &str| Command::RejectCall {
        call_id: call_id.into(),
        caller: BOB_JID.into(),
    };
    // Sent, not acked yet: the command has not ended.
    let call_id = offer(&mut world);
    world.run_for(2_000);
    let id = world.command(alice, reject(&call_id)).unwrap();
    assert!(done_of(&world, alice, id).is_empty(), "waits for the ack");
    world.run_for(2_000);
    assert_eq!(done_of(&world, alice, id), vec![Ok(CommandOutput::None)]);
    assert_eq!(world.server.rejected_calls().len(), 1);
    // The connection is lost with the reject in flight: no ack, the command fails.
    let call_id = offer(&mut world);
    world.run_for(2_000);
    let id = world.command(alice, reject(&call_id)).unwrap();
    world.drop_connection_in_flight(alice);
    world.run_for(1_000);
    assert_eq!(
        done_of(&world, alice, id),
        vec![Err(CommandError::NotConnected)]
    );
    assert_eq!(
        world.server.rejected_calls().len(),
        1,
        "never reached the server"
    );
    // The server refuses it: a typed error from the ack's code.
    assert!(
        world.run_until(world.now + 60_000, |w| w.client_state(alice)
            == Some(&State::Connected))
    );
    let call_id = offer(&mut world);
    world.run_for(2_000);
    world.server.fail_next_call_stanza(403);
    assert_eq!(
        run(&mut world, alice, reject(&call_id)),
        Err(CommandError::Forbidden)
    );
    assert_eq!(world.server.rejected_calls().len(), 1);
}

#[test]
fn an_unsubscribed_presence_is_not_renewed() {
    let (mut world, alice, bob) = world(14);
    let jid = ALICE_JID.to_owned();
    run(
        &mut world,
        bob,
        Command::SubscribePresence { jid: jid.clone() },
    )
    .unwrap();
    world.run_for(1_000);
    assert_eq!(world.server.presence_subscribers(ALICE), 1);
    run(
        &mut world,
        bob,
        Command::UnsubscribePresence { jid: jid.clone() },
    )
    .unwrap();
    world.run_for(1_000);
    assert_eq!(world.server.presence_subscribers(ALICE), 0);
    let before = world.clients[bob].events.len();
    run(&mut world, alice, Command::SetPresence { available: true }).unwrap();
    world.run_for(1_000);
    assert!(presences(&world, bob, before).is_empty(), "no more updates");
    world.drop_connection(bob);
    assert!(world.run_until(world.now + 60_000, |w| w.client_state(bob)
        == Some(&State::Connected)));
    world.run_for(1_000);
    assert_eq!(world.server.presence_subscribers(ALICE), 0, "not renewed");
    assert_eq!(
        run(
            &mut world,
            bob,
            Command::UnsubscribePresence { jid: "x".into() }
        ),
        Err(CommandError::InvalidAddress)
    );
}

#[test]
fn a_privacy_token_survives_a_restart() {
    let (mut world, _alice, bob) = world(15);
    world.server.set_privacy_setting(ALICE, "last", "contacts");
    let now = world.now;
    world.server.phone_set_presence(now, ALICE, true);
    world
        .server
        .phone_issue_privacy_token(now, ALICE, BOB)
        .unwrap();
    world.flush();
    world.run_for(1_000);
    let stored = world.clients[bob]
        .records()
        .into_iter()
        .filter(|r| r.space == walink_core::store::Space::PrivacyToken)
        .count();
    assert!(stored >= 1, "the token is stored");
    // The host restarts: a new client from the stored records.
    world.crash(bob);
    assert!(world.run_until(world.now + 60_000, |w| w.client_state(bob)
        == Some(&State::Connected)));
    let before = world.clients[bob].events.len();
    run(
        &mut world,
        bob,
        Command::SubscribePresence {
            jid: ALICE_JID.into(),
        },
    )
    .unwrap();
    world.run_for(1_000);
    let seen = presences(&world, bob, before);
    assert!(
        seen.last()
            .is_some_and(|p| p.available && !p.last_seen_hidden),
        "subscribed with the stored token: {seen:?}"
    );
}
