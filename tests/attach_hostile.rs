//! Attach under attack: what a client of the same user can send an owner (malformed frames,
//! descriptors, a hello of megabytes, a socket it stops reading), what a forged owner can
//! send a client (images that are not sealed memory files, or corrupt), runtime directories
//! and sockets of another user, and the takeover when two clients lose their owner at once.
//! Each test has a runtime directory of its own (`XDG_RUNTIME_DIR`); every wait has a deadline.

mod common;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::attach::{Place, place, stop, until_line, without_origin};
use crossbeam_channel::Receiver;
use disktracker::attach::As;
use disktracker::attach::frame::{FrameReader, send_frame};
use disktracker::attach::wire::{ToClient, ToOwner, VERSION, Welcome};
use disktracker::engine::{EngineMsg, Freshness, UserChange, UserChangeKind};
use disktracker::tree::{self, NodeId, NodeRef};

impl Place {
    /// The socket an owner of the root listens on.
    fn socket(&self) -> PathBuf {
        disktracker::attach::socket_path(&self.dir(), &self.root)
    }

    /// `dtui scan` of the root without its lines about where the tree came from and how
    /// long it took, and whether it was attached.
    fn scan_attached(&self, extra: &[&str]) -> (String, bool) {
        let text = self.scan_raw(&self.root, &self.cache, extra);
        (without_origin(&text), text.contains("attached"))
    }

    /// Waits until an attached scan equals a fresh one.
    fn owner_equals_a_fresh_scan(&self) {
        let (fresh, _) = self.scan_attached(&["--no-cache"]);
        common::poll_until(Duration::from_secs(20), "the owner to equal a scan", || {
            let (out, attached) = self.scan_attached(&[]);
            (attached && out == fresh).then_some(())
        });
    }
}

fn alive(child: &mut Child) -> bool {
    child.try_wait().expect("try_wait").is_none()
}

/// A client speaking the protocol by hand.
struct Raw {
    sock: UnixStream,
}

impl Raw {
    fn connect(p: &Place) -> Raw {
        Raw {
            sock: UnixStream::connect(p.socket()).expect("connect to the owner"),
        }
    }

    /// Connected, with a proper hello sent.
    fn hello(p: &Place) -> Raw {
        let c = Raw::connect(p);
        c.send(&ToOwner::Hello {
            version: VERSION,
            path: p.root.as_os_str().as_encoded_bytes().to_vec(),
        })
        .expect("hello");
        c
    }

    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn send(&self, m: &ToOwner) -> std::io::Result<()> {
        send_frame(self.fd(), &m.encode(), None)
    }

    /// The owner's frames, read on a thread of its own (an image's descriptor is taken and
    /// closed); the channel ends with the stream.
    fn follow(&self) -> Receiver<ToClient> {
        let sock = self.sock.try_clone().expect("dup");
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            let mut r = FrameReader::new(sock.as_raw_fd());
            while let Ok(Some(body)) = r.next_frame() {
                let Ok(m) = ToClient::decode(&body) else {
                    break;
                };
                if matches!(m, ToClient::Image) {
                    drop(r.take_fd());
                }
                if tx.send(m).is_err() {
                    break;
                }
            }
            drop(sock);
        });
        rx
    }
}

/// The first frame that `want` accepts (20 s at most); `None` if the stream ended first.
fn wait_frame(
    frames: &Receiver<ToClient>,
    what: &str,
    want: impl Fn(&ToClient) -> bool,
) -> Option<ToClient> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match frames.recv_timeout(left) {
            Ok(m) if want(&m) => return Some(m),
            Ok(_) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return None,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                panic!("timed out waiting for {what}")
            }
        }
    }
}

/// How many of a process's open descriptors `matches` (by what /proc says they are).
fn fds_of(pid: u32, matches: impl Fn(&str) -> bool) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the owner's fds")
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|l| matches(&l.to_string_lossy()))
        .count()
}

/// The owner's tree images it holds open.
fn images_held(pid: u32) -> usize {
    fds_of(pid, |l| l.contains("memfd:dtui-tree"))
}

