//! How the command line prints: aligned tables, `key  value` blocks, JSON, mode strings,
//! and the `--trace` lines on stderr.

use layerlab_core::{Counts, FileKind};
use serde::Serialize;
use std::io::{self, Write};

/// Writes pretty JSON and a newline.
pub fn json<W: Write, T: Serialize + ?Sized>(w: &mut W, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *w, value)?;
    writeln!(w)?;
    Ok(())
}

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text, padded on the right.
    Left,
    /// Numbers, padded on the left.
    Right,
}

/// An aligned table with a header row; prints nothing when it has no rows.
#[derive(Debug)]
pub struct Table {
    headers: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    pub fn new(headers: &[(&'static str, Align)]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the header and the rows, columns two spaces apart.
    pub fn print<W: Write>(&self, w: &mut W) -> io::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|(h, _)| h.len()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(wd) = widths.get_mut(i) {
                    *wd = (*wd).max(cell.chars().count());
                }
            }
        }
        let header: Vec<String> = self.headers.iter().map(|(h, _)| h.to_string()).collect();
        self.line(w, &header, &widths)?;
        for row in &self.rows {
            self.line(w, row, &widths)?;
        }
        Ok(())
    }

    fn line<W: Write>(&self, w: &mut W, cells: &[String], widths: &[usize]) -> io::Result<()> {
        let mut out = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            let align = self.headers.get(i).map_or(Align::Left, |h| h.1);
            if i > 0 {
                out.push_str("  ");
            }
            match align {
                Align::Right => out.push_str(&format!("{cell:>width$}")),
                Align::Left if i == last => out.push_str(cell),
                Align::Left => out.push_str(&format!("{cell:<width$}")),
            }
        }
        writeln!(w, "{out}")
    }
}

/// A table described column by column: each column's header, alignment and cell, one per
/// item; prints nothing when there are no items.
pub struct Columns<'a, T> {
    items: Vec<T>,
    columns: Vec<Column<'a, T>>,
}

/// A header, its alignment and how an item's cell reads.
type Column<'a, T> = (&'static str, Align, Box<dyn Fn(&T) -> String + 'a>);

impl<'a, T> Columns<'a, T> {
    /// A table of these items, one row each, with no columns yet.
    pub fn of(items: impl IntoIterator<Item = T>) -> Self {
        Columns {
            items: items.into_iter().collect(),
            columns: Vec::new(),
        }
    }

    /// Adds a text column, padded on the right.
    pub fn left(self, header: &'static str, cell: impl Fn(&T) -> String + 'a) -> Self {
        self.column(header, Align::Left, cell)
    }

    /// Adds a number column, padded on the left.
    pub fn right(self, header: &'static str, cell: impl Fn(&T) -> String + 'a) -> Self {
        self.column(header, Align::Right, cell)
    }

    fn column(
        mut self,
        header: &'static str,
        align: Align,
        cell: impl Fn(&T) -> String + 'a,
    ) -> Self {
        self.columns.push((header, align, Box::new(cell)));
        self
    }

    /// Prints the header and a row per item, as [`Table::print`] does.
    pub fn print<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let headers: Vec<(&'static str, Align)> =
            self.columns.iter().map(|(h, a, _)| (*h, *a)).collect();
        let mut t = Table::new(&headers);
        for item in &self.items {
            t.row(self.columns.iter().map(|(_, _, cell)| cell(item)).collect());
        }
        t.print(w)
    }
}

/// Prints `key  value` lines with the values aligned.
pub fn key_values<W: Write>(w: &mut W, pairs: &[(String, String)]) -> io::Result<()> {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in pairs {
        writeln!(w, "{k:<width$}  {v}")?;
    }
    Ok(())
}

/// Prints an experiment's notes, `note: ...` a line.
pub fn notes<W: Write>(w: &mut W, notes: &[String]) -> io::Result<()> {
    for n in notes {
        writeln!(w, "note: {n}")?;
    }
    Ok(())
}

/// A mode as four octal digits: `0644`, `4755`.
pub fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// A mode as `ls -l` shows it: `-rw-r--r--`, `drwxrwxrwt`, `-rwsr-xr-x`.
pub fn mode_string(kind: FileKind, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        FileKind::File => '-',
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::CharDevice => 'c',
        FileKind::BlockDevice => 'b',
        FileKind::Fifo => 'p',
    });
    let special = [(0o4000, 's'), (0o2000, 's'), (0o1000, 't')];
    for (i, (bit, letter)) in special.iter().enumerate() {
        let shift = 6 - 3 * i as u32;
        let bits = (mode >> shift) & 0o7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        s.push(match (mode & bit != 0, exec) {
            (true, true) => *letter,
            (true, false) => letter.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// `--trace`: one driver operation, its steps and its counts, on stderr.
pub fn trace_op(label: &str, steps: &[String], counts: &Counts, failed: bool) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "trace: {label}");
    for step in steps {
        let _ = writeln!(e, "  step: {step}");
    }
    let _ = writeln!(e, "  counts: {}", counts.summary());
    if failed {
        let _ = writeln!(e, "  (failed)");
    }
}

/// `--trace`: the total of a command that made several operations.
pub fn trace_total(ops: usize, total: &Counts) {
    let _ = writeln!(
        io::stderr().lock(),
        "trace: total of {ops} operations\n  counts: {}",
        total.summary()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode_string(FileKind::File, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(FileKind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileKind::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(octal(0o4755), "4755");
        assert_eq!(octal(0o44), "0044");
    }

    #[test]
    fn columns_print_one_row_per_item() -> io::Result<()> {
        let mut out = Vec::new();
        Columns::of([("base", 1), ("b", 100)])
            .left("ID", |(id, _)| id.to_string())
            .right("N", |(_, n)| n.to_string())
            .print(&mut out)?;
        assert_eq!(
            String::from_utf8_lossy(&out),
            "ID      N\nbase    1\nb     100\n"
        );
        Ok(())
    }

    #[test]
    fn table_aligns() -> io::Result<()> {
        let mut t = Table::new(&[("ID", Align::Left), ("N", Align::Right), ("X", Align::Left)]);
        t.row(vec!["base".into(), "1".into(), "a".into()]);
        t.row(vec!["b".into(), "100".into(), "bb".into()]);
        let mut out = Vec::new();
        t.print(&mut out)?;
        assert_eq!(
            String::from_utf8_lossy(&out),
            "ID      N  X\nbase    1  a\nb     100  bb\n"
        );
        Ok(())
    }
}
