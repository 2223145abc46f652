//! The store, shared by the daemon's async tasks.

use std::sync::{Arc, Mutex};

use liaisond_store::{Store, StoreError};

/// A store shared by async tasks: every call runs on tokio's blocking pool, under a std
/// mutex that is never held across an `.await`.
#[derive(Clone, Debug)]
pub struct Db {
    inner: Arc<Mutex<Store>>,
}

impl Db {
    pub fn new(store: Store) -> Db {
        Db { inner: Arc::new(Mutex::new(store)) }
    }

    /// Runs `f` with the store on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let joined = tokio::task::spawn_blocking(move || {
            // A panic while holding the lock poisons it; the store's state is still the
            // database's (every change is transactional, and one the panic left open is
            // rolled back here), so it is safe to go on using it.
            let mut guard = inner.lock().unwrap_or_else(|poisoned| {
                let mut guard = poisoned.into_inner();
                guard.roll_back_unfinished();
                guard
            });
            f(&mut guard)
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
}
