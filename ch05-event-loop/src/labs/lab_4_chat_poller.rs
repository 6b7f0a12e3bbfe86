//! # Lab 4 — a chat server on the Poller
//!
//! Chapter 1's lab 5.3 again, on one thread: the same protocol, but no
//! thread per client and no queue per client. Every socket is non-blocking
//! and the only place the thread sleeps is `Poller::wait`.
//!
//! The protocol, exactly as in lab 5.3:
//!
//! - Clients are numbered from 1 in the order they are accepted. A new
//!   client is in the room at once, and the first thing it receives is
//!   `welcome client-N\n`.
//! - A line `L` (up to [`MAX_LINE`] bytes, without its `\n`; a `\r` before
//!   it is dropped) from client N reaches every other client as
//!   `client-N: L\n`, in order. The sender gets nothing back.
//! - A longer line gets `ERR line too long\n` back to its sender only, and
//!   its bytes are skipped up to the next `\n`.
//! - **Private messages** (new in this lab): a line `/msg client-M TEXT`
//!   from client N reaches client M alone, as `client-N (private): TEXT\n`
//!   (M may be N). If no client M is connected, the sender alone gets
//!   `ERR no such client: client-M\n`. A `/msg ` line that is not exactly
//!   `client-`, digits, one space and a non-empty TEXT gets
//!   `ERR usage: /msg client-N text\n`. Nobody else hears of it either way.
//! - Each client has an outgoing buffer (bytes owed to it). A client whose
//!   buffer would grow past [`MAX_OWED`] bytes is disconnected; nobody else
//!   waits for it.
//! - [`run`] uses a [`Poller`](crate::poller::Poller) of `backend`, and
//!   returns once `shutdown` has fired (call `shutdown.wake_listener` with
//!   the listener's address so that firing wakes your `wait`).
//! - Never block: read until `WouldBlock`, write until `WouldBlock`, and
//!   only ask for writability while bytes are owed. Set `TCP_NODELAY` on
//!   accepted sockets: chat messages are small, and Nagle's algorithm with
//!   the reader's delayed ACK would add tens of milliseconds to each.
//!
//! Run it: `cargo test -p ch05-event-loop --no-default-features lab_4`.

use std::io;
use std::net::TcpListener;

use ch01_fundamentals::server::Shutdown;

use crate::poller::Mechanism;

/// Longest line relayed, in bytes.
pub const MAX_LINE: usize = 1024;
/// Most bytes owed to one client before it is disconnected.
pub const MAX_OWED: usize = 64 * 1024;

/// Runs the chat server until `shutdown` fires.
pub fn run(listener: TcpListener, backend: Mechanism, shutdown: Shutdown) -> io::Result<()> {
    // TODO: a Poller, a table of clients (socket, id, partial line, owed
    // bytes), and the loop: accept, read lines, broadcast, write.
    let _ = (listener, backend, shutdown);
    todo!("lab 4: the chat server on the Poller")
}
