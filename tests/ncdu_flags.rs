//! ncdu 2's flags through the real binary on real temp trees: every flag README's "ncdu's
//! flags" table names goes through the parser (so the README and the parser cannot drift),
//! the ones dtui acts on do what ncdu means, the rest are accepted with a note, and an ncdu
//! alias (`ncdu -x --exclude-caches --si`) works as `dtui`'s.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::pty::{NO_ENV, Pty};
use common::*;

const TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n";

/// `keep/` (a 200 kB file, `a.log`), `cache/` (a valid CACHEDIR.TAG and 300 kB) and `fake/` (a
/// tag with a wrong signature).
fn tree() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("r");
    for d in ["keep", "cache", "fake"] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    write(&root.join("keep/f"), 200_000);
    write(&root.join("keep/a.log"), 50_000);
    write(&root.join("cache/big"), 300_000);
    fs::write(root.join("cache/CACHEDIR.TAG"), TAG).expect("tag");
    fs::write(
        root.join("fake/CACHEDIR.TAG"),
        "Signature: 00000000000000000000000000000000\n",
    )
    .expect("tag");
    (dir, root)
}

fn largest_flags(report: &serde_json::Value, name: &str) -> Option<String> {
    report["largest"]
        .as_array()
        .expect("largest")
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| e["flags"].as_str().unwrap_or("").to_owned())
}

/// The flag invocations README's table names (each code span of a row's first cell, its
/// placeholders as written: `-X FILE`).
fn readme_flags() -> Vec<Vec<String>> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## ncdu's flags\n")
        .nth(1)
        .expect("README has an \"ncdu's flags\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut flags = Vec::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cell = row.split(" | ").next().expect("a first cell");
        for (i, span) in cell.split('`').enumerate() {
            if i % 2 == 1 {
                flags.push(span.split_whitespace().map(str::to_owned).collect());
            }
        }
    }
    assert!(flags.len() > 60, "the table lists ncdu's flags: {flags:?}");
    flags
}

/// A value for a placeholder of the table.
fn value_for(flag: &str, placeholder: &str, files: &Files) -> String {
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    match placeholder {
        "FILE" => match flag {
            "-f" => path(&files.export),
            "-o" | "-O" => path(&files.out),
            _ => path(&files.patterns),
        },
        "N" => "2".into(),
        "PATTERN" => "*.log".into(),
        "COLUMN" => "name-desc".into(),
        "SCHEME" => "dark".into(),
        "STYLE" => "half-block".into(),
        "WHICH" => "shared".into(),
        "CMD" => "rm".into(),
        other => panic!("README's table uses a placeholder this test does not know: {other}"),
    }
}

struct Files {
    export: PathBuf,
    out: PathBuf,
    patterns: PathBuf,
}

#[test]
fn every_flag_of_the_readme_table_goes_through_the_parser() {
    let (dir, root) = tree();
    let files = Files {
        export: dir.path().join("export.json"),
        out: dir.path().join("out.json"),
        patterns: dir.path().join("patterns"),
    };
    fs::write(&files.patterns, "*.log\n\nnothing\n").expect("patterns");
    let made = run(dtui()
        .args(["-o"])
        .arg(&files.export)
        .arg("--no-cache")
        .arg(&root));
    assert!(made.status.success(), "{made:?}");
    // The modes (help, version, import, export) are flags of `dtui` alone.
    let alone = ["-h", "--help", "-v", "-V", "--version"];
    let top_only = ["-f", "-o", "-O", "-r", "-rr"];
    for words in readme_flags() {
        let flag = words[0].as_str();
        let args: Vec<String> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i > 0 && w.chars().all(|c| c.is_ascii_uppercase()) {
                    value_for(flag, w, &files)
                } else {
                    w.clone()
                }
            })
            .collect();
        let mut runs = Vec::new();
        if alone.contains(&flag) {
            runs.push(dtui().args(&args).output());
        } else if flag == "-f" {
            runs.push(dtui().arg("scan").args(&args).output());
        } else if flag == "-o" || flag == "-O" {
            runs.push(dtui().args(&args).arg("--no-cache").arg(&root).output());
        } else {
            let out = &files.out;
            runs.push(
                dtui()
                    .arg("-o")
                    .arg(out)
                    .args(&args)
                    .arg("--no-cache")
                    .arg(&root)
                    .output(),
            );
            if !top_only.contains(&flag) {
                runs.push(
                    dtui()
                        .arg("scan")
                        .args(&args)
                        .arg("--no-cache")
                        .arg(&root)
                        .output(),
                );
            }
        }
        for out in runs {
            let out = out.expect("dtui runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
            assert!(
                stderr
                    .lines()
                    .all(|l| l.starts_with("dtui: ") && !l.contains("error")),
                "{args:?}: only notes on stderr: {stderr}"
            );
        }
    }
}

