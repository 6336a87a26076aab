//! Client path bytes turned into safe components: the one place that
//! decides what a client's path means.
//!
//! Every consumer goes through [`components`]: the strict profile's file
//! names, the devices profile's virtual folders, and so the names and paths
//! processors see ([`crate::Upload::file_name`], [`crate::Upload::folders`]).
//! A component that comes out of here is a name a file system, a shell or a
//! downstream server cannot read as anything else:
//!
//! - never empty, never `.` or `..`, and never starting with a dot (no
//!   dotfiles: `.htaccess` arrives as `htaccess`);
//! - never holding a separator: `/`, `\`, or their full-width forms
//!   (U+FF0F, U+FF3C), which a Unicode normalisation downstream would turn
//!   into separators;
//! - never holding an invisible character anywhere (Unicode's default
//!   ignorable code points: zero-width spaces and joiners, bidi overrides,
//!   variation selectors, Hangul fillers, tags), which would make a name
//!   read as another (U+202E before `..`, or inside `invoice` U+202E
//!   `fdp.exe`);
//! - never starting or ending with white space or controls (U+3000,
//!   U+00A0, tabs), which file systems and people trim;
//! - never holding NUL (the path is refused instead).
//!
//! What is `.` or `..` is decided *after* that trimming, never before:
//! `" .."`, `"..\u{3000}"` and `"．．"` (full-width full stops, which NFKC
//! turns into `..`) all climb, and `". .."` is nothing at all. Bytes that
//! are not UTF-8 stay as they are: they are names, and only a consumer
//! knows how to spell them locally.

use bytes::{BufMut, Bytes, BytesMut};

use crate::reply::{Reply, ReplyCode};

/// One step of a client path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Component {
    /// `..` (in any spelling): the parent folder; at the root, the root.
    Parent,
    /// A name, made safe (see the module documentation).
    Name(Bytes),
}

/// Why a path is refused. It knows its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// The path holds a NUL byte, which no file system can store.
    Nul,
    /// The resolved path has more folders than [`crate::Config::max_path_depth`].
    TooDeep,
    /// The resolved path is longer than [`crate::Config::max_path_length`].
    TooLong,
    /// Invisible characters built out of broken UTF-8, so that removing
    /// them makes more: no device writes that, and undoing it without
    /// bound would cost time quadratic in the line.
    Garbled,
}

impl PathError {
    /// The reply a command naming such a path gets: `553` (file name not
    /// allowed), or `550` for a folder that cannot be entered.
    pub fn reply(self, for_folder: bool) -> Reply {
        let text = match self {
            Self::Nul => "File name not allowed: it holds a NUL byte.",
            Self::TooDeep => "Path not allowed: too many folders.",
            Self::TooLong => "Path not allowed: too long.",
            Self::Garbled => "File name not allowed: it is not readable text.",
        };
        let code = if for_folder {
            ReplyCode::FILE_UNAVAILABLE
        } else {
            ReplyCode::NAME_NOT_ALLOWED
        };
        Reply::new(code, text)
    }
}

/// The steps of `path`, each made safe; `.` and empty steps left out.
/// Zero-copy: every name is a slice of `path`.
pub fn components(path: &Bytes) -> Result<Vec<Component>, PathError> {
    if path.contains(&0) {
        return Err(PathError::Nul);
    }
    // Invisible characters go first, from the whole path: what remains is
    // split and judged (a removal can join bytes into a new separator).
    let visible = match without_invisible(path).ok_or(PathError::Garbled)? {
        std::borrow::Cow::Borrowed(_) => path.clone(),
        std::borrow::Cow::Owned(visible) => Bytes::from(visible),
    };
    let mut out = Vec::new();
    for segment in segments(&visible) {
        match classify(segment) {
            Step::Current => {}
            Step::Parent => out.push(Component::Parent),
            // Zero-copy: a slice of the path (or of its visible copy).
            Step::Name(name) => out.push(Component::Name(visible.slice_ref(name))),
        }
    }
    Ok(out)
}

/// `path` resolved against the working folder `cwd`: absolute when it
/// starts with a separator; `..` climbs and stops at the root. Bounded by
/// `limits`; the result holds one compact copy of its bytes, not the
/// client's line.
pub fn resolve(cwd: &[Bytes], path: &Bytes, limits: PathLimits) -> Result<Vec<Bytes>, PathError> {
    let mut resolved: Vec<Bytes> = if starts_with_separator(path) {
        Vec::new()
    } else {
        cwd.to_vec()
    };
    for component in components(path)? {
        match component {
            Component::Parent => {
                resolved.pop();
            }
            Component::Name(name) => {
                resolved.push(name);
                // Checked as it grows: a line of 2,000 `a/` never builds a
                // 2,000-step vector.
                if resolved.len() > limits.max_depth {
                    return Err(PathError::TooDeep);
                }
            }
        }
    }
    if displayed_len(&resolved) > limits.max_length {
        return Err(PathError::TooLong);
    }
    Ok(compact(&resolved))
}

