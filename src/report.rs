//! `trailguard report`: one self-contained HTML page (no script, no network)
//! of a run's alerts: totals per rule, and per alert what was found and the
//! identity's calls by network over time, with the alert's own events and
//! networks highlighted.
//!
//! Timelines come from the CloudTrail input, read again: only events of
//! alerted identities, from 7 days before each alert to 1 hour after, are
//! kept, counted per network and hour.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::Value;
use trailguard_asn::AsnDb;
use trailguard_format::{AlertDocument, field, parse_time_ms, read_alerts};
use trailguard_ingest::{
    IngestStats, NormalizedEvent, Normalizer, ReadOptions, Resume, expand_inputs, read_sources,
};

use crate::cli::{ReportArgs, open_asn_db};

const HOUR_MS: i64 = 3_600_000;
/// How far back a timeline goes from the alert.
const BEFORE_MS: i64 = 7 * 24 * HOUR_MS;
/// How far after the alert it goes.
const AFTER_MS: i64 = HOUR_MS;
/// Highlighted events listed per alert.
const MAX_LISTED: usize = 50;

/// `trailguard report ALERTS -o PAGE [--input ...]`.
pub fn command(args: ReportArgs) -> Result<ExitCode> {
    let text = if args.alerts.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .context("cannot read alerts from standard input")?
    } else {
        std::fs::read_to_string(&args.alerts)
            .with_context(|| format!("cannot read alerts file {}", args.alerts.display()))?
    };
    let alerts = read_alerts(&text)
        .with_context(|| format!("{} is not an alerts file", args.alerts.display()))?;
    let asn = if args.inputs.is_empty() {
        None
    } else {
        Some(open_asn_db(args.asn_db)?)
    };
    write(&alerts, &args.inputs, asn.as_ref(), &args.output)?;
    eprintln!(
        "trailguard: wrote {} ({} alert(s){})",
        args.output.display(),
        alerts.len(),
        if args.inputs.is_empty() {
            "; no --input, so no timelines"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the page for `alerts`, with timelines from `inputs` (none if
/// empty).
pub fn write(
    alerts: &[AlertDocument],
    inputs: &[PathBuf],
    asn: Option<&AsnDb>,
    page: &Path,
) -> Result<()> {
    let mut timelines: Vec<Timeline> = alerts.iter().map(Timeline::for_alert).collect();
    if !inputs.is_empty() {
        collect(&mut timelines, inputs, asn)?;
    }
    let html = render(alerts, &timelines, !inputs.is_empty());
    crate::run::ensure_parent(page)?;
    std::fs::write(page, html).with_context(|| format!("cannot write report {}", page.display()))
}

/// One alert's identity, window and what was seen of it.
struct Timeline {
    user: Option<String>,
    identity_type: Option<String>,
    account: Option<String>,
    alert_ms: i64,
    /// Event ids the alert names.
    ids: BTreeSet<String>,
    /// The alert's own network (`source.as.organization.name`).
    network: Option<String>,
    /// network -> hour index (from the window's start) -> calls.
    calls: BTreeMap<String, BTreeMap<i64, u64>>,
    /// The alert's events, as found in the input.
    highlighted: Vec<Highlight>,
    events: u64,
}

struct Highlight {
    time_ms: i64,
    network: String,
    action: String,
    ip: String,
}

impl Timeline {
    fn for_alert(alert: &AlertDocument) -> Timeline {
        let text = |key: &str| alert.get(key).and_then(Value::as_str).map(str::to_owned);
        let mut ids = BTreeSet::new();
        for (_, value) in alert.iter() {
            collect_strings(value, &mut ids);
        }
        Timeline {
            user: text("user.name"),
            identity_type: text("aws.cloudtrail.user_identity.type"),
            account: text("cloud.account.id"),
            alert_ms: text(field::TIMESTAMP)
                .as_deref()
                .and_then(parse_time_ms)
                .unwrap_or(0),
            ids,
            network: text("source.as.organization.name"),
            calls: BTreeMap::new(),
            highlighted: Vec::new(),
            events: 0,
        }
    }

    fn start_ms(&self) -> i64 {
        self.alert_ms.saturating_sub(BEFORE_MS)
    }

    fn matches(&self, e: &NormalizedEvent) -> bool {
        let same =
            |want: &Option<String>, have: Option<&str>| want.is_none() || want.as_deref() == have;
        e.timestamp_ms >= self.start_ms()
            && e.timestamp_ms < self.alert_ms.saturating_add(AFTER_MS)
            && same(&self.identity_type, e.identity_type.as_deref())
            && same(&self.account, e.cloud_account_id.as_deref())
    }

    fn add(&mut self, e: &NormalizedEvent) {
        let network = network_of(e);
        let hour = (e.timestamp_ms - self.start_ms()) / HOUR_MS;
        *self
            .calls
            .entry(network.clone())
            .or_default()
            .entry(hour)
            .or_default() += 1;
        self.events += 1;
        if e.event_id
            .as_deref()
            .is_some_and(|id| self.ids.contains(id))
            && self.highlighted.len() < MAX_LISTED
        {
            self.highlighted.push(Highlight {
                time_ms: e.timestamp_ms,
                network,
                action: e.event_action.as_deref().unwrap_or_default().to_owned(),
                ip: e.source_ip.as_deref().unwrap_or_default().to_owned(),
            });
        }
    }

    /// Networks to highlight: the alert's own and those of its events.
    fn flagged_networks(&self) -> BTreeSet<&str> {
        self.highlighted
            .iter()
            .map(|h| h.network.as_str())
            .chain(self.network.as_deref())
            .collect()
    }
}

fn network_of(e: &NormalizedEvent) -> String {
    match (&e.source_as_organization, e.source_as_number) {
        (Some(org), _) => org.to_string(),
        (None, Some(n)) => format!("AS{n}"),
        (None, None) => match &e.source_address {
            Some(a) if e.source_ip.is_none() => a.to_string(),
            _ => "unknown network".into(),
        },
    }
}

fn collect_strings(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            into.insert(s.clone());
        }
        Value::Array(list) => list.iter().for_each(|v| collect_strings(v, into)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, into)),
        _ => {}
    }
}

