//! # Chapter 10 — the capstone: `hot_reload_lb`
//!
//! Every chapter's balancer in one program, configured by a file. This
//! first part is the configuration: one schema read from JSON (the C
//! curriculum's format) or YAML (the Zig example's), every mistake
//! reported with its file, line and column, `--check` as `nginx -t` has
//! it, and the balancer of chapter 8 started from the file. On SIGHUP the
//! file is read again: a file with problems changes nothing, a change of
//! weights is applied at once; swapping in anything else without a
//! restart is the next part.
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | a parsed document that remembers positions | [`config::node`] |
//! | JSON read by hand, positions counted | [`config::json`] |
//! | YAML read through an event parser into the same tree | [`config::yaml`] |
//! | the schema: types, known keys, rules, every problem placed | [`config::schema`] |
//! | the configuration, loading, the error type | [`config`] |
//! | a configuration as chapter 8's command line | [`launch`] |
//! | what a new configuration changes, and what can be applied live | [`reload`] |
#![deny(missing_docs)]
#![deny(clippy::indexing_slicing)]

pub mod config;
pub mod launch;
pub mod reload;
