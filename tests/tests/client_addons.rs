//! Add-ons sealed with their target's message secret (docs/content.md) through walink-sim: a
//! phone's encrypted reaction to a message walink sent, and its secret-encrypted edit of a
//! message it sent, reach the walink client as the plain reaction and edit a plain add-on
//! produces, also after the client restarted from its store (the secrets come back from their
//! records); an add-on whose target's secret is unknown arrives sealed, never dropped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message as _;
use walink_core::client::{Command, CommandOutput, Config, Event, IncomingMessage, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_core::proto::wa;
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::server::AddOnTarget;
use walink_sim::sim::{Faults, World};

const T0: u64 = 1_780_000_000_000;
const ALICE: &str = "15551234567";
const BOB: &str = "15557654321";
const ALICE_JID: &str = "15551234567@s.whatsapp.net";
const BOB_JID: &str = "15557654321@s.whatsapp.net";

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

fn received(world: &mut World, client: usize, id: &str) -> IncomingMessage {
    let find = |w: &World| {
        w.clients[client].events.iter().rev().find_map(|e| match e {
            Event::Message(m) if m.id == id => Some((**m).clone()),
            _ => None,
        })
    };
    assert!(
        world.run_until(world.now + 10_000, |w| find(w).is_some()),
        "never got {id}"
    );
    find(world).unwrap()
}

/// The secret the phone of `user` saw on message `id`.
fn phone_secret(world: &World, user: &str, id: &str) -> Vec<u8> {
    world
        .server
        .phone_messages(user)
        .unwrap()
        .iter()
        .find(|m| m.id == id)
        .and_then(|m| m.secret.clone())
        .expect("the phone saw the message's secret")
}

#[test]
fn encrypted_reactions_and_edits_arrive_as_plain_ones_also_after_a_restart() {
    let mut world = World::new(0xadd0_0001, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    let alice = world.link_by_qr(config(), ALICE).expect("Alice links");

    // Alice's client sends a text (with the message secret the client adds).
    let before = world.clients[alice].events.len();
    let id = world
        .command(
            alice,
            Command::SendMessage {
                to: BOB_JID.into(),
                message: wa::Message {
                    conversation: Some("hello Bob".into()),
                    ..Default::default()
                }
                .encode_to_vec(),
            },
        )
        .unwrap();
    assert!(world.run_until(world.now + 20_000, |w| {
        w.clients[alice].events[before..].iter().any(|e| {
            matches!(e, Event::CommandDone { id: done, result: Ok(CommandOutput::MessageSent { .. }) } if *done == id)
        })
    }));
    let sent_id = world.clients[alice].events[before..]
        .iter()
        .find_map(|e| match e {
            Event::CommandDone {
                result: Ok(CommandOutput::MessageSent { id }),
                ..
            } => Some(id.clone()),
            _ => None,
        })
        .unwrap();
    assert!(world.run_until(world.now + 5_000, |w| {
        w.server
            .phone_messages(BOB)
            .is_some_and(|m| m.iter().any(|m| m.id == sent_id))
    }));
    let to_alice = AddOnTarget {
        chat: ALICE_JID.into(),
        id: sent_id.clone(),
        author: ALICE_JID.into(),
        secret: phone_secret(&world, BOB, &sent_id),
    };

    // Bob's phone reacts, encrypted: Alice's client gets the reaction, its key her message.
    let now = world.now;
    let reaction_id = world
        .server
        .phone_send_enc_reaction(now, BOB, &to_alice, "🔥")
        .unwrap();
    let reaction = received(&mut world, alice, &reaction_id);
    assert!(reaction.message.enc_reaction_message.is_none());
    let plain = reaction.message.reaction_message.as_ref().expect("opened");
    assert_eq!(plain.text.as_deref(), Some("🔥"));
    let key = plain.key.as_ref().unwrap();
    assert_eq!(key.id.as_deref(), Some(sent_id.as_str()));
    assert_eq!(key.from_me, Some(true), "Alice wrote the target");
    assert!(!reaction.raw.is_empty(), "the sealed form stays in raw");

    // Bob's phone sends a text with a secret, then edits it, encrypted.
    let now = world.now;
    let secret = vec![0x5e; 32];
    let original = world
        .server
        .phone_send_message(
            now,
            BOB,
            ALICE_JID,
            wa::Message {
                conversation: Some("see you at 5".into()),
                message_context_info: Some(wa::MessageContextInfo {
                    message_secret: Some(secret.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .unwrap();
    received(&mut world, alice, &original);
    let bobs = AddOnTarget {
        chat: ALICE_JID.into(),
        id: original.clone(),
        author: BOB_JID.into(),
        secret,
    };

    // After a restart from the store, the secrets come back from their records.
    let settle = world.now + 2_000;
    world.run_until(settle, |_| false);
    world.crash(alice);
    assert!(
        world.run_until(world.now + 60_000, |w| w.client_state(alice)
            == Some(&State::Connected))
    );
    let now = world.now;
    let edit_id = world
        .server
        .phone_send_secret_edit(now, BOB, &bobs, "see you at 6")
        .unwrap();
    let edit = received(&mut world, alice, &edit_id);
    let protocol = edit.message.protocol_message.as_ref().expect("opened");
    assert_eq!(
        protocol.r#type,
        Some(wa::message::protocol_message::Type::MessageEdit as i32)
    );
    assert_eq!(
        protocol.key.as_ref().and_then(|k| k.id.as_deref()),
        Some(original.as_str())
    );
    assert_eq!(
        protocol
            .edited_message
            .as_ref()
            .and_then(|m| m.conversation.as_deref()),
        Some("see you at 6")
    );
    let now = world.now;
    let again = world
        .server
        .phone_send_enc_reaction(now, BOB, &to_alice, "👍")
        .unwrap();
    let reaction = received(&mut world, alice, &again);
    assert_eq!(
        reaction
            .message
            .reaction_message
            .as_ref()
            .and_then(|r| r.text.as_deref()),
        Some("👍")
    );

    // A reaction to a message whose secret Alice never kept arrives sealed.
    let unknown = AddOnTarget {
        chat: ALICE_JID.into(),
        id: "3EB0UNKNOWN000000000".into(),
        author: ALICE_JID.into(),
        secret: vec![1; 32],
    };
    let now = world.now;
    let sealed_id = world
        .server
        .phone_send_enc_reaction(now, BOB, &unknown, "?")
        .unwrap();
    let sealed = received(&mut world, alice, &sealed_id);
    assert!(sealed.message.reaction_message.is_none());
    assert!(sealed.message.enc_reaction_message.is_some());
    assert!(
        !world.clients[alice]
            .events
            .iter()
            .any(|e| matches!(e, Event::DecryptFailed(_)))
    );
}
