//! `--mail-to`: each upload mailed as an attachment, over SMTP.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ftprelay_proto::{ProcessError, Upload};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::destinations::{Delivery, Destination};
use crate::fields::Fields;
use crate::runtime::on_tokio;
use crate::template::{Escape, Template};
use crate::trust::Trust;

/// The subject of a message when none is given.
pub const DEFAULT_SUBJECT: &str = "{name} from {user}";

/// The largest file mailed when no limit is given: 25 MiB, what the common
/// providers accept (before the attachment's base64 encoding, which adds a
/// third).
pub const DEFAULT_MAX_SIZE: u64 = 25 << 20;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte (port 465).
    Implicit,
    /// `smtp://…?tls=required`: STARTTLS, and no delivery when the server
    /// does not offer it or the handshake fails (port 587).
    StartTlsRequired,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the server offers it,
    /// plain text otherwise (port 587). A man in the middle can remove the
    /// offer: prefer `required`.
    StartTlsOpportunistic,
    /// `smtp://`: plain text (port 25), for a relay on the same host or
    /// network.
    None,
}

impl SmtpSecurity {
    fn default_port(self) -> u16 {
        match self {
            Self::Implicit => 465,
            Self::StartTlsRequired | Self::StartTlsOpportunistic => 587,
            Self::None => 25,
        }
    }
}

/// Why a mail destination cannot be made: a bad URL or address; the
/// message is one line, and never holds the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MailError(String);

/// What a user name keeps unencoded when shown in a URL: the unreserved
/// characters (RFC 3986).
const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An SMTP server, as a URL gives it:
/// `smtp[s]://[USER:PASSWORD@]HOST[:PORT][?tls=required|opportunistic]`.
///
/// The user and the password are percent-decoded (write `%40` for an `@`
/// in the user name). The password is never shown: [`fmt::Display`] writes
/// the URL without it.
#[derive(Clone)]
pub struct SmtpServer {
    host: String,
    port: u16,
    security: SmtpSecurity,
    credentials: Option<(String, String)>,
}

impl SmtpServer {
    /// Parses `url`; an error says what is wrong, without the password.
    pub fn parse(url: &str) -> Result<Self, MailError> {
        // Never quote the URL itself: it may hold the password.
        let bad = |why: &str| MailError(format!("--smtp: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(&format!("not a URL ({e})")))?;
        let tls = parsed
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        if let Some((key, _)) = parsed.query_pairs().find(|(key, _)| key != "tls") {
            return Err(bad(&format!(
                "unknown parameter {key:?} (only tls=required or tls=opportunistic)"
            )));
        }
        let security = match (parsed.scheme(), tls.as_deref()) {
            ("smtps", None) => SmtpSecurity::Implicit,
            ("smtp", None) => SmtpSecurity::None,
            ("smtp", Some("required")) => SmtpSecurity::StartTlsRequired,
            ("smtp", Some("opportunistic")) => SmtpSecurity::StartTlsOpportunistic,
            ("smtp", Some(other)) => {
                return Err(bad(&format!(
                    "tls={other:?}: expected tls=required or tls=opportunistic"
                )));
            }
            ("smtps", Some(_)) => {
                return Err(bad("smtps:// is TLS already; tls= is for smtp://"));
            }
            (scheme, _) => {
                return Err(bad(&format!(
                    "the scheme is {scheme}://, expected smtp:// or smtps://"
                )));
            }
        };
        if parsed.path() != "" && parsed.path() != "/" {
            return Err(bad("a path after the server (expected smtp://HOST[:PORT])"));
        }
        if parsed.fragment().is_some() {
            return Err(bad("a #fragment after the server"));
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(bad("no server name")),
        };
        let decode = |part: &str, what: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| bad(&format!("the {what} is not UTF-8 once percent-decoded")))
        };
        let credentials = match (parsed.username(), parsed.password()) {
            ("", None) => None,
            ("", Some(_)) => return Err(bad("a password without a user name")),
            (_, None) => return Err(bad("a user name without a password (USER:PASSWORD@)")),
            (user, Some(password)) => Some((decode(user, "user")?, decode(password, "password")?)),
        };
        Ok(Self {
            port: parsed.port().unwrap_or(security.default_port()),
            host,
            security,
            credentials,
        })
    }

