//! The `org` profile: traffic shaped like a real organisation's, for
//! measuring at realistic scale (1M records over 9 days by default).
//!
//! - **CI roles** call from cloud networks (Amazon; some from Microsoft's
//!   or Google's, like hosted CI runners), at heavy-tailed rates: by
//!   default the busiest role makes about a quarter of all CI calls, the
//!   median one about fifty times fewer.
//!   Every call comes from a new address of the provider's range, so busy
//!   roles use thousands of addresses a week.
//! - **Humans** call from a residential ISP (Comcast) with dynamic
//!   addresses: a home address that changes every day plus calls from
//!   anywhere in a /16 (phones, hotspots), hundreds of distinct addresses
//!   per person and week; mostly in working hours; console sign-ins; one
//!   call in sixteen fails.
//! - **AWS services** call on the roles' behalf (no address).
//! - **The root user** signs in and looks around now and then.
//! - **Attacks**: stolen credentials of one of the busiest CI roles replayed
//!   from a Tor exit, as in the default profile, with their ground truth.
//!
//! Half the calls come from networks that are not Amazon's. Records carry
//! request and response elements like real ones (about 1 KB each). Only the
//! attacks make `aws-sensitive-untrusted-asn` alert: every CI role stays on
//! trusted clouds, and humans and root are never mostly on trusted clouds.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde_json::json;

use crate::traffic::{ATTACK_ACTIONS, Episode, TrafficConfig, ip_in};
use crate::{ACCOUNT, ApiCall, HOUR_MS, Identity};

/// What CI roles call (sensitive ones included: AssumeRole, GetObject,
/// GetParameter, GetSecretValue are the daily work of a pipeline).
const CI_ACTIONS: [&str; 10] = [
    "DescribeInstances",
    "GetObject",
    "GetObject",
    "PutObject",
    "AssumeRole",
    "GetParameter",
    "GetSecretValue",
    "UpdateFunctionCode20150331v2",
    "RunInstances",
    "ListObjectsV2",
];
/// What humans call.
const HUMAN_ACTIONS: [&str; 9] = [
    "ListBuckets",
    "DescribeInstances",
    "GetCallerIdentity",
    "ConsoleLogin",
    "GetObject",
    "ListSecrets",
    "DescribeSecret",
    "ListObjectsV2",
    "GetParameters",
];
/// What root does.
const ROOT_ACTIONS: [&str; 4] = [
    "ConsoleLogin",
    "GetAccountSummary",
    "ListAccountAliases",
    "DescribeInstances",
];
/// How failed calls fail.
const ERRORS: [&str; 3] = [
    "AccessDenied",
    "ThrottlingException",
    "ResourceNotFoundException",
];

/// Who is drawn, per thousand draws: CI, humans, services; the rest is
/// root. Humans are away about half the day (a draw then goes to someone
/// else), so of the calls made about 48% are humans', 43% CI's, 7%
/// services' and 1.4% root's.
const CI_SHARE: u32 = 300;
const HUMAN_SHARE: u32 = 640;
const SERVICE_SHARE: u32 = 50;

/// Weights of a heavy-tailed (Zipf-like) rate over `n` identities, as
/// cumulative sums for sampling.
fn heavy_tail(n: u32, exponent: f64) -> Vec<f64> {
    let mut sum = 0.0;
    (0..n.max(1))
        .map(|rank| {
            sum += 1.0 / f64::from(rank + 1).powf(exponent);
            sum
        })
        .collect()
}

/// An index drawn from cumulative weights.
fn pick(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(1.0);
    let x = f64::from(rng.next_u32()) / f64::from(u32::MAX) * total;
    cumulative
        .partition_point(|&c| c < x)
        .min(cumulative.len() - 1)
}

/// Human activity by hour of day (UTC), in percent: office hours in the
/// Americas, some evening work.
fn human_activity(hour: i64) -> u32 {
    match hour {
        13..=22 => 100,
        11 | 12 | 23 => 50,
        0..=3 => 20,
        _ => 5,
    }
}