#[test]
fn a_client_that_stops_reading_does_not_make_its_owner_keep_an_image_per_batch() {
    let p = place();
    let dir = p.root.join("many");
    fs::create_dir(&dir).expect("mkdir");
    let (owner, _lines, _) = p.watch(&p.cache);
    let pid = owner.id();
    // A client that says hello and then reads nothing, as a browser stopped with ^Z.
    let stuck = Raw::hello(&p);
    // And one that reads, to know when each batch went out (and that it is not held up).
    let good = Raw::hello(&p);
    let frames = good.follow();
    wait_frame(&frames, "the first image", |m| matches!(m, ToClient::Image)).expect("an image");
    // Long names make each batch's message tens of kilobytes, so the stuck client's socket
    // fills after a few batches; every batch after that is queued for it.
    let long = "n".repeat(200);
    for round in 0..30 {
        for i in 0..200 {
            common::write(&dir.join(format!("{long}-{round}-{i}")), 10);
        }
        let last = format!("-{round}-199");
        wait_frame(&frames, "the round's batch", |m| {
            matches!(m, ToClient::Msg(EngineMsg::Applied(d))
                if d.lines.iter().any(|l| l.path.ends_with(last.as_bytes())))
        })
        .expect("the batch reached the client that reads");
    }
    let held = images_held(pid);
    drop(stuck);
    stop(owner);
    assert!(
        held <= 4,
        "the owner holds {held} images of its tree for a client that stopped reading"
    );
}

#[test]
fn descriptors_a_client_sends_with_its_frames_are_not_kept_by_the_owner() {
    let p = place();
    let (mut owner, _lines, _) = p.watch(&p.cache);
    let pid = owner.id();
    let marker = p.runtime.join("marker");
    File::create(&marker).expect("marker");
    let file = File::open(&marker).expect("open marker");
    let c = Raw::hello(&p);
    let frames = c.follow();
    wait_frame(&frames, "the first image", |m| matches!(m, ToClient::Image)).expect("an image");
    // Frames the owner takes and ignores (no changes), each with a descriptor beside it.
    let empty = ToOwner::User(Vec::new()).encode();
    for _ in 0..300 {
        if send_frame(c.fd(), &empty, Some(file.as_raw_fd())).is_err() {
            break;
        }
    }
    // Answered (Failed) once the owner has read everything before it; or the owner has cut
    // this client off.
    let bogus = ToOwner::Reconcile {
        dir: Some(NodeRef {
            id: NodeId(u32::MAX - 1),
            generation: 0,
        }),
        full: false,
    };
    let _ = c.send(&bogus);
    let _ = wait_frame(&frames, "the owner to read it all", |m| {
        matches!(m, ToClient::Msg(EngineMsg::Failed(_)))
    });
    let want = marker.to_string_lossy().into_owned();
    let held = fds_of(pid, |l| l == want);
    assert!(
        held <= 8,
        "the owner keeps {held} descriptors a client sent it"
    );
    assert!(alive(&mut owner), "the owner died");
    stop(owner);
}

#[test]
fn an_owner_reads_no_hello_of_megabytes() {
    let p = place();
    let (owner, _lines, _) = p.watch(&p.cache);
    let c = Raw::connect(&p);
    c.sock
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let hello = ToOwner::Hello {
        version: VERSION,
        path: vec![b'x'; 8 << 20],
    };
    let sent = c.send(&hello);
    stop(owner);
    assert!(
        sent.is_err(),
        "the owner read a hello of 8 MiB before cutting the client off"
    );
}

#[test]
fn a_reconcile_of_a_file_fails_and_leaves_the_owner_live() {
    let p = place();
    let (owner, _lines, _) = p.watch(&p.cache);
    let (tx, _rx) = crossbeam_channel::unbounded();
    let engine = disktracker::attach::attach(&p.dir(), &p.root, &tx, As::Follower)
        .engine()
        .expect("attached");
    // A second client, to see the owner's status frames in order with its messages.
    let watcher = Raw::hello(&p);
    let frames = watcher.follow();
    wait_frame(&frames, "the owner live", |m| {
        matches!(m, ToClient::Status(Freshness::Live, _))
    })
    .expect("live");
    let file = {
        let t = tree::read(&engine.tree);
        let b = t
            .children(t.root())
            .find(|&c| t.name(c) == b"b")
            .expect("b/");
        let two = t.children(b).find(|&c| t.name(c) == b"two").expect("two");
        t.node_ref(two)
    };
    engine.reconcile(Some(file), false);
    let answer = wait_frame(&frames, "the answer", |m| {
        matches!(
            m,
            ToClient::Msg(EngineMsg::Failed(_) | EngineMsg::Reconciled(_))
        )
    });
    assert!(
        matches!(answer, Some(ToClient::Msg(EngineMsg::Failed(_)))),
        "{answer:?}"
    );
    // Every status from here on is computed after the failure: the tree was not touched,
    // so the owner is live again within a few of them.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Some(ToClient::Status(f, _)) =
            wait_frame(&frames, "a status", |m| matches!(m, ToClient::Status(..)))
        {
            seen.push(f);
        }
    }
    drop(engine);
    stop(owner);
    assert_eq!(
        seen.last(),
        Some(&Freshness::Live),
        "the owner's states after a failed reconcile of a file: {seen:?}"
    );
}

