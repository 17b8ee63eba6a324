//! Signal layer speed: X3DH set-up, 200-byte encrypt and decrypt, first-message (pkmsg)
//! decrypt, sender-key encrypt and decrypt. Run with `cargo bench -p walink-core --bench signal`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, criterion_group, criterion_main};
use walink_core::signal::{
    IdentityKeyPair, KeyPair, PreKey, PreKeyBundle, PreKeyId, PreKeySource, SenderKeyRecord,
    SessionRecord, SignedPreKey, SignedPreKeyId,
};

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

/// SplitMix64; speed matters here, not secrecy.
struct BenchRng(u64);

impl rand_core::TryRng for BenchRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let word = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for BenchRng {}

struct Bob {
    identity: IdentityKeyPair,
    signed: SignedPreKey,
    one_time: Vec<PreKey>,
}

impl PreKeySource for Bob {
    fn signed_pre_key(&self, id: SignedPreKeyId) -> Option<KeyPair> {
        (id == self.signed.id).then(|| self.signed.key_pair.clone())
    }
    fn pre_key(&self, id: PreKeyId) -> Option<KeyPair> {
        self.one_time
            .get(id.0 as usize)
            .map(|key| key.key_pair.clone())
    }
}

impl Bob {
    fn new(rng: &mut BenchRng, one_time: u32) -> Bob {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKey::generate(SignedPreKeyId(1), &identity, rng);
        let one_time = (0..one_time)
            .map(|id| PreKey::generate(PreKeyId(id), rng))
            .collect();
        Bob {
            identity,
            signed,
            one_time,
        }
    }

    fn bundle(&self, one_time: u32) -> PreKeyBundle {
        PreKeyBundle {
            registration_id: 2,
            identity_key: self.identity.identity_key(),
            signed_pre_key_id: self.signed.id,
            signed_pre_key: self.signed.key_pair.public,
            signed_pre_key_signature: self.signed.signature,
            pre_key: self
                .one_time
                .get(one_time as usize)
                .map(|key| (key.id, key.key_pair.public)),
        }
    }
}

/// An established pair of records (Bob has answered).
fn established(rng: &mut BenchRng) -> (SessionRecord, SessionRecord) {
    let alice_identity = IdentityKeyPair::generate(rng);
    let bob = Bob::new(rng, 1);
    let mut alice = SessionRecord::new();
    alice
        .process_bundle(&bob.bundle(0), &alice_identity, 1, rng)
        .unwrap();
    let first = alice.encrypt(b"hello").unwrap();
    let mut bob_record = SessionRecord::new();
    bob_record
        .decrypt_pre_key_message(first.serialize(), &bob.identity, 2, &bob, rng)
        .unwrap();
    let reply = bob_record.encrypt(b"hi").unwrap();
    alice.decrypt_message(reply.serialize(), rng).unwrap();
    (alice, bob_record)
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
    targets = sessions, sender_keys
}
criterion_main!(benches);
