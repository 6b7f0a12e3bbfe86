//! Helpers shared by the chapter 2 tests: proxies on port 0, raw clients,
//! and misbehaving upstream servers.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ch01_fundamentals::server::{RunningServer, spawn_server};
use ch02_proxy::forward::ForwardConfig;
use ch02_proxy::reverse::ReverseConfig;

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A reverse proxy in front of `backend`, configured by `tweak`.
pub fn reverse_proxy(backend: SocketAddr, tweak: impl FnOnce(&mut ReverseConfig)) -> RunningServer {
    let mut config = ReverseConfig::new(backend.to_string());
    tweak(&mut config);
    spawn_server(local(), move |s| ch02_proxy::reverse::handle_client(s, &config)).unwrap()
}

/// A forward proxy configured by `tweak`.
pub fn forward_proxy(tweak: impl FnOnce(&mut ForwardConfig)) -> RunningServer {
    let mut config = ForwardConfig::default();
    tweak(&mut config);
    spawn_server(local(), move |s| ch02_proxy::forward::handle_client(s, &config)).unwrap()
}

/// Sends `raw`, reads until the server closes, returns it as text.
pub fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code at the start of a raw response.
pub fn status_of(response: &str) -> u16 {
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A server that accepts and then runs `behave` on each connection.
pub fn upstream(behave: impl Fn(TcpStream) + Send + Sync + 'static) -> RunningServer {
    spawn_server(local(), move |s| {
        behave(s);
        Ok(())
    })
    .unwrap()
}

/// An address whose connect attempts hang: a listener with a backlog of
/// zero whose one queue slot is taken (Linux then drops further SYNs).
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: TcpListener,
    _filler: TcpStream,
}

pub fn blackhole() -> Blackhole {
    let listener = ch01_fundamentals::net::listen(local(), 0).unwrap();
    let addr = listener.local_addr().unwrap();
    let filler = TcpStream::connect(addr).unwrap();
    Blackhole { addr, _listener: listener, _filler: filler }
}
