//! `npm/src/index.d.ts` against what this facade builds: for every tagged union the package
//! hands JavaScript (outputs, events, states, state and close reasons, command outputs and
//! error codes, fetch errors), the names `index.d.ts` declares are exactly the names the
//! conversions in `client.rs` produce.
//!
//! A sample of every variant of each core enum goes through the name function the conversion
//! uses. The samples are checked for completeness by an exhaustive `match` in each sample
//! function (walink-core's `exhaustive` feature): a variant added to the core fails to compile
//! here until it has a sample, and then this test fails until `index.d.ts` names it.
#![allow(clippy::panic)]

use std::collections::BTreeSet;

use walink_core::appstate::{ChatSettings, Collection, PatchError, SettingChange};
use walink_core::binary::Jid;
use walink_core::client::groups::{
    GroupChange, GroupInfo, GroupNotification, GroupOutput, MembershipChange,
};
use walink_core::client::history::{
    HistoryConversation, HistorySyncProgress, HistorySyncType, PushName,
};
use walink_core::client::{
    AppStateFailure, Body, CloseReason, CommandError, CommandId, CommandOutput, DecryptFailure,
    DecryptFailureKind, Event, FetchError, FetchId, FetchRequest, IdentityChange, IdentityInfo,
    IncomingMessage, LoadId, Method, OfflinePreview, Output, PairingMode, ProtocolError, Receipt,
    RefusedRetry, ResponseTarget, RetryRefusal, State, StateReason,
};
use walink_core::store::Batch;

use crate::client::{
    close_kind, command_output_kind, event_type, output_kind, state_kind, state_reason_kind,
};

const INDEX_D_TS: &str = include_str!("../../../npm/src/index.d.ts");

/// The body of `export type <name> = ...`: its lines up to the next top-level line.
fn declaration(name: &str) -> String {
    let head = format!("export type {name} =");
    let start = INDEX_D_TS
        .find(&head)
        .unwrap_or_else(|| panic!("index.d.ts declares no type {name}"));
    let rest = &INDEX_D_TS[start + head.len()..];
    let mut body = String::new();
    for line in rest.lines().skip(1) {
        if !line.starts_with(' ') {
            break;
        }
        body.push_str(line);
        body.push('\n');
    }
    body
}

/// The string literals following `field: ` in the declaration of `name`.
fn declared(name: &str, field: &str) -> BTreeSet<String> {
    let body = declaration(name);
    let marker = format!("{field}: '");
    body.match_indices(&marker)
        .filter_map(|(at, _)| {
            let rest = &body[at + marker.len()..];
            rest.find('\'').map(|end| rest[..end].to_owned())
        })
        .collect()
}

