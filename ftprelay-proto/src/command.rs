//! Typed FTP commands, and their encoding back to control lines.
//!
//! Every argument that names a file or carries client text is kept as bytes
//! ([`Bytes`]): devices send Latin-1, GBK and worse, and a lossy conversion
//! would lose the name the processor is owed.

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};

use bytes::Bytes;

/// A non-empty argument of raw bytes that contains no line end: a path, a
/// user name, a SITE string. Decoded for display only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Arg(Bytes);

impl Arg {
    /// Wraps `bytes` if they can travel as one argument: non-empty, without
    /// CR or LF.
    pub fn new(bytes: impl Into<Bytes>) -> Option<Self> {
        let bytes = bytes.into();
        let fits = !bytes.is_empty() && !bytes.iter().any(|&b| b == b'\r' || b == b'\n');
        fits.then_some(Self(bytes))
    }

    /// The raw bytes, exactly as the client sent them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw bytes as a cheap, shareable handle.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// A display form: UTF-8 where it is valid, escapes elsewhere.
    pub fn escaped(&self) -> String {
        self.0.escape_ascii().to_string()
    }
}

impl fmt::Debug for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// The representation type of `TYPE` (RFC 959 §3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RepresentationType {
    /// `A [form]`: ASCII.
    Ascii(Option<FormCode>),
    /// `E [form]`: EBCDIC.
    Ebcdic(Option<FormCode>),
    /// `I`: image (binary).
    Image,
    /// `L <byte size>`: local byte size.
    Local(u8),
}

/// The format control of `TYPE A` and `TYPE E`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FormCode {
    /// `N`: non-print.
    NonPrint,
    /// `T`: Telnet format effectors.
    Telnet,
    /// `C`: carriage control (ASA).
    CarriageControl,
}

/// The file structure of `STRU` (RFC 959 §3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileStructure {
    /// `F`: no record structure.
    File,
    /// `R`: record structure.
    Record,
    /// `P`: page structure.
    Page,
}

/// The transfer mode of `MODE` (RFC 959 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransferMode {
    /// `S`: stream.
    Stream,
    /// `B`: block.
    Block,
    /// `C`: compressed.
    Compressed,
}

/// The data channel protection level of `PROT` (RFC 2228).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtectionLevel {
    /// `C`: clear.
    Clear,
    /// `S`: safe (integrity).
    Safe,
    /// `E`: confidential.
    Confidential,
    /// `P`: private (TLS).
    Private,
}

/// The argument of `EPSV` (RFC 2428 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EpsvArg {
    /// `EPSV 1` or `EPSV 2`: listen on this network protocol.
    Protocol(NetworkProtocol),
    /// `EPSV ALL`: from now on only EPSV is used.
    All,
}

/// The network protocol numbers of RFC 2428.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NetworkProtocol {
    /// `1`: IPv4.
    Ipv4,
    /// `2`: IPv6.
    Ipv6,
}

impl NetworkProtocol {
    /// The protocol of an address.
    pub fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Self::Ipv4,
            SocketAddr::V6(_) => Self::Ipv6,
        }
    }

    fn number(self) -> u8 {
        match self {
            Self::Ipv4 => 1,
            Self::Ipv6 => 2,
        }
    }
}

