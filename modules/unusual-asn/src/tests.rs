//! Rule B at the boundaries of the spec, and against a naive statement of it.

use trailguard_rule_sdk::testing::{Harness, TestAlert, TestEvent};
use trailguard_rule_sdk::time::{DAY_MS, HOUR_MS};
use trailguard_rule_sdk::{Event, Outcome, Rule};

use crate::UnusualAsn;

/// 2026-04-01T00:00:00Z.
const START: i64 = 1_775_001_600_000;
const AMAZON: (&str, u32, &str) = ("3.80.17.4", 14618, "Amazon.com, Inc.");
const AMAZON_OTHER_AS: (&str, u32, &str) = ("52.94.10.3", 16509, "Amazon.com, Inc.");
const COMCAST: (&str, u32, &str) = ("73.162.41.17", 7922, "Comcast Cable Communications, LLC");
const TOR: (&str, u32, &str) = ("185.220.101.4", 60729, "Stiftung Erneuerbare Freiheit");

fn call(t: i64, net: (&str, u32, &str)) -> TestEvent {
    TestEvent::new(t, "ci-deploy", "ListBuckets").from_network(net.0, net.1, net.2)
}

/// A CI role calling from Amazon every 6 hours for `days` days from START.
fn routine(days: i64) -> Vec<TestEvent> {
    (0..days * 4)
        .map(|i| call(START + i * 6 * HOUR_MS, AMAZON))
        .collect()
}

fn run(config: &str, events: &[TestEvent]) -> Vec<TestAlert> {
    Harness::<UnusualAsn>::new(config)
        .expect("config")
        .run(events)
}

fn times(alerts: &[TestAlert]) -> Vec<i64> {
    alerts.iter().map(|a| a.timestamp_ms).collect()
}

#[test]
fn new_network_after_learning_alerts_with_context() {
    let mut events = routine(12);
    let at = START + 11 * DAY_MS + 5 * 60_000;
    events.push(call(at, COMCAST));
    let alerts = run("", &events);
    assert_eq!(times(&alerts), vec![at]);
    let d = &alerts[0].document;
    assert_eq!(d["user.name"], "ci-deploy");
    assert_eq!(d["cloud.account.id"], "123456789012");
    assert_eq!(d["aws.cloudtrail.user_identity.type"], "AssumedRole");
    assert_eq!(d["source.ip"], "73.162.41.17");
    assert_eq!(d["source.as.number"], 7922);
    assert_eq!(d["source.as.organization.name"], COMCAST.2);
    assert_eq!(d["event.action"], "ListBuckets");
    assert!(d["event.id"].is_string());
    assert_eq!(d["trailguard.identity_first_seen"], "2026-04-01T00:00:00Z");
    let usual = d["trailguard.usual_networks"].as_array().expect("list");
    assert_eq!(usual.len(), 1);
    assert_eq!(usual[0]["source.as.organization.name"], AMAZON.2);
    assert_eq!(usual[0]["source.as.number"], 14618);
    // Counted by whole days from the window's first day (day 1) up to the
    // alert: 4 calls on each of days 1..=10, and one on day 11.
    assert_eq!(usual[0]["count"], 4 * 10 + 1);
}

#[test]
fn same_network_within_the_window_does_not_alert_again() {
    let mut events = routine(12);
    let at = START + 11 * DAY_MS;
    events.push(call(at, COMCAST));
    events.push(call(at + HOUR_MS, COMCAST));
    events.push(call(at + 10 * DAY_MS, COMCAST));
    assert_eq!(times(&run("", &events)), vec![at]);
}

#[test]
fn after_the_window_expires_it_alerts_again() {
    let mut events = routine(30);
    let at = START + 11 * DAY_MS;
    events.push(call(at, COMCAST));
    // Exactly 10 days later: still within the window (inclusive).
    events.push(call(at + 10 * DAY_MS, COMCAST));
    // More than 10 days after the last sighting: unusual again.
    let again = at + 20 * DAY_MS + 1;
    events.push(call(again, COMCAST));
    assert_eq!(times(&run("", &events)), vec![at, again]);
}

