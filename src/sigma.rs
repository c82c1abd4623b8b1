//! Sigma rule files for the `sigma` rule pack: found, read and handed to the
//! component as its configuration (the component parses them in its
//! sandbox; the host only reads bytes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use trailguard_host::RuleFile;

use crate::settings::Settings;

/// The pack's rule id (`[rules.sigma]`).
pub const PACK_ID: &str = "sigma";
/// Largest Sigma rule file: SigmaHQ's are 1-5 KiB.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// Most bytes of Sigma rules in all.
const MAX_TOTAL_BYTES: u64 = 64 << 20;

/// Rule id → JSON configuration for every rule: the configuration file's
/// `[rules.ID]` tables, with the Sigma pack's rule files read into its
/// configuration when any are named (see [`pack_config`]).
pub fn rule_configs(settings: &Settings, extra: &[PathBuf]) -> Result<BTreeMap<String, String>> {
    let mut configs = settings.rule_configs();
    if let Some(config) = pack_config(settings, extra)? {
        configs.insert(PACK_ID.into(), config);
    }
    Ok(configs)
}

/// The pack's configuration when Sigma rules are named (`[rules.sigma]
/// paths`, relative to the configuration file, and `extra` from
/// `--sigma`): the table with `paths` replaced by `sources`, each file's
/// name and text. `None` when neither names any.
fn pack_config(settings: &Settings, extra: &[PathBuf]) -> Result<Option<String>> {
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
    let sources: Vec<serde_json::Value> = read_sources(&paths)?
        .into_iter()
        .map(|(name, text)| serde_json::json!({"name": name, "text": text}))
        .collect();
    let mut config = serde_json::to_value(&table).context("[rules.sigma] is not valid JSON")?;
    if let Some(object) = config.as_object_mut() {
        object.insert("sources".into(), sources.into());
    }
    Ok(Some(config.to_string()))
}

/// Every `.yml` / `.yaml` file named, or found under a named directory
/// (recursively, in name order): its path and text.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<(String, String)>> {
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
        } else if path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("yml") || x.eq_ignore_ascii_case("yaml"))
        {
            files.push(path);
        }
    }
    Ok(())
}
