//! The nom parser from one framed control line to a [`Command`].
//!
//! Each function parses one grammar rule, quoted in its doc comment from the
//! RFC that defines it. Leniency is commented on the line that allows it.
//! nom's own errors stay private: a failed parse becomes a [`CommandError`],
//! which knows its reply.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use bytes::Bytes;
use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while_m_n, take_while1};
use nom::character::complete::{char, space1, u8 as dec_u8, u16 as dec_u16, u32 as dec_u32, u64};
use nom::combinator::{all_consuming, map, map_opt, opt, value};
use nom::sequence::preceded;

use crate::command::{
    Arg, Command, EpsvArg, FileStructure, FormCode, NetworkProtocol, ProtectionLevel,
    RepresentationType, TransferMode,
};
use crate::error::CommandError;

type Res<'a, T> = nom::IResult<&'a [u8], T>;

impl Command {
    /// Parses one control line (without its line end, as [`crate::LineFramer`]
    /// yields it).
    ///
    /// `command = verb [SP argument]` (RFC 959 §5.3.1).
    ///
    /// Verbs are matched without regard to case. Out of spec, but sent by real
    /// clients: trailing white space is ignored and several spaces may separate
    /// the verb from its argument.
    pub fn parse(line: &Bytes) -> Result<Command, CommandError> {
        let trimmed = trim_ascii_end(line);
        let (verb, argument) = match memchr::memchr(b' ', trimmed) {
            Some(space) => (&trimmed[..space], trim_ascii_start(&trimmed[space + 1..])),
            None => (trimmed, &[][..]),
        };
        if verb.is_empty() {
            return Err(CommandError::Empty);
        }
        // A CR inside a line is never part of a name: it is an injection attempt
        // or a broken client, and an argument may not carry it.
        if memchr::memchr(b'\r', trimmed).is_some() {
            return Err(CommandError::InvalidArgument);
        }
        let argument = Argument {
            line,
            bytes: argument,
        };
        dispatch(verb, argument)
    }
}

/// The argument text after the verb, with the line it came from so that byte
/// arguments can share the line's buffer instead of copying it.
#[derive(Clone, Copy)]
struct Argument<'a> {
    line: &'a Bytes,
    bytes: &'a [u8],
}

impl<'a> Argument<'a> {
    fn optional(self) -> Option<Arg> {
        self.arg_of(self.bytes)
    }

    fn required(self) -> Result<Arg, CommandError> {
        self.optional().ok_or(CommandError::MissingArgument)
    }

    fn arg_of(self, part: &[u8]) -> Option<Arg> {
        if part.is_empty() {
            return None;
        }
        Arg::new(self.line.slice_ref(part))
    }

    /// Runs `parser` over the whole argument; anything left over is a syntax
    /// error.
    fn parse_with<T>(
        self,
        parser: impl Parser<&'a [u8], Output = T, Error = nom::error::Error<&'a [u8]>>,
    ) -> Result<T, CommandError> {
        if self.bytes.is_empty() {
            return Err(CommandError::MissingArgument);
        }
        all_consuming(parser)
            .parse(self.bytes)
            .map(|(_, value)| value)
            .map_err(|_| CommandError::InvalidArgument)
    }
}

