//! Noise benchmarks: the client's CPU cost of one complete handshake (ClientHello, ServerHello
//! with certificate chain verification, ClientFinish, split), and transport encrypt+decrypt
//! throughput for 200-byte and 64 KiB frames.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use walink_core::noise::{ClientHandshake, EphemeralKey, NoiseKeyPair, TransportCipher, TrustRoot};

/// Root key and ServerHello produced by walink-sim's responder for client ephemeral 0x11..,
/// kept current by walink-sim's `bench_fixture_is_current` test.
const FIXTURE: &str = include_str!("noise_server_hello.hex");
/// A time inside the fixture chain's validity (2027).
const NOW_MS: u64 = 1_800_000_000_000;

fn handshake(c: &mut Criterion) {
    let mut lines = FIXTURE.lines();
    let root_key: [u8; 32] = hex::decode(lines.next().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let root = TrustRoot {
        public_key: root_key,
        serial: 0,
    };
    let server_hello = hex::decode(lines.next().unwrap()).unwrap();
    let noise_key = NoiseKeyPair::from_private([0x22; 32]);
    let payload = vec![0x5a; 180];
    c.bench_function("noise/client_handshake", |b| {
        b.iter(|| {
            let (client, hello) =
                ClientHandshake::start(EphemeralKey::from_private([0x11; 32]), root);
            let done = client
                .finish(black_box(&server_hello), &noise_key, &payload, NOW_MS)
                .unwrap();
            black_box((hello, done.client_finish))
        })
    });
}

fn transport(c: &mut Criterion) {
    let mut group = c.benchmark_group("noise/transport_encrypt_decrypt");
    for size in [200usize, 64 * 1024] {
        let plaintext = vec![0xa5; size];
        let mut client = TransportCipher::new(&[1; 32], &[2; 32]);
        let mut server = TransportCipher::new(&[2; 32], &[1; 32]);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("{size}B"), |b| {
            b.iter(|| {
                let frame = client.encrypt(black_box(&plaintext)).unwrap();
                black_box(server.decrypt(&frame).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, handshake, transport);
criterion_main!(benches);
