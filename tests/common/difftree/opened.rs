//! A tree opened the way `dtui scan` opens it: an engine without a watch, through the cache,
//! its first pass (the scan, or the catch-up) waited for. The tests open trees only this way,
//! so what they check is what the commands run.

use std::path::Path;

use crossbeam_channel::Receiver;
use disktracker::cache::CacheOptions;
use disktracker::engine::{Engine, EngineMsg, EngineOptions, FirstPass};
use disktracker::scan::ScanOptions;

/// An engine whose first pass is over.
pub struct Opened {
    pub engine: Engine,
    pub msgs: Receiver<EngineMsg>,
    pub first: FirstPass,
}

/// Starts an engine on `root` (`catch_up` false: `--no-catch-up`) and waits for its first
/// pass, whatever it came to (`first.failed`). `Err`: the engine did not start.
pub fn start_engine(
    root: &Path,
    cache: &CacheOptions,
    scan: &ScanOptions,
    catch_up: bool,
) -> Result<Opened, String> {
    let mut opts = EngineOptions::new(cache.clone(), scan.clone());
    opts.catch_up = catch_up;
    let (tx, msgs) = crossbeam_channel::unbounded();
    let engine = Engine::start(root, opts, tx).map_err(|e| e.to_string())?;
    let first = engine.wait_ready(&msgs, |_| {});
    Ok(Opened {
        engine,
        msgs,
        first,
    })
}

/// `start_engine`, and a first pass that failed is an error too.
pub fn open_engine(
    root: &Path,
    cache: &CacheOptions,
    scan: &ScanOptions,
    catch_up: bool,
) -> Result<Opened, String> {
    let opened = start_engine(root, cache, scan, catch_up)?;
    match &opened.first.failed {
        Some(e) => Err(format!("the first pass failed: {e}")),
        None => Ok(opened),
    }
}
