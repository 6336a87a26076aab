//! A whole relay over blocking `std::net`, one thread per client: how to
//! drive a `Session` from any IO. It accepts the user `demo` (password
//! `demo`), prints each upload's name and size, and deletes it.
//!
//! ```text
//! cargo run -p ftprelay-proto --example blocking -- 127.0.0.1:2121
//! curl -T somefile ftp://demo:demo@127.0.0.1:2121/
//! ```
//!
//! Simpler than the real adapters: the control connection is polled every
//! few milliseconds, and an upload is received and processed on the
//! session's own thread (so an ABOR is read only after it).

// An adapter reads the clock, which the core never does.
#![allow(clippy::disallowed_methods, clippy::print_stdout, clippy::print_stderr)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftprelay_proto::{
    Config, DataEvent, Input, LoginRejected, Output, Session, SpoolFailure, TransferEnd, TransferId,
};

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = TcpListener::bind(addr.as_deref().unwrap_or("127.0.0.1:2121"))?;
    // The first line says where we listen (the port may have been 0).
    println!("listening on {}", listener.local_addr()?);
    let config = Arc::new(Config::default());
    for stream in listener.incoming() {
        let config = config.clone();
        std::thread::spawn(move || {
            if let Err(error) = stream.and_then(|stream| serve(config, stream)) {
                eprintln!("session ended: {error}");
            }
        });
    }
    Ok(())
}

/// What one session's adapter holds besides the session.
struct Client {
    control: TcpStream,
    listener: Option<TcpListener>,
    /// The data connection: reported to the session, then accepted.
    data: Option<TcpStream>,
}

fn serve(config: Arc<Config>, control: TcpStream) -> std::io::Result<()> {
    control.set_nodelay(true)?;
    // Reads give up after a few milliseconds, to look at the data listener
    // and the clock in between.
    control.set_read_timeout(Some(Duration::from_millis(5)))?;
    let (local, peer) = (control.local_addr()?, control.peer_addr()?);
    let mut session = Session::new(config, Instant::now(), local, peer);
    let (listener, data) = (None, None);
    let mut client = Client {
        control,
        listener,
        data,
    };
    let mut buf = [0u8; 4096];
    loop {
        // 1. Carry out every output until the session asks to wait.
        let deadline = loop {
            match session.poll_output() {
                Output::Wait(deadline) => break deadline,
                Output::Finished => return Ok(()),
                output => {
                    if let Some(input) = client.carry_out(output)? {
                        session.handle(Instant::now(), input);
                    }
                }
            }
        };
        // 2. Wait for the next input: control bytes, a data connection, or
        //    the deadline.
        loop {
            let input = match client.control.read(&mut buf) {
                Ok(0) => Some(Input::ControlEof),
                Ok(n) => Some(Input::ControlBytes(&buf[..n])),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
                Err(_) => Some(Input::ControlClosed),
            };
            let input = input.or_else(|| {
                let (stream, peer) = client.listener.as_ref()?.accept().ok()?;
                client.data = Some(stream);
                Some(Input::Data(DataEvent::Connected { peer }))
            });
            let due = deadline.is_some_and(|d| Instant::now() >= d);
            if let Some(input) = input.or(due.then_some(Input::Timeout)) {
                session.handle(Instant::now(), input);
                break;
            }
        }
    }
}

impl Client {
    /// Carries out one output; returns the input it produced, if any.
    fn carry_out(&mut self, output: Output) -> std::io::Result<Option<Input<'static>>> {
        Ok(match output {
            Output::Reply(reply) => {
                self.control.write_all(&reply.to_bytes())?;
                None
            }
            Output::CheckLogin(login) => {
                let ok = login.user() == b"demo" && login.password() == b"demo";
                Some(Input::LoginChecked(
                    ok.then_some(()).ok_or(LoginRejected).into(),
                ))
            }
            Output::Listen => {
                let ip = self.control.local_addr()?.ip();
                let listener = TcpListener::bind(SocketAddr::new(ip, 0))?;
                listener.set_nonblocking(true)?;
                let addr = listener.local_addr()?;
                self.listener = Some(listener);
                Some(Input::Data(DataEvent::Listening(addr)))
            }
            Output::Connect(target) => {
                let connected = TcpStream::connect_timeout(&target, Duration::from_secs(10));
                self.data = connected.ok();
                let event = match self.data {
                    Some(_) => DataEvent::Connected { peer: target },
                    None => DataEvent::ConnectFailed,
                };
                Some(Input::Data(event))
            }
            Output::AcceptDataConnection => self.listener.take().and(None),
            Output::RefuseDataConnection => self.data.take().and(None),
            Output::Receive(request) => {
                let end = self.receive(request.upload, request.max_size);
                let upload = request.upload;
                Some(Input::Data(DataEvent::TransferEnded { upload, end }))
            }
            Output::Process(request) => {
                let name = String::from_utf8_lossy(&request.file_name);
                println!(
                    "received {name} ({} bytes) from {}",
                    request.size, request.peer
                );
                let _ = std::fs::remove_file(spool_path(request.upload));
                let (upload, result) = (request.upload, Ok(()));
                Some(Input::Processed { upload, result })
            }
            Output::Discard(upload) | Output::AbortTransfer(upload) => {
                std::fs::remove_file(spool_path(upload)).ok().and(None)
            }
            Output::CloseData => {
                (self.listener, self.data) = (None, None);
                None
            }
            Output::CloseControl => {
                let _ = self.control.shutdown(std::net::Shutdown::Write);
                None
            }
            _ => None,
        })
    }

    /// Streams the data connection into the upload's spool file, within
    /// `max_size`.
    fn receive(&mut self, upload: TransferId, max_size: u64) -> TransferEnd {
        let Some(mut data) = self.data.take() else {
            return TransferEnd::Reset;
        };
        let Ok(mut file) = std::fs::File::create(spool_path(upload)) else {
            return TransferEnd::SpoolFailed(SpoolFailure::Other);
        };
        let _ = data.set_nonblocking(false);
        let (mut buf, mut total) = (vec![0u8; 64 * 1024], 0u64);
        loop {
            match data.read(&mut buf) {
                Ok(0) => return TransferEnd::Complete { bytes: total },
                Ok(n) if total + n as u64 > max_size => return TransferEnd::TooLarge,
                Ok(n) if file.write_all(&buf[..n]).is_err() => {
                    return TransferEnd::SpoolFailed(SpoolFailure::Other);
                }
                Ok(n) => total += n as u64,
                Err(_) => return TransferEnd::Reset,
            }
        }
    }
}

/// Where an upload is spooled: named by the relay, never by the client.
fn spool_path(upload: TransferId) -> PathBuf {
    let name = format!(".ftprelay-example-{}-{upload}", std::process::id());
    std::env::temp_dir().join(name)
}
