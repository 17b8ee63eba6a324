//! Tests of the whole client against scripted server nodes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::noise::payload::{ClientProfile, WebVersion};

fn config(seed: u8) -> Config {
    Config {
        unsafe_test_rng_seed: Some([seed; 32]),
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

fn drain(client: &mut Client) -> Vec<Output> {
    core::iter::from_fn(|| client.poll_output()).collect()
}

#[test]
fn a_fresh_client_persists_its_device_then_connects() {
    let mut client = Client::new(config(1), Vec::new()).unwrap();
    let outputs = drain(&mut client);
    assert!(matches!(outputs.first(), Some(Output::Persist(_))));
    assert!(outputs.iter().any(|o| matches!(
        o,
        Output::Event(Event::State {
            state: State::Connecting,
            reason: StateReason::Started
        })
    )));
    assert_eq!(outputs.last(), Some(&Output::Connect));
    // The connect deadline is armed by the first input, which brings the time.
    assert_eq!(client.poll_timeout(), None);
    client.handle_timeout(1_000_000);
    assert_eq!(
        client.poll_timeout(),
        Some(1_000_000 + crate::limits::CLIENT_CONNECT_TIMEOUT_MS)
    );
    assert_eq!(client.state(), &State::Connecting);
}

fn done(outputs: &[Output], id: CommandId) -> Option<Result<CommandOutput, CommandError>> {
    outputs.iter().find_map(|o| match o {
        Output::Event(Event::CommandDone { id: done, result }) if *done == id => {
            Some(result.clone())
        }
        _ => None,
    })
}

fn states(outputs: &[Output]) -> Vec<(State, StateReason)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::State { state, reason }) => Some((state.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

const T: Timestamp = 1_780_000_000_000;

#[test]
fn a_socket_that_never_opens_backs_off_and_retries() {
    let mut client = Client::new(config(2), Vec::new()).unwrap();
    drain(&mut client);
    client.handle_timeout(T);
    let deadline = client.poll_timeout().unwrap();
    assert_eq!(deadline, T + 20_000);
    client.handle_timeout(deadline);
    let outputs = drain(&mut client);
    assert!(outputs.contains(&Output::Close(CloseReason::ConnectTimeout)));
    let [
        (State::Reconnecting { attempt: 1, at }, StateReason::Closed(CloseReason::ConnectTimeout)),
    ] = states(&outputs)[..]
    else {
        panic!("{outputs:?}");
    };
    assert!((deadline + 900..=deadline + 1_100).contains(&at));
    assert_eq!(client.poll_timeout(), Some(at));
    client.handle_timeout(at);
    let outputs = drain(&mut client);
    assert_eq!(
        states(&outputs),
        [(State::Connecting, StateReason::BackoffElapsed)]
    );
    assert_eq!(outputs.last(), Some(&Output::Connect));
    // The host cannot open it: Network, attempt 2.
    client.handle_closed(at + 5, CloseReason::Network);
    let outputs = drain(&mut client);
    assert!(matches!(
        states(&outputs)[..],
        [(
            State::Reconnecting { attempt: 2, .. },
            StateReason::Closed(CloseReason::Network)
        )]
    ));
    // The host's own close is not echoed back.
    assert!(!outputs.iter().any(|o| matches!(o, Output::Close(_))));
}

#[test]
fn handle_connected_sends_the_header_and_client_hello() {
    let mut client = Client::new(config(3), Vec::new()).unwrap();
    drain(&mut client);
    client.handle_connected(T);
    let outputs = drain(&mut client);
    assert_eq!(
        states(&outputs),
        [(State::Handshaking, StateReason::SocketOpened)]
    );
    let Some(Output::Transmit(bytes)) = outputs.first() else {
        panic!("{outputs:?}");
    };
    assert_eq!(&bytes[..4], b"WA\x06\x03");
    // 3-byte length, then a HandshakeMessage with a 32-byte ephemeral: 36 bytes.
    assert_eq!(&bytes[4..7], &[0, 0, 36]);
    assert_eq!(bytes.len(), 4 + 3 + 36);
    // A second, spurious handle_connected does nothing.
    client.handle_connected(T + 1);
    assert!(drain(&mut client).is_empty());
}

#[test]
fn garbage_from_the_server_closes_with_a_protocol_reason() {
    let mut client = Client::new(config(4), Vec::new()).unwrap();
    drain(&mut client);
    client.handle_connected(T);
    drain(&mut client);
    client.handle_bytes(T + 10, &[0, 0, 5, 1, 2, 3, 4, 5]);
    let outputs = drain(&mut client);
    assert!(outputs.iter().any(|o| matches!(
        o,
        Output::Close(CloseReason::Protocol(ProtocolError::Handshake(_)))
    )));
    assert!(matches!(
        states(&outputs)[..],
        [(
            State::Reconnecting { attempt: 1, .. },
            StateReason::Closed(CloseReason::Protocol(_))
        )]
    ));
    // Bytes after the close are ignored.
    client.handle_bytes(T + 11, &[0, 0, 1, 0]);
    assert!(drain(&mut client).is_empty());
}

#[test]
fn a_code_request_waits_for_a_connection_then_times_out() {
    let mut client = Client::new(config(5), Vec::new()).unwrap();
    drain(&mut client);
    let id = client.command(
        T,
        Command::PairWithCode {
            phone: "+44 20 7946 0958".into(),
        },
    );
    assert_eq!(done(&drain(&mut client), id), None);
    // The connection attempt fails and backs off; the request keeps waiting...
    client.handle_timeout(T + 20_000);
    assert_eq!(done(&drain(&mut client), id), None);
    // ...until its own deadline.
    let mut now = T + 20_000;
    let mut outputs = Vec::new();
    while now < T + 61_000 {
        now = client.poll_timeout().unwrap().max(now);
        client.handle_timeout(now);
        if client.state() == &State::Connecting {
            client.handle_closed(now, CloseReason::Network);
        }
        outputs.extend(drain(&mut client));
        if done(&outputs, id).is_some() {
            break;
        }
    }
    assert_eq!(done(&outputs, id), Some(Err(CommandError::TimedOut)));
    assert!(now >= T + 60_000);
}

#[test]
fn commands_fail_typed_when_they_cannot_run() {
    let mut client = Client::new(config(6), Vec::new()).unwrap();
    drain(&mut client);
    for phone in ["123", "0123456789", "+1 (555) x", "1234567890123456"] {
        let id = client.command(
            T,
            Command::PairWithCode {
                phone: phone.into(),
            },
        );
        assert_eq!(
            done(&drain(&mut client), id),
            Some(Err(CommandError::InvalidPhoneNumber)),
            "{phone}"
        );
    }
    let id = client.command(T, Command::Connect);
    assert_eq!(
        done(&drain(&mut client), id),
        Some(Err(CommandError::InvalidState))
    );
    let id = client.command(
        T,
        Command::SendText {
            to: "1@s.whatsapp.net".into(),
            text: "hi".into(),
        },
    );
    assert!(matches!(done(&drain(&mut client), id), Some(Err(_))));
    // Disconnect: rests, no timer, a code request can no longer wait.
    let id = client.command(T, Command::Disconnect);
    let outputs = drain(&mut client);
    assert_eq!(done(&outputs, id), Some(Ok(CommandOutput::None)));
    assert!(outputs.contains(&Output::Close(CloseReason::Local)));
    assert_eq!(client.state(), &State::Disconnected);
    assert_eq!(client.poll_timeout(), None);
    let id = client.command(
        T,
        Command::PairWithCode {
            phone: "15551234567".into(),
        },
    );
    assert_eq!(
        done(&drain(&mut client), id),
        Some(Err(CommandError::NotConnected))
    );
    let id = client.command(T, Command::Connect);
    let outputs = drain(&mut client);
    assert_eq!(done(&outputs, id), Some(Ok(CommandOutput::None)));
    assert!(outputs.contains(&Output::Connect));
    // Logout of an unpaired, unconnected device forgets it locally.
    client.handle_closed(T + 1, CloseReason::Network);
    let id = client.command(T + 2, Command::Logout);
    let outputs = drain(&mut client);
    assert_eq!(done(&outputs, id), Some(Ok(CommandOutput::None)));
    assert!(outputs.iter().any(|o| matches!(
        o,
        Output::Persist(batch) if batch.changes == [crate::store::Change::DeleteAll]
    )));
    assert_eq!(client.state(), &State::LoggedOut);
    let id = client.command(T + 3, Command::Logout);
    assert_eq!(
        done(&drain(&mut client), id),
        Some(Err(CommandError::NotPaired))
    );
    // Connect after LoggedOut starts over with a new device.
    let id = client.command(T + 4, Command::Connect);
    let outputs = drain(&mut client);
    assert_eq!(done(&outputs, id), Some(Ok(CommandOutput::None)));
    assert!(matches!(outputs.first(), Some(Output::Persist(_))));
}

#[test]
fn restore_refuses_bad_records_with_typed_errors() {
    use crate::store::{Record, RestoreError, Space};
    let mut client = Client::new(config(7), Vec::new()).unwrap();
    let Some(Output::Persist(batch)) = client.poll_output() else {
        panic!()
    };
    let records: Vec<Record> = batch
        .changes
        .iter()
        .filter_map(|c| match c {
            crate::store::Change::Put(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    // The records restore.
    let mut restored = Client::new(config(8), records.clone()).unwrap();
    let outputs = drain(&mut restored);
    assert!(!outputs.iter().any(|o| matches!(o, Output::Persist(_))));
    assert!(outputs.contains(&Output::Connect));
    // Twice the same record.
    let mut twice = records.clone();
    twice.push(records[0].clone());
    assert!(matches!(
        Client::new(config(8), twice),
        Err(RestoreError::Duplicate { .. })
    ));
    // Records without the device.
    let orphans: Vec<Record> = records
        .iter()
        .filter(|r| r.space != Space::Device)
        .cloned()
        .collect();
    assert_eq!(
        Client::new(config(8), orphans).err(),
        Some(RestoreError::MissingDevice)
    );
    // A corrupted device record.
    let mut corrupt = records.clone();
    for record in &mut corrupt {
        if record.space == Space::Device {
            record.value.truncate(record.value.len() / 2);
        }
    }
    assert!(Client::new(config(8), corrupt).is_err());
    // Outbox records: garbage, a stanza of another id, a newer format.
    let outbox = |value: Vec<u8>| {
        let mut with = records.clone();
        with.push(Record {
            space: Space::Outbox,
            key: "3EB0AAAAAAAAAAAAAAAAAA".into(),
            value,
        });
        Client::new(config(8), with).err()
    };
    assert!(matches!(
        outbox(vec![0xff, 0xff]),
        Some(RestoreError::Malformed {
            space: Space::Outbox,
            ..
        })
    ));
    let stanza = |id: &str, version: u32| {
        prost::Message::encode_to_vec(&crate::proto::walink::OutboxRecord {
            format_version: Some(version),
            stanza: Some(crate::binary::encode(
                &crate::binary::Node::new("message").attr("id", id.to_owned()),
            )),
            attempts: Some(1),
            sequence: Some(0),
        })
    };
    assert!(matches!(
        outbox(stanza("3EB0BBBBBBBBBBBBBBBBBB", 1)),
        Some(RestoreError::BadField {
            field: "stanza",
            ..
        })
    ));
    assert!(matches!(
        outbox(stanza("3EB0AAAAAAAAAAAAAAAAAA", 9)),
        Some(RestoreError::UnsupportedVersion { version: 9, .. })
    ));
    assert_eq!(outbox(stanza("3EB0AAAAAAAAAAAAAAAAAA", 1)), None);
    // A bad prekey key.
    let mut bad_key = records;
    bad_key.push(Record {
        space: Space::PreKey,
        key: "x".into(),
        value: vec![],
    });
    assert!(matches!(
        Client::new(config(8), bad_key),
        Err(RestoreError::BadKey { .. })
    ));
}

proptest::proptest! {
    /// Any bytes from the network, in any chunking, at any time: no panic, and either nothing
    /// happens (an incomplete frame) or the connection closes with a reason and a retry is set.
    #[test]
    fn random_bytes_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 1..6),
        connect_first in proptest::bool::ANY,
    ) {
        let mut client = Client::new(config(9), Vec::new()).unwrap();
        drain(&mut client);
        if connect_first {
            client.handle_connected(T);
        }
        let mut outputs = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            client.handle_bytes(T + i as u64, chunk);
            outputs.extend(drain(&mut client));
        }
        for output in &outputs {
            if let Output::Close(reason) = output {
                let protocol = matches!(reason, CloseReason::Protocol(_));
                let retrying = matches!(client.state(), State::Reconnecting { .. });
                proptest::prop_assert!(protocol, "{:?}", reason);
                proptest::prop_assert!(retrying, "{:?}", client.state());
            }
        }
        client.handle_timeout(T + 10_000_000);
        drain(&mut client);
    }
}

/// Two clients of one device whose generators are in the same state, seeded from the operating
/// system (no `unsafe_test_rng_seed`).
fn twins_in_one_state() -> (Client, Client) {
    let mut first = Client::new(config(9), Vec::new()).unwrap();
    let records: Vec<crate::store::Record> = drain(&mut first)
        .into_iter()
        .filter_map(|o| match o {
            Output::Persist(batch) => Some(batch.changes),
            _ => None,
        })
        .flatten()
        .filter_map(|c| match c {
            crate::store::Change::Put(r) => Some(r),
            _ => None,
        })
        .collect();
    let os_seeded = |records| {
        let mut client = Client::new(
            Config {
                unsafe_test_rng_seed: None,
                ..config(9)
            },
            records,
        )
        .unwrap();
        drain(&mut client);
        // The state an attacker who read the generator once would know.
        client.rng = Rng::from_seed([0x5a; 32]);
        client
    };
    (os_seeded(records.clone()), os_seeded(records))
}

fn transmitted(outputs: &[Output]) -> Vec<Vec<u8>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn every_login_reseeds_the_generator_from_the_operating_system() {
    // Knowing the generator's state before a login must not give the handshake's ephemeral key
    // (the ClientHello): each connection mixes fresh entropy in first.
    let (mut a, mut b) = twins_in_one_state();
    a.handle_connected(T);
    b.handle_connected(T);
    let (hello_a, hello_b) = (transmitted(&drain(&mut a)), transmitted(&drain(&mut b)));
    assert!(!hello_a.is_empty());
    assert_ne!(
        hello_a, hello_b,
        "the same state gave the same ephemeral key"
    );
}

#[test]
fn the_generator_is_reseeded_on_a_schedule() {
    let (mut a, mut b) = twins_in_one_state();
    a.handle_timeout(T);
    b.handle_timeout(T);
    let start = (a.rng.bytes::<32>(), b.rng.bytes::<32>());
    assert_eq!(start.0, start.1, "no reseed before its time");
    let later = T + crate::limits::CLIENT_RNG_RESEED_MS;
    a.handle_timeout(later);
    b.handle_timeout(later);
    assert_ne!(a.rng.bytes::<32>(), b.rng.bytes::<32>());
}

#[test]
fn a_seeded_client_stays_reproducible() {
    let run = || {
        let mut client = Client::new(config(4), Vec::new()).unwrap();
        let mut outputs = drain(&mut client);
        client.handle_connected(T);
        client.handle_timeout(T + 3 * crate::limits::CLIENT_RNG_RESEED_MS);
        outputs.extend(drain(&mut client));
        (transmitted(&outputs), client.rng.bytes::<32>())
    };
    assert_eq!(run(), run());
}

#[test]
fn a_trust_root_that_cannot_check_signatures_is_refused() {
    use crate::store::RestoreError;
    let mut small_order = [0u8; 32];
    small_order[0] = 1;
    for public_key in [[0u8; 32], small_order] {
        let config = Config {
            trust_root: crate::noise::TrustRoot {
                public_key,
                serial: 0,
            },
            ..config(3)
        };
        assert!(matches!(
            Client::new(config, Vec::new()),
            Err(RestoreError::InvalidConfig(ConfigError {
                option: "trust_root",
                ..
            }))
        ));
    }
    assert!(Client::new(config(3), Vec::new()).is_ok());
}
