//! `hot_reload_lb` (chapter 10) as an operator runs it: `--check` on the
//! shipped configurations and on a broken one (exit status, and every
//! problem placed by line and column), and the balancer started from a
//! YAML file and from a JSON file given alone, in front of real backends,
//! with a command-line flag overriding the file; every way to reload:
//! SIGHUP (a broken file changes nothing; new weights and a new backend
//! set are swapped in), `POST /reload` and `GET /config` on the admin
//! listener, a new listening port, `-w` applying a file changed by a
//! symlink swap or a rename-on-save (by polling, and by inotify alone);
//! a request under way finishing on the set it started with; the
//! `X-LB-Config-Gen` header never going backwards on a connection; and a
//! short torture run: reloads every 100 ms, valid and not, under load,
//! with no request failing. Layer 4 mode (`mode: tcp`) relays
//! connections whole, reloads its backend set for new connections only,
//! and upgrades, the old process draining the connections it relays.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backends::client::{HttpResponse, connect, get, read_response, send};
use backends::{BackendConfig, spawn};
use tests::{binary, listening_addr, run, start};

const LISTENING: &str = "hot reload load balancer listening";
const ADMIN: &str = "admin listening (/metrics, /lb-stats, /healthz, /readyz, /config, /reload, /upgrade)";
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ch10-hot-reload/configs")
}

