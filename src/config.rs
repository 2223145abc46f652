//! Configuration: one TOML file, read in two stages.
//!
//! Stage one deserialises into `Raw*` structs that mirror the file and reject unknown keys
//! (`deny_unknown_fields`), so a typo fails at start-up rather than being silently ignored.
//! Stage two validates and resolves everything (paths, durations, sizes, secrets, TLS rules)
//! into [`Config`], which the rest of the program uses. Every error names the file, the line
//! and the key. Secrets are never printed: [`Secret`]'s `Debug` is redacted.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use liaisond_core::judge::Identity;
use liaisond_core::relationships::Relationships;
use liaisond_core::respond::{AckPolicy, NeverTo, Responder, Templates, builtin_path};
use liaisond_model::{ConfigError, Seg, key_error, normalize_address, syntax_error};
use serde::Deserialize;

/// The environment variable that systemd sets for `LoadCredential=`; a relative
/// `password_file` is looked up there first.
const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// RFC 2177 §3: clients must re-issue IDLE at least every 29 minutes.
const IDLE_REFRESH_MAX: Duration = Duration::from_secs(29 * 60);

/// A secret string (password). Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

// ---------------------------------------------------------------------------------------------
// Stage one: the file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// The relationships data file; default: the built-in copy of config/relationships.toml.
    relationships: Option<String>,
    /// The IETF groups' chairs and ADs; default: the built-in copy of config/ietf-experts.toml.
    experts: Option<String>,
    store: RawStore,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    imap: Vec<RawImap>,
    #[serde(default)]
    maildir: Vec<RawMaildir>,
    mail: Option<RawMail>,
    #[serde(default)]
    routing: RawRouting,
    smtp: Option<RawSmtp>,
    #[serde(default)]
    outbox: RawOutbox,
    #[serde(default)]
    acknowledgements: RawAcknowledgements,
    #[serde(default)]
    notifications: RawNotifications,
    #[serde(default)]
    templates: RawTemplates,
    /// The IANA time zone "today" and the send times are in (default UTC).
    time_zone: Option<String>,
    #[serde(default)]
    reminders: RawReminders,
    #[serde(default)]
    digest: RawDigest,
    #[serde(default)]
    datatracker: RawDatatracker,
    #[serde(default)]
    check_in: RawCheckIn,
    #[serde(default)]
    metrics: RawMetrics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckIn {
    requests: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatatracker {
    record_within: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    textfile: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReminders {
    enabled: Option<bool>,
    send_at: Option<String>,
    days_before: Option<Vec<u32>>,
    overdue_every: Option<u32>,
    overdue_for: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    enabled: Option<bool>,
    days: Option<Vec<String>>,
    send_at: Option<String>,
    check_in_after: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    tls: String,
    ca_file: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<String>,
    password_env: Option<String>,
    timeout: Option<String>,
    hello_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    directory: Option<String>,
    retry_min: Option<String>,
    retry_max: Option<String>,
    give_up_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcknowledgements {
    enabled: Option<bool>,
    unverified_receipts: Option<bool>,
    per_sender_per_day: Option<u32>,
    per_domain_per_day: Option<u32>,
    per_hour: Option<u32>,
    max_age: Option<String>,
    never_to: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    max_age: Option<String>,
    attach_original_max: Option<RawSize>,
    per_sender_per_day: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    directory: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    from: String,
    message_id_domain: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    #[serde(default)]
    trusted_authserv_ids: Vec<String>,
    own_received_fields: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    database: String,
    busy_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_message_size: Option<RawSize>,
    fetch_batch_messages: Option<u32>,
    fetch_batch_size: Option<RawSize>,
    stage_timeout: Option<String>,
}

/// A size: an integer number of bytes, or a string such as `"25 MB"` or `"64MiB"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImap {
    name: String,
    host: String,
    port: Option<u16>,
    tls: String,
    ca_file: Option<String>,
    username: String,
    password: Option<String>,
    password_file: Option<String>,
    password_env: Option<String>,
    #[serde(default = "default_mailbox")]
    mailbox: String,
    after_commit: String,
    move_to: Option<String>,
    idle: Option<bool>,
    poll_interval: Option<String>,
    idle_refresh: Option<String>,
    timeout: Option<String>,
}

fn default_mailbox() -> String {
    "INBOX".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaildir {
    name: String,
    path: String,
    after_commit: String,
    poll_interval: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Stage two: validated.

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The files a password was read from, the configuration itself when it holds one
    /// (see [`exposed_secrets`](Self::exposed_secrets)).
    pub secret_files: Vec<PathBuf>,
    /// The file this was read from.
    pub path: PathBuf,
    /// The relationships data file, when not the built-in one.
    pub relationships: Option<PathBuf>,
    /// `experts`: the IETF groups' chairs and ADs (None: none are named).
    pub experts: Option<PathBuf>,
    pub database: PathBuf,
    pub busy_timeout: Duration,
    pub limits: Limits,
    pub imap: Vec<ImapConfig>,
    pub maildir: Vec<MaildirConfig>,
    /// Who liaisond is when it sends mail; `None`: the relationships data's first own address.
    pub mail: Option<MailIdentity>,
    /// The authserv-ids of the receiving servers whose `Authentication-Results` are trusted.
    pub trusted_authserv_ids: Vec<String>,
    /// How many `Received` fields our own servers put above their `Authentication-Results`.
    pub own_received_fields: usize,
    /// How mail is sent; `None` with no `outbox.directory` either: mail waits in the outbox.
    pub smtp: Option<SmtpConfig>,
    pub outbox: OutboxConfig,
    pub acknowledgements: liaisond_core::respond::AckPolicy,
    pub notifications: NotificationsConfig,
    /// Where the operator's templates are (`ack.txt`, `notification.txt`, `alert.txt`,
    /// `reminder.txt`, `digest.txt`); `None`: the built-in copies of `config/templates/`.
    pub templates: Option<PathBuf>,
    /// Reminders, digests and the time zone they are planned in.
    pub follow: FollowConfig,
    /// Where the daemon writes its OpenMetrics text every minute (`[metrics] textfile`), for
    /// node_exporter's textfile collector.
    pub metrics_textfile: Option<PathBuf>,
}

/// When reminders and digests go out.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// "Today" and the send times are in this zone.
    pub time_zone: jiff::tz::TimeZone,
    /// Its IANA name, as configured.
    pub time_zone_name: String,
    pub reminders_enabled: bool,
    /// Reminders for a day go out from this local time.
    pub reminders_at: jiff::civil::Time,
    pub ladder: liaisond_core::follow::Ladder,
    pub digest_enabled: bool,
    pub digest: liaisond_core::follow::DigestSchedule,
    /// The digest lists managers not heard from for longer than this.
    pub check_in_after: Duration,
    /// A statement not recorded in the datatracker this long after it arrived gets one
    /// reminder, a digest line, and a place in `statements list --unrecorded`.
    pub record_within: Duration,
    /// Mail each liaison manager whose yearly check-in is due (`[check_in] requests`).
    pub check_in_requests: bool,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            time_zone: jiff::tz::TimeZone::UTC,
            time_zone_name: "UTC".into(),
            reminders_enabled: true,
            reminders_at: jiff::civil::Time::constant(9, 0, 0, 0),
            ladder: liaisond_core::follow::Ladder::default(),
            digest_enabled: true,
            digest: liaisond_core::follow::DigestSchedule::default(),
            check_in_after: Duration::from_secs(365 * 24 * 3600),
            record_within: Duration::from_secs(7 * 24 * 3600),
            check_in_requests: true,
        }
    }
}

