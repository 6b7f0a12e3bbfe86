//! `metrics_lb` (chapter 8) watched by real clients of its admin
//! listener: after known traffic, `/metrics` holds exactly the counts
//! (checked line by line and by `promtool check metrics`), `/lb-stats`
//! says the same in JSON, `/healthz` and `/readyz` follow the backends'
//! health, the listener refuses what it does not serve, and a real
//! Prometheus server scrapes it and answers queries about it.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backends::client::{HttpResponse, IO_TIMEOUT, get, read_response, send};
use backends::{BackendConfig, BackendHandle};
use socket2::{Domain, Socket, Type};
use tests::{binary, listening_addr, start};

const WAIT: Duration = Duration::from_secs(10);
const ADMIN: &str = "admin listening (/metrics, /lb-stats, /healthz, /readyz)";

/// `metrics_lb` in front of `backend`, and its admin address.
fn metrics_lb(backend: &BackendHandle, extra: &[&str]) -> (tests::Server, SocketAddr) {
    let addr = backend.addr().to_string();
    let mut args = vec!["-p", "0", "--log-format", "json", "--backend", addr.as_str()];
    args.extend_from_slice(extra);
    let lb = start(&binary("ch08-metrics", "metrics_lb"), &args, "metrics load balancer listening");
    let line = lb.wait_for_line(WAIT, |l| listening_addr(l, ADMIN).is_some()).expect("the admin listener is announced");
    let admin = listening_addr(&line, ADMIN).unwrap();
    (lb, admin)
}

/// One GET from `127.0.0.<last>` on its own connection.
fn get_from(last: u8, to: SocketAddr, path: &str) -> HttpResponse {
    get_from_ip(Ipv4Addr::new(127, 0, 0, last), to, path)
}

/// One GET from `from` (a loopback address) on its own connection.
fn get_from_ip(from: Ipv4Addr, to: SocketAddr, path: &str) -> HttpResponse {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddrV4::new(from, 0).into()).unwrap();
    socket.connect_timeout(&to.into(), IO_TIMEOUT).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n").unwrap();
    read_response(&mut BufReader::new(stream), false).unwrap()
}

fn text(r: &HttpResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The value of the sample line `series` (name and labels, exactly).
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `/metrics` once `ready` says it is complete. A request is counted when
/// the loop sees its exchange end, which can be a moment after the client
/// has read the last byte; the loop is bounded by a deadline.
fn scrape_when(admin: SocketAddr, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = text(&get(admin, "/metrics").unwrap());
        if ready(&m) || Instant::now() > deadline {
            return m;
        }
        std::thread::yield_now();
    }
}

