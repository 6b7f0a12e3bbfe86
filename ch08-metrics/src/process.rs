//! The process's own series, read from `/proc/self` at scrape time, under
//! the names every Prometheus client library uses (`process_*`), so the
//! usual dashboards and alerts find them.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::family::NameError;
use crate::registry::Registry;
use crate::scraped::Scraped;

/// What `/proc` says about this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Process {
    /// Resident memory, bytes (`VmRSS` of `/proc/self/status`).
    pub resident_bytes: u64,
    /// Descriptors open now (entries of `/proc/self/fd`).
    pub open_fds: u64,
    /// The soft limit on open descriptors.
    pub max_fds: u64,
    /// User and system CPU time, seconds (`/proc/self/stat`).
    pub cpu_seconds: f64,
}

/// Reads [`Process`] now; fields that cannot be read are 0 (on systems
/// without `/proc`, all of them).
pub fn read() -> Process {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    Process {
        resident_bytes: resident_bytes(&status).unwrap_or(0),
        open_fds: std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0),
        max_fds: max_open_files(&limits).unwrap_or(0),
        cpu_seconds: cpu_ticks(&stat).map_or(0.0, |t| t as f64 / ticks_per_second()),
    }
}

/// `VmRSS:   1234 kB` in `/proc/self/status`, in bytes.
pub fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
pub fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// utime + stime (fields 14 and 15) of `/proc/self/stat`, in clock ticks.
/// The command name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so fields are counted after its last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (the state): utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`; 100 on Linux).
fn ticks_per_second() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// Registers the `process_*` series; `started` is when the program began.
pub fn register(registry: &Registry, started: SystemTime) -> Result<(), NameError> {
    let start = started.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let families = [
        Scraped::gauge("process_resident_memory_bytes", "Resident memory size in bytes.", &[], |out| {
            out.push((vec![], read().resident_bytes as f64));
        })?,
        Scraped::gauge("process_open_fds", "Number of open file descriptors.", &[], |out| {
            out.push((vec![], read().open_fds as f64));
        })?,
        Scraped::gauge("process_max_fds", "Maximum number of open file descriptors.", &[], |out| {
            out.push((vec![], read().max_fds as f64));
        })?,
        Scraped::counter(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            &[],
            |out| {
                out.push((vec![], read().cpu_seconds));
            },
        )?,
        Scraped::gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            &[],
            move |out| out.push((vec![], start)),
        )?,
    ];
    for f in families {
        registry.add(Arc::new(f));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_field_by_field() {
        assert_eq!(resident_bytes("Name:\tx\nVmRSS:\t    2048 kB\nVmSwap: 0 kB\n"), Some(2048 * 1024));
        assert_eq!(resident_bytes("VmRSS:\tlots kB\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            65536                1048576              files     \n";
        assert_eq!(max_open_files(limits), Some(65536));
        // A command name with a space and a parenthesis in it.
        let stat = "4242 (lb (test) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 37 5 0 0 20 0 3 0 1000 0 0";
        assert_eq!(cpu_ticks(stat), Some(42));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_seen() {
        let p = read();
        assert!(p.resident_bytes > 0);
        assert!(p.open_fds >= 3, "{p:?}");
        assert!(p.max_fds >= p.open_fds);
    }
}
