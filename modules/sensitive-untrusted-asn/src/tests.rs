//! The rule at every boundary of the spec.

use serde_json::Value;
use trailguard_rule_sdk::testing::{Harness, TestAlert, TestEvent as Ev};
use trailguard_rule_sdk::{Event, Outcome, Rule};

use crate::SensitiveUntrustedAsn;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-04-22T10:00:00Z, an evaluation hour.
const T: i64 = 1_776_852_000_000;

const AMAZON: &str = "Amazon.com, Inc.";
const ISP: &str = "Comcast Cable Communications, LLC";

/// A successful call by role `ci-deploy` from `org` (no AS number).
fn ev(t: i64, action: &str, org: &str) -> Ev {
    Ev {
        source_ip: Some("203.0.113.9".into()),
        source_as_organization: Some(org.into()),
        ..Ev::new(t, "ci-deploy", action)
    }
}

/// `n` trusted calls spread over the day before `T - 2h`.
fn trusted(n: usize) -> Vec<Ev> {
    (0..n as i64)
        .map(|i| ev(T - 2 * HOUR - DAY + i * 60_000, "DescribeInstances", AMAZON))
        .collect()
}

/// The canonical attack: 198 trusted calls, then two sensitive calls from an
/// ISP 30 minutes before T. Ratio 2/200 = 0.01 exactly.
fn attack() -> Vec<Ev> {
    let mut events = trusted(198);
    events.push(ev(T - HOUR / 2, "GetCallerIdentity", ISP));
    events.push(ev(T - HOUR / 2 + 1000, "ListBuckets", ISP));
    events
}

fn run_with(config: &str, events: &[Ev]) -> Vec<(i64, Value)> {
    Harness::<SensitiveUntrustedAsn>::new(config)
        .expect("valid config")
        .run(events)
        .into_iter()
        .map(
            |TestAlert {
                 timestamp_ms,
                 document,
                 ..
             }| (timestamp_ms, document),
        )
        .collect()
}

fn run(events: &[Ev]) -> Vec<(i64, Value)> {
    run_with("", events)
}

fn hours(alerts: &[(i64, Value)]) -> Vec<i64> {
    alerts.iter().map(|(t, _)| *t).collect()
}

#[test]
fn canonical_attack_alerts_once_at_the_next_hour() {
    let alerts = run(&attack());
    assert_eq!(hours(&alerts), vec![T]);
    let doc = &alerts[0].1;
    assert_eq!(doc["user.name"], "ci-deploy");
    assert_eq!(doc["aws.cloudtrail.user_identity.type"], "AssumedRole");
    assert_eq!(doc["Esql.total_events_all_asns"], 200);
    assert_eq!(doc["Esql.trusted_cloud_event_count"], 198);
    assert_eq!(doc["Esql.untrusted_event_count"], 2);
    assert_eq!(doc["Esql.untrusted_suspicious_count"], 2);
    assert_eq!(doc["Esql.rare_asn_ratio"], 0.01);
    assert_eq!(doc["Esql.count_distinct_asns"], 2);
    assert_eq!(doc["Esql.src_asn_values"], serde_json::json!([AMAZON, ISP]));
    assert_eq!(
        doc["Esql.untrusted_suspicious_actions"],
        serde_json::json!(["GetCallerIdentity", "ListBuckets"])
    );
    assert_eq!(doc["Esql.unique_action_from_untrusted_asn"], 2);
    assert_eq!(doc["Esql.has_trusted_cloud_asn"], true);
    assert_eq!(doc["Esql.most_recent_low_asn_day"], "2026-04-22T09:30:01Z");
    let listed = doc["trailguard.untrusted_events"].as_array().expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["event.action"], "ListBuckets");
    assert_eq!(doc["trailguard.untrusted_events_truncated"], false);
}

#[test]
fn ratio_just_above_one_percent_does_not_alert() {
    let mut events = attack();
    events.remove(0); // 197 trusted + 2 untrusted: 2/199 > 0.01
    assert!(run(&events).is_empty());
}