/// All requests counted in `lb_requests_total`, over every series.
fn requests_counted(m: &str) -> f64 {
    m.lines()
        .filter(|l| l.starts_with("lb_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs `promtool check metrics` on `scrape` when promtool is installed
/// (CI installs it: there it must be). `None` when it is not.
fn promtool(scrape: &str) -> Option<String> {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(std::env::var_os("CI").is_none(), "promtool is not installed, and CI installs it (.ci/run)");
        eprintln!("promtool not installed (apt-get install prometheus): skipped");
        return None;
    };
    child.stdin.take().unwrap().write_all(scrape.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "promtool failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn after_known_traffic_the_metrics_hold_exactly_the_counts_and_promtool_has_nothing_to_say() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    let b = backend.addr().to_string();
    let (lb, admin) = metrics_lb(&backend, &["--rate", "0.01", "--burst", "3", "--health-check", "off"]);
    // From 127.0.0.2: three pass, three are refused. From 127.0.0.3: a 404
    // and a 503 from the backend.
    let got: Vec<u16> = (0..6).map(|_| get_from(2, lb.addr, "/").status).collect();
    assert_eq!(got, [200, 200, 200, 429, 429, 429]);
    assert_eq!(get_from(3, lb.addr, "/status/404").status, 404);
    assert_eq!(get_from(3, lb.addr, "/status/503").status, 503);
    let scrape = get(admin, "/metrics").unwrap();
    assert_eq!(scrape.status, 200);
    assert_eq!(scrape.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let m = scrape_when(admin, |m| requests_counted(m) == 8.0);
    let want = [
        (format!("lb_requests_total{{backend=\"{b}\",status=\"200\"}}"), 3.0),
        (format!("lb_requests_total{{backend=\"{b}\",status=\"404\"}}"), 1.0),
        (format!("lb_requests_total{{backend=\"{b}\",status=\"503\"}}"), 1.0),
        ("lb_requests_total{backend=\"none\",status=\"429\"}".to_string(), 3.0),
        (format!("lb_request_duration_seconds_count{{backend=\"{b}\"}}"), 5.0),
        (format!("lb_request_duration_seconds_bucket{{backend=\"{b}\",le=\"+Inf\"}}"), 5.0),
        (format!("lb_backend_up{{backend=\"{b}\"}}"), 1.0),
        ("lb_connections_accepted_total".to_string(), 8.0),
        ("lb_ratelimit_decisions_total{decision=\"passed\"}".to_string(), 5.0),
        ("lb_ratelimit_decisions_total{decision=\"refused\"}".to_string(), 3.0),
        ("lb_ratelimit_refused_total{limit=\"client\"}".to_string(), 3.0),
        ("lb_pool_checkouts_total{result=\"created\"}".to_string(), 1.0),
        ("lb_pool_checkouts_total{result=\"reused\"}".to_string(), 4.0),
        ("metrics_series_folded_total{family=\"lb_requests_total\"}".to_string(), 0.0),
    ];
    for (series, value) in want {
        assert_eq!(sample(&m, &series), Some(value), "{series} in:\n{m}");
    }
    assert!(sample(&m, "process_resident_memory_bytes").is_some_and(|v| v > 1e6), "{m}");
    assert!(sample(&m, "process_open_fds").is_some_and(|v| v >= 5.0), "{m}");
    assert!(m.contains("lb_config_info{listen=\""), "{m}");
    if let Some(said) = promtool(&m) {
        assert!(said.trim().is_empty(), "promtool says:\n{said}\nof:\n{m}");
    }
    // OpenMetrics when the scraper asks for it, as Prometheus does (the
    // real Prometheus below reads this format).
    let raw = b"GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\nConnection: close\r\n\r\n";
    let om = send(admin, raw).unwrap();
    assert_eq!(om.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    let om = text(&om);
    assert!(om.ends_with("\n# EOF\n") && om.contains("# TYPE lb_requests counter\n"), "{om}");
    assert!(om.contains("# UNIT lb_request_duration_seconds seconds\n"), "{om}");
    assert_eq!(sample(&om, &format!("lb_requests_total{{backend=\"{b}\",status=\"200\"}}")), Some(3.0));
    // promtool reads only the Prometheus format; what OpenMetrics adds is
    // that a family's name is unique once counters lose their `_total`.
    let families: Vec<&str> = om.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    let unique: std::collections::HashSet<&&str> = families.iter().collect();
    assert_eq!(unique.len(), families.len(), "a family name twice in OpenMetrics: {families:?}");
    // The same numbers as JSON.
    let stats: serde_json::Value = serde_json::from_slice(&get(admin, "/lb-stats").unwrap().body).unwrap();
    let backend_stats = &stats["groups"][0]["backends"][0];
    assert_eq!(backend_stats["address"], b.as_str());
    assert_eq!(backend_stats["requests"], 5);
    assert_eq!(backend_stats["by_status"]["200"], 3);
    assert_eq!(backend_stats["healthy"], true);
    assert_eq!(backend_stats["latency_seconds"]["count"], 5);
    assert!(backend_stats["latency_seconds"]["p99"].as_f64().is_some_and(|p| p > 0.0), "{stats}");
    assert_eq!(stats["answered_without_backend"]["429"], 3);
    assert_eq!(stats["limiter"]["refused"], 3);
    assert_eq!(stats["pool"]["reused"], 4);
}

#[test]
fn healthz_and_readyz_follow_the_backends_and_the_listener_refuses_what_it_does_not_serve() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    let (lb, admin) = metrics_lb(
        &backend,
        &["--health-interval-ms", "100", "--unhealthy-threshold", "1", "--healthy-threshold", "1"],
    );
    assert_eq!(get(admin, "/healthz").unwrap().status, 200);
    let ready = get(admin, "/readyz").unwrap();
    assert_eq!((ready.status, text(&ready).as_str()), (200, "ready: 1 of 1 backends healthy\n"));
    // The backend fails its health checks from now on: not ready.
    assert_eq!(get(backend.addr(), "/admin/health/down").unwrap().status, 200);
    lb.wait_for_line(WAIT, |l| l.contains("backend is DOWN")).expect("the probe takes the backend down");
    let ready = get(admin, "/readyz").unwrap();
    assert_eq!((ready.status, text(&ready).as_str()), (503, "not ready: none of 1 backends is healthy\n"));
    assert_eq!(get(admin, "/healthz").unwrap().status, 200, "the process itself is alive");
    let m = text(&get(admin, "/metrics").unwrap());
    assert_eq!(sample(&m, &format!("lb_backend_up{{backend=\"{}\"}}", backend.addr())), Some(0.0));
    // What the listener does not serve.
    assert_eq!(get(admin, "/nothing").unwrap().status, 404);
    let post = send(admin, b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")));
    assert_eq!(send(admin, b"GET /\xff\xfe HTTP/1.1\r\n\r\n").unwrap().status, 400);
    // HEAD: the GET's headers, no body.
    let mut conn = TcpStream::connect(admin).unwrap();
    conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    conn.write_all(b"HEAD /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let head = read_response(&mut BufReader::new(conn), true).unwrap();
    assert_eq!(head.status, 200);
    assert!(head.header("content-length").is_some_and(|n| n != "0") && head.body.is_empty(), "{head:?}");
    // Several requests on one connection, as Prometheus scrapes.
    let mut conn = TcpStream::connect(admin).unwrap();
    conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for _ in 0..3 {
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut reader, false).unwrap().status, 200);
    }
}

#[test]
fn the_admin_port_can_be_turned_off_and_a_taken_one_is_explained() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(binary("ch08-metrics", "metrics_lb"))
        .args(["-p", "0", "--backend", &backend.addr().to_string(), "--admin-port", &port])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("cannot listen for admin requests on 127.0.0.1:{port} (see --admin-port)")),
        "{said}"
    );
    let (lb, _) = {
        let addr = backend.addr().to_string();
        let args = ["-p", "0", "--log-format", "json", "--backend", addr.as_str(), "--no-admin"];
        (start(&binary("ch08-metrics", "metrics_lb"), &args, "metrics load balancer listening"), ())
    };
    assert_eq!(get(lb.addr, "/").unwrap().status, 200);
    assert!(lb.wait_for_line(Duration::from_millis(300), |l| l.contains("admin listening")).is_none());
}

/// A real Prometheus server.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A relay in front of `admin` and a channel that gets a message each
/// time an answer from `admin` passes through it.
fn scrape_relay(admin: SocketAddr) -> (SocketAddr, std::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(upstream) = TcpStream::connect(admin) else { continue };
            let (mut from_client, mut to_admin) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_client, &mut to_admin);
                let _ = to_admin.shutdown(Shutdown::Write);
            });
            let tx = tx.clone();
            std::thread::spawn(move || {
                let (mut from_admin, mut to_client) = (upstream, client);
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = from_admin.read(&mut buf) {
                    if to_client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    let _ = tx.send(());
                }
                let _ = to_client.shutdown(Shutdown::Write);
            });
        }
    });
    (addr, rx)
}

