//! The data channel and the life of an upload: PASV/EPSV/PORT/EPRT, STOR,
//! the transfer, processing, ABOR.

use std::net::{SocketAddr, SocketAddrV4};

use bytes::Bytes;

use super::{
    Blocked, DataChannel, DataEvent, OnProcessed, Output, PendingTransfer, ReceiveRequest, Session,
    SessionFile, SpoolFailure, Transfer, TransferEnd, TransferId, TransferPhase, UploadRecord,
    canonical,
};
use crate::app::{ProcessError, ProcessRequest};
use crate::reply::{Reply, ReplyCode};

impl Session {
    /// PASV (`extended == false`) or EPSV: asks the adapter for a listener.
    pub(super) fn passive(&mut self, extended: bool) {
        if self.epsv_all && !extended {
            return self.reply(epsv_all_in_effect());
        }
        let local = self.local_canonical();
        let advertised = self.config.passive_address.for_client(self.peer.ip());
        if !extended && !local.is_ipv4() && advertised.is_none() {
            // 227 can only carry an IPv4 address.
            return self.reply(Reply::new(
                ReplyCode::CANT_OPEN_DATA,
                "PASV needs IPv4; use EPSV on IPv6.",
            ));
        }
        self.close_data_channel();
        self.outputs.push_back(Output::Listen);
        self.blocked = Some(Blocked::Listen {
            extended,
            deadline: self.deadline_after(self.config.data_timeout),
        });
    }

    /// PORT or EPRT to `target`. The address must be the control peer's and
    /// the port unprivileged: anything else would let a client use the relay
    /// to attack a third host (FTP bounce).
    pub(super) fn active(&mut self, target: SocketAddr) {
        if self.epsv_all {
            return self.reply(epsv_all_in_effect());
        }
        if canonical(target.ip()) != canonical(self.peer.ip()) {
            return self.reply(Reply::new(
                ReplyCode::SYNTAX_ERROR_IN_PARAMETERS,
                "Data connections go to your own address only.",
            ));
        }
        if target.port() < 1024 {
            return self.reply(Reply::new(
                ReplyCode::SYNTAX_ERROR_IN_PARAMETERS,
                "Data connections to privileged ports are refused.",
            ));
        }
        self.close_data_channel();
        self.data = DataChannel::Active(target);
        self.ok("PORT command successful.");
    }

    /// STOR or STOU: `150`, then the data connection, the spool, the
    /// processor. `name` is the argument as sent, `path` the file's virtual
    /// path, `announce` STOU's generated name; a `held` upload (devices
    /// profile, a temporary name) waits for its rename once received.
    pub(super) fn start_upload(
        &mut self,
        name: Bytes,
        path: Vec<Bytes>,
        announce: Option<Bytes>,
        held: bool,
    ) {
        let mut max_size = self.config.max_file_size;
        if held {
            let (count, bytes) = self.held_uploads();
            if count >= self.config.max_held_uploads {
                return self.reply(Reply::new(
                    ReplyCode::INSUFFICIENT_STORAGE,
                    "Too many uploads wait for their rename; rename or delete one first.",
                ));
            }
            max_size = max_size.min(self.config.max_held_bytes.saturating_sub(bytes));
        }
        let upload = TransferId(self.uploads_started + 1);
        let text = match announce {
            Some(name) => format!("FILE: {}", name.escape_ascii()),
            None => "Ok to send data.".to_owned(),
        };
        let record = UploadRecord::new(upload, name, self.now);
        self.start_transfer(record, path, None, text, (held, max_size));
    }

    /// LIST, NLST, MLSD: `150`, then `listing` over the data connection.
    pub(super) fn start_listing(&mut self, listing: Bytes) {
        let record = UploadRecord::listing(TransferId(self.uploads_started + 1), self.now);
        let text = "Here comes the directory listing.".to_owned();
        self.start_transfer(record, Vec::new(), Some(listing), text, (false, 0));
    }

