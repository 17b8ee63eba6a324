//! Thin exports of walink-core's Signal and Noise layers for the npm benchmarks (cargo feature
//! `bench`; built by `npm/scripts/build-wasm.sh --bench` into `npm/bench/wasm/`, never into the
//! published package).
//!
//! Each function is one protocol operation on state kept in wasm memory, so a benchmark measures
//! the core's speed plus one boundary crossing with its byte copies, and nothing else. The
//! fixtures (SplitMix64 randomness seeded by the caller, Bob's prekeys, an established session,
//! sender-key records) are `walink_core::signal::testing`, shared with the native benches
//! (`core/benches/`).

use std::cell::RefCell;

use walink_core::noise::{ClientHandshake, EphemeralKey, NoiseKeyPair, TransportCipher, TrustRoot};
use walink_core::signal::testing::{
    self, ALICE_REGISTRATION, BOB_REGISTRATION, BenchRng, Bob, sender_keys,
};
use walink_core::signal::{IdentityKeyPair, SenderKeyRecord, SessionRecord};
use wasm_bindgen::prelude::*;

/// Root key and ServerHello of walink-sim's responder for the client ephemeral key `0x11..`
/// (the native Noise bench's fixture, kept current by walink-sim's tests).
const NOISE_FIXTURE: &str = include_str!("../../../core/benches/noise_server_hello.hex");
/// The fixture's client ephemeral private key.
const NOISE_EPHEMERAL: [u8; 32] = [0x11; 32];
/// The client's static Noise key in the benchmark.
const NOISE_STATIC: [u8; 32] = [0x22; 32];
/// A time inside the fixture chain's validity (2027).
const NOISE_NOW_MS: u64 = 1_800_000_000_000;
/// The size of the ClientPayload the handshake encrypts (a login payload is about this long).
const NOISE_PAYLOAD_LEN: usize = 180;

/// Everything the benchmarks work on.
struct Bench {
    rng: BenchRng,
    alice_identity: IdentityKeyPair,
    /// Bob with the one-time prekeys of the current prekey-message batch.
    bob: Bob,
    /// Alice's and Bob's records of one established session.
    alice: SessionRecord,
    bob_record: SessionRecord,
    /// Bob's record in storage form, for the load-decrypt-store variant.
    bob_stored: Vec<u8>,
    /// First messages to Bob, one per one-time prekey of `bob`.
    pre_key_messages: Vec<Vec<u8>>,
    sender: SenderKeyRecord,
    member: SenderKeyRecord,
    noise_root: TrustRoot,
    noise_server_hello: Vec<u8>,
    noise_client: TransportCipher,
    noise_server: TransportCipher,
}

thread_local! {
    static BENCH: RefCell<Option<Bench>> = const { RefCell::new(None) };
}

fn bench_error(message: impl std::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

fn with_bench<T>(f: impl FnOnce(&mut Bench) -> Result<T, JsError>) -> Result<T, JsError> {
    BENCH.with_borrow_mut(|bench| match bench {
        Some(bench) => f(bench),
        None => Err(bench_error("call benchInit first")),
    })
}

/// An established pair of records: Alice started the session and Bob has answered.
fn established(
    rng: &mut BenchRng,
    alice_identity: &IdentityKeyPair,
) -> Result<(SessionRecord, SessionRecord), JsError> {
    testing::established(rng, alice_identity).map_err(bench_error)
}

fn hex_decode(text: &str) -> Result<Vec<u8>, JsError> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return Err(bench_error("odd-length hex in the Noise fixture"));
    }
    (0..text.len())
        .step_by(2)
        .map(|at| {
            text.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| bench_error("bad hex in the Noise fixture"))
        })
        .collect()
}

