//! The configuration file (`trailguard.toml`): input, output and run
//! options, resource limits, and per-rule settings. Every key is shown and
//! explained in `trailguard.example.toml`; command-line flags override it.
//!
//! Loading reports every problem at once, each with its line and column:
//! unknown keys (a typo must not silently fall back to a default), values of
//! the wrong type, and invalid suppression settings. Relative paths are
//! relative to the file's directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use trailguard_host::{Limits, RecoveryPolicy, Suppression};

/// `[input]`: what to read.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct InputSettings {
    pub paths: Option<Vec<PathBuf>>,
    pub since: Option<TimeSetting>,
    pub until: Option<TimeSetting>,
    pub dedup_window_minutes: Option<u32>,
    pub dead_letter: Option<PathBuf>,
    pub strict: Option<bool>,
    pub max_document_mib: Option<u32>,
    pub max_input_mib: Option<u64>,
    pub max_future_minutes: Option<u32>,
}

/// `[output]`: where alerts and reports go.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct OutputSettings {
    pub format: Option<String>,
    pub path: Option<PathBuf>,
    pub elastic_index: Option<String>,
    pub report: Option<PathBuf>,
    pub stats: Option<PathBuf>,
}

/// `[run]`: rules, enrichment, event time, durable state, resource limits
/// and the recovery policy. Absent keys take the documented defaults
/// (`trailguard_host::Limits`, `trailguard_host::RecoveryPolicy`).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RunSettings {
    pub rules: Option<Vec<PathBuf>>,
    pub asn_db: Option<PathBuf>,
    pub allowed_lateness_minutes: Option<u32>,
    pub max_time_jump_hours: Option<u32>,
    pub batch_size: Option<usize>,
    pub rule_threads: Option<usize>,
    pub state_dir: Option<PathBuf>,
    pub checkpoint_events: Option<u64>,
    pub checkpoint_seconds: Option<u64>,
    pub kafka_key_file: Option<PathBuf>,
    pub call_timeout_ms: Option<u64>,
    pub max_memory_mib: Option<usize>,
    pub max_wasm_stack_kib: Option<usize>,
    pub max_alerts_per_call: Option<usize>,
    pub max_alert_mib_per_call: Option<usize>,
    pub max_snapshot_mib: Option<usize>,
    pub max_component_mib: Option<u64>,
    pub max_compile_seconds: Option<u64>,
    pub checkpoint_every_batches: Option<usize>,
    pub max_replay_events: Option<usize>,
    pub snapshot_budget_percent: Option<u32>,
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
            max_batch_text_bytes: d.max_batch_text_bytes,
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
            max_replay_events: self.max_replay_events.unwrap_or(d.max_replay_events).max(1),
            snapshot_budget_percent: self
                .snapshot_budget_percent
                .unwrap_or(d.snapshot_budget_percent),
            max_restarts: self.max_restarts.unwrap_or(d.max_restarts),
        }
    }
}

/// A time in the file: a TOML date-time or date, or an RFC 3339 string.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TimeSetting {
    Toml(toml::value::Datetime),
    Text(String),
}

impl TimeSetting {
    pub fn text(&self) -> String {
        match self {
            TimeSetting::Toml(t) => t.to_string(),
            TimeSetting::Text(s) => s.clone(),
        }
    }
}

/// `[rules.RULE-ID.alert_suppression]`: read by the host, not the rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressionSettings {
    group_by: Vec<String>,
    duration_minutes: u32,
}

/// The reserved key of a rule's table that the host reads.
const SUPPRESSION_KEY: &str = "alert_suppression";

/// The whole file.
#[derive(Debug, Default, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub input: InputSettings,
    #[serde(default)]
    pub output: OutputSettings,
    #[serde(default)]
    pub run: RunSettings,
    /// Rule id → that rule's configuration, handed to it as JSON (without
    /// `alert_suppression`).
    #[serde(default)]
    pub rules: BTreeMap<String, toml::Table>,
    /// Rule id → how its alerts are suppressed.
    #[serde(skip)]
    pub suppression: BTreeMap<String, Suppression>,
    /// The file's text, to locate problems found later (a rule refusing its
    /// configuration).
    #[serde(skip)]
    source: Option<(PathBuf, String)>,
}

