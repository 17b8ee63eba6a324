//! Pairing with a phone number: the eight-character code, the wrapped link ephemeral key
//! (`companion_hello`) and the key bundle and adv secret of `companion_finish`.
//!
//! Sources: tulir/whatsmeow:pair-code.go (`PairPhone`, `generateCompanionEphemeralKey`,
//! `handleCodePairNotification`), WhiskeySockets/Baileys src/Socket/socket.ts
//! (`requestPairingCode`), src/Socket/messages-recv.ts (`link_code_companion_reg`,
//! `decipherLinkPublicKey`), src/Utils/generics.ts (`bytesToCrockford`), src/Utils/crypto.ts
//! (`derivePairingCodeKey`), oxidezap/whatsapp-rust:wacore/src/pair_code.rs.

use std::fmt;

use aes::Aes256;
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::PairError;
use super::keys::{AdvSecret, KeyPair};

/// The 32 symbols of a pairing code, five bits each: digits and capitals without 0, I, O and U.
pub const ALPHABET: &[u8; 32] = b"123456789ABCDEFGHJKLMNPQRSTVWXYZ";
/// Characters in a pairing code.
pub const CODE_LEN: usize = 8;
/// PBKDF2-HMAC-SHA256 rounds that turn the code into the wrapping key (`2 << 16`).
pub const PBKDF2_ROUNDS: u32 = 131_072;
/// Length of a wrapped ephemeral key: salt (32) ‖ iv (16) ‖ AES-CTR ciphertext (32).
pub const WRAPPED_KEY_LEN: usize = 80;
/// Length of the `companion_finish` key bundle: salt (32) ‖ nonce (12) ‖ AES-GCM(96) + tag (16).
pub const KEY_BUNDLE_LEN: usize = 156;
/// HKDF info of the key-bundle encryption key.
const BUNDLE_INFO: &[u8] = b"link_code_pairing_key_bundle_encryption_key";
/// HKDF info of the adv secret.
const ADV_SECRET_INFO: &[u8] = b"adv_secret";

/// A pairing code: eight characters of [`ALPHABET`], typed by the user on the phone.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PairingCode([u8; CODE_LEN]);

impl PairingCode {
    /// The code of five random bytes: 40 bits, five at a time, most significant first.
    pub fn from_random(bytes: [u8; 5]) -> PairingCode {
        let mut value = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let mut code = [0u8; CODE_LEN];
        for slot in code.iter_mut().rev() {
            *slot = ALPHABET.get((value & 31) as usize).copied().unwrap_or(b'1');
            value >>= 5;
        }
        PairingCode(code)
    }

    /// A code chosen by the application: eight characters of [`ALPHABET`], optionally as
    /// `XXXX-XXXX`, in either case.
    pub fn parse(text: &str) -> Result<PairingCode, PairError> {
        let mut code = [0u8; CODE_LEN];
        let mut chars = text.bytes().filter(|&c| c != b'-');
        for slot in &mut code {
            let c = chars
                .next()
                .ok_or(PairError::InvalidCode)?
                .to_ascii_uppercase();
            if !ALPHABET.contains(&c) {
                return Err(PairError::InvalidCode);
            }
            *slot = c;
        }
        if chars.next().is_some() || text.bytes().filter(|&c| c == b'-').count() > 1 {
            return Err(PairError::InvalidCode);
        }
        Ok(PairingCode(code))
    }

    /// The eight characters, as sent through PBKDF2.
    pub fn as_str(&self) -> &str {
        // Every byte is from ALPHABET, so this is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The code as shown to the user: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let text = self.as_str();
        format!(
            "{}-{}",
            text.get(..4).unwrap_or(""),
            text.get(4..).unwrap_or("")
        )
    }

    /// PBKDF2-HMAC-SHA256(code, salt, 131 072 rounds, 32 bytes): the key that wraps both sides'
    /// link ephemeral keys.
    pub fn derive_key(&self, salt: &[u8]) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(
            &self.0,
            salt,
            PBKDF2_ROUNDS,
        ))
    }
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingCode(..)")
    }
}

/// AES-256-CTR, the IV being the initial 128-bit big-endian counter block.
fn aes_ctr(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) {
    let mut cipher = Ctr128BE::<Aes256>::new(key.into(), iv.into());
    cipher.apply_keystream(data);
}

/// `link_code_pairing_wrapped_companion_ephemeral_pub`: the companion's link ephemeral public
/// key encrypted under the code, as `salt ‖ iv ‖ AES-256-CTR(PBKDF2(code, salt), iv, key)`.
/// `salt` and `iv` must be fresh random bytes.
pub fn wrap_ephemeral_key(
    code: &PairingCode,
    public_key: &[u8; 32],
    salt: &[u8; 32],
    iv: &[u8; 16],
) -> [u8; WRAPPED_KEY_LEN] {
    let mut ciphertext = *public_key;
    aes_ctr(&code.derive_key(salt), iv, &mut ciphertext);
    let mut wrapped = [0u8; WRAPPED_KEY_LEN];
    let (head, rest) = wrapped.split_at_mut(32);
    let (middle, tail) = rest.split_at_mut(16);
    head.copy_from_slice(salt);
    middle.copy_from_slice(iv);
    tail.copy_from_slice(&ciphertext);
    wrapped
}

