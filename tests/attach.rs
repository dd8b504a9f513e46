//! Attach end to end: a `dtui watch` (or a browser) owns a root live, and every other `dtui`
//! of the user on that root attaches to it: browsers in pseudo-terminals, `scan`, `watch`.
//! Each test has a runtime directory of its own (`XDG_RUNTIME_DIR`), so only its processes
//! meet; every wait is on a channel or a screen with a deadline.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::attach::{place, stop, without_origin};

/// The files in a directory, recursively (a cache home that must stay empty).
fn files_below(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.map(|e| {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_dir() {
            files_below(&e.path())
        } else {
            1
        }
    })
    .sum()
}

/// The footer's "Total disk usage: X" of a screen.
fn total(screen: &str) -> Option<String> {
    let at = screen.find("Total disk usage: ")? + "Total disk usage: ".len();
    Some(screen[at..].split("  ").next()?.trim().to_owned())
}

/// `dtui scan`'s "disk usage" figure (the same format as the footer's).
fn scan_total(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("disk usage"))
        .expect("a disk usage line");
    let after = line.trim_start().trim_start_matches("disk usage").trim();
    after.split(" (").next().expect("a size").to_owned()
}

#[test]
fn a_browser_attaches_to_a_watch_without_a_cache_or_a_catch_up_of_its_own_and_follows_it() {
    let p = place();
    let (owner, _lines, said) = p.watch(&p.cache);
    assert!(said.iter().any(|l| l.starts_with("watching ")), "{said:?}");
    // The browser's cache home stays empty: it opened no cache, so it caught nothing up.
    let own_cache = p.cache.with_extension("browser");
    let mut b = p.browser(&own_cache, &[]);
    let s = b.wait_for("the attached browser", |s| {
        s.contains("a/") && s.contains("b/") && s.contains("attached to dtui")
    });
    assert!(s.contains("live"), "{s}");
    b.send(b"?");
    b.wait_for("the help names the owner", |s| {
        s.contains("attached: live from dtui")
    });
    b.send(b"?");
    // Live through the owner.
    common::write(&p.root.join("c-new"), 2_000_000);
    b.wait_for("the new file", |s| s.contains("c-new"));
    assert_eq!(
        files_below(&own_cache),
        0,
        "an attached browser made a cache"
    );
    b.quit();
    stop(owner);
}

#[test]
fn two_browsers_a_watch_and_a_scan_attached_to_one_owner_follow_a_script_equal_to_a_fresh_scan() {
    let p = place();
    let (owner, _lines, _) = p.watch(&p.cache);
    let (watcher, watch_lines, said) = p.watch(&p.cache.with_extension("w"));
    assert!(
        said.iter().any(|l| l.starts_with("attached to dtui")),
        "the second watch did not attach: {said:?}"
    );
    let mut b1 = p.browser(&p.cache.with_extension("b1"), &[]);
    let mut b2 = p.browser(&p.cache.with_extension("b2"), &[]);
    for b in [&mut b1, &mut b2] {
        b.wait_for("attached", |s| s.contains("attached to dtui"));
    }
    // A seeded script: files made, grown, renamed and removed in several directories.
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % n
    };
    let dirs = ["a", "a/deep", "b", "c/d"];
    std::fs::create_dir_all(p.root.join("c/d")).expect("mkdir");
    let mut made: Vec<PathBuf> = Vec::new();
    for i in 0..120 {
        match next(4) {
            0 | 1 => {
                let f = p.root.join(dirs[next(4) as usize]).join(format!("f{i}"));
                common::write(&f, (next(64) as usize + 1) * 4096);
                made.push(f);
            }
            2 if !made.is_empty() => {
                let f = made.swap_remove(next(made.len() as u64) as usize);
                std::fs::remove_file(&f).expect("rm");
            }
            _ if !made.is_empty() => {
                let f = made.swap_remove(next(made.len() as u64) as usize);
                let to = p.root.join(dirs[next(4) as usize]).join(format!("m{i}"));
                std::fs::rename(&f, &to).expect("mv");
                made.push(to);
            }
            _ => {}
        }
    }
    let fresh = p.scan(&["--no-cache"]);
    let want = scan_total(&fresh);
    // The owner's tree (through an attached scan) comes to equal a fresh scan, to the byte.
    let attached = common::poll_until(Duration::from_secs(20), "the owner to follow", || {
        let out = p.scan(&[]);
        (out == fresh).then_some(out)
    });
    assert_eq!(attached, fresh);
    for b in [&mut b1, &mut b2] {
        b.wait_for("the browser's total", |s| {
            total(s).as_deref() == Some(want.as_str())
        });
    }
    // The attached watch printed the owner's batches.
    assert!(
        watch_lines.try_iter().any(|l| l.starts_with("batch ")),
        "the attached watch printed no batch"
    );
    b1.quit();
    b2.quit();
    stop(watcher);
    stop(owner);
}

