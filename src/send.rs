//! The sender task: works off the outbox. It claims the next item that is due, builds the
//! message (`respond::compose`, with the stored original attached to a notification), and
//! delivers it over SMTP or, as a dry run, writes it into a directory.
//!
//! SMTP is spoken step by step (lettre's connection, not its transport), because what a
//! failure means depends on when it happens (RFC 5321 §4.2.1, §6.1):
//! - before the message data: a 4xx reply, a refused or lost connection or a timeout is
//!   temporary (retried with backoff, across restarts); a 5xx reply is permanent (failed,
//!   shown by `liaisond status`, never retried by itself);
//! - after the data went out: a reply decides as above, but a lost connection or a timeout
//!   leaves the delivery uncertain (the server may have taken it): `uncertain`, not retried
//!   unless an operator says so (`liaisond outbox retry`), so nobody gets it twice.
//!
//! The store records `data_at` before the data goes out, so a crash at any point is
//! recovered the same way at the next start (`Store::recover_outbox`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{OutboxConfig, SmtpConfig, TlsMode};
use crate::service::Heartbeat;
use crate::store::{Db, OutboxItem, SendResult};

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum Transport {
    Smtp(Smtp),
    /// A dry run: each message is written to `<dir>/<id>-<kind>.eml`.
    Directory(PathBuf),
}

/// An SMTP server to send through, its TLS settings prepared once (the system's roots are
/// read at start-up, not for every message; a bad `ca_file` stops the start).
#[derive(Clone)]
pub struct Smtp {
    pub config: SmtpConfig,
    tls: Option<TlsParameters>,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Smtp {
    pub fn new(config: SmtpConfig) -> Result<Smtp, String> {
        let tls = match config.tls {
            TlsMode::None => None,
            TlsMode::Implicit | TlsMode::StartTls => Some(tls_parameters(&config)?),
        };
        Ok(Smtp { config, tls })
    }
}

/// How one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("temporary: {0}")]
    Temporary(String),
    #[error("permanent: {0}")]
    Permanent(String),
    #[error("uncertain: {0}")]
    Uncertain(String),
}

/// The sender task.
#[derive(Debug, Clone)]
pub struct Sender {
    db: Db,
    transport: Transport,
    config: OutboxConfig,
    wake: Arc<Notify>,
    heartbeat: Heartbeat,
}

/// How often the outbox is looked at when nothing wakes the sender (mail queued by
/// `liaisond ingest` in another process, retries that fell due).
const LOOK_AGAIN: Duration = Duration::from_secs(10);

/// How long writing one message into the outbox directory (the dry run) may take, for the
/// heartbeat; and the allowance for the database calls around one delivery.
const LOCAL_WORK_ALLOWANCE: Duration = Duration::from_secs(60);

impl Sender {
    pub fn new(db: Db, transport: Transport, config: OutboxConfig) -> Sender {
        Sender { db, transport, config, wake: Arc::new(Notify::new()), heartbeat: Heartbeat::detached() }
    }

    /// The sender loop beats `heartbeat` (see `service`).
    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Sender {
        self.heartbeat = heartbeat;
        self
    }

    /// The longest one delivery attempt may take: every SMTP step is under `[smtp] timeout`
    /// (connect, STARTTLS, AUTH, MAIL, one RCPT per recipient, DATA, the data, QUIT).
    fn attempt_limit(&self, item: &OutboxItem) -> Duration {
        let steps = 7 + item.draft.recipients().len() as u32;
        LOCAL_WORK_ALLOWANCE
            + match &self.transport {
                Transport::Smtp(smtp) => smtp.config.timeout.saturating_mul(steps),
                Transport::Directory(_) => Duration::ZERO,
            }
    }

