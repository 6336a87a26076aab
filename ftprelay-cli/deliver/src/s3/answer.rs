//! The little XML S3 speaks that the destination needs: an upload's id,
//! an `<Error>`'s code and message, the list of parts that completes an
//! upload. S3's answers are flat and fixed; a full XML parser would buy
//! nothing here. What the server sends is bounded before it gets here and
//! cleaned before it reaches the log.

/// The most of an answer's body that is read (an `<Error>` is a few
/// hundred bytes; a server sending more is cut off).
pub(super) const BODY_LIMIT: usize = 64 * 1024;

/// The most of a server's text (an error code or message) put in a log
/// line.
const SHOWN_LIMIT: usize = 300;

/// The text of the first `<name>…</name>` in `xml`, entities decoded.
pub(super) fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(unescape(&xml[start..start + len]))
}

/// An S3 error: its code (`NoSuchBucket`) and message, when the body had
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct S3Fault {
    pub(super) code: Option<String>,
    pub(super) message: Option<String>,
}

impl S3Fault {
    /// The `<Error>` in `body`, if there is one.
    pub(super) fn parse(body: &str) -> Option<Self> {
        let start = body.find("<Error>")?;
        let error = &body[start..];
        Some(Self {
            code: element(error, "Code").map(|c| shown(&c)),
            message: element(error, "Message").map(|m| shown(&m)),
        })
    }

    /// `NoSuchBucket: The specified bucket does not exist`.
    pub(super) fn describe(&self) -> String {
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.clone(),
            (None, Some(message)) => message.clone(),
            (None, None) => "an error without a code".to_owned(),
        }
    }
}

/// What a failed answer says: the error's code and message, or for a body
/// without one (a proxy's page) its first words.
pub(super) fn describe_failure(body: &str) -> String {
    match S3Fault::parse(body) {
        Some(fault) => fault.describe(),
        None if body.trim().is_empty() => "no error body".to_owned(),
        None => format!("a body that is not an S3 error: {:?}", shown(body.trim())),
    }
}

/// The body of CompleteMultipartUpload: each part's number and ETag, in
/// order.
pub(super) fn complete_body(etags: &[String]) -> String {
    let mut body = String::with_capacity(100 + etags.len() * 80);
    body.push_str(r#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#);
    for (at, etag) in etags.iter().enumerate() {
        body.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
            at + 1,
            escape(etag)
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

/// A server's text fit for one log line: control characters (a newline
/// that would forge a second line) as spaces, at most [`SHOWN_LIMIT`]
/// characters.
pub(super) fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(SHOWN_LIMIT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(SHOWN_LIMIT).is_some() {
        out.push('…');
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_read_and_cleaned() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>\
                    <Message>The specified bucket does not exist\r\nforged: line</Message>\
                    <BucketName>nope</BucketName></Error>";
        assert_eq!(
            describe_failure(body),
            "NoSuchBucket: The specified bucket does not exist  forged: line"
        );
        assert_eq!(describe_failure(""), "no error body");
        assert!(describe_failure("<html>bad gateway</html>").contains("bad gateway"));
        let long = "x".repeat(10_000);
        assert!(describe_failure(&long).chars().count() < 400);
    }

    #[test]
    fn the_upload_id_and_etags_round_trip() {
        let answer = "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                      <Bucket>b</Bucket><Key>k</Key><UploadId>a&amp;b~1</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(element(answer, "UploadId").as_deref(), Some("a&b~1"));
        assert_eq!(element(answer, "Missing"), None);
        let body = complete_body(&["\"e1\"".to_owned(), "\"e<2>\"".to_owned()]);
        assert!(
            body.contains(
                "<Part><PartNumber>1</PartNumber><ETag>\"e1\"</ETag></Part>\
                           <Part><PartNumber>2</PartNumber><ETag>\"e&lt;2&gt;\"</ETag></Part>"
            ),
            "{body}"
        );
    }

    #[test]
    fn an_error_inside_a_200_is_found() {
        // CompleteMultipartUpload can answer 200 and then fail in the body.
        let body = "<?xml version=\"1.0\"?>\n\n  <Error><Code>InternalError</Code>\
                    <Message>We encountered an internal error.</Message></Error>";
        let fault = S3Fault::parse(body).expect("an error");
        assert_eq!(fault.code.as_deref(), Some("InternalError"));
        assert_eq!(S3Fault::parse("<CompleteMultipartUploadResult/>"), None);
    }
}