    /// The server's name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, given or the scheme's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How the connection is secured.
    pub fn security(&self) -> SmtpSecurity {
        self.security
    }

    /// The user name the relay logs in as, if any.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(user, _)| user.as_str())
    }
}

impl fmt::Display for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            SmtpSecurity::Implicit => "smtps",
            _ => "smtp",
        };
        write!(f, "{scheme}://")?;
        if let Some(user) = self.user() {
            // Percent-encoded as in a URL, so that the line reads back as
            // one; the password is left out.
            let user = percent_encoding::utf8_percent_encode(user, USERINFO);
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        match self.security {
            SmtpSecurity::StartTlsRequired => f.write_str("?tls=required"),
            SmtpSecurity::StartTlsOpportunistic => f.write_str("?tls=opportunistic"),
            SmtpSecurity::Implicit | SmtpSecurity::None => Ok(()),
        }
    }
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpServer({self})")
    }
}

/// `--mail-to`: mails each upload, one message per file, the file attached
/// under its safe name with the content type its extension says, and a
/// short text naming the file, its size, the user and the device.
///
/// The message is built in memory (lettre's way), the attachment
/// base64-encoded, then written out whole to be sent: a delivery holds up
/// to about four times the file's size while it runs. The size limit
/// ([`Mail::max_size`]) is what bounds that: a larger file is refused with
/// `552` before a byte of it is read. All mail deliveries of the process
/// together hold at most 256 MiB this way: beyond it, a message waits for
/// others to be sent (within the relay's processing timeout).
///
/// The server's side of a session (its greeting, its answers, TLS
/// records) is capped at 1 MiB: a server sending more, say a reply line
/// that never ends, is cut off with `451` and the reason in the log,
/// its bytes never taking more of the relay's memory than that.
///
/// The SMTP exchange runs on tokio (the caller's runtime or a shared one),
/// under any executor, and stops when the delivery is dropped: a message
/// the relay gave up on (the device was told `451`) is never completed
/// afterwards.
///
/// Which failures are worth retrying: a server that cannot be reached,
/// fails TLS, refuses the login or answers a 4xx (try later) is
/// transient, `451` (the device, or a queue, tries again); the server
/// refusing the message itself with a 5xx to `MAIL FROM`, `RCPT TO` or
/// its data (a sender or recipient it will not take, content it rejects)
/// is permanent, `550`, and a "message too large" (`552`) a `552`, as is
/// a file over [`Mail::max_size`]; `530` (authentication required) stays
/// transient: the settings are wrong, not the file. The server's answer
/// goes in the log.
///
/// Each message's `Message-ID` is `<{id}.ftprelay@DOMAIN>` (DOMAIN the
/// sender's) and its `Date` the upload's: a delivery repeated for the same
/// upload (a queue retrying after a crash) sends the same message again,
/// which mailboxes and clients that deduplicate by `Message-ID` show once.
///
/// ```no_run
/// use ftprelay_deliver::{Destinations, Mail, SmtpServer, Template, Trust};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = SmtpServer::parse("smtp://scanner%40example.org:secret@smtp.example.org?tls=required")?;
/// let mail = Mail::new(
///     server,
///     "Scanner <scanner@example.org>",
///     &["office@example.org"],
///     &Trust::system(),
/// )?
/// .subject(Template::parse("Scan {name} ({date})")?);
/// let processor = Destinations::new(vec![Box::new(mail)]);
/// # let _ = processor;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Mail {
    server: SmtpServer,
    /// For STARTTLS.
    tls: Option<TlsParameters>,
    /// For `smtps://`, whose handshake is ours (under the byte budget).
    implicit_tls: Option<Arc<rustls::ClientConfig>>,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: Template,
    max_size: u64,
    timeout: Duration,
}

