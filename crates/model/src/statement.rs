//! A liaison statement as read from a message: its fields, its purpose, and the record the
//! store keeps of the reading (attachments, fields, warnings).

use serde::{Deserialize, Serialize};

/// One attachment as read (see [`Reading`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentRecord {
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub kind: String,
    /// Forwarded messages deep (0: the message itself).
    pub depth: i64,
    pub text_chars: i64,
    pub error: Option<String>,
}

/// What was read from one message: its attachments, in order, and the statement's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    pub attachments: Vec<AttachmentRecord>,
    pub title: Option<String>,
    pub purpose: Option<String>,
    pub deadline: Option<String>,
    pub from_org: Option<String>,
    /// Every field, as JSON (the `statement` object of `liaisond parse`).
    pub statement_json: String,
    /// A JSON array of strings.
    pub warnings_json: String,
}

/// What the sender asks of the IETF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Information,
    Comment,
    Action,
    Response,
}

impl Purpose {
    /// As recorded (`statements.purpose`, `liaisond parse`): `action`, `comment`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Information => "information",
            Purpose::Comment => "comment",
            Purpose::Action => "action",
            Purpose::Response => "response",
        }
    }

    /// The purpose recorded as `name` (see [`as_str`](Self::as_str)).
    pub fn from_stored(name: &str) -> Option<Purpose> {
        [Purpose::Information, Purpose::Comment, Purpose::Action, Purpose::Response]
            .into_iter()
            .find(|p| p.as_str() == name)
    }

    /// As RFC 4053 writes it: `For Action`, `In Response`.
    pub fn label(self) -> &'static str {
        match self {
            Purpose::Information => "For Information",
            Purpose::Comment => "For Comment",
            Purpose::Action => "For Action",
            Purpose::Response => "In Response",
        }
    }
}

/// The fields of one statement; `None`/empty where the statement does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Statement {
    pub title: Option<String>,
    pub purpose: Option<Purpose>,
    /// `YYYY-MM-DD`.
    pub deadline: Option<String>,
    pub from_org: Option<String>,
    pub from_groups: Vec<String>,
    pub to_groups: Vec<String>,
    pub from_contacts: Vec<String>,
    /// Where a reply must go (From-Liaison-Contact, Response Contact, "Send any reply LS to").
    pub reply_to: Vec<String>,
    pub technical_contacts: Vec<String>,
    pub other_identifiers: Vec<String>,
    /// The statement this one responds to, when it says so.
    pub related: Option<String>,
    pub body: String,
}

/// The most of a title that is stored and shown (a real one is a line or two).
pub const MAX_TITLE_BYTES: usize = 1024;
/// The most of any other one-line field, and of each item of a list, that is stored.
pub const MAX_FIELD_BYTES: usize = 1024;
/// The most items of a list field (groups, contacts, identifiers) that are stored.
pub const MAX_LIST_ITEMS: usize = 64;
/// The most of the text read (`body`) that is stored: enough for every statement seen, and
/// it bounds what one hostile message adds to the database besides its raw bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn clip_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Statement {
    /// A copy within the stored limits ([`MAX_TITLE_BYTES`] and the others): what is written
    /// to the database, so that a 60 MB title is not stored three times over.
    pub fn clipped(&self) -> Statement {
        let one = |v: &Option<String>, max: usize| v.as_deref().map(|s| clip_bytes(s, max).to_string());
        let list =
            |v: &[String]| v.iter().take(MAX_LIST_ITEMS).map(|s| clip_bytes(s, MAX_FIELD_BYTES).to_string()).collect();
        Statement {
            title: one(&self.title, MAX_TITLE_BYTES),
            purpose: self.purpose,
            deadline: one(&self.deadline, MAX_FIELD_BYTES),
            from_org: one(&self.from_org, MAX_FIELD_BYTES),
            from_groups: list(&self.from_groups),
            to_groups: list(&self.to_groups),
            from_contacts: list(&self.from_contacts),
            reply_to: list(&self.reply_to),
            technical_contacts: list(&self.technical_contacts),
            other_identifiers: list(&self.other_identifiers),
            related: one(&self.related, MAX_FIELD_BYTES),
            body: clip_bytes(&self.body, MAX_BODY_BYTES).to_string(),
        }
    }
}

#[cfg(test)]
mod clip_tests {
    use super::*;

    #[test]
    fn stored_fields_are_clipped_at_character_boundaries() {
        assert_eq!(clip_bytes("héllo", 2), "h", "not inside the two bytes of é");
        assert_eq!(clip_bytes("héllo", 3), "hé");
        assert_eq!(clip_bytes("abc", 10), "abc");
        let long = "é".repeat(1_000_000);
        let st = Statement {
            title: Some(long.clone()),
            to_groups: vec![long.clone(); 1000],
            body: long.clone(),
            ..Statement::default()
        }
        .clipped();
        assert!(st.title.as_ref().is_some_and(|t| t.len() <= MAX_TITLE_BYTES && t.len() >= MAX_TITLE_BYTES - 1));
        assert_eq!(st.to_groups.len(), MAX_LIST_ITEMS);
        assert!(st.to_groups.iter().all(|g| g.len() <= MAX_FIELD_BYTES));
        assert!(st.body.len() <= MAX_BODY_BYTES);
    }
}
