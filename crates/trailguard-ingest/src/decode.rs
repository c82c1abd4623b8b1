//! Bytes of one input → raw records, whatever shape the delivery has.
//!
//! Shapes: gzip or plain (detected by the gzip magic number, not the file
//! name); an S3 delivery object `{"Records": [...]}`; a JSON array of
//! records; NDJSON (or any whitespace-separated sequence of JSON values);
//! EventBridge / CloudTrail Lake envelopes whose record is under `detail`.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use serde_json::value::RawValue;

use crate::normalize::RawRecord;

/// Most records read from one document. A document's records are gathered
/// as slices of its text (16 bytes each) before they are read; past this
/// many (an attacker's `[1,1,1,...]` holds 32 million in 64 MiB) the rest
/// of the document is skipped, counted and rejected as one, so memory
/// follows the document's size, not the count of its records. A real
/// CloudTrail delivery holds a few thousand.
pub(crate) const MAX_RECORDS: usize = 1 << 20;

/// The records of a document (an array, or a delivery object's `Records`):
/// at most [`MAX_RECORDS`], and how many more there were.
#[derive(Debug, Default)]
pub(crate) struct Records<'a> {
    pub(crate) kept: Vec<&'a RawValue>,
    pub(crate) skipped: usize,
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Records<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Each<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Each<'a> {
            type Value = Records<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of records")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Records<'a>, A::Error> {
                let mut records = Records::default();
                while records.kept.len() < MAX_RECORDS {
                    match seq.next_element::<&'de RawValue>()? {
                        Some(raw) => records.kept.push(raw),
                        None => return Ok(records),
                    }
                }
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    records.skipped += 1;
                }
                Ok(records)
            }
        }
        deserializer.deserialize_seq(Each(std::marker::PhantomData))
    }
}
use crate::scan::{records_array, scan_array};
use crate::{IngestStats, NormalizedEvent, Normalizer, RejectReason, Rejection};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decodes one input and hands every accepted event to `emit`, in input
/// order; every rejected record is counted in `stats` with its position.
/// Gzip is undone up to the default document limit
/// ([`crate::ReadOptions::max_document_bytes`]): a larger input is rejected
/// whole.
pub fn decode_bytes(
    file: &str,
    bytes: &[u8],
    normalizer: &Normalizer<'_>,
    stats: &mut IngestStats,
    emit: &mut dyn FnMut(NormalizedEvent),
) {
    stats.files += 1;
    let mut ctx = Context {
        file,
        normalizer,
        stats,
        emit,
        first_line: 1,
    };
    if bytes.starts_with(&GZIP_MAGIC) {
        let limit = crate::ReadOptions::default().max_document_bytes;
        let mut text = Vec::new();
        let read = MultiGzDecoder::new(bytes)
            .take(limit as u64 + 1)
            .read_to_end(&mut text);
        if text.len() > limit {
            ctx.reject(
                "whole input".into(),
                RejectReason::DocumentTooLarge { limit },
                b"",
            );
            return;
        }
        if let Err(e) = read {
            // Keep what was decompressed: the records before the damage are good.
            ctx.reject(
                format!("byte {} of the decompressed stream", text.len()),
                RejectReason::InvalidJson(format!("corrupt or truncated gzip stream ({e})")),
                b"",
            );
        }
        ctx.decode_text(&text);
    } else {
        ctx.decode_text(bytes);
    }
}

/// Parses every line of NDJSON `text` into the typed record the decoder
/// reads, and nothing more: the floor of reading CloudTrail JSON, for
/// benchmarks. Returns the number of records that parse.
pub fn parse_only(text: &[u8]) -> usize {
    text.split(|&b| b == b'\n')
        .filter(|line| serde_json::from_slice::<RawRecord<'_>>(line).is_ok())
        .count()
}

/// Decodes `text`, a piece of an input that starts at line `first_line`
/// (whole documents, or whole lines of NDJSON), already decompressed.
pub(crate) fn decode_piece(
    file: &str,
    text: &[u8],
    first_line: usize,
    normalizer: &Normalizer<'_>,
    stats: &mut IngestStats,
    emit: &mut dyn FnMut(NormalizedEvent),
) {
    Context {
        file,
        normalizer,
        stats,
        emit,
        first_line,
    }
    .decode_text(text);
}

/// Counts a rejection that is not a record of a piece: an unreadable input
/// or a corrupt compressed stream.
pub(crate) fn reject_input(
    stats: &mut IngestStats,
    file: &str,
    position: String,
    reason: RejectReason,
) {
    stats.reject(
        Rejection {
            file: file.to_owned(),
            position,
            reason,
            fragment: None,
        },
        b"",
    );
}

struct Context<'a, 'n> {
    file: &'a str,
    normalizer: &'a Normalizer<'n>,
    stats: &'a mut IngestStats,
    emit: &'a mut dyn FnMut(NormalizedEvent),
    first_line: usize,
}

/// The first offset at or after `from` that starts a line beginning with `{`.
fn next_record_line(text: &[u8], from: usize) -> usize {
    let mut at = from;
    while at < text.len() {
        let line_start = at == 0 || text[at - 1] == b'\n';
        if line_start && text[at] == b'{' {
            return at;
        }
        at += text[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len() - at, |p| p + 1);
    }
    text.len()
}

/// Line numbers of byte offsets, counted incrementally: offsets asked for
/// only grow, so a whole input costs one pass.
struct Lines<'t> {
    text: &'t [u8],
    pos: usize,
    line: usize,
}

