//! The command line. Errors are printed once, with their whole chain, and mapped to exit
//! codes from sysexits(3) where one fits: 75 (EX_TEMPFAIL) tells an MTA to retry a delivery,
//! 78 (EX_CONFIG) says the configuration is wrong.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use liaisond_store::Store;

use crate::config::Config;

mod backup;
mod check_config;
mod config_man;
pub mod doctor;
mod export;
mod ingest;
mod logging;
mod messages;
mod outbox;
mod output;
mod parse;
mod relationships;
mod route;
mod run;
mod statements;
mod status;

pub const EX_OK: u8 = 0;
pub const EX_FAILURE: u8 = 1;
pub const EX_TEMPFAIL: u8 = 75;
pub const EX_CONFIG: u8 = 78;

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
        /// Check only what is on this machine (configuration, database, disk, Maildirs,
        /// clock): no login to a mail server, and no password read.
        #[arg(long)]
        offline: bool,
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
    /// Bring the database to this liaisond's schema, after a backup next to it (the daemon
    /// does the same when it starts). The read-only commands never migrate.
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
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
    /// Print a man page (roff) or a shell's completion script, for packaging:
    /// `liaisond generate man > liaisond.8`, `liaisond generate config-man > liaisond.toml.5`,
    /// `liaisond generate bash > liaisond.bash`.
    #[command(hide = true)]
    Generate {
        /// `man` (liaisond(8)), `config-man` (liaisond.toml(5)), `bash`, `zsh` or `fish`.
        #[arg(value_enum)]
        what: Generated,
    },
    /// Show message counts per outcome, each mailbox's cursor and last successful poll.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON instead of text (the same as `--format json`).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// `text`, `json`, or `openmetrics` (for monitoring).
        #[arg(long, value_enum, default_value_t = status::Format::Text)]
        format: status::Format,
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
        // On a terminal, `run --once` draws a progress bar: a line per message is at debug
        // (problems still show).
        Command::Run { once: true, .. } if std::io::IsTerminal::is_terminal(&std::io::stderr()) => {
            "info,liaisond::ingest=warn"
        }
        Command::Run { .. } | Command::Ingest { .. } => "info",
        Command::ExtractText | Command::Generate { .. } => "off",
        _ => "warn",
    };
    logging::init(default_level);
    let code = match cli.command {
        // The daemon's errors are never a reader closing a pipe: an EPIPE there (a server's
        // socket) is a failure, so that systemd restarts it.
        Command::Run { config, once } => config_then(&config.config, false, |c| run::run(c, once)),
        Command::Ingest { config } => ingest::ingest(&config.config),
        // It checks that each password can be read.
        Command::CheckConfig { config } => config_then(&config.config, true, check_config::check_config),
        Command::Doctor { config, offline } => crate::cli::doctor::main(&config.config, offline),
        Command::Status { config, json, format } => {
            let format = if json { status::Format::Json } else { format };
            with_config(&config.config, |c| status::status(c, format))
        }
        Command::Parse { config, messages } => parse::parse(config.as_deref(), &messages),
        Command::Route { config, dry_run, json } => with_config(&config.config, |c| route::route(c, dry_run, json)),
        Command::Messages { action: MessagesCommand::Show { config, id } } => {
            with_config(&config.config, |c| messages::show(c, id))
        }
        Command::Messages { action: MessagesCommand::Attachment { config, id, number, output } } => {
            with_config(&config.config, |c| messages::attachment(c, id, number, output.as_deref()))
        }
        Command::Outbox { action: OutboxCommand::List { config, state, limit, json } } => {
            with_config(&config.config, |c| outbox::list(c, &state, limit, json))
        }
        Command::Outbox { action: OutboxCommand::Retry { config, id } } => {
            with_config(&config.config, |c| outbox::change(c, id, true))
        }
        Command::Outbox { action: OutboxCommand::Cancel { config, id } } => {
            with_config(&config.config, |c| outbox::change(c, id, false))
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
        Command::Backup { config, dest } => with_config(&config.config, |c| backup::backup(c, &dest)),
        // The database is all it touches: no password is read (as for `ingest`).
        Command::Migrate { config } => load_then(Config::load_store_only(&config.config), false, migrate),
        Command::ExtractText => crate::isolate::worker_main(),
        Command::Generate { what } => generate(what),
    };
    ExitCode::from(code)
}

/// What `liaisond generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Generated {
    Man,
    ConfigMan,
    Bash,
    Zsh,
    Fish,
}

