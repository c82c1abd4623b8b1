//! Correlation rules in event-time order: the matches of rules a
//! correlation counts are held until the watermark passes them, then fed to
//! rsigma's correlation engine sorted by event time (ties by event id),
//! each event id once. Correlations of too few events (`lt` / `lte`), which
//! are decided when a window closes, are counted here: a group's first
//! match opens its window, and once event time has passed the window's end
//! the count is checked.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rsigma_eval::result::{DetectionBody, ResultBody, RuleHeader};
use rsigma_eval::{CorrelationEngine, CorrelationSnapshot, EvaluationResult};
use rsigma_eval::{Event as SigmaEventTrait, EventValue};
use rsigma_parser::ConditionOperator;
use serde::{Deserialize, Serialize};
use trailguard_rule_sdk::serde_json::{self, Map, Value as Json, json};
use trailguard_rule_sdk::{Alert, Event, snapshot};

use crate::load::{Closing, MAX_GROUPS};
use crate::{Loaded, PACK_ID};

/// The snapshot format of the pack's state: 2 added the windows of
/// correlations of too few events and the newest event time; a format-1
/// snapshot is read with none.
const STATE_FORMAT: u32 = 2;

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
    /// Open windows of correlations of too few events, by the
    /// correlation's position in [`Loaded::closing`] and the group.
    windows: BTreeMap<(usize, Group), Window>,
    /// The same windows by when they close.
    closes: BTreeSet<(i64, usize, Group)>,
    /// The newest event time seen: at the end of the input, the windows it
    /// has passed are decided, the others not.
    newest_ms: i64,
}

/// A group's `group-by` values.
type Group = Vec<Option<String>>;

/// A window of a correlation of too few events.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Window {
    /// The time of the match that opened it; it closes `span_ms` later.
    opened_ms: i64,
    /// Matches (`event_count`).
    count: u64,
    /// Distinct values (`value_count`), up to one more than any threshold
    /// (past it, no `lt` / `lte` condition can hold).
    distinct: BTreeSet<Group>,
    /// The alert document of the match that opened it.
    base: String,
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
    /// Windows of correlations of too few events, by correlation id.
    windows: Vec<(String, Group, Window)>,
    newest_ms: i64,
}

