//! New settings for a part of the loop, posted by another thread.
//!
//! The loop owns its hooks (the pool, the limiter) as `&mut`: nothing else
//! may touch them while it runs. A reload (chapter 10) runs on another
//! thread, so it cannot change them in place. It posts the new settings
//! here instead, and the hook takes them the next time the loop calls it,
//! on the loop's own thread. Looking costs one atomic load, so the hook
//! can look on every call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

// ANCHOR: mailbox
/// A one-slot mailbox: a newer letter replaces one not yet taken.
#[derive(Debug)]
pub struct Mailbox<T> {
    full: AtomicBool,
    slot: Mutex<Option<T>>,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self { full: AtomicBool::new(false), slot: Mutex::new(None) }
    }
}

impl<T> Mailbox<T> {
    /// An empty mailbox, to share between the poster and the taker.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Posts `letter`; one still waiting is replaced (only the newest
    /// settings matter).
    pub fn post(&self, letter: T) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        *slot = Some(letter);
        // Set while the lock is held: a taker that sees `full` finds the letter.
        self.full.store(true, Ordering::Release);
    }

    /// The letter, if one was posted since the last take.
    pub fn take(&self) -> Option<T> {
        if !self.full.load(Ordering::Acquire) {
            return None;
        }
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        self.full.store(false, Ordering::Release);
        slot.take()
    }
}
// ANCHOR_END: mailbox

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_letter_wins_and_is_taken_once() {
        let mailbox = Mailbox::shared();
        assert_eq!(mailbox.take(), None);
        mailbox.post(1);
        mailbox.post(2);
        assert_eq!(mailbox.take(), Some(2));
        assert_eq!(mailbox.take(), None);
    }

    #[test]
    fn a_letter_crosses_threads() {
        let mailbox = Mailbox::shared();
        let poster = Arc::clone(&mailbox);
        std::thread::spawn(move || poster.post("limits")).join().unwrap();
        assert_eq!(mailbox.take(), Some("limits"));
    }
}
