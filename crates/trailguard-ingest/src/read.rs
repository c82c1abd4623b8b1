//! Reading many inputs on all cores, in input order, in bounded memory.
//!
//! One thread reads the inputs in order and cuts them into *pieces*: a
//! whole document (an S3 delivery object, a JSON array, a pretty-printed
//! file), or a run of whole lines of NDJSON of about `piece_bytes`. Pieces
//! are decoded in groups, in parallel (rayon), and handed to the caller in
//! input order, so the same input always gives the same events in the same
//! order. At most a group being decoded and one decoded group waiting are
//! in memory, whatever the size of the input.
//!
//! Nothing read is held beyond the limits of [`ReadOptions`]: a document
//! must fit in `max_document_bytes` (it is decoded whole), so must a line
//! (a line may be a whole delivery object), and an input is read up to
//! `max_input_bytes`, all counted after decompression. What exceeds a limit
//! is rejected with its position and skipped without being kept; the rest
//! is read. A piece larger than a group is decoded alone and its events
//! handed over in chunks, so small records in a large document do not all
//! become events at once.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::sync_channel;

use flate2::read::MultiGzDecoder;
use rayon::prelude::*;

use crate::decode::{decode_piece, reject_input};
use crate::{IngestStats, NormalizedEvent, Normalizer, RejectReason, Source};

/// How inputs are cut and grouped, and how much of them is read.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// NDJSON is cut into pieces of about this many bytes (whole lines).
    pub piece_bytes: usize,
    /// Pieces are decoded in parallel in groups of about this many bytes.
    pub group_bytes: usize,
    /// Keep rejected records' text for a dead-letter file.
    pub keep_fragments: bool,
    /// Decode on this many threads (`None`: all cores).
    pub threads: Option<usize>,
    /// The largest document read whole and the longest line, after
    /// decompression (a line may be a whole S3 delivery object: CloudTrail
    /// writes them on one line). A larger document is rejected whole, a
    /// longer line is skipped. Default 64 MiB.
    pub max_document_bytes: usize,
    /// The most read from one input after decompression; what follows is
    /// rejected unread. Default 4 GiB.
    pub max_input_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            piece_bytes: 1 << 20,
            group_bytes: 8 << 20,
            keep_fragments: false,
            threads: None,
            max_document_bytes: 64 << 20,
            max_input_bytes: 4 << 30,
        }
    }
}

/// Where to resume a run that was interrupted: inputs already done, and
/// how many pieces of the input that was under way.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resume {
    /// Names of inputs fully processed.
    pub done: std::collections::BTreeSet<String>,
    /// The input under way and the number of its pieces processed.
    pub current: Option<(String, u64)>,
}

/// Which piece a batch of events came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceInfo {
    /// The input's name.
    pub file: String,
    /// The piece's index within the input.
    pub index: u64,
    /// Whether it is the input's last piece.
    pub last: bool,
    /// More events of this piece follow (a large piece's events come in
    /// chunks): the piece is not done yet.
    pub partial: bool,
}

/// A unit of decoding work.
struct Piece {
    file: String,
    text: Vec<u8>,
    first_line: usize,
    index: u64,
    last: bool,
    /// The first piece of an input counts the input.
    first: bool,
    /// A rejection just after this piece's text: a line skipped, or what
    /// stopped reading the input.
    read_error: Option<(String, RejectReason)>,
}

/// What decoding one piece gave.
struct Decoded {
    info: PieceInfo,
    events: Vec<NormalizedEvent>,
    stats: IngestStats,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Events of a large piece are handed over this many at a time.
const CHUNK_EVENTS: usize = 16_384;

/// The error a [`Capped`] reader returns past its limit.
#[derive(Debug)]
struct OverLimit(u64);

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.0)
    }
}

impl std::error::Error for OverLimit {}

/// A reader that gives at most `limit` bytes, then fails with
/// [`OverLimit`] if there is more.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            return match self.inner.read(&mut [0u8])? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(OverLimit(self.limit))),
            };
        }
        let room = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..room])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Opens an input, gunzipping it if it starts with gzip's magic number,
