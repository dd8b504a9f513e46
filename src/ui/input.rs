//! Keys and mouse from the terminal, read one byte at a time and one event at a time.
//!
//! The reader hands over an event and reads nothing more until the loop has applied it: after
//! `b` (a shell) or Ctrl-Z (a suspend), what the user types next is still in the terminal's
//! queue for the shell, and no read of ours can race it (a background read would stop dtui with
//! SIGTTIN). `pause` is the handshake: it returns once the reader is parked, not reading. The
//! bytes are decoded here (crossterm's reader reads ahead and cannot be paused).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crossbeam_channel::Sender;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use ratatui::crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use super::app::Event;

/// How long the rest of an escape sequence may take after its ESC (a lone ESC is the Esc key).
const SEQUENCE_GAP: u16 = 50;
/// Longest escape sequence decoded; a longer one is dropped.
const MAX_SEQUENCE: usize = 64;

#[derive(Default)]
struct State {
    /// An event was sent and the loop has not applied it yet.
    in_flight: bool,
    /// The loop asked the reader to stop reading.
    paused: bool,
    /// The reader is waiting, reading nothing (the answer to `paused`).
    parked: bool,
    /// The reader has ended (end of input, a read error, the loop gone).
    ended: bool,
}

#[derive(Default)]
struct Gate {
    state: Mutex<State>,
    changed: Condvar,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The reader thread's controls.
pub struct Input {
    gate: Arc<Gate>,
    wake: OwnedFd,
}

impl Input {
    /// Starts reading stdin (a terminal in raw mode) into `tx` as `Event::Input`.
    pub fn spawn(tx: Sender<Event>) -> io::Result<Input> {
        let (wake_rx, wake_tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let gate = Arc::new(Gate::default());
        let reader = Arc::clone(&gate);
        std::thread::Builder::new()
            .name("dtui-input".into())
            .spawn(move || {
                if read_loop(&reader, &wake_rx, &tx) == Ended::Terminal {
                    // Nothing more will come (in raw mode a read ends only when the terminal
                    // hung up): the browser ends as on SIGHUP, which the kernel sends to the
                    // session leader only (a dtui run by a shell that ignores it gets none).
                    super::terminal::quiet_if_hung_up();
                    let _ = tx.send(Event::Terminate);
                }
                reader.lock().ended = true;
                reader.changed.notify_all();
            })?;
        Ok(Input {
            gate,
            wake: wake_tx,
        })
    }

    /// The loop applied the last input event: the reader may read the next one.
    pub fn applied(&self) {
        self.gate.lock().in_flight = false;
        self.gate.changed.notify_all();
    }

    /// Stops reading; returns once the reader is parked (or gone), so the terminal can be
    /// handed to someone else. Idempotent.
    pub fn pause(&self) {
        let mut s = self.gate.lock();
        s.paused = true;
        self.gate.changed.notify_all();
        // Out of a blocking poll on the terminal (the pipe is non-blocking: a full pipe
        // already holds a wake-up).
        let _ = nix::unistd::write(&self.wake, &[1]);
        while !s.parked && !s.ended {
            s = self
                .gate
                .changed
                .wait(s)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Reads again after `pause`.
    pub fn resume(&self) {
        let mut s = self.gate.lock();
        s.paused = false;
        self.gate.changed.notify_all();
    }
}

/// Why the reader ended.
#[derive(PartialEq, Eq)]
enum Ended {
    /// The terminal: the end of input, or it could not be polled or read.
    Terminal,
    /// The loop that took the events is gone.
    Loop,
}

fn read_loop(gate: &Gate, wake: &OwnedFd, tx: &Sender<Event>) -> Ended {
    let stdin = io::stdin();
    loop {
        {
            let mut s = gate.lock();
            while s.paused || s.in_flight {
                if s.paused && !s.parked {
                    s.parked = true;
                    gate.changed.notify_all();
                }
                s = gate.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            s.parked = false;
        }
        let mut fds = [
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return Ended::Terminal,
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        if ready(&fds[1]) {
            let mut drain = [0u8; 64];
            while nix::unistd::read(wake, &mut drain).is_ok_and(|n| n > 0) {}
            continue; // look at the gate again
        }
        if !ready(&fds[0]) {
            continue;
        }
        let mut bytes = Bytes { fd: &stdin };
        // Else the end of input, or a dead terminal.
        let Ok(Some(first)) = bytes.next(None) else {
            return Ended::Terminal;
        };
        let Ok(event) = decode(first, &mut bytes) else {
            return Ended::Terminal;
        };
        if let Some(event) = event {
            gate.lock().in_flight = true;
            if tx.send(Event::Input(event)).is_err() {
                return Ended::Loop;
            }
        }
    }
}

/// Where `decode` takes its bytes from.
trait ByteSource {
    /// The next byte; with a timeout (ms), `None` if none came in time. Without one, `None`
    /// is the end of input.
    fn next(&mut self, timeout: Option<u16>) -> io::Result<Option<u8>>;

    /// The next byte of a sequence already started.
    fn more(&mut self) -> io::Result<Option<u8>> {
        self.next(Some(SEQUENCE_GAP))
    }
}

/// Bytes from the terminal, one `read` of one byte at a time (never more than an event needs).
struct Bytes<'a> {
    fd: &'a io::Stdin,
}

impl ByteSource for Bytes<'_> {
    fn next(&mut self, timeout: Option<u16>) -> io::Result<Option<u8>> {
        if let Some(ms) = timeout {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            loop {
                match poll(&mut fds, PollTimeout::from(ms)) {
                    Ok(0) => return Ok(None),
                    Ok(_) => break,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let mut b = [0u8; 1];
        loop {
            match nix::unistd::read(self.fd, &mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(b[0])),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[expect(
    clippy::unnecessary_wraps,
    reason = "the decoders answer Option (a sequence may mean nothing); a key always is one"
)]
fn key(code: KeyCode, modifiers: KeyModifiers) -> Option<TermEvent> {
    Some(TermEvent::Key(KeyEvent::new(code, modifiers)))
}

/// One event from its first byte and as many more as it takes; `None` for something that is
/// not a key or a click we know (it is dropped).
fn decode(first: u8, bytes: &mut impl ByteSource) -> io::Result<Option<TermEvent>> {
    if first != 0x1b {
        return plain(first, bytes, KeyModifiers::NONE);
    }
    match bytes.more()? {
        None | Some(0x1b) => Ok(key(KeyCode::Esc, KeyModifiers::NONE)),
        Some(b'[') => csi(bytes),
        Some(b'O') => Ok(match bytes.more()? {
            Some(b) => cursor_key(b, KeyModifiers::NONE),
            None => key(KeyCode::Char('O'), KeyModifiers::ALT),
        }),
        Some(b) => plain(b, bytes, KeyModifiers::ALT),
    }
}

/// A byte that is not ESC: a control key, ASCII, or the start of a UTF-8 character.
fn plain(b: u8, bytes: &mut impl ByteSource, mods: KeyModifiers) -> io::Result<Option<TermEvent>> {
    let ctrl = mods | KeyModifiers::CONTROL;
    Ok(match b {
        b'\r' | b'\n' => key(KeyCode::Enter, mods),
        b'\t' => key(KeyCode::Tab, mods),
        0x7f | 0x08 => key(KeyCode::Backspace, mods),
        0 => key(KeyCode::Char(' '), ctrl),
        1..=0x1a => key(KeyCode::Char(char::from(b'a' + b - 1)), ctrl),
        0x1c..=0x1f => key(KeyCode::Char(char::from(b'4' + b - 0x1c)), ctrl),
        b'A'..=b'Z' => key(KeyCode::Char(char::from(b)), mods | KeyModifiers::SHIFT),
        0x20..=0x7e => key(KeyCode::Char(char::from(b)), mods),
        _ => {
            let len = match b {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => return Ok(None),
            };
            let mut buf = vec![b];
            for _ in 1..len {
                match bytes.more()? {
                    Some(c) => buf.push(c),
                    None => return Ok(None),
                }
            }
            std::str::from_utf8(&buf)
                .ok()
                .and_then(|s| s.chars().next())
                .and_then(|c| key(KeyCode::Char(c), mods))
        }
    })
}

/// `ESC [ A` style cursor keys (and `ESC O A`).
fn cursor_key(b: u8, mods: KeyModifiers) -> Option<TermEvent> {
    let code = match b {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        b'P' => KeyCode::F(1),
        b'Q' => KeyCode::F(2),
        b'R' => KeyCode::F(3),
        b'S' => KeyCode::F(4),
        b'Z' => return key(KeyCode::BackTab, mods | KeyModifiers::SHIFT),
        _ => return None,
    };
    key(code, mods)
}

/// xterm's modifier parameter (`1;5A`: 5 = 1 + ctrl).
fn modifiers(param: Option<u16>) -> KeyModifiers {
    let bits = param.unwrap_or(1).saturating_sub(1);
    let mut m = KeyModifiers::NONE;
    if bits & 1 != 0 {
        m |= KeyModifiers::SHIFT;
    }
    if bits & 2 != 0 {
        m |= KeyModifiers::ALT;
    }
    if bits & 4 != 0 {
        m |= KeyModifiers::CONTROL;
    }
    m
}

/// After `ESC [`: parameters up to a final byte.
fn csi(bytes: &mut impl ByteSource) -> io::Result<Option<TermEvent>> {
    let mut body = Vec::new();
    let end = loop {
        let Some(b) = bytes.more()? else {
            return Ok(None);
        };
        if body.is_empty() && b == b'M' {
            // X10 mouse: three raw bytes follow.
            let mut raw = [0u8; 3];
            for r in &mut raw {
                let Some(c) = bytes.more()? else {
                    return Ok(None);
                };
                *r = c;
            }
            let [cb, cx, cy] = raw.map(|c| u16::from(c.saturating_sub(32)));
            return Ok(mouse(cb, cx, cy, true));
        }
        if (0x40..=0x7e).contains(&b) {
            break b;
        }
        body.push(b);
        if body.len() > MAX_SEQUENCE {
            return Ok(None);
        }
    };
    let sgr = body.first() == Some(&b'<');
    let text = String::from_utf8_lossy(if sgr { &body[1..] } else { &body });
    let params: Vec<Option<u16>> = text.split(';').map(|p| p.parse().ok()).collect();
    let param = |i: usize| params.get(i).copied().flatten();
    Ok(match end {
        b'M' | b'm' if params.len() == 3 => {
            let (cb, cx, cy) = (param(0).unwrap_or(0), param(1), param(2));
            // urxvt (1015) sends the button plus 32, as X10 does; SGR (1006) does not.
            let cb = if sgr { cb } else { cb.saturating_sub(32) };
            mouse(cb, cx.unwrap_or(1), cy.unwrap_or(1), end == b'M')
        }
        b'~' => {
            let code = match param(0) {
                Some(1 | 7) => KeyCode::Home,
                Some(4 | 8) => KeyCode::End,
                Some(2) => KeyCode::Insert,
                Some(3) => KeyCode::Delete,
                Some(5) => KeyCode::PageUp,
                Some(6) => KeyCode::PageDown,
                _ => return Ok(None),
            };
            key(code, modifiers(param(1)))
        }
        _ if sgr => None,
        b => cursor_key(b, modifiers(param(1))),
    })
}

/// A mouse report (button code, 1-based column and row).
#[expect(
    clippy::unnecessary_wraps,
    reason = "the decoders answer Option (a sequence may mean nothing); a report always is one"
)]
fn mouse(cb: u16, cx: u16, cy: u16, press: bool) -> Option<TermEvent> {
    let mut mods = KeyModifiers::NONE;
    if cb & 4 != 0 {
        mods |= KeyModifiers::SHIFT;
    }
    if cb & 8 != 0 {
        mods |= KeyModifiers::ALT;
    }
    if cb & 16 != 0 {
        mods |= KeyModifiers::CONTROL;
    }
    let button = match cb & 3 {
        0 => Some(MouseButton::Left),
        1 => Some(MouseButton::Middle),
        2 => Some(MouseButton::Right),
        _ => None, // an X10 release, which does not say which
    };
    let kind = if cb & 64 != 0 {
        match cb & 3 {
            0 => MouseEventKind::ScrollUp,
            1 => MouseEventKind::ScrollDown,
            2 => MouseEventKind::ScrollLeft,
            _ => MouseEventKind::ScrollRight,
        }
    } else if cb & 32 != 0 {
        button.map_or(MouseEventKind::Moved, MouseEventKind::Drag)
    } else {
        match (button, press) {
            (Some(b), true) => MouseEventKind::Down(b),
            (Some(b), false) => MouseEventKind::Up(b),
            (None, _) => MouseEventKind::Up(MouseButton::Left),
        }
    };
    Some(TermEvent::Mouse(MouseEvent {
        kind,
        column: cx.saturating_sub(1),
        row: cy.saturating_sub(1),
        modifiers: mods,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ByteSource for std::collections::VecDeque<u8> {
        fn next(&mut self, _timeout: Option<u16>) -> io::Result<Option<u8>> {
            Ok(self.pop_front())
        }
    }

    /// Every event in `input`, decoded one after the other.
    fn events(input: &[u8]) -> Vec<Option<TermEvent>> {
        let mut q: std::collections::VecDeque<u8> = input.iter().copied().collect();
        let mut out = Vec::new();
        while let Some(first) = q.pop_front() {
            out.push(decode(first, &mut q).expect("in memory"));
        }
        out
    }

    fn k(code: KeyCode, m: KeyModifiers) -> Option<TermEvent> {
        key(code, m)
    }

    #[test]
    fn keys_decode_as_crossterm_reports_them() {
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        assert_eq!(
            events(b"q\x03\x1a\r\x7fC"),
            vec![
                k(KeyCode::Char('q'), none),
                k(KeyCode::Char('c'), ctrl),
                k(KeyCode::Char('z'), ctrl),
                k(KeyCode::Enter, none),
                k(KeyCode::Backspace, none),
                k(KeyCode::Char('C'), KeyModifiers::SHIFT),
            ]
        );
        assert_eq!(
            events(b"\x1b[A\x1bOB\x1b[5~\x1b[1;5D\x1b[H\x1b[4~\x1b"),
            vec![
                k(KeyCode::Up, none),
                k(KeyCode::Down, none),
                k(KeyCode::PageUp, none),
                k(KeyCode::Left, ctrl),
                k(KeyCode::Home, none),
                k(KeyCode::End, none),
                k(KeyCode::Esc, none),
            ]
        );
        assert_eq!(events("é".as_bytes()), vec![k(KeyCode::Char('é'), none)]);
    }

    #[test]
    fn mouse_reports_decode_in_sgr_and_x10_forms() {
        let at = |kind, column, row| {
            Some(TermEvent::Mouse(MouseEvent {
                kind,
                column,
                row,
                modifiers: KeyModifiers::NONE,
            }))
        };
        assert_eq!(
            events(b"\x1b[<0;5;3M\x1b[<0;5;3m\x1b[<65;1;1M\x1b[M`!!"),
            vec![
                at(MouseEventKind::Down(MouseButton::Left), 4, 2),
                at(MouseEventKind::Up(MouseButton::Left), 4, 2),
                at(MouseEventKind::ScrollDown, 0, 0),
                at(MouseEventKind::ScrollUp, 0, 0),
            ]
        );
    }

    #[test]
    fn a_key_reads_no_byte_past_itself() {
        // `b` then typed-ahead text: the text stays for the shell `b` starts.
        let mut q: std::collections::VecDeque<u8> = b"becho hi\r".iter().copied().collect();
        let first = q.pop_front().expect("a byte");
        assert_eq!(
            decode(first, &mut q).expect("in memory"),
            k(KeyCode::Char('b'), KeyModifiers::NONE)
        );
        assert_eq!(q.iter().copied().collect::<Vec<u8>>(), b"echo hi\r");
    }
}
