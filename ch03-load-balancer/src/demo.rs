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
