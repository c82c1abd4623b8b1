//! Realistic CloudTrail traffic at scale, seeded: CI roles calling from
//! Amazon's networks, humans from a residential ISP, AWS services, and
//! attack episodes (stolen CI credentials replayed from a Tor exit), with
//! the ground truth of what each rule should catch.
//!
//! Addresses come from real rows of the DB-IP / RouteViews table (see
//! `tests/data/asn/`): Amazon 3.80.0.0/12 and 18.204.0.0/14 (AS14618),
//! Comcast 73.0.0.0/8 (AS7922), a Tor exit operator 185.220.101.0/24
//! (AS60729).

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};
use trailguard_rule_sdk::format_timestamp_ms;

use crate::{ApiCall, HOUR_MS, Identity};

/// The shape of the traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// CI roles (70%) from Amazon, humans (20%) each at one home address,
    /// AWS services: the easy profile `trailguard bench` has always used.
    #[default]
    Ci,
    /// An organisation: hundreds of identities at heavy-tailed rates,
    /// humans on dynamic residential addresses, CI on several clouds, root
    /// and console activity, failures, real record sizes (see `org.rs`).
    Org,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct TrafficConfig {
    /// The shape.
    pub profile: Profile,
    /// Seed: the same seed gives the same records.
    pub seed: u64,
    /// Records to generate (attack records included).
    pub events: u64,
    /// Days of event time covered.
    pub days: u32,
    /// CI roles (`Ci`: 70% of the traffic, from Amazon).
    pub ci_roles: u32,
    /// Humans (`Ci`: 20%, from Comcast).
    pub humans: u32,
    /// Attack episodes, spread over the days after the first ten.
    pub attacks: u32,
    /// Time of the first record, ms since the epoch.
    pub start_ms: i64,
}

impl TrafficConfig {
    /// The defaults of `profile`: `Ci` as [`TrafficConfig::default`];
    /// `Org` 1M records over 9 days by 80 CI roles and 220 humans.
    pub fn for_profile(profile: Profile) -> Self {
        match profile {
            Profile::Ci => TrafficConfig::default(),
            Profile::Org => TrafficConfig {
                profile,
                events: 1_000_000,
                days: 9,
                ci_roles: 80,
                humans: 220,
                ..TrafficConfig::default()
            },
        }
    }
}

impl Default for TrafficConfig {
    fn default() -> Self {
        TrafficConfig {
            profile: Profile::Ci,
            seed: 1,
            events: 100_000,
            days: 14,
            ci_roles: 20,
            humans: 50,
            attacks: 3,
            // 2026-04-01T00:00:00Z
            start_ms: 1_775_001_600_000,
        }
    }
}

/// One injected attack and what should catch it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Episode {
    /// Whether `aws-unusual-asn` should alert: not while the role is still
    /// being learned (its first 10 days), nor when the same role was
    /// attacked from the same network less than 10 days before.
    pub unusual: bool,
    /// The CI role whose credentials were stolen.
    pub role: String,
    /// Time of the attacker's first call.
    pub first_call_ms: i64,
    /// The attacker's address.
    pub attacker_ip: String,
    /// The attacker's calls.
    pub actions: Vec<String>,
}

impl Episode {
    /// The ground truth as JSON: `aws-sensitive-untrusted-asn` alerts at the
    /// next whole hour, `aws-unusual-asn` on the first call (or not at all:
    /// `null`).
    pub fn to_json(&self) -> Value {
        let hour = (self.first_call_ms.div_euclid(HOUR_MS) + 1) * HOUR_MS;
        json!({
            "user.name": self.role,
            "source.ip": self.attacker_ip,
            "event.action": self.actions,
            "first_call": format_timestamp_ms(self.first_call_ms),
            "expected": {
                "aws-sensitive-untrusted-asn": format_timestamp_ms(hour),
                "aws-unusual-asn": self.unusual.then(|| format_timestamp_ms(self.first_call_ms)),
            },
        })
    }
}

