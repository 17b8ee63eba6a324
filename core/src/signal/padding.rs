//! WhatsApp's random plaintext padding, added to every serialized `Message` before Signal
//! encryption and removed after decryption.
//!
//! Sources:
//! - Baileys `lib/Utils/generics.js`: `writeRandomPadMax16` appends `n = (random & 0x0f) + 1`
//!   bytes of value `n` (1..=16); `unpadRandomMax16` reads the last byte `n` and refuses `n`
//!   greater than the length.
//! - whatsmeow `message.go`: `padMessage` appends `n = random & 0x0f` bytes of value `n`, with
//!   0 replaced by 15 (1..=15); `unpadMessage` requires the last `n` bytes all to equal `n`
//!   (`isValidPadding`), and skips unpadding for `<enc v="3">` (not used by WhatsApp for
//!   message content today).
//!
//! walink pads like Baileys (1..=16 bytes, each equal to the count; what both peers accept) and
//! unpads strictly like whatsmeow, also refusing a zero count, which no sender produces.

use rand_core::CryptoRng;

/// Why padding could not be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaddingError {
    /// The plaintext is empty, its last byte is 0 or larger than the plaintext, or the padding
    /// bytes differ from the count.
    #[error("bad plaintext padding")]
    BadPadding,
}

/// Appends 1 to 16 random-length padding bytes, each equal to the count.
pub fn pad<R: CryptoRng + ?Sized>(plaintext: &[u8], rng: &mut R) -> Vec<u8> {
    let mut random = [0u8; 1];
    rng.fill_bytes(&mut random);
    let count = (random[0] & 0x0f) + 1;
    let mut out = Vec::with_capacity(plaintext.len() + usize::from(count));
    out.extend_from_slice(plaintext);
    out.resize(plaintext.len() + usize::from(count), count);
    out
}

/// Removes the padding added by [`pad`] (or any sender following the same rule).
pub fn unpad(padded: &[u8]) -> Result<&[u8], PaddingError> {
    let count = usize::from(*padded.last().ok_or(PaddingError::BadPadding)?);
    if count == 0 || count > padded.len() {
        return Err(PaddingError::BadPadding);
    }
    let (body, padding) = padded.split_at(padded.len() - count);
    if padding.iter().any(|&byte| usize::from(byte) != count) {
        return Err(PaddingError::BadPadding);
    }
    Ok(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::signal::test_rng::TestRng;

    #[test]
    fn pads_one_to_sixteen_bytes_and_unpads() {
        let mut rng = TestRng::new(1);
        let mut seen = [false; 17];
        for i in 0..400u32 {
            let message = i.to_be_bytes();
            let padded = pad(&message, &mut rng);
            let count = padded.len() - message.len();
            assert!((1..=16).contains(&count));
            seen[count] = true;
            assert_eq!(unpad(&padded), Ok(&message[..]));
        }
        assert!(seen[1..].iter().all(|&s| s), "every count 1..=16 occurs");
    }

    #[test]
    fn refuses_bad_padding() {
        assert_eq!(unpad(&[]), Err(PaddingError::BadPadding));
        assert_eq!(unpad(&[1, 2, 0]), Err(PaddingError::BadPadding));
        assert_eq!(unpad(&[4, 4, 4]), Err(PaddingError::BadPadding));
        assert_eq!(unpad(&[9, 1, 3, 3]), Err(PaddingError::BadPadding));
        assert_eq!(unpad(&[9, 3, 3, 3]), Ok(&[9][..]));
        assert_eq!(unpad(&[2, 2]), Ok(&[][..]));
    }
}
