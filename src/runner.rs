//! The daemon: [`run`] is the one entry point, used by `main` and by the tests.
//!
//! It takes the instance lock, opens (and migrates) the database, finishes messages a previous
//! run left `pending`, then runs one task per source until `shutdown` is cancelled (or, with
//! `once`, until every source has been drained once). Cancellation is cooperative: a source
//! stops between messages, so the message in hand is either committed or left for next time.
//!
//! As a daemon (not `once`) it also runs the `service` notifier (READY, STATUS, WATCHDOG,
//! STOPPING for systemd), every loop with a heartbeat registered in one [`Liveness`], and,
//! when `RunOptions::reload` is given, reloads the relationships data and the templates each
//! time it is notified (SIGHUP): see [`reload`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::analyse::{Reader, ReaderHandle};
use crate::config::Config;
use crate::imap::{ImapSource, SourceReport};
use crate::ingest::{Ingestor, pending_grace};
use crate::maildir::MaildirSource;
use crate::schedule::Scheduler;
use crate::send::{Sender, Transport};
use crate::service::{Liveness, Notifier};
use crate::store::{Db, InstanceLock, Store};

#[derive(Clone, Default)]
pub struct RunOptions {
    /// Process what is waiting, then return.
    pub once: bool,
    /// The `liaisond` binary that runs the attachment extraction workers; default: this
    /// process's own executable (tests, whose executable is the test harness, name it).
    pub extractor_program: Option<PathBuf>,
    /// What time it is for reminders and digests; default: the system clock (tests set it).
    pub clock: Option<crate::schedule::Clock>,
    /// Each notification reloads the relationships data and the templates (the CLI notifies
    /// it on SIGHUP). `None`: no reloading.
    pub reload: Option<Arc<tokio::sync::Notify>>,
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
            crate::send::Smtp::new(smtp.clone())
                .map_err(|e| anyhow::anyhow!("[smtp] in {}: {e}", config.path.display()))?,
        )),
        (None, Some(dir)) => Some(Transport::Directory(dir.clone())),
        (None, None) => None,
    })
}

