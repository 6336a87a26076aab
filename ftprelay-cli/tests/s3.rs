//! `--s3` against a real S3: moto's server (`servers/s3_server.py`) on
//! loopback with IAM authentication on, so that every request's signature
//! is checked; objects are read back with boto3 and compared by checksum.

mod support;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::{BIN, Relay, assert_fails, curl_upload, stderr, upload, write};

/// moto's S3 server, with a bucket `cameras` and a key allowed everything;
/// killed when dropped.
struct S3Server {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
    port: u16,
    key_id: String,
    secret: String,
    /// An empty HOME for the relay: no ~/.aws of this machine's.
    home: tempfile::TempDir,
}

impl S3Server {
    fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/s3_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (with moto and boto3: pip install 'moto[server]' boto3)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = answers
            .recv_timeout(Duration::from_secs(60))
            .expect("the S3 server's READY line");
        let words: Vec<&str> = ready.split(' ').collect();
        assert_eq!(words.first(), Some(&"READY"), "{ready}");
        Self {
            port: words[1].parse().expect("port"),
            key_id: words[2].to_owned(),
            secret: words[3].to_owned(),
            child,
            stdin,
            answers,
            home: tempfile::tempdir().expect("home"),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The relay's environment: the server's key, endpoint and region in
    /// the AWS variables, and no AWS files.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = self.env_without_keys();
        env.push(("AWS_ACCESS_KEY_ID".to_owned(), self.key_id.clone()));
        env.push(("AWS_SECRET_ACCESS_KEY".to_owned(), self.secret.clone()));
        env.push(("AWS_ENDPOINT_URL".to_owned(), self.endpoint()));
        env.push(("AWS_REGION".to_owned(), "us-east-1".to_owned()));
        env
    }

