//! Throughput of media encryption, the pairing crypto and protobuf decoding.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message as _;
use std::hint::black_box;
use walink_core::media::{self, Expected, MediaType};
use walink_core::pair::{self, AdvSecret, FinishRandom, KeyPair, PairingCode};
use walink_core::proto::wa;

fn media_crypto(c: &mut Criterion) {
    let key = [7u8; 32];
    let plain = vec![0x5a; 1 << 20];
    let (file, _) = media::encrypt(&key, MediaType::Image, &plain).unwrap();
    let mut group = c.benchmark_group("media");
    group.throughput(Throughput::Bytes(plain.len() as u64));
    group.bench_function("encrypt 1 MiB", |b| {
        b.iter(|| media::encrypt(&key, MediaType::Image, black_box(&plain)))
    });
    group.bench_function("decrypt 1 MiB", |b| {
        b.iter(|| {
            media::decrypt(
                &key,
                MediaType::Image,
                black_box(&file),
                Expected::default(),
            )
        })
    });
    group.finish();
}

fn pairing(c: &mut Criterion) {
    let code = PairingCode::from_random([1, 2, 3, 4, 5]);
    c.bench_function("pair: PBKDF2 code key (131072 rounds)", |b| {
        b.iter(|| code.derive_key(black_box(&[0; 32])))
    });
    let link = KeyPair::from_private([1; 32]);
    let identity = KeyPair::from_private([2; 32]);
    let primary_ephemeral = KeyPair::from_private([3; 32]);
    let primary_identity = KeyPair::from_private([4; 32]);
    let wrapped = pair::wrap_ephemeral_key(&code, primary_ephemeral.public(), &[5; 32], &[6; 16]);
    let random = FinishRandom {
        adv_random: [7; 32],
        bundle_salt: [8; 32],
        nonce: [9; 12],
    };
    c.bench_function("pair: companion_finish", |b| {
        b.iter(|| {
            pair::companion_finish(
                &code,
                &link,
                &identity,
                primary_identity.public(),
                &wrapped,
                &random,
            )
        })
    });
    // A pair-success whose account signature is wrong still costs the full HMAC and verify.
    let secret = AdvSecret::new([1; 32]);
    let signed = wa::AdvSignedDeviceIdentity {
        details: Some(
            wa::AdvDeviceIdentity {
                raw_id: Some(1),
                key_index: Some(1),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        account_signature_key: Some(primary_identity.public().to_vec()),
        account_signature: Some(vec![0x11; 64]),
        device_signature: None,
    }
    .encode_to_vec();
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&signed);
    let container = wa::AdvSignedDeviceIdentityHmac {
        details: Some(signed),
        hmac: Some(mac.finalize().into_bytes().to_vec()),
        account_type: None,
    }
    .encode_to_vec();
    c.bench_function("pair: verify_device_identity (hmac + xeddsa verify)", |b| {
        b.iter(|| pair::verify_device_identity(black_box(&container), &secret, &identity, &[0; 64]))
    });
}

fn protobuf(c: &mut Criterion) {
    let text = wa::Message {
        extended_text_message: Some(Box::new(wa::message::ExtendedTextMessage {
            text: Some("hello there, this is a reply".into()),
            context_info: Some(Box::new(wa::ContextInfo {
                stanza_id: Some("3EB0ABCDEF".into()),
                participant: Some("15551234567@s.whatsapp.net".into()),
                quoted_message: Some(Box::new(wa::Message {
                    conversation: Some("hi".into()),
                    ..Default::default()
                })),
                ..Default::default()
            })),
            ..Default::default()
        })),
        message_context_info: Some(wa::MessageContextInfo {
            message_secret: Some(vec![1; 32]),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    c.bench_function("proto: decode reply Message", |b| {
        b.iter(|| wa::Message::decode(black_box(text.as_slice())))
    });
}

criterion_group!(benches, media_crypto, pairing, protobuf);
criterion_main!(benches);
