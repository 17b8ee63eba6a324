//! Message ids in WhatsApp Web's current format.
//!
//! `"3EB0"` followed by the first 9 bytes, in upper-case hex, of
//! `SHA-256(unix_seconds as u64 big-endian || own_user || "@c.us" || 16 random bytes)`, 22
//! characters in all. Sources: tulir/whatsmeow `send.go` `GenerateMessageID` (the bytes appended
//! in this order, the user part omitted when not logged in) and WhiskeySockets/Baileys
//! `src/Utils/generics.ts` `generateMessageIDV2` (the same fields in a fixed 44-byte buffer;
//! the format, prefix and length agree). Older clients used `"3EB0"` + 18 random hex bytes.

use sha2::{Digest, Sha256};

/// The prefix of every id WhatsApp Web generates.
pub const MESSAGE_ID_PREFIX: &str = "3EB0";

/// Length of a generated id: the prefix plus 18 hex digits.
pub const MESSAGE_ID_LEN: usize = 22;

/// Builds a message id from the time (Unix milliseconds), the own account's user part (the
/// phone number, `None` before login) and 16 random bytes drawn by the caller.
pub fn generate_message_id(now_ms: u64, own_user: Option<&str>, random: &[u8; 16]) -> String {
    let mut hasher = Sha256::new();
    hasher.update((now_ms / 1000).to_be_bytes());
    if let Some(user) = own_user.filter(|user| !user.is_empty()) {
        hasher.update(user.as_bytes());
        hasher.update(b"@c.us");
    }
    hasher.update(random);
    let digest = hasher.finalize();
    let mut id = String::with_capacity(MESSAGE_ID_LEN);
    id.push_str(MESSAGE_ID_PREFIX);
    for byte in digest.iter().take(9) {
        id.push(hex_digit(byte >> 4));
        id.push(hex_digit(byte & 0x0f));
    }
    id
}

fn hex_digit(nibble: u8) -> char {
    char::from(if nibble < 10 {
        b'0' + nibble
    } else {
        b'A' + nibble - 10
    })
}

/// Whether `id` has the shape of a generated id (prefix, length, upper-case hex).
#[cfg(any(test, feature = "internals-for-benches"))]
pub fn is_generated_id(id: &str) -> bool {
    id.len() == MESSAGE_ID_LEN
        && id.starts_with(MESSAGE_ID_PREFIX)
        && id
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'A'..=b'F').contains(&byte))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // sha256(00 00 00 00 65 53 f1 00 || "15551234567@c.us" || 00..0f), computed
        // independently with Node's crypto in tests/tests/client_messaging.rs as well.
        let random: [u8; 16] = core::array::from_fn(|i| i as u8);
        let id = generate_message_id(1_700_000_000_123, Some("15551234567"), &random);
        let mut data = 1_700_000_000u64.to_be_bytes().to_vec();
        data.extend_from_slice(b"15551234567@c.us");
        data.extend_from_slice(&random);
        let digest = Sha256::digest(&data);
        let expected: String = digest[..9].iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(id, format!("3EB0{expected}"));
        assert!(is_generated_id(&id));
    }

    #[test]
    fn differs_with_each_input_and_keeps_its_shape() {
        let a = generate_message_id(1_000, Some("1"), &[0; 16]);
        let b = generate_message_id(1_000, Some("1"), &[1; 16]);
        let c = generate_message_id(2_000, Some("1"), &[0; 16]);
        let d = generate_message_id(1_000, None, &[0; 16]);
        let e = generate_message_id(1_999, Some("1"), &[0; 16]);
        for id in [&a, &b, &c, &d] {
            assert!(is_generated_id(id), "{id}");
        }
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(a, e, "only whole seconds enter the hash");
        assert!(!is_generated_id("3EB0abc"));
        assert!(!is_generated_id("3EB0123456789abcdef012"));
    }
}
