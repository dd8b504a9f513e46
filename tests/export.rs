//! `dtui export` writes ncdu's JSON format, checked by real clients: `ncdu -f` (which must
//! accept it and write back the same sizes and items) and `gdu -f`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Sums an ncdu JSON export the way ncdu does: every item's own sizes, hard links (by `ino`)
/// once. Returns (items below the root, apparent, disk).
fn summarize(file: &Path) -> (u64, u64, u64) {
    let bytes = std::fs::read(file).expect("read export");
    // Names are raw bytes (ncdu passes invalid UTF-8 through); they do not matter here.
    let text = String::from_utf8_lossy(&bytes);
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let top = v.as_array().expect("top-level array");
    assert_eq!(top[0], 1, "major version");
    let mut seen = std::collections::HashSet::new();
    let (mut items, mut apparent, mut disk) = (0u64, 0u64, 0u64);
    let mut stack = vec![&top[3]];
    while let Some(node) = stack.pop() {
        let info = match node {
            serde_json::Value::Array(list) => {
                stack.extend(list.iter().skip(1));
                &list[0]
            }
            other => other,
        };
        items += 1;
        if let Some(ino) = info.get("ino")
            && !seen.insert(ino.as_u64().expect("ino"))
        {
            continue;
        }
        apparent += info
            .get("asize")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        disk += info
            .get("dsize")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
    }
    (items - 1, apparent, disk)
}

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

#[test]
fn the_export_round_trips_through_ncdu_with_the_same_sizes_and_items() {
    need("ncdu");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir(&root).expect("mkdir");
    awkward_tree(&root);
    let out = dir.path().join("out.json");
    let status = run(dtui().arg("export").arg(&root).arg("-o").arg(&out));
    assert!(status.status.success(), "{status:?}");

    let (items, apparent, disk) = summarize(&out);
    assert_eq!(items, find_count(&root));
    assert_eq!(apparent, du(&root, true));
    assert_eq!(disk, du(&root, false));

    let out2 = dir.path().join("out2.json");
    let ncdu = run(Command::new("ncdu")
        .arg("-f")
        .arg(&out)
        .arg("-o")
        .arg(&out2));
    assert!(ncdu.status.success(), "ncdu refused the export: {ncdu:?}");
    assert_eq!(summarize(&out2), (items, apparent, disk));
    // Names survive byte for byte, invalid UTF-8 and newlines included.
    let again = std::fs::read(&out2).expect("read");
    let has = |needle: &[u8]| again.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"\"caf\xe9-latin1\""));
    assert!(has(b"\"new\\nline\""));
    assert!(has(b"\"dir\\nwith\xffodd\""));
}

#[test]
fn gdu_opens_the_export() {
    need("gdu");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("big")).expect("mkdir");
    write(&root.join("big/blob"), 3_000_000);
    write(&root.join("small"), 1000);
    let out = dir.path().join("out.json");
    assert!(
        run(dtui().arg("export").arg(&root).arg("-o").arg(&out))
            .status
            .success()
    );
    let gdu = run(Command::new("gdu")
        .args(["-n", "-p", "--no-color", "-f"])
        .arg(&out));
    assert!(gdu.status.success(), "gdu refused the export: {gdu:?}");
    let text = String::from_utf8_lossy(&gdu.stdout);
    let big = text.find("big").expect("gdu lists big");
    let small = text.find("small").expect("gdu lists small");
    assert!(big < small, "gdu sorts big first: {text}");
}

#[test]
fn export_to_an_unwritable_place_fails_cleanly_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir(&root).expect("mkdir");
    let target = dir.path().join("no/such/dir/out.json");
    let out = run(dtui().arg("export").arg(&root).arg("-o").arg(&target));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One line for the error (a root's first cache says where it goes on a line of its own).
    let errors = stderr
        .lines()
        .filter(|l| !l.starts_with("dtui: caching the tree of"))
        .count();
    assert_eq!(errors, 1, "{stderr}");
    assert!(!target.exists());
}