/// The SMTP server liaisond sends through.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    /// `None`: no AUTH (a local relay that trusts the machine).
    pub credentials: Option<(String, Secret)>,
    pub password_source: Option<String>,
    /// Limit for each step (connect, TLS, each command, the message data).
    pub timeout: Duration,
    /// The name sent in EHLO; default: this machine's host name.
    pub hello_name: Option<String>,
}

/// How the outbox is worked off.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Write each message as a `.eml` file here instead of sending it (a dry run; the demo).
    pub directory: Option<PathBuf>,
    /// The first retry after a temporary failure; each next one waits twice as long...
    pub retry_min: Duration,
    /// ... up to this.
    pub retry_max: Duration,
    /// A message not sent this long after it was written fails for good.
    pub give_up_after: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            directory: None,
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NotificationsConfig {
    /// No notification for mail received longer ago than this (a first run on an old mailbox).
    pub max_age: Duration,
    /// Originals larger than this are not attached.
    pub attach_original_max: u64,
    /// At most this many notifications about mail from one sender in 24 hours.
    pub per_sender_per_day: u32,
}

/// Who liaisond is when it sends mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailIdentity {
    /// The display name, when `from` gave one (`Name <address>`).
    pub from_name: Option<String>,
    /// The address, normalised (lower case).
    pub from: String,
    /// The domain of our Message-IDs (default: the address's domain).
    pub message_id_domain: String,
}

/// Limits on untrusted input and on each step that handles it.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Messages larger than this are not fetched; their headers are kept and they are
    /// quarantined as oversized.
    pub max_message_size: u64,
    /// At most this many messages per IMAP FETCH.
    pub fetch_batch_messages: u32,
    /// At most this many bytes (by RFC822.SIZE) per IMAP FETCH, unless one message alone is
    /// larger; this bounds memory to roughly this value or the largest message.
    pub fetch_batch_size: u64,
    /// Wall-clock limit for the pure pipeline on one message.
    pub stage_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024 * 1024,
            fetch_batch_messages: 50,
            fetch_batch_size: 16 * 1024 * 1024,
            stage_timeout: Duration::from_secs(60),
        }
    }
}

/// How the IMAP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connection upgraded with STARTTLS before login (RFC 3501 §6.2.1); fails closed.
    StartTls,
    /// No TLS at all: allowed only for a loopback host.
    None,
}

/// What to do on the server once a message is safely committed to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterCommit {
    /// Move it to this folder (MOVE, else COPY + \Deleted + UID EXPUNGE).
    Move(String),
    /// Set `\Seen`.
    Seen,
    /// Leave it as it is; the UID cursor alone remembers it.
    Leave,
}

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub password: Secret,
    /// Where the password came from, for `check-config` (never the value).
    pub password_source: String,
    pub mailbox: String,
    pub after_commit: AfterCommit,
    pub idle: bool,
    pub poll_interval: Duration,
    pub idle_refresh: Duration,
    /// Time limit for each network step (connect, TLS, each command, each fetched message).
    pub timeout: Duration,
}

/// What to do with a Maildir file once it is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaildirAfter {
    /// Move `new/x` to `cur/x:2,` (the Maildir convention for "seen by a client").
    Cur,
    /// Leave the file; the database remembers it by its unique name (read-only Maildirs, demo).
    Leave,
}

#[derive(Debug, Clone)]
pub struct MaildirConfig {
    pub name: String,
    pub path: PathBuf,
    pub after_commit: MaildirAfter,
    pub poll_interval: Duration,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::from_str_at(&read(path)?, path)
    }

    /// Reads a configuration for `liaisond ingest`: the whole file must still be well-formed
    /// (no unknown keys), but the sources and `[smtp]` are not validated, so their passwords
    /// and folders need not be reachable by the MTA's pipe user. The result has no sources and
    /// no SMTP server.
    pub fn load_store_only(path: &Path) -> Result<Config, ConfigError> {
        Config::parse(&read(path)?, path, false)
    }

    /// Parses configuration text that came from `path` (used for messages and for resolving
    /// relative paths).
    pub fn from_str_at(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::parse(text, path, true)
    }

    /// [`from_str_at`](Self::from_str_at) without the sources and `[smtp]` (as
    /// [`load_store_only`](Self::load_store_only)).
    pub fn from_str_store_only(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::parse(text, path, false)
    }

    /// Reads a configuration for a command that logs in nowhere (`status`, `statements done`,
    /// ...: all but `run`, `check-config` and `doctor`): the whole file is validated, but no
    /// password is read (the password files may be root's, as systemd credentials are). The
    /// passwords of the result are empty.
    pub fn load_without_secrets(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        Config::parse_with(&text, path, true, false)
    }

    fn parse(text: &str, path: &Path, with_sources: bool) -> Result<Config, ConfigError> {
        Config::parse_with(text, path, with_sources, true)
    }

    fn parse_with(text: &str, path: &Path, with_sources: bool, read_secrets: bool) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| syntax_error(text, path, &e))?;
        let mut raw = raw;
        if !with_sources {
            raw.imap.clear();
            raw.maildir.clear();
            // `ingest` queues mail but never sends it (the daemon does): the MTA's pipe user
            // need not read the SMTP password either.
            raw.smtp = None;
        }
        let v = Validator {
            text,
            path,
            base: path.parent().unwrap_or(Path::new(".")),
            secret_files: Default::default(),
            read_secrets,
        };
        v.validate(raw)
    }

    /// A warning for each file holding a password that its group or others may read (a
    /// password in a world-readable file is a password anyone on the machine has).
    pub fn exposed_secrets(&self) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        self.secret_files
            .iter()
            .filter_map(|path| {
                let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
                (mode & 0o077 != 0).then(|| {
                    format!(
                        "{} holds a password and is readable by {} (mode {mode:04o}): chmod 600 it",
                        path.display(),
                        if mode & 0o007 != 0 { "everyone" } else { "its group" }
                    )
                })
            })
            .collect()
    }

    /// The relationships data: the configured file, or the built-in default.
    pub fn load_relationships(&self) -> Result<Relationships, ConfigError> {
        match &self.relationships {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::whole_file(path, format!("cannot read the relationships file: {e}")))?;
                Relationships::from_str_at(&text, path)
            }
            None => Ok(Relationships::builtin()),
        }
    }

    /// The IETF groups' chairs and ADs: the `experts` file, else none (the built-in copy is
    /// sample data: a notification must not name invented people as chairs).
    pub fn load_experts(&self) -> Result<liaisond_core::experts::Experts, ConfigError> {
        match &self.experts {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::whole_file(path, format!("cannot read the experts file: {e}")))?;
                liaisond_core::experts::Experts::from_str_at(&text, path)
            }
            None => Ok(liaisond_core::experts::Experts::default()),
        }
    }

    /// The templates: the operator's directory, else the built-in copies of `config/templates/`.
    pub fn load_templates(&self) -> Result<Templates, ConfigError> {
        Templates::from_texts(|name, builtin| match &self.templates {
            // Added later (reminders and digest with schema 5, the receipt with 6, the
            // "not recorded" reminder, the confirmation and the check-in with 7): an
            // operator's directory from before may not have them yet.
            Some(dir)
                if matches!(
                    name,
                    "reminder.txt"
                        | "digest.txt"
                        | "receipt.txt"
                        | "unrecorded.txt"
                        | "confirmation.txt"
                        | "check-in.txt"
                ) && !dir.join(name).exists() =>
            {
                Ok((builtin.to_string(), builtin_path(name)))
            }
            Some(dir) => {
                let path = dir.join(name);
                Ok((read(&path)?, path))
            }
            None => Ok((builtin.to_string(), builtin_path(name))),
        })
    }

    /// Who we are and whom we trust: `[mail]`, `trusted_authserv_ids` and
    /// `own_received_fields`, else the relationships data's first own address.
    pub fn identity(&self, rel: &Relationships) -> Identity {
        let mut identity = Identity::from_relationships(rel);
        if let Some(m) = &self.mail {
            identity.ours.from = m.from.clone();
            identity.ours.message_id_domain = m.message_id_domain.clone();
        }
        identity.trusted_authserv_ids = self.trusted_authserv_ids.clone();
        identity.own_received_fields = self.own_received_fields;
        identity
    }

    /// What plans the mail liaisond sends: the policy from this file, the templates, and who
    /// we are (`[mail]`, else the relationships data's first own address).
    pub fn responder(&self, rel: &Relationships) -> Result<Responder, ConfigError> {
        let templates = self.load_templates()?;
        let identity = self.identity(rel);
        let from_address = identity.ours.from;
        let from = match self.mail.as_ref().and_then(|m| m.from_name.as_ref()) {
            Some(name) => format!("\"{}\" <{from_address}>", name.replace(['"', '\\'], "")),
            None => from_address.clone(),
        };
        let mut responder = Responder::new(
            self.acknowledgements.clone(),
            self.notifications.max_age,
            self.notifications.attach_original_max,
            templates,
            from,
            from_address,
            identity.ours.message_id_domain,
        );
        responder.notify_per_sender_per_day = self.notifications.per_sender_per_day;
        responder.experts = self.load_experts()?;
        Ok(responder)
    }

    /// Every source name, in order (IMAP then Maildir).
    pub fn source_names(&self) -> Vec<&str> {
        self.imap.iter().map(|i| i.name.as_str()).chain(self.maildir.iter().map(|m| m.name.as_str())).collect()
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read the configuration file: {e}")))
}

