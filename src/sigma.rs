//! Sigma rule files for the `sigma` rule pack: found, read and handed to the
//! component as its configuration (the component parses them in its
//! sandbox; the host only reads bytes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use trailguard_host::RuleFile;
use trailguard_host::trust::TrustPolicy;

use crate::settings::Settings;

/// The pack's rule id (`[rules.sigma]`).
pub const PACK_ID: &str = "sigma";
/// Largest Sigma rule file: SigmaHQ's are 1-5 KiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Most bytes of Sigma rules in all.
const MAX_TOTAL_BYTES: u64 = 64 << 20;

/// Rule id → JSON configuration for every rule: the configuration file's
/// `[rules.ID]` tables, with the Sigma pack's rule files read into its
/// configuration when any are named (see [`pack_config`]). With a trust
/// policy (`--require-signed`), every rule file must pass it.
pub fn rule_configs(
    settings: &Settings,
    extra: &[PathBuf],
    trust: Option<&TrustPolicy>,
) -> Result<BTreeMap<String, String>> {
    let mut configs = settings.rule_configs();
    if let Some(config) = pack_config(settings, extra, trust)? {
        configs.insert(PACK_ID.into(), config);
    }
    Ok(configs)
}

/// The pack's configuration when Sigma rules are named (`[rules.sigma]
/// paths`, relative to the configuration file, and `extra` from
/// `--sigma`): the table with `paths` replaced by `sources`, each file's
/// name and text. `None` when neither names any.
fn pack_config(
    settings: &Settings,
    extra: &[PathBuf],
    trust: Option<&TrustPolicy>,
) -> Result<Option<String>> {
    match named(settings, extra)? {
        Some((table, paths)) => Ok(Some(config_of(table, &paths, trust)?)),
        None => Ok(None),
    }
}

/// The `[rules.sigma]` table without `paths`, and the paths it and `extra`
/// name; `None` when neither names any.
fn named(settings: &Settings, extra: &[PathBuf]) -> Result<Option<(toml::Table, Vec<PathBuf>)>> {
    let mut table = settings.rules.get(PACK_ID).cloned().unwrap_or_default();
    if !table.contains_key("paths") && extra.is_empty() {
        return Ok(None);
    }
    let mut paths: Vec<PathBuf> = match table.remove("paths") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(s) => Ok(PathBuf::from(s)),
                other => bail!("[rules.sigma] paths: {other} is not a path (a string)"),
            })
            .collect::<Result<_>>()?,
        Some(other) => bail!("[rules.sigma] paths must be a list of paths, not {other}"),
    };
    paths.extend(extra.iter().cloned());
    Ok(Some((table, paths)))
}

/// The pack's configuration: `table` with the rule files of `paths`.
fn config_of(table: toml::Table, paths: &[PathBuf], trust: Option<&TrustPolicy>) -> Result<String> {
    let sources: Vec<serde_json::Value> = read_sources(paths, trust)?
        .into_iter()
        .map(|(name, text)| serde_json::json!({"name": name, "text": text}))
        .collect();
    let mut config = serde_json::to_value(&table).context("[rules.sigma] is not valid JSON")?;
    if let Some(object) = config.as_object_mut() {
        object.insert("sources".into(), sources.into());
    }
    Ok(config.to_string())
}

/// The Sigma rule files of a `run --follow`, watched for hot reload: when
/// one changes, appears or goes, the pack is made again from them (read and
/// verified as at start), its state carried over (docs/sigma.md).
pub struct SigmaWatch {
    table: toml::Table,
    paths: Vec<PathBuf>,
    seen: Vec<(PathBuf, Option<crate::run::FileStamp>)>,
}

impl SigmaWatch {
    /// A watch of the files `settings` and `extra` name; `None` when they
    /// name none.
    pub fn new(settings: &Settings, extra: &[PathBuf]) -> Result<Option<SigmaWatch>> {
        Ok(named(settings, extra)?.map(|(table, paths)| {
            let seen = stamps(&paths);
            SigmaWatch { table, paths, seen }
        }))
    }

    /// If the rule files changed since last asked: the pack's new
    /// configuration, or why it cannot be made (the running pack goes on).
    pub fn changed(&mut self, trust: Option<&TrustPolicy>) -> Option<Result<String>> {
        let now = stamps(&self.paths);
        if now == self.seen {
            return None;
        }
        self.seen = now;
        Some(config_of(self.table.clone(), &self.paths, trust))
    }
}

/// Every rule file the paths name now, with what `stat` says of it.
fn stamps(paths: &[PathBuf]) -> Vec<(PathBuf, Option<crate::run::FileStamp>)> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            // An unreadable directory reads as empty: a change, reported
            // when the configuration is made again.
            let _ = walk(path, &mut files);
        } else {
            files.push(path.clone());
        }
    }
    files
        .into_iter()
        .map(|f| {
            let stamp = crate::run::file_stamp(&f);
            (f, stamp)
        })
        .collect()
}

/// Every `.yml` / `.yaml` file named, or found under a named directory
/// (recursively, in name order): its path and text; each verified against
/// `trust` when given (signed as Sigma rules or pinned).
pub fn read_sources(
    paths: &[PathBuf],
    trust: Option<&TrustPolicy>,
) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            walk(path, &mut files)?;
            if files.len() == before {
                bail!("no Sigma rules (.yml, .yaml) in {}", path.display());
            }
        } else if path.exists() {
            files.push(path.clone());
        } else {
            bail!("Sigma rules path {} does not exist", path.display());
        }
    }
    let mut total = 0u64;
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        let read = RuleFile::read(&file, MAX_FILE_BYTES)?;
        if let Some(policy) = trust {
            verify(policy, &read).map_err(|why| {
                anyhow::anyhow!(
                    "Sigma rule file {} is not trusted: {why} (--require-signed); sign it with `trailguard rules sign` or pin its SHA-256 in the trust policy",
                    file.display()
                )
            })?;
        }
        total += read.bytes().len() as u64;
        if total > MAX_TOTAL_BYTES {
            bail!(
                "the Sigma rules named make more than {} MiB (at {}); name fewer",
                MAX_TOTAL_BYTES >> 20,
                file.display()
            );
        }
        let text = String::from_utf8(read.bytes().to_vec())
            .with_context(|| format!("Sigma rule file {} is not UTF-8", file.display()))?;
        sources.push((file.display().to_string(), text));
    }
    Ok(sources)
}

/// Whether a file of Sigma rules, as read, passes `policy`; what it was
/// trusted as, or why not.
pub fn verify(
    policy: &TrustPolicy,
    file: &RuleFile,
) -> Result<trailguard_host::trust::Trusted, String> {
    let trusted = policy.verify_file(file)?;
    policy.check_sigma_claims(&trusted, PACK_ID)?;
    Ok(trusted)
}

/// Whether a path names a file of Sigma rules (`.yml`, `.yaml`) rather
/// than a component.
pub fn is_rule_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("yml") || x.eq_ignore_ascii_case("yaml"))
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read Sigma rules directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        // Symbolic links to directories are not followed (no cycles).
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if is_dir {
            walk(&path, files)?;
        } else if is_rule_file(&path) {
            files.push(path);
        }
    }
    Ok(())
}
