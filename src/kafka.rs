//! `trailguard publish` and `trailguard run --kafka-brokers`: the CLI side
//! of `trailguard_kafka`.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use trailguard_format::{AlertDocument, Format};
use trailguard_ingest::{Normalizer, ReadOptions, expand_inputs};
use trailguard_kafka::{
    AlertSink, AlertsTopic, Auth, KafkaKey, PublishOptions, Worker, WorkerOptions,
};

use crate::cli::{PublishArgs, RunArgs, open_asn_db};
use crate::run::{RuleSetup, new_engine, setup_rules};
use crate::settings::Settings;

/// The environment variable holding the Kafka key itself.
const KEY_VARIABLE: &str = "TRAILGUARD_KAFKA_KEY";

/// The key shared by the publisher and the workers: from `key_file`, or
/// the value of `TRAILGUARD_KAFKA_KEY` (`env_key`); never from the command
/// line, which `ps` shows. Without one, only `insecure` lets Kafka run.
fn kafka_auth(key_file: Option<&Path>, env_key: Option<OsString>, insecure: bool) -> Result<Auth> {
    let env_key = env_key.filter(|k| !k.is_empty());
    let secret = match (key_file, env_key) {
        (Some(file), Some(_)) => anyhow::bail!(
            "both {KEY_VARIABLE} and a key file ({}) give a Kafka key: keep one",
            file.display()
        ),
        (Some(file), None) => {
            let bytes = std::fs::read(file)
                .with_context(|| format!("cannot read the Kafka key file {}", file.display()))?;
            Some((bytes.trim_ascii().to_vec(), file.display().to_string()))
        }
        (None, Some(key)) => {
            let key = key
                .into_string()
                .map_err(|_| anyhow::anyhow!("{KEY_VARIABLE} is not UTF-8 text"))?;
            Some((key.trim().as_bytes().to_vec(), KEY_VARIABLE.to_owned()))
        }
        (None, None) => None,
    };
    match (secret, insecure) {
        (Some((_, from)), true) => {
            anyhow::bail!("--insecure-kafka, and a Kafka key in {from}: drop one")
        }
        (Some((secret, from)), false) => Ok(Auth::Key(
            KafkaKey::new(&secret).with_context(|| format!("the Kafka key in {from}"))?,
        )),
        (None, true) => {
            eprintln!(
                "trailguard: warning: --insecure-kafka: control messages and checkpoints are not authenticated; broker ACLs must keep everyone else from producing to the input and state topics (docs/scaling.md)"
            );
            Ok(Auth::Insecure)
        }
        (None, false) => anyhow::bail!(
            "no Kafka key: set {KEY_VARIABLE} (or --kafka-key-file FILE, or [run] kafka_key_file) to the secret shared by `trailguard publish` and the workers, at least 32 bytes (e.g. `openssl rand -base64 32`); or pass --insecure-kafka to both if broker ACLs alone protect the topics (docs/scaling.md)"
        ),
    }
}

/// `trailguard publish`.
pub fn publish(args: PublishArgs) -> Result<ExitCode> {
    let auth = kafka_auth(
        args.kafka_key_file.as_deref(),
        std::env::var_os(KEY_VARIABLE),
        args.insecure_kafka,
    )?;
    let asn = open_asn_db(args.asn_db)?;
    // Events carry their whole record: workers extract whatever paths
    // their rules read.
    let normalizer = Normalizer::new(Some(&asn)).keep_original(true);
    let sources = expand_inputs(&args.inputs)?;
    let mut options = PublishOptions::new(&args.brokers, &args.topic, auth);
    options.create_partitions = args.partitions;
    options.end_of_input = !args.no_end;
    let started = std::time::Instant::now();
    let report =
        trailguard_kafka::publish(&options, &sources, &normalizer, &ReadOptions::default())?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "trailguard: published {} event(s) to {} ({} partitions: {}) in {secs:.2} s, {:.0} events/s; {} record(s) read, {} rejected{}",
        report.events,
        args.topic,
        report.per_partition.len(),
        report
            .per_partition
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        report.events as f64 / secs.max(1e-9),
        report.ingest.records_read,
        report.ingest.rejected_total(),
        if options.end_of_input {
            "; end of input marked"
        } else {
            ""
        }
    );
    Ok(ExitCode::from(if report.ingest.rejected_total() > 0 {
        crate::run::EXIT_REJECTIONS
    } else {
        0
    }))
}

/// Alerts to a file (appended: a restarted worker adds to it) or standard
/// output, one document per line in the chosen format.
struct FileSink {
    out: std::io::BufWriter<Box<dyn Write + Send>>,
    file: Option<std::fs::File>,
    format: Format,
    name: String,
    line: Vec<u8>,
}

impl FileSink {
    fn open(path: Option<&PathBuf>, format: Format) -> Result<FileSink> {
        let (out, file, name): (Box<dyn Write + Send>, _, _) = match path {
            Some(p) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open {}", p.display()))?;
                (
                    Box::new(file.try_clone()?),
                    Some(file),
                    p.display().to_string(),
                )
            }
            None => (Box::new(std::io::stdout()), None, "standard output".into()),
        };
        Ok(FileSink {
            out: std::io::BufWriter::new(out),
            file,
            format,
            name,
            line: Vec::new(),
        })
    }
}

