//! End to end: the real `dtui` binary in a pseudo-terminal, its screen parsed with `vt100`.

mod common;

use common::pty::{NO_ENV, Pty, sh_quote};
use common::*;
use std::path::Path;
use std::time::Duration;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[test]
fn the_browser_opens_descends_and_quits_restoring_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    for (d, n) in [("biggest", 40), ("middle", 10), ("smallest", 2)] {
        std::fs::create_dir_all(root.join(d).join("inner")).expect("mkdir");
        for i in 0..n {
            write(&root.join(d).join(format!("file{i}")), 50_000);
        }
    }
    write(&root.join("biggest/inner/needle"), 10);
    let script = format!(
        "{} --no-cache {}; rc=$?; echo; stty -a; exit $rc",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(&root)
    );
    let mut pty = Pty::spawn(&script);
    pty.wait_for_raw("the list with totals", |s, _| {
        s.contains("biggest/")
            && s.contains("Total disk usage")
            && (s.contains("up to date") || s.contains("live"))
    });
    let screen = pty.parser.screen().contents();
    let row = |name: &str| screen.lines().position(|l| l.contains(name));
    assert!(
        row("biggest/") < row("middle/"),
        "largest on top:\n{screen}"
    );
    assert!(row("middle/") < row("smallest/"), "{screen}");

    pty.send(b"\r");
    pty.wait_for_raw("the inside of biggest/", |s, _| {
        s.lines()
            .next()
            .is_some_and(|header| header.contains("/tree/biggest"))
            && s.lines().nth(1).is_some_and(|l| l.trim() == "..")
            && s.contains("file0")
    });
    pty.send(b"q");
    let code = pty.exit_code();
    assert_eq!(code, 0, "q exits 0");
    let raw = &pty.raw;
    let entered = find(raw, b"\x1b[?1049h").expect("the alternate screen was used");
    let left = find(raw, b"\x1b[?1049l").expect("the alternate screen was left");
    assert!(left > entered, "left after entering");
    assert!(
        find(raw, b"\x1b[?25h").is_some_and(|p| p > entered),
        "the cursor is shown again"
    );
    let stty = String::from_utf8_lossy(&raw[left..]);
    assert!(
        stty.contains(" icanon") && stty.contains(" echo"),
        "raw mode is off again: {stty}"
    );
}

#[test]
fn a_missing_path_is_a_clear_error_without_raw_mode() {
    let script = format!(
        "{} /nonexistent/dtui-test-path; rc=$?; echo; stty -a; exit $rc",
        env!("CARGO_BIN_EXE_dtui")
    );
    let mut pty = Pty::spawn(&script);
    let code = pty.exit_code();
    assert_eq!(code, 1);
    let text = String::from_utf8_lossy(&pty.raw).into_owned();
    assert!(
        text.contains("dtui: /nonexistent/dtui-test-path: No such file or directory"),
        "{text}"
    );
    assert!(
        find(&pty.raw, b"\x1b[?1049h").is_none(),
        "no alternate screen"
    );
    assert!(text.contains(" icanon") && text.contains(" echo"), "{text}");
    assert!(!text.contains("panicked"));
}

#[test]
fn sigterm_quits_the_browser_and_restores_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("file"), 1000);
    let script = format!(
        "exec {} --no-cache {}",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(dir.path())
    );
    let mut pty = Pty::spawn(&script);
    pty.wait_for_raw("the list", |s, _| s.contains("Total disk usage"));
    let pid = pty.child.process_id().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    assert_eq!(pty.exit_code(), 0, "a clean quit");
    let raw = &pty.raw;
    let entered = find(raw, b"\x1b[?1049h").expect("entered");
    assert!(
        find(raw, b"\x1b[?1049l").is_some_and(|p| p > entered),
        "left the alternate screen"
    );
    assert!(
        find(raw, b"\x1b[?25h").is_some_and(|p| p > entered),
        "cursor shown"
    );
}

