//! The node decoder on arbitrary frame bodies: never a panic; the tree decoder and the tape
//! decoder agree on what is valid (except that only the tree can exceed the budget); what decodes re-encodes to bytes that decode again, and a
//! second round trip changes nothing. Each decoder's peak memory is at most what it charged to
//! its budget, and that is at most the body's decode budget (`limits::decode_budget`).
#![no_main]

#[path = "common/counting.rs"]
mod counting;

use libfuzzer_sys::fuzz_target;
use walink_core::binary::{DecodeError, decode_charged, encode, tape};
use walink_core::limits::decode_budget;

fuzz_target!(|data: &[u8]| {
    let budget = decode_budget(data.len());
    let ((node, charged), peak) = counting::peak_of(|| decode_charged(data));
    assert!(charged <= budget, "charged {charged} of a budget of {budget}");
    assert!(peak <= charged, "tree decoder held {peak} bytes, charged {charged}");
    for by_reference in [false, true] {
        let ((flat, charged), peak) = counting::peak_of(|| tape::decode_charged(data, by_reference));
        assert!(charged <= budget, "tape charged {charged} of {budget}");
        assert!(peak <= charged, "tape decoder held {peak} bytes, charged {charged}");
        // The tape is far cheaper than the tree, so only the tree can run out of budget.
        if node != Err(DecodeError::OverBudget) {
            assert_eq!(node.is_ok(), flat.is_ok(), "tree and tape decoders disagree");
        }
    }
    if let Ok(flat) = tape::decode(data) {
        let bytes = tape::encode(&flat).expect("a decoded tape encodes");
        walink_core::binary::decode(&bytes).expect("re-encoded tape decodes");
    }
    if let Ok(node) = node {
        let once = encode(&node);
        let again = walink_core::binary::decode(&once).expect("re-encoded node decodes");
        assert_eq!(encode(&again), once, "second round trip changed the bytes");
    }
    let _ = tape::encode(data);
});
