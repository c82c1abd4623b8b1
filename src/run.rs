//! `trailguard run`: source → decode → normalize → enrich → batch → rules
//! → alerts, then the summary.

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use trailguard_host::checkpoint::{STATE_FORMAT, Saved, StateDir};

use anyhow::{Context, Result, bail};
use trailguard_host::{
    AlertDocument, CompiledRule, Engine, EngineOptions, EngineState, HostError, PipelineStats,
    Recovery, Runtime, RuntimeOptions, TimeGuardOptions,
};
use trailguard_ingest::{
    IngestStats, Normalizer, ReadOptions, Rejection, Resume, WallClock, expand_inputs, read_sources,
};

use trailguard_host::trust::TrustPolicy;

use trailguard_format::Format;

use crate::cli::{AlertFormat, RunArgs, open_asn_db};
use crate::rules::{default_cache_dir, rule_files};
use crate::settings::Settings;
use crate::sink::Sink;

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
    let args = with_settings(args, &settings)?;
    let format = alert_format(&args, &settings)?;
    let time_range = (
        args.since
            .as_deref()
            .map(parse_time_bound)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        args.until
            .as_deref()
            .map(parse_time_bound)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    );
    if let (Some(since), Some(until)) = time_range
        && since >= until
    {
        bail!("--since must be before --until: nothing would be read");
    }
    if args.report.is_some() && args.inputs.iter().any(|p| p.as_os_str() == "-") {
        bail!(
            "--report reads the input a second time to draw timelines, and standard input cannot be read twice: write alerts with -o FILE, then run `trailguard report FILE --input ...`"
        );
    }
    if args.kafka_brokers.is_some() {
        return crate::kafka::work(&args, &settings, format);
    }
    let output_settings = format!(
        "format {format}, since {}, until {}, suppression {:?}",
        args.since.as_deref().unwrap_or("-"),
        args.until.as_deref().unwrap_or("-"),
        settings.suppression
    );
    let RuleSetup {
        runtime,
        trust,
        compiled,
        mut options,
        mut loaded,
        failed_at_load: misbehaved_at_load,
    } = setup_rules(&args, &settings)?;
    // In follow mode, changed Sigma rule files are reloaded like modules.
    let mut sigma_watch = if args.follow {
        crate::sigma::SigmaWatch::new(&settings, &args.rules.sigma)?
    } else {
        None
    };

    let asn = open_asn_db(args.asn_db.clone())?;
    let mut normalizer = Normalizer::new(Some(&asn));
    if let Some(limit_ms) = options.time_guard.max_future_ms {
        normalizer = normalizer.with_max_future(limit_ms, WallClock::System);
    }

    // Durable state: resume where the last checkpoint was.
    let mut state_dir = match &args.state_dir {
        Some(dir) => {
            if args.output.is_none() {
                bail!(
                    "--state-dir needs -o FILE: alerts written after the last checkpoint are rewritten on restart"
                );
            }
            Some(
                StateDir::open(dir)
                    .with_context(|| format!("cannot open state directory {}", dir.display()))?,
            )
        }
        None => None,
    };
    let mut saved: Option<RunState> = None;
    if let Some(dir) = &state_dir {
        let (payload, warnings) = dir.load()?;
        for w in warnings {
            anstream::eprintln!("trailguard: {}: {w}", crate::style::warning_label());
        }
        if let Some(checkpoint) = payload {
            let state = RunState::read(checkpoint, &dir.path().display().to_string())?;
            if state.output_settings != output_settings {
                bail!(
                    "the run in this state directory wrote its alerts with {}; now asked for {output_settings}: resume with the same settings, or remove the state directory to start over",
                    state.output_settings
                );
            }
            saved = Some(state);
        }
    }
    // A resumed run keeps the shard count its state was taken with.
    if let Some(state) = &saved {
        options.shards = Engine::shards_of(&state.engine);
    }
    // A rule whose constructor traps is a broken rule, not a broken run: it
    // is left out and reported; the others run.
    let mut engine = new_engine(&runtime, &compiled, options, &settings)?;
    if let Some(state) = &saved {
        for w in engine.load_state(state.engine.clone())? {
            anstream::eprintln!("trailguard: {}: {w}", crate::style::warning_label());
        }
    }
    for (rule, warning) in engine.warnings() {
        anstream::eprintln!(
            "trailguard: {}: rule {rule}: {warning}",
            crate::style::warning_label()
        );
    }
    let failed_at_load: Vec<(String, String)> = misbehaved_at_load
        .into_iter()
        .chain(engine.failed_at_load().iter().map(|f| {
            (
                f.rule.clone(),
                format!("{}: {}", f.file.display(), f.message),
            )
        }))
        .collect();
    if saved.as_ref().is_some_and(|s| s.finished) && !args.follow {
        eprintln!(
            "trailguard: the run in this state directory is complete; nothing to do (remove it to start over)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut resume = saved
        .as_ref()
        .map(|s| s.position.clone())
        .unwrap_or_default();
    let base_stats = saved.as_ref().map(|s| s.ingest.clone()).unwrap_or_default();
    let mut sink = Sink::open(
        args.output.as_deref(),
        saved.as_ref().map(|s| s.output_bytes),
        format,
        args.report.is_some() && args.output.is_none(),
    )?;
    let checkpoint_events = args.checkpoint_events.unwrap_or(100_000);
    let checkpoint_seconds = args.checkpoint_seconds.unwrap_or(30);

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let abort_after: Option<u64> = std::env::var(ABORT_HOOK).ok().and_then(|v| v.parse().ok());
    let mut dead_letter = match &args.dead_letter {
        Some(path) => Some(DeadLetter::create(path)?),
        None => None,
    };
    let defaults = ReadOptions::default();
    let options = ReadOptions {
        keep_fragments: dead_letter.is_some(),
        max_document_bytes: args
            .max_document_mib
            .map_or(defaults.max_document_bytes, |m| (m as usize) << 20),
        max_input_bytes: settings
            .input
            .max_input_mib
            .map_or(defaults.max_input_bytes, |m| m << 20),
        ..defaults
    };
    let mut failed = None;
    let mut checkpointed_at = (engine.events(), Instant::now());
    let mut ingest = base_stats;
    loop {
        // Every record path the rules read, extracted once per event (a
        // reload may have changed them).
        let normalizer = normalizer.clone().with_paths(engine.record_paths().clone());
        let sources = expand_inputs(&args.inputs)?;
        let progress = Progress::new(sources.len() as u64);
        let skip = resume.clone();
        ingest = read_sources(
            &sources,
            &normalizer,
            &options,
            &skip,
            ingest,
            &mut |piece, events, stats| {
                if let Some(dl) = &mut dead_letter
                    && let Err(e) = dl.write(stats.take_dead_letters().into_iter())
                {
                    failed.get_or_insert(e);
                }
                for event in events {
                    let t = event.timestamp_ms;
                    if time_range.0.is_some_and(|since| t < since)
                        || time_range.1.is_some_and(|until| t >= until)
                    {
                        stats.outside_time_range += 1;
                        continue;
                    }
                    let alerts = engine.push_from(event, &|| piece.file.clone());
                    record_refused(&mut engine, stats);
                    emit(&engine, alerts, &mut sink, &mut failed, abort_after);
                }
                // Batches end at piece boundaries too, so a resumed run cuts
                // them exactly as an uninterrupted one.
                let alerts = engine.flush();
                emit(&engine, alerts, &mut sink, &mut failed, abort_after);
                stats.duplicates = engine.duplicates();
                if piece.partial {
                    // Mid-piece: nothing to record as done, and no stopping
                    // here (a checkpoint is at a piece boundary).
                    return failed.is_none();
                }
                if piece.last {
                    resume.done.insert(piece.file);
                    resume.current = None;
                } else {
                    resume.current = Some((piece.file, piece.index + 1));
                }
                progress.update(stats, engine.events());
                let stopping = stop.load(Ordering::Relaxed);
                let due = engine.events() - checkpointed_at.0 >= checkpoint_events
                    || checkpointed_at.1.elapsed().as_secs() >= checkpoint_seconds;
                if let Some(dir) = &mut state_dir
                    && (due || stopping)
                    && failed.is_none()
                {
                    let state = RunState::capture(
                        &mut engine,
                        &resume,
                        &mut sink,
                        stats,
                        false,
                        &output_settings,
                    );
                    if let Err(e) = state.and_then(|s| save(dir, &s)) {
                        failed.get_or_insert(e);
                    }
                    checkpointed_at = (engine.events(), Instant::now());
                }
                !stopping && failed.is_none()
            },
        );
        progress.finish();
        if failed.is_some() || stop.load(Ordering::Relaxed) || !args.follow {
            break;
        }
        std::thread::sleep(Duration::from_millis(args.poll_ms));
        // Hot reload, between two batches: a rule whose module file changed
        // is verified and compiled like at start, and replaces the rule that
        // was loaded from that file, its state carried over.
        for rule in &mut loaded {
            if let Some(message) = rule.reload_if_changed(&runtime, trust.as_ref(), &mut engine) {
                anstream::eprintln!("trailguard: {message}");
            }
        }
        // Changed Sigma rule files: the pack made again from them.
        if let Some(watch) = &mut sigma_watch
            && let Some(message) =
                reload_sigma(watch, &loaded, &runtime, trust.as_ref(), &mut engine)
        {
            anstream::eprintln!("trailguard: {message}");
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if stop.load(Ordering::Relaxed) {
        // At a piece boundary: everything so far goes into the checkpoint.
        if let Some(dir) = &mut state_dir {
            let state = RunState::capture(
                &mut engine,
                &resume,
                &mut sink,
                &ingest,
                false,
                &output_settings,
            )?;
            save(dir, &state)?;
        }
        sink.finish()?;
        eprintln!(
            "trailguard: interrupted after {} events{}",
            engine.events(),
            if state_dir.is_some() {
                "; checkpoint written: run again with the same --state-dir to resume"
            } else {
                ""
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    sink.write(engine.finish())?;
    record_refused(&mut engine, &mut ingest);
    if let Some(dir) = &mut state_dir {
        let state = RunState::capture(
            &mut engine,
            &resume,
            &mut sink,
            &ingest,
            true,
            &output_settings,
        )?;
        save(dir, &state)?;
    }
    let kept = sink.finish()?;
    if let Some(mut dl) = dead_letter {
        dl.write(ingest.take_dead_letters().into_iter())?;
        dl.finish()?;
    }
    let elapsed = started.elapsed();
    if let Some(path) = &args.stats {
        write_stats(path, &ingest, &engine.stats(), &failed_at_load, elapsed)?;
    }

    let titles: BTreeMap<&str, &str> = engine
        .rules()
        .into_iter()
        .map(|info| (info.id.as_str(), info.name.as_str()))
        .collect();
    summary(&ingest, &engine.stats(), &titles, elapsed);
    for (rule, n) in engine.suppression_missing_fields() {
        anstream::eprintln!(
            "  {}: {n} alert(s) of rule {rule} lacked one of its alert_suppression group_by fields and were grouped as if it were empty; check the field names",
            crate::style::warning_label()
        );
    }
    if let Some(page) = &args.report {
        let alerts = match &args.output {
            Some(file) => {
                let text = std::fs::read_to_string(file).with_context(|| {
                    format!("cannot read the alerts back from {}", file.display())
                })?;
                trailguard_format::read_alerts(&text).with_context(|| {
                    format!("cannot read the alerts back from {}", file.display())
                })?
            }
            None => trailguard_format::latest_by_id(kept),
        };
        crate::report::write(&alerts, &args.inputs, Some(&asn), page)?;
        eprintln!("  report: {}", page.display());
    }
    for (rule, failure) in &failed_at_load {
        anstream::eprintln!(
            "  rule {} {} at load, it ran on no events: {}",
            crate::style::name(rule),
            crate::style::alarm("QUARANTINED"),
            crate::style::printable(failure)
        );
    }
    let rejected = ingest.rejected_total() > 0;
    let rules_failed = !engine.stats().quarantined().is_empty() || !failed_at_load.is_empty();
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

/// The engine's ingredients: the runtime, every rule compiled (after the
/// trust check), the engine options from flags and file, and (file, digest)
/// of each rule to notice replaced modules.
pub struct RuleSetup {
    pub runtime: Runtime,
    /// The trust policy every rule (and every reload) must pass, if any.
    pub trust: Option<TrustPolicy>,
    pub compiled: Vec<CompiledRule>,
    pub options: EngineOptions,
    pub loaded: Vec<LoadedRule>,
    /// Rules (by file) that misbehaved when loaded, and how.
    pub failed_at_load: Vec<(String, String)>,
}

/// A rule file as loaded, for hot reload: which rule it holds, and how it
/// looked (size, modification time, inode) and hashed when loaded.
pub struct LoadedRule {
    file: PathBuf,
    id: String,
    digest: String,
    stamp: Option<FileStamp>,
}

/// What `stat` says of a file, to notice a change without reading it.
pub type FileStamp = (u64, Option<std::time::SystemTime>, u64);

/// The [`FileStamp`] of `path`, if it can be read.
pub fn file_stamp(path: &Path) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some((metadata.len(), metadata.modified().ok(), inode))
}

/// Compiles a rule file, verified against the trust policy when there is one.
fn compile(
    runtime: &Runtime,
    trust: Option<&TrustPolicy>,
    file: &Path,
) -> Result<CompiledRule, HostError> {
    match trust {
        Some(policy) => runtime.compile_trusted(file, policy),
        None => runtime.compile_rule(file),
    }
}

impl LoadedRule {
    fn new(file: PathBuf, rule: &CompiledRule) -> LoadedRule {
        LoadedRule {
            stamp: file_stamp(&file),
            file,
            id: rule.info().id.clone(),
            digest: rule.digest().to_owned(),
        }
    }

    /// If the file changed since it was loaded: reads it once, verifies and
    /// compiles it like at start, and replaces this file's rule with it
    /// (same id; no downgrade unless allowed). Returns what to tell the
    /// operator, if anything.
    fn reload_if_changed(
        &mut self,
        runtime: &Runtime,
        trust: Option<&TrustPolicy>,
        engine: &mut Engine,
    ) -> Option<String> {
        let stamp = file_stamp(&self.file);
        if stamp == self.stamp {
            return None;
        }
        self.stamp = stamp;
        let result = compile(runtime, trust, &self.file).and_then(|rule| {
            if rule.digest() == self.digest {
                return Ok(None);
            }
            engine.reload(runtime, &self.id, &rule)?;
            Ok(Some(rule))
        });
        match result {
            Ok(None) => None,
            Ok(Some(rule)) => {
                self.digest = rule.digest().to_owned();
                Some(format!(
                    "reloaded rule {} from {} (state carried over), now version {}",
                    self.id,
                    crate::style::name(self.file.display()),
                    rule.info().version
                ))
            }
            Err(e) => Some(format!(
                "{}: {} changed but was not reloaded, rule {} goes on as it was: {}",
                crate::style::warning_label(),
                crate::style::name(self.file.display()),
                self.id,
                crate::style::printable(&e.to_string())
            )),
        }
    }
}

/// Makes the Sigma pack again from its rule files if they changed: read and
/// verified as at start, the pack's component compiled (from the compile
/// cache) with the new configuration, its state carried over. What to tell
/// the operator, if anything.
fn reload_sigma(
    watch: &mut crate::sigma::SigmaWatch,
    loaded: &[LoadedRule],
    runtime: &Runtime,
    trust: Option<&TrustPolicy>,
    engine: &mut Engine,
) -> Option<String> {
    let config = watch.changed(trust)?;
    let pack = loaded.iter().find(|r| r.id == crate::sigma::PACK_ID)?;
    let result = config.and_then(|config| {
        let rule = compile(runtime, trust, &pack.file)?;
        engine.reconfigure(runtime, &rule, config)?;
        Ok(())
    });
    Some(match result {
        Ok(()) => {
            let count = engine
                .rules()
                .iter()
                .filter(|r| r.id != crate::sigma::PACK_ID)
                .count();
            format!("reloaded the Sigma rules (state carried over); {count} rules running in all")
        }
        Err(e) => format!(
            "{}: the Sigma rule files changed but were not reloaded, the running rules go on: {}",
            crate::style::warning_label(),
            crate::style::printable(&format!("{e:#}"))
        ),
    })
}

/// Builds the runtime, checks and compiles the rules (each file read once,
/// verified against the trust policy if one is given), and gathers the
/// engine options.
pub fn setup_rules(args: &RunArgs, settings: &Settings) -> Result<RuleSetup> {
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
        limits: settings.run.limits(),
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir.clone().or_else(default_cache_dir)
        },
        epoch_interruption: true,
    })?;
    // clap makes --trust and --require-signed come together.
    let trust = match &args.trust {
        Some(path) => Some(TrustPolicy::load(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let mut loaded = Vec::new();
    let mut compiled = Vec::new();
    let mut failed_at_load = Vec::new();
    for file in rule_files(&args.rules.rules)? {
        match compile(&runtime, trust.as_ref(), &file) {
            Ok(rule) => {
                loaded.push(LoadedRule::new(file, &rule));
                compiled.push(rule);
            }
            // A rule that misbehaves is left out; the others run.
            Err(HostError::Misbehaved { path, message }) => {
                failed_at_load.push((path.display().to_string(), message));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut options = EngineOptions::default();
    options.rule_configs = crate::sigma::rule_configs(settings, &args.rules.sigma, trust.as_ref())?;
    options.suppression = settings.suppression.clone();
    options.recovery = settings.run.recovery();
    options.allowed_lateness_ms = i64::from(lateness_minutes) * 60_000;
    options.batch_size = batch_size;
    options.dedup_window_ms = i64::from(args.dedup_window.unwrap_or(60)) * 60_000;
    options.allow_downgrade = args.allow_downgrade;
    let future_minutes = args
        .max_future
        .or(settings.input.max_future_minutes)
        .unwrap_or(15);
    let jump_hours = args
        .max_time_jump
        .or(settings.run.max_time_jump_hours)
        .unwrap_or(24);
    options.time_guard = TimeGuardOptions {
        max_future_ms: (future_minutes > 0).then(|| i64::from(future_minutes) * 60_000),
        max_jump_ms: (jump_hours > 0).then(|| i64::from(jump_hours) * 3_600_000),
        ..TimeGuardOptions::default()
    };
    // One rules thread by default: on 2 cores decoding already takes the
    // other core, and more rule threads were slower (docs/performance.md).
    options.shards = args
        .rule_threads
        .or(settings.run.rule_threads)
        .unwrap_or(1)
        .max(1);
    Ok(RuleSetup {
        runtime,
        trust,
        compiled,
        options,
        loaded,
        failed_at_load,
    })
}

/// An engine, with a rule's refusal of its configuration located in the
/// configuration file.
pub fn new_engine(
    runtime: &Runtime,
    compiled: &[CompiledRule],
    options: EngineOptions,
    settings: &Settings,
) -> Result<Engine> {
    match Engine::new(runtime, compiled, options) {
        Ok(engine) => Ok(engine),
        Err(HostError::Config { rule, message }) => match settings.rule_problem(&rule, &message) {
            Some(problem) => bail!("{problem}"),
            None => bail!("rule {rule} rejected its configuration: {message}"),
        },
        Err(e) => Err(e.into()),
    }
}

/// Creates the directory a file is to be written in, if missing.
pub fn ensure_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display())),
        _ => Ok(()),
    }
}

/// Environment variable for tests: abort (as a SIGKILL would) once this many
/// events have reached the rules.
pub const ABORT_HOOK: &str = "TRAILGUARD_TEST_ABORT_AFTER_EVENTS";

/// Writes alerts (remembering the first failure), and aborts when the test
/// hook says so.
fn emit(
    engine: &Engine,
    alerts: Vec<AlertDocument>,
    sink: &mut Sink,
    failed: &mut Option<anyhow::Error>,
    abort_after: Option<u64>,
) {
    if let Err(e) = sink.write(alerts) {
        failed.get_or_insert(e);
    }
    if abort_after.is_some_and(|n| engine.events() >= n) {
        std::process::abort();
    }
}

/// Counts the events the engine's time guard refused as rejected records,
/// each located by its input and eventID (and kept for a dead-letter file).
fn record_refused(engine: &mut Engine, stats: &mut IngestStats) {
    for refused in engine.take_refused() {
        let position = match refused.event.event_id.as_deref() {
            Some(id) => format!("eventID {id}"),
            None => format!(
                "the event at {}",
                trailguard_rule_sdk::format_timestamp_ms(refused.event.timestamp_ms)
            ),
        };
        let record = refused.event.to_ecs().to_string();
        let rejection = Rejection {
            file: refused.origin,
            position,
            reason: refused.reason,
            fragment: None,
        };
        stats.reject_accepted(rejection, record.as_bytes());
    }
}

/// Everything a run needs to resume: where the input was, how much output
/// was written, each rule's state, the counters and the deduplication set.
#[derive(Serialize, Deserialize)]
struct RunState {
    position: Resume,
    output_bytes: u64,
    finished: bool,
    engine: EngineState,
    ingest: IngestStats,
    /// What shapes the output (format, time bounds, suppression): a resumed
    /// run must write the same way.
    output_settings: String,
}

impl RunState {
    /// The state of a checkpoint, migrated from an older format (format 1,
    /// from before checkpoints named their format, has format 2's layout);
    /// a newer format is refused by name.
    fn read(saved: Saved, dir: &str) -> Result<RunState> {
        match saved.format {
            1 | STATE_FORMAT => postcard::from_bytes(&saved.payload).with_context(|| {
                format!(
                    "the checkpoint in {dir} (state format {}) cannot be read; remove the state directory to start over",
                    saved.format
                )
            }),
            newer => bail!(
                "the checkpoint in {dir} is in state format {newer}, written by a newer trailguard; this one reads formats 1 to {STATE_FORMAT}: resume with that version, or remove the state directory to start over"
            ),
        }
    }

    fn capture(
        engine: &mut Engine,
        position: &Resume,
        sink: &mut Sink,
        ingest: &IngestStats,
        finished: bool,
        output_settings: &str,
    ) -> Result<RunState> {
        let (alerts, state) = engine.checkpoint();
        sink.write(alerts)?;
        // Everything emitted so far is durable before the checkpoint says so.
        let output_bytes = sink.flush()?;
        Ok(RunState {
            position: position.clone(),
            output_bytes,
            finished,
            engine: state,
            ingest: ingest.clone(),
            output_settings: output_settings.to_owned(),
        })
    }
}

fn save(dir: &mut StateDir, state: &RunState) -> Result<()> {
    let payload = postcard::to_allocvec(state)?;
    dir.save(&payload).context("cannot write a checkpoint")?;
    Ok(())
}

/// `--dead-letter FILE`: one JSON line per rejected record, with its reason.
struct DeadLetter {
    out: BufWriter<std::fs::File>,
    path: std::path::PathBuf,
}

impl DeadLetter {
    fn create(path: &Path) -> Result<DeadLetter> {
        ensure_parent(path)?;
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
        "dead_letters_dropped": ingest.dead_letters_dropped,
        "outside_time_range": ingest.outside_time_range,
        "repaired_documents": ingest.repaired_documents,
        "without_asn": ingest.without_asn.values().sum::<u64>(),
        "without_asn_by_reason": ingest.without_asn,
        "events": pipeline.events,
        "late_events": pipeline.late_events,
        "time_guard": {
            "future": future_refused(ingest, pipeline),
            "ahead_of_stream": pipeline.time_guard.ahead_of_stream,
            "jumps_confirmed": pipeline.time_guard.jumps,
        },
        "alerts": pipeline.alerts,
        "suppressed": pipeline.suppressed,
        "rule_failures": failures,
        "elapsed_seconds": secs,
        "host_fields_dropped": pipeline.host_fields_dropped,
        "peak_rss_bytes": peak_rss_bytes(),
        "events_per_second": if secs > 0.0 { pipeline.events as f64 / secs } else { 0.0 },
    });
    ensure_parent(path)?;
    std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("cannot write stats file {}", path.display()))
}

/// The process's peak resident set size (Linux: `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
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

fn counts(map: &trailguard_ingest::Counts) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Records refused as dated past the clock: by ingest (most) or by the
/// engine.
fn future_refused(ingest: &IngestStats, pipeline: &PipelineStats) -> u64 {
    ingest
        .rejected
        .get("future-event-time")
        .copied()
        .unwrap_or(0)
        + pipeline.time_guard.future
}

/// The run's summary, on standard error.
fn summary(
    ingest: &IngestStats,
    pipeline: &PipelineStats,
    titles: &BTreeMap<&str, &str>,
    elapsed: Duration,
) {
    let secs = elapsed.as_secs_f64();
    let mut err = anstream::stderr().lock();
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
    if ingest.outside_time_range > 0 {
        line(format!(
            "  outside --since/--until: {}",
            ingest.outside_time_range
        ));
    }
    if ingest.dead_letters_dropped > 0 {
        line(format!(
            "  {}: {} rejected record(s) were counted but not written to the dead letter: too many bad records at once (the budget is {} MiB per piece of input)",
            crate::style::warning_label(),
            ingest.dead_letters_dropped,
            IngestStats::DEAD_LETTER_BUDGET >> 20
        ));
    }
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
    let guard = &pipeline.time_guard;
    let future = future_refused(ingest, pipeline);
    if future + guard.ahead_of_stream + guard.jumps > 0 {
        line(format!(
            "  event time: {future} record(s) refused as dated past the clock, {} as far ahead of the stream; {} jump(s) of the stream confirmed (gaps in the logs)",
            guard.ahead_of_stream, guard.jumps
        ));
    }
    for (rule, n) in &pipeline.alerts {
        let merged = match pipeline.suppressed.get(rule) {
            Some(merged) => format!(" ({merged} more suppressed into them)"),
            None => String::new(),
        };
        // A Sigma rule's id is a UUID: its title says which it is.
        let title = match titles.get(rule.as_str()) {
            Some(title) if title != rule => format!(" \u{2014} {title}"),
            _ => String::new(),
        };
        line(format!("  rule {rule}: {n} alert(s){merged}{title}"));
    }
    for (rule, n) in &pipeline.host_fields_dropped {
        line(format!(
            "  {}: rule {rule} wrote {n} host-owned field(s) (kibana.*, threat.*, @timestamp, event.kind, ecs.version) into its alerts; dropped",
            crate::style::warning_label()
        ));
    }
    for f in &pipeline.failures {
        let what = match f.recovery {
            Recovery::Recovered => "restarted from its last checkpoint; the retry succeeded",
            Recovery::Quarantined => &crate::style::alarm(
                "QUARANTINED: it gets no more events and its alerts are incomplete",
            ),
        };
        line(format!(
            "  rule {} failed in {} after {} events: {}\n    {what}",
            f.rule,
            f.call,
            f.events_before,
            crate::style::printable(&f.message)
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

/// Fills what the command line left unset from the configuration file.
fn with_settings(mut args: RunArgs, settings: &Settings) -> Result<RunArgs> {
    if args.inputs.is_empty() {
        args.inputs = settings.input.paths.clone().unwrap_or_default();
    }
    if args.inputs.is_empty() && args.kafka_brokers.is_none() {
        bail!(
            "no input: name CloudTrail files or directories (or - for standard input), or set [input] paths in the configuration file"
        );
    }
    if args.rules.rules.is_empty() {
        args.rules.rules = settings.run.rules.clone().unwrap_or_default();
    }
    let or = |flag: &mut Option<PathBuf>, file: &Option<PathBuf>| {
        if flag.is_none() {
            flag.clone_from(file);
        }
    };
    or(&mut args.asn_db, &settings.run.asn_db);
    or(&mut args.output, &settings.output.path);
    or(&mut args.report, &settings.output.report);
    or(&mut args.stats, &settings.output.stats);
    or(&mut args.dead_letter, &settings.input.dead_letter);
    or(&mut args.state_dir, &settings.run.state_dir);
    args.strict |= settings.input.strict.unwrap_or(false);
    args.dedup_window = args.dedup_window.or(settings.input.dedup_window_minutes);
    args.max_document_mib = args.max_document_mib.or(settings.input.max_document_mib);
    args.checkpoint_events = args.checkpoint_events.or(settings.run.checkpoint_events);
    args.checkpoint_seconds = args.checkpoint_seconds.or(settings.run.checkpoint_seconds);
    args.since = args
        .since
        .take()
        .or_else(|| settings.input.since.as_ref().map(|t| t.text()));
    args.until = args
        .until
        .take()
        .or_else(|| settings.input.until.as_ref().map(|t| t.text()));
    args.elastic_index = args
        .elastic_index
        .take()
        .or_else(|| settings.output.elastic_index.clone());
    Ok(args)
}

/// The alert format: the flag, the file's `[output] format`, or ECS.
fn alert_format(args: &RunArgs, settings: &Settings) -> Result<Format> {
    let mut format = match (args.format, &settings.output.format) {
        (Some(AlertFormat::Ecs), _) => Format::Ecs,
        (Some(AlertFormat::ElasticBulk), _) => "elastic-bulk".parse()?,
        (Some(AlertFormat::Ocsf), _) => Format::Ocsf,
        (None, Some(name)) => name.parse()?,
        (None, None) => Format::Ecs,
    };
    if let (Format::ElasticBulk { index }, Some(name)) = (&mut format, &args.elastic_index) {
        name.clone_into(index);
    }
    Ok(format)
}

/// `--since` / `--until`: an RFC 3339 time, or a date meaning midnight UTC;
/// milliseconds since the Unix epoch.
pub fn parse_time_bound(text: &str) -> Result<i64, String> {
    let text = text.trim();
    trailguard_format::parse_time_ms(text)
        .or_else(|| trailguard_format::parse_time_ms(&format!("{text}T00:00:00Z")))
        .ok_or_else(|| {
            format!("`{text}` is not a time: write 2026-04-01 or 2026-04-01T12:00:00Z (RFC 3339)")
        })
}
