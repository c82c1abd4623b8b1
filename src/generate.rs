//! `trailguard gen`: seeded, realistic CloudTrail with injected attacks and
//! their ground truth.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use trailguard_gen::{ApiCall, TrafficConfig, generate, write_delivery};

use crate::cli::{GenArgs, GenFormat};

/// Writes the records of `config` as NDJSON into `out`; returns the episodes.
pub fn ndjson(config: &TrafficConfig, out: &mut dyn Write) -> Result<Vec<trailguard_gen::Episode>> {
    let mut failed = None;
    let episodes = generate(config, &mut |call| {
        if failed.is_none()
            && let Err(e) = serde_json::to_writer(&mut *out, &call.to_json())
                .map_err(anyhow::Error::from)
                .and_then(|()| Ok(out.write_all(b"\n")?))
        {
            failed = Some(e);
        }
    });
    failed.map_or(Ok(episodes), Err)
}

fn s3(config: &TrafficConfig, dir: &Path, per_file: usize) -> Result<Vec<trailguard_gen::Episode>> {
    std::fs::create_dir_all(dir)?;
    let mut chunk: Vec<ApiCall> = Vec::with_capacity(per_file);
    let mut files = 0usize;
    let mut failed = None;
    let mut flush = |chunk: &mut Vec<ApiCall>| {
        if chunk.is_empty() || failed.is_some() {
            return;
        }
        let records: Vec<serde_json::Value> = chunk.iter().map(ApiCall::to_json).collect();
        if let Err(e) = write_delivery(dir, chunk[0].time_ms, &format!("{files:07}"), &records) {
            failed = Some(e);
        }
        files += 1;
        chunk.clear();
    };
    let episodes = generate(config, &mut |call| {
        chunk.push(call.clone());
        if chunk.len() >= per_file {
            flush(&mut chunk);
        }
    });
    flush(&mut chunk);
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(episodes),
    }
}

pub fn run(args: GenArgs) -> Result<ExitCode> {
    let defaults = TrafficConfig::for_profile(args.profile.into());
    let config = TrafficConfig {
        seed: args.seed,
        events: args.events.unwrap_or(defaults.events),
        days: args.days.unwrap_or(defaults.days),
        ci_roles: args.ci_roles.unwrap_or(defaults.ci_roles),
        humans: args.humans.unwrap_or(defaults.humans),
        attacks: args.attacks,
        ..defaults
    };
    let (episodes, truth) = match args.format {
        GenFormat::Ndjson => {
            let file = std::fs::File::create(&args.output)
                .with_context(|| format!("cannot create {}", args.output.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let episodes = ndjson(&config, &mut out)?;
            out.flush()?;
            (episodes, args.output.with_extension("ground-truth.json"))
        }
        // Beside the directory, so that reading it reads only CloudTrail.
        GenFormat::S3 => (
            s3(&config, &args.output, args.records_per_file)?,
            args.output.with_extension("ground-truth.json"),
        ),
    };
    let doc: Vec<serde_json::Value> = episodes.iter().map(|e| e.to_json()).collect();
    std::fs::write(&truth, serde_json::to_string_pretty(&doc)? + "\n")?;
    eprintln!(
        "wrote {} records to {} and {} attack episode(s) to {}",
        config.events,
        args.output.display(),
        episodes.len(),
        truth.display()
    );
    Ok(ExitCode::SUCCESS)
}