/// Opens a wrapped ephemeral key (the primary's, from `primary_hello`). A wrong code gives a
/// wrong key, not an error: only the pair-success HMAC tells.
pub fn unwrap_ephemeral_key(code: &PairingCode, wrapped: &[u8]) -> Result<[u8; 32], PairError> {
    let malformed = PairError::Malformed("wrapped ephemeral key");
    let wrapped: &[u8; WRAPPED_KEY_LEN] = wrapped.try_into().map_err(|_| malformed.clone())?;
    let (salt, rest) = wrapped.split_at(32);
    let (iv, ciphertext) = rest.split_at(16);
    let iv: &[u8; 16] = iv.try_into().map_err(|_| malformed.clone())?;
    let mut key: [u8; 32] = ciphertext.try_into().map_err(|_| malformed)?;
    aes_ctr(&code.derive_key(salt), iv, &mut key);
    Ok(key)
}

/// The random inputs of `companion_finish`; all must be fresh.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FinishRandom {
    /// Mixed into the adv secret and sent, encrypted, to the primary.
    pub adv_random: [u8; 32],
    /// HKDF salt of the key-bundle encryption key.
    pub bundle_salt: [u8; 32],
    /// AES-GCM nonce of the key bundle.
    pub nonce: [u8; 12],
}

/// What `companion_finish` sends, and the adv secret the coming pair-success is keyed with.
#[derive(Debug, Clone)]
pub struct CompanionFinish {
    /// `link_code_pairing_wrapped_key_bundle`: bundle salt ‖ nonce ‖ AES-256-GCM ciphertext
    /// of own identity pub ‖ primary identity pub ‖ adv random.
    pub wrapped_key_bundle: Vec<u8>,
    /// Replaces the stored adv secret.
    pub adv_secret: AdvSecret,
}

/// Answers `primary_hello`:
///
/// 1. `primary_ephemeral = unwrap(code, wrapped_primary_ephemeral)`;
/// 2. `ephemeral_shared = X25519(link_key, primary_ephemeral)`;
/// 3. `bundle_key = HKDF-SHA256(ephemeral_shared, salt = bundle_salt,
///    "link_code_pairing_key_bundle_encryption_key", 32)`;
/// 4. `bundle = bundle_salt ‖ nonce ‖ AES-256-GCM(bundle_key, nonce, no AAD,
///    identity pub ‖ primary identity pub ‖ adv_random)`;
/// 5. `adv_secret = HKDF-SHA256(ephemeral_shared ‖ X25519(identity, primary identity) ‖
///    adv_random, no salt, "adv_secret", 32)`.
pub fn companion_finish(
    code: &PairingCode,
    link_key: &KeyPair,
    identity: &KeyPair,
    primary_identity: &[u8; 32],
    wrapped_primary_ephemeral: &[u8],
    random: &FinishRandom,
) -> Result<CompanionFinish, PairError> {
    let primary_ephemeral = unwrap_ephemeral_key(code, wrapped_primary_ephemeral)?;
    let ephemeral_shared = link_key
        .agree(&primary_ephemeral)
        .ok_or(PairError::Malformed("primary ephemeral key"))?;
    let identity_shared = identity
        .agree(primary_identity)
        .ok_or(PairError::Malformed("primary identity key"))?;

    let mut bundle_key = Zeroizing::new([0u8; 32]);
    if !walink_crypto::hkdf_sha256(
        Some(&random.bundle_salt),
        ephemeral_shared.as_slice(),
        BUNDLE_INFO,
        bundle_key.as_mut_slice(),
    ) {
        return Err(PairError::Malformed("bundle key length"));
    }
    let plaintext =
        Zeroizing::new([&identity.public()[..], primary_identity, &random.adv_random].concat());
    let sealed = walink_crypto::Aes256GcmKey::new(&bundle_key)
        .seal(&random.nonce, &[], plaintext.as_slice())
        .ok_or(PairError::Malformed("key bundle"))?;
    let wrapped_key_bundle = [&random.bundle_salt[..], &random.nonce, &sealed].concat();

    let ikm = Zeroizing::new(
        [
            ephemeral_shared.as_slice(),
            identity_shared.as_slice(),
            &random.adv_random,
        ]
        .concat(),
    );
    let mut adv_secret = [0u8; 32];
    if !walink_crypto::hkdf_sha256(None, &ikm, ADV_SECRET_INFO, &mut adv_secret) {
        return Err(PairError::Malformed("adv secret length"));
    }
    let adv_secret = AdvSecret::new(adv_secret);
    Ok(CompanionFinish {
        wrapped_key_bundle,
        adv_secret,
    })
}

