//! The screen explains itself, through the real binary in a pseudo-terminal (issue 23): `? for
//! help` in the header at every width, the order and size mode in the footer at every width,
//! plain words in the header (the backend only in the help), messages gone at the next key,
//! and the message of a directory that went naming it as it was last called.

mod common;

use common::pty::{NO_ENV, Pty};
use common::*;

fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}

/// dtui on `root` without a cache, watched by inotify, once `name` is listed and the header
/// says `live`.
fn live_browser(root: &std::path::Path, name: &str, rows: u16, cols: u16) -> Pty {
    let mut pty = Pty::dtui(
        &[
            "--no-cache",
            "--watch-backend",
            "inotify",
            root.to_str().expect("utf-8"),
        ],
        NO_ENV,
        rows,
        cols,
    );
    pty.wait_for("the list, live", |s| {
        s.contains(name) && header(s).trim_end().ends_with("live")
    });
    pty
}

fn footer(screen: &str) -> &str {
    screen.lines().last().unwrap_or("")
}

#[test]
fn the_header_offers_help_and_the_footer_keeps_the_order_at_every_width() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    write(&root.join("sub/file"), 10_000);
    let root_s = root.to_str().expect("utf-8");
    for cols in [100, 60, 40, 24] {
        let mut pty = Pty::dtui(
            &["--no-cache", "--watch-backend", "inotify", root_s],
            NO_ENV,
            12,
            cols,
        );
        let screen = pty.wait_for(&format!("{cols}: the list, live"), |s| {
            s.contains("sub/") && header(s).trim_end().ends_with("live")
        });
        let head = header(&screen);
        assert!(
            head.contains("? for help") || (cols < 50 && head.contains("?:help")),
            "{cols} columns: the header offers help: {head:?}"
        );
        assert!(
            !head.contains("inotify"),
            "{cols} columns: the backend is not in the header: {head:?}"
        );
        assert!(
            footer(&screen).contains("size↓") && footer(&screen).contains("disk"),
            "{cols} columns: the footer says the order and the size shown:\n{screen}"
        );
        pty.send(b"a");
        pty.wait_for(&format!("{cols}: apparent sizes"), |s| {
            footer(s).contains("size↓") && footer(s).contains("apparent")
        });
        // The help names the backend, on its last line (End: a short terminal scrolls it).
        pty.send(b"?");
        pty.send(b"\x1b[F");
        pty.wait_for(&format!("{cols}: the help's watcher line"), |s| {
            s.lines()
                .any(|l| l.contains("watcher") && l.contains("inotify"))
        });
        pty.send(b"q");
        pty.wait_for(&format!("{cols}: the help closed"), |s| {
            !s.contains("watcher")
        });
        assert_eq!(pty.quit(), 0);
    }
}

#[test]
fn a_message_goes_at_the_next_key_and_counts_one_in_the_singular() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    write(&root.join("sub/file"), 10_000);
    let mut pty = Pty::dtui(
        &[
            "--no-cache",
            "--watch-backend",
            "none",
            root.to_str().expect("utf-8"),
        ],
        NO_ENV,
        20,
        100,
    );
    pty.wait_for("the list", |s| s.contains("sub/") && s.contains("[cached]"));
    pty.send(b"\r");
    pty.wait_for("inside sub/", |s| s.contains("file") && s.contains(".."));
    pty.send(b"r");
    pty.wait_for("r's answer, singular", |s| {
        s.contains("re-read: no changes (1 directory read)")
    });
    pty.send(b"j");
    pty.wait_for("the message gone at the next key", |s| {
        !s.contains("re-read:") && s.contains("file")
    });
    assert_eq!(pty.quit(), 0);
}

#[test]
fn the_gone_message_names_the_directory_as_it_was_last_called() {
    // Regression: a directory renamed while on screen, then deleted, was named by the path it
    // had when the user opened it.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("before/inner")).expect("mkdir");
    write(&root.join("before/inner/file"), 10_000);
    write(&root.join("other"), 1_000);
    let mut pty = live_browser(&root, "before/", 20, 120);
    pty.send(b"\r");
    pty.wait_for("inside before/", |s| {
        header(s).contains("/tree/before") && s.contains("inner/")
    });
    std::fs::rename(root.join("before"), root.join("after")).expect("rename");
    pty.wait_for("the header follows the rename", |s| {
        header(s).contains("/tree/after")
    });
    std::fs::remove_dir_all(root.join("after")).expect("rm -r");
    let screen = pty.wait_for("the gone message", |s| s.contains("is gone"));
    let line = screen
        .lines()
        .find(|l| l.contains("is gone"))
        .expect("the message line");
    assert!(
        line.contains("/tree/after is gone"),
        "named as it was last called: {line}"
    );
    // Gone at the next key, as every message.
    pty.send(b"j");
    pty.wait_for("the message gone", |s| !s.contains("is gone"));
    assert_eq!(pty.quit(), 0);
}

#[test]
fn the_delete_dialog_follows_the_disk_and_asks_again_when_the_target_grew() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("victim")).expect("mkdir");
    for i in 0..3 {
        write(&root.join(format!("victim/f{i}")), 100_000);
    }
    write(&root.join("small"), 1_000);
    let mut pty = live_browser(&root, "victim/", 30, 100);
    // The cursor is on the biggest: victim.
    pty.send(b"d");
    pty.wait_for("the confirmation", |s| s.contains("Delete victim (4 items"));
    write(&root.join("victim/grown"), 5 * 1024 * 1024);
    let screen = pty.wait_for("the dialog counted again", |s| {
        s.contains("Changed on disk since it was shown") && s.contains("Delete victim (5 items")
    });
    assert!(screen.contains("MiB"), "the new size is shown:\n{screen}");
    pty.send(b"y");
    pty.wait_for("the delete of what was shown", |s| {
        s.contains("deleted 5 items")
    });
    assert!(!root.join("victim").exists(), "all of it went");
    assert_eq!(pty.quit(), 0);
}

