//! A test harness: one session, a virtual clock, and helpers that read like
//! the story of a client session. No sockets.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ftprelay_proto::fuzzing::SimulatedAdapter;
use ftprelay_proto::{
    Config, DataEvent, Input, LoginVerdict, Output, ProcessError, TransferEnd, TransferId,
};

/// The origin of the virtual clock. The one clock read in the tests: every
/// later time is this plus a virtual offset.
#[allow(clippy::disallowed_methods)]
pub fn origin() -> Instant {
    Instant::now()
}

/// The default configuration, changed by `change`.
pub fn config(change: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    change(&mut config);
    config
}

pub const CLIENT: &str = "127.0.0.1:40000";
pub const RELAY: &str = "127.0.0.1:2121";

pub fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

/// A session under test, stepped by hand.
pub struct Harness {
    pub adapter: SimulatedAdapter,
    seen: usize,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        Self::with_addresses(config, RELAY, CLIENT)
    }

    pub fn with_addresses(config: Config, local: &str, peer: &str) -> Self {
        let adapter = SimulatedAdapter::with_addresses(config, origin(), addr(local), addr(peer));
        let mut harness = Self {
            adapter: adapter.manual(),
            seen: 0,
        };
        harness.expect_replies(&[220]);
        harness
    }

    /// A session where `user` has logged in, sharing its uploads through
    /// `recent`.
    pub fn logged_in_sharing(
        config: Config,
        recent: &std::sync::Arc<ftprelay_proto::RecentUploads>,
        user: &str,
    ) -> Self {
        let adapter = SimulatedAdapter::with_addresses(config, origin(), addr(RELAY), addr(CLIENT));
        let mut harness = Self {
            adapter: adapter.manual().with_recent_uploads(recent.clone()),
            seen: 0,
        };
        harness.expect_replies(&[220]);
        harness.login(user, "secret");
        harness
    }

    /// A session that offers TLS (the adapter has a certificate).
    pub fn offering_tls(config: Config) -> Self {
        let adapter = SimulatedAdapter::with_addresses(config, origin(), addr(RELAY), addr(CLIENT));
        let mut harness = Self {
            adapter: adapter.manual().with_tls_offered(),
            seen: 0,
        };
        harness.expect_replies(&[220]);
        harness
    }

    /// A session where `bob` has logged in.
    pub fn logged_in(config: Config) -> Self {
        let mut harness = Self::with_config(config);
        harness.login("bob", "secret");
        harness
    }

    /// A session where `bob` has logged in, with a store-and-forward
    /// processor (a queue): uploads are admitted, held ones kept.
    pub fn logged_in_storing(config: Config) -> Self {
        let mut harness = Self::with_config(config);
        harness.login_with(
            "bob",
            "secret",
            LoginVerdict::Accepted {
                profile: None,
                store_and_forward: true,
            },
        );
        harness
    }

    pub fn login(&mut self, user: &str, password: &str) {
        self.login_with(user, password, LoginVerdict::ACCEPTED);
    }

    /// USER and PASS, the check answered with `verdict` (an acceptance).
    pub fn login_with(&mut self, user: &str, password: &str, verdict: LoginVerdict) {
        self.send(&format!("USER {user}\r\n"));
        self.expect_replies(&[331]);
        self.send(&format!("PASS {password}\r\n"));
        self.expect_login_check(user);
        self.adapter.handle(Input::LoginChecked(verdict));
        self.expect_replies(&[230]);
    }

    pub fn wants_control_bytes(&self) -> bool {
        self.adapter.session.wants_control_bytes()
    }

    pub fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.adapter.handle(Input::ControlBytes(bytes));
    }

    pub fn input(&mut self, input: Input<'_>) {
        self.adapter.handle(input);
    }

    pub fn data(&mut self, event: DataEvent) {
        self.adapter.handle(Input::Data(event));
    }

    pub fn advance(&mut self, by: Duration) {
        self.adapter.advance(by);
    }

    /// The outputs since the last call.
    pub fn take(&mut self) -> Vec<Output> {
        let new = self.adapter.outputs[self.seen..].to_vec();
        self.seen = self.adapter.outputs.len();
        new
    }

    /// The reply codes among the outputs since the last call.
    pub fn replies(&mut self) -> Vec<u16> {
        codes(&self.take())
    }

    #[track_caller]
    pub fn expect_replies(&mut self, expected: &[u16]) {
        assert_eq!(self.replies(), expected);
    }

    /// The outputs since the last call: these replies, and then the
    /// control connection closed.
    #[track_caller]
    pub fn expect_replies_then_close(&mut self, expected: &[u16]) {
        let outputs = self.take();
        assert_eq!(codes(&outputs), expected);
        assert_eq!(outputs.last(), Some(&Output::CloseControl));
    }

    #[track_caller]
    pub fn expect_login_check(&mut self, user: &str) {
        match self.take().as_slice() {
            [Output::CheckLogin(login)] => assert_eq!(login.user(), user.as_bytes()),
            other => panic!("expected a login check, got {other:?}"),
        }
    }

    pub fn reject_login(&mut self) {
        self.adapter
            .handle(Input::LoginChecked(LoginVerdict::Rejected));
    }

    /// PASV answered by a listener on port 50000: returns the 227 text.
    pub fn pasv(&mut self) -> String {
        self.send("PASV\r\n");
        assert_eq!(self.take(), vec![Output::Listen]);
        self.data(DataEvent::Listening(addr("127.0.0.1:50000")));
        let outputs = self.take();
        match outputs.as_slice() {
            [Output::Reply(reply)] if reply.code().as_u16() == 227 => reply.text().to_owned(),
            other => panic!("expected 227, got {other:?}"),
        }
    }

    /// The client's data connection arrives from `peer`: accepted or not.
    pub fn connect_from(&mut self, peer: &str) -> Vec<Output> {
        self.data(DataEvent::Connected { peer: addr(peer) });
        self.take()
    }

    pub fn transfer_ended(&mut self, upload: TransferId, end: TransferEnd) {
        self.data(DataEvent::TransferEnded { upload, end });
    }

    pub fn processed(&mut self, upload: TransferId, result: Result<(), ProcessError>) {
        self.input(Input::Processed { upload, result });
    }

    /// STOR `name` over a fresh passive channel the client connected to
    /// early: returns the upload being received.
    pub fn receiving(&mut self, name: &str) -> TransferId {
        self.pasv();
        self.connect_from("127.0.0.1:40001");
        self.send(&format!("STOR {name}\r\n"));
        expect_receive(&self.take(), 150)
    }

    /// STOR over a fresh passive channel up to the moment the processor is
    /// asked: returns the upload and the request's file name.
    pub fn upload_until_processing(&mut self, name: &str, bytes: u64) -> (TransferId, Vec<u8>) {
        let upload = self.receiving(name);
        self.transfer_ended(upload, TransferEnd::Complete { bytes });
        let outputs = self.take();
        match outputs.as_slice() {
            [Output::CloseData, Output::Process(request)] => {
                assert_eq!(request.upload, upload);
                assert_eq!(request.size, bytes);
                (upload, request.file_name.to_vec())
            }
            other => panic!("expected the processor to be asked, got {other:?}"),
        }
    }

    pub fn wait_deadline(&mut self) -> Option<Instant> {
        match self.adapter.session.poll_output() {
            Output::Wait(deadline) => deadline,
            other => panic!("expected Wait, got {other:?}"),
        }
    }
}

/// The reply codes in `outputs`, in order.
pub fn codes(outputs: &[Output]) -> Vec<u16> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Reply(reply) => Some(reply.code().as_u16()),
            _ => None,
        })
        .collect()
}

/// Checks that `outputs` are the reply `code` then a Receive; returns its
/// upload.
#[track_caller]
pub fn expect_receive(outputs: &[Output], code: u16) -> TransferId {
    match outputs {
        [Output::Reply(reply), Output::Receive(request)] if reply.code().as_u16() == code => {
            request.upload
        }
        other => panic!("expected {code} then Receive, got {other:?}"),
    }
}
