//! Counters of what ingestion accepted, rejected and could not enrich.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a record was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RejectReason {
    /// The bytes are not valid JSON (or a gzip stream is corrupt).
    InvalidJson(String),
    /// Valid JSON, but not a JSON object.
    NotAnObject,
    /// A field has the wrong JSON type.
    WrongType(String),
    /// Neither `eventTime` nor `@timestamp` is present.
    MissingEventTime,
    /// The event time does not parse.
    BadEventTime(String),
    /// The input cannot be read at all.
    Unreadable(String),
    /// A document read whole (a JSON array, a pretty-printed delivery
    /// object) is larger than the limit once decompressed: it is not read.
    DocumentTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A line is longer than the limit: it is skipped, the next one read.
    LineTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The input is larger than the limit once decompressed: what follows
    /// the limit is not read.
    InputTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A document holds more records than one document may: those past the
    /// limit are skipped, counted in this one rejection.
    TooManyRecords {
        /// Records skipped.
        skipped: usize,
        /// The most records read from one document.
        limit: usize,
    },
    /// The event time is further ahead of the wall clock than allowed.
    FutureEventTime {
        /// The event time as written.
        time: String,
        /// How far ahead of the clock an event may be, in milliseconds.
        limit_ms: i64,
    },
    /// The event time is far ahead of the stream (the newest event
    /// accepted), and the events after it did not follow it there.
    AheadOfStream {
        /// The event time.
        time: String,
        /// The newest event time accepted when it came, if any.
        newest: Option<String>,
        /// How far ahead of the stream an event may be, in milliseconds.
        limit_ms: i64,
    },
}

/// A size for messages: whole MiB as such, anything else in bytes.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

impl RejectReason {
    /// A short, stable name for counting (`invalid-json`, `missing-event-time`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            RejectReason::InvalidJson(_) => "invalid-json",
            RejectReason::NotAnObject => "not-an-object",
            RejectReason::WrongType(_) => "wrong-type",
            RejectReason::MissingEventTime => "missing-event-time",
            RejectReason::BadEventTime(_) => "bad-event-time",
            RejectReason::Unreadable(_) => "unreadable",
            RejectReason::DocumentTooLarge { .. } => "document-too-large",
            RejectReason::LineTooLong { .. } => "line-too-long",
            RejectReason::InputTooLarge { .. } => "input-too-large",
            RejectReason::TooManyRecords { .. } => "too-many-records",
            RejectReason::FutureEventTime { .. } => "future-event-time",
            RejectReason::AheadOfStream { .. } => "ahead-of-stream",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::InvalidJson(m) => write!(f, "invalid JSON: {m}"),
            RejectReason::NotAnObject => f.write_str("not a JSON object"),
            RejectReason::WrongType(m) => write!(f, "wrong field type: {m}"),
            RejectReason::MissingEventTime => f.write_str("no eventTime (nor @timestamp)"),
            RejectReason::BadEventTime(t) => write!(f, "eventTime `{t}` is not a date-time"),
            RejectReason::Unreadable(m) => write!(f, "cannot read: {m}"),
            RejectReason::DocumentTooLarge { limit } => write!(
                f,
                "the document is larger than the limit of {} after decompression, so it is not read (raise [input] max_document_mib)",
                size(*limit as u64)
            ),
            RejectReason::LineTooLong { limit } => write!(
                f,
                "the line is longer than the limit of {}, so it is skipped (raise [input] max_document_mib)",
                size(*limit as u64)
            ),
            RejectReason::InputTooLarge { limit } => write!(
                f,
                "the input is larger than the limit of {} after decompression; the rest of it is not read (raise [input] max_input_mib)",
                size(*limit)
            ),
            RejectReason::TooManyRecords { skipped, limit } => write!(
                f,
                "the document holds more than {limit} records; the {skipped} after them are skipped (a CloudTrail delivery holds a few thousand: split the document)"
            ),
            RejectReason::FutureEventTime { time, limit_ms } => write!(
                f,
                "eventTime `{time}` is more than {} minute(s) ahead of the clock, so it cannot be real (set [input] max_future_minutes; 0 turns the check off)",
                limit_ms / 60_000
            ),
            RejectReason::AheadOfStream {
                time,
                newest,
                limit_ms,
            } => write!(
                f,
                "eventTime `{time}` is more than {} hour(s) ahead of the stream{} and the events after it did not follow, so it would have made them late (set [run] max_time_jump_hours; 0 turns the check off)",
                limit_ms / 3_600_000,
                match newest {
                    Some(t) => format!(" (newest event: {t})"),
                    None => String::new(),
                }
            ),
        }
    }
}

/// One rejected record: where it was and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The input it came from.
    pub file: String,
    /// Where in the input: `line 12`, `record 3`, or `record 3 of line 1`.
    pub position: String,
    /// Why.
    pub reason: RejectReason,
    /// The rejected record or unreadable fragment (lossy UTF-8, at most
    /// [`Rejection::MAX_FRAGMENT`] bytes), kept only for a dead-letter file.
    pub fragment: Option<String>,
}

impl Rejection {
    /// Longest fragment kept for a dead-letter file.
    pub const MAX_FRAGMENT: usize = 1 << 20;
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}: {}", self.file, self.position, self.reason)
    }
}

/// Why an accepted event carries no source AS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoAsnReason {
    /// No `sourceIPAddress` at all.
    NoAddress,
    /// The address is not a literal IP (a service host name, `AWS Internal`,
    /// or an address with leading zeros such as `075.050.255.67`).
    NotAnIp,
    /// A literal IP that no network in the database covers (private ranges
    /// among them).
    NotInDatabase,
    /// No ASN database was given.
    NoDatabase,
}

