//! Helpers for the cache tests (`cache_private`, `cache_trust`): the real binary with a
//! timeout, a small tree, the modes and names in a directory.
#![allow(dead_code, reason = "each test crate uses a different subset")]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crossbeam_channel::bounded;

use super::common::write;

pub const NOBODY: u32 = 65534;

/// Runs a command to its end, failing the test if it takes more than `secs` (a FIFO opened
/// for reading would block forever).
pub fn run_within(cmd: &mut Command, secs: u64) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let pid = child.id();
    let (tx, rx) = bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    if let Ok(out) = rx.recv_timeout(Duration::from_secs(secs)) {
        return out.expect("wait");
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    panic!("{cmd:?} hung (more than {secs} s)");
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `dtui scan --json --cache-dir CACHE ROOT`: the report, the stderr (it must succeed).
pub fn scan_cached(cmd: &mut Command, cache: &Path, root: &Path) -> (serde_json::Value, String) {
    let out = run_within(
        cmd.args(["scan", "--json", "--cache-dir"])
            .arg(cache)
            .arg(root),
        60,
    );
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let v = serde_json::from_slice(&out.stdout).expect("json");
    (v, stderr)
}

pub fn small_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    write(&root.join("small"), 100);
    write(&root.join("sub/medium"), 70_000);
    write(&root.join("sub/deeper/big"), 300_000);
    fs::hard_link(root.join("sub/deeper/big"), root.join("big-link")).expect("link");
}

pub fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

/// Every entry in `dir` with its mode and owner, sorted by name.
pub fn modes(dir: &Path) -> Vec<(String, u32, u32)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .expect("ls")
        .map(|e| {
            let e = e.expect("entry");
            let m = fs::symlink_metadata(e.path()).expect("stat");
            (
                e.file_name().to_string_lossy().into_owned(),
                m.mode() & 0o7777,
                m.uid(),
            )
        })
        .collect();
    v.sort();
    v
}

pub fn names(dir: &Path) -> Vec<String> {
    modes(dir).into_iter().map(|(n, _, _)| n).collect()
}
