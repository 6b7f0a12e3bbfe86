//! The pool's rules, driven with fake connections and an injected clock.

use std::cell::Cell;
use std::rc::Rc;

use super::*;

/// A fake connection: a name, and a liveness the test can change.
#[derive(Debug, Clone)]
struct Fake {
    name: u32,
    alive: Rc<Cell<Alive>>,
}

impl Fake {
    fn new(name: u32) -> Self {
        Self { name, alive: Rc::new(Cell::new(Alive::Yes)) }
    }
}

impl Liveness for Fake {
    fn liveness(&self) -> Alive {
        self.alive.get()
    }
}

fn pooled(conn: Fake) -> Pooled<Fake> {
    Pooled { conn, served: 1, promise: Promise::default() }
}

fn config() -> PoolConfig {
    PoolConfig { max_idle: 4, max_idle_total: 100, idle_timeout: Duration::from_secs(60), max_requests: 0 }
}

fn names(closed: &[Fake]) -> Vec<u32> {
    closed.iter().map(|f| f.name).collect()
}

#[test]
fn the_last_connection_put_back_is_the_first_taken() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    for n in 1..=3 {
        pool.put(0, pooled(Fake::new(n)), Ok(()), t0, &mut closed).unwrap();
    }
    let got: Vec<u32> = (0..3).map(|_| pool.get(0, t0, &mut closed).unwrap().conn.name).collect();
    assert_eq!(got, [3, 2, 1]);
    assert!(pool.get(0, t0, &mut closed).is_none());
    assert!(closed.is_empty());
    let s = pool.stats();
    assert_eq!((s.reused, s.idle, s.in_use), (3, 0, 0), "three returned, three taken: {s:?}");
}

#[test]
fn backends_have_their_own_connections() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    pool.put(2, pooled(Fake::new(20)), Ok(()), t0, &mut closed);
    assert!(pool.get(0, t0, &mut closed).is_none());
    assert!(pool.get(1, t0, &mut closed).is_none());
    assert_eq!(pool.get(2, t0, &mut closed).unwrap().conn.name, 20);
}

#[test]
fn a_connection_that_cannot_be_reused_is_closed_and_counted() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    assert!(pool.put(0, pooled(Fake::new(1)), Err("the backend said close"), t0, &mut closed).is_none());
    assert_eq!(names(&closed), [1]);
    assert_eq!(pool.stats().not_reusable, 1);
    assert_eq!(pool.idle_for(0), 0);
}

#[test]
fn a_full_backend_closes_its_oldest_to_keep_the_newest() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    for n in 1..=5 {
        pool.put(0, pooled(Fake::new(n)), Ok(()), t0 + Duration::from_millis(u64::from(n)), &mut closed);
    }
    assert_eq!(names(&closed), [1]);
    assert_eq!(pool.idle_for(0), 4);
    assert_eq!(pool.stats().evicted(Evicted::Lru), 1);
}

#[test]
fn the_global_cap_closes_the_least_recently_used_of_any_backend() {
    let cfg = PoolConfig { max_idle_total: 3, ..config() };
    let (mut pool, t0, mut closed) = (Pool::new(cfg), Instant::now(), Vec::new());
    let at = |ms| t0 + Duration::from_millis(ms);
    pool.put(0, pooled(Fake::new(1)), Ok(()), at(1), &mut closed);
    pool.put(1, pooled(Fake::new(2)), Ok(()), at(2), &mut closed);
    pool.put(1, pooled(Fake::new(3)), Ok(()), at(3), &mut closed);
    pool.put(2, pooled(Fake::new(4)), Ok(()), at(4), &mut closed);
    assert_eq!(names(&closed), [1], "backend 0's connection was the least recently used");
    pool.put(2, pooled(Fake::new(5)), Ok(()), at(5), &mut closed);
    assert_eq!(names(&closed), [1, 2]);
    assert_eq!(pool.stats().idle, 3);
}

#[test]
fn idle_connections_expire_after_the_idle_timeout() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    let (_, expires) = pool.put(0, pooled(Fake::new(1)), Ok(()), t0, &mut closed).unwrap();
    assert_eq!(expires, t0 + Duration::from_secs(60));
    assert_eq!(pool.expire(t0 + Duration::from_secs(59), &mut closed), Some(expires));
    assert!(closed.is_empty());
    assert_eq!(pool.expire(expires, &mut closed), None);
    assert_eq!(names(&closed), [1]);
    assert_eq!(pool.stats().evicted(Evicted::Ttl), 1);
}

#[test]
fn an_expired_connection_is_never_handed_out_even_before_the_timer_runs() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    pool.put(0, pooled(Fake::new(1)), Ok(()), t0, &mut closed);
    assert!(pool.get(0, t0 + Duration::from_secs(61), &mut closed).is_none());
    assert_eq!(pool.stats().evicted(Evicted::Ttl), 1);
}

