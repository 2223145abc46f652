//! Stage 1: a message's bytes, parsed once. mail-parser reads the whole message a single time
//! and everything later stages look at is taken from that one reading, owned, so it can be
//! kept while the raw bytes go to the store:
//! - the Message-ID to store with the bytes;
//! - the header facts ([`Header`]) when the bytes are an Internet message at all, else why not
//!   (the message is then quarantined with that [`ParseError`]);
//! - the header fields the classifier may read ([`Headers`]: names, unfolded values, To/Cc);
//! - the bodies and attachments ([`crate::content::Content`]).
//!
//! Total: any bytes give a [`Parsed`]. No I/O.

use std::collections::HashSet;
use std::sync::LazyLock;

use liaisond_model::{Summary, normalize_address};
use mail_parser::{Address, HeaderValue, Message, MessageParser};
use regex::Regex;

use crate::content::{self, Content};

/// Why bytes are not a message liaisond can process. The message is quarantined with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("parse: {0}")]
    Parse(String),
}

/// The header facts of a message that parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// The first `From:` mailbox as `Name <address>` (or the bare address).
    pub from: Option<String>,
    /// The `Date:` header as RFC 3339, when it parses; the sender's clock, informative only.
    pub date: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
}

impl Header {
    /// What listings show of it.
    pub fn summary(&self) -> Summary {
        Summary { subject: self.subject.clone(), from: self.from.clone(), date: self.date.clone() }
    }
}

/// One message, parsed once.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The Message-ID as the header gives it, trimmed; `None` when missing or empty. Stored
    /// with the bytes whatever else is wrong with them.
    pub message_id: Option<String>,
    /// The header facts, or why these bytes are not a message liaisond can process.
    pub header: Result<Header, ParseError>,
    pub headers: Headers,
    pub content: Content,
}

