//! Status posts (`status@broadcast`, docs/content.md) through walink-sim: a phone's post reaches
//! a walink client as a message event marked as status with its poster, the client's read
//! receipt reaches the poster's phone as WhatsApp Web sends it, and a text post the client
//! sends reaches exactly the recipients it names (phones and walink clients), again with a
//! second post, and nobody else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message as _;
use walink_core::client::{Command, CommandError, CommandOutput, Config, Event, IncomingMessage};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_core::proto::wa;
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, World};

const T0: u64 = 1_780_000_000_000;
const ALICE: &str = "15551234567";
const BOB: &str = "15557654321";
const CAROL: &str = "15550001111";
const ALICE_JID: &str = "15551234567@s.whatsapp.net";
const BOB_JID: &str = "15557654321@s.whatsapp.net";
const CAROL_JID: &str = "15550001111@s.whatsapp.net";
const STATUS: &str = "status@broadcast";

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

/// Alice and Bob with one walink client each; Carol with her phone only.
fn world(seed: u64) -> (World, usize, usize) {
    let mut world = World::new(seed, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    world.server.create_account(CAROL, "Carol").unwrap();
    let alice = world.link_by_qr(config(), ALICE).expect("Alice links");
    let bob = world.link_by_qr(config(), BOB).expect("Bob links");
    (world, alice, bob)
}

fn run(world: &mut World, client: usize, command: Command) -> Result<CommandOutput, CommandError> {
    let before = world.clients[client].events.len();
    let id = world.command(client, command).unwrap();
    let done = |w: &World| {
        w.clients[client].events[before..]
            .iter()
            .find_map(|e| match e {
                Event::CommandDone { id: done, result } if *done == id => Some(result.clone()),
                _ => None,
            })
    };
    assert!(world.run_until(world.now + 20_000, |w| done(w).is_some()));
    done(world).unwrap()
}

fn received(world: &mut World, client: usize, id: &str) -> Option<IncomingMessage> {
    let find = |w: &World| {
        w.clients[client].events.iter().find_map(|e| match e {
            Event::Message(m) if m.id == id => Some((**m).clone()),
            _ => None,
        })
    };
    world.run_until(world.now + 10_000, |w| find(w).is_some());
    find(world)
}

/// A text post as WhatsApp's clients build it: `extendedTextMessage` with a background and
/// a font.
fn text_post(text: &str) -> wa::Message {
    wa::Message {
        extended_text_message: Some(Box::new(wa::message::ExtendedTextMessage {
            text: Some(text.into()),
            background_argb: Some(0xff00_7f7f),
            font: Some(1),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn post(world: &mut World, client: usize, recipients: &[&str], text: &str) -> String {
    match run(
        world,
        client,
        Command::SendStatus {
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            message: text_post(text).encode_to_vec(),
        },
    ) {
        Ok(CommandOutput::MessageSent { id }) => id,
        other => panic!("status post failed: {other:?}"),
    }
}

/// The text the phone of `user` decrypted for message `id` in `status@broadcast`.
fn phone_got(world: &World, user: &str, id: &str) -> Option<String> {
    world
        .server
        .phone_messages(user)
        .unwrap_or_default()
        .iter()
        .find(|m| m.id == id && m.chat == STATUS)
        .and_then(|m| m.text.clone())
}

#[test]
fn a_phone_status_post_arrives_marked_as_status_and_its_read_receipt_reaches_the_poster() {
    let (mut world, alice, _bob) = world(0x5747_0001);
    let now = world.now;
    let id = world
        .server
        .phone_post_status(now, BOB, &[ALICE], text_post("out hiking"))
        .unwrap();
    let message = received(&mut world, alice, &id).expect("Alice gets Bob's post");
    assert!(message.is_status());
    assert_eq!(message.chat.to_string(), STATUS);
    assert_eq!(message.sender.to_non_device().to_string(), BOB_JID);
    assert_eq!(message.text.as_deref(), Some("out hiking"));
    assert!(!message.from_me);
    assert_eq!(
        message
            .message
            .extended_text_message
            .as_ref()
            .and_then(|m| m.background_argb),
        Some(0xff00_7f7f)
    );
    assert_eq!(
        message.key().participant.as_deref(),
        Some(BOB_JID),
        "a status post's key names its poster"
    );

    // Alice views it: `<receipt to="status@broadcast" participant=<poster> type="read">`.
    let result = run(
        &mut world,
        alice,
        Command::MarkRead {
            chat: STATUS.into(),
            sender: Some(BOB_JID.into()),
            ids: vec![id.clone()],
        },
    );
    assert_eq!(result, Ok(CommandOutput::None));
    assert!(world.run_until(world.now + 5_000, |w| {
        w.server
            .status_receipts(BOB)
            .iter()
            .any(|r| r.id == id && r.kind == "read")
    }));
    let receipts = world.server.status_receipts(BOB);
    let read = receipts.iter().find(|r| r.kind == "read").unwrap();
    assert_eq!(read.viewer.user, ALICE);
    assert_eq!(
        read.participant
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some(BOB_JID)
    );
    // The delivery receipt came first, addressed the same way.
    assert!(receipts.iter().any(|r| r.id == id && r.kind == "delivery"));
}

#[test]
fn a_status_post_reaches_the_recipients_it_names_and_nobody_else() {
    let (mut world, alice, bob) = world(0x5747_0002);
    let first = post(&mut world, alice, &[BOB_JID], "first post");
    assert!(world.run_until(world.now + 5_000, |w| phone_got(w, BOB, &first).is_some()));
    assert_eq!(
        phone_got(&world, BOB, &first).as_deref(),
        Some("first post")
    );
    // Bob's walink client (a companion of a recipient) opens it too, as a status post.
    let at_bob = received(&mut world, bob, &first).expect("Bob's companion gets it");
    assert!(at_bob.is_status());
    assert_eq!(at_bob.sender.to_non_device().to_string(), ALICE_JID);
    assert_eq!(at_bob.text.as_deref(), Some("first post"));
    // Alice's own phone gets her post; Carol, not named, gets nothing.
    assert!(world.run_until(world.now + 5_000, |w| phone_got(w, ALICE, &first).is_some()));
    assert!(
        world
            .server
            .phone_messages(CAROL)
            .unwrap_or_default()
            .iter()
            .all(|m| m.id != first)
    );
    // Bob's phone's delivery receipt reaches Alice as a status receipt.
    assert!(world.run_until(world.now + 5_000, |w| {
        w.clients[alice].events.iter().any(|e| {
            matches!(e, Event::Receipt(r) if r.ids.contains(&first)
                && r.chat.to_string() == STATUS && r.sender.user == BOB)
        })
    }));

    // A second post to a wider audience: the sender key goes to every recipient device again
    // (the audience), and the chain continues for Bob.
    let second = post(&mut world, alice, &[BOB_JID, CAROL_JID], "second post");
    assert!(world.run_until(world.now + 5_000, |w| {
        phone_got(w, BOB, &second).is_some() && phone_got(w, CAROL, &second).is_some()
    }));
    assert_eq!(
        phone_got(&world, CAROL, &second).as_deref(),
        Some("second post")
    );
    let at_bob = received(&mut world, bob, &second).expect("Bob's companion gets the second");
    assert_eq!(at_bob.text.as_deref(), Some("second post"));
}

#[test]
fn a_status_post_with_no_or_bad_recipients_is_refused() {
    let (mut world, alice, _bob) = world(0x5747_0003);
    for recipients in [
        vec![],
        vec!["not a jid".to_owned()],
        vec!["1234@g.us".to_owned()],
    ] {
        let result = run(
            &mut world,
            alice,
            Command::SendStatus {
                recipients,
                message: text_post("x").encode_to_vec(),
            },
        );
        assert_eq!(result, Err(CommandError::InvalidAddress));
    }
    let result = run(
        &mut world,
        alice,
        Command::SendStatus {
            recipients: vec![BOB_JID.into()],
            message: vec![0xff, 0xff],
        },
    );
    assert_eq!(result, Err(CommandError::InvalidMessage));
}
