//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
//! balancer sends first on a connection it forwards, naming the client it
//! came from and the address the client connected to.
//!
//! Pure: [`parse_proxy_header`] reads a header from the bytes that arrived
//! so far, and [`ProxyHeaderReader`] feeds it bytes as they come, telling
//! how many more to read so that not one byte past the header is read: the
//! FTP session (or the upload, on a data connection) starts right after it.
//! [`ProxyHeader::encode`] writes a header, for tests and for proxies.
//!
//! Which peers may send a header is the relay's decision
//! ([`RelayConfig::proxy_from`](crate::RelayConfig::proxy_from)), not this
//! module's: it parses whatever it is given, within bounds.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The first twelve bytes of a version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version 1 header, its CRLF included (the specification's
/// bound: `PROXY TCP6`, two full IPv6 addresses and two ports).
pub const MAX_V1_LENGTH: usize = 107;

/// The most bytes a version 2 header may carry after its fixed sixteen:
/// the addresses (216 bytes at most, for Unix sockets) and TLVs, which are
/// skipped. Load balancers send a few dozen bytes of TLVs (AWS adds a VPC
/// endpoint id, HAProxy a unique id or TLS details); 2 KiB leaves room for
/// those and keeps what a connection makes us buffer small.
pub const MAX_V2_PAYLOAD: usize = 2048;

/// The longest header of either version.
pub const MAX_HEADER_LENGTH: usize = 16 + MAX_V2_PAYLOAD;

/// The shortest header of either version: `PROXY UNKNOWN\r\n`.
const MIN_HEADER_LENGTH: usize = 15;

/// The version of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyVersion {
    /// The text version: `PROXY TCP4 SRC DST SPORT DPORT\r\n`.
    V1,
    /// The binary version, with its twelve-byte signature.
    V2,
}

/// A parsed header: its version, and the client's addresses unless the
/// proxy says the connection is its own (a v1 `UNKNOWN`, a v2 `LOCAL`
/// command or an unspecified or Unix family, such as a health check): then
/// the connection's own addresses are the ones to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    version: ProxyVersion,
    addresses: Option<(SocketAddr, SocketAddr)>,
}

impl ProxyHeader {
    /// A header of `version` for a connection from `source` to
    /// `destination`; `None` when their families differ (neither version
    /// can say that).
    pub fn proxied(
        version: ProxyVersion,
        source: SocketAddr,
        destination: SocketAddr,
    ) -> Option<Self> {
        (source.is_ipv4() == destination.is_ipv4()).then_some(Self {
            version,
            addresses: Some((source, destination)),
        })
    }

    /// A header of `version` that names no client: the connection is the
    /// proxy's own.
    pub fn local(version: ProxyVersion) -> Self {
        Self {
            version,
            addresses: None,
        }
    }

    /// The header's version.
    pub fn version(&self) -> ProxyVersion {
        self.version
    }

    /// The client's address, when the header names one.
    pub fn source(&self) -> Option<SocketAddr> {
        self.addresses.map(|(source, _)| source)
    }

    /// The address the client connected to (the proxy's), when the header
    /// names one.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.addresses.map(|(_, destination)| destination)
    }

    /// The header as a proxy sends it (a v2 one without TLVs).
    pub fn encode(&self) -> Vec<u8> {
        match self.version {
            ProxyVersion::V1 => match self.addresses {
                Some((source, destination)) => {
                    let protocol = if source.is_ipv4() { "TCP4" } else { "TCP6" };
                    format!(
                        "PROXY {protocol} {} {} {} {}\r\n",
                        source.ip(),
                        destination.ip(),
                        source.port(),
                        destination.port()
                    )
                    .into_bytes()
                }
                None => b"PROXY UNKNOWN\r\n".to_vec(),
            },
            ProxyVersion::V2 => {
                let mut bytes = V2_SIGNATURE.to_vec();
                let mut payload = Vec::new();
                let (command, family) = match self.addresses {
                    Some((source, destination)) => {
                        let family = match (source.ip(), destination.ip()) {
                            (IpAddr::V4(s), IpAddr::V4(d)) => {
                                payload.extend_from_slice(&s.octets());
                                payload.extend_from_slice(&d.octets());
                                0x11
                            }
                            (s, d) => {
                                payload.extend_from_slice(&v6(s).octets());
                                payload.extend_from_slice(&v6(d).octets());
                                0x21
                            }
                        };
                        payload.extend_from_slice(&source.port().to_be_bytes());
                        payload.extend_from_slice(&destination.port().to_be_bytes());
                        (0x21, family)
                    }
                    None => (0x20, 0x00),
                };
                bytes.push(command);
                bytes.push(family);
                // At most 36 bytes of addresses: fits.
                let length = payload.len() as u16;
                bytes.extend_from_slice(&length.to_be_bytes());
                bytes.extend_from_slice(&payload);
                bytes
            }
        }
    }
}