impl Parsed {
    /// Parses `raw` (mail-parser's one pass over it).
    pub fn new(raw: &[u8]) -> Parsed {
        let message = MessageParser::default().parse(raw);
        let message_id =
            message.as_ref().and_then(|m| m.message_id()).map(str::trim).filter(|m| !m.is_empty()).map(str::to_string);
        let header = header(raw, message.as_ref());
        let headers = Headers::of(message.as_ref());
        // Last: it takes the attachments' bytes out of the message.
        let content = content::of(message);
        Parsed { message_id, header, headers, content }
    }
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

/// The header facts. Fails on input that is not an Internet message at all: empty, or with no
/// recognisable header field (mail-parser is lenient and returns *something* for any bytes, so
/// this stage decides what "cannot make sense of" means).
fn header(raw: &[u8], message: Option<&Message<'_>>) -> Result<Header, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Parse("the message is empty".into()));
    }
    // No top-level header field at all: what mail-parser's header-only pass calls no message.
    let message = message
        .filter(|m| m.parts.first().is_some_and(|p| !p.headers.is_empty()))
        .ok_or_else(|| ParseError::Parse("mail-parser found no message in these bytes".into()))?;
    if !starts_with_header_field(raw) {
        return Err(ParseError::Parse(
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
        return Err(ParseError::Parse(
            "none of From, Sender, Date, Message-ID, Subject or To is present; this is not an e-mail message".into(),
        ));
    }
    Ok(Header {
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

/// The header section, names in lower case, values unfolded, in order (top first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
    /// The To and Cc addresses as mail-parser reads them (groups opened, display names and
    /// comments left out), normalised, each once.
    recipients: Vec<String>,
    /// How many mailboxes the `From:` field names (mail-parser reads the last such field).
    from_mailboxes: usize,
}

impl Headers {
    /// The header section of a parsed message (empty when mail-parser found none).
    fn of(message: Option<&Message<'_>>) -> Headers {
        let Some(message) = message else {
            return Headers::default();
        };
        let fields = message
            .headers_raw()
            .map(|(name, value)| {
                let unfolded: String =
                    value.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
                (name.to_ascii_lowercase(), unfolded)
            })
            .collect();
        // The set beside the list keeps each address once in one step: a scan of the list for
        // each address made a To field of N addresses cost N² (issue 13).
        let mut recipients: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for list in [message.to(), message.cc()].into_iter().flatten() {
            for a in list.iter().filter_map(|a| a.address().and_then(normalize_address)) {
                if seen.insert(a.clone()) {
                    recipients.push(a);
                }
            }
        }
        let from_mailboxes = match message.from() {
            Some(Address::List(list)) => list.len(),
            Some(Address::Group(groups)) => groups.iter().map(|g| g.addresses.len()).sum(),
            None => 0,
        };
        Headers { fields, recipients, from_mailboxes }
    }

    /// Whether the message names exactly one author: one `From:` field holding one mailbox.
    /// Only then can a sender be verified (RFC 7489 §6.6.1: with several, which one DMARC
    /// checked is unknown; mail-parser reads the last field, a receiver's DMARC may read the
    /// first).
    pub fn single_author(&self) -> bool {
        self.all("from").count() == 1 && self.from_mailboxes == 1
    }

    /// Every To and Cc address, normalised, each once.
    pub fn recipients(&self) -> &[String] {
        &self.recipients
    }

    /// Every field as (lower-case name, unfolded value), top first.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The first field with this (lower-case) name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every field with this name, top first.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Message-IDs in every field with this name, without angle brackets. A field with no
    /// bracketed ID gives its bare `local@domain` words, as mail-parser (and so the stored
    /// Message-ID) reads them: some clients omit the brackets.
    pub fn message_ids(&self, name: &str) -> Vec<String> {
        self.all(name)
            .flat_map(|v| {
                let bracketed: Vec<String> = MSG_ID.captures_iter(v).map(|c| c[1].to_string()).collect();
                if bracketed.is_empty() {
                    v.split_whitespace().filter(|w| w.contains('@')).map(str::to_string).collect()
                } else {
                    bracketed
                }
            })
            .collect()
    }
}

static MSG_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<([^<>\s]+)>").expect("static regex"));

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::within;

    #[test]
    fn a_to_field_of_many_addresses_is_parsed_in_linear_time() {
        // Issue 13: each recipient was looked for among those before it, N² for N addresses.
        // These 100,000 (2.2 MB) took 40 s to parse in a debug build; now 0.3 s (mostly
        // mail-parser's). The bound leaves a loaded machine room and fails the old code.
        let to = (0..100_000).map(|n| format!("r{n}@example.org")).collect::<Vec<_>>().join(", ");
        let raw = format!("From: a@example.org\r\nTo: {to}, r7@example.org\r\nSubject: s\r\n\r\nbody\r\n");
        let headers = within(Duration::from_secs(5), "parse", move || Parsed::new(raw.as_bytes()).headers);
        assert_eq!(headers.recipients().len(), 100_000);
        assert_eq!(headers.recipients()[7], "r7@example.org");
    }

    #[test]
    fn bytes_with_no_top_level_header_are_no_message() {
        // Regression (found in review of the one-pass parse): the full parse returns a message
        // for these where the header-only pass used before did not, and the quarantine reason
        // changed. It must stay the one recorded before.
        for raw in [&b"\r\nFrom: a@example.org\r\nSubject: x\r\n\r\nbody\r\n"[..], b"text\n\nbody\n"] {
            let e = Parsed::new(raw).header.expect_err("not a message");
            assert_eq!(e.to_string(), "parse: mail-parser found no message in these bytes");
        }
    }

    #[test]
    fn a_plain_message_parses() {
        let raw = b"From: Alice Example <alice@example.org>\r\nTo: liaison@example.org\r\nSubject: LS on DetNet\r\n\
Message-ID: <abc@example.org>\r\nIn-Reply-To: <x@y>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nHello\r\n";
        let p = Parsed::new(raw).header.expect("parses");
        assert_eq!(p.message_id.as_deref(), Some("abc@example.org"));
        assert_eq!(p.subject.as_deref(), Some("LS on DetNet"));
        assert_eq!(p.from.as_deref(), Some("Alice Example <alice@example.org>"));
        assert_eq!(p.date.as_deref(), Some("2026-11-23T10:00:00+01:00"));
        assert_eq!(p.in_reply_to, vec!["x@y".to_string()]);
        assert_eq!(Parsed::new(raw).message_id.as_deref(), Some("abc@example.org"));
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
            match Parsed::new(raw).header {
                Err(error) => assert!(error.to_string().starts_with("parse: "), "{error}"),
                Ok(other) => panic!("{raw:?} should be quarantined, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_message_without_from_still_parses() {
        // R27: no From is not a parse failure; later stages route it to the coordinators.
        let p = Parsed::new(b"Subject: hi\r\n\r\nbody").header.expect("parses");
        assert_eq!(p.from, None);
    }

    #[test]
    fn missing_or_empty_message_id() {
        assert_eq!(Parsed::new(b"Subject: x\r\n\r\n").message_id, None);
        assert_eq!(Parsed::new(b"Message-ID: \r\nSubject: x\r\n\r\n").message_id, None);
    }

    #[test]
    fn header_section_of_oversized_messages() {
        assert_eq!(header_section(b"A: 1\r\nB: 2\r\n\r\nbody", 1000), b"A: 1\r\nB: 2\r\n\r\n");
        assert_eq!(header_section(b"A: 1\n\nbody", 1000), b"A: 1\n\n");
        assert_eq!(header_section(b"A: 1\r\nno end", 3), b"A: ");
    }
}
