//! `trailguard run`: source → decode → normalize → enrich → batch → rules
//! → alerts, then the summary.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use trailguard_host::{
    AlertDocument, Detector, HostError, Pipeline, PipelineStats, Recovery, Runtime, RuntimeOptions,
};
use trailguard_ingest::{
    Deduplicator, IngestStats, NormalizedEvent, Normalizer, ReadOptions, Rejection, expand_inputs,
    read_sources,
};

use trailguard_host::trust::TrustPolicy;

use crate::cli::{RunArgs, open_asn_db};
use crate::rules::{default_cache_dir, rule_files};
use crate::settings::Settings;

/// Exit status: the run could not happen (or, with `--strict`, a record was
/// rejected).
pub const EXIT_ERROR: u8 = 1;
/// Exit status: the run completed, but some input records were rejected.
pub const EXIT_REJECTIONS: u8 = 3;
/// Exit status: the run completed, but a rule kept failing and was
/// quarantined (its alerts are incomplete).
pub const EXIT_RULE_FAILED: u8 = 2;

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let settings = match &args.config {
        Some(path) => Settings::load(path)?,
        None => Settings::default(),
    };
    let limits = settings.run.limits();
    let policy = settings.run.recovery();
    let lateness_minutes = args
        .allowed_lateness
        .or(settings.run.allowed_lateness_minutes)
        .unwrap_or(15);
    let batch_size = args
        .batch_size
        .or(settings.run.batch_size)
        .unwrap_or(1024)
        .max(1);
    let runtime = Runtime::new(RuntimeOptions {
        limits,
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir.clone().or_else(default_cache_dir)
        },
        epoch_interruption: true,
    })?;

    let mut detectors: Vec<Box<dyn Detector>> = Vec::new();
    // A rule whose constructor traps is a broken rule, not a broken run: it
    // is left out and reported; the others run.
    let mut failed_at_load = Vec::new();
    let trust = match (&args.trust, args.require_signed) {
        (Some(path), true) => Some(TrustPolicy::load(path).map_err(anyhow::Error::msg)?),
        _ => None,
    };
    for file in rule_files(&args.rules.rules)? {
        if let Some(policy) = &trust {
            policy.verify(&file).map_err(|reason| {
                anyhow::anyhow!(
                    "rule {} refused by --require-signed: {reason}",
                    file.display()
                )
            })?;
        }
        let rule = match runtime.load_rule(&file, |info| settings.rule_config(&info.id)) {
            Ok(rule) => rule,
            Err(HostError::Rule {
                rule,
                call,
                message,
            }) => {
                failed_at_load.push((rule, format!("{}: {call}: {message}", file.display())));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if detectors.iter().any(|d| d.info().id == rule.info().id) {
            bail!(
                "two rules with id {} (second: {}); pass each rule once",
                rule.info().id,
                file.display()
            );
        }
        detectors.push(Box::new(rule));
    }
    for id in settings.rules.keys() {
        let failed = failed_at_load.iter().any(|(rule, _)| rule == id);
        if !failed && !detectors.iter().any(|d| &d.info().id == id) {
            let loaded: Vec<&str> = detectors.iter().map(|d| d.info().id.as_str()).collect();
            bail!(
                "config has [rules.{id}], but no loaded rule has that id (loaded: {})",
                loaded.join(", ")
            );
        }
    }

    let asn = open_asn_db(args.asn_db.clone())?;
    let normalizer = Normalizer::new(Some(&asn));
    let sources = expand_inputs(&args.inputs)?;
    let mut sink = Sink::open(args.output.as_deref())?;
    let mut pipeline =
        Pipeline::new(detectors, i64::from(lateness_minutes) * 60_000).with_policy(policy);
    let mut batch: Vec<NormalizedEvent> = Vec::with_capacity(batch_size);
    let mut dedup =
        (args.dedup_window > 0).then(|| Deduplicator::new(i64::from(args.dedup_window) * 60_000));
    let mut dead_letter = match &args.dead_letter {
        Some(path) => Some(DeadLetter::create(path)?),
        None => None,
    };
    let progress = Progress::new(sources.len() as u64);
    let options = ReadOptions {
        keep_fragments: dead_letter.is_some(),
        ..ReadOptions::default()
    };
    let mut failed = None;
    let mut duplicates = 0u64;
    let mut ingest = read_sources(&sources, &normalizer, &options, &mut |events, stats| {
        if let Some(dl) = &mut dead_letter
            && let Err(e) = dl.write(stats.dead_letters.drain(..))
        {
            failed.get_or_insert(e);
        }
        for event in events {
            if dedup.as_mut().is_some_and(|d| d.is_duplicate(&event)) {
                duplicates += 1;
                continue;
            }
            batch.push(event);
            if batch.len() >= batch_size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                if let Err(e) = sink.write(&pipeline.push(full)) {
                    failed.get_or_insert(e);
                }
            }
        }
        progress.update(stats, pipeline.stats().events);
    });
    progress.finish();
    ingest.duplicates = duplicates;
    if let Some(e) = failed {
        return Err(e);
    }
    sink.write(&pipeline.push(batch))?;
    sink.write(&pipeline.finish())?;
    sink.finish()?;
    if let Some(dl) = dead_letter {
        dl.finish()?;
    }
    let elapsed = started.elapsed();
    if let Some(path) = &args.stats {
        write_stats(path, &ingest, pipeline.stats(), &failed_at_load, elapsed)?;
    }

    report(&ingest, pipeline.stats(), elapsed);
    for (rule, failure) in &failed_at_load {
        eprintln!("  rule {rule} QUARANTINED at load, it ran on no events: {failure}");
    }
    let rejected = ingest.rejected_total() > 0;
    let rules_failed = !pipeline.stats().quarantined().is_empty() || !failed_at_load.is_empty();
    Ok(ExitCode::from(if args.strict && rejected {
        eprintln!(
            "trailguard: --strict: {} record(s) rejected",
            ingest.rejected_total()
        );
        EXIT_ERROR
    } else if rules_failed {
        EXIT_RULE_FAILED
    } else if rejected {
        EXIT_REJECTIONS
    } else {
        0
    }))
}

