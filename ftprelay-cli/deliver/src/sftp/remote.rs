//! `sftp://USER@HOST[:PORT]/PATH`: the server, and where on it a file
//! goes.
//!
//! PATH is read as `scp` reads `host:path`: relative to the login
//! directory (`sftp://u@h/in/` is `in/` there), absolute when it starts
//! with a second slash (`sftp://u@h//srv/in/` is `/srv/in/`). A PATH that
//! is empty or ends in `/` is a folder: the file goes in it as
//! `{path}/{name}` (the devices profile's folders, then the safe name), or
//! as `{name}` when the folder places `{path}` itself, as `--dir` does.
//! Any other PATH names the file itself, exactly as written.

use crate::fields::Fields;
use crate::template::{Escape, Placeholder, Template, TemplateError};

/// The parts of an `sftp://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address {
    pub(crate) user: String,
    /// The host name or address, IPv6 without its brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: RemotePath,
}

/// Why an `sftp://` URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AddressError {
    /// Not of the form `sftp://USER@HOST[:PORT]/PATH`.
    #[error("{0}")]
    Malformed(String),
    /// The path is not a valid template.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl Address {
    /// Parses `sftp://USER@HOST[:PORT]/PATH`.
    pub(crate) fn parse(url: &str) -> Result<Self, AddressError> {
        let malformed = |why: &str| {
            AddressError::Malformed(format!(
                "{why} in {:?} (expected sftp://USER@HOST[:PORT]/PATH)",
                crate::redact::without_password(url)
            ))
        };
        let rest = url
            .strip_prefix("sftp://")
            .ok_or_else(|| malformed("not an sftp:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, ""),
        };
        let (user, host_port) = authority
            .rsplit_once('@')
            .ok_or_else(|| malformed("no user name"))?;
        if user.is_empty() {
            return Err(malformed("no user name"));
        }
        if user.chars().any(char::is_control) {
            return Err(malformed("a control character in the user name"));
        }
        if user.contains(':') {
            return Err(malformed(
                "a password (the key file, --sftp-key, authenticates)",
            ));
        }
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| malformed("an unclosed [ in the host"))?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or_else(|| malformed("text after the host"))?,
                    ),
                ),
            }
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(malformed("no host"));
        }
        let port = match port {
            None => 22,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(malformed("a bad port")),
            },
        };
        Ok(Self {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
            path: RemotePath::parse(path)?,
        })
    }
}

/// Where a file goes on the server, a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemotePath {
    absolute: bool,
    folders: Vec<Template>,
    name: Template,
}

/// An upload's place on the server: its folders (from the top, the first
/// under `/` when absolute) and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) absolute: bool,
    pub(crate) folders: Vec<String>,
    pub(crate) name: String,
}

impl Place {
    /// The folder as the server is told it: `a/b`, `/srv/a`, or `.`.
    pub(crate) fn folder(&self) -> String {
        let joined = self.folders.join("/");
        match (self.absolute, joined.is_empty()) {
            (true, _) => format!("/{joined}"),
            (false, true) => ".".to_owned(),
            (false, false) => joined,
        }
    }

    /// `name` in the folder.
    pub(crate) fn join(&self, name: &str) -> String {
        let mut path = self.folders.join("/");
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(name);
        if self.absolute {
            path.insert(0, '/');
        }
        path
    }

    /// The folder and each of its parents, from the top: what `mkdir -p`
    /// makes.
    pub(crate) fn ancestry(&self) -> Vec<String> {
        (1..=self.folders.len())
            .map(|depth| {
                let joined = self.folders[..depth].join("/");
                if self.absolute {
                    format!("/{joined}")
                } else {
                    joined
                }
            })
            .collect()
    }
}

impl RemotePath {
    /// The template `text` (the URL's path without its first slash).
    pub(crate) fn parse(text: &str) -> Result<Self, TemplateError> {
        let absolute = text.starts_with('/');
        let mut components: Vec<Template> = text
            .split('/')
            .filter(|c| !c.is_empty())
            .map(Template::parse)
            .collect::<Result<_, _>>()?;
        let is_folder = text.is_empty() || text.ends_with('/');
        if is_folder {
            if !components.iter().any(|t| t.uses(Placeholder::Path)) {
                components.push(Template::parse("{path}")?);
            }
            components.push(Template::parse("{name}")?);
        }
        let name = components
            .pop()
            .map_or_else(|| Template::parse("{name}"), Ok)?;
        Ok(Self {
            absolute,
            folders: components,
            name,
        })
    }

