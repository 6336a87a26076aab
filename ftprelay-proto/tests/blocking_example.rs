//! `examples/blocking.rs` is a working relay: curl uploads to it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The example binary: `cargo test` builds it beside this test's binary; a
/// filtered run may not, so build it then.
fn example_path() -> std::path::PathBuf {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop();
    if path.ends_with("deps") {
        path.pop();
    }
    let example = path.join("examples").join("blocking");
    if !example.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let built = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "ftprelay-proto",
                "--example",
                "blocking",
            ])
            .status()
            .expect("cargo build");
        assert!(built.success(), "building the example failed");
    }
    example
}

#[test]
fn curl_uploads_to_the_blocking_example() {
    let mut relay = Command::new(example_path())
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the example is built by cargo test");
    let mut lines = BufReader::new(relay.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a first line").expect("utf-8");
    let addr = first
        .strip_prefix("listening on ")
        .expect("listening on ADDR");
    let dir = tempfile_dir();
    let file = dir.join("somefile");
    std::fs::write(&file, b"twelve bytes").expect("write");
    for extra in [&[][..], &["--disable-epsv"][..], &["-P", "127.0.0.1"][..]] {
        let output = Command::new("curl")
            .args(["-sS", "--max-time", "20", "-T"])
            .arg(&file)
            .args(extra)
            .arg(format!("ftp://demo:demo@{addr}/somefile"))
            .output()
            .expect("curl");
        assert!(
            output.status.success(),
            "{:?}: {}",
            extra,
            String::from_utf8_lossy(&output.stderr)
        );
        let received = lines.next().expect("a line per upload").expect("utf-8");
        assert!(
            received.starts_with("received somefile (12 bytes)"),
            "{received}"
        );
    }
    let wrong = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-T"])
        .arg(&file)
        .arg(format!("ftp://demo:nope@{addr}/x"))
        .output()
        .expect("curl");
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("530"));
    let _ = relay.kill();
    let _ = relay.wait();
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ftprelay-blocking-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}