/// Reads the input once, handing each alerted identity's events to its
/// timelines.
fn collect(timelines: &mut [Timeline], inputs: &[PathBuf], asn: Option<&AsnDb>) -> Result<()> {
    // Alerts that name a user are found by it; the others (the root
    // account has no user name) by identity type and account.
    let mut by_user: HashMap<String, Vec<usize>> = HashMap::new();
    let mut userless = Vec::new();
    for (i, t) in timelines.iter().enumerate() {
        match &t.user {
            Some(user) => by_user.entry(user.clone()).or_default().push(i),
            None if t.identity_type.is_some() || t.account.is_some() => userless.push(i),
            None => {}
        }
    }
    let sources = expand_inputs(inputs).context("cannot list the report's input")?;
    let normalizer = Normalizer::new(asn);
    read_sources(
        &sources,
        &normalizer,
        &ReadOptions::default(),
        &Resume::default(),
        IngestStats::default(),
        &mut |_, events, _| {
            for e in &events {
                let named = e.user_name.as_deref().and_then(|u| by_user.get(u));
                let candidates = named
                    .into_iter()
                    .flatten()
                    .chain(userless.iter().filter(|_| e.user_name.is_none()));
                for &i in candidates {
                    if timelines[i].matches(e) {
                        timelines[i].add(e);
                    }
                }
            }
            true
        },
    );
    Ok(())
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time_text(ms: i64) -> String {
    trailguard_rule_sdk::format_timestamp_ms(ms)
}

const STYLE: &str = include_str!("report.css");

/// Alerts shown in full; the rest are counted in the totals.
const MAX_SECTIONS: usize = 300;
/// Elements of a list shown under "all fields".
const MAX_LIST: usize = 20;

/// Most severe first, then by time.
fn severity_rank(alert: &AlertDocument) -> u8 {
    match alert.get(field::SEVERITY).and_then(Value::as_str) {
        Some("critical") => 0,
        Some("high") => 1,
        Some("medium") => 2,
        Some("low") => 3,
        _ => 4,
    }
}

fn render(alerts: &[AlertDocument], timelines: &[Timeline], with_timelines: bool) -> String {
    let mut html = String::new();
    let text = |a: &AlertDocument, key: &str| {
        a.get(key)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>trailguard report: {} alert(s)</title><style>{STYLE}</style></head><body>\n\
         <h1>trailguard report</h1>\n",
        alerts.len()
    );
    // Totals per rule.
    let mut totals: BTreeMap<(String, String), (String, u64)> = BTreeMap::new();
    for a in alerts {
        let entry = totals
            .entry((text(a, field::RULE_ID), text(a, field::RULE_NAME)))
            .or_insert_with(|| (text(a, field::SEVERITY), 0));
        entry.1 += 1;
    }
    let _ = write!(
        html,
        "<section id=\"totals\"><h2>Alerts per rule</h2><table><thead><tr><th>rule</th><th>name</th><th>severity</th><th>alerts</th></tr></thead><tbody>"
    );
    let mut order: Vec<usize> = (0..alerts.len()).collect();
    order.sort_by_key(|&i| (severity_rank(&alerts[i]), timelines[i].alert_ms));
    order.truncate(MAX_SECTIONS);
    for ((id, name), (severity, n)) in &totals {
        let first = order
            .iter()
            .position(|&i| text(&alerts[i], field::RULE_ID) == *id)
            .map_or(String::new(), |k| {
                format!(" <a href=\"#alert-{k}\">first</a>")
            });
        let _ = write!(
            html,
            "<tr><td><code>{id}</code></td><td>{name}</td><td><span class=\"sev sev-{severity}\">{severity}</span></td><td class=\"num\">{n}{first}</td></tr>",
            id = esc(id),
            name = esc(name),
            severity = esc(severity)
        );
    }
    let _ = write!(html, "</tbody></table>");
    if alerts.is_empty() {
        let _ = write!(html, "<p>No alerts.</p>");
    }
    if alerts.len() > MAX_SECTIONS {
        let _ = write!(
            html,
            "<p class=\"note\">The {MAX_SECTIONS} most severe (then earliest) of {} alerts are shown below.</p>",
            alerts.len()
        );
    }
    if !with_timelines {
        let _ = write!(
            html,
            "<p class=\"note\">Timelines need the CloudTrail input: <code>trailguard report ALERTS --input LOGS -o report.html</code>.</p>"
        );
    }
    let _ = writeln!(html, "</section>");

    for (i, (a, t)) in order
        .iter()
        .map(|&k| (&alerts[k], &timelines[k]))
        .enumerate()
    {
        let severity = text(a, field::SEVERITY);
        let _ = write!(
            html,
            "<section class=\"alert\" id=\"alert-{i}\"><h2><span class=\"sev sev-{sev}\">{sev}</span> {name}</h2>\
             <p class=\"reason\">{reason}</p><dl>",
            sev = esc(&severity),
            name = esc(&text(a, field::RULE_NAME)),
            reason = esc(&text(a, field::REASON)),
        );
        for (label, key) in [
            ("time", field::TIMESTAMP),
            ("identity", "user.name"),
            ("identity type", "aws.cloudtrail.user_identity.type"),
            ("account", "cloud.account.id"),
            ("network", "source.as.organization.name"),
            ("source address", "source.ip"),
            ("action", "event.action"),
            ("rule", field::RULE_ID),
            ("alert id", field::UUID),
            ("suppressed into it", field::SUPPRESSED_COUNT),
        ] {
            if a.contains_key(key) {
                let _ = write!(html, "<dt>{label}</dt><dd>{}</dd>", esc(&text(a, key)));
            }
        }
        let _ = write!(html, "</dl>");
        if with_timelines {
            timeline_svg(&mut html, t);
        }
        if t.highlighted.is_empty() {
            named_events(&mut html, a);
        }
        // Everything else the rule said, for the record.
        let _ = write!(
            html,
            "<details><summary>all fields</summary><table class=\"fields\">"
        );
        for (key, value) in a {
            let shown = match value {
                Value::String(s) => s.clone(),
                Value::Array(items) if items.len() > MAX_LIST => {
                    let head = Value::from(items[..MAX_LIST].to_vec());
                    format!(
                        "{}\n… and {} more",
                        serde_json::to_string_pretty(&head).unwrap_or_default(),
                        items.len() - MAX_LIST
                    )
                }
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            };
            let _ = write!(
                html,
                "<tr><th>{}</th><td><pre>{}</pre></td></tr>",
                esc(key),
                esc(&shown)
            );
        }
        let _ = writeln!(html, "</table></details></section>");
    }
    let _ = writeln!(
        html,
        "<footer>AS data: DB-IP.com and routeviews.org (CC BY 4.0) when built with <code>trailguard asn import</code>.</footer></body></html>"
    );
    html
}

/// The identity's calls by network and hour, as an SVG: one row per
/// network (most calls first), a bar per hour with calls, the alert's
/// networks and events in red, the alert's time as a line.
fn timeline_svg(html: &mut String, t: &Timeline) {
    const LABEL_W: f64 = 300.0;
    const PLOT_W: f64 = 720.0;
    const ROW_H: f64 = 26.0;
    const TOP: f64 = 24.0;
    let hours = (BEFORE_MS + AFTER_MS) / HOUR_MS;
    let flagged = t.flagged_networks();
    let mut rows: Vec<(&String, u64)> = t
        .calls
        .iter()
        .map(|(network, by_hour)| (network, by_hour.values().sum()))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let _ = write!(
        html,
        "<h3>Calls by {} over 7 days, by network</h3>",
        esc(t.user.as_deref().unwrap_or("this identity"))
    );
    if rows.is_empty() {
        let _ = write!(
            html,
            "<p class=\"note\">No events of this identity in the input around the alert.</p>"
        );
        return;
    }
    let height = TOP + ROW_H * rows.len() as f64 + 28.0;
    let x = |hour: f64| LABEL_W + hour / hours as f64 * PLOT_W;
    let _ = write!(
        html,
        "<svg class=\"timeline\" role=\"img\" viewBox=\"0 0 {w} {height}\" width=\"{w}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title>{events} calls by {user}, from {from} to {to}</title>",
        w = LABEL_W + PLOT_W + 50.0,
        events = t.events,
        user = esc(t.user.as_deref().unwrap_or("this identity")),
        from = time_text(t.start_ms()),
        to = time_text(t.alert_ms + AFTER_MS),
    );
    // Day grid.
    for day in 0..=7 {
        let gx = x(f64::from(day) * 24.0);
        let _ = write!(
            html,
            "<line class=\"grid\" x1=\"{gx:.1}\" y1=\"{TOP}\" x2=\"{gx:.1}\" y2=\"{:.1}\"/>\
             <text class=\"axis\" x=\"{gx:.1}\" y=\"{:.1}\">{}</text>",
            height - 22.0,
            height - 8.0,
            esc(&time_text(t.start_ms() + i64::from(day) * 24 * HOUR_MS)[..10]),
        );
    }
    let max = rows
        .iter()
        .flat_map(|(network, _)| t.calls[*network].values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    for (row, (network, total)) in rows.iter().enumerate() {
        let y = TOP + ROW_H * row as f64;
        let is_flagged = flagged.contains(network.as_str());
        let class = if is_flagged { "flagged" } else { "usual" };
        let _ = write!(
            html,
            "<text class=\"label {class}\" x=\"{:.1}\" y=\"{:.1}\">{} ({total})</text>",
            LABEL_W - 8.0,
            y + ROW_H * 0.65,
            esc(&shorten(network, 34)),
        );
        for (&hour, &n) in &t.calls[*network] {
            // Bar height grows with the log of the count.
            let h =
                (2.0 + (ROW_H - 6.0) * (1.0 + n as f64).ln() / (1.0 + max).ln()).min(ROW_H - 4.0);
            let _ = write!(
                html,
                "<rect class=\"bar {class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{} calls from {} in the hour from {}</title></rect>",
                x(hour as f64),
                y + ROW_H - 3.0 - h,
                (PLOT_W / hours as f64).max(1.5),
                n,
                esc(network),
                time_text(t.start_ms() + hour * HOUR_MS),
            );
        }
    }
    for h in &t.highlighted {
        let Some(row) = rows.iter().position(|(n, _)| **n == h.network) else {
            continue;
        };
        let cx = x((h.time_ms - t.start_ms()) as f64 / HOUR_MS as f64);
        let cy = TOP + ROW_H * row as f64 + ROW_H / 2.0;
        let _ = write!(
            html,
            "<circle class=\"event\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"5\"><title>{} {} from {} ({})</title></circle>",
            time_text(h.time_ms),
            esc(&h.action),
            esc(&h.network),
            esc(&h.ip),
        );
    }
    let ax = x((t.alert_ms - t.start_ms()) as f64 / HOUR_MS as f64);
    let _ = write!(
        html,
        "<line class=\"alert-time\" x1=\"{ax:.1}\" y1=\"{:.1}\" x2=\"{ax:.1}\" y2=\"{:.1}\"/></svg>",
        TOP - 8.0,
        height - 22.0
    );
    if !t.highlighted.is_empty() {
        let _ = write!(
            html,
            "<table class=\"events\"><thead><tr><th>time</th><th>action</th><th>network</th><th>address</th></tr></thead><tbody>"
        );
        for h in &t.highlighted {
            let _ = write!(
                html,
                "<tr class=\"flagged\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time_text(h.time_ms),
                esc(&h.action),
                esc(&h.network),
                esc(&h.ip)
            );
        }
        let _ = write!(html, "</tbody></table>");
    }
}

/// The events an alert lists itself (arrays of event objects, such as
/// `trailguard.untrusted_events`), as a table: what a page without
/// timelines can still show.
fn named_events(html: &mut String, alert: &AlertDocument) {
    let events: Vec<&serde_json::Map<String, Value>> = alert
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_object)
        .filter(|o| o.contains_key("event.action") || o.contains_key("source.ip"))
        .take(MAX_LIST)
        .collect();
    if events.is_empty() {
        return;
    }
    let cell = |o: &serde_json::Map<String, Value>, key: &str| {
        esc(o.get(key).and_then(Value::as_str).unwrap_or_default())
    };
    let _ = write!(
        html,
        "<h3>Events the alert names</h3><table class=\"events\"><thead><tr><th>time</th><th>action</th><th>network</th><th>address</th></tr></thead><tbody>"
    );
    for o in events {
        let _ = write!(
            html,
            "<tr class=\"flagged\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            cell(o, "@timestamp"),
            cell(o, "event.action"),
            cell(o, "source.as.organization.name"),
            cell(o, "source.ip")
        );
    }
    let _ = write!(html, "</tbody></table>");
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> AlertDocument {
        let Value::Object(doc) = serde_json::json!({
            "@timestamp": "2026-04-22T10:00:00Z",
            "kibana.alert.rule.rule_id": "r",
            "kibana.alert.rule.name": "<Rule & co>",
            "kibana.alert.severity": "high",
            "user.name": "ci",
            "trailguard.untrusted_events": [{"event.id": "e2"}],
        }) else {
            unreachable!()
        };
        doc.into()
    }

    fn event(id: &str, hours_before: i64, org: &str) -> NormalizedEvent {
        let mut e = NormalizedEvent::at(1_776_852_000_000 - hours_before * HOUR_MS);
        e.event_id = Some(id.into());
        e.user_name = Some("ci".into());
        e.source_as_organization = Some(org.into());
        e.event_action = Some("ListBuckets".into());
        e
    }

    #[test]
    fn timeline_counts_by_network_and_flags_the_alerts_events() {
        let a = alert();
        let mut t = Timeline::for_alert(&a);
        for e in [
            event("e1", 30, "Amazon"),
            event("e3", 30, "Amazon"),
            event("e2", 1, "Tor"),
            event("old", 24 * 8, "Amazon"),
        ] {
            if t.matches(&e) {
                t.add(&e);
            }
        }
        assert_eq!(t.events, 3, "the 8-day-old event is outside the window");
        assert_eq!(t.calls["Amazon"].values().sum::<u64>(), 2);
        assert_eq!(t.highlighted.len(), 1);
        assert_eq!(t.flagged_networks(), BTreeSet::from(["Tor"]));
        let html = render(&[a], &[t], true);
        assert!(html.contains("&lt;Rule &amp; co&gt;"), "escaped");
        assert!(!html.contains("<Rule"));
        assert_eq!(html.matches("<rect class=\"bar flagged\"").count(), 1);
        assert_eq!(html.matches("<rect class=\"bar usual\"").count(), 1);
        assert_eq!(html.matches("<circle class=\"event\"").count(), 1);
        assert!(
            !html.contains("<script") && !html.contains("src="),
            "self-contained"
        );
    }
}
