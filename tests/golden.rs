//! Golden tests of every mail template's output (issue 15, part 3): each kind of mail
//! liaisond sends, rendered from the built-in templates with fixed inputs, compared with
//! `tests/golden/<name>.txt` (the headers a reader sees, then the body).
//!
//! After changing a template on purpose, run `LIAISOND_BLESS=1 cargo test --test golden`,
//! then read every changed file in `git diff` before committing it: the files are what people
//! get.
//!
//! Whatever the golden files say, every mail must: stay within 72 columns (but for a URL, which
//! is never broken), name no shell command (no line starts with `liaisond `), and carry the
//! statement's tracking ID in `X-Liaison-Tracking-ID` when it is about one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use liaisond_core::follow::{self, DigestInput, Ladder, Step};
use liaisond_core::parse::Parsed;
use liaisond_core::read::Analysis;
use liaisond_core::relationships::Relationships;
use liaisond_core::respond::{AckPolicy, RecordedMessage, Responder, Templates};
use liaisond_core::wrap::WIDTH;
use liaisond_model::{
    AckCounts, AttachmentRecord, Class, CommandResult, Draft, DraftKind, FollowRow, OutboxRow, Purpose, QuarantinedRow,
    Statement, Verdict,
};

const NOW: &str = "2026-11-23T08:00:00Z";
const MANAGER: &str = "mireille.fontaine@example.org";
const BACKUP: &str = "tomasz.wieczorek@example.net";
const COORDINATORS: &str = "liaison-coordination@iab.org";

fn now() -> Timestamp {
    NOW.parse().expect("now")
}

fn responder() -> Responder {
    let mut r = Responder::new(
        AckPolicy::default(),
        Duration::from_secs(30 * 24 * 3600),
        20 * 1024 * 1024,
        Templates::builtin().expect("built-in templates"),
        "IAB Liaison Coordination <liaison-coordination@iab.org>".into(),
        COORDINATORS.into(),
        "iab.org".into(),
    );
    // The sample experts data, as `experts = ".../ietf-experts.toml"` would load it.
    r.experts = liaisond_core::experts::Experts::builtin();
    r
}

/// The message the statement came in.
const RAW: &[u8] = b"Message-ID: <sg15-ls123@itu.int>\r\nFrom: TSB SG15 <tsbsg15@itu.int>\r\n\
Subject: LS on YANG models for OTN and beyond-100G optical interfaces\r\n\r\nx";

fn statement(purpose: Purpose, deadline: Option<&str>) -> Statement {
    Statement {
        title: Some("LS on YANG models for OTN and beyond-100G optical interfaces".into()),
        purpose: Some(purpose),
        deadline: deadline.map(str::to_string),
        from_org: Some("ITU-T".into()),
        from_groups: vec!["SG15".into()],
        to_groups: vec!["detnet".into(), "teas".into(), "nmrg".into(), "an unknown group".into()],
        from_contacts: vec!["Hiroshi Tanaka <hiroshi.tanaka@example-telecom.com>".into()],
        reply_to: vec!["tsbsg15@itu.int".into()],
        technical_contacts: vec!["Anna Lindqvist <anna.lindqvist@example-networks.se>".into()],
        other_identifiers: vec!["SG15-LS123".into(), "COM 15-R 42".into()],
        related: None,
        body: "ITU-T Study Group 15 asks the IETF to comment on three points.".into(),
    }
}

fn analysis(st: Statement, subject: &str, reply_text: &str) -> Analysis {
    Analysis {
        message_id: Some("sg15-ls123@itu.int".into()),
        subject: Some(subject.into()),
        sender: Some("tsbsg15@itu.int".into()),
        statement: st,
        attachments: vec![AttachmentRecord {
            filename: "T22-SG15-LS123-attachment-with-a-rather-long-file-name.docx".into(),
            content_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document".into(),
            size: 48_213,
            sha256: "9f2c4e1a6b7d8c0e3f5a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e".into(),
            kind: "docx".into(),
            depth: 0,
            text_chars: 8_000,
            error: None,
        }],
        warnings: vec![],
        reply_text: reply_text.into(),
    }
}

