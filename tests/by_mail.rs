//! Closing the loop by mail (issue 15), through the testbed's Postfix and Dovecot with the
//! daemon running: the datatracker's notices recording statements (in either order of
//! arrival), the one "not recorded" reminder and the digest's line when the clock is 8 days
//! on, and commands in replies (a verified manager's `Done:`, a forged one, an unknown one).
//! Every mail the daemon sends is checked for a shell command a reader cannot run.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use liaisond_store::{StatementRecord, Store};
use tokio_util::sync::CancellationToken;

/// A daemon on the testbed whose clock the test moves.
struct Daemon {
    clock: Arc<AtomicI64>,
    token: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<liaisond::RunReport>>,
}

/// Noon (UTC) `days` from today: mail not tied to a deadline's day goes out from the send
/// time (09:00), so the tests do not depend on the hour CI runs them at.
fn noon(days: i64) -> Timestamp {
    let today = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    today.checked_add(days.days()).expect("date").at(12, 0, 0, 0).in_tz("UTC").expect("zoned").timestamp()
}

impl Daemon {
    fn start(config: liaisond::config::Config) -> Daemon {
        Daemon::start_at(config, Timestamp::now())
    }

    fn start_at(config: liaisond::config::Config, at: Timestamp) -> Daemon {
        let clock = Arc::new(AtomicI64::new(at.as_second()));
        let read = clock.clone();
        let options = liaisond::RunOptions {
            clock: Some(Arc::new(move || Timestamp::from_second(read.load(Ordering::SeqCst)).unwrap_or_default())),
            ..common::run_options(false)
        };
        let token = CancellationToken::new();
        let task = tokio::spawn(liaisond::run(config, token.clone(), options));
        Daemon { clock, token, task }
    }

    fn set_clock(&self, at: Timestamp) {
        self.clock.store(at.as_second(), Ordering::SeqCst);
    }

    async fn stop(self) {
        self.token.cancel();
        self.task.await.expect("joins").expect("runs");
    }
}

