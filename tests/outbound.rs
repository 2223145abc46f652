//! End to end through the real servers: statements are sent over SMTP to the testbed's
//! Postfix, delivered into the Dovecot mailbox of the liaison alias, ingested by liaisond over
//! IMAP; liaisond sends its acknowledgement and notification back through Postfix (submission
//! with STARTTLS and AUTH, or plain smtpd behind a fault-injecting proxy), and the tests read
//! them from the recipients' mailboxes over IMAP.
//!
//! Each test has its own set of testbed users (`tests/testbed-users`): aliasN (the mailbox
//! liaisond reads and sends as), senderN (an SDO's liaison address), managerN (its liaison
//! manager), coordN (the coordinators). The testbed's Postfix adds no Authentication-Results,
//! so a "verified" statement carries one naming mx.example.org, the authserv-id the test trusts
//! (in production the receiving MTA adds it and removes forged copies), at the top of what it
//! submits: delivered, it lies right below Postfix's and Dovecot's Received fields, which
//! `common::config` counts as ours (`own_received_fields = 2`).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Users, config, inbox_of, mail, run_options, submission, testbed, users, wait_inbox};
use liaisond::config::Config;
use liaisond_model::{Class, OutboxRow};
use liaisond_store::{MessageOverview, Store};
use mail_parser::MessageParser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// `[smtp]` in clear text to a loopback port (the fault proxy), no AUTH.
fn plain(port: u16) -> String {
    format!("host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout = \"3s\"")
}

fn date_now() -> String {
    jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{tag}.{}.{nanos}@sdo.example.net", std::process::id())
}

/// A liaison statement from Example SDO with a Word attachment, from `from` (default: the
/// SDO's sender address).
fn statement(u: &Users, title: &str, verified: bool, from: Option<&str>) -> (Vec<u8>, String) {
    let message_id = unique("ls");
    let docx = docx(title);
    let auth = if verified {
        "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.org;\r\n dmarc=pass header.from=example.org\r\n"
    } else {
        ""
    };
    let reply = format!("Send any reply LS to: {}\r\n", u.sender);
    let raw = format!(
        "{auth}From: Jane Doe <{from}>\r\nTo: {alias}\r\nSubject: LS on {title}\r\nDate: {date}\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Liaison statement\r\nTitle: {title}\r\nFrom: Example SDO Working Group 7\r\nTo: IETF OPSAWG\r\n\
         Purpose: For action\r\nDeadline: 2027-03-01\r\nContact: Jane Doe <{sender}>\r\n{reply}\r\n\
         Example SDO asks the IETF OPSAWG to review the attached draft and to comment on the\r\n\
         alignment of the data models before our next meeting.\r\n\r\n--b1\r\n\
         Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document\r\n\
         Content-Disposition: attachment; filename=\"ES-LS-0042.docx\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b1--\r\n",
        sender = u.sender,
        from = from.unwrap_or(&u.sender),
        alias = u.alias,
        date = date_now(),
        body = common::base64::mime_lines(&docx),
    );
    (raw.into_bytes(), message_id)
}

/// A Word document (the parts of an OOXML package that matter to readers) with the
/// statement's text, the same bytes for the same title.
fn docx(title: &str) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let paragraphs = [
        "Example SDO Working Group 7".to_string(),
        format!("Title: {title}"),
        "To: IETF OPSAWG".to_string(),
        "Purpose: For action".to_string(),
        "Example SDO is revising its access node data models and asks the IETF OPSAWG to review the \
         alignment of the YANG modules listed in the annex with the IETF models before 2027-03-01."
            .to_string(),
    ];
    let body: String = paragraphs.iter().map(|p| format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>")).collect();
    let files = [
        ("[Content_Types].xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>".to_string()),
        ("word/document.xml", format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>")),
    ];
    for (name, text) in files {
        zip.start_file(name, options).expect("zip");
        zip.write_all(text.as_bytes()).expect("zip");
    }
    zip.finish().expect("zip");
    out.into_inner()
}

fn sha256(bytes: &[u8]) -> String {
    liaisond_model::sha256_hex(bytes)
}

/// Lets a daemon run a while longer, then checks nothing more arrived.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(4)).await;
}

