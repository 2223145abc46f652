//! The operator's commands (`statements`, `messages quarantined|reprocess`, `export`) on a
//! real database built by the real pipeline from the demo statements, while a daemon (`liaisond
//! run`, a child process) runs against the same database and keeps ingesting. No mail server
//! is needed: the source is a Maildir, and mail is "sent" into an outbox directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{OPERATOR, liaisond, repo_root, spawn_daemon, stop, text, wait_until};
use serde_json::Value;

/// Runs a command that must succeed; its standard output.
fn ok(args: &[&str]) -> String {
    let out = liaisond(args, None);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// Runs a command that must fail with `code`; its standard error.
fn fails(code: i32, args: &[&str]) -> String {
    let out = liaisond(args, None);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stderr)
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect()
}

/// A private copy of the demo: its Maildir, a database and an outbox directory.
struct Demo {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Demo {
    fn new() -> Demo {
        let dir = tempfile::tempdir().expect("tempdir");
        let maildir = dir.path().join("maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        let demo = repo_root().join("fixtures/demo-maildir/new");
        for entry in std::fs::read_dir(&demo).expect("demo maildir") {
            let path = entry.expect("entry").path();
            std::fs::copy(&path, maildir.join("new").join(path.file_name().expect("name"))).expect("copy");
        }
        let config = dir.path().join("liaisond.toml");
        std::fs::write(
            &config,
            "[store]\ndatabase = \"l.db\"\nbusy_timeout = \"10s\"\n\n\
             [[maildir]]\nname = \"local\"\npath = \"maildir\"\nafter_commit = \"cur\"\npoll_interval = \"1s\"\n\n\
             [mail]\nfrom = \"IAB Liaison Coordination <liaison-coordination@iab.org>\"\n\n\
             [routing]\ntrusted_authserv_ids = [\"mail.ietf.org\"]\n\n\
             [outbox]\ndirectory = \"outbox\"\n",
        )
        .expect("config");
        Demo { dir, config }
    }

    fn c(&self) -> &str {
        self.config.to_str().expect("utf8")
    }

    fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.dir.path().join("l.db")).expect("open the database");
        c.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
        c
    }

    fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn events(&self, kind: &str) -> Vec<(i64, String)> {
        let db = self.db();
        let mut stmt =
            db.prepare("SELECT COALESCE(message, 0), detail FROM events WHERE kind = ?1 ORDER BY id").expect("prepare");
        stmt.query_map([kind], |r| Ok((r.get(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default())))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    /// `statements list --json` (plus any filter).
    fn list(&self, filter: &[&str]) -> Vec<Value> {
        let mut args = vec!["statements", "list", "--json", "--config", self.c()];
        args.extend_from_slice(filter);
        json_lines(&ok(&args))
    }

    fn tracking_ids(&self, filter: &[&str]) -> Vec<String> {
        self.list(filter).iter().map(|v| v["tracking_id"].as_str().expect("tracking_id").to_string()).collect()
    }

    /// The statement from this organisation.
    fn of(&self, org: &str) -> Value {
        let found = self.list(&["--org", org]);
        assert_eq!(found.len(), 1, "{org}: {found:#?}");
        found[0].clone()
    }

    fn start_daemon(&self) -> Child {
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).expect("log");
        let child = spawn_daemon(&self.config, "info", log.into());
        wait_until(Duration::from_secs(20), "the daemon to start", || self.daemon_log().contains("liaisond running"));
        child
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }
}

/// RFC 4180, strictly: records end with CRLF, a quoted field may hold anything, a double quote
/// inside is doubled, and nothing else may follow a closing quote.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                assert!(field.is_empty(), "a quote in the middle of an unquoted field: {field:?}");
                loop {
                    match chars.next().expect("an unterminated quoted field") {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        '"' => break,
                        other => field.push(other),
                    }
                }
                assert!(matches!(chars.peek(), Some(',' | '\r')), "text after a closing quote");
            }
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "a record must end with CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            '\n' => panic!("a bare LF outside quotes"),
            other => field.push(other),
        }
    }
    assert!(field.is_empty() && row.is_empty(), "the last record must end with CRLF");
    rows
}

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

