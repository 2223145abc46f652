//! The pure core: raw message bytes in, a decision out.
//!
//! **Architecture invariant: nothing here does I/O** (no database, network, filesystem, clock
//! or environment). Every stage is a function over data, so the stages are tested against the
//! `.eml` corpus in `fixtures/` without any server, and can be replayed on stored raw bytes
//! (`liaisond route --dry-run` does for routing).
//!
//! The stages, in order:
//! 1. **parse** (here): mail-parser reads the header section into a [`Parsed`] view; a message
//!    it cannot make sense of is quarantined. Bodies and attachments are not decoded here (the
//!    benchmark showed base64 decoding of every attachment to be the largest CPU cost of
//!    ingesting); the next stage decodes what it reads;
//! 2. understand the statement (fields from the body and attachments);
//! 3. classify (statement, follow-up, duplicate, auto-reply, bounce, list, own mail, other);
//! 4. match and route (relationships data);
//! 5. decide what to send (acknowledgement, notification).
//!
//! Stages 2–4 live in `understand`, `classify` and `route` (pure too); `ingest` runs stage 2
//! (reading, with attachments in the extraction workers) after this one and stages 3–4 when it
//! records the outcome, against the store's history, in the same transaction as stage 5
//! (`respond`, which plans the mail into the outbox). A stage that fails returns a
//! [`StageError`], which makes the message `quarantined` with that error; the runner then
//! goes on with the next message.

use mail_parser::{Address, HeaderValue, MessageParser};

use crate::store::{Outcome, Reading, Summary};

/// A stage that could not handle a message. The message is quarantined with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    #[error("parse: {0}")]
    Parse(String),
}

/// What the parse stage extracts from the header section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// The first `From:` mailbox as `Name <address>` (or the bare address).
    pub from: Option<String>,
    /// The `Date:` header as RFC 3339, when it parses; the sender's clock, informative only.
    pub date: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
}

/// The pipeline's result for one message.
#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: Outcome,
    pub summary: Summary,
    /// What was read from the message (its attachments and fields), added by the reading
    /// step in `ingest` for a message that parsed.
    pub reading: Option<Reading>,
    /// The message as read, to be classified and routed against the store's history when the
    /// outcome is recorded.
    pub to_judge: Option<Box<crate::analyse::ToJudge>>,
}

/// Runs stage 1 (parse) on one message: its summary, or why it is quarantined.
pub fn process(raw: &[u8]) -> Decision {
    match parse(raw) {
        Ok(parsed) => Decision {
            outcome: Outcome::Processed,
            summary: Summary { subject: parsed.subject.clone(), from: parsed.from.clone(), date: parsed.date.clone() },
            reading: None,
            to_judge: None,
        },
        Err(e) => Decision {
            outcome: Outcome::Quarantined { error: e.to_string() },
            summary: Summary::default(),
            reading: None,
            to_judge: None,
        },
    }
}

/// Only the Message-ID, from the header section alone (cheap: used before storing, to record
/// it next to the raw bytes). `None` when missing or empty.
pub fn message_id(raw: &[u8]) -> Option<String> {
    let headers = MessageParser::default().parse_headers(raw)?;
    headers.message_id().map(str::trim).filter(|m| !m.is_empty()).map(str::to_string)
}

/// The header section of a message: everything up to and including the first empty line, or
/// the first `limit` bytes when there is none (for oversized messages, whose body is not kept).
pub fn header_section(raw: &[u8], limit: usize) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(raw.len());
    &raw[..end.min(limit)]
}

