//! Logging set-up shared by every binary of the workspace.
//!
//! Programs log through `tracing`. `RUST_LOG` chooses what is shown
//! (`info` by default; e.g. `RUST_LOG=debug` or
//! `RUST_LOG=ch01_fundamentals=debug,info`), and `--log-format json`
//! switches to one JSON object per line for log collectors.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber, writing to stderr. Calling it twice is
/// harmless (the second call does nothing), which keeps tests simple.
pub fn init(format: LogFormat) {
    let registry = tracing_subscriber::registry().with(filter());
    let _ = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogFormat::Json => {
            registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).try_init()
        }
    };
}

/// What `RUST_LOG` asks to be shown (info and above by default).
fn filter() -> Targets {
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("warning: ignoring RUST_LOG={spec:?}: {e}");
            Targets::new().with_default(LevelFilter::INFO)
        }),
        _ => Targets::new().with_default(LevelFilter::INFO),
    }
}

// ANCHOR: log_file
/// A log file that can be opened again: after logrotate has moved it
/// away, [`reopen`](LogFile::reopen) starts a new file under the same
/// name, and no line is lost or split between the two (each line is
/// written under the lock, whole).
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl LogFile {
    /// Opens (creates, or appends to) the log file at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self { path: path.to_path_buf(), file: Arc::new(Mutex::new(append(path)?)) })
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file at the same path again (a new one if it was moved).
    pub fn reopen(&self) -> io::Result<()> {
        let fresh = append(&self.path)?;
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// One log line's writer: the line is collected, then written whole.
#[derive(Debug)]
pub struct LineWriter {
    file: Arc<Mutex<File>>,
    line: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        // Nowhere to report a failed log write; the line is lost, not the program.
        let _ = file.write_all(&self.line);
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { file: Arc::clone(&self.file), line: Vec::with_capacity(256) }
    }
}

/// Installs the global subscriber, writing to `file` instead of stderr.
pub fn init_to_file(format: LogFormat, file: LogFile) {
    let registry = tracing_subscriber::registry().with(filter());
    let _ = match format {
        LogFormat::Text => {
            registry.with(tracing_subscriber::fmt::layer().with_writer(file).with_ansi(false)).try_init()
        }
        LogFormat::Json => registry.with(tracing_subscriber::fmt::layer().json().with_writer(file)).try_init(),
    };
}
// ANCHOR_END: log_file
