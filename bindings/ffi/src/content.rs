//! Message content as uniffi records: WhatsApp's `Message` and every message type it holds,
//! generated from walink-core's schema by `build.rs` (so a field added to the schema reaches
//! Kotlin, Swift and Python without a line written here), and the poll vote a message event
//! carries.
#![allow(clippy::all)]

use prost::Message as _;
use walink_core::client;

use crate::error::WalinkError;

include!(concat!(env!("OUT_DIR"), "/wa_types.rs"));

/// A `Message` inside another message (a quoted message, a wrapper's content, an edit's new
/// content): an enum of one variant, since a record cannot hold itself in Swift.
#[derive(Clone, PartialEq, uniffi::Enum)]
pub enum NestedMessage {
    /// The message.
    Message {
        /// Its content.
        message: Box<WaMessage>,
    },
}

/// Names the type, never the content.
impl core::fmt::Debug for NestedMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NestedMessage { .. }")
    }
}

/// Decodes an encoded `wa.Message` (what `ClientEvent::Message`'s `raw` holds, or what a host
/// built with its own copy of WhatsApp's schema). Fields walink's schema lacks are dropped.
#[uniffi::export]
pub fn decode_message(bytes: Vec<u8>) -> Result<WaMessage, WalinkError> {
    crate::error::guard(|| {
        walink_core::proto::wa::Message::decode(bytes.as_slice())
            .map(WaMessage::from)
            .map_err(|error| WalinkError::invalid("invalid_message", error.to_string()))
    })
}

/// Encodes a message as WhatsApp's protobuf, byte for byte what protobufjs (Baileys) and
/// whatsmeow write for the same fields.
#[uniffi::export]
pub fn encode_message(message: WaMessage) -> Result<Vec<u8>, WalinkError> {
    crate::error::guard(|| Ok(walink_core::proto::wa::Message::from(message).encode_to_vec()))
}

/// A poll vote that opened, counted against its poll.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PollVote {
    /// The poll's message id.
    pub poll_id: String,
    /// Who voted (a user JID, the LID form when known).
    pub voter: String,
    /// The options this vote chose, by name (empty: the vote was withdrawn).
    pub selected: Vec<String>,
    /// Every option of the poll with the voters whose latest vote chose it, in option order.
    pub tally: Vec<PollOptionVotes>,
}

/// The voters of one poll option.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PollOptionVotes {
    /// The option's name.
    pub name: String,
    /// The voters whose latest vote chose it.
    pub voters: Vec<String>,
}

impl From<client::PollVote> for PollVote {
    fn from(vote: client::PollVote) -> Self {
        PollVote {
            poll_id: vote.poll_id,
            voter: vote.voter.to_string(),
            selected: vote.selected,
            tally: vote
                .tally
                .into_iter()
                .map(|option| PollOptionVotes {
                    name: option.name,
                    voters: option.voters.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        }
    }
}
