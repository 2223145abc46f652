//! `liaisond run`: the daemon in the foreground (systemd starts it so), or with `--once` one
//! pass over every source, printing what it recorded.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use liaisond_model::Class;
use liaisond_store::{MessageOverview, Store};
use tokio_util::sync::CancellationToken;

use super::{EX_FAILURE, EX_OK, runtime, truncate};
use crate::config::Config;
use crate::daemon::RunOptions;
use crate::daemon::progress::Progress;

/// How long a stopping daemon may take to finish the message in hand before it exits anyway.
/// (Every write is transactional, so exiting is safe; this only bounds the wait.)
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub(super) fn run(config: Config, once: bool) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let started = liaisond_store::now_utc();
    let database = config.database.clone();
    let busy = config.busy_timeout;
    // `run --once` on a terminal: a progress bar instead of a line per message.
    let progress = (once && std::io::stderr().is_terminal()).then(Progress::default);
    let bar = progress.clone().map(ProgressBar::start);
    let clock = std::time::Instant::now();
    let report = rt.block_on(async {
        let shutdown = CancellationToken::new();
        let options = RunOptions { once, signals: true, progress, ..RunOptions::default() };
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
    if let Some(bar) = bar {
        bar.finish();
    }
    let report = report?;
    if once {
        let store = Store::open(&database, busy)?;
        let recorded = store.message_overview(Some(&started))?;
        print_recorded(&recorded, report.already_known, &database, clock.elapsed());
    }
    if !report.failed_sources.is_empty() {
        for f in &report.failed_sources {
            eprintln!("liaisond: source failed: {f}");
        }
        return Ok(EX_FAILURE);
    }
    Ok(EX_OK)
}

/// Above this many, `run --once` prints the summary line alone: a table of thousands of rows
/// (a first sync) helps nobody; `statements list` and `messages quarantined` show them.
const MAX_TABLE_ROWS: usize = 100;

fn print_recorded(recorded: &[MessageOverview], already_known: usize, database: &Path, took: Duration) {
    let mut out = std::io::stdout().lock();
    let bytes: i64 = recorded.iter().map(|m| m.size).sum();
    let secs = took.as_secs_f64().max(0.001);
    let _ = writeln!(
        out,
        "Recorded {} new message(s) in {} ({} already known), {:.1} MiB in {:.1} s ({:.0} messages/s).",
        recorded.len(),
        database.display(),
        already_known,
        bytes as f64 / 1048576.0,
        secs,
        recorded.len() as f64 / secs
    );
    if recorded.is_empty() {
        return;
    }
    if recorded.len() > MAX_TABLE_ROWS {
        let quarantined = recorded.iter().filter(|m| m.state == "quarantined").count();
        let _ = writeln!(
            out,
            "{quarantined} quarantined; `liaisond statements list` and `liaisond messages quarantined` show them."
        );
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

/// The progress bar of a sync on a terminal, redrawn ten times a second from [`Progress`] by a
/// thread of its own (the runtime's threads do the work).
struct ProgressBar {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl ProgressBar {
    fn start(progress: Progress) -> ProgressBar {
        use std::sync::atomic::Ordering;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            let bar = super::output::progress_bar(0, "{msg}");
            let started = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let entries = progress.snapshot();
                if !entries.is_empty() {
                    let total: usize = entries.iter().map(|e| e.total).sum();
                    let stored: usize = entries.iter().map(|e| e.stored).sum();
                    let mib = entries.iter().map(|e| e.bytes).sum::<u64>() as f64 / 1048576.0;
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    let names: Vec<&str> = entries.iter().map(|e| e.mailbox.as_str()).collect();
                    bar.set_length(total as u64);
                    bar.set_position(stored as u64);
                    bar.set_message(format!(
                        "stored from {}: {:.0} messages/s, {:.1} MiB/s",
                        names.join(", "),
                        stored as f64 / secs,
                        mib / secs
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        ProgressBar { done, thread }
    }

    fn finish(self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
