//! Signal layer speed: X3DH set-up, 200-byte encrypt and decrypt, first-message (pkmsg)
//! decrypt, sender-key encrypt and decrypt. Run with `cargo bench -p walink-core --bench signal`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, criterion_group, criterion_main};
use walink_core::signal::testing::{self, BenchRng, Bob};
use walink_core::signal::{IdentityKeyPair, SenderKeyRecord, SessionRecord};

/// Measures the benchmark thread's CPU time rather than wall time: the machine the numbers are
/// taken on is shared, and wall time there counts other processes' work.
struct ThreadCpu {
    wall: WallTime,
}

impl Measurement for ThreadCpu {
    type Intermediate = ThreadTime;
    type Value = Duration;
    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, start: ThreadTime) -> Duration {
        start.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

type Bench = Criterion<ThreadCpu>;

fn criterion() -> Bench {
    Criterion::default().with_measurement(ThreadCpu { wall: WallTime })
}

/// An established pair of records (Bob has answered).
fn established(rng: &mut BenchRng) -> (SessionRecord, SessionRecord) {
    let alice_identity = IdentityKeyPair::generate(rng);
    testing::established(rng, &alice_identity).unwrap()
}

fn sessions(c: &mut Bench) {
    let mut rng = BenchRng(1);
    let plaintext = [0x42u8; 200];

    let alice_identity = IdentityKeyPair::generate(&mut rng);
    let bob = Bob::new(&mut rng, 1);
    let bundle = bob.bundle(0);
    c.bench_function("x3dh session setup (process bundle)", |b| {
        b.iter(|| {
            let mut record = SessionRecord::new();
            record
                .process_bundle(black_box(&bundle), &alice_identity, 1, &mut rng)
                .unwrap();
            record
        })
    });

    let (mut alice, _) = established(&mut rng);
    c.bench_function("encrypt 200 bytes", |b| {
        b.iter(|| alice.encrypt(black_box(&plaintext)).unwrap())
    });

    // A fresh pair: the encrypt run above moved Alice's chain far beyond Bob's.
    let (mut alice, mut bob_record) = established(&mut rng);
    c.bench_function("decrypt 200 bytes", |b| {
        b.iter_custom(|iters| {
            let messages: Vec<_> = (0..iters)
                .map(|_| alice.encrypt(&plaintext).unwrap())
                .collect();
            let start = ThreadTime::now();
            for message in &messages {
                black_box(
                    bob_record
                        .decrypt_message(message.serialize(), &mut rng)
                        .unwrap(),
                );
            }
            start.elapsed()
        })
    });

    c.bench_function("decrypt 200 bytes with record load and store", |b| {
        b.iter_custom(|iters| {
            let messages: Vec<_> = (0..iters)
                .map(|_| alice.encrypt(&plaintext).unwrap())
                .collect();
            let mut stored = bob_record.serialize();
            let start = ThreadTime::now();
            for message in &messages {
                let mut record = SessionRecord::deserialize(&stored).unwrap();
                black_box(
                    record
                        .decrypt_message(message.serialize(), &mut rng)
                        .unwrap(),
                );
                stored = record.serialize();
            }
            let elapsed = start.elapsed();
            bob_record = SessionRecord::deserialize(&stored).unwrap();
            elapsed
        })
    });

    let stored = bob_record.serialize();
    println!("stored session record: {} bytes", stored.len());
    c.bench_function("session record load and store", |b| {
        b.iter(|| {
            SessionRecord::deserialize(black_box(&stored))
                .unwrap()
                .serialize()
        })
    });

    c.bench_function("pkmsg decrypt (first message, one-time prekey)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            // Bobs with 256 one-time prekeys each, so prekey generation stays outside timing.
            let mut done = 0u64;
            while done < iters {
                let batch = (iters - done).min(256) as u32;
                let bob = Bob::new(&mut rng, batch);
                let firsts: Vec<_> = (0..batch)
                    .map(|i| {
                        let mut alice = SessionRecord::new();
                        alice
                            .process_bundle(&bob.bundle(i), &alice_identity, 1, &mut rng)
                            .unwrap();
                        alice.encrypt(&plaintext).unwrap()
                    })
                    .collect();
                let start = ThreadTime::now();
                for first in &firsts {
                    let mut record = SessionRecord::new();
                    black_box(
                        record
                            .decrypt_pre_key_message(
                                first.serialize(),
                                &bob.identity,
                                2,
                                &bob,
                                &mut rng,
                            )
                            .unwrap(),
                    );
                }
                total += start.elapsed();
                done += u64::from(batch);
            }
            total
        })
    });
}

/// A forged message from a contact: a ratchet key no session knows and a counter just under
/// the forward limit, against a record with every archived slot filled (41 sessions). The
/// record is left unchanged, so every iteration does the same work.
fn forged(c: &mut Bench) {
    use walink_core::limits::{SIGNAL_ARCHIVED_SESSIONS, SIGNAL_MAX_FORWARD_JUMP};
    let mut rng = BenchRng(3);
    let alice_identity = IdentityKeyPair::generate(&mut rng);
    let sessions = SIGNAL_ARCHIVED_SESSIONS as u32 + 1;
    let bob = Bob::new(&mut rng, sessions);
    let mut record = SessionRecord::new();
    for i in 0..sessions {
        let mut alice = SessionRecord::new();
        alice
            .process_bundle(&bob.bundle(i), &alice_identity, 1, &mut rng)
            .unwrap();
        let first = alice.encrypt(b"hello").unwrap();
        record
            .decrypt_pre_key_message(first.serialize(), &bob.identity, 2, &bob, &mut rng)
            .unwrap();
    }
    let (mut mallory, _) = established(&mut rng);
    let mut message = mallory.encrypt(b"x").unwrap();
    for _ in 1..SIGNAL_MAX_FORWARD_JUMP {
        message = mallory.encrypt(b"x").unwrap();
    }
    c.bench_function("forged message against 41 sessions (counter 1999)", |b| {
        b.iter(|| {
            record
                .decrypt_message(black_box(message.serialize()), &mut rng)
                .unwrap_err()
        })
    });
}

fn sender_keys(c: &mut Bench) {
    let mut rng = BenchRng(2);
    let plaintext = [0x42u8; 200];
    let mut own = SenderKeyRecord::new();
    let distribution = own.create_distribution_message(&mut rng);
    let mut member = SenderKeyRecord::new();
    member.process_distribution_message(&distribution);

    c.bench_function("sender-key encrypt 200 bytes", |b| {
        b.iter(|| own.encrypt(black_box(&plaintext), &mut rng).unwrap())
    });
    // Start the member at the sender's current iteration.
    let distribution = own.create_distribution_message(&mut rng);
    let mut member_now = SenderKeyRecord::new();
    member_now.process_distribution_message(&distribution);
    member = member_now;
    c.bench_function("sender-key decrypt 200 bytes", |b| {
        b.iter_custom(|iters| {
            let messages: Vec<_> = (0..iters)
                .map(|_| own.encrypt(&plaintext, &mut rng).unwrap())
                .collect();
            let start = ThreadTime::now();
            for message in &messages {
                black_box(member.decrypt(message).unwrap());
            }
            start.elapsed()
        })
    });
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = sessions, forged, sender_keys
}
criterion_main!(benches);
