//! The owner's side: a socket that attached clients connect to, and one publisher thread that
//! gives each new client an image of the tree, then sends every client the same frames (an
//! image after each batch that changed the tree, the batch's message, the status).
//!
//! Threads: `accept` (checks the peer and the hello, then hands the client to the
//! publisher), `publisher` (the only one that takes images: one per batch whatever the number
//! of clients), and per client a writer (its queue to its socket: a slow client stalls only
//! itself, and one that falls `MAX_QUEUED` frames behind is cut off) and a reader (its
//! commands to the engine).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::frame::{FrameReader, send_frame};
use super::wire::{ToClient, ToOwner, VERSION, Welcome};
use super::{Election, peer_uid, socket_path};
use crate::engine::{EngineMsg, Freshness, Served};
use crate::tree::{self, Tree};

/// How often the status goes out while the owner works, and otherwise.
const STATUS_BUSY: Duration = Duration::from_millis(100);
const STATUS_IDLE: Duration = Duration::from_millis(250);
/// While a pass runs (no batch says what changed), images go out at most this often.
const IMAGE_WHILE_BUSY: Duration = Duration::from_secs(1);
/// A client this many frames behind is cut off (it can attach again).
const MAX_QUEUED: usize = 1024;
/// A client with this many images queued and not yet sent is cut off: each holds a copy of
/// the tree (a browser stopped with Ctrl-Z reads nothing; it attaches again when it goes on).
const MAX_IMAGES_QUEUED: usize = 3;
/// A hello is a version and a path: no more than this.
const MAX_HELLO: usize = 64 * 1024;
/// Clients at once (checked, welcomed or waiting for their hello), past which a connection is
/// closed at once: each holds a thread or two.
const MAX_CLIENTS: usize = 64;
/// How long a client has to say hello.
const HELLO_WITHIN: Duration = Duration::from_secs(5);
/// How often the accept loop looks at its stop flag.
const ACCEPT_POLL_MS: u16 = 200;

/// One frame for a client's writer: a body and maybe the image's descriptor.
type Frame = (Vec<u8>, Option<Arc<OwnedFd>>);

/// A client as the publisher holds it: its writer's queue (bounded), how many images wait in
/// it, and its stream, to cut it off (a writer blocked in a send wakes only then).
struct Client {
    queue: Sender<Frame>,
    images: Arc<AtomicUsize>,
    stream: UnixStream,
}

impl Client {
    /// Queues a frame; `false` (and the client cut off) if it is too far behind.
    fn send(&self, frame: Frame) -> bool {
        let image = frame.1.is_some();
        if image && self.images.fetch_add(1, Ordering::SeqCst) >= MAX_IMAGES_QUEUED {
            return self.cut_off();
        }
        if self.queue.try_send(frame).is_err() {
            return self.cut_off();
        }
        true
    }

    fn cut_off(&self) -> bool {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        false
    }
}

/// A running attach server; stopping it (drop) closes every client's stream (they take over
/// the root) and removes the socket.
pub struct Server {
    stop: Arc<AtomicBool>,
    socket: PathBuf,
    threads: Vec<JoinHandle<()>>,
    _election: Election,
}

