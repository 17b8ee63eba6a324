//! A phone's add-ons sealed with their target's message secret (features.md 7.3, 7.4, 7.6),
//! built here from the protocol description, not from walink's code: an encrypted reaction
//! (`encReactionMessage`, use case `Enc Reaction`) and a secret-encrypted edit
//! (`secretEncryptedMessage` of type MESSAGE_EDIT, use case `Message Edit`):
//!
//! ```text
//! key = HKDF-SHA256(secret, salt none, info = targetId || targetAuthor || modifier || useCase, 32)
//! AES-256-GCM, 12-byte IV, empty AAD
//! ```

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use sha2::Sha256;
use walink_core::proto::wa;

use super::*;

/// `SecretEncryptedMessage.SecretEncType.MESSAGE_EDIT`.
const MESSAGE_EDIT: i32 = 2;

/// The target of an add-on, from the phone's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOnTarget {
    /// The chat (a user, or a group).
    pub chat: String,
    /// The target's message id.
    pub id: String,
    /// The target's author (a user JID, phone-number form).
    pub author: String,
    /// The target's `messageContextInfo.messageSecret`.
    pub secret: Vec<u8>,
}

fn seal(
    target: &AddOnTarget,
    modifier: &str,
    use_case: &str,
    iv: [u8; 12],
    plain: &[u8],
) -> Option<Vec<u8>> {
    let info = [
        target.id.as_bytes(),
        target.author.as_bytes(),
        modifier.as_bytes(),
        use_case.as_bytes(),
    ]
    .concat();
    let mut key = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(None, &target.secret)
        .expand(&info, &mut key)
        .ok()?;
    let cipher = Aes256Gcm::new_from_slice(&key).ok()?;
    cipher
        .encrypt(
            &iv.into(),
            Payload {
                msg: plain,
                aad: &[],
            },
        )
        .ok()
}

impl Server {
    /// The phone of `user` reacts with `emoji` to `target` in an encrypted reaction. Returns
    /// the reaction's message id.
    pub fn phone_send_enc_reaction(
        &mut self,
        now: Timestamp,
        user: &str,
        target: &AddOnTarget,
        emoji: &str,
    ) -> Result<String, SimError> {
        let modifier = Jid::new(user, DEFAULT_USER_SERVER).to_string();
        let plain = wa::message::ReactionMessage {
            text: Some(emoji.to_owned()),
            sender_timestamp_ms: i64::try_from(now).ok(),
            ..Default::default()
        };
        let iv: [u8; 12] = self.rng.bytes();
        let payload = seal(
            target,
            &modifier,
            "Enc Reaction",
            iv,
            &prost::Message::encode_to_vec(&plain),
        )
        .ok_or_else(|| SimError::Media("sealing the reaction".into()))?;
        let message = wa::Message {
            enc_reaction_message: Some(wa::message::EncReactionMessage {
                target_message_key: Some(self.addon_key(user, target)),
                enc_payload: Some(payload),
                enc_iv: Some(iv.to_vec()),
            }),
            ..Default::default()
        };
        self.phone_send_message(now, user, &target.chat, message)
    }

    /// The phone of `user` edits its own message `target` to `text` in a secret-encrypted
    /// edit. Returns the edit's message id.
    pub fn phone_send_secret_edit(
        &mut self,
        now: Timestamp,
        user: &str,
        target: &AddOnTarget,
        text: &str,
    ) -> Result<String, SimError> {
        let modifier = Jid::new(user, DEFAULT_USER_SERVER).to_string();
        let edited = wa::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
        let iv: [u8; 12] = self.rng.bytes();
        let payload = seal(
            target,
            &modifier,
            "Message Edit",
            iv,
            &prost::Message::encode_to_vec(&edited),
        )
        .ok_or_else(|| SimError::Media("sealing the edit".into()))?;
        let message = wa::Message {
            secret_encrypted_message: Some(wa::message::SecretEncryptedMessage {
                target_message_key: Some(self.addon_key(user, target)),
                enc_payload: Some(payload),
                enc_iv: Some(iv.to_vec()),
                secret_enc_type: Some(MESSAGE_EDIT),
            }),
            ..Default::default()
        };
        self.phone_send_message(now, user, &target.chat, message)
    }

    /// The target's key from the phone of `user`'s point of view.
    fn addon_key(&self, user: &str, target: &AddOnTarget) -> wa::MessageKey {
        let own = Jid::new(user, DEFAULT_USER_SERVER).to_string();
        let group = target.chat.ends_with(&format!("@{GROUP_SERVER}"));
        wa::MessageKey {
            remote_jid: Some(target.chat.clone()),
            from_me: Some(target.author == own),
            id: Some(target.id.clone()),
            participant: group.then(|| target.author.clone()),
        }
    }
}