/// A file in a fresh temporary directory.
fn temp_file(name: &str, text: &str) -> PathBuf {
    use std::hash::{BuildHasher, RandomState};
    let dir = std::env::temp_dir().join(format!(
        "lbs-hot-reload-{}-{:x}",
        std::process::id(),
        RandomState::new().hash_one(name)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_accepts_the_shipped_configurations_and_places_every_mistake() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    for file in ["lb.json", "lb.yaml", "routes.yaml", "l4.yaml"] {
        let path = configs().join(file);
        let out = run(&bin, &["--check", "-c", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{file}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(": ok ("), "{stdout}");
    }
    // As the C curriculum runs it: the file alone, first.
    let json = configs().join("lb.json");
    assert!(run(&bin, &[json.to_str().unwrap(), "--check"]).status.success());

    let bad =
        temp_file("bad.yaml", "listen:\n  port: 8080\nbackends:\n  - host: a\n    port: 0\nhelth_check:\n  path: /\n");
    let out = run(&bin, &["--check", "-c", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let shown = bad.display().to_string();
    assert!(stderr.contains(&format!("{shown}:5:11: backends[0].port must be from 1 to 65535, not 0")), "{stderr}");
    assert!(stderr.contains(&format!("{shown}:6:1: unknown field `helth_check`")), "{stderr}");
    assert!(stderr.contains("not valid (2 problem(s))"), "{stderr}");
    let missing = run(&bin, &["--check", "-c", "/nonexistent/lb.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/lb.yaml:1:1: cannot be read"));
}

#[test]
fn a_configuration_file_starts_the_balancer_and_flags_override_it() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b, c) = (
        spawn(BackendConfig::named("alpha")).unwrap(),
        spawn(BackendConfig::named("beta")).unwrap(),
        spawn(BackendConfig::named("gamma")).unwrap(),
    );
    let yaml = format!(
        "listen:\n  port: 0\nalgorithm: round-robin\nbackends:\n  - host: 127.0.0.1\n    port: {}\n  - \"{}\"\nhealth_check:\n  type: tcp\n  interval: 1s\n  timeout: 500ms\nmetrics:\n  enabled: false\n",
        a.addr().port(),
        b.addr()
    );
    let path = temp_file("lb.yaml", &yaml);
    let lb = start(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"], LISTENING);
    let mut names: Vec<String> =
        (0..4).map(|_| String::from_utf8_lossy(&get(lb.addr, "/").unwrap().body).into_owned()).collect();
    names.sort();
    assert!(names[0].contains("alpha") && names[1].contains("alpha"), "{names:?}");
    assert!(names[2].contains("beta") && names[3].contains("beta"), "{names:?}");
    drop(lb);

    // The JSON form, given alone; --backend on the command line replaces the file's.
    let json = format!(
        "{{\"listen_port\": 0, \"backends\": [{{\"host\": \"127.0.0.1\", \"port\": {}}}], \"metrics\": {{\"enabled\": false}}}}",
        a.addr().port()
    );
    let path = temp_file("lb.json", &json);
    let gamma = c.addr().to_string();
    let lb = start(
        &bin,
        &[path.to_str().unwrap(), "--log-format", "json", "-b", &gamma, "--health-check", "off"],
        LISTENING,
    );
    for _ in 0..3 {
        let body = String::from_utf8_lossy(&get(lb.addr, "/").unwrap().body).into_owned();
        assert!(body.contains("gamma"), "only the command line's backend serves: {body}");
    }
}

#[test]
fn a_client_that_stops_reading_is_cut_off_after_the_write_timeout() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let a = spawn(BackendConfig::named("alpha")).unwrap();
    let yaml = observed(&[a.addr()], 0) + "timeouts: {write: 300ms}\n";
    let path = temp_file("write.yaml", &yaml);
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    let open = || -> f64 {
        let page = get(admin, "/metrics").unwrap().text();
        page.lines().find_map(|l| l.strip_prefix("lb_active_connections ")?.trim().parse().ok()).unwrap()
    };
    // Ask for 8 MiB and read none of it: the balancer's buffers and the
    // sockets' fill, and nothing more leaves for the client.
    let mut c = connect(lb.addr).unwrap();
    c.write_all(b"GET /bytes/8388608 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let deadline = Instant::now() + WAIT;
    while open() < 1.0 {
        assert!(Instant::now() < deadline, "the connection never showed");
        std::thread::yield_now();
    }
    // Then the write timeout (300 ms, far below the 60 s idle timeout) closes it.
    while open() > 0.0 {
        assert!(Instant::now() < deadline, "the stalled client was never cut off");
        std::thread::yield_now();
    }
    let mut rest = Vec::new();
    let got = c.read_to_end(&mut rest).map(|_| rest.len()).unwrap_or(0);
    assert!(got < 8 << 20, "the body was cut short ({got} bytes)");
}

#[test]
fn routes_send_each_prefix_to_its_backends_and_a_reload_changes_them() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let names = ["alpha", "beta", "gamma"];
    let handles: Vec<_> = names.iter().map(|n| spawn(BackendConfig::named(*n)).unwrap()).collect();
    let [a, b, c] = [handles[0].addr(), handles[1].addr(), handles[2].addr()];
    let file = |api: SocketAddr| {
        format!(
            "listen: {{port: 0}}\nbackends: [\"{a}\", \"{b}\", \"{c}\"]\nroutes:\n  - prefix: /api\n    backends: [\"{api}\"]\n  - prefix: /api/v2\n    backends: [\"{c}\"]\n  - prefix: /static\n    backends: [\"{b}\", \"{c}\"]\nhealth_check: {{enabled: false}}\nmetrics: {{enabled: true}}\n"
        )
    };
    let path = temp_file("routes.yaml", &file(a));
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    let served = |target: &str, n: usize| -> Vec<String> {
        let mut seen: Vec<String> = (0..n)
            .map(|_| {
                let body = get(lb.addr, target).unwrap().text();
                names.iter().find(|name| body.contains(*name)).unwrap().to_string()
            })
            .collect();
        seen.sort();
        seen.dedup();
        seen
    };
    assert_eq!(served("/api/users", 6), ["alpha"]);
    assert_eq!(served("/api/v2/users", 6), ["gamma"], "the longest prefix wins");
    assert_eq!(served("/static/app.css", 6), ["beta", "gamma"], "balanced within the route");
    assert_eq!(served("/", 6), ["alpha", "beta", "gamma"], "no route: every backend");
    std::fs::write(&path, file(b)).unwrap();
    let applied = post(admin, "/reload");
    assert!(applied.text().contains("routes changed"), "{}", applied.text());
    assert_eq!(served("/api/users", 6), ["beta"]);
}

#[test]
fn a_reload_changes_the_timeouts_of_the_requests_after_it() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let slow = spawn(BackendConfig { latency: Duration::from_millis(400), ..BackendConfig::named("slow") }).unwrap();
    let path = temp_file("timeouts.yaml", &observed(&[slow.addr()], 0));
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    assert_eq!(get(lb.addr, "/").unwrap().status, 200, "30 s to answer by default");
    std::fs::write(&path, observed(&[slow.addr()], 0) + "timeouts: {read: 100ms}\n").unwrap();
    let applied = post(admin, "/reload");
    assert!(applied.text().contains("timeouts changed"), "{}", applied.text());
    let late = get(lb.addr, "/").unwrap();
    assert_eq!(late.status, 504, "the backend now has 100 ms to start answering: {}", late.text());
    // And the health checks: probes on, against a backend that answers /health.
    std::fs::write(
        &path,
        observed(&[slow.addr()], 0)
            .replace("health_check: {enabled: false}", "health_check: {path: /health, interval: 1s, timeout: 900ms}"),
    )
    .unwrap();
    let served = || slow.stats().requests_served.load(std::sync::atomic::Ordering::Relaxed);
    let before = served();
    let applied = post(admin, "/reload");
    assert!(applied.text().contains("health_check"), "{}", applied.text());
    // No client sends anything now: only the probes the reload turned on reach the backend.
    let deadline = Instant::now() + WAIT;
    while served() == before {
        assert!(Instant::now() < deadline, "no probe reached the backend after the reload turned them on");
        std::thread::yield_now();
    }
}

#[test]
fn a_backend_at_its_max_connections_is_passed_over() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let slow = spawn(BackendConfig { latency: Duration::from_millis(800), ..BackendConfig::named("slow") }).unwrap();
    let yaml = format!(
        "listen: {{port: 0}}\nbackends:\n  - host: 127.0.0.1\n    port: {}\n    max_connections: 1\nhealth_check: {{enabled: false}}\nmetrics: {{enabled: false}}\n",
        slow.addr().port()
    );
    let path = temp_file("limited.yaml", &yaml);
    let lb = start(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"], LISTENING);
    let addr = lb.addr;
    let first = std::thread::spawn(move || get(addr, "/").unwrap());
    until_under_way(&slow, "the first request never reached the backend");
    // The one request it may serve is under way: the second is refused at once.
    let second = get(lb.addr, "/").unwrap();
    assert_eq!(second.status, 503, "{}", second.text());
    assert!(second.text().contains("max_connections"), "{}", second.text());
    assert_eq!(first.join().unwrap().status, 200);
    // Free again once the first ended. With a loop per core the next
    // request may reach another loop a moment before the first loop has
    // counted the end of the request it just answered: a bounded retry.
    let deadline = Instant::now() + WAIT;
    while get(lb.addr, "/").unwrap().status != 200 {
        assert!(Instant::now() < deadline, "the backend's place never came free");
        std::thread::yield_now();
    }
}

#[cfg(unix)]
#[test]
fn the_log_file_is_opened_again_on_sighup_after_a_rotation() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let a = spawn(BackendConfig::named("alpha")).unwrap();
    let path = temp_file("logged.yaml", &observed(&[a.addr()], 0));
    let log = path.with_file_name("lb.log");
    let _ = std::fs::remove_file(&log);
    let mut child = std::process::Command::new(&bin)
        .args(["-c", path.to_str().unwrap(), "--log-format", "json", "--log-file", log.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    // The log goes to the file: wait for its listening line there (bounded).
    let read_until = |file: &Path, what: &str| -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if text.contains(what) {
                return text;
            }
            assert!(Instant::now() < deadline, "{what:?} never appeared in {}:\n{text}", file.display());
            std::thread::yield_now();
        }
    };
    let text = read_until(&log, LISTENING);
    let addr = text.lines().find_map(|l| listening_addr(l, LISTENING)).unwrap();
    assert_eq!(get(addr, "/").unwrap().status, 200);
    // logrotate moves the file away, then signals.
    let rotated = log.with_file_name("lb.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let fresh = read_until(&log, "configuration unchanged");
    assert!(!fresh.contains(LISTENING), "the new file starts after the rotation");
    assert!(std::fs::read_to_string(&rotated).unwrap().contains(LISTENING), "the old lines stay in the moved file");
    let _ = child.kill();
    let _ = child.wait();
}

/// A configuration of two weighted backends, round robin by weight, no
/// probes and no admin listener.
fn two_backends(a: std::net::SocketAddr, wa: u32, b: std::net::SocketAddr, wb: u32) -> String {
    format!(
        "listen: {{port: 0}}\nalgorithm: wrr\nbackends:\n  - \"{a}:{wa}\"\n  - \"{b}:{wb}\"\nhealth_check: {{enabled: false}}\nmetrics: {{enabled: false}}\n"
    )
}

/// How `n` requests through `lb` split between the backends named alpha and beta.
fn alpha_and_beta(lb: std::net::SocketAddr, n: usize) -> (usize, usize) {
    let alpha = (0..n).filter(|_| String::from_utf8_lossy(&get(lb, "/").unwrap().body).contains("alpha")).count();
    (alpha, n - alpha)
}

/// Sends SIGHUP to the balancer.
#[cfg(unix)]
fn hup(lb: &tests::Server) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    kill(Pid::from_raw(i32::try_from(lb.pid()).unwrap()), Signal::SIGHUP).unwrap();
}

#[cfg(unix)]
#[test]
fn sighup_rereads_the_file_applies_weights_and_never_a_bad_file() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    let file = |wa: u32, wb: u32| two_backends(a.addr(), wa, b.addr(), wb);
    let path = temp_file("reload.yaml", &file(1, 1));
    let lb = start(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"], LISTENING);
    let shares = |n: usize| alpha_and_beta(lb.addr, n);
    assert_eq!(shares(10), (5, 5));

    // A broken file: refused, logged with its position, nothing changes.
    std::fs::write(&path, "backends:\n  - host: a\n    port: 0\n").unwrap();
    hup(&lb);
    let problem = lb.wait_for_line(WAIT, |l| l.contains("configuration problem")).expect("the problem is logged");
    assert!(problem.contains("reload.yaml:3:11: backends[0].port must be from 1 to 65535, not 0"), "{problem}");
    assert!(lb.wait_for_line(WAIT, |l| l.contains("configuration refused; the running one stays")).is_some());
    assert_eq!(shares(10), (5, 5), "still the old configuration");

    // New weights: applied at once (smooth weighted round robin: 1 in 5).
    std::fs::write(&path, file(1, 4)).unwrap();
    hup(&lb);
    let line = lb.wait_for_line(WAIT, |l| l.contains("configuration reloaded")).expect("reloaded");
    assert!(line.contains("weights") && line.contains("\"generation\":2"), "{line}");
    assert_eq!(shares(10), (2, 8));

    // Another backend set: gamma instead of beta, swapped in whole.
    let c = spawn(BackendConfig::named("gamma")).unwrap();
    std::fs::write(&path, file(1, 4).replace(&b.addr().to_string(), &c.addr().to_string())).unwrap();
    hup(&lb);
    let line = lb.wait_for_line(WAIT, |l| l.contains("configuration reloaded")).expect("reloaded");
    assert!(line.contains("backends") && line.contains("\"generation\":3"), "{line}");
    let bodies: Vec<String> = (0..10).map(|_| get(lb.addr, "/").unwrap().text()).collect();
    assert_eq!(bodies.iter().filter(|b| b.contains("gamma")).count(), 8, "{bodies:?}");
    assert_eq!(bodies.iter().filter(|b| b.contains("alpha")).count(), 2, "{bodies:?}");

    // A valid file that changes what cannot change while running: named,
    // and nothing applied.
    let observed = file(1, 4)
        .replace(&b.addr().to_string(), &c.addr().to_string())
        .replace("metrics: {enabled: false}", "metrics: {enabled: true}");
    std::fs::write(&path, observed).unwrap();
    hup(&lb);
    let line = lb.wait_for_line(WAIT, |l| l.contains("restart to apply it")).expect("the change is reported");
    assert!(line.contains("metrics"), "{line}");
    let bodies: Vec<String> = (0..5).map(|_| get(lb.addr, "/").unwrap().text()).collect();
    assert!(bodies.iter().all(|b| !b.contains("beta")), "{bodies:?}");
}

#[test]
fn a_reload_changes_the_rate_limit_and_the_pool_of_the_running_balancer() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let a = spawn(BackendConfig::named("alpha")).unwrap();
    // One request per 100 s: after the burst, every request is refused.
    let file = |limit: &str, pool: usize| {
        observed(&[a.addr()], 0)
            + &format!("rate_limit: {{per_ip: 0.01, burst: {limit}}}\npool: {{max_size: {pool}}}\n")
    };
    let path = temp_file("tuned.yaml", &file("2", 4));
    // One loop: the pool's counts below are one pool's (each loop has its own).
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json", "--workers", "1"]);
    let statuses = |n: usize| -> Vec<u16> { (0..n).map(|_| get(lb.addr, "/").unwrap().status).collect() };
    let metric = |name: &str| -> f64 {
        let page = get(admin, "/metrics").unwrap().text();
        page.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0.0)
    };
    assert_eq!(statuses(4), [200, 200, 429, 429]);
    // The pool kept the one connection those two requests used.
    assert_eq!(metric("lb_pool_connections{state=\"idle\"}"), 1.0);
    assert_eq!(metric("lb_pool_checkouts_total{result=\"reused\"}"), 1.0);

    // A larger burst and no pool, by reload: the next requests see both.
    std::fs::write(&path, file("5", 0)).unwrap();
    let applied = post(admin, "/reload");
    assert_eq!(applied.status, 200, "{}", applied.text());
    assert!(applied.text().contains("(pool, rate_limit changed)"), "{}", applied.text());
    assert_eq!(statuses(6), [200, 200, 200, 200, 200, 429], "the new burst, started afresh");
    assert_eq!(metric("lb_pool_connections{state=\"idle\"}"), 0.0, "nothing kept any more");
    assert_eq!(metric("lb_pool_checkouts_total{result=\"reused\"}"), 1.0, "and nothing reused");
    let line = lb.wait_for_line(WAIT, |l| l.contains("rate limits changed")).expect("the limiter says so");
    assert!(line.contains("client: 0.01/s burst 5"), "{line}");
    let config: serde_json::Value = serde_json::from_slice(&get(admin, "/config").unwrap().body).unwrap();
    assert_eq!(config["rate_limit"]["burst"], 5);
    assert_eq!(config["pool"], serde_json::Value::Null);

    // The pool back, the limit gone: every request passes, connections are reused again.
    std::fs::write(&path, observed(&[a.addr()], 0) + "pool: {max_size: 4}\n").unwrap();
    assert_eq!(post(admin, "/reload").status, 200);
    assert_eq!(statuses(5), [200; 5]);
    assert!(metric("lb_pool_checkouts_total{result=\"reused\"}") >= 4.0);
    let metrics = get(admin, "/metrics").unwrap().text();
    assert!(
        metrics.contains("lb_ratelimit_refused_total{limit=\"client\"} 3"),
        "refusals before and after counted:\n{metrics}"
    );
}

