//! Fields of the raw record reach a component rule with exactly the values
//! the record holds, in every input shape, checked against an independent
//! reading of the same JSON. Needs `cargo xtask build` first.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{fixture_mmdb, root, stderr, trailguard};
use serde_json::{Value, json};

const PATHS: [&str; 15] = [
    "requestParameters.bucketName",
    "requestParameters.enable",
    "requestParameters.count",
    "requestParameters.ratio",
    "requestParameters.list",
    "requestParameters",
    "requestParameters.nested.a.b",
    "requestParameters.nothing",
    "requestParameters.dotted.key",
    "requestParameters.missing",
    "responseElements",
    "additionalEventData.MFAUsed",
    "userIdentity.sessionContext.sessionIssuer.type",
    "errorMessage",
    "tlsDetails",
];

fn record(id: &str, bucket: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "eventTime": "2026-04-22T09:00:00Z",
        "eventID": id,
        "eventName": "PutBucketPolicy",
        "eventSource": "s3.amazonaws.com",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "73.162.41.17",
        "userIdentity": {
            "type": "AssumedRole",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "userName": "ci-deploy"},
                "attributes": {"mfaAuthenticated": "false"}
            }
        },
        "requestParameters": {
            "bucketName": bucket,
            "enable": false,
            "count": 42,
            "ratio": 1.5,
            "list": [1, "two", {"three": 3}, null, true],
            "nested": {"a": {"b": "deep \"quoted\" \u{e9}"}},
            "nothing": null,
            "dotted.key": "flat",
            "dotted": {"key": "nested"}
        },
        "responseElements": null,
        "additionalEventData": {"MFAUsed": "No"},
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256"}
    })
}

fn records() -> Vec<Value> {
    vec![record("shape-1", "b"), record("shape-2", "other")]
}

/// The value at `path`, read independently: at each object the whole rest
/// of the path as a key, else the longest dotted head.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    if let Some(v) = object.get(path) {
        return Some(v);
    }
    let dots: Vec<usize> = path.match_indices('.').map(|(i, _)| i).collect();
    dots.iter()
        .rev()
        .find_map(|&i| object.get(&path[..i]).map(|child| (child, &path[i + 1..])))
        .and_then(|(child, rest)| lookup(child, rest))
}

/// What the probe should report for `path` in `record`: kind and text.
fn expected(record: &Value, path: &str) -> (String, Option<Value>) {
    let (kind, text) = match lookup(record, path) {
        None => ("absent", None),
        Some(Value::Null) => ("null", Some(String::new())),
        Some(Value::Bool(b)) => (if *b { "true" } else { "false" }, Some(String::new())),
        Some(Value::Number(n)) => ("number", Some(n.to_string())),
        Some(Value::String(s)) => ("string", Some(s.clone())),
        Some(v @ Value::Object(_)) => ("object", Some(v.to_string())),
        Some(v @ Value::Array(_)) => ("array", Some(v.to_string())),
    };
    // Objects and arrays are compared as JSON values (key order aside).
    let text = text.map(|t| match kind {
        "object" | "array" => serde_json::from_str(&t).expect("JSON"),
        _ => Value::String(t),
    });
    (kind.to_owned(), text)
}

fn reported(alert: &Value) -> Vec<(String, Option<Value>)> {
    alert["probe.values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|pair| {
            let kind = pair[0].as_str().expect("kind").to_owned();
            let text = pair[1].as_str().map(|t| match kind.as_str() {
                "object" | "array" => serde_json::from_str(t).expect("compact JSON"),
                _ => Value::String(t.to_owned()),
            });
            (kind, text)
        })
        .collect()
}

fn probe() -> PathBuf {
    let path = root().join("target/bench-components/record-probe.wasm");
    assert!(
        path.is_file(),
        "{} missing: run `cargo xtask build`",
        path.display()
    );
    path
}

