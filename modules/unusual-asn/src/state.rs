//! Identities, the networks they use, and the events held until the
//! watermark passes them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use trailguard_rule_sdk::serde_json::{Value, json};
use trailguard_rule_sdk::time::{DAY_MS, floor_to};
use trailguard_rule_sdk::window::WindowedCount;
use trailguard_rule_sdk::{Alert, AlertBuilder, Event, Outcome, format_timestamp_ms, snapshot};

use crate::{Config, RULE_ID, Term};

/// Version of the snapshot's state layout; bump it when `State` changes.
const STATE_FORMAT: u32 = 1;

/// A counted event, owned, waiting for the watermark.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Held {
    account: Option<String>,
    user: String,
    identity_type: Option<String>,
    as_number: u32,
    organization: Option<String>,
    source_ip: Option<String>,
    action: Option<String>,
}

/// One network of one identity.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Network {
    last_seen_ms: i64,
    as_number: u32,
    organization: Option<String>,
    /// Calls per day, for "usual networks".
    daily: WindowedCount,
}

/// One identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Identity {
    account: Option<String>,
    identity_type: Option<String>,
    first_seen_ms: i64,
    networks: BTreeMap<String, Network>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    /// `user.name` → its identities (usually one per account and type).
    identities: BTreeMap<String, Vec<Identity>>,
    /// Events not yet processed, in processing order: (time, event id, arrival).
    held: BTreeMap<(i64, String, u64), Held>,
    arrivals: u64,
    swept_at_ms: i64,
}

/// The detector.
pub struct Detector {
    config: Config,
    state: State,
}

impl Detector {
    /// A detector with empty state.
    pub fn new(config: Config) -> Detector {
        Detector {
            config,
            state: State {
                swept_at_ms: i64::MIN,
                ..State::default()
            },
        }
    }

    /// Holds a counted event (successful, with an AS number and a user
    /// name) until the watermark passes it.
    pub fn hold(&mut self, event: &Event<'_>) {
        let (Some(user), Some(as_number)) = (event.user_name, event.source_as_number) else {
            return;
        };
        if event.outcome != Outcome::Success {
            return;
        }
        self.state.arrivals += 1;
        let key = (
            event.timestamp_ms,
            event.event_id.unwrap_or_default().to_owned(),
            self.state.arrivals,
        );
        self.state.held.insert(
            key,
            Held {
                account: event.cloud_account_id.map(str::to_owned),
                user: user.to_owned(),
                identity_type: event.identity_type.map(str::to_owned),
                as_number,
                organization: event.source_as_organization.map(str::to_owned),
                source_ip: event.source_ip.map(str::to_owned),
                action: event.event_action.map(str::to_owned),
            },
        );
    }

    /// Processes every held event older than `watermark_ms`, in time order.
    pub fn advance(&mut self, watermark_ms: i64) -> Vec<Alert> {
        let mut alerts = Vec::new();
        while let Some(entry) = self.state.held.first_entry() {
            if entry.key().0 >= watermark_ms {
                break;
            }
            let ((t, event_id, _), held) = entry.remove_entry();
            if let Some(alert) = self.observe(t, &event_id, held) {
                alerts.push(alert);
            }
        }
        if watermark_ms != i64::MAX && watermark_ms.saturating_sub(self.state.swept_at_ms) >= DAY_MS
        {
            self.sweep(watermark_ms);
        }
        alerts
    }

