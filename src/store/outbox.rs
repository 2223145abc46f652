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
use crate::respond::{AckCounts, Draft, Plan};

/// What [`Store::record_judged`] tells the planner, inside the transaction.
pub struct OutgoingContext<'a> {
    pub tracking_id: Option<&'a str>,
    /// When the message arrived: its IMAP INTERNALDATE, else when it was stored.
    pub received: jiff::Timestamp,
    pub size: u64,
    /// Earlier acknowledgements to an address (and in total).
    pub counts: &'a dyn Fn(&str) -> AckCounts,
}

/// The planner the recording transaction calls (see `analyse::Reader::respond`).
pub type Planner<'a> = &'a dyn Fn(&OutgoingContext<'_>) -> Plan;

/// A claimed outbox item, ready to send.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub message: Option<i64>,
    pub draft: Draft,
    pub created_at: String,
    /// Including this one.
    pub attempts: i64,
}

/// An outbox row as `outbox list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub tracking_id: Option<String>,
    pub message: Option<i64>,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub attempts: i64,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub sent_at: Option<String>,
    pub last_error: Option<String>,
    pub smtp_reply: Option<String>,
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

pub fn timestamp_text(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn ago(hours: i64) -> String {
    timestamp_text(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours))
}

/// Earlier acknowledgements (cancelled ones do not count: they never went out).
pub(super) fn ack_counts(tx: &rusqlite::Transaction<'_>, to: &str) -> rusqlite::Result<AckCounts> {
    let day = ago(24);
    let hour = ago(1);
    let to_recipient_last_day: u32 = tx.query_row(
        "SELECT count(*) FROM outbox WHERE kind = 'ack' AND ack_to = ?1 AND created_at > ?2 AND state != 'cancelled'",
        params![to, day],
        |r| r.get(0),
    )?;
    let last_hour: u32 = tx.query_row(
        "SELECT count(*) FROM outbox WHERE kind = 'ack' AND created_at > ?1 AND state != 'cancelled'",
        params![hour],
        |r| r.get(0),
    )?;
    let alert_last_hour: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE kind = 'alert' AND created_at > ?1)",
        params![hour],
        |r| r.get(0),
    )?;
    Ok(AckCounts { to_recipient_last_day, last_hour, alert_last_hour })
}

/// When message `id` arrived, and its size.
pub(super) fn arrival(tx: &rusqlite::Transaction<'_>, id: i64) -> rusqlite::Result<(jiff::Timestamp, u64)> {
    let (internal, received, size): (Option<String>, String, i64) =
        tx.query_row("SELECT internal_date, received_at, size FROM messages WHERE id = ?1", params![id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let parse = |s: &str| s.parse::<jiff::Timestamp>().ok();
    let at = internal.as_deref().and_then(parse).or_else(|| parse(&received)).unwrap_or_else(jiff::Timestamp::now);
    Ok((at, size.max(0) as u64))
}

/// Writes what the planner decided: the drafts (once per message and kind) and the
/// acknowledgement decision on the statement.
pub(super) fn write_plan(
    tx: &rusqlite::Transaction<'_>,
    message: i64,
    statement: Option<i64>,
    plan: &Plan,
    now: &str,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (message, statement, kind, message_id, ack_to, recipients, subject, draft,
         created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )?;
    for d in &plan.drafts {
        let ack_to = (d.kind == crate::respond::Kind::Ack).then(|| d.to.first().cloned()).flatten();
        let recipients = serde_json::to_string(&d.recipients()).unwrap_or_else(|_| "[]".into());
        let draft = serde_json::to_string(d).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let n = insert.execute(params![
            message,
            statement,
            d.kind.as_str(),
            d.message_id,
            ack_to,
            recipients,
            d.subject,
            draft,
            now
        ])?;
        if n == 1 {
            tx.execute(
                "INSERT INTO events (at, message, kind, detail) VALUES (?1, ?2, 'outbox_queued', ?3)",
                params![
                    now,
                    message,
                    format!("{} to {} <{}>", d.kind.as_str(), d.recipients().join(", "), d.message_id)
                ],
            )?;
        }
    }
    if let Some(sid) = statement {
        let ack = match &plan.ack {
            Ok(to) => format!("sent to {to}"),
            Err(reason) => format!("not sent: {reason}"),
        };
        tx.execute("UPDATE statements SET ack = ?2 WHERE id = ?1 AND ack IS NULL", params![sid, ack])?;
    }
    Ok(())
}

impl Store {
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
                     RETURNING id, message, draft, created_at, attempts",
                    params![now],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((id, message, draft, created_at, attempts)) = row else {
                return Ok(None);
            };
            match serde_json::from_str::<Draft>(&draft) {
                Ok(draft) => Ok(Some(OutboxItem { id, message, draft, created_at, attempts })),
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
        self.rows(
            "SELECT o.id, o.kind, o.state, s.tracking_id, o.message, o.message_id, o.recipients, o.subject, o.attempts,
             o.created_at, o.next_attempt_at, o.sent_at, o.last_error, o.smtp_reply
             FROM outbox o LEFT JOIN statements s ON s.id = o.statement
             WHERE ?1 = '[]' OR o.state IN (SELECT value FROM json_each(?1))
             ORDER BY o.id DESC LIMIT ?2",
            &[&filter, &(limit as i64)],
            |r| {
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
            },
        )
    }

    /// The outbox rows about one message.
    pub fn outbox_for_message(&self, message: i64) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(self.outbox_rows(&[], usize::MAX >> 1)?.into_iter().filter(|r| r.message == Some(message)).collect())
    }

    /// How many rows are in each state.
    pub fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.rows("SELECT state, count(*) FROM outbox GROUP BY state ORDER BY state", &[], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    }

    /// Puts a failed, uncertain or cancelled item back in the queue, due now (an operator's
    /// decision: an uncertain one may then arrive twice; it keeps its Message-ID, so mail
    /// clients can tell). Returns the state it was in, or `None` when it cannot be retried.
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
                "UPDATE outbox SET state = ?2, next_attempt_at = ?3, created_at = CASE WHEN ?2 = 'pending'
                 THEN ?3 ELSE created_at END
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
