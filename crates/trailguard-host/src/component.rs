//! A rule running as a sandboxed WebAssembly component.
//!
//! Each rule has its own `Store`: its own linear memory under a cap, its own
//! CPU deadline per call, no imports. After a trap an instance is unusable,
//! so [`Detector::restart`] builds a fresh one from the compiled component.

use std::path::{Path, PathBuf};

use trailguard_ingest::NormalizedEvent;
use trailguard_rule_sdk::{Alert, Comparison, EventFilter, Field, RuleInfo, Severity, Target};
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};

use crate::alert::AlertMaker;
use crate::bindings::Detector as DetectorWorld;
use crate::bindings::exports::trailguard::detector::rule as wit;
use crate::filter::Filters;
use crate::info::{check_rules, check_warnings, printable};
use crate::record::RecordMap;
use crate::{BatchEncoder, CompiledRule, Detector, HostError, Limits, Provenance, Runtime};

/// Per-store data: the memory limiter.
struct StoreData {
    limits: StoreLimits,
}

/// The caps on what one instance may allocate: one linear memory (so the
/// memory limit is the rule's total, not a per-memory figure), its tables,
/// a few instances.
fn store_limits(limits: &Limits) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(limits.max_memory_bytes)
        .table_elements(limits.max_table_elements)
        .instances(16)
        .memories(1)
        .tables(16)
        .trap_on_grow_failure(true)
        .build()
}

/// What the host copies out of a rule in one call: lifting its results may
/// allocate no more than the largest result the limits accept (wasmtime's
/// default, 128 MiB, is kept as the floor, and a snapshot up to its own
/// limit fits).
fn hostcall_fuel(limits: &Limits) -> usize {
    (128usize << 20)
        .max(limits.max_snapshot_bytes.saturating_add(1 << 20))
        .max(limits.max_alert_bytes_per_call.saturating_add(1 << 20))
}

/// One live instance of the component, with its detector resource.
struct Instance {
    store: Store<StoreData>,
    bindings: DetectorWorld,
    detector: ResourceAny,
}

/// One rule component: what is needed to (re)instantiate it, and the live
/// instance.
pub struct ComponentRule {
    engine: Engine,
    component: Component,
    path: PathBuf,
    config: String,
    limits: Limits,
    deadline_ticks: Option<u64>,
    info: RuleInfo,
    /// The rules its alerts name (`rules`): `[info]` for a plain rule.
    rules: Vec<RuleInfo>,
    /// What its configuration had that it could not use (`warnings`).
    warnings: Vec<String>,
    provenance: Provenance,
    /// What the host adds to each alert, counted against the per-call limit.
    alert_overhead: usize,
    record: RecordMap,
    filters: Filters,
    live: Instance,
    encoder: BatchEncoder,
}

impl std::fmt::Debug for ComponentRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentRule")
            .field("rule", &self.info.id)
            .finish()
    }
}

fn from_wit(info: wit::RuleInfo) -> RuleInfo {
    RuleInfo {
        id: info.id,
        name: info.name,
        version: info.version,
        severity: match info.severity {
            wit::Severity::Low => Severity::Low,
            wit::Severity::Medium => Severity::Medium,
            wit::Severity::High => Severity::High,
            wit::Severity::Critical => Severity::Critical,
        },
        risk_score: info.risk_score,
        mitre_techniques: info.mitre_techniques,
        description: info.description,
        default_config: info.default_config,
        tags: info.tags,
        references: info.references,
        author: info.author,
    }
}

/// The [`Field`] of each of the contract's `string-field` cases (the same
/// names, generated from the one list of fields).
macro_rules! from_wit_field {
    ($($name:ident $variant:ident $ecs:literal $doc:literal;)*) => {
        fn from_wit_field(field: wit::StringField) -> Field {
            match field {
                $(wit::StringField::$variant => Field::$variant,)*
            }
        }
    };
}
trailguard_rule_sdk::for_each_string_field!(from_wit_field);

