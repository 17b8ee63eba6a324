//! The foreign forms of calls, presence and chat state, and contact queries. Every
//! conversion is an exhaustive `match` on the core's type (walink-core's `exhaustive`
//! feature), so a variant added to the core fails to compile here until it has its form.

use walink_core::client;

/// What happened to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CallAction {
    /// The call rings on this device.
    Offer,
    /// A device of the callee pre-accepted it (the caller sees it ringing).
    Ringing,
    /// Accepted (on another device of this account, or by the callee).
    Accepted,
    /// Rejected by a device.
    Rejected,
    /// Ended: hung up, accepted or rejected elsewhere.
    Ended,
    /// Nobody answered in time: a missed call.
    TimedOut,
}

impl From<client::CallAction> for CallAction {
    fn from(action: client::CallAction) -> CallAction {
        use client::CallAction as A;
        match action {
            A::Offer => CallAction::Offer,
            A::Ringing => CallAction::Ringing,
            A::Accepted => CallAction::Accepted,
            A::Rejected => CallAction::Rejected,
            A::Ended => CallAction::Ended,
            A::TimedOut => CallAction::TimedOut,
        }
    }
}

/// Typing, recording a voice note, or stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChatState {
    /// Typing.
    Composing,
    /// Recording a voice note.
    Recording,
    /// Stopped.
    Paused,
}

impl From<client::ChatState> for ChatState {
    fn from(state: client::ChatState) -> ChatState {
        match state {
            client::ChatState::Composing => ChatState::Composing,
            client::ChatState::Recording => ChatState::Recording,
            client::ChatState::Paused => ChatState::Paused,
        }
    }
}

impl From<ChatState> for client::ChatState {
    fn from(state: ChatState) -> client::ChatState {
        match state {
            ChatState::Composing => client::ChatState::Composing,
            ChatState::Recording => client::ChatState::Recording,
            ChatState::Paused => client::ChatState::Paused,
        }
    }
}

/// One call event.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct CallInfo {
    /// The call id (give it to `Command::RejectCall`).
    pub call_id: String,
    /// What happened.
    pub action: CallAction,
    /// Who placed the call (give it to `Command::RejectCall`).
    pub caller: String,
    /// The caller's phone-number JID when `caller` is a LID and the server said.
    pub caller_pn: Option<String>,
    /// The device the stanza came from.
    pub device: String,
    /// The server's time, Unix seconds.
    pub timestamp: u64,
    /// Queued while this device was offline.
    pub offline: bool,
    /// A video call.
    pub video: bool,
    /// A group call.
    pub is_group: bool,
    /// The group of a group call, when the offer named it.
    pub group: Option<String>,
    /// The `reason` of an end or reject, when given.
    pub reason: Option<String>,
}

impl From<&client::CallEvent> for CallInfo {
    fn from(call: &client::CallEvent) -> CallInfo {
        CallInfo {
            call_id: call.call_id.clone(),
            action: call.action.into(),
            caller: call.caller.to_string(),
            caller_pn: call.caller_pn.as_ref().map(ToString::to_string),
            device: call.device.to_string(),
            timestamp: call.timestamp,
            offline: call.offline,
            video: call.video,
            is_group: call.is_group,
            group: call.group.as_ref().map(ToString::to_string),
            reason: call.reason.clone(),
        }
    }
}

/// A phone number `Command::CheckNumbers` asked about.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct NumberInfo {
    /// The number as asked, digits only.
    pub phone: String,
    /// Whether it has a WhatsApp account (not being on WhatsApp is an answer).
    pub on_whatsapp: bool,
    /// Its phone-number JID.
    pub jid: String,
    /// Its LID, when on WhatsApp and the server told.
    pub lid: Option<String>,
}

impl From<&client::NumberInfo> for NumberInfo {
    fn from(info: &client::NumberInfo) -> NumberInfo {
        NumberInfo {
            phone: info.phone.clone(),
            on_whatsapp: info.on_whatsapp,
            jid: info.jid.to_string(),
            lid: info.lid.as_ref().map(ToString::to_string),
        }
    }
}

/// A profile picture, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ProfilePicture {
    /// The URL of a plain JPEG to GET.
    Url {
        /// The URL.
        url: String,
        /// The picture's id.
        id: String,
        /// The direct path on the media hosts.
        direct_path: Option<String>,
    },
    /// No picture.
    NoPicture,
    /// Hidden from us by privacy settings.
    NotAllowed,
}

impl From<&client::ProfilePicture> for ProfilePicture {
    fn from(picture: &client::ProfilePicture) -> ProfilePicture {
        match picture {
            client::ProfilePicture::Url {
                url,
                id,
                direct_path,
            } => ProfilePicture::Url {
                url: url.clone(),
                id: id.clone(),
                direct_path: direct_path.clone(),
            },
            client::ProfilePicture::None => ProfilePicture::NoPicture,
            client::ProfilePicture::NotAllowed => ProfilePicture::NotAllowed,
        }
    }
}

/// An about text, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum About {
    /// The text and when it was set (Unix seconds, 0 when not said).
    Text {
        /// The text.
        text: String,
        /// When it was set.
        set_at: u64,
    },
    /// No about text.
    NoText,
    /// Hidden from us by privacy settings.
    NotAllowed,
}

impl From<&client::About> for About {
    fn from(about: &client::About) -> About {
        match about {
            client::About::Text { text, set_at } => About::Text {
                text: text.clone(),
                set_at: *set_at,
            },
            client::About::None => About::NoText,
            client::About::NotAllowed => About::NotAllowed,
        }
    }
}

/// A business account's public profile.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct BusinessProfile {
    /// The business.
    pub jid: String,
    /// Its description.
    pub description: Option<String>,
    /// Its address.
    pub address: Option<String>,
    /// Its e-mail address.
    pub email: Option<String>,
    /// Its websites.
    pub websites: Vec<String>,
    /// Its category names.
    pub categories: Vec<String>,
}

impl From<&client::BusinessProfile> for BusinessProfile {
    fn from(profile: &client::BusinessProfile) -> BusinessProfile {
        BusinessProfile {
            jid: profile.jid.to_string(),
            description: profile.description.clone(),
            address: profile.address.clone(),
            email: profile.email.clone(),
            websites: profile.websites.clone(),
            categories: profile.categories.clone(),
        }
    }
}
