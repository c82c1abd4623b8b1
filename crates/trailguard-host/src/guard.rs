//! Event time defended: one record dated far ahead must not move the
//! watermark past every real event (`docs/event-time.md`, "Defended event
//! time").
//!
//! The [`TimeGuard`] sees every event before deduplication and batching:
//!
//! - An event dated more than `max_future_ms` after the wall clock is
//!   refused: CloudTrail records calls already made.
//! - An event more than `max_jump_ms` ahead of the newest event accepted is
//!   a *suspect*: it is held, not processed, until the stream decides.
//!   Every event accepted after a held one arrived counts against it.
//! - Once `confirmations` held events have nothing against them (no event
//!   came back to the old time since they arrived), the stream really
//!   moved (a gap in the logs, or a quiet account): the newest time becomes
//!   their median, and every held event it reaches is released, in the
//!   order they came. The median, so a few outliers among them cannot set
//!   it.
//! - A held event is refused once `confirmations` events count against it
//!   (the stream went on without it), or when the hold is full (oldest
//!   first).
//! - Until an event is accepted every event is held, so the first records
//!   cannot set the stream's time on their own either.
//! - At the end of input, a held event is refused if anything counts
//!   against it, and released otherwise: nothing came after it, so there is
//!   no event left for it to make late.
//!
//! The guard is deterministic (no clock but the wall-clock check) and its
//! state, held events included, is saved with the engine's.

use serde::{Deserialize, Serialize};
use trailguard_ingest::{NormalizedEvent, RecordPaths, RejectReason, WallClock};
use trailguard_rule_sdk::format_timestamp_ms;

/// How the [`TimeGuard`] judges event times. Start from
/// [`TimeGuardOptions::default`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeGuardOptions {
    /// Refuse events dated more than this after the wall clock (`None`: no
    /// check). Default 15 minutes.
    pub max_future_ms: Option<i64>,
    /// The wall clock.
    pub clock: WallClock,
    /// Hold events more than this ahead of the newest event accepted
    /// (`None`: no check). Default 24 hours.
    pub max_jump_ms: Option<i64>,
    /// Held events that, with nothing against them, move the stream's
    /// time; events against a held one that refuse it. The hold keeps at
    /// most twice as many. Default 64.
    pub confirmations: usize,
}

impl Default for TimeGuardOptions {
    fn default() -> Self {
        TimeGuardOptions {
            max_future_ms: Some(15 * 60_000),
            clock: WallClock::System,
            max_jump_ms: Some(24 * 3_600_000),
            confirmations: 64,
        }
    }
}

/// An event the guard refused, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The event.
    pub event: NormalizedEvent,
    /// Where it came from, as the caller named it (an input file; empty if
    /// unnamed).
    pub origin: String,
    /// Why: [`RejectReason::FutureEventTime`] or
    /// [`RejectReason::AheadOfStream`].
    pub reason: RejectReason,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.origin.is_empty() {
            write!(f, "{}, ", self.origin)?;
        }
        write!(
            f,
            "eventID {}: {}",
            self.event.event_id.as_deref().unwrap_or("(none)"),
            self.reason
        )
    }
}

/// What the guard counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeGuardCounts {
    /// Events refused for being dated past the wall clock.
    pub future: u64,
    /// Events refused for being far ahead of the stream.
    pub ahead_of_stream: u64,
    /// Times held events moved the stream's time ahead (gaps in the logs;
    /// not its start).
    pub jumps: u64,
    /// Events held now.
    pub held: u64,
}

/// A held event.
#[derive(Clone, Debug)]
struct Held {
    event: NormalizedEvent,
    origin: String,
    /// Its place among the events offered.
    seq: u64,
    /// Events accepted that came after it.
    against: u64,
}

/// A held event as saved: the event as ECS JSON
/// ([`NormalizedEvent::to_ecs`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SavedHeld {
    ecs: String,
    origin: String,
    seq: u64,
    against: u64,
}

/// The part of a [`TimeGuard`] that a checkpoint keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeGuardState {
    newest_ms: Option<i64>,
    offered: u64,
    held: Vec<SavedHeld>,
    counts: TimeGuardCounts,
}

/// Refusals kept for the caller to take; all are counted.
const KEEP_REFUSED: usize = 1000;

