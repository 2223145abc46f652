//! `liaisond statements list|show|done|reopen|assign|set`: the operator's view of statements,
//! on the daemon's database while it runs (every change is one short transaction; see
//! `store/operator.rs`).

use std::io::Write;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use jiff::civil::Date;

use super::output::{self, Refused, date_of, operator, parse_date, today};
use super::{ConfigArg, EX_OK, open_existing, truncate, with_config};
use crate::config::Config;
use liaisond_model::{Class, Statement};
use liaisond_store::{Change, Edit, StatementField, StatementRecord, Store};

#[derive(Debug, Subcommand)]
pub(super) enum StatementsCommand {
    /// List statements, newest first: a table in a terminal (the title cut to its width), the
    /// whole title in a pipe, or with --json one JSON object per line.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Only open statements.
        #[arg(long, conflicts_with_all = ["done", "overdue"])]
        open: bool,
        /// Only done statements.
        #[arg(long, conflicts_with = "overdue")]
        done: bool,
        /// Only open statements whose deadline is before today (in the configured time_zone).
        #[arg(long)]
        overdue: bool,
        /// Only statements (open or done) not recorded in the datatracker within
        /// `[datatracker] record_within` of their arrival.
        #[arg(long)]
        unrecorded: bool,
        /// Only statements the IETF sent to another body (with --open: those still awaiting
        /// the other body's answer).
        #[arg(long)]
        outgoing: bool,
        /// Only those from this organisation (its name as recorded or as written in the
        /// statement; any case).
        #[arg(long, value_name = "NAME")]
        org: Option<String>,
        /// Only those with this purpose.
        #[arg(long, value_enum)]
        purpose: Option<Purpose>,
        /// Only those received on or after this date (YYYY-MM-DD, UTC).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// At most this many (the newest).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// One JSON object per line (every recorded field, with `received_date` and `overdue`).
        #[arg(long)]
        json: bool,
    },
    /// Show everything about one statement: its fields, attachments, routing, acknowledgement,
    /// assignment and state, the mail received and sent about it, and its history.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// A tracking ID (LS-2026-0003, any case) or the statement's number.
        id: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Mark a statement done (its waiting reminders are cancelled).
    Done {
        #[command(flatten)]
        config: ConfigArg,
        /// A tracking ID or the statement's number.
        id: String,
        /// Why (recorded with it).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        by: ByArg,
    },
    /// Open a done statement again.
    Reopen {
        #[command(flatten)]
        config: ConfigArg,
        /// A tracking ID or the statement's number.
        id: String,
        #[command(flatten)]
        by: ByArg,
    },
    /// Say who answers for a statement (an e-mail address), or with --clear, nobody in
    /// particular (its route decides again).
    Assign {
        #[command(flatten)]
        config: ConfigArg,
        /// A tracking ID or the statement's number.
        id: String,
        /// A bare address: manager@example.org.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        address: Option<String>,
        /// Remove the assignment.
        #[arg(long)]
        clear: bool,
        #[command(flatten)]
        by: ByArg,
    },
    /// Correct a statement's title, purpose (action, comment, information, response), deadline
    /// (YYYY-MM-DD, or `none`) or from_org. The old and new value go into its history.
    Set {
        #[command(flatten)]
        config: ConfigArg,
        /// A tracking ID or the statement's number.
        id: String,
        field: Field,
        value: String,
        #[command(flatten)]
        by: ByArg,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct ByArg {
    /// Who does it, for the history (default: the user who ran sudo, else the Unix user).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Purpose {
    Action,
    Comment,
    #[value(alias = "info")]
    Information,
    Response,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Action => "action",
            Purpose::Comment => "comment",
            Purpose::Information => "information",
            Purpose::Response => "response",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Field {
    Title,
    Purpose,
    Deadline,
    #[value(name = "from_org", alias = "from-org")]
    FromOrg,
}

pub(super) fn run(command: StatementsCommand) -> u8 {
    match command {
        StatementsCommand::List {
            config,
            open,
            done,
            overdue,
            unrecorded,
            outgoing,
            org,
            purpose,
            since,
            limit,
            json,
        } => with_config(&config.config, |c| {
            let state = match (open, done, overdue) {
                (_, _, true) => Some(StateFilter::Overdue),
                (true, _, _) => Some(StateFilter::Open),
                (_, true, _) => Some(StateFilter::Done),
                _ => None,
            };
            let since = since.as_deref().map(|s| parse_date("--since", s)).transpose()?;
            let unrecorded_before =
                unrecorded.then(|| crate::daemon::schedule::record_cutoff(jiff::Timestamp::now(), &c.follow));
            let filter = Filter {
                state,
                org,
                purpose: purpose.map(|p| p.as_str().to_string()),
                since,
                limit,
                unrecorded_before,
                outgoing,
            };
            list(c, &filter, json)
        }),
        StatementsCommand::Show { config, id, json } => with_config(&config.config, |c| show(c, &id, json)),
        StatementsCommand::Done { config, id, reason, by } => {
            with_config(&config.config, |c| done(c, &id, reason.as_deref(), &operator(by.by.as_deref())))
        }
        StatementsCommand::Reopen { config, id, by } => {
            with_config(&config.config, |c| reopen(c, &id, &operator(by.by.as_deref())))
        }
        StatementsCommand::Assign { config, id, address, clear: _, by } => {
            with_config(&config.config, |c| assign(c, &id, address.as_deref(), &operator(by.by.as_deref())))
        }
        StatementsCommand::Set { config, id, field, value, by } => {
            with_config(&config.config, |c| set(c, &id, field, &value, &operator(by.by.as_deref())))
        }
    }
}

/// Which statements by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StateFilter {
    Open,
    Done,
    /// Open, with a deadline before today.
    Overdue,
}

/// What `statements list` (and `export`) keep.
#[derive(Debug, Clone, Default)]
pub(super) struct Filter {
    pub state: Option<StateFilter>,
    pub org: Option<String>,
    /// `action`, `comment`, `information` or `response`.
    pub purpose: Option<String>,
    /// Received on or after (UTC).
    pub since: Option<Date>,
    pub limit: Option<usize>,
    /// Only those owed a record in the datatracker, without one, recorded here before this
    /// time (RFC 3339, UTC).
    pub unrecorded_before: Option<String>,
    /// Only those the IETF sent.
    pub outgoing: bool,
}

impl Filter {
    /// The records that pass, newest first, at most `limit`. Filtering is done here rather than
    /// in SQL: the table holds a few hundred statements a year, and this keeps the rules (an
    /// organisation's name in any case, dates in UTC) in one pure function.
    pub fn apply(&self, mut records: Vec<StatementRecord>, today: Date) -> Vec<StatementRecord> {
        records.retain(|r| self.keeps(r, today));
        records.reverse();
        if let Some(n) = self.limit {
            records.truncate(n);
        }
        records
    }

    fn keeps(&self, r: &StatementRecord, today: Date) -> bool {
        let state = match self.state {
            None => true,
            Some(StateFilter::Open) => r.state == "open",
            Some(StateFilter::Done) => r.state == "done",
            Some(StateFilter::Overdue) => overdue(r, today),
        };
        let org = self.org.as_deref().is_none_or(|want| {
            let want = want.trim().to_lowercase();
            [&r.organization, &r.from_org].into_iter().flatten().any(|name| name.trim().to_lowercase() == want)
        });
        let purpose = self.purpose.as_deref().is_none_or(|p| r.purpose.as_deref() == Some(p));
        let since = self.since.is_none_or(|since| date_of(&r.received_at) >= since.to_string());
        let unrecorded = self
            .unrecorded_before
            .as_deref()
            .is_none_or(|before| r.record_expected && r.datatracker_url.is_none() && r.created_at.as_str() < before);
        let direction = !self.outgoing || r.direction == "outgoing";
        state && org && purpose && since && unrecorded && direction
    }
}

/// Open, incoming, owing a reply (see `follow::awaits_reply`), and its deadline is before
/// today. A deadline that is not a date never is.
pub(super) fn overdue(r: &StatementRecord, today: Date) -> bool {
    // An outgoing statement's deadline is the other body's: the IETF is not late (as `status`).
    r.state == "open"
        && r.direction == "incoming"
        && liaisond_core::follow::awaits_reply(r.purpose.as_deref())
        && r.deadline.as_deref().and_then(|d| d.parse::<Date>().ok()).is_some_and(|d| d < today)
}

/// The statement a reference names, or a refusal (exit 65) saying it does not exist.
fn find(store: &Store, reference: &str) -> anyhow::Result<StatementRecord> {
    let record = store.statement_id(reference)?.map(|id| store.statement_record(id)).transpose()?.flatten();
    record.ok_or_else(|| {
        Refused::NotFound(format!(
            "there is no statement {reference} (give a tracking ID such as LS-2026-0003, or its number)"
        ))
        .into()
    })
}

/// The record as JSON, with the two things derived from it.
fn record_json(r: &StatementRecord, today: Date) -> anyhow::Result<serde_json::Value> {
    let mut value = serde_json::to_value(r)?;
    if let Some(o) = value.as_object_mut() {
        o.insert("received_date".into(), date_of(&r.received_at).into());
        o.insert("overdue".into(), overdue(r, today).into());
    }
    Ok(value)
}

fn list(config: Config, filter: &Filter, json: bool) -> anyhow::Result<u8> {
    let store = super::open_read_only(&config)?;
    let today = today(&config);
    let records = filter.apply(store.statement_records()?, today);
    drop(store);
    let mut out = output::stdout();
    if json {
        for r in &records {
            output::json_line(&mut out, &record_json(r, today)?)?;
        }
        return Ok(EX_OK);
    }
    let org = |r: &StatementRecord| r.from_org.clone().or_else(|| r.organization.clone()).unwrap_or_else(|| "-".into());
    let org_width = records.iter().map(|r| org(r).chars().count()).max().unwrap_or(0).clamp(3, 24);
    let header = format!(
        "{:<12}  {:<10}  {:<org_width$}  {:<11}  {:<10}  {:<7}  ",
        "TRACKING ID", "RECEIVED", "ORG", "PURPOSE", "DEADLINE", "STATE"
    );
    // In a terminal the title fills the rest of the line; in a pipe it is whole (for grep).
    let title_width = output::terminal_width().map(|w| w.saturating_sub(header.chars().count()).max(20));
    writeln!(out, "{header}TITLE")?;
    for r in &records {
        let title = r.title.as_deref().unwrap_or("(no title)");
        let state = if overdue(r, today) { "overdue" } else { r.state.as_str() };
        writeln!(
            out,
            "{:<12}  {:<10}  {:<org_width$}  {:<11}  {:<10}  {:<7}  {}",
            r.tracking_id,
            date_of(&r.received_at),
            truncate(&org(r), org_width),
            r.purpose.as_deref().unwrap_or("-"),
            r.deadline.as_deref().unwrap_or("-"),
            state,
            title_width.map_or_else(|| title.to_string(), |w| truncate(title, w)),
        )?;
    }
    if output::to_terminal() {
        writeln!(out, "{} statement(s)", records.len())?;
    }
    Ok(EX_OK)
}

fn show(config: Config, reference: &str, json: bool) -> anyhow::Result<u8> {
    let store = super::open_read_only(&config)?;
    let today = today(&config);
    let r = find(&store, reference)?;
    let reading = store.reading(r.message)?;
    let fields: Statement =
        reading.as_ref().and_then(|x| serde_json::from_str(&x.statement_json).ok()).unwrap_or_default();
    let warnings: Vec<String> =
        reading.as_ref().and_then(|x| serde_json::from_str(&x.warnings_json).ok()).unwrap_or_default();
    let attachments = reading.map(|x| x.attachments).unwrap_or_default();
    let messages = store.statement_messages(r.id)?;
    let outbox = store.statement_outbox(r.id)?;
    let events = store.statement_events(r.id)?;
    drop(store);
    let mut out = output::stdout();
    if json {
        let mut value = record_json(&r, today)?;
        if let Some(o) = value.as_object_mut() {
            o.insert("read".into(), serde_json::to_value(&fields)?);
            o.insert("warnings".into(), serde_json::to_value(&warnings)?);
            o.insert("attachments".into(), serde_json::to_value(&attachments)?);
            o.insert("messages".into(), serde_json::to_value(&messages)?);
            o.insert("outbox".into(), serde_json::to_value(&outbox)?);
            o.insert("events".into(), serde_json::to_value(&events)?);
        }
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
        return Ok(EX_OK);
    }

    let none = || "-".to_string();
    let list = |v: &[String]| if v.is_empty() { none() } else { v.join(", ") };
    // One line each: a value with a line break in it (a title, a name) must not add one.
    let line = |out: &mut output::Printable<std::io::StdoutLock<'_>>, label: &str, value: String| {
        writeln!(out, "{label:<17}{}", liaisond_model::printable(&value))
    };
    writeln!(out, "{} (statement {}, message {})", r.tracking_id, r.id, r.message)?;
    line(&mut out, "Title:", r.title.clone().unwrap_or_else(none))?;
    line(&mut out, "Purpose:", r.purpose.clone().unwrap_or_else(none))?;
    let deadline = match (&r.deadline, overdue(&r, today)) {
        (Some(d), true) => format!("{d} (overdue)"),
        (Some(d), false) => d.clone(),
        (None, _) => none(),
    };
    line(&mut out, "Deadline:", deadline)?;
    if r.direction == "outgoing" {
        line(&mut out, "Direction:", "outgoing: sent by the IETF; the other body's answer is awaited".into())?;
    }
    line(
        &mut out,
        "From:",
        format!("{} (groups: {})", r.from_org.clone().unwrap_or_else(none), list(&fields.from_groups)),
    )?;
    line(&mut out, "To groups:", list(&fields.to_groups))?;
    line(&mut out, "Contacts:", list(&fields.from_contacts))?;
    line(&mut out, "Reply to:", list(&fields.reply_to))?;
    line(&mut out, "Technical:", list(&fields.technical_contacts))?;
    line(&mut out, "Other IDs:", list(&fields.other_identifiers))?;
    if let Some(related) = &fields.related {
        line(&mut out, "Responds to:", related.clone())?;
    }
    line(&mut out, "Received:", format!("{} from {}", r.received_at, r.sender.clone().unwrap_or_else(none)))?;
    if let Some(date) = &r.date_header {
        line(&mut out, "Dated:", date.clone())?;
    }
    let recorded = match (&r.datatracker_url, &r.recorded_at) {
        (Some(url), Some(at)) => format!("{url} (learnt {at})"),
        (Some(url), None) => url.clone(),
        (None, _) if r.record_expected => "not yet".into(),
        (None, _) => "not known (held before liaisond followed the datatracker)".into(),
    };
    line(&mut out, "Datatracker:", recorded)?;
    let state = match r.state.as_str() {
        "done" => {
            let mut s = format!(
                "done {} by {}: {}",
                r.done_at.as_deref().unwrap_or("?"),
                r.done_by.as_deref().unwrap_or("?"),
                r.done_reason.as_deref().unwrap_or("(no reason given)")
            );
            if let Some(m) = r.done_message {
                s.push_str(&format!(" (answered by message {m})"));
            }
            s
        }
        other => other.to_string(),
    };
    line(&mut out, "State:", state)?;
    line(&mut out, "Assigned to:", r.assigned_to.clone().unwrap_or_else(|| "nobody (its route)".into()))?;
    line(&mut out, "Routed to:", format!("{}; cc {}", list(&r.route_to), list(&r.route_cc)))?;
    line(&mut out, "Why:", r.route_reason.clone())?;
    line(
        &mut out,
        "Rule:",
        format!(
            "{} (relationship {}, organisation {})",
            r.route_rule.clone().unwrap_or_else(none),
            r.relationship.clone().unwrap_or_else(none),
            r.organization.clone().unwrap_or_else(none)
        ),
    )?;
    line(
        &mut out,
        "Sender:",
        format!("{} ({})", if r.sender_verified { "verified" } else { "not verified" }, r.verification),
    )?;
    line(&mut out, "Acknowledgement:", r.ack.clone().or_else(|| r.no_ack.clone()).unwrap_or_else(none))?;
    for w in &warnings {
        line(&mut out, "Warning:", w.clone())?;
    }
    writeln!(out, "\nAttachments:")?;
    if attachments.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for (i, a) in attachments.iter().enumerate() {
        writeln!(
            out,
            "  {}. {}  {}  {} bytes  {}",
            i + 1,
            a.filename,
            a.content_type,
            a.size,
            match &a.error {
                Some(e) => format!("not read: {e}"),
                None => format!("{} characters of text", a.text_chars),
            }
        )?;
    }
    writeln!(out, "\nMail received:")?;
    for m in &messages {
        writeln!(
            out,
            "  message {:<5} {}  {:<11} {:<10} from {}: {}",
            m.id,
            m.received_at,
            m.state,
            m.class.map_or("-", Class::as_str),
            m.from.as_deref().unwrap_or("-"),
            m.subject.as_deref().unwrap_or("(no subject)")
        )?;
    }
    writeln!(out, "\nMail sent:")?;
    if outbox.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for o in &outbox {
        writeln!(
            out,
            "  outbox {:<5} {:<12} {:<10} {}  to {}: {}{}",
            o.id,
            o.kind,
            o.state,
            o.sent_at.as_deref().unwrap_or(&o.created_at),
            o.recipients.join(", "),
            o.subject,
            o.last_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        )?;
    }
    writeln!(out, "\nHistory:")?;
    for e in &events {
        let entry = format!(
            "  {}  message {:<5} {:<22} {}",
            e.at,
            e.message.map_or_else(none, |m| m.to_string()),
            e.kind,
            e.detail.as_deref().unwrap_or("")
        );
        writeln!(out, "{}", entry.trim_end())?;
    }
    Ok(EX_OK)
}

