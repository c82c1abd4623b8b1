//! Correlation rules in event-time order: the matches of rules a
//! correlation counts are held until the watermark passes them, then fed to
//! rsigma's correlation engine sorted by event time (ties by event id),
//! each event id once.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rsigma_eval::result::{DetectionBody, ResultBody, RuleHeader};
use rsigma_eval::{CorrelationBody, CorrelationEngine, CorrelationSnapshot, EvaluationResult};
use rsigma_eval::{Event as SigmaEventTrait, EventValue};
use serde::{Deserialize, Serialize};
use trailguard_rule_sdk::serde_json::{self, Map, Value as Json, json};
use trailguard_rule_sdk::{Alert, Event, snapshot};

use crate::{Loaded, PACK_ID};

/// The snapshot format of the pack's state.
const STATE_FORMAT: u32 = 1;

/// How often (event time) groups and event ids that fell out of every
/// window are swept.
const SWEEP_EVERY_MS: i64 = 60_000;

/// A match held until the watermark passes it.
#[derive(Debug)]
struct Held {
    /// The matched rules some correlation counts.
    rules: Vec<u32>,
    /// The text of each of [`Loaded::correlation_fields`] in the event.
    values: Vec<Option<String>>,
    /// The event's alert document (its normalized fields), the base of a
    /// correlation alert this event completes.
    base: String,
}

/// The pack's correlation state.
#[derive(Default)]
pub(crate) struct Correlator {
    /// Matches not yet passed by the watermark, by (time, event id, arrival).
    held: BTreeMap<(i64, String, u64), Held>,
    /// Event ids fed within the longest timespan, with their times: a
    /// repeated event id counts once.
    seen: HashMap<String, i64>,
    arrivals: u64,
    swept_at_ms: i64,
}

/// The state as a snapshot holds it: rules by id, so a snapshot restores
/// into a pack whose rule files changed (a hot reload), windows carried by
/// correlation id.
#[derive(Serialize, Deserialize)]
struct Saved {
    held: Vec<((i64, String, u64), SavedHeld)>,
    seen: Vec<(String, i64)>,
    arrivals: u64,
    engine: CorrelationSnapshot,
}

/// A held match in a snapshot.
#[derive(Serialize, Deserialize)]
struct SavedHeld {
    rules: Vec<String>,
    fields: Vec<(String, Option<String>)>,
    base: String,
}

impl Correlator {
    /// Holds `event`, which matched `rules` (each counted by a
    /// correlation), until the watermark passes it.
    pub(crate) fn hold(
        &mut self,
        loaded: &Loaded,
        event: &Event<'_>,
        rules: Vec<u32>,
        base: String,
    ) {
        let values = loaded
            .correlation_fields
            .iter()
            .map(|name| {
                let value = event.get(name)?;
                match value.comparable() {
                    Some(text) => Some(text.to_owned()),
                    None => value.to_json(),
                }
            })
            .collect();
        self.arrivals += 1;
        let key = (
            event.timestamp_ms,
            event.event_id.unwrap_or_default().to_owned(),
            self.arrivals,
        );
        self.held.insert(
            key,
            Held {
                rules,
                values,
                base,
            },
        );
    }

