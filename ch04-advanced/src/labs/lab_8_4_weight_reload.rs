//! # Lab 8.4 — weights reloaded from a file on SIGHUP
//!
//! Change traffic shares without a restart: edit a file, send SIGHUP
//! (`advanced_lb --weights-file weights.txt`, then `kill -HUP <pid>`).
//!
//! The file has one `host:port weight` per line; blank lines and lines
//! starting with `#` are ignored; spaces around the two fields do not
//! matter.
//!
//! - [`parse_weights`] returns the pairs in file order, or the first
//!   error as a [`WeightsError`] with its line number (from 1): not
//!   exactly two fields, a weight that is not a number from 1 to 1000, or
//!   an address given twice.
//! - [`apply_weights`] sets each listed node's weight (`Node::set_weight`),
//!   all or nothing: if any address is not in the pool, nothing changes
//!   and the error (line 0) names it. Returns how many weights changed
//!   value. Nodes not listed keep their weight.
//! - [`reload_weights_file`] reads, parses and applies a file (a read
//!   error is a [`WeightsError`] with line 0).
//!
//! Run it: `cargo test -p ch04-advanced --no-default-features lab_8_4`.

use std::path::Path;

use super::WeightsError;
use crate::node::Pool;

/// Parses a weights file.
pub fn parse_weights(text: &str) -> Result<Vec<(String, u32)>, WeightsError> {
    // TODO: skip blank and `#` lines; two fields per line; check the weight and duplicates.
    let _ = text;
    todo!("lab 8.4: parse the weights")
}

/// Applies weights to the pool, all or nothing.
pub fn apply_weights(pool: &Pool, weights: &[(String, u32)]) -> Result<usize, WeightsError> {
    // TODO: find every address first, then set the weights.
    let _ = (pool, weights);
    todo!("lab 8.4: apply the weights")
}

/// Reads, parses and applies `path`.
pub fn reload_weights_file(pool: &Pool, path: &Path) -> Result<usize, WeightsError> {
    // TODO: read the file, parse it, apply it.
    let _ = (pool, path);
    todo!("lab 8.4: reload the file")
}
