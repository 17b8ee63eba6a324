//! The client's lifecycle through walink-sim: login of a restored device, stream errors,
//! `<failure>`, network loss and the backoff schedule, logout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::client::{CloseReason, Command, CommandOutput, Config, Event, State, StateReason};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_core::store::Space;
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, StreamErrorKind, World};

const T0: u64 = 1_780_000_000_000;
const PHONE: &str = "15551234567";

fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

/// A world with one account and one client paired to it by QR and connected.
fn paired(seed: u64, config: Config) -> (World, usize) {
    let mut world = World::new(seed, T0, Faults::none());
    world.server.create_account(PHONE, "Alice").unwrap();
    let client = world.add_client(config);
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, PHONE, &qr).unwrap();
    assert!(world.run_until(T0 + 30_000, |w| connected(w, client)));
    (world, client)
}

fn connected(world: &World, client: usize) -> bool {
    world.client_state(client) == Some(&State::Connected)
}

fn conn(world: &World, client: usize) -> walink_sim::sim::ConnId {
    let device = world.clients[client].client.jid().unwrap().device;
    world.server.device_conn(PHONE, device).unwrap()
}

/// The last state event of `client`.
fn last_state(world: &World, client: usize) -> (State, StateReason) {
    world.clients[client]
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::State { state, reason } => Some((state.clone(), reason.clone())),
            _ => None,
        })
        .unwrap()
}

#[test]
fn a_restored_device_logs_in() {
    let (mut world, client) = paired(11, config());
    let jid = world.clients[client].client.jid().cloned().unwrap();
    let lid = world.clients[client].client.lid().cloned();
    assert!(lid.is_some());
    let records = world.clients[client].store.len();
    assert!(
        records > 800,
        "device, signed prekey, identities and uploaded prekeys: {records}"
    );
    world.crash(client);
    assert_eq!(world.clients[client].crashes, 1);
    assert!(world.run_until(world.now + 30_000, |w| connected(w, client)));
    assert_eq!(world.clients[client].client.jid(), Some(&jid));
    assert_eq!(world.clients[client].client.lid(), lid.as_ref());
    // No new prekeys were needed: the server still has the 812 uploaded at pairing.
    assert_eq!(world.clients[client].store.len(), records);
}

#[test]
fn replaced_ends_in_replaced_and_connect_resumes() {
    let (mut world, client) = paired(12, config());
    let conn = conn(&world, client);
    world
        .server
        .send_stream_error(conn, StreamErrorKind::Replaced)
        .unwrap();
    world.flush();
    world.run_for(5_000);
    let (state, reason) = last_state(&world, client);
    assert_eq!(state, State::Replaced);
    assert_eq!(
        reason,
        StateReason::Closed(CloseReason::StreamError {
            code: None,
            conflict: Some("replaced".into())
        })
    );
    // It stays there...
    world.run_for(120_000);
    assert_eq!(world.client_state(client), Some(&State::Replaced));
    // ...until the host asks again.
    world.command(client, Command::Connect).unwrap();
    assert!(world.run_until(world.now + 30_000, |w| connected(w, client)));
}

#[test]
fn replaced_with_retry_reconnects_by_itself() {
    let config = Config {
        retry_when_replaced: true,
        ..config()
    };
    let (mut world, client) = paired(13, config);
    let conn = conn(&world, client);
    world
        .server
        .send_stream_error(conn, StreamErrorKind::Replaced)
        .unwrap();
    world.flush();
    world.run_for(100);
    assert!(matches!(
        world.client_state(client),
        Some(State::Reconnecting { attempt: 1, .. })
    ));
    assert!(world.run_until(world.now + 30_000, |w| connected(w, client)));
}

#[test]
fn device_removed_logs_out_deletes_the_records_and_can_pair_again() {
    let (mut world, client) = paired(14, config());
    let device = world.clients[client].client.jid().unwrap().device;
    world.server.remove_device(PHONE, device).unwrap();
    world.flush();
    world.run_for(5_000);
    assert_eq!(world.client_state(client), Some(&State::LoggedOut));
    assert!(world.clients[client].store.is_empty());
    world.run_for(600_000);
    assert_eq!(world.client_state(client), Some(&State::LoggedOut));
    let id = world.command(client, Command::Connect).unwrap();
    assert!(world.clients[client].events.iter().any(|e| matches!(
        e,
        Event::CommandDone { id: done, result: Ok(CommandOutput::None) } if *done == id
    )));
    // A new device: new records, a registration, new QR codes.
    let before = world.clients[client].qrs().len();
    assert!(
        world.run_until(world.now + 10_000, |w| w.clients[client].qrs().len()
            > before)
    );
    assert!(world.clients[client].client.jid().is_none());
    assert!(
        world.clients[client]
            .store
            .keys()
            .any(|(space, _)| space == Space::Device.as_str())
    );
}

