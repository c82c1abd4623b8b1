//! [`AlertDocument`]: one alert, a flat JSON object. The fields every alert
//! of a rule carries (its name, severity, tags, ATT&CK ids, ...) are built
//! once per rule as [`SharedFields`] and shared by its alerts, which neither
//! copy nor re-serialize them; an alert owns only its own fields.

use std::cmp::Ordering;
use std::fmt;
use std::iter::Peekable;
use std::sync::{Arc, LazyLock};

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// Fields that are the same in every alert of one rule, sorted by name,
/// each with its JSON member text (`"name":value`).
#[derive(Debug, Default)]
pub struct SharedFields {
    entries: Vec<SharedField>,
}

#[derive(Debug)]
struct SharedField {
    name: String,
    value: Value,
    /// `"name":value`, as [`AlertDocument::write_json`] writes it.
    member: String,
}

impl SharedFields {
    /// The fields, serialized once here.
    pub fn new(fields: Map<String, Value>) -> Arc<SharedFields> {
        let mut entries: Vec<SharedField> = fields
            .into_iter()
            .map(|(name, value)| {
                // Serializing a string or a JSON value cannot fail.
                let member = format!(
                    "{}:{}",
                    serde_json::to_string(&name).unwrap_or_default(),
                    serde_json::to_string(&value).unwrap_or_default()
                );
                SharedField {
                    name,
                    value,
                    member,
                }
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Arc::new(SharedFields { entries })
    }

    fn get(&self, name: &str) -> Option<&SharedField> {
        self.entries
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The length of the members' JSON text, separators included.
    pub fn json_len(&self) -> usize {
        self.entries.iter().map(|e| e.member.len() + 1).sum()
    }
}

/// One alert: a flat JSON object with dotted ECS / Elastic names, read and
/// changed like a JSON map, written with its members sorted by name.
///
/// Cloning one shares the rule's fields; changing a shared field (by
/// [`insert`](AlertDocument::insert) or [`remove`](AlertDocument::remove))
/// changes only this alert.
#[derive(Clone, Default)]
pub struct AlertDocument {
    shared: Arc<SharedFields>,
    /// The alert's own fields; one named as a shared field replaces it.
    /// Iterated in name order (serde_json's map without `preserve_order`;
    /// a test checks it), which the merge with the shared fields relies on.
    own: Map<String, Value>,
}

/// A member of a document, in name order: a shared field or one of its own.
enum Member<'a> {
    Shared(&'a SharedField),
    Own(&'a String, &'a Value),
}

/// The members of a document in name order; an own field hides a shared
/// one of the same name.
struct Members<'a> {
    shared: Peekable<std::slice::Iter<'a, SharedField>>,
    own: Peekable<serde_json::map::Iter<'a>>,
}

impl<'a> Iterator for Members<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        let order = match (self.shared.peek(), self.own.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(shared), Some((name, _))) => shared.name.as_str().cmp(name.as_str()),
        };
        match order {
            Ordering::Less => self.shared.next().map(Member::Shared),
            Ordering::Equal => {
                self.shared.next();
                self.own.next().map(|(k, v)| Member::Own(k, v))
            }
            Ordering::Greater => self.own.next().map(|(k, v)| Member::Own(k, v)),
        }
    }
}

/// The fields of a document in name order: `(name, value)`.
pub struct Iter<'a>(Members<'a>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<(&'a str, &'a Value)> {
        self.0.next().map(|m| match m {
            Member::Shared(field) => (field.name.as_str(), &field.value),
            Member::Own(name, value) => (name.as_str(), value),
        })
    }
}

