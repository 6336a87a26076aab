//! The PROXY protocol: two relays behind a real HAProxy (send-proxy and
//! send-proxy-v2, control and passive ports), clients from several 127.x
//! addresses; headers from peers that may not send one, malformed headers,
//! data connections through a proxy, and bad settings.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{KillOnDrop, Relay, assert_fails, ftprelay, wait_until, write};

/// The address HAProxy's frontends listen on; the relays listen on
/// 127.0.0.1 (and so do their passive listeners), the clients come from
/// 127.0.0.2 and up.
const HAPROXY_IP: &str = "127.0.0.20";
/// Passive ports per relay.
const PASSIVE_PORTS: u16 = 4;

/// A TCP connection from `source` (a loopback address) to `target`, its
/// reads bounded.
fn connect_from(source: &str, target: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let source: SocketAddr = format!("{source}:0").parse().expect("source");
    socket
        .bind(&source.into())
        .expect("bind the source address");
    socket
        .connect_timeout(&target.into(), Duration::from_secs(10))
        .expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    stream
}

/// A control connection, read reply by reply.
struct Control {
    reader: BufReader<TcpStream>,
}

impl Control {
    fn new(stream: TcpStream) -> Self {
        Self {
            reader: BufReader::new(stream),
        }
    }

    /// The next reply (the last line of a multi-line one); empty at the end
    /// of the connection.
    fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read a reply");
            if line.is_empty() || line.as_bytes().get(3) == Some(&b' ') {
                return line;
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// Sends `line` and returns its reply.
    fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Everything up to the end of the connection. A close with bytes of
    /// ours unread is a reset: the end too.
    fn rest(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("reading to the end: {e}"),
        }
        rest
    }
}

/// `len` consecutive ports free now on every address of `ips`, tried by
/// binding them all. They are taken below the kernel's ephemeral range,
/// where no outgoing connection takes a port (on a busy machine, runs of
/// free ports inside it are rare), from a start the system chose.
fn free_ports(ips: &[&str], len: u16) -> u16 {
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .filter(|&low| low > 2048 + len)
        .unwrap_or(32_768);
    let span = ephemeral_low - 1024 - len;
    for _ in 0..100 {
        let chosen = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let first = 1024 + chosen % span;
        let held: Result<Vec<TcpListener>, _> = ips
            .iter()
            .flat_map(|ip| (first..first + len).map(move |port| TcpListener::bind((*ip, port))))
            .collect();
        if held.is_ok() {
            return first;
        }
    }
    panic!("no {len} consecutive free ports in 100 tries");
}

/// HAProxy in front of two relays, each with its passive ports proxied.
struct Proxied {
    relays: [Relay; 2],
    out: tempfile::TempDir,
    haproxy: KillOnDrop,
    /// Round robin over both relays (a: send-proxy, b: send-proxy-v2).
    both: SocketAddr,
    /// Relay a only.
    only_a: SocketAddr,
    _config: tempfile::TempDir,
}

impl Proxied {
    /// Starts it all; ports that were free a moment ago may be taken when
    /// HAProxy binds them, so a failed start is tried again (five times).
    fn start(relay_args: &[&str]) -> Self {
        let mut last_log = String::new();
        for _ in 0..5 {
            match Self::try_start(relay_args) {
                Ok(proxied) => return proxied,
                Err(log) => last_log = log,
            }
        }
        panic!("HAProxy did not start; its last log:\n{last_log}");
    }

