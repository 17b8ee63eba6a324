//! Our group sender key against departed members and devices: walink-sim removes a participant
//! from a group (and tells the members with a `w:gp2` notification), or a member's phone
//! unlinks a companion, and the server keeps delivering the group's messages to them (a
//! fault). A walink client's next group message is sent with a new sender-key chain,
//! distributed to the current member devices only: the departed ones cannot read it, the
//! current ones read every message, and host crashes around the rotation lose nothing
//! (docs/messaging.md, "Sender-key rotation").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hostile_support;

use std::collections::BTreeMap;

use hostile_support::*;
use walink_core::client::{Command, Event, State};
use walink_sim::sim::{Faults, SimRng, World};

/// Alice's walink client, Bob's phone, walink client and a companion the simulation plays,
/// Carol's phone, walink client and simulated companion; a group of the three accounts, and
/// a server that keeps delivering group messages to whoever left.
struct Scene {
    world: World,
    alice: usize,
    bob: usize,
    bob_companion: u16,
    carol: usize,
    carol_companion: u16,
    group: String,
    group_id: String,
}

fn scene(seed: u64) -> Scene {
    let mut world = World::new(seed, T0, Faults::none());
    for (user, name) in [(ALICE, "Alice"), (BOB, "Bob"), (CAROL, "Carol")] {
        world.server.create_account(user, name).unwrap();
    }
    let alice = link(&mut world, ALICE);
    let bob = link(&mut world, BOB);
    let carol = link(&mut world, CAROL);
    let now = world.now;
    let bob_companion = world.server.link_sim_companion(now, BOB).unwrap();
    let carol_companion = world.server.link_sim_companion(now, CAROL).unwrap();
    let jid = world
        .server
        .create_group(now, ALICE, "rotation", &[BOB, CAROL])
        .unwrap();
    world.server.leak_group_messages_to_past_members(true);
    world.flush();
    Scene {
        world,
        alice,
        bob,
        bob_companion,
        carol,
        carol_companion,
        group: jid.to_string(),
        group_id: jid.user,
    }
}

impl Scene {
    fn send(&mut self, text: &str) {
        let group = self.group.clone();
        send_ok(&mut self.world, self.alice, &group, text);
    }

    /// Every device of Bob and Carol, and Alice's phone, read `text` once (`carol` says whether
    /// Carol's are expected to).
    fn read_by_members(&self, text: &str, carol: bool) {
        let count = |texts: Vec<String>| texts.iter().filter(|t| *t == text).count();
        let world = &self.world;
        let mut readers = vec![
            ("Alice's phone", count(phone_texts(world, ALICE))),
            ("Bob's phone", count(phone_texts(world, BOB))),
            ("Bob's walink client", count(client_texts(world, self.bob))),
            (
                "Bob's companion",
                count(companion_texts(world, BOB, self.bob_companion)),
            ),
        ];
        let carols = [
            ("Carol's phone", count(phone_texts(world, CAROL))),
            (
                "Carol's walink client",
                count(client_texts(world, self.carol)),
            ),
            (
                "Carol's companion",
                count(companion_texts(world, CAROL, self.carol_companion)),
            ),
        ];
        if carol {
            readers.extend(carols);
        } else {
            for (who, read) in carols {
                assert_eq!(read, 0, "{who} read {text:?} after leaving");
            }
        }
        for (who, read) in readers {
            assert_eq!(read, 1, "{who} reads {text:?} once");
        }
    }
}

/// Carol is removed from the group; the server keeps handing her devices the group's
/// messages. Alice's next message uses a new chain that Carol's phone, walink client and
/// companion never get: they cannot read it (her walink client's retry request is not
/// answered either), while Bob's devices and Alice's phone read every message.
#[test]
fn a_removed_member_cannot_read_the_next_group_message() {
    let mut scene = scene(61);
    scene.send("before the removal");
    scene.read_by_members("before the removal", true);
    let now = scene.world.now;
    let group_id = scene.group_id.clone();
    scene
        .world
        .server
        .remove_group_member(now, &group_id, ALICE, CAROL)
        .unwrap();
    scene.world.flush();
    scene.send("after the removal");
    scene.send("later still");
    scene.read_by_members("after the removal", false);
    scene.read_by_members("later still", false);
    let leaked = scene
        .world
        .server
        .phone_messages(CAROL)
        .unwrap()
        .iter()
        .filter(|m| m.chat == scene.group && m.error.is_some())
        .count();
    assert!(leaked >= 2, "Carol's phone did get the ciphertexts");
    assert!(scene.world.server.key_reuses().is_empty());
}

