//! End to end through the World: real walink Clients against walink-sim's server and phone.
//! QR pairing, code pairing, the 515 restart, a restored login after a host crash, and a
//! seeded run under faults that replays to the same transcript.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::client::{Command, CommandOutput, Config, Event, State};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, ServerEvent, StreamErrorKind, World};

/// 2027-01-15, inside the test chain's validity.
const T0: u64 = 1_800_000_000_000;
const USER: &str = "15550001111";

fn config() -> Config {
    let mut config = Config::new(ClientProfile::new(
        WebVersion::new(2, 3000, 1_045_649_367),
        "walink",
    ));
    config.trust_root = ChainSpec::default().trust_root();
    config
}

fn world(seed: u64, faults: Faults) -> World {
    let mut world = World::new(seed, T0, faults);
    world.server.create_account(USER, "Alice").unwrap();
    world
}

fn connected(world: &World, client: usize) -> bool {
    matches!(world.client_state(client), Some(State::Connected))
}

fn paired(world: &World, client: usize) -> bool {
    world.clients[client]
        .events
        .iter()
        .any(|e| matches!(e, Event::Paired { .. }))
}

/// Pairs client `client` by QR: waits for a QR, the phone scans the latest one.
fn pair_by_qr(world: &mut World, client: usize) {
    let deadline = world.now + 30_000;
    assert!(
        world.run_until(deadline, |w| !w.clients[client].qrs().is_empty()),
        "no QR: {:?}",
        world.clients[client].events
    );
    let qr = world.clients[client].qrs().last().unwrap().clone();
    world.server.phone_scan_qr(world.now, USER, &qr).unwrap();
    world.flush();
    let deadline = world.now + 60_000;
    assert!(
        world.run_until(deadline, |w| paired(w, client) && connected(w, client)),
        "not connected: {:?}",
        world.clients[client].events
    );
}

#[test]
fn qr_pairing_restart_and_login() {
    let mut world = world(1, Faults::none());
    let client = world.add_client(config());
    pair_by_qr(&mut world, client);
    let account = world.server.account(USER).unwrap();
    assert_eq!(account.devices.len(), 2);
    let Some(Event::Paired { jid, lid, .. }) = world.clients[client]
        .events
        .iter()
        .find(|e| matches!(e, Event::Paired { .. }))
        .cloned()
    else {
        panic!()
    };
    assert_eq!(jid.user, USER);
    assert_eq!(jid.device, 1);
    assert_eq!(lid.unwrap().server, "lid");
    // The 515 restart: the client reconnected and logged in with its new identity.
    assert!(world.clients[client].events.iter().any(|e| matches!(
        e,
        Event::State {
            state: State::Connected,
            ..
        }
    )));
    assert!(world.server.device_conn(USER, 1).is_some());
    // The login got edge-routing info; the next connection sends it back in its pre-intro.
    let old = world.server.device_conn(USER, 1);
    world.drop_connection(client);
    let deadline = world.now + 60_000;
    assert!(world.run_until(deadline, |w| {
        connected(w, client)
            && w.server
                .device_conn(USER, 1)
                .is_some_and(|c| Some(c) != old)
    }));
    let logins: Vec<Option<Vec<u8>>> = std::iter::from_fn(|| world.server.poll_event())
        .filter_map(|event| match event {
            ServerEvent::LoggedIn { routing_info, .. } => Some(routing_info),
            _ => None,
        })
        .collect();
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert_eq!(logins[0], None);
    assert!(
        logins[1]
            .as_ref()
            .is_some_and(|r| r.starts_with(b"sim-edge-"))
    );
}

