//! From rule files to compiled rules: parse, keep what applies to
//! CloudTrail, compile, and say why anything else was left out.

use std::collections::{BTreeSet, HashMap};

use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, FieldSource, RuleFieldSet,
    TimestampFallback,
};
use rsigma_parser::{
    ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType, Detection, Level,
    Modifier, SigmaCollection, SigmaRule, SigmaString, SigmaValue, WindowMode, parse_sigma_yaml,
};
use trailguard_rule_sdk::{RuleInfo, Severity};

use crate::Source;

/// Most record paths a detector may read (the host's limit).
const MAX_FIELDS: usize = 64;
/// Most rules (the host's limit).
const MAX_RULES: usize = 10_000;
/// The top-level keys of a CloudTrail record (AWS's "CloudTrail record
/// contents"): what a keyword (a value without a field) searches, each
/// declared as a path when a keyword rule is loaded.
const RECORD_KEYS: [&str; 31] = [
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "eventType",
    "apiVersion",
    "managementEvent",
    "readOnly",
    "resources",
    "recipientAccountId",
    "serviceEventDetails",
    "sharedEventID",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "eventCategory",
    "addendum",
    "sessionCredentialFromConsole",
    "edgeDeviceDetails",
    "tlsDetails",
    "insightDetails",
];
/// The longest correlation timespan: matches are remembered this long.
const MAX_TIMESPAN_SECS: u64 = 30 * 24 * 3600;
/// Most correlation groups (across all correlations) kept at once; past
/// it, groups with nothing inside their window are forgotten first.
pub(crate) const MAX_GROUPS: usize = 100_000;
/// Most matches one group remembers within its window (the oldest go).
const MAX_GROUP_ENTRIES: usize = 10_000;
/// Most matches of each rule one `temporal_ordered` group remembers, and
/// most rules it may name: rsigma searches for an ordered sequence by
/// trying every combination, whose number grows as entries to the power
/// of rules (at most C(16 + 6, 6) = 74,613 here per event).
const ORDERED_ENTRIES: usize = 16;
const ORDERED_RULES: usize = 6;

/// The usable rules of a configuration and what was left out.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Each rule's metadata, in load order (an alert's `rule` indexes it).
    pub infos: Vec<RuleInfo>,
    /// Rule id → its index.
    pub index: HashMap<String, usize>,
    /// The CloudTrail fields each rule names.
    pub fields_of: Vec<Vec<String>>,
    /// Every field any rule names, each once: the paths the pack declares.
    pub fields: Vec<String>,
    /// Why anything was left out, `FILE:LINE: ...` each.
    pub warnings: Vec<String>,
    /// Rule name (`name:`, what correlations may refer to) → its index.
    pub names: HashMap<String, usize>,
    /// Per rule: whether a correlation counts its matches.
    pub feeds: Vec<bool>,
    /// Per rule: whether it raises alerts of its own (not when only
    /// correlations refer to it and none says `generate: true`).
    pub generates: Vec<bool>,
    /// The fields correlations read (group-by, aliases, `value_count`
    /// fields): kept with each match until the watermark passes it.
    pub correlation_fields: Vec<String>,
    /// The longest correlation timespan, in seconds (0: no correlations).
    pub max_timespan_secs: u64,
    /// What keywords search: the record's top-level keys once a keyword
    /// rule is loaded, else nothing.
    pub searched: Vec<String>,
    /// Per rule: whether it is a correlation.
    pub is_correlation: Vec<bool>,
    /// The correlations of too few events, which the pack runs itself.
    pub closing: Vec<Closing>,
}

