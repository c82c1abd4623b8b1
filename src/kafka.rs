//! `trailguard publish` and `trailguard run --kafka-brokers`: the CLI side
//! of `trailguard_kafka`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use trailguard_format::{AlertDocument, Format};
use trailguard_ingest::{Normalizer, ReadOptions, expand_inputs};
use trailguard_kafka::{AlertSink, AlertsTopic, PublishOptions, Worker, WorkerOptions};

use crate::cli::{PublishArgs, RunArgs, open_asn_db};
use crate::run::{RuleSetup, new_engine, setup_rules};
use crate::settings::Settings;

/// `trailguard publish`.
pub fn publish(args: PublishArgs) -> Result<ExitCode> {
    let asn = open_asn_db(args.asn_db)?;
    let normalizer = Normalizer::new(Some(&asn));
    let sources = expand_inputs(&args.inputs)?;
    let mut options = PublishOptions::new(&args.brokers, &args.topic);
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
    let mut options = WorkerOptions::new(brokers, topic, group);
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
            "  {partition}: {} events, {} rejected, {} restore(s) (last {} bytes in {} ms), {} checkpoint(s) (last {} bytes, {} ms in all)",
            p.events,
            p.rejected,
            p.restores,
            p.restore_bytes,
            p.restore_ms,
            p.checkpoints,
            p.checkpoint_bytes,
            p.checkpoint_ms
        );
    }
    if let Some(path) = &args.stats {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write stats file {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
