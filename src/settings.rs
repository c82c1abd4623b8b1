//! The `--config` file (TOML): run options and per-rule settings.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

/// `[run]`: options that flags can override.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    pub allowed_lateness_minutes: Option<u32>,
    pub batch_size: Option<usize>,
    pub call_timeout_seconds: Option<u64>,
    pub max_memory_mib: Option<usize>,
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub run: RunSettings,
    /// Rule id → that rule's configuration, handed to it as JSON.
    #[serde(default)]
    pub rules: BTreeMap<String, toml::Table>,
}

impl Settings {
    pub fn load(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config {} is invalid", path.display()))
    }

    /// The JSON configuration for a rule (empty: its defaults).
    pub fn rule_config(&self, rule_id: &str) -> String {
        self.rules
            .get(rule_id)
            .and_then(|table| serde_json::to_string(table).ok())
            .unwrap_or_default()
    }
}
