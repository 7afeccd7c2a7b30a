//! How many peers want a stream. Shared between the network loop, which
//! counts them, and a capture thread, which parks while the count is zero.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

#[derive(Debug, Default)]
pub struct Demand {
    wanted: AtomicUsize,
    /// [`Hold`]s: someone needs the stream briefly (a snapshot), not a peer.
    held: AtomicUsize,
    shutdown: AtomicBool,
    wake: (Mutex<()>, Condvar),
}

impl Demand {
    pub fn set(&self, n: usize) {
        if self.wanted.swap(n, Ordering::SeqCst) != n {
            self.notify();
        }
    }

    pub fn get(&self) -> usize {
        self.wanted.load(Ordering::SeqCst)
    }

    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.notify();
    }

    fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Wakes the stream until the returned hold is dropped, without
    /// counting as someone who wants it ([`get`](Self::get) stays as it is).
    pub fn hold(&self) -> Hold<'_> {
        self.held.fetch_add(1, Ordering::SeqCst);
        self.notify();
        Hold(self)
    }

    /// Blocks while nobody wants or holds the stream; false once shut down.
    pub fn wait(&self) -> bool {
        let mut guard = self.wake.0.lock().unwrap_or_else(|e| e.into_inner());
        while self.get() == 0 && self.held.load(Ordering::SeqCst) == 0 && !self.is_shut_down() {
            guard = self.wake.1.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        !self.is_shut_down()
    }

    fn notify(&self) {
        let _guard = self.wake.0.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.1.notify_all();
    }
}

/// See [`Demand::hold`].
pub struct Hold<'a>(&'a Demand);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_parked_thread_wakes_on_demand_and_on_shutdown() {
        let demand = Arc::new(Demand::default());
        let d = demand.clone();
        let waiter = std::thread::spawn(move || d.wait());
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "parks while nobody watches");
        demand.set(2);
        assert!(waiter.join().unwrap());
        demand.set(0);
        let d = demand.clone();
        let waiter = std::thread::spawn(move || d.wait());
        demand.shutdown();
        assert!(!waiter.join().unwrap());
    }

    #[test]
    fn a_hold_wakes_the_thread_without_counting_as_wanted() {
        let demand = Arc::new(Demand::default());
        let hold = demand.hold();
        assert!(demand.wait(), "held: no parking");
        assert_eq!(demand.get(), 0);
        drop(hold);
        let d = demand.clone();
        let waiter = std::thread::spawn(move || d.wait());
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "parks again once released");
        demand.shutdown();
        assert!(!waiter.join().unwrap());
    }
}
