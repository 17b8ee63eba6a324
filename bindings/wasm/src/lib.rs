//! walink's wasm-bindgen facade: the functions the npm package `walink` wraps.
//!
//! The node codec crosses the boundary once per tree: JavaScript flattens a node tree into a
//! tape (see `walink_core::binary::tape`) that Rust encodes, and Rust decodes a frame body into
//! a tape that JavaScript turns into plain objects in one pass.

use js_sys::{Error, Reflect};
use walink_core::binary::{DecodeError, tape};
use wasm_bindgen::prelude::*;

/// The dictionary tokens by tape id, separated by `\0`.
#[wasm_bindgen(js_name = tokenTable)]
pub fn token_table() -> String {
    tape::token_table()
}

/// Decodes a frame body (flags byte first) into a tape.
#[wasm_bindgen(js_name = decodeTape)]
pub fn decode_tape(body: &[u8]) -> Result<Vec<u8>, JsValue> {
    tape::decode(body).map_err(|err| coded_error(decode_error_code(&err), &err.to_string()))
}

/// Encodes a tape into a frame body (flags byte `0x00` first).
#[wasm_bindgen(js_name = encodeTape)]
pub fn encode_tape(tape: &[u8]) -> Result<Vec<u8>, JsValue> {
    tape::encode(tape).map_err(|err| coded_error("invalid_node", &err.to_string()))
}

/// A stable machine-readable code for each decode failure.
fn decode_error_code(err: &DecodeError) -> &'static str {
    match err {
        DecodeError::Empty => "empty",
        DecodeError::UnexpectedEnd => "unexpected_end",
        DecodeError::InvalidTag(_) => "invalid_tag",
        DecodeError::EmptyNode => "empty_node",
        DecodeError::InvalidNibble(_) => "invalid_nibble",
        DecodeError::InvalidUtf8 => "invalid_utf8",
        DecodeError::InvalidJid => "invalid_jid",
        DecodeError::TooDeep => "too_deep",
        DecodeError::TooManyNodes => "too_many_nodes",
        DecodeError::TrailingBytes(_) => "trailing_bytes",
        DecodeError::Inflate => "inflate",
        DecodeError::InflatedTooLarge => "inflated_too_large",
    }
}

/// An `Error` with a `code` property.
fn coded_error(code: &str, message: &str) -> JsValue {
    let error = Error::new(message);
    // Setting a property on a fresh Error object cannot fail.
    let _ = Reflect::set(&error, &"code".into(), &code.into());
    error.into()
}
