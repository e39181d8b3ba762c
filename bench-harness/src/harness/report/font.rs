//! The one font every plot uses, embedded in the binary so that text renders in SVG and PNG
//! with no system font libraries (docs/DESIGN.md section 7). DejaVu Sans; its licence is
//! `bench-harness/assets/DejaVuSans-LICENSE.txt`.

use super::ReportError;
use std::sync::OnceLock;

/// The family name plots ask for; the embedded font is registered under it.
pub const FAMILY: &str = "sans-serif";

/// The embedded font's bytes (also read by [`super::png_text`]).
pub static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Registers the embedded font with plotters, once per process. Later calls only report
/// whether the first one worked.
pub fn ensure_registered() -> Result<(), ReportError> {
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, plotters::style::FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}