    /// Feeds every held match older than `watermark_ms` to the engine, in
    /// event-time order; the alerts of the correlations that fire.
    pub(crate) fn advance(
        &mut self,
        loaded: &Loaded,
        engine: &mut CorrelationEngine,
        watermark_ms: i64,
    ) -> Vec<Alert> {
        let mut alerts = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 >= watermark_ms {
                break;
            }
            let ((t, event_id, _), held) = entry.remove_entry();
            if !event_id.is_empty() && self.seen.insert(event_id, t).is_some() {
                continue;
            }
            let detections = held
                .rules
                .iter()
                .filter_map(|&i| detection(loaded, i as usize))
                .collect();
            let event = HeldEvent {
                names: &loaded.correlation_fields,
                values: &held.values,
            };
            for result in engine.process_with_detections(&event, detections, t.div_euclid(1000)) {
                let ResultBody::Correlation(body) = &result.body else {
                    continue;
                };
                let Some(&index) = result
                    .header
                    .rule_id
                    .as_deref()
                    .and_then(|id| loaded.index.get(id))
                else {
                    continue;
                };
                if loaded.generates[index] {
                    alerts.push(alert(index, t, &held.base, body));
                }
            }
        }
        if watermark_ms != i64::MAX && watermark_ms - self.swept_at_ms >= SWEEP_EVERY_MS {
            self.swept_at_ms = watermark_ms;
            let horizon = watermark_ms.saturating_sub(loaded.max_timespan_secs as i64 * 1000);
            self.seen.retain(|_, &mut t| t >= horizon);
            engine.evict_expired(watermark_ms.div_euclid(1000));
        }
        alerts
    }

    /// The held matches, the ids seen and the engine's windows.
    pub(crate) fn snapshot(&self, loaded: &Loaded, engine: &CorrelationEngine) -> Vec<u8> {
        let saved = Saved {
            held: self
                .held
                .iter()
                .map(|(k, held)| {
                    let saved = SavedHeld {
                        rules: held
                            .rules
                            .iter()
                            .filter_map(|&i| loaded.infos.get(i as usize))
                            .map(|info| info.id.clone())
                            .collect(),
                        fields: loaded
                            .correlation_fields
                            .iter()
                            .cloned()
                            .zip(held.values.iter().cloned())
                            .collect(),
                        base: held.base.clone(),
                    };
                    (k.clone(), saved)
                })
                .collect(),
            seen: self.seen.iter().map(|(k, &t)| (k.clone(), t)).collect(),
            arrivals: self.arrivals,
            engine: engine.export_state(),
        };
        snapshot::encode(PACK_ID, STATE_FORMAT, &saved)
    }

    /// The state of `bytes` (from [`Correlator::snapshot`]) into a fresh
    /// `engine` of the rules `loaded`, which may differ from those that
    /// took it: held matches of rules no correlation counts any more are
    /// dropped, windows of correlations that are gone too. An empty
    /// snapshot (the pack before correlations was stateless) restores to
    /// nothing.
    pub(crate) fn restore(
        bytes: &[u8],
        loaded: &Loaded,
        engine: &mut CorrelationEngine,
    ) -> Result<Correlator, String> {
        if bytes.is_empty() {
            return Ok(Correlator::default());
        }
        let saved: Saved = snapshot::decode(PACK_ID, STATE_FORMAT, bytes)?;
        if !engine.import_state(saved.engine) {
            return Err(
                "the snapshot's correlation windows are of another rsigma state version".into(),
            );
        }
        let held = saved
            .held
            .into_iter()
            .filter_map(|(key, saved)| {
                let rules: Vec<u32> = saved
                    .rules
                    .iter()
                    .filter_map(|id| loaded.index.get(id))
                    .filter(|&&i| loaded.feeds[i])
                    .map(|&i| i as u32)
                    .collect();
                let values = loaded
                    .correlation_fields
                    .iter()
                    .map(|name| {
                        saved
                            .fields
                            .iter()
                            .find(|(n, _)| n == name)
                            .and_then(|(_, v)| v.clone())
                    })
                    .collect();
                (!rules.is_empty()).then_some((
                    key,
                    Held {
                        rules,
                        values,
                        base: saved.base,
                    },
                ))
            })
            .collect();
        Ok(Correlator {
            held,
            seen: saved.seen.into_iter().collect(),
            arrivals: saved.arrivals,
            swept_at_ms: 0,
        })
    }
}

/// A match of rule `index` as the engine's correlation layer reads it: the
/// rule's id (the engine finds its name and correlations by it).
fn detection(loaded: &Loaded, index: usize) -> Option<EvaluationResult> {
    let info = loaded.infos.get(index)?;
    Some(EvaluationResult {
        header: RuleHeader {
            rule_title: info.name.clone(),
            rule_id: Some(info.id.clone()),
            level: None,
            tags: Vec::new(),
            custom_attributes: Arc::default(),
            enrichments: None,
        },
        body: ResultBody::Detection(DetectionBody {
            matched_selections: Vec::new(),
            matched_fields: Vec::new(),
            event: None,
        }),
    })
}

/// The alert of correlation `index`, fired by the event of `base` at `t`:
/// that event's fields and what the correlation found.
fn alert(index: usize, t: i64, base: &str, body: &CorrelationBody) -> Alert {
    let mut document: Map<String, Json> = serde_json::from_str(base).unwrap_or_default();
    let group: Vec<Json> = body
        .group_key
        .iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    document.insert(
        "trailguard.sigma.correlation".into(),
        json!({
            "type": body.correlation_type.as_str(),
            "group": group,
            "value": body.aggregated_value,
            "timespan_seconds": body.timespan_secs,
        }),
    );
    Alert {
        rule: index as u32,
        timestamp_ms: t,
        document: Json::Object(document).to_string(),
    }
}

/// A held match as the engine reads it: the correlation fields.
struct HeldEvent<'a> {
    names: &'a [String],
    values: &'a [Option<String>],
}

impl SigmaEventTrait for HeldEvent<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        let i = self.names.iter().position(|n| n == path)?;
        let text = self.values.get(i)?.as_deref()?;
        Some(EventValue::Str(Cow::Borrowed(text)))
    }

    fn any_string_value(&self, _pred: &dyn Fn(&str) -> bool) -> bool {
        false
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        Vec::new()
    }

    fn to_json(&self) -> Json {
        Json::Null
    }
}