#[test]
fn capital_q_quits_and_prints_the_directory_on_screen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub dir")).expect("mkdir");
    write(&root.join("sub dir/file"), 10_000);
    let script = format!(
        "{} --no-cache --watch-backend none {}; echo \"rc=$?\"",
        env!("CARGO_BIN_EXE_dtui"),
        common::pty::sh_quote(&root)
    );
    let mut pty = Pty::spawn(&script);
    pty.wait_for("the list", |s| s.contains("sub dir/"));
    pty.send(b"\r");
    pty.wait_for("inside sub dir/", |s| {
        s.contains("file") && s.contains("..")
    });
    pty.send(b"Q");
    let want = root.join("sub dir").display().to_string();
    pty.wait_for_raw(
        "the directory printed after the screen is restored",
        |_, raw| {
            let text = String::from_utf8_lossy(raw);
            text.rfind("\x1b[?1049l").is_some_and(|left| {
                let after = &text[left..];
                after.contains(&format!("{want}\r\n")) && after.contains("rc=0")
            })
        },
    );
    assert_eq!(pty.exit_code(), 0);
}

/// A fake `xdg-open` in `bin/` that writes its argument and its pid to `out`, then waits: the
/// browser must not wait with it.
fn fake_xdg_open(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let out = dir.join("opened");
    let script = bin.join("xdg-open");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s %s\\n' \"$$\" \"$1\" > '{}.tmp'\nmv '{0}.tmp' '{0}'\nexec sleep 30\n",
            out.display()
        ),
    )
    .expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (bin, out)
}

#[test]
fn o_opens_the_selected_entry_with_xdg_open_without_waiting_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(&root).expect("mkdir");
    write(&root.join("picture.png"), 50_000);
    write(&root.join("small"), 10);
    let (bin, out) = fake_xdg_open(dir.path());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let root_s = root.to_str().expect("utf-8");
    let args = ["--no-cache", "--watch-backend", "none", root_s];

    // No display: a one-line message, nothing run.
    let mut pty = Pty::dtui(
        &args,
        &[
            ("PATH", path.as_str()),
            ("DISPLAY", ""),
            ("WAYLAND_DISPLAY", ""),
        ],
        20,
        100,
    );
    // After the scan (its end clears the footer's message).
    pty.wait_for("the list", |s| {
        s.contains("picture.png") && header(s).trim_end().ends_with("cached")
    });
    pty.send(b"o");
    pty.wait_for("the no-display message", |s| {
        s.contains("o needs a display")
    });
    assert!(!out.exists(), "xdg-open was not run");
    assert_eq!(pty.quit(), 0);

    // A display: xdg-open gets the selected file's path, and the browser goes on meanwhile.
    let mut pty = Pty::dtui(
        &args,
        &[("PATH", path.as_str()), ("DISPLAY", ":99")],
        20,
        100,
    );
    // After the scan (its end clears the footer's message).
    pty.wait_for("the list", |s| {
        s.contains("picture.png") && header(s).trim_end().ends_with("cached")
    });
    pty.send(b"o");
    pty.wait_for("the opening message", |s| s.contains("with xdg-open"));
    let line = poll_until(
        std::time::Duration::from_secs(20),
        "xdg-open to run",
        || std::fs::read_to_string(&out).ok(),
    );
    let (pid, arg) = line.trim_end().split_once(' ').expect("pid and path");
    assert_eq!(arg, root.join("picture.png").to_str().expect("utf-8"));
    // xdg-open still runs (it sleeps): the browser answers keys all the same.
    pty.send(b"?");
    pty.wait_for("the help while xdg-open runs", |s| s.contains("dtui help"));
    pty.send(b"q");
    pty.wait_for("the help closed", |s| !s.contains("dtui help"));
    assert_eq!(pty.quit(), 0);
    let pid: i32 = pid.parse().expect("pid");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    );
}

#[test]
fn cd_to_what_capital_q_printed_works_from_a_command_substitution() {
    // `cd "$(dtui)"`: standard output is a pipe; the browser draws on the terminal instead,
    // and only Q's line reaches the pipe.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("deeper/still")).expect("mkdir");
    write(&root.join("deeper/still/file"), 10_000);
    let script = format!(
        "cd \"$({} --no-cache --watch-backend none {})\" && echo \"now in: $(pwd)\"",
        env!("CARGO_BIN_EXE_dtui"),
        common::pty::sh_quote(&root)
    );
    let mut pty = Pty::spawn(&script);
    pty.wait_for("the list on the terminal", |s| {
        s.contains("deeper/") && s.contains("? for help")
    });
    pty.send(b"\r");
    pty.wait_for("inside deeper/", |s| {
        s.contains("still/") && s.contains("..")
    });
    pty.send(b"\r");
    pty.wait_for("inside still/", |s| s.contains("file") && s.contains(".."));
    pty.send(b"Q");
    let want = format!("now in: {}", root.join("deeper/still").display());
    pty.wait_for("the shell in the directory Q printed", |s| {
        s.contains(&want)
    });
    assert_eq!(pty.exit_code(), 0);
}
