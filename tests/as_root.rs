//! Safe as root with another user's environment (`sudo -E` keeps `HOME` and the XDG
//! variables): the cache and the trash never go through a directory or symlink that user
//! controls, root creates nothing in their home, and no directory's mode is changed that dtui
//! did not make. Each test is run as root in a private mount namespace whose root home is a
//! fresh tmpfs, so what lands there is seen without touching the real one; the attacker's
//! files belong to `nobody`.

mod cache_support;
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::path::Path;

use cache_support::names;
use common::pty::Pty;
use common::*;

const NOBODY: u32 = 65534;

/// Root's home in the password database (replaced by a tmpfs inside each script).
fn root_home() -> std::path::PathBuf {
    nix::unistd::User::from_uid(0.into())
        .expect("getpwuid")
        .expect("a passwd entry for root")
        .dir
}

fn chown_nobody(p: &Path) {
    lchown(p, Some(NOBODY), Some(NOBODY)).expect("lchown");
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

/// A directory of root's, `0755`, holding one file: what the attacker aims at.
fn victim(p: &Path) {
    fs::create_dir_all(p).expect("mkdir");
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::write(p.join("keep"), b"keep").expect("write");
}

#[test]
fn a_cache_symlink_planted_in_another_users_home_is_never_followed_or_chmodded() {
    // Regression: with HOME kept, `~/.cache/dtui` planted as a symlink to /etc made root
    // chmod /etc to 0700 and write its cache there (the owner check followed the link).
    if !is_root() {
        eprintln!("skipped: needs root (CI runs as root)");
        return;
    }
    let dir = world_tempdir();
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).expect("mkdir");
    write(&tree.join("f"), 5000);
    fs::set_permissions(&tree, fs::Permissions::from_mode(0o755)).expect("chmod");
    // alice plants the link at the leaf; bob one level up (`~/.cache`); carol's own `.cache`
    // is a directory of hers, with the link in it, named by XDG_CACHE_HOME.
    let (alice, bob, carol) = (
        dir.path().join("alice"),
        dir.path().join("bob"),
        dir.path().join("carol"),
    );
    let targets = [
        dir.path().join("etc-a"),
        dir.path().join("etc-b"),
        dir.path().join("etc-c"),
    ];
    for t in &targets {
        victim(t);
    }
    for home in [&alice, &bob, &carol] {
        fs::create_dir(home).expect("mkdir");
        chown_nobody(home);
    }
    for home in [&alice, &carol] {
        fs::create_dir(home.join(".cache")).expect("mkdir");
        chown_nobody(&home.join(".cache"));
    }
    symlink(&targets[0], alice.join(".cache/dtui")).expect("symlink");
    chown_nobody(&alice.join(".cache/dtui"));
    symlink(&targets[1], bob.join(".cache")).expect("symlink");
    chown_nobody(&bob.join(".cache"));
    symlink(&targets[2], carol.join(".cache/dtui")).expect("symlink");
    chown_nobody(&carol.join(".cache/dtui"));
    let own = root_home();
    let script = format!(
        "mount -t tmpfs -o mode=700 none {own} && echo rc=0 && \
         env -u XDG_CACHE_HOME HOME={alice} {bin} scan --json {tree} && \
         env -u XDG_CACHE_HOME HOME={bob} {bin} scan --json {tree} && \
         env XDG_CACHE_HOME={carol}/.cache HOME={carol} {bin} scan --json {tree} && \
         stat -c 'own %a %u' {own}/.cache/dtui",
        own = own.display(),
        alice = alice.display(),
        bob = bob.display(),
        carol = carol.display(),
        tree = tree.display(),
        bin = env!("CARGO_BIN_EXE_dtui"),
    );
    let Some((stdout, stderr)) = in_private_mount_namespace(&script) else {
        return;
    };
    for t in &targets {
        assert_eq!(mode(t), 0o755, "{} kept its mode: {stderr}", t.display());
        assert_eq!(
            names(t),
            vec!["keep".to_owned()],
            "nothing written in {}",
            t.display()
        );
    }
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("belongs to uid 65534, not to you (uid 0)"))
            .count(),
        3,
        "each refusal said: {stderr}"
    );
    assert_eq!(
        stderr
            .matches(&format!("using {}/.cache/dtui", own.display()))
            .count(),
        3,
        "{stderr}"
    );
    // The first run made root's own cache, the next two used it.
    assert!(stdout.contains(r#""cache":"new"#), "{stdout}");
    assert!(stdout.contains("own 700 0"), "{stdout}");
}

#[test]
fn an_existing_cache_dir_readable_by_others_is_refused_not_chmodded() {
    // `--cache-dir /var/cache` used to be narrowed to 0700 (and so broke what else lives
    // there); a directory dtui did not make keeps its mode.
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).expect("mkdir");
    write(&tree.join("f"), 10);
    let shared = dir.path().join("var-cache");
    victim(&shared);
    let out = run(dtui()
        .args(["scan", "--json", "--cache-dir"])
        .arg(&shared)
        .arg(&tree));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("running without a cache")
            && stderr.contains("is readable by group or others (mode 0755)"),
        "{stderr}"
    );
    assert_eq!(mode(&shared), 0o755);
    assert_eq!(names(&shared), vec!["keep".to_owned()]);
}