#[test]
fn a_pool_cannot_be_added_to_a_balancer_started_without_one() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let a = spawn(BackendConfig::named("alpha")).unwrap();
    let path = temp_file("nopool.yaml", &(observed(&[a.addr()], 0) + "pool: {max_size: 0}\n"));
    let (_lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    std::fs::write(&path, observed(&[a.addr()], 0) + "pool: {max_size: 8}\n").unwrap();
    let refused = post(admin, "/reload");
    assert_eq!(refused.status, 409);
    assert!(refused.text().contains("pool (the balancer started without one)"), "{}", refused.text());
}

/// The balancer started with `args`, and its admin listener's address.
fn with_admin(bin: &PathBuf, args: &[&str]) -> (tests::Server, SocketAddr) {
    let lb = start(bin, args, LISTENING);
    let line = lb.wait_for_line(WAIT, |l| listening_addr(l, ADMIN).is_some()).expect("the admin listener is announced");
    let admin = listening_addr(&line, ADMIN).unwrap();
    (lb, admin)
}

fn post(addr: SocketAddr, path: &str) -> HttpResponse {
    send(addr, format!("POST {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes()).unwrap()
}

/// Waits (bounded) until `backend` has a connection open: a request sent
/// through the balancer has reached it. `what` says which, if it never does.
fn until_under_way(backend: &backends::BackendHandle, what: &str) {
    let deadline = Instant::now() + WAIT;
    while backend.stats().active_connections.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::yield_now();
    }
}

/// A configuration of `backends` with the admin listener on a port of the
/// kernel's choosing.
fn observed(backends: &[SocketAddr], port: u16) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("  - \"{b}\"\n")).collect();
    format!(
        "listen: {{port: {port}}}\nbackends:\n{}health_check: {{enabled: false}}\nmetrics: {{enabled: true}}\n",
        list.concat()
    )
}

