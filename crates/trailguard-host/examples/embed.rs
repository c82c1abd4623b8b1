//! Embedding trailguard in a program of your own: compile the rule
//! components once, build an [`Engine`], push raw CloudTrail, take the
//! alerts; checkpoint the state and resume it in a second engine, as a
//! service would across a restart.
//!
//! ```sh
//! cargo xtask build
//! cargo run --release -p trailguard-host --example embed -- \
//!     target/modules tests/data/asn/asn-fixture.mmdb target/demo/stolen-ci-credentials/*
//! ```
//!
//! Alerts go to standard output as JSON lines (Elastic Security alert
//! documents), a summary to standard error.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trailguard_asn::AsnDb;
use trailguard_host::{Engine, EngineOptions, EngineState, Runtime, RuntimeOptions};
use trailguard_ingest::IngestStats;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [rules_dir, asn_db, inputs @ ..] = args.as_slice() else {
        return Err("usage: embed RULES-DIR ASN.mmdb CLOUDTRAIL-FILE...".into());
    };

    // The same limits, cache and checks as the CLI.
    let runtime = Runtime::new(RuntimeOptions::default())?;
    let mut rules = Vec::new();
    for file in wasm_files(rules_dir)? {
        rules.push(runtime.compile_rule(&file)?);
    }
    let mut options = EngineOptions::default();
    options.allowed_lateness_ms = 15 * 60_000;
    let asn = Arc::new(AsnDb::open(asn_db)?);
    let mut engine = Engine::new(&runtime, &rules, options.clone())?.with_asn(Arc::clone(&asn));
    let names: Vec<String> = engine.rules().iter().map(|r| r.id.clone()).collect();
    eprintln!("rules: {}", names.join(", "));

    // Feed half the inputs, checkpoint, and carry on in a new engine.
    let mut stats = IngestStats::default();
    let half = inputs.len() / 2;
    for input in &inputs[..half] {
        print(&engine.push_cloudtrail(
            &input.display().to_string(),
            &std::fs::read(input)?,
            &mut stats,
        ))?;
    }
    let (alerts, state) = engine.checkpoint();
    print(&alerts)?;
    // Any serde format will do; a service would write these bytes somewhere durable.
    let saved = serde_json::to_vec(&state)?;
    drop(engine);

    let mut engine = Engine::new(&runtime, &rules, options)?.with_asn(asn);
    for warning in engine.load_state(serde_json::from_slice::<EngineState>(&saved)?)? {
        eprintln!("warning: {warning}");
    }
    for input in &inputs[half..] {
        print(&engine.push_cloudtrail(
            &input.display().to_string(),
            &std::fs::read(input)?,
            &mut stats,
        ))?;
    }
    print(&engine.finish())?;

    let s = engine.stats();
    eprintln!(
        "{} record(s) read, {} rejected; {} event(s) to the rules; alerts: {:?}; checkpoint of {} bytes",
        stats.records_read,
        stats.rejected_total(),
        s.events,
        s.alerts,
        saved.len()
    );
    Ok(())
}

fn print(alerts: &[trailguard_host::AlertDocument]) -> Result<(), Box<dyn Error>> {
    for alert in alerts {
        println!("{}", serde_json::to_string(alert)?);
    }
    Ok(())
}

/// The `.wasm` files of a directory, in name order.
fn wasm_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}
