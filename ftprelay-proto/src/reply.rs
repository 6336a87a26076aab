//! Replies: a three-digit code and text, encoded per RFC 959 §4.2.
//!
//! Every reply is one line except FEAT, HELP and STAT: embedded clients read
//! each reply as one chunk, and a multi-line 227 broke several clients.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddrV4;

/// A three-digit FTP reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

#[allow(missing_docs)] // the names are the RFC 959 §4.2.2 texts
impl ReplyCode {
    pub const FILE_STATUS_OK: Self = Self(150);
    pub const COMMAND_OK: Self = Self(200);
    pub const SUPERFLUOUS: Self = Self(202);
    pub const SYSTEM_STATUS: Self = Self(211);
    pub const FILE_STATUS: Self = Self(213);
    pub const HELP: Self = Self(214);
    pub const SYSTEM_TYPE: Self = Self(215);
    pub const SERVICE_READY: Self = Self(220);
    pub const CLOSING_CONTROL: Self = Self(221);
    pub const CLOSING_DATA: Self = Self(226);
    pub const ENTERING_PASSIVE: Self = Self(227);
    pub const ENTERING_EXTENDED_PASSIVE: Self = Self(229);
    pub const LOGGED_IN: Self = Self(230);
    pub const FILE_ACTION_OK: Self = Self(250);
    pub const PATH_CREATED: Self = Self(257);
    pub const NEED_PASSWORD: Self = Self(331);
    pub const PENDING_FURTHER_INFORMATION: Self = Self(350);
    pub const SERVICE_NOT_AVAILABLE: Self = Self(421);
    pub const CANT_OPEN_DATA: Self = Self(425);
    pub const TRANSFER_ABORTED: Self = Self(426);
    pub const LOCAL_ERROR: Self = Self(451);
    pub const INSUFFICIENT_STORAGE: Self = Self(452);
    pub const SYNTAX_ERROR: Self = Self(500);
    pub const SYNTAX_ERROR_IN_PARAMETERS: Self = Self(501);
    pub const NOT_IMPLEMENTED: Self = Self(502);
    pub const BAD_SEQUENCE: Self = Self(503);
    pub const NOT_IMPLEMENTED_FOR_PARAMETER: Self = Self(504);
    pub const NETWORK_PROTOCOL_NOT_SUPPORTED: Self = Self(522);
    pub const NOT_LOGGED_IN: Self = Self(530);
    pub const FILE_UNAVAILABLE: Self = Self(550);
    pub const EXCEEDED_STORAGE: Self = Self(552);
    pub const NAME_NOT_ALLOWED: Self = Self(553);
    // RFC 2228 and RFC 4217 (FTP security, FTPS).
    /// `234`: AUTH accepted, the TLS handshake follows.
    pub const SECURITY_EXCHANGE_OK: Self = Self(234);
    /// `521`: the data connection cannot be opened with this PROT setting.
    pub const DATA_PROTECTION_REQUIRED: Self = Self(521);
    /// `522`: TLS negotiation on the data connection failed (RFC 4217; the
    /// same number as EPRT's [`ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED`]).
    pub const TLS_NEGOTIATION_FAILED: Self = Self(522);
    /// `534`: request denied for policy reasons (CCC, an unsafe AUTH).
    pub const POLICY_REFUSED: Self = Self(534);
    /// `536`: the requested PROT level is not supported.
    pub const PROTECTION_LEVEL_NOT_SUPPORTED: Self = Self(536);
}

impl ReplyCode {
    /// A code from its number, if it has three digits with a first digit of
    /// 1 to 5.
    pub const fn new(code: u16) -> Option<Self> {
        if code >= 100 && code < 600 {
            Some(Self(code))
        } else {
            None
        }
    }

    /// The number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether this is a preliminary (1xx) reply, which another reply to the
    /// same command follows.
    pub const fn is_preliminary(self) -> bool {
        self.0 < 200
    }

    /// Whether this is the final reply to a command (2xx to 5xx).
    pub const fn is_final(self) -> bool {
        !self.is_preliminary()
    }

