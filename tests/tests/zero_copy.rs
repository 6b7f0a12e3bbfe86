//! Chapter 9's binaries as a user would try them. `static_server` with curl: ranges,
//! conditional requests, HEAD, a large file byte for byte, and curl's own
//! `--path-as-is` attempts to leave the root. `l4_proxy` with no arguments
//! (its demo backends), `--copy`, and an algorithm it cannot use.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use tests::{binary, start};

/// A folder removed when the test ends.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn site() -> (Dir, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("lbs-static-e2e-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("www/docs")).unwrap();
    fs::write(dir.join("www/index.html"), "<h1>home</h1>\n").unwrap();
    fs::write(dir.join("www/docs/index.html"), "<h1>docs</h1>\n").unwrap();
    let big: Vec<u8> = (0..(3u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    fs::write(dir.join("www/big.bin"), &big).unwrap();
    fs::write(dir.join("secret.txt"), "do not serve").unwrap();
    (Dir(dir), big)
}

/// curl's output for `args`: (status, headers and body as curl wrote them).
fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--write-out", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let mut body = out.stdout;
    let cut = body.iter().rposition(|&b| b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&body[cut + 1..]).parse().unwrap();
    body.truncate(cut);
    (status, body)
}

#[test]
fn curl_sees_files_ranges_validators_and_nothing_outside_the_root() {
    let (dir, big) = site();
    let root = dir.0.join("www");
    let server = start(
        &binary("ch09-zero-copy", "static_server"),
        &["-p", "0", "--log-format", "json", "--root", root.to_str().unwrap()],
        "static server listening",
    );
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", server.addr.port());

    assert_eq!(curl(&[&url("/")]), (200, b"<h1>home</h1>\n".to_vec()));
    assert_eq!(curl(&[&url("/docs/")]), (200, b"<h1>docs</h1>\n".to_vec()));
    // A large file, byte for byte, and a range of it.
    let (status, body) = curl(&[&url("/big.bin")]);
    assert!(status == 200 && body == big, "{status}, {} bytes", body.len());
    let (status, body) = curl(&["-r", "1000-1999", &url("/big.bin")]);
    assert!(status == 206 && body == big[1000..2000], "{status}, {} bytes", body.len());
    let (status, _) = curl(&["-r", "99999999-", &url("/big.bin")]);
    assert_eq!(status, 416);
    // HEAD, and a conditional GET with the ETag it gave.
    let (status, head) = curl(&["-I", &url("/index.html")]);
    assert_eq!(status, 200);
    let head = String::from_utf8_lossy(&head).to_string();
    let etag = head.lines().find_map(|l| l.strip_prefix("ETag: ")).unwrap().trim();
    assert!(head.contains("Content-Length: 14"), "{head}");
    let (status, body) = curl(&["-H", &format!("If-None-Match: {etag}"), &url("/index.html")]);
    assert_eq!((status, body.len()), (304, 0));
    // Out of the root, the ways curl can be made to send it.
    for path in ["/../secret.txt", "/%2e%2e/secret.txt", "/docs/..%2f..%2fsecret.txt"] {
        let (status, body) = curl(&["--path-as-is", &url(path)]);
        assert_eq!(status, 403, "{path}: {}", String::from_utf8_lossy(&body));
    }
    assert_eq!(curl(&[&url("/nothing-here")]).0, 404);
}

#[test]
fn l4_proxy_with_no_arguments_relays_to_its_demo_backends_and_refuses_what_it_cannot_do() {
    let lb = start(&binary("ch09-zero-copy", "l4_proxy"), &["-p", "0", "--log-format", "json"], "l4 proxy listening");
    let said =
        lb.wait_for_line(std::time::Duration::from_secs(10), |l| l.contains("demo backends run in this process"));
    assert!(said.is_some(), "the demo backends are announced");
    let url = format!("http://127.0.0.1:{}/", lb.addr.port());
    let bodies: Vec<String> = (0..3).map(|_| String::from_utf8(curl(&[&url]).1).unwrap()).collect();
    assert!(bodies.iter().all(|b| b.starts_with("Hello from backend-")), "{bodies:?}");
    assert!(bodies[0] != bodies[1], "round robin: {bodies:?}");
    // --copy relays the same bytes.
    let copy = start(
        &binary("ch09-zero-copy", "l4_proxy"),
        &["-p", "0", "--log-format", "json", "--copy"],
        "l4 proxy listening",
    );
    let (status, body) = curl(&[&format!("http://127.0.0.1:{}/", copy.addr.port())]);
    assert!(status == 200 && body.starts_with(b"Hello from backend-"));
    // An algorithm that needs a request is refused with the reason.
    let out = tests::run(&binary("ch09-zero-copy", "l4_proxy"), &["-p", "0", "--algorithm", "sticky"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at layer 4 use rr, wrr, lc, iphash, random, wrandom or hash")
    );
}
