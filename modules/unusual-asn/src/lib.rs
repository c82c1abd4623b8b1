//! Rule `aws-unusual-asn`: an AWS API call from a network (source AS) that
//! the identity has not used within its history window: rule B of
//! `../shared/specs/rules.md`, a "new terms" detection as Elastic builds them.
//!
//! # How it works
//!
//! Key: `(cloud.account.id, user.name, identity type)`. Term: the source AS
//! organization name (the AS number where there is no name; or always the
//! number, by configuration). An event alerts when its term was not seen for
//! its key in the `history` before it and the key was first seen at least
//! `learning` before it. Every counted event marks its term as seen.
//!
//! The answer depends on event order, and deliveries are not sorted, so the
//! rule holds events back until the host's watermark passes them and then
//! processes them in event-time order (ties by `event.id`): events within the
//! allowed lateness give exactly the alerts of the same events in time order.
//! A late event is processed at the next watermark, after newer events.
//!
//! State stays bounded: a term unseen for longer than the history window is
//! forgotten. What remains of an identity with no recent terms is its key
//! and first sighting, so memory grows with the number of identities, not
//! with time or traffic.

mod config;
mod state;

pub use config::{Config, Term};
pub use state::Detector;
use trailguard_rule_sdk::{Alert, Event, Rule, RuleInfo, Severity, export_rule, serde_json};

/// The rule's id.
pub const RULE_ID: &str = "aws-unusual-asn";

/// The rule as a [`Rule`].
pub struct UnusualAsn(Detector);

impl Rule for UnusualAsn {
    fn info() -> RuleInfo {
        RuleInfo {
            id: RULE_ID.into(),
            name: "AWS API Calls from Unusual ASN".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            severity: Severity::Medium,
            risk_score: 47,
            mitre_techniques: vec!["T1078.004".into()],
            description: "An identity made an AWS API call from a network (autonomous system \
                organization) it has not used in the previous 10 days, after having been seen for \
                at least 10 days. Stolen credentials are usually replayed from the attacker's own \
                network."
                .into(),
            default_config: serde_json::to_string(&Config::default()).unwrap_or_default(),
            tags: Vec::new(),
            references: Vec::new(),
            author: String::new(),
        }
    }

    fn create(config: &str) -> Result<Self, String> {
        Ok(UnusualAsn(Detector::new(Config::parse(config)?)))
    }

    fn process(&mut self, events: &[Event<'_>]) -> Vec<Alert> {
        for event in events {
            self.0.hold(event);
        }
        Vec::new()
    }

    fn advance(&mut self, watermark_ms: i64) -> Vec<Alert> {
        self.0.advance(watermark_ms)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.snapshot()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        self.0.restore(state)
    }
}

export_rule!(UnusualAsn);

#[cfg(test)]
mod tests;
