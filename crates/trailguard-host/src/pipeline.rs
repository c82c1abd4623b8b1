//! Feeding every detector, in event time, and collecting alerts.

use std::collections::BTreeMap;

use trailguard_ingest::NormalizedEvent;

use crate::alert::document;
use crate::{AlertDocument, Detector, HostError, Watermark};

/// A rule that failed and was stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFailure {
    /// Rule id.
    pub rule: String,
    /// Events fed to the pipeline before the failing call.
    pub events_before: u64,
    /// What happened.
    pub message: String,
}

/// What the pipeline counted.
#[derive(Clone, Debug, Default)]
pub struct PipelineStats {
    /// Events fed.
    pub events: u64,
    /// Events older than the watermark already announced when they arrived.
    pub late_events: u64,
    /// Alerts per rule id (every loaded rule has an entry).
    pub alerts: BTreeMap<String, u64>,
    /// Rules stopped after a failure.
    pub failures: Vec<RuleFailure>,
}

struct Slot {
    detector: Box<dyn Detector>,
    failed: bool,
}

/// Every loaded detector, the watermark, and the counters.
pub struct Pipeline {
    slots: Vec<Slot>,
    watermark: Watermark,
    stats: PipelineStats,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("stats", &self.stats)
            .finish()
    }
}

impl Pipeline {
    /// A pipeline over `detectors` (fed in this order) with the given
    /// allowed lateness of events.
    pub fn new(detectors: Vec<Box<dyn Detector>>, allowed_lateness_ms: i64) -> Pipeline {
        let stats = PipelineStats {
            alerts: detectors.iter().map(|d| (d.info().id.clone(), 0)).collect(),
            ..PipelineStats::default()
        };
        Pipeline {
            slots: detectors
                .into_iter()
                .map(|detector| Slot {
                    detector,
                    failed: false,
                })
                .collect(),
            watermark: Watermark::new(allowed_lateness_ms),
            stats,
        }
    }

    /// Feeds one batch to every rule, then announces the watermark if it
    /// moved. Alerts come back in a deterministic order: by rule, then as
    /// the rule returned them.
    pub fn push(&mut self, events: &[NormalizedEvent]) -> Vec<AlertDocument> {
        for e in events {
            if self.watermark.observe(e.timestamp_ms) {
                self.stats.late_events += 1;
            }
        }
        let mut out = Vec::new();
        self.each(&mut out, |d| d.process(events));
        self.stats.events += events.len() as u64;
        if let Some(w) = self.watermark.advance() {
            self.each(&mut out, |d| d.advance(w));
        }
        out
    }

    /// The input has ended: every remaining evaluation runs.
    pub fn finish(&mut self) -> Vec<AlertDocument> {
        let mut out = Vec::new();
        self.each(&mut out, |d| d.advance(i64::MAX));
        out
    }

    /// The counters so far.
    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// The newest event time seen.
    pub fn newest_event_ms(&self) -> Option<i64> {
        self.watermark.newest_ms()
    }

    fn each(
        &mut self,
        out: &mut Vec<AlertDocument>,
        mut call: impl FnMut(&mut dyn Detector) -> Result<Vec<trailguard_rule_sdk::Alert>, HostError>,
    ) {
        for slot in self.slots.iter_mut().filter(|s| !s.failed) {
            let result = call(slot.detector.as_mut()).and_then(|alerts| {
                let info = slot.detector.info();
                alerts
                    .into_iter()
                    .map(|a| {
                        document(info, a).map_err(|message| HostError::Rule {
                            rule: info.id.clone(),
                            call: "process",
                            message,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            });
            match result {
                Ok(docs) => {
                    *self
                        .stats
                        .alerts
                        .entry(slot.detector.info().id.clone())
                        .or_default() += docs.len() as u64;
                    out.extend(docs);
                }
                Err(e) => {
                    slot.failed = true;
                    self.stats.failures.push(RuleFailure {
                        rule: slot.detector.info().id.clone(),
                        events_before: self.stats.events,
                        message: e.to_string(),
                    });
                }
            }
        }
    }
}