/// A declared filter; one on a record path names it by its index in
/// `paths`, and an index past them is an error (the message says why).
fn from_wit_filter(filter: wit::EventFilter, paths: &[String]) -> Result<EventFilter, String> {
    let target = match filter.field {
        wit::FieldRef::Standard(field) => Target::Field(from_wit_field(field)),
        wit::FieldRef::Path(k) => Target::Path(
            usize::try_from(k)
                .ok()
                .and_then(|k| paths.get(k))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "a filter names record path #{k}, but the rule declared {} path(s) in `fields`",
                        paths.len()
                    )
                })?,
        ),
    };
    Ok(EventFilter {
        target,
        comparison: match filter.comparison {
            wit::Comparison::Equals => Comparison::Equals,
            wit::Comparison::Prefix => Comparison::Prefix,
        },
        ignore_case: filter.ignore_case,
        any_of: filter.any_of,
    })
}

/// The innermost frame of the rule's own code in a trap's backtrace
/// (skipping the standard library and the allocator), when names are known.
fn rule_frame(e: &wasmtime::Error) -> Option<String> {
    let backtrace = e.downcast_ref::<wasmtime::WasmBacktrace>()?;
    let runtime = [
        "__rust",
        "__rdl",
        "core::",
        "std::",
        "alloc::",
        "dlmalloc",
        "<dlmalloc",
        "rust_panic",
    ];
    backtrace
        .frames()
        .iter()
        .filter_map(|f| f.func_name())
        .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
        .find(|name| !runtime.iter().any(|r| name.starts_with(r)))
}

/// What went wrong in a call, in one line an operator can act on: the
/// cause, the limit involved, and where in the rule. Printable: the frame
/// names come from the rule's own name section.
fn describe(e: &wasmtime::Error, limits: &Limits) -> String {
    printable(&describe_raw(e, limits), 1024)
}

fn describe_raw(e: &wasmtime::Error, limits: &Limits) -> String {
    let cause = match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => format!(
            "interrupted: the call took longer than the limit of {:.3} s",
            limits.call_timeout.as_secs_f64()
        ),
        Some(wasmtime::Trap::StackOverflow) => format!(
            "stack overflow (limit {} KiB of wasm stack): unbounded recursion?",
            limits.max_wasm_stack >> 10
        ),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            "trapped: a panic in the rule (or `unreachable`)".to_owned()
        }
        _ => {
            let root = e.root_cause().to_string();
            if root.contains("growing memory") {
                format!(
                    "{root}: over the memory limit of {} MiB",
                    limits.max_memory_bytes >> 20
                )
            } else {
                root
            }
        }
    };
    match rule_frame(e) {
        Some(frame) => format!("{cause} (in {frame})"),
        None => cause,
    }
}

impl ComponentRule {
    /// The metadata a component declares (from a fresh instance).
    pub(crate) fn read_info(
        runtime: &Runtime,
        component: &Component,
        path: &Path,
    ) -> Result<RuleInfo, HostError> {
        let limits = runtime.limits();
        let (mut store, bindings) = Self::store_and_bindings(
            runtime.engine(),
            component,
            path,
            &limits,
            runtime.deadline_ticks(),
        )?;
        bindings
            .trailguard_detector_rule()
            .call_info(&mut store)
            .map(from_wit)
            .map_err(|e| HostError::Load {
                path: path.to_owned(),
                message: format!("its `info` failed: {}", describe(&e, &limits)),
            })
    }

