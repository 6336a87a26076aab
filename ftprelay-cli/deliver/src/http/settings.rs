//! The settings of an HTTP destination, checked when they are given: a
//! header that no server would take, a form field that cannot be named, a
//! URL that is not one, are start-up errors and never a `451` on every
//! upload.

use std::fmt;
use std::str::FromStr;

use reqwest::header::{self, HeaderName, HeaderValue};

use crate::redact;
use crate::template::Template;

/// Why an HTTP destination's setting cannot be used; the message names
/// the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub(super) String);

/// The request method: what the receiving API expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Method {
    /// `POST` (webhooks, form uploads: paperless-ngx, Telegram, Discord).
    #[default]
    Post,
    /// `PUT` (the file is the resource: ntfy, WebDAV, presigned URLs).
    Put,
}

impl Method {
    pub(super) fn to_reqwest(self) -> reqwest::Method {
        match self {
            Self::Post => reqwest::Method::POST,
            Self::Put => reqwest::Method::PUT,
        }
    }
}

impl FromStr for Method {
    type Err = HttpError;

    /// `POST` or `PUT`, in any case.
    fn from_str(text: &str) -> Result<Self, HttpError> {
        if text.eq_ignore_ascii_case("post") {
            Ok(Self::Post)
        } else if text.eq_ignore_ascii_case("put") {
            Ok(Self::Put)
        } else {
            Err(HttpError(format!(
                "the HTTP method must be POST or PUT, got {text:?}"
            )))
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Post => "POST",
            Self::Put => "PUT",
        })
    }
}

/// The URL template, checked as a URL with every placeholder filled in:
/// `http://` or `https://`, with a host.
pub(super) fn url(text: &str) -> Result<Template, HttpError> {
    // The URL may carry a secret (a password, a token in its path): errors
    // show its origin alone.
    let named = |e: String| HttpError(format!("the http URL {}: {e}", redact::origin(text)));
    let template = Template::parse(text).map_err(|e| named(e.without_template()))?;
    let sample = reqwest::Url::parse(&filled(&template)).map_err(|e| named(e.to_string()))?;
    if !matches!(sample.scheme(), "http" | "https") {
        return Err(named("needs an http:// or https:// URL".to_owned()));
    }
    if sample.host_str().is_none_or(str::is_empty) {
        return Err(named("has no host".to_owned()));
    }
    Ok(template)
}

/// `Name: value`: the name checked (a token that is not one of the
/// headers the request's framing sets), the value a template whose text
/// is a valid header value.
pub(super) fn header(line: &str) -> Result<(HeaderName, Template), HttpError> {
    let named = |e: &str| HttpError(format!("the http header {line:?}: {e}"));
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| named("expected 'Name: value'"))?;
    let name = HeaderName::from_str(name.trim())
        .map_err(|_| named("the name is not a valid header name"))?;
    if [header::CONTENT_LENGTH, header::TRANSFER_ENCODING].contains(&name) {
        return Err(named("the relay sets this header itself"));
    }
    let value = value.trim();
    let template = Template::parse(value).map_err(|e| named(&e.to_string()))?;
    // What a template adds is escaped for a header (Escape::Header); the
    // text around it is the operator's, and checked here.
    HeaderValue::from_bytes(filled(&template).as_bytes()).map_err(|_| {
        named("the value has a character a header cannot carry (a control character)")
    })?;
    Ok((name, template))
}

/// A multipart form field's name: printable, no quote (it is written
/// between quotes, as browsers do).
pub(super) fn field_name(name: &str, what: &str) -> Result<String, HttpError> {
    if name.is_empty() || name.chars().any(|c| c.is_control() || c == '"') {
        return Err(HttpError(format!(
            "the {what} {name:?} is not a form field name (empty, a quote or a control character)"
        )));
    }
    Ok(name.to_owned())
}

/// `NAME=VALUE`: a form field, the value a template.
pub(super) fn field(assignment: &str) -> Result<(String, Template), HttpError> {
    let (name, value) = assignment.split_once('=').ok_or_else(|| {
        HttpError(format!(
            "the http form field {assignment:?}: expected NAME=VALUE"
        ))
    })?;
    let name = field_name(name.trim(), "http form field")?;
    let template = Template::parse(value)
        .map_err(|e| HttpError(format!("the http form field {assignment:?}: {e}")))?;
    Ok((name, template))
}

/// The template's text with every placeholder filled in by a value that
/// is valid wherever a value may go (`x`): what start-up checks see.
fn filled(template: &Template) -> String {
    let source = template.source();
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let brace = &rest[at..];
        if brace.starts_with("{{") || brace.starts_with("}}") {
            out.push_str(&brace[..1]);
            rest = &brace[2..];
        } else if let Some(end) = brace.find('}').filter(|_| brace.starts_with('{')) {
            out.push('x');
            rest = &brace[end + 1..];
        } else {
            // Not a template Template::parse accepted; keep it as it is.
            out.push_str(brace);
            rest = "";
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!("put".parse(), Ok(Method::Put));
        assert_eq!("POST".parse(), Ok(Method::Post));
        assert!("GET".parse::<Method>().is_err());
    }

    #[test]
    fn urls_are_checked_with_their_placeholders_filled_in() {
        for good in [
            "http://127.0.0.1:8080/hook",
            "https://{user}.example.org/in/{name}?at={date}",
            "https://ntfy.sh/cam-{{x}}",
        ] {
            assert!(url(good).is_ok(), "{good}");
        }
        for bad in [
            "ftp://example.org/",
            "example.org/hook",
            "https://",
            "https://x/{usr}",
            "http://host:99999/",
        ] {
            let error = url(bad).expect_err(bad);
            assert!(error.to_string().starts_with("the http URL"), "{error}");
        }
        // The error names what is wrong, never the URL's secrets.
        let error = url("https://u:SECRET@api.example.org/botTOKEN/{usr}").expect_err("unknown");
        let message = error.to_string();
        assert!(message.contains("{usr}"), "{message}");
        assert!(message.contains("api.example.org"), "{message}");
        assert!(
            !message.contains("SECRET") && !message.contains("TOKEN"),
            "{message}"
        );
    }

    #[test]
    fn headers_are_checked() {
        let (name, value) = header("Authorization: Token {user}").expect("valid");
        assert_eq!(name, header::AUTHORIZATION);
        assert_eq!(value.source(), "Token {user}");
        let (name, value) = header("Filename:{name}").expect("valid");
        assert_eq!(name.as_str(), "filename");
        assert_eq!(value.source(), "{name}");
        for bad in [
            "no colon",
            "Bad Name: x",
            ": empty name",
            "X: a\u{7}b",
            "Content-Length: 3",
            "transfer-encoding: chunked",
            "X: {nope}",
        ] {
            let error = header(bad).expect_err(bad);
            assert!(error.to_string().contains("http header"), "{error}");
        }
    }

    #[test]
    fn fields_are_checked() {
        let (name, value) = field("title=Scan {date}").expect("valid");
        assert_eq!((name.as_str(), value.source()), ("title", "Scan {date}"));
        let (name, value) = field("payload_json={{\"content\":\"x\"}}").expect("valid");
        assert_eq!(name, "payload_json");
        assert_eq!(value.source(), "{{\"content\":\"x\"}}");
        for bad in ["novalue", "=x", "a\"b=x", "t={nope}"] {
            assert!(field(bad).is_err(), "{bad}");
        }
    }
}