impl Mail {
    /// Mails to every address of `to`, from `from` (each `addr@host` or
    /// `Name <addr@host>`), through `server`, verifying its certificate
    /// against `trust`. The subject is [`DEFAULT_SUBJECT`], the limit
    /// [`DEFAULT_MAX_SIZE`], each SMTP step's timeout 60 s.
    pub fn new(
        server: SmtpServer,
        from: &str,
        to: &[impl AsRef<str>],
        trust: &Trust,
    ) -> Result<Self, MailError> {
        let from = mailbox(from, "the sender (--mail-from)")?;
        if to.is_empty() {
            return Err(MailError("no recipient (--mail-to)".to_owned()));
        }
        let to = to
            .iter()
            .map(|address| mailbox(address.as_ref(), "a recipient (--mail-to)"))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match server.security {
            SmtpSecurity::None => None,
            _ => Some(tls_parameters(&server.host, trust)?),
        };
        let implicit_tls = match server.security {
            SmtpSecurity::Implicit => Some(Arc::new(trust.client_config())),
            _ => None,
        };
        Ok(Self {
            server,
            tls,
            implicit_tls,
            from,
            to,
            subject: Template::parse(DEFAULT_SUBJECT)
                .unwrap_or_else(|_| unreachable!("the default subject is a valid template")),
            max_size: DEFAULT_MAX_SIZE,
            timeout: Duration::from_secs(60),
        })
    }

    /// The subject, a template rendered per upload.
    pub fn subject(mut self, subject: Template) -> Self {
        self.subject = subject;
        self
    }

    /// The largest file mailed, in bytes; a larger one fails with `552`
    /// (the device is told its file is too large), unread.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// The longest wait for connecting to the server (and for the TLS
    /// handshake of `smtps://`): set it below the relay's processing
    /// timeout, so that an unreachable server fails with its reason in the
    /// log rather than by the relay giving up. A server that stalls later,
    /// between answers, is cut off by the relay's processing timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What one SMTP session needs, owned (it runs on tokio, `'static`).
    fn session(&self) -> Session {
        Session {
            server: self.server.clone(),
            tls: self.tls.clone(),
            implicit_tls: self.implicit_tls.clone(),
            timeout: self.timeout,
        }
    }

    /// The text of the message.
    fn text(&self, fields: &Fields, upload: &Upload) -> String {
        let path = fields.folders().join("/");
        let folder = if path.is_empty() {
            String::new()
        } else {
            format!(" into {path}")
        };
        format!(
            "{name} ({size} bytes) was uploaded{folder} by user {user} from {peer}.\n\n-- \nftprelay\n",
            name = fields.name(),
            size = upload.size(),
            user = fields.value(crate::template::Placeholder::User),
            peer = fields.value(crate::template::Placeholder::Peer),
        )
    }
}

/// A mailbox from the operator's text; an error names the role.
fn mailbox(text: &str, role: &str) -> Result<Mailbox, MailError> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| MailError(format!("{role}: {text:?} is not a mail address ({e})")))
}

