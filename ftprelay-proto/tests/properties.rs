//! Property tests. The properties themselves live in
//! `ftprelay_proto::fuzzing`, shared with the cargo-fuzz targets.

mod support;

use bytes::Bytes;
use ftprelay_proto::fuzzing::{self, SimulatedAdapter};
use ftprelay_proto::{Arg, Command, Config, EpsvArg, NetworkProtocol, Output};
use proptest::prelude::*;

/// Command lines a client might send: valid, invalid, hostile.
fn line() -> impl Strategy<Value = String> {
    let verbs = prop::sample::select(vec![
        "USER bob",
        "PASS secret",
        "PASS",
        "PASV",
        "EPSV",
        "EPSV ALL",
        "EPSV 1",
        "PORT 127,0,0,1,156,64",
        "PORT 127,0,0,2,156,64",
        "EPRT |1|127.0.0.1|40000|",
        "TYPE I",
        "type a",
        "TYPE X",
        "MODE S",
        "STRU F",
        "ALLO 10",
        "REST 0",
        "REST 9",
        "STOR a.jpg",
        "STOR fail.jpg",
        "STOR sub/x",
        "STOU",
        "RETR a",
        "LIST",
        "NLST -la",
        "DELE a",
        "MKD d",
        "RNFR a",
        "RNTO b",
        "SITE CHMOD 644 a",
        "APPE a",
        "SIZE a",
        "MDTM a",
        "CWD /",
        "CWD sub",
        "CDUP",
        "PWD",
        "XPWD",
        "NOOP",
        "SYST",
        "FEAT",
        "HELP",
        "STAT",
        "OPTS UTF8 ON",
        "AUTH TLS",
        "PBSZ 0",
        "PROT P",
        "ABOR",
        "REIN",
        "FOO",
        "",
        "   ",
        "\u{00ff}\u{00ff}",
    ]);
    let noise = "[ -~]{0,20}";
    prop_oneof![
        6 => verbs.prop_map(str::to_owned),
        1 => noise.prop_map(|s| s.to_owned()),
        1 => (4090usize..4200).prop_map(|n| format!("STOR {}", "x".repeat(n))),
    ]
}

/// What devices send around their uploads.
fn device_line() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "CWD /NVR01",
        "CWD ..",
        "CDUP",
        "MKD 2024",
        "XMKD a\\b",
        "RMD a",
        "PWD",
        "XPWD",
        "PASV",
        "EPSV",
        "STOR a.jpg",
        "STOR cam_tmp.jpg",
        "STOR x.part",
        "STOR fail.tmp",
        "STOR /d/e.jpg",
        "APPE log.txt",
        "STOU",
        "SIZE a.jpg",
        "SIZE cam_tmp.jpg",
        "MDTM a.jpg",
        "LIST",
        "LIST -la",
        "NLST",
        "MLSD",
        "MLST a.jpg",
        "DELE cam_tmp.jpg",
        "DELE nothing",
        "RNFR cam_tmp.jpg",
        "RNFR x.part",
        "RNTO cam.jpg",
        "RNTO /z/fail.jpg",
        "SITE CHMOD 644 a.jpg",
        "TYPE i",
        "STRU R",
        "ALLO 10",
        "MFMT 20240101000000 a.jpg",
        "RETR a.jpg",
        "NOOP",
        "QUIT",
    ])
    .prop_map(str::to_owned)
}

fn session_text() -> impl Strategy<Value = (Vec<String>, bool)> {
    (prop::collection::vec(line(), 0..40), any::<bool>())
}

fn join(lines: &[String], bare_lf: bool) -> Vec<u8> {
    let end = if bare_lf { "\n" } else { "\r\n" };
    lines
        .iter()
        .flat_map(|l| format!("{l}{end}").into_bytes())
        .collect()
}

fn arg() -> impl Strategy<Value = Arg> {
    // No line ends (they end the line), no white space at either end (it is
    // trimmed), no CR anywhere.
    prop::collection::vec(
        any::<u8>().prop_filter("no CR or LF", |b| *b != b'\r' && *b != b'\n'),
        1..12,
    )
    .prop_filter("no white space at the ends", |v| {
        let edge = |b: &u8| matches!(b, b' ' | b'\t');
        !edge(&v[0]) && !edge(&v[v.len() - 1])
    })
    .prop_map(|v| Arg::new(Bytes::from(v)).expect("non-empty, no line end"))
}

fn token() -> impl Strategy<Value = Arg> {
    arg().prop_filter("one token", |a| !a.as_bytes().contains(&b' '))
}