impl<'a> IntoIterator for &'a AlertDocument {
    type Item = (&'a str, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

static NULL: Value = Value::Null;
static NO_SHARED: LazyLock<Arc<SharedFields>> = LazyLock::new(Arc::default);

impl AlertDocument {
    /// An empty document.
    pub fn new() -> AlertDocument {
        AlertDocument::from(Map::new())
    }

    /// A document of `shared` fields and `own` ones; a shared field wins
    /// over an own field of the same name.
    pub fn with_shared(shared: Arc<SharedFields>, mut own: Map<String, Value>) -> AlertDocument {
        // Both in name order: one walk finds a clash.
        let mut names = own.keys().peekable();
        let clash = shared.entries.iter().any(|e| {
            while names
                .next_if(|name| name.as_str() < e.name.as_str())
                .is_some()
            {}
            names.peek().is_some_and(|name| **name == e.name)
        });
        if clash {
            own.retain(|name, _| shared.get(name).is_none());
        }
        AlertDocument { shared, own }
    }

    fn members(&self) -> Members<'_> {
        Members {
            shared: self.shared.entries.iter().peekable(),
            own: self.own.iter().peekable(),
        }
    }

    /// The value of field `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.own
            .get(name)
            .or_else(|| self.shared.get(name).map(|e| &e.value))
    }

    /// Whether the document has field `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets field `name`; returns its previous value.
    pub fn insert(&mut self, name: String, value: Value) -> Option<Value> {
        let shared = self.shared.get(&name).map(|e| e.value.clone());
        self.own.insert(name, value).or(shared)
    }

    /// Removes field `name`; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        if self.shared.get(name).is_some() {
            self.unshare();
        }
        self.own.remove(name)
    }

    /// Makes every shared field the document's own.
    fn unshare(&mut self) {
        for field in &self.shared.entries {
            if !self.own.contains_key(&field.name) {
                self.own.insert(field.name.clone(), field.value.clone());
            }
        }
        self.shared = NO_SHARED.clone();
    }

    /// The fields in name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.members())
    }

    /// The field names in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members().map(|m| match m {
            Member::Shared(field) => field.name.as_str(),
            Member::Own(name, _) => name.as_str(),
        })
    }

    /// The field values in name order.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.iter().map(|(_, value)| value)
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.members().count()
    }

    /// Whether it has no fields.
    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.shared.entries.is_empty()
    }

    /// The fields as a JSON map.
    pub fn into_map(mut self) -> Map<String, Value> {
        self.unshare();
        self.own
    }

    /// Appends the document as compact JSON, members in name order: the
    /// same text as `serde_json::to_writer`, with the shared members copied
    /// as they were serialized once.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, member) in self.members().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match member {
                Member::Shared(field) => out.extend_from_slice(field.member.as_bytes()),
                Member::Own(name, value) => {
                    // Writing a string or a JSON value to a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut *out, name);
                    out.push(b':');
                    let _ = serde_json::to_writer(&mut *out, value);
                }
            }
        }
        out.push(b'}');
    }

    /// The document as compact JSON text.
    pub fn to_json_string(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out);
        // JSON written by serde_json is UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }
}

impl From<Map<String, Value>> for AlertDocument {
    fn from(own: Map<String, Value>) -> AlertDocument {
        AlertDocument {
            shared: NO_SHARED.clone(),
            own,
        }
    }
}

impl From<AlertDocument> for Value {
    fn from(doc: AlertDocument) -> Value {
        Value::Object(doc.into_map())
    }
}

impl PartialEq for AlertDocument {
    fn eq(&self, other: &AlertDocument) -> bool {
        self.iter().eq(other.iter())
    }
}

impl fmt::Debug for AlertDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Like a JSON value's: `Null` for a field the document lacks.
impl std::ops::Index<&str> for AlertDocument {
    type Output = Value;

    fn index(&self, name: &str) -> &Value {
        self.get(name).unwrap_or(&NULL)
    }
}

