//! `--public-address`: what a `227` reply advertises, by client network
//! (`CIDR=IP`, the first match winning), else one address for everyone,
//! given as an IPv4 address or a host name; bad values are one-line errors.

mod support;

use std::process::Command;

use support::{Relay, assert_fails, ftprelay, stderr};

/// The `227` reply a client from `source` gets from `relay`.
fn pasv_from(relay: &Relay, source: &str) -> String {
    let script = "import ftplib, sys\n\
        f = ftplib.FTP(source_address=(sys.argv[2], 0))\n\
        f.connect('127.0.0.1', int(sys.argv[1]))\n\
        f.login('cam', 'pw')\n\
        print(f.sendcmd('PASV'))\n\
        f.quit()\n";
    let output = Command::new("python3")
        .args(["-c", script, &relay.port(), source])
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A relay that discards, advertising `values` (each one `--public-address`).
fn advertising(values: &[&str]) -> Relay {
    let mut args = vec!["--user", "cam:pw", "--discard"];
    for value in values {
        args.extend(["--public-address", value]);
    }
    Relay::start(&args)
}

support::on_tokio_only!(
    each_network_gets_its_address_and_the_rest_the_default({
        let relay = advertising(&[
            "203.0.113.7",
            "127.0.0.2/32=10.9.9.9",
            "127.0.0.0/8=10.1.2.3",
        ]);
        let reply = pasv_from(&relay, "127.0.0.2");
        assert!(
            reply.starts_with("227") && reply.contains("(10,9,9,9,"),
            "{reply}"
        );
        let reply = pasv_from(&relay, "127.0.0.1");
        assert!(reply.contains("(10,1,2,3,"), "{reply}");
        // Blanks around the parts are the value's, not the address's.
        let relay = advertising(&[" 127.0.0.0/8 = 10.4.5.6 "]);
        let reply = pasv_from(&relay, "127.0.0.1");
        assert!(reply.contains("(10,4,5,6,"), "{reply}");
        let relay = advertising(&["203.0.113.7"]);
        let reply = pasv_from(&relay, "127.0.0.1");
        assert!(reply.contains("(203,0,113,7,"), "{reply}");
    }),
    a_host_name_is_resolved_to_its_ipv4_address({
        let relay = advertising(&["localhost"]);
        let reply = pasv_from(&relay, "127.0.0.1");
        assert!(reply.contains("(127,0,0,1,"), "{reply}");
    }),
);

#[test]
fn bad_public_addresses_are_one_line_errors() {
    for (value, says) in [
        ("::1", "PASV replies carry IPv4 only"),
        ("no-such-host.invalid", "cannot resolve it"),
        (
            "10.0.0.0/33=1.2.3.4",
            "--public-address 10.0.0.0/33=1.2.3.4",
        ),
        ("10.0.0.0/8=::1", "not an IPv4 address after ="),
        ("0.0.0.0", "0.0.0.0 is no address a client can reach"),
        (
            "10.0.0.0/8=0.0.0.0",
            "0.0.0.0 is no address a client can reach",
        ),
        ("", "--public-address : empty"),
        ("   ", "empty"),
    ] {
        let output = ftprelay(&["--anonymous", "--discard", "--public-address", value], "");
        assert_fails(&output, 2, says);
    }
    let output = ftprelay(
        &[
            "--anonymous",
            "--discard",
            "--public-address",
            "203.0.113.7",
            "--public-address",
            "203.0.113.8",
        ],
        "",
    );
    assert_fails(&output, 2, "a second address for every client");
}
