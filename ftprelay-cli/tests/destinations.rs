//! Several destinations per upload, and the names users choose for them:
//! every destination gets the file, `226` only when all succeeded, a
//! failure named in the log; templates filled in, an unknown placeholder
//! refused at start-up; `--dir`'s files complete, with a normal mode, and
//! no temporary left.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use support::{Relay, assert_fails, curl_upload, ftprelay, stderr, upload, write};

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

support::on_every_runtime!(
    every_destination_gets_the_file({
        let archive = tempfile::tempdir().expect("dir");
        let copies = tempfile::tempdir().expect("dir");
        let command = format!("cp \"$1\" {}/copy-$FTPRELAY_ID", copies.path().display());
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--dir",
            &archive.path().display().to_string(),
            "--exec",
            &command,
        ]);
        let output = upload(&relay, "demo:demo", "scan.pdf", b"\x00binary\xffscan");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            std::fs::read(archive.path().join("scan.pdf")).expect("stored"),
            b"\x00binary\xffscan"
        );
        let copied = names(copies.path());
        assert_eq!(copied.len(), 1, "{copied:?}");
        assert_eq!(
            std::fs::read(copies.path().join(&copied[0])).expect("copied"),
            b"\x00binary\xffscan"
        );
        // The {id} is 16 hex digits.
        let id = copied[0].trim_start_matches("copy-");
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        assert!(relay.spool_is_empty());
    }),
    one_failing_destination_is_451_and_named_in_the_log({
        let archive = tempfile::tempdir().expect("dir");
        let mut relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--dir",
            &archive.path().display().to_string(),
            "--exec",
            "exit 3",
        ]);
        let output = upload(&relay, "demo:demo", "a.jpg", b"x");
        assert!(!output.status.success());
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery failed");
        assert!(line.contains("exec"), "{line}");
        // The folder got its copy: a retry delivers to both again.
        assert_eq!(names(archive.path()), ["a.jpg"]);
        assert!(relay.spool_is_empty());
    }),
    a_destination_that_hangs_is_named_when_the_relay_gives_up({
        let archive = tempfile::tempdir().expect("dir");
        let mut relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--process-timeout",
            "2",
            "--dir",
            &archive.path().display().to_string(),
            "--exec",
            "sleep 60",
        ]);
        let output = upload(&relay, "demo:demo", "a.jpg", b"x");
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery given up on");
        assert!(line.contains("exec"), "{line}");
        let log = relay.log();
        let given_up: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("delivery given up on"))
            .collect();
        assert_eq!(given_up.len(), 1, "only the command was unfinished: {log}");
    }),
    dir_templates_make_folders_and_files_get_a_normal_mode({
        let base = tempfile::tempdir().expect("dir");
        let template = format!("{}/{{user}}/{{date}}", base.path().display());
        let relay = Relay::start(&["--user", "demo:demo", "--dir", &template]);
        let output = upload(&relay, "demo:demo", "page.pdf", b"page");
        assert!(output.status.success(), "{}", stderr(&output));
        let user_dir = base.path().join("demo");
        let dates = names(&user_dir);
        assert_eq!(dates.len(), 1, "{dates:?}");
        let date = &dates[0];
        assert!(
            date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
            "{date}"
        );
        let folder = user_dir.join(date);
        // Complete, and no hidden temporary left beside it.
        assert_eq!(names(&folder), ["page.pdf"]);
        let stored = folder.join("page.pdf");
        assert_eq!(std::fs::read(&stored).expect("stored"), b"page");
        // The relay's umask is the test's: 0666 less it (never the spool's
        // private 0600 when the umask allows more).
        let umask = read_umask();
        let mode = std::fs::metadata(&stored)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o666 & !umask, "umask {umask:o}");
    }),
    dir_mode_sets_the_files_mode({
        let base = tempfile::tempdir().expect("dir");
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--dir",
            &base.path().display().to_string(),
            "--dir-mode",
            "0604",
        ]);
        let output = upload(&relay, "demo:demo", "page.pdf", b"page");
        assert!(output.status.success(), "{}", stderr(&output));
        let mode = std::fs::metadata(base.path().join("page.pdf"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o604);
    }),
    the_config_file_lists_destinations_per_user({
        let work = tempfile::tempdir().expect("dir");
        let default_dir = work.path().join("default");
        let scans = work.path().join("scans");
        let ocr = work.path().join("ocr");
        std::fs::create_dir(&ocr).expect("dir");
        let config = format!(
            r#"
listen = ["127.0.0.1:0"]

[[destinations]]
type = "dir"
path = "{default}"

[[users]]
name = "other"
password = "pw"

[[users]]
name = "scanner"
password = "pw"

[[users.destinations]]
type = "dir"
path = "{scans}/{{user}}"
mode = "640"

[[users.destinations]]
type = "exec"
command = "cp \"$1\" {ocr}/$FTPRELAY_FILE_NAME"
"#,
            default = default_dir.display(),
            scans = scans.display(),
            ocr = ocr.display(),
        );
        let path = write(work.path(), "ftprelay.toml", config.as_bytes());
        let relay = Relay::start(&["--config", &path.display().to_string()]);
        let file = write(work.path(), "local", b"a page");
        let output = curl_upload(&relay, "scanner:pw", "page.pdf", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let stored = scans.join("scanner/page.pdf");
        assert_eq!(std::fs::read(&stored).expect("dir"), b"a page");
        let mode = std::fs::metadata(&stored)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            std::fs::read(ocr.join("page.pdf")).expect("exec"),
            b"a page"
        );
        assert!(!default_dir.exists(), "the scanner's own destinations only");
        let output = curl_upload(&relay, "other:pw", "other.pdf", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            std::fs::read(default_dir.join("other.pdf")).expect("default"),
            b"a page"
        );
    }),
);

#[test]
fn bad_destination_settings_are_one_line_at_start_up() {
    assert_fails(
        &ftprelay(&["--user", "a:b", "--dir", "/tmp/{usr}/x"], ""),
        2,
        "{usr}",
    );
    assert_fails(
        &ftprelay(&["--user", "a:b", "--dir", "/tmp/{user}/../x"], ""),
        2,
        "..",
    );
    assert_fails(
        &ftprelay(
            &["--user", "a:b", "--dir", "/tmp/x", "--dir-mode", "4755"],
            "",
        ),
        2,
        "mode",
    );
    assert_fails(
        &ftprelay(&["--user", "a:b", "--dir", "/tmp/{name"], ""),
        2,
        "brace",
    );
    let work = tempfile::tempdir().expect("dir");
    let config = write(
        work.path(),
        "bad.toml",
        b"[[destinations]]\ntype = \"dir\"\npath = \"/tmp\"\ncolour = \"blue\"\n",
    );
    assert_fails(
        &ftprelay(
            &["--user", "a:b", "--config", &config.display().to_string()],
            "",
        ),
        2,
        "colour",
    );
    let config = write(
        work.path(),
        "unknown.toml",
        b"[[destinations]]\ntype = \"carrier-pigeon\"\n",
    );
    assert_fails(
        &ftprelay(
            &["--user", "a:b", "--config", &config.display().to_string()],
            "",
        ),
        2,
        "carrier-pigeon",
    );
}

/// This process's umask, which the relay it starts inherits.
fn read_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))
        .and_then(|value| u32::from_str_radix(value.trim(), 8).ok())
        .expect("a Umask line")
}
