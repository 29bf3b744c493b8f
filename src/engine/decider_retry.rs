//! The decider's side of the verifier retry policy (a child module, so it shares the
//! decider's state): failed records wait in [`RetryQueue`](super::super::retry::RetryQueue)
//! and go back into the batcher when their wait is over. While they wait they are pending
//! (no answer in the index or the store) and still marked queued, so nothing else queues
//! them twice.

use super::super::verifier::Item;
use super::Decider;
use std::time::Instant;

impl Decider {
    /// Records whose wait is over go to the back of the verifier queue (not while stopping:
    /// they stay pending in the store for a resume).
    pub(super) fn retry_due(&mut self) {
        if self.stopping.is_some() || self.retry.is_empty() {
            return;
        }
        let now = Instant::now();
        for (seq, force) in self.retry.due(now) {
            if self.index.pos(seq).is_none() {
                continue;
            }
            let item = Item {
                seq,
                text: None,
                force,
                idle: false,
            };
            self.batcher.push(item, now);
        }
    }

    /// The records of a failed batch: each waits for its next round, or, with its retries
    /// used up, stays pending for a resume. One error per failed batch says which.
    pub(super) fn retry_failed(&mut self, failed: &[i64], error: Option<String>) {
        let f = self.retry.failed(failed, Instant::now());
        for seq in &f.gave_up {
            if let Some(pos) = self.index.pos(*seq) {
                self.index.set_queued(pos, false);
            }
        }
        let Some(e) = error else { return };
        self.c.verifier_errors += 1;
        let p = self.retry.policy;
        let mut what = Vec::new();
        if f.retrying > 0 {
            what.push(format!(
                "{} asked again in {:.1} s (retry {} of {})",
                f.retrying,
                f.wait.as_secs_f64(),
                f.round,
                p.rounds
            ));
        }
        if !f.gave_up.is_empty() {
            what.push(format!(
                "{} stay pending for a resume ({} retries or {} s used up)",
                f.gave_up.len(),
                p.rounds,
                p.max_wait.as_secs()
            ));
        }
        let then = if what.is_empty() {
            String::new()
        } else {
            format!("; {}", what.join(", "))
        };
        self.error(
            "verifier",
            format!("batch of {} records failed: {e}{then}", failed.len()),
        );
    }
}