/// Judges each event's time before it reaches the rules (see the module
/// documentation).
#[derive(Clone, Debug)]
pub struct TimeGuard {
    options: TimeGuardOptions,
    /// No event up to this time is in the future (the clock only moves on:
    /// it is read again only for an event later than that).
    future_bound: i64,
    newest_ms: Option<i64>,
    /// Events offered so far (past the wall-clock check).
    offered: u64,
    /// In arrival order.
    held: Vec<Held>,
    released: Vec<NormalizedEvent>,
    refused: Vec<Refused>,
    counts: TimeGuardCounts,
}

impl TimeGuard {
    /// A guard that has seen nothing.
    pub fn new(options: TimeGuardOptions) -> TimeGuard {
        TimeGuard {
            options: TimeGuardOptions {
                confirmations: options.confirmations.max(1),
                ..options
            },
            future_bound: i64::MIN,
            newest_ms: None,
            offered: 0,
            held: Vec::new(),
            released: Vec::new(),
            refused: Vec::new(),
            counts: TimeGuardCounts::default(),
        }
    }

    /// Judges one event: returns it if it goes on now; otherwise it is held
    /// or refused. `origin` names where it came from, asked only if it is
    /// held or refused. Events it releases are in
    /// [`TimeGuard::take_released`].
    pub fn offer(
        &mut self,
        event: NormalizedEvent,
        origin: &dyn Fn() -> String,
    ) -> Option<NormalizedEvent> {
        let t = event.timestamp_ms;
        if let Some(limit_ms) = self.options.max_future_ms
            && self.in_future(t, limit_ms)
        {
            self.counts.future += 1;
            let reason = RejectReason::FutureEventTime {
                time: format_timestamp_ms(t),
                limit_ms,
            };
            self.refuse(event, origin(), reason);
            return None;
        }
        let Some(jump) = self.options.max_jump_ms else {
            return Some(event);
        };
        let seq = self.offered;
        self.offered += 1;
        if self.newest_ms.is_some_and(|n| t <= n.saturating_add(jump)) {
            self.accept(t, seq);
            self.expire();
            return Some(event);
        }
        self.held.push(Held {
            event,
            origin: origin(),
            seq,
            against: 0,
        });
        self.confirm();
        if self.held.len() > 2 * self.options.confirmations {
            let oldest = self.held.remove(0);
            self.refuse_held(oldest);
        }
        None
    }

    /// Event time has reached `timestamp_ms` elsewhere: held events it
    /// reaches are released.
    pub fn note_progress(&mut self, timestamp_ms: i64) {
        if self.options.max_jump_ms.is_some() {
            self.newest_ms = Some(self.newest_ms.map_or(timestamp_ms, |n| n.max(timestamp_ms)));
            self.release_reached();
        }
    }

    /// The input has ended: each held event is refused if an event was
    /// accepted after it came, else released.
    pub fn finish(&mut self) {
        for held in std::mem::take(&mut self.held) {
            if held.against > 0 {
                self.refuse_held(held);
            } else {
                self.released.push(held.event);
            }
        }
    }

    /// Events released since last asked, in the order they came.
    pub fn take_released(&mut self) -> Vec<NormalizedEvent> {
        std::mem::take(&mut self.released)
    }

    /// Events refused since last asked (at most the first 1,000 of them;
    /// all are counted).
    pub fn take_refused(&mut self) -> Vec<Refused> {
        std::mem::take(&mut self.refused)
    }

    /// What the guard counted.
    pub fn counts(&self) -> TimeGuardCounts {
        TimeGuardCounts {
            held: self.held.len() as u64,
            ..self.counts
        }
    }

    /// The state to save (released and refused events must have been
    /// taken).
    pub fn save(&self) -> TimeGuardState {
        TimeGuardState {
            newest_ms: self.newest_ms,
            offered: self.offered,
            held: self
                .held
                .iter()
                .map(|h| SavedHeld {
                    ecs: h.event.to_ecs().to_string(),
                    origin: h.origin.clone(),
                    seq: h.seq,
                    against: h.against,
                })
                .collect(),
            counts: self.counts,
        }
    }

