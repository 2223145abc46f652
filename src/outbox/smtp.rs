//! Delivery over SMTP, step by step on one connection (lettre's `AsyncSmtpConnection`, not its
//! transport), so that a failure after the message data can be told apart from one before it.

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use super::DeliveryError;
use crate::config::{SmtpConfig, TlsMode};

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

/// The bytes to send, and the same message in 7 bits when it has 8-bit content.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub bytes: &'a [u8],
    pub seven_bit: Option<&'a [u8]>,
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
