//! `--http`: send each upload to an HTTP API: the raw file, or a
//! `multipart/form-data` form with the file and fields (paperless-ngx,
//! ntfy, Telegram, Discord, Home Assistant, any webhook).

mod body;
mod settings;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ftprelay_proto::{ProcessError, Upload};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::multipart;

pub use settings::{HttpError, Method};

use crate::destinations::{Delivery, Destination};
use crate::fields::Fields;
use crate::runtime;
use crate::template::{Escape, Template};
use crate::trust::Trust;

/// The most of a failed answer's body quoted in the log.
const QUOTED: usize = 300;

/// The header naming the upload, so that an API can tell a repeated
/// delivery from a new one (the IETF's httpapi draft, Stripe's and
/// others' convention).
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// `--http`: sends each upload to a URL; a 2xx answer is success.
///
/// Which failures are worth retrying: the server's answer says. A 4xx
/// (the request is wrong: a bad token, a missing field, a wrong path) is
/// permanent, `550` ([`ProcessError::rejected`]), or `552` for a `413
/// Content Too Large` ([`ProcessError::too_large`]); but `408 Request
/// Timeout` and `429 Too Many Requests` pass, and are transient (`451`),
/// as are a 5xx, a redirect (never followed), a connection that fails and
/// a request that times out. The status and the start of the answer go
/// in the log.
///
/// The file is the request body (`Content-Type` from its extension), or,
/// with [`Http::form`], a `multipart/form-data` part with its name and
/// content type beside [`Http::field`]s. Either way it is streamed from the
/// spool file, and the request carries `X-Ftprelay-File-Name`,
/// `X-Ftprelay-User` and `X-Ftprelay-Size`. The URL, header values and
/// field values are [`Template`]s.
///
/// Every request carries `Idempotency-Key: {id}`, the upload's id: the
/// same on each attempt at one upload, a retry of a queue after a crash
/// too, so that an API that honours it stores a repeated delivery once
/// (an `Idempotency-Key` header given with [`Http::header`] is sent
/// instead).
///
/// The request runs on tokio (under any executor) and gives up before the
/// relay's processing timeout; a delivery dropped (the relay gave up on
/// it) stops sending at once.
///
/// ```no_run
/// use std::time::Duration;
/// use ftprelay_deliver::{Http, Trust};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Every upload into paperless-ngx, titled by its name.
/// let paperless = Http::new(
///     "https://paperless.example.org/api/documents/post_document/",
///     &Trust::system(),
///     Duration::from_secs(60),
/// )?
/// .header("Authorization: Token 0123456789abcdef")?
/// .form("document")?
/// .field("title={stem}")?;
/// # let _ = paperless;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Http {
    url: Template,
    method: Method,
    headers: Vec<(HeaderName, Template)>,
    form: Option<Form>,
    timeout: Duration,
    client: reqwest::Client,
}

/// The multipart form: the file's field and the others.
#[derive(Debug, Clone)]
struct Form {
    file: String,
    fields: Vec<(String, Template)>,
}

impl Http {
    /// POSTs the raw file to `url` (a template; values percent-encoded),
    /// trusting `trust` for `https://`, giving up on a request before
    /// `process_timeout` (the relay's) has passed. A URL that is not
    /// `http://` or `https://` with a host is an error.
    pub fn new(url: &str, trust: &Trust, process_timeout: Duration) -> Result<Self, HttpError> {
        let url = settings::url(url)?;
        let timeout = request_timeout(process_timeout);
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(trust.client_config())
            // A redirect is an answer that is not a 2xx: followed, a
            // 301/302/303 would turn into a GET without the file, and a 2xx
            // to that GET would count as the file delivered.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(30)))
            .build()
            .map_err(|e| HttpError(format!("cannot make the HTTP client: {}", chain(&e))))?;
        Ok(Self {
            url,
            method: Method::Post,
            headers: Vec::new(),
            form: None,
            timeout,
            client,
        })
    }

