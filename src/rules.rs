//! `trailguard rules list` and `trailguard rules inspect`, and how rule
//! files are found.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use trailguard_host::{ComponentReport, Detector, Runtime, RuntimeOptions};
use trailguard_rule_sdk::{Comparison, RuleInfo, Target};

use crate::cli::{InspectArgs, ListArgs, beside_binary};
use crate::settings::Settings;

/// Every `.wasm` file named, or found (sorted) in a named directory.
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let defaults;
    let paths = if paths.is_empty() {
        defaults = vec![
            beside_binary("modules")
                .context("cannot locate the default rules directory; pass --rules")?,
        ];
        &defaults
    } else {
        paths
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read rules directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect();
            found.sort();
            if found.is_empty() {
                bail!(
                    "no .wasm rules in {}; build them with `cargo xtask build` or pass --rules",
                    path.display()
                );
            }
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!(
                "rules path {} does not exist; build the rules with `cargo xtask build` or pass --rules",
                path.display()
            );
        }
    }
    Ok(files)
}

pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("trailguard"))
}

pub(crate) fn runtime(no_cache: bool) -> Result<Runtime> {
    Ok(Runtime::new(RuntimeOptions {
        cache_dir: if no_cache { None } else { default_cache_dir() },
        ..RuntimeOptions::default()
    })?)
}

/// One line per loadable rule.
pub fn list(args: ListArgs) -> Result<ExitCode> {
    let runtime = runtime(false)?;
    println!(
        "{:<30} {:<8} {:<6} {:<9} NAME (FILE)",
        "ID", "VERSION", "RISK", "SEVERITY"
    );
    let mut all = true;
    // The Sigma pack lists the Sigma rules it is given.
    let configs = crate::sigma::rule_configs(&Settings::default(), &args.rules.sigma, None)?;
    let config = |info: &RuleInfo| configs.get(&info.id).cloned().unwrap_or_default();
    for file in rule_files(&args.rules.rules)? {
        // One rule that does not load is reported; the others are listed.
        let rule = match runtime.load_rule(&file, config) {
            Ok(rule) => rule,
            Err(e) => {
                anstream::eprintln!(
                    "trailguard: {}: {}",
                    crate::style::error_label(),
                    crate::style::printable(&e.to_string())
                );
                all = false;
                continue;
            }
        };
        let info = rule.info();
        println!(
            "{:<30} {:<8} {:<6} {:<9} {} ({})",
            info.id,
            info.version,
            info.risk_score,
            info.severity.as_str(),
            info.name,
            crate::style::name(file.display())
        );
        if rule.rules() != std::slice::from_ref(info) {
            for r in rule.rules() {
                println!(
                    "  {:<28} {:<8} {:<6} {:<9} {}",
                    r.id,
                    r.version.split('+').next().unwrap_or(""),
                    r.risk_score,
                    r.severity.as_str(),
                    r.name
                );
            }
        }
        for warning in rule.warnings() {
            anstream::eprintln!(
                "trailguard: {}: rule {}: {warning}",
                crate::style::warning_label(),
                info.id
            );
        }
    }
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::run::EXIT_ERROR)
    })
}

fn report_json(r: &ComponentReport) -> serde_json::Value {
    let config: serde_json::Value = r
        .info
        .as_ref()
        .and_then(|i| serde_json::from_str(&i.default_config).ok())
        .unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "file": r.path.display().to_string(),
        "size": r.size,
        "sha256": r.sha256,
        "contract": r.contract,
        "imports": r.imports,
        "exports": r.exports.iter().map(|(name, funcs)| serde_json::json!({"name": name, "functions": funcs})).collect::<Vec<_>>(),
        "refused": r.refused,
        "rule": r.info.as_ref().map(|i| serde_json::json!({
            "id": i.id,
            "name": i.name,
            "version": i.version,
            "severity": i.severity.as_str(),
            "risk_score": i.risk_score,
            "mitre_techniques": i.mitre_techniques,
            "description": i.description,
        })),
        "config_defaults": config,
        "fields": r.fields,
        "filters": r.filters.iter().map(|f| serde_json::json!({
            "field": target_name(&f.target),
            "comparison": comparison_name(f.comparison),
            "ignore_case": f.ignore_case,
            "any_of": f.any_of,
        })).collect::<Vec<_>>(),
    })
}

fn print_report(r: &ComponentReport) {
    println!("file:      {}", crate::style::name(r.path.display()));
    println!("size:      {} bytes", r.size);
    println!("sha256:    {}", r.sha256);
    println!(
        "contract:  {}",
        r.contract.as_deref().map_or(
            "none (no trailguard:detector/rule export)".to_owned(),
            |v| format!("trailguard:detector@{v}")
        )
    );
    if r.imports.is_empty() {
        println!("imports:   none");
    } else {
        println!("imports:   {}", r.imports.join(", "));
    }
    for (name, functions) in &r.exports {
        println!("export:    {name}");
        for f in functions {
            println!("             {f}");
        }
    }
    match (&r.info, &r.refused) {
        (Some(i), _) => {
            println!("id:        {}", i.id);
            println!("name:      {}", i.name);
            println!("version:   {}", i.version);
            println!(
                "severity:  {} (risk score {})",
                i.severity.as_str(),
                i.risk_score
            );
            println!("mitre:     {}", i.mitre_techniques.join(", "));
            println!("about:     {}", i.description);
            if r.filters.is_empty() {
                println!("events:    all");
            }
            for f in &r.filters {
                println!(
                    "events:    {} {} one of {}{}",
                    crate::style::printable(&target_name(&f.target)),
                    comparison_name(f.comparison),
                    crate::style::printable(&f.any_of.join(", ")),
                    if f.ignore_case {
                        " (ignoring case)"
                    } else {
                        ""
                    }
                );
            }
            if !r.fields.is_empty() {
                println!(
                    "reads:     {}",
                    crate::style::printable(&r.fields.join(", "))
                );
            }
            if let Ok(serde_json::Value::Object(keys)) = serde_json::from_str(&i.default_config) {
                println!("configuration keys (defaults):");
                for (key, value) in keys {
                    println!("  {key} = {value}");
                }
            }
        }
        (None, Some(reason)) => println!("REFUSED:   {reason}"),
        (None, None) => {}
    }
}

/// Prints what a component is; fails (exit 1) if any inspected file would be refused.
pub fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let runtime = runtime(args.no_cache)?;
    let mut refused = false;
    let mut reports = Vec::new();
    for file in &args.files {
        let report = runtime
            .inspect(file)
            .with_context(|| format!("cannot inspect {}", file.display()))?;
        refused |= report.refused.is_some();
        reports.push(report);
    }
    if args.json {
        let docs: Vec<serde_json::Value> = reports.iter().map(report_json).collect();
        println!("{}", serde_json::to_string_pretty(&docs)?);
    } else {
        for (i, r) in reports.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print_report(r);
        }
    }
    Ok(if refused {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A filter's field as rule authors write it: an ECS name or a record path.
fn target_name(target: &Target) -> String {
    match target {
        Target::Field(field) => field.ecs_name().to_owned(),
        Target::Path(path) => path.clone(),
    }
}

fn comparison_name(comparison: Comparison) -> &'static str {
    match comparison {
        Comparison::Equals => "equals",
        Comparison::Prefix => "starts with",
    }
}
