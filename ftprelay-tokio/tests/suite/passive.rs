//! A passive port range shared by many sessions: eight ports serve hundreds
//! of sessions, each data connection going to the session waiting on that
//! port for its address.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::support::{FtpClient, TestRelay, config, free_port_range};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Barrier, Semaphore};

/// Sessions, the addresses they come from, and uploads by each session.
const SESSIONS: usize = 200;
const ADDRESSES: usize = 20;
const UPLOADS: usize = 3;

/// A relay whose passive ports are `ports`.
async fn relay_with_ports(ports: &std::ops::RangeInclusive<u16>) -> TestRelay {
    let mut config = config();
    config.passive_ports = crate::proto::PassivePorts::new(*ports.start(), *ports.end());
    TestRelay::with_config(config).await
}

/// What the relay's processor received, by file name.
fn bytes_by_name(relay: &TestRelay) -> HashMap<Vec<u8>, Vec<u8>> {
    relay
        .record
        .seen()
        .into_iter()
        .map(|seen| (seen.name, seen.bytes))
        .collect()
}

/// What session `session` uploads as its `upload`th file.
fn contents(session: usize, upload: usize) -> Vec<u8> {
    format!("session {session}, upload {upload}\n")
        .repeat(1 + (session * 7 + upload) % 50)
        .into_bytes()
}

