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

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use liaisond_core::respond::{compose, compose_seven_bit};
use liaisond_model::{normalize_address, timestamp_text};
use liaisond_store::{OutboxItem, SendResult};

use crate::config::OutboxConfig;
use crate::daemon::service::Heartbeat;
use crate::db::Db;
use directory::write_to_directory;
pub use smtp::{Message, Smtp, SmtpProbe, deliver, probe};

mod directory;
mod smtp;

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum Transport {
    Smtp(Smtp),
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
        let boundary = boundary();
        let bytes = match compose(&item.draft, original.as_deref(), &boundary) {
            Ok(b) => b,
            Err(e) => return SendResult::Failed { error: e.to_string() },
        };
        // For a server without 8BITMIME (RFC 6152), the same message in 7 bits.
        let seven_bit = match bytes.is_ascii() {
            true => None,
            false => match compose_seven_bit(&item.draft, original.as_deref(), &boundary) {
                Ok(b) => Some(b),
                Err(e) => return SendResult::Failed { error: e.to_string() },
            },
        };
        let recipients = item.draft.recipients();
        let reverse_path = (!item.draft.null_sender)
            .then(|| normalize_address(&item.draft.from).unwrap_or_else(|| item.draft.from.clone()));
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
        SendResult::Retry { error, next: timestamp_text(next) }
    }
}

/// A multipart boundary for one message: 40 random letters and digits (RFC 2046 §5.1.1
/// allows up to 70), so no line of the parts can match it.
fn boundary() -> String {
    use rand::Rng;
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(40).map(char::from).collect()
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::config::{SmtpConfig, TlsMode};
    use liaisond_model::{
        Arrival, Class, Draft, DraftKind, Origin, OutboxRow, Outcome, OutgoingContext, Plan, Summary, Verdict,
    };
    use liaisond_store::Store;

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
        let at = |secs: i64| timestamp_text(now - jiff::SignedDuration::from_secs(secs));
        assert!(!expired(&at(5 * 24 * 3600 - 1), now, limit));
        assert!(expired(&at(5 * 24 * 3600 + 1), now, limit));
        assert!(!expired("not a time", now, limit), "tried rather than dropped");
    }

    fn judged() -> Verdict {
        Verdict {
            sender: Some("jane@x.org".into()),
            to: vec!["ann@example.org".into()],
            ..Verdict::new(Class::Other, "test")
        }
    }

    /// A database holding one message with one notification queued about it.
    fn queued(dir: &std::path::Path, body: &str) -> Db {
        let mut s = Store::open(&dir.join("t.db"), Duration::from_secs(5)).expect("open");
        let id = s.accept(&Arrival::new(b"Subject: x\r\n\r\ny".to_vec(), Origin::stdin())).expect("accept").id;
        let draft = Draft {
            kind: DraftKind::Notification,
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
            receipt: false,
            about_sender: None,
            tracking_id: None,
        };
        let plan = |_: &OutgoingContext<'_>| Plan {
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

    async fn only_row(db: &Db) -> OutboxRow {
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
        assert!(row.next_attempt_at.is_some_and(|n| n > liaisond_store::now_utc()), "not due again at once");

        // Due again now (an operator: cancel, then retry).
        db.call(|s| s.cancel_outbox(1, "t").and_then(|_| s.retry_outbox(1, "t"))).await.expect("due now");
        let out = d.path().join("out");
        Sender::new(db.clone(), Transport::Directory(out.clone()), config()).run(CancellationToken::new(), true).await;
        assert_eq!(only_row(&db).await.state, "sent");
        let written = std::fs::read(out.join("000001-notification.eml")).expect("the message file");
        let text = String::from_utf8_lossy(&written);
        assert!(text.contains("Message-ID: <liaisond.notification.m1.0@iab.org>"), "{text}");
        assert!(text.contains("message/rfc822"), "the original is attached: {text}");
        // Regression (issue 13): written with the umask's mode, readable by any local user.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("000001-notification.eml")).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
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
