//! Node codec throughput on three stanza shapes: a `message` with a 200-byte `enc` child, an
//! `iq` result with 500 `user`/`device` children, and a node holding 64 KB of bytes.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use walink_core::binary::{Content, Jid, Node, decode, encode, encode_into, tape};

fn bytes(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed) & 0xFF) as u8).collect()
}

fn shapes() -> Vec<(&'static str, Node)> {
    let message = Node::new("message")
        .attr("id", "3EB0C431C26A1916E5A2B1")
        .attr("to", Jid::new("15551234567", "s.whatsapp.net"))
        .attr("type", "text")
        .attr("t", "1732300000")
        .children_from([Node::new("enc")
            .attr("v", "2")
            .attr("type", "msg")
            .bytes(bytes(200, 1))]);
    let iq = Node::new("iq")
        .attr("from", Jid::server_jid())
        .attr("id", "12345.6789-42")
        .attr("type", "result")
        .children_from((0..500).map(|i| {
            Node::new("user")
                .attr(
                    "jid",
                    Jid::new(format!("1555{}", 1_000_000 + i), "s.whatsapp.net"),
                )
                .children_from([Node::new("device")
                    .attr("id", (i % 5).to_string())
                    .attr("key-index", (i % 7).to_string())])
        }));
    let big = Node::new("enc")
        .attr("v", "2")
        .attr("type", "skmsg")
        .content(Content::Bytes(bytes(64 * 1024, 7)));
    vec![
        ("message_200B", message),
        ("iq_500_devices", iq),
        ("bytes_64KB", big),
    ]
}

fn codec(c: &mut Criterion) {
    for (name, node) in shapes() {
        let wire = encode(&node);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("encode", |b| b.iter(|| encode(black_box(&node))));
        let mut buffer = Vec::with_capacity(wire.len());
        group.bench_function("encode_into", |b| {
            b.iter(|| {
                buffer.clear();
                encode_into(black_box(&node), &mut buffer);
            })
        });
        group.bench_function("decode", |b| b.iter(|| decode(black_box(&wire)).unwrap()));
        let node_tape = tape::decode(&wire).unwrap();
        group.bench_function("tape_decode", |b| {
            b.iter(|| tape::decode(black_box(&wire)).unwrap())
        });
        group.bench_function("tape_encode", |b| {
            b.iter(|| tape::encode(black_box(&node_tape)).unwrap())
        });
        group.finish();
    }
    // The small encode whatsapp-rust's wacore-binary is quoted at (~2.4 M/s on this machine class).
    let ping = Node::new("iq")
        .attr("id", "1.2-3")
        .attr("xmlns", "w:p")
        .attr("type", "get")
        .attr("to", Jid::server_jid());
    let mut buffer = Vec::with_capacity(64);
    c.bench_function("small_iq/encode_into", |b| {
        b.iter(|| {
            buffer.clear();
            encode_into(black_box(&ping), &mut buffer);
        })
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
