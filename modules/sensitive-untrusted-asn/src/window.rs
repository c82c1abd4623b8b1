//! Per-identity sliding-window aggregates and the hourly evaluation.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trailguard_rule_sdk::time::{DAY_MS, ceil_to, floor_to};
use trailguard_rule_sdk::{Alert, AlertBuilder, Event, Outcome, format_timestamp_ms, snapshot};

use crate::{Config, RULE_ID};

/// Version of the snapshot's state layout; bump it when `State` changes.
/// Format 1 (source IPs as text) is migrated on restore.
const STATE_FORMAT: u32 = 2;

/// `(user.name, identity type)`; a missing identity type is its own group.
type GroupKey = (String, Option<String>);

/// An untrusted event, kept so an alert can list it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct UntrustedEvent {
    timestamp_ms: i64,
    event_id: Option<String>,
    source_ip: Option<String>,
    organization: String,
    action: Option<String>,
}

/// A `source.ip`, parsed: sets of numbers compare and serialize faster
/// than sets of text. The trailguard host only sends literal addresses, in
/// canonical form; anything else is kept as text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum SourceIp {
    Ip(IpAddr),
    Text(String),
}

impl SourceIp {
    fn of(text: &str) -> SourceIp {
        text.parse()
            .map_or_else(|_| SourceIp::Text(text.to_owned()), SourceIp::Ip)
    }
}

impl std::fmt::Display for SourceIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceIp::Ip(ip) => ip.fmt(f),
            SourceIp::Text(text) => f.write_str(text),
        }
    }
}

/// What one identity did within one slot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Slot {
    total: u64,
    trusted: u64,
    untrusted: u64,
    untrusted_sensitive: u64,
    latest_untrusted_ms: Option<i64>,
    organizations: BTreeSet<String>,
    user_agents: BTreeSet<String>,
    related_users: BTreeSet<String>,
    source_ips: BTreeSet<SourceIp>,
    untrusted_sensitive_actions: BTreeSet<String>,
    /// The newest untrusted events of the slot, at most the alert's limit.
    untrusted_events: Vec<UntrustedEvent>,
}

/// One identity's slots and the evaluation times it is a candidate for.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Group {
    slots: BTreeMap<i64, Slot>,
    candidate_for: BTreeSet<i64>,
}

/// The groups of one `user.name`, by identity type (usually one or two), so
/// the per-event look-up borrows the event's strings instead of allocating.
type ByIdentityType = Vec<(Option<String>, Group)>;

/// The rule's whole state; this is what a snapshot holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    groups: BTreeMap<String, ByIdentityType>,
    /// Evaluation time → identities that may alert then.
    candidates: BTreeMap<i64, BTreeSet<GroupKey>>,
    /// Every evaluation time strictly below this has run.
    evaluated_before_ms: i64,
    /// Expired slots were last swept at this watermark.
    swept_at_ms: i64,
}

