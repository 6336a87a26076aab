//! `--s3`: store each upload as an object in an S3 bucket (AWS, or an
//! S3-compatible server: MinIO, Garage, Ceph).
//!
//! A file up to the part size goes in one `PutObject`, streamed from the
//! spool file; a larger one as a multipart upload, its parts read from the
//! file one at a time, so that memory stays flat whatever the size. The
//! object appears when, and only when, it is complete: a multipart upload
//! that fails or is given up on is aborted, leaving neither an object nor
//! parts.

mod answer;
mod credentials;
mod sign;
mod upload;

pub use credentials::{AwsSettings, Credentials};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ftprelay_proto::{ProcessError, Upload};

use crate::destinations::{Delivery, Destination};
use crate::fields::Fields;
use crate::runtime;
use crate::template::{Escape, Template};
use crate::trust::Trust;

/// S3's most parts in one upload: a file over `part size × 10,000` gets
/// larger parts.
const MAX_PARTS: u64 = 10_000;
/// S3's largest object.
const MAX_OBJECT_SIZE: u64 = 5 << 40;
/// S3's longest key, in bytes.
const MAX_KEY_LEN: usize = 1024;

/// Why an S3 destination cannot be made (a bad URL, no credentials): a
/// message naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct S3Error(String);

impl S3Error {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// `--s3`: stores each upload in a bucket under a key made from a
/// [`Template`], complete or not at all.
///
/// Made by [`S3::builder`] from an `s3://BUCKET/KEY-TEMPLATE` URL:
///
/// ```no_run
/// use ftprelay_deliver::{AwsSettings, Destinations, S3};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Keys, region and endpoint as `aws s3 cp` finds them (AWS_* variables,
/// // ~/.aws/credentials, ~/.aws/config); the endpoint set here wins.
/// let bucket = S3::builder("s3://cameras/{user}/{date}/{name}")?
///     .aws(AwsSettings::from_environment(None, None)?)
///     .endpoint("http://127.0.0.1:9000")
///     .build()?;
/// let processor = Destinations::new(vec![Box::new(bucket)]);
/// # let _ = processor;
/// # Ok(())
/// # }
/// ```
///
/// Which failures are worth retrying: almost all, `451`, naming S3's
/// error code and message (no such bucket, a refused key, a clock out of
/// step, an unreachable endpoint: an operator fixes them, and the retry
/// delivers). A file too large for S3 (over 5 TiB, or an answer of
/// `EntityTooLarge`) is permanent, `552`, and so is a key template that
/// makes no usable key for the file (`550`).
///
/// A repeated delivery of one upload (a queue retrying after a crash)
/// writes the same object again: the key is rendered from the upload's
/// [`Fields`](crate::Fields) alone (its `{id}` and `{time}` restored with
/// it), and a `PUT` to a key replaces the object, so the repeat leaves one
/// object of the same bytes.
#[derive(Clone)]
pub struct S3 {
    inner: Arc<Inner>,
}

/// What every request of the destination shares.
struct Inner {
    bucket: String,
    key: Template,
    endpoint: Endpoint,
    region: String,
    credentials: Credentials,
    client: reqwest::Client,
    part_size: u64,
    source: String,
}

/// Where requests go.
#[derive(Debug, Clone)]
struct Endpoint {
    /// `http` or `https`.
    scheme: String,
    /// The host, with its port when not the scheme's default (as the
    /// `Host` header has it).
    host: String,
    /// A path the endpoint's URL had, without its last `/`.
    base_path: String,
    /// `BUCKET.host/KEY` (AWS's virtual-hosted style) rather than
    /// `host/BUCKET/KEY` (path style, what custom endpoints get).
    virtual_host: bool,
    /// The endpoint as given, for messages.
    shown: String,
}

/// Settings for an [`S3`] destination, from [`S3::builder`].
#[derive(Debug, Clone)]
pub struct S3Builder {
    bucket: String,
    key: Template,
    source: String,
    aws: AwsSettings,
    region: Option<String>,
    endpoint: Option<String>,
    credentials: Option<Credentials>,
    part_size: u64,
    timeout: Duration,
    trust: Option<Trust>,
}

impl S3 {
    /// The part size when none is given: over it, a file is sent as a
    /// multipart upload.
    pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
    /// S3's smallest part (but the last).
    pub const MIN_PART_SIZE: u64 = 5 << 20;
    /// S3's largest part.
    pub const MAX_PART_SIZE: u64 = 5 << 30;
    /// The region when neither a setting nor the environment gives one:
    /// AWS's first, and what MinIO and most S3-compatible servers answer
    /// to.
    pub const DEFAULT_REGION: &'static str = "us-east-1";
    /// The key template of `s3://BUCKET` (or `s3://BUCKET/`).
    pub const DEFAULT_KEY: &'static str = "{path}/{name}";

