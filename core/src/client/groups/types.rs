//! What the application asks of groups and what it learns about them (features.md §5).

/// A group administration request (`Command::Group`). Every JID is a string: a user
/// (`<number>@s.whatsapp.net`), a LID (`<lid>@lid`) or a group (`<id>@g.us`).
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCommand {
    /// Creates a group with this subject and these members (we become its super-admin);
    /// ends with [`GroupOutput::Created`].
    Create {
        /// The group's name.
        subject: String,
        /// The users to add.
        participants: Vec<String>,
    },
    /// Asks the server for a group's metadata; ends with [`GroupOutput::Info`].
    GetInfo {
        /// The group.
        group: String,
    },
    /// Lists the groups this account is in; ends with [`GroupOutput::List`].
    ListJoined,
    /// Adds, removes, promotes or demotes members; ends with [`GroupOutput::Participants`],
    /// one result per participant.
    ChangeParticipants {
        /// The group.
        group: String,
        /// What to do.
        action: ParticipantAction,
        /// The users.
        participants: Vec<String>,
    },
    /// Renames the group.
    SetSubject {
        /// The group.
        group: String,
        /// The new name.
        subject: String,
    },
    /// Sets (`Some`) or deletes (`None`) the group's description.
    SetDescription {
        /// The group.
        group: String,
        /// The new text.
        description: Option<String>,
    },
    /// Changes one setting.
    SetSetting {
        /// The group.
        group: String,
        /// The setting and its new value.
        setting: GroupSetting,
    },
    /// Reads the group's invite code (`https://chat.whatsapp.com/<code>`); ends with
    /// [`GroupOutput::InviteCode`]. Admins only.
    GetInviteCode {
        /// The group.
        group: String,
    },
    /// Revokes the invite code and returns the new one ([`GroupOutput::InviteCode`]).
    RevokeInviteCode {
        /// The group.
        group: String,
    },
    /// Joins a group by its invite code; ends with [`GroupOutput::Joined`].
    JoinWithInvite {
        /// The code (the last part of the invite link).
        code: String,
    },
    /// Leaves a group.
    Leave {
        /// The group.
        group: String,
    },
    /// Lists the requests to join a group that needs approval; ends with
    /// [`GroupOutput::JoinRequests`]. Admins only.
    ListJoinRequests {
        /// The group.
        group: String,
    },
    /// Approves (or rejects) requests to join; ends with [`GroupOutput::Participants`], one
    /// result per requester. Admins only.
    ResolveJoinRequests {
        /// The group.
        group: String,
        /// Approve (`true`) or reject.
        approve: bool,
        /// The requesters (user JIDs).
        participants: Vec<String>,
    },
    /// Accepts a group invite message (`GroupInviteMessage`, the V4 invite an admin sends
    /// in a chat when our privacy kept them from adding us); ends with
    /// [`GroupOutput::Joined`].
    AcceptInvite {
        /// The group (`groupJid` of the message).
        group: String,
        /// The invite code (`inviteCode`).
        code: String,
        /// When it expires, Unix seconds (`inviteExpiration`).
        expiration: u64,
        /// Who sent the invite (the chat it came in).
        inviter: String,
    },
    /// Sets (`Some`: a JPEG, square, as WhatsApp shows 640×640) or removes (`None`) the
    /// picture of a group, or our own profile picture when `jid` is our own JID; ends with
    /// [`GroupOutput::Picture`]. Reading a picture is `Command::GetProfilePicture`.
    SetPicture {
        /// The group, or our own user JID.
        jid: String,
        /// The JPEG bytes, or `None` to remove the picture.
        jpeg: Option<Vec<u8>>,
    },
}

/// A change of membership or rank asked of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParticipantAction {
    /// Add users.
    Add,
    /// Remove members.
    Remove,
    /// Make members admins.
    Promote,
    /// Take admin rights back.
    Demote,
}

impl ParticipantAction {
    /// The wire tag (`add`, `remove`, `promote`, `demote`).
    pub fn tag(self) -> &'static str {
        match self {
            ParticipantAction::Add => "add",
            ParticipantAction::Remove => "remove",
            ParticipantAction::Promote => "promote",
            ParticipantAction::Demote => "demote",
        }
    }
}

/// A group setting and its new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupSetting {
    /// Only admins send messages.
    Announce(bool),
    /// Only admins edit the group's info.
    Locked(bool),
    /// Joining needs an admin's approval.
    ApprovalRequired(bool),
    /// Disappearing messages after this many seconds (0: off).
    Ephemeral(u32),
    /// Every member may add members (`true`), or only admins.
    MembersCanAdd(bool),
}

/// A member's rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ParticipantRole {
    /// A member.
    #[default]
    Member,
    /// An admin.
    Admin,
    /// The super-admin (the creator, usually).
    SuperAdmin,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupParticipant {
    /// The member's JID in the group's addressing mode.
    pub jid: String,
    /// The phone-number JID, when `jid` is a LID and the server said.
    pub phone_number: Option<String>,
    /// The LID, when `jid` is a phone number and the server said.
    pub lid: Option<String>,
    /// The member's rank.
    pub role: ParticipantRole,
}

/// How the group addresses its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AddressingMode {
    /// By phone number.
    #[default]
    Pn,
    /// By LID.
    Lid,
}

