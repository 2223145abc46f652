//! What liaisond sends about a message it recorded: the notification to the people it was
//! routed to, the acknowledgement to the sender (only when every check allows it), and, when
//! acknowledgements had to be paused, one alert to the coordinators. Each becomes a [`Draft`]
//! with its final Message-ID, written to the outbox in the transaction that records the
//! message (`store`), and turned into bytes by [`compose`] when it is sent.
//!
//! Pure: decisions from the message, its verdict, the policy, the templates and the counts
//! the store gives; no I/O. The time and the random part of Message-IDs are the caller's
//! (`now`, `nonce`), and so is a multipart message's boundary.

use std::path::PathBuf;
use std::time::Duration;

use liaisond_model::{
    AckCounts, Class, CommandResult, ConfigError, Draft, DraftKind, Plan, Purpose, Verdict, address_domain,
    address_key, normalize_address, printable, printable_lines,
};
use regex::RegexSet;

use crate::classify::{LOOP_HEADER, MESSAGE_ID_PREFIX, TRACKING_HEADER};
use crate::parse::Headers;
use crate::read::Analysis;
use crate::relationships::Relationships;
use crate::template::{Template, Values};

/// The acknowledgement rules (R36–R45 in the reliability catalogue; issue 13).
///
/// RFC 3834 §4: a response goes to the envelope sender, never to an address the content
/// names. A **verified** sender (see `route::verify_sender`) gets the full acknowledgement at
/// its From address. An unverified one gets at most a **receipt** that carries no text from
/// the message, at the envelope sender (Return-Path), and only when that is in the From
/// domain: otherwise a forged From, or a forged envelope, would make us write to a victim.
#[derive(Debug, Clone)]
pub struct AckPolicy {
    pub enabled: bool,
    /// Send receipts to unverified senders at all.
    pub unverified_receipts: bool,
    /// At most this many acknowledgements to one address (case and `+tag` ignored) in 24 hours.
    pub per_sender_per_day: u32,
    /// At most this many acknowledgements to one domain in 24 hours.
    pub per_domain_per_day: u32,
    /// At most this many receipts to unverified senders in one hour: beyond it they are
    /// paused (and the coordinators are told once an hour) until the rate falls again.
    /// Verified senders are never paused.
    pub per_hour: u32,
    /// No acknowledgement for mail received longer ago than this (a backlog, an import).
    pub max_age: Duration,
    /// Addresses never acknowledged (robots, lists, no-reply).
    pub never_to: NeverTo,
}

impl Default for AckPolicy {
    fn default() -> AckPolicy {
        AckPolicy {
            enabled: true,
            unverified_receipts: true,
            per_sender_per_day: 3,
            per_domain_per_day: 20,
            per_hour: 30,
            max_age: Duration::from_secs(2 * 24 * 3600),
            never_to: NeverTo::default(),
        }
    }
}

/// The addresses never acknowledged: the patterns as written, compiled once (case-insensitive).
#[derive(Debug, Clone)]
pub struct NeverTo {
    patterns: Vec<String>,
    set: RegexSet,
}

/// A [`NeverTo`] pattern that does not compile.
#[derive(Debug, Clone, thiserror::Error)]
#[error("not a valid regular expression: {error}")]
pub struct BadPattern {
    /// Which pattern (`None`: they compile one by one, but not together).
    pub index: Option<usize>,
    pub error: regex::Error,
}

/// Each pattern, and all of them together, may compile to at most this many bytes.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl NeverTo {
    pub fn new(patterns: Vec<String>) -> Result<NeverTo, BadPattern> {
        for (i, p) in patterns.iter().enumerate() {
            regex::RegexBuilder::new(p)
                .case_insensitive(true)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|error| BadPattern { index: Some(i), error })?;
        }
        let set = regex::RegexSetBuilder::new(&patterns)
            .case_insensitive(true)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|error| BadPattern { index: None, error })?;
        Ok(NeverTo { patterns, set })
    }

    /// The patterns, as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The first pattern `address` matches.
    fn matched(&self, address: &str) -> Option<&str> {
        self.set.matches(address).iter().next().map(|i| self.patterns[i].as_str())
    }
}

impl Default for NeverTo {
    fn default() -> NeverTo {
        let patterns = DEFAULT_NEVER_ACK.iter().map(|p| p.to_string()).collect();
        // The default patterns are this file's constants, tested to compile.
        NeverTo::new(patterns).unwrap_or_else(|e| unreachable!("DEFAULT_NEVER_ACK: {e}"))
    }
}

/// The patterns of [`AckPolicy::never_to`] by default: system, list and no-reply addresses.
pub const DEFAULT_NEVER_ACK: &[&str] = &[
    r"^(mailer-daemon|postmaster|abuse|root|nobody|daemon|listserv|majordomo|hostmaster|webmaster)@",
    r"^(no-?reply|do-?not-?reply|donotreply)",
    r"^(bounces?|owner-|.*-(request|bounces?|owner)@)",
];

/// `[notifications] per_sender_per_day` when the configuration does not set it.
pub const DEFAULT_NOTIFY_PER_SENDER_PER_DAY: u32 = 20;

/// Everything the planner needs besides the message.
#[derive(Debug, Clone)]
pub struct Responder {
    pub ack: AckPolicy,
    /// No notification for mail received longer ago than this.
    pub notify_max_age: Duration,
    /// At most this many notifications about mail from one sender (by address key) in 24
    /// hours: a flood from one address reaches the digest, not the managers' inboxes.
    pub notify_per_sender_per_day: u32,
    /// Originals larger than this are not attached to notifications.
    pub attach_max: u64,
    pub templates: Templates,
    /// `Name <address>` we send as.
    pub from: String,
    pub from_address: String,
    pub message_id_domain: String,
    /// The IETF groups' chairs and ADs, named in notifications.
    pub experts: crate::experts::Experts,
}

#[derive(Debug, Clone)]
pub struct Templates {
    pub ack: Template,
    pub receipt: Template,
    pub notification: Template,
    pub alert: Template,
    pub reminder: Template,
    pub digest: Template,
    pub unrecorded: Template,
    pub confirmation: Template,
    pub check_in: Template,
}

/// The template files a directory holds, each with the names it may use and its built-in
/// copy (`config/templates/`, compiled in).
pub const TEMPLATE_FILES: [(&str, &[&str], &str); 9] = [
    ("ack.txt", ACK_NAMES, include_str!("../../../config/templates/ack.txt")),
    ("receipt.txt", RECEIPT_NAMES, include_str!("../../../config/templates/receipt.txt")),
    ("notification.txt", NOTIFICATION_NAMES, include_str!("../../../config/templates/notification.txt")),
    ("alert.txt", ALERT_NAMES, include_str!("../../../config/templates/alert.txt")),
    ("reminder.txt", REMINDER_NAMES, include_str!("../../../config/templates/reminder.txt")),
    ("digest.txt", DIGEST_NAMES, include_str!("../../../config/templates/digest.txt")),
    ("unrecorded.txt", UNRECORDED_NAMES, include_str!("../../../config/templates/unrecorded.txt")),
    ("confirmation.txt", CONFIRMATION_NAMES, include_str!("../../../config/templates/confirmation.txt")),
    ("check-in.txt", CHECK_IN_NAMES, include_str!("../../../config/templates/check-in.txt")),
];

impl Templates {
    /// Builds the templates from one text per file of [`TEMPLATE_FILES`], as `text(name)`
    /// gives them (the operator's directory or the built-in copies).
    pub fn from_texts(
        mut text: impl FnMut(&'static str, &'static str) -> Result<(String, PathBuf), ConfigError>,
    ) -> Result<Templates, ConfigError> {
        let mut one = |i: usize| {
            let (name, names, builtin) = TEMPLATE_FILES[i];
            let (body, path) = text(name, builtin)?;
            Template::parse(&body, &path, names)
        };
        Ok(Templates {
            ack: one(0)?,
            receipt: one(1)?,
            notification: one(2)?,
            alert: one(3)?,
            reminder: one(4)?,
            digest: one(5)?,
            unrecorded: one(6)?,
            confirmation: one(7)?,
            check_in: one(8)?,
        })
    }

    /// The built-in templates.
    pub fn builtin() -> Result<Templates, ConfigError> {
        Templates::from_texts(|name, builtin| Ok((builtin.to_string(), builtin_path(name))))
    }
}

/// How a built-in template is named in errors.
pub fn builtin_path(name: &str) -> PathBuf {
    PathBuf::from(format!("(built-in) config/templates/{name}"))
}

