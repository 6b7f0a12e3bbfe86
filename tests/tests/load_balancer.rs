//! The real `load_balancer` binary: `--demo`, round robin as a user sees
//! it with curl, statistics on SIGUSR1, and a clean stop on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::process::Command;
use std::time::Duration;

use tests::{binary, start};

fn curl(url: &str) -> String {
    let out = Command::new("curl").args(["--silent", "--show-error", "--max-time", "20", url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn demo_then_six_curls_show_the_three_backends_in_turn() {
    let bin = binary("ch03-load-balancer", "load_balancer");
    let lb = start(&bin, &["--demo", "-p", "0", "--log-format", "json"], "load balancer listening");
    let url = format!("http://localhost:{}/", lb.addr.port());
    let answers: Vec<String> = (0..6).map(|_| curl(&url)).collect();
    let expected: Vec<String> =
        [1, 2, 3, 1, 2, 3].iter().map(|i| format!("Hello from backend-{i} (GET /)\n")).collect();
    assert_eq!(answers, expected);
}

#[cfg(unix)]
#[test]
fn sigusr1_prints_statistics_and_sigterm_stops_with_a_final_report() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let bin = binary("ch03-load-balancer", "load_balancer");
    let mut lb = start(&bin, &["--demo", "-p", "0", "--log-format", "json"], "load balancer listening");
    let url = format!("http://127.0.0.1:{}/", lb.addr.port());
    for _ in 0..3 {
        curl(&url);
    }
    let pid = Pid::from_raw(lb.pid() as i32);
    kill(pid, Signal::SIGUSR1).unwrap();
    let line = lb.wait_for_line(Duration::from_secs(10), |l| l.starts_with("total requests:"));
    assert_eq!(line.as_deref(), Some("total requests:   3"));
    kill(pid, Signal::SIGTERM).unwrap();
    let status = lb.wait_exit(Duration::from_secs(10)).expect("it stops on SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_backend_arguments_are_refused_with_a_reason() {
    let bin = binary("ch03-load-balancer", "load_balancer");
    let out = tests::run(&bin, &["--backend", "127.0.0.1:9001:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("weight must be from 1 to 1000"), "{err}");
    let help = tests::run(&bin, &["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("[default: 8080]") && text.contains("127.0.0.1:9001"), "{text}");
}
