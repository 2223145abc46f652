//! Following statements through: which reminder is due, when a digest is due, whether a
//! message answers a statement, and the text of reminders and digests.
//!
//! **Architecture invariant: pure, no I/O.** Everything here takes the time ("now", "today")
//! as an argument, so the scheduler (`schedule.rs`) and the tests decide what time it is. The
//! store records what was decided (`store/follow.rs`); `schedule.rs` ties the two together.
//!
//! Deadlines are dates (RFC 4053 §3.2 gives a date, not a time). "Today" is the date in the
//! configured time zone, shifted by the send time: reminders for a day go out from
//! `send_at` (09:00 by default) on that day, not at midnight.

use std::collections::HashMap;
use std::time::Duration;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use liaisond_model::{
    Draft, DraftKind, FollowRow, KnownStatement, OutboxRow, Purpose, QuarantinedRow, normalize_address, printable,
};

use crate::relationships::Relationships;
use crate::respond::{Addressing, Responder, clip, format_time};
use crate::template::Values;

/// When reminders go out: the datatracker's schedule by default (14, 7, 4, 3, 2, 1 and 0 days
/// before the deadline, then "overdue" every day for up to 14 days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// Days before the deadline, largest first, each once.
    pub days_before: Vec<u32>,
    /// Days between two overdue reminders.
    pub overdue_every: u32,
    /// No overdue reminder later than this many days after the deadline.
    pub overdue_for: u32,
}

impl Default for Ladder {
    fn default() -> Self {
        Ladder { days_before: vec![14, 7, 4, 3, 2, 1, 0], overdue_every: 1, overdue_for: 14 }
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// N days before the deadline (0: the deadline is today).
    Before(u32),
    /// N days after the deadline.
    Overdue(u32),
}

impl Step {
    /// As recorded (`before-7`, `overdue-3`): with the deadline, the reminder's identity.
    pub fn key(self) -> String {
        match self {
            Step::Before(d) => format!("before-{d}"),
            Step::Overdue(d) => format!("overdue-{d}"),
        }
    }

    /// The day this step is due for a deadline.
    pub fn due_on(self, deadline: Date) -> Date {
        let days = match self {
            Step::Before(d) => -i64::from(d),
            Step::Overdue(d) => i64::from(d),
        };
        deadline.checked_add(days.days()).unwrap_or(deadline)
    }
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
pub fn days_between(from: Date, to: Date) -> i64 {
    from.until(to).map(|span| i64::from(span.get_days())).unwrap_or(0)
}

/// The step that is current on `today` for a statement received on `received_on`: the latest
/// step whose day has come. `None` when there is none: before the first step, past the overdue
/// window, or when the current step's day was not after the day the statement arrived (its
/// notification told the people then).
///
/// Only the current step is ever sent: after a downtime the one still relevant goes out, not
/// the backlog; whether it was sent already is the store's record (per statement, deadline
/// and step), so a restart, a second run or a clock set back sends nothing twice.
pub fn current_step(ladder: &Ladder, deadline: Date, received_on: Date, today: Date) -> Option<Step> {
    let left = days_between(today, deadline);
    let last_before = ladder.days_before.iter().copied().min();
    let step = if left >= 0 {
        let left = u32::try_from(left).ok()?;
        Step::Before(ladder.days_before.iter().copied().filter(|d| *d >= left).min()?)
    } else {
        let past = u32::try_from(-left).ok()?;
        if past > ladder.overdue_for {
            return None;
        }
        let every = ladder.overdue_every.max(1);
        match past / every * every {
            0 => Step::Before(last_before?),
            k => Step::Overdue(k),
        }
    };
    (step.due_on(deadline) > received_on).then_some(step)
}

/// The day it is for the schedule at `now`: the date in `tz`, less `send_at` (so the day
/// starts at the send time).
pub fn schedule_day(now: Timestamp, tz: &TimeZone, send_at: Time) -> Date {
    let local = now.to_zoned(tz.clone()).datetime();
    if local.time() < send_at { local.date().yesterday().unwrap_or(local.date()) } else { local.date() }
}

/// The local calendar date of a stored time (the day a statement arrived).
pub fn local_date(at: Timestamp, tz: &TimeZone) -> Date {
    at.to_zoned(tz.clone()).date()
}

/// When digests go out: on these weekdays at this local time (Mondays at 08:00 by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSchedule {
    pub days: Vec<Weekday>,
    pub send_at: Time,
}

impl Default for DigestSchedule {
    fn default() -> Self {
        DigestSchedule { days: vec![Weekday::Monday], send_at: Time::constant(8, 0, 0, 0) }
    }
}

/// The latest digest slot at or before `now` (local time in `tz`), if one is in the last week.
/// The store records a digest per slot, so a slot passes once; after a downtime only the
/// latest slot is taken, not each one missed.
pub fn latest_digest_slot(now: Timestamp, tz: &TimeZone, schedule: &DigestSchedule) -> Option<DateTime> {
    let local = now.to_zoned(tz.clone()).datetime();
    (0..8i64).find_map(|back| {
        let day = local.date().checked_sub(back.days()).ok()?;
        let slot = day.to_datetime(schedule.send_at);
        (schedule.days.contains(&day.weekday()) && slot <= local).then_some(slot)
    })
}

/// A slot as recorded: `2026-11-23T08:00`.
pub fn slot_key(slot: DateTime) -> String {
    slot.strftime("%Y-%m-%dT%H:%M").to_string()
}

/// What [`answers`] looks at: a message already classified as a follow-up of a statement.
pub struct Reply<'a> {
    /// The `From:` address.
    pub sender: Option<&'a str>,
    /// Whether the sender was verified (DMARC/DKIM through a trusted receiving server).
    pub sender_verified: bool,
    /// Every To and Cc address, normalised.
    pub recipients: &'a [String],
    /// The datatracker's posting of a reply ("In Response" with a referenced liaison).
    pub datatracker_reply: bool,
    /// Whether the message reads as a reply statement (Purpose: In Response).
    pub in_response: bool,
    /// The statement it follows up.
    pub statement: &'a KnownStatement,
}

