//! `liaisond export`: statements with the IETF datatracker's field names, so that a coordinator
//! can enter them there without retyping. JSON (an array of objects, list fields as arrays) or
//! CSV (RFC 4180: a header line, CRLF line ends, list fields joined with ", ").

use std::io::Write;

use clap::ValueEnum;

use super::output::{date_of, parse_date, today};
use super::statements::{Filter, StateFilter};
use super::{EX_OK, open_read_only, with_config};
use crate::config::Config;
use liaisond_model::Statement;
use liaisond_store::StatementRecord;

#[derive(Debug, clap::Args)]
pub(super) struct ExportArgs {
    #[command(flatten)]
    config: super::ConfigArg,
    /// json: an array of objects; csv: RFC 4180 with a header line.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Only open statements.
    #[arg(long)]
    open: bool,
    /// Only those received on or after this date (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Csv,
}

pub(super) fn run(args: ExportArgs) -> u8 {
    let ExportArgs { config, format, open, since } = args;
    with_config(&config.config, |c| {
        let since = since.as_deref().map(|s| parse_date("--since", s)).transpose()?;
        let filter = Filter { state: open.then_some(StateFilter::Open), since, ..Filter::default() };
        export(c, &filter, format)
    })
}

/// One statement as the datatracker's liaison form names its fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct DatatrackerRow {
    pub tracking_id: String,
    pub title: String,
    /// `YYYY-MM-DD`, when it was received (UTC).
    pub submitted_date: String,
    pub from_groups: Vec<String>,
    pub from_contact: String,
    pub to_groups: Vec<String>,
    pub to_contacts: Vec<String>,
    pub response_contacts: Vec<String>,
    pub technical_contacts: Vec<String>,
    pub cc_contacts: Vec<String>,
    /// `action`, `comment`, `info` or `response` (empty when not known).
    pub purpose: String,
    pub deadline: Option<String>,
    pub other_identifiers: Vec<String>,
    pub body: String,
    /// Attachment file names.
    pub attachments: Vec<String>,
    /// Its page in the datatracker, once recorded (empty: not yet, or not known).
    pub datatracker_url: String,
    /// Who answers for it: the assignee, else empty (the datatracker's action holder).
    pub action_holder_contacts: Vec<String>,
    /// The statement it responds to, as it says.
    pub related: String,
    /// The statement's own date: its message's `Date:` field as `YYYY-MM-DD` in the sender's
    /// own offset.
    pub statement_date: String,
}

/// The header line of the CSV, in the order of [`DatatrackerRow`].
const COLUMNS: &[&str] = &[
    "tracking_id",
    "title",
    "submitted_date",
    "from_groups",
    "from_contact",
    "to_groups",
    "to_contacts",
    "response_contacts",
    "technical_contacts",
    "cc_contacts",
    "purpose",
    "deadline",
    "other_identifiers",
    "body",
    "attachments",
    "datatracker_url",
    "action_holder_contacts",
    "related",
    "statement_date",
];

impl DatatrackerRow {
    /// The record (with the operator's corrections: title, purpose, deadline) and what was
    /// read from its message. The datatracker's `from_contact` is one address: the first
    /// contact the statement names, else its sender. `to_contacts` are who answers for it here
    /// (the assignee, else the people it was routed to); `cc_contacts` whom the notification
    /// copied.
    pub fn new(r: &StatementRecord, read: &Statement, attachments: Vec<String>) -> DatatrackerRow {
        DatatrackerRow {
            tracking_id: r.tracking_id.clone(),
            title: r.title.clone().unwrap_or_default(),
            submitted_date: date_of(&r.received_at),
            from_groups: read.from_groups.clone(),
            from_contact: read.from_contacts.first().cloned().or_else(|| r.sender.clone()).unwrap_or_default(),
            to_groups: read.to_groups.clone(),
            to_contacts: match &r.assigned_to {
                Some(a) => vec![a.clone()],
                None => r.route_to.clone(),
            },
            response_contacts: read.reply_to.clone(),
            technical_contacts: read.technical_contacts.clone(),
            cc_contacts: r.route_cc.clone(),
            purpose: match r.purpose.as_deref() {
                Some("information") => "info".into(),
                Some(p) => p.to_string(),
                None => String::new(),
            },
            deadline: r.deadline.clone(),
            other_identifiers: read.other_identifiers.clone(),
            body: read.body.clone(),
            attachments,
            datatracker_url: r.datatracker_url.clone().unwrap_or_default(),
            action_holder_contacts: r.assigned_to.iter().cloned().collect(),
            related: read.related.clone().unwrap_or_default(),
            statement_date: r.date_header.as_deref().map(date_written).unwrap_or_default(),
        }
    }

