//! What a trailguard rule is made of.
//!
//! A rule is plain Rust: a type that implements [`Rule`] over [`Event`]s and
//! returns [`Alert`]s. The same type builds natively (for tests and
//! benchmarks) and, through [`export_rule!`], as a WebAssembly component that
//! implements the `trailguard:detector` contract in `wit/detector.wit`.
//!
//! Besides the contract, it holds what every rule needs so a rule's own code
//! is only its logic: [`config`] parsing with errors that name the key,
//! [`snapshot`] encoding tagged with the rule and state format, event-time
//! helpers in [`time`], windowed counters in [`window`], an
//! [`AlertBuilder`], and a [`testing`] harness that feeds events to a rule
//! natively the way the host does.
//!
//! This crate owns the guest side of the contract: the generated bindings and
//! the decoding of an event batch's string table. It must not depend on
//! anything a sandboxed guest cannot have (files, clocks, threads).

mod alert;
#[cfg(any(target_arch = "wasm32", test))]
mod bytes;
pub mod config;
mod event;
mod filter;
mod rule;
pub mod snapshot;
pub mod testing;
pub mod time;
mod value;
pub mod window;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

pub use alert::AlertBuilder;
pub use event::{Event, Outcome, RecordFields};
pub use filter::{Comparison, EventFilter, Field, Target};
pub use rule::{Alert, Rule, RuleInfo, Severity, declared_paths};
pub use time::format_timestamp_ms;
pub use value::{OwnedValue, Value, ValueKind, compact_json};
// Rules derive their configuration and state with serde.
pub use serde;
pub use serde_json;

/// The contract version this SDK implements, as written in `wit/detector.wit`.
pub const CONTRACT_VERSION: &str = "0.4.0";

/// Exports a [`Rule`] type as the component's `trailguard:detector/rule`.
///
/// Use it once, at the root of a rule crate:
///
/// ```ignore
/// trailguard_rule_sdk::export_rule!(MyRule);
/// ```
///
/// On non-WebAssembly targets it expands to nothing, so the same crate also
/// builds natively.
#[macro_export]
macro_rules! export_rule {
    ($rule:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Component;
            impl $crate::guest::RuleGuest for Component {
                type Detector = $crate::guest::Detector<$rule>;
                fn info() -> $crate::guest::WitRuleInfo {
                    $crate::guest::info::<$rule>()
                }
            }
    $crate::guest::export!(Component with_types_in $crate::guest::bindings);
        };
    };
}
