//! Following statements through: closing and reopening them (by an operator, or when a reply
//! is seen), reminders, digests and check-ins.
//!
//! A statement is `open` until it is `done`; done records when, by whom, why, and the message
//! that answered it (when a reply closed it). Closing cancels the reminders still waiting in
//! the outbox, so none goes out after the statement is done.

use liaisond_model::{DatatrackerRecord, Draft, FollowRow, QuarantinedRow};
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
    let cancelled = cancel_pending_reminders(tx, statement, "the statement was marked done")?;
    let mut detail = format!("by {by}: {reason}");
    if cancelled > 0 {
        detail.push_str(&format!(" ({cancelled} waiting reminder(s) cancelled)"));
    }
    statement_event(tx, statement, "statement_done", &detail, now)?;
    Ok(true)
}

/// Cancels the statement's reminders still waiting in the outbox (it was closed, or its
/// deadline, purpose or handler changed, so what they say or whom they go to is stale), and
/// forgets that they were decided, so the scheduler decides the current step again with what
/// holds now. Returns how many were cancelled.
pub(crate) fn cancel_pending_reminders(tx: &Connection, statement: i64, why: &str) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM reminders WHERE statement = ?1 AND outbox IN
         (SELECT id FROM outbox WHERE statement = ?1 AND kind = 'reminder' AND state = 'pending')",
        params![statement],
    )?;
    tx.execute(
        "UPDATE outbox SET state = 'cancelled', last_error = ?2
         WHERE statement = ?1 AND kind = 'reminder' AND state = 'pending'",
        params![statement, why],
    )
}

/// The reminder that a statement is not yet recorded in the datatracker, as the reminders
/// table knows it: no deadline, this step. One per statement, ever.
pub const RECORD_STEP: &str = "record";

/// Whether a record may replace another one a statement has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// A person's `Recorded:` says which one is right.
    Always,
    /// A notice matched by title may be of another statement with the same title: it records
    /// only a statement without a record, and the difference is an event.
    Never,
}

/// Stores a statement's record in the datatracker (`how`: where it was learnt), with an event,
/// and cancels its waiting "not recorded" reminder. Returns false, changing nothing, when it
/// had that record already (or another, with [`Replace::Never`]).
pub(crate) fn record_in_datatracker(
    tx: &Connection,
    statement: i64,
    record: &DatatrackerRecord,
    how: &str,
    replace: Replace,
    now: &str,
) -> rusqlite::Result<bool> {
    let old: Option<Option<String>> = tx
        .query_row("SELECT datatracker_url FROM statements WHERE id = ?1", params![statement], |r| r.get(0))
        .optional()?;
    let Some(old) = old else { return Ok(false) };
    if old.as_deref() == Some(record.url.as_str()) {
        return Ok(false);
    }
    if let (Some(old), Replace::Never) = (&old, replace) {
        let detail = format!("{} {how}, but it is recorded as {old} already: kept", record.url);
        statement_event(tx, statement, "datatracker_record_differs", &detail, now)?;
        return Ok(false);
    }
    tx.execute(
        "UPDATE statements SET datatracker_url = ?2, datatracker_number = ?3, recorded_at = ?4 WHERE id = ?1",
        params![statement, record.url, record.number, now],
    )?;
    tx.execute(
        "DELETE FROM reminders WHERE statement = ?1 AND step = ?2 AND outbox IN
         (SELECT id FROM outbox WHERE statement = ?1 AND kind = 'reminder' AND state = 'pending')",
        params![statement, RECORD_STEP],
    )?;
    tx.execute(
        "UPDATE outbox SET state = 'cancelled', last_error = 'the statement was recorded in the datatracker'
         WHERE statement = ?1 AND kind = 'reminder' AND state = 'pending' AND id NOT IN
         (SELECT outbox FROM reminders WHERE statement = ?1 AND outbox IS NOT NULL)",
        params![statement],
    )?;
    let was = old.map(|u| format!(" (was {u})")).unwrap_or_default();
    statement_event(tx, statement, "datatracker_recorded", &format!("{}{was}: {how}", record.url), now)?;
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

/// Records a manager's answer to a check-in request (message `message`) as the check-in of
/// `on_date`, the answer's text its note, and marks the request answered. Returns false,
/// changing nothing, when that request was answered already (a second reply is a follow-up).
pub(crate) fn record_check_in_answer(
    tx: &Connection,
    answer: &liaisond_model::CheckInAnswer,
    message: i64,
    on_date: &str,
    now: &str,
) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "UPDATE check_in_requests SET answered_at = ?2, answer_message = ?3 WHERE id = ?1 AND answered_at IS NULL",
        params![answer.request, now, message],
    )?;
    if n == 0 {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO check_ins (manager, on_date, recorded_at, note) VALUES (?1, ?2, ?3, ?4)",
        params![answer.manager, on_date, now, answer.report],
    )?;
    tx.execute(
        "INSERT INTO events (at, message, kind, detail) VALUES (?1, ?2, 'check_in', ?3)",
        params![now, message, format!("{} on {on_date}, by mail (message {message})", answer.manager)],
    )?;
    Ok(true)
}

