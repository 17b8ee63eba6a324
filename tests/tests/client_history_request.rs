//! The on-demand history request (`Command::RequestHistory`, features.md §2.7) through
//! walink-sim: it goes to the account's primary phone only, as a peer message
//! (`category="peer"`, no device-sent wrapper), never to the account's other companions; the
//! phone (which answers only such a peer message) reads it and its ON_DEMAND answer arrives.
//! A history blob that expired before its download is asked for again (a server-error peer
//! receipt) and read from its new announcement.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::client::history::{HistoryFailure, HistorySyncType};
use walink_core::client::{Command, CommandError, CommandOutput, Config, Event};
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

#[test]
fn a_history_request_goes_to_the_primary_phone_only_and_is_answered() {
    let mut world = World::new(0x4849_0001, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    let first = world.link_by_qr(config(), ALICE).expect("first companion");
    let second = world.link_by_qr(config(), ALICE).expect("second companion");
    let second_device = world.clients[second]
        .client
        .jid()
        .expect("second device id")
        .device;

    let result = run(
        &mut world,
        first,
        Command::RequestHistory {
            chat: format!("{BOB}@s.whatsapp.net"),
            oldest_id: "3EB0OLDEST0000000000".into(),
            oldest_from_me: false,
            oldest_timestamp: T0 / 1000 - 86_400,
            count: 20,
        },
    );
    let id = match result {
        Ok(CommandOutput::MessageSent { id }) => id,
        other => panic!("request failed: {other:?}"),
    };
    // The phone read it as a history request (it answers only a peer message).
    let phone = world.server.phone_messages(ALICE).unwrap_or_default();
    let request = phone
        .iter()
        .find(|m| m.id == id)
        .expect("the phone got the request");
    assert_eq!(request.error, None);
    let asked = request.history_request.as_ref().expect("a history request");
    assert_eq!(asked.chat, format!("{BOB}@s.whatsapp.net"));
    assert_eq!(asked.count, 20);
    // The other companion never saw it.
    assert!(
        !world
            .server
            .delivered_ids(ALICE, second_device)
            .contains(&id),
        "the request reached another companion"
    );
    // The phone's answer: an ON_DEMAND chunk for the asking companion.
    assert!(world.run_until(world.now + 30_000, |w| {
        w.clients[first]
            .events
            .iter()
            .any(|e| matches!(e, Event::HistorySync(p) if p.sync_type == HistorySyncType::OnDemand))
    }));
}

#[test]
fn a_bad_history_request_is_refused() {
    let mut world = World::new(0x4849_0002, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    let client = world.link_by_qr(config(), ALICE).expect("companion");
    for (chat, oldest, count, error) in [
        ("", "3EB0X", 10, CommandError::InvalidAddress),
        (
            "15557654321@s.whatsapp.net",
            "",
            10,
            CommandError::InvalidMessage,
        ),
        (
            "15557654321@s.whatsapp.net",
            "3EB0X",
            0,
            CommandError::InvalidMessage,
        ),
    ] {
        let result = run(
            &mut world,
            client,
            Command::RequestHistory {
                chat: chat.into(),
                oldest_id: oldest.into(),
                oldest_from_me: false,
                oldest_timestamp: 0,
                count,
            },
        );
        assert_eq!(result, Err(error));
    }
}

#[test]
fn an_expired_history_blob_is_asked_for_again_and_then_read() {
    let mut world = World::new(0x4849_0003, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    let now = world.now;
    world
        .server
        .phone_send_text(now, BOB, ALICE, "before pairing")
        .unwrap();
    // The first blob the phone announces is gone from the media hosts at once.
    world.server.set_history_sync(true);
    world.server.expire_next_history_blobs(1);
    let client = world.link_by_qr(config(), ALICE).expect("companion");
    let got_text = |w: &World| {
        w.clients[client].events.iter().any(|e| {
            matches!(e, Event::Message(m) if m.history && m.text.as_deref() == Some("before pairing"))
        })
    };
    assert!(world.run_until(world.now + 30_000, got_text));
    let failures: Vec<_> = world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::HistorySync(p) => p.failure,
            _ => None,
        })
        .collect();
    assert_eq!(failures, [HistoryFailure::Reuploading], "{failures:?}");
    assert_eq!(world.server.history_reuploads(), (1, 0));
}
