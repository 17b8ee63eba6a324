//! Tests of the whole client against scripted server nodes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::noise::payload::{ClientProfile, WebVersion};

fn config(seed: u8) -> Config {
    Config {
        rng_seed: Some([seed; 32]),
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
