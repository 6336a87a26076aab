//! The devices profile: what devices do around an upload, simulated in a
//! namespace that lives only in this session's memory (`ftprelay-proto/DEVICES.md` §5).
//!
//! Folders can be entered and made, this session's uploads can be sized,
//! listed, renamed and deleted; nothing stored is ever read, listed or
//! changed. Uploads with temporary names are held until a rename gives them
//! their final name.

use std::time::{Instant, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};

use super::{Blocked, OnProcessed, Output, Session, SessionFile};
use crate::app::ProcessRequest;
use crate::command::{Arg, Command, FileStructure};
use crate::path::{PathError, display, resolve};
use crate::pattern::matches;
use crate::recent::RecentUpload;
use crate::reply::{Reply, ReplyCode};

impl Session {
    /// Answers `command` as the devices profile does; gives it back when the
    /// strict table's answer is the same.
    pub(super) fn devices_command(&mut self, command: Command) -> Option<Command> {
        use Command::*;
        match command {
            Cwd(path) | Xcwd(path) => match self.resolve(&path) {
                Ok(folder) => {
                    self.namespace.cwd = folder;
                    self.reply(Reply::new(
                        ReplyCode::FILE_ACTION_OK,
                        "Directory successfully changed.",
                    ));
                }
                Err(error) => self.reply(error.reply(true)),
            },
            Cdup | Xcup => {
                self.namespace.cwd.pop();
                self.reply(Reply::new(
                    ReplyCode::FILE_ACTION_OK,
                    "Directory successfully changed.",
                ));
            }
            Pwd | Xpwd => {
                let cwd = display(&self.namespace.cwd);
                self.reply(Reply::quoted_path(&cwd, "is the current directory."));
            }
            // Every folder "exists" and is empty: what a device checks.
            Mkd(path) | Xmkd(path) => match self.resolve(&path) {
                Ok(made) => self.reply(Reply::quoted_path(&display(&made), "created.")),
                Err(error) => self.reply(error.reply(true)),
            },
            Rmd(_) | Xrmd(_) => {
                self.reply(Reply::new(ReplyCode::FILE_ACTION_OK, "Directory removed."));
            }
            Stor(path) | Appe(path) => match self.resolve(&path) {
                Ok(resolved) if resolved.is_empty() => self.reply(Reply::new(
                    ReplyCode::NAME_NOT_ALLOWED,
                    "No file name given.",
                )),
                Ok(resolved) => {
                    let held = self.is_temporary(&crate::path::last_segment(path.as_bytes()));
                    self.start_upload(path.to_bytes(), resolved, None, held);
                }
                Err(error) => self.reply(error.reply(false)),
            },
            Stou(_) => {
                let generated = Bytes::from(format!("upload-{}", self.uploads_started + 1));
                match resolve(&self.namespace.cwd, &generated, self.config.path_limits()) {
                    Ok(path) => self.start_upload(generated.clone(), path, Some(generated), false),
                    Err(error) => self.reply(error.reply(false)),
                }
            }
            Size(path) => match self.session_file(&path) {
                Some((size, _)) => {
                    self.reply(Reply::new(ReplyCode::FILE_STATUS, size.to_string()));
                }
                None => self.deny("No such file."),
            },
            Mdtm(path) => match (
                self.session_file(&path).map(|(_, received)| received),
                self.namespace.wall_clock,
            ) {
                (Some(received), Some((wall, at))) => {
                    let time = wall + received.saturating_duration_since(at);
                    self.reply(Reply::new(ReplyCode::FILE_STATUS, timestamp(time)));
                }
                _ => self.deny("No such file."),
            },
            Mlst(path) => {
                let path = path.unwrap_or_else(dot);
                let shown = self.resolve(&path).map(|resolved| display(&resolved));
                match shown
                    .ok()
                    .zip(self.session_file(&path).map(|(size, _)| size))
                {
                    Some((shown, size)) => {
                        let facts = format!("type=file;size={size}; {}", shown.escape_ascii());
                        self.reply(Reply::multiline(
                            ReplyCode::FILE_ACTION_OK,
                            ["Listing:", facts.as_str(), "End."],
                        ));
                    }
                    None => self.deny("No such file."),
                }
            }
            List(argument) => self.list(argument, Listing::Long),
            Nlst(argument) => self.list(argument, Listing::Names),
            Mlsd(argument) => self.list(argument, Listing::Facts),
            Dele(path) => self.delete(&path),
            Rnfr(path) => match self.resolve(&path) {
                Ok(from) => {
                    self.namespace.rename_from = Some(from);
                    self.reply(Reply::new(
                        ReplyCode::PENDING_FURTHER_INFORMATION,
                        "Ready for RNTO.",
                    ));
                }
                Err(error) => self.reply(error.reply(false)),
            },
            Rnto(path) => self.rename_to(&path),
            Site(argument) => {
                let text = argument.as_bytes();
                let no_op = ["CHMOD ", "UTIME "].iter().any(|verb| {
                    text.len() > verb.len()
                        && text[..verb.len()].eq_ignore_ascii_case(verb.as_bytes())
                });
                if no_op {
                    self.ok("SITE command ok.");
                } else {
                    self.reply(Reply::new(
                        ReplyCode::NOT_IMPLEMENTED,
                        "SITE command not implemented.",
                    ));
                }
            }
            Mfmt { time, path } => match self.resolve(&path) {
                Ok(resolved) => {
                    let text = format!(
                        "Modify={}; {}",
                        time.escaped(),
                        display(&resolved).escape_ascii()
                    );
                    self.reply(Reply::new(ReplyCode::FILE_STATUS, text));
                }
                Err(error) => self.reply(error.reply(false)),
            },
            Stru(FileStructure::Record) => self.ok("Structure set to R."),
            // Stored as sent in every type: devices use them all.
            Type(_) => self.ok("Type set."),
            other => return Some(other),
        }
        None
    }

