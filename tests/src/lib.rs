//! # End-to-end test support
//!
//! The tests in `tests/tests/` run the workspace's real binaries, as a
//! user would, and talk to them over real sockets. This library finds (and
//! if needed builds) a binary, starts it on port 0, learns the port it got
//! from its JSON log, and kills it when the test ends.
//!
//! This is test support: when something here cannot work (no cargo, a
//! binary that does not start), the test using it must fail, so `expect`
//! with a message saying what was assumed is the right tool.
#![deny(missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Every load balancer binary, as (package, binary, the message of the
/// log line that carries its address).
pub const BALANCERS: [(&str, &str, &str); 8] = [
    ("ch03-load-balancer", "load_balancer", "load balancer listening"),
    ("ch04-advanced", "advanced_lb", "advanced load balancer listening"),
    ("ch05-event-loop", "high_perf_lb", "high-performance load balancer listening"),
    ("ch05-event-loop", "tokio_lb", "tokio load balancer listening"),
    ("ch06-pooling", "pooled_lb", "pooled load balancer listening"),
    ("ch07-rate-limit", "rate_limited_lb", "rate-limited load balancer listening"),
    ("ch08-metrics", "metrics_lb", "metrics load balancer listening"),
    ("ch10-hot-reload", "hot_reload_lb", "hot reload load balancer listening"),
];

/// Longest wait for a started server to say where it listens.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The folder cargo builds into for this test run (`target/debug` or
/// `target/release`), found from the test executable's own path
/// (`target/<profile>/deps/<test>-<hash>`).
#[expect(clippy::expect_used, reason = "test support: a failure here is the test failing (see the module docs)")]
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    exe.parent().and_then(|deps| deps.parent()).map(PathBuf::from).expect("test binaries live in target/<profile>/deps")
}

/// The path of binary `bin` of package `package`, built first so that it
/// is never stale. `cargo build` is quick when nothing changed.
#[expect(clippy::expect_used, reason = "test support: a failure here is the test failing (see the module docs)")]
pub fn binary(package: &str, bin: &str) -> PathBuf {
    let profile_dir = profile_dir();
    let target_dir = profile_dir.parent().expect("target/<profile> has a parent").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin]).env("CARGO_TARGET_DIR", &target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "building {package}/{bin} failed");
    let path = profile_dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} was built", path.display());
    path
}

/// Runs a binary to completion (for `--help`, bad arguments, clients).
#[expect(clippy::expect_used, reason = "test support: a failure here is the test failing (see the module docs)")]
pub fn run(bin: &PathBuf, args: &[&str]) -> Output {
    Command::new(bin).args(args).stdin(Stdio::null()).output().expect("the binary starts")
}

/// A running server process; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log lines after the start-up line, as they arrive.
    pub log: Receiver<String>,
}

impl Server {
    /// The process id, for sending signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for a log line for which `pred` is true,
    /// returning it, or `None` if it did not come.
    pub fn wait_for_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if pred(&line) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits up to `timeout` for the process to exit by itself. A process
    /// that exits closes its stderr, which ends the log channel: that is
    /// the signal waited for, so nothing polls or sleeps.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(_) => continue, // a log line; keep draining
                Err(RecvTimeoutError::Disconnected) => return self.child.wait().ok(),
                Err(RecvTimeoutError::Timeout) => return None,
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `addr` field of a JSON log line whose message is `message`.
pub fn listening_addr(line: &str, message: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    if fields.get("message")?.as_str()? != message {
        return None;
    }
    fields.get("addr")?.as_str()?.parse().ok()
}

/// Starts `bin` with `args` (which should include `--log-format json` and
/// port 0) and waits for the log line `message` that carries its address.
#[expect(clippy::expect_used, reason = "test support: a failure here is the test failing (see the module docs)")]
pub fn start(bin: &PathBuf, args: &[&str], message: &str) -> Server {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    // Piped just above, so it is there.
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = channel();
    // Forward every log line, so the pipe never fills and blocks the server.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(addr) = listening_addr(&line, message) {
                    return Server { child, addr, log: rx };
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not log {message:?} in time; it said:\n{}", bin.display(), seen.join("\n"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_a_json_log_line() {
        let line = r#"{"timestamp":"t","level":"INFO","fields":{"message":"echo server listening","addr":"127.0.0.1:4242"},"target":"echo_server"}"#;
        assert_eq!(listening_addr(line, "echo server listening"), Some("127.0.0.1:4242".parse().unwrap()));
        assert_eq!(listening_addr(line, "something else"), None);
        assert_eq!(listening_addr("not json", "echo server listening"), None);
    }
}
