//! Templates: the names users choose for what a destination writes (a
//! folder, an object key, a remote path, a subject, a URL, a header).
//!
//! A template is parsed once, at start-up, so that an unknown placeholder is
//! an error then and never a surprise on the first upload. `{{` and `}}`
//! stand for a brace.

use std::borrow::Cow;
use std::fmt;

use crate::fields::Fields;

/// A value an upload fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `{user}`: the user name.
    User,
    /// `{name}`: the file's safe name (no separator, no leading dot).
    Name,
    /// `{stem}`: the safe name without its extension.
    Stem,
    /// `{ext}`: the extension, without its dot; empty when there is none.
    Ext,
    /// `{path}`: the devices profile's folder, `a/b`; empty at the root.
    Path,
    /// `{peer}`: the device's IP address.
    Peer,
    /// `{date}`: the day the upload was received, `YYYY-MM-DD` (UTC).
    Date,
    /// `{time}`: the time it was received, `HHMMSS` (UTC).
    Time,
    /// `{id}`: unique to the upload, and sorting in the order uploads were
    /// received.
    Id,
    /// `{size}`: the size in bytes.
    Size,
}

impl Placeholder {
    /// Every placeholder, in the order the documentation lists them.
    pub const ALL: [Self; 10] = [
        Self::User,
        Self::Name,
        Self::Stem,
        Self::Ext,
        Self::Path,
        Self::Peer,
        Self::Date,
        Self::Time,
        Self::Id,
        Self::Size,
    ];

    /// Its name between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Name => "name",
            Self::Stem => "stem",
            Self::Ext => "ext",
            Self::Path => "path",
            Self::Peer => "peer",
            Self::Date => "date",
            Self::Time => "time",
            Self::Id => "id",
            Self::Size => "size",
        }
    }

    fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Why a template cannot be used; the message names the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{something}` that is not a placeholder.
    #[error("unknown placeholder {{{name}}} in {template:?} (known: {known})")]
    Unknown {
        /// The name between the braces.
        name: String,
        /// The whole template.
        template: String,
        /// The placeholders there are.
        known: String,
    },
    /// A folder template with `.` or `..` after a placeholder: the folder
    /// would depend on what the upload fills in.
    #[error("`.` or `..` after a placeholder in {template:?}")]
    Climbs {
        /// The whole template.
        template: String,
    },
    /// A `{` without its `}`, or a lone `}`.
    #[error("unbalanced brace in {template:?} (write {{{{ or }}}} for a brace)")]
    Unbalanced {
        /// The whole template.
        template: String,
    },
}

impl TemplateError {
    /// What is wrong, without the template (which may carry a secret, as
    /// a URL's token).
    pub fn without_template(&self) -> String {
        match self {
            Self::Unknown { name, known, .. } => {
                format!("unknown placeholder {{{name}}} (known: {known})")
            }
            Self::Climbs { .. } => "`.` or `..` after a placeholder".to_owned(),
            Self::Unbalanced { .. } => "unbalanced brace (write {{ or }} for a brace)".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(Placeholder),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`; an unknown placeholder or a stray brace is an error
    /// naming it.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let unbalanced = || TemplateError::Unbalanced {
            template: text.to_owned(),
        };
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let brace = &rest[at..];
            if brace.starts_with("{{") || brace.starts_with("}}") {
                literal.push_str(&brace[..1]);
                rest = &brace[2..];
                continue;
            }
            if brace.starts_with('}') {
                return Err(unbalanced());
            }
            let end = brace.find('}').ok_or_else(unbalanced)?;
            let name = &brace[1..end];
            if name.contains('{') {
                return Err(unbalanced());
            }
            let placeholder = Placeholder::named(name).ok_or_else(|| TemplateError::Unknown {
                name: name.to_owned(),
                template: text.to_owned(),
                known: Placeholder::ALL
                    .iter()
                    .map(|p| format!("{{{}}}", p.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Value(placeholder));
            rest = &brace[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self {
            source: text.to_owned(),
            pieces,
        })
    }

    /// The template as it was written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether it uses `placeholder`.
    pub fn uses(&self, placeholder: Placeholder) -> bool {
        self.pieces.contains(&Piece::Value(placeholder))
    }

    /// Whether it has no placeholder at all.
    pub fn is_literal(&self) -> bool {
        !self
            .pieces
            .iter()
            .any(|piece| matches!(piece, Piece::Value(_)))
    }

    /// The text of a template without placeholders; `None` when it has
    /// some.
    pub(crate) fn as_literal(&self) -> Option<String> {
        let mut text = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(part) => text.push_str(part),
                Piece::Value(_) => return None,
            }
        }
        Some(text)
    }

    /// The template filled in with `fields`, each value passed through
    /// `escape` (the literal text is the operator's and is left as it is):
    /// [`Escape::None`] for a subject, [`Escape::UrlComponent`] inside a
    /// URL, and so on.
    pub fn render(&self, fields: &Fields, escape: Escape) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        // In a URL, an empty value between two slashes (`/{path}/` at the
        // root) leaves one slash, not `//`.
        let mut drop_slash = false;
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) if drop_slash => {
                    out.push_str(text.strip_prefix('/').unwrap_or(text));
                }
                Piece::Text(text) => out.push_str(text),
                Piece::Value(placeholder) => {
                    let value = escape.apply(&fields.value(*placeholder)).into_owned();
                    let collapse =
                        escape == Escape::UrlComponent && value.is_empty() && out.ends_with('/');
                    out.push_str(&value);
                    drop_slash = collapse;
                    continue;
                }
            }
            drop_slash = false;
        }
        out
    }
}

