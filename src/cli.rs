//! The command line. Errors are printed once, with their whole chain, and mapped to exit
//! codes from sysexits(3) where one fits: 75 (EX_TEMPFAIL) tells an MTA to retry a delivery,
//! 78 (EX_CONFIG) says the configuration is wrong.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{AfterCommit, Config, MaildirAfter, TlsMode};
use crate::ingest::Ingestor;
use crate::runner::{RunOptions, run};
use crate::store::{Db, MessageOverview, Origin, Store};

mod export;
mod messages;
mod output;
mod relationships;
mod statements;

pub const EX_OK: u8 = 0;
pub const EX_FAILURE: u8 = 1;
pub const EX_TEMPFAIL: u8 = 75;
pub const EX_CONFIG: u8 = 78;

/// How long a stopping daemon may take to finish the message in hand before it exits anyway.
/// (Every write is transactional, so exiting is safe; this only bounds the wait.)
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

const DEFAULT_CONFIG: &str = "/etc/liaisond/liaisond.toml";

#[derive(Debug, Parser)]
#[command(
    name = "liaisond",
    version,
    about = "Runs the IAB liaison-coordination mailbox: records every incoming liaison statement",
    after_help = "Exit codes: 0 success; 1 failure; 2 the command line could not be parsed; 64 a value \
                  has the wrong form (a date, an address, a purpose); 65 the statement or message named \
                  does not exist; 75 `ingest` could not store the message (the MTA retries); 78 invalid \
                  configuration. Output into a closed pipe (`| head`) ends quietly with 0."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// The configuration file.
    #[arg(long, short, env = "LIAISOND_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: fetch, store and process messages until SIGTERM or SIGINT.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Process what is waiting in every source, print what was recorded, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Store one message read from standard input (for an MTA pipe). Exits 0 once it is
    /// committed, 75 (EX_TEMPFAIL) when it could not be stored, so that the MTA retries.
    Ingest {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate a configuration file and print a summary (without secrets).
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Check the installation: the configuration, the database, each mailbox, the SMTP
    /// server, disk space and the clock. Changes and sends nothing. Exits 1 when a check fails.
    Doctor {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Read messages from files and print what liaisond understands of each, as one JSON
    /// object per line. Touches no database and no network.
    Parse {
        /// A configuration file (for its relationships data); default: the built-in data.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Message files (.eml).
        #[arg(required = true)]
        messages: Vec<PathBuf>,
    },
    /// Show what the current relationships data would decide for every stored statement,
    /// next to what was decided when it arrived. Sends nothing and changes nothing.
    Route {
        #[command(flatten)]
        config: ConfigArg,
        /// Required: routing is decided when a message is recorded; this only replays it.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Look at stored messages.
    Messages {
        #[command(subcommand)]
        action: MessagesCommand,
    },
    /// List, retry and cancel the mail liaisond sends (acknowledgements, notifications).
    Outbox {
        #[command(subcommand)]
        action: OutboxCommand,
    },
    /// The operator's view of statements: list, show, mark done, reopen, assign, correct.
    /// Safe while the daemon runs.
    Statements {
        #[command(subcommand)]
        action: statements::StatementsCommand,
    },
    /// Write a consistent copy of the database while the daemon runs (SQLite's VACUUM INTO),
    /// then check the copy. DEST must not exist.
    Backup {
        #[command(flatten)]
        config: ConfigArg,
        /// Where to write the copy.
        dest: PathBuf,
    },
    /// The liaison managers and the yearly check-in with them.
    Relationships {
        #[command(subcommand)]
        action: relationships::RelationshipsCommand,
    },
    /// Write statements with the IETF datatracker's field names (JSON or CSV), to enter them
    /// there without retyping.
    Export(export::ExportArgs),
    /// Internal: serve attachment text extraction requests on standard input (a framed
    /// protocol, see `isolate.rs`). liaisond runs itself this way, as a confined worker.
    #[command(hide = true)]
    ExtractText,
    /// Show message counts per outcome, each mailbox's cursor and last successful poll.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum MessagesCommand {
    /// Show what was read from a message (its statement fields, attachments and warnings) as JSON.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// The message number (as in `liaisond status` and the logs).
        id: i64,
    },
    /// Write the original bytes of a message's attachment, decoded again from the stored
    /// message and checked against the SHA-256 recorded when it arrived.
    Attachment {
        #[command(flatten)]
        config: ConfigArg,
        /// The message number.
        id: i64,
        /// Which attachment: 1 is the first one `messages show` lists.
        number: usize,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// List the quarantined messages and why each was quarantined (a table, or JSON lines).
    Quarantined {
        #[command(flatten)]
        config: ConfigArg,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Process messages again with the current code and relationships data: one message by
    /// number (quarantined, ignored or processed), or every quarantined one. A statement keeps
    /// its tracking ID, and nothing already queued for it is sent again. Safe while the daemon
    /// runs.
    Reprocess {
        #[command(flatten)]
        config: ConfigArg,
        /// The message number (as in `messages quarantined` and `status`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every quarantined message (except oversized ones, of which only the header was kept).
        #[arg(long)]
        all: bool,
        /// Who asks, for the history (default: the user who ran sudo, else the Unix user).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// List outgoing mail, newest first.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Only items in these states (pending, sending, sent, failed, uncertain, cancelled);
        /// repeat or separate with commas.
        #[arg(long, value_delimiter = ',')]
        state: Vec<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send a failed, uncertain or cancelled item again (with the same Message-ID). An
    /// uncertain one may then arrive twice.
    Retry {
        #[command(flatten)]
        config: ConfigArg,
        /// The item number (as in `outbox list`).
        id: i64,
    },
    /// Cancel a pending, failed or uncertain item: it will not be sent.
    Cancel {
        #[command(flatten)]
        config: ConfigArg,
        /// The item number (as in `outbox list`).
        id: i64,
    },
}

/// Parses the command line, runs the command, returns the exit code.
pub fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Run { .. } | Command::Ingest { .. } => "info",
        Command::ExtractText => "off",
        _ => "warn",
    };
    init_logging(default_level);
    let code = match cli.command {
        // The daemon's errors are never a reader closing a pipe: an EPIPE there (a server's
        // socket) is a failure, so that systemd restarts it.
        Command::Run { config, once } => config_then(&config.config, false, |c| cmd_run(c, once)),
        Command::Ingest { config } => cmd_ingest(&config.config),
        Command::CheckConfig { config } => with_config(&config.config, cmd_check_config),
        Command::Doctor { config } => crate::doctor::main(&config.config),
        Command::Status { config, json } => with_config(&config.config, |c| cmd_status(c, json)),
        Command::Parse { config, messages } => cmd_parse(config.as_deref(), &messages),
        Command::Route { config, dry_run, json } => with_config(&config.config, |c| cmd_route(c, dry_run, json)),
        Command::Messages { action: MessagesCommand::Show { config, id } } => {
            with_config(&config.config, |c| cmd_message_show(c, id))
        }
        Command::Messages { action: MessagesCommand::Attachment { config, id, number, output } } => {
            with_config(&config.config, |c| cmd_message_attachment(c, id, number, output.as_deref()))
        }
        Command::Outbox { action: OutboxCommand::List { config, state, limit, json } } => {
            with_config(&config.config, |c| cmd_outbox_list(c, &state, limit, json))
        }
        Command::Outbox { action: OutboxCommand::Retry { config, id } } => {
            with_config(&config.config, |c| cmd_outbox_change(c, id, true))
        }
        Command::Outbox { action: OutboxCommand::Cancel { config, id } } => {
            with_config(&config.config, |c| cmd_outbox_change(c, id, false))
        }
        Command::Messages { action: MessagesCommand::Quarantined { config, json } } => {
            with_config(&config.config, |c| messages::quarantined(c, json))
        }
        Command::Messages { action: MessagesCommand::Reprocess { config, id, all: _, by } } => {
            with_config(&config.config, |c| messages::reprocess(c, id, &output::operator(by.as_deref())))
        }
        Command::Statements { action } => statements::run(action),
        Command::Export(args) => export::run(args),
        Command::Relationships { action } => relationships::run(action),
        Command::Backup { config, dest } => with_config(&config.config, |c| cmd_backup(c, &dest)),
        Command::ExtractText => crate::isolate::worker_main(),
    };
    ExitCode::from(code)
}

/// glibc gives each thread its own malloc arena and keeps freed multi-megabyte buffers there;
/// with messages of several MB passing through tokio's worker and blocking threads, resident
/// memory grew to about three times the live heap (benchmark: 158 MiB RSS for a 54 MiB heap
/// peak). Two arenas keep it close to the heap (about 70 MiB).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; it is called first thing in main, before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn init_logging(default_level: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIAISOND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Under systemd, stderr is connected to the journal: send the journal structured entries
    // instead (each field as a journal field, `F_TRACKING_ID=...`; tracing-journald prefixes
    // them with `F_` so that a field can never pass for one of the journal's own, such as
    // MESSAGE_ID, the catalog ID).
    if stderr_is_the_journal()
        && let Ok(journal) = tracing_journald::layer()
    {
        let journal = journal.with_syslog_identifier("liaisond".to_string());
        let _ = tracing_subscriber::registry().with(filter).with(journal).try_init();
        return;
    }
    // Logs go to stderr (in a terminal, a pipe, or the journal as plain lines); stdout is for
    // command output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Whether stderr is the journal's stream: systemd.exec(5) says a service whose stderr goes to
/// the journal gets `$JOURNAL_STREAM` = `DEVICE:INODE` (decimal) of that stream, and that a
/// program should compare it with its own stderr (a child whose stderr was redirected
/// inherits the variable, but not the stream).
fn stderr_is_the_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(expected) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Some((dev, ino)) = expected.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd).metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

fn with_config(path: &Path, f: impl FnOnce(Config) -> anyhow::Result<u8>) -> u8 {
    config_then(path, true, f)
}

/// Loads the configuration, runs `f`, maps its error to an exit code. With `pipe_closed_is_ok`,
/// a write into a closed pipe (`| head`) ends quietly with 0.
fn config_then(path: &Path, pipe_closed_is_ok: bool, f: impl FnOnce(Config) -> anyhow::Result<u8>) -> u8 {
    match Config::load(path) {
        Err(e) => {
            eprintln!("liaisond: invalid configuration: {e}");
            EX_CONFIG
        }
        Ok(config) => match f(config) {
            Ok(code) => code,
            // A closed pipe (`| head`) is the reader's choice, not a failure: end quietly.
            Err(e) if pipe_closed_is_ok && output::is_broken_pipe(&e) => EX_OK,
            Err(e) if output::refusal_code(&e).is_some() => {
                eprintln!("liaisond: {e:#}");
                output::refusal_code(&e).unwrap_or(EX_FAILURE)
            }
            // The relationships data is configuration too, read later than the file itself.
            Err(e) if e.chain().any(|c| c.is::<crate::config::ConfigError>()) => {
                eprintln!("liaisond: invalid configuration: {e:#}");
                EX_CONFIG
            }
            Err(e) => {
                eprintln!("liaisond: {e:#}");
                EX_FAILURE
            }
        },
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

fn cmd_run(config: Config, once: bool) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let started = crate::store::now_utc();
    let database = config.database.clone();
    let busy = config.busy_timeout;
    let report = rt.block_on(async {
        let shutdown = CancellationToken::new();
        let reload = std::sync::Arc::new(tokio::sync::Notify::new());
        // Installed before anything else starts: a SIGHUP that arrives before the handler
        // would end the process (its default action).
        let signals = Signals::install()?;
        tokio::spawn(signals.serve(shutdown.clone(), reload.clone()));
        let options = RunOptions { once, reload: (!once).then_some(reload), ..RunOptions::default() };
        let run = run(config, shutdown.clone(), options);
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

/// The daemon's signals: SIGTERM (systemd stop) and SIGINT (Ctrl-C) ask for a graceful stop,
/// and a second one exits at once; SIGHUP (`systemctl reload`) reloads the relationships data
/// and the templates.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind, name| signal(kind).with_context(|| format!("cannot install the {name} handler"));
        Ok(Signals {
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
            hup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    async fn serve(mut self, shutdown: CancellationToken, reload: std::sync::Arc<tokio::sync::Notify>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => {
                    tracing::info!("SIGTERM: stopping after the message in hand");
                    break;
                }
                _ = self.int.recv() => {
                    tracing::info!("SIGINT: stopping after the message in hand");
                    break;
                }
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP: reloading the relationships data and the templates");
                    reload.notify_one();
                }
            }
        }
        shutdown.cancel();
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    }
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
            m.class.as_deref().unwrap_or("-"),
            m.tracking_id.as_deref().unwrap_or("-"),
            truncate(m.from.as_deref().unwrap_or("-"), 30),
            truncate(&what, 80)
        );
    }
}

/// A table cell: at most `max` characters, on one line, control characters removed (subjects
/// and names come from senders, and must not drive the operator's terminal).
fn truncate(s: &str, max: usize) -> String {
    crate::respond::clip(s, max)
}

/// `liaisond ingest`: every failure before the commit is EX_TEMPFAIL, including a bad
/// configuration, so that the MTA keeps the message until the operator fixes it.
fn cmd_ingest(path: &Path) -> u8 {
    // The sources and [smtp] are not checked here: an MTA pipe runs without the daemon's
    // credentials and need not see its mailboxes (it queues mail; the daemon sends it).
    let config = match Config::load_store_only(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("liaisond: invalid configuration (message not stored, MTA should retry): {e}");
            return EX_TEMPFAIL;
        }
    };
    // A panic before the commit must be a temporary failure too: any other exit status makes
    // Postfix's pipe(8) bounce the message.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ingest_stdin(config))) {
        Ok(Ok(line)) => {
            // The message is stored: a closed standard output must not turn that into a
            // failure (println! would panic, and the MTA would bounce a stored message).
            let _ = writeln!(std::io::stdout(), "{line}");
            EX_OK
        }
        Ok(Err(e)) => {
            eprintln!("liaisond: message not stored (MTA should retry): {e:#}");
            EX_TEMPFAIL
        }
        Err(_) => {
            eprintln!("liaisond: internal error (panic); message not stored (MTA should retry)");
            EX_TEMPFAIL
        }
    }
}

