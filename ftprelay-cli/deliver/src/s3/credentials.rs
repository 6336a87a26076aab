//! Who the S3 destination signs as, in which region, at which endpoint:
//! the standard AWS environment variables and shared files, read as the
//! AWS CLI and SDKs read them, so that a machine set up for `aws s3 cp`
//! is set up for ftprelay.
//!
//! Only static keys are supported (a key id, its secret, maybe a session
//! token): a profile that gets its keys from elsewhere (`credential_process`,
//! SSO, a role to assume) is an error naming what it uses, never silently
//! ignored.

use std::fmt;
use std::path::{Path, PathBuf};

use super::S3Error;

/// An access key: its id, its secret and, for temporary keys, the session
/// token. Printed (`Debug`) without the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    /// A long-term key: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// The same key with a session token (`AWS_SESSION_TOKEN`), as
    /// temporary keys have.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// The key's id, which is not secret (it is in every request).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub(super) fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    pub(super) fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// What the AWS environment says about S3: credentials, region, endpoint,
/// each `None` where it says nothing.
///
/// Read by [`AwsSettings::from_environment`], in the SDKs' order:
///
/// - credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and
///   `AWS_SESSION_TOKEN`); else the profile's `aws_access_key_id`,
///   `aws_secret_access_key` (and `aws_session_token`) in the credentials
///   file, then in the config file. A profile or credentials file named by
///   the caller (a flag) wins over the key variables.
/// - region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`.
/// - endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's
///   `endpoint_url`.
/// - the profile: the caller's, else `AWS_PROFILE`, else `default`; the
///   files: `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`)
///   and `AWS_CONFIG_FILE` (default `~/.aws/config`, where a profile's
///   section is `[profile NAME]`). A missing file says nothing; a profile
///   that was asked for by name and is in neither file is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// The access key, if any was found.
    pub credentials: Option<Credentials>,
    /// The region, if any was set.
    pub region: Option<String>,
    /// The endpoint URL, if any was set (MinIO, Garage, Ceph…).
    pub endpoint: Option<String>,
}

impl AwsSettings {
    /// Reads this process's environment and the files it names. `profile`
    /// (a flag) overrides `AWS_PROFILE`; `credentials_file` (a flag)
    /// overrides `AWS_SHARED_CREDENTIALS_FILE` and must exist. Either, when
    /// given, also wins over `AWS_ACCESS_KEY_ID`.
    pub fn from_environment(
        profile: Option<&str>,
        credentials_file: Option<&Path>,
    ) -> Result<Self, S3Error> {
        Self::load(
            &|name| std::env::var(name).ok().filter(|value| !value.is_empty()),
            profile,
            credentials_file,
        )
    }

