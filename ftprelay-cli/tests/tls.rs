//! FTPS from the command line: explicit and implicit TLS, a certificate
//! reloaded on SIGHUP, TLS required, session reuse, bad TLS input.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{Relay, assert_fails, curl_upload, ftprelay, signal, stderr, write};

support::on_every_runtime!(
    ftps_explicit_and_implicit_and_a_certificate_reloaded_on_sighup({
        let work = tempfile::tempdir().expect("dir");
        let (cert, key) = (work.path().join("cert.pem"), work.path().join("key.pem"));
        write_certificate(&cert, &key);
        let first_cert = work.path().join("first.pem");
        std::fs::copy(&cert, &first_cert).expect("copy");
        let mut relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--discard",
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
            "--tls-implicit-listen",
            "127.0.0.1:0",
        ]);
        let implicit = relay.wait_for_line("ftprelay listening");
        let implicit_port = implicit
            .split("listen=127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the implicit listener's line");
        let file = write(work.path(), "local", b"secret scan");
        let explicit_url = format!("ftp://demo:demo@127.0.0.1:{}/a.bin", relay.addr.port());
        let output = curl_ftps(&explicit_url, &first_cert, &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let implicit_url = format!("ftps://demo:demo@127.0.0.1:{implicit_port}/b.bin");
        let output = curl_ftps(&implicit_url, &first_cert, &file);
        assert!(output.status.success(), "{}", stderr(&output));
        // A new certificate, then SIGHUP: new connections present it.
        write_certificate(&cert, &key);
        signal(&relay.child, "HUP");
        relay.wait_for_line("certificate and key reloaded");
        let output = curl_ftps(&explicit_url, &cert, &file);
        assert!(
            output.status.success(),
            "the new certificate: {}",
            stderr(&output)
        );
        let output = curl_ftps(&explicit_url, &first_cert, &file);
        assert!(
            !output.status.success(),
            "the old certificate is still served"
        );
        assert!(relay.spool_is_empty());
    }),
    tls_required_refuses_plain_clients({
        let work = tempfile::tempdir().expect("dir");
        let (cert, key) = (work.path().join("cert.pem"), work.path().join("key.pem"));
        write_certificate(&cert, &key);
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--discard",
            "--tls-required",
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ]);
        let file = write(work.path(), "local", b"x");
        let plain = curl_upload(&relay, "demo:demo", "a.bin", &file);
        assert!(stderr(&plain).contains("530"), "{}", stderr(&plain));
        let url = format!("ftp://demo:demo@127.0.0.1:{}/a.bin", relay.addr.port());
        let output = curl_ftps(&url, &cert, &file);
        assert!(output.status.success(), "{}", stderr(&output));
    }),
    tls_session_reuse_required_by_flag_or_config_file({
        let work = tempfile::tempdir().expect("dir");
        let (cert, key) = (work.path().join("cert.pem"), work.path().join("key.pem"));
        write_certificate(&cert, &key);
        let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
        let file = write(work.path(), "local", b"x");
        // Off by default: a client that does not resume uploads.
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--discard",
            "--tls-cert",
            &cert_arg,
            "--tls-key",
            &key_arg,
        ]);
        let reply = ftplib_tls_upload(relay.addr.port(), &cert);
        assert!(reply.starts_with("226"), "{reply}");
        drop(relay);
        let config = write(
            work.path(),
            "ftprelay.toml",
            b"tls_require_session_reuse = true\n",
        );
        let config = config.display().to_string();
        let flag = ["--tls-require-session-reuse"];
        let from_file = ["--config", config.as_str()];
        for switch in [&flag[..], &from_file[..]] {
            let mut args = vec![
                "--user",
                "demo:demo",
                "--discard",
                "--tls-cert",
                &cert_arg,
                "--tls-key",
                &key_arg,
            ];
            args.extend_from_slice(switch);
            let relay = Relay::start(&args);
            let reply = ftplib_tls_upload(relay.addr.port(), &cert);
            assert!(reply.starts_with("522"), "{switch:?}: {reply}");
            assert!(relay.spool_is_empty());
            // curl resumes the session on its data connections.
            let url = format!("ftp://demo:demo@127.0.0.1:{}/a.bin", relay.addr.port());
            let output = curl_ftps(&url, &cert, &file);
            assert!(output.status.success(), "{switch:?}: {}", stderr(&output));
        }
    }),
);

#[test]
fn bad_tls_input_is_one_line_and_status_2() {
    let work = tempfile::tempdir().expect("dir");
    let junk = write(work.path(), "junk.pem", b"not a certificate");
    let junk = junk.display().to_string();
    assert_fails(
        &ftprelay(
            &[
                "--user",
                "a:b",
                "--discard",
                "--tls-cert",
                &junk,
                "--tls-key",
                &junk,
            ],
            "",
        ),
        2,
        "junk.pem",
    );
    assert_fails(
        &ftprelay(&["--user", "a:b", "--discard", "--tls-cert", &junk], ""),
        2,
        "--tls-key",
    );
    assert_fails(
        &ftprelay(&["--user", "a:b", "--discard", "--tls-required"], ""),
        2,
        "--tls-cert",
    );
}

/// A self-signed certificate for 127.0.0.1 written to `cert` and `key`.
fn write_certificate(cert: &Path, key: &Path) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let generated = rcgen::generate_simple_self_signed(names).expect("a certificate");
    std::fs::write(cert, generated.cert.pem()).expect("write");
    std::fs::write(key, generated.key_pair.serialize_pem()).expect("write");
}

fn curl_ftps(url: &str, cacert: &Path, file: &Path) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "--ssl-reqd", "--cacert"])
        .arg(cacert)
        .arg("-T")
        .arg(file)
        .arg(url)
        .output()
        .expect("curl")
}

/// One FTPS upload by python's ftplib, whose data connections never resume
/// the control connection's TLS session: the STOR reply it got.
fn ftplib_tls_upload(port: u16, cacert: &Path) -> String {
    let script = r#"
import ftplib, io, ssl, sys
ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=sys.argv[2]), timeout=15)
ftp.connect("127.0.0.1", int(sys.argv[1]))
ftp.login("demo", "demo")
ftp.prot_p()
try:
    data = ftp.transfercmd("STOR py.bin")
    try:
        # A refused connection may be closed before all is sent.
        data.sendall(b"python bytes")
        data.unwrap()
    except OSError:
        pass
    data.close()
    print(ftp.voidresp())
except ftplib.all_errors as refused:
    print(refused)
"#;
    let output = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .arg(cacert)
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}