    /// Where `fields`' upload goes. Values are single safe components
    /// (`{path}` is such components joined by `/`), so a filled-in template
    /// never climbs out of its folder: a `.` or `..` that a value makes is
    /// spelled `%2E`.
    pub(crate) fn render(&self, fields: &Fields) -> Place {
        let mut folders = Vec::new();
        for template in &self.folders {
            push_components(&mut folders, template, fields);
        }
        let mut name_parts = Vec::new();
        push_components(&mut name_parts, &self.name, fields);
        let name = name_parts.pop().unwrap_or_else(|| fields.name().to_owned());
        folders.extend(name_parts);
        Place {
            absolute: self.absolute,
            folders,
            name,
        }
    }
}

/// The components `template` makes for `fields`, appended to `out`.
fn push_components(out: &mut Vec<String>, template: &Template, fields: &Fields) {
    if let Some(literal) = template.as_literal() {
        // The operator's own text, as written.
        out.push(literal);
        return;
    }
    let rendered = template.render(fields, Escape::None);
    out.extend(
        rendered
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|c| match c {
                "." => "%2E".to_owned(),
                ".." => "%2E%2E".to_owned(),
                _ => c.to_owned(),
            }),
    );
}

/// `name` with `suffix` before its extension: `scan-1.pdf`; a leading dot
/// starts no extension.
pub(crate) fn with_suffix(name: &str, suffix: &str) -> String {
    match name.rfind('.') {
        Some(at) if at > 0 => format!("{}{suffix}{}", &name[..at], &name[at..]),
        _ => format!("{name}{suffix}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(url: &str, fields: &Fields) -> Place {
        Address::parse(url).expect("valid").path.render(fields)
    }

    #[test]
    fn urls() {
        let address = Address::parse("sftp://scan@sftp.example.org/in/").expect("valid");
        assert_eq!(
            (address.user.as_str(), address.host.as_str(), address.port),
            ("scan", "sftp.example.org", 22)
        );
        let address = Address::parse("sftp://a@b@[::1]:2222").expect("valid");
        assert_eq!(
            (address.user.as_str(), address.host.as_str(), address.port),
            ("a@b", "::1", 2222)
        );
        for bad in [
            "http://u@h/",
            "sftp://h/",
            "sftp://@h/",
            "sftp://u:pw@h/",
            "sftp://u@/x",
            "sftp://u@h:0/",
            "sftp://u@h:99999/",
            "sftp://u@h:x/",
            "sftp://u@[::1/",
            "sftp://u@[::1]x/",
            "sftp://u@h/{nope}",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_relative_absolute_folders_or_names() {
        let fields = Fields::for_test("scan.pdf", &["NVR01", "ch1"]);
        let home = place("sftp://u@h", &fields);
        assert_eq!(home.join(&home.name), "NVR01/ch1/scan.pdf");
        assert_eq!(home.folder(), "NVR01/ch1");
        let root = Fields::for_test("scan.pdf", &[]);
        let home = place("sftp://u@h/", &root);
        assert_eq!(
            (home.folder(), home.join(&home.name)),
            (".".to_owned(), "scan.pdf".to_owned())
        );
        let inbox = place("sftp://u@h/in/{user}/", &fields);
        assert_eq!(inbox.join(&inbox.name), "in/demo/NVR01/ch1/scan.pdf");
        assert_eq!(
            inbox.ancestry(),
            ["in", "in/demo", "in/demo/NVR01", "in/demo/NVR01/ch1"]
        );
        let absolute = place("sftp://u@h//srv/{date}/{path}/", &fields);
        assert_eq!(
            absolute.join(&absolute.name),
            "/srv/2026-12-02/NVR01/ch1/scan.pdf"
        );
        assert_eq!(absolute.folder(), "/srv/2026-12-02/NVR01/ch1");
        let named = place("sftp://u@h//srv/{user}-{stem}.{ext}", &fields);
        assert_eq!(named.join(&named.name), "/srv/demo-scan.pdf");
    }

    #[test]
    fn values_never_climb() {
        let fields = Fields::for_test("..", &[]);
        let place = place("sftp://u@h/in/{stem}/{name}", &fields);
        assert!(
            place.folders.iter().all(|f| f != ".." && f != "."),
            "{place:?}"
        );
        assert_ne!(place.name, "..");
    }

    #[test]
    fn suffixes_go_before_the_extension() {
        assert_eq!(with_suffix("scan.pdf", "-1"), "scan-1.pdf");
        assert_eq!(with_suffix("a.tar.gz", "-2"), "a.tar-2.gz");
        assert_eq!(with_suffix("README", "-1"), "README-1");
        assert_eq!(with_suffix(".profile", "-1"), ".profile-1");
    }
}
