//! Errors that know the reply they imply.

use std::fmt;

use crate::reply::{Reply, ReplyCode};

/// Why a control line is not a usable command. Each error names its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// An empty line: `500`.
    Empty,
    /// A line over the length limit, discarded: `500`.
    LineTooLong,
    /// A verb that needs an argument came without one: `501`.
    MissingArgument,
    /// The argument does not follow the verb's grammar: `501`.
    InvalidArgument,
    /// A well-formed code this server does not implement (`TYPE X`,
    /// `PROT Z`): `504`.
    UnsupportedParameter,
    /// An EPRT/EPSV network protocol other than 1 (IPv4) or 2 (IPv6): `522`.
    UnsupportedNetworkProtocol,
}

impl CommandError {
    /// The reply this error implies.
    pub fn reply(self) -> Reply {
        let (code, text) = match self {
            Self::Empty => (ReplyCode::SYNTAX_ERROR, "Empty command."),
            Self::LineTooLong => (ReplyCode::SYNTAX_ERROR, "Command line too long."),
            Self::MissingArgument => (
                ReplyCode::SYNTAX_ERROR_IN_PARAMETERS,
                "Syntax error: argument missing.",
            ),
            Self::InvalidArgument => (
                ReplyCode::SYNTAX_ERROR_IN_PARAMETERS,
                "Syntax error in parameters or arguments.",
            ),
            Self::UnsupportedParameter => (
                ReplyCode::NOT_IMPLEMENTED_FOR_PARAMETER,
                "Command not implemented for that parameter.",
            ),
            Self::UnsupportedNetworkProtocol => (
                ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (1,2).",
            ),
        };
        Reply::new(code, text)
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reply().text())
    }
}

impl std::error::Error for CommandError {}