/// Records a reminder as decided (once per statement, deadline and step: false, changing
/// nothing, when it was already) and queues its mail about `message`.
fn decide_reminder(tx: &Connection, message: i64, r: &ReminderToQueue<'_>, now: &str) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "INSERT OR IGNORE INTO reminders (statement, deadline, step, due_on, decided_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![r.statement, r.deadline, r.step, r.due_on, now],
    )?;
    if n == 0 {
        return Ok(false);
    }
    let outbox = super::outbox::insert_draft(tx, Some(message), Some(r.statement), r.draft, now)?;
    tx.execute(
        "UPDATE reminders SET outbox = ?4 WHERE statement = ?1 AND deadline = ?2 AND step = ?3",
        params![r.statement, r.deadline, r.step, outbox],
    )?;
    Ok(true)
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
                "SELECT id FROM statements WHERE tracking_id = upper(?1) OR id = ?2",
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

/// A reminder decided: for which deadline and step, due on which day, and its outbox item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReminderRecord {
    pub deadline: String,
    pub step: String,
    pub due_on: String,
    pub outbox: Option<i64>,
}

/// A reminder to queue: the statement, the deadline and step it is for (its identity), and
/// the mail.
#[derive(Debug, Clone)]
pub struct ReminderToQueue<'a> {
    pub statement: i64,
    pub deadline: &'a str,
    pub step: &'a str,
    pub due_on: &'a str,
    pub draft: &'a Draft,
}

impl Store {
    /// Open statements, oldest first.
    pub fn open_statements(&self) -> Result<Vec<FollowRow>, StoreError> {
        self.follow_rows("s.state = 'open'", &[])
    }

    /// Open incoming statements that owe a reply by a deadline (a purpose other than
    /// information or response, and a deadline): the ones reminders are for. An outgoing
    /// statement's deadline is the other body's: nobody here is reminded of it. The scheduler asks every minute,
    /// so the filter is in SQL, on the `(state, deadline)` index.
    pub fn statements_owing_reply(&self) -> Result<Vec<FollowRow>, StoreError> {
        self.follow_rows(
            "s.state = 'open' AND s.direction = 'incoming' AND s.deadline IS NOT NULL
             AND COALESCE(s.purpose, '') NOT IN ('information', 'response')",
            &[],
        )
    }

    /// Statements owed a record in the datatracker and recorded here before `before` without
    /// one yet, oldest first; with `open_only`, only open ones (the reminder and the digest:
    /// a statement closed is not pressed for; `statements list --unrecorded` shows all).
    pub fn statements_unrecorded(&self, before: &str, open_only: bool) -> Result<Vec<FollowRow>, StoreError> {
        let open = if open_only { " AND s.state = 'open'" } else { "" };
        self.follow_rows(
            &format!("s.record_expected = 1 AND s.datatracker_url IS NULL AND s.created_at < ?1{open}"),
            &[&before],
        )
    }

