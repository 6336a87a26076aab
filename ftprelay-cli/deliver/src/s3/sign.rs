//! AWS Signature Version 4 in the `Authorization` header, for S3.
//!
//! Header signing rather than presigned URLs: S3-compatible servers
//! (MinIO, Garage, Ceph, moto) all check it, and no secret-derived value
//! ends up in a URL that a proxy or a server log could keep. The body is
//! not hashed (`UNSIGNED-PAYLOAD`, which S3 accepts): hashing it would
//! mean reading every part twice; TLS protects it on the way.
//!
//! The HMAC-SHA256 and SHA-256 are ring's, already built for rustls.

use std::time::{SystemTime, UNIX_EPOCH};

use ring::{digest, hmac};

use super::credentials::Credentials;
use crate::fields::civil;

/// The `x-amz-content-sha256` of requests whose body is not hashed.
pub(super) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// One request to sign: what the canonical request is made of.
#[derive(Debug)]
pub(super) struct Unsigned<'a> {
    pub(super) method: &'a str,
    /// The path, already URI-encoded ([`uri_encode`] with `/` kept).
    pub(super) path: &'a str,
    /// The query parameters, not yet encoded, in any order.
    pub(super) query: &'a [(&'a str, &'a str)],
    /// The headers to sign besides those [`sign`] adds (`host` must be
    /// among them), lowercase names.
    pub(super) headers: &'a [(&'a str, &'a str)],
    /// The body's SHA-256 in hex, or [`UNSIGNED_PAYLOAD`].
    pub(super) payload: &'a str,
}

/// The headers a signed request carries, besides those it was signed with.
#[derive(Debug)]
pub(super) struct Signed {
    /// `x-amz-date`.
    pub(super) date: String,
    /// `Authorization`.
    pub(super) authorization: String,
}

/// Signs `request` as `credentials` for `region` at `now`. The request must
/// also carry `x-amz-date` ([`Signed::date`]), `x-amz-content-sha256`
/// (its payload) and, with a session token, `x-amz-security-token`: they
/// are signed too.
pub(super) fn sign(
    request: &Unsigned<'_>,
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) -> Signed {
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (day, time) = civil(secs);
    let day = day.replace('-', "");
    let date = format!("{day}T{time}Z");

    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    headers.push((
        "x-amz-content-sha256".to_owned(),
        request.payload.to_owned(),
    ));
    headers.push(("x-amz-date".to_owned(), date.clone()));
    if let Some(token) = credentials.session_token() {
        headers.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();

    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.path,
        canonical_query(request.query),
        request.payload
    );
    let scope = format!("{day}/{region}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let key = [day.as_str(), region, "s3", "aws4_request"].iter().fold(
        format!("AWS4{}", credentials.secret_access_key()).into_bytes(),
        |key, part| mac(&key, part.as_bytes()),
    );
    let signature = hex(&mac(&key, string_to_sign.as_bytes()));
    Signed {
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id()
        ),
        date,
    }
}

/// The query as SigV4 canonicalises it: each name and value encoded,
/// sorted by name then value, `name=value` joined by `&`.
pub(super) fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(name, value)| (uri_encode(name, false), uri_encode(value, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes every byte but the unreserved characters of RFC 3986
/// (and `/`, when `keep_slash`), upper-case hex: S3's own rule for keys
/// and query values.
pub(super) fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || keep_slash && b == b'/'
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2013-05-24 00:00:00 UTC, the time of AWS's documented examples.
    fn example_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn example_credentials() -> Credentials {
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
    }

    /// "Example: GET Object" of AWS's "Signature Calculations for the
    /// Authorization Header".
    #[test]
    fn the_documented_get_object_signature() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let signed = sign(
            &Unsigned {
                method: "GET",
                path: "/test.txt",
                query: &[],
                headers: &[
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("range", "bytes=0-9"),
                ],
                payload: empty,
            },
            &example_credentials(),
            "us-east-1",
            example_time(),
        );
        assert_eq!(signed.date, "20130524T000000Z");
        assert_eq!(
            signed.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// "Example: GET Bucket Lifecycle": a query parameter without a value.
    #[test]
    fn the_documented_query_signature() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let signed = sign(
            &Unsigned {
                method: "GET",
                path: "/",
                query: &[("lifecycle", "")],
                headers: &[("host", "examplebucket.s3.amazonaws.com")],
                payload: empty,
            },
            &example_credentials(),
            "us-east-1",
            example_time(),
        );
        assert!(
            signed.authorization.ends_with(
                "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
            ),
            "{}",
            signed.authorization
        );
    }

    #[test]
    fn keys_and_queries_are_encoded_as_s3_does() {
        assert_eq!(uri_encode("a b/c+d~é", true), "a%20b/c%2Bd~%C3%A9");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(
            canonical_query(&[("uploadId", "x y"), ("partNumber", "2")]),
            "partNumber=2&uploadId=x%20y"
        );
        assert_eq!(canonical_query(&[("uploads", "")]), "uploads=");
    }

    #[test]
    fn a_session_token_is_signed() {
        let credentials = example_credentials().with_session_token("TOKEN");
        let signed = sign(
            &Unsigned {
                method: "PUT",
                path: "/k",
                query: &[],
                headers: &[("host", "h")],
                payload: UNSIGNED_PAYLOAD,
            },
            &credentials,
            "us-east-1",
            example_time(),
        );
        assert!(
            signed.authorization.contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
            ),
            "{}",
            signed.authorization
        );
    }
}
