//! Tracking IDs (`LS-2026-0042`) as people write them: in subjects, bodies, digest lines.

use std::sync::LazyLock;

use regex::Regex;

static TRACKING_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bLS-(\d{4})-(\d{4,6})\b").expect("static regex"));

/// At most this many tracking IDs are taken from one text: each is a database lookup, and a
/// real reply names one or two (a digest answered in full, a dozen).
pub const MAX_TRACKING_IDS: usize = 16;

/// The distinct tracking IDs written in a text (`LS-2026-0042`), upper-cased, in order, at
/// most [`MAX_TRACKING_IDS`].
pub fn tracking_ids_in(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for c in TRACKING_ID.captures_iter(text) {
        let id = format!("LS-{}-{}", &c[1], &c[2]);
        if !ids.contains(&id) {
            ids.push(id);
            if ids.len() == MAX_TRACKING_IDS {
                break;
            }
        }
    }
    ids
}
