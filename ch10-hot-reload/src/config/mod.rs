//! `hot_reload_lb`'s configuration: one schema, read from JSON or YAML.
//!
//! A file is read into a tree that remembers positions ([`node`]), by a
//! JSON reader written here ([`json`]) or through a YAML parser
//! ([`yaml`]); one walk over that tree ([`schema`]) checks it against the
//! schema and builds a [`Config`], collecting every mistake with the
//! file, line and column it is at and what was expected there. Nothing is
//! applied until the whole file is good.
//!
//! The schema takes the keys of both traditions: the C curriculum's JSON
//! (`listen_port`, `algorithm: "round_robin"`, `backends: [{host, port,
//! weight}]`, `pool: {max_size, ttl}`, `rate_limit: {per_ip, burst}`,
//! `drain_timeout`) and the YAML of the Zig example and the C book's
//! production chapter (`listen: {port, address}`, `health_check`,
//! `timeouts`, `routes`, `metrics`). Either format may use any key.

pub mod json;
pub mod node;
pub mod schema;
pub mod yaml;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ch04_advanced::algorithm::Kind;

pub use node::Pos;

/// A configuration that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Whether requests are read (HTTP) or connections relayed whole (TCP).
    pub mode: Mode,
    /// Where clients connect.
    pub listen: Listen,
    /// How a backend is chosen.
    pub algorithm: Kind,
    /// The sticky-session cookie (`algorithm: sticky`).
    pub cookie_name: String,
    /// The backends, at least one, each `host:port` once.
    pub backends: Vec<BackendConfig>,
    /// Active health checks.
    pub health_check: HealthCheck,
    /// Time limits towards backends and clients.
    pub timeouts: Timeouts,
    /// Idle backend connections kept for reuse.
    pub pool: PoolConfig,
    /// Requests allowed per client address, when limited.
    pub rate_limit: Option<RateLimit>,
    /// Path prefixes sent to a subset of the backends, longest first.
    pub routes: Vec<Route>,
    /// How long a reload or a stop lets requests in flight finish.
    pub drain_timeout: Duration,
    /// The admin listener.
    pub metrics: Metrics,
}

// ANCHOR: mode
/// What the balancer reads of a client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Layer 7: each HTTP request goes to a backend (chapters 5 to 8's
    /// balancer, with routes, limits, a pool and per-request metrics).
    #[default]
    Http,
    /// Layer 4: each TCP connection goes to a backend and its bytes are
    /// relayed both ways, never parsed (chapter 9's relay): any protocol.
    Tcp,
}
// ANCHOR_END: mode

/// The listening address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// The address (127.0.0.1 unless the file says otherwise).
    pub address: IpAddr,
    /// The port (0: any free port).
    pub port: u16,
}

/// One backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// Host name or address.
    pub host: String,
    /// Port, 1 to 65535.
    pub port: u16,
    /// Weight, at least 1.
    pub weight: u32,
    /// Most connections at once, if limited.
    pub max_connections: Option<u32>,
}

impl BackendConfig {
    /// `host:port`, as `--backend` and routes name it.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Active health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Off: only failed requests take a backend down.
    pub enabled: bool,
    /// `GET path` must answer 2xx; `None`: a TCP connect is enough.
    pub path: Option<String>,
    /// Between rounds.
    pub interval: Duration,
    /// For one probe; at most `interval`.
    pub timeout: Duration,
    /// Successes in a row that bring a backend back.
    pub healthy_threshold: u32,
    /// Failures in a row that take it down.
    pub unhealthy_threshold: u32,
}

/// Time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To connect to a backend.
    pub connect: Duration,
    /// For a backend's answer, and a client's request head.
    pub read: Duration,
    /// For a write to either side, when the file sets one (chapter 8's
    /// balancer has no such limit yet: [`crate::launch::flags`] refuses it).
    pub write: Option<Duration>,
    /// How long a connection may move no byte, during a body or (in
    /// `mode: tcp`) at any time, when the file sets it (else 60 s).
    pub idle: Option<Duration>,
}

/// The backend connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle connections kept per backend (0: no pool).
    pub max_size: usize,
    /// How long one may stay idle.
    pub ttl: Duration,
}

/// A per-client-address limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_ip: f64,
    /// Requests allowed at once above the rate.
    pub burst: u32,
}

/// A path prefix and the backends that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Starts with `/`.
    pub prefix: String,
    /// `host:port` of backends in the list.
    pub backends: Vec<String>,
}

/// The admin listener (`/metrics`, `/lb-stats`, `/healthz`, `/readyz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    /// Whether it listens at all.
    pub enabled: bool,
    /// Its port; `None`: the listening port + 1.
    pub port: Option<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Http,
            listen: Listen { address: IpAddr::from([127, 0, 0, 1]), port: 8080 },
            algorithm: Kind::Rr,
            cookie_name: "lbs_backend".into(),
            backends: Vec::new(),
            health_check: HealthCheck {
                enabled: true,
                path: Some("/health".into()),
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(2),
                healthy_threshold: 2,
                unhealthy_threshold: 3,
            },
            timeouts: Timeouts {
                connect: Duration::from_secs(5),
                read: Duration::from_secs(30),
                write: None,
                idle: None,
            },
            pool: PoolConfig { max_size: 64, ttl: Duration::from_secs(60) },
            rate_limit: None,
            routes: Vec::new(),
            drain_timeout: Duration::from_secs(30),
            metrics: Metrics { enabled: true, port: None },
        }
    }
}

/// Which reader a file needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json`.
    Json,
    /// `.yaml`, `.yml`.
    Yaml,
}

impl Format {
    /// From the file name's extension; anything else is read as YAML,
    /// which also reads most JSON, but says so in its errors.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// One thing wrong with a file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where (1:1 for what is missing altogether).
    pub pos: Pos,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Why a file was not accepted: where, for each problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as named to the reader.
    pub file: PathBuf,
    /// Everything found wrong, in file order (a syntax error stops the
    /// reading, so it is alone).
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}: {}", self.file.display(), p.pos, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

// ANCHOR: parse
/// Reads `text` (the contents of `file`) as `format` and checks it.
pub fn parse(text: &str, format: Format, file: &Path) -> Result<Config, ConfigError> {
    let fail = |problems| ConfigError { file: file.to_path_buf(), problems };
    let tree = match format {
        Format::Json => json::parse(text),
        Format::Yaml => yaml::parse(text),
    };
    let tree = tree.map_err(|e| fail(vec![Problem { pos: e.pos, message: e.message }]))?;
    schema::check(&tree).map_err(fail)
}

/// Reads and checks the file at `path` (its format from its extension).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    read(path).map(|(config, _)| config)
}

/// [`load`], with a hash of the file's bytes: what the admin listener
/// shows to tell which file is in use.
pub fn read(path: &Path) -> Result<(Config, u64), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        problems: vec![Problem { pos: Pos { line: 1, col: 1 }, message: format!("cannot be read: {e}") }],
    })?;
    let hash = ch04_advanced::node::fnv1a(text.as_bytes());
    parse(&text, Format::of(path), path).map(|config| (config, hash))
}
// ANCHOR_END: parse