/// A correlation whose condition is `lt` / `lte` only (too few events):
/// decided when a group's window closes in event time (docs/sigma.md), so
/// the pack runs it itself; rsigma decides every condition at an event.
#[derive(Debug)]
pub struct Closing {
    /// The correlation's index among the rules.
    pub index: usize,
    /// `value_count` (distinct texts of its fields) rather than
    /// `event_count`.
    pub distinct: bool,
    /// The window's length, milliseconds.
    pub span_ms: i64,
    /// What the count must meet when the window closes (all of them).
    pub predicates: Vec<(ConditionOperator, u64)>,
    /// The `group-by` names, as an alert lists them.
    pub group_names: Vec<String>,
    /// Per rule it counts: the rule's index, then for each `group-by` name
    /// and for each counted field, its position in
    /// [`Loaded::correlation_fields`] (`None`: an alias that names no field
    /// for this rule).
    pub counts: Vec<Counted>,
}

/// What a correlation of too few events reads from a match of one rule.
#[derive(Debug)]
pub struct Counted {
    /// The rule's index.
    pub rule: usize,
    /// Where each `group-by` value is.
    pub group: Vec<Option<usize>>,
    /// Where each field whose distinct texts are counted is.
    pub values: Vec<Option<usize>>,
}

/// The engine a pack runs: detections and correlations, configured as
/// docs/sigma.md says (after firing, a group's window starts over; no
/// engine-wide suppression a rule could set for all the others).
fn new_engine() -> CorrelationEngine {
    CorrelationEngine::new(CorrelationConfig {
        timestamp_fallback: TimestampFallback::Skip,
        max_state_entries: MAX_GROUPS,
        max_group_entries: Some(MAX_GROUP_ENTRIES),
        // Set, so a rule's `rsigma.suppress` cannot set it for all; zero
        // suppresses nothing.
        suppress: Some(0),
        action_on_match: CorrelationAction::Reset,
        ..CorrelationConfig::default()
    })
}

/// Parses and compiles `sources`; never fails: what cannot be used becomes
/// a warning.
pub fn load(sources: &[Source]) -> (Loaded, CorrelationEngine) {
    let mut loaded = Loaded::default();
    let mut engine = new_engine();
    // Rules are checked one by one and added to the engine together: it
    // rebuilds its indexes at each addition, so one at a time would take
    // time quadratic in their number.
    let mut rules = SigmaCollection::new();
    let mut correlations = Vec::new();
    let mut all_fields: BTreeSet<String> = BTreeSet::new();
    for source in sources {
        let collection = match parse_sigma_yaml(&source.text) {
            Ok(collection) => collection,
            Err(e) => {
                let message = e.to_string();
                loaded.warnings.push(format!(
                    "{}:{}: not loaded: {message}",
                    source.name,
                    line_in_message(&message).unwrap_or(1)
                ));
                continue;
            }
        };
        for error in &collection.errors {
            loaded.warnings.push(format!(
                "{}:{}: not loaded: {error}",
                source.name,
                line_in_message(error).unwrap_or(1)
            ));
        }
        let lines = Lines::new(&source.text);
        // Correlations go in after every file's rules, which they name.
        for (n, correlation) in collection.correlations.into_iter().enumerate() {
            let at = format!(
                "{}:{}",
                source.name,
                lines.of(correlation.id.as_deref(), &correlation.title)
            );
            correlations.push((at, source.name.clone(), n, correlation));
        }
        for filter in &collection.filters {
            loaded.warnings.push(format!(
                "{}:{}: filter {:?} not loaded: Sigma filters are not supported yet",
                source.name,
                lines.of(filter.id.as_deref(), &filter.title),
                filter.title
            ));
        }
        for (n, rule) in collection.rules.into_iter().enumerate() {
            let at = format!(
                "{}:{}",
                source.name,
                lines.of(rule.id.as_deref(), &rule.title)
            );
            match admit(
                &mut loaded,
                &mut rules,
                &mut all_fields,
                &source.name,
                n,
                rule,
            ) {
                Ok(()) => {}
                Err(why) => loaded.warnings.push(format!("{at}: {why}")),
            }
        }
    }
    for (at, file, n, correlation) in correlations {
        if let Err(why) = admit_correlation(
            &mut loaded,
            &mut engine,
            &mut all_fields,
            &file,
            n,
            correlation,
        ) {
            loaded.warnings.push(format!("{at}: {why}"));
        }
    }
    if let Err(e) = engine.add_collection(&rules) {
        // Every rule compiled alone; this is not expected. Nothing runs
        // rather than a part.
        let mut warnings = std::mem::take(&mut loaded.warnings);
        warnings.push(format!(
            "no rule loaded: the rules could not be put together: {e}"
        ));
        return (
            Loaded {
                warnings,
                ..Loaded::default()
            },
            new_engine(),
        );
    }
    loaded.fields = all_fields.into_iter().collect();
    (loaded, engine)
}

