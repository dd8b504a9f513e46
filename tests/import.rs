//! `dtui -f FILE` and `dtui scan -f FILE`: exports written by the real ncdu and gdu (and by
//! `dtui export`) of a real temp tree open with the sizes those tools count, from a file, from
//! standard input and zstd-compressed; malformed exports fail with one line naming the
//! position; the browser on an export is read-only and its keys say why.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::pty::{NO_ENV, Pty, sh_quote};
use common::*;
use disktracker::format::column_size;
use humansize::{BINARY, format_size};

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is needed for this test (apt-get install {tool}; .ci/run does it)"
    );
}

/// A tree with what an export must carry: a nested directory, hard links (all names inside
/// `links/`, so that every directory's total is the same whichever name is charged), a sparse
/// file, a name that is not UTF-8.
fn fixture(root: &Path) {
    fs::create_dir_all(root.join("nested/deeper/deepest")).expect("mkdir");
    write(&root.join("nested/deeper/deepest/data"), 300_000);
    write(&root.join("nested/top"), 20_000);
    fs::create_dir_all(root.join("links/sub")).expect("mkdir");
    write(&root.join("links/original"), 500_000);
    fs::hard_link(root.join("links/original"), root.join("links/second")).expect("link");
    fs::hard_link(root.join("links/original"), root.join("links/sub/third")).expect("link");
    let sparse = fs::File::create(root.join("sparse")).expect("sparse");
    sparse.set_len(40_000_000).expect("truncate");
    write(&root.join(name(b"caf\xe9")), 12_345);
    write(&root.join("small"), 100);
}

/// A fresh temp dir holding `tree/` built by `fixture`.
fn fixture_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir(&root).expect("mkdir");
    fixture(&root);
    (dir, root)
}

fn ncdu_export(root: &Path, out: &Path) {
    need("ncdu");
    let o = run(Command::new("ncdu")
        .arg("-0")
        .arg("-o")
        .arg(out)
        .arg(root)
        .stdin(Stdio::null()));
    assert!(o.status.success(), "ncdu -o failed: {o:?}");
}

fn gdu_export(root: &Path, out: &Path) {
    need("gdu");
    let o = run(Command::new("gdu")
        .args(["-n", "--no-color", "-o"])
        .arg(out)
        .arg(root)
        .stdin(Stdio::null()));
    assert!(o.status.success(), "gdu -o failed: {o:?}");
}

