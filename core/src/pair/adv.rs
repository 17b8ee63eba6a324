//! ADV: checking the primary's signed device identity in `pair-success`, and the companion's
//! counter-signature sent back in `pair-device-sign`.
//!
//! Follows tulir/whatsmeow:pair.go (`handlePair`, `verifyAccountSignature`,
//! `generateDeviceSignature`), which WhiskeySockets/Baileys src/Utils/validate-connection.ts
//! (`configureSuccessfulPairing`) matches:
//!
//! 1. HMAC-SHA256 keyed with the adv secret over `[06 05 if the container's accountType is
//!    HOSTED] ‖ details` must equal the container's `hmac` (constant time);
//! 2. the primary's XEdDSA signature (a key that is not 32 bytes or a signature that is not 64
//!    counts as a mismatch, as in whatsmeow) (key `accountSignatureKey`) over
//!    `[06 05 if ADVDeviceIdentity.deviceType is HOSTED, else 06 00] ‖ details ‖ own identity pub`;
//! 3. the companion signs `06 01 ‖ details ‖ own identity pub ‖ accountSignatureKey`;
//! 4. the reply carries the signed identity with `accountSignatureKey` cleared, while the stored
//!    copy keeps it (it is sent later as `<device-identity>` in prekey messages).

use hmac::{Hmac, KeyInit, Mac};
use prost::Message as _;
use sha2::Sha256;

use super::PairError;
use super::keys::{AdvSecret, KeyPair};
use crate::proto::wa;
use crate::signal::xeddsa;

/// Prefix of the account signature for an end-to-end encrypted device.
pub const ACCOUNT_SIGNATURE_PREFIX: [u8; 2] = [6, 0];
/// Prefix of the device signature.
pub const DEVICE_SIGNATURE_PREFIX: [u8; 2] = [6, 1];
/// Prefix of the HMAC and of the account signature for a hosted (business-provider) account.
pub const HOSTED_ACCOUNT_SIGNATURE_PREFIX: [u8; 2] = [6, 5];

/// A signed device identity that passed every check, and what to do with it.
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    /// The signed identity to store: with `accountSignatureKey` and the new `deviceSignature`.
    pub signed_identity: wa::AdvSignedDeviceIdentity,
    /// The decoded `details` of the signed identity.
    pub device_identity: wa::AdvDeviceIdentity,
    /// The primary's identity key (`accountSignatureKey`), to trust for the account's device 0.
    pub primary_identity_key: [u8; 32],
    /// The `key-index` attribute of the reply's `<device-identity>`.
    pub key_index: u32,
    /// The reply's `<device-identity>` content: the signed identity without
    /// `accountSignatureKey`.
    pub reply: Vec<u8>,
}