    /// Settings for the bucket and key template of `url`,
    /// `s3://BUCKET/KEY-TEMPLATE`. An empty template is
    /// [`S3::DEFAULT_KEY`], `{path}/{name}`; one ending in `/` (a folder) gets
    /// `{name}` appended. An unknown placeholder, a `.` or `..` folder, or
    /// a bad bucket name is an error.
    pub fn builder(url: &str) -> Result<S3Builder, S3Error> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            S3Error::new(format!("expected s3://BUCKET/KEY-TEMPLATE, got {url:?}"))
        })?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket).map_err(|e| S3Error::new(format!("{url:?}: {e}")))?;
        let key_source = if key.is_empty() {
            S3::DEFAULT_KEY.to_owned()
        } else if key.ends_with('/') {
            format!("{key}{{name}}")
        } else {
            key.to_owned()
        };
        let template =
            Template::parse(&key_source).map_err(|e| S3Error::new(format!("{url:?}: {e}")))?;
        if key_source.split('/').any(|c| c == "." || c == "..") {
            return Err(S3Error::new(format!(
                "{url:?}: a key with a `.` or `..` folder (S3 clients and servers read them differently)"
            )));
        }
        Ok(S3Builder {
            bucket: bucket.to_owned(),
            key: template,
            source: url.to_owned(),
            aws: AwsSettings::default(),
            region: None,
            endpoint: None,
            credentials: None,
            part_size: S3::DEFAULT_PART_SIZE,
            timeout: Duration::from_secs(300),
            trust: None,
        })
    }

    /// The object key for an upload: the template filled in, empty folders
    /// dropped (an empty `{path}` leaves no leading `/`). Made of `fields`
    /// and the template alone: the same fields (a repeated delivery's,
    /// restored) make the same key, and the repeat replaces the object
    /// with the same bytes.
    fn key(&self, fields: &Fields) -> Result<String, ProcessError> {
        let rendered = self.inner.key.render(fields, Escape::None);
        let key = rendered
            .split('/')
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        if key.is_empty() || key.split('/').any(|c| c == "." || c == "..") {
            return Err(ProcessError::rejected(format!(
                "the key template {} gives the key {key:?} for this file",
                self.inner.key
            )));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(ProcessError::rejected(format!(
                "the key is {} bytes, over S3's {MAX_KEY_LEN}",
                key.len()
            )));
        }
        Ok(key)
    }
}

impl S3Builder {
    /// Takes what the AWS environment gives (see [`AwsSettings`]) for
    /// whatever is not set explicitly on this builder, whenever that is
    /// set.
    pub fn aws(mut self, settings: AwsSettings) -> Self {
        self.aws = settings;
        self
    }

    /// The region requests are signed for [default: the environment's,
    /// else [`S3::DEFAULT_REGION`]].
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// An S3-compatible server's URL (`http://127.0.0.1:9000`), reached
    /// path style (`/BUCKET/KEY`) [default: the environment's, else AWS,
    /// `https://BUCKET.s3.REGION.amazonaws.com`].
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The access key [default: the environment's; none at all is an
    /// error].
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Files over `bytes` go as multipart uploads of parts of `bytes`
    /// (between [`S3::MIN_PART_SIZE`] and [`S3::MAX_PART_SIZE`]) [default:
    /// [`S3::DEFAULT_PART_SIZE`]]; memory holds a small buffer of a part, not a
    /// part.
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes;
        self
    }

