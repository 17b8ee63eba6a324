//! Add-ons sealed with their target's message secret (features.md 7.3, 7.4, 7.6): encrypted
//! reactions (`encReactionMessage`, use case `Enc Reaction`) and secret-encrypted edits
//! (`secretEncryptedMessage`, `Message Edit`; poll edits and added options `Poll Edit`),
//! opened into the plain add-on they carry (whatsmeow `DecryptReaction` /
//! `DecryptSecretEncryptedMessage`, whatsapp-rust `secret_enc_addon`):
//!
//! ```text
//! key = HKDF-SHA256(secret, info = targetId || targetAuthor || modifier || useCase, 32)
//! AES-256-GCM, 12-byte IV, empty AAD; payload = ciphertext || tag
//! ```
//!
//! The plaintext of a reaction is a `ReactionMessage` without its key; of an edit, the new
//! content (a `Message`). Both JIDs are users without a device; a receiver tries the forms it
//! knows (phone number and LID), as for votes.

use prost::Message as _;
use walink_crypto::Aes256GcmKey;
use zeroize::Zeroizing;

use super::poll::{SECRET_LEN, add_on_key};
use crate::proto::wa;

/// The use case of encrypted reactions.
pub const USE_CASE_ENC_REACTION: &str = "Enc Reaction";
/// The use case of secret-encrypted message edits.
pub const USE_CASE_MESSAGE_EDIT: &str = "Message Edit";
/// The use case of secret-encrypted poll edits and added poll options.
pub const USE_CASE_POLL_EDIT: &str = "Poll Edit";

/// `SecretEncType` values (waE2E `SecretEncryptedMessage.SecretEncType`).
const SECRET_ENC_MESSAGE_EDIT: i32 = 2;
const SECRET_ENC_POLL_EDIT: i32 = 4;
const SECRET_ENC_POLL_ADD_OPTION: i32 = 5;

/// The use case of a `secretEncryptedMessage` of type `enc_type`, when walink opens it.
pub fn secret_use_case(enc_type: Option<i32>) -> Option<&'static str> {
    match enc_type? {
        SECRET_ENC_MESSAGE_EDIT => Some(USE_CASE_MESSAGE_EDIT),
        SECRET_ENC_POLL_EDIT | SECRET_ENC_POLL_ADD_OPTION => Some(USE_CASE_POLL_EDIT),
        _ => None,
    }
}

/// Seals `plaintext` as an add-on to `target_id` by `author`, made by `modifier` (tests and
/// walink-sim build with it; the receive path only opens).
pub fn seal(
    secret: &[u8; SECRET_LEN],
    (target_id, author, modifier): (&str, &str, &str),
    use_case: &str,
    iv: [u8; 12],
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    let key = add_on_key(secret, target_id, author, modifier, use_case);
    Aes256GcmKey::new(&key).seal(&iv, &[], plaintext)
}

/// Opens an add-on payload, trying each `(author, modifier)` pair of `candidates` in turn.
pub fn open(
    secret: &[u8; SECRET_LEN],
    target_id: &str,
    candidates: &[(&str, &str)],
    use_case: &str,
    iv: &[u8],
    payload: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let iv: [u8; 12] = iv.try_into().ok()?;
    candidates.iter().find_map(|(author, modifier)| {
        let key = add_on_key(secret, target_id, author, modifier, use_case);
        Aes256GcmKey::new(&key)
            .open(&iv, &[], payload)
            .map(Zeroizing::new)
    })
}

/// The reaction an `encReactionMessage` carries, with `key` its (already rewritten) target.
pub fn open_reaction(
    secret: &[u8; SECRET_LEN],
    candidates: &[(&str, &str)],
    sealed: &wa::message::EncReactionMessage,
) -> Option<wa::message::ReactionMessage> {
    let key = sealed.target_message_key.clone()?;
    let target = key.id.as_deref()?;
    let plain = open(
        secret,
        target,
        candidates,
        USE_CASE_ENC_REACTION,
        sealed.enc_iv.as_deref()?,
        sealed.enc_payload.as_deref()?,
    )?;
    let mut reaction = wa::message::ReactionMessage::decode(plain.as_slice()).ok()?;
    reaction.key = Some(key);
    Some(reaction)
}