fn verdict(class: Class) -> Verdict {
    Verdict {
        sender: Some("tsbsg15@itu.int".into()),
        sender_verified: true,
        verification: "DMARC pass for itu.int (mail.ietf.org)".into(),
        relationship: Some("itu-t".into()),
        organization: Some("ITU-T".into()),
        rule: Some("address".into()),
        to: vec![MANAGER.into(), BACKUP.into()],
        cc: vec![COORDINATORS.into()],
        route_reason: "matched ITU-T (itu-t) by address: to its liaison managers".into(),
        ..Verdict::new(class, "reads like a liaison statement (title, purpose, deadline)")
    }
}

fn plan(verdict: &Verdict, analysis: &Analysis, tracking_id: &str, commands: &[CommandResult]) -> Vec<Draft> {
    let parsed = Parsed::new(RAW);
    let incoming = RecordedMessage {
        tracking_id: Some(tracking_id),
        message: 42,
        verdict,
        analysis,
        headers: &parsed.headers,
        received: now() - jiff::SignedDuration::from_mins(10),
        now: now(),
        nonce: 7,
        size: 60_000,
        commands,
    };
    responder().plan(&incoming, &Relationships::builtin(), &|_| AckCounts::default()).drafts
}

fn one(drafts: Vec<Draft>, kind: DraftKind) -> Draft {
    drafts.into_iter().find(|d| d.kind == kind).unwrap_or_else(|| panic!("no {kind:?}"))
}

fn follow_row(n: i64, title: &str, purpose: &str, deadline: Option<&str>, url: Option<&str>) -> FollowRow {
    FollowRow {
        id: n,
        tracking_id: format!("LS-2026-{n:04}"),
        message: n,
        title: Some(title.into()),
        organization: Some("ITU-T".into()),
        purpose: Some(purpose.into()),
        deadline: deadline.map(str::to_string),
        received: "2026-11-02T09:14:00Z".into(),
        created_at: "2026-11-02T09:14:01.000Z".into(),
        state: "open".into(),
        route_to: vec![MANAGER.into(), BACKUP.into()],
        assigned_to: None,
        message_id: Some(format!("ls-{n}@itu.int")),
        reply_to: vec!["tsbsg15@itu.int".into()],
        datatracker_url: url.map(str::to_string),
        outgoing: false,
        done_at: None,
    }
}

/// The mail as a reader sees it: the headers that matter, then the body.
fn shown(d: &Draft) -> String {
    let mut s = String::new();
    s.push_str(&format!("To: {}\n", d.to.join(", ")));
    if !d.cc.is_empty() {
        s.push_str(&format!("Cc: {}\n", d.cc.join(", ")));
    }
    if !d.reply_to.is_empty() {
        s.push_str(&format!("Reply-To: {}\n", d.reply_to.join(", ")));
    }
    if let Some(id) = &d.tracking_id {
        s.push_str(&format!("X-Liaison-Tracking-ID: {id}\n"));
    }
    s.push_str(&format!("Auto-Submitted: {}\n", d.auto_submitted));
    s.push_str(&format!("Subject: {}\n\n{}", d.subject, d.body));
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

fn golden(name: &str, d: &Draft) {
    for line in d.body.lines() {
        let long = line.chars().count() > WIDTH;
        assert!(!long || !line.trim().contains(' '), "{name}: a line over {WIDTH} columns:\n{line}");
        let shell = line.trim_start().starts_with("liaisond ") || line.contains("`liaisond ");
        assert!(!shell, "{name}: a shell command:\n{line}");
    }
    let text = shown(d);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.txt"));
    if std::env::var_os("LIAISOND_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &text).expect("write");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (LIAISOND_BLESS=1 writes it)", path.display()));
    assert_eq!(text, expected, "{name} differs from {}", path.display());
}

#[test]
fn notification_of_a_statement() {
    let a = analysis(statement(Purpose::Action, Some("2027-03-01")), "LS on YANG models", "");
    let d = one(plan(&verdict(Class::Statement), &a, "LS-2026-0042", &[]), DraftKind::Notification);
    assert!(d.body.contains("Deterministic Networking (detnet)"), "{}", d.body);
    assert_eq!(d.tracking_id.as_deref(), Some("LS-2026-0042"));
    golden("notification-statement", &d);
}