/// `ip` as IPv6 (an IPv4 one mapped), for a family that `proxied` made
/// the same on both sides.
fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// How far a parse got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyParse {
    /// The bytes so far begin a header that is not complete: at least
    /// `at_least` more bytes are needed, and reading exactly that many
    /// cannot read past the header.
    Incomplete {
        /// More bytes the header needs, at least (never 0).
        at_least: usize,
    },
    /// A whole header: the first `length` bytes. What follows is not the
    /// header's.
    Complete {
        /// The header.
        header: ProxyHeader,
        /// Its length in bytes.
        length: usize,
    },
}

/// Why bytes are not a PROXY header. The connection they came on is
/// closed without a reply: its peer is a proxy, not an FTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyError {
    /// The bytes start like neither version's signature.
    NotAHeader,
    /// A version 1 line that does not follow the grammar.
    MalformedV1,
    /// No CRLF within the 107 bytes a version 1 header may take.
    V1TooLong,
    /// A version 2 header of another version (the high nibble of its
    /// thirteenth byte).
    UnsupportedVersion(u8),
    /// A version 2 command other than LOCAL (0) and PROXY (1).
    UnsupportedCommand(u8),
    /// A version 2 family and transport byte that is not TCP over IPv4 or
    /// IPv6, a Unix stream, or unspecified.
    UnsupportedProtocol(u8),
    /// A version 2 address block shorter than its family's addresses.
    ShortAddresses,
    /// A version 2 header whose length exceeds [`MAX_V2_PAYLOAD`].
    V2TooLong(usize),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAHeader => f.write_str("not a PROXY protocol header"),
            Self::MalformedV1 => f.write_str("malformed PROXY v1 header"),
            Self::V1TooLong => write!(f, "PROXY v1 header without CRLF in {MAX_V1_LENGTH} bytes"),
            Self::UnsupportedVersion(version) => {
                write!(f, "PROXY v2 header of unsupported version {version}")
            }
            Self::UnsupportedCommand(command) => {
                write!(f, "PROXY v2 header with unsupported command {command}")
            }
            Self::UnsupportedProtocol(byte) => {
                write!(f, "PROXY v2 header with unsupported protocol 0x{byte:02x}")
            }
            Self::ShortAddresses => f.write_str("PROXY v2 address block too short"),
            Self::V2TooLong(length) => write!(
                f,
                "PROXY v2 header of {length} bytes after the fixed part (at most {MAX_V2_PAYLOAD})"
            ),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Whether `bytes` start with a PROXY header's signature (`PROXY ` or the
/// v2 signature): `None` while they are too few to tell. For peers that
/// may not send a header, to refuse one rather than read it as FTP.
pub fn starts_like_proxy_header(bytes: &[u8]) -> Option<bool> {
    for signature in [&b"PROXY "[..], &V2_SIGNATURE[..]] {
        let common = bytes.len().min(signature.len());
        if bytes[..common] == signature[..common] {
            if common == signature.len() {
                return Some(true);
            }
            return None;
        }
    }
    Some(false)
}

/// Parses the header at the start of `bytes`, the bytes of a connection
/// that arrived so far. Looks at no byte past the header; fails as soon as
/// the bytes cannot begin one.
pub fn parse_proxy_header(bytes: &[u8]) -> Result<ProxyParse, ProxyError> {
    match bytes.first() {
        None => Ok(ProxyParse::Incomplete {
            at_least: MIN_HEADER_LENGTH,
        }),
        Some(b'P') => parse_v1(bytes),
        Some(b'\r') => parse_v2(bytes),
        Some(_) => Err(ProxyError::NotAHeader),
    }
}

