//! A small HTTP/1.1 server for the local page, built so that no client can
//! hold the page hostage:
//!
//! - one request per connection (`Connection: close`), at most
//!   [`MAX_CONNECTIONS`] at once; the accept loop waits for a free slot;
//! - the request head must arrive whole within [`HEAD_DEADLINE`] and be at
//!   most [`MAX_HEAD`] bytes; a body within [`BODY_DEADLINE`];
//! - the body is read only when the handler asks for it, after the host and
//!   token checks, so a refused request costs nothing to answer; the
//!   connection is then closed after a short, bounded drain (so the client
//!   still sees the answer rather than a reset).
//!
//! (tiny_http drained every unread body on the worker that answered it, so
//! a few slow unauthenticated uploads stopped the page.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Connections served at once; more wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send the request line and headers.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// Time a client has to send the body, once asked for it.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 16 << 10;
/// How long unread input is drained after answering, so the answer is not
/// lost to a TCP reset.
const LINGER: Duration = Duration::from_millis(500);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One parsed request; the body is still on the socket.
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
}

/// Why a body could not be had.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Bad(String),
}

impl Request {
    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, at most `max` bytes, within [`BODY_DEADLINE`]. A declared
    /// length over `max` is refused before anything is read.
    pub fn read_body(&mut self, max: u64) -> Result<Vec<u8>, BodyError> {
        let chunked = self
            .header("Transfer-Encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = match self.header("Content-Length") {
            Some(v) => Some(
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| BodyError::Bad("bad Content-Length".into()))?,
            ),
            None => None,
        };
        if length.is_some_and(|n| n > max) {
            return Err(BodyError::TooLarge);
        }
        if self
            .header("Expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            let _ = self
                .reader
                .get_mut()
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let deadline = Instant::now() + BODY_DEADLINE;
        let mut r = Deadline {
            inner: &mut self.reader,
            deadline,
        };
        if chunked {
            return read_chunked(&mut r, max);
        }
        let Some(length) = length else {
            return Ok(Vec::new());
        };
        let mut body = Vec::new();
        r.by_ref()
            .take(length)
            .read_to_end(&mut body)
            .map_err(|e| BodyError::Bad(e.to_string()))?;
        if (body.len() as u64) < length {
            return Err(BodyError::Bad("the body ended early".into()));
        }
        Ok(body)
    }
}

/// A socket reader that fails once its deadline has passed (each read may
/// wait at most what is left).
struct Deadline<'a> {
    inner: &'a mut BufReader<TcpStream>,
    deadline: Instant,
}

impl Deadline<'_> {
    fn arm(&mut self) -> std::io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client was too slow",
            ));
        }
        self.inner.get_ref().set_read_timeout(Some(left))
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.inner.read(buf)
    }
}

impl BufRead for Deadline<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.arm()?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n)
    }
}

/// A chunked body, at most `max` bytes of payload.
fn read_chunked(r: &mut impl BufRead, max: u64) -> Result<Vec<u8>, BodyError> {
    let bad = |e: std::io::Error| BodyError::Bad(e.to_string());
    let mut body = Vec::new();
    loop {
        let line = read_line(r, 1024).map_err(bad)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            u64::from_str_radix(size, 16).map_err(|_| BodyError::Bad("bad chunk size".into()))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(r, 1024).map_err(bad)?.is_empty() {}
            return Ok(body);
        }
        if body.len() as u64 + size > max {
            return Err(BodyError::TooLarge);
        }
        let before = body.len();
        r.by_ref().take(size).read_to_end(&mut body).map_err(bad)?;
        if ((body.len() - before) as u64) < size {
            return Err(BodyError::Bad("the body ended early".into()));
        }
        read_line(r, 2).map_err(bad)?;
    }
}

/// One CRLF-terminated line (without the CRLF), at most `max` bytes.
fn read_line(r: &mut impl BufRead, max: usize) -> std::io::Result<String> {
    let mut line = Vec::new();
    r.by_ref()
        .take(max as u64 + 2)
        .read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long or connection closed",
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not text"))
}