    pub(crate) fn instantiate(
        runtime: &Runtime,
        rule: &CompiledRule,
        config: impl FnOnce(&RuleInfo) -> String,
    ) -> Result<ComponentRule, HostError> {
        let engine = runtime.engine().clone();
        let limits = runtime.limits();
        let deadline_ticks = runtime.deadline_ticks();
        let (component, path) = (rule.component(), rule.path());
        let (mut store, bindings) =
            Self::store_and_bindings(&engine, component, path, &limits, deadline_ticks)?;
        // The metadata checked when the rule was compiled: not asked again.
        let info = rule.info().clone();
        let config = config(&info);
        let detector = Self::create(
            &mut store,
            &bindings,
            &info,
            &config,
            &limits,
            deadline_ticks,
        )?;
        if let Some(ticks) = deadline_ticks {
            store.set_epoch_deadline(ticks);
        }
        let paths = bindings
            .trailguard_detector_rule()
            .detector()
            .call_fields(&mut store, detector)
            .map_err(|e| HostError::Rule {
                rule: info.id.clone(),
                call: "fields",
                message: describe(&e, &limits),
            })?;
        let record = RecordMap::checked(&info.id, paths)?;
        let failed = |call: &'static str| {
            let rule = info.id.clone();
            move |message: String| HostError::Rule {
                rule,
                call,
                message,
            }
        };
        if let Some(ticks) = deadline_ticks {
            store.set_epoch_deadline(ticks);
        }
        let rules = bindings
            .trailguard_detector_rule()
            .detector()
            .call_rules(&mut store, detector)
            .map_err(|e| failed("rules")(describe(&e, &limits)))?;
        let rules =
            check_rules(rules.into_iter().map(from_wit).collect()).map_err(failed("rules"))?;
        if let Some(ticks) = deadline_ticks {
            store.set_epoch_deadline(ticks);
        }
        let warnings = bindings
            .trailguard_detector_rule()
            .detector()
            .call_warnings(&mut store, detector)
            .map_err(|e| failed("warnings")(describe(&e, &limits)))?;
        let warnings = check_warnings(warnings);
        if let Some(ticks) = deadline_ticks {
            store.set_epoch_deadline(ticks);
        }
        let declared = bindings
            .trailguard_detector_rule()
            .detector()
            .call_filters(&mut store, detector)
            .map_err(|e| HostError::Rule {
                rule: info.id.clone(),
                call: "filters",
                message: describe(&e, &limits),
            })?;
        let declared = declared
            .into_iter()
            .map(|f| from_wit_filter(f, record.declared()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| HostError::Rule {
                rule: info.id.clone(),
                call: "filters",
                message,
            })?;
        let filters = Filters::checked(&info.id, declared, &record)?;
        let provenance = rule.provenance();
        let alert_overhead = rules
            .iter()
            .map(|r| AlertMaker::new(r, &provenance).overhead())
            .max()
            .unwrap_or(0);
        Ok(ComponentRule {
            engine,
            component: component.clone(),
            path: path.to_owned(),
            config,
            limits,
            deadline_ticks,
            info,
            rules,
            warnings,
            provenance,
            alert_overhead,
            record,
            filters,
            live: Instance {
                store,
                bindings,
                detector,
            },
            encoder: BatchEncoder::default(),
        })
    }

    fn store_and_bindings(
        engine: &Engine,
        component: &Component,
        path: &Path,
        limits: &Limits,
        deadline_ticks: Option<u64>,
    ) -> Result<(Store<StoreData>, DetectorWorld), HostError> {
        let mut store = Store::new(
            engine,
            StoreData {
                limits: store_limits(limits),
            },
        );
        store.limiter(|data| &mut data.limits);
        store.set_hostcall_fuel(hostcall_fuel(limits));
        if let Some(ticks) = deadline_ticks {
            store.set_epoch_deadline(ticks);
        }
        // The linker is empty: a rule gets nothing from the host.
        let linker = Linker::new(engine);
        let bindings = DetectorWorld::instantiate(&mut store, component, &linker).map_err(|e| {
            HostError::Load {
                path: path.to_owned(),
                message: describe(&e, limits),
            }
        })?;
        Ok((store, bindings))
    }

    fn create(
        store: &mut Store<StoreData>,
        bindings: &DetectorWorld,
        info: &RuleInfo,
        config: &str,
        limits: &Limits,
        deadline_ticks: Option<u64>,
    ) -> Result<ResourceAny, HostError> {
        if let Some(ticks) = deadline_ticks {
            store.set_epoch_deadline(ticks);
        }
        bindings
            .trailguard_detector_rule()
            .detector()
            .call_create(store, config)
            .map_err(|e| HostError::Rule {
                rule: info.id.clone(),
                call: "create",
                message: describe(&e, limits),
            })?
            .map_err(|message| HostError::Config {
                rule: info.id.clone(),
                message: printable(&message, 4096),
            })
    }

    /// The events the detector wants (see `Rule::filters`); empty: all.
    pub fn filters(&self) -> Vec<EventFilter> {
        self.filters.list()
    }

    /// Arms the CPU deadline for the next call.
    fn arm(&mut self) {
        if let Some(ticks) = self.deadline_ticks {
            self.live.store.set_epoch_deadline(ticks);
        }
    }