fn done(config: Config, reference: &str, reason: Option<&str>, by: &str) -> anyhow::Result<u8> {
    let mut store = open_existing(&config)?;
    let r = find(&store, reference)?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty()).unwrap_or("(no reason given)");
    let change = store.mark_done(r.id, by, reason).context("cannot mark it done")?;
    let mut out = output::stdout();
    match change {
        Change::Changed => writeln!(out, "{}: done (by {by}: {reason})", r.tracking_id)?,
        Change::Unchanged => {
            let now = store.statement_record(r.id)?.unwrap_or(r);
            writeln!(
                out,
                "{}: was done already ({} by {})",
                now.tracking_id,
                now.done_at.as_deref().unwrap_or("?"),
                now.done_by.as_deref().unwrap_or("?")
            )?
        }
        Change::NotFound => return Err(Refused::NotFound(format!("there is no statement {reference}")).into()),
    }
    Ok(EX_OK)
}

fn reopen(config: Config, reference: &str, by: &str) -> anyhow::Result<u8> {
    let mut store = open_existing(&config)?;
    let r = find(&store, reference)?;
    let mut out = output::stdout();
    match store.reopen(r.id, by).context("cannot reopen it")? {
        Change::Changed => writeln!(out, "{}: open again (by {by})", r.tracking_id)?,
        Change::Unchanged => writeln!(out, "{}: was open already", r.tracking_id)?,
        Change::NotFound => return Err(Refused::NotFound(format!("there is no statement {reference}")).into()),
    }
    Ok(EX_OK)
}

