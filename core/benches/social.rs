//! Contact-query cost: checking 1,000 phone numbers in one `CheckNumbers`, i.e. the numbers
//! normalised, the usync query built and encoded, and the server's answer (1,000 users, half on
//! WhatsApp with their LIDs) decoded and read. Run with
//! `cargo bench -p walink-core --bench social`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use walink_core::binary::{Node, decode, encode};
use walink_core::client::social::contacts::{
    build_number_query, normalize_numbers, parse_number_answer,
};

const NUMBERS: usize = 1000;

fn phones() -> Vec<String> {
    (0..NUMBERS).map(|i| format!("+1 555 {:07}", i)).collect()
}

/// The server's answer to the query of `digits`, encoded as on the wire (after the frame).
fn answer(digits: &[String]) -> Vec<u8> {
    let users = digits.iter().enumerate().map(|(i, d)| {
        let on = i % 2 == 0;
        let mut children = vec![
            Node::new("contact")
                .attr("type", if on { "in" } else { "out" })
                .bytes(format!("+{d}")),
        ];
        if on {
            children.push(
                Node::new("lid").attr("val", format!("{}@lid", 90_000_000_000_000u64 + i as u64)),
            );
        }
        Node::new("user")
            .attr("jid", format!("{d}@s.whatsapp.net"))
            .children_from(children)
    });
    encode(
        &Node::new("iq")
            .attr("from", "s.whatsapp.net")
            .attr("type", "result")
            .attr("id", "1.2-3")
            .children_from([Node::new("usync")
                .attr("sid", "1.2-4")
                .children_from([Node::new("list").children_from(users)])]),
    )
}

fn bench(c: &mut Criterion) {
    let phones = phones();
    let digits = normalize_numbers(&phones).unwrap();
    let wire = answer(&digits);
    c.bench_function("check 1000 numbers: build and encode the query", |b| {
        b.iter(|| {
            let digits = normalize_numbers(black_box(&phones)).unwrap();
            black_box(encode(&build_number_query("1.2-4", &digits)))
        })
    });
    c.bench_function("check 1000 numbers: decode and read the answer", |b| {
        b.iter(|| {
            let node = decode(black_box(&wire)).unwrap();
            black_box(parse_number_answer(&node, &digits).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
