//! # Lab 14.1 — a canary and a blue-green switch, as configurations (reference solution)
//!
//! The task is in `src/labs/lab_14_1_canary.rs`.

use super::RolloutError;
use crate::config::Config;

/// The schema's largest weight.
const MAX_WEIGHT: u64 = 1000;

/// `config` with backend `addr` taking `percent` percent of the requests.
pub fn canary(config: &Config, addr: &str, percent: u32) -> Result<Config, RolloutError> {
    let at = config.backends.iter().position(|b| b.addr() == addr).ok_or(RolloutError::NotABackend)?;
    if !(1..=99).contains(&percent) {
        return Err(RolloutError::BadPercent);
    }
    let others: Vec<u64> =
        config.backends.iter().enumerate().filter(|&(i, _)| i != at).map(|(_, b)| u64::from(b.weight)).collect();
    let largest = others.iter().copied().max().ok_or(RolloutError::Alone)?;
    let sum: u64 = others.iter().sum();
    let p = u64::from(percent);
    for k in 1..=MAX_WEIGHT / largest.max(1) {
        // c / (c + kS) = p / 100  =>  c = p kS / (100 - p), rounded.
        let exact = p * k * sum;
        let c = ((2 * exact + (100 - p)) / (2 * (100 - p))).clamp(1, MAX_WEIGHT);
        let share = 100.0 * c as f64 / (c + k * sum) as f64;
        if (share - percent as f64).abs() <= 0.5 {
            let mut out = config.clone();
            for (i, b) in out.backends.iter_mut().enumerate() {
                let w = if i == at { c } else { u64::from(b.weight) * k };
                b.weight = u32::try_from(w).map_err(|_| RolloutError::OutOfRange)?;
            }
            return Ok(out);
        }
    }
    Err(RolloutError::OutOfRange)
}

/// `config` with only the backends named in `green`.
pub fn switch(config: &Config, green: &[&str]) -> Result<Config, RolloutError> {
    if green.is_empty() {
        return Err(RolloutError::Empty);
    }
    if green.iter().any(|g| !config.backends.iter().any(|b| b.addr() == *g)) {
        return Err(RolloutError::NotABackend);
    }
    let mut out = config.clone();
    out.backends.retain(|b| green.contains(&b.addr().as_str()));
    Ok(out)
}