/// Starts Prometheus scraping `target` every second, or `None` when it is
/// not installed (CI installs it: there it must be).
fn prometheus(target: SocketAddr) -> Option<Prometheus> {
    if Command::new("prometheus").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        assert!(std::env::var_os("CI").is_none(), "prometheus is not installed, and CI installs it (.ci/run)");
        eprintln!("prometheus not installed (apt-get install prometheus): skipped");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("lbs-prometheus-{}-{}", std::process::id(), target.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = TempDir(dir);
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: metrics_lb\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    // Prometheus cannot announce a port it picked itself, so one is taken
    // from the system and given back just before Prometheus binds it.
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.0.join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(Prometheus { child, addr, _dir: dir })
}

/// The value of the first series of an instant query, once there is one.
fn query(prom: SocketAddr, promql: &str) -> Option<f64> {
    let encoded: String = promql
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_-.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect();
    let r = get(prom, &format!("/api/v1/query?query={encoded}")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn a_real_prometheus_scrapes_the_admin_listener() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    let (lb, admin) = metrics_lb(&backend, &["--health-check", "off"]);
    for _ in 0..7 {
        assert_eq!(get(lb.addr, "/").unwrap().status, 200);
    }
    scrape_when(admin, |m| requests_counted(m) == 7.0);
    // Prometheus scrapes through a relay that reports each answer it
    // carries: the test waits for scrapes, not for time, a bounded number
    // of them (one a second).
    let (relay, scraped) = scrape_relay(admin);
    let Some(prom) = prometheus(relay) else { return };
    let next_scrape = || {
        while scraped.try_recv().is_ok() {}
        scraped.recv_timeout(Duration::from_secs(30)).expect("Prometheus scrapes the admin listener");
    };
    let mut up = None;
    for _ in 0..30 {
        next_scrape();
        up = query(prom.addr, "up{job=\"metrics_lb\"}");
        if up == Some(1.0) {
            break;
        }
    }
    assert_eq!(up, Some(1.0), "Prometheus never scraped {admin} successfully");
    let series = format!("sum(lb_requests_total{{backend=\"{}\",status=\"200\"}})", backend.addr());
    assert_eq!(query(prom.addr, &series), Some(7.0));
    assert_eq!(query(prom.addr, "count(lb_backend_up == 1)"), Some(1.0));
    // The book's query for p99 latency by backend: a number (the demo
    // backend answers in well under the 60 s top bucket).
    let p99 = "histogram_quantile(0.99, sum by (le, backend) (rate(lb_request_duration_seconds_bucket[1m])))";
    // A rate needs two scrapes with traffic between them: requests go on
    // while we ask, bounded by the deadline.
    let mut got = None;
    for _ in 0..30 {
        assert_eq!(get(lb.addr, "/").unwrap().status, 200);
        next_scrape();
        got = query(prom.addr, p99).filter(|v| v.is_finite());
        if got.is_some() {
            break;
        }
    }
    assert!(got.is_some_and(|v| v > 0.0 && v <= 60.0), "p99 by backend: {got:?}");
}

/// A headless Chromium, or `None` when none is installed (CI installs
/// one: there it must be).
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "chromium is not installed, and CI installs it (.ci/run)");
        eprintln!("chromium not installed (apt-get install chromium): skipped");
    }
    found
}

