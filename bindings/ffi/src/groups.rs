//! Group commands, their results and group notifications for the foreign languages: the
//! core's `client::groups` types as uniffi records and enums, converted both ways
//! exhaustively (walink-core's `exhaustive` feature makes a new core variant a compile error).

use walink_core::client::groups as core;

/// A group administration request (the core's `GroupCommand`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum GroupCommand {
    /// Create a group; ends with `GroupOutput::Created`.
    Create {
        /// The group's name.
        subject: String,
        /// The users to add (JIDs).
        participants: Vec<String>,
    },
    /// Read a group's metadata; ends with `GroupOutput::Info`.
    GetInfo {
        /// The group JID.
        group: String,
    },
    /// List the groups this account is in; ends with `GroupOutput::Groups`.
    ListJoined,
    /// Add, remove, promote or demote; ends with `GroupOutput::Participants`.
    ChangeParticipants {
        /// The group JID.
        group: String,
        /// What to do.
        action: ParticipantAction,
        /// The users (JIDs).
        participants: Vec<String>,
    },
    /// Rename the group.
    SetSubject {
        /// The group JID.
        group: String,
        /// The new name.
        subject: String,
    },
    /// Set (or, with `None`, delete) the description.
    SetDescription {
        /// The group JID.
        group: String,
        /// The new text.
        description: Option<String>,
    },
    /// Change one setting.
    SetSetting {
        /// The group JID.
        group: String,
        /// The setting.
        setting: GroupSetting,
    },
    /// Read the invite code; ends with `GroupOutput::InviteCode`.
    GetInviteCode {
        /// The group JID.
        group: String,
    },
    /// Revoke the invite code; ends with the new one.
    RevokeInviteCode {
        /// The group JID.
        group: String,
    },
    /// Join by invite code (or link); ends with `GroupOutput::Joined`.
    JoinWithInvite {
        /// The code.
        code: String,
    },
    /// Leave a group.
    Leave {
        /// The group JID.
        group: String,
    },
    /// List the pending requests to join; ends with `GroupOutput::JoinRequests`. Admins only.
    ListJoinRequests {
        /// The group JID.
        group: String,
    },
    /// Approve or reject requests to join; ends with `GroupOutput::Participants`.
    ResolveJoinRequests {
        /// The group JID.
        group: String,
        /// Approve (else reject).
        approve: bool,
        /// The requesters (JIDs).
        participants: Vec<String>,
    },
    /// Accept a group invite message (V4 invite); ends with `GroupOutput::Joined`.
    AcceptInvite {
        /// The group JID.
        group: String,
        /// The invite code.
        code: String,
        /// When it expires, Unix seconds.
        expiration: u64,
        /// Who sent it (JID).
        inviter: String,
    },
    /// Set (JPEG bytes) or remove (`None`) the picture of a group or our own; ends with
    /// `GroupOutput::Picture`.
    SetPicture {
        /// The group JID, or our own JID.
        jid: String,
        /// The JPEG, or `None` to remove.
        jpeg: Option<Vec<u8>>,
    },
}

/// A change of membership or rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ParticipantAction {
    /// Add users.
    Add,
    /// Remove members.
    Remove,
    /// Make admins.
    Promote,
    /// Take admin rights back.
    Demote,
}

/// A group setting and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum GroupSetting {
    /// Only admins send.
    Announce {
        /// On or off.
        on: bool,
    },
    /// Only admins edit the info.
    Locked {
        /// On or off.
        on: bool,
    },
    /// Joining needs approval.
    ApprovalRequired {
        /// On or off.
        on: bool,
    },
    /// Disappearing messages after this many seconds (0: off).
    Ephemeral {
        /// Seconds.
        seconds: u32,
    },
    /// Every member may add members (else only admins).
    MembersCanAdd {
        /// On or off.
        on: bool,
    },
}

/// A member's rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ParticipantRole {
    /// A member.
    Member,
    /// An admin.
    Admin,
    /// The super-admin.
    SuperAdmin,
}

/// One member.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct GroupParticipant {
    /// The JID in the group's addressing mode.
    pub jid: String,
    /// The phone-number JID when `jid` is a LID.
    pub phone_number: Option<String>,
    /// The LID when `jid` is a phone number.
    pub lid: Option<String>,
    /// The rank.
    pub role: ParticipantRole,
}

