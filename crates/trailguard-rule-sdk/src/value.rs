//! Values of the raw CloudTrail record's fields, typed as JSON types them.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

/// The JSON type of a record field's value, as the contract's `value-kind`
/// enum numbers it (`event-batch.value-kinds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// No value at the path.
    Absent = 0,
    /// `null`.
    Null = 1,
    /// `false`.
    False = 2,
    /// `true`.
    True = 3,
    /// A number (its text as written).
    Number = 4,
    /// A string (its text unescaped).
    String = 5,
    /// An object (its compact JSON text).
    Object = 6,
    /// An array (its compact JSON text).
    Array = 7,
    /// Present, but over the host's limit for one value.
    Oversized = 8,
}

impl ValueKind {
    /// The kind numbered `code` on the wire; unknown codes read as absent.
    pub fn from_code(code: u8) -> ValueKind {
        match code {
            1 => ValueKind::Null,
            2 => ValueKind::False,
            3 => ValueKind::True,
            4 => ValueKind::Number,
            5 => ValueKind::String,
            6 => ValueKind::Object,
            7 => ValueKind::Array,
            8 => ValueKind::Oversized,
            _ => ValueKind::Absent,
        }
    }

    /// Whether values of this kind carry text (number, string, object,
    /// array).
    pub fn has_text(self) -> bool {
        matches!(
            self,
            ValueKind::Number | ValueKind::String | ValueKind::Object | ValueKind::Array
        )
    }
}