    fn start_transfer(
        &mut self,
        record: UploadRecord,
        path: Vec<Bytes>,
        listing: Option<Bytes>,
        text: String,
        (held, max_size): (bool, u64),
    ) {
        if self.config.require_protected_data && !self.data_protected {
            return self.reply(Reply::new(
                ReplyCode::DATA_PROTECTION_REQUIRED,
                "Data connections must be protected: send PBSZ 0 and PROT P.",
            ));
        }
        if self.data == DataChannel::None {
            return self.reply(Reply::new(
                ReplyCode::CANT_OPEN_DATA,
                "Use PASV, EPSV or PORT first.",
            ));
        }
        if listing.is_none() && self.store_and_forward {
            // The id is taken now: a late answer about a refused or timed
            // out admission names no later upload.
            self.uploads_started = record.upload.get();
            self.outputs
                .push_back(Output::CheckAdmission(record.upload));
            let pending = PendingTransfer {
                record,
                path,
                text,
                held,
                max_size,
            };
            self.blocked = Some(Blocked::Admission {
                pending,
                deadline: self.deadline_after(self.config.process_timeout),
            });
            return;
        }
        self.open_transfer(record, path, listing, text, (held, max_size));
    }

    /// `150`, and the data connection for the transfer: used at once if the
    /// client connected already, connected to in active mode, or awaited.
    pub(super) fn open_transfer(
        &mut self,
        record: UploadRecord,
        path: Vec<Bytes>,
        listing: Option<Bytes>,
        text: String,
        (held, max_size): (bool, u64),
    ) {
        self.uploads_started = record.upload.get();
        self.reply(Reply::new(ReplyCode::FILE_STATUS_OK, text));
        let deadline = self.deadline_after(self.config.data_timeout);
        let mut transfer = Transfer {
            record,
            file_name: path.last().cloned().unwrap_or_default(),
            path,
            listing,
            held,
            max_size,
            phase: TransferPhase::AwaitingConnection { deadline },
        };
        match self.data {
            DataChannel::Passive {
                connected: true, ..
            } => self.start_receiving(&mut transfer),
            DataChannel::Active(target) => self.outputs.push_back(Output::Connect(target)),
            DataChannel::Passive { .. } | DataChannel::None => {}
        }
        self.blocked = Some(Blocked::Transfer(transfer));
    }

    pub(super) fn data_event(&mut self, event: DataEvent) {
        match event {
            DataEvent::Listening(addr) => self.listening(addr),
            DataEvent::ListenFailed => {
                if let Some(Blocked::Listen { .. }) = self.blocked {
                    self.unblock();
                    self.reply(Reply::new(
                        ReplyCode::CANT_OPEN_DATA,
                        "Cannot open a passive listener; try again later.",
                    ));
                }
            }
            DataEvent::Connected { peer } => self.data_connected(peer),
            DataEvent::ConnectFailed => {
                // Only an active-mode upload still waiting for its connection
                // can fail to connect; anything else is stale news.
                let awaiting = matches!(
                    (&self.blocked, self.data),
                    (
                        Some(Blocked::Transfer(Transfer {
                            phase: TransferPhase::AwaitingConnection { .. },
                            ..
                        })),
                        DataChannel::Active(_)
                    )
                );
                if !awaiting {
                    return;
                }
                if let Some(Blocked::Transfer(transfer)) = self.blocked.take() {
                    transfer
                        .record
                        .finish(self.now, self.user(), "data connection failed");
                }
                self.unblock();
                self.data = DataChannel::None;
                self.reply(Reply::new(
                    ReplyCode::CANT_OPEN_DATA,
                    "Cannot open data connection.",
                ));
            }
            DataEvent::TransferEnded { upload, end } => self.transfer_ended(upload, end),
        }
    }