    /// Wakes the sender (new mail was queued).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Sends what is due until `shutdown`; with `once`, sends what is due now and returns the
    /// number of attempts. A shutdown waits for the message in hand (each step is under the
    /// SMTP timeout).
    pub async fn run(self, shutdown: CancellationToken, once: bool) -> usize {
        let mut attempts = 0;
        loop {
            loop {
                if shutdown.is_cancelled() {
                    return attempts;
                }
                self.heartbeat.busy_for(LOCAL_WORK_ALLOWANCE);
                let item = match self.db.call(|s| s.claim_outbox()).await {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the outbox; will try again");
                        break;
                    }
                };
                attempts += 1;
                self.heartbeat.busy_for(self.attempt_limit(&item));
                let result = self.attempt(&item).await;
                log(&item, &result);
                let id = item.id;
                if let Err(e) = self.db.call(move |s| s.finish_outbox(id, &result)).await {
                    // The claim stays `sending` and is recovered at the next start.
                    tracing::error!(id, error = %e, "cannot record how sending ended");
                }
            }
            if once {
                return attempts;
            }
            let wait = match self.db.call(|s| s.next_outbox_due()).await {
                Ok(Some(due)) => due
                    .parse::<jiff::Timestamp>()
                    .ok()
                    .map(|t| t.duration_since(jiff::Timestamp::now()))
                    .and_then(|d| Duration::try_from(d).ok())
                    .unwrap_or(Duration::ZERO)
                    .min(LOOK_AGAIN),
                _ => LOOK_AGAIN,
            };
            tokio::select! {
                _ = self.heartbeat.sleep(wait.max(Duration::from_millis(50))) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => return attempts,
            }
        }
    }

    async fn attempt(&self, item: &OutboxItem) -> SendResult {
        if expired(&item.queued_at, jiff::Timestamp::now(), self.config.give_up_after) {
            return SendResult::Failed {
                error: format!(
                    "not sent within {} of being queued (the last error: see the events)",
                    humantime::format_duration(self.config.give_up_after)
                ),
            };
        }
        let original = match (item.draft.attach_original, item.message) {
            (true, Some(m)) => match self.db.call(move |s| s.raw_message(m)).await {
                Ok(raw) => Some(raw),
                Err(e) if e.is_transient() => return self.retry(item, format!("cannot read the original: {e}")),
                Err(e) => return SendResult::Failed { error: format!("cannot read the original: {e}") },
            },
            _ => None,
        };
        let bytes = match crate::respond::compose(&item.draft, original.as_deref()) {
            Ok(b) => b,
            Err(e) => return SendResult::Failed { error: e.to_string() },
        };
        // For a server without 8BITMIME (RFC 6152), the same message in 7 bits.
        let seven_bit = match bytes.is_ascii() {
            true => None,
            false => match crate::respond::compose_seven_bit(&item.draft, original.as_deref()) {
                Ok(b) => Some(b),
                Err(e) => return SendResult::Failed { error: e.to_string() },
            },
        };
        let recipients = item.draft.recipients();
        let reverse_path = (!item.draft.null_sender).then(|| {
            crate::relationships::normalize_address(&item.draft.from).unwrap_or_else(|| item.draft.from.clone())
        });
        let outcome = match &self.transport {
            Transport::Directory(dir) => write_to_directory(dir, item, &bytes).await,
            Transport::Smtp(smtp) => {
                let db = self.db.clone();
                let id = item.id;
                let message = Message { bytes: &bytes, seven_bit: seven_bit.as_deref() };
                deliver(smtp, reverse_path.as_deref(), &recipients, message, || async move {
                    db.call(move |s| s.outbox_data_started(id)).await.map_err(|e| e.to_string())
                })
                .await
            }
        };
        match outcome {
            Ok(reply) => SendResult::Sent { reply },
            Err(DeliveryError::Temporary(e)) => self.retry(item, e),
            Err(DeliveryError::Permanent(error)) => SendResult::Failed { error },
            Err(DeliveryError::Uncertain(error)) => SendResult::Uncertain { error },
        }
    }

    fn retry(&self, item: &OutboxItem, error: String) -> SendResult {
        let wait = backoff(item.attempts, self.config.retry_min, self.config.retry_max, rand::random::<f64>());
        let next = jiff::Timestamp::now() + jiff::SignedDuration::try_from(wait).unwrap_or_default();
        SendResult::Retry { error, next: crate::store::timestamp_text(next) }
    }
}

