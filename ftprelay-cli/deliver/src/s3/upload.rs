//! The requests: one `PutObject` for a file up to the part size, else a
//! multipart upload (create, the parts one at a time, complete), aborted
//! on any failure and when the delivery is dropped, so that S3 never shows
//! a partial object nor keeps parts that nobody will complete.

use std::error::Error as _;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use ftprelay_proto::ProcessError;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HOST};
use reqwest::{Body, Method, Response};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::answer::{self, BODY_LIMIT, S3Fault};
use super::sign::{self, UNSIGNED_PAYLOAD, Unsigned};
use super::{Inner, MAX_OBJECT_SIZE, MAX_PARTS};

/// The bytes of the file read at a time into a request body: what memory
/// holds of a part, whatever its size.
const CHUNK: usize = 256 * 1024;

/// Stores the file at `path` under `key`.
pub(super) async fn store(
    inner: Arc<Inner>,
    path: PathBuf,
    key: String,
    content_type: String,
) -> Result<(), ProcessError> {
    let size = tokio::fs::metadata(&path)
        .await
        .map_err(|e| ProcessError::transient(format!("reading the spooled file: {e}")))?
        .len();
    if size > MAX_OBJECT_SIZE {
        return Err(ProcessError::too_large(format!(
            "{size} bytes, over S3's largest object (5 TiB)"
        )));
    }
    let object = format!("s3://{}/{key}", inner.bucket);
    if size <= inner.part_size {
        let body = file_body(&path, 0, size).await?;
        let response = inner
            .send(
                Method::PUT,
                &key,
                &[],
                Some(&content_type),
                body,
                size,
                "PutObject",
            )
            .await?;
        read_body(response, "PutObject").await?;
        tracing::info!(object = %object, size, content_type, "stored");
        return Ok(());
    }
    let parts = multipart(&inner, &path, &key, &content_type, size).await?;
    tracing::info!(object = %object, size, parts, content_type, "stored");
    Ok(())
}

/// A multipart upload of the file; the number of parts it took.
async fn multipart(
    inner: &Arc<Inner>,
    path: &Path,
    key: &str,
    content_type: &str,
    size: u64,
) -> Result<u64, ProcessError> {
    let created = inner
        .send(
            Method::POST,
            key,
            &[("uploads", "")],
            Some(content_type),
            Body::from(Vec::new()),
            0,
            "CreateMultipartUpload",
        )
        .await?;
    let answer = read_body(created, "CreateMultipartUpload").await?;
    let upload_id = answer::element(&answer, "UploadId")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ProcessError::transient(format!(
                "S3 answered CreateMultipartUpload without an UploadId: {}",
                answer::shown(&answer)
            ))
        })?;
    // From here on, the parts are S3's until completed or aborted: the
    // guard aborts if this future is dropped (the relay gave up).
    let mut guard = AbortOnDrop(Some((inner.clone(), key.to_owned(), upload_id.clone())));
    let sent = send_parts(inner, path, key, &upload_id, size).await;
    if sent.is_err() {
        abort(inner, key, &upload_id).await;
    }
    guard.0 = None;
    sent
}

/// The parts, one at a time, then CompleteMultipartUpload.
async fn send_parts(
    inner: &Inner,
    path: &Path,
    key: &str,
    upload_id: &str,
    size: u64,
) -> Result<u64, ProcessError> {
    // At most 10,000 parts: a file too large for that gets larger ones.
    let part_size = inner.part_size.max(size.div_ceil(MAX_PARTS));
    let mut etags: Vec<String> = Vec::new();
    let mut offset = 0;
    while offset < size {
        let len = part_size.min(size - offset);
        let number = (etags.len() + 1).to_string();
        let body = file_body(path, offset, len).await?;
        let response = inner
            .send(
                Method::PUT,
                key,
                &[("partNumber", &number), ("uploadId", upload_id)],
                None,
                body,
                len,
                "UploadPart",
            )
            .await?;
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                ProcessError::transient(format!("S3 answered UploadPart {number} without an ETag"))
            })?;
        read_body(response, "UploadPart").await?;
        etags.push(etag);
        offset += len;
    }
    let list = answer::complete_body(&etags);
    let len = list.len() as u64;
    let response = inner
        .send(
            Method::POST,
            key,
            &[("uploadId", upload_id)],
            Some("application/xml"),
            Body::from(list),
            len,
            "CompleteMultipartUpload",
        )
        .await?;
    // A 200 is sent before the object is assembled; a failure then comes
    // as an <Error> in the body.
    let answer = read_body(response, "CompleteMultipartUpload").await?;
    if let Some(fault) = S3Fault::parse(&answer) {
        return Err(ProcessError::transient(format!(
            "S3 failed CompleteMultipartUpload after answering 200: {}",
            fault.describe()
        )));
    }
    Ok(etags.len() as u64)
}