/// Loads `url` in headless Chromium, lets its scripts run for `ms` of
/// virtual time (timers fire at once; fetches are waited for), and
/// returns the page's DOM then. `extra` are more flags (a screenshot).
fn browse(browser: &str, url: &str, ms: u32, extra: &[String]) -> String {
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .arg(format!("--virtual-time-budget={ms}"))
        .args(extra)
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{browser} failed on {url}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of attribute `name` in the first tag that contains `marker`.
fn attribute(dom: &str, marker: &str, name: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let tag_start = dom.get(..at)?.rfind('<')?;
    let tag = dom.get(tag_start..)?.split('>').next()?;
    let value = tag.split(&format!("{name}=\"")).nth(1)?;
    Some(value.split('"').next()?.to_string())
}

/// The text of the cell `data-field="field"` in the row of `backend`.
fn cell(dom: &str, backend: &str, field: &str) -> Option<String> {
    let row = dom.split(&format!("data-backend=\"{backend}\"")).nth(1)?.split("</tr>").next()?;
    let cell = row.split(&format!("data-field=\"{field}\"")).nth(1)?;
    let text = cell.split_once('>')?.1.split("</td>").next()?;
    // Without any tag inside (the health dot).
    Some(text.rsplit('>').next()?.to_string())
}

#[test]
fn the_dashboard_in_a_real_browser_shows_what_lb_stats_says() {
    let backends: Vec<BackendHandle> = ["one", "two"].map(|n| backends::spawn(BackendConfig::named(n)).unwrap()).into();
    let addrs: Vec<String> = backends.iter().map(|b| b.addr().to_string()).collect();
    let (lb, admin) = {
        let mut args =
            vec!["-p", "0", "--log-format", "json", "--health-check", "off", "--rate", "0.01", "--burst", "8"];
        for a in &addrs {
            args.extend(["--backend", a.as_str()]);
        }
        let lb = start(&binary("ch08-metrics", "metrics_lb"), &args, "metrics load balancer listening");
        let line = lb.wait_for_line(WAIT, |l| listening_addr(l, ADMIN).is_some()).unwrap();
        let admin = listening_addr(&line, ADMIN).unwrap();
        (lb, admin)
    };
    // Known traffic: eight pass (one a 404), four are refused.
    let statuses: Vec<u16> =
        (0..12).map(|i| get_from(2, lb.addr, if i == 3 { "/status/404" } else { "/" }).status).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 4, "{statuses:?}");
    scrape_when(admin, |m| requests_counted(m) == 12.0);
    let Some(browser) = chromium() else { return };
    let dom = browse(browser, &format!("http://{admin}/"), 3_000, &[]);
    let polls: u32 = attribute(&dom, "id=\"summary\"", "data-polls").unwrap().parse().unwrap();
    assert!(polls >= 1, "the page polled /lb-stats: {dom}");
    assert_eq!(attribute(&dom, "id=\"summary\"", "data-total-requests").as_deref(), Some("12"), "{dom}");
    let stats: serde_json::Value = serde_json::from_slice(&get(admin, "/lb-stats").unwrap().body).unwrap();
    for b in stats["groups"][0]["backends"].as_array().unwrap() {
        let addr = b["address"].as_str().unwrap();
        assert_eq!(cell(&dom, addr, "requests"), Some(b["requests"].to_string()), "{addr} in {dom}");
        assert_eq!(cell(&dom, addr, "health").as_deref(), Some("up"));
        let p99 = b["latency_seconds"]["p99"].as_f64().unwrap();
        assert_eq!(cell(&dom, addr, "p99"), Some(format!("{:.2}", p99 * 1000.0)), "{addr}");
    }
    let served: u64 =
        stats["groups"][0]["backends"].as_array().unwrap().iter().map(|b| b["requests"].as_u64().unwrap()).sum();
    assert_eq!(served, 8);
    assert!(dom.contains("live, updated"), "no error on the page: {dom}");
    if let Some(path) = std::env::var_os("LBS_DASHBOARD_SCREENSHOT") {
        // How the book's picture is taken: the same page while clients
        // from 300 addresses take turns sending requests (each gets 8,
        // then 429s; one in seven asks for a 404), so that the charts
        // have something to draw.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, to) = (std::sync::Arc::clone(&stop), lb.addr);
        let traffic = std::thread::spawn(move || {
            let mut i = 0u32;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let path = if i % 7 == 0 { "/status/404" } else { "/" };
                let n = i % 300;
                get_from_ip(Ipv4Addr::new(127, 0, 1 + (n / 250) as u8, 2 + (n % 250) as u8), to, path);
                i += 1;
            }
        });
        let shot =
            [format!("--screenshot={}", std::path::Path::new(&path).display()), "--window-size=1100,1000".to_string()];
        browse(browser, &format!("http://{admin}/"), 8_000, &shot);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        traffic.join().unwrap();
        assert!(std::path::Path::new(&path).is_file());
    }
}