/// Request and response elements as AWS records them for `call`'s action.
fn elements(call: &mut ApiCall, rng: &mut ChaCha8Rng) {
    let n = rng.next_u32();
    let (request, response) = match call.name.as_str() {
        "GetObject" | "PutObject" => (
            json!({
                "bucketName": format!("build-artifacts-{}", n % 12),
                "Host": format!("build-artifacts-{}.s3.us-east-1.amazonaws.com", n % 12),
                "key": format!("releases/{}/app-{:08x}.tar.gz", n % 97, n),
            }),
            serde_json::Value::Null,
        ),
        "ListObjectsV2" => (
            json!({
                "bucketName": format!("build-artifacts-{}", n % 12),
                "list-type": "2",
                "prefix": format!("releases/{}/", n % 97),
                "Host": format!("build-artifacts-{}.s3.us-east-1.amazonaws.com", n % 12),
            }),
            serde_json::Value::Null,
        ),
        "AssumeRole" => (
            json!({
                "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/deploy-{}", n % 8),
                "roleSessionName": format!("pipeline-{n:08x}"),
                "durationSeconds": 3600,
            }),
            json!({
                "credentials": {
                    "accessKeyId": "ASIAEXAMPLEKEYID0002",
                    "sessionToken": format!("IQoJb3JpZ2luX2VjE{n:032x}"),
                    "expiration": "Apr 1, 2026, 1:00:00 AM",
                },
                "assumedRoleUser": {
                    "assumedRoleId": format!("AROAEXAMPLEROLEID:pipeline-{n:08x}"),
                    "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/deploy-{}/pipeline-{n:08x}", n % 8),
                },
            }),
        ),
        "GetParameter" | "GetParameters" => (
            json!({"name": format!("/ci/service-{}/config", n % 30), "withDecryption": true}),
            serde_json::Value::Null,
        ),
        "GetSecretValue" | "DescribeSecret" => (
            json!({"secretId": format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ci/token-{}", n % 20)}),
            serde_json::Value::Null,
        ),
        "DescribeInstances" => (
            json!({
                "instancesSet": {"items": [{"instanceId": format!("i-{n:017x}")}]},
                "filterSet": {},
            }),
            serde_json::Value::Null,
        ),
        "RunInstances" => (
            json!({
                "instancesSet": {"items": [{"imageId": "ami-0abcdef1234567890", "minCount": 1, "maxCount": 1}]},
                "instanceType": "m7g.large",
                "monitoring": {"enabled": false},
            }),
            json!({"requestId": format!("{n:08x}-0000-4000-8000-000000000000"), "ownerId": ACCOUNT}),
        ),
        "ConsoleLogin" => (
            serde_json::Value::Null,
            json!({"ConsoleLogin": if call.error_code.is_some() { "Failure" } else { "Success" }}),
        ),
        _ => return,
    };
    call.request = Some(request);
    call.response = Some(response);
}