super::register::suite_tests!(
    passive,
    two_hundred_sessions_from_twenty_addresses_share_eight_passive_ports(async {
        let ports = free_port_range(8);
        let relay = relay_with_ports(&ports).await;
        // Every session is logged in before any uploads: 200 at once.
        let logged_in = Arc::new(Barrier::new(SESSIONS));
        // Eight waits at a time per address: as many as there are ports.
        let turns: Vec<_> = (0..ADDRESSES)
            .map(|_| Arc::new(Semaphore::new(8)))
            .collect();
        // The ports each address's sessions wait on now (from the 227 to
        // the data connection): never the same one twice.
        let waiting = Arc::new(Mutex::new(HashSet::<(IpAddr, u16)>::new()));
        let mut sessions = tokio::task::JoinSet::new();
        for session in 0..SESSIONS {
            let from = format!("127.0.0.{}", 2 + session % ADDRESSES);
            let turn = turns[session % ADDRESSES].clone();
            let (logged_in, waiting, ports) = (logged_in.clone(), waiting.clone(), ports.clone());
            let addr = relay.addr;
            sessions.spawn(async move {
                let mut client = FtpClient::connect_from(addr, &from).await;
                client.login("bob", "secret").await;
                logged_in.wait().await;
                for upload in 0..UPLOADS {
                    let _turn = turn.acquire().await.expect("semaphore");
                    let data_addr = client.pasv().await;
                    assert!(ports.contains(&data_addr.port()), "{data_addr}");
                    let key = (client.local.ip(), data_addr.port());
                    assert!(
                        waiting.lock().expect("lock").insert(key),
                        "two sessions from {} wait on port {} at once",
                        key.0,
                        key.1
                    );
                    // Other sessions take their turns while this one waits.
                    // The wait ends before connecting: once connected, the
                    // relay may give the port to this address again before
                    // this task runs on.
                    tokio::task::yield_now().await;
                    waiting.lock().expect("lock").remove(&key);
                    let mut data = client.connect_data(data_addr).await;
                    client
                        .expect(&format!("STOR s{session}-{upload}"), 150)
                        .await;
                    data.write_all(&contents(session, upload))
                        .await
                        .expect("data");
                    data.shutdown().await.expect("data shutdown");
                    drop(data);
                    let reply = client.reply().await;
                    assert_eq!(reply.code, 226, "session {session}: {reply:?}");
                }
                client.expect("QUIT", 221).await;
            });
        }
        tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(ended) = sessions.join_next().await {
                ended.expect("a session");
            }
        })
        .await
        .expect("every session ends within 120 s");
        let seen = bytes_by_name(&relay);
        assert_eq!(seen.len(), SESSIONS * UPLOADS);
        for session in 0..SESSIONS {
            for upload in 0..UPLOADS {
                let name = format!("s{session}-{upload}").into_bytes();
                assert_eq!(
                    seen.get(&name),
                    Some(&contents(session, upload)),
                    "s{session}-{upload}"
                );
            }
        }
        assert!(relay.spool_files().is_empty());
    }),
    passive_is_425_only_when_the_address_waits_on_every_port(async {
        let ports = free_port_range(3);
        let relay = relay_with_ports(&ports).await;
        let mut from_two = Vec::new();
        let mut taken = HashSet::new();
        for _ in 0..3 {
            let mut client = FtpClient::connect_from(relay.addr, "127.0.0.2").await;
            client.login("bob", "secret").await;
            let data_addr = client.pasv().await;
            assert!(ports.contains(&data_addr.port()), "{data_addr}");
            assert!(taken.insert(data_addr.port()), "port {data_addr} twice");
            from_two.push((client, data_addr));
        }
        // A fourth session from the same address finds no port left...
        let mut fourth = FtpClient::connect_from(relay.addr, "127.0.0.2").await;
        fourth.login("bob", "secret").await;
        fourth.expect("PASV", 425).await;
        // ...while another address is given one of the same ports.
        let mut other = FtpClient::connect_from(relay.addr, "127.0.0.3").await;
        other.login("bob", "secret").await;
        let other_addr = other.pasv().await;
        assert!(taken.contains(&other_addr.port()), "{other_addr}");
        // A connection from an address that waits on no port there is
        // closed: it reaches no session, and no session loses its wait.
        let (mut first, first_addr) = from_two.remove(0);
        let mut stranger = FtpClient::connect_from(relay.addr, "127.0.0.4").await;
        stranger.login("bob", "secret").await;
        let mut stolen = stranger.connect_data(first_addr).await;
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), stolen.read_to_end(&mut rest))
            .await
            .expect("the stranger's connection is closed within 20 s");
        assert!(rest.is_empty(), "{read:?}");
        // Each waiting session gets its own client's connection.
        let reply = other
            .upload_from_here(other_addr, "other.bin", b"from three")
            .await;
        assert_eq!(reply.code, 226, "{reply:?}");
        let reply = first
            .upload_from_here(first_addr, "first.bin", b"from two")
            .await;
        assert_eq!(reply.code, 226, "{reply:?}");
        // Its port is free for the address again.
        let again = fourth.pasv().await;
        assert_eq!(again.port(), first_addr.port());
        let seen = bytes_by_name(&relay);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[&b"other.bin"[..]], b"from three");
        assert_eq!(seen[&b"first.bin"[..]], b"from two");
    }),
    a_silent_proxy_does_not_hold_a_shared_port_from_other_clients(async {
        let ports = free_port_range(1);
        let mut config = config();
        config.passive_ports = crate::proto::PassivePorts::new(*ports.start(), *ports.end());
        config.proxy_from = vec!["127.0.0.9/32".parse().expect("block")];
        let relay = TestRelay::with_config(config).await;
        let mut client = FtpClient::connect_from(relay.addr, "127.0.0.2").await;
        client.login("bob", "secret").await;
        let data_addr = client.pasv().await;
        // More connections from the proxy's address than the relay reads
        // headers of at once, none sending one (the relay gives each 10 s).
        let mut silent = Vec::new();
        for _ in 0..20 {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket
                .bind("127.0.0.9:0".parse().expect("address"))
                .expect("bind");
            silent.push(socket.connect(data_addr).await.expect("connect"));
        }
        // A client of the same port, direct, is not kept waiting for them.
        let upload = client.upload_from_here(data_addr, "direct.bin", b"not proxied");
        let reply = tokio::time::timeout(Duration::from_secs(5), upload)
            .await
            .expect("the direct upload ends within 5 s");
        assert_eq!(reply.code, 226, "{reply:?}");
        assert_eq!(bytes_by_name(&relay)[&b"direct.bin"[..]], b"not proxied");
        drop(silent);
    }),
    without_the_data_peer_check_a_shared_port_is_one_sessions_from_any_address(async {
        // Behind a NAT with several addresses the data connection comes from
        // another address than the control: it cannot be matched by
        // address, so each waiting session has its port to itself.
        let ports = free_port_range(2);
        let mut config = config();
        config.passive_ports = crate::proto::PassivePorts::new(*ports.start(), *ports.end());
        config.session.data_peer_must_match = false;
        let relay = TestRelay::with_config(config).await;
        let mut first = FtpClient::connect_from(relay.addr, "127.0.0.2").await;
        first.login("bob", "secret").await;
        let first_addr = first.pasv().await;
        let mut second = FtpClient::connect_from(relay.addr, "127.0.0.3").await;
        second.login("bob", "secret").await;
        let second_addr = second.pasv().await;
        assert_ne!(first_addr.port(), second_addr.port());
        let mut third = FtpClient::connect_from(relay.addr, "127.0.0.4").await;
        third.login("bob", "secret").await;
        third.expect("PASV", 425).await;
        // The data from yet another address reaches the session waiting.
        let nat = FtpClient::connect_from(relay.addr, "127.0.0.5").await;
        let mut data = nat.connect_data(first_addr).await;
        first.expect("STOR natted.bin", 150).await;
        data.write_all(b"through the NAT").await.expect("data");
        data.shutdown().await.expect("data shutdown");
        drop(data);
        assert_eq!(first.reply().await.code, 226);
        let seen = bytes_by_name(&relay);
        assert_eq!(seen[&b"natted.bin"[..]], b"through the NAT");
        // Its port is free again, for any address.
        assert_eq!(third.pasv().await.port(), first_addr.port());
    }),
);