/// The outbound sections: `[smtp]`, `[outbox]`, `[acknowledgements]`, `[notifications]`,
/// `[templates]`.
type Outbound = (Option<SmtpConfig>, OutboxConfig, AckPolicy, NotificationsConfig, Option<PathBuf>);

struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
    base: &'a Path,
    /// The files a password was read from (the configuration itself for an inline one).
    secret_files: std::cell::RefCell<Vec<PathBuf>>,
    /// Whether `password_file` and `password_env` are read (not for read-only commands).
    read_secrets: bool,
}

impl Validator<'_> {
    /// An error located at `key` (or at its nearest existing parent).
    fn err(&self, key: &[Seg<'_>], message: impl Into<String>) -> ConfigError {
        key_error(self.text, self.path, key, message)
    }

    fn duration(&self, key: &[Seg<'_>], value: Option<&String>, default: Duration) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(s) => match humantime::parse_duration(s) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err(self.err(key, "must be longer than zero")),
                Err(e) => Err(self.err(key, format!("`{s}` is not a duration ({e}); write e.g. \"30s\", \"5m\""))),
            },
        }
    }

    fn size(&self, key: &[Seg<'_>], value: Option<&RawSize>, default: u64) -> Result<u64, ConfigError> {
        let bytes = match value {
            None => return Ok(default),
            Some(RawSize::Bytes(b)) => Some(*b),
            Some(RawSize::Text(s)) => parse_size(s),
        };
        match bytes {
            Some(b) if b > 0 => Ok(b),
            Some(_) => Err(self.err(key, "must be larger than zero")),
            None => Err(self.err(key, "not a size; write bytes, or e.g. \"25 MB\", \"64 MiB\"")),
        }
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() { p.to_path_buf() } else { self.base.join(p) }
    }

    fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        use Seg::{Index, Key};
        if raw.store.database.trim().is_empty() {
            return Err(self.err(&[Key("store"), Key("database")], "must name a file"));
        }
        let database = self.resolve(&raw.store.database);
        let busy_timeout = self.duration(
            &[Key("store"), Key("busy_timeout")],
            raw.store.busy_timeout.as_ref(),
            Duration::from_secs(10),
        )?;

        let (smtp, outbox, acknowledgements, notifications, templates) = self.outbound(&raw)?;
        let follow = self.follow(&raw)?;
        let d = Limits::default();
        let l = &raw.limits;
        let limits = Limits {
            max_message_size: self.size(
                &[Key("limits"), Key("max_message_size")],
                l.max_message_size.as_ref(),
                d.max_message_size,
            )?,
            fetch_batch_messages: match l.fetch_batch_messages {
                None => d.fetch_batch_messages,
                Some(n @ 1..=1000) => n,
                Some(_) => {
                    return Err(self.err(&[Key("limits"), Key("fetch_batch_messages")], "must be between 1 and 1000"));
                }
            },
            fetch_batch_size: self.size(
                &[Key("limits"), Key("fetch_batch_size")],
                l.fetch_batch_size.as_ref(),
                d.fetch_batch_size,
            )?,
            stage_timeout: self.duration(
                &[Key("limits"), Key("stage_timeout")],
                l.stage_timeout.as_ref(),
                d.stage_timeout,
            )?,
        };

        let mut names: Vec<(String, Vec<Seg<'static>>)> = Vec::new();
        let mut imap = Vec::new();
        for (i, r) in raw.imap.into_iter().enumerate() {
            let at = |k: &'static str| [Key("imap"), Index(i), Key(k)];
            check_name(self, &at("name"), &r.name)?;
            if r.host.trim().is_empty() {
                return Err(self.err(&at("host"), "must name the IMAP server"));
            }
            let tls = match r.tls.as_str() {
                "implicit" => TlsMode::Implicit,
                "starttls" => TlsMode::StartTls,
                "none" => {
                    if !is_loopback_host(&r.host) {
                        return Err(self.err(
                            &at("tls"),
                            format!("\"none\" sends the password in clear text and is allowed only for a loopback host, not `{}`", r.host),
                        ));
                    }
                    TlsMode::None
                }
                other => {
                    return Err(
                        self.err(&at("tls"), format!("`{other}` is not one of \"implicit\", \"starttls\", \"none\""))
                    );
                }
            };
            let port = r.port.unwrap_or(match tls {
                TlsMode::Implicit => 993,
                TlsMode::StartTls | TlsMode::None => 143,
            });
            let ca_file = match &r.ca_file {
                Some(p) => {
                    let p = self.resolve(p);
                    if tls == TlsMode::None {
                        return Err(self.err(&at("ca_file"), "makes no sense with tls = \"none\""));
                    }
                    crate::tls::ca_certificates(&p).map_err(|e| self.err(&at("ca_file"), e))?;
                    Some(p)
                }
                None => None,
            };
            if r.username.is_empty() {
                return Err(self.err(&at("username"), "must not be empty"));
            }
            let (password, password_source) = self.password(i, &r)?;
            let after_commit = match (r.after_commit.as_str(), &r.move_to) {
                ("move", Some(folder)) if !folder.is_empty() && folder.is_ascii() => AfterCommit::Move(folder.clone()),
                ("move", Some(_)) => {
                    return Err(self
                        .err(&at("move_to"), "must be a non-empty ASCII folder name (modified UTF-7 is not applied)"));
                }
                ("move", None) => {
                    return Err(self.err(&at("after_commit"), "\"move\" needs `move_to`, the folder to move to"));
                }
                ("seen", None) => AfterCommit::Seen,
                ("leave", None) => AfterCommit::Leave,
                ("seen" | "leave", Some(_)) => {
                    return Err(self.err(&at("move_to"), "only makes sense with after_commit = \"move\""));
                }
                (other, _) => {
                    return Err(
                        self.err(&at("after_commit"), format!("`{other}` is not one of \"move\", \"seen\", \"leave\""))
                    );
                }
            };
            if !r.mailbox.is_ascii() || r.mailbox.is_empty() {
                return Err(self.err(&at("mailbox"), "must be a non-empty ASCII mailbox name"));
            }
            if let AfterCommit::Move(f) = &after_commit
                && f == &r.mailbox
            {
                return Err(self.err(&at("move_to"), "must differ from `mailbox`"));
            }
            let idle_refresh =
                self.duration(&at("idle_refresh"), r.idle_refresh.as_ref(), Duration::from_secs(20 * 60))?;
            if idle_refresh >= IDLE_REFRESH_MAX {
                return Err(self.err(&at("idle_refresh"), "must be shorter than 29 minutes (RFC 2177 §3)"));
            }
            let timeout = self.duration(&at("timeout"), r.timeout.as_ref(), Duration::from_secs(60))?;
            names.push((r.name.clone(), at("name").to_vec()));
            imap.push(ImapConfig {
                name: r.name,
                host: r.host,
                port,
                tls,
                ca_file,
                username: r.username,
                password,
                password_source,
                mailbox: r.mailbox,
                after_commit,
                idle: r.idle.unwrap_or(true),
                poll_interval: self.duration(
                    &at("poll_interval"),
                    r.poll_interval.as_ref(),
                    Duration::from_secs(60),
                )?,
                idle_refresh,
                timeout,
            });
        }

        let mut maildir = Vec::new();
        for (i, r) in raw.maildir.into_iter().enumerate() {
            let at = |k: &'static str| [Key("maildir"), Index(i), Key(k)];
            check_name(self, &at("name"), &r.name)?;
            let path = self.resolve(&r.path);
            if !path.join("new").is_dir() {
                return Err(
                    self.err(&at("path"), format!("{} is not a Maildir (no new/ folder in it)", path.display()))
                );
            }
            let after_commit = match r.after_commit.as_str() {
                "cur" => MaildirAfter::Cur,
                "leave" => MaildirAfter::Leave,
                other => {
                    return Err(self.err(&at("after_commit"), format!("`{other}` is not one of \"cur\", \"leave\"")));
                }
            };
            names.push((r.name.clone(), at("name").to_vec()));
            maildir.push(MaildirConfig {
                name: r.name,
                path,
                after_commit,
                poll_interval: self.duration(
                    &at("poll_interval"),
                    r.poll_interval.as_ref(),
                    Duration::from_secs(30),
                )?,
            });
        }

        for (i, (name, key)) in names.iter().enumerate() {
            if names[..i].iter().any(|(n, _)| n == name) {
                return Err(self.err(key, format!("the source name `{name}` is used twice; names must be unique")));
            }
        }

        // A data file named at the top level (read later, by `load_relationships` and
        // `load_experts`): it must be there now.
        let data_file = |key: &'static str, path: &Option<String>| match path {
            Some(p) => {
                let p = self.resolve(p);
                if p.is_file() {
                    Ok(Some(p))
                } else {
                    Err(self.err(&[Key(key)], format!("{} is not a readable file", p.display())))
                }
            }
            None => Ok(None),
        };
        let relationships = data_file("relationships", &raw.relationships)?;
        let experts = data_file("experts", &raw.experts)?;
        let mail = match &raw.mail {
            None => None,
            Some(m) => {
                let (name, address) = match (m.from.rfind('<'), m.from.rfind('>')) {
                    (Some(l), Some(r)) if l < r => {
                        let name = m.from[..l].trim().trim_matches('"').trim();
                        ((!name.is_empty()).then(|| name.to_string()), m.from[l + 1..r].to_string())
                    }
                    _ => (None, m.from.clone()),
                };
                let Some(from) = normalize_address(&address) else {
                    return Err(self.err(
                        &[Key("mail"), Key("from")],
                        format!("`{}` is not an e-mail address (write `address` or `Name <address>`)", m.from),
                    ));
                };
                let domain = match &m.message_id_domain {
                    Some(d) if d.contains('.') && !d.contains(['@', '<', '>', ' ']) => d.to_ascii_lowercase(),
                    Some(d) => {
                        return Err(
                            self.err(&[Key("mail"), Key("message_id_domain")], format!("`{d}` is not a domain name"))
                        );
                    }
                    None => from.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default(),
                };
                Some(MailIdentity { from_name: name, from, message_id_domain: domain })
            }
        };
        for (i, id) in raw.routing.trusted_authserv_ids.iter().enumerate() {
            if id.trim().is_empty() || id.contains([';', ' ']) {
                return Err(self.err(
                    &[Key("routing"), Key("trusted_authserv_ids"), Index(i)],
                    format!("`{id}` is not an authserv-id (a host name such as mail.example.org)"),
                ));
            }
        }
        let own_received_fields = match raw.routing.own_received_fields {
            None => liaisond_core::judge::DEFAULT_OWN_RECEIVED_FIELDS,
            // A delivery path of more hops than this is not one's own servers'.
            Some(n @ 0..=10) => n as usize,
            Some(_) => {
                return Err(self.err(&[Key("routing"), Key("own_received_fields")], "must be between 0 and 10"));
            }
        };
        Ok(Config {
            follow,
            metrics_textfile: match &raw.metrics.textfile {
                None => None,
                Some(p) if !p.ends_with(".prom") => {
                    return Err(self.err(
                        &[Seg::Key("metrics"), Seg::Key("textfile")],
                        "must end in .prom (node_exporter's textfile collector reads only those)",
                    ));
                }
                Some(p) => Some(self.resolve(p)),
            },
            smtp,
            outbox,
            acknowledgements,
            notifications,
            templates,
            path: self.path.to_path_buf(),
            relationships,
            experts,
            database,
            busy_timeout,
            limits,
            imap,
            maildir,
            mail,
            trusted_authserv_ids: raw
                .routing
                .trusted_authserv_ids
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
            secret_files: {
                let mut files = self.secret_files.take();
                files.dedup();
                files
            },
            own_received_fields,
        })
    }

    /// Exactly one of `password`, `password_file`, `password_env`.
    fn password(&self, i: usize, r: &RawImap) -> Result<(Secret, String), ConfigError> {
        use Seg::{Index, Key};
        let table = [Key("imap"), Index(i)];
        match self.secret(&table, r.password.as_ref(), r.password_file.as_ref(), r.password_env.as_ref())? {
            Some(found) => Ok(found),
            None => Err(self.err(&table, "needs one of `password_file`, `password_env` or `password`")),
        }
    }

    /// The secret given by at most one of `password`, `password_file`, `password_env` in the
    /// table at `table`; `None` when none is given.
    fn secret(
        &self,
        table: &[Seg<'_>],
        inline: Option<&String>,
        file: Option<&String>,
        env: Option<&String>,
    ) -> Result<Option<(Secret, String)>, ConfigError> {
        let at = |k: &'static str| {
            let mut key = table.to_vec();
            key.push(Seg::Key(k));
            key
        };
        match [inline.is_some(), file.is_some(), env.is_some()].iter().filter(|g| **g).count() {
            0 => return Ok(None),
            1 => {}
            _ => {
                return Err(
                    self.err(&at("password_file"), "give only one of `password_file`, `password_env`, `password`")
                );
            }
        }
        if !self.read_secrets {
            return Ok(Some((Secret::new(String::new()), "not read (a read-only command)".into())));
        }
        if let Some(p) = inline {
            self.secret_files.borrow_mut().push(self.path.to_path_buf());
            return Ok(Some((Secret::new(p.clone()), "inline in the configuration file".into())));
        }
        if let Some(var) = env {
            return match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Some((Secret::new(v), format!("environment variable {var}")))),
                _ => Err(self.err(&at("password_env"), format!("the environment variable {var} is not set or empty"))),
            };
        }
        let name = file.map(String::as_str).unwrap_or_default();
        let candidates: Vec<PathBuf> = if Path::new(name).is_absolute() {
            vec![PathBuf::from(name)]
        } else {
            // A relative name is a systemd credential first (LoadCredential=), then a file
            // next to the configuration.
            let mut c = Vec::new();
            if let Some(dir) = std::env::var_os(CREDENTIALS_DIRECTORY) {
                c.push(Path::new(&dir).join(name));
            }
            c.push(self.resolve(name));
            c
        };
        let mut tried = Vec::new();
        for path in &candidates {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    // Say why: a missing file and one the service may not read need different fixes.
                    let why = match e.kind() {
                        std::io::ErrorKind::NotFound => "no such file".to_string(),
                        std::io::ErrorKind::PermissionDenied => "permission denied to this user".to_string(),
                        _ => e.to_string(),
                    };
                    tried.push(format!("{}: {why}", path.display()));
                    continue;
                }
            };
            // One trailing newline is what `echo secret > file` writes; it is not part of it.
            let value = text.strip_suffix('\n').unwrap_or(&text);
            let value = value.strip_suffix('\r').unwrap_or(value);
            if value.is_empty() {
                return Err(self.err(&at("password_file"), format!("{} is empty", path.display())));
            }
            self.secret_files.borrow_mut().push(path.clone());
            return Ok(Some((Secret::new(value), format!("file {}", path.display()))));
        }
        Err(self.err(&at("password_file"), format!("cannot read the password file ({})", tried.join("; "))))
    }

    /// `time_zone`, `[reminders]` and `[digest]`.
    fn follow(&self, raw: &RawConfig) -> Result<FollowConfig, ConfigError> {
        use Seg::Key;
        let d = FollowConfig::default();
        let (time_zone, time_zone_name) = match &raw.time_zone {
            None => (d.time_zone.clone(), d.time_zone_name.clone()),
            Some(name) => match jiff::tz::TimeZone::get(name) {
                Ok(tz) => (tz, name.clone()),
                Err(e) => {
                    return Err(self.err(
                        &[Key("time_zone")],
                        format!("`{name}` is not a time zone this machine knows ({e}); write an IANA name such as \"Europe/Zurich\" or \"UTC\""),
                    ));
                }
            },
        };
        let r = &raw.reminders;
        let at = |k: &'static str| [Key("reminders"), Key(k)];
        let mut days_before = match &r.days_before {
            None => d.ladder.days_before.clone(),
            Some(days) if days.iter().all(|n| *n <= 366) => days.clone(),
            Some(_) => return Err(self.err(&at("days_before"), "days before the deadline must be between 0 and 366")),
        };
        days_before.sort_unstable_by(|a, b| b.cmp(a));
        days_before.dedup();
        let overdue_every = match r.overdue_every {
            None => d.ladder.overdue_every,
            Some(n @ 1..=366) => n,
            Some(_) => return Err(self.err(&at("overdue_every"), "must be between 1 and 366 (days)")),
        };
        let overdue_for = match r.overdue_for {
            None => d.ladder.overdue_for,
            Some(n @ 0..=366) => n,
            Some(_) => return Err(self.err(&at("overdue_for"), "must be between 0 and 366 (days)")),
        };
        let reminders_at = self.time_of_day(&at("send_at"), r.send_at.as_ref(), d.reminders_at)?;
        let g = &raw.digest;
        let at = |k: &'static str| [Key("digest"), Key(k)];
        let days = match &g.days {
            None => d.digest.days.clone(),
            Some(names) => {
                let mut days = Vec::new();
                for name in names {
                    match weekday(name) {
                        Some(w) if !days.contains(&w) => days.push(w),
                        Some(_) => {}
                        None => {
                            return Err(
                                self.err(&at("days"), format!("`{name}` is not a weekday (write e.g. \"monday\")"))
                            );
                        }
                    }
                }
                days
            }
        };
        Ok(FollowConfig {
            time_zone,
            time_zone_name,
            reminders_enabled: r.enabled.unwrap_or(true),
            reminders_at,
            ladder: liaisond_core::follow::Ladder { days_before, overdue_every, overdue_for },
            digest_enabled: g.enabled.unwrap_or(true),
            digest: liaisond_core::follow::DigestSchedule {
                days,
                send_at: self.time_of_day(&at("send_at"), g.send_at.as_ref(), d.digest.send_at)?,
            },
            check_in_after: self.duration(&at("check_in_after"), g.check_in_after.as_ref(), d.check_in_after)?,
            record_within: self.duration(
                &[Key("datatracker"), Key("record_within")],
                raw.datatracker.record_within.as_ref(),
                d.record_within,
            )?,
            check_in_requests: raw.check_in.requests.unwrap_or(d.check_in_requests),
        })
    }

    /// `"09:00"`.
    fn time_of_day(
        &self,
        key: &[Seg<'_>],
        value: Option<&String>,
        default: jiff::civil::Time,
    ) -> Result<jiff::civil::Time, ConfigError> {
        let Some(text) = value else { return Ok(default) };
        let parsed = text
            .trim()
            .split_once(':')
            .and_then(|(h, m)| Some((h.parse::<i8>().ok()?, m.parse::<i8>().ok()?)))
            .and_then(|(h, m)| jiff::civil::Time::new(h, m, 0, 0).ok());
        parsed.ok_or_else(|| self.err(key, format!("`{text}` is not a time of day; write e.g. \"09:00\"")))
    }

    /// `[smtp]`, `[outbox]`, `[acknowledgements]`, `[notifications]`, `[templates]`.
    fn outbound(&self, raw: &RawConfig) -> Result<Outbound, ConfigError> {
        use Seg::{Index, Key};
        let smtp = match &raw.smtp {
            None => None,
            Some(r) => {
                let at = |k: &'static str| [Key("smtp"), Key(k)];
                if r.host.trim().is_empty() {
                    return Err(self.err(&at("host"), "must name the SMTP server"));
                }
                let tls = match r.tls.as_str() {
                    "implicit" => TlsMode::Implicit,
                    "starttls" => TlsMode::StartTls,
                    "none" if is_loopback_host(&r.host) => TlsMode::None,
                    "none" => {
                        return Err(self.err(
                            &at("tls"),
                            format!("\"none\" is allowed only for a loopback host, not `{}`", r.host),
                        ));
                    }
                    other => {
                        return Err(self
                            .err(&at("tls"), format!("`{other}` is not one of \"implicit\", \"starttls\", \"none\"")));
                    }
                };
                let ca_file = match &r.ca_file {
                    Some(_) if tls == TlsMode::None => {
                        return Err(self.err(&at("ca_file"), "makes no sense with tls = \"none\""));
                    }
                    Some(p) => {
                        let p = self.resolve(p);
                        crate::tls::ca_certificates(&p).map_err(|e| self.err(&at("ca_file"), e))?;
                        Some(p)
                    }
                    None => None,
                };
                let secret = self.secret(
                    &[Key("smtp")],
                    r.password.as_ref(),
                    r.password_file.as_ref(),
                    r.password_env.as_ref(),
                )?;
                let (credentials, password_source) = match (&r.username, secret) {
                    (Some(u), Some((p, source))) if !u.is_empty() => (Some((u.clone(), p)), Some(source)),
                    (Some(_), Some(_)) => return Err(self.err(&at("username"), "must not be empty")),
                    (None, None) => (None, None),
                    (Some(_), None) => {
                        return Err(self.err(
                            &[Key("smtp")],
                            "`username` needs one of `password_file`, `password_env` or `password`",
                        ));
                    }
                    (None, Some(_)) => return Err(self.err(&[Key("smtp")], "a password needs a `username`")),
                };
                if credentials.is_some() && tls == TlsMode::None && !is_loopback_host(&r.host) {
                    return Err(self.err(&at("tls"), "a password is never sent in clear text"));
                }
                Some(SmtpConfig {
                    host: r.host.clone(),
                    port: r.port.unwrap_or(match tls {
                        TlsMode::Implicit => 465,
                        TlsMode::StartTls => 587,
                        TlsMode::None => 25,
                    }),
                    tls,
                    ca_file,
                    credentials,
                    password_source,
                    timeout: self.duration(&at("timeout"), r.timeout.as_ref(), Duration::from_secs(60))?,
                    hello_name: r.hello_name.clone().filter(|h| !h.trim().is_empty()),
                })
            }
        };
        let o = &raw.outbox;
        let at = |k: &'static str| [Key("outbox"), Key(k)];
        let d = OutboxConfig::default();
        let directory = o.directory.as_ref().map(|p| self.resolve(p));
        if directory.is_some() && smtp.is_some() {
            return Err(self.err(
                &at("directory"),
                "writes mail to files instead of sending it: give `[smtp]` or `outbox.directory`, not both",
            ));
        }
        let outbox = OutboxConfig {
            directory,
            retry_min: self.duration(&at("retry_min"), o.retry_min.as_ref(), d.retry_min)?,
            retry_max: self.duration(&at("retry_max"), o.retry_max.as_ref(), d.retry_max)?,
            give_up_after: self.duration(&at("give_up_after"), o.give_up_after.as_ref(), d.give_up_after)?,
        };
        if outbox.retry_max < outbox.retry_min {
            return Err(self.err(&at("retry_max"), "must not be shorter than `retry_min`"));
        }

        let a = &raw.acknowledgements;
        let at = |k: &'static str| [Key("acknowledgements"), Key(k)];
        let never_to: Vec<String> = match &a.never_to {
            Some(list) => list.clone(),
            None => liaisond_core::respond::DEFAULT_NEVER_ACK.iter().map(|s| s.to_string()).collect(),
        };
        // Compiled here, once: the error names the pattern's line.
        let never_to = NeverTo::new(never_to).map_err(|e| match e.index {
            Some(i) => self.err(&[Key("acknowledgements"), Key("never_to"), Index(i)], e.to_string()),
            None => self.err(&[Key("acknowledgements"), Key("never_to")], e.to_string()),
        })?;
        let acknowledgements = AckPolicy {
            enabled: a.enabled.unwrap_or(true),
            unverified_receipts: a.unverified_receipts.unwrap_or(true),
            per_domain_per_day: match a.per_domain_per_day {
                None => 20,
                Some(n @ 1..) => n,
                Some(0) => {
                    return Err(
                        self.err(&at("per_domain_per_day"), "must be at least 1 (use `enabled = false` to send none)")
                    );
                }
            },
            per_sender_per_day: match a.per_sender_per_day {
                None => 3,
                Some(n @ 1..) => n,
                Some(0) => {
                    return Err(
                        self.err(&at("per_sender_per_day"), "must be at least 1 (use `enabled = false` to send none)")
                    );
                }
            },
            per_hour: match a.per_hour {
                None => 30,
                Some(n @ 1..) => n,
                Some(0) => {
                    return Err(self.err(&at("per_hour"), "must be at least 1 (use `enabled = false` to send none)"));
                }
            },
            max_age: self.duration(&at("max_age"), a.max_age.as_ref(), Duration::from_secs(2 * 24 * 3600))?,
            never_to,
        };
        let n = &raw.notifications;
        let notifications = NotificationsConfig {
            max_age: self.duration(
                &[Key("notifications"), Key("max_age")],
                n.max_age.as_ref(),
                Duration::from_secs(30 * 24 * 3600),
            )?,
            attach_original_max: self.size(
                &[Key("notifications"), Key("attach_original_max")],
                n.attach_original_max.as_ref(),
                20 * 1024 * 1024,
            )?,
            per_sender_per_day: match n.per_sender_per_day {
                None => liaisond_core::respond::DEFAULT_NOTIFY_PER_SENDER_PER_DAY,
                Some(n @ 1..) => n,
                Some(0) => {
                    return Err(self.err(&[Key("notifications"), Key("per_sender_per_day")], "must be at least 1"));
                }
            },
        };
        let templates = match &raw.templates.directory {
            None => None,
            Some(p) => {
                let p = self.resolve(p);
                if !p.is_dir() {
                    return Err(
                        self.err(&[Key("templates"), Key("directory")], format!("{} is not a directory", p.display()))
                    );
                }
                Some(p)
            }
        };
        Ok((smtp, outbox, acknowledgements, notifications, templates))
    }
}

