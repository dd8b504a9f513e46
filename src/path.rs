//! Path ancestry by components, never by string prefix.
//!
//! `/var/lib_sibling` is not under `/var/lib`; a `..` component is never trusted (it is rejected,
//! because resolving it lexically is wrong when a symlink sits before it); names are raw bytes and
//! need not be UTF-8. Every "is X inside Y" question in the crate goes through this module.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Why a path cannot be used as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("{}: path is not absolute", display_path(.0))]
    NotAbsolute(PathBuf),
    #[error("{}: path contains a '..' component", display_path(.0))]
    ParentComponent(PathBuf),
}

/// Checks that `path` is absolute and has no `..` component.
///
/// `.` components and repeated slashes are harmless: `Path::components` drops them.
pub fn check_clean(path: &Path) -> Result<(), PathError> {
    if !path.is_absolute() {
        return Err(PathError::NotAbsolute(path.to_path_buf()));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(PathError::ParentComponent(path.to_path_buf()));
    }
    Ok(())
}

/// Is `path` equal to `root` or below it? Both must be clean (absolute, no `..`), else `false`.
#[must_use]
pub fn is_within(root: &Path, path: &Path) -> bool {
    relative_components(root, path).is_some()
}

/// Is `path` strictly below `root` (inside it, and not the root itself)?
#[must_use]
pub fn is_strictly_within(root: &Path, path: &Path) -> bool {
    relative_components(root, path).is_some_and(|mut rest| rest.next().is_some())
}

/// The names leading from `root` down to `path`, or `None` if `path` is not within `root` or
/// either is not clean. An empty iterator means `path` is the root.
pub fn relative_components<'a>(
    root: &Path,
    path: &'a Path,
) -> Option<impl Iterator<Item = &'a OsStr> + use<'a>> {
    check_clean(root).ok()?;
    check_clean(path).ok()?;
    let mut rest = path.components();
    for want in root.components() {
        if rest.next()? != want {
            return None;
        }
    }
    Some(rest.map(Component::as_os_str))
}

/// Joins raw name bytes onto a base path (names may be non-UTF-8).
#[must_use]
pub fn join_bytes(base: &Path, name: &[u8]) -> PathBuf {
    base.join(OsStr::from_bytes(name))
}

/// Is `name` a plain single component (not empty, no `/`, not `.` or `..`)?
#[must_use]
pub fn is_plain_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/')
}

/// A name for a terminal: invalid UTF-8 shown as U+FFFD, control characters escaped (`\n`), so
/// a hostile name cannot move the cursor or split a line.
#[must_use]
pub fn display_name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// A path for a terminal, escaped as `display_name` escapes a name: every path in a message
/// goes through here (an error's path may come from the command line or from the disk).
#[must_use]
pub fn display_path(path: &Path) -> String {
    display_name(path.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_sibling_with_a_common_prefix_is_not_inside() {
        assert!(!is_within(
            Path::new("/var/lib"),
            Path::new("/var/lib_sibling")
        ));
        assert!(!is_within(
            Path::new("/var/lib"),
            Path::new("/var/lib_sibling/x")
        ));
        assert!(is_within(Path::new("/var/lib"), Path::new("/var/lib/x")));
    }

    #[test]
    fn the_root_is_within_itself_but_not_strictly() {
        assert!(is_within(Path::new("/a/b"), Path::new("/a/b")));
        assert!(is_within(Path::new("/a/b/"), Path::new("/a//b/./")));
        assert!(!is_strictly_within(Path::new("/a/b"), Path::new("/a/b")));
        assert!(is_strictly_within(Path::new("/a/b"), Path::new("/a/b/c")));
        assert!(is_within(Path::new("/"), Path::new("/etc")));
    }

    #[test]
    fn dot_dot_is_never_trusted() {
        assert!(!is_within(Path::new("/a"), Path::new("/a/../etc")));
        assert!(!is_within(Path::new("/a"), Path::new("/a/b/..")));
        assert!(!is_within(Path::new("/a/.."), Path::new("/a")));
        assert_eq!(
            check_clean(Path::new("/a/../b")),
            Err(PathError::ParentComponent(PathBuf::from("/a/../b")))
        );
    }

    #[test]
    fn relative_paths_are_rejected() {
        assert!(!is_within(Path::new("a"), Path::new("a/b")));
        assert!(check_clean(Path::new("a/b")).is_err());
    }

    #[test]
    fn non_utf8_names_compare_by_bytes() {
        let root = PathBuf::from(OsString::from_vec(b"/t/\xff\xfe".to_vec()));
        let inside = join_bytes(&root, b"caf\xe9\nx");
        assert!(is_within(&root, &inside));
        let rel: Vec<&OsStr> = relative_components(&root, &inside)
            .expect("inside")
            .collect();
        assert_eq!(rel, vec![OsStr::from_bytes(b"caf\xe9\nx")]);
        let other = PathBuf::from(OsString::from_vec(b"/t/\xff\xfe\xfd".to_vec()));
        assert!(!is_within(&root, &other));
    }

    #[test]
    fn plain_names_exclude_separators_and_dots() {
        assert!(is_plain_name(b"a.b"));
        assert!(is_plain_name(b"..."));
        assert!(!is_plain_name(b""));
        assert!(!is_plain_name(b"."));
        assert!(!is_plain_name(b".."));
        assert!(!is_plain_name(b"a/b"));
    }
}
