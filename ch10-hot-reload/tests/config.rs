//! The configuration reader on real files: the shipped examples load,
//! both formats give the same configuration, and every kind of mistake is
//! reported with its file, line and column.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use std::path::Path;
use std::time::Duration;

use ch04_advanced::algorithm::Kind;
use ch10_hot_reload::config::{self, Format, parse};
use ch10_hot_reload::launch::flags;

fn configs() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")
}

/// Every problem of `text` as `file:line:col: message` lines.
fn problems(text: &str, format: Format) -> Vec<String> {
    let name = if format == Format::Json { "lb.json" } else { "lb.yaml" };
    let err = parse(text, format, Path::new(name)).expect_err("a bad configuration");
    err.to_string().lines().map(String::from).collect()
}

#[test]
fn the_shipped_examples_load() {
    let json = config::load(&configs().join("lb.json")).unwrap();
    assert_eq!(json.listen.port, 8080);
    assert_eq!(json.algorithm, Kind::Rr);
    assert_eq!(json.backends.len(), 3);
    assert_eq!(json.pool.ttl, Duration::from_secs(60));
    assert_eq!(json.rate_limit.map(|r| (r.per_ip, r.burst)), Some((100.0, 200)));
    let yaml = config::load(&configs().join("lb.yaml")).unwrap();
    assert_eq!(yaml.algorithm, Kind::Wrr);
    assert_eq!(yaml.backends.iter().map(|b| b.weight).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(yaml.health_check.timeout, Duration::from_millis(500));
    assert_eq!(yaml.metrics.port, Some(8081));
    assert_eq!(yaml.drain_timeout, Duration::from_secs(10));
    let routes = config::load(&configs().join("routes.yaml")).unwrap();
    assert_eq!(routes.routes[0].prefix, "/static", "longest prefix first");
    assert_eq!(routes.backends[2].weight, 2, "host:port:weight strings work too");
    assert!(!flags(&routes, false).is_empty(), "routes are served");
    let write = parse("backends: [\"a:1\"]\ntimeouts: {write: 10s}\n", Format::Yaml, Path::new("w.yaml")).unwrap();
    assert!(
        flags(&write, false).windows(2).any(|w| w == ["--write-timeout-ms", "10000"]),
        "a write timeout is applied"
    );
}

#[test]
fn the_same_settings_in_either_format_give_the_same_configuration() {
    let json = r#"{"listen": {"port": 9000}, "strategy": "least_connections",
        "backends": [{"host": "a", "port": 1}, {"host": "b", "port": 2, "weight": 5}],
        "health_check": {"type": "tcp", "interval": "5s", "timeout": "1s"}, "timeouts": {"connect": "250ms"}}"#;
    let yaml = "listen: {port: 9000}\nstrategy: least-connections\nbackends:\n  - {host: a, port: 1}\n  - host: b\n    port: 2\n    weight: 5\nhealth_check:\n  type: tcp\n  interval: 5s\n  timeout: 1s\ntimeouts:\n  connect: 250ms\n";
    let a = parse(json, Format::Json, Path::new("a.json")).unwrap();
    let b = parse(yaml, Format::Yaml, Path::new("b.yaml")).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.algorithm, Kind::Lc);
    assert_eq!(a.health_check.path, None);
    assert_eq!(a.timeouts.connect, Duration::from_millis(250));
}

