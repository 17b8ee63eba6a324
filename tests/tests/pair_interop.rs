//! walink's pairing crypto against Baileys (tests/oracle/pair.mjs): the code alphabet, the
//! PBKDF2 key, the AES-CTR wrap, the QR payload, pair-success verification and the
//! pair-device-sign reply, and code pairing end to end with a primary built from Baileys'
//! primitives.

use prost::Message as _;
use serde_json::{Value, json};
use walink_core::pair::{
    self, AdvSecret, ClientType, FinishRandom, KeyPair, PairError, PairingCode,
};
use walink_core::proto::wa;
use walink_sim::oracle::Oracle;

type Oops = Box<dyn std::error::Error>;

/// Deterministic test bytes (xorshift64*); the seed is in every assertion message.
struct Bytes(u64);

impl Bytes {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for byte in &mut out {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *byte = (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
        out
    }

    /// A clamped Curve25519 private key, as libsignal generates them.
    fn key_pair(&mut self) -> ([u8; 32], KeyPair) {
        let mut private = self.array::<32>();
        private[0] &= 248;
        private[31] &= 127;
        private[31] |= 64;
        (private, KeyPair::from_private(private))
    }
}

fn text(value: &Value) -> Result<&str, Oops> {
    value
        .as_str()
        .ok_or_else(|| format!("not a string: {value}").into())
}

fn bytes(value: &Value) -> Result<Vec<u8>, Oops> {
    Ok(hex::decode(text(value)?)?)
}

fn key(value: &Value) -> Result<[u8; 32], Oops> {
    bytes(value)?.try_into().map_err(|_| "not 32 bytes".into())
}

#[test]
fn code_alphabet_matches_baileys() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("pair.mjs")?;
    let mut random = Bytes(0x5eed_0001);
    let mut inputs = vec![[0; 5], [0, 0, 0, 0, 0x1f], [0xff; 5], [1, 2, 3, 4, 5]];
    inputs.extend((0..200).map(|_| random.array::<5>()));
    for input in inputs {
        let theirs = oracle.call("crockford", json!({ "bytes": hex::encode(input) }))?;
        assert_eq!(
            PairingCode::from_random(input).as_str(),
            text(&theirs)?,
            "{input:?}"
        );
    }
    Ok(())
}

#[test]
fn code_key_and_wrap_match_baileys() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("pair.mjs")?;
    let mut random = Bytes(0x5eed_0002);
    // The last iv has its low 64 bits all ones, so the counter carries into the high half.
    let mut last_iv = [0xff; 16];
    last_iv[..8].copy_from_slice(&random.array::<8>());
    for iv in [random.array::<16>(), random.array::<16>(), last_iv] {
        let code = PairingCode::from_random(random.array());
        let salt = random.array::<32>();
        let public = random.array::<32>();
        let their_key = oracle.call(
            "pairingKey",
            json!({ "code": code.as_str(), "salt": hex::encode(salt) }),
        )?;
        assert_eq!(hex::encode(*code.derive_key(&salt)), text(&their_key)?);
        let their_ct = oracle.call(
            "ctr",
            json!({ "key": their_key, "iv": hex::encode(iv), "data": hex::encode(public) }),
        )?;
        let wrapped = pair::wrap_ephemeral_key(&code, &public, &salt, &iv);
        assert_eq!(&wrapped[..32], &salt);
        assert_eq!(&wrapped[32..48], &iv);
        assert_eq!(hex::encode(&wrapped[48..]), text(&their_ct)?);
        assert_eq!(pair::unwrap_ephemeral_key(&code, &wrapped)?, public);
    }
    Ok(())
}

#[test]
fn qr_payload_matches_baileys() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("pair.mjs")?;
    let mut random = Bytes(0x5eed_0003);
    let (_, noise) = random.key_pair();
    let (_, identity) = random.key_pair();
    let secret = AdvSecret::new(random.array());
    // Baileys' browser tuples and the DeviceProps platform type walink derives the client from.
    for (browser, platform_type) in [
        (["Mac OS", "Chrome"], 1),
        (["Windows", "Firefox"], 2),
        (["Windows", "IE"], 3),
        (["Linux", "Opera"], 4),
        (["Mac OS", "Safari"], 5),
        (["Windows", "Edge"], 6),
        (["Mac OS", "Desktop"], 7),
        (["Windows", "Desktop"], 21),
        (["Ubuntu", "walink"], 0),
    ] {
        let theirs = oracle.call(
            "qr",
            json!({
                "ref": "2@Qm9ndXM=,extra",
                "noise": hex::encode(noise.public()),
                "identity": hex::encode(identity.public()),
                "adv": hex::encode(secret.as_bytes()),
                "browser": browser,
            }),
        )?;
        let ours = pair::qr_payload(
            "2@Qm9ndXM=,extra",
            &noise,
            &identity,
            &secret,
            ClientType::from_platform_type(platform_type),
        );
        assert_eq!(ours, text(&theirs)?, "{browser:?}");
    }
    Ok(())
}

