//! Fields of the raw CloudTrail record that rules declared: which paths to
//! extract ([`RecordPaths`]), the extraction (once per event, however many
//! rules ask), and the values an event carries ([`RecordValues`]).
//!
//! A path is a dotted list of keys. At each object, the whole rest of the
//! path is tried as one key first (`{"a.b": 1}`), then ever shorter dotted
//! heads, longest first (`{"a": {"b": 1}}`); the first key present is
//! followed. A value that is a string holding a JSON object (as Athena and
//! Glue exports deliver `requestParameters`) is descended into. When an
//! object repeats a key, the last one counts (as in `serde_json::Value`).

use std::borrow::Cow;
use std::sync::Arc;

use serde::de::{IgnoredAny, Visitor};
use trailguard_rule_sdk::{OwnedValue, Value, ValueKind};

use crate::NormalizedEvent;

/// Largest text of one value that is carried (compact, unescaped); a
/// larger value is kept as [`ValueKind::Oversized`] (present, without
/// content).
pub const MAX_VALUE_BYTES: usize = 64 << 10;

/// Most text of values one event carries, all paths together; values past
/// it are kept as [`ValueKind::Oversized`].
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Whether an event (its normalized fields) is one a rule wants: its
/// filters on normalized fields, checked before its paths are extracted.
pub type EventTest = Arc<dyn Fn(&NormalizedEvent) -> bool + Send + Sync>;

/// The record paths to extract from events, in order (the union of what the
/// loaded rules declared), and for which events: a rule's paths are
/// extracted only from events that pass its filters on normalized fields,
/// since it never sees the others. Cheap to clone; events keep the list
/// their values belong to.
#[derive(Clone, Default)]
pub struct RecordPaths(Option<Arc<Requests>>);

struct Requests {
    paths: Vec<String>,
    /// Per rule: the indices of its paths, and which events it wants
    /// (`None`: all).
    groups: Vec<(Vec<usize>, Option<EventTest>)>,
}

impl std::fmt::Debug for RecordPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RecordPaths").field(&self.paths()).finish()
    }
}

impl PartialEq for RecordPaths {
    fn eq(&self, other: &Self) -> bool {
        self.paths() == other.paths()
    }
}

impl Eq for RecordPaths {}

impl RecordPaths {
    /// The paths `paths`, each once, in first-seen order, extracted from
    /// every event.
    pub fn new(paths: impl IntoIterator<Item = String>) -> Self {
        RecordPaths::from_requests([(paths.into_iter().collect(), None)])
    }

    /// The union of what several rules read: for each, its paths and the
    /// events it wants (`None`: all).
    pub fn from_requests(
        requests: impl IntoIterator<Item = (Vec<String>, Option<EventTest>)>,
    ) -> Self {
        let mut paths: Vec<String> = Vec::new();
        let mut groups = Vec::new();
        for (wanted, test) in requests {
            if wanted.is_empty() {
                continue;
            }
            let indices = wanted
                .into_iter()
                .map(|p| match paths.iter().position(|q| *q == p) {
                    Some(i) => i,
                    None => {
                        paths.push(p);
                        paths.len() - 1
                    }
                })
                .collect();
            groups.push((indices, test));
        }
        if paths.is_empty() {
            RecordPaths(None)
        } else {
            RecordPaths(Some(Arc::new(Requests { paths, groups })))
        }
    }

    /// The paths.
    pub fn paths(&self) -> &[String] {
        self.0.as_ref().map_or(&[], |r| &r.paths)
    }

    /// Whether there are none (nothing is extracted).
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Whether `self` and `other` are the same list (not only equal).
    pub fn same(&self, other: &RecordPaths) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// The values of every path in `record`, the JSON text of one
    /// CloudTrail record (none if it is not valid JSON).
    pub fn extract(&self, record: &str) -> RecordValues {
        self.extract_where(record, |_| true, false)
    }

