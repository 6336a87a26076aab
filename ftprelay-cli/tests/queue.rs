//! `--queue DIR`, store and forward: the device hears 226 once the file is
//! on disk; each destination gets it once it can, once; a relay killed
//! with SIGKILL at any moment and started again delivers every upload it
//! acknowledged and nothing half-written; a full queue refuses with 452;
//! `ftprelay queue` lists, shows, retries and drops, next to a running
//! relay.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::hook::Hook;
use support::{BIN, KillOnDrop, Relay, assert_fails, ftprelay, stderr, upload, wait_until};

/// `ftprelay --user cam:pw --queue DIR` with `extra`, retrying every
/// second unless `extra` says otherwise.
fn queued_relay(queue: &Path, extra: &[&str]) -> Relay {
    queued_relay_with_env(queue, extra, &[])
}

/// [`queued_relay`] with `env` added to the relay's environment.
fn queued_relay_with_env(queue: &Path, extra: &[&str], env: &[(&str, &str)]) -> Relay {
    let mut args = vec!["--user", "cam:pw", "--queue", queue.to_str().expect("path")];
    if !extra.contains(&"--queue-retry-first") {
        args.extend(["--queue-retry-first", "1", "--queue-retry-max", "1"]);
    }
    args.extend_from_slice(extra);
    Relay::start_with_env(&args, env)
}