/// Checks and compiles one rule and adds it to `rules`, or says why not.
fn admit(
    loaded: &mut Loaded,
    rules: &mut SigmaCollection,
    all_fields: &mut BTreeSet<String>,
    file: &str,
    n: usize,
    mut rule: SigmaRule,
) -> Result<(), String> {
    let title = clean(&rule.title, 256, false);
    let named = |what: &str| format!("rule {title:?} not loaded: {what}");
    if !applies(&rule) {
        let source = &rule.logsource;
        return Err(named(&format!(
            "its logsource (product {}, service {}) is not AWS CloudTrail",
            source.product.as_deref().unwrap_or("-"),
            source.service.as_deref().unwrap_or("-")
        )));
    }
    let id = new_id(loaded, rule.id.as_deref(), || derived_id(file, n, ""))
        .map_err(|why| named(&why))?;
    rule.id = Some(id.clone());
    let mut one = SigmaCollection::new();
    one.rules.push(rule.clone());
    let mut fields: Vec<String> = RuleFieldSet::collect(&one, &[], false)
        .iter()
        .filter(|(_, origin)| origin.sources.contains(&FieldSource::Detection))
        .map(|(name, _)| name.to_owned())
        .collect();
    for detection in rule.detection.named.values() {
        fieldref_targets(detection, &mut fields);
    }
    fields.sort();
    fields.dedup();
    // A keyword searches the whole record: its top-level keys are read.
    let keywords = rule.detection.named.values().any(has_keywords);
    for detection in rule.detection.named.values_mut() {
        keywords_as_text(detection);
    }
    let searched: Vec<String> = if keywords {
        RECORD_KEYS.iter().map(|k| (*k).to_owned()).collect()
    } else {
        Vec::new()
    };
    let new: BTreeSet<&String> = fields
        .iter()
        .chain(&searched)
        .filter(|f| !all_fields.contains(*f))
        .collect();
    if all_fields.len() + new.len() > MAX_FIELDS {
        return Err(named(&format!(
            "the rules loaded before it already name {} CloudTrail fields, and a pack reads at most {MAX_FIELDS}{}",
            all_fields.len(),
            if keywords {
                " (a keyword searches the record's 31 top-level keys)"
            } else {
                ""
            }
        )));
    }
    rsigma_eval::compile_rule(&rule).map_err(|e| named(&format!("it does not compile: {e}")))?;
    all_fields.extend(fields.iter().cloned());
    all_fields.extend(searched.iter().cloned());
    if keywords {
        loaded.searched = searched;
    }
    let meta = Meta {
        level: rule.level,
        tags: &rule.tags,
        references: &rule.references,
        author: rule.author.as_deref(),
        description: rule.description.as_deref(),
        date: rule.modified.as_deref().or(rule.date.as_deref()),
    };
    push(
        loaded,
        id,
        rule.name.as_deref(),
        info_of(title, &meta),
        fields,
    );
    rules.rules.push(rule);
    Ok(())
}

