//! What the queue keeps of an upload, as it is written to disk: the
//! record (who, what, where to), fixed once the upload is acknowledged,
//! and the progress of each destination, rewritten after each attempt.
//!
//! Both are JSON, one file each, so that an operator can read them with
//! `cat` and a later version can add fields.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ftprelay_proto::{ProcessRequest, TransferId, Upload};
use serde::{Deserialize, Serialize};

/// The format of the files this version writes. A record of another
/// version is moved aside, never guessed at.
pub(crate) const FORMAT: u32 = 1;

/// An upload as the queue keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// [`FORMAT`].
    pub(crate) format: u32,
    /// The upload's `{id}`: 16 hex digits, its file names in the queue.
    pub(crate) id: String,
    /// The login that uploaded it: where its destinations are looked up.
    #[serde(with = "escaped")]
    pub(crate) user: Vec<u8>,
    /// The name as the client sent it.
    #[serde(with = "escaped")]
    pub(crate) name: Vec<u8>,
    /// The safe file name ([`Upload::file_name`]).
    #[serde(with = "escaped")]
    pub(crate) file_name: Vec<u8>,
    /// The virtual path ([`Upload::remote_path`]).
    #[serde(with = "escaped")]
    pub(crate) path: Vec<u8>,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// The size in bytes.
    pub(crate) size: u64,
    /// The upload's number in its session.
    pub(crate) upload: u64,
    /// When it was received, in microseconds since 1970: its `{date}`
    /// and `{time}`.
    pub(crate) received_us: u64,
    /// The destinations it goes to, by name, in the user's order.
    pub(crate) destinations: Vec<String>,
    /// A temporary upload waiting for its rename (devices profile): not
    /// delivered until released.
    #[serde(default)]
    pub(crate) held: bool,
}

impl Record {
    /// The record of `upload`, received at `at`, with the `id` its fields
    /// got, for `destinations`.
    pub(crate) fn new(
        upload: &Upload,
        at: SystemTime,
        id: &str,
        destinations: Vec<String>,
    ) -> Self {
        Self {
            format: FORMAT,
            id: id.to_owned(),
            user: upload.user().to_vec(),
            name: upload.name().to_vec(),
            file_name: upload.file_name().to_vec(),
            path: upload.remote_path().to_vec(),
            peer: upload.peer(),
            size: upload.size(),
            upload: upload.id().get(),
            received_us: micros(at),
            destinations,
            held: false,
        }
    }

    /// When it was received.
    pub(crate) fn received(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.received_us)
    }

    /// The upload again, its file at `data`.
    pub(crate) fn upload(&self, data: PathBuf) -> Upload {
        Upload::new(
            ProcessRequest {
                upload: TransferId::new(self.upload),
                name: Bytes::copy_from_slice(&self.name),
                file_name: Bytes::copy_from_slice(&self.file_name),
                path: Bytes::copy_from_slice(&self.path),
                user: Bytes::copy_from_slice(&self.user),
                peer: self.peer,
                size: self.size,
            },
            data,
        )
    }

    /// Checks what a file on disk may hold wrong.
    pub(crate) fn check(&self, id: &str) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {} (this relay reads {FORMAT})",
                self.format
            ));
        }
        if self.id != id {
            return Err(format!("the record of {} in the file of {id}", self.id));
        }
        if self.destinations.is_empty() {
            return Err("no destinations".to_owned());
        }
        Ok(())
    }
}

/// Where one destination of an upload stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Progress {
    /// Delivered: never attempted again.
    pub(crate) done: bool,
    /// Given up on (refused for good, or out of time): the upload goes to
    /// `failed/` once no other destination is left to try.
    #[serde(default)]
    pub(crate) failed: bool,
    /// Attempts so far.
    pub(crate) attempts: u32,
    /// When the next attempt is due, in microseconds since 1970 (0: now).
    pub(crate) next_us: u64,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
}

/// The progress of an upload's destinations, and why it failed, if it did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct State {
    /// One per destination of the record, in its order.
    pub(crate) destinations: Vec<Progress>,
    /// The start of its time in the queue, in microseconds since 1970: the
    /// receipt, or the last `ftprelay queue retry` of a failed upload.
    /// It fails once this is older than the maximum age.
    pub(crate) since_us: u64,
    /// Why it is in `failed/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<String>,
}

impl State {
    /// The state of a new upload of `record`: every destination due now.
    pub(crate) fn new(record: &Record) -> Self {
        Self {
            destinations: vec![Progress::default(); record.destinations.len()],
            since_us: record.received_us,
            failure: None,
        }
    }

    /// Whether every destination is done.
    pub(crate) fn delivered(&self) -> bool {
        self.destinations.iter().all(|d| d.done)
    }

    /// Whether no destination is left to try (each done or given up on).
    pub(crate) fn settled(&self) -> bool {
        self.destinations.iter().all(|d| d.done || d.failed)
    }
}

/// Microseconds since 1970 (0 before it).
pub(crate) fn micros(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The time of `us` microseconds since 1970.
pub(crate) fn at_micros(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

/// Whether `id` is an upload id: 16 lowercase hex digits, so that it is a
/// safe file name.
pub(crate) fn is_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Client bytes as readable JSON text: valid UTF-8 stays as it is, `%`,
/// control characters and bytes that are not UTF-8 become `%XX`; decoding
/// gives the bytes back exactly.
mod escaped {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        decode(&text).ok_or_else(|| serde::de::Error::custom("a bad %XX escape"))
    }

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len());
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c == '%' || c.is_control() {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("%{b:02X}"));
                    }
                } else {
                    out.push(c);
                }
            }
            for b in chunk.invalid() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b'%' {
                let hex = text.get(at + 1..at + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                at += 3;
            } else {
                out.push(bytes[at]);
                at += 1;
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn client_bytes_survive_the_json(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = escaped::encode(&bytes);
            prop_assert!(!text.chars().any(char::is_control));
            prop_assert_eq!(escaped::decode(&text), Some(bytes));
        }
    }

    #[test]
    fn readable_names_stay_readable() {
        assert_eq!(escaped::encode("Scan 5%é.pdf".as_bytes()), "Scan 5%25é.pdf");
        assert_eq!(escaped::encode(b"a\nb\xff"), "a%0Ab%FF");
        assert_eq!(escaped::decode("%zz"), None);
        assert_eq!(escaped::decode("%4"), None);
    }

    #[test]
    fn ids_are_sixteen_lowercase_hex_digits() {
        assert!(is_id("0123456789abcdef"));
        assert!(!is_id("0123456789ABCDEF"));
        assert!(!is_id("../../etc/passwd"));
        assert!(!is_id("0123456789abcde"));
    }
}