#[test]
fn the_admin_listener_reloads_and_shows_the_generation_and_hash() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    let path = temp_file("admin.yaml", &observed(&[a.addr()], 0));
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    let config: serde_json::Value = serde_json::from_slice(&get(admin, "/config").unwrap().body).unwrap();
    assert_eq!(config["generation"], 1);
    let first_hash = config["hash"].as_str().unwrap().to_string();
    assert_eq!(first_hash.len(), 16);

    // GET is not how to reload.
    let refused = get(admin, "/reload").unwrap();
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("allow"), Some("POST"));

    // Unchanged, then a new set, then a broken file, then a change that needs a restart.
    assert_eq!(post(admin, "/reload").status, 200);
    std::fs::write(&path, observed(&[b.addr()], 0)).unwrap();
    let applied = post(admin, "/reload");
    assert_eq!(applied.status, 200, "{}", applied.text());
    assert!(applied.text().contains("applied: generation 2 (backends changed)"), "{}", applied.text());
    assert!(get(lb.addr, "/").unwrap().text().contains("beta"));
    std::fs::write(&path, "backends: []\n").unwrap();
    let invalid = post(admin, "/reload");
    assert_eq!(invalid.status, 422);
    assert!(invalid.text().contains("admin.yaml:1:11:"), "{}", invalid.text());
    // (The admin listener cannot move while running.)
    let moved = observed(&[b.addr()], 0).replace("metrics: {enabled: true}", "metrics: {enabled: true, port: 9}");
    std::fs::write(&path, moved).unwrap();
    assert_eq!(post(admin, "/reload").status, 409);
    assert!(get(lb.addr, "/").unwrap().text().contains("beta"), "still serving the good set");

    let config: serde_json::Value = serde_json::from_slice(&get(admin, "/config").unwrap().body).unwrap();
    assert_eq!(config["generation"], 2);
    assert_ne!(config["hash"].as_str().unwrap(), first_hash);
    assert_eq!(config["backends"][0], format!("{}:1", b.addr()));
    assert_eq!(config["reloads"]["applied"], 1);
    assert_eq!(config["reloads"]["unchanged"], 1);
    assert_eq!(config["reloads"]["invalid"], 1);
    assert_eq!(config["reloads"]["restart_needed"], 1);
    assert_eq!(config["last"]["result"], "restart_needed");

    let metrics = get(admin, "/metrics").unwrap().text();
    for line in [
        "lb_config_reloads_total{result=\"applied\"} 1",
        "lb_config_reloads_total{result=\"invalid\"} 1",
        "lb_config_generation 2",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("lb_config_swap_seconds{percentile=\"99\"}"), "{metrics}");
    // The per-backend series follow the set in use.
    assert!(metrics.contains(&format!("lb_backend_up{{backend=\"{}\"}} 1", b.addr())), "{metrics}");
    assert!(!metrics.contains(&format!("lb_backend_up{{backend=\"{}\"}}", a.addr())), "{metrics}");
}

#[test]
fn a_reload_moves_the_listener_and_loses_no_waiting_client() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let a = spawn(BackendConfig::named("alpha")).unwrap();
    let path = temp_file("listen.yaml", &observed(&[a.addr()], 0));
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // A client on the old port with a request under way keeps its answer.
    let mut kept = BufReader::new(connect(lb.addr).unwrap());
    std::fs::write(&path, observed(&[a.addr()], port)).unwrap();
    let applied = post(admin, "/reload");
    assert!(applied.text().contains("listen changed"), "{}", applied.text());
    let moved: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(get(moved, "/").unwrap().text().contains("alpha"), "the new port serves");
    assert!(TcpStream::connect(lb.addr).is_err(), "the old port is closed");
    kept.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut kept, false).unwrap().status, 200, "a connection accepted before the move is served");
}

#[test]
fn a_request_under_way_finishes_on_the_set_it_started_with() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let slow = spawn(BackendConfig { latency: Duration::from_millis(600), ..BackendConfig::named("slow") }).unwrap();
    let b = spawn(BackendConfig::named("beta")).unwrap();
    let path = temp_file("inflight.yaml", &observed(&[slow.addr()], 0));
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    let addr = lb.addr;
    let under_way = std::thread::spawn(move || get(addr, "/").unwrap());
    // Wait until the balancer has connected to the slow backend for it:
    // the backend is picked, whatever happens next.
    until_under_way(&slow, "the request never reached the backend");
    std::fs::write(&path, observed(&[b.addr()], 0)).unwrap();
    assert_eq!(post(admin, "/reload").status, 200);
    assert!(get(lb.addr, "/").unwrap().text().contains("beta"), "new requests go to the new set");
    let answer = under_way.join().unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.text().contains("slow"), "the request under way was answered by its backend");
}

#[test]
fn the_generation_header_never_goes_backwards_on_a_connection() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    let path = temp_file("gen.yaml", &observed(&[a.addr()], 0));
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json", "--generation-header"]);
    let mut conn = BufReader::new(connect(lb.addr).unwrap());
    let mut seen = Vec::new();
    for round in 0..6 {
        if round % 2 == 1 {
            let set = if round % 4 == 1 { b.addr() } else { a.addr() };
            std::fs::write(&path, observed(&[set], 0)).unwrap();
            assert_eq!(post(admin, "/reload").status, 200);
        }
        conn.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let r = read_response(&mut conn, false).unwrap();
        seen.push(r.header("x-lb-config-gen").unwrap().parse::<u64>().unwrap());
    }
    assert_eq!(seen, vec![1, 2, 2, 3, 3, 4], "one keep-alive connection sees each new generation, in order");
}