    /// [`AwsSettings::from_environment`] with the variables of `env`.
    fn load(
        env: &dyn Fn(&str) -> Option<String>,
        profile: Option<&str>,
        credentials_file: Option<&Path>,
    ) -> Result<Self, S3Error> {
        let home = env("HOME").map(PathBuf::from);
        let in_home = |rest: &str| home.as_ref().map(|home| home.join(".aws").join(rest));
        let config_path = env("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| in_home("config"));
        let credentials_path = match credentials_file {
            Some(path) => Some(path.to_owned()),
            None => env("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| in_home("credentials")),
        };
        let config = read_ini(config_path.as_deref(), false)?;
        let credentials_ini = read_ini(credentials_path.as_deref(), credentials_file.is_some())?;

        let (name, named) = match profile {
            Some(name) => (name.to_owned(), true),
            // `AWS_PROFILE=default` with no files is no error, as for
            // the AWS CLI.
            None => match env("AWS_PROFILE") {
                Some(name) => {
                    let named = name != "default";
                    (name, named)
                }
                None => ("default".to_owned(), false),
            },
        };
        let in_config = config.section(&if name == "default" {
            "default".to_owned()
        } else {
            format!("profile {name}")
        });
        // The default profile may also be `[profile default]`.
        let in_config = in_config.or_else(|| {
            (name == "default")
                .then(|| config.section("profile default"))
                .flatten()
        });
        let in_credentials = credentials_ini.section(&name);
        if named && in_config.is_none() && in_credentials.is_none() {
            return Err(S3Error::new(format!(
                "the AWS profile {name:?} is in neither {} nor {}",
                shown(credentials_path.as_deref()),
                shown(config_path.as_deref())
            )));
        }
        let from_profile = |key: &str| {
            in_credentials
                .and_then(|s| s.get(key))
                .or_else(|| in_config.and_then(|s| s.get(key)))
        };

        let env_key = env("AWS_ACCESS_KEY_ID");
        let env_secret = env("AWS_SECRET_ACCESS_KEY");
        // A profile or a credentials file the caller named wins over the
        // key variables.
        let explicit = profile.is_some() || credentials_file.is_some();
        let credentials = match (explicit, env_key, env_secret) {
            (false, Some(id), Some(secret)) => {
                let key = Credentials::new(id, secret);
                Some(match env("AWS_SESSION_TOKEN") {
                    Some(token) => key.with_session_token(token),
                    None => key,
                })
            }
            (false, Some(_), None) => {
                return Err(S3Error::new(
                    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
                ));
            }
            (false, None, Some(_)) => {
                return Err(S3Error::new(
                    "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
                ));
            }
            _ => match (
                from_profile("aws_access_key_id"),
                from_profile("aws_secret_access_key"),
            ) {
                (Some(id), Some(secret)) => {
                    let key = Credentials::new(id, secret);
                    Some(match from_profile("aws_session_token") {
                        Some(token) => key.with_session_token(token),
                        None => key,
                    })
                }
                (Some(_), None) | (None, Some(_)) => {
                    return Err(S3Error::new(format!(
                        "the AWS profile {name:?} has only one of aws_access_key_id and aws_secret_access_key"
                    )));
                }
                (None, None) => {
                    let unsupported = UNSUPPORTED_SOURCES
                        .iter()
                        .find(|key| from_profile(key).is_some());
                    if let Some(key) = unsupported {
                        return Err(S3Error::new(format!(
                            "the AWS profile {name:?} gets its keys through {key}, which ftprelay does not support: give it aws_access_key_id and aws_secret_access_key"
                        )));
                    }
                    None
                }
            },
        };
        Ok(Self {
            credentials,
            region: env("AWS_REGION")
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .or_else(|| from_profile("region").map(str::to_owned)),
            endpoint: env("AWS_ENDPOINT_URL_S3")
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .or_else(|| from_profile("endpoint_url").map(str::to_owned)),
        })
    }
}

/// Profile keys that get credentials from something other than the file.
const UNSUPPORTED_SOURCES: [&str; 6] = [
    "credential_process",
    "sso_session",
    "sso_start_url",
    "role_arn",
    "web_identity_token_file",
    "credential_source",
];

fn shown(path: Option<&Path>) -> String {
    path.map_or_else(
        || "(no file: HOME is not set)".to_owned(),
        |p| p.display().to_string(),
    )
}

/// An INI file as the AWS files write it: `[section]`, `key = value`,
/// `#` and `;` comments. Indented lines (the nested `s3 =` settings) are
/// skipped.
#[derive(Debug, Default)]
struct Ini {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Ini {
    fn parse(text: &str) -> Self {
        let mut ini = Self::default();
        for line in text.lines() {
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let line = line.trim();
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                // `[profile  name]` is `[profile name]`.
                let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
                ini.sections.push((name, Vec::new()));
                continue;
            }
            if let (Some((key, value)), Some((_, entries))) =
                (line.split_once('='), ini.sections.last_mut())
            {
                entries.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        ini
    }

    /// The section `name`; when it appears twice, the last.
    fn section(&self, name: &str) -> Option<Section<'_>> {
        self.sections
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, entries)| Section(entries))
    }
}

#[derive(Debug, Clone, Copy)]
struct Section<'a>(&'a [(String, String)]);