/// The signed identity without its device signature, to compare walink's with Baileys'.
fn without_device_signature(bytes: &[u8]) -> Result<wa::AdvSignedDeviceIdentity, Oops> {
    let mut signed = wa::AdvSignedDeviceIdentity::decode(bytes)?;
    signed.device_signature = None;
    Ok(signed)
}

#[test]
fn pair_success_verifies_like_baileys_and_the_reply_passes_the_servers_check() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("pair.mjs")?;
    let mut random = Bytes(0x5eed_0004);
    for (account_hosted, device_hosted) in
        [(false, false), (true, false), (false, true), (true, true)]
    {
        let case = format!("account hosted {account_hosted}, device hosted {device_hosted}");
        let (private, identity) = random.key_pair();
        let secret = AdvSecret::new(random.array());
        let phone = oracle.call(
            "pairSuccess",
            json!({
                "companionIdentity": hex::encode(identity.public()),
                "advSecret": hex::encode(secret.as_bytes()),
                "accountHosted": account_hosted,
                "deviceHosted": device_hosted,
                "keyIndex": 5,
            }),
        )?;
        let device_identity = bytes(&phone["deviceIdentity"])?;
        let account_key = key(&phone["accountKey"])?;

        let verified =
            pair::verify_device_identity(&device_identity, &secret, &identity, &random.array())?;
        assert_eq!(verified.key_index, 5, "{case}");
        assert_eq!(verified.primary_identity_key, account_key, "{case}");

        let check = oracle.call(
            "checkReply",
            json!({
                "reply": hex::encode(&verified.reply),
                "companionIdentity": hex::encode(identity.public()),
                "accountKey": hex::encode(account_key),
            }),
        )?;
        assert_eq!(
            check,
            json!({ "hasAccountKey": false, "deviceSignatureVerifies": true }),
            "{case}"
        );

        let baileys = oracle.call(
            "baileysPairing",
            json!({
                "deviceIdentity": hex::encode(&device_identity),
                "advSecret": hex::encode(secret.as_bytes()),
                "identityPrivate": hex::encode(private),
                "identityPublic": hex::encode(identity.public()),
            }),
        )?;
        assert_eq!(baileys.get("error"), None, "{case}");
        assert_eq!(baileys["keyIndex"], json!("5"), "{case}");
        assert_eq!(
            without_device_signature(&verified.reply)?,
            without_device_signature(&bytes(&baileys["reply"])?)?,
            "{case}"
        );
        let mut stored = verified.signed_identity.clone();
        stored.device_signature = None;
        assert_eq!(
            stored,
            without_device_signature(&bytes(&baileys["stored"])?)?,
            "{case}"
        );
    }
    Ok(())
}

#[test]
fn tampered_pair_success_gives_typed_errors() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("pair.mjs")?;
    let mut random = Bytes(0x5eed_0005);
    let (private, identity) = random.key_pair();
    let secret = AdvSecret::new(random.array());
    for (tamper, expected) in [
        ("hmac", PairError::HmacMismatch),
        ("signature", PairError::SignatureMismatch),
    ] {
        let phone = oracle.call(
            "pairSuccess",
            json!({
                "companionIdentity": hex::encode(identity.public()),
                "advSecret": hex::encode(secret.as_bytes()),
                "keyIndex": 1,
                "tamper": tamper,
            }),
        )?;
        let device_identity = bytes(&phone["deviceIdentity"])?;
        let ours = pair::verify_device_identity(&device_identity, &secret, &identity, &[0; 64]);
        assert_eq!(ours.err(), Some(expected.clone()), "{tamper}");
        let (code, reason) = expected.reply_error();
        assert_eq!(code, 401);
        assert!(reason.ends_with("-mismatch"));
        let signature_verifies = oracle.call(
            "accountSignatureVerifies",
            json!({
                "deviceIdentity": hex::encode(&device_identity),
                "companionIdentity": hex::encode(identity.public()),
            }),
        )?;
        assert_eq!(signature_verifies, json!(tamper != "signature"), "{tamper}");
        let baileys = oracle.call(
            "baileysPairing",
            json!({
                "deviceIdentity": hex::encode(&device_identity),
                "advSecret": hex::encode(secret.as_bytes()),
                "identityPrivate": hex::encode(private),
                "identityPublic": hex::encode(identity.public()),
            }),
        )?;
        // Baileys rc14 checks the HMAC but, through its `Curve.verify`, accepts any account
        // signature (see tests/oracle/pair.mjs); libsignal's verdict above is the reference.
        if tamper == "hmac" {
            assert!(
                baileys.get("error").is_some(),
                "Baileys accepted a bad hmac"
            );
        }
    }

    // A genuine identity under the wrong secret, or cut short anywhere: typed errors, no panic.
    let phone = oracle.call(
        "pairSuccess",
        json!({
            "companionIdentity": hex::encode(identity.public()),
            "advSecret": hex::encode(secret.as_bytes()),
            "keyIndex": 1,
        }),
    )?;
    let device_identity = bytes(&phone["deviceIdentity"])?;
    let wrong = AdvSecret::new(random.array());
    assert_eq!(
        pair::verify_device_identity(&device_identity, &wrong, &identity, &[0; 64]).err(),
        Some(PairError::HmacMismatch)
    );
    for cut in 0..device_identity.len() {
        let result =
            pair::verify_device_identity(&device_identity[..cut], &secret, &identity, &[0; 64]);
        assert!(
            matches!(
                result,
                Err(PairError::Malformed(_) | PairError::HmacMismatch)
            ),
            "cut at {cut}: {result:?}"
        );
    }
    assert_eq!(
        PairError::Malformed("x").reply_error(),
        (500, "internal-error")
    );
    Ok(())
}

