//! Counting over a sliding window of event time.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::time::floor_to;

/// A count of events per time bucket, for "how many in the last N days".
/// Memory is one entry per non-empty bucket inside the window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowedCount {
    /// (bucket start, count), oldest first.
    buckets: VecDeque<(i64, u64)>,
}

impl WindowedCount {
    /// Adds `n` at time `t` into buckets of `bucket_ms`.
    pub fn add(&mut self, t: i64, bucket_ms: i64, n: u64) {
        let start = floor_to(t, bucket_ms);
        // Events come mostly in time order: the last bucket is the usual hit.
        match self.buckets.iter().rposition(|&(b, _)| b <= start) {
            Some(i) if self.buckets[i].0 == start => self.buckets[i].1 += n,
            Some(i) => self.buckets.insert(i + 1, (start, n)),
            None => self.buckets.push_front((start, n)),
        }
    }

    /// Total of the buckets that start at or after `since`.
    pub fn total_since(&self, since: i64) -> u64 {
        self.buckets
            .iter()
            .filter(|&&(b, _)| b >= since)
            .map(|&(_, n)| n)
            .sum()
    }

    /// Drops buckets that start before `before`; returns whether any remain.
    pub fn evict_before(&mut self, before: i64) -> bool {
        while self.buckets.front().is_some_and(|&(b, _)| b < before) {
            self.buckets.pop_front();
        }
        !self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_evicts_by_bucket() {
        let mut c = WindowedCount::default();
        c.add(250, 100, 1);
        c.add(10, 100, 2);
        c.add(260, 100, 1);
        c.add(120, 100, 5);
        assert_eq!(c.total_since(0), 9);
        assert_eq!(c.total_since(100), 7);
        assert_eq!(c.total_since(200), 2);
        assert!(c.evict_before(200));
        assert_eq!(c.total_since(0), 2);
        assert!(!c.evict_before(1000));
    }
}
