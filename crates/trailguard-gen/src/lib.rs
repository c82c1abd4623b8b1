//! CloudTrail records in the shapes AWS delivers them, and scenarios built
//! from them.
//!
//! [`ApiCall`] builds one record (the fields of a real `AwsApiCall` record of
//! an assumed role or IAM user); [`StolenCiCredentials`] is the attack rule
//! `aws-sensitive-untrusted-asn` exists for, with every knob a test needs to
//! break one condition at a time; [`write_delivery`] writes records as a
//! gzip S3 delivery object named as CloudTrail names them.
//!
//! Addresses come from real networks (see `tests/data/asn/`): `3.80.0.0/12`
//! and `18.204.0.0/14` are Amazon's (AS14618), `73.0.0.0/8` Comcast's
//! (AS7922), `8.8.8.0/24` Google's.

mod org;
mod traffic;

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use trailguard_rule_sdk::format_timestamp_ms;

pub use traffic::{Episode, Profile, TrafficConfig, generate};

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;

/// The account all generated records belong to.
pub const ACCOUNT: &str = "123456789012";

/// Who made a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A session of an IAM role (`AssumedRole`); `user.name` is the role.
    Role {
        /// Role name.
        role: String,
        /// Session name (differs per CI job).
        session: String,
    },
    /// An IAM user.
    User {
        /// User name.
        name: String,
    },
    /// The account's root user.
    Root,
}

/// One CloudTrail API call record.
#[derive(Clone, Debug)]
pub struct ApiCall {
    /// Event time, ms since the epoch.
    pub time_ms: i64,
    /// Who.
    pub identity: Identity,
    /// `eventSource`, e.g. `s3.amazonaws.com`.
    pub source: String,
    /// `eventName`.
    pub name: String,
    /// `sourceIPAddress`.
    pub ip: String,
    /// `userAgent`.
    pub user_agent: String,
    /// `errorCode`, for failed calls.
    pub error_code: Option<String>,
    /// Distinguishes records for a stable `eventID`.
    pub serial: u64,
    /// `requestParameters` (`null` when absent).
    pub request: Option<Value>,
    /// `responseElements` (`null` when absent).
    pub response: Option<Value>,
}

/// The service an action belongs to.
pub fn event_source(action: &str) -> &'static str {
    match action {
        "GetCallerIdentity" | "AssumeRole" | "AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML" => {
            "sts.amazonaws.com"
        }
        "ListBuckets" | "GetObject" | "PutObject" | "ListObjects" | "ListObjectsV2" => {
            "s3.amazonaws.com"
        }
        "GetSecretValue" | "ListSecrets" | "DescribeSecret" => "secretsmanager.amazonaws.com",
        "GetParameter" | "GetParameters" | "GetParametersByPath" => "ssm.amazonaws.com",
        "DescribeInstances" | "RunInstances" => "ec2.amazonaws.com",
        "UpdateFunctionCode20150331v2" => "lambda.amazonaws.com",
        _ => "iam.amazonaws.com",
    }
}

impl ApiCall {
    /// A successful call by `identity` of `action` from `ip`.
    pub fn new(time_ms: i64, identity: &Identity, action: &str, ip: &str, serial: u64) -> ApiCall {
        ApiCall {
            time_ms,
            identity: identity.clone(),
            source: event_source(action).to_owned(),
            name: action.to_owned(),
            ip: ip.to_owned(),
            user_agent: "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.ubuntu.22".to_owned(),
            error_code: None,
            serial,
            request: None,
            response: None,
        }
    }

