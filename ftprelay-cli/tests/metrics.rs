//! `--metrics ADDR`: after real uploads and logins the counters say what
//! happened, `promtool check metrics` (Prometheus' own linter) finds
//! nothing to say about the text, the health checks answer as a load
//! balancer needs (`/readyz` 503 while the queue is full and while
//! draining), and scrapes answer while uploads run.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::hook::Hook;
use support::{Relay, assert_fails, curl_upload, ftprelay, stderr, upload, wait_until};

/// The address of the relay's metrics server, from its log.
fn metrics_addr(relay: &Relay) -> String {
    let log = relay.log();
    log.split("metrics=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no metrics= in the log:\n{log}"))
        .to_owned()
}

/// `curl http://ADDR/PATH`: the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let (body, status) = text.rsplit_once('\n').expect("the status line");
    (status.parse().expect("a status"), body.to_owned())
}

/// A scrape of `/metrics` (200 expected).
fn scrape(addr: &str) -> String {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the sample `series` (`name` or `name{labels}`) in `text`.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

/// `promtool check metrics` on `text`: exit 0 and nothing said.
fn assert_promtool_clean(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package)");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
        .expect("to promtool");
    let output = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool: {said}\n{text}");
    assert!(said.trim().is_empty(), "promtool: {said}\n{text}");
}

/// A login with a wrong password, by curl (refused: 530).
fn failed_login(relay: &Relay) {
    let work = tempfile::tempdir().expect("dir");
    let file = support::write(work.path(), "local", b"x");
    let output = curl_upload(relay, "cam:wrong", "x.jpg", &file);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("530"), "{}", stderr(&output));
}

