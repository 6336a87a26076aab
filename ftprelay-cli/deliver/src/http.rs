//! `--http`: POST each upload to a URL.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ftprelay_proto::{ProcessError, Upload};

use crate::destinations::{Delivery, Destination};
use crate::fields::Fields;

/// `--http`: POSTs each upload to a URL; a 2xx answer is success.
#[derive(Debug, Clone)]
pub struct Http {
    url: String,
    timeout: Duration,
}

impl Http {
    /// POSTs to `url`, giving up on a request before `process_timeout`
    /// (the relay's) has passed.
    pub fn new(url: impl Into<String>, process_timeout: Duration) -> Self {
        Self {
            url: url.into(),
            timeout: process_timeout,
        }
    }
}

impl Destination for Http {
    fn deliver<'a>(&'a self, upload: &'a Upload, _fields: &'a Fields) -> Delivery<'a> {
        Box::pin(post(&self.url, upload, self.timeout))
    }
}

impl std::fmt::Display for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http {}", self.url)
    }
}

/// POSTs the file as the request body; a 2xx answer is success.
///
/// The request is blocking (ureq) on a thread of its own, which outlives
/// this future if it is dropped (the relay gave up on it, the session went
/// away). So that a request given up on can never complete its body after
/// the device was told `451`, the body is read through [`Body`], which fails
/// once this future is gone or the request's deadline has passed; and the
/// deadline is before the relay's.
async fn post(url: &str, upload: &Upload, timeout: Duration) -> Result<(), ProcessError> {
    let url = url.to_owned();
    let path = upload.path().to_owned();
    let headers = [
        ("X-Ftprelay-File-Name", header_value(upload.file_name())),
        ("X-Ftprelay-User", header_value(upload.user())),
        ("X-Ftprelay-Size", upload.size().to_string()),
        ("Content-Length", upload.size().to_string()),
        ("Content-Type", "application/octet-stream".to_owned()),
    ];
    let request_timeout = request_timeout(timeout);
    let cancelled = Cancelled::default();
    let flag = cancelled.0.clone();
    let sent = smol::unblock(move || {
        let body = Body {
            file: std::fs::File::open(&path)?,
            cancelled: flag,
            deadline: Instant::now() + request_timeout,
        };
        // Redirects are not followed: ureq would turn a 301/302/303 into a
        // GET without the file, and a 2xx to that GET would count as the
        // file delivered. A redirect is an answer that is not a 2xx.
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let mut request = agent.post(&url).timeout(request_timeout);
        for (name, value) in &headers {
            request = request.set(name, value);
        }
        request.send(body).map_err(io::Error::other)
    })
    .await;
    drop(cancelled);
    match sent {
        Ok(response) if (200..300).contains(&response.status()) => Ok(()),
        Ok(response) => Err(ProcessError::transient(match response.header("Location") {
            Some(location) => format!(
                "the server answered {} (a redirect to {location}; redirects are not followed: give that URL)",
                response.status()
            ),
            None => format!("the server answered {}", response.status()),
        })),
        Err(e) => Err(ProcessError::transient(format!("posting the file: {e}"))),
    }
}

/// The request's own timeout: before the relay's processing timeout (a
/// second before it, or half of it when that is shorter), so that the
/// request fails, and says why, before the relay gives up on it.
fn request_timeout(process_timeout: Duration) -> Duration {
    process_timeout
        .saturating_sub(Duration::from_secs(1))
        .max(process_timeout / 2)
}

/// Set when the processor's future is dropped, finished or not.
#[derive(Debug, Default)]
struct Cancelled(Arc<AtomicBool>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The request body: the spool file, read in chunks of at most 64 KiB, each
/// read failing once the processor is gone or the deadline has passed
/// (ureq's own timeout bounds each socket write, not the whole body: a
/// server that keeps reading slowly would get all of it, late).
struct Body {
    file: std::fs::File,
    cancelled: Arc<AtomicBool>,
    deadline: Instant,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(io::Error::other("the relay gave up on this upload"));
        }
        if Instant::now() >= self.deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request took too long",
            ));
        }
        let len = buf.len().min(64 * 1024);
        self.file.read(&mut buf[..len])
    }
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
    fn a_cancelled_body_reads_no_more() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("body");
        std::fs::write(&path, b"abc").expect("write");
        let cancelled = Cancelled::default();
        let mut body = Body {
            file: std::fs::File::open(&path).expect("open"),
            cancelled: cancelled.0.clone(),
            deadline: Instant::now() + Duration::from_secs(60),
        };
        let mut first = [0; 1];
        assert_eq!(body.read(&mut first).expect("read"), 1);
        drop(cancelled);
        assert!(body.read(&mut first).is_err());
    }

    #[test]
    fn header_values() {
        assert_eq!(header_value(b"scan 1.pdf"), "scan 1.pdf");
        assert_eq!(header_value(b"a\r\nb%"), "a%0D%0Ab%25");
        assert_eq!(header_value(b"\xC4"), "%C4");
    }
}
