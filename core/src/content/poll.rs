//! Polls: option hashes and the encryption of votes with the poll's message secret.
//!
//! A vote (`pollUpdateMessage.vote`) is a `PollVoteMessage` (the SHA-256 of each chosen option's
//! name) sealed with AES-256-GCM under a key derived from the poll's 32-byte
//! `messageContextInfo.messageSecret` (features.md 7.6, 7.7; whatsmeow `msgsecret.go`, Baileys
//! `decryptPollVote`):
//!
//! ```text
//! key = HKDF-SHA256(ikm = secret, salt = none, info = pollId || pollAuthor || voter || "Poll Vote", 32)
//! aad = pollId || 0x00 || voter
//! ```
//!
//! Both JIDs are users without a device. A vote made under a LID opens only with LIDs, so a
//! receiver tries the forms it knows ([`decrypt_vote`] takes the candidates).

use prost::Message as _;
use sha2::{Digest, Sha256};
use walink_crypto::Aes256GcmKey;
use zeroize::Zeroizing;

use crate::proto::wa;

/// The use case of poll votes in the message-secret key derivation.
pub const USE_CASE_POLL_VOTE: &str = "Poll Vote";

/// The length of a message secret.
pub const SECRET_LEN: usize = 32;

/// Why a vote could not be opened or made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PollError {
    /// The poll's secret is not 32 bytes.
    #[error("the poll's message secret is not 32 bytes")]
    BadSecret,
    /// The vote has no payload, or its IV is not 12 bytes.
    #[error("the vote is malformed")]
    Malformed,
    /// The vote did not authenticate under any of the JID forms tried.
    #[error("the vote does not open with the poll's secret")]
    Undecryptable,
    /// The plaintext is not a `PollVoteMessage`.
    #[error("the vote's plaintext is not a PollVoteMessage")]
    BadPlaintext,
}

/// The SHA-256 of an option's name: what a vote carries for it.
pub fn option_hash(name: &str) -> [u8; 32] {
    Sha256::digest(name.as_bytes()).into()
}

/// The key of an add-on to message `message_id` by `original_sender`, made by `modifier`, for
/// `use_case` (`Poll Vote`, `Enc Reaction`, `Message Edit`, ...).
pub fn add_on_key(
    secret: &[u8; SECRET_LEN],
    message_id: &str,
    original_sender: &str,
    modifier: &str,
    use_case: &str,
) -> Zeroizing<[u8; 32]> {
    let info = [
        message_id.as_bytes(),
        original_sender.as_bytes(),
        modifier.as_bytes(),
        use_case.as_bytes(),
    ]
    .concat();
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is within HKDF-SHA256's output.
    walink_crypto::hkdf_sha256(None, secret, &info, &mut key[..]);
    key
}

fn vote_aad(poll_id: &str, voter: &str) -> Vec<u8> {
    [poll_id.as_bytes(), &[0], voter.as_bytes()].concat()
}

fn secret_of(secret: &[u8]) -> Result<&[u8; SECRET_LEN], PollError> {
    secret.try_into().map_err(|_| PollError::BadSecret)
}

/// Who made a vote on which poll: the JIDs as the key derivation takes them.
#[derive(Clone, Copy, Debug)]
pub struct VoteParties<'a> {
    /// The poll's message id.
    pub poll_id: &'a str,
    /// The poll's author (user JID, no device).
    pub author: &'a str,
    /// The voter (user JID, no device).
    pub voter: &'a str,
}

/// Seals a vote for the options whose hashes are `selected`, with `iv`.
pub fn encrypt_vote(
    secret: &[u8],
    parties: VoteParties<'_>,
    selected: &[[u8; 32]],
    iv: [u8; 12],
) -> Result<wa::message::PollEncValue, PollError> {
    let secret = secret_of(secret)?;
    let key = add_on_key(
        secret,
        parties.poll_id,
        parties.author,
        parties.voter,
        USE_CASE_POLL_VOTE,
    );
    let plaintext = Zeroizing::new(
        wa::message::PollVoteMessage {
            selected_options: selected.iter().map(|hash| hash.to_vec()).collect(),
        }
        .encode_to_vec(),
    );
    let payload = Aes256GcmKey::new(&key)
        .seal(&iv, &vote_aad(parties.poll_id, parties.voter), &plaintext)
        .ok_or(PollError::Malformed)?;
    Ok(wa::message::PollEncValue {
        enc_payload: Some(payload),
        enc_iv: Some(iv.to_vec()),
    })
}

/// Opens a vote, trying each `(author, voter)` pair of `candidates` in turn (the JID forms the
/// receiver knows for the poll's author and the voter); returns the selected option hashes.
pub fn decrypt_vote(
    secret: &[u8],
    poll_id: &str,
    candidates: &[(&str, &str)],
    vote: &wa::message::PollEncValue,
) -> Result<Vec<Vec<u8>>, PollError> {
    let secret = secret_of(secret)?;
    let payload = vote.enc_payload.as_deref().ok_or(PollError::Malformed)?;
    let iv: [u8; 12] = vote
        .enc_iv
        .as_deref()
        .and_then(|iv| iv.try_into().ok())
        .ok_or(PollError::Malformed)?;
    for (author, voter) in candidates {
        let key = add_on_key(secret, poll_id, author, voter, USE_CASE_POLL_VOTE);
        if let Some(plaintext) =
            Aes256GcmKey::new(&key).open(&iv, &vote_aad(poll_id, voter), payload)
        {
            let plaintext = Zeroizing::new(plaintext);
            return wa::message::PollVoteMessage::decode(plaintext.as_slice())
                .map(|vote| vote.selected_options)
                .map_err(|_| PollError::BadPlaintext);
        }
    }
    Err(PollError::Undecryptable)
}