/// The pid of `parent`'s child running `name` (from /proc), waiting for it to appear.
fn child_named(parent: u32, name: &str) -> nix::unistd::Pid {
    poll_until(
        Duration::from_secs(20),
        &format!("{name} under {parent}"),
        || {
            std::fs::read_dir("/proc")
                .expect("/proc")
                .flatten()
                .find_map(|entry| {
                    let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                    // pid (comm) state ppid ...
                    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
                    let comm = &stat[open + 1..close];
                    let ppid = stat[close + 1..].split_whitespace().nth(1);
                    (comm == name && ppid == Some(parent.to_string().as_str())).then(|| {
                        let found: i32 = stat[..open].trim().parse().expect("pid");
                        nix::unistd::Pid::from_raw(found)
                    })
                })
        },
    )
}

/// The terminal after dtui left: the alternate screen left, the cursor shown, and the `stty -a`
/// printed after it shows cooked mode.
fn assert_restored(raw: &[u8]) {
    let entered = find(raw, b"\x1b[?1049h").expect("the alternate screen was used");
    let left = find(raw, b"\x1b[?1049l").expect("the alternate screen was left");
    assert!(left > entered, "left after entering");
    assert!(
        find(raw, b"\x1b[?25h").is_some_and(|p| p > entered),
        "the cursor is shown again"
    );
    assert!(
        find(raw, b"\x1b[?1000l").is_some_and(|p| p > entered),
        "mouse reporting is off again"
    );
    let stty = String::from_utf8_lossy(&raw[left..]);
    let words: Vec<&str> = stty.split_whitespace().collect();
    for mode in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(words.contains(&mode), "cooked mode ({mode}): {stty}");
    }
}

/// A small tree to browse.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("somedir")).expect("mkdir");
    write(&dir.path().join("somedir/file"), 1000);
    write(&dir.path().join("file"), 1000);
    dir
}

#[test]
fn sigint_and_sigquit_quit_the_browser_and_restore_the_terminal() {
    // Regression: an external `kill -INT` left the alternate screen, a hidden cursor and mouse
    // reporting on.
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGQUIT,
    ] {
        let dir = fixture();
        let script = format!(
            "{} --no-cache {}; rc=$?; echo; stty -a; exit $rc",
            env!("CARGO_BIN_EXE_dtui"),
            sh_quote(dir.path())
        );
        let mut pty = Pty::spawn(&script);
        pty.wait_for_raw("the list", |s, _| s.contains("Total disk usage"));
        let sh = pty.child.process_id().expect("pid");
        nix::sys::signal::kill(child_named(sh, "dtui"), signal).expect("kill");
        assert_eq!(pty.exit_code(), 0, "{signal}: a clean quit");
        assert_restored(&pty.raw);
    }
}

#[test]
fn ctrl_c_quits_from_the_help_window() {
    let dir = fixture();
    let script = format!(
        "{} --no-cache {}; rc=$?; echo; stty -a; exit $rc",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(dir.path())
    );
    let mut pty = Pty::spawn(&script);
    pty.wait_for_raw("the list", |s, _| s.contains("Total disk usage"));
    pty.send(b"?");
    pty.wait_for_raw("the help window", |s, _| s.contains("dtui help"));
    pty.send(b"\x03");
    assert_eq!(pty.exit_code(), 0);
    assert_restored(&pty.raw);
}

