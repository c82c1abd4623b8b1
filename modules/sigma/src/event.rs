//! An event as rsigma sees it: the CloudTrail fields the rules named,
//! looked up by their Sigma names (dotted paths into the raw record).

use std::borrow::Cow;

use rsigma_eval::EventValue;
use trailguard_rule_sdk::serde_json::{self, Value as Json};
use trailguard_rule_sdk::{Event, Value};

/// One event; every field a loaded rule names was declared in `fields`, so
/// the host extracted it.
pub(crate) struct SigmaEvent<'e, 'a>(pub(crate) &'e Event<'a>);

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
        Some(match self.0.get(path)? {
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

    // Keyword detections (values without a field) are not loaded: a rule
    // sees only the fields it names (docs/sigma.md), so there is nothing to
    // search.
    fn any_string_value(&self, _pred: &dyn Fn(&str) -> bool) -> bool {
        false
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        Vec::new()
    }

    fn to_json(&self) -> Json {
        Json::Null
    }
}
