//! `static_files`: what chapter 9's static file server reads from a
//! request before it opens a file: the target's path segments, a `Range`
//! header, the validators `If-None-Match` and `If-Modified-Since`.
//!
//! Input: a flags byte and a length, then lines: the target, a `Range`
//! value, an `If-None-Match` value, an `If-Modified-Since` value.
//!
//! Checked besides "never panics": no segment can climb out of the root
//! or hide a separator (none is empty, `.`, `..`, or holds `/`, `\` or
//! NUL); a range lies inside the file; a date that parses prints back as
//! the same date.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use ch09_zero_copy::files::{Part, etag, http_date, not_modified, parse_http_date, range, segments};
use lbs_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let len = u64::from(input.u16()) << (flags & 0x0F);
    let text = String::from_utf8_lossy(input.rest());
    let mut lines = text.split('\n');
    let (target, range_value, inm, ims) = (lines.next(), lines.next(), lines.next(), lines.next());

    if let Ok(segs) = segments(target.unwrap_or("/")) {
        for s in &segs {
            assert!(!s.is_empty() && s != "." && s != "..", "{segs:?}");
            assert!(!s.contains(['/', '\\', '\0']), "{segs:?}");
        }
    }

    match range(range_value, len) {
        Part::Range { start, end } => assert!(start <= end && end < len, "{start}-{end} of {len}"),
        Part::Whole | Part::Unsatisfiable => {}
    }

    if let Some(t) = ims.and_then(parse_http_date) {
        assert_eq!(parse_http_date(&http_date(t)), Some(t));
    }
    let modified = UNIX_EPOCH + Duration::from_secs(u64::from(flags) << 24);
    let tag = etag(len, modified);
    let _ = not_modified(inm, ims, &tag, modified);
});
