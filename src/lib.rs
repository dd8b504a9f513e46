//! `DiskTracker` (`dtui`): an ncdu-style disk usage explorer that never goes stale.
//!
//! Everything here is library code, testable without a terminal: `tree` holds the scanned state
//! in a memory-mapped arena, `fs` opens the disk below a root, `scan` fills the tree in parallel,
//! `export` writes ncdu's JSON format, and `cli` is the command line that `main.rs` runs.

pub mod attach;
pub mod cache;
pub mod cli;
pub mod delete;
pub mod engine;
pub mod export;
pub mod format;
pub mod fs;
pub mod history;
pub mod import;
pub mod oom;
pub mod path;
pub mod reconcile;
pub mod scan;
pub mod search;
pub mod serve;
pub mod store;
pub mod threads;
pub mod tree;
pub(crate) mod trusted;
pub mod ui;
pub mod watch;