#[test]
fn export_to_a_full_disk_fails_cleanly_and_leaves_nothing() {
    // /dev/full fails every write with ENOSPC.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir(&root).expect("mkdir");
    for i in 0..2000 {
        write(&root.join(format!("file-{i}")), 1);
    }
    let out = run(dtui().arg("export").arg(&root).args(["-o", "-"]).stdout(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full"),
    ));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Runs `script` with `sh -e` in a private mount namespace (`unshare -m`: mounts made there,
/// a tmpfs over /dev say, vanish with it and never touch the real system).
fn in_mount_namespace(script: &str) -> std::process::Output {
    assert!(
        is_root(),
        "this test needs root (for unshare -m); CI runs as root"
    );
    let out = run(Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-ec", script])
        .env("XDG_CACHE_HOME", test_cache_home())
        .env("DTUI", env!("CARGO_BIN_EXE_dtui")));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{out:?}"
    );
    out
}

fn small_tree(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("tree");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    write(&root.join("sub/file"), 5000);
    write(&root.join("other"), 100);
    root
}

#[test]
fn export_to_dev_null_as_root_writes_through_it_and_never_replaces_the_device() {
    // Regression: as root, `-o /dev/null` renamed a regular file over the system's /dev/null.
    // In a private namespace a tmpfs over /dev holds a fresh null device, so a regression
    // cannot destroy the real one.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = small_tree(dir.path());
    let script = format!(
        "mount -t tmpfs tmpfs /dev
         mknod -m 666 /dev/null c 1 3
         \"$DTUI\" export --no-cache '{}' -o /dev/null
         stat -c '%F %a' /dev/null
         ls -A /dev",
        root.display()
    );
    let out = in_mount_namespace(&script);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("character special file 666"), "{text}");
    assert_eq!(
        lines.next(),
        Some("null"),
        "no temp file left in /dev: {text}"
    );
    assert_eq!(lines.next(), None, "{text}");
    let real = std::fs::metadata("/dev/null").expect("/dev/null");
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&real.file_type()),
        "the real /dev/null is untouched"
    );
}

#[test]
fn export_to_dev_stdout_and_to_a_link_to_the_process_stream_writes_into_the_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = small_tree(dir.path());
    let link = dir.path().join("link-to-stdout");
    // `/dev/stdout` in a /dev of our own, and a plain symlink into /proc (followed by the
    // kernel to the pipe, which is written in place).
    let script = format!(
        "mount -t tmpfs tmpfs /dev
         ln -s /proc/self/fd/1 /dev/stdout
         ln -s /proc/self/fd/1 '{link}'
         \"$DTUI\" export --no-cache '{root}' -o /dev/stdout | wc -c
         \"$DTUI\" export --no-cache '{root}' -o '{link}' | wc -c
         \"$DTUI\" export --no-cache '{root}' -o /dev/stdout >> '{dir}/appended'
         ls -A /dev; stat -c %F '{link}'",
        link = link.display(),
        root = root.display(),
        dir = dir.path().display()
    );
    std::fs::write(dir.path().join("appended"), b"KEEP\n").expect("write");
    let out = in_mount_namespace(&script);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let size: u64 = lines[0].trim().parse().expect("a byte count");
    assert!(size > 100, "the export went through the pipe: {text}");
    assert_eq!(lines[1].trim(), lines[0].trim(), "{text}");
    assert_eq!(lines[2], "stdout", "nothing but our link in /dev: {text}");
    assert_eq!(lines[3], "symbolic link", "the link is kept: {text}");
    let appended = std::fs::read(dir.path().join("appended")).expect("read");
    assert!(appended.starts_with(b"KEEP\n[1,2,"), "`>>` appends");
}

#[test]
fn export_to_a_fifo_writes_into_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = small_tree(dir.path());
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).expect("read the fifo"))
    };
    let out = run(dtui()
        .arg("export")
        .arg("--no-cache")
        .arg(&root)
        .arg("-o")
        .arg(&fifo));
    assert!(out.status.success(), "{out:?}");
    let got = reader.join().expect("reader");
    let v: serde_json::Value = serde_json::from_slice(&got).expect("JSON through the fifo");
    assert_eq!(v[0], 1);
    let meta = std::fs::symlink_metadata(&fifo).expect("stat");
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()),
        "still a fifo"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temp file beside it: {names:?}");
}

