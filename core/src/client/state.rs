//! The lifecycle: the current [`State`], a reason on every transition, and what a closed
//! connection leads to (transport.md §6.4, §6.5, §6.8).

use super::config::Config;
use super::event::{Event, State, StateReason};
use super::output::{CloseReason, Outputs};

/// The current state, changed only through [`Lifecycle::set`].
#[derive(Debug)]
pub(crate) struct Lifecycle {
    state: State,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            state: State::Disconnected,
        }
    }
}

impl Lifecycle {
    /// The current state.
    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// Moves to `state` for `reason`, emitting `Event::State` (only when the state changes).
    pub(crate) fn set(&mut self, state: State, reason: StateReason, out: &mut Outputs) {
        if self.state == state {
            return;
        }
        self.state = state.clone();
        out.event(Event::State { state, reason });
    }

    /// Whether the state ends the automatic lifecycle (only a command leaves it).
    pub(crate) fn is_resting(&self) -> bool {
        matches!(
            self.state,
            State::Disconnected | State::LoggedOut | State::Replaced | State::ClientOutdated
        )
    }
}

/// What a closed connection leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterClose {
    /// Reconnect at once (515 after pairing; a dead socket).
    ReconnectNow,
    /// Reconnect after the backoff delay, `extra_steps` further along the schedule.
    Backoff {
        /// Extra steps (5 for a 429).
        extra_steps: u32,
    },
    /// The device was unlinked: delete its records, end in `LoggedOut`.
    LoggedOut,
    /// Another connection took over: end in `Replaced`.
    Replaced,
    /// The server refused this version: end in `ClientOutdated`.
    Outdated,
    /// Stay disconnected until `Command::Connect` (a local close, a ban, a refusal that
    /// retrying cannot fix).
    Rest,
}

/// What `reason` leads to.
pub(crate) fn after_close(reason: &CloseReason, config: &Config) -> AfterClose {
    use crate::limits::CLIENT_BACKOFF_RATE_LIMIT_STEPS as RATE_LIMIT_STEPS;
    let replaced = if config.retry_when_replaced {
        AfterClose::Backoff { extra_steps: 0 }
    } else {
        AfterClose::Replaced
    };
    match reason {
        CloseReason::StreamError { code, conflict } => match (code, conflict.as_deref()) {
            (_, Some("replaced")) => replaced,
            // Only `device_removed` means the device is gone (whatsmeow deletes the store for
            // that alone); any other conflict is another session's business, as Baileys maps
            // every conflict to "connection replaced". A device that really was removed is
            // refused at its next login (`<failure reason="401">`) and wiped then.
            (_, Some("device_removed")) => AfterClose::LoggedOut,
            (_, Some(_)) => replaced,
            (Some(515), None) => AfterClose::ReconnectNow,
            (Some(401 | 516), None) => AfterClose::LoggedOut,
            (Some(409), None) => replaced,
            (Some(405), None) => AfterClose::Outdated,
            (Some(429), None) => AfterClose::Backoff {
                extra_steps: RATE_LIMIT_STEPS,
            },
            _ => AfterClose::Backoff { extra_steps: 0 },
        },
        CloseReason::Failure { reason } => match reason {
            401 | 403 | 406 => AfterClose::LoggedOut,
            405 | 409 => AfterClose::Outdated,
            402 | 400 | 415 | 418 | 501 => AfterClose::Rest,
            429 => AfterClose::Backoff {
                extra_steps: RATE_LIMIT_STEPS,
            },
            _ => AfterClose::Backoff { extra_steps: 0 },
        },
        CloseReason::KeepaliveTimeout => AfterClose::ReconnectNow,
        CloseReason::Local | CloseReason::QrRefsExhausted => AfterClose::Rest,
        CloseReason::LoggedOut => AfterClose::LoggedOut,
        CloseReason::Network
        | CloseReason::ServerClosed
        | CloseReason::Protocol(_)
        | CloseReason::ConnectTimeout => AfterClose::Backoff { extra_steps: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::payload::{ClientProfile, WebVersion};

    fn config() -> Config {
        Config::new(ClientProfile::new(WebVersion::new(2, 3000, 1), "walink"))
    }

    fn stream(code: Option<u16>, conflict: Option<&str>) -> CloseReason {
        CloseReason::StreamError {
            code,
            conflict: conflict.map(str::to_owned),
        }
    }

    #[test]
    fn stream_errors_map_as_transport_md_says() {
        let config = config();
        let cases = [
            (stream(Some(515), None), AfterClose::ReconnectNow),
            (
                stream(Some(401), Some("device_removed")),
                AfterClose::LoggedOut,
            ),
            (stream(Some(401), None), AfterClose::LoggedOut),
            (stream(Some(516), None), AfterClose::LoggedOut),
            (stream(None, Some("replaced")), AfterClose::Replaced),
            (stream(None, Some("device_removed")), AfterClose::LoggedOut),
            (stream(None, Some("session")), AfterClose::Replaced),
            (stream(Some(401), Some("unknown")), AfterClose::Replaced),
            (stream(Some(409), None), AfterClose::Replaced),
            (stream(Some(405), None), AfterClose::Outdated),
            (
                stream(Some(429), None),
                AfterClose::Backoff { extra_steps: 5 },
            ),
            (
                stream(Some(503), None),
                AfterClose::Backoff { extra_steps: 0 },
            ),
            (
                stream(Some(500), None),
                AfterClose::Backoff { extra_steps: 0 },
            ),
            (stream(None, None), AfterClose::Backoff { extra_steps: 0 }),
            (
                stream(Some(777), None),
                AfterClose::Backoff { extra_steps: 0 },
            ),
        ];
        for (reason, expected) in cases {
            assert_eq!(after_close(&reason, &config), expected, "{reason:?}");
        }
        let retrying = Config {
            retry_when_replaced: true,
            ..config
        };
        assert_eq!(
            after_close(&stream(None, Some("replaced")), &retrying),
            AfterClose::Backoff { extra_steps: 0 }
        );
    }

    #[test]
    fn failures_and_local_reasons_map() {
        let config = config();
        let failure = |reason| CloseReason::Failure { reason };
        assert_eq!(after_close(&failure(401), &config), AfterClose::LoggedOut);
        assert_eq!(after_close(&failure(403), &config), AfterClose::LoggedOut);
        assert_eq!(after_close(&failure(405), &config), AfterClose::Outdated);
        assert_eq!(after_close(&failure(402), &config), AfterClose::Rest);
        assert_eq!(
            after_close(&failure(503), &config),
            AfterClose::Backoff { extra_steps: 0 }
        );
        assert_eq!(
            after_close(&CloseReason::Network, &config),
            AfterClose::Backoff { extra_steps: 0 }
        );
        assert_eq!(
            after_close(&CloseReason::KeepaliveTimeout, &config),
            AfterClose::ReconnectNow
        );
        assert_eq!(after_close(&CloseReason::Local, &config), AfterClose::Rest);
    }

    #[test]
    fn transitions_emit_events_with_reasons() {
        let mut lifecycle = Lifecycle::default();
        let mut out = Outputs::default();
        lifecycle.set(State::Connecting, StateReason::Started, &mut out);
        lifecycle.set(State::Connecting, StateReason::Started, &mut out);
        assert_eq!(out.len(), 1);
        assert!(!lifecycle.is_resting());
        lifecycle.set(State::LoggedOut, StateReason::LogoutRequested, &mut out);
        assert!(lifecycle.is_resting());
        assert_eq!(out.len(), 2);
    }
}