    /// The values in `record` of the paths of the rules that want `event`
    /// (the event made from it, with its normalized fields); the others
    /// read as absent, and all do if `record` is not valid JSON.
    pub fn extract_for(&self, event: &NormalizedEvent, record: &str) -> RecordValues {
        let wanted = |test: &Option<EventTest>| test.as_ref().is_none_or(|t| t(event));
        self.extract_where(record, wanted, false)
    }

    /// [`RecordPaths::extract_for`] of a record serde_json has just parsed
    /// (the decoder's: not validated again).
    pub(crate) fn extract_parsed_for(&self, event: &NormalizedEvent, record: &str) -> RecordValues {
        let wanted = |test: &Option<EventTest>| test.as_ref().is_none_or(|t| t(event));
        self.extract_where(record, wanted, true)
    }

    /// The values of the paths of the groups `wanted` accepts; `parsed`:
    /// serde_json has parsed `record` (else it is checked, and nothing is
    /// extracted from what is not JSON).
    fn extract_where(
        &self,
        record: &str,
        wanted: impl Fn(&Option<EventTest>) -> bool,
        parsed: bool,
    ) -> RecordValues {
        let Some(requests) = &self.0 else {
            return RecordValues::default();
        };
        if !requests.groups.iter().any(|(_, test)| wanted(test)) {
            // No rule wants this event (the usual case for a rule that
            // looks at a few kinds of call): nothing to look up.
            return RecordValues {
                paths: self.clone(),
                values: Box::default(),
            };
        }
        if !parsed && !valid(record) {
            return RecordValues::default();
        }
        let mut needed = vec![false; requests.paths.len()];
        for (indices, test) in &requests.groups {
            if wanted(test) {
                for &i in indices {
                    needed[i] = true;
                }
            }
        }
        let lookups: Vec<(usize, &str)> = requests
            .paths
            .iter()
            .enumerate()
            .filter(|(i, _)| needed[*i])
            .map(|(i, p)| (i, p.as_str()))
            .collect();
        let mut values = vec![OwnedValue::default(); requests.paths.len()];
        resolve(record, &lookups, &mut values);
        // Nested paths may repeat each other's text (`a`, `a.b`, ...): what
        // one event carries is bounded all the same.
        let mut total = 0usize;
        for value in &mut values {
            total = total.saturating_add(value.text().len());
            if total > MAX_EVENT_BYTES {
                *value = OwnedValue::new(ValueKind::Oversized, "");
            }
        }
        RecordValues {
            paths: self.clone(),
            values: values.into(),
        }
    }
}

/// The values an event carries for the paths some rule declared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordValues {
    paths: RecordPaths,
    values: Box<[OwnedValue]>,
}

impl RecordValues {
    /// `values` of `paths`, in order (missing ones absent, extra ones
    /// dropped).
    pub fn new(paths: RecordPaths, values: Vec<OwnedValue>) -> Self {
        let mut values = values;
        values.resize(paths.paths().len(), OwnedValue::default());
        RecordValues {
            paths,
            values: values.into(),
        }
    }

    /// The paths the values belong to.
    pub fn paths(&self) -> &RecordPaths {
        &self.paths
    }

    /// The value of the `k`-th path.
    pub fn at(&self, k: usize) -> Option<&OwnedValue> {
        self.values.get(k)
    }

    /// The value at `path`, when it was extracted and present.
    pub fn get(&self, path: &str) -> Option<Value<'_>> {
        let k = self.paths.paths().iter().position(|p| p == path)?;
        self.values.get(k)?.view()
    }

    /// Bytes of text of the values.
    pub fn text_bytes(&self) -> usize {
        self.values.iter().map(|v| v.text().len()).sum()
    }

    /// Whether nothing was extracted.
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(|v| v.kind() == ValueKind::Absent)
    }

    /// The extracted values as one flat JSON object, path to value (absent
    /// and oversized ones left out): extracting the same paths from it gives
    /// the same values, since a key spelled with dots is found first.
    pub fn to_flat_json(&self) -> String {
        let mut object = String::from("{");
        for (path, value) in self.paths.paths().iter().zip(self.values.iter()) {
            if let Some(json) = value.view().and_then(Value::to_json) {
                if object.len() > 1 {
                    object.push(',');
                }
                object.push_str(&serde_json::Value::from(path.as_str()).to_string());
                object.push(':');
                object.push_str(&json);
            }
        }
        object.push('}');
        object
    }
}