#[test]
fn an_attached_browser_takes_the_root_over_when_its_owner_is_killed_and_keeps_its_place() {
    let p = place();
    let (mut owner, _lines, _) = p.watch(&p.cache);
    let mut b = p.browser(&p.cache, &[]);
    b.wait_for("attached", |s| {
        s.contains("attached to dtui") && s.contains("a/")
    });
    // Into a/ (the largest first: a/ is the first row).
    b.send(b"\r");
    b.wait_for("inside a/", |s| s.contains("deep/"));
    owner.kill().expect("kill -9");
    let _ = owner.wait();
    b.wait_for("the takeover", |s| {
        s.contains("went away") && s.contains("deep/")
    });
    // Still in a/, and live again, now as the owner itself.
    common::write(&p.root.join("a/after"), 1_000_000);
    b.wait_for("the file made after", |s| {
        s.contains("after") && s.contains("deep/")
    });
    // A new watch attaches to the browser that took over.
    let (watch, _, said) = p.watch(&p.cache.with_extension("w"));
    assert!(
        said.iter().any(|l| l.starts_with("attached to dtui")),
        "{said:?}"
    );
    stop(watch);
    b.quit();
}

#[test]
fn an_owner_tells_another_user_nothing() {
    if !common::is_root() {
        eprintln!("skipped: needs root to run a client as another user");
        return;
    }
    let p = place();
    let (owner, _lines, _) = p.watch(&p.cache);
    // Let user 65534 reach the socket (the directory is private otherwise): the owner's own
    // check of its peer is what must refuse it.
    let dir = p.runtime.join("dtui");
    std::fs::set_permissions(
        p.runtime.parent().expect("parent"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    for d in [&p.runtime, &dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let sock = std::fs::read_dir(&dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .expect("the owner's socket");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    // A hello in the protocol's framing (its version, the root), then whatever comes back.
    let root = p.root.to_str().expect("utf-8 path");
    let script = r"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(1)
s.connect(sys.argv[1])
root = sys.argv[2].encode()
body = bytes([0]) + struct.pack('<I', int(sys.argv[3])) + struct.pack('<I', len(root)) + root
try:
    s.sendall(struct.pack('<I', len(body)) + body)
except (BrokenPipeError, ConnectionResetError):
    pass
got = b''
# The owner's own user gets a welcome, an image and status frames without end: a few
# seconds of them are enough. Another user gets the end of the stream at once.
import time
until = time.time() + 3
while time.time() < until:
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        break
    if not chunk:
        break
    got += chunk
print(len(got))
";
    let out = common::run(
        common::as_nobody("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .arg(&sock)
            .arg(root)
            .arg(disktracker::attach::wire::VERSION.to_string()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout.trim(),
        "0",
        "another user was told something: {out:?}"
    );
    // The same hello from the owner's own user is answered (a welcome and an image): the
    // silence above is the peer check's, not a malformed hello's. (Python holds the image's
    // descriptor only as long as it runs.)
    let out = common::run(
        Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script.replace(
                "except ConnectionResetError:",
                "except (ConnectionResetError, socket.timeout):",
            ))
            .arg(&sock)
            .arg(root)
            .arg(disktracker::attach::wire::VERSION.to_string()),
    );
    let answered: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count");
    assert!(answered > 0, "the owner's own user got nothing: {out:?}");
    stop(owner);
}

#[test]
fn a_browser_and_a_scan_attach_to_dtui_serve_and_serve_refuses_a_root_a_browser_owns() {
    let p = place();
    let (mut serve, lines) = common::spawn_lines(p.dtui(&p.cache).arg("serve").arg(&p.root));
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("dtui serve says the root is ready");
        if line.starts_with("ready ") {
            break;
        }
    }
    let mut b = p.browser(&p.cache.with_extension("b"), &[]);
    b.wait_for("attached to serve", |s| {
        s.contains("attached to dtui") && s.contains("a/")
    });
    common::write(&p.root.join("b/grown"), 700_000);
    // An attached scan answers from the owner's tree, which follows the disk a batch later.
    let fresh = p.scan(&["--no-cache"]);
    common::poll_until(Duration::from_secs(20), "serve to follow", || {
        (p.scan(&[]) == fresh).then_some(())
    });
    b.wait_for("the file", |s| {
        s.contains("b/") && {
            // b/ (100 kB + 700 kB) is now the largest: the first row.
            s.lines().nth(1).is_some_and(|l| l.contains("b/"))
        }
    });
    b.quit();
    serve.kill().expect("kill");
    let _ = serve.wait();
    // Now a browser owns the root: a serve of it says so and stops.
    let mut owner = p.browser(&p.cache, &[]);
    owner.wait_for("the browser", |s| s.contains("a/"));
    let out = common::run(
        p.dtui(&p.cache.with_extension("s"))
            .arg("serve")
            .arg(&p.root),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is kept live by dtui"), "{stderr}");
    owner.quit();
}

#[test]
fn a_directory_below_an_owned_root_attaches_to_its_owner_and_keeps_to_its_subtree() {
    let p = place();
    let (owner, _lines, _) = p.watch(&p.cache);
    let sub = p.root.join("a");
    let mut b = p.browser_of(&sub, &p.cache.with_extension("b"), &[]);
    let s = b.wait_for("the subtree, attached", |s| {
        s.contains("attached to dtui") && s.contains("deep/")
    });
    assert!(
        !s.contains("b/"),
        "the browser shows more than its subtree:\n{s}"
    );
    // Live below, and nothing from beside it.
    common::write(&sub.join("new-below"), 900_000);
    common::write(&p.root.join("b/new-beside"), 900_000);
    b.wait_for("the file below", |s| s.contains("new-below"));
    // `r` re-reads the subtree, through the owner.
    b.send(b"r");
    b.wait_for("the re-read", |s| s.contains("re-read"));
    // A scan of the subtree attaches too, and equals a fresh one.
    let own = p.cache.with_extension("s");
    let scan = |extra: &[&str]| without_origin(&p.scan_raw(&sub, &own, extra));
    let fresh = scan(&["--no-cache"]);
    common::poll_until(Duration::from_secs(20), "the attached scan", || {
        (scan(&[]) == fresh).then_some(())
    });
    assert_eq!(
        files_below(&p.cache.with_extension("s")),
        0,
        "the attached scan made a cache"
    );
    b.quit();
    stop(owner);
}

#[test]
fn a_scan_attached_right_after_a_change_includes_it_with_each_backend() {
    // A query answers from the owner's tree, which applies a change only after its quiet
    // window: without `Sync`, `dtui scan` run right after a write missed it (5 MB written
    // in five files, five attached scans each said 8 KiB). Each step here is followed at once
    // by an attached scan, which must equal a fresh one: no polling.
    for backend in ["fanotify", "inotify"] {
        let p = place();
        let (child, lines) = common::spawn_lines(
            p.dtui(&p.cache)
                .env("DISKTRACKER_WATCH_BACKEND", backend)
                .arg("watch")
                .arg(&p.root),
        );
        common::attach::until_line(&lines, "the watch is ready", |l| l.starts_with("tree:"));
        let steps: [&dyn Fn(&Path); 6] = [
            &|r| common::write(&r.join("a/new"), 1_000_000),
            &|r| common::write(&r.join("a/new"), 3_000_000),
            // A new directory and what is in it (inotify's adder reports it).
            &|r| {
                std::fs::create_dir_all(r.join("c/d")).expect("mkdir");
                common::write(&r.join("c/d/inside"), 200_000);
            },
            &|r| std::fs::rename(r.join("a/new"), r.join("c/moved")).expect("mv"),
            &|r| std::fs::remove_file(r.join("b/two")).expect("rm"),
            &|r| std::fs::remove_dir_all(r.join("c")).expect("rm -r"),
        ];
        for (i, step) in steps.iter().enumerate() {
            step(&p.root);
            let attached = p.scan_raw(&p.root, &p.cache.with_extension("q"), &[]);
            assert!(
                attached.contains("attached"),
                "{backend} step {i}: {attached}"
            );
            let fresh = p.scan(&["--no-cache"]);
            assert_eq!(
                without_origin(&attached),
                fresh,
                "{backend} step {i}: the attached scan missed the change"
            );
        }
        stop(child);
    }
}

/// `dtui reconcile --full` attached to `owner`, which is killed once the query says the owner
/// re-reads the tree (its re-read of 5,000 files takes milliseconds, the kill microseconds):
/// the query's stdout and stderr, or `None` when the owner answered first all the same.
fn reconcile_killing_the_owner(
    p: &common::attach::Place,
    owner: &mut std::process::Child,
) -> Option<(String, String)> {
    let mut query = p
        .dtui(&p.cache)
        .args(["reconcile", "--full"])
        .arg(&p.root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = common::stdout_lines(&mut query);
    let err = common::lines_of(query.stderr.take().expect("a piped stderr"));
    let mut said = common::attach::until_line(&err, "the query's owner re-reads", |l| {
        l.contains("re-reads the tree")
    });
    owner.kill().expect("kill -9");
    let _ = owner.wait();
    let rest = common::attach::until_line(&out, "the query's total", |l| l.starts_with("total: "));
    let status = query.wait().expect("wait");
    said.extend(err.try_iter());
    let (stdout, stderr) = (rest.join("\n"), said.join("\n"));
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
        .contains("went away; opening the root again")
        .then_some((stdout, stderr))
}

#[test]
fn a_reconcile_whose_owner_is_killed_while_it_rereads_answers_from_who_takes_the_root_over() {
    // Should the owner ever answer before the kill (the test held up that long), the test
    // tries again with another owner, three times at most.
    let p = place();
    for d in 0..5 {
        let dir = p.root.join(format!("many/{d}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..1000 {
            std::fs::write(dir.join(f.to_string()), b"x").expect("write");
        }
    }
    let fresh = p.scan(&["--no-cache"]);
    let total = format!("total: {} on disk", scan_total(&fresh));
    // With a follower, a watch of the same user (the same cache home) attached to the owner:
    // it takes the root over, with the cache, and the query attaches to it.
    let mut answered = None;
    for _ in 0..3 {
        let (mut owner, _lines, _) = p.watch(&p.cache);
        let (follower, lines, said) = p.watch(&p.cache);
        assert!(
            said.iter().any(|l| l.starts_with("attached to dtui")),
            "{said:?}"
        );
        if let Some(got) = reconcile_killing_the_owner(&p, &mut owner) {
            let after = common::attach::until_line(&lines, "the follower took over", |l| {
                l.starts_with("tree:")
            });
            answered = Some((got, follower.id(), after));
            stop(follower);
            break;
        }
        stop(follower);
    }
    let ((stdout, stderr), follower, after) = answered.expect("the owner answered first, 3 times");
    assert!(stdout.contains(&total), "{stdout} / {fresh}");
    assert!(
        stdout.contains(&format!("cache attached: live from dtui {follower} ")),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("full reconcile: "), "{stdout}");
    let took_over = after.last().expect("tree: line");
    assert!(
        !took_over.contains("cache none"),
        "the follower lost the cache: {after:?}"
    );
    // Without one, the query opens the root on its own, from the cache.
    let mut answered = None;
    for _ in 0..3 {
        let (mut owner, _lines, _) = p.watch(&p.cache);
        if let Some(got) = reconcile_killing_the_owner(&p, &mut owner) {
            answered = Some(got);
            break;
        }
    }
    let (stdout, stderr) = answered.expect("the owner answered first, 3 times");
    assert!(stdout.contains(&total), "{stdout} / {fresh}");
    assert!(!stdout.contains("attached: "), "{stdout}\n{stderr}");
    assert!(stdout.contains("cache loaded"), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("cache ").count(), 1, "one origin: {stdout}");
}
