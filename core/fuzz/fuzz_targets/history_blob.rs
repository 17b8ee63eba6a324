//! The history-sync decoder on arbitrary bytes: as a zlib stream (raw fuzz input), and as the
//! inflated `HistorySync` protobuf (the input compressed first, so that the walk of the
//! message is reached): never a panic, never more than one element held, and after an error or
//! the end nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walink_core::client::history::{HistoryDecoder, HistoryItem};

fn run(compressed: Vec<u8>) {
    let mut decoder = HistoryDecoder::new(compressed);
    let mut ended = false;
    loop {
        match decoder.next_item() {
            Ok(Some(HistoryItem::End(_))) => ended = true,
            Ok(Some(_)) => assert!(!ended, "an item after the end"),
            Ok(None) | Err(_) => break,
        }
    }
    assert_eq!(decoder.next_item(), Ok(None));
}

fuzz_target!(|data: &[u8]| {
    run(data.to_vec());
    run(miniz_oxide::deflate::compress_to_vec_zlib(data, 1));
});