support::on_every_runtime!(
    counters_say_what_happened_and_promtool_agrees({
        let relay = Relay::start(&["--user", "cam:pw", "--discard", "--metrics", "127.0.0.1:0"]);
        let addr = metrics_addr(&relay);
        for (name, size) in [("a.jpg", 1000), ("b.jpg", 2345)] {
            let output = upload(&relay, "cam:pw", name, &vec![7; size]);
            assert!(output.status.success(), "{}", stderr(&output));
        }
        failed_login(&relay);
        // Each session is closed once its client is gone.
        wait_until(
            "every session closed",
            || value(&scrape(&addr), "ftprelay_sessions_open") == 0.0,
            || scrape(&addr),
        );
        let text = scrape(&addr);
        for (series, expected) in [
            ("ftprelay_uploads_total{result=\"ok\"}", 2.0),
            ("ftprelay_uploads_total{result=\"failed\"}", 0.0),
            ("ftprelay_received_bytes_total", 3345.0),
            ("ftprelay_logins_total{result=\"accepted\"}", 2.0),
            ("ftprelay_logins_total{result=\"rejected\"}", 1.0),
            ("ftprelay_connections_accepted_total", 3.0),
            ("ftprelay_processing_duration_seconds_count", 2.0),
            (
                "ftprelay_deliveries_total{destination=\"discard\",result=\"ok\"}",
                2.0,
            ),
            (
                "ftprelay_delivery_duration_seconds_count{destination=\"discard\"}",
                2.0,
            ),
        ] {
            assert_eq!(value(&text, series), expected, "{series}");
        }
        assert!(
            !text.contains("ftprelay_queue"),
            "no queue, no queue metrics"
        );
        assert_promtool_clean(&text);
        assert_eq!(get(&addr, "/healthz").0, 200);
        assert_eq!(get(&addr, "/readyz"), (200, "ready\n".to_owned()));
        assert_eq!(get(&addr, "/metricsx").0, 404);
        assert_eq!(get(&addr, "/").0, 404);
    }),
    refusals_at_the_connection_limit_are_counted({
        let relay = Relay::start(&[
            "--user",
            "cam:pw",
            "--discard",
            "--max-connections-per-ip",
            "1",
            "--metrics",
            "127.0.0.1:0",
        ]);
        let addr = metrics_addr(&relay);
        let mut first = TcpStream::connect(relay.addr).expect("connect");
        first
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut greeting = [0; 3];
        first.read_exact(&mut greeting).expect("greeting");
        assert_eq!(&greeting, b"220");
        let mut second = TcpStream::connect(relay.addr).expect("connect");
        second
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut refusal = String::new();
        second.read_to_string(&mut refusal).expect("refusal");
        assert!(refusal.starts_with("421"), "{refusal}");
        let text = scrape(&addr);
        assert_eq!(
            value(
                &text,
                "ftprelay_connections_refused_total{reason=\"per_address_limit\"}"
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                "ftprelay_limit_rejections_total{limit=\"connections_per_ip\"}"
            ),
            1.0
        );
        assert_eq!(value(&text, "ftprelay_sessions_open"), 1.0);
        assert_promtool_clean(&text);
    }),
    readyz_is_503_while_the_queue_is_full({
        let hook = Hook::start();
        hook.set("down", true);
        let queue = tempfile::tempdir().expect("queue");
        let relay = Relay::start(&[
            "--user",
            "cam:pw",
            "--http",
            &hook.url,
            "--queue",
            queue.path().to_str().expect("path"),
            "--queue-max-files",
            "1",
            "--queue-retry-first",
            "1",
            "--queue-retry-max",
            "1",
            "--metrics",
            "127.0.0.1:0",
        ]);
        let addr = metrics_addr(&relay);
        assert_eq!(get(&addr, "/readyz").0, 200);
        let output = upload(&relay, "cam:pw", "first.jpg", b"first");
        assert!(output.status.success(), "{}", stderr(&output));
        let (status, body) = get(&addr, "/readyz");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("queue is full"), "{body}");
        assert_eq!(get(&addr, "/healthz").0, 200);
        let output = upload(&relay, "cam:pw", "second.jpg", b"second");
        assert!(stderr(&output).contains("452"), "{}", stderr(&output));
        // The hook answers 503 at each attempt (one a second).
        let failed = "ftprelay_deliveries_total{destination=\"http POST ";
        wait_until(
            "a failed delivery counted",
            || {
                scrape(&addr)
                    .lines()
                    .any(|l| l.starts_with(failed) && l.contains("result=\"failed\""))
            },
            || scrape(&addr),
        );
        let text = scrape(&addr);
        assert_eq!(value(&text, "ftprelay_uploads_total{result=\"ok\"}"), 1.0);
        assert_eq!(
            value(&text, "ftprelay_uploads_total{result=\"refused\"}"),
            1.0
        );
        assert_eq!(
            value(
                &text,
                "ftprelay_limit_rejections_total{limit=\"queue_full\"}"
            ),
            1.0
        );
        assert_eq!(value(&text, "ftprelay_queue_uploads"), 1.0);
        assert_eq!(value(&text, "ftprelay_queue_bytes"), 5.0);
        assert!(
            value(&text, "ftprelay_queue_oldest_age_seconds") > 0.0,
            "{text}"
        );
        assert_promtool_clean(&text);
        // The hook is back: the upload is delivered, the queue empty, ready.
        hook.set("down", false);
        wait_until(
            "ready again",
            || get(&addr, "/readyz").0 == 200,
            || scrape(&addr),
        );
        let text = scrape(&addr);
        assert_eq!(value(&text, "ftprelay_queue_uploads"), 0.0);
        assert_eq!(value(&text, "ftprelay_queue_oldest_age_seconds"), 0.0);
        assert!(
            text.lines()
                .any(|l| l.starts_with(failed) && l.contains("result=\"ok\"") && l.ends_with(" 1")),
            "{text}"
        );
    }),
    readyz_is_503_while_draining({
        let hook = Hook::start();
        hook.set("hang", true);
        let relay = Relay::start(&[
            "--user",
            "cam:pw",
            "--http",
            &hook.url,
            "--metrics",
            "127.0.0.1:0",
        ]);
        let addr = metrics_addr(&relay);
        let work = tempfile::tempdir().expect("dir");
        let file = support::write(work.path(), "local", b"slow");
        let client = Command::new("curl")
            .args(["-sS", "--max-time", "60", "-T"])
            .arg(&file)
            .arg(relay.url("cam:pw", "slow.jpg"))
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        let _client = support::KillOnDrop(client);
        // The upload is with the hook, which holds it.
        let hanging = hook
            .server
            .next_within(Duration::from_secs(20), "the held request");
        assert!(hanging["hanging"].is_string(), "{hanging}");
        assert_eq!(get(&addr, "/readyz").0, 200);
        support::signal(&relay.child, "TERM");
        wait_until(
            "not ready while draining",
            || get(&addr, "/readyz").0 == 503,
            || get(&addr, "/readyz").1,
        );
        let (_, body) = get(&addr, "/readyz");
        assert!(body.contains("draining"), "{body}");
        assert_eq!(get(&addr, "/healthz").0, 200);
        assert_eq!(value(&scrape(&addr), "ftprelay_sessions_open"), 1.0);
        hook.set("hang", false);
    }),
    scrapes_answer_while_uploads_run({
        let relay = Relay::start(&["--user", "cam:pw", "--discard", "--metrics", "127.0.0.1:0"]);
        let addr = metrics_addr(&relay);
        let (clients, each) = (6, 8);
        let done = std::sync::atomic::AtomicBool::new(false);
        let scrapes = std::thread::scope(|scope| {
            let uploads: Vec<_> = (0..clients)
                .map(|client| {
                    // A Relay is not Sync (its log's receiver): its URLs are.
                    let urls: Vec<String> = (0..each)
                        .map(|n| relay.url("cam:pw", &format!("c{client}-{n}.bin")))
                        .collect();
                    scope.spawn(move || {
                        let work = tempfile::tempdir().expect("dir");
                        for (n, url) in urls.iter().enumerate() {
                            let file = support::write(work.path(), "local", &vec![1; 4096 + n]);
                            let output = Command::new("curl")
                                .args(["-sS", "--max-time", "30", "-T"])
                                .arg(&file)
                                .arg(url)
                                .output()
                                .expect("curl");
                            assert!(output.status.success(), "{}", stderr(&output));
                        }
                    })
                })
                .collect();
            let scraper = scope.spawn(|| {
                let mut seen = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let text = scrape(&addr);
                    let ok = value(&text, "ftprelay_uploads_total{result=\"ok\"}");
                    let logins = value(&text, "ftprelay_logins_total{result=\"accepted\"}");
                    // Counted in order: no upload without its login.
                    assert!(ok <= logins, "{text}");
                    seen.push(ok);
                }
                seen
            });
            for upload in uploads {
                upload.join().expect("uploads");
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            scraper.join().expect("scraper")
        });
        assert!(!scrapes.is_empty());
        assert!(
            scrapes.windows(2).all(|pair| pair[0] <= pair[1]),
            "counters went back: {scrapes:?}"
        );
        let text = scrape(&addr);
        let total = clients * each;
        assert_eq!(
            value(&text, "ftprelay_uploads_total{result=\"ok\"}"),
            total as f64
        );
        let bytes: usize = (0..each).map(|n| (4096 + n) * clients).sum();
        assert_eq!(value(&text, "ftprelay_received_bytes_total"), bytes as f64);
        assert_promtool_clean(&text);
    }),
);

#[test]
fn an_address_in_use_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = ftprelay(
        &[
            "--user",
            "cam:pw",
            "--discard",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            &addr,
        ],
        "",
    );
    assert_fails(&output, 1, &format!("--metrics {addr}"));
    // The configuration file's key, the same.
    let dir = tempfile::tempdir().expect("dir");
    let config = support::write(
        dir.path(),
        "ftprelay.toml",
        format!("metrics = \"{addr}\"\n").as_bytes(),
    );
    let output = ftprelay(
        &[
            "--user",
            "cam:pw",
            "--discard",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().expect("path"),
        ],
        "",
    );
    assert_fails(&output, 1, &format!("--metrics {addr}"));
    let output = ftprelay(&["--metrics", "not-an-address"], "");
    assert_fails(&output, 2, "not-an-address");
}