/// AbortMultipartUpload, best effort: a failure is logged (the parts may
/// stay until a lifecycle rule removes them), never an error of its own.
async fn abort(inner: &Inner, key: &str, upload_id: &str) {
    let aborted = inner
        .send(
            Method::DELETE,
            key,
            &[("uploadId", upload_id)],
            None,
            Body::from(Vec::new()),
            0,
            "AbortMultipartUpload",
        )
        .await;
    match aborted {
        Ok(response) => {
            let _ = read_body(response, "AbortMultipartUpload").await;
            tracing::info!(object = %format!("s3://{}/{key}", inner.bucket), "multipart upload aborted");
        }
        Err(e) => tracing::warn!(
            object = %format!("s3://{}/{key}", inner.bucket),
            reason = %e,
            "the failed multipart upload could not be aborted: its parts may remain"
        ),
    }
}

/// Aborts the upload it holds when dropped holding it: the delivery's
/// future was dropped between the upload's creation and its end.
struct AbortOnDrop(Option<(Arc<Inner>, String, String)>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some((inner, key, upload_id)) = self.0.take() else {
            return;
        };
        // Dropped on the runtime the upload ran on (an aborted task is
        // dropped by its worker); with none, nothing can be sent.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { abort(&inner, &key, &upload_id).await });
        }
    }
}

impl Inner {
    /// Sends one signed request for `key`; a 2xx answer is returned, any
    /// other is an error with S3's code and message. `action` names the
    /// request in messages.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        method: Method,
        key: &str,
        query: &[(&str, &str)],
        content_type: Option<&str>,
        body: Body,
        length: u64,
        action: &str,
    ) -> Result<Response, ProcessError> {
        let endpoint = &self.endpoint;
        let host = if endpoint.virtual_host {
            format!("{}.{}", self.bucket, endpoint.host)
        } else {
            endpoint.host.clone()
        };
        let mut path = endpoint.base_path.clone();
        if !endpoint.virtual_host {
            path.push('/');
            path.push_str(&sign::uri_encode(&self.bucket, false));
        }
        path.push('/');
        path.push_str(&sign::uri_encode(key, true));
        let query_text = sign::canonical_query(query);
        let url = if query_text.is_empty() {
            format!("{}://{host}{path}", endpoint.scheme)
        } else {
            format!("{}://{host}{path}?{query_text}", endpoint.scheme)
        };
        let signed = sign::sign(
            &Unsigned {
                method: method.as_str(),
                path: &path,
                query,
                headers: &[("host", &host)],
                payload: UNSIGNED_PAYLOAD,
            },
            &self.credentials,
            &self.region,
            SystemTime::now(),
        );
        let mut request = self
            .client
            .request(method, &url)
            .header(HOST, &host)
            .header("x-amz-date", &signed.date)
            .header("x-amz-content-sha256", UNSIGNED_PAYLOAD)
            .header(AUTHORIZATION, &signed.authorization)
            // Set, so the body goes with a length: S3 refuses chunked
            // transfer encoding.
            .header(CONTENT_LENGTH, length)
            .body(body);
        if let Some(token) = self.credentials.session_token() {
            request = request.header("x-amz-security-token", token);
        }
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let object = format!("s3://{}/{key}", self.bucket);
        let response = request.send().await.map_err(|e| {
            ProcessError::transient(format!(
                "{action} {object}: cannot reach the S3 endpoint {}: {}",
                endpoint.shown,
                chain(e)
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_body(response, action).await.unwrap_or_default();
        Err(failure(
            status.as_u16(),
            &body,
            format!(
                "S3 answered {} to {action} {object}: {}",
                status.as_u16(),
                answer::describe_failure(&body)
            ),
        ))
    }
}

/// The failure an error answer is: a file over what the bucket takes
/// (`EntityTooLarge`, or a proxy's `413`) is permanent, `552`; anything
/// else is transient, `451`: a missing bucket, a refused key or a clock
/// out of step (`403`, `404 NoSuchBucket`) are the operator's to fix, and
/// the retry after the fix delivers.
pub(super) fn failure(status: u16, body: &str, reason: String) -> ProcessError {
    let code = S3Fault::parse(body).and_then(|fault| fault.code);
    if status == 413 || code.as_deref() == Some("EntityTooLarge") {
        ProcessError::too_large(reason)
    } else {
        ProcessError::transient(reason)
    }
}

/// An error and its causes, `: `-separated (reqwest's own message is only
/// "error sending request").
fn chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    answer::shown(&text)
}

/// The first [`BODY_LIMIT`] bytes of an answer's body, as text; the rest
/// is not read.
async fn read_body(mut response: Response, action: &str) -> Result<String, ProcessError> {
    let mut body = Vec::new();
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            ProcessError::transient(format!("reading S3's answer to {action}: {}", chain(e)))
        })?;
        let Some(chunk) = chunk else { break };
        let room = BODY_LIMIT - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= BODY_LIMIT {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `len` bytes of the file at `path` from `offset`, as a request body read
/// [`CHUNK`] bytes at a time.
async fn file_body(path: &Path, offset: u64, len: u64) -> Result<Body, ProcessError> {
    let failed =
        |e: std::io::Error| ProcessError::transient(format!("reading the spooled file: {e}"));
    let mut file = tokio::fs::File::open(path).await.map_err(failed)?;
    file.seek(SeekFrom::Start(offset)).await.map_err(failed)?;
    let reader = file.take(len);
    let chunks = smol::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut buffer = vec![0; CHUNK];
        match reader.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(buffer), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(Body::wrap_stream(chunks))
}
