//! liaisond as a systemd service: the unit file (`systemd-analyze verify` and `security`), the
//! notification protocol spoken by the real binary (READY after the first poll, STATUS,
//! WATCHDOG while every loop is alive, STOPPING), SIGHUP reloading the relationships data and
//! the templates, and `liaisond doctor` against the testbed.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{BIN, repo_root, sample_message, testbed, text, wait_until};

/// `systemd-analyze` (which `scripts/testbed install` installs; missing is a failure, not a
/// skip: the unit would go unchecked) in `dir`, finding man pages in `dir/man` first: `verify` runs man(1) on
/// each `Documentation=man:` page, and the test writes liaisond's there (the package installs
/// them; scripts/package-check verifies the installed unit).
fn systemd_analyze(args: &[&str], dir: &Path) -> std::process::Output {
    let manpath = format!("{}:", dir.join("man").display());
    let mut command = Command::new("systemd-analyze");
    command.args(args).current_dir(dir).env("MANPATH", manpath).stdin(Stdio::null());
    command.output().unwrap_or_else(|e| {
        panic!("systemd-analyze: {e}; run `scripts/testbed install` (it installs the systemd package)")
    })
}

/// liaisond(8) and liaisond.toml(5) under `dir/man`, as `liaisond generate` makes them.
fn write_man_pages(dir: &Path) {
    for (what, section, name) in [("man", "8", "liaisond.8"), ("config-man", "5", "liaisond.toml.5")] {
        let out = Command::new(BIN).args(["generate", what]).output().expect("liaisond generate");
        assert!(out.status.success(), "liaisond generate {what}");
        let pages = dir.join(format!("man/man{section}"));
        std::fs::create_dir_all(&pages).expect("man dir");
        std::fs::write(pages.join(name), out.stdout).expect("write page");
    }
}

#[test]
fn the_unit_file_verifies_and_is_sandboxed() {
    let unit = std::fs::read_to_string(repo_root().join("systemd/liaisond.service")).expect("unit file");
    for needed in [
        "Type=notify\n",
        "NotifyAccess=main\n",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID\n",
        "StateDirectory=liaisond\n",
        "ConfigurationDirectory=liaisond\n",
        "LoadCredential=imap-password:",
        "User=liaisond\n",
        // Issue 13: no core dumps, bounded tasks and memory, no listening socket.
        "LimitCORE=0\n",
        "TasksMax=",
        "MemoryHigh=",
        "MemoryMax=",
        "SocketBindDeny=any\n",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed:?}");
    }
    // The extraction workers call setrlimit(2): a filter without @resources would kill them.
    let filters: Vec<&str> = unit.lines().filter(|l| l.starts_with("SystemCallFilter=")).collect();
    assert!(filters.iter().any(|l| l.contains("@system-service")), "{filters:?}");
    assert!(!filters.iter().any(|l| l.contains("@resources")), "the workers need setrlimit (@resources): {filters:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let installed = unit.replace("ExecStart=/usr/bin/liaisond ", &format!("ExecStart={BIN} "));
    assert_ne!(installed, unit, "ExecStart names /usr/bin/liaisond");
    std::fs::write(dir.path().join("liaisond.service"), installed).expect("write unit");
    write_man_pages(dir.path());

    let out = systemd_analyze(&["verify", "./liaisond.service"], dir.path());
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed: {stderr}");
    let about_unit: Vec<&str> = stderr.lines().filter(|l| l.contains("liaisond")).collect();
    assert!(about_unit.is_empty(), "systemd-analyze verify complains: {about_unit:#?}");

    let out = systemd_analyze(&["security", "--offline=true", "./liaisond.service"], dir.path());
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let level: f64 = all
        .lines()
        .find_map(|l| l.split("Overall exposure level for liaisond.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in: {all}"));
    assert!(level <= 1.4, "exposure {level} > 1.4:\n{all}");
}

