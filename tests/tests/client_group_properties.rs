//! A property of group messaging under membership churn: random sequences of group changes
//! (adds, removes, promotions, companions linked and unlinked) interleaved with messages a
//! walink client sends to the group. Every device of a current member reads every message
//! once; no device of a removed member, and no unlinked companion, reads a message sent after
//! its removal, although walink-sim's server keeps handing them the ciphertext (a fault).
//! Bounded: eight seeds of 24 steps each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hostile_support;

use std::collections::BTreeMap;

use hostile_support::*;
use walink_sim::sim::{Faults, World};

/// Seeds tried, and steps per seed.
const SEEDS: u64 = 8;
const STEPS: usize = 24;

/// A tiny deterministic generator (xorshift), independent of the world's.
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Who reads what: the phone and the simulated companions of an account.
#[derive(Default)]
struct Member {
    in_group: bool,
    companions: Vec<u16>,
    /// Messages that must never be readable by this account's devices (sent while out).
    forbidden: Vec<String>,
    /// Companions unlinked, with the messages sent after their unlink.
    unlinked: Vec<(u16, Vec<String>)>,
    /// Messages each current device must read, per device (0: the phone).
    expected: BTreeMap<u16, Vec<String>>,
}

#[test]
fn members_read_everything_and_removed_devices_nothing_after_their_removal() {
    let (mut sent, mut removals, mut unlinks) = (0, 0, 0);
    for seed in 1..=SEEDS {
        let (s, r, u) = run(seed);
        sent += s;
        removals += r;
        unlinks += u;
    }
    // The sequences did exercise what the property is about.
    assert!(
        sent >= 20 && removals >= 4 && unlinks >= 2,
        "{sent} {removals} {unlinks}"
    );
}

fn run(seed: u64) -> (usize, usize, usize) {
    let mut world = World::new(seed, T0, Faults::none());
    let others = [BOB, CAROL, DAVE];
    for (user, name) in [
        (ALICE, "Alice"),
        (BOB, "Bob"),
        (CAROL, "Carol"),
        (DAVE, "Dave"),
    ] {
        world.server.create_account(user, name).unwrap();
    }
    let alice = link(&mut world, ALICE);
    let now = world.now;
    let group = world
        .server
        .create_group(now, ALICE, "churn", &[BOB, CAROL])
        .unwrap();
    world.server.leak_group_messages_to_past_members(true);
    let mut members: BTreeMap<&str, Member> = BTreeMap::new();
    for user in others {
        let m = members.entry(user).or_default();
        m.in_group = user != DAVE;
        m.expected.insert(0, Vec::new());
    }
    world.flush();
    let mut pick = Pick(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (mut sent, mut removals, mut unlinks) = (0, 0, 0);
    for _ in 0..STEPS {
        let user = others[pick.below(others.len())];
        let now = world.now;
        match pick.below(5) {
            0 => {
                let action = if members[user].in_group {
                    "remove"
                } else {
                    "add"
                };
                let results = world
                    .server
                    .group_change_participants(now, &group.user, ALICE, action, &[user])
                    .unwrap();
                assert_eq!(results[0].error, None, "{action} {user}");
                let m = members.get_mut(user).unwrap();
                m.in_group = !m.in_group;
                removals += usize::from(action == "remove");
            }
            1 if members[user].in_group => {
                let action = ["promote", "demote"][pick.below(2)];
                world
                    .server
                    .group_change_participants(now, &group.user, ALICE, action, &[user])
                    .unwrap();
            }
            2 if members[user].companions.len() < 2 => {
                let device = world.server.link_sim_companion(now, user).unwrap();
                let m = members.get_mut(user).unwrap();
                m.companions.push(device);
                m.expected.insert(device, Vec::new());
            }
            3 if !members[user].companions.is_empty() => {
                let m = members.get_mut(user).unwrap();
                let device = m.companions.remove(0);
                m.expected.remove(&device);
                m.unlinked.push((device, Vec::new()));
                world.server.remove_device(user, device).unwrap();
                unlinks += 1;
            }
            _ => {
                sent += 1;
                let text = format!("seed {seed} message {sent}");
                send_ok(&mut world, alice, &group.to_string(), &text);
                for m in members.values_mut() {
                    if m.in_group {
                        for expected in m.expected.values_mut() {
                            expected.push(text.clone());
                        }
                    } else {
                        m.forbidden.push(text.clone());
                    }
                    for (_, after) in &mut m.unlinked {
                        after.push(text.clone());
                    }
                }
            }
        }
        world.flush();
    }
    for (user, m) in &members {
        for (&device, expected) in &m.expected {
            let read = if device == 0 {
                phone_texts(&world, user)
            } else {
                companion_texts(&world, user, device)
            };
            for text in expected {
                let count = read.iter().filter(|t| *t == text).count();
                assert_eq!(count, 1, "seed {seed}: {user}:{device} reads {text:?} once");
            }
            for text in &m.forbidden {
                assert!(
                    !read.contains(text),
                    "seed {seed}: {user}:{device} read {text:?} sent while out of the group"
                );
            }
        }
        for (device, after) in &m.unlinked {
            let read = companion_texts(&world, user, *device);
            for text in after {
                assert!(
                    !read.contains(text),
                    "seed {seed}: unlinked {user}:{device} read {text:?}"
                );
            }
        }
    }
    assert!(world.server.key_reuses().is_empty());
    (sent, removals, unlinks)
}