    fn csv_fields(&self) -> Vec<String> {
        let list = |v: &[String]| v.join(", ");
        vec![
            self.tracking_id.clone(),
            self.title.clone(),
            self.submitted_date.clone(),
            list(&self.from_groups),
            self.from_contact.clone(),
            list(&self.to_groups),
            list(&self.to_contacts),
            list(&self.response_contacts),
            list(&self.technical_contacts),
            list(&self.cc_contacts),
            self.purpose.clone(),
            self.deadline.clone().unwrap_or_default(),
            list(&self.other_identifiers),
            self.body.clone(),
            list(&self.attachments),
            self.datatracker_url.clone(),
            list(&self.action_holder_contacts),
            self.related.clone(),
            self.statement_date.clone(),
        ]
    }
}

/// The day the sender wrote a statement, in the sender's own offset: the store keeps its
/// `Date:` field as RFC 3339 with that offset (`2026-11-18T09:02:17+01:00`); an RFC 5322 date
/// is read too. Kept as written when it is neither.
fn date_written(date: &str) -> String {
    let date = date.trim();
    if date.parse::<jiff::Timestamp>().is_ok() {
        return date.get(..10).unwrap_or(date).to_string();
    }
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_zoned(date)
        .map(|z| z.date().to_string())
        .unwrap_or_else(|_| liaisond_model::printable(date))
}

fn export(config: Config, filter: &Filter, format: Format) -> anyhow::Result<u8> {
    let store = open_read_only(&config)?;
    // Oldest first: the order they would be entered in.
    let mut records = filter.apply(store.statement_records()?, today(&config));
    records.reverse();
    let mut rows = Vec::with_capacity(records.len());
    for r in &records {
        let reading = store.reading(r.message)?;
        let read: Statement =
            reading.as_ref().and_then(|x| serde_json::from_str(&x.statement_json).ok()).unwrap_or_default();
        let attachments = reading.map(|x| x.attachments.into_iter().map(|a| a.filename).collect()).unwrap_or_default();
        rows.push(DatatrackerRow::new(r, &read, attachments));
    }
    drop(store);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut csv = CsvWriter::new(&mut out);
            csv.record(COLUMNS)?;
            for row in &rows {
                csv.record(&row.csv_fields())?;
            }
        }
    }
    out.flush()?;
    Ok(EX_OK)
}

/// A CSV writer as RFC 4180 §2 says: records end with CRLF; a field holding a comma, a double
/// quote, a CR or an LF is enclosed in double quotes, with each double quote inside doubled.
/// A field that starts or ends with a space is quoted too, so a spreadsheet keeps the space.
pub(super) struct CsvWriter<W: Write> {
    out: W,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> CsvWriter<W> {
        CsvWriter { out }
    }

    pub fn record<S: AsRef<str>>(&mut self, fields: &[S]) -> std::io::Result<()> {
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            // A cell a spreadsheet would run as a formula (`=HYPERLINK(…)`, `+`, `-`, `@`, a tab
            // or CR first) gets a leading `'`: titles and names come from senders (OWASP's
            // CSV injection advice).
            let f = field.as_ref();
            let f: std::borrow::Cow<'_, str> =
                if f.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{f}").into() } else { f.into() };
            let quote = f.contains([',', '"', '\r', '\n']) || f.starts_with(' ') || f.ends_with(' ');
            if quote {
                self.out.write_all(b"\"")?;
                self.out.write_all(f.replace('"', "\"\"").as_bytes())?;
                self.out.write_all(b"\"")?;
            } else {
                self.out.write_all(f.as_bytes())?;
            }
        }
        self.out.write_all(b"\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(records: &[&[&str]]) -> String {
        let mut buffer = Vec::new();
        let mut w = CsvWriter::new(&mut buffer);
        for r in records {
            w.record(r).expect("write");
        }
        String::from_utf8(buffer).expect("utf8")
    }

