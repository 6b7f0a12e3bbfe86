//! The socket calls, each one non-blocking: read until `WouldBlock` (or a
//! bound), write until `WouldBlock`, start a connect and learn how it
//! ended. Nothing here knows about HTTP or about the connection's state.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use socket2::{Domain, Protocol, Socket, Type};

use super::buffer::Buf;

/// The result of reading one socket as far as allowed.
pub(super) struct Got {
    pub(super) bytes: usize,
    pub(super) eof: bool,
}

/// Reads from `stream` into `scratch`, at most `room` bytes, until
/// `WouldBlock`, end of stream or `room` is used up; hands each piece to
/// `take`. Errors other than `WouldBlock` are returned.
pub(super) fn read_some(
    stream: &mut TcpStream,
    scratch: &mut [u8],
    mut room: usize,
    mut take: impl FnMut(&[u8]) -> Result<(), (u16, &'static str)>,
) -> Result<Result<Got, (u16, &'static str)>, io::Error> {
    let mut got = Got { bytes: 0, eof: false };
    while room > 0 {
        let want = room.min(scratch.len());
        let Some(window) = scratch.get_mut(..want) else { break };
        match stream.read(window) {
            Ok(0) => {
                got.eof = true;
                break;
            }
            Ok(n) => {
                got.bytes += n;
                room -= n;
                if let Err(e) = take(window.get(..n).unwrap_or_default()) {
                    return Ok(Err(e));
                }
                // A short read means the kernel had no more for now. With
                // level triggering we may stop here and save the read that
                // would only say WouldBlock: if more arrives, the next wait
                // reports it. (Edge-triggered code must read on until
                // WouldBlock, or it may never hear about the rest.)
                if n < want {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(got))
}

/// Writes as much of `buf` as the socket takes now; returns whether any
/// byte went out.
pub(super) fn flush(stream: &mut TcpStream, buf: &mut Buf) -> io::Result<bool> {
    let mut wrote = false;
    while !buf.is_empty() {
        match stream.write(buf.bytes()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf.consume(n);
                wrote = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(wrote)
}

// ANCHOR: connect
/// Starts a non-blocking connect: the call returns at once, usually with
/// EINPROGRESS; the socket becomes *writable* when the handshake is done,
/// and SO_ERROR then says whether it worked.
pub(crate) fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// Whether a connect that reported writable succeeded (SO_ERROR).
pub(super) fn connect_result(stream: &TcpStream) -> io::Result<()> {
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
// ANCHOR_END: connect
