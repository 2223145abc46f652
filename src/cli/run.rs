//! `liaisond run`: the daemon in the foreground (systemd starts it so), or with `--once` one
//! pass over every source, printing what it recorded.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use liaisond_model::Class;
use liaisond_store::{MessageOverview, Store};
use tokio_util::sync::CancellationToken;

use super::{EX_FAILURE, EX_OK, runtime, truncate};
use crate::config::Config;
use crate::daemon::RunOptions;

/// How long a stopping daemon may take to finish the message in hand before it exits anyway.
/// (Every write is transactional, so exiting is safe; this only bounds the wait.)
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub(super) fn run(config: Config, once: bool) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let started = liaisond_store::now_utc();
    let database = config.database.clone();
    let busy = config.busy_timeout;
    let report = rt.block_on(async {
        let shutdown = CancellationToken::new();
        let options = RunOptions { once, signals: true, ..RunOptions::default() };
        let run = crate::daemon::run(config, shutdown.clone(), options);
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => r,
            _ = async { shutdown.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                anyhow::bail!("did not stop within {} of the signal; exiting anyway", humantime::format_duration(SHUTDOWN_GRACE))
            }
        }
    });
    // A pipeline stage that overran its time limit may still occupy a blocking thread; do not
    // wait for it (everything it could write is transactional).
    rt.shutdown_timeout(Duration::from_secs(2));
    let report = report?;
    if once {
        let store = Store::open(&database, busy)?;
        let recorded = store.message_overview(Some(&started))?;
        print_recorded(&recorded, report.already_known, &database);
    }
    if !report.failed_sources.is_empty() {
        for f in &report.failed_sources {
            eprintln!("liaisond: source failed: {f}");
        }
        return Ok(EX_FAILURE);
    }
    Ok(EX_OK)
}

fn print_recorded(recorded: &[MessageOverview], already_known: usize, database: &Path) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Recorded {} new message(s) in {} ({} already known).",
        recorded.len(),
        database.display(),
        already_known
    );
    if recorded.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{:>5}  {:<11}  {:<10}  {:<12}  {:<30}  SUBJECT / REASON",
        "ID", "OUTCOME", "CLASS", "STATEMENT", "FROM"
    );
    for m in recorded {
        let what = match (&m.detail, &m.subject) {
            (Some(d), _) if m.state != "processed" => d.clone(),
            (_, Some(s)) => s.clone(),
            _ => "(no subject)".into(),
        };
        let _ = writeln!(
            out,
            "{:>5}  {:<11}  {:<10}  {:<12}  {:<30}  {}",
            m.id,
            m.state,
            m.class.map_or("-", Class::as_str),
            m.tracking_id.as_deref().unwrap_or("-"),
            truncate(m.from.as_deref().unwrap_or("-"), 30),
            truncate(&what, 80)
        );
    }
}
