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
use crate::store::{Db, OutboxItem, SendResult};

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum Transport {
    Smtp(SmtpConfig),
    /// A dry run: each message is written to `<dir>/<id>-<kind>.eml`.
    Directory(PathBuf),
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
}

/// How often the outbox is looked at when nothing wakes the sender (mail queued by
/// `liaisond ingest` in another process, retries that fell due).
const LOOK_AGAIN: Duration = Duration::from_secs(10);

impl Sender {
    pub fn new(db: Db, transport: Transport, config: OutboxConfig) -> Sender {
        Sender { db, transport, config, wake: Arc::new(Notify::new()) }
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
                let item = match self.db.call(|s| s.claim_outbox()).await {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the outbox; will try again");
                        break;
                    }
                };
                attempts += 1;
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
                _ = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => return attempts,
            }
        }
    }

    async fn attempt(&self, item: &OutboxItem) -> SendResult {
        let queued = item.queued_at.parse::<jiff::Timestamp>().unwrap_or_else(|_| jiff::Timestamp::now());
        let age = jiff::Timestamp::now().duration_since(queued);
        let limit = jiff::SignedDuration::try_from(self.config.give_up_after).unwrap_or(jiff::SignedDuration::MAX);
        if age > limit {
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
        let recipients = item.draft.recipients();
        let reverse_path = (!item.draft.null_sender).then(|| {
            crate::relationships::normalize_address(&item.draft.from).unwrap_or_else(|| item.draft.from.clone())
        });
        let outcome = match &self.transport {
            Transport::Directory(dir) => write_to_directory(dir, item, &bytes).await,
            Transport::Smtp(cfg) => {
                let db = self.db.clone();
                let id = item.id;
                deliver(cfg, reverse_path.as_deref(), &recipients, &bytes, || async move {
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

    /// The next attempt: `retry_min` doubled for every earlier attempt, at most `retry_max`,
    /// with up to a tenth of random spread so that many items do not all come back at once.
    fn retry(&self, item: &OutboxItem, error: String) -> SendResult {
        let exponent = (item.attempts - 1).clamp(0, 20) as u32;
        let base = self.config.retry_min.saturating_mul(2u32.saturating_pow(exponent)).min(self.config.retry_max);
        let spread = base.mul_f64(rand::random::<f64>() * 0.1);
        let next = jiff::Timestamp::now() + jiff::SignedDuration::try_from(base + spread).unwrap_or_default();
        SendResult::Retry { error, next: crate::store::timestamp_text(next) }
    }
}

fn log(item: &OutboxItem, result: &SendResult) {
    let kind = item.draft.kind.as_str();
    let message_id = item.draft.message_id.as_str();
    let to = item.draft.recipients().join(", ");
    match result {
        SendResult::Sent { reply } => tracing::info!(id = item.id, kind, message_id, to, reply, "mail sent"),
        SendResult::Retry { error, next } => {
            tracing::warn!(id = item.id, kind, message_id, to, error, next, "sending failed; will retry")
        }
        SendResult::Failed { error } => tracing::error!(id = item.id, kind, message_id, to, error, "sending failed"),
        SendResult::Uncertain { error } => tracing::error!(
            id = item.id,
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
    cfg: &SmtpConfig,
    reverse_path: Option<&str>,
    recipients: &[String],
    message: &[u8],
    data_starts: F,
) -> Result<String, DeliveryError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let limit = cfg.timeout;
    let timed_out = |step: &str| {
        DeliveryError::Temporary(format!("{step}: no answer within {}", humantime::format_duration(limit)))
    };
    let hello = match &cfg.hello_name {
        Some(name) => ClientId::Domain(name.clone()),
        None => ClientId::default(),
    };
    let tls = match cfg.tls {
        TlsMode::None => None,
        TlsMode::Implicit | TlsMode::StartTls => Some(tls_parameters(cfg).map_err(DeliveryError::Permanent)?),
    };
    let implicit = if cfg.tls == TlsMode::Implicit { tls.clone() } else { None };
    let mut conn = tokio::time::timeout(
        limit,
        AsyncSmtpConnection::connect_tokio1((cfg.host.as_str(), cfg.port), Some(limit), &hello, implicit, None),
    )
    .await
    .map_err(|_| timed_out("connect"))?
    .map_err(|e| before_data(&format!("connect to {}:{}", cfg.host, cfg.port), e))?;

    let result = async {
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
                .map_err(|_| timed_out("STARTTLS"))?
                .map_err(|e| before_data("STARTTLS", e))?;
        }
        if let Some((user, password)) = &cfg.credentials {
            let credentials = Credentials::new(user.clone(), password.expose().to_string());
            tokio::time::timeout(limit, conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials))
                .await
                .map_err(|_| timed_out("AUTH"))?
                .map_err(|e| before_data("AUTH", e))?;
        }
        let mut parameters = Vec::new();
        if !message.is_ascii() {
            if !conn.server_info().supports_feature(Extension::EightBitMime) {
                return Err(DeliveryError::Permanent(
                    "the message has 8-bit content and the server does not offer 8BITMIME".into(),
                ));
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let from = match reverse_path {
            // RFC 5321 §4.5.5: the null reverse-path, for mail that must not be answered.
            None => None,
            Some(a) => Some(a.parse().map_err(|e| DeliveryError::Permanent(format!("sender address `{a}`: {e}")))?),
        };
        tokio::time::timeout(limit, conn.command(Mail::new(from, parameters)))
            .await
            .map_err(|_| timed_out("MAIL FROM"))?
            .map_err(|e| before_data("MAIL FROM", e))?;
        for to in recipients {
            let address = to.parse().map_err(|e| DeliveryError::Permanent(format!("recipient `{to}`: {e}")))?;
            tokio::time::timeout(limit, conn.command(Rcpt::new(address, Vec::new())))
                .await
                .map_err(|_| timed_out("RCPT TO"))?
                .map_err(|e| before_data(&format!("RCPT TO:<{to}>"), e))?;
        }
        tokio::time::timeout(limit, conn.command(Data))
            .await
            .map_err(|_| timed_out("DATA"))?
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

/// TLS for the SMTP server: the system's roots, or only the configured CA file (pinned).
fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(cfg.host.clone());
    if let Some(ca) = &cfg.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?;
        builder = builder.certificate_store(CertificateStore::None).add_root_certificate(cert);
    }
    builder.build_rustls().map_err(|e| format!("TLS set-up: {e}"))
}