#[test]
fn ctrl_z_suspends_to_the_shell_and_fg_redraws_the_list() {
    let dir = fixture();
    let mut pty = Pty::spawn_with(
        "bash",
        &["--norc", "--noprofile", "-i"],
        &[("PS1", "PROMPT> ")],
    );
    pty.wait_for_raw("the prompt", |s, _| s.contains("PROMPT> "));
    pty.send(
        format!(
            "{} --no-cache {}\r",
            env!("CARGO_BIN_EXE_dtui"),
            sh_quote(dir.path())
        )
        .as_bytes(),
    );
    pty.wait_for_raw("the list", |s, _| s.contains("Total disk usage"));
    assert!(pty.parser.screen().alternate_screen());
    let before = pty.raw.len();
    pty.send(b"\x1a");
    pty.wait_for_raw("the shell, dtui stopped", |s, _| {
        s.contains("Stopped") && s.lines().any(|l| l.trim_end() == "PROMPT>")
    });
    assert!(
        !pty.parser.screen().alternate_screen(),
        "the alternate screen was left"
    );
    let suspended = pty.raw[before..].to_vec();
    assert!(
        find(&suspended, b"\x1b[?25h").is_some(),
        "the cursor is shown"
    );
    pty.send(b"stty -a\r");
    pty.wait_for_raw("stty's report", |s, _| s.contains("icanon"));
    let screen = pty.parser.screen().contents();
    assert!(
        screen.contains(" icanon") && screen.contains(" echo"),
        "cooked while stopped: {screen}"
    );
    pty.send(b"fg\r");
    pty.wait_for_raw("the list again", |s, _| s.contains("Total disk usage"));
    assert!(
        pty.parser.screen().alternate_screen(),
        "back on the alternate screen"
    );
    // Keys work again (raw mode is back): `?` opens the help, q closes it, q quits.
    pty.send(b"?");
    pty.wait_for_raw("the help window", |s, _| s.contains("dtui help"));
    let mark = pty.raw.len();
    pty.send(b"qq");
    pty.wait_for_raw("the shell again", |_, raw| {
        let after = &raw[mark.min(raw.len())..];
        find(after, b"\x1b[?1049l").is_some_and(|left| find(&after[left..], b"PROMPT> ").is_some())
    });
    pty.send(b"echo rc=$?; exit\r");
    assert_eq!(pty.exit_code(), 0);
    assert!(
        String::from_utf8_lossy(&pty.raw).contains("rc=0"),
        "dtui exited 0"
    );
}

/// A `DTUI_SHELL` running `body` (a /bin/sh script), in `dir`.
fn shell_script(dir: &Path, body: &str) -> String {
    let path = dir.join("dtui-shell");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path.display().to_string()
}

#[test]
fn typing_right_after_b_reaches_the_shell_and_never_stops_dtui() {
    // Regression: keys typed within ~50 ms of `b` were read by dtui's input thread while the
    // shell owned the terminal, which stopped dtui with SIGTTIN.
    let dir = fixture();
    let tools = tempfile::tempdir().expect("tempdir");
    let shell = shell_script(
        tools.path(),
        "PS1='SHELL> ' exec bash --norc --noprofile -i",
    );
    let script = format!(
        "{} --no-cache {}; rc=$?; echo; stty -a; exit $rc",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(dir.path())
    );
    let mut pty = Pty::spawn_with("sh", &["-c", &script], &[("DTUI_SHELL", &shell)]);
    pty.wait_for_raw("the list", |s, _| s.contains("Total disk usage"));
    // `b` and what follows it in one write: all of it is queued before dtui reads the `b`.
    pty.send(b"becho typed-$((6*7))\r");
    pty.wait_for_raw("the typed command's output", |s, _| s.contains("typed-42"));
    pty.send(b"exit\r");
    pty.wait_for_raw("the list again", |s, _| s.contains("Total disk usage"));
    assert!(pty.parser.screen().alternate_screen());
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
    assert_restored(&pty.raw);
}

#[test]
fn b_takes_the_terminal_back_from_a_killed_shell_and_restores_the_saved_modes() {
    let dir = fixture();
    let tools = tempfile::tempdir().expect("tempdir");
    // A job-control shell takes the terminal's foreground; killed, it cannot give it back.
    // And before dying it leaves the terminal raw, which must not survive `q`.
    let shell = shell_script(
        tools.path(),
        "PS1='SHELL> ' exec bash --norc --noprofile -i",
    );
    let script = format!(
        "{} --no-cache {}; rc=$?; echo; stty -a; exit $rc",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(dir.path())
    );
    let mut pty = Pty::spawn_with("sh", &["-c", &script], &[("DTUI_SHELL", &shell)]);
    pty.wait_for_raw("the list", |s, _| s.contains("Total disk usage"));
    pty.send(b"b");
    pty.wait_for_raw("the shell", |s, _| s.contains("SHELL> "));
    pty.send(b"stty raw -echo; echo now-$((1+1))-raw\r");
    pty.wait_for_raw("the raw terminal", |s, _| s.contains("now-2-raw"));
    let sh = pty.child.process_id().expect("pid");
    let dtui = child_named(sh, "dtui");
    let bash = child_named(dtui.as_raw() as u32, "bash");
    nix::sys::signal::kill(bash, nix::sys::signal::Signal::SIGKILL).expect("kill");
    pty.wait_for_raw("the list again", |s, _| s.contains("Total disk usage"));
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
    assert_restored(&pty.raw);
}

