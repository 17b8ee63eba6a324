//! What the application asks of the client. Every command ends in exactly one
//! `Event::CommandDone`.

/// Names a command and its `Event::CommandDone`. Opaque: a host reads it with
/// [`CommandId::as_u64`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub(crate) u64);

impl CommandId {
    /// The id as a number, for a host that hands it across a language boundary.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id a host was given as a number (by [`Self::as_u64`]).
    pub fn from_u64(id: u64) -> Self {
        Self(id)
    }

    /// The id of commands the client issues on its own (the app-state key request); their
    /// `CommandDone` is never queued for the host. Host commands count from 1.
    pub(crate) const INTERNAL: CommandId = CommandId(0);
}

/// A request from the application.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Pair with a phone number: resolves with the 8-character code the server accepted.
    /// `phone` is the international number (country code first; `+`, spaces, dashes, dots and
    /// parentheses are ignored). Issued before the connection can take it, it waits.
    PairWithCode {
        /// The phone number of the account to link to.
        phone: String,
    },
    /// Send a text message to a user or group (phone-number or LID JID).
    SendText {
        /// The recipient's JID.
        to: String,
        /// The text.
        text: String,
    },
    /// Send any content: an encoded `wa.Message` protobuf (docs/content.md). The client adds a
    /// message secret and the send time of add-ons when they are missing, keeps the secret of a
    /// poll so that its votes open, and sets the stanza attributes the content calls for
    /// (reaction, poll, media, edit, revoke).
    SendMessage {
        /// The recipient's JID (user, LID or group).
        to: String,
        /// The encoded message.
        message: Vec<u8>,
    },
    /// Post a status (`status@broadcast`) to `recipients` (user or LID JIDs; at most
    /// `limits::MESSAGING_MAX_FANOUT`): an encoded `wa.Message` (a text post is an
    /// `extendedTextMessage`, with `backgroundArgb` and `font` if wanted), sent like a group
    /// message whose members are the recipients and this account, our sender key handed to every
    /// recipient device with each post (the server learns the audience from it). Ends with
    /// `MessageSent`.
    SendStatus {
        /// Who may see the post.
        recipients: Vec<String>,
        /// The encoded message.
        message: Vec<u8>,
    },
    /// Vote in a poll this device sent or received: the vote is encrypted with the poll's
    /// secret and sent to the poll's chat; it ends with `MessageSent`. An empty `options`
    /// withdraws the vote.
    SendPollVote {
        /// The poll's chat (user, LID or group JID).
        chat: String,
        /// The poll's message id.
        poll_id: String,
        /// The names of the options chosen.
        options: Vec<String>,
    },
    /// Mark messages as read.
    MarkRead {
        /// The chat.
        chat: String,
        /// The sender, in a group.
        sender: Option<String>,
        /// The message ids.
        ids: Vec<String>,
    },
    /// Asks the phone for `count` (at most `limits::HISTORY_MAX_ON_DEMAND_MESSAGES`) messages
    /// of `chat` older than the oldest one the host has (its id, whether we sent it, its time in
    /// Unix seconds). Ends when the request was sent (`MessageSent`); the messages arrive as an
    /// ON_DEMAND history chunk, if the phone answers.
    RequestHistory {
        /// The chat.
        chat: String,
        /// The id of the oldest message the host has.
        oldest_id: String,
        /// Whether this account sent it.
        oldest_from_me: bool,
        /// Its time, Unix seconds.
        oldest_timestamp: u64,
        /// How many older messages to ask for.
        count: u32,
    },
    /// Start connecting again from `Disconnected`, `LoggedOut` (with a new device),
    /// `Replaced` or `ClientOutdated`.
    Connect,
    /// Close the connection and stay disconnected.
    Disconnect,
    /// Unlink this device from the account and delete its records.
    Logout,
    /// An app-state action (mute, pin, archive, mark read, star, delete or clear a chat,
    /// contact name, label edit or association), synced to the account's other devices. Ends
    /// once the server accepted the patch; the settings then change (with events).
    AppState(crate::appstate::SyncAction),
    /// Read the current app-state settings of a chat: answered in `CommandDone` with
    /// [`CommandOutput::ChatSettings`].
    GetChatSettings {
        /// The chat JID.
        chat: String,
    },
    /// Read the identity key trusted for a contact device, and a new one waiting for approval:
    /// answered with [`CommandOutput::Identity`].
    GetIdentity {
        /// The device JID (phone-number or LID form).
        address: String,
    },
    /// Uploads a media file and sends it to `to` (a user or a group) as a message of `kind`;
    /// ends when the server acknowledges the message, with `MessageSent { id }`.
    SendMedia {
        /// The recipient: a user (`<number>@s.whatsapp.net`, a LID) or a group (`…@g.us`).
        to: String,
        /// The kind of message.
        kind: super::media::MediaKind,
        /// The file and what the message says about it.
        media: super::media::OutgoingMedia,
    },
    /// Downloads and decrypts the media of a received message (`Event::Message`'s `id`,
    /// `chat`, `sender` and `message`): ends with `MediaDownloaded`, or `MediaSaved` when the
    /// host decrypts into its own sink. Media the hosts no longer keep is asked of the phone
    /// again once.
    DownloadMedia {
        /// The message id.
        id: String,
        /// The chat.
        chat: String,
        /// The sending device.
        sender: String,
        /// The `wa.Message`, encoded.
        message: Vec<u8>,
        /// A sink the host names: the body is decrypted by the host into it as it arrives
        /// (`ResponseTarget::Decrypt`) instead of into the client's memory; the host releases
        /// it only when the command ends with `MediaSaved`.
        sink: Option<u64>,
    },
    /// Trust the new identity key of a device that waits for approval
    /// (`IdentityPolicy::Strict`); the messages refused meanwhile are asked for again. Needs a
    /// connection. Fails with `InvalidState` when that key is not the one waiting.
    ApproveIdentity {
        /// The device JID (phone-number or LID form).
        address: String,
        /// The 32-byte identity public key `Event::IdentityChanged` named.
        identity: Vec<u8>,
    },
    /// Group administration (docs/groups.md): each ends with a [`CommandOutput::Group`] or
    /// `None`, or a typed error (`Forbidden`, `NotFound`, `ResourceLimit`, `RateLimited`,
    /// `BadRequest`, ...).
    Group(super::groups::GroupCommand),
    /// Reject an incoming call (`Event::Call`'s `call_id` and `caller`), as WhatsApp Web does.
    /// Ends once the reject was sent.
    RejectCall {
        /// The call id.
        call_id: String,
        /// The caller (`CallEvent::caller`).
        caller: String,
    },
    /// Set this account's presence: available (online) or unavailable. Needs a push name
    /// (`Config::push_name`); renewed after every reconnect.
    SetPresence {
        /// Online or not.
        available: bool,
    },
    /// Subscribe to a contact's presence (with their privacy token when one was issued to us);
    /// updates arrive as `Event::Presence`. Renewed after every reconnect.
    SubscribePresence {
        /// The contact's user JID (phone number or LID).
        jid: String,
    },
    /// Stop the updates of a contact's presence (`SubscribePresence` undone; no longer renewed
    /// after reconnects).
    UnsubscribePresence {
        /// The contact's user JID (phone number or LID).
        jid: String,
    },
    /// Show typing, recording or paused in a chat (a user or a group).
    SendChatState {
        /// The chat JID.
        to: String,
        /// What to show.
        state: super::social::ChatState,
    },
    /// Which of these phone numbers are on WhatsApp, with their LIDs: answered with
    /// [`CommandOutput::Numbers`] in the order given. At most
    /// `limits::CONTACTS_MAX_NUMBERS_PER_QUERY` numbers.
    CheckNumbers {
        /// International numbers (country code first; `+`, spaces, dashes ignored).
        phones: Vec<String>,
    },
    /// The URL of a user's or group's profile picture: [`CommandOutput::ProfilePicture`].
    GetProfilePicture {
        /// The user or group JID.
        jid: String,
        /// The small thumbnail (`true`) or the full picture.
        preview: bool,
    },
    /// A user's about text: [`CommandOutput::About`].
    GetAbout {
        /// The user JID.
        jid: String,
    },
    /// A business account's profile: [`CommandOutput::BusinessProfile`] (`None` for other
    /// accounts).
    GetBusinessProfile {
        /// The user JID.
        jid: String,
    },
    /// Block or unblock a user.
    SetBlocked {
        /// The user JID.
        jid: String,
        /// Block (`true`) or unblock.
        blocked: bool,
    },
    /// The users this account blocked: [`CommandOutput::BlockList`].
    GetBlockList,
}