/// A weekday by its English name or its first three letters, any case.
fn weekday(name: &str) -> Option<jiff::civil::Weekday> {
    use jiff::civil::Weekday::*;
    let n = name.trim().to_ascii_lowercase();
    [Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday].into_iter().find(|w| {
        let full = format!("{w:?}").to_ascii_lowercase();
        n == full || (n.len() == 3 && full.starts_with(&n))
    })
}

fn check_name(v: &Validator<'_>, key: &[Seg<'_>], name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(v.err(key, "must be 1 to 64 characters of letters, digits, '-', '_' or '.'")) }
}

/// Whether `host` is certainly this machine (an IP in 127.0.0.0/8 or ::1, or `localhost`).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses `"25 MB"`, `"64MiB"`, `"100k"`, `"1048576"`. Decimal units are powers of 1000,
/// binary units powers of 1024.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1024,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1024 * 1024,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[store]
database = "state/liaisond.db"

[[maildir]]
name = "demo"
path = "."
after_commit = "leave"
"#;

    fn dir_with_maildir() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("new")).expect("mkdir");
        d
    }

    fn load(text: &str, dir: &Path) -> Result<Config, ConfigError> {
        Config::from_str_at(text, &dir.join("liaisond.toml"))
    }

    #[test]
    fn minimal_config_resolves_relative_paths_against_the_file() {
        let d = dir_with_maildir();
        let c = load(MINIMAL, d.path()).expect("valid");
        assert_eq!(c.database, d.path().join("state/liaisond.db"));
        assert_eq!(c.maildir[0].path, d.path().join("."));
        assert_eq!(c.limits.max_message_size, 64 * 1024 * 1024);
    }

    #[test]
    fn a_password_of_the_wrong_type_is_not_echoed() {
        // Regression (issue 13, medium 3): serde's message quoted the value it refused.
        let d = dir_with_maildir();
        for value in ["987654321", "9876.54321", "1987-06-05T04:32:10Z"] {
            let table = format!("{MINIMAL}[smtp]\nhost = \"h\"\nusername = \"u\"\npassword = {value}\n");
            let inline = format!("smtp = {{ host = \"h\", password = {value} }}\n{MINIMAL}");
            for text in [table, inline] {
                let e = load(&text, d.path()).expect_err("a password is a string");
                assert!(!e.to_string().contains(value), "{e}");
                assert!(e.message.contains("`smtp.password`: invalid type"), "{e}");
            }
        }
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let d = dir_with_maildir();
        let text = MINIMAL.replace("after_commit = \"leave\"", "after_commit = \"leave\"\npoll_intreval = \"5s\"");
        let e = load(&text, d.path()).expect_err("unknown key");
        assert_eq!(e.line, Some(9), "{e}");
        assert!(e.message.contains("poll_intreval"), "{e}");
        assert!(e.to_string().starts_with(&format!("{}:9:", d.path().join("liaisond.toml").display())), "{e}");
    }

    #[test]
    fn mail_identity_and_trusted_servers() {
        let d = dir_with_maildir();
        let text = format!(
            "{MINIMAL}\n[mail]\nfrom = \"IAB Liaisons <Liaison@IAB.org>\"\n[routing]\ntrusted_authserv_ids = [\"MX.example.org\"]\n"
        );
        let c = load(&text, d.path()).expect("valid");
        let m = c.mail.expect("mail");
        assert_eq!(
            (m.from_name.as_deref(), m.from.as_str(), m.message_id_domain.as_str()),
            (Some("IAB Liaisons"), "liaison@iab.org", "iab.org")
        );
        assert_eq!(c.trusted_authserv_ids, vec!["mx.example.org".to_string()]);
        let e = load(&format!("{MINIMAL}\n[mail]\nfrom = \"nobody\"\n"), d.path()).expect_err("not an address");
        assert_eq!(e.key.as_deref(), Some("mail.from"), "{e}");
        let e = load(&format!("{MINIMAL}\n[routing]\ntrusted_authserv_ids = [\"a; dmarc=pass\"]\n"), d.path())
            .expect_err("not an authserv-id");
        assert_eq!(e.key.as_deref(), Some("routing.trusted_authserv_ids[0]"), "{e}");
    }

    #[test]
    fn own_received_fields() {
        let d = dir_with_maildir();
        let rel = Relationships::builtin();
        let c = load(MINIMAL, d.path()).expect("valid");
        assert_eq!(c.identity(&rel).own_received_fields, 1, "the default: the receiving Postfix's own");
        for n in [0, 2, 10] {
            let c = load(&format!("{MINIMAL}\n[routing]\nown_received_fields = {n}\n"), d.path()).expect("valid");
            assert_eq!(c.identity(&rel).own_received_fields, n);
        }
        let e = load(&format!("{MINIMAL}\n[routing]\nown_received_fields = 11\n"), d.path()).expect_err("too many");
        assert_eq!(e.key.as_deref(), Some("routing.own_received_fields"), "{e}");
        for bad in ["-1", "\"1\""] {
            let e = load(&format!("{MINIMAL}\n[routing]\nown_received_fields = {bad}\n"), d.path())
                .expect_err("not a count");
            assert_eq!(e.line, Some(11), "{e}");
        }
    }

    #[test]
    fn a_type_error_names_its_key() {
        // Regression (issue 16): serde's "invalid type" came with a line but no key.
        let d = dir_with_maildir();
        let e = load(&format!("{MINIMAL}\n[acknowledgements]\nper_hour = \"many\"\n"), d.path()).expect_err("type");
        assert_eq!(e.key.as_deref(), Some("acknowledgements.per_hour"), "{e}");
        assert!(e.message.starts_with("`acknowledgements.per_hour`: invalid type"), "{e}");
        let text = imap_block("tls = \"implicit\"\nport = \"993\"\n");
        let e = load(&text, d.path()).expect_err("type");
        assert_eq!((e.key.as_deref(), e.line), (Some("imap[0].port"), Some(11)), "{e}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let d = dir_with_maildir();
        let e = load("[store]\ndatabase = \"x.db\n", d.path()).expect_err("syntax");
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn bad_value_names_key_and_line() {
        let d = dir_with_maildir();
        let text = MINIMAL.replace("after_commit = \"leave\"", "after_commit = \"delete\"");
        let e = load(&text, d.path()).expect_err("bad value");
        assert_eq!(e.key.as_deref(), Some("maildir[0].after_commit"));
        assert_eq!(e.line, Some(8), "{e}");
    }

    fn imap_block(extra: &str) -> String {
        format!(
            "[store]\ndatabase = \"x.db\"\n\n[[imap]]\nname = \"main\"\nhost = \"imap.example.org\"\n\
             username = \"liaison\"\npassword = \"secret\"\nafter_commit = \"leave\"\n{extra}"
        )
    }

    #[test]
    fn plain_text_imap_is_refused_for_a_remote_host() {
        let d = dir_with_maildir();
        let e = load(&imap_block("tls = \"none\"\n"), d.path()).expect_err("plain remote");
        assert_eq!(e.key.as_deref(), Some("imap[0].tls"));
        assert_eq!(e.line, Some(10), "{e}");
        let ok = load(&imap_block("tls = \"none\"\n").replace("imap.example.org", "127.0.0.1"), d.path())
            .expect("plain loopback is allowed when asked for");
        assert_eq!(ok.imap[0].tls, TlsMode::None);
        assert_eq!(ok.imap[0].port, 143);
    }

    #[test]
    fn move_needs_a_folder_and_idle_refresh_respects_rfc2177() {
        let d = dir_with_maildir();
        let text = imap_block("tls = \"implicit\"\n").replace("after_commit = \"leave\"", "after_commit = \"move\"");
        let e = load(&text, d.path()).expect_err("move without folder");
        assert_eq!(e.key.as_deref(), Some("imap[0].after_commit"));
        let e = load(&imap_block("tls = \"implicit\"\nidle_refresh = \"30m\"\n"), d.path()).expect_err("idle");
        assert_eq!(e.key.as_deref(), Some("imap[0].idle_refresh"));
        assert_eq!(e.line, Some(11));
    }

    #[test]
    fn password_sources() {
        let d = dir_with_maildir();
        std::fs::write(d.path().join("pw"), "from-file\n").expect("write");
        let text = imap_block("tls = \"implicit\"\n").replace("password = \"secret\"", "password_file = \"pw\"");
        let c = load(&text, d.path()).expect("password file");
        assert_eq!(c.imap[0].password.expose(), "from-file");
        assert!(!format!("{c:?}").contains("from-file"), "Debug must not show the secret");

        let text = imap_block("tls = \"implicit\"\n").replace("password = \"secret\"", "password_file = \"missing\"");
        let e = load(&text, d.path()).expect_err("missing file");
        assert_eq!(e.key.as_deref(), Some("imap[0].password_file"));
        // Regression (issue 16): it did not say why.
        assert!(e.message.contains("missing: no such file"), "{e}");
        let text = imap_block("tls = \"implicit\"\n").replace("password = \"secret\"", "password_file = \"a-dir\"");
        std::fs::create_dir(d.path().join("a-dir")).expect("dir");
        let e = load(&text, d.path()).expect_err("a directory");
        assert!(e.message.contains("a-dir: "), "{e}");

        let text = imap_block("tls = \"implicit\"\npassword_file = \"pw\"\n");
        let e = load(&text, d.path()).expect_err("two sources");
        assert!(e.message.contains("only one"), "{e}");

        let text = imap_block("tls = \"implicit\"\n")
            .replace("password = \"secret\"", "password_env = \"LIAISOND_TEST_SURELY_UNSET_VAR\"");
        let e = load(&text, d.path()).expect_err("unset env");
        assert_eq!(e.key.as_deref(), Some("imap[0].password_env"));
    }

    #[test]
    fn outbound_sections_are_checked_with_their_keys() {
        let d = dir_with_maildir();
        std::fs::write(d.path().join("bad.pem"), "not a certificate").expect("write");
        let smtp = "[smtp]\nhost = \"smtp.example.org\"\ntls = \"starttls\"\n";
        let cases: &[(&str, &str, &str)] = &[
            ("[smtp]\nhost = \"smtp.example.org\"\ntls = \"none\"\n", "smtp.tls", "loopback"),
            (&format!("{smtp}username = \"u\"\n"), "smtp", "needs one of"),
            (&format!("{smtp}password = \"p\"\n"), "smtp", "needs a `username`"),
            (&format!("{smtp}ca_file = \"bad.pem\"\n"), "smtp.ca_file", "no usable certificate"),
            (&format!("{smtp}[outbox]\ndirectory = \"out\"\n"), "outbox.directory", "not both"),
            ("[outbox]\nretry_min = \"1h\"\nretry_max = \"1m\"\n", "outbox.retry_max", "retry_min"),
            ("[acknowledgements]\nper_hour = 0\n", "acknowledgements.per_hour", "at least 1"),
            ("[acknowledgements]\nper_sender_per_day = 0\n", "acknowledgements.per_sender_per_day", "at least 1"),
            ("[acknowledgements]\nper_domain_per_day = 0\n", "acknowledgements.per_domain_per_day", "at least 1"),
            ("[notifications]\nper_sender_per_day = 0\n", "notifications.per_sender_per_day", "at least 1"),
            ("[metrics]\ntextfile = \"liaisond.txt\"\n", "metrics.textfile", "must end in .prom"),
            (
                "[acknowledgements]\nnever_to = [\"ok\", \"(unclosed\"]\n",
                "acknowledgements.never_to[1]",
                "regular expression",
            ),
            ("[templates]\ndirectory = \"nowhere\"\n", "templates.directory", "not a directory"),
            ("[reminders]\nsend_at = \"9 am\"\n", "reminders.send_at", "not a time of day"),
            ("[reminders]\noverdue_every = 0\n", "reminders.overdue_every", "between 1 and 366"),
            ("[reminders]\ndays_before = [7, 400]\n", "reminders.days_before", "between 0 and 366"),
            ("[digest]\ndays = [\"monday\", \"someday\"]\n", "digest.days", "not a weekday"),
            ("[digest]\ncheck_in_after = \"soon\"\n", "digest.check_in_after", "not a duration"),
        ];
        for (section, key, message) in cases {
            let e = load(&format!("{MINIMAL}{section}"), d.path()).expect_err(section);
            assert_eq!(e.key.as_deref(), Some(*key), "{section}: {e}");
            assert!(e.line.is_some(), "{section}: {e}");
            assert!(e.message.contains(message), "{section}: {e}");
        }
        let c = load(&format!("{MINIMAL}{smtp}"), d.path()).expect("valid");
        let s = c.smtp.expect("smtp");
        assert_eq!((s.port, s.tls, s.credentials.is_none()), (587, TlsMode::StartTls, true));
        assert_eq!(c.acknowledgements.per_sender_per_day, 3);
        assert!(c.acknowledgements.never_to.patterns().len() == liaisond_core::respond::DEFAULT_NEVER_ACK.len());
        assert_eq!(c.follow.ladder.days_before, [14, 7, 4, 3, 2, 1, 0]);
        assert_eq!(c.follow.digest.days, [jiff::civil::Weekday::Monday]);
        let c = load(
            &format!("time_zone = \"Europe/Zurich\"\n{MINIMAL}[reminders]\ndays_before = [0, 7, 7]\n[digest]\ndays = [\"Tue\", \"friday\"]\nsend_at = \"17:30\"\n"),
            d.path(),
        )
        .expect("valid");
        assert_eq!(c.follow.time_zone_name, "Europe/Zurich");
        assert_eq!(c.follow.ladder.days_before, [7, 0], "sorted, each once");
        assert_eq!(c.follow.digest.days, [jiff::civil::Weekday::Tuesday, jiff::civil::Weekday::Friday]);
        assert_eq!(c.follow.digest.send_at, jiff::civil::Time::constant(17, 30, 0, 0));
        let e = load(&format!("time_zone = \"Mars/Olympus\"\n{MINIMAL}"), d.path()).expect_err("bad zone");
        assert_eq!((e.key.as_deref(), e.line), (Some("time_zone"), Some(1)), "{e}");
    }

    #[test]
    fn ingest_reads_the_store_without_needing_the_sources() {
        let d = dir_with_maildir();
        let text = imap_block("tls = \"implicit\"\n").replace("password = \"secret\"", "password_file = \"missing\"");
        let path = d.path().join("liaisond.toml");
        std::fs::write(&path, &text).expect("write");
        assert!(Config::load(&path).is_err(), "the daemon needs the password");
        let c = Config::load_store_only(&path).expect("ingest does not");
        assert!(c.imap.is_empty());
        // Nor the SMTP password (regression: ingest refused the mail, exit 78, when the pipe
        // user could not read it).
        let smtp = "[smtp]\nhost = \"smtp.example.org\"\ntls = \"starttls\"\nusername = \"u\"\npassword_file = \"missing-too\"\n";
        std::fs::write(&path, format!("{text}{smtp}")).expect("write");
        assert!(Config::load(&path).is_err(), "the daemon needs the SMTP password");
        let c = Config::load_store_only(&path).expect("ingest does not need the SMTP password");
        assert!(c.smtp.is_none());
        std::fs::write(&path, format!("{text}bogus = 1\n")).expect("write");
        assert!(Config::load_store_only(&path).is_err(), "unknown keys are still refused");
    }

    #[test]
    fn duplicate_source_names_are_refused() {
        let d = dir_with_maildir();
        let text = format!("{MINIMAL}\n[[maildir]]\nname = \"demo\"\npath = \".\"\nafter_commit = \"cur\"\n");
        let e = load(&text, d.path()).expect_err("duplicate");
        assert_eq!(e.key.as_deref(), Some("maildir[1].name"));
        assert_eq!(e.line, Some(11), "{e}");
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("25 MB"), Some(25_000_000));
        assert_eq!(parse_size("64MiB"), Some(64 * 1024 * 1024));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("12 parsecs"), None);
        let d = dir_with_maildir();
        let text = format!("{MINIMAL}\n[limits]\nmax_message_size = \"lots\"\n");
        let e = load(&text, d.path()).expect_err("bad size");
        assert_eq!(e.key.as_deref(), Some("limits.max_message_size"));
        assert_eq!(e.line, Some(11));
        let text = MINIMAL.replace("after_commit = \"leave\"", "after_commit = \"leave\"\npoll_interval = \"soon\"");
        let e = load(&text, d.path()).expect_err("bad duration");
        assert_eq!(e.key.as_deref(), Some("maildir[0].poll_interval"));
    }

    #[test]
    fn the_shipped_example_and_demo_configs_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        // The example names system paths; put them in a temporary directory and validate it all.
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("Maildir/new")).expect("maildir");
        std::fs::write(d.path().join("imap-password"), "pw\n").expect("pw");
        let text = std::fs::read_to_string(root.join("config/liaisond.example.toml"))
            .expect("example")
            .replace("/var/mail/liaison/Maildir", &d.path().join("Maildir").display().to_string())
            .replace("/var/lib/liaisond/liaisond.db", &d.path().join("l.db").display().to_string());
        let c = load(&text, d.path()).unwrap_or_else(|e| panic!("example config: {e}"));
        assert_eq!(c.imap.len(), 1);
        assert_eq!(c.imap[0].after_commit, AfterCommit::Move("Processed".into()));
        assert!(c.maildir.is_empty(), "the Maildir section is an example, commented out");
        Config::load(&root.join("config/demo.toml")).unwrap_or_else(|e| panic!("demo config: {e}"));
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.8.9.1"));
        assert!(is_loopback_host("::1"));
        assert!(is_loopback_host("[::1]"));
        assert!(is_loopback_host("LOCALHOST"));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(!is_loopback_host("localhost.example.org"));
    }
}