#[test]
fn a_flag_ncdu_does_not_have_is_still_a_usage_error() {
    let (_dir, root) = tree();
    for bad in ["--bogus", "-j", "--exclude-cache"] {
        let out = run(dtui().args(["scan", "--no-cache", bad]).arg(&root));
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
    }
}

#[test]
fn flags_dtui_does_not_act_on_say_so_in_one_line_each() {
    let (_dir, root) = tree();
    let cases = [
        ("-L", "never follows symlinks"),
        ("--color=off", ""),
        ("-q", "-q: ignored"),
        ("-1", "-0/-1/-2: ignored"),
        ("--confirm-quit", "--confirm-quit: ignored"),
        ("--enable-natsort", "--enable-natsort: ignored"),
        ("--graph-style=eighth-block", "--graph-style: ignored"),
        ("--ignore-config", "--ignore-config: ignored"),
    ];
    for (flag, said) in cases {
        let out = run(dtui().args(["scan", "--no-cache", flag]).arg(&root));
        assert_eq!(out.status.code(), Some(0), "{flag}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if said.is_empty() {
            assert!(stderr.is_empty(), "{flag} acts, silently: {stderr}");
        } else {
            assert_eq!(stderr.lines().count(), 1, "{flag}: {stderr}");
            assert!(
                stderr.starts_with("dtui: ") && stderr.contains(said),
                "{flag}: {stderr}"
            );
        }
    }
}

