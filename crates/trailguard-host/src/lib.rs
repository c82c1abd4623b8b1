//! The trailguard host: runs detection rules over normalized events.
//!
//! - [`Runtime`] owns the wasmtime engine, its limits and the compiled-code
//!   cache, and loads rule components ([`Runtime::load_rule`]), refusing any
//!   that imports something or speaks another contract version.
//! - A [`Detector`] is one running rule: a sandboxed [`ComponentRule`], or a
//!   [`NativeRule`] that runs the same Rust logic without WebAssembly (for
//!   benchmarks and tests).
//! - [`Engine`] is the whole detection path behind one value, for programs
//!   that embed trailguard: events (or raw CloudTrail bytes) in,
//!   deduplicated, batched, fed to every rule in event time; alerts out;
//!   its state saves and loads as one [`EngineState`]. See
//!   `docs/embedding.md` and `examples/embed.rs`.
//! - [`TimeGuard`] defends event time: an event dated past the wall clock,
//!   or far ahead of the stream and not followed by it, is refused before
//!   it can move the watermark (part of every [`Engine`]).
//! - [`Pipeline`] feeds event batches to every detector, keeps the event-time
//!   [`Watermark`], tells detectors when it advances, and turns what they
//!   return into alert documents. It supervises each rule: one that fails is
//!   restarted from its last checkpoint and the call retried once; one that
//!   keeps failing is quarantined ([`RecoveryPolicy`]); the others go on.
//!
//! Architecture invariant: this crate knows nothing about CloudTrail's raw
//! shapes or about any particular rule; it moves [`NormalizedEvent`]s in and
//! alert documents out.
//!
//! [`NormalizedEvent`]: trailguard_ingest::NormalizedEvent

mod alert;
mod cache;
pub mod checkpoint;
mod clock;
mod component;
mod encode;
mod engine;
mod filter;
mod guard;
pub mod info;
mod inspect;
mod native;
mod pipeline;
mod record;
mod rule_file;
mod runtime;
mod suppress;
pub mod testing;
pub mod trust;

pub use clock::Watermark;
pub use component::ComponentRule;
pub use encode::BatchEncoder;
pub use engine::{Engine, EngineOptions, EngineState, LoadFailure};
pub use guard::{Refused, TimeGuard, TimeGuardCounts, TimeGuardOptions, TimeGuardState};
pub use inspect::ComponentReport;
pub use native::NativeRule;
pub use pipeline::{
    Pipeline, PipelineState, PipelineStats, Recovery, RecoveryPolicy, RuleFailure, SavedRule,
};
pub use rule_file::RuleFile;
pub use runtime::{CompiledRule, Limits, Runtime, RuntimeOptions};
pub use suppress::{Suppression, Suppressor};
pub use trailguard_format::{AlertDocument, field};
pub use trailguard_rule_sdk::{RuleInfo, Severity};

/// The `trailguard:detector` contract version this host speaks.
pub const CONTRACT_VERSION: &str = trailguard_rule_sdk::CONTRACT_VERSION;

/// Bindings generated from `wit/detector.wit`.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "detector",
    });
}

/// What the host knows of where a running rule came from; every alert id
/// binds it, so another component claiming the rule's id cannot produce the
/// rule's alert ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    /// SHA-256 of the component's bytes; `None` for a native rule.
    pub digest: Option<String>,
    /// The publisher whose signature was verified (`pinned` for a pinned
    /// digest); `None` when loaded without a trust policy.
    pub publisher: Option<String>,
}

/// One running rule, sandboxed or native.
pub trait Detector: Send {
    /// What the rule is.
    fn info(&self) -> &RuleInfo;

    /// Where it came from (a native rule: nowhere in particular).
    fn provenance(&self) -> Provenance {
        Provenance::default()
    }

    /// The rules its alerts name ([`trailguard_rule_sdk::Alert::rule`]
    /// indexes this list): the rule itself, or a pack's rules.
    fn rules(&self) -> &[RuleInfo] {
        std::slice::from_ref(self.info())
    }

    /// What its configuration had that it could not use (a Sigma rule
    /// that does not parse), one sentence each.
    fn warnings(&self) -> &[String] {
        &[]
    }

    /// The paths into the raw record the rule declared (its `fields`).
    fn record_paths(&self) -> &[String] {
        &[]
    }

    /// Its filters on normalized fields, as one test (`None`: it wants
    /// every event as far as they go): its record paths are extracted only
    /// from events that pass.
    fn event_test(&self) -> Option<trailguard_ingest::EventTest> {
        None
    }

    /// Feeds a batch; returns the alerts the rule emits at once.
    fn process(
        &mut self,
        events: &[trailguard_ingest::NormalizedEvent],
    ) -> Result<Vec<trailguard_rule_sdk::Alert>, HostError>;

    /// Event time has advanced to `watermark_ms`; returns scheduled alerts.
    fn advance(&mut self, watermark_ms: i64) -> Result<Vec<trailguard_rule_sdk::Alert>, HostError>;

    /// The rule's state as bytes.
    fn snapshot(&mut self) -> Result<Vec<u8>, HostError>;

    /// Replaces the rule's state.
    fn restore(&mut self, state: &[u8]) -> Result<(), HostError>;

    /// Discards the rule's instance and state and starts afresh from its
    /// configuration (after a failure; the caller restores a snapshot).
    fn restart(&mut self) -> Result<(), HostError>;
}

/// A path for a message: a file name can hold anything, terminal escape
/// sequences and line ends included.
fn shown(path: &std::path::Path) -> String {
    info::printable(&path.display().to_string(), 4096)
}

/// Everything that can go wrong in the host. Messages name the rule or file
/// and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The component file cannot be read.
    #[error("cannot read rule {}: {source}", shown(.path))]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a component of this contract.
    #[error("rule {} refused: {reason}", shown(.path))]
    Refused {
        /// The file.
        path: std::path::PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// Compiling or instantiating failed.
    #[error("rule {} cannot be loaded: {message}", shown(.path))]
    Load {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// The component is a rule of this contract, but misbehaved when asked
    /// what it is (trapped, exceeded a limit when instantiated, declared
    /// metadata over the limits): it is left out, the others run.
    #[error("rule {} misbehaved at load: {message}", shown(.path))]
    Misbehaved {
        /// The file.
        path: std::path::PathBuf,
        /// What it did.
        message: String,
    },
    /// The rule rejected its configuration.
    #[error("rule {rule} rejected its configuration: {message}")]
    Config {
        /// Rule id.
        rule: String,
        /// The rule's own message.
        message: String,
    },
    /// The rule trapped, ran out of time or memory, or returned garbage.
    #[error("rule {rule} failed in {call}: {message}")]
    Rule {
        /// Rule id.
        rule: String,
        /// The contract function that failed.
        call: &'static str,
        /// What happened.
        message: String,
    },
    /// A saved state cannot be resumed by this engine (another shard
    /// count, a time guard it does not accept).
    #[error("cannot resume from the saved state: {0}")]
    State(String),
    /// The engine cannot be set up.
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
}
