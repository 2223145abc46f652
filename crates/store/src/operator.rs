//! What the operator's command line reads and changes: statements as whole records (with the
//! messages, mail and events about them), their assignment and headline fields, quarantined
//! messages and putting messages back to be processed again.
//!
//! Safe while the daemon runs: every change is one short IMMEDIATE transaction (it waits for
//! the daemon's write lock, up to the busy timeout, and cannot fail on a commit in between), and
//! every read is one statement in autocommit mode, so no transaction stays open while output is
//! written.

use rusqlite::{Connection, OptionalExtension, params};

use super::follow::statement_event;
use liaisond_model::{Class, OutboxRow, normalize_address};

use super::{EventRow, Store, StoreError, now_utc};

/// A statement's whole record, as the `statements` table holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementRecord {
    pub id: i64,
    pub tracking_id: String,
    /// The message that brought it.
    pub message: i64,
    /// When it arrived: the IMAP INTERNALDATE of its message, else when it was stored
    /// (RFC 3339; the INTERNALDATE keeps the server's offset).
    pub received_at: String,
    pub created_at: String,
    pub title: Option<String>,
    pub purpose: Option<String>,
    /// `YYYY-MM-DD`.
    pub deadline: Option<String>,
    pub from_org: Option<String>,
    pub sender: Option<String>,
    pub sender_verified: bool,
    pub verification: String,
    pub relationship: Option<String>,
    pub organization: Option<String>,
    pub route_rule: Option<String>,
    pub route_to: Vec<String>,
    pub route_cc: Vec<String>,
    pub route_reason: String,
    pub candidates: Vec<String>,
    pub no_ack: Option<String>,
    /// `sent to ADDRESS` or `not sent: REASON`.
    pub ack: Option<String>,
    pub assigned_to: Option<String>,
    /// `open` or `done`.
    pub state: String,
    pub done_at: Option<String>,
    pub done_by: Option<String>,
    pub done_reason: Option<String>,
    /// The message that answered it, when a reply closed it.
    pub done_message: Option<i64>,
    /// Its page in the datatracker, and when liaisond learnt it.
    pub datatracker_url: Option<String>,
    pub recorded_at: Option<String>,
    /// Whether it is owed a record there (statements held before schema 7 are not).
    pub record_expected: bool,
    /// The `Date:` field of the message that brought it (RFC 3339, the sender's offset): the
    /// statement's own date.
    pub date_header: Option<String>,
    /// `incoming` (sent to the IETF) or `outgoing` (sent by it: the other body's answer is
    /// awaited).
    pub direction: String,
}

/// A message that is, or belongs to, a statement (the original, follow-ups, duplicates).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RelatedMessage {
    pub id: i64,
    pub received_at: String,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub state: String,
    pub class: Option<Class>,
    pub class_reason: Option<String>,
}

/// A quarantined message and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuarantinedMessage {
    pub id: i64,
    pub received_at: String,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub size: i64,
    /// The error it was quarantined with.
    pub reason: Option<String>,
    pub attempts: i64,
    /// False when only its header was kept (an oversized message): reprocessing cannot help.
    pub raw_complete: bool,
}

/// A headline field of a statement that an operator may correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementField {
    Title,
    Purpose,
    Deadline,
    FromOrg,
}

impl StatementField {
    /// The column, and the field's name in events and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementField::Title => "title",
            StatementField::Purpose => "purpose",
            StatementField::Deadline => "deadline",
            StatementField::FromOrg => "from_org",
        }
    }
}

/// How an operator's edit of a statement went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Changed from this value.
    Changed {
        old: Option<String>,
    },
    /// It had that value already: nothing was written.
    Unchanged,
    NotFound,
}

/// How putting a message back to be processed again went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// Now pending; it was in this state.
    Requeued {
        was: String,
    },
    /// In a state it cannot be taken from (pending already), or only its header was kept.
    Refused {
        state: String,
        raw_complete: bool,
    },
    NotFound,
}

