use std::path::Path;

use serde_json::json;
use trailguard_rule_sdk::serde_json;
use trailguard_rule_sdk::testing::{Harness, TestEvent};

use super::*;
use crate::load::MAX_GROUPS;

/// The SigmaHQ CloudTrail rules bundled in the repository.
fn sigmahq() -> Vec<Source> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/sigma/cloud/aws/cloudtrail");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("bundled Sigma rules")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| Source {
            name: path.display().to_string(),
            text: std::fs::read_to_string(&path).expect("UTF-8 rule"),
        })
        .collect()
}

fn config(sources: &[Source]) -> String {
    serde_json::to_string(&Config {
        sources: sources.to_vec(),
    })
    .expect("JSON")
}

fn one(name: &str, text: &str) -> String {
    config(&[Source {
        name: name.into(),
        text: text.into(),
    }])
}

/// A CloudTrail record (the JSON object as AWS writes it).
fn record(fields: serde_json::Value) -> serde_json::Value {
    fields
}

/// Events as the host hands them to `config`'s pack: the fields the pack
/// declares, extracted from each record by the host's own extraction.
fn events(config: &str, records: &[serde_json::Value]) -> Vec<TestEvent> {
    let paths = SigmaPack::create(config).expect("loads").fields();
    let paths = trailguard_ingest::RecordPaths::new(paths);
    records
        .iter()
        .map(|r| {
            let values = paths.extract(&r.to_string());
            let mut event = TestEvent::new(1_000, "alice", "Anything");
            for (k, path) in paths.paths().iter().enumerate() {
                if let Some(value) = values.at(k) {
                    event.record.push((path.clone(), value.clone()));
                }
            }
            event
        })
        .collect()
}

/// Ids of the rules that fire on `records`.
fn fired(config: &str, records: &[serde_json::Value]) -> Vec<String> {
    let harness = Harness::<SigmaPack>::new(config).expect("loads");
    let rules = SigmaPack::create(config).expect("loads").rules();
    harness
        .run(&events(config, records))
        .into_iter()
        .map(|a| rules[a.rule as usize].id.clone())
        .collect()
}

const RULE: &str = r#"
title: Test rule
id: test-1
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName: 'ConsoleLogin'
        additionalEventData.MFAUsed: 'NO'
    condition: selection
level: high
tags:
    - attack.initial-access
    - attack.t1078.004
"#;

#[test]
fn the_sigmahq_rules_all_load_with_their_metadata() {
    let pack = SigmaPack::create(&config(&sigmahq())).expect("loads");
    assert_eq!(pack.warnings(), Vec::<String>::new());
    let rules = pack.rules();
    assert_eq!(rules.len(), 57);
    let fields = pack.fields();
    assert!(fields.len() <= 64, "{fields:?}");
    for needed in [
        "eventName",
        "eventSource",
        "additionalEventData.MFAUsed",
        "requestParameters.enable",
        // Named only as a `|fieldref` target.
        "requestParameters.userName",
    ] {
        assert!(fields.iter().any(|f| f == needed), "{needed}: {fields:?}");
    }
    let mfa = rules
        .iter()
        .find(|r| r.id == "77caf516-34e5-4df9-b4db-20744fea0a60")
        .expect("console login without MFA");
    assert_eq!(mfa.name, "AWS Successful Console Login Without MFA");
    assert_eq!((mfa.severity, mfa.risk_score), (Severity::Medium, 47));
    assert_eq!(mfa.mitre_techniques, ["T1078.004"]);
    assert!(mfa.tags.iter().any(|t| t == "attack.initial-access"));
    assert_eq!(mfa.author, "Thuya@Hacktilizer, Ivan Saakov");
    assert_eq!(mfa.version, "1.0.0+2025-10-21");
    assert_eq!(mfa.references.len(), 2);
}

#[test]
fn console_login_without_mfa_fires_and_its_near_misses_do_not() {
    let config = config(&sigmahq());
    let login = |mfa: serde_json::Value, result: &str| {
        record(json!({
            "eventName": "ConsoleLogin",
            "eventSource": "signin.amazonaws.com",
            "additionalEventData": {"MFAUsed": mfa},
            "responseElements": {"ConsoleLogin": result},
        }))
    };
    let mfa_rule = "77caf516-34e5-4df9-b4db-20744fea0a60".to_owned();
    assert!(fired(&config, &[login(json!("No"), "Success")]).contains(&mfa_rule));
    // Strings match ignoring case; the record's other values do not.
    assert!(!fired(&config, &[login(json!("Yes"), "Success")]).contains(&mfa_rule));
    assert!(!fired(&config, &[login(json!("NO"), "Failure")]).contains(&mfa_rule));
}

#[test]
fn a_boolean_matches_its_text_and_null_matches_absent_or_null() {
    let config = config(&sigmahq());
    let guardduty = "d2656e78-c069-4571-8220-9e0ab5913f19";
    let update = |enable: serde_json::Value, error: Option<serde_json::Value>| {
        let mut fields = json!({
            "eventSource": "guardduty.amazonaws.com",
            "eventName": "UpdateDetector",
            "requestParameters": {"enable": enable},
        });
        if let Some(error) = error {
            fields["errorCode"] = error;
        }
        record(fields)
    };
    let rules = SigmaPack::create(&config).expect("loads").rules();
    assert!(
        rules.iter().any(|r| r.id == guardduty),
        "the GuardDuty rule's id"
    );
    // `enable: 'false'` in the rule matches the JSON boolean false.
    assert!(fired(&config, &[update(json!(false), None)]).contains(&guardduty.to_owned()));
    assert!(
        fired(&config, &[update(json!(false), Some(json!(null)))]).contains(&guardduty.to_owned())
    );
    assert!(
        !fired(
            &config,
            &[update(json!(false), Some(json!("AccessDenied")))]
        )
        .contains(&guardduty.to_owned())
    );
    assert!(!fired(&config, &[update(json!(true), None)]).contains(&guardduty.to_owned()));
}