/// Every string literal of a union of literals (`export type X = | 'a' | 'b'`).
fn literals(name: &str) -> BTreeSet<String> {
    declaration(name)
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn names<T>(samples: &[T], name: impl Fn(&T) -> &'static str) -> BTreeSet<String> {
    samples.iter().map(|s| name(s).to_owned()).collect()
}

fn jid() -> Jid {
    Jid::new("15550001111", "s.whatsapp.net")
}

fn close_reasons() -> Vec<CloseReason> {
    let samples = vec![
        CloseReason::Network,
        CloseReason::Local,
        CloseReason::StreamError {
            code: Some(515),
            conflict: None,
        },
        CloseReason::Failure { reason: 401 },
        CloseReason::ServerClosed,
        CloseReason::Protocol(ProtocolError::MalformedPairing),
        CloseReason::ConnectTimeout,
        CloseReason::KeepaliveTimeout,
        CloseReason::QrRefsExhausted,
        CloseReason::LoggedOut,
    ];
    for sample in &samples {
        match sample {
            CloseReason::Network
            | CloseReason::Local
            | CloseReason::StreamError { .. }
            | CloseReason::Failure { .. }
            | CloseReason::ServerClosed
            | CloseReason::Protocol(_)
            | CloseReason::ConnectTimeout
            | CloseReason::KeepaliveTimeout
            | CloseReason::QrRefsExhausted
            | CloseReason::LoggedOut => {}
        }
    }
    samples
}

fn states() -> Vec<State> {
    let samples = vec![
        State::Disconnected,
        State::Connecting,
        State::Handshaking,
        State::AwaitingPairing {
            mode: PairingMode::Qr,
        },
        State::LoggingIn,
        State::Connected,
        State::Reconnecting { attempt: 1, at: 5 },
        State::LoggedOut,
        State::Replaced,
        State::ClientOutdated,
    ];
    for sample in &samples {
        match sample {
            State::Disconnected
            | State::Connecting
            | State::Handshaking
            | State::AwaitingPairing { .. }
            | State::LoggingIn
            | State::Connected
            | State::Reconnecting { .. }
            | State::LoggedOut
            | State::Replaced
            | State::ClientOutdated => {}
        }
    }
    samples
}

fn state_reasons() -> Vec<StateReason> {
    let samples = vec![
        StateReason::Started,
        StateReason::ConnectRequested,
        StateReason::BackoffElapsed,
        StateReason::RestartRequired,
        StateReason::SocketOpened,
        StateReason::PairingOffered,
        StateReason::PairingCodeRequested,
        StateReason::PairingCodeFailed,
        StateReason::LoginAccepted,
        StateReason::PostLoginDone,
        StateReason::Closed(CloseReason::Network),
        StateReason::DisconnectRequested,
        StateReason::LogoutRequested,
    ];
    for sample in &samples {
        match sample {
            StateReason::Started
            | StateReason::ConnectRequested
            | StateReason::BackoffElapsed
            | StateReason::RestartRequired
            | StateReason::SocketOpened
            | StateReason::PairingOffered
            | StateReason::PairingCodeRequested
            | StateReason::PairingCodeFailed
            | StateReason::LoginAccepted
            | StateReason::PostLoginDone
            | StateReason::Closed(_)
            | StateReason::DisconnectRequested
            | StateReason::LogoutRequested => {}
        }
    }
    samples
}

fn command_outputs() -> Vec<CommandOutput> {
    let samples = vec![
        CommandOutput::None,
        CommandOutput::PairingCode("ABCDEFGH".into()),
        CommandOutput::MessageSent { id: "1".into() },
        CommandOutput::ChatSettings(ChatSettings::default()),
        CommandOutput::Identity(IdentityInfo {
            address: jid(),
            identity: None,
            pending: None,
        }),
        CommandOutput::MediaDownloaded(walink_core::client::MediaData(vec![1])),
        CommandOutput::Numbers(Vec::new()),
        CommandOutput::ProfilePicture(walink_core::client::ProfilePicture::None),
        CommandOutput::About(walink_core::client::About::None),
        CommandOutput::BusinessProfile(None),
        CommandOutput::BlockList(Vec::new()),
        CommandOutput::MediaSaved { sink: 1, length: 2 },
    ];
    let mut samples = samples;
    samples.extend(
        group_outputs()
            .into_iter()
            .map(|output| CommandOutput::Group(Box::new(output))),
    );
    for sample in &samples {
        match sample {
            CommandOutput::None
            | CommandOutput::PairingCode(_)
            | CommandOutput::MessageSent { .. }
            | CommandOutput::ChatSettings(_)
            | CommandOutput::Identity(_)
            | CommandOutput::MediaDownloaded(_)
            | CommandOutput::MediaSaved { .. }
            | CommandOutput::Group(_)
            | CommandOutput::Numbers(_)
            | CommandOutput::ProfilePicture(_)
            | CommandOutput::About(_)
            | CommandOutput::BusinessProfile(_)
            | CommandOutput::BlockList(_) => {}
        }
    }
    samples
}

fn group_outputs() -> Vec<GroupOutput> {
    let samples = vec![
        GroupOutput::Created {
            info: GroupInfo::default(),
            participants: Vec::new(),
        },
        GroupOutput::Info(GroupInfo::default()),
        GroupOutput::List(Vec::new()),
        GroupOutput::Participants(Vec::new()),
        GroupOutput::InviteCode("C".into()),
        GroupOutput::Joined {
            group: "1@g.us".into(),
            pending_approval: false,
        },
        GroupOutput::JoinRequests(Vec::new()),
        GroupOutput::Picture { id: None },
    ];
    for sample in &samples {
        match sample {
            GroupOutput::Created { .. }
            | GroupOutput::Info(_)
            | GroupOutput::List(_)
            | GroupOutput::Participants(_)
            | GroupOutput::InviteCode(_)
            | GroupOutput::Joined { .. }
            | GroupOutput::JoinRequests(_)
            | GroupOutput::Picture { .. } => {}
        }
    }
    samples
}

fn group_changes() -> Vec<GroupChange> {
    let samples = vec![
        GroupChange::Created(GroupInfo::default()),
        GroupChange::Participants {
            change: MembershipChange::Added,
            participants: Vec::new(),
        },
        GroupChange::Subject("s".into()),
        GroupChange::Description {
            id: None,
            text: None,
        },
        GroupChange::Announce(true),
        GroupChange::Locked(true),
        GroupChange::ApprovalRequired(true),
        GroupChange::Ephemeral(0),
        GroupChange::MembersCanAdd(true),
        GroupChange::InviteCode("c".into()),
        GroupChange::Deleted,
    ];
    for sample in &samples {
        match sample {
            GroupChange::Created(_)
            | GroupChange::Participants { .. }
            | GroupChange::Subject(_)
            | GroupChange::Description { .. }
            | GroupChange::Announce(_)
            | GroupChange::Locked(_)
            | GroupChange::ApprovalRequired(_)
            | GroupChange::Ephemeral(_)
            | GroupChange::MembersCanAdd(_)
            | GroupChange::InviteCode(_)
            | GroupChange::Deleted => {}
        }
    }
    samples
}

fn command_errors() -> Vec<CommandError> {
    let samples = vec![
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
        CommandError::AppState(PatchError::MissingExternalMutations),
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
        CommandError::BadPrekeyAnswer {
            address: Some("1@s.whatsapp.net".into()),
        },
        CommandError::PushNameRequired,
        CommandError::BadAnswer,
    ];
    for sample in &samples {
        match sample {
            CommandError::InvalidPhoneNumber
            | CommandError::AlreadyPaired
            | CommandError::NotPaired
            | CommandError::PairingCodeOutstanding
            | CommandError::UnsupportedPlatform
            | CommandError::NotConnected
            | CommandError::Rejected { .. }
            | CommandError::RateLimited { .. }
            | CommandError::TimedOut
            | CommandError::InvalidAddress
            | CommandError::InvalidMessage
            | CommandError::InvalidState
            | CommandError::AppState(_)
            | CommandError::UntrustedIdentity { .. }
            | CommandError::UploadFailed
            | CommandError::DownloadFailed
            | CommandError::MediaInvalid
            | CommandError::MediaExpired
            | CommandError::MediaTooLarge
            | CommandError::UnknownPoll
            | CommandError::Forbidden
            | CommandError::NotFound
            | CommandError::ResourceLimit
            | CommandError::BadRequest
            | CommandError::BadPrekeyAnswer { .. }
            | CommandError::PushNameRequired
            | CommandError::BadAnswer => {}
        }
    }
    samples
}

fn events() -> Vec<Event> {
    let samples = vec![
        Event::State {
            state: State::Connected,
            reason: StateReason::PostLoginDone,
        },
        Event::Qr {
            payload: "2@x".into(),
            expires_at: 1,
        },
        Event::QrRefsExhausted,
        Event::PairingCode {
            code: "ABCDEFGH".into(),
        },
        Event::Paired {
            jid: jid(),
            lid: None,
            platform: "android".into(),
            business_name: None,
        },
        Event::OfflinePreview(OfflinePreview::default()),
        Event::OfflineSyncDone { count: 0 },
        Event::Message(Box::new(IncomingMessage {
            id: "1".into(),
            chat: jid(),
            sender: jid(),
            timestamp: 1,
            from_me: false,
            push_name: None,
            history: false,
            message: Default::default(),
            wrappers: Vec::new(),
            raw: Vec::new(),
            text: None,
            poll_vote: None,
        })),
        Event::Receipt(Receipt {
            chat: jid(),
            sender: jid(),
            kind: "read".into(),
            ids: Vec::new(),
            timestamp: 1,
        }),
        Event::DecryptFailed(DecryptFailure {
            id: "1".into(),
            chat: jid(),
            sender: None,
            kind: DecryptFailureKind::Undecryptable,
            reason: "bad mac".into(),
        }),
        Event::IdentityChanged(IdentityChange {
            address: jid(),
            identity: [1; 32],
            previous: [2; 32],
            accepted: true,
        }),
        Event::RecordCorrupt {
            space: walink_core::store::Space::Session,
            key: "1.0".into(),
            error: walink_core::signal::RecordError::BadProtobuf,
        },
        Event::RetryRefused(RefusedRetry {
            id: "1".into(),
            requester: jid(),
            reason: RetryRefusal::NotARecipient,
            refused_total: 1,
        }),
        Event::AppStateChanged {
            collection: Collection::Regular,
            change: SettingChange::ChatDeleted { chat: "c".into() },
        },
        Event::ChatSettings {
            chat: "c".into(),
            settings: ChatSettings::default(),
        },
        Event::AppStateWaitingForKeys {
            collection: Collection::Regular,
            key_ids: Vec::new(),
        },
        Event::AppStateFatal {
            collection: Collection::Regular,
            error: AppStateFailure::Download,
        },
        Event::HistoryConversation(Box::new(HistoryConversation {
            chat: jid(),
            name: None,
            unread_count: 0,
            timestamp: 0,
            archived: false,
            pinned: false,
            mute_end_time: 0,
            ephemeral_expiration: 0,
            pn: None,
            lid: None,
            sync_type: HistorySyncType::Recent,
        })),
        Event::PushName(PushName {
            jid: jid(),
            name: "n".into(),
        }),
        Event::HistorySync(HistorySyncProgress {
            sync_type: HistorySyncType::Recent,
            chunk_order: 1,
            progress: None,
            conversations: 0,
            messages: 0,
            failure: None,
        }),
        Event::Group(GroupNotification {
            group: "1@g.us".into(),
            actor: None,
            timestamp: 0,
            changes: Vec::new(),
        }),
        Event::Call(Box::new(walink_core::client::CallEvent {
            call_id: "C".into(),
            action: walink_core::client::CallAction::Offer,
            caller: jid(),
            caller_pn: None,
            device: jid(),
            timestamp: 0,
            offline: false,
            video: false,
            group: None,
            is_group: false,
            reason: None,
        })),
        Event::Presence(walink_core::client::PresenceUpdate {
            jid: jid(),
            available: true,
            last_seen: None,
            last_seen_hidden: false,
        }),
        Event::ChatState(walink_core::client::ChatStateUpdate {
            chat: jid(),
            sender: jid(),
            state: walink_core::client::ChatState::Composing,
        }),
        Event::CommandDone {
            id: CommandId::from_u64(1),
            result: Ok(CommandOutput::None),
        },
    ];
    for sample in &samples {
        match sample {
            Event::State { .. }
            | Event::Qr { .. }
            | Event::QrRefsExhausted
            | Event::PairingCode { .. }
            | Event::Paired { .. }
            | Event::OfflinePreview(_)
            | Event::OfflineSyncDone { .. }
            | Event::Message(_)
            | Event::Receipt(_)
            | Event::DecryptFailed(_)
            | Event::IdentityChanged(_)
            | Event::RecordCorrupt { .. }
            | Event::RetryRefused(_)
            | Event::AppStateChanged { .. }
            | Event::ChatSettings { .. }
            | Event::AppStateWaitingForKeys { .. }
            | Event::AppStateFatal { .. }
            | Event::HistoryConversation(_)
            | Event::PushName(_)
            | Event::HistorySync(_)
            | Event::Group(_)
            | Event::Call(_)
            | Event::Presence(_)
            | Event::ChatState(_)
            | Event::CommandDone { .. } => {}
        }
    }
    samples
}

fn outputs() -> Vec<Output> {
    let samples = vec![
        Output::Connect,
        Output::Persist(Batch::default()),
        Output::Load {
            id: LoadId::from_u64(1),
            keys: Vec::new(),
        },
        Output::Fetch {
            id: FetchId::from_u64(1),
            request: FetchRequest {
                method: Method::Get,
                url: "https://mmg.whatsapp.net/v/x".into(),
                headers: Vec::new(),
                body: Body::Empty,
                response: ResponseTarget::Memory,
                max_response_bytes: 1,
                timeout_ms: 1,
            },
        },
        Output::Transmit(Vec::new()),
        Output::Event(Event::QrRefsExhausted),
        Output::Close(CloseReason::Local),
    ];
    for sample in &samples {
        match sample {
            Output::Connect
            | Output::Persist(_)
            | Output::Load { .. }
            | Output::Fetch { .. }
            | Output::Transmit(_)
            | Output::Event(_)
            | Output::Close(_) => {}
        }
    }
    samples
}

fn fetch_errors() -> Vec<FetchError> {
    let samples = vec![
        FetchError::Network,
        FetchError::TimedOut,
        FetchError::TooLarge,
        FetchError::HostBody,
    ];
    for sample in &samples {
        match sample {
            FetchError::Network
            | FetchError::TimedOut
            | FetchError::TooLarge
            | FetchError::HostBody => {}
        }
    }
    samples
}

#[test]
fn every_union_of_index_d_ts_names_exactly_what_the_facade_builds() {
    use walink_core::client::{CallAction, ChatState};
    let chat_states = [
        ChatState::Composing,
        ChatState::Recording,
        ChatState::Paused,
    ];
    for state in chat_states {
        match state {
            ChatState::Composing | ChatState::Recording | ChatState::Paused => {}
        }
    }
    let actions = [
        CallAction::Offer,
        CallAction::Ringing,
        CallAction::Accepted,
        CallAction::Rejected,
        CallAction::Ended,
        CallAction::TimedOut,
    ];
    for action in actions {
        match action {
            CallAction::Offer
            | CallAction::Ringing
            | CallAction::Accepted
            | CallAction::Rejected
            | CallAction::Ended
            | CallAction::TimedOut => {}
        }
    }
    let cases: [(&str, BTreeSet<String>, BTreeSet<String>); 11] = [
        (
            "GroupChange",
            declared("GroupChange", "kind"),
            names(&group_changes(), crate::groups::change_kind),
        ),
        (
            "ChatState",
            literals("ChatState"),
            names(&chat_states, |s| crate::social::chat_state_name(*s)),
        ),
        (
            "CallAction",
            literals("CallAction"),
            names(&actions, |a| crate::social::call_action_name(*a)),
        ),
        (
            "ClientOutput",
            declared("ClientOutput", "kind"),
            names(&outputs(), output_kind),
        ),
        (
            "ClientEvent",
            declared("ClientEvent", "type"),
            names(&events(), event_type),
        ),
        (
            "ClientState",
            declared("ClientState", "kind"),
            names(&states(), state_kind),
        ),
        (
            "StateReason",
            declared("StateReason", "kind"),
            names(&state_reasons(), state_reason_kind),
        ),
        (
            "CloseReason",
            declared("CloseReason", "kind"),
            names(&close_reasons(), close_kind),
        ),
        (
            "CommandOutput",
            declared("CommandOutput", "kind"),
            names(&command_outputs(), command_output_kind),
        ),
        (
            "CommandErrorCode",
            literals("CommandErrorCode"),
            names(&command_errors(), CommandError::code),
        ),
        (
            "FetchErrorCode",
            literals("FetchErrorCode"),
            names(&fetch_errors(), |e| e.code()),
        ),
    ];
    for (name, in_d_ts, built) in cases {
        assert_eq!(
            in_d_ts, built,
            "index.d.ts {name} (left) against the facade (right)"
        );
    }
}

#[test]
fn pairing_code_failed_has_its_own_name() {
    assert_eq!(
        state_reason_kind(&StateReason::PairingCodeFailed),
        "pairingCodeFailed"
    );
    assert!(declared("StateReason", "kind").contains("pairingCodeFailed"));
}
