//! Host side of the event encoding: a batch of events becomes one string
//! table (`text` + `offsets`) and columns of scalars that refer to it by
//! index. See `docs/event-encoding.md` for why.

use trailguard_ingest::NormalizedEvent;
use trailguard_rule_sdk::Outcome;

use crate::bindings::exports::trailguard::detector::rule as wit;

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

impl BatchEncoder {
    /// Encodes `events`. Returns `None` when the batch's text would exceed
    /// 4 GiB (split the batch).
    pub(crate) fn encode<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e NormalizedEvent>,
    ) -> Option<&wit::EventBatch> {
        let b = &mut self.batch;
        b.text.clear();
        b.offsets.clear();
        b.timestamps.clear();
        b.strings.clear();
        b.as_numbers.clear();
        b.outcomes.clear();
        // String 0 is the empty span [0, 0): "absent".
        b.offsets.extend([0, 0]);
        for e in events {
            b.timestamps.push(e.timestamp_ms);
            b.as_numbers.push(e.source_as_number.unwrap_or(0));
            b.outcomes.push(outcome_code(e.outcome));
            // The order of `string-field` in wit/detector.wit.
            for field in [
                &e.event_id,
                &e.event_action,
                &e.event_provider,
                &e.cloud_region,
                &e.cloud_account_id,
                &e.user_name,
                &e.identity_type,
                &e.identity_arn,
                &e.source_address,
                &e.source_ip,
                &e.source_as_organization,
                &e.user_agent,
                &e.error_code,
                &e.user_changes_name,
            ] {
                let index = match field {
                    None => 0,
                    Some(s) => {
                        b.text.push_str(s);
                        b.offsets.push(u32::try_from(b.text.len()).ok()?);
                        u32::try_from(b.offsets.len() - 2).ok()?
                    }
                };
                b.strings.push(index);
            }
        }
        Some(&self.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_contract() {
        // One entry per `string-field` case, in order.
        assert_eq!(wit::StringField::UserChangesName as usize + 1, 14);
        let event = NormalizedEvent {
            timestamp_ms: 7,
            event_id: Some("id".into()),
            event_action: None,
            event_provider: None,
            cloud_region: None,
            cloud_account_id: None,
            user_name: Some("ci".into()),
            identity_type: None,
            identity_arn: None,
            source_address: None,
            source_ip: None,
            source_as_number: Some(16509),
            source_as_organization: None,
            user_agent: None,
            error_code: None,
            user_changes_name: Some("eve".into()),
            outcome: Outcome::Failure,
        };
        let second = NormalizedEvent {
            timestamp_ms: 8,
            ..event.clone()
        };
        let mut encoder = BatchEncoder::default();
        let b = encoder.encode(&[event, second]).expect("fits");
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
    }
}