#[test]
fn the_trash_is_never_made_in_another_users_home_nor_through_a_symlink_planted_there() {
    // Regression: with HOME kept, root created `~/.local/share/Trash` in that user's home,
    // following a `~/.local` symlink they planted (here into a directory of root's).
    if !is_root() {
        eprintln!("skipped: needs root (CI runs as root)");
        return;
    }
    let own = root_home();
    let script = format!(
        "set -e; mount -t tmpfs -o mode=700 none {own}; echo rc=0; \
         mkdir -p {own}/tree/a {own}/tree/b; echo x > {own}/tree/a/f; echo y > {own}/tree/b/f; \
         mkdir -m 755 {own}/victim; echo keep > {own}/victim/keep; \
         mkdir {own}/alice {own}/bob; chown 65534:65534 {own}/alice {own}/bob; \
         ln -s {own}/victim {own}/alice/.local; chown -h 65534:65534 {own}/alice/.local; \
         env -u XDG_DATA_HOME HOME={own}/alice {bin} delete --trash --no-cache -y \
           {own}/tree {own}/tree/a; \
         env XDG_DATA_HOME={own}/bob/.local/share HOME={own}/bob {bin} delete --trash \
           --no-cache -y {own}/tree {own}/tree/b; \
         echo victim: $(ls -A {own}/victim); echo alice: $(ls -A {own}/alice); \
         echo bob: $(ls -A {own}/bob); \
         test -f {own}/.local/share/Trash/files/a/f && echo a-in-root-trash; \
         test -f {own}/.local/share/Trash/files/b/f && echo b-in-root-trash; \
         stat -c 'victim-mode=%a' {own}/victim",
        own = own.display(),
        bin = env!("CARGO_BIN_EXE_dtui"),
    );
    let Some((stdout, stderr)) = in_private_mount_namespace(&script) else {
        return;
    };
    assert!(stdout.contains("victim: keep\n"), "{stdout} {stderr}");
    assert!(stdout.contains("alice: .local\n"), "{stdout} {stderr}");
    assert!(
        stdout.contains("bob:\n"),
        "nothing made in bob's home: {stdout}"
    );
    assert!(stdout.contains("a-in-root-trash"), "{stdout} {stderr}");
    assert!(stdout.contains("b-in-root-trash"), "{stdout} {stderr}");
    assert!(stdout.contains("victim-mode=755"), "{stdout}");
    assert!(stdout.contains("trashed 2 items"), "{stdout} {stderr}");
}

#[test]
fn a_shared_trash_made_by_an_ordinary_user_is_not_used() {
    // The spec's `$topdir/.Trash` is the administrator's: sticky and made by root (or the
    // owner of the filesystem's top). One that any user made could be read or emptied by
    // them, so `.Trash-$uid` is used instead.
    let dir = tempfile::tempdir().expect("tempdir");
    let (vol, home) = (dir.path().join("vol"), dir.path().join("home"));
    for d in [&vol, &home] {
        fs::create_dir_all(d).expect("mkdir");
    }
    let script = format!(
        "set -e; mount -t tmpfs none {vol}; echo rc=0; mkdir -p {vol}/r; \
         echo x > {vol}/r/good; echo y > {vol}/r/bad; mkdir -m 1777 {vol}/.Trash; \
         HOME={home} XDG_DATA_HOME= {bin} delete --trash --no-cache -y {vol}/r {vol}/r/good; \
         chown 65534 {vol}/.Trash; \
         HOME={home} XDG_DATA_HOME= {bin} delete --trash --no-cache -y {vol}/r {vol}/r/bad; \
         test -f {vol}/.Trash/0/files/good && echo good-in-shared; \
         test -f {vol}/.Trash-0/files/bad && echo bad-in-own; \
         test -e {vol}/.Trash/0/files/bad || echo bad-not-in-shared",
        vol = vol.display(),
        home = home.display(),
        bin = env!("CARGO_BIN_EXE_dtui"),
    );
    let Some((stdout, stderr)) = in_private_mount_namespace(&script) else {
        return;
    };
    assert!(
        stdout.contains("good-in-shared"),
        "root's .Trash is used: {stdout} {stderr}"
    );
    assert!(stdout.contains("bad-in-own"), "{stdout} {stderr}");
    assert!(stdout.contains("bad-not-in-shared"), "{stdout} {stderr}");
}

#[test]
fn a_name_too_long_for_its_trashinfo_goes_to_the_trash_under_a_shorter_name_and_comes_back() {
    // Regression: `NAME.trashinfo` passed NAME_MAX, the move failed, and the browser still
    // said "moved  to the trash".
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    let long = "é".repeat(125); // 250 bytes
    fs::create_dir(&root).expect("mkdir");
    write(&root.join(&long), 50_000);
    write(&root.join("small"), 10);
    let data = dir.path().join("data");
    fs::create_dir_all(&data).expect("mkdir");
    let root_s = root.to_str().expect("utf-8 path");
    let mut p = Pty::dtui(
        &["--no-cache", "--watch-backend", "none", root_s],
        &[("XDG_DATA_HOME", &data)],
        30,
        100,
    );
    p.wait_for("the scanned list", |s| {
        s.contains("small") && s.contains("[cached]")
    });
    // The cursor is on the top entry, the long name (the biggest).
    p.send(b"D");
    p.wait_for("the trash confirmation", |s| {
        s.contains("item, 52 KiB) to the trash?")
    });
    p.send(b"y");
    p.wait_for("moved to the trash", |s| {
        s.contains("moved ééé") && !s.contains("nothing moved")
    });
    assert!(!root.join(&long).exists());
    let files: Vec<String> = names(&data.join("Trash/files"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].len() + ".trashinfo".len() <= 255, "{files:?}");
    let info = fs::read_to_string(
        data.join("Trash/info")
            .join(format!("{}.trashinfo", files[0])),
    )
    .expect("trashinfo");
    assert!(
        info.contains(&"%C3%A9".repeat(125)),
        "the whole name kept: {info}"
    );
    p.send(b"u");
    p.wait_for("put back", |s| {
        s.contains("put back 1 entry from the trash")
    });
    assert!(root.join(&long).exists(), "back under its own name");
    assert!(names(&data.join("Trash/files")).is_empty());
    p.quit();
}
