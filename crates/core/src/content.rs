//! The readable content of a message: its body texts and its attachments (decoded bytes, safe
//! file name, size, SHA-256, sniffed kind), with forwarded messages (`message/rfc822`, as
//! liaison managers forward what they received) opened recursively up to a depth limit.
//!
//! **Architecture invariant: pure, no I/O.** Reading the attachments' text is [`crate::read`]'s
//! job (through the binary's extraction workers); this module only finds and names them, from
//! the one mail-parser pass of [`crate::parse`].

use liaisond_extract::{self as extract, Format};
use liaisond_model::sha256_hex;
use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

/// Forwarded messages inside forwarded messages, at most this deep (R30).
pub const MAX_FORWARD_DEPTH: usize = 10;
/// At most this many attachments are kept from one message (a real statement has up to 17).
pub const MAX_ATTACHMENTS: usize = 100;
/// Longest safe file name kept.
const MAX_FILENAME_CHARS: usize = 200;
/// The most of one body text kept: more than reading ever uses of one text
/// (`read::MAX_TEXT_BYTES_EACH`), so that `read` still sees the text was longer and says so.
/// Copying a 60 MB body whole (twice, with the line endings) cost 120 MB of memory for
/// nothing (issue 13).
pub const MAX_BODY_TEXT_BYTES: usize = 1024 * 1024;

/// One body text, in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyText {
    pub text: String,
    /// How many forwarded messages deep it sits (0: the message itself).
    pub depth: usize,
}

/// One attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentPart {
    /// Safe to use as a file name: no directories, no `..`, no control characters.
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
    /// What it was sniffed as, from its bytes, name and declared type.
    pub format: Format,
    pub depth: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content {
    pub bodies: Vec<BodyText>,
    pub attachments: Vec<AttachmentPart>,
    pub warnings: Vec<String>,
}

/// The bodies and attachments of a parsed message (`None`: mail-parser found none). The
/// attachments' bytes are moved out of the message, not copied: a 20 MiB attachment is then
/// in memory once, not twice.
pub(crate) fn of(message: Option<Message<'_>>) -> Content {
    let mut out = Content::default();
    match message {
        Some(mut message) => walk(&mut message, 0, &mut out),
        None => out.warnings.push("the message could not be parsed; no content read".into()),
    }
    out
}

/// A part's decoded bytes, taken out of the message (an encoded part is owned already; only
/// an unencoded one is copied from the raw bytes).
fn take_contents(part: &mut MessagePart<'_>) -> Vec<u8> {
    match std::mem::take(&mut part.body) {
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.into_owned(),
        PartType::Text(text) | PartType::Html(text) => text.into_owned().into_bytes(),
        PartType::Message(inner) => inner.raw_message.into_owned(),
        PartType::Multipart(_) => Vec::new(),
    }
}

fn walk(message: &mut Message<'_>, depth: usize, out: &mut Content) {
    for part in message.text_bodies() {
        let contents = part.text_contents().unwrap_or_default();
        // The same cap for a body in HTML as in plain text.
        let text = if part.is_text_html() {
            liaisond_model::clip_bytes(&extract::html::to_text(contents, MAX_BODY_TEXT_BYTES), MAX_BODY_TEXT_BYTES)
                .to_string()
        } else {
            liaisond_model::clip_bytes(contents, MAX_BODY_TEXT_BYTES).to_string()
        };
        if !text.trim().is_empty() {
            // Mail line endings (CRLF) are not part of the text.
            out.bodies.push(BodyText { text: text.replace("\r\n", "\n"), depth });
        }
    }
    let ids = message.attachments.clone();
    for id in ids {
        let Some(part) = message.parts.get_mut(id as usize) else { continue };
        if let PartType::Message(inner) = &mut part.body {
            if depth + 1 > MAX_FORWARD_DEPTH {
                out.warnings
                    .push(format!("forwarded messages nested deeper than {MAX_FORWARD_DEPTH}; not read further"));
                continue;
            }
            out.bodies.push(BodyText { text: forwarded_header(inner), depth: depth + 1 });
            walk(inner, depth + 1, out);
            continue;
        }
        if out.attachments.len() >= MAX_ATTACHMENTS {
            out.warnings.push(format!("more than {MAX_ATTACHMENTS} attachments; the rest are not read"));
            break;
        }
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let original = part.attachment_name().map(str::to_string);
        // Numbered by position among all the attachments found so far (1, 2, 3...).
        let filename = safe_filename(original.as_deref(), out.attachments.len() + 1);
        let bytes = take_contents(part);
        let format = extract::sniff(original.as_deref(), &content_type, &bytes);
        out.attachments.push(AttachmentPart {
            filename,
            content_type,
            sha256: sha256_hex(&bytes),
            bytes,
            format,
            depth,
        });
    }
}

/// The lines a mail client shows above a forwarded message.
fn forwarded_header(m: &Message<'_>) -> String {
    let from = m.from().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or("?");
    let subject = m.subject().unwrap_or("");
    format!("---------- Forwarded message ----------\nFrom: {from}\nSubject: {subject}\n")
}

