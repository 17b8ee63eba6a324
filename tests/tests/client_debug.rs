//! What a host that logs walink's values with `{:?}` would write: after a client paired,
//! received and sent messages, neither its `Debug` nor that of any event it emitted shows a
//! plaintext or any bytes of its stored records (private keys, sessions, sender keys).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::client::{Command, CommandOutput, Config, Event, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, World};

const T0: u64 = 1_780_000_000_000;
const ALICE: &str = "15551234567";
const BOB: &str = "15557654321";
const RECEIVED: &str = "received text that no log may show";
const SENT: &str = "sent text that no log may show";

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

/// Fails when `debug` shows 8 consecutive bytes of `secret` (as decimal bytes or hex).
fn assert_hides(what: &str, debug: &str, secret: &[u8]) {
    for window in secret.windows(8) {
        let decimal = window
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !debug.contains(&decimal)
                && !debug.contains(&hex)
                && !debug.contains(&hex.to_uppercase()),
            "{what} shows stored bytes: {debug}"
        );
    }
}

#[test]
fn the_client_and_its_events_print_no_key_and_no_plaintext() {
    let mut world = World::new(23, T0, Faults::none());
    world.server.create_account(ALICE, "Alice").unwrap();
    world.server.create_account(BOB, "Bob").unwrap();
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, ALICE, &qr).unwrap();
    assert!(world.run_until(T0 + 30_000, |w| w.client_state(client)
        == Some(&State::Connected)));

    let now = world.now;
    world
        .server
        .phone_send_text(now, BOB, ALICE, RECEIVED)
        .unwrap();
    world.flush();
    let received = |w: &World| {
        w.clients[client]
            .events
            .iter()
            .any(|event| matches!(event, Event::Message(m) if m.text.as_deref() == Some(RECEIVED)))
    };
    assert!(
        world.run_until(world.now + 5_000, received),
        "the text did not arrive"
    );
    world.command(
        client,
        Command::SendText {
            to: format!("{BOB}@s.whatsapp.net"),
            text: SENT.to_owned(),
        },
    );
    let sent = |w: &World| {
        w.clients[client].events.iter().any(|event| {
            matches!(
                event,
                Event::CommandDone {
                    result: Ok(CommandOutput::MessageSent { .. }),
                    ..
                }
            )
        })
    };
    assert!(
        world.run_until(world.now + 5_000, sent),
        "the text was not sent"
    );

    let shown = format!("{:?}", world.clients[client].client);
    let events: Vec<String> = world.clients[client]
        .events
        .iter()
        .map(|event| format!("{event:?}"))
        .collect();
    for text in [&shown].into_iter().chain(&events) {
        for plaintext in [RECEIVED, SENT] {
            assert!(!text.contains(plaintext), "a plaintext is printed: {text}");
            assert_hides("the client or an event", text, plaintext.as_bytes());
        }
    }
    let records = world.clients[client].records();
    assert!(records.len() > 800, "{} records", records.len());
    for record in &records {
        assert_hides("the client", &shown, &record.value);
    }
}
