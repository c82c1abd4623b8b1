//! Authentication of what workers trust on Kafka: control messages of the
//! input topic (`progress`, `end`) and checkpoints in the state topic.
//!
//! Both are signed with HMAC-SHA256 under a key shared by `trailguard
//! publish` and the workers. A signature covers a domain label (so a
//! control's signature is never a checkpoint's) and every field that gives
//! the message its meaning, each length-prefixed:
//!
//! - a control: input topic, partition, kind, sequence, payload. The
//!   sequence (the publisher's clock in microseconds) must be above the last
//!   one the partition accepted, so a captured control replayed later is
//!   refused; the topic and partition stop it being moved elsewhere.
//! - a checkpoint chunk: input topic, state topic, consumer group,
//!   partition, checkpoint id, chunk index and count, chunk bytes.
//!
//! Event messages are data and carry no signature.

use hmac::{Hmac, Mac};
use rdkafka::message::{Header, OwnedHeaders};
use sha2::Sha256;

use crate::{CONTROL_END, CONTROL_HEADER, CONTROL_PROGRESS, Error, MAC_HEADER, SEQUENCE_HEADER};

/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
const CONTROL_DOMAIN: &str = "trailguard/kafka-control/v1";
const CHUNK_DOMAIN: &str = "trailguard/kafka-checkpoint/v1";

/// The secret shared by the publisher and the workers. Its `Debug` shows
/// nothing of it.
#[derive(Clone)]
pub struct KafkaKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for KafkaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KafkaKey(..)")
    }
}

impl KafkaKey {
    /// A key from its bytes: at least [`MIN_KEY_BYTES`] of them.
    pub fn new(secret: &[u8]) -> Result<KafkaKey, Error> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(Error::Setup(format!(
                "the Kafka key is {} byte(s); it must be at least {MIN_KEY_BYTES} (e.g. `openssl rand -base64 32`)",
                secret.len()
            )));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|e| Error::Setup(format!("unusable Kafka key: {e}")))?;
        Ok(KafkaKey { mac })
    }

    /// The MAC of `parts` under `domain`, ready to finalize or verify.
    fn keyed(&self, domain: &str, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        for part in std::iter::once(domain.as_bytes()).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    fn control(
        &self,
        topic: &str,
        partition: i32,
        kind: &[u8],
        sequence: u64,
        payload: &[u8],
    ) -> Hmac<Sha256> {
        self.keyed(
            CONTROL_DOMAIN,
            &[
                topic.as_bytes(),
                &partition.to_be_bytes(),
                kind,
                &sequence.to_be_bytes(),
                payload,
            ],
        )
    }
}

/// How control messages and checkpoints are authenticated.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Signed and verified with this key.
    Key(KafkaKey),
    /// Not authenticated: only broker ACLs keep others from producing to the
    /// input and state topics (see `docs/scaling.md`).
    Insecure,
}

/// What a control message tells a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Event time reached this (ms since the epoch).
    Progress(i64),
    /// The input has ended.
    End,
}

impl Control {
    fn kind(self) -> &'static str {
        match self {
            Control::Progress(_) => CONTROL_PROGRESS,
            Control::End => CONTROL_END,
        }
    }

    fn payload(self) -> String {
        match self {
            Control::Progress(ms) => ms.to_string(),
            Control::End => String::new(),
        }
    }

    /// The headers and payload of this control for `topic[partition]`,
    /// signed under `auth`'s key with `sequence` (which must grow from one
    /// control of a partition to the next: the publisher uses its clock in
    /// microseconds).
    pub fn encode(
        self,
        auth: &Auth,
        topic: &str,
        partition: i32,
        sequence: u64,
    ) -> (OwnedHeaders, Vec<u8>) {
        let kind = self.kind();
        let payload = self.payload().into_bytes();
        let headers = OwnedHeaders::new().insert(Header {
            key: CONTROL_HEADER,
            value: Some(kind),
        });
        let headers = match auth {
            Auth::Insecure => headers,
            Auth::Key(key) => {
                let sequence_text = sequence.to_string();
                let tag = key
                    .control(topic, partition, kind.as_bytes(), sequence, &payload)
                    .finalize()
                    .into_bytes();
                headers
                    .insert(Header {
                        key: SEQUENCE_HEADER,
                        value: Some(sequence_text.as_bytes()),
                    })
                    .insert(Header {
                        key: MAC_HEADER,
                        value: Some(tag.as_slice()),
                    })
            }
        };
        (headers, payload)
    }
}

