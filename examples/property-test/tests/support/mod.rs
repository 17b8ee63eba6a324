//! What the property tests share: the bot wired to walink-sim's testkit, the script a seed
//! draws, and one run of the world.
#![allow(dead_code)]

use walink_core::client::CommandError;
use walink_example_property_test::{CommandBot, ResendRule, answer};
use walink_sim::testkit::{Account, Commands, Event, Faults, Handler, Sim};

/// The bot's account and the person who writes to it.
pub(crate) const BOT_NUMBER: &str = "15550001111";
pub(crate) const CAROL_NUMBER: &str = "15550002222";

/// How long the network may take to calm down at the end of a run (virtual time).
pub(crate) const CALM_MS: u64 = 10 * 60 * 1000;

/// A network that cuts connections at any byte, re-chunks and delays them, restarts the server
/// and fails requests with 5xx errors; the bot's process does not crash here.
pub(crate) fn hostile_network() -> Faults {
    Faults {
        stream_5xx_per_mille: 2,
        iq_5xx_per_mille: 5,
        crash_per_mille: 0,
        ..Faults::hostile()
    }
}

/// The bot's first version: it resent a reply only when the connection was missing.
pub(crate) fn first_version_rule(error: &CommandError) -> bool {
    matches!(error, CommandError::NotConnected | CommandError::TimedOut)
}

/// The bot as a testkit handler: each reply becomes a `SendText`, whose id the bot keeps to
/// resend it if it fails. A process restart loses what the bot kept in memory.
pub(crate) struct Host {
    pub(crate) bot: CommandBot,
    rule: ResendRule,
}

impl Default for Host {
    fn default() -> Host {
        Host::with_rule(walink_example_property_test::worth_resending)
    }
}

impl Host {
    /// The bot with another resend rule (the first version's, in tests/replay.rs).
    pub(crate) fn with_rule(rule: ResendRule) -> Host {
        Host {
            bot: CommandBot::with_rule(rule),
            rule,
        }
    }
}

impl Handler for Host {
    fn handle(&mut self, event: &Event, commands: &mut Commands<'_>) {
        for reply in self.bot.on_event(event) {
            if let Some(id) = commands.send_text(&reply.to, &reply.text) {
                self.bot.sent(id, reply);
            }
        }
    }

    fn restarted(&mut self) {
        self.bot = CommandBot::with_rule(self.rule);
    }
}

/// A small generator (splitmix64), so that the script is decided by the same seed as the world.
pub(crate) struct Draw(u64);

impl Draw {
    pub(crate) fn new(seed: u64) -> Draw {
        Draw(seed ^ 0x5c21_7a3d_0b5e_11f3)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What Carol writes, drawn from the seed: commands, their arguments (with non-ASCII text)
/// and chatter the bot must not answer; 2 to 6 messages, each with the pause after it.
pub(crate) fn script(seed: u64) -> Vec<(String, u64)> {
    const WORDS: [&str; 6] = ["hello", "straße", "walink", "ünïcödé", "42", "a b  c"];
    let mut draw = Draw::new(seed);
    let count = 2 + draw.below(5);
    (0..count)
        .map(|_| {
            let word = WORDS[draw.below(WORDS.len() as u64) as usize];
            let text = match draw.below(5) {
                0 => "/ping".to_owned(),
                1 => format!("/echo {word}"),
                2 => format!("/upper {word}"),
                3 => format!("/ping {word}"),
                _ => word.to_owned(),
            };
            (text, 1_000 + draw.below(30_000))
        })
        .collect()
}

/// The texts Carol's phone received from the bot's account, in order.
pub(crate) fn replies(sim: &Sim, carol: &Account) -> Vec<String> {
    sim.inbox(carol)
        .into_iter()
        .filter(|m| m.from.starts_with(BOT_NUMBER))
        .filter_map(|m| m.text)
        .collect()
}

/// Whether every command got its answer (at least once: a reply resent after a cut may arrive
/// twice) and nothing else was sent.
pub(crate) fn all_answered(expected: &[String], got: &[String]) -> bool {
    expected.iter().all(|want| {
        got.iter().filter(|g| *g == want).count() >= expected.iter().filter(|e| *e == want).count()
    }) && got.iter().all(|g| expected.contains(g))
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) expected: Vec<String>,
    pub(crate) replies: Vec<String>,
    pub(crate) answered: bool,
    pub(crate) faults: usize,
    pub(crate) transcript: [u8; 32],
}

/// One run: the bot's account and Carol's, the bot linked by QR, Carol's script under the
/// faults, then a calm network until every command is answered or `CALM_MS` passed.
pub(crate) fn run(seed: u64, faults: Faults, handler: &mut impl Handler) -> Outcome {
    let mut sim = Sim::new(seed, faults.clone());
    let bot_account = sim.add_account(BOT_NUMBER, "Bot").expect("bot account");
    let carol = sim
        .add_account(CAROL_NUMBER, "Carol")
        .expect("Carol's account");
    let bot = sim
        .link(&bot_account)
        .unwrap_or_else(|e| panic!("seed {seed:#x}: linking failed: {e}"));
    let script = script(seed);
    let expected: Vec<String> = script.iter().filter_map(|(text, _)| answer(text)).collect();
    for (text, pause) in &script {
        sim.phone_send(&carol, &bot_account, text)
            .expect("Carol's phone sends");
        sim.run_for(bot, handler, *pause);
    }
    sim.set_faults(Faults::none());
    let deadline = sim.now() + CALM_MS;
    let answered = sim.run_until(bot, handler, deadline, |s| {
        all_answered(&expected, &replies(s, &carol))
    });
    Outcome {
        replies: replies(&sim, &carol),
        expected,
        answered,
        faults: sim.faults_injected().len(),
        transcript: sim.transcript_hash(),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
