//! Shared test support: the loopback Dovecot testbed (started through `scripts/testbed`), an
//! IMAP client for setting up and inspecting mailboxes, configurations, and sample messages.
//!
//! Each test works in its own mailbox (a unique name under the `liaison` user), so tests in
//! one binary run in parallel without seeing each other's mail.
#![allow(dead_code)]

pub mod base64;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_imap::Session;
use futures_util::TryStreamExt;
use liaisond::config::{Config, SmtpConfig, TlsMode};
use liaisond_store::{MessageOverview, Store};
use tokio::net::TcpStream;

pub const USER: &str = "liaison@example.org";

/// The Unix user the commands run as, as they record it when no `--by` is given.
pub const OPERATOR: &str = "op-tester";

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_liaisond");

/// Runs `liaisond args…` to its end: warnings only in the log, no configuration from the
/// environment, [`OPERATOR`] as the Unix user, `stdin` piped in when given.
pub fn liaisond(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("LIAISOND_LOG", "warn")
        .env("USER", OPERATOR)
        .env_remove("SUDO_USER")
        .env_remove("LIAISOND_CONFIG")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn liaisond");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // liaisond may exit before reading (a broken config); the MTA then sees EPIPE too.
        if let Err(e) = pipe.write_all(input) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    child.wait_with_output().expect("wait")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Starts `liaisond run --config config` as its own process, logging at `log_level` to
/// `stderr`.
pub fn spawn_daemon(config: &Path, log_level: &str, stderr: Stdio) -> Child {
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .env("LIAISOND_LOG", log_level)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn the daemon")
}

/// Stops a daemon process with SIGTERM, as systemd does, and waits for it (at most 30 s).
pub fn stop(mut daemon: Child) -> ExitStatus {
    // SAFETY: kill(2) with a valid pid and signal number has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let start = Instant::now();
    loop {
        if let Some(status) = daemon.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = daemon.kill();
            panic!("the daemon did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` (blocking the thread) until it is true or `limit` passes.
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the test testbed lives (override with LIAISOND_TESTBED_DIR).
pub fn testbed_dir() -> PathBuf {
    std::env::var_os("LIAISOND_TESTBED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/liaisond-testbed"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug, Clone)]
pub struct Testbed {
    pub dir: PathBuf,
    pub host: String,
    pub imap_port: u16,
    pub imaps_port: u16,
    /// An IMAP listener whose server advertises no MOVE (only UIDPLUS).
    pub nomove_host: String,
    pub nomove_port: u16,
    pub ca: PathBuf,
    pub password: String,
    /// Postfix smtpd (no AUTH from loopback).
    pub smtp_port: u16,
    /// Postfix submission (STARTTLS, then AUTH).
    pub submission_port: u16,
}

/// The users the end-to-end tests add to the testbed (one set per test).
pub const EXTRA_USERS: &str = include_str!("../testbed-users");

/// Starts the testbed once per test binary (the script is idempotent and serialised with a
/// lock, so parallel binaries are fine too) and reads its ports.
pub fn testbed() -> &'static Testbed {
    static TB: OnceLock<Testbed> = OnceLock::new();
    TB.get_or_init(|| {
        let dir = testbed_dir();
        let status = std::process::Command::new(repo_root().join("scripts/testbed"))
            .arg("start")
            .arg(&dir)
            // Every start must name the same users (a different list reloads the servers):
            // scripts/test passes the same file.
            .env("TESTBED_EXTRA_USERS", EXTRA_USERS.trim())
            .stdin(std::process::Stdio::null())
            .status()
            .expect("run scripts/testbed start");
        assert!(status.success(), "scripts/testbed start {} failed: {status}", dir.display());
        let env = std::fs::read_to_string(dir.join("env")).expect("testbed env file");
        let vars: HashMap<String, String> = env
            .lines()
            .filter_map(|l| l.trim().strip_prefix("export ").or(Some(l.trim())))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches(|c| c == '"' || c == '\'').to_string()))
            .collect();
        let get = |k: &str| vars.get(k).cloned().unwrap_or_else(|| panic!("{k} missing from testbed env"));
        Testbed {
            dir: dir.clone(),
            host: get("TESTBED_HOST"),
            imap_port: get("TESTBED_IMAP_PORT").parse().expect("port"),
            imaps_port: get("TESTBED_IMAPS_PORT").parse().expect("port"),
            nomove_host: get("TESTBED_IMAP_NOMOVE_HOST"),
            nomove_port: get("TESTBED_IMAP_NOMOVE_PORT").parse().expect("port"),
            ca: PathBuf::from(get("TESTBED_CA")),
            password: get("TESTBED_PASSWORD"),
            smtp_port: get("TESTBED_SMTP_PORT").parse().expect("port"),
            submission_port: get("TESTBED_SUBMISSION_PORT").parse().expect("port"),
        }
    })
}

/// A unique mailbox name for one test.
pub fn unique_mailbox(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("t-{test}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

pub type TestSession = Session<TcpStream>;

/// A plain-text IMAP session (loopback) for setting up and inspecting mailboxes.
pub async fn imap(tb: &Testbed) -> TestSession {
    let tcp = TcpStream::connect((tb.host.as_str(), tb.imap_port)).await.expect("connect to testbed IMAP");
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.expect("greeting").expect("greeting present");
    client.login(USER, &tb.password).await.map_err(|(e, _)| e).expect("login")
}

/// A plain-text IMAP session as another testbed user.
pub async fn imap_as(tb: &Testbed, user: &str) -> TestSession {
    let tcp = TcpStream::connect((tb.host.as_str(), tb.imap_port)).await.expect("connect to testbed IMAP");
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.expect("greeting").expect("greeting present");
    client.login(user, &tb.password).await.map_err(|(e, _)| e).expect("login")
}

/// Every message in a user's INBOX, raw, in UID order.
pub async fn inbox_of(tb: &Testbed, user: &str) -> Vec<Vec<u8>> {
    let mut s = imap_as(tb, user).await;
    let mailbox = s.select("INBOX").await.expect("select INBOX");
    let mut all = Vec::new();
    if mailbox.exists > 0 {
        let fetches: Vec<_> =
            s.uid_fetch("1:*", "BODY.PEEK[]").await.expect("fetch").try_collect().await.expect("fetch");
        let mut with_uid: Vec<(u32, Vec<u8>)> =
            fetches.iter().filter_map(|f| Some((f.uid?, f.body()?.to_vec()))).collect();
        with_uid.sort_by_key(|(uid, _)| *uid);
        all = with_uid.into_iter().map(|(_, b)| b).collect();
    }
    let _ = s.logout().await;
    all
}

/// A fresh mailbox for one test holding `n` sample messages (tagged with the mailbox name).
pub async fn mailbox_with(tb: &Testbed, test: &str, n: usize) -> (TestSession, String) {
    let mailbox = unique_mailbox(test);
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    for i in 0..n {
        append(&mut s, &mailbox, &sample_message(&mailbox, i), None).await;
    }
    (s, mailbox)
}

pub async fn create_mailbox(s: &mut TestSession, name: &str) {
    s.create(name).await.expect("create mailbox");
}

pub async fn append(s: &mut TestSession, mailbox: &str, raw: &[u8], flags: Option<&str>) {
    s.append(mailbox, flags, None, raw).await.expect("append");
}

/// UID → flags of every message in a mailbox.
pub async fn flags(s: &mut TestSession, mailbox: &str) -> Vec<(u32, Vec<String>)> {
    let mb = s.examine(mailbox).await.expect("examine");
    if mb.exists == 0 {
        return Vec::new();
    }
    let fetched: Vec<_> =
        s.uid_fetch("1:*", "(UID FLAGS)").await.expect("fetch flags").try_collect().await.expect("flags stream");
    let mut out: Vec<(u32, Vec<String>)> =
        fetched.iter().filter_map(|f| f.uid.map(|u| (u, f.flags().map(|fl| format!("{fl:?}")).collect()))).collect();
    out.sort();
    out
}

/// How many messages a mailbox holds.
pub async fn count(s: &mut TestSession, mailbox: &str) -> u32 {
    s.examine(mailbox).await.expect("examine").exists
}

/// A realistic small liaison-statement mail with a unique Message-ID.
pub fn sample_message(tag: &str, i: usize) -> Vec<u8> {
    format!(
        "Return-Path: <liaisons@broadband-forum.org>\r\n\
         From: Broadband Forum Liaisons <liaisons@broadband-forum.org>\r\n\
         To: liaison-coordination@iab.org\r\n\
         Subject: LIAISE-{i:03}-01: statement {i} for test {tag}\r\n\
         Date: Mon, 23 Nov 2026 10:{:02}:00 +0000\r\n\
         Message-ID: <{tag}.{i}@broadband-forum.org>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Title: Statement number {i}\r\n\
         Purpose: For information\r\n\
         \r\n\
         {}\r\n",
        i % 60,
        "The Broadband Forum informs the IETF of its progress on this work item. ".repeat(3 + i % 20)
    )
    .into_bytes()
}

pub fn message_id_of(tag: &str, i: usize) -> String {
    format!("{tag}.{i}@broadband-forum.org")
}

/// Bytes that no parser can call an e-mail message.
pub fn garbage_message() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend((0..400u32).map(|i| (i * 37 % 251) as u8));
    v.extend_from_slice(b"\r\n");
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Implicit,
    StartTls,
    None,
}

/// A configuration for one test mailbox, written next to the database in `dir`.
pub fn imap_config(tb: &Testbed, dir: &Path, mailbox: &str, tls: Security, after_commit: &str, extra: &str) -> Config {
    let (tls_name, port) = match tls {
        Security::Implicit => ("implicit", tb.imaps_port),
        Security::StartTls => ("starttls", tb.imap_port),
        Security::None => ("none", tb.imap_port),
    };
    // The testbed certificate names `localhost`; plain text needs a loopback IP, both work.
    let host = if tls == Security::None { tb.host.clone() } else { "localhost".to_string() };
    let ca = if tls == Security::None { String::new() } else { format!("ca_file = \"{}\"\n", tb.ca.display()) };
    let (after, move_to) = match after_commit {
        "move" => ("move", format!("move_to = \"{mailbox}-done\"\n")),
        other => (other, String::new()),
    };
    let text = format!(
        "[store]\ndatabase = \"liaisond.db\"\nbusy_timeout = \"5s\"\n\n{extra_limits}\
         [[imap]]\nname = \"test\"\nhost = \"{host}\"\nport = {port}\ntls = \"{tls_name}\"\n{ca}\
         username = \"{USER}\"\npassword = \"{pw}\"\nmailbox = \"{mailbox}\"\nafter_commit = \"{after}\"\n{move_to}\
         timeout = \"10s\"\npoll_interval = \"2s\"\n{extra}",
        extra_limits = "",
        pw = tb.password,
    );
    let path = dir.join("liaisond.toml");
    std::fs::write(&path, &text).expect("write config");
    Config::load(&path).unwrap_or_else(|e| panic!("test config invalid: {e}\n{text}"))
}

/// Every message row in the database.
pub fn stored(db: &Path) -> Vec<MessageOverview> {
    let store = Store::open(db, Duration::from_secs(5)).expect("open db");
    store.message_overview(None).expect("overview")
}

/// Asserts that the database holds exactly these Message-IDs, each once.
pub fn assert_stored_once(db: &Path, expected: &[String]) {
    let rows = stored(db);
    let mut ids: Vec<String> = rows.iter().filter_map(|m| m.message_id.clone()).collect();
    ids.sort();
    let mut want = expected.to_vec();
    want.sort();
    let dupes: Vec<&String> = ids.windows(2).filter(|w| w[0] == w[1]).map(|w| &w[0]).collect();
    assert!(dupes.is_empty(), "duplicates stored: {dupes:?}");
    assert_eq!(ids.len(), want.len(), "stored {} messages, expected {}", ids.len(), want.len());
    assert_eq!(ids, want);
}

/// Polls `f` until it is true or `limit` passes.
pub async fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many message rows the database holds (0 when it does not exist yet).
pub fn row_count(db: &Path) -> usize {
    if !db.exists() {
        return 0;
    }
    // An unreadable database is a failure, not "0 rows" (an assertion like "fewer than N"
    // would then pass whatever happened).
    let store = Store::open(db, Duration::from_secs(30)).unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    store.message_overview(None).unwrap_or_else(|e| panic!("read {}: {e}", db.display())).len()
}

/// Run options for tests: the extraction workers are the real `liaisond` binary (the test's
/// own executable is the test harness).
#[allow(dead_code)]
pub fn run_options(once: bool) -> liaisond::RunOptions {
    liaisond::RunOptions {
        once,
        extractor_program: Some(std::path::PathBuf::from(env!("CARGO_BIN_EXE_liaisond"))),
        ..liaisond::RunOptions::default()
    }
}

// End-to-end mail: users, sending through Postfix, waiting for delivery.

/// One test's users.
pub struct Users {
    pub alias: String,
    pub sender: String,
    pub manager: String,
    pub coord: String,
}

/// Test `n`'s users, with empty mailboxes (mail from an earlier run is gone).
pub async fn users(tb: &Testbed, n: usize) -> Users {
    let u = Users {
        alias: format!("alias{n}@example.org"),
        sender: format!("sender{n}@example.org"),
        manager: format!("manager{n}@example.org"),
        coord: format!("coord{n}@example.org"),
    };
    for user in [&u.alias, &u.sender, &u.manager, &u.coord] {
        let mut s = imap_as(tb, user).await;
        let mailbox = s.select("INBOX").await.expect("select");
        if mailbox.exists > 0 {
            let _: Vec<_> =
                s.uid_store("1:*", "+FLAGS (\\Deleted)").await.expect("store").try_collect().await.expect("store");
            let _: Vec<_> = s.expunge().await.expect("expunge").try_collect().await.expect("expunge");
        }
        let _ = s.logout().await;
    }
    u
}

/// Sends `raw` from `from` to `to` through the testbed's Postfix (as an SDO's server would).
pub async fn mail(tb: &Testbed, from: &str, to: &str, raw: &[u8]) {
    let cfg = SmtpConfig {
        host: tb.host.clone(),
        port: tb.smtp_port,
        tls: TlsMode::None,
        ca_file: None,
        credentials: None,
        password_source: None,
        timeout: Duration::from_secs(10),
        hello_name: Some("sdo.example.net".into()),
    };
    let smtp = liaisond::outbox::Smtp::new(cfg).expect("plain SMTP");
    let message = liaisond::outbox::Message { bytes: raw, seven_bit: None };
    liaisond::outbox::deliver(&smtp, Some(from), &[to.to_string()], message, || async { Ok(()) })
        .await
        .unwrap_or_else(|e| panic!("sending a test message failed: {e}"));
}

/// Waits until `user`'s INBOX holds at least `n` messages; returns them all.
pub async fn wait_inbox(tb: &Testbed, user: &str, n: usize, what: &str) -> Vec<Vec<u8>> {
    let start = Instant::now();
    loop {
        let all = inbox_of(tb, user).await;
        if all.len() >= n {
            return all;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}: {user} has {}", all.len());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The built-in relationships data with this test's coordinators and own address, and an
/// organisation "Example SDO" that sends from senderN and is managed by managerN.
pub fn relationships(u: &Users) -> String {
    let builtin = std::fs::read_to_string(repo_root().join("config/relationships.toml")).expect("read");
    let builtin = builtin
        .replace("coordinators = [\"liaison-coordination@iab.org\"]", &format!("coordinators = [\"{}\"]", u.coord))
        .replace(
            "own_addresses = [\"liaison-coordination@iab.org\", \"statements@ietf.org\"]",
            &format!("own_addresses = [\"{}\", \"statements@ietf.org\"]", u.alias),
        );
    assert!(builtin.contains(&u.coord), "the [ietf] section of config/relationships.toml changed; adapt this test");
    format!(
        "{builtin}\n[[organization]]\nname = \"Example SDO\"\nacronym = \"example-sdo\"\naddresses = [\"{}\"]\n\
         markers = [\"Example SDO\"]\nmanagers = [{{ name = \"Manager\", email = \"{}\" }}]\n",
        u.sender, u.manager
    )
}

/// A daemon configuration for users `u`, sending through `smtp` (a TOML table body).
pub fn config(tb: &Testbed, dir: &Path, u: &Users, smtp: &str, extra: &str) -> Config {
    std::fs::write(dir.join("rel.toml"), relationships(u)).expect("write relationships");
    let text = format!(
        r#"relationships = "rel.toml"
[store]
database = "liaisond.db"
[[imap]]
name = "alias"
host = "{host}"
port = {port}
tls = "none"
username = "{alias}"
password = "{pw}"
after_commit = "seen"
poll_interval = "1s"
[mail]
from = "Liaison Coordination Test <{alias}>"
[routing]
trusted_authserv_ids = ["mx.example.org"]
# Mail sent through the testbed arrives with two Received fields above the test's own
# Authentication-Results: Postfix's (smtpd) and Dovecot's (LMTP, lmtp_add_received_header).
own_received_fields = 2
[smtp]
{smtp}
[outbox]
retry_min = "1s"
retry_max = "2s"
{check_in}{extra}
"#,
        host = tb.host,
        port = tb.imap_port,
        alias = u.alias,
        pw = tb.password,
        // The yearly check-in requests would mail every manager of the built-in data at the
        // first pass; only the test of them turns them on.
        check_in = if extra.contains("[check_in]") { "" } else { "[check_in]\nrequests = false\n" },
    );
    let path = dir.join("liaisond.toml");
    std::fs::write(&path, &text).expect("write config");
    Config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// `[smtp]` through the testbed's submission port: STARTTLS (pinned CA), then AUTH.
pub fn submission(tb: &Testbed, u: &Users) -> String {
    format!(
        "host = \"{}\"\nport = {}\ntls = \"starttls\"\nca_file = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\ntimeout = \"10s\"",
        tb.host,
        tb.submission_port,
        tb.ca.display(),
        u.alias,
        tb.password
    )
}