#[cfg(unix)]
#[test]
fn watch_applies_a_saved_file_through_a_symlink_swap_and_a_rename() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    let file = |wa: u32, wb: u32| two_backends(a.addr(), wa, b.addr(), wb);
    // As Kubernetes mounts a ConfigMap: the name is a symlink to the real file.
    let first = temp_file("v1.yaml", &file(1, 1));
    let dir = first.parent().unwrap().to_path_buf();
    let link = dir.join("lb.yaml");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&first, &link).unwrap();
    let lb = start(&bin, &["-c", link.to_str().unwrap(), "-w", "-i", "50", "--log-format", "json"], LISTENING);
    assert!(lb.wait_for_line(WAIT, |l| l.contains("watching the configuration file")).is_some());
    let shares = |n: usize| alpha_and_beta(lb.addr, n);
    assert_eq!(shares(10), (5, 5));

    // The symlink swapped to a new file, atomically.
    let second = dir.join("v2.yaml");
    std::fs::write(&second, file(1, 4)).unwrap();
    let swap = dir.join("lb.yaml.new");
    let _ = std::fs::remove_file(&swap);
    std::os::unix::fs::symlink(&second, &swap).unwrap();
    std::fs::rename(&swap, &link).unwrap();
    assert!(lb.wait_for_line(WAIT, |l| l.contains("configuration reloaded")).is_some());
    assert_eq!(shares(10), (2, 8));

    // An editor that saves by writing a new file and renaming it over the old.
    let saved = dir.join(".lb.yaml.swp");
    std::fs::write(&saved, file(4, 1)).unwrap();
    std::fs::rename(&saved, &link).unwrap();
    assert!(lb.wait_for_line(WAIT, |l| l.contains("configuration reloaded")).is_some());
    assert_eq!(shares(10), (8, 2));
}

#[cfg(target_os = "linux")]
#[test]
fn watch_notices_a_save_at_once_through_inotify() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    let file = |wa: u32, wb: u32| two_backends(a.addr(), wa, b.addr(), wb);
    let path = temp_file("inotify.yaml", &file(1, 1));
    // An interval of ten minutes: only inotify can notice the save within the test's wait.
    let lb = start(&bin, &["-c", path.to_str().unwrap(), "-w", "-i", "600000", "--log-format", "json"], LISTENING);
    assert!(lb.wait_for_line(WAIT, |l| l.contains("watching the configuration file")).is_some());
    let saved = path.with_file_name(".inotify.yaml.tmp");
    std::fs::write(&saved, file(1, 4)).unwrap();
    std::fs::rename(&saved, &path).unwrap();
    assert!(lb.wait_for_line(WAIT, |l| l.contains("configuration reloaded")).is_some());
    assert_eq!(alpha_and_beta(lb.addr, 10), (2, 8));
}

/// Reloads every 100 ms, valid and not, under keep-alive and new-connection
/// load: no request fails, and after the last valid reload only its
/// backends answer. (`cargo xtask bench --reload` runs the long version
/// with wrk: 64 connections for 60 s.)
#[cfg(unix)]
#[test]
fn reloads_every_100_ms_under_load_lose_no_request() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let names = ["alpha", "beta", "gamma"];
    let handles: Vec<_> = names.iter().map(|n| spawn(BackendConfig::named(*n)).unwrap()).collect();
    let addrs: Vec<SocketAddr> = handles.iter().map(|h| h.addr()).collect();
    let path = temp_file("torture.yaml", &observed(&addrs[..2], 0));
    let lb = start(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"], LISTENING);

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for k in 0..9 {
        // Any failure panics the client thread, and the join below fails the test.
        let (stop, served, addr) = (Arc::clone(&stop), Arc::clone(&served), lb.addr);
        clients.push(std::thread::spawn(move || {
            let mut conn = None;
            while !stop.load(Ordering::Relaxed) {
                // Client 0 opens a new connection for every request; the others keep theirs.
                let answer = if k == 0 {
                    get(addr, "/")
                } else {
                    let c = conn.get_or_insert_with(|| BufReader::new(connect(addr).unwrap()));
                    c.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").and_then(|()| read_response(c, false))
                };
                match answer {
                    Ok(r) if r.status == 200 => served.fetch_add(1, Ordering::Relaxed),
                    Ok(r) => panic!("client {k}: {} {}", r.status, r.text()),
                    Err(e) => panic!("client {k}: {e}"),
                };
            }
        }));
    }
    // Sets that change every valid time, with a broken file between.
    let sets: [&[SocketAddr]; 3] = [&addrs[1..3], &[addrs[2], addrs[0]], &addrs[..2]];
    let mut last = &addrs[..2];
    for round in 0..24 {
        if round % 2 == 0 {
            last = sets[(round / 2) % 3];
            std::fs::write(&path, observed(last, 0)).unwrap();
        } else {
            std::fs::write(&path, "backends:\n  - host: a\n    port: 0\n").unwrap();
        }
        hup(&lb);
        let want = if round % 2 == 0 { "configuration reloaded" } else { "configuration refused" };
        assert!(lb.wait_for_line(WAIT, |l| l.contains(want)).is_some(), "round {round}: no '{want}'");
        std::thread::sleep(Duration::from_millis(100)); // the pace of the reloads, not a wait for readiness
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("no client saw a failed request");
    }
    assert!(served.load(Ordering::Relaxed) > 100, "the load ran: {}", served.load(Ordering::Relaxed));
    let allowed: Vec<&str> = last.iter().map(|a| names[addrs.iter().position(|x| x == a).unwrap()]).collect();
    for _ in 0..20 {
        let body = get(lb.addr, "/").unwrap().text();
        assert!(allowed.iter().any(|n| body.contains(n)), "{body} is not from {allowed:?}");
    }
}