fn ingest_stdin(config: Config) -> anyhow::Result<String> {
    let limit = config.limits.max_message_size;
    let mut raw = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit + 1)
        .read_to_end(&mut raw)
        .context("cannot read the message from standard input")?;
    let oversized = raw.len() as u64 > limit;
    let size = if oversized {
        // Count the rest without keeping it, so the record says how large it was.
        raw.len() as u64 + std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink()).unwrap_or(0)
    } else {
        raw.len() as u64
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        let store = Store::open(&config.database, config.busy_timeout)?;
        // Unreadable relationships data must not refuse the mail: it is stored and left
        // pending, and the daemon (which refuses to start with bad data) reads it later.
        let reader = match crate::runner::reader(&config, None) {
            Ok(r) => Some(crate::analyse::ReaderHandle::new(r)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot read statements now; the message is left for the daemon");
                None
            }
        };
        let ingestor = Ingestor::new(Db::new(store), config.limits.clone(), reader);
        let result = if oversized {
            let header = crate::pipeline::header_section(&raw, 1 << 20).to_vec();
            ingestor.ingest_oversized(header, size, Origin::stdin(), None).await?
        } else {
            ingestor.ingest(raw, Origin::stdin(), None).await?
        };
        Ok(match (result.accepted.new, result.outcome) {
            (false, _) => format!("already stored as message {}", result.accepted.id),
            (true, Some(o)) => format!("stored as message {} ({o:?})", result.accepted.id),
            (true, None) => format!("stored as message {} (to be processed by the daemon)", result.accepted.id),
        })
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

fn cmd_parse(config: Option<&Path>, messages: &[PathBuf]) -> u8 {
    let config = match config.map(Config::load).transpose() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("liaisond: invalid configuration: {e}");
            return EX_CONFIG;
        }
    };
    let relationships = match config.as_ref().map(Config::load_relationships).transpose() {
        Ok(r) => r.unwrap_or_else(crate::relationships::Relationships::builtin),
        Err(e) => {
            eprintln!("liaisond: invalid configuration: {e}");
            return EX_CONFIG;
        }
    };
    let identity = crate::analyse::Identity::new(config.as_ref(), &relationships);
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("liaisond: cannot find my own executable for the extraction workers: {e}");
            return EX_FAILURE;
        }
    };
    let extractor = crate::isolate::Extractor::new(crate::isolate::Isolation::new(program));

    // One thread per core reads messages; the lines come out in the order of the arguments.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(messages.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (send, receive) = std::sync::mpsc::sync_channel::<(usize, Result<String, String>)>(threads * 4);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut code = EX_OK;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let send = send.clone();
            let (next, stop, relationships, identity, extractor) =
                (&next, &stop, &relationships, &identity, &extractor);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= messages.len() || stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let line = parse_one(&messages[i], relationships, identity, extractor);
                    if send.send((i, line)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(send);
        let mut out = std::io::stdout().lock();
        let mut waiting = std::collections::BTreeMap::new();
        let mut written = 0;
        for (i, line) in receive.iter() {
            waiting.insert(i, line);
            while let Some(line) = waiting.remove(&written) {
                written += 1;
                match line {
                    Ok(line) => {
                        if writeln!(out, "{line}").is_err() {
                            // A closed pipe (`| head`): stop quietly.
                            stop.store(true, std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("liaisond: {e}");
                        code = EX_FAILURE;
                    }
                }
            }
        }
    });
    code
}