/// One FTP command, as parsed from a control line.
///
/// Verbs are case-insensitive on input and upper-case on output. A verb this
/// crate does not know is kept as [`Command::Unknown`], not rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    // RFC 959: access control.
    /// `USER <name>`
    User(Arg),
    /// `PASS [<password>]` (an empty password is allowed).
    Pass(Bytes),
    /// `ACCT <account>`
    Acct(Arg),
    /// `CWD <path>`
    Cwd(Arg),
    /// `CDUP`
    Cdup,
    /// `SMNT <path>`
    Smnt(Arg),
    /// `REIN`
    Rein,
    /// `QUIT`
    Quit,
    // RFC 959: transfer parameters.
    /// `PORT h1,h2,h3,h4,p1,p2`
    Port(SocketAddrV4),
    /// `PASV`
    Pasv,
    /// `TYPE <type>`
    Type(RepresentationType),
    /// `STRU <structure>`
    Stru(FileStructure),
    /// `MODE <mode>`
    Mode(TransferMode),
    // RFC 959: service commands.
    /// `RETR <path>`
    Retr(Arg),
    /// `STOR <path>`
    Stor(Arg),
    /// `STOU [<path>]`
    Stou(Option<Arg>),
    /// `APPE <path>`
    Appe(Arg),
    /// `ALLO <size> [R <record size>]`
    Allo {
        /// The number of bytes to reserve.
        size: u64,
        /// The maximum record or page size.
        record_size: Option<u64>,
    },
    /// `REST <marker>` (a byte offset, RFC 3659).
    Rest(u64),
    /// `RNFR <path>`
    Rnfr(Arg),
    /// `RNTO <path>`
    Rnto(Arg),
    /// `ABOR`
    Abor,
    /// `DELE <path>`
    Dele(Arg),
    /// `RMD <path>`
    Rmd(Arg),
    /// `MKD <path>`
    Mkd(Arg),
    /// `PWD`
    Pwd,
    /// `LIST [<args>]`
    List(Option<Arg>),
    /// `NLST [<args>]`
    Nlst(Option<Arg>),
    /// `SITE <string>`
    Site(Arg),
    /// `SYST`
    Syst,
    /// `STAT [<path>]`
    Stat(Option<Arg>),
    /// `HELP [<string>]`
    Help(Option<Arg>),
    /// `NOOP`
    Noop,
    // RFC 2228 and RFC 4217: security extensions.
    /// `AUTH <mechanism>`
    Auth(Arg),
    /// `ADAT <data>`
    Adat(Arg),
    /// `PBSZ <size>`
    Pbsz(u32),
    /// `PROT <level>`
    Prot(ProtectionLevel),
    /// `CCC`
    Ccc,
    /// `MIC <data>`
    Mic(Arg),
    /// `CONF <data>`
    Conf(Arg),
    /// `ENC <data>`
    Enc(Arg),
    // RFC 2389: feature negotiation.
    /// `FEAT`
    Feat,
    /// `OPTS <command> [<options>]`
    Opts {
        /// The command whose options are set, e.g. `UTF8`.
        command: Arg,
        /// The options, e.g. `ON`.
        options: Option<Arg>,
    },
    // RFC 2428: IPv6 and NATs.
    /// `EPRT |<protocol>|<address>|<port>|`
    Eprt(SocketAddr),
    /// `EPSV [<protocol> | ALL]`
    Epsv(Option<EpsvArg>),
    // RFC 3659: extensions.
    /// `SIZE <path>`
    Size(Arg),
    /// `MDTM <path>`
    Mdtm(Arg),
    /// `MLST [<path>]`
    Mlst(Option<Arg>),
    /// `MLSD [<path>]`
    Mlsd(Option<Arg>),
    // draft-somers-ftp-mfxx.
    /// `MFMT <YYYYMMDDHHMMSS[.sss]> <path>`
    Mfmt {
        /// The modification time as sent: 14 digits, optionally a fraction.
        time: Arg,
        /// The file.
        path: Arg,
    },
    // RFC 775 aliases, still sent by Windows clients.
    /// `XPWD`
    Xpwd,
    /// `XCWD <path>`
    Xcwd(Arg),
    /// `XCUP`
    Xcup,
    /// `XMKD <path>`
    Xmkd(Arg),
    /// `XRMD <path>`
    Xrmd(Arg),
    /// A verb this crate does not know.
    Unknown {
        /// The verb as sent.
        verb: Arg,
        /// Everything after the first space, if anything.
        argument: Option<Arg>,
    },
}

impl Command {
    /// The verb, upper-case (for an unknown verb: as sent).
    pub fn verb(&self) -> &[u8] {
        use Command::*;
        match self {
            User(_) => b"USER",
            Pass(_) => b"PASS",
            Acct(_) => b"ACCT",
            Cwd(_) => b"CWD",
            Cdup => b"CDUP",
            Smnt(_) => b"SMNT",
            Rein => b"REIN",
            Quit => b"QUIT",
            Port(_) => b"PORT",
            Pasv => b"PASV",
            Type(_) => b"TYPE",
            Stru(_) => b"STRU",
            Mode(_) => b"MODE",
            Retr(_) => b"RETR",
            Stor(_) => b"STOR",
            Stou(_) => b"STOU",
            Appe(_) => b"APPE",
            Allo { .. } => b"ALLO",
            Rest(_) => b"REST",
            Rnfr(_) => b"RNFR",
            Rnto(_) => b"RNTO",
            Abor => b"ABOR",
            Dele(_) => b"DELE",
            Rmd(_) => b"RMD",
            Mkd(_) => b"MKD",
            Pwd => b"PWD",
            List(_) => b"LIST",
            Nlst(_) => b"NLST",
            Site(_) => b"SITE",
            Syst => b"SYST",
            Stat(_) => b"STAT",
            Help(_) => b"HELP",
            Noop => b"NOOP",
            Auth(_) => b"AUTH",
            Adat(_) => b"ADAT",
            Pbsz(_) => b"PBSZ",
            Prot(_) => b"PROT",
            Ccc => b"CCC",
            Mic(_) => b"MIC",
            Conf(_) => b"CONF",
            Enc(_) => b"ENC",
            Feat => b"FEAT",
            Opts { .. } => b"OPTS",
            Eprt(_) => b"EPRT",
            Epsv(_) => b"EPSV",
            Size(_) => b"SIZE",
            Mdtm(_) => b"MDTM",
            Mlst(_) => b"MLST",
            Mlsd(_) => b"MLSD",
            Mfmt { .. } => b"MFMT",
            Xpwd => b"XPWD",
            Xcwd(_) => b"XCWD",
            Xcup => b"XCUP",
            Xmkd(_) => b"XMKD",
            Xrmd(_) => b"XRMD",
            Unknown { verb, .. } => verb.as_bytes(),
        }
    }