    #[test]
    fn csv_quotes_what_rfc_4180_says_and_nothing_else() {
        assert_eq!(csv(&[&["a", "b c", ""], &["1", "2", "3"]]), "a,b c,\r\n1,2,3\r\n");
        assert_eq!(csv(&[&["x, y"]]), "\"x, y\"\r\n");
        assert_eq!(csv(&[&["say \"hi\""]]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(
            csv(&[&["two\nlines", "cr\rhere", "crlf\r\nend"]]),
            "\"two\nlines\",\"cr\rhere\",\"crlf\r\nend\"\r\n"
        );
        assert_eq!(csv(&[&[" padded", "é,ü \"ß\""]]), "\" padded\",\"é,ü \"\"ß\"\"\"\r\n");
        assert_eq!(csv(&[&["\""]]), "\"\"\"\"\r\n");
    }

    #[test]
    fn cells_a_spreadsheet_would_run_are_neutralised() {
        // Regression (issue 13): a statement titled `=HYPERLINK(…)` became a live formula.
        assert_eq!(
            csv(&[&["=HYPERLINK(\"http://evil.example\")", "+1", "-2", "@SUM(A1)"]]),
            "\"'=HYPERLINK(\"\"http://evil.example\"\")\",'+1,'-2,'@SUM(A1)\r\n"
        );
        assert_eq!(csv(&[&["\tx", "\rx", "a=b"]]), "'\tx,\"'\rx\",a=b\r\n");
    }

    #[test]
    fn the_statement_date_is_the_day_its_sender_wrote() {
        assert_eq!(date_written("Wed, 18 Nov 2026 09:02:17 +0100"), "2026-11-18");
        assert_eq!(date_written("2026-11-18T00:30:00+13:00"), "2026-11-18", "as stored: the sender's offset");
        assert_eq!(date_written("Wed, 18 Nov 2026 00:30:00 +1300"), "2026-11-18", "not moved to UTC");
        assert_eq!(date_written("yesterday\n"), "yesterday", "kept as written when it is not a date");
    }

    #[test]
    fn a_row_uses_the_datatracker_names_and_values() {
        let r = StatementRecord {
            id: 1,
            tracking_id: "LS-2026-0001".into(),
            message: 1,
            received_at: "2026-11-03T23:30:00-05:00".into(),
            created_at: String::new(),
            title: Some("LS on \"slicing\", part 2".into()),
            purpose: Some("information".into()),
            deadline: None,
            from_org: Some("ITU-T".into()),
            sender: Some("tsb@itu.int".into()),
            sender_verified: true,
            verification: String::new(),
            relationship: None,
            organization: None,
            route_rule: None,
            route_to: vec!["m1@example.org".into(), "m2@example.org".into()],
            route_cc: vec!["coord@example.org".into()],
            route_reason: String::new(),
            candidates: vec![],
            no_ack: None,
            ack: None,
            assigned_to: Some("helper@example.org".into()),
            state: "open".into(),
            done_at: None,
            done_by: None,
            done_reason: None,
            done_message: None,
            datatracker_url: Some("https://datatracker.ietf.org/liaison/2099/".into()),
            recorded_at: None,
            record_expected: true,
            date_header: Some("2026-11-03T23:10:00-05:00".into()),
            direction: "incoming".into(),
        };
        let read = Statement {
            from_groups: vec!["itu-t-sg-13".into()],
            to_groups: vec!["teas".into(), "ccamp".into()],
            reply_to: vec!["tsb@itu.int".into()],
            body: "Dear IETF,\nplease comment.".into(),
            ..Statement::default()
        };
        let row = DatatrackerRow::new(&r, &read, vec!["LS42.docx".into()]);
        assert_eq!(row.purpose, "info");
        assert_eq!(row.submitted_date, "2026-11-04", "UTC");
        assert_eq!(row.from_contact, "tsb@itu.int", "the sender when no contact is named");
        assert_eq!(row.to_contacts, vec!["helper@example.org"], "the assignee answers for it");
        assert_eq!(row.action_holder_contacts, vec!["helper@example.org"]);
        assert_eq!(row.datatracker_url, "https://datatracker.ietf.org/liaison/2099/");
        assert_eq!(row.statement_date, "2026-11-03", "the day in the sender's own offset");
        assert_eq!(row.related, "");
        let fields = row.csv_fields();
        assert_eq!(fields.len(), COLUMNS.len());
        assert_eq!(fields[5], "teas, ccamp");
        assert_eq!(fields[11], "", "no deadline");
        let line = csv(&[&fields.iter().map(String::as_str).collect::<Vec<_>>()]);
        assert!(line.starts_with("LS-2026-0001,\"LS on \"\"slicing\"\", part 2\",2026-11-04,"), "{line}");
        assert!(
            line.contains(
                ",\"Dear IETF,\nplease comment.\",LS42.docx,https://datatracker.ietf.org/liaison/2099/,\
                 helper@example.org,,2026-11-03\r\n"
            ),
            "{line}"
        );
        let json = serde_json::to_value(&row).expect("json");
        let keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
        let mut columns = COLUMNS.to_vec();
        columns.sort();
        assert_eq!(keys, columns, "JSON and CSV name the same fields");
    }
}
