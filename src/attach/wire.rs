//! What crosses the socket between an owner and an attached client: the messages, each the
//! body of a frame (`frame`) whose first byte is its tag. Every read checks what is left of
//! the body, so a short or forged one is an error, never a panic.

use std::io;
use std::time::Duration;

use crate::engine::{
    ChangeKind, ChangeLine, EngineMsg, Freshness, TreeDelta, UserChange, UserChangeKind,
};
use crate::history::HistorySource;
use crate::reconcile::ReconcileStats;
use crate::scan::{ProgressSnapshot, ScanStats};
use crate::tree::{NodeId, NodeRef};

/// The protocol's version: a client and an owner of different versions do not attach.
pub const VERSION: u32 = 2;
/// The change lines one forwarded batch carries at most (the browser shows a few).
pub const MAX_LINES: usize = 10_000;

/// Client to owner.
#[derive(Debug)]
pub enum ToOwner {
    /// The first frame: the protocol's version and the path the client opens.
    Hello {
        version: u32,
        path: Vec<u8>,
    },
    Reconcile {
        dir: Option<NodeRef>,
        full: bool,
    },
    User(Vec<UserChange>),
    /// Apply what the watch has seen up to now, then say `EngineMsg::Synced` with this
    /// token (a query's answer must include what was written before it was asked).
    Sync(u64),
}

/// Owner to client.
#[derive(Debug)]
pub enum ToClient {
    /// The answer to `Hello`: the root served and what a browser says of it at start.
    Welcome(Welcome),
    /// Not served (why): the client opens the root itself.
    Refused(String),
    /// The tree's arena as of now, in the descriptor beside the frame.
    Image,
    Msg(EngineMsg),
    Status(Freshness, ProgressSnapshot),
}

/// What an owner tells a client on attaching.
#[derive(Debug, Clone)]
pub struct Welcome {
    pub root: Vec<u8>,
    /// The owner's cache origin, as said ("mapped from the cache, 3 min old"...).
    pub origin: String,
    pub watching: Option<Result<String, String>>,
    pub warnings: Vec<String>,
    /// The owner's process id, for "attached to dtui 1234".
    pub pid: u32,
    /// Where the owner's size history is (its cache's database, read by the client for
    /// `changes` and the change column, as SQLite lets readers beside its writer).
    pub history: Option<HistorySource>,
}

/// A body being built.
#[derive(Default)]
pub struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i128(&mut self, v: i128) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    fn duration(&mut self, d: Duration) -> &mut Self {
        self.u64(d.as_nanos().min(u128::from(u64::MAX)) as u64)
    }
    fn node(&mut self, r: NodeRef) -> &mut Self {
        self.u32(r.id.0).u8(r.generation)
    }
}

/// A body being read: every read checks what is left, so a short or forged body is an error.
pub struct Dec<'a>(&'a [u8]);

/// A body that does not parse.
fn bad() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "a malformed attach frame")
}

impl Dec<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(bad());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| bad())?,
        ))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| bad())?,
        ))
    }
    fn i128(&mut self) -> io::Result<i128> {
        Ok(i128::from_le_bytes(
            self.take(16)?.try_into().map_err(|_| bad())?,
        ))
    }
    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn str(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| bad())
    }
    fn duration(&mut self) -> io::Result<Duration> {
        Ok(Duration::from_nanos(self.u64()?))
    }
    fn node(&mut self) -> io::Result<NodeRef> {
        Ok(NodeRef {
            id: NodeId(self.u32()?),
            generation: self.u8()?,
        })
    }
    fn bool(&mut self) -> io::Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad()),
        }
    }
    fn end(&self) -> io::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    }
}

fn enc_reconcile(e: &mut Enc, s: &ReconcileStats) {
    e.u64(s.added)
        .u64(s.removed)
        .u64(s.resized)
        .u64(s.replaced)
        .u64(s.dirs_read)
        .u64(s.dirs_kept)
        .u64(s.errors)
        .duration(s.elapsed);
}

