//! A hostile server and hostile contacts attack a real walink `Client` through walink-sim, and
//! every attack fails with nothing lost (docs/security.md, "Messaging peers"): forged and
//! replayed retry receipts, a group retry from outside the group, stanzas stitched from several
//! messages or carrying one `<enc>` many times, a contact that re-registers with a new identity,
//! a conflict stream error of another type, a mislabelled own-device copy, and a stranger's
//! undecryptable messages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::binary::{Content, Jid, Node};
use walink_core::client::{
    Command, CommandError, CommandOutput, Config, DecryptFailureKind, Event, IdentityPolicy,
    RefusedRetry, RetryRefusal, State,
};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_core::store::Space;
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, ForgedRetry, Held, Hostility, StreamErrorKind, World};

const T0: u64 = 1_780_000_000_000;
const ALICE: &str = "15551234567";
const BOB: &str = "15557654321";
const EVE: &str = "15550006666";
const CAROL: &str = "15550003333";

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

/// Alice, Bob, Carol and Eve, and one walink client linked to Alice's account by QR.
fn paired_world(seed: u64, config: Config) -> (World, usize) {
    let mut world = World::new(seed, T0, Faults::none());
    for (user, name) in [
        (ALICE, "Alice"),
        (BOB, "Bob"),
        (CAROL, "Carol"),
        (EVE, "Eve"),
    ] {
        world.server.create_account(user, name).unwrap();
    }
    let client = world.add_client(config);
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, ALICE, &qr).unwrap();
    assert!(world.run_until(T0 + 30_000, |w| w.client_state(client)
        == Some(&State::Connected)));
    (world, client)
}

/// The walink client's own device on the server: (account, device id).
fn device_of(world: &World, client: usize) -> (String, u16) {
    let jid = world.clients[client].client.jid().unwrap();
    (jid.user.clone(), jid.device)
}

/// Sends `text` from the walink client and waits for the server's ack; returns the id.
fn send(world: &mut World, client: usize, to: &str, text: &str) -> String {
    let command = Command::SendText {
        to: to.to_owned(),
        text: text.to_owned(),
    };
    match world.command_and_wait(client, command, 10_000) {
        Some(Ok(CommandOutput::MessageSent { id })) => id,
        other => panic!("send {text:?}: {other:?}"),
    }
}

/// The (id, text) of every message event of the client, in order.
fn received(world: &World, client: usize) -> Vec<(String, String)> {
    world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((m.id.clone(), m.text.clone().unwrap_or_default())),
            _ => None,
        })
        .collect()
}

fn failures(world: &World, client: usize) -> usize {
    failure_kinds(world, client).len()
}

/// The kind of every decryption failure the client reported, in order.
fn failure_kinds(world: &World, client: usize) -> Vec<DecryptFailureKind> {
    world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::DecryptFailed(f) => Some(f.kind.clone()),
            _ => None,
        })
        .collect()
}

/// Every refused retry the client reported.
fn refused_retries(world: &World, client: usize) -> Vec<RefusedRetry> {
    world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RetryRefused(refused) => Some(refused.clone()),
            _ => None,
        })
        .collect()
}

/// The texts a phone decrypted for message `id`, in order (one per delivery it could read).
fn phone_read(world: &World, phone: &str, id: &str) -> Vec<String> {
    world
        .server
        .phone_messages(phone)
        .unwrap()
        .iter()
        .filter(|m| m.id == id)
        .filter_map(|m| m.text.clone())
        .collect()
}

/// Bob's phone sends texts while the server holds them back; returns the stanzas meant for the
/// walink client (the other deliveries go on at once).
fn held_texts_from_bob(world: &mut World, client: usize, texts: &[&str]) -> Vec<Node> {
    let target = device_of(world, client);
    world.server.hold_deliveries(true);
    for text in texts {
        let now = world.now;
        world.server.phone_send_text(now, BOB, ALICE, text).unwrap();
    }
    let held = world.server.take_held();
    world.server.hold_deliveries(false);
    let mut mine = Vec::new();
    for Held {
        user,
        device,
        stanza,
    } in held
    {
        if (user.clone(), device) == target {
            mine.push(stanza);
        } else {
            world.server.deliver(&user, device, stanza);
        }
    }
    world.flush();
    mine
}