/// A bare e-mail address (`name@example.org`, no display name, no angle brackets).
pub(super) fn valid_address(text: &str) -> Result<String, Refused> {
    let t = text.trim();
    match t.parse::<lettre::Address>() {
        Ok(a) => Ok(a.to_string()),
        Err(e) => Err(Refused::Usage(format!("`{text}` is not an e-mail address such as manager@example.org ({e})"))),
    }
}

fn assign(config: Config, reference: &str, address: Option<&str>, by: &str) -> anyhow::Result<u8> {
    // Validated before the database is opened: a bad address changes nothing.
    let to = address.map(valid_address).transpose()?;
    let mut store = open_existing(&config)?;
    let r = find(&store, reference)?;
    let edit = store.assign_statement(r.id, to.as_deref(), by).context("cannot assign it")?;
    let mut out = output::stdout();
    match (edit, &to) {
        (Edit::Changed { old }, Some(to)) => {
            writeln!(out, "{}: assigned to {to} (was {})", r.tracking_id, old.as_deref().unwrap_or("nobody"))?
        }
        (Edit::Changed { old }, None) => {
            writeln!(out, "{}: no longer assigned (was {})", r.tracking_id, old.as_deref().unwrap_or("nobody"))?
        }
        (Edit::Unchanged, Some(to)) => writeln!(out, "{}: already assigned to {to}", r.tracking_id)?,
        (Edit::Unchanged, None) => writeln!(out, "{}: was not assigned", r.tracking_id)?,
        (Edit::NotFound, _) => return Err(Refused::NotFound(format!("there is no statement {reference}")).into()),
    }
    Ok(EX_OK)
}

