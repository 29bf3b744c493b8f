//! The verifier's in-run retry policy. A batch that fails (a transport error, a timeout, a bad
//! answer: garbage, another model, no log-probs) leaves its records pending; they wait here
//! with exponential backoff plus jitter and are asked again in a later batch, up to
//! `rounds` retries or `max_wait` since their first failure. A record whose retries are used
//! up stays pending in the store for a resume, as without a policy. Plain data with the clock
//! passed in, so the policy is tested without threads or a server; the queue holds seqs, not
//! texts (the verifier reads a retried text back from the store), so thousands waiting cost
//! a few dozen bytes each.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// How often and how long failed records are asked again within one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first failed ask (0: a failed record waits for a resume).
    pub rounds: u32,
    /// The wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// No single wait is longer than this.
    pub max_backoff: Duration,
    /// A record is given up once the next wait would end this long after its first failure.
    pub max_wait: Duration,
}

pub const DEFAULT_ROUNDS: u32 = 5;
pub const DEFAULT_BACKOFF_MS: u64 = 500;
pub const DEFAULT_MAX_WAIT_MS: u64 = 300_000;
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            rounds: DEFAULT_ROUNDS,
            backoff: Duration::from_millis(DEFAULT_BACKOFF_MS),
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_wait: Duration::from_millis(DEFAULT_MAX_WAIT_MS),
        }
    }
}