#[test]
fn unauthorized_logs_out() {
    let (mut world, client) = paired(15, config());
    let conn = conn(&world, client);
    world
        .server
        .send_stream_error(conn, StreamErrorKind::Unauthorized)
        .unwrap();
    world.flush();
    world.run_for(5_000);
    assert_eq!(world.client_state(client), Some(&State::LoggedOut));
}

#[test]
fn server_errors_back_off_on_the_fibonacci_schedule() {
    let (mut world, client) = paired(16, config());
    let conn = conn(&world, client);
    let at_error = world.now;
    world
        .server
        .send_stream_error(conn, StreamErrorKind::ServerError(503))
        .unwrap();
    world.flush();
    world.run_for(10);
    let Some(State::Reconnecting { attempt: 1, at }) = world.client_state(client).cloned() else {
        panic!("{:?}", world.client_state(client));
    };
    assert!(
        (at_error + 900..=at_error + 1_100 + 10).contains(&at),
        "{at}"
    );
    assert!(world.run_until(world.now + 30_000, |w| connected(w, client)));

    // 429: five extra steps, i.e. the sixth delay of the schedule (8 s ± 10 %), on top of
    // the previous attempt.
    let conn = walink_sim::sim::ConnId::clone(&conn_of(&world, client));
    let at_error = world.now;
    world
        .server
        .send_stream_error(conn, StreamErrorKind::RateLimited)
        .unwrap();
    world.flush();
    world.run_for(10);
    let Some(State::Reconnecting { attempt, at }) = world.client_state(client).cloned() else {
        panic!("{:?}", world.client_state(client));
    };
    assert_eq!(attempt, 7);
    let delay = at - at_error;
    assert!((11_700..=14_310).contains(&delay), "{delay}");
    assert!(world.run_until(world.now + 60_000, |w| connected(w, client)));
}

fn conn_of(world: &World, client: usize) -> walink_sim::sim::ConnId {
    conn(world, client)
}

#[test]
fn network_loss_reconnects_and_repeated_failures_grow_the_delay() {
    let (mut world, client) = paired(17, config());
    world.drop_connection(client);
    world.run_for(10);
    assert!(matches!(
        world.client_state(client),
        Some(State::Reconnecting { attempt: 1, .. })
    ));
    let (_, reason) = last_state(&world, client);
    assert_eq!(reason, StateReason::Closed(CloseReason::Network));
    assert!(world.run_until(world.now + 30_000, |w| connected(w, client)));
    // The connection was up for less than 30 s, so the schedule goes on: the server refuses
    // the next logins with 503: attempts 2..=6, each 2, 3, 5, 8 s after the previous one.
    let reconnecting = |w: &World| -> Vec<(u32, u64)> {
        w.clients[client]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::State {
                    state: State::Reconnecting { attempt, at },
                    ..
                } => Some((*attempt, *at)),
                _ => None,
            })
            .collect()
    };
    world.drop_connection(client);
    for round in 0..5 {
        if round > 0 {
            world.server.fail_next_login(503);
        }
        let seen = reconnecting(&world).len();
        assert!(world.run_until(world.now + 60_000, |w| reconnecting(w).len() > seen));
    }
    let schedule = reconnecting(&world);
    let last: Vec<(u32, u64)> = schedule.iter().rev().take(5).rev().copied().collect();
    assert_eq!(
        last.iter().map(|s| s.0).collect::<Vec<_>>(),
        [2, 3, 4, 5, 6],
        "{schedule:?}"
    );
    // Each attempt is scheduled when the previous one failed, i.e. at the previous `at`.
    let expected = [2_000u64, 3_000, 5_000, 8_000];
    for (pair, base) in last.windows(2).zip(expected) {
        let delay = pair[1].1 - pair[0].1;
        assert!(
            (base * 9 / 10..=base * 11 / 10 + 50).contains(&delay),
            "{delay} vs {base}: {schedule:?}"
        );
    }
    assert!(world.run_until(world.now + 60_000, |w| connected(w, client)));
}

