//! Path ancestry by components, never by string prefix.
//!
//! `/var/lib_sibling` is not under `/var/lib`; a `..` component is never trusted (it is rejected,
//! because resolving it lexically is wrong when a symlink sits before it); names are raw bytes and
//! need not be UTF-8. Every "is X inside Y" question in the crate goes through this module, and
//! every name or path shown to a person goes through its one escaping function, `display_name`.

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

/// A name for a terminal, escaped so that what is shown is all there is and two different names
/// never look the same:
///
/// - a byte that is not UTF-8 as `\xff` (not U+FFFD, which every such byte would look like);
/// - control characters (`\n`, `\u{1b}`), so a hostile name cannot move the cursor or split a
///   line;
/// - invisible characters as `\u{202e}`: the format characters (Unicode Cf: bidi overrides and
///   isolates, zero-width space and joiners, the byte-order mark, tags), the line and paragraph
///   separators, and the rest of the default-ignorable code points (variation selectors,
///   Hangul fillers), so a name cannot reorder what follows it or hide a difference;
/// - `\` itself as `\\`, so an escape is never confused with a name that spells one.
#[must_use]
pub fn display_name(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.extend(c.escape_default()),
                c if is_invisible(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Code points a terminal shows as nothing (or uses to rearrange what it shows): Unicode's
/// format characters (general category Cf), the line and paragraph separators (Zl, Zp), and
/// the default-ignorable code points, as of Unicode 16. Sorted, inclusive ranges.
const INVISIBLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // soft hyphen
    (0x034F, 0x034F),   // combining grapheme joiner
    (0x0600, 0x0605),   // Arabic number signs
    (0x061C, 0x061C),   // Arabic letter mark
    (0x06DD, 0x06DD),   // Arabic end of ayah
    (0x070F, 0x070F),   // Syriac abbreviation mark
    (0x0890, 0x0891),   // Arabic pound and piastre marks above
    (0x08E2, 0x08E2),   // Arabic disputed end of ayah
    (0x115F, 0x1160),   // Hangul fillers
    (0x17B4, 0x17B5),   // Khmer inherent vowels
    (0x180B, 0x180F),   // Mongolian free variation selectors, vowel separator
    (0x200B, 0x200F),   // zero-width space, non-joiner, joiner; LRM, RLM
    (0x2028, 0x202E),   // line and paragraph separators; bidi embeddings and overrides
    (0x2060, 0x206F),   // word joiner, invisible operators, bidi isolates, deprecated formats
    (0x3164, 0x3164),   // Hangul filler
    (0xFE00, 0xFE0F),   // variation selectors
    (0xFEFF, 0xFEFF),   // zero-width no-break space (byte-order mark)
    (0xFFA0, 0xFFA0),   // halfwidth Hangul filler
    (0xFFF0, 0xFFFB),   // unassigned specials; interlinear annotation
    (0x110BD, 0x110BD), // Kaithi number sign
    (0x110CD, 0x110CD), // Kaithi number sign above
    (0x13430, 0x1343F), // Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol formats
    (0xE0000, 0xE0FFF), // tags, variation selectors supplement, reserved
];

/// Would a terminal show `c` as nothing, or let it change how the rest of the line shows?
#[must_use]
pub fn is_invisible(c: char) -> bool {
    let c = u32::from(c);
    INVISIBLE
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
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
    fn names_differing_only_in_an_invalid_byte_are_shown_differently() {
        assert_eq!(display_name(b"caf\xe9"), "caf\\xe9");
        assert_ne!(display_name(b"a\xff"), display_name(b"a\xfe"));
        // A name spelling an escape is not taken for the byte it spells.
        assert_eq!(display_name(b"a\\xff"), "a\\\\xff");
        assert_ne!(display_name(b"a\\xff"), display_name(b"a\xff"));
        // U+FFFD itself is a character like any other; an encoded surrogate is not UTF-8.
        assert_eq!(display_name("\u{fffd}".as_bytes()), "\u{fffd}");
        assert_eq!(display_name(b"\xed\xa0\x80"), "\\xed\\xa0\\x80");
    }

    #[test]
    fn controls_and_invisible_characters_are_escaped() {
        assert_eq!(display_name(b"a\nb\x1b[2J"), "a\\nb\\u{1b}[2J");
        for (c, shown) in [
            ('\u{202e}', "\\u{202e}"),
            ('\u{202a}', "\\u{202a}"),
            ('\u{2066}', "\\u{2066}"),
            ('\u{2069}', "\\u{2069}"),
            ('\u{200b}', "\\u{200b}"),
            ('\u{200f}', "\\u{200f}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
            ('\u{feff}', "\\u{feff}"),
            ('\u{ad}', "\\u{ad}"),
            ('\u{e0000}', "\\u{e0000}"),
            ('\u{e0041}', "\\u{e0041}"),
            ('\u{e007f}', "\\u{e007f}"),
            ('\u{fe0f}', "\\u{fe0f}"),
            ('\u{85}', "\\u{85}"),
        ] {
            let name = format!("x{c}y");
            assert_eq!(display_name(name.as_bytes()), format!("x{shown}y"), "{c:?}");
        }
        // Visible text of any script and width is left alone.
        for name in ["café", "日本語", "😀", "a b", "שלום", "مرحبا", "e\u{301}"] {
            assert_eq!(display_name(name.as_bytes()), name);
        }
    }

    #[test]
    fn the_invisible_table_is_sorted_and_disjoint() {
        for w in INVISIBLE.windows(2) {
            assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0, "{w:x?}");
        }
        assert!(!is_invisible('a') && !is_invisible('\u{2027}') && !is_invisible('\u{e1000}'));
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
