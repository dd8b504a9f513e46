//! `dtui scan` on real temp trees, checked against `du` and `find`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

fn totals(v: &serde_json::Value) -> (u64, u64, u64) {
    (
        v["disk"].as_u64().expect("disk"),
        v["apparent"].as_u64().expect("apparent"),
        v["items"].as_u64().expect("items"),
    )
}

#[test]
fn totals_equal_du_with_hard_links_sparse_files_symlinks_and_odd_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    awkward_tree(root);
    for threads in ["1", "2", "7"] {
        let (v, code, stderr) = scan_json(root, &["--threads", threads]);
        assert_eq!(code, 0, "clean scan exits 0: {stderr}");
        let (disk, apparent, items) = totals(&v);
        assert_eq!(
            disk,
            du(root, false),
            "disk usage = du -sB1 ({threads} threads)"
        );
        assert_eq!(
            apparent,
            du(root, true),
            "apparent size = du -sb ({threads} threads)"
        );
        assert_eq!(items, find_count(root), "items = find's count");
        assert_eq!(v["errors"], 0);
    }
    // The sparse file is charged by its blocks, not by its length.
    let (v, _, _) = scan_json(root, &["--top", "100"]);
    let sparse = v["largest"]
        .as_array()
        .expect("largest")
        .iter()
        .find(|e| e["name"] == "sparse")
        .expect("sparse listed");
    assert_eq!(sparse["apparent"], 50_000_000);
    assert!(sparse["disk"].as_u64().expect("disk") < 1_000_000);
}

#[test]
fn symlinks_are_never_followed_even_to_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir(root.join("real")).expect("mkdir");
    write(&root.join("real/data"), 300_000);
    std::os::unix::fs::symlink("real", root.join("via-link")).expect("symlink");
    std::os::unix::fs::symlink(".", root.join("real/loop")).expect("symlink");
    let (v, code, _) = scan_json(root, &["--top", "10"]);
    assert_eq!(code, 0);
    let (disk, apparent, items) = totals(&v);
    assert_eq!((disk, apparent), (du(root, false), du(root, true)));
    assert_eq!(items, 4, "real, real/data, real/loop, via-link");
    let link = v["largest"]
        .as_array()
        .expect("largest")
        .iter()
        .find(|e| e["name"] == "via-link")
        .expect("the symlink is listed");
    assert_eq!(link["kind"], "symlink");
    assert_eq!(link["items"], 0);
    assert_eq!(
        link["apparent"], 4,
        "a symlink's size is its target's length"
    );
}

#[test]
fn a_ten_thousand_deep_chain_scans_without_overflowing_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let top = deep_chain(dir.path(), 10_000);
    let (v, code, stderr) = scan_json(&top, &[]);
    assert_eq!(code, 0, "{stderr}");
    let (disk, apparent, items) = totals(&v);
    assert_eq!(
        items, 10_001,
        "10,000 directories and the file at the bottom"
    );
    assert_eq!(disk, du(&top, false));
    assert_eq!(apparent, du(&top, true));
    remove_all(&top);
}

#[test]
fn an_unreadable_directory_is_flagged_counted_and_the_scan_goes_on() {
    let dir = world_tempdir();
    let root = dir.path();
    fs::create_dir_all(root.join("open/inner")).expect("mkdir");
    write(&root.join("open/inner/f"), 5000);
    fs::create_dir(root.join("locked")).expect("mkdir");
    write(&root.join("locked/secret"), 9000);
    fs::create_dir(root.join("listable")).expect("mkdir");
    write(&root.join("listable/hidden"), 100);
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).expect("chmod");
    // Readable but not searchable: names can be listed, their stat fails.
    fs::set_permissions(root.join("listable"), fs::Permissions::from_mode(0o444)).expect("chmod");
    let out = run(dtui_unprivileged()
        .args(["scan", "--json", "--no-cache", "--top", "10"])
        .arg(root));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "a partial scan exits 3: {stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["errors"], 2,
        "locked (cannot open) and listable/hidden (cannot stat)"
    );
    let flag_of = |name: &str| {
        v["largest"]
            .as_array()
            .expect("largest")
            .iter()
            .find(|e| e["name"] == name)
            .map_or_else(
                || panic!("{name} listed"),
                |e| e["flags"].as_str().unwrap_or("").to_owned(),
            )
    };
    assert_eq!(flag_of("locked"), "!");
    assert_eq!(flag_of("listable"), ".", "an error below");
    assert_eq!(flag_of("open"), "");
    // What could be read is counted exactly: everything but the locked dir's contents and the
    // unstat-able file (which du, run as root, does see).
    let seen = v["disk"].as_u64().expect("disk");
    let unseen = du(&root.join("locked/secret"), false) + du(&root.join("listable/hidden"), false);
    assert_eq!(seen, du(root, false) - unseen);
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::set_permissions(root.join("listable"), fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn assert_one_clear_error(args: &[&str], path: &Path, expect: &str, unprivileged: bool) {
    let mut cmd = if unprivileged {
        dtui_unprivileged()
    } else {
        dtui()
    };
    let out = run(cmd.args(args).arg(path));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} {}: {stderr}",
        path.display()
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("dtui: "), "{stderr}");
    assert!(stderr.contains(expect), "{stderr:?} should say {expect:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_roots_give_one_clear_line_and_a_failure_status() {
    let dir = world_tempdir();
    let root = dir.path();
    write(&root.join("a-file"), 10);
    fs::create_dir(root.join("locked")).expect("mkdir");
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).expect("chmod");
    for cmd in [&["scan"][..], &["export", "-o", "/dev/null"][..]] {
        assert_one_clear_error(
            cmd,
            &root.join("missing"),
            "No such file or directory",
            false,
        );
        assert_one_clear_error(cmd, &root.join("a-file"), "not a directory", false);
        assert_one_clear_error(cmd, &root.join("locked"), "Permission denied", true);
    }
}

