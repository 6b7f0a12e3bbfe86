//! Graded tests for the chapter 5 labs. Every test name starts with its
//! lab's id: `cargo test -p ch05-event-loop --no-default-features lab_8_1`
//! grades your lab 8.1 (plain `cargo test` here grades the reference).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ch01_fundamentals::server::Shutdown;
use ch05_event_loop::labs::lab_4_chat_poller::{self, MAX_LINE};
use ch05_event_loop::labs::lab_8_1_idle_timeout::IdleTracker;
use ch05_event_loop::poller::{Interest, Mechanism, Poller, Trigger};

const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- lab 8.1

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn lab_8_1_deadlines_and_the_wait_before_them() {
    let t0 = Instant::now();
    let mut t = IdleTracker::new(ms(100));
    assert_eq!(t.timeout(t0), None, "nothing tracked: wait without limit");
    t.touch(1, t0);
    t.touch(2, t0 + ms(30));
    assert_eq!(t.len(), 2);
    assert_eq!(t.timeout(t0), Some(ms(100)));
    assert_eq!(t.timeout(t0 + ms(40)), Some(ms(60)));
    assert_eq!(t.timeout(t0 + ms(500)), Some(Duration::ZERO), "overdue: do not wait");
}

#[test]
fn lab_8_1_touching_restarts_the_idle_period() {
    let t0 = Instant::now();
    let mut t = IdleTracker::new(ms(100));
    t.touch(1, t0);
    t.touch(2, t0);
    t.touch(1, t0 + ms(90)); // activity on 1
    assert_eq!(t.expired(t0 + ms(100)), [2]);
    assert!(t.expired(t0 + ms(150)).is_empty(), "1 is not idle yet");
    assert_eq!(t.expired(t0 + ms(190)), [1]);
    assert!(t.is_empty());
}

#[test]
fn lab_8_1_expired_come_earliest_first_once_and_removed_ones_never() {
    let t0 = Instant::now();
    let mut t = IdleTracker::new(ms(10));
    t.touch(5, t0 + ms(3));
    t.touch(6, t0 + ms(1));
    t.touch(7, t0 + ms(2));
    t.touch(8, t0);
    t.remove(8);
    assert_eq!(t.expired(t0 + ms(20)), [6, 7, 5]);
    assert!(t.expired(t0 + ms(30)).is_empty());
    assert_eq!(t.len(), 0);
}

#[test]
fn lab_8_1_closes_the_silent_connection_in_a_real_loop() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut busy = TcpStream::connect(addr).unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    let (busy_server, _) = listener.accept().unwrap();
    let (silent_server, _) = listener.accept().unwrap();
    let mut servers = [Some(busy_server), Some(silent_server)];
    let mut poller = Poller::new(Mechanism::best()).unwrap();
    let mut tracker = IdleTracker::new(ms(100));
    for (token, s) in servers.iter().enumerate() {
        let s = s.as_ref().unwrap();
        s.set_nonblocking(true).unwrap();
        poller.register(s, token, Interest::READABLE, Trigger::Level).unwrap();
        tracker.touch(token, Instant::now());
    }
    let mut events = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while servers[1].is_some() {
        assert!(Instant::now() < deadline, "the silent connection was never closed");
        // The busy client sends a byte before every wait, so it is never
        // idle; the silent one sends nothing and must expire.
        busy.write_all(b"x").unwrap();
        let timeout = tracker.timeout(Instant::now());
        poller.wait(&mut events, timeout).unwrap();
        for e in &events {
            if let Some(s) = servers[e.token].as_mut() {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
                tracker.touch(e.token, Instant::now());
            }
        }
        for token in tracker.expired(Instant::now()) {
            if let Some(s) = servers[token].take() {
                poller.deregister(&s).unwrap();
            }
        }
    }
    assert!(servers[0].is_some(), "the busy connection was kept");
    silent.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(silent.read(&mut b).unwrap(), 0, "the silent client sees the close");
}

// ---------------------------------------------------------------- lab 4