impl AlertSink for FileSink {
    fn write(&mut self, alerts: &[AlertDocument]) -> Result<(), String> {
        for alert in alerts {
            self.line.clear();
            self.format.write(alert, &mut self.line);
            self.out
                .write_all(&self.line)
                .map_err(|e| format!("{}: {e}", self.name))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        self.out
            .flush()
            .map_err(|e| format!("{}: {e}", self.name))?;
        if let Some(file) = &self.file {
            file.sync_data()
                .map_err(|e| format!("{}: {e}", self.name))?;
        }
        Ok(())
    }
}

/// `trailguard run --kafka-brokers B --topic T --group G`: a worker until
/// SIGINT/SIGTERM, which checkpoint every owned partition and leave.
pub fn work(args: &RunArgs, settings: &Settings, format: Format) -> Result<ExitCode> {
    let (Some(brokers), Some(topic), Some(group)) = (&args.kafka_brokers, &args.topic, &args.group)
    else {
        anyhow::bail!("--kafka-brokers needs --topic and --group");
    };
    let key_file = args
        .kafka_key_file
        .as_deref()
        .or(settings.run.kafka_key_file.as_deref());
    let auth = kafka_auth(
        key_file,
        std::env::var_os(KEY_VARIABLE),
        args.insecure_kafka,
    )?;
    let RuleSetup {
        runtime,
        compiled,
        options: mut engine_options,
        failed_at_load,
        ..
    } = setup_rules(args, settings)?;
    for (rule, failure) in &failed_at_load {
        anstream::eprintln!(
            "trailguard: rule {rule} {} at load, left out: {failure}",
            crate::style::alarm("QUARANTINED")
        );
    }
    // Partitions are the unit of parallelism here: one shard each.
    engine_options.shards = 1;
    // Fail early, with the configuration's locations, if the rules refuse
    // their settings; the worker builds one engine per partition later.
    new_engine(&runtime, &compiled, engine_options.clone(), settings)?;
    let sink: Box<dyn AlertSink> = match &args.alerts_topic {
        Some(alerts) => Box::new(AlertsTopic::new(brokers, alerts, format)?),
        None => Box::new(FileSink::open(args.output.as_ref(), format)?),
    };
    // A checkpoint holds every rule's snapshot and the host's own state.
    let max_checkpoint_bytes = settings
        .run
        .limits()
        .max_snapshot_bytes
        .saturating_mul(compiled.len() + 1);
    let mut options = WorkerOptions::new(brokers, topic, group, auth);
    options.max_checkpoint_bytes = max_checkpoint_bytes;
    if let Some(state) = &args.state_topic {
        state.clone_into(&mut options.state_topic);
    }
    options.session_timeout = Duration::from_millis(args.session_timeout_ms);
    if let Some(n) = args.checkpoint_events {
        options.checkpoint_events = n;
    }
    if let Some(s) = args.checkpoint_seconds {
        options.checkpoint_interval = Duration::from_secs(s);
    }
    options.abort_after_events = std::env::var(crate::run::ABORT_HOOK)
        .ok()
        .and_then(|v| v.parse().ok());
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    eprintln!("trailguard: worker of group {group} on {topic} at {brokers}");
    let worker = Worker::new(Arc::new(runtime), compiled, engine_options, options, sink)?;
    let report = worker.run(&stop)?;
    let events: u64 = report.partitions.values().map(|p| p.events).sum();
    eprintln!(
        "trailguard: worker stopped after {:.1} s: {events} event(s), {:.0} events/s, {} alert(s); per partition:",
        report.elapsed_seconds,
        events as f64 / report.elapsed_seconds.max(1e-9),
        report.alerts
    );
    for (partition, p) in &report.partitions {
        eprintln!(
            "  {partition}: {} events, {} rejected, {} refused control(s), {} refused checkpoint message(s), {} restore(s) (last {} bytes in {} ms), {} checkpoint(s) (last {} bytes, {} ms in all)",
            p.events,
            p.rejected,
            p.refused_controls,
            p.refused_checkpoints,
            p.restores,
            p.restore_bytes,
            p.restore_ms,
            p.checkpoints,
            p.checkpoint_bytes,
            p.checkpoint_ms
        );
    }
    if report.refusals.total > 0 {
        eprintln!(
            "trailguard: {} message(s) refused (not authentic, replayed or out of bounds), each ignored; --stats lists the first {} with topic, partition and offset",
            report.refusals.total,
            report.refusals.first.len()
        );
    }
    if let Some(path) = &args.stats {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write stats file {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_key_comes_from_a_file_or_the_environment_never_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("kafka.key");
        std::fs::write(&file, format!("{KEY}\n")).expect("write");
        assert!(matches!(
            kafka_auth(Some(&file), None, false),
            Ok(Auth::Key(_))
        ));
        assert!(matches!(
            kafka_auth(None, Some(KEY.into()), false),
            Ok(Auth::Key(_))
        ));
        let both = kafka_auth(Some(&file), Some(KEY.into()), false).expect_err("both");
        assert!(both.to_string().contains("keep one"), "{both}");
        let missing = kafka_auth(Some(&dir.path().join("none")), None, false).expect_err("missing");
        assert!(format!("{missing:#}").contains("none"), "{missing:#}");
    }

    #[test]
    fn without_a_key_only_an_explicit_insecure_runs() {
        let err = kafka_auth(None, Some("".into()), false).expect_err("no key");
        let text = err.to_string();
        assert!(
            text.contains(KEY_VARIABLE) && text.contains("--insecure-kafka"),
            "{text}"
        );
        assert!(matches!(kafka_auth(None, None, true), Ok(Auth::Insecure)));
        let err = kafka_auth(None, Some(KEY.into()), true).expect_err("contradiction");
        assert!(err.to_string().contains("drop one"), "{err}");
        let short = kafka_auth(None, Some("short\n".into()), false).expect_err("short");
        assert!(format!("{short:#}").contains("at least 32"), "{short:#}");
    }
}