/// Whether a follow-up answers its statement, so that the statement is done, and why; or
/// why it looked like an answer but does not count (`Err`, recorded as an event). A reply
/// is mail from the IETF side (or from whoever handles the statement), from a verified sender
/// (a `From:` header is only a claim, and closing a statement stops its reminders), addressed
/// to the statement's own side: its sender, the address it asked replies to go to, or its
/// organisation's addresses and domains. Or it is the datatracker's posting of a reply. A
/// manager writing only to the coordinators ("I'll take care of it"), or forwarding the
/// statement to people elsewhere, is a follow-up, not a reply.
pub fn answers(reply: &Reply<'_>, rel: &Relationships) -> Option<Result<String, String>> {
    let sender = reply.sender.and_then(normalize_address)?;
    if reply.datatracker_reply && rel.is_datatracker_sender(&sender) {
        return Some(if reply.sender_verified {
            Ok(format!("the datatracker posted a reply ({sender})"))
        } else {
            Err(format!("a datatracker reply notice from {sender}, but the sender is not verified"))
        });
    }
    if !rel.is_ietf_side(&sender) && !reply.statement.handlers.contains(&sender) {
        return None;
    }
    let their_side = |r: &&String| {
        reply.statement.other_side.contains(r)
            || reply
                .statement
                .organization
                .as_deref()
                .is_some_and(|org| rel.organization_by_sender(r).is_some_and(|m| m.organization.name == org))
    };
    let to_them: Vec<&String> = reply.recipients.iter().filter(their_side).collect();
    if to_them.is_empty() {
        return reply.in_response.then(|| {
            Err(format!(
                "{sender} wrote a reply statement, but not to the statement's sender or organisation; \
                 mark it done by hand when it was sent"
            ))
        });
    }
    let to = to_them.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    Some(if reply.sender_verified {
        Ok(format!("{sender} replied (to {to})"))
    } else {
        Err(format!("{sender} seems to have replied (to {to}), but the sender is not verified; mark it done by hand"))
    })
}

/// "in 3 days", "tomorrow", "today", "yesterday", "5 days ago".
pub fn relative_days(days: i64) -> String {
    match days {
        0 => "today".into(),
        1 => "tomorrow".into(),
        -1 => "yesterday".into(),
        d if d > 1 => format!("in {d} days"),
        d => format!("{} days ago", -d),
    }
}

// ---------------------------------------------------------------------------------------------
// The mail: reminders and digests.

/// Whether an open statement is owed a reply by its deadline (For Action, For Comment, or a
/// purpose not recognised): these get reminders and are listed as awaiting a reply.
pub fn awaits_reply(purpose: Option<&str>) -> bool {
    !matches!(purpose.and_then(Purpose::from_stored), Some(Purpose::Information | Purpose::Response))
}