/// State format 1: as now, but source IPs held as text.
mod v1 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub(super) struct Slot {
        pub(super) total: u64,
        pub(super) trusted: u64,
        pub(super) untrusted: u64,
        pub(super) untrusted_sensitive: u64,
        pub(super) latest_untrusted_ms: Option<i64>,
        pub(super) organizations: BTreeSet<String>,
        pub(super) user_agents: BTreeSet<String>,
        pub(super) related_users: BTreeSet<String>,
        pub(super) source_ips: BTreeSet<String>,
        pub(super) untrusted_sensitive_actions: BTreeSet<String>,
        pub(super) untrusted_events: Vec<UntrustedEvent>,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct Group {
        pub(super) slots: BTreeMap<i64, Slot>,
        pub(super) candidate_for: BTreeSet<i64>,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct State {
        pub(super) groups: BTreeMap<String, Vec<(Option<String>, Group)>>,
        pub(super) candidates: BTreeMap<i64, BTreeSet<GroupKey>>,
        pub(super) evaluated_before_ms: i64,
        pub(super) swept_at_ms: i64,
    }

    impl From<State> for super::State {
        fn from(old: State) -> super::State {
            let slot = |s: Slot| super::Slot {
                total: s.total,
                trusted: s.trusted,
                untrusted: s.untrusted,
                untrusted_sensitive: s.untrusted_sensitive,
                latest_untrusted_ms: s.latest_untrusted_ms,
                organizations: s.organizations,
                user_agents: s.user_agents,
                related_users: s.related_users,
                source_ips: s.source_ips.iter().map(|ip| SourceIp::of(ip)).collect(),
                untrusted_sensitive_actions: s.untrusted_sensitive_actions,
                untrusted_events: s.untrusted_events,
            };
            super::State {
                groups: old
                    .groups
                    .into_iter()
                    .map(|(user, types)| {
                        let types = types
                            .into_iter()
                            .map(|(kind, g)| {
                                let group = super::Group {
                                    slots: g.slots.into_iter().map(|(k, s)| (k, slot(s))).collect(),
                                    candidate_for: g.candidate_for,
                                };
                                (kind, group)
                            })
                            .collect();
                        (user, types)
                    })
                    .collect(),
                candidates: old.candidates,
                evaluated_before_ms: old.evaluated_before_ms,
                swept_at_ms: old.swept_at_ms,
            }
        }
    }
}

/// The detector: configuration, derived look-up tables and state.
pub struct Detector {
    config: Config,
    sensitive: HashSet<String>,
    trusted_orgs: HashSet<String>,
    state: State,
}

/// `slot` index of a timestamp for an interval (see the crate docs).
fn slot_of(t: i64, interval: i64) -> i64 {
    let start = floor_to(t, interval);
    let k = t.div_euclid(interval);
    if t == start { 2 * k } else { 2 * k + 1 }
}

/// Sweep expired slots at most once per this much event time.
const SWEEP_EVERY_MS: i64 = DAY_MS;

impl Detector {
    /// A detector with empty state.
    pub fn new(config: Config) -> Detector {
        let fold = |s: &String| {
            if config.case_insensitive_orgs {
                s.to_ascii_lowercase()
            } else {
                s.clone()
            }
        };
        Detector {
            sensitive: config.sensitive_actions.iter().cloned().collect(),
            trusted_orgs: config.trusted_orgs.iter().map(fold).collect(),
            state: State {
                evaluated_before_ms: i64::MIN,
                swept_at_ms: i64::MIN,
                ..State::default()
            },
            config,
        }
    }

    fn is_trusted(&self, organization: &str, asn: Option<u32>) -> bool {
        if asn.is_some_and(|n| self.config.trusted_asns.contains(&n)) {
            return true;
        }
        if self.config.case_insensitive_orgs {
            let lower = organization.to_ascii_lowercase();
            self.trusted_orgs.contains(&lower)
                || self
                    .config
                    .trusted_org_prefixes
                    .iter()
                    .any(|p| lower.starts_with(&p.to_ascii_lowercase()))
        } else {
            self.trusted_orgs.contains(organization)
                || self
                    .config
                    .trusted_org_prefixes
                    .iter()
                    .any(|p| organization.starts_with(p.as_str()))
        }
    }

    /// Adds one event to its identity's window, if the rule counts it.
    pub fn observe(&mut self, event: &Event<'_>) {
        let (Some(user), Some(organization)) = (event.user_name, event.source_as_organization)
        else {
            return;
        };
        if event.outcome != Outcome::Success {
            return;
        }
        let t = event.timestamp_ms;
        let interval = self.config.interval_ms();
        // An event no future evaluation can see is dropped.
        if t < self
            .state
            .evaluated_before_ms
            .saturating_sub(self.config.window_ms() + interval)
        {
            return;
        }
        let trusted = self.is_trusted(organization, event.source_as_number);
        let sensitive = event
            .event_action
            .is_some_and(|a| self.sensitive.contains(a));
        let cap = self.config.max_untrusted_events_in_alert;

        let group = group_mut(&mut self.state.groups, user, event.identity_type);
        let slot = group.slots.entry(slot_of(t, interval)).or_default();
        slot.total += 1;
        insert_str(&mut slot.organizations, Some(organization));
        insert_str(&mut slot.user_agents, event.user_agent);
        insert_str(&mut slot.related_users, event.user_changes_name);
        if let Some(ip) = event.source_ip {
            slot.source_ips.insert(SourceIp::of(ip));
        }
        if trusted {
            slot.trusted += 1;
            return;
        }
        slot.untrusted += 1;
        slot.latest_untrusted_ms = slot.latest_untrusted_ms.max(Some(t));
        if sensitive {
            slot.untrusted_sensitive += 1;
            insert_str(&mut slot.untrusted_sensitive_actions, event.event_action);
        }
        if cap > 0 {
            if slot.untrusted_events.len() == cap {
                // Keep the newest: replace the oldest if this one is newer.
                if let Some((i, oldest)) = slot
                    .untrusted_events
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| e.timestamp_ms)
                    && oldest.timestamp_ms < t
                {
                    slot.untrusted_events.swap_remove(i);
                }
            }
            if slot.untrusted_events.len() < cap {
                slot.untrusted_events.push(UntrustedEvent {
                    timestamp_ms: t,
                    event_id: event.event_id.map(str::to_owned),
                    source_ip: event.source_ip.map(str::to_owned),
                    organization: organization.to_owned(),
                    action: event.event_action.map(str::to_owned),
                });
            }
        }