#[test]
fn client_outdated_rests_until_connect() {
    let (mut world, client) = paired(18, config());
    world.server.fail_next_login(405);
    world.drop_connection(client);
    assert!(
        world.run_until(world.now + 30_000, |w| w.client_state(client)
            == Some(&State::ClientOutdated))
    );
    let (_, reason) = last_state(&world, client);
    assert_eq!(
        reason,
        StateReason::Closed(CloseReason::Failure { reason: 405 })
    );
    world.run_for(600_000);
    assert_eq!(world.client_state(client), Some(&State::ClientOutdated));
    world.command(client, Command::Connect).unwrap();
    assert!(world.run_until(world.now + 30_000, |w| connected(w, client)));
}

#[test]
fn logout_tells_the_server_and_forgets_the_device() {
    let (mut world, client) = paired(19, config());
    let device = world.clients[client].client.jid().unwrap().device;
    let id = world.command(client, Command::Logout).unwrap();
    world.run_for(5_000);
    assert!(world.clients[client].events.iter().any(|e| matches!(
        e,
        Event::CommandDone { id: done, result: Ok(CommandOutput::None) } if *done == id
    )));
    assert_eq!(world.client_state(client), Some(&State::LoggedOut));
    assert!(world.clients[client].store.is_empty());
    assert!(world.server.device_conn(PHONE, device).is_none());
}

#[test]
fn disconnect_rests_and_connect_resumes() {
    let (mut world, client) = paired(20, config());
    world.command(client, Command::Disconnect).unwrap();
    world.run_for(120_000);
    assert_eq!(world.client_state(client), Some(&State::Disconnected));
    assert_eq!(world.clients[client].client.poll_timeout(), None);
    world.command(client, Command::Connect).unwrap();
    assert!(world.run_until(world.now + 30_000, |w| connected(w, client)));
}

#[test]
fn keepalive_pings_keep_an_idle_connection_up() {
    let (mut world, client) = paired(21, config());
    let conn = conn(&world, client);
    world.run_for(10 * 60_000);
    assert!(connected(&world, client));
    assert_eq!(
        world
            .server
            .device_conn(PHONE, world.clients[client].client.jid().unwrap().device),
        Some(conn)
    );
}

/// Under drops at any byte, re-chunking, latency, server restarts and host crashes, a paired
/// client always comes back to `Connected` as the same device, and every `Connected` follows
/// a `LoggingIn` of the same connection.
#[test]
fn hostile_networks_always_end_connected() {
    let seeds = 64;
    let (mut crashes, mut faults) = (0, 0);
    for seed in 0..seeds {
        let mut world = World::new(1000 + seed, T0, Faults::hostile());
        world.server.create_account(PHONE, "Alice").unwrap();
        let client = world.add_client(config());
        // Pair: scan whichever QR is current until it works.
        let mut deadline = T0;
        while world.clients[client].client.jid().is_none() {
            deadline += 30_000;
            assert!(deadline < T0 + 3_600_000, "seed {seed}: never paired");
            if world.client_state(client) == Some(&State::Disconnected) {
                world.command(client, Command::Connect);
            }
            world.run_until(deadline, |w| !w.clients[client].qrs().is_empty());
            if let Some(qr) = world.clients[client].qrs().last().cloned() {
                let now = world.now;
                let _ = world.server.phone_scan_qr(now, PHONE, &qr);
                world.flush();
            }
            world.run_for(5_000);
        }
        let jid = world.clients[client].client.jid().cloned().unwrap();
        world.run_for(10 * 60_000);
        assert!(
            world.run_until(world.now + 30 * 60_000, |w| connected(w, client)),
            "seed {seed}: {:?}",
            world.client_state(client)
        );
        assert_eq!(
            world.clients[client].client.jid(),
            Some(&jid),
            "seed {seed}"
        );
        crashes += world.clients[client].crashes;
        faults += world
            .notes
            .iter()
            .filter(|n| matches!(n, walink_sim::sim::WorldNote::Fault(_)))
            .count();
        let mut previous = None;
        for event in &world.clients[client].events {
            if let Event::State { state, .. } = event {
                if *state == State::Connected {
                    assert_eq!(previous, Some(State::LoggingIn), "seed {seed}");
                }
                previous = Some(state.clone());
            }
        }
    }
    eprintln!(
        "{seeds} hostile schedules ended connected ({faults} faults, {crashes} host crashes)"
    );
    assert!(crashes > 0 && faults > crashes as usize);
}