impl NoAsnReason {
    /// A short, stable name for counting.
    pub fn kind(self) -> &'static str {
        match self {
            NoAsnReason::NoAddress => "no-source-address",
            NoAsnReason::NotAnIp => "not-a-literal-ip",
            NoAsnReason::NotInDatabase => "not-in-database",
            NoAsnReason::NoDatabase => "no-database",
        }
    }
}

/// Counts by a short, stable name (`invalid-json`, `not-in-database`, ...).
pub type Counts = BTreeMap<Cow<'static, str>, u64>;

/// Everything ingestion counted. The counts serialize (for checkpoints);
/// the itemized lists do not.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IngestStats {
    /// Inputs read.
    pub files: u64,
    /// Records seen (accepted + rejected).
    pub records_read: u64,
    /// Records turned into events.
    pub accepted: u64,
    /// Rejections by [`RejectReason::kind`].
    pub rejected: Counts,
    /// The rejections themselves, in input order (at most [`IngestStats::KEEP_REJECTIONS`]).
    #[serde(skip)]
    pub rejections: Vec<Rejection>,
    /// Accepted events without source AS, by [`NoAsnReason::kind`].
    pub without_asn: Counts,
    /// Events dropped because an event with the same `eventID` was seen
    /// within the deduplication window.
    pub duplicates: u64,
    /// Events left out because their time is outside the run's
    /// `--since` / `--until` range.
    pub outside_time_range: u64,
    /// Keep each rejection's fragment in [`IngestStats::dead_letters`].
    #[serde(skip)]
    pub keep_fragments: bool,
    /// Rejections with their fragments, for the caller to write out and
    /// drain (only with `keep_fragments`; at most about
    /// [`IngestStats::DEAD_LETTER_BUDGET`] bytes of them at a time).
    #[serde(skip)]
    pub dead_letters: Vec<Rejection>,
    /// Rejections not kept for the dead letter because the ones waiting to
    /// be written filled its budget (a piece of millions of bad records).
    pub dead_letters_dropped: u64,
    /// Bytes held in `dead_letters`, roughly.
    #[serde(skip)]
    pub(crate) dead_letter_bytes: usize,
    /// Documents that were not valid JSON as a whole and whose records were
    /// read one by one.
    pub repaired_documents: u64,
    /// Where and why, for the first [`IngestStats::KEEP_REJECTIONS`].
    #[serde(skip)]
    pub repairs: Vec<String>,
}

impl IngestStats {
    /// How many rejections are kept for the report; all are counted.
    pub const KEEP_REJECTIONS: usize = 1000;

    /// Bytes of rejections (fragments and locations) held for the dead
    /// letter between two drains; past it they are counted only.
    pub const DEAD_LETTER_BUDGET: usize = 8 << 20;

    /// The dead-letter rejections waiting, taken (the budget is freed).
    pub fn take_dead_letters(&mut self) -> Vec<Rejection> {
        self.dead_letter_bytes = 0;
        std::mem::take(&mut self.dead_letters)
    }

    /// Counts a rejection of `fragment`.
    pub fn reject(&mut self, mut rejection: Rejection, fragment: &[u8]) {
        self.records_read += 1;
        *self
            .rejected
            .entry(Cow::Borrowed(rejection.reason.kind()))
            .or_default() += 1;
        if self.keep_fragments {
            let cut = &fragment[..fragment.len().min(Rejection::MAX_FRAGMENT)];
            let cost = cut.len() + rejection.file.len() + rejection.position.len() + 128;
            if self.dead_letter_bytes + cost <= Self::DEAD_LETTER_BUDGET {
                self.dead_letter_bytes += cost;
                let mut kept = rejection.clone();
                kept.fragment = Some(String::from_utf8_lossy(cut).into_owned());
                self.dead_letters.push(kept);
            } else {
                self.dead_letters_dropped += 1;
            }
        }
        rejection.fragment = None;
        if self.rejections.len() < Self::KEEP_REJECTIONS {
            self.rejections.push(rejection);
        }
    }

    /// Counts as rejected a record already counted as accepted, that a
    /// later stage refused (an event far ahead of the stream).
    pub fn reject_accepted(&mut self, rejection: Rejection, fragment: &[u8]) {
        self.accepted = self.accepted.saturating_sub(1);
        self.records_read = self.records_read.saturating_sub(1);
        self.reject(rejection, fragment);
    }

    /// Adds the counts of `other` (a later part of the input) to these.
    pub fn merge(&mut self, other: IngestStats) {
        self.files += other.files;
        self.records_read += other.records_read;
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.repaired_documents += other.repaired_documents;
        for (k, v) in other.rejected {
            *self.rejected.entry(k).or_default() += v;
        }
        for (k, v) in other.without_asn {
            *self.without_asn.entry(k).or_default() += v;
        }
        let room = Self::KEEP_REJECTIONS.saturating_sub(self.rejections.len());
        self.rejections
            .extend(other.rejections.into_iter().take(room));
        let room = Self::KEEP_REJECTIONS.saturating_sub(self.repairs.len());
        self.repairs.extend(other.repairs.into_iter().take(room));
        self.dead_letters.extend(other.dead_letters);
        self.dead_letter_bytes += other.dead_letter_bytes;
        self.dead_letters_dropped += other.dead_letters_dropped;
    }

    /// Notes a document whose records were recovered one by one.
    pub fn repair(&mut self, note: String) {
        self.repaired_documents += 1;
        if self.repairs.len() < Self::KEEP_REJECTIONS {
            self.repairs.push(note);
        }
    }

    /// Total number of rejected records.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}
