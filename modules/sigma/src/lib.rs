//! Rule pack `sigma`: Sigma rules for CloudTrail, parsed, compiled and
//! matched inside the sandbox.
//!
//! The host reads the rule files the user names (`[rules.sigma] paths`,
//! `run --sigma DIR`) and hands their text over as the configuration; this
//! component parses and compiles them with rsigma and matches every event
//! against them. Each Sigma rule is its own rule to the user (its id, title,
//! level, tags) through [`Rule::rules`]; what cannot be used (a file that
//! does not parse, a rule for another log source, a feature not supported)
//! is a warning naming the file and line, and the other rules load.
//! Semantics: docs/sigma.md.

mod correlate;
mod event;
mod load;

use correlate::Correlator;
use rsigma_eval::CorrelationEngine;
use serde::{Deserialize, Serialize};
use trailguard_rule_sdk::{Alert, AlertBuilder, Event, Rule, RuleInfo, Severity, export_rule};

pub use load::{Loaded, load};

/// The pack's id: `[rules.sigma]` in configuration files.
pub const PACK_ID: &str = "sigma";

/// One rule file, as the host read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Where it came from (shown in warnings as `NAME:LINE`).
    pub name: String,
    /// Its YAML text (one or more documents).
    pub text: String,
}

/// The pack's configuration: the host fills `sources` from `paths`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The rule files.
    #[serde(default)]
    pub sources: Vec<Source>,
}

/// The pack: every usable Sigma rule and correlation, compiled, and the
/// correlations' state.
pub struct SigmaPack {
    sources: Vec<Source>,
    loaded: Loaded,
    engine: CorrelationEngine,
    correlator: Correlator,
}

impl SigmaPack {
    /// The alert of rule `index` on `event`: the event's normalized fields,
    /// and the text of every CloudTrail field the rule names that the
    /// record has.
    fn alert(&self, index: usize, event: &Event<'_>) -> AlertBuilder {
        let named: Vec<NamedField<'_>> = self.loaded.fields_of[index]
            .iter()
            .filter_map(|name| {
                let value = event.get(name)?;
                let text = match value.comparable() {
                    Some(text) => text.to_owned(),
                    None => value.to_json()?,
                };
                Some(NamedField { name, value: text })
            })
            .collect();
        AlertBuilder::from_event(event)
            .rule(index as u32)
            .field("trailguard.sigma.fields", named)
    }
}

/// A CloudTrail field a rule named, as an alert lists it: its text (a
/// string's, a number's as written, `true`/`false`, or compact JSON for
/// null, objects and arrays), so the list has one shape whatever the field
/// holds.
#[derive(Serialize)]
struct NamedField<'a> {
    name: &'a str,
    value: String,
}

impl Rule for SigmaPack {
    fn info() -> RuleInfo {
        RuleInfo {
            id: PACK_ID.into(),
            name: "Sigma rules".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            severity: Severity::Medium,
            risk_score: 47,
            mitre_techniques: Vec::new(),
            description: "Runs Sigma rules for AWS CloudTrail (logsource product aws, service \
                cloudtrail) given as configuration; each Sigma rule is its own rule with its id, \
                title, level and tags."
                .into(),
            default_config: r#"{"sources":[]}"#.into(),
            tags: Vec::new(),
            references: vec!["https://sigmahq.io/docs/basics/rules.html".into()],
            author: String::new(),
        }
    }

    fn create(text: &str) -> Result<Self, String> {
        let config: Config = trailguard_rule_sdk::config::parse(text, Config::default())?;
        let (loaded, engine) = load(&config.sources);
        Ok(SigmaPack {
            sources: config.sources,
            loaded,
            engine,
            correlator: Correlator::default(),
        })
    }

    fn rules(&self) -> Vec<RuleInfo> {
        self.loaded.infos.clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.loaded.warnings.clone()
    }

    fn fields(&self) -> Vec<String> {
        self.loaded.fields.clone()
    }

    /// Alerts of rules at once; matches a correlation counts are held for
    /// [`Rule::advance`].
    fn process(&mut self, events: &[Event<'_>]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for event in events {
            self.correlator.saw(event.timestamp_ms);
            let mut counted = Vec::new();
            let mut base = None;
            let view = event::SigmaEvent {
                event,
                searched: &self.loaded.searched,
            };
            for result in self.engine.evaluate(&view) {
                let Some(&index) = result
                    .header
                    .rule_id
                    .as_deref()
                    .and_then(|id| self.loaded.index.get(id))
                else {
                    continue;
                };
                if self.loaded.generates[index] {
                    alerts.push(self.alert(index, event).build());
                }
                if self.loaded.feeds[index] {
                    counted.push(index as u32);
                    base.get_or_insert_with(|| AlertBuilder::from_event(event).build().document);
                }
            }
            if let Some(base) = base {
                self.correlator.hold(&self.loaded, event, counted, base);
            }
        }
        alerts
    }

    fn advance(&mut self, watermark_ms: i64) -> Vec<Alert> {
        self.correlator
            .advance(&self.loaded, &mut self.engine, watermark_ms)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.correlator.snapshot(&self.loaded, &self.engine)
    }

    /// Starts from the rules alone, then takes the snapshot's state.
    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let (loaded, mut engine) = load(&self.sources);
        self.correlator = Correlator::restore(state, &loaded, &mut engine)?;
        self.loaded = loaded;
        self.engine = engine;
        Ok(())
    }
}

export_rule!(SigmaPack);

#[cfg(test)]
mod tests;