/// Runs liaisond with `config` until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken, options: RunOptions) -> anyhow::Result<RunReport> {
    crate::tls::install_crypto_provider();
    let _lock = InstanceLock::acquire(&config.database)?;
    let store = Store::open(&config.database, config.busy_timeout)?;
    let db = Db::new(store);
    let reader = reader(&config, options.extractor_program.clone())?;
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
    let watchdog = if options.once { None } else { crate::service::watchdog_interval() };
    let liveness = Liveness::new(watchdog);
    let notifier = Notifier::new();
    let sender = transport(&config)?.map(|t| Sender::new(db.clone(), t, config.outbox.clone()));
    let mut ingestor = Ingestor::new(db.clone(), config.limits.clone(), Some(readers.clone()));
    let current: crate::schedule::CurrentReader = {
        let readers = readers.clone();
        Arc::new(move || readers.current())
    };
    let mut scheduler = Scheduler::new(
        db.clone(),
        config.follow.clone(),
        current,
        options.clock.clone().unwrap_or_else(crate::schedule::system_clock),
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
    if !options.once {
        // Messages that `liaisond ingest` stored but could not process (or that a source left
        // pending after a write error) are picked up here.
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
                    heartbeat.busy_for(RELOAD_LIMIT);
                    let (config, program, readers, started) =
                        (config.clone(), program.clone(), readers.clone(), started_with.clone());
                    let outcome =
                        tokio::task::spawn_blocking(move || reload(&config, program, &readers, started.as_deref()))
                            .await;
                    heartbeat.beat();
                    let status = match outcome {
                        Ok(Ok(loaded)) => {
                            tracing::info!(
                                relationships = loaded.relationships,
                                organisations = loaded.organisations,
                                ietf_groups = loaded.ietf_groups,
                                templates = loaded.templates,
                                "reloaded the relationships data and the templates"
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
        tokio::spawn(crate::service::notify_loop(liveness.clone(), notifier.clone(), watchdog, shutdown.clone()));
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

/// How long a reload (reading the files, starting the reader) may take, for its heartbeat.
const RELOAD_LIMIT: Duration = Duration::from_secs(60);

/// What a reload loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The relationships file (or `built-in`).
    pub relationships: String,
    pub organisations: usize,
    pub ietf_groups: usize,
    /// The templates directory (or `built-in`).
    pub templates: String,
}

/// Re-reads the configuration file of `running` for its `relationships` and `[templates]`
/// settings, loads those files, and puts a reader built from them in `readers`. Every other
/// setting stays as `running` has it (they need a restart); when the file now differs from
/// `started_with` (its text when the daemon started) in other keys, a warning names them. On
/// any error (an unreadable configuration, relationships data or template, with file and line)
/// nothing changes.
pub fn reload(
    running: &Config,
    program: Option<PathBuf>,
    readers: &ReaderHandle,
    started_with: Option<&str>,
) -> anyhow::Result<Reloaded> {
    let text = std::fs::read_to_string(&running.path)
        .with_context(|| format!("cannot read the configuration file {}", running.path.display()))?;
    // Only what a reload applies is validated: a half-edited [[imap]] or [smtp] meant for the
    // next restart (or a password file being rotated) must not block new relationships data.
    let now = Config::from_str_store_only(&text, &running.path)?;
    if let Some(before) = started_with {
        let ignored = changed_keys_needing_restart(before, &text);
        if !ignored.is_empty() {
            tracing::warn!(
                config = %running.path.display(),
                keys = %ignored.join(", "),
                "the configuration file changed in settings a reload does not apply; restart liaisond for them"
            );
        }
    }
    let mut config = running.clone();
    config.relationships = now.relationships;
    config.templates = now.templates;
    let reader = reader(&config, program)?;
    let loaded = Reloaded {
        relationships: config.relationships.as_ref().map_or("built-in".into(), |p| p.display().to_string()),
        organisations: reader.relationships().organizations().len(),
        ietf_groups: reader.relationships().ietf_groups().len(),
        templates: config.templates.as_ref().map_or("built-in".into(), |p| p.display().to_string()),
    };
    readers.replace(reader);
    Ok(loaded)
}

/// The top-level keys and tables in which two texts of the configuration file differ, other
/// than `relationships` and `[templates]` (which a reload applies). Text that does not parse
/// as TOML gives none (the reload then fails on it anyway, with the parse error).
fn changed_keys_needing_restart(before: &str, after: &str) -> Vec<String> {
    const RELOADED: [&str; 2] = ["relationships", "templates"];
    let (Ok(before), Ok(after)) = (before.parse::<toml::Table>(), after.parse::<toml::Table>()) else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !RELOADED.contains(&k.as_str()) && before.get(*k) != after.get(*k))
        .map(|k| k.to_string())
        .collect()
}

/// What messages are read with: the relationships data, the extraction workers (this binary),
/// and the time budget for a message's attachments (three quarters of the stage limit, so the
/// message is still recorded when its attachments are slow).
pub fn reader(config: &Config, program: Option<PathBuf>) -> anyhow::Result<Reader> {
    let relationships = config.load_relationships()?;
    let program = match program {
        Some(p) => p,
        None => std::env::current_exe().context("cannot find liaisond's own executable for the extraction workers")?,
    };
    let extractor = crate::isolate::Extractor::new(crate::isolate::Isolation::new(program));
    let identity = crate::analyse::Identity::new(Some(config), &relationships);
    let responder = config.responder(&relationships)?;
    Ok(Reader::new(relationships, extractor, config.limits.stage_timeout * 3 / 4, identity).with_responder(responder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_the_settings_it_does_not_apply() {
        let before = "relationships = \"a.toml\"\n[store]\ndatabase = \"x.db\"\n[templates]\ndirectory = \"t\"\n";
        let after = "relationships = \"b.toml\"\n[store]\ndatabase = \"y.db\"\n[templates]\ndirectory = \"u\"\n[smtp]\nhost = \"h\"\n";
        assert_eq!(changed_keys_needing_restart(before, after), ["smtp", "store"]);
        assert!(changed_keys_needing_restart(before, before).is_empty());
    }
}
