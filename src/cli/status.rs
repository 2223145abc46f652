//! `liaisond status`: what the daemon has done, from the database.

use std::io::Write;

use super::{EX_OK, open_read_only};
use crate::config::Config;

pub(super) fn status(config: Config, json: bool) -> anyhow::Result<u8> {
    let store = open_read_only(&config)?;
    let status = store.status(10)?;
    let mut out = super::output::stdout();
    if json {
        serde_json::to_writer_pretty(&mut out, &status)?;
        writeln!(out)?;
        return Ok(EX_OK);
    }
    writeln!(out, "database: {} (schema {})", config.database.display(), status.schema_version)?;
    let counts: Vec<String> = status.by_outcome.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(out, "messages: {} ({})", status.messages, counts.join(", "))?;
    writeln!(out, "server actions still owed: {}", status.pending_server_actions)?;
    let outbox: Vec<String> = status.outbox.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(out, "outbox: {}", if outbox.is_empty() { "empty".to_string() } else { outbox.join(", ") })?;
    if !status.outbox_problems.is_empty() {
        writeln!(out, "outgoing mail that needs an operator (`liaisond outbox retry|cancel ID`):")?;
        for r in &status.outbox_problems {
            writeln!(
                out,
                "  {} {} {} to {}: {}",
                r.id,
                r.state,
                r.kind,
                r.recipients.join(", "),
                r.last_error.as_deref().unwrap_or("")
            )?;
        }
    }
    writeln!(out, "sources:")?;
    if status.cursors.is_empty() {
        writeln!(out, "  (none polled yet)")?;
    }
    for c in &status.cursors {
        writeln!(
            out,
            "  {} {}: uidvalidity {}, last uid {}, last successful poll {}{}",
            c.source,
            c.mailbox,
            c.uidvalidity.map_or("-".into(), |v| v.to_string()),
            c.last_uid,
            c.last_poll_ok.as_deref().unwrap_or("never"),
            c.last_error
                .as_ref()
                .map(|e| format!("\n    last error ({}): {e}", c.last_error_at.as_deref().unwrap_or("?")))
                .unwrap_or_default()
        )?;
    }
    writeln!(out, "recent events:")?;
    for e in &status.last_events {
        writeln!(
            out,
            "  {} {:<22} {}{}",
            e.at,
            e.kind,
            e.message.map(|m| format!("message {m}: ")).unwrap_or_default(),
            e.detail.as_deref().unwrap_or("")
        )?;
    }
    Ok(EX_OK)
}