/// Bob's phone unlinks the companion the simulation plays; the server keeps handing it the
/// group's messages. Alice's next message uses a new chain: the unlinked companion cannot read
/// it, every remaining device reads it.
#[test]
fn a_removed_device_cannot_read_the_next_group_message() {
    let mut scene = scene(67);
    scene.send("before the unlink");
    scene.read_by_members("before the unlink", true);
    scene
        .world
        .server
        .remove_device(BOB, scene.bob_companion)
        .unwrap();
    scene.world.flush();
    scene.send("after the unlink");
    let world = &scene.world;
    assert_eq!(
        companion_texts(world, BOB, scene.bob_companion),
        ["before the unlink"],
        "the unlinked companion reads nothing after the unlink"
    );
    assert!(
        companion_received(world, BOB, scene.bob_companion) >= 2,
        "the server did hand it the ciphertext"
    );
    let count = |texts: Vec<String>| texts.iter().filter(|t| *t == "after the unlink").count();
    for (who, read) in [
        ("Alice's phone", count(phone_texts(world, ALICE))),
        ("Bob's phone", count(phone_texts(world, BOB))),
        ("Bob's walink client", count(client_texts(world, scene.bob))),
        ("Carol's phone", count(phone_texts(world, CAROL))),
        (
            "Carol's walink client",
            count(client_texts(world, scene.carol)),
        ),
        (
            "Carol's companion",
            count(companion_texts(world, CAROL, scene.carol_companion)),
        ),
    ] {
        assert_eq!(read, 1, "{who}");
    }
}

/// Runs until `client` is connected again and the network is quiet.
fn settle(world: &mut World, client: usize) {
    assert!(
        world.run_until(world.now + 60_000, |w| w.client_state(client)
            == Some(&State::Connected)),
        "client {client} reconnects"
    );
    world.run_for(10_000);
}

/// The sending host crashes at every point of the first message after Carol's removal (the
/// device lists loaded, the rotation decided, the new chain and its distribution persisted,
/// the stanza transmitted or not, its ack): whatever point, the message arrives at most once
/// (exactly once when its stanza was persisted), the next message is read by every current
/// member device, and nothing sent after the removal is readable by Carol's devices.
#[test]
fn a_rotation_loses_nothing_whatever_the_point_the_host_crashes() {
    let mut points = 0;
    let mut persisted = 0;
    for n in 0.. {
        let mut scene = scene(71);
        scene.send("before the removal");
        let now = scene.world.now;
        let group_id = scene.group_id.clone();
        scene
            .world
            .server
            .remove_group_member(now, &group_id, ALICE, CAROL)
            .unwrap();
        scene.world.flush();
        let alice = scene.alice;
        scene.world.crash_after_outputs(alice, n);
        let group = scene.group.clone();
        scene.world.command(
            alice,
            Command::SendText {
                to: group,
                text: "crash walk".to_owned(),
            },
        );
        scene.world.run_for(5_000);
        let crashed = !scene.world.crash_pending();
        scene.world.cancel_crash();
        let kept = scene.world.clients[alice]
            .store_at_last_crash
            .keys()
            .any(|(space, _)| space == "outbox");
        settle(&mut scene.world, alice);
        scene.send("after the crash");
        scene.read_by_members("after the crash", false);
        let world = &scene.world;
        let copies = phone_texts(world, BOB)
            .iter()
            .filter(|t| *t == "crash walk")
            .count();
        assert!(copies <= 1, "crash after {n}: {copies} copies");
        if !crashed || kept {
            scene.read_by_members("crash walk", false);
        }
        assert!(
            !phone_texts(world, CAROL).contains(&"crash walk".to_owned()),
            "crash after {n}: Carol's phone"
        );
        assert!(
            !client_texts(world, scene.carol).contains(&"crash walk".to_owned()),
            "crash after {n}: Carol's walink client"
        );
        let failed = world.clients[scene.bob]
            .events
            .iter()
            .filter(|e| matches!(e, Event::DecryptFailed(_)))
            .count();
        assert_eq!(failed, 0, "crash after {n}: Bob's walink client");
        assert!(world.server.key_reuses().is_empty(), "crash after {n}");
        if !crashed {
            break;
        }
        points += 1;
        persisted += usize::from(kept);
    }
    assert!(points >= 6 && persisted >= 1, "{points} / {persisted}");
    println!("{points} crash points, {persisted} with the stanza persisted");
}

/// One device the group's messages may reach: a phone, a walink client or a companion the
/// simulation plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reader {
    Phone(usize),
    Client(usize),
    Companion(usize, u16),
}