fn dec_reconcile(d: &mut Dec<'_>) -> io::Result<ReconcileStats> {
    Ok(ReconcileStats {
        added: d.u64()?,
        removed: d.u64()?,
        resized: d.u64()?,
        replaced: d.u64()?,
        dirs_read: d.u64()?,
        dirs_kept: d.u64()?,
        errors: d.u64()?,
        elapsed: d.duration()?,
    })
}

fn change_kind(k: ChangeKind) -> u8 {
    match k {
        ChangeKind::Added => 0,
        ChangeKind::Removed => 1,
        ChangeKind::Changed => 2,
        ChangeKind::Moved => 3,
        ChangeKind::Verified => 4,
    }
}

fn dec_change_kind(v: u8) -> io::Result<ChangeKind> {
    Ok(match v {
        0 => ChangeKind::Added,
        1 => ChangeKind::Removed,
        2 => ChangeKind::Changed,
        3 => ChangeKind::Moved,
        4 => ChangeKind::Verified,
        _ => return Err(bad()),
    })
}

fn enc_msg(e: &mut Enc, m: &EngineMsg) {
    match m {
        EngineMsg::Watching(Ok(s)) => e.u8(0).str(s),
        EngineMsg::Watching(Err(s)) => e.u8(1).str(s),
        EngineMsg::ScanDone(s) => e
            .u8(2)
            .u64(s.entries)
            .u64(s.dirs)
            .u64(s.errors)
            .duration(s.elapsed),
        EngineMsg::CatchUpDone(s) => {
            enc_reconcile(e.u8(3), s);
            e
        }
        EngineMsg::Ready => e.u8(4),
        EngineMsg::Applied(d) => {
            e.u8(5)
                .u64(d.generation)
                .u64(d.batch)
                .u64(d.events)
                .duration(d.elapsed);
            e.u32(d.touched.len() as u32);
            for r in &d.touched {
                e.node(*r);
            }
            let lines = &d.lines[..d.lines.len().min(MAX_LINES)];
            e.u32(lines.len() as u32);
            for l in lines {
                e.u8(change_kind(l.kind)).bytes(&l.path).i128(l.disk);
                match &l.to {
                    Some(to) => e.u8(1).bytes(to),
                    None => e.u8(0),
                };
            }
            e
        }
        EngineMsg::Reconciled(s) => {
            enc_reconcile(e.u8(6), s);
            e
        }
        EngineMsg::Stale(s) => e.u8(7).str(s),
        EngineMsg::Failed(s) => e.u8(8).str(s),
        EngineMsg::CacheSaved => e.u8(9),
        EngineMsg::Detached(s) => e.u8(10).str(s),
        EngineMsg::Synced(t) => e.u8(11).u64(*t),
    };
}

fn dec_msg(d: &mut Dec<'_>) -> io::Result<EngineMsg> {
    Ok(match d.u8()? {
        0 => EngineMsg::Watching(Ok(d.str()?)),
        1 => EngineMsg::Watching(Err(d.str()?)),
        2 => EngineMsg::ScanDone(ScanStats {
            entries: d.u64()?,
            dirs: d.u64()?,
            errors: d.u64()?,
            elapsed: d.duration()?,
        }),
        3 => EngineMsg::CatchUpDone(dec_reconcile(d)?),
        4 => EngineMsg::Ready,
        5 => {
            let (generation, batch, events, elapsed) =
                (d.u64()?, d.u64()?, d.u64()?, d.duration()?);
            let n = d.u32()? as usize;
            let mut touched = Vec::with_capacity(n.min(d.0.len() / 5));
            for _ in 0..n {
                touched.push(d.node()?);
            }
            let n = d.u32()? as usize;
            let mut lines = Vec::with_capacity(n.min(MAX_LINES));
            for _ in 0..n {
                let kind = dec_change_kind(d.u8()?)?;
                let path = d.bytes()?;
                let disk = d.i128()?;
                let to = if d.bool()? { Some(d.bytes()?) } else { None };
                lines.push(ChangeLine {
                    kind,
                    path,
                    to,
                    disk,
                });
            }
            EngineMsg::Applied(TreeDelta {
                generation,
                batch,
                events,
                touched,
                lines,
                elapsed,
            })
        }
        6 => EngineMsg::Reconciled(dec_reconcile(d)?),
        7 => EngineMsg::Stale(d.str()?),
        8 => EngineMsg::Failed(d.str()?),
        9 => EngineMsg::CacheSaved,
        10 => EngineMsg::Detached(d.str()?),
        11 => EngineMsg::Synced(d.u64()?),
        _ => return Err(bad()),
    })
}