#[test]
fn si_shows_sizes_in_powers_of_1000() {
    let (_dir, root) = tree();
    let text = |extra: &[&str]| {
        let out = run(dtui().args(["scan", "--no-cache"]).args(extra).arg(&root));
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let binary = text(&[]);
    assert!(binary.contains("KiB") && !binary.contains("kB"), "{binary}");
    let si = text(&["--si"]);
    assert!(si.contains(" kB") && !si.contains("KiB"), "{si}");
    // The last of `--si` and `--no-si` wins, as in ncdu.
    assert!(text(&["--si", "--no-si"]).contains("KiB"));
}

#[test]
fn exclude_caches_leaves_out_directories_with_a_valid_cachedir_tag() {
    let (_dir, root) = tree();
    let (all, code, _) = scan_json(&root, &[]);
    assert_eq!(code, 0);
    assert_eq!(largest_flags(&all, "cache").as_deref(), Some(""), "{all}");
    let (ex, code, _) = scan_json(&root, &["--exclude-caches"]);
    assert_eq!(code, 0);
    assert_eq!(largest_flags(&ex, "cache").as_deref(), Some("<"), "{ex}");
    assert_eq!(
        largest_flags(&ex, "fake").as_deref(),
        Some(""),
        "a wrong signature: {ex}"
    );
    let disk = |v: &serde_json::Value| v["disk"].as_u64().expect("disk");
    assert!(disk(&all) - disk(&ex) >= 300_000, "{all} {ex}");
    let (back, _, _) = scan_json(&root, &["--exclude-caches", "--include-caches"]);
    assert_eq!(largest_flags(&back, "cache").as_deref(), Some(""), "{back}");
}

#[test]
fn exclude_caches_follows_the_tag_through_the_cache_and_catch_up() {
    let (dir, root) = tree();
    let cache_dir = dir.path().join("caches");
    let scan = |extra: &[&str]| {
        let out = run(dtui()
            .args(["scan", "--json", "--cache-dir"])
            .arg(&cache_dir)
            .args(extra)
            .arg(&root));
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
    };
    // Saved without the flag, then caught up with it: the verdict is the flag's.
    assert_eq!(largest_flags(&scan(&[]), "cache").as_deref(), Some(""));
    assert_eq!(
        largest_flags(&scan(&["--exclude-caches"]), "cache").as_deref(),
        Some("<")
    );
    // The tag goes: the directory counts again at the next catch-up.
    fs::remove_file(root.join("cache/CACHEDIR.TAG")).expect("rm tag");
    assert_eq!(
        largest_flags(&scan(&["--exclude-caches"]), "cache").as_deref(),
        Some("")
    );
}

#[test]
fn exclude_from_reads_one_pattern_per_line() {
    let (dir, root) = tree();
    let patterns = dir.path().join("patterns");
    fs::write(&patterns, "*.log\n\ncache\n").expect("patterns");
    let out = run(dtui()
        .args(["-o", "-", "--no-cache", "-X"])
        .arg(&patterns)
        .arg(&root));
    assert!(out.status.success(), "{out:?}");
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.contains(r#"{"name":"a.log","excluded":"pattern"}"#),
        "{json}"
    );
    let cache = json
        .split(r#"{"name":"cache","#)
        .nth(1)
        .expect("cache listed");
    let cache = cache.split('}').next().unwrap_or(cache);
    assert!(cache.contains(r#""excluded":"pattern""#), "{json}");
    assert!(!json.contains(r#""name":"big""#), "{json}");
    let missing = run(dtui()
        .args(["scan", "--no-cache", "--exclude-from"])
        .arg(dir.path().join("absent"))
        .arg(&root));
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
}

#[test]
fn exclude_kernfs_leaves_out_a_proc_mount() {
    if !is_root() {
        eprintln!("skipped: mounting proc needs root");
        return;
    }
    let (_dir, root) = tree();
    let r = root.to_str().expect("utf-8");
    let script = format!(
        "mkdir -p {r}/p && mount -t proc proc {r}/p || exit 1; \
         {bin} scan --json --no-cache --exclude-kernfs {r}; echo rc=$?",
        bin = env!("CARGO_BIN_EXE_dtui")
    );
    let Some((stdout, stderr)) = in_private_mount_namespace(&script) else {
        return;
    };
    assert!(stdout.contains("rc=0"), "{stdout} {stderr}");
    let json = stdout.split("rc=").next().expect("json");
    let report: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(
        largest_flags(&report, "p").as_deref(),
        Some("<"),
        "{report}"
    );
    assert_eq!(
        largest_flags(&report, "keep").as_deref(),
        Some(""),
        "{report}"
    );
}

/// The row of `name` on the screen.
fn row(pty: &Pty, name: &str) -> String {
    pty.line_with(name).unwrap_or_default()
}

#[test]
fn an_ncdu_alias_works_as_dtui() {
    let (_dir, root) = tree();
    let r = root.to_str().expect("utf-8");
    let args = [
        "-x",
        "--exclude-caches",
        "--si",
        "--no-cache",
        "--watch-backend",
        "none",
        r,
    ];
    let mut pty = Pty::dtui(&args, NO_ENV, 30, 100);
    let screen = pty.wait_for("the list", |s| s.contains("keep/") && s.contains("cache/"));
    assert!(
        screen.contains(" kB") && !screen.contains("KiB"),
        "{screen}"
    );
    assert!(row(&pty, "cache/").contains('<'), "{screen}");
    assert_eq!(pty.quit(), 0);
}

#[test]
fn extended_starts_the_browser_with_the_mtime_column() {
    let (_dir, root) = tree();
    let r = root.to_str().expect("utf-8");
    // Today's date, as the column shows it (the files were just written).
    let today = run(std::process::Command::new("date").arg("+%Y-%m-%d"));
    let today = String::from_utf8_lossy(&today.stdout).trim().to_owned();
    for (flag, shown) in [("-e", true), ("--no-extended", false)] {
        let args = [flag, "--no-cache", "--watch-backend", "none", r];
        let mut pty = Pty::dtui(&args, NO_ENV, 30, 100);
        let screen = pty.wait_for("the list", |s| s.contains("keep/"));
        assert_eq!(
            row(&pty, "keep/").contains(&today),
            shown,
            "{flag}: {screen}"
        );
        assert_eq!(pty.quit(), 0);
    }
}

#[test]
fn exclude_caches_follows_a_tag_made_live_and_one_removed_at_the_next_read() {
    let (_dir, root) = tree();
    let r = root.to_str().expect("utf-8");
    let args = [
        "--exclude-caches",
        "--no-cache",
        "--watch-backend",
        "inotify",
        r,
    ];
    let mut pty = Pty::dtui(&args, NO_ENV, 30, 100);
    pty.wait_for("keep counted", |s| {
        s.lines().any(|l| l.contains("keep/") && !l.contains('<'))
    });
    fs::write(root.join("keep/CACHEDIR.TAG"), TAG).expect("tag");
    pty.wait_for("keep excluded", |s| {
        s.lines().any(|l| l.contains("keep/") && l.contains('<'))
    });
    // An excluded directory's contents are not watched (as an excluded directory's are not
    // read): the tag's removal is seen when its parent is read again, here by `r`.
    fs::remove_file(root.join("keep/CACHEDIR.TAG")).expect("rm tag");
    pty.send(b"r");
    pty.wait_for("keep counted again", |s| {
        s.lines().any(|l| l.contains("keep/") && !l.contains('<'))
    });
    assert_eq!(pty.quit(), 0);
}
