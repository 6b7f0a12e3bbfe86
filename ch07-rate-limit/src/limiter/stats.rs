//! The limiter's counters, read by the thread that prints reports
//! (SIGUSR1 and exit) while the loop runs: atomics, `Relaxed`, because
//! they are only ever read for a report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::Outcome;
use crate::keyed::KeyedStats;

/// One policy's counts.
#[derive(Debug, Default)]
pub struct PolicyStats {
    /// Its name.
    pub name: String,
    /// Requests it refused (or, in a dry run, would have).
    pub refused: AtomicU64,
}

/// Everything the limiter counts.
#[derive(Debug, Default)]
pub struct LimiterStats {
    /// Requests checked.
    pub checked: AtomicU64,
    /// Requests that went on at once.
    pub passed: AtomicU64,
    /// Requests held, then sent on (delay mode).
    pub delayed: AtomicU64,
    /// Requests answered 429.
    pub refused: AtomicU64,
    /// Requests a dry run let through that would have been refused.
    pub would_refuse: AtomicU64,
    /// Per policy, in the order they first appeared. A reload (chapter
    /// 10) can add policies; one it removes keeps its counts (counters
    /// never go back), and counts on if it returns.
    policies: Mutex<Vec<Arc<PolicyStats>>>,
    /// The per-key tables together: keys placed, recovered slots reused,
    /// checks charged to the overflow.
    pub inserted: AtomicU64,
    /// See `inserted`.
    pub reclaimed: AtomicU64,
    /// See `inserted`.
    pub overflowed: AtomicU64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl LimiterStats {
    /// The counters of the policy called `name`, made on first use.
    pub fn policy(&self, name: &str) -> Arc<PolicyStats> {
        let mut policies = self.policies.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = policies.iter().find(|p| p.name == name) {
            return Arc::clone(found);
        }
        let made = Arc::new(PolicyStats { name: name.to_string(), refused: AtomicU64::new(0) });
        policies.push(Arc::clone(&made));
        made
    }

    /// Every policy's counters so far, in the order they appeared.
    pub fn policies(&self) -> Vec<Arc<PolicyStats>> {
        self.policies.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Counts one decision (the refusing policy counts its own refusals).
    pub fn record(&self, outcome: &Outcome, dry_run: bool) {
        add(&self.checked);
        match outcome {
            Outcome::Pass => add(&self.passed),
            Outcome::Hold(_) if dry_run => add(&self.passed),
            Outcome::Hold(_) => add(&self.delayed),
            Outcome::Refuse { .. } => add(if dry_run { &self.would_refuse } else { &self.refused }),
        }
    }

    /// Copies the tables' counts (summed) for the report.
    pub fn tables(&self, tables: impl Iterator<Item = KeyedStats>) {
        let sum = tables.fold(KeyedStats::default(), |a, b| KeyedStats {
            inserted: a.inserted + b.inserted,
            reclaimed: a.reclaimed + b.reclaimed,
            overflowed: a.overflowed + b.overflowed,
        });
        self.inserted.store(sum.inserted, Ordering::Relaxed);
        self.reclaimed.store(sum.reclaimed, Ordering::Relaxed);
        self.overflowed.store(sum.overflowed, Ordering::Relaxed);
    }

    /// The lines of the statistics report.
    pub fn report(&self) -> String {
        let mut out = format!(
            "rate limiting: {} requests checked: {} passed at once, {} delayed, {} refused (429)",
            get(&self.checked),
            get(&self.passed),
            get(&self.delayed),
            get(&self.refused)
        );
        let would = get(&self.would_refuse);
        if would > 0 {
            out.push_str(&format!(", {would} let through by the dry run that would have been refused"));
        }
        out.push('\n');
        let verb = if would > 0 && get(&self.refused) == 0 { "would have refused" } else { "refused" };
        for p in self.policies() {
            out.push_str(&format!("  {} limit: {} {verb}\n", p.name, get(&p.refused)));
        }
        out.push_str(&format!(
            "  keys: {} placed, {} slots of recovered keys reused, {} checks charged to the shared overflow (table full)\n",
            get(&self.inserted),
            get(&self.reclaimed),
            get(&self.overflowed)
        ));
        out
    }
}
