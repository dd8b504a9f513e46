//! `dtui serve`: one engine per root, headless and long-running (each root kept live, its
//! cache saved and its size history recorded, as the browser and `dtui watch` do), and, on
//! request, an HTTP port with the directories' sizes and the engines' health as OpenMetrics.
//!
//! A scrape costs O(series), never O(tree): which directories are exported (`series`) is
//! chosen by each root's pump thread, the one that reads its engine's messages, after the
//! first pass and then at most once a second (or twenty times as long as choosing took) while
//! batches come in; a scrape reads only those directories' totals, under the tree's read lock
//! (`metrics`). So a directory's value is always current, while the set of directories (a new
//! one at the depth, a change in the top largest, a path renamed) follows within about a
//! second of the batch. The port (`http`) answers nothing but `GET /metrics` and
//! `GET /healthz`, and serves only the trees of the roots this process was given.

pub mod http;
pub mod metrics;
pub mod series;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::cache::Saved;
use crate::engine::{Engine, EngineMsg, Freshness};
use crate::path::display_name;
use crate::tree::{self, Tree};
pub use http::parse_listen;
use series::{Selection, SeriesSet};

/// The shortest time between two choices of a root's exported directories.
const CHOOSE_AT_MOST_EVERY: Duration = Duration::from_secs(1);
/// And at least this many times as long as the last choice took (a walk of a very large tree).
const CHOOSE_COST_FACTOR: u32 = 20;

/// What a scrape reads of one root.
pub struct RootState {
    pub root: PathBuf,
    /// `root="..."`, escaped.
    label: String,
    tree: Arc<RwLock<Tree>>,
    freshness: Box<dyn Fn() -> Freshness + Send + Sync>,
    stats: metrics::RootStats,
    /// The database and the arena, whose sizes are the cache's (`None` without a cache).
    cache_files: Option<(PathBuf, PathBuf)>,
    series: Mutex<Arc<SeriesSet>>,
    selection: Selection,
}

impl RootState {
    fn series(&self) -> Arc<SeriesSet> {
        Arc::clone(&self.series.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Chooses the exported directories again; how long it took.
    fn choose(&self) -> Duration {
        let t0 = Instant::now();
        let set = series::choose(&tree::read(&self.tree), self.selection, &self.label);
        *self.series.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        t0.elapsed()
    }
}

/// The served roots, their pump threads and, with `--listen`, the port.
pub struct Server {
    engines: Vec<Engine>,
    roots: Vec<Arc<RootState>>,
    pumps: Vec<JoinHandle<()>>,
    listener: Option<http::Listener>,
}

/// One engine's message, with the index of its root (in the order given).
pub type ServedMsg = (usize, EngineMsg);

impl Server {
    /// Takes over started engines (each with the receiver of its messages): counts and
    /// forwards their messages to `out`, keeps their exported directories chosen, and serves
    /// the metrics on `listener` if given.
    pub fn start(
        started: Vec<(Engine, Receiver<EngineMsg>)>,
        selection: Selection,
        listener: Option<std::net::TcpListener>,
        out: &Sender<ServedMsg>,
    ) -> std::io::Result<Server> {
        let mut engines = Vec::new();
        let mut roots = Vec::new();
        let mut pumps = Vec::new();
        for (i, (engine, rx)) in started.into_iter().enumerate() {
            let state = Arc::new(root_state(&engine, selection));
            let pumped = Arc::clone(&state);
            let out = out.clone();
            pumps.push(
                std::thread::Builder::new()
                    .name("dtui-serve-pump".into())
                    .spawn(move || pump(i, &pumped, &rx, &out))?,
            );
            engines.push(engine);
            roots.push(state);
        }
        let listener = match listener {
            Some(l) => {
                let served = roots.clone();
                Some(http::Listener::spawn(
                    l,
                    Arc::new(move |route| answer(&served, route)),
                )?)
            }
            None => None,
        };
        Ok(Server {
            engines,
            roots,
            pumps,
            listener,
        })
    }

    /// The address the metrics port is bound to.
    #[must_use]
    pub fn listening(&self) -> Option<std::net::SocketAddr> {
        self.listener.as_ref().map(|l| l.addr)
    }

    /// The served roots, in the order given.
    #[must_use]
    pub fn roots(&self) -> Vec<&Path> {
        self.roots.iter().map(|r| r.root.as_path()).collect()
    }

    /// The trees, for a client that reports on them.
    #[must_use]
    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    /// Closes the port, then shuts every engine down (each applies what is queued and saves
    /// its cache), in parallel; what each saved, in the order given. The last messages have
    /// been forwarded when this returns.
    #[must_use]
    pub fn stop(self) -> Vec<Saved> {
        if let Some(l) = self.listener {
            l.stop();
        }
        let saved = std::thread::scope(|s| {
            let running: Vec<_> = self
                .engines
                .into_iter()
                .map(|e| s.spawn(move || e.shutdown()))
                .collect();
            running
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| Saved::Failed {
                        why: "the engine's shutdown panicked".into(),
                    })
                })
                .collect()
        });
        for p in self.pumps {
            let _ = p.join();
        }
        saved
    }
}

