//! The wasmtime engine, the limits every rule runs under, and the cache of
//! compiled components.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use crate::cache::Cache;
use crate::info::check_info;
use crate::rule_file::RuleFile;
use crate::trust::{TrustPolicy, Trusted};
use crate::{CONTRACT_VERSION, ComponentRule, HostError, Provenance, RuleInfo};

/// How often the epoch advances; the granularity of CPU-time limits.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Resource limits applied to each rule. The defaults are sized for the
/// shipped rules with a wide margin; see docs/security.md for the reasoning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time one call into a rule may take before it is interrupted (epoch
    /// interruption; 10 ms granularity). Default 10 s: a batch of 1,024 events
    /// takes well under 10 ms.
    pub call_timeout: Duration,
    /// Maximum linear memory of a rule instance. Default 512 MiB: rule A's
    /// 7-day window for tens of thousands of identities fits.
    pub max_memory_bytes: usize,
    /// Maximum elements of a rule's tables. Default 100,000.
    pub max_table_elements: usize,
    /// Maximum native stack used by WebAssembly code (bounds recursion).
    /// Default 1 MiB.
    pub max_wasm_stack: usize,
    /// Maximum alerts one call may return. Default 10,000.
    pub max_alerts_per_call: usize,
    /// Maximum total size of the alert documents one call returns. Default 16 MiB.
    pub max_alert_bytes_per_call: usize,
    /// Maximum size of a snapshot. Default 256 MiB.
    pub max_snapshot_bytes: usize,
    /// Text (strings and record field values) one `process` call carries
    /// at most: a batch over it is sent in several calls. Default 16 MiB
    /// (a batch of the shipped rules is about 200 KiB; one event's record
    /// fields are at most 64 paths of 64 KiB).
    pub max_batch_text_bytes: usize,
    /// Maximum size of a component file. Default 32 MiB (shipped rules are
    /// under 400 KiB).
    pub max_component_bytes: u64,
    /// Maximum time compiling a component may take. Default 60 s (shipped
    /// rules compile in well under a second).
    pub max_compile_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_secs(10),
            max_memory_bytes: 512 << 20,
            max_table_elements: 100_000,
            max_wasm_stack: 1 << 20,
            max_alerts_per_call: 10_000,
            max_alert_bytes_per_call: 16 << 20,
            max_snapshot_bytes: 256 << 20,
            max_batch_text_bytes: 16 << 20,
            max_component_bytes: 32 << 20,
            max_compile_time: Duration::from_secs(60),
        }
    }
}

/// How to build a [`Runtime`].
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Limits for every rule.
    pub limits: Limits,
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Interrupt calls that exceed `limits.call_timeout`. Only benchmarks
    /// turn this off, to measure what the check costs.
    pub epoch_interruption: bool,
}

/// A rule component, compiled and checked against the contract, with the
/// metadata it declares and what the host knows of its origin.
#[derive(Clone)]
pub struct CompiledRule {
    path: PathBuf,
    component: Component,
    digest: String,
    info: RuleInfo,
    origin: Option<Trusted>,
}

impl std::fmt::Debug for CompiledRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRule")
            .field("path", &self.path)
            .field("digest", &self.digest)
            .field("rule", &self.info.id)
            .finish()
    }
}

impl CompiledRule {
    /// The file it was compiled from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SHA-256 (hex) of the bytes that were verified and compiled.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// What the rule says it is (checked against the limits on rule metadata).
    pub fn info(&self) -> &RuleInfo {
        &self.info
    }

    /// Why it is trusted, when it was loaded under a trust policy.
    pub fn origin(&self) -> Option<&Trusted> {
        self.origin.as_ref()
    }

    /// Its identity as bound into every alert it raises.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            digest: Some(self.digest.clone()),
            publisher: match &self.origin {
                Some(Trusted::Signed { publisher, .. }) => Some(publisher.clone()),
                Some(Trusted::Pinned { .. }) => Some("pinned".into()),
                None => None,
            },
        }
    }

    pub(crate) fn component(&self) -> &Component {
        &self.component
    }
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            limits: Limits::default(),
            cache_dir: None,
            epoch_interruption: true,
        }
    }
}

/// Advances the engine's epoch on a background thread until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A panicked ticker has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

/// The engine every rule runs in.
pub struct Runtime {
    engine: Engine,
    options: RuntimeOptions,
    cache: Option<Cache>,
    /// Compilations given up on at the time limit that are still running
    /// (a compile cannot be cancelled; at most one is left behind).
    abandoned_compiles: Arc<AtomicUsize>,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("options", &self.options)
            .finish()
    }
}

/// The WebAssembly binary header of a component (magic, version 0x0d, layer 1).
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

