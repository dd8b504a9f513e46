//! `dtui serve` as a user runs it: the real binary on a port the kernel picks, scraped over
//! plain HTTP. Its metrics equal `du` for the root and its children, and follow writes and
//! removals; SIGTERM stops it cleanly and the next start catches up; the port answers nothing
//! but `GET /metrics` and `GET /healthz`; odd names are escaped; two roots side by side.

mod common;
mod serve_support;

use std::fs;
use std::path::Path;

use common::*;
use serve_support::*;

/// A root with directories to a depth of three, a sparse file, and no hard link between
/// children (`du` of each child alone then counts what the tree charges to it).
fn small_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).expect("mkdir");
    fs::create_dir_all(root.join("d")).expect("mkdir");
    fs::create_dir_all(root.join("empty")).expect("mkdir");
    write(&root.join("top"), 1000);
    write(&root.join("a/f1"), 70_000);
    write(&root.join("a/b/f2"), 5000);
    write(&root.join("a/b/c/deep"), 300_000);
    let sparse = fs::File::create(root.join("d/sparse")).expect("sparse");
    sparse.set_len(10_000_000).expect("truncate");
    write(&root.join("d/f3"), 12_345);
}

/// Every directory to depth 2 below `root`, the root included.
fn dirs_to_depth_two(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    for e in fs::read_dir(root)
        .expect("read_dir")
        .map(|e| e.expect("entry"))
    {
        if e.file_type().expect("type").is_dir() {
            out.push(e.path());
            for f in fs::read_dir(e.path())
                .expect("read_dir")
                .map(|f| f.expect("entry"))
            {
                if f.file_type().expect("type").is_dir() {
                    out.push(f.path());
                }
            }
        }
    }
    out
}

#[test]
fn metrics_equal_du_for_the_root_and_its_children_and_follow_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_in(dir.path(), "root");
    small_tree(&root);
    let mut s = serve(&dir.path().join("cache"), &[], &[&root]);
    let m = s.metrics();
    for d in dirs_to_depth_two(&root) {
        assert_eq!(
            m.dir("dtui_directory_disk_bytes", &root, &d),
            Some(du(&d, false)),
            "disk of {}",
            d.display()
        );
        assert_eq!(
            m.dir("dtui_directory_apparent_bytes", &root, &d),
            Some(du(&d, true)),
            "apparent of {}",
            d.display()
        );
        assert_eq!(
            m.dir("dtui_directory_entries", &root, &d),
            Some(find_count(&d)),
            "entries of {}",
            d.display()
        );
    }
    // Depth 3 is not exported by default, unless among the 50 largest: here every directory is.
    assert!(m.paths(&root).contains(&label(&root.join("a/b/c"))));
    assert_eq!(
        m.health("dtui_state", &root),
        None,
        "the state has a state label"
    );
    assert_eq!(
        m.0.get(&format!(
            "dtui_state{{root=\"{}\",state=\"live\"}}",
            label(&root)
        )),
        Some(&1.0)
    );
    assert!(m.health("dtui_tree_entries", &root) == Some((find_count(&root) + 1) as f64));
    assert!(m.health("dtui_cache_bytes", &root).is_some_and(|b| b > 0.0));

    // A write, then a removal: the scrape follows each (values are read at the scrape).
    let big = root.join("a/b/grown");
    write(&big, 5_000_000);
    for d in [&root, &root.join("a"), &root.join("a/b")] {
        poll_equal(
            &format!("disk of {} after a write", d.display()),
            || Some(du(d, false)),
            || s.metrics().dir("dtui_directory_disk_bytes", &root, d),
        );
    }
    // A directory made at depth 1 is exported once the set is chosen again (about a second).
    fs::create_dir(root.join("later")).expect("mkdir");
    write(&root.join("later/x"), 4096);
    poll_equal(
        "a new child exported",
        || Some(du(&root.join("later"), false)),
        || {
            s.metrics()
                .dir("dtui_directory_disk_bytes", &root, &root.join("later"))
        },
    );
    fs::remove_file(&big).expect("rm");
    poll_equal(
        "disk of the root after a removal",
        || Some(du(&root, false)),
        || s.metrics().dir("dtui_directory_disk_bytes", &root, &root),
    );
    let m = s.metrics();
    assert!(
        m.health("dtui_batches_total", &root)
            .is_some_and(|b| b >= 1.0)
    );
    assert!(
        m.health("dtui_events_total", &root)
            .is_some_and(|e| e >= 1.0)
    );
    assert!(m.health("dtui_last_batch_age_seconds", &root).is_some());
    assert_eq!(m.health("dtui_lost_events_total", &root), Some(0.0));
    assert!(s.stop().success());
}