fn root_state(engine: &Engine, selection: Selection) -> RootState {
    let mut label = String::from("root=\"");
    metrics::push_label_value(&mut label, engine.root.as_os_str().as_encoded_bytes());
    label.push('"');
    let cache_files = engine
        .history
        .as_ref()
        .map(|h| (h.db.clone(), h.db.with_extension("arena")));
    let state = RootState {
        root: engine.root.clone(),
        label,
        tree: Arc::clone(&engine.tree),
        freshness: Box::new(engine.freshness_handle()),
        stats: metrics::RootStats::default(),
        cache_files,
        series: Mutex::new(Arc::new(SeriesSet::empty())),
        selection,
    };
    // A tree loaded from the cache is whole already: served from the first scrape.
    state.choose();
    state
}

/// One root's pump: counts its engine's messages, forwards them, and chooses its exported
/// directories again after the first pass (before `Ready` is forwarded, so a client told the
/// tree is ready scrapes all of them), then after batches, and while a scan or a verification
/// grows the tree. Ends when the engine has stopped.
fn pump(i: usize, state: &RootState, rx: &Receiver<EngineMsg>, out: &Sender<ServedMsg>) {
    let mut last = Instant::now();
    let mut wait = CHOOSE_AT_MOST_EVERY;
    let mut due = false;
    let mut growing = false;
    loop {
        // Nothing to choose: wake once a second anyway, to see a pass start growing the tree.
        let timeout = if due || growing {
            (last + wait)
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10))
        } else {
            CHOOSE_AT_MOST_EVERY
        };
        match rx.recv_timeout(timeout) {
            Ok(msg) => {
                state.stats.note(&msg);
                match &msg {
                    EngineMsg::Ready | EngineMsg::Reconciled(_) => {
                        wait = choose_wait(state.choose());
                        last = Instant::now();
                        due = false;
                    }
                    EngineMsg::Applied(d) if !d.touched.is_empty() => due = true,
                    _ => {}
                }
                let _ = out.send((i, msg));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        growing = matches!(
            (state.freshness)(),
            Freshness::Scanning | Freshness::Verifying
        );
        if (due || growing) && last.elapsed() >= wait {
            wait = choose_wait(state.choose());
            last = Instant::now();
            due = false;
        }
    }
}

fn choose_wait(took: Duration) -> Duration {
    CHOOSE_AT_MOST_EVERY.max(took * CHOOSE_COST_FACTOR)
}

/// The answer to a request that passed the port's checks.
fn answer(roots: &[Arc<RootState>], route: http::Route) -> http::Response {
    match route {
        http::Route::Metrics => {
            let mut body = String::with_capacity(64 * 1024);
            metrics::render(roots, &mut body);
            http::Response {
                status: 200,
                content_type: metrics::CONTENT_TYPE,
                body,
            }
        }
        http::Route::Health => {
            // Ready: every tree is whole and kept current. A scan or a verification running,
            // or a tree gone stale, is 503, with each root's state in the body.
            let mut body = String::new();
            let mut ready = true;
            for r in roots {
                let f = (r.freshness)();
                ready &= matches!(f, Freshness::Live | Freshness::Fresh);
                let _ = writeln!(
                    body,
                    "{} {}",
                    metrics::state_name(f),
                    display_name(r.root.as_os_str().as_encoded_bytes())
                );
            }
            http::Response {
                status: if ready { 200 } else { 503 },
                content_type: "text/plain; charset=utf-8",
                body,
            }
        }
    }
}
