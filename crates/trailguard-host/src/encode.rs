//! Host side of the event encoding: a batch of events becomes one string
//! table (`text` + `offsets`) and a list of fixed-size records that refer to
//! it by index. See `docs/event-encoding.md` for why.

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
                events: Vec::new(),
            },
        }
    }
}

impl std::fmt::Debug for BatchEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchEncoder")
            .field("events", &self.batch.events.len())
            .finish()
    }
}

/// The string table under construction.
struct Table<'a> {
    text: &'a mut String,
    offsets: &'a mut Vec<u32>,
}

impl Table<'_> {
    /// Appends a string and returns its index; `None` is index 0.
    fn add(&mut self, s: Option<&str>) -> u32 {
        let Some(s) = s else { return 0 };
        self.text.push_str(s);
        // Batches are far below 4 GiB of text; `encode` checks it anyway.
        self.offsets
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
        u32::try_from(self.offsets.len() - 2).unwrap_or(0)
    }
}

impl BatchEncoder {
    /// Encodes `events`. Returns `None` when the batch's text would exceed
    /// 4 GiB (split the batch).
    pub(crate) fn encode(&mut self, events: &[NormalizedEvent]) -> Option<&wit::EventBatch> {
        let batch = &mut self.batch;
        batch.text.clear();
        batch.offsets.clear();
        batch.events.clear();
        // String 0 is the empty span [0, 0): "absent".
        batch.offsets.extend([0, 0]);
        let mut t = Table {
            text: &mut batch.text,
            offsets: &mut batch.offsets,
        };
        for e in events {
            let event = wit::Event {
                timestamp_ms: e.timestamp_ms,
                event_id: t.add(e.event_id.as_deref()),
                event_action: t.add(e.event_action.as_deref()),
                event_provider: t.add(e.event_provider.as_deref()),
                cloud_region: t.add(e.cloud_region.as_deref()),
                cloud_account_id: t.add(e.cloud_account_id.as_deref()),
                user_name: t.add(e.user_name.as_deref()),
                identity_type: t.add(e.identity_type.as_deref()),
                identity_arn: t.add(e.identity_arn.as_deref()),
                source_address: t.add(e.source_address.as_deref()),
                source_ip: t.add(e.source_ip.as_deref()),
                source_as_organization: t.add(e.source_as_organization.as_deref()),
                user_agent: t.add(e.user_agent.as_deref()),
                error_code: t.add(e.error_code.as_deref()),
                user_changes_name: t.add(e.user_changes_name.as_deref()),
                source_as_number: e.source_as_number.unwrap_or(0),
                outcome: match e.outcome {
                    Outcome::Success => wit::Outcome::Success,
                    Outcome::Failure => wit::Outcome::Failure,
                    Outcome::Unknown => wit::Outcome::Unknown,
                },
            };
            batch.events.push(event);
        }
        (u32::try_from(batch.text.len()).is_ok()).then_some(&self.batch)
    }
}
