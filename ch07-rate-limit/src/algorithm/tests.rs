//! The algorithms against each other, on an injected clock.

use super::trace::{Disagreement, Lcg, decide_all, workload};
use super::*;
use crate::clock::SECOND;
use crate::quota::Quota;

const MS: Nanos = 1_000_000;

fn quota(rate: f64, burst: u32) -> Quota {
    Quota::new(rate, burst).unwrap()
}

/// Runs `times` through `alg` from a fresh state: the verdicts.
fn verdicts<A: Algorithm>(alg: &A, times: &[Nanos]) -> Vec<Verdict> {
    decide_all(alg, times).into_iter().map(|d| d.verdict).collect()
}

fn allowed_count<A: Algorithm>(alg: &A, times: &[Nanos]) -> usize {
    decide_all(alg, times).iter().filter(|d| d.allowed()).count()
}

#[test]
fn every_algorithm_allows_the_burst_at_once_and_refuses_the_next() {
    let q = quota(1.0, 5);
    let at_once = [SECOND; 6];
    let expect = |v: &[Verdict], name: &str| {
        assert!(v.iter().take(5).all(|v| *v == Verdict::Allow), "{name}: {v:?}");
        assert!(matches!(v.get(5), Some(Verdict::Deny(_))), "{name}: {v:?}");
    };
    expect(&verdicts(&TokenBucket::new(q), &at_once), "token bucket");
    expect(&verdicts(&Gcra::new(q), &at_once), "gcra");
    expect(&verdicts(&LeakyBucket::nodelay(q), &at_once), "leaky");
    expect(&verdicts(&SlidingWindow::new(q), &at_once), "window");
    expect(&verdicts(&SlidingLog::new(q), &at_once), "log");
}

#[test]
fn the_wait_a_refusal_names_is_exact() {
    let q = quota(2.0, 3);
    fn check<A: Algorithm>(alg: A, step: Nanos) {
        let mut s = alg.fresh();
        let t0 = 10 * SECOND;
        for _ in 0..3 {
            assert!(alg.check(&mut s, t0).allowed());
        }
        let Verdict::Deny(wait) = alg.check(&mut s, t0).verdict else { panic!("{}: not refused", alg.name()) };
        // One step early is still too early; on time is allowed.
        let mut early = s.clone();
        assert!(!alg.check(&mut early, t0 + wait - step).allowed(), "{}: allowed before {wait}", alg.name());
        assert!(alg.check(&mut s, t0 + wait).allowed(), "{}: refused at {wait}", alg.name());
    }
    check(TokenBucket::new(q), 1);
    check(Gcra::new(q), 1);
    check(LeakyBucket::nodelay(q), MS);
    check(SlidingLog::new(q), 1);
    // Floating point: the window's wait may be a nanosecond long, never short.
    check(SlidingWindow::new(q), 1_000);
}

#[test]
fn the_token_bucket_refills_at_the_rate_and_caps_at_the_burst() {
    let alg = TokenBucket::new(quota(2.0, 4));
    let mut s = alg.fresh();
    for _ in 0..4 {
        assert!(alg.check(&mut s, 0).allowed());
    }
    assert!(!alg.check(&mut s, 0).allowed());
    // Half a second later: exactly one token back.
    assert!(alg.check(&mut s, SECOND / 2).allowed());
    assert!(!alg.check(&mut s, SECOND / 2).allowed());
    // An hour later: four, not 7,200.
    let later = 3600 * SECOND;
    assert_eq!((0..10).filter(|_| alg.check(&mut s, later).allowed()).count(), 4);
}

#[test]
fn gcra_decides_like_the_token_bucket() {
    // The same quota in one timestamp instead of two numbers.
    for q in [quota(1.0, 5), quota(10.0, 20), quota(0.5, 1), quota(100.0, 3)] {
        for (name, times) in workload(q.rate, 300.0) {
            let d =
                Disagreement::between(&decide_all(&Gcra::new(q), &times), &decide_all(&TokenBucket::new(q), &times));
            // Floating point may split a tie at the exact nanosecond; never more.
            assert!(d.percent() < 0.01, "{q} {name}: {d:?}");
        }
    }
}

