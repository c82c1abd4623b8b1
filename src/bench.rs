//! `trailguard bench`: every stage's throughput on the same generated input,
//! measured in one process so the ratios compare like with like.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use record_probe::RecordProbe;
use rule_root_activity::RootActivity;
use rule_sensitive_untrusted_asn::SensitiveUntrustedAsn;
use rule_unusual_asn::UnusualAsn;
use serde_json::{Value, json};
use trailguard_gen::TrafficConfig;
use trailguard_host::{
    Detector, Engine, EngineOptions, NativeRule, Pipeline, RuleInfo, Runtime, RuntimeOptions,
};
use trailguard_ingest::{
    IngestStats, NormalizedEvent, Normalizer, ReadOptions, RecordPaths, Resume, Source,
    decode_bytes, parse_only, read_sources,
};

use crate::cli::{BenchArgs, beside_binary, open_asn_db};
use crate::rules::rule_files;

const LATENESS_MS: i64 = 15 * 60_000;

/// What the record probe reads on every event: an object, a string and a
/// boolean of each generated record.
const PROBE_PATHS: [&str; 3] = [
    "userIdentity.sessionContext.attributes",
    "requestID",
    "readOnly",
];

fn probe_config() -> String {
    json!({ "fields": PROBE_PATHS }).to_string()
}

/// The median of some measurements (0 if there are none).
fn median(times: impl IntoIterator<Item = f64>) -> f64 {
    let mut times: Vec<f64> = times.into_iter().collect();
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Events per second and nanoseconds per event of `events` in `seconds`.
fn rate(events: usize, seconds: f64) -> Value {
    let secs = seconds.max(1e-9);
    json!({
        "events": events,
        "seconds": seconds,
        "events_per_second": events as f64 / secs,
        "ns_per_event": secs * 1e9 / events.max(1) as f64,
    })
}

/// Rule id → configuration: the Sigma pack's rules; the others' defaults.
type Configs = std::collections::BTreeMap<String, String>;

fn config_of<'a>(configs: &'a Configs) -> impl Fn(&RuleInfo) -> String + Copy + 'a {
    move |info| configs.get(&info.id).cloned().unwrap_or_default()
}

/// The native build of a shipped rule, if `id` is one.
fn native(id: &str, configs: &Configs) -> Option<Box<dyn Detector>> {
    let rule: Box<dyn Detector> = match id {
        crate::sigma::PACK_ID => Box::new(
            NativeRule::<rule_sigma::SigmaPack>::new(configs.get(id).map_or("", String::as_str))
                .ok()?,
        ),
        "aws-sensitive-untrusted-asn" => {
            Box::new(NativeRule::<SensitiveUntrustedAsn>::new("").ok()?)
        }
        "aws-unusual-asn" => Box::new(NativeRule::<UnusualAsn>::new("").ok()?),
        "aws-root-activity" => Box::new(NativeRule::<RootActivity>::new("").ok()?),
        "aws-s3-bucket-made-public" => {
            Box::new(NativeRule::<rule_s3_public_bucket::S3PublicBucket>::new("").ok()?)
        }
        _ => return None,
    };
    Some(rule)
}

/// Runs the events through a pipeline of `detectors` in batches of 1024.
/// Only the rules' work is timed: the batches are built before the clock
/// starts and freed after it stops.
fn through(detectors: Vec<Box<dyn Detector>>, events: &[NormalizedEvent]) -> f64 {
    let batches: Vec<Arc<Vec<NormalizedEvent>>> = events
        .chunks(1024)
        .map(|chunk| Arc::new(chunk.to_vec()))
        .collect();
    let mut pipeline = Pipeline::new(detectors, LATENESS_MS);
    let started = Instant::now();
    for batch in &batches {
        pipeline.push(Arc::clone(batch));
    }
    pipeline.finish();
    let seconds = started.elapsed().as_secs_f64();
    drop(pipeline);
    seconds
}