/// One message file as a JSON line: what was read, its classification and its route.
fn parse_one(
    path: &Path,
    relationships: &crate::relationships::Relationships,
    identity: &crate::analyse::Identity,
    extractor: &crate::isolate::Extractor,
) -> Result<String, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let analysis = crate::analyse::analyse(&raw, relationships, extractor);
    let judgement = crate::analyse::judge(&raw, &analysis, relationships, identity, &crate::classify::NoHistory);
    let mut value = serde_json::to_value(&analysis).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("file".into(), path.display().to_string().into());
        obj.insert("classification".into(), judgement.classification.class.as_str().into());
        obj.insert("classification_reason".into(), judgement.classification.reason.clone().into());
        obj.insert("no_ack".into(), judgement.classification.no_ack.clone().into());
        obj.insert(
            "route".into(),
            serde_json::to_value(&judgement.route).map_err(|e| format!("{}: {e}", path.display()))?,
        );
    }
    Ok(value.to_string())
}

fn cmd_check_config(config: Config) -> anyhow::Result<u8> {
    let relationships = config.load_relationships()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: valid", config.path.display())?;
    writeln!(
        out,
        "relationships: {} ({} organisations, {} IETF groups)",
        config.relationships.as_ref().map_or("built-in".to_string(), |p| p.display().to_string()),
        relationships.organizations().len(),
        relationships.ietf_groups().len()
    )?;
    writeln!(out, "database: {}", config.database.display())?;
    let l = &config.limits;
    writeln!(
        out,
        "limits: max_message_size={} bytes, fetch batch ≤ {} messages / {} bytes, stage_timeout={}",
        l.max_message_size,
        l.fetch_batch_messages,
        l.fetch_batch_size,
        humantime::format_duration(l.stage_timeout)
    )?;
    for i in &config.imap {
        let tls = match i.tls {
            TlsMode::Implicit => "implicit TLS",
            TlsMode::StartTls => "STARTTLS",
            TlsMode::None => "no TLS (loopback)",
        };
        let after = match &i.after_commit {
            AfterCommit::Move(f) => format!("move to {f}"),
            AfterCommit::Seen => "flag \\Seen".into(),
            AfterCommit::Leave => "leave".into(),
        };
        writeln!(
            out,
            "imap {}: {}@{}:{} ({tls}{}), mailbox {}, after commit: {after}, {}, password from {}",
            i.name,
            i.username,
            i.host,
            i.port,
            i.ca_file.as_ref().map(|p| format!(", CA {}", p.display())).unwrap_or_default(),
            i.mailbox,
            if i.idle {
                format!(
                    "IDLE when offered (refresh {}), else poll every {}",
                    humantime::format_duration(i.idle_refresh),
                    humantime::format_duration(i.poll_interval)
                )
            } else {
                format!("poll every {}", humantime::format_duration(i.poll_interval))
            },
            i.password_source
        )?;
    }
    for m in &config.maildir {
        let after = match m.after_commit {
            MaildirAfter::Cur => "move new/ to cur/",
            MaildirAfter::Leave => "leave files",
        };
        writeln!(
            out,
            "maildir {}: {}, after commit: {after}, poll every {}",
            m.name,
            m.path.display(),
            humantime::format_duration(m.poll_interval)
        )?;
    }
    if config.imap.is_empty() && config.maildir.is_empty() {
        writeln!(out, "no sources: only `liaisond ingest` will bring messages")?;
    }
    config.responder(&relationships)?;
    crate::runner::transport(&config)?;
    writeln!(
        out,
        "templates: {} (valid)",
        config.templates.as_ref().map_or("built-in".to_string(), |p| p.display().to_string())
    )?;
    match (&config.smtp, &config.outbox.directory) {
        (Some(s), _) => writeln!(
            out,
            "smtp: {}:{} ({}{}), {}, timeout {}",
            s.host,
            s.port,
            match s.tls {
                TlsMode::Implicit => "implicit TLS",
                TlsMode::StartTls => "STARTTLS",
                TlsMode::None => "no TLS (loopback)",
            },
            s.ca_file.as_ref().map(|p| format!(", CA {}", p.display())).unwrap_or_default(),
            match (&s.credentials, &s.password_source) {
                (Some((user, _)), Some(source)) => format!("AUTH as {user}, password from {source}"),
                _ => "no AUTH".to_string(),
            },
            humantime::format_duration(s.timeout)
        )?,
        (None, Some(dir)) => writeln!(out, "outgoing mail: written to {} (dry run, nothing is sent)", dir.display())?,
        (None, None) => writeln!(out, "outgoing mail: no [smtp] configured; it waits in the outbox")?,
    }
    let a = &config.acknowledgements;
    writeln!(
        out,
        "acknowledgements: {}, at most {} per address a day and {} an hour in total, none for mail older than {}",
        if a.enabled { "on" } else { "off" },
        a.per_sender_per_day,
        a.per_hour,
        humantime::format_duration(a.max_age)
    )?;
    let f = &config.follow;
    let ladder = &f.ladder;
    if f.reminders_enabled {
        writeln!(
            out,
            "reminders: {} days before the deadline, then overdue every {} day(s) for {} days, from {} ({})",
            ladder.days_before.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
            ladder.overdue_every,
            ladder.overdue_for,
            f.reminders_at.strftime("%H:%M"),
            f.time_zone_name
        )?;
    } else {
        writeln!(out, "reminders: off")?;
    }
    if f.digest_enabled && !f.digest.days.is_empty() {
        writeln!(
            out,
            "digest: {} at {} ({}), managers listed after {} days without contact",
            f.digest.days.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(", "),
            f.digest.send_at.strftime("%H:%M"),
            f.time_zone_name,
            f.check_in_after.as_secs() / 86_400
        )?;
    } else {
        writeln!(out, "digest: off")?;
    }
    Ok(EX_OK)
}