/// A group's metadata (features.md §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupInfo {
    /// The group JID (`<id>@g.us`).
    pub jid: String,
    /// The name.
    pub subject: String,
    /// Who set the name.
    pub subject_owner: Option<String>,
    /// When the name was set, Unix seconds.
    pub subject_time: u64,
    /// When the group was created, Unix seconds.
    pub creation: u64,
    /// The creator.
    pub owner: Option<String>,
    /// The creator's phone-number JID, when the group is LID-addressed.
    pub owner_pn: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// The description's id (the `prev` of the next change).
    pub description_id: Option<String>,
    /// The members, each once.
    pub participants: Vec<GroupParticipant>,
    /// The member count the server gave (or the number of members listed).
    pub size: u32,
    /// Only admins send messages.
    pub announce: bool,
    /// Only admins edit the group's info.
    pub locked: bool,
    /// Joining needs an admin's approval.
    pub approval_required: bool,
    /// Disappearing-messages timer, seconds (0: off).
    pub ephemeral_seconds: u32,
    /// Every member may add members (else only admins).
    pub members_can_add: bool,
    /// How members are addressed.
    pub addressing_mode: AddressingMode,
}

impl GroupInfo {
    /// The members who are admins or the super-admin.
    pub fn admins(&self) -> impl Iterator<Item = &GroupParticipant> {
        self.participants
            .iter()
            .filter(|p| p.role != ParticipantRole::Member)
    }
}

/// What became of one participant of an add, remove, promote or demote (or of a create).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParticipantStatus {
    /// Done.
    Ok,
    /// Their privacy settings let only contacts add them: send them this invite (a
    /// `GroupInviteMessage`) instead (403 with `<add_request>`).
    InviteRequired {
        /// The invite code.
        code: String,
        /// When it expires, Unix seconds.
        expiration: u64,
    },
    /// Not allowed (401, or 403 without an invite).
    NotAuthorized,
    /// No such user on WhatsApp, or not a member (404).
    NotFound,
    /// The user left the group recently and cannot be added back yet (408).
    RecentlyLeft,
    /// Already a member (409).
    AlreadyMember,
    /// The group is full (419).
    GroupFull,
    /// Another error code.
    Failed {
        /// The code.
        code: u16,
    },
}

/// One participant's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantResult {
    /// The participant as the server named it.
    pub jid: String,
    /// The other address form the server gave (phone number or LID), if any.
    pub alt: Option<String>,
    /// What became of it.
    pub status: ParticipantStatus,
}

/// What a successful group command produced.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOutput {
    /// The new group and what became of each participant asked for.
    Created {
        /// The group's metadata (successful members only).
        info: GroupInfo,
        /// One result per participant the answer named.
        participants: Vec<ParticipantResult>,
    },
    /// A group's metadata.
    Info(GroupInfo),
    /// The groups this account is in.
    List(Vec<GroupInfo>),
    /// One result per participant.
    Participants(Vec<ParticipantResult>),
    /// An invite code.
    InviteCode(String),
    /// The pending requests to join.
    JoinRequests(Vec<JoinRequest>),
    /// The picture was set (its new id) or removed (`None`).
    Picture {
        /// The new picture's id.
        id: Option<String>,
    },
    /// Joined (or asked to join) by invite.
    Joined {
        /// The group.
        group: String,
        /// The group needs an admin's approval first: a request was filed.
        pending_approval: bool,
    },
}

/// A pending request to join a group that needs approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The requester.
    pub jid: String,
    /// Its phone-number JID, when `jid` is a LID and the server said.
    pub phone_number: Option<String>,
    /// When it asked, Unix seconds (0 when not said).
    pub requested_at: u64,
}

/// How a membership changed, as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipChange {
    /// Added (or joined).
    Added,
    /// Removed by someone else.
    Removed,
    /// Left on their own.
    Left,
    /// Made admin.
    Promoted,
    /// No longer admin.
    Demoted,
}

/// One change a group notification announced.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    /// We were put in a new group.
    Created(GroupInfo),
    /// Members came, went or changed rank.
    Participants {
        /// How.
        change: MembershipChange,
        /// Who.
        participants: Vec<GroupParticipant>,
    },
    /// New name.
    Subject(String),
    /// New description (`None`: deleted).
    Description {
        /// Its id.
        id: Option<String>,
        /// Its text.
        text: Option<String>,
    },
    /// Only admins send (or everyone again).
    Announce(bool),
    /// Only admins edit the info (or everyone again).
    Locked(bool),
    /// Joining needs approval (or not).
    ApprovalRequired(bool),
    /// Disappearing-messages timer, seconds (0: off).
    Ephemeral(u32),
    /// Every member may add members (or only admins again).
    MembersCanAdd(bool),
    /// The invite link was reset to this code.
    InviteCode(String),
    /// The group was deleted.
    Deleted,
}

/// A `w:gp2` notification: a group changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupNotification {
    /// The group JID.
    pub group: String,
    /// Who made the change, if the server said.
    pub actor: Option<String>,
    /// When, Unix seconds.
    pub timestamp: u64,
    /// The changes, in order.
    pub changes: Vec<GroupChange>,
}