/// The id a new rule gets: its own if it is a plain identifier, else
/// `derived` if it has none; refused if taken or over the limit.
fn new_id(
    loaded: &Loaded,
    id: Option<&str>,
    derived: impl FnOnce() -> String,
) -> Result<String, String> {
    let id = match id {
        Some(id) if plain_id(id) => id.to_owned(),
        Some(id) => {
            return Err(format!(
                "its id {:?} is not a plain identifier (ASCII letters, digits, `-`, `_`, `.`, `:`, at most 128)",
                clean(id, 80, false)
            ));
        }
        None => derived(),
    };
    if loaded.index.contains_key(&id) {
        return Err(format!("a rule with id {id} is already loaded"));
    }
    if loaded.infos.len() >= MAX_RULES {
        return Err(format!("over the limit of {MAX_RULES} rules"));
    }
    Ok(id)
}

/// Records an admitted rule or correlation.
fn push(
    loaded: &mut Loaded,
    id: String,
    name: Option<&str>,
    mut info: RuleInfo,
    fields: Vec<String>,
) {
    let index = loaded.infos.len();
    if let Some(name) = name {
        loaded.names.entry(name.to_owned()).or_insert(index);
    }
    loaded.index.insert(id.clone(), index);
    info.id = id;
    loaded.infos.push(info);
    loaded.fields_of.push(fields);
    loaded.feeds.push(false);
    loaded.generates.push(true);
    loaded.is_correlation.push(false);
}

