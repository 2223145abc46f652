//! `liaisond messages quarantined|reprocess`: what could not be processed, and processing
//! messages again through the daemon's own path (`Ingestor::process_stored`) with the current
//! code and relationships data.
//!
//! Safe while the daemon runs: a message is put back to `pending` in one transaction, and the
//! store records an outcome only for a message that is still pending, so when the daemon's
//! sweep picks the same message up, one of the two records it and the other changes nothing.
//! A message keeps its tracking ID, and the outbox's unique (message, kind) index means no
//! second acknowledgement or notification is queued for it.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use super::output::{self, Refused, date_of};
use super::{EX_FAILURE, EX_OK, open_existing, runtime, truncate};
use crate::config::Config;
use crate::ingest::Ingestor;
use anyhow::Context;
use liaisond_core::parse::Parsed;
use liaisond_model::Class;
use liaisond_store::Requeue;

use crate::db::Db;

pub(super) fn quarantined(config: Config, json: bool) -> anyhow::Result<u8> {
    let store = super::open_read_only(&config)?;
    let rows = store.quarantined_messages()?;
    drop(store);
    let mut out = output::stdout();
    if json {
        for r in &rows {
            output::json_line(&mut out, r)?;
        }
        return Ok(EX_OK);
    }
    let header = format!("{:>5}  {:<10}  {:>5}  {:<30}  {:<30}  ", "ID", "RECEIVED", "TRIES", "FROM", "SUBJECT");
    let reason_width = output::terminal_width().map(|w| w.saturating_sub(header.chars().count()).max(30));
    writeln!(out, "{header}REASON")?;
    for r in &rows {
        let reason = r.reason.as_deref().unwrap_or("(no reason recorded)");
        writeln!(
            out,
            "{:>5}  {:<10}  {:>5}  {:<30}  {:<30}  {}",
            r.id,
            date_of(&r.received_at),
            r.attempts,
            truncate(r.from.as_deref().unwrap_or("-"), 30),
            truncate(r.subject.as_deref().unwrap_or("-"), 30),
            reason_width.map_or_else(|| reason.to_string(), |w| truncate(reason, w)),
        )?;
    }
    if output::to_terminal() {
        writeln!(out, "{} quarantined message(s); `liaisond messages reprocess ID|--all` tries again", rows.len())?;
    }
    Ok(EX_OK)
}