/// Assigns statement `id` to `to` (`None`: to nobody) in transaction `tx`: an event, and its
/// waiting reminders cancelled (they were addressed to the previous handler).
pub(crate) fn assign(tx: &Connection, id: i64, to: Option<&str>, by: &str, now: &str) -> rusqlite::Result<Edit> {
    let old: Option<Option<String>> =
        tx.query_row("SELECT assigned_to FROM statements WHERE id = ?1", params![id], |r| r.get(0)).optional()?;
    let Some(old) = old else { return Ok(Edit::NotFound) };
    let to = to.map(|a| normalize_address(a).unwrap_or_else(|| a.to_string()));
    let to = to.as_deref();
    if old.as_deref() == to {
        return Ok(Edit::Unchanged);
    }
    tx.execute("UPDATE statements SET assigned_to = ?2 WHERE id = ?1", params![id, to])?;
    super::follow::cancel_pending_reminders(tx, id, "the statement was assigned to someone else")?;
    let was = old.as_deref().unwrap_or("nobody");
    let (kind, detail) = match to {
        Some(to) => ("statement_assigned", format!("by {by}: to {to} (was {was})")),
        None => ("statement_unassigned", format!("by {by} (was {was})")),
    };
    statement_event(tx, id, kind, &detail, now)?;
    Ok(Edit::Changed { old })
}

/// Sets one headline field of statement `id` in transaction `tx` (see
/// [`Store::set_statement_field`]).
pub(crate) fn set_field(
    tx: &Connection,
    id: i64,
    field: StatementField,
    value: Option<&str>,
    by: &str,
    now: &str,
) -> rusqlite::Result<Edit> {
    // The column name comes from the closed enum, never from the user.
    let column = field.as_str();
    let old: Option<Option<String>> = tx
        .query_row(&format!("SELECT {column} FROM statements WHERE id = ?1"), params![id], |r| r.get(0))
        .optional()?;
    let Some(old) = old else { return Ok(Edit::NotFound) };
    if old.as_deref() == value {
        return Ok(Edit::Unchanged);
    }
    tx.execute(&format!("UPDATE statements SET {column} = ?2 WHERE id = ?1"), params![id, value])?;
    // A waiting reminder would say the old deadline, or remind of a statement that no longer
    // owes a reply.
    if matches!(field, StatementField::Deadline | StatementField::Purpose) {
        super::follow::cancel_pending_reminders(tx, id, &format!("the statement's {column} changed"))?;
    }
    let shown = |v: Option<&str>| v.map_or("none".to_string(), |v| format!("{v:?}"));
    let detail = format!("by {by}: {column} {} -> {}", shown(old.as_deref()), shown(value));
    statement_event(tx, id, "statement_changed", &detail, now)?;
    Ok(Edit::Changed { old })
}

/// The columns of [`StatementRecord`], in its order.
const RECORD_COLUMNS: &str = "s.id, s.tracking_id, s.message, COALESCE(m.internal_date, m.received_at), s.created_at,
    s.title, s.purpose, s.deadline, s.from_org, s.sender, s.sender_verified, s.verification, s.relationship,
    s.organization, s.route_rule, s.route_to, s.route_cc, s.route_reason, s.candidates, s.no_ack, s.ack,
    s.assigned_to, s.state, s.done_at, s.done_by, s.done_reason, s.done_message, s.datatracker_url, s.recorded_at,
    s.record_expected, m.date_header, s.direction";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<StatementRecord> {
    // JSON lists written by `write_judged`; an unreadable one (edited by hand) reads as empty.
    let list = |i: usize| -> rusqlite::Result<Vec<String>> {
        Ok(serde_json::from_str(&r.get::<_, String>(i)?).unwrap_or_default())
    };
    Ok(StatementRecord {
        id: r.get(0)?,
        tracking_id: r.get(1)?,
        message: r.get(2)?,
        received_at: r.get(3)?,
        created_at: r.get(4)?,
        title: r.get(5)?,
        purpose: r.get(6)?,
        deadline: r.get(7)?,
        from_org: r.get(8)?,
        sender: r.get(9)?,
        sender_verified: r.get(10)?,
        verification: r.get(11)?,
        relationship: r.get(12)?,
        organization: r.get(13)?,
        route_rule: r.get(14)?,
        route_to: list(15)?,
        route_cc: list(16)?,
        route_reason: r.get(17)?,
        candidates: list(18)?,
        no_ack: r.get(19)?,
        ack: r.get(20)?,
        assigned_to: r.get(21)?,
        state: r.get(22)?,
        done_at: r.get(23)?,
        done_by: r.get(24)?,
        done_reason: r.get(25)?,
        done_message: r.get(26)?,
        datatracker_url: r.get(27)?,
        recorded_at: r.get(28)?,
        record_expected: r.get(29)?,
        date_header: r.get(30)?,
        direction: r.get(31)?,
    })
}