/// The names a template may use; see `config/templates/`.
pub const ACK_NAMES: &[&str] = &[
    "tracking_id",
    "title",
    "organization",
    "purpose",
    "for_action",
    "for_comment",
    "deadline",
    "to_groups",
    "received",
    "original_subject",
    "attachments",
    "sender",
    "coordinators",
];
/// Nothing from the message: the receipt goes to a sender nobody verified.
pub const RECEIPT_NAMES: &[&str] = &["tracking_id", "received", "coordinators"];
pub const NOTIFICATION_NAMES: &[&str] = &[
    "tracking_id",
    "title",
    "organization",
    "purpose",
    "for_action",
    "for_comment",
    "deadline",
    "no_deadline",
    "to_groups",
    "from_groups",
    "contacts",
    "reply_to",
    "document_numbers",
    "related",
    "datatracker_url",
    "experts",
    "misaddressed",
    "received",
    "original_subject",
    "attachments",
    "sender",
    "sender_verified",
    "unverified",
    "verification",
    "route_rule",
    "route_reason",
    "relationship",
    "to",
    "cc",
    "candidates",
    "missing",
    "warnings",
    "ack",
    "is_statement",
    "is_follow_up",
    "is_other",
    "class_reason",
    "message",
    "original_attached",
    "original_not_attached",
    "coordinators",
];
pub const ALERT_NAMES: &[&str] = &["count", "limit", "since", "tracking_id", "coordinators"];
pub const REMINDER_NAMES: &[&str] = &[
    "tracking_id",
    "title",
    "organization",
    "purpose",
    "deadline",
    "due",
    "overdue",
    "received",
    "reply_to",
    "to",
    "coordinators",
    "assigned",
    "final",
    "datatracker_url",
];
pub const DIGEST_NAMES: &[&str] = &[
    "since",
    "today",
    "received",
    "received_count",
    "awaiting",
    "awaiting_count",
    "theirs",
    "no_deadline",
    "no_manager",
    "quarantined",
    "failed",
    "check_ins",
    "unrecorded",
    "record_within",
    "coordinators",
];
pub const UNRECORDED_NAMES: &[&str] = &[
    "tracking_id",
    "title",
    "organization",
    "purpose",
    "deadline",
    "received",
    "within",
    "to",
    "coordinators",
    "assigned",
];
/// The yearly check-in request to a liaison manager.
pub const CHECK_IN_NAMES: &[&str] = &[
    "name",
    "relationships",
    "last_contact",
    "incoming",
    "outgoing",
    "open",
    "overdue",
    "answered",
    "median_days",
    "coordinators",
];
/// The answer to a reply's commands: what changed, what was refused and why.
pub const CONFIRMATION_NAMES: &[&str] =
    &["applied", "refused", "any_applied", "any_refused", "original_subject", "sender", "coordinators"];

/// Who a scheduled mail goes to, and where replies go.
#[derive(Debug, Clone, Default)]
pub struct Addressing {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reply_to: Vec<String>,
}

/// One message being recorded, as the planner sees it.
#[derive(Debug, Clone, Copy)]
pub struct RecordedMessage<'a> {
    pub tracking_id: Option<&'a str>,
    /// The message's row in the database (named in notifications about unrecorded mail).
    pub message: i64,
    pub verdict: &'a Verdict,
    pub analysis: &'a Analysis,
    pub headers: &'a Headers,
    /// When the message arrived (the IMAP INTERNALDATE, else when it was stored).
    pub received: jiff::Timestamp,
    pub now: jiff::Timestamp,
    /// A random number the caller drew: the unique part of the Message-IDs planned now (their
    /// kinds tell the drafts of one plan apart).
    pub nonce: u64,
    /// The size of the original message.
    pub size: u64,
    /// What the message's commands did (a reply with commands gets a confirmation instead of
    /// a notification).
    pub commands: &'a [CommandResult],
}

impl Responder {
    pub fn new(
        ack: AckPolicy,
        notify_max_age: Duration,
        attach_max: u64,
        templates: Templates,
        from: String,
        from_address: String,
        message_id_domain: String,
    ) -> Responder {
        Responder {
            ack,
            notify_max_age,
            notify_per_sender_per_day: DEFAULT_NOTIFY_PER_SENDER_PER_DAY,
            attach_max,
            templates,
            from,
            from_address,
            message_id_domain,
            experts: crate::experts::Experts::default(),
        }
    }

    /// Decides what to send about `incoming`. `counts` (it queries the database) is asked for
    /// a notification about a known sender (the per-sender limit), and for an acknowledgement
    /// only once it passed every other check.
    pub fn plan(
        &self,
        incoming: &RecordedMessage<'_>,
        rel: &Relationships,
        counts: &dyn Fn(&str) -> AckCounts,
    ) -> Plan {
        if incoming.verdict.command_reply {
            return self.answer_commands(incoming, rel);
        }
        let (ack, counted) = match self.ack_decision(incoming, rel) {
            Ok(target) => {
                let c = counts(&target.to);
                (self.within_limits(target, c), Some(c))
            }
            Err(reason) => (Err(AckRefusal::Refused(reason)), None),
        };
        let alert = match (&ack, counted) {
            (Err(AckRefusal::Paused(_)), Some(c)) if !c.alert_last_hour => Some(c.receipts_last_hour),
            _ => None,
        };
        let ack = ack.map_err(|r| r.to_string());
        let values = self.values(incoming, rel, &ack);
        let ack_target = ack.as_ref().ok().cloned();
        let ack = ack.map(|t| t.to);
        let mut drafts = Vec::new();

        let no_notification = match incoming.verdict.class {
            Class::Statement | Class::FollowUp | Class::Other => {
                self.notification(incoming, rel, &values, counts).map(|d| drafts.push(d)).err()
            }
            // Nothing to skip: these classes are never notified.
            _ => None,
        };
        if let Some(AckTarget { to, receipt: true }) = &ack_target {
            // Nothing of the message, not even its Message-ID in In-Reply-To: the receipt goes
            // to an address nobody verified, and must not carry the forger's text there.
            let r = self.templates.receipt.render(&values);
            let mut d =
                self.draft(DraftKind::Ack, incoming, vec![to.clone()], Vec::new(), rel.coordinators().to_vec(), r);
            d.auto_submitted = "auto-replied".into();
            d.null_sender = true;
            d.receipt = true;
            drafts.push(d);
        }
        if let Some(AckTarget { to, receipt: false }) = &ack_target {
            let r = self.templates.ack.render(&values);
            let cc = rel.coordinators().iter().filter(|c| *c != to).cloned().collect();
            let mut d = self.draft(DraftKind::Ack, incoming, vec![to.clone()], cc, rel.coordinators().to_vec(), r);
            answering(&mut d, incoming);
            drafts.push(d);
        }
        if let Some(count) = alert {
            let mut v = Values::new();
            v.insert("count", count.to_string());
            v.insert("limit", self.ack.per_hour.to_string());
            v.insert("since", format_time(incoming.now - jiff::SignedDuration::from_hours(1)));
            v.insert("tracking_id", incoming.tracking_id.unwrap_or_default().to_string());
            v.insert("coordinators", rel.coordinators().join(", "));
            let r = self.templates.alert.render(&v);
            drafts.push(self.draft(DraftKind::Alert, incoming, rel.coordinators().to_vec(), Vec::new(), Vec::new(), r));
        }
        Plan { drafts, ack, no_notification }
    }

    /// A reply whose first lines were commands: no acknowledgement and no notification (the
    /// people notified are the ones acting), and to a verified sender only, the confirmation
    /// of what changed and what was refused. A forged sender learns nothing.
    fn answer_commands(&self, incoming: &RecordedMessage<'_>, rel: &Relationships) -> Plan {
        let j = incoming.verdict;
        let ack = Err("a reply with commands is answered with a confirmation, not acknowledged".to_string());
        let no_notification = Some("a reply with commands: its sender is answered, nobody is notified".to_string());
        let to = j.sender.as_deref().and_then(normalize_address).filter(|_| j.sender_verified);
        let Some(to) = to.filter(|a| self.ack.never_to.matched(a).is_none() && !rel.is_own_address(a)) else {
            return Plan { drafts: Vec::new(), ack, no_notification };
        };
        let mut applied = Vec::new();
        let mut refused = Vec::new();
        for c in incoming.commands {
            match &c.outcome {
                Ok(done) => applied.push(format!("- {done}\n    (you wrote: {})", c.line)),
                Err(why) => refused.push(format!("- {}\n    {why}", c.line)),
            }
        }
        let mut v = Values::new();
        if !applied.is_empty() {
            v.insert("any_applied", "yes".into());
            v.insert("applied", applied.join("\n"));
        }
        if !refused.is_empty() {
            v.insert("any_refused", "yes".into());
            v.insert("refused", refused.join("\n"));
        }
        let subject = incoming.analysis.subject.as_deref().map(|s| clip(s, 200)).unwrap_or_default();
        let subject = strip_reply_prefixes(&subject);
        v.insert("original_subject", if subject.is_empty() { "your commands".into() } else { subject.to_string() });
        v.insert("sender", to.clone());
        v.insert("coordinators", rel.coordinators().join(", "));
        let rendered = self.templates.confirmation.render(&v);
        let mut d =
            self.draft(DraftKind::Confirmation, incoming, vec![to], Vec::new(), rel.coordinators().to_vec(), rendered);
        answering(&mut d, incoming);
        let mut named = incoming.commands.iter().filter_map(|c| c.tracking_id.as_deref());
        if let Some(first) = named.next()
            && named.all(|t| t == first)
        {
            d.tracking_id = Some(first.to_string());
        }
        Plan { drafts: vec![d], ack, no_notification }
    }