    /// Resumes from a saved state; held events carry the values of `paths`.
    pub fn load(&mut self, state: TimeGuardState, paths: &RecordPaths) -> Result<(), String> {
        let mut held = Vec::with_capacity(state.held.len());
        for saved in state.held {
            let event = NormalizedEvent::from_ecs_json(saved.ecs.as_bytes(), paths)
                .map_err(|e| format!("a held event does not read back: {e}"))?;
            held.push(Held {
                event,
                origin: saved.origin,
                seq: saved.seq,
                against: saved.against,
            });
        }
        self.newest_ms = state.newest_ms;
        self.offered = state.offered;
        self.held = held;
        self.counts = state.counts;
        self.released.clear();
        self.refused.clear();
        Ok(())
    }

    /// Whether `t` is more than `limit_ms` after the clock (read only for a
    /// time past the last bound).
    fn in_future(&mut self, t: i64, limit_ms: i64) -> bool {
        if t <= self.future_bound {
            return false;
        }
        self.future_bound = self.options.clock.now_ms().saturating_add(limit_ms);
        t > self.future_bound
    }

    /// An event at `t` that came `seq`th is accepted: it counts against
    /// the held events that came before it.
    fn accept(&mut self, t: i64, seq: u64) {
        self.newest_ms = Some(self.newest_ms.map_or(t, |n| n.max(t)));
        for held in &mut self.held {
            if held.seq < seq {
                held.against += 1;
            }
        }
    }