    /// Sends with `method` instead of POST.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Adds the header `Name: value` (the value a template, its values with
    /// control characters percent-encoded). A header given twice is sent
    /// twice; one the relay would set (`Content-Type` of a raw body) is
    /// replaced. A name or value no server would take, or a header the
    /// relay must set (`Content-Length`, `Transfer-Encoding`, the
    /// `Content-Type` of a form), is an error.
    pub fn header(mut self, line: &str) -> Result<Self, HttpError> {
        let (name, value) = settings::header(line)?;
        if name == header::CONTENT_TYPE && self.form.is_some() {
            return Err(form_sets_content_type());
        }
        self.headers.push((name, value));
        Ok(self)
    }

    /// Sends a `multipart/form-data` form with the file under `field`
    /// (with its safe name and a content type from its extension) in
    /// place of the raw file.
    pub fn form(mut self, field: &str) -> Result<Self, HttpError> {
        let file = settings::field_name(field, "http form's file field")?;
        if self.headers.iter().any(|(n, _)| n == header::CONTENT_TYPE) {
            return Err(form_sets_content_type());
        }
        let fields = self.form.take().map(|f| f.fields).unwrap_or_default();
        self.form = Some(Form { file, fields });
        Ok(self)
    }

    /// Adds the form field `NAME=VALUE` (the value a template, as it is:
    /// the form's encoding carries any text), after [`Http::form`].
    pub fn field(mut self, assignment: &str) -> Result<Self, HttpError> {
        let field = settings::field(assignment)?;
        match &mut self.form {
            Some(form) => form.fields.push(field),
            None => {
                return Err(HttpError(format!(
                    "the http form field {assignment:?} needs a form: the file's field (--http-form FIELD, form = \"FIELD\" in a file)"
                )));
            }
        }
        Ok(self)
    }

    /// The request for `upload`, ready to be sent from any task.
    fn request(&self, upload: &Upload, fields: &Fields) -> Result<Request, ProcessError> {
        let rendered = self.url.render(fields, Escape::UrlComponent);
        let url = reqwest::Url::parse(&rendered).map_err(|e| {
            ProcessError::transient(format!("the URL made for this upload is not one: {e}"))
        })?;
        let mut headers = HeaderMap::new();
        let ours = [
            ("x-ftprelay-file-name", header_value(upload.file_name())),
            ("x-ftprelay-user", header_value(upload.user())),
            ("x-ftprelay-size", upload.size().to_string()),
        ];
        for (name, value) in ours {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        // The upload's id, the same on every attempt at this upload (a
        // queue's retry too): an API that honours the header stores a
        // repeat once. One the operator gives replaces it, below.
        if let Ok(value) = HeaderValue::from_str(fields.id()) {
            headers.insert(HeaderName::from_static(IDEMPOTENCY_KEY), value);
        }
        let content_type = mime_guess::from_path(fields.name()).first_or_octet_stream();
        if self.form.is_none() {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(upload.size()));
            if let Ok(value) = HeaderValue::from_str(content_type.as_ref()) {
                headers.insert(header::CONTENT_TYPE, value);
            }
        }
        // The operator's headers: the first of a name replaces ours, the
        // next are added.
        let mut given: Vec<&HeaderName> = Vec::new();
        for (name, template) in &self.headers {
            let rendered = template.render(fields, Escape::Header);
            let value = HeaderValue::from_bytes(rendered.as_bytes()).map_err(|_| {
                ProcessError::transient(format!(
                    "the {name} header made for this upload is not one"
                ))
            })?;
            if given.contains(&name) {
                headers.append(name.clone(), value);
            } else {
                headers.insert(name.clone(), value);
                given.push(name);
            }
        }
        let form = self.form.as_ref().map(|form| FormRequest {
            file: form.file.clone(),
            name: fields.name().to_owned(),
            content_type: content_type.to_string(),
            fields: form
                .fields
                .iter()
                .map(|(name, value)| (name.clone(), value.render(fields, Escape::None)))
                .collect(),
        });
        Ok(Request {
            client: self.client.clone(),
            method: self.method.to_reqwest(),
            url,
            headers,
            form,
            path: upload.path().to_owned(),
            size: upload.size(),
            timeout: self.timeout,
        })
    }
}