/// Whether `text` is one valid JSON value.
fn valid(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

/// Fills `out[slot]` for each `(slot, rest of the path)` in `requests`,
/// looked up in the JSON value `text` (valid JSON: see [`members`]).
fn resolve(text: &str, requests: &[(usize, &str)], out: &mut [OwnedValue]) {
    if text.starts_with('"') {
        // A string holding an object: descend into it (checked first: the
        // string's content was never parsed).
        if let Ok(Text(inner)) = serde_json::from_str::<Text<'_>>(text) {
            let inner = inner.trim();
            if inner.starts_with('{') && valid(inner) {
                resolve(inner, requests, out);
            }
        }
        return;
    }
    // Keys are matched as spelled; one spelled in other case (the all
    // lower-case keys of Athena and Glue exports) is used when no key
    // matches as spelled.
    let wanted = |key: &str| {
        requests.iter().any(|(_, rest)| {
            rest.get(..key.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(key))
                && rest[key.len()..].chars().next().is_none_or(|c| c == '.')
        })
    };
    let Some(members) = members(text, &wanted) else {
        return;
    };
    let exact = |key: &str| members.iter().position(|(k, _)| k == key);
    let any_case = |key: &str| {
        members
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(key))
    };
    let mut children: Vec<(usize, usize, &str)> = Vec::new();
    for &(slot, rest) in requests {
        for find in [&exact as &dyn Fn(&str) -> Option<usize>, &any_case] {
            if let Some(m) = find(rest) {
                out[slot] = value_of(members[m].1);
                break;
            }
            let head = rest
                .rmatch_indices('.')
                .find_map(|(dot, _)| Some((find(&rest[..dot])?, &rest[dot + 1..])));
            if let Some((m, rest)) = head {
                children.push((m, slot, rest));
                break;
            }
        }
    }
    children.sort_by_key(|c| c.0);
    for group in children.chunk_by(|a, b| a.0 == b.0) {
        let requests: Vec<(usize, &str)> = group.iter().map(|&(_, s, r)| (s, r)).collect();
        resolve(members[group[0].0].1, &requests, out);
    }
}

/// The members of the JSON object `text` whose keys `wanted` accepts, with
/// their values' text; `None` if `text` is not an object.
///
/// `text` must be valid JSON (every caller's text was parsed by serde_json
/// first: the record, or a string checked before it is descended into):
/// values are skipped by finding their end, quotes and brackets with
/// `memchr`, without being parsed again. On text that is not valid JSON
/// it still ends, in time linear in its length, and never reads past it.
fn members<'t>(
    text: &'t str,
    wanted: &dyn Fn(&str) -> bool,
) -> Option<Vec<(Cow<'t, str>, &'t str)>> {
    let bytes = text.as_bytes();
    let blank = |mut i: usize| {
        while bytes.get(i)?.is_ascii_whitespace() {
            i += 1;
        }
        Some(i)
    };
    let mut i = blank(0)?;
    if bytes[i] != b'{' {
        return None;
    }
    let mut found = Vec::new();
    i = blank(i + 1)?;
    if bytes[i] == b'}' {
        return Some(found);
    }
    loop {
        if bytes[i] != b'"' {
            return None;
        }
        let key_end = string_end(bytes, i)?;
        let raw_key = text.get(i + 1..key_end - 1)?;
        // A key that does not decode (a lone surrogate escape) is no key a
        // path can name: skipped, the rest still read.
        let key = if raw_key.contains('\\') {
            serde_json::from_str::<String>(text.get(i..key_end)?)
                .ok()
                .map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(raw_key))
        };
        i = blank(key_end)?;
        if bytes[i] != b':' {
            return None;
        }
        let start = blank(i + 1)?;
        let end = value_end(bytes, start)?;
        if let Some(key) = key.filter(|k| wanted(k)) {
            let value = text.get(start..end)?;
            // A repeated key: the last one counts, and takes the first's
            // place (what is kept is bounded by the keys asked for).
            match found.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => found.push((key, value)),
            }
        }
        i = blank(end)?;
        match bytes[i] {
            b',' => i = blank(i + 1)?,
            b'}' => return Some(found),
            _ => return None,
        }
    }
}

