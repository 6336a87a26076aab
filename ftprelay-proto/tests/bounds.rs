//! Hostile names and the bounds on what one session may make the relay
//! hold: escaping paths, NUL, deep and long folders, held and remembered
//! uploads.

mod support;

use ftprelay_proto::{Config, Output, ProcessRequest, Profile, TransferEnd};
use support::{Harness, codes};

fn devices() -> Config {
    support::config(|c| c.profile = Profile::Devices)
}

/// STOR `name` through to the processor's request.
fn processed_as(s: &mut Harness, name: &str) -> ProcessRequest {
    let upload = s.receiving(name);
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 3 });
    let outputs = s.take();
    let Some(Output::Process(request)) = outputs
        .into_iter()
        .find(|o| matches!(o, Output::Process(_)))
    else {
        panic!("{name:?} was not processed");
    };
    s.processed(request.upload, Ok(()));
    s.expect_replies(&[226]);
    request
}

#[test]
fn names_that_climb_after_trimming_stay_in_the_root() {
    let mut s = Harness::logged_in(devices());
    for (sent, path) in [
        ("/. ../. ../x.txt", "/x.txt"),
        ("a/\u{3000}../../../x.txt", "/x.txt"),
        ("a/..\u{3000}/b/x.txt", "/b/x.txt"),
        ("\u{FF0E}\u{FF0E}/\u{FF0E}\u{FF0E}/x.txt", "/x.txt"),
        ("a\u{FF0F}..\u{FF0F}x.txt", "/x.txt"),
        ("..\\..\\x.txt", "/x.txt"),
        (". .htaccess", "/htaccess"),
    ] {
        let request = processed_as(&mut s, sent);
        assert_eq!(
            String::from_utf8_lossy(&request.path),
            path,
            "{sent:?} was processed as {:?}",
            String::from_utf8_lossy(&request.path)
        );
    }
}

#[test]
fn the_strict_profile_stores_no_dotfile() {
    let mut s = Harness::logged_in(support::config(|_| {}));
    let request = processed_as(&mut s, ". .htaccess");
    assert_eq!(request.file_name.as_ref(), b"htaccess");
    let request = processed_as(&mut s, "\u{3000}.profile ");
    assert_eq!(request.file_name.as_ref(), b"profile");
    // A folder in disguise is still a folder: refused in the strict profile.
    s.send("STOR  ../x.txt\r\n");
    s.expect_replies(&[553]);
}

#[test]
fn a_name_with_a_nul_byte_is_553_in_every_profile() {
    for config in [support::config(|_| {}), devices()] {
        let mut s = Harness::logged_in(config);
        s.pasv();
        s.send_bytes(b"STOR a\0b.jpg\r\nRNFR a\0b\r\nCWD x\0\r\n");
        let codes = s.replies();
        assert_eq!(codes[0], 553, "{codes:?}");
        assert!(codes[1..].iter().all(|c| *c >= 500), "{codes:?}");
    }
}

#[test]
fn folders_have_a_depth_and_a_length_limit_and_pwd_stays_small() {
    let config = devices();
    let (depth, length) = (config.max_path_depth, config.max_path_length);
    let mut s = Harness::logged_in(config);
    for _ in 0..depth {
        s.send("CWD a\r\n");
        s.expect_replies(&[250]);
    }
    s.send("CWD a\r\nMKD a\r\nSTOR a\r\n");
    s.expect_replies(&[550, 550, 553]);
    // 300 long CWDs: the working folder, and so PWD, stays bounded.
    s.send("CWD /\r\n");
    s.expect_replies(&[250]);
    let long = "b".repeat(200);
    let mut refused = 0;
    for _ in 0..300 {
        s.send(&format!("CWD {long}/{long}\r\n"));
        if s.replies() == [550] {
            refused += 1;
        }
    }
    assert!(refused >= 290, "only {refused} refused");
    s.send("PWD\r\n");
    let outputs = s.take();
    let [Output::Reply(pwd)] = outputs.as_slice() else {
        panic!("{outputs:?}");
    };
    assert_eq!(pwd.code().as_u16(), 257);
    let size = pwd.to_bytes().len();
    assert!(size <= length + 64, "PWD reply of {size} bytes");
    assert!(
        size > 400,
        "the folder was not entered at all: {size} bytes"
    );
    // The worst case: every byte a quote, which the reply doubles.
    s.send("CWD /\r\n");
    s.expect_replies(&[250]);
    let quotes = "\"".repeat(200);
    for _ in 0..10 {
        s.send(&format!("CWD {quotes}\r\n"));
        s.take();
    }
    s.send("PWD\r\n");
    let outputs = s.take();
    let [Output::Reply(pwd)] = outputs.as_slice() else {
        panic!("{outputs:?}");
    };
    let size = pwd.to_bytes().len();
    assert!(size <= 2 * length + 64, "PWD reply of {size} bytes");
    assert!(
        size > 1500,
        "the quoted folders were not entered: {size} bytes"
    );
}