fn form_sets_content_type() -> HttpError {
    HttpError(
        "a Content-Type header cannot go with --http-form: the form sets its own (multipart/form-data)"
            .to_owned(),
    )
}

impl Destination for Http {
    fn deliver<'a>(&'a self, upload: &'a Upload, fields: &'a Fields) -> Delivery<'a> {
        let request = self.request(upload, fields);
        Box::pin(async move { runtime::on_tokio(request?.send()).await? })
    }
}

impl fmt::Display for Http {
    /// The method and the URL's origin: its path and query may hold a
    /// secret (a Telegram bot token, an ntfy topic), never logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = self.url.source();
        let origin_end = source
            .find("://")
            .map(|scheme| {
                let after = scheme + 3;
                source[after..]
                    .find(['/', '?', '#'])
                    .map_or(source.len(), |at| after + at)
            })
            .unwrap_or(source.len());
        let origin = &source[..origin_end];
        let origin = match origin.rfind('@') {
            Some(at) => format!(
                "{}{}",
                &origin[..origin.find("://").map_or(0, |s| s + 3)],
                &origin[at + 1..]
            ),
            None => origin.to_owned(),
        };
        let more = if origin_end < source.len() {
            "/…"
        } else {
            ""
        };
        write!(f, "http {} {origin}{more}", self.method)
    }
}

/// One upload's request, owned, to run on the tokio runtime.
struct Request {
    client: reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    headers: HeaderMap,
    form: Option<FormRequest>,
    path: PathBuf,
    size: u64,
    timeout: Duration,
}

/// One upload's form: the file's field, name and type, and the fields.
struct FormRequest {
    file: String,
    name: String,
    content_type: String,
    fields: Vec<(String, String)>,
}