#[test]
fn log_file_alone_writes_a_timestamped_file_in_the_current_directory() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let a = spawn(BackendConfig::named("alpha")).unwrap();
    let path = temp_file("stamped.yaml", &observed(&[a.addr()], 0));
    let dir = path.parent().unwrap().join("logs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = std::process::Command::new(&bin)
        .current_dir(&dir)
        .args(["-c", path.to_str().unwrap(), "--log-file", "--log-format", "json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let found = loop {
        let named =
            std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).find(
                |n| {
                    n.starts_with("hot_reload_lb-")
                        && n.ends_with(".log")
                        && n.len() == "hot_reload_lb-20261203-204512.log".len()
                },
            );
        if let Some(name) = named
            && std::fs::read_to_string(dir.join(&name)).unwrap_or_default().contains(LISTENING)
        {
            break name;
        }
        assert!(Instant::now() < deadline, "no hot_reload_lb-YYYYMMDD-HHMMSS.log with the listening line");
        std::thread::yield_now();
    };
    assert!(found.chars().filter(char::is_ascii_digit).count() == 14, "{found}");
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(unix)]
#[test]
fn workers_share_the_listening_socket_the_rate_limit_and_the_counters() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    // 20 requests per client address (all of ours come from 127.0.0.1),
    // and then one per 100 s: one limit, whichever loop asks.
    let yaml = observed(&[a.addr(), b.addr()], 0) + "rate_limit: {per_ip: 0.01, burst: 20}\npool: {max_size: 4}\n";
    let path = temp_file("workers.yaml", &yaml);
    let (mut lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json", "--workers", "3"]);
    let addr = lb.addr;
    // 8 clients at once, 5 new connections each: 40 connections.
    let (passed, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (passed, refused) = (Arc::clone(&passed), Arc::clone(&refused));
            std::thread::spawn(move || {
                for _ in 0..5 {
                    match get(addr, "/").unwrap().status {
                        200 => passed.fetch_add(1, Ordering::Relaxed),
                        429 => refused.fetch_add(1, Ordering::Relaxed),
                        other => panic!("status {other}"),
                    };
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!((passed.load(Ordering::Relaxed), refused.load(Ordering::Relaxed)), (20, 20), "one limit for all loops");
    // The counters are the process's, not one loop's.
    let page = get(admin, "/metrics").unwrap().text();
    let count = |prefix: &str| -> f64 {
        page.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    assert_eq!(count("lb_requests_total{"), 40.0, "{page}");
    assert_eq!(count("lb_ratelimit_refused_total{"), 20.0, "{page}");
    signal(lb.pid(), nix::sys::signal::Signal::SIGTERM);
    // Each loop says how many connections it accepted as it stops.
    let mut accepted = std::collections::BTreeMap::new();
    while accepted.len() < 3 {
        let line = lb.wait_for_line(WAIT, |l| l.contains("worker stopped")).expect("every loop stops");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        accepted.insert(v["fields"]["worker"].as_u64().unwrap(), v["fields"]["accepted"].as_u64().unwrap());
    }
    assert_eq!(accepted.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(accepted.values().sum::<u64>(), 40, "{accepted:?}");
    assert!(lb.wait_exit(WAIT).is_some_and(|s| s.success()));
}

/// A burst of keep-alive clients, all arriving before a second loop is
/// even scheduled, still ends up spread evenly: the loop that accepts
/// hands each connection to the loop with the fewest (chapter 5's
/// `lb::handoff`), so three loops hold exactly 10 of 30 each.
#[test]
fn a_burst_of_kept_connections_is_spread_evenly_over_the_loops() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let a = spawn(BackendConfig::named("alpha")).unwrap();
    let path = temp_file("burst.yaml", &observed(&[a.addr()], 0));
    let (mut lb, _admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json", "--workers", "3"]);
    let request = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", lb.addr);
    // All 30 connect first, then each asks once and stays open.
    let mut kept: Vec<_> = (0..30).map(|_| BufReader::new(connect(lb.addr).unwrap())).collect();
    for conn in &mut kept {
        conn.get_mut().write_all(request.as_bytes()).unwrap();
    }
    for conn in &mut kept {
        assert_eq!(read_response(conn, false).unwrap().status, 200);
    }
    signal(lb.pid(), nix::sys::signal::Signal::SIGTERM);
    let mut taken = std::collections::BTreeMap::new();
    let mut handed = 0;
    while taken.len() < 3 {
        let line = lb.wait_for_line(WAIT, |l| l.contains("worker stopped")).expect("every loop stops");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        taken.insert(v["fields"]["worker"].as_u64().unwrap(), v["fields"]["accepted"].as_u64().unwrap());
        handed += v["fields"]["handed"].as_u64().unwrap();
    }
    assert_eq!(taken.values().copied().collect::<Vec<_>>(), [10, 10, 10], "handed over: {handed}");
    drop(kept);
    assert!(lb.wait_exit(WAIT).is_some_and(|s| s.success()));
}

/// Sends `signal` to process `pid`.
#[cfg(unix)]
fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), signal).unwrap();
}

/// The `pid` field of a JSON log line.
fn pid_in(line: &str) -> u32 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    u32::try_from(v["fields"]["pid"].as_u64().unwrap()).unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn sigusr2_upgrades_the_binary_under_load_and_no_request_fails() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    let path = temp_file("upgrade.yaml", &observed(&[a.addr(), b.addr()], 0));
    let (mut old, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    assert_eq!(serving_pid(admin), old.pid());

    let stop = Arc::new(AtomicBool::new(false));
    let (served, retried) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for k in 0..5 {
        let (stop, served, retried, addr) = (Arc::clone(&stop), Arc::clone(&served), Arc::clone(&retried), old.addr);
        clients.push(std::thread::spawn(move || {
            let mut conn: Option<BufReader<TcpStream>> = None;
            while !stop.load(Ordering::Relaxed) {
                let answer = if k == 0 {
                    // A new connection per request: a refused or reset one fails the test.
                    get(addr, "/")
                } else {
                    let reused = conn.is_some();
                    let c = conn.get_or_insert_with(|| BufReader::new(connect(addr).unwrap()));
                    let mut answer = c
                        .get_mut()
                        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                        .and_then(|()| read_response(c, false));
                    if answer.is_err() && reused {
                        // A kept-alive connection the old process closed as
                        // our request crossed it: sent again on a new
                        // connection, as HTTP clients do (RFC 9112, 9.3.1).
                        // Counted: the drain should never make one.
                        retried.fetch_add(1, Ordering::Relaxed);
                        let c = conn.insert(BufReader::new(connect(addr).unwrap()));
                        answer = c
                            .get_mut()
                            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                            .and_then(|()| read_response(c, false));
                    }
                    answer
                };
                // The draining process says `Connection: close` on its last answer.
                if answer.as_ref().is_ok_and(|r| r.header("connection") == Some("close")) {
                    conn = None;
                }
                match answer {
                    Ok(r) if r.status == 200 => served.fetch_add(1, Ordering::Relaxed),
                    Ok(r) => panic!("client {k}: {} {}", r.status, r.text()),
                    Err(e) => panic!("client {k}: {e}"),
                };
            }
        }));
    }
    let until = |n: u64| {
        let deadline = Instant::now() + WAIT;
        while served.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "the load stalled at {}", served.load(Ordering::Relaxed));
            std::thread::yield_now();
        }
    };
    until(200);
    signal(old.pid(), nix::sys::signal::Signal::SIGUSR2);
    let line = old.wait_for_line(WAIT, |l| l.contains("upgrade: the new process serves")).expect("upgraded");
    let new_pid = pid_in(&line);
    // Not our child: stopped by hand, even when the test fails.
    let _new = Stop(new_pid);
    assert_ne!(new_pid, old.pid());
    // The old process drains and exits by itself.
    drained(&mut old);
    let after = served.load(Ordering::Relaxed);
    until(after + 200);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("no client saw a failed request");
    }
    // The same addresses, the new process behind them.
    assert_eq!(serving_pid(admin), new_pid);
    // Every kept-alive client was told `Connection: close` with an answer,
    // never closed on while its next request was on the way.
    assert_eq!(retried.load(Ordering::Relaxed), 0, "requests that crossed the old process closing their connection");
}

