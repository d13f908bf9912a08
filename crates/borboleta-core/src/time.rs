//! Dates, UTC instants and the event-time write-timestamp rule.

use chrono::{NaiveDate, NaiveTime};

/// Microseconds since the Unix epoch of `date` at 00:00 UTC.
pub fn date_start_micros(date: NaiveDate) -> i64 {
    date.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
}

/// Parses a run date `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date; expected YYYY-MM-DD, e.g. 2024-01-31"))
}

/// The write timestamp of an online row, in microseconds: the event time in milliseconds × 1000
/// plus a deterministic hash of the row modulo 1000.
///
/// Last-write-wins on this value is latest-event-wins; two different rows with the same event
/// millisecond are ordered by their hash, the same way everywhere (in-batch reduction, the
/// embedded store, Cassandra's `USING TIMESTAMP`).
pub fn write_timestamp(event_micros: i64, row_hash: u64) -> i64 {
    event_micros.div_euclid(1000) * 1000 + (row_hash % 1000) as i64
}

/// FNV-1a 64-bit hash: stable across versions and platforms (used for the tie-break).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_timestamp_orders_by_event_time_then_hash() {
        let a = write_timestamp(1_000_123, 5);
        let b = write_timestamp(1_000_999, 3);
        assert_eq!(a, 1_000_005);
        assert!(b < a, "same millisecond: the hash decides");
        assert!(write_timestamp(1_001_000, 0) > a);
        assert_eq!(write_timestamp(-1, 0), -1000);
    }

    #[test]
    fn dates_are_utc() {
        let d = parse_date("2016-04-11").unwrap();
        assert_eq!(date_start_micros(d), 1_460_332_800_000_000);
        assert!(parse_date("2016-13-01").is_err());
    }
}
