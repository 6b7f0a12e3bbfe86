//! A tiny blocking HTTP/1.1 client for tests: just enough to send a request
//! over a real socket and read one response (Content-Length, chunked or
//! close-delimited). Every read has a timeout so a broken server fails a
//! test instead of hanging it.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long any single read or write may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Opens a connection with read and write timeouts set.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `GET path` on a new connection that is closed afterwards.
pub fn get(addr: SocketAddr, path: &str) -> io::Result<HttpResponse> {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    send(addr, raw.as_bytes())
}

/// Sends raw bytes on a new connection and reads one response.
pub fn send(addr: SocketAddr, raw: &[u8]) -> io::Result<HttpResponse> {
    let mut stream = connect(addr)?;
    stream.write_all(raw)?;
    let mut reader = BufReader::new(stream);
    read_response(&mut reader, false)
}

/// Reads one response from `reader`. `head_request` says the request was
/// HEAD, whose response has no body whatever its headers say.
pub fn read_response<R: BufRead>(reader: &mut R, head_request: bool) -> io::Result<HttpResponse> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 =
            line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').ok_or_else(|| bad("bad header line"))?;
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        if (100..200).contains(&status) {
            continue; // 100 Continue: the real response follows
        }
        let mut response = HttpResponse { status, headers, body: Vec::new() };
        if head_request || status == 204 || status == 304 {
            return Ok(response);
        }
        if response.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| bad("bad chunk size"))?;
                if size == 0 {
                    let mut t = String::new();
                    while reader.read_line(&mut t)? > 0 && t != "\r\n" {
                        t.clear();
                    }
                    break;
                }
                let start = response.body.len();
                response.body.resize(start + size, 0);
                reader.read_exact(&mut response.body[start..])?;
                let mut crlf = [0u8; 2];
                reader.read_exact(&mut crlf)?;
            }
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
            response.body.resize(len, 0);
            reader.read_exact(&mut response.body)?;
        } else {
            reader.read_to_end(&mut response.body)?;
        }
        return Ok(response);
    }
}
