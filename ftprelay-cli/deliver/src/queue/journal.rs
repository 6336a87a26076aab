//! The queue's journal: how a batch of uploads becomes durable with one
//! sync instead of a few per upload.
//!
//! Syncing every upload's own files costs a few disk flushes each; under
//! load that, not the network, bounds how fast devices hear `226`. So the
//! committer appends each batch of uploads (record and, for small
//! uploads, the bytes too) to one journal file as checksummed frames and
//! syncs that file once. Each upload's own files in `active/` are written
//! too, but not synced: a checkpoint later makes them durable for many
//! uploads at once (one `syncfs`) and only then deletes the journal
//! segment. After a crash the segments left are replayed: every upload
//! in them whose data is still in the queue gets its bytes and record
//! back from the journal, so what a crash left half-written is never
//! delivered.
//!
//! ```text
//! journal/0000000000000007.log   frames: magic, lengths, CRC-32, record, data
//! ```
//!
//! A frame whose checksum or length is wrong ends the segment: it is the
//! torn tail of a write the crash interrupted, never acknowledged.

use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Uploads up to this size are written into the journal whole; larger
/// ones have their data file synced on its own (their bytes cost more
/// than the sync).
pub(crate) const INLINE_MAX: u64 = 1 << 20;

/// A segment is closed (and checkpointed) once it has this many uploads,
const ROTATE_UPLOADS: usize = 4096;
/// or this many bytes,
const ROTATE_BYTES: u64 = 64 << 20;
/// or when its first upload is this old.
pub(crate) const ROTATE_AGE: Duration = Duration::from_secs(1);

const MAGIC: &[u8; 4] = b"FRQ1";
/// Magic, record length (u32), data length (u64, `EXTERNAL`: not in the
/// journal), CRC-32 of the lengths, record and data.
const HEADER: usize = 4 + 4 + 8 + 4;
const EXTERNAL: u64 = u64::MAX;
/// No record is this long: a longer length is a torn or foreign frame.
const MAX_RECORD: u32 = 1 << 20;

/// Appends one frame: `record` (the record's JSON) and `data` (`None`:
/// the upload's data file is synced on its own).
pub(crate) fn encode(record: &[u8], data: Option<&[u8]>, out: &mut Vec<u8>) {
    let record_len = u32::try_from(record.len()).unwrap_or(u32::MAX);
    let data_len = data.map_or(EXTERNAL, |d| d.len() as u64);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&record_len.to_le_bytes());
    crc.update(&data_len.to_le_bytes());
    crc.update(record);
    crc.update(data.unwrap_or_default());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&record_len.to_le_bytes());
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(record);
    out.extend_from_slice(data.unwrap_or_default());
}

/// One upload read back from a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The record's JSON.
    pub(crate) record: Vec<u8>,
    /// The upload's bytes; `None` when its data file was synced on its
    /// own (or when read without data).
    pub(crate) data: Option<Vec<u8>>,
}

/// The whole frames of the segment at `path`, in order, up to the first
/// torn or foreign one. Without `with_data` the bytes are skipped (and
/// not checked): for listing.
pub(crate) fn read_segment(path: &Path, with_data: bool) -> io::Result<Vec<Entry>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(super::store::no_link_no_wait())
        .open(path)?;
    let mut file = io::BufReader::new(file);
    let mut entries = Vec::new();
    loop {
        let mut header = [0u8; HEADER];
        if file.read_exact(&mut header).is_err() || &header[..4] != MAGIC {
            break;
        }
        let record_len = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
        let data_len = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(header[16..20].try_into().unwrap_or_default());
        if record_len > MAX_RECORD || (data_len != EXTERNAL && data_len > INLINE_MAX) {
            break;
        }
        let mut record = vec![0; record_len as usize];
        if file.read_exact(&mut record).is_err() {
            break;
        }
        let inline = data_len != EXTERNAL;
        if !with_data {
            if inline && file.seek_relative(data_len as i64).is_err() {
                break;
            }
            entries.push(Entry { record, data: None });
            continue;
        }
        let mut data = vec![0; if inline { data_len as usize } else { 0 }];
        if file.read_exact(&mut data).is_err() {
            break;
        }
        let mut check = crc32fast::Hasher::new();
        check.update(&record_len.to_le_bytes());
        check.update(&data_len.to_le_bytes());
        check.update(&record);
        check.update(&data);
        if check.finalize() != crc {
            break;
        }
        entries.push(Entry {
            record,
            data: inline.then_some(data),
        });
    }
    Ok(entries)
}

/// The segments in `dir`, oldest first (plain files named as segments;
/// anything else is not read).
pub(crate) fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| Some((sequence(&entry.path())?, entry.path())))
        .collect();
    found.sort();
    found.into_iter().map(|(_, path)| path).collect()
}

