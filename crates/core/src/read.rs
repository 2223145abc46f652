//! Stage 2: one parsed message, read: the text of each attachment and the statement's fields.
//! This is what `liaisond parse` prints, what the store records as the message's reading, and
//! what the judge decides on.
//!
//! Pure: the attachments that need a third-party parser (Word, PDF, zip) are read through the
//! caller's [`AttachmentText`] (the binary's confined worker processes, under a time budget
//! it keeps); plain text and HTML are read here, by the extract crate's own bounded code.

use liaisond_extract::{self as extract, ExtractLimits, Extracted, Format};
use liaisond_model::{AttachmentRecord, Reading, Statement};
use serde::Serialize;

use crate::budget::Budget;
use crate::content::AttachmentPart;
use crate::parse::Parsed;
use crate::relationships::Relationships;
use crate::understand::{self, Source};

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
}

impl Analysis {
    /// The record the store keeps of this reading.
    pub fn to_reading(&self) -> Reading {
        let statement_json = serde_json::to_string(&self.statement).unwrap_or_else(|_| "{}".into());
        let warnings_json = serde_json::to_string(&self.warnings).unwrap_or_else(|_| "[]".into());
        Reading {
            attachments: self.attachments.clone(),
            title: self.statement.title.clone(),
            purpose: self.statement.purpose.map(|p| p.as_str().to_string()),
            deadline: self.statement.deadline.clone(),
            from_org: self.statement.from_org.clone(),
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
        }
    }

    /// Whether an attachment yielded text enough to be a document (a statement usually is one).
    pub fn has_document(&self) -> bool {
        self.attachments.iter().any(|a| a.text_chars >= 200)
    }
}

/// Reads a parsed message: each attachment's text (`attachment_text` for the formats that need
/// isolation), then the statement's fields from the bodies and those texts, until `budget`
/// runs out: the fields found so far are then kept with a warning.
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
        let (text, error) = match text_of(part, attachment_text) {
            Ok(Some(t)) => {
                warnings.extend(t.warnings.iter().map(|w| format!("{}: {w}", part.filename)));
                (t.text, None)
            }
            Ok(None) => (String::new(), None),
            Err(e) => (String::new(), Some(e)),
        };
        attachments.push(AttachmentRecord {
            filename: part.filename.clone(),
            content_type: part.content_type.clone(),
            size: part.bytes.len() as i64,
            sha256: part.sha256.clone(),
            kind: part.format.as_str().to_string(),
            depth: part.depth as i64,
            text_chars: text.chars().count() as i64,
            error,
        });
        if !text.trim().is_empty() {
            texts.push((&part.filename, text));
        }
    }

    let sources: Vec<Source<'_>> = texts.iter().map(|(n, t)| Source { name: n, text: t }).collect();
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
    }
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
    use super::*;

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
