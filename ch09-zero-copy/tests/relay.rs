//! The relay on real TCP connections over loopback, both ways, for each
//! way of moving bytes: splice through a 64 KiB pipe, splice through a
//! one-page pipe (where a pipe fills by slots, not bytes), copy, and
//! copy that turns into splice after [`CUTOVER`] bytes.
//! The cases that break relays: both directions at once, a half-close
//! that must travel through, thousands of one-byte writes, a slow reader,
//! a reset in the middle, silence, and no descriptor left behind.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

mod common;
use common::pattern;

use ch09_zero_copy::relay::{CUTOVER, Direction, Kind, Totals, Wait, relay_pair};

const KINDS: [Kind; 4] = [Kind::Splice(64 * 1024), Kind::Splice(4096), Kind::Copy(16 * 1024), Kind::Auto(64 * 1024)];
const IDLE: Duration = Duration::from_secs(20);

/// A client and a server, with the relay between them on its own thread.
struct Setup {
    client: TcpStream,
    server: TcpStream,
    relay: JoinHandle<io::Result<Totals>>,
}

fn setup(kind: Kind, idle: Duration) -> Setup {
    let front = TcpListener::bind("127.0.0.1:0").unwrap();
    let back = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(front.local_addr().unwrap()).unwrap();
    let (a, _) = front.accept().unwrap();
    let b = TcpStream::connect(back.local_addr().unwrap()).unwrap();
    let (server, _) = back.accept().unwrap();
    for s in [&client, &server] {
        s.set_read_timeout(Some(IDLE)).unwrap();
    }
    let relay = thread::spawn(move || relay_pair(&a, &b, kind, idle));
    Setup { client, server, relay }
}