#[test]
fn notification_of_a_statement_without_a_deadline() {
    // For information: nothing about a deadline (the `Deadline:` command a reply may carry is
    // listed, indented, with the others).
    let a = analysis(statement(Purpose::Information, None), "LS on YANG models", "");
    let d = one(plan(&verdict(Class::Statement), &a, "LS-2026-0043", &[]), DraftKind::Notification);
    assert!(!d.body.lines().any(|l| l.starts_with("Deadline")), "{}", d.body);
    golden("notification-information", &d);
    // For action with none: said once, with how to set one.
    let a = analysis(statement(Purpose::Action, None), "LS on YANG models", "");
    let d = one(plan(&verdict(Class::Statement), &a, "LS-2026-0044", &[]), DraftKind::Notification);
    golden("notification-no-deadline", &d);
}

#[test]
fn notification_of_a_follow_up_links_the_record() {
    let mut v = verdict(Class::FollowUp);
    v.reason = "it names LS-2026-0042".into();
    v.datatracker_url = Some("https://datatracker.ietf.org/liaison/2099/".into());
    let a = analysis(Statement::default(), "Re: [LS-2026-0042] LS on YANG models", "");
    let d = one(plan(&v, &a, "LS-2026-0042", &[]), DraftKind::Notification);
    golden("notification-follow-up", &d);
}

#[test]
fn acknowledgement_and_receipt() {
    let a = analysis(statement(Purpose::Action, Some("2027-03-01")), "LS on YANG models", "");
    golden("ack", &one(plan(&verdict(Class::Statement), &a, "LS-2026-0042", &[]), DraftKind::Ack));
    let mut v = verdict(Class::Statement);
    v.sender_verified = false;
    v.verification = "no DMARC result from our servers".into();
    let parsed = Parsed::new(b"Return-Path: <tsbsg15@itu.int>\r\nFrom: tsbsg15@itu.int\r\n\r\nx");
    let incoming = RecordedMessage {
        tracking_id: Some("LS-2026-0042"),
        message: 42,
        verdict: &v,
        analysis: &a,
        headers: &parsed.headers,
        received: now(),
        now: now(),
        nonce: 7,
        size: 10,
        commands: &[],
    };
    let drafts = responder().plan(&incoming, &Relationships::builtin(), &|_| AckCounts::default()).drafts;
    golden("receipt", &one(drafts, DraftKind::Ack));
}

#[test]
fn reminders() {
    let r = responder();
    let rel = Relationships::builtin();
    let row = follow_row(
        42,
        "LS on YANG models for OTN and beyond-100G optical interfaces",
        "action",
        Some("2027-03-01"),
        None,
    );
    let deadline: Date = "2027-03-01".parse().expect("date");
    let ladder = Ladder::default();
    let today: Date = "2027-02-22".parse().expect("date");
    let d = follow::reminder_draft(&r, &rel, &row, deadline, Step::Before(7), &ladder, today, now(), 1);
    golden("reminder", &d);
    let recorded = FollowRow { datatracker_url: Some("https://datatracker.ietf.org/liaison/2099/".into()), ..row };
    let today: Date = "2027-03-15".parse().expect("date");
    let d = follow::reminder_draft(&r, &rel, &recorded, deadline, Step::Overdue(14), &ladder, today, now(), 1);
    golden("reminder-overdue-last", &d);
}

#[test]
fn not_recorded_reminder() {
    let row = follow_row(42, "LS on YANG models for OTN and beyond-100G optical interfaces", "information", None, None);
    let d = follow::record_reminder_draft(
        &responder(),
        &Relationships::builtin(),
        &row,
        Duration::from_secs(7 * 24 * 3600),
        now(),
        1,
    );
    assert!(!d.body.lines().any(|l| l.starts_with("Deadline")), "{}", d.body);
    golden("unrecorded", &d);
}

