//! Sizes as people write them, with one meaning everywhere in layerlab: driver options
//! (`--opt dm.basesize=10GiB`), experiment files (`sizes = ["4KiB"]`), device profiles and
//! command-line arguments (`truncate`, `--max-size`).
//!
//! - a plain number, or a number followed by `B`, is bytes: `4096`, `4096B`;
//! - `KiB`, `MiB`, `GiB`, `TiB` are powers of two (2^10 .. 2^40): `10GiB` = 10 x 2^30;
//! - `kB`/`KB`, `MB`, `GB`, `TB` are powers of ten (10^3 .. 10^12): `10GB` = 10^10;
//! - a bare `K`, `M`, `G`, `T` is refused as ambiguous (Docker's own helpers read it as
//!   binary in one place and decimal in another): the error says which two to choose from;
//! - a space may separate number and unit (`256 MiB`), `_` may group digits (`1_000`), and a
//!   fraction is allowed when it names whole bytes (`1.5KiB` = 1536, `0.5B` is refused);
//! - anything past `u64::MAX` bytes is refused as too large.
//!
//! [`format()`] writes a size back so that [`parse`] reads the same number (`64KiB`,
//! `1536B`); [`human`] rounds to one decimal for display (`1.5GiB`).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// Why a size was refused; Display is one line quoting the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number with an optional unit.
    #[error(
        "invalid size '{raw}': expected a number with an optional unit (B; KiB, MiB, GiB, TiB \
         are powers of two; KB, MB, GB, TB powers of ten), e.g. 4KiB"
    )]
    Syntax {
        /// The text as given.
        raw: String,
    },
    /// A unit this parser does not know.
    #[error(
        "invalid size '{raw}': unknown unit '{unit}' (B; KiB, MiB, GiB, TiB are powers of \
         two; KB, MB, GB, TB powers of ten)"
    )]
    Unit {
        /// The text as given.
        raw: String,
        /// The unit.
        unit: String,
    },
    /// `K`, `M`, `G` or `T` alone.
    #[error(
        "invalid size '{raw}': unit '{unit}' is ambiguous: write {unit}iB (powers of two) or \
         {unit}B (powers of ten)"
    )]
    Ambiguous {
        /// The text as given.
        raw: String,
        /// The bare unit letter.
        unit: String,
    },
    /// A fraction of a byte.
    #[error("invalid size '{raw}': not a whole number of bytes")]
    Fraction {
        /// The text as given.
        raw: String,
    },
    /// More than `u64::MAX` bytes.
    #[error("invalid size '{raw}': too large (at most {} bytes)", u64::MAX)]
    TooLarge {
        /// The text as given.
        raw: String,
    },
}

const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("kB", 1_000),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// Digits of a fraction kept exactly (more would overflow the exact arithmetic).
const MAX_FRACTION_DIGITS: usize = 18;

/// Parses a size (see the module doc): `4096`, `4KiB`, `256 MiB`, `1.5GiB`, `10GB`.
pub fn parse(raw: &str) -> Result<u64, SizeError> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num = num.replace('_', "");
    let unit = unit.trim();
    let syntax = || SizeError::Syntax {
        raw: raw.to_string(),
    };
    if num.is_empty() {
        return Err(syntax());
    }
    let mult = if unit.is_empty() {
        1
    } else if let Some((_, m)) = UNITS.iter().find(|(u, _)| *u == unit) {
        *m
    } else if matches!(unit, "K" | "k" | "M" | "G" | "T") {
        return Err(SizeError::Ambiguous {
            raw: raw.to_string(),
            unit: unit.to_ascii_uppercase(),
        });
    } else {
        return Err(SizeError::Unit {
            raw: raw.to_string(),
            unit: unit.to_string(),
        });
    };
    let (int, frac) = num.split_once('.').unwrap_or((&num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(syntax());
    }
    let frac = frac.trim_end_matches('0');
    let too_large = || SizeError::TooLarge {
        raw: raw.to_string(),
    };
    let whole: u128 = if int.is_empty() {
        0
    } else {
        // only digits are left, so a failure is an overflow
        int.parse::<u128>().map_err(|_| too_large())?
    };
    let mut bytes = whole.checked_mul(u128::from(mult)).ok_or_else(too_large)?;
    if !frac.is_empty() {
        if frac.len() > MAX_FRACTION_DIGITS {
            return Err(SizeError::Fraction {
                raw: raw.to_string(),
            });
        }
        let digits: u128 = frac.parse().map_err(|_| syntax())?;
        let scale = 10u128.pow(u32::try_from(frac.len()).unwrap_or(u32::MAX));
        let part = digits * u128::from(mult);
        if !part.is_multiple_of(scale) {
            return Err(SizeError::Fraction {
                raw: raw.to_string(),
            });
        }
        bytes = bytes.checked_add(part / scale).ok_or_else(too_large)?;
    }
    u64::try_from(bytes).map_err(|_| too_large())
}

