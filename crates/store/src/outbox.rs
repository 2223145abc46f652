//! The outbox table: mail written with the record it is about, claimed and finished by the
//! sender task, listed, retried and cancelled by the operator.
//!
//! States: `pending` (waiting for `next_attempt_at`) → `sending` (claimed; `data_at` set just
//! before the message data goes out) → `sent` | `pending` again (a temporary failure, with
//! the next attempt later) | `failed` (a permanent failure, or too old) | `uncertain` (the
//! connection was lost after the data went out: it may have been delivered, so it is not
//! sent again unless an operator says so). `cancelled` by an operator.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now_utc};
use liaisond_model::{
    AckCounts, Draft, DraftKind, OutboxRow, OutgoingContext, Plan, address_domain, address_key, timestamp_text,
};

/// The planner the recording transaction calls (the binary's `Reader::planner`).
pub type Planner<'a> = &'a dyn Fn(&OutgoingContext<'_>) -> Plan;

/// A claimed outbox item, ready to send.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub message: Option<i64>,
    pub draft: Draft,
    /// When it was queued, or queued again by an operator (`give_up_after` counts from here).
    pub queued_at: String,
    /// Including this one.
    pub attempts: i64,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    Sent {
        reply: String,
    },
    /// A temporary failure: try again at `next` (RFC 3339 UTC).
    Retry {
        error: String,
        next: String,
    },
    /// A permanent failure.
    Failed {
        error: String,
    },
    /// The data went out, the answer did not come back.
    Uncertain {
        error: String,
    },
}

fn ago(hours: i64) -> String {
    timestamp_text(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours))
}

/// Earlier acknowledgements, by when they were queued: every one planned counts (it was
/// meant to go out, and a failing address must not earn more), except those an operator
/// cancelled. Addresses count by [`address_key`] and domain, so that neither case nor a
/// `+tag` buys more.
pub(super) fn ack_counts(tx: &rusqlite::Connection, to: &str) -> rusqlite::Result<AckCounts> {
    let day = ago(24);
    let hour = ago(1);
    let key = address_key(to).unwrap_or_else(|| to.to_lowercase());
    let domain = address_domain(to).unwrap_or_default();
    let count = |kind: &str, column: &str, value: &dyn rusqlite::ToSql, since: &str| -> rusqlite::Result<u32> {
        tx.prepare_cached(&count_sql(kind, column))?.query_row(params![value, since], |r| r.get(0))
    };
    let to_address_last_day = count("ack", "ack_key", &key, &day)?;
    let to_domain_last_day = count("ack", "ack_domain", &domain, &day)?;
    let receipts_last_hour = count("ack", "ack_receipt", &true, &hour)?;
    let notifications_about_last_day = count("notification", "about_sender", &key, &day)?;
    let alert_last_hour: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE kind = 'alert' AND created_at > ?1)",
        params![hour],
        |r| r.get(0),
    )?;
    Ok(AckCounts {
        to_address_last_day,
        to_domain_last_day,
        receipts_last_hour,
        notifications_about_last_day,
        alert_last_hour,
    })
}

/// How many mail of `kind` whose `column` is `?1` were queued after `?2` (the partial indexes
/// on these columns answer it: `the_limits_are_counted_with_their_indexes`).
fn count_sql(kind: &str, column: &str) -> String {
    format!(
        "SELECT count(*) FROM outbox WHERE kind = '{kind}' AND {column} = ?1 AND created_at > ?2 \
         AND state != 'cancelled'"
    )
}

