//! What an `--exec` command prints, logged within bounds: a command is the
//! operator's, but what it prints may come from the upload (a file dumped to
//! standard error, a name echoed back), so neither memory nor the log may
//! grow with it.

use std::sync::atomic::{AtomicUsize, Ordering};

use smol::io::{AsyncRead, AsyncReadExt};

/// The longest line logged; the rest of a longer line is cut and counted.
pub(crate) const MAX_LINE: usize = 4096;
/// What a line costs at least against the budget: the log record around
/// it, so that a flood of empty lines is bounded too.
const MIN_LINE_COST: usize = 64;

/// Which of the command's streams a line came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// The bytes one run may log, shared by its two streams; what is over it is
/// read (the command never blocks on a full pipe) and only counted.
#[derive(Debug)]
pub(crate) struct Budget {
    left: AtomicUsize,
    dropped: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(bytes: usize) -> Self {
        Self {
            left: AtomicUsize::new(bytes),
            dropped: AtomicUsize::new(0),
        }
    }

    /// Bytes read but not logged: over the budget, or cut from long lines.
    pub(crate) fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }

    fn drop_bytes(&self, bytes: usize) {
        self.dropped.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Takes `cost` from the budget if it is all there.
    fn take(&self, cost: usize) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(cost)
            })
            .is_ok()
    }
}

/// Reads `stream` to its end (or until this future is dropped), logging
/// each line: standard output at info, standard error at warn, both shown at
/// the default log level. Invalid UTF-8 is logged lossily; a read error ends
/// the reading, never the command.
pub(crate) async fn log_lines(
    stream: Option<impl AsyncRead + Unpin>,
    which: Stream,
    budget: &Budget,
) {
    let Some(mut stream) = stream else { return };
    let mut chunk = vec![0u8; 8192];
    let mut line = Lines::default();
    loop {
        let read = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        for piece in chunk[..read].split_inclusive(|b| *b == b'\n') {
            match piece.strip_suffix(b"\n") {
                Some(end) => {
                    line.push(end, budget);
                    line.finish(which, budget);
                }
                None => line.push(piece, budget),
            }
        }
    }
    if !line.is_empty() {
        line.finish(which, budget);
    }
}

/// The line being read: at most [`MAX_LINE`] bytes kept, the rest counted.
#[derive(Debug, Default)]
struct Lines {
    kept: Vec<u8>,
    cut: usize,
}

impl Lines {
    fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.cut == 0
    }

    fn push(&mut self, bytes: &[u8], budget: &Budget) {
        let room = MAX_LINE - self.kept.len();
        let (kept, cut) = bytes.split_at(bytes.len().min(room));
        self.kept.extend_from_slice(kept);
        self.cut += cut.len();
        budget.drop_bytes(cut.len());
    }

    fn finish(&mut self, which: Stream, budget: &Budget) {
        let cost = (self.kept.len() + 1).max(MIN_LINE_COST);
        if budget.take(cost) {
            let text = printable(&self.kept);
            let cut = self.cut;
            match (which, cut) {
                (Stream::Stdout, 0) => tracing::info!(target: "ftprelay::exec", "{text}"),
                (Stream::Stdout, _) => {
                    tracing::info!(target: "ftprelay::exec", "{text}… [{cut} more bytes cut]")
                }
                (Stream::Stderr, 0) => tracing::warn!(target: "ftprelay::exec", "{text}"),
                (Stream::Stderr, _) => {
                    tracing::warn!(target: "ftprelay::exec", "{text}… [{cut} more bytes cut]")
                }
            }
        } else {
            // Only the kept part: the cut part was counted as it was cut.
            budget.drop_bytes(self.kept.len() + 1);
        }
        self.kept.clear();
        self.cut = 0;
    }
}

/// A line as log text: invalid UTF-8 as U+FFFD, control characters (a CR
/// that would overwrite the line on a terminal, escape sequences) escaped,
/// tabs kept.
fn printable(bytes: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(bytes);
    if !lossy.chars().any(|c| c.is_control() && c != '\t') {
        return lossy.into_owned();
    }
    lossy
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(input: &[u8], budget: usize) -> (Vec<(usize, usize)>, usize) {
        let budget = Budget::new(budget);
        let mut line = Lines::default();
        let mut lines = Vec::new();
        for piece in input.split_inclusive(|b| *b == b'\n') {
            let end = piece.strip_suffix(b"\n");
            line.push(end.unwrap_or(piece), &budget);
            if end.is_some() {
                lines.push((line.kept.len(), line.cut));
                line.finish(Stream::Stdout, &budget);
            }
        }
        (lines, budget.dropped())
    }

    #[test]
    fn long_lines_are_cut_and_counted() {
        let mut input = vec![b'a'; MAX_LINE + 10];
        input.push(b'\n');
        let (lines, dropped) = logged(&input, 1 << 20);
        assert_eq!(lines, [(MAX_LINE, 10)]);
        assert_eq!(dropped, 10);
    }

    #[test]
    fn lines_over_the_budget_are_counted_not_logged() {
        // 64 bytes a line at least: 2 of these 3 lines fit in 128.
        let (_, dropped) = logged(b"a\nbb\nccc\n", 128);
        assert_eq!(dropped, 4);
    }

    #[test]
    fn printable_text() {
        assert_eq!(printable(b"caf\xE9\tok"), "caf\u{FFFD}\tok");
        assert_eq!(printable(b"a\rb\x1b[2J"), "a\\rb\\u{1b}[2J");
    }
}
