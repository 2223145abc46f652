//! The daemon: [`run`] is the one entry point, used by `main` and by the tests.
//!
//! It takes the instance lock, opens (and migrates) the database, finishes messages a previous
//! run left `pending`, then runs one task per source until `shutdown` is cancelled (or, with
//! `once`, until every source has been drained once). Cancellation is cooperative: a source
//! stops between messages, so the message in hand is either committed or left for next time.
//!
//! As a daemon (not `once`) it also runs the [`service`] notifier (READY, STATUS, WATCHDOG,
//! STOPPING for systemd), every loop with a heartbeat registered in one [`Liveness`], the
//! [`schedule`]r (reminders, digests), and, when `RunOptions::reload` is given (or
//! `RunOptions::signals` asks for SIGHUP), reloads the relationships data and the templates
//! each time it is notified: see [`reload`]. With `RunOptions::signals` it handles SIGTERM and
//! SIGINT itself ([`signals`]).
//!
//! **This module is the only place that spawns tasks** (`tests/layering.rs` checks it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use liaisond_store::{InstanceLock, Store};

use crate::config::Config;
use crate::db::Db;
use crate::ingest::{Ingestor, pending_grace};
use crate::outbox::{Sender, Transport};
use crate::reader::{Reader, ReaderHandle};
use crate::sources::SourceReport;
use crate::sources::imap::ImapSource;
use crate::sources::maildir::MaildirSource;
use schedule::Scheduler;
use service::{Liveness, Notifier};

pub mod progress;
pub mod reload;
pub mod schedule;
pub mod service;
pub mod signals;

#[derive(Clone, Default)]
pub struct RunOptions {
    /// Process what is waiting, then return.
    pub once: bool,
    /// The `liaisond` binary that runs the attachment extraction workers; default: this
    /// process's own executable (tests, whose executable is the test harness, name it).
    pub extractor_program: Option<PathBuf>,
    /// What time it is for reminders and digests; default: the system clock (tests set it).
    pub clock: Option<crate::daemon::schedule::Clock>,
    /// Each notification reloads the relationships data and the templates. `None`: no
    /// reloading, unless `signals` asks for it on SIGHUP.
    pub reload: Option<Arc<tokio::sync::Notify>>,
    /// Handle the signals ([`signals`]): SIGTERM and SIGINT cancel `shutdown`, SIGHUP reloads
    /// (not with `once`). The binary sets it; tests cancel `shutdown` themselves.
    pub signals: bool,
    /// Where the sources count what they stored of a sync (for a progress bar); the daemon
    /// makes its own for `STATUS=` when none is given.
    pub progress: Option<progress::Progress>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Messages stored for the first time.
    pub stored: usize,
    /// Messages seen again that were already stored.
    pub already_known: usize,
    /// Messages left pending by an earlier run and processed now.
    pub recovered: usize,
    /// Sources that ended with an error (only in `once` mode; the daemon retries forever).
    pub failed_sources: Vec<String>,
    /// Delivery attempts from the outbox (sent or not).
    pub send_attempts: usize,
}

/// How mail is sent, from the configuration (`None`: it is not). Fails when the SMTP server's
/// TLS settings cannot be prepared (the CA file, the system's roots).
pub fn transport(config: &Config) -> anyhow::Result<Option<Transport>> {
    Ok(match (&config.smtp, &config.outbox.directory) {
        (Some(smtp), _) => Some(Transport::Smtp(
            crate::outbox::Smtp::new(smtp.clone())
                .map_err(|e| anyhow::anyhow!("[smtp] in {}: {e}", config.path.display()))?,
        )),
        (None, Some(dir)) => Some(Transport::Directory(dir.clone())),
        (None, None) => None,
    })
}