/// The messages of statement `?1`: those linked to it, and the one that brought it (which a
/// reprocessing with other rules may have classified differently since).
const MESSAGES_OF_STATEMENT: &str =
    "SELECT id FROM messages WHERE statement = ?1 UNION SELECT message FROM statements WHERE id = ?1";

impl Store {
    /// Every statement's record, oldest first.
    pub fn statement_records(&self) -> Result<Vec<StatementRecord>, StoreError> {
        self.rows(
            &format!("SELECT {RECORD_COLUMNS} FROM statements s JOIN messages m ON m.id = s.message ORDER BY s.id"),
            &[],
            record,
        )
    }

    /// One statement's record.
    pub fn statement_record(&self, id: i64) -> Result<Option<StatementRecord>, StoreError> {
        Ok(self
            .rows(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM statements s JOIN messages m ON m.id = s.message WHERE s.id = ?1"
                ),
                params![id],
                record,
            )?
            .pop())
    }

    /// The messages received about a statement, oldest first.
    pub fn statement_messages(&self, id: i64) -> Result<Vec<RelatedMessage>, StoreError> {
        self.rows(
            &format!(
                "SELECT id, COALESCE(internal_date, received_at), message_id, from_addr, subject, state, class,
                 class_reason FROM messages WHERE id IN ({MESSAGES_OF_STATEMENT}) ORDER BY id"
            ),
            params![id],
            |r| {
                Ok(RelatedMessage {
                    id: r.get(0)?,
                    received_at: r.get(1)?,
                    message_id: r.get(2)?,
                    from: r.get(3)?,
                    subject: r.get(4)?,
                    state: r.get(5)?,
                    class: crate::class_at(r, 6)?,
                    class_reason: r.get(7)?,
                })
            },
        )
    }

    /// The mail sent (or to send) about a statement or any of its messages, oldest first.
    pub fn statement_outbox(&self, id: i64) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_where(
            &format!("o.statement = ?1 OR o.message IN ({MESSAGES_OF_STATEMENT}) ORDER BY o.id"),
            params![id],
        )
    }

    /// The events of a statement's messages (its own history is recorded on the message that
    /// brought it), in the order they happened.
    pub fn statement_events(&self, id: i64) -> Result<Vec<EventRow>, StoreError> {
        self.rows(
            &format!(
                "SELECT at, message, source, kind, detail FROM events WHERE message IN ({MESSAGES_OF_STATEMENT})
                 ORDER BY at, id"
            ),
            params![id],
            |r| {
                Ok(EventRow {
                    at: r.get(0)?,
                    message: r.get(1)?,
                    source: r.get(2)?,
                    kind: r.get(3)?,
                    detail: r.get(4)?,
                })
            },
        )
    }

    /// Assigns a statement to an address (`None`: to nobody), recording who did it and what it
    /// was before.
    pub fn assign_statement(&mut self, id: i64, to: Option<&str>, by: &str) -> Result<Edit, StoreError> {
        self.immediately(|s| assign(&s.conn, id, to, by, &now_utc()))
    }

    /// Sets one headline field of a statement (`None` clears it), recording the old and the
    /// new value. The value is the caller's to validate. What was read from the message
    /// (`readings`) stays as it was read.
    pub fn set_statement_field(
        &mut self,
        id: i64,
        field: StatementField,
        value: Option<&str>,
        by: &str,
    ) -> Result<Edit, StoreError> {
        self.immediately(|s| set_field(&s.conn, id, field, value, by, &now_utc()))
    }

    /// Quarantined messages, oldest first.
    pub fn quarantined_messages(&self) -> Result<Vec<QuarantinedMessage>, StoreError> {
        self.rows(
            "SELECT id, COALESCE(internal_date, received_at), message_id, from_addr, subject, size, state_detail,
             attempts, raw_complete FROM messages WHERE state = 'quarantined' ORDER BY id",
            &[],
            |r| {
                Ok(QuarantinedMessage {
                    id: r.get(0)?,
                    received_at: r.get(1)?,
                    message_id: r.get(2)?,
                    from: r.get(3)?,
                    subject: r.get(4)?,
                    size: r.get(5)?,
                    reason: r.get(6)?,
                    attempts: r.get(7)?,
                    raw_complete: r.get(8)?,
                })
            },
        )
    }

    /// Puts one processed, ignored or quarantined message back to `pending`, to be processed
    /// again. Its processing attempts start from zero (a message quarantined after
    /// [`super::MAX_PROCESSING_ATTEMPTS`] gets its chances again: the operator says the cause is
    /// fixed). Its class, statement and outbox rows stay until it is recorded again.
    pub fn requeue_message(&mut self, id: i64, by: &str) -> Result<Requeue, StoreError> {
        self.immediately(|s| {
            let found: Option<(String, bool, Option<String>)> = s
                .conn
                .query_row("SELECT state, raw_complete, state_detail FROM messages WHERE id = ?1", params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let Some((state, raw_complete, detail)) = found else { return Ok(Requeue::NotFound) };
            if state == "pending" || !raw_complete {
                return Ok(Requeue::Refused { state, raw_complete });
            }
            requeue(&s.conn, id, &state, detail.as_deref(), by)?;
            Ok(Requeue::Requeued { was: state })
        })
    }

    /// Puts every quarantined message whose bytes are complete back to `pending` (see
    /// [`Store::requeue_message`]), in one transaction. Returns their ids.
    pub fn requeue_quarantined(&mut self, by: &str) -> Result<Vec<i64>, StoreError> {
        self.immediately(|s| {
            let mut stmt = s.conn.prepare(
                "SELECT id, state_detail FROM messages WHERE state = 'quarantined' AND raw_complete ORDER BY id",
            )?;
            let found = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for (id, detail) in &found {
                requeue(&s.conn, *id, "quarantined", detail.as_deref(), by)?;
            }
            Ok(found.into_iter().map(|(id, _)| id).collect())
        })
    }
}

