//! Names that would fool a reader if printed raw, through every output: bidi controls, zero-width
//! and other invisible characters, tags, and two names that differ only in one byte that is
//! not UTF-8. Each is shown escaped (`\u{202e}`, `\xff`) by `dtui scan`, `dtui changes`, the
//! lines of `dtui watch`, `dtui cache list` and the browser (its list and its delete dialog).

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::pty::{NO_ENV, Pty};
use common::*;

/// Each hostile name (raw bytes), as every output must show it, largest first.
const NAMES: &[(&[u8], &str)] = &[
    // "exe.jpg" to the eye if printed raw.
    ("rlo\u{202e}gpj.exe".as_bytes(), r"rlo\u{202e}gpj.exe"),
    ("zw\u{200b}sp".as_bytes(), r"zw\u{200b}sp"),
    ("bom\u{feff}x".as_bytes(), r"bom\u{feff}x"),
    ("tag\u{e0041}x".as_bytes(), r"tag\u{e0041}x"),
    ("iso\u{2066}x".as_bytes(), r"iso\u{2066}x"),
    (b"inv\xfe", r"inv\xfe"),
    (b"inv\xff", r"inv\xff"),
];

/// Characters no output may carry raw (their UTF-8 bytes); U+FFFD would mean a name lost a byte.
const NEVER_RAW: &[char] = &[
    '\u{202e}',
    '\u{200b}',
    '\u{feff}',
    '\u{e0041}',
    '\u{2066}',
    '\u{fffd}',
];

/// The root's own name is hostile too (it is printed by `scan` and `cache list`).
const ROOT_NAME: &str = "root\u{202e}\u{200b}";
const ROOT_SHOWN: &str = r"root\u{202e}\u{200b}";

fn make_dirs(root: &Path) {
    for (i, (name, _)) in NAMES.iter().enumerate() {
        let d = root.join(OsStr::from_bytes(name));
        std::fs::create_dir(&d).expect("mkdir");
        write(&d.join("f"), 100_000 * (NAMES.len() - i));
    }
}

fn new_root(parent: &Path) -> PathBuf {
    let root = parent.join(ROOT_NAME);
    std::fs::create_dir(&root).expect("mkdir");
    root
}

/// No raw hostile character in `out`, and every name shown as it must be.
fn assert_escaped(what: &str, out: &[u8], names: &[&str]) {
    let text = String::from_utf8_lossy(out);
    for c in NEVER_RAW {
        let mut buf = [0; 4];
        let raw = c.encode_utf8(&mut buf).as_bytes();
        assert!(
            !out.windows(raw.len()).any(|w| w == raw),
            "{what}: {c:?} printed raw:\n{text}"
        );
    }
    assert!(
        !out.contains(&0xfe) && !out.contains(&0xff),
        "{what}:\n{text}"
    );
    for shown in names {
        assert!(text.contains(shown), "{what}: {shown} not shown:\n{text}");
    }
}

fn all_shown() -> Vec<&'static str> {
    NAMES.iter().map(|(_, shown)| *shown).collect()
}

#[test]
fn scan_and_cache_list_show_hostile_names_escaped_and_distinct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let root = new_root(dir.path());
    make_dirs(&root);
    let out = run(dtui().arg("scan").arg("--cache-dir").arg(&cache).arg(&root));
    assert!(out.status.success(), "{out:?}");
    let mut want = all_shown();
    want.push(ROOT_SHOWN);
    assert_escaped("scan", &out.stdout, &want);
    assert_escaped("scan's stderr", &out.stderr, &[]);

    let out = run(dtui().args(["cache", "list", "--cache-dir"]).arg(&cache));
    assert!(out.status.success(), "{out:?}");
    assert_escaped("cache list", &out.stdout, &[ROOT_SHOWN]);
}