/// Runs the probe over `input` with `settings` (TOML of the probe's
/// configuration); returns its alerts by event id.
fn run_probe(dir: &Path, input: &Path, settings: &str) -> Vec<(String, Value)> {
    let config = dir.join("probe.toml");
    std::fs::write(&config, format!("[rules.record-probe]\n{settings}")).expect("config");
    let out = trailguard(dir)
        .arg("run")
        .arg("--rules")
        .arg(probe())
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .arg("--config")
        .arg(&config)
        .arg(input)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut alerts: Vec<(String, Value)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("alert"))
        .map(|a| (a["event.id"].as_str().unwrap_or_default().to_owned(), a))
        .collect();
    alerts.sort_by(|a, b| a.0.cmp(&b.0));
    alerts
}

fn fields_setting() -> String {
    format!(
        "alert = true\nfields = {}\n",
        serde_json::to_string(&PATHS).expect("JSON")
    )
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, bytes).expect("write");
    path.to_owned()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

fn ecs(record: &Value, keep_original: bool) -> Value {
    let mut doc = json!({
        "@timestamp": "2026-04-22T09:00:00.000Z",
        "event": {"id": record["eventID"], "action": "PutBucketPolicy", "provider": "s3.amazonaws.com", "outcome": "success"},
        "source": {"address": "73.162.41.17"},
        "user": {"name": "ci-deploy"},
        "aws": {"cloudtrail": {
            "user_identity": {"type": "AssumedRole", "session_context": {"session_issuer": {"type": "Role"}}},
            "flattened": {
                "request_parameters": record["requestParameters"],
                "additional_eventdata": record["additionalEventData"]
            }
        }},
        "tls": {"version": "1.3", "version_protocol": "tls", "cipher": "TLS_AES_128_GCM_SHA256"}
    });
    if keep_original {
        doc["event"]["original"] = Value::String(record.to_string());
    }
    doc
}

#[test]
fn every_input_shape_gives_the_record_exact_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let all = records();
    let ndjson: String = all.iter().map(|r| format!("{r}\n")).collect();
    let shapes = [
        (
            "S3 delivery object, gzip",
            write(
                &d.join("s3/AWSLogs/1_CloudTrail_us-east-1_x.json.gz"),
                &gzip(json!({"Records": all}).to_string().as_bytes()),
            ),
        ),
        (
            "JSON array",
            write(&d.join("array/a.json"), json!(all).to_string().as_bytes()),
        ),
        (
            "NDJSON",
            write(&d.join("ndjson/a.ndjson"), ndjson.as_bytes()),
        ),
        (
            "EventBridge envelopes",
            write(
                &d.join("eventbridge/a.ndjson"),
                all.iter()
                    .map(|r| {
                        format!(
                            "{}\n",
                            json!({"version": "0", "detail-type": "AWS API Call via CloudTrail",
                                "source": "aws.s3", "time": "2026-04-22T09:00:00Z", "detail": r})
                        )
                    })
                    .collect::<String>()
                    .as_bytes(),
            ),
        ),
        (
            "ECS documents with event.original",
            write(
                &d.join("ecs/a.ndjson"),
                all.iter()
                    .map(|r| format!("{}\n", ecs(r, true)))
                    .collect::<String>()
                    .as_bytes(),
            ),
        ),
    ];
    for (shape, input) in shapes {
        let alerts = run_probe(d, &input, &fields_setting());
        assert_eq!(alerts.len(), all.len(), "{shape}: one alert per event");
        for ((id, alert), record) in alerts.iter().zip(&all) {
            assert_eq!(id, record["eventID"].as_str().expect("id"), "{shape}");
            let want: Vec<_> = PATHS.iter().map(|p| expected(record, p)).collect();
            assert_eq!(reported(alert), want, "{shape}, event {id}");
        }
    }
    // Absent and null are told apart; a flat dotted key wins.
    let one = &run_probe(d, &d.join("ndjson/a.ndjson"), &fields_setting())[0].1;
    let values = reported(one);
    assert_eq!(values[7].0, "null", "requestParameters.nothing");
    assert_eq!(values[9].0, "absent", "requestParameters.missing");
    assert_eq!(
        values[8].1,
        Some(json!("flat")),
        "requestParameters.dotted.key"
    );
    assert_eq!(values[2].1, Some(json!("42")), "a number, as written");
}

