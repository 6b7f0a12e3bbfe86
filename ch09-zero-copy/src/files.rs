//! What `static_server` answers, decided before any byte of a file is
//! sent: which file a request target names (and which it must never
//! name), which part of it a `Range` asks for, whether the client's copy
//! is still good (`ETag`, `Last-Modified`), and its content type.
//!
//! All of it is pure functions of the request and the file's metadata,
//! so each rule is tested on its own, and the parts that read the
//! client's bytes are fuzzed (`fuzz/fuzz_targets/static_files.rs`).
//!
//! | rule | function |
//! |---|---|
//! | a target to path segments, or a refusal | [`segments`] |
//! | segments to a file under the root, symlinks included | [`resolve`] |
//! | `Range: bytes=...` | [`range`] |
//! | `ETag`, `If-None-Match`, `Last-Modified`, `If-Modified-Since` | [`etag`], [`not_modified`] |
//! | HTTP dates | [`http_date`], [`parse_http_date`] |
//! | content types | [`content_type`] |

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a target names no file we may serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not a path we can read (400): not origin-form, a bad `%` escape,
    /// not UTF-8 once decoded.
    Malformed(&'static str),
    /// A path that tries to leave the root or hide what it names (403):
    /// `..`, an encoded `/` or `\`, a NUL byte, a symlink out of the root.
    Forbidden(&'static str),
    /// Nothing there (404).
    NotFound,
}

impl Refused {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Refused::Malformed(_) => 400,
            Refused::Forbidden(_) => 403,
            Refused::NotFound => 404,
        }
    }
}

// ANCHOR: segments
/// The path segments of a request target, decoded: `/a/b%20c?x` gives
/// `["a", "b c"]`. Refused: anything but a path starting with `/` (an
/// absolute URI's path is taken from it); a `%` not followed by two hex
/// digits; a segment that is `..`, or holds `/`, `\` or NUL once decoded
/// (`%2e%2e`, `%2f`, `%5c`, `%00`); bytes that are not UTF-8. Empty and
/// `.` segments are dropped. Nothing here touches the filesystem.
pub fn segments(target: &str) -> Result<Vec<String>, Refused> {
    let path = if target.starts_with('/') {
        target
    } else {
        // The absolute form, `http://host/path`: its path.
        let scheme = target.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
        match (scheme.as_deref(), target.split_once("://")) {
            (Some("http" | "https"), Some((_, rest))) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
            _ => return Err(Refused::Malformed("the target is neither a path starting with / nor an http URL")),
        }
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let mut out = Vec::new();
    for raw in path.split('/') {
        let decoded = percent_decode(raw)?;
        if decoded.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) {
            return Err(Refused::Forbidden("a \\, an encoded / or a NUL in the path"));
        }
        let segment = String::from_utf8(decoded).map_err(|_| Refused::Malformed("the path is not UTF-8"))?;
        match segment.as_str() {
            "" | "." => {}
            ".." => return Err(Refused::Forbidden("a .. segment in the path")),
            _ => out.push(segment),
        }
    }
    Ok(out)
}
// ANCHOR_END: segments

fn percent_decode(raw: &str) -> Result<Vec<u8>, Refused> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return Err(Refused::Malformed("a % not followed by two hex digits"));
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// A file found under the root.
#[derive(Debug)]
pub struct Resolved {
    /// Its path, symlinks resolved.
    pub path: PathBuf,
    /// Its metadata.
    pub metadata: Metadata,
}

// ANCHOR: resolve
/// The file `segments` name under `root` (a directory's `index.html`).
/// Symlinks are followed, and the file they lead to must still be under
/// the root: a link that points out of it is refused, as if it were `..`.
pub fn resolve(root: &Path, segments: &[String]) -> Result<Resolved, Refused> {
    let root = root.canonicalize().map_err(|_| Refused::NotFound)?;
    let mut path = root.clone();
    path.extend(segments);
    let mut path = canonical(&path)?;
    if !path.starts_with(&root) {
        return Err(Refused::Forbidden("a symlink that leads out of the root"));
    }
    let mut metadata = std::fs::metadata(&path).map_err(|_| Refused::NotFound)?;
    if metadata.is_dir() {
        path = canonical(&path.join("index.html"))?;
        if !path.starts_with(&root) {
            return Err(Refused::Forbidden("a symlink that leads out of the root"));
        }
        metadata = std::fs::metadata(&path).map_err(|_| Refused::NotFound)?;
    }
    if !metadata.is_file() {
        return Err(Refused::NotFound);
    }
    Ok(Resolved { path, metadata })
}
// ANCHOR_END: resolve

