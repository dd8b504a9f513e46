//! The cache is private (issue 8, section 1): modes whatever the umask, no symlink followed
//! and no FIFO waited on, a foreign or group-writable cache not used (and said so, on stderr
//! and in the browser's footer), no root-owned directories in another user's home, and the
//! temp files of interrupted or failed saves removed.

mod cache_support;
mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cache_support::*;
use common::*;
use crossbeam_channel::{Receiver, bounded, unbounded};
use disktracker::cache::CachePaths;

/// Starts `dtui watch` (its database stays open, so `-wal` and `-shm` exist) and waits until
/// the tree is ready.
fn watch_until_ready(mut cmd: Command) -> std::process::Child {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx): (_, Receiver<String>) = unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with("tree:") => return child,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("dtui watch never became ready: {err}");
            }
        }
    }
}

fn stop(child: &mut std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let (tx, rx) = bounded(1);
    let pid = child.id();
    let status = std::thread::scope(|s| {
        s.spawn(|| {
            let _ = tx.send(child.wait());
        });
        let r = rx.recv_timeout(Duration::from_secs(20));
        if r.is_err() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        r
    });
    assert!(status.is_ok(), "dtui watch did not stop on SIGTERM");
}

/// Every file of a cache that is open (db, -wal, -shm, arena, lock) is 0600 and the
/// directory 0700, all owned by `uid`, under a umask of 000.
fn assert_private_while_open(wrap: &[&str], uid: u32, cache: &Path, root: &Path) {
    let dtui_as = |command: &str| {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "umask 000; exec \"$@\"", "sh"])
            .args(wrap)
            .arg(env!("CARGO_BIN_EXE_dtui"))
            .arg(command);
        if command == "watch" {
            cmd.args(["--watch-backend", "notify"]);
        }
        cmd.arg("--cache-dir").arg(cache).arg(root);
        cmd.env("XDG_CACHE_HOME", test_cache_home());
        cmd
    };
    // A first run saves the arena; the watcher then keeps the database (and its side
    // files) open.
    let out = run_within(&mut dtui_as("scan"), 60);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut child = watch_until_ready(dtui_as("watch"));
    let open = modes(cache);
    stop(&mut child);
    let suffixes: Vec<&str> = open
        .iter()
        .map(|(n, _, _)| n.rsplit_once('.').map_or("", |(_, s)| s))
        .collect();
    for want in ["db", "db-wal", "db-shm", "arena", "lock"] {
        assert!(suffixes.contains(&want), "{want} present: {open:?}");
    }
    for (name, m, owner) in &open {
        assert_eq!((*m, *owner), (0o600, uid), "{name}: {open:?}");
    }
    assert_eq!(mode(cache), 0o700);
    assert_eq!(fs::metadata(cache).expect("stat").uid(), uid);
}

