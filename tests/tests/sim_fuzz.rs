//! The server never panics on what a client sends, whatever the chunking: garbage before the
//! handshake, a bad ClientFinish, and random frames after a real handshake all end in a close.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim_support;

use proptest::prelude::*;
use sim_support::{Keys, Net};
use walink_core::frame;
use walink_sim::sim::{CloseReason, ServerOutput};

fn feed(
    net: &mut Net,
    conn: walink_sim::sim::ConnId,
    bytes: &[u8],
    cuts: &[usize],
) -> Vec<ServerOutput> {
    let mut start = 0;
    for &cut in cuts {
        let end = (start + cut).min(bytes.len());
        net.server.handle_bytes(net.now, conn, &bytes[start..end]);
        start = end;
    }
    net.server.handle_bytes(net.now, conn, &bytes[start..]);
    std::iter::from_fn(|| net.server.poll_output()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn garbage_before_the_handshake_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(0usize..40, 0..8),
        header in any::<bool>(),
    ) {
        let mut net = Net::new(1);
        let conn = net.server.connect(net.now);
        let mut input = if header { b"WA\x06\x03".to_vec() } else { Vec::new() };
        input.extend(&bytes);
        for output in feed(&mut net, conn, &input, &cuts) {
            match output {
                ServerOutput::Transmit { conn: c, .. } | ServerOutput::Close { conn: c, .. } => {
                    prop_assert_eq!(c, conn)
                }
            }
        }
    }

    #[test]
    fn random_frames_after_login_close_the_connection(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..4),
        cuts in proptest::collection::vec(0usize..40, 0..8),
    ) {
        let mut net = Net::new(2);
        let keys = Keys::new(10);
        let conn = net.connect(&keys, 20, keys.registration_payload());
        let _ = net.take(conn, "iq");
        let mut input = Vec::new();
        for payload in &payloads {
            input.extend(frame::encode_frame(payload).unwrap());
        }
        let outputs = feed(&mut net, conn, &input, &cuts);
        let closed = outputs
            .iter()
            .any(|o| matches!(o, ServerOutput::Close { reason: CloseReason::Protocol(_), .. }));
        prop_assert!(closed, "outputs: {:?}", outputs);
    }
}