impl RetryPolicy {
    /// No retries within the run.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            rounds: 0,
            ..RetryPolicy::default()
        }
    }

    /// The longest wait before retry `round` (1 = the first): `backoff · 2^(round-1)`, capped.
    pub fn delay(&self, round: u32) -> Duration {
        let factor = 1u32 << round.saturating_sub(1).min(20);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// What became of the records of one failed batch.
#[derive(Debug, Default, PartialEq)]
pub struct Failed {
    /// Asked again after this wait (the longest of the batch's records), and how many.
    pub retrying: usize,
    pub wait: Duration,
    /// The highest retry round the batch's records go to.
    pub round: u32,
    /// Seqs whose retries are used up: pending for a resume.
    pub gave_up: Vec<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Tries {
    failures: u32,
    first: Instant,
}

/// Records waiting for a retry, and the failures of those asked again.
#[derive(Debug)]
pub struct RetryQueue {
    pub policy: RetryPolicy,
    /// (due, seq), soonest first.
    waiting: BinaryHeap<Reverse<(Instant, i64)>>,
    /// Records that failed and are not answered or given up yet.
    tries: HashMap<i64, Tries>,
    /// Re-verifications (cached answers ignored) sent and not answered: retried as such.
    forced: HashSet<i64>,
    rng: crate::rng::Rng,
    /// Failed asks of records (one per record per failed batch), this session.
    pub failed_rounds: u64,
    /// Records given up after their last retry, this session.
    pub gave_up: u64,
}

impl RetryQueue {
    pub fn new(policy: RetryPolicy) -> RetryQueue {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        RetryQueue {
            policy,
            waiting: BinaryHeap::new(),
            tries: HashMap::new(),
            forced: HashSet::new(),
            rng: crate::rng::Rng::new(seed),
            failed_rounds: 0,
            gave_up: 0,
        }
    }

    /// The records of one failed batch: each waits for its next round or is given up. One
    /// jitter draw per batch (the wait is `delay · [0.5, 1)`), so records that failed
    /// together come back together and make one batch again.
    pub fn failed(&mut self, seqs: &[i64], now: Instant) -> Failed {
        let jitter = 0.5 + 0.5 * self.rng.unit();
        let mut out = Failed::default();
        for &seq in seqs {
            self.failed_rounds += 1;
            let t = self.tries.entry(seq).or_insert(Tries {
                failures: 0,
                first: now,
            });
            t.failures += 1;
            let round = t.failures;
            let wait = self.policy.delay(round).mul_f64(jitter);
            let ends = now.duration_since(t.first) + wait;
            if round > self.policy.rounds || ends > self.policy.max_wait {
                self.tries.remove(&seq);
                self.forced.remove(&seq);
                self.gave_up += 1;
                out.gave_up.push(seq);
                continue;
            }
            self.waiting.push(Reverse((now + wait, seq)));
            out.retrying += 1;
            out.wait = out.wait.max(wait);
            out.round = out.round.max(round);
        }
        out
    }

    /// The records whose wait is over, soonest first, and whether each is a re-verification
    /// (ask the model, not the caches): queue them for the verifier.
    pub fn due(&mut self, now: Instant) -> Vec<(i64, bool)> {
        let mut out = Vec::new();
        while let Some(Reverse((at, seq))) = self.waiting.peek().copied() {
            if at > now {
                break;
            }
            self.waiting.pop();
            out.push((seq, self.forced.contains(&seq)));
        }
        out
    }

    /// A re-verification of `seq` went to the verifier: if it fails, its retry is one too.
    pub fn sent_forced(&mut self, seq: i64) {
        self.forced.insert(seq);
    }

    /// A record was answered (or no longer needs the verifier): its failures are forgotten.
    pub fn done(&mut self, seq: i64) {
        if !self.tries.is_empty() {
            self.tries.remove(&seq);
        }
        if !self.forced.is_empty() {
            self.forced.remove(&seq);
        }
    }

    /// Records waiting for their next round.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// When the next record is due, if one waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting.peek().map(|Reverse((at, _))| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rounds: u32, backoff_ms: u64, max_wait_ms: u64) -> RetryPolicy {
        RetryPolicy {
            rounds,
            backoff: Duration::from_millis(backoff_ms),
            max_backoff: Duration::from_millis(4 * backoff_ms),
            max_wait: Duration::from_millis(max_wait_ms),
        }
    }

    #[test]
    fn the_wait_doubles_per_round_up_to_the_cap() {
        let p = policy(9, 100, 60_000);
        let d: Vec<u128> = (1..=5).map(|r| p.delay(r).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 400, 400]);
        assert_eq!(RetryPolicy::default().delay(40), Duration::from_secs(30));
    }

    #[test]
    fn a_record_is_retried_for_its_rounds_then_given_up() {
        let mut q = RetryQueue::new(policy(3, 100, 60_000));
        let mut now = Instant::now();
        for round in 1..=3 {
            let f = q.failed(&[7, 8], now);
            assert_eq!((f.retrying, f.round), (2, round), "{f:?}");
            assert!(f.gave_up.is_empty());
            // Jitter: between half the nominal wait and all of it, the same for both.
            let nominal = q.policy.delay(round);
            assert!(f.wait >= nominal / 2 && f.wait < nominal, "{f:?}");
            assert!(q
                .due(now + f.wait / 2 - Duration::from_millis(1))
                .is_empty());
            now += f.wait;
            let mut due = q.due(now);
            due.sort();
            assert_eq!(due, [(7, false), (8, false)]);
            assert!(q.is_empty());
        }
        let f = q.failed(&[7, 8], now);
        assert_eq!(f.gave_up, [7, 8]);
        assert_eq!((q.failed_rounds, q.gave_up), (8, 2));
        // Given up means forgotten: a later failure (a resume's re-verify) starts over.
        assert_eq!(q.failed(&[7], now).round, 1);
    }

    #[test]
    fn an_answer_resets_the_count_and_the_total_wait_gives_up_early() {
        let mut q = RetryQueue::new(policy(2, 100, 60_000));
        let now = Instant::now();
        q.failed(&[1], now);
        q.due(now + Duration::from_secs(1));
        q.done(1);
        assert_eq!(q.failed(&[1], now).round, 1, "answered: a fresh record");

        // 10 rounds allowed but only 100 ms in all: the first wait (50-100 ms) fits, the
        // second (100-200 ms, asked 100 ms after the first failure) would end past it.
        let mut q = RetryQueue::new(policy(10, 100, 100));
        let t0 = Instant::now();
        assert_eq!(q.failed(&[5], t0).retrying, 1);
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(q.due(t1), [(5, false)]);
        assert_eq!(q.failed(&[5], t1).gave_up, [5]);
        assert_eq!(q.gave_up, 1);
    }

    #[test]
    fn a_failed_re_verification_is_retried_as_one_until_answered() {
        let mut q = RetryQueue::new(policy(3, 10, 60_000));
        let now = Instant::now();
        q.sent_forced(4);
        let f = q.failed(&[4, 9], now);
        assert_eq!(q.due(now + f.wait), [(4, true), (9, false)]);
        q.done(4);
        q.failed(&[4], now);
        assert_eq!(q.due(now + Duration::from_secs(1)), [(4, false)]);
    }

    #[test]
    fn no_rounds_gives_up_at_once() {
        let mut q = RetryQueue::new(RetryPolicy::none());
        let f = q.failed(&[1, 2, 3], Instant::now());
        assert_eq!((f.retrying, f.gave_up.len()), (0, 3));
        assert!(q.is_empty());
    }

    #[test]
    fn jitter_spreads_waits_over_half_to_all_of_the_nominal() {
        let mut q = RetryQueue::new(policy(1, 1000, 60_000));
        let now = Instant::now();
        let waits: Vec<Duration> = (0..200)
            .map(|i| {
                let w = q.failed(&[i], now).wait;
                assert!(w >= Duration::from_millis(500) && w < Duration::from_millis(1000));
                w
            })
            .collect();
        let lo = waits
            .iter()
            .filter(|w| **w < Duration::from_millis(750))
            .count();
        assert!((60..=140).contains(&lo), "{lo} of 200 in the lower half");
    }
}
