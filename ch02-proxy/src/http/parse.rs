//! Parsing heads: `httparse` tokenizes, and the rules a proxy must follow
//! (`ARCHITECTURE.md` section 3) decide what is refused, with which status.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use super::{Framing, HeadError, Headers, Limits, RequestHead, ResponseHead, Version};

// ANCHOR: parse_request
/// Parses a request head from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed (and the limits allow
/// them), `Ok(Some((head, n)))` with the head's length `n` when complete,
/// and an error for anything that must be refused.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<(RequestHead, usize)>, HeadError> {
    check_target_length(buf, limits)?;
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut slots);
    let Some(len) = head_length(req.parse(buf), buf, limits)? else { return Ok(None) };
    // httparse fills every field of a Complete parse.
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    let version = if minor == 0 { Version::Http10 } else { Version::Http11 };
    let headers = collect_headers(req.headers)?;

    // Host: exactly one in HTTP/1.1 (RFC 9112 3.2), at most one in 1.0.
    let hosts = headers.get_all("host").count();
    if version == Version::Http11 && hosts == 0 {
        return Err(HeadError::Malformed("missing Host header"));
    }
    if hosts > 1 {
        return Err(HeadError::Malformed("more than one Host header"));
    }
    if method == "CONNECT" {
        split_authority(target).ok_or(HeadError::Malformed("CONNECT target must be host:port"))?;
    }
    let framing = request_framing(version, &headers)?;
    let head = RequestHead { method: method.to_string(), target: target.to_string(), version, headers, framing };
    Ok(Some((head, len)))
}
// ANCHOR_END: parse_request

/// What the tokenizer's answer means for a head in `buf`: its length when
/// complete (within the size limit, line endings checked), `None` when more
/// bytes may come, or the refusal.
fn head_length(parsed: httparse::Result<usize>, buf: &[u8], limits: &Limits) -> Result<Option<usize>, HeadError> {
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head_bytes => {
            return Err(HeadError::HeadTooLarge(limits.max_head_bytes));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(tokenizer_error(e, limits)),
    };
    if len > limits.max_head_bytes {
        return Err(HeadError::HeadTooLarge(limits.max_head_bytes));
    }
    // httparse's length is within what it was given; `get` says so too.
    check_line_endings(buf.get(..len).ok_or(HeadError::Malformed("head length past the buffer"))?)?;
    Ok(Some(len))
}

/// 414 as soon as the request line is known to be too long, even before the
/// rest of the head has arrived.
fn check_target_length(buf: &[u8], limits: &Limits) -> Result<(), HeadError> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    let line = line_end.and_then(|end| buf.get(..end)).unwrap_or(buf);
    let mut parts = line.split(|&b| b == b' ');
    let _method = parts.next();
    let target_len = parts.next().map_or(0, <[u8]>::len);
    // Without a line end yet, a line longer than any method, target and
    // version could be is a target over the limit.
    if target_len > limits.max_target_bytes || (line_end.is_none() && line.len() > limits.max_target_bytes + 64) {
        return Err(HeadError::TargetTooLong(limits.max_target_bytes));
    }
    Ok(())
}

// ANCHOR: tokenizer_error
/// Maps a tokenizer error to the reason we give.
fn tokenizer_error(e: httparse::Error, limits: &Limits) -> HeadError {
    HeadError::Malformed(match e {
        httparse::Error::HeaderName => {
            "invalid header line (a folded continuation line, whitespace before the colon, or a non-token character)"
        }
        httparse::Error::HeaderValue => "invalid character in a header value",
        httparse::Error::NewLine => "malformed line ending (a bare CR?)",
        httparse::Error::Token => "invalid method or token",
        httparse::Error::Version => "unsupported protocol version",
        httparse::Error::Status => "invalid status",
        httparse::Error::TooManyHeaders => return HeadError::TooManyHeaders(limits.max_headers),
    })
}
// ANCHOR_END: tokenizer_error

/// A CR must always be followed by LF. httparse tolerates some bare CRs;
/// another server might treat one as a line end, so we refuse them.
fn check_line_endings(head: &[u8]) -> Result<(), HeadError> {
    let bare_cr = head.windows(2).any(|w| matches!(w, [b'\r', next] if *next != b'\n')) || head.last() == Some(&b'\r');
    if bare_cr { Err(HeadError::Malformed("bare CR in the head")) } else { Ok(()) }
}

