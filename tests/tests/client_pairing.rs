//! Pairing a walink client through walink-sim: by QR code and by pairing code, with every
//! failure path of code pairing ending in its typed error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::client::{
    Command, CommandError, CommandId, CommandOutput, Config, Event, PairingMode, State, StateReason,
};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::{Faults, World};

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

fn world(seed: u64) -> World {
    let mut world = World::new(seed, T0, Faults::none());
    world.server.create_account(PHONE, "Alice").unwrap();
    world
}

fn states(world: &World, client: usize) -> Vec<State> {
    world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::State { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect()
}

fn command_result(
    world: &World,
    client: usize,
    id: CommandId,
) -> Option<Result<CommandOutput, CommandError>> {
    world.clients[client].events.iter().find_map(|e| match e {
        Event::CommandDone { id: done, result } if *done == id => Some(result.clone()),
        _ => None,
    })
}

#[test]
fn qr_pairing_then_515_then_login() {
    let mut world = world(1);
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    assert_eq!(
        world.client_state(client),
        Some(&State::AwaitingPairing {
            mode: PairingMode::Qr
        })
    );
    let qr = world.clients[client].qrs().last().unwrap().clone();
    assert!(qr.starts_with("https://wa.me/settings/linked_devices#2@"));
    assert_eq!(qr.split(',').count(), 5);
    let now = world.now;
    world.server.phone_scan_qr(now, PHONE, &qr).unwrap();
    assert!(world.run_until(T0 + 30_000, |w| w.client_state(client)
        == Some(&State::Connected)));
    let events = &world.clients[client].events;
    let paired = events.iter().find_map(|e| match e {
        Event::Paired {
            jid, lid, platform, ..
        } => Some((jid.clone(), lid.clone(), platform.clone())),
        _ => None,
    });
    let (jid, lid, platform) = paired.expect("paired event");
    assert_eq!(jid.user, PHONE);
    assert!(jid.device > 0);
    assert!(lid.is_some());
    assert_eq!(platform, "android");
    assert!(events.iter().any(|e| matches!(
        e,
        Event::State {
            state: State::Connecting,
            reason: StateReason::RestartRequired
        }
    )));
    let seen = states(&world, client);
    let tail: Vec<&State> = seen.iter().rev().take(4).collect();
    assert_eq!(
        tail,
        [
            &State::Connected,
            &State::LoggingIn,
            &State::Handshaking,
            &State::Connecting
        ]
    );
    assert_eq!(world.clients[client].client.jid(), Some(&jid));
}

/// The server's `515` after pairing leaves the close to the client (WhatsApp's way), or, as a
/// fault, closes at once; either way the client reconnects, logs in and ends connected with one
/// companion on the server.
#[test]
fn the_515_after_pairing_is_followed_with_or_without_the_server_closing() {
    for abrupt in [false, true] {
        let mut world = world(40 + u64::from(abrupt));
        world.server.set_abrupt_restart(abrupt);
        let client = world.add_client(config());
        assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
        let qr = world.clients[client].qrs().last().unwrap().clone();
        let now = world.now;
        world.server.phone_scan_qr(now, PHONE, &qr).unwrap();
        assert!(
            world.run_until(T0 + 30_000, |w| w.client_state(client)
                == Some(&State::Connected)),
            "abrupt: {abrupt}"
        );
        assert!(world.clients[client].events.iter().any(|e| matches!(
            e,
            Event::State {
                reason: StateReason::RestartRequired,
                ..
            }
        )));
        assert_eq!(world.server.account(PHONE).unwrap().devices.len(), 2);
        assert_eq!(
            world.server.connections().len(),
            1,
            "the old socket is gone"
        );
    }
}

#[test]
fn qr_refs_rotate_60_then_20_seconds_and_run_out() {
    let mut world = world(2);
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let first_shown = world.now;
    assert!(world.run_until(T0 + 400_000, |w| {
        w.clients[client]
            .events
            .iter()
            .any(|e| matches!(e, Event::QrRefsExhausted))
    }));
    let expiries: Vec<u64> = world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Qr { expires_at, .. } => Some(*expires_at),
            _ => None,
        })
        .collect();
    assert_eq!(expiries.len(), 6);
    let first = expiries[0] - first_shown;
    assert_eq!(first, 60_000);
    for pair in expiries.windows(2) {
        assert_eq!(pair[1] - pair[0], 20_000);
    }
    assert_eq!(world.now, expiries[5]);
    // No code outstanding: the client closes and rests until told to connect again.
    world.run_for(1_000);
    assert_eq!(world.client_state(client), Some(&State::Disconnected));
    let id = world.command(client, Command::Connect).unwrap();
    assert_eq!(
        command_result(&world, client, id),
        Some(Ok(CommandOutput::None))
    );
    let before = world.clients[client].qrs().len();
    assert!(
        world.run_until(world.now + 10_000, |w| w.clients[client].qrs().len()
            > before)
    );
}

