//! Headers the advanced load balancer adds.
//!
//! | header | to | value |
//! |---|---|---|
//! | `X-Forwarded-For` | backend | the client chain, the client appended |
//! | `X-Real-IP` | backend | the client address |
//! | `X-Forwarded-Proto` | backend | `http` |
//! | `X-Forwarded-Host` | backend | the `Host` the client used |
//! | `X-Request-ID` | backend and client | the client's own if it sent a sane one, else a new random id |
//! | `Set-Cookie` | client | the sticky-session cookie, when it must be set |
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use ch02_proxy::http::Headers;
use ch03_load_balancer::rng::Rng;

/// Longest client-supplied request id we keep.
pub const MAX_REQUEST_ID: usize = 128;

// ANCHOR: request_id
/// Makes sure the request has an `X-Request-ID` and returns it. A client's
/// id is kept (so a trace spans systems) if it is 1 to 128 visible ASCII
/// characters; otherwise, or if absent, a new 128-bit random id is set.
pub fn ensure_request_id(headers: &mut Headers, rng: &mut Rng) -> String {
    let ids: Vec<&[u8]> = headers.get_all("x-request-id").collect();
    if let [id] = ids[..]
        && !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id.iter().all(|b| b.is_ascii_graphic())
    {
        // Visible ASCII is valid UTF-8.
        return String::from_utf8_lossy(id).into_owned();
    }
    let id = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    headers.set("X-Request-ID", id.clone());
    id
}
// ANCHOR_END: request_id

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .get_all("cookie")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_client_id_is_kept_and_others_replaced() {
        let mut rng = Rng::new(1);
        let mut h = Headers::default();
        h.push("X-Request-ID", "abc-123");
        assert_eq!(ensure_request_id(&mut h, &mut rng), "abc-123");
        let mut h = Headers::default();
        let id = ensure_request_id(&mut h, &mut rng);
        assert_eq!(id.len(), 32);
        assert_eq!(h.get_str("x-request-id"), Some(id.as_str()));
        for bad in ["", "has space", &"x".repeat(129)] {
            let mut h = Headers::default();
            h.push("X-Request-ID", bad);
            assert_ne!(ensure_request_id(&mut h, &mut rng), bad);
            assert_eq!(h.get_all("x-request-id").count(), 1);
        }
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = Headers::default();
        h.push("Cookie", "a=1; lbs_backend=deadbeef; b=2");
        assert_eq!(cookie(&h, "lbs_backend"), Some("deadbeef"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