    /// Appends this command as a control line, CRLF included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use Command::*;
        out.extend_from_slice(self.verb());
        let mut arg = |bytes: &[u8]| {
            out.push(b' ');
            out.extend_from_slice(bytes);
        };
        match self {
            Cdup | Rein | Quit | Pasv | Abor | Pwd | Syst | Noop | Ccc | Feat | Xpwd | Xcup => {}
            User(a) | Acct(a) | Cwd(a) | Smnt(a) | Retr(a) | Stor(a) | Appe(a) | Rnfr(a)
            | Rnto(a) | Dele(a) | Rmd(a) | Mkd(a) | Site(a) | Auth(a) | Adat(a) | Mic(a)
            | Conf(a) | Enc(a) | Size(a) | Mdtm(a) | Xcwd(a) | Xmkd(a) | Xrmd(a) => {
                arg(a.as_bytes())
            }
            Stou(a) | List(a) | Nlst(a) | Stat(a) | Help(a) | Mlst(a) | Mlsd(a) => {
                if let Some(a) = a {
                    arg(a.as_bytes());
                }
            }
            Pass(password) => {
                if !password.is_empty() {
                    arg(password);
                }
            }
            Port(addr) => {
                let [h1, h2, h3, h4] = addr.ip().octets();
                let [p1, p2] = addr.port().to_be_bytes();
                arg(format!("{h1},{h2},{h3},{h4},{p1},{p2}").as_bytes());
            }
            Type(t) => arg(type_code(*t).as_bytes()),
            Stru(s) => arg(match s {
                FileStructure::File => b"F",
                FileStructure::Record => b"R",
                FileStructure::Page => b"P",
            }),
            Mode(m) => arg(match m {
                TransferMode::Stream => b"S",
                TransferMode::Block => b"B",
                TransferMode::Compressed => b"C",
            }),
            Allo { size, record_size } => match record_size {
                Some(record) => arg(format!("{size} R {record}").as_bytes()),
                None => arg(size.to_string().as_bytes()),
            },
            Rest(marker) => arg(marker.to_string().as_bytes()),
            Pbsz(size) => arg(size.to_string().as_bytes()),
            Prot(level) => arg(match level {
                ProtectionLevel::Clear => b"C",
                ProtectionLevel::Safe => b"S",
                ProtectionLevel::Confidential => b"E",
                ProtectionLevel::Private => b"P",
            }),
            Opts { command, options } => {
                arg(command.as_bytes());
                if let Some(options) = options {
                    arg(options.as_bytes());
                }
            }
            Eprt(addr) => {
                let protocol = NetworkProtocol::of(addr).number();
                arg(format!("|{protocol}|{}|{}|", addr.ip(), addr.port()).as_bytes());
            }
            Epsv(None) => {}
            Epsv(Some(EpsvArg::All)) => arg(b"ALL"),
            Epsv(Some(EpsvArg::Protocol(p))) => arg(&[b'0' + p.number()]),
            Mfmt { time, path } => {
                arg(time.as_bytes());
                arg(path.as_bytes());
            }
            Unknown { argument, .. } => {
                if let Some(a) = argument {
                    arg(a.as_bytes());
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The command as a log line: the line it encodes to, non-ASCII bytes
/// escaped, and the password of PASS masked.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Command::Pass(_) = self {
            return f.write_str("PASS ****");
        }
        let mut line = Vec::new();
        self.encode(&mut line);
        let line = line.strip_suffix(b"\r\n").unwrap_or(&line);
        write!(f, "{}", line.escape_ascii())
    }
}

fn type_code(t: RepresentationType) -> String {
    let form = |f: Option<FormCode>| match f {
        None => "",
        Some(FormCode::NonPrint) => " N",
        Some(FormCode::Telnet) => " T",
        Some(FormCode::CarriageControl) => " C",
    };
    match t {
        RepresentationType::Ascii(f) => format!("A{}", form(f)),
        RepresentationType::Ebcdic(f) => format!("E{}", form(f)),
        RepresentationType::Image => "I".to_owned(),
        RepresentationType::Local(size) => format!("L {size}"),
    }
}
