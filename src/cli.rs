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
#[command(name = "trailguard", version, about, long_about = None)]
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

Exit status: 0 the run completed and every record was read; 3 it completed
but some records were rejected (the summary, --stats and --dead-letter say
which, with file and position); 2 it completed but a rule kept failing and
was quarantined; 1 it could not run (bad arguments, unreadable rule,
configuration or ASN database), or --strict and a record was rejected.")]
    Run(RunArgs),
    /// Build or query the ASN database.
    #[command(subcommand)]
    Asn(AsnCommand),
    /// List or inspect rule components.
    #[command(subcommand)]
    Rules(RulesCommand),
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
  trailguard gen --format s3 --days 30 -o deliveries         # gzip S3 objects + deliveries.ground-truth.json")]
    Gen(GenArgs),
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

/// Output shape of `gen`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum GenFormat {
    /// One NDJSON file.
    Ndjson,
    /// A directory of gzip S3 delivery objects.
    S3,
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Records to generate.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Days of event time covered.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// CI roles (70% of the traffic, from Amazon's networks).
    #[arg(long, default_value_t = 20)]
    pub ci_roles: u32,
    /// Humans (20%, from a residential ISP).
    #[arg(long, default_value_t = 50)]
    pub humans: u32,
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
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub rules: RulePaths,
    /// ASN database (default as for `run`).
    #[arg(long, value_name = "FILE", env = "TRAILGUARD_ASN_DB")]
    pub asn_db: Option<PathBuf>,
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

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key.
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// Where to write the public key.
    #[arg(long, value_name = "FILE")]
    pub public_key: PathBuf,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The minisign secret key.
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// Trusted comment stored in the signature (default: the file name).
    #[arg(long)]
    pub comment: Option<String>,
    /// Components to sign.
    #[arg(value_name = "FILE.wasm", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The trust policy (TOML).
    #[arg(long, value_name = "FILE")]
    pub trust: PathBuf,
    /// Components to check.
    #[arg(value_name = "FILE.wasm", required = true)]
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
    /// TOML configuration: `[run]` options and a `[rules.RULE-ID]` table per rule.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write alerts here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How late (in event time) an event may arrive after newer ones and
    /// still be in time for the evaluations it belongs to. Default 15.
    #[arg(long, value_name = "MINUTES")]
    pub allowed_lateness: Option<u32>,
    /// Events per batch handed to the rules. Default 1024.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
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
    #[arg(long, value_name = "MINUTES", default_value_t = 60)]
    pub dedup_window: u32,
    /// Keep durable state here: checkpoints of every rule and of the input
    /// position. Run again with the same directory (and inputs) to resume
    /// after a crash or Ctrl-C; needs -o FILE.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Checkpoint after this many events.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub checkpoint_events: u64,
    /// Checkpoint after this many seconds.
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub checkpoint_seconds: u64,
    /// Keep watching the input directories and process new files as they
    /// appear, until interrupted (SIGINT/SIGTERM checkpoint and exit).
    #[arg(long)]
    pub follow: bool,
    /// How often --follow looks for new files, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub poll_ms: u64,
    /// Refuse any rule that the trust policy (--trust) does not accept:
    /// unsigned, tampered, signed by an unknown key, or not pinned.
    #[arg(long, requires = "trust")]
    pub require_signed: bool,
    /// Trust policy (TOML) listing publishers' public keys and pinned digests.
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
    /// CloudTrail input: files, directories (read recursively in name
    /// order), or `-` for standard input.
    #[arg(value_name = "INPUT", required = true)]
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