/// Generates the `org` profile's records in time order, handing each to
/// `emit`; returns the attack episodes.
pub fn generate(config: &TrafficConfig, emit: &mut dyn FnMut(&ApiCall)) -> Vec<Episode> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let span = i64::from(config.days.max(1)) * 24 * HOUR_MS;
    let attack_calls = u64::from(config.attacks) * ATTACK_ACTIONS.len() as u64;
    let routine = config.events.saturating_sub(attack_calls).max(1);
    let step = (span / routine as i64).max(1);
    let ci_roles = config.ci_roles.max(1);
    let humans = config.humans.max(1);
    let ci_rates = heavy_tail(ci_roles, 1.1);
    let human_rates = heavy_tail(humans, 0.9);
    // Attacks: on one of the three busiest roles (enough trusted history
    // for the rule), after two days, evenly spread over the rest.
    let history = (2 * 24 * HOUR_MS).min(span / 2);
    let episodes = crate::traffic::plan_episodes(&mut rng, config, history, ci_roles.min(3));
    let mut next_episode = 0;
    let mut serial = 0u64;
    let mut i = 0u64;
    while i < routine {
        let t = config.start_ms + i as i64 * step;
        while let Some(e) = episodes.get(next_episode).filter(|e| e.first_call_ms <= t) {
            serial = crate::traffic::emit_episode(e, serial, emit);
            next_episode += 1;
        }
        let share = rng.next_u32() % 1000;
        let hour = t.div_euclid(HOUR_MS).rem_euclid(24);
        // Humans are fewer at night: a drawn human call is skipped (and
        // the slot goes to someone else) as often as they are away.
        if (CI_SHARE..CI_SHARE + HUMAN_SHARE).contains(&share)
            && rng.next_u32() % 100 >= human_activity(hour)
        {
            continue;
        }
        serial += 1;
        i += 1;
        let mut call = if share < CI_SHARE {
            let role = pick(&mut rng, &ci_rates) as u32;
            let identity = Identity::Role {
                role: format!("ci-role-{role}"),
                session: format!("job-{}", (t / (20 * 60_000)) * 131 + i64::from(role)),
            };
            // Each role runs on one provider: most on Amazon, every
            // seventh on Microsoft's, every eleventh on Google's.
            let ip = if role % 7 == 6 {
                ip_in(&mut rng, [13, 64, 0, 0], 21)
            } else if role % 11 == 10 {
                ip_in(&mut rng, [8, 8, 8, 0], 8)
            } else if rng.next_u32() % 2 == 0 {
                ip_in(&mut rng, [3, 80, 0, 0], 20)
            } else {
                ip_in(&mut rng, [18, 204, 0, 0], 18)
            };
            let action = CI_ACTIONS[(rng.next_u32() as usize) % CI_ACTIONS.len()];
            let mut call = ApiCall::new(t, &identity, action, &ip, serial);
            call.user_agent = "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux".into();
            if rng.next_u32() % 100 == 0 {
                call.error_code = Some(ERRORS[1].into());
            }
            call
        } else if share < CI_SHARE + HUMAN_SHARE {
            let human = pick(&mut rng, &human_rates) as u32;
            let identity = Identity::User {
                name: format!("user-{human}"),
            };
            let day = t.div_euclid(24 * HOUR_MS) as u32;
            // A home address that changes daily, and 30% of calls from
            // anywhere in the person's /16 (phones, hotspots).
            let home = (human.wrapping_mul(7919) ^ day.wrapping_mul(104_729)) & 0xff_ffff;
            let ip = if rng.next_u32() % 10 < 3 {
                ip_in(&mut rng, [73, (human % 200) as u8 + 20, 0, 0], 16)
            } else {
                std::net::Ipv4Addr::from(u32::from_be_bytes([73, 0, 0, 0]) | home).to_string()
            };
            let action = HUMAN_ACTIONS[(rng.next_u32() as usize) % HUMAN_ACTIONS.len()];
            let mut call = ApiCall::new(t, &identity, action, &ip, serial);
            call.user_agent = if action == "ConsoleLogin" {
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15".into()
            } else {
                "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off".into()
            };
            if rng.next_u32() % 16 == 0 {
                call.error_code = Some(ERRORS[(rng.next_u32() as usize) % ERRORS.len()].into());
            }
            call
        } else if share < CI_SHARE + HUMAN_SHARE + SERVICE_SHARE {
            crate::traffic::service_call(t, serial)
        } else {
            let ip = std::net::Ipv4Addr::from(
                u32::from_be_bytes([73, 0, 0, 0]) | (t.div_euclid(24 * HOUR_MS) as u32 & 0xffff),
            )
            .to_string();
            let action = ROOT_ACTIONS[(rng.next_u32() as usize) % ROOT_ACTIONS.len()];
            ApiCall::new(t, &Identity::Root, action, &ip, serial)
        };
        elements(&mut call, &mut rng);
        emit(&call);
    }
    episodes
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::Profile;

    fn config(events: u64) -> TrafficConfig {
        TrafficConfig {
            events,
            ..TrafficConfig::for_profile(Profile::Org)
        }
    }

    #[test]
    fn the_shape_of_an_organisation() {
        let config = config(200_000);
        let mut per_identity: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
        let (mut amazon, mut failed, mut root, mut total, mut bytes) = (0u64, 0u64, 0u64, 0u64, 0);
        let mut times = Vec::new();
        let episodes = generate(&config, &mut |c| {
            total += 1;
            times.push(c.time_ms);
            bytes += c.to_json().to_string().len();
            if c.ip.starts_with("3.") || c.ip.starts_with("18.") || c.ip.ends_with("amazonaws.com")
            {
                amazon += 1;
            }
            failed += u64::from(c.error_code.is_some());
            let name = match &c.identity {
                Identity::Role { role, .. } => role.clone(),
                Identity::User { name } => name.clone(),
                Identity::Root => {
                    root += 1;
                    "root".into()
                }
            };
            let entry = per_identity.entry(name).or_default();
            entry.0 += 1;
            entry.1.insert(c.ip.clone());
        });
        assert_eq!(total, 200_000);
        assert_eq!(episodes.len(), 3);
        assert!(
            times.windows(2).all(|w| w[0] <= w[1] + 60_000),
            "time order"
        );
        assert!(
            (0.40..0.60).contains(&(amazon as f64 / total as f64)),
            "about half from Amazon: {amazon} of {total}"
        );
        assert!(
            (0.01..0.06).contains(&(failed as f64 / total as f64)),
            "{failed}"
        );
        assert!(root > 1_000, "root activity: {root}");
        assert!(
            per_identity.len() >= 250,
            "{} identities",
            per_identity.len()
        );
        // Heavy-tailed: the busiest CI role makes far more calls than the
        // median one.
        let mut ci: Vec<u64> = per_identity
            .iter()
            .filter(|(k, _)| k.starts_with("ci-role-"))
            .map(|(_, v)| v.0)
            .collect();
        ci.sort_unstable();
        assert!(ci[ci.len() - 1] > 20 * ci[ci.len() / 2], "{ci:?}");
        // Busy humans on dynamic addresses: hundreds of distinct addresses.
        let busiest_human = per_identity
            .iter()
            .filter(|(k, _)| k.starts_with("user-"))
            .map(|(_, v)| v.1.len())
            .max()
            .unwrap_or(0);
        assert!(busiest_human >= 300, "{busiest_human}");
        // Real record sizes.
        let mean = bytes / total as usize;
        assert!((700..2_000).contains(&mean), "mean record {mean} bytes");
    }

    #[test]
    fn seeded() {
        let config = config(5_000);
        let mut first = Vec::new();
        let a = generate(&config, &mut |c| first.push(c.to_json()));
        let mut second = Vec::new();
        let b = generate(&config, &mut |c| second.push(c.to_json()));
        assert_eq!((first, a), (second, b));
    }
}
