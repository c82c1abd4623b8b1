//! The same record delivered twice is counted once: events whose `eventID`
//! was already seen within a window of event time are dropped.
//!
//! Memory is bounded by the number of events in the window: 16 bytes per
//! event (a 64-bit hash of the id and its time) plus the hash map's
//! overhead.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::NormalizedEvent;

/// Remembers recent event ids. Serializes, for checkpoints.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Deduplicator {
    window_ms: i64,
    newest_ms: i64,
    /// Id hash → event time of its first sighting.
    seen: HashMap<u64, i64>,
    /// Ids in arrival order, for eviction.
    arrivals: VecDeque<(i64, u64)>,
}

fn id_hash(id: &str) -> u64 {
    // SipHash with fixed keys: the same ids hash the same in every run.
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

impl Deduplicator {
    /// A deduplicator that remembers ids for `window_ms` of event time
    /// behind the newest event.
    pub fn new(window_ms: i64) -> Self {
        Deduplicator {
            window_ms,
            newest_ms: i64::MIN,
            seen: HashMap::new(),
            arrivals: VecDeque::new(),
        }
    }

    /// `true` if `event` repeats an id seen within the window (drop it).
    /// Events without an id are never duplicates.
    pub fn is_duplicate(&mut self, event: &NormalizedEvent) -> bool {
        let Some(id) = event.event_id.as_deref() else {
            return false;
        };
        let t = event.timestamp_ms;
        self.newest_ms = self.newest_ms.max(t);
        let horizon = self.newest_ms.saturating_sub(self.window_ms);
        while let Some(&(time, hash)) = self.arrivals.front() {
            if time >= horizon {
                break;
            }
            self.arrivals.pop_front();
            if self.seen.get(&hash) == Some(&time) {
                self.seen.remove(&hash);
            }
        }
        let hash = id_hash(id);
        if self.seen.contains_key(&hash) {
            return true;
        }
        self.seen.insert(hash, t);
        self.arrivals.push_back((t, hash));
        false
    }

    /// Ids currently remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: Option<&str>, t: i64) -> NormalizedEvent {
        NormalizedEvent {
            event_id: id.map(Into::into),
            ..NormalizedEvent::at(t)
        }
    }

    #[test]
    fn repeats_within_the_window_are_dropped_and_memory_is_bounded() {
        let mut d = Deduplicator::new(1000);
        assert!(!d.is_duplicate(&event(Some("a"), 0)));
        assert!(d.is_duplicate(&event(Some("a"), 0)));
        assert!(!d.is_duplicate(&event(None, 0)));
        assert!(!d.is_duplicate(&event(None, 0)), "no id, no duplicate");
        assert!(!d.is_duplicate(&event(Some("b"), 900)));
        assert!(
            d.is_duplicate(&event(Some("a"), 950)),
            "still within the window"
        );
        for i in 0..10_000 {
            d.is_duplicate(&event(Some(&format!("x{i}")), 2000 + i));
        }
        assert!(d.len() <= 1002, "{}", d.len());
        assert!(
            !d.is_duplicate(&event(Some("a"), 20_000)),
            "forgotten after the window"
        );
    }
}