/// Changes naming places outside the root, `..`, the root itself, a name with a NUL; and
/// reconciles of nodes that are not there.
fn send_odd_commands(p: &Place, c: &Raw) {
    let odd = [
        PathBuf::from("/etc/passwd"),
        PathBuf::from("relative"),
        p.root.join(".."),
        p.root.join("a/../../x"),
        p.root.join("./b"),
        p.root.clone(),
        p.root.join("b/two\0x"),
        p.root.parent().expect("parent").to_path_buf(),
    ];
    for kind in [
        UserChangeKind::Created,
        UserChangeKind::Removed,
        UserChangeKind::Verify,
    ] {
        let changes = odd
            .iter()
            .map(|path| UserChange {
                kind: kind.clone(),
                path: path.clone(),
                bytes: Some(u64::MAX),
            })
            .collect();
        c.send(&ToOwner::User(changes)).expect("changes");
    }
    for id in [0, 1, u32::MAX] {
        for generation in [0, 255] {
            for full in [false, true] {
                c.send(&ToOwner::Reconcile {
                    dir: Some(NodeRef {
                        id: NodeId(id),
                        generation,
                    }),
                    full,
                })
                .expect("reconcile");
            }
        }
    }
}

#[test]
fn malformed_frames_and_vanishing_clients_leave_the_owner_serving_the_same_tree() {
    let p = place();
    let (mut owner, _lines, _) = p.watch(&p.cache);
    let root = p.root.as_os_str().as_encoded_bytes().to_vec();
    // Connections that end before or inside their hello.
    drop(Raw::connect(&p));
    let c = Raw::connect(&p);
    (&c.sock).write_all(&[7, 0]).expect("write");
    drop(c);
    let c = Raw::connect(&p);
    (&c.sock).write_all(&u32::MAX.to_le_bytes()).expect("write");
    let mut rest = Vec::new();
    c.sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = (&c.sock).read_to_end(&mut rest);
    assert!(rest.is_empty(), "a 4 GiB frame was answered");
    let c = Raw::connect(&p);
    (&c.sock).write_all(&100u32.to_le_bytes()).expect("write");
    (&c.sock).write_all(&[0; 10]).expect("write");
    drop(c);
    // Hellos of another version and another root are refused, and say why.
    for hello in [
        ToOwner::Hello {
            version: VERSION + 1,
            path: root.clone(),
        },
        ToOwner::Hello {
            version: VERSION,
            path: b"/elsewhere".to_vec(),
        },
    ] {
        let c = Raw::connect(&p);
        c.send(&hello).expect("hello");
        let frames = c.follow();
        let first = wait_frame(&frames, "the refusal", |_| true);
        assert!(matches!(first, Some(ToClient::Refused(_))), "{first:?}");
    }
    // A first frame that is not a hello, a body with trailing bytes, a frame of another tag.
    for body in [
        ToOwner::Reconcile {
            dir: None,
            full: true,
        }
        .encode(),
        {
            let mut b = ToOwner::Hello {
                version: VERSION,
                path: root.clone(),
            }
            .encode();
            b.push(0);
            b
        },
        vec![9, 9, 9],
        Vec::new(),
    ] {
        let c = Raw::connect(&p);
        send_frame(c.fd(), &body, None).expect("frame");
        let frames = c.follow();
        assert!(
            wait_frame(&frames, "the end", |_| true).is_none(),
            "a bad first frame was answered"
        );
    }
    // After a proper hello: changes naming places outside the root, `..`, the root itself, a
    // name with a NUL, reconciles of nodes that are not there; then garbage.
    let c = Raw::hello(&p);
    let frames = c.follow();
    wait_frame(&frames, "the first image", |m| matches!(m, ToClient::Image)).expect("image");
    send_odd_commands(&p, &c);
    send_frame(c.fd(), &[2, 255, 255, 255, 255], None).expect("a count past the body");
    assert!(
        wait_frame(&frames, "the end", |_| false).is_none(),
        "the owner kept a client that sent garbage"
    );
    // Many silent connections at once do not keep a client from attaching.
    let silent: Vec<Raw> = (0..64).map(|_| Raw::connect(&p)).collect();
    p.owner_equals_a_fresh_scan();
    drop(silent);
    assert!(alive(&mut owner), "the owner died");
    // Nothing named `..` or outside the root came into the tree.
    let (out, _) = p.scan_attached(&[]);
    assert!(!out.contains("passwd") && !out.contains(".."), "{out}");
    stop(owner);
}

