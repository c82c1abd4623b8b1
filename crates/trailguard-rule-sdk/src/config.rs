//! Configuration parsing with errors that name the key.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Parses a rule's JSON configuration over `defaults`: keys present in
/// `text` replace the default's, absent keys keep it, and an empty `text`
/// means the defaults. Declare the configuration type with
/// `#[serde(deny_unknown_fields)]` so a misspelled key is an error that names
/// it (`unknown field `min_trusted`, expected one of ...`).
pub fn parse<T: Serialize + DeserializeOwned>(text: &str, defaults: T) -> Result<T, String> {
    if text.trim().is_empty() {
        return Ok(defaults);
    }
    let given: Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| format!("configuration is not a JSON object: {e}"))?;
    let Ok(Value::Object(mut merged)) = serde_json::to_value(defaults) else {
        return Err("the rule's defaults are not a JSON object (a bug in the rule)".into());
    };
    merged.extend(given);
    serde_json::from_value(Value::Object(merged)).map_err(|e| format!("invalid configuration: {e}"))
}

/// Reads one key of a JSON configuration without parsing the rest (for
/// presets that decide the other keys' defaults).
pub fn peek<T: DeserializeOwned>(text: &str, key: &str) -> Result<Option<T>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let given: Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| format!("configuration is not a JSON object: {e}"))?;
    given
        .get(key)
        .map(|v| serde_json::from_value(v.clone()).map_err(|e| format!("key `{key}`: {e}")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct C {
        a: u32,
        b: String,
    }

    fn defaults() -> C {
        C {
            a: 1,
            b: "x".into(),
        }
    }

    #[test]
    fn merges_over_defaults_and_names_bad_keys() {
        assert_eq!(parse("", defaults()), Ok(defaults()));
        assert_eq!(
            parse(r#"{"a":5}"#, defaults()),
            Ok(C {
                a: 5,
                b: "x".into()
            })
        );
        let err = parse(r#"{"c":5}"#, defaults()).expect_err("unknown key");
        assert!(err.contains("`c`"), "{err}");
        let err = parse(r#"{"a":"five"}"#, defaults()).expect_err("wrong type");
        assert!(err.contains("invalid type"), "{err}");
        assert!(parse("[]", defaults()).is_err());
        assert_eq!(peek::<u32>(r#"{"a":5}"#, "a"), Ok(Some(5)));
        assert_eq!(peek::<u32>("", "a"), Ok(None));
    }
}