#[test]
fn code_pairing_end_to_end_with_a_baileys_primary() -> Result<(), Oops> {
    let mut oracle = Oracle::spawn("pair.mjs")?;
    let mut random = Bytes(0x5eed_0006);
    let code = PairingCode::from_random(random.array());
    let (link_private, link) = random.key_pair();
    let (identity_private, identity) = random.key_pair();

    // companion_hello: the primary reads walink's wrapped key.
    let wrapped = pair::wrap_ephemeral_key(&code, link.public(), &random.array(), &random.array());
    let hello = oracle.call(
        "primaryHello",
        json!({ "code": code.as_str(), "companionWrapped": hex::encode(wrapped) }),
    )?;
    assert_eq!(key(&hello["companionEphemeral"])?, *link.public());
    let primary_identity = key(&hello["primaryIdentity"])?;
    let wrapped_primary = bytes(&hello["wrappedPrimary"])?;

    // companion_finish, opened by the primary.
    let finish_random = FinishRandom {
        adv_random: random.array(),
        bundle_salt: random.array(),
        nonce: random.array(),
    };
    let finish = pair::companion_finish(
        &code,
        &link,
        &identity,
        &primary_identity,
        &wrapped_primary,
        &finish_random,
    )?;
    assert_eq!(finish.wrapped_key_bundle.len(), 156);
    let opened = oracle.call(
        "primaryFinish",
        json!({ "handle": hello["handle"], "bundle": hex::encode(&finish.wrapped_key_bundle) }),
    )?;
    assert_eq!(opened["length"], json!(96));
    assert_eq!(key(&opened["companionIdentity"])?, *identity.public());
    assert_eq!(key(&opened["primaryIdentity"])?, primary_identity);
    assert_eq!(key(&opened["advSecret"])?, *finish.adv_secret.as_bytes());

    // Baileys' companion, given the same randomness, sends the same bytes.
    let baileys = oracle.call(
        "baileysCompanionFinish",
        json!({
            "code": code.as_str(),
            "linkPrivate": hex::encode(link_private),
            "identityPrivate": hex::encode(identity_private),
            "identityPublic": hex::encode(identity.public()),
            "primaryIdentity": hex::encode(primary_identity),
            "wrappedPrimary": hex::encode(&wrapped_primary),
            "advRandom": hex::encode(finish_random.adv_random),
            "bundleSalt": hex::encode(finish_random.bundle_salt),
            "nonce": hex::encode(finish_random.nonce),
        }),
    )?;
    assert_eq!(bytes(&baileys["bundle"])?, finish.wrapped_key_bundle);
    assert_eq!(key(&baileys["advSecret"])?, *finish.adv_secret.as_bytes());

    // The pair-success that follows is keyed with the derived secret.
    let phone = oracle.call(
        "pairSuccess",
        json!({
            "companionIdentity": hex::encode(identity.public()),
            "advSecret": opened["advSecret"],
            "keyIndex": 9,
        }),
    )?;
    let verified = pair::verify_device_identity(
        &bytes(&phone["deviceIdentity"])?,
        &finish.adv_secret,
        &identity,
        &random.array(),
    )?;
    assert_eq!(verified.key_index, 9);

    // A companion that typed another code derives another secret, so pair-success fails.
    let other_code = PairingCode::from_random(random.array());
    let wrong = pair::companion_finish(
        &other_code,
        &link,
        &identity,
        &primary_identity,
        &wrapped_primary,
        &finish_random,
    )?;
    assert_eq!(
        pair::verify_device_identity(
            &bytes(&phone["deviceIdentity"])?,
            &wrong.adv_secret,
            &identity,
            &[0; 64]
        )
        .err(),
        Some(PairError::HmacMismatch)
    );
    assert!(
        pair::companion_finish(
            &code,
            &link,
            &identity,
            &primary_identity,
            &wrapped_primary[..70],
            &finish_random
        )
        .is_err()
    );
    Ok(())
}