/// `dtui scan -f FILE --json --top 100`: the report (the export must open).
fn scan_file(file: &Path) -> serde_json::Value {
    let out = run(dtui()
        .args(["scan", "--json", "--top", "100", "-f"])
        .arg(file));
    assert!(out.status.success(), "scan -f failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("scan -f --json prints JSON")
}

/// The report's size of a root entry by name (disk usage or apparent size).
fn entry_size(report: &serde_json::Value, entry: &str, field: &str) -> u64 {
    report["largest"]
        .as_array()
        .expect("largest")
        .iter()
        .find(|e| e["name"] == entry)
        .unwrap_or_else(|| panic!("{entry} in the report: {report}"))[field]
        .as_u64()
        .expect("a size")
}

#[test]
fn an_ncdu_export_opens_with_the_totals_ncdu_counts() {
    let (dir, root) = fixture_dir();
    let file = dir.path().join("ncdu.json");
    ncdu_export(&root, &file);
    let r = scan_file(&file);
    // ncdu counts as du does: hard links once, sparse files by their blocks.
    assert_eq!(r["disk"], du(&root, false), "{r}");
    assert_eq!(r["apparent"], du(&root, true), "{r}");
    assert_eq!(r["items"], find_count(&root), "{r}");
    assert_eq!(r["dirs"], 6, "the root and five below: {r}");
    // Each directory counts each of its inodes once, as ncdu shows it (du of that directory).
    for entry in ["links", "nested", "sparse", "small"] {
        let path = root.join(entry);
        assert_eq!(entry_size(&r, entry, "disk"), du(&path, false), "{entry}");
        assert_eq!(
            entry_size(&r, entry, "apparent"),
            du(&path, true),
            "{entry}"
        );
    }
    let cache = r["cache"].as_str().expect("origin");
    assert!(
        cache.contains("imported from") && cache.contains("ncdu 1."),
        "{cache}"
    );
}

#[test]
fn the_browser_shows_an_ncdu_export_with_ncdus_sizes_and_says_it_is_imported() {
    let (dir, root) = fixture_dir();
    let file = dir.path().join("ncdu.json");
    ncdu_export(&root, &file);
    let script = format!("exec {} -f {}", env!("CARGO_BIN_EXE_dtui"), sh_quote(&file));
    let mut pty = Pty::sized("sh", &["-c", &script], NO_ENV, 30, 120);
    let total = format!(
        "Total disk usage: {}",
        format_size(du(&root, false), BINARY)
    );
    pty.wait_for("the list with its totals", |s| {
        s.contains(&total) && s.contains("links/")
    });
    let screen = pty.screen();
    let header = screen.lines().next().expect("a header");
    assert!(header.contains("imported"), "the state word: {screen}");
    assert!(
        header.contains(&root.display().to_string()),
        "the export's root: {screen}"
    );
    let row = |entry: &str| {
        screen
            .lines()
            .find(|l| l.trim_end().ends_with(entry))
            .unwrap_or_else(|| panic!("a row for {entry}:\n{screen}"))
            .to_owned()
    };
    for entry in ["links", "nested"] {
        let shown = column_size(du(&root.join(entry), false));
        assert!(
            row(&format!("{entry}/")).contains(&shown),
            "{entry}: {screen}"
        );
    }
    // The name that is not UTF-8 is shown (its odd byte replaced), with its size.
    let odd_size = column_size(du(&root.join(name(b"caf\xe9")), false));
    let odd = screen
        .lines()
        .find(|l| l.contains(" caf"))
        .unwrap_or_else(|| panic!("a row for caf\\xe9:\n{screen}"));
    assert!(odd.contains(&odd_size), "{screen}");
    assert!(
        screen.contains("ncdu 1.") && screen.contains("read-only"),
        "the footer names the export: {screen}"
    );
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
}

/// gdu's own reading of an export, non-interactive: (root disk, root apparent, each root
/// entry's disk usage by name).
fn gdu_reads(file: &Path) -> (u64, u64, Vec<(String, u64)>) {
    let gdu = |args: &[&str]| {
        let o = run(Command::new("gdu")
            .args(["-n", "-p", "--no-prefix", "--no-color"])
            .args(args)
            .arg("-f")
            .arg(file)
            .stdin(Stdio::null()));
        assert!(o.status.success(), "gdu -f failed: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let first_number = |text: &str| -> u64 {
        text.split_whitespace()
            .find_map(|w| w.parse().ok())
            .expect("gdu prints a size")
    };
    let disk = first_number(&gdu(&["-s"]));
    let apparent = first_number(&gdu(&["-s", "-a"]));
    let entries = gdu(&[])
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace().rev();
            let name = words.next()?.trim_start_matches('/').to_owned();
            let size = words.next()?.parse().ok()?;
            Some((name, size))
        })
        .collect();
    (disk, apparent, entries)
}

#[test]
fn a_gdu_export_opens_with_the_sizes_gdu_reports_for_it() {
    let (dir, root) = fixture_dir();
    let file = dir.path().join("gdu.json");
    gdu_export(&root, &file);
    let (disk, apparent, entries) = gdu_reads(&file);
    let r = scan_file(&file);
    assert_eq!(r["disk"], disk, "{r}");
    assert_eq!(r["apparent"], apparent, "{r}");
    assert!(entries.len() >= 5, "{entries:?}");
    for (entry, size) in &entries {
        assert_eq!(entry_size(&r, entry, "disk"), *size, "{entry}: {r}");
    }
    // And on screen.
    let script = format!("exec {} -f {}", env!("CARGO_BIN_EXE_dtui"), sh_quote(&file));
    let mut pty = Pty::sized("sh", &["-c", &script], NO_ENV, 30, 120);
    let total = format!("Total disk usage: {}", format_size(disk, BINARY));
    pty.wait_for("gdu's total", |s| s.contains(&total) && s.contains("gdu"));
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
}