/// and reads at most `max_bytes` of it (after decompression).
fn open(source: &Source, max_bytes: u64) -> std::io::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = match source {
        Source::File(path) => Box::new(std::fs::File::open(path)?),
        Source::Stdin => Box::new(std::io::stdin()),
    };
    let mut buffered = BufReader::with_capacity(256 << 10, raw);
    let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
    let plain: Box<dyn Read + Send> = if gzip {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    Ok(Box::new(BufReader::with_capacity(
        256 << 10,
        Capped {
            inner: plain,
            left: max_bytes,
            limit: max_bytes,
        },
    )))
}

/// How reading lines into a piece ended.
enum Stop {
    /// At a line end, with at least the bytes wanted.
    Full,
    /// At the end of the input.
    End,
    /// Before a line longer than the limit, which was skipped: `bytes`
    /// long, with its line end.
    LongLine { bytes: u64 },
    /// On an error.
    Failed(std::io::Error),
}

/// Reads at least `want` bytes (or up to the input's end) into `into`,
/// ending just after a line end: whole blocks from the reader's buffer, so
/// lines are not looked for one by one. Stops before a line longer than
/// `max_line` bytes (without its line end), which is read past and dropped:
/// `into` never holds more than `want` plus one line of at most `max_line`.
fn read_lines(input: &mut dyn BufRead, want: usize, max_line: usize, into: &mut Vec<u8>) -> Stop {
    // The bytes of the line under way at the end of `into`.
    let mut open = into.len() - memchr::memrchr(b'\n', into).map_or(0, |p| p + 1);
    while into.len() < want || !into.ends_with(b"\n") {
        let block = match input.fill_buf() {
            Ok([]) => return Stop::End,
            Ok(block) => block,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Stop::Failed(e),
        };
        // The first line end that brings the piece to `want` bytes ends it.
        let from = want.saturating_sub(into.len()).saturating_sub(1);
        let take = match block
            .get(from..)
            .and_then(|rest| memchr::memchr(b'\n', rest))
        {
            Some(at) => from + at + 1,
            None => block.len(),
        };
        // Every line must fit, the one left open at the end of the block too.
        let mut line_from = 0;
        let mut too_long = None;
        for end in memchr::memchr_iter(b'\n', &block[..take]) {
            if open + end - line_from > max_line {
                too_long = Some((end + 1, true));
                break;
            }
            open = 0;
            line_from = end + 1;
        }
        if too_long.is_none() && open + take - line_from > max_line {
            too_long = Some((take, false));
        }
        let Some((read, ended)) = too_long else {
            into.extend_from_slice(&block[..take]);
            open += take - line_from;
            input.consume(take);
            continue;
        };
        // Keep the lines before the long one, drop what was read of it.
        let mut bytes = (open + read - line_from) as u64;
        into.truncate(into.len() - open);
        into.extend_from_slice(&block[..line_from]);
        input.consume(read);
        if !ended {
            match skip_line(input) {
                Ok(skipped) => bytes += skipped,
                Err(e) => return Stop::Failed(e),
            }
        }
        return Stop::LongLine { bytes };
    }
    Stop::Full
}

