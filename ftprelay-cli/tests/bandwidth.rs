//! `--max-upload-rate` and `--max-total-upload-rate`: uploads are slowed
//! (never refused) to the rate, after a burst of one second's worth, and
//! arrive whole; time held back is not counted against
//! `--min-upload-rate`. The elapsed times asserted are lower bounds, what
//! the limit promises; nothing asserts how fast anything is.

mod support;

use std::time::{Duration, Instant};

use support::{Relay, assert_fails, ftprelay, stderr, upload};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

support::on_every_runtime!(
    an_upload_is_held_to_its_rate_and_arrives_whole({
        let out = tempfile::tempdir().expect("out");
        let relay = Relay::start(&[
            "--user",
            "cam:pw",
            "--dir",
            out.path().to_str().expect("path"),
            "--max-upload-rate",
            "256K",
        ]);
        let body = pattern(768 * 1024);
        let started = Instant::now();
        let output = upload(&relay, "cam:pw", "big.bin", &body);
        let took = started.elapsed();
        assert!(output.status.success(), "{}", stderr(&output));
        // 256 KiB at once, then 512 KiB at 256 KiB/s.
        assert!(took >= Duration::from_millis(1900), "took {took:?}");
        assert_eq!(
            std::fs::read(out.path().join("big.bin")).expect("file"),
            body
        );
    }),
    uploads_share_the_total_rate_and_held_time_is_not_slowness({
        let out = tempfile::tempdir().expect("out");
        let relay = Relay::start(&[
            "--user",
            "cam:pw",
            "--dir",
            out.path().to_str().expect("path"),
            "--max-total-upload-rate",
            "32K",
            // Each upload gets about 16 KiB/s of the 32: below this
            // minimum, which must not abort it, since the relay held it.
            "--min-upload-rate",
            "24K",
            "--upload-rate-grace",
            "1",
        ]);
        let started = Instant::now();
        let work = tempfile::tempdir().expect("work");
        let uploads: Vec<_> = ["a.bin", "b.bin"]
            .into_iter()
            .map(|name| (name, pattern(96 * 1024)))
            .collect();
        // Both at once: two curl processes.
        let clients: Vec<_> = uploads
            .iter()
            .map(|(name, body)| {
                let local = support::write(work.path(), name, body);
                std::process::Command::new("curl")
                    .args(["-sS", "--max-time", "30", "-T"])
                    .arg(&local)
                    .arg(relay.url("cam:pw", name))
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("curl")
            })
            .collect();
        for client in clients {
            let output = client.wait_with_output().expect("curl");
            assert!(output.status.success(), "{}", stderr(&output));
        }
        let took = started.elapsed();
        // 192 KiB: 64 KiB at once, then 128 KiB at 32 KiB/s.
        assert!(took >= Duration::from_millis(3800), "took {took:?}");
        for (name, body) in &uploads {
            assert_eq!(&std::fs::read(out.path().join(name)).expect("file"), body);
        }
    }),
);

#[test]
fn a_maximum_below_the_minimum_rate_is_a_one_line_error() {
    let output = ftprelay(
        &["--anonymous", "--discard", "--max-upload-rate", "512"],
        "",
    );
    assert_fails(
        &output,
        2,
        "--max-upload-rate 512 is below --min-upload-rate 1024",
    );
}