/// The pid `GET /config` on `admin` names.
#[cfg(target_os = "linux")]
fn serving_pid(admin: SocketAddr) -> serde_json::Value {
    let config: serde_json::Value = serde_json::from_slice(&get(admin, "/config").unwrap().body).unwrap();
    config["pid"].clone()
}

/// Waits (bounded) for the old process of an upgrade to have drained and
/// exited. Not `wait_exit`: the new process writes to the same stderr
/// pipe, which stays open.
#[cfg(target_os = "linux")]
fn drained(old: &mut tests::Server) {
    let deadline = Instant::now() + WAIT;
    while old.is_running() {
        assert!(Instant::now() < deadline, "the old process never exited");
        std::thread::yield_now();
    }
}

/// Kills a process that is not the test's child when dropped.
#[cfg(target_os = "linux")]
struct Stop(u32);

#[cfg(target_os = "linux")]
impl Drop for Stop {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn an_upgrade_whose_new_process_fails_leaves_the_old_one_serving() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let a = spawn(BackendConfig::named("alpha")).unwrap();
    let path = temp_file("upgrade-broken.yaml", &observed(&[a.addr()], 0));
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    // The new binary reads the file at start: a broken one stops it.
    std::fs::write(&path, "backends: []\n").unwrap();
    signal(lb.pid(), nix::sys::signal::Signal::SIGUSR2);
    let line = lb.wait_for_line(WAIT, |l| l.contains("upgrade failed; this process serves on")).expect("reported");
    assert!(line.contains("the new process exited before it was ready"), "{line}");
    assert_eq!(serving_pid(admin), lb.pid());
    assert!(get(lb.addr, "/").unwrap().text().contains("alpha"));
}

#[cfg(target_os = "linux")]
#[test]
fn post_upgrade_answers_once_the_new_process_serves_and_a_failed_one_changes_nothing() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let a = spawn(BackendConfig::named("alpha")).unwrap();
    let path = temp_file("upgrade-admin.yaml", &observed(&[a.addr()], 0));
    let (mut old, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    assert_eq!(get(admin, "/upgrade").unwrap().status, 405, "only POST upgrades");

    // A broken file stops the new binary at start: 500, and this one serves on.
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, "backends: []\n").unwrap();
    let failed = post(admin, "/upgrade");
    assert_eq!(failed.status, 500, "{}", failed.text());
    assert!(failed.text().contains("the new process exited before it was ready"), "{}", failed.text());
    assert_eq!(serving_pid(admin), old.pid());

    // The answer arrives whole, written before the old process stops.
    std::fs::write(&path, good).unwrap();
    let done = post(admin, "/upgrade");
    assert_eq!(done.status, 200, "{}", done.text());
    let new_pid: u32 = done.text().split_whitespace().nth(2).and_then(|p| p.parse().ok()).expect("the new pid");
    let _new = Stop(new_pid);
    assert!(done.text().contains(&format!("this one ({}) drains", old.pid())), "{}", done.text());
    drained(&mut old);
    // The same admin address and balancer address, the new process behind them.
    assert_eq!(serving_pid(admin), new_pid);
    assert!(get(old.addr, "/").unwrap().text().contains("alpha"));
}

#[cfg(target_os = "linux")]
#[test]
fn once_upgraded_every_new_admin_client_reaches_the_new_process() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let slow = spawn(BackendConfig { latency: Duration::from_secs(3), ..BackendConfig::named("slow") }).unwrap();
    let path = temp_file("upgrade-admin-stop.yaml", &observed(&[slow.addr()], 0));
    let (mut old, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    // A request under way keeps the old process draining for a while.
    let addr = old.addr;
    let under_way = std::thread::spawn(move || get(addr, "/").unwrap());
    until_under_way(&slow, "the request never reached the backend");
    let done = post(admin, "/upgrade");
    assert_eq!(done.status, 200, "{}", done.text());
    let new_pid: u32 = done.text().split_whitespace().nth(2).and_then(|p| p.parse().ok()).expect("the new pid");
    let _new = Stop(new_pid);
    old.wait_for_line(WAIT, |l| l.contains("takes no more admin connections"))
        .expect("the old process stops taking admin clients");
    assert!(old.is_running(), "the old process still drains the request under way");
    // Both processes hold the admin socket; only the new one takes clients.
    for _ in 0..20 {
        assert_eq!(serving_pid(admin), new_pid);
    }
    assert_eq!(under_way.join().unwrap().status, 200, "the request under way is answered");
    drained(&mut old);
}

/// A layer 4 configuration of `backends`, with the admin listener on a
/// port of the kernel's choosing and no probes.
fn layer4(backends: &[SocketAddr]) -> String {
    observed(backends, 0).replacen("listen:", "mode: tcp\nlisten:", 1)
}

/// Sends a request on a kept connection and reads the answer's body.
fn ask(conn: &mut BufReader<TcpStream>) -> String {
    conn.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    read_response(conn, false).unwrap().text()
}

