//! Snapshots: a rule's state as bytes, tagged with the rule and its state
//! format so a snapshot is never restored into the wrong rule or format.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Envelope<S> {
    rule: String,
    format: u32,
    state: S,
}

#[derive(Deserialize)]
struct Header {
    rule: String,
    format: u32,
}

/// Serializes `state` (postcard) behind a header naming `rule` and the
/// state's `format` version.
pub fn encode<S: Serialize>(rule: &str, format: u32, state: &S) -> Vec<u8> {
    let envelope = Envelope {
        rule: rule.to_owned(),
        format,
        state,
    };
    // Serializing plain data into a Vec cannot fail; an empty snapshot would
    // be refused on restore rather than silently accepted.
    postcard::to_allocvec(&envelope).unwrap_or_default()
}

/// Restores a state written by [`encode`], refusing snapshots of another rule
/// or another state format with a message that says which.
pub fn decode<S: DeserializeOwned>(rule: &str, format: u32, bytes: &[u8]) -> Result<S, String> {
    let (header, _) = postcard::take_from_bytes::<Header>(bytes)
        .map_err(|e| format!("not a snapshot of a trailguard rule: {e}"))?;
    if header.rule != rule {
        return Err(format!(
            "snapshot belongs to rule `{}`, not `{rule}`",
            header.rule
        ));
    }
    if header.format != format {
        return Err(format!(
            "snapshot has state format {} but this version of `{rule}` reads format {format}",
            header.format
        ));
    }
    postcard::from_bytes::<Envelope<S>>(bytes)
        .map(|e| e.state)
        .map_err(|e| format!("snapshot of `{rule}` is corrupt: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let bytes = encode("r", 1, &vec![1u32, 2, 3]);
        assert_eq!(decode::<Vec<u32>>("r", 1, &bytes), Ok(vec![1, 2, 3]));
        assert!(
            decode::<Vec<u32>>("other", 1, &bytes)
                .expect_err("rule")
                .contains("belongs to rule `r`")
        );
        assert!(
            decode::<Vec<u32>>("r", 2, &bytes)
                .expect_err("format")
                .contains("format 1")
        );
        assert!(decode::<Vec<u32>>("r", 1, b"\xff\xff\xff").is_err());
        assert!(decode::<Vec<u32>>("r", 1, &bytes[..bytes.len() - 1]).is_err());
    }
}
