//! walink's wasm-bindgen facade: the functions the npm package `walink` wraps.
//!
//! The node codec crosses the boundary once per tree, and copies as little as it can: the
//! package's JavaScript writes a tape (see `walink_core::binary::tape`) or a frame body straight
//! into an input buffer that lives in wasm memory ([`input_buffer`]), Rust encodes or decodes it
//! into an output buffer, and JavaScript reads the result in place ([`output_pointer`]). Both
//! buffers are reused, so a call allocates nothing once they are large enough.

#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};

mod appstate;
mod client;
mod groups;
mod js;
mod media;
#[cfg(test)]
mod names;
mod poison;
mod social;

pub use client::Client;
pub use media::{Decryptor, Encryptor, media_keys, new_media_key};

use walink_core::binary::{DecodeError, tape};
use wasm_bindgen::prelude::*;

/// The codec's reusable buffers and the last error.
#[derive(Default)]
struct Buffers {
    input: Vec<u8>,
    output: Vec<u8>,
    splices: Vec<u32>,
    error_code: &'static str,
    error_message: String,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// The error code of a codec call made after an earlier one panicked (and trapped) while it
/// held the buffers: they are left borrowed, so the codec refuses work instead of trapping again.
const PANICKED: &str = "codec_panicked";

/// Runs `f` on the buffers, or returns `otherwise` when a panicked call left them borrowed.
fn with_buffers<R>(otherwise: R, f: impl FnOnce(&mut Buffers) -> R) -> R {
    BUFFERS.with(|buffers| match buffers.try_borrow_mut() {
        Ok(mut buffers) => f(&mut buffers),
        Err(_) => otherwise,
    })
}

/// The dictionary tokens by tape id, separated by `\0`.
#[wasm_bindgen(js_name = tokenTable)]
pub fn token_table() -> String {
    tape::token_table()
}

/// Makes the input buffer at least `len` bytes long (keeping its contents) and returns its
/// address in wasm memory. The address changes when the buffer grows.
#[wasm_bindgen(js_name = inputBuffer)]
pub fn input_buffer(len: usize) -> *mut u8 {
    with_buffers(core::ptr::null_mut(), |buffers| {
        if buffers.input.len() < len {
            buffers.input.resize(len, 0);
        }
        buffers.input.as_mut_ptr()
    })
}

/// Where the last decode left its tape: its address and its length in wasm memory. A fixed
/// place, so the host reads both without another call and without a new view per decode.
static TAPE: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];

/// The address of the two `u32` words that hold the last decoded tape's address and length.
#[wasm_bindgen(js_name = tapeSlot)]
pub fn tape_slot() -> *const u32 {
    TAPE.as_ptr().cast()
}

/// Records the output buffer as the decoded tape, and returns its length (or -1).
fn tape_result(buffers: &mut Buffers) -> i32 {
    let len = output_length(buffers);
    if len >= 0 {
        // Addresses in wasm32 memory are 32 bits.
        TAPE[0].store(buffers.output.as_ptr() as usize as u32, Ordering::Relaxed);
        TAPE[1].store(len as u32, Ordering::Relaxed);
    }
    len
}

/// The address of the output buffer, valid until the next call into the module.
#[wasm_bindgen(js_name = outputPointer)]
pub fn output_pointer() -> *const u8 {
    with_buffers(core::ptr::null(), |buffers| buffers.output.as_ptr())
}

/// Encodes the tape in the first `len` input bytes into a frame body in the output buffer,
/// without the bytes of host-held contents (tape kind 4); their places are in the splice table
/// ([`splice_pointer`]). Returns the body's length, or -1 (see [`last_error_code`]).
#[wasm_bindgen(js_name = encodeInput)]
pub fn encode_input(len: usize) -> i32 {
    with_buffers(-1, |buffers| {
        let Buffers {
            input,
            output,
            splices,
            ..
        } = &mut *buffers;
        output.clear();
        splices.clear();
        let result = match input.get(..len) {
            Some(tape) => tape::encode_spliced(tape, output, splices),
            None => Err(tape::TapeError::UnexpectedEnd),
        };
        match result {
            Ok(()) => output_length(buffers),
            Err(err) => fail(buffers, "invalid_node", err.to_string()),
        }
    })
}

/// Decodes the frame body in the first `len` input bytes into a tape in the output buffer,
/// byte content by reference into the body when it is uncompressed. Returns the tape's length,
/// or -1 (see [`last_error_code`]).
#[wasm_bindgen(js_name = decodeInput)]
pub fn decode_input(len: usize) -> i32 {
    with_buffers(-1, |buffers| {
        let Buffers { input, output, .. } = &mut *buffers;
        let result = match input.get(..len) {
            Some(body) => tape::decode_into(body, output, true),
            None => Err(DecodeError::UnexpectedEnd),
        };
        match result {
            Ok(()) => tape_result(buffers),
            Err(err) => fail(buffers, err.code(), err.to_string()),
        }
    })
}

/// Decodes a frame body of `body_len` bytes of which the first `len` input bytes are a prefix
/// into a tape in the output buffer, every byte content by reference into the body, so the host
/// need copy only the structure of a body with large contents. Returns the tape's length, -2
/// when the decoder needs the whole body (then call [`decode_input`] with all of it), or -1 (see
/// [`last_error_code`]).
#[wasm_bindgen(js_name = decodePrefix)]
pub fn decode_prefix(len: usize, body_len: usize) -> i32 {
    with_buffers(-1, |buffers| {
        let Buffers { input, output, .. } = &mut *buffers;
        let result = match input.get(..len) {
            Some(prefix) => tape::decode_prefix_into(prefix, body_len, output),
            None => Err(DecodeError::UnexpectedEnd),
        };
        match result {
            Ok(tape::PrefixDecode::Complete) => tape_result(buffers),
            Ok(tape::PrefixDecode::NeedWhole) => NEED_WHOLE,
            Err(err) => fail(buffers, err.code(), err.to_string()),
        }
    })
}

/// What [`decode_prefix`] returns when the prefix is not enough.
const NEED_WHOLE: i32 = -2;

/// The address of the splice table of the last encode: one `u32` output position per host-held
/// content, in order. Valid until the next call into the module.
#[wasm_bindgen(js_name = splicePointer)]
pub fn splice_pointer() -> *const u32 {
    with_buffers(core::ptr::null(), |buffers| buffers.splices.as_ptr())
}

/// The stable code of the last error.
#[wasm_bindgen(js_name = lastErrorCode)]
pub fn last_error_code() -> String {
    with_buffers(PANICKED.to_owned(), |buffers| buffers.error_code.to_owned())
}

/// The message of the last error.
#[wasm_bindgen(js_name = lastErrorMessage)]
pub fn last_error_message() -> String {
    let panicked = || {
        let panic = poison::last_panic().unwrap_or_default();
        format!("an earlier codec call panicked, the codec cannot be used: {panic}")
    };
    with_buffers(panicked(), |buffers| buffers.error_message.clone())
}

fn output_length(buffers: &mut Buffers) -> i32 {
    match i32::try_from(buffers.output.len()) {
        Ok(len) => len,
        Err(_) => fail(buffers, "too_large", "output exceeds 2 GiB".to_owned()),
    }
}

fn fail(buffers: &mut Buffers, code: &'static str, message: String) -> i32 {
    buffers.error_code = code;
    buffers.error_message = message;
    -1
}

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "bench")]
pub mod bench_appstate;
#[cfg(feature = "bench")]
pub mod bench_history;