#[test]
fn a_symlink_target_is_followed_and_the_file_it_names_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = small_tree(dir.path());
    let real = dir.path().join("real.json");
    std::fs::write(&real, b"old").expect("write");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink("real.json", &link).expect("symlink");
    let out = run(dtui()
        .arg("export")
        .arg("--no-cache")
        .arg(&root)
        .arg("-o")
        .arg(&link));
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("stat")
            .file_type()
            .is_symlink(),
        "the link is still a link"
    );
    let meta = std::fs::metadata(&real).expect("stat");
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o640,
        "the mode is kept"
    );
    assert!(std::fs::read(&real).expect("read").starts_with(b"[1,2,"));
}

#[test]
fn a_new_export_file_gets_0666_less_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = small_tree(dir.path());
    for (umask, want) in [("022", 0o644), ("002", 0o664), ("077", 0o600)] {
        let target = dir.path().join(format!("out-{umask}.json"));
        let out = run(Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask {umask}; exec \"$DTUI\" export --no-cache '{}' -o '{}'",
                root.display(),
                target.display()
            ))
            .env("XDG_CACHE_HOME", test_cache_home())
            .env("DTUI", env!("CARGO_BIN_EXE_dtui")));
        assert!(out.status.success(), "{out:?}");
        let mode = std::fs::metadata(&target)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, want, "umask {umask}");
    }
}

#[test]
fn sigint_during_an_export_removes_its_temp_file_and_keeps_the_old_target() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir(&root).expect("mkdir");
    // Enough entries that writing them takes a while after the temp file appears.
    for i in 0..30_000 {
        std::fs::File::create(root.join(format!("file-with-a-rather-long-name-{i:06}")))
            .expect("create");
    }
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let target = out_dir.join("export.json");
    std::fs::write(&target, b"old").expect("write");
    let mut child = dtui()
        .arg("export")
        .arg("--no-cache")
        .arg(&root)
        .arg("-o")
        .arg(&target)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Stop it the moment its temp file exists, interrupt it, let it go on.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let temp_seen = loop {
        let temps = std::fs::read_dir(&out_dir)
            .expect("ls")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .count();
        if temps > 0 {
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stop");
            break true;
        }
        if child.try_wait().expect("wait").is_some() {
            break false;
        }
        assert!(std::time::Instant::now() < deadline, "no temp file seen");
        std::thread::yield_now();
    };
    assert!(temp_seen, "the export ended before its temp file was seen");
    let temps_now = std::fs::read_dir(&out_dir).expect("ls").count();
    assert_eq!(temps_now, 2, "stopped while writing its temp file");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("int");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("cont");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGINT),
        "dies of the signal: {out:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("export.json")]);
    assert_eq!(std::fs::read(&target).expect("read"), b"old");
}

#[test]
fn an_export_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = small_tree(dir.path());
    for args in [&["export", "-o", "-"][..], &["scan"][..]] {
        let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
        drop(read_end); // the reader is gone before the first write
        let out = run(dtui()
            .args(args)
            .arg("--no-cache")
            .arg(&root)
            .stdout(std::process::Stdio::from(write_end)));
        assert_eq!(out.status.code(), Some(141), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: nothing printed: {out:?}");
    }
}

#[test]
fn dtui_dash_o_exports_like_ncdu_dash_o_without_a_terminal() {
    // `ncdu -o FILE DIR` is how ncdu users export; dtui refused `-o` ("unexpected argument").
    let dir = tempfile::tempdir().expect("tempdir");
    let root = small_tree(dir.path());
    let out = dir.path().join("out.json");
    let r = run(dtui().arg("-o").arg(&out).arg(&root));
    assert!(r.status.success(), "{r:?}");
    let (items, apparent, disk) = summarize(&out);
    assert_eq!(items, find_count(&root));
    assert_eq!((apparent, disk), (du(&root, true), du(&root, false)));
    // `-o -` writes to standard output; the default path is the current directory.
    let r = run(dtui().current_dir(&root).args(["--no-cache", "-o", "-"]));
    assert!(r.status.success(), "{r:?}");
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.starts_with("[1,2,{\"progname\":\"dtui\""), "{text}");
    assert!(text.contains("\"name\":\"sub\""), "{text}");
    // Reading an export and writing one is not a thing dtui does: bad usage, said at once.
    let r = run(dtui()
        .arg("-f")
        .arg(&out)
        .arg("-o")
        .arg(dir.path().join("x")));
    assert_eq!(r.status.code(), Some(2));
}
