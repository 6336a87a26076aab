//! Signals: SIGTERM lets the upload in flight finish, and ends an idle
//! relay with status 0.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use support::{Relay, signal};

support::on_every_runtime!(
    sigterm_during_an_upload_lets_it_finish({
        let target = tempfile::tempdir().expect("dir");
        let mut relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--dir",
            &target.path().display().to_string(),
        ]);
        // The client sends half, says so, waits for a line, sends the rest.
        let script = r#"
import ftplib, sys
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("demo", "demo")
conn = ftp.transfercmd("STOR last.bin")
conn.sendall(b"first half, ")
print("HALF", flush=True)
sys.stdin.readline()
conn.sendall(b"second half")
conn.close()
print(ftp.voidresp(), flush=True)
"#;
        let mut client = Command::new("python3")
            .args(["-c", script, &relay.port()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut out = BufReader::new(client.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("HALF");
        assert_eq!(line.trim(), "HALF");
        signal(&relay.child, "TERM");
        relay.wait_for_line("signal received");
        client
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("go");
        line.clear();
        out.read_line(&mut line).expect("the final reply");
        assert!(
            line.starts_with("226"),
            "the upload was not answered 226: {line:?}"
        );
        let status = relay.wait();
        assert!(
            status.success(),
            "exit status {status}; log:\n{}",
            relay.log()
        );
        assert_eq!(
            std::fs::read(target.path().join("last.bin")).expect("stored"),
            b"first half, second half"
        );
        let _ = client.wait();
    }),
    sigterm_when_idle_exits_0({
        let mut relay = Relay::start(&["--user", "demo:demo", "--discard"]);
        assert!(relay.terminate().success());
    }),
);