        // Candidate for every evaluation T (a multiple of the interval) with
        // T - recency <= t <= T that has not run yet.
        let first = ceil_to(t, interval);
        let last = t.saturating_add(self.config.recency_ms());
        let mut at = first.max(ceil_to(self.state.evaluated_before_ms, interval));
        while at <= last {
            if group.candidate_for.insert(at) {
                let key = (user.to_owned(), event.identity_type.map(str::to_owned));
                self.state.candidates.entry(at).or_default().insert(key);
            }
            at += interval;
        }
    }

    /// Runs every evaluation with T < `watermark_ms` that has candidates, in
    /// time order, and returns their alerts.
    pub fn advance(&mut self, watermark_ms: i64) -> Vec<Alert> {
        let mut alerts = Vec::new();
        while let Some(entry) = self.state.candidates.first_entry() {
            if *entry.key() >= watermark_ms {
                break;
            }
            let (at, keys) = entry.remove_entry();
            for key in keys {
                if let Some(group) = self
                    .state
                    .groups
                    .get_mut(&key.0)
                    .and_then(|types| types.iter_mut().find(|(t, _)| *t == key.1))
                    .map(|(_, g)| g)
                {
                    group.candidate_for.remove(&at);
                    if let Some(alert) = evaluate(&self.config, &key, group, at) {
                        alerts.push(alert);
                    }
                }
            }
        }
        self.state.evaluated_before_ms = self.state.evaluated_before_ms.max(watermark_ms);
        if watermark_ms != i64::MAX
            && watermark_ms.saturating_sub(self.state.swept_at_ms) >= SWEEP_EVERY_MS
        {
            self.sweep(watermark_ms);
        }
        alerts
    }

    /// Drops slots no future evaluation can see, identities left empty, and
    /// untrusted events no future alert can list.
    ///
    /// Every evaluation still to run is at a T >= `watermark_ms`, so it sees
    /// every slot up to `slot_of(watermark_ms)` whole; an alert lists the
    /// newest `max_untrusted_events_in_alert` of its window, so once that
    /// many are kept in such slots, the older slots' events can never be
    /// listed. (An identity whose traffic is all untrusted, a human on a
    /// home network, would otherwise keep every event of the window.)
    fn sweep(&mut self, watermark_ms: i64) {
        let interval = self.config.interval_ms();
        let next = ceil_to(watermark_ms, interval);
        let oldest_needed = slot_of(next - self.config.window_ms(), interval);
        let seen_whole = slot_of(watermark_ms, interval);
        let cap = self.config.max_untrusted_events_in_alert;
        self.state.groups.retain(|_, types| {
            types.retain_mut(|(_, g)| {
                g.slots = g.slots.split_off(&oldest_needed);
                let mut newer = 0;
                for (_, slot) in g.slots.range_mut(..=seen_whole).rev() {
                    if newer >= cap {
                        slot.untrusted_events = Vec::new();
                    } else {
                        newer += slot.untrusted_events.len();
                    }
                }
                !g.slots.is_empty() || !g.candidate_for.is_empty()
            });
            !types.is_empty()
        });
        self.state.swept_at_ms = watermark_ms;
    }