/// Stage 1: parse. Fails on input that is not an Internet message at all: empty, or with no
/// recognisable header field (mail-parser is lenient and returns *something* for any bytes,
/// so this stage decides what "cannot make sense of" means).
pub fn parse(raw: &[u8]) -> Result<Parsed, StageError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(StageError::Parse("the message is empty".into()));
    }
    let message = MessageParser::default()
        .parse_headers(raw)
        .ok_or_else(|| StageError::Parse("mail-parser found no message in these bytes".into()))?;
    if !starts_with_header_field(raw) {
        return Err(StageError::Parse(
            "no header section: the first line is not a header field (RFC 5322 §2.2)".into(),
        ));
    }
    let known_fields = [
        message.from().is_some(),
        message.sender().is_some(),
        message.date().is_some(),
        message.message_id().is_some(),
        message.subject().is_some(),
        message.to().is_some(),
    ];
    if !known_fields.iter().any(|k| *k) {
        return Err(StageError::Parse(
            "none of From, Sender, Date, Message-ID, Subject or To is present; this is not an e-mail message".into(),
        ));
    }
    Ok(Parsed {
        message_id: message.message_id().map(str::to_string).filter(|m| !m.trim().is_empty()),
        subject: message.subject().map(|s| s.trim().to_string()),
        from: message.from().and_then(first_mailbox),
        date: message.date().map(|d| d.to_rfc3339()),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
    })
}

/// RFC 5322 §2.2: a header field is a name of printable ASCII other than `:`, then `:`.
/// An mbox `From ` line in front is tolerated.
fn starts_with_header_field(raw: &[u8]) -> bool {
    let raw = if raw.starts_with(b"From ") {
        match raw.iter().position(|b| *b == b'\n') {
            Some(p) => &raw[p + 1..],
            None => return false,
        }
    } else {
        raw
    };
    let name_len = raw.iter().take_while(|b| (33..=126).contains(*b) && **b != b':').count();
    name_len > 0 && raw.get(name_len) == Some(&b':')
}

fn first_mailbox(a: &Address<'_>) -> Option<String> {
    let first = a.first()?;
    match (first.name(), first.address()) {
        (Some(n), Some(addr)) if !n.trim().is_empty() => Some(format!("{} <{addr}>", n.trim())),
        (_, Some(addr)) => Some(addr.to_string()),
        (Some(n), None) => Some(n.to_string()),
        (None, None) => None,
    }
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_message_parses() {
        let raw = b"From: Alice Example <alice@example.org>\r\nTo: liaison@example.org\r\nSubject: LS on DetNet\r\n\
Message-ID: <abc@example.org>\r\nIn-Reply-To: <x@y>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nHello\r\n";
        let p = parse(raw).expect("parses");
        assert_eq!(p.message_id.as_deref(), Some("abc@example.org"));
        assert_eq!(p.subject.as_deref(), Some("LS on DetNet"));
        assert_eq!(p.from.as_deref(), Some("Alice Example <alice@example.org>"));
        assert_eq!(p.date.as_deref(), Some("2026-11-23T10:00:00+01:00"));
        assert_eq!(p.in_reply_to, vec!["x@y".to_string()]);
        assert_eq!(message_id(raw).as_deref(), Some("abc@example.org"));
        assert_eq!(process(raw).outcome, Outcome::Processed);
    }

    #[test]
    fn nonsense_is_quarantined_with_a_reason() {
        for raw in [
            &b""[..],
            b"   \r\n",
            b"\x89PNG\r\n\x1a\n\x00\x00binary",
            b"just some text\nwithout headers\n",
            b"X-Custom: 1\r\n\r\nbody",
        ] {
            match process(raw).outcome {
                Outcome::Quarantined { error } => assert!(error.starts_with("parse: "), "{error}"),
                other => panic!("{raw:?} should be quarantined, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_message_without_from_still_parses() {
        // R27: no From is not a parse failure; later stages route it to the coordinators.
        let p = parse(b"Subject: hi\r\n\r\nbody").expect("parses");
        assert_eq!(p.from, None);
    }

    #[test]
    fn missing_or_empty_message_id() {
        assert_eq!(message_id(b"Subject: x\r\n\r\n"), None);
        assert_eq!(message_id(b"Message-ID: \r\nSubject: x\r\n\r\n"), None);
    }

    #[test]
    fn header_section_of_oversized_messages() {
        assert_eq!(header_section(b"A: 1\r\nB: 2\r\n\r\nbody", 1000), b"A: 1\r\nB: 2\r\n\r\n");
        assert_eq!(header_section(b"A: 1\n\nbody", 1000), b"A: 1\n\n");
        assert_eq!(header_section(b"A: 1\r\nno end", 3), b"A: ");
    }
}
