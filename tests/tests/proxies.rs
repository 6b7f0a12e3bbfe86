//! The real `forward_proxy` and `reverse_proxy` binaries, driven by curl
//! as a user would drive them.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::process::{Command, Output};

use backends::{BackendConfig, spawn};
use tests::{binary, start};

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is installed (it is on every machine this project supports)")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn forward_proxy(allow: &[u16]) -> tests::Server {
    let bin = binary("ch02-proxy", "forward_proxy");
    let mut args = vec!["-p".to_string(), "0".to_string(), "--log-format".to_string(), "json".to_string()];
    for p in allow {
        args.push("--allow-port".to_string());
        args.push(p.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start(&bin, &args, "forward proxy listening")
}

fn reverse_proxy(backend: &str, extra: &[&str]) -> tests::Server {
    let bin = binary("ch02-proxy", "reverse_proxy");
    let mut args = vec!["-p", "0", "--log-format", "json", "--backend", backend];
    args.extend_from_slice(extra);
    start(&bin, &args, "reverse proxy listening")
}

#[test]
fn curl_tunnels_through_the_forward_proxy_to_an_allowed_port() {
    let backend = spawn(BackendConfig::named("e2e")).unwrap();
    let proxy = forward_proxy(&[backend.addr().port()]);
    let url = format!("http://{}/", backend.addr());
    let out = curl(&["-p", "-x", &format!("http://{}", proxy.addr), &url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text(&out), "Hello from e2e (GET /)\n");
    // Without -p, curl sends the absolute-form request for the proxy to forward.
    let out = curl(&["-x", &format!("http://{}", proxy.addr), &url]);
    assert_eq!(text(&out), "Hello from e2e (GET /)\n");
}

#[test]
fn curl_to_a_port_that_is_not_allowed_gets_403_and_exit_code_56() {
    let backend = spawn(BackendConfig::named("e2e")).unwrap();
    let proxy = forward_proxy(&[]);
    let url = format!("http://{}/", backend.addr());
    let out = curl(&["-p", "-x", &format!("http://{}", proxy.addr), &url]);
    assert_eq!(out.status.code(), Some(56), "curl: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"), "{}", String::from_utf8_lossy(&out.stderr));
    let plain = curl(&["-x", &format!("http://{}", proxy.addr), "-w", "%{http_code}", "-o", "/dev/null", &url]);
    assert_eq!(text(&plain), "403");
}

#[test]
fn curl_through_the_reverse_proxy_sees_the_backend_and_forwarding_headers() {
    let backend = spawn(BackendConfig::named("e2e")).unwrap();
    let proxy = reverse_proxy(&backend.addr().to_string(), &[]);
    let out = curl(&[&format!("http://{}/", proxy.addr)]);
    assert_eq!(text(&out), "Hello from e2e (GET /)\n");
    let echo = text(&curl(&["-H", "X-Forwarded-For: 198.51.100.4", &format!("http://{}/echo", proxy.addr)]));
    assert!(echo.contains("X-Forwarded-For: 198.51.100.4, 127.0.0.1\r\n"), "{echo}");
    assert!(echo.contains("X-Real-IP: 127.0.0.1\r\n"), "{echo}");
    assert!(echo.contains("X-Forwarded-Proto: http\r\n"), "{echo}");
    assert!(echo.contains(&format!("X-Forwarded-Host: {}\r\n", proxy.addr)), "{echo}");
}

#[test]
fn the_reverse_proxy_reports_a_down_backend_as_502_and_a_slow_one_as_504() {
    let down = {
        let b = spawn(BackendConfig::named("gone")).unwrap();
        b.addr()
    };
    let proxy = reverse_proxy(&down.to_string(), &[]);
    let out = curl(&["-i", &format!("http://{}/", proxy.addr)]);
    let body = text(&out);
    assert!(body.starts_with("HTTP/1.1 502 Bad Gateway"), "{body}");
    assert!(body.contains("cannot connect to"), "{body}");

    let slow = spawn(BackendConfig::named("slow")).unwrap();
    let proxy = reverse_proxy(&slow.addr().to_string(), &["--response-timeout-ms", "200"]);
    let out = curl(&["-w", "\n%{http_code}", &format!("http://{}/slow?ms=5000", proxy.addr)]);
    let body = text(&out);
    assert!(body.ends_with("\n504"), "{body}");
    assert!(body.contains("did not answer within"), "{body}");
}

#[test]
fn the_reverse_proxy_refuses_a_bad_backend_argument_clearly() {
    let bin = binary("ch02-proxy", "reverse_proxy");
    let out = tests::run(&bin, &["--backend", "no-port-here"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--backend must be host:port"));
}