    /// The state as bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(RULE_ID, STATE_FORMAT, &self.state)
    }

    /// Replaces the state with a snapshot's (of this format or format 1).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.state = snapshot::decode_or_migrate(RULE_ID, STATE_FORMAT, bytes, |format, old| {
            if format != 1 {
                return Err(format!(
                    "snapshot has state format {format}; this version of `{RULE_ID}` reads formats 1 and {STATE_FORMAT}"
                ));
            }
            postcard::from_bytes::<v1::State>(old)
                .map(State::from)
                .map_err(|e| format!("snapshot of `{RULE_ID}` (format 1) is corrupt: {e}"))
        })?;
        Ok(())
    }

    /// Untrusted events held for listing in alerts (for tests of eviction).
    pub fn untrusted_events_held(&self) -> usize {
        self.state
            .groups
            .values()
            .flatten()
            .flat_map(|(_, g)| g.slots.values())
            .map(|s| s.untrusted_events.len())
            .sum()
    }

    /// Number of identities held (for tests of eviction).
    pub fn identities(&self) -> usize {
        self.state.groups.values().map(Vec::len).sum()
    }
}

/// The group of `(user, identity_type)`, created if new; allocates only then.
fn group_mut<'g>(
    groups: &'g mut BTreeMap<String, ByIdentityType>,
    user: &str,
    identity_type: Option<&str>,
) -> &'g mut Group {
    if !groups.contains_key(user) {
        groups.insert(user.to_owned(), Vec::new());
    }
    let types = groups.get_mut(user).expect("inserted above");
    let i = match types
        .iter()
        .position(|(t, _)| t.as_deref() == identity_type)
    {
        Some(i) => i,
        None => {
            types.push((identity_type.map(str::to_owned), Group::default()));
            types.len() - 1
        }
    };
    &mut types[i].1
}

fn insert_str(set: &mut BTreeSet<String>, value: Option<&str>) {
    if let Some(v) = value
        && !set.contains(v)
    {
        set.insert(v.to_owned());
    }
}

/// Evaluates one identity at `at`; `Some(alert)` when every condition holds.
fn evaluate(config: &Config, key: &GroupKey, group: &Group, at: i64) -> Option<Alert> {
    let interval = config.interval_ms();
    let range = slot_of(at - config.window_ms(), interval)..=slot_of(at, interval);

    // Counts first: they are cheap and rule out most identities.
    let (mut total, mut trusted, mut untrusted, mut untrusted_sensitive) = (0u64, 0u64, 0u64, 0u64);
    let mut latest_untrusted: Option<i64> = None;
    for slot in group.slots.range(range.clone()).map(|(_, s)| s) {
        total += slot.total;
        trusted += slot.trusted;
        untrusted += slot.untrusted;
        untrusted_sensitive += slot.untrusted_sensitive;
        latest_untrusted = latest_untrusted.max(slot.latest_untrusted_ms);
    }
    let ratio = untrusted as f64 / total as f64;
    let recent = latest_untrusted.is_some_and(|l| l >= at - config.recency_ms());
    if trusted < config.min_trusted_events
        || untrusted < config.min_untrusted_events
        || ratio > config.max_untrusted_ratio
        || !recent
    {
        return None;
    }
    let slots = || group.slots.range(range.clone()).map(|(_, s)| s);
    let union = |pick: fn(&Slot) -> &BTreeSet<String>| -> BTreeSet<&str> {
        slots()
            .flat_map(|s| pick(s).iter().map(String::as_str))
            .collect()
    };
    let actions = union(|s| &s.untrusted_sensitive_actions);
    if actions.len() < config.min_distinct_sensitive_actions {
        return None;
    }
    let organizations = union(|s| &s.organizations);
    if organizations.len() > config.max_distinct_organizations {
        return None;
    }

    let mut listed: Vec<&UntrustedEvent> = slots().flat_map(|s| &s.untrusted_events).collect();
    listed.sort_by(|a, b| {
        b.timestamp_ms
            .cmp(&a.timestamp_ms)
            .then(a.event_id.cmp(&b.event_id))
    });
    listed.truncate(config.max_untrusted_events_in_alert);
    let truncated = (listed.len() as u64) < untrusted;
    let untrusted_events: Vec<Value> = listed
        .iter()
        .map(|e| {
            json!({
                "@timestamp": format_timestamp_ms(e.timestamp_ms),
                "event.id": e.event_id,
                "event.action": e.action,
                "source.ip": e.source_ip,
                "source.as.organization.name": e.organization,
            })
        })
        .collect();

    // One sentence for the alert list: who, what, from where, how rare.
    let mut networks: BTreeSet<String> = BTreeSet::new();
    for e in &listed {
        let network = if e.organization.is_empty() {
            "an unknown network"
        } else {
            e.organization.as_str()
        };
        networks.insert(match &e.source_ip {
            Some(ip) => format!("{network} ({ip})"),
            None => network.to_owned(),
        });
    }
    let reason = format!(
        "{} ({}), whose calls come from cloud providers ({trusted} in the window), made {} sensitive call(s) ({}) from {}: {untrusted} of {total} calls ({:.1}%)",
        if key.0.is_empty() {
            "an identity"
        } else {
            key.0.as_str()
        },
        key.1.as_deref().unwrap_or("unknown type"),
        untrusted_sensitive,
        actions.iter().copied().collect::<Vec<_>>().join(", "),
        networks.into_iter().collect::<Vec<_>>().join(", "),
        ratio * 100.0
    );
    let alert = AlertBuilder::new(at)
        .field("kibana.alert.reason", reason)
        .field("user.name", &key.0)
        .field("aws.cloudtrail.user_identity.type", &key.1)
        .field("Esql.total_events_all_asns", total)
        .field("Esql.count_distinct_asns", organizations.len())
        .field("Esql.src_asn_values", &organizations)
        .field("Esql.user_agent_values", union(|s| &s.user_agents))
        .field("Esql.related_users", union(|s| &s.related_users))
        .field(
            "Esql.source_ip_values",
            slots()
                .flat_map(|s| s.source_ips.iter().map(SourceIp::to_string))
                .collect::<BTreeSet<String>>(),
        )
        .field("Esql.has_trusted_cloud_asn", trusted > 0)
        .field("Esql.trusted_cloud_event_count", trusted)
        .field("Esql.untrusted_event_count", untrusted)
        .field("Esql.untrusted_suspicious_count", untrusted_sensitive)
        .field("Esql.untrusted_suspicious_actions", &actions)
        .field(
            "Esql.most_recent_low_asn_day",
            latest_untrusted.map(format_timestamp_ms),
        )
        .field("Esql.rare_asn_ratio", ratio)
        .field("Esql.unique_action_from_untrusted_asn", actions.len())
        .field(
            "trailguard.window.start",
            format_timestamp_ms(at - config.window_ms()),
        )
        .field("trailguard.window.end", format_timestamp_ms(at))
        .field("trailguard.untrusted_events", untrusted_events)
        .field("trailguard.untrusted_events_truncated", truncated)
        .build();
    Some(alert)
}

