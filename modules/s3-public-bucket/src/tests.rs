use serde_json::json;
use trailguard_rule_sdk::testing::{Harness, TestEvent};

use super::*;

fn put(action: &str, params: Json) -> TestEvent {
    let mut event = TestEvent::new(1_000, "ci-deploy", action);
    event.event_provider = Some("s3.amazonaws.com".into());
    let Json::Object(params) = params else {
        panic!("an object")
    };
    for (key, value) in params {
        event = event.field(&format!("requestParameters.{key}"), value);
    }
    event
}

fn reasons(config: &str, events: &[TestEvent]) -> Vec<String> {
    Harness::<S3PublicBucket>::new(config)
        .expect("valid")
        .run(events)
        .into_iter()
        .map(|a| {
            a.document["kibana.alert.reason"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

fn policy(principal: Json, extra: Json) -> Json {
    let mut statement =
        json!({"Effect": "Allow", "Action": "s3:GetObject", "Principal": principal});
    if let (Some(s), Json::Object(extra)) = (statement.as_object_mut(), extra) {
        s.extend(extra);
    }
    json!({"bucketName": "b", "bucketPolicy": {"Version": "2012-10-17", "Statement": [statement]}})
}

#[test]
fn a_policy_for_everyone_without_condition_is_public() {
    for principal in [
        json!("*"),
        json!({"AWS": "*"}),
        json!({"AWS": ["arn:aws:iam::1:root", "*"]}),
    ] {
        let r = reasons(
            "",
            &[put("PutBucketPolicy", policy(principal.clone(), json!({})))],
        );
        assert_eq!(r.len(), 1, "{principal}");
        assert!(r[0].starts_with("bucket b: its policy allows"), "{r:?}");
    }
    let quiet = [
        policy(json!({"AWS": "arn:aws:iam::193672423079:root"}), json!({})),
        policy(json!({"Service": "cloudtrail.amazonaws.com"}), json!({})),
        policy(
            json!("*"),
            json!({"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}),
        ),
        policy(json!("*"), json!({"Effect": "Deny"})),
    ];
    for params in quiet {
        assert!(
            reasons("", &[put("PutBucketPolicy", params.clone())]).is_empty(),
            "{params}"
        );
    }
}

#[test]
fn a_policy_delivered_as_text_is_read_too() {
    let text =
        json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:*"}}).to_string();
    let event = put(
        "PutBucketPolicy",
        json!({"bucketName": "b", "bucketPolicy": text}),
    );
    assert_eq!(reasons("", &[event]).len(), 1);
    let broken = put(
        "PutBucketPolicy",
        json!({"bucketName": "b", "bucketPolicy": "invalid-json-policy"}),
    );
    assert!(reasons("", &[broken]).is_empty());
}

#[test]
fn public_acls_in_every_spelling() {
    let group = "http://acs.amazonaws.com/groups/global/AllUsers";
    let public = [
        json!({"bucketName": "b", "x-amz-acl": ["public-read"]}),
        json!({"bucketName": "b", "x-amz-acl": "public-read-write"}),
        json!({"bucketName": "b", "x-amz-grant-read": format!("uri=\"{group}\"")}),
        json!({"bucketName": "b", "AccessControlPolicy": {"AccessControlList": {"Grant": {"Grantee": {"URI": group}, "Permission": "READ"}}}}),
        json!({"bucketName": "b", "AccessControlPolicy": {"AccessControlList": {"Grant": [{"Grantee": {"ID": "x"}, "Permission": "FULL_CONTROL"}, {"Grantee": {"URI": "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"}, "Permission": "WRITE"}]}}}),
    ];
    for params in public {
        assert_eq!(
            reasons("", &[put("PutBucketAcl", params.clone())]).len(),
            1,
            "{params}"
        );
    }
    let private = [
        json!({"bucketName": "b", "x-amz-acl": ["private"]}),
        json!({"bucketName": "b", "AccessControlPolicy": {"AccessControlList": {"Grant": {"Grantee": {"ID": "x"}, "Permission": "READ"}}}}),
        json!({"bucketName": "b"}),
    ];
    for params in private {
        assert!(
            reasons("", &[put("PutBucketAcl", params.clone())]).is_empty(),
            "{params}"
        );
    }
}

#[test]
fn failed_calls_other_services_and_allowed_buckets_are_quiet() {
    let open = || {
        put(
            "PutBucketAcl",
            json!({"bucketName": "site", "x-amz-acl": "public-read"}),
        )
    };
    let failed = open().outcome(Outcome::Failure);
    let mut elsewhere = open();
    elsewhere.event_provider = Some("s3-outposts.amazonaws.com".into());
    assert!(reasons("", &[failed, elsewhere]).is_empty());
    assert!(reasons(r#"{"public_buckets":["site"]}"#, &[open()]).is_empty());
    assert_eq!(reasons("", &[open()]).len(), 1);
}

#[test]
fn the_alert_carries_the_events_fields_and_the_bucket() {
    let alerts = Harness::<S3PublicBucket>::new("")
        .expect("defaults")
        .run(&[put(
            "PutBucketAcl",
            json!({"bucketName": "b", "x-amz-acl": "public-read"}),
        )]);
    let doc = &alerts[0].document;
    assert_eq!(doc["aws.s3.bucket.name"], "b");
    assert_eq!(doc["user.name"], "ci-deploy");
    assert_eq!(doc["event.action"], "PutBucketAcl");
    assert_eq!(doc["event.outcome"], "success");
}