/// `--dead-letter FILE`: one JSON line per rejected record, with its reason.
struct DeadLetter {
    out: BufWriter<std::fs::File>,
    path: std::path::PathBuf,
}

impl DeadLetter {
    fn create(path: &Path) -> Result<DeadLetter> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create dead-letter file {}", path.display()))?;
        Ok(DeadLetter {
            out: BufWriter::new(file),
            path: path.to_owned(),
        })
    }

    fn write(&mut self, rejections: impl Iterator<Item = Rejection>) -> Result<()> {
        for r in rejections {
            let line = serde_json::json!({
                "file": r.file,
                "position": r.position,
                "kind": r.reason.kind(),
                "reason": r.reason.to_string(),
                "record": r.fragment,
            });
            serde_json::to_writer(&mut self.out, &line)?;
            self.out
                .write_all(b"\n")
                .with_context(|| format!("cannot write {}", self.path.display()))?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// `--stats FILE`: the run's summary as JSON, for automation.
fn write_stats(
    path: &Path,
    ingest: &IngestStats,
    pipeline: &PipelineStats,
    failed_at_load: &[(String, String)],
    elapsed: Duration,
) -> Result<()> {
    let secs = elapsed.as_secs_f64();
    let failures: Vec<serde_json::Value> = pipeline
        .failures
        .iter()
        .map(|f| {
            serde_json::json!({
                "rule": f.rule,
                "call": f.call,
                "events_before": f.events_before,
                "message": f.message,
                "recovery": match f.recovery { Recovery::Recovered => "recovered", Recovery::Quarantined => "quarantined" },
            })
        })
        .chain(failed_at_load.iter().map(|(rule, message)| {
            serde_json::json!({"rule": rule, "call": "create", "events_before": 0, "message": message, "recovery": "quarantined"})
        }))
        .collect();
    let doc = serde_json::json!({
        "inputs": ingest.files,
        "records_read": ingest.records_read,
        "accepted": ingest.accepted,
        "rejected": ingest.rejected_total(),
        "rejected_by_reason": ingest.rejected,
        "duplicates": ingest.duplicates,
        "repaired_documents": ingest.repaired_documents,
        "without_asn": ingest.without_asn.values().sum::<u64>(),
        "without_asn_by_reason": ingest.without_asn,
        "events": pipeline.events,
        "late_events": pipeline.late_events,
        "alerts": pipeline.alerts,
        "rule_failures": failures,
        "elapsed_seconds": secs,
        "peak_rss_bytes": peak_rss_bytes(),
        "events_per_second": if secs > 0.0 { pipeline.events as f64 / secs } else { 0.0 },
    });
    std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("cannot write stats file {}", path.display()))
}

/// The process's peak resident set size (Linux: `VmHWM`), if known.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A progress bar on standard error when it is a terminal; nothing otherwise.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(inputs: u64) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new(inputs);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} inputs, {msg} (ETA {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Progress(Some(bar))
    }

    fn update(&self, stats: &IngestStats, events: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(stats.files);
            let secs = bar.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{} records, {} rejected, {:.0} events/s",
                stats.records_read,
                stats.rejected_total(),
                events as f64 / secs
            ));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Where alerts go: one JSON document per line.
