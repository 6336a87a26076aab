//! The data channel: PORT/EPRT out, PASV/EPSV listeners, the peer check,
//! what happens when no data connection comes, IPv6.
//! In memory, with a virtual clock.

mod support;

use std::time::Duration;

use ftprelay_proto::{Config, DataEvent, Input, LoginVerdict, Output, TransferEnd};
use support::{Harness, addr, codes, expect_receive};

#[test]
fn port_connects_out_after_150() {
    let mut s = Harness::logged_in(Config::default());
    s.send("PORT 127,0,0,1,156,64\r\n");
    s.expect_replies(&[200]);
    s.send("STOR a.jpg\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![150]);
    assert_eq!(outputs[1], Output::Connect(addr("127.0.0.1:40000")));
    let outputs = s.connect_from("127.0.0.1:40000");
    assert_eq!(outputs[0], Output::AcceptDataConnection);
    let upload = match &outputs[1] {
        Output::Receive(request) => request.upload,
        other => panic!("expected Receive, got {other:?}"),
    };
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 5 });
    assert!(matches!(
        s.take().as_slice(),
        [Output::CloseData, Output::Process(_)]
    ));
    s.processed(upload, Ok(()));
    s.expect_replies(&[226]);
}

#[test]
fn a_failed_active_connect_is_425() {
    let mut s = Harness::logged_in(Config::default());
    s.send("EPRT |1|127.0.0.1|40000|\r\n");
    s.expect_replies(&[200]);
    s.send("STOR a.jpg\r\n");
    assert_eq!(s.replies(), vec![150]);
    s.data(DataEvent::ConnectFailed);
    s.expect_replies(&[425]);
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[425]);
}

#[test]
fn port_and_eprt_refuse_third_hosts_and_privileged_ports() {
    let mut s = Harness::logged_in(Config::default());
    for line in [
        "PORT 127,0,0,2,156,64",
        "PORT 10,0,0,1,156,64",
        "PORT 127,0,0,1,0,21",
        "PORT 127,0,0,1,0,25",
        "EPRT |1|127.0.0.2|40000|",
        "EPRT |1|127.0.0.1|1023|",
        "EPRT |2|::1|40000|",
    ] {
        s.send(&format!("{line}\r\n"));
        let outputs = s.take();
        assert_eq!(codes(&outputs), vec![501], "{line}");
    }
    // Nothing was set up: STOR has no data channel.
    s.send("STOR x\r\n");
    s.expect_replies(&[425]);
}

#[test]
fn a_passive_connection_from_another_address_is_refused_and_the_right_peer_still_served() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[150]);
    assert_eq!(
        s.connect_from("127.0.0.2:40001"),
        vec![Output::RefuseDataConnection]
    );
    let outputs = s.connect_from("127.0.0.1:40001");
    assert_eq!(outputs[0], Output::AcceptDataConnection);
    assert!(matches!(outputs[1], Output::Receive(_)));
}

#[test]
fn the_peer_check_can_be_switched_off_for_nat() {
    let config = support::config(|c| c.data_peer_must_match = false);
    let mut s = Harness::logged_in(config);
    s.pasv();
    assert_eq!(
        s.connect_from("172.17.0.1:40001"),
        vec![Output::AcceptDataConnection]
    );
}

#[test]
fn an_early_data_connection_is_kept_for_the_stor() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    assert_eq!(
        s.connect_from("127.0.0.1:40001"),
        vec![Output::AcceptDataConnection]
    );
    // A second connection on the same listener is one too many.
    assert_eq!(
        s.connect_from("127.0.0.1:40002"),
        vec![Output::RefuseDataConnection]
    );
    s.send("STOR /tmp.jpg\r\n");
    expect_receive(&s.take(), 150);
}

#[test]
fn a_passive_listener_survives_other_commands_and_is_released_on_timeout() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.send("CWD /\r\nTYPE I\r\nNOOP\r\n");
    s.expect_replies(&[250, 200, 200]);
    s.advance(Duration::from_secs(29));
    assert_eq!(s.take(), vec![]);
    s.send("STOR a.jpg\r\n");
    assert_eq!(s.replies(), vec![150]);
    let outputs = s.connect_from("127.0.0.1:40001");
    assert!(matches!(outputs[1], Output::Receive(_)));

    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.advance(Duration::from_secs(30));
    assert_eq!(s.take(), vec![Output::CloseData]);
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[425]);
}

#[test]
fn no_data_connection_after_stor_is_425() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[150]);
    s.advance(Duration::from_secs(30));
    let outputs = s.take();
    assert_eq!(outputs[0], Output::CloseData);
    assert_eq!(codes(&outputs), vec![425]);
}

#[test]
fn stor_without_a_data_channel_is_425() {
    let mut s = Harness::logged_in(Config::default());
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[425]);
}

#[test]
fn a_listener_that_cannot_open_is_425() {
    let mut s = Harness::logged_in(Config::default());
    s.send("EPSV\r\n");
    assert_eq!(s.take(), vec![Output::Listen]);
    s.data(DataEvent::ListenFailed);
    s.expect_replies(&[425]);
}