/// Version 1: `"PROXY" SP ("TCP4" | "TCP6") SP SRC SP DST SP SPORT SP DPORT
/// CRLF`, or `"PROXY UNKNOWN"` and anything up to the CRLF; at most 107
/// bytes in all.
fn parse_v1(bytes: &[u8]) -> Result<ProxyParse, ProxyError> {
    const PREFIX: &[u8] = b"PROXY ";
    let common = bytes.len().min(PREFIX.len());
    if bytes[..common] != PREFIX[..common] {
        return Err(ProxyError::NotAHeader);
    }
    let window = &bytes[..bytes.len().min(MAX_V1_LENGTH)];
    for (at, &byte) in window.iter().enumerate() {
        match byte {
            b'\r' => match window.get(at + 1) {
                Some(b'\n') => {
                    return v1_line(&window[..at]).map(|header| ProxyParse::Complete {
                        header,
                        length: at + 2,
                    });
                }
                Some(_) => return Err(ProxyError::MalformedV1),
                None => {}
            },
            // Printable ASCII only: anything else cannot be in a header,
            // and need not be waited for.
            0x20..=0x7e => {}
            _ => return Err(ProxyError::MalformedV1),
        }
    }
    if window.len() == MAX_V1_LENGTH {
        return Err(ProxyError::V1TooLong);
    }
    // A CR last can only be the header's own: its LF ends it. Otherwise the
    // CRLF is still to come.
    let ending = if window.last() == Some(&b'\r') { 1 } else { 2 };
    Ok(ProxyParse::Incomplete {
        at_least: MIN_HEADER_LENGTH.saturating_sub(window.len()).max(ending),
    })
}

/// The fields of a version 1 line, without its CRLF.
fn v1_line(line: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let text = std::str::from_utf8(line).map_err(|_| ProxyError::MalformedV1)?;
    let rest = text.strip_prefix("PROXY ").ok_or(ProxyError::MalformedV1)?;
    // The specification: whatever follows UNKNOWN is to be ignored.
    if rest == "UNKNOWN" || rest.starts_with("UNKNOWN ") {
        return Ok(ProxyHeader::local(ProxyVersion::V1));
    }
    let fields: Vec<&str> = rest.split(' ').collect();
    let [protocol, source, destination, source_port, destination_port] = fields[..] else {
        return Err(ProxyError::MalformedV1);
    };
    let (source, destination) = match protocol {
        "TCP4" => (
            IpAddr::V4(
                source
                    .parse::<Ipv4Addr>()
                    .map_err(|_| ProxyError::MalformedV1)?,
            ),
            IpAddr::V4(
                destination
                    .parse::<Ipv4Addr>()
                    .map_err(|_| ProxyError::MalformedV1)?,
            ),
        ),
        "TCP6" => (
            IpAddr::V6(
                source
                    .parse::<Ipv6Addr>()
                    .map_err(|_| ProxyError::MalformedV1)?,
            ),
            IpAddr::V6(
                destination
                    .parse::<Ipv6Addr>()
                    .map_err(|_| ProxyError::MalformedV1)?,
            ),
        ),
        _ => return Err(ProxyError::MalformedV1),
    };
    let source = SocketAddr::new(source, v1_port(source_port)?);
    let destination = SocketAddr::new(destination, v1_port(destination_port)?);
    ProxyHeader::proxied(ProxyVersion::V1, source, destination).ok_or(ProxyError::MalformedV1)
}

/// A port: decimal digits, no leading zero, at most 65535.
fn v1_port(text: &str) -> Result<u16, ProxyError> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return Err(ProxyError::MalformedV1);
    }
    text.parse().map_err(|_| ProxyError::MalformedV1)
}