/// How long to wait after attempt number `attempts` failed: `min` doubled for every earlier
/// attempt, at most `max`, less up to a tenth (`random` in 0..1) so that many items do not
/// all come back at once.
pub fn backoff(attempts: i64, min: Duration, max: Duration, random: f64) -> Duration {
    let exponent = (attempts - 1).clamp(0, 30) as u32;
    let base = min.saturating_mul(2u32.saturating_pow(exponent)).min(max);
    base.mul_f64(1.0 - random.clamp(0.0, 1.0) * 0.1)
}

/// Whether an item queued at `queued_at` (RFC 3339) is past `limit` at `now`. An unreadable
/// time counts as now (the item is then tried).
pub fn expired(queued_at: &str, now: jiff::Timestamp, limit: Duration) -> bool {
    let queued = queued_at.parse::<jiff::Timestamp>().unwrap_or(now);
    let limit = jiff::SignedDuration::try_from(limit).unwrap_or(jiff::SignedDuration::MAX);
    now.duration_since(queued) > limit
}

/// The bytes to send, and the same message in 7 bits when it has 8-bit content.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub bytes: &'a [u8],
    pub seven_bit: Option<&'a [u8]>,
}

/// One line per attempt. `outbox` is the item's number (`liaisond outbox list`), `id` the
/// number of the message it is about (as in the ingest log line), `message_id` the Message-ID
/// of the mail sent.
fn log(item: &OutboxItem, result: &SendResult) {
    let outbox = item.id;
    let id = item.message;
    let kind = item.draft.kind.as_str();
    let message_id = item.draft.message_id.as_str();
    let to = item.draft.recipients().join(", ");
    match result {
        SendResult::Sent { reply } => tracing::info!(outbox, id, kind, message_id, to, reply, "mail sent"),
        SendResult::Retry { error, next } => {
            tracing::warn!(outbox, id, kind, message_id, to, error, next, "sending failed; will retry")
        }
        SendResult::Failed { error } => tracing::error!(outbox, id, kind, message_id, to, error, "sending failed"),
        SendResult::Uncertain { error } => tracing::error!(
            outbox,
            id,
            kind,
            message_id,
            to,
            error,
            "delivery uncertain: not sent again unless an operator retries it"
        ),
    }
}

/// The dry-run transport: the message as it would have been sent, written atomically.
async fn write_to_directory(dir: &std::path::Path, item: &OutboxItem, bytes: &[u8]) -> Result<String, DeliveryError> {
    let name = format!("{:06}-{}.eml", item.id, item.draft.kind.as_str());
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let bytes = bytes.to_vec();
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(tmp.parent().unwrap_or(std::path::Path::new(".")))?;
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path)
    })
    .await;
    match result {
        Ok(Ok(())) => Ok(format!("written to {}", dir.join(name).display())),
        Ok(Err(e)) => Err(DeliveryError::Temporary(format!("cannot write into {}: {e}", dir.display()))),
        Err(e) => Err(DeliveryError::Temporary(format!("writing failed: {e}"))),
    }
}

/// What a lettre error before the message data means.
fn before_data(step: &str, e: lettre::transport::smtp::Error) -> DeliveryError {
    if e.is_permanent() || e.is_client() {
        DeliveryError::Permanent(format!("{step}: {e}"))
    } else {
        DeliveryError::Temporary(format!("{step}: {e}"))
    }
}

