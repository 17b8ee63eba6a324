//! How a failing seed is found, replayed and kept. The bot's first version resent a failed
//! reply only when the connection was missing (`support::first_version_rule`); the property
//! `every_command_is_answered_on_a_hostile_network` failed on a seed where the server answered
//! one of the reply's requests with a 500, and printed `WALINK_SIM_SEED=<seed>`. Replaying that
//! seed gives the same run, byte for byte, so the bug can be looked at with
//! `WALINK_SIM_TRACE=1`; the fix (resend on 5xx and rate limits, `worth_resending`) passes it,
//! and the seed stays below as a regression test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod support;

use support::{Host, first_version_rule, hex, hostile_network, run};
use walink_sim::testkit::{Faults, seeds};

/// Seeds that found bugs, kept: each must pass with the bot as it is now.
const REGRESSIONS: [u64; 1] = [0x5eed_0b07_0001];

/// The hostile network of `bot_properties`, with a server that fails requests more often.
fn failing_server() -> Faults {
    Faults {
        iq_5xx_per_mille: 40,
        ..hostile_network()
    }
}

/// The search: the first version on a network whose server fails often, seed after seed,
/// until one fails; its replay is the same run; the fixed bot passes it.
#[test]
fn a_seed_that_fails_the_first_version_replays_and_the_fix_passes_it() {
    let faults = failing_server();
    let found = seeds(0x5eed_0b07_0000, 16).into_iter().find_map(|seed| {
        let outcome = run(
            seed,
            faults.clone(),
            &mut Host::with_rule(first_version_rule),
        );
        (!outcome.answered).then_some((seed, outcome))
    });
    let (seed, failed) = found.expect("one of 16 seeds fails the first version");
    println!(
        "the first version fails at seed {seed:#x} (replay with WALINK_SIM_SEED={seed:#x}): \
         expected {:?}, got {:?}, transcript {}",
        failed.expected,
        failed.replies,
        hex(&failed.transcript)
    );
    let replayed = run(
        seed,
        faults.clone(),
        &mut Host::with_rule(first_version_rule),
    );
    assert_eq!(failed, replayed, "the replay of seed {seed:#x} differs");
    let fixed = run(seed, faults, &mut Host::default());
    assert!(
        fixed.answered,
        "seed {seed:#x}: the fixed bot got {:?}",
        fixed.replies
    );
}

/// The seeds that found bugs, with the bot as it is now.
#[test]
fn regression_seeds_pass() {
    for seed in REGRESSIONS {
        let outcome = run(seed, failing_server(), &mut Host::default());
        assert!(
            outcome.answered,
            "seed {seed:#x}: expected {:?}, got {:?}",
            outcome.expected, outcome.replies
        );
    }
}
