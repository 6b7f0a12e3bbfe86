//! The access log: one line per request, with everything an operator
//! asks of a request afterwards: its id, the client, what it asked for,
//! which backend answered, the status, the bytes each way, and how long
//! the connect, the first byte and the whole took.
//!
//! Two places it can go:
//!
//! - **the program's log** (`--access-log -`): an event with target
//!   `access` through `tracing`, in the log's format (text or JSON), so
//!   `RUST_LOG=info,access=off` silences it (and only it);
//! - **a file** (`--access-log FILE`): lines written by a thread of their
//!   own, so the loop never waits for a disk. The loop hands each line
//!   over a bounded channel; when the writer falls behind by more than
//!   [`BACKLOG`] lines, new lines are dropped and counted
//!   (`lb_access_log_dropped_total`) rather than slowing every request.
//!   SIGHUP reopens the file: the way `logrotate` tells a program that
//!   its log was moved (`postrotate kill -HUP ...`). SIGUSR1 is taken by
//!   the statistics report and SIGUSR2 by the capstone's binary upgrade;
//!   SIGHUP means "reload", and reopening the logs is part of a reload
//!   (nginx reopens them on a reload too).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ch01_fundamentals::logging::LogFormat;
use ch05_event_loop::lb::observe::{Finished, Outcome};
use serde_json::json;

/// Lines waiting for the writer at most; past it, lines are dropped.
pub const BACKLOG: usize = 64 * 1024;

/// What the writer thread is told.
#[derive(Debug)]
enum Message {
    Line(String),
    Reopen,
}

/// Where the lines go.
#[derive(Debug, Clone)]
enum Sink {
    Log,
    File { to_writer: SyncSender<Message>, dropped: Arc<AtomicU64> },
}

/// Asks the file's writer to reopen it (SIGHUP), from any thread.
#[derive(Debug, Clone)]
pub struct Reopen(SyncSender<Message>);

impl Reopen {
    /// Reopens the file at its path before the next line.
    pub fn reopen(&self) {
        // A full channel means the writer is busy: it will get there.
        let _ = self.0.try_send(Message::Reopen);
    }
}

// ANCHOR: access_log
/// The access log.
#[derive(Debug)]
pub struct AccessLog {
    sink: Sink,
    format: LogFormat,
    /// Request ids: this process's prefix and a count.
    prefix: u32,
    next: u64,
}
// ANCHOR_END: access_log

impl AccessLog {
    /// Lines through the program's log (`tracing`, target `access`).
    pub fn to_log() -> Self {
        Self { sink: Sink::Log, format: LogFormat::Text, prefix: id_prefix(), next: 0 }
    }

    /// Lines appended to `path` in `format` by a writer thread; the file is
    /// created if missing. Returns the log, the handle that reopens the
    /// file, and the count of lines dropped.
    pub fn to_file(path: &Path, format: LogFormat) -> io::Result<(Self, Reopen, Arc<AtomicU64>)> {
        let file = open(path)?;
        let (to_writer, from_loop) = sync_channel(BACKLOG);
        let dropped = Arc::new(AtomicU64::new(0));
        let path = path.to_path_buf();
        // This thread may start before the program's signal thread, so it
        // would not inherit the mask that keeps signals away from every
        // other thread; a SIGHUP delivered here would end the process.
        ch01_fundamentals::signals::spawn_masked("access-log", move || write_lines(&path, file, &from_loop))?;
        let reopen = Reopen(to_writer.clone());
        let sink = Sink::File { to_writer, dropped: Arc::clone(&dropped) };
        Ok((Self { sink, format, prefix: id_prefix(), next: 0 }, reopen, dropped))
    }

    /// The same log for another loop of the program (chapter 10's
    /// workers): the same file or target, and request ids of its own: the
    /// prefix's top byte is changed by the loop's index (up to 256 loops),
    /// so two loops never hand out the same id.
    pub fn for_worker(&self, index: usize) -> Self {
        let prefix = self.prefix ^ ((index as u32 & 0xff) << 24);
        Self { sink: self.sink.clone(), format: self.format, prefix, next: 0 }
    }

    /// The next request id: 16 hex digits, unique within this process
    /// and unlikely to repeat across restarts.
    fn id(&mut self) -> String {
        self.next += 1;
        format!("{:08x}{:08x}", self.prefix, self.next)
    }

    // ANCHOR: record
    /// Logs one request.
    pub fn record(&mut self, r: &Finished<'_>) {
        let id = self.id();
        let (to_writer, dropped) = match &self.sink {
            Sink::Log => {
                let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
                tracing::info!(target: "access", %id, client = %r.peer, method = r.method, target = r.target,
                    backend = r.backend.map_or("-", |(_, addr)| addr), status = r.status,
                    outcome = outcome_name(r.outcome), bytes_up = r.bytes_up, bytes_down = r.bytes_down,
                    connect_ms = ms(r.timings.connect), first_byte_ms = ms(r.timings.first_byte),
                    total_ms = r.timings.total.as_secs_f64() * 1000.0, "access");
                return;
            }
            Sink::File { to_writer, dropped } => (to_writer, dropped),
        };
        let line = line(self.format, &id, r, SystemTime::now());
        match to_writer.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    // ANCHOR_END: record
}

// ANCHOR: line
/// One request's line in the file, in `format`, at `now`: one line
/// whatever the client sent (a target with a newline or a quote is
/// escaped, never a second line or a forged field).
pub fn line(format: LogFormat, id: &str, r: &Finished<'_>, now: SystemTime) -> String {
    let backend = r.backend.map_or("-", |(_, addr)| addr);
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let (connect, first_byte) = (ms(r.timings.connect), ms(r.timings.first_byte));
    let total = r.timings.total.as_secs_f64() * 1000.0;
    let outcome = outcome_name(r.outcome);
    match format {
        LogFormat::Json => json!({
            "time": rfc3339(now),
            "id": id,
            "client": r.peer.to_string(),
            "method": r.method,
            "target": r.target,
            "backend": backend,
            "status": r.status,
            "outcome": outcome,
            "bytes_up": r.bytes_up,
            "bytes_down": r.bytes_down,
            "connect_ms": connect,
            "first_byte_ms": first_byte,
            "total_ms": total,
        })
        .to_string(),
        LogFormat::Text => {
            let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
            format!(
                "{} id={id} client={} method={} target={} backend={backend} status={} outcome={outcome} bytes_up={} bytes_down={} connect_ms={} first_byte_ms={} total_ms={total:.3}",
                rfc3339(now),
                r.peer,
                quoted(r.method),
                quoted(r.target),
                r.status,
                r.bytes_up,
                r.bytes_down,
                opt(connect),
                opt(first_byte),
            )
        }
    }
}
// ANCHOR_END: line

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Served => "served",
        Outcome::Answered => "answered",
        Outcome::Failed => "failed",
    }
}