/// When message `id` arrived, and its size.
pub(super) fn arrival(tx: &rusqlite::Connection, id: i64) -> rusqlite::Result<(jiff::Timestamp, u64)> {
    let (internal, received, size): (Option<String>, String, i64) =
        tx.query_row("SELECT internal_date, received_at, size FROM messages WHERE id = ?1", params![id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let parse = |s: &str| s.parse::<jiff::Timestamp>().ok();
    let at = internal.as_deref().and_then(parse).or_else(|| parse(&received)).unwrap_or_else(jiff::Timestamp::now);
    Ok((at, size.max(0) as u64))
}

/// Writes what the planner decided: the drafts (once per message and kind, linked to the
/// statement the message is or belongs to) and, for a new statement, the acknowledgement
/// decision.
pub(super) fn write_plan(
    tx: &rusqlite::Connection,
    message: i64,
    statement: Option<i64>,
    is_statement: bool,
    plan: &Plan,
    now: &str,
) -> rusqlite::Result<()> {
    for d in &plan.drafts {
        insert_draft(tx, Some(message), statement, d, now)?;
    }
    if let Some(reason) = &plan.no_notification {
        tx.execute(
            "INSERT INTO events (at, message, kind, detail) VALUES (?1, ?2, 'notification_skipped', ?3)",
            params![now, message, reason],
        )?;
    }
    if let (Some(sid), true) = (statement, is_statement) {
        let receipt = plan.drafts.iter().any(|d| d.kind == DraftKind::Ack && d.receipt);
        let ack = match &plan.ack {
            Ok(to) if receipt => format!("receipt sent to {to} (the sender is not verified)"),
            Ok(to) => format!("sent to {to}"),
            Err(reason) => format!("not sent: {reason}"),
        };
        tx.execute("UPDATE statements SET ack = ?2 WHERE id = ?1 AND ack IS NULL", params![sid, ack])?;
    }
    Ok(())
}

/// Queues one draft, due now, with an `outbox_queued` event on `message` (when there is one).
/// Returns its row, or `None` when it was there already (once per message and kind for
/// acknowledgements and notifications).
pub(super) fn insert_draft(
    tx: &rusqlite::Connection,
    message: Option<i64>,
    statement: Option<i64>,
    d: &Draft,
    now: &str,
) -> rusqlite::Result<Option<i64>> {
    let ack_to = (d.kind == DraftKind::Ack).then(|| d.to.first().cloned()).flatten();
    let ack_key = ack_to.as_deref().and_then(address_key);
    let ack_domain = ack_to.as_deref().and_then(address_domain);
    let recipients = serde_json::to_string(&d.recipients()).unwrap_or_else(|_| "[]".into());
    let draft = serde_json::to_string(d).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO outbox (message, statement, kind, message_id, ack_to, ack_key, ack_domain,
             ack_receipt, about_sender, recipients, subject, draft, created_at, queued_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?13)",
        )?
        .execute(params![
            message,
            statement,
            d.kind.as_str(),
            d.message_id,
            ack_to,
            ack_key,
            ack_domain,
            d.receipt,
            d.about_sender,
            recipients,
            d.subject,
            draft,
            now
        ])?;
    if n == 0 {
        return Ok(None);
    }
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO events (at, message, kind, detail) VALUES (?1, ?2, 'outbox_queued', ?3)",
        params![now, message, format!("{} to {} <{}>", d.kind.as_str(), d.recipients().join(", "), d.message_id)],
    )?;
    Ok(Some(id))
}