/// The server forges a retry receipt for message `id` in the name of `from`'s device, with its
/// keys when `with_keys`, and delivers it to the walink client (`to`).
fn forge_retry(
    world: &mut World,
    to: &(String, u16),
    from: (&str, u16),
    (id, group): (&str, Option<&Jid>),
    count: u32,
    with_keys: bool,
) {
    let now = world.now;
    world
        .server
        .forge_retry_receipt(
            now,
            &ForgedRetry {
                to: to.clone(),
                from: (from.0.to_owned(), from.1),
                id: id.to_owned(),
                group: group.cloned(),
                count,
                with_keys,
            },
        )
        .unwrap();
    world.flush();
}

fn encs(stanza: &Node) -> Vec<Node> {
    stanza.children_by_tag("enc").cloned().collect()
}

fn with_encs(stanza: &Node, encs: Vec<Node>) -> Node {
    let mut node = stanza.clone();
    node.content = Content::Nodes(encs);
    node
}

/// A retry receipt for one of Alice's messages to Bob, forged by the server in the name of
/// Eve's phone (not a recipient) with Eve's keys, asks the walink client to encrypt the message
/// for Eve. Eve gets nothing; Bob's copy is untouched.
#[test]
fn a_retry_receipt_forged_for_a_non_recipient_reveals_nothing() {
    let (mut world, client) = paired_world(31, config());
    let id = send(
        &mut world,
        client,
        &format!("{BOB}@s.whatsapp.net"),
        "secret",
    );
    world.run_for(2_000);
    assert_eq!(phone_read(&world, BOB, &id), ["secret"]);
    let alice = device_of(&world, client);
    for count in [1, 2, 2] {
        forge_retry(&mut world, &alice, (EVE, 0), (&id, None), count, true);
        world.run_for(3_000);
    }
    assert!(
        world.server.phone_messages(EVE).unwrap().is_empty(),
        "Eve's phone got {:?}",
        world.server.phone_messages(EVE)
    );
    assert_eq!(phone_read(&world, BOB, &id), ["secret"]);
    // Reported once (three refusals counted), and no session was started with Eve.
    let refused = refused_retries(&world, client);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].id, id);
    assert_eq!(refused[0].requester.user, EVE);
    assert_eq!(refused[0].reason, RetryRefusal::NotARecipient);
    assert_eq!(refused[0].refused_total, 1);
    assert!(
        !world.clients[client]
            .store
            .keys()
            .any(|(space, key)| space == Space::Session.as_str() && key.starts_with(EVE)),
        "no session with Eve"
    );
}

