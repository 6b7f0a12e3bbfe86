//! # Chapter 1 — sockets, from `socket()` to `close()`
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | socket, bind, listen, connect; SO_REUSEADDR, backlog, TCP_NODELAY | [`net`] |
//! | partial reads and writes, EINTR, copying with one fixed buffer | [`io`] |
//! | line protocols without unbounded buffers | [`lines`] |
//! | thread per connection, connection limit, clean shutdown | [`server`] |
//! | the echo server itself | [`echo`] |
//! | signals in a threaded server: block them, `sigwait` in one thread | `signals` (Unix) |
//! | raising the open-files limit | [`net::raise_fd_limit`] |
//! | log set-up shared by every binary (`RUST_LOG`, `--log-format`) | [`logging`] |
//! | calendar dates from Unix time and back (UTC) | [`date`] |
//! | the flags every server shares (`-H/--host`, `-p/--port`, `--log-format`) | [`cli`] |
//! | the chapter's labs (stubs, or reference solutions with `reference`) | [`labs`] |
//!
//! Binaries: `echo_server [PORT]` (the default) and `echo_client`.
#![deny(missing_docs)]

pub mod cli;
pub mod date;
pub mod echo;
pub mod io;
pub mod labs;
pub mod lines;
pub mod logging;
pub mod net;
pub mod server;
#[cfg(unix)]
pub mod signals;