#[test]
fn an_export_on_standard_input_opens_and_the_keys_come_from_the_terminal() {
    let (dir, root) = fixture_dir();
    let file = dir.path().join("ncdu.json");
    ncdu_export(&root, &file);
    let script = format!(
        "{} -f - < {}; echo rc=$?",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(&file)
    );
    let mut pty = Pty::sized("sh", &["-c", &script], NO_ENV, 30, 120);
    let total = format!(
        "Total disk usage: {}",
        format_size(du(&root, false), BINARY)
    );
    pty.wait_for("the list", |s| {
        s.contains(&total) && s.contains("standard input")
    });
    // Keys work: into the largest directory and back out, then quit.
    pty.send(b"\r");
    pty.wait_for("inside a directory", |s| {
        s.lines().nth(1).is_some_and(|l| l.trim() == "..")
    });
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
    assert!(String::from_utf8_lossy(&pty.raw).contains("rc=0"));

    // Without a terminal: the report.
    let out = run(dtui()
        .args(["scan", "--json", "-f", "-"])
        .stdin(fs::File::open(&file).expect("open")));
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(r["disk"], du(&root, false));
}

#[test]
fn dtui_export_round_trips_through_import() {
    let (dir, root) = fixture_dir();
    awkward_tree(&root.join("nested"));
    let file = dir.path().join("dtui.json");
    let o = run(dtui()
        .args(["export", "--no-cache", "-o"])
        .arg(&file)
        .arg(&root));
    assert!(o.status.success(), "{o:?}");
    let (scanned, code, _) = scan_json(&root, &[]);
    assert_eq!(code, 0);
    let imported = scan_file(&file);
    for field in ["disk", "apparent", "items", "dirs", "root"] {
        assert_eq!(imported[field], scanned[field], "{field}");
    }
}

#[test]
fn zstd_compressed_exports_open_from_a_file_and_from_standard_input() {
    let (dir, root) = fixture_dir();
    let plain = dir.path().join("ncdu.json");
    ncdu_export(&root, &plain);
    let json = fs::read(&plain).expect("read");
    let zst = dir.path().join("ncdu.json.zst");
    fs::write(
        &zst,
        ruzstd::encoding::compress_to_vec(&json[..], ruzstd::encoding::CompressionLevel::Fastest),
    )
    .expect("write");
    let want = scan_file(&plain);
    let got = scan_file(&zst);
    for field in ["disk", "apparent", "items", "dirs"] {
        assert_eq!(got[field], want[field], "{field}");
    }
    assert_eq!(got["largest"], want["largest"]);
    // The zstd tool's output (a checksummed frame), two frames back to back, from stdin.
    let cli = dir.path().join("cli.zst");
    let o = run(Command::new("zstd")
        .args(["-q", "-f", "-o"])
        .arg(&cli)
        .arg(&plain));
    assert!(o.status.success(), "zstd: {o:?}");
    assert_eq!(scan_file(&cli)["disk"], want["disk"]);
    let out = run(dtui()
        .args(["scan", "--json", "-f", "-"])
        .stdin(fs::File::open(&cli).expect("open")));
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(r["disk"], want["disk"]);
    // Cut short: one line with where the data ended, exit 1.
    let whole = fs::read(&cli).expect("read");
    let half = whole.len() / 2;
    let err = zstd_error(&dir.path().join("cut.zst"), &whole[..half]);
    assert!(
        err.contains(&format!(
            "cut.zst: the zstd data ends at byte {half}, too soon: the file is cut short"
        )),
        "{err}"
    );
}

/// `dtui scan -f` of `bytes` written to `file`: one line on stderr, exit 1; the line.
fn zstd_error(file: &Path, bytes: &[u8]) -> String {
    fs::write(file, bytes).expect("write");
    let out = run(dtui().args(["scan", "-f"]).arg(file));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        !err.contains("Error") && !err.contains('{'),
        "plain words: {err}"
    );
    err
}