/// The bounds of a resolved path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathLimits {
    /// The most components (folders and the file name).
    pub max_depth: usize,
    /// The most bytes of the displayed path (`/a/b`).
    pub max_length: usize,
}

/// The absolute path of `components`: `/a/b`, or `/` for the root.
pub fn display(components: &[Bytes]) -> Bytes {
    if components.is_empty() {
        return Bytes::from_static(b"/");
    }
    let mut out = BytesMut::with_capacity(displayed_len(components));
    for component in components {
        out.put_u8(b'/');
        out.extend_from_slice(component);
    }
    out.freeze()
}

fn displayed_len(components: &[Bytes]) -> usize {
    components.iter().map(|c| c.len() + 1).sum::<usize>().max(1)
}

/// The same components, as slices of one buffer of their own: a stored
/// path must not keep the client's whole command line alive.
fn compact(components: &[Bytes]) -> Vec<Bytes> {
    let whole = display(components);
    let mut start = 1;
    components
        .iter()
        .map(|component| {
            let part = whole.slice(start..start + component.len());
            start += component.len() + 1;
            part
        })
        .collect()
}

/// What one segment between separators is.
enum Step<'a> {
    Current,
    Parent,
    Name(&'a [u8]),
}

/// Decides a segment's meaning after trimming what consumers trim.
fn classify(segment: &[u8]) -> Step<'_> {
    let trimmed = trim_end(trim_start(segment, is_blank), is_blank);
    match dots(trimmed) {
        Some(1) => return Step::Current,
        Some(2) => return Step::Parent,
        _ => {}
    }
    // Leading dots (and the blanks between them) go: no hidden files, and
    // `". .."` is not a name in disguise.
    let name = trim_start(trimmed, |c| is_blank(c) || dot_weight(c) > 0);
    if name.is_empty() {
        Step::Current
    } else {
        Step::Name(name)
    }
}

/// How many dots `text` is, if it is made of dots alone.
fn dots(text: &[u8]) -> Option<usize> {
    let mut count = 0;
    for unit in units(text) {
        match unit {
            Unit::Char(c, _) if dot_weight(c) > 0 => count += dot_weight(c),
            _ => return None,
        }
    }
    (count > 0).then_some(count)
}

/// The dots a character stands for once normalised (NFKC): the full stop,
/// its full-width and small forms, the one-dot leader; the two-dot leader
/// and the ellipsis stand for more.
fn dot_weight(c: char) -> usize {
    match c {
        '.' | '\u{2024}' | '\u{FE52}' | '\u{FF0E}' => 1,
        '\u{2025}' => 2,
        '\u{2026}' => 3,
        _ => 0,
    }
}

/// White space and controls: what trimming removes.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// Unicode's default ignorable code points (DerivedCoreProperties.txt):
/// characters that are not shown, so a name holding them reads as another.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// `text` without invisible characters (borrowed when it has none), or
/// `None` when removing them keeps making more. Removing one can join the
/// bytes around it into another (`E2 [E2 80 8E] 80 8E` leaves `E2 80 8E`,
/// U+200E again), so the removal repeats, a few times at most: each pass
/// copies the text, and a line crafted to need a pass per character would
/// cost time quadratic in its length.
fn without_invisible(text: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    /// Passes: one for any real name, the rest for joins.
    const MAX_PASSES: usize = 4;
    let mut visible = std::borrow::Cow::Borrowed(text);
    for _ in 0..MAX_PASSES {
        if !has_invisible(&visible) {
            return Some(visible);
        }
        let mut next = Vec::with_capacity(visible.len());
        for chunk in visible.utf8_chunks() {
            for c in chunk.valid().chars().filter(|c| !is_invisible(*c)) {
                let mut buf = [0; 4];
                next.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            next.extend_from_slice(chunk.invalid());
        }
        visible = std::borrow::Cow::Owned(next);
    }
    (!has_invisible(&visible)).then_some(visible)
}

fn has_invisible(text: &[u8]) -> bool {
    text.utf8_chunks()
        .any(|chunk| chunk.valid().chars().any(is_invisible))
}

fn starts_with_separator(path: &[u8]) -> bool {
    segments(path).next().is_some_and(<[u8]>::is_empty) && !path.is_empty()
}

/// The segments of `path` between separators: `/`, `\` (devices configured
/// with Windows paths send it), and their full-width forms.
fn segments(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(path);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut at = 0;
        while at < text.len() {
            if let Some(width) = separator_width(&text[at..]) {
                rest = Some(&text[at + width..]);
                return Some(&text[..at]);
            }
            at += 1;
        }
        rest = None;
        Some(text)
    })
}