fn canonical(path: &Path) -> Result<PathBuf, Refused> {
    path.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => Refused::Forbidden("not readable"),
        _ => Refused::NotFound,
    })
}

/// The part of a file a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The whole file (no `Range`, or one we ignore, as RFC 9110 allows:
    /// several ranges, another unit, a header we cannot read).
    Whole,
    /// Bytes `start..=end` (206 Partial Content).
    Range {
        /// The first byte.
        start: u64,
        /// The last byte, included.
        end: u64,
    },
    /// No byte of a file this long (416 Range Not Satisfiable).
    Unsatisfiable,
}

// ANCHOR: range
/// The part of a file of `len` bytes that `header` (a `Range` value) asks
/// for: `bytes=0-99` (the first hundred), `bytes=100-` (from 100 to the
/// end), `bytes=-100` (the last hundred). An end past the file is cut to
/// it; a start at or past the end, or a suffix of 0, is unsatisfiable.
pub fn range(header: Option<&str>, len: u64) -> Part {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Part::Whole };
    if spec.contains(',') {
        return Part::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Part::Whole };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) { None } else { s.parse().ok() }
    };
    // A range we cannot read is ignored, whatever the file's length.
    let last_ok = last.trim().is_empty() || number(last).is_some();
    match (first.trim().is_empty(), number(first), number(last)) {
        // -N: the last N bytes.
        (true, _, Some(n)) if n == 0 || len == 0 => Part::Unsatisfiable,
        (true, _, Some(n)) => Part::Range { start: len.saturating_sub(n), end: len - 1 },
        (false, Some(start), _) if start >= len && last_ok => Part::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => Part::Range { start, end: len - 1 },
        (false, Some(start), Some(end)) if end >= start => Part::Range { start, end: end.min(len - 1) },
        _ => Part::Whole,
    }
}
// ANCHOR_END: range

/// The `ETag` of a file: its length and modification time, in quotes.
/// Strong: two files with the same length and time to the nanosecond are
/// taken to be the same bytes (what nginx assumes, to the second).
pub fn etag(len: u64, modified: SystemTime) -> String {
    let nanos = modified.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

// ANCHOR: not_modified
/// Whether the client's copy is still good (304 Not Modified): its
/// `If-None-Match` lists our `etag` (or is `*`); or, only when it sent no
/// `If-None-Match`, its `If-Modified-Since` is not before the file's
/// modification time (to the second, as HTTP dates are).
pub fn not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: &str,
    modified: SystemTime,
) -> bool {
    if let Some(list) = if_none_match {
        // Weak comparison: W/"x" matches "x".
        let ours = etag.trim_start_matches("W/");
        return list.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours);
    }
    match if_modified_since.and_then(parse_http_date) {
        Some(since) => {
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            secs(modified) <= secs(since)
        }
        None => false,
    }
}
// ANCHOR_END: not_modified

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `Sun, 06 Nov 1994 08:49:37 GMT`: a time as HTTP writes it (RFC 9110's
/// IMF-fixdate), to the second.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (year, month, day) = ch01_fundamentals::date::civil_from_days(days as i64);
    let rest = secs % 86_400;
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS.get((days % 7) as usize).unwrap_or(&"Thu"),
        MONTHS.get(month.saturating_sub(1) as usize).unwrap_or(&"Jan"),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// An IMF-fixdate back to a time; `None` for anything else (the obsolete
/// forms RFC 9110 lets a server accept are not accepted here: a client
/// that sends one gets the whole file, which is always correct).
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let mut parts = s.trim().split(' ');
    let (_day, dd, mon, yyyy, time, gmt) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || gmt != "GMT" || dd.len() != 2 || yyyy.len() != 4 {
        return None;
    }
    let digits = |s: &str| if s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<i64>().ok() } else { None };
    let day = digits(dd)?;
    let month = MONTHS.iter().position(|m| *m == mon)? as u32 + 1;
    let year = digits(yyyy)?;
    let mut hms = time.split(':');
    let (h, m, sec) = (digits(hms.next()?)?, digits(hms.next()?)?, digits(hms.next()?)?);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return None;
    }
    let days = ch01_fundamentals::date::days_from_civil(year, month, day as u32);
    let secs = u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// The `Content-Type` of a file, from its extension; bytes of unknown
