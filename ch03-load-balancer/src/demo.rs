//! Backends with no setup: `--demo`, and the zero-setup rule.
//!
//! `--demo` starts three test backends inside the load balancer's own
//! process. And a balancer given no `--backend` first looks at the C
//! original's defaults, 127.0.0.1:9001 to 9003; when nothing answers there
//! either, it starts the demo backends itself and says so, so that
//! `cargo run -p ch03-load-balancer` followed by `curl localhost:8080/`
//! works on a fresh machine. With `--backend` given, it never does.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use backends::BackendHandle;

/// The C original's backends: 127.0.0.1:9001 to 9003.
pub const DEFAULT_BACKENDS: [&str; 3] = ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"];

/// Starts backends named `backend-1` to `backend-n` on 127.0.0.1, on free
/// ports chosen by the kernel (so nothing else on 9001-9003 gets in the
/// way): the test backends' own `spawn_many`.
pub fn start(n: usize) -> io::Result<Vec<BackendHandle>> {
    backends::spawn_many(n)
}

/// Why a balancer runs with the backends it runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--backend` flags.
    Given,
    /// The defaults, 127.0.0.1:9001 to 9003: at least one answered.
    Defaults,
    /// `--demo`.
    Demo,
    /// No `--backend`, and nothing answered on the defaults: demo backends.
    ZeroSetup,
}

// ANCHOR: chosen
/// The backends a balancer runs with.
#[derive(Debug)]
pub struct Chosen {
    /// `HOST:PORT[:WEIGHT]` specs, for `Backend::parse`.
    pub specs: Vec<String>,
    /// Demo backends running in this process; they stop when dropped.
    pub demo: Vec<BackendHandle>,
    /// Where the specs came from.
    pub origin: Origin,
}

/// Chooses the backends: those `given`, else the demo backends when
/// `demo` is asked for, else the defaults if any of them answers, else
/// the demo backends anyway (zero setup). Demo backends get `weights`
/// in order, when given.
pub fn choose(given: &[String], demo: bool, weights: &[u32]) -> io::Result<Chosen> {
    if !given.is_empty() {
        return Ok(Chosen { specs: given.to_vec(), demo: Vec::new(), origin: Origin::Given });
    }
    if !demo && DEFAULT_BACKENDS.iter().any(|a| answers(a)) {
        let specs = DEFAULT_BACKENDS.iter().map(|a| a.to_string()).collect();
        return Ok(Chosen { specs, demo: Vec::new(), origin: Origin::Defaults });
    }
    let handles = start(3)?;
    let specs = handles
        .iter()
        .enumerate()
        .map(|(i, b)| match weights.get(i) {
            Some(w) => format!("{}:{w}", b.addr()),
            None => b.addr().to_string(),
        })
        .collect();
    Ok(Chosen { specs, demo: handles, origin: if demo { Origin::Demo } else { Origin::ZeroSetup } })
}
// ANCHOR_END: chosen

/// Whether something accepts connections at `addr` (a short try: a
/// closed port on this machine refuses at once).
fn answers(addr: &str) -> bool {
    addr.parse::<SocketAddr>().is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

// ANCHOR: announce
impl Chosen {
    /// Says, once the balancer listens on `port`, where its backends came
    /// from when that is not obvious, with the curl to try.
    pub fn announce(&self, port: u16) {
        let list = self.specs.join(", ");
        match self.origin {
            Origin::Given | Origin::Defaults => {}
            Origin::Demo => tracing::info!(
                backends = %list,
                "demo backends are running in this process; try: curl -i http://localhost:{port}/"
            ),
            Origin::ZeroSetup => tracing::info!(
                backends = %list,
                "no --backend given and nothing answers on 127.0.0.1:9001-9003, so 3 demo backends run in this \
                 process; try: curl -i http://localhost:{port}/"
            ),
        }
    }
}
// ANCHOR_END: announce

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_backends_are_used_as_they_are() {
        let given = vec!["10.0.0.1:80".to_string()];
        let c = choose(&given, false, &[]).unwrap();
        assert_eq!((c.specs, c.demo.len(), c.origin), (given, 0, Origin::Given));
    }

    #[test]
    fn demo_backends_carry_their_weights_and_answer() {
        let c = choose(&[], true, &[3, 2, 1]).unwrap();
        assert_eq!(c.origin, Origin::Demo);
        assert_eq!(c.demo.len(), 3);
        for (spec, (h, w)) in c.specs.iter().zip(c.demo.iter().zip([3, 2, 1])) {
            assert_eq!(spec, &format!("{}:{w}", h.addr()));
            assert!(answers(&h.addr().to_string()));
        }
    }
}
