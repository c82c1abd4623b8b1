//! Rule `aws-sensitive-untrusted-asn`: sensitive AWS API actions from an
//! untrusted network by an identity whose traffic normally comes from cloud
//! providers. The logic of Elastic's ES|QL rule "AWS Rare Source AS
//! Organization Activity", restated in `../shared/specs/rules.md` (rule A).
//!
//! # How it works
//!
//! Every `interval` (an hour) at time T the rule looks at each identity's
//! counted events with `T - window <= t <= T`. Evaluating every identity every
//! hour would cost work for identities that cannot alert, so the rule keeps
//! per-identity aggregates in *slots* and an index of which identities can
//! alert at which T:
//!
//! - Time is cut into slots: slot `2k` holds events exactly at `k * interval`,
//!   slot `2k + 1` those strictly between `k * interval` and `(k + 1) *
//!   interval`. The window of T = `k * interval` is then exactly the slot range
//!   `[2(k - n), 2k]` with `n` intervals per window, boundaries included.
//! - An alert needs an untrusted event within `recency` before T, so each
//!   untrusted event registers its identity as a candidate for the few T with
//!   `T - recency <= t <= T`. At an evaluation only candidates are looked at.
//!
//! Late events (older than an evaluation that already ran) still count for
//! later windows; evaluations that already ran are not repeated.

mod config;
mod window;

pub use config::{CLOUD_PROVIDER_ASNS, Config, ELASTIC_SENSITIVE_ACTIONS, Preset};
use trailguard_rule_sdk::{Alert, Event, Rule, RuleInfo, Severity, export_rule};
pub use window::Detector;

/// The rule's id.
pub const RULE_ID: &str = "aws-sensitive-untrusted-asn";

/// The rule as a [`Rule`]: configuration plus window state.
pub struct SensitiveUntrustedAsn(Detector);

impl Rule for SensitiveUntrustedAsn {
    fn info() -> RuleInfo {
        RuleInfo {
            id: RULE_ID.into(),
            name: "AWS Sensitive API Actions from Untrusted ASN".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            severity: Severity::High,
            risk_score: 73,
            mitre_techniques: vec!["T1078.004".into()],
            description: "An identity whose API traffic comes almost only from cloud-provider \
                networks (at least 100 calls in 7 days) made at least two different sensitive \
                calls in the last hour from another network, which makes up at most 1% of its \
                traffic. Typical of stolen CI or automation credentials replayed by an attacker. \
                Same logic as Elastic's rule \"AWS Rare Source AS Organization Activity\"."
                .into(),
            default_config: serde_json::to_string(&Config::preset(Preset::ElasticCompatible))
                .unwrap_or_default(),
            tags: Vec::new(),
            references: Vec::new(),
            author: String::new(),
        }
    }

    fn create(config: &str) -> Result<Self, String> {
        Ok(SensitiveUntrustedAsn(Detector::new(Config::parse(config)?)))
    }

    fn process(&mut self, events: &[Event<'_>]) -> Vec<Alert> {
        for event in events {
            self.0.observe(event);
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

export_rule!(SensitiveUntrustedAsn);

#[cfg(test)]
mod tests;