#[test]
fn code_pairing() {
    let mut world = world(2, Faults::none());
    let client = world.add_client(config());
    let deadline = world.now + 30_000;
    assert!(world.run_until(deadline, |w| !w.clients[client].qrs().is_empty()));
    let id = world
        .command(
            client,
            Command::PairWithCode {
                phone: format!("+{USER}"),
            },
        )
        .unwrap();
    let deadline = world.now + 30_000;
    assert!(
        world.run_until(deadline, |w| w.clients[client].pairing_code().is_some()),
        "{:?}",
        world.clients[client].events
    );
    let code = world.clients[client].pairing_code().unwrap();
    assert!(world.clients[client].events.iter().any(|e| matches!(
        e,
        Event::CommandDone { id: done, result: Ok(CommandOutput::PairingCode(c)) } if *done == id && *c == code
    )));
    world
        .server
        .phone_enter_code(world.now, USER, &code)
        .unwrap();
    world.flush();
    let deadline = world.now + 60_000;
    assert!(
        world.run_until(deadline, |w| paired(w, client) && connected(w, client)),
        "{:?}",
        world.clients[client].events
    );
}

#[test]
fn restored_login_after_a_host_crash_and_a_server_restart() {
    let mut world = world(3, Faults::none());
    let client = world.add_client(config());
    pair_by_qr(&mut world, client);
    world.crash(client);
    let deadline = world.now + 60_000;
    assert!(world.run_until(deadline, |w| connected(w, client)));
    assert!(!world.clients[client].qrs().is_empty());
    let qrs_before = world.clients[client].qrs().len();
    world.restart_server();
    let deadline = world.now + 120_000;
    assert!(
        world.run_until(deadline, |w| w.server.device_conn(USER, 1).is_some()
            && connected(w, client))
    );
    assert_eq!(
        world.clients[client].qrs().len(),
        qrs_before,
        "no new pairing"
    );
    // A 503 stream error: the client reconnects with backoff.
    let conn = world.server.device_conn(USER, 1).unwrap();
    world
        .server
        .send_stream_error(conn, StreamErrorKind::ServerError(503))
        .unwrap();
    world.flush();
    let deadline = world.now + 120_000;
    assert!(world.run_until(
        deadline,
        |w| w.server.device_conn(USER, 1).is_some_and(|c| c != conn) && connected(w, client)
    ));
}

#[test]
fn a_removed_device_is_logged_out() {
    let mut world = world(4, Faults::none());
    let client = world.add_client(config());
    pair_by_qr(&mut world, client);
    world.server.remove_device(USER, 1).unwrap();
    world.flush();
    let deadline = world.now + 30_000;
    assert!(world.run_until(deadline, |w| matches!(
        w.client_state(client),
        Some(State::LoggedOut)
    )));
}

/// Delivery is at-least-once across failures: texts the phone sends while the client is
/// offline, and one whose connection is cut right after delivery, all reach the client and are
/// acknowledged; the server keeps nothing once the client acked.
#[test]
fn phone_texts_reach_the_client_across_outages() {
    let mut world = world(5, Faults::none());
    let client = world.add_client(config());
    pair_by_qr(&mut world, client);
    let deadline = world.now + 10_000;
    world.run_until(deadline, |_| false);

    // Offline: the host is down (the client dropped), two texts arrive meanwhile.
    world.drop_connection(client);
    world
        .server
        .phone_send_text(world.now, USER, USER, "first")
        .unwrap();
    world
        .server
        .phone_send_text(world.now, USER, USER, "second")
        .unwrap();
    world.flush();
    let device = |w: &World| w.server.account(USER).unwrap().devices[&1].clone();
    let pending = |w: &World| device(w).offline.len() + device(w).unacked.len();
    assert_eq!(pending(&world), 2);
    let deadline = world.now + 120_000;
    assert!(world.run_until(deadline, |w| connected(w, client)
        && device(w).offline.is_empty()
        && device(w).unacked.is_empty()));

    // Online: a third text, then the link is cut before the ack could leave.
    world
        .server
        .phone_send_text(world.now, USER, USER, "third")
        .unwrap();
    world.flush();
    assert_eq!(pending(&world), 1);
    world.drop_connection(client);
    let deadline = world.now + 120_000;
    assert!(world.run_until(deadline, |w| connected(w, client) && pending(w) == 0));
    assert!(world.server.device_conn(USER, 1).is_some());
}
