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

/// The start of every snapshot; the state follows.
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
    decode_or_migrate(rule, format, bytes, |old, _| {
        Err(format!(
            "snapshot has state format {old} but this version of `{rule}` reads format {format} and does not migrate it"
        ))
    })
}

/// Like [`decode`], but a snapshot of another state format is handed to
/// `migrate` with its format number and its raw state bytes (the postcard
/// encoding of the old state type): the rule decides whether to convert it
/// or refuse it with a message.
pub fn decode_or_migrate<S: DeserializeOwned>(
    rule: &str,
    format: u32,
    bytes: &[u8],
    migrate: impl FnOnce(u32, &[u8]) -> Result<S, String>,
) -> Result<S, String> {
    let (header, state) = postcard::take_from_bytes::<Header>(bytes)
        .map_err(|e| format!("not a snapshot of a trailguard rule: {e}"))?;
    if header.rule != rule {
        return Err(format!(
            "snapshot belongs to rule `{}`, not `{rule}`",
            header.rule
        ));
    }
    if header.format != format {
        return migrate(header.format, state);
    }
    postcard::from_bytes::<S>(state).map_err(|e| format!("snapshot of `{rule}` is corrupt: {e}"))
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

    #[test]
    fn a_rule_may_migrate_an_old_format() {
        // Format 1 held a list; format 2 holds its sum.
        let old = encode("r", 1, &vec![1u32, 2, 3]);
        let migrated: u64 = decode_or_migrate("r", 2, &old, |format, state| match format {
            1 => postcard::from_bytes::<Vec<u32>>(state)
                .map(|v| v.iter().map(|&x| u64::from(x)).sum())
                .map_err(|e| e.to_string()),
            other => Err(format!("cannot read format {other}")),
        })
        .expect("migrates");
        assert_eq!(migrated, 6);
        let refused = decode::<u64>("r", 2, &old).expect_err("refused");
        assert!(
            refused.contains("format 1") && refused.contains("does not migrate"),
            "{refused}"
        );
    }
}
