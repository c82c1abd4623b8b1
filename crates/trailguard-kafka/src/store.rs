//! Checkpoints in Kafka: partition `p` of the state topic holds the
//! checkpoints of input partition `p`, so rebuilding a partition's state
//! on any machine is reading the tail of one partition.
//!
//! A checkpoint is a run of messages keyed by the consumer group, each a
//! chunk of at most [`CHUNK_BYTES`] (brokers cap message sizes), with
//! headers naming the checkpoint and the chunk (`i/n`) and, under a key,
//! the chunk's MAC (`crate::auth`). Chunks of one checkpoint are produced in
//! order by one producer to one partition; a checkpoint whose chunks are not
//! all there (its writer died) is ignored and the one before it is used.
//! Only the newest checkpoint matters, so the topic may be compacted or have
//! a short retention.
//!
//! Reading is bounded: at most [`MAX_SCAN`] messages, at most three
//! checkpoints of at most the configured size in memory, and a chunk that
//! is malformed, too large or not authentic is refused before it is kept.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::auth::{Auth, CheckpointScope};
use crate::error::Context;
use crate::{Error, MAC_HEADER, Refusal, WorkerOptions};

/// Largest chunk of a checkpoint, in bytes.
pub const CHUNK_BYTES: usize = 512 * 1024;
const HEADER_CHECKPOINT: &str = "trailguard-checkpoint";
const HEADER_CHUNK: &str = "trailguard-chunk";
/// How long reading the tail of the state partition may take, in all.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads and writes checkpoints of one consumer group.
pub struct CheckpointStore {
    brokers: String,
    input_topic: String,
    topic: String,
    group: String,
    auth: Auth,
    max_bytes: usize,
    producer: FutureProducer,
    reader: BaseConsumer,
    nonce: u64,
    sequence: u64,
}

impl std::fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointStore")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish()
    }
}

/// What [`CheckpointStore::load`] found.
#[derive(Debug)]
pub struct Restored<T> {
    /// The newest checkpoint that was whole, authentic and accepted, and
    /// its size in bytes.
    pub checkpoint: Option<(T, usize)>,
    /// The messages refused on the way (forged, malformed, too large, or
    /// refused by the caller), with why; at most one per message read.
    pub refusals: Vec<Refusal>,
}

