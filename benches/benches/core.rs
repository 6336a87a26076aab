//! Criterion benches of the core: parsing command lines, and a whole upload
//! transcript through `Session`.
//!
//! Run: `cargo bench -p ftprelay-benches --bench core`

// criterion_group! generates a public function without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proto::{
    Command, Config, DataEvent, Input, LineFramer, LoginVerdict, Output, Session, TransferEnd,
};

/// The lines a typical device sends for one upload.
const TYPICAL: [&str; 10] = [
    "USER camera",
    "PASS secret",
    "TYPE I",
    "PASV",
    "EPSV",
    "STOR /NVR01/2024-05-01/ch1/snapshot_0001.jpg",
    "NOOP",
    "PORT 192,168,1,20,156,64",
    "CWD /",
    "QUIT",
];

fn parse_lines(c: &mut Criterion) {
    let lines: Vec<Bytes> = TYPICAL
        .iter()
        .map(|l| Bytes::from_static(l.as_bytes()))
        .collect();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("typical command lines", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(Command::parse(black_box(line)).ok());
            }
        })
    });
    let wire: Vec<u8> = TYPICAL
        .iter()
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect();
    group.bench_function("frame and parse typical lines", |b| {
        let mut framer = LineFramer::new(4096);
        b.iter(|| {
            framer.push(black_box(&wire), |frame| {
                if let proto::Frame::Line(line) = frame {
                    black_box(Command::parse(&line).ok());
                }
            });
        })
    });
    group.finish();
}

/// One whole session: greeting, login, PASV, STOR, the transfer, processing,
/// 226, QUIT, with the adapter's answers given at once.
fn upload_transcript(config: &Arc<Config>, now: Instant) -> usize {
    let local: SocketAddr = "127.0.0.1:2121".parse().expect("address");
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
    let mut session = Session::new(config.clone(), now, local, peer);
    let mut replies = 0;
    let mut pending: Vec<Input<'static>> = Vec::new();
    let script: [&[u8]; 5] = [
        b"USER camera\r\n",
        b"PASS secret\r\n",
        b"TYPE I\r\nPASV\r\n",
        b"STOR snapshot.jpg\r\n",
        b"QUIT\r\n",
    ];
    for bytes in script {
        session.handle(now, Input::ControlBytes(bytes));
        loop {
            match session.poll_output() {
                Output::Reply(reply) => {
                    replies += 1;
                    if reply.code().as_u16() == 150 {
                        pending.push(Input::Data(DataEvent::Connected { peer }));
                    }
                }
                Output::CheckLogin(_) => pending.push(Input::LoginChecked(LoginVerdict::ACCEPTED)),
                Output::Listen => pending.push(Input::Data(DataEvent::Listening(
                    "127.0.0.1:50000".parse().expect("address"),
                ))),
                Output::Receive(request) => pending.push(Input::Data(DataEvent::TransferEnded {
                    upload: request.upload,
                    end: TransferEnd::Complete { bytes: 4096 },
                })),
                Output::Process(request) => pending.push(Input::Processed {
                    upload: request.upload,
                    result: Ok(()),
                }),
                Output::Wait(_) | Output::Finished => match pending.pop() {
                    Some(input) => session.handle(now, input),
                    None => break,
                },
                _ => {}
            }
        }
    }
    replies
}

fn transcript(c: &mut Criterion) {
    let config = Arc::new(Config::default());
    let now = Instant::now();
    // 220, 331, 230, 200 (TYPE), 227, 150, 226, 221: the whole story ran.
    assert_eq!(
        upload_transcript(&config, now),
        8,
        "the transcript must complete"
    );
    let mut group = c.benchmark_group("session");
    group.throughput(Throughput::Elements(1));
    group.bench_function("whole upload transcript", |b| {
        b.iter(|| black_box(upload_transcript(&config, now)))
    });
    group.finish();
}

criterion_group!(benches, parse_lines, transcript);
criterion_main!(benches);