/// A group's metadata.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct GroupInfo {
    /// The group JID.
    pub jid: String,
    /// The name.
    pub subject: String,
    /// Who set the name.
    pub subject_owner: Option<String>,
    /// When, Unix seconds.
    pub subject_time: u64,
    /// Created, Unix seconds.
    pub creation: u64,
    /// The creator.
    pub owner: Option<String>,
    /// The creator's phone-number JID (LID-addressed groups).
    pub owner_pn: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// The description's id.
    pub description_id: Option<String>,
    /// The members.
    pub participants: Vec<GroupParticipant>,
    /// The member count.
    pub size: u32,
    /// Only admins send.
    pub announce: bool,
    /// Only admins edit the info.
    pub locked: bool,
    /// Joining needs approval.
    pub approval_required: bool,
    /// Disappearing-messages timer, seconds (0: off).
    pub ephemeral_seconds: u32,
    /// Every member may add members.
    pub members_can_add: bool,
    /// Addressed by LID (else by phone number).
    pub lid_addressed: bool,
}

/// What became of one participant.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ParticipantStatus {
    /// Done.
    Ok,
    /// Send them this invite instead.
    InviteRequired {
        /// The invite code.
        code: String,
        /// When it expires, Unix seconds.
        expiration: u64,
    },
    /// Not allowed.
    NotAuthorized,
    /// Not on WhatsApp, or not a member.
    NotFound,
    /// Left recently.
    RecentlyLeft,
    /// Already a member.
    AlreadyMember,
    /// The group is full.
    GroupFull,
    /// Another code.
    Failed {
        /// The code.
        code: u16,
    },
}

/// One participant's result.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ParticipantResult {
    /// The participant.
    pub jid: String,
    /// Its other address form, if given.
    pub alt: Option<String>,
    /// What became of it.
    pub status: ParticipantStatus,
}

/// What a group command produced.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum GroupOutput {
    /// The new group and each participant's result.
    Created {
        /// The metadata.
        info: GroupInfo,
        /// The results.
        participants: Vec<ParticipantResult>,
    },
    /// Metadata.
    Info {
        /// The metadata.
        info: GroupInfo,
    },
    /// The groups this account is in (`Groups`, not `List`: Kotlin's `List` would be shadowed).
    Groups {
        /// Their metadata.
        groups: Vec<GroupInfo>,
    },
    /// One result per participant.
    Participants {
        /// The results.
        results: Vec<ParticipantResult>,
    },
    /// An invite code.
    InviteCode {
        /// The code.
        code: String,
    },
    /// Joined (or asked to).
    Joined {
        /// The group JID.
        group: String,
        /// An admin must approve first.
        pending_approval: bool,
    },
    /// The pending requests to join.
    JoinRequests {
        /// The requests.
        requests: Vec<JoinRequest>,
    },
    /// The picture was set (its id) or removed (`None`).
    Picture {
        /// The new picture's id.
        id: Option<String>,
    },
}

/// A pending request to join.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct JoinRequest {
    /// The requester.
    pub jid: String,
    /// Its phone-number JID, when `jid` is a LID.
    pub phone_number: Option<String>,
    /// When it asked, Unix seconds (0: not said).
    pub requested_at: u64,
}

/// How a membership changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum MembershipChange {
    /// Added.
    Added,
    /// Removed.
    Removed,
    /// Left.
    Left,
    /// Made admin.
    Promoted,
    /// No longer admin.
    Demoted,
}

/// One announced change.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum GroupChange {
    /// We were put in a new group.
    Created {
        /// Its metadata.
        info: GroupInfo,
    },
    /// Members came, went or changed rank.
    Participants {
        /// How.
        change: MembershipChange,
        /// Who.
        participants: Vec<GroupParticipant>,
    },
    /// New name.
    Subject {
        /// The name.
        subject: String,
    },
    /// New description (`None`: deleted).
    Description {
        /// Its id.
        id: Option<String>,
        /// Its text.
        text: Option<String>,
    },
    /// Only admins send, or not.
    Announce {
        /// On or off.
        on: bool,
    },
    /// Only admins edit the info, or not.
    Locked {
        /// On or off.
        on: bool,
    },
    /// Joining needs approval, or not.
    ApprovalRequired {
        /// On or off.
        on: bool,
    },
    /// Disappearing-messages timer.
    Ephemeral {
        /// Seconds (0: off).
        seconds: u32,
    },
    /// Every member may add, or only admins again.
    MembersCanAdd {
        /// On or off.
        on: bool,
    },
    /// The invite link was reset.
    InviteCode {
        /// The new code.
        code: String,
    },
    /// The group was deleted.
    Deleted,
}