/// In a group of Alice and Bob, the server forges a retry receipt from Eve's phone (not a
/// member) for Alice's group message and hands any resend to Eve. Eve never gets the message
/// nor Alice's sender key: the next group message, copied to her by the server, stays unreadable.
#[test]
fn a_group_retry_from_outside_the_group_never_hands_out_the_sender_key() {
    let (mut world, client) = paired_world(32, config());
    let now = world.now;
    let group = world
        .server
        .create_group(now, ALICE, "team", &[BOB])
        .unwrap();
    let first = send(&mut world, client, &group.to_string(), "group secret");
    world.run_for(2_000);
    assert_eq!(phone_read(&world, BOB, &first), ["group secret"]);
    world.server.set_hostility(Hostility {
        deliver_resends_to_anyone: true,
    });
    let alice = device_of(&world, client);
    forge_retry(
        &mut world,
        &alice,
        (EVE, 0),
        (&first, Some(&group)),
        2,
        true,
    );
    world.run_for(3_000);
    assert!(phone_read(&world, EVE, &first).is_empty());
    let refused = refused_retries(&world, client);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].reason, RetryRefusal::NotARecipient);
    // A member's retry is still answered, with the message and the key it used.
    forge_retry(
        &mut world,
        &alice,
        (BOB, 0),
        (&first, Some(&group)),
        2,
        true,
    );
    world.run_for(3_000);
    assert_eq!(
        phone_read(&world, BOB, &first),
        ["group secret", "group secret"]
    );
    // The next group message: the server copies what it delivers to Bob's phone to Eve's too.
    world.server.hold_deliveries(true);
    let second = send(&mut world, client, &group.to_string(), "next group secret");
    let held = world.server.take_held();
    world.server.hold_deliveries(false);
    for Held {
        user,
        device,
        stanza,
    } in held
    {
        if user == BOB && device == 0 {
            let skmsg: Vec<Node> = encs(&stanza)
                .into_iter()
                .filter(|enc| enc.attr_str("type") == Some("skmsg"))
                .collect();
            world.server.deliver(EVE, 0, with_encs(&stanza, skmsg));
        }
        world.server.deliver(&user, device, stanza);
    }
    world.flush();
    world.run_for(2_000);
    assert_eq!(phone_read(&world, BOB, &second), ["next group secret"]);
    assert!(
        phone_read(&world, EVE, &second).is_empty(),
        "Eve read the group: {:?}",
        world.server.phone_messages(EVE)
    );
}

/// The server replays retry receipts from Bob's phone (a real recipient) far past the count:
/// the walink client answers at most `MESSAGING_MAX_RETRIES` of them.
#[test]
fn retry_receipts_past_the_count_are_not_answered() {
    let (mut world, client) = paired_world(33, config());
    let id = send(&mut world, client, &format!("{BOB}@s.whatsapp.net"), "once");
    world.run_for(2_000);
    let alice = device_of(&world, client);
    for count in 1..=12 {
        forge_retry(
            &mut world,
            &alice,
            (BOB, 0),
            (&id, None),
            count.min(5),
            true,
        );
        world.run_for(1_000);
    }
    let max = walink_core::limits::MESSAGING_MAX_RETRIES as usize;
    assert_eq!(phone_read(&world, BOB, &id).len(), 1 + max);
    let refused = refused_retries(&world, client);
    assert_eq!(refused.len(), 1, "reported once: {refused:?}");
    assert_eq!(refused[0].reason, RetryRefusal::TooManyRetries);
    // A claimed count beyond the protocol's is refused too (counted, not reported again).
    forge_retry(&mut world, &alice, (BOB, 0), (&id, None), 50, false);
    world.run_for(1_000);
    assert_eq!(phone_read(&world, BOB, &id).len(), 1 + max);
    assert_eq!(refused_retries(&world, client).len(), 1);
}

/// The server stitches the `<enc>` of Bob's second message into the stanza of his first, then
/// delivers the second as well. Both messages reach the client exactly once, under their own
/// ids: the stitched stanza changes nothing and is asked for again.
#[test]
fn a_stanza_stitched_from_two_messages_loses_neither() {
    let (mut world, client) = paired_world(34, config());
    let warm = held_texts_from_bob(&mut world, client, &["warm up"]);
    world
        .server
        .deliver(ALICE, device_of(&world, client).1, warm[0].clone());
    world.flush();
    assert!(world.run_until(world.now + 5_000, |w| received(w, client).len() == 1));
    let held = held_texts_from_bob(&mut world, client, &["one", "two"]);
    let (first, second) = (&held[0], &held[1]);
    let mut stitched = encs(first);
    stitched.extend(encs(second));
    let device = device_of(&world, client).1;
    world
        .server
        .deliver(ALICE, device, with_encs(first, stitched));
    world.flush();
    world.run_for(5_000);
    world.server.deliver(ALICE, device, second.clone());
    world.flush();
    world.run_for(5_000);
    let ids = [
        first.attr_str("id").unwrap().to_owned(),
        second.attr_str("id").unwrap().to_owned(),
    ];
    let got = received(&world, client);
    assert_eq!(
        got[1..],
        [
            (ids[0].clone(), "one".to_owned()),
            (ids[1].clone(), "two".to_owned())
        ],
        "{got:?}"
    );
    assert_eq!(
        failure_kinds(&world, client),
        [DecryptFailureKind::SeveralMessages]
    );
}

