//! Properties of this crate, for the fuzz targets in `fuzz/` and for the
//! property tests. Not a public API.
//!
//! Each function panics when its property does not hold; the fuzz targets
//! are one-line calls into them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{
    Command, Config, DataEvent, Frame, Input, LineFramer, LoginVerdict, Output, ProcessError,
    Session, SpoolFailure, TransferEnd, TransferId,
};

/// The relay's address in driven sessions.
pub const LOCAL: &str = "127.0.0.1:2121";
/// The client's address in driven sessions.
pub const PEER: &str = "127.0.0.1:40000";
/// A password the [`SimulatedAdapter`] rejects; every other password is accepted.
pub const BAD_PASSWORD: &[u8] = b"wrong";

fn addr(text: &str) -> SocketAddr {
    text.parse()
        .expect("the constants above are valid addresses")
}

/// A session whose adapter answers every request at once, as a
/// well-behaved adapter and client would: logins succeed unless the password
/// is [`BAD_PASSWORD`], listeners open and the client connects after `150`,
/// uploads arrive complete with four bytes,
/// and processing succeeds unless the file name starts with `fail`. With
/// [`SimulatedAdapter::storing_and_forwarding`] its processor is a queue:
/// logins say so, uploads are admitted unless the queue is full
/// ([`SimulatedAdapter::with_full_queue`]), and held ones are kept unless
/// their name starts with `fail`.
#[derive(Debug)]
pub struct SimulatedAdapter {
    /// The session under test.
    pub session: Session,
    /// The virtual clock.
    pub now: Instant,
    /// Every output so far except [`Output::Wait`], in order.
    pub outputs: Vec<Output>,
    /// Set once [`Output::Finished`] was seen.
    pub finished: bool,
    /// Whether the auto-responder answers requests.
    auto: bool,
    listeners: u16,
    /// A passive listener is open and the client has not connected yet.
    listening: bool,
    /// Data connections and transfers are held until
    /// [`SimulatedAdapter::release_transfers`].
    hold_transfers: bool,
    held: Vec<Held>,
    /// Logins are accepted with a store-and-forward processor.
    store_and_forward: bool,
    /// Admissions are refused (`452`).
    queue_full: bool,
}

/// A data-side event the driver holds back.
#[derive(Debug, Clone, Copy)]
enum Held {
    Connect(SocketAddr),
    Transfer(TransferId),
}

impl SimulatedAdapter {
    /// A driven session with `config`, its clock starting at `origin`.
    pub fn new(config: Config, origin: Instant) -> Self {
        Self::with_addresses(config, origin, addr(LOCAL), addr(PEER))
    }

    /// A driven session between these addresses.
    pub fn with_addresses(
        config: Config,
        origin: Instant,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Self {
        let session = Session::new(Arc::new(config), origin, local, peer);
        let mut driver = Self {
            session,
            now: origin,
            outputs: Vec::new(),
            finished: false,
            auto: true,
            listeners: 0,
            listening: false,
            hold_transfers: false,
            held: Vec::new(),
            store_and_forward: false,
            queue_full: false,
        };
        driver.drain();
        driver
    }

    /// Turns the auto-responder off (for inputs chosen by a fuzzer).
    pub fn manual(mut self) -> Self {
        self.auto = false;
        self
    }

    /// The session offers TLS ([`Session::with_tls_offered`]).
    pub fn with_tls_offered(self) -> Self {
        Self {
            session: self.session.with_tls_offered(),
            ..self
        }
    }

    /// Shares the session's uploads with other sessions through `recent`.
    pub fn with_recent_uploads(self, recent: Arc<crate::RecentUploads>) -> Self {
        Self {
            session: self.session.with_recent_uploads(recent),
            ..self
        }
    }

    /// Accepts logins with a store-and-forward processor: uploads are
    /// admitted first, held ones kept before their `226`.
    pub fn storing_and_forwarding(mut self) -> Self {
        self.store_and_forward = true;
        self
    }

    /// A store-and-forward processor whose queue is full: every admission
    /// is refused with [`ProcessError::storage_full`].
    pub fn with_full_queue(mut self) -> Self {
        self.store_and_forward = true;
        self.queue_full = true;
        self
    }

    /// Keeps every transfer open until [`SimulatedAdapter::release_transfers`], so
    /// that the data timeline does not depend on when control bytes arrive.
    pub fn holding_transfers(mut self) -> Self {
        self.hold_transfers = true;
        self
    }

    /// Establishes the held data connections and ends the held transfers
    /// (each complete with four bytes), and any that start because of it.
    pub fn release_transfers(&mut self) {
        while !self.held.is_empty() {
            for held in std::mem::take(&mut self.held) {
                self.handle(Input::Data(match held {
                    Held::Connect(peer) => DataEvent::Connected { peer },
                    Held::Transfer(upload) => DataEvent::TransferEnded {
                        upload,
                        end: TransferEnd::Complete { bytes: 4 },
                    },
                }));
            }
        }
    }

    /// The data connection from the client arrives, now or when released.
    fn client_connects(&mut self, peer: SocketAddr) {
        if self.hold_transfers {
            self.held.push(Held::Connect(peer));
        } else {
            self.session
                .handle(self.now, Input::Data(DataEvent::Connected { peer }));
        }
    }

    /// Feeds `input` at the current time and drains the outputs.
    pub fn handle(&mut self, input: Input<'_>) {
        self.session.handle(self.now, input);
        self.drain();
    }

    /// Advances the clock and lets the session notice.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.handle(Input::Timeout);
    }