/// The edit a `secretEncryptedMessage` carries, as the `protocolMessage` a plain edit is
/// (`MESSAGE_EDIT`, its target key and the new content).
pub fn open_edit(
    secret: &[u8; SECRET_LEN],
    candidates: &[(&str, &str)],
    sealed: &wa::message::SecretEncryptedMessage,
) -> Option<wa::message::ProtocolMessage> {
    let use_case = secret_use_case(sealed.secret_enc_type)?;
    let key = sealed.target_message_key.clone()?;
    let target = key.id.as_deref()?;
    let plain = open(
        secret,
        target,
        candidates,
        use_case,
        sealed.enc_iv.as_deref()?,
        sealed.enc_payload.as_deref()?,
    )?;
    let edited = wa::Message::decode(plain.as_slice()).ok()?;
    Some(wa::message::ProtocolMessage {
        key: Some(key),
        r#type: Some(wa::message::protocol_message::Type::MessageEdit as i32),
        edited_message: Some(Box::new(edited)),
        ..Default::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const TARGET: &str = "3EB0TARGET00000000";
    const AUTHOR: &str = "111111111111@s.whatsapp.net";
    const MODIFIER: &str = "222222222222@s.whatsapp.net";
    const MODIFIER_LID: &str = "99999@lid";

    fn key() -> wa::MessageKey {
        wa::MessageKey {
            remote_jid: Some(AUTHOR.into()),
            from_me: Some(false),
            id: Some(TARGET.into()),
            participant: None,
        }
    }

    #[test]
    fn the_add_on_key_matches_the_known_answer_and_the_aad_is_empty() {
        // The poll-vote vector's secret and JIDs (features.md 7.7) under "Enc Reaction":
        // computed independently with Python's hashlib/hmac (HKDF-SHA256, zero salt; the same
        // code gives the features.md "Poll Vote" key).
        let key = add_on_key(
            &[0xaa; 32],
            "3EB0POLL0000000000",
            AUTHOR,
            MODIFIER,
            USE_CASE_ENC_REACTION,
        );
        assert_eq!(
            hex::encode(*key),
            "8c390fd44abfa9e4ffbb588abea2bfdb9f13f8adb1503cd8ad9f5c1c0578ea92"
        );
        let sealed = seal(
            &[0xaa; 32],
            ("3EB0POLL0000000000", AUTHOR, MODIFIER),
            USE_CASE_ENC_REACTION,
            [1; 12],
            b"x",
        )
        .unwrap();
        let again = Aes256GcmKey::new(&key)
            .open(&[1; 12], &[], &sealed)
            .unwrap();
        assert_eq!(again, b"x");
        assert!(
            Aes256GcmKey::new(&key)
                .open(&[1; 12], b"aad", &sealed)
                .is_none()
        );
    }

    #[test]
    fn an_encrypted_reaction_opens_under_the_form_it_was_made_in() {
        let secret = [7u8; 32];
        let plain = wa::message::ReactionMessage {
            text: Some("🔥".into()),
            sender_timestamp_ms: Some(1_780_000_000_000),
            ..Default::default()
        };
        let payload = seal(
            &secret,
            (TARGET, AUTHOR, MODIFIER_LID),
            USE_CASE_ENC_REACTION,
            [2; 12],
            &plain.encode_to_vec(),
        )
        .unwrap();
        let sealed = wa::message::EncReactionMessage {
            target_message_key: Some(key()),
            enc_payload: Some(payload),
            enc_iv: Some(vec![2; 12]),
        };
        // The phone-number form alone does not open it; with the LID it does.
        assert!(open_reaction(&secret, &[(AUTHOR, MODIFIER)], &sealed).is_none());
        let opened = open_reaction(
            &secret,
            &[(AUTHOR, MODIFIER), (AUTHOR, MODIFIER_LID)],
            &sealed,
        )
        .unwrap();
        assert_eq!(opened.text.as_deref(), Some("🔥"));
        assert_eq!(opened.key, Some(key()));
        // Another secret, a cut payload, a bad IV: nothing.
        assert!(open_reaction(&[8; 32], &[(AUTHOR, MODIFIER_LID)], &sealed).is_none());
        let mut cut = sealed.clone();
        cut.enc_payload.as_mut().unwrap().pop();
        assert!(open_reaction(&secret, &[(AUTHOR, MODIFIER_LID)], &cut).is_none());
        let mut bad_iv = sealed;
        bad_iv.enc_iv = Some(vec![2; 11]);
        assert!(open_reaction(&secret, &[(AUTHOR, MODIFIER_LID)], &bad_iv).is_none());
    }

    #[test]
    fn a_secret_encrypted_edit_opens_as_a_plain_edit() {
        let secret = [9u8; 32];
        let new = wa::Message {
            conversation: Some("edited".into()),
            ..Default::default()
        };
        let payload = seal(
            &secret,
            (TARGET, AUTHOR, AUTHOR),
            USE_CASE_MESSAGE_EDIT,
            [3; 12],
            &new.encode_to_vec(),
        )
        .unwrap();
        let mut sealed = wa::message::SecretEncryptedMessage {
            target_message_key: Some(key()),
            enc_payload: Some(payload),
            enc_iv: Some(vec![3; 12]),
            secret_enc_type: Some(SECRET_ENC_MESSAGE_EDIT),
        };
        let edit = open_edit(&secret, &[(AUTHOR, AUTHOR)], &sealed).unwrap();
        assert_eq!(
            edit.r#type,
            Some(wa::message::protocol_message::Type::MessageEdit as i32)
        );
        assert_eq!(edit.key, Some(key()));
        assert_eq!(
            edit.edited_message.unwrap().conversation.as_deref(),
            Some("edited")
        );
        // The use case is part of the key: a poll edit's type does not open an edit.
        sealed.secret_enc_type = Some(SECRET_ENC_POLL_EDIT);
        assert!(open_edit(&secret, &[(AUTHOR, AUTHOR)], &sealed).is_none());
        sealed.secret_enc_type = Some(1);
        assert!(open_edit(&secret, &[(AUTHOR, AUTHOR)], &sealed).is_none());
    }
}
