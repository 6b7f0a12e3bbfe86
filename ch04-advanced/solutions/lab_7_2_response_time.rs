//! # Lab 7.2 — response-time based selection (reference solution)
//!
//! The task is in `src/labs/lab_7_2_response_time.rs`.
//!
//! An exponentially weighted moving average needs one number per node and
//! forgets old samples geometrically: with `alpha = 0.3`, a sample's
//! influence is down to 3% after ten newer ones. So the average follows a
//! backend that slows down within a few requests, yet one slow outlier
//! does not swing it completely.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::algorithm::{Algorithm, Context};
use crate::node::Pool;

/// Lowest moving-average latency first.
#[derive(Debug)]
pub struct FastestResponse {
    /// Weight of the newest sample, in (0, 1].
    alpha: f64,
    /// Per node: the average in seconds, `None` before the first sample.
    /// One lock for all nodes: `pick` must compare them all at one moment,
    /// and both operations are a few float operations long.
    averages: Mutex<Vec<Option<f64>>>,
}

impl FastestResponse {
    /// For a pool of `n` nodes, smoothing factor `alpha` (0 < alpha <= 1).
    pub fn new(n: usize, alpha: f64) -> Self {
        // Outside (0, 1] the average would never move (0), run away (> 1)
        // or turn into NaN: fall back to 1, "trust the latest sample".
        let alpha = if alpha > 0.0 && alpha <= 1.0 { alpha } else { 1.0 };
        Self { alpha, averages: Mutex::new(vec![None; n]) }
    }

    /// Node `index`'s moving average, if measured.
    pub fn average(&self, index: usize) -> Option<Duration> {
        let averages = self.averages.lock().unwrap_or_else(PoisonError::into_inner);
        let secs = averages.get(index).copied().flatten()?;
        // try_: a value that does not fit a Duration reads as "unknown"
        // instead of panicking (it cannot happen for real latencies).
        Duration::try_from_secs_f64(secs).ok()
    }
}

impl Algorithm for FastestResponse {
    fn name(&self) -> &'static str {
        "fastest"
    }

    fn pick(&self, pool: &Pool, ctx: &Context<'_>) -> Option<usize> {
        let averages = self.averages.lock().unwrap_or_else(PoisonError::into_inner);
        // (index, average) of the best measured node so far.
        let mut best: Option<(usize, f64)> = None;
        for i in pool.eligible_indices(ctx.now) {
            // `build` sizes us for this pool and pools never grow, so `i`
            // is in range; a node we have no slot for is simply skipped,
            // since it could never be measured.
            let Some(&slot) = averages.get(i) else { continue };
            match slot {
                // Never measured: try it now, or it would never get the
                // chance to prove it is fast.
                None => return Some(i),
                // Strictly lower wins, so ties stay with the lowest index.
                Some(avg) if best.is_none_or(|(_, b)| avg < b) => best = Some((i, avg)),
                Some(_) => {}
            }
        }
        best.map(|(i, _)| i)
    }

    fn on_response(&self, index: usize, latency: Duration) {
        let sample = latency.as_secs_f64();
        let mut averages = self.averages.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = averages.get_mut(index) else { return };
        *slot = Some(match *slot {
            // The first sample is the best estimate we have; starting from
            // zero instead would make a new node look fast for a while.
            None => sample,
            Some(avg) => self.alpha * sample + (1.0 - self.alpha) * avg,
        });
    }
}