#[cfg(test)]
mod migration {
    use super::*;
    use crate::Preset;

    #[test]
    fn a_format_1_snapshot_restores_with_its_source_ips_parsed() {
        let slot = v1::Slot {
            total: 3,
            trusted: 2,
            untrusted: 1,
            untrusted_sensitive: 0,
            latest_untrusted_ms: Some(5),
            organizations: ["Amazon.com, Inc.".to_owned()].into(),
            user_agents: BTreeSet::new(),
            related_users: BTreeSet::new(),
            source_ips: ["203.0.113.9".to_owned(), "not an address".to_owned()].into(),
            untrusted_sensitive_actions: BTreeSet::new(),
            untrusted_events: Vec::new(),
        };
        let group = v1::Group {
            slots: [(7, slot)].into(),
            candidate_for: BTreeSet::new(),
        };
        let old = v1::State {
            groups: [(
                "ci".to_owned(),
                vec![(Some("AssumedRole".to_owned()), group)],
            )]
            .into(),
            candidates: BTreeMap::new(),
            evaluated_before_ms: 11,
            swept_at_ms: 13,
        };
        let bytes = snapshot::encode(RULE_ID, 1, &old);
        let mut detector = Detector::new(Config::preset(Preset::ElasticCompatible));
        detector.restore(&bytes).expect("format 1 migrates");
        let restored = &detector.state.groups["ci"][0].1.slots[&7];
        assert_eq!(restored.total, 3);
        assert_eq!(
            restored.source_ips,
            [
                SourceIp::Ip("203.0.113.9".parse().expect("ip")),
                SourceIp::Text("not an address".into())
            ]
            .into()
        );
        assert_eq!(detector.state.evaluated_before_ms, 11);

        let future = snapshot::encode(RULE_ID, 3, &old);
        let refused = detector.restore(&future).expect_err("format 3 is unknown");
        assert!(refused.contains("reads formats 1 and 2"), "{refused}");
    }
}
