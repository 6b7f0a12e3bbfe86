//! # Lab 8.4 — weights reloaded from a file on SIGHUP (reference solution)
//!
//! The task is in `src/labs/lab_8_4_weight_reload.rs`.
//!
//! Validate everything, then change everything: a file with one typo must
//! leave the running balancer exactly as it was, never half reloaded. So
//! parsing and checking happen before the first `set_weight`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::WeightsError;
use crate::node::Pool;

/// The largest weights file read: a line per backend is a few dozen bytes,
/// so a bigger file is a mistake (the wrong path), not a weights file.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The weights a file may give, as `--backend host:port:weight` accepts.
const WEIGHTS: std::ops::RangeInclusive<u32> = 1..=1000;

/// Parses a weights file.
pub fn parse_weights(text: &str) -> Result<Vec<(String, u32)>, WeightsError> {
    let mut pairs: Vec<(String, u32)> = Vec::new();
    // Address -> the line it was first given on, to name it in an error.
    // A map, not a scan of `pairs`: a long file would make that quadratic.
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    // `lines` also drops a `\r` before each `\n`, so a file edited on
    // Windows parses the same.
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| WeightsError { line, message };
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [addr, weight] = fields[..] else {
            return Err(err(format!("expected `host:port weight`, found {} field(s)", fields.len())));
        };
        let weight: u32 = match weight.parse() {
            Ok(w) if WEIGHTS.contains(&w) => w,
            _ => return Err(err(format!("weight {weight:?} is not a number from 1 to 1000"))),
        };
        if let Some(first) = first_seen.insert(addr, line) {
            return Err(err(format!("{addr} is given twice (first on line {first})")));
        }
        pairs.push((addr.to_string(), weight));
    }
    Ok(pairs)
}

/// Applies weights to the pool, all or nothing.
pub fn apply_weights(pool: &Pool, weights: &[(String, u32)]) -> Result<usize, WeightsError> {
    let err = |message: String| WeightsError { line: 0, message };
    // Phase 1: check every pair, change nothing.
    let mut targets = Vec::with_capacity(weights.len());
    for (addr, weight) in weights {
        let index = pool.find(addr).ok_or_else(|| err(format!("{addr} is not a backend of this pool")))?;
        // Parsed weights are in range already; a caller building the list
        // itself gets the same rule, so no node ever has weight 0.
        if !WEIGHTS.contains(weight) {
            return Err(err(format!("weight {weight} for {addr} is not from 1 to 1000")));
        }
        targets.push((index, *weight));
    }
    // Phase 2: apply. Each store is atomic; a request placed meanwhile may
    // see some nodes with new weights and some with old ones, which is
    // harmless, and keeps the hot path free of any reload lock.
    let before: Vec<u32> = pool.nodes.iter().map(|n| n.weight()).collect();
    for &(index, weight) in &targets {
        pool.nodes[index].set_weight(weight);
    }
    // Counted at the end, per node, so an address listed twice (possible
    // when the list does not come from `parse_weights`) counts once.
    Ok(pool.nodes.iter().zip(&before).filter(|(n, old)| n.weight() != **old).count())
}

/// Reads, parses and applies `path`.
pub fn reload_weights_file(pool: &Pool, path: &Path) -> Result<usize, WeightsError> {
    let err = |message: String| WeightsError { line: 0, message };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
    // Read one byte more than allowed, to tell "exactly at the limit" from
    // "too big" without trusting the file's size (it may be growing).
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(err(format!("{} is larger than {MAX_FILE_BYTES} bytes", path.display())));
    }
    let text = String::from_utf8(bytes).map_err(|_| err(format!("{} is not UTF-8 text", path.display())))?;
    let weights = parse_weights(&text)?;
    apply_weights(pool, &weights)
}