impl Server {
    /// Listens for clients of `served`'s root in `dir` (the runtime directory), as the owner
    /// `election` made this process.
    pub fn start(dir: &Path, election: Election, served: Served) -> io::Result<Server> {
        let socket = socket_path(dir, &served.root);
        // The election is ours: a socket there is a dead owner's.
        match std::fs::remove_file(&socket) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(&socket)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (join_tx, join_rx) = unbounded::<Client>();
        let welcome = Welcome {
            root: served.root.as_os_str().as_bytes().to_vec(),
            origin: served.origin.clone(),
            watching: served.watching.clone(),
            warnings: served.warnings.clone(),
            pid: std::process::id(),
            history: served.history.clone(),
        };
        let served = Arc::new(served);
        let publisher = {
            let served = Arc::clone(&served);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("dtui-attach-pub".into())
                .spawn(move || publish(&served, &join_rx, &stop))?
        };
        let acceptor = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("dtui-attach".into())
                .spawn(move || accept(&listener, &welcome, &served, &join_tx, &stop))?
        };
        Ok(Server {
            stop,
            socket,
            threads: vec![publisher, acceptor],
            _election: election,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.socket);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Accepts clients until stopped: each one checked (same user, same protocol, this root)
/// on a thread of its own, so a silent client holds up no other.
fn accept(
    listener: &UnixListener,
    welcome: &Welcome,
    served: &Arc<Served>,
    join: &Sender<Client>,
    stop: &AtomicBool,
) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let me = nix::unistd::geteuid().as_raw();
    let clients = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(listener),
            PollFlags::POLLIN,
        )];
        if poll(&mut fds, PollTimeout::from(ACCEPT_POLL_MS)).unwrap_or(0) == 0 {
            continue;
        }
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let (welcome, served, join) = (welcome.clone(), Arc::clone(served), join.clone());
        let count = Arc::clone(&clients);
        let spawned = std::thread::Builder::new()
            .name("dtui-attach-client".into())
            .spawn(move || {
                let _ = client(&stream, me, &welcome, &served, &join);
                count.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            clients.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// One client, from its hello to its end: checked, welcomed, handed to the publisher (which
/// sends its first image), and its commands passed to the engine until it goes.
fn client(
    stream: &UnixStream,
    me: u32,
    welcome: &Welcome,
    served: &Served,
    join: &Sender<Client>,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    let fd = stream.as_raw_fd();
    let refuse = |why: &str| send_frame(fd, &ToClient::Refused(why.into()).encode(), None);
    // Another user's process is never told anything, not even why.
    if peer_uid(stream)? != me {
        return Ok(());
    }
    // A hello is small and comes at once: within `HELLO_WITHIN` in all, however it trickles.
    let mut reader = FrameReader::new(fd);
    reader.set_limit(MAX_HELLO);
    reader.set_deadline(Some(Instant::now() + HELLO_WITHIN));
    let Some(body) = reader.next_frame()? else {
        return Ok(());
    };
    reader.set_limit(usize::MAX);
    reader.set_deadline(None);
    match ToOwner::decode(&body) {
        Ok(ToOwner::Hello { version, path }) if version == VERSION => {
            // The root, or a directory below it (the client keeps that subtree).
            let (root, path) = (super::path_of(welcome.root.clone()), super::path_of(path));
            if !crate::path::is_within(&root, &path) {
                return refuse("this owner serves another root");
            }
        }
        Ok(ToOwner::Hello { .. }) => return refuse("another version of dtui"),
        _ => return Ok(()),
    }
    stream.set_read_timeout(None)?;
    send_frame(fd, &ToClient::Welcome(welcome.clone()).encode(), None)?;
    let (tx, rx) = bounded::<Frame>(MAX_QUEUED);
    let images = Arc::new(AtomicUsize::new(0));
    let writer = {
        let stream = stream.try_clone()?;
        let images = Arc::clone(&images);
        std::thread::Builder::new()
            .name("dtui-attach-out".into())
            .spawn(move || write_frames(&stream, &rx, &images))?
    };
    let queued = Client {
        queue: tx,
        images,
        stream: stream.try_clone()?,
    };
    if join.send(queued).is_err() {
        return Ok(());
    }
    // Commands until the client goes (or its writer gave up on it and shut the stream).
    while let Ok(Some(body)) = reader.next_frame() {
        match ToOwner::decode(&body) {
            Ok(ToOwner::Reconcile { dir, full }) => served.commands.reconcile(dir, full),
            Ok(ToOwner::User(changes)) => served.commands.send(changes),
            Ok(ToOwner::Sync(token)) => served.commands.sync(token),
            _ => break,
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    Ok(())
}

/// A client's writer: its frames to its socket, until either ends.
fn write_frames(stream: &UnixStream, rx: &Receiver<Frame>, images: &AtomicUsize) {
    let fd = stream.as_raw_fd();
    for (body, image) in rx {
        let sent = send_frame(fd, &body, image.as_deref().map(AsRawFd::as_raw_fd));
        if image.is_some() {
            images.fetch_sub(1, Ordering::SeqCst);
        }
        if sent.is_err() {
            break;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Does this message follow a change of the tree (so an image goes before it)?
fn changes_tree(m: &EngineMsg) -> bool {
    matches!(
        m,
        EngineMsg::Applied(_)
            | EngineMsg::Ready
            | EngineMsg::ScanDone(_)
            | EngineMsg::CatchUpDone(_)
            | EngineMsg::Reconciled(_)
    )
}

/// The publisher: every frame every client gets, in one order.
fn publish(served: &Served, joins: &Receiver<Client>, stop: &AtomicBool) {
    let msgs = served.taps.add();
    let mut clients: Vec<Client> = Vec::new();
    // The last image and whether the tree changed since.
    let mut latest: Option<Arc<OwnedFd>> = None;
    let mut stale = true;
    let mut last_image = Instant::now();
    let mut last_status = Instant::now();
    // What a client that attaches late must hear: how the watch started, and that the
    // first pass is over (the messages that said so went before it came).
    let mut watching = served.watching.clone().map(EngineMsg::Watching);
    let mut ready = false;
    let send_all = |clients: &mut Vec<Client>, frame: &Frame| {
        clients.retain(|c| c.send(frame.clone()));
    };
    while !stop.load(Ordering::SeqCst) {
        let busy = matches!(
            (served.freshness)(),
            Freshness::Scanning | Freshness::Verifying
        );
        let every = if busy { STATUS_BUSY } else { STATUS_IDLE };
        let wait = every.saturating_sub(last_status.elapsed());
        crossbeam_channel::select! {
            recv(msgs) -> m => {
                let Ok(first) = m else { break };
                let batch: Vec<EngineMsg> =
                    std::iter::once(first).chain(msgs.try_iter()).collect();
                if batch.iter().any(changes_tree) {
                    stale = true;
                    if !clients.is_empty() {
                        if let Some(img) = fresh_image(&served.tree) {
                            send_all(&mut clients, &(ToClient::Image.encode(), Some(Arc::clone(&img))));
                            latest = Some(img);
                            stale = false;
                            last_image = Instant::now();
                        }
                    }
                }
                for m in &batch {
                    match m {
                        EngineMsg::Watching(_) => watching = Some(m.clone()),
                        EngineMsg::Ready => ready = true,
                        _ => {}
                    }
                    send_all(&mut clients, &(ToClient::Msg(m.clone()).encode(), None));
                }
            }
            recv(joins) -> j => {
                let Ok(client) = j else { break };
                if stale || busy || latest.is_none() {
                    latest = fresh_image(&served.tree);
                    stale = false;
                    last_image = Instant::now();
                }
                if let Some(img) = &latest
                    && client.send((ToClient::Image.encode(), Some(Arc::clone(img))))
                {
                    let freshness = (served.freshness)();
                    let status = ToClient::Status(freshness, served.progress.snapshot());
                    let _ = client.send((status.encode(), None));
                    if let Some(w) = &watching {
                        let _ = client.send((ToClient::Msg(w.clone()).encode(), None));
                    }
                    if ready || matches!(freshness, Freshness::Live | Freshness::Fresh) {
                        let _ = client.send((ToClient::Msg(EngineMsg::Ready).encode(), None));
                    }
                    clients.push(client);
                }
            }
            default(wait) => {}
        }
        if last_status.elapsed() >= every {
            last_status = Instant::now();
            if clients.is_empty() {
                continue;
            }
            // A pass changes the tree without a message per change: its growth goes out
            // as an image now and then.
            if busy && last_image.elapsed() >= IMAGE_WHILE_BUSY {
                if let Some(img) = fresh_image(&served.tree) {
                    send_all(
                        &mut clients,
                        &(ToClient::Image.encode(), Some(Arc::clone(&img))),
                    );
                    latest = Some(img);
                }
                last_image = Instant::now();
                stale = true;
            }
            let status = ToClient::Status((served.freshness)(), served.progress.snapshot());
            send_all(&mut clients, &(status.encode(), None));
        }
    }
}

/// The tree's arena as a save lays it out, in a sealed memory file (no one can change or
/// shrink it under a client's map); `None` if it cannot be made (no memory): clients keep
/// their last image and get the next one.
fn fresh_image(tree: &RwLock<Tree>) -> Option<Arc<OwnedFd>> {
    image(tree).ok().map(Arc::new)
}

fn image(tree: &RwLock<Tree>) -> io::Result<OwnedFd> {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let fd = memfd_create(
        c"dtui-tree",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(io::Error::from)?;
    let file = File::from(fd);
    tree::read(tree).arena().write_image(&file)?;
    fcntl(
        &file,
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_SHRINK
                | SealFlag::F_SEAL_GROW
                | SealFlag::F_SEAL_WRITE
                | SealFlag::F_SEAL_SEAL,
        ),
    )
    .map_err(io::Error::from)?;
    Ok(OwnedFd::from(file))
}