/// Sets up every benchmark's state from `seed`; call once before the others, and again to
/// start over.
#[wasm_bindgen(js_name = benchInit)]
pub fn bench_init(seed: u32) -> Result<(), JsError> {
    let mut rng = BenchRng(u64::from(seed) | 1 << 40);
    let alice_identity = IdentityKeyPair::generate(&mut rng);
    let bob = Bob::new(&mut rng, 1);
    let (alice, bob_record) = established(&mut rng, &alice_identity)?;
    let bob_stored = bob_record.serialize();
    let (sender, member) = sender_keys(&mut rng);
    let mut lines = NOISE_FIXTURE.lines();
    let root_key: [u8; 32] = hex_decode(lines.next().unwrap_or(""))?
        .try_into()
        .map_err(|_| bench_error("the fixture's root key is not 32 bytes"))?;
    let noise_server_hello = hex_decode(lines.next().unwrap_or(""))?;
    let bench = Bench {
        rng,
        alice_identity,
        bob,
        alice,
        bob_record,
        bob_stored,
        pre_key_messages: Vec::new(),
        sender,
        member,
        noise_root: TrustRoot {
            public_key: root_key,
            serial: 0,
        },
        noise_server_hello,
        noise_client: TransportCipher::new(&[1; 32], &[2; 32]),
        noise_server: TransportCipher::new(&[2; 32], &[1; 32]),
    };
    BENCH.with_borrow_mut(|slot| *slot = Some(bench));
    Ok(())
}

/// X3DH as Alice from Bob's bundle (with one-time prekey 0 while Bob has one), into a fresh
/// record.
#[wasm_bindgen(js_name = benchSignalSetup)]
pub fn bench_signal_setup() -> Result<bool, JsError> {
    with_bench(|b| {
        let mut record = SessionRecord::new();
        record
            .process_bundle(
                &b.bob.bundle(0),
                &b.alice_identity,
                ALICE_REGISTRATION,
                &mut b.rng,
            )
            .map_err(bench_error)?;
        Ok(record.has_current_session())
    })
}

/// Starts a new established session between Alice and Bob (so that Bob's decrypts start at
/// Alice's next message).
#[wasm_bindgen(js_name = benchSignalPair)]
pub fn bench_signal_pair() -> Result<(), JsError> {
    with_bench(|b| {
        let (alice, bob_record) = established(&mut b.rng, &b.alice_identity)?;
        b.alice = alice;
        b.bob_stored = bob_record.serialize();
        b.bob_record = bob_record;
        Ok(())
    })
}

/// Alice encrypts `plaintext` on the established session: the serialized `msg`.
#[wasm_bindgen(js_name = benchSignalEncrypt)]
pub fn bench_signal_encrypt(plaintext: &[u8]) -> Result<Vec<u8>, JsError> {
    with_bench(|b| {
        let message = b.alice.encrypt(plaintext).map_err(bench_error)?;
        Ok(message.serialize().to_vec())
    })
}

/// Bob decrypts a `msg` from Alice with his in-memory record.
#[wasm_bindgen(js_name = benchSignalDecrypt)]
pub fn bench_signal_decrypt(message: &[u8]) -> Result<Vec<u8>, JsError> {
    with_bench(|b| {
        b.bob_record
            .decrypt_message(message, &mut b.rng)
            .map_err(bench_error)
    })
}

/// Bob decrypts a `msg` from Alice the way a store-backed client does: load his record from
/// its storage bytes, decrypt, store it again.
#[wasm_bindgen(js_name = benchSignalDecryptStored)]
pub fn bench_signal_decrypt_stored(message: &[u8]) -> Result<Vec<u8>, JsError> {
    with_bench(|b| {
        let mut record = SessionRecord::deserialize(&b.bob_stored).map_err(bench_error)?;
        let plaintext = record
            .decrypt_message(message, &mut b.rng)
            .map_err(bench_error)?;
        b.bob_stored = record.serialize();
        Ok(plaintext)
    })
}

/// Prepares `count` first messages (`pkmsg`, each with its own one-time prekey) of new Alices to
/// a new Bob, each carrying `plaintext`; returns how many there are.
#[wasm_bindgen(js_name = benchSignalPreparePreKeyMessages)]
pub fn bench_signal_prepare_pre_key_messages(count: u32, plaintext: &[u8]) -> Result<u32, JsError> {
    with_bench(|b| {
        b.bob = Bob::new(&mut b.rng, count);
        b.pre_key_messages.clear();
        for id in 0..count {
            let mut alice = SessionRecord::new();
            alice
                .process_bundle(
                    &b.bob.bundle(id),
                    &b.alice_identity,
                    ALICE_REGISTRATION,
                    &mut b.rng,
                )
                .map_err(bench_error)?;
            let message = alice.encrypt(plaintext).map_err(bench_error)?;
            b.pre_key_messages.push(message.serialize().to_vec());
        }
        Ok(count)
    })
}

