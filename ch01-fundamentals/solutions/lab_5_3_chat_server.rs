//! # Lab 5.3 — a chat server (reference solution)
//!
//! One reader (the connection's handler thread) and one writer thread per
//! client, joined by a bounded queue. Broadcasting only ever *tries* to
//! enqueue, so a client that stops reading fills its own queue and is cut
//! off, instead of blocking the sender and, through it, everybody. The
//! task is in `src/labs/lab_5_3_chat_server.rs`.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown as Both, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::io::write_all;
use crate::lines::{BoundedLines, Line};
use crate::server::{ServerConfig, Shutdown, serve};

/// Messages waiting for one client before it counts as too slow.
pub const QUEUE_LEN: usize = 256;

type Message = Arc<[u8]>;

/// A member of the room: its queue and a handle to cut it off.
struct Member {
    queue: SyncSender<Message>,
    socket: TcpStream,
}

#[derive(Default)]
struct Room {
    members: Mutex<HashMap<u64, Member>>,
    next_id: AtomicU64,
}

impl Room {
    fn members(&self) -> MutexGuard<'_, HashMap<u64, Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `msg` for everyone but `from`; drops members that are too slow.
    fn broadcast(&self, from: u64, msg: Message) {
        let mut members = self.members();
        let mut gone = Vec::new();
        for (&id, member) in members.iter() {
            if id == from {
                continue;
            }
            match member.queue.try_send(Arc::clone(&msg)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(client = id, "queue full, disconnecting slow client");
                    let _ = member.socket.shutdown(Both::Both);
                    gone.push(id);
                }
                Err(TrySendError::Disconnected(_)) => gone.push(id),
            }
        }
        for id in gone {
            members.remove(&id);
        }
    }
}

/// Writes queued messages to one client until its queue is dropped.
fn writer_loop(mut socket: TcpStream, queue: Receiver<Message>) {
    for msg in queue {
        if write_all(&mut socket, &msg).is_err() {
            return; // Gone: the reader side will notice and leave.
        }
    }
}

fn handle_client(room: &Room, stream: TcpStream) -> io::Result<()> {
    let id = room.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, rx) = sync_channel::<Message>(QUEUE_LEN);
    // The welcome goes in the queue first, so it is the first thing the
    // client reads; joining the room comes before the writer starts, so a
    // client that has read its welcome is sure to be in the room.
    let welcome: Message = format!("welcome client-{id}\n").into_bytes().into();
    tx.try_send(welcome).map_err(|_| io::Error::other("fresh queue is full"))?;
    let own = tx.clone();
    room.members().insert(id, Member { queue: tx, socket: stream.try_clone()? });
    let writer_socket = stream.try_clone()?;
    let writer =
        thread::Builder::new().name(format!("chat-writer-{id}")).spawn(move || writer_loop(writer_socket, rx))?;

    let mut lines = BoundedLines::new(stream, super::MAX_LINE);
    let result = loop {
        match lines.read_line() {
            Ok(Line::Text(text)) => {
                let mut msg = format!("client-{id}: ").into_bytes();
                msg.extend_from_slice(&text);
                msg.push(b'\n');
                room.broadcast(id, msg.into());
            }
            Ok(Line::TooLong) => {
                if own.try_send(Arc::from(&b"ERR line too long\n"[..])).is_err() {
                    break Ok(());
                }
            }
            Ok(Line::Eof) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // Leave: dropping both senders ends the writer once it has flushed.
    room.members().remove(&id);
    drop(own);
    let _ = writer.join();
    result
}

/// Runs the chat server on `listener` until `shutdown` fires.
pub fn run(listener: TcpListener, shutdown: Shutdown) -> io::Result<()> {
    let room = Arc::new(Room::default());
    serve(listener, shutdown, ServerConfig::default(), move |stream| handle_client(&room, stream))?;
    Ok(())
}
