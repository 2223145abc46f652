//! A message as it arrives and as the store keeps track of it: where it came from, its bytes
//! and their hash, the outcome of processing it, and a mailbox's cursor.

use sha2::{Digest, Sha256};

/// How a message reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Imap,
    Maildir,
    Stdin,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Imap => "imap",
            SourceKind::Maildir => "maildir",
            SourceKind::Stdin => "stdin",
        }
    }
}

/// Where one copy of a message came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The configured source name (`stdin` for `liaisond ingest`).
    pub source: String,
    pub kind: SourceKind,
    /// IMAP mailbox name, or the Maildir directory.
    pub mailbox: Option<String>,
    pub uidvalidity: Option<u32>,
    pub uid: Option<u32>,
    /// A Maildir file's unique name (the part before `:2,`).
    pub file_key: Option<String>,
    /// Something must still be done on the server once this is committed (move, flag).
    pub post_action_pending: bool,
}

impl Origin {
    pub fn stdin() -> Origin {
        Origin {
            source: "stdin".into(),
            kind: SourceKind::Stdin,
            mailbox: None,
            uidvalidity: None,
            uid: None,
            file_key: None,
            post_action_pending: false,
        }
    }
}

/// One message as it arrived, ready to be stored.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub raw: Vec<u8>,
    pub sha256: String,
    /// As in the header, without angle brackets; `None` when absent or empty.
    pub message_id: Option<String>,
    /// False when only the header section was kept (an oversized message).
    pub raw_complete: bool,
    /// The IMAP INTERNALDATE, RFC 3339.
    pub internal_date: Option<String>,
    pub origin: Origin,
}

impl Arrival {
    /// Complete bytes from `origin`, with no Message-ID or INTERNALDATE recorded.
    pub fn new(raw: Vec<u8>, origin: Origin) -> Arrival {
        Arrival { sha256: sha256_hex(&raw), raw, message_id: None, raw_complete: true, internal_date: None, origin }
    }
}

/// The SHA-256 of raw bytes, lowercase hex.
pub fn sha256_hex(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
}

/// How processing one message ended (its class and route are its [`Verdict`](crate::Verdict)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Quarantined { error: String },
    Ignored { reason: String },
}

impl Outcome {
    /// The message state it records: `processed`, `quarantined`, `ignored`.
    pub fn state(&self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Quarantined { .. } => "quarantined",
            Outcome::Ignored { .. } => "ignored",
        }
    }
    /// The error or the reason, when there is one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Outcome::Processed => None,
            Outcome::Quarantined { error } => Some(error),
            Outcome::Ignored { reason } => Some(reason),
        }
    }
}

/// The header facts parsing found, kept for listings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub subject: Option<String>,
    pub from: Option<String>,
    pub date: Option<String>,
}

/// The stored position in one IMAP mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub uidvalidity: Option<u32>,
    /// Every UID up to and including this one has been committed (or was gone).
    pub last_uid: u32,
}
