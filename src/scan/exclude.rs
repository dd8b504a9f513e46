//! `--exclude PATTERN`: glob patterns matched against an entry's name, or, when the pattern has
//! a `/`, against its absolute path (`*` then stops at `/`; a pattern not starting with `/`
//! matches at any depth).

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

#[derive(Debug, thiserror::Error)]
#[error("bad exclude pattern {pattern:?}: {source}")]
pub struct ExcludeError {
    pattern: String,
    #[source]
    source: globset::Error,
}

/// A compiled set of exclude patterns.
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    names: Option<GlobSet>,
    paths: Option<GlobSet>,
    /// The patterns, hashed (0: none), to tell two sets apart (`key`).
    key: u64,
}

impl Excludes {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Excludes, ExcludeError> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        let (mut n_names, mut n_paths) = (0, 0);
        for p in patterns {
            let p = p.as_ref();
            let err = |source| ExcludeError {
                pattern: p.to_owned(),
                source,
            };
            let trimmed = p.trim_end_matches('/');
            if trimmed.contains('/') {
                let full = if trimmed.starts_with('/') {
                    trimmed.to_owned()
                } else {
                    format!("**/{trimmed}")
                };
                let glob = GlobBuilder::new(&full)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(err)?;
                paths.add(glob);
                n_paths += 1;
            } else {
                let glob = GlobBuilder::new(if trimmed.is_empty() { p } else { trimmed })
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(err)?;
                names.add(glob);
                n_names += 1;
            }
        }
        let build = |b: GlobSetBuilder, n: usize| -> Result<Option<GlobSet>, ExcludeError> {
            if n == 0 {
                return Ok(None);
            }
            b.build().map(Some).map_err(|source| ExcludeError {
                pattern: patterns
                    .iter()
                    .map(|p| p.as_ref().to_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
                source,
            })
        };
        let mut joined = Vec::new();
        for p in patterns {
            joined.extend_from_slice(p.as_ref().as_bytes());
            joined.push(0);
        }
        Ok(Excludes {
            names: build(names, n_names)?,
            paths: build(paths, n_paths)?,
            key: if joined.is_empty() {
                0
            } else {
                xxhash_rust::xxh3::xxh3_64(&joined)
            },
        })
    }

    /// The same for the same patterns in the same order (0 for none): what a cache records
    /// of the excludes its tree was made with.
    #[must_use]
    pub fn key(&self) -> u64 {
        self.key
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_none() && self.paths.is_none()
    }

    /// Do path patterns exist (so the caller must build full paths)?
    #[must_use]
    pub fn needs_path(&self) -> bool {
        self.paths.is_some()
    }

    /// Is the entry `name`, at absolute `path` (only looked at when `needs_path`), excluded?
    #[must_use]
    pub fn matches(&self, name: &[u8], path: &[u8]) -> bool {
        if let Some(set) = &self.names
            && set.is_match(as_path(name))
        {
            return true;
        }
        if let Some(set) = &self.paths {
            return set.is_match(as_path(path));
        }
        false
    }
}

fn as_path(b: &[u8]) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_patterns_match_the_last_component_only() {
        let ex = Excludes::new(&["*.log", "node_modules"]).expect("patterns");
        assert!(ex.matches(b"a.log", b"/x/a.log"));
        assert!(ex.matches(b"node_modules", b"/p/node_modules"));
        assert!(!ex.matches(b"a.logx", b"/x/a.logx"));
        assert!(!ex.needs_path());
    }

    #[test]
    fn path_patterns_match_whole_components() {
        let ex = Excludes::new(&["/srv/cache", "build/tmp"]).expect("patterns");
        assert!(ex.needs_path());
        assert!(ex.matches(b"cache", b"/srv/cache"));
        assert!(!ex.matches(b"cache2", b"/srv/cache2"));
        assert!(ex.matches(b"tmp", b"/home/u/build/tmp"));
        assert!(!ex.matches(b"tmp", b"/home/u/rebuild/tmp"));
    }

    #[test]
    fn a_broken_pattern_is_a_clear_error() {
        let err = Excludes::new(&["a[b"]).expect_err("unclosed class");
        assert!(err.to_string().contains("a[b"));
    }
}