/// What a successful command produced.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutput {
    /// Nothing beyond success.
    None,
    /// The pairing code the server accepted.
    PairingCode(String),
    /// A message was sent (the server acknowledged it) with this id.
    MessageSent {
        /// The message id.
        id: String,
    },
    /// The app-state settings of the chat asked for.
    ChatSettings(crate::appstate::ChatSettings),
    /// The identity keys of the device `GetIdentity` asked for.
    Identity(super::messaging::IdentityInfo),
    /// The plaintext of downloaded media, its hashes and MAC checked.
    MediaDownloaded(super::media::MediaData),
    /// What a group command produced.
    Group(Box<super::groups::GroupOutput>),
    /// One entry per number of `CheckNumbers`, in the order given.
    Numbers(Vec<super::social::NumberInfo>),
    /// The profile picture asked for, or why there is none.
    ProfilePicture(super::social::ProfilePicture),
    /// The about text asked for, or why there is none.
    About(super::social::About),
    /// The business profile asked for (`None`: not a business).
    BusinessProfile(Option<super::social::BusinessProfile>),
    /// The blocked users.
    BlockList(Vec<crate::binary::Jid>),

    /// A download decrypted into the host's sink: the MAC matched and both hashes are the
    /// message's; the host may release the sink's `length` bytes.
    MediaSaved {
        /// The sink, as the command named it.
        sink: u64,
        /// The plaintext length.
        length: u64,
    },
}