#[test]
fn the_top_largest_are_exported_at_any_depth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_in(dir.path(), "root");
    fs::create_dir_all(root.join("x/y/z/deep")).expect("mkdir");
    fs::create_dir_all(root.join("small/one")).expect("mkdir");
    write(&root.join("x/y/z/deep/big"), 2_000_000);
    write(&root.join("small/one/f"), 10);
    let s = serve(
        &dir.path().join("cache"),
        &["--metrics-depth", "1", "--metrics-top", "5"],
        &[&root],
    );
    let paths = s.metrics().paths(&root);
    let want: Vec<String> = ["", "/small", "/x", "/x/y", "/x/y/z", "/x/y/z/deep"]
        .iter()
        .map(|p| format!("{}{p}", label(&root)))
        .collect();
    assert_eq!(paths, want, "depth 1, and the 5 largest (small/one is not)");
}

#[test]
fn sigterm_stops_cleanly_and_the_next_start_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_in(dir.path(), "root");
    small_tree(&root);
    let cache = dir.path().join("cache");
    let mut s = serve(&cache, &[], &[&root]);
    assert!(s.seen.iter().any(|l| l.contains("cache new: full scan")));
    write(&root.join("a/while-serving"), 40_000);
    poll_equal(
        "the write seen",
        || Some(du(&root, false)),
        || s.metrics().dir("dtui_directory_disk_bytes", &root, &root),
    );
    let status = s.stop();
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
    let saved: Vec<_> = fs::read_dir(&cache)
        .expect("the cache dir")
        .map(|e| e.expect("entry").path())
        .collect();
    for ext in ["arena", "db"] {
        assert!(
            saved
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == ext)),
            "a .{ext} file: {saved:?}"
        );
    }

    // Changed while stopped: the next start loads the cache and catches up.
    write(&root.join("d/while-stopped"), 123_456);
    fs::remove_dir_all(root.join("a/b")).expect("rm");
    let mut s = serve(&cache, &[], &[&root]);
    assert!(
        s.seen.iter().any(|l| l.contains("cache loaded")),
        "{:?}",
        s.seen
    );
    let m = s.metrics();
    for d in dirs_to_depth_two(&root) {
        assert_eq!(
            m.dir("dtui_directory_disk_bytes", &root, &d),
            Some(du(&d, false)),
            "disk of {} after the catch-up",
            d.display()
        );
    }
    assert!(
        !m.paths(&root).contains(&label(&root.join("a/b"))),
        "a removed directory is no longer exported"
    );
    assert_eq!(s.stop().code(), Some(0));
}