#[test]
fn an_object_is_compared_as_its_compact_json_text() {
    let config = config(&sigmahq());
    let versioning = |status: &str| {
        record(json!({
            "eventSource": "s3.amazonaws.com",
            "eventName": "PutBucketVersioning",
            "requestParameters": {"bucketName": "b", "VersioningConfiguration": {"Status": status}},
        }))
    };
    let rule = "a136ac98-b2bc-4189-a14d-f0d0388e57a7".to_owned();
    assert!(fired(&config, &[versioning("Suspended")]).contains(&rule));
    assert!(!fired(&config, &[versioning("Enabled")]).contains(&rule));
}

#[test]
fn an_array_field_matches_when_an_element_does() {
    let rule = r#"
title: Array
id: array-1
logsource: {product: aws, service: cloudtrail}
detection:
    selection:
        resources.ARN|endswith: ':secret'
        tags: 'b'
    condition: selection
"#;
    let config = one("array.yml", rule);
    let event = |tags: serde_json::Value| {
        record(json!({"tags": tags, "resources.ARN": "arn:aws:x:secret"}))
    };
    assert_eq!(fired(&config, &[event(json!(["a", "B"]))]), ["array-1"]);
    assert!(fired(&config, &[event(json!(["a", "c"]))]).is_empty());
}

#[test]
fn a_fieldref_compares_two_fields_of_the_record() {
    let config = config(&sigmahq());
    let rule = "055fb148-60f8-462d-ad16-26926ce050f1".to_owned();
    let profile = |caller: &str, user: &str| {
        record(json!({
            "eventSource": "iam.amazonaws.com",
            "eventName": "UpdateLoginProfile",
            "userIdentity": {"arn": caller},
            "requestParameters": {"userName": user},
        }))
    };
    assert!(fired(&config, &[profile("arn:aws:iam::1:user/admin", "bob")]).contains(&rule));
    assert!(!fired(&config, &[profile("bob", "bob")]).contains(&rule));
}

#[test]
fn alerts_name_their_rule_and_carry_the_fields_it_read() {
    let config = one("test.yml", RULE);
    let harness = Harness::<SigmaPack>::new(&config).expect("loads");
    let alerts = harness.run(&events(
        &config,
        &[record(json!({
            "eventName": "ConsoleLogin",
            "additionalEventData": {"MFAUsed": "NO"},
        }))],
    ));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule, 0);
    let doc = &alerts[0].document;
    assert_eq!(doc["user.name"], "alice");
    assert_eq!(
        doc["trailguard.sigma.fields"],
        json!([
            {"name": "additionalEventData.MFAUsed", "value": "NO"},
            {"name": "eventName", "value": "ConsoleLogin"},
        ])
    );
    let info = &SigmaPack::create(&config).expect("loads").rules()[0];
    assert_eq!((info.severity, info.risk_score), (Severity::High, 73));
}

#[test]
fn what_cannot_be_used_is_a_warning_with_file_and_line_and_the_rest_loads() {
    let other_source = r#"
title: Windows thing
id: win-1
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
"#;
    let broken = "title: Broken\nid: broken-1\ndetection: [\n";
    let sources = [
        ("good.yml", RULE),
        ("win.yml", other_source),
        ("broken.yml", broken),
        ("again.yml", RULE),
    ]
    .map(|(name, text)| Source {
        name: name.into(),
        text: text.into(),
    });
    let pack = SigmaPack::create(&config(&sources)).expect("loads");
    assert_eq!(
        pack.rules()
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["test-1"]
    );
    let warnings = pack.warnings();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("win.yml:3: rule \"Windows thing\" not loaded: its logsource (product windows, service security)"),
        "{warnings:#?}"
    );
    assert!(warnings[1].starts_with("broken.yml:"), "{warnings:#?}");
    assert!(
        warnings[2].contains(
            "again.yml:3: rule \"Test rule\" not loaded: a rule with id test-1 is already loaded"
        ),
        "{warnings:#?}"
    );
}

#[test]
fn a_rule_without_an_id_gets_one_from_its_file() {
    let text = RULE.replace("id: test-1\n", "");
    let pack = SigmaPack::create(&one("rules/no id.yml", &text)).expect("loads");
    assert_eq!(pack.rules()[0].id, "sigma.no_id.yml.0");
}

#[test]
fn an_empty_pack_loads_and_raises_nothing() {
    let pack = SigmaPack::create("").expect("loads");
    assert!(pack.rules().is_empty());
    assert!(pack.fields().is_empty());
}

// Correlations (docs/sigma.md "Correlation rules").

/// Failed console logins, and a brute force of 3 of them from one address
/// within 10 minutes.
const BRUTE_FORCE: &str = r#"
title: Failed console login
id: failed-login
name: failed_login
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName: ConsoleLogin
        errorMessage: Failed authentication
    condition: selection
level: low
---
title: Console brute force
id: brute-force
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - sourceIPAddress
    timespan: 10m
    condition:
        gte: 3
level: high
tags:
    - attack.credential-access
"#;

/// An event at `secs` (event time), with `id` and the record `fields`.
fn at(secs: i64, id: &str, fields: serde_json::Value) -> TestEvent {
    let mut event = TestEvent::new(secs * 1000, "alice", "Anything");
    event.event_id = Some(id.into());
    if let serde_json::Value::Object(map) = fields {
        for (path, value) in map {
            event = event.field(&path, value);
        }
    }
    event
}