    /// The replies so far, encoded, in order.
    pub fn transcript(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for output in &self.outputs {
            if let Output::Reply(reply) = output {
                reply.encode(&mut out);
            }
        }
        out
    }

    /// The number of final (non-1xx) replies so far, greeting excluded.
    pub fn final_replies(&self) -> usize {
        self.outputs
            .iter()
            .filter(|o| matches!(o, Output::Reply(r) if r.code().is_final()))
            .count()
            .saturating_sub(1)
    }

    fn drain(&mut self) {
        loop {
            let output = self.session.poll_output();
            match &output {
                Output::Wait(deadline) => {
                    if let Some(deadline) = deadline {
                        assert!(*deadline >= self.now, "a deadline in the past: {output:?}");
                    }
                    return;
                }
                Output::Finished => {
                    self.finished = true;
                    return;
                }
                Output::Receive(_) | Output::Process(_) | Output::Hold(_) => {
                    assert!(self.session.is_logged_in(), "an upload without a login");
                }
                _ => {}
            }
            assert!(!self.finished, "output after Finished: {output:?}");
            self.outputs.push(output.clone());
            if self.auto {
                self.respond(output);
            }
        }
    }

    fn respond(&mut self, output: Output) {
        let now = self.now;
        match output {
            Output::CheckLogin(login) => {
                let verdict = if login.password() == BAD_PASSWORD {
                    LoginVerdict::Rejected
                } else {
                    LoginVerdict::Accepted {
                        profile: None,
                        store_and_forward: self.store_and_forward,
                    }
                };
                self.session.handle(now, Input::LoginChecked(verdict));
            }
            Output::Listen => {
                self.listeners = self.listeners.wrapping_add(1);
                let port = 50_000u16.wrapping_add(self.listeners);
                let listening = SocketAddr::new(addr(LOCAL).ip(), port);
                self.listening = true;
                self.session
                    .handle(now, Input::Data(DataEvent::Listening(listening)));
            }
            Output::CloseData => {
                // The client will not connect to a closed channel.
                self.listening = false;
                self.held.retain(|held| matches!(held, Held::Transfer(_)));
            }
            // The client connects once STOR was answered: the session waits
            // for it then, so the moment is the same however the control
            // bytes were split.
            Output::Reply(reply) if reply.code().as_u16() == 150 && self.listening => {
                self.listening = false;
                self.client_connects(SocketAddr::new(addr(PEER).ip(), 40_001));
            }
            Output::Connect(target) => self.client_connects(target),
            Output::Send { transfer, .. } if self.hold_transfers => {
                self.held.push(Held::Transfer(transfer));
            }
            Output::Send {
                transfer, bytes, ..
            } => {
                let end = TransferEnd::Complete {
                    bytes: bytes.len() as u64,
                };
                let event = DataEvent::TransferEnded {
                    upload: transfer,
                    end,
                };
                self.session.handle(now, Input::Data(event));
            }
            Output::Receive(request) if self.hold_transfers => {
                self.held.push(Held::Transfer(request.upload));
            }
            Output::Receive(request) => {
                let end = TransferEnd::Complete { bytes: 4 };
                let event = DataEvent::TransferEnded {
                    upload: request.upload,
                    end,
                };
                self.session.handle(now, Input::Data(event));
            }
            Output::Process(request) => {
                let result = if request.file_name.starts_with(b"fail") {
                    Err(ProcessError::transient("the name says so"))
                } else {
                    Ok(())
                };
                let upload = request.upload;
                self.session
                    .handle(now, Input::Processed { upload, result });
            }
            Output::CheckAdmission(upload) => {
                let result = if self.queue_full {
                    Err(ProcessError::storage_full("the queue is full"))
                } else {
                    Ok(())
                };
                self.session
                    .handle(now, Input::Admission { upload, result });
            }
            Output::Hold(request) => {
                let result = if request.file_name.starts_with(b"fail") {
                    Err(ProcessError::transient("the name says so"))
                } else {
                    Ok(())
                };
                let upload = request.upload;
                self.session.handle(now, Input::Held { upload, result });
            }
            _ => {}
        }
    }
}

