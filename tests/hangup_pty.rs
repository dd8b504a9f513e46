//! The browser's terminal hangs up (its window closed, an ssh connection lost, `tmux
//! kill-server`: the pseudo-terminal's master closed while dtui runs): dtui ends as on `q`,
//! its cache saved, with no panic; attached, it leaves its owner running; owning, it hands
//! the root to the browser attached to it. Each test has a runtime directory of its own
//! (`XDG_RUNTIME_DIR`), so only its processes meet.

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use common::attach::place;
use common::pty::{Pty, sh_quote};

/// The files in `dir` whose names end with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").path())
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}

/// A `dtui watch` stopped (SIGTERM) when the test ends, failed or not.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

/// Regression: ratatui's `Terminal`, dropped before the engine was shut down, showed the
/// cursor on the dead terminal, said it could not with `eprintln!` to the dead terminal,
/// and that panicked on EIO; the panic hook ended dtui (101) before the arena was saved, so
/// the next start rebuilt the tree from the database.
#[test]
fn a_browser_whose_terminal_hangs_up_saves_its_arena_and_ends() {
    let p = place();
    let cache = &p.cache;
    let mut b = p.browser(
        &p.cache,
        &["--cache-dir", cache.to_str().expect("utf-8 path")],
    );
    b.wait_for("the tree, live", |s| s.contains("a/") && s.contains("live"));
    b.hang_up();
    let code = b.exit_code();
    assert_eq!(
        files_ending(cache, ".arena").len(),
        1,
        "the arena was saved (dtui ended with {code})"
    );
    assert_eq!(code, 0, "dtui ends as on q");
    let out = p.scan_raw(
        &p.root,
        &p.cache.with_extension("scan"),
        &[
            "--no-catch-up",
            "--cache-dir",
            cache.to_str().expect("utf-8"),
        ],
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("cache") && l.contains("arena mapped")),
        "the next start maps the arena: {out}"
    );
}

/// Run by a session leader that ignores SIGHUP (and so stays), the browser gets no SIGHUP
/// when the terminal hangs up (the kernel sends it to the session leader only): the end of
/// the terminal's input is what ends it.
#[test]
fn a_browser_that_gets_no_sighup_ends_at_the_end_of_its_input_and_saves_its_arena() {
    let p = place();
    let script = format!(
        "trap '' HUP; {} --cache-dir {} {}",
        sh_quote(Path::new(env!("CARGO_BIN_EXE_dtui"))),
        sh_quote(&p.cache),
        sh_quote(&p.root)
    );
    let mut b = Pty::sized(
        "sh",
        &["-c", &script],
        &[("XDG_RUNTIME_DIR", p.runtime.as_os_str())],
        50,
        110,
    );
    b.wait_for("the tree, live", |s| s.contains("a/") && s.contains("live"));
    b.hang_up();
    let code = b.exit_code();
    assert_eq!(
        files_ending(&p.cache, ".arena").len(),
        1,
        "the arena was saved (dtui ended with {code})"
    );
    assert_eq!(code, 0, "dtui ends as on q");
}

#[test]
fn a_browser_attached_to_a_watch_ends_when_its_terminal_hangs_up_and_the_watch_goes_on() {
    let p = place();
    let (owner, _lines, _) = p.watch(&p.cache);
    let mut owner = Watch(owner);
    let mut b = p.browser(&p.cache.with_extension("b"), &[]);
    b.wait_for("attached", |s| {
        s.contains("attached to dtui") && s.contains("a/")
    });
    b.hang_up();
    assert_eq!(b.exit_code(), 0, "the attached browser ends as on q");
    assert!(
        owner.0.try_wait().expect("try_wait").is_none(),
        "the watch ended with its client"
    );
    // Still live: a file made now reaches the owner's tree (a scan attached to it says so).
    common::write(&p.root.join("c-new"), 2_000_000);
    common::poll_until(Duration::from_secs(20), "the watch to see c-new", || {
        let out = p.scan_raw(&p.root, &p.cache.with_extension("scan"), &[]);
        (out.contains("attached") && out.contains("c-new")).then_some(())
    });
}

#[test]
fn a_browser_owning_the_root_saves_when_its_terminal_hangs_up_and_the_attached_one_takes_over() {
    let p = place();
    let mut owner = p.browser(&p.cache, &[]);
    owner.wait_for("the owner, live", |s| {
        s.contains("a/") && s.contains("live")
    });
    let mut b = p.browser(&p.cache, &[]);
    b.wait_for("attached", |s| {
        s.contains("attached to dtui") && s.contains("a/")
    });
    owner.hang_up();
    let code = owner.exit_code();
    b.wait_for("the takeover", |s| s.contains("went away"));
    // The tree taken over is the arena the owner saved as it ended.
    b.send(b"?");
    b.wait_for("the help says where the tree came from", |s| {
        s.contains("tree") && (s.contains("arena mapped") || s.contains("rebuilt"))
    });
    let help = b.screen();
    assert!(help.contains("arena mapped"), "{help}");
    assert_eq!(code, 0, "the owner ends as on q");
    b.send(b"?");
    assert_eq!(b.quit(), 0);
}