/// The end (exclusive) of the string whose opening quote is at `start`.
/// Most strings of a record are short: a byte loop beats starting a vector
/// search for each.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match bytes.get(i)? {
            b'"' => return Some(i + 1),
            // A backslash escapes the next byte (`\"`, `\\`, `\u`...).
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The end (exclusive) of the JSON value starting at `start`.
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    let (open, close) = match bytes.get(start)? {
        b'"' => return string_end(bytes, start),
        b'{' => (b'{', b'}'),
        b'[' => (b'[', b']'),
        _ => {
            // A number, `true`, `false` or `null`: up to the next delimiter.
            let n = bytes[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(bytes.len() - start);
            return Some(start + n);
        }
    };
    // In valid JSON the other kind of bracket balances inside, and strings
    // are skipped whole: counting this kind alone finds the end.
    let mut depth = 0usize;
    let mut i = start;
    loop {
        let at = i + memchr::memchr3(b'"', open, close, bytes.get(i..)?)?;
        match bytes[at] {
            b'"' => i = string_end(bytes, at)?,
            b if b == open => {
                depth += 1;
                i = at + 1;
            }
            _ => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(at + 1);
                }
                i = at + 1;
            }
        }
    }
}

/// The typed value of one JSON value's text (its content measured as it
/// crosses: compact, unescaped).
fn value_of(text: &str) -> OwnedValue {
    OwnedValue::from_json_text(text, MAX_VALUE_BYTES)
}