    /// The notification to the people the message was routed to, or why there is none.
    fn notification(
        &self,
        incoming: &RecordedMessage<'_>,
        rel: &Relationships,
        values: &Values,
        counts: &dyn Fn(&str) -> AckCounts,
    ) -> Result<Draft, String> {
        let j = incoming.verdict;
        if j.to.is_empty() {
            return Err("no one to notify".into());
        }
        if let Some(reason) = age_over(incoming, self.notify_max_age) {
            return Err(reason);
        }
        let about_sender = j.sender.as_deref().and_then(address_key);
        if let Some(sender) = &about_sender {
            let sent = counts(sender).notifications_about_last_day;
            if sent >= self.notify_per_sender_per_day {
                return Err(format!(
                    "{sent} notifications about mail from {sender} in the last 24 hours already (limit {}); \
                     it is in the digest",
                    self.notify_per_sender_per_day
                ));
            }
        }
        let attach = incoming.size <= self.attach_max;
        let mut values = values.clone();
        if attach {
            values.insert("original_attached", "yes".into());
        } else {
            values.insert(
                "original_not_attached",
                format!(
                    "The original ({} bytes) is too large to attach; it is kept as message {}, and the \
                     operator can send it to you.",
                    incoming.size, incoming.message
                ),
            );
        }
        let r = self.templates.notification.render(&values);
        let cc = j.cc.iter().filter(|c| !j.to.contains(c)).cloned().collect();
        // Replies reach the coordinators, never the sender.
        let mut d = self.draft(DraftKind::Notification, incoming, j.to.clone(), cc, rel.coordinators().to_vec(), r);
        d.attach_original = attach;
        d.about_sender = about_sender;
        Ok(d)
    }

    /// A [`scheduled_draft`](Self::scheduled_draft) about the message being recorded: its
    /// Message-ID names the tracking ID, else the message's number.
    fn draft(
        &self,
        kind: DraftKind,
        incoming: &RecordedMessage<'_>,
        to: Vec<String>,
        cc: Vec<String>,
        reply_to: Vec<String>,
        rendered: crate::template::Rendered,
    ) -> Draft {
        let about = match incoming.tracking_id {
            Some(t) => t.to_string(),
            None => format!("m{}", incoming.message),
        };
        let mut d =
            self.scheduled_draft(kind, &about, Addressing { to, cc, reply_to }, rendered, incoming.now, incoming.nonce);
        d.tracking_id = incoming.tracking_id.map(str::to_string);
        d
    }

    /// Deny by default: an acknowledgement goes out only when every check passes; the first
    /// that fails is the reason recorded. The limits, which need the database, come last
    /// ([`within_limits`](Self::within_limits)).
    fn ack_decision(&self, incoming: &RecordedMessage<'_>, rel: &Relationships) -> Result<AckTarget, String> {
        let j = incoming.verdict;
        if j.class != Class::Statement {
            return Err(format!("a message of class {} is not acknowledged", j.class.as_str()));
        }
        if let Some(reason) = &j.no_ack {
            return Err(reason.clone());
        }
        if !self.ack.enabled {
            return Err("acknowledgements are turned off ([acknowledgements] enabled = false)".into());
        }
        if let Some(org) = j.organization.as_deref().and_then(|o| rel.organization(o))
            && !org.ack
        {
            return Err(format!("{} is not acknowledged (ack = false in the relationships data)", org.name));
        }
        let Some(sender) = j.sender.as_deref().and_then(normalize_address) else {
            return Err("the message has no sender address".into());
        };
        let target = if j.sender_verified {
            AckTarget { to: sender, receipt: false }
        } else {
            self.receipt_target(incoming.headers, &sender, &j.verification)?
        };
        let to = &target.to;
        if *to == self.from_address || rel.is_own_address(to) {
            return Err(format!("{to} is one of our own addresses"));
        }
        if let Some(pattern) = self.ack.never_to.matched(to) {
            return Err(format!("{to} looks like an automatic, list or no-reply address (pattern `{pattern}`)"));
        }
        if let Some(reason) = age_over(incoming, self.ack.max_age) {
            return Err(reason);
        }
        Ok(target)
    }

    /// Where a receipt to an unverified sender may go: its envelope sender (the topmost
    /// Return-Path, which the delivering server wrote, RFC 5321 §4.4), and only when that is
    /// in the domain of the From address. A forger controls both, but then the receipt only
    /// reaches the domain the forger named twice, and carries nothing of the forgery.
    fn receipt_target(&self, headers: &Headers, sender: &str, verification: &str) -> Result<AckTarget, String> {
        let refused = |why: String| Err(format!("the sender is not verified ({verification}), and {why}"));
        if !self.ack.unverified_receipts {
            return refused(
                "receipts to unverified senders are turned off ([acknowledgements] unverified_receipts = false)".into(),
            );
        }
        let Some(path) = headers.get("return-path") else {
            return refused("the message has no Return-Path".into());
        };
        let Some(envelope) = normalize_address(path) else {
            return refused("the envelope sender is empty (a bounce or an automatic message)".into());
        };
        let from_domain = address_domain(sender);
        if from_domain.is_none() || from_domain != address_domain(&envelope) {
            return refused(format!(
                "the envelope sender {envelope} is not in the From domain of {sender}: no receipt"
            ));
        }
        Ok(AckTarget { to: envelope, receipt: true })
    }

    /// The per-address, per-domain and hourly limits (R42). The hourly one pauses receipts to
    /// unverified senders only: a flood of forgeries must not silence verified senders.
    fn within_limits(&self, target: AckTarget, counts: AckCounts) -> Result<AckTarget, AckRefusal> {
        let to = &target.to;
        if counts.to_address_last_day >= self.ack.per_sender_per_day {
            return Err(AckRefusal::Refused(format!(
                "{} acknowledgements to {to} (or the same address with another +tag) in the last 24 hours already \
                 (limit {})",
                counts.to_address_last_day, self.ack.per_sender_per_day
            )));
        }
        if counts.to_domain_last_day >= self.ack.per_domain_per_day {
            let domain = address_domain(to).unwrap_or_default();
            return Err(AckRefusal::Refused(format!(
                "{} acknowledgements to {domain} in the last 24 hours already (limit {})",
                counts.to_domain_last_day, self.ack.per_domain_per_day
            )));
        }
        if target.receipt && counts.receipts_last_hour >= self.ack.per_hour {
            return Err(AckRefusal::Paused(format!(
                "receipts to unverified senders are paused: {} sent in the last hour (limit {})",
                counts.receipts_last_hour, self.ack.per_hour
            )));
        }
        Ok(target)
    }

    /// `liaisond.<kind>.<about>.<16 hex>@<domain>`: recognisably ours when it comes back (R41).
    fn new_message_id(&self, kind: DraftKind, about: &str, nonce: u64) -> String {
        format!("{MESSAGE_ID_PREFIX}{}.{about}.{nonce:016x}@{}", kind.as_str(), self.message_id_domain)
    }

    /// A draft from us with the rendered text: automatic (`auto-generated`), sent with our
    /// address as the envelope sender, nothing attached. Used directly for what answers no
    /// incoming message (a reminder, a digest), and by the planner for what does.
    pub fn scheduled_draft(
        &self,
        kind: DraftKind,
        about: &str,
        addressing: Addressing,
        rendered: crate::template::Rendered,
        now: jiff::Timestamp,
        nonce: u64,
    ) -> Draft {
        Draft {
            kind,
            message_id: self.new_message_id(kind, about, nonce),
            date: now.to_string(),
            from: self.from.clone(),
            to: addressing.to,
            cc: addressing.cc,
            reply_to: addressing.reply_to,
            subject: rendered.subject,
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: "auto-generated".into(),
            body: crate::wrap::body(&rendered.body),
            attach_original: false,
            null_sender: false,
            receipt: false,
            about_sender: None,
            tracking_id: None,
        }
    }

    /// For each group a statement addresses: an IETF group's chairs and responsible AD (from
    /// the experts data), or why it is no IETF group (an IRTF research group, a list, a name
    /// nobody knows): the statement is then misaddressed.
    fn expert_hints(&self, groups: &[String], rel: &Relationships) -> (Vec<String>, Vec<String>) {
        use crate::relationships::{GroupRef, IetfGroupKind};
        let (mut experts, mut misaddressed) = (Vec::new(), Vec::new());
        for name in groups.iter().take(16) {
            let label = rel.group_label(None, name);
            match rel.resolve_group(None, name) {
                Some(GroupRef::Ietf(g)) if matches!(g.kind, IetfGroupKind::ResearchGroup | IetfGroupKind::Irtf) => {
                    misaddressed.push(format!("- {label}: an IRTF research group, not an IETF group"));
                }
                // Without experts data (none configured) nothing is said of the IETF's groups.
                Some(GroupRef::Ietf(g)) if !self.experts.is_empty() => {
                    // One person a line: a name is not split by the wrapping.
                    let mut lines = vec![format!("- {label}")];
                    match self.experts.of(&g.acronym) {
                        Some(e) => {
                            lines.extend(e.chairs.iter().map(|p| format!("    chair: {p}")));
                            lines.extend(e.ads.iter().map(|p| format!("    AD:    {p}")));
                        }
                        None => lines.push("    no chairs or AD on file".into()),
                    }
                    experts.push(lines.join("\n"));
                }
                // A group of the sending body among the addressees (copied): not misaddressed.
                Some(_) => {}
                None if self.experts.of(name.trim()).is_some() => {}
                None => misaddressed.push(format!(
                    "- {}: no IETF group in the relationships data (a list? a group it lacks?)",
                    printable(name)
                )),
            }
        }
        (experts, misaddressed)
    }