/// Checks the `<device-identity>` content of `pair-success` (an encoded
/// `ADVSignedDeviceIdentityHMAC`) and counter-signs it with the companion's identity key.
/// `random` feeds the XEdDSA signature.
pub fn verify_device_identity(
    device_identity: &[u8],
    adv_secret: &AdvSecret,
    identity: &KeyPair,
    random: &[u8; 64],
) -> Result<VerifiedIdentity, PairError> {
    let container = wa::AdvSignedDeviceIdentityHmac::decode(device_identity)
        .map_err(|_| PairError::Malformed("ADVSignedDeviceIdentityHMAC"))?;
    let (Some(details), Some(hmac)) = (container.details, container.hmac) else {
        return Err(PairError::Malformed("ADVSignedDeviceIdentityHMAC"));
    };
    let hosted_account = container.account_type == Some(wa::AdvEncryptionType::Hosted as i32);
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(adv_secret.as_bytes())
        .map_err(|_| PairError::Malformed("adv secret"))?;
    if hosted_account {
        mac.update(&HOSTED_ACCOUNT_SIGNATURE_PREFIX);
    }
    mac.update(&details);
    mac.verify_slice(&hmac)
        .map_err(|_| PairError::HmacMismatch)?;

    let mut signed = wa::AdvSignedDeviceIdentity::decode(details.as_slice())
        .map_err(|_| PairError::Malformed("ADVSignedDeviceIdentity"))?;
    let inner = signed
        .details
        .as_deref()
        .ok_or(PairError::Malformed("ADVSignedDeviceIdentity"))?;
    let device = wa::AdvDeviceIdentity::decode(inner)
        .map_err(|_| PairError::Malformed("ADVDeviceIdentity"))?;
    let account_key: [u8; 32] = signed
        .account_signature_key
        .as_deref()
        .and_then(|key| key.try_into().ok())
        .ok_or(PairError::SignatureMismatch)?;
    let account_signature: [u8; 64] = signed
        .account_signature
        .as_deref()
        .and_then(|signature| signature.try_into().ok())
        .ok_or(PairError::SignatureMismatch)?;

    let hosted_device = device.device_type == Some(wa::AdvEncryptionType::Hosted as i32);
    let prefix = if hosted_device {
        HOSTED_ACCOUNT_SIGNATURE_PREFIX
    } else {
        ACCOUNT_SIGNATURE_PREFIX
    };
    let account_message = [&prefix[..], inner, identity.public()].concat();
    if !xeddsa::verify(&account_key, &account_message, &account_signature) {
        return Err(PairError::SignatureMismatch);
    }

    let device_message = [
        &DEVICE_SIGNATURE_PREFIX[..],
        inner,
        identity.public(),
        &account_key,
    ]
    .concat();
    let device_signature = xeddsa::sign(&identity.private_bytes(), &device_message, random);
    signed.device_signature = Some(device_signature.to_vec());

    let reply = wa::AdvSignedDeviceIdentity {
        account_signature_key: None,
        ..signed.clone()
    }
    .encode_to_vec();
    Ok(VerifiedIdentity {
        signed_identity: signed,
        key_index: device.key_index(),
        device_identity: device,
        primary_identity_key: account_key,
        reply,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A pair-success `<device-identity>` as a primary with identity `account` would build it.
    fn primary_signs(
        account: &KeyPair,
        companion: &KeyPair,
        secret: &AdvSecret,
        hosted: bool,
    ) -> Vec<u8> {
        let hosted_type = hosted.then_some(wa::AdvEncryptionType::Hosted as i32);
        let details = wa::AdvDeviceIdentity {
            raw_id: Some(77),
            timestamp: Some(1_700_000_000),
            key_index: Some(3),
            account_type: hosted_type,
            device_type: hosted_type,
        }
        .encode_to_vec();
        let prefix = if hosted { [6, 5] } else { [6, 0] };
        let message = [&prefix[..], &details, companion.public()].concat();
        let signature = xeddsa::sign(&account.private_bytes(), &message, &[9; 64]);
        let signed = wa::AdvSignedDeviceIdentity {
            details: Some(details),
            account_signature_key: Some(account.public().to_vec()),
            account_signature: Some(signature.to_vec()),
            device_signature: None,
        }
        .encode_to_vec();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        if hosted {
            mac.update(&[6, 5]);
        }
        mac.update(&signed);
        wa::AdvSignedDeviceIdentityHmac {
            details: Some(signed),
            hmac: Some(mac.finalize().into_bytes().to_vec()),
            account_type: hosted_type,
        }
        .encode_to_vec()
    }

    #[test]
    fn accepts_a_genuine_identity_and_counter_signs_it() {
        for hosted in [false, true] {
            let account = KeyPair::from_private([1; 32]);
            let companion = KeyPair::from_private([2; 32]);
            let secret = AdvSecret::new([3; 32]);
            let bytes = primary_signs(&account, &companion, &secret, hosted);
            let verified = verify_device_identity(&bytes, &secret, &companion, &[4; 64]).unwrap();
            assert_eq!(verified.key_index, 3);
            assert_eq!(&verified.primary_identity_key, account.public());
            let reply = wa::AdvSignedDeviceIdentity::decode(verified.reply.as_slice()).unwrap();
            assert_eq!(reply.account_signature_key, None);
            let details = reply.details.clone().unwrap();
            let message = [&[6, 1][..], &details, companion.public(), account.public()].concat();
            let signature: [u8; 64] = reply.device_signature.unwrap().try_into().unwrap();
            assert!(xeddsa::verify(companion.public(), &message, &signature));
            assert_eq!(
                verified.signed_identity.account_signature_key.as_deref(),
                Some(&account.public()[..])
            );
        }
    }

    #[test]
    fn refuses_a_wrong_secret_a_wrong_signer_and_garbage() {
        let account = KeyPair::from_private([1; 32]);
        let companion = KeyPair::from_private([2; 32]);
        let secret = AdvSecret::new([3; 32]);
        let bytes = primary_signs(&account, &companion, &secret, false);
        let other = AdvSecret::new([4; 32]);
        assert_eq!(
            verify_device_identity(&bytes, &other, &companion, &[0; 64]).unwrap_err(),
            PairError::HmacMismatch
        );
        let stranger = KeyPair::from_private([5; 32]);
        assert_eq!(
            verify_device_identity(&bytes, &secret, &stranger, &[0; 64]).unwrap_err(),
            PairError::SignatureMismatch
        );
        for cut in 0..bytes.len() {
            assert!(verify_device_identity(&bytes[..cut], &secret, &companion, &[0; 64]).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_give_typed_errors(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let companion = KeyPair::from_private([2; 32]);
            let result = verify_device_identity(&bytes, &AdvSecret::new([3; 32]), &companion, &[0; 64]);
            proptest::prop_assert!(matches!(result, Err(PairError::Malformed(_) | PairError::HmacMismatch)));
        }
    }
}