const CI_ACTIONS: [&str; 6] = [
    "DescribeInstances",
    "GetObject",
    "PutObject",
    "AssumeRole",
    "UpdateFunctionCode20150331v2",
    "DescribeInstances",
];
const HUMAN_ACTIONS: [&str; 4] = [
    "ListBuckets",
    "DescribeInstances",
    "GetCallerIdentity",
    "ConsoleLogin",
];
pub(crate) const ATTACK_ACTIONS: [&str; 3] = ["GetCallerIdentity", "ListBuckets", "GetSecretValue"];

/// A random address in `base`'s network of `host_bits` host bits.
pub(crate) fn ip_in(rng: &mut ChaCha8Rng, base: [u8; 4], host_bits: u32) -> String {
    let offset = rng.next_u32() & ((1u32 << host_bits) - 1);
    let ip = u32::from_be_bytes(base) | offset;
    std::net::Ipv4Addr::from(ip).to_string()
}

/// Generates the records of `config`'s profile in time order, handing each
/// to `emit`; returns the attack episodes.
pub fn generate(config: &TrafficConfig, emit: &mut dyn FnMut(&ApiCall)) -> Vec<Episode> {
    match config.profile {
        Profile::Ci => generate_ci(config, emit),
        Profile::Org => crate::org::generate(config, emit),
    }
}

/// Which rules an episode should make alert: `aws-unusual-asn` not while
/// the role is still being learned (its first 10 days, plus an hour for
/// its first calls), nor when the same role was attacked less than 10 days
/// before. `episodes` are in time order.
pub(crate) fn mark_unusual(episodes: &mut [Episode], start_ms: i64) {
    let learned = 10 * 24 * HOUR_MS + HOUR_MS;
    for i in 0..episodes.len() {
        let repeat = episodes[..i].iter().any(|p| {
            p.role == episodes[i].role
                && episodes[i].first_call_ms - p.first_call_ms <= 10 * 24 * HOUR_MS
        });
        episodes[i].unusual = !repeat && episodes[i].first_call_ms - start_ms >= learned;
    }
}

/// The attack episodes of `config`: after `history`, evenly spread over
/// the rest of the span, each on one of the first `roles` CI roles, in time
/// order and marked as [`mark_unusual`] says.
pub(crate) fn plan_episodes(
    rng: &mut ChaCha8Rng,
    config: &TrafficConfig,
    history: i64,
    roles: u32,
) -> Vec<Episode> {
    let span = i64::from(config.days.max(1)) * 24 * HOUR_MS;
    let mut episodes: Vec<Episode> = (0..config.attacks)
        .map(|i| {
            let at = config.start_ms
                + history
                + (span - history) * i64::from(i + 1) / i64::from(config.attacks + 1);
            Episode {
                role: format!("ci-role-{}", rng.next_u32() % roles.max(1)),
                first_call_ms: at + 17_000,
                attacker_ip: ip_in(rng, [185, 220, 101, 0], 8),
                actions: ATTACK_ACTIONS.map(String::from).to_vec(),
                unusual: false,
            }
        })
        .collect();
    episodes.sort_by_key(|e| e.first_call_ms);
    mark_unusual(&mut episodes, config.start_ms);
    episodes
}

/// Emits the attacker's calls of `episode`, 20 s apart; returns the last
/// serial used.
pub(crate) fn emit_episode(
    episode: &Episode,
    mut serial: u64,
    emit: &mut dyn FnMut(&ApiCall),
) -> u64 {
    let identity = Identity::Role {
        role: episode.role.clone(),
        session: "stolen-session".into(),
    };
    for (k, action) in episode.actions.iter().enumerate() {
        serial += 1;
        let mut call = ApiCall::new(
            episode.first_call_ms + 20_000 * k as i64,
            &identity,
            action,
            &episode.attacker_ip,
            serial,
        );
        call.user_agent = "aws-cli/2.13.0 Python/3.11.4 Darwin/23.1.0 exe/x86_64".into();
        emit(&call);
    }
    serial
}

