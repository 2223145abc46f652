//! Stage 2: one parsed message, read: the text of each attachment and the statement's fields.
//! This is what `liaisond parse` prints, what the store records as the message's reading, and
//! what the judge decides on.
//!
//! Pure: the attachments that need a third-party parser (Word, PDF, zip) are read through the
//! caller's [`AttachmentText`] (the binary's confined worker processes, under a time budget
//! it keeps); plain text and HTML are read here, by the extract crate's own bounded code.

use liaisond_extract::{self as extract, ExtractLimits, Extracted, Format};
use liaisond_model::{AttachmentRecord, MAX_FIELD_BYTES, MAX_LIST_ITEMS, Reading, Statement, clip_bytes};
use serde::Serialize;

use crate::budget::Budget;
use crate::content::AttachmentPart;
use crate::parse::Parsed;
use crate::relationships::Relationships;
use crate::understand::{self, Source};

/// Bytes of one text (a body, an attachment's text) that the statement's fields are read
/// from: a statement's text is tens of KiB (a Word or PDF statement with its annexes, rarely
/// over 100 KiB), and its fields sit at its start (the template) or end (the signature).
pub const MAX_TEXT_BYTES_EACH: usize = 256 * 1024;
// `content` keeps more of a body text than this, so that reading still sees it was longer.
const _: () = assert!(crate::content::MAX_BODY_TEXT_BYTES > MAX_TEXT_BYTES_EACH);
/// Bytes of all the texts of one message together that the fields are read from: four texts
/// of the size above, so a large body does not leave the attached statement unread.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Texts of one message read for the fields: the [`crate::content::MAX_ATTACHMENTS`]
/// attachments and the bodies of a message forwarded ten deep, with room to spare.
pub const MAX_TEXTS: usize = 200;
/// Warnings about the message's content and attachments kept in its reading (the reading's
/// own warnings about the fields come after them, a handful at most); the rest are counted.
pub const MAX_WARNINGS: usize = 50;

/// Reads the text of an attachment whose format needs isolation; the error is what the
/// attachment records.
pub type AttachmentText<'a> = &'a dyn Fn(&AttachmentPart) -> Result<Extracted, String>;

/// One message, read.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// The `From:` address, without its display name.
    pub sender: Option<String>,
    pub statement: Statement,
    pub attachments: Vec<AttachmentRecord>,
    pub warnings: Vec<String>,
    /// The start of the message's own first text body: where a reply's commands are.
    pub reply_text: String,
}

/// How much of the first body a reply's commands are looked for in: commands are its first
/// lines.
pub const MAX_REPLY_TEXT_BYTES: usize = 8 * 1024;

/// The start of the message's own first body (not a forwarded one's).
fn reply_text(parsed: &Parsed) -> String {
    parsed
        .content
        .bodies
        .iter()
        .find(|b| b.depth == 0)
        .map(|b| clip_bytes(&b.text, MAX_REPLY_TEXT_BYTES).to_string())
        .unwrap_or_default()
}

impl Analysis {
    /// The record the store keeps of this reading.
    /// What is stored: within the limits of [`Statement::clipped`], at most
    /// [`MAX_LIST_ITEMS`] warnings, so that what a message adds to the database besides its
    /// raw bytes stays small whatever it holds (issue 13).
    pub fn to_reading(&self) -> Reading {
        let statement = self.statement.clipped();
        let warnings: Vec<&str> =
            self.warnings.iter().take(MAX_LIST_ITEMS).map(|w| clip_bytes(w, MAX_FIELD_BYTES)).collect();
        let statement_json = serde_json::to_string(&statement).unwrap_or_else(|_| "{}".into());
        let warnings_json = serde_json::to_string(&warnings).unwrap_or_else(|_| "[]".into());
        Reading {
            attachments: self.attachments.clone(),
            title: statement.title.clone(),
            purpose: statement.purpose.map(|p| p.as_str().to_string()),
            deadline: statement.deadline.clone(),
            from_org: statement.from_org.clone(),
            statement_json,
            warnings_json,
        }
    }