#[test]
fn cache_files_are_0600_and_the_directory_0700_whatever_the_umask() {
    let dir = world_tempdir();
    let root = dir.path().join("tree");
    small_tree(&root);
    let cache = dir.path().join("cache/dtui");
    // A first run creates everything, a second maps the arena and keeps the database open.
    let out = run_within(
        Command::new("sh")
            .args(["-c", "umask 000; exec \"$@\"", "sh"])
            .arg(env!("CARGO_BIN_EXE_dtui"))
            .args(["scan", "--cache-dir"])
            .arg(&cache)
            .arg(&root),
        60,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&dir.path().join("cache")), 0o700, "parents made too");
    let me = nix::unistd::geteuid().as_raw();
    assert_private_while_open(&[], me, &cache, &root);

    // A file left too readable (0644, as older versions did) is narrowed: it is ours, in our
    // private directory. A directory readable by others is refused, never chmod'ed: dtui
    // changes the mode of no directory it did not make (`--cache-dir /var/cache`).
    let db = CachePaths::new(&cache, &root.canonicalize().expect("canon")).db;
    fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).expect("chmod");
    let (v, stderr) = scan_cached(&mut dtui(), &cache, &root);
    assert!(
        v["cache"].as_str().expect("cache").starts_with("loaded"),
        "{v} {stderr}"
    );
    assert_eq!((mode(&cache), mode(&db)), (0o700, 0o600));
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o755)).expect("chmod");
    let (v, stderr) = scan_cached(&mut dtui(), &cache, &root);
    assert!(
        v["cache"].as_str().expect("cache").starts_with("none")
            && stderr.contains("is readable by group or others (mode 0755)"),
        "{v} {stderr}"
    );
    assert_eq!(mode(&cache), 0o755, "left as it was");
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).expect("chmod");

    if !is_root() {
        return;
    }
    // As nobody, in a directory it owns, the cache directory made by dtui itself.
    let home = dir.path().join("nobody");
    fs::create_dir(&home).expect("mkdir");
    nix::unistd::chown(&home, Some(NOBODY.into()), Some(NOBODY.into())).expect("chown");
    let cache = home.join("cache");
    fs::set_permissions(dir.path().join("tree"), fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_private_while_open(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ],
        NOBODY,
        &cache,
        &root,
    );
}

#[test]
fn a_planted_symlink_at_any_cache_file_name_is_never_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    small_tree(&root);
    let canon = root.canonicalize().expect("canon");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    for (i, which) in ["db", "db-wal", "db-shm", "arena", "lock"]
        .iter()
        .enumerate()
    {
        for existing in [false, true] {
            let cache = dir.path().join(format!("cache-{i}-{existing}"));
            fs::create_dir(&cache).expect("mkdir");
            fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).expect("chmod");
            let p = CachePaths::new(&cache, &canon);
            let name = match *which {
                "db" => p.db.clone(),
                "arena" => p.arena.clone(),
                "lock" => p.lock.clone(),
                side => PathBuf::from(format!("{}-{}", p.db.display(), &side[3..])),
            };
            let target = outside.join(format!("target-{i}-{existing}"));
            if existing {
                fs::write(&target, b"precious").expect("write");
                fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).expect("chmod");
            }
            symlink(&target, &name).expect("plant");
            let (v, stderr) = scan_cached(&mut dtui(), &cache, &root);
            assert!(
                stderr.contains("running without a cache") && stderr.contains("symbolic link"),
                "{which}: {stderr}"
            );
            assert!(
                v["cache"].as_str().expect("cache").starts_with("none"),
                "{v}"
            );
            if existing {
                assert_eq!(fs::read(&target).expect("read"), b"precious", "{which}");
                assert_eq!(mode(&target), 0o644, "{which}");
            } else {
                assert!(!target.exists(), "{which}: the target was created");
            }
            assert!(
                fs::symlink_metadata(&name)
                    .expect("still there")
                    .is_symlink(),
                "{which}"
            );
            // `cache clear` leaves a symlink alone too (and the file it points to).
            let out = run_within(
                dtui()
                    .args(["cache", "clear", "--all", "--cache-dir"])
                    .arg(&cache),
                20,
            );
            assert!(out.status.success(), "{}", stderr_of(&out));
            assert!(fs::symlink_metadata(&name).is_ok(), "{which}");
            if existing {
                assert_eq!(fs::read(&target).expect("read"), b"precious", "{which}");
            }
        }
    }
}

