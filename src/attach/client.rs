//! The attached client's side: connect, say hello, map the first image, and hand back an
//! `Engine` whose worker is this client's thread: it swaps each new image into the tree,
//! keeps the progress and the freshness as the owner says, passes on the owner's messages,
//! and sends the commands (a reconcile, the changes a delete made) to the owner.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::frame::{FrameReader, send_frame};
use super::wire::{ToClient, ToOwner, VERSION, Welcome};
use super::{path_of, peer_uid, socket_path};
use crate::cache::{Origin, Saved};
use crate::engine::{Engine, EngineCmd, EngineMsg, Freshness};
use crate::fs::RootDir;
use crate::scan::Progress;
use crate::tree::{self, Arena, Tree};

/// How long the owner has to welcome us and send its first image.
const WELCOME_WITHIN: Duration = Duration::from_secs(10);

/// An engine attached to the owner of `root` (canonical), if one of this user listens in
/// `dir` and serves it; `None` otherwise (the caller opens the root itself).
#[must_use]
pub fn attach(dir: &Path, root: &Path, msgs: &Sender<EngineMsg>) -> Option<Engine> {
    let stream = UnixStream::connect(socket_path(dir, root)).ok()?;
    // Only our own user's owner: a socket someone else made is not listened to.
    if peer_uid(&stream).ok()? != nix::unistd::geteuid().as_raw() {
        return None;
    }
    let (welcome, tree, reader) = handshake(&stream, root).ok()??;
    let root_dir = Arc::new(RootDir::open(&path_of(welcome.root.clone())).ok()?);
    let tree = Arc::new(RwLock::new(tree));
    let progress = Arc::new(Progress::new());
    let freshness = Arc::new(AtomicU8::new(Freshness::Stale as u8));
    let (cmd_tx, cmd_rx) = bounded::<EngineCmd>(16);
    let worker = {
        let follow = Follow {
            stream,
            tree: Arc::clone(&tree),
            progress: Arc::clone(&progress),
            freshness: Arc::clone(&freshness),
            msgs: msgs.clone(),
            pid: welcome.pid,
        };
        std::thread::Builder::new()
            .name("dtui-attached".into())
            .spawn(move || follow.run(reader, &cmd_rx))
            .ok()?
    };
    Some(Engine::attached(
        tree,
        root_dir,
        progress,
        Origin::Attached {
            pid: welcome.pid,
            origin: welcome.origin.clone(),
        },
        welcome.warnings.clone(),
        welcome.watching.clone(),
        welcome.history.clone(),
        freshness,
        cmd_tx,
        worker,
    ))
}

/// Hello, welcome and the first image; `Ok(None)` when the owner refuses us.
fn handshake(stream: &UnixStream, root: &Path) -> io::Result<Option<(Welcome, Tree, FrameReader)>> {
    use std::os::unix::ffi::OsStrExt;
    stream.set_read_timeout(Some(WELCOME_WITHIN))?;
    let hello = ToOwner::Hello {
        version: VERSION,
        path: root.as_os_str().as_bytes().to_vec(),
    };
    send_frame(stream.as_raw_fd(), &hello.encode(), None)?;
    let mut reader = FrameReader::new(stream.as_raw_fd());
    let ToClient::Welcome(welcome) = next(&mut reader)? else {
        return Ok(None);
    };
    let ToClient::Image = next(&mut reader)? else {
        return Ok(None);
    };
    let tree = map_image(reader.take_fd())?;
    stream.set_read_timeout(None)?;
    Ok(Some((welcome, tree, reader)))
}

/// The next frame, decoded; the end of the stream is an error here.
fn next(reader: &mut FrameReader) -> io::Result<ToClient> {
    let body = reader
        .next_frame()?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the owner went away"))?;
    ToClient::decode(&body)
}

