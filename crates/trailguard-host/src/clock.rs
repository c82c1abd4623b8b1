//! Event time: the watermark that tells rules how far time has advanced.
//!
//! Deliveries are not sorted, so the host cannot trust the newest event it
//! has seen. It assumes events arrive at most `allowed_lateness` after newer
//! ones: the watermark is the newest event time seen minus that lateness,
//! and a rule's evaluation at time T runs once the watermark passes T.
//! An event older than the watermark already announced is *late*: it is
//! still given to the rules (it counts for later windows) but evaluations
//! that already ran are not repeated, and it is counted.

/// The event-time watermark. Serializes, for checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Watermark {
    allowed_lateness_ms: i64,
    newest_ms: Option<i64>,
    announced_ms: Option<i64>,
}

impl Watermark {
    /// A watermark that trails the newest event by `allowed_lateness_ms`.
    pub fn new(allowed_lateness_ms: i64) -> Self {
        Watermark {
            allowed_lateness_ms,
            newest_ms: None,
            announced_ms: None,
        }
    }

    /// Notes an event; returns `true` if it is late (older than the
    /// watermark already announced).
    pub fn observe(&mut self, timestamp_ms: i64) -> bool {
        self.newest_ms = Some(self.newest_ms.map_or(timestamp_ms, |n| n.max(timestamp_ms)));
        self.announced_ms.is_some_and(|w| timestamp_ms < w)
    }

    /// Event time has reached `timestamp_ms` elsewhere (a producer's
    /// progress, for a source that has no events of its own for a while):
    /// moves the newest time like an event would, without an event.
    pub fn note_progress(&mut self, timestamp_ms: i64) {
        self.newest_ms = Some(self.newest_ms.map_or(timestamp_ms, |n| n.max(timestamp_ms)));
    }

    /// The watermark to announce if it moved since the last announcement.
    pub fn advance(&mut self) -> Option<i64> {
        let current = self.newest_ms?.saturating_sub(self.allowed_lateness_ms);
        if self.announced_ms.is_some_and(|w| w >= current) {
            return None;
        }
        self.announced_ms = Some(current);
        Some(current)
    }

    /// The watermark last announced.
    pub fn announced_ms(&self) -> Option<i64> {
        self.announced_ms
    }

    /// The newest event time seen.
    pub fn newest_ms(&self) -> Option<i64> {
        self.newest_ms
    }
}

#[cfg(test)]
mod tests {
    use super::Watermark;

    #[test]
    fn trails_the_newest_event_and_flags_late_ones() {
        let mut w = Watermark::new(900_000);
        assert_eq!(w.advance(), None, "nothing seen yet");
        assert!(!w.observe(10_000_000));
        assert_eq!(w.advance(), Some(9_100_000));
        assert_eq!(w.advance(), None, "unchanged");
        assert!(
            !w.observe(9_500_000),
            "older than newest but within lateness"
        );
        assert_eq!(w.advance(), None, "an older event does not move it");
        assert!(w.observe(9_000_000), "older than the announced watermark");
        assert!(!w.observe(20_000_000));
        assert_eq!(w.advance(), Some(19_100_000));
    }
}
