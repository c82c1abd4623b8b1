//! The WebAssembly side of the contract: generated bindings, the decoding of
//! an event batch, and the adapter from [`Rule`] to the exported resource.
//!
//! Used only through [`export_rule!`](crate::export_rule); not public API.

use core::cell::RefCell;

use crate::{Alert, Event, Field, Outcome, Rule, Severity};

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
/// component model hands methods `&self`.
pub struct Detector<R>(RefCell<R>);

/// `info` for [`export_rule!`](crate::export_rule).
pub fn info<R: Rule>() -> WitRuleInfo {
    let info = R::info();
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
    }
}

fn to_wit(alerts: Vec<Alert>) -> Vec<wit::Alert> {
    alerts
        .into_iter()
        .map(|a| wit::Alert {
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
const FIELDS: usize = wit::StringField::UserChangesName as usize + 1;

fn decode(batch: &wit::EventBatch) -> Vec<Event<'_>> {
    use wit::StringField as F;
    batch
        .timestamps
        .iter()
        .enumerate()
        .map(|(e, &timestamp_ms)| {
            let refs = batch
                .strings
                .get(e * FIELDS..(e + 1) * FIELDS)
                .unwrap_or(&[]);
            let s = |field: F| {
                let i = *refs.get(field as usize)?;
                string_at(&batch.text, &batch.offsets, i)
            };
            Event {
                timestamp_ms,
                event_id: s(F::EventId),
                event_action: s(F::EventAction),
                event_provider: s(F::EventProvider),
                cloud_region: s(F::CloudRegion),
                cloud_account_id: s(F::CloudAccountId),
                user_name: s(F::UserName),
                identity_type: s(F::IdentityType),
                identity_arn: s(F::IdentityArn),
                source_address: s(F::SourceAddress),
                source_ip: s(F::SourceIp),
                source_as_number: batch.as_numbers.get(e).copied().filter(|&n| n != 0),
                source_as_organization: s(F::SourceAsOrganization),
                user_agent: s(F::UserAgent),
                error_code: s(F::ErrorCode),
                user_changes_name: s(F::UserChangesName),
                outcome: match batch.outcomes.get(e) {
                    Some(0) => Outcome::Success,
                    Some(1) => Outcome::Failure,
                    _ => Outcome::Unknown,
                },
            }
        })
        .collect()
}

impl<R: Rule + 'static> wit::GuestDetector for Detector<R> {
    fn create(config: String) -> Result<wit::Detector, String> {
        R::create(&config).map(|rule| wit::Detector::new(Detector(RefCell::new(rule))))
    }

    fn filters(&self) -> Vec<wit::EventFilter> {
        use wit::StringField as F;
        self.0
            .borrow()
            .filters()
            .into_iter()
            .map(|f| wit::EventFilter {
                field: match f.field {
                    Field::EventId => F::EventId,
                    Field::EventAction => F::EventAction,
                    Field::EventProvider => F::EventProvider,
                    Field::CloudRegion => F::CloudRegion,
                    Field::CloudAccountId => F::CloudAccountId,
                    Field::UserName => F::UserName,
                    Field::IdentityType => F::IdentityType,
                    Field::IdentityArn => F::IdentityArn,
                    Field::SourceAddress => F::SourceAddress,
                    Field::SourceIp => F::SourceIp,
                    Field::SourceAsOrganization => F::SourceAsOrganization,
                    Field::UserAgent => F::UserAgent,
                    Field::ErrorCode => F::ErrorCode,
                    Field::UserChangesName => F::UserChangesName,
                },
                any_of: f.any_of,
            })
            .collect()
    }

    fn process(&self, batch: wit::EventBatch) -> Vec<wit::Alert> {
        let events = decode(&batch);
        to_wit(self.0.borrow_mut().process(&events))
    }

    fn advance(&self, watermark_ms: i64) -> Vec<wit::Alert> {
        to_wit(self.0.borrow_mut().advance(watermark_ms))
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.borrow().snapshot()
    }

    fn restore(&self, state: Vec<u8>) -> Result<(), String> {
        self.0.borrow_mut().restore(&state)
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
