//! `layerlab calibrate [--out FILE] [--dir DIR] [--size SIZE]`: measures this machine's
//! primitive costs and writes them as a device profile (the format of
//! `configs/profiles/*.toml`), by default to `configs/profiles/calibrated.toml`, with this
//! machine's fingerprint. What is measured: [`crate::harness::calibration`].

use crate::harness::calibration;
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;

/// The default output file.
pub const DEFAULT_OUT: &str = calibration::RECORDED;

/// Runs the calibration and writes the profile.
pub fn calibrate<W: Write>(
    out: &mut W,
    file: Option<PathBuf>,
    dir: Option<PathBuf>,
    size: Option<&str>,
) -> Result<()> {
    let size = match size {
        Some(s) => layerlab_core::size::parse(s).map_err(|e| anyhow::anyhow!("--size: {e}"))?,
        None => 256 << 20,
    };
    anyhow::ensure!(size >= 1 << 20, "the test file must be 1MiB or more");
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let file = file.unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    let c = calibration::measure(&dir, size)?;
    calibration::record(&c, &file)?;
    write!(out, "{}", c.toml)?;
    writeln!(
        out,
        "profile written to {}{}",
        file.display(),
        if c.cold {
            ""
        } else {
            " (caches could not be dropped: cold values are warm)"
        }
    )?;
    Ok(())
}