    fn resolve(&self, path: &Arg) -> Result<Vec<Bytes>, PathError> {
        resolve(
            &self.namespace.cwd,
            &path.to_bytes(),
            self.config.path_limits(),
        )
    }

    /// The size and arrival of the file at `path`, if this session answers
    /// for one there.
    fn session_file(&self, path: &Arg) -> Option<(u64, Instant)> {
        let resolved = self.resolve(path).ok()?;
        let mut found = None;
        self.visit_files(|file, size, received| {
            if found.is_none() && file == resolved.as_slice() {
                found = Some((size, received));
            }
        });
        found
    }

    /// Visits the files this session answers for (path, size, arrival): its
    /// own uploads, then the same user's uploads of the last moments on
    /// other sessions that it has not at the same path.
    fn visit_files(&self, mut visit: impl FnMut(&[Bytes], u64, Instant)) {
        let own = &self.namespace.files;
        for file in own {
            visit(&file.path, file.size, file.received);
        }
        if let (Some((recent, me)), Some(user)) = (&self.namespace.recent, self.user()) {
            recent.visit(user, *me, self.now, |other| {
                if !own.iter().any(|file| file.path == other.path) {
                    visit(&other.path, other.size, other.received);
                }
            });
        }
    }

    /// Tells the user's other sessions about an upload received here.
    pub(super) fn share(&self, path: &[Bytes], size: u64) {
        if let (Some((recent, me)), Some(user)) = (&self.namespace.recent, self.user()) {
            let upload = RecentUpload {
                path: path.to_vec(),
                size,
                received: self.now,
                owner: *me,
            };
            recent.record(user, upload);
        }
    }

    /// Removes the session's file at `path`; a held upload there is dropped
    /// (its spool file deleted), never processed.
    pub(super) fn forget_file(&mut self, path: &[Bytes], outcome: &str) {
        let (now, user) = (self.now, self.user().map(<[u8]>::to_vec));
        let outputs = &mut self.outputs;
        self.namespace.files.retain(|file| {
            let here = file.path == path;
            if let (true, Some(record)) = (here, &file.held) {
                record.finish(now, user.as_deref(), outcome);
                outputs.push_back(Output::Discard(record.upload));
            }
            !here
        });
    }

