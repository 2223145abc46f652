//! Following statements through, on a real database with the real pipeline: the reminder
//! ladder with a controlled clock (each reminder once, none after done, restarts, downtime,
//! a clock set back, the time zone), a reply marking a statement done, and the digest.
//!
//! Each run is `liaisond::run(.., once)` over a Maildir with the clock set by the test: a new
//! run is a restart, and the days in between are the downtime. Nothing is sent (no transport):
//! reminders wait in the outbox, where the test reads them.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use liaisond::config::Config;
use liaisond_model::OutboxRow;
use liaisond_store::{Change, Store};
use tokio_util::sync::CancellationToken;

const SDO: &str = "liaison@example-sdo.org";
const MANAGER: &str = "manager@example.org";
const COORDINATOR: &str = "coordinators@iab.example";

struct Setup {
    dir: tempfile::TempDir,
    config: Config,
    /// The statement's deadline, 60 days after today.
    deadline: Date,
}

impl Setup {
    /// The deadline ladder alone: the "not recorded in the datatracker" reminder never comes
    /// (see `Setup::with` for it).
    fn new(time_zone: &str) -> Setup {
        Setup::with(time_zone, "[datatracker]\nrecord_within = \"100years\"\n[check_in]\nrequests = false\n")
    }

    fn with(time_zone: &str, extra: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.path().join("Maildir").join(sub)).expect("maildir");
        }
        let builtin = std::fs::read_to_string(common::repo_root().join("config/relationships.toml")).expect("read");
        let rel = builtin.replace(
            "coordinators = [\"liaison-coordination@iab.org\"]",
            &format!("coordinators = [\"{COORDINATOR}\"]"),
        );
        assert!(rel.contains(COORDINATOR), "config/relationships.toml changed; adapt this test");
        let rel = format!(
            "{rel}\n[[organization]]\nname = \"Example SDO\"\nacronym = \"example-sdo\"\naddresses = [\"{SDO}\"]\n\
             domains = [\"example-sdo.org\"]\nmarkers = [\"Example SDO\"]\n\
             managers = [{{ name = \"Manager\", email = \"{MANAGER}\" }}]\nlast_contact = \"2020-01-01\"\n"
        );
        std::fs::write(dir.path().join("rel.toml"), rel).expect("write");
        let text = format!(
            r#"relationships = "rel.toml"
time_zone = "{time_zone}"
[store]
database = "liaisond.db"
[[maildir]]
name = "inbox"
path = "Maildir"
after_commit = "leave"
[mail]
from = "liaison-coordination@iab.org"
[routing]
trusted_authserv_ids = ["mx.example.org"]
{extra}"#
        );
        let path = dir.path().join("liaisond.toml");
        std::fs::write(&path, text).expect("write");
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let deadline = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().checked_add(60.days()).expect("date");
        Setup { dir, config, deadline }
    }

    fn deliver(&self, name: &str, raw: &str) {
        std::fs::write(self.dir.path().join("Maildir/new").join(name), raw.replace('\n', "\r\n")).expect("deliver");
    }

    /// One run of the daemon (a restart) at `now`.
    async fn run_at(&self, now: Timestamp) -> liaisond::RunReport {
        let options = liaisond::RunOptions { clock: Some(Arc::new(move || now)), ..common::run_options(true) };
        liaisond::run(self.config.clone(), CancellationToken::new(), options).await.expect("the run")
    }

    fn store(&self) -> Store {
        Store::open(&self.dir.path().join("liaisond.db"), Duration::from_secs(10)).expect("open")
    }

    fn reminders(&self) -> Vec<OutboxRow> {
        let mut rows: Vec<OutboxRow> =
            self.store().outbox_rows(&[], 1000).expect("outbox").into_iter().filter(|r| r.kind == "reminder").collect();
        rows.reverse();
        rows
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// `days` relative to the deadline, at `hh:mm` in time zone `tz`.
fn at(deadline: Date, days: i64, hh: i8, mm: i8, tz: &str) -> Timestamp {
    let day = deadline.checked_add(days.days()).expect("date");
    day.at(hh, mm, 0, 0).in_tz(tz).expect("zoned").timestamp()
}

fn statement(message_id: &str, title: &str, deadline: Date, verified: bool) -> String {
    let auth =
        if verified { "Authentication-Results: mx.example.org; dmarc=pass header.from=example-sdo.org\n" } else { "" };
    format!(
        "{auth}From: Example SDO Liaisons <{SDO}>\nTo: liaison-coordination@iab.org\nSubject: LS on {title}\n\
         Date: Mon, 02 Nov 2026 10:00:00 +0000\nMessage-ID: <{message_id}>\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\n\
         From: Example SDO Working Group 7\nTo: IETF OPSAWG\nPurpose: For Action\nDeadline: {deadline}\n\
         Title: {title}\nFrom-Contact: Jane Doe <jane@example-sdo.org>\n\n\
         Example SDO asks the IETF OPSAWG to review the attached data models and to comment on\n\
         their alignment with the IETF models before our next meeting.\n"
    )
}

fn keys(rows: &[OutboxRow]) -> Vec<String> {
    rows.iter().map(|r| r.subject.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reminder_ladder_with_a_controlled_clock() {
    // Tokyo (UTC+9): a reminder day starts at 09:00 there, which is 00:00 UTC.
    let tz = "Asia/Tokyo";
    let s = Setup::new(tz);
    let d = s.deadline;
    s.deliver("1.eml", &statement("ls-1@example-sdo.org", "alignment of access models", d, true));

    // Arrival: a notification, no reminder yet (the first rung is 14 days before).
    s.run_at(Timestamp::now()).await;
    let st = s.store().statements().expect("statements");
    assert_eq!(st.len(), 1, "{st:?}");
    let tracking_id = st[0].tracking_id.clone();
    assert!(s.reminders().is_empty());

    // 15 days before: nothing. 14 days before, 08:59 Tokyo: still the day before.
    s.run_at(at(d, -15, 12, 0, tz)).await;
    s.run_at(at(d, -14, 8, 59, tz)).await;
    assert!(s.reminders().is_empty(), "{:?}", keys(&s.reminders()));

    // 14 days before, 09:00 Tokyo (00:00 UTC): the first reminder, to the manager, the
    // coordinators in copy, the deadline and "in 14 days" in its subject.
    s.run_at(at(d, -14, 9, 0, tz)).await;
    let r = s.reminders();
    assert_eq!(r.len(), 1, "{:?}", keys(&r));
    assert_eq!(r[0].recipients, vec![MANAGER.to_string(), COORDINATOR.to_string()]);
    assert!(
        r[0].subject.starts_with(&format!("[{tracking_id}] Reminder: a reply is due in 14 days ({d})")),
        "{}",
        r[0].subject
    );
    assert_eq!(r[0].tracking_id.as_deref(), Some(tracking_id.as_str()));

    // A second run the same day, and a restart later that day: nothing more.
    s.run_at(at(d, -14, 9, 1, tz)).await;
    s.run_at(at(d, -14, 23, 0, tz)).await;
    assert_eq!(s.reminders().len(), 1);

    // Down from 13 days before until 5 days before: only the reminder still relevant (7 days
    // before), not the backlog; it says how many days are really left.
    s.run_at(at(d, -5, 10, 0, tz)).await;
    let r = s.reminders();
    assert_eq!(r.len(), 2, "{:?}", keys(&r));
    assert!(r[1].subject.contains("due in 5 days"), "{}", r[1].subject);

    // The clock set back a week: nothing is sent again.
    s.run_at(at(d, -12, 10, 0, tz)).await;
    assert_eq!(s.reminders().len(), 2);

    // 4 days before, then past the deadline (down over it): the 4-day one, then one overdue.
    s.run_at(at(d, -4, 9, 30, tz)).await;
    s.run_at(at(d, 2, 9, 30, tz)).await;
    let r = s.reminders();
    assert_eq!(r.len(), 4, "{:?}", keys(&r));
    assert!(r[3].subject.contains("OVERDUE: the reply was due 2 days ago"), "{}", r[3].subject);
    let steps: Vec<String> = s.store().reminders_of(st[0].id).expect("reminders").into_iter().map(|r| r.step).collect();
    assert_eq!(steps, ["before-14", "before-7", "before-4", "overdue-2"]);

    // Done: the waiting reminders are cancelled, and no new one comes.
    let id = st[0].id;
    assert_eq!(s.store().mark_done(id, "tester", "replied by phone").expect("done"), Change::Changed);
    assert_eq!(s.store().mark_done(id, "tester", "again").expect("done"), Change::Unchanged);
    assert!(s.reminders().iter().all(|r| r.state == "cancelled"), "{:?}", s.reminders());
    s.run_at(at(d, 3, 9, 30, tz)).await;
    assert_eq!(s.reminders().len(), 4);

    // Reopened: the current overdue step, once.
    assert_eq!(s.store().reopen(id, "tester").expect("reopen"), Change::Changed);
    s.run_at(at(d, 4, 9, 30, tz)).await;
    s.run_at(at(d, 4, 18, 0, tz)).await;
    let r = s.reminders();
    assert_eq!(r.len(), 5, "{:?}", keys(&r));
    assert_eq!(r[4].state, "pending");
    assert!(r[4].subject.contains("4 days ago"), "{}", r[4].subject);

    // The last overdue reminder says so; after 14 days overdue, nothing.
    s.run_at(at(d, 14, 9, 30, tz)).await;
    s.run_at(at(d, 15, 9, 30, tz)).await;
    s.run_at(at(d, 30, 9, 30, tz)).await;
    let r = s.reminders();
    assert_eq!(r.len(), 6, "{:?}", keys(&r));
    let last = s.store().outbox_row(r[5].id).expect("row").expect("there");
    assert!(last.subject.contains("14 days ago"), "{}", last.subject);

    // The history tells the story.
    let history = event_kinds(&s.path(), st[0].id);
    for kind in ["statement_recorded", "outbox_queued", "statement_done", "statement_reopened"] {
        assert!(history.iter().any(|e| e == kind), "{kind} missing from {history:?}");
    }
}

fn event_kinds(dir: &Path, statement: i64) -> Vec<String> {
    events(dir, statement).into_iter().map(|(k, _)| k).collect()
}

/// (kind, detail) of a statement's history, oldest first.
fn events(dir: &Path, statement: i64) -> Vec<(String, String)> {
    let store = Store::open(&dir.join("liaisond.db"), Duration::from_secs(10)).expect("open");
    let rows = store.statement_events(statement).expect("events");
    rows.into_iter().map(|e| (e.kind, e.detail.unwrap_or_default())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_from_the_ietf_side_marks_the_statement_done() {
    let tz = "UTC";
    let s = Setup::new(tz);
    let d = s.deadline;
    s.deliver("1.eml", &statement("ls-a@example-sdo.org", "first topic", d, true));
    s.deliver("2.eml", &statement("ls-b@example-sdo.org", "second topic", d, true));
    s.run_at(Timestamp::now()).await;
    let st = s.store().statements().expect("statements");
    assert_eq!(st.len(), 2);
    let (a, b) = (&st[0], &st[1]);

    let reply = |n: u32, from: &str, to: &str, verified: bool, extra: &str| {
        let auth =
            if verified { "Authentication-Results: mx.example.org; dmarc=pass header.from=example.org\n" } else { "" };
        format!(
            "{auth}From: {from}\nTo: {to}\nCc: liaison-coordination@iab.org\nSubject: Re: LS on first topic\n\
             Date: Tue, 03 Nov 2026 10:00:00 +0000\nMessage-ID: <reply-{n}@example.org>\n\
             In-Reply-To: <ls-a@example-sdo.org>\nReferences: <ls-a@example-sdo.org>\n{extra}\n\
             Thank you for your statement; our answer follows.\n"
        )
    };
    // The sender itself writes again: a follow-up, not an answer.
    s.deliver("3.eml", &reply(3, SDO, "liaison-coordination@iab.org", true, ""));
    // The manager writes only to the coordinators: not an answer.
    s.deliver("4.eml", &reply(4, MANAGER, COORDINATOR, true, ""));
    // The manager answers the SDO, but the From is not verified: recorded, not trusted.
    s.deliver("5.eml", &reply(5, MANAGER, SDO, false, ""));
    s.run_at(Timestamp::now()).await;
    let a_now = s.store().statement_by_tracking_id(&a.tracking_id).expect("lookup").expect("there");
    assert_eq!(a_now.state, "open");
    let history = events(&s.path(), a.id);
    assert!(history.iter().any(|(k, d)| k == "reply_not_trusted" && d.contains("not verified")), "{history:?}");

    // The manager answers the SDO, verified: done, by the manager, with the answering message.
    s.deliver("6.eml", &reply(6, MANAGER, SDO, true, ""));
    s.run_at(Timestamp::now()).await;
    let done = s.store().statement_record(a.id).expect("record").expect("there");
    assert_eq!(done.state, "done");
    assert_eq!(done.done_by.as_deref(), Some(MANAGER));
    assert!(
        done.done_reason.as_deref().is_some_and(|r| r.contains("replied (to liaison@example-sdo.org)")),
        "{done:?}"
    );
    let answer = s
        .store()
        .message_overview(None)
        .expect("messages")
        .into_iter()
        .find(|m| m.id == done.done_message.unwrap_or(0));
    assert!(answer.is_some_and(|m| m.subject.as_deref() == Some("Re: LS on first topic")));
    // No reminder for it any more; the other one still gets its own.
    s.run_at(at(d, -14, 10, 0, tz)).await;
    let r = s.reminders();
    assert_eq!(r.len(), 1, "{:?}", keys(&r));
    assert_eq!(r[0].tracking_id.as_deref(), Some(b.tracking_id.as_str()));

    // The datatracker's notice of a reply posted there, naming the second statement by its
    // title as the referenced liaison: done too.
    let notice = format!(
        "Authentication-Results: mx.example.org; dkim=pass header.d=ietf.org; dmarc=pass header.from=ietf.org\n\
         From: Liaison Statement Management Tool <statements@ietf.org>\nTo: {SDO}\n\
         Cc: liaison-coordination@iab.org\nSubject: New Liaison Statement, \"Reply to LS on second topic\"\n\
         Date: Wed, 04 Nov 2026 10:00:00 +0000\nMessage-ID: <notice-1@datatracker.ietf.org>\n\
         Content-Type: text/plain; charset=utf-8\n\n\
         Title: Reply to LS on second topic\nSubmission Date: 2026-11-04\n\
         URL of the IETF Web page: https://datatracker.ietf.org/liaison/9999/\n\n\
         From: Operations and Management Area Working Group <opsawg@ietf.org>\nTo: Example SDO <{SDO}>\n\
         Response Contacts: opsawg-chairs@ietf.org\nPurpose: In response\n\
         Referenced liaison: second topic (https://datatracker.ietf.org/liaison/9990/)\n\n\
         Body: The OPSAWG thanks Example SDO for its statement and answers as follows.\nAttachments:\n\n    No document has been attached\n"
    );
    s.deliver("7.eml", &notice);
    s.run_at(at(d, -13, 10, 0, tz)).await;
    let done = s.store().statement_record(b.id).expect("record").expect("there");
    assert_eq!(done.state, "done", "{done:?}; events {:?}", events(&s.path(), b.id));
    assert!(done.done_reason.as_deref().is_some_and(|r| r.contains("datatracker")), "{done:?}");
    // Its waiting reminder was cancelled.
    assert!(s.reminders().iter().all(|r| r.state == "cancelled"), "{:?}", s.reminders());
}

/// The first Monday 08:30 (UTC) after now: within a week, so a first digest then (which
/// covers the week before it) includes what was recorded now.
fn next_monday_morning() -> Timestamp {
    let now = Timestamp::now();
    let mut day = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    loop {
        let at = day.at(8, 30, 0, 0).in_tz("UTC").expect("zoned").timestamp();
        if day.weekday() == jiff::civil::Weekday::Monday && at > now {
            return at;
        }
        day = day.tomorrow().expect("date");
    }
}

/// The demo's statements in a private database, with the digest planned by hand.
fn demo_setup(extra: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = std::fs::read_to_string(common::repo_root().join("config/demo.toml")).expect("demo.toml");
    let demo = demo
        .replace("../demo-state/liaisond.db", &dir.path().join("demo.db").display().to_string())
        .replace("../fixtures/demo-maildir", &common::repo_root().join("fixtures/demo-maildir").display().to_string())
        .replace("[outbox]\ndirectory = \"../demo-state/outbox\"", "")
        .replace(
            "\"ietf-experts.toml\"",
            &format!("{:?}", common::repo_root().join("config/ietf-experts.toml").display().to_string()),
        );
    let path = dir.path().join("demo.toml");
    std::fs::write(&path, format!("{demo}\n{extra}")).expect("write");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    (dir, config)
}

fn scheduler(config: &Config, store: Store, now: Timestamp) -> liaisond::daemon::schedule::Scheduler {
    let reader = Arc::new(
        liaisond::reader::Reader::from_config(config, Some(env!("CARGO_BIN_EXE_liaisond").into())).expect("reader"),
    );
    let mut follow = config.follow.clone();
    follow.digest_enabled = true;
    // The digest alone: no yearly check-in requests to the demo's managers.
    follow.check_in_requests = false;
    liaisond::daemon::schedule::Scheduler::new(
        liaisond::db::Db::new(store),
        follow,
        Arc::new(move || reader.clone()),
        Arc::new(move || now),
    )
}

/// The body of the digest queued last.
fn digest_body(db: &Path) -> (String, String, Vec<String>) {
    let conn = rusqlite::Connection::open(db).expect("open");
    let (subject, draft): (String, String) = conn
        .query_row("SELECT subject, draft FROM outbox WHERE kind = 'digest' ORDER BY id DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("a digest");
    let draft: serde_json::Value = serde_json::from_str(&draft).expect("json");
    let to = draft["to"].as_array().expect("to").iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect();
    (subject, draft["body"].as_str().unwrap_or_default().to_string(), to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_on_a_prepared_database() {
    // Recorded without a digest (that is planned below, at chosen times).
    let (dir, config) = demo_setup("[digest]\nenabled = false\n");
    liaisond::run(config.clone(), CancellationToken::new(), common::run_options(true)).await.expect("run");
    let db = dir.path().join("demo.db");
    let monday = next_monday_morning();
    let today = monday.to_zoned(jiff::tz::TimeZone::UTC).date();

    // Prepared: deadlines around that Monday, one statement done, a failed notification, a
    // check-in with one manager.
    let mut store = Store::open(&db, Duration::from_secs(10)).expect("open");
    let id_of = |store: &Store, t: &str| store.statement_by_tracking_id(t).expect("lookup").expect("there").id;
    let conn = rusqlite::Connection::open(&db).expect("open");
    for (t, days) in [("LS-2026-0006", -3), ("LS-2026-0002", 10), ("LS-2026-0007", 5)] {
        let deadline = today.checked_add(jiff::Span::new().days(days)).expect("date").to_string();
        conn.execute("UPDATE statements SET deadline = ?2 WHERE tracking_id = ?1", rusqlite::params![t, deadline])
            .expect("deadline");
    }
    let info = id_of(&store, "LS-2026-0003");
    store.mark_done(info, "tester", "nothing to answer").expect("done");
    conn.execute(
        "UPDATE outbox SET state = 'failed', last_error = '550 5.1.1 no such user', claimed_at = queued_at
         WHERE id = (SELECT MIN(id) FROM outbox WHERE kind = 'notification')",
        [],
    )
    .expect("fail one");
    store.check_in("mireille.fontaine@example.org", &today.to_string(), Some("call")).expect("check-in");

    // The first pass only starts the digests (no mail off schedule); the next slot mails.
    let an_hour_ago = Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let report = scheduler(&config, store, an_hour_ago).pass().await.expect("pass");
    assert!(report.digest.as_ref().is_some_and(|d| !d.1), "{report:?}");
    let store = Store::open(&db, Duration::from_secs(10)).expect("open");
    let report = scheduler(&config, store, monday).pass().await.expect("pass");
    let (slot, mailed) = report.digest.expect("a digest decided");
    assert!(mailed && slot.ends_with("T08:00"), "{slot}");
    let (subject, body, to) = digest_body(&db);
    assert_eq!(to, ["liaison-coordination@iab.org"]);
    assert_eq!(subject, format!("liaisond digest for {today}: 3 awaiting a reply, 8 new"));
    // A section on one line: the mail is wrapped at 72 columns.
    let section = |title: &str| -> String {
        let start = body.find(title).unwrap_or_else(|| panic!("no section {title:?} in:\n{body}"));
        let section = body[start..].split("\n\n").next().unwrap_or_default();
        section.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    // Overdue first, then by deadline.
    let awaiting = section("Awaiting a reply");
    let order: Vec<usize> =
        ["LS-2026-0006", "LS-2026-0007", "LS-2026-0002"].iter().map(|t| awaiting.find(t).expect(t)).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{awaiting}");
    assert!(awaiting.contains("OVERDUE since") && awaiting.contains("(3 days ago)"), "{awaiting}");
    assert!(!awaiting.contains("LS-2026-0003"), "{awaiting}");
    let received = section("Received since the last digest");
    assert_eq!(received.matches("LS-2026-").count(), 8, "{received}");
    assert!(received.contains("LS-2026-0003") && received.contains(", done)"), "{received}");
    let no_deadline = section("but with no deadline");
    assert!(no_deadline.contains("LS-2026-0001") && no_deadline.contains("LS-2026-0004"), "{no_deadline}");
    let no_manager = section("with no liaison manager");
    assert!(no_manager.contains("LS-2026-0004") && no_manager.contains("LS-2026-0008"), "{no_manager}");
    assert!(section("Messages quarantined").contains("message 12"), "{body}");
    assert!(section("Outgoing mail that failed").contains("550 5.1.1 no such user"), "{body}");
    let check_ins = section("Liaison managers not heard from");
    assert!(check_ins.contains("katrin.lindqvist@example.org"), "{check_ins}");
    assert!(!check_ins.contains("mireille.fontaine@example.org"), "checked in today: {check_ins}");

    // The same slot again (a restart, a second pass): nothing.
    let store = Store::open(&db, Duration::from_secs(10)).expect("open");
    let later = monday + jiff::SignedDuration::from_hours(5);
    assert_eq!(scheduler(&config, store, later).pass().await.expect("pass").digest, None);

    // A week later: only what is still open; nothing new received, quarantined or failed.
    let store = Store::open(&db, Duration::from_secs(10)).expect("open");
    let next = monday + jiff::SignedDuration::from_hours(7 * 24);
    let report = scheduler(&config, store, next).pass().await.expect("pass");
    assert!(report.digest.is_some_and(|d| d.1));
    let (subject, body, _) = digest_body(&db);
    assert!(subject.ends_with(": 3 awaiting a reply"), "{subject}");
    for absent in ["Received since", "Messages quarantined", "Outgoing mail that failed"] {
        assert!(!body.contains(absent), "{absent} in:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_to_report_sends_no_digest() {
    let (dir, config) = demo_setup("[digest]\ncheck_in_after = \"100years\"\n");
    let db = dir.path().join("demo.db");
    // An empty database (no source run): the start of the digests, then a slot with nothing.
    for now in [Timestamp::now() - jiff::SignedDuration::from_hours(1), next_monday_morning()] {
        let store = Store::open(&db, Duration::from_secs(10)).expect("open");
        let report = scheduler(&config, store, now).pass().await.expect("pass");
        assert_eq!(report.digest.map(|d| d.1), Some(false), "decided, without mail");
    }
    let conn = rusqlite::Connection::open(&db).expect("open");
    let details: Vec<String> = conn
        .prepare("SELECT detail FROM events WHERE kind = 'digest' ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(
        details.len() == 2 && details[0].contains("digests start") && details[1].contains("nothing to report"),
        "{details:?}"
    );
    let store = Store::open(&db, Duration::from_secs(10)).expect("open");
    assert!(store.outbox_rows(&[], 10).expect("outbox").is_empty());
}

/// Through the real servers: a statement mailed to the alias, a reminder delivered to the
/// manager (the coordinators in copy) when the daemon's clock reaches 7 days before the
/// deadline, the manager's reply to the SDO closing the statement, and no reminder after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_go_out_by_mail_until_a_reply_is_seen() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let tb = common::testbed();
    let u = common::users(tb, 4).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The deadline ladder alone, without the "not recorded in the datatracker" reminder.
    let extra = "[datatracker]\nrecord_within = \"100years\"\n";
    let config = common::config(tb, dir.path(), &u, &common::submission(tb, &u), extra);
    let deadline = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().checked_add(30.days()).expect("date");
    let clock_secs = Arc::new(AtomicI64::new(Timestamp::now().as_second()));
    let clock = clock_secs.clone();
    let options = liaisond::RunOptions {
        clock: Some(Arc::new(move || Timestamp::from_second(clock.load(Ordering::SeqCst)).unwrap_or_default())),
        ..common::run_options(false)
    };
    let token = CancellationToken::new();
    let daemon = tokio::spawn(liaisond::run(config, token.clone(), options));

    let message_id = format!("ls-{}@sdo.example.net", std::process::id());
    let raw = format!(
        "Authentication-Results: mx.example.org; dmarc=pass header.from=example.org\r\n\
         From: Jane Doe <{sender}>\r\nTo: {alias}\r\nSubject: LS on reminders by mail\r\n\
         Date: {date}\r\nMessage-ID: <{message_id}>\r\n\r\n\
         Liaison statement\r\nTitle: Reminders by mail\r\nFrom: Example SDO Working Group 7\r\nTo: IETF OPSAWG\r\n\
         Purpose: For action\r\nDeadline: {deadline}\r\nContact: Jane Doe <{sender}>\r\n\r\n\
         Example SDO asks the IETF OPSAWG to review its data models before the deadline.\r\n",
        sender = u.sender,
        alias = u.alias,
        date = Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000"),
    );
    common::mail(tb, &u.sender, &u.alias, raw.as_bytes()).await;
    // The notification reaches the manager.
    common::wait_inbox(tb, &u.manager, 1, "the notification").await;

    // Seven days before the deadline, 10:00 UTC: the reminder, within the scheduler's minute.
    clock_secs.store(at(deadline, -7, 10, 0, "UTC").as_second(), Ordering::SeqCst);
    let inbox = common::wait_inbox(tb, &u.manager, 2, "the reminder").await;
    let reminder = inbox
        .iter()
        .map(|raw| String::from_utf8_lossy(raw).into_owned())
        .find(|m| m.contains("Reminder: a reply is due in 7 days"))
        .expect("a reminder among the manager's mail");
    assert!(reminder.contains(&format!("Cc: {}", u.coord)), "{reminder}");
    assert!(reminder.contains("Auto-Submitted: auto-generated"), "{reminder}");
    assert!(reminder.contains(&format!("References: <{message_id}>")), "{reminder}");

    // The manager answers the SDO (copying the mailbox), from a verified address.
    let answer = format!(
        "Authentication-Results: mx.example.org; dmarc=pass header.from=example.org\r\n\
         From: Manager <{manager}>\r\nTo: {sender}\r\nCc: {alias}\r\nSubject: Re: LS on reminders by mail\r\n\
         Date: {date}\r\nMessage-ID: <answer-{message_id}>\r\nIn-Reply-To: <{message_id}>\r\n\
         References: <{message_id}>\r\n\r\nThe IETF OPSAWG has reviewed the models; our reply is attached.\r\n",
        manager = u.manager,
        sender = u.sender,
        alias = u.alias,
        date = Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000"),
    );
    common::mail(tb, &u.manager, &u.alias, answer.as_bytes()).await;
    let db = dir.path().join("liaisond.db");
    let start = std::time::Instant::now();
    let closed = loop {
        let store = Store::open(&db, Duration::from_secs(10)).expect("open");
        let st = store.statements().expect("statements");
        if st.first().is_some_and(|s| s.state == "done") {
            break store.statement_record(st[0].id).expect("record").expect("there");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the reply did not close the statement: {st:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(closed.done_by.as_deref(), Some(u.manager.as_str()), "{closed:?}");

    // Four days before: no reminder any more (the scheduler looks once a minute at start and
    // every minute after; a restart makes it look at once).
    clock_secs.store(at(deadline, -4, 10, 0, "UTC").as_second(), Ordering::SeqCst);
    token.cancel();
    daemon.await.expect("joins").expect("runs");
    let config = common::config(tb, dir.path(), &u, &common::submission(tb, &u), extra);
    let clock = clock_secs.clone();
    let options = liaisond::RunOptions {
        clock: Some(Arc::new(move || Timestamp::from_second(clock.load(Ordering::SeqCst)).unwrap_or_default())),
        ..common::run_options(true)
    };
    liaisond::run(config, CancellationToken::new(), options).await.expect("a second run");
    let store = Store::open(&db, Duration::from_secs(10)).expect("open");
    let reminders = store.reminders_of(store.statements().expect("statements")[0].id).expect("reminders");
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = common::inbox_of(tb, &u.manager).await;
    let count = all.iter().filter(|m| String::from_utf8_lossy(m).contains("Reminder: a reply")).count();
    assert_eq!(count, 1, "exactly one reminder reached the manager");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_survive_a_clock_that_was_once_far_ahead() {
    let (dir, config) = demo_setup("[digest]\ncheck_in_after = \"100years\"\n");
    let db = dir.path().join("demo.db");
    let pass = |now: Timestamp| {
        let store = Store::open(&db, Duration::from_secs(10)).expect("open");
        let s = scheduler(&config, store, now);
        async move { s.pass().await.expect("pass").digest }
    };
    let monday = next_monday_morning();
    assert!(pass(Timestamp::now() - jiff::SignedDuration::from_hours(1)).await.is_some(), "the start");
    // The clock jumps a month ahead, and a slot is decided then.
    let ahead = monday + jiff::SignedDuration::from_hours(30 * 24);
    assert!(pass(ahead).await.is_some());
    // Back to the right time: a slot a few days before the last one is not new (the clock
    // only went back a little)...
    assert_eq!(pass(ahead - jiff::SignedDuration::from_hours(3 * 24)).await, None);
    // ...but one more than a week before it means that slot was wrong: digests go on.
    assert!(pass(monday).await.is_some(), "not stuck until the date the clock once showed");
}