/// A sealed memory file holding `bytes` (as an owner makes one), or unsealed.
fn memfd(bytes: &[u8], sealed: bool) -> OwnedFd {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let fd = memfd_create(
        c"forged",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .expect("memfd");
    let mut f = File::from(fd);
    f.write_all(bytes).expect("write");
    if sealed {
        fcntl(
            &f,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK
                    | SealFlag::F_SEAL_GROW
                    | SealFlag::F_SEAL_WRITE
                    | SealFlag::F_SEAL_SEAL,
            ),
        )
        .expect("seal");
    }
    OwnedFd::from(f)
}

/// What a forged owner sends after the welcome.
enum Forged {
    /// Frames, each with maybe a descriptor.
    Frames(Vec<(Vec<u8>, Option<OwnedFd>)>),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

/// A forged owner of `p`'s root: accepts one client, reads its hello, welcomes it and sends
/// `then`; keeps the stream open until `hold` ends.
fn forged_owner(p: &Place, then: Forged, hold: Receiver<()>) -> std::thread::JoinHandle<()> {
    let _ = fs::remove_file(p.socket());
    let listener = UnixListener::bind(p.socket()).expect("bind");
    let root = p.root.as_os_str().as_encoded_bytes().to_vec();
    std::thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        let mut r = FrameReader::new(sock.as_raw_fd());
        let _hello = r.next_frame();
        let welcome = ToClient::Welcome(Welcome {
            root,
            origin: "forged".into(),
            watching: None,
            warnings: Vec::new(),
            pid: 1,
            history: None,
        });
        let _ = send_frame(sock.as_raw_fd(), &welcome.encode(), None);
        match then {
            Forged::Frames(frames) => {
                for (body, fd) in frames {
                    let _ =
                        send_frame(sock.as_raw_fd(), &body, fd.as_ref().map(AsRawFd::as_raw_fd));
                }
            }
            Forged::Bytes(b) => {
                let _ = (&sock).write_all(&b);
            }
        }
        let _ = hold.recv_timeout(Duration::from_secs(30));
    })
}

/// A real owner's image of `p`'s root, as bytes.
fn real_image(p: &Place) -> Vec<u8> {
    let (owner, _lines, _) = p.watch(&p.cache);
    let c = Raw::hello(p);
    let mut r = FrameReader::new(c.fd());
    let bytes = loop {
        let body = r.next_frame().expect("a frame").expect("not the end");
        if let Ok(ToClient::Image) = ToClient::decode(&body) {
            let mut f = File::from(r.take_fd().expect("the image's file"));
            // The owner wrote it through this same open file: its offset is at the end.
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).expect("seek");
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).expect("read the image");
            break bytes;
        }
    };
    drop(c);
    stop(owner);
    bytes
}

/// An image frame's body.
fn img() -> Vec<u8> {
    ToClient::Image.encode()
}

/// The status the handshake reads after the image: each forged case sends one, so that only
/// the image's checks can refuse it.
fn status() -> (Vec<u8>, Option<OwnedFd>) {
    (
        ToClient::Status(
            Freshness::Live,
            disktracker::scan::ProgressSnapshot::default(),
        )
        .encode(),
        None,
    )
}

/// A node's field changed in a real image (the root's, just past the 4 KiB header). (A name
/// changed in the heap is a tree valid in form: structure is what a client checks, not the
/// body's checksum; an owner of the same user is trusted with the content.)
fn node_changed(image: &[u8]) -> Vec<u8> {
    let mut node = image.to_vec();
    node[4096 + 2] ^= 0x40;
    node
}

