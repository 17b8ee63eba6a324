//! Shared pieces of the tests in which walink-sim's server attacks a walink client's device
//! lists and groups: linking walink clients, sending and waiting, and reading what every kind
//! of device got.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use walink_core::client::{Command, CommandError, CommandOutput, Config, Event};
use walink_core::noise::payload::{ClientProfile, WebVersion};
use walink_sim::noise_server::ChainSpec;
use walink_sim::sim::World;

pub const T0: u64 = 1_780_000_000_000;
pub const ALICE: &str = "15551234567";
pub const BOB: &str = "15557654321";
pub const CAROL: &str = "15550001111";
pub const DAVE: &str = "15550002222";

/// Clients keep two messaging records in memory: every record (device lists and sender-key
/// holders included) is evicted and loaded again around nearly every message.
pub fn config() -> Config {
    Config {
        trust_root: ChainSpec::default().trust_root(),
        record_cache_limit: 2,
        ..Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_023_456_789),
            "walink",
        ))
    }
}

/// Links one more walink client to `account` by QR.
pub fn link(world: &mut World, account: &str) -> usize {
    world
        .link_by_qr(config(), account)
        .unwrap_or_else(|| panic!("{account} links by QR"))
}

/// Sends `text` from `client` to `to` and runs until the command ends (and a little more, so
/// that what it sent is delivered).
pub fn send(
    world: &mut World,
    client: usize,
    to: &str,
    text: &str,
) -> Result<CommandOutput, CommandError> {
    let command = Command::SendText {
        to: to.to_owned(),
        text: text.to_owned(),
    };
    let result = world.command_and_wait(client, command, 30_000);
    let result = result.unwrap_or_else(|| panic!("the send of {text:?} ends"));
    world.run_for(2_000);
    result
}

/// Sends and expects the server's acknowledgement.
pub fn send_ok(world: &mut World, client: usize, to: &str, text: &str) {
    let result = send(world, client, to, text);
    assert!(
        matches!(result, Ok(CommandOutput::MessageSent { .. })),
        "{text:?}: {result:?}"
    );
}

/// The texts a walink client reported, in order.
pub fn client_texts(world: &World, client: usize) -> Vec<String> {
    world.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => m.text.clone(),
            _ => None,
        })
        .collect()
}

/// The texts a phone decrypted, in order.
pub fn phone_texts(world: &World, user: &str) -> Vec<String> {
    world
        .server
        .phone_messages(user)
        .unwrap()
        .iter()
        .filter_map(|m| m.text.clone())
        .collect()
}

/// The texts a companion the simulation plays decrypted, in order.
pub fn companion_texts(world: &World, user: &str, device: u16) -> Vec<String> {
    world
        .server
        .sim_companion_messages(user, device)
        .unwrap()
        .iter()
        .filter_map(|m| m.text.clone())
        .collect()
}

/// How many message stanzas a companion the simulation plays received (read or not).
pub fn companion_received(world: &World, user: &str, device: u16) -> usize {
    world
        .server
        .sim_companion_messages(user, device)
        .unwrap()
        .len()
}

/// Whether the client's store holds a session with `user`'s device `device`, in either the
/// phone-number or the LID form.
pub fn has_session_with(world: &World, client: usize, user: &str, device: u16) -> bool {
    let lid = world.server.account(user).unwrap().lid.clone();
    let keys = [
        format!("{user}.{device}@s.whatsapp.net"),
        format!("{lid}.{device}@lid"),
    ];
    world.clients[client]
        .store
        .keys()
        .any(|(space, key)| space == "session" && keys.contains(key))
}