fn failed_login(secs: i64, id: &str, ip: &str) -> TestEvent {
    at(
        secs,
        id,
        json!({"eventName": "ConsoleLogin", "errorMessage": "Failed authentication", "sourceIPAddress": ip}),
    )
}

/// (rule id, event id, @timestamp in seconds) of every alert of `events`
/// fed in this order, sorted.
fn alerts_of(config: &str, events: &[TestEvent]) -> Vec<(String, String, i64)> {
    let rules = SigmaPack::create(config).expect("loads").rules();
    let mut out: Vec<_> = Harness::<SigmaPack>::new(config)
        .expect("loads")
        .batch(2)
        .run(events)
        .into_iter()
        .map(|a| {
            (
                rules[a.rule as usize].id.clone(),
                a.document["event.id"].as_str().unwrap_or("").to_owned(),
                a.timestamp_ms / 1000,
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn an_event_count_fires_at_the_event_that_completes_it_in_event_time_whatever_the_arrival_order() {
    let config = one("brute.yml", BRUTE_FORCE);
    let pack = SigmaPack::create(&config).expect("loads");
    assert!(pack.warnings().is_empty(), "{:?}", pack.warnings());
    let rules = pack.rules();
    assert_eq!(rules[1].id, "brute-force");
    assert_eq!(rules[1].severity, Severity::High);
    // Three failures from one address within 10 minutes (both ends
    // included: 0 s and 600 s), two from another, and a fourth and fifth
    // from the first after the reset.
    let in_time_order = vec![
        failed_login(0, "e1", "203.0.113.9"),
        failed_login(60, "e2", "198.51.100.7"),
        failed_login(300, "e3", "203.0.113.9"),
        failed_login(400, "e4", "198.51.100.7"),
        failed_login(600, "e5", "203.0.113.9"),
        failed_login(700, "e6", "203.0.113.9"),
        failed_login(800, "e7", "203.0.113.9"),
    ];
    let expected = vec![("brute-force".to_owned(), "e5".to_owned(), 600)];
    assert_eq!(alerts_of(&config, &in_time_order), expected);
    // Delivered out of order (within the allowed lateness): the same.
    let mut shuffled = in_time_order.clone();
    shuffled.reverse();
    shuffled.swap(1, 4);
    assert_eq!(alerts_of(&config, &shuffled), expected);
    // The window is cleared after firing: e6, e7 and one more make 3.
    let mut more = in_time_order.clone();
    more.push(failed_login(900, "e8", "203.0.113.9"));
    assert_eq!(
        alerts_of(&config, &more),
        vec![
            ("brute-force".to_owned(), "e5".to_owned(), 600),
            ("brute-force".to_owned(), "e8".to_owned(), 900)
        ]
    );
    // One second beyond the window: 0 s and 601 s are not together.
    let apart = vec![
        failed_login(0, "e1", "203.0.113.9"),
        failed_login(300, "e3", "203.0.113.9"),
        failed_login(601, "e5", "203.0.113.9"),
    ];
    assert_eq!(alerts_of(&config, &apart), Vec::new());
}

#[test]
fn a_repeated_event_id_counts_once_and_an_absent_group_by_field_groups_as_null() {
    let config = one("brute.yml", BRUTE_FORCE);
    let replayed = vec![
        failed_login(0, "e1", "203.0.113.9"),
        failed_login(0, "e1", "203.0.113.9"),
        failed_login(10, "e2", "203.0.113.9"),
        failed_login(10, "e2", "203.0.113.9"),
    ];
    assert_eq!(alerts_of(&config, &replayed), Vec::new());
    let no_address = |secs, id| {
        at(
            secs,
            id,
            json!({"eventName": "ConsoleLogin", "errorMessage": "Failed authentication"}),
        )
    };
    let alerts = alerts_of(
        &config,
        &[
            no_address(0, "n1"),
            no_address(5, "n2"),
            no_address(9, "n3"),
        ],
    );
    assert_eq!(alerts, vec![("brute-force".to_owned(), "n3".to_owned(), 9)]);
}

#[test]
fn a_counted_rule_alerts_on_its_own_only_with_generate_true() {
    let events = [
        failed_login(0, "e1", "203.0.113.9"),
        failed_login(1, "e2", "203.0.113.9"),
        failed_login(2, "e3", "203.0.113.9"),
    ];
    let silent = alerts_of(&one("brute.yml", BRUTE_FORCE), &events);
    assert_eq!(silent.len(), 1);
    let generating =
        BRUTE_FORCE.replace("    timespan: 10m", "    timespan: 10m\n    generate: true");
    let loud = alerts_of(&one("brute.yml", &generating), &events);
    assert_eq!(loud.len(), 4, "{loud:?}");
    assert_eq!(loud.iter().filter(|a| a.0 == "failed-login").count(), 3);
}

#[test]
fn a_correlation_alert_carries_the_event_and_what_was_found() {
    let config = one("brute.yml", BRUTE_FORCE);
    let alerts = Harness::<SigmaPack>::new(&config).expect("loads").run(&[
        failed_login(0, "e1", "203.0.113.9"),
        failed_login(1, "e2", "203.0.113.9"),
        failed_login(2, "e3", "203.0.113.9"),
    ]);
    assert_eq!(alerts.len(), 1);
    let document = &alerts[0].document;
    assert_eq!(document["event.id"], "e3");
    assert_eq!(document["user.name"], "alice");
    assert_eq!(
        document["trailguard.sigma.correlation"],
        json!({
            "type": "event_count",
            "group": [{"name": "sourceIPAddress", "value": "203.0.113.9"}],
            "value": 3.0,
            "timespan_seconds": 600
        })
    );
}

const ENUMERATION: &str = r#"
title: Read-only discovery call
name: discovery
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName|startswith:
            - List
            - Describe
            - Get
    condition: selection
---
title: Discovery burst
id: discovery-burst
correlation:
    type: value_count
    rules:
        - discovery
    group-by:
        - userIdentity.arn
    timespan: 5m
    condition:
        field: eventName
        gte: 3
"#;

fn call(secs: i64, id: &str, arn: &str, name: &str) -> TestEvent {
    at(
        secs,
        id,
        json!({"eventName": name, "userIdentity.arn": arn}),
    )
}

#[test]
fn a_value_count_counts_distinct_values_per_group() {
    let config = one("enum.yml", ENUMERATION);
    let pack = SigmaPack::create(&config).expect("loads");
    assert!(pack.warnings().is_empty(), "{:?}", pack.warnings());
    let bob = "arn:aws:iam::123456789012:user/bob";
    let eve = "arn:aws:iam::123456789012:user/eve";
    let events = vec![
        call(0, "a", bob, "ListBuckets"),
        call(10, "b", bob, "ListBuckets"),
        call(20, "c", eve, "ListUsers"),
        call(30, "d", bob, "DescribeInstances"),
        call(40, "e", eve, "ListRoles"),
        call(45, "f", bob, "PutObject"),
        call(50, "g", bob, "GetSecretValue"),
        call(400, "h", eve, "ListPolicies"),
    ];
    assert_eq!(
        alerts_of(&config, &events),
        vec![("discovery-burst".to_owned(), "g".to_owned(), 50)]
    );
}

const CHAIN: &str = r#"
title: Access key created
name: key_created
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName: CreateAccessKey
    condition: selection
---
title: Trail stopped
name: trail_stopped
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName: StopLogging
    condition: selection
---
title: Key then blind
id: key-then-blind
correlation:
    type: temporal_ordered
    rules:
        - key_created
        - trail_stopped
    group-by:
        - userIdentity.arn
    timespan: 1h
---
title: Key and blind
id: key-and-blind
correlation:
    type: temporal
    rules:
        - key_created
        - trail_stopped
    group-by:
        - userIdentity.arn
    timespan: 1h
"#;

#[test]
fn temporal_needs_every_rule_within_the_window_and_temporal_ordered_their_order() {
    let config = one("chain.yml", CHAIN);
    let pack = SigmaPack::create(&config).expect("loads");
    assert!(pack.warnings().is_empty(), "{:?}", pack.warnings());
    let arn = "arn:aws:iam::123456789012:user/bob";
    let in_order = vec![
        call(0, "k", arn, "CreateAccessKey"),
        call(600, "s", arn, "StopLogging"),
    ];
    assert_eq!(
        alerts_of(&config, &in_order),
        vec![
            ("key-and-blind".to_owned(), "s".to_owned(), 600),
            ("key-then-blind".to_owned(), "s".to_owned(), 600),
        ]
    );
    let reversed = vec![
        call(0, "s", arn, "StopLogging"),
        call(600, "k", arn, "CreateAccessKey"),
    ];
    assert_eq!(
        alerts_of(&config, &reversed),
        vec![("key-and-blind".to_owned(), "k".to_owned(), 600)]
    );
    let too_far = vec![
        call(0, "k", arn, "CreateAccessKey"),
        call(3601, "s", arn, "StopLogging"),
    ];
    assert_eq!(alerts_of(&config, &too_far), Vec::new());
}

/// Cut `events` after each one: a snapshot of the first part, `convert`ed,
/// restored into a fresh pack that takes the rest gives the alerts of
/// `straight` (the run without a cut).
fn restores_at_every_cut(
    harness: impl Fn() -> Harness<SigmaPack>,
    events: &[TestEvent],
    straight: &[trailguard_rule_sdk::testing::TestAlert],
    convert: impl Fn(Vec<u8>) -> Vec<u8>,
) {
    for cut in 1..events.len() {
        let mut first = harness();
        let mut alerts = first.push(&events[..cut]);
        let saved = convert(first.rule().snapshot());
        let mut second = harness();
        second.rule().restore(&saved).expect("restores");
        alerts.extend(second.push(&events[cut..]));
        alerts.extend(second.finish());
        assert_eq!(alerts, straight, "cut after {cut} events");
    }
}

#[test]
fn correlation_state_survives_a_snapshot_and_restore() {
    let config = one("brute.yml", BRUTE_FORCE);
    let events: Vec<TestEvent> = (0..12)
        .map(|i| failed_login(i * 100, &format!("e{i}"), "203.0.113.9"))
        .collect();
    // 50 s of lateness: part of the state is held matches, part windows.
    let harness = || {
        Harness::<SigmaPack>::new(&config)
            .expect("loads")
            .batch(1)
            .lateness_ms(50_000)
    };
    let straight = harness().run(&events);
    assert_eq!(straight.len(), 4);
    restores_at_every_cut(harness, &events, &straight, |saved| saved);
    // A snapshot of state format 1 (before windows of too few events)
    // restores, and the correlations go on as without the cut.
    restores_at_every_cut(harness, &events, &straight, |saved| {
        correlate::as_format_1(&saved)
    });
    // A newer format is refused by name.
    let newer = trailguard_rule_sdk::snapshot::encode(PACK_ID, 99, &0u8);
    let err = SigmaPack::create(&config)
        .expect("loads")
        .restore(&newer)
        .expect_err("a newer format");
    assert!(err.contains("state format 99"), "{err}");
    // A snapshot of the stateless pack before correlations restores to
    // nothing; garbage is refused.
    let mut pack = SigmaPack::create(&config).expect("loads");
    assert!(pack.restore(&[]).is_ok());
    assert!(pack.restore(b"not a snapshot").is_err());
}

/// Too few logins from one address within 10 minutes of its first: a
/// heartbeat that went quiet.
const QUIET: &str = r#"
title: Console login
id: login
name: login
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName: ConsoleLogin
    condition: selection
level: low
---
title: Too few logins
id: too-few
correlation:
    type: event_count
    rules:
        - login
    group-by:
        - sourceIPAddress
    timespan: 10m
    condition:
        lt: 3
level: medium
"#;

fn login(secs: i64, id: &str, ip: &str) -> TestEvent {
    at(
        secs,
        id,
        json!({"eventName": "ConsoleLogin", "sourceIPAddress": ip}),
    )
}

/// Any other call: it moves event time on.
fn other(secs: i64, id: &str) -> TestEvent {
    at(secs, id, json!({"eventName": "ListBuckets"}))
}

#[test]
fn too_few_events_are_decided_when_the_window_closes_in_event_time() {
    let config = one("quiet.yml", QUIET);
    let pack = SigmaPack::create(&config).expect("loads");
    assert!(pack.warnings().is_empty(), "{:?}", pack.warnings());
    // 203.0.113.9: 2 logins in [0 s, 600 s] (the window its first opens)
    // -> too few, decided at 600 s once event time is past it. 198.51.100.7:
    // 3 logins, the third at exactly the window's end (both ends included)
    // -> enough. 192.0.2.1: 1 login at 1,000 s whose window (to 1,600 s)
    // event time never passes -> undecided, no alert.
    let in_time_order = vec![
        login(0, "a1", "203.0.113.9"),
        login(10, "b1", "198.51.100.7"),
        login(300, "a2", "203.0.113.9"),
        login(400, "b2", "198.51.100.7"),
        login(610, "b3", "198.51.100.7"),
        login(1000, "c1", "192.0.2.1"),
        other(1500, "x1"),
    ];
    let expected = vec![("too-few".to_owned(), "a1".to_owned(), 600)];
    assert_eq!(alerts_of(&config, &in_time_order), expected);
    // Delivered out of order (within the 15 minutes of lateness): the same.
    let order = [4, 2, 3, 0, 1, 5, 6];
    let shuffled: Vec<TestEvent> = order.iter().map(|&i| in_time_order[i].clone()).collect();
    assert_eq!(alerts_of(&config, &shuffled), expected);
    // Once event time passes 1,600 s, 192.0.2.1's window is decided too;
    // a login after a window closed opens a new one.
    let mut later = in_time_order.clone();
    later.push(login(1700, "a3", "203.0.113.9"));
    later.push(other(2400, "x2"));
    assert_eq!(
        alerts_of(&config, &later),
        vec![
            ("too-few".to_owned(), "a1".to_owned(), 600),
            ("too-few".to_owned(), "a3".to_owned(), 2300),
            ("too-few".to_owned(), "c1".to_owned(), 1600),
        ]
    );
    // The alert says what was found.
    let alerts = Harness::<SigmaPack>::new(&config)
        .expect("loads")
        .run(&in_time_order);
    let found = &alerts[0].document["trailguard.sigma.correlation"];
    assert_eq!(found["type"], "event_count");
    assert_eq!(found["value"], 2);
    assert_eq!(found["timespan_seconds"], 600);
    assert_eq!(
        found["group"],
        json!([{"name": "sourceIPAddress", "value": "203.0.113.9"}])
    );
}

#[test]
fn too_few_distinct_values_count_texts_and_not_absent_ones() {
    let config = one(
        "quiet.yml",
        &QUIET
            .replace("type: event_count", "type: value_count")
            .replace(
                "    condition:\n        lt: 3",
                "    condition:\n        field: userAgent\n        lte: 1",
            ),
    );
    let pack = SigmaPack::create(&config).expect("loads");
    assert!(pack.warnings().is_empty(), "{:?}", pack.warnings());
    let with_agent = |secs, id: &str, ip: &str, agent: Option<&str>| {
        let mut fields = json!({"eventName": "ConsoleLogin", "sourceIPAddress": ip});
        if let Some(agent) = agent {
            fields["userAgent"] = json!(agent);
        }
        at(secs, id, fields)
    };
    let events = vec![
        // One agent, seen twice, and an absent one: 1 distinct -> too few.
        with_agent(0, "a1", "203.0.113.9", Some("curl")),
        with_agent(5, "a2", "203.0.113.9", Some("curl")),
        with_agent(9, "a3", "203.0.113.9", None),
        // Two agents -> enough.
        with_agent(0, "b1", "198.51.100.7", Some("curl")),
        with_agent(7, "b2", "198.51.100.7", Some("Mozilla")),
        other(2000, "x1"),
    ];
    let alerts = Harness::<SigmaPack>::new(&config)
        .expect("loads")
        .run(&events);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].document["event.id"], "a1");
    assert_eq!(
        alerts[0].document["trailguard.sigma.correlation"]["value"],
        1
    );
}

#[test]
fn too_few_windows_survive_a_snapshot_and_restore() {
    let config = one("quiet.yml", QUIET);
    let events: Vec<TestEvent> = (0..10)
        .map(|i| login(i * 400, &format!("e{i}"), &format!("203.0.113.{}", i % 3)))
        .chain([other(6000, "x")])
        .collect();
    let harness = || {
        Harness::<SigmaPack>::new(&config)
            .expect("loads")
            .batch(1)
            .lateness_ms(50_000)
    };
    let straight = harness().run(&events);
    assert!(!straight.is_empty());
    restores_at_every_cut(harness, &events, &straight, |saved| saved);
}

/// An attacker floods a too-few correlation with groups (one login from
/// each of many addresses) to make the pack's memory grow: past
/// `MAX_GROUPS` windows, a new group opens none, so the flood's surplus is
/// never decided while the windows already open still are; the snapshot
/// stops growing with it.
#[test]
fn a_flood_of_groups_opens_no_more_windows_than_the_cap() {
    let config = one("quiet.yml", QUIET);
    let address = |i: usize| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
    let flood = |n: usize| -> Vec<TestEvent> {
        (0..n)
            // Matches of one time are counted in event id order.
            .map(|i| login(0, &format!("e{i:06}"), &address(i)))
            .chain([other(700, "x")])
            .collect()
    };
    let surplus = 1_000;
    let alerts = Harness::<SigmaPack>::new(&config)
        .expect("loads")
        .batch(1024)
        .run(&flood(MAX_GROUPS + surplus));
    assert_eq!(
        alerts.len(),
        MAX_GROUPS,
        "one alert per window, none past the cap"
    );
    let fired: std::collections::HashSet<&str> = alerts
        .iter()
        .filter_map(|a| a.document["event.id"].as_str())
        .collect();
    let id = |i: usize| format!("e{i:06}");
    assert!(fired.contains(id(0).as_str()) && fired.contains(id(MAX_GROUPS - 1).as_str()));
    assert!(!fired.contains(id(MAX_GROUPS).as_str()));

    // The windows still open (event time past the logins, before their
    // windows' end): the snapshot with the surplus is no larger than at
    // the cap. (Logins without an eventID here: the ids of counted matches
    // are remembered for the longest timespan, bounded in event time, not
    // in number.)
    let snapshot_of = |n: usize| {
        let mut harness = Harness::<SigmaPack>::new(&config)
            .expect("loads")
            .lateness_ms(0);
        let mut events: Vec<TestEvent> = (0..n).map(|i| login(0, "", &address(i))).collect();
        events.push(other(1, "x"));
        assert!(harness.push(&events).is_empty());
        harness.rule().snapshot().len()
    };
    assert_eq!(snapshot_of(MAX_GROUPS + surplus), snapshot_of(MAX_GROUPS));
}

#[test]
fn a_correlation_cannot_count_the_alerts_of_one_of_too_few_events() {
    let chained = format!(
        "{QUIET}---\ntitle: Quiet twice\nid: quiet-twice\ncorrelation:\n    type: event_count\n    rules: [too-few]\n    timespan: 1h\n    condition:\n        gte: 2\n"
    );
    let pack = SigmaPack::create(&one("quiet.yml", &chained)).expect("loads");
    let warnings = pack.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("a correlation of too few events, whose alerts no correlation counts"),
        "{warnings:?}"
    );
    assert_eq!(
        pack.rules().len(),
        2,
        "the rule and the first correlation load"
    );
}

#[test]
fn correlations_that_cannot_be_run_are_warnings_and_the_rest_load() {
    let base = r#"
title: Failed console login
name: failed_login
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName: ConsoleLogin
    condition: selection
"#;
    let correlation =
        |body: &str| format!("{base}---\ntitle: Odd\nid: odd\ncorrelation:\n{body}\n");
    let cases = [
        (
            "    type: temporal\n    rules: [failed_login]\n    timespan: 10m\n    condition:\n        lt: 3",
            "apply to event_count and value_count only",
        ),
        (
            "    type: event_count\n    rules: [nobody]\n    timespan: 10m\n    condition:\n        gte: 3",
            "refers to rule \"nobody\", which is not loaded",
        ),
        (
            "    type: event_count\n    rules: [failed_login]\n    timespan: 90d\n    condition:\n        gte: 3",
            "not between 1 second and 30 days",
        ),
        (
            "    type: value_sum\n    rules: [failed_login]\n    timespan: 10m\n    condition:\n        field: x\n        gte: 3",
            "not one of Sigma's",
        ),
    ];
    for (body, why) in cases {
        let pack = SigmaPack::create(&one("odd.yml", &correlation(body))).expect("loads");
        let warnings = pack.warnings();
        assert_eq!(warnings.len(), 1, "{body}: {warnings:?}");
        assert!(
            warnings[0].starts_with("odd.yml:") && warnings[0].contains(why),
            "{body}: {warnings:?}"
        );
        assert_eq!(pack.rules().len(), 1, "the base rule loads");
    }
}

#[test]
fn a_snapshot_restores_into_a_pack_whose_rule_files_changed() {
    let before = one("brute.yml", BRUTE_FORCE);
    // Another file first: every index moves; the threshold stays.
    let after = config(&[
        Source {
            name: "a-first.yml".into(),
            text: ENUMERATION.into(),
        },
        Source {
            name: "brute.yml".into(),
            text: BRUTE_FORCE.into(),
        },
    ]);
    let events = [
        failed_login(0, "e1", "203.0.113.9"),
        failed_login(100, "e2", "203.0.113.9"),
        failed_login(200, "e3", "203.0.113.9"),
    ];
    let mut first = Harness::<SigmaPack>::new(&before)
        .expect("loads")
        .lateness_ms(50_000);
    assert!(first.push(&events[..2]).is_empty());
    let saved = first.rule().snapshot();
    let mut second = Harness::<SigmaPack>::new(&after)
        .expect("loads")
        .lateness_ms(50_000);
    second.rule().restore(&saved).expect("restores");
    let mut alerts = second.push(&events[2..]);
    alerts.extend(second.finish());
    let rules = SigmaPack::create(&after).expect("loads").rules();
    let fired: Vec<&str> = alerts
        .iter()
        .map(|a| rules[a.rule as usize].id.as_str())
        .collect();
    assert_eq!(fired, ["brute-force"]);
    // A pack without the correlation drops its state: nothing fires.
    let mut third = Harness::<SigmaPack>::new(&one("e.yml", ENUMERATION)).expect("loads");
    third.rule().restore(&saved).expect("restores");
    let mut alerts = third.push(&events[2..]);
    alerts.extend(third.finish());
    assert!(alerts.is_empty(), "{alerts:?}");
}

// The specification's edge cases (../shared/specs/sigma.md), one rule each:
// (detection items, record, whether the rule must match).

/// A rule whose selection is `items` (YAML lines under `selection:`).
fn selection_rule(items: &str) -> String {
    format!(
        "title: Edge\nid: edge\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n    selection:\n{items}\n    condition: selection\n"
    )
}

fn matches(items: &str, record: serde_json::Value) -> bool {
    let config = one("edge.yml", &selection_rule(items));
    let pack = SigmaPack::create(&config).expect("loads");
    assert!(pack.warnings().is_empty(), "{items}: {:?}", pack.warnings());
    !fired(&config, &[record]).is_empty()
}

#[test]
fn strings_match_whole_ignoring_case_unless_cased() {
    let call = |name: &str| record(json!({ "eventName": name }));
    assert!(matches(
        "        eventName: consolelogin",
        call("ConsoleLogin")
    ));
    assert!(!matches("        eventName: Console", call("ConsoleLogin")));
    assert!(!matches(
        "        eventName|cased: consolelogin",
        call("ConsoleLogin")
    ));
    assert!(matches(
        "        eventName|cased: ConsoleLogin",
        call("ConsoleLogin")
    ));
    assert!(matches(
        "        eventName|contains: SOLELOG",
        call("ConsoleLogin")
    ));
    assert!(!matches(
        "        eventName|contains|cased: SOLELOG",
        call("ConsoleLogin")
    ));
    assert!(matches(
        "        eventName|startswith: console",
        call("ConsoleLogin")
    ));
    assert!(matches(
        "        eventName|endswith: LOGIN",
        call("ConsoleLogin")
    ));
}

#[test]
fn wildcards_match_and_backslash_escapes_them() {
    let agent = |text: &str| record(json!({ "userAgent": text }));
    assert!(matches(
        "        userAgent: 'aws-cli/*'",
        agent("aws-cli/2.15.30")
    ));
    assert!(matches(
        "        userAgent: 'aws-cli/?.15*'",
        agent("aws-cli/2.15.30")
    ));
    assert!(!matches(
        "        userAgent: 'aws-cli/?.15'",
        agent("aws-cli/2.15.30")
    ));
    // An escaped star is a star.
    assert!(matches("        userAgent: 'a\\*b'", agent("a*b")));
    assert!(!matches("        userAgent: 'a\\*b'", agent("axxb")));
    assert!(matches("        userAgent: 'a\\?b'", agent("a?b")));
    assert!(!matches("        userAgent: 'a\\?b'", agent("axb")));
    // A doubled backslash is one backslash, and the star after it a wildcard.
    assert!(matches(
        "        userAgent: 'C:\\\\*'",
        agent("C:\\Windows")
    ));
}

#[test]
fn numbers_and_booleans_compare_by_their_text() {
    let max =
        |value: serde_json::Value| record(json!({ "requestParameters": { "maxResults": value } }));
    assert!(matches(
        "        requestParameters.maxResults: 50",
        max(json!(50))
    ));
    assert!(matches(
        "        requestParameters.maxResults: '50'",
        max(json!(50))
    ));
    assert!(matches(
        "        requestParameters.maxResults: 50",
        max(json!("50"))
    ));
    assert!(!matches(
        "        requestParameters.maxResults: 5",
        max(json!(50))
    ));
    assert!(matches(
        "        requestParameters.maxResults|gte: 40",
        max(json!(50))
    ));
    assert!(!matches(
        "        requestParameters.maxResults|lt: 40",
        max(json!(50))
    ));
    let flag = |value: serde_json::Value| record(json!({ "readOnly": value }));
    assert!(matches("        readOnly: true", flag(json!(true))));
    assert!(matches("        readOnly: 'true'", flag(json!(true))));
    assert!(matches("        readOnly: 'TRUE'", flag(json!(true))));
    assert!(!matches("        readOnly: false", flag(json!(true))));
}

#[test]
fn regular_expressions_search_case_sensitively_with_flags() {
    let agent = |text: &str| record(json!({ "userAgent": text }));
    assert!(matches(
        "        userAgent|re: 'cli/2\\.1[0-9]'",
        agent("aws-cli/2.15.30")
    ));
    assert!(!matches(
        "        userAgent|re: 'CLI/2'",
        agent("aws-cli/2.15.30")
    ));
    assert!(matches(
        "        userAgent|re|i: 'CLI/2'",
        agent("aws-cli/2.15.30")
    ));
    assert!(!matches("        userAgent|re: '^b$'", agent("a\nb")));
    assert!(matches("        userAgent|re|m: '^b$'", agent("a\nb")));
    assert!(!matches("        userAgent|re: 'a.b'", agent("a\nb")));
    assert!(matches("        userAgent|re|s: 'a.b'", agent("a\nb")));
}

#[test]
fn null_matches_absent_or_null_and_exists_tells_them_apart() {
    let with = |value: serde_json::Value| record(json!({ "eventName": "X", "errorCode": value }));
    let without = record(json!({ "eventName": "X" }));
    assert!(matches("        errorCode: null", without.clone()));
    assert!(matches("        errorCode: null", with(json!(null))));
    assert!(!matches(
        "        errorCode: null",
        with(json!("AccessDenied"))
    ));
    assert!(matches(
        "        errorCode|exists: true",
        with(json!("AccessDenied"))
    ));
    assert!(!matches("        errorCode|exists: true", without.clone()));
    assert!(matches("        errorCode|exists: false", without));
}

#[test]
fn cidr_all_and_base64_modifiers() {
    let from = |ip: &str| {
        record(
            json!({ "sourceIPAddress": ip, "requestParameters": { "userData": "ZWNobyBoZWxsbw==" } }),
        )
    };
    assert!(matches(
        "        sourceIPAddress|cidr: 203.0.113.0/24",
        from("203.0.113.9")
    ));
    assert!(!matches(
        "        sourceIPAddress|cidr: 203.0.113.0/24",
        from("198.51.100.7")
    ));
    assert!(matches(
        "        sourceIPAddress|contains|all:\n            - '203'\n            - '113'",
        from("203.0.113.9")
    ));
    assert!(!matches(
        "        sourceIPAddress|contains|all:\n            - '203'\n            - '114'",
        from("203.0.113.9")
    ));
    // `echo hello`, base64-encoded as the record holds it.
    assert!(matches(
        "        requestParameters.userData|base64: 'echo hello'",
        from("203.0.113.9")
    ));
}

#[test]
fn a_keyword_searches_every_string_and_scalar_of_the_record() {
    let rule = |keywords: &str| {
        one(
            "kw.yml",
            &format!(
                "title: Keywords\nid: kw-1\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n    keywords:\n{keywords}\n    condition: keywords\n"
            ),
        )
    };
    let config = rule("        - '*mimikatz*'\n        - 4444");
    let pack = SigmaPack::create(&config).expect("loads");
    assert!(pack.warnings().is_empty(), "{:?}", pack.warnings());
    assert!(pack.fields().contains(&"requestParameters".to_owned()));
    let cases = [
        // Deep inside an object, any case.
        (
            json!({"requestParameters": {"commands": {"x": "run MimiKatz.exe"}}}),
            true,
        ),
        // In an array inside an object.
        (
            json!({"requestParameters": {"args": ["-a", "mimikatz"]}}),
            true,
        ),
        // A number, by its text.
        (json!({"requestParameters": {"port": 4444}}), true),
        // A top-level string.
        (json!({"userAgent": "mimikatz/2.0"}), true),
        // A key is not a value.
        (json!({"requestParameters": {"mimikatz": "no"}}), false),
        // A keyword is found inside a value (Sigma's full-text search).
        (json!({"requestParameters": {"port": 44445}}), true),
        (json!({"requestParameters": {"port": 4443}}), false),
        // A key that is not one of CloudTrail's top-level keys is not searched.
        (json!({"somethingElse": "mimikatz"}), false),
    ];
    for (record, expected) in cases {
        assert_eq!(
            !fired(&config, std::slice::from_ref(&record)).is_empty(),
            expected,
            "{record}"
        );
    }
}

// Hostile rule files: bounded by the pack's own limits (and, as a
// component, by the host's CPU and memory limits).

#[test]
fn a_catastrophic_regex_runs_in_linear_time_and_an_enormous_one_is_refused() {
    // Backtracking engines take exponential time on this; rsigma's regex
    // crate does not backtrack.
    let config = one(
        "redos.yml",
        &selection_rule("        userAgent|re: '^(a+)+$'"),
    );
    let agent = format!("{}b", "a".repeat(60_000));
    assert!(fired(&config, &[record(json!({ "userAgent": agent }))]).is_empty());
    // A pattern that compiles to more than the regex crate's size limit is
    // a warning, and the other rules load.
    let huge = selection_rule("        userAgent|re: '((((a{1000}){1000}){1000}){1000})'");
    let pack = SigmaPack::create(&config_of(&[
        ("huge.yml", huge.as_str()),
        ("good.yml", RULE),
    ]))
    .expect("loads");
    assert_eq!(pack.rules().len(), 1);
    let warnings = pack.warnings();
    assert!(
        warnings.len() == 1
            && warnings[0].starts_with("huge.yml:")
            && warnings[0].contains("does not compile"),
        "{warnings:?}"
    );
}

fn config_of(files: &[(&str, &str)]) -> String {
    config(
        &files
            .iter()
            .map(|(name, text)| Source {
                name: (*name).into(),
                text: (*text).into(),
            })
            .collect::<Vec<_>>(),
    )
}

#[test]
fn rules_past_ten_thousand_are_left_out_with_a_warning() {
    let mut text = String::new();
    for i in 0..10_005 {
        if i > 0 {
            text.push_str("---\n");
        }
        text.push_str(&format!(
            "title: R{i}\nid: r-{i}\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n    s:\n        eventName: N{i}\n    condition: s\n"
        ));
    }
    let pack = SigmaPack::create(&one("many.yml", &text)).expect("loads");
    assert_eq!(pack.rules().len(), 10_000);
    let warnings = pack.warnings();
    assert_eq!(
        warnings.len(),
        5,
        "{:?}",
        &warnings[..warnings.len().min(3)]
    );
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("over the limit of 10000 rules"))
    );
}
