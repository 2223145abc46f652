//! `liaisond outbox list|retry|cancel`: the mail liaisond sends, and an operator's hand on it.

use std::io::Write;

use super::{EX_OK, open_existing, output, truncate};
use crate::config::Config;

const OUTBOX_STATES: &[&str] = &["pending", "sending", "sent", "failed", "uncertain", "cancelled"];

pub(super) fn list(config: Config, states: &[String], limit: usize, json: bool) -> anyhow::Result<u8> {
    for s in states {
        if !OUTBOX_STATES.contains(&s.as_str()) {
            let why = format!("`{s}` is not an outbox state (one of {})", OUTBOX_STATES.join(", "));
            return Err(output::Refused::Usage(why).into());
        }
    }
    let store = super::open_read_only(&config)?;
    let states: Vec<&str> = states.iter().map(String::as_str).collect();
    let rows = store.outbox_rows(&states, limit)?;
    let mut out = output::stdout();
    if json {
        for r in &rows {
            output::json_line(&mut out, r)?;
        }
        return Ok(EX_OK);
    }
    writeln!(
        out,
        "{:>5}  {:<12} {:<10} {:<13} {:>3}  {:<34} SUBJECT / LAST ERROR",
        "ID", "KIND", "STATE", "STATEMENT", "TRY", "TO"
    )?;
    for r in &rows {
        let detail = match (&r.last_error, r.state.as_str()) {
            (Some(e), "pending" | "failed" | "uncertain") => e.clone(),
            _ => r.subject.clone(),
        };
        writeln!(
            out,
            "{:>5}  {:<12} {:<10} {:<13} {:>3}  {:<34} {}",
            r.id,
            r.kind,
            r.state,
            r.tracking_id.as_deref().unwrap_or("-"),
            r.attempts,
            truncate(&r.recipients.join(", "), 34),
            truncate(&detail, 90)
        )?;
    }
    if rows.is_empty() {
        writeln!(out, "(nothing)")?;
    }
    Ok(EX_OK)
}

pub(super) fn change(config: Config, id: i64, retry: bool) -> anyhow::Result<u8> {
    let mut store = open_existing(&config)?;
    let by = output::operator(None);
    let before = if retry { store.retry_outbox(id, &by)? } else { store.cancel_outbox(id, &by)? };
    let verb = if retry { "queued again (the daemon sends it within seconds)" } else { "cancelled" };
    match before {
        Some(state) => {
            writeln!(std::io::stdout(), "outbox item {id}: {verb} (it was {state})")?;
            Ok(EX_OK)
        }
        None => match store.outbox_row(id)? {
            None => Err(output::Refused::NotFound(format!("there is no outbox item {id}")).into()),
            Some(r) => anyhow::bail!(
                "outbox item {id} is {}; only {} items can be {}",
                r.state,
                if retry { "failed, uncertain or cancelled" } else { "pending, failed or uncertain" },
                if retry { "retried" } else { "cancelled" }
            ),
        },
    }
}
