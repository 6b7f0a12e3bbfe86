//! Signals for the load balancer: chapter 1's `sigwait` thread, re-exported
//! so this chapter's binary reads `ch03_load_balancer::signals`.

pub use ch01_fundamentals::signals::{Request, Stopping, for_server, on_signals, spawn};
