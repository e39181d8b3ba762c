//! Sizes as people write them: `4KiB`, `256MiB`, `1.5GiB`, `512` (bytes), `10MB` (decimal).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A number of bytes, read from TOML as an integer or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("K", 1 << 10),
    ("M", 1 << 20),
    ("G", 1 << 30),
    ("kB", 1000),
    ("KB", 1000),
    ("MB", 1000 * 1000),
    ("GB", 1000 * 1000 * 1000),
    ("TB", 1000 * 1000 * 1000 * 1000),
];

impl Size {
    /// Parses `4KiB`, `256 MiB`, `1.5GiB`, `512`, `512B`, `10MB`.
    pub fn parse(raw: &str) -> Result<Size, String> {
        let s = raw.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let num = num.replace('_', "");
        let unit = unit.trim();
        let bad = || {
            format!(
                "invalid size '{raw}': expected a number with an optional unit \
                 (B, KiB, MiB, GiB, TiB, kB, MB, GB), e.g. \"4KiB\""
            )
        };
        if num.is_empty() {
            return Err(bad());
        }
        let mult = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, m)| *m)
                .ok_or_else(bad)?
        };
        if let Ok(n) = num.parse::<u64>() {
            return n.checked_mul(mult).map(Size).ok_or_else(bad);
        }
        let f: f64 = num.parse().map_err(|_| bad())?;
        let v = f * mult as f64;
        if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 || v.fract() != 0.0 {
            return Err(format!("invalid size '{raw}': not a whole number of bytes"));
        }
        Ok(Size(v as u64))
    }

    /// The bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// `4KiB`, `256MiB`, `1GiB`; a size that is not a whole number of a binary unit is given
/// in the largest unit that divides it (`1536B` is `1.5KiB`: shown `1536B`).
pub fn fmt_size(bytes: u64) -> String {
    for (unit, m) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= m && bytes.checked_rem(m) == Some(0) {
            return format!("{}{unit}", bytes / m);
        }
    }
    format!("{bytes}B")
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fmt_size(self.0))
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fmt_size(self.0))
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
    fn sizes() {
        assert_eq!(Size::parse("4KiB"), Ok(Size(4096)));
        assert_eq!(Size::parse("256 MiB"), Ok(Size(256 << 20)));
        assert_eq!(Size::parse("1.5KiB"), Ok(Size(1536)));
        assert_eq!(Size::parse("10MB"), Ok(Size(10_000_000)));
        assert_eq!(Size::parse("512"), Ok(Size(512)));
        assert!(Size::parse("4XB").is_err());
        assert!(Size::parse("KiB").is_err());
        assert_eq!(fmt_size(4096), "4KiB");
        assert_eq!(fmt_size(256 << 20), "256MiB");
        assert_eq!(fmt_size(1536), "1536B");
        assert_eq!(fmt_size(1), "1B");
    }
}
