//! The attached client's side: connect, say hello, map the first image, and hand back an
//! `Engine` whose worker is this client's thread: it swaps each new image into the tree,
//! keeps the progress and the freshness as the owner says, passes on the owner's messages,
//! and sends the commands (a reconcile, the changes a delete made) to the owner.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
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
use crate::path::display_path;
use crate::scan::{Progress, ProgressSnapshot};
use crate::tree::{self, Arena, NodeId, NodeRef, Tree};

/// How long the owner has to welcome us and send its first image.
const WELCOME_WITHIN: Duration = Duration::from_secs(10);

/// How long a preview's image waits for the first frame before it is validated anyway.
const SHOWN_WITHIN: Duration = Duration::from_secs(1);

/// An owner's image passed its preview and then failed the whole check: this process attaches
/// without a preview from then on (else each takeover would attach again to the same owner,
/// preview, fail and detach, without end).
static PREVIEW_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What an attempt to attach came to.
pub enum Attach {
    /// Attached: an engine whose tree is the owner's.
    To(Box<Engine>),
    /// No owner could be attached to now: none listens (none runs, or one is starting: it
    /// listens once its cache is open), or the attempt failed on the way (an owner that went
    /// away meanwhile, an image that failed its check): the caller may try again.
    NoOwner,
    /// The owner refused this process (why: another version of dtui): the caller runs on its
    /// own at once, since waiting would not change it.
    Refused(String),
}

impl Attach {
    /// The engine, if attached.
    #[must_use]
    pub fn engine(self) -> Option<Engine> {
        match self {
            Attach::To(e) => Some(*e),
            Attach::NoOwner | Attach::Refused(_) => None,
        }
    }
}

/// An engine attached to the owner of `root` (canonical) or of a directory above it, if one
/// of this user listens in `dir` and serves it (else the caller opens the root itself).
/// Below the owner's root, the replica is `root`'s subtree (`View`). What `how` attaches
/// needs first: see `As`.
#[must_use]
pub fn attach(dir: &Path, root: &Path, msgs: &Sender<EngineMsg>, how: As) -> Attach {
    // The nearest owner: of the root itself, else of the closest directory above it.
    let Some(stream) = root
        .ancestors()
        .find_map(|at| UnixStream::connect(socket_path(dir, at)).ok())
    else {
        return Attach::NoOwner;
    };
    match attach_to(stream, root, msgs, how) {
        Ok(engine) => Attach::To(Box::new(engine)),
        Err(Failure::Refused(why)) => Attach::Refused(why),
        Err(Failure::Other) => Attach::NoOwner,
    }
}

/// `attach` once connected.
fn attach_to(
    stream: UnixStream,
    root: &Path,
    msgs: &Sender<EngineMsg>,
    how: As,
) -> Result<Engine, Failure> {
    let text = Failure::from;
    // Only our own user's owner: a socket someone else made is not listened to.
    if peer_uid(&stream).map_err(text)? != nix::unistd::geteuid().as_raw() {
        return Err(Failure::Other);
    }
    let (welcome, first, (state, mut counts), reader) =
        handshake(&stream, root, how == As::Browser).map_err(text)?;
    // A query's tree is ready once the owner has applied what its watch had seen by now.
    let sync = (how == As::Query).then(sync_token);
    if let Some(token) = sync {
        send_frame(stream.as_raw_fd(), &ToOwner::Sync(token).encode(), None).map_err(text)?;
    }
    let (tree, ids, pending) = match first {
        First::Replica((tree, ids)) => (tree, ids, None),
        First::Preview(tree, image) => (tree, None, Some(image)),
    };
    let root_dir = Arc::new(RootDir::open(root).map_err(|_| Failure::Other)?);
    let tree = Arc::new(RwLock::new(tree));
    // The owner's state from the first frame on (not "stale" until a tick says otherwise).
    let progress = Arc::new(Progress::new());
    if ids.is_some() {
        counts.current = NodeId::NONE;
    }
    progress.set(&counts);
    let freshness = Arc::new(AtomicU8::new(state as u8));
    let (cmd_tx, cmd_rx) = bounded::<EngineCmd>(16);
    // Said (or dropped) once the validated image replaces a preview; `go` ends when the
    // first frame is on screen (`EngineCmd::Shown`): on two cores, a check of the whole
    // image on every core would slow the drawing of the preview.
    let (ready_tx, ready) = bounded::<()>(1);
    let (go_tx, go) = bounded::<()>(0);
    let (ready_tx, ready, go_tx, pending) = match pending {
        Some(image) => (Some(ready_tx), Some(ready), Some(go_tx), Some((image, go))),
        None => (None, None, None, None),
    };
    let worker = {
        let follow = Follow {
            stream,
            tree: Arc::clone(&tree),
            progress: Arc::clone(&progress),
            freshness: Arc::clone(&freshness),
            msgs: msgs.clone(),
            pid: welcome.pid,
            view: View::of(root, &path_of(welcome.root.clone())),
            ids,
            ready: ready_tx,
            go: go_tx,
            sync,
            held_ready: false,
        };
        std::thread::Builder::new()
            .name("dtui-attached".into())
            .spawn(move || follow.run(reader, pending, &cmd_rx))
            .map_err(text)?
    };
    Ok(Engine::attached(
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
        ready,
    ))
}

