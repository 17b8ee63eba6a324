//! The public face of walink-sim for testing your own bot: simulated WhatsApp accounts (each
//! with its primary phone), your bot linked to one of them as a companion device, a seeded
//! network with faults and restarts, and a virtual clock. No socket, no thread, no wall clock:
//! a run is a pure function of its seed and of what the test does, so a failing seed replays
//! step for step.
//!
//! ```no_run
//! use walink_sim::testkit::{Commands, Event, Faults, Sim};
//!
//! let mut sim = Sim::new(0x5eed, Faults::hostile());
//! let bot_account = sim.add_account("15550001111", "Bot").unwrap();
//! let carol = sim.add_account("15550002222", "Carol").unwrap();
//! let bot = sim.link(&bot_account).unwrap(); // pairs by QR as a person would
//! sim.phone_send(&carol, &bot_account, "/ping").unwrap();
//! let mut handler = |event: &Event, commands: &mut Commands<'_>| {
//!     if let Event::Message(m) = event
//!         && m.text.as_deref() == Some("/ping")
//!     {
//!         commands.send_text(&m.chat.to_string(), "pong");
//!     }
//! };
//! sim.run_for(bot, &mut handler, 60_000);
//! assert!(sim.inbox(&carol).iter().any(|m| m.text.as_deref() == Some("pong")));
//! ```
//!
//! Only this module is meant for code outside walink: `Sim`, `Account`, `Bot`, `Handler`,
//! `Commands`, `Faults`, the seeds, and the `walink_core` types a handler sees (`Event`, `Command`,
//! `State`).
//! The simulation's internals (`walink_sim::sim`) change with walink's own tests.

use std::fmt;

use walink_core::client::Config;
use walink_core::noise::payload::{ClientProfile, WebVersion};

pub use crate::sim::{Faults, PhoneMessage, SimError};
pub use walink_core::client::{Command, CommandId, Event, State, StateReason};

use crate::noise_server::ChainSpec;
use crate::sim::{World, WorldNote};

/// The virtual clock's start: Unix milliseconds (2027-01-15).
pub const START_MS: u64 = 1_800_000_000_000;

/// The seed variable: `WALINK_SIM_SEED=0x…` replays one seed.
pub const SEED_VAR: &str = "WALINK_SIM_SEED";

/// The seed count variable: `WALINK_SIM_SEEDS=n` runs `n` seeds instead of the default.
pub const SEEDS_VAR: &str = "WALINK_SIM_SEEDS";

/// Parses a seed as walink-sim prints it: decimal or `0x` hexadecimal, `_` allowed.
pub fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim().replace('_', "");
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The seeds a test should run: the one in `WALINK_SIM_SEED` (a replay), else
/// `WALINK_SIM_SEEDS` many from `first` on, else `count` from `first` on. A malformed variable
/// is ignored with a message on stderr.
pub fn seeds(first: u64, count: u64) -> Vec<u64> {
    if let Ok(text) = std::env::var(SEED_VAR) {
        match parse_seed(&text) {
            Some(seed) => return vec![seed],
            None => eprintln!("{SEED_VAR}={text:?} is not a seed; running the default seeds"),
        }
    }
    let count = match std::env::var(SEEDS_VAR) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            eprintln!("{SEEDS_VAR}={text:?} is not a number; running {count} seeds");
            count
        }),
        Err(_) => count,
    };
    (0..count).map(|i| first.wrapping_add(i)).collect()
}

/// A simulated WhatsApp account: its number and its primary phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    number: String,
}

impl Account {
    /// The phone number (digits).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The account's JID, `<number>@s.whatsapp.net`: what a bot sends to.
    pub fn jid(&self) -> String {
        format!("{}@s.whatsapp.net", self.number)
    }
}

/// A walink client linked to an account: the bot under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bot(usize);

/// The bot's logic: each event of its client in, commands out through [`Commands`] (which
/// answers with the command's id, as `Client::command` does: its `Event::CommandDone` follows).
/// Implemented for every `FnMut(&Event, &mut Commands<'_>)`.
pub trait Handler {
    /// One event of the bot's client (committed by its host: a message is handed over once its
    /// receipt is on disk).
    fn handle(&mut self, event: &Event, commands: &mut Commands<'_>);

    /// The bot's process restarted (a host crash): whatever it kept in memory is gone. The
    /// client was rebuilt from its store and reconnects by itself.
    fn restarted(&mut self) {}
}

impl<F: FnMut(&Event, &mut Commands<'_>)> Handler for F {
    fn handle(&mut self, event: &Event, commands: &mut Commands<'_>) {
        self(event, commands)
    }
}

/// The bot's client, as a handler sees it: commands go to it at once.
pub struct Commands<'a> {
    world: &'a mut World,
    bot: usize,
}