/// The `jid` user part of `companion_hello`: the phone number's digits, country code first.
/// Spaces, `+`, `-`, `.`, `(` and `)` are dropped; 7 to 15 digits are required (whatsmeow
/// rejects 6 or fewer, E.164 allows at most 15), and a leading 0 (a national number) is refused,
/// as in tulir/whatsmeow:pair-code.go (`ErrPhoneNumberTooShort`,
/// `ErrPhoneNumberIsNotInternational`).
pub fn normalize_phone_number(input: &str) -> Result<String, PairError> {
    let mut digits = String::with_capacity(16);
    for c in input.chars() {
        match c {
            '0'..='9' if digits.len() < 15 => digits.push(c),
            '0'..='9' => return Err(PairError::PhoneNumberTooLong),
            ' ' | '+' | '-' | '.' | '(' | ')' => {}
            _ => return Err(PairError::PhoneNumberInvalidCharacter),
        }
    }
    if digits.len() < 7 {
        return Err(PairError::PhoneNumberTooShort);
    }
    if digits.starts_with('0') {
        return Err(PairError::PhoneNumberNotInternational);
    }
    Ok(digits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// walink's transport notes, appendix A.1.
    #[test]
    fn code_alphabet_vectors() {
        for (bytes, code) in [
            ([0, 0, 0, 0, 0], "11111111"),
            ([0, 0, 0, 0, 0x1F], "1111111Z"),
            ([0xFF; 5], "ZZZZZZZZ"),
            ([1, 2, 3, 4, 5], "15217216"),
        ] {
            assert_eq!(PairingCode::from_random(bytes).as_str(), code);
        }
        assert_eq!(
            PairingCode::from_random([1, 2, 3, 4, 5]).display(),
            "1521-7216"
        );
    }

    /// walink's transport notes, appendix A.1.
    #[test]
    fn pbkdf2_vector() {
        let code = PairingCode::parse("ABCD1234").unwrap();
        assert_eq!(
            hex::encode(*code.derive_key(&[0; 32])),
            "7276bb91373faa30099d552168db69ab2dff233a17433da21edc43af2a77cedf"
        );
    }

    #[test]
    fn parses_custom_codes() {
        assert_eq!(
            PairingCode::parse("abcd-1234").unwrap().as_str(),
            "ABCD1234"
        );
        for bad in [
            "ABCD123",
            "ABCD12345",
            "ABCD123O",
            "AB-CD-1234",
            "ABCD123é",
            "",
        ] {
            assert_eq!(
                PairingCode::parse(bad),
                Err(PairError::InvalidCode),
                "{bad}"
            );
        }
    }

    #[test]
    fn wrap_and_unwrap_are_inverse() {
        let code = PairingCode::from_random([9, 8, 7, 6, 5]);
        let wrapped = wrap_ephemeral_key(&code, &[42; 32], &[1; 32], &[0xFF; 16]);
        assert_eq!(unwrap_ephemeral_key(&code, &wrapped), Ok([42; 32]));
        assert!(unwrap_ephemeral_key(&code, &wrapped[..79]).is_err());
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(
            normalize_phone_number("+1 (555) 123-4567").unwrap(),
            "15551234567"
        );
        assert_eq!(
            normalize_phone_number("123456"),
            Err(PairError::PhoneNumberTooShort)
        );
        assert_eq!(
            normalize_phone_number("0123456789"),
            Err(PairError::PhoneNumberNotInternational)
        );
        assert_eq!(
            normalize_phone_number("1234567890123456"),
            Err(PairError::PhoneNumberTooLong)
        );
        assert_eq!(
            normalize_phone_number("1555abc4567"),
            Err(PairError::PhoneNumberInvalidCharacter)
        );
    }

    proptest::proptest! {
        #[test]
        fn every_code_parses_back(bytes in proptest::array::uniform5(proptest::num::u8::ANY)) {
            let code = PairingCode::from_random(bytes);
            proptest::prop_assert_eq!(PairingCode::parse(&code.display()).unwrap(), code.clone());
            proptest::prop_assert!(code.as_str().bytes().all(|c| ALPHABET.contains(&c)));
        }

        #[test]
        fn phone_number_rules_hold(input in "[0-9 +()-.a]{0,24}") {
            match normalize_phone_number(&input) {
                Ok(digits) => {
                    proptest::prop_assert!((7..=15).contains(&digits.len()));
                    proptest::prop_assert!(!digits.starts_with('0'));
                    proptest::prop_assert!(digits.bytes().all(|c| c.is_ascii_digit()));
                }
                Err(error) => proptest::prop_assert!(error != PairError::InvalidCode),
            }
        }
    }
}
