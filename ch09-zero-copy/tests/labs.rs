//! Graded tests for the chapter 9 lab. Every test name starts with its
//! lab's id: `cargo test -p ch09-zero-copy --no-default-features lab_3`
//! grades your lab 3 (plain `cargo test` here grades the reference).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use std::fs;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use backends::client::{HttpResponse, read_response, send};
use ch01_fundamentals::server::{ServerConfig, Shutdown, serve};
use ch09_zero_copy::files::{self, Part};
use ch09_zero_copy::labs::lab_3_file_server::{byte_range, map_target, serve as lab_serve};
use ch09_zero_copy::labs::{Range, Refusal};

/// A directory to serve, removed at the end.
struct Site {
    dir: PathBuf,
    root: PathBuf,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn big() -> Vec<u8> {
    (0..2 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

/// `root/`: index.html, a.txt, data.bin (2 MiB), é.txt, sub/ (with
/// index.html and b.txt), empty/ (no index), zero.txt (empty), a link
/// to a.txt and a link out to `secret` beside the root.
fn site(name: &str) -> Site {
    use std::hash::{BuildHasher, RandomState};
    let tag = RandomState::new().hash_one(name);
    let dir = std::env::temp_dir().join(format!("lbs-lab3-{}-{tag:x}", std::process::id()));
    let root = dir.join("root");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("index.html"), "<h1>home</h1>\n").unwrap();
    fs::write(root.join("a.txt"), "0123456789").unwrap();
    fs::write(root.join("data.bin"), big()).unwrap();
    fs::write(root.join("é.txt"), "accent").unwrap();
    fs::write(root.join("zero.txt"), "").unwrap();
    fs::write(root.join("sub/index.html"), "<p>sub</p>\n").unwrap();
    fs::write(root.join("sub/b.txt"), "bee").unwrap();
    fs::write(dir.join("secret"), "secret").unwrap();
    std::os::unix::fs::symlink(root.join("a.txt"), root.join("link-in")).unwrap();
    std::os::unix::fs::symlink(dir.join("secret"), root.join("link-out")).unwrap();
    std::os::unix::fs::symlink(&dir, root.join("up")).unwrap();
    Site { dir, root }
}

/// Chapter 9's own answer, in the lab's terms.
fn core_map(root: &Path, target: &str) -> Result<PathBuf, u16> {
    files::segments(target).and_then(|s| files::resolve(root, &s)).map(|r| r.path).map_err(|e| e.status())
}

fn core_range(header: Option<&str>, len: u64) -> Range {
    match files::range(header, len) {
        Part::Whole => Range::Whole,
        Part::Range { start, end } => Range::Part { start, end },
        Part::Unsatisfiable => Range::Unsatisfiable,
    }
}

/// A small deterministic random sequence: the same run replays a failure.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[test]
fn lab_3_targets_map_to_the_files_they_name() {
    let s = site("map");
    let canon = |p: &str| s.root.canonicalize().unwrap().join(p);
    for (target, file) in [
        ("/", "index.html"),
        ("/index.html", "index.html"),
        ("/a.txt", "a.txt"),
        ("/a.txt?download=1", "a.txt"),
        ("/a.txt#top", "a.txt"),
        ("//a.txt", "a.txt"),
        ("/./a.txt", "a.txt"),
        ("/%61.txt", "a.txt"),
        ("/%C3%A9.txt", "é.txt"),
        ("/sub", "sub/index.html"),
        ("/sub/", "sub/index.html"),
        ("/sub/b.txt", "sub/b.txt"),
        ("/link-in", "a.txt"),
        ("http://example.com/sub/b.txt", "sub/b.txt"),
        ("HTTPS://example.com", "index.html"),
    ] {
        assert_eq!(map_target(&s.root, target), Ok(canon(file)), "{target}");
    }
}

#[test]
fn lab_3_nothing_outside_the_root_and_the_right_refusal() {
    let s = site("refuse");
    for (target, refusal) in [
        ("/../secret", Refusal::Forbidden),
        ("/sub/../../secret", Refusal::Forbidden),
        ("/%2e%2e/secret", Refusal::Forbidden),
        ("/.%2E/secret", Refusal::Forbidden),
        ("/sub%2f..%2f..%2fsecret", Refusal::Forbidden),
        ("/sub%5c..", Refusal::Forbidden),
        ("/a\\b", Refusal::Forbidden),
        ("/a.txt%00.html", Refusal::Forbidden),
        ("/link-out", Refusal::Forbidden),
        ("/up/secret", Refusal::Forbidden),
        ("/missing", Refusal::NotFound),
        ("/empty", Refusal::NotFound),
        ("/a.txt/more", Refusal::NotFound),
        ("/%zz", Refusal::BadRequest),
        ("/%4", Refusal::BadRequest),
        ("/%FF", Refusal::BadRequest),
        ("a.txt", Refusal::BadRequest),
        ("ftp://host/a.txt", Refusal::BadRequest),
        ("*", Refusal::BadRequest),
    ] {
        assert_eq!(map_target(&s.root, target), Err(refusal), "{target}");
    }
}

#[test]
fn lab_3_thousands_of_generated_targets_get_chapter_9s_answer() {
    let s = site("generated");
    let pieces = [
        "/",
        "/",
        "a",
        ".txt",
        "a.txt",
        "sub",
        "b.txt",
        "index.html",
        ".",
        "..",
        "%2e",
        "%2E",
        "%2f",
        "%5c",
        "%00",
        "%",
        "%4",
        "%zz",
        "%61",
        "%C3%A9",
        "%FF",
        "\\",
        "?",
        "#",
        "link-in",
        "link-out",
        "up",
        "empty",
        "secret",
        "é",
        "zero.txt",
    ];
    let mut rng = Lcg(9);
    for i in 0..20_000 {
        let mut target = if rng.below(20) == 0 { "http://h".to_string() } else { String::new() };
        if rng.below(30) != 0 {
            target.push('/');
        }
        for _ in 0..rng.below(7) {
            target.push_str(pieces[rng.below(pieces.len())]);
        }
        let ours = map_target(&s.root, &target).map_err(Refusal::status);
        assert_eq!(ours, core_map(&s.root, &target), "target {i}: {target:?}");
    }
}

#[test]
fn lab_3_ranges_follow_rfc_9110() {
    let cases: [(Option<&str>, u64, Range); 16] = [
        (None, 100, Range::Whole),
        (Some("bytes=0-9"), 100, Range::Part { start: 0, end: 9 }),
        (Some(" bytes= 5 - 6 "), 100, Range::Part { start: 5, end: 6 }),
        (Some("bytes=90-"), 100, Range::Part { start: 90, end: 99 }),
        (Some("bytes=-10"), 100, Range::Part { start: 90, end: 99 }),
        (Some("bytes=-1000"), 100, Range::Part { start: 0, end: 99 }),
        (Some("bytes=50-5000"), 100, Range::Part { start: 50, end: 99 }),
        (Some("bytes=100-"), 100, Range::Unsatisfiable),
        (Some("bytes=-0"), 100, Range::Unsatisfiable),
        (Some("bytes=0-0"), 0, Range::Unsatisfiable),
        (Some("bytes=-5"), 0, Range::Unsatisfiable),
        (Some("bytes=0-1,5-6"), 100, Range::Whole),
        (Some("items=0-1"), 100, Range::Whole),
        (Some("bytes=9-1"), 100, Range::Whole),
        (Some("bytes=+1-2"), 100, Range::Whole),
        (Some("bytes=500-x"), 100, Range::Whole),
    ];
    for (header, len, want) in cases {
        assert_eq!(byte_range(header, len), want, "{header:?} of {len} bytes");
    }
    let pieces = ["bytes=", "bytes=", "0", "1", "5", "9", "10", "99999999999999999999", "-", "-", ",", " ", "x", "+"];
    let mut rng = Lcg(3);
    for i in 0..20_000 {
        let header: String = (0..rng.below(6)).map(|_| pieces[rng.below(pieces.len())]).collect();
        let len = [0, 1, 5, 10, 100][rng.below(5)];
        assert_eq!(byte_range(Some(&header), len), core_range(Some(&header), len), "case {i}: {header:?} of {len}");
    }
}

/// The lab's `serve` behind chapter 1's thread-per-connection loop.
struct Running {
    addr: SocketAddr,
    shutdown: Shutdown,
    _site: Site,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

fn running(name: &str) -> Running {
    let site = site(name);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let (stop, root) = (shutdown.clone(), Arc::new(site.root.clone()));
    std::thread::spawn(move || serve(listener, stop, ServerConfig::default(), move |s| lab_serve(s, &root)));
    Running { addr, shutdown, _site: site }
}

fn get(addr: SocketAddr, target: &str, headers: &str) -> HttpResponse {
    send(addr, format!("GET {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").as_bytes()).unwrap()
}

#[test]
fn lab_3_files_come_whole_or_in_ranges_and_errors_have_their_status() {
    let r = running("serve");
    let page = get(r.addr, "/", "");
    assert_eq!((page.status, page.body.as_slice()), (200, &b"<h1>home</h1>\n"[..]));
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("content-length"), Some("14"));
    assert_eq!(page.header("connection"), Some("close"));
    let data = get(r.addr, "/data.bin", "");
    assert!(data.status == 200 && data.body == big(), "2 MiB, byte for byte ({} bytes came)", data.body.len());
    let part = get(r.addr, "/a.txt", "Range: bytes=2-5\r\n");
    assert_eq!((part.status, part.body.as_slice()), (206, &b"2345"[..]));
    assert_eq!(part.header("content-range"), Some("bytes 2-5/10"));
    let tail = get(r.addr, "/data.bin", "Range: bytes=-100\r\n");
    assert!(tail.status == 206 && tail.body == big()[(2 << 20) - 100..]);
    let outside = get(r.addr, "/a.txt", "Range: bytes=10-\r\n");
    assert_eq!((outside.status, outside.header("content-range")), (416, Some("bytes */10")));
    assert_eq!(get(r.addr, "/missing", "").status, 404);
    let secret = get(r.addr, "/%2e%2e/secret", "");
    assert_eq!(secret.status, 403);
    assert!(!String::from_utf8_lossy(&secret.body).contains("secret"));
    assert_eq!(get(r.addr, "/%zz", "").status, 400);
    let post =
        send(r.addr, b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")));
    let broken = send(r.addr, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").unwrap();
    assert_eq!(broken.status, 400);
}

#[test]
fn lab_3_head_has_no_body_and_one_connection_carries_many_requests() {
    let r = running("keep");
    let stream = TcpStream::connect(r.addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for (method, target, status, body) in [
        ("GET", "/a.txt", 200, &b"0123456789"[..]),
        ("HEAD", "/a.txt", 200, &b""[..]),
        ("GET", "/missing", 404, &b"refused\n"[..]),
        ("GET", "/sub/b.txt", 200, &b"bee"[..]),
        ("HEAD", "/data.bin", 200, &b""[..]),
        ("GET", "/zero.txt", 200, &b""[..]),
    ] {
        (&stream).write_all(format!("{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
        let resp = read_response(&mut reader, method == "HEAD").unwrap();
        assert_eq!(resp.status, status, "{method} {target}");
        assert_eq!(resp.header("connection"), Some("keep-alive"), "{method} {target}");
        if status == 200 {
            assert_eq!(resp.body, body, "{method} {target}");
        }
        if (method, target) == ("HEAD", "/data.bin") {
            assert_eq!(resp.header("content-length"), Some("2097152"), "HEAD says how long the body would be");
        }
    }
}