/// TLS for `host`, trusting exactly the roots of `trust`.
fn tls_parameters(host: &str, trust: &Trust) -> Result<TlsParameters, MailError> {
    let mut builder =
        TlsParameters::builder(host.to_owned()).certificate_store(CertificateStore::None);
    for der in trust.certificates() {
        // lettre refuses the whole list for one certificate rustls cannot
        // use (a malformed system root): such roots are skipped, as the
        // Trust's own store does.
        if rustls::RootCertStore::empty().add(der.clone()).is_err() {
            continue;
        }
        if let Ok(certificate) = Certificate::from_der(der.to_vec()) {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build_rustls()
        .map_err(|e| MailError(format!("--smtp: TLS for {host}: {e}")))
}

/// `<{id}.ftprelay@DOMAIN>`, DOMAIN the sender's: made of the upload's id
/// and the settings alone, the same for every delivery of one upload (a
/// queue's retry after a crash too), so that a mailbox or a mail client
/// that already has the message can tell the repeat for what it is.
fn message_id(fields: &Fields, from: &Mailbox) -> String {
    format!("<{}.ftprelay@{}>", fields.id(), from.email.domain())
}

/// The attachment's content type, from the extension of `name`.
fn content_type(name: &str) -> ContentType {
    let guessed = mime_guess::from_path(name).first_or_octet_stream();
    ContentType::parse(guessed.essence_str()).unwrap_or_else(|_| {
        ContentType::parse("application/octet-stream").unwrap_or(ContentType::TEXT_PLAIN)
    })
}

/// Control characters (a CR, an LF) of `text` made spaces: a subject is
/// one line. And no encoded word: lettre writes ASCII as it is, so a name
/// such as `=?utf-8?b?Li4vLmJhc2hyYw==?=` would be decoded by mail
/// clients (to `../.bashrc`, or to a line break and a header); `=?` is
/// written `=%3F`.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace("=?", "=%3F")
}

impl Destination for Mail {
    fn deliver<'a>(&'a self, upload: &'a Upload, fields: &'a Fields) -> Delivery<'a> {
        Box::pin(async move {
            let size = upload.size();
            if size > self.max_size {
                return Err(ProcessError::too_large(format!(
                    "the file is {size} bytes, over the mail size limit of {} bytes (--mail-max-size)",
                    self.max_size
                )));
            }
            // The attachment's name, with no encoded word in it either.
            let name = fields.name().replace("=?", "=%3F");
            let subject = one_line(&self.subject.render(fields, Escape::None));
            let text = self.text(fields, upload);
            let mut builder = Message::builder()
                .from(self.from.clone())
                .subject(subject)
                .message_id(Some(message_id(fields, &self.from)))
                // The upload's time, not the sending's: a repeat of the
                // delivery is the same message.
                .date(fields.at());
            for to in &self.to {
                builder = builder.to(to.clone());
            }
            let session = self.session();
            let path = upload.path().to_owned();
            let limit = self.max_size;
            on_tokio(async move {
                // The memory this message will hold, reserved first: many
                // large mails at once wait their turn instead of holding
                // four times their files each.
                let _memory = MESSAGE_MEMORY
                    .acquire_many(message_memory_kib(size))
                    .await
                    .map_err(|e| ProcessError::transient(format!("mail memory: {e}")))?;
                // Read at most one byte more than the limit: a spool file
                // that grew since it was counted cannot take more memory.
                let file = tokio::fs::File::open(&path).await.map_err(|e| {
                    ProcessError::transient(format!("reading the spooled file: {e}"))
                })?;
                let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                file.take(limit.saturating_add(1))
                    .read_to_end(&mut bytes)
                    .await
                    .map_err(|e| {
                        ProcessError::transient(format!("reading the spooled file: {e}"))
                    })?;
                if bytes.len() as u64 > limit {
                    return Err(ProcessError::too_large(format!(
                        "the file grew over the mail size limit of {limit} bytes (--mail-max-size)"
                    )));
                }
                let attachment = Attachment::new(name.clone()).body(bytes, content_type(&name));
                let message = builder
                    .multipart(
                        MultiPart::mixed()
                            .singlepart(SinglePart::plain(text))
                            .singlepart(attachment),
                    )
                    .map_err(|e| ProcessError::transient(format!("building the message: {e}")))?;
                session.send(&message).await
            })
            .await?
        })
    }
}

