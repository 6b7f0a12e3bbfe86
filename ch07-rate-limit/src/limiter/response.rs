//! What a refused client is told: 429, `Retry-After`, and the IETF
//! `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers).

use crate::clock::{Nanos, SECOND, whole_seconds_up};
use crate::quota::Quota;

// ANCHOR: policy_field
/// One policy as the `RateLimit-Policy` field lists it: a quoted name,
/// `q` the quota (requests at once: the burst) and `w` the window in
/// seconds over which the quota refills (`burst / rate`, rounded up).
pub fn policy_item(name: &str, quota: &Quota) -> String {
    let window = quota.window().div_ceil(SECOND).max(1);
    format!("{};q={};w={window}", quoted(name), quota.burst)
}

/// The `RateLimit` field for the policy that refused: nothing remains,
/// and the reset is the same moment `Retry-After` names, as the draft asks.
pub fn limit_item(name: &str, remaining: u32, reset_secs: u64) -> String {
    format!("{};r={remaining};t={reset_secs}", quoted(name))
}
// ANCHOR_END: policy_field

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1 (a
/// refused request was refused because the wait is not zero).
pub fn retry_after_secs(wait: Nanos) -> u64 {
    whole_seconds_up(wait).max(1)
}

/// A structured-field string: in quotes, with `"` and `\` escaped, and
/// anything outside printable ASCII left out.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_the_draft() {
        let q = Quota::new(1.0, 5).unwrap();
        assert_eq!(policy_item("client", &q), "\"client\";q=5;w=5");
        assert_eq!(policy_item("route /api", &Quota::new(10.0, 5).unwrap()), "\"route /api\";q=5;w=1");
        assert_eq!(limit_item("client", 0, 2), "\"client\";r=0;t=2");
        assert_eq!(quoted("a\"b\\c\u{e9}"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn retry_after_is_rounded_up_and_never_zero() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(SECOND), 1);
        assert_eq!(retry_after_secs(SECOND + 1), 2);
        assert_eq!(retry_after_secs(0), 1);
    }
}
