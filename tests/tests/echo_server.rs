//! The real `echo_server` and `echo_client` binaries, end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use tests::{binary, run, start};

fn echo_server() -> tests::Server {
    let bin = binary("ch01-fundamentals", "echo_server");
    start(&bin, &["-p", "0", "--log-format", "json"], "echo server listening")
}

#[test]
fn echo_server_binary_echoes_over_tcp() {
    let server = echo_server();
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"hello, world\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    c.read_to_string(&mut back).unwrap();
    assert_eq!(back, "hello, world\n");
}

#[test]
fn echo_server_serves_many_clients_at_once() {
    let server = echo_server();
    let addr = server.addr;
    let clients: Vec<_> = (0..32)
        .map(|i| {
            thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let msg = format!("client {i}\n").repeat(100);
                c.write_all(msg.as_bytes()).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                let mut back = String::new();
                c.read_to_string(&mut back).unwrap();
                assert_eq!(back, msg);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn echo_client_binary_prints_the_echo() {
    let server = echo_server();
    let client = binary("ch01-fundamentals", "echo_client");
    let port = server.addr.port().to_string();
    let out = run(&client, &["-p", &port, "--message", "hello"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
}

#[test]
fn echo_client_explains_a_refused_connection() {
    let client = binary("ch01-fundamentals", "echo_client");
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let out = run(&client, &["-p", &port, "--message", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not connect") && err.contains("is the server running"), "{err}");
}

#[test]
fn echo_server_help_shows_defaults_and_bad_arguments_are_refused() {
    let bin = binary("ch01-fundamentals", "echo_server");
    let help = run(&bin, &["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("[default: 8080]") && text.contains("[default: 127.0.0.1]"), "{text}");
    let bad = run(&bin, &["1234", "-p", "4321"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("two different ports"));
    let bad = run(&bin, &["not-a-port"]);
    assert!(!bad.status.success());
}

#[cfg(unix)]
#[test]
fn echo_server_stops_cleanly_on_sigterm() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let mut server = echo_server();
    let _idle = TcpStream::connect(server.addr).unwrap();
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGTERM).unwrap();
    let stopped = server.wait_for_line(Duration::from_secs(10), |l| l.contains("server stopped"));
    assert!(stopped.is_some(), "the clean shutdown path ran");
    let status = server.wait_exit(Duration::from_secs(10)).expect("it exits");
    assert!(status.success(), "{status:?}");
}