#[test]
fn every_mistake_is_placed_and_says_what_was_expected() {
    let yaml = "\
listen:
  port: 70000
algoritm: rr
backends:
  - host: a
    port: 9001
  - host: a
    port: 9001
  - port: 9002
  - host: c
    port: 9003
    weight: 0
health_check:
  interval: 1s
  timeout: 5s
  path: health
routes:
  - prefix: /api
    backends: [\"a:9001\", \"b:9\"]
  - prefix: /api
    backends: [\"a:9001\"]
";
    assert_eq!(
        problems(yaml, Format::Yaml),
        [
            "lb.yaml:2:9: listen.port must be from 0 to 65535, not 70000",
            "lb.yaml:3:1: unknown field `algoritm` in the configuration; expected one of: mode, listen, listen_port, algorithm, strategy, cookie_name, backends, health_check, timeouts, pool, rate_limit, limits, routes, drain_timeout, metrics",
            "lb.yaml:7:5: backend `a:9001` is listed twice (first at 5:5)",
            "lb.yaml:9:5: backends[2] has no `host`",
            "lb.yaml:12:13: backends[3].weight must be from 1 to 1000, not 0",
            "lb.yaml:15:12: health_check.timeout (5s) is longer than health_check.interval (1s): a probe would still run when the next starts",
            "lb.yaml:16:9: health_check.path must start with `/`, not `health`",
            "lb.yaml:19:26: routes[0] names `b:9`, which is not in `backends` (a:9001)",
            "lb.yaml:20:13: the route `/api` is defined twice (first at 18:13)",
        ]
    );
}

#[test]
fn wrong_types_in_json_are_placed_too() {
    let json = "{\n  \"listen_port\": \"8080\",\n  \"algorithm\": \"fastest-ever\",\n  \"backends\": {\"host\": \"a\"},\n  \"pool\": {\"max_size\": -1, \"ttl\": \"soon\"},\n  \"drain_timeout\": true\n}";
    let found = problems(json, Format::Json);
    assert_eq!(found[0], "lb.json:2:18: listen_port must be a whole number, not a string");
    assert!(
        found[1].starts_with("lb.json:3:16: unknown algorithm `fastest-ever`; expected one of: rr, wrr, lc"),
        "{}",
        found[1]
    );
    assert_eq!(found[2], "lb.json:4:15: backends must be a list, not a mapping");
    assert_eq!(found[3], "lb.json:5:24: pool.max_size must be from 0 to 4294967295, not -1");
    assert_eq!(
        found[4],
        "lb.json:5:35: pool.ttl must be a duration such as 10s, 500ms, 2m or 1h (or whole seconds), not `soon`"
    );
    assert_eq!(
        found[5],
        "lb.json:6:20: drain_timeout must be a duration such as 10s, 500ms, 2m or 1h (or whole seconds), not a boolean"
    );
    assert_eq!(found.len(), 6);
}

#[test]
fn syntax_errors_and_missing_backends() {
    assert_eq!(problems("{\"backends\": [}", Format::Json), ["lb.json:1:15: expected a value, found `}`"]);
    assert_eq!(problems("{}", Format::Json), ["lb.json:1:1: no `backends`: at least one backend is needed"]);
    assert_eq!(
        problems("backends: []\n", Format::Yaml),
        ["lb.yaml:1:11: backends is empty: at least one backend is needed"]
    );
    let dup = problems("backends: [\"a:1\"]\nbackends: [\"b:1\"]\n", Format::Yaml);
    assert_eq!(dup, ["lb.yaml:2:1: duplicate key `backends` (first at 1:1)"]);
    let both = problems("{\"listen_port\": 1, \"listen\": {\"port\": 2}, \"backends\": [\"a:1\"]}", Format::Json);
    assert_eq!(both, ["lb.json:1:20: `listen_port` and `listen` say the same thing: keep one"]);
    let tls = problems("backends: [\"https://secure.example\"]\n", Format::Yaml);
    assert!(tls[0].starts_with("lb.yaml:1:12: backends[0]:") && tls[0].contains("TLS"), "{}", tls[0]);
}

#[test]
fn a_configuration_becomes_the_flags_it_stands_for() {
    let c = config::load(&configs().join("lb.yaml")).unwrap();
    let f = flags(&c, false).join(" ");
    for part in [
        "--host 127.0.0.1",
        "--port 8080",
        "--algorithm wrr",
        "--backend 127.0.0.1:9001:3",
        "--health-path /health --health-check http",
        "--health-interval-ms 2000",
        "--health-timeout-ms 500",
        "--connect-timeout-ms 2000",
        "--pool-max-idle 64",
        "--rate off",
        "--admin-port 8081",
        "--drain-timeout-secs 10",
    ] {
        assert!(f.contains(part), "{part} in {f}");
    }
    assert!(!flags(&c, true).iter().any(|a| a == "--backend"), "--backend on the command line replaces the file's");
}

#[test]
fn layer4_mode_loads_with_a_tcp_probe_and_an_idle_timeout() {
    let l4 = config::load(&configs().join("l4.yaml")).unwrap();
    assert_eq!(l4.mode, config::Mode::Tcp);
    assert_eq!(l4.algorithm, Kind::Lc);
    assert_eq!(l4.health_check.path, None, "no path in the file: a TCP connect, not GET /health");
    assert_eq!(l4.timeouts.idle, Some(Duration::from_secs(300)));
    let flags = flags(&l4, false);
    let after = |flag: &str| flags.iter().position(|f| f == flag).map(|i| flags[i + 1].clone());
    assert_eq!(after("--health-check").as_deref(), Some("tcp"));
    assert_eq!(after("--idle-timeout-ms").as_deref(), Some("300000"));
    // A path the file does name is kept: an HTTP backend behind a relay.
    let probed = "mode: tcp\nbackends: [\"127.0.0.1:9001\"]\nhealth_check: {path: /ready}\n";
    let probed = parse(probed, Format::Yaml, Path::new("l4.yaml")).unwrap();
    assert_eq!(probed.health_check.path.as_deref(), Some("/ready"));
    // HTTP stays the default, with its probe.
    assert_eq!(config::load(&configs().join("lb.yaml")).unwrap().mode, config::Mode::Http);
}

#[test]
fn layer4_mode_refuses_what_only_a_request_could_use_each_placed() {
    let text = "mode: tcp\nalgorithm: sticky\ncookie_name: s\nbackends:\n  - {host: a, port: 1, max_connections: 5}\n\
                timeouts: {connect: 1s, read: 2s}\npool: {max_size: 4}\nrate_limit: {per_ip: 5}\nroutes: []\n";
    let found = problems(text, Format::Yaml);
    let expected = [
        "lb.yaml:2:12: algorithm `sticky` needs a request to look at; mode: tcp takes rr, wrr, lc, iphash, random, wrandom or hash",
        "lb.yaml:3:1: `cookie_name` applies to mode: http only (a cookie is in a request); remove it for mode: tcp",
        "lb.yaml:5:24: max_connections applies to mode: http only (it limits requests at once)",
        "lb.yaml:6:25: timeouts.read applies to mode: http only; mode: tcp has connect and idle",
        "lb.yaml:7:1: `pool` applies to mode: http only (a connection is relayed whole, never handed back for reuse); remove it for mode: tcp",
        "lb.yaml:8:1: `rate_limit` applies to mode: http only (the limits count requests); remove it for mode: tcp",
        "lb.yaml:9:1: `routes` applies to mode: http only (a route matches a request's path); remove it for mode: tcp",
    ];
    for e in expected {
        assert!(found.iter().any(|f| f == e), "missing {e:?} in {found:#?}");
    }
    let unknown = problems("mode: udp\nbackends: [\"a:1\"]\n", Format::Yaml);
    assert_eq!(
        unknown,
        ["lb.yaml:1:7: unknown mode `udp`; expected http (requests, layer 7) or tcp (connections, layer 4)"]
    );
}