/// Why `attach_to` did not attach.
enum Failure {
    /// The owner said no (why).
    Refused(String),
    Other,
}

impl From<io::Error> for Failure {
    /// A refusal travels as a `ConnectionRefused` error (`unexpected`); anything else is
    /// another failure.
    fn from(e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::ConnectionRefused {
            Failure::Refused(e.to_string())
        } else {
            Failure::Other
        }
    }
}

/// A frame that is not the one the handshake expects next (a refusal says why).
fn unexpected(m: &ToClient) -> io::Error {
    match m {
        ToClient::Refused(why) => io::Error::new(io::ErrorKind::ConnectionRefused, why.clone()),
        _ => io::Error::new(io::ErrorKind::InvalidData, "an unexpected attach frame"),
    }
}

/// What the attaching process is, for what it needs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// A browser, which draws its first frame before `Engine::shown`: the tree is at first
    /// the root's listing only (`Tree::preview`), and the owner's image, validated on the
    /// client's thread once that frame is on screen, replaces it before `shown` returns.
    Browser,
    /// A query (`scan`, `export`, `changes`, `reconcile`, `delete`): the owner applies what
    /// its watch has seen up to now (`ToOwner::Sync`) before the tree is ready
    /// (`EngineMsg::Ready` waits for it), so the answer includes what was written before.
    Query,
    /// Anything else (a `dtui watch` that attached): the owner's tree as it comes.
    Follower,
}

/// A token for one `Sync`, this process's own.
fn sync_token() -> u64 {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    (u64::from(std::process::id()) << 32) | NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What the first image gives: the replica, or a preview of it and the image to validate.
enum First {
    Replica(Replica),
    Preview(Tree, Arena),
}

/// The owner's state and counts as the owner said them.
type OwnerStatus = (Freshness, ProgressSnapshot);

/// Hello, welcome, the first image and the owner's status sent with it; an error when the
/// owner refuses us (saying why) or sends anything else.
fn handshake(
    stream: &UnixStream,
    root: &Path,
    preview: bool,
) -> io::Result<(Welcome, First, OwnerStatus, FrameReader)> {
    use std::os::unix::ffi::OsStrExt;
    stream.set_read_timeout(Some(WELCOME_WITHIN))?;
    let hello = ToOwner::Hello {
        version: VERSION,
        path: root.as_os_str().as_bytes().to_vec(),
    };
    send_frame(stream.as_raw_fd(), &hello.encode(), None)?;
    let mut reader = FrameReader::new(stream.as_raw_fd());
    let welcome = match next(&mut reader)? {
        ToClient::Welcome(w) => w,
        m => return Err(unexpected(&m)),
    };
    match next(&mut reader)? {
        ToClient::Image => {}
        m => return Err(unexpected(&m)),
    }
    let view = View::of(root, &path_of(welcome.root.clone()));
    // Below the owner's root the replica is a renumbered copy of the subtree, which needs the
    // image validated first: no preview there.
    let first = match view {
        View::Whole if preview && !PREVIEW_FAILED.load(Ordering::Relaxed) => {
            let image = map_arena(reader.take_fd())?;
            match Tree::preview(&image) {
                Ok(tree) => First::Preview(tree, image),
                // Not worth it (a root listing more entries than a preview takes) or not
                // well formed: checked whole first, as without a preview.
                Err(_) => {
                    First::Replica((Tree::from_arena(image).map_err(io::Error::other)?, None))
                }
            }
        }
        _ => First::Replica(replica(reader.take_fd(), &view)?),
    };
    let (state, counts) = match next(&mut reader)? {
        ToClient::Status(state, counts) => (state, counts),
        m => return Err(unexpected(&m)),
    };
    stream.set_read_timeout(None)?;
    Ok((welcome, first, (state, counts), reader))
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
    Tree::from_arena(map_arena(fd)?).map_err(io::Error::other)
}

/// An image's arena, its header checked: the descriptor must be a sealed memory file (no
/// one can change it under the map), laid out as a save is.
fn map_arena(fd: Option<OwnedFd>) -> io::Result<Arena> {
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
    Arena::from_file(&file, Path::new("(the owner's tree)")).map_err(io::Error::other)
}

/// Where the replica sits in the owner's tree.
#[derive(Clone)]
enum View {
    /// The owner's whole tree: ids and paths as the owner's.
    Whole,
    /// The subtree of a directory below the owner's root (`rel` from it), renumbered.
    Below { path: PathBuf, rel: Vec<u8> },
}

impl View {
    fn of(root: &Path, owner_root: &Path) -> View {
        match root.strip_prefix(owner_root) {
            Ok(rel) if !rel.as_os_str().is_empty() => View::Below {
                path: root.to_path_buf(),
                rel: rel.as_os_str().as_bytes().to_vec(),
            },
            _ => View::Whole,
        }
    }
}

/// A subtree replica's ids against the owner's: the owner's node (and its slot's
/// generation) to ours, and ours (by id) to the owner's.
struct Ids {
    local: HashMap<u32, (u8, NodeRef)>,
    owner: Vec<NodeRef>,
}

/// A replica and, below the owner's root, its ids.
type Replica = (Tree, Option<Ids>);

/// An image's replica as `view` sees it.
fn replica(fd: Option<OwnedFd>, view: &View) -> io::Result<Replica> {
    let whole = map_image(fd)?;
    let View::Below { path, .. } = view else {
        return Ok((whole, None));
    };
    let gone = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is gone", display_path(path)),
        )
    };
    let at = whole
        .lookup(path)
        .filter(|&id| whole.dir_rec(id).is_some())
        .ok_or_else(gone)?;
    let (tree, old) =
        crate::cache::subtree_mapped(&whole, at, path, whole.generation()).ok_or_else(gone)?;
    let mut local = HashMap::with_capacity(old.len());
    let mut owner = Vec::with_capacity(old.len());
    for (new, &o) in old.iter().enumerate() {
        let theirs = whole.node_ref(o);
        let ours = tree.node_ref(NodeId(new as u32));
        local.insert(o.0, (theirs.generation, ours));
        owner.push(theirs);
    }
    Ok((tree, Some(Ids { local, owner })))
}

