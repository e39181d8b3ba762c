//! Text for PNG plots, set with the glyphs' own side bearings.
//!
//! plotters 0.3.7 rasterises bitmap text through ab_glyph but places each glyph's pixels at
//! the pen position without the glyph's left side bearing, so the gaps between letters
//! vary with the letters ("256 MiB" reads "25 6 MiB"). [`GlyphText`] wraps a bitmap backend
//! and sets text itself with ab_glyph and the same embedded font: each glyph's outline at
//! the pen position plus its bearing, kerning between glyphs, the layout box plotters uses
//! for anchors (so labels sit where plotters measured them). Everything else is passed to
//! the wrapped backend unchanged. SVG text is set by the viewer and needs none of this.

use super::font::FONT;
use ab_glyph::{Font, FontRef, ScaleFont};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// A bitmap backend whose text is set with correct glyph placement.
pub struct GlyphText<B> {
    inner: B,
    font: Option<FontRef<'static>>,
}

impl<B: DrawingBackend> GlyphText<B> {
    /// Wraps `inner`; when the embedded font cannot be read, text falls back to the
    /// wrapped backend's own setting.
    pub fn new(inner: B) -> Self {
        GlyphText {
            inner,
            font: FontRef::try_from_slice(FONT).ok(),
        }
    }
}

/// The pen advance of `text` at `size` px, with kerning, as plotters measures it.
fn advance<F: Font, S: ScaleFont<F>>(font: &S, text: &str) -> f32 {
    let mut x = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            x += font.kern(p, id);
        }
        x += font.h_advance(id);
        prev = Some(id);
    }
    x
}

impl<B: DrawingBackend> DrawingBackend for GlyphText<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        self.inner.estimate_text_size(text, style)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let Some(font) = self.font.clone() else {
            return self.inner.draw_text(text, style, pos);
        };
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let size = style.size() as f32;
        let scaled = font.as_scaled(size);
        // the box plotters lays text out in: its anchors are what the chart measured
        let width = advance(&scaled, text) as i32;
        let height = (f64::from(size) / 1.24) as i32;
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.inner.get_size();
        let mut pen = 0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                pen += scaled.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, 0.0));
            pen += scaled.h_advance(id);
            let Some(outline) = scaled.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            // x from the glyph's own bounds (the pen plus its bearing); y as plotters sets
            // it, so that the text sits on the same line as before
            let x0 = bounds.min.x.round() as i32;
            let y0 = (size / 2.0 + bounds.min.y) as i32;
            let mut pixels = Vec::new();
            outline.draw(|x, y, a| pixels.push((x as i32 + x0, y as i32 + y0, a)));
            for (x, y, a) in pixels {
                let (x, y) = trans.transform(x + dx, y + dy);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                    let c = BackendColor {
                        alpha: color.alpha * f64::from(a),
                        rgb: color.rgb,
                    };
                    self.inner.draw_pixel((x, y), c)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use plotters::style::IntoFont;

    /// A backend that only remembers which pixels were inked.
    struct Ink {
        w: u32,
        h: u32,
        on: Vec<bool>,
    }

    impl DrawingBackend for Ink {
        type ErrorType = std::io::Error;
        fn get_size(&self) -> (u32, u32) {
            (self.w, self.h)
        }
        fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<std::io::Error>> {
            Ok(())
        }
        fn present(&mut self) -> Result<(), DrawingErrorKind<std::io::Error>> {
            Ok(())
        }
        fn draw_pixel(
            &mut self,
            (x, y): BackendCoord,
            c: BackendColor,
        ) -> Result<(), DrawingErrorKind<std::io::Error>> {
            if c.alpha > 0.5 {
                self.on[y as usize * self.w as usize + x as usize] = true;
            }
            Ok(())
        }
    }

    /// The widths of the blank column runs between inked ones.
    fn gaps(ink: &Ink) -> Vec<usize> {
        let col = |x: u32| (0..ink.h).any(|y| ink.on[(y * ink.w + x) as usize]);
        let cols: Vec<bool> = (0..ink.w).map(col).collect();
        let first = cols.iter().position(|c| *c).unwrap_or(0);
        let last = cols.iter().rposition(|c| *c).unwrap_or(0);
        let mut out = Vec::new();
        let mut run = 0;
        for c in &cols[first..=last] {
            if *c {
                if run > 0 {
                    out.push(run);
                }
                run = 0;
            } else {
                run += 1;
            }
        }
        out
    }

    #[test]
    fn digits_are_evenly_spaced() {
        super::super::font::ensure_registered().expect("font");
        let mut b = GlyphText::new(Ink {
            w: 300,
            h: 80,
            on: vec![false; 300 * 80],
        });
        let style = (super::super::font::FAMILY, 40)
            .into_font()
            .color(&plotters::style::BLACK);
        b.draw_text("256", &style, (10, 10)).expect("drawn");
        let g = gaps(&b.inner);
        // three digits, two gaps between them, equal within a pixel or two (the bug set
        // "256" as "25 6": the 6 lost its side bearing)
        assert_eq!(g.len(), 2, "{g:?}");
        assert!(g[0].abs_diff(g[1]) <= 2, "{g:?}");
    }
}