#[test]
fn a_fifo_at_any_cache_file_name_does_not_hang_scan_list_or_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    small_tree(&root);
    let canon = root.canonicalize().expect("canon");
    for which in ["db", "arena", "lock", "db-wal"] {
        let cache = dir.path().join(format!("cache-{which}"));
        fs::create_dir(&cache).expect("mkdir");
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).expect("chmod");
        let p = CachePaths::new(&cache, &canon);
        let name = match which {
            "db" => p.db.clone(),
            "arena" => p.arena.clone(),
            "lock" => p.lock.clone(),
            _ => PathBuf::from(format!("{}-wal", p.db.display())),
        };
        nix::unistd::mkfifo(&name, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let (v, stderr) = scan_cached(&mut dtui(), &cache, &root);
        assert!(
            stderr.contains("running without a cache") && stderr.contains("not a regular file"),
            "{which}: {stderr}"
        );
        assert_eq!(v["items"], 6, "{which}");
        for args in [&["list"][..], &["clear", "--all"][..]] {
            let out = run_within(
                dtui()
                    .arg("cache")
                    .args(args)
                    .arg("--cache-dir")
                    .arg(&cache),
                20,
            );
            assert!(
                out.status.success(),
                "{which} {args:?}: {}",
                stderr_of(&out)
            );
        }
        assert!(
            fs::symlink_metadata(&name)
                .expect("the fifo stays")
                .file_type()
                .is_fifo(),
            "{which}"
        );
    }
}

#[test]
fn a_foreign_or_group_writable_cache_is_not_used_and_the_reason_is_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    small_tree(&root);
    let canon = root.canonicalize().expect("canon");

    // Group- or world-writable directory (a fresh tmpfs is 1777): not used, nothing written.
    for m in [0o770, 0o1777, 0o702] {
        let cache = dir.path().join(format!("cache-{m:o}"));
        fs::create_dir(&cache).expect("mkdir");
        fs::set_permissions(&cache, fs::Permissions::from_mode(m)).expect("chmod");
        let (v, stderr) = scan_cached(&mut dtui(), &cache, &root);
        assert!(
            stderr.contains("running without a cache")
                && stderr.contains("writable by group or others"),
            "{m:o}: {stderr}"
        );
        assert!(
            v["cache"].as_str().expect("cache").starts_with("none"),
            "{v}"
        );
        assert!(names(&cache).is_empty(), "{m:o}: {:?}", names(&cache));
    }

    // A group-writable file in a good directory: not used, left as it is.
    let cache = dir.path().join("cache-file");
    let (_, stderr) = scan_cached(&mut dtui(), &cache, &root);
    assert!(!stderr.contains("warning"), "{stderr}");
    let p = CachePaths::new(&cache, &canon);
    fs::set_permissions(&p.db, fs::Permissions::from_mode(0o660)).expect("chmod");
    let (v, stderr) = scan_cached(&mut dtui(), &cache, &root);
    assert!(
        stderr.contains("running without a cache") && stderr.contains(".db is writable by group"),
        "{stderr}"
    );
    assert!(
        v["cache"].as_str().expect("cache").starts_with("none"),
        "{v}"
    );
    assert_eq!(mode(&p.db), 0o660);

    if !is_root() {
        return;
    }
    // Owned by someone else: the directory, or one file in it.
    let cache = dir.path().join("cache-foreign");
    fs::create_dir(&cache).expect("mkdir");
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).expect("chmod");
    nix::unistd::chown(&cache, Some(NOBODY.into()), None).expect("chown");
    let (_, stderr) = scan_cached(&mut dtui(), &cache, &root);
    assert!(
        stderr.contains("running without a cache") && stderr.contains("belongs to uid 65534"),
        "{stderr}"
    );
    assert!(names(&cache).is_empty());
    nix::unistd::chown(&cache, Some(0.into()), None).expect("chown back");
    let (_, stderr) = scan_cached(&mut dtui(), &cache, &root);
    assert!(!stderr.contains("warning"), "{stderr}");
    let p = CachePaths::new(&cache, &canon);
    nix::unistd::chown(&p.arena, Some(NOBODY.into()), None).expect("chown");
    let (_, stderr) = scan_cached(&mut dtui(), &cache, &root);
    assert!(
        stderr.contains("running without a cache")
            && stderr.contains(".arena is owned by uid 65534"),
        "{stderr}"
    );
    // A hard link to a file elsewhere would have us write that file.
    nix::unistd::chown(&p.arena, Some(0.into()), None).expect("chown back");
    fs::remove_file(&p.arena).expect("rm");
    let elsewhere = dir.path().join("elsewhere");
    fs::write(&elsewhere, b"keep").expect("write");
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::hard_link(&elsewhere, &p.arena).expect("link");
    let (_, stderr) = scan_cached(&mut dtui(), &cache, &root);
    assert!(stderr.contains("hard links"), "{stderr}");
    assert_eq!(fs::read(&elsewhere).expect("read"), b"keep");
}