impl CheckpointStore {
    /// A store in the worker's state topic (which must exist) for its
    /// group, signing and verifying under its [`Auth`], refusing
    /// checkpoints above its `max_checkpoint_bytes`.
    pub fn new(options: &WorkerOptions) -> Result<CheckpointStore, Error> {
        let brokers = &options.brokers;
        let group = &options.group;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("message.max.bytes", (2 * CHUNK_BYTES).to_string())
            .set("linger.ms", "0")
            .create()
            .context(|| format!("cannot create a producer for {brokers}"))?;
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("{group}.state-reader"))
            .set("enable.auto.commit", "false")
            .set("fetch.message.max.bytes", (2 * CHUNK_BYTES).to_string())
            // A restore waits on this read: do not let the broker hold it.
            .set("fetch.wait.max.ms", "10")
            .create()
            .context(|| format!("cannot create a consumer for {brokers}"))?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Ok(CheckpointStore {
            brokers: brokers.clone(),
            input_topic: options.topic.clone(),
            topic: options.state_topic.clone(),
            group: group.clone(),
            auth: options.auth.clone(),
            max_bytes: options.max_checkpoint_bytes,
            producer,
            reader,
            nonce,
            sequence: 0,
        })
    }

    fn scope(&self, partition: i32) -> CheckpointScope {
        CheckpointScope {
            input_topic: self.input_topic.clone(),
            state_topic: self.topic.clone(),
            group: self.group.clone(),
            partition,
        }
    }

    /// Writes a checkpoint of `partition` and waits until Kafka has it all.
    pub fn save(&mut self, partition: i32, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > self.max_bytes {
            return Err(Error::State {
                partition,
                message: format!(
                    "the checkpoint is {} bytes, above the limit of {} bytes that restoring accepts: raise the limit (the CLI derives it from [run] max_snapshot_mib)",
                    payload.len(),
                    self.max_bytes
                ),
            });
        }
        self.sequence += 1;
        let id = format!("{:x}-{}", self.nonce, self.sequence);
        let chunks: Vec<&[u8]> = if payload.is_empty() {
            vec![&[]]
        } else {
            payload.chunks(CHUNK_BYTES).collect()
        };
        let n = u32::try_from(chunks.len()).map_err(|_| Error::State {
            partition,
            message: "too many chunks".into(),
        })?;
        let scope = self.scope(partition);
        let mut pending = Vec::with_capacity(chunks.len());
        for (i, chunk) in (0..n).zip(chunks) {
            let position = format!("{i}/{n}");
            let mut headers = OwnedHeaders::new()
                .insert(Header {
                    key: HEADER_CHECKPOINT,
                    value: Some(id.as_str()),
                })
                .insert(Header {
                    key: HEADER_CHUNK,
                    value: Some(position.as_str()),
                });
            if let Auth::Key(key) = &self.auth {
                let tag = scope.sign_chunk(key, id.as_bytes(), i, n, chunk);
                headers = headers.insert(Header {
                    key: MAC_HEADER,
                    value: Some(tag.as_slice()),
                });
            }
            let record = FutureRecord::to(&self.topic)
                .partition(partition)
                .key(self.group.as_bytes())
                .payload(chunk)
                .headers(headers);
            let future = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .context(|| format!("cannot write a checkpoint to {}[{partition}]", self.topic))?;
            pending.push(future);
        }
        for future in pending {
            match futures_executor::block_on(future) {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    return Err(Error::Kafka {
                        context: format!(
                            "checkpoint of partition {partition} not written to {}",
                            self.topic
                        ),
                        source: e,
                    });
                }
                Err(_) => {
                    return Err(Error::State {
                        partition,
                        message: "the producer went away before Kafka acknowledged it".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The offsets (low, high) of `partition` of the input topic.
    pub fn input_offsets(&self, partition: i32) -> Result<(i64, i64), Error> {
        self.reader
            .fetch_watermarks(&self.input_topic, partition, READ_TIMEOUT)
            .context(|| {
                format!(
                    "cannot read the offsets of {}[{partition}] on {}",
                    self.input_topic, self.brokers
                )
            })
    }

    /// The newest checkpoint of `partition` for this group that is whole,
    /// authentic, within the size limit, and that `accept` (decoding and
    /// checking it) takes; if `accept` refuses the newest, the one before
    /// it. Reads at most the newest [`MAX_SCAN`] messages of the state
    /// partition, keeping at most three checkpoints in memory.
    pub fn load<T>(
        &self,
        partition: i32,
        mut accept: impl FnMut(&[u8]) -> Result<T, String>,
    ) -> Result<Restored<T>, Error> {
        let (low, high) = self
            .reader
            .fetch_watermarks(&self.topic, partition, READ_TIMEOUT)
            .context(|| {
                format!(
                    "cannot read the offsets of {}[{partition}] on {}",
                    self.topic, self.brokers
                )
            })?;
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut window = FIRST_WINDOW;
        loop {
            let start = high.saturating_sub(window).max(low);
            let scan = self.scan(partition, start, high, deadline)?;
            let exhausted = start <= low || window >= MAX_SCAN;
            if scan.candidates.is_empty() && !exhausted {
                window = window.saturating_mul(4);
                continue;
            }
            let mut refusals = scan.refusals;
            if scan.candidates.is_empty() && start > low {
                refusals.push(Refusal {
                    topic: self.topic.clone(),
                    partition,
                    offset: start,
                    reason: format!(
                        "no whole, authentic checkpoint of group {} in the newest {window} messages: starting without state",
                        self.group
                    ),
                });
            }
            for (offset, bytes) in scan.candidates.into_iter().rev() {
                match accept(&bytes) {
                    Ok(t) => {
                        return Ok(Restored {
                            checkpoint: Some((t, bytes.len())),
                            refusals,
                        });
                    }
                    Err(reason) => refusals.push(Refusal {
                        topic: self.topic.clone(),
                        partition,
                        offset,
                        reason,
                    }),
                }
            }
            return Ok(Restored {
                checkpoint: None,
                refusals,
            });
        }
    }

    /// This group's whole checkpoints in `[start, end)` (at most the newest
    /// [`CANDIDATES`], each with the offset of its last chunk), and the
    /// messages refused.
    fn scan(&self, partition: i32, start: i64, end: i64, deadline: Instant) -> Result<Scan, Error> {
        let mut scan = Scan {
            candidates: VecDeque::new(),
            refusals: Vec::new(),
        };
        if start >= end {
            return Ok(scan);
        }
        let mut assembler =
            ChunkAssembler::new(self.auth.clone(), self.scope(partition), self.max_bytes);
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, partition, Offset::Offset(start))
            .context(|| format!("bad offset {start} of {}[{partition}]", self.topic))?;
        self.reader
            .assign(&assignment)
            .context(|| format!("cannot read {}[{partition}]", self.topic))?;
        let mut next = start;
        while next < end {
            if Instant::now() > deadline {
                return Err(Error::State {
                    partition,
                    message: format!(
                        "timed out reading {}[{partition}] at offset {next} of {end} on {}: is the broker reachable?",
                        self.topic, self.brokers
                    ),
                });
            }
            let Some(message) = self.reader.poll(Duration::from_millis(200)) else {
                continue;
            };
            let message = message.context(|| format!("cannot read {}[{partition}]", self.topic))?;
            next = message.offset() + 1;
            if message.key() != Some(self.group.as_bytes()) {
                continue;
            }
            let header = |name: &str| -> Option<&[u8]> {
                message
                    .headers()?
                    .iter()
                    .find(|h| h.key == name)
                    .map(|h| h.value.unwrap_or_default())
            };
            let headers = ChunkHeaders {
                checkpoint: header(HEADER_CHECKPOINT),
                chunk: header(HEADER_CHUNK),
                mac: header(MAC_HEADER),
            };
            match assembler.push(&headers, message.payload().unwrap_or_default()) {
                Ok(None) => {}
                Ok(Some(whole)) => {
                    if scan.candidates.len() == CANDIDATES {
                        scan.candidates.pop_front();
                    }
                    scan.candidates.push_back((message.offset(), whole));
                }
                Err(reason) => scan.refusals.push(Refusal {
                    topic: self.topic.clone(),
                    partition,
                    offset: message.offset(),
                    reason,
                }),
            }
        }
        self.reader
            .unassign()
            .context(|| format!("cannot stop reading {}", self.topic))?;
        Ok(scan)
    }
}

/// Checkpoints kept while scanning: the newest, and the one before in case
/// the newest is refused.
const CANDIDATES: usize = 2;
/// Messages of the state partition read first when looking for the newest
/// checkpoint; the window grows fourfold up to [`MAX_SCAN`].
const FIRST_WINDOW: i64 = 64;
/// The most messages of a state partition read looking for a checkpoint.
pub const MAX_SCAN: i64 = FIRST_WINDOW << 10;

struct Scan {
    candidates: VecDeque<(i64, Vec<u8>)>,
    refusals: Vec<Refusal>,
}

/// The headers of a state-topic message, as read (`None`: absent).
#[derive(Clone, Copy, Debug, Default)]
pub struct ChunkHeaders<'a> {
    /// `trailguard-checkpoint`: the checkpoint's id.
    pub checkpoint: Option<&'a [u8]>,
    /// `trailguard-chunk`: `index/count`.
    pub chunk: Option<&'a [u8]>,
    /// `trailguard-mac`: the chunk's MAC.
    pub mac: Option<&'a [u8]>,
}

/// Reassembles checkpoints from their chunks, as read in offset order, with
/// bounded memory: every header is checked before it is used, every chunk's
/// MAC before it is kept (under a key), the count in a header never sizes
/// an allocation, and a checkpoint above the limit is refused.
#[derive(Debug)]
pub struct ChunkAssembler {
    auth: Auth,
    scope: CheckpointScope,
    max_bytes: usize,
    run: Option<Run>,
}

/// The checkpoint being reassembled.
#[derive(Debug)]
struct Run {
    id: Vec<u8>,
    next: u32,
    count: u32,
    bytes: Vec<u8>,
}

/// Longest checkpoint id accepted (ours are about 30 bytes).
const MAX_ID_BYTES: usize = 128;

impl ChunkAssembler {
    /// An assembler for checkpoints of `scope`, of at most `max_bytes`.
    pub fn new(auth: Auth, scope: CheckpointScope, max_bytes: usize) -> ChunkAssembler {
        ChunkAssembler {
            auth,
            scope,
            max_bytes,
            run: None,
        }
    }

    /// Takes the next chunk: `Ok(Some(checkpoint))` when it completes one,
    /// `Ok(None)` otherwise (a chunk kept, or an authentic one out of
    /// order, which drops a torn checkpoint), `Err(why)` if the chunk is
    /// refused (malformed, too large, or not authentic).
    pub fn push(
        &mut self,
        headers: &ChunkHeaders<'_>,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, String> {
        let (Some(id), Some(position)) = (headers.checkpoint, headers.chunk) else {
            return Err("not a checkpoint chunk (its headers are missing)".into());
        };
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Err(format!(
                "checkpoint id of {} bytes (1 to {MAX_ID_BYTES} expected)",
                id.len()
            ));
        }
        let Some((index, count)) = parse_position(position) else {
            return Err(format!(
                "bad chunk position {:?} (`index/count` expected)",
                String::from_utf8_lossy(&position[..position.len().min(32)])
            ));
        };
        let max_chunks = self.max_bytes.div_ceil(CHUNK_BYTES).max(1);
        if count as usize > max_chunks {
            return Err(format!(
                "a checkpoint of {count} chunks would exceed the limit of {} bytes",
                self.max_bytes
            ));
        }
        let last = index + 1 == count;
        if payload.len() > CHUNK_BYTES || (!last && payload.len() != CHUNK_BYTES) {
            return Err(format!(
                "chunk {index}/{count} of {} bytes (every chunk but the last is {CHUNK_BYTES})",
                payload.len()
            ));
        }
        if let Auth::Key(key) = &self.auth {
            let Some(tag) = headers.mac else {
                return Err("unsigned checkpoint chunk (written without the workers' key)".into());
            };
            if !self.scope.verify_chunk(key, id, index, count, payload, tag) {
                return Err("bad checkpoint signature: forged, altered, copied from another group, partition or topic, or signed with another key".into());
            }
        }
        if index == 0 {
            self.run = Some(Run {
                id: id.to_vec(),
                next: 0,
                count,
                bytes: Vec::new(),
            });
        }
        let Some(run) = self.run.as_mut() else {
            // The rest of a checkpoint whose start is not in what is read.
            return Ok(None);
        };
        if run.id != id || run.count != count || run.next != index {
            let duplicate = run.id == id && index < run.next;
            if !duplicate {
                // Torn: its writer stopped, another one started.
                self.run = None;
            }
            return Ok(None);
        }
        if run.bytes.len() + payload.len() > self.max_bytes {
            self.run = None;
            return Err(format!(
                "checkpoint larger than the limit of {} bytes",
                self.max_bytes
            ));
        }
        run.bytes.extend_from_slice(payload);
        run.next += 1;
        if last {
            return Ok(self.run.take().map(|run| run.bytes));
        }
        Ok(None)
    }
}

/// `index/count` with `index < count`.
fn parse_position(text: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(text).ok()?;
    let (index, count) = text.split_once('/')?;
    let (index, count): (u32, u32) = (index.parse().ok()?, count.parse().ok()?);
    (index < count).then_some((index, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KafkaKey;

    const MAX: usize = 3 * CHUNK_BYTES;

    fn scope(partition: i32) -> CheckpointScope {
        CheckpointScope {
            input_topic: "ct".into(),
            state_topic: "ct.trailguard-state".into(),
            group: "detect".into(),
            partition,
        }
    }

    fn key(byte: u8) -> Auth {
        Auth::Key(KafkaKey::new(&[byte; 32]).expect("a key"))
    }

    /// A chunk as `save` writes it: (id, position, mac, payload).
    type Written = (Vec<u8>, Vec<u8>, Option<Vec<u8>>, Vec<u8>);

    /// The chunks of a checkpoint of `payload`, as `save` cuts and signs them.
    fn chunks(auth: &Auth, scope: &CheckpointScope, id: &str, payload: &[u8]) -> Vec<Written> {
        let parts: Vec<&[u8]> = if payload.is_empty() {
            vec![&[]]
        } else {
            payload.chunks(CHUNK_BYTES).collect()
        };
        let n = parts.len() as u32;
        (0..n)
            .zip(parts)
            .map(|(i, part)| {
                let mac = match auth {
                    Auth::Key(k) => Some(scope.sign_chunk(k, id.as_bytes(), i, n, part)),
                    Auth::Insecure => None,
                };
                (
                    id.into(),
                    format!("{i}/{n}").into_bytes(),
                    mac,
                    part.to_vec(),
                )
            })
            .collect()
    }

    fn push(a: &mut ChunkAssembler, c: &Written) -> Result<Option<Vec<u8>>, String> {
        let headers = ChunkHeaders {
            checkpoint: Some(&c.0),
            chunk: Some(&c.1),
            mac: c.2.as_deref(),
        };
        a.push(&headers, &c.3)
    }

    /// What comes out of feeding `all` in order: completed checkpoints and
    /// refusal reasons.
    fn feed(a: &mut ChunkAssembler, all: &[Written]) -> (Vec<Vec<u8>>, Vec<String>) {
        let (mut whole, mut refused) = (Vec::new(), Vec::new());
        for c in all {
            match push(a, c) {
                Ok(Some(w)) => whole.push(w),
                Ok(None) => {}
                Err(e) => refused.push(e),
            }
        }
        (whole, refused)
    }

    fn payload(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn whole_checkpoints_are_reassembled_and_a_torn_one_skipped() {
        for auth in [key(1), Auth::Insecure] {
            let s = scope(0);
            let a = payload(CHUNK_BYTES + 10, 1);
            let b = payload(2 * CHUNK_BYTES + 1, 2);
            let c = payload(5, 3);
            let mut all = chunks(&auth, &s, "a", &a);
            let torn = chunks(&auth, &s, "b", &b);
            all.extend_from_slice(&torn[..2]);
            all.extend(chunks(&auth, &s, "c", &c));
            all.extend(chunks(&auth, &s, "e", &[]));
            let mut assembler = ChunkAssembler::new(auth.clone(), s.clone(), MAX);
            let (whole, refused) = feed(&mut assembler, &all);
            assert_eq!(whole, vec![a, c, Vec::new()], "b is torn");
            assert!(refused.is_empty(), "{refused:?}");
        }
    }

    #[test]
    fn forged_chunks_are_refused_and_do_not_break_an_authentic_checkpoint() {
        let auth = key(1);
        let s = scope(0);
        let real = payload(2 * CHUNK_BYTES + 7, 9);
        let good = chunks(&auth, &s, "real", &real);
        let forged_payload = payload(10, 4);
        let mut bad = chunks(&Auth::Insecure, &s, "real", &forged_payload);
        bad.extend(chunks(&key(2), &s, "real", &forged_payload));
        bad.extend(chunks(&auth, &scope(1), "real", &forged_payload));
        let mut other_group = scope(0);
        other_group.group = "another".into();
        bad.extend(chunks(&auth, &other_group, "x", &forged_payload));
        let mut tampered = good[1].clone();
        tampered.3[0] ^= 1;
        bad.push(tampered);
        // Forgeries before, between and after the real chunks.
        let mut all = bad.clone();
        for c in &good {
            all.push(c.clone());
            all.extend(bad.iter().cloned());
        }
        let mut assembler = ChunkAssembler::new(auth, s, MAX);
        let (whole, refused) = feed(&mut assembler, &all);
        assert_eq!(whole, vec![real], "only the authentic checkpoint");
        assert_eq!(refused.len(), 4 * bad.len());
        assert!(
            refused
                .iter()
                .all(|e| e.contains("signature") || e.contains("unsigned")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_duplicate_chunk_is_ignored_a_reordered_one_tears() {
        let auth = key(1);
        let s = scope(0);
        let data = payload(2 * CHUNK_BYTES + 1, 5);
        let c = chunks(&auth, &s, "d", &data);
        let mut assembler = ChunkAssembler::new(auth.clone(), s.clone(), MAX);
        let dup = [c[0].clone(), c[1].clone(), c[1].clone(), c[2].clone()];
        assert_eq!(feed(&mut assembler, &dup).0, vec![data]);
        let reordered = [c[0].clone(), c[2].clone(), c[1].clone()];
        assert_eq!(feed(&mut assembler, &reordered).0, Vec::<Vec<u8>>::new());
        assert_eq!(
            feed(&mut assembler, &c[1..]).0,
            Vec::<Vec<u8>>::new(),
            "no start"
        );
    }

    #[test]
    fn hostile_headers_and_sizes_are_refused_before_anything_is_kept() {
        let s = scope(0);
        // Without a key, so only the bounds stand in the way.
        let mut assembler = ChunkAssembler::new(Auth::Insecure, s, MAX);
        let full = vec![0u8; CHUNK_BYTES];
        // (id, position, payload, what the refusal says)
        type Case<'a> = (&'a [u8], &'a [u8], Vec<u8>, &'a str);
        let cases: Vec<Case<'_>> = vec![
            (b"id", b"0/4294967295", full.clone(), "exceed the limit"),
            (b"id", b"0/4", full.clone(), "exceed the limit"),
            (b"id", b"3/3", vec![1], "bad chunk position"),
            (b"id", b"1/0", vec![1], "bad chunk position"),
            (b"id", b"-1/2", vec![1], "bad chunk position"),
            (
                b"id",
                b"0/18446744073709551616",
                vec![1],
                "bad chunk position",
            ),
            (b"id", b"a/b", vec![1], "bad chunk position"),
            (b"id", b"0/2/3", vec![1], "bad chunk position"),
            (b"id", b"\xff/\xfe", vec![1], "bad chunk position"),
            (
                b"id",
                b"0/1",
                vec![0; CHUNK_BYTES + 1],
                "every chunk but the last",
            ),
            (b"id", b"0/2", vec![0; 10], "every chunk but the last"),
            (b"", b"0/1", vec![1], "checkpoint id"),
            (&[b'x'; MAX_ID_BYTES + 1], b"0/1", vec![1], "checkpoint id"),
        ];
        for (id, position, bytes, why) in cases {
            let headers = ChunkHeaders {
                checkpoint: Some(id),
                chunk: Some(position),
                mac: None,
            };
            let err = assembler
                .push(&headers, &bytes)
                .expect_err(&String::from_utf8_lossy(position));
            assert!(err.contains(why), "{position:?}: {err}");
            assert!(assembler.run.is_none(), "nothing kept");
        }
        let no_headers = ChunkHeaders::default();
        assert!(assembler.push(&no_headers, b"x").is_err());
    }

    #[test]
    fn a_checkpoint_above_the_limit_is_refused_while_it_is_read() {
        let max = CHUNK_BYTES + 100;
        let s = scope(0);
        let mut assembler = ChunkAssembler::new(Auth::Insecure, s.clone(), max);
        let fits = payload(max, 1);
        assert_eq!(
            feed(&mut assembler, &chunks(&Auth::Insecure, &s, "f", &fits)).0,
            vec![fits]
        );
        let over = payload(max + 1, 2);
        let (whole, refused) = feed(&mut assembler, &chunks(&Auth::Insecure, &s, "o", &over));
        assert!(whole.is_empty());
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("larger than the limit"), "{refused:?}");
    }
}
