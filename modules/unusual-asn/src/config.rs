//! The rule's configuration.

use serde::{Deserialize, Serialize};
use trailguard_rule_sdk::config;
use trailguard_rule_sdk::time::DAY_MS;

/// What counts as "a network" for an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Term {
    /// The AS organization name (the AS number where the database has none).
    /// One organization often announces many AS numbers; keying on the name
    /// keeps a user whose address moves between them from alerting.
    Organization,
    /// The AS number.
    Number,
}

/// Every window and list of the rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What a network is: `"organization"` (default) or `"number"`.
    pub term: Term,
    /// A network not seen for the identity within this many days before an
    /// event is unusual. Default 10, as Elastic's AWS new-terms rules.
    pub history_days: u32,
    /// An identity must have been observed at least this many days before
    /// its calls can alert; `null` means the same as `history_days`.
    pub learning_days: Option<u32>,
    /// Organizations that never alert (exact names, ignoring ASCII case).
    pub ignore_organizations: Vec<String>,
    /// AS numbers that never alert.
    pub ignore_asns: Vec<u32>,
    /// How many of the identity's usual networks an alert lists.
    pub usual_networks_shown: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            term: Term::Organization,
            history_days: 10,
            learning_days: None,
            ignore_organizations: Vec::new(),
            ignore_asns: Vec::new(),
            usual_networks_shown: 5,
        }
    }
}

impl Config {
    /// Parses a JSON configuration over the defaults; errors name the key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut config = config::parse(text, Config::default())?;
        if config.history_days == 0 {
            return Err("key `history_days` must be at least 1".into());
        }
        config.ignore_organizations = config
            .ignore_organizations
            .iter()
            .map(|o| o.to_ascii_lowercase())
            .collect();
        Ok(config)
    }

    /// The history window in milliseconds.
    pub fn history_ms(&self) -> i64 {
        i64::from(self.history_days) * DAY_MS
    }

    /// The learning period in milliseconds.
    pub fn learning_ms(&self) -> i64 {
        i64::from(self.learning_days.unwrap_or(self.history_days)) * DAY_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::parse("").expect("defaults");
        assert_eq!(
            (c.history_ms(), c.learning_ms()),
            (10 * DAY_MS, 10 * DAY_MS)
        );
        let c = Config::parse(r#"{"learning_days":2,"term":"number"}"#).expect("valid");
        assert_eq!((c.learning_ms(), c.term), (2 * DAY_MS, Term::Number));
        assert!(Config::parse(r#"{"history_days":0}"#).is_err());
        assert!(Config::parse(r#"{"term":"asn"}"#).is_err());
        let err = Config::parse(r#"{"history":3}"#).expect_err("unknown");
        assert!(err.contains("history"), "{err}");
    }
}
