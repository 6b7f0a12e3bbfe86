//! `config_files`: chapter 10's configuration readers. An operator's file
//! is not network input, but an admin request can carry one, and a reader
//! that panics on a typo would take the balancer down with it.
//!
//! Input: any bytes, read as JSON and as YAML, then checked by the schema.
//!
//! Checked besides "never panics": a problem's position is inside the
//! text (line and column from 1, the line no further than the text's
//! line breaks allow), and a file that reads and checks without problems gives the
//! same configuration when read again.
#![no_main]

use std::path::Path;

use ch10_hot_reload::config::{Format, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // YAML also counts a lone CR as a line break; JSON counts only LF.
    let lines = text.matches(['\n', '\r']).count() + 1;
    for format in [Format::Json, Format::Yaml] {
        match parse(&text, format, Path::new("fuzz")) {
            Ok(config) => {
                assert!(!config.backends.is_empty());
                assert_eq!(parse(&text, format, Path::new("fuzz")).ok(), Some(config));
            }
            Err(e) => {
                assert!(!e.problems.is_empty());
                for p in &e.problems {
                    assert!(p.pos.line >= 1 && p.pos.col >= 1, "{p:?}");
                    // At the end of the text a reader may point just past it.
                    assert!(p.pos.line <= lines + 1, "{p:?} in {lines} lines");
                }
            }
        }
    }
});