/// Framing: the same lines whether the bytes come whole or one by one; no
/// line longer than the limit; no line holding a LF.
pub fn framer(data: &[u8]) {
    let max = 64;
    let frame_all = |chunks: &mut dyn Iterator<Item = &[u8]>| {
        let mut framer = LineFramer::new(max);
        let mut frames = Vec::new();
        for chunk in chunks {
            framer.push(chunk, |f| frames.push(f));
        }
        frames
    };
    let whole = frame_all(&mut std::iter::once(data));
    let bytewise = frame_all(&mut data.chunks(1));
    assert_eq!(whole, bytewise);
    for frame in &whole {
        if let Frame::Line(line) = frame {
            assert!(line.len() <= max);
            assert!(!line.contains(&b'\n'));
        }
    }
}

/// Parsing: whatever one line parses to encodes to a line that parses to
/// the same command.
pub fn parse_roundtrip(data: &[u8]) {
    let Some(line) = data.split(|&b| b == b'\n').next() else {
        return;
    };
    let line = Bytes::copy_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
    let Ok(command) = Command::parse(&line) else {
        return;
    };
    let mut encoded = Vec::new();
    command.encode(&mut encoded);
    let reparsed_line = Bytes::copy_from_slice(
        encoded
            .strip_suffix(b"\r\n")
            .expect("an encoded command ends with CRLF"),
    );
    assert_eq!(Command::parse(&reparsed_line), Ok(command), "line {line:?}");
}

/// Splitting: control bytes delivered whole, byte by byte and in the chunks
/// that `data` itself suggests give the same outputs.
pub fn split_independence(data: &[u8], origin: Instant) {
    let whole = outputs_for_chunks(data, data.len().max(1), origin);
    assert_eq!(whole, outputs_for_chunks(data, 1, origin));
    let chunk_len = data.first().map_or(1, |&b| usize::from(b % 16) + 1);
    assert_eq!(whole, outputs_for_chunks(data, chunk_len, origin));
}

/// The outputs of an auto-driven session fed `data` in chunks of
/// `chunk_len` bytes. Transfers end only once all the bytes are in: whether
/// an ABOR arrives before or after a transfer ends is timing, not splitting.
pub fn outputs_for_chunks(data: &[u8], chunk_len: usize, origin: Instant) -> Vec<Output> {
    let mut driver = SimulatedAdapter::new(Config::default(), origin).holding_transfers();
    for chunk in data.chunks(chunk_len.max(1)) {
        driver.handle(Input::ControlBytes(chunk));
    }
    driver.release_transfers();
    driver.outputs
}

