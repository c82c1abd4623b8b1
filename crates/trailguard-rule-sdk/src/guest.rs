//! The WebAssembly side of the contract: generated bindings, the decoding of
//! an event batch, and the adapter from [`Rule`] to the exported resource.
//!
//! Used only through [`export_rule!`](crate::export_rule); not public API.

use core::cell::RefCell;

use crate::{
    Alert, Comparison, Event, Field, Outcome, RecordFields, Rule, Severity, Target, Value,
    ValueKind, declared_paths,
};

#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "detector",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "trailguard_rule_sdk::guest::bindings",
    });
}

pub use bindings::export;
use bindings::exports::trailguard::detector::rule as wit;
pub use wit::Guest as RuleGuest;
pub use wit::RuleInfo as WitRuleInfo;

/// The exported resource: one [`Rule`] value behind a `RefCell`, because the
/// component model hands methods `&self`, and the record paths it declared.
pub struct Detector<R> {
    rule: RefCell<R>,
    paths: Vec<String>,
}

/// `info` for [`export_rule!`](crate::export_rule).
pub fn info<R: Rule>() -> WitRuleInfo {
    to_wit_info(R::info())
}

fn to_wit_info(info: crate::RuleInfo) -> WitRuleInfo {
    WitRuleInfo {
        id: info.id,
        name: info.name,
        version: info.version,
        severity: match info.severity {
            Severity::Low => wit::Severity::Low,
            Severity::Medium => wit::Severity::Medium,
            Severity::High => wit::Severity::High,
            Severity::Critical => wit::Severity::Critical,
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

fn to_wit(alerts: Vec<Alert>) -> Vec<wit::Alert> {
    alerts
        .into_iter()
        .map(|a| wit::Alert {
            rule: a.rule,
            timestamp_ms: a.timestamp_ms,
            document: a.document,
        })
        .collect()
}

/// Resolves string-table index `i` of a batch; 0 and out-of-range indices
/// (which a correct host never sends) read as absent.
fn string_at<'a>(text: &'a str, offsets: &[u32], i: u32) -> Option<&'a str> {
    if i == 0 {
        return None;
    }
    let i = i as usize;
    let start = *offsets.get(i)? as usize;
    let end = *offsets.get(i + 1)? as usize;
    text.get(start..end)
}

/// Number of string fields per event (`string-field` cases).
const FIELDS: usize = Field::ALL.len();

/// The contract's `string-field` case of each [`Field`].
macro_rules! to_wit_field {
    ($($name:ident $variant:ident $ecs:literal $doc:literal;)*) => {
        fn wit_field(field: Field) -> wit::StringField {
            match field {
                $(Field::$variant => wit::StringField::$variant,)*
            }
        }
    };
}
crate::for_each_string_field!(to_wit_field);

/// The record field values of every event of `batch`, `paths` per event.
fn decode_values(batch: &wit::EventBatch, paths: usize) -> Vec<Option<Value<'_>>> {
    batch
        .value_kinds
        .iter()
        .zip(&batch.value_texts)
        .take(batch.timestamps.len() * paths)
        .map(|(&kind, &text)| {
            let kind = ValueKind::from_code(kind);
            let text = if kind.has_text() {
                string_at(&batch.text, &batch.offsets, text).unwrap_or_default()
            } else {
                ""
            };
            Value::new(kind, text)
        })
        .collect()
}

fn decode<'a>(
    batch: &'a wit::EventBatch,
    paths: &'a [String],
    values: &'a [Option<Value<'a>>],
) -> Vec<Event<'a>> {
    let n = paths.len();
    batch
        .timestamps
        .iter()
        .enumerate()
        .map(|(e, &timestamp_ms)| {
            let refs = batch
                .strings
                .get(e * FIELDS..(e + 1) * FIELDS)
                .unwrap_or(&[]);
            let string = |field: Field| {
                let i = *refs.get(wit_field(field) as usize)?;
                string_at(&batch.text, &batch.offsets, i)
            };
            let record = values.get(e * n..(e + 1) * n).unwrap_or(&[]);
            Event::from_fields(
                timestamp_ms,
                string,
                batch.as_numbers.get(e).copied().filter(|&n| n != 0),
                match batch.outcomes.get(e) {
                    Some(0) => Outcome::Success,
                    Some(1) => Outcome::Failure,
                    _ => Outcome::Unknown,
                },
                RecordFields::new(paths, record),
            )
        })
        .collect()
}

impl<R: Rule + 'static> wit::GuestDetector for Detector<R> {
    fn create(config: String) -> Result<wit::Detector, String> {
        R::create(&config).map(|rule| {
            let paths = declared_paths(rule.fields(), &rule.filters());
            wit::Detector::new(Detector {
                rule: RefCell::new(rule),
                paths,
            })
        })
    }

    fn rules(&self) -> Vec<WitRuleInfo> {
        self.rule
            .borrow()
            .rules()
            .into_iter()
            .map(to_wit_info)
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        self.rule.borrow().warnings()
    }

    fn fields(&self) -> Vec<String> {
        self.paths.clone()
    }

    fn filters(&self) -> Vec<wit::EventFilter> {
        self.rule
            .borrow()
            .filters()
            .into_iter()
            .map(|f| wit::EventFilter {
                field: match &f.target {
                    Target::Field(field) => wit::FieldRef::Standard(wit_field(*field)),
                    // Declared in `create`, so always found.
                    Target::Path(path) => wit::FieldRef::Path(
                        self.paths
                            .iter()
                            .position(|p| p == path)
                            .and_then(|k| u32::try_from(k).ok())
                            .unwrap_or(u32::MAX),
                    ),
                },
                comparison: match f.comparison {
                    Comparison::Equals => wit::Comparison::Equals,
                    Comparison::Prefix => wit::Comparison::Prefix,
                },
                ignore_case: f.ignore_case,
                any_of: f.any_of,
            })
            .collect()
    }

    fn process(&self, batch: wit::EventBatch) -> Vec<wit::Alert> {
        let values = decode_values(&batch, self.paths.len());
        let events = decode(&batch, &self.paths, &values);
        to_wit(self.rule.borrow_mut().process(&events))
    }

    fn advance(&self, watermark_ms: i64) -> Vec<wit::Alert> {
        to_wit(self.rule.borrow_mut().advance(watermark_ms))
    }

    fn snapshot(&self) -> Vec<u8> {
        self.rule.borrow().snapshot()
    }

    fn restore(&self, state: Vec<u8>) -> Result<(), String> {
        self.rule.borrow_mut().restore(&state)
    }
}

/// `memcmp` for rules: [`crate::bytes::compare`], eight bytes at a time.
///
/// The one Rust's standard library brings to `wasm32-unknown-unknown` is a
/// byte loop; rules compare strings all the time (ordered sets and maps of
/// user agents, organizations, user names), and equal strings, the common
/// case, are scanned to the end. This definition overrides the library's
/// weak one (measured: docs/performance.md).
///
/// # Safety
///
/// `a` and `b` must be valid for reads of `n` bytes (the `memcmp` contract).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller guarantees both ranges are readable.
    let (a, b) = unsafe {
        (
            core::slice::from_raw_parts(a, n),
            core::slice::from_raw_parts(b, n),
        )
    };
    crate::bytes::compare(a, b)
}

/// `bcmp` (equality only), which the compiler emits for `==` on bytes.
///
/// # Safety
///
/// As for [`memcmp`].
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same contract.
    unsafe { memcmp(a, b, n) }
}
