//! A rule that misbehaves on purpose, for `tests/hostile.rs`. Its
//! configuration picks the misbehaviour and when it starts:
//! `{"mode": "endless-loop", "after_events": 500}`.
//!
//! Modes: `healthy`, `endless-loop`, `memory-bomb`, `recursion`,
//! `trap-in-create`, `panic`, `flaky` (panics once, in an instance that was
//! never restored: a transient fault), `huge-alerts`, `huge-snapshot`,
//! `garbage-alert` (a document that is not JSON), `invalid-utf8` (a string
//! that is not UTF-8, which the component ABI must refuse), `echo-root`
//! (wants only root's events and alerts once per event it receives),
//! `greedy-filters` (declares more filters than the host allows),
//! `many-alerts` (the most alerts a call may return, each tiny, which its
//! long description would turn into hundreds of MiB of alert documents),
//! `forge-fields` (alerts that try to write the host's fields, nested and
//! flat, to pass for another rule's), `snapshot-160mib` (a snapshot within
//! the snapshot limit but over wasmtime's default hostcall fuel),
//! `bad-rule-index` (an alert naming a rule its `rules` does not list),
//! `claim-rule-a` (lists a rule with rule A's id among its own),
//! `many-rules` (lists more rules than the host allows).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use trailguard_rule_sdk::{
    Alert, Event, EventFilter, Field, Rule, RuleInfo, Severity, config, export_rule,
};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: String,
    after_events: u64,
}

/// Set in an instance once a snapshot was restored into it.
static RESTORED: AtomicBool = AtomicBool::new(false);

/// The misbehaving rule.
pub struct Hostile {
    config: Config,
    seen: u64,
}

/// Recurses until the wasm stack runs out: on purpose.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    black_box(recurse(black_box(depth + 1))) + 1
}

impl Hostile {
    fn misbehave(&self) -> Vec<Alert> {
        match self.config.mode.as_str() {
            "endless-loop" => loop {
                black_box(self.seen);
            },
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recursion" => {
                black_box(recurse(0));
                Vec::new()
            }
            "panic" => panic!("hostile rule panics after {} events", self.seen),
            "flaky" if !RESTORED.load(Ordering::Relaxed) => panic!("transient fault"),
            "huge-alerts" => (0..1_000_000)
                .map(|i| Alert {
                    rule: 0,
                    timestamp_ms: i,
                    document: "{}".into(),
                })
                .collect(),
            "many-alerts" => (0..10_000)
                .map(|i| Alert {
                    rule: 0,
                    timestamp_ms: i,
                    document: "{}".into(),
                })
                .collect(),
            "forge-fields" => vec![Alert {
                rule: 0,
                timestamp_ms: 0,
                document: r#"{"kibana":{"alert":{"severity":"critical","risk_score":99,"rule":{"rule_id":"aws-sensitive-untrusted-asn","name":"forged"}}},"kibana.alert.uuid":"forged","Kibana..alert.rule.rule_id":"aws-sensitive-untrusted-asn","event":{"kind":"alert","action":"forged"},"threat":{"technique":{"id":["T0000"]}},"@timestamp":"2099-01-01T00:00:00Z"}"#.into(),
            }],
            "bad-rule-index" => vec![Alert {
                rule: 7,
                timestamp_ms: 0,
                document: "{}".into(),
            }],
            "garbage-alert" => vec![Alert {
                rule: 0,
                timestamp_ms: 0,
                document: "{this is not json".into(),
            }],
            "invalid-utf8" => {
                let bytes = vec![b'{', b'}', 0xff, 0xfe];
                // SAFETY: deliberately not UTF-8: the host must refuse it
                // when it lifts the string out of the component.
                #[allow(unsafe_code)]
                let document = unsafe { String::from_utf8_unchecked(bytes) };
                vec![Alert {
                    rule: 0,
                    timestamp_ms: 0,
                    document,
                }]
            }
            _ => Vec::new(),
        }
    }
}

impl Rule for Hostile {
    fn info() -> RuleInfo {
        RuleInfo {
            id: "test-hostile".into(),
            name: "Hostile test rule".into(),
            version: "0.0.1".into(),
            severity: Severity::Low,
            risk_score: 1,
            mitre_techniques: Vec::new(),
            // Long (16 KiB, the most a description may be): copied into
            // every alert, which the per-call limit must count.
            description: format!("Misbehaves on purpose. {}", "x".repeat(16_000)),
            default_config: r#"{"mode":"healthy","after_events":0}"#.into(),
            tags: Vec::new(),
            references: Vec::new(),
            author: String::new(),
        }
    }

    fn create(text: &str) -> Result<Self, String> {
        let config: Config = config::parse(
            text,
            Config {
                mode: "healthy".into(),
                after_events: 0,
            },
        )?;
        if config.mode == "trap-in-create" {
            panic!("hostile rule traps in its constructor");
        }
        Ok(Hostile { config, seen: 0 })
    }

    fn rules(&self) -> Vec<RuleInfo> {
        let mut rules = vec![Self::info()];
        let named = |id: String| RuleInfo {
            id,
            description: String::new(),
            ..Self::info()
        };
        match self.config.mode.as_str() {
            "claim-rule-a" => rules.push(named("aws-sensitive-untrusted-asn".into())),
            "many-rules" => rules.extend((0..10_000).map(|i| named(format!("test-hostile-{i}")))),
            _ => {}
        }
        rules
    }

    fn filters(&self) -> Vec<EventFilter> {
        match self.config.mode.as_str() {
            "echo-root" => vec![EventFilter::new(Field::IdentityType, ["Root"])],
            "greedy-filters" => vec![EventFilter::new(Field::UserName, ["x"]); 17],
            _ => Vec::new(),
        }
    }

    fn process(&mut self, events: &[Event<'_>]) -> Vec<Alert> {
        if self.config.mode == "echo-root" {
            return events
                .iter()
                .map(|e| Alert {
                    rule: 0,
                    timestamp_ms: e.timestamp_ms,
                    document: format!(r#"{{"event.id":"{}"}}"#, e.event_id.unwrap_or_default()),
                })
                .collect();
        }
        self.seen += events.len() as u64;
        if self.seen > self.config.after_events {
            self.misbehave()
        } else {
            Vec::new()
        }
    }

    fn advance(&mut self, _watermark_ms: i64) -> Vec<Alert> {
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        if self.config.mode == "huge-snapshot" && self.seen > self.config.after_events {
            return vec![7u8; 4 << 20];
        }
        if self.config.mode == "snapshot-160mib" && self.seen > self.config.after_events {
            // Within the default snapshot limit (256 MiB), over wasmtime's
            // default hostcall fuel (128 MiB). The first 8 bytes stay the
            // count, so it restores.
            let mut state = vec![7u8; 160 << 20];
            state[..8].copy_from_slice(&self.seen.to_le_bytes());
            return state;
        }
        self.seen.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let head = state.get(..8).ok_or_else(|| "bad snapshot".to_owned())?;
        let bytes: [u8; 8] = head.try_into().map_err(|_| "bad snapshot".to_owned())?;
        self.seen = u64::from_le_bytes(bytes);
        RESTORED.store(true, Ordering::Relaxed);
        Ok(())
    }
}

export_rule!(Hostile);
