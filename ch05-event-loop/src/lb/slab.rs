//! A table of values addressed by small integers, reusing freed slots.
//!
//! The reactor keeps its connections and its probes in one each. A slot's
//! index is the connection's name everywhere: in the poller's tokens, in
//! the timers, in the line of requests waiting for a descriptor. So a slot
//! is *taken* while its connection is worked on (the rest of the reactor
//! stays free to borrow) and *put* back afterwards, and a freed slot is
//! reused by the next connection. An event or a timer that names a slot
//! holding nothing finds nothing and does nothing.

/// The table.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self { slots: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    /// Stores `value` in a free slot (or a new one) and returns its index.
    pub(crate) fn insert(&mut self, value: T) -> usize {
        match self.free.pop() {
            Some(i) if i < self.slots.len() => {
                self.put(i, value);
                i
            }
            _ => {
                self.slots.push(Some(value));
                self.slots.len() - 1
            }
        }
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    pub(crate) fn remove(&mut self, i: usize) -> Option<T> {
        let value = self.slots.get_mut(i).and_then(Option::take);
        if value.is_some() {
            self.free.push(i);
        }
        value
    }

    /// Takes a value out while it is worked on; its slot stays reserved
    /// until [`put`](Self::put) or [`release`](Self::release).
    pub(crate) fn take(&mut self, i: usize) -> Option<T> {
        self.slots.get_mut(i).and_then(Option::take)
    }

    pub(crate) fn put(&mut self, i: usize, value: T) {
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some(value);
        }
    }

    /// Frees a slot whose value was taken and will not come back.
    pub(crate) fn release(&mut self, i: usize) {
        if self.slots.get(i).is_some_and(Option::is_none) {
            self.free.push(i);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub(crate) fn indices(&self) -> Vec<usize> {
        self.slots.iter().enumerate().filter(|(_, v)| v.is_some()).map(|(i, _)| i).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_reuses_freed_slots() {
        let mut s = Slab::default();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None, "removing twice is harmless");
        assert_eq!(s.insert("c"), a);
        assert_eq!(s.len(), 2);
        assert_eq!(s.indices(), vec![a, b]);
    }
}