#[test]
fn code_pairing_requested_early_waits_and_completes() {
    let mut world = world(3);
    let client = world.add_client(config());
    // Issued before the socket is even open: it waits for pair-device.
    let id = world
        .command(
            client,
            Command::PairWithCode {
                phone: "+1 555 123 4567".into(),
            },
        )
        .unwrap();
    assert!(world.run_until(T0 + 10_000, |w| command_result(w, client, id).is_some()));
    let Some(Ok(CommandOutput::PairingCode(code))) = command_result(&world, client, id) else {
        panic!("{:?}", command_result(&world, client, id));
    };
    assert_eq!(code.len(), 8);
    assert_eq!(world.clients[client].pairing_code(), Some(code.clone()));
    assert_eq!(
        world.client_state(client),
        Some(&State::AwaitingPairing {
            mode: PairingMode::Code
        })
    );
    let now = world.now;
    world.server.phone_enter_code(now, PHONE, &code).unwrap();
    assert!(
        world.run_until(world.now + 30_000, |w| w.client_state(client)
            == Some(&State::Connected))
    );
    assert_eq!(world.clients[client].client.jid().unwrap().user, PHONE);
}

#[test]
fn code_pairing_survives_qr_exhaustion() {
    let mut world = world(4);
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let id = world
        .command(
            client,
            Command::PairWithCode {
                phone: PHONE.into(),
            },
        )
        .unwrap();
    assert!(world.run_until(world.now + 10_000, |w| {
        command_result(w, client, id).is_some()
    }));
    let code = world.clients[client].pairing_code().unwrap();
    // The refs run out after 160 s; the code keeps the socket open.
    world.run_for(170_000);
    assert!(
        world.clients[client]
            .events
            .iter()
            .any(|e| matches!(e, Event::QrRefsExhausted))
    );
    assert!(matches!(
        world.client_state(client),
        Some(State::AwaitingPairing { .. })
    ));
    let now = world.now;
    world.server.phone_enter_code(now, PHONE, &code).unwrap();
    assert!(
        world.run_until(world.now + 30_000, |w| w.client_state(client)
            == Some(&State::Connected))
    );
}

#[test]
fn code_pairing_failures_are_typed() {
    // Invalid numbers, locally.
    let mut world = world(5);
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    for phone in ["0155512345", "12345", "+1 555 abc", "1234567890123456"] {
        let id = world
            .command(
                client,
                Command::PairWithCode {
                    phone: phone.into(),
                },
            )
            .unwrap();
        assert_eq!(
            command_result(&world, client, id),
            Some(Err(CommandError::InvalidPhoneNumber)),
            "{phone}"
        );
    }
    // Rejected by the server with its code.
    world.server.fail_next_link_code(400);
    let id = world
        .command(
            client,
            Command::PairWithCode {
                phone: PHONE.into(),
            },
        )
        .unwrap();
    assert!(world.run_until(world.now + 10_000, |w| {
        command_result(w, client, id).is_some()
    }));
    assert!(matches!(
        command_result(&world, client, id),
        Some(Err(CommandError::Rejected { code: 400, .. }))
    ));
    assert!(world.clients[client].pairing_code().is_none());
    // Rate limited.
    world.server.fail_next_link_code(429);
    let id = world
        .command(
            client,
            Command::PairWithCode {
                phone: PHONE.into(),
            },
        )
        .unwrap();
    assert!(world.run_until(world.now + 10_000, |w| {
        command_result(w, client, id).is_some()
    }));
    assert!(matches!(
        command_result(&world, client, id),
        Some(Err(CommandError::RateLimited { .. }))
    ));
    // One code per connection.
    let id = world
        .command(
            client,
            Command::PairWithCode {
                phone: PHONE.into(),
            },
        )
        .unwrap();
    let again = world
        .command(
            client,
            Command::PairWithCode {
                phone: PHONE.into(),
            },
        )
        .unwrap();
    assert_eq!(
        command_result(&world, client, again),
        Some(Err(CommandError::PairingCodeOutstanding))
    );
    assert!(world.run_until(world.now + 10_000, |w| {
        command_result(w, client, id).is_some()
    }));
    assert!(matches!(
        command_result(&world, client, id),
        Some(Ok(CommandOutput::PairingCode(_)))
    ));
    // Pair by QR, then a code request is refused.
    let qr = world.clients[client].qrs().last().unwrap().clone();
    let now = world.now;
    world.server.phone_scan_qr(now, PHONE, &qr).unwrap();
    assert!(
        world.run_until(world.now + 30_000, |w| w.client_state(client)
            == Some(&State::Connected))
    );
    let id = world
        .command(
            client,
            Command::PairWithCode {
                phone: PHONE.into(),
            },
        )
        .unwrap();
    assert_eq!(
        command_result(&world, client, id),
        Some(Err(CommandError::AlreadyPaired))
    );
}