fn dispatch(verb: &[u8], arg: Argument<'_>) -> Result<Command, CommandError> {
    use Command::*;
    let Some(upper) = verb_key(verb) else {
        return unknown(verb, arg);
    };
    Ok(match &upper[..verb.len()] {
        b"USER" => User(arg.required()?),
        // An empty password is allowed: `PASS` alone (embedded clients).
        b"PASS" => Pass(arg.optional().map(|a| a.to_bytes()).unwrap_or_default()),
        b"ACCT" => Acct(arg.required()?),
        b"CWD" => Cwd(arg.required()?),
        b"CDUP" => Cdup,
        b"SMNT" => Smnt(arg.required()?),
        b"REIN" => Rein,
        b"QUIT" => Quit,
        b"PORT" => Port(arg.parse_with(host_port)?),
        b"PASV" => Pasv,
        b"TYPE" => Type(code(arg, type_code)?),
        b"STRU" => Stru(code(arg, structure_code)?),
        b"MODE" => Mode(code(arg, mode_code)?),
        b"RETR" => Retr(arg.required()?),
        b"STOR" => Stor(arg.required()?),
        b"STOU" => Stou(arg.optional()),
        b"APPE" => Appe(arg.required()?),
        b"ALLO" => {
            let (size, record_size) = arg.parse_with(allocation)?;
            Allo { size, record_size }
        }
        b"REST" => Rest(arg.parse_with(u64)?),
        b"RNFR" => Rnfr(arg.required()?),
        b"RNTO" => Rnto(arg.required()?),
        b"ABOR" => Abor,
        b"DELE" => Dele(arg.required()?),
        b"RMD" => Rmd(arg.required()?),
        b"MKD" => Mkd(arg.required()?),
        b"PWD" => Pwd,
        b"LIST" => List(arg.optional()),
        b"NLST" => Nlst(arg.optional()),
        b"SITE" => Site(arg.required()?),
        b"SYST" => Syst,
        b"STAT" => Stat(arg.optional()),
        b"HELP" => Help(arg.optional()),
        b"NOOP" => Noop,
        b"AUTH" => Auth(arg.required()?),
        b"ADAT" => Adat(arg.required()?),
        b"PBSZ" => Pbsz(arg.parse_with(dec_u32)?),
        b"PROT" => Prot(code(arg, protection_code)?),
        b"CCC" => Ccc,
        b"MIC" => Mic(arg.required()?),
        b"CONF" => Conf(arg.required()?),
        b"ENC" => Enc(arg.required()?),
        b"FEAT" => Feat,
        b"OPTS" => {
            let (command, options) = two_tokens(arg)?;
            Opts { command, options }
        }
        b"EPRT" => Eprt(eprt(arg)?),
        b"EPSV" => Epsv(epsv(arg)?),
        b"SIZE" => Size(arg.required()?),
        b"MDTM" => Mdtm(arg.required()?),
        b"MLST" => Mlst(arg.optional()),
        b"MLSD" => Mlsd(arg.optional()),
        b"MFMT" => {
            let (time, path) = two_tokens(arg)?;
            let path = path.ok_or(CommandError::MissingArgument)?;
            arg.parse_with_part(time.as_bytes(), modification_time)?;
            Mfmt { time, path }
        }
        b"XPWD" => Xpwd,
        b"XCWD" => Xcwd(arg.required()?),
        b"XCUP" => Xcup,
        b"XMKD" => Xmkd(arg.required()?),
        b"XRMD" => Xrmd(arg.required()?),
        _ => return unknown(verb, arg),
    })
}

impl<'a> Argument<'a> {
    fn parse_with_part<T>(
        self,
        part: &'a [u8],
        parser: impl Parser<&'a [u8], Output = T, Error = nom::error::Error<&'a [u8]>>,
    ) -> Result<T, CommandError> {
        Argument {
            bytes: part,
            ..self
        }
        .parse_with(parser)
    }
}

/// Upper-cases a verb of three or four ASCII letters into a fixed array, so
/// that matching costs no allocation; `None` for anything else.
fn verb_key(verb: &[u8]) -> Option<[u8; 4]> {
    if !(3..=4).contains(&verb.len()) || !verb.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let mut key = [0; 4];
    for (k, v) in key.iter_mut().zip(verb) {
        *k = v.to_ascii_uppercase();
    }
    Some(key)
}

fn unknown(verb: &[u8], arg: Argument<'_>) -> Result<Command, CommandError> {
    Ok(Command::Unknown {
        verb: arg.arg_of(verb).ok_or(CommandError::Empty)?,
        argument: arg.optional(),
    })
}

