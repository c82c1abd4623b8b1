//! A rule's logic run natively, without WebAssembly: the baseline that
//! benchmarks compare components against, and a fast path for tests.

use trailguard_ingest::NormalizedEvent;
use trailguard_rule_sdk::{Alert, Event, RecordFields, Rule, RuleInfo, Value, declared_paths};

use crate::filter::Filters;
use crate::info::{check_rules, check_warnings};
use crate::record::RecordMap;
use crate::{Detector, HostError};

/// A [`Rule`] type run in-process.
pub struct NativeRule<R> {
    rule: R,
    info: RuleInfo,
    rules: Vec<RuleInfo>,
    warnings: Vec<String>,
    record: RecordMap,
    filters: Filters,
    config: String,
}

impl<R> std::fmt::Debug for NativeRule<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeRule")
            .field("rule", &self.info.id)
            .finish()
    }
}

impl<R: Rule> NativeRule<R> {
    /// Creates the rule from a JSON configuration.
    pub fn new(config: &str) -> Result<Self, HostError> {
        let info = R::info();
        let rule = R::create(config).map_err(|message| HostError::Config {
            rule: info.id.clone(),
            message,
        })?;
        let rules = check_rules(rule.rules()).map_err(|message| HostError::Rule {
            rule: info.id.clone(),
            call: "rules",
            message,
        })?;
        let warnings = check_warnings(rule.warnings());
        let declared = rule.filters();
        let record = RecordMap::checked(&info.id, declared_paths(rule.fields(), &declared))?;
        let filters = Filters::checked(&info.id, declared, &record)?;
        Ok(NativeRule {
            rule,
            info,
            rules,
            warnings,
            record,
            filters,
            config: config.to_owned(),
        })
    }
}

impl<R: Rule + Send> Detector for NativeRule<R> {
    fn info(&self) -> &RuleInfo {
        &self.info
    }

    fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn record_paths(&self) -> &[String] {
        self.record.declared()
    }

    fn event_test(&self) -> Option<trailguard_ingest::EventTest> {
        self.filters.standard_test()
    }

    fn process(&mut self, events: &[NormalizedEvent]) -> Result<Vec<Alert>, HostError> {
        // The same filtering as for a component, so both see the same events.
        if let Some(first) = events.first() {
            self.record.refresh(first.record.paths());
        }
        let (filters, record) = (&self.filters, &self.record);
        let passing: Vec<&NormalizedEvent> = if filters.is_empty() {
            events.iter().collect()
        } else {
            events.iter().filter(|e| filters.pass(e, record)).collect()
        };
        if passing.is_empty() {
            return Ok(Vec::new());
        }
        let n = record.declared().len();
        let values: Vec<Option<Value<'_>>> = if n == 0 {
            Vec::new()
        } else {
            passing
                .iter()
                .flat_map(|e| record.values(e).map(|v| v.and_then(|v| v.view())))
                .collect()
        };
        let paths = record.declared();
        let views: Vec<Event<'_>> = passing
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let own = values.get(i * n..(i + 1) * n).unwrap_or(&[]);
                e.view_with(RecordFields::new(paths, own))
            })
            .collect();
        Ok(self.rule.process(&views))
    }

    fn advance(&mut self, watermark_ms: i64) -> Result<Vec<Alert>, HostError> {
        Ok(self.rule.advance(watermark_ms))
    }

    fn snapshot(&mut self) -> Result<Vec<u8>, HostError> {
        Ok(self.rule.snapshot())
    }

    fn restart(&mut self) -> Result<(), HostError> {
        self.rule = R::create(&self.config).map_err(|message| HostError::Config {
            rule: self.info.id.clone(),
            message,
        })?;
        Ok(())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), HostError> {
        self.rule.restore(state).map_err(|message| HostError::Rule {
            rule: self.info.id.clone(),
            call: "restore",
            message,
        })
    }
}
