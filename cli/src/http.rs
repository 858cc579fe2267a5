//! The metrics endpoint's HTTP: one connection at a time, a request head of at most 8 KiB read
//! within 5 seconds, `GET /metrics` answered, anything else 404 (405 for another method), and
//! the connection closed after each answer. Enough for a Prometheus scraper, nothing more.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The largest request head read.
const HEAD_MAX: usize = 8 * 1024;
/// How long a client has to send its request head, and to take the answer.
const CLIENT_TIME: Duration = Duration::from_secs(5);

/// Answers scrapes on `listener` for the life of the process; `render` makes the body.
pub(crate) fn serve(listener: TcpListener, render: impl Fn() -> Result<String, ()>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of descriptors, say: give them a moment rather than spin.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let _ = answer(stream, &render);
    }
}

fn answer(mut stream: TcpStream, render: &impl Fn() -> Result<String, ()>) -> std::io::Result<()> {
    stream.set_write_timeout(Some(CLIENT_TIME))?;
    let Some(head) = read_head(&mut stream)? else {
        return respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            "bad request\n",
        );
    };
    let mut words = head.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => match render() {
            Ok(body) => respond(&mut stream, "200 OK", CONTENT_TYPE, &body),
            Err(()) => respond(&mut stream, "500 Internal Server Error", "text/plain", "\n"),
        },
        (_, "/metrics") => respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n",
        ),
        _ => respond(&mut stream, "404 Not Found", "text/plain", "not found\n"),
    }
}

/// The request line, once the whole head (up to its blank line) came in time and within
/// `HEAD_MAX`; `None` otherwise.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let deadline = Instant::now() + CLIENT_TIME;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || head.len() >= HEAD_MAX {
            return Ok(None);
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => head.extend_from_slice(&buf[..n.min(HEAD_MAX - head.len())]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(None),
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    Ok(std::str::from_utf8(line).ok().map(str::to_string))
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
