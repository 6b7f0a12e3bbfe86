//! `static_server`'s connection handler behind chapter 1's server loop, on
//! a real socket, with a real directory: what a browser or curl sees.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use std::fs;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;

use backends::client::{HttpResponse, read_response, send};
use ch01_fundamentals::server::{ServerConfig, Shutdown, serve};
use ch09_zero_copy::server::{StaticConfig, handle};

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
    std::thread::spawn(move || serve(listener, stop, ServerConfig::default(), move |s| handle(s, &config)));
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
