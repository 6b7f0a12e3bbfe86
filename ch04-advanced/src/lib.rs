//! # Chapter 4 — advanced load balancing
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | a node: weight, health streaks, slow start, latency histogram; pools | [`node`] |
//! | the selection trait and one file per algorithm | [`algorithm`] |
//! | active (TCP/HTTP) and passive health checks, rise/fall thresholds | [`health`] |
//! | X-Request-ID, cookies, the client behind trusted proxies | [`headers`] |
//! | the algorithm and health flags every later balancer shares | [`cli`] |
//! | path-prefix routing to backend groups | [`routing`] |
//! | the balancer: failover, sticky cookies, stats, draining | [`balancer`] |
//! | the statistics table | [`stats`] |
//! | labs 4.3, 4.4, 4.5, 7.2, 7.3, 7.4, 8.3, 8.4 | [`labs`] |
//!
//! Binary: `advanced_lb`.
#![deny(missing_docs)]

pub mod algorithm;
pub mod balancer;
pub mod cli;
pub mod headers;
pub mod health;
pub mod labs;
pub mod node;
pub mod routing;
pub mod stats;
