//! What a new configuration changes, and what this version can apply to
//! a running balancer.
//!
//! A reload first reads and checks the whole file: a file with any
//! problem changes nothing, and the problems are logged with their
//! positions while the running configuration keeps serving. A good file
//! is then compared with the running one. Weights are atomics in chapter
//! 4's nodes, so a change of weights alone is applied at once, between two
//! picks. Anything else (backends added or removed, another algorithm, a
//! new port) needs the new configuration built beside the old one and
//! swapped in, which is the next part of this chapter; until then it is
//! reported, and not applied, rather than half applied.

use crate::config::Config;

/// What a new configuration would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// Only weights: `(host:port, new weight)` for each backend whose weight changed.
    Weights(Vec<(String, u32)>),
    /// Settings this version cannot change while running, by name.
    NeedsRestart(Vec<&'static str>),
}

// ANCHOR: compare
/// Compares the running configuration with a new one.
pub fn compare(old: &Config, new: &Config) -> Change {
    let mut fixed = Vec::new();
    let same_backends = old.backends.len() == new.backends.len()
        && old
            .backends
            .iter()
            .zip(&new.backends)
            .all(|(a, b)| a.addr() == b.addr() && a.max_connections == b.max_connections);
    if !same_backends {
        fixed.push("backends");
    }
    let checks: [(&'static str, bool); 10] = [
        ("listen", old.listen != new.listen),
        ("algorithm", old.algorithm != new.algorithm),
        ("cookie_name", old.cookie_name != new.cookie_name),
        ("health_check", old.health_check != new.health_check),
        ("timeouts", old.timeouts != new.timeouts),
        ("pool", old.pool != new.pool),
        ("rate_limit", old.rate_limit != new.rate_limit),
        ("routes", old.routes != new.routes),
        ("drain_timeout", old.drain_timeout != new.drain_timeout),
        ("metrics", old.metrics != new.metrics),
    ];
    fixed.extend(checks.iter().filter(|(_, changed)| *changed).map(|(name, _)| *name));
    if !fixed.is_empty() {
        return Change::NeedsRestart(fixed);
    }
    let weights: Vec<(String, u32)> = old
        .backends
        .iter()
        .zip(&new.backends)
        .filter(|(a, b)| a.weight != b.weight)
        .map(|(_, b)| (b.addr(), b.weight))
        .collect();
    if weights.is_empty() { Change::None } else { Change::Weights(weights) }
}
// ANCHOR_END: compare

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Format, parse};

    fn yaml(text: &str) -> Config {
        parse(text, Format::Yaml, Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn weights_alone_apply_and_anything_else_is_named() {
        let base = yaml("backends: [\"a:1:1\", \"b:2:1\"]\n");
        assert_eq!(compare(&base, &base), Change::None);
        assert_eq!(
            compare(&base, &yaml("backends: [\"a:1:1\", \"b:2:5\"]\n")),
            Change::Weights(vec![("b:2".into(), 5)])
        );
        assert_eq!(compare(&base, &yaml("backends: [\"a:1\", \"c:3\"]\n")), Change::NeedsRestart(vec!["backends"]));
        let moved = yaml("listen: {port: 9999}\nalgorithm: lc\nbackends: [\"a:1:1\", \"b:2:7\"]\n");
        assert_eq!(compare(&base, &moved), Change::NeedsRestart(vec!["listen", "algorithm"]));
    }
}