    fn failed(&self, call: &'static str, message: String) -> HostError {
        HostError::Rule {
            rule: self.info.id.clone(),
            call,
            message,
        }
    }

    /// Lifts alerts, refusing more or larger than the limits allow.
    fn checked(
        &self,
        call: &'static str,
        alerts: Vec<wit::Alert>,
    ) -> Result<Vec<Alert>, HostError> {
        if alerts.len() > self.limits.max_alerts_per_call {
            return Err(self.failed(
                call,
                format!(
                    "returned {} alerts in one call, over the limit of {}",
                    alerts.len(),
                    self.limits.max_alerts_per_call
                ),
            ));
        }
        // What the host builds from them: each document, the reason that
        // may repeat its text, and the rule's metadata copied into each.
        let bytes: usize = alerts
            .iter()
            .map(|a| {
                a.document
                    .len()
                    .saturating_mul(2)
                    .saturating_add(self.alert_overhead)
            })
            .fold(0, usize::saturating_add);
        if bytes > self.limits.max_alert_bytes_per_call {
            return Err(self.failed(
                call,
                format!(
                    "returned {} alerts that would make {bytes} bytes of alert documents in one call (their text twice, plus {} bytes of rule metadata each), over the limit of {}",
                    alerts.len(),
                    self.alert_overhead,
                    self.limits.max_alert_bytes_per_call
                ),
            ));
        }
        Ok(alerts
            .into_iter()
            .map(|a| Alert {
                rule: a.rule,
                timestamp_ms: a.timestamp_ms,
                document: a.document,
            })
            .collect())
    }
}

impl Detector for ComponentRule {
    fn info(&self) -> &RuleInfo {
        &self.info
    }

    fn provenance(&self) -> Provenance {
        self.provenance.clone()
    }

    fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn record_paths(&self) -> &[String] {
        self.record.declared()
    }

    fn event_test(&self) -> Option<trailguard_ingest::EventTest> {
        self.filters.standard_test()
    }

    fn process(&mut self, events: &[NormalizedEvent]) -> Result<Vec<Alert>, HostError> {
        if let Some(first) = events.first() {
            self.record.refresh(first.record.paths());
        }
        let passing: Vec<&NormalizedEvent> = if self.filters.is_empty() {
            events.iter().collect()
        } else {
            let (filters, record) = (&self.filters, &self.record);
            events.iter().filter(|e| filters.pass(e, record)).collect()
        };
        let mut passing = passing.into_iter();
        let mut alerts = Vec::new();
        // Usually one call; more when the record fields the rule reads
        // make the batch's text larger than the limit for one call.
        loop {
            self.arm();
            let Ok(batch) =
                self.encoder
                    .encode(&mut passing, &self.record, self.limits.max_batch_text_bytes)
            else {
                return Err(self.failed(
                    "process",
                    "batch text exceeds 4 GiB; use smaller batches".into(),
                ));
            };
            if batch.timestamps.is_empty() {
                // No (more) event passes the rule's filters: nothing to send.
                return Ok(alerts);
            }
            let live = &mut self.live;
            let result = live
                .bindings
                .trailguard_detector_rule()
                .detector()
                .call_process(&mut live.store, live.detector, batch);
            match result {
                Ok(returned) => alerts.extend(self.checked("process", returned)?),
                Err(e) => return Err(self.failed("process", describe(&e, &self.limits))),
            }
        }
    }

    fn advance(&mut self, watermark_ms: i64) -> Result<Vec<Alert>, HostError> {
        self.arm();
        let live = &mut self.live;
        let result = live
            .bindings
            .trailguard_detector_rule()
            .detector()
            .call_advance(&mut live.store, live.detector, watermark_ms);
        match result {
            Ok(alerts) => self.checked("advance", alerts),
            Err(e) => Err(self.failed("advance", describe(&e, &self.limits))),
        }
    }

