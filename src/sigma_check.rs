//! `trailguard sigma check`: each Sigma rule file loaded in the Sigma pack
//! (in its sandbox, as `run --sigma` loads it), what its rules read, why
//! anything was left out, and which of the fields they read never occur in
//! a sample of CloudTrail.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use trailguard_host::{Detector, Runtime};
use trailguard_ingest::{IngestStats, Normalizer, RecordPaths, decode_bytes, expand_inputs};

use crate::cli::{SigmaCheckArgs, beside_binary};
use crate::sigma::PACK_ID;
use crate::style::{name, warning_label};

/// One file, as the pack loaded it alone.
struct Checked {
    file: String,
    rules: Vec<(String, String, String)>,
    fields: Vec<String>,
    warnings: Vec<String>,
}

pub fn check(args: SigmaCheckArgs) -> Result<ExitCode> {
    let pack = match &args.pack {
        Some(pack) => pack.clone(),
        None => beside_binary("modules")
            .context("cannot locate the default rules directory; pass --pack")?
            .join("rule-sigma.wasm"),
    };
    let runtime = crate::rules::runtime(false)?;
    let compiled = runtime
        .compile_rule(&pack)
        .with_context(|| format!("the Sigma pack {} cannot be loaded", pack.display()))?;
    let sources = crate::sigma::read_sources(&args.paths, None)?;
    let mut checked = Vec::with_capacity(sources.len());
    for (file, text) in sources {
        checked.push(load_alone(&runtime, &compiled, file, text)?);
    }
    let mut all_fields: Vec<String> = checked.iter().flat_map(|c| c.fields.clone()).collect();
    all_fields.sort();
    all_fields.dedup();
    let sample = if args.sample.is_empty() {
        None
    } else {
        Some(occurrences(&args.sample, &all_fields)?)
    };

    let mut problems = 0usize;
    let mut rules = 0usize;
    for c in &checked {
        println!("{}", name(&c.file));
        for (id, level, title) in &c.rules {
            println!("  {id:<40} {level:<9} {}", name(title));
        }
        rules += c.rules.len();
        if !c.fields.is_empty() {
            println!("    reads: {}", c.fields.join(", "));
        }
        if let Some((_, seen)) = &sample {
            let never: Vec<&str> = c
                .fields
                .iter()
                .filter(|f| seen.get(f.as_str()).copied().unwrap_or(0) == 0)
                .map(String::as_str)
                .collect();
            if !never.is_empty() {
                problems += 1;
                println!("    never in the sample: {}", never.join(", "));
            }
        }
        for warning in &c.warnings {
            problems += 1;
            anstream::println!("    {}: {}", warning_label(), name(warning));
        }
    }
    let warnings: usize = checked.iter().map(|c| c.warnings.len()).sum();
    print!(
        "{} files, {rules} rules loaded, {warnings} left out",
        checked.len()
    );
    match &sample {
        Some((events, _)) => println!("; sample: {events} events"),
        None => println!(),
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The pack made from one file: its rules, the fields they read, and its
/// warnings.
fn load_alone(
    runtime: &Runtime,
    pack: &trailguard_host::CompiledRule,
    file: String,
    text: String,
) -> Result<Checked> {
    let config = serde_json::json!({ "sources": [{ "name": file, "text": text }] }).to_string();
    let detector = runtime
        .instantiate(pack, |_| config)
        .with_context(|| format!("the Sigma pack refused {file}"))?;
    let rules = detector
        .rules()
        .iter()
        .filter(|r| r.id != PACK_ID)
        .map(|r| (r.id.clone(), r.severity.as_str().to_owned(), r.name.clone()))
        .collect();
    Ok(Checked {
        rules,
        fields: detector.record_paths().to_vec(),
        warnings: detector.warnings().to_vec(),
        file,
    })
}

/// How many events of the sample have each field: (events, field → count).
fn occurrences(
    sample: &[PathBuf],
    fields: &[String],
) -> Result<(u64, std::collections::HashMap<String, u64>)> {
    let normalizer = Normalizer::new(None).with_paths(RecordPaths::new(fields.to_vec()));
    let paths = normalizer.paths().paths().to_vec();
    let mut counts = vec![0u64; paths.len()];
    let mut events = 0u64;
    let mut stats = IngestStats::default();
    for source in expand_inputs(sample).context("cannot read the sample")? {
        let bytes = source
            .read()
            .with_context(|| format!("cannot read {}", source.name()))?;
        decode_bytes(
            &source.name(),
            &bytes,
            &normalizer,
            &mut stats,
            &mut |event| {
                events += 1;
                for (k, count) in counts.iter_mut().enumerate() {
                    if event.record.at(k).is_some_and(|v| v.view().is_some()) {
                        *count += 1;
                    }
                }
            },
        );
    }
    Ok((events, paths.into_iter().zip(counts).collect()))
}
