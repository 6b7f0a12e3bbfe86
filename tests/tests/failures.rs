//! One rule for whose fault a failure is, seen from outside: every
//! balancer (`load_balancer`, `advanced_lb`, `high_perf_lb`, `tokio_lb`, `pooled_lb`,
//! `rate_limited_lb`, `metrics_lb`, `hot_reload_lb`)
//! answers the same status for the same backend failure, and retries an
//! idempotent request, and only such a request, when the backend failed
//! before any byte of a response arrived.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backends::client;
use tests::{BALANCERS, binary, start};

fn balancer(which: (&str, &str, &str), backends: &[SocketAddr]) -> tests::Server {
    let (package, bin, message) = which;
    let specs: Vec<String> = backends.iter().map(SocketAddr::to_string).collect();
    let mut args = vec!["-p", "0", "--log-format", "json", "--response-timeout-ms", "300"];
    if bin != "load_balancer" {
        args.extend(["--health-check", "off"]);
    }
    for s in &specs {
        args.extend(["--backend", s.as_str()]);
    }
    start(&binary(package, bin), &args, message)
}

/// A backend that answers every request with `reply` and closes. Counts
/// the connections it accepted.
fn fake(reply: &'static [u8]) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            // Read the head (and whatever came with it), then answer.
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(reply);
        }
    });
    (addr, accepted)
}

fn status_of(addr: SocketAddr, raw: &[u8]) -> u16 {
    client::send(addr, raw).unwrap().status
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
const POST: &[u8] = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

#[test]
fn every_backend_refusing_is_a_503_from_every_balancer() {
    let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // dropped: refuses
    for which in BALANCERS {
        let lb = balancer(which, &[refused]);
        let r = client::get(lb.addr, "/").unwrap();
        assert_eq!(r.status, 503, "{}: {}", which.1, r.text());
        assert!(r.text().contains("no "), "{}: the body says why: {}", which.1, r.text());
    }
}

#[test]
fn an_invalid_response_is_a_502_from_every_balancer() {
    let (garbage, _) = fake(b"this is not HTTP\r\n\r\n");
    for which in BALANCERS {
        let lb = balancer(which, &[garbage]);
        let r = client::get(lb.addr, "/").unwrap();
        assert_eq!(r.status, 502, "{}: {}", which.1, r.text());
        assert!(r.text().contains("invalid"), "{}: the body says why: {}", which.1, r.text());
    }
}

#[test]
fn a_silent_backend_is_a_504_from_every_balancer() {
    // Bound and listening, never accepting: connects succeed (the backlog),
    // and no answer ever comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    for which in BALANCERS {
        let lb = balancer(which, &[addr]);
        let r = client::get(lb.addr, "/").unwrap();
        assert_eq!(r.status, 504, "{}: {}", which.1, r.text());
    }
}

#[test]
fn a_get_that_meets_a_backend_closing_without_answer_is_retried_elsewhere() {
    let good = backends::spawn_many(1).unwrap();
    for which in BALANCERS {
        let (closer, accepted) = fake(b"");
        let lb = balancer(which, &[closer, good[0].addr()]);
        for n in 0..6 {
            let status = status_of(lb.addr, GET);
            assert_eq!(status, 200, "{}: GET #{n} is retried on the healthy backend", which.1);
        }
        assert!(accepted.load(Ordering::SeqCst) >= 1, "{}: the closing backend was tried", which.1);
    }
}

#[test]
fn a_post_that_meets_a_backend_closing_without_answer_is_not_retried() {
    let good = backends::spawn_many(1).unwrap();
    for which in BALANCERS {
        let (closer, accepted) = fake(b"");
        let lb = balancer(which, &[closer, good[0].addr()]);
        // Round robin sends one of two fresh requests to each backend.
        let mut statuses: Vec<u16> = (0..2).map(|_| status_of(lb.addr, POST)).collect();
        statuses.sort_unstable();
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "{}: one POST went to the closing backend", which.1);
        assert_eq!(statuses, [200, 502], "{}: the POST it dropped is a 502, never sent twice", which.1);
    }
}

#[test]
fn a_body_cut_short_by_the_backend_ends_the_connection_and_is_logged_by_every_balancer() {
    let (cutter, _) = fake(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b");
    for which in BALANCERS {
        let lb = balancer(which, &[cutter]);
        let mut conn = client::connect(lb.addr).unwrap();
        conn.write_all(GET).unwrap();
        let mut got = Vec::new();
        // The head went out before the body broke off: the client gets the
        // 200 and then the connection ends early, never a second response.
        let _ = conn.read_to_end(&mut got);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200"), "{}: {text}", which.1);
        assert!(text.ends_with("only ten b"), "{}: nothing is added after the cut: {text:?}", which.1);
        let logged = lb.wait_for_line(Duration::from_secs(10), |l| l.contains("cut short"));
        assert!(logged.is_some(), "{}: the log says the response was cut short", which.1);
    }
}