fn cmd_backup(config: Config, dest: &Path) -> anyhow::Result<u8> {
    if dest.exists() {
        return Err(output::Refused::Usage(format!("{} exists already; name a new file", dest.display())).into());
    }
    let store = open_existing(&config)?;
    store.backup_into(dest).with_context(|| format!("writing the backup {}", dest.display()))?;
    drop(store);
    let health = crate::store::health::inspect(dest, config.busy_timeout)
        .with_context(|| format!("the backup {} was written but cannot be opened", dest.display()))?;
    if health.quick_check != ["ok"] {
        anyhow::bail!("the backup {} fails its check: {}", dest.display(), health.quick_check.join("; "));
    }
    let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    writeln!(
        std::io::stdout(),
        "backup written: {} ({size} bytes, schema {}, {} messages, quick_check ok)",
        dest.display(),
        health.schema_version,
        health.messages
    )?;
    Ok(EX_OK)
}

fn open_existing(config: &Config) -> anyhow::Result<Store> {
    if !config.database.exists() {
        anyhow::bail!("no database at {} yet (has liaisond run?)", config.database.display());
    }
    Ok(Store::open(&config.database, config.busy_timeout)?)
}

fn cmd_route(config: Config, dry_run: bool, json: bool) -> anyhow::Result<u8> {
    if !dry_run {
        let why = "only `route --dry-run` exists: routing is decided when a message is recorded";
        return Err(output::Refused::Usage(why.into()).into());
    }
    let relationships = config.load_relationships()?;
    let store = open_existing(&config)?;
    let mut out = std::io::stdout().lock();
    let mut changed = 0;
    let statements = store.statements()?;
    for st in &statements {
        let raw = store.raw_message(st.message)?;
        let fields: crate::understand::Statement =
            store.reading(st.message)?.and_then(|r| serde_json::from_str(&r.statement_json).ok()).unwrap_or_default();
        let headers = crate::classify::Headers::parse(&raw);
        let authentication_results: Vec<&str> = headers.all("authentication-results").collect();
        let now = crate::route::route(
            &crate::route::Input {
                class: crate::classify::Class::Statement,
                sender: st.sender.as_deref(),
                statement: &fields,
                authentication_results: &authentication_results,
                trusted_authserv_ids: &config.trusted_authserv_ids,
                statement_handlers: &[],
            },
            &relationships,
        );
        let same = now.to == st.route_to;
        if !same {
            changed += 1;
        }
        if json {
            let line = serde_json::json!({
                "tracking_id": st.tracking_id,
                "then": { "to": st.route_to, "reason": st.route_reason },
                "now": now,
                "changed": !same,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(
                out,
                "{}  {}  to {}  ({}){}",
                st.tracking_id,
                if same { "same   " } else { "CHANGED" },
                now.to.join(", "),
                now.reason,
                if same { String::new() } else { format!("; was to {}", st.route_to.join(", ")) }
            )?;
        }
    }
    if !json {
        writeln!(
            out,
            "{} statement(s), {changed} would be routed differently now (nothing was sent)",
            statements.len()
        )?;
    }
    Ok(EX_OK)
}

fn cmd_message_show(config: Config, id: i64) -> anyhow::Result<u8> {
    let store = open_existing(&config)?;
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
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &value)?;
    writeln!(out)?;
    Ok(EX_OK)
}

fn cmd_message_attachment(config: Config, id: i64, number: usize, output: Option<&Path>) -> anyhow::Result<u8> {
    let store = open_existing(&config)?;
    let recorded = store.attachments(id)?;
    let Some(want) = number.checked_sub(1).and_then(|i| recorded.get(i)) else {
        let why = format!("message {id} has {} recorded attachment(s); there is no number {number}", recorded.len());
        return Err(output::Refused::NotFound(why).into());
    };
    let raw = store.raw_message(id)?;
    let parts = crate::content::content(&raw).attachments;
    // The position is the order `content` finds them in; the hash proves it is the same part.
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
    eprintln!("{}: {} bytes, sha256 {}", want.filename, part.bytes.len(), part.sha256);
    Ok(EX_OK)
}

const OUTBOX_STATES: &[&str] = &["pending", "sending", "sent", "failed", "uncertain", "cancelled"];

fn cmd_outbox_list(config: Config, states: &[String], limit: usize, json: bool) -> anyhow::Result<u8> {
    for s in states {
        if !OUTBOX_STATES.contains(&s.as_str()) {
            let why = format!("`{s}` is not an outbox state (one of {})", OUTBOX_STATES.join(", "));
            return Err(output::Refused::Usage(why).into());
        }
    }
    let store = open_existing(&config)?;
    let states: Vec<&str> = states.iter().map(String::as_str).collect();
    let rows = store.outbox_rows(&states, limit)?;
    let mut out = std::io::stdout().lock();
    if json {
        for r in &rows {
            serde_json::to_writer(&mut out, r)?;
            writeln!(out)?;
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

fn cmd_outbox_change(config: Config, id: i64, retry: bool) -> anyhow::Result<u8> {
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

fn cmd_status(config: Config, json: bool) -> anyhow::Result<u8> {
    let store = open_existing(&config)?;
    let status = store.status(10)?;
    let mut out = std::io::stdout().lock();
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

#[cfg(test)]
mod tests {
    #[test]
    fn table_cells_carry_no_control_characters() {
        // A hostile subject must not drive the operator's terminal or break the table.
        let cell = super::truncate("Re: \u{1b}[2J\u{1b}]0;owned\u{7}\r\nnext line\tand more", 30);
        assert!(!cell.chars().any(char::is_control), "{cell:?}");
        assert!(cell.chars().count() <= 30 && cell.starts_with("Re: "), "{cell:?}");
    }
}