/// The components of a rendered path: empty ones (a `{path}` at the root,
/// a doubled `/`) dropped, and a component that came out as `.` or `..`
/// spelled `%2E`/`%2E%2E`, so that a rendered path never climbs. Values
/// never bring either (they are safe names); the literal text around them
/// might.
pub(crate) fn path_components(rendered: &str) -> impl Iterator<Item = String> + '_ {
    rendered
        .split('/')
        .filter(|component| !component.is_empty())
        .map(|component| match component {
            "." => "%2E".to_owned(),
            ".." => "%2E%2E".to_owned(),
            _ => component.to_owned(),
        })
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// How values are written where they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As they are (a mail subject, an object key, a path: every value is
    /// already safe as a path component, and `{path}` is folders joined by
    /// `/`).
    None,
    /// Percent-encoded but for the unreserved characters (RFC 3986), `/`
    /// kept: for a URL's path and query.
    UrlComponent,
    /// Control characters (CR, LF) percent-encoded: for an HTTP header
    /// value or a form field. Nothing else: `100%.jpg` stays `100%.jpg`.
    Header,
}

impl Escape {
    fn apply(self, value: &str) -> Cow<'_, str> {
        let keep: fn(char) -> bool = match self {
            Self::None => return Cow::Borrowed(value),
            Self::UrlComponent => {
                |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '/')
            }
            // A `%` of a value is the name's own (a safe name spells a
            // `%` that would read as an escape `%25` already).
            Self::Header => |c| !c.is_control(),
        };
        if value.chars().all(keep) {
            return Cow::Borrowed(value);
        }
        let mut out = String::with_capacity(value.len() * 3);
        for c in value.chars() {
            if keep(c) {
                out.push(c);
            } else {
                let mut bytes = [0; 4];
                for b in c.encode_utf8(&mut bytes).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields() -> Fields {
        Fields::for_test("scan 1.pdf", &["NVR01", "ch1"])
    }

    #[test]
    fn placeholders_are_filled_in() {
        let template = Template::parse("{user}/{path}/{stem}-{id}.{ext} {size}").expect("valid");
        let fields = fields();
        assert_eq!(
            template.render(&fields, Escape::None),
            format!(
                "demo/NVR01/ch1/scan 1-{}.pdf 42",
                fields.value(Placeholder::Id)
            )
        );
        assert!(template.uses(Placeholder::Path));
        assert!(!template.uses(Placeholder::Date));
    }

    #[test]
    fn braces_escape_and_stray_braces_are_errors() {
        let template = Template::parse("{{literal}} {name}").expect("valid");
        assert_eq!(
            template.render(&fields(), Escape::None),
            "{literal} scan 1.pdf"
        );
        assert!(Template::parse("plain").expect("valid").is_literal());
        for bad in ["{name", "name}", "{na{me}", "{}", "}{"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_value_between_slashes_of_a_url_leaves_one_slash() {
        let template = Template::parse("https://x/in/{path}/{name}").expect("valid");
        let at_root = Fields::for_test("a.jpg", &[]);
        assert_eq!(
            template.render(&at_root, Escape::UrlComponent),
            "https://x/in/a.jpg"
        );
        assert_eq!(
            template.render(&fields(), Escape::UrlComponent),
            "https://x/in/NVR01/ch1/scan%201.pdf"
        );
        // Elsewhere the text stays as it was written.
        assert_eq!(
            template.render(&at_root, Escape::None),
            "https://x/in//a.jpg"
        );
    }

    #[test]
    fn an_unknown_placeholder_is_named() {
        let error = Template::parse("/srv/{usr}/{name}").expect_err("unknown");
        let message = error.to_string();
        assert!(message.contains("{usr}"), "{message}");
        assert!(message.contains("{user}"), "{message}");
    }

    #[test]
    fn values_are_escaped_for_where_they_go() {
        let template = Template::parse("https://x/{name}?u={user}").expect("valid");
        assert_eq!(
            template.render(&fields(), Escape::UrlComponent),
            "https://x/scan%201.pdf?u=demo"
        );
        let header = Fields::for_test("a\r\nb.txt", &[]);
        let rendered = Template::parse("{name}")
            .expect("valid")
            .render(&header, Escape::Header);
        assert!(!rendered.contains(['\r', '\n']), "{rendered}");
        // A percent sign is encoded once, by the safe name, never twice.
        let percent = Fields::for_test("100%.jpg", &[]);
        let template = Template::parse("{name}").expect("valid");
        assert_eq!(template.render(&percent, Escape::Header), "100%.jpg");
    }

    proptest! {
        /// Whatever the text, parsing never panics, and a template without
        /// braces renders as itself.
        #[test]
        fn parsing_is_total(text in "\\PC{0,40}") {
            let _ = Template::parse(&text);
            if !text.contains(['{', '}']) {
                let template = Template::parse(&text).expect("no braces");
                prop_assert_eq!(template.render(&fields(), Escape::None), text);
            }
        }

        /// A value escaped for a URL or a header never brings a character
        /// that would end or split it.
        #[test]
        fn escaped_values_stay_inside(name in "\\PC{1,30}") {
            let fields = Fields::for_test(&name, &[]);
            let template = Template::parse("{name}").expect("valid");
            let url = template.render(&fields, Escape::UrlComponent);
            prop_assert!(!url.contains(['?', '#', ' ', '&', '\r', '\n']));
            let header = template.render(&fields, Escape::Header);
            prop_assert!(!header.chars().any(char::is_control));
        }
    }
}
