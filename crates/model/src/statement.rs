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
