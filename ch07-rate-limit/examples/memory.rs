//! Measures what a key costs in the keyed table, in resident memory, at a
//! million keys: `cargo run --release -p ch07-rate-limit --example memory`.
//! Exits with an error when it is over the 64-byte target.

use std::net::Ipv4Addr;

use ch07_rate_limit::algorithm::Gcra;
use ch07_rate_limit::keyed::{Charge, Key, Keyed};
use ch07_rate_limit::quota::Quota;

/// Resident memory in bytes, from /proc (Linux).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() -> Result<(), String> {
    let keys: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let quota = Quota::new(10.0, 20).map_err(|e| e.to_string())?;
    let before = rss().ok_or("no /proc/self/statm: Linux only")?;
    let mut table = Keyed::new(Gcra::new(quota), keys as usize);
    for i in 0..keys {
        // Distinct addresses, every one of them limited (not yet recovered).
        table.check(Key::ip(Ipv4Addr::from(0x0a00_0000 + i as u32).into()), 1, Charge::Yes);
    }
    let after = rss().ok_or("no /proc/self/statm")?;
    let stats = table.stats();
    let per_key = (after - before) as f64 / keys as f64;
    println!(
        "{keys} keys: {:.1} MiB resident, {per_key:.1} bytes per key ({} placed, {} overflowed); table {} bytes ({:.1} per key)",
        (after - before) as f64 / 1048576.0,
        stats.inserted,
        stats.overflowed,
        table.memory_bytes(),
        table.memory_bytes() as f64 / keys as f64
    );
    // How much of it the kernel backed with 2 MiB pages (see keyed.rs).
    if let Ok(rollup) = std::fs::read_to_string("/proc/self/smaps_rollup")
        && let Some(line) = rollup.lines().find(|l| l.starts_with("AnonHugePages"))
    {
        println!("huge pages: {}", line.split_whitespace().skip(1).collect::<Vec<_>>().join(" "));
    }
    if per_key > 64.0 {
        return Err(format!("{per_key:.1} bytes per key: over the 64-byte target"));
    }
    Ok(())
}