    fn snapshot(&mut self) -> Result<Vec<u8>, HostError> {
        self.arm();
        let live = &mut self.live;
        let result = live
            .bindings
            .trailguard_detector_rule()
            .detector()
            .call_snapshot(&mut live.store, live.detector);
        match result {
            Ok(state) if state.len() > self.limits.max_snapshot_bytes => Err(self.failed(
                "snapshot",
                format!(
                    "returned a snapshot of {} bytes, over the limit of {}",
                    state.len(),
                    self.limits.max_snapshot_bytes
                ),
            )),
            Ok(state) => Ok(state),
            Err(e) => Err(self.failed("snapshot", describe(&e, &self.limits))),
        }
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), HostError> {
        self.arm();
        let live = &mut self.live;
        let result = live
            .bindings
            .trailguard_detector_rule()
            .detector()
            .call_restore(&mut live.store, live.detector, state);
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(self.failed("restore", printable(&message, 4096))),
            Err(e) => Err(self.failed("restore", describe(&e, &self.limits))),
        }
    }

    fn restart(&mut self) -> Result<(), HostError> {
        let (mut store, bindings) = Self::store_and_bindings(
            &self.engine,
            &self.component,
            &self.path,
            &self.limits,
            self.deadline_ticks,
        )?;
        let detector = Self::create(
            &mut store,
            &bindings,
            &self.info,
            &self.config,
            &self.limits,
            self.deadline_ticks,
        )?;
        self.live = Instance {
            store,
            bindings,
            detector,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::Config;

    use super::*;

    /// A component whose core instances each define a memory of `pages`.
    fn with_memories(count: usize, pages: u32) -> Vec<u8> {
        let mut text = String::from("(component\n");
        for i in 0..count {
            text.push_str(&format!(
                "(core module $m{i} (memory (export \"m\") {pages}))\n(core instance (instantiate $m{i}))\n"
            ));
        }
        text.push(')');
        wat::parse_str(&text).expect("valid component text")
    }

    fn instantiate(component: &[u8], limits: &Limits) -> wasmtime::Result<()> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, component)?;
        let mut store = Store::new(
            &engine,
            StoreData {
                limits: store_limits(limits),
            },
        );
        store.limiter(|data| &mut data.limits);
        Linker::<StoreData>::new(&engine).instantiate(&mut store, &component)?;
        Ok(())
    }

    #[test]
    fn the_memory_cap_is_the_rules_total_not_a_per_memory_figure() {
        let limits = Limits {
            max_memory_bytes: 8 << 20,
            ..Limits::default()
        };
        // 64 pages (4 MiB) in one memory: within the cap.
        instantiate(&with_memories(1, 64), &limits).expect("one memory fits");
        // The same in each of four memories would be 16 MiB in all.
        let e = instantiate(&with_memories(4, 64), &limits).expect_err("four memories");
        assert!(format!("{e:#}").contains("memor"), "{e:#}");
        let e = instantiate(&with_memories(2, 1), &limits).expect_err("even two small ones");
        assert!(format!("{e:#}").contains("memor"), "{e:#}");
    }

    /// The one list of fields (`for_each_string_field!`) is in the order of
    /// the contract's `string-field` enum, which the encoder and the guest
    /// rely on.
    #[test]
    fn the_field_list_is_in_the_contracts_order() {
        macro_rules! wit_order {
            ($($name:ident $variant:ident $ecs:literal $doc:literal;)*) => {
                [$(wit::StringField::$variant as usize),*]
            };
        }
        let order = trailguard_rule_sdk::for_each_string_field!(wit_order);
        assert_eq!(order.len(), Field::ALL.len());
        for (i, (&position, field)) in order.iter().zip(Field::ALL).enumerate() {
            assert_eq!(position, i, "{field:?}");
            assert_eq!(from_wit_field(wit_field_at(i)), field);
        }
    }

    fn wit_field_at(i: usize) -> wit::StringField {
        macro_rules! all_wit {
            ($($name:ident $variant:ident $ecs:literal $doc:literal;)*) => {
                [$(wit::StringField::$variant),*]
            };
        }
        trailguard_rule_sdk::for_each_string_field!(all_wit)[i]
    }

    #[test]
    fn hostcall_fuel_admits_a_snapshot_up_to_its_limit() {
        let limits = Limits {
            max_snapshot_bytes: 256 << 20,
            ..Limits::default()
        };
        assert!(hostcall_fuel(&limits) > 256 << 20);
        assert_eq!(
            hostcall_fuel(&Limits {
                max_snapshot_bytes: 1 << 20,
                max_alert_bytes_per_call: 1 << 20,
                ..Limits::default()
            }),
            128 << 20
        );
    }
}