/// What a worker checks a control message of `topic[partition]` against.
pub(crate) struct ControlCheck<'a> {
    pub auth: &'a Auth,
    pub topic: &'a str,
    pub partition: i32,
    /// The sequence of the last control the partition accepted.
    pub last_sequence: Option<u64>,
    /// The worker's clock, ms since the epoch.
    pub now_ms: i64,
    /// How far ahead of `now_ms` a progress may be.
    pub max_ahead_ms: i64,
}

/// A control message as read: the values of its headers and its payload.
pub(crate) struct ControlMessage<'a> {
    pub kind: &'a [u8],
    pub sequence: Option<&'a [u8]>,
    pub mac: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

impl ControlCheck<'_> {
    /// The control and its sequence (`None` without a key), or why it is
    /// refused.
    pub fn verify(&self, message: &ControlMessage<'_>) -> Result<(Control, Option<u64>), String> {
        let kind = message.kind;
        if kind != CONTROL_PROGRESS.as_bytes() && kind != CONTROL_END.as_bytes() {
            return Err(format!(
                "unknown control kind {:?}",
                String::from_utf8_lossy(&kind[..kind.len().min(32)])
            ));
        }
        let mut sequence = None;
        if let Auth::Key(key) = self.auth {
            let Some(tag) = message.mac else {
                return Err("unsigned control message (publish with the same key as the workers: TRAILGUARD_KAFKA_KEY or --kafka-key-file)".into());
            };
            let Some(seq) = message
                .sequence
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.parse::<u64>().ok())
            else {
                return Err(format!(
                    "control message without a valid {SEQUENCE_HEADER} header"
                ));
            };
            let expected = key.control(self.topic, self.partition, kind, seq, message.payload);
            // Constant-time comparison.
            if expected.verify_slice(tag).is_err() {
                return Err("bad signature: forged, altered, moved from another topic or partition, or signed with another key".into());
            }
            if let Some(last) = self.last_sequence
                && seq <= last
            {
                return Err(format!(
                    "replayed: sequence {seq} is not after {last}, the last this partition accepted"
                ));
            }
            sequence = Some(seq);
        }
        let control = if kind == CONTROL_END.as_bytes() {
            Control::End
        } else {
            let Some(ms) = std::str::from_utf8(message.payload)
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
            else {
                return Err("progress payload is not a time in ms".into());
            };
            let limit = self.now_ms.saturating_add(self.max_ahead_ms);
            if ms > limit {
                return Err(format!(
                    "progress to {ms} ms is more than {} minute(s) ahead of this worker's clock ({} ms)",
                    self.max_ahead_ms / 60_000,
                    self.now_ms
                ));
            }
            Control::Progress(ms)
        };
        Ok((control, sequence))
    }
}

/// Which checkpoints a chunk belongs to: every field is under its MAC.
#[derive(Clone, Debug)]
pub struct CheckpointScope {
    /// The input topic whose partition the checkpoint is of.
    pub input_topic: String,
    /// The state topic it is stored in.
    pub state_topic: String,
    /// The consumer group it belongs to (also the message key).
    pub group: String,
    /// The input (and state) partition.
    pub partition: i32,
}

impl CheckpointScope {
    fn chunk(
        &self,
        key: &KafkaKey,
        id: &[u8],
        index: u32,
        count: u32,
        chunk: &[u8],
    ) -> Hmac<Sha256> {
        key.keyed(
            CHUNK_DOMAIN,
            &[
                self.input_topic.as_bytes(),
                self.state_topic.as_bytes(),
                self.group.as_bytes(),
                &self.partition.to_be_bytes(),
                id,
                &index.to_be_bytes(),
                &count.to_be_bytes(),
                chunk,
            ],
        )
    }