#[test]
fn new_identity_does_not_alert_while_learning() {
    let mut events = routine(12);
    // Exactly at the end of the learning period: learned.
    events.push(call(START + 10 * DAY_MS, COMCAST));
    assert_eq!(times(&run("", &events)), vec![START + 10 * DAY_MS]);
    let mut events = routine(12);
    events.push(call(START + 10 * DAY_MS - 1, COMCAST));
    assert!(
        run("", &events).is_empty(),
        "one millisecond short of learned"
    );
    // A shorter learning period by configuration.
    let mut events = routine(3);
    events.push(call(START + 2 * DAY_MS + 1, COMCAST));
    assert_eq!(run(r#"{"learning_days":2}"#, &events).len(), 1);
}

#[test]
fn organization_is_the_term_unless_configured() {
    let mut events = routine(12);
    let at = START + 11 * DAY_MS;
    events.push(call(at, AMAZON_OTHER_AS));
    assert!(
        run("", &events).is_empty(),
        "another Amazon AS is the same organization"
    );
    let alerts = run(r#"{"term":"number"}"#, &events);
    assert_eq!(times(&alerts), vec![at]);
    assert_eq!(alerts[0].document["trailguard.new_term"], "AS16509");
}

#[test]
fn an_identity_idle_for_longer_than_the_window_is_still_learned() {
    // Learned over 12 days, then silent for 10 more days: its next call,
    // from a network unseen for longer than the window, alerts, whatever
    // else the stream holds around it.
    let mut events = routine(12);
    // The last routine call is at day 11.75: this is 10.75 days later.
    let back = START + 22 * DAY_MS + 12 * HOUR_MS;
    events.push(call(back, COMCAST));
    assert_eq!(times(&run("", &events)), vec![back]);
    let mut again = routine(12);
    again.push(call(back, AMAZON));
    assert_eq!(
        times(&run("", &again)),
        vec![back],
        "Amazon too: unseen for more than 10 days"
    );
    for batch in [1, 7, 1024] {
        let alerts = Harness::<UnusualAsn>::new("")
            .expect("defaults")
            .batch(batch)
            .run(&events);
        assert_eq!(times(&alerts), vec![back], "batch {batch}");
    }
}

#[test]
fn ignore_lists() {
    let mut events = routine(12);
    events.push(call(START + 11 * DAY_MS, COMCAST));
    events.push(call(START + 11 * DAY_MS + 1, TOR));
    assert_eq!(run("", &events).len(), 2);
    let by_name = run(
        r#"{"ignore_organizations":["comcast cable communications, llc"]}"#,
        &events,
    );
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].document["source.as.number"], 60729);
    let by_number = run(r#"{"ignore_asns":[60729, 7922]}"#, &events);
    assert!(by_number.is_empty());
}

#[test]
fn ignored_networks_still_teach_the_identity() {
    // All routine traffic is from an ignored network: the identity still
    // learns, so a call from elsewhere alerts.
    let mut events = routine(12);
    events.push(call(START + 11 * DAY_MS, COMCAST));
    assert_eq!(run(r#"{"ignore_asns":[14618]}"#, &events).len(), 1);
}

#[test]
fn only_successful_calls_with_an_asn_and_a_user_count() {
    let mut events = routine(12);
    let at = START + 11 * DAY_MS;
    events.push(call(at, COMCAST).outcome(Outcome::Failure));
    let mut no_user = call(at, TOR);
    no_user.user_name = None;
    events.push(no_user);
    let mut no_asn = call(at, TOR);
    no_asn.source_as_number = None;
    events.push(no_asn);
    assert!(run("", &events).is_empty());
}

#[test]
fn keys_separate_accounts_and_identity_types() {
    let mut events = routine(12);
    let at = START + 11 * DAY_MS;
    let mut other_account = call(at, COMCAST);
    other_account.cloud_account_id = Some("999999999999".into());
    events.push(other_account);
    events.push(call(at, COMCAST).identity_type(Some("IAMUser")));
    assert!(
        run("", &events).is_empty(),
        "both are new identities, still learning"
    );
}

#[test]
fn arrival_order_within_lateness_does_not_matter() {
    let mut events = routine(12);
    let at = START + 11 * DAY_MS + 60_000;
    events.push(call(at, COMCAST));
    events.push(call(at + 60_000, COMCAST));
    events.sort_by_key(|e| e.timestamp_ms);
    let sorted = run("", &events);
    // Swap neighbours: each event arrives at most 6 hours late.
    let mut shuffled = events.clone();
    for pair in shuffled.chunks_mut(2) {
        pair.reverse();
    }
    let lenient = Harness::<UnusualAsn>::new("")
        .expect("defaults")
        .lateness_ms(7 * HOUR_MS)
        .batch(1)
        .run(&shuffled);
    assert_eq!(lenient, sorted);
    assert_eq!(times(&sorted), vec![at]);
}

#[test]
fn state_stays_bounded_over_a_long_stream() {
    let mut harness = Harness::<UnusualAsn>::new("").expect("defaults").batch(500);
    let mut peak = (0, 0, 0);
    // 120 days; each day 50 users appear, each from 3 networks out of 200.
    for day in 0..120i64 {
        let events: Vec<TestEvent> = (0..50)
            .flat_map(|u| {
                (0..3).map(move |n| {
                    let user = format!("user-{}", (day * 50 + u) % 400);
                    let asn = ((day * 7 + u * 3 + n) % 200) as u32 + 1;
                    TestEvent::new(
                        START + day * DAY_MS + (u * 3 + n) * 60_000,
                        &user,
                        "GetObject",
                    )
                    .from_network("198.51.100.1", asn, &format!("Org {asn}"))
                })
            })
            .collect();
        harness.push(&events);
        let size = harness.rule().0.size();
        peak = (peak.0.max(size.0), peak.1.max(size.1), peak.2.max(size.2));
    }
    // 400 distinct users: at most all of them, and at most 11 days of
    // networks each; nothing grows with the 120 days.
    let (identities, networks, held) = harness.rule().0.size();
    assert!(identities <= 400 && peak.0 <= 400, "{peak:?}");
    assert!(networks <= 400 * 33 && peak.1 <= 400 * 33, "{peak:?}");
    assert!(held <= 150, "only the last lateness window is held: {held}");
}

#[test]
fn snapshot_restores_held_events_and_history() {
    let mut events = routine(12);
    let at = START + 11 * DAY_MS;
    events.push(call(at, COMCAST));
    let (first, second) = events.split_at(30);
    let views: Vec<Event<'_>> = first.iter().map(TestEvent::view).collect();
    let mut before = UnusualAsn::create("").expect("defaults");
    before.process(&views);
    before.advance(first[first.len() - 1].timestamp_ms);
    let mut after = UnusualAsn::create("").expect("defaults");
    after.restore(&before.snapshot()).expect("restores");
    let views: Vec<Event<'_>> = second.iter().map(TestEvent::view).collect();
    after.process(&views);
    let alerts = after.advance(i64::MAX);
    assert_eq!(
        alerts.iter().map(|a| a.timestamp_ms).collect::<Vec<_>>(),
        vec![at]
    );
    assert!(after.restore(b"junk").is_err());
}

/// An independent statement of the spec: for each counted event in time
/// order, look at every earlier counted event of its key.
mod oracle {
    use super::*;

    fn naive(events: &[TestEvent], history: i64, learning: i64) -> Vec<(i64, String)> {
        let mut sorted: Vec<&TestEvent> = events
            .iter()
            .filter(|e| {
                e.outcome == Outcome::Success
                    && e.user_name.is_some()
                    && e.source_as_number.is_some()
            })
            .collect();
        sorted.sort_by(|a, b| (a.timestamp_ms, &a.event_id).cmp(&(b.timestamp_ms, &b.event_id)));
        let key = |e: &TestEvent| {
            (
                e.cloud_account_id.clone(),
                e.user_name.clone(),
                e.identity_type.clone(),
            )
        };
        let term = |e: &TestEvent| e.source_as_organization.clone().unwrap_or_default();
        let mut out = Vec::new();
        for (i, e) in sorted.iter().enumerate() {
            let earlier: Vec<&&TestEvent> =
                sorted[..i].iter().filter(|p| key(p) == key(e)).collect();
            let Some(first) = earlier.first() else {
                continue;
            };
            let seen = earlier
                .iter()
                .any(|p| term(p) == term(e) && p.timestamp_ms >= e.timestamp_ms - history);
            if !seen && e.timestamp_ms - first.timestamp_ms >= learning {
                out.push((e.timestamp_ms, e.event_id.clone().unwrap_or_default()));
            }
        }
        out
    }

    /// xorshift64*.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        }
    }

    #[test]
    fn agrees_with_a_naive_evaluation() {
        let nets = [
            AMAZON,
            AMAZON_OTHER_AS,
            COMCAST,
            TOR,
            ("8.8.8.8", 15169, "Google LLC"),
        ];
        let mut alerts = 0;
        for seed in 1..=8u64 {
            let mut rng = Rng(seed * 104_729);
            let events: Vec<TestEvent> = (0..1500)
                .map(|i| {
                    let user = ["ci-a", "ci-b", "human"][rng.below(3) as usize];
                    let t = START + rng.below(40 * DAY_MS as u64) as i64;
                    let net = if rng.below(5) == 0 {
                        nets[rng.below(5) as usize]
                    } else {
                        nets[0]
                    };
                    let mut e =
                        TestEvent::new(t, user, "GetObject").from_network(net.0, net.1, net.2);
                    e.event_id = Some(format!("e{i:05}"));
                    if rng.below(30) == 0 {
                        e.outcome = Outcome::Failure;
                    }
                    e
                })
                .collect();
            let mut events = events;
            events.sort_by_key(|e| e.timestamp_ms);
            let expected = naive(&events, 3 * DAY_MS, 2 * DAY_MS);
            alerts += expected.len();
            let got: Vec<(i64, String)> =
                Harness::<UnusualAsn>::new(r#"{"history_days":3,"learning_days":2}"#)
                    .expect("config")
                    .batch(64)
                    .run(&events)
                    .into_iter()
                    .map(|a| {
                        (
                            a.timestamp_ms,
                            a.document["event.id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        )
                    })
                    .collect();
            assert_eq!(got, expected, "seed {seed}");
        }
        assert!(alerts > 20, "the streams exercise the alert path: {alerts}");
    }
}
