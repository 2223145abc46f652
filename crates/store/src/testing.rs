//! What the store's unit tests share: a database in a temporary directory, and messages
//! accepted into it.

use std::time::Duration;

use liaisond_model::{Arrival, Origin};

use crate::Store;

/// Where [`temp_store`] puts the database in its directory: under two missing directories,
/// which `open` creates.
pub(crate) const DATABASE: &str = "sub/dir/t.db";

/// A new store in a directory that lives as long as the returned guard.
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().expect("tempdir");
    let s = Store::open(&d.path().join(DATABASE), Duration::from_secs(1)).expect("open");
    (d, s)
}

/// `raw` as read from standard input: no Message-ID, no INTERNALDATE.
pub(crate) fn arrival(raw: &[u8]) -> Arrival {
    Arrival::new(raw.to_vec(), Origin::stdin())
}

/// Stores `arrival` and returns its message row.
pub(crate) fn accept(s: &mut Store, arrival: &Arrival) -> i64 {
    s.accept(arrival).expect("accept").id
}