/// The length of the separator `text` starts with, if it does.
fn separator_width(text: &[u8]) -> Option<usize> {
    match text {
        [b'/' | b'\\', ..] => Some(1),
        // U+FF0F FULLWIDTH SOLIDUS, U+FF3C FULLWIDTH REVERSE SOLIDUS.
        [0xEF, 0xBC, 0x8F | 0xBC, ..] => Some(3),
        _ => None,
    }
}

/// A character, or a byte that is not part of any (not UTF-8).
enum Unit {
    Char(char, usize),
    Byte,
}

/// The units of `text` from its start, with their lengths in bytes.
fn units(text: &[u8]) -> impl Iterator<Item = Unit> + '_ {
    text.utf8_chunks().flat_map(|chunk| {
        let valid = chunk.valid().chars().map(|c| Unit::Char(c, c.len_utf8()));
        let invalid = chunk.invalid().iter().map(|_| Unit::Byte);
        valid.chain(invalid)
    })
}

fn trim_start(text: &[u8], strip: impl Fn(char) -> bool) -> &[u8] {
    let mut start = 0;
    for unit in units(text) {
        match unit {
            Unit::Char(c, len) if strip(c) => start += len,
            _ => break,
        }
    }
    &text[start..]
}

fn trim_end(text: &[u8], strip: impl Fn(char) -> bool) -> &[u8] {
    let mut end = text.len();
    // Walk back over whole characters: a UTF-8 character is at most 4 bytes.
    while end > 0 {
        let from = end.saturating_sub(4);
        let last = (from..end).find_map(|start| {
            std::str::from_utf8(&text[start..end])
                .ok()
                .and_then(|s| s.chars().next().filter(|c| c.len_utf8() == end - start))
        });
        match last {
            Some(c) if strip(c) => end -= c.len_utf8(),
            _ => break,
        }
    }
    &text[..end]
}

/// The steps of `path` as the strict profile takes them: one file name in
/// the root, nothing else. `None` when the path has a folder part (`sub/x`,
/// `../x`) or names no file (`/`, `..`).
pub(crate) fn root_file_name(path: &Bytes) -> Result<Option<Bytes>, PathError> {
    let mut steps = components(path)?.into_iter();
    match (steps.next(), steps.next()) {
        (Some(Component::Name(name)), None) => Ok(Some(Bytes::copy_from_slice(&name))),
        _ => Ok(None),
    }
}

/// The last segment of `path` as the client wrote it, invisible
/// characters removed and blanks trimmed as for its safe name, but its
/// leading dots kept: what temporary-name patterns such as `.in.*` are
/// matched against (the safe name has lost its leading dots).
pub(crate) fn last_segment(path: &[u8]) -> Vec<u8> {
    let visible = without_invisible(path).unwrap_or(std::borrow::Cow::Borrowed(path));
    let last = segments(&visible)
        .map(|segment| trim_end(trim_start(segment, is_blank), is_blank))
        .filter(|segment| !segment.is_empty())
        .last()
        .map(<[u8]>::to_vec);
    last.unwrap_or_default()
}

