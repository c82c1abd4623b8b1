//! Event-time helpers: units, bucketing, formatting. No clock: a rule's only
//! notion of time is the event time the host gives it.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The largest multiple of `step` that is `<= t` (`step > 0`).
pub fn floor_to(t: i64, step: i64) -> i64 {
    t.div_euclid(step).saturating_mul(step)
}

/// The smallest multiple of `step` that is `>= t` (`step > 0`), saturating.
pub fn ceil_to(t: i64, step: i64) -> i64 {
    let floor = floor_to(t, step);
    if floor == t {
        t
    } else {
        floor.saturating_add(step)
    }
}

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
    use super::*;

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

    #[test]
    fn rounding_to_steps() {
        assert_eq!(floor_to(7_199_999, HOUR_MS), HOUR_MS);
        assert_eq!(floor_to(-1, HOUR_MS), -HOUR_MS);
        assert_eq!(ceil_to(HOUR_MS, HOUR_MS), HOUR_MS);
        assert_eq!(ceil_to(HOUR_MS + 1, HOUR_MS), 2 * HOUR_MS);
        assert_eq!(ceil_to(i64::MAX, HOUR_MS), i64::MAX);
    }
}
