//! `liaisond doctor`: checks an installation the way the daemon would use it, and says in
//! plain words what to fix. Each check prints one line, `ok`, `warn` or `FAIL`, then what was
//! checked and what was found, and, when something is wrong, a hint on the next line. It
//! changes and sends nothing: the database is opened without creating or migrating it (its
//! write test is rolled back), mailboxes are EXAMINEd (read-only), the SMTP session ends with
//! QUIT before any MAIL command, and the outbox directory gets a probe file that is removed.
//!
//! The connections use the daemon's own code (`sources::imap::probe`, `outbox::probe`), so a mailbox
//! that passes here is reached the same way by `liaisond run`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, ImapConfig, MaildirAfter, TlsMode};
use crate::outbox::DeliveryError;
use crate::sources::imap::{EXAMINE_STEP, ImapError};

/// Less free space than this on the database's file system is a warning...
const DISK_WARN_BYTES: u64 = 1 << 30;
/// ... as is less than this share of it...
const DISK_WARN_SHARE: f64 = 0.05;
/// ... and less than this a failure: one large message may not fit.
const DISK_FAIL_BYTES: u64 = 100 << 20;

/// A message's arrival time further in the future than this says this machine's clock is
/// behind the mail server's.
const CLOCK_SKEW_LIMIT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub level: Level,
    pub what: String,
    pub detail: String,
    /// What to do about it (only when not ok).
    pub hint: Option<String>,
}

impl Check {
    fn ok(what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check { level: Level::Ok, what: what.into(), detail: detail.into(), hint: None }
    }
    fn warn(what: impl Into<String>, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check { level: Level::Warn, what: what.into(), detail: detail.into(), hint: Some(hint.into()) }
    }
    fn fail(what: impl Into<String>, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check { level: Level::Fail, what: what.into(), detail: detail.into(), hint: Some(hint.into()) }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.level {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        write!(f, "{level:<4}  {}: {}", self.what, self.detail)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n      hint: {hint}")?;
        }
        Ok(())
    }
}

/// Prints each check as it completes (a mailbox that does not answer takes its timeout) and
/// returns the exit code: 0 when nothing failed, 1 otherwise.
pub fn main(config_path: &Path, offline: bool) -> u8 {
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    let mut report = |c: Check| {
        failed |= c.level == Level::Fail;
        // A closed stdout (`| head`) must not hide the exit code.
        let _ = writeln!(out, "{c}");
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            report(Check::fail("doctor", format!("cannot start the async runtime: {e}"), "see the error"));
            return 1;
        }
    };
    runtime.block_on(checks(config_path, offline, &mut report));
    u8::from(failed)
}

/// Runs every check, giving each result to `report` as soon as it is known. `offline`: none
/// that logs in to a server, and the configuration without its passwords.
pub async fn checks(config_path: &Path, offline: bool, report: &mut dyn FnMut(Check)) {
    crate::tls::install_crypto_provider();
    let loaded = if offline { Config::load_without_secrets(config_path) } else { Config::load(config_path) };
    let config = match loaded {
        Ok(c) => {
            report(Check::ok("config", format!("{} loads", config_path.display())));
            for exposed in c.exposed_secrets() {
                report(Check::warn("secrets", exposed, "only the service's user should read its passwords"));
            }
            c
        }
        Err(e) => {
            report(Check::fail(
                "config",
                e.to_string(),
                "fix the file at the line shown (`liaisond check-config` prints what it understood); \
                 nothing else can be checked without it",
            ));
            return;
        }
    };
    report(content_check(&config));
    let health = database_checks(&config, report);
    report(disk_check(&config.database));
    let mut newest_arrival = None;
    for imap in &config.imap {
        if offline {
            report(Check::ok(format!("imap {}", imap.name), "not checked (--offline)"));
            continue;
        }
        let (check, newest) = imap_check(imap).await;
        report(check);
        // The latest arrival over every mailbox is what the clock is compared with.
        if let Some(t) = newest
            && newest_arrival.as_ref().is_none_or(|(_, latest)| t > *latest)
        {
            newest_arrival = Some((imap.name.clone(), t));
        }
    }
    for m in &config.maildir {
        report(maildir_check(&m.name, &m.path, m.after_commit == MaildirAfter::Cur));
    }
    if offline {
        if config.smtp.is_some() {
            report(Check::ok("smtp", "not checked (--offline)"));
        }
    } else {
        for check in sending_checks(&config).await {
            report(check);
        }
    }
    for check in clock_checks(jiff::Timestamp::now(), health.and_then(|h| h.newest_timestamp), newest_arrival) {
        report(check);
    }
}

