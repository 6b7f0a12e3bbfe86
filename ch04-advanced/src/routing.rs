//! Path-prefix routing: `/api/` to one backend group, `/static/` to
//! another, everything else to the default group. The longest matching
//! prefix wins, so `/api/v2/` can be split off `/api/`.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::sync::Arc;

use crate::algorithm::Algorithm;
use crate::health::HealthChecker;
use crate::node::Pool;

/// A named group of backends with its own algorithm.
#[derive(Debug)]
pub struct Group {
    /// Its name (the route prefix, or `default`).
    pub name: String,
    /// Its nodes.
    pub pool: Arc<Pool>,
    /// How a node is chosen in it.
    pub algorithm: Box<dyn Algorithm>,
}

/// Prefix routes to groups.
#[derive(Debug)]
pub struct Router {
    /// Where a path no route matches goes.
    default: Group,
    /// The routed groups, in the order they were added.
    routed: Vec<Group>,
    /// (prefix, index in `routed`), longest prefix first.
    routes: Vec<(String, usize)>,
}

// ANCHOR: router
impl Router {
    /// A router with only the default group.
    pub fn new(default: Group) -> Self {
        Self { default, routed: Vec::new(), routes: Vec::new() }
    }

    /// Sends paths starting with `prefix` to `group`.
    pub fn add_route(&mut self, prefix: &str, group: Group) {
        self.routes.push((prefix.to_string(), self.routed.len()));
        self.routed.push(group);
        self.routes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    }

    /// The group for `path`: the longest matching prefix's, or the default.
    pub fn route(&self, path: &str) -> &Group {
        self.routes
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .and_then(|&(_, i)| self.routed.get(i))
            .unwrap_or(&self.default)
    }

    /// The default group.
    pub fn default_group(&self) -> &Group {
        &self.default
    }

    /// Every group, the default one first.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        std::iter::once(&self.default).chain(&self.routed)
    }
}
// ANCHOR_END: router

impl Router {
    /// Health checkers for every group.
    pub fn checkers(&self, config: &crate::health::HealthConfig) -> Vec<HealthChecker> {
        self.groups().map(|g| HealthChecker::new(Arc::clone(&g.pool), config.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::round_robin::RoundRobin;
    use crate::node::Backend;

    fn group(name: &str) -> Group {
        Group {
            name: name.into(),
            pool: Arc::new(Pool::new(vec![Backend::new("a:1", 1)])),
            algorithm: Box::new(RoundRobin::default()),
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let mut r = Router::new(group("default"));
        r.add_route("/api/", group("api"));
        r.add_route("/api/v2/", group("v2"));
        r.add_route("/static/", group("static"));
        assert_eq!(r.route("/api/users").name, "api");
        assert_eq!(r.route("/api/v2/users").name, "v2");
        assert_eq!(r.route("/static/app.js").name, "static");
        assert_eq!(r.route("/").name, "default");
        assert_eq!(r.route("/apix").name, "default");
    }
}