#[test]
fn scan_json_carries_no_invisible_character_raw() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = new_root(dir.path());
    make_dirs(&root);
    let out = run(dtui().args(["scan", "--json", "--no-cache"]).arg(&root));
    assert!(out.status.success(), "{out:?}");
    let raw: &[u8] = "\u{202e}".as_bytes();
    assert!(
        !out.stdout.windows(raw.len()).any(|w| w == raw),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The same names to a JSON reader.
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = v["largest"]
        .as_array()
        .expect("largest")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(names.contains(&"rlo\u{202e}gpj.exe"), "{names:?}");
    assert!(names.contains(&"tag\u{e0041}x"), "{names:?}");
}

#[test]
fn changes_shows_hostile_names_escaped_and_distinct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let root = new_root(dir.path());
    let changes = || {
        let out = run(dtui()
            .arg("changes")
            .arg("--cache-dir")
            .arg(&cache)
            .arg(&root));
        assert!(out.status.success(), "{out:?}");
        out
    };
    let _ = changes();
    make_dirs(&root);
    let out = changes();
    let want: Vec<String> = NAMES.iter().map(|(_, s)| format!("{s}/  (new)")).collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_escaped("changes", &out.stdout, &want);
}

#[test]
fn watch_lines_show_hostile_names_escaped_and_distinct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = new_root(dir.path());
    let mut child = dtui()
        .args(["watch", "--no-cache", "--watch-backend", "inotify"])
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            if line.map(|l| tx.send(l)).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |what: &str, cond: &dyn Fn(&str) -> bool| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no line with {what}: {}", String::from_utf8_lossy(&seen)));
        seen.extend_from_slice(&line);
        seen.push(b'\n');
        if cond(&String::from_utf8_lossy(&line)) {
            break;
        }
    };
    wait_for("tree:", &|l| l.starts_with("tree: "));
    // One at a time: a batch line names at most 8 changes.
    for (name, shown) in NAMES {
        let d = root.join(OsStr::from_bytes(name));
        std::fs::create_dir(&d).expect("mkdir");
        write(&d.join("f"), 10_000);
        let want = format!(" {shown}");
        wait_for(shown, &|l| l.starts_with("batch ") && l.contains(&want));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_escaped("watch", &seen, &all_shown());
}

#[test]
fn the_browser_shows_hostile_names_escaped_and_distinct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = new_root(dir.path());
    make_dirs(&root);
    let mut pty = Pty::dtui(
        &[OsStr::new("--no-cache"), root.as_os_str()],
        NO_ENV,
        30,
        100,
    );
    let want: Vec<String> = NAMES.iter().map(|(_, s)| format!("{s}/")).collect();
    let screen = pty.wait_for("every name, the scan done", |s| {
        want.iter().all(|w| s.contains(w.as_str())) && s.contains("[live]")
    });
    assert!(screen.contains(ROOT_SHOWN), "the header:\n{screen}");
    // The delete dialog names the entry under the cursor (the largest) the same way.
    pty.send(b"d");
    let screen = pty.wait_for("the delete dialog", |s| s.contains("Delete "));
    assert!(
        screen.contains(r"Delete rlo\u{202e}gpj.exe"),
        "the dialog:\n{screen}"
    );
    pty.send(b"\x1b");
    pty.wait_for("the dialog closed", |s| !s.contains("Delete "));
    assert_eq!(pty.quit(), 0);
    assert_escaped("the browser", &pty.raw, &[]);
}

/// Regression: the program name an export claims was printed raw by `dtui scan -f` (and shown
/// in the browser's footer).
#[test]
fn an_exports_program_name_is_shown_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("export.json");
    std::fs::write(
        &file,
        "[1,2,{\"progname\":\"x\\u001b]0;pwned\\u0007\u{202e}\",\"progver\":\"1\\u001b[2J\"},\
         [{\"name\":\"/r\"},{\"name\":\"f\",\"asize\":1}]]",
    )
    .expect("write");
    let out = run(dtui().arg("scan").arg("-f").arg(&file));
    assert!(out.status.success(), "{out:?}");
    assert!(
        !out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07),
        "{out:?}"
    );
    assert_escaped(
        "scan -f",
        &out.stdout,
        &[r"x\u{1b}]0;pwned\u{7}\u{202e} 1\u{1b}[2J"],
    );
}