/// Who answers for a statement: the operator's assignment, else whoever it was routed to,
/// else the coordinators.
pub fn handlers(s: &FollowRow, rel: &Relationships) -> Vec<String> {
    if let Some(a) = s.assigned_to.as_deref().and_then(normalize_address) {
        return vec![a];
    }
    if s.route_to.is_empty() { rel.coordinators().to_vec() } else { s.route_to.clone() }
}

fn purpose_text(p: Option<&str>) -> &'static str {
    p.and_then(Purpose::from_stored).map_or("not stated", Purpose::label)
}

/// The reminder for `step` of a statement (`today` is the schedule's day).
#[allow(clippy::too_many_arguments)]
pub fn reminder_draft(
    responder: &Responder,
    rel: &Relationships,
    s: &FollowRow,
    deadline: Date,
    step: Step,
    ladder: &Ladder,
    today: Date,
    now: Timestamp,
    nonce: u64,
) -> Draft {
    let (mut v, addressing) = reminder_values(s, rel);
    let left = days_between(today, deadline);
    v.insert("deadline", deadline.to_string());
    v.insert("due", relative_days(left));
    if left < 0 {
        v.insert("overdue", "yes".into());
    }
    v.insert("reply_to", if s.reply_to.is_empty() { "(not stated)".into() } else { printable(&s.reply_to.join(", ")) });
    if let Some(url) = &s.datatracker_url {
        v.insert("datatracker_url", url.clone());
    }
    if let Step::Overdue(k) = step
        && k + ladder.overdue_every.max(1) > ladder.overdue_for
    {
        v.insert("final", "yes".into());
    }
    let rendered = responder.templates.reminder.render(&v);
    reminder_of(responder, s, &s.tracking_id, addressing, rendered, now, nonce)
}

/// What every reminder of a statement says of it, and whom it goes to: whoever handles it,
/// the coordinators in copy, replies to the coordinators.
fn reminder_values(s: &FollowRow, rel: &Relationships) -> (Values, Addressing) {
    let to = handlers(s, rel);
    let coordinators = rel.coordinators().to_vec();
    let cc: Vec<String> = coordinators.iter().filter(|c| !to.contains(c)).cloned().collect();
    let mut v = Values::new();
    v.insert("tracking_id", s.tracking_id.clone());
    // The title goes into the subject: clipped, control characters removed.
    v.insert("title", s.title.as_deref().map_or_else(|| "(no title)".into(), |t| clip(t, 200)));
    v.insert("organization", printable(s.organization.as_deref().unwrap_or("(not known)")));
    v.insert("purpose", purpose_text(s.purpose.as_deref()).into());
    if let Ok(t) = s.received.parse::<Timestamp>() {
        v.insert("received", format_time(t));
    }
    v.insert("to", to.join(", "));
    v.insert("coordinators", coordinators.join(", "));
    if s.assigned_to.is_some() {
        v.insert("assigned", "yes".into());
    }
    (v, Addressing { to, cc, reply_to: coordinators })
}

/// A reminder's draft: about the statement (its tracking header), threaded with it in the
/// recipients' mail clients.
fn reminder_of(
    responder: &Responder,
    s: &FollowRow,
    about: &str,
    addressing: Addressing,
    rendered: crate::template::Rendered,
    now: Timestamp,
    nonce: u64,
) -> Draft {
    let mut d = responder.scheduled_draft(DraftKind::Reminder, about, addressing, rendered, now, nonce);
    d.tracking_id = Some(s.tracking_id.clone());
    if let Some(original) = &s.message_id {
        d.references = vec![original.clone()];
    }
    d
}

/// "7 days", "1 day": a duration as whole days.
pub fn days_text(d: Duration) -> String {
    match d.as_secs() / 86_400 {
        1 => "1 day".into(),
        n => format!("{n} days"),
    }
}

/// The one reminder that a statement is not yet recorded in the datatracker, `within` after it
/// arrived: to whoever handles it, the coordinators in copy.
pub fn record_reminder_draft(
    responder: &Responder,
    rel: &Relationships,
    s: &FollowRow,
    within: Duration,
    now: Timestamp,
    nonce: u64,
) -> Draft {
    let (mut v, addressing) = reminder_values(s, rel);
    if let Some(d) = &s.deadline {
        v.insert("deadline", d.clone());
    }
    v.insert("within", days_text(within));
    let rendered = responder.templates.unrecorded.render(&v);
    reminder_of(responder, s, &format!("{}.record", s.tracking_id), addressing, rendered, now, nonce)
}

