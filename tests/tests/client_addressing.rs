//! LID addressing end to end: walink-sim stamps the other form of every sender (`sender_lid`,
//! `sender_pn`, `participant_lid`, `participant_pn`, `peer_recipient_*`, `addressing_mode`) as
//! WhatsApp does, and walink's clients learn the phone-number/LID mappings from them, keep one
//! session per peer, and exchange 1:1 and LID-addressed group messages with each other and with
//! the phones without a decryption failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::client::{Command, CommandOutput, Config, Event};
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

fn link(world: &mut World, account: &str) -> usize {
    world
        .link_by_qr(config(), account)
        .unwrap_or_else(|| panic!("{account} links by QR"))
}

fn world(seed: u64) -> (World, String, String) {
    let mut world = World::new(seed, T0, Faults::none());
    let alice_lid = world.server.create_account(ALICE, "Alice").unwrap();
    let bob_lid = world.server.create_account(BOB, "Bob").unwrap();
    (world, alice_lid, bob_lid)
}

/// Sends a text from walink client `from` and waits for the server's ack.
fn send(world: &mut World, from: usize, to: &str, text: &str) {
    let command = Command::SendText {
        to: to.to_owned(),
        text: text.to_owned(),
    };
    let result = world.command_and_wait(from, command, 10_000);
    assert!(
        matches!(result, Some(Ok(CommandOutput::MessageSent { .. }))),
        "{text}: {result:?}"
    );
}