#[test]
fn the_b_message_shows_a_hostile_directory_name_escaped() {
    let parent = tempfile::tempdir().expect("tempdir");
    let root = parent.path().join("\x1b]0;pwned\x07");
    std::fs::create_dir(&root).expect("mkdir");
    write(&root.join("file"), 10);
    let tools = tempfile::tempdir().expect("tempdir");
    let shell = shell_script(tools.path(), "echo shell-ran");
    let script = format!(
        "{} --no-cache {}",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(&root)
    );
    let mut pty = Pty::spawn_with("sh", &["-c", &script], &[("DTUI_SHELL", &shell)]);
    pty.wait_for_raw("the list", |s, _| s.contains("Total disk usage"));
    pty.send(b"b");
    pty.wait_for_raw("the message", |_, raw| find(raw, b"shell-ran").is_some());
    pty.send(b"q");
    pty.exit_code();
    assert!(
        String::from_utf8_lossy(&pty.raw).contains("dtui: a shell in "),
        "the message was printed"
    );
    assert!(
        find(&pty.raw, b"\x1b]0;pwned").is_none(),
        "no raw escape sequence from the name reached the terminal"
    );
}

#[test]
fn the_browser_exits_3_when_entries_were_unreadable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = world_tempdir();
    std::fs::create_dir(dir.path().join("locked")).expect("mkdir");
    write(&dir.path().join("locked/inside"), 10);
    write(&dir.path().join("file"), 10);
    std::fs::set_permissions(
        dir.path().join("locked"),
        std::fs::Permissions::from_mode(0o000),
    )
    .expect("chmod");
    // As nobody (root reads everything).
    let script = format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups -- {} --no-cache {}",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(dir.path())
    );
    let mut pty = Pty::spawn(&script);
    pty.wait_for_raw("the list, scanned", |s, _| {
        s.contains("Total disk usage") && s.contains("could not be read")
    });
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 3);
    assert!(
        String::from_utf8_lossy(&pty.raw).contains("1 entries could not be read"),
        "said why"
    );
}

#[test]
fn b_in_a_directory_that_is_gone_says_so() {
    let parent = tempfile::tempdir().expect("tempdir");
    let root = parent.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    write(&root.join("file"), 10);
    let tools = tempfile::tempdir().expect("tempdir");
    let shell = shell_script(tools.path(), "echo shell-ran");
    let script = format!(
        "{} --no-cache {}",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(&root)
    );
    let mut pty = Pty::spawn_with("sh", &["-c", &script], &[("DTUI_SHELL", &shell)]);
    // After the first scan (a root deleted while it is listed is an unreadable root).
    pty.wait_for_raw("the list", |s, _| {
        s.contains("Total disk usage") && (s.contains("[live]") || s.contains("[cached]"))
    });
    std::fs::remove_dir_all(&root).expect("rm");
    pty.send(b"b");
    pty.wait_for_raw("the message", |s, _| s.contains("no longer exists"));
    let screen = pty.parser.screen().contents();
    assert!(!screen.contains("cannot run"), "{screen}");
    pty.send(b"\r");
    pty.wait_for_raw("the list again", |s, _| s.contains("Total disk usage"));
    pty.send(b"q");
    let code = pty.exit_code();
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&pty.raw));
}

/// Runs `script` with `sh -c` in `dir` (another process changing the tree), to its end.
fn sh_in(dir: &Path, script: &str) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("sh");
    assert!(status.success(), "{script}");
}

/// What the footer shows for `bytes`.
fn human(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::BINARY)
}

