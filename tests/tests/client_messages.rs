//! Messages between walink clients and simulated phones through walink-sim: the receive path
//! of the Client (records loaded on demand, decryption, delivery receipts, events), across
//! host crashes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::client::{Config, Event, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, World};

const T0: u64 = 1_780_000_000_000;
const ALICE: &str = "15551234567";
const BOB: &str = "15557654321";

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

/// A world with Alice and Bob, and one walink client linked to Alice's account by QR.
fn paired_world(seed: u64) -> (World, usize) {
    let mut world = World::new(seed, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, ALICE, &qr).unwrap();
    assert!(world.run_until(T0 + 30_000, |w| w.client_state(client)
        == Some(&State::Connected)));
    (world, client)
}

fn texts(world: &World, client: usize) -> Vec<(String, String)> {
    world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((m.sender.user.clone(), m.text.clone().unwrap_or_default())),
            _ => None,
        })
        .collect()
}

fn failures(world: &World, client: usize) -> usize {
    world.clients[client]
        .events
        .iter()
        .filter(|e| matches!(e, Event::DecryptFailed(_)))
        .count()
}

/// Bob's phone sends texts to Alice; the walink client decrypts each exactly once, in order,
/// including after its host crashed between messages (sessions reload from the store).
#[test]
fn phone_messages_reach_a_walink_client_exactly_once_in_order() {
    let (mut world, client) = paired_world(7);
    let mut expected = Vec::new();
    for i in 0..20 {
        let text = format!("hello {i}");
        let now = world.now;
        world
            .server
            .phone_send_text(now, BOB, ALICE, &text)
            .unwrap();
        world.flush();
        expected.push((BOB.to_owned(), text));
        let want = expected.len();
        assert!(
            world.run_until(world.now + 5_000, |w| texts(w, client).len() >= want),
            "message {i} arrived: {:?}",
            world.clients[client]
                .events
                .iter()
                .filter(|e| !matches!(e, Event::State { .. } | Event::Qr { .. }))
                .collect::<Vec<_>>()
        );
        if i % 7 == 3 {
            world.crash(client);
            assert!(
                world.run_until(world.now + 30_000, |w| w.client_state(client)
                    == Some(&State::Connected))
            );
        }
    }
    world.run_for(5_000);
    assert_eq!(texts(&world, client), expected);
    assert_eq!(failures(&world, client), 0);
    // Bob's phone got a delivery receipt for each (the server routes receipts to it).
}

/// Alice's own phone sends to Bob: the walink client gets the device-sent copy.
#[test]
fn own_phone_messages_reach_the_companion() {
    let (mut world, client) = paired_world(8);
    for i in 0..5 {
        let now = world.now;
        world
            .server
            .phone_send_text(now, ALICE, BOB, &format!("mine {i}"))
            .unwrap();
        world.flush();
        let want = i + 1;
        assert!(world.run_until(world.now + 5_000, |w| texts(w, client).len() >= want));
    }
    let got = texts(&world, client);
    let expected: Vec<(String, String)> = (0..5)
        .map(|i| (ALICE.to_owned(), format!("mine {i}")))
        .collect();
    assert_eq!(got, expected);
    let chats: Vec<String> = world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.chat.user.clone()),
            _ => None,
        })
        .collect();
    assert!(chats.iter().all(|c| c == BOB), "{chats:?}");
}