/// The `index`-th prepared first message.
#[wasm_bindgen(js_name = benchSignalPreKeyMessage)]
pub fn bench_signal_pre_key_message(index: u32) -> Result<Vec<u8>, JsError> {
    with_bench(|b| {
        b.pre_key_messages
            .get(index as usize)
            .cloned()
            .ok_or_else(|| bench_error("no such prepared message"))
    })
}

/// Bob decrypts a first message into a fresh record (X3DH as Bob plus the first decrypt).
#[wasm_bindgen(js_name = benchSignalDecryptPreKey)]
pub fn bench_signal_decrypt_pre_key(message: &[u8]) -> Result<Vec<u8>, JsError> {
    with_bench(|b| {
        let mut record = SessionRecord::new();
        let result = record
            .decrypt_pre_key_message(
                message,
                &b.bob.identity,
                BOB_REGISTRATION,
                &b.bob,
                &mut b.rng,
            )
            .map_err(bench_error)?;
        Ok(result.plaintext)
    })
}

/// Starts new sender-key records: the member at the sender's current iteration.
#[wasm_bindgen(js_name = benchSenderKeyReset)]
pub fn bench_sender_key_reset() -> Result<(), JsError> {
    with_bench(|b| {
        let (sender, member) = sender_keys(&mut b.rng);
        b.sender = sender;
        b.member = member;
        Ok(())
    })
}

/// The sender encrypts a group message: the serialized, signed `skmsg`.
#[wasm_bindgen(js_name = benchSenderKeyEncrypt)]
pub fn bench_sender_key_encrypt(plaintext: &[u8]) -> Result<Vec<u8>, JsError> {
    with_bench(|b| b.sender.encrypt(plaintext, &mut b.rng).map_err(bench_error))
}

/// The member decrypts a group message.
#[wasm_bindgen(js_name = benchSenderKeyDecrypt)]
pub fn bench_sender_key_decrypt(message: &[u8]) -> Result<Vec<u8>, JsError> {
    with_bench(|b| b.member.decrypt(message).map_err(bench_error))
}

/// One complete client handshake against the fixture's ServerHello (ClientHello, certificate
/// chain verification, ClientFinish with a 180-byte payload, transport split); returns the
/// ClientFinish's length.
#[wasm_bindgen(js_name = benchNoiseHandshake)]
pub fn bench_noise_handshake() -> Result<usize, JsError> {
    with_bench(|b| {
        let (client, hello) =
            ClientHandshake::start(EphemeralKey::from_private(NOISE_EPHEMERAL), b.noise_root);
        let payload = [0x5a; NOISE_PAYLOAD_LEN];
        let done = client
            .finish(
                &b.noise_server_hello,
                &NoiseKeyPair::from_private(NOISE_STATIC),
                &payload,
                NOISE_NOW_MS,
            )
            .map_err(bench_error)?;
        Ok(hello.len() + done.client_finish.len())
    })
}

/// New transport ciphers for both sides (counters at zero).
#[wasm_bindgen(js_name = benchNoiseTransportReset)]
pub fn bench_noise_transport_reset() -> Result<(), JsError> {
    with_bench(|b| {
        b.noise_client = TransportCipher::new(&[1; 32], &[2; 32]);
        b.noise_server = TransportCipher::new(&[2; 32], &[1; 32]);
        Ok(())
    })
}

/// The client encrypts one transport frame payload.
#[wasm_bindgen(js_name = benchNoiseEncrypt)]
pub fn bench_noise_encrypt(plaintext: &[u8]) -> Result<Vec<u8>, JsError> {
    with_bench(|b| b.noise_client.encrypt(plaintext).map_err(bench_error))
}

/// The server side decrypts the client's next frame payload.
#[wasm_bindgen(js_name = benchNoiseDecrypt)]
pub fn bench_noise_decrypt(ciphertext: &[u8]) -> Result<Vec<u8>, JsError> {
    with_bench(|b| b.noise_server.decrypt(ciphertext).map_err(bench_error))
}

/// The Noise fixture for other implementations in the same benchmark: the client's ephemeral
/// private key, the root public key and the ServerHello, each hex, separated by newlines.
#[wasm_bindgen(js_name = benchNoiseFixture)]
pub fn bench_noise_fixture() -> String {
    let ephemeral: String = NOISE_EPHEMERAL.iter().map(|b| format!("{b:02x}")).collect();
    let static_key: String = NOISE_STATIC.iter().map(|b| format!("{b:02x}")).collect();
    format!("{ephemeral}\n{static_key}\n{}", NOISE_FIXTURE.trim())
}
