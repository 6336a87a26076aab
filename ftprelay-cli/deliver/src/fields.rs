//! The values of one upload that templates fill in, decided once per upload
//! so that every destination of it sees the same `{id}` and `{time}`; and
//! decided once for good: a delivery repeated later (a queue retrying it
//! after a crash) restores them ([`Fields::restored`]), so that the repeat
//! renders the same names, keys and message ids as the first attempt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ftprelay_proto::Upload;
use ftprelay_proto::civil::CivilTime;

use crate::local_name::LocalName;
use crate::template::Placeholder;

/// One upload's template values, each already safe as a path component
/// (`{path}` is such components joined by `/`).
///
/// Everything a destination renders comes from these values alone (and
/// from its own settings): two `Fields` of the same upload with the same
/// id and time make the same folder, object key, remote path, URL,
/// `Idempotency-Key` and `Message-ID`. That is what makes a repeated
/// delivery harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    user: String,
    name: String,
    stem: String,
    ext: String,
    folders: Vec<String>,
    peer: String,
    date: String,
    time: String,
    id: String,
    size: u64,
    at: SystemTime,
}

/// Why a stored upload id cannot be restored: it is not 16 lowercase hex
/// digits (what [`Fields::id`] always is). The message quotes it, cut
/// short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an upload id (16 lowercase hex digits): {0:?}")]
pub struct InvalidId(String);

impl Fields {
    /// The values of `upload`, received at `at`, with a new id: unique in
    /// the process, and later than every id made or restored before it.
    pub fn new(upload: &Upload, at: SystemTime) -> Self {
        let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let micros = u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX);
        Self::with_id(upload, at, next_id(micros))
    }

    /// The values of `upload` as they were when it was first delivered:
    /// received at `at`, with the id `id` that [`Fields::id`] gave then
    /// (read back from where a queue kept them). A repeated delivery with
    /// these renders exactly what the first did.
    ///
    /// The id comes from a file and is checked: anything but 16 lowercase
    /// hex digits is an [`InvalidId`]. The ids [`Fields::new`] makes
    /// afterwards are later than it, so that no fresh upload of this
    /// process shares it (even when the clock stepped back since it was
    /// made).
    pub fn restored(upload: &Upload, at: SystemTime, id: &str) -> Result<Self, InvalidId> {
        Ok(Self::with_id(upload, at, restored_id(id)?))
    }

    fn with_id(upload: &Upload, at: SystemTime, id: String) -> Self {
        let name = LocalName::new(upload.file_name());
        let folders = upload
            .folders()
            .map(|folder| LocalName::new(folder).spelled(""))
            .collect();
        let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let (date, time) = civil(since_epoch.as_secs());
        Self {
            user: LocalName::new(upload.user()).spelled(""),
            stem: name.stem(),
            ext: name.extension(),
            name: name.spelled(""),
            folders,
            peer: upload.peer().ip().to_string(),
            date,
            time,
            id,
            size: upload.size(),
            at,
        }
    }

    /// The value of `placeholder`.
    pub fn value(&self, placeholder: Placeholder) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow::{Borrowed, Owned};
        match placeholder {
            Placeholder::User => Borrowed(&self.user),
            Placeholder::Name => Borrowed(&self.name),
            Placeholder::Stem => Borrowed(&self.stem),
            Placeholder::Ext => Borrowed(&self.ext),
            Placeholder::Path => Owned(self.folders.join("/")),
            Placeholder::Peer => Borrowed(&self.peer),
            Placeholder::Date => Borrowed(&self.date),
            Placeholder::Time => Borrowed(&self.time),
            Placeholder::Id => Borrowed(&self.id),
            Placeholder::Size => Owned(self.size.to_string()),
        }
    }

    /// The safe file name (`{name}`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The devices profile's folders (`{path}`, split), each safe.
    pub fn folders(&self) -> &[String] {
        &self.folders
    }

    /// The unique id (`{id}`): 16 lowercase hex digits.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the upload was received: what `{date}` and `{time}` are made
    /// of (in UTC), and what [`Fields::restored`] takes back.
    pub fn at(&self) -> SystemTime {
        self.at
    }

    /// [`Fields::for_test`] restored with the stored `id`, as
    /// [`Fields::restored`] restores it.
    #[cfg(test)]
    pub(crate) fn for_test_restored(
        name: &str,
        folders: &[&str],
        id: &str,
    ) -> Result<Self, InvalidId> {
        let id = restored_id(id)?;
        Ok(Self {
            id,
            ..Self::for_test(name, folders)
        })
    }

    /// Fields for unit tests: user `demo`, size 42, 2026-12-02 04:05:06 UTC.
    #[cfg(test)]
    pub(crate) fn for_test(name: &str, folders: &[&str]) -> Self {
        let name_spelled = LocalName::new(name.as_bytes());
        Self {
            user: "demo".to_owned(),
            stem: name_spelled.stem(),
            ext: name_spelled.extension(),
            name: name_spelled.spelled(""),
            folders: folders
                .iter()
                .map(|f| LocalName::new(f.as_bytes()).spelled(""))
                .collect(),
            peer: "192.0.2.7".to_owned(),
            date: "2026-12-02".to_owned(),
            time: "040506".to_owned(),
            id: next_id(1_796_184_306_000_000),
            size: 42,
            at: UNIX_EPOCH + std::time::Duration::from_secs(1_796_184_306),
        }
    }
}

