//! What a client's path argument means, without touching any file system.
//!
//! Names are bytes. The relay keeps no tree: a path is resolved against the
//! root only to decide whether it names the root, or a file in it.

use bytes::Bytes;

/// The components of `path` after resolving `.`, `..` and repeated slashes
/// against the root (`..` at the root stays at the root).
pub(crate) fn normalize(path: &[u8]) -> Vec<&[u8]> {
    let mut components = Vec::new();
    for component in path.split(is_separator) {
        match component {
            b"" | b"." => {}
            b".." => {
                components.pop();
            }
            name => components.push(name),
        }
    }
    components
}

/// `/`, and `\\` too: devices configured with Windows paths send it, and a
/// processor must never see a name that holds either.
fn is_separator(byte: &u8) -> bool {
    matches!(byte, b'/' | b'\\')
}

/// Whether `path` resolves to the root directory.
pub(crate) fn is_root(path: &[u8]) -> bool {
    normalize(path).is_empty()
}

/// The file name an upload to `path` names in the root directory: `x`,
/// `/x` and `./x` all mean `x`. `None` when the path has a directory part
/// (`sub/x`, `../x`) or names no file (`/`, `..`): the strict profile has no
/// folders, and a client that thinks otherwise gets `553`.
pub(crate) fn root_file_name(path: &Bytes) -> Option<Bytes> {
    let mut parts = path
        .split(is_separator)
        .filter(|part| !matches!(*part, b"" | b"."));
    let name = parts.next()?;
    if parts.next().is_some() || name == b".." {
        return None;
    }
    Some(path.slice_ref(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_file_names() {
        let name = |s: &'static [u8]| root_file_name(&Bytes::from_static(s));
        assert_eq!(name(b"x.jpg").as_deref(), Some(&b"x.jpg"[..]));
        assert_eq!(name(b"/x.jpg").as_deref(), Some(&b"x.jpg"[..]));
        assert_eq!(name(b"./x.jpg").as_deref(), Some(&b"x.jpg"[..]));
        assert_eq!(name(b"//x.jpg").as_deref(), Some(&b"x.jpg"[..]));
        assert_eq!(name(b"sub/x.jpg"), None);
        assert_eq!(name(b"../x.jpg"), None);
        assert_eq!(name(b"..\\..\\etc\\passwd"), None);
        assert_eq!(name(b"sub\\x.jpg"), None);
        assert_eq!(name(b"\\x.jpg").as_deref(), Some(&b"x.jpg"[..]));
        assert_eq!(name(b"/"), None);
        assert_eq!(name(b".."), None);
    }

    #[test]
    fn roots() {
        assert!(is_root(b"/"));
        assert!(is_root(b"."));
        assert!(is_root(b".."));
        assert!(is_root(b"/a/../"));
        assert!(!is_root(b"a"));
        assert!(!is_root(b"/a/b/.."));
    }
}