struct Sink {
    out: BufWriter<Box<dyn Write>>,
    name: String,
}

impl Sink {
    fn open(path: Option<&Path>) -> Result<Sink> {
        let (out, name): (Box<dyn Write>, String) = match path {
            Some(p) => (
                Box::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                ),
                p.display().to_string(),
            ),
            None => (Box::new(std::io::stdout().lock()), "standard output".into()),
        };
        Ok(Sink {
            out: BufWriter::new(out),
            name,
        })
    }

    fn write(&mut self, alerts: &[AlertDocument]) -> Result<()> {
        for alert in alerts {
            serde_json::to_writer(&mut self.out, alert)?;
            self.out
                .write_all(b"\n")
                .with_context(|| format!("cannot write alerts to {}", self.name))?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write alerts to {}", self.name))
    }
}

fn counts(map: &std::collections::BTreeMap<&'static str, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The run's summary, on standard error.
fn report(ingest: &IngestStats, pipeline: &PipelineStats, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let mut err = std::io::stderr().lock();
    let mut line = |s: String| {
        let _ = writeln!(err, "{s}");
    };
    line(format!(
        "trailguard: {} input(s), {} record(s) read: {} accepted, {} rejected{}",
        ingest.files,
        ingest.records_read,
        ingest.accepted,
        ingest.rejected_total(),
        if ingest.rejected.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts(&ingest.rejected))
        }
    ));
    let without: u64 = ingest.without_asn.values().sum();
    line(format!(
        "  without source AS: {without}{}",
        if without == 0 {
            String::new()
        } else {
            format!(" ({})", counts(&ingest.without_asn))
        }
    ));
    line(format!(
        "  duplicates dropped (same eventID): {}",
        ingest.duplicates
    ));
    if ingest.repaired_documents > 0 {
        line(format!(
            "  documents repaired (not valid JSON as a whole; records read one by one): {}",
            ingest.repaired_documents
        ));
        for note in ingest.repairs.iter().take(5) {
            line(format!("    {note}"));
        }
    }
    line(format!(
        "  late events (after their hour was evaluated): {}",
        pipeline.late_events
    ));
    for (rule, n) in &pipeline.alerts {
        line(format!("  rule {rule}: {n} alert(s)"));
    }
    for f in &pipeline.failures {
        let what = match f.recovery {
            Recovery::Recovered => "restarted from its last checkpoint; the retry succeeded",
            Recovery::Quarantined => {
                "QUARANTINED: it gets no more events and its alerts are incomplete"
            }
        };
        line(format!(
            "  rule {} failed in {} after {} events: {}\n    {what}",
            f.rule, f.call, f.events_before, f.message
        ));
    }
    line(format!(
        "  elapsed {secs:.2} s, {:.0} events/s",
        if secs > 0.0 {
            pipeline.events as f64 / secs
        } else {
            0.0
        }
    ));
    // Rejections by file, in input order: count, then the first few positions.
    let mut by_file: Vec<(&str, Vec<&trailguard_ingest::Rejection>)> = Vec::new();
    for r in &ingest.rejections {
        match by_file.last_mut() {
            Some((file, list)) if *file == r.file => list.push(r),
            _ => by_file.push((&r.file, vec![r])),
        }
    }
    const FILES_SHOWN: usize = 10;
    const PER_FILE: usize = 3;
    for (file, list) in by_file.iter().take(FILES_SHOWN) {
        line(format!("  rejected in {file}: {}", list.len()));
        for r in list.iter().take(PER_FILE) {
            line(format!("    {}: {}", r.position, r.reason));
        }
    }
    if by_file.len() > FILES_SHOWN {
        line(format!(
            "  ... and rejections in {} more file(s)",
            by_file.len() - FILES_SHOWN
        ));
    }
    if ingest.rejected_total() > ingest.rejections.len() as u64 {
        line(format!(
            "  (only the first {} rejections are itemized above; all are counted)",
            ingest.rejections.len()
        ));
    }
}
