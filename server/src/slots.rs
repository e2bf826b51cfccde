//! Query slots: a pool for the whole server, and a cap per caller so that one caller (one user,
//! one token, or one address when auth is off) can never hold them all.
//!
//! A query takes its caller's slot first, then one of the server's: a caller at its cap waits
//! without taking a server slot from anyone. Both waits together are bounded by one deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::identity::Caller;

/// Which limit kept a query from starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The caller already ran as many queries as one caller may (`--max-queries-per-user`).
    Caller,
    /// Every slot of the server stayed taken (`--max-concurrent-queries`).
    Server,
    /// The server is shutting down.
    Closed,
}

/// The slots queries run in; shared by every call of a server.
#[derive(Debug)]
pub struct Slots {
    server: Arc<Semaphore>,
    /// `None` when the per-caller cap is no tighter than the server's pool.
    per_caller: Option<usize>,
    held: Mutex<HashMap<Caller, usize>>,
    freed: Notify,
}

/// A running query's place; dropping it frees both its caller's slot and the server's.
#[derive(Debug)]
pub struct Slot {
    _server: OwnedSemaphorePermit,
    _caller: Option<CallerSlot>,
}

#[derive(Debug)]
struct CallerSlot {
    slots: Arc<Slots>,
    caller: Caller,
}

impl Drop for CallerSlot {
    fn drop(&mut self) {
        let mut held = self.slots.lock();
        if let Some(n) = held.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.caller);
            }
        }
        drop(held);
        self.slots.freed.notify_waiters();
    }
}

impl Slots {
    /// `server` slots in all, at most `per_caller` of them for one caller (both at least 1).
    pub fn new(server: usize, per_caller: usize) -> Arc<Self> {
        let server = server.max(1);
        let per_caller = per_caller.max(1);
        Arc::new(Self {
            server: Arc::new(Semaphore::new(server)),
            per_caller: (per_caller < server).then_some(per_caller),
            held: Mutex::default(),
            freed: Notify::new(),
        })
    }

    /// Waits until `deadline` for a slot of `caller`, then for one of the server's.
    pub async fn acquire(
        self: &Arc<Self>,
        caller: &Caller,
        deadline: Instant,
    ) -> Result<Slot, Full> {
        let mine = match self.per_caller {
            Some(cap) => {
                let slot = self.caller_slot(caller, cap);
                Some(tokio::time::timeout_at(deadline, slot).await.map_err(|_| Full::Caller)?)
            }
            None => None,
        };
        let server = tokio::time::timeout_at(deadline, self.server.clone().acquire_owned())
            .await
            .map_err(|_| Full::Server)?
            .map_err(|_| Full::Closed)?;
        Ok(Slot { _server: server, _caller: mine })
    }

    /// How many slots `caller` holds now.
    pub fn held_by(&self, caller: &Caller) -> usize {
        self.lock().get(caller).copied().unwrap_or(0)
    }

    async fn caller_slot(self: &Arc<Self>, caller: &Caller, cap: usize) -> CallerSlot {
        loop {
            // Registered before looking, so that a slot freed in between still wakes us.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_take(caller, cap) {
                return CallerSlot { slots: Arc::clone(self), caller: caller.clone() };
            }
            freed.await;
        }
    }

    fn try_take(&self, caller: &Caller, cap: usize) -> bool {
        let mut held = self.lock();
        let n = held.entry(caller.clone()).or_insert(0);
        if *n < cap {
            *n += 1;
            true
        } else {
            false
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Caller, usize>> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn user(name: &str) -> Caller {
        Caller::User(name.into())
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(50)
    }

    #[tokio::test]
    async fn a_caller_at_its_cap_waits_while_others_still_get_slots() {
        let slots = Slots::new(4, 2);
        let a1 = slots.acquire(&user("a"), soon()).await.unwrap();
        let _a2 = slots.acquire(&user("a"), soon()).await.unwrap();
        assert_eq!(slots.acquire(&user("a"), soon()).await.unwrap_err(), Full::Caller);
        let _b = slots.acquire(&user("b"), soon()).await.unwrap();
        assert_eq!(slots.held_by(&user("a")), 2);
        drop(a1);
        assert_eq!(slots.held_by(&user("a")), 1);
        let _a3 = slots.acquire(&user("a"), soon()).await.unwrap();
        let _c = slots.acquire(&user("c"), soon()).await.unwrap();
        assert_eq!(slots.acquire(&user("d"), soon()).await.unwrap_err(), Full::Server);
    }

    #[tokio::test]
    async fn a_waiting_caller_gets_the_slot_its_own_query_frees() {
        let slots = Slots::new(2, 1);
        let held = slots.acquire(&user("a"), soon()).await.unwrap();
        let waiting = {
            let slots = Arc::clone(&slots);
            let deadline = Instant::now() + Duration::from_secs(30);
            tokio::spawn(async move { slots.acquire(&user("a"), deadline).await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(held);
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!(slots.held_by(&user("a")), 0, "a released caller leaves no entry behind");
    }

    #[tokio::test]
    async fn a_cap_as_large_as_the_pool_is_the_pools_limit() {
        let slots = Slots::new(1, 1);
        let _a = slots.acquire(&user("a"), soon()).await.unwrap();
        assert_eq!(slots.acquire(&user("a"), soon()).await.unwrap_err(), Full::Server);
    }
}