/// Reads past the next line end (or to the end of the input), keeping
/// nothing; returns the bytes read.
fn skip_line(input: &mut dyn BufRead) -> std::io::Result<u64> {
    let mut skipped = 0;
    loop {
        let block = match input.fill_buf() {
            Ok(block) => block,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if block.is_empty() {
            return Ok(skipped);
        }
        let (n, ended) = match memchr::memchr(b'\n', block) {
            Some(at) => (at + 1, true),
            None => (block.len(), false),
        };
        input.consume(n);
        skipped += n as u64;
        if ended {
            return Ok(skipped);
        }
    }
}

/// Why reading an input stopped on `error`.
fn read_failure(error: &std::io::Error) -> RejectReason {
    match error.get_ref().and_then(|e| e.downcast_ref::<OverLimit>()) {
        Some(OverLimit(limit)) => RejectReason::InputTooLarge { limit: *limit },
        None => RejectReason::InvalidJson(format!("the input is cut off or corrupt ({error})")),
    }
}

/// Whether `text` starts with one complete JSON value on its first line:
/// then the input is NDJSON and can be cut at line ends.
fn first_line_is_a_value(text: &[u8]) -> bool {
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let trimmed = line.trim_ascii();
    !trimmed.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok()
}

/// Cuts one input into pieces and hands them to `send`; stops early if
/// `send` returns `false`.
fn cut(source: &Source, options: &ReadOptions, send: &mut dyn FnMut(Piece) -> bool) {
    let file = source.name();
    let only = |file: String, position: &str, reason: RejectReason| Piece {
        file,
        text: Vec::new(),
        first_line: 1,
        index: 0,
        last: true,
        first: true,
        read_error: Some((position.to_owned(), reason)),
    };
    let mut input = match open(source, options.max_input_bytes) {
        Ok(input) => input,
        Err(e) => {
            send(only(
                file,
                "whole input",
                RejectReason::Unreadable(e.to_string()),
            ));
            return;
        }
    };
    let max = options.max_document_bytes;
    let mut text = Vec::new();
    let mut stop = read_lines(&mut *input, options.piece_bytes, max, &mut text);
    // A first line too long to read is skipped as a line of NDJSON.
    let ndjson = match stop {
        Stop::LongLine { .. } => text.is_empty() || first_line_is_a_value(&text),
        _ => first_line_is_a_value(&text),
    } && !text.trim_ascii_start().starts_with(b"[");
    if !ndjson {
        // A document: decoded whole, so it must fit the limit.
        stop = match stop {
            Stop::Full => {
                let room = (max + 1).saturating_sub(text.len()) as u64;
                match (&mut *input).take(room).read_to_end(&mut text) {
                    Ok(_) => Stop::End,
                    Err(e) => Stop::Failed(e),
                }
            }
            other => other,
        };
        if matches!(stop, Stop::LongLine { .. }) || text.len() > max {
            send(only(
                file,
                "whole input",
                RejectReason::DocumentTooLarge { limit: max },
            ));
            return;
        }
    }
    let mut first_line = 1;
    let mut offset = 0;
    let mut first = true;
    let mut index = 0;
    loop {
        let lines = memchr::memchr_iter(b'\n', &text).count();
        let (read_error, skipped, more) = match stop {
            Stop::Full => (None, 0, true),
            Stop::End => (None, 0, false),
            Stop::LongLine { bytes } => (
                Some((
                    format!("line {}", first_line + lines),
                    RejectReason::LineTooLong { limit: max },
                )),
                bytes,
                true,
            ),
            Stop::Failed(e) => (
                Some((
                    format!(
                        "byte {} of the input (after decompression)",
                        offset + text.len() as u64
                    ),
                    read_failure(&e),
                )),
                0,
                false,
            ),
        };
        let current = std::mem::take(&mut text);
        // Read ahead, so a piece knows whether it is the input's last.
        stop = if more {
            read_lines(&mut *input, options.piece_bytes, max, &mut text)
        } else {
            Stop::End
        };
        let last = !more || (text.is_empty() && matches!(stop, Stop::End));
        offset += current.len() as u64 + skipped;
        let piece = Piece {
            file: file.clone(),
            text: current,
            first_line,
            index,
            last,
            first,
            read_error,
        };
        if !send(piece) || last {
            return;
        }
        first = false;
        first_line += lines + usize::from(skipped > 0);
        index += 1;
    }
}

/// Decodes a piece, handing its events to `emit`; returns what it counted.
fn decode(
    piece: &Piece,
    normalizer: &Normalizer<'_>,
    keep_fragments: bool,
    emit: &mut dyn FnMut(NormalizedEvent),
) -> IngestStats {
    let mut stats = IngestStats {
        keep_fragments,
        ..IngestStats::default()
    };
    if piece.first {
        stats.files += 1;
    }
    decode_piece(
        &piece.file,
        &piece.text,
        piece.first_line,
        normalizer,
        &mut stats,
        emit,
    );
    if let Some((position, reason)) = &piece.read_error {
        reject_input(&mut stats, &piece.file, position.clone(), reason.clone());
    }
    stats
}

impl Piece {
    fn info(&self, partial: bool) -> PieceInfo {
        PieceInfo {
            file: self.file.clone(),
            index: self.index,
            last: self.last,
            partial,
        }
    }
}

/// Reads every source: cuts, decodes on all cores, and calls `consume` with
/// each piece's events in input order, together with the statistics so far
/// (whose `dead_letters` the caller may drain). The events of a large piece
/// come in several calls, all but the last [`PieceInfo::partial`].
/// `consume` returns `false` to stop reading. Inputs and pieces that
/// `resume` says are done are skipped; `stats` is added to. Returns the
/// statistics.
pub fn read_sources(
    sources: &[Source],
    normalizer: &Normalizer<'_>,
    options: &ReadOptions,
    resume: &Resume,
    mut stats: IngestStats,
    consume: &mut dyn FnMut(PieceInfo, Vec<NormalizedEvent>, &mut IngestStats) -> bool,
) -> IngestStats {
    stats.keep_fragments = options.keep_fragments;
    let keep = options.keep_fragments;
    let pool = options.threads.and_then(|n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .ok()
    });
    std::thread::scope(|scope| {
        let (send, receive) = sync_channel::<Vec<Decoded>>(1);
        scope.spawn(move || {
            let mut group: Vec<Piece> = Vec::new();
            let mut bytes = 0;
            let flush = |group: &mut Vec<Piece>| -> bool {
                if group.is_empty() {
                    return true;
                }
                let work = || -> Vec<Decoded> {
                    group
                        .par_iter()
                        .map(|p| {
                            let mut events = Vec::new();
                            let stats = decode(p, normalizer, keep, &mut |e| events.push(e));
                            Decoded {
                                info: p.info(false),
                                events,
                                stats,
                            }
                        })
                        .collect()
                };
                let decoded = match &pool {
                    Some(pool) => pool.install(work),
                    None => work(),
                };
                group.clear();
                send.send(decoded).is_ok()
            };
            // A piece larger than a group, decoded here, its events sent in
            // chunks as they come.
            let stream = |piece: &Piece| -> bool {
                let mut open = true;
                let mut chunk = Vec::new();
                let stats = decode(piece, normalizer, keep, &mut |e| {
                    chunk.push(e);
                    if chunk.len() >= CHUNK_EVENTS {
                        let events = std::mem::take(&mut chunk);
                        open = open
                            && send
                                .send(vec![Decoded {
                                    info: piece.info(true),
                                    events,
                                    stats: IngestStats::default(),
                                }])
                                .is_ok();
                    }
                });
                open && send
                    .send(vec![Decoded {
                        info: piece.info(false),
                        events: chunk,
                        stats,
                    }])
                    .is_ok()
            };
            for source in sources {
                let name = source.name();
                if resume.done.contains(&name) {
                    continue;
                }
                let skip = match &resume.current {
                    Some((file, pieces)) if *file == name => *pieces,
                    _ => 0,
                };
                let mut open = true;
                cut(source, options, &mut |piece| {
                    if piece.index < skip {
                        // Done before the interruption: read, not decoded.
                        return true;
                    }
                    if piece.text.len() > options.group_bytes {
                        bytes = 0;
                        open = flush(&mut group) && stream(&piece);
                        return open;
                    }
                    bytes += piece.text.len();
                    group.push(piece);
                    if bytes >= options.group_bytes || group.len() >= 1024 {
                        bytes = 0;
                        open = flush(&mut group);
                    }
                    open
                });
                if !open {
                    return;
                }
            }
            flush(&mut group);
        });
        'pieces: for decoded in receive {
            for piece in decoded {
                stats.merge(piece.stats);
                if !consume(piece.info, piece.events, &mut stats) {
                    break 'pieces;
                }
            }
        }
    });
    stats
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn read(files: &[(&str, Vec<u8>)], options: ReadOptions) -> (Vec<String>, IngestStats) {
        let dir = tempfile::tempdir().expect("tempdir");
        let sources: Vec<Source> = files
            .iter()
            .map(|(name, bytes)| {
                let path = dir.path().join(name);
                std::fs::write(&path, bytes).expect("write");
                Source::File(path)
            })
            .collect();
        read_resuming(&sources, options, &Resume::default())
    }

    fn read_resuming(
        sources: &[Source],
        options: ReadOptions,
        resume: &Resume,
    ) -> (Vec<String>, IngestStats) {
        let mut ids = Vec::new();
        let stats = read_sources(
            sources,
            &Normalizer::new(None),
            &options,
            resume,
            IngestStats::default(),
            &mut |_, events, _| {
                ids.extend(
                    events
                        .into_iter()
                        .map(|e| e.event_id.unwrap_or_default().into()),
                );
                true
            },
        );
        (ids, stats)
    }

    fn ndjson(from: usize, to: usize) -> Vec<u8> {
        (from..to)
            .map(|i| format!("{{\"eventTime\":\"2026-04-22T09:00:00Z\",\"eventID\":\"{i}\"}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn pieces_keep_order_and_line_numbers() {
        let mut big = ndjson(0, 5000);
        // A broken line deep in the file, in a later piece.
        big.extend_from_slice(b"{\"eventTime\": oops}\n");
        big.extend(ndjson(5000, 6000));
        let small = ndjson(6000, 6010);
        let tiny = ReadOptions {
            piece_bytes: 4096,
            group_bytes: 16384,
            keep_fragments: true,
            ..ReadOptions::default()
        };
        let (ids, stats) = read(&[("a.ndjson", big), ("b.ndjson", small)], tiny);
        let expected: Vec<String> = (0..6010).map(|i| i.to_string()).collect();
        assert_eq!(ids, expected);
        assert_eq!(stats.files, 2);
        assert_eq!(stats.rejected_total(), 1);
        assert_eq!(stats.rejections[0].position, "line 5001");
        assert_eq!(
            stats.dead_letters[0].fragment.as_deref(),
            Some("{\"eventTime\": oops}\n")
        );
    }

    #[test]
    fn gzip_streams_and_documents() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&ndjson(0, 3000)).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let truncated = gz[..gz.len() / 2].to_vec();
        let document =
            br#"{"Records": [{"eventTime":"2026-04-22T09:00:00Z","eventID":"doc"}]}"#.to_vec();
        let options = ReadOptions {
            piece_bytes: 8192,
            ..ReadOptions::default()
        };
        let (ids, stats) = read(
            &[("a.gz", gz), ("b.json", document), ("c.gz", truncated)],
            options,
        );
        assert_eq!(ids[..3000].len(), 3000);
        assert_eq!(ids[3000], "doc");
        assert!(ids.len() > 3001, "records before the damage are kept");
        assert!(
            stats
                .rejections
                .iter()
                .any(|r| r.file.ends_with("c.gz") && r.reason.to_string().contains("cut off"))
        );
        assert_eq!(stats.files, 3);
    }

    #[test]
    fn an_unreadable_input_is_a_located_rejection() {
        let sources = [Source::File("/nonexistent/x.json".into())];
        let stats = read_sources(
            &sources,
            &Normalizer::new(None),
            &ReadOptions::default(),
            &Resume::default(),
            IngestStats::default(),
            &mut |_, _, _| true,
        );
        assert_eq!(stats.rejected.get("unreadable"), Some(&1));
        assert_eq!(stats.rejections[0].position, "whole input");
    }

    #[test]
    fn resume_skips_done_inputs_and_pieces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.ndjson");
        let b = dir.path().join("b.ndjson");
        std::fs::write(&a, ndjson(0, 10)).expect("write");
        std::fs::write(&b, ndjson(10, 3000)).expect("write");
        let sources = [Source::File(a.clone()), Source::File(b.clone())];
        let options = ReadOptions {
            piece_bytes: 4096,
            ..ReadOptions::default()
        };
        let mut pieces = Vec::new();
        read_sources(
            &sources,
            &Normalizer::new(None),
            &options,
            &Resume::default(),
            IngestStats::default(),
            &mut |info, events, _| {
                pieces.push((info, events.len()));
                true
            },
        );
        assert!(
            pieces.iter().filter(|(i, _)| i.last).count() == 2,
            "one last piece per input"
        );
        let resume = Resume {
            done: [a.display().to_string()].into(),
            current: Some((b.display().to_string(), 2)),
        };
        let skipped: usize = pieces
            .iter()
            .filter(|(i, _)| i.file == a.display().to_string() || i.index < 2)
            .map(|(_, n)| n)
            .sum();
        let (ids, _) = read_resuming(&sources, options, &resume);
        let expected: Vec<String> = (skipped..3000).map(|i| i.to_string()).collect();
        assert_eq!(ids, expected);
    }

    fn gzip(parts: &[&[u8]]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        for part in parts {
            gz.write_all(part).expect("gzip");
        }
        gz.finish().expect("gzip")
    }

    /// Small limits, so that tests cross them with small inputs.
    fn capped(max_document_bytes: usize) -> ReadOptions {
        ReadOptions {
            piece_bytes: 256,
            group_bytes: 1024,
            max_document_bytes,
            ..ReadOptions::default()
        }
    }

    fn positions(stats: &IngestStats) -> Vec<(String, &'static str)> {
        stats
            .rejections
            .iter()
            .map(|r| (r.position.clone(), r.reason.kind()))
            .collect()
    }

    /// A record whose line is exactly `len` bytes long (without its line end).
    fn record_of(len: usize, id: &str) -> Vec<u8> {
        let head =
            format!("{{\"eventTime\":\"2026-04-22T09:00:00Z\",\"eventID\":\"{id}\",\"pad\":\"");
        let pad = len - head.len() - 2;
        format!("{head}{}\"}}", "x".repeat(pad)).into_bytes()
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_and_the_lines_around_it_read() {
        let mut text = ndjson(0, 10);
        // At the limit: read. One byte over: skipped, wherever it falls in
        // the reader's blocks, and line numbers after it stay right.
        text.extend(record_of(2000, "at-limit"));
        text.push(b'\n');
        text.extend(record_of(2001, "over"));
        text.push(b'\n');
        text.extend(ndjson(10, 20));
        text.extend_from_slice(b"{\"eventTime\": oops}\n");
        text.extend(vec![b' '; 50_000]);
        text.push(b'\n');
        text.extend(ndjson(20, 30));
        let (ids, stats) = read(&[("a.ndjson", text)], capped(2000));
        let mut expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        expected.push("at-limit".into());
        expected.extend((10..30).map(|i| i.to_string()));
        assert_eq!(ids, expected);
        assert_eq!(
            positions(&stats),
            [
                ("line 12".to_owned(), "line-too-long"),
                ("line 23".to_owned(), "invalid-json"),
                ("line 24".to_owned(), "line-too-long"),
            ]
        );
        assert!(
            stats.rejections[0]
                .to_string()
                .contains("longer than the limit of 2000 bytes, so it is skipped (raise [input] max_document_mib)"),
            "{}",
            stats.rejections[0]
        );
    }

    #[test]
    fn a_bomb_line_is_streamed_past_without_being_kept() {
        // A valid first line, then 64 MiB of zeros with no line end, in a
        // second gzip member, then good lines in a third: the long line is
        // skipped block by block (the limit is far below its size).
        let zeros = vec![b'0'; 1 << 20];
        let mut bomb = GzEncoder::new(Vec::new(), Compression::fast());
        for _ in 0..64 {
            bomb.write_all(&zeros).expect("gzip");
        }
        bomb.write_all(b"\n").expect("gzip");
        let mut input = gzip(&[&ndjson(0, 1)]);
        input.extend(bomb.finish().expect("gzip"));
        input.extend(gzip(&[&ndjson(1, 3)]));
        let mut pieces = 0;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bomb.json.gz");
        std::fs::write(&path, input).expect("write");
        let mut ids = Vec::new();
        let stats = read_sources(
            &[Source::File(path)],
            &Normalizer::new(None),
            &capped(1 << 20),
            &Resume::default(),
            IngestStats::default(),
            &mut |_, events, _| {
                pieces += 1;
                ids.extend(events.into_iter().filter_map(|e| e.event_id));
                true
            },
        );
        assert_eq!(ids, ["0", "1", "2"]);
        assert_eq!(positions(&stats), [("line 2".to_owned(), "line-too-long")]);
        assert!(pieces >= 2);
    }

    #[test]
    fn a_document_over_the_limit_is_rejected_and_the_next_input_read() {
        let records = |n: usize| {
            let body: Vec<String> = (0..n)
                .map(|i| format!("{{\"eventTime\":\"2026-04-22T09:00:00Z\",\"eventID\":\"d{i}\"}}"))
                .collect();
            format!("{{\"Records\": [\n{}\n]}}\n", body.join(",\n")).into_bytes()
        };
        let at_limit = records(40);
        let limit = at_limit.len();
        let over = records(41);
        // An array of whitespace lines: each short, together too large.
        let array_bomb = [b"[\n".as_slice(), &b" \n".repeat(10 * limit)].concat();
        // On one line, it is a line too long (and the file's only one).
        let one_line = [b"[".as_slice(), &vec![b' '; 10 * limit]].concat();
        let (ids, stats) = read(
            &[
                ("a.json", at_limit),
                ("b.json.gz", gzip(&[&over])),
                ("c.json", array_bomb),
                ("d.json", one_line),
                ("e.ndjson", ndjson(0, 2)),
            ],
            capped(limit),
        );
        let mut expected: Vec<String> = (0..40).map(|i| format!("d{i}")).collect();
        expected.extend(["0".into(), "1".into()]);
        assert_eq!(ids, expected);
        assert_eq!(
            positions(&stats),
            [
                ("whole input".to_owned(), "document-too-large"),
                ("whole input".to_owned(), "document-too-large"),
                ("line 1".to_owned(), "line-too-long"),
            ]
        );
        assert!(stats.rejections[0].file.ends_with("b.json.gz"));
        assert!(stats.rejections[1].file.ends_with("c.json"));
        assert!(
            stats.rejections[0]
                .to_string()
                .contains("larger than the limit of"),
            "{}",
            stats.rejections[0]
        );
        assert_eq!(stats.files, 5);
    }

    #[test]
    fn a_first_line_over_the_limit_is_skipped_as_a_line() {
        let mut text = vec![b' '; 5000];
        text.push(b'\n');
        text.extend(ndjson(0, 3));
        let (ids, stats) = read(&[("a.ndjson", text)], capped(1000));
        assert_eq!(ids, ["0", "1", "2"]);
        assert_eq!(positions(&stats), [("line 1".to_owned(), "line-too-long")]);
    }

    #[test]
    fn an_input_over_its_limit_keeps_what_came_before() {
        let text = ndjson(0, 1000);
        let options = ReadOptions {
            max_input_bytes: 10_000,
            ..capped(1 << 20)
        };
        let (ids, stats) = read(
            &[("a.gz", gzip(&[&text])), ("b.ndjson", ndjson(5, 6))],
            options,
        );
        // The lines that end within the limit are read; the one it cuts is
        // rejected as cut off.
        let whole_lines = memchr::memchr_iter(b'\n', &text[..10_000]).count();
        let expected: Vec<String> = (0..whole_lines)
            .chain(5..6)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ids, expected);
        assert_eq!(stats.rejected.get("input-too-large"), Some(&1));
        assert_eq!(stats.rejected.get("invalid-json"), Some(&1));
        assert_eq!(
            stats.rejections.last().map(|r| r.position.as_str()),
            Some("byte 10000 of the input (after decompression)")
        );
    }

    #[test]
    fn a_large_piece_comes_in_chunks_in_order() {
        let body: Vec<String> = (0..CHUNK_EVENTS * 2 + 5)
            .map(|i| format!("{{\"eventTime\":\"2026-04-22T09:00:00Z\",\"eventID\":\"{i}\"}}"))
            .collect();
        let document = format!("[{}]", body.join(",\n")).into_bytes();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.json");
        std::fs::write(&path, document).expect("write");
        let mut calls = Vec::new();
        let mut ids = Vec::new();
        let stats = read_sources(
            &[Source::File(path)],
            &Normalizer::new(None),
            &ReadOptions {
                group_bytes: 4096,
                ..ReadOptions::default()
            },
            &Resume::default(),
            IngestStats::default(),
            &mut |info, events, _| {
                calls.push((info.partial, events.len()));
                ids.extend(events.into_iter().filter_map(|e| e.event_id));
                true
            },
        );
        assert_eq!(
            calls,
            [(true, CHUNK_EVENTS), (true, CHUNK_EVENTS), (false, 5)]
        );
        assert!(ids.iter().enumerate().all(|(i, id)| *id == i.to_string()));
        assert_eq!(stats.accepted, (CHUNK_EVENTS * 2 + 5) as u64);
    }
}
