//! `--http`: POST each upload to a URL.

use std::io;
use std::time::Duration;

use ftprelay_tokio::proto::{ProcessError, Upload};

/// POSTs the file as the request body; a 2xx answer is success.
pub(super) async fn post(
    url: &str,
    upload: &Upload,
    timeout: Duration,
) -> Result<(), ProcessError> {
    let url = url.to_owned();
    let path = upload.path().to_owned();
    let headers = [
        ("X-Ftprelay-File-Name", header_value(upload.file_name())),
        ("X-Ftprelay-User", header_value(upload.user())),
        ("X-Ftprelay-Size", upload.size().to_string()),
        ("Content-Length", upload.size().to_string()),
        ("Content-Type", "application/octet-stream".to_owned()),
    ];
    // Give up before the relay does: a blocking request cannot be cancelled.
    let request_timeout = timeout
        .saturating_sub(Duration::from_secs(1))
        .max(Duration::from_secs(1));
    let sent = smol::unblock(move || {
        let file = std::fs::File::open(&path)?;
        let mut request = ureq::post(&url).timeout(request_timeout);
        for (name, value) in &headers {
            request = request.set(name, value);
        }
        request.send(file).map_err(io::Error::other)
    })
    .await;
    match sent {
        Ok(response) if (200..300).contains(&response.status()) => Ok(()),
        Ok(response) => Err(ProcessError::transient(format!(
            "the server answered {}",
            response.status()
        ))),
        Err(e) => Err(ProcessError::transient(format!("posting the file: {e}"))),
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
    fn header_values() {
        assert_eq!(header_value(b"scan 1.pdf"), "scan 1.pdf");
        assert_eq!(header_value(b"a\r\nb%"), "a%0D%0Ab%25");
        assert_eq!(header_value(b"\xC4"), "%C4");
    }
}