/// A file name that is safe to show and to write (R26): the last path component only, no
/// control characters, no leading dots, not empty, not too long.
pub fn safe_filename(original: Option<&str>, index: usize) -> String {
    let name = original.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') { '_' } else { c })
        .take(MAX_FILENAME_CHARS)
        .collect();
    // Dots and spaces together: trimming one and then the other leaves `.` of `. .`.
    let cleaned = cleaned.trim_start_matches(|c: char| c == '.' || c.is_whitespace()).trim_end().to_string();
    if cleaned.is_empty() { format!("attachment-{index}") } else { cleaned }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Parsed;

    fn content(raw: &[u8]) -> Content {
        Parsed::new(raw).content
    }

    #[test]
    fn a_long_body_text_is_kept_only_as_far_as_reading_can_use_it() {
        let mut raw = b"From: a@x.org\r\nSubject: long\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'x', 3 * MAX_BODY_TEXT_BYTES));
        let c = content(&raw);
        assert_eq!(c.bodies[0].text.len(), MAX_BODY_TEXT_BYTES);
        // In HTML too (it was capped at the extraction limit, 4 MiB).
        let mut raw = b"From: a@x.org\r\nSubject: long\r\nContent-Type: text/html\r\n\r\n<p>".to_vec();
        raw.extend(std::iter::repeat_n(b'x', 3 * MAX_BODY_TEXT_BYTES));
        let c = content(&raw);
        assert_eq!(c.bodies[0].text.len(), MAX_BODY_TEXT_BYTES);
    }

    #[test]
    fn safe_names() {
        assert_eq!(safe_filename(Some("../../etc/passwd"), 1), "passwd");
        assert_eq!(safe_filename(Some("C:\\Users\\x\\LS 42.docx"), 1), "LS 42.docx");
        assert_eq!(safe_filename(Some(".."), 3), "attachment-3");
        assert_eq!(safe_filename(Some("a\u{0}b\nc.pdf"), 1), "abc.pdf");
        assert_eq!(safe_filename(Some(".hidden"), 1), "hidden");
        assert_eq!(safe_filename(None, 2), "attachment-2");
        assert_eq!(safe_filename(Some(&"x".repeat(500)), 1).len(), 200);
    }

    #[test]
    fn a_name_of_dots_and_spaces_is_not_a_directory() {
        // Regression (found by tests/fuzz.rs): the dots were trimmed before the spaces, so
        // `. .` left `.` and `. ..` left `..`, the directory and its parent.
        assert_eq!(safe_filename(Some(". ."), 1), "attachment-1");
        assert_eq!(safe_filename(Some(". .."), 2), "attachment-2");
        assert_eq!(safe_filename(Some(" . .profile"), 3), "profile");
        assert_eq!(safe_filename(Some(".\t. x ."), 4), "x .");
        let raw = include_bytes!("../../../fixtures/hostile/dot-dot-filename.eml");
        let names: Vec<String> = content(raw).attachments.into_iter().map(|a| a.filename).collect();
        assert_eq!(names, ["attachment-1", "attachment-2", "profile"]);
    }

    #[test]
    fn bodies_attachments_and_forwarded_messages() {
        let raw = b"From: m@ietf.org\r\nSubject: Fwd: LS\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nForwarding this.\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: sg13@itu.int\r\nSubject: LS on slicing\r\nContent-Type: multipart/mixed; boundary=\"c\"\r\n\r\n\
--c\r\nContent-Type: text/html\r\n\r\n<p>Dear IETF,</p><p>see attached</p>\r\n\
--c\r\nContent-Type: application/octet-stream; name=\"../LS.txt\"\r\nContent-Disposition: attachment; filename=\"../LS.txt\"\r\n\r\nTitle: LS on slicing\r\n\
--c--\r\n\
--b--\r\n";
        let c = content(raw);
        let texts: Vec<&str> = c.bodies.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(texts[0], "Forwarding this.");
        assert!(texts[1].contains("From: sg13@itu.int"), "{texts:?}");
        assert_eq!(texts[2], "Dear IETF,\nsee attached\n");
        assert_eq!(c.attachments.len(), 1);
        assert_eq!(c.attachments[0].filename, "LS.txt");
        assert_eq!(c.attachments[0].format, Format::Text);
        assert_eq!(c.attachments[0].depth, 1);
    }

    #[test]
    fn unnamed_attachments_are_numbered_in_order() {
        // Regression: the number counted this message's earlier parts twice (1, 3, 5).
        let part = "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment\r\n\r\nx\r\n";
        let raw = format!(
            "Subject: three\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n{part}{part}{part}--b--\r\n"
        );
        let names: Vec<String> = content(raw.as_bytes()).attachments.into_iter().map(|a| a.filename).collect();
        assert_eq!(names, ["attachment-1", "attachment-2", "attachment-3"]);
    }
}
