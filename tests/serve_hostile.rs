//! `dtui serve`'s port under attack: requests a scraper never sends (absolute URIs, header
//! names with spaces, folded lines, bodies, pipelining, %-encoding, HEAD, huge heads), slow
//! and silent clients, and a root whose path has bytes a label must escape.

mod common;
mod serve_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serve_support::*;

fn small(root: &std::path::Path) {
    std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
    write(&root.join("a/b/f"), 10_000);
}

/// A served small tree.
fn served() -> (tempfile::TempDir, Served) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_in(dir.path(), "root");
    small(&root);
    let s = serve(&dir.path().join("cache"), &[], &[&root]);
    (dir, s)
}

#[test]
fn an_absolute_uri_of_the_metrics_is_answered_as_its_path() {
    // RFC 9112 3.2.2: a server MUST accept the absolute form of a request target.
    let (_dir, s) = served();
    let req = format!(
        "GET http://{}/metrics HTTP/1.1\r\nHost: {}\r\n\r\n",
        s.addr, s.addr
    );
    let (status, body) = raw(s.addr, req.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    let (status, _) = raw(
        s.addr,
        b"GET HTTP://LOCALHOST/healthz?x HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(status, 200);
    // Only the path decides: another one, or none, is still not found.
    for target in ["http://x/other", "http://x", "http:/metrics", "//x/metrics"] {
        let (status, _) = raw(
            s.addr,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
        assert_eq!(status, 404, "{target}");
    }
}

#[test]
fn a_header_name_with_whitespace_or_a_folded_line_is_a_bad_request() {
    // RFC 9112 5.1: whitespace between a field name and its colon MUST be answered 400 (a
    // proxy may read `Content-Length : 5` as a body this server leaves unread); 5.2: a folded
    // line is refused or unfolded, never taken as a header of its own.
    let (_dir, s) = served();
    for head in [
        "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\n: empty name\r\n\r\n",
    ] {
        let (status, _) = raw(s.addr, head.as_bytes());
        assert_eq!(status, 400, "{head:?}");
    }
}

#[test]
fn smuggling_pipelining_encoding_and_head_get_no_second_answer_and_nothing_else_served() {
    let (_dir, s) = served();
    // A body in any form is refused.
    for head in [
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 7\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\ncontent-length: +0\r\n\r\n",
    ] {
        let (status, _) = raw(s.addr, head.as_bytes());
        assert_eq!(status, 400, "{head:?}");
    }
    // Two requests in one write: one answer, then the end.
    let (status, body) = raw(
        s.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(!body.contains("HTTP/1.1"), "a second answer: {body}");
    // %-encoded paths, dot segments, a NUL, a fragment: not the two paths, and nothing read.
    for target in [
        "/%6detrics",
        "/metrics%00",
        "/metrics/..",
        "/./metrics",
        "/metrics#x",
        "/%2e%2e/etc/passwd",
        "*",
    ] {
        let (status, body) = raw(
            s.addr,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
        assert_eq!(status, 404, "{target}: {body}");
    }
    // HEAD is refused as documented (405 with Allow), not answered with a body.
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.write_all(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(answer.contains("Allow: GET\r\n"), "{answer}");
    // A head past 8 KiB: 431, whether it comes as one header or many.
    let long = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(20_000));
    assert_eq!(raw(s.addr, long.as_bytes()).0, 431);
    let many = format!(
        "GET /metrics HTTP/1.1\r\n{}\r\n",
        "X-A: b\r\n".repeat(2_000)
    );
    assert_eq!(raw(s.addr, many.as_bytes()).0, 431);
    // Bytes that are not UTF-8, and bare newlines: refused or timed out, never answered 200.
    let (status, _) = raw(s.addr, b"GET /metrics HTTP/1.1\r\nX: \xff\r\n\r\n");
    assert_eq!(status, 400);
    assert_eq!(get(s.addr, "/metrics").0, 200, "the port still answers");
}

#[test]
fn slow_and_silent_clients_are_cut_off_and_the_port_answers_again() {
    let (_dir, s) = served();
    // A client dripping its head a byte every half second is cut off within the 5 s it has.
    let t0 = Instant::now();
    let slow = TcpStream::connect(s.addr).expect("connect");
    let mut drip = slow.try_clone().expect("dup");
    // The dripper paces itself on a channel the test closes when it ends (no fixed sleep).
    let (_end, ended) = crossbeam_channel::bounded::<()>(0);
    std::thread::spawn(move || {
        for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .chain(&[b'y'; 60])
        {
            if drip.write_all(&[*b]).is_err() {
                return;
            }
            if !matches!(
                ended.recv_timeout(Duration::from_millis(500)),
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
            ) {
                return;
            }
        }
    });
    let mut slow = slow;
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut got = Vec::new();
    let _ = slow.read_to_end(&mut got);
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "a slow head was read for {:?}",
        t0.elapsed()
    );
    assert!(got.is_empty(), "a slow head was answered");
    // Silent connections past the limit are closed unread; once they go, scrapes work.
    let silent: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(s.addr).expect("connect"))
        .collect();
    drop(silent);
    poll_until(Duration::from_secs(10), "the port to come back", || {
        try_get(s.addr, "/healthz")
            .is_some_and(|(st, _)| st == 200)
            .then_some(())
    });
}

#[test]
fn a_root_with_a_quote_a_newline_and_a_byte_not_utf8_is_one_escaped_label() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"r\"o\no\\t\xff\x1b[31m"));
    small(&root);
    let (mut child, lines) = spawn_lines(
        dtui()
            .args(["serve", "--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(dir.path().join("cache"))
            .arg(&root),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        let l = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the port");
        if let Some(a) = l.strip_prefix("listening on http://") {
            break a.trim_end_matches("/metrics").parse().expect("addr");
        }
    };
    poll_until(
        deadline.saturating_duration_since(Instant::now()),
        "the root to be ready",
        || (get(addr, "/healthz").0 == 200).then_some(()),
    );
    let (_, body) = get(addr, "/metrics");
    let _ = child.kill();
    let _ = child.wait();
    // Every line a comment or one sample; no raw control character anywhere.
    let m = serve_support::Metrics::parse(&body);
    assert!(
        !body.chars().any(|c| c.is_control() && c != '\n'),
        "{body:?}"
    );
    let want = r#"root="/"#;
    let label =
        m.0.keys()
            .find(|k| k.starts_with("dtui_tree_entries{"))
            .expect("the entries sample")
            .clone();
    assert!(label.contains(want), "{label}");
    assert!(
        label.ends_with(r#"r\"o\\no\\\\t\\xff\\u{1b}[31m"}"#),
        "{label}"
    );
}