/// The user's home directory in the password database (where root's own cache goes).
fn passwd_home(uid: u32) -> PathBuf {
    nix::unistd::User::from_uid(uid.into())
        .expect("getpwuid")
        .expect("a passwd entry")
        .dir
}

#[test]
fn sudo_keeping_another_users_home_never_creates_root_owned_directories_there() {
    if !is_root() {
        eprintln!("skipped: needs root (CI runs as root)");
        return;
    }
    let dir = world_tempdir();
    let root = dir.path().join("tree");
    small_tree(&root);
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod");
    let alice = dir.path().join("alice");
    fs::create_dir(&alice).expect("mkdir");
    nix::unistd::chown(&alice, Some(NOBODY.into()), Some(NOBODY.into())).expect("chown");
    // Root's own home is replaced by an empty tmpfs in a private mount namespace, so the test
    // can see what lands there without touching the real one.
    let own = passwd_home(0);
    let script = format!(
        "mount -t tmpfs -o mode=700 none {own} && \
         {dtui} scan --json {root} && \
         stat -c '%a %u %n' {own}/.cache/dtui {own}/.cache/dtui/*",
        own = own.display(),
        dtui = env!("CARGO_BIN_EXE_dtui"),
        root = root.display(),
    );
    let out = run_within(
        Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .env("HOME", &alice)
            .env_remove("XDG_CACHE_HOME"),
        60,
    );
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("belongs to uid 65534, not to you (uid 0)")
            && stderr.contains(&format!("using {}/.cache/dtui", own.display())),
        "{stderr}"
    );
    assert_eq!(
        names(&alice),
        Vec::<String>::new(),
        "nothing made in alice's home"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#""cache":"new"#), "{text}");
    assert!(
        text.contains(&format!("700 0 {}/.cache/dtui\n", own.display())),
        "{text}"
    );
    assert!(text.contains(".db\n"), "{text}");

    // nobody with root's HOME and no home of its own: no cache at all, and why.
    let out = run_within(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_dtui"))
            .args(["scan", "--json"])
            .arg(&root)
            .env("HOME", &own)
            .env_remove("XDG_CACHE_HOME"),
        60,
    );
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("running without a cache: no cache directory of yours")
            && stderr.contains("belongs to uid 0, not to you (uid 65534)"),
        "{stderr}"
    );
}

#[test]
fn temp_files_of_interrupted_saves_are_removed_at_the_next_start_and_by_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    small_tree(&root);
    let cache = dir.path().join("cache");
    scan_cached(&mut dtui(), &cache, &root);
    let p = CachePaths::new(&cache, &root.canonicalize().expect("canon"));
    let before = names(&cache);
    let plant = |name: &str| {
        let f = cache.join(name);
        fs::write(&f, vec![0u8; 100_000]).expect("plant");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).expect("chmod");
    };
    let ours = [
        format!(".tmp-{}.arena.AbC123", p.key),
        ".tmpXyZ789".to_owned(), // an older version's unnamed temp file
    ];
    let not_ours = [
        ".tmp-notes",
        "keep.txt",
        ".tmp-other-0123456789abcdef.arena.AbC123",
    ];
    for n in ours.iter().map(String::as_str).chain(not_ours) {
        plant(n);
    }
    let (v, stderr) = scan_cached(&mut dtui(), &cache, &root);
    assert!(
        v["cache"].as_str().expect("cache").starts_with("loaded"),
        "{stderr}"
    );
    let mut want: Vec<String> = before.clone();
    want.extend(not_ours.iter().map(|s| (*s).to_owned()));
    want.sort();
    assert_eq!(
        names(&cache),
        want,
        "this cache's temp files went, nothing else"
    );

    // `cache clear --all` removes temp files whose database is gone, by their name.
    let out = run_within(
        dtui()
            .args(["cache", "clear", "--all", "--cache-dir"])
            .arg(&cache),
        20,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(names(&cache), vec![".tmp-notes", "keep.txt"]);
}