fn requeue(tx: &rusqlite::Connection, id: i64, was: &str, detail: Option<&str>, by: &str) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE messages SET state = 'pending', state_detail = NULL, attempts = 0, processed_at = NULL WHERE id = ?1",
        params![id],
    )?;
    let was = match detail {
        Some(d) => format!("{was}: {d}"),
        None => was.to_string(),
    };
    tx.execute(
        "INSERT INTO events (at, message, kind, detail) VALUES (?1, ?2, 'reprocess_requested', ?3)",
        params![now_utc(), id, format!("by {by} (was {was})")],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use liaisond_model::{Arrival, Draft, DraftKind, History, Outcome, Reading, Summary, Verdict};

    use super::*;
    use crate::testing::{arrival, temp_store};

    /// Stores `raw`, arrived (by its INTERNALDATE) on 2026-11-20 in New York.
    fn accept(s: &mut Store, raw: &str) -> i64 {
        let m = Arrival { internal_date: Some("2026-11-20T23:30:00-05:00".into()), ..arrival(raw.as_bytes()) };
        crate::testing::accept(s, &m)
    }

    fn judged(class: Class, related: Option<i64>) -> Verdict {
        Verdict {
            related_statement: related,
            sender: Some("a@example.org".into()),
            verification: "none".into(),
            organization: Some("ITU-T".into()),
            to: vec!["m@example.org".into()],
            route_reason: "to the manager".into(),
            ..Verdict::new(class, "test")
        }
    }

    /// A recorded statement and a follow-up of it: (statement id, statement message, follow-up).
    fn statement_with_follow_up(s: &mut Store) -> (i64, i64, i64) {
        let m = accept(s, "Subject: LS\r\n\r\nx");
        let reading = Reading {
            title: Some("LS on slicing".into()),
            deadline: Some("2027-03-15".into()),
            statement_json: "{}".into(),
            warnings_json: "[]".into(),
            ..Reading::default()
        };
        let j = judged(Class::Statement, None);
        s.record_judged(m, &Outcome::Processed, &Summary::default(), Some(&reading), Some(&|_| j.clone()), None)
            .expect("record");
        let sid = s.statements().expect("statements")[0].id;
        let f = accept(s, "Subject: Re: LS\r\n\r\ny");
        let j = judged(Class::FollowUp, Some(sid));
        s.record_judged(f, &Outcome::Processed, &Summary::default(), None, Some(&|_| j.clone()), None).expect("record");
        (sid, m, f)
    }

    #[test]
    fn a_statement_record_has_its_messages_and_history() {
        let (_d, mut s) = temp_store();
        let (sid, m, f) = statement_with_follow_up(&mut s);
        let r = s.statement_record(sid).expect("read").expect("found");
        assert_eq!(
            (r.message, r.title.as_deref(), r.deadline.as_deref()),
            (m, Some("LS on slicing"), Some("2027-03-15"))
        );
        assert_eq!(r.received_at, "2026-11-20T23:30:00-05:00", "the INTERNALDATE when there is one");
        assert_eq!(r.route_to, vec!["m@example.org"]);
        let ids: Vec<i64> = s.statement_messages(sid).expect("messages").iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![m, f]);
        let kinds: Vec<String> = s.statement_events(sid).expect("events").into_iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&"statement_recorded".to_string()), "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| *k == "processed").count(), 2, "both messages: {kinds:?}");
        assert_eq!(s.statement_record(sid + 100).expect("read"), None);
    }

    #[test]
    fn a_replys_commands_are_applied_once_even_when_it_is_processed_again() {
        use liaisond_model::{Action, Command, Target};
        let (_d, mut s) = temp_store();
        let (sid, _, _) = statement_with_follow_up(&mut s);
        let tracking_id = s.statement_record(sid).expect("read").expect("found").tracking_id;
        let reply = accept(&mut s, "Subject: Re: [LS] x\r\n\r\nDone: answered");
        let mut j = judged(Class::FollowUp, Some(sid));
        j.sender_verified = true;
        j.command_reply = true;
        j.commands = vec![
            Command {
                line: "Done: answered".into(),
                target: Some(Target { id: sid, tracking_id: tracking_id.clone() }),
                action: Ok(Action::Done("answered".into())),
            },
            Command { line: "Frob: x".into(), target: None, action: Err("`Frob` is not a command".into()) },
        ];
        let recorded = s
            .record_judged(reply, &Outcome::Processed, &Summary::default(), None, Some(&|_| j.clone()), None)
            .expect("record")
            .expect("recorded");
        assert!(recorded.judged.is_some());
        let r = s.statement_record(sid).expect("read").expect("found");
        assert_eq!((r.state.as_str(), r.done_reason.as_deref()), ("done", Some("answered")));
        assert!(r.done_by.as_deref().is_some_and(|b| b.contains(&format!("by mail, message {reply}"))), "{r:?}");
        // The refusal without a statement is an event on the reply itself.
        let refused =
            s.rows("SELECT count(*) FROM events WHERE message = ?1 AND kind = 'command_refused'", &[&reply], |r| {
                r.get::<_, i64>(0)
            });
        assert_eq!(refused.expect("count"), [1]);
        // An operator opens it again; the reply processed again does not close it again.
        assert_eq!(s.reopen(sid, "ana").expect("reopen"), crate::Change::Changed);
        assert!(matches!(s.requeue_message(reply, "ana").expect("requeue"), Requeue::Requeued { .. }));
        s.record_judged(reply, &Outcome::Processed, &Summary::default(), None, Some(&|_| j.clone()), None)
            .expect("record again");
        assert_eq!(s.statement_record(sid).expect("read").expect("found").state, "open");
        let kinds: Vec<String> =
            s.rows("SELECT kind FROM events WHERE message = ?1 ORDER BY id", &[&reply], |r| r.get(0)).expect("kinds");
        assert!(kinds.contains(&"commands_not_replayed".to_string()), "{kinds:?}");
    }

    #[test]
    fn a_notice_never_replaces_a_record_a_command_may() {
        use liaisond_model::DatatrackerRecord;
        let (_d, mut s) = temp_store();
        let (sid, _, _) = statement_with_follow_up(&mut s);
        let record =
            |n: u32| DatatrackerRecord { url: format!("https://datatracker.ietf.org/liaison/{n}/"), number: n };
        let url = |s: &Store| s.statement_record(sid).expect("read").expect("found").datatracker_url;
        s.immediately(|st| {
            crate::follow::record_in_datatracker(
                &st.conn,
                sid,
                &record(1),
                "a notice",
                crate::follow::Replace::Never,
                "t",
            )
        })
        .expect("record");
        assert_eq!(url(&s).as_deref(), Some("https://datatracker.ietf.org/liaison/1/"));
        s.immediately(|st| {
            crate::follow::record_in_datatracker(
                &st.conn,
                sid,
                &record(2),
                "a notice",
                crate::follow::Replace::Never,
                "t",
            )
        })
        .expect("kept");
        assert_eq!(url(&s).as_deref(), Some("https://datatracker.ietf.org/liaison/1/"), "a notice replaced it");
        s.immediately(|st| {
            crate::follow::record_in_datatracker(
                &st.conn,
                sid,
                &record(2),
                "Recorded:",
                crate::follow::Replace::Always,
                "t",
            )
        })
        .expect("replaced");
        assert_eq!(url(&s).as_deref(), Some("https://datatracker.ietf.org/liaison/2/"));
    }

    #[test]
    fn edits_record_the_old_and_new_value() {
        let (_d, mut s) = temp_store();
        let (sid, _, _) = statement_with_follow_up(&mut s);
        assert_eq!(
            s.set_statement_field(sid, StatementField::Deadline, Some("2027-04-01"), "ana").expect("set"),
            Edit::Changed { old: Some("2027-03-15".into()) }
        );
        assert_eq!(
            s.set_statement_field(sid, StatementField::Deadline, Some("2027-04-01"), "ana").expect("set"),
            Edit::Unchanged
        );
        assert_eq!(
            s.set_statement_field(sid, StatementField::Deadline, None, "ana").expect("clear"),
            Edit::Changed { old: Some("2027-04-01".into()) }
        );
        assert_eq!(s.statement_record(sid).expect("read").expect("found").deadline, None);
        assert_eq!(
            s.assign_statement(sid, Some("m2@example.org"), "ana").expect("assign"),
            Edit::Changed { old: None }
        );
        assert_eq!(
            s.assign_statement(sid, None, "bob").expect("clear"),
            Edit::Changed { old: Some("m2@example.org".into()) }
        );
        assert_eq!(s.assign_statement(sid + 100, None, "bob").expect("missing"), Edit::NotFound);
        let details: Vec<String> =
            s.statement_events(sid).expect("events").into_iter().filter_map(|e| e.detail).collect();
        assert!(details.contains(&"by ana: deadline \"2027-03-15\" -> \"2027-04-01\"".to_string()), "{details:?}");
        assert!(details.contains(&"by ana: deadline \"2027-04-01\" -> none".to_string()), "{details:?}");
        assert!(details.contains(&"by ana: to m2@example.org (was nobody)".to_string()), "{details:?}");
        assert!(details.contains(&"by bob (was m2@example.org)".to_string()), "{details:?}");
    }

    #[test]
    fn a_statement_read_differently_when_processed_again_is_closed() {
        let (_d, mut s) = temp_store();
        let m = accept(&mut s, "Subject: LS\r\n\r\nx");
        let judge = |_: &dyn History| judged(Class::Statement, None);
        s.record_judged(m, &Outcome::Processed, &Summary::default(), None, Some(&judge), None).expect("first");
        let st = s.statements().expect("statements");
        assert_eq!(st[0].state, "open");
        s.requeue_message(m, "ana").expect("requeue");
        let judge = |_: &dyn History| judged(Class::Other, None);
        s.record_judged(m, &Outcome::Processed, &Summary::default(), None, Some(&judge), None).expect("again");
        let r = s.statement_record(st[0].id).expect("record").expect("there");
        assert_eq!(r.state, "done", "no reminders or digest lines for what is no longer a statement");
        assert!(r.done_reason.as_deref().is_some_and(|w| w.contains("now read as other")), "{r:?}");
    }

    #[test]
    fn changing_deadline_purpose_or_handler_cancels_waiting_reminders() {
        let (_d, mut s) = temp_store();
        let m = accept(&mut s, "Subject: LS\r\n\r\nx");
        let judge = |_: &dyn History| judged(Class::Statement, None);
        s.record_judged(m, &Outcome::Processed, &Summary::default(), None, Some(&judge), None).expect("record");
        let id = s.statements().expect("statements")[0].id;
        s.set_statement_field(id, StatementField::Deadline, Some("2027-03-01"), "ana").expect("deadline");
        let queue = |s: &mut Store, deadline: &str, step: &str| {
            let draft = Draft {
                kind: DraftKind::Reminder,
                message_id: format!("r.{deadline}.{step}@x"),
                date: String::new(),
                from: "us@x".into(),
                to: vec!["m@example.org".into()],
                cc: vec![],
                reply_to: vec![],
                subject: "reminder".into(),
                in_reply_to: None,
                references: vec![],
                auto_submitted: "auto-generated".into(),
                body: String::new(),
                attach_original: false,
                null_sender: false,
                receipt: false,
                about_sender: None,
                tracking_id: None,
            };
            let r = crate::ReminderToQueue { statement: id, deadline, step, due_on: deadline, draft: &draft };
            s.queue_reminder(&r).expect("queue")
        };
        let reminders = |s: &Store| {
            s.statement_outbox(id).expect("outbox").into_iter().filter(|o| o.kind == "reminder").collect::<Vec<_>>()
        };
        // Queued once; not for a deadline the statement does not have.
        assert!(queue(&mut s, "2027-03-01", "before-7"));
        assert!(!queue(&mut s, "2027-03-01", "before-7"), "once per deadline and step");
        assert!(!queue(&mut s, "2027-04-01", "before-7"), "not its deadline");
        // A new deadline: the waiting reminder (with the old date) is cancelled.
        s.set_statement_field(id, StatementField::Deadline, Some("2027-04-01"), "ana").expect("deadline");
        assert_eq!(reminders(&s).iter().map(|o| o.state.as_str()).collect::<Vec<_>>(), ["cancelled"]);
        assert!(queue(&mut s, "2027-04-01", "before-7"));
        // Another handler: cancelled, and the step may be decided again for the new one.
        s.assign_statement(id, Some("Other@Example.org"), "ana").expect("assign");
        assert_eq!(reminders(&s).iter().filter(|o| o.state == "cancelled").count(), 2);
        assert_eq!(s.statement_record(id).expect("r").expect("r").assigned_to.as_deref(), Some("other@example.org"));
        assert!(queue(&mut s, "2027-04-01", "before-7"), "decided again for the new handler");
        // Done: cancelled, and nothing more is queued.
        s.mark_done(id, "ana", "answered").expect("done");
        assert!(reminders(&s).iter().all(|o| o.state == "cancelled"));
        assert!(!queue(&mut s, "2027-04-01", "before-4"), "not for a done statement");
    }

    #[test]
    fn a_digest_slot_is_decided_once() {
        let (_d, mut s) = temp_store();
        assert!(s.record_digest("2026-11-23T08:00", "a", "b", None, "nothing").expect("first"));
        assert!(!s.record_digest("2026-11-23T08:00", "a", "c", None, "nothing").expect("again"));
        assert_eq!(s.last_digest().expect("last"), Some(("2026-11-23T08:00".into(), "b".into())));
    }

    #[test]
    fn a_statement_processed_again_is_not_a_duplicate_of_itself() {
        // Regression: judged against a history that held its own statement, a reprocessed
        // statement found itself by its Message-ID and was recorded as its own duplicate.
        let (_d, mut s) = temp_store();
        let raw = b"Message-ID: <ls42@itu.int>\r\nSubject: LS\r\n\r\nx";
        let m = crate::testing::accept(&mut s, &Arrival { message_id: Some("ls42@itu.int".into()), ..arrival(raw) });
        let judge = |h: &dyn History| match h.by_message_id("ls42@itu.int") {
            Some(known) => Verdict { related_statement: Some(known.id), ..judged(Class::Duplicate, None) },
            None => judged(Class::Statement, None),
        };
        s.record_judged(m, &Outcome::Processed, &Summary::default(), None, Some(&judge), None).expect("first");
        let first = s.statements().expect("statements");
        assert_eq!(first.len(), 1);
        assert_eq!(s.requeue_message(m, "ana").expect("requeue"), Requeue::Requeued { was: "processed".into() });
        s.record_judged(m, &Outcome::Processed, &Summary::default(), None, Some(&judge), None).expect("again");
        assert_eq!(s.message_class(m).expect("class").0, Some(Class::Statement));
        assert_eq!(s.statements().expect("statements"), first, "the same row and tracking ID");
    }

    #[test]
    fn requeueing_takes_decided_messages_back_to_pending_once() {
        let (_d, mut s) = temp_store();
        let (_, m, _) = statement_with_follow_up(&mut s);
        let q = accept(&mut s, "garbage");
        s.record_outcome(q, &Outcome::Quarantined { error: "bad".into() }, &Summary::default(), None).expect("q");
        s.begin_attempt(q).expect("attempt");
        let listed = s.quarantined_messages().expect("list");
        assert_eq!((listed.len(), listed[0].reason.as_deref(), listed[0].attempts), (1, Some("bad"), 2));
        assert_eq!(s.requeue_quarantined("ana").expect("all"), vec![q]);
        assert!(s.quarantined_messages().expect("list").is_empty());
        assert_eq!(s.pending_message_ids(None).expect("pending"), vec![q]);
        assert_eq!(s.load(q).expect("load").attempts, 0, "its attempts start again");
        assert_eq!(
            s.requeue_message(q, "ana").expect("again"),
            Requeue::Refused { state: "pending".into(), raw_complete: true }
        );
        assert_eq!(s.requeue_message(m, "ana").expect("processed"), Requeue::Requeued { was: "processed".into() });
        assert_eq!(s.requeue_message(9999, "ana").expect("missing"), Requeue::NotFound);
        // The statement's record and tracking ID stay while it waits.
        assert_eq!(s.statements().expect("statements").len(), 1);
    }
}
