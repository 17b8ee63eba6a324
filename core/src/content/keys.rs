//! The message keys of add-ons, seen from this device.
//!
//! A reaction, poll vote, revoke, edit, pin or keep names its target with a `MessageKey` from its
//! sender's point of view: `fromMe` means "written by the sender", `remoteJid` is the chat as the
//! sender sees it (in a 1:1 chat, us). Baileys rewrites reaction and vote keys to the receiver's
//! point of view (`cleanMessage`); walink does so for every add-on key, so that a host finds the
//! target with the key as it stands: `fromMe` is true when this account wrote the target,
//! `remoteJid` is the chat the add-on arrived in, and in groups `participant` names the target's
//! author. Keys in messages from this account's other devices are already ours and stay.

use crate::binary::{BROADCAST_SERVER, GROUP_SERVER, Jid};
use crate::proto::wa;

/// `ProtocolMessage.Type` values whose key names a target message.
const PROTOCOL_REVOKE: i32 = 0;
const PROTOCOL_MESSAGE_EDIT: i32 = 14;

/// Where a message arrived and who sent it.
#[derive(Clone, Copy, Debug)]
pub struct Perspective<'a> {
    /// The chat (user, LID, group or broadcast JID, without a device).
    pub chat: &'a Jid,
    /// The sender's user (without a device).
    pub sender: &'a Jid,
    /// Whether another device of this account sent it.
    pub from_me: bool,
    /// This account's users (its phone-number and LID forms, without a device).
    pub own: &'a [Jid],
}

impl Perspective<'_> {
    fn is_own(&self, jid: &Jid) -> bool {
        self.own
            .iter()
            .any(|own| own.user == jid.user && own.server == jid.server)
    }

    fn is_group(&self) -> bool {
        self.chat.server == GROUP_SERVER || self.chat.server == BROADCAST_SERVER
    }

    fn normalize(&self, key: &mut wa::MessageKey) {
        let author: Option<Jid> = if key.from_me == Some(true) {
            Some(self.sender.clone())
        } else {
            key.participant
                .as_deref()
                .filter(|p| !p.is_empty())
                .or(key.remote_jid.as_deref())
                .and_then(|jid| jid.parse::<Jid>().ok())
                .map(|jid| jid.to_non_device())
        };
        key.from_me = Some(author.as_ref().is_some_and(|a| self.is_own(a)));
        key.remote_jid = Some(self.chat.to_string());
        key.participant = match (self.is_group(), author) {
            (true, Some(author)) => Some(author.to_string()),
            _ => None,
        };
    }
}