/// Version 2: the signature, version and command, family and transport, a
/// big-endian length, then that many bytes: the addresses, then TLVs
/// (skipped).
fn parse_v2(bytes: &[u8]) -> Result<ProxyParse, ProxyError> {
    let common = bytes.len().min(V2_SIGNATURE.len());
    if bytes[..common] != V2_SIGNATURE[..common] {
        return Err(ProxyError::NotAHeader);
    }
    let local = match bytes.get(12) {
        None => None,
        Some(&byte) => {
            if byte >> 4 != 2 {
                return Err(ProxyError::UnsupportedVersion(byte >> 4));
            }
            match byte & 0x0f {
                0 => Some(true),
                1 => Some(false),
                command => return Err(ProxyError::UnsupportedCommand(command)),
            }
        }
    };
    // The family and transport: what the address block holds. A LOCAL
    // header's is ignored, as the specification says.
    let needed = match (local, bytes.get(13)) {
        (Some(false), Some(&byte)) => Some(match byte {
            0x00 => 0,
            0x11 => 12,
            0x21 => 36,
            0x31 => 216,
            other => return Err(ProxyError::UnsupportedProtocol(other)),
        }),
        _ => None,
    };
    let Some(length) = bytes.get(14..16) else {
        return Ok(ProxyParse::Incomplete {
            at_least: 16 - bytes.len(),
        });
    };
    let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
    if length > MAX_V2_PAYLOAD {
        return Err(ProxyError::V2TooLong(length));
    }
    if needed.is_some_and(|needed| length < needed) {
        return Err(ProxyError::ShortAddresses);
    }
    let total = 16 + length;
    if bytes.len() < total {
        return Ok(ProxyParse::Incomplete {
            at_least: total - bytes.len(),
        });
    }
    let block = &bytes[16..total];
    let addresses = match (local, bytes[13]) {
        (Some(false), 0x11) => {
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    block[at],
                    block[at + 1],
                    block[at + 2],
                    block[at + 3],
                ))
            };
            let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
            Some((
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
            ))
        }
        (Some(false), 0x21) => {
            let ip = |at: usize| {
                let mut octets = [0; 16];
                octets.copy_from_slice(&block[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
            Some((
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            ))
        }
        // LOCAL, an unspecified family, a Unix socket: no client to name.
        _ => None,
    };
    let header = ProxyHeader {
        version: ProxyVersion::V2,
        addresses,
    };
    Ok(ProxyParse::Complete {
        header,
        length: total,
    })
}

/// Reads a header from bytes as they arrive, never buffering more than
/// [`MAX_HEADER_LENGTH`]. Read at most [`ProxyHeaderReader::wanted`] bytes
/// at a time and nothing past the header is read.
#[derive(Debug, Clone, Default)]
pub struct ProxyHeaderReader {
    buffer: Vec<u8>,
    at_least: Option<usize>,
}

/// What the bytes pushed so far make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyStep {
    /// More bytes are needed: read at most [`ProxyHeaderReader::wanted`].
    NeedMore,
    /// The header is complete: the first `used` bytes of the last push
    /// ended it; the rest of them (if more were pushed than wanted) are
    /// the connection's.
    Done {
        /// The header.
        header: ProxyHeader,
        /// Bytes of the last push that were the header's.
        used: usize,
    },
}

impl ProxyHeaderReader {
    /// A reader that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes that arrived. After `Done` or an error, start anew.
    pub fn push(&mut self, bytes: &[u8]) -> Result<ProxyStep, ProxyError> {
        let before = self.buffer.len();
        let room = MAX_HEADER_LENGTH - before;
        self.buffer
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        match parse_proxy_header(&self.buffer) {
            Ok(ProxyParse::Incomplete { at_least }) => {
                // Within the bound: longer headers fail in the parser.
                self.at_least = Some(at_least);
                Ok(ProxyStep::NeedMore)
            }
            Ok(ProxyParse::Complete { header, length }) => {
                self.buffer = Vec::new();
                self.at_least = None;
                Ok(ProxyStep::Done {
                    header,
                    used: length - before,
                })
            }
            Err(error) => {
                self.buffer = Vec::new();
                self.at_least = None;
                Err(error)
            }
        }
    }

