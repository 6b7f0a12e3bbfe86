//! # Lab 8.2 — per-IP rate limiting, in bounded memory
//!
//! One bucket for everyone would let a single noisy client use up the
//! whole allowance and get everybody else refused. A balancer limits each
//! client on its own: a token bucket per client IP address. That raises
//! the question every keyed limiter must answer: the internet has billions
//! of addresses, and anyone can send from many of them. A map that grows
//! with every new address is a way to run the balancer out of memory.
//! So the map is bounded, and you decide what to forget, and what to do
//! when there is nothing you may forget.
//!
//! ## The rules
//!
//! - **A bucket per IP.** [`PerIpLimiter::check`] looks up the client's
//!   bucket and takes a token from it: [`Decision::Allowed`], or
//!   [`Decision::Limited`] with `retry_after`, the nanoseconds until the
//!   client's next token. Each bucket follows lab 5's rules exactly:
//!   `capacity` tokens (0 counts as 1), starts full, one token every
//!   `ceil(1_000_000_000 / refill_per_sec)` ns (at least 1), lazy refill
//!   capped at the capacity, a `now` earlier than the latest the *bucket*
//!   has seen counts as that latest one, and a rate that is not a finite
//!   number above 0 never refills (`retry_after` is then `Nanos::MAX`).
//!   A new IP gets a new, full bucket, so its first request is allowed.
//! - **Keys.** The key is the [`IpAddr`] as given: `127.0.0.1`, `::1` and
//!   `::ffff:127.0.0.1` are three different clients. (A real balancer
//!   would think harder: a dual-stack socket shows IPv4 clients as mapped
//!   IPv6 addresses, and one IPv6 user often holds a whole /64. The lab
//!   keeps it simple.)
//! - **Bounded memory.** The limiter never holds more than `max_clients`
//!   entries ([`PerIpLimiter::clients`]); `max_clients` 0 counts as 1.
//! - **What may be forgotten.** A bucket that is *full again* — it has
//!   had the time to refill completely since it was last used — is in
//!   the very state a new client's bucket starts in. Forgetting it loses
//!   nothing: if that client comes back, it gets a new full bucket, the
//!   same answer it would have had. A bucket is full again at `now` when
//!   its tokens at `now` are `capacity` (the exact instant counts).
//! - **When.** Entries are forgotten only when a *new* IP arrives and the
//!   map already holds `max_clients` entries: then *every* entry that is
//!   full again at `now` is removed (each counted in
//!   [`PerIpStats::forgotten`]). If that made room, the new client is
//!   admitted as usual.
//! - **No room.** If every entry is still refilling, the new client is
//!   *turned away*: `Limited`, with `retry_after` the nanoseconds until
//!   the soonest entry is full again (when there will be room), counted in
//!   [`PerIpStats::turned_away`] — and nothing is stored for it. Never
//!   evict a bucket that is still refilling to make room: the client it
//!   belongs to has been limited for a reason, and evicting it would hand
//!   it a full bucket the next time it asks. An attacker would only need
//!   to send from `max_clients` other addresses to wipe its own slate.
//! - **Counters.** [`PerIpStats::allowed`] and [`PerIpStats::limited`]
//!   count the answers: every call is exactly one of the two (a turned-away
//!   client is counted in `limited` *and* in `turned_away`).
//!
//! Hints. A `HashMap<IpAddr, _>` of small per-client states is enough;
//! keep the settings (capacity, one token's time) once in the limiter, not
//! in every entry. Scan the map for full buckets only when it is full:
//! that is the rare case, and `HashMap::retain` does it in one pass. You
//! will want your lab 5 bucket here — copy its logic into this file as a
//! private type rather than `use` lab 5's module: this lab is graded on
//! its own, and it needs two things lab 5's API does not say, whether a
//! bucket is full at `now` and when it will be.
//!
//! When your limiter passes, compare it with the chapter's, `crate::keyed`:
//! it keeps the same promise (a client being limited is never forgotten),
//! in a table allocated once instead of a map, and it chooses differently
//! when there is no room: rather than turning new clients away, it
//! charges them all to one shared allowance.
//!
//! Run it: `cargo test -p ch07-rate-limit --no-default-features lab_8_2`.

use std::net::IpAddr;

use crate::clock::Nanos;

/// What [`PerIpLimiter::check`] decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through: the client had a token.
    Allowed,
    /// Refuse it (with a 429).
    Limited {
        /// Nanoseconds until asking again can succeed: until the client's
        /// next token, or, for a client turned away, until there is room.
        retry_after: Nanos,
    },
}

/// The limiter's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerIpStats {
    /// Requests allowed.
    pub allowed: u64,
    /// Requests limited, the turned-away ones included.
    pub limited: u64,
    /// Entries forgotten because their bucket was full again.
    pub forgotten: u64,
    /// New clients refused because the map was full of refilling buckets.
    pub turned_away: u64,
}

/// A token bucket per client IP, for at most `max_clients` clients at once.
#[derive(Debug)]
pub struct PerIpLimiter {
    // TODO: your fields.
}

impl PerIpLimiter {
    /// A limiter giving each IP `capacity` tokens (0 counts as 1), refilled
    /// at `refill_per_sec` per second, and holding at most `max_clients`
    /// entries (0 counts as 1).
    pub fn new(capacity: u32, refill_per_sec: f64, max_clients: usize) -> Self {
        // TODO: clamp the settings; start with no clients.
        let _ = (capacity, refill_per_sec, max_clients);
        todo!("lab 8.2: create the limiter")
    }

    /// One request from `ip` at `now`: allowed, or limited.
    pub fn check(&mut self, ip: IpAddr, now: Nanos) -> Decision {
        // TODO: a known IP takes from its bucket. A new one needs room:
        // if the map is full, forget the full-again buckets; still full,
        // turn the client away.
        let _ = (ip, now);
        todo!("lab 8.2: allow or limit one request")
    }

    /// The entries held now.
    pub fn clients(&self) -> usize {
        todo!("lab 8.2: count the entries")
    }

    /// The counters.
    pub fn stats(&self) -> PerIpStats {
        todo!("lab 8.2: the counters")
    }
}