fn freshness_byte(f: Freshness) -> u8 {
    f as u8
}

fn dec_freshness(v: u8) -> io::Result<Freshness> {
    Ok(match v {
        0 => Freshness::Scanning,
        1 => Freshness::Stale,
        2 => Freshness::Verifying,
        3 => Freshness::Fresh,
        4 => Freshness::Live,
        _ => return Err(bad()),
    })
}

impl ToOwner {
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        match self {
            ToOwner::Hello { version, path } => {
                e.u8(0).u32(*version).bytes(path);
            }
            ToOwner::Reconcile { dir, full } => {
                e.u8(1);
                match dir {
                    Some(r) => e.u8(1).node(*r),
                    None => e.u8(0),
                };
                e.u8(u8::from(*full));
            }
            ToOwner::User(changes) => {
                e.u8(2).u32(changes.len() as u32);
                for c in changes {
                    let kind = match c.kind {
                        UserChangeKind::Removed => 0,
                        UserChangeKind::Created => 1,
                        UserChangeKind::Verify => 2,
                    };
                    e.u8(kind).bytes(c.path.as_os_str().as_encoded_bytes());
                    match c.bytes {
                        Some(b) => e.u8(1).u64(b),
                        None => e.u8(0),
                    };
                }
            }
            ToOwner::Sync(token) => {
                e.u8(3).u64(*token);
            }
        }
        e.0
    }

    pub fn decode(body: &[u8]) -> io::Result<ToOwner> {
        let mut d = Dec(body);
        let m = match d.u8()? {
            0 => ToOwner::Hello {
                version: d.u32()?,
                path: d.bytes()?,
            },
            1 => {
                let dir = if d.bool()? { Some(d.node()?) } else { None };
                ToOwner::Reconcile {
                    dir,
                    full: d.bool()?,
                }
            }
            2 => {
                let n = d.u32()? as usize;
                let mut changes = Vec::with_capacity(n.min(d.0.len() / 6));
                for _ in 0..n {
                    let kind = match d.u8()? {
                        0 => UserChangeKind::Removed,
                        1 => UserChangeKind::Created,
                        2 => UserChangeKind::Verify,
                        _ => return Err(bad()),
                    };
                    let path = super::path_of(d.bytes()?);
                    let bytes = if d.bool()? { Some(d.u64()?) } else { None };
                    changes.push(UserChange { kind, path, bytes });
                }
                ToOwner::User(changes)
            }
            3 => ToOwner::Sync(d.u64()?),
            _ => return Err(bad()),
        };
        d.end()?;
        Ok(m)
    }
}

