//! `static_server`: files from a directory over HTTP/1.1, bodies sent
//! with `sendfile`.
//!
//! A thread per connection (chapter 1's `server::serve`), each reading
//! request heads with chapter 2's parser, one after another on a
//! keep-alive connection. For each: [`files`](crate::files) decides which
//! file, which part and whether the client's copy is still good; the head
//! goes out with `TCP_CORK` set, so that it and the first bytes of the
//! body leave in one packet; then the body goes out with
//! [`send_file`](crate::sendfile::send_file) in chunks of at most
//! [`StaticConfig::max_chunk`] (nginx's `sendfile_max_chunk`: one huge
//! file must not hold a socket's send path for seconds at a time).

use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use ch02_proxy::http::{Buffered, Framing, HeadError, Limits, RequestHead, Version};

use crate::files::{self, Part, Refused};
use crate::sendfile::send_file;

/// What the server is configured with.
#[derive(Debug, Clone)]
pub struct StaticConfig {
    /// The directory served; nothing outside it ever is.
    pub root: PathBuf,
    /// Head limits, and how long a keep-alive connection may wait for its
    /// next head.
    pub limits: Limits,
    /// Most bytes one `sendfile` call is asked for.
    pub max_chunk: usize,
    /// How long a client may take to accept a chunk of the body.
    pub write_timeout: Duration,
}

impl StaticConfig {
    /// Serves `root` with the default limits and a 2 MiB chunk.
    pub fn new(root: PathBuf) -> Self {
        Self { root, limits: Limits::default(), max_chunk: 2 << 20, write_timeout: Duration::from_secs(30) }
    }
}

/// A response head, and which bytes of which file follow it.
#[derive(Debug)]
pub struct Plan {
    /// The status code.
    pub status: u16,
    /// Header fields after the status line (not `Connection`).
    pub headers: Vec<(&'static str, String)>,
    /// The body: a file's bytes `start..start + len`, or a short text.
    pub body: Body,
}

/// What follows a response head.
#[derive(Debug)]
pub enum Body {
    /// Bytes of an open file.
    File {
        /// The file.
        file: File,
        /// The first byte.
        start: u64,
        /// How many bytes.
        len: u64,
    },
    /// A short text (an error's explanation).
    Text(String),
    /// Nothing (304, and any answer to HEAD).
    Empty,
}

fn text(status: u16, detail: &str) -> Plan {
    let body = format!("{status} {}: {detail}\n", ch02_proxy::proxy::reason(status));
    let headers =
        vec![("Content-Type", "text/plain; charset=utf-8".to_string()), ("Content-Length", body.len().to_string())];
    Plan { status, headers, body: Body::Text(body) }
}

// ANCHOR: plan
/// What to answer `head` with: the whole decision, before any byte is
/// sent.
pub fn plan(head: &RequestHead, config: &StaticConfig) -> Plan {
    if head.method != "GET" && head.method != "HEAD" {
        let mut p = text(405, "this server answers GET and HEAD only");
        p.headers.push(("Allow", "GET, HEAD".to_string()));
        return p;
    }
    let found = files::segments(&head.target).and_then(|segs| files::resolve(&config.root, &segs));
    let found = match found {
        Ok(found) => found,
        Err(Refused::NotFound) => return text(404, "no such file"),
        Err(refused @ (Refused::Malformed(why) | Refused::Forbidden(why))) => return text(refused.status(), why),
    };
    let file = match File::open(&found.path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return text(404, "no such file"),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return text(403, "the file cannot be read"),
        // Out of descriptors, say: ours to fix, not the client's.
        Err(e) => return text(503, &format!("the file cannot be opened now ({e}); try again")),
    };
    let len = found.metadata.len();
    let modified = found.metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
    let etag = files::etag(len, modified);
    let field = |name: &str| head.headers.get(name).map(String::from_utf8_lossy);
    let mut headers = vec![
        ("ETag", etag.clone()),
        ("Last-Modified", files::http_date(modified)),
        ("Accept-Ranges", "bytes".to_string()),
    ];
    if files::not_modified(field("if-none-match").as_deref(), field("if-modified-since").as_deref(), &etag, modified) {
        return Plan { status: 304, headers, body: Body::Empty };
    }
    headers.push(("Content-Type", files::content_type(&found.path).to_string()));
    // A range applies only to the version the client has (If-Range): with
    // any If-Range, the whole file is sent, which is always correct.
    let asked = if head.headers.get("if-range").is_some() { None } else { field("range") };
    let (status, start, count) = match files::range(asked.as_deref(), len) {
        Part::Whole => (200, 0, len),
        Part::Range { start, end } => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
            (206, start, end - start + 1)
        }
        Part::Unsatisfiable => {
            let mut p = text(416, "the range is outside the file");
            p.headers.push(("Content-Range", format!("bytes */{len}")));
            return p;
        }
    };
    headers.push(("Content-Length", count.to_string()));
    Plan { status, headers, body: Body::File { file, start, len: count } }
}
// ANCHOR_END: plan