/// The footer's total as the browser prints it, for `du -sB1` of the root.
fn total_is(root: &Path) -> String {
    format!("Total disk usage: {}  ", human(du(root, false)))
}

/// The screen line holding `needle`.
fn line_with(screen: &str, needle: &str) -> Option<String> {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .map(str::to_owned)
}

/// Opens the info window on the selected row and returns the exact disk bytes it shows.
fn info_disk_bytes(pty: &mut Pty) -> u64 {
    pty.send(b"i");
    pty.wait_for_raw("the info window", |s, _| s.contains(" Disk: "));
    let screen = pty.parser.screen().contents();
    let line = line_with(&screen, " Disk: ").expect("a Disk line");
    let bytes = line
        .split('(')
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {line:?}"));
    pty.send(b"\x1b");
    pty.wait_for_raw("the window closed", |s, _| !s.contains(" Disk: "));
    bytes
}

#[test]
fn the_browser_shows_changes_made_by_another_process_as_they_happen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("olddir")).expect("mkdir");
    for i in 0..5 {
        write(&root.join(format!("olddir/f{i}")), 20_000);
    }
    write(&root.join("small"), 1000);
    let mut pty = Pty::spawn_with(
        env!("CARGO_BIN_EXE_dtui"),
        &[
            "--cache-dir",
            cache.path().to_str().expect("utf-8"),
            root.to_str().expect("utf-8"),
        ],
        NO_ENV,
    );
    pty.wait_for_raw("the live list", |s, _| {
        s.contains("olddir/") && s.lines().next().is_some_and(|h| h.ends_with("live "))
    });

    // A 50 MB file: it appears on top, highlighted as new, with du's exact size.
    sh_in(&root, "head -c 52428800 /dev/zero > big.bin");
    let total = total_is(&root);
    pty.wait_for_raw("big.bin highlighted", |s, _| {
        line_with(s, "big.bin").is_some_and(|l| l.contains(" +"))
    });
    pty.wait_for_raw("big.bin with the exact total", |s, _| s.contains(&total));
    let screen = pty.parser.screen().contents();
    let rows: Vec<&str> = screen.lines().collect();
    assert!(rows[1].contains("big.bin"), "largest on top:\n{screen}");
    // The cursor stayed on the top row (nobody moved it): the info is big.bin's.
    assert_eq!(info_disk_bytes(&mut pty), du(&root.join("big.bin"), false));

    // Deleted: gone, and the total is du's again.
    sh_in(&root, "rm big.bin");
    let total = total_is(&root);
    pty.wait_for_raw("big.bin gone", |s, _| {
        !s.contains("big.bin") && s.contains(&total)
    });

    // A directory renamed: the new name, the same total.
    sh_in(&root, "mv olddir newdir");
    pty.wait_for_raw("the rename", |s, _| {
        s.contains("newdir/") && !s.contains("olddir/") && s.contains(&total)
    });

    // A chain of new directories and a file in one go.
    sh_in(
        &root,
        "mkdir -p a/b/c && head -c 3000000 /dev/zero > a/b/c/file",
    );
    let total = total_is(&root);
    pty.wait_for_raw("a/ with its whole subtree", |s, _| {
        s.contains("a/") && s.contains(&total)
    });
    let screen = pty.parser.screen().contents();
    assert!(
        screen.lines().nth(1).is_some_and(|l| l.contains(" a/")),
        "{screen}"
    );
    assert_eq!(info_disk_bytes(&mut pty), du(&root.join("a"), false));
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
}

