//! Commands in replies, applied: each one a person's reply carried (`Done:`, `Deadline:`, ...),
//! decided by the core's `command::decide`, done in the transaction that records the reply,
//! through the same functions as the operator's commands, so the history reads the same.

use liaisond_model::{Action, Command, CommandResult};
use rusqlite::{Connection, params};

use crate::follow::{Replace, close, record_in_datatracker, reopen, statement_event};
use crate::operator::{self, Edit, StatementField};

/// Applies one command of a reply (`by`: who, and in which message) in transaction `tx`, and
/// says what it did. A refused command changes nothing and is an event.
pub(crate) fn apply(
    tx: &Connection,
    command: &Command,
    message: i64,
    by: &str,
    now: &str,
) -> rusqlite::Result<CommandResult> {
    let tracking_id = command.target.as_ref().map(|t| t.tracking_id.clone());
    let result = |outcome| CommandResult { line: command.line.clone(), tracking_id: tracking_id.clone(), outcome };
    let (target, action) = match (&command.target, &command.action) {
        (Some(target), Ok(action)) => (target, action),
        (target, Err(_)) | (target @ None, Ok(_)) => {
            let why = match &command.action {
                Err(why) => why.clone(),
                Ok(_) => "no statement is named".to_string(),
            };
            let detail = format!("{by}: `{}`: {why}", command.line);
            match target {
                Some(t) => statement_event(tx, t.id, "command_refused", &detail, now)?,
                None => {
                    tx.execute(
                        "INSERT INTO events (at, message, kind, detail) VALUES (?1, ?2, 'command_refused', ?3)",
                        params![now, message, detail],
                    )?;
                }
            }
            return Ok(result(Err(why)));
        }
    };
    let (sid, tid) = (target.id, target.tracking_id.as_str());
    let changed = |edit: Edit, what: String, same: String| match edit {
        Edit::Changed { .. } => Ok(what),
        Edit::Unchanged => Ok(same),
        Edit::NotFound => Err(format!("there is no statement {tid}")),
    };
    let outcome = match action {
        Action::Done(reason) => Ok(if close(tx, sid, by, reason, None, now)? {
            format!("{tid} is done ({reason})")
        } else {
            format!("{tid} was done already; nothing changed")
        }),
        Action::NoReply(reason) => {
            let reason = format!("no reply intended: {reason}");
            Ok(if close(tx, sid, by, &reason, None, now)? {
                format!("{tid} is done ({reason})")
            } else {
                format!("{tid} was done already; nothing changed")
            })
        }
        Action::Deadline(date) => {
            let shown = date.as_deref().unwrap_or("none");
            let edit = operator::set_field(tx, sid, StatementField::Deadline, date.as_deref(), by, now)?;
            changed(
                edit,
                format!("the deadline of {tid} is {shown}"),
                format!("the deadline of {tid} was {shown} already"),
            )
        }
        Action::Assign(to) => {
            let shown = to.as_deref().unwrap_or("nobody (its route)");
            let edit = operator::assign(tx, sid, to.as_deref(), by, now)?;
            changed(edit, format!("{tid} is assigned to {shown}"), format!("{tid} was assigned to {shown} already"))
        }
        Action::Recorded(record) => {
            Ok(if record_in_datatracker(tx, sid, record, &format!("by {by}"), Replace::Always, now)? {
                format!("{tid} is recorded as {}", record.url)
            } else {
                format!("{tid} was recorded as {} already", record.url)
            })
        }
        Action::Reopen => Ok(if reopen(tx, sid, by, now)? {
            format!("{tid} is open again")
        } else {
            format!("{tid} was open already; nothing changed")
        }),
    };
    Ok(result(outcome))
}
