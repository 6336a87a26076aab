//! Faults and limits over real sockets: what goes wrong on real networks,
//! and what the relay answers. A scripted client does what real clients
//! cannot be made to do.

use std::net::SocketAddr;
use std::time::Duration;

use super::support::{FtpClient, TestRelay, config, payload};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

super::register::suite_tests!(
    faults,
    a_processor_failure_is_451_and_a_rejection_550(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        assert_eq!(client.upload("fail.jpg", b"x").await.code, 451);
        assert_eq!(client.upload("reject.exe", b"x").await.code, 550);
        assert_eq!(client.upload("fine.jpg", b"x").await.code, 226);
        assert!(relay.spool_files().is_empty());
    }),
    uploads_of_every_size_around_the_first_read_land_whole(async {
        // The first 16 KiB are read on the runtime, the rest on a data
        // thread: each size around that seam, sent at once and in pieces.
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        let sizes = [0, 1, 16_383, 16_384, 16_385, 32_769, 300_000];
        for (n, size) in sizes.into_iter().enumerate() {
            let bytes = payload(size);
            assert_eq!(client.upload(&format!("whole{n}"), &bytes).await.code, 226);
            let mut data = client.begin_upload(&format!("pieces{n}")).await;
            for piece in bytes.chunks(5_000) {
                data.write_all(piece).await.expect("write");
                data.flush().await.expect("flush");
            }
            data.shutdown().await.expect("shutdown");
            drop(data);
            assert_eq!(client.reply().await.code, 226, "{size} bytes in pieces");
        }
        let seen = relay.record.seen();
        for (n, size) in sizes.into_iter().enumerate() {
            for name in [format!("whole{n}"), format!("pieces{n}")] {
                let upload = seen
                    .iter()
                    .find(|seen| seen.name == name.as_bytes())
                    .unwrap_or_else(|| panic!("{name} was not processed"));
                assert_eq!(upload.bytes, payload(size), "{name}: {size} bytes");
            }
        }
        assert!(relay.spool_files().is_empty());
    }),
    a_processor_panic_is_451_and_the_relay_keeps_serving(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        assert_eq!(client.upload("panic.jpg", b"boom").await.code, 451);
        // The same session, and a new one, still work.
        assert_eq!(client.upload("after.jpg", b"ok").await.code, 226);
        let mut other = relay.logged_in().await;
        assert_eq!(other.upload("other.jpg", b"ok").await.code, 226);
        assert!(relay.spool_files().is_empty());
    }),
    a_data_connection_reset_mid_upload_is_426_and_never_processed(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        let mut data = client.begin_upload("cut.jpg").await;
        data.write_all(&payload(100_000)).await.expect("write");
        // SO_LINGER 0: closing sends RST instead of FIN. (Deprecated because a
        // non-zero linger blocks on drop; zero does not.)
        #[allow(deprecated)]
        data.set_linger(Some(Duration::ZERO)).expect("linger");
        drop(data);
        assert_eq!(client.reply().await.code, 426);
        assert!(relay.record.seen().is_empty(), "a cut upload was processed");
        assert!(relay.spool_files().is_empty());
        assert_eq!(client.upload("next.jpg", b"ok").await.code, 226);
    }),
    the_control_connection_dropped_mid_upload_leaves_nothing(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        let mut data = client.begin_upload("lost.jpg").await;
        data.write_all(&payload(50_000)).await.expect("write");
        relay.wait_spool_file().await;
        drop(client);
        relay.wait_spool_empty().await;
        // The data connection is closed by the relay: the rest cannot be sent.
        let mut refused = false;
        for _ in 0..100 {
            if data.write_all(&payload(65_536)).await.is_err() {
                refused = true;
                break;
            }
        }
        assert!(
            refused,
            "the relay kept receiving for a session that is gone"
        );
        assert!(relay.record.seen().is_empty());
    }),
    abor_mid_upload_is_426_then_226(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        let mut data = client.begin_upload("aborted.jpg").await;
        data.write_all(&payload(10_000)).await.expect("write");
        relay.wait_spool_file().await;
        assert_eq!(client.cmd("ABOR").await.code, 426);
        assert_eq!(client.reply().await.code, 226);
        assert!(relay.spool_files().is_empty());
        assert!(relay.record.seen().is_empty());
        assert_eq!(client.upload("after.jpg", b"ok").await.code, 226);
    }),
    an_upload_over_the_size_limit_is_552(async {
        let mut config = config();
        config.session.max_file_size = 64 * 1024;
        let relay = TestRelay::with_config(config).await;
        let mut client = relay.logged_in().await;
        let mut data = client.begin_upload("big.bin").await;
        // The relay stops reading at the limit; the rest may fail to send.
        let _ = data.write_all(&payload(1024 * 1024)).await;
        assert_eq!(client.reply().await.code, 552);
        assert!(relay.spool_files().is_empty());
        assert!(relay.record.seen().is_empty());
        // Exactly the limit is fine.
        assert_eq!(
            client.upload("fits.bin", &payload(64 * 1024)).await.code,
            226
        );
    }),
    two_hundred_logins_without_upload_leave_nothing(async {
        let relay = TestRelay::start().await;
        for _ in 0..200 {
            let mut client = relay.logged_in().await;
            assert_eq!(client.cmd("QUIT").await.code, 221);
        }
        assert!(relay.spool_files().is_empty());
        assert!(relay.record.seen().is_empty());
    }),
    one_user_in_twenty_sessions_uploading_five_files_each(async {
        let relay = TestRelay::start().await;
        let mut sessions = Vec::new();
        for session in 0..20 {
            let addr = relay.addr;
            sessions.push(tokio::spawn(async move {
                let mut client = FtpClient::connect(addr).await;
                client.login("bob", "secret").await;
                for file in 0..5 {
                    let name = format!("s{session}-f{file}.jpg");
                    let bytes = payload(1000 + session * 100 + file);
                    assert_eq!(client.upload(&name, &bytes).await.code, 226, "{name}");
                }
                client.cmd("QUIT").await
            }));
        }
        for session in sessions {
            assert_eq!(session.await.expect("session task").code, 221);
        }
        let seen = relay.record.seen();
        assert_eq!(seen.len(), 100);
        for upload in seen {
            let name = String::from_utf8(upload.file_name).expect("ascii");
            let (session, file) = name
                .trim_end_matches(".jpg")
                .trim_start_matches('s')
                .split_once("-f")
                .expect("s<session>-f<file>");
            let len = 1000
                + session.parse::<usize>().expect("n") * 100
                + file.parse::<usize>().expect("n");
            assert!(upload.bytes == payload(len), "{name} arrived corrupted");
        }
        assert!(relay.spool_files().is_empty());
    }),
    a_slow_processor_delays_no_other_session(async {
        let relay = TestRelay::start().await;
        let addr = relay.addr;
        let holding = relay.record.holding.notified();
        let slow = tokio::spawn(async move {
            let mut client = FtpClient::connect(addr).await;
            client.login("bob", "secret").await;
            client.upload("hold.jpg", b"slow").await
        });
        // The slow processor is running and will not return until released.
        holding.await;
        let mut other = FtpClient::connect(addr).await;
        other.login("alice", "pw").await;
        assert_eq!(other.upload("quick.jpg", b"fast").await.code, 226);
        assert!(
            !slow.is_finished(),
            "the slow upload was answered before its processor returned"
        );
        relay.record.release.notify_one();
        assert_eq!(slow.await.expect("slow session").code, 226);
    }),
    reading_and_changing_stored_files_is_refused(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        client.pasv().await;
        for line in [
            "LIST",
            "RETR x.jpg",
            "DELE x.jpg",
            "MKD sub",
            "NLST",
            "RNFR x.jpg",
        ] {
            client.expect(line, 550).await;
        }
    }),
    a_passive_connection_from_another_address_is_refused(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        let data_addr = client.pasv().await;
        client.expect("STOR mine.jpg", 150).await;
        // A thief on 127.0.0.2 connects first; the relay closes it at once.
        let thief = TcpSocket::new_v4().expect("socket");
        thief
            .bind("127.0.0.2:0".parse().expect("address"))
            .expect("bind 127.0.0.2");
        let mut thief = thief
            .connect(data_addr)
            .await
            .expect("the listener accepts");
        let mut buf = [0u8; 1];
        let closed = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::AsyncReadExt::read(&mut thief, &mut buf),
        )
        .await
        .expect("the relay closes the thief's connection");
        assert!(matches!(closed, Ok(0) | Err(_)));
        // The client's own connection is still welcome.
        let mut data = TcpStream::connect(data_addr).await.expect("data connect");
        data.write_all(b"mine").await.expect("write");
        drop(data);
        assert_eq!(client.reply().await.code, 226);
        assert_eq!(relay.record.seen()[0].bytes, b"mine");
    }),
    ipv6_on_the_loopback(async {
        let mut config = config();
        config.listen = vec!["[::1]:0".parse().expect("address")];
        let relay = TestRelay::with_config(config).await;
        let mut client = FtpClient::connect(relay.addr).await;
        client.login("bob", "secret").await;
        client.expect("PASV", 425).await;
        let data_addr = client.epsv(relay.addr).await;
        let mut data = TcpStream::connect(data_addr).await.expect("data connect");
        client.expect("STOR v6.jpg", 150).await;
        data.write_all(b"over ipv6").await.expect("write");
        drop(data);
        assert_eq!(client.reply().await.code, 226);
        assert_eq!(relay.record.seen()[0].bytes, b"over ipv6");
        // Active mode over IPv6 too.
        let listener = tokio::net::TcpListener::bind("[::1]:0")
            .await
            .expect("listen");
        let port = listener.local_addr().expect("address").port();
        client.expect(&format!("EPRT |2|::1|{port}|"), 200).await;
        client.send("STOR v6-active.jpg").await;
        let (mut data, _) = listener.accept().await.expect("the relay connects");
        assert_eq!(client.reply().await.code, 150);
        data.write_all(b"active v6").await.expect("write");
        drop(data);
        assert_eq!(client.reply().await.code, 226);
    }),
    shutdown_during_an_upload_still_answers_it(async {
        let mut relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        let mut idle = relay.logged_in().await;
        let mut data = client.begin_upload("last.jpg").await;
        data.write_all(b"first half ").await.expect("write");
        relay.wait_spool_file().await;
        let addr = relay.addr;
        let shut_down = async {
            relay.shut_down().await;
        };
        let finish_upload = async {
            // The idle session is told first.
            assert_eq!(idle.reply().await.code, 421);
            // New connections are no longer accepted.
            let refused = TcpStream::connect(addr).await;
            if let Ok(mut stream) = refused {
                let mut buf = [0u8; 3];
                let read = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
                assert!(
                    matches!(read, Ok(0) | Err(_)),
                    "a new session was started during shutdown"
                );
            }
            data.write_all(b"second half").await.expect("write");
            drop(data);
            let reply = client.reply().await;
            assert_eq!(reply.code, 226, "{reply:?}");
            assert_eq!(client.reply().await.code, 421);
        };
        tokio::join!(shut_down, finish_upload);
        assert_eq!(relay.record.seen()[0].bytes, b"first half second half");
        assert!(relay.spool_files().is_empty());
    }),
    connections_over_the_limits_are_answered_421(async {
        let mut config = config();
        config.max_connections = 3;
        config.max_connections_per_ip = 2;
        let relay = TestRelay::with_config(config).await;
        let _first = relay.client().await;
        let _second = relay.client().await;
        let refused = refused_reply(relay.addr, None).await;
        assert!(refused.starts_with("421"), "{refused}");
        // Another address still fits the total.
        let other = TcpSocket::new_v4().expect("socket");
        other
            .bind("127.0.0.3:0".parse().expect("address"))
            .expect("bind");
        let third = refused_reply(relay.addr, Some(other)).await;
        assert!(third.starts_with("220"), "{third}");
    }),
    an_exhausted_passive_port_range_is_425(async {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
            probe.local_addr().expect("address").port()
        };
        let mut config = config();
        config.passive_ports = crate::proto::PassivePorts::new(port, port);
        let relay = TestRelay::with_config(config).await;
        let mut first = relay.logged_in().await;
        assert_eq!(first.pasv().await.port(), port);
        let mut second = relay.logged_in().await;
        second.expect("PASV", 425).await;
        // Once the first session's listener is used, the port is free again.
        assert_eq!(
            first
                .upload_to(SocketAddr::from(([127, 0, 0, 1], port)), "a.jpg", b"a")
                .await
                .code,
            226
        );
        assert_eq!(second.pasv().await.port(), port);
    }),
    the_advertised_passive_address_is_used(async {
        let mut config = config();
        config.session.passive_address =
            proto::PublicAddress::new(Some("203.0.113.9".parse().expect("address")));
        let relay = TestRelay::with_config(config).await;
        let mut client = relay.logged_in().await;
        let advertised = client.pasv().await;
        assert_eq!(advertised.ip().to_string(), "203.0.113.9");
    }),
    the_spool_sweep_removes_only_the_relays_own_leftovers(async {
        let dir = tempfile::tempdir().expect("dir");
        let leftover = dir.path().join(".ftprelay-spool-crashed");
        let foreign = dir.path().join("keep-me.txt");
        std::fs::write(&leftover, b"left by a crash").expect("write");
        std::fs::write(&foreign, b"not ours").expect("write");
        let mut config = config();
        config.spool_dir = Some(dir.path().to_owned());
        let users = super::support::Users {
            record: Default::default(),
        };
        let relay = super::support::launch(config, users).await.expect("bind");
        assert!(!leftover.exists(), "the leftover spool file is still there");
        assert!(
            foreign.exists(),
            "a file the relay did not create was removed"
        );
        relay.shut_down().await;
    }),
    a_stalled_data_connection_is_426(async {
        let mut config = config();
        config.session.transfer_stall_timeout = Duration::from_millis(200);
        let relay = TestRelay::with_config(config).await;
        let mut client = relay.logged_in().await;
        let mut data = client.begin_upload("slowpoke.jpg").await;
        data.write_all(b"a little, then nothing")
            .await
            .expect("write");
        // The data connection stays open and silent: the relay gives up.
        assert_eq!(client.reply().await.code, 426);
        assert!(relay.spool_files().is_empty());
        assert!(relay.record.seen().is_empty());
        drop(data);
        assert_eq!(client.upload("next.jpg", b"ok").await.code, 226);
    }),
    a_data_connection_stalled_past_its_first_chunk_is_426(async {
        // Past its first 16 KiB an upload is spliced, not read: the stall
        // timeout must hold there too.
        let mut config = config();
        config.session.transfer_stall_timeout = Duration::from_millis(200);
        let relay = TestRelay::with_config(config).await;
        let mut client = relay.logged_in().await;
        let mut data = client.begin_upload("slowpoke.mp4").await;
        data.write_all(&payload(256 * 1024)).await.expect("write");
        assert_eq!(client.reply().await.code, 426);
        assert!(relay.spool_files().is_empty());
        assert!(relay.record.seen().is_empty());
        drop(data);
        assert_eq!(client.upload("next.jpg", b"ok").await.code, 226);
    }),
    a_client_that_pipelines_and_half_closes_gets_every_reply(async {
        // What `printf 'USER…' | nc -N host port` does (yi-hack scripts).
        let relay = TestRelay::start().await;
        let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
        stream
            .write_all(b"USER bob\r\nPASS secret\r\nMKD a\r\nPWD\r\nNOOP")
            .await
            .expect("write");
        stream.shutdown().await.expect("half-close");
        let mut replies = String::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut replies),
        )
        .await
        .expect("the relay closes after answering")
        .expect("read");
        let codes: Vec<&str> = replies.lines().map(|l| &l[..3]).collect();
        assert_eq!(
            codes,
            ["220", "331", "230", "550", "257", "200"],
            "{replies}"
        );
    }),
    abor_with_a_telnet_synch_in_urgent_data(async {
        // lftp and netkit ftp: IAC IP, then IAC DM with DM as TCP urgent data.
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        let mut data = client.begin_upload("aborted.jpg").await;
        data.write_all(&payload(10_000)).await.expect("write");
        relay.wait_spool_file().await;
        client.send_raw(b"\xFF\xF4\xFF").await;
        client.send_urgent(b"\xF2").await;
        assert_eq!(client.cmd("ABOR").await.code, 426);
        assert_eq!(client.reply().await.code, 226);
        assert!(relay.spool_files().is_empty());
        drop(data);
    }),
    a_second_relay_on_the_same_spool_is_refused_and_sweeps_nothing(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        let mut data = client.begin_upload("in-flight.jpg").await;
        data.write_all(b"first part").await.expect("write");
        relay.wait_spool_file().await;
        let mut second = config();
        second.spool_dir = Some(relay.spool.clone());
        let users = super::support::Users {
            record: Default::default(),
        };
        let refused = super::support::launch(second, users)
            .await
            .err()
            .expect("refused");
        assert!(refused.to_string().contains("in use"), "{refused}");
        assert_eq!(
            relay.spool_files().len(),
            1,
            "the live upload's spool file was swept"
        );
        data.write_all(b", second part").await.expect("write");
        drop(data);
        assert_eq!(client.reply().await.code, 226);
        assert_eq!(relay.record.seen()[0].bytes, b"first part, second part");
    }),
    a_relay_that_cannot_listen_leaves_the_spool_alone(async {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let dir = tempfile::tempdir().expect("dir");
        let leftover = dir.path().join(".ftprelay-spool-left");
        std::fs::write(&leftover, b"x").expect("write");
        let mut config = config();
        config.listen = vec![taken.local_addr().expect("address")];
        config.spool_dir = Some(dir.path().to_owned());
        let users = super::support::Users {
            record: Default::default(),
        };
        let error = super::support::launch(config, users)
            .await
            .err()
            .expect("address in use");
        assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
        assert!(
            leftover.exists(),
            "a relay that did not start swept the spool"
        );
    }),
    sessions_left_after_the_shutdown_grace_period_are_dropped(async {
        let mut config = config();
        config.shutdown_grace = Duration::from_millis(300);
        let mut relay = TestRelay::with_config(config).await;
        let mut client = relay.logged_in().await;
        let mut data = client.begin_upload("stuck.jpg").await;
        data.write_all(b"a part, then nothing")
            .await
            .expect("write");
        relay.wait_spool_file().await;
        // The upload never ends: the relay gives up on it after the grace period.
        relay.shut_down().await;
        assert!(
            relay.spool_files().is_empty(),
            "the stuck upload's spool file is left"
        );
        assert!(
            client.is_closed().await,
            "the stuck session's connection is left open"
        );
        assert!(relay.record.seen().is_empty());
    }),
);

/// Connects (from `socket` if given) and returns the first line the relay
/// sends.
async fn refused_reply(addr: SocketAddr, socket: Option<TcpSocket>) -> String {
    let stream = match socket {
        Some(socket) => socket.connect(addr).await,
        None => TcpStream::connect(addr).await,
    }
    .expect("connect");
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line)
        .await
        .expect("read");
    line
}
