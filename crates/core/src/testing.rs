//! Helpers for the unit tests.

use std::time::Duration;

/// `work`'s result, or a failure naming `what` when it takes longer than `limit`. The time is
/// the channel's: the core's code reads no clock, its tests included (`clippy.toml`). The
/// thread of an overrun is left running; the test fails anyway.
pub fn within<T: Send + 'static>(limit: Duration, what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what}: not done within {limit:?}"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the work panicked"),
    }
}