/// An AWS service calling on a role's behalf (Auto Scaling launching an
/// instance): no address, its service name instead.
pub(crate) fn service_call(time_ms: i64, serial: u64) -> ApiCall {
    let identity = Identity::Role {
        role: "AWSServiceRoleForAutoScaling".into(),
        session: "AutoScaling".into(),
    };
    ApiCall::new(
        time_ms,
        &identity,
        "RunInstances",
        "autoscaling.amazonaws.com",
        serial,
    )
}

/// The default profile: 70% CI roles from Amazon, 20% humans each at one
/// home address, 10% AWS services.
fn generate_ci(config: &TrafficConfig, emit: &mut dyn FnMut(&ApiCall)) -> Vec<Episode> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let span = i64::from(config.days.max(1)) * 24 * HOUR_MS;
    let attack_calls = u64::from(config.attacks) * ATTACK_ACTIONS.len() as u64;
    let routine = config.events.saturating_sub(attack_calls).max(1);
    let step = span / routine as i64;
    // Attacks after ten days (rule B's learning period, plus an hour for
    // the roles' first calls), evenly spread over the rest; shorter spans
    // put them in the second half, where rule B is still learning.
    let learned = 10 * 24 * HOUR_MS + HOUR_MS;
    let history = if span > learned + 24 * HOUR_MS {
        learned
    } else {
        span / 2
    };
    let episodes = plan_episodes(&mut rng, config, history, config.ci_roles);
    let mut next_episode = 0;
    let mut serial = 0u64;
    for i in 0..routine {
        let t = config.start_ms + i as i64 * step;
        while let Some(e) = episodes.get(next_episode).filter(|e| e.first_call_ms <= t) {
            serial = emit_episode(e, serial, emit);
            next_episode += 1;
        }
        serial += 1;
        let pick = rng.next_u32() % 100;
        let call = if pick < 70 {
            let role = rng.next_u32() % config.ci_roles.max(1);
            let identity = Identity::Role {
                role: format!("ci-role-{role}"),
                session: format!("job-{}", i / 50),
            };
            let ip = if rng.next_u32() % 2 == 0 {
                ip_in(&mut rng, [3, 80, 0, 0], 20)
            } else {
                ip_in(&mut rng, [18, 204, 0, 0], 18)
            };
            ApiCall::new(
                t,
                &identity,
                CI_ACTIONS[(rng.next_u32() % 6) as usize],
                &ip,
                serial,
            )
        } else if pick < 90 {
            let human = rng.next_u32() % config.humans.max(1);
            let identity = Identity::User {
                name: format!("user-{human}"),
            };
            // Each human keeps a home address.
            let ip = std::net::Ipv4Addr::from(
                u32::from_be_bytes([73, 0, 0, 0]) | (human * 7919 % 0xff_ffff),
            )
            .to_string();
            let mut call = ApiCall::new(
                t,
                &identity,
                HUMAN_ACTIONS[(rng.next_u32() % 4) as usize],
                &ip,
                serial,
            );
            if rng.next_u32() % 50 == 0 {
                call.error_code = Some("AccessDenied".into());
            }
            call
        } else {
            service_call(t, serial)
        };
        emit(&call);
    }
    episodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_time_ordered_and_with_the_asked_volume() {
        let config = TrafficConfig {
            events: 20_000,
            ..TrafficConfig::default()
        };
        let mut times = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let episodes = generate(&config, &mut |c| {
            times.push(c.time_ms);
            ids.insert(c.event_id());
        });
        assert_eq!(times.len(), 20_000);
        assert_eq!(ids.len(), 20_000, "event ids are unique");
        assert_eq!(episodes.len(), 3);
        assert!(
            times.windows(2).all(|w| w[0] <= w[1] + 60_000),
            "in time order (attacks within a minute)"
        );
        let mut again = Vec::new();
        let same = generate(&config, &mut |c| again.push(c.time_ms));
        assert_eq!(
            (again, same),
            (times, episodes),
            "the same seed gives the same records"
        );
    }
}
