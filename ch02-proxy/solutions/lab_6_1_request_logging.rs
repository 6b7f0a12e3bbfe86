//! # Lab 6.1 — request logging (reference solution)
//!
//! The task is in `src/labs/lab_6_1_request_logging.rs`.

use std::io;
use std::sync::{Arc, PoisonError};

use super::RequestLogger;
use crate::proxy::{Exchange, ExchangeHook};

/// One access-log line, newline included.
pub fn format_line(exchange: &Exchange) -> String {
    format!(
        "{} {} {} {} {}ms\n",
        exchange.client,
        exchange.method,
        exchange.target,
        exchange.status,
        exchange.latency.as_millis()
    )
}

impl RequestLogger {
    /// Writes the line for `exchange`.
    pub fn record(&self, exchange: &Exchange) -> io::Result<()> {
        let line = format_line(exchange);
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.write_all(line.as_bytes())?;
        out.flush()
    }

    /// This logger as a callback for the proxies.
    pub fn hook(self: Arc<Self>) -> ExchangeHook {
        Arc::new(move |exchange: &Exchange| {
            if let Err(e) = self.record(exchange) {
                tracing::warn!(error = %e, "could not write the access log");
            }
        })
    }
}