    fn try_start(relay_args: &[&str]) -> Result<Self, String> {
        let out = tempfile::tempdir().expect("out");
        let config_dir = tempfile::tempdir().expect("config");
        let passive = [
            free_ports(&["127.0.0.1", HAPROXY_IP], PASSIVE_PORTS),
            free_ports(&["127.0.0.1", HAPROXY_IP], PASSIVE_PORTS),
        ];
        if passive[0].abs_diff(passive[1]) < PASSIVE_PORTS {
            return Err("overlapping passive ranges".to_owned());
        }
        let start_relay = |first: u16| {
            let range = format!("{first}-{}", first + PASSIVE_PORTS - 1);
            let mut args = vec![
                "--user",
                "demo:demo",
                "--dir",
                out.path().to_str().expect("utf-8"),
                "--proxy-protocol",
                "--proxy-from",
                "127.0.0.1",
                "--passive-ports",
                &range,
            ];
            args.extend_from_slice(relay_args);
            Relay::start(&args)
        };
        let relays = [start_relay(passive[0]), start_relay(passive[1])];
        let [ready, both, only_a] = [(); 3].map(|()| free_ports(&[HAPROXY_IP], 1));
        if ready == both || both == only_a || ready == only_a {
            return Err("the same port chosen twice".to_owned());
        }
        let last = |first: u16| first + PASSIVE_PORTS - 1;
        let (a, b) = (relays[0].addr.port(), relays[1].addr.port());
        let (pa, pb) = (passive[0], passive[1]);
        let ip = HAPROXY_IP;
        let config = format!(
            "global
  maxconn 256
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
# Accepts and closes: once it answers, every frontend is bound.
frontend ready
  bind {ip}:{ready}
  tcp-request connection reject
frontend both
  bind {ip}:{both}
  default_backend both
backend both
  balance roundrobin
  server a 127.0.0.1:{a} send-proxy
  server b 127.0.0.1:{b} send-proxy-v2
frontend only_a
  bind {ip}:{only_a}
  default_backend only_a
backend only_a
  server a 127.0.0.1:{a} send-proxy
# The passive ports: a server without a port gets the one connected to.
frontend passive_a
  bind {ip}:{pa}-{}
  default_backend passive_a
backend passive_a
  server a 127.0.0.1 send-proxy
frontend passive_b
  bind {ip}:{pb}-{}
  default_backend passive_b
backend passive_b
  server b 127.0.0.1 send-proxy-v2
",
            last(pa),
            last(pb)
        );
        let config_path = write(config_dir.path(), "haproxy.cfg", config.as_bytes());
        let log_path = config_dir.path().join("haproxy.log");
        let log = std::fs::File::create(&log_path).expect("log");
        // Debian puts it in /usr/sbin, which a user's PATH may lack.
        let haproxy = ["/usr/sbin/haproxy", "haproxy"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .unwrap_or("haproxy");
        let child = Command::new(haproxy)
            .arg("-f")
            .arg(&config_path)
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start haproxy (Debian package haproxy)");
        let mut haproxy = KillOnDrop(child);
        let ready: SocketAddr = format!("{ip}:{ready}").parse().expect("address");
        for _ in 0..500 {
            if let Some(status) = haproxy.0.try_wait().expect("wait") {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("exited with {status}:\n{log}"));
            }
            if TcpStream::connect_timeout(&ready, Duration::from_secs(1)).is_ok() {
                return Ok(Self {
                    relays,
                    out,
                    haproxy,
                    both: format!("{ip}:{both}").parse().expect("address"),
                    only_a: format!("{ip}:{only_a}").parse().expect("address"),
                    _config: config_dir,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("not listening within 5 s".to_owned())
    }

    fn logs(&self) -> String {
        format!(
            "relay a:\n{}\nrelay b:\n{}",
            self.relays[0].log(),
            self.relays[1].log()
        )
    }
}

/// The log line of the upload of `name`, in `log`.
fn upload_line<'a>(log: &'a str, name: &str) -> Option<&'a str> {
    log.lines()
        .find(|line| line.contains(" upload ") && line.contains(&format!("name={name} ")))
}

support::on_every_runtime!(
    haproxy_in_front_of_two_relays({
        let proxied = Proxied::start(&["--max-connections-per-ip", "1"]);
        let _haproxy = &proxied.haproxy;
        let work = tempfile::tempdir().expect("work");
        // Four clients at once, each from its own address, two of them in
        // PASV mode (whose reply must name HAProxy's address, from the
        // header), two in EPSV; every upload must land, whole.
        let clients: Vec<(String, Vec<u8>, std::process::Child)> = (2..6)
            .map(|n| {
                let source = format!("127.0.0.{n}");
                let bytes: Vec<u8> = (0..50_000u32).map(|i| (i * n) as u8).collect();
                let file = write(work.path(), &format!("local{n}"), &bytes);
                let mut curl = Command::new("curl");
                curl.args(["-sS", "--max-time", "30", "--interface", &source]);
                if n % 2 == 0 {
                    curl.arg("--disable-epsv");
                }
                let url = format!("ftp://demo:demo@{}/c{n}.bin", proxied.both);
                let child = curl
                    .arg("-T")
                    .arg(&file)
                    .arg(url)
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("curl");
                (source, bytes, child)
            })
            .collect();
        for (n, (source, bytes, child)) in (2..6).zip(clients) {
            let output = child.wait_with_output().expect("curl");
            assert!(
                output.status.success(),
                "upload from {source}: {}\n{}",
                String::from_utf8_lossy(&output.stderr),
                proxied.logs()
            );
            let landed = std::fs::read(proxied.out.path().join(format!("c{n}.bin")));
            assert_eq!(landed.ok(), Some(bytes), "c{n}.bin from {source}");
        }
        // The relays' logs name the clients, never the proxy; each relay
        // served some of them.
        let name_of = |n: u32| format!("c{n}.bin");
        wait_until(
            "every upload's log line",
            || (2..6).all(|n| upload_line(&proxied.logs(), &name_of(n)).is_some()),
            || proxied.logs(),
        );
        for n in 2..6 {
            let logs = proxied.logs();
            let line = upload_line(&logs, &name_of(n)).expect("logged");
            assert!(
                line.contains(&format!("peer=127.0.0.{n}:")) && line.contains("proxy=127.0.0.1:"),
                "{line}"
            );
            assert!(line.contains("outcome=\"processed\""), "{line}");
        }
        for relay in &proxied.relays {
            let log = relay.log();
            assert!(log.contains(" upload "), "a relay served nothing:\n{log}");
            assert!(!log.contains("peer=127.0.0.1:"), "{log}");
        }

        // Limits count the clients: with one connection per address, a
        // second one from 127.0.0.6 is refused while 127.0.0.7 is served.
        let mut first = Control::new(connect_from("127.0.0.6", proxied.only_a));
        assert!(first.reply().starts_with("220"));
        let mut second = Control::new(connect_from("127.0.0.6", proxied.only_a));
        let refused = second.reply();
        assert!(
            refused.starts_with("421 Too many connections from your address"),
            "{refused}"
        );
        let mut other = Control::new(connect_from("127.0.0.7", proxied.only_a));
        assert!(other.reply().starts_with("220"));
        let relay_a = &proxied.relays[0];
        wait_until(
            "the refusal's log line",
            || {
                relay_a.log().lines().any(|line| {
                    line.contains("connection refused") && line.contains("peer=127.0.0.6:")
                })
            },
            || relay_a.log(),
        );
        drop((first, second, other));

        // The PORT check knows the client too: 127.0.0.8 may have the
        // relay connect to itself, not to the proxy's address.
        let mut control = Control::new(connect_from("127.0.0.8", proxied.only_a));
        assert!(control.reply().starts_with("220"));
        assert!(control.command("USER demo").starts_with("331"));
        assert!(control.command("PASS demo").starts_with("230"));
        let bounce = control.command("PORT 127,0,0,1,200,10");
        assert!(
            bounce.starts_with("501 Data connections go to your own address"),
            "{bounce}"
        );
        let own = control.command("PORT 127,0,0,8,200,10");
        assert!(own.starts_with("200"), "{own}");
        assert!(control.command("QUIT").starts_with("221"));
    }),
    a_header_from_an_untrusted_peer_is_refused({
        let out = tempfile::tempdir().expect("out");
        let mut relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--dir",
            out.path().to_str().expect("utf-8"),
            "--proxy-protocol",
            "--proxy-from",
            "127.0.0.1/32",
        ]);
        let v1 = format!("PROXY TCP4 10.9.9.9 127.0.0.1 4000 {}\r\n", relay.port());
        let v2 =
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x0a\x09\x09\x09\x7f\x00\x00\x01\x0f\xa0\x00\x15";
        for header in [v1.as_bytes(), &v2[..]] {
            let mut control = Control::new(connect_from("127.0.0.5", relay.addr));
            assert!(control.reply().starts_with("220"));
            control.send(header);
            let refused = control.reply();
            assert!(
                refused.starts_with("421 PROXY protocol header not accepted"),
                "{refused}"
            );
            assert_eq!(control.rest(), b"", "the connection must close");
            let line = relay.wait_for_line("PROXY header from a peer not trusted");
            assert!(line.contains("peer=127.0.0.5:"), "{line}");
        }
        // Without a header it is served as itself.
        let work = tempfile::tempdir().expect("work");
        let file = write(work.path(), "local", b"direct");
        let output = Command::new("curl")
            .args(["-sS", "--max-time", "30", "--interface", "127.0.0.5", "-T"])
            .arg(&file)
            .arg(relay.url("demo:demo", "direct.txt"))
            .output()
            .expect("curl");
        assert!(output.status.success(), "{}", support::stderr(&output));
        assert_eq!(
            std::fs::read(out.path().join("direct.txt")).ok(),
            Some(b"direct".to_vec())
        );
        let line = relay.wait_for_line("name=direct.txt");
        assert!(
            line.contains("peer=127.0.0.5:") && !line.contains("proxy="),
            "{line}"
        );
    }),
    a_malformed_header_closes_the_connection({
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--discard",
            "--proxy-protocol",
            "--proxy-from",
            "127.0.0.0/30",
        ]);
        let cases: [(&[u8], &str); 4] = [
            (b"PROXY TCP4 10.9.9.9\r\n", "malformed PROXY v1 header"),
            (
                b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c",
                "unsupported version 3",
            ),
            (b"USER demo\r\n", "not a PROXY protocol header"),
            (
                &[b'P', b'R', b'O', b'X', b'Y', b' '].repeat(20),
                "without CRLF in 107 bytes",
            ),
        ];
        for (bytes, failure) in cases {
            // From a trusted address: no greeting, closed, said why.
            let mut control = Control::new(connect_from("127.0.0.2", relay.addr));
            control.send(bytes);
            assert_eq!(control.rest(), b"", "nothing may be answered to {bytes:?}");
            wait_until(
                failure,
                || {
                    relay.log().lines().any(|line| {
                        line.contains("connection from a proxy closed")
                            && line.contains("proxy=127.0.0.2:")
                            && line.contains(failure)
                    })
                },
                || relay.log(),
            );
        }
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }),
    a_data_connection_from_a_proxy_needs_its_header({
        // The test is the proxy: 127.0.0.1 sends headers for a client
        // 10.9.9.9 that does not exist.
        let out = tempfile::tempdir().expect("out");
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--dir",
            out.path().to_str().expect("utf-8"),
            "--proxy-protocol",
            "--proxy-from",
            "127.0.0.1",
        ]);
        let header = |port: u16| format!("PROXY TCP4 10.9.9.9 127.0.0.1 4000 {port}\r\n");
        let mut control = Control::new(connect_from("127.0.0.1", relay.addr));
        control.send(header(relay.addr.port()).as_bytes());
        assert!(control.reply().starts_with("220"));
        assert!(control.command("USER demo").starts_with("331"));
        assert!(control.command("PASS demo").starts_with("230"));
        let epsv = control.command("EPSV");
        let port: u16 = epsv
            .split("|||")
            .nth(1)
            .and_then(|rest| rest.split('|').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("{epsv}"));
        let data_addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        // No header: the bytes are not taken as one, the connection closes.
        let mut bare = connect_from("127.0.0.1", data_addr);
        bare.write_all(b"file bytes, no header").expect("write");
        let mut rest = Vec::new();
        let _ = bare.read_to_end(&mut rest);
        wait_until(
            "the bare data connection's log line",
            || relay.log().contains("data connection from a proxy closed"),
            || relay.log(),
        );
        // A header naming another client: the data-peer check refuses it.
        let mut other = connect_from("127.0.0.1", data_addr);
        other
            .write_all(header(port).replace("10.9.9.9", "10.7.7.7").as_bytes())
            .expect("write");
        let mut rest = Vec::new();
        let _ = other.read_to_end(&mut rest);
        // The client's own: the upload lands.
        let mut data = connect_from("127.0.0.1", data_addr);
        data.write_all(header(port).as_bytes()).expect("write");
        let preliminary = control.command("STOR through.bin");
        assert!(preliminary.starts_with("150"), "{preliminary}");
        data.write_all(b"proxied upload").expect("write");
        drop(data);
        let done = control.reply();
        assert!(done.starts_with("226"), "{done}\n{}", relay.log());
        assert_eq!(
            std::fs::read(out.path().join("through.bin")).ok(),
            Some(b"proxied upload".to_vec())
        );
    }),
);

#[test]
fn bad_proxy_settings_are_one_line_errors() {
    let run = |extra: &[&str]| {
        let mut args = vec!["--user", "a:b", "--discard"];
        args.extend_from_slice(extra);
        ftprelay(&args, "")
    };
    assert_fails(
        &run(&["--proxy-protocol", "--proxy-from", "10.0.0.0/33"]),
        2,
        "10.0.0.0/33",
    );
    assert_fails(
        &run(&["--proxy-protocol", "--proxy-from", "haproxy.local"]),
        2,
        "address block",
    );
    assert_fails(
        &run(&["--proxy-from", "10.0.0.0/8"]),
        2,
        "needs --proxy-protocol",
    );
    assert_fails(&run(&["--proxy-protocol"]), 2, "needs --proxy-from");
    let work = tempfile::tempdir().expect("dir");
    let config = write(
        work.path(),
        "ftprelay.toml",
        b"proxy_protocol = true\nproxy_from = [\"10.0.0.0/8\", \"fe80::/2x\"]\n",
    );
    assert_fails(
        &run(&["--config", &config.display().to_string()]),
        2,
        "fe80::/2x",
    );
}