impl Runtime {
    /// Starts an engine with epoch interruption for CPU-time limits. The
    /// cache directory, if any, is created private (0700) or refused unless
    /// it is private to this user.
    pub fn new(options: RuntimeOptions) -> Result<Runtime, HostError> {
        let cache = options.cache_dir.as_deref().map(Cache::open).transpose()?;
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(options.epoch_interruption);
        config.max_wasm_stack(options.limits.max_wasm_stack);
        if std::env::var_os("TRAILGUARD_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (engine, stop) = (engine.clone(), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("trailguard-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| HostError::Engine(format!("cannot start the epoch thread: {e}")))?
        };
        Ok(Runtime {
            engine,
            options,
            cache,
            abandoned_compiles: Arc::new(AtomicUsize::new(0)),
            _ticker: EpochTicker {
                stop,
                thread: Some(thread),
            },
        })
    }

    /// The limits rules run under.
    pub fn limits(&self) -> Limits {
        self.options.limits
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Epoch ticks that make up the call timeout (at least one), or `None`
    /// when calls are not interrupted.
    pub(crate) fn deadline_ticks(&self) -> Option<u64> {
        let ticks = self.options.limits.call_timeout.as_millis() / EPOCH_TICK.as_millis();
        self.options
            .epoch_interruption
            .then(|| u64::try_from(ticks).unwrap_or(u64::MAX).max(1))
    }

    /// Loads a rule component and creates its detector. `config` picks the
    /// rule's JSON configuration once its metadata is known (`""` for the
    /// rule's defaults).
    pub fn load_rule(
        &self,
        path: &Path,
        config: impl FnOnce(&RuleInfo) -> String,
    ) -> Result<ComponentRule, HostError> {
        let rule = self.compile_rule(path)?;
        self.instantiate(&rule, config)
    }

    /// Reads a rule file (once: a regular file within the size limit),
    /// compiles it and checks it against the contract and the limits on
    /// rule metadata, to create any number of detectors from it with
    /// [`Runtime::instantiate`] (one per Kafka partition, say).
    pub fn compile_rule(&self, path: &Path) -> Result<CompiledRule, HostError> {
        let file = self.read_rule(path)?;
        self.compile_file(file, None)
    }

    /// As [`Runtime::compile_rule`], for a rule that must be trusted by
    /// `policy`: the bytes verified are the bytes compiled, and the
    /// signature's claims (rule id and version, the publisher's rule ids)
    /// must match what the component declares.
    pub fn compile_trusted(
        &self,
        path: &Path,
        policy: &TrustPolicy,
    ) -> Result<CompiledRule, HostError> {
        let file = self.read_rule(path)?;
        let refused = |reason: String| HostError::Refused {
            path: path.to_owned(),
            reason: format!("{reason} (--require-signed)"),
        };
        let trusted = policy.verify_file(&file).map_err(refused)?;
        let rule = self.compile_file(file, Some(trusted.clone()))?;
        policy.check_claims(&trusted, &rule.info).map_err(refused)?;
        Ok(rule)
    }

    /// Reads a rule file once, within the component size limit.
    pub fn read_rule(&self, path: &Path) -> Result<RuleFile, HostError> {
        RuleFile::read(path, self.options.limits.max_component_bytes)
    }

    /// Compiles bytes already read (and verified, if `origin` says so).
    pub fn compile_file(
        &self,
        file: RuleFile,
        origin: Option<Trusted>,
    ) -> Result<CompiledRule, HostError> {
        let component = self.compile(&file)?;
        self.checked(&file, component, origin)
    }

    /// Checks a compiled component against the contract and its metadata
    /// against the limits.
    pub(crate) fn checked(
        &self,
        file: &RuleFile,
        component: Component,
        origin: Option<Trusted>,
    ) -> Result<CompiledRule, HostError> {
        let path = file.path().to_owned();
        check_contract(&self.engine, &component, &path)?;
        let misbehaved = |message: String| HostError::Misbehaved {
            path: path.clone(),
            message,
        };
        let info = ComponentRule::read_info(self, &component, &path).map_err(|e| match e {
            HostError::Load { message, .. } => misbehaved(message),
            other => misbehaved(other.to_string()),
        })?;
        check_info(&info).map_err(misbehaved)?;
        Ok(CompiledRule {
            path,
            component,
            digest: file.sha256().to_owned(),
            info,
            origin,
        })
    }

    /// A new detector (fresh state) of a compiled rule; `config` as for
    /// [`Runtime::load_rule`].
    pub fn instantiate(
        &self,
        rule: &CompiledRule,
        config: impl FnOnce(&RuleInfo) -> String,
    ) -> Result<ComponentRule, HostError> {
        ComponentRule::instantiate(self, rule, config)
    }

    /// Compiles a component, or loads its compiled form from the cache
    /// (keyed by the digest of these very bytes).
    pub(crate) fn compile(&self, file: &RuleFile) -> Result<Component, HostError> {
        let path = file.path();
        let bytes = file.bytes();
        if !bytes.starts_with(&COMPONENT_HEADER) {
            let reason = if bytes.starts_with(b"\0asm") {
                "it is a core WebAssembly module, not a component; build rules with `cargo xtask build`, which turns them into components"
            } else {
                "it is not a WebAssembly component"
            };
            return Err(HostError::Refused {
                path: path.to_owned(),
                reason: reason.into(),
            });
        }
        if let Some(cache) = &self.cache
            && let Some(component) = cache.load(file.sha256(), &self.engine)
        {
            return Ok(component);
        }
        let component = self.compile_bounded(path, bytes.to_vec())?;
        if let Some(cache) = &self.cache {
            cache.store(file.sha256(), &self.engine, &component);
        }
        Ok(component)
    }
}

