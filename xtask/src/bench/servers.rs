//! Starting and stopping the servers of the ladder (our backends and load
//! balancers, nginx, HAProxy), each a child process whose output goes to a
//! log file in the bench's temporary folder; and the little that is read
//! from `/proc` about them (resident memory, child processes, fd limits).

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a server gets to start listening.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long a server gets to exit after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// `127.0.0.1:port`.
pub fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A port that nobody listens on right now.
///
/// The listener is dropped before the server binds the port, so another
/// program could take the port in between. That race is tiny and a bench
/// tool can live with it: the server would fail to start and we would say
/// so, naming its log.
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind 127.0.0.1:0 to find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Where an executable is: `PATH`, then the sbin folders that a normal
/// user's `PATH` often lacks (Debian puts nginx and haproxy in /usr/sbin).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path).chain(extra).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// A server running as a child process. Dropping it stops it, so an error
/// anywhere in the bench leaves no process behind.
#[derive(Debug)]
pub struct Server {
    /// What the output calls it.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stdout and stderr (and, for nginx, its error log).
    pub log: PathBuf,
    child: Child,
    stopped: bool,
}

impl Server {
    /// Starts `program args` with `RUST_LOG=warn` (so our servers write no
    /// per-request log lines, which would slow them down) and its output
    /// appended to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], addr: SocketAddr, log: PathBuf) -> Result<Self> {
        // Append mode: nginx also opens this file for its error log, and
        // appends from two descriptors never overwrite each other.
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err: File = out.try_clone()?;
        let child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("could not start {name} ({})", program.display()))?;
        Ok(Self { name: name.to_string(), addr, log, child, stopped: false })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the server accepts a TCP connection: a bounded loop of
    /// connect attempts (polling is fine in a tool, never in a test).
    pub fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{}", self.failure(&format!("exited ({status}) before listening on {}", self.addr)));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > READY_LIMIT {
                bail!("{}", self.failure(&format!("was not listening on {} after {READY_LIMIT:?}", self.addr)));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// An error message: what went wrong, and the end of the server's log.
    pub fn failure(&self, what: &str) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!(
            "{} {what}.\nIts log is {}; it ends with:\n{}",
            self.name,
            self.log.display(),
            crate::cargo::tail(&log, 20)
        )
    }

    /// Stops the server: SIGTERM, a bounded wait, then SIGKILL. An error if
    /// it had already exited: it died while being measured.
    pub fn stop(mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            self.stopped = true;
            bail!("{}", self.failure(&format!("exited ({status}) while it was being measured")));
        }
        self.terminate();
        Ok(())
    }

    fn terminate(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // std can only send SIGKILL; SIGTERM lets our servers and nginx end
        // cleanly, so ask the `kill` command to send it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let started = Instant::now();
        while started.elapsed() < STOP_LIMIT {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("[bench] {} did not stop within {STOP_LIMIT:?} of SIGTERM: killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// nginx's configuration for the ladder: one worker, like our servers'
/// one process, and the same three backends.
///
/// Without `keepalive`, `proxy_pass` is left at its defaults: nginx speaks
/// HTTP/1.0 to the backend and opens a new connection per request, as
/// chapter 5's balancers do, while it keeps client connections alive, as
/// ours do too. With it, nginx as operators run it in front of HTTP/1.1
/// backends: `keepalive 64` in the upstream, HTTP/1.1 and an empty
/// `Connection` header towards the backends (chapter 6's comparison).
pub fn nginx_config(
    dir: &Path,
    port: u16,
    backends: &[SocketAddr],
    nofile: u64,
    keepalive: bool,
    workers: usize,
) -> String {
    let d = dir.display();
    let mut servers: String = backends.iter().map(|b| format!("        server {b};\n")).collect();
    let mut location = String::new();
    if keepalive {
        servers.push_str("        keepalive 64;\n");
        location.push_str("            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n");
    }
    // The worker may open up to worker_connections sockets; ask for as many
    // descriptors as the hard limit allows (no more, so nginx does not log
    // a failed setrlimit), and at most the usual 65535.
    let nofile = nofile.min(65_535);
    let connections = nofile.min(20_000);
    format!(
        "# Written by `cargo xtask bench`: nginx with {workers} worker(s), beside the book's load balancers.\n\
         worker_processes {workers};\n\
         worker_rlimit_nofile {nofile};\n\
         daemon off;\n\
         pid \"{d}/nginx.pid\";\n\
         error_log \"{d}/nginx.log\" warn;\n\
         \n\
         events {{\n\
         \x20   worker_connections {connections};\n\
         }}\n\
         \n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path \"{d}/nginx-temp/client_body\";\n\
         \x20   proxy_temp_path \"{d}/nginx-temp/proxy\";\n\
         \x20   fastcgi_temp_path \"{d}/nginx-temp/fastcgi\";\n\
         \x20   uwsgi_temp_path \"{d}/nginx-temp/uwsgi\";\n\
         \x20   scgi_temp_path \"{d}/nginx-temp/scgi\";\n\
         \n\
         \x20   upstream lbs {{\n\
         {servers}\
         \x20   }}\n\
         \n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://lbs;\n\
         {location}\
         \x20       }}\n\
         \x20   }}\n\
         }}\n"
    )
}

/// HAProxy's configuration for the ladder: one thread, round robin over
/// the same three backends. Without `reuse`, `option http-server-close`:
/// a backend connection per request, like chapter 5's balancers. With it,
/// `http-reuse always`: idle backend connections are shared by every
/// client (chapter 6's comparison).
/// hot_reload_lb's file for the ladder: round robin over `backends`, TCP
/// health checks every 10 s, a pool of up to 1,024 idle connections per
/// backend (pooled_lb's default: with 64, as many as nginx keepalive
/// keeps, 1,000 clients make it close and open backend connections all
/// the time), metrics on `admin`, no rate limit (nginx has none either).
pub fn capstone_config(port: u16, admin: u16, backends: &[SocketAddr]) -> String {
    let list: String = backends.iter().map(|b| format!("  - \"{b}\"\n")).collect();
    format!(
        "# Written by `cargo xtask bench`: the capstone as an operator runs it.\n\
         listen: {{address: 127.0.0.1, port: {port}}}\n\
         algorithm: round-robin\n\
         backends:\n{list}\
         health_check: {{interval: 10s}}\n\
         pool: {{max_size: 1024, ttl: 60s}}\n\
         metrics: {{enabled: true, port: {admin}}}\n\
         drain_timeout: 1s\n"
    )
}

pub fn haproxy_config(port: u16, backends: &[SocketAddr], reuse: bool) -> String {
    let servers: String = backends.iter().enumerate().map(|(i, b)| format!("    server b{} {b}\n", i + 1)).collect();
    let mode = if reuse {
        "\x20   # Keep backend connections and share them between clients.\n\x20   http-reuse always\n"
    } else {
        "\x20   # Keep client connections alive but open one backend connection per\n\
         \x20   # request, as chapter 5's load balancers and nginx's defaults do.\n\
         \x20   option http-server-close\n"
    };
    format!(
        "# Written by `cargo xtask bench`: HAProxy with one thread, beside the book's load balancers.\n\
         global\n\
         \x20   maxconn 20000\n\
         \x20   nbthread 1\n\
         \x20   # HAProxy counts two descriptors per connection (client and server\n\
         \x20   # side) and by default will not start when the open-file limit is\n\
         \x20   # below that. Here a connection has a server side only during its\n\
         \x20   # request, so a warning is enough.\n\
         \x20   no strict-limits\n\
         \n\
         defaults\n\
         \x20   mode http\n\
         \x20   maxconn 20000\n\
         \x20   timeout connect 2s\n\
         \x20   timeout client 30s\n\
         \x20   timeout server 30s\n\
         {mode}\
         \n\
         frontend bench\n\
         \x20   bind 127.0.0.1:{port}\n\
         \x20   default_backend lbs\n\
         \n\
         backend lbs\n\
         \x20   balance roundrobin\n\
         {servers}"
    )
}

/// Whether this nginx takes `-e FILE` (1.19.5 and later): its `-h` says so.
/// Without it, nginx first opens its compiled-in error log, which a normal
/// user may not be allowed to write.
pub fn nginx_takes_e(nginx: &Path) -> bool {
    Command::new(nginx)
        .arg("-h")
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stderr) + String::from_utf8_lossy(&o.stdout);
            text.contains("-e filename")
        })
        .unwrap_or(false)
}

