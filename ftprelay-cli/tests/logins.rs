//! Users and logins: a file of password hashes, and a burst of failed
//! logins that must cost bounded memory.

mod support;

use std::process::Command;

use support::{Relay, curl_upload, ftprelay, stderr, write};

support::on_every_runtime!(
    users_from_a_file_of_hashes({
        let work = tempfile::tempdir().expect("dir");
        let hash = ftprelay(&["hash-password"], "s3cret\n");
        assert!(hash.status.success(), "{}", stderr(&hash));
        let hash = String::from_utf8(hash.stdout).expect("utf-8");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let users = write(
            work.path(),
            "users",
            format!("# operators\n\nalice:{hash}").as_bytes(),
        );
        let relay = Relay::start(&["--users", &users.display().to_string(), "--discard"]);
        let file = write(work.path(), "local", b"x");
        assert!(
            curl_upload(&relay, "alice:s3cret", "a.bin", &file)
                .status
                .success()
        );
        let wrong = curl_upload(&relay, "alice:S3cret", "a.bin", &file);
        assert!(stderr(&wrong).contains("530"), "{}", stderr(&wrong));
    }),
    a_burst_of_failed_logins_costs_bounded_memory({
        let work = tempfile::tempdir().expect("dir");
        let hash = ftprelay(&["hash-password"], "s3cret\n");
        assert!(hash.status.success(), "{}", stderr(&hash));
        let hash = String::from_utf8(hash.stdout).expect("utf-8");
        let users = write(work.path(), "users", format!("alice:{hash}").as_bytes());
        let relay = Relay::start(&[
            "--users",
            &users.display().to_string(),
            "--discard",
            "--max-connections",
            "600",
        ]);
        let (idle, _) = memory_kib(relay.child.id());
        // 512 logins at once, 32 from each of 16 addresses, half of them for a
        // user that exists: every one must be refused.
        let script = format!(
            r#"
import asyncio, sys
async def attempt(n):
    stage = ["connect"]
    try:
        return await asyncio.wait_for(steps(n, stage), 100)
    except asyncio.TimeoutError:
        return "timeout-in-" + stage[0]
async def steps(n, stage):
    source = "127.0.0.%d" % (1 + n % 16)
    reader, writer = await asyncio.open_connection("127.0.0.1", {port}, local_addr=(source, 0))
    stage[0] = "greeting"
    await reader.readline()
    stage[0] = "reply"
    user = "alice" if n % 2 else "nobody%d" % n
    writer.write(("USER %s\r\nPASS wrong\r\n" % user).encode())
    await writer.drain()
    replies = []
    while True:
        line = await reader.readline()
        if not line:
            break
        code = line[:3].decode()
        if code != "331":
            replies.append(code)
            break
    writer.close()
    return replies[0] if replies else "closed"
async def main():
    codes = await asyncio.gather(*(attempt(n) for n in range(512)))
    print(" ".join(codes))
asyncio.run(main())
"#,
            port = relay.addr.port()
        );
        let output = Command::new("python3")
            .arg("-c")
            .arg(script)
            .output()
            .expect("python3");
        assert!(output.status.success(), "{}", stderr(&output));
        let codes = String::from_utf8_lossy(&output.stdout).into_owned();
        let codes: Vec<&str> = codes.split_whitespace().collect();
        assert_eq!(codes.len(), 512);
        let log = relay.log();
        assert!(
            codes.iter().all(|c| *c == "530" || *c == "421"),
            "{codes:?}\nthe relay's log ends: {}",
            &log[log.len().saturating_sub(4000)..]
        );
        // The lock-out stopped the burst: at most ten checks per address ran.
        let refused_at_once = codes.iter().filter(|c| **c == "421").count();
        assert!(
            refused_at_once >= 512 - 16 * 10,
            "{refused_at_once} locked out"
        );
        let (_, peak) = memory_kib(relay.child.id());
        let grown_mib = peak.saturating_sub(idle) / 1024;
        assert!(
            grown_mib <= 64,
            "RSS grew by {grown_mib} MiB over idle ({idle} KiB)"
        );
    }),
);

/// A process's resident memory, and its peak, in KiB (from /proc).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .expect("a /proc status field")
    };
    (field("VmRSS:"), field("VmHWM:"))
}