/// The messages a client reported: (chat, sender, text).
fn received(world: &World, client: usize) -> Vec<(String, String, String)> {
    world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((
                m.chat.to_string(),
                m.sender.to_string(),
                m.text.clone().unwrap_or_default(),
            )),
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

/// The LID a client persisted for phone-number user `pn`.
fn persisted_lid(world: &World, client: usize, pn: &str) -> Option<String> {
    use prost::Message as _;
    let value = world.clients[client]
        .store
        .get(&("lid-mapping".to_owned(), pn.to_owned()))?;
    walink_core::proto::walink::LidMappingRecord::decode(value.as_slice())
        .ok()?
        .lid_user
}

/// 1:1 by LID and by number: each message names the sender's other form, the receiver learns
/// the mapping (and persists it) and answers on the same session whichever form it uses; the
/// phone's own copies of messages to Bob name his other form (`peer_recipient_pn`,
/// `peer_recipient_lid`) and leave Alice's own mapping alone.
#[test]
fn one_to_one_messages_by_lid_and_by_number_teach_the_mapping() {
    let (mut world, alice_lid, bob_lid) = world(51);
    let alice = link(&mut world, ALICE);
    let bob = link(&mut world, BOB);

    // Alice's client writes to Bob's LID: Bob's client sees Alice's LID device and learns her
    // number from `sender_pn`.
    send(&mut world, alice, &format!("{bob_lid}@lid"), "by lid");
    assert!(world.run_until(world.now + 5_000, |w| !received(w, bob).is_empty()));
    let (chat, sender, text) = received(&world, bob)[0].clone();
    assert_eq!(text, "by lid");
    assert_eq!(chat, format!("{alice_lid}@lid"));
    assert!(sender.starts_with(&format!("{alice_lid}:")), "{sender}");
    assert_eq!(persisted_lid(&world, bob, ALICE), Some(alice_lid.clone()));

    // Bob answers to Alice's number: Alice's client sees Bob's number with `sender_lid`.
    send(
        &mut world,
        bob,
        &format!("{ALICE}@s.whatsapp.net"),
        "by number",
    );
    assert!(world.run_until(world.now + 5_000, |w| !received(w, alice).is_empty()));
    let (chat, _, text) = received(&world, alice)[0].clone();
    assert_eq!(
        (chat.as_str(), text.as_str()),
        (&*format!("{BOB}@s.whatsapp.net"), "by number")
    );
    assert_eq!(persisted_lid(&world, alice, BOB), Some(bob_lid.clone()));

    // Both forms again: one session per peer, so both decrypt on it.
    send(
        &mut world,
        alice,
        &format!("{BOB}@s.whatsapp.net"),
        "number again",
    );
    send(&mut world, bob, &format!("{alice_lid}@lid"), "lid again");
    world.run_for(2_000);
    assert_eq!(received(&world, bob).len(), 2);
    assert_eq!(received(&world, alice).len(), 2);

    // Bob's phone writes to Alice by number (`sender_lid`), Alice's phone to Bob's LID: the
    // copy reaching Alice's client names the recipient's number in `peer_recipient_pn`.
    let now = world.now;
    world
        .server
        .phone_send_text(now, BOB, ALICE, "from bob's phone")
        .unwrap();
    world
        .server
        .phone_send_text(
            now,
            ALICE,
            &format!("{bob_lid}@lid"),
            "own phone to bob's lid",
        )
        .unwrap();
    // And to his number: that copy names his LID in `peer_recipient_lid`, which is Bob's, not
    // Alice's own.
    world
        .server
        .phone_send_text(now, ALICE, BOB, "own phone to bob's number")
        .unwrap();
    world.flush();
    world.run_for(2_000);
    let at_alice: Vec<String> = received(&world, alice).into_iter().map(|m| m.2).collect();
    assert!(
        at_alice.contains(&"from bob's phone".to_owned()),
        "{at_alice:?}"
    );
    assert!(
        at_alice.contains(&"own phone to bob's lid".to_owned()),
        "{at_alice:?}"
    );
    assert!(
        at_alice.contains(&"own phone to bob's number".to_owned()),
        "{at_alice:?}"
    );
    assert_eq!(persisted_lid(&world, alice, ALICE), Some(alice_lid));
    assert_eq!(persisted_lid(&world, alice, BOB), Some(bob_lid));

    for client in [alice, bob] {
        assert_eq!(failures(&world, client), 0, "client {client}");
    }
    for phone in [ALICE, BOB] {
        let inbox = world.server.phone_messages(phone).unwrap();
        assert!(inbox.iter().all(|m| m.error.is_none()), "{inbox:?}");
    }
}

/// A LID-addressed group: the members come back as LIDs with their numbers, the four walink
/// clients and both phones send in turn, every other device gets each message once, the
/// senders are named by LID with `participant_pn`, and every `phash` (over the LID devices)
/// matches the server's.
#[test]
fn a_lid_addressed_group_exchanges_messages() {
    let (mut world, alice_lid, bob_lid) = world(52);
    let clients = [
        link(&mut world, ALICE),
        link(&mut world, ALICE),
        link(&mut world, BOB),
        link(&mut world, BOB),
    ];
    let now = world.now;
    let group = world
        .server
        .create_group_addressed(now, ALICE, "by lid", &[BOB], true)
        .unwrap()
        .to_string();
    let rounds = 24;
    // Who sent each text: a walink client, or a phone.
    let mut sent: Vec<(Result<usize, &str>, String)> = Vec::new();
    for i in 0..rounds {
        let text = format!("lid group {i}");
        match i % 6 {
            4 | 5 => {
                let phone = if i % 6 == 4 { ALICE } else { BOB };
                let now = world.now;
                world
                    .server
                    .phone_send_text(now, phone, &group, &text)
                    .unwrap();
                world.flush();
                world.run_for(500);
                sent.push((Err(phone), text));
            }
            n => {
                send(&mut world, clients[n], &group, &text);
                sent.push((Ok(clients[n]), text));
            }
        }
    }
    world.run_for(3_000);
    let others = |me: Result<usize, &str>| -> Vec<&str> {
        sent.iter()
            .filter(|(from, _)| *from != me)
            .map(|(_, text)| text.as_str())
            .collect()
    };
    for client in clients {
        let got = received(&world, client);
        let texts: Vec<&str> = got.iter().map(|(_, _, t)| t.as_str()).collect();
        assert_eq!(texts, others(Ok(client)), "client {client}");
        for (chat, sender, _) in &got {
            assert_eq!(chat, &group);
            assert!(
                sender.starts_with(&alice_lid) || sender.starts_with(&bob_lid),
                "senders are named by LID: {sender}"
            );
        }
        assert_eq!(failures(&world, client), 0, "client {client}");
        assert_eq!(
            persisted_lid(&world, client, ALICE),
            Some(alice_lid.clone())
        );
        assert_eq!(persisted_lid(&world, client, BOB), Some(bob_lid.clone()));
    }
    for phone in [ALICE, BOB] {
        let inbox = world.server.phone_messages(phone).unwrap();
        assert!(
            inbox.iter().all(|m| m.error.is_none()),
            "{phone}: {inbox:?}"
        );
        let got: Vec<&str> = inbox
            .iter()
            .filter(|m| m.chat == group)
            .filter_map(|m| m.text.as_deref())
            .collect();
        assert_eq!(got, others(Err(phone)), "{phone}'s phone");
    }
    assert_eq!(world.server.phash_mismatches(), 0);
    assert!(world.server.key_reuses().is_empty());
}
