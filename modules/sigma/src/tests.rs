use std::path::Path;

use serde_json::json;
use trailguard_rule_sdk::serde_json;
use trailguard_rule_sdk::testing::{Harness, TestEvent};

use super::*;

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
    let keywords = r#"title: Keywords
id: kw-1
logsource: {product: aws, service: cloudtrail}
detection:
    keywords:
        - 'evil'
    condition: keywords
"#;
    let broken = "title: Broken\nid: broken-1\ndetection: [\n";
    let sources = [
        ("good.yml", RULE),
        ("win.yml", other_source),
        ("kw.yml", keywords),
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
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("win.yml:3: rule \"Windows thing\" not loaded: its logsource (product windows, service security)"),
        "{warnings:#?}"
    );
    assert!(
        warnings[1].starts_with("kw.yml:2: rule \"Keywords\" not loaded: keyword detections"),
        "{warnings:#?}"
    );
    assert!(warnings[2].starts_with("broken.yml:"), "{warnings:#?}");
    assert!(
        warnings[3].contains(
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