#[test]
fn nginx_leaky_bucket_is_gcra_in_milliseconds() {
    for q in [quota(1.0, 5), quota(10.0, 20), quota(4.0, 1)] {
        let mut total = Disagreement::default();
        for (_, times) in workload(q.rate, 300.0) {
            total.add(Disagreement::between(
                &decide_all(&LeakyBucket::nodelay(q), &times),
                &decide_all(&Gcra::new(q), &times),
            ));
        }
        // Only the millisecond rounding differs.
        assert!(total.percent() < 1.0, "{q}: {total:?}");
    }
}

/// Each algorithm judged by the exact rule ("at most `burst` in any
/// window of `burst / rate`") applied to its own history.
fn error<A: Algorithm>(alg: &A, q: Quota, times: &[Nanos]) -> Disagreement {
    Disagreement::against_rule(times, &decide_all(alg, times), q.burst as usize, q.window())
}

#[test]
fn far_below_the_limit_every_algorithm_agrees_with_the_exact_rule() {
    for q in [quota(1.0, 10), quota(10.0, 100), quota(5.0, 5)] {
        let times = super::trace::poisson(3, q.rate * 0.25, 3600.0);
        for (name, d) in [
            ("window", error(&SlidingWindow::new(q), q, &times)),
            ("token", error(&TokenBucket::new(q), q, &times)),
            ("gcra", error(&Gcra::new(q), q, &times)),
            ("leaky", error(&LeakyBucket::nodelay(q), q, &times)),
            ("log", error(&SlidingLog::new(q), q, &times)),
        ] {
            assert!(d.percent() < 2.0, "{name} {q}: {d:?}");
        }
    }
}

#[test]
fn the_token_family_never_refuses_what_the_exact_rule_allows() {
    // Over any window of burst/rate, a bucket refills `burst` tokens: if
    // fewer than `burst` went through in it, a token is there. What they
    // get wrong is the other way: they allow up to twice the burst in a
    // window (a full bucket, then its refill), which the rule forbids.
    let q = quota(10.0, 20);
    for (name, times) in workload(q.rate, 600.0) {
        for (alg, d) in [("token", error(&TokenBucket::new(q), q, &times)), ("gcra", error(&Gcra::new(q), q, &times))] {
            assert!(d.wrongly_limited * 10_000 <= d.requests, "{alg} on {name}: {d:?}");
        }
        assert_eq!(
            error(&SlidingLog::new(q), q, &times),
            Disagreement { requests: times.len(), ..Disagreement::default() }
        );
    }
}

#[test]
fn no_algorithm_lets_through_more_than_its_quota_over_a_long_run() {
    // Over T seconds: at most burst + rate × T (the token bucket's bound;
    // the windowed ones are stricter).
    let q = quota(5.0, 10);
    for (name, times) in workload(q.rate * 4.0, 120.0) {
        let seconds = times.last().copied().unwrap_or(0) as f64 / 1e9;
        let bound = (f64::from(q.burst) + q.rate * seconds).ceil() as usize + 1;
        for (alg, n) in [
            ("token", allowed_count(&TokenBucket::new(q), &times)),
            ("gcra", allowed_count(&Gcra::new(q), &times)),
            ("leaky", allowed_count(&LeakyBucket::nodelay(q), &times)),
            ("window", allowed_count(&SlidingWindow::new(q), &times)),
            ("log", allowed_count(&SlidingLog::new(q), &times)),
        ] {
            assert!(n <= bound, "{alg} on {name}: {n} allowed, bound {bound}");
        }
    }
}

