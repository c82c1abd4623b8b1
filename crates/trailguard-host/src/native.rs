//! A rule's logic run natively, without WebAssembly: the baseline that
//! benchmarks compare components against, and a fast path for tests.

use trailguard_ingest::NormalizedEvent;
use trailguard_rule_sdk::{Alert, Event, Rule, RuleInfo};

use crate::filter::Filters;
use crate::{Detector, HostError};

/// A [`Rule`] type run in-process.
pub struct NativeRule<R> {
    rule: R,
    info: RuleInfo,
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
        let filters = Filters::checked(&info.id, rule.filters())?;
        Ok(NativeRule {
            rule,
            info,
            filters,
            config: config.to_owned(),
        })
    }
}

impl<R: Rule + Send> Detector for NativeRule<R> {
    fn info(&self) -> &RuleInfo {
        &self.info
    }

    fn process(&mut self, events: &[NormalizedEvent]) -> Result<Vec<Alert>, HostError> {
        // The same filtering as for a component, so both see the same events.
        let views: Vec<Event<'_>> = if self.filters.is_empty() {
            events.iter().map(NormalizedEvent::view).collect()
        } else {
            events
                .iter()
                .filter(|e| self.filters.pass(e))
                .map(NormalizedEvent::view)
                .collect()
        };
        if views.is_empty() {
            return Ok(Vec::new());
        }
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