/// A value as the text format writes it: bare when it is plain, quoted
/// with `"` and `\` escaped (and anything unprintable as `\x..`) when not.
/// A target is the client's bytes: it must not be able to forge a field
/// or a line.
fn quoted(value: &str) -> String {
    let plain =
        !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b'=');
    if plain { value.to_string() } else { format!("\"{}\"", value.escape_default()) }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The writer thread: lines to the file, flushed whenever the channel is
/// empty (so a quiet balancer's lines are on disk at once, and a busy
/// one's are written in batches); the file reopened when asked.
fn write_lines(path: &Path, file: File, from_loop: &Receiver<Message>) {
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    while let Ok(message) = from_loop.recv() {
        let mut next = Some(message);
        while let Some(message) = next.take() {
            match message {
                Message::Line(line) => {
                    if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.write_all(b"\n")) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot write the access log");
                    }
                }
                Message::Reopen => {
                    let _ = out.flush();
                    match open(path) {
                        Ok(file) => {
                            out = BufWriter::with_capacity(64 * 1024, file);
                            tracing::info!(path = %path.display(), "access log reopened");
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "cannot reopen the access log; still writing to the old file");
                        }
                    }
                }
            }
            // Another message already waiting: no flush yet.
            next = from_loop.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the access log");
        }
    }
    let _ = out.flush();
}

/// A prefix for this process's request ids: its start time and pid mixed.
fn id_prefix() -> u32 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
    nanos.rotate_left(16) ^ std::process::id()
}

// ANCHOR: rfc3339
/// `2026-12-03T16:20:01.123Z`: a time in UTC, to the millisecond.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = ch01_fundamentals::date::civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}
// ANCHOR_END: rfc3339

#[cfg(test)]
mod tests {
    use std::io::Read;

    use ch05_event_loop::lb::observe::Timings;

    use super::*;

    #[test]
    fn times_are_written_in_utc() {
        let at = |s: u64, ms: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_796_314_801, 123), "2026-12-03T16:20:01.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn a_target_cannot_forge_a_field_or_a_line() {
        assert_eq!(quoted("/a/b?c"), "/a/b?c");
        assert_eq!(quoted("/x status=200"), "\"/x status=200\"");
        assert_eq!(quoted("/x\nforged"), "\"/x\\nforged\"");
        assert_eq!(quoted("/\"q\""), "\"/\\\"q\\\"\"");
        assert_eq!(quoted(""), "\"\"");
    }

    fn request(target: &str) -> Finished<'_> {
        Finished {
            peer: "127.0.0.2:5000".parse().unwrap(),
            method: "GET",
            target,
            backend: Some((0, "127.0.0.1:9001")),
            status: 200,
            outcome: Outcome::Served,
            bytes_up: 78,
            bytes_down: 21,
            timings: Timings {
                connect: Some(Duration::from_micros(250)),
                first_byte: Some(Duration::from_millis(2)),
                total: Duration::from_millis(3),
            },
        }
    }

    #[test]
    fn lines_reach_the_file_and_a_reopen_follows_a_rotation() {
        let dir = std::env::temp_dir().join(format!("lbs-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let (mut log, reopen, dropped) = AccessLog::to_file(&path, LogFormat::Json).unwrap();
        log.record(&request("/one"));
        // Rotated: the file moved away, a reopen makes a new one.
        let rotated = dir.join("access.log.1");
        // The first line is written before the rename is seen: wait for it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).map_or(0, |m| m.len()) == 0 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        std::fs::rename(&path, &rotated).unwrap();
        reopen.reopen();
        log.record(&request("/two"));
        drop(log);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).map_or(0, |m| m.len()) == 0 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let mut old = String::new();
        File::open(&rotated).unwrap().read_to_string(&mut old).unwrap();
        let mut new = String::new();
        File::open(&path).unwrap().read_to_string(&mut new).unwrap();
        let old: serde_json::Value = serde_json::from_str(old.trim()).unwrap();
        assert_eq!(
            (old["target"].as_str(), old["status"].as_u64(), old["bytes_up"].as_u64()),
            (Some("/one"), Some(200), Some(78))
        );
        assert_eq!(old["first_byte_ms"].as_f64(), Some(2.0));
        assert_eq!(old["id"].as_str().map(str::len), Some(16));
        assert!(new.contains("\"target\":\"/two\""), "{new}");
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