#[test]
fn the_backends_keep_alive_timeout_is_honoured_just_before_it_runs_out() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    let promise = Promise { timeout: Some(Duration::from_secs(5)), max: None };
    let (_, expires) = pool.put(0, Pooled { conn: Fake::new(1), served: 1, promise }, Ok(()), t0, &mut closed).unwrap();
    assert_eq!(expires, t0 + Duration::from_secs(4), "one second before the backend's five");
    let short = Promise { timeout: Some(Duration::from_secs(1)), max: None };
    let (_, expires) =
        pool.put(0, Pooled { conn: Fake::new(2), served: 1, promise: short }, Ok(()), t0, &mut closed).unwrap();
    assert_eq!(expires, t0 + Duration::from_millis(750), "a quarter early for short promises");
    let none = Promise { timeout: Some(Duration::ZERO), max: None };
    assert!(pool.put(0, Pooled { conn: Fake::new(3), served: 1, promise: none }, Ok(()), t0, &mut closed).is_none());
}

#[test]
fn a_dead_connection_is_found_at_checkout_and_the_next_one_used() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    let (old, dead) = (Fake::new(1), Fake::new(2));
    pool.put(0, pooled(old), Ok(()), t0, &mut closed);
    pool.put(0, pooled(dead.clone()), Ok(()), t0, &mut closed);
    dead.alive.set(Alive::Closed);
    assert_eq!(pool.get(0, t0, &mut closed).unwrap().conn.name, 1);
    assert_eq!(names(&closed), [2]);
    assert_eq!(pool.stats().evicted(Evicted::StaleAtCheckout), 1);
}

#[test]
fn a_readable_idle_connection_is_evicted_but_a_late_report_is_ignored() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    let closing = Fake::new(1);
    let (id, _) = pool.put(0, pooled(closing.clone()), Ok(()), t0, &mut closed).unwrap();
    // A report for a connection that is fine (already replaced): nothing.
    pool.readable(id, &mut closed);
    assert!(closed.is_empty());
    closing.alive.set(Alive::Closed);
    pool.readable(id, &mut closed);
    assert_eq!(names(&closed), [1]);
    assert!(pool.get(0, t0, &mut closed).is_none());
    let chatty = Fake::new(2);
    let (id, _) = pool.put(0, pooled(chatty.clone()), Ok(()), t0, &mut closed).unwrap();
    chatty.alive.set(Alive::Data);
    pool.readable(id, &mut closed);
    let s = pool.stats();
    assert_eq!((s.evicted(Evicted::ClosedByPeer), s.evicted(Evicted::UnexpectedData), s.idle), (1, 1, 0));
    // An id nobody holds: nothing happens.
    pool.readable(99, &mut closed);
}

#[test]
fn a_connection_retires_after_max_requests() {
    let cfg = PoolConfig { max_requests: 3, ..config() };
    let (mut pool, t0, mut closed) = (Pool::new(cfg), Instant::now(), Vec::new());
    let tired = Pooled { conn: Fake::new(1), served: 3, promise: Promise::default() };
    assert!(pool.put(0, tired, Ok(()), t0, &mut closed).is_none());
    assert_eq!(pool.stats().evicted(Evicted::MaxRequests), 1);
    let fresh = Pooled { conn: Fake::new(2), served: 2, promise: Promise::default() };
    assert!(pool.put(0, fresh, Ok(()), t0, &mut closed).is_some());
}

#[test]
fn a_backend_marked_down_loses_its_idle_connections() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    pool.put(0, pooled(Fake::new(1)), Ok(()), t0, &mut closed);
    pool.put(0, pooled(Fake::new(2)), Ok(()), t0, &mut closed);
    pool.put(1, pooled(Fake::new(3)), Ok(()), t0, &mut closed);
    pool.close_backend(0, &mut closed);
    assert_eq!(names(&closed), [1, 2]);
    assert_eq!((pool.idle_for(0), pool.idle_for(1)), (0, 1));
    assert_eq!(pool.stats().evicted(Evicted::Unhealthy), 2);
}

#[test]
fn hit_rate_and_in_use_follow_checkouts() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    pool.opened(0);
    let s = pool.stats();
    assert_eq!((s.created, s.in_use, s.total()), (1, 1, 1));
    pool.put(0, pooled(Fake::new(1)), Ok(()), t0, &mut closed);
    for _ in 0..3 {
        let c = pool.get(0, t0, &mut closed).unwrap();
        assert_eq!(pool.stats().in_use, 1);
        pool.put(0, c, Ok(()), t0, &mut closed);
    }
    let s = pool.stats();
    assert_eq!((s.created, s.reused, s.idle, s.in_use), (1, 3, 1, 0));
    assert!((s.hit_rate() - 0.75).abs() < 1e-9);
    assert!(s.report().contains("hit rate 75.00 %"), "{}", s.report());
}