    /// Whether this reply reports success (1xx, 2xx or 3xx).
    pub const fn is_positive(self) -> bool {
        self.0 < 400
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One reply: a code and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: ReplyCode,
    /// Lines separated by `\n`; none of them holds a CR.
    text: Cow<'static, str>,
}

impl Reply {
    /// A single-line reply. Line ends inside `text` become spaces, so text
    /// that came from a client can never forge a second reply.
    pub fn new(code: ReplyCode, text: impl Into<Cow<'static, str>>) -> Self {
        let text = text.into();
        let text = if text.contains(['\r', '\n']) {
            Cow::Owned(text.replace(['\r', '\n'], " "))
        } else {
            text
        };
        Self { code, text }
    }

    /// A multi-line reply (FEAT, HELP, STAT): the first and the last line
    /// carry the code, the lines between are indented by one space.
    pub fn multiline<S: AsRef<str>>(code: ReplyCode, lines: impl IntoIterator<Item = S>) -> Self {
        let text = lines
            .into_iter()
            .map(|line| line.as_ref().replace(['\r', '\n'], " "))
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            code,
            text: Cow::Owned(text),
        }
    }

    /// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).`, the exact text and
    /// parentheses that clients parse.
    pub fn entering_passive_mode(addr: SocketAddrV4) -> Self {
        let [h1, h2, h3, h4] = addr.ip().octets();
        let [p1, p2] = addr.port().to_be_bytes();
        Self::new(
            ReplyCode::ENTERING_PASSIVE,
            format!("Entering Passive Mode ({h1},{h2},{h3},{h4},{p1},{p2})."),
        )
    }

    /// `229 Entering Extended Passive Mode (|||port|)` (RFC 2428 §3).
    pub fn entering_extended_passive_mode(port: u16) -> Self {
        Self::new(
            ReplyCode::ENTERING_EXTENDED_PASSIVE,
            format!("Entering Extended Passive Mode (|||{port}|)"),
        )
    }

    /// A `257` reply naming `path` in double quotes, with embedded quotes
    /// doubled (RFC 959 Appendix II), followed by `comment`.
    pub fn quoted_path(path: &[u8], comment: &str) -> Self {
        let path = String::from_utf8_lossy(path).replace('"', "\"\"");
        Self::new(ReplyCode::PATH_CREATED, format!("\"{path}\" {comment}"))
    }

    /// The code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The text; lines of a multi-line reply are separated by `\n`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this reply spans several lines.
    pub fn is_multiline(&self) -> bool {
        self.text.contains('\n')
    }

    /// Appends the reply as it goes on the wire, CRLF line ends included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let code = self.code.0.to_string();
        let mut lines = self.text.split('\n').peekable();
        let mut first = true;
        while let Some(line) = lines.next() {
            let last = lines.peek().is_none();
            if first || last {
                out.extend_from_slice(code.as_bytes());
                out.push(if last { b' ' } else { b'-' });
            } else {
                // Indented, so no middle line can look like a final line.
                out.push(b' ');
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
            first = false;
        }
    }

    /// The encoded reply as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 8);
        self.encode(&mut out);
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text.replace('\n', " | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_encoding() {
        let reply = Reply::new(ReplyCode::COMMAND_OK, "Command okay.");
        assert_eq!(reply.to_bytes(), b"200 Command okay.\r\n");
    }

    #[test]
    fn line_ends_in_text_cannot_forge_a_reply() {
        let reply = Reply::new(ReplyCode::COMMAND_OK, "a\r\n230 forged");
        assert_eq!(reply.to_bytes(), b"200 a  230 forged\r\n");
    }

    #[test]
    fn multiline_encoding_follows_rfc_959() {
        let reply = Reply::multiline(
            ReplyCode::SYSTEM_STATUS,
            ["Features:", "EPSV", "UTF8", "End"],
        );
        assert_eq!(
            reply.to_bytes(),
            b"211-Features:\r\n EPSV\r\n UTF8\r\n211 End\r\n"
        );
    }

    #[test]
    fn canonical_passive_texts() {
        let addr = "192.168.1.2:50001".parse().expect("addr");
        assert_eq!(
            Reply::entering_passive_mode(addr).to_bytes(),
            b"227 Entering Passive Mode (192,168,1,2,195,81).\r\n"
        );
        assert_eq!(
            Reply::entering_extended_passive_mode(50001).to_bytes(),
            b"229 Entering Extended Passive Mode (|||50001|)\r\n"
        );
        assert_eq!(
            Reply::quoted_path(b"/a\"b", "is the current directory").to_bytes(),
            b"257 \"/a\"\"b\" is the current directory\r\n"
        );
    }
}
