//! `liaisond status`: what the daemon has done, from the database.

use std::io::Write;

use super::{EX_OK, open_read_only};
use crate::config::Config;

/// What `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Openmetrics,
}

pub(super) fn status(config: Config, format: Format) -> anyhow::Result<u8> {
    let store = open_read_only(&config)?;
    let status = store.status(10)?;
    drop(store);
    // Holding the instance lock is what makes a daemon the daemon (`doctor` asks the same).
    let running = liaisond_store::health::daemon_holds_lock(&config.database).unwrap_or(false);
    let mut out = super::output::stdout();
    match format {
        Format::Text => {}
        Format::Openmetrics => {
            out.write_all(crate::metrics::render(&status, running).as_bytes())?;
            return Ok(EX_OK);
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &json(&config, &status, running))?;
            writeln!(out)?;
            return Ok(EX_OK);
        }
    }
    writeln!(out, "daemon: {}", if running { "running" } else { "not running" })?;
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

/// `status --json`: one object, counts as objects keyed by state (issue 16: they were
/// `[name, count]` pairs), with whether the daemon runs and each mailbox's last poll.
fn json(config: &Config, s: &liaisond_store::StatusReport, running: bool) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let counts = |pairs: &[(String, i64)]| -> Value {
        Value::Object(pairs.iter().map(|(k, n)| (k.clone(), Value::from(*n))).collect::<Map<_, _>>())
    };
    let mut by_class = Map::new();
    for (state, class, n) in &s.by_state_and_class {
        let entry = by_class.entry(state.clone()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(class.clone().unwrap_or_else(|| "none".into()), Value::from(*n));
        }
    }
    json!({
        "database": config.database,
        "schema_version": s.schema_version,
        "daemon_running": running,
        "messages": { "total": s.messages, "by_state": counts(&s.by_outcome), "by_state_and_class": by_class },
        "statements": { "by_state": counts(&s.statements), "overdue": s.statements_overdue },
        "outbox": { "by_state": counts(&s.outbox), "problems": s.outbox_problems },
        "server_actions_owed": s.pending_server_actions,
        "acknowledgement_pauses": s.ack_pauses,
        "sources": s.cursors,
        "oldest_pending": s.oldest_pending.iter().map(|(source, at)| json!({ "source": source, "received_at": at })).collect::<Vec<_>>(),
        "recent_events": s.last_events,
    })
}