    /// The message as it was read when it was recorded: its header facts from `parsed`, the
    /// rest from the stored `reading` (attachments are not extracted again). The inverse of
    /// [`to_reading`](Self::to_reading), for judging a recorded message again.
    pub fn from_reading(parsed: &Parsed, reading: Reading) -> Analysis {
        let header = parsed.header.as_ref().ok();
        Analysis {
            message_id: header.and_then(|h| h.message_id.clone()),
            subject: header.and_then(|h| h.subject.clone()),
            sender: header.and_then(|h| h.from.as_deref()).map(bare_address),
            statement: serde_json::from_str(&reading.statement_json).unwrap_or_default(),
            attachments: reading.attachments,
            warnings: serde_json::from_str(&reading.warnings_json).unwrap_or_default(),
            reply_text: reply_text(parsed),
        }
    }

    /// Whether an attachment yielded text enough to be a document (a statement usually is one).
    pub fn has_document(&self) -> bool {
        self.attachments.iter().any(|a| a.text_chars >= 200)
    }
}

/// Reads a parsed message: each attachment's text (`attachment_text` for the formats that need
/// isolation), then the statement's fields from the bodies and those texts, until `budget`
/// runs out: the attachments not reached by then are not read, and the fields found so far
/// are kept with a warning.
pub fn read(
    parsed: &Parsed,
    rel: &Relationships,
    attachment_text: AttachmentText<'_>,
    budget: &Budget<'_>,
) -> Analysis {
    let header = parsed.header.as_ref().ok();
    let mut warnings = Vec::new();
    if let Err(e) = &parsed.header {
        warnings.push(e.to_string());
    }
    let content = &parsed.content;
    warnings.extend(content.warnings.iter().cloned());

    let mut attachments = Vec::with_capacity(content.attachments.len());
    let mut texts: Vec<(&str, String)> = content.bodies.iter().map(|b| ("body", b.text.clone())).collect();
    for part in &content.attachments {
        // Asked each time: extracting one attachment can take a while. The kind is what the
        // worker read the bytes as when it says (a zip that holds a Word document), else what
        // `sniff` made of its first bytes and its name.
        let result = if budget.check() { Err(NOT_READ.to_string()) } else { text_of(part, attachment_text) };
        let (text, error, format) = match result {
            Ok(Some(t)) => {
                warnings.extend(t.warnings.iter().map(|w| format!("{}: {w}", part.filename)));
                (t.text, None, t.format.unwrap_or(part.format))
            }
            Ok(None) => (String::new(), None, part.format),
            Err(e) => (String::new(), Some(e), part.format),
        };
        attachments.push(AttachmentRecord {
            filename: part.filename.clone(),
            content_type: part.content_type.clone(),
            size: part.bytes.len() as i64,
            sha256: part.sha256.clone(),
            kind: format.as_str().to_string(),
            depth: part.depth as i64,
            text_chars: text.chars().count() as i64,
            error,
        });
        if !text.trim().is_empty() {
            texts.push((&part.filename, text));
        }
    }

    cap_warnings(&mut warnings);
    let sources = within_caps(&texts, &mut warnings);
    let sender = header.and_then(|h| h.from.as_deref()).map(bare_address);
    let understood = understand::understand(
        &understand::Input {
            subject: header.and_then(|h| h.subject.as_deref()),
            sender: sender.as_deref(),
            texts: &sources,
            budget,
        },
        rel,
    );
    warnings.extend(understood.warnings);
    Analysis {
        message_id: header.and_then(|h| h.message_id.clone()),
        subject: header.and_then(|h| h.subject.clone()),
        sender,
        statement: understood.statement,
        attachments,
        warnings,
        reply_text: reply_text(parsed),
    }
}

/// Keeps the first [`MAX_WARNINGS`] warnings and says how many more there were.
fn cap_warnings(warnings: &mut Vec<String>) {
    if warnings.len() > MAX_WARNINGS {
        let more = warnings.len() - MAX_WARNINGS;
        warnings.truncate(MAX_WARNINGS);
        warnings.push(format!("{more} more warnings about the content are not shown"));
    }
}

/// What an attachment records when the time ran out before it.
const NOT_READ: &str = "not read: reading stopped at the time limit";