impl Lines<'_> {
    /// 1-based line number of byte `offset` (not before the last one asked).
    fn at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset > self.pos {
            self.line += self.text[self.pos..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.pos = offset;
        }
        self.line
    }

    /// Byte offset where 1-based `line` starts (the text's length if it has
    /// fewer lines).
    fn start_of(&mut self, line: usize) -> usize {
        while self.line < line {
            match self.text[self.pos..].iter().position(|&b| b == b'\n') {
                Some(p) => {
                    self.pos += p + 1;
                    self.line += 1;
                }
                None => return self.text.len(),
            }
        }
        self.pos
    }
}

fn classify(e: &serde_json::Error) -> RejectReason {
    if e.is_data() {
        RejectReason::WrongType(e.to_string())
    } else {
        RejectReason::InvalidJson(e.to_string())
    }
}

impl Context<'_, '_> {
    fn reject(&mut self, position: String, reason: RejectReason, fragment: &[u8]) {
        self.stats.reject(
            Rejection {
                file: self.file.to_owned(),
                position,
                reason,
                fragment: None,
            },
            fragment,
        );
    }

    fn decode_text(&mut self, text: &[u8]) {
        let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        let start = text.iter().position(|b| !b.is_ascii_whitespace());
        match start.map(|i| text[i]) {
            None => {}
            Some(b'[') => match serde_json::from_slice::<Records<'_>>(text) {
                Ok(records) => {
                    for (i, raw) in records.kept.into_iter().enumerate() {
                        self.value(raw, &|| format!("record {i}"));
                    }
                    self.too_many(records.skipped, "");
                }
                Err(e) => {
                    let mut lines = Lines {
                        text,
                        pos: 0,
                        line: self.first_line,
                    };
                    let end = match records_array(text, 0) {
                        Some(array) => self.recover_document(text, &mut lines, array, &e),
                        None => text.len(),
                    };
                    if text[end..].iter().any(|b| !b.is_ascii_whitespace()) {
                        self.stream(text, end, &mut lines);
                    }
                }
            },
            Some(_) => {
                let first_line = self.first_line;
                let from = self.ndjson(text);
                if from < text.len() {
                    self.stream(
                        text,
                        from,
                        &mut Lines {
                            text,
                            pos: 0,
                            line: first_line,
                        },
                    );
                }
            }
        }
    }

    /// NDJSON, the common case, read line by line: each line is parsed once,
    /// straight into the typed record (the general path below first finds
    /// each value, then parses it again). Returns where it stopped: the end
    /// of the text, or the first line that is not one object on its own (a
    /// document spread over lines, several values on a line, a broken line),
    /// from which the general path reads on, exactly as it would have.
    fn ndjson(&mut self, text: &[u8]) -> usize {
        let mut at = 0;
        let mut line = self.first_line;
        while at < text.len() {
            let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |p| at + p);
            let value = text[at..end].trim_ascii();
            if !value.is_empty() {
                if !value.starts_with(b"{") {
                    return at;
                }
                // The line checked as UTF-8 once, whole: serde_json then
                // reads it as text and does not check each string again.
                let Ok(text) = std::str::from_utf8(value) else {
                    return at;
                };
                let Ok(record) = serde_json::from_str::<RawRecord<'_>>(text) else {
                    return at;
                };
                self.parsed(record, value, &|| format!("line {line}"));
            }
            at = end + 1;
            line += 1;
        }
        text.len()
    }

    /// A sequence of JSON values (one S3 delivery object, or NDJSON). A value
    /// that does not parse is rejected, and reading resumes at the next line
    /// after the error that starts with `{` in its first column (where NDJSON
    /// records start; lines inside a pretty-printed document are indented).
    fn stream(&mut self, text: &[u8], from: usize, lines: &mut Lines<'_>) {
        let mut at = from;
        while at < text.len() {
            let base_line = lines.at(at);
            let mut values =
                serde_json::Deserializer::from_slice(&text[at..]).into_iter::<&RawValue>();
            let mut resume = None;
            while let Some(item) = values.next() {
                match item {
                    Ok(raw) => {
                        let line = lines.at(raw.get().as_ptr() as usize - text.as_ptr() as usize);
                        self.value(raw, &|| format!("line {line}"));
                    }
                    Err(e) => {
                        let good_end = at + values.byte_offset();
                        let bad_start = text[good_end..]
                            .iter()
                            .position(|b| !b.is_ascii_whitespace())
                            .map_or(text.len(), |p| good_end + p);
                        if let Some(array) = records_array(text, bad_start) {
                            // A delivery object with a broken record (or a
                            // missing comma): read its records one by one.
                            resume = Some(
                                self.recover_document(text, lines, array, &e)
                                    .max(bad_start + 1),
                            );
                            break;
                        }
                        let bad_line = lines.at(bad_start);
                        let error_line = base_line + e.line().max(1) - 1;
                        let next = next_record_line(
                            text,
                            lines.start_of(error_line + 1).max(bad_start + 1),
                        );
                        // The rejection covers every line skipped to resync.
                        // `next` starts a line, or is the end of the text.
                        let at_line_start = next > 0 && text[next - 1] == b'\n';
                        let last_line = lines.at(next) - usize::from(at_line_start);
                        let position = if last_line > bad_line {
                            format!("lines {bad_line}-{last_line}")
                        } else {
                            format!("line {bad_line}")
                        };
                        self.reject(
                            position,
                            RejectReason::InvalidJson(e.to_string()),
                            &text[bad_start..next],
                        );
                        resume = Some(next);
                        break;
                    }
                }
            }
            match resume {
                Some(next) => at = next,
                None => break,
            }
        }
    }

    /// Reads the records of a document that does not parse as a whole, one
    /// by one (`array` is just after its records' `[`); returns where the
    /// document ends.
    fn recover_document(
        &mut self,
        text: &[u8],
        lines: &mut Lines<'_>,
        array: usize,
        error: &serde_json::Error,
    ) -> usize {
        let doc_line = lines.at(array);
        self.stats.repair(format!(
            "{}, line {doc_line}: the document is not valid JSON ({error}); its records were read one by one",
            self.file
        ));
        let scan = scan_array(text, array);
        let mut pieces: Vec<(std::ops::Range<usize>, Option<usize>)> = scan
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.clone(), Some(i)))
            .chain(scan.garbage.iter().map(|r| (r.clone(), None)))
            .collect();
        pieces.sort_by_key(|(r, _)| r.start);
        for (range, index) in pieces {
            let line = lines.at(range.start);
            let slice = &text[range.clone()];
            match index {
                Some(i) => match serde_json::from_slice::<&RawValue>(slice) {
                    Ok(raw) => self.value(raw, &|| format!("record {i}, line {line}")),
                    Err(e) => self.reject(
                        format!("record {i}, line {line}"),
                        RejectReason::InvalidJson(e.to_string()),
                        slice,
                    ),
                },
                None => {
                    let shown: String = String::from_utf8_lossy(slice).chars().take(40).collect();
                    self.reject(
                        format!("line {line}"),
                        RejectReason::InvalidJson(format!(
                            "unexpected text between records: `{shown}`"
                        )),
                        slice,
                    );
                }
            }
        }
        scan.end
    }

    /// Rejects, as one, the records of a document past [`MAX_RECORDS`].
    fn too_many(&mut self, skipped: usize, outer: &str) {
        if skipped == 0 {
            return;
        }
        let at = if outer.is_empty() {
            format!("record {MAX_RECORDS}")
        } else {
            format!("record {MAX_RECORDS} of {outer}")
        };
        self.reject(
            at,
            RejectReason::TooManyRecords {
                skipped,
                limit: MAX_RECORDS,
            },
            b"",
        );
    }

    fn value(&mut self, raw: &RawValue, position: &dyn Fn() -> String) {
        if !raw.get().starts_with('{') {
            self.reject(position(), RejectReason::NotAnObject, raw.get().as_bytes());
            return;
        }
        match serde_json::from_str(raw.get()) {
            Ok(record) => self.parsed(record, raw.get().as_bytes(), position),
            Err(e) => self.reject(position(), classify(&e), raw.get().as_bytes()),
        }
    }

    /// An object parsed as a record, whose text is `raw`: a delivery object's
    /// records, an envelope's record, an ECS document, or a record.
    fn parsed(&mut self, record: RawRecord<'_>, raw: &[u8], position: &dyn Fn() -> String) {
        if let Some(records) = &record.records {
            let outer = position();
            let single = outer == "line 1";
            self.too_many(records.skipped, &outer);
            for (i, inner) in records.kept.iter().enumerate() {
                let at = || {
                    if single {
                        format!("record {i}")
                    } else {
                        format!("record {i} of {outer}")
                    }
                };
                let bytes = inner.get().as_bytes();
                match serde_json::from_str::<RawRecord<'_>>(inner.get()) {
                    Ok(r) if bytes.starts_with(b"{") => self.record(r, bytes, &at),
                    Ok(_) => self.reject(at(), RejectReason::NotAnObject, bytes),
                    Err(e) => self.reject(at(), classify(&e), bytes),
                }
            }
            return;
        }
        if let Some(detail) = record.detail {
            match serde_json::from_str::<RawRecord<'_>>(detail.get()) {
                Ok(r) => self.record(r, detail.get().as_bytes(), position),
                Err(e) => self.reject(position(), classify(&e), raw),
            }
            return;
        }
        if record.maybe_ecs()
            && let Ok(doc) = serde_json::from_slice::<serde_json::Value>(raw)
            && crate::ecs::is_ecs(&doc)
        {
            let result = self.normalizer.normalize_ecs(&doc);
            self.accept(result, raw, position);
            return;
        }
        self.record(record, raw, position);
    }

    fn record(&mut self, record: RawRecord<'_>, raw: &[u8], position: &dyn Fn() -> String) {
        let result = self.normalizer.normalize(record, raw);
        self.accept(result, raw, position);
    }

    fn accept(
        &mut self,
        result: Result<(NormalizedEvent, Option<crate::NoAsnReason>), RejectReason>,
        raw: &[u8],
        position: &dyn Fn() -> String,
    ) {
        match result {
            Ok((event, no_asn)) => {
                self.stats.records_read += 1;
                self.stats.accepted += 1;
                if let Some(reason) = no_asn {
                    *self
                        .stats
                        .without_asn
                        .entry(std::borrow::Cow::Borrowed(reason.kind()))
                        .or_default() += 1;
                }
                (self.emit)(event);
            }
            Err(reason) => self.reject(position(), reason, raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    const A: &str =
        r#"{"eventTime":"2026-04-22T09:00:00Z","eventID":"a","eventName":"ListBuckets"}"#;
    const B: &str = r#"{"eventTime":"2026-04-22T09:00:01Z","eventID":"b","eventName":"GetObject"}"#;

    fn decode(bytes: &[u8]) -> (Vec<String>, IngestStats) {
        let mut stats = IngestStats::default();
        let mut ids = Vec::new();
        decode_bytes(
            "f.json",
            bytes,
            &Normalizer::new(None),
            &mut stats,
            &mut |e| ids.push(e.event_id.unwrap_or_default().into()),
        );
        (ids, stats)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).expect("gzip");
        enc.finish().expect("gzip")
    }

    #[test]
    fn every_shape() {
        let delivery = format!(r#"{{"Records":[{A},{B}]}}"#);
        let array = format!("[{A},\n{B}]");
        let ndjson = format!("{A}\n{B}\n");
        let eventbridge = format!(
            r#"{{"version":"0","detail-type":"AWS API Call via CloudTrail","detail":{A}}}"#
        );
        for (shape, text) in [
            ("delivery", &delivery),
            ("array", &array),
            ("ndjson", &ndjson),
        ] {
            assert_eq!(decode(text.as_bytes()).0, ["a", "b"], "{shape}");
            assert_eq!(decode(&gzip(text.as_bytes())).0, ["a", "b"], "gzip {shape}");
        }
        assert_eq!(decode(eventbridge.as_bytes()).0, ["a"]);
    }

    #[test]
    fn bad_ndjson_line_loses_only_itself() {
        let text = format!(
            "{A}\n{{\"eventTime\": oops}}\n[1,2]\n{{\"eventName\":\"x\"}}\n\"text\"\n{B}\n"
        );
        let (ids, stats) = decode(text.as_bytes());
        assert_eq!(ids, ["a", "b"]);
        let positions: Vec<String> = stats.rejections.iter().map(|r| r.to_string()).collect();
        // Line 3 does not start a record, so it is skipped with line 2.
        assert!(
            positions[0].starts_with("f.json, lines 2-3: invalid JSON"),
            "{positions:?}"
        );
        assert!(
            positions[1].starts_with("f.json, line 4: no eventTime"),
            "{positions:?}"
        );
        assert!(
            positions[2].starts_with("f.json, line 5: not a JSON object"),
            "{positions:?}"
        );
        assert_eq!(stats.records_read, 5);
    }

    #[test]
    fn a_missing_comma_between_records_loses_nothing() {
        let text = format!("{{\"Records\": [\n  {A}\n  {B}\n]}}\n{A}\n");
        let (ids, stats) = decode(text.as_bytes());
        assert_eq!(
            ids,
            ["a", "b", "a"],
            "both records of the broken document, then the next line"
        );
        assert_eq!(stats.rejected_total(), 0, "{:?}", stats.rejections);
        assert_eq!(stats.repaired_documents, 1);
        assert!(
            stats.repairs[0].starts_with("f.json, line 1: the document is not valid JSON"),
            "{:?}",
            stats.repairs
        );
    }

    #[test]
    fn a_broken_record_in_a_delivery_costs_only_itself() {
        let text = format!(
            "{{\"Records\": [{A},\n{{\"eventTime\": 2026-04-22, \"eventID\": \"x\"}},\n{B}]}}"
        );
        let (ids, stats) = decode(text.as_bytes());
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(stats.rejected_total(), 1);
        assert_eq!(stats.rejections[0].position, "record 1, line 2");
        let gz = gzip(text.as_bytes());
        assert_eq!(decode(&gz).0, ["a", "b"], "the same inside gzip");
        let array = format!("[{A},\n{{\"eventTime\": }},\n{B}]");
        let (ids, stats) = decode(array.as_bytes());
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(stats.rejections[0].position, "record 1, line 2");
    }

    #[test]
    fn a_numeric_event_name_is_a_wrong_type() {
        let text =
            format!("{A}\n{{\"eventTime\":\"2026-04-22T09:00:00Z\",\"eventName\":42}}\n{B}\n");
        let (ids, stats) = decode(text.as_bytes());
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(stats.rejected.get("wrong-type"), Some(&1));
        assert_eq!(stats.rejections[0].position, "line 2");
        assert!(
            stats.rejections[0]
                .reason
                .to_string()
                .contains("invalid type: integer `42`"),
            "{}",
            stats.rejections[0]
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let text = format!(
            r#"{{"Records":[{A},{{"eventTime":"2026-04-22T09:00:00Z","userIdentity":"me"}},{B}]}}"#
        );
        let (ids, stats) = decode(text.as_bytes());
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(stats.rejected.get("wrong-type"), Some(&1));
        assert_eq!(stats.rejections[0].position, "record 1");
    }

    #[test]
    fn truncated_gzip_keeps_what_came_before() {
        let text: String = (0..2000)
            .map(|i| format!("{{\"eventTime\":\"2026-04-22T09:00:00Z\",\"eventID\":\"{i}\"}}\n"))
            .collect();
        let zipped = gzip(text.as_bytes());
        let (ids, stats) = decode(&zipped[..zipped.len() * 2 / 3]);
        assert!(ids.len() > 100, "{}", ids.len());
        assert!(ids.iter().enumerate().all(|(i, id)| *id == i.to_string()));
        assert!(stats.rejections[0].reason.to_string().contains("gzip"));
    }

    #[test]
    fn a_gzip_bomb_is_not_unpacked_past_the_limit() {
        let limit = crate::ReadOptions::default().max_document_bytes;
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(A.as_bytes()).expect("gzip");
        let spaces = vec![b' '; 1 << 20];
        for _ in 0..=(limit >> 20) {
            enc.write_all(&spaces).expect("gzip");
        }
        let (ids, stats) = decode(&enc.finish().expect("gzip"));
        assert!(ids.is_empty());
        assert_eq!(stats.rejected.get("document-too-large"), Some(&1));
        assert_eq!(stats.rejections[0].position, "whole input");
    }

    #[test]
    fn not_json_at_all() {
        let (ids, stats) = decode(b"hello, world\nthis is not json\n");
        assert!(ids.is_empty());
        assert!(stats.rejected_total() >= 1);
        assert_eq!(stats.rejections[0].position, "lines 1-2");
    }
}
