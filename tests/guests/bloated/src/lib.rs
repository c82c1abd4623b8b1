//! A rule whose metadata is far over the host's limits, for
//! `tests/adversarial.rs`: a 16 MiB description (copied into every alert,
//! it would multiply what each alert costs the host) and 50,000 technique
//! ids (which a quadratic de-duplication would spend seconds on, outside
//! any deadline). It raises 64 empty alerts per batch.

use trailguard_rule_sdk::{Alert, Event, Rule, RuleInfo, Severity, export_rule};

/// The bloated rule.
pub struct Bloated;

impl Rule for Bloated {
    fn info() -> RuleInfo {
        RuleInfo {
            id: "test-bloated".into(),
            name: "Bloated test rule".into(),
            version: "0.0.1".into(),
            severity: Severity::Low,
            risk_score: 1,
            mitre_techniques: (0..50_000)
                .map(|i| format!("T{:04}.{:03}", i % 10_000, i % 1_000))
                .collect(),
            description: "d".repeat(16 << 20),
            default_config: "{}".into(),
            tags: Vec::new(),
            references: Vec::new(),
            author: String::new(),
        }
    }

    fn create(_config: &str) -> Result<Self, String> {
        Ok(Bloated)
    }

    fn process(&mut self, _events: &[Event<'_>]) -> Vec<Alert> {
        (0..64)
            .map(|i| Alert {
                rule: 0,
                timestamp_ms: i,
                document: "{}".into(),
            })
            .collect()
    }

    fn advance(&mut self, _watermark_ms: i64) -> Vec<Alert> {
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    fn restore(&mut self, _state: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

export_rule!(Bloated);
