//! What an `--exec` command leaves behind: no process (its background
//! children are ended with it) and no open spool file.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use support::{Relay, curl_upload, stderr, wait_until, write};

support::on_every_runtime!(
    exec_timeouts_leave_no_process_and_no_open_spool_file({
        // Each command leaves a child holding the spool file open, and times
        // out: the relay must end the child too, and so free the file's space.
        let marker = unique_marker();
        let relay = Relay::start_with_env(
            &[
                "--user",
                "demo:demo",
                "--process-timeout",
                "1",
                "--exec",
                "sleep 300 < \"$1\" & sleep 301",
            ],
            &[("FTPRELAY_TEST_MARKER", &marker)],
        );
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", &vec![b'x'; 1 << 20]);
        let uploads: Vec<Child> = (0..10)
            .map(|i| {
                Command::new("curl")
                    .args(["-sS", "--max-time", "30", "-T"])
                    .arg(&file)
                    .arg(relay.url("demo:demo", &format!("slow{i}.bin")))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("curl")
            })
            .collect();
        for upload in uploads {
            let output = upload.wait_with_output().expect("curl");
            assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        }
        let relay_pid = relay.child.id();
        wait_until(
            "no process and no open spool file left",
            || {
                processes_marked(&marker, relay_pid).is_empty()
                    && deleted_but_open_bytes(relay.spool.path()) == 0
            },
            || {
                format!(
                    "processes {:?}, {} bytes of deleted spool files open",
                    processes_marked(&marker, relay_pid),
                    deleted_but_open_bytes(relay.spool.path())
                )
            },
        );
        assert!(relay.spool_is_empty());
    }),
    exec_a_background_child_does_not_hold_up_success({
        // The command succeeds at once; its background child keeps the output
        // pipes open for longer than the processing timeout.
        let marker = unique_marker();
        let relay = Relay::start_with_env(
            &[
                "--user",
                "demo:demo",
                "--process-timeout",
                "3",
                "--exec",
                "sleep 30 & exit 0",
            ],
            &[("FTPRELAY_TEST_MARKER", &marker)],
        );
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"x");
        let output = curl_upload(&relay, "demo:demo", "a.bin", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        // And the child was ended with the command's group.
        let relay_pid = relay.child.id();
        wait_until(
            "the background child to be ended",
            || processes_marked(&marker, relay_pid).is_empty(),
            || format!("{:?}", processes_marked(&marker, relay_pid)),
        );
    }),
);

/// A string no other test's processes carry.
fn unique_marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("marker-{}-{nanos}", std::process::id())
}

/// Live processes (zombies hold nothing) with `marker` in their environment,
/// but `except`.
fn processes_marked(marker: &str, except: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == except {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        if status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
        {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ
            .split(|b| *b == 0)
            .any(|var| var.ends_with(marker.as_bytes()))
        {
            found.push(pid);
        }
    }
    found
}

/// The bytes of deleted files of `dir` that some process still holds open
/// (their disk space is not freed), from every /proc/*/fd.
fn deleted_but_open_bytes(dir: &Path) -> u64 {
    let prefix = dir.display().to_string();
    let mut bytes = 0;
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for process in processes.flatten() {
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.display().to_string();
            if target.starts_with(&prefix) && target.ends_with(" (deleted)") {
                bytes += std::fs::metadata(fd.path()).map_or(0, |m| m.len());
            }
        }
    }
    bytes
}