impl Request {
    /// Sends the request; a 2xx answer is success.
    async fn send(self) -> Result<(), ProcessError> {
        // Dropped when this future is (finished, failed, or aborted by the
        // relay giving up): the body stops then.
        let cancelled = body::Cancelled::default();
        let stream = body::file(&self.path, self.size, &cancelled)
            .await
            .map_err(|e| ProcessError::transient(format!("cannot read the spooled file: {e}")))?;
        let body = reqwest::Body::wrap_stream(stream);
        let mut builder = self
            .client
            .request(self.method, self.url)
            .headers(self.headers);
        if let Some(form) = self.form {
            let part = multipart::Part::stream_with_length(body, self.size)
                .file_name(form.name)
                .mime_str(&form.content_type)
                .map_err(|e| ProcessError::transient(format!("the file's content type: {e}")))?;
            let mut multipart = multipart::Form::new().percent_encode_noop();
            for (name, value) in form.fields {
                multipart = multipart.text(name, value);
            }
            builder = builder.multipart(multipart.part(form.file, part));
        } else {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(|e| {
            if e.is_timeout() {
                ProcessError::transient(format!(
                    "the request took longer than {} s",
                    self.timeout.as_secs_f32()
                ))
            } else {
                ProcessError::transient(format!("sending the file: {}", chain(&e)))
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
        let quoted = quote(response).await;
        let reason = match location {
            Some(location) if status.is_redirection() => format!(
                "the server answered {status} (a redirect to {location}; redirects are not followed: give that URL){quoted}"
            ),
            _ => format!("the server answered {status}{quoted}"),
        };
        Err(failure(status, reason))
    }
}

/// The failure a non-2xx `status` is: a 4xx says the request itself is
/// wrong, and sending it again cannot help (`413`: the file is too
/// large), but for `408` and `429`, which say to come back later; a 5xx,
/// a redirect, anything else may pass.
fn failure(status: reqwest::StatusCode, reason: String) -> ProcessError {
    use reqwest::StatusCode;
    match status {
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            ProcessError::transient(reason)
        }
        StatusCode::PAYLOAD_TOO_LARGE => ProcessError::too_large(reason),
        _ if status.is_client_error() => ProcessError::rejected(reason),
        _ => ProcessError::transient(reason),
    }
}

/// The start of a failed answer's body (the API's reason, often), one
/// line, for the log; empty when there is none.
async fn quote(mut response: reqwest::Response) -> String {
    let mut start = Vec::new();
    while start.len() < QUOTED {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                start.extend_from_slice(&chunk[..chunk.len().min(QUOTED - start.len())])
            }
            _ => break,
        }
    }
    let text: String = String::from_utf8_lossy(&start)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// An error and its causes, one line ("error sending request: client
/// error (Connect): tcp connect error: Connection refused"), without the
/// URL (it may hold a secret).
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The request's own timeout: before the relay's processing timeout (a
/// second before it, or half of it when that is shorter), so that the
/// request fails, and says why, before the relay gives up on it.
fn request_timeout(process_timeout: Duration) -> Duration {
    process_timeout
        .saturating_sub(Duration::from_secs(1))
        .max(process_timeout / 2)
}

/// Client bytes as an HTTP header value: printable ASCII as is, anything
/// else percent-encoded.
fn header_value(bytes: &[u8]) -> String {
    let mut value = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'%' || b == b' ' {
            value.push(b as char);
        } else {
            value.push_str(&format!("%{b:02X}"));
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_gives_up_before_the_relay() {
        for secs in [1, 2, 60] {
            let relay = Duration::from_secs(secs);
            assert!(request_timeout(relay) < relay, "{secs} s");
        }
        assert_eq!(
            request_timeout(Duration::from_secs(60)),
            Duration::from_secs(59)
        );
    }

    #[test]
    fn a_4xx_is_permanent_but_for_408_and_429() {
        let class = |code: u16| {
            let status = reqwest::StatusCode::from_u16(code).expect("status");
            let error = failure(status, String::new());
            (error.is_permanent(), error.reply().code().as_u16())
        };
        for code in [400, 401, 403, 404, 405, 422] {
            assert_eq!(class(code), (true, 550), "{code}");
        }
        assert_eq!(class(413), (true, 552));
        for code in [408, 429, 500, 502, 503, 504, 301, 302, 307, 100] {
            assert_eq!(class(code), (false, 451), "{code}");
        }
    }

    #[test]
    fn header_values() {
        assert_eq!(header_value(b"scan 1.pdf"), "scan 1.pdf");
        assert_eq!(header_value(b"a\r\nb%"), "a%0D%0Ab%25");
        assert_eq!(header_value(b"\xC4"), "%C4");
    }

    fn http(url: &str) -> Http {
        Http::new(url, &Trust::empty(), Duration::from_secs(60)).expect("valid")
    }

    #[test]
    fn the_log_never_shows_the_path_or_credentials() {
        let telegram = http("https://api.telegram.org/bot123:SECRET/sendDocument");
        assert_eq!(telegram.to_string(), "http POST https://api.telegram.org/…");
        let basic = http("http://me:pw@127.0.0.1:8080").method(Method::Put);
        assert_eq!(basic.to_string(), "http PUT http://127.0.0.1:8080");
    }

    #[test]
    fn a_form_and_its_fields_go_together() {
        assert!(http("http://x/").field("a=b").is_err());
        assert!(http("http://x/").form("").is_err());
        let form = http("http://x/").form("document").expect("form");
        assert!(form.clone().field("title={stem}").is_ok());
        assert!(form.header("Content-Type: text/plain").is_err());
        let typed = http("http://x/")
            .header("content-type: text/plain")
            .expect("raw");
        assert!(typed.form("document").is_err());
    }
}
