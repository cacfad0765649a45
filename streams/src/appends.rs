//! Readers in other threads (a job's kinesis source, a SubscribeToShard
//! pump) are woken when records of their stream become durable, so that
//! they need not poll: a row reaches its reader as soon as it is
//! acknowledged. Resharding and retention wake every reader, since a shard
//! may have ended.

use std::sync::{Arc, Mutex, Weak};

/// A reader's wake-up. The registry holds it weakly: dropping the last
/// `Arc` unregisters it.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// A registration: the stream's id and the reader's wake-up, held weakly.
type Waiter = (u64, Weak<dyn Fn() + Send + Sync>);

#[derive(Default)]
pub(crate) struct AppendWaiters {
    waiters: Mutex<Vec<Waiter>>,
}

impl AppendWaiters {
    pub(crate) fn register(&self, stream_id: u64, wake: &Wake) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        waiters.retain(|(_, waiter)| waiter.strong_count() > 0);
        waiters.push((stream_id, Arc::downgrade(wake)));
    }

    /// Wakes the readers of these streams (all of them for `None`).
    pub(crate) fn wake(&self, stream_ids: Option<&[u64]>) {
        // Called outside the lock, so a wake-up may itself register.
        let due: Vec<Wake> = {
            let waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            waiters
                .iter()
                .filter(|(id, _)| stream_ids.is_none_or(|ids| ids.contains(id)))
                .filter_map(|(_, waiter)| waiter.upgrade())
                .collect()
        };
        for wake in due {
            wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn wakes_the_readers_of_a_stream_until_they_are_dropped() {
        let waiters = AppendWaiters::default();
        let count = Arc::new(AtomicUsize::new(0));
        let wake: Wake = {
            let count = count.clone();
            Arc::new(move || {
                count.fetch_add(1, Ordering::Relaxed);
            })
        };
        waiters.register(7, &wake);
        waiters.wake(Some(&[3]));
        assert_eq!(count.load(Ordering::Relaxed), 0);
        waiters.wake(Some(&[3, 7]));
        waiters.wake(None);
        assert_eq!(count.load(Ordering::Relaxed), 2);
        drop(wake);
        waiters.wake(None);
        assert_eq!(count.load(Ordering::Relaxed), 2);
        assert!(
            waiters
                .waiters
                .lock()
                .unwrap()
                .iter()
                .all(|(_, w)| w.strong_count() == 0)
        );
    }
}
