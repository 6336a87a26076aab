//! Every flag of a relay from an environment variable (`FTPRELAY_*`, as
//! containers are configured), the flag winning over its variable, and
//! `--exec` commands that see the upload's variables and none of the
//! relay's own (which may hold passwords).

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use support::{BIN, Relay, assert_fails, stderr, upload};

/// The `[env: NAME=]` names of `ftprelay --help`.
fn variables_in_help() -> Vec<String> {
    let output = Command::new(BIN).arg("--help").output().expect("help");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("utf-8");
    help.match_indices("[env: ")
        .map(|(at, _)| {
            let rest = &help[at + 6..];
            rest[..rest.find('=').expect("NAME=")].to_owned()
        })
        .collect()
}

#[test]
fn every_flag_has_its_own_variable_and_none_is_an_upload_variable() {
    let names = variables_in_help();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "a name twice: {names:?}");
    for expected in [
        "FTPRELAY_LISTEN",
        "FTPRELAY_USERS",
        "FTPRELAY_USERS_FILE",
        "FTPRELAY_QUEUE",
        "FTPRELAY_DIR",
        "FTPRELAY_MAIL_TO",
        "FTPRELAY_TLS_CERT",
    ] {
        assert!(
            unique.contains(&expected.to_owned()),
            "{expected} missing: {names:?}"
        );
    }
    for name in &names {
        assert!(name.starts_with("FTPRELAY_"), "{name}");
        assert!(
            !ftprelay_deliver::UPLOAD_VARIABLES.contains(&name.as_str()),
            "{name} would shadow an --exec command's variable"
        );
    }
    // Every long flag of the relay has one, but the counters and help.
    let help = Command::new(BIN).arg("--help").output().expect("help");
    let text = String::from_utf8(help.stdout).expect("utf-8");
    let flags = text
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with("--") || (line.starts_with('-') && line.contains(", --")))
        .filter(|line| {
            !["--verbose", "--quiet", "--help", "--version"]
                .iter()
                .any(|f| line.contains(f))
        })
        .count();
    assert_eq!(flags, names.len(), "{names:?}");
}

support::on_tokio_only!(
    a_relay_configured_by_its_environment_alone_delivers({
        let out = tempfile::tempdir().expect("out");
        let relay = Relay::start_with_env(
            &[],
            &[
                ("FTPRELAY_USERS", "cam:pw"),
                ("FTPRELAY_DIR", out.path().to_str().expect("path")),
                ("FTPRELAY_MAX_FILE_SIZE", "1K"),
            ],
        );
        let output = upload(&relay, "cam:pw", "snap.jpg", b"from the environment");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            std::fs::read(out.path().join("snap.jpg")).expect("delivered"),
            b"from the environment"
        );
        // FTPRELAY_MAX_FILE_SIZE holds: 2 KiB is refused.
        let output = upload(&relay, "cam:pw", "big.jpg", &[b'x'; 2048]);
        assert!(
            !output.status.success(),
            "over the limit from the environment"
        );
    }),
    a_flag_wins_over_its_variable({
        let out = tempfile::tempdir().expect("out");
        let relay = Relay::start_with_env(
            &["--user", "cam:pw", "--max-file-size", "1M"],
            &[
                ("FTPRELAY_DIR", out.path().to_str().expect("path")),
                ("FTPRELAY_MAX_FILE_SIZE", "1"),
            ],
        );
        let output = upload(&relay, "cam:pw", "snap.jpg", &[b'x'; 4096]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            std::fs::read(out.path().join("snap.jpg"))
                .expect("delivered")
                .len(),
            4096
        );
    }),
    an_exec_command_sees_the_uploads_variables_and_none_of_the_relays({
        let out = tempfile::tempdir().expect("out");
        let seen = out.path().join("seen");
        let command = format!("env | grep ^FTPRELAY_ | sort > {}", seen.display());
        let relay = Relay::start_with_env(
            &["--exec", &command],
            &[
                ("FTPRELAY_USERS", "cam:s3cret-pw"),
                ("FTPRELAY_IDLE_TIMEOUT", "120"),
            ],
        );
        let output = upload(&relay, "cam:s3cret-pw", "a.txt", b"hello");
        assert!(output.status.success(), "{}", stderr(&output));
        let text = std::fs::read_to_string(&seen).expect("the command ran");
        let names: BTreeSet<&str> = text
            .lines()
            .filter_map(|line| line.split_once('=').map(|(name, _)| name))
            .collect();
        let expected: BTreeSet<&str> = ftprelay_deliver::UPLOAD_VARIABLES.into_iter().collect();
        assert_eq!(names, expected, "{text}");
        assert!(text.contains("FTPRELAY_USER=cam\n"), "{text}");
        assert!(
            !text.contains("s3cret"),
            "the relay's password leaked: {text}"
        );
    }),
);

#[test]
fn a_switch_from_the_environment_takes_the_usual_spellings() {
    for (value, on) in [
        ("true", true),
        ("1", true),
        ("yes", true),
        ("on", true),
        ("0", false),
        ("false", false),
        ("no", false),
    ] {
        // --anonymous is the only user: off, the relay has none and says so.
        let output = Command::new(BIN)
            // Not an address of this host: a started relay exits at once.
            .args(["--discard", "--listen", "192.0.2.1:2121"])
            .env("FTPRELAY_ANONYMOUS", value)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let text = stderr(&output);
        assert_eq!(!text.contains("no users"), on, "{value}: {text}");
    }
    let output = Command::new(BIN)
        .args(["--discard"])
        .env("FTPRELAY_ANONYMOUS", "maybe")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_fails(&output, 2, "--anonymous");
}

#[test]
fn a_bad_value_in_a_variable_is_a_one_line_error() {
    let output = Command::new(BIN)
        .args(["--discard", "--anonymous"])
        .env("FTPRELAY_MAX_CONNECTIONS", "many")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_fails(&output, 2, "--max-connections");
}