    /// Keeps `file` for SIZE, MDTM and listings. Processed files are kept
    /// within a bound, the oldest forgotten first: a session that uploads
    /// for days must not grow without limit. (Held ones are bounded by
    /// [`crate::Config::max_held_uploads`].)
    pub(super) fn remember(&mut self, file: SessionFile) {
        if file.held.is_none() {
            self.share(&file.path, file.size);
        }
        self.namespace.files.push(file);
        let most = self.config.max_remembered_files;
        let mut processed = self
            .namespace
            .files
            .iter()
            .filter(|f| f.held.is_none())
            .count();
        while processed > most {
            if let Some(oldest) = self.namespace.files.iter().position(|f| f.held.is_none()) {
                self.namespace.files.remove(oldest);
            }
            processed -= 1;
        }
    }

    /// DELE: a held upload is dropped (a test upload); anything else has
    /// nothing stored to delete.
    fn delete(&mut self, path: &Arg) {
        let resolved = match self.resolve(path) {
            Ok(resolved) => resolved,
            Err(error) => return self.reply(error.reply(false)),
        };
        self.forget_file(&resolved, "deleted before processing");
        self.reply(Reply::new(ReplyCode::FILE_ACTION_OK, "File deleted."));
    }

    /// RNTO: a held upload is processed under its new name, and the reply
    /// waits for the processor; a processed one just changes its name.
    fn rename_to(&mut self, path: &Arg) {
        let Some(from) = self.namespace.rename_from.take() else {
            return self.reply(Reply::new(ReplyCode::BAD_SEQUENCE, "Send RNFR first."));
        };
        let to = match self.resolve(path) {
            Ok(to) => to,
            Err(error) => return self.reply(error.reply(false)),
        };
        if to.is_empty() {
            return self.reply(Reply::new(
                ReplyCode::NAME_NOT_ALLOWED,
                "No file name given.",
            ));
        }
        if from != to && self.namespace.files.iter().any(|f| f.path == from) {
            // What was at the new name is replaced (a held upload there is
            // dropped): one file per path.
            self.forget_file(&to, "replaced by a rename");
        }
        match self.namespace.files.iter().position(|f| f.path == from) {
            Some(index) if self.namespace.files[index].held.is_some() => {
                self.finalize(index, to, OnProcessed::Rename, None);
            }
            Some(index) => {
                self.namespace.files[index].path = to;
                self.reply(Reply::new(ReplyCode::FILE_ACTION_OK, "Renamed."));
            }
            None => self.reply(Reply::new(ReplyCode::FILE_ACTION_OK, "Renamed.")),
        }
    }

    /// Starts processing the oldest held upload, silently (it was answered
    /// when it arrived), then `then`. `false` when nothing is held.
    pub(super) fn finalize_next_held(&mut self, then: Option<Command>) -> bool {
        match self.namespace.files.iter().position(|f| f.held.is_some()) {
            Some(index) => {
                let path = self.namespace.files[index].path.clone();
                self.finalize(index, path, OnProcessed::Silent, then);
                true
            }
            None => false,
        }
    }

    /// When the oldest held upload stops waiting for its rename.
    pub(super) fn held_deadline(&self) -> Option<Instant> {
        self.namespace
            .files
            .iter()
            .filter(|f| f.held.is_some())
            .map(|f| super::later(f.received, self.config.held_upload_timeout))
            .min()
    }