    /// The network's key: borrowed from the event when it is the
    /// organization, so the common case allocates nothing.
    fn term<'h>(&self, held: &'h Held) -> Cow<'h, str> {
        match (&held.organization, self.config.term) {
            (Some(name), Term::Organization) => Cow::Borrowed(name.as_str()),
            _ => Cow::Owned(format!("AS{}", held.as_number)),
        }
    }

    fn ignored(&self, held: &Held) -> bool {
        self.config.ignore_asns.contains(&held.as_number)
            || held.organization.as_ref().is_some_and(|o| {
                let lower = o.to_ascii_lowercase();
                self.config.ignore_organizations.contains(&lower)
            })
    }

    /// One event, in time order: alert if its network is new for a learned
    /// identity, then remember the network.
    fn observe(&mut self, t: i64, event_id: &str, held: Held) -> Option<Alert> {
        let term = self.term(&held);
        let ignored = self.ignored(&held);
        let history = self.config.history_ms();
        let learning = self.config.learning_ms();
        let shown = self.config.usual_networks_shown;

        // Look-ups borrow the event's strings; only a new identity or
        // network allocates.
        if !self.state.identities.contains_key(held.user.as_str()) {
            self.state.identities.insert(held.user.clone(), Vec::new());
        }
        let identities = self
            .state
            .identities
            .get_mut(held.user.as_str())
            .expect("inserted above");
        let i = match identities
            .iter()
            .position(|id| id.account == held.account && id.identity_type == held.identity_type)
        {
            Some(i) => i,
            None => {
                identities.push(Identity {
                    account: held.account.clone(),
                    identity_type: held.identity_type.clone(),
                    first_seen_ms: t,
                    networks: BTreeMap::new(),
                });
                identities.len() - 1
            }
        };
        let identity = &mut identities[i];
        let previous = identity.networks.get(term.as_ref()).map(|n| n.last_seen_ms);
        let seen_recently = previous.is_some_and(|last| last >= t - history);
        let learned = t - identity.first_seen_ms >= learning;

        let alert = (!seen_recently && learned && !ignored).then(|| {
            alert(
                t, event_id, &held, identity, &term, previous, history, shown,
            )
        });

        if previous.is_none() {
            identity
                .networks
                .insert(term.clone().into_owned(), Network::default());
        }
        let network = identity
            .networks
            .get_mut(term.as_ref())
            .expect("inserted above");
        network.last_seen_ms = network.last_seen_ms.max(t);
        network.as_number = held.as_number;
        if network.organization != held.organization {
            network.organization.clone_from(&held.organization);
        }
        network.daily.add(t, DAY_MS, 1);
        identity.first_seen_ms = identity.first_seen_ms.min(t);
        alert
    }

    /// Forgets networks unseen for longer than the history window. The
    /// identity itself is kept (its key and when it was first seen, a few
    /// dozen bytes): an identity idle for longer than the window has still
    /// been learned, and its next call from anywhere is unusual.
    fn sweep(&mut self, watermark_ms: i64) {
        let horizon = watermark_ms - self.config.history_ms();
        for identity in self.state.identities.values_mut().flatten() {
            identity.networks.retain(|_, n| {
                n.daily.evict_before(horizon - DAY_MS);
                n.last_seen_ms >= horizon
            });
        }
        self.state.swept_at_ms = watermark_ms;
    }

    /// The state as bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(RULE_ID, STATE_FORMAT, &self.state)
    }

    /// Replaces the state with a snapshot's.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.state = snapshot::decode(RULE_ID, STATE_FORMAT, bytes)?;
        Ok(())
    }

    /// (identities, networks, held events): the size of the state.
    pub fn size(&self) -> (usize, usize, usize) {
        let identities = self.state.identities.values().map(Vec::len).sum();
        let networks = self
            .state
            .identities
            .values()
            .flatten()
            .map(|i| i.networks.len())
            .sum();
        (identities, networks, self.state.held.len())
    }
}

/// The alert for an event from a network new to its identity. Usual
/// networks are counted by whole days, from the start of the day the history
/// window begins in.
#[allow(clippy::too_many_arguments)]
fn alert(
    t: i64,
    event_id: &str,
    held: &Held,
    identity: &Identity,
    term: &str,
    previous: Option<i64>,
    history: i64,
    shown: usize,
) -> Alert {
    let since = t - history;
    let counted_from = floor_to(since, DAY_MS);
    let mut usual: Vec<(u64, &String, &Network)> = identity
        .networks
        .iter()
        .filter(|(_, n)| n.last_seen_ms >= since)
        .map(|(name, n)| (n.daily.total_since(counted_from), name, n))
        .collect();
    usual.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let usual: Vec<Value> = usual
        .into_iter()
        .take(shown)
        .map(|(count, _, n)| {
            json!({
                "source.as.organization.name": n.organization,
                "source.as.number": n.as_number,
                "count": count,
            })
        })
        .collect();
    AlertBuilder::new(t)
        .field("cloud.account.id", &held.account)
        .field("user.name", &held.user)
        .field("aws.cloudtrail.user_identity.type", &held.identity_type)
        .field("source.ip", &held.source_ip)
        .field("source.as.number", held.as_number)
        .field("source.as.organization.name", &held.organization)
        .field("event.action", &held.action)
        .field("event.id", (!event_id.is_empty()).then_some(event_id))
        .field("trailguard.new_term", term)
        .field(
            "trailguard.term_last_seen",
            previous.map(format_timestamp_ms),
        )
        .field("trailguard.usual_networks", usual)
        .field(
            "trailguard.identity_first_seen",
            format_timestamp_ms(identity.first_seen_ms),
        )
        .build()
}