#[test]
fn digest() {
    let open = vec![
        follow_row(
            40,
            "LS on packet timing",
            "action",
            Some("2026-11-20"),
            Some("https://datatracker.ietf.org/liaison/2090/"),
        ),
        follow_row(
            41,
            "LS on YANG models for OTN and beyond-100G optical interfaces",
            "comment",
            Some("2026-12-15"),
            None,
        ),
        follow_row(42, "LS on network slicing terminology", "action", None, None),
    ];
    let mut open = open;
    open.push(FollowRow {
        organization: Some("Broadband Forum".into()),
        outgoing: true,
        ..follow_row(
            39,
            "LS on YANG data models for access networks",
            "action",
            Some("2026-11-21"),
            Some("https://datatracker.ietf.org/liaison/3001/"),
        )
    });
    let received = vec![open[2].clone()];
    let quarantined = vec![QuarantinedRow {
        id: 77,
        received_at: "2026-11-20T10:00:00Z".into(),
        subject: Some("Invoice".into()),
        from: Some("billing@example.com".into()),
        reason: Some("the stage time limit passed three times".into()),
    }];
    let failed: Vec<OutboxRow> = Vec::new();
    let check_ins = HashMap::new();
    let check_ins_asked = HashMap::from([(MANAGER.to_string(), "2026-11-09".to_string())]);
    let unrecorded = vec![open[1].clone()];
    let input = DigestInput {
        since: "2026-11-16T08:00:00Z",
        today: "2026-11-23".parse().expect("date"),
        time_zone: &jiff::tz::TimeZone::UTC,
        open: &open,
        received: &received,
        quarantined: &quarantined,
        failed: &failed,
        check_ins: &check_ins,
        check_ins_asked: &check_ins_asked,
        check_in_after: Duration::from_secs(365 * 24 * 3600),
        unrecorded: &unrecorded,
        record_within: Duration::from_secs(7 * 24 * 3600),
    };
    let d = follow::digest_draft(&responder(), &Relationships::builtin(), &input, now(), 1).expect("a digest");
    golden("digest", &d);
}

#[test]
fn confirmation() {
    let results = [
        CommandResult {
            line: "Done: answered at the interim".into(),
            tracking_id: Some("LS-2026-0042".into()),
            outcome: Ok("LS-2026-0042 is done (answered at the interim)".into()),
        },
        CommandResult {
            line: "Frobnicate: now".into(),
            tracking_id: Some("LS-2026-0042".into()),
            outcome: Err("`Frobnicate` is not a command (the commands are Done:, No reply:, Deadline:, Assign:, Recorded:, Reopen)".into()),
        },
    ];
    let mut v = verdict(Class::FollowUp);
    v.sender = Some(MANAGER.into());
    v.command_reply = true;
    let a = analysis(Statement::default(), "Re: [LS-2026-0042] New liaison statement from ITU-T", "Done: x");
    let d = one(plan(&v, &a, "LS-2026-0042", &results), DraftKind::Confirmation);
    assert_eq!(d.to, [MANAGER]);
    assert_eq!(d.in_reply_to.as_deref(), Some("sg15-ls123@itu.int"));
    golden("confirmation", &d);
}

#[test]
fn check_in_request() {
    let rel = Relationships::builtin();
    let today: Date = "2026-11-23".parse().expect("date");
    let c = follow::check_ins(&rel, &HashMap::new(), today, Duration::from_secs(365 * 24 * 3600))
        .into_iter()
        .find(|c| c.email == MANAGER)
        .expect("the ITU-T manager");
    let mut answered = follow_row(40, "LS on packet timing", "action", Some("2026-03-01"), None);
    answered.created_at = "2026-02-01T10:00:00.000Z".into();
    answered.state = "done".into();
    answered.done_at = Some("2026-02-15T10:00:00.000Z".into());
    let rows = vec![
        answered,
        follow_row(41, "LS on YANG models", "action", Some("2026-11-01"), None),
        FollowRow { outgoing: true, ..follow_row(42, "LS on clocks", "action", None, None) },
    ];
    let summary = follow::relationship_summary(&rows, today);
    assert_eq!((summary.incoming, summary.outgoing, summary.open, summary.overdue), (2, 1, 2, 1));
    assert_eq!(summary.median_days_to_answer, Some(14));
    let d = follow::check_in_draft(&responder(), &rel, &c, &summary, now(), 1);
    assert_eq!(d.kind, DraftKind::CheckIn);
    golden("check-in", &d);
}