/// The value to store for a field (`None` clears it), or a refusal (exit 64) saying what is
/// expected.
pub(super) fn field_value(field: Field, text: &str) -> Result<Option<String>, Refused> {
    let t = text.trim();
    let plain = |what: &str| {
        if t.is_empty() || t.chars().any(char::is_control) {
            Err(Refused::Usage(format!("{what} must be one line of text, not empty")))
        } else {
            Ok(Some(t.to_string()))
        }
    };
    match field {
        Field::Title => plain("a title"),
        Field::FromOrg => plain("from_org"),
        Field::Purpose => Purpose::from_str(t, true).map(|p| Some(p.as_str().to_string())).map_err(|_| {
            Refused::Usage(format!("`{text}` is not a purpose: one of action, comment, information, response"))
        }),
        Field::Deadline if t.eq_ignore_ascii_case("none") => Ok(None),
        Field::Deadline => parse_date("deadline", t).map(|d| Some(d.to_string())),
    }
}

fn set(config: Config, reference: &str, field: Field, value: &str, by: &str) -> anyhow::Result<u8> {
    let value = field_value(field, value)?;
    let column = match field {
        Field::Title => StatementField::Title,
        Field::Purpose => StatementField::Purpose,
        Field::Deadline => StatementField::Deadline,
        Field::FromOrg => StatementField::FromOrg,
    };
    let mut store = open_existing(&config)?;
    let r = find(&store, reference)?;
    let edit = store.set_statement_field(r.id, column, value.as_deref(), by).context("cannot change it")?;
    let shown = |v: Option<&str>| v.map_or("none".to_string(), str::to_string);
    let mut out = output::stdout();
    match edit {
        Edit::Changed { old } => writeln!(
            out,
            "{}: {} {} -> {}",
            r.tracking_id,
            column.as_str(),
            shown(old.as_deref()),
            shown(value.as_deref())
        )?,
        Edit::Unchanged => {
            writeln!(out, "{}: {} is {} already", r.tracking_id, column.as_str(), shown(value.as_deref()))?
        }
        Edit::NotFound => return Err(Refused::NotFound(format!("there is no statement {reference}")).into()),
    }
    Ok(EX_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        n: i64,
        org: &str,
        purpose: &str,
        deadline: Option<&str>,
        state: &str,
        received: &str,
    ) -> StatementRecord {
        StatementRecord {
            id: n,
            tracking_id: format!("LS-2026-{n:04}"),
            message: n,
            received_at: received.into(),
            created_at: received.into(),
            title: Some(format!("statement {n}")),
            purpose: Some(purpose.into()),
            deadline: deadline.map(str::to_string),
            from_org: Some(org.into()),
            sender: None,
            sender_verified: false,
            verification: String::new(),
            relationship: None,
            organization: Some(format!("{org} (canonical)")),
            route_rule: None,
            route_to: vec![],
            route_cc: vec![],
            route_reason: String::new(),
            candidates: vec![],
            no_ack: None,
            ack: None,
            assigned_to: None,
            state: state.into(),
            done_at: None,
            done_by: None,
            done_reason: None,
            done_message: None,
            datatracker_url: None,
            recorded_at: None,
            record_expected: true,
            date_header: None,
            direction: "incoming".into(),
        }
    }

    fn sample() -> Vec<StatementRecord> {
        vec![
            record(1, "ITU-T", "action", Some("2026-11-22"), "open", "2026-11-01T10:00:00.000Z"),
            record(2, "3GPP", "information", None, "open", "2026-11-10T10:00:00.000Z"),
            record(3, "itu-t", "comment", Some("2026-11-20"), "done", "2026-11-15T23:30:00-05:00"),
            record(4, "IEEE 802", "action", Some("2026-11-23"), "open", "2026-11-20T00:00:00.000Z"),
        ]
    }

    fn ids(filter: &Filter) -> Vec<i64> {
        let today: Date = "2026-11-23".parse().expect("date");
        filter.apply(sample(), today).iter().map(|r| r.id).collect()
    }

    fn date(s: &str) -> Option<Date> {
        Some(s.parse().expect("date"))
    }

    #[test]
    fn filters_by_state_org_purpose_and_date() {
        assert_eq!(ids(&Filter::default()), vec![4, 3, 2, 1], "newest first");
        assert_eq!(ids(&Filter { state: Some(StateFilter::Open), ..Filter::default() }), vec![4, 2, 1]);
        assert_eq!(ids(&Filter { state: Some(StateFilter::Done), ..Filter::default() }), vec![3]);
        // Due today is not overdue; done is never overdue; no deadline is never overdue.
        assert_eq!(ids(&Filter { state: Some(StateFilter::Overdue), ..Filter::default() }), vec![1]);
        assert_eq!(ids(&Filter { org: Some("ITU-T".into()), ..Filter::default() }), vec![3, 1], "any case");
        assert_eq!(ids(&Filter { org: Some(" ieee 802 (CANONICAL) ".into()), ..Filter::default() }), vec![4]);
        assert!(ids(&Filter { org: Some("ITU".into()), ..Filter::default() }).is_empty(), "the whole name");
        assert_eq!(ids(&Filter { purpose: Some("action".into()), ..Filter::default() }), vec![4, 1]);
        // 23:30 in New York on the 15th is the 16th in UTC.
        assert_eq!(ids(&Filter { since: date("2026-11-16"), ..Filter::default() }), vec![4, 3]);
        assert_eq!(ids(&Filter { since: date("2026-11-17"), ..Filter::default() }), vec![4]);
        assert_eq!(ids(&Filter { limit: Some(2), ..Filter::default() }), vec![4, 3]);
        let all = Filter {
            state: Some(StateFilter::Open),
            purpose: Some("action".into()),
            since: date("2026-11-01"),
            limit: Some(1),
            ..Filter::default()
        };
        assert_eq!(ids(&all), vec![4]);
    }

    #[test]
    fn unrecorded_means_owed_a_record_without_one_and_late() {
        let mut records = sample();
        records[0].datatracker_url = Some("https://datatracker.ietf.org/liaison/1/".into());
        records[1].record_expected = false;
        let today: Date = "2026-11-23".parse().expect("date");
        let filter = Filter { unrecorded_before: Some("2026-11-16T00:00:00.000Z".into()), ..Filter::default() };
        // 1 is recorded, 2 was held before records were followed, 4 is not late yet; 3 (done)
        // is listed: a closed statement still belongs in the datatracker.
        let kept: Vec<i64> = filter.apply(records, today).iter().map(|r| r.id).collect();
        assert_eq!(kept, vec![3]);
    }

    #[test]
    fn outgoing_means_sent_by_the_ietf() {
        let mut records = sample();
        records[1].direction = "outgoing".into();
        let today: Date = "2026-11-23".parse().expect("date");
        let filter = Filter { outgoing: true, state: Some(StateFilter::Open), ..Filter::default() };
        let kept: Vec<i64> = filter.apply(records, today).iter().map(|r| r.id).collect();
        assert_eq!(kept, vec![2]);
    }

    #[test]
    fn field_values_are_validated() {
        assert_eq!(field_value(Field::Deadline, "2027-04-01").expect("date"), Some("2027-04-01".into()));
        assert_eq!(field_value(Field::Deadline, "None").expect("clear"), None);
        assert_eq!(field_value(Field::Purpose, "Info").expect("alias"), Some("information".into()));
        assert_eq!(field_value(Field::Title, "  A title ").expect("title"), Some("A title".into()));
        for (field, bad) in [
            (Field::Deadline, "2027-13-01"),
            (Field::Deadline, "next week"),
            (Field::Purpose, "urgent"),
            (Field::Title, " "),
            (Field::FromOrg, "two\nlines"),
        ] {
            let e = field_value(field, bad).expect_err(bad);
            assert_eq!(e.code(), output::EX_USAGE, "{bad}");
        }
    }

    #[test]
    fn addresses_are_bare_and_valid() {
        assert_eq!(valid_address(" manager6@example.org ").expect("valid"), "manager6@example.org");
        for bad in ["manager6", "Ana <ana@example.org>", "a@b@c", "ana@", "@example.org", "a b@example.org"] {
            assert_eq!(valid_address(bad).expect_err(bad).code(), output::EX_USAGE, "{bad}");
        }
    }
}
