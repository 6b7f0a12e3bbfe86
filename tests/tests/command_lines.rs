//! The command lines students bring: every balancer works with no setup,
//! the C curriculum's positional forms and the seeds' algorithm names
//! run, `--trusted-proxy` makes IP hashing see the real client, and a TLS
//! backend is refused with a reason.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::collections::HashSet;
use std::process::Command;

use backends::client;
use tests::{BALANCERS, binary, run, start};

fn curl(url: &str, headers: &[&str]) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--fail", "--max-time", "20"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().unwrap();
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn with_no_backend_given_every_balancer_starts_demo_backends_says_so_and_answers() {
    // Nothing listens on 127.0.0.1:9001-9003 here (port 0 never hands out
    // ports below 32768), so each balancer falls back to its demo backends.
    for (package, bin, message) in BALANCERS {
        let lb = start(&binary(package, bin), &["-p", "0", "--log-format", "json"], message);
        let said =
            lb.wait_for_line(std::time::Duration::from_secs(10), |l| l.contains("demo backends run in this process"));
        let said = said.unwrap_or_else(|| panic!("{bin}: no line saying demo backends were started"));
        assert!(said.contains(&format!("curl -i http://localhost:{}/", lb.addr.port())), "{bin}: {said}");
        let body = curl(&format!("http://127.0.0.1:{}/", lb.addr.port()), &[]);
        assert!(body.starts_with("Hello from backend-"), "{bin}: {body}");
    }
}

#[test]
fn the_c_curriculums_positional_ports_work() {
    for (package, bin, message) in BALANCERS {
        let lb = start(&binary(package, bin), &["0", "--demo", "--log-format", "json"], message);
        assert!(curl(&format!("http://127.0.0.1:{}/", lb.addr.port()), &[]).starts_with("Hello from"), "{bin}");
    }
    // reverse_proxy PORT BACKEND_HOST BACKEND_PORT
    let backend = backends::spawn_many(1).unwrap();
    let port = backend[0].addr().port().to_string();
    let proxy = start(
        &binary("ch02-proxy", "reverse_proxy"),
        &["0", "127.0.0.1", &port, "--log-format", "json"],
        "reverse proxy listening",
    );
    assert!(curl(&format!("http://127.0.0.1:{}/", proxy.addr.port()), &[]).starts_with("Hello from"));
    // Two different ports are refused, with the reason.
    let out = run(&binary("ch03-load-balancer", "load_balancer"), &["8081", "--port", "8082"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("two different ports"));
}

#[test]
fn the_seeds_algorithm_names_and_strategy_flag_work_everywhere() {
    let runs: [(&str, &str, &str, &[&str]); 6] = [
        ("ch03-load-balancer", "load_balancer", "load balancer listening", &["--algorithm", "round-robin"]),
        ("ch03-load-balancer", "load_balancer", "load balancer listening", &["-s", "weighted-random"]),
        ("ch04-advanced", "advanced_lb", "advanced load balancer listening", &["--strategy", "weighted-round-robin"]),
        ("ch04-advanced", "advanced_lb", "advanced load balancer listening", &["-s", "least-conn"]),
        ("ch05-event-loop", "high_perf_lb", "high-performance load balancer listening", &["--strategy", "ip-hash"]),
        ("ch05-event-loop", "tokio_lb", "tokio load balancer listening", &["-a", "consistent-hash"]),
    ];
    for (package, bin, message, extra) in runs {
        let mut args = vec!["-p", "0", "--demo", "--log-format", "json"];
        args.extend_from_slice(extra);
        let lb = start(&binary(package, bin), &args, message);
        assert!(
            curl(&format!("http://127.0.0.1:{}/", lb.addr.port()), &[]).starts_with("Hello from"),
            "{bin} {extra:?}"
        );
    }
}

/// Which backend answered each of `clients` (by X-Forwarded-For).
fn backends_by_client(port: u16, clients: &[String]) -> Vec<String> {
    clients
        .iter()
        .map(|c| {
            let r = client::send(
                ([127, 0, 0, 1], port).into(),
                format!("GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: {c}\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            r.text().trim_start_matches("Hello from ").split(' ').next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn ip_hash_sees_the_client_behind_a_trusted_proxy_and_only_then() {
    let clients: Vec<String> = (1..=24).map(|i| format!("203.0.113.{i}")).collect();
    for (package, bin, message) in &BALANCERS[1..] {
        let path = binary(package, bin);
        let mut common =
            vec!["-p", "0", "--demo", "--log-format", "json", "--algorithm", "ip-hash", "--health-check", "off"];
        if matches!(*bin, "rate_limited_lb" | "metrics_lb" | "hot_reload_lb") {
            // 72 requests from 127.0.0.1 in a moment: over the default limit.
            common.extend(["--rate", "off"]);
        }
        // Trusted: each forwarded client sticks to one backend, and the
        // clients spread over more than one.
        let mut args = common.clone();
        args.extend(["--trusted-proxy", "127.0.0.0/8"]);
        let lb = start(&path, &args, message);
        let first = backends_by_client(lb.addr.port(), &clients);
        assert_eq!(first, backends_by_client(lb.addr.port(), &clients), "{bin}: the same client, the same backend");
        assert!(first.iter().collect::<HashSet<_>>().len() > 1, "{bin}: clients spread: {first:?}");
        drop(lb);
        // Not trusted: the header is ignored; every request comes from
        // 127.0.0.1, so one backend answers all of them.
        let lb = start(&path, &common, message);
        let all = backends_by_client(lb.addr.port(), &clients);
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), 1, "{bin}: a client cannot pick its bucket: {all:?}");
    }
}

#[test]
fn tls_backends_are_refused_with_a_reason() {
    let runs = [
        ("ch02-proxy", "reverse_proxy", "https://example.com"),
        ("ch03-load-balancer", "load_balancer", "https://example.com"),
        ("ch04-advanced", "advanced_lb", "example.com:443"),
        ("ch05-event-loop", "high_perf_lb", "https://example.com:8443"),
        ("ch05-event-loop", "tokio_lb", "127.0.0.1:443:2"),
    ];
    for (package, bin, backend) in runs {
        let out = run(&binary(package, bin), &["-p", "0", "--backend", backend]);
        assert!(!out.status.success(), "{bin} {backend}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("TLS to backends is not part of this curriculum"), "{bin} {backend}: {err}");
    }
}