/// One problem in a configuration file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub at: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Every problem of a file that could not be loaded.
#[derive(Debug)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem(s) in the configuration:")?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        write!(
            f,
            "\n(every key is shown and explained in trailguard.example.toml; `trailguard config check FILE` checks a file)"
        )
    }
}

impl std::error::Error for Problems {}

impl Settings {
    /// Reads and checks `path`: every unknown key, type error and invalid
    /// suppression is reported (all of them, with locations).
    pub fn load(path: &Path) -> Result<Settings, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem {
                file: path.to_owned(),
                at: None,
                message: format!("cannot read it: {e}"),
            }])
        })?;
        Settings::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Settings, Problems> {
        let problem = |at: Option<(usize, usize)>, message: String| Problem {
            file: path.to_owned(),
            at,
            message,
        };
        let mut unknown = Vec::new();
        let deserializer = match toml::de::Deserializer::parse(text) {
            Ok(d) => d,
            Err(e) => {
                return Err(Problems(vec![problem(
                    e.span().map(|s| line_col(text, s.start)),
                    e.message().to_owned(),
                )]));
            }
        };
        let parsed: Result<Settings, _> =
            serde_ignored::deserialize(deserializer, |p| unknown.push(p.to_string()));
        let mut settings = match parsed {
            Ok(s) => s,
            Err(e) => {
                return Err(Problems(vec![problem(
                    e.span().map(|s| line_col(text, s.start)),
                    e.message().to_owned(),
                )]));
            }
        };
        let mut problems: Vec<Problem> = unknown
            .iter()
            .map(|key| {
                let segments: Vec<&str> = key.split('.').collect();
                let section = match segments.as_slice() {
                    [_] => "at the top level".to_owned(),
                    [parents @ .., _] => format!("in [{}]", parents.join(".")),
                    [] => String::new(),
                };
                problem(
                    locate(text, &segments),
                    format!("unknown key `{}` {section}", segments.last().unwrap_or(&"")),
                )
            })
            .collect();
        for (rule, table) in &mut settings.rules {
            let Some(value) = table.remove(SUPPRESSION_KEY) else {
                continue;
            };
            let at = locate(text, &["rules", rule, SUPPRESSION_KEY]);
            match SuppressionSettings::deserialize(value) {
                Ok(s) if s.group_by.is_empty() => problems.push(problem(
                    at,
                    format!("[rules.{rule}.{SUPPRESSION_KEY}] group_by is empty: name the alert fields that make a group (e.g. [\"user.name\"])"),
                )),
                Ok(s) if s.duration_minutes == 0 => problems.push(problem(
                    at,
                    format!("[rules.{rule}.{SUPPRESSION_KEY}] duration_minutes must be at least 1"),
                )),
                Ok(s) => {
                    settings.suppression.insert(
                        rule.clone(),
                        Suppression {
                            group_by: s.group_by,
                            duration_ms: i64::from(s.duration_minutes) * 60_000,
                        },
                    );
                }
                Err(e) => problems.push(problem(
                    at,
                    format!("[rules.{rule}.{SUPPRESSION_KEY}]: {}", e.message()),
                )),
            }
        }
        if let Some(format) = &settings.output.format
            && let Err(e) = format.parse::<trailguard_format::Format>()
        {
            problems.push(problem(locate(text, &["output", "format"]), e.to_string()));
        }
        let mib = |v: Option<u64>| {
            v.is_some_and(|m| m.checked_mul(1 << 20).is_none_or(|b| b > usize::MAX as u64))
        };
        for (key, too_big) in [
            (
                "max_memory_mib",
                mib(settings.run.max_memory_mib.map(|m| m as u64)),
            ),
            (
                "max_wasm_stack_kib",
                mib(settings.run.max_wasm_stack_kib.map(|k| k as u64 >> 10)),
            ),
            (
                "max_alert_mib_per_call",
                mib(settings.run.max_alert_mib_per_call.map(|m| m as u64)),
            ),
            (
                "max_snapshot_mib",
                mib(settings.run.max_snapshot_mib.map(|m| m as u64)),
            ),
            ("max_component_mib", mib(settings.run.max_component_mib)),
        ] {
            if too_big {
                problems.push(problem(
                    locate(text, &["run", key]),
                    format!("[run] {key} is too large to be a size in bytes"),
                ));
            }
        }
        if mib(settings.input.max_input_mib) {
            problems.push(problem(
                locate(text, &["input", "max_input_mib"]),
                "[input] max_input_mib is too large to be a size in bytes".into(),
            ));
        }
        let bound = |t: &Option<TimeSetting>| {
            t.as_ref()
                .and_then(|t| crate::run::parse_time_bound(&t.text()).ok())
        };
        if let (Some(since), Some(until)) =
            (bound(&settings.input.since), bound(&settings.input.until))
            && since >= until
        {
            problems.push(problem(
                locate(text, &["input", "until"]),
                "[input] until must be after since: nothing would be read".into(),
            ));
        }
        for (key, value) in [
            ("since", &settings.input.since),
            ("until", &settings.input.until),
        ] {
            if let Some(t) = value
                && let Err(e) = crate::run::parse_time_bound(&t.text())
            {
                problems.push(problem(locate(text, &["input", key]), e));
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.at);
            return Err(Problems(problems));
        }
        settings.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        settings.source = Some((path.to_owned(), text.to_owned()));
        Ok(settings)
    }

    /// Paths in the file are relative to its directory.
    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && p.as_os_str() != "-" {
                *p = base.join(&*p);
            }
        };
        for list in [&mut self.input.paths, &mut self.run.rules]
            .into_iter()
            .flatten()
        {
            list.iter_mut().for_each(fix);
        }
        // The Sigma pack's rule files (read by the host, see `sigma.rs`).
        if let Some(toml::Value::Array(paths)) = self
            .rules
            .get_mut(crate::sigma::PACK_ID)
            .and_then(|t| t.get_mut("paths"))
        {
            for path in paths {
                if let toml::Value::String(s) = path {
                    let mut p = PathBuf::from(&*s);
                    fix(&mut p);
                    *s = p.display().to_string();
                }
            }
        }
        for p in [
            &mut self.input.dead_letter,
            &mut self.output.path,
            &mut self.output.report,
            &mut self.output.stats,
            &mut self.run.asn_db,
            &mut self.run.state_dir,
            &mut self.run.kafka_key_file,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
    }

    /// Rule id → its JSON configuration, for every `[rules.ID]` table.
    pub fn rule_configs(&self) -> BTreeMap<String, String> {
        self.rules
            .keys()
            .map(|id| (id.clone(), self.rule_config(id)))
            .collect()
    }

    /// The JSON configuration for a rule (empty: its defaults).
    pub fn rule_config(&self, rule_id: &str) -> String {
        self.rules
            .get(rule_id)
            .filter(|table| !table.is_empty())
            .and_then(|table| serde_json::to_string(table).ok())
            .unwrap_or_default()
    }

    /// A problem with rule `rule_id`'s table (it refused its configuration),
    /// located at the key the rule's message names in backquotes, if any,
    /// else at the table.
    pub fn rule_problem(&self, rule_id: &str, message: &str) -> Option<Problem> {
        let (file, text) = self.source.as_ref()?;
        let key = message.split('`').nth(1).filter(|k| {
            self.rules
                .get(rule_id)
                .is_some_and(|table| table.contains_key(*k))
        });
        let at = match key {
            Some(key) => locate(text, &["rules", rule_id, key]),
            None => None,
        }
        .or_else(|| locate(text, &["rules", rule_id]));
        Some(Problem {
            file: file.clone(),
            at,
            message: format!("[rules.{rule_id}]: {message}"),
        })
    }
}