/// What a forged owner may send instead of a real image, each named.
fn forged_cases(image: &[u8]) -> Vec<(&'static str, Forged)> {
    let mid = image.len() / 2;
    let mut header = image.to_vec();
    header[8] ^= 1;
    let regular = File::open(std::env::current_exe().expect("exe")).expect("open");
    vec![
        (
            "an image without its file",
            Forged::Frames(vec![(img(), None), status()]),
        ),
        (
            "a regular file",
            Forged::Frames(vec![(img(), Some(OwnedFd::from(regular))), status()]),
        ),
        (
            "an unsealed memory file holding a real image",
            Forged::Frames(vec![(img(), Some(memfd(image, false))), status()]),
        ),
        (
            "an empty sealed memory file",
            Forged::Frames(vec![(img(), Some(memfd(&[], true))), status()]),
        ),
        (
            "garbage",
            Forged::Frames(vec![
                (img(), Some(memfd(&[0xa5; 64 * 1024], true))),
                status(),
            ]),
        ),
        (
            "a real image cut in half",
            Forged::Frames(vec![(img(), Some(memfd(&image[..mid], true))), status()]),
        ),
        (
            "a real image with a node changed",
            Forged::Frames(vec![
                (img(), Some(memfd(&node_changed(image), true))),
                status(),
            ]),
        ),
        (
            "a real image with its header changed",
            Forged::Frames(vec![(img(), Some(memfd(&header, true))), status()]),
        ),
        (
            "a status before the image",
            Forged::Frames(vec![(ToClient::Refused("no".into()).encode(), None)]),
        ),
        (
            "a frame of 4 GiB",
            Forged::Bytes(u32::MAX.to_le_bytes().to_vec()),
        ),
        ("the end of the stream", Forged::Bytes(Vec::new())),
    ]
}

#[test]
fn a_client_refuses_images_that_are_not_sealed_memory_files_or_not_valid_arenas() {
    let p = place();
    let image = real_image(&p);
    assert!(image.len() > 4096, "an image of {} bytes", image.len());
    fs::create_dir_all(p.dir()).expect("mkdir");
    fs::set_permissions(p.dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    let node = node_changed(&image);
    // A browser's attach (a preview of the root first) refuses them as early.
    for how in [As::Follower, As::Browser] {
        for (what, forged) in forged_cases(&image) {
            let (hold_tx, hold_rx) = crossbeam_channel::bounded(0);
            let owner = forged_owner(&p, forged, hold_rx);
            let (tx, _rx) = crossbeam_channel::unbounded();
            let attached = disktracker::attach::attach(&p.dir(), &p.root, &tx, how).engine();
            assert!(attached.is_none(), "attached to {what} (as {how:?})");
            drop(hold_tx);
            owner.join().expect("the forged owner");
        }
    }
    // The same real image, sealed, is taken (so the refusals above are the checks').
    let (hold_tx, hold_rx) = crossbeam_channel::bounded(0);
    let owner = forged_owner(
        &p,
        Forged::Frames(vec![
            (img(), Some(memfd(&image, true))),
            status(),
            // A corrupt image later ends the attachment (told, not a panic).
            (img(), Some(memfd(&node, true))),
        ]),
        hold_rx,
    );
    let (tx, rx) = crossbeam_channel::unbounded();
    let attached = disktracker::attach::attach(&p.dir(), &p.root, &tx, As::Follower)
        .engine()
        .expect("attached");
    let total = {
        let t = tree::read(&attached.tree);
        t.totals(t.root()).disk
    };
    assert!(total >= 400_000, "a replica of {total} bytes");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match rx.recv_deadline(deadline) {
            Ok(EngineMsg::Detached(_)) => break,
            Ok(_) => {}
            Err(e) => panic!("no detach after a corrupt image: {e}"),
        }
    }
    drop(attached);
    drop(hold_tx);
    owner.join().expect("the forged owner");
}

/// A little-endian `u32` of an image at `at`.
fn u32_at(image: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(image[at..at + 4].try_into().expect("4 bytes"))
}