impl Runtime {
    /// Compiles on a helper thread and gives up after the compile-time
    /// limit. A compile cannot be cancelled: the thread finishes in the
    /// background and its result is dropped, and while one such thread is
    /// still running no other compile starts (so hostile components cannot
    /// pile up threads burning every core).
    fn compile_bounded(&self, path: &Path, bytes: Vec<u8>) -> Result<Component, HostError> {
        let limit = self.options.limits.max_compile_time;
        if self.abandoned_compiles.load(Ordering::Acquire) > 0 {
            return Err(HostError::Refused {
                path: path.to_owned(),
                reason: "an earlier component that exceeded the compile-time limit is still compiling; try again once it is done".into(),
            });
        }
        let engine = self.engine.clone();
        let (send, receive) = std::sync::mpsc::channel();
        // (finished, given up): decided under one lock, so exactly one side
        // counts an abandoned compile in and out.
        let fate = Arc::new(std::sync::Mutex::new((false, false)));
        let abandoned = Arc::clone(&self.abandoned_compiles);
        let thread_fate = Arc::clone(&fate);
        std::thread::Builder::new()
            .name("trailguard-compile".into())
            .spawn(move || {
                let result = Component::new(&engine, &bytes);
                if let Ok(mut fate) = thread_fate.lock() {
                    fate.0 = true;
                    if fate.1 {
                        abandoned.fetch_sub(1, Ordering::AcqRel);
                    }
                }
                // The receiver may have given up; then nobody wants the result.
                let _ = send.send(result);
            })
            .map_err(|e| HostError::Engine(format!("cannot start a compile thread: {e}")))?;
        let mut received = receive.recv_timeout(limit);
        if received.is_err()
            && let Ok(mut fate) = fate.lock()
        {
            if fate.0 {
                // It finished just now: its result is on its way.
                drop(fate);
                received = receive
                    .recv()
                    .map_err(|_| std::sync::mpsc::RecvTimeoutError::Disconnected);
            } else {
                fate.1 = true;
                self.abandoned_compiles.fetch_add(1, Ordering::AcqRel);
            }
        }
        match received {
            Ok(Ok(component)) => Ok(component),
            Ok(Err(e)) => Err(HostError::Load {
                path: path.to_owned(),
                message: format!("{e:#}"),
            }),
            Err(_) => Err(HostError::Refused {
                path: path.to_owned(),
                reason: format!(
                    "compiling it took longer than the limit of {} s",
                    limit.as_secs_f64()
                ),
            }),
        }
    }
}

/// The export every rule must have.
fn rule_export() -> String {
    format!("trailguard:detector/rule@{CONTRACT_VERSION}")
}

/// Refuses components that import anything or export another contract version.
fn check_contract(engine: &Engine, component: &Component, path: &Path) -> Result<(), HostError> {
    let refuse = |reason: String| HostError::Refused {
        path: path.to_owned(),
        reason,
    };
    let ty = component.component_type();
    let imports: Vec<&str> = ty.imports(engine).map(|(name, _)| name).collect();
    if !imports.is_empty() {
        return Err(refuse(format!(
            "it imports {}; a rule must import nothing (no files, network or clock)",
            imports.join(", ")
        )));
    }
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    let wanted = rule_export();
    if exports.contains(&wanted.as_str()) {
        return Ok(());
    }
    match exports
        .iter()
        .find(|e| e.starts_with("trailguard:detector/rule@"))
    {
        Some(other) => Err(refuse(format!(
            "it was built against contract trailguard:detector@{}, but this host speaks trailguard:detector@{CONTRACT_VERSION}; rebuild the rule with a matching trailguard-rule-sdk",
            other.trim_start_matches("trailguard:detector/rule@")
        ))),
        None => Err(refuse(format!(
            "it does not export {wanted} (its exports: {}); is it a trailguard rule?",
            if exports.is_empty() {
                "none".to_owned()
            } else {
                exports.join(", ")
            }
        ))),
    }
}