/// The lines of `ftprelay queue list DIR`, as maps of the header's names.
fn queue_list(queue: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let output = ftprelay(&["queue", "list", queue.to_str().expect("path")], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split('\t').collect();
    lines
        .map(|line| {
            header
                .iter()
                .zip(line.split('\t'))
                .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// The files in `dir` (its name relative to the queue), sorted.
fn files_in(queue: &Path, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(queue.join(dir))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn sha256(bytes: &[u8]) -> String {
    let output = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().expect("stdin").write_all(bytes)?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

/// Runs a Python ftplib script against `relay` (its port is `sys.argv[1]`)
/// and returns its output; fails the test if the script fails.
fn ftplib(relay: &Relay, script: &str) -> String {
    let output = Command::new("python3")
        .args(["-c", script, &relay.port()])
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Starts a Python ftplib script that prints one line when it got where
/// the test needs it, then waits; that line, and the client (killed when
/// dropped).
fn ftplib_paused(relay: &Relay, script: &str) -> (String, KillOnDrop) {
    let mut client = Command::new("python3")
        .args(["-c", script, &relay.port()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut said = String::new();
    BufReader::new(client.stdout.take().expect("stdout"))
        .read_line(&mut said)
        .expect("the client's line");
    (said, KillOnDrop(client))
}

fn kill_hard(relay: &mut Relay) {
    relay.child.kill().expect("SIGKILL");
    relay.child.wait().expect("reaped");
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

support::on_every_runtime!(
    a_destination_down_then_up_gets_the_upload_once_and_the_others_are_not_repeated({
        let hook = Hook::start();
        hook.set("down", true);
        let queue = tempfile::tempdir().expect("queue");
        let out = tempfile::tempdir().expect("out");
        let mut relay = queued_relay(
            queue.path(),
            &["--http", &hook.url, "--dir", &path_arg(out.path())],
        );
        let body = b"snapshot while the hook is down".repeat(100);
        let output = upload(&relay, "cam:pw", "snap.jpg", &body);
        assert!(
            output.status.success(),
            "226 while the hook is down: {}",
            stderr(&output)
        );
        assert_eq!(hook.next()["status"], 503);
        relay.wait_for_line("will retry");
        assert_eq!(
            std::fs::read(out.path().join("snap.jpg")).expect("the folder got it at once"),
            body
        );
        let listed = queue_list(queue.path());
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["status"], "waiting");
        assert_eq!(listed[0]["name"], "snap.jpg");
        assert!(listed[0]["last_error"].contains("503"), "{listed:?}");
        hook.set("down", false);
        let delivered = hook.next_with_status(200);
        assert_eq!(delivered["sha256"], sha256(&body));
        assert_eq!(delivered["path"], "/hook/snap.jpg");
        wait_until(
            "the queue to empty",
            || files_in(queue.path(), "active").is_empty(),
            || format!("{:?}", files_in(queue.path(), "active")),
        );
        hook.assert_quiet(Duration::from_millis(1500));
        // The folder got its copy once: not again when the hook was retried.
        assert_eq!(files_in(out.path(), "."), ["snap.jpg"]);
        assert!(relay.spool_is_empty());
    }),
    an_acknowledged_upload_survives_sigkill_and_is_delivered_after_the_restart({
        let hook = Hook::start();
        hook.set("down", true);
        let queue = tempfile::tempdir().expect("queue");
        let mut relay = queued_relay(queue.path(), &["--http", &hook.url]);
        let body = b"a page the scanner will not send again".repeat(1000);
        let output = upload(&relay, "cam:pw", "page.pdf", &body);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(hook.next()["status"], 503);
        kill_hard(&mut relay);
        hook.set("down", false);
        let _relay = queued_relay(queue.path(), &["--http", &hook.url]);
        let delivered = hook.next_with_status(200);
        assert_eq!(delivered["sha256"], sha256(&body));
        wait_until(
            "the queue to empty",
            || files_in(queue.path(), "active").is_empty(),
            || format!("{:?}", files_in(queue.path(), "active")),
        );
        hook.assert_quiet(Duration::from_millis(1500));
    }),
    a_full_queue_refuses_with_452_and_keeps_nothing({
        let hook = Hook::start();
        hook.set("down", true);
        let queue = tempfile::tempdir().expect("queue");
        let relay = queued_relay(
            queue.path(),
            &[
                "--http",
                &hook.url,
                "--queue-max-files",
                "1",
                "--queue-retry-first",
                "3600",
                "--queue-retry-max",
                "3600",
            ],
        );
        let output = upload(&relay, "cam:pw", "first.jpg", b"first");
        assert!(output.status.success(), "{}", stderr(&output));
        let output = upload(&relay, "cam:pw", "second.jpg", b"second");
        assert!(!output.status.success());
        assert!(stderr(&output).contains("452"), "{}", stderr(&output));
        let listed = queue_list(queue.path());
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["name"], "first.jpg");
        assert!(files_in(queue.path(), "tmp").is_empty());
        assert!(relay.spool_is_empty());
        assert!(
            relay.log().contains("upload refused: 452"),
            "{}",
            relay.log()
        );
        // Refused at STOR: no 150, no data connection used.
        let said = ftplib(
            &relay,
            r#"
import ftplib, io, sys
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("cam", "pw")
try:
    ftp.storbinary("STOR third.jpg", io.BytesIO(b"third"))
    print("stored")
except ftplib.error_temp as e:
    print(e)
ftp.quit()
"#,
        );
        assert!(said.starts_with("452"), "{said}");
        assert_eq!(queue_list(queue.path()).len(), 1);
    }),
    a_held_upload_is_queued_before_its_226_and_renamed_or_not_it_is_delivered({
        let hook = Hook::start();
        let queue = tempfile::tempdir().expect("queue");
        let mut relay = queued_relay(queue.path(), &["--http", &hook.url, "--profile", "devices"]);
        // Renamed: delivered under the new name.
        ftplib(
            &relay,
            r#"
import ftplib, io, sys
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("cam", "pw")
assert ftp.storbinary("STOR clip.mp4.tmp", io.BytesIO(b"renamed clip")).startswith("226")
assert ftp.rename("clip.mp4.tmp", "clip.mp4").startswith("250")
ftp.quit()
"#,
        );
        let renamed = hook.next_with_status(200);
        assert_eq!(renamed["path"], "/hook/clip.mp4");
        assert_eq!(renamed["sha256"], sha256(b"renamed clip"));
        // Held and never renamed: the 226 was given, then the relay is
        // killed before the rename; the next start delivers it as it is.
        hook.set("down", true);
        let (said, _client) = ftplib_paused(
            &relay,
            r#"
import ftplib, io, sys
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("cam", "pw")
print(ftp.storbinary("STOR snap.jpg.tmp", io.BytesIO(b"held snapshot")), flush=True)
sys.stdin.read()
"#,
        );
        assert!(said.starts_with("226"), "{said}");
        let listed = queue_list(queue.path());
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["status"], "held", "{listed:?}");
        kill_hard(&mut relay);
        hook.set("down", false);
        let _relay = queued_relay(queue.path(), &["--http", &hook.url, "--profile", "devices"]);
        let held = hook.next_with_status(200);
        assert_eq!(held["path"], "/hook/snap.jpg.tmp");
        assert_eq!(held["sha256"], sha256(b"held snapshot"));
        wait_until(
            "the queue to empty",
            || files_in(queue.path(), "active").is_empty(),
            || format!("{:?}", files_in(queue.path(), "active")),
        );
        hook.assert_quiet(Duration::from_millis(1500));
    }),
    killed_while_moving_to_failed_it_ends_in_failed_whole_after_the_restart({
        use std::os::unix::process::ExitStatusExt as _;
        // The relay (a debug build) kills itself with SIGKILL right after the
        // step named, the moment no signal from outside could hit.
        for step in [
            "to-failed-after-data",
            "to-failed-after-state",
            "to-failed-after-record",
        ] {
            let hook = Hook::start();
            hook.set("reject", true);
            let queue = tempfile::tempdir().expect("queue");
            let mut relay = queued_relay_with_env(
                queue.path(),
                &["--http", &hook.url],
                &[("FTPRELAY_TEST_KILL_AT", step)],
            );
            let body = format!("refused for good, killed {step}").repeat(50);
            let output = upload(&relay, "cam:pw", "bad.jpg", body.as_bytes());
            assert!(output.status.success(), "{}", stderr(&output));
            assert_eq!(hook.next()["status"], 400);
            let mut status = None;
            wait_until(
                "the relay to be killed",
                || {
                    status = relay.child.try_wait().expect("wait");
                    status.is_some()
                },
                // The field, not `log()`: the condition holds the child.
                || relay.log.lock().expect("log").clone(),
            );
            assert_eq!(status.and_then(|s| s.signal()), Some(9), "{step}");
            drop(relay);
            let relay = queued_relay(queue.path(), &["--http", &hook.url]);
            if step != "to-failed-after-record" {
                // The restart may finish the move before it logs that it
                // listens: the whole log, not the lines after that one.
                wait_until(
                    "the move to failed/ to be finished",
                    || relay.log().contains("upload moved to failed/"),
                    || relay.log(),
                );
            }
            let failed = files_in(queue.path(), "failed");
            assert_eq!(failed.len(), 3, "{step}: {failed:?}");
            assert!(files_in(queue.path(), "active").is_empty(), "{step}");
            let data = failed.iter().find(|f| f.ends_with(".data")).expect("data");
            assert_eq!(
                std::fs::read(queue.path().join("failed").join(data)).expect("data"),
                body.as_bytes(),
                "{step}"
            );
            let listed = queue_list(queue.path());
            assert_eq!(listed.len(), 1, "{step}: {listed:?}");
            assert_eq!(listed[0]["status"], "failed", "{step}");
            assert!(
                listed[0]["last_error"].contains("400"),
                "{step}: {listed:?}"
            );
            // Refused for good: the restart does not try it again.
            hook.assert_quiet(Duration::from_millis(1500));
        }
    }),
);

support::on_tokio_only!(
    too_old_an_upload_moves_to_failed_with_its_reason({
        let hook = Hook::start();
        hook.set("down", true);
        let queue = tempfile::tempdir().expect("queue");
        let mut relay = queued_relay(queue.path(), &["--http", &hook.url, "--queue-max-age", "2"]);
        let output = upload(&relay, "cam:pw", "late.jpg", b"too late");
        assert!(output.status.success(), "{}", stderr(&output));
        let line = relay.wait_for_line("upload moved to failed/");
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains("503"), "{line}");
        let failed = files_in(queue.path(), "failed");
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert!(files_in(queue.path(), "active").is_empty());
        let listed = queue_list(queue.path());
        assert_eq!(listed[0]["status"], "failed");
        let id = listed[0]["id"].clone();
        let shown = ftprelay(&["queue", "show", &path_arg(queue.path()), &id], "");
        assert!(shown.status.success(), "{}", stderr(&shown));
        let shown: Value = serde_json::from_slice(&shown.stdout).expect("JSON");
        assert!(
            shown["state"]["failure"]
                .as_str()
                .expect("a reason")
                .contains("503"),
            "{shown}"
        );
        assert_eq!(
            std::fs::read(shown["data"].as_str().expect("data")).expect("kept"),
            b"too late"
        );

        // Retried from failed/ while the relay runs: delivered now.
        hook.set("down", false);
        let output = ftprelay(&["queue", "retry", &path_arg(queue.path()), &id], "");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(hook.next_with_status(200)["sha256"], sha256(b"too late"));
        wait_until(
            "the queue to empty",
            || {
                files_in(queue.path(), "failed").is_empty()
                    && files_in(queue.path(), "active").is_empty()
            },
            || format!("{:?}", queue_list(queue.path())),
        );
    }),
    a_permanent_failure_moves_to_failed_at_once({
        let hook = Hook::start();
        hook.set("reject", true);
        let queue = tempfile::tempdir().expect("queue");
        let mut relay = queued_relay(queue.path(), &["--http", &hook.url]);
        let output = upload(&relay, "cam:pw", "bad.jpg", b"refused");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(hook.next()["status"], 400);
        let line = relay.wait_for_line("upload moved to failed/");
        assert!(line.contains("400"), "{line}");
        hook.assert_quiet(Duration::from_millis(2500));
        let listed = queue_list(queue.path());
        assert_eq!(listed[0]["attempts"], "1", "{listed:?}");
    }),
    retry_and_drop_reach_the_running_relay({
        let hook = Hook::start();
        hook.set("down", true);
        let queue = tempfile::tempdir().expect("queue");
        let mut relay = queued_relay(
            queue.path(),
            &[
                "--http",
                &hook.url,
                "--queue-retry-first",
                "3600",
                "--queue-retry-max",
                "3600",
            ],
        );
        for name in ["keep.jpg", "drop.jpg"] {
            let output = upload(&relay, "cam:pw", name, name.as_bytes());
            assert!(output.status.success(), "{}", stderr(&output));
            assert_eq!(hook.next()["status"], 503);
            relay.wait_for_line("will retry");
        }
        // Both wait an hour for their next attempt (once their state is written).
        wait_until(
            "both uploads to wait",
            || {
                let listed = queue_list(queue.path());
                listed.len() == 2 && listed.iter().all(|u| u["next"].starts_with("in "))
            },
            || format!("{:?}", queue_list(queue.path())),
        );
        let listed = queue_list(queue.path());
        let id_of = |name: &str| {
            listed
                .iter()
                .find(|u| u["name"] == name)
                .map(|u| u["id"].clone())
                .expect("listed")
        };
        let output = ftprelay(
            &["queue", "drop", &path_arg(queue.path()), &id_of("drop.jpg")],
            "",
        );
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(String::from_utf8_lossy(&output.stdout).contains("dropped"));
        hook.set("down", false);
        let output = ftprelay(&["queue", "retry", &path_arg(queue.path())], "");
        assert!(output.status.success(), "{}", stderr(&output));
        let delivered = hook.next_with_status(200);
        assert_eq!(delivered["sha256"], sha256(b"keep.jpg"));
        hook.assert_quiet(Duration::from_millis(1500));
        assert!(queue_list(queue.path()).is_empty());
        assert!(files_in(queue.path(), "active").is_empty());
        // An id that is not there, and one that is not an id.
        assert_fails(
            &ftprelay(
                &["queue", "drop", &path_arg(queue.path()), &id_of("drop.jpg")],
                "",
            ),
            2,
            "no such upload",
        );
        assert_fails(
            &ftprelay(
                &["queue", "retry", &path_arg(queue.path()), "../../etc"],
                "",
            ),
            2,
            "not an upload id",
        );
    }),
    a_corrupt_or_foreign_file_is_moved_aside_and_the_rest_delivered({
        let hook = Hook::start();
        hook.set("down", true);
        let queue = tempfile::tempdir().expect("queue");
        let mut relay = queued_relay(queue.path(), &["--http", &hook.url]);
        let output = upload(&relay, "cam:pw", "good.jpg", b"good");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(hook.next()["status"], 503);
        relay.terminate();
        let active = queue.path().join("active");
        std::fs::write(active.join("00000000000000aa.json"), b"{ not json").expect("write");
        std::fs::write(active.join("00000000000000aa.data"), b"orphan").expect("write");
        std::fs::write(active.join("notes.txt"), b"an operator's file").expect("write");
        std::fs::write(queue.path().join("stray"), b"x").expect("write");
        hook.set("down", false);
        let mut relay = queued_relay(queue.path(), &["--http", &hook.url]);
        assert_eq!(hook.next_with_status(200)["sha256"], sha256(b"good"));
        let log = relay.log();
        assert!(log.contains("cannot be read; moved to corrupt/"), "{log}");
        assert!(log.contains("moved to the queue's corrupt/"), "{log}");
        let corrupt = files_in(queue.path(), "corrupt");
        assert_eq!(
            corrupt,
            [
                "00000000000000aa.data",
                "00000000000000aa.json",
                "notes.txt",
                "stray"
            ]
        );
        wait_until(
            "the queue to empty",
            || files_in(queue.path(), "active").is_empty(),
            || format!("{:?}", files_in(queue.path(), "active")),
        );
        // Still serving.
        let output = upload(&relay, "cam:pw", "after.jpg", b"after");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(hook.next_with_status(200)["sha256"], sha256(b"after"));
        relay.terminate();
    }),
    killed_while_receiving_nothing_is_delivered_or_left({
        let hook = Hook::start();
        let queue = tempfile::tempdir().expect("queue");
        let mut relay = queued_relay(queue.path(), &["--http", &hook.url]);
        let (_, _client) = ftplib_paused(
            &relay,
            r#"
import ftplib, sys
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("cam", "pw")
data = ftp.transfercmd("STOR half.bin")
data.sendall(b"x" * 65536)
print("sent", flush=True)
sys.stdin.read()
"#,
        );
        let spool = relay.spool.path().to_owned();
        wait_until(
            "the upload to reach the spool",
            || {
                std::fs::read_dir(&spool)
                    .expect("spool")
                    .flatten()
                    .any(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(".ftprelay-spool-")
                            && e.metadata().is_ok_and(|m| m.len() > 0)
                    })
            },
            || "no spool file".to_owned(),
        );
        kill_hard(&mut relay);
        let _relay = queued_relay(queue.path(), &["--http", &hook.url]);
        hook.assert_quiet(Duration::from_millis(1500));
        assert!(queue_list(queue.path()).is_empty());
        assert!(files_in(queue.path(), "tmp").is_empty());
        assert!(files_in(queue.path(), "active").is_empty());
    }),
    killed_mid_delivery_it_is_delivered_again_with_the_same_idempotency_key({
        let hook = Hook::start();
        hook.set("hang", true);
        let queue = tempfile::tempdir().expect("queue");
        let mut relay = queued_relay(queue.path(), &["--http", &hook.url]);
        let body = b"delivered twice, recognisably".repeat(50);
        let output = upload(&relay, "cam:pw", "twice.jpg", &body);
        assert!(output.status.success(), "{}", stderr(&output));
        let first = hook.next();
        assert_eq!(first["hanging"], "/hook/twice.jpg");
        kill_hard(&mut relay);
        hook.set("hang", false);
        let _relay = queued_relay(queue.path(), &["--http", &hook.url]);
        let second = hook.next_with_status(200);
        assert_eq!(first["sha256"], sha256(&body));
        assert_eq!(second["sha256"], sha256(&body));
        let key = first["key"].as_str().expect("an Idempotency-Key");
        assert_eq!(key.len(), 16, "{key}");
        assert_eq!(second["key"], key, "the repeat carries the same key");
        wait_until(
            "the queue to empty",
            || files_in(queue.path(), "active").is_empty(),
            || format!("{:?}", files_in(queue.path(), "active")),
        );
        hook.assert_quiet(Duration::from_millis(1500));
    }),
    a_second_relay_on_the_same_queue_is_refused({
        let queue = tempfile::tempdir().expect("queue");
        let _first = queued_relay(queue.path(), &["--discard"]);
        let output = Command::new(BIN)
            .args([
                "--user",
                "a:b",
                "--discard",
                "--listen",
                "127.0.0.1:0",
                "--queue",
            ])
            .arg(queue.path())
            .output()
            .expect("run");
        assert_fails(&output, 1, "in use by another ftprelay");
    }),
);

#[test]
fn queue_settings_are_checked() {
    let dir = tempfile::tempdir().expect("dir");
    let queue = path_arg(&dir.path().join("q"));
    for (args, says) in [
        (vec!["--queue-max-age", "10"], "need --queue"),
        (
            vec!["--queue", &queue, "--queue-retry-first", "0"],
            "at least 1 second",
        ),
        (
            vec![
                "--queue",
                &queue,
                "--queue-retry-first",
                "60",
                "--queue-retry-max",
                "10",
            ],
            "queue_retry_max",
        ),
        (
            vec!["--queue", &queue, "--ack-on-receipt"],
            "cannot be used with",
        ),
        (
            vec!["--queue", &queue, "--queue-deliveries", "0"],
            "at least 1",
        ),
    ] {
        let mut all = vec!["--user", "a:b", "--discard"];
        all.extend(args.iter().copied());
        assert_fails(&ftprelay(&all, ""), 2, says);
    }
    assert_fails(
        &ftprelay(&["queue", "list", &path_arg(dir.path())], ""),
        1,
        "not a queue directory",
    );
}
