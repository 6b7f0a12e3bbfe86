//! Graded tests for the chapter 1 labs. Every test name starts with its
//! lab's id, so `cargo test -p ch01-fundamentals --no-default-features
//! lab_5_1` grades your lab 5.1 (without `--no-default-features`, this
//! repository tests the reference solution instead).
//!
//! Each test starts the lab's server on 127.0.0.1:0 and talks to it over a
//! real socket. Reads have a timeout, so an unfinished lab fails instead of
//! hanging.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown as Both, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ch01_fundamentals::labs::{
    CalcError, LogEntry, MAX_LINE, lab_1_stamped_echo, lab_2_calculator, lab_5_1_uppercase_echo, lab_5_2_time_server,
    lab_5_3_chat_server, lab_5_4_connection_log,
};
use ch01_fundamentals::net::{DEFAULT_BACKLOG, listen};
use ch01_fundamentals::server::{RunningServer, Shutdown, spawn_server};

const TIMEOUT: Duration = Duration::from_secs(10);

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Sends `lines`, closes the sending side, returns everything received.
fn exchange(addr: SocketAddr, input: &[u8]) -> String {
    let mut c = client(addr);
    c.write_all(input).unwrap();
    c.shutdown(Both::Write).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line
}

// ---------------------------------------------------------------- lab 1

#[test]
fn lab_1_stamp_is_the_utc_time_of_day_then_the_line() {
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    assert_eq!(lab_1_stamped_echo::stamp(b"hello", at(1_796_330_712)), b"[20:45:12] hello"); // 2026-12-03
    assert_eq!(lab_1_stamped_echo::stamp(b"", at(0)), b"[00:00:00] ");
    assert_eq!(lab_1_stamped_echo::stamp(b"x", at(86_399)), b"[23:59:59] x");
    assert_eq!(lab_1_stamped_echo::stamp(b"x", at(86_400 + 3_661)), b"[01:01:01] x", "the next day");
    assert_eq!(lab_1_stamped_echo::stamp(&[0xff, b'a'], at(60)), b"[00:01:00] \xffa", "bytes pass unchanged");
    assert_eq!(lab_1_stamped_echo::stamp(b"x", UNIX_EPOCH - Duration::from_secs(5)), b"[00:00:00] x", "before 1970");
}

#[test]
fn lab_1_every_line_is_answered_stamped_and_logged_with_its_sender() {
    use std::sync::{Arc, Mutex};
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let written = Arc::clone(&log);
    let server = spawn_server(local(), move |s| {
        let written = Arc::clone(&written);
        let fixed = || UNIX_EPOCH + Duration::from_secs(1_796_330_712);
        lab_1_stamped_echo::handle_client(s, &fixed, &move |line| written.lock().unwrap().push(line.to_string()))
    })
    .unwrap();
    let mut c = client(server.addr);
    let me = c.local_addr().unwrap();
    c.write_all(b"hello\r\n").unwrap();
    c.write_all(&vec![b'a'; MAX_LINE + 10]).unwrap();
    c.write_all(b"\nbye\n").unwrap();
    c.shutdown(Both::Write).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert_eq!(out, "[20:45:12] hello\nERR line too long\n[20:45:12] bye\n");
    drop(server); // every connection thread joined: the log is complete
    assert_eq!(
        *log.lock().unwrap(),
        vec![format!("{me} [20:45:12] hello"), format!("{me} ERR line too long"), format!("{me} [20:45:12] bye")]
    );
}

#[test]
fn lab_1_the_clock_is_read_for_each_line() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let ticks = Arc::new(AtomicU64::new(0));
    let t = Arc::clone(&ticks);
    let server = spawn_server(local(), move |s| {
        let t = Arc::clone(&t);
        let clock = move || UNIX_EPOCH + Duration::from_secs(3600 + t.fetch_add(1, Ordering::SeqCst));
        lab_1_stamped_echo::handle_client(s, &clock, &|_| {})
    })
    .unwrap();
    assert_eq!(exchange(server.addr, b"a\nb\nc\n"), "[01:00:00] a\n[01:00:01] b\n[01:00:02] c\n");
}

// ---------------------------------------------------------------- lab 5.1

