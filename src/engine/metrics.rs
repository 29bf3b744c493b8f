//! The engine's counters and rates: what the stats events, the progress line and the store's
//! metrics log report. Plain data and arithmetic, kept out of the decider's message loop.

use super::types::StatsSnapshot;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// LLM records/s is measured over this window: the model answers in bursts (a batch every few
/// seconds on a CPU), and a per-tick rate would swing between zero and hundreds.
pub const LLM_RATE_WINDOW: Duration = Duration::from_secs(10);

/// Running totals of this session.
#[derive(Debug, Default)]
pub struct Counters {
    pub records_session: u64,
    pub errors: u64,
    pub llm_calls: u64,
    pub llm_records: u64,
    pub cache_hits: u64,
    pub verifier_errors: u64,
    pub batches: u64,
    pub fill_sum: f64,
    pub last_fill: f64,
    pub last_latency_ms: f64,
    pub verifier_ms: f64,
}

impl Counters {
    /// One verifier batch answered: its fill (records / batch size) and latency.
    pub fn batch(&mut self, fill: f64, latency_ms: f64) {
        self.batches += 1;
        self.fill_sum += fill;
        self.last_fill = fill;
        self.last_latency_ms = latency_ms;
        self.verifier_ms += latency_ms;
    }

    pub fn mean_fill(&self) -> f64 {
        if self.batches > 0 {
            self.fill_sum / self.batches as f64
        } else {
            0.0
        }
    }
}

/// Records/s and MB/s since the last tick.
#[derive(Debug)]
pub struct Rates {
    at: Instant,
    records: u64,
    bytes: u64,
}

impl Rates {
    pub fn new(at: Instant) -> Rates {
        Rates {
            at,
            records: 0,
            bytes: 0,
        }
    }

    /// (records/s, MB/s) from the last [`Rates::mark`] to `now`.
    pub fn per_sec(&self, now: Instant, records: u64, bytes: u64) -> (f64, f64) {
        let dt = now.duration_since(self.at).as_secs_f64().max(1e-3);
        (
            records.saturating_sub(self.records) as f64 / dt,
            bytes.saturating_sub(self.bytes) as f64 / dt / 1e6,
        )
    }

    pub fn mark(&mut self, now: Instant, records: u64, bytes: u64) {
        *self = Rates {
            at: now,
            records,
            bytes,
        };
    }
}

/// Records the model answered, sampled at each tick over [`LLM_RATE_WINDOW`].
#[derive(Debug, Default)]
pub struct LlmWindow {
    samples: VecDeque<(Instant, u64)>,
}

impl LlmWindow {
    pub fn push(&mut self, now: Instant, answered: u64) {
        self.samples.push_back((now, answered));
        while self
            .samples
            .front()
            .is_some_and(|&(at, _)| now.duration_since(at) > LLM_RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Records answered per second over the window.
    pub fn rate(&self, now: Instant, answered: u64) -> f64 {
        match self.samples.front() {
            Some(&(at, then)) => {
                answered.saturating_sub(then) as f64
                    / now.duration_since(at).as_secs_f64().max(1e-3)
            }
            None => 0.0,
        }
    }
}

/// One line of the store's metrics log (written once a second, exported as metrics.jsonl).
pub fn metrics_line(s: &StatsSnapshot, c: &Counters) -> String {
    serde_json::json!({
        "elapsed_s": s.elapsed.as_secs_f64(),
        "records": s.records_read,
        "records_per_sec": s.records_per_sec,
        "mb_per_sec": s.mb_per_sec,
        "batch_fill": s.batch_fill,
        "batch_fill_mean": c.mean_fill(),
        "batch_latency_ms": s.batch_latency_ms,
        "verifier_ms_total": c.verifier_ms,
        "llm_calls": s.llm_calls,
        "cache_hits": s.cache_hits,
        "verifier_queue": s.verifier_queue,
        "verifier_errors": s.verifier_errors,
        "verifier_retrying": s.verifier_retrying,
        "verifier_failed_rounds": s.verifier_failed_rounds,
        "verifier_gave_up": s.verifier_gave_up,
        "rss_bytes": s.rss_bytes,
        "errors": s.errors,
        "groups": s.groups,
        "duplicates": s.duplicates,
        "verifier_saved": s.verifier_saved,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_llm_rate_spans_the_window_not_one_tick() {
        let t0 = Instant::now();
        let mut w = LlmWindow::default();
        w.push(t0, 0);
        // A burst of 40 answers arrives between ticks; the rate averages it over the window.
        w.push(t0 + Duration::from_secs(4), 40);
        let r = w.rate(t0 + Duration::from_secs(4), 40);
        assert!((r - 10.0).abs() < 1e-6, "{r}");
        // Samples older than the window fall out.
        w.push(t0 + Duration::from_secs(15), 40);
        assert_eq!(w.rate(t0 + Duration::from_secs(15), 40), 0.0);
    }

    #[test]
    fn batches_update_fill_and_latency() {
        let mut c = Counters::default();
        c.batch(1.0, 100.0);
        c.batch(0.5, 50.0);
        assert_eq!(c.mean_fill(), 0.75);
        assert_eq!(
            (c.last_fill, c.last_latency_ms, c.verifier_ms),
            (0.5, 50.0, 150.0)
        );
        let mut r = Rates::new(Instant::now());
        let later = Instant::now() + Duration::from_secs(2);
        let (rps, _) = r.per_sec(later, 100, 0);
        assert!((rps - 50.0).abs() < 1.0, "{rps}");
        r.mark(later, 100, 0);
        assert_eq!(r.per_sec(later + Duration::from_secs(1), 100, 0).0, 0.0);
    }
}
