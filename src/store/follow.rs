//! Following statements through: closing and reopening them (by an operator, or when a reply
//! is seen), reminders, digests and check-ins.
//!
//! A statement is `open` until it is `done`; done records when, by whom, why, and the message
//! that answered it (when a reply closed it). Closing cancels the reminders still waiting in
//! the outbox, so none goes out after the statement is done.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, now_utc};

/// Closes statement `statement`: state `done`, who and why, the answering message, an event on
/// the statement's message, and its reminders still pending in the outbox cancelled. Returns
/// false, changing nothing, when it was done already (the first close is the one recorded).
pub(crate) fn close(
    tx: &Connection,
    statement: i64,
    by: &str,
    reason: &str,
    answer: Option<i64>,
    now: &str,
) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "UPDATE statements SET state = 'done', done_at = ?2, done_by = ?3, done_reason = ?4, done_message = ?5
         WHERE id = ?1 AND state = 'open'",
        params![statement, now, by, reason, answer],
    )?;
    if n == 0 {
        return Ok(false);
    }
    let cancelled = tx.execute(
        "UPDATE outbox SET state = 'cancelled', last_error = 'the statement was marked done'
         WHERE statement = ?1 AND kind = 'reminder' AND state = 'pending'",
        params![statement],
    )?;
    let mut detail = format!("by {by}: {reason}");
    if cancelled > 0 {
        detail.push_str(&format!(" ({cancelled} waiting reminder(s) cancelled)"));
    }
    statement_event(tx, statement, "statement_done", &detail, now)?;
    Ok(true)
}

/// Opens a done statement again (its reminders resume from the current step). Returns false
/// when it was open.
pub(crate) fn reopen(tx: &Connection, statement: i64, by: &str, now: &str) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "UPDATE statements SET state = 'open', done_at = NULL, done_by = NULL, done_reason = NULL,
         done_message = NULL WHERE id = ?1 AND state = 'done'",
        params![statement],
    )?;
    if n == 0 {
        return Ok(false);
    }
    statement_event(tx, statement, "statement_reopened", &format!("by {by}"), now)?;
    Ok(true)
}

/// An event in a statement's history (recorded on the message that brought it).
pub(crate) fn statement_event(
    tx: &Connection,
    statement: i64,
    kind: &str,
    detail: &str,
    now: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO events (at, message, kind, detail)
         SELECT ?2, message, ?3, ?4 FROM statements WHERE id = ?1",
        params![statement, now, kind, detail],
    )?;
    Ok(())
}

/// How changing a statement's state went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Changed,
    /// It was in that state already.
    Unchanged,
    NotFound,
}

impl Store {
    /// The statement's row id for a tracking ID (`LS-2026-0042`, any case) or a row number.
    pub fn statement_id(&self, reference: &str) -> Result<Option<i64>, StoreError> {
        let reference = reference.trim();
        let by_number = reference.parse::<i64>().ok();
        self.conn
            .query_row(
                "SELECT id FROM statements WHERE tracking_id = ?1 COLLATE NOCASE OR id = ?2",
                params![reference, by_number],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Marks a statement done (an operator's `statements done`).
    pub fn mark_done(&mut self, statement: i64, by: &str, reason: &str) -> Result<Change, StoreError> {
        self.immediately(|s| {
            if !exists(&s.conn, statement)? {
                return Ok(Change::NotFound);
            }
            Ok(if close(&s.conn, statement, by, reason, None, &now_utc())? {
                Change::Changed
            } else {
                Change::Unchanged
            })
        })
    }

    /// Opens a done statement again.
    pub fn reopen(&mut self, statement: i64, by: &str) -> Result<Change, StoreError> {
        self.immediately(|s| {
            if !exists(&s.conn, statement)? {
                return Ok(Change::NotFound);
            }
            Ok(if reopen(&s.conn, statement, by, &now_utc())? { Change::Changed } else { Change::Unchanged })
        })
    }
}

fn exists(tx: &Connection, statement: i64) -> rusqlite::Result<bool> {
    tx.prepare_cached("SELECT 1 FROM statements WHERE id = ?1")?.exists(params![statement])
}