#[test]
fn lab_5_1_uppercase_maps_only_ascii_letters() {
    assert_eq!(lab_5_1_uppercase_echo::uppercase(b"hello, World 42!"), b"HELLO, WORLD 42!");
    assert_eq!(lab_5_1_uppercase_echo::uppercase("été".as_bytes()), "éTé".as_bytes());
    assert_eq!(lab_5_1_uppercase_echo::uppercase(&[0, 0xff, b'z']), vec![0, 0xff, b'Z']);
}

#[test]
fn lab_5_1_server_answers_each_line_upper_cased() {
    let server = spawn_server(local(), lab_5_1_uppercase_echo::handle_client).unwrap();
    assert_eq!(exchange(server.addr, b"hello\r\nsecond line\nno newline"), "HELLO\nSECOND LINE\nNO NEWLINE\n");
}

#[test]
fn lab_5_1_long_line_gets_an_error_and_the_connection_goes_on() {
    let server = spawn_server(local(), lab_5_1_uppercase_echo::handle_client).unwrap();
    let mut input = vec![b'a'; MAX_LINE * 50];
    input.extend_from_slice(b"\nafter\n");
    assert_eq!(exchange(server.addr, &input), "ERR line too long\nAFTER\n");
}

#[test]
fn lab_5_1_clients_are_independent() {
    let server = spawn_server(local(), lab_5_1_uppercase_echo::handle_client).unwrap();
    let _silent = client(server.addr);
    let mut quitter = client(server.addr);
    quitter.write_all(b"half a li").unwrap();
    drop(quitter);
    assert_eq!(exchange(server.addr, b"still here\n"), "STILL HERE\n");
}

// ---------------------------------------------------------------- lab 5.2

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn lab_5_2_formats_the_epoch_and_ordinary_dates() {
    assert_eq!(lab_5_2_time_server::format_rfc3339(at(0)), "1970-01-01T00:00:00Z");
    assert_eq!(lab_5_2_time_server::format_rfc3339(at(1_700_000_000)), "2023-11-14T22:13:20Z");
    assert_eq!(lab_5_2_time_server::format_rfc3339(at(86_399)), "1970-01-01T23:59:59Z");
}