/// The daemon as systemd runs it: a child process with `$NOTIFY_SOCKET` bound by the test and
/// `$WATCHDOG_USEC` set; its notifications and its stderr are collected as they come.
struct Daemon {
    child: Child,
    notes: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(config: &Path, dir: &Path, watchdog: Duration) -> Daemon {
        let socket_path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).expect("bind the notification socket");
        socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let (send, notes) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        if send.send((Instant::now(), text(&buf[..n]))).is_err() {
                            return;
                        }
                    }
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        // The receiver is gone once the test ends.
                        if send.send((Instant::now(), String::new())).is_err() {
                            return;
                        }
                    }
                    Err(e) => panic!("notification socket: {e}"),
                }
            }
        });
        let mut child = Command::new(BIN)
            .args(["run", "--config", config.to_str().expect("utf8")])
            .env("LIAISOND_LOG", "info")
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", watchdog.as_micros().to_string())
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn liaisond run");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = collected.lock().expect("stderr");
                s.push_str(&line);
                s.push('\n');
            }
        });
        Daemon { child, notes, seen: Vec::new(), stderr }
    }

    /// Waits for a notification datagram for which `f` holds; returns when it came.
    fn wait_for(&mut self, what: &str, limit: Duration, f: impl Fn(&str) -> bool) -> (Instant, String) {
        self.wait_for_after(None, what, limit, f)
    }

    /// The first notification `f` accepts that arrived after `after` (any, with `None`).
    fn wait_for_after(
        &mut self,
        after: Option<Instant>,
        what: &str,
        limit: Duration,
        f: impl Fn(&str) -> bool,
    ) -> (Instant, String) {
        let start = Instant::now();
        loop {
            if let Some(found) = self.seen.iter().find(|(t, n)| after.is_none_or(|a| *t > a) && f(n)) {
                return found.clone();
            }
            let left = limit.checked_sub(start.elapsed()).unwrap_or_else(|| {
                panic!(
                    "no notification {what} within {limit:?}; got {:#?}\nstderr:\n{}",
                    self.seen.iter().map(|(_, n)| n).collect::<Vec<_>>(),
                    self.stderr()
                )
            });
            if let Ok(note) = self.notes.recv_timeout(left.min(Duration::from_millis(200)))
                && !note.1.is_empty()
            {
                self.seen.push(note);
            }
        }
    }

    /// Collects notifications for `d`.
    fn collect_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if let Ok(note) = self.notes.recv_timeout(Duration::from_millis(50))
                && !note.1.is_empty()
            {
                self.seen.push(note);
            }
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) with a valid pid and signal number has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill");
    }

    fn stop(mut self) -> (std::process::ExitStatus, Self) {
        self.signal(libc::SIGTERM);
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        self.collect_for(Duration::from_millis(300));
        (status, self)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Delivers a message into a Maildir as a delivery agent does: written into tmp/, renamed
/// into new/.
fn deliver(maildir: &Path, name: &str, raw: &[u8]) {
    std::fs::create_dir_all(maildir.join("tmp")).expect("tmp");
    std::fs::create_dir_all(maildir.join("new")).expect("new");
    let tmp = maildir.join("tmp").join(name);
    std::fs::write(&tmp, raw).expect("write");
    std::fs::rename(&tmp, maildir.join("new").join(name)).expect("rename");
}

#[test]
fn notifies_ready_after_the_first_poll_pings_the_watchdog_while_alive_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let maildir = dir.path().join("maildir");
    // busy_timeout of an hour: a held database lock below makes the loops wait "forever".
    let config = dir.path().join("liaisond.toml");
    std::fs::write(
        &config,
        "[store]\ndatabase = \"l.db\"\nbusy_timeout = \"1h\"\n\n\
         [[maildir]]\nname = \"local\"\npath = \"maildir\"\nafter_commit = \"cur\"\npoll_interval = \"300ms\"\n",
    )
    .expect("config");
    // cur/ is a file: the first poll stores the message but cannot move it, so it fails, and
    // READY must wait.
    deliver(&maildir, "1.M1P1.host", &sample_message("notify", 1));
    std::fs::write(maildir.join("cur"), "not a directory").expect("cur");
    let mut daemon = Daemon::start(&config, dir.path(), Duration::from_secs(2));
    let (_, waiting) = daemon.wait_for("STATUS about the failed first poll", Duration::from_secs(20), |n| {
        n.contains("STATUS=waiting") && n.contains(": Maildir")
    });
    assert!(
        daemon.seen.first().is_some_and(|(_, n)| n == "STATUS=waiting for the first poll of maildir 'local'\n"),
        "before any poll it says what it waits for: {:#?}",
        daemon.seen
    );
    assert!(
        waiting.contains("waiting for the first poll of maildir 'local': Maildir") && waiting.contains("cur"),
        "says what it waits for and why: {waiting}"
    );
    daemon.collect_for(Duration::from_secs(1));
    assert!(!daemon.seen.iter().any(|(_, n)| n.contains("READY=1")), "not ready before a poll succeeded");

    std::fs::remove_file(maildir.join("cur")).expect("repair cur/");
    let (ready_at, ready) = daemon.wait_for("READY=1", Duration::from_secs(20), |n| n.contains("READY=1"));
    assert!(ready.contains("STATUS=running"), "{ready}");
    // The poll that made it ready stored the message and moved it to cur/.
    assert_eq!(std::fs::read_dir(maildir.join("new")).expect("new").count(), 0, "READY came after the poll");
    assert_eq!(common::row_count(&dir.path().join("l.db")), 1);

    // WATCHDOG=1 every half interval (1 s) while every loop beats.
    daemon.collect_for(Duration::from_millis(3500));
    let pings: Vec<Instant> =
        daemon.seen.iter().filter(|(t, n)| *t > ready_at && n.contains("WATCHDOG=1")).map(|(t, _)| *t).collect();
    // (Three or four are due; two leave room for a machine busy with other tests.)
    assert!(pings.len() >= 2, "{} pings in 3.5 s: {:#?}", pings.len(), daemon.seen);

    // A stuck loop: every write waits for a lock held here (busy_timeout is an hour), so the
    // Maildir loop stops beating after its next scan, and the pings stop.
    let blocker = rusqlite::Connection::open(dir.path().join("l.db")).expect("open");
    blocker.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
    let held_at = Instant::now();
    daemon.collect_for(Duration::from_secs(5));
    assert!(
        daemon
            .seen
            .iter()
            .any(|(t, n)| *t > held_at && n.contains("STATUS=stuck: ") && n.contains("maildir 'local' silent for")),
        "STATUS names the stuck loop: {:#?}",
        daemon.seen
    );
    let last_ping_while_held = daemon
        .seen
        .iter()
        .filter(|(t, n)| *t > held_at && n.contains("WATCHDOG=1"))
        .map(|(t, _)| *t)
        .max()
        .unwrap_or(held_at);
    assert!(
        held_at + Duration::from_secs(5) - last_ping_while_held >= Duration::from_secs(2),
        "pings went on while a loop was stuck: {:#?}",
        daemon.seen
    );
    assert!(daemon.stderr().contains("not pinging the watchdog"), "{}", daemon.stderr());
    blocker.execute_batch("ROLLBACK").expect("release");
    let released = Instant::now();
    // Only a ping after the release counts (the seen list holds the ones from before).
    daemon.wait_for_after(Some(released), "WATCHDOG=1 again", Duration::from_secs(5), |n| n.contains("WATCHDOG=1"));

    let (status, daemon) = daemon.stop();
    assert_eq!(status.code(), Some(0), "{}", daemon.stderr());
    assert!(daemon.seen.iter().any(|(_, n)| n.contains("STOPPING=1")), "{:#?}", daemon.seen);
}