/// Why a command failed.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The phone number is not an international number of 7 to 15 digits.
    #[error("invalid phone number")]
    InvalidPhoneNumber,
    /// The device is already paired.
    #[error("already paired")]
    AlreadyPaired,
    /// The device is not paired yet.
    #[error("not paired")]
    NotPaired,
    /// A pairing code is already outstanding on this connection (one code per connection).
    #[error("a pairing code is already outstanding")]
    PairingCodeOutstanding,
    /// The client's platform cannot pair by code (only the six browsers can).
    #[error("this platform cannot pair by code")]
    UnsupportedPlatform,
    /// The command needs a connection and there is none (or it ended meanwhile).
    #[error("not connected")]
    NotConnected,
    /// The server refused the request with this error.
    #[error("rejected by the server: {code} {text}")]
    Rejected {
        /// The `<error code>`.
        code: u16,
        /// The `<error text>`.
        text: String,
    },
    /// The server rate-limited the request (429).
    #[error("rate limited")]
    RateLimited {
        /// How long the server asked to wait, when it said.
        retry_after_ms: Option<u64>,
    },
    /// No answer came in time.
    #[error("timed out")]
    TimedOut,
    /// The JID is not a user or group address.
    #[error("invalid address")]
    InvalidAddress,
    /// The message could not be encoded or is too large.
    #[error("invalid message")]
    InvalidMessage,
    /// The command cannot run in the current state (e.g. `Connect` while connected).
    #[error("not possible in the current state")]
    InvalidState,
    /// An app-state action could not be encoded (invalid action, no sync key yet).
    #[error("app-state: {0}")]
    AppState(crate::appstate::PatchError),
    /// No media host took the upload.
    #[error("media upload failed")]
    UploadFailed,
    /// No media host served the file.
    #[error("media download failed")]
    DownloadFailed,
    /// The downloaded file's hash or MAC does not match its message.
    #[error("downloaded media does not match its message")]
    MediaInvalid,
    /// The media hosts no longer keep the file and the phone did not upload it again.
    #[error("media expired")]
    MediaExpired,
    /// The file is larger than walink handles in memory.
    #[error("media too large")]
    MediaTooLarge,
    /// A recipient device's identity key changed and waits for `Command::ApproveIdentity`
    /// (`IdentityPolicy::Strict`); nothing was sent.
    #[error("the identity key of {address} changed and waits for approval")]
    UntrustedIdentity {
        /// The device JID.
        address: String,
    },
    /// The server's prekey answer could not be read (`address` `None`), or the bundle of the
    /// device `address` is malformed or its signature does not verify: the message was sent to
    /// no device.
    #[error("bad prekey answer")]
    BadPrekeyAnswer {
        /// The device JID whose bundle was refused, when one was.
        address: Option<String>,
    },
    /// No poll with that id is kept for the chat (never seen by this device, or dropped as the
    /// oldest of `CONTENT_MAX_POLLS`).
    #[error("unknown poll")]
    UnknownPoll,
    /// The server refused: not allowed (not an admin, not a member; 401/403).
    #[error("forbidden")]
    Forbidden,
    /// The server knows no such thing (group, invite code; 404/410).
    #[error("not found")]
    NotFound,
    /// A server limit was reached (group or community full; 412/419).
    #[error("resource limit reached")]
    ResourceLimit,
    /// The server found the request malformed or unacceptable (400/406).
    #[error("bad request")]
    BadRequest,
    /// Setting our presence needs a push name (`Config::push_name`): without one, contacts
    /// would see "-" as our name.
    #[error("a push name is required")]
    PushNameRequired,
    /// The server's answer did not have the expected shape.
    #[error("unexpected answer from the server")]
    BadAnswer,
}