    /// A stable, UUID-shaped event id.
    pub fn event_id(&self) -> String {
        let h = self.serial.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (self.time_ms as u64);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (h >> 32) as u32,
            (h >> 16) as u16,
            h & 0xfff,
            (self.serial >> 4) & 0xfff,
            self.serial & 0xffff_ffff_ffff
        )
    }

    /// The record as CloudTrail writes it.
    pub fn to_json(&self) -> Value {
        let identity = match &self.identity {
            Identity::Role { role, session } => json!({
                "type": "AssumedRole",
                "principalId": format!("AROAEXAMPLEROLEID:{session}"),
                "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"),
                "accountId": ACCOUNT,
                "accessKeyId": "ASIAEXAMPLEKEYID0001",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROAEXAMPLEROLEID",
                        "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
                        "accountId": ACCOUNT,
                        "userName": role,
                    },
                    "webIdFederationData": {},
                    "attributes": {
                        "creationDate": format_timestamp_ms(self.time_ms - 60_000),
                        "mfaAuthenticated": "false",
                    },
                },
            }),
            Identity::User { name } => json!({
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEUSERID01",
                "arn": format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
                "accountId": ACCOUNT,
                "accessKeyId": "AKIAEXAMPLEKEYID0001",
                "userName": name,
            }),
            Identity::Root => json!({
                "type": "Root",
                "principalId": ACCOUNT,
                "arn": format!("arn:aws:iam::{ACCOUNT}:root"),
                "accountId": ACCOUNT,
                "accessKeyId": "ASIAEXAMPLEROOTKEY01",
            }),
        };
        let mut record = json!({
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": format_timestamp_ms(self.time_ms),
            "eventSource": self.source,
            "eventName": self.name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": self.ip,
            "userAgent": self.user_agent,
            "requestParameters": self.request.clone().unwrap_or(Value::Null),
            "responseElements": self.response.clone().unwrap_or(Value::Null),
            "requestID": format!("{:016X}", self.serial),
            "eventID": self.event_id(),
            "readOnly": true,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        });
        if let (Some(code), Some(obj)) = (&self.error_code, record.as_object_mut()) {
            obj.insert("errorCode".into(), code.clone().into());
            obj.insert(
                "errorMessage".into(),
                "User is not authorized to perform this operation".into(),
            );
        }
        record
    }
}

/// Stolen CI credentials replayed from a home network: a CI role calls AWS
/// from Amazon's networks for days, then the attacker uses the stolen session
/// for reconnaissance from a residential ISP.
///
/// With the defaults, rule `aws-sensitive-untrusted-asn` alerts exactly once,
/// at the first whole hour after the attack ([`StolenCiCredentials::alert_hour_ms`]),
/// and rule `aws-unusual-asn` does not (three days of history are too few to
/// learn the role). [`StolenCiCredentials::long_history`] gives both rules
/// something to find.
#[derive(Clone, Debug)]
pub struct StolenCiCredentials {
    /// The CI role.
    pub role: String,
    /// Time of the attacker's first call.
    pub attack_ms: i64,
    /// Number of the role's calls from Amazon networks before the attack,
    /// spread evenly over `history_days` before it.
    pub trusted_calls: usize,
    /// Days of routine activity before the attack.
    pub history_days: i64,
    /// The attacker's actions, one call each, 20 s apart.
    pub attacker_actions: Vec<String>,
    /// The attacker's address.
    pub attacker_ip: String,
    /// An `errorCode` on the attacker's calls (failed calls).
    pub attacker_error: Option<String>,
    /// Unrelated human activity from an ISP, which must not alert.
    pub background_user_calls: usize,
}

impl Default for StolenCiCredentials {
    fn default() -> Self {
        StolenCiCredentials {
            role: "ci-deploy".into(),
            // 2026-04-22T09:30:00Z
            attack_ms: 1_776_850_200_000,
            trusted_calls: 300,
            history_days: 3,
            attacker_actions: vec!["GetCallerIdentity".into(), "ListBuckets".into()],
            attacker_ip: "73.162.41.17".into(),
            attacker_error: None,
            background_user_calls: 40,
        }
    }
}

/// Amazon addresses the CI runners use (AS14618, "Amazon.com, Inc.").
const CI_IPS: [&str; 4] = ["3.80.17.4", "3.91.200.12", "18.204.33.190", "18.210.5.77"];
const CI_ACTIONS: [&str; 5] = [
    "DescribeInstances",
    "GetObject",
    "PutObject",
    "UpdateFunctionCode20150331v2",
    "AssumeRole",
];

impl StolenCiCredentials {
    /// Twelve days of routine (100 calls a day) before the attack: rule
    /// `aws-unusual-asn` has learned the role and alerts on the attacker's
    /// first call; `aws-sensitive-untrusted-asn` sees 697 trusted calls in
    /// its 7-day window and alerts at the next hour.
    pub fn long_history() -> Self {
        StolenCiCredentials {
            trusted_calls: 1200,
            history_days: 12,
            ..StolenCiCredentials::default()
        }
    }

    /// The evaluation hour at which the rule must alert.
    pub fn alert_hour_ms(&self) -> i64 {
        (self.attack_ms.div_euclid(HOUR_MS) + 1) * HOUR_MS
    }

