//! WhatsApp Web's reconnect schedule (transport.md §6.8): Fibonacci steps from 1 s (1, 1, 2, 3,
//! 5, 8 … s) capped at 900 s, each with ±10 % uniform jitter; a connection that stayed up 30 s
//! resets it, and a 429 adds five steps (oxidezap/whatsapp-rust:src/client.rs
//! `fibonacci_backoff`, src/client/lifecycle.rs).

use super::Timestamp;
use super::config::Config;
use super::rng::Rng;

/// The `step`-th delay (1-based) of the Fibonacci schedule starting at `first`, capped at `max`,
/// without jitter.
pub(crate) fn fibonacci_delay(first: u64, max: u64, step: u32) -> u64 {
    let (mut current, mut next) = (first, first);
    for _ in 1..step {
        if current >= max {
            break;
        }
        (current, next) = (next, current.saturating_add(next));
    }
    current.min(max)
}

/// `delay` with uniform jitter of ± `permille`/1000 of it.
pub(crate) fn jittered(delay: u64, permille: u32, rng: &mut Rng) -> u64 {
    let spread = delay.saturating_mul(u64::from(permille.min(1000))) / 1000;
    delay
        .saturating_sub(spread)
        .saturating_add(rng.below(spread.saturating_mul(2).saturating_add(1)))
}

/// Consecutive failed attempts and when the current connection came up.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    steps: u32,
    up_since: Option<Timestamp>,
}

impl Backoff {
    /// The connection logged in at `now`.
    pub(crate) fn connected(&mut self, now: Timestamp) {
        self.up_since = Some(now);
    }

    /// The connection ended at `now`: a connection that stayed up long enough resets the
    /// schedule.
    pub(crate) fn disconnected(&mut self, now: Timestamp, config: &Config) {
        if let Some(since) = self.up_since.take()
            && now.saturating_sub(since) >= config.backoff_reset_after_ms
        {
            self.steps = 0;
        }
    }

    /// Forgets every failure (a deliberate connect).
    pub(crate) fn reset(&mut self) {
        self.steps = 0;
        self.up_since = None;
    }

    /// Schedules the next attempt, `extra_steps` further along the schedule: returns the
    /// attempt number (1 for the first retry) and the delay.
    pub(crate) fn next(&mut self, extra_steps: u32, config: &Config, rng: &mut Rng) -> (u32, u64) {
        self.steps = self.steps.saturating_add(1).saturating_add(extra_steps);
        let base = fibonacci_delay(config.backoff_first_ms, config.backoff_max_ms, self.steps);
        let delay = jittered(base, config.backoff_jitter_permille, rng);
        (
            self.steps,
            delay.min(config.backoff_max_ms.saturating_add(base / 10)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::payload::{ClientProfile, WebVersion};

    fn config() -> Config {
        Config::new(ClientProfile::new(WebVersion::new(2, 3000, 1), "walink"))
    }

    #[test]
    fn the_schedule_is_fibonacci_capped_at_900_s() {
        let steps: Vec<u64> = (1..=12)
            .map(|step| fibonacci_delay(1000, 900_000, step) / 1000)
            .collect();
        assert_eq!(steps, [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144]);
        assert_eq!(fibonacci_delay(1000, 900_000, 16), 900_000);
        assert_eq!(fibonacci_delay(1000, 900_000, u32::MAX), 900_000);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let mut rng = Rng::from_seed([5; 32]);
        let samples: Vec<u64> = (0..200).map(|_| jittered(10_000, 100, &mut rng)).collect();
        assert!(samples.iter().all(|&d| (9_000..=11_000).contains(&d)));
        assert!(samples.iter().any(|&d| d < 9_500));
        assert!(samples.iter().any(|&d| d > 10_500));
    }

    #[test]
    fn attempts_grow_reset_after_a_stable_connection_and_skip_on_429() {
        let config = config();
        let mut rng = Rng::from_seed([6; 32]);
        let mut backoff = Backoff::default();
        let delays: Vec<(u32, u64)> = (0..4).map(|_| backoff.next(0, &config, &mut rng)).collect();
        assert_eq!(delays.iter().map(|d| d.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert!((2_700..=3_300).contains(&delays[3].1));
        // A short-lived connection does not reset the schedule.
        backoff.connected(1_000);
        backoff.disconnected(20_000, &config);
        assert_eq!(backoff.next(0, &config, &mut rng).0, 5);
        // One that stayed up 30 s does.
        backoff.connected(100_000);
        backoff.disconnected(130_000, &config);
        assert_eq!(backoff.next(0, &config, &mut rng).0, 1);
        // 429: five extra steps.
        let (attempt, delay) = backoff.next(5, &config, &mut rng);
        assert_eq!(attempt, 7);
        assert!((11_700..=14_300).contains(&delay));
    }
}