/// One SMTP transaction: connect (TLS as configured), EHLO, AUTH, MAIL, RCPT for each
/// recipient, DATA; then `data_starts` (the store notes it), then the message.
pub async fn deliver<F, Fut>(
    smtp: &Smtp,
    reverse_path: Option<&str>,
    recipients: &[String],
    message: Message<'_>,
    data_starts: F,
) -> Result<String, DeliveryError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let cfg = &smtp.config;
    let limit = cfg.timeout;
    let mut conn = open(smtp).await?;

    let result = async {
        let mut parameters = Vec::new();
        let eight_bit_mime = conn.server_info().supports_feature(Extension::EightBitMime);
        let message = match (message.bytes.is_ascii(), eight_bit_mime, message.seven_bit) {
            (true, _, _) => message.bytes,
            (false, true, _) => {
                parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
                message.bytes
            }
            (false, false, Some(seven_bit)) => seven_bit,
            (false, false, None) => {
                return Err(DeliveryError::Permanent(
                    "the message has 8-bit content and the server does not offer 8BITMIME".into(),
                ));
            }
        };
        let from = match reverse_path {
            // RFC 5321 §4.5.5: the null reverse-path, for mail that must not be answered.
            None => None,
            Some(a) => Some(a.parse().map_err(|e| DeliveryError::Permanent(format!("sender address `{a}`: {e}")))?),
        };
        tokio::time::timeout(limit, conn.command(Mail::new(from, parameters)))
            .await
            .map_err(|_| timed_out(cfg, "MAIL FROM"))?
            .map_err(|e| before_data("MAIL FROM", e))?;
        for to in recipients {
            let address = to.parse().map_err(|e| DeliveryError::Permanent(format!("recipient `{to}`: {e}")))?;
            tokio::time::timeout(limit, conn.command(Rcpt::new(address, Vec::new())))
                .await
                .map_err(|_| timed_out(cfg, "RCPT TO"))?
                .map_err(|e| before_data(&format!("RCPT TO:<{to}>"), e))?;
        }
        tokio::time::timeout(limit, conn.command(Data))
            .await
            .map_err(|_| timed_out(cfg, "DATA"))?
            .map_err(|e| before_data("DATA", e))?;
        data_starts().await.map_err(|e| DeliveryError::Temporary(format!("cannot note the start of sending: {e}")))?;
        let reply = match tokio::time::timeout(limit, conn.message(message)).await {
            Err(_) => {
                return Err(DeliveryError::Uncertain(format!(
                    "no answer within {} after the message data",
                    humantime::format_duration(limit)
                )));
            }
            Ok(Err(e)) if e.is_permanent() => return Err(DeliveryError::Permanent(format!("after the data: {e}"))),
            Ok(Err(e)) if e.is_transient() => return Err(DeliveryError::Temporary(format!("after the data: {e}"))),
            Ok(Err(e)) => return Err(DeliveryError::Uncertain(format!("after the data: {e}"))),
            Ok(Ok(reply)) => reply,
        };
        Ok(format!("{} {}", reply.code(), reply.message().collect::<Vec<_>>().join(" ")))
    }
    .await;
    match &result {
        Ok(_) => {
            let _ = tokio::time::timeout(limit, conn.quit()).await;
        }
        Err(_) => {
            let _ = tokio::time::timeout(limit, conn.abort()).await;
        }
    }
    result
}

/// The greeting name (EHLO) configured, else this machine's.
fn hello(cfg: &SmtpConfig) -> ClientId {
    match &cfg.hello_name {
        Some(name) => ClientId::Domain(name.clone()),
        None => ClientId::default(),
    }
}

fn timed_out(cfg: &SmtpConfig, step: &str) -> DeliveryError {
    DeliveryError::Temporary(format!("{step}: no answer within {}", humantime::format_duration(cfg.timeout)))
}

