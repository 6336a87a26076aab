//! The control-connection line framer: bytes in, bounded lines out.
//!
//! Frame before you parse: the framer finds line ends, strips Telnet
//! sequences and bounds each line, so the parser only ever sees one whole,
//! bounded line. It keeps no state that depends on how the bytes were split
//! into reads.

use bytes::{Bytes, BytesMut};

/// Telnet "interpret as command" (RFC 854).
const IAC: u8 = 0xFF;
/// Telnet subnegotiation begin.
const SB: u8 = 250;
/// Telnet subnegotiation end.
const SE: u8 = 240;
/// Telnet WILL, WONT, DO and DONT each carry one option byte.
const WILL: u8 = 251;
const DONT: u8 = 254;

/// One framed control line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its line end (CRLF or a bare LF) and with
    /// Telnet sequences removed.
    Line(Bytes),
    /// A line longer than the limit. Its bytes were discarded through its
    /// line end; it deserves exactly one `500` reply.
    TooLong,
}

impl Frame {
    /// The number of content bytes this frame holds in memory.
    pub fn len(&self) -> usize {
        match self {
            Frame::Line(line) => line.len(),
            Frame::TooLong => 0,
        }
    }

    /// Whether the frame holds no content bytes (an empty line or a
    /// discarded one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where the framer is inside the Telnet byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TelnetState {
    /// Ordinary data.
    Data,
    /// The previous byte was IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the next byte is the option, dropped.
    Option,
    /// Inside IAC SB … IAC SE: everything is dropped.
    Subnegotiation,
    /// IAC inside a subnegotiation: SE ends it.
    SubnegotiationIac,
}

/// A bounded line framer for the FTP control connection.
///
/// - A line ends at LF; one CR before it is removed, so CRLF and a bare LF
///   both work (out of spec, but embedded clients send bare LF).
/// - Telnet sequences are removed: `IAC IAC` is a literal `0xFF` byte, the
///   other commands (with their option byte, or a whole subnegotiation) are
///   dropped.
/// - A line longer than the limit is discarded through its line end and
///   reported once as [`Frame::TooLong`]; framing continues after it.
#[derive(Debug)]
pub struct LineFramer {
    line: BytesMut,
    max_line_len: usize,
    telnet: TelnetState,
    discarding: bool,
}

impl LineFramer {
    /// A framer that accepts lines of at most `max_line_len` bytes (line end
    /// not counted).
    pub fn new(max_line_len: usize) -> Self {
        Self {
            line: BytesMut::new(),
            max_line_len,
            telnet: TelnetState::Data,
            discarding: false,
        }
    }

    /// Frames `input`, calling `emit` for each complete line, in order.
    /// Bytes of an unfinished line are kept for the next call.
    pub fn push(&mut self, mut input: &[u8], mut emit: impl FnMut(Frame)) {
        while !input.is_empty() {
            if self.telnet != TelnetState::Data {
                // A lone IAC before a line end: the line end still ends the
                // line (it is looked at again in Data).
                if self.telnet == TelnetState::Iac && input[0] == b'\n' {
                    self.telnet = TelnetState::Data;
                    continue;
                }
                self.telnet_byte(input[0]);
                input = &input[1..];
                continue;
            }
            // Fast path: copy the run of ordinary bytes up to the next LF or IAC.
            let special = memchr::memchr2(b'\n', IAC, input).unwrap_or(input.len());
            self.append(&input[..special]);
            let Some(&byte) = input.get(special) else {
                return;
            };
            input = &input[special + 1..];
            if byte == IAC {
                self.telnet = TelnetState::Iac;
            } else {
                emit(self.finish_line());
            }
        }
    }

    /// The stream ended: an unfinished last line (sent without its line
    /// end) is emitted as a line, an over-long one as [`Frame::TooLong`].
    pub fn finish(&mut self, mut emit: impl FnMut(Frame)) {
        self.telnet = TelnetState::Data;
        if self.discarding || !self.line.is_empty() {
            emit(self.finish_line());
        }
    }

    /// Whether a line has begun and not ended yet.
    pub fn is_mid_line(&self) -> bool {
        !self.line.is_empty() || self.discarding || self.telnet != TelnetState::Data
    }