/// Runs liaisond with `config` until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken, mut options: RunOptions) -> anyhow::Result<RunReport> {
    if options.signals {
        // Installed before anything else starts: a SIGHUP that arrives before the handler
        // would end the process (its default action).
        let signals = signals::Signals::install()?;
        let reload = Arc::new(tokio::sync::Notify::new());
        if !options.once {
            options.reload.get_or_insert_with(|| reload.clone());
        }
        tokio::spawn(signals.serve(shutdown.clone(), options.reload.clone().unwrap_or(reload)));
    }
    crate::tls::install_crypto_provider();
    let _lock = InstanceLock::acquire(&config.database)?;
    let store = Store::open(&config.database, config.busy_timeout)?;
    let db = Db::new(store);
    let reader = Reader::from_config(&config, options.extractor_program.clone())?;
    let (again, uncertain) = db.call(|s| s.recover_outbox()).await?;
    if again + uncertain > 0 {
        tracing::warn!(
            again,
            uncertain,
            "mail that an earlier run was sending: queued again when its data had not gone out, else marked uncertain"
        );
    }
    let readers = ReaderHandle::new(reader);
    // Every long-running loop registers here; the notifier pings the watchdog only while
    // each one beats (see `service`).
    let watchdog = if options.once { None } else { crate::daemon::service::watchdog_interval() };
    let liveness = Liveness::new(watchdog);
    let notifier = Notifier::new();
    let sender = transport(&config)?.map(|t| Sender::new(db.clone(), t, config.outbox.clone()));
    let progress = options.progress.clone().unwrap_or_default();
    let mut ingestor =
        Ingestor::new(db.clone(), config.limits.clone(), Some(readers.clone())).with_progress(progress.clone());
    let current: crate::daemon::schedule::CurrentReader = {
        let readers = readers.clone();
        Arc::new(move || readers.current())
    };
    let mut scheduler = Scheduler::new(
        db.clone(),
        config.follow.clone(),
        current,
        options.clock.clone().unwrap_or_else(crate::daemon::schedule::system_clock),
    );
    if let Some(sender) = &sender {
        ingestor = ingestor.with_outbox_waker(sender.waker());
        scheduler = scheduler.with_sender_waker(sender.waker());
    } else {
        tracing::warn!("neither [smtp] nor outbox.directory is configured: mail to send waits in the outbox");
    }
    let mut report = RunReport { recovered: ingestor.process_pending(Duration::ZERO).await?, ..RunReport::default() };
    if report.recovered > 0 {
        tracing::info!(count = report.recovered, "processed messages left pending by an earlier run");
    }
    // The daemon sends all the time; `once` sends what is due after the sources are drained.
    let sending = match (&sender, options.once) {
        (Some(sender), false) => {
            let sender = sender.clone().with_heartbeat(liveness.register("sender"));
            let token = shutdown.child_token();
            Some(tokio::spawn(async move { sender.run(token, false).await }))
        }
        _ => None,
    };

    let once = options.once;
    let mut tasks: JoinSet<(String, Result<SourceReport, String>)> = JoinSet::new();
    for cfg in config.imap.iter().cloned() {
        let name = cfg.name.clone();
        let heartbeat = liveness.register_source(format!("imap '{name}'"));
        let source = ImapSource::new(cfg, ingestor.clone().with_heartbeat(heartbeat))
            .with_context(|| format!("IMAP source {name}"))?;
        let token = shutdown.child_token();
        tasks.spawn(async move { (name, source.run(token, once).await.map_err(|e| e.to_string())) });
    }
    for cfg in config.maildir.iter().cloned() {
        let name = cfg.name.clone();
        let heartbeat = liveness.register_source(format!("maildir '{name}'"));
        let source = MaildirSource::new(cfg, ingestor.clone().with_heartbeat(heartbeat));
        let token = shutdown.child_token();
        tasks.spawn(async move { (name, source.run(token, once).await.map_err(|e| e.to_string())) });
    }
    if config.imap.is_empty() && config.maildir.is_empty() {
        tracing::warn!("no source is configured; only messages given to `liaisond ingest` will arrive");
    }
    let scheduling = (!options.once).then(|| {
        let scheduler = scheduler.clone().with_heartbeat(liveness.register("scheduler"));
        let token = shutdown.child_token();
        tokio::spawn(async move { scheduler.run(token, false).await })
    });
    let metrics = match (&config.metrics_textfile, options.once) {
        (Some(path), false) => {
            let (path, db, heartbeat) = (path.clone(), db.clone(), liveness.register("metrics"));
            let token = shutdown.child_token();
            Some(tokio::spawn(async move { write_metrics(path, db, heartbeat, token).await }))
        }
        _ => None,
    };
    if !options.once {
        // Messages that `liaisond ingest` stored (it does not read them), or that a source left
        // pending after a write error or a shutdown, are read here.
        let ingestor = ingestor.clone().with_heartbeat(liveness.register("pending sweep"));
        let token = shutdown.child_token();
        let grace = pending_grace(&config.limits);
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = ingestor.heartbeat().sleep(grace) => {}
                    _ = token.cancelled() => return ("pending-sweep".to_string(), Ok(SourceReport::default())),
                }
                if let Err(e) = ingestor.process_pending(grace).await {
                    tracing::warn!(error = %e, "processing pending messages failed; will retry");
                }
            }
        });
        if let Some(trigger) = options.reload.clone() {
            let heartbeat = liveness.register("reload");
            let (config, program, readers, notifier, token) = (
                config.clone(),
                options.extractor_program.clone(),
                readers.clone(),
                notifier.clone(),
                shutdown.child_token(),
            );
            // What the file said when this daemon started, to tell what a reload ignores.
            let started_with = std::fs::read_to_string(&config.path).ok();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        // Shutdown first: a SIGHUP that arrives with SIGTERM is not a reload.
                        biased;
                        _ = token.cancelled() => return ("reload".to_string(), Ok(SourceReport::default())),
                        _ = trigger.notified() => {}
                        never = heartbeat.keep_beating() => match never {},
                    }
                    notifier.reloading();
                    heartbeat.busy_for(reload::RELOAD_LIMIT);
                    let (config, program, readers, started) =
                        (config.clone(), program.clone(), readers.clone(), started_with.clone());
                    let outcome = tokio::task::spawn_blocking(move || {
                        reload::reload(&config, program, &readers, started.as_deref())
                    })
                    .await;
                    heartbeat.beat();
                    let status = match outcome {
                        Ok(Ok(loaded)) => {
                            tracing::info!(
                                relationships = loaded.relationships,
                                organisations = loaded.organisations,
                                ietf_groups = loaded.ietf_groups,
                                templates = loaded.templates,
                                experts = loaded.experts,
                                "reloaded the relationships data, the templates and the experts data"
                            );
                            format!("running; reloaded {} organisations", loaded.organisations)
                        }
                        Ok(Err(e)) => {
                            tracing::error!(
                                error = %format!("{e:#}"),
                                "reload failed; still using the relationships data and templates loaded before"
                            );
                            "running; the last reload failed (see the log)".to_string()
                        }
                        Err(join) => {
                            tracing::error!(error = %join, "reload failed; still using the data loaded before");
                            "running; the last reload failed (see the log)".to_string()
                        }
                    };
                    notifier.reloaded(&status);
                }
            });
        }
        tokio::spawn(crate::daemon::service::notify_loop(
            liveness.clone(),
            notifier.clone(),
            progress.clone(),
            watchdog,
            shutdown.clone(),
        ));
    }
    tracing::info!(database = %config.database.display(), sources = ?config.source_names(), once = options.once, "liaisond running");

    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(r))) => {
                report.stored += r.stored;
                report.already_known += r.already_known;
            }
            Ok((name, Err(e))) => {
                tracing::error!(source = name, error = e, "source stopped with an error");
                report.failed_sources.push(format!("{name}: {e}"));
            }
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => report.failed_sources.push(format!("task cancelled: {join}")),
        }
    }
    if let Some(task) = metrics {
        let _ = task.await;
    }
    match scheduling {
        Some(task) => {
            let _ = task.await;
        }
        // `once`: plan what is due now that the sources are drained, then send it.
        None if !shutdown.is_cancelled() => scheduler.run(shutdown.child_token(), true).await,
        None => {}
    }
    match (sending, &sender) {
        (Some(task), _) => {
            // Cancelled with the sources; it finishes the message in hand first.
            report.send_attempts = task.await.unwrap_or_default();
        }
        (None, Some(sender)) if !shutdown.is_cancelled() => {
            report.send_attempts = sender.clone().run(shutdown.child_token(), true).await;
        }
        _ => {}
    }
    tracing::info!(stored = report.stored, already_known = report.already_known, "liaisond stopped");
    Ok(report)
}