#[test]
fn one_distinct_sensitive_action_is_not_enough() {
    let mut events = attack();
    let last = events.len() - 1;
    events[last].event_action = Some("GetCallerIdentity".into());
    assert!(run(&events).is_empty());
}

#[test]
fn non_sensitive_untrusted_action_does_not_count() {
    let mut events = attack();
    let last = events.len() - 1;
    events[last].event_action = Some("DescribeInstances".into());
    assert!(run(&events).is_empty());
}

#[test]
fn five_organizations_alert_six_do_not() {
    let mut events = attack();
    // Three more trusted organizations: 5 distinct with the ISP.
    events[0].source_as_organization = Some("Google LLC".into());
    events[1].source_as_organization = Some("Microsoft Corporation".into());
    events[2].source_as_organization = Some("MongoDB, Inc.".into());
    let alerts = run(&events);
    assert_eq!(hours(&alerts), vec![T]);
    assert_eq!(alerts[0].1["Esql.count_distinct_asns"], 5);
    // A sixth, still trusted by prefix.
    events[3].source_as_organization = Some("Amazon Data Services NoVa".into());
    assert!(run(&events).is_empty());
}

#[test]
fn newest_untrusted_exactly_one_hour_before_t_still_alerts() {
    let mut events = trusted(198);
    events.push(ev(T - 2 * HOUR + 1, "GetCallerIdentity", ISP));
    events.push(ev(T - HOUR, "ListBuckets", ISP));
    // At T - 1h (latest = T - 1h >= T - 2h) and at T (latest = T - 1h >= T - 1h).
    assert_eq!(hours(&run(&events)), vec![T - HOUR, T]);

    let last = events.len() - 1;
    events[last].timestamp_ms = T - HOUR - 1;
    assert_eq!(hours(&run(&events)), vec![T - HOUR]);
}

#[test]
fn window_includes_exactly_t_minus_7_days_and_exactly_t() {
    let mut events = trusted(197);
    events.push(ev(T - 7 * DAY, "DescribeInstances", AMAZON));
    events.push(ev(T - HOUR / 2, "GetCallerIdentity", ISP));
    events.push(ev(T, "ListBuckets", ISP));
    // Window of T holds both boundary events: 198 trusted, 200 total.
    let alerts = run(&events);
    assert_eq!(hours(&alerts)[0], T);
    assert_eq!(alerts[0].1["Esql.total_events_all_asns"], 200);

    // One millisecond older and the trusted event falls out: 2/199 > 1%.
    let boundary = events.len() - 3;
    events[boundary].timestamp_ms = T - 7 * DAY - 1;
    assert!(!hours(&run(&events)).contains(&T));
}

#[test]
fn event_just_after_t_belongs_to_the_next_evaluation() {
    let mut events = attack();
    let last = events.len() - 1;
    events[last].timestamp_ms = T + 1;
    assert_eq!(hours(&run(&events)), vec![T + HOUR]);
}

#[test]
fn failed_calls_are_ignored() {
    let mut events = attack();
    let last = events.len() - 1;
    events[last].outcome = Outcome::Failure;
    assert!(run(&events).is_empty());
    events[last].outcome = Outcome::Unknown;
    assert!(run(&events).is_empty());
}