fn store(dir: &Path) -> Store {
    Store::open(&dir.join("liaisond.db"), Duration::from_secs(10)).expect("open the database")
}

fn messages(dir: &Path) -> Vec<MessageOverview> {
    store(dir).message_overview(None).expect("messages")
}

fn outbox(dir: &Path) -> Vec<OutboxRow> {
    let mut rows = store(dir).outbox_rows(&[], 1000).expect("outbox");
    rows.reverse();
    rows
}

async fn wait_db(dir: &Path, what: &str, f: impl Fn(&[MessageOverview], &[OutboxRow]) -> bool) {
    let start = Instant::now();
    loop {
        if dir.join("liaisond.db").exists() && f(&messages(dir), &outbox(dir)) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}; messages {:?}; outbox {:?}",
            messages(dir).iter().map(|m| (m.id, m.class, m.tracking_id.clone())).collect::<Vec<_>>(),
            outbox(dir)
                .iter()
                .map(|r| (r.id, r.kind.clone(), r.state.clone(), r.last_error.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Daemon {
    token: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<liaisond::RunReport>>,
}

fn start(config: Config) -> Daemon {
    let token = CancellationToken::new();
    let task = tokio::spawn(liaisond::run(config, token.clone(), run_options(false)));
    Daemon { token, task }
}

impl Daemon {
    async fn stop(self) {
        self.token.cancel();
        let report = tokio::time::timeout(Duration::from_secs(30), self.task).await.expect("stops").expect("joins");
        report.expect("the daemon ran without error");
    }
}

fn header<'a>(m: &'a mail_parser::Message<'a>, name: &str) -> String {
    m.header_raw(name).map(|v| v.trim().to_string()).unwrap_or_default()
}

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default().parse(raw).expect("parse")
}

fn find<'a>(all: &'a [Vec<u8>], subject_part: &str) -> Vec<&'a Vec<u8>> {
    all.iter().filter(|raw| parse(raw).subject().is_some_and(|s| s.contains(subject_part))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_is_acknowledged_and_notified_and_nothing_loops() {
    let tb = testbed();
    let u = users(tb, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start(config(tb, dir.path(), &u, &submission(tb, &u), ""));

    let title = format!("alignment of access node YANG models {}", std::process::id());
    let (raw, original_id) = statement(&u, &title, true, None);
    let docx = docx(&title);
    mail(tb, &u.sender, &u.alias, &raw).await;

    // The acknowledgement, in the sender's mailbox.
    let acks = wait_inbox(tb, &u.sender, 1, "the acknowledgement").await;
    let ack = parse(&acks[0]);
    let subject = ack.subject().unwrap_or_default().to_string();
    let tracking = subject.strip_prefix('[').and_then(|s| s.split_once(']')).map(|(t, _)| t.to_string()).unwrap();
    assert!(tracking.starts_with("LS-") && tracking.len() == 12, "{subject}");
    assert!(subject.contains(&format!("Receipt of \"{title}\"")), "{subject}");
    assert_eq!(header(&ack, "Auto-Submitted"), "auto-replied");
    assert_eq!(header(&ack, "X-Auto-Response-Suppress"), "All");
    assert!(ack.header_raw("X-Liaisond-Loop").is_some());
    assert_eq!(header(&ack, "In-Reply-To"), format!("<{original_id}>"));
    assert!(header(&ack, "References").contains(&original_id));
    let ack_id = ack.message_id().unwrap_or_default().to_string();
    assert!(ack_id.starts_with(&format!("liaisond.ack.{tracking}.")) && ack_id.ends_with("@example.org"), "{ack_id}");
    // RFC 3834 §4: sent with the null reverse-path; Dovecot records it as Return-Path.
    assert_eq!(header(&ack, "Return-Path"), "<>");
    assert!(header(&ack, "Cc").contains(&u.coord));
    // On one line: the mail is wrapped at 72 columns.
    let text = ack.body_text(0).unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("no official position"), "{text}");
    assert!(text.contains("discussed with the groups"), "a For Action statement: {text}");
    assert!(text.contains(&sha256(&docx)) && text.contains(&format!("{} bytes", docx.len())), "{text}");
    assert!(text.contains("ES-LS-0042.docx"), "{text}");

    // The notification, in the manager's mailbox, with the original attached.
    let notes = wait_inbox(tb, &u.manager, 1, "the notification").await;
    let note = parse(&notes[0]);
    assert!(
        note.subject().unwrap_or_default().starts_with(&format!("[{tracking}] New liaison statement from Example SDO"))
    );
    assert!(header(&note, "Reply-To").contains(&u.coord), "replies go to the coordinators");
    assert!(header(&note, "Cc").contains(&u.coord));
    assert_eq!(header(&note, "Auto-Submitted"), "auto-generated");
    let body = note.body_text(0).unwrap_or_default().to_string();
    assert!(body.contains("(verified: DMARC pass") && !body.contains("NOT verified"), "{body}");
    assert!(body.contains("by address"), "{body}");
    assert!(body.contains("2027-03-01"), "{body}");
    assert!(body.contains(&format!("sent to {}", u.sender)), "{body}");
    let attached = note.attachments().find(|a| a.is_message()).expect("the original is attached");
    assert_eq!(attached.message().and_then(|m| m.message_id()), Some(original_id.as_str()));
    // The coordinators get both in copy.
    wait_inbox(tb, &u.coord, 2, "the coordinators' copies").await;

    // A person answers the acknowledgement: a follow-up, notified to the manager, not acknowledged.
    let reply = format!(
        "From: Jane Doe <{s}>\r\nTo: {a}\r\nSubject: Re: [{tracking}] Receipt of \"{title}\"\r\nDate: {d}\r\n\
         Message-ID: <{id}>\r\nIn-Reply-To: <{ack_id}>\r\nReferences: <{original_id}> <{ack_id}>\r\n\r\n\
         Thank you. Please find our corrected annex in the next mail.\r\n",
        s = u.sender,
        a = u.alias,
        d = date_now(),
        id = unique("reply")
    );
    mail(tb, &u.sender, &u.alias, reply.as_bytes()).await;
    // An out-of-office answer to our acknowledgement: no response at all.
    let ooo = format!(
        "From: Jane Doe <{s}>\r\nTo: {a}\r\nSubject: Automatic reply: [{tracking}] Receipt of \"{title}\"\r\n\
         Date: {d}\r\nMessage-ID: <{id}>\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: <{ack_id}>\r\n\r\n\
         I am out of the office until Monday.\r\n",
        s = u.sender,
        a = u.alias,
        d = date_now(),
        id = unique("ooo")
    );
    mail(tb, &u.sender, &u.alias, ooo.as_bytes()).await;
    // Our own acknowledgement comes back to the alias (a forward, a list, a misconfigured rule).
    mail(tb, &u.sender, &u.alias, &acks[0]).await;
    // The datatracker's copy of the statement we already hold.
    let datatracker = format!(
        "From: Liaison Statement Management Tool <statements@ietf.org>\r\nTo: {a}\r\n\
         Subject: New Liaison Statement, \"{title}\"\r\nDate: {d}\r\nMessage-ID: <{id}>\r\n\r\n\
         Title: {title}\r\nSubmission Date: 2026-11-23\r\nPlease reply by 2027-03-01\r\n\r\n\
         From: Jane Doe <{s}>\r\nTo: Operations and Management Area Working Group <opsawg@ietf.org>\r\n\
         Purpose: For action\r\n\r\nBody: Example SDO asks the IETF OPSAWG to review the attached draft.\r\n",
        s = u.sender,
        a = u.alias,
        d = date_now(),
        id = unique("dt")
    );
    mail(tb, "statements@ietf.org", &u.alias, datatracker.as_bytes()).await;

    // A delivery report, list mail, and a question that is not a statement.
    let others = [
        ("MAILER-DAEMON@example.net", "Undelivered Mail Returned to Sender", "", "This is the mail system."),
        (
            "announce@lists.example.net",
            "Weekly digest of the access network list",
            "List-Id: Access network list <access.lists.example.net>\r\nPrecedence: list\r\n",
            "Twelve messages this week.",
        ),
        ("curious@example.net", "How do I send you a statement?", "", "Hello, whom do I write to about this?"),
    ];
    for (from, subject, extra, body) in others {
        let raw = format!(
            "From: {from}\r\nTo: {a}\r\nSubject: {subject}\r\nDate: {d}\r\nMessage-ID: <{id}>\r\n{extra}\r\n{body}\r\n",
            a = u.alias,
            d = date_now(),
            id = unique("other")
        );
        mail(tb, from, &u.alias, raw.as_bytes()).await;
    }

    wait_db(dir.path(), "eight messages classified", |m, _| m.len() == 8 && m.iter().all(|m| m.class.is_some())).await;
    let classes: Vec<String> =
        messages(dir.path()).iter().filter_map(|m| m.class.map(|c| c.as_str().to_string())).collect();
    let mut sorted = classes.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["auto_reply", "bounce", "duplicate", "follow_up", "list", "other", "own_mail", "statement"],
        "{classes:?}"
    );
    for m in messages(dir.path()) {
        if matches!(m.class.map(Class::as_str), Some("statement" | "follow_up" | "duplicate")) {
            assert_eq!(m.tracking_id.as_deref(), Some(tracking.as_str()), "{:?} belongs to the statement", m.class);
        }
    }
    // The follow-up reaches the manager.
    let notes = wait_inbox(tb, &u.manager, 2, "the follow-up notification").await;
    assert_eq!(find(&notes, &format!("[{tracking}] Follow-up")).len(), 1);
    settle().await;
    // One acknowledgement in total; the manager heard of the statement and the follow-up only.
    assert_eq!(inbox_of(tb, &u.sender).await.len(), 1, "exactly one acknowledgement");
    assert_eq!(inbox_of(tb, &u.manager).await.len(), 2);
    // The question went to the coordinators, unacknowledged.
    let coord = wait_inbox(tb, &u.coord, 4, "the coordinators' mail").await;
    assert_eq!(find(&coord, "needs a look: How do I send you a statement?").len(), 1);
    let rows = outbox(dir.path());
    assert!(rows.iter().all(|r| r.state == "sent"), "{rows:?}");
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["ack", "notification", "notification", "notification"], "{rows:?}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_sender_goes_to_the_coordinators_and_acknowledgements_are_capped_per_sender() {
    let tb = testbed();
    let u = users(tb, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = "[acknowledgements]\nper_sender_per_day = 2\n";
    let daemon = start(config(tb, dir.path(), &u, &submission(tb, &u), extra));
    let pid = std::process::id();

    // The organisation's known address, but no DMARC pass from the trusted server: a claim.
    let (raw, _) = statement(&u, &format!("spoofed request {pid}"), false, None);
    mail(tb, &u.sender, &u.alias, &raw).await;
    let coord = wait_inbox(tb, &u.coord, 1, "the coordinators' notification").await;
    let note = find(&coord, "New liaison statement");
    assert_eq!(note.len(), 1);
    let body = parse(note[0]).body_text(0).unwrap_or_default().to_string();
    assert!(body.contains("NOT verified"), "{body}");
    assert!(body.contains("unverified") || body.contains("not verified"), "{body}");
    assert!(!header(&parse(note[0]), "To").contains(&u.manager), "not to the manager");
    // Its envelope sender is in the From domain: a receipt that repeats nothing of it.
    let receipts = wait_inbox(tb, &u.sender, 1, "the receipt to the unverified sender").await;
    let receipt = parse(&receipts[0]);
    let (subject, text) = (receipt.subject().unwrap_or_default(), receipt.body_text(0).unwrap_or_default());
    assert!(subject.ends_with("Receipt of your message to the IETF liaison coordination"), "{subject}");
    for taken in ["spoofed request", "Example SDO", "ES-LS-0042", "OPSAWG"] {
        assert!(!subject.contains(taken) && !text.contains(taken), "{taken:?} in the receipt: {subject}\n{text}");
    }
    assert_eq!(header(&receipt, "Return-Path"), "<>");
    assert!(receipt.in_reply_to().as_text().is_none() && receipt.cc().is_none(), "nothing else: {receipt:?}");

    // Three verified statements: the per-sender limit (2 a day, the receipt included) stops
    // the last two acknowledgements.
    for i in 0..3 {
        let (raw, _) = statement(&u, &format!("capped request {i} {pid}"), true, None);
        mail(tb, &u.sender, &u.alias, &raw).await;
    }
    wait_db(dir.path(), "four statements", |m, _| {
        m.iter().filter(|m| m.class.map(Class::as_str) == Some("statement")).count() == 4
    })
    .await;
    wait_inbox(tb, &u.manager, 3, "three notifications to the manager").await;
    settle().await;
    assert_eq!(inbox_of(tb, &u.sender).await.len(), 2, "a receipt and an acknowledgement, then the limit");
    assert_eq!(inbox_of(tb, &u.manager).await.len(), 3, "the spoofed one did not reach the manager");
    let s = store(dir.path());
    let last = messages(dir.path()).last().map(|m| m.id).expect("a message");
    let ack = s.statement_ack(last).expect("ack").expect("a decision");
    assert!(ack.contains("not sent") && ack.contains("limit 2"), "{ack}");
    daemon.stop().await;
}

/// A TCP proxy in front of Postfix's smtpd that can be down, greet with 421, or swallow the
/// server's answer to the message data (the connection then times out after DATA).
struct Proxy {
    greet_421: Arc<AtomicUsize>,
    swallow_after_data: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

async fn proxy(port: u16, upstream: u16) -> Proxy {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind the proxy port again");
    let greet_421 = Arc::new(AtomicUsize::new(0));
    let swallow_after_data = Arc::new(AtomicBool::new(false));
    let (g, sw) = (greet_421.clone(), swallow_after_data.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            if g.load(Ordering::SeqCst) > 0 {
                g.fetch_sub(1, Ordering::SeqCst);
                let _ = client.write_all(b"421 4.3.2 Service not available, try again later\r\n").await;
                continue;
            }
            let swallow = sw.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let data_done = Arc::new(AtomicBool::new(false));
                let done = data_done.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    let mut tail: Vec<u8> = Vec::new();
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        tail.extend_from_slice(&buf[..n]);
                        if swallow && tail.windows(5).any(|w| w == b"\r\n.\r\n") {
                            done.store(true, Ordering::SeqCst);
                        }
                        let keep = tail.len().saturating_sub(4);
                        tail.drain(..keep);
                    }
                });
                let mut buf = vec![0u8; 16384];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if data_done.load(Ordering::SeqCst) {
                        continue; // the answer to the data never reaches liaisond
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    Proxy { greet_421, swallow_after_data, task }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn status_text(dir: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liaisond"))
        .args(["status", "--config"])
        .arg(dir.join("liaisond.toml"))
        .output()
        .expect("run liaisond status");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_4xx_then_5xx_and_uncertain_delivery() {
    let tb = testbed();
    let u = users(tb, 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let pid = std::process::id();

    // SMTP is down: the statement is recorded, its mail waits in the outbox and is retried.
    let daemon = start(config(tb, dir.path(), &u, &plain(port), ""));
    let (raw, _) = statement(&u, &format!("smtp down {pid}"), true, None);
    mail(tb, &u.sender, &u.alias, &raw).await;
    wait_db(dir.path(), "two failed attempts while SMTP is down", |_, o| {
        o.len() == 2 && o.iter().all(|r| r.state == "pending" && r.attempts >= 1 && r.last_error.is_some())
    })
    .await;
    assert!(outbox(dir.path())[0].last_error.as_deref().unwrap_or("").contains("connect"), "{:?}", outbox(dir.path()));
    daemon.stop().await;

    // The server is back, but answers the first connection with 421: a retry, then success.
    let proxy = proxy(port, tb.smtp_port).await;
    proxy.greet_421.store(1, Ordering::SeqCst);
    let daemon = start(config(tb, dir.path(), &u, &plain(port), ""));
    wait_inbox(tb, &u.sender, 1, "the acknowledgement after the restart").await;
    wait_inbox(tb, &u.manager, 1, "the notification after the restart").await;
    wait_db(dir.path(), "both sent", |_, o| o.iter().all(|r| r.state == "sent")).await;
    let events = store(dir.path()).status(200).expect("status").last_events;
    assert!(events.iter().any(|e| e.kind == "outbox_retry" && e.detail.as_deref().unwrap_or("").contains("421")));

    // A permanent refusal (the sender's address does not exist): failed, visible, not retried.
    let (raw, _) = statement(&u, &format!("unknown sender {pid}"), true, Some("nobody-here@example.org"));
    mail(tb, &u.sender, &u.alias, &raw).await;
    wait_db(dir.path(), "the refused acknowledgement", |_, o| o.iter().any(|r| r.state == "failed")).await;
    settle().await;
    let failed: Vec<OutboxRow> = outbox(dir.path()).into_iter().filter(|r| r.state == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].kind.as_str(), failed[0].attempts), ("ack", 1), "not retried: {failed:?}");
    assert!(failed[0].last_error.as_deref().unwrap_or("").contains("550"), "{failed:?}");
    let status = status_text(dir.path());
    assert!(status.contains("failed 1") && status.contains("nobody-here@example.org"), "{status}");

    // The answer to the data is lost: delivery uncertain, not sent again by itself.
    proxy.swallow_after_data.store(true, Ordering::SeqCst);
    let (raw, _) = statement(&u, &format!("lost answer {pid}"), true, None);
    mail(tb, &u.sender, &u.alias, &raw).await;
    wait_db(dir.path(), "uncertain deliveries", |_, o| o.iter().filter(|r| r.state == "uncertain").count() == 2).await;
    proxy.swallow_after_data.store(false, Ordering::SeqCst);
    let acks = wait_inbox(tb, &u.sender, 2, "the uncertain acknowledgement (Postfix did take it)").await;
    settle().await;
    let uncertain_ack =
        outbox(dir.path()).into_iter().find(|r| r.state == "uncertain" && r.kind == "ack").expect("uncertain ack");
    assert_eq!(uncertain_ack.attempts, 1);
    assert_eq!(inbox_of(tb, &u.sender).await.len(), 2);
    // An operator decides to send it again: same Message-ID.
    let retried = store(dir.path()).retry_outbox(uncertain_ack.id, "test").expect("retry");
    assert_eq!(retried.as_deref(), Some("uncertain"));
    let acks_after = wait_inbox(tb, &u.sender, 3, "the retried acknowledgement").await;
    let id_of = |raw: &Vec<u8>| parse(raw).message_id().unwrap_or_default().to_string();
    assert_eq!(id_of(&acks_after[2]), id_of(&acks[1]), "a retry keeps the Message-ID");
    daemon.stop().await;

    // A restart sends nothing again.
    let daemon = start(config(tb, dir.path(), &u, &plain(port), ""));
    settle().await;
    assert_eq!(inbox_of(tb, &u.sender).await.len(), 3);
    daemon.stop().await;
    proxy.task.abort();
}
