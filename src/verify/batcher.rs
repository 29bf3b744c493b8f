//! Batching for the verifier: records that need an answer wait in a queue, and a batch goes out
//! when it is full, when its oldest record has waited `wait`, or when nothing more can arrive;
//! at most two batches are out at once (one answering, one waiting in the channel). A plain
//! struct with the clock passed in, so the policy is tested without threads or a model.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the batcher needs to know of a queued item.
pub trait Queued {
    /// Bytes of text the item carries (queued text is capped; the rest is read back later).
    fn text_bytes(&self) -> usize;
}

#[derive(Debug)]
pub struct Batcher<T> {
    queue: VecDeque<T>,
    text_bytes: usize,
    oldest_since: Option<Instant>,
    /// Batches sent and not answered yet, and the items in them.
    in_flight: usize,
    in_flight_items: usize,
    pub size: usize,
    pub wait: Duration,
}

/// Batches out at once: one in the verifier, one waiting in its channel.
pub const MAX_IN_FLIGHT: usize = 2;

impl<T: Queued> Batcher<T> {
    pub fn new(size: usize, wait: Duration) -> Batcher<T> {
        Batcher {
            queue: VecDeque::new(),
            text_bytes: 0,
            oldest_since: None,
            in_flight: 0,
            in_flight_items: 0,
            size: size.max(1),
            wait,
        }
    }

    /// Queue an item at the back.
    pub fn push(&mut self, item: T, now: Instant) {
        if self.queue.is_empty() {
            self.oldest_since = Some(now);
        }
        self.text_bytes += item.text_bytes();
        self.queue.push_back(item);
    }

    /// Put a batch that could not be sent back at the front, in its order.
    pub fn unsend(&mut self, items: Vec<T>, now: Instant) {
        for item in items.into_iter().rev() {
            self.text_bytes += item.text_bytes();
            self.queue.push_front(item);
        }
        self.oldest_since.get_or_insert(now);
    }

    /// Whether a batch should go now: a slot is free and the queue is full enough, has
    /// waited long enough, or will get nothing more (`inputs_done`).
    pub fn ready(&self, now: Instant, inputs_done: bool) -> bool {
        if self.in_flight >= MAX_IN_FLIGHT || self.queue.is_empty() {
            return false;
        }
        let waited = self
            .oldest_since
            .is_some_and(|s| now.duration_since(s) >= self.wait);
        self.queue.len() >= self.size || waited || inputs_done
    }

    /// Take up to `size` items from the front, keeping only those `still` wants (the
    /// others, dropped, are handed to `dropped`). The wait restarts for what is left.
    pub fn take(
        &mut self,
        now: Instant,
        mut still: impl FnMut(&T) -> bool,
        mut dropped: impl FnMut(T),
    ) -> Vec<T> {
        let mut items = Vec::with_capacity(self.size);
        while items.len() < self.size {
            let Some(item) = self.queue.pop_front() else {
                break;
            };
            self.text_bytes = self.text_bytes.saturating_sub(item.text_bytes());
            if still(&item) {
                items.push(item);
            } else {
                dropped(item);
            }
        }
        self.oldest_since = (!self.queue.is_empty()).then_some(now);
        items
    }

    /// A batch of `n` items went to the verifier.
    pub fn sent(&mut self, n: usize) {
        self.in_flight += 1;
        self.in_flight_items += n;
    }

    /// A batch came back with answers or failures for `n` items.
    pub fn answered(&mut self, n: usize) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.in_flight_items = self.in_flight_items.saturating_sub(n);
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Batches out now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Items queued or out: what the dashboard shows as the verifier's queue.
    pub fn waiting(&self) -> usize {
        self.queue.len() + self.in_flight_items
    }

    pub fn text_bytes(&self) -> usize {
        self.text_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct It(u32, usize);
    impl Queued for It {
        fn text_bytes(&self) -> usize {
            self.1
        }
    }

    #[test]
    fn a_batch_goes_when_full_when_waited_or_when_nothing_more_comes() {
        let t0 = Instant::now();
        let mut b = Batcher::new(3, Duration::from_millis(200));
        b.push(It(1, 10), t0);
        b.push(It(2, 10), t0);
        assert!(!b.ready(t0, false), "two of three, no wait yet");
        assert!(b.ready(t0 + Duration::from_millis(200), false), "waited");
        assert!(b.ready(t0, true), "inputs done");
        b.push(It(3, 10), t0);
        assert!(b.ready(t0, false), "full");
        assert_eq!(b.text_bytes(), 30);
        let batch = b.take(t0, |_| true, |_| {});
        assert_eq!(batch, vec![It(1, 10), It(2, 10), It(3, 10)]);
        assert_eq!(b.text_bytes(), 0);
        b.sent(3);
        assert_eq!(b.waiting(), 3);
        b.answered(3);
        assert_eq!((b.in_flight(), b.waiting()), (0, 0));
    }

    #[test]
    fn two_batches_out_at_most_and_unsent_items_keep_their_place() {
        let t0 = Instant::now();
        let mut b = Batcher::new(1, Duration::ZERO);
        for i in 0..4 {
            b.push(It(i, 1), t0);
        }
        let first = b.take(t0, |_| true, |_| {});
        b.sent(first.len());
        let second = b.take(t0, |_| true, |_| {});
        b.sent(second.len());
        assert!(!b.ready(t0, true), "two batches out");
        // A batch the channel refused goes back in front.
        let third = b.take(t0, |_| true, |_| {});
        b.unsend(third, t0);
        assert_eq!(b.len(), 2);
        b.answered(1);
        let next = b.take(t0, |_| true, |_| {});
        assert_eq!(next, vec![It(2, 1)]);
    }

    #[test]
    fn items_no_longer_needing_an_answer_are_dropped_not_sent() {
        let t0 = Instant::now();
        let mut b = Batcher::new(4, Duration::ZERO);
        for i in 0..4 {
            b.push(It(i, 1), t0);
        }
        let mut gone = Vec::new();
        let batch = b.take(t0, |it| it.0 % 2 == 0, |it| gone.push(it.0));
        assert_eq!(batch, vec![It(0, 1), It(2, 1)]);
        assert_eq!(gone, vec![1, 3]);
        assert!(b.is_empty());
    }
}