/// An image's tree: the descriptor must be a sealed memory file (no one can change it under
/// the map), laid out as a save is, and it is validated as a cache file is.
fn map_image(fd: Option<OwnedFd>) -> io::Result<Tree> {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    let fd =
        fd.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "an image without its file"))?;
    let seals = fcntl(&fd, FcntlArg::F_GET_SEALS).map_err(io::Error::from)?;
    let need = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_WRITE;
    if !SealFlag::from_bits_truncate(seals).contains(need) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "an image not sealed",
        ));
    }
    let file = File::from(fd);
    let arena =
        Arena::from_file(&file, Path::new("(the owner's tree)")).map_err(io::Error::other)?;
    Tree::from_arena(arena).map_err(io::Error::other)
}

/// The attached client's thread.
struct Follow {
    stream: UnixStream,
    tree: Arc<RwLock<Tree>>,
    progress: Arc<Progress>,
    freshness: Arc<AtomicU8>,
    msgs: Sender<EngineMsg>,
    pid: u32,
}

impl Follow {
    fn run(self, mut reader: FrameReader, cmds: &Receiver<EngineCmd>) {
        // The owner's frames, read on a thread of their own (a blocking read), images mapped
        // there too (validation reads the whole image): this thread only swaps them in.
        let (frames_tx, frames) = unbounded::<io::Result<(ToClient, Option<Tree>)>>();
        let reading = std::thread::Builder::new()
            .name("dtui-attached-in".into())
            .spawn(move || {
                loop {
                    let frame = match reader.next_frame() {
                        Ok(Some(body)) => ToClient::decode(&body).and_then(|m| match m {
                            ToClient::Image => map_image(reader.take_fd()).map(|t| (m, Some(t))),
                            m => Ok((m, None)),
                        }),
                        Ok(None) => {
                            Err(io::Error::new(io::ErrorKind::UnexpectedEof, "it went away"))
                        }
                        Err(e) => Err(e),
                    };
                    let end = frame.is_err();
                    if frames_tx.send(frame).is_err() || end {
                        return;
                    }
                }
            });
        if reading.is_err() {
            self.detach("cannot start a thread");
            return;
        }
        let fd = self.stream.as_raw_fd();
        loop {
            crossbeam_channel::select! {
                recv(frames) -> f => match f {
                    Ok(Ok((_, Some(new)))) => {
                        let old = std::mem::replace(&mut *tree::write(&self.tree), new);
                        drop(old);
                    }
                    Ok(Ok((ToClient::Msg(m), None))) => {
                        let _ = self.msgs.send(m);
                    }
                    Ok(Ok((ToClient::Status(f, p), None))) => {
                        self.freshness.store(f as u8, Ordering::Relaxed);
                        self.progress.set(&p);
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        self.detach(&e.to_string());
                        return;
                    }
                    Err(_) => {
                        self.detach("");
                        return;
                    }
                },
                recv(cmds) -> c => {
                    let sent = match c {
                        Ok(EngineCmd::Reconcile { dir, full }) => {
                            send_frame(fd, &ToOwner::Reconcile { dir, full }.encode(), None)
                        }
                        Ok(EngineCmd::User(changes)) => {
                            send_frame(fd, &ToOwner::User(changes).encode(), None)
                        }
                        Ok(EngineCmd::Shown) => Ok(()),
                        Ok(EngineCmd::Shutdown(done)) => {
                            let _ = self.stream.shutdown(std::net::Shutdown::Both);
                            let _ = done.send(Saved::NoCache);
                            return;
                        }
                        Err(_) => {
                            let _ = self.stream.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                    };
                    if let Err(e) = sent {
                        self.detach(&e.to_string());
                        return;
                    }
                }
            }
        }
    }

    /// The owner is gone: the tree is no longer live, and the browser is told.
    fn detach(&self, why: &str) {
        self.freshness
            .store(Freshness::Stale as u8, Ordering::Relaxed);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let _ = self
            .msgs
            .send(EngineMsg::Detached(format!("dtui {} ({why})", self.pid)));
    }
}
