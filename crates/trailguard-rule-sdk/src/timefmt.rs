//! Timestamp formatting that works inside a guest (no clock needed).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats milliseconds since the Unix epoch as RFC 3339 UTC
/// (`2026-04-22T10:00:00Z`, with `.123` when there are milliseconds).
///
/// Out-of-range values fall back to the decimal number of milliseconds, so a
/// corrupt timestamp stays visible instead of vanishing.
pub fn format_timestamp_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::format_timestamp_ms;

    #[test]
    fn formats_whole_seconds_and_millis() {
        assert_eq!(format_timestamp_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_timestamp_ms(1_776_852_000_123),
            "2026-04-22T10:00:00.123Z"
        );
    }

    #[test]
    fn out_of_range_is_visible() {
        assert_eq!(format_timestamp_ms(i64::MAX), i64::MAX.to_string());
    }
}