/// What a digest reports on.
pub struct DigestInput<'a> {
    /// The start of the period (RFC 3339).
    pub since: &'a str,
    pub today: Date,
    /// Dates in the digest are in this zone.
    pub time_zone: &'a TimeZone,
    pub open: &'a [FollowRow],
    /// Recorded since the last digest.
    pub received: &'a [FollowRow],
    pub quarantined: &'a [QuarantinedRow],
    pub failed: &'a [OutboxRow],
    /// Check-ins recorded (by mail, or with `liaisond relationships check-in`): address → date.
    pub check_ins: &'a HashMap<String, String>,
    /// Check-in requests sent and not answered yet: address → the day it was sent.
    pub check_ins_asked: &'a HashMap<String, String>,
    pub check_in_after: Duration,
    /// Open statements not recorded in the datatracker within `record_within`.
    pub unrecorded: &'a [FollowRow],
    pub record_within: Duration,
}

/// The digest to the coordinators, or `None` when there is nothing to report.
pub fn digest_draft(
    responder: &Responder,
    rel: &Relationships,
    input: &DigestInput<'_>,
    now: Timestamp,
    nonce: u64,
) -> Option<Draft> {
    let line = |s: &FollowRow| {
        format!(
            "{}  {}: {}",
            s.tracking_id,
            printable(s.organization.as_deref().unwrap_or("(organisation not known)")),
            clip(s.title.as_deref().unwrap_or("(no title)"), 90)
        )
    };
    let deadline_of = |s: &FollowRow| s.deadline.as_deref().and_then(|d| d.parse::<Date>().ok());
    // "OVERDUE since 2026-11-20 (3 days ago)", "due 2026-12-15 (in 22 days)".
    let due = |d: Date| {
        let left = days_between(input.today, d);
        if left < 0 {
            format!("OVERDUE since {d} ({})", relative_days(left))
        } else {
            format!("due {d} ({})", relative_days(left))
        }
    };
    // Its record, on a line of its own (a URL is not wrapped).
    let record = |s: &FollowRow| s.datatracker_url.as_deref().map(|u| format!("\n    {u}")).unwrap_or_default();

    let (outgoing, incoming): (Vec<&FollowRow>, Vec<&FollowRow>) = input.open.iter().partition(|s| s.outgoing);
    let mut awaiting: Vec<(&FollowRow, Date)> = incoming
        .iter()
        .copied()
        .filter(|s| awaits_reply(s.purpose.as_deref()))
        .filter_map(|s| deadline_of(s).map(|d| (s, d)))
        .collect();
    awaiting.sort_by_key(|(s, d)| (*d, s.id));
    let awaiting_lines: Vec<String> = awaiting
        .iter()
        .map(|(s, d)| {
            format!("- {}  {}\n    handled by {}{}", due(*d), line(s), handlers(s, rel).join(", "), record(s))
        })
        .collect();
    // Statements the IETF sent, by their deadline (none last): the other body's answer.
    let mut theirs: Vec<(&FollowRow, Option<Date>)> =
        outgoing.iter().filter(|s| awaits_reply(s.purpose.as_deref())).map(|s| (*s, deadline_of(s))).collect();
    theirs.sort_by_key(|(s, d)| (d.is_none(), *d, s.id));
    let theirs: Vec<String> = theirs
        .iter()
        .map(|(s, d)| format!("- {}  {}{}", d.map_or_else(|| "no deadline".into(), due), line(s), record(s)))
        .collect();
    let received: Vec<String> = input
        .received
        .iter()
        .map(|s| {
            let day = local_day(&s.received, input.time_zone);
            let state = match (s.outgoing, s.state.as_str()) {
                (true, "done") => ", sent by the IETF, answered",
                (true, _) => ", sent by the IETF",
                (false, "done") => ", done",
                _ => "",
            };
            format!("- {day}  {}  ({}{state})", line(s), purpose_text(s.purpose.as_deref()))
        })
        .collect();
    let no_deadline: Vec<String> = incoming
        .iter()
        .filter(|s| matches!(s.purpose.as_deref(), Some("action" | "comment")) && deadline_of(s).is_none())
        .map(|s| format!("- {}", line(s)))
        .collect();
    let coordinators = rel.coordinators();
    let no_manager: Vec<String> = incoming
        .iter()
        .filter(|s| s.assigned_to.is_none() && s.route_to.iter().all(|a| coordinators.contains(a)))
        .map(|s| format!("- {}", line(s)))
        .collect();
    let quarantined: Vec<String> = input
        .quarantined
        .iter()
        .map(|q| {
            format!(
                "- message {} ({}) from {}: {}\n    {}",
                q.id,
                local_day(&q.received_at, input.time_zone),
                printable(q.from.as_deref().unwrap_or("(unknown)")),
                clip(q.subject.as_deref().unwrap_or("(no subject)"), 80),
                printable(q.reason.as_deref().unwrap_or("(no reason recorded)"))
            )
        })
        .collect();
    let failed: Vec<String> = input
        .failed
        .iter()
        .map(|o| {
            format!(
                "- outbox {} ({}{}) to {}: {}: {}",
                o.id,
                o.kind,
                o.tracking_id.as_deref().map(|t| format!(", {t}")).unwrap_or_default(),
                o.recipients.join(", "),
                o.state,
                printable(o.last_error.as_deref().unwrap_or("-"))
            )
        })
        .collect();
    let check_ins: Vec<String> = check_ins(rel, input.check_ins, input.today, input.check_in_after)
        .into_iter()
        .filter(|c| c.check_in_due)
        .map(|c| {
            let when = c.last_contact.map_or_else(|| "no contact recorded".into(), |d| format!("last contact {d}"));
            let asked = input.check_ins_asked.get(&c.email).map(|d| format!("; asked on {d}, no answer yet"));
            format!("- {} <{}> ({}): {when}{}", c.name, c.email, c.relationships.join("; "), asked.unwrap_or_default())
        })
        .collect();

    let unrecorded: Vec<String> = input
        .unrecorded
        .iter()
        .map(|s| {
            let day = local_day(&s.received, input.time_zone);
            format!("- {day}  {}\n    handled by {}", line(s), handlers(s, rel).join(", "))
        })
        .collect();

    let sections = [
        &awaiting_lines,
        &theirs,
        &received,
        &no_deadline,
        &no_manager,
        &unrecorded,
        &quarantined,
        &failed,
        &check_ins,
    ];
    if sections.iter().all(|s| s.is_empty()) {
        return None;
    }
    let mut v = Values::new();
    let since = input.since.parse::<Timestamp>().map(format_time).unwrap_or_else(|_| input.since.to_string());
    v.insert("since", since);
    v.insert("today", input.today.to_string());
    v.insert("coordinators", coordinators.join(", "));
    for (name, lines) in [
        ("awaiting", &awaiting_lines),
        ("theirs", &theirs),
        ("received", &received),
        ("no_deadline", &no_deadline),
        ("no_manager", &no_manager),
        ("unrecorded", &unrecorded),
        ("quarantined", &quarantined),
        ("failed", &failed),
        ("check_ins", &check_ins),
    ] {
        if !lines.is_empty() {
            v.insert(name, lines.join("\n"));
        }
    }
    if !awaiting_lines.is_empty() {
        v.insert("awaiting_count", awaiting_lines.len().to_string());
    }
    if !received.is_empty() {
        v.insert("received_count", received.len().to_string());
    }
    v.insert("record_within", days_text(input.record_within));
    let rendered = responder.templates.digest.render(&v);
    let about = format!("d{}", input.today.strftime("%Y%m%d"));
    let addressing = Addressing { to: coordinators.to_vec(), ..Addressing::default() };
    Some(responder.scheduled_draft(DraftKind::Digest, &about, addressing, rendered, now, nonce))
}

