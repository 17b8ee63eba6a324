//! The node decoder on arbitrary frame bodies: never a panic; the tree decoder and the tape
//! decoder agree on what is valid; what decodes re-encodes to bytes that decode again, and a
//! second round trip changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walink_core::binary::{decode, encode, tape};

fuzz_target!(|data: &[u8]| {
    let node = decode(data);
    let flat = tape::decode(data);
    assert_eq!(node.is_ok(), flat.is_ok(), "tree and tape decoders disagree");
    if let Ok(flat) = flat {
        let bytes = tape::encode(&flat).expect("a decoded tape encodes");
        decode(&bytes).expect("re-encoded tape decodes");
    }
    if let Ok(node) = node {
        let once = encode(&node);
        let again = decode(&once).expect("re-encoded node decodes");
        assert_eq!(encode(&again), once, "second round trip changed the bytes");
    }
    let _ = tape::encode(data);
});
