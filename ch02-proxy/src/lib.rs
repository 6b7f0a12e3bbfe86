//! # Chapter 2 — proxies: forward and reverse
//!
//! Concept map: which idea lives in which file.
//!
//! | idea | file |
//! |---|---|
//! | HTTP/1 heads: parse, validate (RFC 9112 rules), edit, write | [`http`] |
//! | moving a body by its framing (Content-Length, chunked, until close) | [`body`] |
//! | a bidirectional relay with half-close and an idle timeout | [`relay`] |
//! | error responses, connecting upstream, carrying one exchange | [`proxy`] |
//! | X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host | [`forwarding`] |
//! | the CONNECT forward proxy with a port allow-list | [`forward`] |
//! | the timeout flags every proxy and balancer shares | [`cli`] |
//! | the reverse proxy in front of one backend | [`reverse`] |
//! | the chapter's labs (stubs, or reference solutions with `reference`) | [`labs`] |
//!
//! Binaries: `reverse_proxy` (the default) and `forward_proxy`.
#![deny(missing_docs)]

pub mod body;
pub mod cli;
pub mod forward;
pub mod forwarding;
pub mod http;
pub mod labs;
pub mod proxy;
pub mod relay;
pub mod reverse;