    /// The values the templates draw on.
    fn values(&self, incoming: &RecordedMessage<'_>, rel: &Relationships, ack: &Result<AckTarget, String>) -> Values {
        let s = &incoming.analysis.statement;
        let j = incoming.verdict;
        let mut v = Values::new();
        // Every value is made printable: most come from the sender (a title, a zip entry's
        // name), and must not add a line that reads as ours. The two lists of lines are
        // made printable item by item, then joined.
        let lines = ["attachments", "warnings", "experts", "misaddressed"];
        let mut put = |k: &'static str, value: Option<String>| {
            let value = value.map(|x| if lines.contains(&k) { printable_lines(&x) } else { printable(&x) });
            if let Some(value) = value.filter(|x| !x.trim().is_empty()) {
                v.insert(k, value);
            }
        };
        put("tracking_id", incoming.tracking_id.map(str::to_string));
        put("title", s.title.as_deref().map(|t| clip(t, 200)));
        put("organization", j.organization.clone().or_else(|| s.from_org.clone()));
        put("purpose", s.purpose.map(|p| p.label().to_string()));
        put("for_action", (s.purpose == Some(Purpose::Action)).then(|| "yes".into()));
        put("for_comment", (s.purpose == Some(Purpose::Comment)).then(|| "yes".into()));
        put("deadline", s.deadline.clone());
        put(
            "no_deadline",
            (matches!(s.purpose, Some(Purpose::Action | Purpose::Comment)) && s.deadline.is_none())
                .then(|| "yes".into()),
        );
        // Groups by name and acronym ("Deterministic Networking (detnet)"): the acronym is
        // how the datatracker and the people in the IETF know them, the name how others do.
        let org = s.from_org.as_deref();
        let groups = |names: &[String], org: Option<&str>| {
            names.iter().map(|g| rel.group_label(org, g)).collect::<Vec<_>>().join(", ")
        };
        put("to_groups", Some(groups(&s.to_groups, None)));
        put("from_groups", Some(groups(&s.from_groups, org)));
        put("datatracker_url", j.datatracker_url.clone());
        let (experts, misaddressed) = self.expert_hints(&s.to_groups, rel);
        put("experts", Some(experts.join("\n")));
        put("misaddressed", Some(misaddressed.join("\n")));
        put(
            "contacts",
            Some(s.from_contacts.iter().chain(&s.technical_contacts).cloned().collect::<Vec<_>>().join(", ")),
        );
        put("reply_to", Some(s.reply_to.join(", ")));
        put("document_numbers", Some(s.other_identifiers.join(", ")));
        put("related", s.related.clone());
        put("received", Some(format_time(incoming.received)));
        put("original_subject", incoming.analysis.subject.as_deref().map(|t| clip(t, 200)));
        let attachments: Vec<String> = incoming
            .analysis
            .attachments
            .iter()
            .map(|a| format!("- {} ({} bytes, SHA-256 {})", clip(&a.filename, 120), a.size, printable(&a.sha256)))
            .collect();
        put("attachments", Some(attachments.join("\n")));
        put("sender", j.sender.clone());
        put("sender_verified", Some(if j.sender_verified { "verified" } else { "NOT verified" }.into()));
        put("unverified", (!j.sender_verified).then(|| "yes".into()));
        put("verification", Some(j.verification.clone()));
        put("route_rule", j.rule.clone());
        put("route_reason", Some(j.route_reason.clone()));
        put("relationship", j.relationship.clone());
        put("to", Some(j.to.join(", ")));
        put("cc", Some(j.cc.join(", ")));
        put("candidates", Some(j.candidates.join(", ")));
        let mut missing = Vec::new();
        if j.class == Class::Statement {
            for (name, absent) in [
                ("title", s.title.is_none()),
                ("purpose", s.purpose.is_none()),
                ("sending organisation", s.from_org.is_none()),
                ("addressed groups", s.to_groups.is_empty()),
                ("deadline", s.deadline.is_none() && matches!(s.purpose, Some(Purpose::Action | Purpose::Comment))),
                ("contact", s.from_contacts.is_empty() && s.reply_to.is_empty()),
            ] {
                if absent {
                    missing.push(name);
                }
            }
        }
        put("missing", Some(missing.join(", ")));
        put(
            "warnings",
            Some(
                incoming.analysis.warnings.iter().map(|w| format!("- {}", printable(w))).collect::<Vec<_>>().join("\n"),
            ),
        );
        put(
            "ack",
            Some(match ack {
                Ok(AckTarget { to, receipt: false }) => format!("sent to {to}"),
                Ok(AckTarget { to, receipt: true }) => {
                    format!("a receipt without content sent to {to} (the sender is not verified)")
                }
                Err(reason) => format!("not sent: {reason}"),
            }),
        );
        put(
            match j.class {
                Class::Statement => "is_statement",
                Class::FollowUp => "is_follow_up",
                _ => "is_other",
            },
            Some("yes".into()),
        );
        put("class_reason", Some(j.reason.clone()));
        put("message", Some(incoming.message.to_string()));
        put("coordinators", Some(rel.coordinators().join(", ")));
        v
    }
}

/// Where an acknowledgement goes, and whether in its receipt form (see [`AckPolicy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AckTarget {
    to: String,
    receipt: bool,
}

/// Why no acknowledgement: refused for this message, or paused for everyone unverified.
enum AckRefusal {
    Refused(String),
    Paused(String),
}

impl std::fmt::Display for AckRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AckRefusal::Refused(r) | AckRefusal::Paused(r) => f.write_str(r),
        }
    }
}

/// The reason, when the message arrived longer than `limit` ago.
fn age_over(incoming: &RecordedMessage<'_>, limit: Duration) -> Option<String> {
    let age = incoming.now.duration_since(incoming.received);
    let limit_signed = jiff::SignedDuration::try_from(limit).unwrap_or(jiff::SignedDuration::MAX);
    (age > limit_signed).then(|| {
        format!(
            "received {} ago, longer than the {} cut-off (a backlog or an import)",
            humantime::format_duration(Duration::from_secs(age.as_secs().max(0) as u64)),
            humantime::format_duration(limit)
        )
    })
}

/// `2026-11-23 14:05 UTC`.
pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// At most `max` characters, [`printable`], runs of white space as one (text from the sender
/// ends up in our subject lines).
pub fn clip(text: &str, max: usize) -> String {
    let clean = printable(text).split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().count() <= max {
        clean
    } else {
        let mut s: String = clean.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Makes `d` an answer to `incoming` (the acknowledgement, the confirmation of commands):
/// threaded with it, and, RFC 3834 §5, marked as sent automatically in response; §4, with the
/// null reverse-path, so that nothing answers it.
fn answering(d: &mut Draft, incoming: &RecordedMessage<'_>) {
    let original = incoming.analysis.message_id.clone();
    let mut references = incoming.headers.message_ids("references");
    if let Some(id) = &original
        && !references.contains(id)
    {
        references.push(id.clone());
    }
    d.in_reply_to = original;
    d.references = references;
    d.auto_submitted = "auto-replied".into();
    d.null_sender = true;
}

/// A subject without its leading `Re:`/`AW:`/`Fwd:`-style prefixes.
fn strip_reply_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        match ["re:", "aw:", "sv:", "fwd:", "fw:", "wg:"].iter().find(|p| lower.starts_with(*p)) {
            Some(p) => s = s[p.len()..].trim_start(),
            None => return s,
        }
    }
}

/// The bytes with every line ending CRLF (a Maildir file has bare LFs).
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut previous = 0u8;
    for &b in raw {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out
}

/// An error building a message: permanent (sending it again cannot help).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the message: {0}")]
pub struct ComposeError(String);

/// The message as sent: the draft's headers and text, and the original attached as
/// `message/rfc822` (or as `original.eml` in base64 when it cannot travel as 8bit, RFC 2046
/// §5.2.1). An original with 8-bit bytes needs a server that offers 8BITMIME; see
/// [`compose_seven_bit`] for one that does not. `boundary` separates the parts of a multipart
/// message: the caller draws it at random (RFC 2046 §5.1.1: it must not occur in the parts).
pub fn compose(draft: &Draft, original: Option<&[u8]>, boundary: &str) -> Result<Vec<u8>, ComposeError> {
    compose_with(draft, original, boundary, true)
}

