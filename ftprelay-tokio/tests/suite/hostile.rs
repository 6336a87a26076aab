//! The hostile-input suite: what an attacker, a broken client or a hostile
//! network sends, and what the relay answers. For each: the expected reply,
//! no panic, no hang, nothing left in the spool, and the relay still serving
//! the next client.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::{FtpClient, TestRelay, config, payload};

super::register::suite_tests!(
    hostile,
    over_long_lines_get_one_500(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        client.send_raw(&vec![b'A'; 100_000]).await;
        client.send_raw(b"\r\nNOOP\r\n").await;
        assert_eq!(client.reply().await.code, 500);
        assert_eq!(client.reply().await.code, 200);
        still_serving(&relay).await;
    }),
    nul_bytes(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        client.send_raw(b"NO\0OP\r\n").await;
        assert_eq!(client.reply().await.code, 500);
        // No file system can hold a NUL: the name is refused, nothing stored.
        client.pasv().await;
        assert_eq!(client.cmd("STOR a\0b.jpg").await.code, 553);
        assert!(relay.record.seen().is_empty());
        assert!(relay.spool_files().is_empty());
        still_serving(&relay).await;
    }),
    cr_or_lf_injected_into_names(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        // A CR inside a line is refused; a LF ends the line, so what follows it
        // is a command of its own, answered on its own.
        client.send_raw(b"STOR a\rRETR b.jpg\r\n").await;
        assert_eq!(client.reply().await.code, 501);
        client.send_raw(b"STOR x.jpg\nNOOP\r\n").await;
        assert_eq!(
            client.reply().await.code,
            425,
            "STOR x.jpg, with no data channel"
        );
        assert_eq!(client.reply().await.code, 200);
        still_serving(&relay).await;
    }),
    telnet_sequences(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        client
            .send_raw(b"\xFF\xFB\x01\xFF\xFA\x18\x01\xFF\xF0NO\xFF\xF4OP\r\n")
            .await;
        assert_eq!(client.reply().await.code, 200);
        client.send_raw(b"NO\xFF\xFFOP\r\n").await;
        assert_eq!(client.reply().await.code, 500, "IAC IAC is a literal 0xFF");
        still_serving(&relay).await;
    }),
    path_traversal_never_leaves_the_root(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        client.pasv().await;
        for name in [
            "../../etc/passwd",
            "sub/x.jpg",
            "..\\..\\etc\\passwd",
            "sub\\x.jpg",
            "/",
            "..",
        ] {
            assert_eq!(
                client.cmd(&format!("STOR {name}")).await.code,
                553,
                "{name}"
            );
        }
        assert_eq!(
            client.cmd("CWD ../..").await.code,
            250,
            "the root's parent is the root"
        );
        assert_eq!(client.cmd("CWD /etc").await.code, 550);
        assert_eq!(client.upload("/x.jpg", b"root").await.code, 226);
        let seen = relay.record.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].file_name, b"x.jpg");
        still_serving(&relay).await;
    }),
    port_and_eprt_to_third_hosts_and_privileged_ports(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        for line in [
            "PORT 127,0,0,2,156,64",
            "PORT 127,0,0,1,0,21",
            "PORT 127,0,0,1,0,25",
            "EPRT |1|127.0.0.2|40000|",
            "EPRT |1|127.0.0.1|21|",
            "EPRT |1|127.0.0.1|25|",
        ] {
            assert_eq!(client.cmd(line).await.code, 501, "{line}");
        }
        assert_eq!(
            client.cmd("STOR x.jpg").await.code,
            425,
            "nothing was set up"
        );
        still_serving(&relay).await;
    }),
    non_utf8_names(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        let data_addr = client.pasv().await;
        let mut data = TcpStream::connect(data_addr).await.expect("data connect");
        client.send_raw(b"STOR \xC4\xE3\xBA\xC3\xFE.jpg\r\n").await;
        assert_eq!(client.reply().await.code, 150);
        data.write_all(b"gbk").await.expect("write");
        drop(data);
        assert_eq!(client.reply().await.code, 226);
        assert_eq!(
            relay.record.seen()[0].file_name,
            b"\xC4\xE3\xBA\xC3\xFE.jpg"
        );
        still_serving(&relay).await;
    }),
    the_spool_file_system_full_during_an_upload(async {
        // A small tmpfs when the test may mount one (CI runs as root); else a
        // spool with a tiny size limit.
        let tmpfs = Tmpfs::mount("256k");
        let mut config = config();
        let expected = match &tmpfs {
            Some(tmpfs) => {
                config.spool_dir = Some(tmpfs.0.path().to_owned());
                452
            }
            None => {
                config.session.max_file_size = 64 * 1024;
                552
            }
        };
        let relay = TestRelay::with_config(config).await;
        let mut client = relay.logged_in().await;
        let mut data = client.begin_upload("too-big.bin").await;
        // The relay stops reading when the spool is full; the rest may not go.
        let _ = data.write_all(&payload(2 * 1024 * 1024)).await;
        drop(data);
        assert_eq!(client.reply().await.code, expected);
        assert!(relay.record.seen().is_empty());
        still_serving(&relay).await;
        drop(relay);
        drop(tmpfs);
    }),
    a_processor_that_hangs_past_its_timeout(async {
        let mut config = config();
        config.session.process_timeout = Duration::from_millis(500);
        let relay = TestRelay::with_config(config).await;
        let mut client = relay.logged_in().await;
        // `hold*` waits for a release that never comes.
        assert_eq!(client.upload("hold.jpg", b"stuck").await.code, 451);
        assert!(
            relay.spool_files().is_empty(),
            "the cancelled processor's file is left"
        );
        still_serving(&relay).await;
    }),
    a_client_that_stops_reading_replies(async {
        let mut config = config();
        config.session.idle_timeout = Duration::from_secs(1);
        let relay = TestRelay::with_config(config).await;
        let mut flooder = TcpStream::connect(relay.addr).await.expect("connect");
        // Commands without end, replies never read: the relay stops reading
        // (TCP holds the client back) instead of buffering without bound.
        let flood = tokio::spawn(async move {
            let noops = b"NOOP\r\n".repeat(10_000);
            for _ in 0..200 {
                if flooder.write_all(&noops).await.is_err() {
                    return true;
                }
            }
            false
        });
        // Meanwhile everyone else is served.
        still_serving(&relay).await;
        // And the flooder is cut off: after the idle timeout, its last replies
        // get a bounded time to be read, then the connection goes.
        let cut_off = tokio::time::timeout(Duration::from_secs(30), flood)
            .await
            .expect("the relay ends the flooder's connection")
            .expect("flood task");
        assert!(cut_off, "the relay kept reading a client that never reads");
    }),
    a_flood_beyond_max_connections(async {
        let mut config = config();
        config.max_connections = 5;
        let relay = TestRelay::with_config(config).await;
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(relay.client().await);
        }
        for _ in 0..50 {
            let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
            let mut refusal = String::new();
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut refusal))
                .await
                .expect("answered and closed")
                .expect("read");
            assert!(refusal.starts_with("421"), "{refusal}");
        }
        drop(held);
        // The counted connections are released as the sessions end.
        let mut served = false;
        for _ in 0..100 {
            let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
            let mut first = [0u8; 3];
            if stream.read_exact(&mut first).await.is_ok() && &first == b"220" {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(served, "the relay never served again after the flood");
    }),
    a_line_that_trickles_in_is_cut_off(async {
        let mut config = config();
        config.session.line_timeout = Duration::from_millis(500);
        let relay = TestRelay::with_config(config).await;
        let mut client = relay.logged_in().await;
        client.send_raw(b"NOO").await;
        let reply = client.reply().await;
        assert_eq!(reply.code, 421, "{reply:?}");
        assert!(client.is_closed().await);
        still_serving(&relay).await;
    }),
    a_connection_that_never_logs_in_is_closed(async {
        let mut config = config();
        config.session.login_timeout = Duration::from_millis(500);
        let relay = TestRelay::with_config(config).await;
        let mut client = relay.client().await;
        assert_eq!(client.reply().await.code, 421);
        assert!(client.is_closed().await);
    }),
    an_address_that_fails_too_often_is_locked_out(async {
        let mut config = config();
        config.max_failed_logins_per_address = 3;
        config.session.failed_login_delay = Duration::from_millis(10);
        let relay = TestRelay::with_config(config).await;
        // Three failures, in separate sessions (each under the per-session limit).
        for _ in 0..3 {
            let mut client = relay.client().await;
            assert_eq!(client.cmd("USER bob").await.code, 331);
            assert_eq!(client.cmd("PASS wrong").await.code, 530);
        }
        // Now even the right password is answered 421: the lock-out is said.
        let mut client = relay.client().await;
        assert_eq!(client.cmd("USER bob").await.code, 331);
        let reply = client.cmd("PASS secret").await;
        assert_eq!(reply.code, 421, "{reply:?}");
        assert!(client.is_closed().await);
        // Another address is not locked out.
        let mut other = FtpClient::connect_from(relay.addr, "127.0.0.3").await;
        other.login("bob", "secret").await;
    }),
    a_trickled_upload_is_cut_off_by_the_minimum_rate(async {
        // One byte every 200 ms never trips the stall timeout; the minimum
        // average rate ends it. Once within the first buffer, once past it
        // (where the bulk is spliced: its 20 KiB head keeps the average up for
        // 2.5 s).
        let mut config = config();
        config.session.min_upload_rate = crate::proto::MinimumRate {
            bytes_per_second: 8 * 1024,
            grace: Duration::from_secs(1),
        };
        let relay = TestRelay::with_config(config).await;
        let mut client = relay.logged_in().await;
        for head in [0, 20 * 1024] {
            let mut data = client.begin_upload("trickle.jpg").await;
            data.write_all(&payload(head)).await.expect("write");
            // Bounded: 30 s of trickling at most; it ends when the relay
            // closes the connection.
            let trickle = tokio::spawn(async move {
                for _ in 0..150 {
                    if data.write_all(b"x").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            let reply = client.reply().await;
            assert_eq!(reply.code, 426, "{reply:?}");
            assert!(
                reply.text.contains("slower than 8192 bytes per second"),
                "{reply:?}"
            );
            trickle.abort();
            assert!(relay.spool_files().is_empty());
            assert!(relay.record.seen().is_empty());
        }
        still_serving(&relay).await;
    }),
);

/// The relay still serves a new client after whatever the test did.
async fn still_serving(relay: &TestRelay) {
    let mut client = relay.logged_in().await;
    assert_eq!(client.upload("after.jpg", b"still here").await.code, 226);
    assert!(
        relay.spool_files().is_empty(),
        "something was left in the spool"
    );
}

/// A tmpfs of `size` mounted for the test, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}
