//! A family: one metric name, many series told apart by their labels
//! (`lb_requests_total{backend="a:80",status="200"}`), under a budget.
//!
//! Two rules keep labels cheap and safe:
//!
//! - **Resolve once.** [`Family::with`] finds or makes the series for a
//!   set of label values and hands back its handle (an `Arc`). A backend
//!   resolves its series when it is added, not on every request: the hot
//!   path is then one atomic add, never a map lookup or a lock.
//! - **A cardinality budget.** Every family has a maximum number of
//!   series. Past it, new label values all share one series whose labels
//!   read `__other__`, and the family counts how many resolutions were
//!   folded there. Without a budget, one label fed from the outside (a
//!   path, a header) lets any client create series without end, and the
//!   metrics page grows until scraping it is the outage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::text::valid_name;

/// What every family's series share: the label values they answer to.
pub const OTHER: &str = "__other__";

/// A metric family of series of type `M`.
pub struct Family<M> {
    name: String,
    help: String,
    labels: Vec<String>,
    max_series: usize,
    make: Box<dyn Fn() -> M + Send + Sync>,
    /// Only locked to resolve label values, never to update a series.
    series: Mutex<Vec<(Vec<String>, Arc<M>)>>,
    overflow: Arc<M>,
    folded: AtomicU64,
}

impl<M> std::fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family").field("name", &self.name).field("labels", &self.labels).finish_non_exhaustive()
    }
}

/// A name that Prometheus would not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

impl<M> Family<M> {
    /// A family called `name`, with `help` text, these label names, at
    /// most `max_series` series (at least 1), each made by `make`.
    pub fn new(
        name: &str,
        help: &str,
        labels: &[&str],
        max_series: usize,
        make: impl Fn() -> M + Send + Sync + 'static,
    ) -> Result<Self, NameError> {
        if !valid_name(name, false) {
            return Err(NameError(format!("{name:?} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")));
        }
        if let Some(bad) = labels.iter().find(|l| !valid_name(l, true) || **l == "le" || **l == "quantile") {
            return Err(NameError(format!("{bad:?} cannot be a label name of {name}")));
        }
        Ok(Self {
            name: name.to_string(),
            help: help.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            max_series: max_series.max(1),
            overflow: Arc::new(make()),
            make: Box::new(make),
            series: Mutex::new(Vec::new()),
            folded: AtomicU64::new(0),
        })
    }

    /// The family's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its help text.
    pub fn help(&self) -> &str {
        &self.help
    }

    /// Its label names.
    pub fn label_names(&self) -> &[String] {
        &self.labels
    }

    // ANCHOR: with
    /// The series for these label values (one per label name), made if
    /// new and within the budget; otherwise the shared `__other__` series.
    /// A wrong number of values is folded there too: a metric never makes
    /// the program fail.
    pub fn with(&self, values: &[&str]) -> Arc<M> {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, m)) = series.iter().find(|(v, _)| v.iter().map(String::as_str).eq(values.iter().copied())) {
            return Arc::clone(m);
        }
        if values.len() != self.labels.len() || series.len() >= self.max_series {
            self.folded.fetch_add(1, Ordering::Relaxed);
            return Arc::clone(&self.overflow);
        }
        let m = Arc::new((self.make)());
        series.push((values.iter().map(|v| v.to_string()).collect(), Arc::clone(&m)));
        m
    }
    // ANCHOR_END: with

    /// Resolutions folded into `__other__` so far.
    pub fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }

    /// Every series with its label values, the `__other__` one last when
    /// anything was folded into it.
    pub fn snapshot(&self) -> Vec<(Vec<String>, Arc<M>)> {
        let mut out = self.series.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if self.folded() > 0 {
            out.push((vec![OTHER.to_string(); self.labels.len()], Arc::clone(&self.overflow)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Counter;

    #[test]
    fn a_series_is_made_once_and_shared() {
        let f = Family::new("lb_requests_total", "Requests.", &["backend"], 10, Counter::new).unwrap();
        let a = f.with(&["a"]);
        a.inc();
        f.with(&["a"]).inc();
        assert_eq!(a.get(), 2);
        assert_eq!(f.snapshot().len(), 1);
    }

    #[test]
    fn past_the_budget_new_values_fold_into_other() {
        let f = Family::new("lb_requests_total", "Requests.", &["path"], 2, Counter::new).unwrap();
        for i in 0..1000 {
            f.with(&[&format!("/p{i}")]).inc();
        }
        let snap = f.snapshot();
        assert_eq!(snap.len(), 3, "two series and __other__");
        assert_eq!(f.folded(), 998);
        let other = snap.iter().find(|(v, _)| v == &[OTHER.to_string()]).unwrap();
        assert_eq!(other.1.get(), 998);
        // A wrong number of values is folded, not a panic.
        f.with(&["a", "b"]).inc();
        assert_eq!(f.folded(), 999);
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(Family::new("lb-requests", "", &[], 1, Counter::new).is_err());
        assert!(Family::new("lb_x", "", &["le"], 1, Counter::new).is_err());
        assert!(Family::new("lb_x", "", &["__x"], 1, Counter::new).is_err());
    }
}
