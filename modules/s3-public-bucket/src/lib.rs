//! Rule `aws-s3-bucket-made-public`: an S3 bucket opened to everyone.
//!
//! A bucket policy that allows `Principal: "*"` without a condition, or an
//! ACL that grants the `AllUsers` / `AuthenticatedUsers` groups (canned
//! `public-read`, `public-read-write`, `authenticated-read`, explicit
//! `x-amz-grant-*` headers or an `AccessControlPolicy` body), exposes the
//! bucket to the internet: a classic exfiltration step. The worked example
//! of a rule that reads the raw record (docs/writing-a-rule.md).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use trailguard_rule_sdk::{
    Alert, AlertBuilder, Event, EventFilter, Field, Outcome, Rule, RuleInfo, Severity, config,
    export_rule, serde_json,
};

/// The rule's id, as it appears in alerts and configuration files.
pub const RULE_ID: &str = "aws-s3-bucket-made-public";

/// The groups an ACL grant makes a bucket public to.
const PUBLIC_GROUPS: [&str; 2] = [
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
];
/// Canned ACLs that grant those groups.
const PUBLIC_CANNED: [&str; 3] = ["public-read", "public-read-write", "authenticated-read"];
/// ACL grant headers (`uri="..."` lists).
const GRANT_HEADERS: [&str; 5] = [
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
];

/// The rule's configuration (`[rules.aws-s3-bucket-made-public]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Buckets meant to be public (static websites): never alert.
    pub public_buckets: Vec<String>,
}

/// The rule.
pub struct S3PublicBucket {
    config: Config,
}

/// `true` for `"*"`, `{"AWS": "*"}` or `{"AWS": [..., "*"]}`.
fn everyone(principal: &Json) -> bool {
    match principal {
        Json::String(s) => s == "*",
        Json::Object(o) => o.get("AWS").is_some_and(everyone),
        Json::Array(a) => a.iter().any(everyone),
        _ => false,
    }
}

/// Why a bucket policy (an object, or a string holding one) is public: an
/// `Allow` statement for everyone without a condition.
fn public_policy(policy: &Json) -> Option<String> {
    let policy = match policy {
        Json::String(text) => serde_json::from_str(text).ok()?,
        other => other.clone(),
    };
    let statements = match policy.get("Statement")? {
        Json::Array(a) => a.clone(),
        one => vec![one.clone()],
    };
    statements.iter().find_map(|s| {
        let allows = s.get("Effect").and_then(Json::as_str) == Some("Allow");
        let open = s.get("Principal").is_some_and(everyone) && s.get("Condition").is_none();
        (allows && open).then(|| {
            let action = s.get("Action").map_or("*".into(), Json::to_string);
            format!("its policy allows {action} to everyone (Principal \"*\")")
        })
    })
}

/// Strings of a value that may be one string or a list of them.
fn strings(value: Option<Json>) -> Vec<String> {
    match value {
        Some(Json::String(s)) => vec![s],
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

impl S3PublicBucket {
    /// Why the ACL set by `event` is public, if it is.
    fn public_acl(event: &Event<'_>) -> Option<String> {
        let param = |name: &str| {
            event
                .get(&format!("requestParameters.{name}"))?
                .parse::<Json>()
        };
        if let Some(canned) = strings(param("x-amz-acl"))
            .into_iter()
            .find(|c| PUBLIC_CANNED.contains(&c.as_str()))
        {
            return Some(format!("its canned ACL is {canned}"));
        }
        for header in GRANT_HEADERS {
            if let Some(group) = strings(param(header))
                .iter()
                .find_map(|g| PUBLIC_GROUPS.iter().find(|p| g.contains(*p)))
            {
                return Some(format!("{header} grants {group}"));
            }
        }
        let body = param("AccessControlPolicy")?;
        let grants = match body.pointer("/AccessControlList/Grant")? {
            Json::Array(a) => a.clone(),
            one => vec![one.clone()],
        };
        grants.iter().find_map(|g| {
            let uri = g.pointer("/Grantee/URI")?.as_str()?;
            let permission = g.get("Permission").and_then(Json::as_str).unwrap_or("?");
            PUBLIC_GROUPS
                .contains(&uri)
                .then(|| format!("its ACL grants {permission} to {uri}"))
        })
    }
}

impl Rule for S3PublicBucket {
    fn info() -> RuleInfo {
        RuleInfo {
            id: RULE_ID.into(),
            name: "AWS S3 bucket made public".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            severity: Severity::High,
            risk_score: 73,
            mitre_techniques: vec!["T1530".into(), "T1537".into()],
            description: "A bucket policy or ACL now lets anyone on the internet (or any AWS \
                account) read or write the bucket. Unless the bucket is meant to be public, its \
                data is exposed; attackers open buckets to exfiltrate."
                .into(),
            default_config: serde_json::to_string(&Config::default()).unwrap_or_default(),
            tags: Vec::new(),
            references: Vec::new(),
            author: String::new(),
        }
    }

    fn create(text: &str) -> Result<Self, String> {
        let config = config::parse(text, Config::default())?;
        Ok(S3PublicBucket { config })
    }

    fn fields(&self) -> Vec<String> {
        [
            "bucketName",
            "bucketPolicy",
            "x-amz-acl",
            "AccessControlPolicy",
        ]
        .into_iter()
        .chain(GRANT_HEADERS)
        .map(|p| format!("requestParameters.{p}"))
        .collect()
    }

    fn filters(&self) -> Vec<EventFilter> {
        vec![
            EventFilter::new(Field::EventProvider, ["s3.amazonaws.com"]),
            EventFilter::new(Field::EventAction, ["PutBucketPolicy", "PutBucketAcl"]),
        ]
    }

    fn check(&self, event: &Event<'_>) -> Option<Alert> {
        if event.outcome != Outcome::Success {
            return None;
        }
        let bucket = event.get("requestParameters.bucketName")?.as_str()?;
        if self.config.public_buckets.iter().any(|b| b == bucket) {
            return None;
        }
        let why = match event.event_action? {
            "PutBucketPolicy" => {
                public_policy(&event.get("requestParameters.bucketPolicy")?.parse()?)
            }
            _ => Self::public_acl(event),
        }?;
        Some(
            AlertBuilder::from_event(event)
                .field("aws.s3.bucket.name", bucket)
                .field("kibana.alert.reason", format!("bucket {bucket}: {why}"))
                .build(),
        )
    }
}

export_rule!(S3PublicBucket);

#[cfg(test)]
mod tests;