    fn listening(&mut self, addr: SocketAddr) {
        let Some(Blocked::Listen { extended, .. }) = self.blocked else {
            // Late: the listen timed out (or the client left) already. The
            // adapter holds a listener nobody will use: release it.
            if self.data == DataChannel::None {
                self.outputs.push_back(Output::CloseData);
            }
            return;
        };
        self.unblock();
        self.data = DataChannel::Passive {
            expires: self.deadline_after(self.config.data_timeout),
            connected: false,
        };
        let reply = if extended {
            Reply::entering_extended_passive_mode(addr.port())
        } else {
            let advertised = self.config.passive_address.for_client(self.peer.ip());
            let ip = match (advertised, self.local_canonical().ip()) {
                (Some(advertised), _) => advertised,
                (None, std::net::IpAddr::V4(local)) => local,
                // `passive` refused PASV for this case before listening.
                (None, std::net::IpAddr::V6(_)) => std::net::Ipv4Addr::UNSPECIFIED,
            };
            Reply::entering_passive_mode(SocketAddrV4::new(ip, addr.port()))
        };
        self.reply(reply);
    }

    fn data_connected(&mut self, peer: SocketAddr) {
        let allowed =
            !self.config.data_peer_must_match || canonical(peer.ip()) == canonical(self.peer.ip());
        let mut transfer = match self.blocked.take() {
            Some(Blocked::Transfer(transfer)) => Some(transfer),
            other => {
                self.blocked = other;
                None
            }
        };
        let awaiting = matches!(
            &transfer,
            Some(Transfer {
                phase: TransferPhase::AwaitingConnection { .. },
                ..
            })
        );
        let accept = match &mut self.data {
            DataChannel::Active(_) => awaiting,
            DataChannel::Passive { connected, .. } if !*connected && allowed => {
                *connected = true;
                true
            }
            _ => false,
        };
        if accept {
            self.outputs.push_back(Output::AcceptDataConnection);
        } else {
            self.outputs.push_back(Output::RefuseDataConnection);
        }
        if let Some(mut transfer) = transfer.take() {
            if accept && awaiting {
                self.start_receiving(&mut transfer);
            }
            self.blocked = Some(Blocked::Transfer(transfer));
        }
    }

    fn start_receiving(&mut self, transfer: &mut Transfer) {
        transfer.phase = TransferPhase::Receiving;
        if let Some(listing) = &transfer.listing {
            let (transfer, bytes) = (transfer.record.upload, listing.clone());
            let tls = self.data_protected;
            return self.outputs.push_back(Output::Send {
                transfer,
                bytes,
                tls,
            });
        }
        self.outputs.push_back(Output::Receive(ReceiveRequest {
            upload: transfer.record.upload,
            max_size: transfer.max_size,
            stall_timeout: self.config.transfer_stall_timeout,
            min_rate: self.config.min_upload_rate,
            max_rate: self.config.max_upload_rate,
            tls: self.data_protected,
        }));
    }

    fn transfer_ended(&mut self, upload: TransferId, end: TransferEnd) {
        let receiving = matches!(
            &self.blocked,
            Some(Blocked::Transfer(t)) if t.record.upload == upload && t.phase == TransferPhase::Receiving
        );
        if !receiving {
            // Aborted, or never asked for: stale news.
            return;
        }
        let Some(Blocked::Transfer(transfer)) = self.blocked.take() else {
            return;
        };
        self.unblock();
        self.close_data_channel();
        if transfer.listing.is_some() {
            return self.reply(match end {
                TransferEnd::Complete { .. } => {
                    Reply::new(ReplyCode::CLOSING_DATA, "Directory send OK.")
                }
                TransferEnd::TlsHandshakeFailed | TransferEnd::TlsSessionNotResumed => {
                    tls_refusal(end, "listing")
                }
                _ => Reply::new(ReplyCode::TRANSFER_ABORTED, "Listing aborted."),
            });
        }
        let (outcome, failure) = match end {
            TransferEnd::Complete { bytes } if bytes <= transfer.max_size => {
                return self.spooled(transfer, bytes);
            }
            TransferEnd::Complete { .. } | TransferEnd::TooLarge => (
                "too large",
                Reply::new(
                    ReplyCode::EXCEEDED_STORAGE,
                    format!("File too large: the limit is {} bytes.", transfer.max_size),
                ),
            ),
            TransferEnd::Reset => (
                "data connection reset",
                Reply::new(
                    ReplyCode::TRANSFER_ABORTED,
                    "Data connection closed early; upload aborted.",
                ),
            ),
            TransferEnd::Stalled => (
                "data connection stalled",
                Reply::new(
                    ReplyCode::TRANSFER_ABORTED,
                    "Data connection stalled; upload aborted.",
                ),
            ),
            TransferEnd::SpoolFailed(SpoolFailure::StorageFull) => (
                "spool full",
                Reply::new(
                    ReplyCode::INSUFFICIENT_STORAGE,
                    "Insufficient storage space; try again later.",
                ),
            ),
            TransferEnd::SpoolFailed(_) => (
                "spool error",
                Reply::new(
                    ReplyCode::LOCAL_ERROR,
                    "Local error while receiving; try again later.",
                ),
            ),
            TransferEnd::TooSlow => (
                "upload too slow",
                Reply::new(
                    ReplyCode::TRANSFER_ABORTED,
                    format!(
                        "Upload slower than {} bytes per second; aborted.",
                        self.config.min_upload_rate.bytes_per_second
                    ),
                ),
            ),
            TransferEnd::TlsHandshakeFailed => ("TLS handshake failed", tls_refusal(end, "upload")),
            TransferEnd::TlsSessionNotResumed => {
                ("TLS session not resumed", tls_refusal(end, "upload"))
            }
        };
        transfer.record.finish(self.now, self.user(), outcome);
        self.outputs.push_back(Output::Discard(upload));
        self.reply(failure);
    }