/// One `<enc>` repeated in a stanza (twice, and a thousand times): the stanza is refused as a
/// whole before any key is used twice, the client asks for it again, and the message arrives
/// exactly once.
#[test]
fn a_stanza_repeating_one_enc_is_refused_and_the_message_still_arrives_once() {
    for copies in [2, 1_000] {
        let (mut world, client) = paired_world(35, config());
        let held = held_texts_from_bob(&mut world, client, &["repeated"]);
        let stanza = &held[0];
        let enc = encs(stanza).remove(0);
        let device = device_of(&world, client).1;
        world
            .server
            .deliver(ALICE, device, with_encs(stanza, vec![enc; copies]));
        world.flush();
        world.run_for(5_000);
        let id = stanza.attr_str("id").unwrap().to_owned();
        assert_eq!(
            received(&world, client),
            [(id, "repeated".to_owned())],
            "{copies} copies"
        );
        assert_eq!(failures(&world, client), 1, "{copies} copies: reported");
        let expected = if copies > walink_core::limits::MESSAGING_MAX_ENCS_PER_STANZA {
            DecryptFailureKind::TooManyEncs {
                count: copies as u32,
            }
        } else {
            DecryptFailureKind::ReplayedEnc
        };
        assert_eq!(failure_kinds(&world, client), [expected]);
    }
}

/// `<stream:error><conflict type="…"/></stream:error>` of a type other than `replaced` or
/// `device_removed` does not delete the device: it stays paired and logs in again.
#[test]
fn a_conflict_of_another_type_does_not_wipe_the_device() {
    let (mut world, client) = paired_world(36, config());
    send(
        &mut world,
        client,
        &format!("{BOB}@s.whatsapp.net"),
        "before",
    );
    let jid = world.clients[client].client.jid().cloned();
    let (user, device) = device_of(&world, client);
    let conn = world.server.device_conn(&user, device).unwrap();
    world
        .server
        .send_stream_error(conn, StreamErrorKind::Conflict("session"))
        .unwrap();
    world.flush();
    world.run_for(5_000);
    let store = &world.clients[client].store;
    assert!(
        store
            .keys()
            .any(|(space, _)| space == Space::Device.as_str()),
        "the device record is kept"
    );
    assert!(
        store
            .keys()
            .any(|(space, _)| space == Space::Session.as_str()),
        "the sessions are kept"
    );
    assert_eq!(world.client_state(client), Some(&State::Replaced));
    world.command(client, Command::Connect);
    assert!(
        world.run_until(world.now + 60_000, |w| w.client_state(client)
            == Some(&State::Connected))
    );
    assert_eq!(world.clients[client].client.jid().cloned(), jid);
    send(
        &mut world,
        client,
        &format!("{BOB}@s.whatsapp.net"),
        "after",
    );
}

/// The server delivers the copy of a message Alice's phone sent to Bob with `recipient` set to
/// Carol: the client files it under the chat the encrypted content names (Bob).
#[test]
fn an_own_device_copy_is_filed_under_the_encrypted_destination() {
    let (mut world, client) = paired_world(37, config());
    let target = device_of(&world, client);
    world.server.hold_deliveries(true);
    let now = world.now;
    world
        .server
        .phone_send_text(now, ALICE, BOB, "to bob")
        .unwrap();
    let held = world.server.take_held();
    world.server.hold_deliveries(false);
    for Held {
        user,
        device,
        mut stanza,
    } in held
    {
        if (user.clone(), device) == target {
            stanza.set_attr("recipient", Jid::new(CAROL, "s.whatsapp.net"));
        }
        world.server.deliver(&user, device, stanza);
    }
    world.flush();
    assert!(world.run_until(world.now + 5_000, |w| !received(w, client).is_empty()));
    let chats: Vec<String> = world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.chat.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(chats, [format!("{BOB}@s.whatsapp.net")]);
}

