//! Where messages come from. Each source hands every message to the [`Ingestor`]
//! (`crate::ingest`) and changes nothing on its side before the message is committed.
//!
//! - [`imap`]: one task per configured mailbox (with [`imap::cursor`], the pure decisions
//!   about UIDs);
//! - [`maildir`]: one task per configured Maildir;
//! - [`stdin`]: one message piped by an MTA (`liaisond ingest`).
//!
//! [`Ingestor`]: crate::ingest::Ingestor

pub mod imap;
pub mod maildir;
pub mod stdin;

/// How a source task ended.
#[derive(Debug, Default, Clone, Copy)]
pub struct SourceReport {
    pub stored: usize,
    pub already_known: usize,
}
