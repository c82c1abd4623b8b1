//! The built component and the native rule agree on the same events.
//! Needs `cargo xtask build` first (`cargo xtask test` does it).

use rule_root_activity::RootActivity;
use trailguard_host::testing::{assert_component_agrees, built_component, normalized};
use trailguard_rule_sdk::testing::TestEvent;

#[test]
fn component_agrees_with_native() {
    let events: Vec<_> = (0..500)
        .map(|i| {
            let kind = ["Root", "IAMUser", "AssumedRole", "Root"][i % 4];
            TestEvent::new(1_000 * i as i64, "someone", "ListBuckets")
                .identity_type(Some(kind))
                .from_network("73.162.41.17", 7922, "Comcast Cable Communications, LLC")
        })
        .map(|e| normalized(&e))
        .collect();
    let alerts = assert_component_agrees::<RootActivity>(
        &built_component("rule-root-activity"),
        "",
        &events,
    );
    assert_eq!(alerts.len(), 250);
}
