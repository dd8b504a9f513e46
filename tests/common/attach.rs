//! A place for attach tests: a runtime directory of its own (0700, so only the test's
//! processes meet), a cache home, and a small tree (a/deep/one 300 kB, b/two 100 kB) under a
//! canonical root; `dtui`, `dtui watch`, the browser and `dtui scan` run in it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::pty::Pty;

pub struct Place {
    _dir: tempfile::TempDir,
    pub runtime: PathBuf,
    pub cache: PathBuf,
    pub root: PathBuf,
}

#[must_use]
pub fn place() -> Place {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).expect("mkdir");
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let cache = dir.path().join("cache");
    let root = dir.path().join("tree");
    for d in ["a/deep", "b"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    super::write(&root.join("a/deep/one"), 300_000);
    super::write(&root.join("b/two"), 100_000);
    let root = root.canonicalize().expect("canonical root");
    Place {
        runtime,
        cache,
        root,
        _dir: dir,
    }
}

impl Place {
    /// `dtui` with this place's runtime directory and the cache home `cache` (an attached
    /// process must not need one: give it one of its own to see it stays empty).
    pub fn dtui(&self, cache: &Path) -> Command {
        let mut c = super::dtui();
        c.env("XDG_RUNTIME_DIR", &self.runtime)
            .env("XDG_CACHE_HOME", cache);
        c
    }

    /// The rendezvous directory.
    #[must_use]
    pub fn dir(&self) -> PathBuf {
        self.runtime.join("dtui")
    }

    /// `dtui watch` of the root: the process, its stdout lines, and what it said up to its
    /// `tree:` line (its tree ready).
    pub fn watch(&self, cache: &Path) -> (Child, Receiver<String>, Vec<String>) {
        let (child, lines) = super::spawn_lines(self.dtui(cache).arg("watch").arg(&self.root));
        let said = until_line(&lines, "dtui watch says its tree is ready", |l| {
            l.starts_with("tree:")
        });
        (child, lines, said)
    }

    /// The browser of `path` (with `args` before it) in a pseudo-terminal tall enough for the
    /// whole help, with the cache home `cache`.
    pub fn browser_of(&self, path: &Path, cache: &Path, args: &[&str]) -> Pty {
        let path = path.to_str().expect("utf-8 path");
        let args: Vec<&str> = args.iter().copied().chain([path]).collect();
        Pty::dtui(
            &args,
            &[
                ("XDG_RUNTIME_DIR", self.runtime.as_os_str()),
                ("XDG_CACHE_HOME", cache.as_os_str()),
            ],
            50,
            110,
        )
    }

    /// The browser of the root.
    pub fn browser(&self, cache: &Path, args: &[&str]) -> Pty {
        self.browser_of(&self.root, cache, args)
    }

    /// `dtui scan` of `path` with `args` and the cache home `cache`: what it printed, after
    /// a success without a panic.
    pub fn scan_raw(&self, path: &Path, cache: &Path, args: &[&str]) -> String {
        let out = super::run(self.dtui(cache).arg("scan").args(args).arg(path));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{out:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `dtui scan` of the root (attached when an owner runs and the cache is on), without its
    /// lines about where the tree came from and how long it took.
    pub fn scan(&self, args: &[&str]) -> String {
        without_origin(&self.scan_raw(&self.root, &self.cache, args))
    }
}

/// A scan's report without its `cache` and `elapsed` lines (which differ attached or not).
#[must_use]
pub fn without_origin(report: &str) -> String {
    report
        .lines()
        .filter(|l| {
            !l.trim_start().starts_with("cache ") && !l.trim_start().starts_with("elapsed ")
        })
        .fold(String::new(), |mut all, l| {
            all.push_str(l);
            all.push('\n');
            all
        })
}

/// Lines until one matches (30 s at most); all of them.
pub fn until_line(
    lines: &Receiver<String>,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut said = Vec::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("timed out waiting for {what}: {said:?}"));
        let end = done(&line);
        said.push(line);
        if end {
            return said;
        }
    }
}

/// SIGTERM, then waits.
pub fn stop(mut child: Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}