/// Regression: a damaged zstd export was reported as ruzstd's debug output
/// ("DecompressLiteralsError(HuffmanTableError(...))") at "byte 0 of the decompressed data".
#[test]
fn zstd_errors_say_what_is_wrong_in_plain_words_and_at_which_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = br#"[1,2,{"progname":"t"},[{"name":"/r"},{"name":"f","asize":1}]]"#;
    let frame =
        ruzstd::encoding::compress_to_vec(&json[..], ruzstd::encoding::CompressionLevel::Fastest);
    // The first block starts after the frame header, whose size its descriptor gives.
    let fhd = frame[4];
    let single = fhd >> 5 & 1 == 1;
    let fcs = match fhd >> 6 {
        0 => usize::from(single),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let block = 5 + usize::from(!single) + [0, 1, 2, 4][usize::from(fhd & 3)] + fcs;
    // A block of the reserved type.
    let mut damaged = frame.clone();
    damaged[block] |= 0b110;
    let err = zstd_error(&dir.path().join("damaged.zst"), &damaged);
    assert!(
        err.contains(&format!(
            "damaged.zst: damaged zstd data: the block at byte {block} cannot be decoded"
        )),
        "{err}"
    );
    // Something that is not zstd after a whole frame.
    let mut trailing = frame.clone();
    trailing.extend_from_slice(b"not zstd at all");
    let err = zstd_error(&dir.path().join("trailing.zst"), &trailing);
    assert!(
        err.contains(&format!("no zstd frame at byte {}", frame.len())),
        "{err}"
    );
}

#[test]
fn malformed_exports_fail_with_one_line_naming_the_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = r#"[1,2,{"progname":"x"},"#;
    let root = r#"[{"name":"/r"}"#;
    let huge = "9".repeat(40);
    let cases: Vec<(String, &str, &str)> = vec![
        (String::new(), "1:1", "empty"),
        ("{}".into(), "1:1", "expected '['"),
        (
            "[2,0,{},[{\"name\":\"/\"}]]".into(),
            "1:2",
            "major version 2",
        ),
        (
            format!("{head}{root},{{\"name\":\"a\",\"asize\":1"),
            "1:",
            "end of the file",
        ),
        (
            format!("{head}\n{root},\n{{\"name\":\"a\",\"asize\":{huge}}}]]"),
            "3:21",
            "too large",
        ),
        (
            format!("{head}{root},{{\"name\":\"a\",\"dsize\":-1}}]]"),
            "1:",
            "negative",
        ),
        (
            format!("{head}{root},{{\"name\":\"a/b\"}}]]"),
            "1:",
            "invalid name",
        ),
        (
            format!("{head}{root},{{\"name\":\"..\"}}]]"),
            "1:",
            "invalid name",
        ),
        (
            format!("{head}{root},{{\"name\":\"a\\q\"}}]]"),
            "1:",
            "invalid escape",
        ),
        (
            format!("{head}{root},{{\"name\":\"a\u{1}\"}}]]"),
            "1:",
            "control character",
        ),
        (format!("{head}{root}]] trailing"), "1:", "after the end"),
        (format!("{head}{root},7]]"), "1:", "expected an item"),
        (
            format!("{head}{root},{{\"asize\":5}}]]"),
            "1:",
            "without a name",
        ),
        (
            format!("{head}{root},{{\"name\":\"a\",\"asize\":1.5}}]]"),
            "1:",
            "whole number",
        ),
        (
            format!("{head}{{\"name\":\"/r\"}}]"),
            "1:",
            "opening the root",
        ),
        (
            format!("{head}{root},{}", "[".repeat(100_000)),
            "1:",
            "expected '{'",
        ),
        (
            format!(
                "{head}{root},{{\"name\":\"a\",\"x\":{}}}]]",
                "[".repeat(50_000)
            ),
            "1:",
            "nested too deeply",
        ),
    ];
    assert_refused(dir.path(), &cases);
    // The browser says the same before it takes the terminal (no PTY needed for that).
    let out = run(dtui().arg("-f").arg(dir.path().join("bad3.json")));
    assert_eq!(out.status.code(), Some(1));
    // A file that is not there.
    let out = run(dtui()
        .args(["scan", "-f"])
        .arg(dir.path().join("missing.json")));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
}

/// Each export of `cases` (text, position, what is said) fails with one line naming them.
fn assert_refused(dir: &Path, cases: &[(String, &str, &str)]) {
    for (i, (text, at, what)) in cases.iter().enumerate() {
        let file = dir.join(format!("bad{i}.json"));
        fs::write(&file, text).expect("write");
        let out = run(dtui().args(["scan", "-f"]).arg(&file));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "case {i}: {err}");
        assert!(!err.contains("panicked"), "case {i}: {err}");
        assert_eq!(err.lines().count(), 1, "case {i}: one line: {err}");
        let name = format!("bad{i}.json:{at}");
        assert!(err.contains(&name), "case {i}: the position {name}: {err}");
        assert!(err.contains(what), "case {i}: {what}: {err}");
        assert!(out.stdout.is_empty(), "case {i}");
    }
}