#[test]
fn companion_reg_refresh_renews_the_secret_and_the_new_qr_pairs() {
    let mut world = world(6);
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let old = world.clients[client].qrs().last().unwrap().clone();
    let conn = world.server.unpaired_conns()[0];
    let now = world.now;
    world.server.send_companion_reg_refresh(now, conn).unwrap();
    assert!(world.run_until(world.now + 5_000, |w| w.clients[client].qrs().len() == 2));
    let new = world.clients[client].qrs().last().unwrap().clone();
    let fields = |qr: &str| qr.split(',').map(str::to_owned).collect::<Vec<_>>();
    let (old, new) = (fields(&old), fields(&new));
    assert_eq!(old[0], new[0], "same ref");
    assert_ne!(old[3], new[3], "new adv secret");
    let now = world.now;
    world
        .server
        .phone_scan_qr(now, PHONE, &new.join(","))
        .unwrap();
    assert!(
        world.run_until(world.now + 30_000, |w| w.client_state(client)
            == Some(&State::Connected))
    );
}

#[test]
fn a_code_request_cut_by_a_network_loss_ends_not_connected() {
    let mut world = world(7);
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let id = world
        .command(
            client,
            Command::PairWithCode {
                phone: PHONE.into(),
            },
        )
        .unwrap();
    // The companion_hello is on the wire; the link breaks before the answer.
    world.drop_connection(client);
    world.run_for(10);
    assert_eq!(
        command_result(&world, client, id),
        Some(Err(CommandError::NotConnected))
    );
    let done = world.clients[client]
        .events
        .iter()
        .filter(|e| matches!(e, Event::CommandDone { id: d, .. } if *d == id))
        .count();
    assert_eq!(done, 1);
    assert!(world.clients[client].pairing_code().is_none());
    // After the reconnect a new request works.
    assert!(world.run_until(world.now + 30_000, |w| matches!(
        w.client_state(client),
        Some(State::AwaitingPairing { .. })
    )));
    let id = world
        .command(
            client,
            Command::PairWithCode {
                phone: PHONE.into(),
            },
        )
        .unwrap();
    assert!(world.run_until(world.now + 10_000, |w| {
        command_result(w, client, id).is_some()
    }));
    assert!(matches!(
        command_result(&world, client, id),
        Some(Ok(CommandOutput::PairingCode(_)))
    ));
}

#[test]
fn an_unused_code_keeps_the_socket_only_until_it_expires() {
    let mut world = world(8);
    let client = world.add_client(config());
    assert!(world.run_until(T0 + 10_000, |w| !w.clients[client].qrs().is_empty()));
    let offered = world.now;
    world.run_for(100_000);
    let id = world
        .command(
            client,
            Command::PairWithCode {
                phone: PHONE.into(),
            },
        )
        .unwrap();
    assert!(world.run_until(world.now + 10_000, |w| {
        command_result(w, client, id).is_some()
    }));
    let requested = world.now;
    // The refs run out at 160 s; the code (made at ~100 s) holds the socket until 180 s later.
    assert!(world.run_until(offered + 170_000, |w| {
        w.clients[client]
            .events
            .iter()
            .any(|e| matches!(e, Event::QrRefsExhausted))
    }));
    assert!(matches!(
        world.client_state(client),
        Some(State::AwaitingPairing { .. })
    ));
    assert!(
        world.run_until(requested + 200_000, |w| w.client_state(client)
            == Some(&State::Disconnected))
    );
    assert!(
        world.now >= requested + 180_000,
        "{}",
        world.now - requested
    );
    assert!(world.clients[client].events.iter().any(|e| matches!(
        e,
        Event::State {
            state: State::Disconnected,
            reason: StateReason::Closed(walink_core::client::CloseReason::QrRefsExhausted)
        }
    )));
}