/// A session driven by arbitrary inputs and time steps, decoded from
/// `data` (end of file and shutdown included): it never panics, never asks
/// for a deadline in the past, never
/// starts an upload before a login, and never speaks after it finished.
pub fn session(data: &[u8], origin: Instant) {
    let mut config = Config {
        max_line_len: 128,
        ..Config::default()
    };
    if data.first().is_some_and(|b| b % 2 == 1) {
        config.profile = crate::Profile::Devices;
    }
    let mut driver = SimulatedAdapter::new(config, origin).manual();
    let mut bytes = data.iter().copied();
    let peer = addr(PEER);
    let stranger: SocketAddr = "127.0.0.2:40000".parse().expect("valid address");
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        let upload = TransferId(u64::from(arg % 4));
        match op % 12 {
            0 | 1 => {
                let len = usize::from(arg % 48);
                let chunk: Vec<u8> = bytes.by_ref().take(len).collect();
                driver.handle(Input::ControlBytes(&chunk));
            }
            2 => driver.handle(Input::LoginChecked(match arg % 6 {
                0 => LoginVerdict::ACCEPTED,
                1 => LoginVerdict::Accepted {
                    profile: Some(crate::Profile::Devices),
                    store_and_forward: false,
                },
                2 => LoginVerdict::LockedOut,
                3 => LoginVerdict::Accepted {
                    profile: None,
                    store_and_forward: true,
                },
                4 => LoginVerdict::Accepted {
                    profile: Some(crate::Profile::Devices),
                    store_and_forward: true,
                },
                _ => LoginVerdict::Rejected,
            })),
            3 => driver.handle(Input::Data(if arg % 3 == 0 {
                DataEvent::ListenFailed
            } else {
                DataEvent::Listening(SocketAddr::new(peer.ip(), 50_000 + u16::from(arg)))
            })),
            4 => driver.handle(Input::Data(match arg % 3 {
                0 => DataEvent::Connected { peer },
                1 => DataEvent::Connected { peer: stranger },
                _ => DataEvent::ConnectFailed,
            })),
            5 => {
                let end = match arg % 9 {
                    0 => TransferEnd::Complete {
                        bytes: u64::from(arg),
                    },
                    1 => TransferEnd::Complete { bytes: u64::MAX },
                    2 => TransferEnd::TooLarge,
                    3 => TransferEnd::Reset,
                    4 => TransferEnd::Stalled,
                    5 => TransferEnd::TooSlow,
                    6 => TransferEnd::TlsHandshakeFailed,
                    7 => TransferEnd::TlsSessionNotResumed,
                    _ => TransferEnd::SpoolFailed(SpoolFailure::StorageFull),
                };
                driver.handle(Input::Data(DataEvent::TransferEnded { upload, end }));
            }
            6 => driver.handle(Input::Processed {
                upload,
                result: if arg % 2 == 0 {
                    Ok(())
                } else {
                    Err(ProcessError::rejected("fuzz"))
                },
            }),
            7 => driver.advance(Duration::from_millis(u64::from(arg) * u64::from(arg) * 20)),
            8 => driver.handle(match arg % 3 {
                0 => Input::ControlClosed,
                1 => Input::ControlEof,
                _ => Input::LoginChecked(LoginVerdict::LockedOut),
            }),
            9 => driver.handle(Input::Shutdown),
            10 => driver.handle(Input::Admission {
                upload,
                result: queue_answer(arg),
            }),
            _ => driver.handle(Input::Held {
                upload,
                result: queue_answer(arg),
            }),
        }
    }
}

/// A store-and-forward processor's answer, as a fuzzer chose it.
fn queue_answer(arg: u8) -> Result<(), ProcessError> {
    match arg % 3 {
        0 => Ok(()),
        1 => Err(ProcessError::storage_full("fuzz")),
        _ => Err(ProcessError::transient("fuzz")),
    }
}

/// Paths: whatever bytes a client sends as a path, from whatever working
/// folder, every resolved component is a safe name (see [`crate::path`]),
/// so that the path joined beneath any directory stays strictly beneath it.
pub fn path_stays_beneath(cwd: &[u8], path: &[u8]) {
    let limits = crate::path::PathLimits {
        max_depth: 64,
        max_length: 8192,
    };
    let cwd = crate::path::resolve(&[], &Bytes::copy_from_slice(cwd), limits).unwrap_or_default();
    assert_safe_components(&cwd);
    let Ok(resolved) = crate::path::resolve(&cwd, &Bytes::copy_from_slice(path), limits) else {
        return;
    };
    assert_safe_components(&resolved);
    // As a local path: every component a normal one, beneath the base.
    let base = std::path::Path::new("/base");
    let mut joined = base.to_path_buf();
    for component in &resolved {
        use std::os::unix::ffi::OsStrExt;
        joined.push(std::ffi::OsStr::from_bytes(component));
    }
    assert!(joined.starts_with(base));
    let normal = joined
        .strip_prefix(base)
        .map(|rest| rest.components().count())
        .unwrap_or(usize::MAX);
    assert_eq!(normal, resolved.len(), "{joined:?}");
    assert!(
        joined.components().all(|c| matches!(
            c,
            std::path::Component::RootDir | std::path::Component::Normal(_)
        )),
        "{joined:?}"
    );
}