// ANCHOR: handle
/// Serves one connection: request after request until the client closes
/// or asks to, a head breaks the rules, or it stays silent too long.
pub fn handle(stream: TcpStream, config: &StaticConfig) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    let out = stream.try_clone()?;
    out.set_write_timeout(Some(config.write_timeout))?;
    let mut client = Buffered::new(stream);
    loop {
        let head = match client.read_request_head(&config.limits) {
            Ok(head) => head,
            Err(HeadError::Closed | HeadError::Io(_)) => return Ok(()),
            Err(e @ HeadError::Timeout(_)) if client.buf.is_empty() => {
                tracing::debug!(%peer, error = %e, "idle keep-alive connection closed");
                return Ok(());
            }
            Err(e) => {
                let status = e.status().unwrap_or(400);
                let plan = text(status, &e.to_string());
                return send(&out, &plan, false, false, config.max_chunk).map(|_| ());
            }
        };
        // GET and HEAD have no body; one that comes anyway would be read
        // as the next request, so the connection ends after this answer.
        let keep = head.version == Version::Http11
            && !head.headers.has_token("connection", "close")
            && head.framing == Framing::Empty;
        let plan = plan(&head, config);
        let sent = send(&out, &plan, head.method == "HEAD", keep, config.max_chunk)?;
        tracing::info!(%peer, method = %head.method, target = %head.target, status = plan.status, bytes = sent, "request");
        if !keep {
            return Ok(());
        }
    }
}
// ANCHOR_END: handle

// ANCHOR: send
/// Writes `plan`'s head and body; returns the body bytes sent.
fn send(out: &TcpStream, plan: &Plan, head_only: bool, keep: bool, chunk: usize) -> io::Result<u64> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", plan.status, ch02_proxy::proxy::reason(plan.status));
    for (name, value) in &plan.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str(if keep { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    let body = if head_only { &Body::Empty } else { &plan.body };
    // Corked, the head waits in the socket until the first body bytes
    // join it: one packet instead of a tiny one and a full one.
    let cork = matches!(body, Body::File { .. });
    set_cork(out, cork);
    (&*out).write_all(head.as_bytes())?;
    let sent = match body {
        Body::File { file, start, len } => send_range(out, file, *start, *len, chunk)?,
        Body::Text(text) => {
            (&*out).write_all(text.as_bytes())?;
            text.len() as u64
        }
        Body::Empty => 0,
    };
    if cork {
        set_cork(out, false);
    }
    Ok(sent)
}
// ANCHOR_END: send

/// Sends `len` bytes of `file` from `start`, at most `chunk` per call. A
/// file that shrank meanwhile ends the connection (an error): the client
/// was promised `len` bytes and cannot be given them.
fn send_range(out: &TcpStream, file: &File, start: u64, len: u64, chunk: usize) -> io::Result<u64> {
    let (mut offset, end) = (start, start + len);
    while offset < end {
        let want = usize::try_from(end - offset).unwrap_or(usize::MAX).min(chunk);
        match send_file(out, file, &mut offset, want) {
            Ok((0, _)) => {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was sent"));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

#[cfg(target_os = "linux")]
fn set_cork(out: &TcpStream, on: bool) {
    // Failure only costs a packet.
    let _ = socket2::SockRef::from(out).set_tcp_cork(on);
}

#[cfg(not(target_os = "linux"))]
fn set_cork(_out: &TcpStream, _on: bool) {}