/// The local date of a stored time (its first ten characters when it does not parse).
fn local_day(stored: &str, tz: &TimeZone) -> String {
    stored.parse::<Timestamp>().map_or_else(|_| stored.chars().take(10).collect(), |t| local_date(t, tz).to_string())
}

/// A liaison manager's last contact: the latest of the relationships data's `last_contact`
/// (over every relationship they serve) and the check-ins recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckIn {
    pub name: String,
    pub email: String,
    pub relationships: Vec<String>,
    /// The relationships' datatracker acronyms (as statements record them).
    pub acronyms: Vec<String>,
    #[serde(serialize_with = "date_text")]
    pub last_contact: Option<Date>,
    /// Never in contact, or not for `after`.
    pub check_in_due: bool,
}

/// A relationship's last twelve months, for its manager's check-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationshipSummary {
    pub incoming: usize,
    pub outgoing: usize,
    /// Still open, of either direction.
    pub open: usize,
    /// Incoming, open, owing a reply, and past their deadline.
    pub overdue: usize,
    /// Over the incoming statements owing a reply that were done: the median of the days from
    /// arrival to done.
    pub median_days_to_answer: Option<i64>,
    pub answered: usize,
}

/// The summary of `rows` (a relationship's statements of the last twelve months) on `today`.
pub fn relationship_summary(rows: &[FollowRow], today: Date) -> RelationshipSummary {
    let day = |t: &str| t.parse::<Timestamp>().ok().map(|t| local_date(t, &TimeZone::UTC));
    let mut days: Vec<i64> = rows
        .iter()
        .filter(|s| !s.outgoing && s.state == "done" && awaits_reply(s.purpose.as_deref()))
        .filter_map(|s| Some(days_between(day(&s.created_at)?, day(s.done_at.as_deref()?)?)))
        .collect();
    days.sort_unstable();
    RelationshipSummary {
        incoming: rows.iter().filter(|s| !s.outgoing).count(),
        outgoing: rows.iter().filter(|s| s.outgoing).count(),
        open: rows.iter().filter(|s| s.state == "open").count(),
        overdue: rows
            .iter()
            .filter(|s| !s.outgoing && s.state == "open" && awaits_reply(s.purpose.as_deref()))
            .filter(|s| s.deadline.as_deref().and_then(|d| d.parse::<Date>().ok()).is_some_and(|d| d < today))
            .count(),
        median_days_to_answer: days.get(days.len() / 2).copied().filter(|_| !days.is_empty()),
        answered: days.len(),
    }
}