/// Copies httparse's headers out, refusing control characters in values.
fn collect_headers(raw: &[httparse::Header<'_>]) -> Result<Headers, HeadError> {
    let mut headers = Headers(Vec::with_capacity(raw.len()));
    for h in raw {
        // Field values may hold visible ASCII, spaces, tabs and obs-text
        // (bytes >= 0x80); any other control character is refused.
        if h.value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(HeadError::Malformed("control character in a header value"));
        }
        headers.push(h.name, h.value);
    }
    Ok(headers)
}

// ANCHOR: request_framing
/// Decides how a request body is delimited, refusing every ambiguous case
/// (RFC 9112 section 6): a request that two servers could split into
/// messages differently is how request smuggling works.
pub fn request_framing(version: Version, headers: &Headers) -> Result<Framing, HeadError> {
    let has_te = headers.get("transfer-encoding").is_some();
    let has_cl = headers.get("content-length").is_some();
    if has_te && has_cl {
        return Err(HeadError::Malformed("both Content-Length and Transfer-Encoding"));
    }
    if has_te {
        if version == Version::Http10 {
            return Err(HeadError::Malformed("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let codings: Vec<String> = headers.tokens("transfer-encoding").map(|t| t.to_ascii_lowercase()).collect();
        let chunked = codings.iter().filter(|c| *c == "chunked").count();
        return match (codings.last().map(String::as_str), chunked, codings.len()) {
            (Some("chunked"), 1, 1) => Ok(Framing::Chunked),
            // chunked last and once, after codings we do not implement.
            (Some("chunked"), 1, _) => Err(HeadError::NotImplemented(codings.join(", "))),
            _ => Err(HeadError::Malformed("Transfer-Encoding must be exactly one final chunked")),
        };
    }
    match content_length(headers)? {
        Some(0) | None => Ok(Framing::Empty),
        Some(n) => Ok(Framing::Length(n)),
    }
}
// ANCHOR_END: request_framing

/// The Content-Length, if any: every value must be digits only, and all
/// values must agree.
pub fn content_length(headers: &Headers) -> Result<Option<u64>, HeadError> {
    let mut length = None;
    for value in headers.get_all("content-length") {
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(HeadError::Malformed("malformed Content-Length"));
        }
        // Digits only, so only overflow can fail here.
        let n = std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(HeadError::Malformed("Content-Length too large"))?;
        match length {
            Some(previous) if previous != n => return Err(HeadError::Malformed("differing Content-Length values")),
            _ => length = Some(n),
        }
    }
    Ok(length)
}

/// Splits `host:port` (or `[v6]:port`) into host and port.
pub fn split_authority(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = authority.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return None;
    }
    Some((host, port))
}

/// Parses a response head from the start of `buf`; `request_method` decides
/// whether a body follows (never after HEAD). Errors here mean the backend
/// misbehaved: the proxy answers its client 502.
pub fn parse_response(
    buf: &[u8],
    limits: &Limits,
    request_method: &str,
) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut res = httparse::Response::new(&mut slots);
    let Some(len) = head_length(res.parse(buf), buf, limits)? else { return Ok(None) };
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(HeadError::Malformed("incomplete status line"));
    };
    // Three digits, 100 to 599 (RFC 9110 section 15). httparse reads `000`
    // as 0, which `to_bytes` would write back as `HTTP/1.1 0`: no status line.
    if !(100..=599).contains(&status) {
        return Err(HeadError::Malformed("invalid status"));
    }
    let version = if minor == 0 { Version::Http10 } else { Version::Http11 };
    let reason = res.reason.unwrap_or("").to_string();
    let headers = collect_headers(res.headers)?;
    let framing = if request_method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if headers.get("transfer-encoding").is_some() {
        if headers.get("content-length").is_some() {
            return Err(HeadError::Malformed("response with both Content-Length and Transfer-Encoding"));
        }
        // A response whose final coding is not chunked runs until close.
        match headers.tokens("transfer-encoding").last() {
            Some(last) if last.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::UntilClose,
        }
    } else {
        match content_length(&headers)? {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    Ok(Some((ResponseHead { version, status, reason, headers, framing }, len)))
}
