//! The bot whose logic `tests/` checks against walink-sim: a command bot. It answers `/ping`
//! with `pong`, `/echo <text>` with the text and `/upper <text>` with the text in capitals, to
//! whoever wrote, and ignores everything else.
//!
//! A reply is a `SendText` command, which can fail for a passing reason: the connection ended
//! while the message was being encrypted, the bot answered while offline, the server answered
//! a request with a 5xx error or asked to slow down. The bot keeps each reply until its command
//! succeeded: one that found no connection goes again on the next connection, one the server
//! failed goes again at once, up to [`MAX_ATTEMPTS`] server failures. Its first version resent
//! only on a missing connection: `tests/replay.rs` shows the seed that found that bug, replayed.
//!
//! The bot never touches the network: it maps events to replies, and the host (a driver in
//! production, walink-sim's `testkit` in tests) carries them out.

#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use walink_core::client::{CommandError, CommandId, Event, State};

/// How many server failures of one reply the bot takes before it gives the reply up (sends
/// that found no connection do not count: they are tried again on each new connection).
pub const MAX_ATTEMPTS: u32 = 5;

/// What the bot answers to `text`, if anything.
pub fn answer(text: &str) -> Option<String> {
    let text = text.trim();
    let (command, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.trim();
    match command {
        "/ping" if rest.is_empty() => Some("pong".to_owned()),
        "/echo" if !rest.is_empty() => Some(rest.to_owned()),
        "/upper" if !rest.is_empty() => Some(rest.to_uppercase()),
        _ => None,
    }
}

/// One text the bot wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The chat to answer in (the sender's JID, or the group's).
    pub to: String,
    /// The text.
    pub text: String,
    /// How many of its sends the server failed (a send without a connection does not count).
    pub attempts: u32,
}

/// Which failed sends are worth another try.
pub type ResendRule = fn(&CommandError) -> bool;

/// The bot's state: the replies handed to the client and not yet acknowledged (with the
/// attempts made), and those to send again once connected.
#[derive(Debug)]
pub struct CommandBot {
    in_flight: BTreeMap<CommandId, Reply>,
    to_resend: Vec<Reply>,
    connected: bool,
    rule: ResendRule,
}

impl Default for CommandBot {
    fn default() -> CommandBot {
        CommandBot::with_rule(worth_resending)
    }
}

impl CommandBot {
    /// A bot with nothing pending, resending what [`worth_resending`] allows.
    pub fn new() -> CommandBot {
        CommandBot::default()
    }

    /// A bot that resends the failed replies `rule` allows (tests/replay.rs runs the first
    /// version's rule).
    pub fn with_rule(rule: ResendRule) -> CommandBot {
        CommandBot {
            in_flight: BTreeMap::new(),
            to_resend: Vec::new(),
            connected: false,
            rule,
        }
    }

    /// Takes one event of the client; returns the replies to send now.
    pub fn on_event(&mut self, event: &Event) -> Vec<Reply> {
        match event {
            // Not our own messages (sent from the phone) nor old ones from a history sync.
            Event::Message(message) if !message.from_me && !message.history => message
                .text
                .as_deref()
                .and_then(answer)
                .map(|text| Reply {
                    to: message.chat.to_string(),
                    text,
                    attempts: 0,
                })
                .into_iter()
                .collect(),
            Event::CommandDone { id, result } => match (self.in_flight.remove(id), result) {
                // The send never reached the server: again on the next connection (whose
                // `State` event may follow this one).
                (Some(reply), Err(CommandError::NotConnected)) => {
                    self.to_resend.push(reply);
                    Vec::new()
                }
                (Some(mut reply), Err(error)) if (self.rule)(error) => {
                    reply.attempts += 1;
                    if reply.attempts >= MAX_ATTEMPTS {
                        Vec::new()
                    } else if self.connected {
                        vec![reply]
                    } else {
                        self.to_resend.push(reply);
                        Vec::new()
                    }
                }
                _ => Vec::new(),
            },
            Event::State { state, .. } => {
                self.connected = matches!(state, State::Connected);
                if !self.connected {
                    return Vec::new();
                }
                core::mem::take(&mut self.to_resend)
            }
            _ => Vec::new(),
        }
    }

    /// `reply` was handed to the client as the command `id` (a reply [`CommandBot::on_event`]
    /// returned, sent or sent again).
    pub fn sent(&mut self, id: CommandId, reply: Reply) {
        self.in_flight.insert(id, reply);
    }

    /// Replies not acknowledged yet (in flight or waiting for the connection).
    pub fn pending(&self) -> usize {
        self.in_flight.len() + self.to_resend.len()
    }
}

/// Whether a failed send is worth another try: the connection was missing, the send ran out of
/// attempts, the server failed (5xx) or asked to slow down; a refused address or message, or
/// an untrusted identity, would fail again.
pub fn worth_resending(error: &CommandError) -> bool {
    match error {
        CommandError::NotConnected | CommandError::TimedOut | CommandError::RateLimited { .. } => {
            true
        }
        CommandError::Rejected { code, .. } => (500..600).contains(code),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::answer;

    #[test]
    fn answers_its_commands_and_nothing_else() {
        assert_eq!(answer("/ping").as_deref(), Some("pong"));
        assert_eq!(
            answer(" /echo  hello there ").as_deref(),
            Some("hello there")
        );
        assert_eq!(answer("/upper straße").as_deref(), Some("STRASSE"));
        assert_eq!(answer("/ping me"), None);
        assert_eq!(answer("/echo"), None);
        assert_eq!(answer("hello"), None);
        assert_eq!(answer(""), None);
    }
}