/// Regression: both entries were kept, two rows of one name.
#[test]
fn a_name_given_twice_in_one_directory_is_refused_where_the_second_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = r#"[1,2,{"progname":"x"},"#;
    let root = r#"[{"name":"/r"}"#;
    // Past 32 entries a directory's names are found through the tree's index.
    let wide: String = (0..40)
        .map(|i| ["{\"name\":\"f", &i.to_string(), "\"},"].concat())
        .collect();
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{head}{root},\n{{\"name\":\"a\"}},\n{{\"name\":\"a\"}}]]"),
            "3:1",
            "a second entry named a in the same directory",
        ),
        (
            format!("{head}{root},\n[{{\"name\":\"d\"}}],\n{{\"name\":\"d\"}}]]"),
            "3:1",
            "a second entry named d",
        ),
        (
            format!("{head}{root},[{{\"name\":\"sub\"}},{wide}\n[{{\"name\":\"f7\"}}]]]]"),
            "2:1",
            "a second entry named f7",
        ),
    ];
    assert_refused(dir.path(), &cases);
}

#[test]
fn one_name_in_different_directories_is_no_repeat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("same.json");
    fs::write(
        &file,
        r#"[1,2,{},[{"name":"/r"},{"name":"a","asize":1},[{"name":"d"},{"name":"a","asize":2}],[{"name":"e"},[{"name":"d"},{"name":"a","asize":4}]]]]"#,
    )
    .expect("write");
    let v = scan_file(&file);
    assert_eq!(v["apparent"], 7, "{v}");
    assert_eq!(v["items"], 6, "{v}");
}

#[test]
fn names_keep_their_bytes_and_escapes_decode_to_utf8() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("names.json");
    let mut text = br#"[1,2,{},[{"name":"/r"},{"name":"caf"#.to_vec();
    text.extend_from_slice(b"\xe9\",\"asize\":10},");
    text.extend_from_slice(br#"{"name":"\u00e9\ud83d\ude00\n","asize":20},"#);
    text.extend_from_slice(
        br#"[{"name":"d","unknown":{"a":[1,2.5e3,null,true]}},{"name":"x","asize":30}]]]"#,
    );
    fs::write(&file, &text).expect("write");
    let r = scan_file(&file);
    assert_eq!(r["apparent"], 60);
    assert_eq!(r["items"], 4);
    let mut names: Vec<&str> = r["largest"]
        .as_array()
        .expect("largest")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    // (The report's JSON is strict UTF-8: the raw byte shows there as U+FFFD.)
    assert_eq!(names, ["caf\u{fffd}", "d", "é😀\n"]);
}

#[test]
fn a_deeply_nested_export_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deep.json");
    let depth = 100_000;
    let mut text = String::from(r#"[1,2,{},[{"name":"/r"}"#);
    for _ in 0..depth {
        text.push_str(r#",[{"name":"d","asize":1}"#);
    }
    text.push_str(r#",{"name":"f","asize":7}"#);
    text.push_str(&"]".repeat(depth));
    text.push_str("]]");
    fs::write(&file, text).expect("write");
    let r = scan_file(&file);
    assert_eq!(r["apparent"], depth + 7);
    assert_eq!(r["items"], depth + 1);
}

#[test]
fn on_an_export_the_keys_that_need_the_disk_say_why_they_are_off() {
    let (dir, root) = fixture_dir();
    let file = dir.path().join("ncdu.json");
    ncdu_export(&root, &file);
    let script = format!("exec {} -f {}", env!("CARGO_BIN_EXE_dtui"), sh_quote(&file));
    let mut pty = Pty::sized("sh", &["-c", &script], NO_ENV, 30, 120);
    pty.wait_for("the list", |s| s.contains("Total disk usage"));
    for (key, says) in [
        (b"r", "read-only: r and R re-read the disk"),
        (b"R", "read-only: r and R re-read the disk"),
        (b"b", "read-only: no shell"),
        (b"d", "read-only: nothing to delete"),
    ] {
        // Another message first, so that each key's own is seen.
        pty.send(b"Z");
        pty.wait_for("the unknown key", |s| s.contains("unknown key Z"));
        pty.send(key);
        pty.wait_for(says, |s| s.contains(says));
    }
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
}