/// A statement from the Broadband Forum whose sender the trusted receiving server verified,
/// so it is routed to the organisation's liaison manager.
fn verified_statement(tag: &str, i: usize) -> Vec<u8> {
    let mut raw = b"Authentication-Results: mail.ietf.org; dmarc=pass header.from=broadband-forum.org\r\n".to_vec();
    raw.extend(sample_message(tag, i));
    raw
}

/// Where the statement of message `message_id` was routed to.
fn routed_to(db: &Path, message_id: &str) -> Option<Vec<String>> {
    let store = liaisond_store::Store::open(db, Duration::from_secs(5)).ok()?;
    let statements = store.statements().ok()?;
    let rows = store.message_overview(None).ok()?;
    let id = rows.iter().find(|m| m.message_id.as_deref() == Some(message_id))?.id;
    statements.into_iter().find(|s| s.message == id).map(|s| s.route_to)
}

/// The subject of the notification written into the outbox directory for a statement.
fn notification_subject(outbox: &Path, tracking: &str) -> Option<String> {
    for entry in std::fs::read_dir(outbox).ok()? {
        let path = entry.ok()?.path();
        if !path.to_string_lossy().ends_with("-notification.eml") {
            continue;
        }
        let content = std::fs::read_to_string(&path).ok()?;
        let subject = content.lines().find(|l| l.starts_with("Subject:"))?.to_string();
        if subject.contains(tracking) {
            return Some(subject);
        }
    }
    None
}