/// Whether `client` went from a refused first login straight back to connecting (the
/// unconfirmed-pairing recovery), and whether it ever rested in `LoggedOut`.
fn repaired_after_refusal(world: &World, client: usize) -> (bool, bool) {
    let states: Vec<_> = world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::State { state, reason } => Some((state.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    let repaired = states.iter().any(|(state, reason)| {
        *state == State::Connecting
            && *reason == StateReason::Closed(CloseReason::Failure { reason: 401 })
    });
    let logged_out = states.iter().any(|(state, _)| *state == State::LoggedOut);
    (repaired, logged_out)
}

/// The host dies right after the client stored pair-success and before the server read its
/// pair-device-sign: the server never registered the device, so the first login is refused
/// with 401. The client must not rest in `LoggedOut` (a companion that never links, the "QR
/// loop"): it wipes the unconfirmed pairing, registers a new device and shows new QR codes,
/// which link.
#[test]
fn a_pairing_the_server_never_confirmed_pairs_again() {
    let mut world = World::new(21, T0, Faults::none());
    world.server.create_account(PHONE, "Alice").unwrap();
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, PHONE, &qr).unwrap();
    let paired = |w: &World| {
        w.clients[client]
            .events
            .iter()
            .any(|e| matches!(e, Event::Paired { .. }))
    };
    assert!(world.run_until(T0 + 30_000, paired));
    let old_identity = world.clients[client].client.jid().cloned();
    assert!(old_identity.is_some());
    // The pair-device-sign is still on its way; the host crashes before it arrives.
    world.crash(client);
    assert_eq!(world.server.device_conn(PHONE, 1), None);
    let qrs = world.clients[client].qrs().len();
    assert!(
        world.run_until(world.now + 10_000, |w| w.clients[client].qrs().len() > qrs),
        "new QR codes after the refused first login"
    );
    let (repaired, logged_out) = repaired_after_refusal(&world, client);
    assert!(repaired, "the 401 led straight back to pairing");
    assert!(!logged_out, "never rests in LoggedOut");
    assert!(world.clients[client].client.jid().is_none());
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, PHONE, &qr).unwrap();
    assert!(world.run_until(now + 30_000, |w| connected(w, client)));
    // A device that had logged in before is still logged out by a 401, as before.
    let conn = conn(&world, client);
    world
        .server
        .send_stream_error(conn, StreamErrorKind::Unauthorized)
        .unwrap();
    world.flush();
    world.run_for(5_000);
    assert_eq!(world.client_state(client), Some(&State::LoggedOut));
}

/// Seed 179 of the faulty-network schedules (drops, splits, latency, host crashes): the link
/// breaks after the client answered pair-success and before the server read the answer. The
/// first login gets 401; the client pairs again and the next scan links it.
#[test]
fn seed_179_links_after_its_first_pairing_is_lost() {
    let faults = Faults {
        drop_per_mille: 5,
        split_per_mille: 300,
        latency_max_ms: 100,
        restart_per_mille: 0,
        crash_per_mille: 1,
        ..Faults::none()
    };
    let mut world = World::new(179, T0, faults);
    world.server.create_account(PHONE, "Alice").unwrap();
    let client = world.add_client(config());
    let mut scans = 0;
    while !connected(&world, client) {
        assert!(scans < 3, "linked within three scans");
        let start = world.now;
        assert!(
            world.run_until(start + 300_000, |w| !w.clients[client].qrs().is_empty()
                || connected(w, client))
        );
        if connected(&world, client) {
            break;
        }
        let qr = world.clients[client].qrs().last().unwrap().clone();
        let now = world.now;
        scans += 1;
        if world.server.phone_scan_qr(now, PHONE, &qr).is_ok() {
            world.run_until(now + 120_000, |w| connected(w, client));
        }
    }
    let (repaired, logged_out) = repaired_after_refusal(&world, client);
    assert!(repaired, "seed 179 still exercises the lost pairing");
    assert!(!logged_out);
}