/// The most bytes an SMTP server may send in one session (its greeting,
/// its answers, the TLS records around them): 1 MiB. The replies of a
/// whole session are a few KiB; without a bound, a server sending a reply
/// line that never ends would fill the relay's memory (lettre reads a whole
/// line before checking its length).
const MAX_SERVER_BYTES: u64 = 1 << 20;

/// One SMTP session: what lettre's transport did (connect, STARTTLS or
/// implicit TLS, login, send, QUIT), over a connection of our own whose
/// bytes from the server are counted ([`Budgeted`]).
struct Session {
    server: SmtpServer,
    tls: Option<TlsParameters>,
    implicit_tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

impl Session {
    /// Sends `message` to its envelope's recipients.
    async fn send(&self, message: &Message) -> Result<(), ProcessError> {
        let hello = ClientId::default();
        let stream = self.connect().await?;
        let stream: Box<dyn AsyncTokioStream> = match &self.implicit_tls {
            Some(config) => Box::new(self.implicit_tls(config, stream).await?),
            None => Box::new(stream),
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &hello)
            .await
            .map_err(|e| smtp_error(&e))?;
        // On an error the connection is dropped as it is (lettre already
        // sent QUIT where it could; after a failed STARTTLS handshake it
        // has no stream left to send it on).
        self.exchange(&mut connection, &hello, message).await?;
        // QUIT, its answer ignored (the message is accepted by now), and
        // the connection closed: as lettre's tokio transport does.
        connection.abort().await;
        Ok(())
    }

    /// STARTTLS as the URL asks, the login, the message.
    async fn exchange(
        &self,
        connection: &mut AsyncSmtpConnection,
        hello: &ClientId,
        message: &Message,
    ) -> Result<(), ProcessError> {
        let starttls = match self.server.security {
            // Required: a server not offering STARTTLS is a failure
            // (lettre's own error), before a byte of the message is sent.
            SmtpSecurity::StartTlsRequired => true,
            SmtpSecurity::StartTlsOpportunistic => connection.can_starttls(),
            SmtpSecurity::Implicit | SmtpSecurity::None => false,
        };
        if starttls {
            let Some(tls) = self.tls.clone() else {
                return Err(ProcessError::transient(
                    "SMTP: no TLS parameters for STARTTLS".to_owned(),
                ));
            };
            connection
                .starttls(tls, hello)
                .await
                .map_err(|e| smtp_error(&e))?;
        }
        if let Some((user, password)) = &self.server.credentials {
            let credentials = Credentials::new(user.clone(), password.clone());
            connection
                .auth(DEFAULT_MECHANISMS, &credentials)
                .await
                .map_err(|e| smtp_error(&e))?;
        }
        connection
            .send(message.envelope(), &message.formatted())
            .await
            .map(|_| ())
            .map_err(|e| transaction_error(&e))
    }

    /// A TCP connection to the server, to the first of its addresses that
    /// answers within the timeout; its reads are budgeted.
    async fn connect(&self) -> Result<Budgeted<TcpStream>, ProcessError> {
        let (host, port) = (self.server.host.as_str(), self.server.port);
        let fail = |why: String| ProcessError::transient(format!("SMTP: connecting: {why}"));
        let addresses = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| fail(format!("resolving {host}: {e}")))?;
        let mut last = None;
        for address in addresses {
            match tokio::time::timeout(self.timeout, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => {
                    return Ok(Budgeted {
                        peer: address,
                        inner: stream,
                        left: MAX_SERVER_BYTES,
                    });
                }
                Ok(Err(e)) => last = Some(format!("{address}: {e}")),
                Err(_) => last = Some(format!("{address}: timed out after {:?}", self.timeout)),
            }
        }
        Err(fail(
            last.unwrap_or_else(|| format!("{host} has no address")),
        ))
    }