/// The relationships data and the templates: they load, and each template renders.
fn content_check(config: &Config) -> Check {
    let relationships = match config.load_relationships() {
        Ok(r) => r,
        Err(e) => return Check::fail("relationships", e.to_string(), "fix the relationships file at the line shown"),
    };
    let responder = match config.responder(&relationships) {
        Ok(r) => r,
        Err(e) => return Check::fail("templates", e.to_string(), "fix the template at the line shown"),
    };
    let sample = |names: &[&'static str]| -> liaisond_core::template::Values {
        names.iter().map(|n| (*n, format!("<{n}>"))).collect()
    };
    let t = &responder.templates;
    let rendered = [
        ("ack", t.ack.render(&sample(liaisond_core::respond::ACK_NAMES))),
        ("notification", t.notification.render(&sample(liaisond_core::respond::NOTIFICATION_NAMES))),
        ("alert", t.alert.render(&sample(liaisond_core::respond::ALERT_NAMES))),
    ];
    let empty: Vec<&str> =
        rendered.iter().filter(|(_, r)| r.subject.is_empty() || r.body.trim().is_empty()).map(|(n, _)| *n).collect();
    let source = |p: &Option<PathBuf>| p.as_ref().map_or("built-in".to_string(), |p| p.display().to_string());
    let detail = format!(
        "relationships {} ({} organisations, {} IETF groups); templates {} render",
        source(&config.relationships),
        relationships.organizations().len(),
        relationships.ietf_groups().len(),
        source(&config.templates)
    );
    if empty.is_empty() {
        Check::ok("relationships and templates", detail)
    } else {
        Check::warn(
            "relationships and templates",
            format!("{detail}, but {} render an empty subject or body", empty.join(", ")),
            "give each template a `Subject:` line with text and a body",
        )
    }
}

/// The database: opens, schema, integrity, writable; and whether a daemon runs on it.
fn database_checks(config: &Config, report: &mut dyn FnMut(Check)) -> Option<liaisond_store::health::Health> {
    let db = &config.database;
    if !db.exists() {
        report(Check::warn(
            "database",
            format!("no database at {} yet", db.display()),
            "it is created at the first `liaisond run`; if one should exist, check `[store] database`",
        ));
        return None;
    }
    let health = match liaisond_store::health::inspect(db, config.busy_timeout) {
        Ok(h) => h,
        Err(e) => {
            report(Check::fail(
                "database",
                e.to_string(),
                "the file cannot be opened as a database: check its owner and mode, or restore a backup",
            ));
            return None;
        }
    };
    let what = format!("database {}", db.display());
    let summary = format!("{} messages, schema {}", health.messages, health.schema_version);
    if health.schema_version > health.schema_known {
        report(Check::fail(
            what.clone(),
            format!("{summary}, newer than this liaisond ({})", health.schema_known),
            "a newer liaisond wrote it: install that version again, or restore a backup",
        ));
    } else if health.quick_check != ["ok"] {
        report(Check::fail(
            what.clone(),
            format!("{summary}; integrity check: {}", health.quick_check.join("; ")),
            "the file is damaged: stop liaisond and restore a backup (or try `sqlite3 FILE .recover`)",
        ));
    } else if let Some(why) = health.not_writable.as_ref().filter(|w| w.contains("locked"))
        && liaisond_store::health::daemon_holds_lock(db).unwrap_or(false)
    {
        // A running daemon in the middle of a write, not a fault.
        report(Check::warn(
            what.clone(),
            format!("{summary}; integrity ok; busy: {why}"),
            "the running daemon was writing; run doctor again to test writing",
        ));
    } else if let Some(why) = &health.not_writable {
        report(Check::fail(
            what.clone(),
            format!("{summary}; cannot write: {why}"),
            "the daemon must write it and its directory: check owner and mode (the service runs as user liaisond); \
             `database is locked` means another process holds a write transaction",
        ));
    } else if health.schema_version < health.schema_known {
        report(Check::ok(
            what.clone(),
            format!("{summary} (migrated to {} at the next start); integrity ok; writable", health.schema_known),
        ));
    } else {
        report(Check::ok(what.clone(), format!("{summary}; integrity ok; writable")));
    }
    match liaisond_store::health::daemon_holds_lock(db) {
        Ok(true) => report(Check::ok("daemon", "running (it holds the database's instance lock)")),
        Ok(false) => report(Check::warn(
            "daemon",
            "not running on this database (nobody holds its instance lock)",
            "start it: `systemctl start liaisond` (`journalctl -u liaisond` says why it stopped)",
        )),
        Err(e) => report(Check::warn(
            "daemon",
            format!("cannot test the instance lock: {e}"),
            "run doctor as root or as the liaisond user",
        )),
    }
    Some(health)
}

