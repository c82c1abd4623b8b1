//! The rule's configuration: Elastic's constants by default, every one of
//! them overridable.

use serde::{Deserialize, Serialize};
use trailguard_rule_sdk::config;
use trailguard_rule_sdk::time::{HOUR_MS, MINUTE_MS};

/// The 29 sensitive actions of Elastic's rule, in its order.
pub const ELASTIC_SENSITIVE_ACTIONS: [&str; 29] = [
    "GetCallerIdentity",
    "GetAccountSummary",
    "ListAccountAliases",
    "GetSecretValue",
    "ListSecrets",
    "DescribeSecret",
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "AttachUserPolicy",
    "AttachRolePolicy",
    "PutUserPolicy",
    "PutRolePolicy",
    "CreateAccessKey",
    "UpdateAccessKey",
    "CreateUser",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "AddUserToGroup",
    "GetObject",
    "ListBuckets",
    "ListObjects",
    "ListObjectsV2",
    "InvokeModel",
    "InvokeModelWithResponseStream",
    "Converse",
];

/// AS numbers of the trusted cloud providers, for the `improved` preset:
/// Amazon (16509, 14618, 8987), Google (15169, 396982, 19527), Microsoft
/// (8075), MongoDB (8011, as the DB-IP / RouteViews table names it).
pub const CLOUD_PROVIDER_ASNS: [u32; 8] = [16509, 14618, 8987, 15169, 396982, 19527, 8075, 8011];

/// Which set of defaults a configuration starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Elastic's rule exactly: trust by organization-name prefix / equality,
    /// case-sensitive.
    ElasticCompatible,
    /// Trust by AS number first, organization names case-insensitively as a
    /// fallback, so MaxMind's `AMAZON-02` is trusted like DB-IP's
    /// `Amazon.com, Inc.`.
    Improved,
}

/// Every threshold, window and list of the rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The preset the other keys default from.
    pub preset: Preset,
    /// Minutes between evaluations; evaluations run at multiples of it (UTC).
    pub interval_minutes: u32,
    /// Look-back window of each evaluation, in hours; a multiple of the interval.
    pub window_hours: u32,
    /// The newest untrusted event must be at most this many minutes old at T.
    pub recency_minutes: u32,
    /// Minimum number of events from trusted networks in the window.
    pub min_trusted_events: u64,
    /// Minimum number of events from untrusted networks in the window.
    pub min_untrusted_events: u64,
    /// Maximum share of untrusted events (untrusted / total).
    pub max_untrusted_ratio: f64,
    /// Minimum number of distinct sensitive actions from untrusted networks.
    pub min_distinct_sensitive_actions: usize,
    /// Maximum number of distinct AS organizations (trusted ones included).
    pub max_distinct_organizations: usize,
    /// An organization whose name starts with one of these is trusted.
    pub trusted_org_prefixes: Vec<String>,
    /// An organization whose name equals one of these is trusted.
    pub trusted_orgs: Vec<String>,
    /// An AS number in this list is trusted, whatever its name.
    pub trusted_asns: Vec<u32>,
    /// Compare organization names ignoring ASCII case.
    pub case_insensitive_orgs: bool,
    /// The actions that count as sensitive.
    pub sensitive_actions: Vec<String>,
    /// How many untrusted events an alert lists (newest first).
    pub max_untrusted_events_in_alert: usize,
}

impl Config {
    /// The defaults of a preset.
    pub fn preset(preset: Preset) -> Config {
        let improved = preset == Preset::Improved;
        Config {
            preset,
            interval_minutes: 60,
            window_hours: 7 * 24,
            recency_minutes: 60,
            min_trusted_events: 100,
            min_untrusted_events: 1,
            max_untrusted_ratio: 0.01,
            min_distinct_sensitive_actions: 2,
            max_distinct_organizations: 5,
            trusted_org_prefixes: vec!["Amazon".into()],
            trusted_orgs: vec![
                "Google LLC".into(),
                "Microsoft Corporation".into(),
                "MongoDB, Inc.".into(),
            ],
            trusted_asns: if improved {
                CLOUD_PROVIDER_ASNS.to_vec()
            } else {
                Vec::new()
            },
            case_insensitive_orgs: improved,
            sensitive_actions: ELASTIC_SENSITIVE_ACTIONS.map(String::from).to_vec(),
            max_untrusted_events_in_alert: 50,
        }
    }

    /// Parses a JSON configuration. Absent keys take the preset's default
    /// (`"preset"` itself defaults to `elastic-compatible`); unknown keys and
    /// inconsistent values are errors that name the key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let preset = config::peek::<Preset>(text, "preset")
            .map_err(|e| format!("{e} (use \"elastic-compatible\" or \"improved\")"))?
            .unwrap_or(Preset::ElasticCompatible);
        let config = config::parse(text, Config::preset(preset))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.interval_minutes == 0 {
            return Err("key `interval_minutes` must be at least 1".into());
        }
        if (u64::from(self.window_hours) * 60) % u64::from(self.interval_minutes) != 0 {
            return Err(format!(
                "key `window_hours` ({}) must be a whole number of intervals (`interval_minutes` = {})",
                self.window_hours, self.interval_minutes
            ));
        }
        if u64::from(self.recency_minutes) > u64::from(self.window_hours) * 60 {
            return Err("key `recency_minutes` must not exceed the window".into());
        }
        if !(0.0..=1.0).contains(&self.max_untrusted_ratio) {
            return Err(format!(
                "key `max_untrusted_ratio` must be between 0 and 1, got {}",
                self.max_untrusted_ratio
            ));
        }
        Ok(())
    }

    /// The evaluation interval in milliseconds.
    pub fn interval_ms(&self) -> i64 {
        i64::from(self.interval_minutes) * MINUTE_MS
    }

    /// The look-back window in milliseconds.
    pub fn window_ms(&self) -> i64 {
        i64::from(self.window_hours) * HOUR_MS
    }

    /// The recency bound in milliseconds.
    pub fn recency_ms(&self) -> i64 {
        i64::from(self.recency_minutes) * MINUTE_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_elastic_defaults() {
        let c = Config::parse("").expect("defaults");
        assert_eq!(c, Config::preset(Preset::ElasticCompatible));
        assert_eq!(c.sensitive_actions.len(), 29);
        assert!(c.trusted_asns.is_empty());
    }

    #[test]
    fn keys_override_the_preset() {
        let c = Config::parse(r#"{"preset":"improved","min_trusted_events":10}"#).expect("valid");
        assert_eq!(c.min_trusted_events, 10);
        assert!(c.case_insensitive_orgs);
        assert_eq!(c.trusted_asns, CLOUD_PROVIDER_ASNS.to_vec());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse(r#"{"min_trusted":10}"#).expect_err("unknown key");
        assert!(err.contains("min_trusted"), "{err}");
    }

    #[test]
    fn wrong_type_and_inconsistent_values_are_errors() {
        assert!(Config::parse(r#"{"window_hours":"a week"}"#).is_err());
        assert!(Config::parse(r#"{"interval_minutes":0}"#).is_err());
        assert!(Config::parse(r#"{"interval_minutes":50}"#).is_err());
        assert!(Config::parse(r#"{"max_untrusted_ratio":2}"#).is_err());
        assert!(Config::parse(r#"{"preset":"lenient"}"#).is_err());
        assert!(Config::parse("[1]").is_err());
    }
}