    /// The MAC of chunk `index` of `count` of checkpoint `id`.
    pub(crate) fn sign_chunk(
        &self,
        key: &KafkaKey,
        id: &[u8],
        index: u32,
        count: u32,
        chunk: &[u8],
    ) -> Vec<u8> {
        self.chunk(key, id, index, count, chunk)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether `tag` is the MAC of that chunk (constant-time comparison).
    pub(crate) fn verify_chunk(
        &self,
        key: &KafkaKey,
        id: &[u8],
        index: u32,
        count: u32,
        chunk: &[u8],
        tag: &[u8],
    ) -> bool {
        self.chunk(key, id, index, count, chunk)
            .verify_slice(tag)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const MINUTE: i64 = 60_000;

    fn raw_key(byte: u8) -> KafkaKey {
        KafkaKey::new(&[byte; MIN_KEY_BYTES]).expect("a long enough key")
    }

    fn key(byte: u8) -> Auth {
        Auth::Key(raw_key(byte))
    }

    /// A control as the publisher writes it: (kind, sequence, mac, payload).
    type Written = (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>, Vec<u8>);

    fn written(control: Control, auth: &Auth, topic: &str, partition: i32, seq: u64) -> Written {
        let (headers, payload) = control.encode(auth, topic, partition, seq);
        let get = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(<[u8]>::to_vec)
        };
        (
            get(CONTROL_HEADER).unwrap_or_default(),
            get(SEQUENCE_HEADER),
            get(MAC_HEADER),
            payload,
        )
    }

    fn check<'a>(
        auth: &'a Auth,
        topic: &'a str,
        partition: i32,
        last: Option<u64>,
    ) -> ControlCheck<'a> {
        ControlCheck {
            auth,
            topic,
            partition,
            last_sequence: last,
            now_ms: NOW,
            max_ahead_ms: 15 * MINUTE,
        }
    }

    fn verify(check: &ControlCheck<'_>, w: &Written) -> Result<(Control, Option<u64>), String> {
        check.verify(&ControlMessage {
            kind: &w.0,
            sequence: w.1.as_deref(),
            mac: w.2.as_deref(),
            payload: &w.3,
        })
    }

    #[test]
    fn a_signed_control_verifies_on_its_topic_and_partition_only() {
        let auth = key(7);
        let progress = written(Control::Progress(NOW - MINUTE), &auth, "ct", 3, 100);
        assert_eq!(
            verify(&check(&auth, "ct", 3, None), &progress),
            Ok((Control::Progress(NOW - MINUTE), Some(100)))
        );
        let end = written(Control::End, &auth, "ct", 3, 101);
        assert_eq!(
            verify(&check(&auth, "ct", 3, Some(100)), &end),
            Ok((Control::End, Some(101)))
        );
        for (what, topic, partition) in [
            ("another partition", "ct", 4),
            ("another topic", "other", 3),
        ] {
            let err = verify(&check(&auth, topic, partition, None), &end).expect_err(what);
            assert!(err.contains("bad signature"), "{what}: {err}");
        }
        let err = verify(&check(&key(8), "ct", 3, None), &end).expect_err("another key");
        assert!(err.contains("bad signature"), "{err}");
    }

    #[test]
    fn altered_unsigned_replayed_or_unknown_controls_are_refused() {
        let auth = key(7);
        let check = check(&auth, "ct", 0, Some(500));
        let progress = written(Control::Progress(NOW), &auth, "ct", 0, 501);
        assert!(verify(&check, &progress).is_ok());

        let mut altered = progress.clone();
        altered.3 = (NOW + 1).to_string().into_bytes();
        assert!(
            verify(&check, &altered)
                .expect_err("payload")
                .contains("bad signature")
        );
        let mut as_end = progress.clone();
        as_end.0 = b"end".to_vec();
        assert!(
            verify(&check, &as_end)
                .expect_err("kind")
                .contains("bad signature")
        );
        let mut resequenced = progress.clone();
        resequenced.1 = Some(b"502".to_vec());
        assert!(
            verify(&check, &resequenced)
                .expect_err("sequence")
                .contains("bad signature")
        );

        let unsigned = written(Control::End, &Auth::Insecure, "ct", 0, 0);
        assert!(
            verify(&check, &unsigned)
                .expect_err("unsigned")
                .contains("unsigned")
        );
        let mut no_sequence = written(Control::End, &auth, "ct", 0, 600);
        no_sequence.1 = None;
        assert!(
            verify(&check, &no_sequence)
                .expect_err("no seq")
                .contains(SEQUENCE_HEADER)
        );

        for seq in [500, 499, 0] {
            let replayed = written(Control::End, &auth, "ct", 0, seq);
            let err = verify(&check, &replayed).expect_err("replay");
            assert!(err.contains("replayed"), "{seq}: {err}");
        }

        let mut unknown = written(Control::End, &auth, "ct", 0, 700);
        unknown.0 = b"rewind".to_vec();
        assert!(
            verify(&check, &unknown)
                .expect_err("kind")
                .contains("unknown control kind")
        );
    }

    #[test]
    fn a_progress_from_the_future_is_refused_even_when_signed() {
        for auth in [key(7), Auth::Insecure] {
            let check = check(&auth, "ct", 0, None);
            let edge = written(Control::Progress(NOW + 15 * MINUTE), &auth, "ct", 0, 1);
            assert!(verify(&check, &edge).is_ok(), "at the tolerance");
            for ms in [NOW + 15 * MINUTE + 1, i64::MAX] {
                let future = written(Control::Progress(ms), &auth, "ct", 0, 1);
                let err = verify(&check, &future).expect_err("future");
                assert!(err.contains("ahead of this worker's clock"), "{err}");
            }
            let mut junk = written(Control::Progress(NOW), &auth, "ct", 0, 1);
            junk.3 = b"soon".to_vec();
            // Under a key the signature fails first; without, the payload.
            assert!(verify(&check, &junk).is_err());
        }
    }

    #[test]
    fn without_a_key_controls_are_taken_as_they_are() {
        let check = check(&Auth::Insecure, "ct", 0, Some(u64::MAX));
        let end = written(Control::End, &Auth::Insecure, "ct", 0, 0);
        assert_eq!(
            (end.1.as_ref(), end.2.as_ref()),
            (None, None),
            "nothing signed"
        );
        assert_eq!(verify(&check, &end), Ok((Control::End, None)));
    }

    #[test]
    fn keys_are_long_enough_and_never_shown() {
        let err = KafkaKey::new(b"short").expect_err("too short").to_string();
        assert!(err.contains("at least 32"), "{err}");
        let key = KafkaKey::new(b"0123456789abcdef0123456789abcdef").expect("32 bytes");
        assert_eq!(format!("{key:?}"), "KafkaKey(..)");
    }

    #[test]
    fn a_chunk_signature_covers_its_scope_id_and_position() {
        let k = raw_key(7);
        let scope = CheckpointScope {
            input_topic: "ct".into(),
            state_topic: "ct.trailguard-state".into(),
            group: "detect".into(),
            partition: 2,
        };
        let tag = scope.sign_chunk(&k, b"id", 1, 3, b"bytes");
        assert!(scope.verify_chunk(&k, b"id", 1, 3, b"bytes", &tag));
        let mut other = scope.clone();
        other.group = "other".into();
        assert!(
            !other.verify_chunk(&k, b"id", 1, 3, b"bytes", &tag),
            "group"
        );
        other = scope.clone();
        other.partition = 3;
        assert!(
            !other.verify_chunk(&k, b"id", 1, 3, b"bytes", &tag),
            "partition"
        );
        other = scope.clone();
        other.input_topic = "ct2".into();
        assert!(
            !other.verify_chunk(&k, b"id", 1, 3, b"bytes", &tag),
            "topic"
        );
        assert!(!scope.verify_chunk(&k, b"id2", 1, 3, b"bytes", &tag), "id");
        assert!(
            !scope.verify_chunk(&k, b"id", 2, 3, b"bytes", &tag),
            "index"
        );
        assert!(
            !scope.verify_chunk(&k, b"id", 1, 2, b"bytes", &tag),
            "count"
        );
        assert!(
            !scope.verify_chunk(&k, b"id", 1, 3, b"bytez", &tag),
            "bytes"
        );
        assert!(
            !scope.verify_chunk(&k, b"id", 1, 3, b"bytes", &tag[..31]),
            "short tag"
        );
    }
}