impl Ids {
    /// Our handle of the owner's node, if it is in our subtree.
    fn ours(&self, r: NodeRef) -> Option<NodeRef> {
        self.local
            .get(&r.id.0)
            .and_then(|&(generation, ours)| (generation == r.generation).then_some(ours))
    }

    /// The owner's handle of our node.
    fn theirs(&self, id: NodeId) -> Option<NodeRef> {
        self.owner.get(id.0 as usize).copied()
    }
}

/// A path relative to the owner's root, relative to ours (`rel` below it), if it is in our
/// subtree.
fn below(path: &[u8], rel: &[u8]) -> Option<Vec<u8>> {
    if path == rel {
        return Some(Vec::new());
    }
    path.strip_prefix(rel)
        .and_then(|rest| rest.strip_prefix(b"/"))
        .map(<[u8]>::to_vec)
}

/// The attached client's thread.
struct Follow {
    stream: UnixStream,
    tree: Arc<RwLock<Tree>>,
    progress: Arc<Progress>,
    freshness: Arc<AtomicU8>,
    msgs: Sender<EngineMsg>,
    pid: u32,
    view: View,
    /// Below the owner's root: the current replica's ids.
    ids: Option<Ids>,
    /// While the tree is a preview: told once the validated image replaces it (dropped, if
    /// the image does not pass: `Engine::shown` waits for either).
    ready: Option<Sender<()>>,
    /// While the tree is a preview: dropped when the first frame is on screen, and the image
    /// is validated then.
    go: Option<Sender<()>>,
    /// The `Sync` asked for and not yet answered (a query's).
    sync: Option<u64>,
    /// `Ready` came before the answer: said with it.
    held_ready: bool,
}

/// The first image, when only its preview is in, and the channel that ends once the preview
/// is on screen.
type Pending = (Arena, Receiver<()>);