/// `<command> [SP <options>]`: the first token, then the rest (OPTS, MFMT).
fn two_tokens(arg: Argument<'_>) -> Result<(Arg, Option<Arg>), CommandError> {
    let bytes = arg.bytes;
    let (first, second) = match memchr::memchr(b' ', bytes) {
        Some(space) => (&bytes[..space], trim_ascii_start(&bytes[space + 1..])),
        None => (bytes, &[][..]),
    };
    let first = arg.arg_of(first).ok_or(CommandError::MissingArgument)?;
    Ok((first, arg.arg_of(second)))
}

/// A single-letter code: a syntax error if it is not one token, `504` if it
/// is a code this grammar does not define.
fn code<'a, T>(
    arg: Argument<'a>,
    parser: impl Parser<&'a [u8], Output = T, Error = nom::error::Error<&'a [u8]>>,
) -> Result<T, CommandError> {
    arg.parse_with(parser).map_err(|error| match error {
        CommandError::InvalidArgument => CommandError::UnsupportedParameter,
        other => other,
    })
}

/// `<host-port> ::= <host-number>,<port-number>` where
/// `<host-number> ::= <number>,<number>,<number>,<number>` and
/// `<port-number> ::= <number>,<number>` (RFC 959 §5.3.2).
fn host_port(input: &[u8]) -> Res<'_, SocketAddrV4> {
    let comma = || char(',');
    map(
        (
            dec_u8,
            preceded(comma(), dec_u8),
            preceded(comma(), dec_u8),
            preceded(comma(), dec_u8),
            preceded(comma(), dec_u8),
            preceded(comma(), dec_u8),
        ),
        |(h1, h2, h3, h4, p1, p2)| {
            SocketAddrV4::new(Ipv4Addr::new(h1, h2, h3, h4), u16::from_be_bytes([p1, p2]))
        },
    )
    .parse(input)
}

/// `<type-code> ::= A [<sp> <form-code>] | E [<sp> <form-code>] | I |
/// L <sp> <byte-size>` (RFC 959 §5.3.2).
fn type_code(input: &[u8]) -> Res<'_, RepresentationType> {
    alt((
        map(
            preceded(tag_no_case("A"), opt(preceded(space1, form_code))),
            RepresentationType::Ascii,
        ),
        map(
            preceded(tag_no_case("E"), opt(preceded(space1, form_code))),
            RepresentationType::Ebcdic,
        ),
        value(RepresentationType::Image, tag_no_case("I")),
        // Out of spec: `L8` without the space (seen from old Windows tools).
        map(
            preceded(tag_no_case("L"), preceded(opt(space1), dec_u8)),
            RepresentationType::Local,
        ),
    ))
    .parse(input)
}

/// `<form-code> ::= N | T | C` (RFC 959 §5.3.2).
fn form_code(input: &[u8]) -> Res<'_, FormCode> {
    alt((
        value(FormCode::NonPrint, tag_no_case("N")),
        value(FormCode::Telnet, tag_no_case("T")),
        value(FormCode::CarriageControl, tag_no_case("C")),
    ))
    .parse(input)
}

/// `<structure-code> ::= F | R | P` (RFC 959 §5.3.2).
fn structure_code(input: &[u8]) -> Res<'_, FileStructure> {
    alt((
        value(FileStructure::File, tag_no_case("F")),
        value(FileStructure::Record, tag_no_case("R")),
        value(FileStructure::Page, tag_no_case("P")),
    ))
    .parse(input)
}

/// `<mode-code> ::= S | B | C` (RFC 959 §5.3.2).
fn mode_code(input: &[u8]) -> Res<'_, TransferMode> {
    alt((
        value(TransferMode::Stream, tag_no_case("S")),
        value(TransferMode::Block, tag_no_case("B")),
        value(TransferMode::Compressed, tag_no_case("C")),
    ))
    .parse(input)
}

/// `prot-code ::= C | S | E | P` (RFC 2228 §5.4).
fn protection_code(input: &[u8]) -> Res<'_, ProtectionLevel> {
    alt((
        value(ProtectionLevel::Clear, tag_no_case("C")),
        value(ProtectionLevel::Safe, tag_no_case("S")),
        value(ProtectionLevel::Confidential, tag_no_case("E")),
        value(ProtectionLevel::Private, tag_no_case("P")),
    ))
    .parse(input)
}

