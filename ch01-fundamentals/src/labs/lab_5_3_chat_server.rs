//! # Lab 5.3 — a chat server
//!
//! Every line a client sends goes to every *other* connected client.
//!
//! The protocol, exactly:
//!
//! - Clients are numbered from 1 in the order they connect. When client N
//!   has joined the room, the server sends it `welcome client-N\n`. A client
//!   that has read its welcome line is in the room: every message sent
//!   after that reaches it.
//! - A line `L` from client N reaches every other client as
//!   `client-N: L\n`, in the order client N sent them. The sender gets
//!   nothing back.
//! - A line longer than [`MAX_LINE`](super::MAX_LINE) gets
//!   `ERR line too long\n` back to its sender only.
//! - A client that does not read must not slow anybody down: each client has
//!   a queue of at most [`QUEUE_LEN`] messages waiting to be written to it
//!   (written by a thread of its own); when a message finds a client's queue
//!   full, that client is disconnected and the others carry on.
//! - [`run`] returns once `shutdown` has fired, after every connection has
//!   ended. Hint: [`serve`](crate::server::serve) does the accepting and the
//!   shutting down; your handler joins the room, relays, and leaves it.
//!
//! Run it: `cargo test -p ch01-fundamentals --no-default-features lab_5_3`.

use std::io;
use std::net::TcpListener;

use crate::server::Shutdown;

/// Messages waiting for one client before it counts as too slow.
pub const QUEUE_LEN: usize = 256;

/// Runs the chat server on `listener` until `shutdown` fires.
pub fn run(listener: TcpListener, shutdown: Shutdown) -> io::Result<()> {
    // TODO: a shared room (client id -> sender of its bounded queue and a
    // socket handle to disconnect it), and a handler per connection.
    let _ = (listener, shutdown);
    todo!("lab 5.3: the chat server")
}
