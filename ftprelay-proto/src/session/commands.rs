//! The policy table: what each command gets, in the strict profile.
//!
//! Everything that is not an upload is refused with `550`; the plumbing a
//! client needs to reach STOR works. This file is the one place to read to
//! know what the relay answers.

use bytes::Bytes;

use super::{Blocked, Session};
use crate::command::{
    Arg, Command, EpsvArg, FileStructure, FormCode, NetworkProtocol, RepresentationType,
    TransferMode,
};
use crate::config::Profile;
use crate::error::CommandError;
use crate::path;
use crate::reply::{Reply, ReplyCode};

/// The verbs this server implements, for HELP.
const HELP_LINES: [&str; 5] = [
    "ABOR ALLO APPE CDUP CWD  DELE EPRT EPSV FEAT HELP LIST MDTM",
    "MKD  MLSD MLST MODE NLST NOOP OPTS PASS PASV PORT PWD  QUIT",
    "REST RETR RMD  RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST",
    "TYPE USER XCUP XCWD XMKD XPWD XRMD",
    "Only uploads are accepted: STOR or STOU into the root directory.",
];

impl Session {
    /// Runs one parsed line. Always produces exactly one final reply, now or
    /// when the command it starts completes.
    pub(super) fn execute(&mut self, parsed: Result<Command, CommandError>) {
        let command = match parsed {
            Ok(command) => command,
            Err(error) => {
                tracing::debug!(%error, "-> (unusable line)");
                return self.reply(error.reply());
            }
        };
        tracing::debug!(%command, "->");
        if self.config.require_tls
            && !self.tls_active
            && matches!(command, Command::User(_) | Command::Pass(_))
        {
            return self.reply(Reply::new(
                ReplyCode::NOT_LOGGED_IN,
                "TLS required: send AUTH TLS first.",
            ));
        }
        if !self.is_logged_in() && !allowed_before_login(&command) {
            return self.reply(Reply::new(
                ReplyCode::NOT_LOGGED_IN,
                "Please log in with USER and PASS first.",
            ));
        }
        let command = match self.profile {
            Profile::Devices if self.is_logged_in() => match self.devices_command(command) {
                Some(command) => command,
                None => return,
            },
            _ => command,
        };
        use Command::*;
        match command {
            User(user) => self.user_command(user),
            Pass(password) => self.pass_command(password),
            Quit => {
                // Held uploads are processed first (devices profile).
                if self.finalize_next_held(Some(Quit)) {
                    return;
                }
                self.reply(Reply::new(ReplyCode::CLOSING_CONTROL, "Goodbye."));
                self.close();
            }
            Noop => self.ok("NOOP ok."),
            Syst => self.reply(Reply::new(ReplyCode::SYSTEM_TYPE, "UNIX Type: L8")),
            Feat => {
                let tls: &[&str] = if self.tls_offered {
                    &["AUTH TLS", "PBSZ", "PROT"]
                } else {
                    &[]
                };
                let lines = ["Features:"]
                    .into_iter()
                    .chain(tls.iter().copied())
                    .chain(["EPRT", "EPSV", "PASV", "UTF8", "End"]);
                self.reply(Reply::multiline(ReplyCode::SYSTEM_STATUS, lines));
            }
            Help(None) => self.reply(Reply::multiline(
                ReplyCode::HELP,
                std::iter::once("The following commands are recognized:")
                    .chain(HELP_LINES)
                    .chain(["Help OK."]),
            )),
            Help(Some(_)) => self.reply(Reply::new(
                ReplyCode::HELP,
                "This server accepts uploads only: log in, PASV or EPSV, then STOR.",
            )),
            Opts { command, options } => self.opts(&command, options.as_ref()),
            Auth(mechanism) => self.auth(&mechanism),
            Pbsz(_) if self.tls_active => self.ok("PBSZ=0"),
            Prot(level) if self.tls_active => self.protection(level),
            Pbsz(_) | Prot(_) => self.reply(Reply::new(
                ReplyCode::BAD_SEQUENCE,
                "Security data exchange not completed: no AUTH.",
            )),
            Ccc if self.tls_offered => self.reply(Reply::new(
                ReplyCode::POLICY_REFUSED,
                "CCC refused: the connection stays encrypted.",
            )),
            Ccc | Adat(_) | Mic(_) | Conf(_) | Enc(_) | Acct(_) | Smnt(_) | Rein => self.reply(
                Reply::new(ReplyCode::NOT_IMPLEMENTED, "Command not implemented."),
            ),
            Pwd | Xpwd => self.reply(Reply::quoted_path(b"/", "is the current directory.")),
            Cwd(path) | Xcwd(path) => {
                if path::is_root(&path.to_bytes()) {
                    self.reply(Reply::new(
                        ReplyCode::FILE_ACTION_OK,
                        "Directory successfully changed.",
                    ));
                } else {
                    self.deny("There are no folders here; upload to the root directory.");
                }
            }
            Cdup | Xcup => self.reply(Reply::new(
                ReplyCode::FILE_ACTION_OK,
                "Directory successfully changed.",
            )),
            Type(representation) => self.type_command(representation),
            Mode(TransferMode::Stream) => self.ok("Mode set to S."),
            Mode(_) => self.not_for_parameter("Only stream mode (MODE S) is supported."),
            Stru(FileStructure::File) => self.ok("Structure set to F."),
            Stru(_) => self.not_for_parameter("Only file structure (STRU F) is supported."),
            Allo { .. } => self.ok("No storage allocation necessary."),
            Rest(0) => self.reply(Reply::new(
                ReplyCode::PENDING_FURTHER_INFORMATION,
                "Restarting at 0.",
            )),
            Rest(_) => {
                self.not_for_parameter("Resuming uploads is not supported; send the whole file.")
            }
            Pasv => self.passive(false),
            Epsv(None) => self.passive(true),
            Epsv(Some(EpsvArg::Protocol(protocol))) => {
                if protocol == NetworkProtocol::of(&self.local_canonical()) {
                    self.passive(true);
                } else {
                    self.reply(wrong_protocol(self.local_canonical()));
                }
            }
            Epsv(Some(EpsvArg::All)) => {
                self.epsv_all = true;
                self.ok("EPSV ALL ok: only EPSV from now on.");
            }
            Port(addr) => self.active(addr.into()),
            Eprt(addr) => self.active(addr),
            Abor => self.abort_idle(),
            Stor(path) => match path::root_file_name(&path.to_bytes()) {
                Ok(Some(file_name)) => {
                    self.start_upload(path.to_bytes(), vec![file_name], None, false);
                }
                Err(error) => self.reply(error.reply(false)),
                Ok(None) => self.reply(Reply::new(
                    ReplyCode::NAME_NOT_ALLOWED,
                    "File name not allowed: upload into the root directory.",
                )),
            },
            Stou(_) => {
                let generated = Bytes::from(format!("upload-{}", self.uploads_started + 1));
                self.start_upload(
                    generated.clone(),
                    vec![generated.clone()],
                    Some(generated),
                    false,
                );
            }
            Stat(None) => self.status(),
            Retr(_)
            | Appe(_)
            | Rnfr(_)
            | Rnto(_)
            | Dele(_)
            | Rmd(_)
            | Mkd(_)
            | Xmkd(_)
            | Xrmd(_)
            | List(_)
            | Nlst(_)
            | Mlsd(_)
            | Mlst(_)
            | Size(_)
            | Mdtm(_)
            | Mfmt { .. }
            | Site(_)
            | Stat(Some(_)) => {
                self.deny("Permission denied: this server only accepts uploads.");
            }
            Unknown { .. } => self.reply(Reply::new(ReplyCode::SYNTAX_ERROR, "Unknown command.")),
        }
    }

