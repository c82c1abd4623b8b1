//! Command-line arguments and the small `asn` commands.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use trailguard_asn::{AsnDb, import_csv};

/// Detection runtime for AWS CloudTrail: sandboxed WebAssembly rules over
/// ASN-enriched audit logs.
#[derive(Parser, Debug)]
#[command(name = "trailguard", version, about, long_about = None, after_help = "\
Examples:
  cargo xtask build && cargo xtask asn            # build the CLI, the rules, the ASN database
  trailguard run --asn-db target/asn/asn.mmdb logs/
  trailguard run --config trailguard.toml --report report.html
  trailguard help run

Exit status: 0 success; 1 failure (bad arguments, configuration or input
files, a check that found problems); `run` adds 3 (records rejected) and 2
(a rule was quarantined). Docs: README.md, docs/.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every rule over CloudTrail input and write alerts as NDJSON.
    #[command(after_help = "\
Examples:
  trailguard run --asn-db target/asn/asn.mmdb examples/data
  zcat delivery.json.gz | trailguard run --asn-db asn.mmdb -o alerts.ndjson -
  trailguard run --format ocsf --since 2026-04-01 -o findings.ndjson logs/
  trailguard run --config trailguard.toml --report report.html
  trailguard run --kafka-brokers localhost:9092 --topic cloudtrail --group detect -o alerts.ndjson

