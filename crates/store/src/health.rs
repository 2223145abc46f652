//! Looking at a database without changing it, for `liaisond doctor`: no file is created, no
//! migration runs, no setting is changed, and the write test is rolled back.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{SCHEMA_VERSION, StoreError, lock_path};

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `PRAGMA user_version`.
    pub schema_version: i64,
    /// The schema version this liaisond migrates to.
    pub schema_known: i64,
    /// What `PRAGMA quick_check` reported: `["ok"]` when the file is sound.
    pub quick_check: Vec<String>,
    /// Why a write transaction could not start, when it could not (`None`: writable).
    pub not_writable: Option<String>,
    /// The latest time written into the database (a message stored, an event), RFC 3339.
    pub newest_timestamp: Option<String>,
    pub messages: i64,
}

/// Opens the existing database at `path` read-write (without creating it) and checks it.
pub fn inspect(path: &Path, busy_timeout: Duration) -> Result<Health, StoreError> {
    let err = |source| StoreError::Sqlite { path: path.to_path_buf(), source };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(err)?;
    conn.busy_timeout(busy_timeout).map_err(err)?;
    let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
    let mut stmt = conn.prepare("PRAGMA quick_check(20)").map_err(err)?;
    let quick_check =
        stmt.query_map([], |r| r.get::<_, String>(0)).map_err(err)?.collect::<Result<Vec<_>, _>>().map_err(err)?;
    drop(stmt);
    // BEGIN IMMEDIATE takes the write lock (it needs a writable file, directory for the WAL
    // and shared-memory files, and no other writer beyond the busy timeout); nothing is written.
    let not_writable = match conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
        Ok(()) => None,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Some(e.to_string())
        }
    };
    let has_tables: bool = conn
        .query_row(
            "SELECT count(*) = 2 FROM sqlite_master WHERE type = 'table' AND name IN ('messages', 'events')",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    let (newest_timestamp, messages) = if has_tables {
        conn.query_row(
            // The two-argument max() is NULL when either is: an empty table counts as ''.
            "SELECT nullif(max(coalesce((SELECT max(received_at) FROM messages), ''),
                               coalesce((SELECT max(at) FROM events), '')), ''),
                    (SELECT count(*) FROM messages)",
            [],
            |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?)),
        )
        .map_err(err)?
    } else {
        (None, 0)
    };
    Ok(Health { schema_version, schema_known: SCHEMA_VERSION, quick_check, not_writable, newest_timestamp, messages })
}

/// Whether a process (a running daemon) holds the instance lock of `database`. Does not create
/// the lock file; holds the lock, when it gets it, only for the moment of the test.
pub fn daemon_holds_lock(database: &Path) -> std::io::Result<bool> {
    let lock = lock_path(database);
    let file = match std::fs::File::open(&lock) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(false),
        Err(std::fs::TryLockError::WouldBlock) => Ok(true),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

impl super::Store {
    /// Writes a consistent copy of the database to `dest` (which must not exist), while other
    /// connections go on writing: `VACUUM INTO` reads in one transaction, so the copy is the
    /// database as of one moment, compacted, without the WAL.
    pub fn backup_into(&self, dest: &Path) -> Result<(), StoreError> {
        // Created empty first, 0600 (VACUUM INTO fills an empty file): a copy of every message.
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dest)
                .map_err(|source| StoreError::File { path: dest.to_path_buf(), source })?;
        }
        let name = dest.to_str().ok_or_else(|| self.err(rusqlite::Error::InvalidPath(dest.to_path_buf())))?;
        let copied = self.conn.execute("VACUUM INTO ?1", rusqlite::params![name]).map(|_| ()).map_err(|e| self.err(e));
        if copied.is_err() {
            // Nothing half-written is left to pass for a backup (or to block the next one).
            let _ = std::fs::remove_file(dest);
        }
        copied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstanceLock, Store};

    #[test]
    fn a_sound_database_is_reported_and_left_as_it_was() {
        let d = tempfile::tempdir().expect("tempdir");
        let db = d.path().join("h.db");
        assert!(inspect(&db, Duration::from_secs(1)).is_err(), "no database is created");
        assert!(!db.exists());
        drop(Store::open(&db, Duration::from_secs(1)).expect("create"));
        let h = inspect(&db, Duration::from_secs(1)).expect("inspect");
        assert_eq!(h.schema_version, SCHEMA_VERSION);
        assert_eq!(h.quick_check, ["ok"]);
        assert_eq!(h.not_writable, None);
        assert!(h.newest_timestamp.is_some(), "the migration event");
        assert!(!daemon_holds_lock(&db).expect("lock"));
        let _held = InstanceLock::acquire(&db).expect("lock");
        assert!(daemon_holds_lock(&db).expect("lock"));
    }

    #[test]
    fn the_database_and_its_backup_are_private_to_their_owner() {
        // Regression (issue 13): both were created with the umask's mode (0644 usually), so
        // any local user could read every stored message.
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("tempdir");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        let db = d.path().join("p.db");
        let store = Store::open(&db, Duration::from_secs(1)).expect("create");
        assert_eq!(mode(&db), 0o600);
        let copy = d.path().join("copy.db");
        store.backup_into(&copy).expect("backup");
        assert_eq!(mode(&copy), 0o600);
        assert_eq!(inspect(&copy, Duration::from_secs(1)).expect("inspect").quick_check, ["ok"]);
    }

    #[test]
    fn a_database_another_writer_holds_is_not_writable_now() {
        let d = tempfile::tempdir().expect("tempdir");
        let db = d.path().join("w.db");
        drop(Store::open(&db, Duration::from_secs(1)).expect("create"));
        let blocker = Connection::open(&db).expect("open");
        blocker.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let h = inspect(&db, Duration::from_millis(100)).expect("inspect");
        assert!(h.not_writable.as_deref().is_some_and(|e| e.contains("locked")), "{h:?}");
    }
}