/// Free space on the file system of the database (or of its nearest existing directory).
fn disk_check(database: &Path) -> Check {
    let mut dir = database.parent().unwrap_or(Path::new(".")).to_path_buf();
    if dir.as_os_str().is_empty() {
        dir = PathBuf::from(".");
    }
    while !dir.exists() {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir = p.to_path_buf(),
            _ => break,
        }
    }
    let what = format!("disk space ({})", dir.display());
    match free_space(&dir) {
        Err(e) => Check::warn(what, format!("cannot tell: {e}"), "check with `df` yourself"),
        Ok((free, total)) => {
            let share = if total == 0 { 1.0 } else { free as f64 / total as f64 };
            let detail = format!("{} free of {} ({:.0}%)", bytes(free), bytes(total), share * 100.0);
            if free < DISK_FAIL_BYTES {
                Check::fail(what, detail, "free space now: without it no message can be stored")
            } else if free < DISK_WARN_BYTES || share < DISK_WARN_SHARE {
                Check::warn(what, detail, "free some space soon: every message is kept with its raw bytes")
            } else {
                Check::ok(what, detail)
            }
        }
    }
}

/// (available to unprivileged users, total) bytes, from statvfs(3).
fn free_space(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    // SAFETY: `path` is a valid NUL-terminated string and `st` a properly sized out-parameter
    // that statvfs fills in; nothing else is touched.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut st) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        st
    };
    let unit = st.f_frsize as u64;
    Ok((st.f_bavail as u64 * unit, st.f_blocks as u64 * unit))
}

fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    if n as f64 >= GIB { format!("{:.1} GiB", n as f64 / GIB) } else { format!("{:.0} MiB", n as f64 / MIB) }
}

/// One mailbox: connect, TLS, login, the mailbox, its size; and its newest arrival time.
async fn imap_check(cfg: &ImapConfig) -> (Check, Option<jiff::Timestamp>) {
    let what = format!("imap '{}'", cfg.name);
    let tls = match cfg.tls {
        TlsMode::Implicit => "implicit TLS",
        TlsMode::StartTls => "STARTTLS",
        TlsMode::None => "no TLS (loopback)",
    };
    match crate::sources::imap::probe(cfg).await {
        Ok(p) => (
            Check::ok(
                what,
                format!(
                    "{}:{} ({tls}), logged in as {}, mailbox {}: {} messages",
                    cfg.host, cfg.port, cfg.username, cfg.mailbox, p.messages
                ),
            ),
            p.newest_internal_date,
        ),
        Err(e) => (Check::fail(what, e.to_string(), imap_hint(&e, cfg)), None),
    }
}

fn imap_hint(e: &ImapError, cfg: &ImapConfig) -> String {
    match e {
        ImapError::Connect { .. } | ImapError::Timeout { step: "connecting", .. } => format!(
            "nothing answers at {}:{}: check `host` and `port`, the firewall, and that the IMAP server runs",
            cfg.host, cfg.port
        ),
        ImapError::Tls { .. } | ImapError::TlsConfig(_) | ImapError::Timeout { step: "the TLS handshake", .. } => {
            "TLS failed: check that `host` is the name in the server's certificate, that `tls` fits the port \
             (implicit for 993, starttls for 143), and set `ca_file` for a private CA"
                .into()
        }
        ImapError::StartTlsRefused { .. } => {
            "the server does not do STARTTLS: use tls = \"implicit\" (port 993), or have it enabled".into()
        }
        ImapError::Auth { .. } => "the server refused the user name or password: check `username` and the password \
             (`password_file`; under systemd the credential that LoadCredential= names)"
            .into(),
        ImapError::Protocol { step, source: async_imap::error::Error::No(_) } if *step == EXAMINE_STEP => format!(
            "the mailbox `{}` does not exist or may not be read: check `mailbox` (names are case-sensitive)",
            cfg.mailbox
        ),
        ImapError::Timeout { .. } | ImapError::Closed(_) => {
            "the server stopped answering: check the network, or raise `timeout`".into()
        }
        _ => "see the error; `LIAISOND_LOG=debug liaisond run --once` shows each step".into(),
    }
}

