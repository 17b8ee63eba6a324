//! Device lists against a hostile server: walink-sim's server lists a device the contact's
//! phone never linked, serves a key-index list the phone did not sign as it is, or replays an
//! older one. A walink client encrypts only for the devices the phone's signed list vouches
//! for: the injected device gets nothing it can read, no session is built with it, and the
//! contact's real devices keep getting every message (docs/messaging.md, "Device lists").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hostile_support;

use hostile_support::*;
use serde_json::json;
use walink_core::client::messaging::device_list::{ListRefused, verify_key_index_list};
use walink_sim::oracle::Oracle;
use walink_sim::sim::{Faults, KeyIndexListFault, World};

/// Alice with a walink client, Bob with his phone and a walink client, and a group of both.
struct Scene {
    world: World,
    alice: usize,
    bob: usize,
    group: String,
}

fn scene(seed: u64) -> Scene {
    let mut world = World::new(seed, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    world.server.create_account(CAROL, "Carol").unwrap();
    let alice = link(&mut world, ALICE);
    let bob = link(&mut world, BOB);
    let now = world.now;
    let group = world
        .server
        .create_group(now, ALICE, "device lists", &[BOB])
        .unwrap()
        .to_string();
    Scene {
        world,
        alice,
        bob,
        group,
    }
}

fn bob() -> String {
    format!("{BOB}@s.whatsapp.net")
}

/// Alice sends one 1:1 and one group message; Bob's phone and walink client read both.
fn exchange(scene: &mut Scene, tag: &str) {
    let direct = format!("{tag} direct");
    let grouped = format!("{tag} group");
    send_ok(&mut scene.world, scene.alice, &bob(), &direct);
    let group = scene.group.clone();
    send_ok(&mut scene.world, scene.alice, &group, &grouped);
    for text in [&direct, &grouped] {
        assert!(
            client_texts(&scene.world, scene.bob).contains(text),
            "Bob's walink client reads {text:?}"
        );
        assert!(
            phone_texts(&scene.world, BOB).contains(text),
            "Bob's phone reads {text:?}"
        );
    }
}

/// Nothing Alice sent reached `device` of `user` in a form it could read, and Alice holds no
/// session with it.
fn never_reached(scene: &Scene, user: &str, device: u16) {
    let read = companion_texts(&scene.world, user, device);
    assert!(read.is_empty(), "the injected device read {read:?}");
    assert!(
        !has_session_with(&scene.world, scene.alice, user, device),
        "no session with the injected device"
    );
}

/// The server adds a device to Bob's list that Bob's phone never linked (its key index is in
/// no list the phone signed): Alice's 1:1 and group messages still reach Bob's phone and
/// walink client, and never the injected device (the group's `skmsg` reaches it through the
/// server's routing, without the sender key it would need). The same holds for a contact Alice
/// never wrote to, whose primary identity she learns from its bundle before checking its list.
#[test]
fn a_device_the_server_injects_never_receives_our_messages() {
    let mut scene = scene(41);
    exchange(&mut scene, "before");
    let spy = scene.world.server.inject_device(BOB, None).unwrap();
    scene.world.flush();
    exchange(&mut scene, "after");
    never_reached(&scene, BOB, spy);
    assert!(
        companion_received(&scene.world, BOB, spy) >= 1,
        "the server did route the group message to the injected device"
    );

    // Carol: her phone linked a companion (so her list has an entry), and the server injects
    // another before Alice ever writes to her.
    let now = scene.world.now;
    let carol_companion = scene.world.server.link_sim_companion(now, CAROL).unwrap();
    let carol_spy = scene.world.server.inject_device(CAROL, None).unwrap();
    scene.world.flush();
    let carol = format!("{CAROL}@s.whatsapp.net");
    send_ok(&mut scene.world, scene.alice, &carol, "hello carol");
    assert_eq!(phone_texts(&scene.world, CAROL), ["hello carol"]);
    assert_eq!(
        companion_texts(&scene.world, CAROL, carol_companion),
        ["hello carol"],
        "the companion Carol's phone linked reads it"
    );
    never_reached(&scene, CAROL, carol_spy);
}

/// The server serves Bob's key-index list extended to cover the device it injected, either
/// keeping the phone's signature (which no longer verifies) or signing it with a key of its
/// own: the list is refused, Alice keeps Bob's last verified list, so Bob's walink client and
/// phone keep reading and the injected device reads nothing.
#[test]
fn a_key_index_list_the_phone_did_not_sign_is_refused() {
    for (round, fault) in [
        KeyIndexListFault::BadSignature,
        KeyIndexListFault::ForeignKey,
    ]
    .into_iter()
    .enumerate()
    {
        let mut scene = scene(43 + round as u64);
        exchange(&mut scene, "verified");
        let spy = scene.world.server.inject_device(BOB, None).unwrap();
        scene
            .world
            .server
            .set_key_index_list_fault(BOB, fault)
            .unwrap();
        scene.world.flush();
        exchange(&mut scene, "forged");
        never_reached(&scene, BOB, spy);
    }
}

/// The server lists an injected device under the key index of Bob's walink client (an index
/// the phone's signed list does cover): under one raw id a key index names one device, so the
/// claim is refused and Bob's walink client keeps its place.
#[test]
fn a_key_index_cannot_be_claimed_by_another_device() {
    let mut scene = scene(47);
    exchange(&mut scene, "verified");
    let bob_device = scene.world.clients[scene.bob].client.jid().unwrap().device;
    let key_index = scene
        .world
        .server
        .account(BOB)
        .unwrap()
        .devices
        .get(&bob_device)
        .unwrap()
        .key_index;
    let spy = scene
        .world
        .server
        .inject_device(BOB, Some(key_index))
        .unwrap();
    scene.world.flush();
    exchange(&mut scene, "claimed");
    never_reached(&scene, BOB, spy);
}

/// Bob's phone unlinks one of his companions and signs a new list. The server then lists a
/// device under the unlinked companion's key index again and replays the list the phone signed
/// before the unlink (a valid signature, an older timestamp): Alice keeps the newer list she
/// verified, and neither the unlinked companion nor the device standing in for it reads
/// anything sent after the unlink.
#[test]
fn a_replayed_key_index_list_cannot_bring_back_an_unlinked_device() {
    let mut scene = scene(53);
    let now = scene.world.now;
    let companion = scene.world.server.link_sim_companion(now, BOB).unwrap();
    scene.world.flush();
    exchange(&mut scene, "linked");
    assert_eq!(
        companion_texts(&scene.world, BOB, companion),
        ["linked direct", "linked group"]
    );
    let key_index = scene
        .world
        .server
        .account(BOB)
        .unwrap()
        .devices
        .get(&companion)
        .unwrap()
        .key_index;
    scene.world.run_for(2_000);
    scene.world.server.remove_device(BOB, companion).unwrap();
    scene.world.flush();
    exchange(&mut scene, "unlinked");
    let spy = scene
        .world
        .server
        .inject_device(BOB, Some(key_index))
        .unwrap();
    scene
        .world
        .server
        .set_key_index_list_fault(BOB, KeyIndexListFault::Replay { back: 1 })
        .unwrap();
    scene.world.flush();
    exchange(&mut scene, "replayed");
    never_reached(&scene, BOB, spy);
    assert_eq!(
        companion_texts(&scene.world, BOB, companion),
        ["linked direct", "linked group"],
        "the unlinked companion reads nothing sent after the unlink"
    );
}

/// The lists the simulated phone signs verify with libsignal-node (which shares no code with
/// walink or the simulation) and with walink's check, which decode the same list; the lists the
/// server's faults serve verify in neither, except the replay, which is genuine but older.
#[test]
fn the_simulated_phones_key_index_lists_verify_in_libsignal_and_in_walink() {
    let mut world = World::new(59, T0, Faults::none());
    world.server.create_account(BOB, "Bob").unwrap();
    let now = world.now;
    let first = world.server.link_sim_companion(now, BOB).unwrap();
    world.server.link_sim_companion(now + 5_000, BOB).unwrap();
    world.server.remove_device(BOB, first).unwrap();
    world.server.inject_device(BOB, None).unwrap();
    let account = world.server.account(BOB).unwrap();
    let key = account.phone.identity_public();
    let mut pair = Oracle::spawn("pair.mjs").unwrap();
    let mut libsignal = |list: &[u8]| {
        pair.call(
            "keyIndexListVerifies",
            json!({ "list": hex::encode(list), "accountKey": hex::encode(key) }),
        )
        .unwrap()
    };
    assert_eq!(account.key_index_lists.len(), 3);
    let mut last = 0;
    for list in &account.key_index_lists {
        let verdict = libsignal(&list.bytes);
        assert_eq!(verdict["verifies"], json!(true));
        let ours = verify_key_index_list(&list.bytes, &key).unwrap();
        assert_eq!(verdict["rawId"], json!(ours.raw_id));
        assert_eq!(verdict["timestamp"], json!(ours.timestamp));
        assert_eq!(verdict["currentIndex"], json!(ours.current_index));
        assert_eq!(verdict["validIndexes"], json!(ours.valid_indexes));
        assert_eq!(ours.raw_id, account.raw_id);
        assert_eq!(ours.timestamp, list.timestamp);
        assert!(ours.timestamp > last, "timestamps grow");
        last = ours.timestamp;
    }
    let latest = verify_key_index_list(&account.key_index_lists[2].bytes, &key).unwrap();
    assert_eq!(latest.valid_indexes, account.valid_key_indexes());
    for (fault, expected) in [
        (
            KeyIndexListFault::BadSignature,
            Some(ListRefused::BadSignature),
        ),
        (
            KeyIndexListFault::ForeignKey,
            Some(ListRefused::BadSignature),
        ),
        (KeyIndexListFault::Replay { back: 2 }, None),
    ] {
        world.server.set_key_index_list_fault(BOB, fault).unwrap();
        let (ts, bytes) = world.server.served_key_index_list_of(BOB).unwrap();
        let verdict = libsignal(&bytes);
        let ours = verify_key_index_list(&bytes, &key);
        assert_eq!(verdict["verifies"], json!(expected.is_none()), "{fault:?}");
        assert_eq!(ours.as_ref().err().copied(), expected, "{fault:?}");
        if let Ok(list) = ours {
            assert!(
                list.timestamp < last && ts == list.timestamp,
                "{fault:?}: older"
            );
        }
    }
}