impl Store {
    /// Failed and uncertain items whose last attempt (or queueing) was at or after `since`.
    pub fn outbox_problems_since(&self, since: &str) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_where(
            "o.state IN ('failed', 'uncertain') AND COALESCE(o.claimed_at, o.queued_at) >= ?1 ORDER BY o.id",
            &[&since],
        )
    }

    /// At start: a claim without `data_at` never reached the server's DATA and goes back to
    /// `pending`; one with it may have been delivered and becomes `uncertain` (RFC 5321 §6.1
    /// gives no way to ask). Returns (pending again, uncertain).
    pub fn recover_outbox(&mut self) -> Result<(usize, usize), StoreError> {
        self.in_transaction(|tx| {
            let now = now_utc();
            let uncertain = tx.execute(
                "UPDATE outbox SET state = 'uncertain', last_error = 'liaisond stopped while sending it (after the data went out)'
                 WHERE state = 'sending' AND data_at IS NOT NULL",
                [],
            )?;
            let again = tx.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?1 WHERE state = 'sending' AND data_at IS NULL",
                params![now],
            )?;
            Ok((again, uncertain))
        })
    }

    /// Claims the next item that is due, oldest first.
    pub fn claim_outbox(&mut self) -> Result<Option<OutboxItem>, StoreError> {
        self.in_transaction(|tx| {
            let now = now_utc();
            let row: Option<(i64, Option<i64>, String, String, i64)> = tx
                .query_row(
                    "UPDATE outbox SET state = 'sending', claimed_at = ?1, data_at = NULL, attempts = attempts + 1
                     WHERE id = (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1
                                 ORDER BY next_attempt_at, id LIMIT 1)
                     RETURNING id, message, draft, queued_at, attempts",
                    params![now],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((id, message, draft, queued_at, attempts)) = row else {
                return Ok(None);
            };
            match serde_json::from_str::<Draft>(&draft) {
                Ok(draft) => Ok(Some(OutboxItem { id, message, draft, queued_at, attempts })),
                Err(e) => {
                    // Cannot happen unless the row was edited by hand; never retried.
                    tx.execute(
                        "UPDATE outbox SET state = 'failed', last_error = ?2 WHERE id = ?1",
                        params![id, format!("the stored message cannot be read: {e}")],
                    )?;
                    Ok(None)
                }
            }
        })
    }

    /// When the next pending item is due.
    pub fn next_outbox_due(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Marks that the message data is about to go to the server (see the module comment).
    pub fn outbox_data_started(&self, id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE outbox SET data_at = ?2 WHERE id = ?1 AND state = 'sending'", params![id, now_utc()])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records how an attempt ended (and an event for the message it is about).
    pub fn finish_outbox(&mut self, id: i64, result: &SendResult) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            let now = now_utc();
            let (state, detail) = match result {
                SendResult::Sent { reply } => {
                    tx.execute(
                        "UPDATE outbox SET state = 'sent', sent_at = ?2, smtp_reply = ?3, last_error = NULL WHERE id = ?1",
                        params![id, now, reply],
                    )?;
                    ("outbox_sent", reply.clone())
                }
                SendResult::Retry { error, next } => {
                    tx.execute(
                        "UPDATE outbox SET state = 'pending', next_attempt_at = ?2, last_error = ?3, data_at = NULL WHERE id = ?1",
                        params![id, next, error],
                    )?;
                    ("outbox_retry", format!("{error}; next attempt {next}"))
                }
                SendResult::Failed { error } => {
                    tx.execute("UPDATE outbox SET state = 'failed', last_error = ?2 WHERE id = ?1", params![id, error])?;
                    ("outbox_failed", error.clone())
                }
                SendResult::Uncertain { error } => {
                    tx.execute("UPDATE outbox SET state = 'uncertain', last_error = ?2 WHERE id = ?1", params![id, error])?;
                    ("outbox_uncertain", error.clone())
                }
            };
            tx.execute(
                "INSERT INTO events (at, message, kind, detail)
                 SELECT ?1, message, ?2, kind || ' ' || message_id || ': ' || ?3 FROM outbox WHERE id = ?4",
                params![now, state, detail, id],
            )?;
            Ok(())
        })
    }

    /// Outbox rows, newest first; only those in `states` when given.
    pub fn outbox_rows(&self, states: &[&str], limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let filter = serde_json::to_string(states).unwrap_or_else(|_| "[]".into());
        self.outbox_where(
            "?1 = '[]' OR o.state IN (SELECT value FROM json_each(?1)) ORDER BY o.id DESC LIMIT ?2",
            &[&filter, &(limit as i64)],
        )
    }

    /// The outbox rows about one message, oldest first.
    pub fn outbox_for_message(&self, message: i64) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_where("o.message = ?1 ORDER BY o.id", &[&message])
    }

    /// One outbox row.
    pub fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        Ok(self.outbox_where("o.id = ?1", &[&id])?.pop())
    }

    pub(super) fn outbox_where(
        &self,
        condition: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT o.id, o.kind, o.state, s.tracking_id, o.message, o.message_id, o.recipients, o.subject, o.attempts,
             o.created_at, o.next_attempt_at, o.sent_at, o.last_error, o.smtp_reply
             FROM outbox o LEFT JOIN statements s ON s.id = o.statement WHERE {condition}"
        );
        self.rows(&sql, args, |r| {
            let recipients: String = r.get(6)?;
            let state: String = r.get(2)?;
            let next: String = r.get(10)?;
            Ok(OutboxRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                next_attempt_at: (state == "pending").then_some(next),
                state,
                tracking_id: r.get(3)?,
                message: r.get(4)?,
                message_id: r.get(5)?,
                recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                subject: r.get(7)?,
                attempts: r.get(8)?,
                created_at: r.get(9)?,
                sent_at: r.get(11)?,
                last_error: r.get(12)?,
                smtp_reply: r.get(13)?,
            })
        })
    }

    /// How many rows are in each state.
    pub fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.rows("SELECT state, count(*) FROM outbox GROUP BY state ORDER BY state", &[], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    }

    /// Puts a failed, uncertain or cancelled item back in the queue, due now, with a fresh
    /// `give_up_after` (an operator's decision: an uncertain one may then arrive twice; it keeps
    /// its Message-ID, so mail clients can tell). Returns the state it was in, or `None` when it
    /// cannot be retried.
    pub fn retry_outbox(&mut self, id: i64, by: &str) -> Result<Option<String>, StoreError> {
        self.operator_change(id, &["failed", "uncertain", "cancelled"], "pending", "outbox_retry_requested", by)
    }

    /// Cancels a pending, failed or uncertain item: it will not be sent.
    pub fn cancel_outbox(&mut self, id: i64, by: &str) -> Result<Option<String>, StoreError> {
        self.operator_change(id, &["pending", "failed", "uncertain"], "cancelled", "outbox_cancelled", by)
    }

    fn operator_change(
        &mut self,
        id: i64,
        from: &[&str],
        to: &str,
        event: &str,
        by: &str,
    ) -> Result<Option<String>, StoreError> {
        let from = serde_json::to_string(from).unwrap_or_else(|_| "[]".into());
        self.in_transaction(|tx| {
            let now = now_utc();
            let before: Option<String> =
                tx.query_row("SELECT state FROM outbox WHERE id = ?1", params![id], |r| r.get(0)).optional()?;
            let Some(before) = before else { return Ok(None) };
            let n = tx.execute(
                "UPDATE outbox SET state = ?2, next_attempt_at = ?3, queued_at = CASE WHEN ?2 = 'pending'
                 THEN ?3 ELSE queued_at END
                 WHERE id = ?1 AND state IN (SELECT value FROM json_each(?4))",
                params![id, to, now, from],
            )?;
            if n == 0 {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO events (at, message, kind, detail)
                 SELECT ?1, message, ?2, kind || ' ' || message_id || ' (was ' || ?3 || ') by ' || ?4 FROM outbox WHERE id = ?5",
                params![now, event, before, by, id],
            )?;
            Ok(Some(before))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use liaisond_model::{Class, History, Outcome, Summary, Verdict};

    use super::*;
    use crate::testing::{arrival, temp_store};

    fn accept(s: &mut Store, raw: &[u8]) -> i64 {
        crate::testing::accept(s, &arrival(raw))
    }

    fn judged() -> Verdict {
        Verdict {
            sender: Some("jane@x.org".into()),
            sender_verified: true,
            verification: "dmarc=pass".into(),
            to: vec!["ann@example.org".into()],
            route_reason: "test".into(),
            ..Verdict::new(Class::Statement, "reads like a statement")
        }
    }

    /// Tells the Message-IDs of the drafts apart.
    static NONCE: AtomicU64 = AtomicU64::new(1);

    fn draft(kind: DraftKind, about: &str, to: &str) -> Draft {
        Draft {
            kind,
            message_id: format!(
                "liaisond.{}.{about}.{:016x}@iab.org",
                kind.as_str(),
                NONCE.fetch_add(1, Ordering::Relaxed)
            ),
            date: "2026-03-01T12:00:00Z".into(),
            from: "liaison-coordination@iab.org".into(),
            to: vec![to.into()],
            cc: vec!["chair@iab.org".into()],
            reply_to: Vec::new(),
            subject: format!("{} about {about}", kind.as_str()),
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: "auto-generated".into(),
            body: "text\n".into(),
            attach_original: false,
            null_sender: kind == DraftKind::Ack,
            receipt: false,
            about_sender: None,
            tracking_id: None,
        }
    }

    /// A plan with one acknowledgement to `to` and one notification (and more of `extra`).
    fn plan_for(ctx: &OutgoingContext<'_>, to: &str, extra: &[DraftKind]) -> Plan {
        let about = ctx.tracking_id.unwrap_or("none");
        let mut drafts =
            vec![draft(DraftKind::Ack, about, to), draft(DraftKind::Notification, about, "ann@example.org")];
        drafts.extend(extra.iter().map(|k| draft(*k, about, "chair@iab.org")));
        Plan { drafts, ack: Ok(to.to_string()), no_notification: None }
    }

    /// Records message `id` as a statement with [`plan_for`]; `Some(tracking ID)` if recorded.
    fn record(s: &mut Store, id: i64, to: &str, extra: &[DraftKind]) -> Option<Option<String>> {
        record_planned(s, id, &|ctx: &OutgoingContext<'_>| plan_for(ctx, to, extra))
    }

    /// Records message `id` as a statement with `planner`; `Some(tracking ID)` if recorded.
    fn record_planned(s: &mut Store, id: i64, planner: Planner<'_>) -> Option<Option<String>> {
        s.record_judged(
            id,
            &Outcome::Processed,
            &Summary::default(),
            None,
            Some(&|_: &dyn History| judged()),
            Some(planner),
        )
        .expect("record")
        .map(|r| r.tracking_id)
    }

    /// A new statement with an acknowledgement to `to`; returns (ack row, notification row).
    fn statement(s: &mut Store, raw: &[u8], to: &str) -> (i64, i64) {
        let id = accept(s, raw);
        record(s, id, to, &[]).expect("recorded").expect("a tracking ID");
        let rows = s.outbox_for_message(id).expect("rows");
        let find = |kind: &str| rows.iter().find(|r| r.kind == kind).map(|r| r.id).expect("row");
        (find("ack"), find("notification"))
    }

    fn row(s: &Store, id: i64) -> OutboxRow {
        s.outbox_rows(&[], 1000).expect("rows").into_iter().find(|r| r.id == id).expect("row")
    }

    fn state(s: &Store, id: i64) -> String {
        row(s, id).state
    }

    fn set(s: &Store, id: i64, column: &str, value: &str) {
        s.conn.execute(&format!("UPDATE outbox SET {column} = ?2 WHERE id = ?1"), params![id, value]).expect("update");
    }

    fn count(s: &Store, sql: &str) -> i64 {
        s.conn.query_row(sql, [], |r| r.get(0)).expect("count")
    }

    fn counts(s: &mut Store, to: &str) -> AckCounts {
        s.in_transaction(|tx| ack_counts(tx, to)).expect("counts")
    }

    fn in_hours(h: i64) -> String {
        timestamp_text(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(h))
    }

    #[test]
    fn two_processes_recording_copies_of_one_statement_make_one_statement() {
        // Regression: the history was read before the recording transaction began, so two
        // writers (the daemon and `liaisond ingest`) could both judge their copy new.
        let (d, mut a) = temp_store();
        let mut b = Store::open(&d.path().join(crate::testing::DATABASE), Duration::from_secs(10))
            .expect("open a second connection");
        let first = accept(&mut a, b"copy one");
        let second = accept(&mut a, b"copy two");
        let judge = |h: &dyn History| {
            let mut j = judged();
            match h.by_tracking_id("LS-0000-0000").or_else(|| h.by_title_and_org("T", "Org")) {
                Some(k) => {
                    j.class = Class::Duplicate;
                    j.related_statement = Some(k.id);
                }
                // Widen the window in which the other writer could slip in.
                None => std::thread::sleep(Duration::from_millis(300)),
            }
            j
        };
        let reading = crate::Reading {
            title: Some("T".into()),
            from_org: Some("Org".into()),
            statement_json: "{}".into(),
            warnings_json: "[]".into(),
            ..Default::default()
        };
        let classes = std::thread::scope(|scope| {
            let ra = &reading;
            let one = scope.spawn(move || {
                a.record_judged(first, &Outcome::Processed, &Summary::default(), Some(ra), Some(&judge), None)
                    .expect("record one")
                    .and_then(|r| r.judged)
                    .map(|j| j.class)
            });
            let two = scope.spawn(move || {
                b.record_judged(second, &Outcome::Processed, &Summary::default(), Some(ra), Some(&judge), None)
                    .expect("record two")
                    .and_then(|r| r.judged)
                    .map(|j| j.class)
            });
            let mut both = [one.join().expect("one"), two.join().expect("two")];
            both.sort_by_key(|c| c.map(Class::as_str));
            both
        });
        assert_eq!(classes, [Some(Class::Duplicate), Some(Class::Statement)]);
        let s = Store::open(&d.path().join(crate::testing::DATABASE), Duration::from_secs(1)).expect("open");
        assert_eq!(count(&s, "SELECT count(*) FROM statements"), 1);
    }

    #[test]
    fn a_follow_up_notification_belongs_to_its_statement() {
        let (_d, mut s) = temp_store();
        let (_, _) = statement(&mut s, b"the statement", "jane@x.org");
        let sid: i64 = s.conn.query_row("SELECT id FROM statements", [], |r| r.get(0)).expect("statement");
        let tid: String = s.conn.query_row("SELECT tracking_id FROM statements", [], |r| r.get(0)).expect("tid");
        let id = accept(&mut s, b"a reply to the acknowledgement");
        let follow_up = |_: &dyn History| Verdict {
            class: Class::FollowUp,
            related_statement: Some(sid),
            related_tracking_id: Some(tid.clone()),
            ..judged()
        };
        let planner = |ctx: &OutgoingContext<'_>| {
            assert_eq!(ctx.tracking_id, Some(tid.as_str()), "the statement's tracking ID");
            Plan {
                drafts: vec![draft(DraftKind::Notification, "f", "ann@example.org")],
                ack: Err("not a statement".into()),
                no_notification: None,
            }
        };
        s.record_judged(id, &Outcome::Processed, &Summary::default(), None, Some(&follow_up), Some(&planner))
            .expect("record");
        let rows = s.outbox_for_message(id).expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].tracking_id.as_deref(), Some(tid.as_str()), "listed with its statement");
        let ack: String = s.conn.query_row("SELECT ack FROM statements", [], |r| r.get(0)).expect("ack");
        assert_eq!(ack, "sent to jane@x.org", "the statement's own decision stays");
    }

    #[test]
    fn recording_writes_each_draft_once() {
        let (_d, mut s) = temp_store();
        let raw = b"Subject: LS\r\n\r\nx";
        let id = accept(&mut s, raw);
        let calls = Cell::new(0);
        let seen = Cell::new(None);
        let planner = |ctx: &OutgoingContext<'_>| {
            calls.set(calls.get() + 1);
            assert_eq!(ctx.size, raw.len() as u64);
            let age = jiff::Timestamp::now().duration_since(ctx.received);
            assert!(age.as_secs() < 60, "received when stored: {age}");
            seen.set(Some((ctx.counts)("jane@x.org")));
            assert!(ctx.tracking_id.is_some_and(|t| t.starts_with("LS-") && t.ends_with("-0001")));
            plan_for(ctx, "jane@x.org", &[])
        };
        let tid = record_planned(&mut s, id, &planner).expect("recorded").expect("a tracking ID");
        assert_eq!(calls.get(), 1);
        assert_eq!(seen.get(), Some(AckCounts::default()), "nothing sent before");
        let rows = s.outbox_for_message(id).expect("rows");
        assert_eq!(rows.len(), 2);
        for r in &rows {
            assert_eq!((r.state.as_str(), r.attempts, r.tracking_id.as_deref()), ("pending", 0, Some(tid.as_str())));
            assert!(r.next_attempt_at.is_some() && r.sent_at.is_none());
        }
        let ack = rows.iter().find(|r| r.kind == "ack").expect("ack");
        assert_eq!(ack.recipients, ["jane@x.org", "chair@iab.org"]);
        assert_eq!(s.statement_ack(id).expect("ack"), Some("sent to jane@x.org".to_string()));
        assert_eq!(count(&s, "SELECT count(*) FROM events WHERE kind = 'outbox_queued'"), 2);

        // Recorded already: the planner is not asked again.
        assert_eq!(record_planned(&mut s, id, &planner), None);
        assert_eq!(calls.get(), 1);

        // Even when the message is processed again, each kind is queued once (new Message-IDs
        // notwithstanding), and the first acknowledgement decision stays.
        s.conn.execute("UPDATE messages SET state = 'pending' WHERE id = ?1", params![id]).expect("reset");
        let refuse = |ctx: &OutgoingContext<'_>| Plan { ack: Err("no".into()), ..plan_for(ctx, "other@x.org", &[]) };
        assert_eq!(record_planned(&mut s, id, &refuse), Some(Some(tid)));
        assert_eq!(format!("{:?}", s.outbox_for_message(id).expect("rows")), format!("{rows:?}"));
        assert_eq!(count(&s, "SELECT count(*) FROM outbox"), 2);
        assert_eq!(count(&s, "SELECT count(*) FROM events WHERE kind = 'outbox_queued'"), 2);
        assert_eq!(s.statement_ack(id).expect("ack"), Some("sent to jane@x.org".to_string()));
    }

    #[test]
    fn claim_takes_the_oldest_due_item() {
        let (_d, mut s) = temp_store();
        let (ack, notification) = statement(&mut s, b"one", "jane@x.org");
        let (later_ack, later_notification) = statement(&mut s, b"two", "joe@x.org");
        set(&s, later_ack, "next_attempt_at", "2000-01-01T00:00:00.000Z");
        set(&s, later_notification, "next_attempt_at", &in_hours(1));
        assert_eq!(s.next_outbox_due().expect("due").as_deref(), Some("2000-01-01T00:00:00.000Z"));

        let first = s.claim_outbox().expect("claim").expect("due");
        assert_eq!(first.id, later_ack, "the earliest next attempt first");
        assert_eq!((first.attempts, first.draft.kind), (1, DraftKind::Ack));
        assert_eq!(first.draft.to, ["joe@x.org"]);
        assert_eq!(Some(first.draft.message_id.as_str()), Some(row(&s, later_ack).message_id.as_str()));
        assert_eq!(state(&s, later_ack), "sending");
        assert_eq!(s.outbox_rows(&["sending"], 10).expect("rows")[0].next_attempt_at, None);

        let second = s.claim_outbox().expect("claim").expect("due");
        assert_eq!(second.id, ack, "then by id");
        assert_eq!(s.claim_outbox().expect("claim").expect("due").id, notification);
        assert!(s.claim_outbox().expect("claim").is_none(), "the last one is not due yet");
        assert_eq!(state(&s, later_notification), "pending");
        let sending: Vec<i64> = s.outbox_rows(&["sending"], 10).expect("rows").iter().map(|r| r.id).collect();
        assert_eq!(sending, [later_ack, notification, ack], "newest first");
    }

    #[test]
    fn recovery_after_a_crash() {
        let (_d, mut s) = temp_store();
        let (ack, notification) = statement(&mut s, b"one", "jane@x.org");
        let a = s.claim_outbox().expect("claim").expect("due");
        let b = s.claim_outbox().expect("claim").expect("due");
        assert_eq!((a.id, b.id), (ack, notification));
        s.outbox_data_started(b.id).expect("data");
        assert_eq!(s.recover_outbox().expect("recover"), (1, 1));
        assert_eq!(state(&s, ack), "pending");
        let uncertain = row(&s, notification);
        assert_eq!(uncertain.state, "uncertain");
        assert_eq!(
            uncertain.last_error.as_deref(),
            Some("liaisond stopped while sending it (after the data went out)")
        );
        let again = s.claim_outbox().expect("claim").expect("pending again");
        assert_eq!((again.id, again.attempts), (ack, 2));
        assert!(s.claim_outbox().expect("claim").is_none(), "an uncertain one is not sent again");
        assert_eq!(s.recover_outbox().expect("recover"), (1, 0));
        // Marking the data only counts for a claimed item.
        s.outbox_data_started(ack).expect("data");
        assert_eq!(s.recover_outbox().expect("recover"), (0, 0));
    }

    #[test]
    fn how_an_attempt_ends() {
        let (_d, mut s) = temp_store();
        statement(&mut s, b"one", "jane@x.org");
        statement(&mut s, b"two", "joe@x.org");
        let items: Vec<i64> = (0..4).map(|_| s.claim_outbox().expect("claim").expect("due").id).collect();

        let next = in_hours(1);
        s.finish_outbox(items[0], &SendResult::Retry { error: "421 busy".into(), next: next.clone() }).expect("retry");
        let r = row(&s, items[0]);
        assert_eq!((r.state.as_str(), r.next_attempt_at.as_deref()), ("pending", Some(next.as_str())));
        assert_eq!(r.last_error.as_deref(), Some("421 busy"));
        assert!(s.claim_outbox().expect("claim").is_none(), "not before the next attempt");
        assert_eq!(s.next_outbox_due().expect("due"), Some(next));
        s.finish_outbox(items[0], &SendResult::Retry { error: "421 busy".into(), next: in_hours(-1) }).expect("retry");
        let again = s.claim_outbox().expect("claim").expect("due now");
        assert_eq!((again.id, again.attempts), (items[0], 2));

        s.finish_outbox(items[0], &SendResult::Sent { reply: "250 2.0.0 queued".into() }).expect("sent");
        let r = row(&s, items[0]);
        assert_eq!((r.state.as_str(), r.smtp_reply.as_deref()), ("sent", Some("250 2.0.0 queued")));
        assert!(r.sent_at.is_some());
        assert_eq!(r.last_error, None, "the earlier error is cleared");
        assert_eq!(r.next_attempt_at, None);

        s.finish_outbox(items[1], &SendResult::Failed { error: "550 no such user".into() }).expect("failed");
        let r = row(&s, items[1]);
        assert_eq!((r.state.as_str(), r.last_error.as_deref()), ("failed", Some("550 no such user")));
        s.finish_outbox(items[2], &SendResult::Uncertain { error: "connection lost".into() }).expect("uncertain");
        let r = row(&s, items[2]);
        assert_eq!((r.state.as_str(), r.last_error.as_deref()), ("uncertain", Some("connection lost")));
        assert!(s.claim_outbox().expect("claim").is_none(), "none of them is sent again");

        for kind in ["outbox_retry", "outbox_sent", "outbox_failed", "outbox_uncertain"] {
            let n = count(&s, &format!("SELECT count(*) FROM events WHERE kind = '{kind}' AND message IS NOT NULL"));
            assert_eq!(n, if kind == "outbox_retry" { 2 } else { 1 }, "{kind}");
        }
        let counts = s.outbox_counts().expect("counts");
        let expected = [("failed", 1), ("sending", 1), ("sent", 1), ("uncertain", 1)];
        assert_eq!(counts, expected.map(|(k, n)| (k.to_string(), n)));
    }

    #[test]
    fn operator_retry_and_cancel() {
        let (_d, mut s) = temp_store();
        let (id, other) = statement(&mut s, b"one", "jane@x.org");
        set(&s, other, "state", "sent");
        // (state before, retry allowed, cancel allowed)
        let table = [
            ("pending", false, true),
            ("sending", false, false),
            ("sent", false, false),
            ("failed", true, true),
            ("uncertain", true, true),
            ("cancelled", true, false),
        ];
        for (before, retry, cancel) in table {
            set(&s, id, "state", before);
            set(&s, id, "next_attempt_at", &in_hours(5));
            let r = s.retry_outbox(id, "tester").expect("retry");
            assert_eq!(r.as_deref(), retry.then_some(before), "retry from {before}");
            if retry {
                assert_eq!(state(&s, id), "pending");
                assert_eq!(s.claim_outbox().expect("claim").map(|i| i.id), Some(id), "due at once");
            } else {
                assert_eq!(state(&s, id), before, "unchanged");
            }
            set(&s, id, "state", before);
            let r = s.cancel_outbox(id, "tester").expect("cancel");
            assert_eq!(r.as_deref(), cancel.then_some(before), "cancel from {before}");
            assert_eq!(state(&s, id), if cancel { "cancelled" } else { before });
        }
        assert_eq!(s.retry_outbox(999, "tester").expect("retry"), None);
        assert_eq!(s.cancel_outbox(999, "tester").expect("cancel"), None);
        assert_eq!(count(&s, "SELECT count(*) FROM events WHERE kind = 'outbox_retry_requested'"), 3);
        assert_eq!(count(&s, "SELECT count(*) FROM events WHERE kind = 'outbox_cancelled'"), 3);
        let detail: String = s
            .conn
            .query_row("SELECT detail FROM events WHERE kind = 'outbox_cancelled' ORDER BY id LIMIT 1", [], |r| {
                r.get(0)
            })
            .expect("event");
        assert!(detail.starts_with("ack liaisond.ack.") && detail.ends_with(" (was pending) by tester"), "{detail}");
    }

    #[test]
    fn the_limits_are_counted_with_their_indexes() {
        let (_d, s) = temp_store();
        for (kind, column, index) in [
            ("ack", "ack_key", "outbox_ack_key"),
            ("ack", "ack_domain", "outbox_ack_domain"),
            ("notification", "about_sender", "outbox_about_sender"),
        ] {
            let sql = format!("EXPLAIN QUERY PLAN {}", count_sql(kind, column));
            let plan: String = s.conn.query_row(&sql, params!["x", "2026"], |r| r.get(3)).expect("plan");
            assert!(plan.contains(index), "{column}: {plan}");
        }
    }

    #[test]
    fn notifications_are_counted_by_the_sender_they_are_about() {
        let (_d, mut s) = temp_store();
        for raw in [&b"one"[..], b"two"] {
            let id = accept(&mut s, raw);
            let planner = |ctx: &OutgoingContext<'_>| {
                let mut plan = plan_for(ctx, "jane@x.org", &[]);
                plan.drafts[1].about_sender = Some("mallory@evil.example".into());
                plan
            };
            record_planned(&mut s, id, &planner);
        }
        assert_eq!(counts(&mut s, "Mallory+x@evil.example").notifications_about_last_day, 2);
        assert_eq!(counts(&mut s, "jane@x.org").notifications_about_last_day, 0, "acknowledgements do not count");
    }

    #[test]
    fn acknowledgements_are_counted_per_address_domain_and_hour() {
        let (_d, mut s) = temp_store();
        assert_eq!(counts(&mut s, "jane@x.org"), AckCounts::default());
        let (first, _) = statement(&mut s, b"one", "jane@x.org");
        // Regression (issue 13): case and a `+tag` made a new address with a limit of its own.
        let (second, _) = statement(&mut s, b"two", "Jane+2@X.org");
        statement(&mut s, b"three", "joe@x.org");
        // A receipt (to an unverified sender) counts like any acknowledgement, and in the hour.
        let id = accept(&mut s, b"receipt");
        let planner = |ctx: &OutgoingContext<'_>| {
            let mut plan = plan_for(ctx, "amy@y.org", &[]);
            plan.drafts[0].receipt = true;
            plan
        };
        record_planned(&mut s, id, &planner);
        let c = |to_address_last_day, to_domain_last_day, receipts_last_hour, alert_last_hour| AckCounts {
            to_address_last_day,
            to_domain_last_day,
            receipts_last_hour,
            notifications_about_last_day: 0,
            alert_last_hour,
        };
        assert_eq!(counts(&mut s, "jane@x.org"), c(2, 3, 1, false), "notifications do not count");
        assert_eq!(counts(&mut s, "JANE+other@x.org"), c(2, 3, 1, false));
        assert_eq!(counts(&mut s, "joe@x.org"), c(1, 3, 1, false));
        assert_eq!(counts(&mut s, "nobody@x.org"), c(0, 3, 1, false));
        assert_eq!(counts(&mut s, "amy+1@y.org"), c(1, 1, 1, false));

        // Twenty-five hours ago: no longer counted.
        set(&s, first, "created_at", &in_hours(-25));
        assert_eq!(counts(&mut s, "jane@x.org"), c(1, 2, 1, false));

        // A cancelled one never went out.
        assert_eq!(s.cancel_outbox(second, "tester").expect("cancel").as_deref(), Some("pending"));
        assert_eq!(counts(&mut s, "jane@x.org"), c(0, 1, 1, false));

        // What the planner sees, and an alert.
        let id = accept(&mut s, b"four");
        let seen = Cell::new(None);
        let planner = |ctx: &OutgoingContext<'_>| {
            seen.set(Some((ctx.counts)("joe@x.org")));
            plan_for(ctx, "joe@x.org", &[DraftKind::Alert])
        };
        record_planned(&mut s, id, &planner);
        assert_eq!(seen.get(), Some(c(1, 1, 1, false)));
        assert_eq!(counts(&mut s, "joe@x.org"), c(2, 2, 1, true));
        set(&s, s.outbox_rows(&[], 1).expect("rows")[0].id, "created_at", &in_hours(-2));
        assert_eq!(counts(&mut s, "joe@x.org"), c(2, 2, 1, false), "the alert was more than an hour ago");
    }
}