#[test]
fn sighup_reloads_the_relationships_and_templates_and_keeps_them_when_the_new_ones_are_broken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let relationships = std::fs::read_to_string(repo_root().join("config/relationships.toml")).expect("relationships");
    assert!(relationships.contains("dolores.arriaga@example.org"), "the BBF manager of the sample data");
    std::fs::write(d.join("rel.toml"), &relationships).expect("rel");
    std::fs::create_dir_all(d.join("templates")).expect("templates");
    for t in ["ack.txt", "notification.txt", "alert.txt"] {
        std::fs::copy(repo_root().join("config/templates").join(t), d.join("templates").join(t)).expect("copy");
    }
    std::fs::create_dir_all(d.join("maildir/new")).expect("maildir");
    let config = d.join("liaisond.toml");
    std::fs::write(
        &config,
        "relationships = \"rel.toml\"\n\n[store]\ndatabase = \"l.db\"\n\n\
         [[maildir]]\nname = \"local\"\npath = \"maildir\"\nafter_commit = \"cur\"\npoll_interval = \"200ms\"\n\n\
         [routing]\ntrusted_authserv_ids = [\"mail.ietf.org\"]\n\n\
         [outbox]\ndirectory = \"outbox\"\n\n[templates]\ndirectory = \"templates\"\n",
    )
    .expect("config");
    let db = d.join("l.db");
    let mut daemon = Daemon::start(&config, d, Duration::from_secs(30));
    daemon.wait_for("READY=1", Duration::from_secs(20), |n| n.contains("READY=1"));
    let tag = "hup";
    let statement = |daemon: &Daemon, i: usize| -> (Vec<String>, String) {
        deliver(&d.join("maildir"), &format!("{i}.M1P1.host"), &verified_statement(tag, i));
        let id = common::message_id_of(tag, i);
        let mut to = None;
        wait_until(Duration::from_secs(20), &format!("statement {i} recorded\n{}", daemon.stderr()), || {
            to = routed_to(&db, &id);
            to.is_some()
        });
        let store = liaisond_store::Store::open(&db, Duration::from_secs(5)).expect("db");
        let rows = store.message_overview(None).expect("rows");
        let row = rows.iter().find(|m| m.message_id.as_deref() == Some(&id)).expect("row");
        let tracking = row.tracking_id.clone().expect("a tracking ID");
        let mut subject = None;
        wait_until(Duration::from_secs(20), "its notification written", || {
            subject = notification_subject(&d.join("outbox"), &tracking);
            subject.is_some()
        });
        (to.unwrap_or_default(), subject.unwrap_or_default())
    };
    let reloads = |daemon: &Daemon| daemon.stderr().matches("SIGHUP: reloading").count();
    let hup = |daemon: &mut Daemon, outcome: &str| {
        let before = daemon.stderr().matches(outcome).count();
        let asked = reloads(daemon);
        daemon.signal(libc::SIGHUP);
        wait_until(Duration::from_secs(10), &format!("`{outcome}` in the log\n{}", daemon.stderr()), || {
            reloads(daemon) > asked && daemon.stderr().matches(outcome).count() > before
        });
    };

    let (to, subject) = statement(&daemon, 1);
    assert!(to.iter().any(|a| a == "dolores.arriaga@example.org"), "{to:?}");
    assert!(subject.contains("New liaison statement"), "{subject}");

    // New relationships data (another manager) and a new notification template, then SIGHUP.
    std::fs::write(d.join("rel.toml"), relationships.replace("dolores.arriaga@example.org", "manager6@example.org"))
        .expect("rel");
    let template = std::fs::read_to_string(d.join("templates/notification.txt")).expect("template");
    std::fs::write(
        d.join("templates/notification.txt"),
        template.replacen("New liaison statement", "RELOADED statement", 1),
    )
    .expect("template");
    // And experts data named for the first time (a top-level key, before the tables).
    std::fs::copy(common::repo_root().join("config/ietf-experts.toml"), d.join("experts.toml")).expect("experts");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("experts = \"experts.toml\"\n{text}")).expect("config");
    hup(&mut daemon, "reloaded the relationships data, the templates and the experts data");
    assert!(daemon.stderr().contains("organisations="), "says what was loaded: {}", daemon.stderr());
    assert!(daemon.stderr().contains("experts.toml"), "the experts file is applied: {}", daemon.stderr());
    assert!(!daemon.stderr().contains("keys=experts"), "not a key needing a restart: {}", daemon.stderr());
    let (reloading, _) = daemon.wait_for("RELOADING=1", Duration::from_secs(5), |n| n.contains("RELOADING=1"));
    daemon.wait_for_after(Some(reloading), "READY=1 after RELOADING=1", Duration::from_secs(5), |n| {
        n.contains("READY=1")
    });
    let (to, subject) = statement(&daemon, 2);
    assert!(to.iter().any(|a| a == "manager6@example.org"), "routed with the new data: {to:?}");
    assert!(!to.iter().any(|a| a == "dolores.arriaga@example.org"), "{to:?}");
    assert!(subject.contains("RELOADED statement"), "the new template: {subject}");

    // Broken relationships data: the error names the file and line; the data in use stays.
    let broken = format!("{}\n[[organization]]\nname = 5\n", relationships);
    let broken_line = broken.lines().count();
    std::fs::write(d.join("rel.toml"), broken).expect("rel");
    hup(&mut daemon, "reload failed");
    let log = daemon.stderr();
    assert!(log.contains(&format!("{}:{broken_line}:", d.join("rel.toml").display())), "names file and line: {log}");
    let (to, _) = statement(&daemon, 3);
    assert!(to.iter().any(|a| a == "manager6@example.org"), "still the data loaded before: {to:?}");

    // Repaired data, but a broken template: the same.
    std::fs::write(d.join("rel.toml"), relationships.replace("dolores.arriaga@example.org", "manager6@example.org"))
        .expect("rel");
    let bad = template.replacen("New liaison statement", "{{no_such_value}}", 1);
    std::fs::write(d.join("templates/notification.txt"), bad).expect("template");
    hup(&mut daemon, "reload failed");
    let log = daemon.stderr();
    assert!(
        log.contains(&format!("{}:1", d.join("templates/notification.txt").display())),
        "names the template: {log}"
    );
    let (to, subject) = statement(&daemon, 4);
    assert!(to.iter().any(|a| a == "manager6@example.org"), "{to:?}");
    assert!(subject.contains("RELOADED statement"), "still the template loaded before: {subject}");

    let (status, daemon) = daemon.stop();
    assert_eq!(status.code(), Some(0), "{}", daemon.stderr());
}