impl Commands<'_> {
    /// Hands `command` to the client now; its id, which the `Event::CommandDone` with the
    /// result carries later (`None` if the bot is gone).
    pub fn send(&mut self, command: Command) -> Option<CommandId> {
        self.world.command(self.bot, command)
    }

    /// Sends a text to a JID (`<number>@s.whatsapp.net`, or a group's).
    pub fn send_text(&mut self, to: &str, text: &str) -> Option<CommandId> {
        self.send(Command::SendText {
            to: to.to_owned(),
            text: text.to_owned(),
        })
    }

    /// The virtual clock, Unix milliseconds.
    pub fn now(&self) -> u64 {
        self.world.now
    }
}

/// Why [`Sim::link`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// No such account.
    UnknownAccount(String),
    /// The client did not log in within the time given (virtual milliseconds).
    TimedOut(u64),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::UnknownAccount(number) => write!(f, "no account {number}"),
            LinkError::TimedOut(ms) => write!(f, "not logged in after {ms} ms"),
        }
    }
}

impl std::error::Error for LinkError {}

/// How long [`Sim::link`] waits for the first login, in virtual time.
pub const LINK_TIMEOUT_MS: u64 = 10 * 60 * 1000;

/// A simulated world: WhatsApp's server, the accounts' phones, the bots, the network between
/// them and a virtual clock, all decided by one seed.
pub struct Sim {
    seed: u64,
    world: World,
    /// Per bot: how many of its client's events were handed to a handler, and how many host
    /// crashes the handler was told of.
    handed: Vec<(usize, u32)>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &format_args!("{:#x}", self.seed))
            .field("now", &self.world.now)
            .field("bots", &self.handed.len())
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// A world at [`START_MS`] whose every random choice (keys, ids, latency, the faults) comes
    /// from `seed`.
    pub fn new(seed: u64, faults: Faults) -> Sim {
        Sim {
            seed,
            world: World::new(seed, START_MS, faults),
            handed: Vec::new(),
        }
    }

    /// The seed, as given.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The virtual clock, Unix milliseconds.
    pub fn now(&self) -> u64 {
        self.world.now
    }

    /// Changes the fault rates from now on (e.g. [`Faults::none`] to let the network calm down).
    pub fn set_faults(&mut self, faults: Faults) {
        self.world.faults = faults;
    }

    /// A client configuration that trusts the simulation's certificate chain (the simulated
    /// server is not WhatsApp's; nothing else differs).
    pub fn client_config() -> Config {
        let mut config = Config::new(ClientProfile::new(
            WebVersion::new(2, 3000, 1_045_649_367),
            "walink testkit",
        ));
        config.trust_root = ChainSpec::default().trust_root();
        config
    }

    /// Creates an account with its primary phone.
    pub fn add_account(&mut self, number: &str, name: &str) -> Result<Account, SimError> {
        self.world.server.create_account(number, name)?;
        Ok(Account {
            number: number.to_owned(),
        })
    }

    /// Links a new walink client to `account` as a person would: the client shows QR codes and
    /// the phone scans the current one, until the client logged in (a faulty network may cut a
    /// pairing; the client then shows new codes). Events before the login are not handed to
    /// any handler.
    pub fn link(&mut self, account: &Account) -> Result<Bot, LinkError> {
        if self.world.server.account(&account.number).is_none() {
            return Err(LinkError::UnknownAccount(account.number.clone()));
        }
        let index = self.world.add_client(Self::client_config());
        let deadline = self.world.now + LINK_TIMEOUT_MS;
        let logged_in = |world: &World| {
            world.clients.get(index).is_some_and(|c| {
                c.events.iter().any(|e| {
                    matches!(
                        e,
                        Event::State {
                            reason: StateReason::LoginAccepted,
                            ..
                        }
                    )
                })
            })
        };
        let mut scanned = 0;
        while !logged_in(&self.world) && self.world.now < deadline {
            let qrs = self
                .world
                .clients
                .get(index)
                .map(|c| c.qrs())
                .unwrap_or_default();
            if qrs.len() > scanned {
                scanned = qrs.len();
                if let Some(qr) = qrs.last() {
                    let now = self.world.now;
                    // A stale or cut QR is refused; the client shows a new one.
                    let _ = self.world.server.phone_scan_qr(now, &account.number, qr);
                    self.world.flush();
                }
            }
            let seen = scanned;
            self.world.run_until(deadline, |w| {
                logged_in(w) || w.clients.get(index).is_some_and(|c| c.qrs().len() > seen)
            });
        }
        if !logged_in(&self.world) {
            return Err(LinkError::TimedOut(LINK_TIMEOUT_MS));
        }
        let (events, crashes) = self
            .world
            .clients
            .get(index)
            .map_or((0, 0), |c| (c.events.len(), c.crashes));
        while self.handed.len() < index {
            self.handed.push((0, 0));
        }
        self.handed.push((events, crashes));
        Ok(Bot(index))
    }

    /// The phone of `from` sends a text to `to` (every device of that account: its phone and
    /// its linked bots). Returns the message id.
    pub fn phone_send(
        &mut self,
        from: &Account,
        to: &Account,
        text: &str,
    ) -> Result<String, SimError> {
        let now = self.world.now;
        let id = self
            .world
            .server
            .phone_send_text(now, &from.number, &to.jid(), text)?;
        self.world.flush();
        Ok(id)
    }

    /// What the phone of `account` received, in order (texts the bots sent it, among others).
    pub fn inbox(&self, account: &Account) -> Vec<PhoneMessage> {
        self.world
            .server
            .phone_messages(&account.number)
            .map(<[PhoneMessage]>::to_vec)
            .unwrap_or_default()
    }

    /// Runs the world for `ms` of virtual time, handing each new event of `bot` to `handler`
    /// and carrying out the commands it returns.
    pub fn run_for(&mut self, bot: Bot, handler: &mut impl Handler, ms: u64) {
        let deadline = self.world.now + ms;
        self.run_until(bot, handler, deadline, |_| false);
        self.world.now = self.world.now.max(deadline);
    }

    /// Runs the world (as [`Sim::run_for`]) until `done` holds or the clock passes `deadline`;
    /// returns whether `done` held.
    pub fn run_until(
        &mut self,
        bot: Bot,
        handler: &mut impl Handler,
        deadline: u64,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> bool {
        loop {
            self.hand_over(bot, handler);
            if done(self) {
                return true;
            }
            if !self.world.step(deadline) {
                self.hand_over(bot, handler);
                return done(self);
            }
        }
    }

    /// The host of `bot` crashes: the client is rebuilt from what it had persisted, and the
    /// handler is told ([`Handler::restarted`]) at the next run.
    pub fn crash(&mut self, bot: Bot) {
        self.world.crash(bot.0);
    }

    /// WhatsApp's server restarts: every connection drops without a word.
    pub fn restart_server(&mut self) {
        self.world.restart_server();
    }

    /// Cuts the bot's connection now, as a network failure.
    pub fn drop_connection(&mut self, bot: Bot) {
        self.world.drop_connection(bot.0);
    }

    /// The bot's client state.
    pub fn state(&self, bot: Bot) -> Option<&State> {
        self.world.client_state(bot.0)
    }

    /// Whether the bot is logged in and connected.
    pub fn is_connected(&self, bot: Bot) -> bool {
        matches!(self.state(bot), Some(State::Connected))
    }

    /// Every event of the bot's client so far (across its restarts), in order.
    pub fn events(&self, bot: Bot) -> &[Event] {
        self.world
            .clients
            .get(bot.0)
            .map_or(&[], |c| c.events.as_slice())
    }

    /// How many times the bot's host crashed (by [`Sim::crash`] or by the faults).
    pub fn crashes(&self, bot: Bot) -> u32 {
        self.world.clients.get(bot.0).map_or(0, |c| c.crashes)
    }

    /// Every fault injected so far, described, in order.
    pub fn faults_injected(&self) -> Vec<String> {
        self.world
            .notes
            .iter()
            .filter_map(|note| match note {
                WorldNote::Fault(what) => Some(what.clone()),
                WorldNote::Event { .. } => None,
            })
            .collect()
    }

    /// SHA-256 over every byte that crossed the simulated network: two runs of the same seed
    /// and the same test give the same hash.
    pub fn transcript_hash(&self) -> [u8; 32] {
        self.world.transcript_hash()
    }

    /// Hands the events `bot` committed since the last call to `handler`, and carries out the
    /// commands it returns (which may commit more events: handed over in the same call).
    fn hand_over(&mut self, bot: Bot, handler: &mut impl Handler) {
        loop {
            let Some(client) = self.world.clients.get(bot.0) else {
                return;
            };
            let Some((handed, crashes)) = self.handed.get_mut(bot.0) else {
                return;
            };
            if client.crashes != *crashes {
                *crashes = client.crashes;
                handler.restarted();
            }
            let fresh: Vec<Event> = client.events.get(*handed..).unwrap_or_default().to_vec();
            if fresh.is_empty() {
                return;
            }
            *handed = client.events.len();
            let mut commands = Commands {
                world: &mut self.world,
                bot: bot.0,
            };
            for event in &fresh {
                handler.handle(event, &mut commands);
            }
        }
    }
}
