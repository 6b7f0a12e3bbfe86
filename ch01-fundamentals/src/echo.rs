//! The echo server: every byte a client sends comes straight back.
//!
//! Echo is the "hello world" of network servers because it exercises the
//! whole socket lifecycle with no protocol in the way: accept, read until
//! end of stream, write back everything read, close.

use std::io;
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::time::Instant;

use crate::io::copy_stream;
use crate::server::{ServeStats, ServerConfig, Shutdown, serve};

/// Size of each connection's one buffer. Memory per client is this much,
/// whatever the client sends: the echo server never holds a whole message.
pub const BUFFER_SIZE: usize = 16 * 1024;

// ANCHOR: handle_client
/// Serves one client: copy its bytes back until it closes its sending
/// side, then close ours (a *half-close* in each direction).
pub fn handle_client(stream: TcpStream) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    let started = Instant::now();
    // `&TcpStream` implements both Read and Write, so one socket can be
    // read and written through two shared references: no second file
    // descriptor is needed.
    let (mut reader, mut writer) = (&stream, &stream);
    let mut buf = vec![0u8; BUFFER_SIZE];
    let result = copy_stream(&mut reader, &mut writer, &mut buf);
    // Tell the client we are done; errors here only mean it is gone already.
    let _ = stream.shutdown(Direction::Write);
    match &result {
        Ok(copied) => tracing::info!(
            %peer, bytes = copied.bytes, reads = copied.reads,
            ms = started.elapsed().as_millis() as u64, "client closed"
        ),
        Err(e) => tracing::info!(%peer, error = %e, "client connection failed"),
    }
    result.map(|_| ())
}
// ANCHOR_END: handle_client

// ANCHOR: run
/// Runs the echo server on `listener` until `shutdown` fires.
pub fn run(listener: TcpListener, shutdown: Shutdown) -> io::Result<ServeStats> {
    run_with(listener, shutdown, ServerConfig::default())
}

/// [`run`] with explicit limits.
pub fn run_with(listener: TcpListener, shutdown: Shutdown, config: ServerConfig) -> io::Result<ServeStats> {
    serve(listener, shutdown, config, handle_client)
}
// ANCHOR_END: run

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::spawn_server;
    use std::io::{Read, Write};
    use std::thread;
    use std::time::Duration;

    fn echo_server() -> crate::server::RunningServer {
        spawn_server("127.0.0.1:0".parse().unwrap(), handle_client).unwrap()
    }

    #[test]
    fn echoes_and_half_closes() {
        let server = echo_server();
        let mut c = TcpStream::connect(server.addr).unwrap();
        c.write_all(b"hello\n").unwrap();
        c.shutdown(Direction::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"hello\n");
    }

    #[test]
    fn a_megabyte_without_newlines_round_trips_through_a_fixed_buffer() {
        let server = echo_server();
        let mut c = TcpStream::connect(server.addr).unwrap();
        let data: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
        let mut writer = c.try_clone().unwrap();
        let expected = data.clone();
        // Write and read at once, or both sides' buffers fill and stall.
        let t = thread::spawn(move || {
            writer.write_all(&data).unwrap();
            writer.shutdown(Direction::Write).unwrap();
        });
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        t.join().unwrap();
        assert_eq!(back, expected);
    }

    #[test]
    fn a_silent_client_does_not_block_another() {
        let server = echo_server();
        let _silent = TcpStream::connect(server.addr).unwrap();
        let mut dropped = TcpStream::connect(server.addr).unwrap();
        dropped.write_all(b"half a li").unwrap();
        drop(dropped); // disconnect mid-line
        let mut c = TcpStream::connect(server.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"ok").unwrap();
        let mut b = [0u8; 2];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ok");
    }
}