/// The poll a message creates: `pollCreationMessage` and its V2, V3 and V5 fields (V4 is a
/// wrapper, removed by [`super::unwrap()`]).
pub fn creation(message: &wa::Message) -> Option<&wa::message::PollCreationMessage> {
    message
        .poll_creation_message
        .as_deref()
        .or(message.poll_creation_message_v2.as_deref())
        .or(message.poll_creation_message_v3.as_deref())
        .or(message.poll_creation_message_v5.as_deref())
}

/// The option names of a poll, in order.
pub fn option_names(poll: &wa::message::PollCreationMessage) -> Vec<String> {
    poll.options
        .iter()
        .map(|option| option.option_name.clone().unwrap_or_default())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    const POLL: &str = "3EB0POLL0000000000";
    const AUTHOR: &str = "111111111111@s.whatsapp.net";
    const VOTER: &str = "222222222222@s.whatsapp.net";

    /// features.md 7.7's vector (computed independently, HKDF checked with an HMAC-only
    /// implementation).
    #[test]
    fn matches_the_vote_vector() {
        let secret = [0xaa; 32];
        let key = add_on_key(&secret, POLL, AUTHOR, VOTER, USE_CASE_POLL_VOTE);
        assert_eq!(
            hex(&key[..]),
            "e665949ee49a1dc86763cef1e86265627ae758a1f826ab3eba8bd30e885522de"
        );
        let iv: [u8; 12] = core::array::from_fn(|i| i as u8);
        let parties = VoteParties {
            poll_id: POLL,
            author: AUTHOR,
            voter: VOTER,
        };
        let vote = encrypt_vote(&secret, parties, &[option_hash("yes")], iv).unwrap();
        assert_eq!(
            hex(vote.enc_payload.as_deref().unwrap()),
            "53bce563ffa5a5e1b12011cd5e70a377aa9815b00dbe6dc956c17911e87110f6\
             fea332956b3ec81da6f555c400a356f09e81"
        );
        let selected = decrypt_vote(&secret, POLL, &[(AUTHOR, VOTER)], &vote).unwrap();
        assert_eq!(selected, vec![option_hash("yes").to_vec()]);
    }

    #[test]
    fn the_right_jid_forms_are_found_and_wrong_ones_fail() {
        let secret = [7; 32];
        let parties = VoteParties {
            poll_id: POLL,
            author: "900@lid",
            voter: "901@lid",
        };
        let vote = encrypt_vote(
            &secret,
            parties,
            &[option_hash("a"), option_hash("b")],
            [1; 12],
        )
        .unwrap();
        let tried = [(AUTHOR, VOTER), ("900@lid", "901@lid")];
        assert_eq!(decrypt_vote(&secret, POLL, &tried, &vote).unwrap().len(), 2);
        assert_eq!(
            decrypt_vote(&secret, POLL, &tried[..1], &vote),
            Err(PollError::Undecryptable)
        );
        assert_eq!(
            decrypt_vote(&[8; 32], POLL, &tried, &vote),
            Err(PollError::Undecryptable)
        );
        assert_eq!(
            decrypt_vote(&secret, "3EB0OTHER", &tried, &vote),
            Err(PollError::Undecryptable)
        );
        assert_eq!(
            decrypt_vote(&[1; 31], POLL, &tried, &vote),
            Err(PollError::BadSecret)
        );
        let mut short_iv = vote.clone();
        short_iv.enc_iv = Some(vec![1; 11]);
        assert_eq!(
            decrypt_vote(&secret, POLL, &tried, &short_iv),
            Err(PollError::Malformed)
        );
        assert_eq!(
            decrypt_vote(&secret, POLL, &tried, &Default::default()),
            Err(PollError::Malformed)
        );
    }

    #[test]
    fn every_creation_field_is_a_poll() {
        let poll = Box::new(wa::message::PollCreationMessage {
            name: Some("lunch?".into()),
            options: ["yes", "no"]
                .map(|name| wa::message::poll_creation_message::Option {
                    option_name: Some(name.into()),
                    option_hash: None,
                })
                .to_vec(),
            ..Default::default()
        });
        for set in [
            |m: &mut wa::Message, p| m.poll_creation_message = Some(p),
            |m: &mut wa::Message, p| m.poll_creation_message_v2 = Some(p),
            |m: &mut wa::Message, p| m.poll_creation_message_v3 = Some(p),
            |m: &mut wa::Message, p| m.poll_creation_message_v5 = Some(p),
        ] {
            let mut message = wa::Message::default();
            set(&mut message, poll.clone());
            assert_eq!(option_names(creation(&message).unwrap()), ["yes", "no"]);
        }
        assert!(creation(&wa::Message::default()).is_none());
    }
}
