//! Driver options: declared by each driver, checked once when a store is created; the
//! size values they take (`8GiB`, `64KiB`, `4096`) and the checks of their ranges.

use crate::store::Options;
use layerlab_core::{Error, Result};

/// One option a driver accepts.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// The key, as in `--opt KEY=VALUE`.
    pub key: &'static str,
    /// The value used when the option is not given.
    pub default: &'static str,
    /// One line of help.
    pub help: &'static str,
}

/// Rejects unknown keys and fills in defaults.
pub fn resolve(driver: &str, specs: &[OptionSpec], given: Options) -> Result<Options> {
    for key in given.keys() {
        if !specs.iter().any(|s| s.key == key) {
            let known: Vec<&str> = specs.iter().map(|s| s.key).collect();
            return Err(Error::InvalidOption {
                driver: driver.to_string(),
                key: key.clone(),
                reason: if known.is_empty() {
                    "this driver takes no options".to_string()
                } else {
                    format!("unknown option (known: {})", known.join(", "))
                },
            });
        }
    }
    let mut out = given;
    for s in specs {
        out.entry(s.key.to_string())
            .or_insert_with(|| s.default.to_string());
    }
    Ok(out)
}

/// Reads a boolean option (`on`/`off`, `true`/`false`, `1`/`0`).
pub fn flag(driver: &str, options: &Options, key: &str) -> Result<bool> {
    match options.get(key).map(String::as_str) {
        None | Some("off" | "false" | "0" | "no") => Ok(false),
        Some("on" | "true" | "1" | "yes") => Ok(true),
        Some(other) => Err(Error::InvalidOption {
            driver: driver.to_string(),
            key: key.to_string(),
            reason: format!("'{other}' is not on or off"),
        }),
    }
}

/// Parses `8GiB`, `256MiB`, `64KiB`, `512B`, `4096` (also `8G`, `8GB`, `8g`: binary units
/// as Docker's dm options take them). `None` when the text is not a size.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Formats a byte count the way the options spell it (`64KiB`, `10GiB`, `1000B`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (m, u) in UNITS {
        if bytes >= m && bytes.is_multiple_of(m) {
            return format!("{}{u}", bytes / m);
        }
    }
    for (m, u) in UNITS {
        if bytes >= m {
            return format!("{:.1}{u}", bytes as f64 / m as f64);
        }
    }
    format!("{bytes}B")
}

/// Reads a size option of `driver`.
pub fn size(driver: &str, options: &Options, key: &str) -> Result<u64> {
    let raw = options.get(key).map(String::as_str).unwrap_or_default();
    parse_size(raw).ok_or_else(|| Error::InvalidOption {
        driver: driver.to_string(),
        key: key.to_string(),
        reason: format!("'{raw}' is not a size (like 4KiB, 128KiB, 64GiB)"),
    })
}

/// Checks that a size option is a power of two within `lo..=hi`.
pub fn check_pow2(driver: &str, key: &str, v: u64, lo: u64, hi: u64) -> Result<()> {
    if !v.is_power_of_two() || !(lo..=hi).contains(&v) {
        return Err(Error::InvalidOption {
            driver: driver.to_string(),
            key: key.to_string(),
            reason: format!(
                "must be a power of two from {} to {}",
                format_size(lo),
                format_size(hi)
            ),
        });
    }
    Ok(())
}

/// Checks that a pool size holds at least 16 units of `unit`.
pub fn check_pool(driver: &str, key: &str, pool: u64, unit: u64) -> Result<()> {
    if pool < 16 * unit || pool / 4096 >= (1u64 << 40) {
        return Err(Error::InvalidOption {
            driver: driver.to_string(),
            key: key.to_string(),
            reason: format!("must hold at least 16 units of {}", format_size(unit)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8GiB"), Some(8 << 30));
        assert_eq!(parse_size("256MiB"), Some(256 << 20));
        assert_eq!(parse_size("64KiB"), Some(65536));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("10G"), Some(10 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("12Q"), None);
        assert_eq!(format_size(65536), "64KiB");
        assert_eq!(format_size(10 << 30), "10GiB");
    }
}