/// Checks, compiles and adds one correlation rule, or says why not.
fn admit_correlation(
    loaded: &mut Loaded,
    engine: &mut CorrelationEngine,
    all_fields: &mut BTreeSet<String>,
    file: &str,
    n: usize,
    mut correlation: CorrelationRule,
) -> Result<(), String> {
    let title = clean(&correlation.title, 256, false);
    let named = |what: &str| format!("correlation rule {title:?} not loaded: {what}");
    let kind = correlation.correlation_type;
    if !matches!(
        kind,
        CorrelationType::EventCount
            | CorrelationType::ValueCount
            | CorrelationType::Temporal
            | CorrelationType::TemporalOrdered
    ) {
        return Err(named(&format!(
            "type {} is not one of Sigma's (event_count, value_count, temporal, temporal_ordered)",
            kind.as_str()
        )));
    }
    if correlation.window != WindowMode::Sliding {
        return Err(named(&format!(
            "window {} is not Sigma's sliding window",
            correlation.window.as_str()
        )));
    }
    // Too few events: decided when a window closes, by the pack itself.
    let closing = matches!(
        &correlation.condition,
        CorrelationCondition::Threshold { predicates, .. }
            if !predicates.is_empty()
                && predicates
                    .iter()
                    .all(|(op, _)| matches!(op, ConditionOperator::Lt | ConditionOperator::Lte))
    );
    if closing
        && !matches!(
            kind,
            CorrelationType::EventCount | CorrelationType::ValueCount
        )
    {
        return Err(named(
            "conditions of too few (lt, lte alone) apply to event_count and value_count only",
        ));
    }
    let span = correlation.timespan.seconds;
    if span == 0 || span > MAX_TIMESPAN_SECS {
        return Err(named(&format!(
            "its timespan {:?} is not between 1 second and 30 days",
            clean(&correlation.timespan.original, 40, false)
        )));
    }
    // The rules it counts: loaded rules or correlations before it (so no
    // cycle can form), by id or name.
    let mut refs = Vec::new();
    for name in &correlation.rules {
        match loaded
            .index
            .get(name)
            .or_else(|| loaded.names.get(name))
            .copied()
        {
            Some(i) if loaded.closing.iter().any(|c| c.index == i) => {
                return Err(named(&format!(
                    "it refers to {:?}, a correlation of too few events, whose alerts no correlation counts",
                    clean(name, 128, false)
                )));
            }
            Some(i) if closing && loaded.is_correlation[i] => {
                return Err(named(&format!(
                    "a correlation of too few events counts matches of rules, and {:?} is a correlation",
                    clean(name, 128, false)
                )));
            }
            Some(i) => refs.push(i),
            None => {
                return Err(named(&format!(
                    "it refers to rule {:?}, which is not loaded",
                    clean(name, 128, false)
                )));
            }
        }
    }
    if refs.is_empty() {
        return Err(named("it names no rules"));
    }
    // Sigma: a temporal correlation needs every rule it names. rsigma's
    // parser reads a missing condition as "at least one" (`gte: 1`); that
    // is read here as the specification's default (docs/sigma.md).
    if let CorrelationCondition::Threshold { predicates, .. } = &mut correlation.condition
        && matches!(
            kind,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered
        )
        && predicates.as_slice() == [(ConditionOperator::Gte, 1)]
    {
        predicates[0].1 = refs.len() as u64;
    }
    if kind == CorrelationType::TemporalOrdered && refs.len() > ORDERED_RULES {
        return Err(named(&format!(
            "a temporal_ordered correlation names at most {ORDERED_RULES} rules"
        )));
    }
    let id = new_id(loaded, correlation.id.as_deref(), || {
        derived_id(file, n, "correlation.")
    })
    .map_err(|why| named(&why))?;
    correlation.id = Some(id.clone());
    // Of rsigma's own attributes, only what the documentation offers:
    // keeping the window after firing, and suppression. (Keeping the
    // contributing events would only cost memory; no alert shows them.)
    correlation
        .custom_attributes
        .retain(|key, _| matches!(key.as_str(), "rsigma.action" | "rsigma.suppress"));
    if kind == CorrelationType::TemporalOrdered {
        correlation.custom_attributes.insert(
            "rsigma.max_group_entries".into(),
            yaml_serde::Value::String(ORDERED_ENTRIES.to_string()),
        );
    }
    let mut fields = Vec::new();
    for group in &correlation.group_by {
        match correlation.aliases.iter().find(|a| &a.alias == group) {
            Some(alias) => fields.extend(alias.mapping.values().cloned()),
            None => fields.push(group.clone()),
        }
    }
    if let CorrelationCondition::Threshold {
        field: Some(named_fields),
        ..
    } = &correlation.condition
    {
        fields.extend(named_fields.iter().cloned());
    }
    fields.sort();
    fields.dedup();
    let new = fields.iter().filter(|f| !all_fields.contains(*f)).count();
    if all_fields.len() + new > MAX_FIELDS {
        return Err(named(&format!(
            "the rules loaded before it already name {} CloudTrail fields, and a pack reads at most {MAX_FIELDS}",
            all_fields.len()
        )));
    }
    if !closing {
        engine
            .add_correlation(&correlation)
            .map_err(|e| named(&format!("it does not compile: {e}")))?;
    }
    all_fields.extend(fields.iter().cloned());
    for field in &fields {
        if !loaded.correlation_fields.contains(field) {
            loaded.correlation_fields.push(field.clone());
        }
    }
    let closing = closing.then(|| closing_of(loaded, &correlation, &refs));
    loaded.max_timespan_secs = loaded.max_timespan_secs.max(span);
    let meta = Meta {
        level: correlation.level,
        tags: &correlation.tags,
        references: &correlation.references,
        author: correlation.author.as_deref(),
        description: correlation.description.as_deref(),
        date: correlation
            .modified
            .as_deref()
            .or(correlation.date.as_deref()),
    };
    push(
        loaded,
        id,
        correlation.name.as_deref(),
        info_of(title, &meta),
        fields,
    );
    let index = loaded.infos.len() - 1;
    loaded.is_correlation[index] = true;
    if let Some(closing) = closing {
        loaded.closing.push(Closing { index, ..closing });
    }
    // What it counts: matches of its rules, held until the watermark. A
    // rule it names raises alerts of its own only if some correlation
    // naming it says `generate: true`.
    for i in refs {
        if !loaded.feeds[i] {
            loaded.feeds[i] = true;
            loaded.generates[i] = false;
        }
        loaded.generates[i] |= correlation.generate;
    }
    Ok(())
}

