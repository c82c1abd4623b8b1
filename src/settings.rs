//! The `--config` file (TOML): run options and per-rule settings.

use std::collections::BTreeMap;
use std::path::Path;

use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use trailguard_host::{Limits, RecoveryPolicy};

/// `[run]`: options that flags can override, resource limits and the
/// recovery policy. Absent keys take the documented defaults
/// (`trailguard_host::Limits`, `trailguard_host::RecoveryPolicy`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    pub allowed_lateness_minutes: Option<u32>,
    pub batch_size: Option<usize>,
    pub call_timeout_ms: Option<u64>,
    pub max_memory_mib: Option<usize>,
    pub max_wasm_stack_kib: Option<usize>,
    pub max_alerts_per_call: Option<usize>,
    pub max_alert_mib_per_call: Option<usize>,
    pub max_snapshot_mib: Option<usize>,
    pub max_component_mib: Option<u64>,
    pub max_compile_seconds: Option<u64>,
    pub checkpoint_every_batches: Option<usize>,
    pub max_restarts: Option<u32>,
}

impl RunSettings {
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        Limits {
            call_timeout: self
                .call_timeout_ms
                .map_or(d.call_timeout, Duration::from_millis),
            max_memory_bytes: self.max_memory_mib.map_or(d.max_memory_bytes, |m| m << 20),
            max_table_elements: d.max_table_elements,
            max_wasm_stack: self
                .max_wasm_stack_kib
                .map_or(d.max_wasm_stack, |k| k << 10),
            max_alerts_per_call: self.max_alerts_per_call.unwrap_or(d.max_alerts_per_call),
            max_alert_bytes_per_call: self
                .max_alert_mib_per_call
                .map_or(d.max_alert_bytes_per_call, |m| m << 20),
            max_snapshot_bytes: self
                .max_snapshot_mib
                .map_or(d.max_snapshot_bytes, |m| m << 20),
            max_component_bytes: self
                .max_component_mib
                .map_or(d.max_component_bytes, |m| m << 20),
            max_compile_time: self
                .max_compile_seconds
                .map_or(d.max_compile_time, Duration::from_secs),
        }
    }

    pub fn recovery(&self) -> RecoveryPolicy {
        let d = RecoveryPolicy::default();
        RecoveryPolicy {
            checkpoint_every: self
                .checkpoint_every_batches
                .unwrap_or(d.checkpoint_every)
                .max(1),
            max_restarts: self.max_restarts.unwrap_or(d.max_restarts),
        }
    }
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
