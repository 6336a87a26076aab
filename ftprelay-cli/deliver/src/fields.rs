//! The values of one upload that templates fill in, decided once per upload
//! so that every destination of it sees the same `{id}` and `{time}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ftprelay_proto::Upload;
use ftprelay_proto::civil::CivilTime;

use crate::local_name::LocalName;
use crate::template::Placeholder;

/// One upload's template values, each already safe as a path component
/// (`{path}` is such components joined by `/`).
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
}

impl Fields {
    /// The values of `upload`, received at `at`.
    pub fn new(upload: &Upload, at: SystemTime) -> Self {
        let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let micros = u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX);
        Self::new_with_id(upload, at, next_id(micros))
    }

    fn new_with_id(upload: &Upload, at: SystemTime, id: String) -> Self {
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

    /// The values of an upload received at `at` that was given `id`
    /// before (a queued upload, attempted again): the same `{id}`,
    /// `{date}` and `{time}` as its first attempt.
    pub fn restored(upload: &Upload, at: SystemTime, id: &str) -> Self {
        Self::new_with_id(upload, at, id.to_owned())
    }

    /// The unique id (`{id}`).
    pub fn id(&self) -> &str {
        &self.id
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
        }
    }
}

/// A process-wide id: microseconds since 1970 (or one more than the last
/// id, when two uploads share a microsecond or the clock stepped back), as
/// 16 hex digits, so that ids sort as text in the order they were made.
fn next_id(micros: u64) -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let mut last = LAST.load(Ordering::Relaxed);
    let id = loop {
        let candidate = micros.max(last.saturating_add(1));
        match LAST.compare_exchange_weak(last, candidate, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break candidate,
            Err(now) => last = now,
        }
    };
    format!("{id:016x}")
}

/// Makes every id from now on sort after `id` (16 hex digits): a queue
/// found it on disk, and the clock may have stepped back since.
pub(crate) fn ids_after(id: &str) {
    if let Ok(last) = u64::from_str_radix(id, 16) {
        next_id(last);
    }
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
    fn ids_are_unique_and_sort_in_order() {
        let ids: Vec<String> = (0..1_000).map(|_| next_id(5)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
        assert!(ids.iter().all(|id| id.len() == 16));
    }
}