#[test]
fn amazon_prefix_is_case_sensitive_by_default() {
    let mut events = attack();
    for e in events
        .iter_mut()
        .filter(|e| e.source_as_organization.as_deref() == Some(AMAZON))
    {
        e.source_as_organization = Some("AMAZON-02".into());
        e.source_as_number = Some(16509);
    }
    assert!(run(&events).is_empty());
    // The improved preset trusts by AS number.
    assert_eq!(
        hours(&run_with(r#"{"preset":"improved"}"#, &events)),
        vec![T]
    );
}

#[test]
fn events_without_organization_or_user_are_not_counted() {
    let mut events = attack();
    events[0].source_as_organization = None;
    assert!(run(&events).is_empty(), "197 trusted + 2 untrusted");
    let mut events = attack();
    events[0].user_name = None;
    assert!(run(&events).is_empty());
}

#[test]
fn groups_by_user_name_and_identity_type() {
    // Same role name, another identity type: a different group, so each
    // group lacks something.
    let mut events = attack();
    let last = events.len() - 1;
    events[last].identity_type = Some("IAMUser".into());
    assert!(run(&events).is_empty());
    // A missing identity type is a group of its own.
    events[last].identity_type = None;
    assert!(run(&events).is_empty());
    // All present under one key: one alert.
    for e in &mut events {
        e.identity_type = None;
    }
    let alerts = run(&events);
    assert_eq!(hours(&alerts), vec![T]);
    assert_eq!(
        alerts[0].1["aws.cloudtrail.user_identity.type"],
        Value::Null
    );
}

#[test]
fn every_threshold_is_configurable() {
    let mut events = attack();
    events.truncate(150); // 148 trusted... and no untrusted
    events.push(ev(T - HOUR / 2, "GetCallerIdentity", ISP));
    assert!(run(&events).is_empty());
    let lenient =
        r#"{"min_trusted_events":50,"max_untrusted_ratio":0.5,"min_distinct_sensitive_actions":1}"#;
    assert_eq!(hours(&run_with(lenient, &events)), vec![T]);
    let custom_list = r#"{"sensitive_actions":["DescribeInstances"]}"#;
    assert!(run_with(custom_list, &attack()).is_empty());
}

#[test]
fn arrival_order_does_not_matter() {
    let mut events = attack();
    events.reverse();
    assert_eq!(hours(&run(&events)), vec![T]);
}

#[test]
fn watermark_controls_when_evaluations_run() {
    let events = attack();
    let views: Vec<Event<'_>> = events.iter().map(Ev::view).collect();
    let mut rule = SensitiveUntrustedAsn::create("").expect("defaults");
    rule.process(&views);
    assert!(
        rule.advance(T).is_empty(),
        "T runs only once the watermark passes it"
    );
    assert_eq!(rule.advance(T + 1).len(), 1);
    assert!(rule.advance(i64::MAX).is_empty(), "an evaluation runs once");
}

#[test]
fn snapshot_and_restore_carry_the_window() {
    let events = attack();
    let views: Vec<Event<'_>> = events.iter().map(Ev::view).collect();
    let (first, second) = views.split_at(100);
    let mut before = SensitiveUntrustedAsn::create("").expect("defaults");
    before.process(first);
    let state = before.snapshot();
    let mut after = SensitiveUntrustedAsn::create("").expect("defaults");
    after.restore(&state).expect("restores");
    after.process(second);
    let alerts = after.advance(i64::MAX);
    assert_eq!(alerts.len(), 1);
    assert!(after.restore(b"\xff\xff garbage").is_err());
}

#[test]
fn old_slots_are_swept() {
    let mut rule = SensitiveUntrustedAsn::create("").expect("defaults");
    let old: Vec<Ev> = (0..10)
        .map(|i| Ev {
            user_name: Some(format!("user-{i}")),
            ..ev(T - 30 * DAY, "DescribeInstances", AMAZON)
        })
        .collect();
    let views: Vec<Event<'_>> = old.iter().map(Ev::view).collect();
    rule.process(&views);
    assert_eq!(rule.0.identities(), 10);
    rule.advance(T);
    assert_eq!(rule.0.identities(), 0);
}

#[test]
fn untrusted_events_no_alert_can_list_are_dropped() {
    // Five days of hourly calls from a home network, then the attack: the
    // alert lists the newest three untrusted events, and only those stay.
    let config = r#"{"max_untrusted_ratio":0.5,"max_untrusted_events_in_alert":3}"#;
    let mut events = attack();
    let home: Vec<i64> = (0..120).map(|h| T - 6 * DAY + h * HOUR).collect();
    events.extend(home.iter().map(|&t| ev(t, "DescribeInstances", ISP)));
    let newest_home = *home.iter().max().expect("some");

    let mut rule = SensitiveUntrustedAsn::create(config).expect("config");
    let views: Vec<Event<'_>> = events.iter().map(Ev::view).collect();
    rule.process(&views);
    assert_eq!(rule.0.untrusted_events_held(), 122);
    let alerts = rule.advance(T + HOUR);
    assert_eq!(alerts.len(), 1);
    let document: Value = serde_json::from_str(&alerts[0].document).expect("JSON");
    let listed: Vec<&str> = document["trailguard.untrusted_events"]
        .as_array()
        .expect("listed")
        .iter()
        .filter_map(|e| e["@timestamp"].as_str())
        .collect();
    let expected: Vec<String> = [T - HOUR / 2 + 1000, T - HOUR / 2, newest_home]
        .map(trailguard_rule_sdk::format_timestamp_ms)
        .to_vec();
    assert_eq!(listed, expected);
    assert_eq!(
        rule.0.untrusted_events_held(),
        3,
        "older untrusted events can never be listed again"
    );
}

/// An independent, naive statement of the spec: every hour, every identity,
/// every event of the window scanned again. The rule must agree with it.
mod oracle {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const ORGS: [&str; 8] = [
        "Amazon.com, Inc.",
        "Amazon Data Services Ireland Ltd",
        "AMAZON-02",
        "Google LLC",
        "Microsoft Corporation",
        "MongoDB, Inc.",
        "Comcast Cable Communications, LLC",
        "Stiftung Erneuerbare Freiheit",
    ];
    const ACTIONS: [&str; 8] = [
        "GetCallerIdentity",
        "ListBuckets",
        "GetSecretValue",
        "AssumeRole",
        "DescribeInstances",
        "PutObject",
        "GetObject",
        "RunInstances",
    ];

    /// xorshift64*: deterministic streams without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn stream(seed: u64, n: usize) -> Vec<Ev> {
        let mut rng = Rng(seed);
        let users = ["ci-a", "ci-b", "bob"];
        let types = [Some("AssumedRole"), Some("IAMUser"), None];
        (0..n)
            .map(|i| {
                // Mostly trusted traffic; a few hour-aligned timestamps.
                let t = if rng.below(10) == 0 {
                    T + (rng.below(48) as i64 - 40) * HOUR
                } else {
                    T - 9 * DAY + rng.below(10 * DAY as u64) as i64
                };
                let org = if rng.below(4) == 0 {
                    ORGS[rng.below(8) as usize]
                } else {
                    ORGS[0]
                };
                let outcome = if rng.below(20) == 0 {
                    Outcome::Failure
                } else {
                    Outcome::Success
                };
                Ev {
                    event_id: Some(format!("e{i}")),
                    source_as_organization: Some(org.into()),
                    ..Ev::new(
                        t,
                        users[rng.below(3) as usize],
                        ACTIONS[rng.below(8) as usize],
                    )
                }
                .identity_type(types[rng.below(3) as usize])
                .outcome(outcome)
            })
            .collect()
    }

    /// What an alert asserts, for comparison.
    type Finding = (
        i64,
        String,
        Option<String>,
        u64,
        u64,
        u64,
        Vec<String>,
        Vec<String>,
    );

    fn naive(events: &[Ev], min_trusted: u64, max_ratio: f64) -> BTreeSet<Finding> {
        let trusted = |org: &str| {
            org.starts_with("Amazon")
                || ["Google LLC", "Microsoft Corporation", "MongoDB, Inc."].contains(&org)
        };
        let sensitive = |a: &str| crate::ELASTIC_SENSITIVE_ACTIONS.contains(&a);
        let counted: Vec<&Ev> = events
            .iter()
            .filter(|e| e.outcome == Outcome::Success)
            .collect();
        let first = counted
            .iter()
            .map(|e| e.timestamp_ms)
            .min()
            .unwrap_or(0)
            .div_euclid(HOUR)
            * HOUR;
        let last = counted
            .iter()
            .map(|e| e.timestamp_ms)
            .max()
            .unwrap_or(0)
            .div_euclid(HOUR)
            * HOUR
            + HOUR;
        let mut found = BTreeSet::new();
        let mut at = first;
        while at <= last {
            let mut groups: BTreeMap<(String, Option<String>), Vec<&Ev>> = BTreeMap::new();
            for e in counted
                .iter()
                .filter(|e| e.timestamp_ms >= at - 7 * DAY && e.timestamp_ms <= at)
            {
                let key = (
                    e.user_name.clone().unwrap_or_default(),
                    e.identity_type.clone(),
                );
                groups.entry(key).or_default().push(e);
            }
            for ((user, kind), evs) in groups {
                let total = evs.len() as u64;
                let untrusted: Vec<&&Ev> = evs
                    .iter()
                    .filter(|e| !trusted(e.source_as_organization.as_deref().unwrap_or("")))
                    .collect();
                let trusted_n = total - untrusted.len() as u64;
                let orgs: BTreeSet<String> = evs
                    .iter()
                    .filter_map(|e| e.source_as_organization.clone())
                    .collect();
                let actions: BTreeSet<String> = untrusted
                    .iter()
                    .filter_map(|e| e.event_action.clone())
                    .filter(|a| sensitive(a))
                    .collect();
                let latest = untrusted.iter().map(|e| e.timestamp_ms).max();
                let ratio = untrusted.len() as f64 / total as f64;
                if trusted_n >= min_trusted
                    && !untrusted.is_empty()
                    && ratio <= max_ratio
                    && actions.len() >= 2
                    && orgs.len() <= 5
                    && latest.is_some_and(|l| l >= at - HOUR)
                {
                    found.insert((
                        at,
                        user,
                        kind,
                        total,
                        trusted_n,
                        untrusted.len() as u64,
                        actions.into_iter().collect(),
                        orgs.into_iter().collect(),
                    ));
                }
            }
            at += HOUR;
        }
        found
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn rule(events: &[Ev], config: &str, batch: usize, lateness: i64) -> BTreeSet<Finding> {
        let alerts = Harness::<SensitiveUntrustedAsn>::new(config)
            .expect("config")
            .batch(batch)
            .lateness_ms(lateness)
            .run(events);
        let found: Vec<Finding> = alerts
            .into_iter()
            .map(|a| {
                let d = a.document;
                (
                    a.timestamp_ms,
                    d["user.name"].as_str().unwrap_or_default().to_owned(),
                    d["aws.cloudtrail.user_identity.type"]
                        .as_str()
                        .map(String::from),
                    d["Esql.total_events_all_asns"].as_u64().unwrap_or_default(),
                    d["Esql.trusted_cloud_event_count"]
                        .as_u64()
                        .unwrap_or_default(),
                    d["Esql.untrusted_event_count"].as_u64().unwrap_or_default(),
                    strings(&d["Esql.untrusted_suspicious_actions"]),
                    strings(&d["Esql.src_asn_values"]),
                )
            })
            .collect();
        let unique: BTreeSet<Finding> = found.iter().cloned().collect();
        assert_eq!(unique.len(), found.len(), "no duplicate alerts");
        unique
    }

    #[test]
    fn agrees_with_a_naive_evaluation_of_the_spec() {
        let lenient = r#"{"min_trusted_events":20,"max_untrusted_ratio":0.4}"#;
        let mut total_alerts = 0;
        for seed in 1..=12u64 {
            let mut events = stream(seed * 7919, 3000);
            let expected = naive(&events, 20, 0.4);
            total_alerts += expected.len();
            // Any arrival order, with the watermark only at the end.
            assert_eq!(
                rule(&events, lenient, 3000, 0),
                expected,
                "seed {seed}, all at once"
            );
            // In time order, batch by batch, with a 15-minute lateness.
            events.sort_by_key(|e| e.timestamp_ms);
            assert_eq!(
                rule(&events, lenient, 97, 15 * 60_000),
                expected,
                "seed {seed}, streamed"
            );
        }
        assert!(
            total_alerts > 20,
            "the streams exercise the alert path: {total_alerts}"
        );
    }
}
