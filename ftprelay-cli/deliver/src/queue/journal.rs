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
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
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

/// A segment read back.
#[derive(Debug, Default)]
pub(crate) struct Segment {
    /// Its whole frames, in order, up to the first torn or foreign one.
    pub(crate) entries: Vec<Entry>,
    /// A whole frame follows the first bad one: not the torn tail of the
    /// last write (each write is synced before the next begins) but
    /// damage, which hides acknowledged uploads.
    pub(crate) damaged: bool,
}

/// No segment is this long (one rotates at [`ROTATE_BYTES`], plus one
/// batch): a longer file is not read.
const MAX_SEGMENT: u64 = 4 * ROTATE_BYTES;

/// Reads the segment at `path`; every frame's checksum is checked.
/// Without `with_data` the bytes are not kept (for listing).
pub(crate) fn read_segment(path: &Path, with_data: bool) -> io::Result<Segment> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(super::store::no_link_no_wait())
        .open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_SEGMENT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SEGMENT {
        return Ok(Segment {
            entries: Vec::new(),
            damaged: true,
        });
    }
    let mut segment = Segment::default();
    let mut at = 0;
    while at < bytes.len() {
        let Some((mut entry, next)) = frame_at(&bytes, at) else {
            segment.damaged = (at + 1..bytes.len()).any(|from| frame_at(&bytes, from).is_some());
            break;
        };
        if !with_data {
            entry.data = None;
        }
        segment.entries.push(entry);
        at = next;
    }
    Ok(segment)
}

/// The whole, checked frame at `at` in `bytes`, and where the next begins.
fn frame_at(bytes: &[u8], at: usize) -> Option<(Entry, usize)> {
    let header = bytes.get(at..at.checked_add(HEADER)?)?;
    if &header[..4] != MAGIC {
        return None;
    }
    let record_len = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let data_len = u64::from_le_bytes(header[8..16].try_into().ok()?);
    let crc = u32::from_le_bytes(header[16..20].try_into().ok()?);
    let inline = data_len != EXTERNAL;
    if record_len > MAX_RECORD || (inline && data_len > INLINE_MAX) {
        return None;
    }
    let record_start = at + HEADER;
    let data_start = record_start + record_len as usize;
    let end = data_start + if inline { data_len as usize } else { 0 };
    let record = bytes.get(record_start..data_start)?;
    let data = bytes.get(data_start..end)?;
    let mut check = crc32fast::Hasher::new();
    check.update(&record_len.to_le_bytes());
    check.update(&data_len.to_le_bytes());
    check.update(record);
    check.update(data);
    if check.finalize() != crc {
        return None;
    }
    let entry = Entry {
        record: record.to_vec(),
        data: inline.then(|| data.to_vec()),
    };
    Some((entry, end))
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
    /// A failed append could not be cut back: appends must go elsewhere.
    broken: bool,
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
            broken: false,
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
            // Cut back to the last whole frame, and write the next one
            // there: never after a gap, which would hide it. If even that
            // fails, the committer starts a new segment.
            self.broken = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.seek(SeekFrom::Start(self.len)))
                .and_then(|_| self.file.sync_data())
                .is_err();
            return Err(error);
        }
        self.len += frames.len() as u64;
        self.first_at.get_or_insert_with(Instant::now);
        self.uploads.extend(uploads);
        Ok(())
    }

    /// Whether the segment should be closed now.
    pub(crate) fn full(&self) -> bool {
        self.broken
            || self.uploads.len() >= ROTATE_UPLOADS
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
        self.broken = false;
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
            let segment = read_segment(&path, true).expect("read");
            assert!(!segment.damaged, "a torn tail is not damage");
            assert_eq!(
                segment.entries,
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
        assert_eq!(read_segment(&path, true).expect("read").entries.len(), 3);
        let listed = read_segment(&path, false).expect("read").entries;
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
        let segment = read_segment(&path, true).expect("read");
        assert_eq!(segment.entries.len(), 1);
        assert_eq!(segment.entries[0].data.as_deref(), Some(&b"one"[..]));
        assert!(!segment.damaged, "nothing whole after it");
        // A bad frame with a whole one after it: damage, not a torn tail.
        let mut bytes = frames(&[(b"{}", Some(b"one")), (b"{}", Some(b"two")), (b"{}", None)]);
        bytes[HEADER + 2] ^= 1;
        fs::write(&path, &bytes).expect("write");
        let segment = read_segment(&path, true).expect("read");
        assert!(segment.entries.is_empty());
        assert!(segment.damaged);
        // Lengths that no frame has: foreign bytes, not read further.
        fs::write(&path, b"FRQ1\xff\xff\xff\xff0123456789abcdef").expect("write");
        assert!(read_segment(&path, true).expect("read").entries.is_empty());
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
        assert_eq!(
            read_segment(&closed.path, true)
                .expect("read")
                .entries
                .len(),
            1
        );
        assert!(journal.is_empty());
        drop(journal);
        let again = Journal::open(dir.path()).expect("reopen");
        assert_eq!(again.seq, 2);
        assert_eq!(segments(dir.path()).len(), 3);
    }

    #[test]
    fn an_append_that_cannot_be_cut_back_closes_the_segment() {
        let dir = tempfile::tempdir().expect("dir");
        let mut journal = Journal::open(dir.path()).expect("open");
        // A handle that cannot write: the append fails, and so does the
        // cut back, so the next batch must go to a new segment.
        journal.file = File::open(segment_path(dir.path(), journal.seq)).expect("read-only");
        let failed = journal.append(
            &frames(&[(b"{}", Some(b"x"))]),
            vec![("a".into(), b"{}".to_vec())],
        );
        assert!(failed.is_err());
        assert!(journal.full(), "rotated before the next batch");
        assert!(journal.is_empty(), "the failed upload is not the segment's");
        let closed = journal.rotate().expect("rotate");
        assert!(closed.uploads.is_empty());
        journal
            .append(
                &frames(&[(b"{}", Some(b"y"))]),
                vec![("b".into(), b"{}".to_vec())],
            )
            .expect("append to the new segment");
        assert!(!journal.full());
    }
}