/// What a correlation of too few events reads, per rule it counts: each
/// name (a `group-by` entry or a counted field) is the field an alias maps
/// it to for that rule, or the field of that name. `index` is set by the
/// caller.
fn closing_of(loaded: &Loaded, correlation: &CorrelationRule, refs: &[usize]) -> Closing {
    let (predicates, counted) = match &correlation.condition {
        CorrelationCondition::Threshold {
            predicates, field, ..
        } => (predicates.clone(), field.clone().unwrap_or_default()),
        CorrelationCondition::Extended(_) => (Vec::new(), Vec::new()),
    };
    let distinct = correlation.correlation_type == CorrelationType::ValueCount;
    let position = |rule: usize, name: &String| {
        let field = match correlation.aliases.iter().find(|a| &a.alias == name) {
            Some(alias) => alias
                .mapping
                .iter()
                .find(|(reference, _)| {
                    loaded
                        .index
                        .get(*reference)
                        .or_else(|| loaded.names.get(*reference))
                        == Some(&rule)
                })
                .map(|(_, field)| field)?,
            None => name,
        };
        loaded.correlation_fields.iter().position(|f| f == field)
    };
    let counts = refs
        .iter()
        .map(|&rule| Counted {
            rule,
            group: correlation
                .group_by
                .iter()
                .map(|g| position(rule, g))
                .collect(),
            values: if distinct {
                counted.iter().map(|f| position(rule, f)).collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    Closing {
        index: 0,
        distinct,
        span_ms: (correlation.timespan.seconds as i64).saturating_mul(1000),
        predicates,
        group_names: correlation.group_by.clone(),
        counts,
    }
}

/// Whether a rule is for CloudTrail: `product: aws` and `service:
/// cloudtrail` (any case), or neither said.
fn applies(rule: &SigmaRule) -> bool {
    let is = |value: &Option<String>, want: &str| {
        value
            .as_deref()
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
    };
    let source = &rule.logsource;
    (is(&source.product, "aws") && is(&source.service, "cloudtrail"))
        || (source.product.is_none() && source.service.is_none())
}

fn has_keywords(detection: &Detection) -> bool {
    match detection {
        Detection::Keywords(_) => true,
        Detection::AnyOf(all) | Detection::And(all) => all.iter().any(has_keywords),
        _ => false,
    }
}

/// Keywords that are numbers or booleans as their text: a keyword matches
/// a scalar by its text (docs/sigma.md), and rsigma would compare them only
/// with numbers it is handed as numbers, which a keyword search never is.
fn keywords_as_text(detection: &mut Detection) {
    match detection {
        Detection::Keywords(values) => {
            for value in values {
                let text = match value {
                    SigmaValue::Integer(n) => n.to_string(),
                    SigmaValue::Float(f) => f.to_string(),
                    SigmaValue::Bool(b) => b.to_string(),
                    _ => continue,
                };
                *value = SigmaValue::String(SigmaString::new(&text));
            }
        }
        Detection::AnyOf(all) | Detection::And(all) => all.iter_mut().for_each(keywords_as_text),
        _ => {}
    }
}

/// The fields `|fieldref` items compare with (their values name fields):
/// read like the others.
fn fieldref_targets(detection: &Detection, out: &mut Vec<String>) {
    match detection {
        Detection::AllOf(items) => {
            for item in items {
                if item.field.modifiers.contains(&Modifier::FieldRef) {
                    out.extend(item.values.iter().filter_map(|v| match v {
                        SigmaValue::String(s) => Some(s.original.clone()),
                        _ => None,
                    }));
                }
            }
        }
        Detection::AnyOf(all) | Detection::And(all) => {
            for d in all {
                fieldref_targets(d, out);
            }
        }
        Detection::ArrayMatch { body, .. } => fieldref_targets(body, out),
        _ => {}
    }
}

/// The host's rule id spelling.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// An id for a rule without one: `sigma.` + its file's name + `kind` + its
/// place.
fn derived_id(file: &str, n: usize, kind: &str) -> String {
    let stem = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    format!("sigma.{stem}.{kind}{n}")
}

/// `text` without control or invisible formatting characters (newlines and
/// tabs kept if `newlines`), cut to at most `max` bytes.
fn clean(text: &str, max: usize, newlines: bool) -> String {
    let mut out = String::new();
    for c in text.trim().chars() {
        let c = match c {
            '\n' | '\t' if newlines => c,
            c if c.is_control() => ' ',
            '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}' => continue,
            c => c,
        };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// What a rule and a correlation rule say about themselves.
struct Meta<'a> {
    level: Option<Level>,
    tags: &'a [String],
    references: &'a [String],
    author: Option<&'a str>,
    description: Option<&'a str>,
    date: Option<&'a str>,
}

/// The rule's metadata as trailguard shows it (docs/sigma.md): severity
/// and risk score from `level`, ATT&CK techniques from `attack.tNNNN` tags;
/// the id is set by [`push`].
fn info_of(title: String, rule: &Meta<'_>) -> RuleInfo {
    let (severity, risk_score) = match rule.level {
        Some(Level::Informational | Level::Low) => (Severity::Low, 21),
        Some(Level::High) => (Severity::High, 73),
        Some(Level::Critical) => (Severity::Critical, 99),
        Some(Level::Medium) | None => (Severity::Medium, 47),
    };
    let techniques: Vec<String> = rule
        .tags
        .iter()
        .filter_map(|t| technique(t))
        .take(32)
        .collect();
    let date: String = rule
        .date
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    RuleInfo {
        id: String::new(),
        name: if title.is_empty() {
            "(untitled Sigma rule)".into()
        } else {
            title
        },
        // Sigma rules carry dates, not versions: the date they were last
        // changed rides along as build metadata.
        version: if date.is_empty() {
            "1.0.0".into()
        } else {
            format!("1.0.0+{date}")
        },
        severity,
        risk_score,
        mitre_techniques: techniques,
        description: clean(rule.description.unwrap_or(""), 16 << 10, true),
        default_config: String::new(),
        tags: rule
            .tags
            .iter()
            .map(|t| clean(t, 128, false))
            .filter(|t| !t.is_empty())
            .take(64)
            .collect(),
        references: rule
            .references
            .iter()
            .map(|r| clean(r, 1024, false))
            .filter(|r| !r.is_empty())
            .take(64)
            .collect(),
        author: clean(rule.author.unwrap_or(""), 1024, false),
    }
}

/// `attack.t1078.004` → `T1078.004`.
fn technique(tag: &str) -> Option<String> {
    let id = tag.strip_prefix("attack.t")?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match id.split_once('.') {
        Some((parent, sub)) => digits(parent, 4) && digits(sub, 3),
        None => digits(id, 4),
    };
    ok.then(|| format!("T{id}"))
}

/// Where each `id:` and `title:` value first appears in a file, to say
/// where a rule starts: built in one pass, so a file of many rules is not
/// scanned once per rule.
struct Lines<'t> {
    ids: HashMap<&'t str, usize>,
    titles: HashMap<&'t str, usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Lines<'t> {
        let mut lines = Lines {
            ids: HashMap::new(),
            titles: HashMap::new(),
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_start();
            for (key, map) in [("id:", &mut lines.ids), ("title:", &mut lines.titles)] {
                if let Some(rest) = line.strip_prefix(key) {
                    map.entry(rest.trim().trim_matches(['\'', '"']))
                        .or_insert(i + 1);
                }
            }
        }
        lines
    }

    /// The line (1-based) where a rule starts: the line of its `id:`, else
    /// of its `title:`, else 1.
    fn of(&self, id: Option<&str>, title: &str) -> usize {
        id.and_then(|id| self.ids.get(id))
            .or_else(|| self.titles.get(title))
            .copied()
            .unwrap_or(1)
    }
}

/// The line a parser's message names (`... at line 3 column 5`).
fn line_in_message(message: &str) -> Option<usize> {
    let rest = &message[message.find("line ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
