//! The mail liaisond sends: drafts with their final Message-ID, what the planner decided about
//! one recorded message, and what the store tells the planner inside the recording transaction.

use serde::{Deserialize, Serialize};

use crate::address::normalize_address;
use crate::verdict::Verdict;

/// What the store tells the planner about a message it is recording, inside that transaction.
pub struct OutgoingContext<'a> {
    /// How the message was judged.
    pub verdict: &'a Verdict,
    /// The statement it is or belongs to.
    pub tracking_id: Option<&'a str>,
    /// When the message arrived: its IMAP INTERNALDATE, else when it was stored.
    pub received: jiff::Timestamp,
    pub size: u64,
    /// Earlier acknowledgements to an address (and in total).
    pub counts: &'a dyn Fn(&str) -> AckCounts,
    /// What the message's commands did (a reply with commands is answered, not notified).
    pub commands: &'a [crate::verdict::CommandResult],
}

/// The kinds of mail liaisond sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftKind {
    Ack,
    Notification,
    /// Acknowledgements were paused (the global limit was reached).
    Alert,
    /// A statement's deadline is near or past.
    Reminder,
    /// The coordinators' periodic summary.
    Digest,
    /// The answer to a reply that carried commands: what they changed, or why not.
    Confirmation,
    /// The yearly check-in request to a liaison manager.
    CheckIn,
}

impl DraftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DraftKind::Ack => "ack",
            DraftKind::Notification => "notification",
            DraftKind::Alert => "alert",
            DraftKind::Reminder => "reminder",
            DraftKind::Digest => "digest",
            DraftKind::Confirmation => "confirmation",
            DraftKind::CheckIn => "check_in",
        }
    }
}

/// One message to send, fixed when the message it is about is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub kind: DraftKind,
    /// Without angle brackets: `liaisond.ack.LS-2026-0001.3f9c…@iab.org`.
    pub message_id: String,
    /// RFC 3339, UTC.
    pub date: String,
    /// `Name <address>` or `address`.
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reply_to: Vec<String>,
    pub subject: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// RFC 3834 §5: `auto-replied` for the acknowledgement, `auto-generated` for the rest.
    pub auto_submitted: String,
    pub body: String,
    /// Attach the stored original message (the notification).
    pub attach_original: bool,
    /// Send with the null reverse-path `MAIL FROM:<>` (RFC 3834 §4: the acknowledgement, so
    /// that nothing answers it automatically).
    pub null_sender: bool,
    /// An acknowledgement in its receipt form: to an unverified sender's envelope address,
    /// carrying no text from the message. Counted apart by the hourly limit.
    #[serde(default)]
    pub receipt: bool,
    /// For a notification: the sender of the message it is about, as an
    /// [`address_key`](crate::address_key) (the per-sender notification limit counts by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about_sender: Option<String>,
    /// The statement it is about (`X-Liaison-Tracking-ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_id: Option<String>,
}

impl Draft {
    /// Every envelope recipient, once, in order.
    pub fn recipients(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for a in self.to.iter().chain(&self.cc) {
            if let Some(n) = normalize_address(a)
                && !all.contains(&n)
            {
                all.push(n);
            }
        }
        all
    }
}

/// How many acknowledgements went out recently (counted by the store).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AckCounts {
    /// To the address this acknowledgement would go to, in the last 24 hours, counted by
    /// [`address_key`](crate::address_key) (case and `+tag` ignored).
    pub to_address_last_day: u32,
    /// To any address in that address's domain, in the last 24 hours.
    pub to_domain_last_day: u32,
    /// Receipts (acknowledgements to unverified senders) to anyone, in the last hour.
    pub receipts_last_hour: u32,
    /// Notifications about mail from this address (by key), in the last 24 hours.
    pub notifications_about_last_day: u32,
    /// Whether the coordinators were already told, in the last hour, that acknowledgements
    /// are paused.
    pub alert_last_hour: bool,
}

/// What to send, and what was decided about the acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub drafts: Vec<Draft>,
    /// `Ok(address)`: acknowledged to it; `Err(reason)`: why not.
    pub ack: Result<String, String>,
    /// Why no notification was sent, when a message of a notified class got none.
    pub no_notification: Option<String>,
}