fn doctor(config: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["doctor", "--config", config.to_str().expect("utf8")])
        .env("LIAISOND_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run doctor");
    (out.status.code().unwrap_or(-1), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

fn doctor_config(dir: &Path, mailbox: &str, password: &str, smtp_port: u16) -> PathBuf {
    let tb = testbed();
    let path = dir.join("liaisond.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\ndatabase = \"l.db\"\n\n\
             [[imap]]\nname = \"main\"\nhost = \"{host}\"\nport = {imap}\ntls = \"starttls\"\nca_file = \"{ca}\"\n\
             username = \"alias6@example.org\"\npassword = \"{password}\"\nmailbox = \"{mailbox}\"\n\
             after_commit = \"leave\"\ntimeout = \"10s\"\n\n\
             [smtp]\nhost = \"{host}\"\nport = {smtp_port}\ntls = \"starttls\"\nca_file = \"{ca}\"\n\
             username = \"alias6@example.org\"\npassword = \"{password}\"\ntimeout = \"10s\"\n",
            host = tb.host,
            imap = tb.imap_port,
            ca = tb.ca.display(),
        ),
    )
    .expect("config");
    path
}

/// A mailbox of alias6 holding one message, and a configuration that reads it over IMAP and
/// sends through the testbed's submission port: (its directory, the file, the mailbox).
async fn testbed_setup(tag: &str) -> (tempfile::TempDir, PathBuf, String) {
    let tb = testbed();
    let mailbox = common::unique_mailbox(tag);
    let mut s = common::imap_as(tb, "alias6@example.org").await;
    common::create_mailbox(&mut s, &mailbox).await;
    common::append(&mut s, &mailbox, &sample_message(&mailbox, 1), None).await;
    let _ = s.logout().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = doctor_config(dir.path(), &mailbox, &tb.password, tb.submission_port);
    (dir, config, mailbox)
}

