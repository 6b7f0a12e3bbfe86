//! # Chapter 10 — the capstone: `hot_reload_lb`
//!
//! Every chapter's balancer in one program, configured by a file. This
//! first part is the configuration: one schema read from JSON (the C
//! curriculum's format) or YAML (the Zig example's), every mistake
//! reported with its file, line and column, `--check` as `nginx -t` has
//! it, and the balancer of chapter 8 started from the file. On SIGHUP, on
//! `POST /reload` to the admin listener, or with `--watch` when the file
//! changes, the file is read again: a file with problems changes nothing;
//! a new backend set, new weights, another algorithm or another listening
//! address are swapped in whole between two rounds of the loop, and
//! requests already under way finish on the set they started with.
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
//! | what a new configuration changes, and swapping it in | [`reload`] |
//! | noticing that the file changed (inotify on the directory) | [`watch`] |
//! | handing the listening sockets to a new binary (`SCM_RIGHTS`) | `upgrade` (Linux) |
//! | the backend set as one swappable value (chapter 5's loop) | `ch05_event_loop::lb::backends` |
//! | layer 4 mode: health checks and admin figures for chapter 9's relay | [`layer4`] |
#![deny(missing_docs)]
#![deny(clippy::indexing_slicing)]

pub mod config;
pub mod labs;
pub mod launch;
#[cfg(unix)]
pub mod layer4;
pub mod reload;
#[cfg(target_os = "linux")]
pub mod upgrade;
pub mod watch;