Exit status: 0 the run completed and every record was read; 3 it completed
but some records were rejected (the summary, --stats and --dead-letter say
which, with file and position); 2 it completed but a rule kept failing and
was quarantined; 1 it could not run (bad arguments, unreadable rule,
configuration or ASN database), or --strict and a record was rejected.")]
    Run(Box<RunArgs>),
    /// Build or query the ASN database.
    #[command(
        subcommand,
        after_help = "\
Examples:
  trailguard asn import --ipv4 asn-ipv4.csv --ipv6 asn-ipv6.csv -o asn.mmdb
  trailguard asn lookup --asn-db asn.mmdb 3.80.1.2"
    )]
    Asn(AsnCommand),
    /// List, inspect, sign and verify rule components.
    #[command(
        subcommand,
        after_help = "\
Examples:
  trailguard rules list
  trailguard rules inspect target/modules/rule-unusual-asn.wasm
  trailguard rules verify --trust trust.toml vendor/*.wasm"
    )]
    Rules(RulesCommand),
    /// Check Sigma rule files: parse them in the Sigma pack, list what each
    /// file's rules read, and lint them against a sample of CloudTrail.
    #[command(
        subcommand,
        after_help = "\
Examples:
  trailguard sigma check rules/sigma
  trailguard sigma check --sample logs/ my-rules/*.yml

See docs/sigma.md."
    )]
    Sigma(SigmaCommand),
    /// Create a new rule crate under modules/ that builds, tests and loads.
    #[command(after_help = "\
Example (from the workspace root):
  trailguard new-rule root-activity --title \"AWS root account activity\"
  cargo xtask test

See docs/writing-a-rule.md.")]
    NewRule(NewRuleArgs),
    /// Generate realistic CloudTrail with injected attacks and a ground-truth file.
    #[command(after_help = "\
Examples:
  trailguard gen --events 1000000 -o cloudtrail.ndjson       # + cloudtrail.ground-truth.json
  trailguard gen --profile org -o org.ndjson                 # 1M records shaped like an organisation
  trailguard gen --format s3 --days 30 -o deliveries         # gzip S3 objects + deliveries.ground-truth.json")]
    Gen(GenArgs),
    /// Publish CloudTrail to Kafka: one message per normalized, enriched
    /// event, keyed by identity, for `run --kafka-brokers` workers.
    #[command(after_help = "\
Examples:
  trailguard publish --brokers localhost:9092 --topic cloudtrail --partitions 6 logs/
  zcat delivery.json.gz | trailguard publish --brokers b1:9092 --topic cloudtrail --no-end -

Each event becomes a flat ECS JSON message keyed by user.name and identity
type (Java-compatible murmur2 partitioning), timestamped with its event
time. At the end every partition gets the newest event time and, unless
--no-end, an end-of-input marker. See docs/scaling.md.")]
    Publish(PublishArgs),
    /// Check a configuration file: unknown keys, wrong types and rule
    /// settings the rules refuse, each with its line and column.
    #[command(
        subcommand,
        after_help = "\
Example:
  trailguard config check trailguard.toml"
    )]
    Config(ConfigCommand),
    /// Write a self-contained HTML page of alerts: per alert the identity's
    /// calls by network over time, the alert's events highlighted.
    #[command(after_help = "\
Examples:
  trailguard report alerts.ndjson --input logs/ -o report.html
  trailguard report findings.ocsf.ndjson -o report.html     # without timelines

Alerts in any --format are read. With --input (the CloudTrail the alerts
came from), each alert shows its identity's calls by network from 7 days
before the alert to 1 hour after.")]
    Report(ReportArgs),
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  trailguard completions bash > /etc/bash_completion.d/trailguard
  trailguard completions zsh > \"${fpath[1]}/_trailguard\"
  trailguard completions fish > ~/.config/fish/completions/trailguard.fish")]
    Completions(CompletionsArgs),
    /// Write man pages (trailguard.1 and one per subcommand).
    #[command(after_help = "\
Example:
  trailguard man -o /usr/local/share/man/man1 && man trailguard-run")]
    Man(ManArgs),
    /// Measure throughput of every stage on generated input, side by side.
    #[command(after_help = "\
Example:
  trailguard bench --events 200000 --json

Stages: parse only, parse+normalize+enrich, each rule native and as a
component, the full pipeline on one thread and on all cores; plus peak
memory. --json adds ratios.component_vs_native, ratios.pipeline_vs_parse and
ratios.cores_scaling.")]
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    #[arg(long, value_name = "BROKERS", env = "TRAILGUARD_KAFKA_BROKERS")]
    pub brokers: String,
    /// The topic to publish to.
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long, value_name = "N")]
    pub partitions: Option<i32>,
    /// More input will follow: send the newest event time but not the
    /// end-of-input marker.
    #[arg(long)]
    pub no_end: bool,
    /// File holding the key that signs control messages (the workers'
    /// key). Default: the key in TRAILGUARD_KAFKA_KEY.
    #[arg(long, value_name = "FILE", env = "TRAILGUARD_KAFKA_KEY_FILE")]
    pub kafka_key_file: Option<PathBuf>,
    /// Publish unsigned control messages: only for workers that run with
    /// --insecure-kafka, where broker ACLs alone protect the topics.
    #[arg(long)]
    pub insecure_kafka: bool,
    /// ASN database (default as for `run`).
    #[arg(long, value_name = "FILE", env = "TRAILGUARD_ASN_DB")]
    pub asn_db: Option<PathBuf>,
    /// CloudTrail input: files, directories, or `-` for standard input.
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check a configuration file; exit status 1 if it has problems.
    #[command(after_help = "\
Examples:
  trailguard config check trailguard.toml
  trailguard config check --rules vendor/rules trailguard.toml

Reports every unknown key, wrong type and invalid value with FILE:LINE:COL,
and loads the rules to check that each accepts its [rules.ID] table.")]
    Check(ConfigCheckArgs),
}

#[derive(Args, Debug)]
pub struct ConfigCheckArgs {
    #[command(flatten)]
    pub rules: RulePaths,
    /// The file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Alerts file (NDJSON in any --format), or `-` for standard input.
    #[arg(value_name = "ALERTS")]
    pub alerts: PathBuf,
    /// Where to write the page.
    #[arg(short = 'o', long = "output", value_name = "FILE.html")]
    pub output: PathBuf,
    /// The CloudTrail input the alerts came from, to draw each identity's
    /// timeline (files or directories).
    #[arg(long = "input", value_name = "PATH")]
    pub inputs: Vec<PathBuf>,
    /// ASN database for the timelines' networks (default as for `run`).
    #[arg(long, value_name = "FILE", env = "TRAILGUARD_ASN_DB")]
    pub asn_db: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Directory to write the pages to.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: PathBuf,
}

/// How alerts are written (`run --format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertFormat {
    /// Elastic Security alert documents (ECS and kibana.alert.* fields).
    Ecs,
    /// Elastic _bulk API requests: a create action, then the document.
    ElasticBulk,
    /// OCSF Detection Finding (class_uid 2004), as AWS Security Lake reads.
    Ocsf,
}

/// Output shape of `gen`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum GenFormat {
    /// One NDJSON file.
    Ndjson,
    /// A directory of gzip S3 delivery objects.
    S3,
}

/// The shape of generated traffic.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum GenProfile {
    /// CI roles (70%) from Amazon, humans (20%) each at one home address.
    #[default]
    Ci,
    /// An organisation: hundreds of identities at heavy-tailed rates,
    /// humans on dynamic residential addresses (hundreds of addresses a
    /// week), CI on several clouds, root and console activity, failures,
    /// records of real size. Defaults: 1M records over 9 days.
    Org,
}

impl From<GenProfile> for trailguard_gen::Profile {
    fn from(profile: GenProfile) -> Self {
        match profile {
            GenProfile::Ci => trailguard_gen::Profile::Ci,
            GenProfile::Org => trailguard_gen::Profile::Org,
        }
    }
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// The shape of the traffic.
    #[arg(long, value_enum, default_value = "ci")]
    pub profile: GenProfile,
    /// Records to generate. Default: 100,000 (`ci`), 1,000,000 (`org`).
    #[arg(long)]
    pub events: Option<u64>,
    /// Days of event time covered. Default: 14 (`ci`), 9 (`org`).
    #[arg(long)]
    pub days: Option<u32>,
    /// CI roles (from cloud networks). Default: 20 (`ci`), 80 (`org`).
    #[arg(long)]
    pub ci_roles: Option<u32>,
    /// Humans (from a residential ISP). Default: 50 (`ci`), 220 (`org`).
    #[arg(long)]
    pub humans: Option<u32>,
    /// Attack episodes (stolen CI credentials replayed from a Tor exit).
    #[arg(long, default_value_t = 3)]
    pub attacks: u32,
    /// Seed: the same seed gives the same records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `ndjson` (a file) or `s3` (a directory of gzip delivery objects).
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: GenFormat,
    /// Records per delivery object with `--format s3`.
    #[arg(long, default_value_t = 500)]
    pub records_per_file: usize,
    /// Where to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Generated records to measure on.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// The shape of the generated traffic (see `trailguard gen --help`).
    #[arg(long, value_enum, default_value = "ci")]
    pub profile: GenProfile,
    /// Measure every stage this many times, alternating, and report the
    /// median (the machine may be shared and noisy).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub rules: RulePaths,
    /// ASN database (default as for `run`).
    #[arg(long, value_name = "FILE", env = "TRAILGUARD_ASN_DB")]
    pub asn_db: Option<PathBuf>,
    /// The record probe component, which measures reading raw-record
    /// fields (default: `bench-components/record-probe.wasm` beside the
    /// binary's directory, where `cargo xtask build` puts it; skipped if
    /// absent).
    #[arg(long, value_name = "FILE")]
    pub probe: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct NewRuleArgs {
    /// Lower-case words joined by `-` (the directory and crate name).
    pub name: String,
    /// Rule id (default: `aws-NAME`).
    #[arg(long)]
    pub id: Option<String>,
    /// Human-readable title (default: from the name).
    #[arg(long)]
    pub title: Option<String>,
    /// Where rule crates live.
    #[arg(long, default_value = "modules")]
    pub dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// One line per rule: id, version, risk, severity, name and file.
    #[command(after_help = "Example:\n  trailguard rules list --rules target/modules")]
    List(ListArgs),
    /// Everything about a component: hash, contract version, imports,
    /// exports, metadata and configuration keys with their defaults. Exit
    /// status 1 if the host would refuse it.
    #[command(
        after_help = "Examples:\n  trailguard rules inspect target/modules/rule-unusual-asn.wasm\n  trailguard rules inspect --json vendor-rule.wasm"
    )]
    Inspect(InspectArgs),
    /// Create a minisign key pair for signing rules.
    #[command(
        after_help = "Example:\n  trailguard rules keygen --secret-key acme.key --public-key acme.pub\n\nWith TRAILGUARD_KEY_PASSWORD set, the secret key is encrypted with it."
    )]
    Keygen(KeygenArgs),
    /// Sign components: writes FILE.wasm.minisig beside each.
    #[command(
        after_help = "Example:\n  trailguard rules sign --secret-key acme.key target/modules/*.wasm"
    )]
    Sign(SignArgs),
    /// Check components against a trust policy (pinned digests, publisher keys).
    /// Exit status 1 if any is not trusted.
    #[command(
        after_help = "Example:\n  trailguard rules verify --trust trust.toml target/modules/*.wasm\n\nSee docs/security.md for the policy format."
    )]
    Verify(VerifyArgs),
}

#[derive(Subcommand, Debug)]
pub enum SigmaCommand {
    /// Load each file in the Sigma pack (as `run --sigma` would, in its
    /// sandbox) and print its rules, the CloudTrail fields they read and
    /// why anything was left out; with --sample, the fields a rule reads
    /// that never occur in the sample. Exit status 1 if anything was left
    /// out or a field never occurs.
    #[command(
        after_help = "Examples:\n  trailguard sigma check rules/sigma\n  trailguard sigma check --sample logs/ my-rules/*.yml"
    )]
    Check(SigmaCheckArgs),
}

#[derive(Args, Debug)]
pub struct SigmaCheckArgs {
    /// The Sigma pack component. Default: rule-sigma.wasm in the default
    /// rules directory.
    #[arg(long, value_name = "FILE.wasm")]
    pub pack: Option<PathBuf>,
    /// CloudTrail to lint against (files or directories, any input shape
    /// `run` reads).
    #[arg(long, value_name = "PATH")]
    pub sample: Vec<PathBuf>,
    /// Sigma rule files, or directories searched for them.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key.
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// Where to write the public key.
    #[arg(long, value_name = "FILE")]
    pub public_key: PathBuf,
    /// Store the secret key in the clear. By default it is encrypted with
    /// the password in TRAILGUARD_KEY_PASSWORD, or asked for on a terminal.
    #[arg(long)]
    pub unencrypted: bool,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The minisign secret key.
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// A note added to the signature's trusted comment (which always names
    /// the rule id, its version and the file name).
    #[arg(long)]
    pub comment: Option<String>,
    /// Components (.wasm) and files of Sigma rules (.yml, .yaml) to sign.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The trust policy (TOML).
    #[arg(long, value_name = "FILE")]
    pub trust: PathBuf,
    /// Components (.wasm) and files of Sigma rules (.yml, .yaml) to check.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Where rule components are; shared by `run` and `rules list`.
#[derive(Args, Debug)]
pub struct RulePaths {
    /// Rule components (.wasm files, or directories of them). Default: the
    /// `modules` directory next to the binary's (target/modules after
    /// `cargo xtask build`).
    #[arg(
        long = "rules",
        value_name = "PATH",
        env = "TRAILGUARD_RULES",
        value_delimiter = ':'
    )]
    pub rules: Vec<PathBuf>,
    /// Sigma rules for the `sigma` rule pack: .yml files, or directories
    /// searched for them; added to `[rules.sigma] paths`.
    #[arg(
        long = "sigma",
        value_name = "PATH",
        env = "TRAILGUARD_SIGMA",
        value_delimiter = ':'
    )]
    pub sigma: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub rules: RulePaths,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Compile without the compiled-code cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Component files.
    #[arg(value_name = "FILE.wasm", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub rules: RulePaths,
    /// MMDB file with AS numbers and organizations (GeoLite2-ASN layout).
    /// Default: target/asn/asn.mmdb next to the binary's directory.
    #[arg(long, value_name = "FILE", env = "TRAILGUARD_ASN_DB")]
    pub asn_db: Option<PathBuf>,
    /// Configuration file (see trailguard.example.toml): input, output and
    /// run options, limits, and a `[rules.RULE-ID]` table per rule. Flags
    /// override it.
    #[arg(long, value_name = "FILE", env = "TRAILGUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Write alerts here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How alerts are written. Default ecs.
    #[arg(long, value_enum)]
    pub format: Option<AlertFormat>,
    /// The index `--format elastic-bulk` creates alerts in. Default
    /// trailguard-alerts.
    #[arg(long, value_name = "NAME")]
    pub elastic_index: Option<String>,
    /// Only events at or after this time (RFC 3339, or a date: midnight UTC).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339, or a date: midnight UTC).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// After the run, write an HTML report of the alerts (re-reads the
    /// input for the timelines).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// How late (in event time) an event may arrive after newer ones and
    /// still be in time for the evaluations it belongs to. Default 15.
    #[arg(long, value_name = "MINUTES")]
    pub allowed_lateness: Option<u32>,
    /// Refuse records dated more than this many minutes past the clock
    /// (CloudTrail records calls already made); 0 turns the check off, to
    /// replay test data dated in the future. Default 15.
    #[arg(long, value_name = "MINUTES")]
    pub max_future: Option<u32>,
    /// Hold an event more than this many hours ahead of the newest one
    /// until the events after it confirm the jump (a gap in the logs) or
    /// go on without it (it is refused); 0 turns the check off. Default 24.
    #[arg(long, value_name = "HOURS")]
    pub max_time_jump: Option<u32>,
    /// The largest document, and the longest line, read (MiB after
    /// decompression); larger ones are rejected, the rest read. Default 64.
    #[arg(long, value_name = "MIB")]
    pub max_document_mib: Option<u32>,
    /// Events per batch handed to the rules. Default 1024.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Run the rules on this many threads, each with its own instance of
    /// every rule and the events of its identities; the alerts are the
    /// same. Default 1 (decoding already runs on every core; more rule
    /// threads pay off only with cores to spare).
    #[arg(long, value_name = "N")]
    pub rule_threads: Option<usize>,
    /// Directory for compiled rules. Default: $XDG_CACHE_HOME/trailguard
    /// (or ~/.cache/trailguard).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile rules every time instead of caching the compiled code.
    #[arg(long)]
    pub no_cache: bool,
    /// Write each rejected record (or unreadable fragment) with its file,
    /// position and reason to FILE, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// Treat any rejected record as a failure (exit status 1).
    #[arg(long)]
    pub strict: bool,
    /// Write the run's summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// Drop an event whose eventID was seen within this many minutes of
    /// event time (the same record delivered twice); 0 keeps duplicates.
    /// Default 60.
    #[arg(long, value_name = "MINUTES")]
    pub dedup_window: Option<u32>,
    /// Keep durable state here: checkpoints of every rule and of the input
    /// position. Run again with the same directory (and inputs) to resume
    /// after a crash or Ctrl-C; needs -o FILE.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Checkpoint after this many events. Default 100000.
    #[arg(long, value_name = "N")]
    pub checkpoint_events: Option<u64>,
    /// Checkpoint after this many seconds. Default 30.
    #[arg(long, value_name = "S")]
    pub checkpoint_seconds: Option<u64>,
    /// Keep watching the input directories and process new files as they
    /// appear, until interrupted (SIGINT/SIGTERM checkpoint and exit).
    #[arg(long)]
    pub follow: bool,
    /// How often --follow looks for new files, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub poll_ms: u64,
    /// Refuse any rule that the trust policy (--trust) does not accept:
    /// unsigned, tampered, signed by an unknown key or for another rule id
    /// or version, or not pinned. Applies to hot reloads and to every Sigma
    /// rule file too.
    #[arg(long, requires = "trust")]
    pub require_signed: bool,
    /// Trust policy (TOML) listing publishers' public keys and pinned
    /// digests; only with --require-signed, which makes it apply.
    #[arg(long, value_name = "FILE", requires = "require_signed")]
    pub trust: Option<PathBuf>,
    /// Accept a rule build older than the one it replaces in a hot reload,
    /// or than the one that saved the state being resumed.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Run as a Kafka worker instead of reading files: join consumer group
    /// --group on --topic at these brokers (see docs/scaling.md).
    #[arg(long, value_name = "BROKERS", env = "TRAILGUARD_KAFKA_BROKERS", requires_all = ["topic", "group"])]
    pub kafka_brokers: Option<String>,
    /// The topic `trailguard publish` writes to.
    #[arg(long, value_name = "TOPIC", requires = "kafka_brokers")]
    pub topic: Option<String>,
    /// The consumer group of the workers.
    #[arg(long, value_name = "GROUP", requires = "kafka_brokers")]
    pub group: Option<String>,
    /// Write alerts to this topic (keyed by alert id) instead of -o/stdout.
    #[arg(long, value_name = "TOPIC", requires = "kafka_brokers")]
    pub alerts_topic: Option<String>,
    /// Where partition checkpoints go. Default TOPIC.trailguard-state.
    #[arg(long, value_name = "TOPIC", requires = "kafka_brokers")]
    pub state_topic: Option<String>,
    /// Kafka session timeout: how soon a dead worker's partitions move.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 10_000,
        requires = "kafka_brokers"
    )]
    pub session_timeout_ms: u64,
    /// File holding the key that control messages and checkpoints are
    /// signed with (shared with `trailguard publish`). Default: [run]
    /// kafka_key_file, else the key in TRAILGUARD_KAFKA_KEY.
    #[arg(
        long,
        value_name = "FILE",
        env = "TRAILGUARD_KAFKA_KEY_FILE",
        requires = "kafka_brokers"
    )]
    pub kafka_key_file: Option<PathBuf>,
    /// Run without a key: control messages and checkpoints are trusted as
    /// they are, so broker ACLs must keep everyone else from producing to
    /// the input and state topics (docs/scaling.md).
    #[arg(long, requires = "kafka_brokers")]
    pub insecure_kafka: bool,
    /// CloudTrail input: files, directories (read recursively in name
    /// order), or `-` for standard input. Default: [input] paths of the
    /// configuration file.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum AsnCommand {
    /// Build an MMDB from ip-location-db CSVs (`start,end,asn,organization`).
    #[command(after_help = "\
Example:
  npm pack @ip-location-db/asn && tar xzf ip-location-db-asn-*.tgz
  trailguard asn import --ipv4 package/asn-ipv4.csv --ipv6 package/asn-ipv6.csv -o asn.mmdb

The data is DB-IP ASN Lite and RouteViews, CC BY 4.0: credit DB-IP.com and
routeviews.org wherever results are shown.")]
    Import(ImportArgs),
    /// Print the AS number and organization of addresses.
    #[command(after_help = "Example:\n  trailguard asn lookup --asn-db asn.mmdb 3.80.1.2 2601::1")]
    Lookup(LookupArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// IPv4 CSV (asn-ipv4.csv).
    #[arg(long, value_name = "FILE", required_unless_present = "ipv6")]
    pub ipv4: Option<PathBuf>,
    /// IPv6 CSV (asn-ipv6.csv).
    #[arg(long, value_name = "FILE")]
    pub ipv6: Option<PathBuf>,
    /// The MMDB file to write.
    #[arg(short = 'o', long = "output", value_name = "OUT.mmdb")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// The MMDB file (default as for `run`).
    #[arg(long, value_name = "FILE", env = "TRAILGUARD_ASN_DB")]
    pub asn_db: Option<PathBuf>,
    /// Addresses to look up.
    #[arg(value_name = "IP", required = true)]
    pub ips: Vec<String>,
}

/// `<dir of the binary>/../<rest>`: where `cargo xtask` puts things.
pub fn beside_binary(rest: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join(rest))
}

/// The ASN database to use: the flag, or the default location.
pub fn open_asn_db(flag: Option<PathBuf>) -> Result<AsnDb> {
    let path = flag
        .or_else(|| beside_binary("asn/asn.mmdb").filter(|p| p.is_file()))
        .context("no ASN database: pass --asn-db FILE (build one with `cargo xtask asn` or `trailguard asn import`)")?;
    Ok(AsnDb::open(&path)?)
}

pub fn asn_import(args: ImportArgs) -> Result<ExitCode> {
    let stats = import_csv(
        args.ipv4.as_deref(),
        args.ipv6.as_deref(),
        &args.output,
        None,
    )?;
    eprintln!(
        "wrote {} ({} bytes): {} IPv4 and {} IPv6 ranges{}. Data: DB-IP.com and routeviews.org, CC BY 4.0",
        args.output.display(),
        stats.bytes,
        stats.ipv4_ranges,
        stats.ipv6_ranges,
        if stats.aliased_skipped == 0 {
            String::new()
        } else {
            format!(
                " ({} IPv6 range(s) inside IPv4-aliased networks skipped: addresses there resolve via their embedded IPv4 address)",
                stats.aliased_skipped
            )
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn asn_lookup(args: LookupArgs) -> Result<ExitCode> {
    let db = open_asn_db(args.asn_db)?;
    let mut all_found = true;
    for text in &args.ips {
        let Ok(ip) = text.parse::<IpAddr>() else {
            println!("{text}\tnot a literal IP address");
            all_found = false;
            continue;
        };
        match db.lookup(ip)? {
            Some(info) => println!(
                "{ip}\tAS{}\t{}",
                info.number,
                info.organization
                    .as_deref()
                    .unwrap_or("(no organization name)")
            ),
            None => {
                println!("{ip}\tnot found");
                all_found = false;
            }
        }
    }
    Ok(if all_found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command's `--help` ends with examples.
    #[test]
    fn every_command_has_examples() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let subs: Vec<&clap::Command> = command
                .get_subcommands()
                .filter(|s| s.get_name() != "help")
                .collect();
            let help = command
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            if !help.contains("Example") {
                missing.push(path.to_owned());
            }
            for sub in subs {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let mut command = Cli::command();
        command.build();
        walk(&command, "trailguard", &mut missing);
        assert_eq!(missing, Vec::<String>::new(), "commands without examples");
    }
}