fn assert_safe_components(components: &[Bytes]) {
    for component in components {
        let text = String::from_utf8_lossy(component);
        assert!(!component.is_empty());
        assert!(!component.contains(&0), "{text:?}");
        assert!(
            !component.contains(&b'/') && !component.contains(&b'\\'),
            "{text:?}"
        );
        assert!(!text.contains(['\u{FF0F}', '\u{FF3C}']), "{text:?}");
        assert!(!text.chars().any(crate::path::is_invisible), "{text:?}");
        let first = text.chars().next().unwrap_or('.');
        let last = text.chars().last().unwrap_or(' ');
        assert!(
            !matches!(
                first,
                '.' | '\u{2024}' | '\u{2025}' | '\u{2026}' | '\u{FE52}' | '\u{FF0E}'
            ),
            "{text:?}"
        );
        assert!(!first.is_whitespace() && !first.is_control(), "{text:?}");
        assert!(!last.is_whitespace() && !last.is_control(), "{text:?}");
    }
}

/// Whatever bytes a connection starts with, the PROXY header parser never
/// panics and never claims more than the header: a complete header's
/// length is within the bytes and the bound, every shorter prefix of it is
/// incomplete with an `at_least` that does not reach past it, the reader
/// fed as it asks gives the same answer, and the header encodes back to
/// one that parses to the same addresses.
pub fn proxy_header(data: &[u8]) {
    use crate::proxy::{self, ProxyParse};
    let parsed = proxy::parse_proxy_header(data);
    match parsed {
        Ok(ProxyParse::Incomplete { at_least }) => {
            assert!(at_least > 0);
            assert!(data.len() + at_least <= proxy::MAX_HEADER_LENGTH);
        }
        Ok(ProxyParse::Complete { header, length }) => {
            assert!(length <= data.len() && length <= proxy::MAX_HEADER_LENGTH);
            // The bytes after the header change nothing.
            assert_eq!(proxy::parse_proxy_header(&data[..length]), parsed);
            assert_proxy_prefixes_incomplete(&data[..length]);
            let again = proxy::parse_proxy_header(&header.encode());
            let Ok(ProxyParse::Complete { header: again, .. }) = again else {
                panic!("{header:?} encodes to something that does not parse: {again:?}");
            };
            assert_eq!(again, header);
        }
        Err(_) => {}
    }
    assert_eq!(
        read_proxy_header(data),
        parsed.map(|parse| match parse {
            ProxyParse::Complete { header, length } => Some((header, length)),
            ProxyParse::Incomplete { .. } => None,
        })
    );
}

/// Every strict prefix of the complete header `header` is incomplete, and
/// asks for no byte past the header.
pub fn assert_proxy_prefixes_incomplete(header: &[u8]) {
    use crate::proxy::{self, ProxyParse};
    for end in 0..header.len() {
        match proxy::parse_proxy_header(&header[..end]) {
            Ok(ProxyParse::Incomplete { at_least }) => assert!(
                at_least > 0 && end + at_least <= header.len(),
                "prefix of {end} bytes asks for {at_least} of a {}-byte header",
                header.len()
            ),
            other => panic!("prefix of {end} bytes of a header: {other:?}"),
        }
    }
}

/// The header at the start of `data` as a [`crate::proxy::ProxyHeaderReader`]
/// reads it, taking what it wants each time: the header and the bytes
/// read, `None` if `data` ends first. Asserts that nothing past the header
/// was taken.
pub fn read_proxy_header(
    data: &[u8],
) -> Result<Option<(crate::proxy::ProxyHeader, usize)>, crate::proxy::ProxyError> {
    use crate::proxy::{ProxyHeaderReader, ProxyStep};
    let mut reader = ProxyHeaderReader::new();
    let mut at = 0;
    while at < data.len() {
        let chunk = &data[at..data.len().min(at + reader.wanted())];
        at += chunk.len();
        if let ProxyStep::Done { used, header } = reader.push(chunk)? {
            assert_eq!(used, chunk.len(), "the reader took bytes past the header");
            return Ok(Some((header, at)));
        }
    }
    Ok(None)
}