#[tokio::test]
async fn doctor_is_ok_against_the_testbed_and_fails_on_a_wrong_password_or_a_closed_port() {
    let tb = testbed();
    let (dir, config, mailbox) = testbed_setup("doctor").await;

    // Before the first run there is no database: a warning, not a failure.
    let (code, out) = doctor(&config);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warn  database: no database at"), "{out}");
    // Doctor changes nothing: no database, no lock file was created.
    let created: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.contains(".db"))
        .collect();
    assert!(created.is_empty(), "doctor created {created:?}");

    let run = Command::new(BIN)
        .args(["run", "--once", "--config", config.to_str().expect("utf8")])
        .env("LIAISOND_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run --once");
    assert!(run.status.success(), "{}", text(&run.stderr));

    let (code, out) = doctor(&config);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    for expected in [
        "ok    config: ",
        "ok    relationships and templates: relationships built-in",
        "ok    database ",
        "1 messages, schema ",
        "integrity ok; writable",
        "ok    imap 'main': ",
        &format!("mailbox {mailbox}: 1 messages"),
        &format!("ok    smtp {}:{}: server ", tb.host, tb.submission_port),
        "encrypted, AUTH as alias6@example.org accepted; nothing sent (QUIT)",
        "warn  daemon: not running",
        "disk space (",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
    // Every line is one check: a level, what, a detail; a hint only under a warning or failure.
    for line in out.lines() {
        assert!(
            ["ok    ", "warn  ", "FAIL  ", "      hint: "].iter().any(|p| line.starts_with(p)),
            "unexpected line `{line}` in:\n{out}"
        );
    }

    // A wrong password and an SMTP port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let config = doctor_config(dir.path(), &mailbox, "not-the-password", closed_port);
    let (code, out) = doctor(&config);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  imap 'main': login as alias6@example.org refused"), "{out}");
    assert!(out.contains("hint: the server refused the user name or password"), "{out}");
    assert!(out.contains(&format!("FAIL  smtp {}:{closed_port}: ", tb.host)), "{out}");
    assert!(out.contains("hint: nothing answers at"), "{out}");
    assert!(!out.contains("not-the-password"), "no secret in the output:\n{out}");
}

#[tokio::test]
async fn no_log_level_shows_a_password() {
    // Regression (issue 13, medium 3): at `trace` async-imap logged `LOGIN "user" "password"`
    // and lettre `AUTH PLAIN <base64 credentials>` (and the message data at `debug`).
    let tb = testbed();
    let (_dir, config, _) = testbed_setup("secrets").await;
    let plain = common::base64::encode(format!("\0alias6@example.org\0{}", tb.password).as_bytes());
    for args in [&["doctor"][..], &["run", "--once"]] {
        let out = Command::new(BIN)
            .args(args)
            .args(["--config", config.to_str().expect("utf8")])
            .env("LIAISOND_LOG", "trace")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .output()
            .expect("run liaisond");
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(all.len() > 1000, "{args:?} logged at trace: {all}");
        // As a word: rustls traces `extended_master_secret`, and the testbed's password is `secret`.
        let word = |c: char| c.is_alphanumeric() || c == '_';
        let leaked = all.match_indices(tb.password.as_str()).any(|(at, p)| {
            let before = all[..at].chars().next_back().is_some_and(word);
            let after = all[at + p.len()..].chars().next().is_some_and(word);
            !before && !after
        });
        assert!(!leaked, "{args:?} logged the password");
        assert!(!all.contains(&plain), "{args:?} logged the AUTH PLAIN credentials");
    }
}