#[test]
fn r_shows_a_change_the_watcher_could_not_see() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    write(&root.join("sub/file"), 10_000);
    let mut pty = Pty::spawn_with(
        env!("CARGO_BIN_EXE_dtui"),
        &[
            "--no-cache",
            "--watch-backend",
            "none",
            root.to_str().expect("utf-8"),
        ],
        NO_ENV,
    );
    pty.wait_for_raw("the list, not watched", |s, _| {
        s.contains("sub/") && s.contains("[cached]")
    });
    let screen = pty.parser.screen().contents();
    assert!(
        screen.contains("running without a cache"),
        "said on screen:\n{screen}"
    );
    // r in a subdirectory: re-read it.
    sh_in(&root, "head -c 2000000 /dev/zero > sub/late.bin");
    let total = total_is(&root.join("sub"));
    pty.send(b"\r");
    pty.wait_for_raw("inside sub/", |s, _| s.contains("file") && s.contains(".."));
    pty.send(b"r");
    pty.wait_for_raw("late.bin after r", |s, _| {
        s.contains("late.bin") && s.contains(&total) && s.contains("re-read: 1 added")
    });
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
}

#[test]
fn capital_r_shows_a_change_the_watcher_could_not_see() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    write(&root.join("sub/file"), 10_000);
    let mut pty = Pty::spawn_with(
        env!("CARGO_BIN_EXE_dtui"),
        &[
            "--no-cache",
            "--watch-backend",
            "none",
            root.to_str().expect("utf-8"),
        ],
        NO_ENV,
    );
    pty.wait_for_raw("the list, not watched", |s, _| {
        s.contains("sub/") && s.contains("[cached]")
    });
    sh_in(&root, "head -c 2000000 /dev/zero > late.bin");
    let total = total_is(&root);
    pty.send(b"R");
    pty.wait_for_raw("late.bin after R", |s, _| {
        s.contains("late.bin") && s.contains("sub/") && s.contains(&total)
    });
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
}

#[test]
fn after_the_first_scan_the_cursor_is_on_the_largest_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    // The small directory is listed (and complete) long before the large one.
    std::fs::create_dir_all(root.join("aaa-small")).expect("mkdir");
    write(&root.join("aaa-small/f"), 5000);
    std::fs::create_dir_all(root.join("zzz-large")).expect("mkdir");
    for i in 0..3000 {
        write(&root.join(format!("zzz-large/f{i}")), 100);
    }
    let mut pty = Pty::spawn_with(
        env!("CARGO_BIN_EXE_dtui"),
        &["--no-cache", root.to_str().expect("utf-8")],
        NO_ENV,
    );
    pty.wait_for_raw("the scanned list", |s, _| {
        s.contains("zzz-large/") && (s.contains("[live]") || s.contains("[cached]"))
    });
    let screen = pty.parser.screen();
    assert!(
        screen
            .contents()
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("zzz-large/")),
        "largest first:\n{}",
        screen.contents()
    );
    let inverse = |row: u16| screen.cell(row, 20).is_some_and(vt100::Cell::inverse);
    assert!(inverse(1), "the cursor is on the top row");
    assert!(!inverse(2));
    pty.send(b"\r");
    pty.wait_for_raw("the largest opened", |s, _| {
        s.lines()
            .next()
            .is_some_and(|h| h.contains("/tree/zzz-large"))
    });
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
}

#[test]
fn times_are_shown_in_the_local_time_zone() {
    // Regression: the mtime column and the info window showed UTC with no word of it; ncdu
    // and `ls` show local time. 1_700_000_000 is 2023-11-14 22:13 UTC, 07:13 the next day
    // in Japan (a POSIX TZ string: no time zone database needed).
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("dated");
    write(&f, 1000);
    std::fs::File::options()
        .write(true)
        .open(&f)
        .and_then(|h| {
            h.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
        })
        .expect("set mtime");
    let root = dir.path().to_str().expect("utf-8 path");
    let mut pty = Pty::dtui(
        &["--no-cache", "--watch-backend", "none", root],
        &[("TZ", "JST-9")],
        12,
        100,
    );
    pty.wait_for("the list", |s| {
        s.contains("dated") && s.contains("[cached]")
    });
    pty.send(b"m");
    pty.wait_for("the mtime column", |s| {
        s.contains("2023-11-15 07:13  dated")
    });
    pty.send(b"i");
    pty.wait_for("the info window", |s| {
        s.contains("Modified:  2023-11-15 07:13")
    });
    pty.send(b"\x1b");
    pty.wait_for("the window closed", |s| !s.contains("Modified:"));
    pty.quit();
}
