//! The table of one run: every figure, a row per measure and a column per
//! server, printed in Markdown at the end (the table of
//! `benches/README.md`), each relay column with its ratio to the best peer.

use std::fmt::Write as _;

/// The columns, in order: the baseline, the relay, then the peers.
const FIRST_COLUMNS: [&str; 3] = ["baseline", "tokio", "smol"];

/// One measured figure, and which way is better.
#[derive(Clone, Copy)]
pub(crate) struct Figure {
    value: f64,
    decimals: usize,
    higher_is_better: bool,
}

impl Figure {
    /// A figure where more is better (throughput).
    pub(crate) fn higher(value: f64, decimals: usize) -> Self {
        Self {
            value,
            decimals,
            higher_is_better: true,
        }
    }

    /// A figure where less is better (CPU, latency, memory).
    pub(crate) fn lower(value: f64, decimals: usize) -> Self {
        Self {
            value,
            decimals,
            higher_is_better: false,
        }
    }

    fn better_than(self, other: Figure) -> bool {
        if self.higher_is_better {
            self.value > other.value
        } else {
            self.value < other.value
        }
    }

    /// How many times better than `other` (above 1: better).
    fn advantage(self, other: Figure) -> f64 {
        if self.higher_is_better {
            self.value / other.value
        } else {
            other.value / self.value
        }
    }
}

/// Every figure of the run.
#[derive(Default)]
pub(crate) struct Report {
    rows: Vec<String>,
    columns: Vec<String>,
    figures: Vec<(String, String, Figure)>,
    notes: Vec<String>,
}

impl Report {
    /// Records `figure` for `row` and `column`.
    pub(crate) fn set(&mut self, row: &str, column: &str, figure: Figure) {
        if !self.rows.iter().any(|r| r == row) {
            self.rows.push(row.to_owned());
        }
        if !self.columns.iter().any(|c| c == column) {
            self.columns.push(column.to_owned());
        }
        self.figures.retain(|(r, c, _)| !(r == row && c == column));
        self.figures
            .push((row.to_owned(), column.to_owned(), figure));
    }

    /// The figure of `row` and `column`, if measured.
    pub(crate) fn value(&self, row: &str, column: &str) -> Option<f64> {
        self.get(row, column).map(|figure| figure.value)
    }

    fn get(&self, row: &str, column: &str) -> Option<Figure> {
        self.figures
            .iter()
            .find(|(r, c, _)| r == row && c == column)
            .map(|&(_, _, figure)| figure)
    }

    /// A line printed under the table.
    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// The columns in order: the baseline and the relay first.
    fn ordered_columns(&self) -> Vec<&str> {
        let mut columns: Vec<&str> = FIRST_COLUMNS
            .iter()
            .copied()
            .filter(|c| self.columns.iter().any(|own| own == c))
            .collect();
        columns.extend(
            self.columns
                .iter()
                .map(String::as_str)
                .filter(|c| !FIRST_COLUMNS.contains(c)),
        );
        columns
    }

    /// The best peer's figure of `row` (not the baseline, not the relay).
    fn best_peer(&self, row: &str) -> Option<(&str, Figure)> {
        self.ordered_columns()
            .into_iter()
            .filter(|c| !FIRST_COLUMNS.contains(c))
            .filter_map(|c| Some((c, self.get(row, c)?)))
            .reduce(|best, next| {
                if next.1.better_than(best.1) {
                    next
                } else {
                    best
                }
            })
    }

    /// Prints the Markdown table and the notes.
    pub(crate) fn print(&self) {
        println!("{}", self.markdown());
    }

    fn markdown(&self) -> String {
        let columns = self.ordered_columns();
        let mut out = String::new();
        let _ = write!(out, "\n| measure |");
        for column in &columns {
            let _ = write!(out, " {column} |");
        }
        let _ = writeln!(out, " tokio vs best peer | smol vs best peer |");
        let _ = write!(out, "|---|");
        for _ in &columns {
            let _ = write!(out, "---|");
        }
        let _ = writeln!(out, "---|---|");
        for row in &self.rows {
            let _ = write!(out, "| {row} |");
            for column in &columns {
                match self.get(row, column) {
                    Some(figure) => {
                        let _ = write!(out, " {:.*} |", figure.decimals, figure.value);
                    }
                    None => {
                        let _ = write!(out, " |");
                    }
                }
            }
            for relay in ["tokio", "smol"] {
                match (self.get(row, relay), self.best_peer(row)) {
                    (Some(own), Some((peer, best))) => {
                        let _ = write!(out, " {:.2}× ({peer}) |", own.advantage(best));
                    }
                    _ => {
                        let _ = write!(out, " |");
                    }
                }
            }
            let _ = writeln!(out);
        }
        for note in &self.notes {
            let _ = writeln!(out, "\n{note}");
        }
        out
    }
}
