//! Fifty FTPS uploads in one session, by each kind of client, with TLS 1.3
//! and with TLS 1.2: every byte of every file must reach the processor and
//! no upload may end in `426`. TLS 1.3 sends session tickets after its
//! handshake; a relay that sent them on data connections met clients that
//! had closed already, and the reset cut off the end of uploads at random.

use std::time::Duration;

use tokio::process::Command;

use super::support::{TestRelay, config, payload};

super::register::suite_tests!(
    tls_uploads,
    curl_fifty_uploads_tls13(async {
        curl(Version::Tls13).await;
    }),
    curl_fifty_uploads_tls12(async {
        curl(Version::Tls12).await;
    }),
    lftp_fifty_uploads_tls13(async {
        lftp(Version::Tls13).await;
    }),
    lftp_fifty_uploads_tls12(async {
        lftp(Version::Tls12).await;
    }),
    python_ftplib_fifty_uploads_tls13(async {
        python(Version::Tls13, "ftplib").await;
    }),
    python_ftplib_fifty_uploads_tls12(async {
        python(Version::Tls12, "ftplib").await;
    }),
    a_client_that_closes_at_once_fifty_uploads_tls13(async {
        python(Version::Tls13, "close").await;
    }),
    a_client_that_closes_at_once_fifty_uploads_tls12(async {
        python(Version::Tls12, "close").await;
    }),
);

/// Uploads per client and TLS version: enough that a race which lost one
/// upload in two or three shows every time.
const UPLOADS: usize = 50;

#[derive(Clone, Copy)]
enum Version {
    Tls12,
    Tls13,
}

/// The files of one run: `f00.bin` … `f49.bin`, each of its own size and
/// content, in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
    contents: Vec<(String, Vec<u8>)>,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let contents = (0..UPLOADS)
            .map(|i| {
                let name = format!("f{i:02}.bin");
                let mut bytes = payload(3_000 + i * 997);
                bytes[0] = i as u8;
                std::fs::write(dir.path().join(&name), &bytes).expect("write");
                (name, bytes)
            })
            .collect();
        Self { dir, contents }
    }
}

async fn run(command: &mut Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the client finishes")
        .expect("the client runs")
}

/// The client succeeded, never saw a `426`, and the processor received
/// every file whole, once.
fn assert_all_arrived(relay: &TestRelay, files: &Files, output: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "client failed: {stderr}\n{stdout}");
    assert!(
        !stdout.contains("426") && !stderr.contains("426"),
        "an upload got 426: {stderr}\n{stdout}"
    );
    let mut seen = relay.record.seen();
    seen.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    let names: Vec<String> = seen
        .iter()
        .map(|s| String::from_utf8_lossy(&s.file_name).into_owned())
        .collect();
    assert_eq!(seen.len(), UPLOADS, "processed: {names:?}");
    for ((name, bytes), seen) in files.contents.iter().zip(&seen) {
        assert_eq!(seen.file_name, name.as_bytes());
        assert!(seen.bytes == *bytes, "{name}: {} bytes", seen.bytes.len());
    }
    assert!(relay.spool_files().is_empty());
}

async fn curl(version: Version) {
    let relay = TestRelay::with_tls(config()).await;
    let cert = relay.tls.as_ref().expect("tls").cert.clone();
    let files = Files::new();
    let mut command = Command::new("curl");
    command
        .args([
            "-sS",
            "--max-time",
            "100",
            "--ssl-reqd",
            "--user",
            "bob:secret",
        ])
        .arg("--cacert")
        .arg(&cert);
    command.args(match version {
        Version::Tls12 => ["--tlsv1.2", "--tls-max", "1.2"],
        Version::Tls13 => ["--tlsv1.3", "--tls-max", "1.3"],
    });
    for (name, _) in &files.contents {
        command
            .arg("-T")
            .arg(files.dir.path().join(name))
            .arg(format!("ftp://127.0.0.1:{}/{name}", relay.port()));
    }
    let output = run(&mut command).await;
    assert_all_arrived(&relay, &files, &output);
}

async fn lftp(version: Version) {
    let relay = TestRelay::with_tls(config()).await;
    let cert = relay.tls.as_ref().expect("tls").cert.clone();
    let files = Files::new();
    let priority = match version {
        Version::Tls12 => "NORMAL:-VERS-ALL:+VERS-TLS1.2",
        Version::Tls13 => "NORMAL:-VERS-ALL:+VERS-TLS1.3",
    };
    // No retries: a retry would hide a failed upload.
    let commands = format!(
        "set net:max-retries 1; set ftp:ssl-force true; set ftp:ssl-protect-data true; \
         set ssl:priority {priority}; set ssl:ca-file {}; set ssl:check-hostname no; \
         lcd {}; mput *.bin; quit",
        cert.display(),
        files.dir.path().display()
    );
    let output = run(Command::new("lftp").args([
        "-u",
        "bob,secret",
        "-p",
        &relay.port().to_string(),
        "-e",
        &commands,
        "127.0.0.1",
    ]))
    .await;
    assert_all_arrived(&relay, &files, &output);
}

/// Python: `ftplib` (which answers TLS's close_notify) or a client that
/// sends each file and closes the data connection at once, reading
/// nothing (as embedded clients do).
const PYTHON: &str = r#"
import ftplib, os, ssl, sys
port, cert, folder, version, style = sys.argv[1:6]
context = ssl.create_default_context(cafile=cert)
v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
context.minimum_version = v
context.maximum_version = v
ftp = ftplib.FTP_TLS(context=context)
ftp.connect("127.0.0.1", int(port), timeout=30)
ftp.login("bob", "secret")
ftp.prot_p()
for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as f:
        if style == "ftplib":
            reply = ftp.storbinary("STOR " + name, f)
        else:
            data = ftp.transfercmd("STOR " + name)
            data.sendall(f.read())
            data.close()
            reply = ftp.voidresp()
    print(reply, flush=True)
    assert reply.startswith("226"), reply
ftp.quit()
"#;

async fn python(version: Version, style: &str) {
    let relay = TestRelay::with_tls(config()).await;
    let cert = relay.tls.as_ref().expect("tls").cert.clone();
    let files = Files::new();
    let version = match version {
        Version::Tls12 => "1.2",
        Version::Tls13 => "1.3",
    };
    let output = run(Command::new("python3")
        .args(["-c", PYTHON, &relay.port().to_string()])
        .arg(&cert)
        .arg(files.dir.path())
        .args([version, style]))
    .await;
    assert_all_arrived(&relay, &files, &output);
}