#[test]
fn freed_ids_are_reused_and_never_confused() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    let (a, _) = pool.put(0, pooled(Fake::new(1)), Ok(()), t0, &mut closed).unwrap();
    let taken = pool.get(0, t0, &mut closed).unwrap();
    let (b, _) = pool.put(1, pooled(Fake::new(2)), Ok(()), t0, &mut closed).unwrap();
    assert_eq!(a, b, "the freed id is reused");
    assert_eq!(pool.conn(b).unwrap().name, 2);
    drop(taken);
    assert_eq!(pool.idle_for(0), 0);
    assert_eq!(pool.idle_for(1), 1);
}

#[test]
fn an_idle_connection_costs_the_pool_about_a_hundred_bytes() {
    // The entry (the socket, its counters and clocks), one slot in its
    // backend's stack and, in the loop, one uplink slot: what the chapter
    // quotes as the pool's cost per idle connection, besides the kernel's
    // socket.
    let entry = std::mem::size_of::<Option<Entry<ch05_event_loop::lb::reuse::Socket>>>();
    let stack_slot = std::mem::size_of::<usize>();
    assert!((64..=160).contains(&(entry + stack_slot)), "entry {entry} + stack slot {stack_slot} bytes");
}

#[test]
fn settings_posted_by_another_thread_apply_at_the_next_call() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    for n in 1..=4 {
        pool.put(0, pooled(Fake::new(n)), Ok(()), t0 + Duration::from_millis(u64::from(n)), &mut closed);
    }
    pool.put(1, pooled(Fake::new(10)), Ok(()), t0 + Duration::from_millis(5), &mut closed);
    let retuner = pool.retuner();
    let smaller = PoolConfig { max_idle: 2, max_idle_total: 2, idle_timeout: Duration::from_secs(5), ..config() };
    std::thread::scope(|s| {
        s.spawn(|| retuner.post(smaller));
    });
    // Nothing changes until the loop calls the pool.
    assert_eq!(pool.idle_for(0), 4);
    assert_eq!(pool.config().max_idle, 4);
    let next = pool.expire(t0 + Duration::from_millis(10), &mut closed);
    // Backend 0 keeps its two newest; then the total of 2 closes the least
    // recently used of the three left (backend 0's older one, put back at 3 ms).
    assert_eq!(names(&closed), [1, 2, 3]);
    assert_eq!((pool.idle_for(0), pool.idle_for(1)), (1, 1));
    assert_eq!(pool.config(), &smaller);
    assert_eq!(pool.stats().evicted(Evicted::Lru), 3);
    // Connections already idle keep the deadline they were given (60 s)…
    assert_eq!(next, Some(t0 + Duration::from_millis(4) + Duration::from_secs(60)));
    // …and one put back now gets the new one.
    closed.clear();
    let now = t0 + Duration::from_secs(1);
    pool.get(1, now, &mut closed).unwrap();
    let (_, expires) = pool.put(1, pooled(Fake::new(11)), Ok(()), now, &mut closed).unwrap();
    assert_eq!(expires, now + Duration::from_secs(5));
    assert!(closed.is_empty());
}

#[test]
fn a_pool_retuned_to_keep_nothing_closes_every_idle_connection() {
    let (mut pool, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    for n in 1..=3 {
        pool.put(usize::try_from(n).unwrap(), pooled(Fake::new(n)), Ok(()), t0, &mut closed);
    }
    pool.retuner().post(PoolConfig { max_idle: 0, ..config() });
    assert!(pool.get(1, t0, &mut closed).is_none());
    assert_eq!(closed.len(), 3);
    assert!(pool.put(1, pooled(Fake::new(9)), Ok(()), t0, &mut closed).is_none(), "max_idle 0 keeps nothing");
}

#[test]
fn pools_beside_each_other_share_counters_and_settings_but_not_connections() {
    let (mut first, t0, mut closed) = (Pool::new(config()), Instant::now(), Vec::new());
    let mut second = Pool::beside(&mut first);
    first.put(1, pooled(Fake::new(1)), Ok(()), t0, &mut closed);
    second.put(1, pooled(Fake::new(2)), Ok(()), t0, &mut closed);
    assert_eq!(first.stats().idle, 2, "one set of counters for both loops");
    // Each keeps its own: a connection is watched by its own loop's poller.
    assert_eq!(first.get(1, t0, &mut closed).map(|p| p.conn.name), Some(1));
    assert_eq!(second.stats().idle, 1);
    // One post reaches both.
    first.retuner().post(PoolConfig { max_idle: 0, ..config() });
    assert!(second.get(2, t0, &mut closed).is_none());
    assert_eq!(names(&closed), [2]);
    assert!(first.put(1, pooled(Fake::new(3)), Ok(()), t0, &mut closed).is_none(), "max_idle 0 keeps nothing");
    assert_eq!(first.stats().idle, 0);
}
