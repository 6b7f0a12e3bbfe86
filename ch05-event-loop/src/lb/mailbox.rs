//! New settings for a part of the loop, posted by another thread.
//!
//! The loop owns its hooks (the pool, the limiter) as `&mut`: nothing else
//! may touch them while it runs. A reload (chapter 10) runs on another
//! thread, so it cannot change them in place. It posts the new settings
//! here instead, and the hook takes them the next time the loop calls it,
//! on the loop's own thread. Looking costs one atomic load, so the hook
//! can look on every call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

// ANCHOR: mailbox
/// A one-slot mailbox: a newer letter replaces an older one. Each loop's
/// hook reads it through its own [`Reader`] (with several workers, each
/// loop has its own pool, and every one must get the new settings).
#[derive(Debug)]
pub struct Mailbox<T> {
    /// Letters posted so far: a reader that has seen fewer has one to read.
    posted: AtomicU64,
    slot: Mutex<Option<T>>,
}

/// One reader's place in a [`Mailbox`]: how many letters it had seen.
#[derive(Debug)]
pub struct Reader<T> {
    mailbox: Arc<Mailbox<T>>,
    seen: u64,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self { posted: AtomicU64::new(0), slot: Mutex::new(None) }
    }
}

impl<T> Mailbox<T> {
    /// An empty mailbox, to share between the poster and the readers.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Posts `letter`, replacing the one before (only the newest settings
    /// matter).
    pub fn post(&self, letter: T) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        *slot = Some(letter);
        // Counted while the lock is held: a reader that sees the count
        // finds the letter.
        self.posted.fetch_add(1, Ordering::Release);
    }

    /// A reader that will read the letters posted from now on.
    pub fn reader(self: &Arc<Self>) -> Reader<T> {
        Reader { mailbox: Arc::clone(self), seen: self.posted.load(Ordering::Acquire) }
    }
}

impl<T: Clone> Reader<T> {
    /// The newest letter, if one was posted since this reader last read.
    /// One atomic load when there is none, so a hook can look on every call.
    pub fn take(&mut self) -> Option<T> {
        if self.mailbox.posted.load(Ordering::Acquire) == self.seen {
            return None;
        }
        let slot = self.mailbox.slot.lock().unwrap_or_else(PoisonError::into_inner);
        self.seen = self.mailbox.posted.load(Ordering::Acquire);
        slot.clone()
    }
}
// ANCHOR_END: mailbox

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_letter_wins_and_is_taken_once() {
        let mailbox = Mailbox::shared();
        let mut reader = mailbox.reader();
        assert_eq!(reader.take(), None);
        mailbox.post(1);
        mailbox.post(2);
        assert_eq!(reader.take(), Some(2));
        assert_eq!(reader.take(), None);
    }

    #[test]
    fn a_letter_crosses_threads() {
        let mailbox = Mailbox::shared();
        let mut reader = mailbox.reader();
        let poster = Arc::clone(&mailbox);
        std::thread::spawn(move || poster.post("limits")).join().unwrap();
        assert_eq!(reader.take(), Some("limits"));
    }

    #[test]
    fn every_reader_gets_each_letter_once_and_only_letters_after_it_came() {
        let mailbox = Mailbox::shared();
        let mut early = mailbox.reader();
        mailbox.post("a");
        let mut late = mailbox.reader();
        assert_eq!(late.take(), None, "a letter posted before the reader existed is not its");
        mailbox.post("b");
        assert_eq!(early.take(), Some("b"));
        assert_eq!(late.take(), Some("b"));
        assert_eq!((early.take(), late.take()), (None, None));
    }
}