/// [`compose`] in 7-bit only: an original with 8-bit bytes is attached as `original.eml` in
/// base64 (RFC 6152: without 8BITMIME, no 8-bit data may be sent).
pub fn compose_seven_bit(draft: &Draft, original: Option<&[u8]>, boundary: &str) -> Result<Vec<u8>, ComposeError> {
    compose_with(draft, original, boundary, false)
}

fn compose_with(
    draft: &Draft,
    original: Option<&[u8]>,
    boundary: &str,
    eight_bit: bool,
) -> Result<Vec<u8>, ComposeError> {
    use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
    use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
    let err = |what: &str, e: &dyn std::fmt::Display| ComposeError(format!("{what}: {e}"));
    let mailbox = |s: &str| s.parse::<Mailbox>().map_err(|e| err(&format!("address `{s}`"), &e));
    let date: jiff::Timestamp = draft.date.parse().map_err(|e| err("date", &e))?;
    let date = std::time::SystemTime::from(date);
    let mut b = lettre::Message::builder()
        .message_id(Some(format!("<{}>", draft.message_id)))
        .date(date)
        .from(mailbox(&draft.from)?)
        .subject(draft.subject.clone());
    for a in &draft.to {
        b = b.to(mailbox(a)?);
    }
    for a in &draft.cc {
        b = b.cc(mailbox(a)?);
    }
    for a in &draft.reply_to {
        b = b.reply_to(mailbox(a)?);
    }
    if let Some(id) = &draft.in_reply_to {
        b = b.in_reply_to(format!("<{id}>"));
    }
    if !draft.references.is_empty() {
        b = b.references(draft.references.iter().map(|r| format!("<{r}>")).collect::<Vec<_>>().join(" "));
    }
    let header = |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
    b = b
        .raw_header(header("Auto-Submitted", draft.auto_submitted.clone()))
        // Exchange: do not answer this with an out-of-office or a read receipt.
        .raw_header(header("X-Auto-Response-Suppress", "All".into()))
        .raw_header(header(LOOP_HEADER, draft.kind.as_str().to_string()));
    if let Some(id) = &draft.tracking_id {
        // The statement this mail is about, for the reader's mail filters.
        b = b.raw_header(header(TRACKING_HEADER, id.clone()));
    }
    let text = SinglePart::plain(draft.body.clone());
    let message = match original {
        None => b.singlepart(text),
        Some(raw) => {
            let as_message =
                raw.split(|c| *c == b'\n').all(|line| line.strip_suffix(b"\r").unwrap_or(line).len() <= 998)
                    && !raw.contains(&0)
                    && !raw.is_empty()
                    && (eight_bit || raw.is_ascii());
            let part = if as_message {
                let ct = ContentType::parse("message/rfc822").map_err(|e| err("content type", &e))?;
                let encoding =
                    if raw.is_ascii() { ContentTransferEncoding::SevenBit } else { ContentTransferEncoding::EightBit };
                SinglePart::builder()
                    .header(ct)
                    .header(lettre::message::header::ContentDisposition::attachment("original.eml"))
                    .body(Body::dangerous_pre_encoded(crlf(raw), encoding))
            } else {
                let ct = ContentType::parse("application/octet-stream").map_err(|e| err("content type", &e))?;
                Attachment::new("original.eml".into()).body(raw.to_vec(), ct)
            };
            // The Content-Type written out with the caller's boundary: lettre's `mixed()` would
            // first draw a random one of its own, and the core draws no random numbers.
            let mixed = ContentType::parse(&format!("multipart/mixed; boundary=\"{boundary}\""))
                .map_err(|e| err("boundary", &e))?;
            b.multipart(MultiPart::builder().header(mixed).singlepart(text).singlepart(part))
        }
    }
    .map_err(|e| err("message", &e))?;
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use liaisond_model::{AttachmentRecord, Statement};

    use crate::parse::Parsed;

    const REL: &str = r#"[ietf]
coordinators = ["liaison-coordination@iab.org", "chair@iab.org"]
own_addresses = ["statements@ietf.org"]
datatracker_senders = ["statements@ietf.org"]

[[organization]]
name = "ITU-T"
acronym = "itu-t"
domains = ["itu.int"]

[[organization]]
name = "ETSI"
acronym = "etsi"
domains = ["etsi.org"]
ack = false
"#;
    const RAW: &[u8] =
        b"Message-ID: <ls-1@itu.int>\r\nReferences: <a@x.org> <b@x.org>\r\nSubject: LS on clocks\r\n\r\nbody\r\n";
    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const DAY: u64 = 24 * 3600;

    fn rel() -> Relationships {
        Relationships::from_str_at(REL, Path::new("rel.toml")).expect("relationships")
    }

    /// The responder a configuration with only `[mail] from` set gives.
    fn responder() -> Responder {
        Responder::new(
            AckPolicy::default(),
            Duration::from_secs(30 * DAY),
            20 * 1024 * 1024,
            Templates::builtin().expect("built-in templates"),
            "\"IAB Liaison Coordination\" <liaison-coordination@iab.org>".into(),
            "liaison-coordination@iab.org".into(),
            "iab.org".into(),
        )
    }

    fn headers(raw: &[u8]) -> Headers {
        Parsed::new(raw).headers
    }

    fn verdict(class: Class) -> Verdict {
        Verdict {
            sender: Some("jane.doe@itu.int".into()),
            sender_verified: true,
            verification: "dmarc=pass".into(),
            relationship: None,
            organization: Some("ITU-T".into()),
            rule: Some("manager".into()),
            to: vec!["ann@example.org".into(), "bob@example.org".into()],
            cc: vec!["bob@example.org".into(), "chair@iab.org".into()],
            route_reason: "ITU-T has managers".into(),
            ..Verdict::new(class, "reads like a statement")
        }
    }

    fn analysis(purpose: Purpose, reply_to: &[&str]) -> Analysis {
        Analysis {
            message_id: Some("ls-1@itu.int".into()),
            subject: Some("LS on clocks".into()),
            sender: Some("jane.doe@itu.int".into()),
            statement: Statement {
                title: Some("LS on packet clocks".into()),
                purpose: Some(purpose),
                deadline: Some("2026-12-01".into()),
                from_org: Some("ITU-T".into()),
                to_groups: vec!["DetNet".into()],
                reply_to: reply_to.iter().map(|s| s.to_string()).collect(),
                ..Statement::default()
            },
            attachments: vec![AttachmentRecord {
                filename: "LS.docx".into(),
                content_type: "application/octet-stream".into(),
                size: 1234,
                sha256: SHA.into(),
                kind: "docx".into(),
                depth: 0,
                text_chars: 10,
                error: None,
            }],
            warnings: Vec::new(),
            reply_text: String::new(),
        }
    }

    /// How the message differs from the default case.
    struct Case {
        verdict: Verdict,
        analysis: Analysis,
        counts: AckCounts,
        age: Duration,
        size: u64,
        /// The topmost `Return-Path:` field's value, if any.
        return_path: Option<&'static str>,
    }

    fn case() -> Case {
        Case {
            verdict: verdict(Class::Statement),
            analysis: analysis(Purpose::Action, &["Replies <TSBSG15@itu.int>"]),
            counts: AckCounts::default(),
            age: Duration::from_secs(3600),
            size: 1000,
            return_path: None,
        }
    }

    fn plan_with(r: &Responder, c: &Case) -> Plan {
        let raw = match c.return_path {
            Some(path) => [format!("Return-Path: {path}\r\n").as_bytes(), RAW].concat(),
            None => RAW.to_vec(),
        };
        let headers = headers(&raw);
        let now: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().expect("now");
        let received = now - jiff::SignedDuration::try_from(c.age).expect("age");
        let incoming = RecordedMessage {
            tracking_id: Some("LS-2026-0001"),
            message: 42,
            verdict: &c.verdict,
            analysis: &c.analysis,
            headers: &headers,
            received,
            now,
            nonce: 7,
            size: c.size,
            commands: &[],
        };
        r.plan(&incoming, &rel(), &|_| c.counts)
    }

    fn plan(c: &Case) -> Plan {
        plan_with(&responder(), c)
    }

    fn kinds(p: &Plan) -> Vec<DraftKind> {
        p.drafts.iter().map(|d| d.kind).collect()
    }

    /// A body as one line: the mail is wrapped at 72 columns, so a phrase may span two.
    fn flat(body: &str) -> String {
        body.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn draft(p: &Plan, kind: DraftKind) -> &Draft {
        p.drafts.iter().find(|d| d.kind == kind).unwrap_or_else(|| panic!("no {kind:?} in {p:?}"))
    }

    fn refused(c: &Case) -> String {
        let p = plan(c);
        assert!(!kinds(&p).contains(&DraftKind::Ack), "{p:?}");
        p.ack.expect_err("refused")
    }

    fn coordinators() -> Vec<String> {
        vec!["liaison-coordination@iab.org".to_string(), "chair@iab.org".to_string()]
    }

    #[test]
    fn a_statement_gets_a_notification_and_an_acknowledgement() {
        let p = plan(&case());
        assert_eq!(kinds(&p), [DraftKind::Notification, DraftKind::Ack]);
        assert_eq!(p.ack, Ok("jane.doe@itu.int".to_string()));
        assert_eq!(p.no_notification, None);

        let n = draft(&p, DraftKind::Notification);
        assert_eq!(n.to, ["ann@example.org", "bob@example.org"]);
        assert_eq!(n.cc, ["chair@iab.org"], "no duplicate of a To address");
        assert_eq!(n.reply_to, coordinators());
        assert_eq!(n.from, "\"IAB Liaison Coordination\" <liaison-coordination@iab.org>");
        assert!(n.attach_original);
        assert_eq!(n.auto_submitted, "auto-generated");
        assert!(!n.null_sender);
        assert_eq!(n.in_reply_to, None);
        assert!(
            n.subject.starts_with("[LS-2026-0001] New liaison statement from ITU-T: LS on packet clocks"),
            "{}",
            n.subject
        );
        assert!(n.body.contains("The original message is attached."), "{}", n.body);
        assert!(n.body.contains("Acknowledgement:  sent to jane.doe@itu.int"), "{}", n.body);
        assert!(!n.body.contains("liaisond messages show"), "{}", n.body);
        assert_eq!(n.date, "2026-03-01T12:00:00Z");

        let a = draft(&p, DraftKind::Ack);
        assert_eq!(a.to, ["jane.doe@itu.int"]);
        assert!(!a.receipt);
        assert_eq!(a.cc, coordinators());
        assert_eq!(a.reply_to, coordinators());
        assert!(a.null_sender);
        assert!(!a.attach_original);
        assert_eq!(a.auto_submitted, "auto-replied");
        assert_eq!(a.in_reply_to.as_deref(), Some("ls-1@itu.int"));
        assert_eq!(a.references, ["a@x.org", "b@x.org", "ls-1@itu.int"]);
        assert!(a.subject.starts_with("[LS-2026-0001] Receipt of \""), "{}", a.subject);
        assert!(a.subject.contains("LS on packet clocks"), "{}", a.subject);
        assert!(flat(&a.body).contains("no official position"), "{}", a.body);
        assert!(flat(&a.body).contains(&format!("- LS.docx (1234 bytes, SHA-256 {SHA})")), "{}", a.body);
        assert!(flat(&a.body).contains("received on 2026-03-01 11:00 UTC"), "{}", a.body);
        let id = regex::Regex::new(r"^liaisond\.ack\.LS-2026-0001\.[0-9a-f]{16}@iab\.org$").expect("regex");
        assert!(id.is_match(&a.message_id), "{}", a.message_id);
        assert!(n.message_id.starts_with("liaisond.notification.LS-2026-0001."), "{}", n.message_id);
        assert_ne!(a.message_id, n.message_id);
        assert_eq!(a.recipients(), ["jane.doe@itu.int", "liaison-coordination@iab.org", "chair@iab.org"]);
    }

    #[test]
    fn the_text_of_a_message_never_chooses_where_the_acknowledgement_goes() {
        // Regression (issue 13): the acknowledgement went to the first `Reply to:` address of
        // the body, so anyone could make us write to a third party.
        for reply_to in [&["victim@elsewhere.example"][..], &[]] {
            let mut c = case();
            c.analysis.statement.reply_to = reply_to.iter().map(|s| s.to_string()).collect();
            let p = plan(&c);
            assert_eq!(p.ack, Ok("jane.doe@itu.int".to_string()));
            assert_eq!(draft(&p, DraftKind::Ack).to, ["jane.doe@itu.int"]);
        }
    }

    /// The case of a sender nobody verified, whose envelope sender is `return_path`.
    fn unverified(return_path: Option<&'static str>) -> Case {
        let mut c = case();
        c.verdict.sender_verified = false;
        c.verdict.verification = "mail.ietf.org reports dmarc=fail for itu.int".into();
        c.analysis.statement.reply_to = vec!["victim@elsewhere.example".into()];
        c.return_path = return_path;
        c
    }

    #[test]
    fn an_unverified_sender_gets_a_receipt_without_content_at_its_envelope_address() {
        let p = plan(&unverified(Some("<Jane.Doe+ls@ITU.int>")));
        assert_eq!(p.ack, Ok("jane.doe+ls@itu.int".to_string()));
        assert_eq!(kinds(&p), [DraftKind::Notification, DraftKind::Ack]);
        let r = draft(&p, DraftKind::Ack);
        assert!(r.receipt && r.null_sender);
        assert_eq!(r.to, ["jane.doe+ls@itu.int"]);
        assert!(r.cc.is_empty(), "the coordinators are not copied on receipts: {:?}", r.cc);
        assert_eq!(r.auto_submitted, "auto-replied");
        assert_eq!((r.in_reply_to.as_deref(), r.references.len()), (None, 0), "not even the Message-ID");
        assert_eq!(r.subject, "[LS-2026-0001] Receipt of your message to the IETF liaison coordination");
        let text = format!("{}\n{}", r.subject, r.body);
        for taken in ["packet clocks", "LS on clocks", "LS.docx", "ITU-T", "DetNet", "2026-12-01", "victim"] {
            assert!(!text.contains(taken), "{taken:?} from the message in the receipt:\n{text}");
        }
        assert!(r.body.contains("LS-2026-0001") && r.body.contains("2026-03-01 11:00 UTC"), "{}", r.body);
        let n = draft(&p, DraftKind::Notification);
        assert!(
            n.body.contains("Acknowledgement:  a receipt without content sent to jane.doe+ls@itu.int"),
            "{}",
            n.body
        );
    }

    #[test]
    fn no_receipt_outside_the_from_domain_to_bounces_or_when_turned_off() {
        let why = |c: &Case| refused(c);
        let e = why(&unverified(Some("<victim@elsewhere.example>")));
        assert!(e.contains("not in the From domain of jane.doe@itu.int"), "{e}");
        assert!(e.contains("dmarc=fail"), "the verification is named: {e}");
        assert!(why(&unverified(Some("<victim@sub.itu.int>"))).contains("not in the From domain"));
        assert!(why(&unverified(Some("<>"))).contains("the envelope sender is empty"));
        assert!(why(&unverified(None)).contains("has no Return-Path"));
        let mut r = responder();
        r.ack.unverified_receipts = false;
        let p = plan_with(&r, &unverified(Some("<jane.doe@itu.int>")));
        assert!(p.ack.as_ref().is_err_and(|e| e.contains("unverified_receipts = false")), "{p:?}");
        assert_eq!(kinds(&p), [DraftKind::Notification]);
        // A verified sender is acknowledged at its From address whatever the envelope says.
        let mut c = unverified(Some("<victim@elsewhere.example>"));
        c.verdict.sender_verified = true;
        assert_eq!(plan(&c).ack, Ok("jane.doe@itu.int".to_string()));
    }

    #[test]
    fn references_name_the_original_once() {
        let r = responder();
        let c = case();
        let raw = b"Message-ID: <ls-1@itu.int>\r\nReferences: <a@x.org> <ls-1@itu.int>\r\n\r\nx";
        let headers = headers(raw);
        let now: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().expect("now");
        let incoming = RecordedMessage {
            tracking_id: None,
            message: 7,
            verdict: &c.verdict,
            analysis: &c.analysis,
            headers: &headers,
            received: now,
            now,
            nonce: 7,
            size: 10,
            commands: &[],
        };
        let p = r.plan(&incoming, &rel(), &|_| AckCounts::default());
        let a = draft(&p, DraftKind::Ack);
        assert_eq!(a.references, ["a@x.org", "ls-1@itu.int"]);
        assert!(a.message_id.starts_with("liaisond.ack.m7."), "no tracking ID: {}", a.message_id);
    }

    #[test]
    fn only_for_action_says_it_will_be_discussed() {
        let sentence = "discussed with the groups";
        let p = plan(&case());
        assert!(draft(&p, DraftKind::Ack).body.contains(sentence));
        let mut c = case();
        c.analysis = analysis(Purpose::Information, &[]);
        let p = plan(&c);
        let body = &draft(&p, DraftKind::Ack).body;
        assert!(!body.contains(sentence), "{body}");
        assert!(body.contains("Purpose:  For Information"), "{body}");
    }

    #[test]
    fn other_classes_are_not_acknowledged() {
        let mut c = case();
        c.verdict = verdict(Class::FollowUp);
        let p = plan(&c);
        assert_eq!(p.ack, Err("a message of class follow_up is not acknowledged".to_string()));
        assert_eq!(kinds(&p), [DraftKind::Notification], "a follow-up is still notified");
        assert!(draft(&p, DraftKind::Notification).subject.starts_with("[LS-2026-0001] Follow-up: LS on clocks"));
        assert_eq!(p.no_notification, None);
        for class in [Class::Duplicate, Class::AutoReply] {
            let mut c = case();
            c.verdict = verdict(class);
            let p = plan(&c);
            assert!(p.drafts.is_empty(), "{}: {p:?}", class.as_str());
            assert_eq!(p.ack, Err(format!("a message of class {} is not acknowledged", class.as_str())));
            assert_eq!(p.no_notification, None, "never notified, so nothing was skipped");
        }
    }

    #[test]
    fn text_from_the_sender_cannot_add_a_line_to_a_notification() {
        // Regression (issue 13): a zip entry named "x\nSender: ... (verified)" put a fake line
        // into the managers' notification through its warning; a title could carry U+202E.
        let mut c = case();
        c.analysis.warnings =
            vec!["ls.zip: a.doc\nSender:           boss@ietf.org (verified)\x1b[8m: unreadable".into()];
        c.analysis.statement.title = Some("LS on \u{202e}gnicils\r\nSender: x".into());
        c.analysis.attachments[0].filename = "a\u{2028}Sender: y.doc".into();
        let p = plan(&c);
        let n = draft(&p, DraftKind::Notification);
        for line in n.body.lines().chain([n.subject.as_str()]) {
            assert!(!line.trim_start().starts_with("Sender: ") || line.contains("jane.doe@itu.int"), "{line:?}");
            assert!(!line.contains(['\x1b', '\u{202e}', '\u{2028}', '\r']), "{line:?}");
        }
        assert!(n.body.contains("- ls.zip: a.doc Sender:"), "{}", n.body);
    }

    #[test]
    fn notifications_about_one_sender_are_capped_and_unverified_follow_ups_say_so() {
        // Regression (issue 13): one address could fill the managers' inboxes.
        let mut c = case();
        c.counts.notifications_about_last_day = 19;
        let p = plan(&c);
        assert_eq!(draft(&p, DraftKind::Notification).about_sender.as_deref(), Some("jane.doe@itu.int"));
        c.counts.notifications_about_last_day = 20;
        let p = plan(&c);
        assert!(!kinds(&p).contains(&DraftKind::Notification), "{p:?}");
        assert_eq!(
            p.no_notification.as_deref(),
            Some(
                "20 notifications about mail from jane.doe@itu.int in the last 24 hours already (limit 20); it is in \
                 the digest"
            )
        );
        // Regression (issue 13): a follow-up from an unverified sender looked like any other.
        let mut c = case();
        c.verdict = verdict(Class::FollowUp);
        assert_eq!(draft(&plan(&c), DraftKind::Notification).subject, "[LS-2026-0001] Follow-up: LS on clocks");
        c.verdict.sender_verified = false;
        assert_eq!(
            draft(&plan(&c), DraftKind::Notification).subject,
            "[LS-2026-0001] Follow-up (sender NOT verified): LS on clocks"
        );
    }

    #[test]
    fn no_one_to_notify() {
        let mut c = case();
        c.verdict.to.clear();
        let p = plan(&c);
        assert_eq!(kinds(&p), [DraftKind::Ack]);
        assert_eq!(p.no_notification.as_deref(), Some("no one to notify"));
    }

    #[test]
    fn refused_by_the_judgement_the_policy_or_the_organisation() {
        let mut c = case();
        c.verdict.no_ack = Some("sent through a mailing list".into());
        assert_eq!(refused(&c), "sent through a mailing list");

        let mut r = responder();
        r.ack.enabled = false;
        let p = plan_with(&r, &case());
        assert_eq!(kinds(&p), [DraftKind::Notification]);
        assert_eq!(p.ack, Err("acknowledgements are turned off ([acknowledgements] enabled = false)".to_string()));

        let mut c = case();
        c.verdict.organization = Some("etsi".into());
        assert_eq!(refused(&c), "ETSI is not acknowledged (ack = false in the relationships data)");
        c.verdict.organization = None;
        c.verdict.sender = None;
        assert_eq!(refused(&c), "the message has no sender address");
    }

    #[test]
    fn never_to_our_own_addresses() {
        for own in ["liaison-coordination@iab.org", "Chair@IAB.org", "statements@ietf.org"] {
            let mut c = case();
            c.verdict.sender = Some(own.to_string());
            let lower = own.to_lowercase();
            assert_eq!(refused(&c), format!("{lower} is one of our own addresses"));
        }
    }

    #[test]
    fn never_to_robot_addresses() {
        let robots = [
            ("noreply@x.org", 1),
            ("no-reply@x.org", 1),
            ("MAILER-DAEMON@x.org", 0),
            ("postmaster@x.org", 0),
            ("list-request@x.org", 2),
            ("owner-list@x.org", 2),
            ("bounces@x.org", 2),
        ];
        for (robot, pattern) in robots {
            let mut c = case();
            c.analysis.statement.reply_to.clear();
            c.verdict.sender = Some(robot.into());
            let lower = robot.to_lowercase();
            assert_eq!(
                refused(&c),
                format!(
                    "{lower} looks like an automatic, list or no-reply address (pattern `{}`)",
                    DEFAULT_NEVER_ACK[pattern]
                )
            );
        }
        for person in ["jane.doe@x.org", "norman@x.org", "owner@x.org", "replyto@x.org"] {
            let mut c = case();
            c.analysis.statement.reply_to.clear();
            c.verdict.sender = Some(person.into());
            assert_eq!(plan(&c).ack, Ok(person.to_string()), "{person}");
        }
    }

    #[test]
    fn old_mail_is_not_acknowledged_and_very_old_mail_not_notified() {
        let mut c = case();
        c.age = Duration::from_secs(2 * DAY);
        assert!(plan(&c).ack.is_ok(), "exactly the cut-off is still acknowledged");
        c.age = Duration::from_secs(3 * DAY);
        let p = plan(&c);
        assert_eq!(
            p.ack,
            Err("received 3days ago, longer than the 2days cut-off (a backlog or an import)".to_string())
        );
        assert_eq!(kinds(&p), [DraftKind::Notification]);
        assert!(draft(&p, DraftKind::Notification).body.contains("Acknowledgement:  not sent: received 3days ago"));
        c.age = Duration::from_secs(30 * DAY);
        assert_eq!(kinds(&plan(&c)), [DraftKind::Notification], "exactly the cut-off is still notified");
        c.age = Duration::from_secs(31 * DAY);
        let p = plan(&c);
        assert!(p.drafts.is_empty(), "{p:?}");
        assert_eq!(
            p.no_notification,
            Some(
                "received 1month 13h 26m 24s ago, longer than the 30days cut-off (a backlog or an import)".to_string()
            )
        );
        assert!(p.ack.is_err());
    }

    #[test]
    fn per_sender_and_per_domain_limits() {
        let mut c = case();
        c.counts.to_address_last_day = 2;
        assert!(plan(&c).ack.is_ok());
        c.counts.to_address_last_day = 3;
        let p = plan(&c);
        assert_eq!(
            p.ack,
            Err("3 acknowledgements to jane.doe@itu.int (or the same address with another +tag) in the last 24 \
                 hours already (limit 3)"
                .to_string())
        );
        assert_eq!(kinds(&p), [DraftKind::Notification], "no alert for the per-sender limit");
        let mut c = case();
        c.counts.to_domain_last_day = 19;
        assert!(plan(&c).ack.is_ok());
        c.counts.to_domain_last_day = 20;
        assert_eq!(refused(&c), "20 acknowledgements to itu.int in the last 24 hours already (limit 20)");
        // Receipts count the same way.
        let mut c = unverified(Some("<jane.doe@itu.int>"));
        c.counts.to_domain_last_day = 20;
        assert!(refused(&c).contains("to itu.int"));
    }

    #[test]
    fn hourly_limit_pauses_receipts_only_and_alerts_once() {
        let mut c = unverified(Some("<jane.doe@itu.int>"));
        c.counts.receipts_last_hour = 29;
        assert!(plan(&c).ack.is_ok());
        c.counts.receipts_last_hour = 30;
        // Regression (issue 13): a flood of receipts paused verified senders' acknowledgements too.
        let mut verified = case();
        verified.counts.receipts_last_hour = 30;
        assert!(plan(&verified).ack.is_ok(), "verified senders are never paused");
        let p = plan(&c);
        assert_eq!(
            p.ack,
            Err("receipts to unverified senders are paused: 30 sent in the last hour (limit 30)".to_string())
        );
        assert_eq!(kinds(&p), [DraftKind::Notification, DraftKind::Alert]);
        let alert = draft(&p, DraftKind::Alert);
        assert_eq!(alert.to, coordinators());
        assert!(alert.cc.is_empty() && alert.reply_to.is_empty());
        assert_eq!(alert.subject, "liaisond: receipts to unverified senders paused (30 in the last hour)");
        assert!(alert.body.contains("Since 2026-03-01 11:00 UTC"), "{}", alert.body);
        assert!(alert.body.contains("(this alert was raised by LS-2026-0001)"), "{}", alert.body);
        assert_eq!(alert.auto_submitted, "auto-generated");
        assert!(!alert.null_sender);
        assert!(alert.message_id.starts_with("liaisond.alert.LS-2026-0001."), "{}", alert.message_id);
        c.counts.alert_last_hour = true;
        let p = plan(&c);
        assert!(p.ack.is_err());
        assert_eq!(kinds(&p), [DraftKind::Notification], "told once an hour");
    }

    #[test]
    fn a_large_original_is_not_attached() {
        let mut c = case();
        c.size = 20 * 1024 * 1024;
        assert!(draft(&plan(&c), DraftKind::Notification).attach_original, "exactly the limit is attached");
        c.size += 1;
        let p = plan(&c);
        let n = draft(&p, DraftKind::Notification);
        assert!(!n.attach_original);
        assert!(flat(&n.body).contains("kept as message 42"), "{}", n.body);
        assert!(
            flat(&n.body).contains(&format!("The original ({} bytes) is too large to attach", c.size)),
            "{}",
            n.body
        );
        assert!(!n.body.contains("The original message is attached."), "{}", n.body);
    }

    fn parse(bytes: &[u8]) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(bytes).expect("parses")
    }

    fn header<'a>(m: &'a mail_parser::Message<'_>, name: &str) -> &'a str {
        m.header_raw(name.to_string()).unwrap_or_else(|| panic!("no {name}")).trim()
    }

    #[test]
    fn compose_writes_the_headers() {
        let p = plan(&case());
        let a = draft(&p, DraftKind::Ack);
        let bytes = compose(a, None, "b0undary").expect("compose");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(&format!("Message-ID: <{}>\r\n", a.message_id)), "{text}");
        let m = parse(&bytes);
        assert_eq!(m.message_id(), Some(a.message_id.as_str()));
        assert_eq!(header(&m, "Auto-Submitted"), "auto-replied");
        assert_eq!(header(&m, "X-Liaisond-Loop"), "ack");
        assert_eq!(header(&m, "X-Auto-Response-Suppress"), "All");
        assert_eq!(m.in_reply_to().as_text(), Some("ls-1@itu.int"));
        let refs: Vec<&str> = m.references().as_text_list().expect("list").iter().map(|r| r.as_ref()).collect();
        assert_eq!(refs, ["a@x.org", "b@x.org", "ls-1@itu.int"]);
        assert_eq!(m.subject(), Some(a.subject.as_str()));
        assert_eq!(m.attachment_count(), 0);
        let body = m.body_text(0).expect("text");
        assert!(flat(&body).contains("no official position"), "{body}");
        let to: Vec<&str> = m.to().expect("to").iter().filter_map(|x| x.address()).collect();
        assert_eq!(to, ["jane.doe@itu.int"]);
        let cc: Vec<&str> = m.cc().expect("cc").iter().filter_map(|x| x.address()).collect();
        assert_eq!(cc, ["liaison-coordination@iab.org", "chair@iab.org"]);
    }

    #[test]
    fn compose_attaches_the_original_as_a_message() {
        let p = plan(&case());
        let n = draft(&p, DraftKind::Notification);
        let original =
            b"Message-ID: <ls-1@itu.int>\nSubject: LS on clocks\nFrom: jane.doe@itu.int\n\nline one\nline two\n";
        let bytes = compose(n, Some(original), "b0undary").expect("compose");
        // Every line ending is CRLF, the original's too.
        assert!(bytes.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'), "bare LF left");
        let crlf_original: &[u8] = b"Subject: LS on clocks\r\nFrom: jane.doe@itu.int\r\n\r\nline one\r\nline two\r\n";
        assert!(bytes.windows(crlf_original.len()).any(|w| w == crlf_original));
        let m = parse(&bytes);
        assert_eq!(header(&m, "X-Liaisond-Loop"), "notification");
        assert_eq!(header(&m, "Auto-Submitted"), "auto-generated");
        assert_eq!(m.in_reply_to().as_text(), None);
        assert_eq!(m.attachment_count(), 1);
        let part = m.attachment(0).expect("attachment");
        use mail_parser::MimeHeaders;
        let ct = part.content_type().expect("content type");
        assert_eq!((ct.ctype(), ct.subtype()), ("message", Some("rfc822")));
        assert_eq!(part.attachment_name(), Some("original.eml"));
        let nested = part.message().expect("a nested message");
        assert_eq!(nested.subject(), Some("LS on clocks"));
        assert_eq!(nested.message_id(), Some("ls-1@itu.int"));
        assert!(nested.body_text(0).expect("text").contains("line two"));
        // The boundary is the caller's, in the Content-Type lettre's `mixed().boundary()` writes.
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("Content-Type: multipart/mixed; boundary=\"b0undary\"\r\n"), "{text}");
        assert_eq!(text.matches("--b0undary").count(), 3, "two parts and the close");
    }

    #[test]
    fn template_names_are_the_values_the_planner_sets() {
        // Every value the planner sets can be used by the templates...
        let c = case();
        let headers = headers(RAW);
        let now: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().expect("now");
        let incoming = RecordedMessage {
            tracking_id: Some("LS-2026-0001"),
            message: 1,
            verdict: &c.verdict,
            analysis: &c.analysis,
            headers: &headers,
            received: now,
            now,
            nonce: 7,
            size: 1,
            commands: &[],
        };
        let set = responder().values(&incoming, &rel(), &Ok(AckTarget { to: "x@y.org".into(), receipt: false }));
        for key in set.keys() {
            assert!(NOTIFICATION_NAMES.contains(key), "`{key}` is set but no template may use it");
        }
        for name in ACK_NAMES.iter().chain(RECEIPT_NAMES) {
            assert!(NOTIFICATION_NAMES.contains(name), "`{name}`: the acknowledgement's names are the notification's");
        }
        // ... and every name a template may use is set somewhere (not only listed).
        let source = include_str!("respond.rs");
        let code = &source[..source.find("#[cfg(test)]").unwrap_or(source.len())];
        for name in NOTIFICATION_NAMES.iter().chain(ALERT_NAMES) {
            let quoted = format!("\"{name}\"");
            assert!(code.matches(&quoted).count() >= 2, "`{name}` is listed but never set");
        }
    }

    #[test]
    fn compose_seven_bit_sends_an_eight_bit_original_in_base64() {
        use mail_parser::MimeHeaders;
        let p = plan(&case());
        let n = draft(&p, DraftKind::Notification);
        let original = "Subject: Zürich\r\n\r\nGrüße\r\n".as_bytes();
        let eight = compose(n, Some(original), "b0undary").expect("compose");
        assert!(!eight.is_ascii(), "8bit message/rfc822 by default");
        let seven = compose_seven_bit(n, Some(original), "b0undary").expect("compose");
        assert!(seven.is_ascii(), "nothing 8-bit for a server without 8BITMIME");
        let m = parse(&seven);
        let part = m.attachment(0).expect("attachment");
        assert_eq!(part.content_type().map(|c| c.ctype()), Some("application"));
        assert_eq!(part.contents(), original, "the original, byte for byte");
    }

    #[test]
    fn compose_attaches_an_original_with_long_lines_as_bytes() {
        let p = plan(&case());
        let n = draft(&p, DraftKind::Notification);
        let line = |len: usize| format!("Subject: long\r\n\r\n{}\n", "a".repeat(len)).into_bytes();
        use mail_parser::MimeHeaders;
        let ok = line(998);
        let bytes = compose(n, Some(&ok), "b0undary").expect("compose");
        let m = parse(&bytes);
        let part = m.attachment(0).expect("attachment");
        assert_eq!(part.content_type().expect("ct").ctype(), "message", "998 bytes may travel as a message");
        // Regression: the CR of a CRLF line ending is not part of the 998 (RFC 5322 §2.1.1).
        let crlf = format!("Subject: long\r\n\r\n{}\r\n", "a".repeat(998)).into_bytes();
        let bytes = compose(n, Some(&crlf), "b0undary").expect("compose");
        let part_type = parse(&bytes).attachment(0).and_then(|p| p.content_type().map(|c| c.ctype().to_string()));
        assert_eq!(part_type.as_deref(), Some("message"), "998 bytes + CRLF may travel as a message");

        let long = line(999);
        let bytes = compose(n, Some(&long), "b0undary").expect("compose");
        assert!(bytes.split(|b| *b == b'\n').all(|l| l.len() <= 1000), "no line over 998 in what is sent");
        let m = parse(&bytes);
        assert_eq!(m.attachment_count(), 1);
        let part = m.attachment(0).expect("attachment");
        let ct = part.content_type().expect("content type");
        assert_eq!((ct.ctype(), ct.subtype()), ("application", Some("octet-stream")));
        assert_eq!(part.attachment_name(), Some("original.eml"));
        assert!(part.message().is_none());
        assert_eq!(part.contents(), &long[..], "the original, byte for byte");
    }

    #[test]
    fn compose_refuses_a_bad_address() {
        let p = plan(&case());
        let mut a = draft(&p, DraftKind::Ack).clone();
        a.to = vec!["not an address".into()];
        let e = compose(&a, None, "b0undary").expect_err("bad address");
        assert!(e.to_string().contains("address `not an address`"), "{e}");
    }
}