    pub(super) fn ok(&mut self, text: &'static str) {
        self.reply(Reply::new(ReplyCode::COMMAND_OK, text));
    }

    pub(super) fn deny(&mut self, text: &'static str) {
        self.reply(Reply::new(ReplyCode::FILE_UNAVAILABLE, text));
    }

    fn not_for_parameter(&mut self, text: &'static str) {
        self.reply(Reply::new(ReplyCode::NOT_IMPLEMENTED_FOR_PARAMETER, text));
    }

    /// TYPE: the relay stores bytes as they arrive in every type, so the
    /// types clients use for plain files are accepted.
    fn type_command(&mut self, representation: RepresentationType) {
        match representation {
            RepresentationType::Ascii(None | Some(FormCode::NonPrint)) => {
                self.ok("Switching to ASCII mode.")
            }
            RepresentationType::Image | RepresentationType::Local(8) => {
                self.ok("Switching to Binary mode.")
            }
            _ => self.not_for_parameter("Type not supported; use TYPE I."),
        }
    }

    /// AUTH TLS: `234`, then the handshake. Lines the client sent after
    /// AUTH in plaintext are dropped unanswered: they could have been
    /// injected by anyone on the path.
    fn auth(&mut self, mechanism: &Arg) {
        if !self.tls_offered {
            return self.reply(Reply::new(
                ReplyCode::NOT_IMPLEMENTED,
                "TLS is not configured on this server.",
            ));
        }
        if self.tls_active {
            return self.reply(Reply::new(
                ReplyCode::BAD_SEQUENCE,
                "TLS is already active.",
            ));
        }
        let known = ["TLS", "SSL", "TLS-C", "TLS-P"]
            .iter()
            .any(|m| mechanism.as_bytes().eq_ignore_ascii_case(m.as_bytes()));
        if !known {
            return self.reply(Reply::new(
                ReplyCode::NOT_IMPLEMENTED_FOR_PARAMETER,
                "Unsupported security mechanism; use AUTH TLS.",
            ));
        }
        self.reply(Reply::new(
            ReplyCode::SECURITY_EXCHANGE_OK,
            "Proceed with TLS negotiation.",
        ));
        self.outputs.push_back(super::Output::StartTls);
        self.tls_active = true;
        self.discard_pending_input();
    }