/// A process's resident memory (VmRSS), in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS line in {path}"))
}

/// The `VmRSS:   1234 kB` line of `/proc/PID/status`, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut words = line.split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

/// The processes whose parent is `ppid` (nginx's worker is the master's
/// child), found by reading `/proc/*/stat`.
pub fn children_of(ppid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut children = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if parse_stat_ppid(&stat) == Some(ppid) {
            children.push(pid);
        }
    }
    children.sort_unstable();
    children
}

/// The parent pid in a `/proc/PID/stat` line: `pid (comm) state ppid ...`.
/// The command name may hold spaces and parentheses, so split after the
/// last `)`.
pub fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// This process's open-file limits (soft, hard), from `/proc/self/limits`;
/// `unlimited` reads as `u64::MAX`.
pub fn nofile_limits() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_nofile_limits(&limits)
}

/// The `Max open files  SOFT  HARD  files` line of `/proc/PID/limits`.
pub fn parse_nofile_limits(limits: &str) -> Option<(u64, u64)> {
    let rest = limits.lines().find_map(|l| l.strip_prefix("Max open files"))?;
    let mut words = rest.split_whitespace().map(|w| if w == "unlimited" { Some(u64::MAX) } else { w.parse().ok() });
    Some((words.next()??, words.next()??))
}

