//! How far a long first sync has come: each source says how many messages it found to fetch
//! and how many it has stored. The daemon shows it in systemd's `STATUS=` ("stored 1200 of
//! 10000 from INBOX"); `liaisond run --once` on a terminal draws a progress bar from it.

use std::sync::{Arc, Mutex, MutexGuard};

/// A sync of this many messages or more shows in `STATUS=`.
pub const LONG_SYNC: usize = 100;

/// Shared by the sources (writers) and the status line or progress bar (readers). Cheap to
/// clone.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    entries: Arc<Mutex<Vec<Entry>>>,
}

/// One source's sync in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source: String,
    pub mailbox: String,
    pub stored: usize,
    pub total: usize,
    pub bytes: u64,
}

impl Progress {
    fn entries(&self) -> MutexGuard<'_, Vec<Entry>> {
        // A few plain values, consistent after any panic.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `source` starts fetching `total` messages from `mailbox`.
    pub fn start(&self, source: &str, mailbox: &str, total: usize) {
        let mut entries = self.entries();
        entries.retain(|e| e.source != source);
        entries.push(Entry { source: source.into(), mailbox: mailbox.into(), stored: 0, total, bytes: 0 });
    }

    /// `source` found `messages` more to look at (a Maildir's second folder).
    pub fn found(&self, source: &str, messages: usize) {
        if let Some(e) = self.entries().iter_mut().find(|e| e.source == source) {
            e.total += messages;
        }
    }

    /// `source` stored `messages` more, of `bytes` bytes.
    pub fn stored(&self, source: &str, messages: usize, bytes: u64) {
        if let Some(e) = self.entries().iter_mut().find(|e| e.source == source) {
            e.stored += messages;
            e.bytes += bytes;
        }
    }

    /// `source` is done (or stopped) with this sync.
    pub fn finish(&self, source: &str) {
        self.entries().retain(|e| e.source != source);
    }

    /// The syncs in progress.
    pub fn snapshot(&self) -> Vec<Entry> {
        self.entries().clone()
    }

    /// For `STATUS=`: "stored 1200 of 10000 from INBOX", one part per long sync in progress
    /// (of at least [`LONG_SYNC`] messages: a few are done before the status would change).
    pub fn status_text(&self) -> Option<String> {
        let parts: Vec<String> = self
            .entries()
            .iter()
            .filter(|e| e.total >= LONG_SYNC)
            .map(|e| format!("stored {} of {} from {}", e.stored, e.total, e.mailbox))
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_in_progress_is_shown_until_it_finishes() {
        let progress = Progress::default();
        assert_eq!(progress.status_text(), None);
        progress.start("imap 'main'", "INBOX", 10_000);
        progress.stored("imap 'main'", 1200, 5 << 20);
        progress.stored("imap 'other'", 5, 0); // not started: ignored
        assert_eq!(progress.status_text().as_deref(), Some("stored 1200 of 10000 from INBOX"));
        assert_eq!(progress.snapshot()[0].bytes, 5 << 20);
        progress.finish("imap 'main'");
        assert_eq!(progress.status_text(), None);
        progress.start("maildir 'local'", "/var/mail/l", LONG_SYNC - 1);
        assert_eq!(progress.status_text(), None, "a short sync is not shown");
    }
}
