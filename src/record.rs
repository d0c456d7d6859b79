//! One visit record: the time in Moscow, formatted like the seed's Python app
//! (`2023-11-18 17:54:26.913511+03:00`), one per line.
//!
//! A *record* is one visit's bytes; a *line* is any newline-ended text in the log: a record,
//! or the fragment a crash or a full volume left, which readers skip. Every record is exactly
//! [`RECORD_LEN`] bytes including its newline. Python's
//! `str(datetime)` drops `.000000` when the microseconds are zero; we always print them, so
//! the width is fixed and a replica's visit count is its file size divided by the width.

use chrono::{DateTime, FixedOffset, Utc};

/// Moscow has kept UTC+03:00 all year since 2014: a fixed offset is exact and needs no
/// time-zone database in the component.
const MOSCOW_UTC_OFFSET_SECONDS: i32 = 3 * 3600;

/// Bytes of one record without its newline.
pub const TIMESTAMP_LEN: usize = 32;
/// Bytes of one record on disk, newline included.
pub const RECORD_LEN: usize = TIMESTAMP_LEN + 1;

/// The current time in Moscow.
pub fn moscow_now() -> DateTime<FixedOffset> {
    to_moscow(Utc::now())
}

pub fn to_moscow(instant: DateTime<Utc>) -> DateTime<FixedOffset> {
    let moscow = FixedOffset::east_opt(MOSCOW_UTC_OFFSET_SECONDS).expect("offset within a day");
    instant.with_timezone(&moscow)
}

/// The record appended for a visit at `time`, newline included.
pub fn record_at(time: &DateTime<FixedOffset>) -> [u8; RECORD_LEN] {
    let text = time.format("%Y-%m-%d %H:%M:%S%.6f%:z").to_string();
    let mut record = [b'\n'; RECORD_LEN];
    // The format has a fixed width for years 0..=9999, the only ones a clock can give us.
    record[..TIMESTAMP_LEN].copy_from_slice(&text.as_bytes()[..TIMESTAMP_LEN]);
    record
}

/// The record's text (no newline) for display.
pub fn timestamp_text(record: &[u8; RECORD_LEN]) -> &str {
    std::str::from_utf8(&record[..TIMESTAMP_LEN]).expect("records are ASCII")
}

/// Whether `text` (a line of the log without its newline) is a well-formed record. Readers
/// use it to skip the fragment a crash or a full disk may leave behind, so it must be cheap:
/// it checks the shape byte by byte rather than parsing a date.
pub fn is_timestamp(text: &[u8]) -> bool {
    const SHAPE: &[u8; TIMESTAMP_LEN] = b"dddd-dd-dd dd:dd:dd.dddddd+03:00";
    text.len() == TIMESTAMP_LEN
        && text
            .iter()
            .zip(SHAPE)
            .all(|(&byte, &expected)| match expected {
                b'd' => byte.is_ascii_digit(),
                _ => byte == expected,
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
            + chrono::Duration::microseconds(micros.into())
    }

    #[test]
    fn formats_like_the_seed_app() {
        let record = record_at(&to_moscow(utc(2023, 11, 18, 14, 54, 26, 913_511)));
        assert_eq!(&record, b"2023-11-18 17:54:26.913511+03:00\n");
    }

    #[test]
    fn moscow_is_three_hours_ahead_across_midnight_and_new_year() {
        let record = record_at(&to_moscow(utc(2023, 12, 31, 22, 0, 0, 1)));
        assert_eq!(&record, b"2024-01-01 01:00:00.000001+03:00\n");
    }

    #[test]
    fn zero_microseconds_keep_the_fixed_width() {
        let record = record_at(&to_moscow(utc(2024, 6, 1, 0, 0, 0, 0)));
        assert_eq!(timestamp_text(&record), "2024-06-01 03:00:00.000000+03:00");
    }

    #[test]
    fn now_is_a_well_formed_record() {
        let record = record_at(&moscow_now());
        assert!(is_timestamp(&record[..TIMESTAMP_LEN]));
        assert_eq!(record[TIMESTAMP_LEN], b'\n');
    }

    #[test]
    fn rejects_fragments_and_lookalikes() {
        assert!(is_timestamp(b"2023-11-18 17:54:26.913511+03:00"));
        for bad in [
            &b""[..],
            b"2023-11-18 17:54",
            b"2023-11-18 17:54:26.913511+03:00x",
            b"2023-11-18 17:54:26.913511+04:00",
            b"2023-11-18T17:54:26.913511+03:00",
            b"2023-11-18 17:54:2a.913511+03:00",
            b"2023-11-12023-11-18 17:54:26.913",
        ] {
            assert!(!is_timestamp(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
