//! The `--dir` processor: names are never overwritten, never escape the
//! directory, never follow a planted link; other file systems; the devices
//! profile's folders.

mod support;

use std::path::Path;
use std::process::Command;

use support::{Relay, curl_creating_dirs, curl_upload, stderr, write};

support::on_every_runtime!(
    dir_never_overwrites_a_name({
        let target = tempfile::tempdir().expect("dir");
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--dir",
            &target.path().display().to_string(),
        ]);
        let script = r#"
import ftplib, io, sys
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("demo", "demo")
for body in (b"first", b"second"):
    reply = ftp.storbinary("STOR ../report.pdf".replace("../", ""), io.BytesIO(body))
    assert reply.startswith("226"), reply
ftp.quit()
"#;
        let output = Command::new("python3")
            .args(["-c", script, &relay.port()])
            .output()
            .expect("python3");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            std::fs::read(target.path().join("report.pdf")).expect("first"),
            b"first"
        );
        assert_eq!(
            std::fs::read(target.path().join("report-1.pdf")).expect("second"),
            b"second"
        );
        assert!(relay.spool_is_empty());
    }),
    dir_the_same_file_twice_is_stored_once_and_another_gets_the_next_name({
        // A repeated delivery (a queue's retry after a crash, a device
        // sending the file again) finds its bytes at the name: one copy.
        let target = tempfile::tempdir().expect("dir");
        let mut relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--dir",
            &target.path().display().to_string(),
        ]);
        let work = tempfile::tempdir().expect("dir");
        for body in [&b"same"[..], b"same", b"other", b"other"] {
            let file = write(work.path(), "local", body);
            let output = curl_upload(&relay, "demo:demo", "report.pdf", &file);
            assert!(output.status.success(), "{}", stderr(&output));
        }
        let mut names: Vec<String> = std::fs::read_dir(target.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["report-1.pdf", "report.pdf"], "no temporary left");
        assert_eq!(
            std::fs::read(target.path().join("report.pdf")).expect("first"),
            b"same"
        );
        assert_eq!(
            std::fs::read(target.path().join("report-1.pdf")).expect("other"),
            b"other"
        );
        let line = relay.wait_for_line("already delivered");
        assert!(line.contains("report.pdf"), "{line}");
        assert!(relay.spool_is_empty());
    }),
    dir_works_across_file_systems({
        // The spool is under the temp dir; /dev/shm is another file system
        // (tmpfs), where a hard link fails and the file is copied.
        let shm = Path::new("/dev/shm");
        let target = if shm.is_dir() {
            tempfile::tempdir_in(shm).expect("dir on tmpfs")
        } else {
            tempfile::tempdir().expect("dir")
        };
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--dir",
            &target.path().display().to_string(),
        ]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"across");
        assert!(
            curl_upload(&relay, "demo:demo", "x.bin", &file)
                .status
                .success()
        );
        assert_eq!(
            std::fs::read(target.path().join("x.bin")).expect("stored"),
            b"across"
        );
        assert!(relay.spool_is_empty());
    }),
    the_devices_profile_recreates_folders_under_dir_and_tells_exec_the_path({
        let work = tempfile::tempdir().expect("dir");
        let target = work.path().join("store");
        let relay = Relay::start(&[
            "--profile",
            "devices",
            "--user",
            "cam:pw",
            "--dir",
            &target.display().to_string(),
        ]);
        let file = write(work.path(), "local", b"frame");
        let url = format!(
            "ftp://cam:pw@127.0.0.1:{}/NVR01/ch1/../ch2/snap.jpg",
            relay.addr.port()
        );
        let output = curl_creating_dirs(&file, &url);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            std::fs::read(target.join("NVR01/ch2/snap.jpg")).expect("stored"),
            b"frame"
        );
        drop(relay);

        let meta = work.path().join("meta");
        let command = format!("printf %s \"$FTPRELAY_REMOTE_PATH\" > {}", meta.display());
        let config = write(
            work.path(),
            "ftprelay.toml",
            format!(
                "[[users]]\nname = \"cam\"\npassword = \"pw\"\nprofile = \"devices\"\nexec = '{command}'\n\n[[users]]\nname = \"plain\"\npassword = \"pw\"\ndiscard = true\n"
            )
            .as_bytes(),
        );
        let relay = Relay::start(&["--config", &config.display().to_string()]);
        let url = format!("ftp://cam:pw@127.0.0.1:{}/a/b/c.jpg", relay.addr.port());
        let output = curl_creating_dirs(&file, &url);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(std::fs::read_to_string(&meta).expect("meta"), "/a/b/c.jpg");
        // The other user keeps the relay's strict profile: no folders.
        let url = format!("ftp://plain:pw@127.0.0.1:{}/a/b/c.jpg", relay.addr.port());
        let output = curl_creating_dirs(&file, &url);
        assert!(!output.status.success(), "the strict user created folders");
    }),
    dir_names_never_escape_the_directory({
        let work = tempfile::tempdir().expect("dir");
        let target = work.path().join("a").join("b").join("store");
        std::fs::create_dir_all(&target).expect("dir");
        let relay = Relay::start(&[
            "--profile",
            "devices",
            "--user",
            "cam:pw",
            "--dir",
            &target.display().to_string(),
        ]);
        let long = format!("{}.jpeg", "x".repeat(300));
        let replies = python_stor_each(
            &relay,
            "cam",
            &[
                b"/. ../. ../x.txt",
                "/\u{3000}../\u{3000}../y.txt".as_bytes(),
                b". .htaccess",
                b"caf\xe9.jpg",
                b"caf\xe8.jpg",
                long.as_bytes(),
            ],
        );
        assert!(replies.iter().all(|code| code == "226"), "{replies:?}");
        // Nothing above the directory: only `a/b/store` was ever there.
        assert_eq!(
            tree(work.path())
                .iter()
                .filter(|path| !path.starts_with("a/b/store/"))
                .count(),
            0,
            "{:?}",
            tree(work.path())
        );
        let stored = tree(&target);
        let shortened = format!("{}.jpeg", "x".repeat(250));
        let mut expected = [
            "caf%E8.jpg",
            "caf%E9.jpg",
            "htaccess",
            shortened.as_str(),
            "x.txt",
            "y.txt",
        ];
        expected.sort();
        assert_eq!(stored, expected);
        assert_eq!(std::fs::read(target.join("x.txt")).expect("x"), b"payload");
    }),
    dir_never_follows_a_planted_link({
        let work = tempfile::tempdir().expect("dir");
        let (target, outside) = (work.path().join("store"), work.path().join("outside"));
        std::fs::create_dir_all(&target).expect("dir");
        std::fs::create_dir_all(&outside).expect("dir");
        std::os::unix::fs::symlink(&outside, target.join("NVR01")).expect("link");
        let relay = Relay::start(&[
            "--profile",
            "devices",
            "--user",
            "cam:pw",
            "--dir",
            &target.display().to_string(),
        ]);
        let replies = python_stor_each(&relay, "cam", &[b"/NVR01/snap.jpg", b"/NVR02/snap.jpg"]);
        assert_eq!(replies, ["451", "226"]);
        assert_eq!(tree(&outside), Vec::<String>::new());
        // The link is left as it was (listed as the file it is).
        assert_eq!(tree(&target), ["NVR01", "NVR02/snap.jpg"]);
        assert!(relay.spool_is_empty());
    }),
);

/// Stores each of `names` (bytes, sent as Latin-1 so that every byte
/// passes as it is) with python's ftplib; returns each STOR's reply code.
fn python_stor_each(relay: &Relay, user: &str, names: &[&[u8]]) -> Vec<String> {
    let hex: Vec<String> = names
        .iter()
        .map(|name| name.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let script = format!(
        r#"
import ftplib, io, sys
ftp = ftplib.FTP(encoding="latin-1")
ftp.connect("127.0.0.1", {port}, timeout=20)
ftp.login("{user}", "pw")
for name in sys.argv[1:]:
    name = bytes.fromhex(name).decode("latin-1")
    try:
        print(ftp.storbinary("STOR " + name, io.BytesIO(b"payload"))[:3])
    except ftplib.Error as e:
        print(str(e)[:3])
ftp.quit()
"#,
        port = relay.addr.port()
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(hex)
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Every file under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("read_dir").flatten() {
            let path = entry.path();
            if entry.file_type().expect("type").is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("beneath");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}