/// Puts the message (or every quarantined one) back to pending and processes it now.
pub(super) fn reprocess(config: Config, id: Option<i64>, by: &str) -> anyhow::Result<u8> {
    // Everything that can fail on the configuration (the relationships data, the templates)
    // fails before anything is changed.
    let reader = crate::reader::Reader::from_config(&config, None)?;
    let mut store = open_existing(&config)?;
    let ids = match id {
        Some(id) => match store.requeue_message(id, by)? {
            Requeue::Requeued { .. } => vec![id],
            Requeue::NotFound => return Err(Refused::NotFound(format!("there is no message {id}")).into()),
            Requeue::Refused { raw_complete: false, .. } => anyhow::bail!(
                "message {id} was over the size limit and only its header was kept: there is nothing to process again"
            ),
            Requeue::Refused { state, .. } => {
                anyhow::bail!("message {id} is {state}: it will be processed (by the daemon) without being asked")
            }
        },
        None => store.requeue_quarantined(by)?,
    };
    let mut out = output::stdout();
    if ids.is_empty() {
        writeln!(out, "no quarantined message to process again")?;
        return Ok(EX_OK);
    }
    let rt = runtime()?;
    let ingestor = Ingestor::new(Db::new(store), config.limits.clone(), Some(crate::reader::ReaderHandle::new(reader)));
    // Many messages on a terminal: a progress bar while they are read again.
    let bar = (ids.len() > 1 && std::io::stderr().is_terminal())
        .then(|| output::progress_bar(ids.len() as u64, "processed again, {per_sec}"));
    let results = rt.block_on(async {
        let mut results = Vec::new();
        for &id in &ids {
            let recorded = ingestor.process_stored(id, "reprocess").await.is_some();
            let summary = ingestor.db().call(move |s| s.message_summary(id)).await;
            results.push((id, recorded, summary));
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
        results
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    rt.shutdown_timeout(Duration::from_secs(2));
    let mut code = EX_OK;
    for (id, recorded, summary) in results {
        let Ok(Some(m)) = summary else {
            writeln!(out, "message {id}: processed again, but cannot be read back")?;
            code = EX_FAILURE;
            continue;
        };
        let what = match (m.state.as_str(), &m.detail) {
            ("processed", _) => format!(
                "processed: {}{}",
                m.class.map_or("-", Class::as_str),
                m.tracking_id.as_deref().map(|t| format!(" {t}")).unwrap_or_default()
            ),
            (state, Some(detail)) => format!("{state}: {detail}"),
            (state, None) => state.to_string(),
        };
        match (recorded, m.state.as_str()) {
            (true, _) => writeln!(out, "message {id}: {what}")?,
            // The daemon's sweep recorded it first (same code, same result).
            (false, state) if state != "pending" => writeln!(out, "message {id}: {what} (recorded by the daemon)")?,
            (false, _) => {
                writeln!(out, "message {id}: could not be recorded now; it stays pending for the daemon")?;
                code = EX_FAILURE;
            }
        }
    }
    Ok(code)
}

pub(super) fn show(config: Config, id: i64) -> anyhow::Result<u8> {
    let store = super::open_read_only(&config)?;
    let Some(message) = store.message_summary(id)? else {
        return Err(output::Refused::NotFound(format!("there is no message {id}")).into());
    };
    let reading = store.reading(id)?;
    let (_, class_reason, _) = store.message_class(id)?;
    let value = serde_json::json!({
        "id": message.id,
        "message_id": message.message_id,
        "subject": message.subject,
        "from": message.from,
        "size": message.size,
        "state": message.state,
        "state_detail": message.detail,
        "classification": message.class,
        "classification_reason": class_reason,
        "tracking_id": message.tracking_id,
        "statement": reading.as_ref().and_then(|r| serde_json::from_str::<serde_json::Value>(&r.statement_json).ok()),
        "attachments": reading.as_ref().map(|r| r.attachments.clone()).unwrap_or_default(),
        "warnings": reading.as_ref().and_then(|r| serde_json::from_str::<serde_json::Value>(&r.warnings_json).ok()),
        "acknowledgement": store.statement_ack(id)?,
        "outbox": store.outbox_for_message(id)?,
    });
    let mut out = output::stdout();
    serde_json::to_writer_pretty(&mut out, &value)?;
    writeln!(out)?;
    Ok(EX_OK)
}

pub(super) fn attachment(config: Config, id: i64, number: usize, output: Option<&Path>) -> anyhow::Result<u8> {
    if output.is_none() && super::output::to_terminal() {
        // The bytes are the sender's: on a terminal they could be escape sequences (or
        // megabytes of binary).
        return Err(super::output::Refused::Usage(
            "refusing to write an attachment to a terminal: give -o FILE, or redirect standard output".into(),
        )
        .into());
    }
    let store = super::open_read_only(&config)?;
    let recorded = store.attachments(id)?;
    let Some(want) = number.checked_sub(1).and_then(|i| recorded.get(i)) else {
        let why = format!("message {id} has {} recorded attachment(s); there is no number {number}", recorded.len());
        return Err(output::Refused::NotFound(why).into());
    };
    let raw = store.raw_message(id)?;
    let parts = Parsed::new(&raw).content.attachments;
    // The position is the order the parser finds them in; the hash proves it is the same part.
    let Some(part) = parts.get(number - 1).filter(|p| p.sha256 == want.sha256) else {
        anyhow::bail!(
            "attachment {number} of message {id} ({}) could not be found again in the stored message with SHA-256 {}",
            want.filename,
            want.sha256
        );
    };
    match output {
        Some(path) => std::fs::write(path, &part.bytes).with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(&part.bytes)?,
    }
    eprintln!("{}: {} bytes, sha256 {}", liaisond_model::printable(&want.filename), part.bytes.len(), part.sha256);
    Ok(EX_OK)
}