fn read_all(mut s: &TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn both_directions_at_once_arrive_byte_for_byte() {
    for kind in KINDS {
        let Setup { client, server, relay } = setup(kind, IDLE);
        let (up, down) = (pattern(8 << 20, 1), pattern(5 << 20, 2));
        let (up2, down2) = (up.clone(), down.clone());
        let server_side = thread::spawn(move || {
            let writer = server.try_clone().unwrap();
            let sending = thread::spawn(move || {
                (&writer).write_all(&down2).unwrap();
                writer.shutdown(Shutdown::Write).unwrap();
            });
            let got = read_all(&server);
            sending.join().unwrap();
            got
        });
        let writer = client.try_clone().unwrap();
        let sending = thread::spawn(move || {
            (&writer).write_all(&up2).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let got_down = read_all(&client);
        sending.join().unwrap();
        let got_up = server_side.join().unwrap();
        assert!(got_up == up, "{kind:?}: the client's {} bytes arrived as {}", up.len(), got_up.len());
        assert!(got_down == down, "{kind:?}: the server's {} bytes arrived as {}", down.len(), got_down.len());
        let totals = relay.join().unwrap().unwrap();
        assert_eq!(totals, Totals { a_to_b: up.len() as u64, b_to_a: down.len() as u64 }, "{kind:?}");
    }
}

#[test]
fn a_half_close_travels_through_and_the_other_side_can_still_answer() {
    for kind in KINDS {
        let Setup { client, server, relay } = setup(kind, IDLE);
        (&client).write_all(b"hello").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        // The server sees the end of the request (the half-close came
        // through), then answers on its still-open half.
        assert_eq!(read_all(&server), b"hello", "{kind:?}");
        (&server).write_all(b"bye").unwrap();
        drop(server);
        assert_eq!(read_all(&client), b"bye", "{kind:?}");
        assert_eq!(relay.join().unwrap().unwrap(), Totals { a_to_b: 5, b_to_a: 3 });
    }
}

#[test]
fn thousands_of_one_byte_writes_through_a_one_page_pipe() {
    for kind in KINDS {
        let Setup { client, server, relay } = setup(kind, IDLE);
        client.set_nodelay(true).unwrap();
        let sent = pattern(20_000, 3);
        let bytes = sent.clone();
        let writer = thread::spawn(move || {
            for b in &bytes {
                (&client).write_all(std::slice::from_ref(b)).unwrap();
            }
            client.shutdown(Shutdown::Write).unwrap();
            client
        });
        assert!(read_all(&server) == sent, "{kind:?}");
        drop(server);
        drop(writer.join().unwrap());
        assert_eq!(relay.join().unwrap().unwrap().a_to_b, sent.len() as u64);
    }
}

#[test]
fn a_slow_reader_gets_everything_and_the_writer_waits_for_it() {
    for kind in KINDS {
        let Setup { client, server, relay } = setup(kind, IDLE);
        let sent = pattern(3 << 20, 4);
        let bytes = sent.clone();
        let writer = thread::spawn(move || {
            (&client).write_all(&bytes).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            client
        });
        // A reader that takes 7 bytes at a time for its first 70,000:
        // every buffer on the way fills, and the relay must wait, not spin
        // or drop.
        let mut got = vec![0u8; 70_000];
        for chunk in got.chunks_mut(7) {
            (&server).read_exact(chunk).unwrap();
        }
        got.extend(read_all(&server));
        assert!(got == sent, "{kind:?}: {} of {} bytes", got.len(), sent.len());
        drop(server);
        drop(writer.join().unwrap());
        relay.join().unwrap().unwrap();
    }
}

#[test]
fn a_reset_in_the_middle_ends_the_relay_with_an_error() {
    for kind in KINDS {
        let Setup { client, server, relay } = setup(kind, IDLE);
        let writer = thread::spawn(move || {
            let chunk = pattern(64 * 1024, 5);
            // Until the reset reaches back to us.
            for _ in 0..1_000 {
                if (&client).write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let mut some = [0u8; 1000];
        (&server).read_exact(&mut some).unwrap();
        socket_reset(server);
        let err = relay.join().unwrap().expect_err("a reset is the relay's end");
        assert_ne!(err.kind(), io::ErrorKind::TimedOut, "{kind:?}: the reset was noticed, not waited out: {err}");
        writer.join().unwrap();
    }
}

/// Closes `s` with a reset (RST) instead of a FIN: linger 0.
fn socket_reset(s: TcpStream) {
    socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
}

#[test]
fn silence_for_the_idle_time_ends_the_relay() {
    let Setup { client, server, relay } = setup(Kind::Splice(65536), Duration::from_millis(50));
    let err = relay.join().unwrap().expect_err("nothing moved");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    drop((client, server));
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn relays_leave_no_descriptor_behind() {
    let before = open_descriptors();
    for kind in KINDS {
        for _ in 0..20 {
            let Setup { client, server, relay } = setup(kind, IDLE);
            (&client).write_all(b"ping").unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            assert_eq!(read_all(&server), b"ping");
            drop(server);
            assert_eq!(read_all(&client), b"");
            relay.join().unwrap().unwrap();
        }
    }
    // Other tests run in parallel threads of this process and open their
    // own: allow for them, but not for 60 relays' worth of pipes (120).
    let after = open_descriptors();
    assert!(after < before + 40, "{before} descriptors before, {after} after");
}

#[test]
fn auto_copies_small_transfers_and_splices_past_the_cutover_without_losing_a_byte() {
    let (front, back) = (TcpListener::bind("127.0.0.1:0").unwrap(), TcpListener::bind("127.0.0.1:0").unwrap());
    let mut client = TcpStream::connect(front.local_addr().unwrap()).unwrap();
    let (from, _) = front.accept().unwrap();
    let to = TcpStream::connect(back.local_addr().unwrap()).unwrap();
    let (server, _) = back.accept().unwrap();
    server.set_read_timeout(Some(IDLE)).unwrap();
    from.set_nonblocking(true).unwrap();
    to.set_nonblocking(true).unwrap();
    let mut direction = Direction::new(Kind::Auto(64 * 1024)).unwrap();
    let data = pattern(CUTOVER as usize * 3, 9);
    let reading = thread::spawn(move || read_all(&server));
    let mut sent = 0;
    let mut spliced_from = None;
    // Feed it in 4 KiB pieces, pumping after each: the switch happens
    // between two pieces, with the buffer empty.
    for piece in data.chunks(4096) {
        client.write_all(piece).unwrap();
        sent += piece.len();
        while direction.moved() < sent as u64 {
            match direction.pump(&from, &to).unwrap() {
                Wait::Readable | Wait::More => {}
                Wait::Writable => thread::yield_now(),
                Wait::Done => panic!("the source has not ended"),
            }
        }
        if direction.splicing() && spliced_from.is_none() {
            spliced_from = Some(direction.moved());
        }
    }
    client.shutdown(Shutdown::Write).unwrap();
    while direction.pump(&from, &to).unwrap() != Wait::Done {}
    to.shutdown(Shutdown::Write).unwrap();
    let start = spliced_from.expect("it switched to splice");
    assert!((CUTOVER..CUTOVER + 8192).contains(&start), "switched after {start} bytes");
    assert!(reading.join().unwrap() == data, "every byte, in order, across the switch");
}