fn maildir_check(name: &str, path: &Path, moves: bool) -> Check {
    let what = format!("maildir '{name}'");
    let new = path.join("new");
    match std::fs::read_dir(&new) {
        Err(e) => Check::fail(
            what,
            format!("cannot read {}: {e}", new.display()),
            "check `path` (the Maildir, with new/ and cur/ in it) and that the liaisond user may read it",
        ),
        Ok(entries) => {
            let waiting = entries.filter_map(Result::ok).count();
            // (With after_commit = "leave" they stay there once stored.)
            let detail = format!("{}: {waiting} files in new/", path.display());
            if moves && !writable_dir(path) {
                Check::fail(
                    what,
                    format!("{detail}, but cannot write there"),
                    "after_commit = \"cur\" moves files into cur/: allow the liaisond user to write (and add the path \
                     to ReadWritePaths= in the unit), or use after_commit = \"leave\"",
                )
            } else {
                Check::ok(what, detail)
            }
        }
    }
}

/// Whether the current user may write into `dir` (access(2), by the real user).
fn writable_dir(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string; access(2) only reads it.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// How mail goes out: the SMTP server (up to AUTH, then QUIT), or the outbox directory.
async fn sending_checks(config: &Config) -> Vec<Check> {
    let transport = match crate::daemon::transport(config) {
        Ok(t) => t,
        Err(e) => return vec![Check::fail("smtp", format!("{e:#}"), "fix `ca_file` in [smtp]")],
    };
    match transport {
        Some(crate::outbox::Transport::Smtp(smtp)) => {
            let cfg = &smtp.config;
            let what = format!("smtp {}:{}", cfg.host, cfg.port);
            match crate::outbox::probe(&smtp).await {
                Ok(p) => {
                    let auth = match &cfg.credentials {
                        Some((user, _)) => format!("AUTH as {user} accepted"),
                        None => "no AUTH configured".to_string(),
                    };
                    let tls = if p.encrypted { "encrypted" } else { "not encrypted (loopback)" };
                    vec![Check::ok(what, format!("server {}, {tls}, {auth}; nothing sent (QUIT)", p.server))]
                }
                Err(e) => {
                    let hint = smtp_hint(&e, config);
                    vec![Check::fail(what, e.to_string(), hint)]
                }
            }
        }
        Some(crate::outbox::Transport::Directory(dir)) => vec![outbox_dir_check(&dir)],
        None => vec![Check::warn(
            "sending",
            "neither [smtp] nor outbox.directory is configured: acknowledgements and notifications wait in the outbox",
            "configure [smtp] (see config/liaisond.example.toml)",
        )],
    }
}

fn smtp_hint(e: &DeliveryError, config: &Config) -> String {
    let text = e.to_string();
    let (host, port) = config.smtp.as_ref().map(|s| (s.host.as_str(), s.port)).unwrap_or_default();
    // TLS first: with implicit TLS a certificate error comes back as part of the connection.
    if text.contains("STARTTLS") || text.contains("TLS") || text.contains("certificate") {
        "TLS failed: check that `tls` fits the port (starttls for 587/25, implicit for 465), that `host` is the \
         name in the certificate, and set `ca_file` for a private CA"
            .into()
    } else if text.contains("connect") {
        format!(
            "nothing answers at {host}:{port}: check `host` and `port` in [smtp], the firewall, and the mail server"
        )
    } else if text.contains("AUTH") {
        "the server refused the login: check `username` and the SMTP password (`password_file`)".into()
    } else {
        "see the error; the sender logs each attempt (`journalctl -u liaisond`)".into()
    }
}

/// The dry-run outbox directory: exists and takes a file (a probe file, removed again).
fn outbox_dir_check(dir: &Path) -> Check {
    let what = format!("outbox directory {}", dir.display());
    // Doctor changes nothing: a directory it created (as root) the daemon could not write.
    if !dir.is_dir() {
        return Check::warn(
            what,
            "does not exist yet (the daemon creates it when it first writes mail)",
            "create it now, owned by the liaisond user, to be sure it can",
        );
    }
    let probe = dir.join(format!(".doctor-{}.tmp", std::process::id()));
    let written = std::fs::write(&probe, b"liaisond doctor\n");
    let _ = std::fs::remove_file(&probe);
    match written {
        Ok(()) => Check::ok(what, "writable (mail is written here as .eml files, not sent)"),
        Err(e) => Check::fail(what, format!("cannot write into it: {e}"), "make it writable by the liaisond user"),
    }
}

/// The clock: not behind the mail server (its newest arrival time is not in our future), not
/// set back (the database holds no time later than now), and whether NTP disciplines it.
fn clock_checks(
    now: jiff::Timestamp,
    newest_stored: Option<String>,
    newest_arrival: Option<(String, jiff::Timestamp)>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let skew = jiff::SignedDuration::try_from(CLOCK_SKEW_LIMIT).unwrap_or(jiff::SignedDuration::ZERO);
    let mut problem = false;
    if let Some((source, arrival)) = newest_arrival
        && arrival.duration_since(now) > skew
    {
        problem = true;
        checks.push(Check::warn(
            "clock",
            format!(
                "the newest message in imap '{source}' arrived at {arrival}, {} after this machine's time ({now})",
                humantime::format_duration(Duration::from_secs(arrival.duration_since(now).as_secs().unsigned_abs()))
            ),
            "this machine's clock is behind: acknowledgement ages and deadlines come out wrong; enable NTP \
             (`timedatectl set-ntp true`)",
        ));
    }
    if let Some(stored) = newest_stored.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok())
        && stored.duration_since(now) > jiff::SignedDuration::from_secs(60)
    {
        problem = true;
        checks.push(Check::warn(
            "clock",
            format!("the database holds a time ({stored}) later than now ({now}): the clock was set back"),
            "set the clock right (NTP); times recorded meanwhile may be out of order",
        ));
    }
    let sync = ntp_synchronised();
    let detail = match sync {
        Some(true) => format!("{now}, synchronised (NTP)"),
        Some(false) => format!("{now}, not synchronised by NTP"),
        None => format!("{now}, NTP state unknown"),
    };
    match sync {
        Some(true) if !problem => {
            checks.push(Check::ok("clock", format!("{detail}; agrees with the mailbox and the database")))
        }
        Some(true) => checks.push(Check::ok("clock sync", detail)),
        _ => checks.push(Check::warn(
            "clock sync",
            detail,
            "run an NTP client (systemd-timesyncd or chrony; `timedatectl` shows the state)",
        )),
    }
    checks
}

