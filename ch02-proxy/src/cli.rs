//! The timeouts every proxy and balancer takes on its command line, with
//! the same names and defaults in every chapter.

use std::time::Duration;

use crate::http::Limits;
use crate::proxy::Timeouts;

// ANCHOR: timeout_args
/// A timeout for every phase of an exchange.
#[derive(Debug, Clone, clap::Args)]
pub struct TimeoutArgs {
    /// Milliseconds to connect upstream (a balancer then tries the next
    /// backend; with none left, 504).
    #[arg(long, default_value_t = 2_000)]
    pub connect_timeout_ms: u64,
    /// Milliseconds for a backend's response head (then 504).
    #[arg(long, default_value_t = 30_000)]
    pub response_timeout_ms: u64,
    /// Milliseconds for a complete request head (then 408), and for an
    /// idle keep-alive client to send its next request.
    #[arg(long, default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Milliseconds with no byte moving in a body or tunnel before it is cut.
    #[arg(long, default_value_t = 60_000)]
    pub idle_timeout_ms: u64,
}
// ANCHOR_END: timeout_args

impl TimeoutArgs {
    /// The exchange timeouts (zero is raised to a millisecond: a zero
    /// timeout means "none" to the socket calls).
    pub fn timeouts(&self) -> Timeouts {
        let ms = |v: u64| Duration::from_millis(v.max(1));
        Timeouts {
            connect: ms(self.connect_timeout_ms),
            response: ms(self.response_timeout_ms),
            idle: ms(self.idle_timeout_ms),
        }
    }

    /// `limits` with the header timeout from the command line.
    pub fn limits(&self, limits: Limits) -> Limits {
        Limits { header_timeout: Duration::from_millis(self.header_timeout_ms.max(1)), ..limits }
    }
}