/// `trailguard config check FILE`: every problem of the file, including
/// rule tables the rules refuse; exit status 1 if there is any.
pub fn check(args: crate::cli::ConfigCheckArgs) -> anyhow::Result<std::process::ExitCode> {
    use trailguard_host::{HostError, Runtime, RuntimeOptions};

    let settings = match Settings::load(&args.file) {
        Ok(s) => s,
        Err(problems) => {
            for p in &problems.0 {
                anstream::eprintln!("{}", crate::style::alarm(&p.to_string()));
            }
            anstream::eprintln!("{} problem(s) in {}", problems.0.len(), args.file.display());
            return Ok(std::process::ExitCode::from(1));
        }
    };
    let mut problems = Vec::new();
    let at = |path: &[&str]| {
        settings
            .source
            .as_ref()
            .and_then(|(_, text)| locate(text, path))
    };
    let rule_paths = if args.rules.rules.is_empty() {
        settings.run.rules.clone().unwrap_or_default()
    } else {
        args.rules.rules.clone()
    };
    let runtime = Runtime::new(RuntimeOptions {
        limits: settings.run.limits(),
        cache_dir: crate::rules::default_cache_dir(),
        ..RuntimeOptions::default()
    })?;
    // The Sigma pack's configuration names files the host reads.
    let configs = match crate::sigma::rule_configs(&settings, &args.rules.sigma, None) {
        Ok(configs) => configs,
        Err(e) => {
            problems.push(Problem {
                file: args.file.clone(),
                at: at(&["rules", crate::sigma::PACK_ID, "paths"]),
                message: format!("[rules.sigma] paths: {e:#}"),
            });
            settings.rule_configs()
        }
    };
    let config_of =
        |info: &trailguard_host::RuleInfo| configs.get(&info.id).cloned().unwrap_or_default();
    let mut loaded = Vec::new();
    for file in crate::rules::rule_files(&rule_paths)? {
        match runtime.load_rule(&file, config_of) {
            Ok(rule) => {
                use trailguard_host::Detector;
                for warning in rule.warnings() {
                    anstream::eprintln!(
                        "trailguard: {}: rule {}: {warning}",
                        crate::style::warning_label(),
                        rule.info().id
                    );
                }
                loaded.push(rule.info().id.clone());
            }
            Err(HostError::Config { rule, message }) => {
                problems.extend(settings.rule_problem(&rule, &message));
                loaded.push(rule);
            }
            Err(e) => problems.push(Problem {
                file: args.file.clone(),
                at: at(&["run", "rules"]),
                message: format!("rule {}: {e}", file.display()),
            }),
        }
    }
    for id in settings.rules.keys() {
        if !loaded.contains(id) {
            problems.push(Problem {
                file: args.file.clone(),
                at: at(&["rules", id]),
                message: format!(
                    "[rules.{id}]: no loaded rule has this id (loaded: {})",
                    loaded.join(", ")
                ),
            });
        }
    }
    let exists = |path: &Option<PathBuf>, key: &[&str], what: &str, problems: &mut Vec<Problem>| {
        if let Some(p) = path
            && !p.exists()
        {
            problems.push(Problem {
                file: args.file.clone(),
                at: at(key),
                message: format!("{what} {} does not exist", p.display()),
            });
        }
    };
    exists(
        &settings.run.asn_db,
        &["run", "asn_db"],
        "ASN database",
        &mut problems,
    );
    for input in settings.input.paths.iter().flatten() {
        if input.as_os_str() != "-" {
            exists(
                &Some(input.clone()),
                &["input", "paths"],
                "input",
                &mut problems,
            );
        }
    }
    problems.sort_by_key(|p| p.at);
    for p in &problems {
        anstream::eprintln!("{}", crate::style::alarm(&p.to_string()));
    }
    if problems.is_empty() {
        eprintln!(
            "{}: OK ({} rule(s) accept their settings: {})",
            args.file.display(),
            loaded.len(),
            loaded.join(", ")
        );
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        anstream::eprintln!("{} problem(s) in {}", problems.len(), args.file.display());
        Ok(std::process::ExitCode::from(1))
    }
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    (line, col)
}

