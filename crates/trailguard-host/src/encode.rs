//! Host side of the event encoding: a batch of events becomes one string
//! table (`text` + `offsets`) and columns of scalars that refer to it by
//! index. See `docs/event-encoding.md` for why.

use trailguard_ingest::NormalizedEvent;
use trailguard_rule_sdk::{Field, Outcome, ValueKind};

use crate::bindings::exports::trailguard::detector::rule as wit;
use crate::record::RecordMap;

/// Reusable buffers for encoding batches; capacity is kept between batches.
pub struct BatchEncoder {
    batch: wit::EventBatch,
}

impl Default for BatchEncoder {
    fn default() -> Self {
        BatchEncoder {
            batch: wit::EventBatch {
                text: String::new(),
                offsets: Vec::new(),
                timestamps: Vec::new(),
                strings: Vec::new(),
                as_numbers: Vec::new(),
                outcomes: Vec::new(),
                value_kinds: Vec::new(),
                value_texts: Vec::new(),
            },
        }
    }
}

impl std::fmt::Debug for BatchEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchEncoder")
            .field("events", &self.batch.timestamps.len())
            .finish()
    }
}

/// `event.outcome` on the wire.
fn outcome_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Success => 0,
        Outcome::Failure => 1,
        Outcome::Unknown => 2,
    }
}

/// The batch's text would pass 4 GiB, which its `u32` offsets cannot
/// address.
#[derive(Debug)]
pub(crate) struct TooLarge;

impl BatchEncoder {
    /// Encodes events taken from `events` (with the values of `record`'s
    /// declared paths) until the batch's text reaches `budget` bytes or the
    /// events run out (so a batch holds at most the budget plus one event);
    /// at least one event is taken when there is one. An empty batch means
    /// `events` was exhausted.
    pub(crate) fn encode(
        &mut self,
        events: &mut dyn Iterator<Item = &NormalizedEvent>,
        record: &RecordMap,
        budget: usize,
    ) -> Result<&wit::EventBatch, TooLarge> {
        let b = &mut self.batch;
        b.text.clear();
        b.offsets.clear();
        b.timestamps.clear();
        b.strings.clear();
        b.as_numbers.clear();
        b.outcomes.clear();
        b.value_kinds.clear();
        b.value_texts.clear();
        // String 0 is the empty span [0, 0): "absent".
        b.offsets.extend([0, 0]);
        // Every present string gets its own span, the empty one too: index 0
        // means absent.
        let push = |b: &mut wit::EventBatch, s: &str| -> Result<u32, TooLarge> {
            b.text.push_str(s);
            b.offsets
                .push(u32::try_from(b.text.len()).map_err(|_| TooLarge)?);
            u32::try_from(b.offsets.len() - 2).map_err(|_| TooLarge)
        };
        let with_record = !record.declared().is_empty();
        for e in events {
            b.timestamps.push(e.timestamp_ms);
            b.as_numbers.push(e.source_as_number.unwrap_or(0));
            b.outcomes.push(outcome_code(e.outcome));
            // The order of `string-field` in wit/detector.wit.
            for field in Field::ALL {
                let index = match e.field(field) {
                    None => 0,
                    Some(s) => push(b, s)?,
                };
                b.strings.push(index);
            }
            if with_record {
                for value in record.values(e) {
                    let (kind, text) =
                        value.map_or((ValueKind::Absent, ""), |v| (v.kind(), v.text()));
                    // The kind says whether there is a value: no span needed
                    // for kinds without text.
                    let index = if kind.has_text() { push(b, text)? } else { 0 };
                    b.value_kinds.push(kind as u8);
                    b.value_texts.push(index);
                }
            }
            if b.text.len() >= budget {
                break;
            }
        }
        Ok(&self.batch)
    }
}

#[cfg(test)]
mod tests {
    use trailguard_ingest::RecordPaths;

    use super::*;

    #[test]
    fn layout_matches_the_contract() {
        // One entry per `string-field` case, in order.
        assert_eq!(wit::StringField::UserChangesName as usize + 1, 14);
        let paths = RecordPaths::new(["a".to_owned(), "b.c".to_owned()]);
        let event = NormalizedEvent {
            event_id: Some("id".into()),
            // Present but empty: not absent.
            user_agent: Some("".into()),
            user_name: Some("ci".into()),
            source_as_number: Some(16509),
            user_changes_name: Some("eve".into()),
            outcome: Outcome::Failure,
            record: paths.extract(r#"{"b":{"c":[1, 2]},"a":null}"#),
            ..NormalizedEvent::at(7)
        };
        let second = NormalizedEvent {
            timestamp_ms: 8,
            ..event.clone()
        };
        let mut encoder = BatchEncoder::default();
        let mut record =
            RecordMap::checked("r", vec!["b.c".into(), "x".into(), "a".into()]).expect("ok");
        record.refresh(&paths);
        let events = [event, second];
        let b = encoder
            .encode(&mut events.iter(), &record, usize::MAX)
            .expect("fits");
        assert_eq!(b.timestamps, [7, 8]);
        assert_eq!(b.as_numbers, [16509, 16509]);
        assert_eq!(b.outcomes, [1, 1]);
        assert_eq!(b.strings.len(), 28);
        let at =
            |i: u32| &b.text[b.offsets[i as usize] as usize..b.offsets[i as usize + 1] as usize];
        assert_eq!(at(b.strings[wit::StringField::EventId as usize]), "id");
        assert_eq!(
            at(b.strings[14 + wit::StringField::UserName as usize]),
            "ci"
        );
        assert_eq!(
            at(b.strings[14 + wit::StringField::UserChangesName as usize]),
            "eve"
        );
        assert_eq!(
            b.strings[wit::StringField::EventAction as usize],
            0,
            "absent"
        );
        let empty = b.strings[wit::StringField::UserAgent as usize];
        assert_ne!(empty, 0, "an empty string is present");
        assert_eq!(at(empty), "");
        // Three declared paths per event, in declaration order.
        assert_eq!(
            b.value_kinds,
            [7, 0, 1, 7, 0, 1].map(|k: u8| k),
            "array, absent, null"
        );
        assert_eq!(at(b.value_texts[0]), "[1,2]");
        assert_eq!(b.value_texts[1], 0);
        // The text budget cuts batches after the event that reaches it.
        let b = encoder
            .encode(&mut events.iter(), &record, 1)
            .expect("fits");
        assert_eq!(b.timestamps, [7]);
    }

    #[test]
    fn the_value_kinds_are_numbered_as_the_contract_says() {
        use wit::ValueKind as W;
        for (sdk, wit) in [
            (ValueKind::Absent, W::Absent),
            (ValueKind::Null, W::Null),
            (ValueKind::False, W::False),
            (ValueKind::True, W::True),
            (ValueKind::Number, W::Number),
            (ValueKind::String, W::String),
            (ValueKind::Object, W::Object),
            (ValueKind::Array, W::Array),
            (ValueKind::Oversized, W::Oversized),
        ] {
            assert_eq!(sdk as u8, wit as u8, "{sdk:?}");
        }
    }
}
