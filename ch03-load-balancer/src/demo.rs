//! `--demo`: three test backends inside the load balancer's own process,
//! so that `cargo run -p ch03-load-balancer -- --demo` works on its own.

use std::io;
use std::net::SocketAddr;

use backends::{BackendConfig, BackendHandle, spawn};

/// Starts backends named `backend-1` to `backend-n` on `host`, on free
/// ports chosen by the kernel (so nothing else on 9001-9003 gets in the way).
pub fn start(n: usize) -> io::Result<Vec<BackendHandle>> {
    (1..=n)
        .map(|i| {
            spawn(BackendConfig {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                ..BackendConfig::named(format!("backend-{i}"))
            })
        })
        .collect()
}

/// The backends a load balancer runs with, as `HOST:PORT[:WEIGHT]` specs:
/// the demo backends when there are any (each with its weight from
/// `weights`, when given), else those given on the command line, else the
/// C original's defaults, 127.0.0.1:9001 to 9003.
pub fn backend_specs(demo: &[BackendHandle], weights: &[u32], given: &[String]) -> Vec<String> {
    if !demo.is_empty() {
        return demo
            .iter()
            .enumerate()
            .map(|(i, b)| match weights.get(i) {
                Some(w) => format!("{}:{w}", b.addr()),
                None => b.addr().to_string(),
            })
            .collect();
    }
    if given.is_empty() {
        return (9001..=9003).map(|port| format!("127.0.0.1:{port}")).collect();
    }
    given.to_vec()
}
