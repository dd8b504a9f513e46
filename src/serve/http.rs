//! The metrics port: HTTP/1.1 on a plain `TcpListener`, as little of it as a scraper needs.
//! `GET /metrics` and `GET /healthz`, nothing else: no other method (405), no other path (404),
//! no request body, a request head of at most 8 KiB (431) read within 5 s, one request per
//! connection (`Connection: close`), at most 16 connections at once (more are closed unread).
//! The path asked for is only ever compared with those two: nothing is read from the disk.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The most bytes of a request head (request line and headers) read.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head.
const READ_WITHIN: Duration = Duration::from_secs(5);
/// How long a client has to take the response.
const WRITE_WITHIN: Duration = Duration::from_secs(10);
/// Connections handled at once; past it a new one is closed at once.
const MAX_CONNECTIONS: usize = 16;

/// What a request asked for, once it passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Health,
}

/// What goes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
        }
    }
}

/// `--listen`: `PORT` (on 127.0.0.1), or `HOST:PORT` (`[::1]:PORT` for IPv6; a host name is
/// resolved, its first address taken).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = s
            .parse()
            .map_err(|_| format!("{s}: not a port (0 to 65535)"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.to_socket_addrs()
        .map_err(|e| format!("{s}: not PORT or HOST:PORT ({e})"))?
        .next()
        .ok_or_else(|| format!("{s}: the host has no address"))
}

/// A running listener; `stop` ends its thread.
pub struct Listener {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Serves `answer` on `listener` from a thread of its own (and one per connection).
    pub fn spawn(
        listener: TcpListener,
        answer: Arc<dyn Fn(Route) -> Response + Send + Sync>,
    ) -> io::Result<Listener> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("dtui-http".into())
            .spawn(move || accept_loop(&listener, &flag, &answer))?;
        Ok(Listener {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops accepting (connections being answered finish on their own threads).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocked accept; if the connect fails the thread is left to the process.
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    stop: &AtomicBool,
    answer: &Arc<dyn Fn(Route) -> Response + Send + Sync>,
) {
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = conn else {
            // EMFILE and the like: back off a little rather than spin.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::SeqCst);
            drop(stream);
            continue;
        }
        let answer = Arc::clone(answer);
        let held = Arc::clone(&busy);
        let spawned = std::thread::Builder::new()
            .name("dtui-http-conn".into())
            .spawn(move || {
                let _ = handle(stream, answer.as_ref());
                held.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Reads one request, answers it, closes.
fn handle(
    mut stream: TcpStream,
    answer: &(dyn Fn(Route) -> Response + Send + Sync),
) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_WITHIN))?;
    let response = match read_head(&mut stream)? {
        Some(head) => match route(&head) {
            Ok(r) => answer(r),
            Err(refused) => refused,
        },
        None => Response::text(431, "request head too large\n"),
    };
    write_response(&mut stream, &response)?;
    let _ = stream.shutdown(Shutdown::Write);
    if response.status != 200 {
        linger(&mut stream);
    }
    Ok(())
}

/// After a refusal, reads and drops what the client still sends (1 MiB, 1 s at most): closing
/// with unread bytes makes the kernel reset the connection, and the client may then lose the
/// answer before it reads it.
fn linger(stream: &mut TcpStream) {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 8192];
    let mut left = 1024 * 1024usize;
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// The request head, up to its blank line; `None` when it passes `MAX_HEAD`. An error when
/// the client is too slow or goes away first.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + READ_WITHIN;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // The blank line may straddle two reads: look back three bytes.
        let from = len.saturating_sub(3);
        len += n;
        if let Some(end) = memchr::memmem::find(&buf[from..len], b"\r\n\r\n") {
            buf.truncate(from + end);
            return Ok(Some(buf));
        }
        if len == MAX_HEAD {
            return Ok(None);
        }
    }
}

/// Which route a request head asks for, or the refusal to send.
fn route(head: &[u8]) -> Result<Route, Response> {
    let bad = || Response::text(400, "bad request\n");
    let head = std::str::from_utf8(head).map_err(|_| bad())?;
    let mut lines = head.split("\r\n");
    let request = lines.next().ok_or_else(bad)?;
    let mut parts = request.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad());
    }
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        // A name is a token: whitespace before the colon or a folded line (one starting with
        // whitespace) is refused (RFC 9112 5.1, 5.2), never read as some other header, which
        // a proxy in front may read differently (`Content-Length : 5`).
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(bad());
        }
        let value = value.trim();
        // No body is read, so none may be sent: it would be taken for the next request.
        if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("content-length") && value != "0"
        {
            return Err(bad());
        }
    }
    let path = origin_form(target);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let found = match path {
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Health,
        _ => {
            return Err(Response::text(
                404,
                "not found: only /metrics and /healthz\n",
            ));
        }
    };
    if method != "GET" {
        return Err(Response::text(405, "method not allowed: only GET\n"));
    }
    Ok(found)
}