/// Whether `path` resolves to the root folder.
pub(crate) fn is_root(path: &Bytes) -> bool {
    let unbounded = PathLimits {
        max_depth: usize::MAX,
        max_length: usize::MAX,
    };
    resolve(&[], path, unbounded).is_ok_and(|resolved| resolved.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PathLimits = PathLimits {
        max_depth: 32,
        max_length: 1024,
    };

    fn shown(cwd: &[Bytes], path: &str) -> String {
        let resolved =
            resolve(cwd, &Bytes::copy_from_slice(path.as_bytes()), LIMITS).expect("a valid path");
        String::from_utf8(display(&resolved).to_vec()).expect("utf-8")
    }

    fn name(path: &'static [u8]) -> Option<Bytes> {
        root_file_name(&Bytes::from_static(path)).expect("no NUL")
    }

    #[test]
    fn resolution() {
        let cwd = resolve(&[], &Bytes::from_static(b"/NVR01/2024"), LIMITS).expect("valid");
        assert_eq!(shown(&cwd, "ch1//x.jpg"), "/NVR01/2024/ch1/x.jpg");
        assert_eq!(shown(&cwd, "../../../x"), "/x");
        assert_eq!(shown(&cwd, "\\\\cam\\\\a.jpg"), "/cam/a.jpg");
        assert_eq!(shown(&cwd, "/"), "/");
        assert_eq!(shown(&cwd, "./."), "/NVR01/2024");
    }

    #[test]
    fn dots_are_decided_after_trimming() {
        assert_eq!(shown(&[], "/. ../. ../x.txt"), "/x.txt");
        assert_eq!(shown(&[], "a/b/ ../x"), "/a/x");
        assert_eq!(shown(&[], "a/b/..\u{3000}/x"), "/a/x");
        assert_eq!(shown(&[], "a/b/\u{3000}../x"), "/a/x");
        assert_eq!(shown(&[], "a/b/\u{FF0E}\u{FF0E}/x"), "/a/x");
        assert_eq!(shown(&[], "a/b/\u{2025}/x"), "/a/x");
        assert_eq!(shown(&[], "a\u{FF0F}b"), "/a/b");
        assert_eq!(shown(&[], ". .htaccess"), "/htaccess");
        assert_eq!(shown(&[], "...hidden"), "/hidden");
        assert_eq!(shown(&[], " \u{A0}scan 1.pdf\t"), "/scan 1.pdf");
        // Invisible characters go wherever they are.
        assert_eq!(shown(&[], "a/\u{202E}../x"), "/x");
        assert_eq!(shown(&[], "a/.\u{115F}./x"), "/x");
        assert_eq!(shown(&[], "invoice\u{202E}fdp.exe"), "/invoicefdp.exe");
        assert_eq!(shown(&[], "\u{E0001}\u{3164}"), "/");
        // A removal that joins its neighbours into another invisible
        // character, or into a separator, is repeated, then split.
        let joined = Bytes::from_static(b"a\xe2\xe2\x80\x8e\x80\x8e..\xef\xe2\x80\x8b\xbc\x8fb");
        let resolved = resolve(&[], &joined, LIMITS).expect("valid");
        assert_eq!(display(&resolved), Bytes::from_static(b"/a../b"));
        // Joins nested a thousand deep are refused, not undone a thousand
        // times over.
        let mut nested = b"x".to_vec();
        for _ in 0..1000 {
            nested = [b"\xe2".as_slice(), &nested, b"\x80\x8e"].concat();
        }
        let nested = [b"a".as_slice(), &nested].concat();
        let nested: Vec<u8> = nested.iter().copied().filter(|b| *b != b'x').collect();
        let nested = [nested, b"\xe2\x80\x8e".to_vec()].concat();
        assert_eq!(
            resolve(&[], &Bytes::from(nested), LIMITS),
            Err(PathError::Garbled)
        );
    }

    #[test]
    fn strict_root_file_names() {
        assert_eq!(name(b"x.jpg").as_deref(), Some(&b"x.jpg"[..]));
        assert_eq!(name(b"/x.jpg").as_deref(), Some(&b"x.jpg"[..]));
        assert_eq!(name(b"./x.jpg").as_deref(), Some(&b"x.jpg"[..]));
        assert_eq!(name(b"\\x.jpg").as_deref(), Some(&b"x.jpg"[..]));
        assert_eq!(name(b". .htaccess").as_deref(), Some(&b"htaccess"[..]));
        assert_eq!(name(b"sub/x.jpg"), None);
        assert_eq!(name(b"../x.jpg"), None);
        assert_eq!(name(b". ../x.jpg"), Some(Bytes::from_static(b"x.jpg")));
        assert_eq!(name(b" ../x.jpg"), None);
        assert_eq!(name(b"..\\..\\etc\\passwd"), None);
        assert_eq!(name(b"/"), None);
        assert_eq!(name(b".."), None);
        assert_eq!(
            root_file_name(&Bytes::from_static(b"a\0b")),
            Err(PathError::Nul)
        );
    }

    #[test]
    fn bounds() {
        let deep = "a/".repeat(33);
        assert_eq!(
            resolve(&[], &Bytes::from(deep), LIMITS),
            Err(PathError::TooDeep)
        );
        let long = "x".repeat(1024);
        assert_eq!(
            resolve(&[], &Bytes::from(long), LIMITS),
            Err(PathError::TooLong)
        );
        // Climbing back keeps a path within its bounds.
        let there_and_back = "a/../".repeat(500);
        assert_eq!(shown(&[], &there_and_back), "/");
    }

    #[test]
    fn resolved_paths_do_not_hold_the_line() {
        let line = Bytes::from(format!("/a/{}", "b".repeat(100)));
        let resolved = resolve(&[], &line, LIMITS).expect("valid");
        drop(line);
        assert_eq!(resolved.len(), 2);
        assert_eq!(&resolved[0][..], b"a");
    }

    #[test]
    fn roots() {
        for root in ["/", ".", "..", "/a/../", " .. "] {
            assert!(is_root(&Bytes::from(root)), "{root:?}");
        }
        assert!(!is_root(&Bytes::from_static(b"a")));
        assert!(!is_root(&Bytes::from_static(b"/a/b/..")));
    }
}