/// A real image whose root and root listing are intact and one node deeper down points its
/// parent out of range: what only the whole check finds.
fn deep_node_changed(image: &[u8]) -> Vec<u8> {
    use disktracker::tree::arena::{HEADER_BYTES, Header};
    let node = std::mem::size_of::<disktracker::tree::Node>();
    let h = std::mem::offset_of!(Header, node_count);
    let (count, root) = (
        u32_at(image, h),
        u32_at(image, std::mem::offset_of!(Header, root)),
    );
    let deep = (0..count as usize)
        .find(|&i| {
            let parent = u32_at(image, HEADER_BYTES + i * node);
            parent != root && parent != u32::MAX && image[HEADER_BYTES + i * node + 14] & 0x40 == 0
        })
        .expect("a node below a child of the root");
    let mut out = image.to_vec();
    out[HEADER_BYTES + deep * node..][..4].copy_from_slice(&(count + 5).to_le_bytes());
    out
}

#[test]
fn a_browser_shown_a_preview_of_a_corrupt_image_detaches_and_never_sees_the_rest() {
    let p = place();
    let image = real_image(&p);
    fs::create_dir_all(p.dir()).expect("mkdir");
    fs::set_permissions(p.dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    let attach = |forged: Vec<u8>| {
        let (hold_tx, hold_rx) = crossbeam_channel::bounded(0);
        let owner = forged_owner(
            &p,
            Forged::Frames(vec![(img(), Some(memfd(&forged, true))), status()]),
            hold_rx,
        );
        let (tx, rx) = crossbeam_channel::unbounded();
        let engine = disktracker::attach::attach(&p.dir(), &p.root, &tx, As::Browser)
            .engine()
            .expect("attached with a preview");
        (engine, rx, hold_tx, owner)
    };
    // `shown` on a thread of its own: a client that never said would hang the test.
    let shown = |engine: disktracker::engine::Engine| {
        let (done_tx, done) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            engine.shown();
            let _ = done_tx.send(engine);
        });
        done.recv_timeout(Duration::from_secs(20))
            .expect("shown returns")
    };
    let listing = |t: &tree::Tree| -> Vec<(Vec<u8>, u64)> {
        let mut v: Vec<_> = t
            .children(t.root())
            .map(|c| (t.name(c).to_vec(), t.totals(c).disk))
            .collect();
        v.sort();
        v
    };

    // The real image: the preview's listing, then the whole tree once shown.
    let (engine, _rx, hold_tx, owner) = attach(image.clone());
    let (before, deep_before) = {
        let t = tree::read(&engine.tree);
        (listing(&t), t.lookup(&p.root.join("a/deep/one")))
    };
    assert!(before.len() >= 2, "the root's listing: {before:?}");
    assert_eq!(deep_before, None, "a preview holds the root's listing only");
    let engine = shown(engine);
    {
        let t = tree::read(&engine.tree);
        assert_eq!(
            listing(&t),
            before,
            "the whole tree lists the root as its preview did"
        );
        assert!(
            t.lookup(&p.root.join("a/deep/one")).is_some(),
            "the whole tree once shown"
        );
        t.validate().expect("the whole tree, validated");
    }
    drop(engine);
    drop(hold_tx);
    owner.join().expect("the forged owner");

    // Corrupt below the root's listing: the preview passes, the check does not; the client
    // detaches, and the tree stays the preview (nothing unchecked is ever in it).
    let (engine, rx, hold_tx, owner) = attach(deep_node_changed(&image));
    let engine = shown(engine);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match rx.recv_deadline(deadline) {
            Ok(EngineMsg::Detached(why)) => {
                assert!(why.contains("out of range"), "{why}");
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("no detach after a corrupt image: {e}"),
        }
    }
    {
        let t = tree::read(&engine.tree);
        assert_eq!(listing(&t), before, "the preview stays");
        assert_eq!(t.lookup(&p.root.join("a/deep/one")), None);
    }
    drop(engine);
    drop(hold_tx);
    owner.join().expect("the forged owner");
}

/// A `dtui watch` with `runtime` as its rendezvous's parent: ready, and what it said.
fn watch_with_runtime(p: &Place, runtime: &Path) -> (Child, Vec<String>) {
    let (child, lines) = common::spawn_lines(
        common::dtui()
            .env("XDG_RUNTIME_DIR", runtime)
            .env("XDG_CACHE_HOME", &p.cache)
            .arg("watch")
            .arg(&p.root),
    );
    let said = until_line(&lines, "the watch ready", |l| l.starts_with("tree:"));
    (child, said)
}

fn sockets_in(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |rd| {
        rd.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sock"))
        })
        .count()
    })
}