/// The man page or a completion script, from the same clap definitions the parser uses.
fn generate(what: Generated) -> u8 {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    let written = match what {
        // Section 8: a system administration command (a daemon and its operator's tool).
        Generated::Man => clap_mangen::Man::new(command).section("8").render(&mut out),
        Generated::ConfigMan => {
            use std::io::Write;
            out.write_all(config_man::render(env!("CARGO_PKG_VERSION")).as_bytes())
        }
        Generated::Bash | Generated::Zsh | Generated::Fish => {
            let shell = match what {
                Generated::Bash => Shell::Bash,
                Generated::Zsh => Shell::Zsh,
                _ => Shell::Fish,
            };
            clap_complete::generate(shell, &mut command, "liaisond", &mut out);
            Ok(())
        }
    };
    match written {
        Ok(()) => EX_OK,
        // `| head`: the reader's choice, as for every other command.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EX_OK,
        Err(e) => {
            eprintln!("liaisond: cannot write: {e}");
            EX_FAILURE
        }
    }
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

/// For a command that does not log in to a server (all but `run`, `check-config` and `doctor`):
/// the configuration without its passwords ([`Config::load_without_secrets`]), so that the
/// service's user runs it without access to the password files (systemd credentials, root's).
fn with_config(path: &Path, f: impl FnOnce(Config) -> anyhow::Result<u8>) -> u8 {
    load_then(Config::load_without_secrets(path), true, f)
}

/// `liaisond migrate`: brings the database to this binary's schema (with a backup first, as
/// the daemon's start does). The only command besides `run` and `ingest` that migrates.
fn migrate(config: Config) -> anyhow::Result<u8> {
    let before = Store::schema_version_at(&config.database)?;
    let store = Store::open(&config.database, config.busy_timeout)?;
    let after = store.schema_version()?;
    match before {
        Some(b) if b < after => println!("{}: migrated from schema {b} to {after}", config.database.display()),
        Some(_) => println!("{}: already at schema {after}", config.database.display()),
        None => println!("{}: created at schema {after}", config.database.display()),
    }
    Ok(EX_OK)
}

/// Loads the configuration, runs `f`, maps its error to an exit code. With `pipe_closed_is_ok`,
/// a write into a closed pipe (`| head`) ends quietly with 0.
fn config_then(path: &Path, pipe_closed_is_ok: bool, f: impl FnOnce(Config) -> anyhow::Result<u8>) -> u8 {
    load_then(Config::load(path), pipe_closed_is_ok, f)
}

fn load_then(
    loaded: Result<Config, liaisond_model::ConfigError>,
    pipe_closed_is_ok: bool,
    f: impl FnOnce(Config) -> anyhow::Result<u8>,
) -> u8 {
    match loaded {
        Err(e) => {
            eprintln!("liaisond: invalid configuration: {e}");
            EX_CONFIG
        }
        Ok(config) => exit_code(f(config), pipe_closed_is_ok),
    }
}

/// A command's result as its exit code, its error said on standard error.
fn exit_code(result: anyhow::Result<u8>, pipe_closed_is_ok: bool) -> u8 {
    match result {
        Ok(code) => code,
        // A closed pipe (`| head`) is the reader's choice, not a failure: end quietly.
        Err(e) if pipe_closed_is_ok && output::is_broken_pipe(&e) => EX_OK,
        Err(e) if output::refusal_code(&e).is_some() => {
            eprintln!("liaisond: {e:#}");
            output::refusal_code(&e).unwrap_or(EX_FAILURE)
        }
        // The relationships data is configuration too, read later than the file itself.
        Err(e) if e.chain().any(|c| c.is::<liaisond_model::ConfigError>()) => {
            eprintln!("liaisond: invalid configuration: {e:#}");
            EX_CONFIG
        }
        Err(e) => {
            eprintln!("liaisond: {e:#}");
            EX_FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Bounded, whatever the machine's core count: the work is I/O and a few parses at a time,
    // and the unit's TasksMax= counts threads.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .max_blocking_threads(32)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A table cell: at most `max` characters, on one line, control characters removed (subjects
/// and names come from senders, and must not drive the operator's terminal).
fn truncate(s: &str, max: usize) -> String {
    liaisond_core::respond::clip(s, max)
}

/// The database, which must exist, at this binary's schema (`Store::open_current`: another
/// version is refused with a word on `liaisond migrate`).
fn open_existing(config: &Config) -> anyhow::Result<Store> {
    if !config.database.exists() {
        anyhow::bail!("no database at {} yet (has liaisond run?)", config.database.display());
    }
    Ok(Store::open_current(&config.database, config.busy_timeout)?)
}

/// The database for reading only: nothing is created, migrated or written.
fn open_read_only(config: &Config) -> anyhow::Result<Store> {
    if !config.database.exists() {
        anyhow::bail!("no database at {} yet (has liaisond run?)", config.database.display());
    }
    Ok(Store::open_read_only(&config.database, config.busy_timeout)?)
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
