//! Byte comparison for the guest's `memcmp` (see `guest.rs`), written so it
//! can be tested natively and never calls `memcmp` itself.

/// Compares two byte strings of equal length as `memcmp` does: negative,
/// zero or positive as `a` sorts before, equal to or after `b`. Eight bytes
/// at a time; only plain loads and integer compares, so the compiler cannot
/// turn it back into a call to `memcmp`.
pub(crate) fn compare(a: &[u8], b: &[u8]) -> i32 {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let (x, y) = (word(&a[i..i + 8]), word(&b[i..i + 8]));
        if x != y {
            // Little-endian words: the first differing byte is the lowest.
            let at = i + (x ^ y).trailing_zeros() as usize / 8;
            return i32::from(a[at]) - i32::from(b[at]);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return i32::from(a[i]) - i32::from(b[i]);
        }
        i += 1;
    }
    0
}

/// Eight bytes as a little-endian word.
fn word(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_like_slices_do() {
        let samples: [&[u8]; 9] = [
            b"",
            b"a",
            b"aws-cli/2.15.30 Python/3.11.8 Linux/5.10",
            b"aws-cli/2.15.30 Python/3.11.8 Linux/5.11",
            b"aws-cli/2.15.31 Python/3.11.8 Linux/5.10",
            b"\xff\x00\x01\x02\x03\x04\x05\x06\x07",
            b"\x00\xff\x01\x02\x03\x04\x05\x06\x07",
            b"Amazon.com, Inc.",
            b"Amazon.com, Inc!",
        ];
        for a in samples {
            for b in samples {
                let n = a.len().min(b.len());
                let (a, b) = (&a[..n], &b[..n]);
                assert_eq!(compare(a, b).signum(), a.cmp(b) as i32, "{a:?} {b:?}");
            }
        }
        // Every position of a difference, in a word and in the tail.
        let base: Vec<u8> = (0..27).collect();
        for at in 0..base.len() {
            let mut other = base.clone();
            other[at] = 200;
            assert!(compare(&base, &other) < 0, "difference at {at}");
            assert!(compare(&other, &base) > 0, "difference at {at}");
        }
        assert_eq!(compare(&base, &base), 0);
    }
}