#[test]
fn a_rendezvous_that_is_a_symlink_another_users_or_open_to_others_is_not_used() {
    let p = place();
    // A symlink to a private directory of ours.
    let target = p.runtime.join("elsewhere");
    fs::create_dir(&target).expect("mkdir");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).expect("chmod");
    let linked = p.runtime.join("linked");
    fs::create_dir(&linked).expect("mkdir");
    std::os::unix::fs::symlink(&target, linked.join("dtui")).expect("symlink");
    // Ours, but others may enter.
    let open = p.runtime.join("open");
    fs::create_dir_all(open.join("dtui")).expect("mkdir");
    fs::set_permissions(open.join("dtui"), fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut cases = vec![(linked, target), (open.clone(), open.join("dtui"))];
    if common::is_root() {
        // Another user's (root could write into it all the same).
        let theirs = p.runtime.join("theirs");
        fs::create_dir_all(theirs.join("dtui")).expect("mkdir");
        fs::set_permissions(theirs.join("dtui"), fs::Permissions::from_mode(0o700)).expect("chmod");
        nix::unistd::chown(
            &theirs.join("dtui"),
            Some(nix::unistd::Uid::from_raw(65534)),
            Some(nix::unistd::Gid::from_raw(65534)),
        )
        .expect("chown");
        cases.push((theirs.clone(), theirs.join("dtui")));
    }
    for (runtime, dir) in cases {
        let (owner, said) = watch_with_runtime(&p, &runtime);
        assert!(said.iter().any(|l| l.starts_with("watching ")), "{said:?}");
        assert_eq!(sockets_in(&dir), 0, "a socket in {}", dir.display());
        stop(owner);
    }
}