fn command() -> impl Strategy<Value = Command> {
    use Command::*;
    prop_oneof![
        arg().prop_map(User),
        prop::collection::vec(any::<u8>(), 0..8)
            .prop_filter("a password", |v| {
                !v.contains(&b'\r')
                    && !v.contains(&b'\n')
                    && v.first() != Some(&b' ')
                    && v.first() != Some(&b'\t')
                    && v.last() != Some(&b' ')
                    && v.last() != Some(&b'\t')
            })
            .prop_map(|v| Pass(Bytes::from(v))),
        arg().prop_map(Stor),
        arg().prop_map(Cwd),
        prop::option::of(arg()).prop_map(List),
        prop::option::of(arg()).prop_map(Stou),
        any::<([u8; 4], u16)>()
            .prop_map(|(ip, port)| Port(std::net::SocketAddrV4::new(ip.into(), port))),
        any::<([u8; 4], u16)>().prop_map(|(ip, port)| Eprt((ip, port).into())),
        any::<([u16; 8], u16)>().prop_map(|(ip, port)| Eprt((ip, port).into())),
        any::<u64>().prop_map(Rest),
        (any::<u64>(), prop::option::of(any::<u64>()))
            .prop_map(|(size, record_size)| Allo { size, record_size }),
        any::<u32>().prop_map(Pbsz),
        prop::sample::select(vec![
            Pasv,
            Quit,
            Noop,
            Feat,
            Syst,
            Pwd,
            Xpwd,
            Cdup,
            Xcup,
            Abor,
            Rein,
            Ccc,
            Epsv(None),
            Epsv(Some(EpsvArg::All)),
            Epsv(Some(EpsvArg::Protocol(NetworkProtocol::Ipv4))),
            Epsv(Some(EpsvArg::Protocol(NetworkProtocol::Ipv6))),
        ]),
        (token(), prop::option::of(arg())).prop_map(|(command, options)| Opts { command, options }),
        ("[0-9]{14}", arg()).prop_map(|(time, path)| Mfmt {
            time: Arg::new(Bytes::from(time)).expect("digits"),
            path,
        }),
        ("[A-Z]{5,8}", prop::option::of(arg())).prop_map(|(verb, argument)| Unknown {
            verb: Arg::new(Bytes::from(verb)).expect("letters"),
            argument,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_panic_on_arbitrary_inputs_and_time(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::session(&data, support::origin());
    }

    #[test]
    fn no_panic_on_arbitrary_control_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut adapter = SimulatedAdapter::new(Config::default(), support::origin());
        adapter.handle(ftprelay_proto::Input::ControlBytes(&data));
    }

    #[test]
    fn exactly_one_final_reply_per_line((lines, bare_lf) in session_text()) {
        let mut adapter = SimulatedAdapter::new(Config::default(), support::origin());
        adapter.handle(ftprelay_proto::Input::ControlBytes(&join(&lines, bare_lf)));
        // Lines after QUIT are not answered: the connection is closed.
        let answered = lines
            .iter()
            .position(|l| l.eq_ignore_ascii_case("QUIT"))
            .map_or(lines.len(), |quit| quit + 1);
        prop_assert_eq!(adapter.final_replies(), answered);
    }

    #[test]
    fn exactly_one_final_reply_per_line_in_the_devices_profile(
        lines in prop::collection::vec(device_line(), 0..40),
    ) {
        let mut config = Config::default();
        config.profile = ftprelay_proto::Profile::Devices;
        let mut all = vec!["USER bob".to_owned(), "PASS secret".to_owned()];
        all.extend(lines);
        let mut adapter = SimulatedAdapter::new(config, support::origin());
        adapter.handle(ftprelay_proto::Input::ControlBytes(&join(&all, false)));
        let answered = all
            .iter()
            .position(|l| l.eq_ignore_ascii_case("QUIT"))
            .map_or(all.len(), |quit| quit + 1);
        prop_assert_eq!(adapter.final_replies(), answered);
    }

    #[test]
    fn every_hold_ends_in_exactly_one_process_or_discard(
        lines in prop::collection::vec(device_line(), 0..40),
        closed in any::<bool>(),
    ) {
        let mut config = Config::default();
        config.profile = ftprelay_proto::Profile::Devices;
        let mut all = vec!["USER bob".to_owned(), "PASS secret".to_owned()];
        all.extend(lines);
        let mut adapter = SimulatedAdapter::new(config, support::origin()).storing_and_forwarding();
        adapter.handle(ftprelay_proto::Input::ControlBytes(&join(&all, false)));
        let answered = all
            .iter()
            .position(|l| l.eq_ignore_ascii_case("QUIT"))
            .map_or(all.len(), |quit| quit + 1);
        prop_assert_eq!(adapter.final_replies(), answered);
        // However the client leaves, the held uploads are settled.
        adapter.handle(if closed {
            ftprelay_proto::Input::ControlClosed
        } else {
            ftprelay_proto::Input::ControlEof
        });
        prop_assert!(adapter.finished);
        let outputs = &adapter.outputs;
        for (at, output) in outputs.iter().enumerate() {
            if let Output::Hold(hold) = output {
                let settled = outputs[at + 1..]
                    .iter()
                    .filter(|o| match o {
                        Output::Process(request) => request.upload == hold.upload,
                        Output::Discard(upload) => *upload == hold.upload,
                        _ => false,
                    })
                    .count();
                prop_assert_eq!(settled, 1, "upload {} in {:?}", hold.upload, outputs);
            }
            if let Output::Receive(request) = output {
                let admitted = outputs[..at]
                    .iter()
                    .any(|o| *o == Output::CheckAdmission(request.upload));
                prop_assert!(admitted, "upload {} received unadmitted", request.upload);
            }
        }
    }

    #[test]
    fn a_full_queue_receives_nothing_and_answers_every_line(
        lines in prop::collection::vec(device_line(), 0..40),
    ) {
        let mut config = Config::default();
        config.profile = ftprelay_proto::Profile::Devices;
        let mut all = vec!["USER bob".to_owned(), "PASS secret".to_owned()];
        all.extend(lines);
        let mut adapter = SimulatedAdapter::new(config, support::origin()).with_full_queue();
        adapter.handle(ftprelay_proto::Input::ControlBytes(&join(&all, false)));
        let answered = all
            .iter()
            .position(|l| l.eq_ignore_ascii_case("QUIT"))
            .map_or(all.len(), |quit| quit + 1);
        prop_assert_eq!(adapter.final_replies(), answered);
        prop_assert!(!adapter.outputs.iter().any(|o| matches!(
            o,
            Output::Receive(_) | Output::Process(_) | Output::Hold(_)
        )));
    }

    #[test]
    fn outputs_do_not_depend_on_how_input_is_split(
        (lines, bare_lf) in session_text(),
        chunk in 1usize..64,
    ) {
        let data = join(&lines, bare_lf);
        fuzzing::split_independence(&data, support::origin());
        prop_assert_eq!(
            fuzzing::outputs_for_chunks(&data, data.len(), support::origin()),
            fuzzing::outputs_for_chunks(&data, chunk, support::origin())
        );
    }

    #[test]
    fn split_independence_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        fuzzing::split_independence(&data, support::origin());
    }

    #[test]
    fn a_denied_verb_never_produces_an_upload(
        denied in prop::collection::vec(prop::sample::select(vec![
            "RETR a", "LIST", "NLST", "MLSD", "MLST a", "SIZE a", "MDTM a", "DELE a", "RMD a",
            "MKD a", "XMKD a", "RNFR a", "RNTO b", "SITE X", "APPE a", "CWD sub",
        ]), 1..20),
    ) {
        let mut lines = vec!["USER bob".to_owned(), "PASS secret".to_owned()];
        for verb in denied {
            lines.push("PASV".to_owned());
            lines.push(verb.to_owned());
        }
        let mut adapter = SimulatedAdapter::new(Config::default(), support::origin());
        adapter.handle(ftprelay_proto::Input::ControlBytes(&join(&lines, false)));
        prop_assert!(!adapter.outputs.iter().any(|o| matches!(o, Output::Receive(_) | Output::Process(_))));
        let denials = adapter
            .outputs
            .iter()
            .filter(|o| matches!(o, Output::Reply(r) if r.code().as_u16() == 550))
            .count();
        prop_assert_eq!(denials, lines.len() / 2 - 1);
    }

    #[test]
    fn encode_then_parse_is_the_identity(command in command()) {
        let mut line = Vec::new();
        command.encode(&mut line);
        prop_assert!(line.ends_with(b"\r\n"));
        let line = Bytes::copy_from_slice(&line[..line.len() - 2]);
        prop_assert_eq!(Command::parse(&line), Ok(command));
    }

    #[test]
    fn parse_then_encode_then_parse_is_stable(data in prop::collection::vec(any::<u8>(), 0..80)) {
        fuzzing::parse_roundtrip(&data);
    }

    #[test]
    fn framing_is_split_independent_and_bounded(data in prop::collection::vec(any::<u8>(), 0..400)) {
        fuzzing::framer(&data);
    }
}

/// Path bytes a hostile client would try: separators and their full-width
/// forms, dots and their look-alikes, blanks of every kind, NUL, and any
/// byte at all.
fn path_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        "/",
        "\\",
        ".",
        "..",
        " ",
        "\t",
        "\u{3000}",
        "\u{A0}",
        "\u{200B}",
        "\u{FEFF}",
        "\u{FF0E}",
        "\u{2024}",
        "\u{2025}",
        "\u{2026}",
        "\u{FE52}",
        "\u{FF0F}",
        "\u{FF3C}",
        "a",
        "x.txt",
        "\u{202E}",
        "\u{115F}",
        "\u{3164}",
        "\u{E0001}",
        "\u{FE0F}",
        "\0",
        "\u{1}",
    ]);
    let piece = prop_oneof![
        4 => pieces.prop_map(|p| p.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn resolved_paths_stay_strictly_beneath(cwd in path_bytes(), path in path_bytes()) {
        fuzzing::path_stays_beneath(&cwd, &path);
    }
}
