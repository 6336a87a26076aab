//! What a server process costs, read from /proc.

/// User plus system CPU seconds of a process and of all its descendants,
/// alive or reaped: vsftpd serves each session in processes it forks, and
/// a session still open when the figure is read has not been reaped yet.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let processes: Vec<(u32, u32, f64)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|id| {
            let (parent, seconds) = stat_cpu(id)?;
            Some((id, parent, seconds))
        })
        .collect();
    let mut tree = vec![pid];
    let mut total = 0.0;
    while let Some(id) = tree.pop() {
        for &(child, parent, seconds) in &processes {
            if child == id {
                total += seconds;
            }
            if parent == id {
                tree.push(child);
            }
        }
    }
    total
}

/// A process's parent and its CPU seconds, with its reaped children's.
fn stat_cpu(pid: u32) -> Option<(u32, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) start at ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // ppid is field 4 of the whole line; utime, stime, cutime, cstime are
    // fields 14 to 17.
    let parent = fields.get(1)?.parse().ok()?;
    let ticks = number(11)? + number(12)? + number(13)? + number(14)?;
    Some((parent, ticks / 100.0))
}

/// The resident set size of a process, in bytes.
pub(crate) fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Raises this process's limit of open files to its hard limit (children
/// inherit it): 10,000 idle sessions need 10,000 descriptors on each side.
/// The benchmark does this, not the library.
pub(crate) fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we own.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}

/// What one core encrypts with AES-128-GCM, in bytes per second
/// (`openssl speed -evp aes-128-gcm` on 16 KiB blocks, TLS's record size):
/// the ceiling of one FTPS stream. `None` without `openssl`.
pub(crate) fn aes_gcm_ceiling() -> Option<f64> {
    let output = std::process::Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-128-gcm",
            "-bytes",
            "16384",
            "-seconds",
            "3",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "AES-128-GCM    4567890.12k": thousands of bytes per second.
    let line = text
        .lines()
        .rev()
        .find(|line| line.to_ascii_uppercase().starts_with("AES-128-GCM"))?;
    let thousands: f64 = line
        .split_whitespace()
        .last()?
        .strip_suffix('k')?
        .parse()
        .ok()?;
    Some(thousands * 1000.0)
}
