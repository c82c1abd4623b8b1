//! An event as rsigma sees it: the CloudTrail fields the rules named,
//! looked up by their Sigma names (dotted paths into the raw record).

use std::borrow::Cow;

use rsigma_eval::EventValue;
use trailguard_rule_sdk::serde_json::{self, Value as Json};
use trailguard_rule_sdk::{Event, Value};

/// One event; every field a loaded rule names was declared in `fields`, so
/// the host extracted it; `searched` are the top-level keys keywords
/// search (none when no keyword rule is loaded).
pub(crate) struct SigmaEvent<'e, 'a> {
    pub(crate) event: &'e Event<'a>,
    pub(crate) searched: &'e [String],
}

/// A JSON value inside an array field, as rsigma compares it: scalars by
/// their text (`true`, numbers as written), objects as compact JSON text.
fn element(value: Json) -> EventValue<'static> {
    match value {
        Json::Null => EventValue::Null,
        Json::Bool(b) => EventValue::Bool(b),
        Json::Number(n) => EventValue::Str(Cow::Owned(n.to_string())),
        Json::String(s) => EventValue::Str(Cow::Owned(s)),
        Json::Array(items) => EventValue::Array(items.into_iter().map(element).collect()),
        object @ Json::Object(_) => EventValue::Str(Cow::Owned(object.to_string())),
    }
}

impl rsigma_eval::Event for SigmaEvent<'_, '_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        Some(match self.event.get(path)? {
            Value::Null => EventValue::Null,
            Value::Bool(b) => EventValue::Bool(b),
            // Numbers by their text as JSON wrote them (numeric modifiers
            // parse it); objects as their compact JSON text (docs/sigma.md).
            Value::Number(text) | Value::String(text) | Value::Object(text) => {
                EventValue::Str(Cow::Borrowed(text))
            }
            // An array matches when an element does.
            Value::Array(text) => match serde_json::from_str::<Vec<Json>>(text) {
                Ok(items) => EventValue::Array(items.into_iter().map(element).collect()),
                Err(_) => return None,
            },
            // Present but not sent (over the host's limit for one value):
            // nothing to compare with.
            Value::Oversized => return None,
        })
    }

    /// A keyword: every string and scalar of the record (numbers as
    /// written, `true`/`false`), through objects and arrays.
    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        let mut found = false;
        self.visit(&mut |text| found = found || pred(text));
        found
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut all = Vec::new();
        self.visit(&mut |text| all.push(Cow::Owned(text.to_owned())));
        all
    }

    fn to_json(&self) -> Json {
        Json::Null
    }
}

/// How deep a keyword search goes into nested objects and arrays.
const MAX_DEPTH: usize = 64;

impl SigmaEvent<'_, '_> {
    /// Calls `visit` with the text of every string and scalar under the
    /// searched keys.
    fn visit(&self, visit: &mut dyn FnMut(&str)) {
        for key in self.searched {
            match self.event.get(key) {
                Some(Value::String(text) | Value::Number(text)) => visit(text),
                Some(Value::Bool(b)) => visit(if b { "true" } else { "false" }),
                Some(Value::Object(text) | Value::Array(text)) => {
                    if let Ok(json) = serde_json::from_str::<Json>(text) {
                        visit_json(&json, visit, MAX_DEPTH);
                    }
                }
                Some(Value::Null | Value::Oversized) | None => {}
            }
        }
    }
}

fn visit_json(value: &Json, visit: &mut dyn FnMut(&str), depth: usize) {
    if depth == 0 {
        return;
    }
    match value {
        Json::String(s) => visit(s),
        Json::Number(n) => visit(&n.to_string()),
        Json::Bool(b) => visit(if *b { "true" } else { "false" }),
        Json::Null => {}
        Json::Array(items) => items.iter().for_each(|v| visit_json(v, visit, depth - 1)),
        Json::Object(map) => map.values().for_each(|v| visit_json(v, visit, depth - 1)),
    }
}
