//! # Chapter 8 — metrics
//!
//! A load balancer that cannot be watched cannot be trusted. This crate
//! writes the three kinds of metric Prometheus knows, by hand, and renders
//! them in its text format; whether they are right is decided by outside
//! tools (`promtool check metrics`, in the tests).
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | a counter, a gauge, a histogram: atomics, no locks on the hot path | [`metric`] |
//! | buckets for latencies from a millisecond to a minute | [`metric::latency_buckets`] |
//! | a family of series by label, resolved once, under a cardinality budget | [`family`] |
//! | the registry, the Prometheus text format 0.0.4 and OpenMetrics 1.0 | [`registry`], `text.rs` |
//! | series read at scrape time from counters kept elsewhere | [`scraped`] |
//! | the process's own series, from `/proc` | [`process`] |
//! | the balancer's series, and the loop's hook that records them | [`balancer`] |
//! | the admin listener: `/metrics`, `/lb-stats`, `/healthz`, `/readyz` | [`admin`], [`stats`] |
//! | the access log: a line per request, to the log or a file | [`access`] |
//! | `metrics_lb`'s flags, and the balancer they describe as a function | [`cli`], [`serve`] |
//! | the labs: the metric types by hand, a metric end to end | [`labs`] |
#![deny(missing_docs)]

pub mod access;
pub mod admin;
pub mod balancer;
pub mod cli;
pub mod family;
pub mod labs;
pub mod metric;
pub mod process;
pub mod registry;
pub mod scraped;
pub mod serve;
pub mod stats;
mod text;
