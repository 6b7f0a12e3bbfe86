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
//! | the registry and the Prometheus text format 0.0.4 | [`registry`], `text.rs` |
//!
//! Still to come in this chapter: OpenMetrics, the balancer's series,
//! process metrics, the admin listener and its dashboard, `metrics_lb`.
#![deny(missing_docs)]

pub mod family;
pub mod metric;
pub mod registry;
mod text;