/// Whether an NTP client disciplines the clock: the kernel clears STA_UNSYNC once one does
/// (adjtimex(2) with no modes only reads, needs no privilege, and answers TIME_ERROR while the
/// clock is unsynchronised); systemd-timesyncd also touches /run/systemd/timesync/synchronized.
fn ntp_synchronised() -> Option<bool> {
    if Path::new("/run/systemd/timesync/synchronized").exists() {
        return Some(true);
    }
    // SAFETY: adjtimex with `modes = 0` only fills in the zeroed struct we own.
    let state = unsafe {
        let mut t: libc::timex = std::mem::zeroed();
        let state = libc::adjtimex(&mut t);
        if state < 0 {
            return None;
        }
        (state, t.status)
    };
    Some(state.0 != libc::TIME_ERROR && state.1 & libc::STA_UNSYNC == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_prints_as_one_line_and_a_hint() {
        let c = Check::fail("imap 'main'", "login as x refused", "check the password");
        assert_eq!(c.to_string(), "FAIL  imap 'main': login as x refused\n      hint: check the password");
        assert_eq!(Check::ok("config", "loads").to_string(), "ok    config: loads");
    }

    #[test]
    fn the_clock_is_suspect_when_mail_arrives_from_the_future_or_the_database_is_ahead() {
        let now: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().expect("time");
        let future: jiff::Timestamp = "2026-11-23T11:00:00Z".parse().expect("time");
        let checks = clock_checks(now, Some("2026-11-23T10:30:00.000Z".into()), Some(("main".into(), future)));
        let warnings: Vec<&str> =
            checks.iter().filter(|c| c.level == Level::Warn && c.what == "clock").map(|c| c.detail.as_str()).collect();
        assert_eq!(warnings.len(), 2, "{checks:#?}");
        assert!(warnings[0].contains("1h after"), "{warnings:?}");
        assert!(warnings[1].contains("set back"), "{warnings:?}");
        let fine = clock_checks(now, Some("2026-11-23T09:59:00.000Z".into()), Some(("main".into(), now)));
        assert!(fine.iter().all(|c| c.what != "clock" || c.level == Level::Ok), "{fine:#?}");
    }

    #[test]
    fn free_space_is_read_from_the_file_system() {
        let (free, total) = free_space(Path::new("/")).expect("statvfs");
        assert!(total > 0 && free <= total);
        let c = disk_check(Path::new("/nonexistent/dir/l.db"));
        assert!(c.what.contains("(/)"), "the nearest existing directory: {c}");
    }
}