/// A stranger (Eve's phone, no session with the client) sends hundreds of undecryptable
/// messages: each is reported and answered with a retry receipt, but the one-time prekeys the
/// receipts hand out stay bounded.
#[test]
fn a_strangers_undecryptable_messages_do_not_pile_up_prekeys() {
    let (mut world, client) = paired_world(38, config());
    let prekeys = |w: &World| {
        w.clients[client]
            .store
            .keys()
            .filter(|(space, _)| space == Space::PreKey.as_str())
            .count()
    };
    let before = prekeys(&world);
    let device = device_of(&world, client).1;
    let messages = 300;
    for i in 0..messages {
        let stanza = Node::new("message")
            .attr("from", Jid::device(EVE, 0, "s.whatsapp.net"))
            .attr("id", format!("3EB0{i:018X}"))
            .attr("type", "text")
            .attr("t", (world.now / 1000).to_string())
            .children_from([Node::new("enc")
                .attr("v", "2")
                .attr("type", "msg")
                .bytes(vec![0x33; 40])]);
        world.server.deliver(ALICE, device, stanza);
        world.flush();
        world.run_for(50);
    }
    world.run_for(5_000);
    assert_eq!(failures(&world, client), messages);
    let grown = prekeys(&world) - before;
    assert!(
        grown <= 64,
        "{grown} prekeys created for a stranger's {messages} messages"
    );
}

/// The identity change events of the client, in order.
fn identity_changes(world: &World, client: usize) -> Vec<walink_core::client::IdentityChange> {
    world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::IdentityChanged(change) => Some(change.clone()),
            _ => None,
        })
        .collect()
}

/// Runs `command` at the client and returns its result.
fn run_command(
    world: &mut World,
    client: usize,
    command: Command,
) -> Result<CommandOutput, CommandError> {
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
    assert!(world.run_until(world.now + 10_000, |w| done(w).is_some()));
    done(world).unwrap()
}

fn bob_says(world: &mut World, text: &str) -> String {
    let now = world.now;
    let id = world.server.phone_send_text(now, BOB, ALICE, text).unwrap();
    world.flush();
    id
}