    /// Queues the one "not recorded in the datatracker" reminder of a statement, unless it had
    /// it already or is no longer open and unrecorded. Returns whether it was queued.
    pub fn queue_record_reminder(&mut self, statement: i64, due_on: &str, draft: &Draft) -> Result<bool, StoreError> {
        self.immediately(|s| {
            let tx = &s.conn;
            let now = now_utc();
            let message: Option<i64> = tx
                .query_row(
                    "SELECT message FROM statements WHERE id = ?1 AND state = 'open' AND datatracker_url IS NULL",
                    params![statement],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(message) = message else { return Ok(false) };
            let r = ReminderToQueue { statement, deadline: "", step: RECORD_STEP, due_on, draft };
            decide_reminder(tx, message, &r, &now)
        })
    }

    /// The statements of these relationships (datatracker acronyms) recorded at or after
    /// `since`, oldest first: a manager's check-in summary.
    pub fn statements_of_relationships(&self, acronyms: &[String], since: &str) -> Result<Vec<FollowRow>, StoreError> {
        let list = serde_json::to_string(acronyms).unwrap_or_else(|_| "[]".into());
        self.follow_rows("s.relationship IN (SELECT value FROM json_each(?1)) AND s.created_at >= ?2", &[&list, &since])
    }

    /// Queues the yearly check-in request to `manager` (sent on `today`, `YYYY-MM-DD`), unless
    /// one went out within a year before `today`. One IMMEDIATE transaction: the request, the
    /// outbox item and an event. Returns whether it was queued.
    pub fn queue_check_in(&mut self, manager: &str, today: &str, draft: &Draft) -> Result<bool, StoreError> {
        self.immediately(|s| {
            let tx = &s.conn;
            let recent = tx
                .prepare_cached("SELECT 1 FROM check_in_requests WHERE manager = ?1 AND sent_on > date(?2, '-1 year')")?
                .exists(params![manager, today])?;
            if recent {
                return Ok(false);
            }
            let now = now_utc();
            let Some(outbox) = super::outbox::insert_draft(tx, None, None, draft, &now)? else { return Ok(false) };
            tx.execute(
                "INSERT INTO check_in_requests (manager, sent_on, outbox, decided_at) VALUES (?1, ?2, ?3, ?4)",
                params![manager, today, outbox, now],
            )?;
            tx.execute(
                "INSERT INTO events (at, message, kind, detail) VALUES (?1, NULL, 'check_in_requested', ?2)",
                params![now, format!("{manager}: the yearly check-in request queued (outbox {outbox})")],
            )?;
            Ok(true)
        })
    }

    /// Check-in requests not answered yet, the latest per manager: address → the day sent.
    pub fn check_ins_asked(&self) -> Result<std::collections::HashMap<String, String>, StoreError> {
        Ok(self
            .rows(
                "SELECT manager, MAX(sent_on) FROM check_in_requests WHERE answered_at IS NULL GROUP BY manager",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .collect())
    }

    /// Statements recorded at or after `since`, oldest first.
    pub fn statements_since(&self, since: &str) -> Result<Vec<FollowRow>, StoreError> {
        self.follow_rows("s.created_at >= ?1", &[&since])
    }

    fn follow_rows(&self, condition: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<FollowRow>, StoreError> {
        let sql = format!(
            "SELECT s.id, s.tracking_id, s.message, s.title, COALESCE(s.organization, s.from_org), s.purpose,
             s.deadline, COALESCE(m.internal_date, m.received_at), s.created_at, s.state, s.route_to,
             s.assigned_to, m.message_id, json_extract(r.statement, '$.reply_to'), s.datatracker_url, s.direction,
             s.done_at
             FROM statements s JOIN messages m ON m.id = s.message LEFT JOIN readings r ON r.message = s.message
             WHERE {condition} ORDER BY s.id"
        );
        self.rows(&sql, args, |r| {
            let route_to: String = r.get(10)?;
            let reply_to: Option<String> = r.get(13)?;
            Ok(FollowRow {
                id: r.get(0)?,
                tracking_id: r.get(1)?,
                message: r.get(2)?,
                title: r.get(3)?,
                organization: r.get(4)?,
                purpose: r.get(5)?,
                deadline: r.get(6)?,
                received: r.get(7)?,
                created_at: r.get(8)?,
                state: r.get(9)?,
                route_to: serde_json::from_str(&route_to).unwrap_or_default(),
                assigned_to: r.get(11)?,
                message_id: r.get(12)?,
                reply_to: reply_to.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default(),
                datatracker_url: r.get(14)?,
                outgoing: r.get::<_, String>(15)? == "outgoing",
                done_at: r.get(16)?,
            })
        })
    }

    /// Queues a reminder unless this statement already had one for this deadline and step, or
    /// is no longer open with that deadline (marked done, or given another deadline, since the
    /// scheduler looked). One IMMEDIATE transaction: the reminder row, the outbox item and an
    /// event. Returns whether it was queued.
    pub fn queue_reminder(&mut self, r: &ReminderToQueue<'_>) -> Result<bool, StoreError> {
        self.immediately(|s| {
            let tx = &s.conn;
            let now = now_utc();
            let message: Option<i64> = tx
                .query_row(
                    "SELECT message FROM statements WHERE id = ?1 AND state = 'open' AND deadline = ?2",
                    params![r.statement, r.deadline],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(message) = message else { return Ok(false) };
            decide_reminder(tx, message, r, &now)
        })
    }

    /// The reminders decided for a statement, in order.
    pub fn reminders_of(&self, statement: i64) -> Result<Vec<ReminderRecord>, StoreError> {
        self.rows(
            "SELECT deadline, step, due_on, outbox FROM reminders WHERE statement = ?1 ORDER BY decided_at, rowid",
            &[&statement],
            |r| Ok(ReminderRecord { deadline: r.get(0)?, step: r.get(1)?, due_on: r.get(2)?, outbox: r.get(3)? }),
        )
    }

    /// The latest digest decided: its slot and the end of the period it covered.
    pub fn last_digest(&self) -> Result<Option<(String, String)>, StoreError> {
        self.conn
            .query_row("SELECT slot, period_end FROM digests ORDER BY id DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records the digest for `slot`, queueing `draft` (none: `why_none` is the event). Returns
    /// false, changing nothing, when that slot had its digest already.
    pub fn record_digest(
        &mut self,
        slot: &str,
        period_start: &str,
        period_end: &str,
        draft: Option<&Draft>,
        why_none: &str,
    ) -> Result<bool, StoreError> {
        self.immediately(|s| {
            let tx = &s.conn;
            let now = now_utc();
            let n = tx.execute(
                "INSERT OR IGNORE INTO digests (slot, period_start, period_end, decided_at) VALUES (?1, ?2, ?3, ?4)",
                params![slot, period_start, period_end, now],
            )?;
            if n == 0 {
                return Ok(false);
            }
            let detail = match draft {
                Some(d) => {
                    let outbox = super::outbox::insert_draft(tx, None, None, d, &now)?;
                    tx.execute("UPDATE digests SET outbox = ?2 WHERE slot = ?1", params![slot, outbox])?;
                    format!("digest for {slot} queued")
                }
                None => why_none.to_string(),
            };
            tx.execute(
                "INSERT INTO events (at, message, kind, detail) VALUES (?1, NULL, 'digest', ?2)",
                params![now, detail],
            )?;
            Ok(true)
        })
    }

    /// Messages quarantined at or after `since`.
    pub fn quarantined_since(&self, since: &str) -> Result<Vec<QuarantinedRow>, StoreError> {
        self.rows(
            "SELECT id, received_at, subject, from_addr, state_detail FROM messages
             WHERE state = 'quarantined' AND COALESCE(processed_at, received_at) >= ?1 ORDER BY id",
            &[&since],
            |r| {
                Ok(QuarantinedRow {
                    id: r.get(0)?,
                    received_at: r.get(1)?,
                    subject: r.get(2)?,
                    from: r.get(3)?,
                    reason: r.get(4)?,
                })
            },
        )
    }

    /// Records that the coordinators were in contact with a liaison manager on `on_date`
    /// (`YYYY-MM-DD`).
    pub fn check_in(&mut self, manager: &str, on_date: &str, note: Option<&str>) -> Result<(), StoreError> {
        self.immediately(|s| {
            let now = now_utc();
            s.conn.execute(
                "INSERT INTO check_ins (manager, on_date, recorded_at, note) VALUES (?1, ?2, ?3, ?4)",
                params![manager, on_date, now, note],
            )?;
            s.conn.execute(
                "INSERT INTO events (at, message, kind, detail) VALUES (?1, NULL, 'check_in', ?2)",
                params![now, format!("{manager} on {on_date}{}", note.map(|n| format!(": {n}")).unwrap_or_default())],
            )?;
            Ok(())
        })
    }

    /// The latest check-in recorded for each manager (address → `YYYY-MM-DD`).
    pub fn check_ins(&self) -> Result<std::collections::HashMap<String, String>, StoreError> {
        Ok(self
            .rows("SELECT manager, MAX(on_date) FROM check_ins GROUP BY manager", &[], |r| Ok((r.get(0)?, r.get(1)?)))?
            .into_iter()
            .collect())
    }

    /// Whether the reminder for this statement, deadline and step was decided already.
    pub fn reminder_decided(&self, statement: i64, deadline: &str, step: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM reminders WHERE statement = ?1 AND deadline = ?2 AND step = ?3")
            .and_then(|mut s| s.exists(params![statement, deadline, step]))
            .map_err(|e| self.err(e))
    }
}