    /// The TLS handshake of `smtps://`, over the budgeted connection (the
    /// budget counts the server's TLS records).
    async fn implicit_tls(
        &self,
        config: &Arc<rustls::ClientConfig>,
        stream: Budgeted<TcpStream>,
    ) -> Result<ImplicitTls, ProcessError> {
        let host = &self.server.host;
        let fail = |why: String| ProcessError::transient(format!("SMTP: TLS with {host}: {why}"));
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| fail(format!("not a server name ({e})")))?;
        let handshake = tokio_rustls::TlsConnector::from(Arc::clone(config)).connect(name, stream);
        match tokio::time::timeout(self.timeout, handshake).await {
            Ok(Ok(stream)) => Ok(ImplicitTls(stream)),
            Ok(Err(e)) => Err(fail(e.to_string())),
            Err(_) => Err(fail(format!("no handshake within {:?}", self.timeout))),
        }
    }
}

/// A connection whose reads fail once the server has sent more than
/// [`MAX_SERVER_BYTES`]: whatever lettre buffers from it is bounded.
struct Budgeted<S> {
    inner: S,
    peer: SocketAddr,
    /// The bytes the server may still send.
    left: u64,
}

impl<S: AsyncRead + Unpin> AsyncRead for Budgeted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // Read into a small buffer of our own, at most one byte over the
        // budget: that byte tells a server over it from one that is done.
        let mut chunk = [0u8; 8192];
        let room = usize::try_from(self.left.saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(buf.remaining())
            .min(chunk.len());
        let mut limited = ReadBuf::new(&mut chunk[..room]);
        match Pin::new(&mut self.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let read = limited.filled();
                if read.len() as u64 > self.left {
                    self.left = 0;
                    return Poll::Ready(Err(io::Error::other(format!(
                        "the server sent more than {MAX_SERVER_BYTES} bytes in one session"
                    ))));
                }
                self.left -= read.len() as u64;
                buf.put_slice(read);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Budgeted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> fmt::Debug for Budgeted<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Budgeted({}, {} bytes left)", self.peer, self.left)
    }
}

impl AsyncTokioStream for Budgeted<TcpStream> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

/// The `smtps://` connection: TLS over the budgeted TCP connection.
struct ImplicitTls(tokio_rustls::client::TlsStream<Budgeted<TcpStream>>);

impl AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl fmt::Debug for ImplicitTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImplicitTls({:?})", self.0.get_ref().0)
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.0.get_ref().0.peer)
    }
}

/// The memory all messages being built and sent may hold at once, in KiB:
/// 256 MiB. A message holds about four times its file (the bytes, their
/// base64, the formatted message, the encoder's buffers).
const MESSAGE_MEMORY_KIB: u32 = 256 * 1024;

/// The memory reservations of messages in flight, shared by every mail
/// destination of the process.
static MESSAGE_MEMORY: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MESSAGE_MEMORY_KIB as usize);

/// The KiB a message of a `size`-byte file reserves: four times the file
/// (eight 25 MB mails at once peaked at 378 MB of RSS when it reserved
/// three), at least 1, at most the whole budget (a file over it waits until no
/// other message is in flight).
fn message_memory_kib(size: u64) -> u32 {
    let kib = size.saturating_mul(4).div_ceil(1024).max(1);
    u32::try_from(kib)
        .unwrap_or(u32::MAX)
        .min(MESSAGE_MEMORY_KIB)
}

/// The delivery's error for an SMTP failure before the message's
/// transaction (connecting, the greeting, STARTTLS, the login): `552` for
/// the server's "message too large", `451` for anything else (an
/// unreachable server, a refused login, a bad certificate, another error
/// answer: settings an operator can fix, or a server that comes back; the
/// log says why).
fn smtp_error(error: &lettre::transport::smtp::Error) -> ProcessError {
    let reason = format!("SMTP: {error}");
    match error.status().map(u16::from) {
        Some(552) => ProcessError::too_large(reason),
        _ => ProcessError::transient(reason),
    }
}