/// Where the key at `path` is written.
fn locate(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut span = None;
    for (i, segment) in path.iter().enumerate() {
        let (key, value) = table.iter().find(|(k, _)| k.get_ref() == segment)?;
        span = Some(key.span());
        if i + 1 < path.len() {
            match value.get_ref() {
                DeValue::Table(t) => table = t,
                _ => return None,
            }
        }
    }
    span.map(|s| line_col(text, s.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, Problems> {
        Settings::parse(Path::new("/etc/trailguard.toml"), text)
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_location() {
        let text = "[run]\nbatch_sise = 10\n\n[output]\nformat = \"ecs\"\ncolour = true\n\n[inptu]\npaths = []\n";
        let problems = parse(text).expect_err("unknown keys").0;
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "/etc/trailguard.toml:2:1: unknown key `batch_sise` in [run]",
                "/etc/trailguard.toml:6:1: unknown key `colour` in [output]",
                "/etc/trailguard.toml:8:2: unknown key `inptu` at the top level",
            ]
        );
    }

    #[test]
    fn a_wrong_type_is_located() {
        let problems = parse("[run]\nbatch_size = \"big\"\n").expect_err("type").0;
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].at, Some((2, 14)), "{}", problems[0]);
    }

    #[test]
    fn suppression_is_read_by_the_host_not_the_rule() {
        let text = "[rules.r]\nthreshold = 3\n[rules.r.alert_suppression]\ngroup_by = [\"user.name\"]\nduration_minutes = 60\n";
        let settings = parse(text).expect("valid");
        assert_eq!(settings.rule_config("r"), r#"{"threshold":3}"#);
        assert_eq!(
            settings.suppression["r"],
            Suppression {
                group_by: vec!["user.name".into()],
                duration_ms: 3_600_000
            }
        );
        let bad = "[rules.r.alert_suppression]\ngroup_by = []\nduration_minutes = 60\nwindow = 3\n";
        let problems = parse(bad).expect_err("invalid").0;
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("unknown field `window`"),
            "{}",
            problems[0]
        );
        assert_eq!(problems[0].at, Some((1, 10)));
    }

    #[test]
    fn values_are_checked_and_paths_resolved() {
        let problems = parse("[output]\nformat = \"cef\"\n[input]\nsince = \"last week\"\n")
            .expect_err("bad values")
            .0;
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].at, Some((2, 1)));
        assert_eq!(problems[1].at, Some((4, 1)));
        let settings = parse("[input]\npaths = [\"logs\", \"/abs\"]\nsince = 2026-04-01\n[run]\nasn_db = \"asn.mmdb\"\n").expect("valid");
        assert_eq!(
            settings.input.paths,
            Some(vec![PathBuf::from("/etc/logs"), PathBuf::from("/abs")])
        );
        assert_eq!(settings.run.asn_db, Some(PathBuf::from("/etc/asn.mmdb")));
    }

    #[test]
    fn the_example_file_shows_every_key() {
        let shipped = include_str!("../trailguard.example.toml");
        parse(shipped).expect("the example is valid as shipped");
        // Keys shown commented out (`# key = value`) count as shown.
        let text: String = shipped
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
                {
                    rest
                }
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let settings = parse(&text).expect("the example is valid with every key");
        for (section, keys) in [
            ("input", serde_json::to_value(&settings.input)),
            ("output", serde_json::to_value(&settings.output)),
            ("run", serde_json::to_value(&settings.run)),
        ] {
            let keys = keys.expect("serializable");
            let missing: Vec<&String> = keys
                .as_object()
                .expect("a table")
                .iter()
                .filter(|(_, v)| v.is_null())
                .map(|(k, _)| k)
                .collect();
            assert!(missing.is_empty(), "[{section}] lacks {missing:?}");
        }
        assert!(settings.suppression.contains_key("aws-unusual-asn"));
        for rule in [
            "aws-sensitive-untrusted-asn",
            "aws-unusual-asn",
            "aws-root-activity",
        ] {
            assert!(settings.rules.contains_key(rule), "{rule}");
        }
    }

    #[test]
    fn a_rule_problem_points_at_the_key() {
        let settings = parse("[rules.r]\na = 1\nmin_trusted = 2\n").expect("valid");
        let p = settings
            .rule_problem(
                "r",
                "invalid configuration: unknown field `min_trusted`, expected one of `a`",
            )
            .expect("located");
        assert_eq!(p.at, Some((3, 1)));
        let p = settings.rule_problem("r", "no key named").expect("located");
        assert_eq!(p.at, Some((1, 8)));
    }
}