/// The latest id made or restored in this process.
static LAST_ID: AtomicU64 = AtomicU64::new(0);

/// `id`, checked, and remembered as made: [`next_id`] makes later ones.
fn restored_id(id: &str) -> Result<String, InvalidId> {
    let value = parse_id(id).ok_or_else(|| InvalidId(id.chars().take(40).collect()))?;
    LAST_ID.fetch_max(value, Ordering::Relaxed);
    Ok(id.to_owned())
}

/// Makes every id from now on sort after `id`, if it is one: a queue
/// found it on disk, and the clock may have stepped back since.
pub(crate) fn ids_after(id: &str) {
    let _ = restored_id(id);
}

/// The value of an id as [`next_id`] spells it: exactly 16 lowercase hex
/// digits.
fn parse_id(id: &str) -> Option<u64> {
    let spelled = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    spelled.then(|| u64::from_str_radix(id, 16).ok()).flatten()
}

/// A process-wide id: microseconds since 1970 (or one more than the last
/// id, when two uploads share a microsecond or the clock stepped back), as
/// 16 hex digits, so that ids sort as text in the order they were made.
fn next_id(micros: u64) -> String {
    let mut last = LAST_ID.load(Ordering::Relaxed);
    let id = loop {
        let candidate = micros.max(last.saturating_add(1));
        match LAST_ID.compare_exchange_weak(last, candidate, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break candidate,
            Err(now) => last = now,
        }
    };
    format!("{id:016x}")
}

/// `(YYYY-MM-DD, HHMMSS)` of a UNIX time, in UTC.
pub(crate) fn civil(secs: u64) -> (String, String) {
    let t = CivilTime::from_unix(secs);
    (
        format!("{:04}-{:02}-{:02}", t.year, t.month, t.day),
        format!("{:02}{:02}{:02}", t.hour, t.minute, t.second),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_utc() {
        assert_eq!(civil(0), ("1970-01-01".to_owned(), "000000".to_owned()));
        // 2000-02-29 23:59:59, a leap day of a century year.
        assert_eq!(
            civil(951_868_799),
            ("2000-02-29".to_owned(), "235959".to_owned())
        );
        assert_eq!(
            civil(1_796_184_306),
            ("2026-12-02".to_owned(), "040506".to_owned())
        );
    }

    #[test]
    fn restored_fields_are_the_first_ones_again() {
        let first = Fields::for_test("scan 1.pdf", &["NVR01"]);
        let restored =
            Fields::for_test_restored("scan 1.pdf", &["NVR01"], first.id()).expect("valid");
        assert_eq!(restored, first);
        for placeholder in [Placeholder::Id, Placeholder::Date, Placeholder::Time] {
            assert_eq!(restored.value(placeholder), first.value(placeholder));
        }
        assert_eq!(
            first.at(),
            UNIX_EPOCH + std::time::Duration::from_secs(1_796_184_306)
        );
    }

    #[test]
    fn a_stored_id_must_be_sixteen_lowercase_hex_digits() {
        assert!(restored_id("0123456789abcdef").is_ok());
        for bad in [
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789ABCDEF",
            "+123456789abcdef",
            "0123456789abcdeg",
            "../../etc/passwd",
            "0123456789abcd\u{e9}",
        ] {
            let error = restored_id(bad).expect_err(bad);
            assert!(
                error.to_string().contains("16 lowercase hex digits"),
                "{error}"
            );
        }
    }

    #[test]
    fn fresh_ids_come_after_a_restored_one() {
        // An id of the far future (a clock that stepped back since it was
        // made): the next fresh id is still a new one.
        let restored = restored_id("7fffffffffff0000").expect("valid");
        let fresh = next_id(5);
        assert!(fresh > restored, "{fresh} {restored}");
    }

    #[test]
    fn ids_are_unique_and_sort_in_order() {
        let ids: Vec<String> = (0..1_000).map(|_| next_id(5)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
        assert!(ids.iter().all(|id| id.len() == 16));
    }
}