impl Serialize for AlertDocument {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for AlertDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AlertDocument, D::Error> {
        Map::deserialize(deserializer).map(AlertDocument::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn doc() -> AlertDocument {
        let shared = SharedFields::new(map(json!({
            "kibana.alert.rule.name": "Rule \"A\"",
            "kibana.alert.rule.tags": ["trailguard", "attack.t1078"],
            "kibana.alert.risk_score": 47,
            "event.kind": "signal",
        })));
        AlertDocument::with_shared(
            shared,
            map(json!({
                "@timestamp": "2026-04-22T10:00:00Z",
                "user.name": "ci-deploy\n",
                "event.kind": "the rule's own, hidden",
                "zz": null,
            })),
        )
    }

    /// The same document as one JSON map: what it must read and write as.
    fn plain() -> Map<String, Value> {
        map(json!({
            "kibana.alert.rule.name": "Rule \"A\"",
            "kibana.alert.rule.tags": ["trailguard", "attack.t1078"],
            "kibana.alert.risk_score": 47,
            "event.kind": "signal",
            "@timestamp": "2026-04-22T10:00:00Z",
            "user.name": "ci-deploy\n",
            "zz": null,
        }))
    }

    #[test]
    fn reads_and_writes_as_one_map() {
        let doc = doc();
        let plain = plain();
        assert_eq!(doc.len(), plain.len());
        assert!(doc.keys().eq(plain.keys().map(String::as_str)));
        assert_eq!(doc.get("event.kind"), Some(&json!("signal")), "shared wins");
        assert_eq!(doc["kibana.alert.risk_score"], 47);
        assert_eq!(doc["absent"], Value::Null);
        assert!(doc.contains_key("zz") && !doc.contains_key("absent"));
        let written = serde_json::to_string(&plain).expect("json");
        assert_eq!(doc.to_json_string(), written);
        assert_eq!(serde_json::to_string(&doc).expect("json"), written);
        let back: AlertDocument = serde_json::from_str(&written).expect("back");
        assert_eq!(back, doc);
        assert_eq!(doc.clone().into_map(), plain);
        assert_eq!(Value::from(doc), Value::Object(plain));
    }

    #[test]
    fn changing_a_shared_field_changes_only_this_alert() {
        let one = doc();
        let mut other = one.clone();
        assert_eq!(
            other.insert("kibana.alert.risk_score".into(), 99.into()),
            Some(json!(47))
        );
        assert_eq!(other["kibana.alert.risk_score"], 99);
        assert_eq!(other.len(), one.len());
        assert_eq!(other.remove("event.kind"), Some(json!("signal")));
        assert!(!other.contains_key("event.kind"));
        assert_eq!(other.remove("user.name"), Some(json!("ci-deploy\n")));
        assert_eq!(other.len(), one.len() - 2);
        assert_eq!(
            one.to_json_string(),
            serde_json::to_string(&plain()).expect("json")
        );
        let mut expected = plain();
        expected.insert("kibana.alert.risk_score".into(), 99.into());
        expected.remove("event.kind");
        expected.remove("user.name");
        assert_eq!(
            other.to_json_string(),
            serde_json::to_string(&expected).expect("json")
        );
    }

    /// The merge of shared and own fields needs both in name order: a
    /// dependency turning on serde_json's `preserve_order` fails here.
    #[test]
    fn a_json_map_iterates_in_name_order() {
        let mut own = Map::new();
        for name in ["b", "a", "c.b", "c.a", "@timestamp"] {
            own.insert(name.into(), Value::Null);
        }
        let names: Vec<&String> = own.keys().collect();
        assert_eq!(names, ["@timestamp", "a", "b", "c.a", "c.b"]);
    }

    #[test]
    fn empty_documents() {
        let empty = AlertDocument::new();
        assert!(empty.is_empty());
        assert_eq!(empty.len(), 0);
        assert_eq!(empty.to_json_string(), "{}");
        let only_shared = AlertDocument::with_shared(SharedFields::new(plain()), Map::new());
        assert!(!only_shared.is_empty());
        assert_eq!(
            only_shared.to_json_string(),
            serde_json::to_string(&plain()).expect("json")
        );
    }
}