/// An engine over every rule, as `run` builds it, on `shards` threads.
fn engine(
    runtime: &Runtime,
    rules: &[std::path::PathBuf],
    configs: &Configs,
    shards: usize,
) -> Result<Engine> {
    let compiled = rules
        .iter()
        .map(|path| runtime.compile_rule(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut options = EngineOptions::default();
    options.allowed_lateness_ms = LATENESS_MS;
    options.shards = shards;
    options.rule_configs = configs.clone();
    Ok(Engine::new(runtime, &compiled, options)?)
}

/// The whole path on one thread: read the file, decode, normalize, enrich,
/// then every rule, sequentially.
fn single_thread(
    file: &Path,
    normalizer: &Normalizer<'_>,
    runtime: &Runtime,
    rules: &[std::path::PathBuf],
    configs: &Configs,
) -> Result<(usize, f64)> {
    let mut engine = engine(runtime, rules, configs, 1)?;
    let started = Instant::now();
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    decode_bytes(
        "bench",
        &text,
        normalizer,
        &mut IngestStats::default(),
        &mut |e| {
            engine.push(e);
        },
    );
    engine.finish();
    Ok((engine.events() as usize, started.elapsed().as_secs_f64()))
}

/// The whole `run` path over `file`, as `run` does it by default: read and
/// decode on all cores (extracting the record paths `engine`'s rules read),
/// the rules on their own thread.
fn all_cores(file: &Path, normalizer: &Normalizer<'_>, mut engine: Engine) -> (usize, f64) {
    let normalizer = normalizer.clone().with_paths(engine.record_paths().clone());
    let started = Instant::now();
    read_sources(
        &[Source::File(file.to_owned())],
        &normalizer,
        &ReadOptions::default(),
        &Resume::default(),
        IngestStats::default(),
        &mut |_, events, _| {
            for e in events {
                engine.push(e);
            }
            engine.flush();
            true
        },
    );
    engine.finish();
    (engine.events() as usize, started.elapsed().as_secs_f64())
}

/// Parses, normalizes and enriches `text` on one thread, `rounds` times:
/// the events, and the median time.
fn decode_timed(
    text: &[u8],
    normalizer: &Normalizer<'_>,
    rounds: usize,
) -> (Vec<NormalizedEvent>, f64) {
    let mut events = Vec::new();
    let seconds = median((0..rounds).map(|_| {
        events = Vec::new();
        let started = Instant::now();
        decode_bytes(
            "bench",
            text,
            normalizer,
            &mut IngestStats::default(),
            &mut |e| events.push(e),
        );
        started.elapsed().as_secs_f64()
    }));
    (events, seconds)
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let asn = open_asn_db(args.asn_db.clone())?;
    let normalizer = Normalizer::new(Some(&asn));
    let config = TrafficConfig {
        events: args.events,
        ..TrafficConfig::for_profile(args.profile.into())
    };
    let mut text = Vec::new();
    crate::generate::ndjson(&config, &mut text)?;
    let file = std::env::temp_dir().join(format!("trailguard-bench-{}.ndjson", std::process::id()));
    std::fs::write(&file, &text).with_context(|| format!("cannot write {}", file.display()))?;

    let rounds = args.rounds as usize;
    let runtime = Runtime::new(RuntimeOptions::default())?;
    let rules = rule_files(&args.rules.rules)?;
    // The Sigma pack runs the rules `--sigma` names (none: it is empty, and
    // the figures compare with runs without it).
    let configs = crate::sigma::rule_configs(
        &crate::settings::Settings::default(),
        &args.rules.sigma,
        None,
    )?;
    let config = config_of(&configs);
    // What `run` extracts for these rules.
    let mut requests = Vec::new();
    for path in &rules {
        let rule = runtime.instantiate(&runtime.compile_rule(path)?, config)?;
        requests.push((rule.record_paths().to_vec(), rule.event_test()));
    }
    let normalizer = normalizer.with_paths(RecordPaths::from_requests(requests));

    // Parse only: the floor of reading CloudTrail JSON.
    let mut parsed = 0;
    let parse_seconds = median((0..rounds).map(|_| {
        let started = Instant::now();
        parsed = parse_only(&text);
        started.elapsed().as_secs_f64()
    }));
    let parse = rate(parsed, parse_seconds);

    // Parse, normalize, enrich, one thread.
    let (events, decode_seconds) = decode_timed(&text, &normalizer, rounds);
    let decode = rate(events.len(), decode_seconds);

    let mut per_rule = serde_json::Map::new();
    let mut component_vs_native = serde_json::Map::new();
    for path in &rules {
        let compiled = runtime.compile_rule(path)?;
        let id = runtime.instantiate(&compiled, config)?.info().id.clone();
        let has_native = native(&id, &configs).is_some();
        let (mut wasm, mut natives) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let component = runtime.instantiate(&compiled, config)?;
            wasm.push(through(vec![Box::new(component)], &events));
            if let Some(rule) = native(&id, &configs) {
                natives.push(through(vec![rule], &events));
            }
        }
        let wasm_seconds = median(wasm);
        let mut entry = json!({ "component": rate(events.len(), wasm_seconds) });
        if has_native {
            let native_seconds = median(natives);
            entry["native"] = rate(events.len(), native_seconds);
            component_vs_native.insert(id.clone(), json!(wasm_seconds / native_seconds.max(1e-9)));
        }
        per_rule.insert(id, entry);
    }

    let probe = args
        .probe
        .clone()
        .or_else(|| beside_binary("bench-components/record-probe.wasm"))
        .filter(|p| p.is_file());
    let record_fields = match &probe {
        Some(probe) => Some(record_fields(probe, &runtime, &normalizer, &text, rounds)?),
        None => None,
    };

    let (mut singles, mut alls) = (Vec::new(), Vec::new());
    let (mut n1, mut n2) = (0, 0);
    for _ in 0..rounds {
        let (n, seconds) = single_thread(&file, &normalizer, &runtime, &rules, &configs)?;
        n1 = n;
        singles.push(seconds);
        let (n, seconds) = all_cores(&file, &normalizer, engine(&runtime, &rules, &configs, 1)?);
        n2 = n;
        alls.push(seconds);
    }
    let (single, all) = (median(singles), median(alls));
    let _ = std::fs::remove_file(&file);
    let single = rate(n1, single);
    let all_cores = rate(n2, all);
    let eps = |v: &Value| v["events_per_second"].as_f64().unwrap_or_default();
    let report = json!({
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) },
        "input": { "events": args.events, "bytes": text.len() },
        "rounds": rounds,
        "stages": {
            "parse_only": parse,
            "parse_normalize_enrich": decode,
            "rules": per_rule,
            "pipeline_single_thread": single,
            "pipeline_all_cores": all_cores,
            "record_fields": record_fields,
        },
        "ratios": {
            "component_vs_native": component_vs_native,
            "pipeline_vs_parse": eps(&all_cores) / eps(&parse).max(1e-9),
            "cores_scaling": eps(&all_cores) / eps(&single).max(1e-9),
        },
        "peak_rss_bytes": crate::run::peak_rss_bytes(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let row = |name: &str, v: &Value| {
        println!(
            "{name:<48} {:>12.0} events/s {:>9.1} ns/event",
            v["events_per_second"].as_f64().unwrap_or_default(),
            v["ns_per_event"].as_f64().unwrap_or_default()
        )
    };
    println!(
        "{} events ({} bytes of NDJSON), {} core(s)",
        args.events,
        text.len(),
        report["machine"]["cores"]
    );
    row("parse only", &report["stages"]["parse_only"]);
    row(
        "parse + normalize + enrich (1 thread)",
        &report["stages"]["parse_normalize_enrich"],
    );
    if let Some(rules) = report["stages"]["rules"].as_object() {
        for (id, v) in rules {
            if !v["native"].is_null() {
                row(&format!("rule {id} native"), &v["native"]);
            }
            row(&format!("rule {id} component"), &v["component"]);
        }
    }
    row(
        "pipeline, all rules, one thread",
        &report["stages"]["pipeline_single_thread"],
    );
    row(
        "pipeline, all rules, all cores",
        &report["stages"]["pipeline_all_cores"],
    );
    let probe = &report["stages"]["record_fields"];
    if !probe.is_null() {
        let label = format!("{} record paths", PROBE_PATHS.len());
        row(
            &format!("parse + normalize + enrich + {label} (1 thread)"),
            &probe["parse_normalize_enrich"],
        );
        row(
            &format!("rule record-probe ({label}) native"),
            &probe["native"],
        );
        row(
            &format!("rule record-probe ({label}) component"),
            &probe["component"],
        );
        row(
            &format!("pipeline + record-probe ({label}), all cores"),
            &probe["pipeline_all_cores"],
        );
        println!("record fields: {}", probe["ratios"]);
    }
    println!("ratios: {}", report["ratios"]);
    if let Some(peak) = report["peak_rss_bytes"].as_u64() {
        println!("peak memory: {:.1} MiB", peak as f64 / 1048576.0);
    }
    Ok(ExitCode::SUCCESS)
}

/// What reading raw-record fields costs: the record probe reading
/// [`PROBE_PATHS`] on every event (no filter), natively and as a component,
/// the decoding that extracts them, and the whole pipeline with the probe
/// beside the other rules against the parse-only floor.
fn record_fields(
    probe: &Path,
    runtime: &Runtime,
    normalizer: &Normalizer<'_>,
    text: &[u8],
    rounds: usize,
) -> Result<Value> {
    let compiled = runtime.compile_rule(probe)?;
    let normalizer = normalizer
        .clone()
        .with_paths(RecordPaths::new(PROBE_PATHS.map(String::from)));
    let (events, decode_seconds) = decode_timed(text, &normalizer, rounds);
    let (mut wasm, mut natives, mut parses, mut pipelines) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let file = std::env::temp_dir().join(format!(
        "trailguard-bench-probe-{}.ndjson",
        std::process::id()
    ));
    std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    let mut n = 0;
    for _ in 0..rounds {
        let component = runtime.instantiate(&compiled, |_| probe_config())?;
        wasm.push(through(vec![Box::new(component)], &events));
        let native = NativeRule::<RecordProbe>::new(&probe_config())?;
        natives.push(through(vec![Box::new(native)], &events));
        let started = Instant::now();
        parse_only(text);
        parses.push(started.elapsed().as_secs_f64());
        // `run` with the probe: its paths extracted while decoding on all
        // cores (the engine's union), the probe fed on the rules thread.
        let mut options = EngineOptions::default();
        options.allowed_lateness_ms = LATENESS_MS;
        options
            .rule_configs
            .insert(record_probe::RULE_ID.into(), probe_config());
        let engine = Engine::new(runtime, std::slice::from_ref(&compiled), options)?;
        let (count, seconds) = all_cores(&file, &normalizer, engine);
        n = count;
        pipelines.push(seconds);
    }
    let _ = std::fs::remove_file(&file);
    let (wasm, native, parse, pipeline) = (
        median(wasm),
        median(natives),
        median(parses),
        median(pipelines),
    );
    Ok(json!({
        "paths": PROBE_PATHS,
        "parse_normalize_enrich": rate(events.len(), decode_seconds),
        "native": rate(events.len(), native),
        "component": rate(events.len(), wasm),
        "pipeline_all_cores": rate(n, pipeline),
        "ratios": {
            "component_vs_native": wasm / native.max(1e-9),
            "pipeline_vs_parse": parse / pipeline.max(1e-9),
        },
    }))
}