    /// Each request (a whole small file, one part) fails after `timeout`
    /// [default: 5 minutes]; give less than the relay's processing timeout
    /// so that the log says why.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The roots HTTPS endpoints are verified against [default: the
    /// system's].
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = Some(trust);
        self
    }

    /// The destination; an error says which setting cannot be used.
    pub fn build(self) -> Result<S3, S3Error> {
        if !(S3::MIN_PART_SIZE..=S3::MAX_PART_SIZE).contains(&self.part_size) {
            return Err(S3Error::new(format!(
                "the S3 part size must be between 5 MiB and 5 GiB, got {} bytes",
                self.part_size
            )));
        }
        let credentials = self.credentials.or(self.aws.credentials).ok_or_else(|| {
            S3Error::new(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                     or give a profile of ~/.aws/credentials",
            )
        })?;
        let region = self
            .region
            .or(self.aws.region)
            .unwrap_or_else(|| S3::DEFAULT_REGION.to_owned());
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(S3Error::new(format!("not an S3 region: {region:?}")));
        }
        let endpoint = match self.endpoint.or(self.aws.endpoint) {
            Some(url) => Endpoint::custom(&url)?,
            None => Endpoint::aws(&region, &self.bucket),
        };
        let trust = self.trust.unwrap_or_else(Trust::system);
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(trust.client_config())
            // A redirect would be followed unsigned, or to another host.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10).min(self.timeout))
            .timeout(self.timeout)
            .user_agent(concat!("ftprelay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| S3Error::new(format!("cannot make the S3 client: {e}")))?;
        Ok(S3 {
            inner: Arc::new(Inner {
                bucket: self.bucket,
                key: self.key,
                endpoint,
                region,
                credentials,
                client,
                part_size: self.part_size,
                source: self.source,
            }),
        })
    }
}

impl Endpoint {
    /// AWS's own endpoint for `region`: virtual-hosted, but path style for
    /// a bucket with a dot (which AWS's certificate would not cover).
    fn aws(region: &str, bucket: &str) -> Self {
        let host = format!("s3.{region}.amazonaws.com");
        Self {
            scheme: "https".to_owned(),
            shown: format!("https://{host}"),
            host,
            base_path: String::new(),
            virtual_host: !bucket.contains('.'),
        }
    }

    /// An S3-compatible server at `url`, path style.
    fn custom(url: &str) -> Result<Self, S3Error> {
        let bad = |why: &str| {
            S3Error::new(format!(
                "the S3 endpoint {:?} {why}",
                crate::redact::without_password(url)
            ))
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("is not http:// or https://"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("has a query or fragment"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "has a user name or password (credentials come from AWS_* or ~/.aws)",
            ));
        }
        let host = parsed.host_str().ok_or_else(|| bad("has no host"))?;
        // The url crate drops a port that is the scheme's default, as the
        // Host header must.
        let host = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self {
            scheme: parsed.scheme().to_owned(),
            host,
            base_path: parsed.path().trim_end_matches('/').to_owned(),
            virtual_host: false,
            shown: url.to_owned(),
        })
    }
}

/// S3's bucket naming rules, loosely (3 to 63 characters; letters, digits,
/// `.`, `-`, `_` as older buckets and some servers allow).
fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("no bucket name".to_owned());
    }
    if !(3..=63).contains(&bucket.len()) {
        return Err(format!(
            "the bucket name {bucket:?} is not 3 to 63 characters"
        ));
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(format!(
            "the bucket name {bucket:?} has characters other than letters, digits, `.`, `-`, `_`"
        ));
    }
    Ok(())
}

impl Destination for S3 {
    fn deliver<'a>(&'a self, upload: &'a Upload, fields: &'a Fields) -> Delivery<'a> {
        let key = self.key(fields);
        let content_type = mime_guess::from_path(fields.name())
            .first_or_octet_stream()
            .essence_str()
            .to_owned();
        let inner = self.inner.clone();
        let path = upload.path().to_owned();
        Box::pin(async move {
            let key = key?;
            runtime::on_tokio(upload::store(inner, path, key, content_type))
                .await
                .and_then(|stored| stored)
        })
    }
}

impl fmt::Display for S3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3 {}", self.inner.source)
    }
}

impl fmt::Debug for S3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3")
            .field("source", &self.inner.source)
            .field("endpoint", &self.inner.endpoint.shown)
            .field("region", &self.inner.region)
            .field("credentials", &self.inner.credentials)
            .field("part_size", &self.inner.part_size)
            .finish()
    }
}

#[cfg(test)]
mod tests;
