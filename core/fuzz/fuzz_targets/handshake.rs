//! Fuzzes the client handshake state machine and the transport cipher: arbitrary bytes as a
//! ServerHello (with the benchmark's real ServerHello as the natural seed), as a certificate
//! chain, and as a stream of transport frames. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walink_core::noise::{
    ClientHandshake, EphemeralKey, NoiseKeyPair, TransportCipher, TrustRoot, verify_chain,
};

const FIXTURE: &str = include_str!("../../benches/noise_server_hello.hex");
const NOW_MS: u64 = 1_800_000_000_000;

fn root() -> TrustRoot {
    let key = FIXTURE
        .lines()
        .next()
        .and_then(|line| hex::decode(line).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .unwrap_or_default();
    TrustRoot {
        public_key: key,
        serial: 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    let (client, _) = ClientHandshake::start(EphemeralKey::from_private([0x11; 32]), root);
    let noise_key = NoiseKeyPair::from_private([0x22; 32]);
    if let Ok(done) = client.finish(data, &noise_key, b"", NOW_MS) {
        let mut transport = done.transport;
        let _ = transport.decrypt(data);
    }
    let _ = verify_chain(data, &root, &[0x42; 32], NOW_MS);
    let mut transport = TransportCipher::new(&[1; 32], &[2; 32]);
    for frame in data.chunks(48) {
        let _ = transport.decrypt(frame);
    }
});