/// Connects to the SMTP server and gets it ready for a transaction: TLS as configured (implicit,
/// or STARTTLS, which must succeed), EHLO, and AUTH when credentials are configured. Each step
/// under `[smtp] timeout`. On an error after the connection is up, the connection is aborted.
async fn open(smtp: &Smtp) -> Result<AsyncSmtpConnection, DeliveryError> {
    let cfg = &smtp.config;
    let limit = cfg.timeout;
    let hello = hello(cfg);
    let tls = &smtp.tls;
    let implicit = if cfg.tls == TlsMode::Implicit { tls.clone() } else { None };
    let mut conn = tokio::time::timeout(
        limit,
        AsyncSmtpConnection::connect_tokio1((cfg.host.as_str(), cfg.port), Some(limit), &hello, implicit, None),
    )
    .await
    .map_err(|_| timed_out(cfg, "connect"))?
    .map_err(|e| before_data(&format!("connect to {}:{}", cfg.host, cfg.port), e))?;
    let ready = async {
        if cfg.tls == TlsMode::StartTls {
            // Fails closed: never continue in clear text (RFC 3207 §4).
            if !conn.can_starttls() {
                return Err(DeliveryError::Temporary(format!(
                    "{} does not offer STARTTLS; not sending in clear text",
                    cfg.host
                )));
            }
            let params = tls.clone().ok_or_else(|| DeliveryError::Permanent("no TLS parameters".into()))?;
            tokio::time::timeout(limit, conn.starttls(params, &hello))
                .await
                .map_err(|_| timed_out(cfg, "STARTTLS"))?
                .map_err(|e| before_data("STARTTLS", e))?;
        }
        if let Some((user, password)) = &cfg.credentials {
            let credentials = Credentials::new(user.clone(), password.expose().to_string());
            tokio::time::timeout(limit, conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials))
                .await
                .map_err(|_| timed_out(cfg, "AUTH"))?
                .map_err(|e| before_data("AUTH", e))?;
        }
        Ok(())
    }
    .await;
    match ready {
        Ok(()) => Ok(conn),
        Err(e) => {
            let _ = tokio::time::timeout(limit, conn.abort()).await;
            Err(e)
        }
    }
}

/// What [`probe`] found out about the SMTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpProbe {
    /// The name the server gave in its EHLO answer.
    pub server: String,
    /// Whether the connection is encrypted (implicit TLS or STARTTLS).
    pub encrypted: bool,
    /// Whether AUTH was done (credentials are configured).
    pub authenticated: bool,
    /// Whether the server offers 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
}

/// Checks that mail could be sent, and sends nothing: connect, TLS, EHLO, AUTH when
/// configured (the same code as a delivery), then QUIT (RFC 5321 §4.1.1.10).
pub async fn probe(smtp: &Smtp) -> Result<SmtpProbe, DeliveryError> {
    let mut conn = open(smtp).await?;
    let found = SmtpProbe {
        server: conn.server_info().name().to_string(),
        encrypted: conn.is_encrypted(),
        authenticated: smtp.config.credentials.is_some(),
        eight_bit_mime: conn.server_info().supports_feature(Extension::EightBitMime),
    };
    let _ = tokio::time::timeout(smtp.config.timeout, conn.quit()).await;
    Ok(found)
}

