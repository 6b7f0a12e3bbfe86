//! # Lab 3 — a file server: the right file, the right bytes, sent by the kernel (reference solution)
//!
//! The task is in `src/labs/lab_3_file_server.rs`.

use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use ch02_proxy::http::{Buffered, Framing, HeadError, Limits, Version};

use super::{Range, Refusal};
use crate::files::content_type;
use crate::sendfile::send_file;

/// The file `target` names under `root` (canonical), or why none is served.
pub fn map_target(root: &Path, target: &str) -> Result<PathBuf, Refusal> {
    let path = path_of(target).ok_or(Refusal::BadRequest)?;
    let path = path.split(['?', '#']).next().unwrap_or("");
    let root = root.canonicalize().map_err(|_| Refusal::NotFound)?;
    let mut wanted = root.clone();
    for raw in path.split('/') {
        let bytes = decode(raw).ok_or(Refusal::BadRequest)?;
        if bytes.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
            return Err(Refusal::Forbidden);
        }
        let segment = String::from_utf8(bytes).map_err(|_| Refusal::BadRequest)?;
        match segment.as_str() {
            "" | "." => {}
            ".." => return Err(Refusal::Forbidden),
            _ => wanted.push(segment),
        }
    }
    let mut found = inside(&root, &wanted)?;
    if found.is_dir() {
        found = inside(&root, &found.join("index.html"))?;
    }
    if found.is_file() { Ok(found) } else { Err(Refusal::NotFound) }
}

/// The path part of an origin-form or absolute-form target.
fn path_of(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let (scheme, rest) = target.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    Some(rest.find('/').and_then(|at| rest.get(at..)).unwrap_or("/"))
}

/// Percent-decodes one segment; `None` for a `%` without two hex digits.
fn decode(raw: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = (bytes.next()? as char).to_digit(16)?;
            let lo = (bytes.next()? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// `path` resolved, when it is still under `root`.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, Refusal> {
    let resolved = path.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => Refusal::Forbidden,
        _ => Refusal::NotFound,
    })?;
    if resolved.starts_with(root) { Ok(resolved) } else { Err(Refusal::Forbidden) }
}

/// The bytes of a `len`-byte file the `Range` value `header` asks for.
pub fn byte_range(header: Option<&str>, len: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Range::Whole };
    let Some((first, last)) = spec.split_once('-') else { return Range::Whole };
    if spec.contains(',') {
        return Range::Whole;
    }
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| if s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u64>().ok() } else { None };
    if first.is_empty() {
        return match number(last) {
            None => Range::Whole,
            Some(0) => Range::Unsatisfiable,
            Some(_) if len == 0 => Range::Unsatisfiable,
            Some(n) => Range::Part { start: len.saturating_sub(n), end: len - 1 },
        };
    }
    let Some(start) = number(first) else { return Range::Whole };
    let end = if last.is_empty() { Some(u64::MAX) } else { number(last) };
    match end {
        None => Range::Whole,
        Some(_) if start >= len => Range::Unsatisfiable,
        Some(end) if end < start => Range::Whole,
        Some(end) => Range::Part { start, end: end.min(len - 1) },
    }
}

/// Answers the requests of one connection from the files under `root`.
pub fn serve(stream: TcpStream, root: &Path) -> io::Result<()> {
    let out = stream.try_clone()?;
    let mut client = Buffered::new(stream);
    let limits = Limits::default();
    loop {
        let head = match client.read_request_head(&limits) {
            Ok(head) => head,
            Err(HeadError::Closed | HeadError::Io(_) | HeadError::Timeout(_)) => return Ok(()),
            Err(e) => {
                let status = e.status().unwrap_or(400);
                return answer(&out, status, &[], Body::Text(&e.to_string()), false);
            }
        };
        let keep = head.version == Version::Http11
            && !head.headers.has_token("connection", "close")
            && head.framing == Framing::Empty;
        let head_only = head.method == "HEAD";
        if head.method != "GET" && !head_only {
            answer(&out, 405, &[("Allow", "GET, HEAD".into())], Body::Text("GET and HEAD only"), keep)?;
        } else {
            match map_target(root, &head.target) {
                Err(refusal) => answer(&out, refusal.status(), &[], Body::Text("refused"), keep)?,
                Ok(path) => {
                    let range = head.headers.get("range").map(String::from_utf8_lossy);
                    send_path(&out, &path, range.as_deref(), head_only, keep)?;
                }
            }
        }
        if !keep {
            return Ok(());
        }
    }
}

/// What follows a head.
enum Body<'a> {
    Text(&'a str),
    File {
        file: File,
        start: u64,
        len: u64,
    },
    /// Nothing, though `Content-Length` says `len` (an answer to HEAD).
    None(u64),
}

fn send_path(out: &TcpStream, path: &Path, range: Option<&str>, head_only: bool, keep: bool) -> io::Result<()> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(_) => return answer(out, 403, &[], Body::Text("the file cannot be read"), keep),
    };
    let len = file.metadata()?.len();
    let mut headers = vec![("Content-Type", content_type(path).to_string()), ("Accept-Ranges", "bytes".to_string())];
    let (status, start, count) = match byte_range(range, len) {
        Range::Whole => (200, 0, len),
        Range::Part { start, end } => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
            (206, start, end - start + 1)
        }
        Range::Unsatisfiable => {
            headers.push(("Content-Range", format!("bytes */{len}")));
            return answer(out, 416, &headers, Body::Text("the range is outside the file"), keep);
        }
    };
    let body = if head_only { Body::None(count) } else { Body::File { file, start, len: count } };
    answer(out, status, &headers, body, keep)
}

fn answer(out: &TcpStream, status: u16, headers: &[(&str, String)], body: Body<'_>, keep: bool) -> io::Result<()> {
    let length = match &body {
        Body::Text(text) => text.len() as u64 + 1,
        Body::File { len, .. } | Body::None(len) => *len,
    };
    let mut head = format!("HTTP/1.1 {status} {}\r\n", ch02_proxy::proxy::reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if matches!(body, Body::Text(_)) {
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    let connection = if keep { "keep-alive" } else { "close" };
    head.push_str(&format!("Content-Length: {length}\r\nConnection: {connection}\r\n\r\n"));
    (&*out).write_all(head.as_bytes())?;
    match body {
        Body::Text(text) => (&*out).write_all(format!("{text}\n").as_bytes()),
        Body::None(_) => Ok(()),
        Body::File { file, start, len } => {
            let (mut offset, end) = (start, start + len);
            while offset < end {
                let want = usize::try_from(end - offset).unwrap_or(usize::MAX).min(1 << 20);
                match send_file(out, &file, &mut offset, want) {
                    Ok((0, _)) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank")),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }
}