#[test]
fn operator_commands_work_while_the_daemon_runs() {
    let demo = Demo::new();
    let c = demo.c();
    // The real pipeline builds the database: 12 demo messages, 8 of them statements.
    let out = ok(&["run", "--once", "--config", c]);
    assert!(out.contains("Recorded 12 new message(s)"), "{out}");
    let daemon = demo.start_daemon();

    // The daemon keeps ingesting while the operator works: a new statement arrives.
    std::fs::write(demo.dir.path().join("maildir/new/1800000000.M1P1.op"), common::sample_message("op", 1))
        .expect("a new message");
    wait_until(Duration::from_secs(20), "the daemon to record the new statement", || demo.list(&[]).len() == 9);

    // --- statements list ---
    let all = demo.list(&[]);
    let ids: Vec<i64> = all.iter().map(|v| v["id"].as_i64().expect("id")).collect();
    assert_eq!(ids, (1..=9).rev().collect::<Vec<_>>(), "newest first");
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    assert!(all.iter().all(|v| v["received_date"] == today.to_string() && v["state"] == "open"), "{all:#?}");
    let itu = demo.of("itu-t");
    let itu_id = itu["tracking_id"].as_str().expect("tracking ID").to_string();
    assert_eq!((&itu["purpose"], &itu["deadline"]), (&Value::from("action"), &Value::from("2027-03-15")));
    let bbf = demo.list(&["--org", "broadband FORUM"]);
    assert_eq!(bbf.len(), 2, "the demo's and the new one, in any case: {bbf:#?}");
    assert_eq!(bbf[1]["deadline"], "2027-03-01");
    let actions = demo.tracking_ids(&["--purpose", "action"]);
    assert_eq!(actions.len(), 4, "{actions:?}");
    assert!(demo.list(&["--purpose", "action"]).iter().all(|v| v["purpose"] == "action"));
    assert_eq!(demo.list(&["--purpose", "info"]).len(), 3, "GSMA, IEEE and the new one");
    assert_eq!(demo.list(&["--since", &today.to_string()]).len(), 9);
    assert!(demo.list(&["--since", &today.tomorrow().expect("tomorrow").to_string()]).is_empty());
    assert_eq!(demo.list(&["--limit", "2"]).iter().map(|v| v["id"].clone()).collect::<Vec<_>>(), [9, 8]);
    assert!(demo.list(&["--overdue"]).is_empty(), "no deadline has passed");
    let table = ok(&["statements", "list", "--config", c]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TRACKING ID   RECEIVED    ORG"), "{table}");
    assert_eq!(lines.len(), 10, "a header and nine statements, no footer in a pipe: {table}");
    let itu_line = lines.iter().find(|l| l.starts_with(&itu_id)).expect("the ITU-T line");
    assert!(itu_line.contains("action") && itu_line.contains("2027-03-15") && itu_line.contains("open"), "{itu_line}");
    assert!(itu_line.ends_with("alignment with the IETF network slice framework"), "whole title in a pipe: {itu_line}");
    assert!(!table.contains('\u{1b}'), "no terminal escapes in a pipe");

    // --- statements show ---
    let shown = ok(&["statements", "show", &itu_id.to_lowercase(), "--config", c]);
    for expected in [
        format!("{itu_id} (statement 7, message 7)"),
        "Deadline:        2027-03-15".into(),
        "From:            ITU-T (groups: itu-t-sg-13)".into(),
        "To groups:       teas, opsawg".into(),
        "Reply to:        tsbsg13@itu.int".into(),
        "Other IDs:       SG13-LS42".into(),
        "Routed to:       mireille.fontaine@example.org, tomasz.wieczorek@example.net; cc liaison-coordination@iab.org"
            .into(),
        "Rule:            address (relationship itu-t, organisation ITU-T)".into(),
        "Sender:          verified (DMARC pass for itu.int (mail.ietf.org))".into(),
        "Acknowledgement: sent to tsbsg13@itu.int".into(),
        "Assigned to:     nobody".into(),
        "State:           open".into(),
    ] {
        assert!(shown.contains(&expected), "{expected:?} missing from:\n{shown}");
    }
    let section = |name: &str| -> String {
        shown.split(&format!("\n{name}:\n")).nth(1).and_then(|s| s.split("\n\n").next()).unwrap_or("").to_string()
    };
    let received = section("Mail received");
    assert!(received.contains("message 7 ") && received.contains("statement"), "{received}");
    assert!(received.contains("message 11") && received.contains("duplicate"), "the datatracker's copy: {received}");
    let sent = section("Mail sent");
    assert_eq!(sent.lines().count(), 2, "{sent}");
    assert!(sent.contains("notification") && sent.contains("ack") && sent.contains("sent"), "{sent}");
    assert!(section("History").contains("statement_recorded"), "{shown}");
    let json: Value = serde_json::from_str(&ok(&["statements", "show", "7", "--json", "--config", c])).expect("JSON");
    assert_eq!(json["tracking_id"], itu_id.as_str());
    assert_eq!(json["read"]["from_groups"], serde_json::json!(["itu-t-sg-13"]));
    assert_eq!(json["read"]["reply_to"], serde_json::json!(["tsbsg13@itu.int"]));
    assert_eq!(json["route_to"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        json["messages"].as_array().map(|m| m.iter().map(|m| m["id"].clone()).collect::<Vec<_>>()),
        Some(vec![7.into(), 11.into()])
    );
    assert_eq!(json["outbox"].as_array().map(Vec::len), Some(2));
    let events = json["events"].as_array().expect("events");
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().expect("at")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order: {times:?}");
    assert!(events.iter().any(|e| e["message"] == 11 && e["kind"] == "processed"), "the duplicate's events too");
    let with_attachment: Value =
        serde_json::from_str(&ok(&["statements", "show", "1", "--json", "--config", c])).expect("JSON");
    assert_eq!(with_attachment["attachments"][0]["filename"], "C4-261234.txt");
    fails(65, &["statements", "show", "LS-1999-0001", "--config", c]);
    let e = fails(65, &["statements", "show", "999", "--config", c]);
    assert!(e.contains("there is no statement 999"), "{e}");

    // --- done, reopen ---
    let out = ok(&["statements", "done", &itu_id, "--reason", "answered by TEAS", "--by", "ana", "--config", c]);
    assert!(out.contains("done (by ana: answered by TEAS)"), "{out}");
    let (state, by, reason): (String, String, String) = demo
        .db()
        .query_row("SELECT state, done_by, done_reason FROM statements WHERE id = 7", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("row");
    assert_eq!((state.as_str(), by.as_str(), reason.as_str()), ("done", "ana", "answered by TEAS"));
    assert!(ok(&["statements", "done", "7", "--config", c]).contains("was done already"), "idempotent");
    assert_eq!(demo.tracking_ids(&["--done"]), vec![itu_id.clone()]);
    assert_eq!(demo.list(&["--open"]).len(), 8);
    assert!(ok(&["statements", "show", "7", "--config", c]).contains("State:           done "), "shown");
    assert!(ok(&["statements", "reopen", &itu_id, "--config", c]).contains("open again"));
    assert!(ok(&["statements", "reopen", &itu_id, "--config", c]).contains("was open already"));
    assert_eq!(demo.count("SELECT count(*) FROM statements WHERE id = 7 AND state = 'open' AND done_at IS NULL"), 1);
    let done_events = demo.events("statement_done");
    assert_eq!(done_events, vec![(7, "by ana: answered by TEAS".to_string())]);
    assert_eq!(demo.events("statement_reopened"), vec![(7, format!("by {OPERATOR}"))], "the Unix user by default");
    fails(65, &["statements", "done", "LS-1999-0001", "--config", c]);

    // --- assign ---
    let out = ok(&["statements", "assign", "7", "manager6@example.org", "--config", c]);
    assert!(out.contains("assigned to manager6@example.org (was nobody)"), "{out}");
    assert_eq!(demo.count("SELECT count(*) FROM statements WHERE assigned_to = 'manager6@example.org'"), 1);
    let e = fails(64, &["statements", "assign", "7", "Manager <manager6@example.org>", "--config", c]);
    assert!(e.contains("not an e-mail address"), "{e}");
    fails(64, &["statements", "assign", "7", "manager6", "--config", c]);
    fails(2, &["statements", "assign", "7", "--config", c]);
    assert_eq!(
        demo.count("SELECT count(*) FROM statements WHERE assigned_to = 'manager6@example.org'"),
        1,
        "unchanged"
    );
    assert!(ok(&["statements", "assign", "7", "--clear", "--config", c]).contains("no longer assigned"));
    assert_eq!(demo.count("SELECT count(*) FROM statements WHERE assigned_to IS NOT NULL"), 0);
    assert_eq!(
        demo.events("statement_assigned"),
        vec![(7, format!("by {OPERATOR}: to manager6@example.org (was nobody)"))]
    );
    assert_eq!(demo.events("statement_unassigned"), vec![(7, format!("by {OPERATOR} (was manager6@example.org)"))]);

    // --- set ---
    let gsma = demo.of("GSMA");
    let gsma_id = gsma["tracking_id"].as_str().expect("id").to_string();
    let yesterday = today.yesterday().expect("yesterday").to_string();
    let out = ok(&["statements", "set", &gsma_id, "deadline", &yesterday, "--by", "bob", "--config", c]);
    assert!(out.contains(&format!("deadline none -> {yesterday}")), "{out}");
    // For information it owes no reply, so it is not overdue; asking for action, it is.
    assert_eq!(demo.tracking_ids(&["--overdue"]), Vec::<String>::new(), "information owes no reply");
    ok(&["statements", "set", &gsma_id, "purpose", "Action", "--config", c]);
    assert_eq!(demo.tracking_ids(&["--overdue"]), vec![gsma_id.clone()], "open, deadline before today");
    assert!(
        ok(&["statements", "list", "--config", c]).lines().any(|l| l.starts_with(&gsma_id) && l.contains("overdue"))
    );
    let awkward = "LS on \"roaming\", DNS; and resolvers";
    ok(&["statements", "set", &gsma_id, "title", awkward, "--config", c]);
    ok(&["statements", "set", &gsma_id, "from_org", "GSM Association", "--config", c]);
    let gsma = demo.of("GSM Association");
    assert_eq!((&gsma["title"], &gsma["purpose"]), (&Value::from(awkward), &Value::from("action")));
    assert_eq!(demo.of("gsma")["id"], gsma["id"], "still found by its recorded organisation");
    let changes: Vec<String> = demo.events("statement_changed").into_iter().map(|(_, d)| d).collect();
    assert_eq!(
        changes,
        vec![
            format!("by bob: deadline none -> \"{yesterday}\""),
            format!("by {OPERATOR}: purpose \"information\" -> \"action\""),
            format!("by {OPERATOR}: title \"LS on DNS resolver discovery for roaming subscribers\" -> {awkward:?}"),
            format!("by {OPERATOR}: from_org \"GSMA\" -> \"GSM Association\""),
        ]
    );
    fails(64, &["statements", "set", &gsma_id, "deadline", "2026-02-30", "--config", c]);
    fails(64, &["statements", "set", &gsma_id, "deadline", "soon", "--config", c]);
    fails(64, &["statements", "set", &gsma_id, "purpose", "urgent", "--config", c]);
    fails(64, &["statements", "set", &gsma_id, "title", "", "--config", c]);
    let e = fails(2, &["statements", "set", &gsma_id, "colour", "red", "--config", c]);
    assert!(e.contains("possible values"), "{e}");
    fails(65, &["statements", "set", "LS-1999-0001", "title", "x", "--config", c]);
    fails(64, &["statements", "list", "--since", "yesterday", "--config", c]);
    fails(2, &["statements", "list", "--purpose", "urgent", "--config", c]);
    fails(2, &["statements", "list", "--open", "--done", "--config", c]);
    assert_eq!(
        demo.count("SELECT count(*) FROM events WHERE kind = 'statement_changed'"),
        4,
        "refusals change nothing"
    );
    ok(&["statements", "set", &gsma_id, "deadline", "none", "--config", c]);
    assert!(demo.list(&["--overdue"]).is_empty());

    // --- quarantined, reprocess ---
    // The demo's unreadable message is quarantined; and, as if the GSMA statement's reading had
    // once overrun the time limit, quarantine it too (set up through SQL: its statement row,
    // tracking ID and outbox rows stay, as they would).
    let gsma_message = gsma["message"].as_i64().expect("message");
    demo.db()
        .execute(
            "UPDATE messages SET state = 'quarantined', state_detail = 'pipeline took longer than 30s', attempts = 3
             WHERE id = ?1",
            [gsma_message],
        )
        .expect("quarantine");
    let listed = ok(&["messages", "quarantined", "--config", c]);
    assert!(listed.lines().next().is_some_and(|h| h.contains("REASON")), "{listed}");
    assert!(listed.contains("parse: no header section"), "{listed}");
    assert!(listed.contains("pipeline took longer than 30s"), "{listed}");
    let quarantined = json_lines(&ok(&["messages", "quarantined", "--json", "--config", c]));
    let q_ids: Vec<i64> = quarantined.iter().map(|q| q["id"].as_i64().expect("id")).collect();
    assert_eq!(q_ids, vec![gsma_message, 12]);
    let outbox_before = demo.count("SELECT count(*) FROM outbox");
    let queued_before = demo.events("outbox_queued").len();
    let out = ok(&["messages", "reprocess", "--all", "--by", "carol", "--config", c]);
    assert!(out.contains(&format!("message {gsma_message}: processed: statement {gsma_id}")), "{out}");
    assert!(out.contains("message 12: quarantined: parse"), "the same code quarantines it again: {out}");
    assert_eq!(
        demo.count("SELECT count(*) FROM events WHERE kind = 'reprocess_requested' AND detail LIKE 'by carol (was quarantined:%'"),
        2
    );
    assert_eq!(demo.count("SELECT count(*) FROM messages WHERE state = 'quarantined'"), 1);
    let gsma = demo.of("GSM Association");
    assert_eq!(gsma["tracking_id"], gsma_id.as_str(), "the statement keeps its tracking ID");
    assert_eq!(gsma["title"], awkward, "and the operator's corrections");
    assert_eq!(demo.list(&[]).len(), 9, "no new statement");
    // A processed statement and a duplicate, by number: each stays what it was.
    assert!(
        ok(&["messages", "reprocess", "7", "--config", c])
            .contains(&format!("message 7: processed: statement {itu_id}"))
    );
    assert!(
        ok(&["messages", "reprocess", "11", "--config", c])
            .contains(&format!("message 11: processed: duplicate {itu_id}"))
    );
    assert_eq!(demo.count("SELECT count(*) FROM outbox"), outbox_before, "nothing queued again");
    assert_eq!(demo.events("outbox_queued").len(), queued_before);
    assert_eq!(demo.list(&[]).len(), 9);
    fails(65, &["messages", "reprocess", "9999", "--config", c]);
    fails(2, &["messages", "reprocess", "--config", c]);
    fails(2, &["messages", "reprocess", "7", "--all", "--config", c]);
    assert_eq!(demo.count("SELECT count(*) FROM messages WHERE state = 'pending'"), 0);

    // --- relationships: the yearly check-in ---
    let managers = json_lines(&ok(&["relationships", "managers", "--json", "--config", c]));
    let yusuf =
        |m: &[Value]| m.iter().find(|m| m["email"] == "yusuf.okonkwo@example.net").cloned().expect("MEF's manager");
    assert_eq!(yusuf(&managers)["last_contact"], "2024-11-05");
    assert_eq!(yusuf(&managers)["check_in_due"], true);
    let said = ok(&[
        "relationships",
        "check-in",
        "Yusuf.Okonkwo@example.net",
        "--date",
        "2026-11-20",
        "--note",
        "call",
        "--config",
        c,
    ]);
    assert!(said.contains("yusuf.okonkwo@example.net on 2026-11-20"), "{said}");
    let managers = json_lines(&ok(&["relationships", "managers", "--json", "--config", c]));
    assert_eq!(yusuf(&managers)["last_contact"], "2026-11-20");
    assert_eq!(demo.events("check_in").last().map(|e| e.1.contains("call")), Some(true));
    fails(65, &["relationships", "check-in", "nobody@example.org", "--config", c]);
    fails(64, &["relationships", "check-in", "yusuf.okonkwo@example.net", "--date", "20-11-2026", "--config", c]);

    // --- the older commands use the same exit codes ---
    fails(65, &["messages", "show", "9999", "--config", c]);
    fails(65, &["messages", "attachment", "1", "99", "--config", c]);
    fails(65, &["outbox", "retry", "9999", "--config", c]);
    fails(65, &["outbox", "cancel", "9999", "--config", c]);
    fails(64, &["outbox", "list", "--state", "bogus", "--config", c]);

    // --- backup, while the daemon writes ---
    let copy = demo.dir.path().join("backup.db");
    let copy_arg = copy.to_str().expect("utf8");
    let said = ok(&["backup", "--config", c, copy_arg]);
    assert!(
        said.contains("quick_check ok") && said.contains(&format!("schema {}", liaisond_store::SCHEMA_VERSION)),
        "{said}"
    );
    let copied = liaisond_store::Store::open(&copy, Duration::from_secs(5)).expect("the copy opens");
    assert_eq!(copied.statements().expect("statements").len(), demo.list(&[]).len());
    fails(64, &["backup", "--config", c, copy_arg]);

    // --- export ---
    let exported: Value = serde_json::from_str(&ok(&["export", "--format", "json", "--config", c])).expect("an array");
    let rows = exported.as_array().expect("array");
    assert_eq!(rows.len(), 9);
    assert_eq!(
        rows[0].as_object().expect("object").keys().map(String::as_str).collect::<Vec<_>>().len(),
        COLUMNS.len()
    );
    let row = |id: &str| rows.iter().find(|r| r["tracking_id"] == id).unwrap_or_else(|| panic!("{id} exported"));
    let itu_row = row(&itu_id);
    assert_eq!(itu_row["purpose"], "action");
    assert_eq!(itu_row["deadline"], "2027-03-15");
    assert_eq!(itu_row["from_groups"], serde_json::json!(["itu-t-sg-13"]));
    assert_eq!(itu_row["to_groups"], serde_json::json!(["teas", "opsawg"]));
    assert_eq!(itu_row["response_contacts"], serde_json::json!(["tsbsg13@itu.int"]));
    assert_eq!(itu_row["other_identifiers"], serde_json::json!(["SG13-LS42"]));
    assert_eq!(itu_row["submitted_date"], today.to_string());
    assert!(itu_row["body"].as_str().is_some_and(|b| b.contains('\n')), "the body, with its lines");
    assert_eq!(row(demo.of("IEEE 802")["tracking_id"].as_str().expect("id"))["purpose"], "info");
    assert_eq!(row(&gsma_id)["title"], awkward);
    let csv = ok(&["export", "--format", "csv", "--config", c]);
    let records = parse_csv(&csv);
    assert_eq!(records[0], COLUMNS);
    assert_eq!(records.len(), 10);
    for record in &records[1..] {
        assert_eq!(record.len(), COLUMNS.len());
        let json = row(&record[0]);
        for (i, name) in COLUMNS.iter().enumerate() {
            let expected = match &json[*name] {
                Value::Array(items) => items.iter().map(|v| v.as_str().expect("text")).collect::<Vec<_>>().join(", "),
                Value::Null => String::new(),
                v => v.as_str().expect("text").to_string(),
            };
            assert_eq!(record[i], expected, "{} {name}", record[0]);
        }
    }
    let open: Value =
        serde_json::from_str(&ok(&["export", "--open", "--since", &today.to_string(), "--config", c])).expect("JSON");
    assert_eq!(open.as_array().map(Vec::len), Some(9));
    ok(&["statements", "done", &gsma_id, "--config", c]);
    let open: Value = serde_json::from_str(&ok(&["export", "--open", "--config", c])).expect("JSON");
    assert_eq!(open.as_array().map(Vec::len), Some(8));
    fails(64, &["export", "--since", "2026-11", "--config", c]);
    fails(2, &["export", "--format", "xml", "--config", c]);

    // --- output into a closed pipe (`| head`) ---
    for args in [
        &["statements", "list"][..],
        &["statements", "list", "--json"],
        &["statements", "show", "7"],
        &["statements", "show", "7", "--json"],
        &["messages", "quarantined"],
        &["export", "--format", "csv"],
        &["export"],
        &["status"],
        &["outbox", "list"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_liaisond"))
            .args(args)
            .args(["--config", c])
            .env("LIAISOND_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // The reader goes away before the command has written anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = text(&out.stderr);
        assert!(!stderr.to_lowercase().contains("broken pipe"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }

    // The daemon ran throughout: it answered the new statement and recorded nothing twice.
    wait_until(Duration::from_secs(20), "the daemon to send what is queued", || {
        demo.count("SELECT count(*) FROM outbox WHERE state != 'sent'") == 0
    });
    let written: Vec<String> = demo
        .dir
        .path()
        .join("outbox")
        .read_dir()
        .expect("outbox")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let about_statements = written.iter().filter(|n| n.ends_with("-ack.eml") || n.ends_with("-notification.eml"));
    assert_eq!(about_statements.count(), 18, "8 + 1 statements, 2 mails each: {written:?}");
    let status = stop(daemon);
    assert_eq!(status.code(), Some(0), "{}", demo.daemon_log());
    let log = demo.daemon_log();
    assert!(log.contains("liaisond stopped"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn every_operator_command_explains_itself() {
    let top = ok(&["--help"]);
    assert!(top.contains("Exit codes:") && top.contains("65") && top.contains("64"), "{top}");
    for (args, says) in [
        (&["statements", "--help"][..], "list, show, mark done"),
        (&["statements", "list", "--help"], "--overdue"),
        (&["statements", "show", "--help"], "history"),
        (&["statements", "done", "--help"], "--reason"),
        (&["statements", "reopen", "--help"], "done statement"),
        (&["statements", "assign", "--help"], "--clear"),
        (&["statements", "set", "--help"], "from_org"),
        (&["messages", "quarantined", "--help"], "quarantined"),
        (&["messages", "reprocess", "--help"], "--all"),
        (&["export", "--help"], "datatracker"),
        (&["relationships", "managers", "--help"], "last contact"),
        (&["relationships", "check-in", "--help"], "contact"),
        (&["backup", "--help"], "VACUUM INTO"),
    ] {
        let out = ok(args);
        assert!(out.contains(says), "{args:?} should mention {says:?}:\n{out}");
        assert!(args.len() == 2 || out.contains("--config"), "{args:?}:\n{out}");
    }
}

#[test]
fn operator_commands_need_a_database_and_a_valid_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("liaisond.toml");
    std::fs::write(&config, "[store]\ndatabase = \"none.db\"\n").expect("config");
    let c = config.to_str().expect("utf8");
    let e = fails(1, &["statements", "list", "--config", c]);
    assert!(e.contains("no database"), "{e}");
    assert!(!Path::new(&dir.path().join("none.db")).exists(), "listing creates no database");
    std::fs::write(&config, "[store]\ndatabase = \"none.db\"\nsurprise = 1\n").expect("config");
    fails(78, &["statements", "list", "--config", c]);
    fails(78, &["export", "--config", c]);
    fails(78, &["messages", "reprocess", "--all", "--config", c]);
}