/// The texts the fields are read from: at most [`MAX_TEXTS`], each cut at
/// [`MAX_TEXT_BYTES_EACH`], all together at [`MAX_TEXT_BYTES`]; a warning when that left
/// something out. Everything `understand` does is then bounded whatever the message's size.
fn within_caps<'t>(texts: &'t [(&'t str, String)], warnings: &mut Vec<String>) -> Vec<Source<'t>> {
    let mut left = MAX_TEXT_BYTES;
    let mut clipped = false;
    let mut sources = Vec::new();
    for (name, text) in texts {
        if sources.len() == MAX_TEXTS || left == 0 {
            clipped = true;
            break;
        }
        let kept = understand::cut(text, left.min(MAX_TEXT_BYTES_EACH));
        clipped |= kept.len() < text.len();
        left -= kept.len();
        sources.push(Source { name, text: kept });
    }
    if clipped {
        warnings.push(format!(
            "the message's text is longer than the fields are read from ({MAX_TEXTS} texts, {} KiB of each, {} KiB in \
             all); the rest was not read",
            MAX_TEXT_BYTES_EACH / 1024,
            MAX_TEXT_BYTES / 1024
        ));
    }
    sources
}

/// The text of one attachment: this crate's bounded readers for text and HTML, the caller's
/// isolated reader for the rest; `None` for formats that hold no text (images).
fn text_of(part: &AttachmentPart, isolated: AttachmentText<'_>) -> Result<Option<Extracted>, String> {
    if part.format == Format::Other {
        return Ok(None);
    }
    match extract::read_in_process(part.format, &part.bytes, &ExtractLimits::default()) {
        Some(read) => read.map(Some).map_err(|e| e.to_string()),
        None => isolated(part).map(Some),
    }
}

/// `Name <a@b>` → `a@b`.
fn bare_address(from: &str) -> String {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(l), Some(r)) if l < r => from[l + 1..r].to_string(),
        _ => from.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::within;
    use crate::understand::{MAX_ADDRESSES, MAX_LABELLED_LINES};

    /// A message whose plain-text body is line `n` for n = 0, 1, ... up to `bytes`.
    fn message_of_lines(bytes: usize, line: impl Fn(usize) -> String) -> Vec<u8> {
        let mut raw =
            String::from("From: a@example.org\r\nSubject: LS on nothing\r\nMessage-ID: <h@example.org>\r\n\r\n");
        let mut n = 0;
        while raw.len() < bytes {
            raw.push_str(&line(n));
            raw.push_str("\r\n");
            n += 1;
        }
        raw.into_bytes()
    }

    /// `raw` parsed and read, with no worker and no time limit, within `limit` (see `within`).
    fn parse_and_read(raw: Vec<u8>, limit: Duration) -> Analysis {
        let rel = Relationships::builtin();
        within(limit, "parse and read", move || {
            read(&Parsed::new(&raw), &rel, &|_| Err("no worker here".into()), &Budget::unlimited())
        })
    }

    fn count(warnings: &[String], part: &str) -> usize {
        warnings.iter().filter(|w| w.contains(part)).count()
    }

    #[test]
    fn the_text_a_replys_commands_are_read_from_is_capped() {
        let body = "Done: answered\n".repeat(MAX_REPLY_TEXT_BYTES);
        let raw = format!("From: a@example.org\r\nSubject: Re: x\r\n\r\n{body}").into_bytes();
        let a = parse_and_read(raw, Duration::from_secs(20));
        assert!(a.reply_text.len() <= MAX_REPLY_TEXT_BYTES, "{}", a.reply_text.len());
        assert!(a.reply_text.starts_with("Done: answered"));
    }

    #[test]
    fn six_megabytes_of_reply_to_lines_are_read_in_linear_time() {
        // Issue 13: each address was looked for in the list of those before it, N² for N
        // lines. These 6 MB (173,000 lines, each address new) took 10.5 s in a release build
        // and 14 minutes in a debug one (this test's); now 0.14 s in debug. The bound leaves
        // a loaded machine room and still fails the old code by orders of magnitude.
        let raw = message_of_lines(6 << 20, |n| format!("Reply to: someone{n}@example.org"));
        let a = parse_and_read(raw, Duration::from_secs(2));
        assert_eq!(a.statement.reply_to.len(), MAX_ADDRESSES);
        assert_eq!(a.statement.reply_to[0], "someone0@example.org");
        // One warning per cap, however much each clipped.
        assert_eq!(count(&a.warnings, "the message's text is longer"), 1, "{:?}", a.warnings);
        assert_eq!(count(&a.warnings, &format!("more than {MAX_LABELLED_LINES} labelled lines")), 1);
        assert_eq!(count(&a.warnings, "reply-to addresses"), 1, "{:?}", a.warnings);
        assert_eq!(a.warnings.len(), 3, "{:?}", a.warnings);
    }

    #[test]
    fn a_megabyte_of_subject_lines_is_read_in_linear_time() {
        // Issue 13: for each `Subject:` line, every label was looked through again for a
        // `Purpose:` in the same text (N²): this megabyte (49,000 distinct lines, no
        // `Purpose:`) took 7.6 s in a debug build, 1.3 s in release; now under 0.1 s in debug.
        let raw = message_of_lines(1 << 20, |n| format!("Subject: title number {n}"));
        let a = parse_and_read(raw, Duration::from_secs(2));
        // No `Purpose:`: a quoted header block, not a letter; the mail's subject is the title.
        assert_eq!(a.statement.title.as_deref(), Some("LS on nothing"));
    }

    #[test]
    fn the_text_read_is_capped_per_text_and_in_all_with_one_warning() {
        // Five bodies of 300 KiB: each is cut at a word to 256 KiB, and the fifth is not read
        // (1 MiB in all).
        let word = "word ";
        let body = word.repeat(300 * 1024 / word.len());
        let texts: Vec<(&str, String)> = (0..5).map(|_| ("body", body.clone())).collect();
        let mut warnings = Vec::new();
        let sources = within_caps(&texts, &mut warnings);
        assert_eq!(sources.len(), 4);
        assert!(sources.iter().all(|s| s.text.len() <= MAX_TEXT_BYTES_EACH && s.text.ends_with("word")));
        assert!(sources.iter().map(|s| s.text.len()).sum::<usize>() <= MAX_TEXT_BYTES);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // At most MAX_TEXTS texts.
        let texts: Vec<(&str, String)> = (0..MAX_TEXTS + 50).map(|n| ("body", format!("text {n}"))).collect();
        let mut warnings = Vec::new();
        assert_eq!(within_caps(&texts, &mut warnings).len(), MAX_TEXTS);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // Within the caps: as they are, no warning.
        let texts = [("body", "Title: T".to_string())];
        let mut warnings = Vec::new();
        assert_eq!(within_caps(&texts, &mut warnings)[0].text, "Title: T");
        assert!(warnings.is_empty());
    }

    #[test]
    fn content_warnings_are_capped_and_counted() {
        let mut warnings: Vec<String> = (0..MAX_WARNINGS + 7).map(|n| format!("warning {n}")).collect();
        cap_warnings(&mut warnings);
        assert_eq!(warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(warnings[MAX_WARNINGS], "7 more warnings about the content are not shown");
        let mut few = vec!["one".to_string()];
        cap_warnings(&mut few);
        assert_eq!(few, ["one"]);
    }

    #[test]
    fn a_spent_budget_leaves_the_attachments_unread_and_says_why() {
        let raw = b"From: a@example.org\r\nSubject: LS\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nTitle: In the body\r\n\r\n--b\r\n\
Content-Type: text/plain; name=ls.txt\r\nContent-Disposition: attachment; filename=ls.txt\r\n\r\nTitle: X\r\n--b--\r\n";
        let over = || true;
        let a = read(
            &Parsed::new(raw),
            &Relationships::builtin(),
            &|_| Err("no worker here".into()),
            &Budget::until(&over),
        );
        assert_eq!(a.attachments[0].error.as_deref(), Some(NOT_READ));
        assert_eq!(count(&a.warnings, crate::budget::STOPPED), 1, "{:?}", a.warnings);
        // The labels were not read: the title is the mail's subject.
        assert_eq!(a.statement.title.as_deref(), Some("LS"));
    }

    #[test]
    fn a_recorded_reading_gives_back_the_analysis() {
        // `route --dry-run` judges a recorded statement on its stored reading: it must be the
        // analysis the daemon judged, field for field.
        let raw = b"From: Jane Doe <jane.doe@itu.int>\r\nSubject: LS on clocks\r\nMessage-ID: <ls-9@itu.int>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
Title: LS on packet clocks\r\nPurpose: For action\r\nDeadline: 2027-03-01\r\n\r\n--b\r\n\
Content-Type: text/html; name=ls.html\r\nContent-Disposition: attachment; filename=ls.html\r\n\r\n\
<p>Contact: Jane Doe, jane.doe@itu.int</p>\r\n--b--\r\n";
        let parsed = Parsed::new(raw);
        let rel = Relationships::builtin();
        let read = read(&parsed, &rel, &|_| Err("no worker here".into()), &Budget::unlimited());
        let again = Analysis::from_reading(&parsed, read.to_reading());
        let json = |a: &Analysis| serde_json::to_value(a).expect("serialise");
        assert_eq!(json(&again), json(&read));
        assert_eq!(read.attachments.len(), 1);
    }
}
