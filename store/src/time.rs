//! The times S3 writes and reads: ISO 8601 in XML (`2026-12-03T10:10:04.000Z`),
//! HTTP dates in headers, and `x-amz-date` (`20261203T101004Z`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-03T10:10:04.123Z`.
pub fn iso8601(ms: u64) -> String {
    // Digits and separators only: ASCII.
    String::from_utf8_lossy(&iso8601_bytes(ms)).into_owned()
}

/// [`iso8601`] as bytes (listings write thousands).
pub fn iso8601_bytes(ms: u64) -> [u8; 24] {
    let mut text = [0u8; 24];
    text[..11].copy_from_slice(&date_part(ms));
    text[11..].copy_from_slice(&time_part(ms));
    text
}

/// The days since the epoch that `ms` falls in.
fn day_of(ms: u64) -> i64 {
    ((ms / 1000) as i64).div_euclid(86_400)
}

/// `YYYY-MM-DDT` of the day `ms` falls in.
fn date_part(ms: u64) -> [u8; 11] {
    let (y, mo, d) = civil(day_of(ms));
    let mut text = [0u8; 11];
    put_fields(
        &mut text,
        [
            (y.clamp(0, 9999) as u32, 4, b'-'),
            (mo, 2, b'-'),
            (d, 2, b'T'),
        ],
    );
    text
}

/// `HH:MM:SS.mmmZ` of `ms` (written out digit by digit: a listing writes
/// one per object).
fn time_part(ms: u64) -> [u8; 13] {
    let rem = ((ms / 1000) as i64).rem_euclid(86_400) as u32;
    let milli = (ms % 1000) as u32;
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    let digit = |n: u32| b'0' + n as u8;
    [
        digit(h / 10),
        digit(h % 10),
        b':',
        digit(m / 10),
        digit(m % 10),
        b':',
        digit(s / 10),
        digit(s % 10),
        b'.',
        digit(milli / 100),
        digit(milli / 10 % 10),
        digit(milli % 10),
        b'Z',
    ]
}

/// Writes each number zero-padded to its width, then its separator.
fn put_fields<const N: usize>(text: &mut [u8], fields: [(u32, usize, u8); N]) {
    let mut at = 0;
    for (mut n, width, after) in fields {
        for p in (0..width).rev() {
            text[at + p] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        text[at + width] = after;
        at += width + 1;
    }
}

/// Writes [`iso8601`] times one after another, as a listing does: the date
/// is worked out once for each run of times on the same day.
pub struct Iso8601Run {
    day: i64,
    /// [`date_part`] of `day`.
    date: [u8; 11],
}

impl Default for Iso8601Run {
    fn default() -> Self {
        Iso8601Run {
            day: i64::MIN,
            date: [0; 11],
        }
    }
}

impl Iso8601Run {
    pub fn push(&mut self, ms: u64, out: &mut Vec<u8>) {
        let day = day_of(ms);
        if day != self.day {
            self.date = date_part(ms);
            self.day = day;
        }
        out.extend_from_slice(&self.date);
        out.extend_from_slice(&time_part(ms));
    }
}

/// `Thu, 03 Dec 2026 10:10:04 GMT`.
pub fn http_date(ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(ms / 1000))
}

/// Parses an HTTP date (for `If-Modified-Since` and the like) to seconds.
pub fn parse_http_date(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    let when = httpdate::parse_http_date(text.trim()).ok()?;
    when.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Parses `20261203T101004Z` to seconds since the epoch.
pub fn parse_amz_date(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, m, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + s);
    u64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_writes_what_each_time_alone_gives() {
        let mut run = Iso8601Run::default();
        let mut out = Vec::new();
        let mut want = Vec::new();
        let mut ms: u64 = 1_764_763_199_000;
        for step in [1, 999, 1000, 59_001, 3_600_000, 86_399_999, 7, 86_400_000] {
            for _ in 0..40 {
                ms = ms.wrapping_add(step);
                run.push(ms, &mut out);
                want.extend_from_slice(&iso8601_bytes(ms));
            }
        }
        for far in [0, u64::MAX, 253_402_300_799_999, 253_402_300_800_000] {
            run.push(far, &mut out);
            want.extend_from_slice(&iso8601_bytes(far));
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    #[test]
    fn formats() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_796_292_604_123), "2026-12-03T10:10:04.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            http_date(1_796_292_604_999),
            "Thu, 03 Dec 2026 10:10:04 GMT"
        );
        assert_eq!(
            parse_http_date(b"Thu, 03 Dec 2026 10:10:04 GMT"),
            Some(1_796_292_604)
        );
        assert_eq!(parse_amz_date("20261203T101004Z"), Some(1_796_292_604));
        assert_eq!(parse_amz_date("20000229T000000Z"), Some(951_782_400));
        for bad in [
            "2026-12-03",
            "20261303T101004Z",
            "20261203T251004Z",
            "2026120xT101004Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }
}
