//! The `--exec` processor: what the command gets (the file, its name and
//! description), its failures and timeout, and its output in the log.

mod support;

use std::process::{Command, Stdio};

use support::{Relay, curl_upload, stderr, write};

support::on_every_runtime!(
    exec_gets_the_file_and_its_description({
        let work = tempfile::tempdir().expect("dir");
        let out = work.path().join("out");
        let command = format!(
            "cat \"$1\" > {out}.data && printf '%s|%s|%s|%s' \"$FTPRELAY_FILE_NAME\" \"$FTPRELAY_USER\" \"$FTPRELAY_SIZE\" \"$FTPRELAY_PATH\" > {out}.meta && echo 'a line for the log' >&2",
            out = out.display()
        );
        let mut relay = Relay::start(&["--user", "demo:demo", "--exec", &command]);
        let file = write(work.path(), "local", b"exec me");
        let output = curl_upload(&relay, "demo:demo", "scan.pdf", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            std::fs::read(out.with_extension("data")).expect("data"),
            b"exec me"
        );
        let meta = std::fs::read_to_string(out.with_extension("meta")).expect("meta");
        let parts: Vec<&str> = meta.split('|').collect();
        assert_eq!(&parts[..3], ["scan.pdf", "demo", "7"]);
        assert!(parts[3].starts_with(&relay.spool.path().display().to_string()));
        assert!(relay.spool_is_empty());
        relay.wait_for_line("a line for the log");
        assert!(
            !relay.log().contains("demo:demo"),
            "the password is in the log"
        );
    }),
    exec_failure_is_451({
        let relay = Relay::start(&["--user", "demo:demo", "--exec", "exit 3"]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"x");
        let output = curl_upload(&relay, "demo:demo", "scan.pdf", &file);
        assert!(!output.status.success());
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        assert!(relay.spool_is_empty());
    }),
    exec_past_the_process_timeout_is_killed_and_answered_451({
        let work = tempfile::tempdir().expect("dir");
        let pid_file = work.path().join("pid");
        let command = format!("echo $$ > {}; exec sleep 60", pid_file.display());
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--process-timeout",
            "1",
            "--exec",
            &command,
        ]);
        let file = write(work.path(), "local", b"x");
        let output = curl_upload(&relay, "demo:demo", "slow.bin", &file);
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        let pid = std::fs::read_to_string(&pid_file).expect("the command ran");
        let pid = pid.trim();
        // The child is gone: `kill -0` fails once it is reaped (bounded wait).
        let alive = || {
            Command::new("kill")
                .args(["-0", pid])
                .stderr(Stdio::null())
                .status()
                .expect("kill")
                .success()
        };
        support::wait_until(
            "the command's end after its timeout",
            || !alive(),
            || format!("process {pid} still runs: the command outlived its timeout"),
        );
        assert!(relay.spool_is_empty());
    }),
    exec_non_utf8_output_does_not_kill_the_command({
        // Invalid UTF-8, then more than a pipe holds: if the relay stopped
        // reading, the command would die of SIGPIPE.
        let work = tempfile::tempdir().expect("dir");
        let done = work.path().join("done");
        let command = format!(
            "printf 'caf\\351\\n' >&2 && head -c 300000 /dev/zero | tr '\\0' x >&2 && echo ok > {}",
            done.display()
        );
        let mut relay = Relay::start(&["--user", "demo:demo", "--exec", &command]);
        let file = write(work.path(), "local", b"x");
        let output = curl_upload(&relay, "demo:demo", "a.bin", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(done.exists(), "the command did not finish");
        relay.wait_for_line("caf\u{FFFD}");
    }),
);

support::on_tokio_only!(
    exec_output_is_bounded_in_memory_and_in_the_log({
        let mut relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--exec",
            "head -c 100000000 /dev/zero | tr '\\0' a",
        ]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"x");
        let output = curl_upload(&relay, "demo:demo", "a.bin", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        // 100 MB went through; the relay's memory did not grow with it.
        let peak = relay.peak_rss_kib();
        assert!(peak < 64 * 1024, "the relay's peak RSS was {peak} KiB");
        relay.wait_for_line("not logged");
        let log = relay.log();
        let longest = log.lines().map(str::len).max().unwrap_or(0);
        assert!(longest < 4096 + 256, "a log line of {longest} bytes");
        assert!(log.len() < 256 * 1024, "{} bytes of log", log.len());
    }),
    the_readme_quick_start_logs_the_commands_output({
        // The README's command, at the default log level.
        let mut relay = Relay::start(&["--user", "demo:demo", "--exec", "ls -l \"$1\""]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "somefile", b"hello");
        let output = curl_upload(&relay, "demo:demo", "somefile", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let line = relay.wait_for_line(".ftprelay-spool-");
        assert!(line.contains("-rw------- "), "not ls -l output: {line}");
    }),
    exec_gets_the_exact_bytes_of_a_name({
        let work = tempfile::tempdir().expect("dir");
        let out = work.path().join("name");
        let command = format!("printf %s \"$FTPRELAY_FILE_NAME\" > {}", out.display());
        let relay = Relay::start(&["--user", "demo:demo", "--exec", &command]);
        let script = r#"
import ftplib, io, sys
ftp = ftplib.FTP(encoding="latin-1")
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("demo", "demo")
reply = ftp.storbinary("STOR caf\xe9.jpg", io.BytesIO(b"x"))
assert reply.startswith("226"), reply
ftp.quit()
"#;
        let output = Command::new("python3")
            .args(["-c", script, &relay.port()])
            .output()
            .expect("python3");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(std::fs::read(&out).expect("the name"), b"caf\xe9.jpg");
    }),
    the_exec_log_limit_from_the_file_and_the_flag({
        let work = tempfile::tempdir().expect("dir");
        let config = write(
            work.path(),
            "ftprelay.toml",
            b"exec_log_limit = 640\nexec = \"seq 1 100\"\n[[users]]\nname = \"demo\"\npassword = \"demo\"\n",
        );
        let config = config.display().to_string();
        let file = write(work.path(), "local", b"x");
        // Each line counts at least 64 bytes: 10 lines fit in 640, 16 in 1K.
        for (args, limit, lines) in [
            (vec!["--config", &config], "at most 640 bytes a run", 10),
            (
                vec!["--config", &config, "--exec-log-limit", "1K"],
                "at most 1024 bytes a run",
                16,
            ),
        ] {
            let mut relay = Relay::start(&args);
            let output = curl_upload(&relay, "demo:demo", "a.bin", &file);
            assert!(output.status.success(), "{}", stderr(&output));
            let line = relay.wait_for_line("not logged");
            assert!(line.contains(limit), "{line}");
            let log = relay.log();
            let logged = log
                .lines()
                .filter(|l| l.contains(" INFO ftprelay::exec: "))
                .count();
            assert_eq!(logged, lines, "{log}");
        }
    }),
);