#[test]
fn lab_5_2_handles_leap_years_and_centuries() {
    assert_eq!(lab_5_2_time_server::format_rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
    assert_eq!(lab_5_2_time_server::format_rfc3339(at(4_107_542_400)), "2100-03-01T00:00:00Z");
    assert_eq!(lab_5_2_time_server::format_rfc3339(at(1_709_251_199)), "2024-02-29T23:59:59Z");
    assert_eq!(lab_5_2_time_server::format_rfc3339(at(253_402_300_799)), "9999-12-31T23:59:59Z");
}

#[test]
fn lab_5_2_drops_fractions_of_a_second() {
    let t = at(1_700_000_000) + Duration::from_millis(999);
    assert_eq!(lab_5_2_time_server::format_rfc3339(t), "2023-11-14T22:13:20Z");
}

#[test]
fn lab_5_2_server_sends_one_line_and_closes() {
    let server = spawn_server(local(), |s| lab_5_2_time_server::handle_client(s, at(1_700_000_000))).unwrap();
    let mut c = client(server.addr);
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert_eq!(out, "2023-11-14T22:13:20Z\n");
}

// ---------------------------------------------------------------- lab 5.3

struct Chat {
    addr: SocketAddr,
    shutdown: Shutdown,
    thread: Option<thread::JoinHandle<std::io::Result<()>>>,
}

impl Chat {
    fn start() -> Chat {
        let listener = listen(local(), DEFAULT_BACKLOG).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let s2 = shutdown.clone();
        let thread = thread::spawn(move || lab_5_3_chat_server::run(listener, s2));
        Chat { addr, shutdown, thread: Some(thread) }
    }

    /// Connects and waits for the welcome line: the client is then in the room.
    fn join(&self) -> (TcpStream, BufReader<TcpStream>, String) {
        let c = client(self.addr);
        let mut r = BufReader::new(c.try_clone().unwrap());
        let welcome = read_line(&mut r);
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

#[test]
fn lab_5_3_step_1_a_message_names_its_sender() {
    assert_eq!(&*lab_5_3_chat_server::message(7, b"hi there"), b"client-7: hi there\n");
    assert_eq!(&*lab_5_3_chat_server::message(1, b""), b"client-1: \n");
}

/// A connected pair of sockets: the server's side and the client's.
fn socket_pair() -> (TcpStream, TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = client(l.local_addr().unwrap());
    let (server, _) = l.accept().unwrap();
    (server, client)
}

#[test]
fn lab_5_3_step_2_the_room_numbers_welcomes_and_broadcasts_to_the_others() {
    use std::sync::mpsc::sync_channel;
    let room = lab_5_3_chat_server::Room::new();
    assert!(room.is_empty());
    let mut queues = Vec::new();
    let mut peers = Vec::new();
    for expected in 1..=3 {
        let (tx, rx) = sync_channel(8);
        let (server, peer) = socket_pair();
        assert_eq!(room.join(tx, server), expected);
        assert_eq!(&*rx.try_recv().unwrap(), format!("welcome client-{expected}\n").as_bytes(), "welcome first");
        queues.push(rx);
        peers.push(peer);
    }
    assert_eq!(room.len(), 3);
    room.broadcast(1, lab_5_3_chat_server::message(1, b"hello"));
    assert!(queues[0].try_recv().is_err(), "the sender gets nothing back");
    for q in &queues[1..] {
        assert_eq!(&*q.try_recv().unwrap(), b"client-1: hello\n");
    }
    room.leave(2);
    room.leave(2); // gone already: nothing happens
    assert_eq!(room.len(), 2);
    room.broadcast(3, lab_5_3_chat_server::message(3, b"bye"));
    assert!(queues[1].try_recv().is_err(), "a member that left hears nothing");
    assert_eq!(&*queues[0].try_recv().unwrap(), b"client-3: bye\n");
}

#[test]
fn lab_5_3_step_2_a_full_queue_cuts_its_member_off() {
    use std::sync::mpsc::sync_channel;
    let room = lab_5_3_chat_server::Room::new();
    let (tx, _slow_rx) = sync_channel(1); // room for the welcome only
    let (server, mut slow) = socket_pair();
    let slow_id = room.join(tx, server);
    let (tx, fast_rx) = sync_channel(8);
    let (server, _fast) = socket_pair();
    let fast_id = room.join(tx, server);
    room.broadcast(fast_id, lab_5_3_chat_server::message(fast_id, b"x"));
    assert_eq!(room.len(), 1, "the slow member was removed");
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "its socket was shut down: end of stream");
    room.broadcast(slow_id, lab_5_3_chat_server::message(slow_id, b"late"));
    assert_eq!(&*fast_rx.try_recv().unwrap(), b"welcome client-2\n");
    assert_eq!(&*fast_rx.try_recv().unwrap(), b"client-1: late\n", "the others carry on");
}

#[test]
fn lab_5_3_step_3_the_writer_writes_each_message_until_the_queue_closes() {
    use std::sync::mpsc::sync_channel;
    let (tx, rx) = sync_channel(8);
    let (server, mut peer) = socket_pair();
    let writer = thread::spawn(move || lab_5_3_chat_server::writer_loop(server, rx));
    for m in [&b"one\n"[..], b"two\n"] {
        tx.send(m.into()).unwrap();
    }
    drop(tx);
    writer.join().unwrap();
    peer.shutdown(Both::Write).unwrap();
    let mut got = String::new();
    peer.read_to_string(&mut got).unwrap();
    assert_eq!(got, "one\ntwo\n");
}

#[test]
fn lab_5_3_clients_are_welcomed_by_number() {
    let chat = Chat::start();
    let (_a, _ra, wa) = chat.join();
    let (_b, _rb, wb) = chat.join();
    assert_eq!(wa, "welcome client-1\n");
    assert_eq!(wb, "welcome client-2\n");
}

#[test]
fn lab_5_3_a_line_reaches_every_other_client_but_not_the_sender() {
    let chat = Chat::start();
    let (mut a, mut ra, _) = chat.join();
    let (mut b, mut rb, _) = chat.join();
    let (_c, mut rc, _) = chat.join();
    a.write_all(b"hello from a\n").unwrap();
    assert_eq!(read_line(&mut rb), "client-1: hello from a\n");
    assert_eq!(read_line(&mut rc), "client-1: hello from a\n");
    b.write_all(b"hi a\n").unwrap();
    // a's first message is from b: a never got its own line back.
    assert_eq!(read_line(&mut ra), "client-2: hi a\n");
    assert_eq!(read_line(&mut rc), "client-2: hi a\n");
}

#[test]
fn lab_5_3_long_line_is_refused_to_its_sender_only() {
    let chat = Chat::start();
    let (mut a, mut ra, _) = chat.join();
    let (_b, mut rb, _) = chat.join();
    let mut long = vec![b'x'; MAX_LINE + 1];
    long.extend_from_slice(b"\nshort\n");
    a.write_all(&long).unwrap();
    assert_eq!(read_line(&mut ra), "ERR line too long\n");
    assert_eq!(read_line(&mut rb), "client-1: short\n");
}

#[test]
fn lab_5_3_a_client_that_never_reads_does_not_block_the_others() {
    let chat = Chat::start();
    let (slow, _slow_reader, _) = chat.join();
    let (mut a, _ra, _) = chat.join();
    let (_b, mut rb, _) = chat.join();
    // 32 MiB of chat, far more than the slow client's socket buffers and
    // queue can hold, so the server must cut it off to keep going. The
    // reader keeps up (the sender waits for each batch to arrive), so only
    // the client that never reads may be dropped.
    const LINES: usize = 32 * 1024;
    const BATCH: usize = 64;
    let mut batch = Vec::new();
    for _ in 0..BATCH {
        batch.extend_from_slice(&[b'm'; 1023]);
        batch.push(b'\n');
    }
    let expected_len = "client-2: ".len() + 1023 + 1;
    for sent in (0..LINES).step_by(BATCH) {
        a.write_all(&batch).unwrap();
        for i in sent..sent + BATCH {
            let got = read_line(&mut rb);
            assert_eq!(got.len(), expected_len, "message {i} reached the reader whole");
        }
    }
    // The slow client was disconnected: what it has left ends (no timeout).
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut drained = Vec::new();
    let end = (&slow).read_to_end(&mut drained);
    assert!(end.is_ok(), "the slow client was disconnected: {end:?}");
    assert!(drained.len() < LINES * expected_len, "the slow client was cut off");
}

#[test]
fn lab_5_3_run_returns_after_shutdown() {
    let mut chat = Chat::start();
    let (_a, mut ra, _) = chat.join();
    chat.shutdown.trigger();
    let result = chat.thread.take().unwrap().join().unwrap();
    assert!(result.is_ok());
    let mut rest = String::new();
    assert_eq!(ra.read_to_string(&mut rest).unwrap_or(0), 0);
}

// ---------------------------------------------------------------- lab 5.4

fn temp_log(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lbs-lab-5-4-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("connections.log");
    let _ = std::fs::remove_file(&path);
    path
}

fn log_server(path: &std::path::Path) -> RunningServer {
    let log = std::sync::Arc::new(lab_5_4_connection_log::ConnectionLog::open(path).unwrap());
    spawn_server(local(), move |s| lab_5_4_connection_log::handle_client(s, &log)).unwrap()
}

#[test]
fn lab_5_4_formats_an_entry_exactly() {
    let entry = LogEntry {
        peer: "127.0.0.1:50312".parse().unwrap(),
        bytes_in: 12,
        bytes_out: 11,
        duration: Duration::from_micros(3_999),
    };
    assert_eq!(
        lab_5_4_connection_log::format_entry(&entry),
        "peer=127.0.0.1:50312 bytes_in=12 bytes_out=11 duration_ms=3\n"
    );
}

#[test]
fn lab_5_4_each_connection_is_logged_after_it_ends() {
    let path = temp_log("each");
    std::fs::write(&path, "earlier line\n").unwrap();
    let server = log_server(&path);
    let mut c = client(server.addr);
    let me = c.local_addr().unwrap();
    c.write_all(b"hello world\n").unwrap();
    c.shutdown(Both::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"hello world\n", "it still echoes");
    let log = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "appended, not truncated: {log:?}");
    assert_eq!(lines[0], "earlier line");
    let prefix = format!("peer={me} bytes_in=12 bytes_out=12 duration_ms=");
    let ms = lines[1].strip_prefix(&prefix);
    assert!(ms.is_some_and(|ms| ms.parse::<u64>().is_ok()), "{:?} is {prefix:?} and a number", lines[1]);
}

#[test]
fn lab_5_4_many_clients_give_whole_lines() {
    let path = temp_log("many");
    let server = log_server(&path);
    let addr = server.addr;
    let clients: Vec<_> = (0..16)
        .map(|i| {
            thread::spawn(move || {
                let payload = vec![b'x'; 1000 * (i + 1)];
                assert_eq!(exchange(addr, &payload).len(), payload.len());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let log = std::fs::read_to_string(&path).unwrap();
    let mut sizes: Vec<u64> = log
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 4, "a whole line: {l:?}");
            f[1].trim_start_matches("bytes_in=").parse().unwrap()
        })
        .collect();
    sizes.sort();
    assert_eq!(sizes, (1..=16).map(|i| 1000 * i).collect::<Vec<u64>>());
}

// ---------------------------------------------------------------- lab 2

#[test]
fn lab_2_evaluates_the_four_operations() {
    use lab_2_calculator::evaluate;
    assert_eq!(evaluate("ADD 5 3"), Ok(8));
    assert_eq!(evaluate("SUB 5 8"), Ok(-3));
    assert_eq!(evaluate("mul -4 6"), Ok(-24));
    assert_eq!(evaluate("DIV 7 2"), Ok(3));
    assert_eq!(evaluate("Div -7 2"), Ok(-3));
    assert_eq!(evaluate("  ADD\t1   2 "), Ok(3));
}

#[test]
fn lab_2_reports_each_kind_of_error() {
    use lab_2_calculator::evaluate;
    assert_eq!(evaluate(""), Err(CalcError::Usage));
    assert_eq!(evaluate("ADD 1"), Err(CalcError::Usage));
    assert_eq!(evaluate("ADD 1 2 3"), Err(CalcError::Usage));
    assert_eq!(evaluate("POW 2 3"), Err(CalcError::UnknownOperation("POW".into())));
    assert_eq!(evaluate("ADD five 3"), Err(CalcError::NotANumber("five".into())));
    assert_eq!(evaluate("ADD 5 3.5"), Err(CalcError::NotANumber("3.5".into())));
    assert_eq!(evaluate("DIV 1 0"), Err(CalcError::DivisionByZero));
    assert_eq!(evaluate("ADD 9223372036854775807 1"), Err(CalcError::Overflow));
    assert_eq!(evaluate("MUL 4611686018427387904 2"), Err(CalcError::Overflow));
    assert_eq!(evaluate("DIV -9223372036854775808 -1"), Err(CalcError::Overflow));
    assert_eq!(evaluate("ADD 99999999999999999999 1"), Err(CalcError::NotANumber("99999999999999999999".into())));
}

#[test]
fn lab_2_respond_formats_results_and_errors() {
    use lab_2_calculator::respond;
    assert_eq!(respond(b"ADD 5 3"), "8\n");
    assert_eq!(respond(b"DIV 1 0"), "ERR division by zero\n");
    assert_eq!(respond(b"FOO 1 2"), "ERR unknown operation: FOO\n");
    assert_eq!(respond(&[0xff, 0xfe]), "ERR usage: OP A B (OP is ADD, SUB, MUL or DIV)\n");
}

#[test]
fn lab_2_server_keeps_the_connection_after_errors() {
    let server = spawn_server(local(), lab_2_calculator::handle_client).unwrap();
    let mut input = b"ADD 5 3\nDIV 1 0\n".to_vec();
    input.extend(vec![b'9'; MAX_LINE * 4]);
    input.extend_from_slice(b"\nbogus\nMUL 6 7\n");
    assert_eq!(
        exchange(server.addr, &input),
        "8\nERR division by zero\nERR line too long\nERR usage: OP A B (OP is ADD, SUB, MUL or DIV)\n42\n"
    );
}
