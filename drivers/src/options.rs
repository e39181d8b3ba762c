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

/// Reads a size option, as every size in layerlab is read (`layerlab_core::size`: `4096`,
/// `64KiB` and `10GiB` in powers of two, `10GB` in powers of ten).
pub fn size(driver: &str, options: &Options, key: &str) -> Result<u64> {
    let raw = options.get(key).map(String::as_str).unwrap_or_default();
    layerlab_core::size::parse(raw).map_err(|e| Error::InvalidOption {
        driver: driver.to_string(),
        key: key.to_string(),
        reason: e.to_string(),
    })
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

/// Checks that a size option is a power of two within `lo..=hi`.
pub fn check_pow2(driver: &str, key: &str, v: u64, lo: u64, hi: u64) -> Result<()> {
    if !v.is_power_of_two() || !(lo..=hi).contains(&v) {
        return Err(Error::InvalidOption {
            driver: driver.to_string(),
            key: key.to_string(),
            reason: format!(
                "must be a power of two from {} to {}",
                layerlab_core::size::human(lo),
                layerlab_core::size::human(hi)
            ),
        });
    }
    Ok(())
}

/// The size option of a pool file (`btrfs.poolsize`, `zfs.poolsize`).
pub const fn pool_size_option(key: &'static str) -> OptionSpec {
    OptionSpec {
        key,
        default: "64GiB",
        help: "size of the (sparse) pool file: writes past it fail with no space",
    }
}

/// The pool size the option `key` (declared by [`pool_size_option`]) gives, checked to
/// hold at least 16 units of `unit`.
pub fn pool_size(driver: &str, options: &Options, key: &str, unit: u64) -> Result<u64> {
    let pool = size(driver, options, key)?;
    if pool < 16 * unit || pool / 4096 >= (1u64 << 40) {
        return Err(Error::InvalidOption {
            driver: driver.to_string(),
            key: key.to_string(),
            reason: format!(
                "must hold at least 16 units of {}",
                layerlab_core::size::human(unit)
            ),
        });
    }
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(key: &str, value: &str) -> Options {
        let mut o = Options::new();
        o.insert(key.to_string(), value.to_string());
        o
    }

    #[test]
    fn size_options_read_as_every_size_in_layerlab() {
        let get = |v: &str| size("d", &one("k", v), "k");
        assert_eq!(get("10GB").ok(), Some(10_000_000_000));
        assert_eq!(get("10GiB").ok(), Some(10 << 30));
        assert_eq!(get("64KiB").ok(), Some(65536));
        assert_eq!(get("4096").ok(), Some(4096));
        let e = get("10G").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains("driver d: option k:") && e.contains("ambiguous"),
            "{e}"
        );
        assert!(get("x").is_err());
    }
}