/// `ALLO <SP> <decimal-integer> [<SP> R <SP> <decimal-integer>]`
/// (RFC 959 §5.3.1).
fn allocation(input: &[u8]) -> Res<'_, (u64, Option<u64>)> {
    (u64, opt(preceded((space1, tag_no_case("R"), space1), u64))).parse(input)
}

/// `time-val = 14DIGIT [ "." 1*DIGIT ]` (RFC 3659 §2.3).
fn modification_time(input: &[u8]) -> Res<'_, ()> {
    let digits = |min, max| take_while_m_n(min, max, |b: u8| b.is_ascii_digit());
    value((), (digits(14, 14), opt(preceded(tag("."), digits(1, 9))))).parse(input)
}

/// `eprt-command = "EPRT" SP <d><net-prt><d><net-addr><d><tcp-port><d>`
/// where `<d>` is any printable ASCII character, the same each time
/// (RFC 2428 §2). An unknown `<net-prt>` is answered `522`.
fn eprt(arg: Argument<'_>) -> Result<SocketAddr, CommandError> {
    let (protocol, address, port) = arg.parse_with(eprt_fields)?;
    if !matches!(protocol, 1 | 2) {
        return Err(CommandError::UnsupportedNetworkProtocol);
    }
    let ip: IpAddr = std::str::from_utf8(address)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(CommandError::InvalidArgument)?;
    match (protocol, ip) {
        (1, IpAddr::V4(_)) | (2, IpAddr::V6(_)) => Ok(SocketAddr::new(ip, port)),
        _ => Err(CommandError::InvalidArgument),
    }
}

/// The three fields of an EPRT argument, split at its delimiter.
fn eprt_fields(input: &[u8]) -> Res<'_, (u32, &[u8], u16)> {
    let (input, delimiter) = map_opt(
        take_while_m_n(1, 1, |b: u8| (33..=126).contains(&b)),
        |d: &[u8]| Some(d[0]),
    )
    .parse(input)?;
    let d = [delimiter];
    let mut field = take_while1(|b: u8| b != delimiter);
    let (input, protocol) = dec_u32(input)?;
    let (input, _) = tag(&d[..]).parse(input)?;
    let (input, address) = field.parse(input)?;
    let (input, _) = tag(&d[..]).parse(input)?;
    let (input, port) = dec_u16(input)?;
    let (input, _) = tag(&d[..]).parse(input)?;
    Ok((input, (protocol, address, port)))
}

/// `epsv-command = "EPSV" [ SP ( <net-prt> | "ALL" ) ]` (RFC 2428 §3).
fn epsv(arg: Argument<'_>) -> Result<Option<EpsvArg>, CommandError> {
    if arg.bytes.is_empty() {
        return Ok(None);
    }
    let parsed = arg.parse_with(alt((value(None, tag_no_case("ALL")), map(dec_u32, Some))))?;
    Ok(Some(match parsed {
        None => EpsvArg::All,
        Some(1) => EpsvArg::Protocol(NetworkProtocol::Ipv4),
        Some(2) => EpsvArg::Protocol(NetworkProtocol::Ipv6),
        Some(_) => return Err(CommandError::UnsupportedNetworkProtocol),
    }))
}

fn trim_ascii_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(0, |last| last + 1);
    &bytes[..end]
}

