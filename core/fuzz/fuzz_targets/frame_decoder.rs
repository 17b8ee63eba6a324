//! The frame decoder on arbitrary streams cut into arbitrary chunks: never a panic, and the
//! frames (or the error) are the same however the stream is chunked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walink_core::frame::{FrameDecoder, FrameError};

fn run(mut decoder: FrameDecoder, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Option<FrameError>) {
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(err) => return (frames, Some(err)),
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let max = usize::from(control) * 64;
    let make = || {
        let decoder = if control & 1 == 1 {
            FrameDecoder::expecting_header()
        } else {
            FrameDecoder::new()
        };
        decoder.with_max_payload(max)
    };
    // Chunk sizes come from the stream itself, so libFuzzer explores chunkings.
    let mut chunks = Vec::new();
    let mut rest = stream;
    let mut step = usize::from(control % 7) + 1;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(step.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
        step = usize::from(chunk.first().copied().unwrap_or(1) % 13) + 1;
    }
    let whole = run(make(), &[stream]);
    let chunked = run(make(), &chunks);
    assert_eq!(whole, chunked, "chunking changed the result");
});
