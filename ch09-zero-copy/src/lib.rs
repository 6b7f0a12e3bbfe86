//! # Chapter 9 — zero-copy I/O
//!
//! A relay written with `read` and `write` carries every byte across the
//! boundary between the kernel and the program twice: into our buffer,
//! then out of it. A proxy that never looks at the bytes does not need
//! them in its memory at all. Linux can move them between descriptors
//! inside the kernel: `sendfile(2)` from a file to a socket, `splice(2)`
//! from a socket into a pipe and from the pipe into another socket.
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | a pipe as a kernel buffer of a chosen size | [`pipe`] |
//! | one direction of a relay: splice through a pipe, or copy through a buffer | [`relay`] |
//! | a whole connection pair relayed both ways, with half-close | [`relay::relay_pair`] |
//! | a file sent to a socket with `sendfile`, or read and written | [`sendfile`] |
//! | which file a request names, which part, whether the client's copy is good | [`files`] |
//! | `static_server`: requests answered from files, every connection on chapter 5's poller | [`server`] |
//! | `l4_proxy`: connection pairs relayed on chapter 5's poller, one thread | [`l4`] |
//! | the lab: a file server of your own (the C curriculum's Lab 3) | [`labs`] |
//!
#![deny(missing_docs)]
#![deny(clippy::indexing_slicing)]

pub mod files;
pub mod l4;
pub mod labs;
#[cfg(target_os = "linux")]
pub mod pipe;
pub mod relay;
pub mod sendfile;
pub mod server;

/// The next client waiting on a non-blocking `listener`, or `None` when
/// there is none for now. An error other than "none waiting" (out of
/// descriptors, say) is logged and also ends this turn: the client stays
/// in the queue and the next turn of the loop tries again.
pub(crate) fn accept_next(listener: &std::net::TcpListener) -> Option<(std::net::TcpStream, std::net::SocketAddr)> {
    loop {
        match listener.accept() {
            Ok(c) => return Some(c),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                return None;
            }
        }
    }
}