impl<'a> Section<'a> {
    /// The last value of `key`, if not empty.
    fn get(self, key: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// The file at `path`; a missing file is empty unless `required`.
fn read_ini(path: Option<&Path>, required: bool) -> Result<Ini, S3Error> {
    let Some(path) = path else {
        return Ok(Ini::default());
    };
    match crate::small_file::read(path) {
        Ok(text) => Ok(Ini::parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Ini::default()),
        Err(e) => Err(S3Error::new(format!("{}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(
        vars: &[(&str, &str)],
        profile: Option<&str>,
        credentials_file: Option<&Path>,
    ) -> Result<AwsSettings, S3Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AwsSettings::load(&|name| vars.get(name).cloned(), profile, credentials_file)
    }

    fn files() -> tempfile::TempDir {
        let home = tempfile::tempdir().expect("dir");
        std::fs::create_dir(home.path().join(".aws")).expect("mkdir");
        std::fs::write(
            home.path().join(".aws/credentials"),
            "# keys\n[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = defaultsecret\n\
             [cams]\naws_access_key_id=CAMSKEY\naws_secret_access_key=camssecret\naws_session_token = tok\n",
        )
        .expect("write");
        std::fs::write(
            home.path().join(".aws/config"),
            "[default]\nregion = eu-west-1\ns3 =\n  addressing_style = path\n\
             [profile cams]\nregion = eu-central-1\nendpoint_url = http://minio:9000\n\
             [profile sso]\nsso_session = corp\n",
        )
        .expect("write");
        home
    }

    #[test]
    fn environment_keys_win_over_the_default_profile() {
        let home = files();
        let home_path = home.path().to_str().expect("utf-8");
        let settings = load(
            &[
                ("HOME", home_path),
                ("AWS_ACCESS_KEY_ID", "ENVKEY"),
                ("AWS_SECRET_ACCESS_KEY", "envsecret"),
                ("AWS_SESSION_TOKEN", "envtoken"),
                ("AWS_DEFAULT_REGION", "us-west-2"),
                ("AWS_ENDPOINT_URL", "http://any:1"),
                ("AWS_ENDPOINT_URL_S3", "http://s3only:2"),
            ],
            None,
            None,
        )
        .expect("settings");
        assert_eq!(
            settings.credentials,
            Some(Credentials::new("ENVKEY", "envsecret").with_session_token("envtoken"))
        );
        assert_eq!(settings.region.as_deref(), Some("us-west-2"));
        assert_eq!(settings.endpoint.as_deref(), Some("http://s3only:2"));
    }

    #[test]
    fn profiles_come_from_both_files() {
        let home = files();
        let home_path = home.path().to_str().expect("utf-8");
        let default = load(&[("HOME", home_path)], None, None).expect("default");
        assert_eq!(
            default.credentials,
            Some(Credentials::new("DEFAULTKEY", "defaultsecret"))
        );
        assert_eq!(default.region.as_deref(), Some("eu-west-1"));
        assert_eq!(default.endpoint, None);

        let by_variable =
            load(&[("HOME", home_path), ("AWS_PROFILE", "cams")], None, None).expect("AWS_PROFILE");
        // A flag's profile wins over the key variables.
        let by_flag = load(
            &[
                ("HOME", home_path),
                ("AWS_ACCESS_KEY_ID", "ENVKEY"),
                ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ],
            Some("cams"),
            None,
        )
        .expect("flag");
        for cams in [by_variable, by_flag] {
            assert_eq!(
                cams.credentials,
                Some(Credentials::new("CAMSKEY", "camssecret").with_session_token("tok"))
            );
            assert_eq!(cams.region.as_deref(), Some("eu-central-1"));
            assert_eq!(cams.endpoint.as_deref(), Some("http://minio:9000"));
        }
    }

    #[test]
    fn what_cannot_be_used_is_an_error_naming_it() {
        let home = files();
        let home_path = home.path().to_str().expect("utf-8");
        let missing = load(&[("HOME", home_path)], Some("nope"), None).expect_err("no profile");
        assert!(missing.to_string().contains("\"nope\""), "{missing}");
        let sso = load(&[("HOME", home_path)], Some("sso"), None).expect_err("sso");
        assert!(sso.to_string().contains("sso_session"), "{sso}");
        let half = load(&[("AWS_ACCESS_KEY_ID", "K")], None, None).expect_err("half");
        assert!(half.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{half}");
        let file = home.path().join("absent");
        let absent = load(&[], None, Some(&file)).expect_err("absent file");
        assert!(absent.to_string().contains("absent"), "{absent}");
        // Nothing set anywhere is not an error here: the destination says
        // it has no credentials.
        assert_eq!(
            load(&[], None, None).expect("empty"),
            AwsSettings::default()
        );
    }

    #[test]
    fn a_named_credentials_file_replaces_the_default_one() {
        let home = files();
        let home_path = home.path().to_str().expect("utf-8");
        let file = home.path().join("cam-keys");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id=FILEKEY\naws_secret_access_key=s\n",
        )
        .expect("write");
        let settings = load(&[("HOME", home_path)], None, Some(&file)).expect("settings");
        assert_eq!(settings.credentials, Some(Credentials::new("FILEKEY", "s")));
        // The region still comes from the config file.
        assert_eq!(settings.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn secrets_are_not_printed() {
        let shown = format!(
            "{:?}",
            Credentials::new("ID", "SECRET").with_session_token("TOKEN")
        );
        assert!(shown.contains("ID"));
        assert!(
            !shown.contains("SECRET") && !shown.contains("TOKEN"),
            "{shown}"
        );
    }
}