/// kind are `application/octet-stream` (never guessed from content).
pub fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("wasm") => "application/wasm",
        Some("pdf") => "application/pdf",
        Some("csv") => "text/csv; charset=utf-8",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(target: &str) -> Vec<String> {
        segments(target).unwrap()
    }

    #[test]
    fn targets_become_decoded_segments() {
        assert_eq!(ok("/"), Vec::<String>::new());
        assert_eq!(ok("/a/b%20c?x=1#f"), ["a", "b c"]);
        assert_eq!(ok("//a/./b/"), ["a", "b"]);
        assert_eq!(ok("http://host/a/%C3%A9"), ["a", "é"]);
        assert_eq!(ok("http://host"), Vec::<String>::new());
        assert_eq!(ok("HTTPS://host/x"), ["x"]);
    }

    #[test]
    fn every_way_out_of_the_root_is_refused() {
        for bad in
            ["/../etc/passwd", "/a/../../b", "/%2e%2e/x", "/%2E%2E/x", "/a%2f..%2fb", "/a%5c..%5cb", "/a%00.html"]
        {
            assert!(matches!(segments(bad), Err(Refused::Forbidden(_))), "{bad}: {:?}", segments(bad));
        }
        for bad in ["a/b", "*", "/%zz", "/%4", "/%ff%fe", "\u{20ac}http://h/", "ftp://h/a", "x://h/"] {
            assert!(matches!(segments(bad), Err(Refused::Malformed(_))), "{bad}: {:?}", segments(bad));
        }
        // A dot that is not a whole segment is a name like any other.
        assert_eq!(ok("/..a/b..c/.hidden"), ["..a", "b..c", ".hidden"]);
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(range(None, 100), Part::Whole);
        assert_eq!(range(Some("bytes=0-9"), 100), Part::Range { start: 0, end: 9 });
        assert_eq!(range(Some("bytes=90-"), 100), Part::Range { start: 90, end: 99 });
        assert_eq!(range(Some("bytes=-10"), 100), Part::Range { start: 90, end: 99 });
        assert_eq!(range(Some("bytes=-1000"), 100), Part::Range { start: 0, end: 99 });
        assert_eq!(range(Some("bytes=50-5000"), 100), Part::Range { start: 50, end: 99 });
        assert_eq!(range(Some("bytes=100-"), 100), Part::Unsatisfiable);
        assert_eq!(range(Some("bytes=-0"), 100), Part::Unsatisfiable);
        assert_eq!(range(Some("bytes=0-0"), 0), Part::Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=9-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "bytes=0x1-2",
            "bytes=500-x",
        ] {
            assert_eq!(range(Some(ignored), 100), Part::Whole, "{ignored}");
        }
    }

    #[test]
    fn http_dates_go_both_ways() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(parse_http_date(&http_date(leap)), Some(leap));
        for bad in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_client_copy_is_good_when_its_validators_say_so() {
        let modified = UNIX_EPOCH + Duration::from_millis(784_111_777_500);
        let tag = etag(42, modified);
        assert!(not_modified(Some(&tag), None, &tag, modified));
        assert!(not_modified(Some(&format!("\"other\", W/{tag}")), None, &tag, modified));
        assert!(not_modified(Some("*"), None, &tag, modified));
        assert!(
            !not_modified(Some("\"other\""), Some("Sun, 06 Nov 1994 08:49:37 GMT"), &tag, modified),
            "If-None-Match wins"
        );
        assert!(not_modified(None, Some("Sun, 06 Nov 1994 08:49:37 GMT"), &tag, modified), "same second");
        assert!(!not_modified(None, Some("Sun, 06 Nov 1994 08:49:36 GMT"), &tag, modified));
        assert!(!not_modified(None, Some("yesterday"), &tag, modified));
        assert_ne!(etag(42, modified), etag(43, modified));
        assert_ne!(etag(42, modified), etag(42, modified + Duration::from_nanos(1)));
    }

    #[test]
    fn content_types_come_from_the_extension() {
        assert_eq!(content_type(Path::new("a/index.HTML")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("x.svg")), "image/svg+xml");
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
        assert_eq!(content_type(Path::new("x.exe")), "application/octet-stream");
    }
}
