//! Group notifications: 100 `w:gp2` notifications (adds, removes, promotions, subject and
//! setting changes) decoded from their binary form, parsed into typed changes and applied to a
//! known group of 256 members, as the client does for each one (the ack and the event aside).
//! Run with `cargo bench -p walink-core --bench groups`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use walink_core::binary::{DEFAULT_USER_SERVER, GROUP_SERVER, Jid, Node, Value, decode, encode};
use walink_core::client::groups::GroupInfo;
use walink_core::client::groups::wire::{apply, parse_group, parse_notification};

const NOTIFICATIONS: usize = 100;
const MEMBERS: usize = 256;

fn user(i: usize) -> Jid {
    Jid::new(format!("1555{i:07}"), DEFAULT_USER_SERVER)
}

fn participant(i: usize) -> Node {
    Node::new("participant").attr("jid", Value::Jid(user(i)))
}

/// The known group: `MEMBERS` members, the first one the super-admin.
fn group() -> GroupInfo {
    let members = (0..MEMBERS).map(|i| {
        let p = participant(i);
        if i == 0 {
            p.attr("type", "superadmin")
        } else {
            p
        }
    });
    let node = Node::new("group")
        .attr("id", "120363000000000001")
        .attr("subject", "bench")
        .attr("creation", "1700000000")
        .children_from(members);
    parse_group(&node).unwrap()
}

/// `NOTIFICATIONS` encoded notifications, as they come out of the Noise layer.
fn notifications() -> Vec<Vec<u8>> {
    (0..NOTIFICATIONS)
        .map(|i| {
            let child = match i % 6 {
                0 => Node::new("add").children_from([participant(MEMBERS + i)]),
                1 => Node::new("remove").children_from([participant(MEMBERS + i - 1)]),
                2 => Node::new("promote").children_from([participant(i)]),
                3 => Node::new("demote").children_from([participant(i - 1)]),
                4 => Node::new("subject").attr("subject", format!("bench {i}")),
                _ => Node::new("locked"),
            };
            let node = Node::new("notification")
                .attr(
                    "from",
                    Value::Jid(Jid::new("120363000000000001", GROUP_SERVER)),
                )
                .attr("type", "w:gp2")
                .attr("id", format!("{i}"))
                .attr("t", "1700000100")
                .attr("participant", Value::Jid(user(0)))
                .children_from([child]);
            encode(&node)
        })
        .collect()
}

fn groups(c: &mut Criterion) {
    let own = ["15559999999@s.whatsapp.net".to_owned()];
    let bytes = notifications();
    let base = group();
    c.bench_function(
        "groups: 100 w:gp2 notifications decoded, parsed and applied",
        |b| {
            b.iter_batched(
                || base.clone(),
                |mut info| {
                    for body in &bytes {
                        let node = decode(body).unwrap();
                        let notification = parse_notification(&node).unwrap();
                        for change in &notification.changes {
                            black_box(apply(&mut info, change, &own));
                        }
                        black_box(notification);
                    }
                    info
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
}

criterion_group!(benches, groups);
criterion_main!(benches);