/// The state of format 1.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct SavedFormat1 {
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
    /// Notes an event's time (every event, matching or not): how far event
    /// time has come.
    pub(crate) fn saw(&mut self, timestamp_ms: i64) {
        self.newest_ms = self.newest_ms.max(timestamp_ms);
    }

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
            // Windows that ended before this match are decided first.
            self.close_before(loaded, t, &mut alerts);
            self.count(loaded, t, &held);
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
                    let group = body
                        .group_key
                        .iter()
                        .map(|(name, value)| json!({ "name": name, "value": value }))
                        .collect();
                    let found = Found {
                        kind: body.correlation_type.as_str(),
                        group,
                        value: body.aggregated_value.into(),
                        timespan_seconds: body.timespan_secs,
                    };
                    alerts.push(alert(index, t, &held.base, found));
                }
            }
        }
        // Every match up to the watermark is in: windows that ended before
        // it are decided. At the end of the input (no watermark), those
        // that ended by the newest event time.
        let horizon = if watermark_ms == i64::MAX {
            self.newest_ms.saturating_add(1)
        } else {
            watermark_ms
        };
        self.close_before(loaded, horizon, &mut alerts);
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
            windows: self
                .windows
                .iter()
                .filter_map(|((c, group), window)| {
                    let closing = loaded.closing.get(*c)?;
                    let id = loaded.infos.get(closing.index)?.id.clone();
                    Some((id, group.clone(), window.clone()))
                })
                .collect(),
            newest_ms: self.newest_ms,
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
        let saved: Saved = snapshot::decode_or_migrate(
            PACK_ID,
            STATE_FORMAT,
            bytes,
            |format, old| match format {
                1 => postcard::from_bytes::<SavedFormat1>(old)
                    .map(|old| Saved {
                        held: old.held,
                        seen: old.seen,
                        arrivals: old.arrivals,
                        engine: old.engine,
                        windows: Vec::new(),
                        newest_ms: 0,
                    })
                    .map_err(|e| format!("snapshot of state format 1 cannot be read: {e}")),
                other => Err(format!(
                    "snapshot has state format {other} but this version of `{PACK_ID}` reads formats 1 to {STATE_FORMAT}"
                )),
            },
        )?;
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
        let mut correlator = Correlator {
            held,
            seen: saved.seen.into_iter().collect(),
            arrivals: saved.arrivals,
            swept_at_ms: 0,
            newest_ms: saved.newest_ms,
            ..Correlator::default()
        };
        // Windows of correlations still loaded (by id), with their span now.
        for (id, group, window) in saved.windows {
            let Some(c) = loaded
                .closing
                .iter()
                .position(|c| loaded.infos.get(c.index).is_some_and(|info| info.id == id))
            else {
                continue;
            };
            let closes = window.opened_ms.saturating_add(loaded.closing[c].span_ms);
            correlator.closes.insert((closes, c, group.clone()));
            correlator.windows.insert((c, group), window);
        }
        Ok(correlator)
    }

    /// Counts a match in the windows of the correlations of too few events
    /// that count one of its rules (an event once per correlation), opening
    /// the group's window at `t` if it has none.
    fn count(&mut self, loaded: &Loaded, t: i64, held: &Held) {
        for (c, closing) in loaded.closing.iter().enumerate() {
            let Some(counted) = closing
                .counts
                .iter()
                .find(|counted| held.rules.contains(&(counted.rule as u32)))
            else {
                continue;
            };
            let text = |at: &Option<usize>| at.and_then(|i| held.values.get(i).cloned().flatten());
            let group: Group = counted.group.iter().map(text).collect();
            let key = (c, group);
            if !self.windows.contains_key(&key) {
                if self.windows.len() >= MAX_GROUPS {
                    continue;
                }
                let closes = t.saturating_add(closing.span_ms);
                self.closes.insert((closes, c, key.1.clone()));
                self.windows.insert(
                    key.clone(),
                    Window {
                        opened_ms: t,
                        count: 0,
                        distinct: BTreeSet::new(),
                        base: held.base.clone(),
                    },
                );
            }
            let Some(window) = self.windows.get_mut(&key) else {
                continue;
            };
            window.count = window.count.saturating_add(1);
            if closing.distinct {
                let value: Group = counted.values.iter().map(text).collect();
                // An absent value does not count.
                let enough = closing.predicates.iter().map(|p| p.1).max().unwrap_or(0);
                if value.iter().all(Option::is_some) && (window.distinct.len() as u64) <= enough {
                    window.distinct.insert(value);
                }
            }
        }
    }

    /// Decides every window that closed before `t`: an alert of its
    /// correlation when its count meets the condition.
    fn close_before(&mut self, loaded: &Loaded, t: i64, alerts: &mut Vec<Alert>) {
        while let Some(first) = self.closes.first() {
            if first.0 >= t {
                break;
            }
            let Some((closes, c, group)) = self.closes.pop_first() else {
                break;
            };
            let Some(window) = self.windows.remove(&(c, group.clone())) else {
                continue;
            };
            let Some(closing) = loaded.closing.get(c) else {
                continue;
            };
            let value = if closing.distinct {
                window.distinct.len() as u64
            } else {
                window.count
            };
            if meets(closing, value) && loaded.generates[closing.index] {
                let found = Found {
                    kind: if closing.distinct {
                        "value_count"
                    } else {
                        "event_count"
                    },
                    group: closing
                        .group_names
                        .iter()
                        .zip(&group)
                        .map(|(name, value)| json!({ "name": name, "value": value }))
                        .collect(),
                    value: value.into(),
                    timespan_seconds: (closing.span_ms / 1000) as u64,
                };
                alerts.push(alert(closing.index, closes, &window.base, found));
            }
        }
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

/// Whether a closed window's count meets every predicate of its condition.
fn meets(closing: &Closing, value: u64) -> bool {
    closing.predicates.iter().all(|&(op, threshold)| match op {
        ConditionOperator::Lt => value < threshold,
        ConditionOperator::Lte => value <= threshold,
        ConditionOperator::Gt => value > threshold,
        ConditionOperator::Gte => value >= threshold,
        ConditionOperator::Eq => value == threshold,
        ConditionOperator::Neq => value != threshold,
    })
}

/// What a correlation found, as its alert says.
struct Found {
    kind: &'static str,
    /// `[{name, value}]` of its group.
    group: Vec<Json>,
    /// The count that met the condition.
    value: Json,
    timespan_seconds: u64,
}

/// The alert of correlation `index` at `t`, from the alert document `base`
/// of the event that completed it (or, for too few events, opened the
/// window): that event's fields and what the correlation found.
fn alert(index: usize, t: i64, base: &str, found: Found) -> Alert {
    let mut document: Map<String, Json> = serde_json::from_str(base).unwrap_or_default();
    document.insert(
        "trailguard.sigma.correlation".into(),
        json!({
            "type": found.kind,
            "group": found.group,
            "value": found.value,
            "timespan_seconds": found.timespan_seconds,
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

/// `snapshot` (of this format) as format 1 wrote it: without the windows
/// of correlations of too few events.
#[cfg(test)]
pub(crate) fn as_format_1(snapshot: &[u8]) -> Vec<u8> {
    let saved: Saved = snapshot::decode(PACK_ID, STATE_FORMAT, snapshot).expect("a snapshot");
    let old = SavedFormat1 {
        held: saved.held,
        seen: saved.seen,
        arrivals: saved.arrivals,
        engine: saved.engine,
    };
    snapshot::encode(PACK_ID, 1, &old)
}
