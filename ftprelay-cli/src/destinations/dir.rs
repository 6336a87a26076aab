//! `--dir DIR`, `type = "dir"`.

use clap::Args;
use ftprelay_deliver::Directory;
use serde::Deserialize;

use super::invalid;
use crate::error::CliError;

/// The `--dir` flags.
#[derive(Debug, Args)]
pub(crate) struct DirArgs {
    /// Destination: store each file in DIR (a template, e.g.
    /// /srv/scans/{user}/{date}) under its safe name, complete or not at
    /// all, never overwriting.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<String>,
    /// The mode of files --dir stores, octal [default: 0666 less the umask].
    #[arg(long, value_name = "MODE", value_parser = parse_mode, requires = "dir")]
    pub(crate) dir_mode: Option<u32>,
}

impl DirArgs {
    pub(crate) fn entry(&self) -> Option<DirEntry> {
        self.dir.clone().map(|path| DirEntry {
            path,
            mode: self.dir_mode.map(|mode| format!("{mode:o}")),
        })
    }
}

/// `[[destinations]] type = "dir"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirEntry {
    /// The folder, a template.
    pub(crate) path: String,
    /// The files' mode, octal text (`"640"`).
    pub(crate) mode: Option<String>,
}

impl DirEntry {
    pub(crate) fn build(&self) -> Result<Directory, CliError> {
        if self.path.trim().is_empty() {
            return Err(invalid("the dir path is empty"));
        }
        let directory = Directory::parse(&self.path).map_err(invalid)?;
        match &self.mode {
            Some(mode) => Ok(directory.mode(parse_mode(mode).map_err(invalid)?)),
            None => Ok(directory),
        }
    }
}

/// An octal file mode, at most 0777 (no set-id or sticky bits on uploads).
fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim().trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(format!(
            "expected an octal file mode such as 644 or 0640, got {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_and_plain() {
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        for bad in ["", "8", "4755", "rw-r--r--", "-1"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }
}