impl CommandError {
    /// A stable machine-readable code: the variant's name in snake case (`not_connected`,
    /// `invalid_phone_number`, ...), the same in every binding.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::InvalidPhoneNumber => "invalid_phone_number",
            CommandError::AlreadyPaired => "already_paired",
            CommandError::NotPaired => "not_paired",
            CommandError::PairingCodeOutstanding => "pairing_code_outstanding",
            CommandError::UnsupportedPlatform => "unsupported_platform",
            CommandError::NotConnected => "not_connected",
            CommandError::Rejected { .. } => "rejected",
            CommandError::RateLimited { .. } => "rate_limited",
            CommandError::TimedOut => "timed_out",
            CommandError::InvalidAddress => "invalid_address",
            CommandError::InvalidMessage => "invalid_message",
            CommandError::InvalidState => "invalid_state",
            CommandError::AppState(_) => "app_state",
            CommandError::UntrustedIdentity { .. } => "untrusted_identity",
            CommandError::UploadFailed => "upload_failed",
            CommandError::DownloadFailed => "download_failed",
            CommandError::MediaInvalid => "media_invalid",
            CommandError::MediaExpired => "media_expired",
            CommandError::MediaTooLarge => "media_too_large",
            CommandError::UnknownPoll => "unknown_poll",
            CommandError::Forbidden => "forbidden",
            CommandError::NotFound => "not_found",
            CommandError::ResourceLimit => "resource_limit",
            CommandError::BadRequest => "bad_request",

            CommandError::BadPrekeyAnswer { .. } => "bad_prekey_answer",
            CommandError::PushNameRequired => "push_name_required",
            CommandError::BadAnswer => "bad_answer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_variant_names_in_snake_case() {
        let errors = [
            CommandError::InvalidPhoneNumber,
            CommandError::AlreadyPaired,
            CommandError::NotPaired,
            CommandError::PairingCodeOutstanding,
            CommandError::UnsupportedPlatform,
            CommandError::NotConnected,
            CommandError::Rejected {
                code: 400,
                text: "bad-request".into(),
            },
            CommandError::RateLimited {
                retry_after_ms: None,
            },
            CommandError::TimedOut,
            CommandError::InvalidAddress,
            CommandError::InvalidMessage,
            CommandError::InvalidState,
            CommandError::AppState(crate::appstate::PatchError::MissingExternalMutations),
            CommandError::UntrustedIdentity {
                address: "1@s.whatsapp.net".into(),
            },
            CommandError::UploadFailed,
            CommandError::DownloadFailed,
            CommandError::MediaInvalid,
            CommandError::MediaExpired,
            CommandError::MediaTooLarge,
            CommandError::UnknownPoll,
            CommandError::Forbidden,
            CommandError::NotFound,
            CommandError::ResourceLimit,
            CommandError::BadRequest,
            CommandError::BadPrekeyAnswer { address: None },
            CommandError::PushNameRequired,
            CommandError::BadAnswer,
        ];
        for error in &errors {
            let name = format!("{error:?}");
            let name = name.split([' ', '(', '{']).next().unwrap_or_default();
            let mut snake = String::new();
            for (i, c) in name.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            assert_eq!(error.code(), snake);
        }
    }
}