#[test]
fn a_socket_another_user_planted_is_not_spoken_to() {
    if !common::is_root() {
        eprintln!("skipped: needs root to listen as another user");
        return;
    }
    let p = place();
    fs::create_dir_all(p.dir()).expect("mkdir");
    fs::set_permissions(p.dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    let world = common::world_tempdir();
    fs::set_permissions(world.path(), fs::Permissions::from_mode(0o1777)).expect("chmod");
    let planted = world.path().join("planted.sock");
    // User 65534 listens, and reports how many bytes its first client sent.
    let script = r"
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(4)
print('listening', flush=True)
c, _ = s.accept()
c.settimeout(5)
got = b''
try:
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += b
except socket.timeout:
    pass
print(len(got), flush=True)
";
    let (mut them, lines) = common::spawn_lines(
        common::as_nobody("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .arg(&planted),
    );
    until_line(&lines, "the planted listener", |l| l == "listening");
    // Moved where our owner's socket would be (the directory is ours: only root could).
    fs::rename(&planted, p.socket()).expect("plant");
    let (out, attached) = p.scan_attached(&[]);
    assert!(!attached, "attached to another user's socket: {out}");
    let said = until_line(&lines, "what the listener got", |l| {
        l.parse::<usize>().is_ok()
    });
    assert_eq!(
        said.last().map(String::as_str),
        Some("0"),
        "another user's listener was told something"
    );
    let _ = them.kill();
    let _ = them.wait();
}

#[test]
fn two_attached_watches_whose_owner_is_killed_leave_one_owner_and_both_follow_the_disk() {
    let p = place();
    let (mut owner, _lines, _) = p.watch(&p.cache);
    let (w1, lines1, said1) = p.watch(&p.cache.with_extension("w1"));
    let (w2, lines2, said2) = p.watch(&p.cache.with_extension("w2"));
    for said in [&said1, &said2] {
        assert!(
            said.iter().any(|l| l.starts_with("attached to dtui")),
            "{said:?}"
        );
    }
    owner.kill().expect("kill -9");
    let _ = owner.wait();
    // Each takes the root over: one owns it (watching), the other attaches to that one.
    let after: Vec<Vec<String>> = [&lines1, &lines2]
        .iter()
        .map(|l| until_line(l, "the takeover", |l| l.starts_with("tree:")))
        .collect();
    let owns: Vec<bool> = after
        .iter()
        .map(|s| s.iter().any(|l| l.starts_with("watching ")))
        .collect();
    assert_eq!(
        owns.iter().filter(|&&o| o).count(),
        1,
        "not exactly one owner: {after:?}"
    );
    let owner_pid = if owns[0] { w1.id() } else { w2.id() };
    let other = if owns[0] { &after[1] } else { &after[0] };
    assert!(
        other
            .iter()
            .any(|l| l.starts_with(&format!("attached to dtui {owner_pid},"))),
        "the other did not attach to the new owner {owner_pid}: {other:?}"
    );
    assert_eq!(sockets_in(&p.dir()), 1);
    // Both follow the disk through the new owner.
    common::write(&p.root.join("b/after"), 500_000);
    fs::rename(p.root.join("a/deep"), p.root.join("b/deep")).expect("mv");
    for lines in [&lines1, &lines2] {
        until_line(lines, "the batch", |l| l.starts_with("batch "));
    }
    p.owner_equals_a_fresh_scan();
    stop(w1);
    stop(w2);
}

#[test]
fn a_browser_attaches_to_an_owner_whose_root_lists_more_than_a_preview_takes() {
    // A root of 70,000 entries (a maildir, a cache directory): `Tree::preview` declines it
    // (`MAX_CHILDREN`), which must cost the browser its preview, not its attachment (it
    // would open the root on its own beside the owner).
    let p = place();
    fs::create_dir_all(p.dir()).expect("mkdir");
    fs::set_permissions(p.dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    let image = {
        use disktracker::tree::{Arena, Kind, Tree};
        let mut t = Tree::create(
            Arena::create_temp().expect("arena"),
            &p.root,
            &common::info(Kind::Dir, 4096, 1),
        )
        .expect("tree");
        let root = t.root();
        for i in 0..70_000u64 {
            t.add_child(
                root,
                format!("f{i}").as_bytes(),
                &common::info(Kind::File, 10, i + 2),
            )
            .expect("add");
        }
        let path = p.runtime.join("wide.arena");
        t.save(&path).expect("save");
        fs::read(&path).expect("read the image")
    };
    for how in [As::Follower, As::Browser] {
        let (hold_tx, hold_rx) = crossbeam_channel::bounded(0);
        let owner = forged_owner(
            &p,
            Forged::Frames(vec![(img(), Some(memfd(&image, true))), status()]),
            hold_rx,
        );
        let (tx, _rx) = crossbeam_channel::unbounded();
        let attached = disktracker::attach::attach(&p.dir(), &p.root, &tx, how).engine();
        let listed = attached.as_ref().map(|e| {
            e.shown();
            let t = tree::read(&e.tree);
            t.children(t.root()).count()
        });
        drop(attached);
        drop(hold_tx);
        owner.join().expect("the forged owner");
        assert_eq!(listed, Some(70_000), "attached as {how:?}");
    }
}

#[test]
fn an_owner_that_refuses_is_not_waited_for_and_the_run_says_why() {
    // An owner of another version of dtui (a `dtui serve` left running across an upgrade)
    // holds the root's election and refuses the hello: a start used to wait 3 s for an
    // election it could not win, silently. It runs on its own at once, and says why.
    let p = place();
    fs::create_dir_all(p.dir()).expect("mkdir");
    fs::set_permissions(p.dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    let _election = disktracker::attach::Election::try_own(&p.dir(), &p.root)
        .expect("lock")
        .expect("the election is free");
    let _ = fs::remove_file(p.socket());
    let listener = UnixListener::bind(p.socket()).expect("bind");
    let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
    let owner = std::thread::spawn(move || {
        listener.set_nonblocking(true).expect("nonblocking");
        loop {
            match listener.accept() {
                Ok((sock, _)) => {
                    sock.set_nonblocking(false).expect("blocking");
                    let mut r = FrameReader::new(sock.as_raw_fd());
                    let _hello = r.next_frame();
                    let no = ToClient::Refused("another version of dtui".into());
                    let _ = send_frame(sock.as_raw_fd(), &no.encode(), None);
                }
                Err(_) => {
                    if !matches!(
                        done.recv_timeout(Duration::from_millis(20)),
                        Err(crossbeam_channel::RecvTimeoutError::Timeout)
                    ) {
                        return;
                    }
                }
            }
        }
    });
    // (A browser or a watch waited; a query went its own way without saying why.)
    let out = common::run(p.dtui(&p.cache).arg("scan").arg(&p.root));
    let stderr = String::from_utf8_lossy(&out.stderr);
    drop(done_tx);
    owner.join().expect("the forged owner");
    assert!(out.status.success(), "{out:?}");
    assert!(
        stderr.contains("refused this one (another version of dtui)"),
        "{stderr}"
    );
}