/// The sequence number of the segment at `path`, if it is named as one.
pub(crate) fn sequence(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?.strip_suffix(".log")?;
    (name.len() == 16 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

/// A closed segment, for the checkpoint: its path and the uploads in it
/// (id and record JSON).
#[derive(Debug)]
pub(crate) struct Closed {
    pub(crate) path: PathBuf,
    pub(crate) uploads: Vec<(String, Vec<u8>)>,
}

/// The segment being appended to (the committer's).
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    seq: u64,
    file: File,
    /// Bytes of whole frames in `file`.
    len: u64,
    uploads: Vec<(String, Vec<u8>)>,
    first_at: Option<Instant>,
}

impl Journal {
    /// Starts a new segment in `dir`, after any there.
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        let seq = segments(dir)
            .last()
            .and_then(|path| sequence(path))
            .map_or(0, |seq| seq + 1);
        let file = create_segment(dir, seq)?;
        Ok(Self {
            dir: dir.to_owned(),
            seq,
            file,
            len: 0,
            uploads: Vec::new(),
            first_at: None,
        })
    }

    /// Appends `frames` (of `uploads`) and syncs them: when this returns
    /// `Ok`, they survive a crash. On an error the segment is cut back to
    /// its last whole frame (or, if that fails, a new one is started), so
    /// that a torn frame never hides the frames after it.
    pub(crate) fn append(
        &mut self,
        frames: &[u8],
        uploads: Vec<(String, Vec<u8>)>,
    ) -> io::Result<()> {
        let written = self
            .file
            .write_all(frames)
            .and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            if self.file.set_len(self.len).is_err() {
                let closed = self.rotate()?;
                drop(closed.uploads);
            }
            return Err(error);
        }
        self.len += frames.len() as u64;
        self.first_at.get_or_insert_with(Instant::now);
        self.uploads.extend(uploads);
        Ok(())
    }

    /// Whether the segment should be closed now.
    pub(crate) fn full(&self) -> bool {
        self.uploads.len() >= ROTATE_UPLOADS
            || self.len >= ROTATE_BYTES
            || self.first_at.is_some_and(|at| at.elapsed() >= ROTATE_AGE)
    }

    /// Whether the segment holds any upload.
    pub(crate) fn is_empty(&self) -> bool {
        self.uploads.is_empty()
    }

    /// Closes this segment for its checkpoint and starts the next one.
    pub(crate) fn rotate(&mut self) -> io::Result<Closed> {
        let next = create_segment(&self.dir, self.seq + 1)?;
        let closed = Closed {
            path: segment_path(&self.dir, self.seq),
            uploads: std::mem::take(&mut self.uploads),
        };
        self.seq += 1;
        self.file = next;
        self.len = 0;
        self.first_at = None;
        Ok(closed)
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.log"))
}

/// A new, empty segment whose name is durable (so that a sync of its
/// frames is enough).
fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    let file = super::store::create(&segment_path(dir, seq))?;
    super::store::sync_dir(dir)?;
    Ok(file)
}

/// Makes every file written on the queue's file system durable: the
/// checkpoint's one flush for all the uploads of a segment.
pub(crate) fn sync_file_system(dir: &Path) -> io::Result<()> {
    let folder = File::open(dir)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::fs::syncfs(&folder)?;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        rustix::fs::sync();
    }
    folder.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(list: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (record, data) in list {
            encode(record, *data, &mut out);
        }
        out
    }

    #[test]
    fn frames_read_back_and_a_torn_tail_ends_the_segment() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("0000000000000000.log");
        let mut bytes = frames(&[(b"{\"a\":1}", Some(b"hello")), (b"{\"b\":2}", None)]);
        let whole = bytes.len();
        encode(b"{\"c\":3}", Some(b"world"), &mut bytes);
        // The last frame torn: every cut inside it leaves the first two.
        for cut in whole..bytes.len() {
            fs::write(&path, &bytes[..cut]).expect("write");
            let entries = read_segment(&path, true).expect("read");
            assert_eq!(
                entries,
                vec![
                    Entry {
                        record: b"{\"a\":1}".to_vec(),
                        data: Some(b"hello".to_vec())
                    },
                    Entry {
                        record: b"{\"b\":2}".to_vec(),
                        data: None
                    },
                ],
                "cut at {cut}"
            );
        }
        fs::write(&path, &bytes).expect("write");
        assert_eq!(read_segment(&path, true).expect("read").len(), 3);
        let listed = read_segment(&path, false).expect("read");
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[2].record, b"{\"c\":3}");
    }

    #[test]
    fn a_flipped_bit_ends_the_segment_there() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("0000000000000000.log");
        let mut bytes = frames(&[(b"{}", Some(b"one")), (b"{}", Some(b"two"))]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).expect("write");
        let entries = read_segment(&path, true).expect("read");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].data.as_deref(), Some(&b"one"[..]));
        // Lengths that no frame has: foreign bytes, not read further.
        fs::write(&path, b"FRQ1\xff\xff\xff\xff0123456789abcdef").expect("write");
        assert!(read_segment(&path, true).expect("read").is_empty());
    }

    #[test]
    fn a_journal_appends_rotates_and_continues_after_the_last_segment() {
        let dir = tempfile::tempdir().expect("dir");
        let mut journal = Journal::open(dir.path()).expect("open");
        assert!(journal.is_empty());
        journal
            .append(
                &frames(&[(b"{}", Some(b"x"))]),
                vec![("a".into(), b"{}".to_vec())],
            )
            .expect("append");
        assert!(!journal.is_empty());
        let closed = journal.rotate().expect("rotate");
        assert_eq!(closed.uploads.len(), 1);
        assert_eq!(read_segment(&closed.path, true).expect("read").len(), 1);
        assert!(journal.is_empty());
        drop(journal);
        let again = Journal::open(dir.path()).expect("reopen");
        assert_eq!(again.seq, 2);
        assert_eq!(segments(dir.path()).len(), 3);
    }
}
