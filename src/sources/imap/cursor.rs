//! The cursor logic of IMAP synchronisation, as pure functions (no I/O), so every rule is
//! tested without a server.
//!
//! The cursor of a mailbox is `(UIDVALIDITY, last UID)`: every message up to `last_uid` is
//! committed. It only moves forward once the messages before it are stored, never from
//! UIDNEXT (a fetch that ended early must not skip mail).

use liaisond_model::Cursor;

/// What to do with a mailbox after SELECT, given the stored cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStart {
    /// Never seen: start from UID 1.
    Fresh,
    /// Same UIDVALIDITY: fetch UIDs after this one.
    After(u32),
    /// UIDVALIDITY changed (RFC 3501 §2.3.1.1): the old UIDs mean nothing now; rescan from
    /// UID 1 and rely on the stored bytes' SHA-256 to recognise what is already stored.
    Rescan { old: Option<u32> },
}

/// Decides where synchronisation starts.
pub fn sync_start(stored: Option<Cursor>, uidvalidity: u32) -> SyncStart {
    match stored {
        None => SyncStart::Fresh,
        Some(Cursor { uidvalidity: None, .. }) => SyncStart::Fresh,
        Some(Cursor { uidvalidity: Some(v), last_uid }) if v == uidvalidity => SyncStart::After(last_uid),
        Some(Cursor { uidvalidity: old, .. }) => SyncStart::Rescan { old },
    }
}

impl SyncStart {
    /// The first UID to search from.
    pub fn first_uid(self) -> u32 {
        match self {
            SyncStart::After(last) => last.saturating_add(1),
            SyncStart::Fresh | SyncStart::Rescan { .. } => 1,
        }
    }
}

/// The UIDs a `UID SEARCH UID n:*` answer really means: those at or after `first`, sorted.
/// (RFC 3501 §6.4.8: `n:*` always includes the highest UID, even when it is below `n`.)
pub fn new_uids(found: impl IntoIterator<Item = u32>, first: u32) -> Vec<u32> {
    let mut uids: Vec<u32> = found.into_iter().filter(|u| *u >= first).collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// A compact IMAP sequence set for sorted, distinct UIDs: `1:3,7,9:10`.
pub fn uid_set(sorted: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// One FETCH to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// Fetch these messages whole.
    Bodies(Vec<u32>),
    /// Too large to fetch: keep only the header section (R31).
    Oversized { uid: u32, size: u64 },
}

/// Groups messages (UID, RFC822.SIZE; sorted by UID) into fetches of at most `max_messages`
/// messages and `max_bytes` bytes (a single larger message goes alone), so that memory stays
/// bounded by roughly `max_bytes` or the largest message. Messages over `max_message_size` get
/// a batch of their own that fetches only the header.
pub fn plan_batches(sizes: &[(u32, u64)], max_messages: usize, max_bytes: u64, max_message_size: u64) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    let mut current_bytes = 0u64;
    for &(uid, size) in sizes {
        if size > max_message_size {
            if !current.is_empty() {
                batches.push(Batch::Bodies(std::mem::take(&mut current)));
                current_bytes = 0;
            }
            batches.push(Batch::Oversized { uid, size });
            continue;
        }
        if !current.is_empty() && (current.len() >= max_messages.max(1) || current_bytes + size > max_bytes) {
            batches.push(Batch::Bodies(std::mem::take(&mut current)));
            current_bytes = 0;
        }
        current.push(uid);
        current_bytes += size;
    }
    if !current.is_empty() {
        batches.push(Batch::Bodies(current));
    }
    batches
}

impl Batch {
    /// The highest UID this batch covers.
    pub fn last_uid(&self) -> u32 {
        match self {
            Batch::Bodies(uids) => uids.last().copied().unwrap_or(0),
            Batch::Oversized { uid, .. } => *uid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_start_follows_uidvalidity() {
        assert_eq!(sync_start(None, 7), SyncStart::Fresh);
        assert_eq!(sync_start(Some(Cursor { uidvalidity: None, last_uid: 0 }), 7), SyncStart::Fresh);
        let c = Some(Cursor { uidvalidity: Some(7), last_uid: 41 });
        assert_eq!(sync_start(c, 7), SyncStart::After(41));
        assert_eq!(sync_start(c, 7).first_uid(), 42);
        assert_eq!(sync_start(c, 8), SyncStart::Rescan { old: Some(7) });
        assert_eq!(sync_start(c, 8).first_uid(), 1);
        assert_eq!(SyncStart::After(u32::MAX).first_uid(), u32::MAX);
    }

    #[test]
    fn search_answers_below_the_cursor_are_dropped() {
        // The server answers `UID SEARCH UID 42:*` with its highest UID, 41, when nothing is new.
        assert!(new_uids([41], 42).is_empty());
        assert_eq!(new_uids([45, 42, 44, 41, 44], 42), vec![42, 44, 45]);
    }

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), format!("{}:{}", u32::MAX - 1, u32::MAX));
    }

    #[test]
    fn batches_respect_count_bytes_and_the_size_limit() {
        let sizes = [(1, 10), (2, 10), (3, 10), (4, 100), (5, 10), (6, 5000), (7, 10)];
        let b = plan_batches(&sizes, 2, 50, 1000);
        assert_eq!(
            b,
            vec![
                Batch::Bodies(vec![1, 2]),
                Batch::Bodies(vec![3]),
                Batch::Bodies(vec![4]),
                Batch::Bodies(vec![5]),
                Batch::Oversized { uid: 6, size: 5000 },
                Batch::Bodies(vec![7]),
            ]
        );
        assert_eq!(b.iter().map(Batch::last_uid).collect::<Vec<_>>(), vec![2, 3, 4, 5, 6, 7]);
        assert!(plan_batches(&[], 10, 10, 10).is_empty());
    }
}