/// A byte of a token (RFC 9110 5.6.2), what a header's name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A request target in origin form (`/metrics?x`): the absolute form (`http://host/metrics`,
/// which a server must accept, RFC 9112 3.2.2) without its scheme and authority; any other
/// form as it is (it then matches no path).
fn origin_form(target: &str) -> &str {
    for scheme in ["http://", "https://"] {
        let n = scheme.len();
        if target.len() >= n && target.as_bytes()[..n].eq_ignore_ascii_case(scheme.as_bytes()) {
            // The first `n` bytes are ASCII: `n` is a character boundary.
            let rest = &target[n..];
            return match rest.find(['/', '?', '#']) {
                Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
                _ => "",
            };
        }
    }
    target
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn write_response(stream: &mut TcpStream, r: &Response) -> io::Result<()> {
    let allow = if r.status == 405 {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len(),
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(r.body.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(head: &str) -> Result<Route, u16> {
        route(head.as_bytes()).map_err(|r| r.status)
    }

    #[test]
    fn only_get_of_the_two_paths_is_answered() {
        assert_eq!(
            status("GET /metrics HTTP/1.1\r\nHost: x"),
            Ok(Route::Metrics)
        );
        assert_eq!(status("GET /healthz HTTP/1.0"), Ok(Route::Health));
        assert_eq!(status("GET /metrics?x=1 HTTP/1.1"), Ok(Route::Metrics));
        assert_eq!(
            status("GET http://127.0.0.1:9/metrics HTTP/1.1"),
            Ok(Route::Metrics)
        );
        assert_eq!(
            status("GET HTTPS://h/healthz?a HTTP/1.1"),
            Ok(Route::Health)
        );
        assert_eq!(status("GET http://h?/metrics HTTP/1.1"), Err(404));
        assert_eq!(status("GET http://h HTTP/1.1"), Err(404));
        assert_eq!(
            status("GET http://\u{e9}/metrics HTTP/1.1"),
            Ok(Route::Metrics)
        );
        assert_eq!(status("GET \u{e9}\u{e9}\u{e9}\u{e9} HTTP/1.1"), Err(404));
        assert_eq!(
            status("GET /metrics HTTP/1.1\r\nContent-Length : 5"),
            Err(400)
        );
        assert_eq!(
            status("GET /metrics HTTP/1.1\r\n Transfer-Encoding: chunked"),
            Err(400)
        );
        assert_eq!(status("GET /metrics HTTP/1.1\r\n: x"), Err(400));
        assert_eq!(status("POST /metrics HTTP/1.1"), Err(405));
        assert_eq!(status("HEAD /metrics HTTP/1.1"), Err(405));
        assert_eq!(status("GET / HTTP/1.1"), Err(404));
        assert_eq!(status("GET /metrics/ HTTP/1.1"), Err(404));
        assert_eq!(status("GET /../etc/passwd HTTP/1.1"), Err(404));
        assert_eq!(status("GET /metrics HTTP/2"), Err(400));
        assert_eq!(status("GET  /metrics HTTP/1.1"), Err(400));
        assert_eq!(status("GET /metrics HTTP/1.1\r\nno colon"), Err(400));
        assert_eq!(
            status("GET /metrics HTTP/1.1\r\nContent-Length: 5"),
            Err(400)
        );
        assert_eq!(
            status("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked"),
            Err(400)
        );
    }

    #[test]
    fn a_listen_address_is_a_port_or_host_and_port() {
        assert_eq!(
            parse_listen("9977"),
            Ok("127.0.0.1:9977".parse().expect("addr"))
        );
        assert_eq!(
            parse_listen("0.0.0.0:80"),
            Ok("0.0.0.0:80".parse().expect("addr"))
        );
        assert_eq!(
            parse_listen("[::1]:9"),
            Ok("[::1]:9".parse().expect("addr"))
        );
        assert!(parse_listen("99999").is_err());
        assert!(parse_listen("nohost").is_err());
    }
}
