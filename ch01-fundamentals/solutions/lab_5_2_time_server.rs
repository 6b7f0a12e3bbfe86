//! # Lab 5.2 — a time server (reference solution)
//!
//! The date arithmetic counts days in 400-year eras, whose length is
//! always 146,097 days, so no loop over years is needed. The task is in
//! `src/labs/lab_5_2_time_server.rs`.

use std::io;
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::io::write_all;

/// Turns a count of days since 1970-01-01 into (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so the leap day ends each "year".
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153; // month counted from March
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats `t` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(t: SystemTime) -> String {
    // Times before 1970 are shown as the epoch: a server clock that far
    // wrong is not worth a negative date.
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Sends the time `now` to the client, then closes.
pub fn handle_client(mut stream: TcpStream, now: SystemTime) -> io::Result<()> {
    let line = format!("{}\n", format_rfc3339(now));
    write_all(&mut stream, line.as_bytes())?;
    Ok(())
}