#[test]
fn epsv_all_locks_out_the_other_data_commands() {
    let mut s = Harness::logged_in(Config::default());
    s.send("EPSV ALL\r\nPASV\r\nPORT 127,0,0,1,156,64\r\nEPRT |1|127.0.0.1|40000|\r\n");
    s.expect_replies(&[200, 503, 503, 503]);
    s.send("EPSV\r\n");
    assert_eq!(s.take(), vec![Output::Listen]);
}

#[test]
fn epsv_replies_with_the_port_only() {
    let mut s = Harness::logged_in(Config::default());
    s.send("EPSV\r\n");
    assert_eq!(s.take(), vec![Output::Listen]);
    s.data(DataEvent::Listening(addr("127.0.0.1:50123")));
    let outputs = s.take();
    let [Output::Reply(reply)] = outputs.as_slice() else {
        panic!("expected 229");
    };
    assert_eq!(
        reply.to_bytes(),
        b"229 Entering Extended Passive Mode (|||50123|)\r\n"
    );
    s.send("EPSV 2\r\n");
    s.expect_replies(&[522]);
}

#[test]
fn ipv6_sessions_use_epsv_and_eprt() {
    let mut s = Harness::with_addresses(Config::default(), "[::1]:2121", "[::1]:40000");
    s.login("bob", "secret");
    s.send("PASV\r\nEPSV 1\r\nEPRT |2|::1|40000|\r\nPORT 127,0,0,1,156,64\r\n");
    s.expect_replies(&[425, 522, 200, 501]);
    s.send("EPSV 2\r\n");
    // The PORT channel is replaced by the new listener.
    assert_eq!(s.take(), vec![Output::CloseData, Output::Listen]);
    s.data(DataEvent::Listening(addr("[::1]:50000")));
    s.expect_replies(&[229]);
    assert_eq!(
        s.connect_from("[::1]:40001"),
        vec![Output::AcceptDataConnection]
    );
}

#[test]
fn ipv4_mapped_peers_compare_as_ipv4() {
    let mut s = Harness::with_addresses(
        Config::default(),
        "[::ffff:127.0.0.1]:2121",
        "[::ffff:127.0.0.1]:40000",
    );
    s.login("bob", "secret");
    assert_eq!(s.pasv(), "Entering Passive Mode (127,0,0,1,195,80).");
    assert_eq!(
        s.connect_from("127.0.0.1:40001"),
        vec![Output::AcceptDataConnection]
    );
    s.send("PORT 127,0,0,1,156,64\r\n");
    s.expect_replies(&[200]);
}

#[test]
fn the_advertised_passive_address_is_used_in_227() {
    let config = support::config(|c| {
        c.passive_address =
            ftprelay_proto::PublicAddress::new(Some("203.0.113.7".parse().expect("ip")));
    });
    let mut s = Harness::logged_in(config);
    assert_eq!(s.pasv(), "Entering Passive Mode (203,0,113,7,195,80).");
}

#[test]
fn pasv_on_ipv6_needs_an_address_for_this_client_not_for_some_network() {
    // An override for another network gives this IPv6 client no IPv4
    // address: PASV is refused, never answered with 0.0.0.0.
    let elsewhere = ftprelay_proto::PublicAddress::new(None).with_override(
        "192.168.0.0/16".parse().expect("cidr"),
        "192.168.0.1".parse().expect("ip"),
    );
    let config = support::config(|c| c.passive_address = elsewhere.clone());
    let mut s = Harness::with_addresses(config, "[::1]:2121", "[::1]:40000");
    s.login("bob", "secret");
    s.send("PASV\r\n");
    s.expect_replies(&[425]);
    // One for everyone: then PASV works on IPv6 too, with that address.
    let everyone = ftprelay_proto::PublicAddress::new(Some("203.0.113.7".parse().expect("ip")));
    let config = support::config(|c| c.passive_address = everyone.clone());
    let mut s = Harness::with_addresses(config, "[::1]:2121", "[::1]:40000");
    s.login("bob", "secret");
    assert_eq!(s.pasv(), "Entering Passive Mode (203,0,113,7,195,80).");
}

#[test]
fn a_stale_connect_failure_changes_nothing() {
    // During a login check.
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS secret\r\n");
    s.take();
    s.data(DataEvent::ConnectFailed);
    assert_eq!(s.take(), vec![]);
    s.input(Input::LoginChecked(LoginVerdict::ACCEPTED));
    s.expect_replies(&[230]);
    // During processing, and during a passive upload.
    let (upload, _) = s.upload_until_processing("a.jpg", 3);
    s.data(DataEvent::ConnectFailed);
    assert_eq!(s.take(), vec![]);
    s.processed(upload, Ok(()));
    s.expect_replies(&[226]);
    let upload = s.receiving("b.jpg");
    s.data(DataEvent::ConnectFailed);
    assert_eq!(s.take(), vec![]);
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 1 });
    assert!(matches!(
        s.take().as_slice(),
        [Output::CloseData, Output::Process(_)]
    ));
}

#[test]
fn a_listener_reported_after_the_listen_timed_out_is_released() {
    let mut s = Harness::logged_in(Config::default());
    s.send("PASV\r\n");
    assert_eq!(s.take(), vec![Output::Listen]);
    s.advance(Duration::from_secs(30));
    s.expect_replies(&[425]);
    s.data(DataEvent::Listening(addr("127.0.0.1:50000")));
    assert_eq!(s.take(), vec![Output::CloseData]);
}