#[test]
fn ecs_documents_without_the_original_give_what_the_integration_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all = records();
    let input = write(
        &dir.path().join("ecs/a.ndjson"),
        all.iter()
            .map(|r| format!("{}\n", ecs(r, false)))
            .collect::<String>()
            .as_bytes(),
    );
    let alerts = run_probe(dir.path(), &input, &fields_setting());
    assert_eq!(alerts.len(), 2);
    let values = reported(&alerts[0].1);
    for (k, path) in PATHS.iter().enumerate() {
        let want = match *path {
            // Pruned or not kept by the integration: absent.
            "responseElements" | "errorMessage" => ("absent".to_owned(), None),
            "tlsDetails" => (
                "object".to_owned(),
                Some(json!({"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256"})),
            ),
            _ => expected(&all[0], path),
        };
        assert_eq!(values[k], want, "{path}");
    }
}

#[test]
fn filters_on_record_fields_choose_the_events_that_cross() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ndjson: String = records().iter().map(|r| format!("{r}\n")).collect();
    let input = write(&dir.path().join("a.ndjson"), ndjson.as_bytes());
    let filtered = |filter: &str| {
        let settings = format!(
            "alert = true\nfields = [\"requestParameters.bucketName\"]\nfilters = [{filter}]\n"
        );
        run_probe(dir.path(), &input, &settings)
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        filtered(r#"{ path = "requestParameters.bucketName", any_of = ["B"] }"#),
        Vec::<String>::new(),
        "case matters by default"
    );
    assert_eq!(
        filtered(
            r#"{ path = "requestParameters.bucketName", any_of = ["B"], ignore_case = true }"#
        ),
        ["shape-1"]
    );
    assert_eq!(
        filtered(
            r#"{ path = "requestParameters.bucketName", any_of = ["OTH"], ignore_case = true, prefix = true }"#
        ),
        ["shape-2"]
    );
    assert_eq!(
        filtered(r#"{ path = "requestParameters.enable", any_of = ["false"] }"#),
        ["shape-1", "shape-2"],
        "a boolean compares as its text"
    );
}

#[test]
fn a_rule_declaring_too_many_paths_is_refused_at_load_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write(
        &dir.path().join("a.ndjson"),
        format!("{}\n", record("x", "b")).as_bytes(),
    );
    let many: Vec<String> = (0..65).map(|i| format!("requestParameters.p{i}")).collect();
    let config = dir.path().join("probe.toml");
    std::fs::write(
        &config,
        format!(
            "[rules.record-probe]\nfields = {}\n",
            serde_json::to_string(&many).expect("JSON")
        ),
    )
    .expect("config");
    let out = trailguard(dir.path())
        .arg("run")
        .arg("--rules")
        .arg(format!(
            "{}:{}",
            probe().display(),
            common::modules_dir()
                .join("rule-root-activity.wasm")
                .display()
        ))
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .arg("--config")
        .arg(&config)
        .arg(&input)
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "quarantined at load, others run: {err}"
    );
    assert!(
        err.contains("record-probe") && err.contains("limit of 64"),
        "{err}"
    );
}

#[test]
fn a_value_over_the_limit_arrives_as_oversized_and_its_neighbours_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut big = record("big", "b");
    // 70 KiB of policy: over the 64 KiB limit for one value.
    big["requestParameters"]["bucketPolicy"] = json!({"Statement": "x".repeat(70 << 10)});
    let input = write(&dir.path().join("a.ndjson"), format!("{big}\n").as_bytes());
    let settings = "alert = true\nfields = [\"requestParameters.bucketPolicy\", \"requestParameters\", \"requestParameters.bucketName\"]\n";
    let alerts = run_probe(dir.path(), &input, settings);
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        reported(&alerts[0].1),
        [
            ("oversized".to_owned(), Some(json!(""))),
            ("oversized".to_owned(), Some(json!(""))),
            ("string".to_owned(), Some(json!("b"))),
        ]
    );
}