/// Random adds and removes of members, links and unlinks of their companions, interleaved
/// with Alice's group messages, over several seeds (`WALINK_SIM_SEEDS` for more): every device
/// that is a member device when a message is sent reads it exactly once, and no device that
/// had left (its account removed from the group, or the device unlinked) reads a message sent
/// after it left, though the server keeps handing them every message.
#[test]
fn random_membership_changes_never_let_a_departed_device_read() {
    let seeds: u64 = std::env::var("WALINK_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for seed in 0..seeds {
        let seed = 0x5eed_0000_0000_0100 + seed;
        println!("sim seed: {seed:#x}");
        membership_run(seed);
    }
}

fn membership_run(seed: u64) {
    let users = [ALICE, BOB, CAROL, DAVE];
    let mut world = World::new(seed, T0, Faults::none());
    for (user, name) in users.iter().zip(["Alice", "Bob", "Carol", "Dave"]) {
        world.server.create_account(user, name).unwrap();
    }
    let alice = link(&mut world, ALICE);
    let bob = link(&mut world, BOB);
    let now = world.now;
    let jid = world
        .server
        .create_group(now, ALICE, "property", &[BOB, CAROL])
        .unwrap();
    let (group, group_id) = (jid.to_string(), jid.user);
    world.server.leak_group_messages_to_past_members(true);
    world.flush();
    let clients: BTreeMap<usize, usize> = [(0, alice), (1, bob)].into_iter().collect();
    let mut companions: Vec<(usize, u16, bool)> = Vec::new();
    let mut members = [true, true, true, false];
    let mut rng = SimRng::from_u64(seed);
    // For each message: the readers that were member devices when it was sent.
    let mut sent: Vec<(String, Vec<Reader>)> = Vec::new();
    for step in 0..24 {
        let now = world.now;
        match rng.below(6) {
            0..=2 => {
                let text = format!("message {step}");
                let mut readers = Vec::new();
                for account in (0..users.len()).filter(|&account| members[account]) {
                    readers.push(Reader::Phone(account));
                    if let Some(&client) = clients.get(&account)
                        && client != alice
                    {
                        readers.push(Reader::Client(client));
                    }
                }
                for &(account, device, linked) in &companions {
                    if linked && members[account] {
                        readers.push(Reader::Companion(account, device));
                    }
                }
                send_ok(&mut world, alice, &group, &text);
                sent.push((text, readers));
            }
            3 => {
                // Add or remove a member other than Alice.
                let account = 1 + rng.below(3) as usize;
                if members[account] {
                    world
                        .server
                        .remove_group_member(now, &group_id, ALICE, users[account])
                        .unwrap();
                } else {
                    world
                        .server
                        .add_group_member(now, &group_id, ALICE, users[account])
                        .unwrap();
                }
                members[account] = !members[account];
            }
            4 => {
                let account = 1 + rng.below(3) as usize;
                let device = world
                    .server
                    .link_sim_companion(now, users[account])
                    .unwrap();
                companions.push((account, device, true));
            }
            _ => {
                let linked: Vec<usize> =
                    (0..companions.len()).filter(|&i| companions[i].2).collect();
                if let Some(&at) = linked.get(rng.below(linked.len().max(1) as u64) as usize) {
                    let (account, device, _) = companions[at];
                    world.server.remove_device(users[account], device).unwrap();
                    companions[at].2 = false;
                }
            }
        }
        world.flush();
        world.run_for(500);
    }
    world.run_for(5_000);
    let texts_of = |reader: Reader| -> Vec<String> {
        match reader {
            Reader::Phone(account) => phone_texts(&world, users[account]),
            Reader::Client(client) => client_texts(&world, client),
            Reader::Companion(account, device) => companion_texts(&world, users[account], device),
        }
    };
    let mut everyone: Vec<Reader> = (0..users.len()).map(Reader::Phone).collect();
    everyone.push(Reader::Client(bob));
    everyone.extend(
        companions
            .iter()
            .map(|&(account, device, _)| Reader::Companion(account, device)),
    );
    for reader in everyone {
        let read = texts_of(reader);
        for (text, readers) in &sent {
            let times = read.iter().filter(|t| *t == text).count();
            let expected = usize::from(readers.contains(&reader));
            assert_eq!(
                times, expected,
                "seed {seed:#x}: {reader:?} read {text:?} {times} times"
            );
        }
    }
    assert!(world.server.key_reuses().is_empty(), "seed {seed:#x}");
    println!(
        "seed {seed:#x}: {} messages, {} companions",
        sent.len(),
        companions.len()
    );
}