fn trim_ascii_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, CommandError> {
        Command::parse(&Bytes::copy_from_slice(line.as_bytes()))
    }

    fn arg(s: &str) -> Arg {
        Arg::new(Bytes::copy_from_slice(s.as_bytes())).expect("test argument")
    }

    #[test]
    fn known_answers() {
        use Command::*;
        let table: Vec<(&str, Result<Command, CommandError>)> = vec![
            ("USER bob", Ok(User(arg("bob")))),
            ("user bob", Ok(User(arg("bob")))),
            ("PASS", Ok(Pass(Bytes::new()))),
            ("PASS  secret  ", Ok(Pass(Bytes::from_static(b"secret")))),
            ("Type I", Ok(Type(RepresentationType::Image))),
            ("TYPE i", Ok(Type(RepresentationType::Image))),
            (
                "TYPE A N",
                Ok(Type(RepresentationType::Ascii(Some(FormCode::NonPrint)))),
            ),
            ("TYPE L 8", Ok(Type(RepresentationType::Local(8)))),
            ("TYPE X", Err(CommandError::UnsupportedParameter)),
            ("MODE s", Ok(Mode(TransferMode::Stream))),
            ("STRU r", Ok(Stru(FileStructure::Record))),
            (
                "PORT 127,0,0,1,4,1",
                Ok(Port("127.0.0.1:1025".parse().expect("addr"))),
            ),
            ("PORT 127,0,0,1,4", Err(CommandError::InvalidArgument)),
            ("PORT 256,0,0,1,4,1", Err(CommandError::InvalidArgument)),
            (
                "EPRT |1|127.0.0.1|2000|",
                Ok(Eprt("127.0.0.1:2000".parse().expect("addr"))),
            ),
            (
                "EPRT |2|::1|2000|",
                Ok(Eprt("[::1]:2000".parse().expect("addr"))),
            ),
            (
                "EPRT !1!127.0.0.1!2000!",
                Ok(Eprt("127.0.0.1:2000".parse().expect("addr"))),
            ),
            (
                "EPRT |3|x|2000|",
                Err(CommandError::UnsupportedNetworkProtocol),
            ),
            ("EPRT |1|::1|2000|", Err(CommandError::InvalidArgument)),
            ("EPSV", Ok(Epsv(None))),
            ("epsv all", Ok(Epsv(Some(EpsvArg::All)))),
            (
                "EPSV 2",
                Ok(Epsv(Some(EpsvArg::Protocol(NetworkProtocol::Ipv6)))),
            ),
            ("EPSV 7", Err(CommandError::UnsupportedNetworkProtocol)),
            (
                "ALLO 1234",
                Ok(Allo {
                    size: 1234,
                    record_size: None,
                }),
            ),
            (
                "ALLO 1234 R 80",
                Ok(Allo {
                    size: 1234,
                    record_size: Some(80),
                }),
            ),
            ("REST 0", Ok(Rest(0))),
            ("REST x", Err(CommandError::InvalidArgument)),
            ("STOR", Err(CommandError::MissingArgument)),
            ("STOR /a b.jpg", Ok(Stor(arg("/a b.jpg")))),
            ("STOU", Ok(Stou(None))),
            (
                "opts utf8 on",
                Ok(Opts {
                    command: arg("utf8"),
                    options: Some(arg("on")),
                }),
            ),
            (
                "MFMT 20240501120000 x.jpg",
                Ok(Mfmt {
                    time: arg("20240501120000"),
                    path: arg("x.jpg"),
                }),
            ),
            ("MFMT 2024 x.jpg", Err(CommandError::InvalidArgument)),
            ("XPWD", Ok(Xpwd)),
            ("PBSZ 0", Ok(Pbsz(0))),
            ("PROT p", Ok(Prot(ProtectionLevel::Private))),
            ("LIST -la", Ok(List(Some(arg("-la"))))),
            (
                "HOST example.org",
                Ok(Unknown {
                    verb: arg("HOST"),
                    argument: Some(arg("example.org")),
                }),
            ),
            ("", Err(CommandError::Empty)),
            ("   ", Err(CommandError::Empty)),
        ];
        for (line, expected) in table {
            assert_eq!(parse(line), expected, "parsing {line:?}");
        }
    }

    #[test]
    fn path_arguments_keep_non_utf8_bytes() {
        let line = Bytes::from_static(b"STOR \xC4\xE3\xBA\xC3.jpg");
        let Ok(Command::Stor(name)) = Command::parse(&line) else {
            panic!("STOR with a GBK name must parse");
        };
        assert_eq!(name.as_bytes(), b"\xC4\xE3\xBA\xC3.jpg");
    }
}
