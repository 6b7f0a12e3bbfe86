//! The one-thread echo server on real sockets: correctness, a thousand
//! concurrent clients, backpressure, idle timeouts and shutdown.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{Read, Write};
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ch01_fundamentals::server::Shutdown;
use ch05_event_loop::echo::{EchoConfig, EchoStats, run};
use ch05_event_loop::poller::Mechanism;

struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    thread: Option<JoinHandle<std::io::Result<EchoStats>>>,
}

impl Server {
    fn start(config: EchoConfig) -> Server {
        // A deep accept queue: a thousand clients connect faster than one
        // thread accepts, and a full queue drops SYNs (1 s retransmits).
        let listener = ch01_fundamentals::net::listen("127.0.0.1:0".parse().unwrap(), 4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let s2 = shutdown.clone();
        let thread = thread::spawn(move || run(listener, config, s2));
        Server { addr, shutdown, thread: Some(thread) }
    }

    fn stop(mut self) -> EchoStats {
        self.shutdown.trigger();
        self.thread.take().unwrap().join().unwrap().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn backends() -> Vec<Mechanism> {
    Mechanism::available().to_vec()
}

fn client(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

#[test]
fn echoes_and_half_closes_with_every_backend() {
    for backend in backends() {
        let server = Server::start(EchoConfig { backend, ..EchoConfig::default() });
        let mut c = client(server.addr);
        c.write_all(b"hello, reactor\n").unwrap();
        c.shutdown(Direction::Write).unwrap();
        let mut back = String::new();
        c.read_to_string(&mut back).unwrap();
        assert_eq!(back, "hello, reactor\n", "{backend:?}");
        let stats = server.stop();
        assert_eq!((stats.accepted, stats.bytes), (1, 15));
    }
}

#[test]
fn a_thousand_concurrent_clients_on_one_thread() {
    let _ = ch01_fundamentals::net::raise_fd_limit();
    let server = Server::start(EchoConfig::default());
    let clients: Vec<TcpStream> = (0..1000).map(|_| client(server.addr)).collect();
    for (i, mut c) in clients.iter().enumerate() {
        c.write_all(format!("client {i}\n").as_bytes()).unwrap();
    }
    for (i, mut c) in clients.iter().enumerate() {
        let expected = format!("client {i}\n");
        let mut got = vec![0u8; expected.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, expected.as_bytes());
    }
    drop(clients);
    assert_eq!(server.stop().accepted, 1000);
}

#[test]
fn a_client_that_does_not_read_is_not_read_either() {
    // 4 MiB sent before reading anything: the server stops reading once
    // 16 KiB are owed and the kernel buffers fill, then resumes as we read.
    let server = Server::start(EchoConfig::default());
    let c = client(server.addr);
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let mut writer = c.try_clone().unwrap();
    let t = thread::spawn(move || {
        writer.write_all(&data).unwrap();
        writer.shutdown(Direction::Write).unwrap();
    });
    let mut back = Vec::new();
    (&c).read_to_end(&mut back).unwrap();
    t.join().unwrap();
    assert!(back == expected, "all 4 MiB came back in order");
}

#[test]
fn idle_connections_are_closed_and_busy_ones_kept() {
    let server = Server::start(EchoConfig { idle_timeout: Duration::from_millis(100), ..EchoConfig::default() });
    let mut idle = client(server.addr);
    let mut buf = [0u8; 1];
    // The server closes the silent client: we read end of stream.
    assert_eq!(idle.read(&mut buf).unwrap(), 0);
    let stats = server.stop();
    assert_eq!(stats.idle_closed, 1);
}

#[test]
fn shutdown_stops_the_loop_with_clients_connected() {
    let server = Server::start(EchoConfig::default());
    let mut c = client(server.addr);
    c.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap(); // served: the loop knows this client
    let stats = server.stop();
    assert_eq!(stats.accepted, 1, "the wake-up connection is not served");
}
