//! `Relay::serve_on_threads`: the relay's tasks run on that many threads.
//! Two uploads' processors each wait for the other to have started,
//! blocking their thread while they wait: only a second thread running the
//! relay's tasks can start the other one. On one thread, the first would
//! wait alone until its bound, and fail its upload.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftprelay_smol::proto::{
    Authenticator, FileProcessor, Login, LoginRejected, ProcessError, RelayConfig, Upload,
};

/// Bounds every wait that only a broken relay would exhaust.
const TOO_LONG: Duration = Duration::from_secs(10);

/// Processors that meet: each records its upload's bytes, then waits for
/// `expected` processors in all to have started.
#[derive(Clone)]
struct Rendezvous {
    expected: usize,
    started: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Authenticator for Rendezvous {
    type Processor = Rendezvous;
    async fn authenticate(&self, _login: &Login) -> Result<Rendezvous, LoginRejected> {
        Ok(self.clone())
    }
}

impl FileProcessor for Rendezvous {
    async fn process(&self, upload: &Upload) -> Result<(), ProcessError> {
        let bytes = std::fs::read(upload.path())
            .map_err(|e| ProcessError::transient(format!("cannot read the upload: {e}")))?;
        self.received.lock().expect("not poisoned").push(bytes);
        self.started.fetch_add(1, Ordering::SeqCst);
        // Blocks this thread on purpose (no await): the other processor can
        // only start on another thread.
        let deadline = Instant::now() + TOO_LONG;
        while self.started.load(Ordering::SeqCst) < self.expected {
            if Instant::now() > deadline {
                return Err(ProcessError::transient("the other processor never started"));
            }
            std::thread::yield_now();
        }
        Ok(())
    }
}

/// One session's upload of `bytes` as `name` over plain FTP: the reply to
/// its STOR's end (`226` when the processor succeeded).
fn upload(addr: SocketAddr, name: &str, bytes: &[u8]) -> String {
    let control = TcpStream::connect(addr).expect("connect");
    control.set_read_timeout(Some(TOO_LONG)).expect("timeout");
    let mut replies = BufReader::new(control.try_clone().expect("clone"));
    let mut writer = control;
    let mut reply = |expect: &str| {
        let mut line = String::new();
        replies.read_line(&mut line).expect("a reply");
        assert!(line.starts_with(expect), "expected {expect}, got {line:?}");
        line
    };
    reply("220");
    for (command, expect) in [("USER u", "331"), ("PASS p", "230"), ("TYPE I", "200")] {
        writer
            .write_all(format!("{command}\r\n").as_bytes())
            .expect("send");
        reply(expect);
    }
    writer.write_all(b"EPSV\r\n").expect("send");
    let epsv = reply("229");
    let port: u16 = epsv
        .split('|')
        .nth(3)
        .and_then(|p| p.parse().ok())
        .expect("229's port");
    let mut data = TcpStream::connect((addr.ip(), port)).expect("data connection");
    writer
        .write_all(format!("STOR {name}\r\n").as_bytes())
        .expect("send");
    reply("150");
    data.write_all(bytes).expect("upload");
    drop(data);
    let mut line = String::new();
    replies.read_line(&mut line).expect("the upload's reply");
    line
}

#[test]
fn two_threads_run_two_processors_at_once() {
    let spool = tempfile::tempdir().expect("spool dir");
    let mut config = RelayConfig::default();
    config.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config.spool_dir = Some(spool.path().to_owned());
    let rendezvous = Rendezvous {
        expected: 2,
        started: Arc::default(),
        received: Arc::default(),
    };
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let relay_thread = {
        let rendezvous = rendezvous.clone();
        std::thread::spawn(move || {
            smol::block_on(async move {
                let relay = ftprelay_smol::Relay::bind(config, rendezvous).await?;
                addr_tx
                    .send(relay.local_addrs()?[0])
                    .expect("the test waits");
                let threads = NonZeroUsize::new(2).expect("not zero");
                relay
                    .serve_on_threads(threads, async move {
                        let _ = stop_rx.recv().await;
                    })
                    .await
            })
        })
    };
    let addr = addr_rx.recv_timeout(TOO_LONG).expect("the relay is bound");
    let sessions: Vec<_> = [b"first file".as_slice(), b"second file"]
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| std::thread::spawn(move || upload(addr, &format!("f{i}"), bytes)))
        .collect();
    for session in sessions {
        let reply = session.join().expect("the session's thread");
        assert!(reply.starts_with("226"), "expected 226, got {reply:?}");
    }
    let mut received = rendezvous.received.lock().expect("not poisoned").clone();
    received.sort();
    assert_eq!(received, [b"first file".to_vec(), b"second file".to_vec()]);
    drop(stop_tx);
    relay_thread
        .join()
        .expect("the relay's thread")
        .expect("the relay served and stopped");
    // Its spool files are gone with the uploads: nothing left behind.
    let left: Vec<_> = std::fs::read_dir(spool.path())
        .expect("the spool")
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| name != ".ftprelay-spool.lock")
        .collect();
    assert!(left.is_empty(), "left in the spool: {left:?}");
}