    /// Processes the held upload at `index` under `path`.
    fn finalize(
        &mut self,
        index: usize,
        path: Vec<Bytes>,
        reply: OnProcessed,
        then: Option<Command>,
    ) {
        let Some(record) = self.namespace.files[index].held.take() else {
            return;
        };
        self.namespace.files[index].path = path.clone();
        self.share(&path, record.size.unwrap_or(0));
        let request = ProcessRequest {
            upload: record.upload,
            name: display(&path),
            file_name: path.last().cloned().unwrap_or_default(),
            path: display(&path),
            user: self.user().map(Bytes::copy_from_slice).unwrap_or_default(),
            peer: self.peer,
            size: record.size.unwrap_or(0),
        };
        self.outputs.push_back(Output::Process(request));
        let deadline = self.deadline_after(self.config.process_timeout);
        if self.is_control_open() {
            self.blocked = Some(Blocked::Processing {
                record,
                deadline,
                reply,
                then,
            });
        } else {
            // The client is gone: processed like an upload acknowledged on
            // receipt.
            self.background.push((record, deadline));
        }
    }

    /// How many uploads are held for a rename, and their bytes.
    pub(super) fn held_uploads(&self) -> (usize, u64) {
        self.namespace
            .files
            .iter()
            .filter(|f| f.held.is_some())
            .fold((0, 0), |(count, bytes), f| (count + 1, bytes + f.size))
    }

    /// Whether an upload named `file_name` is held for a rename.
    pub(super) fn is_temporary(&self, file_name: &[u8]) -> bool {
        self.config
            .temporary_names
            .iter()
            .any(|pattern| matches(pattern.as_bytes(), file_name))
    }

    /// LIST, NLST, MLSD: this session's files in the folder, sent over the
    /// data connection like any listing (usually: nothing). Never `550`.
    fn list(&mut self, argument: Option<Arg>, kind: Listing) {
        // `LIST -la dir`: options first, then maybe a folder.
        let folder = argument
            .as_ref()
            .map(|a| a.as_bytes())
            .unwrap_or_default()
            .split(|b| *b == b' ')
            .rfind(|part| !part.is_empty() && !part.starts_with(b"-"))
            .map(|part| {
                let limits = self.config.path_limits();
                resolve(&self.namespace.cwd, &Bytes::copy_from_slice(part), limits)
            })
            .unwrap_or_else(|| Ok(self.namespace.cwd.clone()));
        // A folder that cannot exist holds nothing.
        let Ok(folder) = folder else {
            return self.start_listing(Bytes::new());
        };
        let mut listing = BytesMut::new();
        self.visit_files(|path, size, _| {
            let Some((name, parent)) = path.split_last() else {
                return;
            };
            if parent != folder.as_slice() {
                return;
            }
            match kind {
                Listing::Names => listing.extend_from_slice(name),
                Listing::Long => {
                    let line = format!("-rw-r--r-- 1 ftp ftp {size:>12} Jan 01 00:00 ");
                    listing.extend_from_slice(line.as_bytes());
                    listing.extend_from_slice(name);
                }
                Listing::Facts => {
                    listing.extend_from_slice(format!("type=file;size={size}; ").as_bytes());
                    listing.extend_from_slice(name);
                }
            }
            listing.put_slice(b"\r\n");
        });
        self.start_listing(listing.freeze());
    }

    /// Lets MDTM answer with times: `wall` is the wall-clock time now. The
    /// core reads no clock; an adapter passes it once.
    pub fn with_wall_clock(mut self, wall: SystemTime) -> Self {
        self.namespace.wall_clock = Some((wall, self.now));
        self
    }
}

/// The kinds of directory listing.
#[derive(Debug, Clone, Copy)]
enum Listing {
    /// LIST: UNIX `ls -l` lines.
    Long,
    /// NLST: names.
    Names,
    /// MLSD: RFC 3659 facts.
    Facts,
}

fn dot() -> Arg {
    Arg::new(Bytes::from_static(b".")).unwrap_or_else(|| unreachable!("\".\" is a valid argument"))
}

/// `YYYYMMDDHHMMSS` in UTC (RFC 3659 §2.3).
fn timestamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = crate::civil::CivilTime::from_unix(secs);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(SystemTime::UNIX_EPOCH), "19700101000000");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_566_896);
        assert_eq!(timestamp(t), "20240501123456");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(leap), "20000229000000");
    }
}
