//! History-sync exports for the npm benchmarks (cargo feature `bench`; `npm/bench/history.mjs`).
//!
//! [`bench_history_decode`] does what the client does with a downloaded history blob: checks and
//! decrypts it (`media::decrypt`), inflates and decodes it a piece at a time
//! (`HistoryDecoder`), turns each element into the client's event (`history::item_event`) and
//! that into the JavaScript object the npm package hands its application. Only the socket, the
//! fetch and the driver loop are left out.

use walink_core::binary::Jid;
use walink_core::client::Event;
use walink_core::client::history::{HistoryDecoder, HistorySyncType, item_event};
use walink_core::media::{self, Expected, MediaType};
use wasm_bindgen::prelude::*;

use crate::client::event_to_js;

/// Decrypts, inflates and decodes one history blob into the events the client reports, as the
/// JavaScript objects the package hands out; returns them (conversations, messages, push names).
#[wasm_bindgen(js_name = benchHistoryDecode)]
pub fn bench_history_decode(
    media_key: &[u8],
    file: &[u8],
    file_sha256: &[u8],
    file_enc_sha256: &[u8],
    own: &str,
) -> Result<js_sys::Array, JsError> {
    let events = js_sys::Array::new();
    decode(
        media_key,
        file,
        file_sha256,
        file_enc_sha256,
        own,
        |event| {
            events.push(&event_to_js(event));
        },
    )?;
    Ok(events)
}

/// The same as [`bench_history_decode`] without the JavaScript objects: the core's part alone
/// (the events are built and dropped); returns how many.
#[wasm_bindgen(js_name = benchHistoryDecodeCore)]
pub fn bench_history_decode_core(
    media_key: &[u8],
    file: &[u8],
    file_sha256: &[u8],
    file_enc_sha256: &[u8],
    own: &str,
) -> Result<u32, JsError> {
    let mut count = 0u32;
    decode(
        media_key,
        file,
        file_sha256,
        file_enc_sha256,
        own,
        |event| {
            count += 1;
            drop(event);
        },
    )?;
    Ok(count)
}

fn decode(
    media_key: &[u8],
    file: &[u8],
    file_sha256: &[u8],
    file_enc_sha256: &[u8],
    own: &str,
    mut each: impl FnMut(Event),
) -> Result<(), JsError> {
    let compressed = media::decrypt(
        media_key,
        MediaType::History,
        file,
        Expected {
            file_enc_sha256: Some(file_enc_sha256),
            file_sha256: Some(file_sha256),
        },
    )
    .map_err(|e| JsError::new(&e.to_string()))?;
    let own: Option<Jid> = own.parse().ok();
    let mut decoder = HistoryDecoder::new(compressed);
    while let Some(item) = decoder
        .next_item()
        .map_err(|e| JsError::new(&e.to_string()))?
    {
        if let Some(event) = item_event(item, HistorySyncType::Recent, own.as_ref(), None) {
            each(event);
        }
    }
    Ok(())
}