#[test]
fn delay_mode_holds_the_burst_and_refuses_beyond_it() {
    let q = quota(1.0, 5);
    let expected = [
        Verdict::Allow,
        Verdict::Delay(SECOND),
        Verdict::Delay(2 * SECOND),
        Verdict::Delay(3 * SECOND),
        Verdict::Delay(4 * SECOND),
    ];
    for v in [verdicts(&Gcra::delaying(q, 0), &[SECOND; 6]), verdicts(&LeakyBucket::delaying(q, 0), &[SECOND; 6])] {
        assert_eq!(v.get(..5), Some(&expected[..]), "{v:?}");
        assert!(matches!(v.get(5), Some(Verdict::Deny(_))), "{v:?}");
    }
    // nginx's delay=2: the first two extra pass at once, the rest wait.
    let v = verdicts(&Gcra::delaying(q, 2), &[SECOND; 5]);
    assert_eq!(v, [Verdict::Allow, Verdict::Allow, Verdict::Allow, Verdict::Delay(SECOND), Verdict::Delay(2 * SECOND)]);
}

#[test]
fn remaining_and_reset_describe_the_allowance() {
    let alg = Gcra::new(quota(1.0, 3));
    let mut s = alg.fresh();
    let d = alg.check(&mut s, 0);
    assert_eq!((d.remaining, d.reset), (2, SECOND));
    let d = alg.check(&mut s, 0);
    assert_eq!((d.remaining, d.reset), (1, 2 * SECOND));
    let d = alg.check(&mut s, 0);
    assert_eq!((d.remaining, d.reset), (0, 3 * SECOND));
    let d = alg.check(&mut s, 0);
    assert_eq!(d.verdict, Verdict::Deny(SECOND));
    let tb = TokenBucket::new(quota(1.0, 3));
    let mut t = tb.fresh();
    let d = tb.check(&mut t, 0);
    assert_eq!((d.remaining, d.reset), (2, SECOND));
}

#[test]
fn a_clock_that_goes_back_gives_nothing_away() {
    let q = quota(1.0, 2);
    fn check<A: Algorithm>(alg: A) {
        let mut s = alg.fresh();
        let t = 100 * SECOND;
        assert!(alg.check(&mut s, t).allowed());
        assert!(alg.check(&mut s, t).allowed());
        assert!(!alg.check(&mut s, t).allowed(), "{}", alg.name());
        for back in [t - 1, t / 2, 0] {
            assert!(!alg.check(&mut s, back).allowed(), "{}: allowed at {back} after {t}", alg.name());
        }
    }
    check(TokenBucket::new(q));
    check(Gcra::new(q));
    check(LeakyBucket::nodelay(q));
    check(SlidingLog::new(q));
    check(SlidingWindow::new(q));
}

/// A fresh-looking state must decide the future exactly as a new client's
/// would: the keyed table relies on it to forget keys without effect.
fn fresh_means_forgettable<A: Algorithm>(alg: A, seed: u64) {
    let mut rng = Lcg(seed);
    for _ in 0..300 {
        // Some history...
        let mut s = alg.fresh();
        let mut t = 0;
        for _ in 0..rng.below(30) {
            t += rng.below(2 * SECOND);
            alg.check(&mut s, t);
        }
        // ...then any later moment at which it claims to be fresh.
        let mut now = t;
        while !alg.is_fresh(&s, now) {
            now += rng.below(SECOND) + 1;
        }
        let (mut a, mut b) = (s.clone(), alg.fresh());
        let mut u = now;
        for _ in 0..40 {
            u += rng.below(SECOND / 2);
            assert_eq!(alg.check(&mut a, u).verdict, alg.check(&mut b, u).verdict, "{} after {s:?}", alg.name());
        }
    }
}

#[test]
fn a_fresh_state_decides_like_a_new_client() {
    let q = quota(3.0, 4);
    fresh_means_forgettable(TokenBucket::new(q), 1);
    fresh_means_forgettable(Gcra::new(q), 2);
    fresh_means_forgettable(LeakyBucket::nodelay(q), 3);
    fresh_means_forgettable(SlidingWindow::new(q), 4);
    fresh_means_forgettable(SlidingLog::new(q), 5);
}