impl From<GroupCommand> for core::GroupCommand {
    fn from(command: GroupCommand) -> core::GroupCommand {
        use core::GroupCommand as C;
        match command {
            GroupCommand::Create {
                subject,
                participants,
            } => C::Create {
                subject,
                participants,
            },
            GroupCommand::GetInfo { group } => C::GetInfo { group },
            GroupCommand::ListJoined => C::ListJoined,
            GroupCommand::ChangeParticipants {
                group,
                action,
                participants,
            } => C::ChangeParticipants {
                group,
                action: action.into(),
                participants,
            },
            GroupCommand::SetSubject { group, subject } => C::SetSubject { group, subject },
            GroupCommand::SetDescription { group, description } => {
                C::SetDescription { group, description }
            }
            GroupCommand::SetSetting { group, setting } => C::SetSetting {
                group,
                setting: setting.into(),
            },
            GroupCommand::GetInviteCode { group } => C::GetInviteCode { group },
            GroupCommand::RevokeInviteCode { group } => C::RevokeInviteCode { group },
            GroupCommand::JoinWithInvite { code } => C::JoinWithInvite { code },
            GroupCommand::Leave { group } => C::Leave { group },
            GroupCommand::ListJoinRequests { group } => C::ListJoinRequests { group },
            GroupCommand::ResolveJoinRequests {
                group,
                approve,
                participants,
            } => C::ResolveJoinRequests {
                group,
                approve,
                participants,
            },
            GroupCommand::AcceptInvite {
                group,
                code,
                expiration,
                inviter,
            } => C::AcceptInvite {
                group,
                code,
                expiration,
                inviter,
            },
            GroupCommand::SetPicture { jid, jpeg } => C::SetPicture { jid, jpeg },
        }
    }
}

impl From<ParticipantAction> for core::ParticipantAction {
    fn from(action: ParticipantAction) -> core::ParticipantAction {
        match action {
            ParticipantAction::Add => core::ParticipantAction::Add,
            ParticipantAction::Remove => core::ParticipantAction::Remove,
            ParticipantAction::Promote => core::ParticipantAction::Promote,
            ParticipantAction::Demote => core::ParticipantAction::Demote,
        }
    }
}

impl From<GroupSetting> for core::GroupSetting {
    fn from(setting: GroupSetting) -> core::GroupSetting {
        match setting {
            GroupSetting::Announce { on } => core::GroupSetting::Announce(on),
            GroupSetting::Locked { on } => core::GroupSetting::Locked(on),
            GroupSetting::ApprovalRequired { on } => core::GroupSetting::ApprovalRequired(on),
            GroupSetting::Ephemeral { seconds } => core::GroupSetting::Ephemeral(seconds),
            GroupSetting::MembersCanAdd { on } => core::GroupSetting::MembersCanAdd(on),
        }
    }
}

impl From<&core::GroupParticipant> for GroupParticipant {
    fn from(p: &core::GroupParticipant) -> GroupParticipant {
        GroupParticipant {
            jid: p.jid.clone(),
            phone_number: p.phone_number.clone(),
            lid: p.lid.clone(),
            role: match p.role {
                core::ParticipantRole::Member => ParticipantRole::Member,
                core::ParticipantRole::Admin => ParticipantRole::Admin,
                core::ParticipantRole::SuperAdmin => ParticipantRole::SuperAdmin,
            },
        }
    }
}