    /// The whole file is in the spool: process it, and reply after
    /// processing (or at once, with `ack_on_receipt`).
    fn spooled(&mut self, transfer: Transfer, size: u64) {
        let mut record = transfer.record;
        record.size = Some(size);
        let devices = self.profile == crate::config::Profile::Devices;
        if devices {
            // A new upload to a path replaces what the session had there; a
            // held upload it replaces is dropped, never processed.
            self.forget_file(&transfer.path, "replaced before processing");
        }
        if devices && transfer.held {
            let file = SessionFile {
                path: transfer.path,
                size,
                received: self.now,
                held: None,
            };
            if self.store_and_forward {
                // Kept durably before the 226, or not answered 226.
                let request = self.process_request(&record, transfer.file_name, &file.path);
                self.outputs.push_back(Output::Hold(request));
                let deadline = self.deadline_after(self.config.process_timeout);
                self.blocked = Some(Blocked::Holding {
                    record,
                    file,
                    deadline,
                });
                return;
            }
            return self.keep_held(record, file);
        }
        if devices {
            self.remember(SessionFile {
                path: transfer.path.clone(),
                size,
                received: self.now,
                held: None,
            });
        }
        let request = self.process_request(&record, transfer.file_name, &transfer.path);
        self.outputs.push_back(Output::Process(request));
        let deadline = self.deadline_after(self.config.process_timeout);
        if self.config.ack_on_receipt {
            self.background.push((record, deadline));
            self.reply(Reply::new(
                ReplyCode::CLOSING_DATA,
                "Transfer complete; the file will be processed.",
            ));
        } else {
            self.blocked = Some(Blocked::Processing {
                record,
                deadline,
                reply: OnProcessed::Transfer,
                then: None,
            });
        }
    }

    /// What the processor is told of the spooled upload of `record`.
    fn process_request(
        &self,
        record: &UploadRecord,
        file_name: Bytes,
        path: &[Bytes],
    ) -> ProcessRequest {
        ProcessRequest {
            upload: record.upload,
            name: record.name.clone(),
            file_name,
            path: crate::path::display(path),
            user: self.user().map(Bytes::copy_from_slice).unwrap_or_default(),
            peer: self.peer,
            size: record.size.unwrap_or(0),
        }
    }

    pub(super) fn processed(&mut self, upload: TransferId, result: Result<(), ProcessError>) {
        let outcome = match &result {
            Ok(()) => "processed",
            Err(error) if error.is_permanent() => "rejected by the processor",
            Err(_) => "processing failed",
        };
        if let Err(error) = &result {
            tracing::warn!(
                upload = upload.get(),
                reason = error.reason(),
                "processor failed"
            );
        }
        match &self.blocked {
            Some(Blocked::Processing { record, .. }) if record.upload == upload => {
                self.end_processing(outcome, result);
            }
            // Acknowledged on receipt, or timed out: nothing left to answer.
            _ => {
                let (now, user) = (self.now, self.user().map(<[u8]>::to_vec));
                self.background.retain(|(record, _)| {
                    let done = record.upload == upload;
                    if done {
                        record.finish(now, user.as_deref(), outcome);
                    }
                    !done
                });
            }
        }
    }

