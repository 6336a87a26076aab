//! Group commit: uploads arriving together share their fsyncs.
//!
//! Each upload is staged in `tmp/` (its data and its record written, not
//! yet synced) by the session that received it. One committer thread
//! takes every staged upload waiting, syncs their files, renames them
//! into `active/` (the record last) and syncs `active/` once for all of
//! them; only then is each session told, and its device answered `226`.
//! While the disk syncs one batch the next one gathers, so under load an
//! upload costs a fraction of a directory sync.

use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::mpsc;

use super::record::Record;
use super::store::{ACTIVE, sync_dir};
use super::worker::Event;

/// One staged upload: its synced files are renamed `from → to` in order.
#[derive(Debug)]
pub(crate) struct Staged {
    /// The open files to sync.
    pub(crate) files: Vec<File>,
    /// `(staged, final)` paths, the record last.
    pub(crate) renames: Vec<(PathBuf, PathBuf)>,
    /// The upload, for the delivery loop once it is durable.
    pub(crate) record: Record,
    /// Told the outcome.
    pub(crate) done: smol::channel::Sender<io::Result<()>>,
}

/// The committer: a thread, stopped when every sender is gone.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    sender: mpsc::Sender<Staged>,
}

impl Committer {
    /// Starts the committer of the queue at `root`, committing at most
    /// `max_batch` uploads per directory sync (1: a sync per upload, the
    /// baseline the benchmark compares with).
    /// Each committed upload is announced on `events` (by the committer,
    /// so that one whose session gave up waiting is delivered all the same).
    pub(crate) fn start(
        root: PathBuf,
        max_batch: usize,
        events: smol::channel::Sender<Event>,
    ) -> io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Staged>();
        std::thread::Builder::new()
            .name("ftprelay-queue-commit".to_owned())
            .spawn(move || run(&root, &receiver, max_batch.max(1), &events))?;
        Ok(Self { sender })
    }

    /// Commits `staged`; its `done` is told when it is durable.
    pub(crate) fn commit(&self, staged: Staged) -> io::Result<()> {
        self.sender
            .send(staged)
            .map_err(|_| io::Error::other("the queue's committer stopped"))
    }
}

fn run(
    root: &std::path::Path,
    receiver: &mpsc::Receiver<Staged>,
    max_batch: usize,
    events: &smol::channel::Sender<Event>,
) {
    let active = root.join(ACTIVE);
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut outcomes: Vec<io::Result<()>> = batch.iter().map(sync_files).collect();
        for (staged, outcome) in batch.iter().zip(&mut outcomes) {
            if outcome.is_ok() {
                *outcome = rename_all(staged);
            }
        }
        let synced = sync_dir(&active);
        for (staged, outcome) in batch.into_iter().zip(outcomes) {
            let outcome = match (&synced, outcome) {
                (Err(error), Ok(())) => Err(io::Error::new(error.kind(), error.to_string())),
                (_, outcome) => outcome,
            };
            if outcome.is_ok() {
                let _ = events.try_send(Event::Added(staged.record));
            }
            let _ = staged.done.try_send(outcome);
        }
    }
}

fn sync_files(staged: &Staged) -> io::Result<()> {
    staged.files.iter().try_for_each(File::sync_all)
}

fn rename_all(staged: &Staged) -> io::Result<()> {
    for (from, to) in &staged.renames {
        if let Err(error) = fs::rename(from, to) {
            for (from, _) in &staged.renames {
                let _ = fs::remove_file(from);
            }
            return Err(error);
        }
    }
    Ok(())
}