/// How often the daemon rewrites `[metrics] textfile` (node_exporter reads it at each scrape).
const METRICS_EVERY: Duration = Duration::from_secs(60);

/// Writes the OpenMetrics text of the database to `path` every [`METRICS_EVERY`] until
/// `token` is cancelled: to a temporary file next to it, then renamed over it, so that the
/// collector never reads half a file. A failure is logged and tried again at the next turn.
async fn write_metrics(
    path: std::path::PathBuf,
    db: crate::db::Db,
    heartbeat: crate::daemon::service::Heartbeat,
    token: CancellationToken,
) {
    loop {
        if let Err(error) = write_metrics_file(&path, &db, true).await {
            tracing::warn!(path = %path.display(), error, "cannot write the metrics file; trying again in a minute");
        }
        tokio::select! {
            _ = heartbeat.sleep(METRICS_EVERY) => {}
            _ = token.cancelled() => break,
        }
    }
    // Stopped: the file must not go on saying that the daemon runs.
    if let Err(error) = write_metrics_file(&path, &db, false).await {
        tracing::warn!(path = %path.display(), error, "cannot write the metrics file on stopping");
    }
}

/// The metrics text, written to a temporary file and renamed over `path` (the collector never
/// reads half a file).
async fn write_metrics_file(path: &std::path::Path, db: &crate::db::Db, running: bool) -> Result<(), String> {
    let status = db.call(|store| store.status(0)).await.map_err(|e| e.to_string())?;
    let temporary = path.with_extension("prom.tmp");
    tokio::fs::write(&temporary, crate::metrics::render(&status, running)).await.map_err(|e| e.to_string())?;
    tokio::fs::rename(&temporary, path).await.map_err(|e| e.to_string())
}