/// Bob reinstalls his phone (a new identity key) and messages Alice. WhatsApp's behaviour, the
/// default: the message arrives, reported after `Event::IdentityChanged` with the old and new
/// public keys; `GetIdentity` reads the new key.
#[test]
fn a_contact_that_reinstalls_is_reported_as_an_identity_change() {
    let (mut world, client) = paired_world(39, config());
    bob_says(&mut world, "before");
    assert!(world.run_until(world.now + 5_000, |w| received(w, client).len() == 1));
    let old = world.server.account(BOB).unwrap().devices[&0].identity_public;
    let new = world.server.reinstall_phone(BOB).unwrap();
    bob_says(&mut world, "after");
    assert!(world.run_until(world.now + 5_000, |w| received(w, client).len() == 2));
    let changes = identity_changes(&world, client);
    assert_eq!(changes.len(), 1, "{changes:?}");
    let change = &changes[0];
    assert_eq!((change.identity, change.previous), (new, old));
    assert!(change.accepted);
    assert_eq!(change.address.device, 0);
    let events = &world.clients[client].events;
    let reported = events
        .iter()
        .position(|e| matches!(e, Event::IdentityChanged(_)))
        .unwrap();
    let delivered = events
        .iter()
        .position(|e| matches!(e, Event::Message(m) if m.text.as_deref() == Some("after")))
        .unwrap();
    assert!(
        reported < delivered,
        "the change is reported before the message"
    );
    let address = change.address.to_string();
    match run_command(&mut world, client, Command::GetIdentity { address }) {
        Ok(CommandOutput::Identity(info)) => {
            assert_eq!(info.identity, Some(new));
            assert_eq!(info.pending, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(failures(&world, client), 0);
}

/// Under `IdentityPolicy::Strict` the same change is refused: a forged copy (bad MAC) is not
/// even taken for a change, the genuine message is held and reported, a send to Bob fails
/// naming his device, and all of it survives a host crash; once the application approves the
/// new key, the held message arrives exactly once and sending works again.
#[test]
fn under_the_strict_policy_a_changed_identity_waits_for_approval() {
    let strict = Config {
        identity_policy: IdentityPolicy::Strict,
        ..config()
    };
    let (mut world, client) = paired_world(40, strict);
    bob_says(&mut world, "before");
    assert!(world.run_until(world.now + 5_000, |w| received(w, client).len() == 1));
    let old = world.server.account(BOB).unwrap().devices[&0].identity_public;
    let new = world.server.reinstall_phone(BOB).unwrap();
    let held = held_texts_from_bob(&mut world, client, &["held"]);
    let device = device_of(&world, client).1;
    // A copy with a broken MAC first: a failure to decrypt, not an identity change.
    let mut forged = held[0].clone();
    if let Content::Nodes(children) = &mut forged.content
        && let Some(Content::Bytes(bytes)) = children.first_mut().map(|enc| &mut enc.content)
        && let Some(last) = bytes.last_mut()
    {
        *last ^= 1;
    }
    world.server.deliver(ALICE, device, forged);
    world.flush();
    world.run_for(3_000);
    world.server.deliver(ALICE, device, held[0].clone());
    world.flush();
    world.run_for(3_000);
    let changes = identity_changes(&world, client);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!((changes[0].identity, changes[0].previous), (new, old));
    assert!(!changes[0].accepted);
    let kinds = failure_kinds(&world, client);
    assert_eq!(kinds.first(), Some(&DecryptFailureKind::Undecryptable));
    assert!(
        kinds.contains(&DecryptFailureKind::UntrustedIdentity),
        "{kinds:?}"
    );
    assert_eq!(
        received(&world, client).len(),
        1,
        "nothing from the new key"
    );

    let before = world.server.phone_messages(BOB).unwrap().len();
    let sent = run_command(
        &mut world,
        client,
        Command::SendText {
            to: format!("{BOB}@s.whatsapp.net"),
            text: "not yet".to_owned(),
        },
    );
    match sent {
        Err(CommandError::UntrustedIdentity { address }) => {
            let device: Jid = address.parse().unwrap();
            assert_eq!(device.device, 0, "{address}");
        }
        other => panic!("{other:?}"),
    }
    world.run_for(2_000);
    assert_eq!(world.server.phone_messages(BOB).unwrap().len(), before);

    world.crash(client);
    assert!(
        world.run_until(world.now + 30_000, |w| w.client_state(client)
            == Some(&State::Connected))
    );
    let address = changes[0].address.to_string();
    match run_command(
        &mut world,
        client,
        Command::GetIdentity {
            address: address.clone(),
        },
    ) {
        Ok(CommandOutput::Identity(info)) => {
            assert_eq!((info.identity, info.pending), (Some(old), Some(new)));
        }
        other => panic!("{other:?}"),
    }
    // Approving another key changes nothing.
    let wrong = run_command(
        &mut world,
        client,
        Command::ApproveIdentity {
            address: address.clone(),
            identity: old.to_vec(),
        },
    );
    assert_eq!(wrong, Err(CommandError::InvalidState));
    let approved = run_command(
        &mut world,
        client,
        Command::ApproveIdentity {
            address,
            identity: new.to_vec(),
        },
    );
    assert_eq!(approved, Ok(CommandOutput::None));
    world.run_for(3_000);
    let texts: Vec<String> = received(&world, client)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(texts, ["before", "held"]);
    let id = send(
        &mut world,
        client,
        &format!("{BOB}@s.whatsapp.net"),
        "approved",
    );
    world.run_for(2_000);
    assert_eq!(phone_read(&world, BOB, &id), ["approved"]);
}
