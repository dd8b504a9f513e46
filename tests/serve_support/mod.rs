//! Helpers for the `dtui serve` tests (`serve`, `prometheus`): the real binary serving roots on
//! a port the kernel picks, plain HTTP over `TcpStream`, the metrics parsed into a map.
#![allow(dead_code, reason = "each test crate uses a different subset")]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::common::{dtui, spawn_lines};

/// A running `dtui serve`, killed if the test ends without stopping it.
pub struct Served {
    pub child: Option<Child>,
    pub lines: Receiver<String>,
    pub addr: SocketAddr,
    /// Every line seen on its stdout.
    pub seen: Vec<String>,
}

/// Starts `dtui serve --listen 127.0.0.1:0 --cache-dir CACHE ARGS... ROOTS...` and waits for
/// its port and for every root to be ready.
pub fn serve(cache: &Path, args: &[&str], roots: &[&Path]) -> Served {
    let (child, lines) = spawn_lines(
        dtui()
            .args(["serve", "--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(cache)
            .args(args)
            .args(roots),
    );
    let mut s = Served {
        child: Some(child),
        lines,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        seen: Vec::new(),
    };
    let line = s.wait_line("the port", |l| l.starts_with("listening on http://"));
    let addr = line
        .trim_start_matches("listening on http://")
        .trim_end_matches("/metrics");
    s.addr = addr.parse().expect("an address");
    // Each root's engine says so when it is ready, in whatever order they finish.
    let mut waiting: Vec<String> = roots
        .iter()
        .map(|r| {
            format!(
                "ready {}:",
                r.canonicalize().expect("canonical root").display()
            )
        })
        .collect();
    while !waiting.is_empty() {
        let line = s.wait_line("every tree ready", |l| {
            waiting.iter().any(|w| l.starts_with(w.as_str()))
        });
        waiting.retain(|w| !line.starts_with(w.as_str()));
    }
    s
}

impl Served {
    /// Waits (10 s at most) for a stdout line that `matches`; returns it.
    pub fn wait_line(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if matches(&l) {
                        return l;
                    }
                }
                Err(e) => panic!(
                    "dtui serve: no line for {what} ({e}); it said {:?}",
                    self.seen
                ),
            }
        }
    }

    /// `GET /metrics`, parsed.
    pub fn metrics(&self) -> Metrics {
        let (status, body) = get(self.addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }

    /// Sends SIGTERM and waits (20 s at most) for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("still running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
        super::common::poll_until(
            Duration::from_secs(20),
            "dtui serve to stop after SIGTERM",
            || child.try_wait().expect("wait"),
        )
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends `request` as it is and reads the whole answer (the server closes): status and body.
pub fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    try_raw(addr, request)
        .unwrap_or_else(|| panic!("no answer from {addr} (nothing listens, or it closed unread)"))
}

/// The same, `None` when nothing listens (yet) on `addr` or the connection is closed unread.
pub fn try_raw(addr: SocketAddr, request: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The server may answer (and close) before all of an oversized request is sent.
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    // Closed unread (the server at its limit of connections, or stopping): no answer yet.
    if answer.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Some((status, body))
}

/// `GET path`, `None` when nothing listens on `addr`.
pub fn try_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    try_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// A scrape: each sample's name and labels, as written, to its value.
#[derive(Debug)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    pub fn parse(body: &str) -> Metrics {
        assert!(body.ends_with("# EOF\n"), "ends with # EOF: {body}");
        let mut map = BTreeMap::new();
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            let (key, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("a sample is `name{{labels}} value`: {line:?}"));
            assert!(key.ends_with('}'), "labels close the key: {line:?}");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
            assert!(map.insert(key.to_owned(), value).is_none(), "twice: {line}");
        }
        Metrics(map)
    }

    /// A directory's value: `name{root="ROOT",path="PATH"}`, both plain (no escaping needed).
    pub fn dir(&self, name: &str, root: &Path, path: &Path) -> Option<u64> {
        self.labelled(name, root, &label(path))
    }

    /// The same, with the path's label value given as written (escaped).
    pub fn labelled(&self, name: &str, root: &Path, path_label: &str) -> Option<u64> {
        let key = format!("{name}{{root=\"{}\",path=\"{path_label}\"}}", label(root));
        self.0.get(&key).map(|v| *v as u64)
    }

    /// A root's health sample: `name{root="ROOT"}`.
    pub fn health(&self, name: &str, root: &Path) -> Option<f64> {
        self.0
            .get(&format!("{name}{{root=\"{}\"}}", label(root)))
            .copied()
    }

    /// The paths exported for a root (as written).
    pub fn paths(&self, root: &Path) -> Vec<String> {
        let prefix = format!(
            "dtui_directory_disk_bytes{{root=\"{}\",path=\"",
            label(root)
        );
        self.0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.trim_end_matches("\"}").to_owned())
            .collect()
    }
}

/// A plain path as a label value (the tests' paths need no escaping).
pub fn label(path: &Path) -> String {
    let s = path.to_str().expect("a UTF-8 test path");
    assert!(
        !s.contains(['\\', '"', '\n']),
        "a test path needing no escape"
    );
    s.to_owned()
}

/// Polls `get` until it equals `want` (20 s at most); the last value seen.
pub fn poll_equal<T: PartialEq + std::fmt::Debug>(
    what: &str,
    want: impl Fn() -> T,
    get: impl Fn() -> T,
) -> T {
    super::common::poll_until_or(
        Duration::from_secs(20),
        || {
            let (w, g) = (want(), get());
            if w == g { Ok(g) } else { Err((w, g)) }
        },
        |(w, g)| format!("{what}: still {g:?}, want {w:?}, after 20 s"),
    )
}

/// A canonical temp root (the label `dtui serve` gives it).
pub fn root_in(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(&p).expect("mkdir");
    p.canonicalize().expect("canonical")
}
