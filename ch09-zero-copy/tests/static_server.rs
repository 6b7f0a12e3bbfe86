//! `static_server`'s loop on a real socket, with a real directory: what a
//! browser or curl sees.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use std::fs;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;

use backends::client::{HttpResponse, read_response, send};
use ch01_fundamentals::server::Shutdown;
use ch09_zero_copy::server::{StaticConfig, run};

struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn big() -> Vec<u8> {
    (0..8 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

/// A server over a fresh directory: `index.html`, `data.bin` (8 MiB),
/// `notes.txt`, and a link to a secret outside the root.
fn server() -> Server {
    let dir = std::env::temp_dir().join(format!("lbs-static-{}-{}", std::process::id(), rand_suffix()));
    let root = dir.join("root");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("index.html"), "<h1>hello</h1>\n").unwrap();
    fs::write(root.join("notes.txt"), "0123456789abcdefghij").unwrap();
    fs::write(root.join("data.bin"), big()).unwrap();
    fs::write(dir.join("secret"), "secret").unwrap();
    std::os::unix::fs::symlink(dir.join("secret"), root.join("leak")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let (stop, config) = (shutdown.clone(), StaticConfig::new(root));
    std::thread::spawn(move || run(listener, &config, stop));
    Server { addr, shutdown, dir }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0u8)
}

fn request(addr: SocketAddr, method: &str, target: &str, headers: &str) -> HttpResponse {
    let raw = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    if method == "HEAD" {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        return read_response(&mut BufReader::new(s), true).unwrap();
    }
    send(addr, raw.as_bytes()).unwrap()
}

fn get(addr: SocketAddr, target: &str, headers: &str) -> HttpResponse {
    request(addr, "GET", target, headers)
}

#[test]
fn a_file_comes_with_its_type_validators_and_length_and_head_has_no_body() {
    let s = server();
    let r = get(s.addr, "/", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<h1>hello</h1>\n");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("etag").is_some_and(|t| t.starts_with('"')));
    assert!(r.header("last-modified").is_some_and(|d| d.ends_with(" GMT")));
    let h = request(s.addr, "HEAD", "/", "");
    assert_eq!((h.status, h.header("content-length"), h.body.len()), (200, Some("15"), 0));
    assert_eq!(h.header("etag"), r.header("etag"));
}

#[test]
fn a_big_file_arrives_byte_for_byte() {
    let s = server();
    let r = get(s.addr, "/data.bin", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.body == big(), "{} bytes", r.body.len());
}

#[test]
fn ranges_give_206_and_outside_the_file_416() {
    let s = server();
    let r = get(s.addr, "/notes.txt", "Range: bytes=2-5\r\n");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"2345"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 2-5/20"));
    let r = get(s.addr, "/notes.txt", "Range: bytes=-3\r\n");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"hij"[..]));
    let r = get(s.addr, "/data.bin", "Range: bytes=8000000-\r\n");
    assert_eq!(r.status, 206);
    assert!(r.body == big()[8_000_000..]);
    let r = get(s.addr, "/notes.txt", "Range: bytes=20-\r\n");
    assert_eq!((r.status, r.header("content-range")), (416, Some("bytes */20")));
    let r = get(s.addr, "/notes.txt", "Range: bytes=0-1,4-5\r\n");
    assert_eq!((r.status, r.body.len()), (200, 20), "several ranges: the whole file");
    let tag = get(s.addr, "/notes.txt", "").header("etag").unwrap().to_string();
    let r = get(s.addr, "/notes.txt", &format!("Range: bytes=0-1\r\nIf-Range: {tag}\r\n"));
    assert_eq!(r.status, 200, "with If-Range the whole file is sent, which is always right");
}

#[test]
fn a_client_whose_copy_is_current_gets_304_without_a_body() {
    let s = server();
    let first = get(s.addr, "/notes.txt", "");
    let (tag, date) = (first.header("etag").unwrap(), first.header("last-modified").unwrap());
    let r = get(s.addr, "/notes.txt", &format!("If-None-Match: {tag}\r\n"));
    assert_eq!((r.status, r.body.len(), r.header("etag")), (304, 0, Some(tag)));
    let r = get(s.addr, "/notes.txt", &format!("If-Modified-Since: {date}\r\n"));
    assert_eq!(r.status, 304);
    let r = get(s.addr, "/notes.txt", "If-None-Match: \"stale\"\r\n");
    assert_eq!((r.status, r.body.len()), (200, 20));
}

#[test]
fn nothing_outside_the_root_and_only_get_and_head() {
    let s = server();
    for (target, status) in [
        ("/../secret", 403),
        ("/%2e%2e/secret", 403),
        ("/x%2f..%2f..%2fsecret", 403),
        ("/index.html%00.txt", 403),
        ("/leak", 403),
        ("/missing", 404),
        ("/%zz", 400),
    ] {
        let r = get(s.addr, target, "");
        assert_eq!(r.status, status, "{target}: {}", String::from_utf8_lossy(&r.body));
        assert!(!String::from_utf8_lossy(&r.body).contains("secret\n"));
    }
    let r = request(s.addr, "POST", "/index.html", "Content-Length: 0\r\n");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    let r = send(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n").unwrap();
    assert_eq!(r.status, 400);
}

#[test]
fn one_connection_carries_many_requests() {
    let s = server();
    let stream = TcpStream::connect(s.addr).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for target in ["/", "/notes.txt", "/missing", "/data.bin", "/"] {
        (&stream).write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!(r.status, if target == "/missing" { 404 } else { 200 }, "{target}");
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
}

#[test]
fn a_client_that_stops_reading_holds_up_nobody_else() {
    let s = server();
    // Asks for 8 MiB and reads none of it: its socket fills and its reply
    // waits; the one thread must go on serving everybody else.
    let stalled = TcpStream::connect(s.addr).unwrap();
    (&stalled).write_all(b"GET /data.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    for _ in 0..20 {
        let r = get(s.addr, "/notes.txt", "");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"0123456789abcdefghij"[..]));
    }
    // And the stalled one still gets every byte once it reads.
    let mut reader = BufReader::new(stalled);
    let r = read_response(&mut reader, false).unwrap();
    assert!(r.status == 200 && r.body == big());
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = server();
    let stream = TcpStream::connect(s.addr).unwrap();
    let mut all = String::new();
    for target in ["/notes.txt", "/missing", "/index.html"] {
        all.push_str(&format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    (&stream).write_all(all.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let statuses: Vec<u16> = (0..3).map(|_| read_response(&mut reader, false).unwrap().status).collect();
    assert_eq!(statuses, [200, 404, 200]);
}

#[test]
fn a_head_that_never_ends_gets_408_and_a_silent_client_is_closed() {
    let dir = std::env::temp_dir().join(format!("lbs-static-timeout-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let mut config = StaticConfig::new(dir.clone());
    config.limits.header_timeout = std::time::Duration::from_millis(50);
    let stop = shutdown.clone();
    std::thread::spawn(move || run(listener, &config, stop));
    let mut partial = TcpStream::connect(addr).unwrap();
    partial.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    partial.write_all(b"GET / HTTP/1.1\r\nHost:").unwrap();
    let r = read_response(&mut BufReader::new(partial), false).unwrap();
    assert_eq!(r.status, 408);
    let silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    use std::io::Read;
    assert_eq!((&silent).read_to_end(&mut buf).unwrap(), 0, "closed without a word");
    shutdown.trigger();
    let _ = fs::remove_dir_all(&dir);
}