    /// How many bytes to read next, at most: all of them the header's.
    pub fn wanted(&self) -> usize {
        self.at_least.unwrap_or(MIN_HEADER_LENGTH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    fn complete(bytes: &[u8]) -> (ProxyHeader, usize) {
        match parse_proxy_header(bytes) {
            Ok(ProxyParse::Complete { header, length }) => (header, length),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn v1_known_answers() {
        let (header, length) =
            complete(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 21\r\nUSER a\r\n");
        assert_eq!(length, 44);
        assert_eq!(header.version(), ProxyVersion::V1);
        assert_eq!(header.source(), Some(addr("192.0.2.7:56324")));
        assert_eq!(header.destination(), Some(addr("198.51.100.1:21")));
        let (header, _) = complete(b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n");
        assert_eq!(header.source(), Some(addr("[2001:db8::1]:65535")));
        let (header, length) = complete(b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n");
        assert_eq!((header.source(), length), (None, 31));
        assert_eq!(complete(b"PROXY UNKNOWN\r\n").1, 15);
    }

    #[test]
    fn v1_refusals() {
        for bytes in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n"[..],
            b"PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n",
            b"PROXY TCP4 2001:db8::1 ::1 1 2\r\n",
            b"PROXY TCP6 192.0.2.7 192.0.2.8 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 192.0.2.8 65536 2\r\n",
            b"PROXY TCP4 192.0.2.7 192.0.2.8 01 2\r\n",
            b"PROXY TCP4 192.0.2.7 192.0.2.8 +1 2\r\n",
            b"PROXY UDP4 192.0.2.7 192.0.2.8 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 192.0.2.8 1 2\n",
            b"PROXY TCP4 192.0.2.7 192.0.2.8 1 2\rX",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY \xff\r\n",
        ] {
            assert_eq!(
                parse_proxy_header(bytes),
                Err(ProxyError::MalformedV1),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(parse_proxy_header(b"PROXX"), Err(ProxyError::NotAHeader));
        assert_eq!(
            parse_proxy_header(b"USER a\r\n"),
            Err(ProxyError::NotAHeader)
        );
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 100]].concat();
        assert_eq!(parse_proxy_header(&long), Err(ProxyError::V1TooLong));
    }

    #[test]
    fn v2_known_answers() {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0x21, 0x11, 0, 12 + 7]);
        bytes.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0, 21]);
        // A TLV (PP2_TYPE_AUTHORITY, "a.b"), skipped.
        bytes.extend_from_slice(&[0x02, 0, 3, b'a', b'.', b'b', 0]);
        bytes.extend_from_slice(b"USER");
        let (header, length) = complete(&bytes);
        assert_eq!(length, 16 + 19);
        assert_eq!(header.source(), Some(addr("192.0.2.7:56324")));
        assert_eq!(header.destination(), Some(addr("198.51.100.1:21")));
        // LOCAL: whatever the family says, no client.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x11, 0, 0]);
        assert_eq!(complete(&local), (ProxyHeader::local(ProxyVersion::V2), 16));
        let mut unix = V2_SIGNATURE.to_vec();
        unix.extend_from_slice(&[0x21, 0x31, 0, 216]);
        unix.extend_from_slice(&[0; 216]);
        assert_eq!(complete(&unix).0.source(), None);
    }

    #[test]
    fn v2_refusals() {
        let header = |bytes: [u8; 4]| [&V2_SIGNATURE[..], &bytes].concat();
        assert_eq!(
            parse_proxy_header(&header([0x11, 0x11, 0, 12])),
            Err(ProxyError::UnsupportedVersion(1))
        );
        assert_eq!(
            parse_proxy_header(&header([0x22, 0x11, 0, 12])),
            Err(ProxyError::UnsupportedCommand(2))
        );
        assert_eq!(
            parse_proxy_header(&header([0x21, 0x12, 0, 12])),
            Err(ProxyError::UnsupportedProtocol(0x12))
        );
        assert_eq!(
            parse_proxy_header(&header([0x21, 0x21, 0, 12])),
            Err(ProxyError::ShortAddresses)
        );
        assert_eq!(
            parse_proxy_header(&header([0x21, 0x11, 0x08, 0x01])),
            Err(ProxyError::V2TooLong(2049))
        );
        assert_eq!(
            parse_proxy_header(b"\r\n\r\nX"),
            Err(ProxyError::NotAHeader)
        );
    }

    #[test]
    fn the_reader_reads_nothing_past_the_header() {
        let header = ProxyHeader::proxied(
            ProxyVersion::V1,
            addr("127.0.0.2:40000"),
            addr("127.0.0.1:2121"),
        )
        .expect("same family");
        let mut stream = header.encode();
        let length = stream.len();
        stream.extend_from_slice(b"USER anonymous\r\n");
        let mut reader = ProxyHeaderReader::new();
        let mut at = 0;
        loop {
            let chunk = &stream[at..at + reader.wanted()];
            at += chunk.len();
            assert!(at <= length, "read past the header");
            match reader.push(chunk).expect("valid") {
                ProxyStep::NeedMore => {}
                ProxyStep::Done { header: got, used } => {
                    assert_eq!((got, used), (header, chunk.len()));
                    break;
                }
            }
        }
        assert_eq!(at, length);
    }

    #[test]
    fn signatures_are_told_apart() {
        assert_eq!(starts_like_proxy_header(b"PRO"), None);
        assert_eq!(starts_like_proxy_header(b"PROXY "), Some(true));
        assert_eq!(starts_like_proxy_header(b"PROT P\r\n"), Some(false));
        assert_eq!(starts_like_proxy_header(b"\r\n\r\n"), None);
        assert_eq!(starts_like_proxy_header(&V2_SIGNATURE), Some(true));
        assert_eq!(starts_like_proxy_header(b"\r\nUSER"), Some(false));
        assert_eq!(starts_like_proxy_header(b"USER a"), Some(false));
        assert_eq!(starts_like_proxy_header(b""), None);
    }
}
