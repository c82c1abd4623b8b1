//! A rule running as a sandboxed WebAssembly component.

use std::path::Path;

use trailguard_ingest::NormalizedEvent;
use trailguard_rule_sdk::{Alert, RuleInfo, Severity};
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};

use crate::bindings::Detector as DetectorWorld;
use crate::bindings::exports::trailguard::detector::rule as wit;
use crate::{BatchEncoder, Detector, HostError, Runtime};

/// Per-store data: the memory limiter.
struct StoreData {
    limits: StoreLimits,
}

/// One rule component: its own store (memory, limits), instance and detector.
pub struct ComponentRule {
    store: Store<StoreData>,
    bindings: DetectorWorld,
    detector: ResourceAny,
    info: RuleInfo,
    encoder: BatchEncoder,
    deadline_ticks: u64,
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
    }
}

fn from_wit_alerts(alerts: Vec<wit::Alert>) -> Vec<Alert> {
    alerts
        .into_iter()
        .map(|a| Alert {
            timestamp_ms: a.timestamp_ms,
            document: a.document,
        })
        .collect()
}

impl ComponentRule {
    pub(crate) fn instantiate(
        runtime: &Runtime,
        component: &Component,
        path: &Path,
        config: impl FnOnce(&RuleInfo) -> String,
    ) -> Result<ComponentRule, HostError> {
        let limits = runtime.limits();
        let mut store = Store::new(
            runtime.engine(),
            StoreData {
                limits: StoreLimitsBuilder::new()
                    .memory_size(limits.max_memory_bytes)
                    .instances(16)
                    .memories(4)
                    .tables(16)
                    .trap_on_grow_failure(true)
                    .build(),
            },
        );
        store.limiter(|data| &mut data.limits);
        let deadline_ticks = runtime.deadline_ticks();
        store.set_epoch_deadline(deadline_ticks);
        let load_err = |e: wasmtime::Error| HostError::Load {
            path: path.to_owned(),
            message: format!("{e:#}"),
        };
        // The linker is empty: a rule gets nothing from the host.
        let linker = Linker::new(runtime.engine());
        let bindings =
            DetectorWorld::instantiate(&mut store, component, &linker).map_err(load_err)?;
        let rule = bindings.trailguard_detector_rule();
        let info = from_wit(rule.call_info(&mut store).map_err(load_err)?);
        let config = config(&info);
        store.set_epoch_deadline(deadline_ticks);
        let detector = rule
            .detector()
            .call_create(&mut store, &config)
            .map_err(|e| HostError::Rule {
                rule: info.id.clone(),
                call: "create",
                message: format!("{e:#}"),
            })?
            .map_err(|message| HostError::Config {
                rule: info.id.clone(),
                message,
            })?;
        Ok(ComponentRule {
            store,
            bindings,
            detector,
            info,
            encoder: BatchEncoder::default(),
            deadline_ticks,
        })
    }

    fn failed(&self, call: &'static str, e: &wasmtime::Error) -> HostError {
        let message = match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => {
                "interrupted: exceeded the CPU time limit per call".to_owned()
            }
            _ => format!("{e:#}"),
        };
        HostError::Rule {
            rule: self.info.id.clone(),
            call,
            message,
        }
    }
}

impl Detector for ComponentRule {
    fn info(&self) -> &RuleInfo {
        &self.info
    }

    fn process(&mut self, events: &[NormalizedEvent]) -> Result<Vec<Alert>, HostError> {
        let Some(batch) = self.encoder.encode(events) else {
            return Err(HostError::Rule {
                rule: self.info.id.clone(),
                call: "process",
                message: "batch text exceeds 4 GiB; use smaller batches".into(),
            });
        };
        self.store.set_epoch_deadline(self.deadline_ticks);
        let result = self
            .bindings
            .trailguard_detector_rule()
            .detector()
            .call_process(&mut self.store, self.detector, batch);
        result
            .map(from_wit_alerts)
            .map_err(|e| self.failed("process", &e))
    }

    fn advance(&mut self, watermark_ms: i64) -> Result<Vec<Alert>, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let result = self
            .bindings
            .trailguard_detector_rule()
            .detector()
            .call_advance(&mut self.store, self.detector, watermark_ms);
        result
            .map(from_wit_alerts)
            .map_err(|e| self.failed("advance", &e))
    }

    fn snapshot(&mut self) -> Result<Vec<u8>, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let result = self
            .bindings
            .trailguard_detector_rule()
            .detector()
            .call_snapshot(&mut self.store, self.detector);
        result.map_err(|e| self.failed("snapshot", &e))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let result = self
            .bindings
            .trailguard_detector_rule()
            .detector()
            .call_restore(&mut self.store, self.detector, state);
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(HostError::Rule {
                rule: self.info.id.clone(),
                call: "restore",
                message,
            }),
            Err(e) => Err(self.failed("restore", &e)),
        }
    }
}