impl From<&core::GroupInfo> for GroupInfo {
    fn from(info: &core::GroupInfo) -> GroupInfo {
        GroupInfo {
            jid: info.jid.clone(),
            subject: info.subject.clone(),
            subject_owner: info.subject_owner.clone(),
            subject_time: info.subject_time,
            creation: info.creation,
            owner: info.owner.clone(),
            owner_pn: info.owner_pn.clone(),
            description: info.description.clone(),
            description_id: info.description_id.clone(),
            participants: info.participants.iter().map(Into::into).collect(),
            size: info.size,
            announce: info.announce,
            locked: info.locked,
            approval_required: info.approval_required,
            ephemeral_seconds: info.ephemeral_seconds,
            members_can_add: info.members_can_add,
            lid_addressed: match info.addressing_mode {
                core::AddressingMode::Lid => true,
                core::AddressingMode::Pn => false,
            },
        }
    }
}

impl From<&core::ParticipantResult> for ParticipantResult {
    fn from(r: &core::ParticipantResult) -> ParticipantResult {
        use core::ParticipantStatus as S;
        ParticipantResult {
            jid: r.jid.clone(),
            alt: r.alt.clone(),
            status: match &r.status {
                S::Ok => ParticipantStatus::Ok,
                S::InviteRequired { code, expiration } => ParticipantStatus::InviteRequired {
                    code: code.clone(),
                    expiration: *expiration,
                },
                S::NotAuthorized => ParticipantStatus::NotAuthorized,
                S::NotFound => ParticipantStatus::NotFound,
                S::RecentlyLeft => ParticipantStatus::RecentlyLeft,
                S::AlreadyMember => ParticipantStatus::AlreadyMember,
                S::GroupFull => ParticipantStatus::GroupFull,
                S::Failed { code } => ParticipantStatus::Failed { code: *code },
            },
        }
    }
}

impl From<&core::GroupOutput> for GroupOutput {
    fn from(output: &core::GroupOutput) -> GroupOutput {
        use core::GroupOutput as O;
        match output {
            O::Created { info, participants } => GroupOutput::Created {
                info: info.into(),
                participants: participants.iter().map(Into::into).collect(),
            },
            O::Info(info) => GroupOutput::Info { info: info.into() },
            O::List(groups) => GroupOutput::Groups {
                groups: groups.iter().map(Into::into).collect(),
            },
            O::Participants(results) => GroupOutput::Participants {
                results: results.iter().map(Into::into).collect(),
            },
            O::InviteCode(code) => GroupOutput::InviteCode { code: code.clone() },
            O::Joined {
                group,
                pending_approval,
            } => GroupOutput::Joined {
                group: group.clone(),
                pending_approval: *pending_approval,
            },
            O::JoinRequests(requests) => GroupOutput::JoinRequests {
                requests: requests
                    .iter()
                    .map(|r| JoinRequest {
                        jid: r.jid.clone(),
                        phone_number: r.phone_number.clone(),
                        requested_at: r.requested_at,
                    })
                    .collect(),
            },
            O::Picture { id } => GroupOutput::Picture { id: id.clone() },
        }
    }
}

impl From<&core::GroupChange> for GroupChange {
    fn from(change: &core::GroupChange) -> GroupChange {
        use core::GroupChange as G;
        match change {
            G::Created(info) => GroupChange::Created { info: info.into() },
            G::Participants {
                change,
                participants,
            } => GroupChange::Participants {
                change: match change {
                    core::MembershipChange::Added => MembershipChange::Added,
                    core::MembershipChange::Removed => MembershipChange::Removed,
                    core::MembershipChange::Left => MembershipChange::Left,
                    core::MembershipChange::Promoted => MembershipChange::Promoted,
                    core::MembershipChange::Demoted => MembershipChange::Demoted,
                },
                participants: participants.iter().map(Into::into).collect(),
            },
            G::Subject(subject) => GroupChange::Subject {
                subject: subject.clone(),
            },
            G::Description { id, text } => GroupChange::Description {
                id: id.clone(),
                text: text.clone(),
            },
            G::Announce(on) => GroupChange::Announce { on: *on },
            G::Locked(on) => GroupChange::Locked { on: *on },
            G::ApprovalRequired(on) => GroupChange::ApprovalRequired { on: *on },
            G::Ephemeral(seconds) => GroupChange::Ephemeral { seconds: *seconds },
            G::MembersCanAdd(on) => GroupChange::MembersCanAdd { on: *on },
            G::InviteCode(code) => GroupChange::InviteCode { code: code.clone() },
            G::Deleted => GroupChange::Deleted,
        }
    }
}