impl ToClient {
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        match self {
            ToClient::Welcome(w) => {
                e.u8(0).bytes(&w.root).str(&w.origin);
                match &w.watching {
                    None => e.u8(0),
                    Some(Ok(s)) => e.u8(1).str(s),
                    Some(Err(s)) => e.u8(2).str(s),
                };
                e.u32(w.warnings.len() as u32);
                for s in &w.warnings {
                    e.str(s);
                }
                e.u32(w.pid);
                match &w.history {
                    Some(h) => e
                        .u8(1)
                        .bytes(h.db.as_os_str().as_encoded_bytes())
                        .u64(h.session_start_ms as u64)
                        .u8(u8::from(h.own_session)),
                    None => e.u8(0),
                };
            }
            ToClient::Refused(why) => {
                e.u8(1).str(why);
            }
            ToClient::Image => {
                e.u8(2);
            }
            ToClient::Msg(m) => enc_msg(e.u8(3), m),
            ToClient::Status(f, p) => {
                e.u8(4)
                    .u8(freshness_byte(*f))
                    .u64(p.entries)
                    .u64(p.dirs)
                    .u64(p.apparent)
                    .u64(p.disk)
                    .u64(p.errors)
                    .u32(p.current.0);
            }
        }
        e.0
    }

    pub fn decode(body: &[u8]) -> io::Result<ToClient> {
        let mut d = Dec(body);
        let m = match d.u8()? {
            0 => {
                let root = d.bytes()?;
                let origin = d.str()?;
                let watching = match d.u8()? {
                    0 => None,
                    1 => Some(Ok(d.str()?)),
                    2 => Some(Err(d.str()?)),
                    _ => return Err(bad()),
                };
                let n = d.u32()? as usize;
                let mut warnings = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    warnings.push(d.str()?);
                }
                let pid = d.u32()?;
                let history = if d.bool()? {
                    Some(HistorySource {
                        db: super::path_of(d.bytes()?),
                        session_start_ms: d.u64()? as i64,
                        own_session: d.bool()?,
                    })
                } else {
                    None
                };
                ToClient::Welcome(Welcome {
                    root,
                    origin,
                    watching,
                    warnings,
                    pid,
                    history,
                })
            }
            1 => ToClient::Refused(d.str()?),
            2 => ToClient::Image,
            3 => ToClient::Msg(dec_msg(&mut d)?),
            4 => {
                let f = dec_freshness(d.u8()?)?;
                ToClient::Status(
                    f,
                    ProgressSnapshot {
                        entries: d.u64()?,
                        dirs: d.u64()?,
                        apparent: d.u64()?,
                        disk: d.u64()?,
                        errors: d.u64()?,
                        current: NodeId(d.u32()?),
                    },
                )
            }
            _ => return Err(bad()),
        };
        d.end()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_a_truncated_body_is_refused() {
        let delta = TreeDelta {
            generation: 7,
            batch: 3,
            events: 12,
            touched: vec![NodeRef {
                id: NodeId(5),
                generation: 2,
            }],
            lines: vec![ChangeLine {
                kind: ChangeKind::Moved,
                path: b"a\nb\xff".to_vec(),
                to: Some(b"c".to_vec()),
                disk: -4096,
            }],
            elapsed: Duration::from_millis(3),
        };
        let body = ToClient::Msg(EngineMsg::Applied(delta)).encode();
        let Ok(ToClient::Msg(EngineMsg::Applied(d))) = ToClient::decode(&body) else {
            panic!("not an applied batch");
        };
        assert_eq!((d.generation, d.batch, d.events), (7, 3, 12));
        assert_eq!(d.lines[0].path, b"a\nb\xff");
        assert_eq!(d.lines[0].to.as_deref(), Some(&b"c"[..]));
        assert_eq!(d.lines[0].disk, -4096);
        assert_eq!(d.touched[0].id, NodeId(5));
        for cut in 0..body.len() {
            assert!(ToClient::decode(&body[..cut]).is_err(), "cut at {cut}");
        }
        let hello = ToOwner::Hello {
            version: VERSION,
            path: b"/x".to_vec(),
        }
        .encode();
        assert!(matches!(
            ToOwner::decode(&hello),
            Ok(ToOwner::Hello {
                version: VERSION,
                ..
            })
        ));
        let mut longer = hello.clone();
        longer.push(0);
        assert!(ToOwner::decode(&longer).is_err());
    }
}