    fn telnet_byte(&mut self, byte: u8) {
        self.telnet = match (self.telnet, byte) {
            (TelnetState::Iac, IAC) => {
                self.append(&[IAC]);
                TelnetState::Data
            }
            (TelnetState::Iac, SB) => TelnetState::Subnegotiation,
            (TelnetState::Iac, WILL..=DONT) => TelnetState::Option,
            // Not a Telnet command (those are 240 and up): the client sent a
            // lone IAC, or the kernel removed the urgent DM byte of a Telnet
            // Synch (ABOR). Keep the byte, drop the IAC.
            (TelnetState::Iac, byte) if byte < SE => {
                self.append(&[byte]);
                TelnetState::Data
            }
            // IP, DM, AYT, NOP, …: a two-byte command, dropped.
            (TelnetState::Iac, _) | (TelnetState::Option, _) => TelnetState::Data,
            (TelnetState::Subnegotiation, IAC) => TelnetState::SubnegotiationIac,
            (TelnetState::SubnegotiationIac, SE) => TelnetState::Data,
            (TelnetState::Subnegotiation | TelnetState::SubnegotiationIac, _) => {
                TelnetState::Subnegotiation
            }
            (TelnetState::Data, _) => unreachable!("telnet_byte is only called outside Data"),
        };
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.discarding || bytes.is_empty() {
            return;
        }
        // One byte of slack for the CR of a CRLF that ends a full-length line.
        if self.line.len() + bytes.len() > self.max_line_len + 1 {
            self.discarding = true;
            self.line.clear();
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn finish_line(&mut self) -> Frame {
        if std::mem::take(&mut self.discarding) {
            return Frame::TooLong;
        }
        if self.line.last() == Some(&b'\r') {
            self.line.truncate(self.line.len() - 1);
        }
        if self.line.len() > self.max_line_len {
            self.line.clear();
            return Frame::TooLong;
        }
        Frame::Line(self.line.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk, |f| out.push(f));
        }
        out
    }

    fn line(s: &[u8]) -> Frame {
        Frame::Line(Bytes::copy_from_slice(s))
    }

    #[test]
    fn crlf_and_bare_lf_end_lines() {
        assert_eq!(
            frames(100, &[b"USER a\r\nPASS b\nNOOP"]),
            vec![line(b"USER a"), line(b"PASS b")]
        );
    }

    #[test]
    fn telnet_sequences_are_stripped_and_iac_iac_is_literal() {
        let input = b"AB\xFF\xFFC\xFF\xF4D\xFF\xFB\x01E\xFF\xFA\x18\x01\xFF\xF0F\r\n";
        assert_eq!(frames(100, &[input]), vec![line(b"AB\xFFCDEF")]);
    }

    #[test]
    fn a_lone_iac_before_an_ordinary_byte_keeps_the_byte() {
        // IAC IP IAC <DM removed by the kernel> ABOR
        assert_eq!(frames(100, &[b"\xFF\xF4\xFFABOR\r\n"]), vec![line(b"ABOR")]);
    }

    #[test]
    fn a_lone_iac_before_a_line_end_does_not_swallow_it() {
        // Found by the framer fuzz target.
        assert_eq!(
            frames(100, &[b"AB\xFF\nCD\r\n"]),
            vec![line(b"AB"), line(b"CD")]
        );
        assert_eq!(
            frames(100, &[b"AB\xFF", b"\nCD\n"]),
            vec![line(b"AB"), line(b"CD")]
        );
    }

    #[test]
    fn finish_emits_an_unterminated_last_line() {
        let mut framer = LineFramer::new(100);
        let mut out = Vec::new();
        framer.push(b"NOOP\r\nQUIT", |f| out.push(f));
        framer.finish(|f| out.push(f));
        framer.finish(|f| out.push(f));
        assert_eq!(out, vec![line(b"NOOP"), line(b"QUIT")]);
    }

    #[test]
    fn over_long_line_is_reported_once_and_framing_resumes() {
        let long = vec![b'x'; 20];
        assert_eq!(
            frames(10, &[&long, &long, b"\r\nNOOP\r\n"]),
            vec![Frame::TooLong, line(b"NOOP")]
        );
    }

    #[test]
    fn the_limit_counts_content_not_the_line_end() {
        assert_eq!(frames(4, &[b"NOOP\r\n"]), vec![line(b"NOOP")]);
        assert_eq!(frames(4, &[b"NOOPS\r\n"]), vec![Frame::TooLong]);
        assert_eq!(frames(4, &[b"NOOP\r\r\n"]), vec![Frame::TooLong]);
    }

    #[test]
    fn a_sequence_split_across_reads_is_the_same() {
        let input: &[u8] = b"US\xFF\xFFER\xFF\xFB\x01 a\r\n";
        let whole = frames(100, &[input]);
        let split: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(frames(100, &split), whole);
    }
}