/// What a reply says, without what it quotes: its lines up to the first quoted one (`>`), the
/// attribution before a quote (`On ... wrote:`) or a forwarded original, at most 4,000
/// characters.
pub fn report_text(reply: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in reply.lines() {
        let t = line.trim();
        if t.starts_with('>') || t.starts_with("-----Original Message") || t.starts_with("________________") {
            break;
        }
        kept.push(line.trim_end());
    }
    while kept.last().is_some_and(|l| l.trim().is_empty() || l.trim_end().ends_with("wrote:")) {
        kept.pop();
    }
    let text = kept.join("\n");
    let text = text.trim();
    match text.char_indices().nth(4000) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The yearly check-in request to a manager: the last twelve months of their relationships,
/// and how to answer; to the manager, the coordinators in copy.
pub fn check_in_draft(
    responder: &Responder,
    rel: &Relationships,
    c: &CheckIn,
    summary: &RelationshipSummary,
    now: Timestamp,
    nonce: u64,
) -> Draft {
    let coordinators = rel.coordinators().to_vec();
    let mut v = Values::new();
    v.insert("name", printable(&c.name));
    v.insert("relationships", printable(&c.relationships.join("; ")));
    v.insert("last_contact", c.last_contact.map_or_else(|| "none recorded".to_string(), |d| d.to_string()));
    v.insert("incoming", summary.incoming.to_string());
    v.insert("outgoing", summary.outgoing.to_string());
    v.insert("open", summary.open.to_string());
    v.insert("overdue", summary.overdue.to_string());
    v.insert("answered", summary.answered.to_string());
    if let Some(m) = summary.median_days_to_answer {
        v.insert("median_days", m.to_string());
    }
    v.insert("coordinators", coordinators.join(", "));
    let rendered = responder.templates.check_in.render(&v);
    let addressing = Addressing {
        to: vec![c.email.clone()],
        cc: coordinators.iter().filter(|a| **a != c.email).cloned().collect(),
        reply_to: coordinators,
    };
    let about = format!("checkin.{}", c.email.split('@').next().unwrap_or("manager"));
    responder.scheduled_draft(DraftKind::CheckIn, &about, addressing, rendered, now, nonce)
}

/// `YYYY-MM-DD` or null.
fn date_text<S: serde::Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_some(&date.map(|d| d.to_string()))
}