    /// Every record, in time order.
    pub fn calls(&self) -> Vec<ApiCall> {
        let mut calls = Vec::new();
        let span = self.history_days.max(1) * 24 * HOUR_MS;
        let step = span / (self.trusted_calls.max(1) as i64);
        for i in 0..self.trusted_calls {
            let role = Identity::Role {
                role: self.role.clone(),
                session: format!("gitlab-ci-job-{}", 81_000 + i / 6),
            };
            calls.push(ApiCall::new(
                self.attack_ms - span + step * i as i64,
                &role,
                CI_ACTIONS[i % CI_ACTIONS.len()],
                CI_IPS[i % CI_IPS.len()],
                i as u64,
            ));
        }
        let stolen = Identity::Role {
            role: self.role.clone(),
            session: format!("gitlab-ci-job-{}", 81_000 + self.trusted_calls / 6),
        };
        for (i, action) in self.attacker_actions.iter().enumerate() {
            let mut call = ApiCall::new(
                self.attack_ms + 20_000 * i as i64,
                &stolen,
                action,
                &self.attacker_ip,
                1_000_000 + i as u64,
            );
            call.user_agent = "aws-cli/2.13.0 Python/3.11.4 Darwin/23.1.0 exe/x86_64".into();
            call.error_code = self.attacker_error.clone();
            calls.push(call);
        }
        let human = Identity::User {
            name: "alice".into(),
        };
        for i in 0..self.background_user_calls {
            calls.push(ApiCall::new(
                self.attack_ms - 5 * HOUR_MS + 7 * 60_000 * i as i64,
                &human,
                ["ListBuckets", "GetCallerIdentity", "DescribeInstances"][i % 3],
                "73.22.8.140",
                2_000_000 + i as u64,
            ));
        }
        calls.sort_by_key(|c| (c.time_ms, c.serial));
        calls
    }
}

/// Writes `records` as a gzip S3 delivery object (`{"Records": [...]}`)
/// into `dir`, named as CloudTrail names them; returns the path.
pub fn write_delivery(
    dir: &Path,
    time_ms: i64,
    tag: &str,
    records: &[Value],
) -> std::io::Result<PathBuf> {
    let stamp: String = format_timestamp_ms(time_ms)
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(13)
        .collect();
    let path = dir.join(format!(
        "{ACCOUNT}_CloudTrail_us-east-1_{stamp}Z_{tag}.json.gz"
    ));
    let mut gz = GzEncoder::new(std::fs::File::create(&path)?, Compression::default());
    serde_json::to_writer(&mut gz, &json!({ "Records": records }))?;
    gz.finish()?.flush()?;
    Ok(path)
}

/// Writes `calls` as one delivery object per `per_file` records, in time
/// order; returns the paths.
pub fn write_deliveries(
    dir: &Path,
    calls: &[ApiCall],
    per_file: usize,
) -> std::io::Result<Vec<PathBuf>> {
    calls
        .chunks(per_file.max(1))
        .enumerate()
        .map(|(i, chunk)| {
            let records: Vec<Value> = chunk.iter().map(ApiCall::to_json).collect();
            write_delivery(dir, chunk[0].time_ms, &format!("{i:06}"), &records)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_cloudtrail_shape() {
        let calls = StolenCiCredentials::default().calls();
        assert_eq!(calls.len(), 300 + 2 + 40);
        let attacker = calls
            .iter()
            .find(|c| c.ip == "73.162.41.17")
            .expect("attacker call")
            .to_json();
        assert_eq!(
            attacker["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"],
            "ci-deploy"
        );
        assert_eq!(attacker["eventSource"], "sts.amazonaws.com");
        assert_eq!(attacker["eventTime"], "2026-04-22T09:30:00Z");
        let ids: std::collections::HashSet<String> = calls.iter().map(ApiCall::event_id).collect();
        assert_eq!(ids.len(), calls.len(), "event ids are unique");
    }

    #[test]
    fn delivery_files_are_named_like_cloudtrail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let calls = StolenCiCredentials::default().calls();
        let paths = write_deliveries(dir.path(), &calls, 100).expect("write");
        assert_eq!(paths.len(), 4);
        let name = paths[0].file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            name.starts_with("123456789012_CloudTrail_us-east-1_20260419T"),
            "{name}"
        );
        assert!(name.ends_with(".json.gz"));
    }
}
