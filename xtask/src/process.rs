//! Running a child process with a time limit: the one helper every xtask
//! command uses, so that no step of CI can hang.

use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Waits for `child` for at most `limit`: its status, or `None` after
/// killing it (and reaping it) when the limit passed.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> io::Result<Option<ExitStatus>> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `cmd` to the end with its output captured: its status, stdout and
/// stderr, or `None` for the status when it ran past `limit` and was killed.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Result<(Option<ExitStatus>, String, String)> {
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {program}"))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    // Both pipes are drained on threads so that neither fills up and
    // blocks the child.
    let out = thread::spawn(move || io::read_to_string(stdout).unwrap_or_default());
    let err = thread::spawn(move || io::read_to_string(stderr).unwrap_or_default());
    let status = wait_bounded(&mut child, limit)?;
    Ok((status, out.join().unwrap_or_default(), err.join().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_runs_to_the_end_or_is_killed_at_the_limit() {
        let mut echo = Command::new("sh");
        echo.args(["-c", "echo out; echo err >&2"]);
        let (status, out, err) = run_bounded(echo, Duration::from_secs(30)).unwrap();
        assert!(status.unwrap().success());
        assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
        let mut sleeper = Command::new("sleep");
        sleeper.arg("30");
        let (status, _, _) = run_bounded(sleeper, Duration::from_millis(100)).unwrap();
        assert!(status.is_none(), "killed at the limit");
    }
}
