//! # Lab 12.2 — a metric end to end: responses by status class
//!
//! Adding a metric to a real program means more than a counter: the
//! program must tell you when the thing you count happens, the labels
//! must come from a small set you control, and the result must reach a
//! scrape. This lab does all of it, for a question every operator asks
//! first: *how many responses of each class (2xx, 4xx, 5xx) did each
//! backend give?*
//!
//! Chapter 5's loop calls a hook, [`Observe`], once for every request
//! when it ends, with a [`Finished`]: the backend that served it (`None`
//! when the balancer answered it itself: a 429, or an error when no
//! backend could be reached) and the status the client got (0 when the
//! response was cut short). Your [`StatusClasses`] implements that hook;
//! the graded tests plug it into the real loop (`lb::run_with`), send
//! real requests through it to real backends, and read what it counted.
//!
//! ## What to write
//!
//! - [`class_of`]: a status's class label: `"1xx"` to `"5xx"` for 100 to
//!   599, `"none"` for 0, `"other"` for anything else. Five classes and two
//!   words: whatever a backend sends, this label has at most seven values.
//! - [`StatusClasses::new`] with a budget, `max_backends` (at least 1):
//!   the most backends that get series of their own.
//! - [`Observe::finished`] for [`StatusClasses`]: count the request under
//!   its backend's address (`Finished::backend`'s `&str`), or under
//!   `"none"` when no backend served it, and its class. A backend seen
//!   when `max_backends` backends already have series is counted under
//!   `"__other__"` instead (as is every later request of it): the budget
//!   keeps a scrape small whatever happens. (`"none"` does not count
//!   against the budget.)
//! - [`StatusClasses::count`]`(backend, class)`: what was counted under
//!   that pair (0 if nothing).
//! - [`StatusClasses::render`]: the family in the Prometheus text format:
//!
//! ```text
//! # HELP lb_responses_total Responses by backend and status class.
//! # TYPE lb_responses_total counter
//! lb_responses_total{backend="127.0.0.1:9001",class="2xx"} 3
//! lb_responses_total{backend="127.0.0.1:9001",class="5xx"} 1
//! lb_responses_total{backend="none",class="4xx"} 2
//! ```
//!
//!   One line per pair counted at least once, sorted by backend, then by
//!   class (plain string order, so `"__other__"` sorts first and `"none"`
//!   after the addresses that start with a digit); label values escaped
//!   (`\` as `\\`, `"` as `\"`, a newline as `\n`); every line ends with a
//!   newline. The HELP and TYPE lines come even when nothing was counted.
//!
//! The hook runs on the loop's thread, between two events, so it is on
//! every request's path: keep `finished` to a lookup and an add (a map
//! keyed by backend and class is fine here; the chapter's `Recorder`
//! shows how to avoid even the lookup).
//!
//! Run it: `cargo test -p ch08-metrics --no-default-features lab_12_2`.

pub use ch05_event_loop::lb::observe::{Finished, Observe};

/// The label of requests no backend served.
pub const NO_BACKEND: &str = "none";

/// The label of backends past the budget.
pub const OTHER: &str = "__other__";

/// A status code's class label.
pub fn class_of(status: u16) -> &'static str {
    // TODO: 1xx to 5xx, none, other.
    let _ = status;
    todo!("lab 12.2: a status's class")
}

/// Requests counted by backend and status class.
#[derive(Debug)]
pub struct StatusClasses {
    // TODO: your fields: the budget, the counts, the backends seen.
}

impl StatusClasses {
    /// Counts for at most `max_backends` backends (at least 1) by name.
    pub fn new(max_backends: usize) -> Self {
        let _ = max_backends;
        todo!("lab 12.2: an empty set of counts")
    }

    /// What was counted under `backend` and `class`.
    pub fn count(&self, backend: &str, class: &str) -> u64 {
        let _ = (backend, class);
        todo!("lab 12.2: one count")
    }

    /// The family in the Prometheus text format.
    pub fn render(&self) -> String {
        todo!("lab 12.2: the family's text")
    }
}

impl Observe for StatusClasses {
    fn finished(&mut self, request: &Finished<'_>) {
        // TODO: the backend's label (within the budget, or none), the
        // class, one more.
        let _ = request;
        todo!("lab 12.2: count a finished request")
    }
}