    /// Refuses the held events that enough accepted events went past.
    fn expire(&mut self) {
        let k = self.options.confirmations as u64;
        if self.held.iter().all(|h| h.against < k) {
            return;
        }
        let (gone, stay): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.against >= k);
        self.held = stay;
        for held in gone {
            self.refuse_held(held);
        }
    }

    /// If enough held events have nothing against them, the stream moved
    /// to their median time.
    fn confirm(&mut self) {
        let mut times: Vec<i64> = self
            .held
            .iter()
            .filter(|h| h.against == 0)
            .map(|h| h.event.timestamp_ms)
            .collect();
        if times.len() < self.options.confirmations {
            return;
        }
        times.sort_unstable();
        let median = times[(times.len() - 1) / 2];
        if self.newest_ms.is_some() {
            self.counts.jumps += 1;
        }
        self.newest_ms = Some(self.newest_ms.map_or(median, |n| n.max(median)));
        self.release_reached();
        self.expire();
    }

    /// Releases, in the order they came, the held events no longer ahead
    /// of the newest time.
    fn release_reached(&mut self) {
        let (Some(newest), Some(jump)) = (self.newest_ms, self.options.max_jump_ms) else {
            return;
        };
        let reach = newest.saturating_add(jump);
        let (go, stay): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.event.timestamp_ms <= reach);
        self.held = stay;
        for held in go {
            self.accept(held.event.timestamp_ms, held.seq);
            self.released.push(held.event);
        }
    }

    fn refuse_held(&mut self, held: Held) {
        self.counts.ahead_of_stream += 1;
        let reason = RejectReason::AheadOfStream {
            time: format_timestamp_ms(held.event.timestamp_ms),
            newest: self.newest_ms.map(format_timestamp_ms),
            limit_ms: self.options.max_jump_ms.unwrap_or_default(),
        };
        self.refuse(held.event, held.origin, reason);
    }

    fn refuse(&mut self, event: NormalizedEvent, origin: String, reason: RejectReason) {
        if self.refused.len() < KEEP_REFUSED {
            self.refused.push(Refused {
                event,
                origin,
                reason,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    /// 2026-04-22T00:00:00Z.
    const APRIL: i64 = 1_776_816_000_000;
    /// 2026-12-01T00:00:00Z.
    const NOW: i64 = 1_796_083_200_000;

    fn guard() -> TimeGuard {
        TimeGuard::new(TimeGuardOptions {
            clock: WallClock::Fixed(NOW),
            confirmations: 4,
            ..TimeGuardOptions::default()
        })
    }

    fn event(id: &str, t: i64) -> NormalizedEvent {
        NormalizedEvent {
            event_id: Some(id.into()),
            ..NormalizedEvent::at(t)
        }
    }

    /// Offers `events`; returns the ids that went on, in order, and the
    /// refused ones with their reasons' kinds.
    fn run(
        guard: &mut TimeGuard,
        events: &[(&str, i64)],
        finish: bool,
    ) -> (Vec<String>, Vec<(String, &'static str)>) {
        let mut passed = Vec::new();
        for &(id, t) in events {
            passed.extend(guard.offer(event(id, t), &|| format!("file of {id}")));
            passed.extend(guard.take_released());
        }
        if finish {
            guard.finish();
            passed.extend(guard.take_released());
        }
        let refused = guard
            .take_refused()
            .into_iter()
            .map(|r| {
                assert_eq!(
                    r.origin,
                    format!("file of {}", r.event.event_id.as_deref().unwrap_or("")),
                    "named by its origin"
                );
                (
                    r.event.event_id.map(String::from).unwrap_or_default(),
                    r.reason.kind(),
                )
            })
            .collect();
        let ids = passed
            .into_iter()
            .filter_map(|e| e.event_id.map(String::from))
            .collect();
        (ids, refused)
    }

    /// `n` events a minute apart from `from`, named `prefix0`, `prefix1`, ...
    fn stream(prefix: &str, from: i64, n: usize) -> Vec<(String, i64)> {
        (0..n)
            .map(|i| (format!("{prefix}{i}"), from + i as i64 * 60_000))
            .collect()
    }

    fn refs(events: &[(String, i64)]) -> Vec<(&str, i64)> {
        events.iter().map(|(id, t)| (id.as_str(), *t)).collect()
    }

    fn ids(events: &[(String, i64)]) -> Vec<String> {
        events.iter().map(|(id, _)| id.clone()).collect()
    }

    #[test]
    fn outliers_in_the_middle_are_refused_and_the_stream_goes_on() {
        let before = stream("a", APRIL, 10);
        let after = stream("b", APRIL + HOUR, 10);
        let mut events = before.clone();
        events.push(("future".into(), NOW + 16 * 60_000));
        events.push(("now".into(), NOW));
        events.extend(after.clone());
        let (passed, refused) = run(&mut guard(), &refs(&events), true);
        assert_eq!(passed, [ids(&before), ids(&after)].concat());
        assert_eq!(
            refused,
            [
                ("future".to_owned(), "future-event-time"),
                ("now".to_owned(), "ahead-of-stream")
            ]
        );
    }

    #[test]
    fn a_held_event_waits_until_enough_events_went_past_it() {
        let mut g = guard();
        let (passed, refused) = run(&mut g, &refs(&stream("a", APRIL, 5)), false);
        assert_eq!(
            passed.len(),
            5,
            "the first four confirm each other, the fifth goes on"
        );
        assert!(refused.is_empty());
        let (passed, _) = run(&mut g, &[("now", NOW)], false);
        assert!(passed.is_empty(), "held");
        assert_eq!(g.counts().held, 1);
        let (passed, refused) = run(&mut g, &refs(&stream("b", APRIL + HOUR, 3)), false);
        assert_eq!(passed.len(), 3);
        assert!(
            refused.is_empty(),
            "three events after it are not yet enough"
        );
        let (_, refused) = run(&mut g, &[("b3", APRIL + 2 * HOUR)], false);
        assert_eq!(refused, [("now".to_owned(), "ahead-of-stream")]);
        assert_eq!(g.counts().held, 0);
        assert_eq!(g.counts().ahead_of_stream, 1);
    }

    #[test]
    fn a_real_gap_is_confirmed_and_nothing_is_lost() {
        // Three days without logs, then the stream goes on: held until four
        // events agree, then released in order; an outlier held meanwhile
        // stays held, then is refused.
        let before = stream("a", APRIL, 6);
        let after = stream("b", APRIL + 72 * HOUR, 8);
        let mut events = before.clone();
        events.push(("b0".into(), after[0].1));
        events.push(("outlier".into(), APRIL + 200 * HOUR));
        events.extend(after[1..].iter().cloned());
        let mut g = guard();
        let (passed, refused) = run(&mut g, &refs(&events), true);
        assert_eq!(passed, [ids(&before), ids(&after)].concat());
        assert_eq!(refused, [("outlier".to_owned(), "ahead-of-stream")]);
        assert_eq!(
            g.counts().jumps,
            1,
            "after the gap (the start is not a jump)"
        );
        assert_eq!(g.counts().held, 0);
    }

    #[test]
    fn a_sparse_stream_moves_on_by_agreement() {
        // A quiet account: fewer events a day than confirm a move, days
        // apart, and nothing ever comes back to an older time.
        let events: Vec<(String, i64)> = (0..11)
            .map(|i| (format!("d{i}"), APRIL + i * 40 * HOUR))
            .collect();
        let mut g = guard();
        let (passed, refused) = run(&mut g, &refs(&events), true);
        assert_eq!(passed, ids(&events));
        assert!(refused.is_empty());
        assert!(g.counts().jumps >= 1, "{:?}", g.counts());
    }

    #[test]
    fn the_first_record_cannot_set_the_time() {
        let mut events = vec![("now".to_owned(), NOW)];
        let april = stream("a", APRIL, 10);
        events.extend(april.clone());
        let (passed, refused) = run(&mut guard(), &refs(&events), true);
        assert_eq!(passed, ids(&april));
        assert_eq!(refused, [("now".to_owned(), "ahead-of-stream")]);
    }

    #[test]
    fn at_the_end_a_held_event_is_refused_only_if_the_stream_went_past_it() {
        let april = stream("a", APRIL, 10);
        // Last: nothing after it to make late; it ends the stream.
        let mut last = april.clone();
        last.push(("now".into(), NOW));
        let (passed, refused) = run(&mut guard(), &refs(&last), true);
        assert_eq!(passed, ids(&last));
        assert!(refused.is_empty());
        // Two events went past it: refused.
        let mut near = april.clone();
        near.push(("now".into(), NOW));
        near.extend(stream("b", APRIL + HOUR, 2));
        let (passed, refused) = run(&mut guard(), &refs(&near), true);
        assert_eq!(passed.len(), 12);
        assert_eq!(refused, [("now".to_owned(), "ahead-of-stream")]);
        // A stream shorter than a confirmation is released whole at the end.
        let short = stream("s", APRIL, 3);
        let (passed, refused) = run(&mut guard(), &refs(&short), true);
        assert_eq!(passed, ids(&short));
        assert!(refused.is_empty());
    }

    #[test]
    fn the_hold_is_bounded() {
        let mut g = guard();
        run(&mut g, &refs(&stream("a", APRIL, 4)), false);
        // Three outliers, far apart, for every event of the stream: never
        // enough with nothing against them, never enough against them.
        let mut events = Vec::new();
        for i in 0..10 {
            for j in 0..3 {
                events.push((format!("o{i}-{j}"), APRIL + (10 + i * 3 + j) * 48 * HOUR));
            }
            events.push((format!("a{}", i + 4), APRIL + HOUR + i * 60_000));
        }
        let mut most = 0;
        let mut refused = Vec::new();
        for (id, t) in &events {
            let (_, r) = run(&mut g, &[(id.as_str(), *t)], false);
            refused.extend(r);
            most = most.max(g.counts().held);
        }
        assert_eq!(most, 8, "twice the confirmations");
        assert_eq!(refused.len() as u64 + g.counts().held, 30);
        assert_eq!(refused[0].0, "o0-0", "oldest first");
        assert_eq!(g.counts().jumps, 0, "the start is not a jump");
    }

    #[test]
    fn held_events_survive_save_and_load() {
        let april = stream("a", APRIL, 6);
        let mut first = guard();
        run(&mut first, &refs(&april[..5]), false);
        run(&mut first, &[("now", NOW)], false);
        let saved = postcard::to_allocvec(&first.save()).expect("serializes");
        let mut resumed = guard();
        resumed
            .load(
                postcard::from_bytes(&saved).expect("deserializes"),
                &RecordPaths::default(),
            )
            .expect("loads");
        let rest = stream("b", APRIL + HOUR, 4);
        let (a, refused_a) = run(&mut first, &refs(&rest), true);
        let (b, refused_b) = run(&mut resumed, &refs(&rest), true);
        assert_eq!(a, b);
        assert_eq!(refused_a, refused_b);
        assert_eq!(refused_b, [("now".to_owned(), "ahead-of-stream")]);
        assert_eq!(first.counts(), resumed.counts());
    }

    #[test]
    fn checks_can_be_turned_off() {
        let mut off = TimeGuard::new(TimeGuardOptions {
            max_future_ms: None,
            max_jump_ms: None,
            ..TimeGuardOptions::default()
        });
        let events = [("a", APRIL), ("far", i64::MAX), ("b", APRIL)];
        let (passed, refused) = run(&mut off, &events, true);
        assert_eq!(passed, ["a", "far", "b"]);
        assert!(refused.is_empty());
    }
}
