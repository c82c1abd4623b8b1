//! Reading many inputs on all cores, in input order, in bounded memory.
//!
//! One thread reads the inputs in order and cuts them into *pieces*: a
//! whole document (an S3 delivery object, a JSON array, a pretty-printed
//! file), or a run of whole lines of NDJSON of about `piece_bytes`. Pieces
//! are decoded in groups, in parallel (rayon), and handed to the caller in
//! input order, so the same input always gives the same events in the same
//! order. At most a group being decoded and one decoded group waiting are
//! in memory, whatever the size of the input; a document must fit in memory
//! whole.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::sync_channel;

use flate2::read::MultiGzDecoder;
use rayon::prelude::*;

use crate::decode::{decode_piece, reject_input};
use crate::{IngestStats, NormalizedEvent, Normalizer, RejectReason, Source};

/// How inputs are cut and grouped.
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
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            piece_bytes: 1 << 20,
            group_bytes: 8 << 20,
            keep_fragments: false,
            threads: None,
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
    /// What went wrong reading the input after this piece's text.
    read_error: Option<(String, RejectReason)>,
}

/// What decoding one piece gave.
struct Decoded {
    info: PieceInfo,
    events: Vec<NormalizedEvent>,
    stats: IngestStats,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn open(source: &Source) -> std::io::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = match source {
        Source::File(path) => Box::new(std::fs::File::open(path)?),
        Source::Stdin => Box::new(std::io::stdin()),
    };
    let mut buffered = BufReader::with_capacity(256 << 10, raw);
    let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            256 << 10,
            MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    })
}

/// Reads at least `want` bytes (or up to the input's end) into `into`,
/// ending just after a line end: whole blocks from the reader's buffer, so
/// lines are not looked for one by one. Returns the error that stopped
/// reading, if any.
fn read_lines(input: &mut dyn BufRead, want: usize, into: &mut Vec<u8>) -> Option<std::io::Error> {
    while into.len() < want || !into.ends_with(b"\n") {
        let block = match input.fill_buf() {
            Ok([]) => return None,
            Ok(block) => block,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Some(e),
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
        into.extend_from_slice(&block[..take]);
        input.consume(take);
    }
    None
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
    let mut input = match open(source) {
        Ok(input) => input,
        Err(e) => {
            send(Piece {
                file,
                text: Vec::new(),
                first_line: 1,
                index: 0,
                last: true,
                first: true,
                read_error: Some((
                    "whole input".into(),
                    RejectReason::Unreadable(e.to_string()),
                )),
            });
            return;
        }
    };
    let mut text = Vec::new();
    let mut error = read_lines(&mut *input, options.piece_bytes, &mut text);
    let ndjson = first_line_is_a_value(&text) && !text.trim_ascii_start().starts_with(b"[");
    if !ndjson && error.is_none() {
        // A document: it is decoded whole.
        if let Err(e) = input.read_to_end(&mut text) {
            error = Some(e);
        }
    }
    let mut first_line = 1;
    let mut first = true;
    let mut index = 0;
    loop {
        let read_error = error.take().map(|e| {
            (
                format!("byte {} of the input (after decompression)", text.len()),
                RejectReason::InvalidJson(format!("the input is cut off or corrupt ({e})")),
            )
        });
        let lines = memchr::memchr_iter(b'\n', &text).count();
        let current = std::mem::take(&mut text);
        // Read ahead, so a piece knows whether it is the input's last.
        let done = read_error.is_some() || !ndjson || current.is_empty();
        if !done {
            error = read_lines(&mut *input, options.piece_bytes, &mut text);
        }
        let last = done || (text.is_empty() && error.is_none());
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
        first_line += lines;
        index += 1;
    }
}

fn decode(piece: &Piece, normalizer: &Normalizer<'_>, keep_fragments: bool) -> Decoded {
    let mut stats = IngestStats {
        keep_fragments,
        ..IngestStats::default()
    };
    if piece.first {
        stats.files += 1;
    }
    let mut events = Vec::new();
    decode_piece(
        &piece.file,
        &piece.text,
        piece.first_line,
        normalizer,
        &mut stats,
        &mut |e| events.push(e),
    );
    if let Some((position, reason)) = &piece.read_error {
        reject_input(&mut stats, &piece.file, position.clone(), reason.clone());
    }
    Decoded {
        info: PieceInfo {
            file: piece.file.clone(),
            index: piece.index,
            last: piece.last,
        },
        events,
        stats,
    }
}

/// Reads every source: cuts, decodes on all cores, and calls `consume` with
/// each piece's events in input order, together with the statistics so far
/// (whose `dead_letters` the caller may drain). `consume` returns `false`
/// to stop reading. Inputs and pieces that `resume` says are done are
/// skipped; `stats` is added to. Returns the statistics.
pub fn read_sources(
    sources: &[Source],
    normalizer: &Normalizer<'_>,
    options: &ReadOptions,
    resume: &Resume,
    mut stats: IngestStats,
    consume: &mut dyn FnMut(PieceInfo, Vec<NormalizedEvent>, &mut IngestStats) -> bool,
) -> IngestStats {
    stats.keep_fragments = options.keep_fragments;
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
                let work = || -> Vec<Decoded> {
                    group
                        .par_iter()
                        .map(|p| decode(p, normalizer, options.keep_fragments))
                        .collect()
                };
                let decoded = match &pool {
                    Some(pool) => pool.install(work),
                    None => work(),
                };
                group.clear();
                send.send(decoded).is_ok()
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
            if !group.is_empty() {
                flush(&mut group);
            }
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
            threads: None,
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
}
