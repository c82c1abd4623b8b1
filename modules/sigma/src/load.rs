//! From rule files to compiled rules: parse, keep what applies to
//! CloudTrail, compile, and say why anything else was left out.

use std::collections::{BTreeSet, HashMap};

use rsigma_eval::{Engine, FieldSource, RuleFieldSet};
use rsigma_parser::{
    Detection, Level, Modifier, SigmaCollection, SigmaRule, SigmaValue, parse_sigma_yaml,
};
use trailguard_rule_sdk::{RuleInfo, Severity};

use crate::Source;

/// Most record paths a detector may read (the host's limit).
const MAX_FIELDS: usize = 64;
/// Most rules (the host's limit).
const MAX_RULES: usize = 10_000;

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
}

/// Parses and compiles `sources`; never fails: what cannot be used becomes
/// a warning.
pub fn load(sources: &[Source]) -> (Loaded, Engine) {
    let mut loaded = Loaded::default();
    let mut engine = Engine::new();
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
        for correlation in &collection.correlations {
            loaded.warnings.push(format!(
                "{}:{}: correlation rule {:?} not loaded: correlations are not supported yet",
                source.name,
                line_of(&source.text, correlation.id.as_deref(), &correlation.title),
                correlation.title
            ));
        }
        for filter in &collection.filters {
            loaded.warnings.push(format!(
                "{}:{}: filter {:?} not loaded: Sigma filters are not supported yet",
                source.name,
                line_of(&source.text, filter.id.as_deref(), &filter.title),
                filter.title
            ));
        }
        for (n, rule) in collection.rules.into_iter().enumerate() {
            let at = format!(
                "{}:{}",
                source.name,
                line_of(&source.text, rule.id.as_deref(), &rule.title)
            );
            match admit(
                &mut loaded,
                &mut engine,
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
    loaded.fields = all_fields.into_iter().collect();
    (loaded, engine)
}

/// Checks, compiles and adds one rule, or says why not.
fn admit(
    loaded: &mut Loaded,
    engine: &mut Engine,
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
    if rule.detection.named.values().any(has_keywords) {
        return Err(named(
            "keyword detections (values without a field) are not supported: a rule reads the fields it names",
        ));
    }
    let id = match &rule.id {
        Some(id) if plain_id(id) => id.clone(),
        Some(id) => {
            return Err(named(&format!(
                "its id {:?} is not a plain identifier (ASCII letters, digits, `-`, `_`, `.`, `:`, at most 128)",
                clean(id, 80, false)
            )));
        }
        None => derived_id(file, n),
    };
    if loaded.index.contains_key(&id) {
        return Err(named(&format!("a rule with id {id} is already loaded")));
    }
    if loaded.infos.len() >= MAX_RULES {
        return Err(named(&format!("over the limit of {MAX_RULES} rules")));
    }
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
    let new = fields.iter().filter(|f| !all_fields.contains(*f)).count();
    if all_fields.len() + new > MAX_FIELDS {
        return Err(named(&format!(
            "the rules loaded before it already name {} CloudTrail fields, and a pack reads at most {MAX_FIELDS}",
            all_fields.len()
        )));
    }
    engine
        .add_rule(&rule)
        .map_err(|e| named(&format!("it does not compile: {e}")))?;
    all_fields.extend(fields.iter().cloned());
    loaded.index.insert(id.clone(), loaded.infos.len());
    loaded.infos.push(info(id, title, &rule));
    loaded.fields_of.push(fields);
    Ok(())
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

/// An id for a rule without one: `sigma.` + its file's name + its place.
fn derived_id(file: &str, n: usize) -> String {
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
    format!("sigma.{stem}.{n}")
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

/// The rule's metadata as trailguard shows it (docs/sigma.md): severity
/// and risk score from `level`, ATT&CK techniques from `attack.tNNNN` tags.
fn info(id: String, title: String, rule: &SigmaRule) -> RuleInfo {
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
        .modified
        .as_deref()
        .or(rule.date.as_deref())
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    RuleInfo {
        id,
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
        description: clean(rule.description.as_deref().unwrap_or(""), 16 << 10, true),
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
        author: clean(rule.author.as_deref().unwrap_or(""), 1024, false),
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

/// The line (1-based) where a rule starts in its file: the line of its
/// `id:`, else of its `title:`, else 1.
fn line_of(text: &str, id: Option<&str>, title: &str) -> usize {
    let find = |key: &str, value: &str| {
        text.lines().position(|line| {
            line.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim().trim_matches(['\'', '"']) == value)
        })
    };
    id.and_then(|id| find("id:", id))
        .or_else(|| find("title:", title))
        .map_or(1, |i| i + 1)
}

/// The line a parser's message names (`... at line 3 column 5`).
fn line_in_message(message: &str) -> Option<usize> {
    let rest = &message[message.find("line ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
