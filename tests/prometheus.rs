//! A real Prometheus (Debian's `prometheus`, installed by .ci/run) scrapes a `dtui serve`: its
//! HTTP API's answer for the root's `dtui_directory_disk_bytes` equals `du -sB1`, after a file
//! is written and again after it is removed. Skipped, saying why, only outside CI when the
//! `prometheus` binary is absent; under CI a missing Prometheus fails.

mod common;
mod serve_support;

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{du, write};
use serve_support::{label, root_in, serve, try_get};

/// The `prometheus` binary, or `None` when absent (then the test is skipped, outside CI).
fn prometheus_binary() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set and `prometheus` is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: the `prometheus` binary is not installed (apt-get install prometheus)");
    }
    found
}

/// A port free a moment ago, for a program that takes a port number and not a socket.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Kills and reaps a child when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `%XX` for everything but unreserved characters (a PromQL query in a URL).
fn url_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The value of an instant query's single series, if it has one.
fn query(prom: SocketAddr, promql: &str) -> Option<u64> {
    let (status, body) = try_get(prom, &format!("/api/v1/query?query={}", url_encode(promql)))?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    assert!(result.len() <= 1, "one series: {body}");
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// Polls the query every 100 ms until it equals `du -sB1` of `root` (60 s at most: a scrape a
/// second, and Prometheus takes a few seconds to start).
fn wait_equal_du(prom: SocketAddr, promql: &str, root: &Path, what: &str, log: &Path) {
    let t0 = Instant::now();
    common::poll_until_or(
        Duration::from_secs(60),
        || {
            let want = du(root, false);
            let got = query(prom, promql);
            if got == Some(want) {
                return Ok(());
            }
            Err((got, want))
        },
        |(got, want)| {
            format!(
                "{what}: Prometheus answers {got:?} for {promql}, du says {want}; its log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            )
        },
    );
    eprintln!("{what}: equal after {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn prometheus_scrapes_the_roots_size_and_it_equals_du_through_a_write_and_a_removal() {
    let Some(prometheus) = prometheus_binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_in(dir.path(), "root");
    fs::create_dir_all(root.join("sub")).expect("mkdir");
    write(&root.join("sub/f"), 123_456);
    let served = serve(&dir.path().join("cache"), &[], &[&root]);

    let config = dir.path().join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: dtui\n    static_configs:\n      \
             - targets: ['{}']\n",
            served.addr
        ),
    )
    .expect("write the config");
    let prom_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = dir.path().join("prometheus.log");
    let _prom = Reaped(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("the log"))
            .spawn()
            .expect("prometheus starts"),
    );

    let promql = format!(
        "dtui_directory_disk_bytes{{job=\"dtui\",root=\"{0}\",path=\"{0}\"}}",
        label(&root)
    );
    wait_equal_du(prom_addr, &promql, &root, "at first", &log);
    let before = du(&root, false);

    write(&root.join("sub/five-megabytes"), 5_000_000);
    wait_equal_du(prom_addr, &promql, &root, "after a write", &log);
    assert!(du(&root, false) >= before + 5_000_000);

    fs::remove_file(root.join("sub/five-megabytes")).expect("rm");
    wait_equal_du(prom_addr, &promql, &root, "after the removal", &log);
    assert_eq!(du(&root, false), before);

    // The scrape itself is healthy in Prometheus's eyes.
    let up = query(
        prom_addr,
        &format!("up{{job=\"dtui\",instance=\"{}\"}}", served.addr),
    );
    assert_eq!(up, Some(1));
}