#[cfg(unix)]
#[test]
fn layer4_mode_relays_connections_and_a_reload_moves_only_new_ones() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    let path = temp_file("layer4.yaml", &layer4(&[a.addr()]));
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    // A connection relayed whole: its requests are never read, only its bytes.
    let mut kept = BufReader::new(connect(lb.addr).unwrap());
    assert!(ask(&mut kept).contains("alpha"));

    std::fs::write(&path, layer4(&[b.addr()])).unwrap();
    hup(&lb);
    let line = lb.wait_for_line(WAIT, |l| l.contains("configuration reloaded")).expect("reloaded");
    assert!(line.contains("backends") && line.contains("\"generation\":2"), "{line}");
    for _ in 0..3 {
        assert!(get(lb.addr, "/").unwrap().text().contains("beta"), "a new connection goes to the new set");
    }
    assert!(ask(&mut kept).contains("alpha"), "a connection under way keeps its backend");

    // A broken file and a change of mode: refused, nothing changes.
    std::fs::write(&path, layer4(&[b.addr()]) + "routes: []\n").unwrap();
    let refused = post(admin, "/reload");
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(refused.text().contains("`routes` applies to mode: http only"), "{}", refused.text());
    std::fs::write(&path, observed(&[b.addr()], 0)).unwrap();
    let restart = post(admin, "/reload");
    assert_eq!(restart.status, 409, "{}", restart.text());
    assert!(restart.text().contains("mode"), "{}", restart.text());
    assert!(get(lb.addr, "/").unwrap().text().contains("beta"));

    // What the admin listener shows of a relay.
    let lb_stats = || -> serde_json::Value { serde_json::from_slice(&get(admin, "/lb-stats").unwrap().body).unwrap() };
    let stats = lb_stats();
    assert_eq!(stats["mode"], "tcp");
    assert_eq!(stats["generation"], 2);
    assert_eq!(stats["backends"][0]["addr"], b.addr().to_string());
    assert_eq!(stats["backends"][0]["in_set"], true);
    // The closed connections end once the relay has seen both sides go:
    // then only the kept one is open.
    let deadline = Instant::now() + WAIT;
    while lb_stats()["open"] != 1 {
        assert!(Instant::now() < deadline, "still open: {}", lb_stats()["open"]);
        std::thread::yield_now();
    }
    assert_eq!(get(admin, "/readyz").unwrap().status, 200);
    let metrics = get(admin, "/metrics").unwrap().text();
    assert!(metrics.contains("lb_l4_connections_total{outcome=\"accepted\"} 5"), "{metrics}");
    assert!(metrics.contains(&format!("lb_l4_backend_connections_total{{backend=\"{}\"}} 4", b.addr())), "{metrics}");
    assert!(metrics.contains("lb_config_reloads_total{result=\"applied\"} 1"), "{metrics}");
    // The removed backend is shown while it still relays the kept
    // connection (the operator's cue to wait), and no longer once it ends.
    let removed = &lb_stats()["backends"][1];
    assert_eq!(
        (removed["addr"].as_str(), removed["in_set"].as_bool()),
        (Some(a.addr().to_string().as_str()), Some(false))
    );
    assert_eq!(removed["open"], 1);
    assert!(metrics.contains(&format!("lb_l4_backend_open_connections{{backend=\"{}\"}} 1", a.addr())), "{metrics}");
    drop(kept);
    let deadline = Instant::now() + WAIT;
    while lb_stats()["backends"].as_array().map(Vec::len) != Some(1) {
        assert!(Instant::now() < deadline, "the removed backend is still shown: {}", lb_stats());
        std::thread::yield_now();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn layer4_mode_upgrades_and_the_old_process_drains_the_connection_it_relays() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let a = spawn(BackendConfig::named("alpha")).unwrap();
    let path = temp_file("layer4-upgrade.yaml", &layer4(&[a.addr()]));
    let (mut old, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"]);
    let mut kept = BufReader::new(connect(old.addr).unwrap());
    assert!(ask(&mut kept).contains("alpha"));

    let upgraded = post(admin, "/upgrade");
    assert_eq!(upgraded.status, 200, "{}", upgraded.text());
    let line = old.wait_for_line(WAIT, |l| l.contains("upgrade: the new process serves")).expect("upgraded");
    let new_pid = pid_in(&line);
    let _new = Stop(new_pid);
    assert_eq!(serving_pid(admin), new_pid, "new admin clients reach the new process");
    // New connections go to the new process; the old one still relays
    // the connection it had, draining, and exits once it ends.
    assert!(get(old.addr, "/").unwrap().text().contains("alpha"));
    assert!(old.wait_for_line(WAIT, |l| l.contains("draining connections under way")).is_some());
    assert!(old.is_running(), "the old process waits for its connection");
    assert!(ask(&mut kept).contains("alpha"), "relayed by the draining process");
    drop(kept);
    drained(&mut old);
}

#[cfg(unix)]
#[test]
fn a_stopping_balancer_refuses_new_clients_at_once_and_finishes_the_one_under_way() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    for mode in ["http", "tcp"] {
        let slow =
            spawn(BackendConfig { latency: Duration::from_millis(1500), ..BackendConfig::named("slow") }).unwrap();
        let text = format!("mode: {mode}\n") + &observed(&[slow.addr()], 0);
        let path = temp_file(&format!("stopping-{mode}.yaml"), &text);
        let (mut lb, _admin) =
            with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json", "--workers", "1"]);
        let addr = lb.addr;
        let under_way = std::thread::spawn(move || get(addr, "/"));
        until_under_way(&slow, "the request reaches the slow backend");
        signal(lb.pid(), nix::sys::signal::Signal::SIGTERM);
        assert!(lb.wait_for_line(WAIT, |l| l.contains("stopping: no new connections")).is_some());
        // Refused, not queued until the drain ends and then reset: nothing
        // (the upgrade's copy of the socket included) keeps it listening.
        let deadline = Instant::now() + WAIT;
        loop {
            match TcpStream::connect(addr) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    assert!(!under_way.is_finished(), "{mode}: new clients were taken until the drain ended");
                    break;
                }
                _ => assert!(Instant::now() < deadline, "{mode}: still taking new clients while stopping"),
            }
            std::thread::yield_now();
        }
        let answer = under_way.join().unwrap().expect("the request under way is answered");
        assert_eq!(answer.status, 200, "{mode}");
        assert!(lb.wait_exit(WAIT).is_some_and(|s| s.success()), "{mode}");
    }
}

#[cfg(unix)]
#[test]
fn layer4_mode_with_two_loops_spreads_connections_and_a_reload_reaches_both() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    let path = temp_file("layer4-loops.yaml", &layer4(&[a.addr()]));
    let (lb, admin) = with_admin(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json", "--workers", "2"]);
    // A burst of kept connections, as one client opens them: whichever
    // loop the kernel wakes, each loop ends up with half.
    let mut kept: Vec<_> = (0..10).map(|_| BufReader::new(connect(lb.addr).unwrap())).collect();
    for conn in &mut kept {
        assert!(ask(conn).contains("alpha"));
    }
    let stats: serde_json::Value = serde_json::from_slice(&get(admin, "/lb-stats").unwrap().body).unwrap();
    assert_eq!(stats["loops"], serde_json::json!([5, 5]), "{stats}");

    // "applied" comes once both loops serve the new set: every new
    // connection after it, whichever loop takes it, goes to beta.
    std::fs::write(&path, layer4(&[b.addr()])).unwrap();
    let applied = post(admin, "/reload");
    assert_eq!(applied.status, 200, "{}", applied.text());
    for _ in 0..10 {
        assert!(get(lb.addr, "/").unwrap().text().contains("beta"));
    }
    for conn in &mut kept {
        assert!(ask(conn).contains("alpha"), "kept connections keep their backend on either loop");
    }
}