#[test]
fn excluded_entries_are_listed_but_neither_scanned_nor_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir_all(root.join("keep/node_modules/pkg")).expect("mkdir");
    write(&root.join("keep/node_modules/pkg/index.js"), 50_000);
    write(&root.join("keep/app.log"), 20_000);
    write(&root.join("keep/app.rs"), 3_000);
    let (all, _, _) = scan_json(root, &[]);
    let (v, code, _) = scan_json(
        root,
        &[
            "--exclude",
            "node_modules",
            "--exclude",
            "*.log",
            "--top",
            "5",
        ],
    );
    assert_eq!(code, 0);
    let cut = du(&root.join("keep/node_modules"), true) + 20_000;
    assert_eq!(
        v["apparent"].as_u64().expect("apparent"),
        all["apparent"].as_u64().expect("apparent") - cut
    );
    // node_modules and app.log still appear as items, their contents do not.
    assert_eq!(v["items"], 4, "keep, node_modules, app.log, app.rs");
}

#[test]
fn one_file_system_stops_at_mount_points_including_bind_mounts() {
    if !is_root() {
        eprintln!("skipped: mounting needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir_all(root.join("src/data")).expect("mkdir");
    write(&root.join("src/data/f"), 40_000);
    fs::create_dir(root.join("bind")).expect("mkdir");
    fs::create_dir(root.join("tmpfs")).expect("mkdir");
    // A private mount namespace: the mounts vanish with the shell, whatever happens.
    let script = format!(
        "set -e; mount --bind {src} {bind}; mount -t tmpfs none {tmpfs}; \
         head -c 30000 /dev/zero > {tmpfs}/z; \
         {dtui} scan --json --no-cache -x --top 10 {root}; echo; {dtui} scan --json --no-cache --top 10 {root}",
        src = root.join("src").display(),
        bind = root.join("bind").display(),
        tmpfs = root.join("tmpfs").display(),
        dtui = env!("CARGO_BIN_EXE_dtui"),
        root = root.display(),
    );
    let out = run(std::process::Command::new("unshare").args(["-m", "sh", "-c", &script]));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut docs = text.lines().filter(|l| !l.is_empty());
    let one_fs: serde_json::Value = serde_json::from_str(docs.next().expect("-x")).expect("json");
    let all: serde_json::Value = serde_json::from_str(docs.next().expect("all")).expect("json");
    let entry = |v: &serde_json::Value, name: &str| {
        v["largest"]
            .as_array()
            .expect("largest")
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} listed"))
    };
    assert_eq!(
        entry(&one_fs, "bind")["flags"],
        ">",
        "a bind mount is another mount"
    );
    assert_eq!(entry(&one_fs, "tmpfs")["flags"], ">");
    assert_eq!(entry(&one_fs, "bind")["apparent"], 0);
    assert_eq!(
        entry(&all, "bind")["apparent"],
        entry(&all, "src")["apparent"]
    );
    assert_eq!(entry(&all, "tmpfs")["items"], 1);
}

#[test]
fn the_text_report_shows_totals_and_the_largest_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir(root.join("big")).expect("mkdir");
    write(&root.join("big/blob"), 2_000_000);
    write(&root.join("tiny"), 10);
    let out = run(dtui().arg("scan").arg(root));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "disk usage",
        "apparent size",
        "items          3",
        "directories",
        "elapsed",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    let big = text.find("big/").expect("big/ listed");
    let tiny = text.find("tiny").expect("tiny listed");
    assert!(big < tiny, "largest first: {text}");
}

#[test]
fn a_deep_tree_with_side_branches_scans_fully_under_a_low_fd_limit() {
    // Regression: every ancestor with a pending sibling kept its fd open; with 256 fds a
    // 3,000-level tree lost most of its subtrees (counted only as errors).
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::{Mode, mkdirat};
    let dir = tempfile::tempdir().expect("tempdir");
    let top = dir.path().join("branchy");
    fs::create_dir(&top).expect("mkdir");
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut fd = open(&top, flags, Mode::empty()).expect("open");
    for _ in 0..3000 {
        mkdirat(&fd, "side", Mode::from_bits_truncate(0o755)).expect("mkdirat");
        mkdirat(&fd, "down", Mode::from_bits_truncate(0o755)).expect("mkdirat");
        fd = openat(&fd, "down", flags, Mode::empty()).expect("openat");
    }
    drop(fd);
    let script = format!(
        "ulimit -Sn 256 && ulimit -Hn 256 && exec {} scan --json --no-cache {}",
        env!("CARGO_BIN_EXE_dtui"),
        top.display()
    );
    let out = run(std::process::Command::new("bash").args(["-c", &script]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["errors"], 0, "{stderr}");
    assert_eq!(v["items"], 6000);
    assert_eq!(v["disk"].as_u64(), Some(du(&top, false)));
    remove_all(&top);
}
