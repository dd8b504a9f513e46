//! Frames on the attach socket: a `u32` body length (little-endian), then the body, and at
//! most one file descriptor passed beside it. An image frame carries the sealed memory file
//! of the tree's arena as `SCM_RIGHTS` with its first bytes; the reader keeps every
//! descriptor it receives in order and hands the oldest to the frame that expects one.
//! Bodies are bounded (`MAX_FRAME`): a peer that announces more is cut off, not believed.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// The largest body either side reads (a batch's change lines are capped well below it).
pub const MAX_FRAME: usize = 64 << 20;
/// The most descriptors a reader holds that no frame has taken yet. An honest peer sends one
/// with each image frame, and the reader takes it as that frame is decoded (a `recvmsg`
/// returns the descriptors of one `sendmsg` at most, so at most one or two wait); a peer that
/// sends them with frames that take none (an owner takes none) is cut off here rather than
/// filling the process's descriptor table.
pub const MAX_HELD_FDS: usize = 8;

/// Writes one frame (and `fd` beside it), whole; never raises `SIGPIPE` (a client gone is an
/// error here, not a signal).
pub fn send_frame(sock: RawFd, body: &[u8], fd: Option<RawFd>) -> io::Result<()> {
    let len = (body.len() as u32).to_le_bytes();
    let mut bufs: Vec<u8> = Vec::with_capacity(4 + body.len());
    bufs.extend_from_slice(&len);
    bufs.extend_from_slice(body);
    let mut sent = 0;
    let fds;
    let cmsg: &[ControlMessage<'_>] = match fd {
        Some(f) => {
            fds = [f];
            &[ControlMessage::ScmRights(&fds)]
        }
        None => &[],
    };
    // The descriptor goes with the first bytes; the rest follows without it.
    let mut first = true;
    while sent < bufs.len() {
        let iov = [IoSlice::new(&bufs[sent..])];
        let n = sendmsg::<()>(
            sock,
            &iov,
            if first { cmsg } else { &[] },
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(io::Error::from)?;
        first = false;
        sent += n;
    }
    Ok(())
}

/// Reads frames from a stream socket, keeping the descriptors that come with them.
pub struct FrameReader {
    sock: RawFd,
    buf: Vec<u8>,
    fds: VecDeque<OwnedFd>,
    /// The largest body taken (`MAX_FRAME` unless set lower).
    limit: usize,
    /// When every read must be over by (`set_deadline`).
    deadline: Option<std::time::Instant>,
}

impl FrameReader {
    #[must_use]
    pub fn new(sock: RawFd) -> FrameReader {
        FrameReader {
            sock,
            buf: Vec::new(),
            fds: VecDeque::new(),
            limit: MAX_FRAME,
            deadline: None,
        }
    }

    /// The largest body this reader takes from now on (a hello is small).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(MAX_FRAME);
    }

    /// Every read from now on ends by `deadline` (`None`: no deadline): a peer that sends a
    /// byte now and then holds the reader no longer than that, whatever each read's timeout.
    pub fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        self.deadline = deadline;
    }

    /// Reads more bytes (and any descriptors) into the buffer; `Ok(false)` at the end.
    fn fill(&mut self) -> io::Result<bool> {
        if let Some(end) = self.deadline {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer is too slow",
                ));
            }
            let tv = nix::sys::time::TimeVal::new(
                left.as_secs() as nix::libc::time_t,
                nix::libc::suseconds_t::from(left.subsec_micros().max(1)),
            );
            // SAFETY: the socket stays open while its reader reads it (the reader's owner
            // holds it), and the borrow ends with this statement.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.sock) };
            nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
                .map_err(io::Error::from)?;
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let (n, got) = {
            let mut iov = [IoSliceMut::new(&mut chunk)];
            let msg = loop {
                match recvmsg::<()>(
                    self.sock,
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Err(nix::errno::Errno::EINTR) => {}
                    other => break other.map_err(io::Error::from)?,
                }
            };
            let mut got = Vec::new();
            for c in msg.cmsgs().map_err(io::Error::from)? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    got.extend(fds);
                }
            }
            (msg.bytes, got)
        };
        let overflow = self.fds.len() + got.len() > MAX_HELD_FDS;
        for fd in got {
            // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            if !overflow {
                self.fds.push_back(fd);
            }
        }
        if overflow {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "descriptors sent with attach frames that take none",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next frame's body, or `None` at a clean end of the stream.
    pub fn next_frame(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize;
                if len > self.limit {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "an attach frame larger than allowed",
                    ));
                }
                if self.buf.len() >= 4 + len {
                    let body = self.buf[4..4 + len].to_vec();
                    self.buf.drain(..4 + len);
                    return Ok(Some(body));
                }
            }
            if !self.fill()? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the attach stream ended inside a frame",
                    ))
                };
            }
        }
    }

    /// The oldest descriptor received and not yet taken (an image frame's).
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }
}

impl AsRawFd for FrameReader {
    fn as_raw_fd(&self) -> RawFd {
        self.sock
    }
}