fn date() -> String {
    Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// A statement from the SDO's address, verified by our receiving server.
fn statement(sender: &str, alias: &str, message_id: &str, title: &str) -> String {
    let deadline = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().checked_add(60.days()).expect("date");
    format!(
        "Authentication-Results: mx.example.org; dmarc=pass header.from=example.org\r\n\
         From: Jane Doe <{sender}>\r\nTo: {alias}\r\nSubject: LS on {title}\r\nDate: {date}\r\n\
         Message-ID: <{message_id}>\r\n\r\n\
         Liaison statement\r\nTitle: {title}\r\nFrom: Example SDO Working Group 7\r\nTo: IETF OPSAWG\r\n\
         Purpose: For action\r\nDeadline: {deadline}\r\nContact: Jane Doe <{sender}>\r\n\r\n\
         Example SDO asks the IETF OPSAWG to review its data models before the deadline.\r\n",
        date = date()
    )
}

/// The datatracker's "New Liaison Statement" notice of a statement, recorded as `number`.
fn notice(sender: &str, alias: &str, title: &str, number: u32) -> String {
    format!(
        "Authentication-Results: mx.example.org; dkim=pass header.d=ietf.org; dmarc=pass header.from=ietf.org\r\n\
         From: Liaison Statement Management Tool <statements@ietf.org>\r\nTo: opsawg-chairs@ietf.org\r\n\
         Cc: {alias}\r\nSubject: New Liaison Statement, \"{title}\"\r\nDate: {date}\r\n\
         Message-ID: <notice-{number}-{pid}@datatracker.ietf.org>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Title: {title}\r\nSubmission Date: 2026-12-07\r\n\
         URL of the IETF Web page: https://datatracker.ietf.org/liaison/{number}/\r\n\r\n\
         From: Jane Doe <{sender}>\r\nTo: Operations and Management Area Working Group <opsawg@ietf.org>\r\n\
         Response Contacts: {sender}\r\nPurpose: For action\r\n\r\n\
         Body: Example SDO Working Group 7 asks the IETF OPSAWG to review its data models.\r\n\
         Attachments:\r\n\r\n    No document has been attached\r\n",
        date = date(),
        pid = std::process::id()
    )
}

fn store(dir: &Path) -> Store {
    Store::open(&dir.join("liaisond.db"), Duration::from_secs(10)).expect("open")
}

/// Waits until `n` messages are processed (recorded with their verdict and mail).
async fn wait_processed(dir: &Path, n: usize, what: &str) {
    common::eventually(Duration::from_secs(60), what, || {
        store(dir).message_overview(None).is_ok_and(|m| m.iter().filter(|m| m.state == "processed").count() >= n)
    })
    .await;
}

fn record_of(dir: &Path, title: &str) -> StatementRecord {
    let s = store(dir);
    let id = s
        .statement_records()
        .expect("records")
        .into_iter()
        .find(|r| r.title.as_deref() == Some(title))
        .unwrap_or_else(|| panic!("no statement {title}"))
        .id;
    s.statement_record(id).expect("record").expect("there")
}

/// A mail a person acts on never tells them to run a command on a server they have no shell on:
/// no line starts with `liaisond ` (indented or not), and none quotes one in backticks.
fn no_shell_commands(mails: &[Vec<u8>]) {
    for raw in mails {
        let text = String::from_utf8_lossy(raw);
        let shell = |l: &str| l.trim_start().starts_with("liaisond ") || l.contains("`liaisond ");
        assert!(!text.lines().any(shell), "a shell command:\n{text}");
    }
}

/// Waits until a mail in `user`'s INBOX contains `wanted`; returns it.
async fn wait_for_mail(tb: &common::Testbed, user: &str, wanted: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        if let Some(m) = texts(&common::inbox_of(tb, user).await).into_iter().find(|m| m.contains(wanted)) {
            return m;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "no mail with {wanted:?} reached {user}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn texts(mails: &[Vec<u8>]) -> Vec<String> {
    mails.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_datatracker_record_its_reminder_and_the_digest() {
    let tb = common::testbed();
    let u = common::users(tb, 5).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::config(tb, dir.path(), &u, &common::submission(tb, &u), "");
    let daemon = Daemon::start(config.clone());
    let pid = std::process::id();

    // 1. A statement, then its datatracker notice: recorded, and nothing more is sent.
    common::mail(
        tb,
        &u.sender,
        &u.alias,
        statement(&u.sender, &u.alias, &format!("one-{pid}@x"), "record one").as_bytes(),
    )
    .await;
    wait_processed(dir.path(), 1, "the first statement").await;
    common::mail(tb, "statements@ietf.org", &u.alias, notice(&u.sender, &u.alias, "record one", 4001).as_bytes()).await;
    // 2. A notice first, then the statement's own mail: one statement, recorded.
    common::mail(tb, "statements@ietf.org", &u.alias, notice(&u.sender, &u.alias, "record three", 4003).as_bytes())
        .await;
    wait_processed(dir.path(), 3, "the two notices").await;
    common::mail(
        tb,
        &u.sender,
        &u.alias,
        statement(&u.sender, &u.alias, &format!("three-{pid}@x"), "record three").as_bytes(),
    )
    .await;
    // 3. A statement nobody records.
    common::mail(
        tb,
        &u.sender,
        &u.alias,
        statement(&u.sender, &u.alias, &format!("two-{pid}@x"), "record two").as_bytes(),
    )
    .await;
    wait_processed(dir.path(), 5, "every message").await;

    let one = record_of(dir.path(), "record one");
    assert_eq!(one.datatracker_url.as_deref(), Some("https://datatracker.ietf.org/liaison/4001/"), "{one:?}");
    let events = store(dir.path()).statement_events(one.id).expect("events");
    assert!(events.iter().any(|e| e.kind == "datatracker_recorded"), "{events:?}");
    let three = record_of(dir.path(), "record three");
    assert_eq!(three.datatracker_url.as_deref(), Some("https://datatracker.ietf.org/liaison/4003/"), "{three:?}");
    let two = record_of(dir.path(), "record two");
    assert_eq!(two.datatracker_url, None);
    let records = store(dir.path()).statement_records().expect("records");
    assert_eq!(records.len(), 3, "the mail after its notice is no second statement: {records:?}");
    let classes: Vec<Option<String>> = store(dir.path())
        .statement_messages(three.id)
        .expect("messages")
        .iter()
        .map(|m| m.class.map(|c| c.as_str().to_string()))
        .collect();
    assert_eq!(classes, [Some("statement".to_string()), Some("duplicate".to_string())], "notice, then mail");

    // 4. Eight days on: exactly one reminder, for the statement nobody recorded, to its
    // manager; and the digest lists it.
    let manager_before = common::inbox_of(tb, &u.manager).await.len();
    daemon.set_clock(noon(8));
    let reminder = wait_for_mail(tb, &u.manager, "Not yet recorded in the datatracker").await;
    assert!(reminder.contains(&format!("X-Liaison-Tracking-ID: {}", two.tracking_id)), "{reminder}");
    assert!(reminder.contains("X-Liaisond-Loop"), "{reminder}");
    assert!(reminder.contains("Recorded: https://datatracker.ietf.org/liaison/"), "it says how to answer: {reminder}");
    let digest = wait_for_mail(tb, &u.coord, "Subject: liaisond digest").await;
    let section = digest.split("Not recorded in the datatracker").nth(1).expect("the digest's section").to_string();
    let section = section.split("\r\n\r\n").next().unwrap_or_default();
    assert!(section.contains(&two.tracking_id), "{digest}");
    assert!(!section.contains(&one.tracking_id) && !section.contains(&three.tracking_id), "{digest}");

    // A restart a day later sends no second reminder.
    daemon.stop().await;
    let later = noon(9);
    let options = liaisond::RunOptions { clock: Some(Arc::new(move || later)), ..common::run_options(true) };
    liaisond::run(config, CancellationToken::new(), options).await.expect("a second run");
    let reminders = store(dir.path()).reminders_of(two.id).expect("reminders");
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    for recorded in [one.id, three.id] {
        assert!(store(dir.path()).reminders_of(recorded).expect("reminders").is_empty());
    }
    let manager = common::inbox_of(tb, &u.manager).await;
    let count = texts(&manager).iter().filter(|m| m.contains("Not yet recorded in the datatracker")).count();
    assert_eq!(count, 1, "exactly one reminder ({manager_before} mails before it)");
    // The datatracker got no acknowledgement; the SDO got one per statement it mailed.
    let sender = common::inbox_of(tb, &u.sender).await;
    assert!(texts(&sender).iter().all(|m| !m.contains("To: statements@ietf.org")));
    for mails in [&manager, &sender, &common::inbox_of(tb, &u.coord).await] {
        no_shell_commands(mails);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_in_replies_act_for_verified_people_only() {
    let tb = common::testbed();
    let u = common::users(tb, 6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::config(tb, dir.path(), &u, &common::submission(tb, &u), "");
    let daemon = Daemon::start(config);
    let pid = std::process::id();

    common::mail(
        tb,
        &u.sender,
        &u.alias,
        statement(&u.sender, &u.alias, &format!("cmd-{pid}@x"), "commands by mail").as_bytes(),
    )
    .await;
    let notification = wait_for_mail(tb, &u.manager, "New liaison statement").await;
    assert!(notification.contains("Done: <how it was answered>"), "it says what a reply can do: {notification}");
    let st = record_of(dir.path(), "commands by mail");
    assert!(notification.contains(&format!("X-Liaison-Tracking-ID: {}", st.tracking_id)), "{notification}");
    let notification_id = notification
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .expect("the notification's Message-ID")
        .trim()
        .to_string();
    let reply = |verified: bool, n: u32, body: &str| {
        let auth = if verified {
            "Authentication-Results: mx.example.org; dmarc=pass header.from=example.org\r\n"
        } else {
            ""
        };
        format!(
            "{auth}From: Manager <{manager}>\r\nTo: {alias}\r\n\
             Subject: Re: [{tid}] New liaison statement from Example SDO: commands by mail\r\n\
             Date: {date}\r\nMessage-ID: <reply-{n}-{pid}@example.org>\r\nIn-Reply-To: {notification_id}\r\n\
             References: {notification_id}\r\n\r\n{body}\r\n\r\n> A new liaison statement arrived\r\n",
            manager = u.manager,
            alias = u.alias,
            tid = st.tracking_id,
            date = date(),
        )
    };

    // A forged sender: nothing changes, nobody answers it; the handlers see a follow-up whose
    // sender is not verified, as any other.
    common::mail(tb, &u.manager, &u.alias, reply(false, 1, "Done: answered at the interim").as_bytes()).await;
    wait_processed(dir.path(), 2, "the forged reply").await;
    let follow_up = wait_for_mail(tb, &u.manager, &format!("A message about {} arrived", st.tracking_id)).await;
    assert!(follow_up.contains("NOT verified"), "{follow_up}");
    let after_forged = record_of(dir.path(), "commands by mail");
    assert_eq!(after_forged.state, "open", "{after_forged:?}");
    let events = store(dir.path()).statement_events(st.id).expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.kind == "command_refused" && e.detail.as_deref().is_some_and(|d| d.contains("not verified"))),
        "{events:?}"
    );

    // An unknown command from the verified manager: an answer saying why, nothing changed.
    common::mail(tb, &u.manager, &u.alias, reply(true, 2, "Frobnicate: now").as_bytes()).await;
    let refusal = wait_for_mail(tb, &u.manager, "`Frobnicate` is not a command").await;
    assert!(refusal.contains("Not done, and nothing changed"), "{refusal}");
    assert!(refusal.contains(&format!("In-Reply-To: <reply-2-{pid}@example.org>")), "{refusal}");
    let unchanged = record_of(dir.path(), "commands by mail");
    assert_eq!((unchanged.state.as_str(), &unchanged.deadline), ("open", &st.deadline));

    // The verified manager's `Done:`: the statement is done, by them, and they are told.
    common::mail(tb, &u.manager, &u.alias, reply(true, 3, "Done: answered at the interim").as_bytes()).await;
    let confirmation = wait_for_mail(tb, &u.manager, "Done, as you asked").await;
    assert!(confirmation.contains(&format!("{} is done (answered at the interim)", st.tracking_id)), "{confirmation}");
    assert!(confirmation.contains("Auto-Submitted: auto-replied"), "{confirmation}");
    assert!(confirmation.contains(&format!("X-Liaison-Tracking-ID: {}", st.tracking_id)), "{confirmation}");
    let done = record_of(dir.path(), "commands by mail");
    assert_eq!(done.state, "done", "{done:?}");
    assert!(done.done_by.as_deref().is_some_and(|b| b.starts_with(&u.manager)), "{done:?}");
    assert_eq!(done.done_reason.as_deref(), Some("answered at the interim"));

    // Exactly the two answers: none to the forged reply.
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon.stop().await;
    let manager = common::inbox_of(tb, &u.manager).await;
    let answered = texts(&manager).iter().filter(|m| m.contains("Commands go on the first lines")).count();
    assert_eq!(answered, 2, "one answer per verified reply, none to the forged one");
    for mails in [&manager, &common::inbox_of(tb, &u.sender).await, &common::inbox_of(tb, &u.coord).await] {
        no_shell_commands(mails);
    }
}

/// The datatracker's notice of a statement the IETF sends (OPSAWG to the Broadband Forum).
fn outgoing_notice(alias: &str, deadline: jiff::civil::Date) -> String {
    format!(
        "Authentication-Results: mx.example.org; dkim=pass header.d=ietf.org; dmarc=pass header.from=ietf.org\r\n\
         From: Liaison Statement Management Tool <statements@ietf.org>\r\nTo: liaisons@broadband-forum.org\r\n\
         Cc: opsawg-chairs@ietf.org, {alias}\r\n\
         Subject: New Liaison Statement, \"LS on YANG data models for access networks\"\r\nDate: {date}\r\n\
         Message-ID: <notice-3001-{pid}@datatracker.ietf.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Title: LS on YANG data models for access networks\r\nSubmission Date: 2026-12-07\r\n\
         URL of the IETF Web page: https://datatracker.ietf.org/liaison/3001/\r\nPlease reply by {deadline}\r\n\r\n\
         From: Operations and Management Area Working Group <opsawg@ietf.org>\r\n\
         To: Broadband Forum <liaisons@broadband-forum.org>\r\n\
         Cc: OPSAWG Chairs <opsawg-chairs@ietf.org>, {alias}\r\nResponse Contacts: opsawg-chairs@ietf.org\r\n\
         Purpose: For action\r\n\r\n\
         Body: The IETF OPSAWG asks the Broadband Forum to comment on its access network models.\r\n\
         Attachments:\r\n\r\n    No document has been attached\r\n",
        date = date(),
        pid = std::process::id()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outgoing_statement_waits_for_the_other_bodys_answer() {
    let tb = common::testbed();
    let u = common::users(tb, 7).await;
    let dir = tempfile::tempdir().expect("tempdir");
    common::config(tb, dir.path(), &u, &common::submission(tb, &u), "");
    // The Broadband Forum's manager is this test's manager.
    let rel = std::fs::read_to_string(dir.path().join("rel.toml")).expect("rel");
    assert!(rel.contains("dolores.arriaga@example.org"), "config/relationships.toml changed; adapt this test");
    std::fs::write(dir.path().join("rel.toml"), rel.replace("dolores.arriaga@example.org", &u.manager)).expect("rel");
    let config = liaisond::config::Config::load(&dir.path().join("liaisond.toml")).expect("config");
    let daemon = Daemon::start(config.clone());
    let pid = std::process::id();
    let deadline = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().checked_add(5.days()).expect("date");

    // The notice of OPSAWG's statement to the Broadband Forum: outgoing, not acknowledged,
    // and the Forum's manager is told.
    common::mail(tb, "statements@ietf.org", &u.alias, outgoing_notice(&u.alias, deadline).as_bytes()).await;
    let told = wait_for_mail(tb, &u.manager, "New liaison statement").await;
    assert!(told.contains("an outgoing statement to Broadband Forum"), "{told}");
    let sent = record_of(dir.path(), "LS on YANG data models for access networks");
    assert_eq!(sent.direction, "outgoing", "{sent:?}");
    assert_eq!(sent.datatracker_url.as_deref(), Some("https://datatracker.ietf.org/liaison/3001/"));
    assert_eq!(sent.ack.as_deref(), Some("not sent: an outgoing statement: the IETF sent it"), "{sent:?}");

    // Past its deadline: no reminder to anyone on the IETF side; the digest awaits their answer.
    daemon.set_clock(noon(8));
    let digest = wait_for_mail(tb, &u.coord, "Subject: liaisond digest").await;
    let theirs = digest.split("Awaiting their answer").nth(1).expect("the section").split("\r\n\r\n").next();
    let theirs = theirs.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(theirs.contains(&format!("OVERDUE since {deadline}")) && theirs.contains(&sent.tracking_id), "{digest}");
    assert!(!digest.contains("Awaiting a reply (overdue first)"), "not a reply the IETF owes: {digest}");
    assert!(store(dir.path()).reminders_of(sent.id).expect("reminders").is_empty());

    // The Forum's reply statement marks it answered.
    let reply = format!(
        "Authentication-Results: mx.example.org; dmarc=pass header.from=broadband-forum.org\r\n\
         From: BBF Liaisons <liaisons@broadband-forum.org>\r\nTo: {alias}\r\n\
         Subject: Reply LS on YANG data models for access networks\r\nDate: {date}\r\n\
         Message-ID: <bbf-reply-{pid}@broadband-forum.org>\r\n\r\n\
         Liaison statement\r\nTitle: Reply LS on YANG data models for access networks\r\n\
         From: Broadband Forum Technical Committee\r\nTo: IETF OPSAWG\r\nPurpose: For information\r\n\
         Response to: LS on YANG data models for access networks (https://datatracker.ietf.org/liaison/3001/)\r\n\
         Contact: BBF Liaisons <liaisons@broadband-forum.org>\r\n\r\n\
         The Broadband Forum thanks the IETF OPSAWG and has no comments on the models.\r\n",
        alias = u.alias,
        date = date(),
    );
    common::mail(tb, "liaisons@broadband-forum.org", &u.alias, reply.as_bytes()).await;
    wait_processed(dir.path(), 2, "the Forum's reply").await;
    daemon.stop().await;
    let answered = record_of(dir.path(), "LS on YANG data models for access networks");
    assert_eq!(answered.state, "done", "{answered:?}");
    let theirs = record_of(dir.path(), "Reply LS on YANG data models for access networks");
    assert_eq!(theirs.direction, "incoming");
    assert!(
        answered.done_reason.as_deref().is_some_and(|r| r.contains(&format!("answered by {}", theirs.tracking_id))),
        "{answered:?}"
    );
    // No acknowledgement of the outgoing notice; one of the Forum's reply.
    let outbox = store(dir.path()).statement_outbox(sent.id).expect("outbox");
    assert!(outbox.iter().all(|o| o.kind != "ack" && o.kind != "reminder"), "{outbox:?}");
    for mails in [&common::inbox_of(tb, &u.manager).await, &common::inbox_of(tb, &u.coord).await] {
        no_shell_commands(mails);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_due_for_check_in_is_asked_once_and_the_answer_is_recorded() {
    let tb = common::testbed();
    let u = common::users(tb, 8).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Example SDO's manager (manager8) has no check-in on file: due at once.
    let config = common::config(tb, dir.path(), &u, &common::submission(tb, &u), "[check_in]\nrequests = true\n");
    let daemon = Daemon::start_at(config.clone(), noon(0));
    let request = wait_for_mail(tb, &u.manager, "Subject: Yearly liaison check-in: Example SDO").await;
    assert!(request.contains(&format!("Cc: {}", u.coord)), "{request}");
    assert!(request.contains("Statements received:"), "the twelve months' summary: {request}");
    let request_id =
        request.lines().find_map(|l| l.strip_prefix("Message-ID: ")).expect("its Message-ID").trim().to_string();

    // A restart does not ask again.
    daemon.stop().await;
    liaisond::run(config.clone(), CancellationToken::new(), common::run_options(true)).await.expect("a second run");
    let requests: i64 = rusqlite::Connection::open(dir.path().join("liaisond.db"))
        .expect("open")
        .query_row("SELECT count(*) FROM check_in_requests WHERE manager = ?1", [&u.manager], |r| r.get(0))
        .expect("count");
    assert_eq!(requests, 1, "exactly one request");

    let answer = |verified: bool, n: u32| {
        let auth = if verified {
            "Authentication-Results: mx.example.org; dmarc=pass header.from=example.org\r\n"
        } else {
            ""
        };
        format!(
            "{auth}From: Manager <{manager}>\r\nTo: {alias}\r\nSubject: Re: Yearly liaison check-in: Example SDO\r\n\
             Date: {date}\r\nMessage-ID: <check-in-answer-{n}-{pid}@example.org>\r\nIn-Reply-To: {request_id}\r\n\
             References: {request_id}\r\n\r\n\
             All is well: two statements under way, a joint workshop in March.\r\n\r\n\
             On Monday the liaison coordination wrote:\r\n> The IAB liaison coordinators check in once a year\r\n",
            manager = u.manager,
            alias = u.alias,
            date = date(),
            pid = std::process::id()
        )
    };
    let daemon = Daemon::start_at(config, noon(0));
    // A forged answer is not recorded.
    common::mail(tb, &u.manager, &u.alias, answer(false, 1).as_bytes()).await;
    wait_processed(dir.path(), 1, "the forged answer").await;
    let notes = |dir: &Path| -> Vec<(String, Option<String>)> {
        let conn = rusqlite::Connection::open(dir.join("liaisond.db")).expect("open");
        let mut q = conn.prepare("SELECT manager, note FROM check_ins ORDER BY id").expect("prepare");
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<Result<_, _>>().expect("rows")
    };
    assert!(notes(dir.path()).is_empty(), "a forged answer recorded");
    // The manager's verified answer is the check-in; its text, not what it quotes, the report.
    common::mail(tb, &u.manager, &u.alias, answer(true, 2).as_bytes()).await;
    wait_processed(dir.path(), 2, "the answer").await;
    daemon.stop().await;
    let recorded = notes(dir.path());
    assert_eq!(
        recorded,
        [(u.manager.clone(), Some("All is well: two statements under way, a joint workshop in March.".to_string()))]
    );
    assert!(!store(dir.path()).check_ins_asked().expect("asked").contains_key(&u.manager), "answered");
    no_shell_commands(&common::inbox_of(tb, &u.manager).await);
}
