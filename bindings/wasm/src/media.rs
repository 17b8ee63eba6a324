//! Media crypto for hosts that stream bodies themselves: a fresh media key, the expanded keys
//! (for a host's native AES-CBC and HMAC), and the core's streaming encryptor and decryptor
//! (`walink_core::media`) for hosts without native crypto. The client itself never sees such a
//! body: it gets the hashes (`sendMedia`'s `hostBody`, a fetch answer's `streamed`).

use js_sys::Uint8Array;
use walink_core::client::MediaKind;
use walink_core::media::{self, MediaError, MediaHashes, MediaKeys, MediaType};
use wasm_bindgen::prelude::*;

use crate::js::{Obj, coded_error};

/// A media type by its core name (`image`, `history`, ...) or by a media kind (`gif`, `ptt`,
/// `sticker`: their key family).
fn media_type(name: &str) -> Result<MediaType, JsValue> {
    MediaType::parse(name)
        .or_else(|| MediaKind::parse(name).map(MediaKind::media_type))
        .ok_or_else(|| {
            coded_error(
                "invalid_media_type",
                &format!("unknown media type {name:?}"),
            )
        })
}

fn media_error(error: MediaError) -> JsValue {
    coded_error(error.code(), &error.to_string())
}

fn hashes_to_js(hashes: &MediaHashes, tail: &[u8]) -> JsValue {
    Obj::new()
        .bytes("tail", tail)
        .bytes("fileSha256", &hashes.file_sha256)
        .bytes("fileEncSha256", &hashes.file_enc_sha256)
        .num("fileLength", hashes.file_length as f64)
        .done()
}

/// A fresh 32-byte media key from the operating system's generator.
#[wasm_bindgen(js_name = newMediaKey)]
pub fn new_media_key() -> Result<Uint8Array, JsValue> {
    let key = media::new_media_key()
        .ok_or_else(|| coded_error("no_entropy", "the platform has no random generator"))?;
    Ok(Uint8Array::from(key.as_slice()))
}

/// `{ iv, cipherKey, macKey }` expanded from `mediaKey` for `mediaType`.
#[wasm_bindgen(js_name = mediaKeys)]
pub fn media_keys(media_key: &[u8], media_type: &str) -> Result<JsValue, JsValue> {
    let keys = MediaKeys::derive(media_key, self::media_type(media_type)?).map_err(media_error)?;
    Ok(Obj::new()
        .bytes("iv", keys.iv())
        .bytes("cipherKey", keys.cipher_key())
        .bytes("macKey", keys.mac_key())
        .done())
}

/// Encrypts a media file in pieces (`update`), then `finish`: the pieces and the tail,
/// concatenated, are the file to upload.
#[wasm_bindgen(js_name = MediaEncryptor)]
pub struct Encryptor {
    inner: Option<media::MediaEncryptor>,
}

#[wasm_bindgen(js_class = MediaEncryptor)]
impl Encryptor {
    /// Starts encrypting under `mediaKey` for `mediaType`.
    #[wasm_bindgen(constructor)]
    pub fn new(media_key: &[u8], media_type: &str) -> Result<Encryptor, JsValue> {
        let inner = media::MediaEncryptor::new(media_key, self::media_type(media_type)?)
            .map_err(media_error)?;
        Ok(Encryptor { inner: Some(inner) })
    }

    /// The ciphertext of the next piece of plaintext (whole blocks; the rest waits).
    pub fn update(&mut self, plaintext: &[u8]) -> Result<Uint8Array, JsValue> {
        let inner = self.inner.as_mut().ok_or_else(finished)?;
        let mut out = Vec::with_capacity(plaintext.len() + 16);
        inner.update(plaintext, &mut out);
        Ok(Uint8Array::from(out.as_slice()))
    }

    /// `{ tail, fileSha256, fileEncSha256, fileLength }`: the last block and the MAC, and the
    /// hashes for the message.
    pub fn finish(&mut self) -> Result<JsValue, JsValue> {
        let inner = self.inner.take().ok_or_else(finished)?;
        let mut tail = Vec::with_capacity(32);
        let hashes = inner.finish(&mut tail);
        Ok(hashes_to_js(&hashes, &tail))
    }
}

/// Decrypts a downloaded media file in pieces. `update` hands back plaintext that is not
/// verified yet: keep it in a sink that is released only after `finish` succeeded (the MAC,
/// checked in constant time) and the client's `downloadMedia` ended with `mediaSaved`.
#[wasm_bindgen(js_name = MediaDecryptor)]
pub struct Decryptor {
    inner: Option<media::MediaDecryptor>,
}

#[wasm_bindgen(js_class = MediaDecryptor)]
impl Decryptor {
    /// Starts decrypting under `mediaKey` for `mediaType`; a file longer than `maxBytes`
    /// fails with `too_large`.
    #[wasm_bindgen(constructor)]
    pub fn new(media_key: &[u8], media_type: &str, max_bytes: f64) -> Result<Decryptor, JsValue> {
        let inner = media::MediaDecryptor::new(media_key, self::media_type(media_type)?)
            .map_err(media_error)?
            .with_limit(max_bytes as u64);
        Ok(Decryptor { inner: Some(inner) })
    }

    /// The (unverified) plaintext of the next piece of the file.
    pub fn update(&mut self, data: &[u8]) -> Result<Uint8Array, JsValue> {
        let inner = self.inner.as_mut().ok_or_else(finished)?;
        let mut out = Vec::with_capacity(data.len());
        inner.update(data, &mut out).map_err(media_error)?;
        Ok(Uint8Array::from(out.as_slice()))
    }

    /// Checks the MAC; `{ tail, fileSha256, fileEncSha256, fileLength }`, or an error with
    /// code `mac_mismatch`, `invalid_length` or `invalid_padding`.
    pub fn finish(&mut self) -> Result<JsValue, JsValue> {
        let inner = self.inner.take().ok_or_else(finished)?;
        let mut tail = Vec::with_capacity(16);
        let hashes = inner.finish(&mut tail).map_err(media_error)?;
        Ok(hashes_to_js(&hashes, &tail))
    }
}

fn finished() -> JsValue {
    coded_error("finished", "finish was already called")
}
