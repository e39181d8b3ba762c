//! Validation of what the user typed: layer ids, layer paths, owners, driver options
//! (numeric modes and sizes are read by `layerlab_core::mode` and `layerlab_core::size`).
//! Each failure is one line naming what was wrong.

use anyhow::{bail, Result};
use layerlab_core::{Error, LayerId, LayerPath};
use layerlab_drivers::Options;

/// A layer id, validated.
pub fn id(raw: &str) -> Result<LayerId> {
    Ok(Error::parse_id(raw)?)
}

/// A path inside layer `id`, validated and normalized (`../x` is refused); the error
/// names the layer.
pub fn path(id: &LayerId, raw: &str) -> Result<LayerPath> {
    Error::parse_path(raw).map_err(|e| anyhow::anyhow!("layer {id}: {e}"))
}

/// The `ID PATH` of a command: the layer id and the path inside it, both validated.
pub fn id_path(id: &str, path: &str) -> Result<(LayerId, LayerPath)> {
    let id = self::id(id)?;
    let path = self::path(&id, path)?;
    Ok((id, path))
}

/// A numeric `UID:GID`.
pub fn owner(raw: &str) -> Result<(u32, u32), String> {
    let bad = || format!("invalid owner '{raw}': expected numeric UID:GID (e.g. 1000:1000)");
    let (u, g) = raw.split_once(':').ok_or_else(bad)?;
    let num = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse::<u32>().ok()
        }
    };
    match (num(u), num(g)) {
        (Some(u), Some(g)) => Ok((u, g)),
        _ => Err(bad()),
    }
}

/// `--opt KEY=VALUE` pairs; a key given twice is refused. Unknown keys are the driver's
/// to refuse.
pub fn options(driver: &str, raw: &[String]) -> Result<Options> {
    let mut out = Options::new();
    for kv in raw {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("driver {driver}: option '{kv}': expected KEY=VALUE");
        };
        let k = k.trim();
        if k.is_empty() {
            bail!("driver {driver}: option '{kv}': empty key");
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            bail!("driver {driver}: option {k}: given twice");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners() {
        assert_eq!(owner("0:0"), Ok((0, 0)));
        assert_eq!(owner("1000:100"), Ok((1000, 100)));
        assert!(owner("root:root").is_err());
        assert!(owner("1000").is_err());
        assert!(owner("-1:0").is_err());
        assert!(owner("1:").is_err());
    }

    #[test]
    fn opts() {
        let o = options("x", &["a=1".into(), "b=on".into()]).ok();
        assert_eq!(o.map(|o| o.len()), Some(2));
        assert!(options("x", &["a".into()]).is_err());
        assert!(options("x", &["a=1".into(), "a=2".into()]).is_err());
    }
}