#[test]
fn held_uploads_are_bounded_in_number_and_bytes() {
    let mut s = Harness::logged_in(support::config(|c| {
        c.profile = Profile::Devices;
        c.max_held_uploads = 3;
        c.max_held_bytes = 100;
    }));
    for name in ["a.tmp", "b.tmp"] {
        let upload = s.receiving(name);
        s.transfer_ended(upload, TransferEnd::Complete { bytes: 30 });
        assert_eq!(codes(&s.take()), vec![226]);
    }
    // The third may have what is left of the 100 bytes: 40.
    s.pasv();
    s.connect_from("127.0.0.1:40001");
    s.send("STOR c.tmp\r\n");
    let outputs = s.take();
    let Some(Output::Receive(request)) = outputs.iter().find(|o| matches!(o, Output::Receive(_)))
    else {
        panic!("{outputs:?}");
    };
    assert_eq!(request.max_size, 40);
    let upload = request.upload;
    s.transfer_ended(upload, TransferEnd::TooLarge);
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![552]);
    assert!(outputs.contains(&Output::Discard(upload)));
    let upload = s.receiving("c.tmp");
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 40 });
    assert_eq!(codes(&s.take()), vec![226]);
    // A fourth held upload is refused before any data connection.
    s.send("STOR d.tmp\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![452]);
    assert!(!outputs.iter().any(|o| matches!(o, Output::Receive(_))));
    // Renaming one frees its place; a final name is never held.
    s.send("RNFR a.tmp\r\nRNTO a.jpg\r\n");
    let outputs = s.take();
    let Some(Output::Process(request)) = outputs.last() else {
        panic!("{outputs:?}");
    };
    s.processed(request.upload, Ok(()));
    s.expect_replies(&[250]);
    let upload = s.receiving("d.tmp");
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 1 });
    assert_eq!(codes(&s.take()), vec![226]);
}

#[test]
fn remembered_files_are_bounded() {
    let config = devices();
    let most = config.max_remembered_files;
    let mut s = Harness::logged_in(config);
    for n in 0..most + 20 {
        processed_as(&mut s, &format!("f{n}.jpg"));
    }
    s.send(&format!(
        "SIZE f0.jpg\r\nSIZE f19.jpg\r\nSIZE f20.jpg\r\nSIZE f{}.jpg\r\n",
        most + 19
    ));
    s.expect_replies(&[550, 550, 213, 213]);
}

#[test]
fn a_client_that_does_not_read_its_replies_holds_a_bounded_backlog() {
    let config = support::config(|_| {});
    let (bound, pending) = (config.max_unwritten_replies, config.max_pending_input);
    let one_reply = {
        let mut s = Harness::logged_in(config.clone());
        s.send("HELP\r\n");
        reply_bytes(&s.take())
    };
    let mut s = Harness::logged_in(config);
    s.input(ftprelay_proto::Input::Unwritten(0));
    // Far more HELP than fits, and the adapter writes nothing meanwhile.
    let (mut emitted, mut sent) = (0, 0);
    while s.wants_control_bytes() && sent < 100_000 {
        s.send("HELP\r\n");
        sent += 1;
        emitted += reply_bytes(&s.take());
    }
    assert!(sent < 100_000, "the session never stopped reading");
    assert!(
        emitted <= bound + one_reply,
        "{emitted} reply bytes emitted unwritten"
    );
    assert!(sent * 6 <= bound + pending, "{sent} lines taken in");
    // Once the client reads, every line is answered, once.
    let mut answered = emitted;
    for _ in 0..1000 {
        s.input(ftprelay_proto::Input::Unwritten(0));
        let more = reply_bytes(&s.take());
        if more == 0 {
            break;
        }
        answered += more;
    }
    assert_eq!(answered, sent * one_reply);
}

fn reply_bytes(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .map(|o| match o {
            Output::Reply(reply) => reply.to_bytes().len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn a_temporary_name_with_invisible_characters_is_held_like_its_safe_name() {
    let mut s = Harness::logged_in(devices());
    for name in [
        "snap.tmp\u{200B}",
        "\u{FEFF}.in.scan.pdf.",
        "clip\u{202E}.part",
    ] {
        let upload = s.receiving(name);
        s.transfer_ended(upload, TransferEnd::Complete { bytes: 3 });
        let outputs = s.take();
        assert_eq!(codes(&outputs), vec![226], "{name:?}");
        assert!(
            !outputs.iter().any(|o| matches!(o, Output::Process(_))),
            "{name:?} was processed, not held for its rename"
        );
    }
}