/// TLS for the SMTP server: the system's roots, or only the configured CA file (pinned; read
/// as `tls::client_config` reads it for IMAP).
fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(cfg.host.clone());
    if let Some(ca) = &cfg.ca_file {
        builder = builder.certificate_store(CertificateStore::None);
        for der in crate::tls::ca_certificates(ca)? {
            let cert = Certificate::from_der(der.to_vec()).map_err(|e| format!("{}: {e}", ca.display()))?;
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build_rustls().map_err(|e| format!("TLS set-up: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::respond::{Draft, Kind, Plan};
    use crate::store::{Incoming, Judged, Origin, Outcome, Store, Summary, sha256_hex};

    const MIN: Duration = Duration::from_secs(60);
    const MAX: Duration = Duration::from_secs(3600);

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_spreads_downwards() {
        assert_eq!(backoff(1, MIN, MAX, 0.0), MIN);
        assert_eq!(backoff(2, MIN, MAX, 0.0), MIN * 2);
        assert_eq!(backoff(4, MIN, MAX, 0.0), MIN * 8);
        assert_eq!(backoff(7, MIN, MAX, 0.0), MAX, "64 minutes is capped at an hour");
        assert_eq!(backoff(1_000, MIN, MAX, 0.0), MAX, "no overflow");
        assert_eq!(backoff(1, MIN, MAX, 1.0), Duration::from_secs(54), "at most a tenth less");
        assert!(backoff(9, MIN, MAX, 0.5) <= MAX, "the spread never goes past the maximum");
    }

    #[test]
    fn expiry_counts_from_when_the_item_was_queued() {
        let now = jiff::Timestamp::now();
        let limit = Duration::from_secs(5 * 24 * 3600);
        let at = |secs: i64| crate::store::timestamp_text(now - jiff::SignedDuration::from_secs(secs));
        assert!(!expired(&at(5 * 24 * 3600 - 1), now, limit));
        assert!(expired(&at(5 * 24 * 3600 + 1), now, limit));
        assert!(!expired("not a time", now, limit), "tried rather than dropped");
    }

    fn judged() -> Judged {
        Judged {
            class: "other".into(),
            reason: "test".into(),
            related_statement: None,
            related_tracking_id: None,
            no_ack: None,
            sender: Some("jane@x.org".into()),
            sender_verified: false,
            verification: "none".into(),
            relationship: None,
            organization: None,
            rule: None,
            to: vec!["ann@example.org".into()],
            cc: Vec::new(),
            route_reason: "test".into(),
            candidates: Vec::new(),
            answers: None,
        }
    }

    /// A database holding one message with one notification queued about it.
    fn queued(dir: &std::path::Path, body: &str) -> Db {
        let mut s = Store::open(&dir.join("t.db"), Duration::from_secs(5)).expect("open");
        let raw = b"Subject: x\r\n\r\ny".to_vec();
        let incoming = Incoming {
            sha256: sha256_hex(&raw),
            raw,
            message_id: None,
            raw_complete: true,
            internal_date: None,
            origin: Origin::stdin(),
        };
        let id = s.accept(&incoming).expect("accept").id;
        let draft = Draft {
            kind: Kind::Notification,
            message_id: "liaisond.notification.m1.0@iab.org".into(),
            date: "2026-03-01T12:00:00Z".into(),
            from: "liaison@iab.org".into(),
            to: vec!["ann@example.org".into()],
            cc: Vec::new(),
            reply_to: Vec::new(),
            subject: "a look".into(),
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: "auto-generated".into(),
            body: body.into(),
            attach_original: true,
            null_sender: false,
        };
        let plan = |_: &crate::store::OutgoingContext<'_>| Plan {
            drafts: vec![draft.clone()],
            ack: Err("test".into()),
            no_notification: None,
        };
        s.record_judged(id, &Outcome::Processed, &Summary::default(), None, Some(&|_| judged()), Some(&plan))
            .expect("record");
        Db::new(s)
    }

    fn config() -> OutboxConfig {
        OutboxConfig { retry_min: MIN, retry_max: MAX, ..OutboxConfig::default() }
    }

    async fn only_row(db: &Db) -> crate::store::OutboxRow {
        db.call(|s| s.outbox_rows(&[], 10)).await.expect("rows").pop().expect("a row")
    }

    #[tokio::test]
    async fn the_directory_transport_writes_the_message_or_retries() {
        let d = tempfile::tempdir().expect("tempdir");
        let db = queued(d.path(), "hello\n");
        // A file where the directory should be: cannot write, retried later.
        let blocked = d.path().join("blocked");
        std::fs::write(&blocked, "").expect("file");
        let attempts =
            Sender::new(db.clone(), Transport::Directory(blocked), config()).run(CancellationToken::new(), true).await;
        assert_eq!(attempts, 1);
        let row = only_row(&db).await;
        assert_eq!(row.state, "pending");
        assert!(row.last_error.as_deref().unwrap_or("").contains("cannot write"), "{row:?}");
        assert!(row.next_attempt_at.is_some_and(|n| n > crate::store::now_utc()), "not due again at once");

        // Due again now (an operator: cancel, then retry).
        db.call(|s| s.cancel_outbox(1, "t").and_then(|_| s.retry_outbox(1, "t"))).await.expect("due now");
        let out = d.path().join("out");
        Sender::new(db.clone(), Transport::Directory(out.clone()), config()).run(CancellationToken::new(), true).await;
        assert_eq!(only_row(&db).await.state, "sent");
        let written = std::fs::read(out.join("000001-notification.eml")).expect("the message file");
        let text = String::from_utf8_lossy(&written);
        assert!(text.contains("Message-ID: <liaisond.notification.m1.0@iab.org>"), "{text}");
        assert!(text.contains("message/rfc822"), "the original is attached: {text}");
    }

    #[tokio::test]
    async fn an_item_not_sent_in_time_fails() {
        let d = tempfile::tempdir().expect("tempdir");
        let db = queued(d.path(), "hello\n");
        let config = OutboxConfig { give_up_after: Duration::from_millis(1), ..config() };
        tokio::time::sleep(Duration::from_millis(20)).await;
        Sender::new(db.clone(), Transport::Directory(d.path().join("out")), config)
            .run(CancellationToken::new(), true)
            .await;
        let row = only_row(&db).await;
        assert_eq!(row.state, "failed");
        assert!(row.last_error.as_deref().unwrap_or("").contains("not sent within"), "{row:?}");
        assert!(!d.path().join("out").exists(), "nothing written");
    }

    /// A minimal SMTP server that offers neither STARTTLS nor 8BITMIME and keeps the data it
    /// was given (no real server can be made to lack them).
    async fn bare_smtp_server() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let keep = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let keep = keep.clone();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut lines = BufReader::new(r);
                    let _ = w.write_all(b"220 bare ESMTP\r\n").await;
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        if lines.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let verb = String::from_utf8_lossy(&line).to_ascii_uppercase();
                        let reply: &[u8] = if verb.starts_with("EHLO") {
                            b"250-bare\r\n250 SIZE 10000000\r\n"
                        } else if verb.starts_with("DATA") {
                            let _ = w.write_all(b"354 go on\r\n").await;
                            let mut data = Vec::new();
                            while !data.ends_with(b"\r\n.\r\n") {
                                if lines.read_until(b'\n', &mut data).await.unwrap_or(0) == 0 {
                                    return;
                                }
                            }
                            keep.lock().expect("lock").push(data);
                            b"250 queued\r\n"
                        } else if verb.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"250 ok\r\n"
                        };
                        if w.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, received)
    }

    fn smtp(port: u16, tls: TlsMode) -> Smtp {
        let config = SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            tls,
            ca_file: None,
            credentials: None,
            password_source: None,
            timeout: Duration::from_secs(5),
            hello_name: Some("test.example.org".into()),
        };
        // STARTTLS with the system's roots; the bare server never gets that far.
        Smtp::new(config).expect("TLS settings")
    }

    #[tokio::test]
    async fn a_server_without_starttls_gets_nothing_in_clear_text() {
        let (port, received) = bare_smtp_server().await;
        let message = Message { bytes: b"Subject: x\r\n\r\ny\r\n", seven_bit: None };
        let e =
            deliver(&smtp(port, TlsMode::StartTls), Some("a@x.org"), &["b@x.org".into()], message, || async { Ok(()) })
                .await
                .expect_err("refused");
        assert!(matches!(&e, DeliveryError::Temporary(m) if m.contains("does not offer STARTTLS")), "{e}");
        assert!(received.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_server_without_8bitmime_gets_the_seven_bit_copy() {
        let (port, received) = bare_smtp_server().await;
        let eight = "Subject: x\r\n\r\nZürich\r\n".as_bytes();
        let to = ["b@x.org".to_string()];
        let e = deliver(&smtp(port, TlsMode::None), None, &to, Message { bytes: eight, seven_bit: None }, || async {
            Ok(())
        })
        .await
        .expect_err("no 7-bit copy");
        assert!(matches!(&e, DeliveryError::Permanent(m) if m.contains("8BITMIME")), "{e}");
        let seven = b"Subject: x\r\n\r\nZ=C3=BCrich\r\n";
        let started = Arc::new(Mutex::new(false));
        let s = started.clone();
        let reply = deliver(
            &smtp(port, TlsMode::None),
            None,
            &to,
            Message { bytes: eight, seven_bit: Some(seven) },
            || async move {
                *s.lock().expect("lock") = true;
                Ok(())
            },
        )
        .await
        .expect("sent");
        assert!(reply.starts_with("250"), "{reply}");
        assert!(*started.lock().expect("lock"), "the store was told before the data went out");
        let got = received.lock().expect("lock").clone();
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with(seven) && got[0].is_ascii(), "{:?}", String::from_utf8_lossy(&got[0]));
    }
}