/// A JSON string, borrowed from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(record: &str, path: &str) -> Option<(ValueKind, String)> {
        let values = RecordPaths::new([path.to_owned()]).extract(record);
        let v = values.at(0)?;
        (v.kind() != ValueKind::Absent).then(|| (v.kind(), v.text().to_owned()))
    }

    const RECORD: &str = r#"{
        "eventName": "PutBucketPolicy",
        "requestParameters": {"bucketName": "logs", "bucketPolicy": {"Statement": [{"Principal": "*"}]}, "n": 12.50, "big": 123456789012345678901, "on": false, "nothing": null, "list": [1, "a"]},
        "userIdentity": {"sessionContext": {"sessionIssuer": {"type": "Role"}}},
        "a.b": "flat", "a": {"b": "nested", "c": "only nested"},
        "dup": 1, "dup": 2,
        "esc": "q\"\u0041",
        "athena": "{\"inner\":{\"x\":true}}"
    }"#;

    #[test]
    fn values_keep_their_json_type_and_exact_text() {
        use ValueKind as K;
        let s = |k: K, t: &str| Some((k, t.to_owned()));
        assert_eq!(
            get(RECORD, "requestParameters.bucketName"),
            s(K::String, "logs")
        );
        assert_eq!(get(RECORD, "requestParameters.n"), s(K::Number, "12.50"));
        assert_eq!(
            get(RECORD, "requestParameters.big"),
            s(K::Number, "123456789012345678901"),
            "numbers are not rounded"
        );
        assert_eq!(get(RECORD, "requestParameters.on"), s(K::False, ""));
        assert_eq!(get(RECORD, "requestParameters.nothing"), s(K::Null, ""));
        assert_eq!(get(RECORD, "requestParameters.absent"), None);
        assert_eq!(
            get(RECORD, "requestParameters.list"),
            s(K::Array, r#"[1,"a"]"#)
        );
        assert_eq!(
            get(RECORD, "requestParameters.bucketPolicy"),
            s(K::Object, r#"{"Statement":[{"Principal":"*"}]}"#),
            "compact, keys in record order"
        );
        assert_eq!(
            get(RECORD, "requestParameters").map(|(_, t)| t),
            Some(r#"{"bucketName":"logs","bucketPolicy":{"Statement":[{"Principal":"*"}]},"n":12.50,"big":123456789012345678901,"on":false,"nothing":null,"list":[1,"a"]}"#.to_owned()),
            "numbers as written"
        );

        assert_eq!(
            get(RECORD, "userIdentity.sessionContext.sessionIssuer.type"),
            s(K::String, "Role")
        );
        assert_eq!(get(RECORD, "esc"), s(K::String, "q\"A"));
        assert_eq!(
            get(RECORD, "dup"),
            s(K::Number, "2"),
            "the last repeat counts"
        );
        assert_eq!(get(RECORD, "eventName.x"), None, "a string has no members");
    }

    #[test]
    fn a_flat_dotted_key_is_found_before_the_nested_path() {
        assert_eq!(get(RECORD, "a.b"), Some((ValueKind::String, "flat".into())));
        assert_eq!(
            get(RECORD, "a.c"),
            Some((ValueKind::String, "only nested".into()))
        );
    }

    #[test]
    fn a_string_holding_an_object_is_descended_into() {
        assert_eq!(
            get(RECORD, "athena.inner.x"),
            Some((ValueKind::True, String::new()))
        );
        assert_eq!(
            get(RECORD, "athena"),
            Some((ValueKind::String, r#"{"inner":{"x":true}}"#.into())),
            "asked whole, it is the string it is"
        );
    }

    #[test]
    fn many_paths_are_extracted_in_one_pass_in_their_order() {
        let paths = RecordPaths::new(
            [
                "requestParameters.n",
                "eventName",
                "requestParameters",
                "a.b",
                "eventName",
            ]
            .map(String::from),
        );
        assert_eq!(paths.paths().len(), 4, "each path once");
        let values = paths.extract(RECORD);
        assert_eq!(
            values.get("eventName"),
            Some(Value::String("PutBucketPolicy"))
        );
        assert_eq!(
            values.get("requestParameters.n"),
            Some(Value::Number("12.50"))
        );
        assert!(matches!(
            values.get("requestParameters"),
            Some(Value::Object(_))
        ));
        assert_eq!(values.get("a.b"), Some(Value::String("flat")));
        // The flat form gives the same values back.
        let again = paths.extract(&values.to_flat_json());
        assert_eq!(again.values, values.values);
    }

    #[test]
    fn an_oversized_value_is_present_without_content() {
        // The limit is on what crosses: the content, not its quotes.
        let at_limit = format!(r#"{{"x": "{}"}}"#, "a".repeat(MAX_VALUE_BYTES));
        assert_eq!(
            get(&at_limit, "x").map(|(k, t)| (k, t.len())),
            Some((ValueKind::String, MAX_VALUE_BYTES))
        );
        let big = format!(r#"{{"x": "{}", "y": 1}}"#, "a".repeat(MAX_VALUE_BYTES + 1));
        assert_eq!(get(&big, "x"), Some((ValueKind::Oversized, String::new())));
        assert_eq!(get(&big, "y"), Some((ValueKind::Number, "1".into())));
    }

    #[test]
    fn broken_records_give_absent_values() {
        assert_eq!(get("not json", "a"), None);
        assert_eq!(get(r#"{"a": "#, "a"), None);
        assert_eq!(get("[1,2]", "a"), None);
        assert!(RecordPaths::default().extract(RECORD).is_empty());
    }

    #[test]
    fn a_rules_paths_are_extracted_only_from_events_it_wants() {
        let s3: EventTest =
            Arc::new(|e: &NormalizedEvent| e.event_provider.as_deref() == Some("s3.amazonaws.com"));
        let paths = RecordPaths::from_requests([
            (vec!["requestParameters.bucketName".to_owned()], Some(s3)),
            (
                vec![
                    "eventName".to_owned(),
                    "requestParameters.bucketName".to_owned(),
                ],
                None,
            ),
            (Vec::new(), None),
        ]);
        assert_eq!(paths.paths().len(), 2, "each path once");
        let record = r#"{"eventName":"X","requestParameters":{"bucketName":"b"}}"#;
        let mut event = NormalizedEvent::at(0);
        // The second rule wants every event, and reads the bucket too.
        assert_eq!(
            paths
                .extract_for(&event, record)
                .get("requestParameters.bucketName"),
            Some(Value::String("b"))
        );
        let only_s3 = RecordPaths::from_requests([(
            vec!["requestParameters.bucketName".to_owned()],
            Some(Arc::new(|e: &NormalizedEvent| e.event_provider.is_some()) as EventTest),
        )]);
        let skipped = only_s3.extract_for(&event, record);
        assert!(
            skipped.is_empty() && skipped.paths().same(&only_s3),
            "not wanted"
        );
        event.event_provider = Some("s3.amazonaws.com".into());
        assert!(!only_s3.extract_for(&event, record).is_empty());
    }

    #[test]
    fn the_scanner_ends_on_any_prefix_or_corruption_of_a_record() {
        let wanted = |_: &str| true;
        for end in 0..RECORD.len() {
            if let Some(prefix) = RECORD.get(..end) {
                let _ = members(prefix, &wanted);
            }
        }
        let mut bytes = RECORD.as_bytes().to_vec();
        for i in (0..bytes.len()).step_by(7) {
            for b in [b'"', b'\\', b'{', b'}', b'[', b']', b',', b':'] {
                let saved = bytes[i];
                bytes[i] = b;
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    let _ = members(text, &wanted);
                    // Extraction refuses what is not JSON.
                    let _ = RecordPaths::new(["requestParameters.n".to_owned()]).extract(text);
                }
                bytes[i] = saved;
            }
        }
        let top: Vec<String> = members(RECORD, &wanted)
            .expect("an object")
            .into_iter()
            .map(|(k, _)| k.into_owned())
            .collect();
        assert_eq!(
            top,
            [
                "eventName",
                "requestParameters",
                "userIdentity",
                "a.b",
                "a",
                "dup",
                "esc",
                "athena"
            ]
        );
    }

    #[test]
    fn keys_in_other_case_are_used_when_none_matches_as_spelled() {
        let athena = r#"{"requestparameters":{"bucketname":"low"},"requestParameters":{"bucketName":"exact"}}"#;
        assert_eq!(
            get(athena, "requestParameters.bucketName"),
            Some((ValueKind::String, "exact".into())),
            "as spelled first"
        );
        let lower = r#"{"eventname":"X","requestparameters":"{\"bucketname\":\"b\"}"}"#;
        assert_eq!(
            get(lower, "eventName"),
            Some((ValueKind::String, "X".into()))
        );
        assert_eq!(
            get(lower, "requestParameters.bucketName"),
            Some((ValueKind::String, "b".into()))
        );
    }

    #[test]
    fn an_undecodable_key_costs_only_itself() {
        let record = r#"{"tags":{"\ud800":"x","Environment":"prod"},"s":"\udc00"}"#;
        assert_eq!(
            get(record, "tags.Environment"),
            Some((ValueKind::String, "prod".into()))
        );
        assert_eq!(
            get(record, "s").map(|(k, _)| k),
            Some(ValueKind::String),
            "present"
        );
    }

    #[test]
    fn an_event_carries_at_most_its_limit_of_values() {
        // Nested paths repeat each other's text: `a`, `a.a`, `a.a.a`, ...
        let mut record = format!(r#""{}""#, "x".repeat(60 << 10));
        let mut paths = Vec::new();
        let mut path = String::from("a");
        for _ in 0..30 {
            record = format!(r#"{{"a":{record}}}"#);
            paths.push(path.clone());
            path.push_str(".a");
        }
        let values = RecordPaths::new(paths).extract(&record);
        let total: usize = values.values.iter().map(|v| v.text().len()).sum();
        assert!(total <= MAX_EVENT_BYTES, "{total}");
        assert!(
            values
                .values
                .iter()
                .any(|v| v.kind() == ValueKind::Oversized)
        );
    }
}