/// The thread that reads the owner's frames and maps its images (the first image's, if only
/// its preview is in, validated before anything else once the preview is on screen).
fn read_frames(
    mut reader: FrameReader,
    pending: Option<Pending>,
    view: View,
    frames: Sender<io::Result<(ToClient, Option<Replica>)>>,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dtui-attached-in".into())
        .spawn(move || {
            if let Some((image, go)) = pending {
                let _ = go.recv_timeout(SHOWN_WITHIN);
                let first = Tree::from_arena(image)
                    .map(|t| (ToClient::Image, Some((t, None))))
                    .map_err(io::Error::other);
                let end = first.is_err();
                if end {
                    PREVIEW_FAILED.store(true, Ordering::Relaxed);
                }
                if frames.send(first).is_err() || end {
                    return;
                }
            }
            loop {
                let frame = match reader.next_frame() {
                    Ok(Some(body)) => ToClient::decode(&body).and_then(|m| match m {
                        ToClient::Image => replica(reader.take_fd(), &view).map(|r| (m, Some(r))),
                        m => Ok((m, None)),
                    }),
                    Ok(None) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "")),
                    Err(e) => Err(e),
                };
                let end = frame.is_err();
                if frames.send(frame).is_err() || end {
                    return;
                }
            }
        })
}

impl Follow {
    fn run(mut self, reader: FrameReader, pending: Option<Pending>, cmds: &Receiver<EngineCmd>) {
        // The owner's frames, read on a thread of their own (a blocking read), images mapped
        // there too (validation reads the whole image): this thread only swaps them in.
        let (frames_tx, frames) = unbounded::<io::Result<(ToClient, Option<Replica>)>>();
        let reading = read_frames(reader, pending, self.view.clone(), frames_tx);
        if reading.is_err() {
            self.detach("cannot start a thread");
            return;
        }
        let fd = self.stream.as_raw_fd();
        loop {
            crossbeam_channel::select! {
                recv(frames) -> f => match f {
                    Ok(Ok((_, Some((new, ids))))) => {
                        let old = std::mem::replace(&mut *tree::write(&self.tree), new);
                        self.ids = ids;
                        drop(old);
                        if let Some(ready) = self.ready.take() {
                            let _ = ready.send(());
                        }
                    }
                    Ok(Ok((ToClient::Msg(m), None))) => match m {
                        EngineMsg::Synced(token) => {
                            if self.sync == Some(token) {
                                self.sync = None;
                                if std::mem::take(&mut self.held_ready) {
                                    let _ = self.msgs.send(EngineMsg::Ready);
                                }
                            }
                        }
                        EngineMsg::Ready if self.sync.is_some() => self.held_ready = true,
                        m => {
                            let _ = self.msgs.send(self.ours(m));
                        }
                    },
                    Ok(Ok((ToClient::Status(f, mut p), None))) => {
                        if let Some(ids) = &self.ids {
                            // The directory being read, if it is one of ours.
                            p.current = ids
                                .local
                                .get(&p.current.0)
                                .map_or(NodeId::NONE, |&(_, ours)| ours.id);
                        }
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
                            // Below the owner's root, "everything" is our subtree.
                            let dir = match &self.ids {
                                Some(ids) => {
                                    let root = tree::read(&self.tree).root();
                                    ids.theirs(dir.map_or(root, |d| d.id))
                                }
                                None => dir,
                            };
                            send_frame(fd, &ToOwner::Reconcile { dir, full }.encode(), None)
                        }
                        Ok(EngineCmd::User(changes)) => {
                            send_frame(fd, &ToOwner::User(changes).encode(), None)
                        }
                        Ok(EngineCmd::Shown) => {
                            self.go = None;
                            Ok(())
                        }
                        Ok(EngineCmd::Sync(token)) => {
                            send_frame(fd, &ToOwner::Sync(token).encode(), None)
                        }
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

    /// The owner's message in our terms: below its root, the touched entries that are ours
    /// (by our ids) and the change lines below our root (relative to it).
    fn ours(&self, m: EngineMsg) -> EngineMsg {
        let (Some(ids), View::Below { rel, .. }) = (&self.ids, &self.view) else {
            return m;
        };
        match m {
            EngineMsg::Applied(mut d) => {
                d.touched = d.touched.iter().filter_map(|&r| ids.ours(r)).collect();
                d.lines = d
                    .lines
                    .into_iter()
                    .filter_map(|mut l| {
                        l.path = below(&l.path, rel)?;
                        l.to = l.to.and_then(|to| below(&to, rel));
                        Some(l)
                    })
                    .collect();
                EngineMsg::Applied(d)
            }
            m => m,
        }
    }

    /// The owner is gone (`why`, if it is not simply gone): the tree is no longer live, and
    /// the browser is told.
    fn detach(&self, why: &str) {
        self.freshness
            .store(Freshness::Stale as u8, Ordering::Relaxed);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let owner = if why.is_empty() {
            format!("dtui {}", self.pid)
        } else {
            format!("dtui {} ({why})", self.pid)
        };
        let _ = self.msgs.send(EngineMsg::Detached(owner));
    }
}