    /// PROT C or P; S and E are not offered by TLS.
    fn protection(&mut self, level: crate::command::ProtectionLevel) {
        use crate::command::ProtectionLevel::*;
        match level {
            Clear if self.config.require_protected_data => self.reply(Reply::new(
                ReplyCode::POLICY_REFUSED,
                "Data connections must be protected here: use PROT P.",
            )),
            Clear => {
                self.data_protected = false;
                self.ok("Data connections are in clear.");
            }
            Private => {
                self.data_protected = true;
                self.ok("Data connections are protected.");
            }
            _ => self.reply(Reply::new(
                ReplyCode::PROTECTION_LEVEL_NOT_SUPPORTED,
                "Only PROT C and PROT P are supported.",
            )),
        }
    }

    fn opts(&mut self, command: &Arg, options: Option<&Arg>) {
        let utf8 = command.as_bytes().eq_ignore_ascii_case(b"UTF8");
        let switch_ok = options.is_none_or(|o| {
            o.as_bytes().eq_ignore_ascii_case(b"ON") || o.as_bytes().eq_ignore_ascii_case(b"OFF")
        });
        if utf8 && switch_ok {
            // Names are kept as bytes in every mode, so there is nothing to switch.
            self.ok("UTF8 ok: file names are kept as sent.");
        } else {
            self.reply(Reply::new(
                ReplyCode::SYNTAX_ERROR_IN_PARAMETERS,
                "Option not understood.",
            ));
        }
    }

    fn status(&mut self) {
        let login = match self.user() {
            Some(user) => format!("Logged in as {}", user.escape_ascii()),
            None => "Not logged in".to_owned(),
        };
        let data = match (&self.data, &self.blocked) {
            (_, Some(Blocked::Transfer(_))) => "Data channel: upload in progress",
            (super::DataChannel::Passive { .. }, _) => "Data channel: passive listener open",
            (super::DataChannel::Active(_), _) => "Data channel: active (PORT) address set",
            (super::DataChannel::None, _) => "Data channel: none",
        };
        let peer = format!("Connected from {}", self.peer);
        self.reply(Reply::multiline(
            ReplyCode::SYSTEM_STATUS,
            [
                "ftprelay status:",
                peer.as_str(),
                login.as_str(),
                data,
                "End of status.",
            ],
        ));
    }
}

/// Before login only what is needed to log in (and to negotiate TLS and
/// UTF-8, which clients do first) is accepted.
fn allowed_before_login(command: &Command) -> bool {
    use Command::*;
    matches!(
        command,
        User(_)
            | Pass(_)
            | Quit
            | Noop
            | Feat
            | Syst
            | Help(_)
            | Opts { .. }
            | Auth(_)
            | Pbsz(_)
            | Prot(_)
    )
}

fn wrong_protocol(local: std::net::SocketAddr) -> Reply {
    let text = match NetworkProtocol::of(&local) {
        NetworkProtocol::Ipv4 => "Network protocol not supported, use (1).",
        NetworkProtocol::Ipv6 => "Network protocol not supported, use (2).",
    };
    Reply::new(ReplyCode::NETWORK_PROTOCOL_NOT_SUPPORTED, text)
}
