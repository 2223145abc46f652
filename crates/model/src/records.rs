//! Rows the store reads for the scheduler, the digest and the operator: shared, because the
//! core's digest is written from them.

use serde::Serialize;

/// An outbox row as `outbox list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub tracking_id: Option<String>,
    pub message: Option<i64>,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub attempts: i64,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub sent_at: Option<String>,
    pub last_error: Option<String>,
    pub smtp_reply: Option<String>,
}

/// A statement as the scheduler and the digest see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowRow {
    pub id: i64,
    pub tracking_id: String,
    pub message: i64,
    pub title: Option<String>,
    /// The matched organisation, else the one the statement names.
    pub organization: Option<String>,
    pub purpose: Option<String>,
    /// `YYYY-MM-DD`.
    pub deadline: Option<String>,
    /// When its message arrived (INTERNALDATE, else when stored), RFC 3339.
    pub received: String,
    /// When it was recorded.
    pub created_at: String,
    pub state: String,
    pub route_to: Vec<String>,
    pub assigned_to: Option<String>,
    /// The Message-ID of the message that brought it.
    pub message_id: Option<String>,
    /// Where a reply must go (from the statement).
    pub reply_to: Vec<String>,
    /// Its page in the datatracker, once recorded.
    pub datatracker_url: Option<String>,
    /// Sent by the IETF: the other body's answer is awaited.
    pub outgoing: bool,
    /// When it was marked done (RFC 3339).
    pub done_at: Option<String>,
}

/// A quarantined message, for the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedRow {
    pub id: i64,
    pub received_at: String,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub reason: Option<String>,
}