/// The lines of `path` once there are `n` (bounded by a deadline).
fn lines_when(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines: Vec<String> =
            std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::yield_now();
    }
}

#[test]
fn the_access_log_has_a_line_per_request_and_sighup_reopens_it_after_a_rotation() {
    let backend = backends::spawn(BackendConfig::named("b")).unwrap();
    let dir = std::env::temp_dir().join(format!("lbs-access-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _dir = TempDir(dir.clone());
    let log = dir.join("access.log");
    let path = log.to_str().unwrap().to_string();
    let (lb, _) = metrics_lb(&backend, &["--health-check", "off", "--access-log", &path]);
    assert_eq!(get_from(2, lb.addr, "/status/404?q=1").status, 404);
    assert_eq!(get_from(2, lb.addr, "/x%20y").status, 200);
    let lines = lines_when(&log, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["target"], "/status/404?q=1");
    assert_eq!(first["status"], 404);
    assert_eq!(first["backend"], backend.addr().to_string());
    assert_eq!(first["outcome"], "served");
    assert!(first["client"].as_str().unwrap().starts_with("127.0.0.2:"), "{first}");
    assert!(first["bytes_up"].as_u64().unwrap() > 0 && first["bytes_down"].as_u64().unwrap() > 0, "{first}");
    let (connect, first_byte, total) = (
        first["connect_ms"].as_f64().unwrap(),
        first["first_byte_ms"].as_f64().unwrap(),
        first["total_ms"].as_f64().unwrap(),
    );
    assert!(connect <= first_byte && first_byte <= total, "{first}");
    let second: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_ne!(first["id"], second["id"], "every request has its own id");
    // logrotate moves the file away and sends SIGHUP: the next line goes
    // to a new file at the same path.
    let rotated = dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(lb.pid() as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
    lb.wait_for_line(WAIT, |l| l.contains("access log reopened")).expect("SIGHUP reopens the access log");
    assert_eq!(get_from(2, lb.addr, "/after").status, 200);
    let lines = lines_when(&log, 1);
    assert!(lines.len() == 1 && lines[0].contains("\"target\":\"/after\""), "{lines:?}");
    assert_eq!(lines_when(&rotated, 2).len(), 2, "the rotated file keeps its lines");
}