#[test]
fn an_arena_save_that_fails_on_a_full_disk_leaves_no_partial_file() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    for d in 0..10 {
        fs::create_dir_all(root.join(format!("d{d}"))).expect("mkdir");
        for f in 0..300 {
            // Names unique across directories: the arena shares repeated names.
            write(
                &root.join(format!("d{d}/d{d}-file-with-a-longish-name-{f}")),
                2,
            );
        }
    }
    let cache = dir.path().join("cache");
    fs::create_dir(&cache).expect("mkdir");
    // The first run saves everything; then the disk is filled to within 100 KiB, room for a
    // batch in the WAL but not for the new arena (180 KiB).
    let script = format!(
        "mount -t tmpfs -o size=2m,mode=700 none {cache} && \
         {dtui} scan --json --cache-dir {cache} {root} >/dev/null && \
         (dd if=/dev/zero of={cache}/filler bs=4k 2>/dev/null; true) && \
         truncate -s -100k {cache}/filler && touch {root}/new && \
         {dtui} scan --json --cache-dir {cache} {root} >/dev/null && ls -a {cache}",
        cache = cache.display(),
        root = root.display(),
        dtui = env!("CARGO_BIN_EXE_dtui"),
    );
    let out = run_within(
        Command::new("unshare").args(["-m", "sh", "-c", &script]),
        60,
    );
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the cache was not saved") && stderr.contains("No space left"),
        "{stderr}"
    );
    let left = String::from_utf8_lossy(&out.stdout);
    assert!(
        !left.contains(".tmp"),
        "a partial temp file was left: {left}"
    );
}

#[test]
fn the_browser_keeps_saying_why_it_runs_without_a_cache_in_its_footer() {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    small_tree(&root);
    let cache = dir.path().join("cache");
    fs::create_dir(&cache).expect("mkdir");
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o770)).expect("chmod");
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 20,
            cols: 160,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_dtui"));
    cmd.arg("--cache-dir");
    cmd.arg(&cache);
    cmd.arg(&root);
    cmd.env("TERM", "xterm-256color");
    let mut child = pair.slave.spawn_command(cmd).expect("spawn");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut writer = pair.master.take_writer().expect("writer");
    let (tx, rx) = unbounded();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut parser = vt100::Parser::new(20, 160, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut wait_for = |what: &str, cond: &dyn Fn(&str) -> bool| loop {
        let screen = parser.screen().contents();
        if cond(&screen) {
            return screen;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let bytes = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {what}:\n{screen}"));
        parser.process(&bytes);
    };
    wait_for("complete frame", &|s| {
        s.contains("[fresh]") || s.contains("[live]")
    });
    // A key handled after the scan's end was reported: the reason is still on screen.
    writer.write_all(b"n").expect("n");
    writer.flush().expect("flush");
    let screen = wait_for("list sorted by name", &|s| {
        // by size: big-link, sub/, small; by name: big-link, small, sub/
        s.lines().nth(2).is_some_and(|l| l.contains("small"))
    });
    assert!(
        screen.contains("running without a cache")
            && screen.contains("writable by group or others"),
        "{screen}"
    );
    writer.write_all(b"q").expect("q");
    writer.flush().expect("flush");
    let (done_tx, done_rx) = bounded(1);
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let status = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("dtui exits")
        .expect("status");
    assert!(status.success());
    assert!(names(&cache).is_empty(), "nothing written");
}
