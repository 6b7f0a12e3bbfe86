//! Series read at scrape time instead of updated on the request path.
//!
//! Much of what a balancer can report is already counted somewhere: each
//! backend's health and open connections (chapter 4), the loop's
//! connection counts (chapter 5), the pool's and the limiter's counters
//! (chapters 6 and 7), the process's memory in `/proc`. Copying those into
//! metrics on every change would double the work on the hot path; reading
//! them when Prometheus asks (every 15 s, typically) costs nothing between
//! scrapes. A [`Scraped`] family is a name, a type and a function that
//! lists the samples now.

use crate::registry::{Collect, Format, line};
use crate::text::{push_header, valid_name};

use crate::family::NameError;

/// One sample: label values (one per label name) and the value.
pub type Sample = (Vec<String>, f64);

/// The function a [`Scraped`] family reads its samples with.
type Read = Box<dyn Fn(&mut Vec<Sample>) + Send + Sync>;

// ANCHOR: scraped
/// A family whose samples are read when the registry renders.
pub struct Scraped {
    name: String,
    help: String,
    kind: &'static str,
    labels: Vec<String>,
    read: Read,
}

impl Scraped {
    /// A counter family: `read` pushes each series' current total.
    pub fn counter(
        name: &str,
        help: &str,
        labels: &[&str],
        read: impl Fn(&mut Vec<Sample>) + Send + Sync + 'static,
    ) -> Result<Self, NameError> {
        Self::new(name, help, "counter", labels, Box::new(read))
    }

    /// A gauge family: `read` pushes each series' value now.
    pub fn gauge(
        name: &str,
        help: &str,
        labels: &[&str],
        read: impl Fn(&mut Vec<Sample>) + Send + Sync + 'static,
    ) -> Result<Self, NameError> {
        Self::new(name, help, "gauge", labels, Box::new(read))
    }
    // ANCHOR_END: scraped

    fn new(name: &str, help: &str, kind: &'static str, labels: &[&str], read: Read) -> Result<Self, NameError> {
        if !valid_name(name, false) {
            return Err(NameError(format!("{name:?} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")));
        }
        if let Some(bad) = labels.iter().find(|l| !valid_name(l, true) || **l == "le" || **l == "quantile") {
            return Err(NameError(format!("{bad:?} cannot be a label name of {name}")));
        }
        let labels = labels.iter().map(|l| l.to_string()).collect();
        Ok(Self { name: name.to_string(), help: help.to_string(), kind, labels, read })
    }
}

impl std::fmt::Debug for Scraped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraped").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl Collect for Scraped {
    fn name(&self) -> &str {
        &self.name
    }

    fn render(&self, out: &mut String, format: Format) {
        let mut samples = Vec::new();
        (self.read)(&mut samples);
        push_header(out, &self.name, &self.help, self.kind, format == Format::OpenMetrics);
        for (values, value) in samples {
            // A sample with the wrong number of values is dropped: its
            // labels could not be written in a form Prometheus accepts.
            if values.len() == self.labels.len() {
                line(out, &self.name, "", &self.labels, &values, value);
            }
        }
    }

    fn folded(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::Registry;

    #[test]
    fn samples_are_read_at_each_scrape() {
        let r = Registry::new();
        let n = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let seen = Arc::clone(&n);
        let up = Scraped::gauge("lb_backend_up", "1 if healthy.", &["backend"], move |out| {
            out.push((vec!["a:1".into()], seen.load(std::sync::atomic::Ordering::Relaxed) as f64));
            out.push((vec!["too".into(), "many".into()], 5.0));
        })
        .unwrap();
        r.add(Arc::new(up));
        let first = r.render();
        assert!(first.contains("lb_backend_up{backend=\"a:1\"} 1\n"), "{first}");
        assert!(!first.contains("many"), "a sample with the wrong labels is dropped");
        assert!(!first.contains("metrics_series_folded_total"), "no budget, no folded line");
        n.store(0, std::sync::atomic::Ordering::Relaxed);
        assert!(r.render().contains("lb_backend_up{backend=\"a:1\"} 0\n"));
        assert!(Scraped::counter("bad name", "", &[], |_| {}).is_err());
    }
}
