//! Times as seconds since the epoch with a fraction, one home for reading, writing and
//! taking them: PAX `mtime` records, `touch --mtime`, `stat` (`1700000000.123456789`,
//! `-1.5`), and the clock the drivers stamp changes with.

/// The current time: seconds since the epoch and nanoseconds (0 before 1970, which a
/// clock set that far back deserves).
pub fn now() -> (i64, u32) {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or((0, 0), |d| {
            (
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            )
        })
}

/// Writes a time as `secs[.fraction]`, nanoseconds at most, a negative time counting back
/// from zero (the inverse of [`parse`]).
pub fn format(secs: i64, nsec: u32) -> String {
    if nsec == 0 {
        return secs.to_string();
    }
    if secs < 0 {
        // secs + nsec/1e9 is negative: -(|secs + 1|).(1e9 - nsec)
        let whole = -(secs + 1);
        return format!("-{whole}.{:09}", 1_000_000_000 - nsec);
    }
    format!("{secs}.{nsec:09}")
}

/// Reads `secs[.fraction]`, optionally negative, to seconds and nanoseconds (digits past
/// the ninth are cut); `None` when it is not such a time.
pub fn parse(text: &str) -> Option<(i64, u32)> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let negative = secs.starts_with('-');
    let secs: i64 = secs.parse().ok()?;
    if frac.is_empty() {
        return (!text.ends_with('.')).then_some((secs, 0));
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nsec: u32 = digits.parse().ok()?;
    // a negative time with a fraction counts back from the next lower second ("-0.5" too)
    if negative && nsec > 0 {
        return Some((secs.checked_sub(1)?, 1_000_000_000 - nsec));
    }
    Some((secs, nsec))
}

#[cfg(test)]
mod tests {
    use super::{format, parse};

    #[test]
    fn times_read_and_write_back() {
        for (text, t) in [
            ("1700000000", (1_700_000_000, 0)),
            ("1700000000.5", (1_700_000_000, 500_000_000)),
            ("1700000000.123456789", (1_700_000_000, 123_456_789)),
            ("-1.25", (-2, 750_000_000)),
            ("-0.5", (-1, 500_000_000)),
        ] {
            assert_eq!(parse(text), Some(t), "{text}");
            assert_eq!(parse(&format(t.0, t.1)), Some(t), "{text}");
        }
        assert_eq!(format(1, 5), "1.000000005");
        for bad in ["1.x", "x", "", "1.", "1.-5"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