    /// HOME and the AWS files pointed at nothing.
    fn env_without_keys(&self) -> Vec<(String, String)> {
        let home = self.home.path();
        vec![
            ("HOME".to_owned(), home.display().to_string()),
            (
                "AWS_CONFIG_FILE".to_owned(),
                home.join("no-config").display().to_string(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
                home.join("no-credentials").display().to_string(),
            ),
        ]
    }

    /// Sends a command (words joined by tabs); its answer's words.
    fn ask(&mut self, words: &[&str]) -> Vec<String> {
        writeln!(self.stdin, "{}", words.join("\t")).expect("command");
        self.stdin.flush().expect("flush");
        let answer = self
            .answers
            .recv_timeout(Duration::from_secs(120))
            .expect("the S3 server's answer");
        answer.split('\t').map(str::to_owned).collect()
    }

    /// The keys of the objects in `bucket`.
    fn keys(&mut self, bucket: &str) -> Vec<String> {
        let answer = self.ask(&["keys", bucket]);
        assert_eq!(answer[0], "KEYS", "{answer:?}");
        answer[1..].to_vec()
    }

    /// The keys of the multipart uploads in progress in `bucket`.
    fn uploads(&mut self, bucket: &str) -> Vec<String> {
        let answer = self.ask(&["uploads", bucket]);
        assert_eq!(answer[0], "UPLOADS", "{answer:?}");
        answer[1..].to_vec()
    }

    /// The object's size, SHA-256 and content type, as boto3 reads it.
    fn get(&mut self, bucket: &str, key: &str) -> (u64, String, String) {
        let answer = self.ask(&["get", bucket, key]);
        assert_eq!(answer[0], "FOUND", "{key}: {answer:?}");
        (
            answer[1].parse().expect("size"),
            answer[2].clone(),
            answer[3].clone(),
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_relay(args: &[&str], env: &[(String, String)]) -> Relay {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Relay::start_with_env(args, &env)
}

/// `sha256sum FILE`.
fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

/// Asserts that the upload failed with `451`, and that the relay logged
/// `code` as the reason.
#[track_caller]
fn assert_451_logging(output: &Output, relay: &mut Relay, code: &str) {
    assert!(stderr(output).contains("451"), "{}", stderr(output));
    let line = relay.wait_for_line("delivery failed");
    assert!(line.contains(code), "{code} not in {line}");
}

support::on_every_runtime!(
    s3_a_small_file_lands_under_its_templated_key({
        let mut s3 = S3Server::start();
        let relay = start_relay(
            &["--user", "demo:demo", "--s3", "s3://cameras/{user}/{date}/"],
            &s3.env(),
        );
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"\xFF\xD8 a tiny jpeg");
        let output = curl_upload(&relay, "demo:demo", "cam%201.jpg", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let keys = s3.keys("cameras");
        assert_eq!(keys.len(), 1, "{keys:?}");
        // demo/YYYY-MM-DD/cam 1.jpg
        let parts: Vec<&str> = keys[0].split('/').collect();
        assert_eq!(parts.len(), 3, "{keys:?}");
        assert_eq!((parts[0], parts[2]), ("demo", "cam 1.jpg"));
        assert!(
            parts[1].len() == 10 && parts[1].as_bytes()[4] == b'-',
            "{keys:?}"
        );
        let (size, digest, content_type) = s3.get("cameras", &keys[0]);
        assert_eq!(size, 14);
        assert_eq!(digest, sha256(&file));
        assert_eq!(content_type, "image/jpeg");
        assert!(relay.spool_is_empty());
    }),
    s3_settings_from_the_config_file({
        let mut s3 = S3Server::start();
        let work = tempfile::tempdir().expect("dir");
        let keys_file = write(
            work.path(),
            "keys",
            format!(
                "[cams]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                s3.key_id, s3.secret
            )
            .as_bytes(),
        );
        let config = write(
            work.path(),
            "ftprelay.toml",
            format!(
                "[[users]]\nname = \"demo\"\npassword = \"demo\"\n\n\
                 [[destinations]]\ntype = \"s3\"\nurl = \"s3://cameras/from-file/{{stem}}-{{size}}.{{ext}}\"\n\
                 endpoint = \"{}\"\nregion = \"us-east-1\"\nprofile = \"cams\"\n\
                 credentials_file = \"{}\"\npart_size_mib = 5\n",
                s3.endpoint(),
                keys_file.display()
            )
            .as_bytes(),
        );
        let relay = start_relay(
            &["--config", &config.display().to_string()],
            &s3.env_without_keys(),
        );
        let file = write(work.path(), "local", b"%PDF-1.7 scanned");
        let output = curl_upload(&relay, "demo:demo", "scan.pdf", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(s3.keys("cameras"), ["from-file/scan-16.pdf"]);
        let (_, digest, content_type) = s3.get("cameras", "from-file/scan-16.pdf");
        assert_eq!(digest, sha256(&file));
        assert_eq!(content_type, "application/pdf");
    }),
    s3_a_bucket_that_does_not_exist_is_451_and_logged({
        let mut s3 = S3Server::start();
        let mut relay = start_relay(
            &["--user", "demo:demo", "--s3", "s3://no-such-bucket"],
            &s3.env(),
        );
        let output = upload(&relay, "demo:demo", "a.jpg", b"lost?");
        assert_451_logging(&output, &mut relay, "NoSuchBucket");
        assert!(relay.spool_is_empty());
        assert_eq!(s3.keys("cameras"), Vec::<String>::new());
    }),
    s3_wrong_credentials_are_451_and_logged({
        let mut s3 = S3Server::start();
        let work = tempfile::tempdir().expect("dir");
        // 6 MiB: a wrong key refused at CreateMultipartUpload as at PutObject.
        let small = write(work.path(), "small", b"secret plans");
        let large = write(work.path(), "large", &vec![b'x'; 6 << 20]);
        for (variable, value, code) in [
            (
                "AWS_SECRET_ACCESS_KEY",
                "not-the-secret",
                "SignatureDoesNotMatch",
            ),
            (
                "AWS_ACCESS_KEY_ID",
                "AKIANOSUCHKEY0000000",
                "InvalidAccessKeyId",
            ),
        ] {
            let mut env = s3.env();
            env.retain(|(name, _)| name != variable);
            env.push((variable.to_owned(), value.to_owned()));
            let mut relay = start_relay(
                &[
                    "--user",
                    "demo:demo",
                    "--s3",
                    "s3://cameras",
                    "--s3-part-size",
                    "5",
                ],
                &env,
            );
            for file in [&small, &large] {
                let output = curl_upload(&relay, "demo:demo", "a.bin", file);
                assert_451_logging(&output, &mut relay, code);
            }
        }
        assert_eq!(s3.keys("cameras"), Vec::<String>::new());
        assert_eq!(s3.uploads("cameras"), Vec::<String>::new());
    }),
    s3_an_unreachable_endpoint_is_451_and_logged({
        let s3 = S3Server::start();
        // A port that was free a moment ago: nothing listens there.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("address");
        let mut env = s3.env();
        env.retain(|(name, _)| name != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".to_owned(), format!("http://{closed}")));
        let mut relay = start_relay(&["--user", "demo:demo", "--s3", "s3://cameras"], &env);
        let output = upload(&relay, "demo:demo", "a.jpg", b"x");
        assert_451_logging(&output, &mut relay, "cannot reach the S3 endpoint");
    }),
);

support::on_tokio_only!(s3_a_1_gib_file_is_a_multipart_upload_in_flat_memory({
    let mut s3 = S3Server::start();
    let mut relay = start_relay(
        &["--user", "demo:demo", "--s3", "s3://cameras/big/"],
        &s3.env(),
    );
    let work = tempfile::tempdir().expect("dir");
    let file = pattern_file(&work.path().join("big.bin"), 1 << 30);
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "300", "-T"])
        .arg(&file)
        .arg(relay.url("demo:demo", "big.bin"))
        .output()
        .expect("curl");
    assert!(output.status.success(), "{}", stderr(&output));
    let stored = relay.wait_for_line("stored");
    assert!(stored.contains("parts=128"), "{stored}");
    let peak = relay.peak_rss_kib();
    assert!(
        peak < 150 * 1024,
        "the relay's peak RSS was {peak} KiB for a 1 GiB upload"
    );
    assert_eq!(s3.uploads("cameras"), Vec::<String>::new());
    let (size, digest, _) = s3.get("cameras", "big/big.bin");
    assert_eq!(size, 1 << 30);
    assert_eq!(digest, sha256(&file));
}),);

/// `size` bytes that differ from one MiB to the next (a part sent twice or
/// out of order changes the checksum), written fast.
fn pattern_file(path: &Path, size: usize) -> PathBuf {
    let mut block: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let mut out = BufWriter::new(std::fs::File::create(path).expect("create"));
    for _ in 0..size >> 20 {
        block.rotate_left(1);
        out.write_all(&block).expect("write");
    }
    out.flush().expect("flush");
    path.to_owned()
}

/// Runs the binary with `args`, the AWS variables and files pointed at
/// nothing.
fn ftprelay_without_aws(args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("home");
    let mut command = Command::new(BIN);
    for variable in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        command.env_remove(variable);
    }
    command
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ftprelay")
}

#[test]
fn s3_bad_settings_are_one_line_at_start_up() {
    let user = ["--user", "demo:demo", "--listen", "127.0.0.1:0"];
    let with = |more: &[&'static str]| [&user[..], more].concat();
    assert_fails(
        &ftprelay_without_aws(&with(&["--s3", "s3://cameras"])),
        2,
        "no S3 credentials",
    );
    assert_fails(
        &ftprelay_without_aws(&with(&["--s3", "https://cameras/x"])),
        2,
        "s3://BUCKET",
    );
    assert_fails(
        &ftprelay_without_aws(&with(&["--s3", "s3://cameras/{usr}"])),
        2,
        "{usr}",
    );
    assert_fails(
        &ftprelay_without_aws(&with(&["--s3", "s3://cameras", "--s3-profile", "nowhere"])),
        2,
        "\"nowhere\"",
    );
}