    /// Ends the processing the session waits for: records its `outcome`,
    /// unblocks, and answers with `result`.
    pub(super) fn end_processing(&mut self, outcome: &str, result: Result<(), ProcessError>) {
        let Some(Blocked::Processing {
            record,
            reply,
            then,
            ..
        }) = self.blocked.take()
        else {
            return;
        };
        record.finish(self.now, self.user(), outcome);
        self.unblock();
        self.answer_processed(reply, result, then);
    }

    /// Replies to the command a processing answers (if any), then runs the
    /// command that waited for it.
    pub(super) fn answer_processed(
        &mut self,
        reply: OnProcessed,
        result: Result<(), ProcessError>,
        then: Option<crate::command::Command>,
    ) {
        let answer = match (reply, result) {
            (OnProcessed::Silent, _) => None,
            (OnProcessed::Transfer, Ok(())) => {
                Some(Reply::new(ReplyCode::CLOSING_DATA, "Transfer complete."))
            }
            (OnProcessed::Rename, Ok(())) => Some(Reply::new(
                ReplyCode::FILE_ACTION_OK,
                "Renamed; file processed.",
            )),
            (_, Err(error)) => Some(error.reply()),
        };
        if let Some(answer) = answer {
            self.reply(answer);
        }
        if let Some(command) = then {
            // It runs next, before anything queued after it.
            self.queue.push_front((Ok(command), 0));
        }
    }

    /// ABOR while an upload is under way: `426` for the upload, `226` for
    /// the ABOR (RFC 959 §4.1.3).
    pub(super) fn abort_transfer(&mut self) {
        let Some(Blocked::Transfer(transfer)) = self.blocked.take() else {
            return;
        };
        self.unblock();
        transfer.record.finish(self.now, self.user(), "aborted");
        if transfer.phase == TransferPhase::Receiving {
            let upload = transfer.record.upload;
            self.outputs.push_back(Output::AbortTransfer(upload));
        }
        self.close_data_channel();
        self.reply(Reply::new(ReplyCode::TRANSFER_ABORTED, "Upload aborted."));
        self.reply(Reply::new(ReplyCode::CLOSING_DATA, "ABOR successful."));
    }

    /// ABOR with nothing to abort: any prepared data channel is closed.
    pub(super) fn abort_idle(&mut self) {
        self.close_data_channel();
        self.reply(Reply::new(ReplyCode::CLOSING_DATA, "No transfer to abort."));
    }

    pub(super) fn close_data_channel(&mut self) {
        if self.data != DataChannel::None {
            self.data = DataChannel::None;
            self.outputs.push_back(Output::CloseData);
        }
    }

    pub(super) fn local_canonical(&self) -> SocketAddr {
        SocketAddr::new(canonical(self.local.ip()), self.local.port())
    }
}

fn epsv_all_in_effect() -> Reply {
    Reply::new(ReplyCode::BAD_SEQUENCE, "EPSV ALL is in effect: use EPSV.")
}

/// The reply to a protected data connection whose TLS failed: `426` for a
/// handshake that failed or timed out, `522` (RFC 4217's "TLS
/// negotiation failed" family, as vsftpd answers) for one that did not
/// resume the control connection's session when that is required.
fn tls_refusal(end: TransferEnd, what: &str) -> Reply {
    if end == TransferEnd::TlsSessionNotResumed {
        Reply::new(
            ReplyCode::TLS_NEGOTIATION_FAILED,
            format!(
                "The data connection must resume the control connection's TLS session; {what} refused."
            ),
        )
    } else {
        Reply::new(
            ReplyCode::TRANSFER_ABORTED,
            format!("TLS handshake on the data connection failed; {what} aborted."),
        )
    }
}