const BINARY: [(u64, &str); 4] = [
    (1 << 40, "TiB"),
    (1 << 30, "GiB"),
    (1 << 20, "MiB"),
    (1 << 10, "KiB"),
];

/// Writes a size so that [`parse`] gives it back: the largest binary unit that divides it
/// (`64KiB`, `10GiB`), else bytes (`1536B`).
pub fn format(bytes: u64) -> String {
    for (m, unit) in BINARY {
        if bytes >= m && bytes.is_multiple_of(m) {
            return format!("{}{unit}", bytes / m);
        }
    }
    format!("{bytes}B")
}

/// A size for people to read: exact when a binary unit divides it (`64KiB`), else rounded
/// to one decimal of the largest binary unit it reaches (`1.5GiB`), else bytes.
pub fn human(bytes: u64) -> String {
    let exact = format(bytes);
    if !exact.ends_with("iB") {
        for (m, unit) in BINARY {
            if bytes >= m {
                return format!("{:.1}{unit}", bytes as f64 / m as f64);
            }
        }
    }
    exact
}

/// A number of bytes read from text (or, in TOML and JSON, an integer) by [`parse`], and
/// written by [`format()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

impl Size {
    /// Parses a size (see the module doc).
    pub fn parse(raw: &str) -> Result<Size, SizeError> {
        parse(raw).map(Size)
    }

    /// The bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl std::str::FromStr for Size {
    type Err = SizeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Size::parse(s)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(self.0))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"4KiB\" or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("invalid size {v}: negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Size::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_units_mean_what_they_say() {
        assert_eq!(parse("10GB"), Ok(10_000_000_000));
        assert_eq!(parse("10GiB"), Ok(10 << 30));
        assert_eq!(parse("4KiB"), Ok(4096));
        assert_eq!(parse("4KB"), Ok(4000));
        assert_eq!(parse("4kB"), Ok(4000));
        assert_eq!(parse("256 MiB"), Ok(256 << 20));
        assert_eq!(parse("10MB"), Ok(10_000_000));
        assert_eq!(parse("2TiB"), Ok(2 << 40));
        assert_eq!(parse("2TB"), Ok(2_000_000_000_000));
        assert_eq!(parse("512"), Ok(512));
        assert_eq!(parse("512B"), Ok(512));
        assert_eq!(parse("1_000"), Ok(1000));
        assert_eq!(parse(" 0 "), Ok(0));
    }

    #[test]
    fn fractions_must_name_whole_bytes() {
        assert_eq!(parse("1.5KiB"), Ok(1536));
        assert_eq!(parse("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse(".5KiB"), Ok(512));
        assert_eq!(parse("2.0"), Ok(2));
        assert!(matches!(parse("0.5B"), Err(SizeError::Fraction { .. })));
        assert!(matches!(
            parse("1.0001KiB"),
            Err(SizeError::Fraction { .. })
        ));
    }

    #[test]
    fn bad_sizes_say_why() {
        assert!(matches!(parse(""), Err(SizeError::Syntax { .. })));
        assert!(matches!(parse("KiB"), Err(SizeError::Syntax { .. })));
        assert!(matches!(parse("1.2.3"), Err(SizeError::Syntax { .. })));
        assert!(matches!(parse("-1"), Err(SizeError::Syntax { .. })));
        assert!(matches!(parse("4XB"), Err(SizeError::Unit { .. })));
        assert!(matches!(parse("12Q"), Err(SizeError::Unit { .. })));
        assert!(matches!(parse("10G"), Err(SizeError::Ambiguous { .. })));
        assert!(matches!(parse("8k"), Err(SizeError::Ambiguous { .. })));
        let e = parse("10G")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("GiB") && e.contains("GB"), "{e}");
        for huge in [
            "16777216TiB",
            "18446744073709551616",
            "99999999999999999999999999999999999999999",
        ] {
            let e = parse(huge).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("too large"), "{huge}: {e}");
        }
        assert_eq!(parse("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn format_round_trips_and_human_rounds() {
        for n in [0, 1, 1536, 4096, 10 << 30, 10_000_000_000, u64::MAX] {
            assert_eq!(parse(&format(n)), Ok(n), "{}", format(n));
        }
        assert_eq!(format(65536), "64KiB");
        assert_eq!(format(10 << 30), "10GiB");
        assert_eq!(format(1536), "1536B");
        assert_eq!(format(1), "1B");
        assert_eq!(human(1536), "1.5KiB");
        assert_eq!(human(64 << 10), "64KiB");
        assert_eq!(human(1000), "1000B");
    }

    #[test]
    fn size_reads_integers_and_text() {
        let v: Vec<Size> = serde_json::from_str(r#"[4096, "4KiB", "10GB"]"#)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(v, [Size(4096), Size(4096), Size(10_000_000_000)]);
        assert!(serde_json::from_str::<Size>(r#""10G""#).is_err());
        assert!(serde_json::from_str::<Size>("-1").is_err());
        assert_eq!(
            serde_json::to_string(&Size(1 << 20)).ok().as_deref(),
            Some(r#""1MiB""#)
        );
    }
}