/// The request line and headers, within the head deadline and size.
fn read_head(stream: TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut r = Deadline {
        inner: &mut reader,
        deadline: Instant::now() + HEAD_DEADLINE,
    };
    let mut budget = MAX_HEAD;
    let mut next = |r: &mut Deadline<'_>| {
        let line = read_line(r, budget)?;
        budget = budget.saturating_sub(line.len() + 2);
        Ok::<_, std::io::Error>(line)
    };
    let invalid = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let request_line = next(&mut r)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(url), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("bad request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || url.is_empty() {
        return Err(invalid("bad request line"));
    }
    let mut headers = Vec::new();
    loop {
        let line = next(&mut r)?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').ok_or_else(|| invalid("bad header"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(Request {
        method: method.to_string(),
        url: url.to_string(),
        headers,
        reader,
    })
}

/// An answer to write.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        500 => "Internal Server Error",
        _ => "",
    }
}

fn write_response(stream: &mut TcpStream, r: &Response) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        reason(r.status),
        r.body.len()
    );
    for (k, v) in &r.headers {
        // Header values are ours, but never let one end the head early.
        if !v.contains(['\r', '\n']) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&r.body)?;
    stream.flush()
}

/// Ends a connection whose input may not have been read: stop writing, then
/// drain for at most [`LINGER`] so the client reads the answer, not a reset.
fn close(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let end = Instant::now() + LINGER;
    let mut buf = [0u8; 8192];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// A counting semaphore over connection slots.
struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Slots {
    fn take(&self) {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used >= self.max {
            used = self
                .freed
                .wait(used)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *used += 1;
    }

    fn give(&self) {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        self.freed.notify_one();
    }
}

/// Serves `listener` until the process ends: one thread per connection, at
/// most `max` at once.
pub fn serve<H>(listener: TcpListener, max: usize, handler: H)
where
    H: Fn(&mut Request) -> Response + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    let slots = Arc::new(Slots {
        used: Mutex::new(0),
        freed: Condvar::new(),
        max: max.max(1),
    });
    loop {
        slots.take();
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                slots.give();
                // EMFILE and friends: let the moment pass rather than spin.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let handler = handler.clone();
        let slots2 = slots.clone();
        let spawned = std::thread::Builder::new().spawn(move || {
            connection(stream, &*handler);
            slots2.give();
        });
        if spawned.is_err() {
            slots.give();
        }
    }
}

fn connection<H: Fn(&mut Request) -> Response>(stream: TcpStream, handler: &H) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let response = match read_head(stream) {
        // A body left unread (a refusal) is dealt with by `close`.
        Ok(mut rq) => handler(&mut rq),
        Err(e)
            if e.kind() == std::io::ErrorKind::TimedOut
                || e.kind() == std::io::ErrorKind::WouldBlock =>
        {
            plain(408, "the request took too long to arrive")
        }
        Err(_) => plain(400, "malformed request"),
    };
    if write_response(&mut writer, &response).is_ok() {
        close(&mut writer);
    }
}

fn plain(status: u16, msg: &str) -> Response {
    Response {
        status,
        headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
        body: msg.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn chunked_bodies_are_decoded_and_bounded() {
        let mut r = Cursor::new(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n".to_vec());
        assert_eq!(read_chunked(&mut r, 10).unwrap(), b"abcde");
        let mut r = Cursor::new(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".to_vec());
        assert!(matches!(read_chunked(&mut r, 4), Err(BodyError::TooLarge)));
        let mut r = Cursor::new(b"zz\r\n".to_vec());
        assert!(matches!(read_chunked(&mut r, 4), Err(BodyError::Bad(_))));
        let mut r = Cursor::new(b"5\r\nab".to_vec());
        assert!(matches!(read_chunked(&mut r, 10), Err(BodyError::Bad(_))));
    }

    #[test]
    fn lines_are_bounded() {
        let mut r = Cursor::new(b"GET / HTTP/1.1\r\n".to_vec());
        assert_eq!(read_line(&mut r, 100).unwrap(), "GET / HTTP/1.1");
        let mut r = Cursor::new(vec![b'a'; 200]);
        assert!(read_line(&mut r, 100).is_err());
    }
}