/// Every liaison manager once, in the order of the relationships data.
pub fn check_ins(
    rel: &Relationships,
    recorded: &HashMap<String, String>,
    today: Date,
    after: Duration,
) -> Vec<CheckIn> {
    let days = i64::try_from(after.as_secs() / 86_400).unwrap_or(i64::MAX);
    let mut all: Vec<CheckIn> = Vec::new();
    for m in rel.managers() {
        let at = match all.iter().position(|c| c.email == m.email) {
            Some(i) => i,
            None => {
                let recorded = recorded.get(m.email).and_then(|d| d.parse::<Date>().ok());
                all.push(CheckIn {
                    name: m.name.to_string(),
                    email: m.email.to_string(),
                    relationships: Vec::new(),
                    acronyms: Vec::new(),
                    last_contact: recorded,
                    check_in_due: false,
                });
                all.len() - 1
            }
        };
        let c = &mut all[at];
        c.relationships.push(m.relationship);
        c.acronyms.push(m.acronym.to_string());
        c.last_contact = c.last_contact.max(m.last_contact);
    }
    for c in &mut all {
        c.check_in_due = c.last_contact.is_none_or(|last| days_between(last, today) >= days);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn step(deadline: Date, received: Date, today: Date) -> Option<Step> {
        current_step(&Ladder::default(), deadline, received, today)
    }

    #[test]
    fn the_ladder_day_by_day() {
        let deadline = date(2027, 3, 31);
        let received = date(2027, 2, 1);
        let mut seen = Vec::new();
        let mut day = date(2027, 3, 1);
        while day <= date(2027, 4, 30) {
            if let Some(s) = step(deadline, received, day)
                && seen.last() != Some(&s)
            {
                seen.push(s);
            }
            day = day.tomorrow().expect("date");
        }
        let keys: Vec<String> = seen.iter().map(|s| s.key()).collect();
        let mut expected: Vec<String> = [14, 7, 4, 3, 2, 1, 0].iter().map(|d| format!("before-{d}")).collect();
        expected.extend((1..=14).map(|d| format!("overdue-{d}")));
        assert_eq!(keys, expected);
        // Between rungs the current step stays the last one (already sent: nothing new).
        assert_eq!(step(deadline, received, date(2027, 3, 20)), Some(Step::Before(14)));
        assert_eq!(step(deadline, received, date(2027, 3, 16)), None, "15 days before: no rung yet");
        assert_eq!(step(deadline, received, date(2027, 4, 15)), None, "past the overdue window");
    }

    #[test]
    fn after_a_downtime_only_the_current_step() {
        let deadline = date(2027, 3, 31);
        // Down from 14 days before to 5 days before: the 7-day reminder is the relevant one.
        assert_eq!(step(deadline, date(2027, 2, 1), date(2027, 3, 26)), Some(Step::Before(7)));
        // Down over the deadline: the overdue reminder of today.
        assert_eq!(step(deadline, date(2027, 2, 1), date(2027, 4, 3)), Some(Step::Overdue(3)));
    }

    #[test]
    fn no_reminder_for_a_step_the_notification_covered() {
        let deadline = date(2027, 3, 31);
        // Arrived 5 days before: the 7-day step lies before its arrival.
        assert_eq!(step(deadline, date(2027, 3, 26), date(2027, 3, 26)), None);
        assert_eq!(step(deadline, date(2027, 3, 26), date(2027, 3, 27)), Some(Step::Before(4)));
        // Arrived on the deadline: the first reminder is the first overdue one.
        assert_eq!(step(deadline, deadline, deadline), None);
        assert_eq!(step(deadline, deadline, date(2027, 4, 1)), Some(Step::Overdue(1)));
    }

    #[test]
    fn overdue_every_three_days() {
        let ladder = Ladder { days_before: vec![7, 0], overdue_every: 3, overdue_for: 10 };
        let d = date(2027, 1, 10);
        let r = date(2026, 12, 1);
        assert_eq!(current_step(&ladder, d, r, date(2027, 1, 11)), Some(Step::Before(0)));
        assert_eq!(current_step(&ladder, d, r, date(2027, 1, 13)), Some(Step::Overdue(3)));
        assert_eq!(current_step(&ladder, d, r, date(2027, 1, 15)), Some(Step::Overdue(3)));
        assert_eq!(current_step(&ladder, d, r, date(2027, 1, 19)), Some(Step::Overdue(9)));
        assert_eq!(current_step(&ladder, d, r, date(2027, 1, 21)), None);
    }

    #[test]
    fn the_day_starts_at_the_send_time_in_the_time_zone() {
        let tz = TimeZone::get("Asia/Tokyo").expect("tzdb");
        let nine = Time::constant(9, 0, 0, 0);
        // 2027-03-30T23:30Z is 08:30 on the 31st in Tokyo: still the 30th for the schedule.
        let t: Timestamp = "2027-03-30T23:30:00Z".parse().expect("ts");
        assert_eq!(schedule_day(t, &tz, nine), date(2027, 3, 30));
        let t: Timestamp = "2027-03-31T00:00:00Z".parse().expect("ts");
        assert_eq!(schedule_day(t, &tz, nine), date(2027, 3, 31));
        assert_eq!(schedule_day(t, &TimeZone::UTC, nine), date(2027, 3, 30));
    }

    #[test]
    fn digest_slots() {
        let tz = TimeZone::UTC;
        let s = DigestSchedule::default();
        // 2026-11-23 is a Monday.
        let before: Timestamp = "2026-11-23T07:59:00Z".parse().expect("ts");
        let after: Timestamp = "2026-11-23T08:00:00Z".parse().expect("ts");
        let wednesday: Timestamp = "2026-11-25T12:00:00Z".parse().expect("ts");
        assert_eq!(latest_digest_slot(before, &tz, &s).map(slot_key).as_deref(), Some("2026-11-16T08:00"));
        assert_eq!(latest_digest_slot(after, &tz, &s).map(slot_key).as_deref(), Some("2026-11-23T08:00"));
        assert_eq!(latest_digest_slot(wednesday, &tz, &s).map(slot_key).as_deref(), Some("2026-11-23T08:00"));
        let none = DigestSchedule { days: vec![], send_at: s.send_at };
        assert_eq!(latest_digest_slot(after, &tz, &none), None);
    }

    /// A 3GPP statement from 3GPPLiaison@etsi.org, handled by its manager.
    fn known() -> KnownStatement {
        KnownStatement {
            id: 1,
            tracking_id: "LS-2026-0001".into(),
            handlers: vec!["katrin.lindqvist@example.org".into()],
            organization: Some("3GPP".into()),
            other_side: vec!["3gppliaison@etsi.org".into(), "jane@example-operator.de".into()],
            ..KnownStatement::default()
        }
    }

    fn reply<'a>(sender: &'a str, to: &'a [String], verified: bool, st: &'a KnownStatement) -> Reply<'a> {
        Reply {
            sender: Some(sender),
            sender_verified: verified,
            recipients: to,
            datatracker_reply: false,
            in_response: false,
            statement: st,
        }
    }

    #[test]
    fn which_follow_ups_answer_their_statement() {
        let rel = Relationships::builtin();
        let st = known();
        let to = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let manager = "katrin.lindqvist@example.org";
        // To the statement's sender, or its reply-to, or anyone at its organisation: a reply.
        for rcpt in [to(&["jane@example-operator.de"]), to(&["3GPPLiaison@etsi.org"]), to(&["someone@3gpp.org"])] {
            let got = answers(&reply(manager, &rcpt, true, &st), &rel);
            assert!(matches!(&got, Some(Ok(why)) if why.contains("replied (to")), "{rcpt:?}: {got:?}");
        }
        // Unverified: not trusted, said why.
        let r = to(&["3gppliaison@etsi.org"]);
        assert!(
            matches!(answers(&reply(manager, &r, false, &st), &rel), Some(Err(why)) if why.contains("not verified"))
        );
        // Forwarded to people elsewhere, or written to the coordinators only: not a reply.
        let r = to(&["chair@example-vendor.com", "liaison-coordination@iab.org"]);
        assert_eq!(answers(&reply(manager, &r, true, &st), &rel), None);
        // A reply statement not addressed to them: to be marked by hand.
        let r = to(&["liaison-coordination@iab.org"]);
        let draft = Reply { in_response: true, ..reply(manager, &r, true, &st) };
        assert!(matches!(answers(&draft, &rel), Some(Err(why)) if why.contains("by hand")));
        // Not from the IETF side: the SDO writing again is no answer.
        let r = to(&["liaison-coordination@iab.org", "3gppliaison@etsi.org"]);
        assert_eq!(answers(&reply("jane@example-operator.de", &r, true, &st), &rel), None);
        // Whoever handles it (assigned, at a company address) counts as the IETF side.
        let assigned = KnownStatement { handlers: vec!["expert@example-vendor.com".into()], ..known() };
        let r = to(&["jane@example-operator.de"]);
        assert!(matches!(answers(&reply("expert@example-vendor.com", &r, true, &assigned), &rel), Some(Ok(_))));
        // The datatracker's notice: trusted only when verified.
        let notice = |verified| Reply { datatracker_reply: true, ..reply("statements@ietf.org", &[], verified, &st) };
        assert!(matches!(answers(&notice(true), &rel), Some(Ok(_))));
        assert!(matches!(answers(&notice(false), &rel), Some(Err(why)) if why.contains("not verified")));
    }

    #[test]
    fn the_ietf_side() {
        let rel = Relationships::builtin();
        for a in [
            "liaison-coordination@iab.org",
            "statements@ietf.org",
            "katrin.lindqvist@example.org",
            "x@IRTF.org",
            "a@mail.ietf.org",
        ] {
            assert!(rel.is_ietf_side(a), "{a}");
        }
        for a in ["jane@example-operator.de", "x@notietf.org", "x@ietf.org.example.com"] {
            assert!(!rel.is_ietf_side(a), "{a}");
        }
    }

    #[test]
    fn relative_days_read_well() {
        assert_eq!(relative_days(3), "in 3 days");
        assert_eq!(relative_days(-2), "2 days ago");
        assert_eq!(relative_days(0), "today");
    }
}