/// Rewrites the target keys of the add-ons in `message` (reaction, encrypted reaction, poll
/// vote, revoke, edit, encrypted edit, pin, keep) to this device's point of view.
pub fn normalize_keys(message: &mut wa::Message, perspective: &Perspective<'_>) {
    if perspective.from_me {
        return;
    }
    let keys = [
        message
            .reaction_message
            .as_mut()
            .and_then(|m| m.key.as_mut()),
        message
            .enc_reaction_message
            .as_mut()
            .and_then(|m| m.target_message_key.as_mut()),
        message
            .poll_update_message
            .as_mut()
            .and_then(|m| m.poll_creation_message_key.as_mut()),
        message
            .protocol_message
            .as_mut()
            .filter(|m| matches!(m.r#type, Some(PROTOCOL_REVOKE | PROTOCOL_MESSAGE_EDIT)))
            .and_then(|m| m.key.as_mut()),
        message
            .secret_encrypted_message
            .as_mut()
            .and_then(|m| m.target_message_key.as_mut()),
        message
            .pin_in_chat_message
            .as_mut()
            .and_then(|m| m.key.as_mut()),
        message
            .keep_in_chat_message
            .as_mut()
            .and_then(|m| m.key.as_mut()),
    ];
    for key in keys.into_iter().flatten() {
        perspective.normalize(key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(remote: &str, from_me: bool, participant: Option<&str>) -> wa::MessageKey {
        wa::MessageKey {
            remote_jid: Some(remote.into()),
            from_me: Some(from_me),
            id: Some("3EB0AA".into()),
            participant: participant.map(Into::into),
        }
    }

    fn reaction(key: wa::MessageKey) -> wa::Message {
        wa::Message {
            reaction_message: Some(wa::message::ReactionMessage {
                key: Some(key),
                text: Some("👍".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn jid(text: &str) -> Jid {
        text.parse().unwrap()
    }

    const ME: &str = "111@s.whatsapp.net";
    const ME_LID: &str = "900@lid";
    const BOB: &str = "222@s.whatsapp.net";
    const CAROL: &str = "333@s.whatsapp.net";
    const GROUP: &str = "120363000000000001@g.us";

    fn normalized(message: wa::Message, chat: &str, sender: &str) -> wa::MessageKey {
        let own = [jid(ME), jid(ME_LID)];
        let (chat, sender) = (jid(chat), jid(sender));
        let mut message = message;
        normalize_keys(
            &mut message,
            &Perspective {
                chat: &chat,
                sender: &sender,
                from_me: false,
                own: &own,
            },
        );
        message.reaction_message.and_then(|r| r.key).unwrap()
    }

    #[test]
    fn a_peer_reacting_to_our_message_in_a_dm() {
        // Bob's view: the chat is us, the message is not his.
        let got = normalized(reaction(key(ME, false, None)), BOB, BOB);
        assert_eq!(got, key(BOB, true, None));
        // Through our LID.
        let got = normalized(reaction(key(ME_LID, false, None)), BOB, BOB);
        assert_eq!(got, key(BOB, true, None));
    }

    #[test]
    fn a_peer_reacting_to_its_own_message_in_a_dm() {
        let got = normalized(reaction(key(ME, true, None)), BOB, BOB);
        assert_eq!(got, key(BOB, false, None));
    }

    #[test]
    fn group_keys_name_the_author() {
        // Bob reacts to Carol's message.
        let got = normalized(reaction(key(GROUP, false, Some(CAROL))), GROUP, BOB);
        assert_eq!(got, key(GROUP, false, Some(CAROL)));
        // Bob reacts to his own.
        let got = normalized(reaction(key(GROUP, true, None)), GROUP, BOB);
        assert_eq!(got, key(GROUP, false, Some(BOB)));
        // Bob reacts to ours (with a device suffix in the key).
        let got = normalized(
            reaction(key(GROUP, false, Some("111:3@s.whatsapp.net"))),
            GROUP,
            BOB,
        );
        assert_eq!(got, key(GROUP, true, Some(ME)));
    }

    #[test]
    fn every_add_on_key_is_rewritten_and_own_messages_stay() {
        let target = key(ME, false, None);
        let mut message = wa::Message {
            poll_update_message: Some(wa::message::PollUpdateMessage {
                poll_creation_message_key: Some(target.clone()),
                ..Default::default()
            }),
            protocol_message: Some(Box::new(wa::message::ProtocolMessage {
                key: Some(target.clone()),
                r#type: Some(PROTOCOL_REVOKE),
                ..Default::default()
            })),
            pin_in_chat_message: Some(wa::message::PinInChatMessage {
                key: Some(target.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let own = [jid(ME)];
        let (chat, sender) = (jid(BOB), jid(BOB));
        let mut own_copy = message.clone();
        normalize_keys(
            &mut own_copy,
            &Perspective {
                chat: &chat,
                sender: &sender,
                from_me: true,
                own: &own,
            },
        );
        assert_eq!(own_copy, message);
        normalize_keys(
            &mut message,
            &Perspective {
                chat: &chat,
                sender: &sender,
                from_me: false,
                own: &own,
            },
        );
        let ours = key(BOB, true, None);
        assert_eq!(
            message
                .poll_update_message
                .unwrap()
                .poll_creation_message_key,
            Some(ours.clone())
        );
        assert_eq!(message.protocol_message.unwrap().key, Some(ours.clone()));
        assert_eq!(message.pin_in_chat_message.unwrap().key, Some(ours));
    }

    #[test]
    fn other_protocol_messages_keep_their_key() {
        let target = key(ME, false, None);
        let mut message = wa::Message {
            protocol_message: Some(Box::new(wa::message::ProtocolMessage {
                key: Some(target.clone()),
                r#type: Some(3),
                ..Default::default()
            })),
            ..Default::default()
        };
        let own = [jid(ME)];
        let (chat, sender) = (jid(BOB), jid(BOB));
        normalize_keys(
            &mut message,
            &Perspective {
                chat: &chat,
                sender: &sender,
                from_me: false,
                own: &own,
            },
        );
        assert_eq!(message.protocol_message.unwrap().key, Some(target));
    }
}
