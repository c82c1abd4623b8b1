//! Recovery for broken documents: finds the record objects of a JSON array
//! by bracket matching alone, so one bad record (or a missing comma between
//! two) costs only itself.

use std::ops::Range;

/// What a tolerant scan of an array of records found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Byte ranges of balanced `{...}` values at the array's top level.
    pub records: Vec<Range<usize>>,
    /// Byte ranges of anything else that is not whitespace or a comma, and
    /// of a record cut off by the end of the input.
    pub garbage: Vec<Range<usize>>,
    /// Where scanning stopped: after the array's closing `]` (and, for a
    /// delivery object, its closing `}`), or the end of the input.
    pub end: usize,
}

/// The offset just after the `[` that opens the records of the document
/// starting at `start`: the document itself if it is an array, or its
/// `"Records"` array. `None` if neither is found near the start.
pub(crate) fn records_array(text: &[u8], start: usize) -> Option<usize> {
    let rest = text.get(start..)?;
    let first = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    match rest[first] {
        b'[' => Some(start + first + 1),
        b'{' => {
            // `"Records"` must be the document's first key (as CloudTrail
            // writes it), followed by `:` and `[`.
            let after_brace = &rest[first + 1..];
            let key_at = after_brace.iter().position(|b| !b.is_ascii_whitespace())?;
            let key = b"\"Records\"";
            if !after_brace[key_at..].starts_with(key) {
                return None;
            }
            let mut i = start + first + 1 + key_at + key.len();
            while text
                .get(i)
                .is_some_and(|b| b.is_ascii_whitespace() || *b == b':')
            {
                i += 1;
            }
            (text.get(i) == Some(&b'[')).then_some(i + 1)
        }
        _ => None,
    }
}

/// Scans the array body starting at `from` (just after its `[`).
pub(crate) fn scan_array(text: &[u8], from: usize) -> Scan {
    let mut scan = Scan::default();
    let mut i = from;
    let mut garbage_start: Option<usize> = None;
    let flush = |scan: &mut Scan, g: &mut Option<usize>, at: usize| {
        if let Some(s) = g.take() {
            scan.garbage.push(s..at);
        }
    };
    while i < text.len() {
        if scan.records.len() + scan.garbage.len() >= crate::decode::MAX_RECORDS {
            // A document of millions of tiny pieces: the rest goes as one,
            // so memory follows the text, not the count of its pieces.
            flush(&mut scan, &mut garbage_start, i);
            scan.garbage.push(i..text.len());
            scan.end = text.len();
            return scan;
        }
        match text[i] {
            b'{' => {
                flush(&mut scan, &mut garbage_start, i);
                match balanced_end(text, i) {
                    Some(end) => {
                        scan.records.push(i..end);
                        i = end;
                    }
                    None => {
                        scan.garbage.push(i..text.len());
                        scan.end = text.len();
                        return scan;
                    }
                }
            }
            b']' => {
                flush(&mut scan, &mut garbage_start, i);
                i += 1;
                // A delivery object closes after its array.
                let mut j = i;
                while text.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
                    j += 1;
                }
                scan.end = if text.get(j) == Some(&b'}') { j + 1 } else { i };
                return scan;
            }
            b if b.is_ascii_whitespace() || b == b',' => {
                flush(&mut scan, &mut garbage_start, i);
                i += 1;
            }
            _ => {
                garbage_start.get_or_insert(i);
                i += 1;
            }
        }
    }
    flush(&mut scan, &mut garbage_start, i);
    scan.end = text.len();
    scan
}

/// The offset just after the `}` that closes the object opening at `start`,
/// minding strings and escapes; `None` if the input ends first.
fn balanced_end(text: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in text.iter().enumerate().skip(start) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces<'a>(text: &'a str, ranges: &[Range<usize>]) -> Vec<&'a str> {
        ranges.iter().map(|r| &text[r.clone()]).collect()
    }

    #[test]
    fn finds_records_despite_a_missing_comma_and_junk() {
        let text = r#"{"Records": [ {"a": "}{"}, {"b": [1, {"c": 2}]} {"d": "\"}"} oops, {"e": 1} ] }tail"#;
        let start = records_array(text.as_bytes(), 0).expect("array");
        let scan = scan_array(text.as_bytes(), start);
        assert_eq!(
            pieces(text, &scan.records),
            [
                r#"{"a": "}{"}"#,
                r#"{"b": [1, {"c": 2}]}"#,
                r#"{"d": "\"}"}"#,
                r#"{"e": 1}"#
            ]
        );
        assert_eq!(pieces(text, &scan.garbage), ["oops"]);
        assert_eq!(&text[scan.end..], "tail");
    }

    #[test]
    fn a_cut_off_record_is_garbage() {
        let text = r#"[{"a":1},{"b":"#;
        let scan = scan_array(
            text.as_bytes(),
            records_array(text.as_bytes(), 0).expect("array"),
        );
        assert_eq!(pieces(text, &scan.records), [r#"{"a":1}"#]);
        assert_eq!(pieces(text, &scan.garbage), [r#"{"b":"#]);
        assert_eq!(scan.end, text.len());
    }

    #[test]
    fn only_record_arrays_are_recognised() {
        assert_eq!(records_array(br#"  {"Records" : ["#, 0), Some(16));
        assert_eq!(records_array(br#"{"eventTime": 1}"#, 0), None);
        assert_eq!(records_array(b"hello", 0), None);
    }
}