/// The delivery's error for a failure of the message's transaction (`MAIL
/// FROM`, `RCPT TO`, `DATA`, the message): a 5xx is the server refusing
/// this message for good (the sender, a recipient, the content), never to
/// be sent again (`550`), `552` (too large) a `552`; but `530`
/// (authentication required) is the settings' fault and passes once they
/// are fixed, as do a 4xx and a broken connection (`451`).
fn transaction_error(error: &lettre::transport::smtp::Error) -> ProcessError {
    let reason = format!("SMTP: {error}");
    match error.status().map(u16::from) {
        Some(552) => ProcessError::too_large(reason),
        Some(530) => ProcessError::transient(reason),
        Some(500..=599) => ProcessError::rejected(reason),
        _ => ProcessError::transient(reason),
    }
}

impl fmt::Display for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mail to ")?;
        for (n, to) in self.to.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", to.email)?;
        }
        write!(f, " via {}", self.server)
    }
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mail({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_line_without_encoded_words() {
        assert_eq!(one_line("a\r\nBcc: x"), "a  Bcc: x");
        assert_eq!(
            one_line("=?utf-8?b?aW52b2ljZQ0KQmNjOiB4QGV2aWwub3Jn?=.pdf"),
            "=%3Futf-8?b?aW52b2ljZQ0KQmNjOiB4QGV2aWwub3Jn?=.pdf"
        );
    }

    #[test]
    fn a_repeated_delivery_has_the_same_message_id() {
        let from = mailbox("Scanner <scan@example.org>", "test").expect("valid");
        let first = Fields::for_test("a.pdf", &[]);
        let repeat = Fields::for_test_restored("a.pdf", &[], first.id()).expect("valid");
        let other = Fields::for_test("a.pdf", &[]);
        assert_eq!(
            message_id(&first, &from),
            format!("<{}.ftprelay@example.org>", first.id())
        );
        assert_eq!(message_id(&repeat, &from), message_id(&first, &from));
        assert_ne!(message_id(&other, &from), message_id(&first, &from));
    }

    #[test]
    fn messages_reserve_four_times_their_file_within_the_budget() {
        assert_eq!(message_memory_kib(0), 1);
        assert_eq!(message_memory_kib(1024), 4);
        assert_eq!(message_memory_kib(25 << 20), 100 * 1024);
        assert_eq!(message_memory_kib(u64::MAX), MESSAGE_MEMORY_KIB);
    }

    #[test]
    fn the_server_may_send_its_budget_and_not_a_byte_more() {
        use tokio::io::AsyncWriteExt as _;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let read_all = |sent: u64| {
            runtime.block_on(async move {
                let (mut server, client) = tokio::io::duplex(64 << 10);
                let writer = tokio::spawn(async move {
                    let chunk = vec![b'a'; 4096];
                    let mut left = sent;
                    while left > 0 {
                        let n = left.min(chunk.len() as u64) as usize;
                        if server.write_all(&chunk[..n]).await.is_err() {
                            break;
                        }
                        left -= n as u64;
                    }
                });
                let mut budgeted = Budgeted {
                    inner: client,
                    peer: SocketAddr::from(([127, 0, 0, 1], 25)),
                    left: MAX_SERVER_BYTES,
                };
                let mut received = Vec::new();
                let result = budgeted.read_to_end(&mut received).await;
                writer.abort();
                (result, received.len() as u64)
            })
        };
        let (result, received) = read_all(MAX_SERVER_BYTES);
        assert_eq!(result.expect("within the budget") as u64, MAX_SERVER_BYTES);
        assert_eq!(received, MAX_SERVER_BYTES);
        let (result, received) = read_all(MAX_SERVER_BYTES + 1);
        let error = result.expect_err("over the budget").to_string();
        assert!(error.contains("more than 1048576 bytes"), "{error}");
        assert!(received <= MAX_SERVER_BYTES, "{received}");
    }

    #[test]
    fn urls_are_read_as_lettre_reads_them() {
        let server = SmtpServer::parse("smtp://relay.lan").expect("plain");
        assert_eq!(
            (server.host(), server.port(), server.security()),
            ("relay.lan", 25, SmtpSecurity::None)
        );
        assert_eq!(server.user(), None);
        let server = SmtpServer::parse("smtps://mail.example.org").expect("implicit");
        assert_eq!(
            (server.port(), server.security()),
            (465, SmtpSecurity::Implicit)
        );
        let server = SmtpServer::parse(
            "smtp://me%40example.org:p%40ss%3Aword@mail.example.org?tls=required",
        )
        .expect("starttls");
        assert_eq!(
            (server.port(), server.security()),
            (587, SmtpSecurity::StartTlsRequired)
        );
        assert_eq!(server.user(), Some("me@example.org"));
        assert_eq!(
            server.credentials.as_ref().map(|(_, p)| p.as_str()),
            Some("p@ss:word")
        );
        let server = SmtpServer::parse("smtp://[::1]:2525?tls=opportunistic").expect("v6");
        assert_eq!((server.host(), server.port()), ("::1", 2525));
        assert_eq!(server.security(), SmtpSecurity::StartTlsOpportunistic);
        assert_eq!(server.to_string(), "smtp://[::1]:2525?tls=opportunistic");
    }

    #[test]
    fn bad_urls_are_named_without_the_password() {
        for bad in [
            "mail.example.org",
            "http://u:hunter2@mail.example.org",
            "smtp://u:hunter2@mail.example.org?tls=yes",
            "smtps://u:hunter2@mail.example.org?tls=required",
            "smtp://u:hunter2@mail.example.org/path",
            "smtp://u:hunter2@mail.example.org?ehlo=x",
            "smtp://:hunter2@mail.example.org",
            "smtp://user@mail.example.org",
            "smtp://",
        ] {
            let error = SmtpServer::parse(bad).expect_err(bad).to_string();
            assert!(error.starts_with("--smtp: "), "{bad}: {error}");
            assert!(!error.contains("hunter2"), "{bad}: {error}");
            assert!(!error.contains('\n'), "{bad}: {error}");
        }
    }

    #[test]
    fn the_password_is_never_shown() {
        let server = SmtpServer::parse("smtp://scan%40x.org:hunter2@mail.x.org:2525?tls=required")
            .expect("valid");
        let mail = Mail::new(
            server,
            "scan@x.org",
            &["a@x.org", "b@x.org"],
            &Trust::empty(),
        )
        .expect("valid");
        let shown = format!("{mail} {mail:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            mail.to_string(),
            "mail to a@x.org, b@x.org via smtp://scan%40x.org@mail.x.org:2525?tls=required"
        );
    }

    #[test]
    fn bad_addresses_are_named() {
        let server = SmtpServer::parse("smtp://relay.lan").expect("valid");
        let error = Mail::new(
            server.clone(),
            "not an address",
            &["a@x.org"],
            &Trust::empty(),
        )
        .expect_err("bad from");
        assert!(error.to_string().contains("--mail-from"), "{error}");
        let error = Mail::new(
            server.clone(),
            "a@x.org",
            &["a@x.org", "@@"],
            &Trust::empty(),
        )
        .expect_err("bad to");
        assert!(error.to_string().contains("\"@@\""), "{error}");
        let none: [&str; 0] = [];
        assert!(Mail::new(server, "a@x.org", &none, &Trust::empty()).is_err());
    }

    #[test]
    fn content_types_come_from_the_extension() {
        assert_eq!(
            content_type("scan.pdf"),
            ContentType::parse("application/pdf").expect("type")
        );
        assert_eq!(
            content_type("cam.JPG"),
            ContentType::parse("image/jpeg").expect("type")
        );
        assert_eq!(
            content_type("noextension"),
            ContentType::parse("application/octet-stream").expect("type")
        );
        assert_eq!(one_line("a\r\nb"), "a  b");
    }
}