#[test]
fn the_port_refuses_everything_but_get_of_metrics_and_healthz() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_in(dir.path(), "root");
    write(&root.join("f"), 10);
    let s = serve(&dir.path().join("cache"), &[], &[&root]);
    let addr = s.addr;
    let (status, body) = get(addr, "/healthz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("live {}\n", root.display()));
    for (request, want) in [
        (&b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"[..], 405),
        (b"PUT /metrics HTTP/1.1\r\n\r\n", 405),
        (b"DELETE /healthz HTTP/1.1\r\n\r\n", 405),
        (b"HEAD /metrics HTTP/1.1\r\n\r\n", 405),
        (b"GET / HTTP/1.1\r\n\r\n", 404),
        (b"GET /metrics/ HTTP/1.1\r\n\r\n", 404),
        (b"GET /../../etc/passwd HTTP/1.1\r\n\r\n", 404),
        (b"GET /tmp HTTP/1.1\r\n\r\n", 404),
        (
            b"GET /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
            400,
        ),
        (
            b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (b"GET /metrics SMTP\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ] {
        let (status, body) = raw(addr, request);
        assert_eq!(
            status,
            want,
            "{:?}: {body}",
            String::from_utf8_lossy(request)
        );
        assert!(!body.contains("dtui_"), "no metrics in a refusal: {body}");
    }
    // A request head past 8 KiB is refused without reading on.
    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    huge.extend(b"\r\n\r\n");
    assert_eq!(raw(addr, &huge).0, 431);
    // And the port still answers afterwards.
    assert_eq!(get(addr, "/metrics").0, 200);
}

#[test]
fn odd_names_are_escaped_in_labels() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_in(dir.path(), "root");
    // Raw name, and its label value as written: `display_name`'s escape (`\n`, `\xe9`, `\\`),
    // then the format's (`\\`, `\"`).
    let odd: [(&[u8], &str); 5] = [
        (b"new\nline", "new\\\\nline"),
        (b"caf\xe9", "caf\\\\xe9"),
        (b"q\"uote", "q\\\"uote"),
        (b"back\\slash", "back\\\\\\\\slash"),
        (b"sp ace {x}=1", "sp ace {x}=1"),
    ];
    for (i, (name, _)) in odd.iter().enumerate() {
        let d = root.join(std::ffi::OsStr::from_bytes(name));
        fs::create_dir(&d).expect("mkdir");
        write(&d.join("f"), 1000 * (i + 1));
    }
    let s = serve(&dir.path().join("cache"), &[], &[&root]);
    let (status, body) = get(s.addr, "/metrics");
    assert_eq!(status, 200);
    // Every line is one sample or one comment: no name split a line.
    for line in body.lines() {
        assert!(
            line.starts_with("# ") || line.starts_with("dtui_"),
            "{line:?}"
        );
    }
    let m = Metrics::parse(&body);
    for (i, (name, written)) in odd.iter().enumerate() {
        let path_label = format!("{}/{written}", label(&root));
        let d = root.join(std::ffi::OsStr::from_bytes(name));
        assert_eq!(
            m.labelled("dtui_directory_apparent_bytes", &root, &path_label),
            Some(du(&d, true)),
            "{:?} as {path_label}",
            String::from_utf8_lossy(name)
        );
        assert_eq!(du(&d, true), 4096 + 1000 * (i as u64 + 1));
    }
}

#[test]
fn two_roots_are_served_side_by_side_and_overlapping_roots_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = root_in(dir.path(), "one");
    let two = root_in(dir.path(), "two");
    write(&one.join("f"), 10_000);
    fs::create_dir(two.join("sub")).expect("mkdir");
    write(&two.join("sub/g"), 300_000);
    let cache = dir.path().join("cache");
    let mut s = serve(&cache, &[], &[&one, &two]);
    let m = s.metrics();
    for root in [&one, &two] {
        assert_eq!(
            m.dir("dtui_directory_disk_bytes", root, root),
            Some(du(root, false))
        );
        assert!(m.paths(root).iter().all(|p| p.starts_with(&label(root))));
    }
    assert_eq!(
        m.dir("dtui_directory_disk_bytes", &two, &two.join("sub")),
        Some(du(&two.join("sub"), false))
    );
    // Nothing of one root under the other's label.
    assert_eq!(
        m.dir("dtui_directory_disk_bytes", &one, &two.join("sub")),
        None
    );
    write(&two.join("sub/h"), 50_000);
    poll_equal(
        "the second root follows",
        || Some(du(&two, false)),
        || s.metrics().dir("dtui_directory_disk_bytes", &two, &two),
    );
    assert_eq!(s.stop().code(), Some(0));

    for args in [
        vec![one.clone(), one.join("..").join("one").join("sub-x")],
        vec![one.clone(), one.clone()],
        vec![dir.path().to_path_buf(), two.clone()],
    ] {
        fs::create_dir_all(one.join("sub-x")).expect("mkdir");
        let out = run(dtui()
            .args(["serve", "--cache-dir"])
            .arg(&cache)
            .args(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is inside") || stderr.contains("given twice"),
            "{stderr}"
        );
    }
}
