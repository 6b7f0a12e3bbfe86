//! # Lab 9 — hot reload: a value that changes whole, under readers that never wait
//!
//! A server that reloads its configuration has one hard requirement: a
//! request that started with one configuration finishes with it, and a
//! request that starts after the reload sees the new one, whole, never a
//! mix. Chapter 5's loop gets this from `lb::backends::Current`: each
//! request holds an `Arc` of the backend set it started with, and a
//! reload publishes a new `Arc`. Here you write the same idea as a small
//! general type, [`Swap`], and the tests put it under a real server.
//!
//! ## [`Swap<T>`]
//!
//! - [`Swap::new`] holds a first value, generation 1.
//! - [`Swap::load`] gives the value in use now, as an `Arc<T>`: the caller
//!   may keep it as long as it likes, across any number of publishes.
//! - [`Swap::load_with_generation`] gives the generation and the value
//!   *together*: the pair is always one that was published (never the
//!   generation of one value with another value).
//! - [`Swap::publish`] replaces the value, whole, and returns its
//!   generation: one more than the one before. Publishes may come from
//!   several threads at once; each gets its own generation.
//! - [`Swap::generation`] is the generation of the value in use now.
//!
//! A reader must never see the generation go backwards: once a thread has
//! seen generation N, it sees N or later. `T` needs no `Clone`.
//!
//! Hints: a `Mutex<(u64, Arc<T>)>` is a correct start (readers take the
//! lock only long enough to clone an `Arc`); an `AtomicU64` beside it lets
//! [`Swap::generation`] avoid the lock. Nothing may panic, and a poisoned
//! lock is not a reason to: take the value inside it.
//!
//! ## Where TLS would go
//!
//! The certificates are configuration too: a reload that rotates them
//! publishes a new TLS context the same way, and connections already
//! established keep the one they were accepted with. In `hot_reload_lb`
//! TLS termination would sit at the listener, in chapter 5's loop, before
//! the head is read (see chapter 10's text).
//!
//! ## Grading
//!
//! The tests check the rules above, with one thread publishing while
//! others read as fast as they can; then a real server answers each
//! request with the value it loaded, under keep-alive clients, while the
//! value is replaced a hundred times.

use std::sync::Arc;

/// A value replaced whole, read without waiting for a replacement.
#[derive(Debug)]
pub struct Swap<T> {
    // TODO: what a reader needs to find the value in use and its generation.
    _value: std::marker::PhantomData<T>,
}

impl<T> Swap<T> {
    /// A cell holding `value`, generation 1.
    pub fn new(value: T) -> Self {
        let _ = value;
        todo!("lab 9: hold the first value")
    }

    /// The value in use now.
    pub fn load(&self) -> Arc<T> {
        todo!("lab 9: the value in use")
    }

    /// The generation and the value in use now, as one pair.
    pub fn load_with_generation(&self) -> (u64, Arc<T>) {
        todo!("lab 9: the pair, consistent")
    }

    /// Replaces the value; returns its generation.
    pub fn publish(&self, value: T) -> u64 {
        let _ = value;
        todo!("lab 9: publish a new value")
    }

    /// The generation in use now.
    pub fn generation(&self) -> u64 {
        todo!("lab 9: the generation")
    }
}