struct Chat {
    addr: SocketAddr,
    shutdown: Shutdown,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Chat {
    fn start(backend: Mechanism) -> Chat {
        let listener = ch01_fundamentals::net::listen("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let s2 = shutdown.clone();
        let thread = thread::spawn(move || lab_4_chat_poller::run(listener, backend, s2));
        Chat { addr, shutdown, thread: Some(thread) }
    }

    fn join(&self) -> (TcpStream, BufReader<TcpStream>, String) {
        let c = TcpStream::connect(self.addr).unwrap();
        c.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let welcome = line(&mut r);
        (c, r, welcome)
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    let _ = r.read_line(&mut s);
    s
}

fn backends() -> Vec<Mechanism> {
    Mechanism::available().to_vec()
}

#[test]
fn lab_4_welcomes_and_broadcasts_to_the_others_only() {
    for backend in backends() {
        let chat = Chat::start(backend);
        let (mut a, mut ra, wa) = chat.join();
        let (mut b, mut rb, wb) = chat.join();
        let (_c, mut rc, wc) = chat.join();
        assert_eq!(
            (wa.as_str(), wb.as_str(), wc.as_str()),
            ("welcome client-1\n", "welcome client-2\n", "welcome client-3\n")
        );
        a.write_all(b"hello\r\n").unwrap();
        assert_eq!(line(&mut rb), "client-1: hello\n", "{backend:?}");
        assert_eq!(line(&mut rc), "client-1: hello\n");
        b.write_all(b"hi a\n").unwrap();
        assert_eq!(line(&mut ra), "client-2: hi a\n", "a never got its own line");
    }
}

#[test]
fn lab_4_a_private_message_reaches_one_client_only() {
    for backend in backends() {
        let chat = Chat::start(backend);
        let (mut a, mut ra, _) = chat.join();
        let (mut b, mut rb, _) = chat.join();
        let (_c, mut rc, _) = chat.join();
        a.write_all(b"/msg client-2 psst\n").unwrap();
        assert_eq!(line(&mut rb), "client-1 (private): psst\n", "{backend:?}");
        // c heard nothing: its next line is b's broadcast; a got nothing back.
        b.write_all(b"/msg client-2 note to self\nhello all\n").unwrap();
        assert_eq!(line(&mut rb), "client-2 (private): note to self\n");
        assert_eq!(line(&mut rc), "client-2: hello all\n");
        assert_eq!(line(&mut ra), "client-2: hello all\n");
    }
}

#[test]
fn lab_4_a_private_message_to_nobody_or_malformed_is_an_error_to_its_sender() {
    for backend in backends() {
        let chat = Chat::start(backend);
        let (mut a, mut ra, _) = chat.join();
        let (mut b, mut rb, _) = chat.join();
        for (sent, answer) in [
            ("/msg client-9 hi\n", "ERR no such client: client-9\n"),
            ("/msg bob hi\n", "ERR usage: /msg client-N text\n"),
            ("/msg client-2\n", "ERR usage: /msg client-N text\n"),
            ("/msg client-2 \n", "ERR usage: /msg client-N text\n"),
            ("/msg client-x2 hi\n", "ERR usage: /msg client-N text\n"),
        ] {
            a.write_all(sent.as_bytes()).unwrap();
            assert_eq!(line(&mut ra), answer, "{sent:?} {backend:?}");
        }
        // b heard none of it: its next line is a's broadcast.
        a.write_all(b"done\n").unwrap();
        assert_eq!(line(&mut rb), "client-1: done\n");
        b.write_all(b"/msg client-1 ok\n").unwrap();
        assert_eq!(line(&mut ra), "client-2 (private): ok\n");
    }
}

#[test]
fn lab_4_a_long_line_is_refused_to_its_sender_only() {
    let chat = Chat::start(Mechanism::best());
    let (mut a, mut ra, _) = chat.join();
    let (_b, mut rb, _) = chat.join();
    let mut long = vec![b'x'; MAX_LINE * 3];
    long.extend_from_slice(b"\nshort\n");
    a.write_all(&long).unwrap();
    assert_eq!(line(&mut ra), "ERR line too long\n");
    assert_eq!(line(&mut rb), "client-1: short\n");
}

#[test]
fn lab_4_a_client_that_never_reads_is_cut_off_and_blocks_nobody() {
    let chat = Chat::start(Mechanism::best());
    let (slow, _slow_reader, _) = chat.join();
    let (mut a, _ra, _) = chat.join();
    let (_b, mut rb, _) = chat.join();
    const LINES: usize = 16 * 1024;
    const BATCH: usize = 16;
    let mut batch = Vec::new();
    for _ in 0..BATCH {
        batch.extend_from_slice(&[b'm'; 1000]);
        batch.push(b'\n');
    }
    let expected = "client-2: ".len() + 1001;
    for sent in (0..LINES).step_by(BATCH) {
        a.write_all(&batch).unwrap();
        for i in sent..sent + BATCH {
            assert_eq!(line(&mut rb).len(), expected, "message {i} arrived whole");
        }
    }
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut drained = Vec::new();
    let end = (&slow).read_to_end(&mut drained);
    assert!(end.is_ok(), "the slow client was disconnected: {end:?}");
    assert!(drained.len() < LINES * expected);
}

#[test]
fn lab_4_a_leaving_client_is_forgotten_and_run_returns_on_shutdown() {
    let mut chat = Chat::start(Mechanism::best());
    let (a, _ra, _) = chat.join();
    let (mut b, rb, _) = chat.join();
    drop(a);
    b.write_all(b"anyone?\n").unwrap();
    let (_c, mut rc, wc) = chat.join();
    assert_eq!(wc, "welcome client-3\n");
    b.write_all(b"now\n").unwrap();
    // c may or may not have joined before "anyone?" was relayed; either
    // way "now" arrives, and only from client 2.
    let first = line(&mut rc);
    let got = if first == "client-2: anyone?\n" { line(&mut rc) } else { first };
    assert_eq!(got, "client-2: now\n");
    chat.shutdown.trigger();
    assert!(chat.thread.take().unwrap().join().unwrap().is_ok());
    drop(rb);
}