/// Raises this process's soft open-file limit to its hard limit, so the
/// 10,000-connection check can hold its sockets and the servers started
/// afterwards inherit the higher limit: chapter 1's `raise_fd_limit`, the
/// call every server of the book makes at start. When it cannot, the limit
/// stays as it is (then `ulimit -n 65535` in the shell that runs the bench
/// does it).
pub fn raise_nofile_soft_limit() {
    if let Err(e) = ch01_fundamentals::net::raise_fd_limit() {
        eprintln!("[bench] could not raise the open-file limit ({e}); try `ulimit -n 65535`");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_and_ppid_and_limits() {
        let status = "Name:\tnginx\nVmPeak:\t  20000 kB\nVmRSS:\t    5120 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(5120 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);

        assert_eq!(parse_stat_ppid("4242 (nginx) S 4241 4241 1 0 -1"), Some(4241));
        assert_eq!(parse_stat_ppid("17 (a) b (c)) R 9 17 17"), Some(9));

        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 20000                files     \n";
        assert_eq!(parse_nofile_limits(limits), Some((1024, 20_000)));
        let unlimited = "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_nofile_limits(unlimited), Some((u64::MAX, u64::MAX)));
    }

    #[test]
    fn configs_name_every_backend_and_the_port() {
        let backends = [localhost(9101), localhost(9102), localhost(9103)];
        let nginx = nginx_config(Path::new("/tmp/b"), 8123, &backends, 20_000, false, 1);
        assert!(!nginx.contains("keepalive"));
        let pooled = nginx_config(Path::new("/tmp/b"), 8123, &backends, 20_000, true, 1);
        assert!(pooled.contains("keepalive 64;") && pooled.contains("proxy_http_version 1.1;"));
        assert!(pooled.contains("proxy_set_header Connection \"\";"));
        assert_eq!(pooled.matches('{').count(), pooled.matches('}').count());
        assert!(nginx.contains("worker_processes 1;"));
        assert!(nginx.contains("listen 127.0.0.1:8123;"));
        assert!(nginx.contains("worker_connections 20000;"));
        assert!(nginx.contains("pid \"/tmp/b/nginx.pid\";"));
        assert!(nginx.contains("proxy_temp_path \"/tmp/b/nginx-temp/proxy\";"));
        for b in &backends {
            assert!(nginx.contains(&format!("server {b};")));
        }
        assert_eq!(nginx.matches('{').count(), nginx.matches('}').count());

        let reuse = haproxy_config(8123, &backends, true);
        assert!(reuse.contains("http-reuse always") && !reuse.contains("http-server-close"));
        let haproxy = haproxy_config(8123, &backends, false);
        assert!(haproxy.contains("bind 127.0.0.1:8123"));
        assert!(haproxy.contains("nbthread 1"));
        assert!(haproxy.contains("no strict-limits"));
        assert!(haproxy.contains("option http-server-close"));
        assert!(haproxy.contains("server b3 127.0.0.1:9103"));
    }
}