/// The value of a record field in one event, borrowing its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written in the record (exact: parse it as you need).
    Number(&'a str),
    /// A string, unescaped.
    String(&'a str),
    /// An object, as compact JSON text.
    Object(&'a str),
    /// An array, as compact JSON text.
    Array(&'a str),
    /// A value whose JSON text is over the host's limit for one value
    /// (64 KiB): it exists, but its content did not cross.
    Oversized,
}

impl<'a> Value<'a> {
    /// The value of `kind` with `text`; `None` for [`ValueKind::Absent`].
    pub fn new(kind: ValueKind, text: &'a str) -> Option<Value<'a>> {
        Some(match kind {
            ValueKind::Absent => return None,
            ValueKind::Null => Value::Null,
            ValueKind::False => Value::Bool(false),
            ValueKind::True => Value::Bool(true),
            ValueKind::Number => Value::Number(text),
            ValueKind::String => Value::String(text),
            ValueKind::Object => Value::Object(text),
            ValueKind::Array => Value::Array(text),
            ValueKind::Oversized => Value::Oversized,
        })
    }

    /// The value's kind.
    pub fn kind(self) -> ValueKind {
        match self {
            Value::Null => ValueKind::Null,
            Value::Bool(false) => ValueKind::False,
            Value::Bool(true) => ValueKind::True,
            Value::Number(_) => ValueKind::Number,
            Value::String(_) => ValueKind::String,
            Value::Object(_) => ValueKind::Object,
            Value::Array(_) => ValueKind::Array,
            Value::Oversized => ValueKind::Oversized,
        }
    }

    /// The text that crosses for this value (empty for null, booleans and
    /// oversized values).
    pub fn text(self) -> &'a str {
        match self {
            Value::Number(t) | Value::String(t) | Value::Object(t) | Value::Array(t) => t,
            _ => "",
        }
    }

    /// The string, if the value is one.
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if the value is one.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The number as an `i64`, if it is an integer that fits.
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// The number as an `f64`.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// What filters compare: a string's text, a number's text, `true` or
    /// `false`; nothing for null, objects, arrays and oversized values.
    pub fn comparable(self) -> Option<&'a str> {
        match self {
            Value::String(t) | Value::Number(t) => Some(t),
            Value::Bool(true) => Some("true"),
            Value::Bool(false) => Some("false"),
            _ => None,
        }
    }

    /// The value as JSON text (objects and arrays as they crossed, strings
    /// quoted again); `None` when oversized.
    pub fn to_json(self) -> Option<String> {
        Some(match self {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Number(t) | Value::Object(t) | Value::Array(t) => t.to_owned(),
            Value::String(s) => serde_json::Value::from(s).to_string(),
            Value::Oversized => return None,
        })
    }

    /// Deserializes the value (an object into a struct, an array into a
    /// `Vec`, ...); `None` when it does not have that shape or is oversized.
    pub fn parse<T: DeserializeOwned>(self) -> Option<T> {
        match self {
            Value::String(s) => serde_json::from_value(serde_json::Value::from(s)).ok(),
            other => serde_json::from_str(&other.to_json()?).ok(),
        }
    }
}

/// JSON text without insignificant whitespace, otherwise byte for byte
/// (numbers keep the digits they were written with, keys their order and
/// escapes; a parse-and-print would round numbers past `f64`). Text that is
/// already compact, as most records are delivered, is taken as it is.
pub fn compact_json(text: &str) -> Cow<'_, str> {
    let blank = |b: u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    if !text.bytes().any(blank) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_ascii() && blank(c as u8) {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// A record field's value that owns its text: what the host keeps per event
/// and what test events hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OwnedValue {
    kind: ValueKind,
    text: Box<str>,
}

impl OwnedValue {
    /// A value of `kind` with `text` (ignored for kinds without text).
    pub fn new(kind: ValueKind, text: &str) -> OwnedValue {
        OwnedValue {
            kind,
            text: if kind.has_text() {
                text.into()
            } else {
                "".into()
            },
        }
    }

    /// The value whose JSON text is `text`, as the host extracts it: numbers
    /// as written, strings unescaped, objects and arrays compact with their
    /// keys in order; [`ValueKind::Oversized`] when that text is over
    /// `limit` bytes. `text` must be one JSON value (the host's has been
    /// parsed); a string with an escape that does not decode (a lone
    /// surrogate) keeps its escaped text.
    pub fn from_json_text(text: &str, limit: usize) -> OwnedValue {
        let text = text.trim();
        let (kind, content): (ValueKind, Cow<'_, str>) = match text.as_bytes().first() {
            None => return OwnedValue::default(),
            Some(b'n') => (ValueKind::Null, Cow::Borrowed("")),
            Some(b't') => (ValueKind::True, Cow::Borrowed("")),
            Some(b'f') => (ValueKind::False, Cow::Borrowed("")),
            Some(b'"') => {
                let content = match serde_json::from_str::<String>(text) {
                    Ok(s) => Cow::Owned(s),
                    Err(_) => {
                        Cow::Borrowed(text.get(1..text.len().saturating_sub(1)).unwrap_or(""))
                    }
                };
                (ValueKind::String, content)
            }
            Some(b'{') => (ValueKind::Object, compact_json(text)),
            Some(b'[') => (ValueKind::Array, compact_json(text)),
            Some(_) => (ValueKind::Number, Cow::Borrowed(text)),
        };
        if content.len() > limit {
            return OwnedValue::new(ValueKind::Oversized, "");
        }
        OwnedValue::new(kind, &content)
    }

    /// A JSON value (objects and arrays become their compact text; keys
    /// sorted and numbers printed again by `serde_json`: use
    /// [`OwnedValue::from_json_text`] to keep them as written).
    pub fn from_json(value: &serde_json::Value) -> OwnedValue {
        use serde_json::Value as J;
        match value {
            J::Null => OwnedValue::new(ValueKind::Null, ""),
            J::Bool(false) => OwnedValue::new(ValueKind::False, ""),
            J::Bool(true) => OwnedValue::new(ValueKind::True, ""),
            J::Number(n) => OwnedValue::new(ValueKind::Number, &n.to_string()),
            J::String(s) => OwnedValue::new(ValueKind::String, s),
            J::Object(_) => OwnedValue::new(ValueKind::Object, &value.to_string()),
            J::Array(_) => OwnedValue::new(ValueKind::Array, &value.to_string()),
        }
    }

    /// The kind.
    pub fn kind(&self) -> ValueKind {
        self.kind
    }

    /// The text (empty for kinds without text).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The borrowed value; `None` when absent.
    pub fn view(&self) -> Option<Value<'_>> {
        Value::new(self.kind, &self.text)
    }
}

impl Default for OwnedValue {
    fn default() -> Self {
        OwnedValue::new(ValueKind::Absent, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_codes() {
        for code in 0..=8u8 {
            assert_eq!(ValueKind::from_code(code) as u8, code);
        }
        assert_eq!(ValueKind::from_code(200), ValueKind::Absent);
    }

    #[test]
    fn json_values_keep_their_type_and_text() {
        let j = serde_json::json!({"b": [1, true], "a": "x"});
        let v = OwnedValue::from_json(&j);
        assert_eq!(v.kind(), ValueKind::Object);
        let back: serde_json::Value = v.view().and_then(Value::parse).expect("object");
        assert_eq!(back, j);
        let n = OwnedValue::from_json(&serde_json::json!(12345678901234567u64));
        assert_eq!(n.view(), Some(Value::Number("12345678901234567")));
        assert_eq!(n.view().and_then(Value::as_i64), Some(12345678901234567));
        assert_eq!(
            OwnedValue::from_json(&serde_json::json!(false)).view(),
            Some(Value::Bool(false))
        );
        assert_eq!(
            OwnedValue::from_json(&serde_json::Value::Null).view(),
            Some(Value::Null)
        );
        assert_eq!(OwnedValue::default().view(), None);
        let s = OwnedValue::from_json(&serde_json::json!("a\"b"));
        assert_eq!(s.view().and_then(Value::as_str), Some("a\"b"));
        assert_eq!(
            s.view().and_then(Value::to_json).as_deref(),
            Some("\"a\\\"b\"")
        );
    }

    #[test]
    fn json_text_keeps_numbers_and_order_and_measures_what_crosses() {
        let v = OwnedValue::from_json_text(r#"{ "b" : 12.50, "a": [1, "x y"] }"#, 100);
        assert_eq!(
            v.view(),
            Some(Value::Object(r#"{"b":12.50,"a":[1,"x y"]}"#))
        );
        assert_eq!(
            OwnedValue::from_json_text("123456789012345678901", 100).view(),
            Some(Value::Number("123456789012345678901"))
        );
        assert_eq!(
            OwnedValue::from_json_text(r#""q\"\u0041""#, 100).view(),
            Some(Value::String("q\"A"))
        );
        assert_eq!(
            OwnedValue::from_json_text(r#""\ud800x""#, 100).view(),
            Some(Value::String("\\ud800x")),
            "present, with its escape"
        );
        // 8 bytes unescaped, 20 escaped: measured as it crosses.
        let escaped = r#""\u0041\u0041\u0041\u0041aaaa""#;
        assert_eq!(
            OwnedValue::from_json_text(escaped, 8).kind(),
            ValueKind::String
        );
        assert_eq!(
            OwnedValue::from_json_text(escaped, 7).kind(),
            ValueKind::Oversized
        );
        assert_eq!(
            OwnedValue::from_json_text("[ 1,  2 ]", 5).kind(),
            ValueKind::Array
        );
        assert_eq!(
            OwnedValue::from_json_text("null", 0).view(),
            Some(Value::Null)
        );
        assert_eq!(
            compact_json(r#"{ "a b" : "x\" y" ,"c":[ 1 , 2 ] }"#),
            r#"{"a b":"x\" y","c":[1,2]}"#,
            "blanks inside strings stay"
        );
    }

    #[test]
    fn filters_compare_strings_numbers_and_booleans_only() {
        assert_eq!(Value::String("x").comparable(), Some("x"));
        assert_eq!(Value::Number("1.5").comparable(), Some("1.5"));
        assert_eq!(Value::Bool(false).comparable(), Some("false"));
        assert_eq!(Value::Null.comparable(), None);
        assert_eq!(Value::Object("{}").comparable(), None);
        assert_eq!(Value::Oversized.comparable(), None);
    }
}
