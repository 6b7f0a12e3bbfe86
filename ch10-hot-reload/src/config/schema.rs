//! The schema: one walk over a [`Node`] tree that builds a [`Config`] and
//! collects every problem with its position.
//!
//! Each mapping is checked against the keys it may hold (an unknown key
//! is a problem that lists the known ones: a misspelt `helth_check` must
//! not be ignored), each value against the type it must have, and then
//! the whole against the rules no type can say: at least one backend,
//! no backend twice, weights of at least 1, routes that name listed
//! backends, a probe timeout within its interval.

use std::net::IpAddr;
use std::time::Duration;

use ch04_advanced::algorithm::Kind;
use clap::ValueEnum;

use super::node::{Key, Node, Pos, Value};
use super::{BackendConfig, Config, Mode, Problem, RateLimit, Route};

/// Checks `tree` and builds the configuration, or returns every problem
/// found, in file order.
pub fn check(tree: &Node) -> Result<Config, Vec<Problem>> {
    let mut c = Checker { problems: Vec::new() };
    let config = c.config(tree);
    if c.problems.is_empty() {
        Ok(config)
    } else {
        c.problems.sort_by_key(|p| p.pos);
        Err(c.problems)
    }
}

const TOP: &[&str] = &[
    "mode",
    "listen",
    "listen_port",
    "algorithm",
    "strategy",
    "cookie_name",
    "backends",
    "health_check",
    "timeouts",
    "pool",
    "rate_limit",
    "limits",
    "routes",
    "drain_timeout",
    "metrics",
];

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, pos: Pos, message: impl Into<String>) {
        self.problems.push(Problem { pos, message: message.into() });
    }

    /// The entries of a mapping whose keys must be among `known`; an
    /// unknown key is a problem, and is left out.
    fn mapping<'a>(&mut self, node: &'a Node, what: &str, known: &[&str]) -> Vec<&'a (Key, Node)> {
        let Value::Map(entries) = &node.value else {
            self.problem(node.pos, format!("{what} must be a mapping, not {}", node.value.kind()));
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries {
            if known.contains(&entry.0.name.as_str()) {
                out.push(entry);
            } else {
                let message =
                    format!("unknown field `{}` in {what}; expected one of: {}", entry.0.name, known.join(", "));
                self.problem(entry.0.pos, message);
            }
        }
        out
    }

    fn whole(&mut self, node: &Node, what: &str, min: i64, max: i64) -> Option<i64> {
        match node.value {
            Value::Int(n) if (min..=max).contains(&n) => Some(n),
            Value::Int(n) => {
                self.problem(node.pos, format!("{what} must be from {min} to {max}, not {n}"));
                None
            }
            ref other => {
                self.problem(node.pos, format!("{what} must be a whole number, not {}", other.kind()));
                None
            }
        }
    }

    fn port(&mut self, node: &Node, what: &str, min: i64) -> Option<u16> {
        self.whole(node, what, min, 65_535).and_then(|n| u16::try_from(n).ok())
    }

    fn count(&mut self, node: &Node, what: &str, min: i64) -> Option<u32> {
        self.whole(node, what, min, i64::from(u32::MAX)).and_then(|n| u32::try_from(n).ok())
    }

    fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) if !s.is_empty() => Some(s.clone()),
            Value::Str(_) => {
                self.problem(node.pos, format!("{what} must not be empty"));
                None
            }
            other => {
                self.problem(node.pos, format!("{what} must be a string, not {}", other.kind()));
                None
            }
        }
    }

    fn flag(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            ref other => {
                self.problem(node.pos, format!("{what} must be true or false, not {}", other.kind()));
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let parsed = match &node.value {
            Value::Int(n) => u64::try_from(*n).ok().map(Duration::from_secs),
            Value::Float(f) => Duration::try_from_secs_f64(*f).ok(),
            Value::Str(s) => parse_duration(s),
            _ => None,
        };
        if parsed.is_none() {
            let shown = match &node.value {
                Value::Str(s) => format!("`{s}`"),
                other => other.kind().to_string(),
            };
            self.problem(
                node.pos,
                format!("{what} must be a duration such as 10s, 500ms, 2m or 1h (or whole seconds), not {shown}"),
            );
        }
        parsed
    }

    // ANCHOR: config
    fn config(&mut self, tree: &Node) -> Config {
        let mut config = Config::default();
        let entries = self.mapping(tree, "the configuration", TOP);
        let field = |name: &str| entries.iter().find(|(k, _)| k.name == name).map(|(k, v)| (k, v));
        // Two spellings of one setting: one of them, not both.
        for (a, b) in [("listen_port", "listen"), ("algorithm", "strategy"), ("rate_limit", "limits")] {
            if let (Some(_), Some((second, _))) = (field(a), field(b)) {
                self.problem(second.pos, format!("`{a}` and `{b}` say the same thing: keep one"));
            }
        }
        if let Some((_, v)) = field("mode") {
            match self.text(v, "mode").as_deref() {
                Some("http") => config.mode = Mode::Http,
                Some("tcp") => config.mode = Mode::Tcp,
                Some(other) => self.problem(
                    v.pos,
                    format!("unknown mode `{other}`; expected http (requests, layer 7) or tcp (connections, layer 4)"),
                ),
                None => {}
            }
        }
        if let Some((_, v)) = field("listen_port") {
            config.listen.port = self.port(v, "listen_port", 0).unwrap_or(config.listen.port);
        }
        if let Some((_, v)) = field("listen") {
            for (k, v) in self.mapping(v, "listen", &["port", "address"]) {
                match k.name.as_str() {
                    "port" => config.listen.port = self.port(v, "listen.port", 0).unwrap_or(config.listen.port),
                    _ => match self.text(v, "listen.address").map(|a| a.parse::<IpAddr>()) {
                        Some(Ok(addr)) => config.listen.address = addr,
                        Some(Err(_)) => {
                            self.problem(v.pos, "listen.address must be an IP address such as 127.0.0.1 or ::1")
                        }
                        None => {}
                    },
                }
            }
        }
        if let Some((_, v)) = field("algorithm").or(field("strategy")) {
            if let Some(kind) = self.algorithm(v) {
                config.algorithm = kind;
            }
        }
        if let Some((_, v)) = field("cookie_name") {
            config.cookie_name = self.text(v, "cookie_name").unwrap_or(config.cookie_name);
        }
        match field("backends") {
            Some((_, v)) => config.backends = self.backends(v),
            None => self.problem(tree.pos, "no `backends`: at least one backend is needed"),
        }
        if let Some((_, v)) = field("health_check") {
            self.health(v, &mut config);
        }
        if let Some((_, v)) = field("timeouts") {
            for (k, v) in self.mapping(v, "timeouts", &["connect", "read", "write", "idle"]) {
                let what = format!("timeouts.{}", k.name);
                let Some(d) = self.duration(v, &what).filter(|d| !d.is_zero()) else {
                    if matches!(v.value, Value::Int(0))
                        || matches!(&v.value, Value::Str(s) if parse_duration(s) == Some(Duration::ZERO))
                    {
                        self.problem(v.pos, format!("{what} must be more than zero"));
                    }
                    continue;
                };
                match k.name.as_str() {
                    "connect" => config.timeouts.connect = d,
                    "read" => config.timeouts.read = d,
                    "idle" => config.timeouts.idle = Some(d),
                    _ => config.timeouts.write = Some(d),
                }
            }
        }
        if let Some((_, v)) = field("pool") {
            for (k, v) in self.mapping(v, "pool", &["max_size", "ttl"]) {
                match k.name.as_str() {
                    "max_size" => {
                        if let Some(n) = self.count(v, "pool.max_size", 0) {
                            config.pool.max_size = n as usize;
                        }
                    }
                    _ => config.pool.ttl = self.duration(v, "pool.ttl").unwrap_or(config.pool.ttl),
                }
            }
        }
        if let Some((k, v)) = field("rate_limit").or(field("limits")) {
            config.rate_limit = self.rate_limit(v, &k.name);
        }
        if let Some((_, v)) = field("drain_timeout") {
            config.drain_timeout = self.duration(v, "drain_timeout").unwrap_or(config.drain_timeout);
        }
        if let Some((_, v)) = field("metrics") {
            for (k, v) in self.mapping(v, "metrics", &["enabled", "port"]) {
                match k.name.as_str() {
                    "enabled" => config.metrics.enabled = self.flag(v, "metrics.enabled").unwrap_or(true),
                    _ => config.metrics.port = self.port(v, "metrics.port", 1),
                }
            }
        }
        if let Some((_, v)) = field("routes") {
            config.routes = self.routes(v, &config.backends);
        }
        if config.mode == Mode::Tcp {
            self.layer4(&entries, &mut config);
        }
        config
    }
    // ANCHOR_END: config

    // ANCHOR: layer4
    /// `mode: tcp` never reads a request: what only a request could use is
    /// a mistake here, not something to ignore. And a backend that speaks
    /// some other protocol than HTTP has no `/health` to ask: the probe is
    /// a TCP connect unless the file names a path.
    fn layer4(&mut self, entries: &[&(Key, Node)], config: &mut Config) {
        let http_only = [
            ("cookie_name", "a cookie is in a request"),
            ("pool", "a connection is relayed whole, never handed back for reuse"),
            ("rate_limit", "the limits count requests"),
            ("limits", "the limits count requests"),
            ("routes", "a route matches a request's path"),
        ];
        for (k, _) in entries {
            if let Some((name, why)) = http_only.iter().find(|(name, _)| k.name == *name) {
                self.problem(k.pos, format!("`{name}` applies to mode: http only ({why}); remove it for mode: tcp"));
            }
        }
        let field = |name: &str| entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v);
        if let Some(v) = field("algorithm").or(field("strategy")) {
            if !ch09_zero_copy::l4::at_layer4(config.algorithm) {
                let name = config.algorithm.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default();
                let takes = ch09_zero_copy::l4::LAYER4_ALGORITHMS;
                self.problem(v.pos, format!("algorithm `{name}` needs a request to look at; mode: tcp takes {takes}"));
            }
        }
        if let Some(Value::Map(timeouts)) = field("timeouts").map(|v| &v.value) {
            for (k, _) in timeouts.iter().filter(|(k, _)| k.name == "read" || k.name == "write") {
                self.problem(
                    k.pos,
                    format!("timeouts.{} applies to mode: http only; mode: tcp has connect and idle", k.name),
                );
            }
        }
        if let Some(Value::Seq(items)) = field("backends").map(|v| &v.value) {
            for item in items {
                if let Value::Map(keys) = &item.value {
                    if let Some((k, _)) = keys.iter().find(|(k, _)| k.name == "max_connections") {
                        self.problem(k.pos, "max_connections applies to mode: http only (it limits requests at once)");
                    }
                }
            }
        }
        let path_given = match field("health_check").map(|v| &v.value) {
            Some(Value::Map(keys)) => keys.iter().any(|(k, _)| k.name == "path"),
            _ => false,
        };
        if !path_given {
            config.health_check.path = None;
        }
    }
    // ANCHOR_END: layer4

    fn algorithm(&mut self, v: &Node) -> Option<Kind> {
        let name = self.text(v, "algorithm")?;
        // Ours (`rr`, `wrr`, ...), the C curriculum's (`round_robin`) and
        // the Zig example's (`round-robin`), in any case.
        match Kind::from_str(&name, true) {
            Ok(kind) => Some(kind),
            Err(_) => {
                let names: Vec<String> = Kind::value_variants()
                    .iter()
                    .filter_map(|k| k.to_possible_value())
                    .map(|p| p.get_name().to_string())
                    .collect();
                self.problem(v.pos, format!("unknown algorithm `{name}`; expected one of: {} (or their aliases, such as round_robin or round-robin)", names.join(", ")));
                None
            }
        }
    }

    fn backends(&mut self, node: &Node) -> Vec<BackendConfig> {
        let Value::Seq(items) = &node.value else {
            self.problem(node.pos, format!("backends must be a list, not {}", node.value.kind()));
            return Vec::new();
        };
        if items.is_empty() {
            self.problem(node.pos, "backends is empty: at least one backend is needed");
        }
        let mut out = Vec::new();
        // Every `host:port` seen, even of a backend with another problem:
        // a duplicate is worth saying in the same pass.
        let mut seen: Vec<(String, Pos)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let what = format!("backends[{i}]");
            if let Some(addr) = raw_addr(item) {
                if let Some((_, first)) = seen.iter().find(|(a, _)| *a == addr) {
                    let message = format!("backend `{addr}` is listed twice (first at {first})");
                    self.problem(item.pos, message);
                    continue;
                }
                seen.push((addr, item.pos));
            }
            if let Some(b) = self.backend(item, &what) {
                out.push(b);
            }
        }
        out
    }

    /// `{host, port, weight, max_connections}`, or `"host:port[:weight]"`.
    fn backend(&mut self, item: &Node, what: &str) -> Option<BackendConfig> {
        if let Value::Str(spec) = &item.value {
            return match ch04_advanced::node::Backend::parse(spec) {
                Ok(b) => {
                    let (host, port) =
                        b.addr.rsplit_once(':').and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))?;
                    Some(BackendConfig { host, port, weight: b.weight, max_connections: None })
                }
                Err(e) => {
                    self.problem(item.pos, format!("{what}: {e}"));
                    None
                }
            };
        }
        let entries = self.mapping(item, what, &["host", "port", "weight", "max_connections"]);
        if entries.is_empty() && matches!(item.value, Value::Map(_)) {
            self.problem(item.pos, format!("{what} needs at least `host` and `port`"));
            return None;
        }
        let (mut host, mut port, mut weight, mut max) = (None, None, Some(1), None);
        for (k, v) in entries {
            let name = format!("{what}.{}", k.name);
            match k.name.as_str() {
                "host" => host = self.text(v, &name),
                "port" => port = self.port(v, &name, 1),
                // Chapter 4's limit, as `--backend host:port:weight` has it.
                "weight" => weight = self.whole(v, &name, 1, 1000).and_then(|n| u32::try_from(n).ok()),
                _ => max = self.count(v, &name, 1),
            }
        }
        if !matches!(item.value, Value::Map(_)) {
            return None;
        }
        let missing: Vec<&str> =
            [("host", host.is_none()), ("port", port.is_none())].iter().filter(|(_, m)| *m).map(|(n, _)| *n).collect();
        if let Value::Map(entries) = &item.value {
            for name in &missing {
                if !entries.iter().any(|(k, _)| k.name == *name) {
                    self.problem(item.pos, format!("{what} has no `{name}`"));
                }
            }
        }
        Some(BackendConfig { host: host?, port: port?, weight: weight?, max_connections: max })
    }

    fn health(&mut self, node: &Node, config: &mut Config) {
        let known = ["enabled", "type", "path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold"];
        let h = &mut config.health_check;
        let mut timeout_pos = None;
        for (k, v) in self.mapping(node, "health_check", &known) {
            let what = format!("health_check.{}", k.name);
            match k.name.as_str() {
                "enabled" => h.enabled = self.flag(v, &what).unwrap_or(h.enabled),
                "type" => match self.text(v, &what).as_deref() {
                    Some("tcp") => h.path = None,
                    Some("http") => {}
                    Some(other) => self.problem(v.pos, format!("{what} must be `tcp` or `http`, not `{other}`")),
                    None => {}
                },
                "path" => match self.text(v, &what) {
                    Some(p) if p.starts_with('/') => h.path = Some(p),
                    Some(p) => self.problem(v.pos, format!("{what} must start with `/`, not `{p}`")),
                    None => {}
                },
                "interval" => match self.duration(v, &what) {
                    Some(d) if d.is_zero() => self.problem(v.pos, format!("{what} must be more than zero")),
                    Some(d) => h.interval = d,
                    None => {}
                },
                "timeout" => match self.duration(v, &what) {
                    Some(d) if d.is_zero() => self.problem(v.pos, format!("{what} must be more than zero")),
                    Some(d) => {
                        h.timeout = d;
                        timeout_pos = Some(v.pos);
                    }
                    None => {}
                },
                "healthy_threshold" => h.healthy_threshold = self.count(v, &what, 1).unwrap_or(h.healthy_threshold),
                _ => h.unhealthy_threshold = self.count(v, &what, 1).unwrap_or(h.unhealthy_threshold),
            }
        }
        let h = &config.health_check;
        if h.timeout > h.interval {
            let message = format!(
                "health_check.timeout ({:?}) is longer than health_check.interval ({:?}): a probe would still run when the next starts",
                h.timeout, h.interval
            );
            self.problem(timeout_pos.unwrap_or(node.pos), message);
        }
    }

    fn rate_limit(&mut self, node: &Node, name: &str) -> Option<RateLimit> {
        let entries = self.mapping(node, name, &["per_ip", "burst"]);
        let (mut per_ip, mut burst) = (None, None);
        for (k, v) in entries {
            let what = format!("{name}.{}", k.name);
            if k.name == "burst" {
                burst = self.count(v, &what, 1);
                continue;
            }
            per_ip = match v.value {
                Value::Int(n) if n > 0 => Some(n as f64),
                Value::Float(f) if f > 0.0 && f.is_finite() => Some(f),
                _ => {
                    self.problem(v.pos, format!("{what} must be a number of requests per second above zero"));
                    None
                }
            };
        }
        match (per_ip, burst) {
            (Some(per_ip), burst) => Some(RateLimit { per_ip, burst: burst.unwrap_or(1) }),
            (None, _) => {
                if let Value::Map(entries) = &node.value
                    && !entries.iter().any(|(k, _)| k.name == "per_ip")
                {
                    self.problem(node.pos, format!("{name} has no `per_ip`"));
                }
                None
            }
        }
    }

    fn routes(&mut self, node: &Node, backends: &[BackendConfig]) -> Vec<Route> {
        let Value::Seq(items) = &node.value else {
            self.problem(node.pos, format!("routes must be a list, not {}", node.value.kind()));
            return Vec::new();
        };
        let mut out: Vec<(Route, Pos)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let what = format!("routes[{i}]");
            let (mut prefix, mut targets) = (None, Vec::new());
            let mut prefix_pos = item.pos;
            for (k, v) in self.mapping(item, &what, &["prefix", "backends"]) {
                if k.name == "prefix" {
                    prefix_pos = v.pos;
                    prefix = match self.text(v, &format!("{what}.prefix")) {
                        Some(p) if p.starts_with('/') => Some(p),
                        Some(p) => {
                            self.problem(v.pos, format!("{what}.prefix must start with `/`, not `{p}`"));
                            None
                        }
                        None => None,
                    };
                    continue;
                }
                let Value::Seq(names) = &v.value else {
                    self.problem(v.pos, format!("{what}.backends must be a list of host:port, not {}", v.value.kind()));
                    continue;
                };
                if names.is_empty() {
                    self.problem(v.pos, format!("{what}.backends is empty"));
                }
                for n in names {
                    let Some(name) = self.text(n, &format!("{what}.backends")) else { continue };
                    if backends.iter().any(|b| b.addr() == name) {
                        targets.push(name);
                    } else {
                        let listed: Vec<String> = backends.iter().map(BackendConfig::addr).collect();
                        self.problem(
                            n.pos,
                            format!("{what} names `{name}`, which is not in `backends` ({})", listed.join(", ")),
                        );
                    }
                }
            }
            let Some(prefix) = prefix else {
                if matches!(item.value, Value::Map(_)) && !self.problems.iter().any(|p| p.pos == prefix_pos) {
                    self.problem(item.pos, format!("{what} has no `prefix`"));
                }
                continue;
            };
            if let Some((_, first)) = out.iter().find(|(r, _)| r.prefix == prefix) {
                let message = format!("the route `{prefix}` is defined twice (first at {first})");
                self.problem(prefix_pos, message);
                continue;
            }
            out.push((Route { prefix, backends: targets }, prefix_pos));
        }
        let mut routes: Vec<Route> = out.into_iter().map(|(r, _)| r).collect();
        // The longest prefix that matches wins: try them longest first.
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        routes
    }
}

/// The `host:port` a backend entry names, as written, if it names one.
fn raw_addr(item: &Node) -> Option<String> {
    match &item.value {
        Value::Str(spec) => {
            let spec = spec.trim();
            let spec = spec.strip_prefix("http://").unwrap_or(spec);
            // `host:port:weight`: the weight is not part of the address.
            let mut parts = spec.rsplitn(3, ':').collect::<Vec<_>>();
            parts.reverse();
            match parts.as_slice() {
                [host, port, weight] if weight.parse::<u32>().is_ok() => Some(format!("{host}:{port}")),
                _ => Some(spec.to_string()),
            }
        }
        Value::Map(entries) => {
            let get = |name: &str| entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| &v.value);
            match (get("host"), get("port")) {
                (Some(Value::Str(host)), Some(Value::Int(port))) => Some(format!("{host}:{port}")),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `10s`, `500ms`, `2m`, `1h`, `1.5s`; `0` alone is zero.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = (text.get(..split)?, text.get(split..)?);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(value * scale).ok()
}
