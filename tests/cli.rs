//! The `liaisond` binary as an operator and an MTA use it: exit codes, output, signals.
//! No mail server is needed here.

mod common;
#[path = "../benches/common/peak.rs"]
mod peak;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{garbage_message, liaisond, repo_root, sample_message, text};

/// A config with a Maildir source (so that it is valid) and the given database.
fn write_config(dir: &Path, database: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("maildir/new")).expect("maildir");
    let path = dir.join("liaisond.toml");
    let body = format!(
        "[store]\ndatabase = \"{database}\"\nbusy_timeout = \"1s\"\n\n\
         [[maildir]]\nname = \"local\"\npath = \"maildir\"\nafter_commit = \"cur\"\npoll_interval = \"1s\"\n{extra}"
    );
    std::fs::write(&path, body).expect("config");
    path
}

#[test]
fn ingest_stores_once_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "state/l.db", "");
    let c = config.to_str().expect("utf8");
    let msg = sample_message("ingest", 1);
    let out = liaisond(&["ingest", "--config", c], Some(&msg));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("stored as message 1"), "{}", text(&out.stdout));
    // The MTA delivers the same message again (it did not see our exit status): still one row.
    let out = liaisond(&["ingest", "--config", c], Some(&msg));
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("already stored as message 1"), "{}", text(&out.stdout));
    // Garbage is stored, not refused: exit 0.
    let out = liaisond(&["ingest", "--config", c], Some(&garbage_message()));
    assert_eq!(out.status.code(), Some(0));
    let rows = common::stored(&dir.path().join("state/l.db"));
    assert_eq!(rows.len(), 2);
    // Regression (issue 13, medium 5): ingest read the message in the MTA's pipe, outside the
    // daemon's sandbox. It only stores; the daemon reads (here `run --once`, which starts by
    // reading what is pending) and quarantines the garbage.
    assert!(rows.iter().all(|r| r.state == "pending"), "{rows:?}");
    let out = liaisond(&["run", "--once", "--config", c], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = common::stored(&dir.path().join("state/l.db"));
    assert_eq!(rows.iter().map(|r| r.state.as_str()).collect::<Vec<_>>(), ["processed", "quarantined"]);
}

#[test]
fn ingest_keeps_the_mail_when_the_relationships_data_is_broken() {
    // The MTA must not bounce mail because an operator broke the relationships file: the
    // message is stored and left for the daemon, which refuses to start until it is fixed.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "state/l.db", "");
    let body = std::fs::read_to_string(&config).expect("config");
    std::fs::write(dir.path().join("broken.toml"), "[ietf\ncoordinators = 1\n").expect("relationships");
    std::fs::write(&config, format!("relationships = \"broken.toml\"\n{body}")).expect("config");
    let out = liaisond(&["ingest", "--config", config.to_str().expect("utf8")], Some(&sample_message("broken", 1)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("to be read by the daemon"), "{}", text(&out.stdout));
    let rows = common::stored(&dir.path().join("state/l.db"));
    assert_eq!(rows.len(), 1);
    let out = liaisond(&["run", "--once", "--config", config.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(78), "the daemon refuses the broken data: {}", text(&out.stderr));
}

#[test]
fn export_reads_without_migrating() {
    // Regression: `export` opened the store read-write and migrated it (ARCHITECTURE.md said
    // read-only). It now refuses a database of another schema version and leaves it as it is.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "state/l.db", "");
    let c = config.to_str().expect("utf8");
    let out = liaisond(&["ingest", "--config", c], Some(&sample_message("export", 1)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = liaisond(&["export", "--config", c], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let db = dir.path().join("state/l.db");
    let version = || -> i64 {
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("user_version")
    };
    let current = version();
    rusqlite::Connection::open(&db).expect("open").pragma_update(None, "user_version", current - 1).expect("set");
    let out = liaisond(&["export", "--config", c], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("older than this liaisond's"), "{}", text(&out.stderr));
    assert_eq!(version(), current - 1, "not migrated");
}

#[test]
fn ingest_exits_75_when_the_database_cannot_be_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A database "directory" that is a regular file: creating it fails even for root.
    std::fs::write(dir.path().join("not-a-dir"), "x").expect("file");
    let config = write_config(dir.path(), "not-a-dir/l.db", "");
    let out = liaisond(&["ingest", "--config", config.to_str().expect("utf8")], Some(&sample_message("x", 1)));
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not stored"), "{}", text(&out.stderr));
}

#[test]
fn ingest_exits_75_while_another_writer_holds_the_database_then_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "l.db", "");
    let c = config.to_str().expect("utf8");
    let db = dir.path().join("l.db");
    drop(liaisond_store::Store::open(&db, Duration::from_secs(1)).expect("create"));
    let blocker = rusqlite::Connection::open(&db).expect("open");
    blocker.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let started = Instant::now();
    let out = liaisond(&["ingest", "--config", c], Some(&sample_message("locked", 1)));
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(10), "gives up after busy_timeout");
    blocker.execute_batch("ROLLBACK").expect("unlock");
    let out = liaisond(&["ingest", "--config", c], Some(&sample_message("locked", 1)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn ingest_with_a_broken_config_exits_75_so_the_mta_keeps_the_mail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "l.db", "surprise = 1\n");
    let out = liaisond(&["ingest", "--config", config.to_str().expect("utf8")], Some(&sample_message("x", 1)));
    assert_eq!(out.status.code(), Some(75));
}

#[test]
fn check_config_summarises_without_secrets_and_locates_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pw"), "hunter2-very-secret\n").expect("pw");
    let imap = "\n[[imap]]\nname = \"main\"\nhost = \"imap.example.org\"\ntls = \"implicit\"\n\
                username = \"liaison\"\npassword_file = \"pw\"\nafter_commit = \"move\"\nmove_to = \"Done\"\n";
    let config = write_config(dir.path(), "l.db", imap);
    let out = liaisond(&["check-config", "--config", config.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("imap main: liaison@imap.example.org:993 (implicit TLS)"), "{stdout}");
    assert!(stdout.contains("password from file"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "no secret in the output: {stdout}");
    // Regression (issue 13): a password file anyone may read was not mentioned.
    use std::os::unix::fs::PermissionsExt;
    let pw = dir.path().join("pw");
    let warning = |mode: u32| {
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let out = liaisond(&["check-config", "--config", config.to_str().expect("utf8")], None);
        assert_eq!(out.status.code(), Some(0), "a warning, not an error");
        text(&out.stdout).lines().filter(|l| l.starts_with("warning:")).map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(warning(0o600), Vec::<String>::new());
    let w = warning(0o644);
    assert!(w.len() == 1 && w[0].contains(&pw.display().to_string()) && w[0].contains("everyone"), "{w:?}");
    assert!(warning(0o640)[0].contains("its group"));
    // A password written into the configuration makes the configuration file a secret.
    let inline = write_config(dir.path(), "l.db", &imap.replace("password_file = \"pw\"", "password = \"x\""));
    std::fs::set_permissions(&inline, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = liaisond(&["check-config", "--config", inline.to_str().expect("utf8")], None);
    assert!(
        text(&out.stdout).contains(&format!("warning: {} holds a password", inline.display())),
        "{}",
        text(&out.stdout)
    );

    // Regression (issue 16): "valid" came before a bad template was found.
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&templates).expect("templates");
    for (name, _, text) in liaisond_core::respond::TEMPLATE_FILES {
        std::fs::write(templates.join(name), text).expect("template");
    }
    std::fs::write(templates.join("ack.txt"), "Subject: {{no_such_value}}\n\nx\n").expect("bad template");
    let with_templates = write_config(dir.path(), "l.db", "\n[templates]\ndirectory = \"templates\"\n");
    let out = liaisond(&["check-config", "--config", with_templates.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("valid"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("ack.txt"), "{}", text(&out.stderr));

    let bad = write_config(dir.path(), "l.db", "\n[[imap]]\nname = \"x\"\nhots = \"typo\"\n");
    let out = liaisond(&["check-config", "--config", bad.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(78), "EX_CONFIG");
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("{}:13:", bad.display())), "names file and line: {stderr}");
    assert!(stderr.contains("hots"), "names the key: {stderr}");

    let out = liaisond(&["check-config", "--config", "/nonexistent/liaisond.toml"], None);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("/nonexistent/liaisond.toml"));
}

#[test]
fn the_example_config_passes_check_config_with_its_password_file() {
    // Regression (issue 16): copied as the README says, with its password file next to it,
    // the example failed check-config (its Maildir section named a folder that is not there).
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("liaisond.toml");
    std::fs::copy(repo_root().join("config/liaisond.example.toml"), &config).expect("copy");
    std::fs::write(dir.path().join("imap-password"), "the IMAP password\n").expect("password");
    let out = liaisond(&["check-config", "--config", config.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(": valid"), "{}", text(&out.stdout));
}

#[test]
fn read_only_commands_need_no_password_and_never_migrate() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // Issue 16: every command read the password files and migrated the database, so the
    // service's user could not list statements when the passwords are root's (systemd
    // credentials), and a new binary's `status` migrated under the running daemon.
    let dir = tempfile::tempdir().expect("tempdir");
    let imap = "\n[[imap]]\nname = \"main\"\nhost = \"imap.example.org\"\ntls = \"implicit\"\n\
                username = \"liaison\"\npassword_file = \"/root-only/pw\"\nafter_commit = \"leave\"\n";
    let config = write_config(dir.path(), "state/l.db", imap);
    let c = config.to_str().expect("utf8");
    let out = liaisond(&["ingest", "--config", c], Some(&sample_message("ro", 1)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The service's user (here `nobody`) owns the state; the password is not readable to it.
    let nobody = 65534;
    for path in [dir.path().to_path_buf(), dir.path().join("state"), dir.path().join("maildir"), config.clone()] {
        std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).expect("chown");
    }
    for entry in std::fs::read_dir(dir.path().join("state")).expect("state") {
        std::os::unix::fs::chown(entry.expect("entry").path(), Some(nobody), Some(nobody)).expect("chown");
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let as_nobody = |args: &[&str]| {
        Command::new(common::BIN).args(args).uid(nobody).gid(nobody).env_clear().output().expect("run as nobody")
    };
    for args in [
        &["status", "--config", c][..],
        &["statements", "list", "--config", c],
        &["messages", "quarantined", "--config", c],
        &["outbox", "list", "--config", c],
    ] {
        let out = as_nobody(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
    }
    // `doctor --offline` checks this machine only, without the password.
    let out = as_nobody(&["doctor", "--offline", "--config", c]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("imap main: not checked (--offline)"), "{}", text(&out.stdout));
    // A command that logs in still needs the password, and says why it cannot read it.
    let out = as_nobody(&["check-config", "--config", c]);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("/root-only/pw: no such file"), "{}", text(&out.stderr));

    // An older schema: `status` says to migrate and leaves the version alone; `migrate` does it.
    let db = dir.path().join("state/l.db");
    {
        // The database as schema 6 left it: what migration 7 adds to statements taken away
        // (the outbox it rebuilds may keep its newer CHECK: migration 7 rebuilds it again).
        // When schema 8 comes, this becomes "what 8 adds".
        assert_eq!(liaisond_store::SCHEMA_VERSION, 7, "rebuild the previous schema here");
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch(
            "ALTER TABLE statements DROP COLUMN datatracker_url; ALTER TABLE statements DROP COLUMN datatracker_number;
             ALTER TABLE statements DROP COLUMN recorded_at; ALTER TABLE statements DROP COLUMN record_expected;
             ALTER TABLE statements DROP COLUMN direction; DROP TABLE check_in_requests;
             DROP INDEX outbox_by_statement;
             PRAGMA user_version = 6;",
        )
        .expect("schema 6");
    }
    // Neither a command that reads nor one that changes a statement migrates it.
    for args in [&["status", "--config", c][..], &["statements", "done", "1", "--config", c]] {
        let out = liaisond(args, None);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stderr).contains("liaisond migrate"), "{args:?}: {}", text(&out.stderr));
        assert_eq!(liaisond_store::Store::schema_version_at(&db).expect("version"), Some(6), "{args:?}");
    }
    let out = liaisond(&["migrate", "--config", c], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("migrated from schema 6"), "{}", text(&out.stdout));
    let backup = liaisond_store::migration_backup(&db, liaisond_store::SCHEMA_VERSION);
    assert_eq!(liaisond_store::Store::schema_version_at(&backup).expect("backup"), Some(6));
}

/// man(1)'s output to a pipe without its formatting: bold and underline come as overstrikes
/// (`X\x08X`); only the letters are kept.
fn unformatted(shown: &str) -> String {
    let mut plain = String::new();
    for c in shown.chars() {
        if c == '\x08' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn the_man_page_and_completions_come_from_the_commands() {
    // Issue 16: no man page, no completion. They are generated from the clap definitions, so
    // a new command appears in them by itself.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = liaisond(&["generate", "man"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(".TH liaisond 8"), "{}", text(&out.stdout));
    let page = dir.path().join("liaisond.8");
    std::fs::write(&page, &out.stdout).expect("write");
    // man(1) from man-db, which `scripts/testbed install` installs.
    let shown =
        Command::new("man").arg("-l").arg(&page).env("MANWIDTH", "100").env("MAN_KEEP_FORMATTING", "0").output();
    let shown = shown.unwrap_or_else(|e| panic!("man: {e}; run `scripts/testbed install` (it installs man-db)"));
    let shown = unformatted(&text(&shown.stdout));
    for expected in ["SUBCOMMANDS", "check-config", "migrate", "statements", "doctor"] {
        assert!(shown.contains(expected), "{expected} missing from the man page:\n{shown}");
    }
    // liaisond.toml(5), from the example configuration: groff finds nothing to warn about.
    let out = liaisond(&["generate", "config-man"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = dir.path().join("liaisond.toml.5");
    std::fs::write(&page, &out.stdout).expect("write");
    let shown =
        Command::new("man").arg("--warnings").arg("-l").arg(&page).env("MANWIDTH", "100").output().expect("man");
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert_eq!(text(&shown.stderr), "", "groff warns about liaisond.toml(5)");
    let shown = unformatted(&text(&shown.stdout));
    for expected in ["LIAISOND.TOML(5)", "[store]", "[[imap]]", "max_message_size", "trusted_authserv_ids", "FILES"] {
        assert!(shown.contains(expected), "{expected} missing from liaisond.toml(5)");
    }
    let out = liaisond(&["generate", "bash"], None);
    assert_eq!(out.status.code(), Some(0));
    let script = dir.path().join("liaisond.bash");
    std::fs::write(&script, &out.stdout).expect("write");
    let syntax = Command::new("bash").arg("-n").arg(&script).status().expect("bash");
    assert!(syntax.success(), "the bash completion does not parse");
    assert!(text(&out.stdout).contains("complete -F _liaisond"), "{}", text(&out.stdout));
    for shell in ["zsh", "fish"] {
        let out = liaisond(&["generate", shell], None);
        assert_eq!(out.status.code(), Some(0));
        assert!(text(&out.stdout).contains("check-config"), "{shell}: {}", text(&out.stdout));
    }
}

#[test]
fn maildir_files_move_to_cur_and_status_reports_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "l.db", "");
    let c = config.to_str().expect("utf8");
    for i in 0..3 {
        std::fs::write(dir.path().join(format!("maildir/new/{i}.M1P1.host")), sample_message("md", i)).expect("write");
    }
    std::fs::write(dir.path().join("maildir/new/9.M1P1.host"), garbage_message()).expect("write");
    let out = liaisond(&["run", "--once", "--config", c], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Recorded 4 new message(s)"), "{stdout}");
    assert!(stdout.contains("quarantined"), "{stdout}");
    let mut cur: Vec<String> = std::fs::read_dir(dir.path().join("maildir/cur"))
        .expect("cur")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    cur.sort();
    assert_eq!(cur, vec!["0.M1P1.host:2,", "1.M1P1.host:2,", "2.M1P1.host:2,", "9.M1P1.host:2,"]);
    assert_eq!(std::fs::read_dir(dir.path().join("maildir/new")).expect("new").count(), 0);

    let out = liaisond(&["run", "--once", "--config", c], None);
    assert!(text(&out.stdout).contains("Recorded 0 new message(s)"), "{}", text(&out.stdout));

    let out = liaisond(&["status", "--config", c], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status = text(&out.stdout);
    assert!(status.contains("messages: 4 (processed 3, quarantined 1, ignored 0, pending 0)"), "{status}");
    assert!(status.contains("last successful poll 20"), "{status}");
    let out = liaisond(&["status", "--json", "--config", c], None);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // Issue 16: one object, counts keyed by state, whether the daemon runs.
    assert_eq!(json["messages"]["total"], 4);
    assert_eq!(json["messages"]["by_state"]["processed"], 3, "{json:#}");
    assert_eq!(json["daemon_running"], false);
    assert!(json["sources"][0]["last_poll_ok"].is_string(), "{json:#}");

    // OpenMetrics, as a monitoring system reads it.
    let out = liaisond(&["status", "--format", "openmetrics", "--config", c], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(&text(&out.stdout))
        .unwrap_or_else(|e| panic!("not OpenMetrics: {e:?}\n{}", text(&out.stdout)));
    let value = |family: &str, labels: &[(&str, &str)]| -> Option<f64> {
        let f = exposition.families.get(&format!("liaisond_{family}"))?;
        f.iter_samples()
            .find(|s| {
                let set = s.get_labelset().expect("labels");
                labels.iter().all(|(k, v)| set.get_label_value(k) == Some(*v))
            })
            .and_then(|s| match &s.value {
                openmetrics_parser::OpenMetricsValue::Gauge(n) => Some(n.as_f64()),
                _ => None,
            })
    };
    assert_eq!(value("daemon_running", &[]), Some(0.0));
    assert_eq!(value("messages", &[("state", "quarantined")]), Some(1.0));
    assert_eq!(value("statements", &[("state", "open")]), Some(3.0), "{}", text(&out.stdout));
    assert!(value("last_poll_success_timestamp_seconds", &[("source", "local")]).is_some_and(|t| t > 1.7e9));
    // The same text is what node_exporter's textfile collector parses (Prometheus format).
    openmetrics_parser::prometheus::parse_prometheus(&text(&out.stdout)).expect("Prometheus text");
}

#[test]
fn a_maildir_file_that_cannot_be_moved_does_not_stop_the_others() {
    // Regression: one failed rename (or unreadable file) aborted the whole scan.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "l.db", "");
    for i in 0..3 {
        std::fs::write(dir.path().join(format!("maildir/new/{i}.M1P1.host")), sample_message("mv", i)).expect("write");
    }
    // cur/ is a file, so every rename fails (as on a read-only file system).
    std::fs::write(dir.path().join("maildir/cur"), "not a directory").expect("write");
    let out = liaisond(&["run", "--once", "--config", config.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(1), "the failure is reported");
    assert!(text(&out.stdout).contains("Recorded 3 new message(s)"), "{}", text(&out.stdout));
}

#[test]
fn parse_prints_the_statement_of_each_message() {
    let demo = repo_root().join("fixtures/demo-maildir/new");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&demo).expect("demo").map(|e| e.expect("entry").path()).collect();
    files.sort();
    let args: Vec<&str> = std::iter::once("parse").chain(files.iter().map(|p| p.to_str().expect("utf8"))).collect();
    let out = liaisond(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), files.len());
    let by_id = |id: &str| lines.iter().find(|v| v["message_id"] == id).unwrap_or_else(|| panic!("{id} missing"));
    let itu = &by_id("a3f09c1b7e2d4f6b9c1e0d2f.SG13-LS42@itu.int")["statement"];
    assert_eq!(itu["from_org"], "ITU-T");
    assert_eq!(itu["from_groups"], serde_json::json!(["itu-t-sg-13"]));
    assert_eq!(itu["purpose"], "action");
    assert_eq!(itu["deadline"], "2027-03-15");
    assert_eq!(itu["to_groups"][0], "teas");
    let tgpp = &by_id("20261103121202.C4-261234.3gppliaison@etsi.org");
    assert_eq!(tgpp["statement"]["purpose"], "action", "from the 3GPP actions section");
    assert_eq!(tgpp["statement"]["from_contacts"], serde_json::json!(["kari.lindqvist@example-company.com"]));
    assert_eq!(tgpp["statement"]["reply_to"], serde_json::json!(["3gppliaison@etsi.org"]));
    assert_eq!(tgpp["attachments"][0]["filename"], "C4-261234.txt");
    assert!(tgpp["attachments"][0]["sha256"].as_str().is_some_and(|h| h.len() == 64));
    // Every statement object has exactly the documented keys.
    let keys: Vec<&str> = itu.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "body",
            "deadline",
            "from_contacts",
            "from_groups",
            "from_org",
            "other_identifiers",
            "purpose",
            "related",
            "reply_to",
            "technical_contacts",
            "title",
            "to_groups"
        ]
    );
    // The lines come out in the order of the arguments (they are read in parallel).
    let order: Vec<String> = lines.iter().map(|v| v["file"].as_str().expect("file").to_string()).collect();
    let given: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(order, given);
    // Classification and route: without a configuration no sender is verified, so even a
    // matched statement goes to the coordinators, and says why.
    assert_eq!(lines.iter().filter(|v| v["classification"] == "statement").count(), 9, "{lines:#?}");
    assert_eq!(by_id("ooo.20261118121402.4f2a@example-operator.com")["classification"], "auto_reply");
    let itu = by_id("a3f09c1b7e2d4f6b9c1e0d2f.SG13-LS42@itu.int");
    assert_eq!(itu["route"]["sender_verified"], false);
    assert!(itu["route"]["reason"].as_str().is_some_and(|r| r.contains("not verified")), "{}", itu["route"]);
    // With the demo configuration, mail.ietf.org's DMARC verdicts are trusted.
    let config = repo_root().join("config/demo.toml");
    let args: Vec<&str> = ["parse", "--config", config.to_str().expect("utf8")]
        .into_iter()
        .chain(files.iter().map(|p| p.to_str().expect("utf8")))
        .collect();
    let out = liaisond(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let line = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .find(|v| v["message_id"] == "a3f09c1b7e2d4f6b9c1e0d2f.SG13-LS42@itu.int")
        .expect("the ITU-T statement");
    let route = &line["route"];
    assert_eq!(route["sender_verified"], true, "{route}");
    assert_eq!(route["relationship"], "itu-t");
    assert_eq!(route["rule"], "address");
    assert_eq!(route["cc"], serde_json::json!(["liaison-coordination@iab.org"]));
    assert_eq!(route["to"].as_array().map(Vec::len), Some(2), "primary and backup: {route}");
}

/// A message whose sender wrote escape sequences, a right-to-left override and line breaks
/// into its subject, title, a contact and an attachment's name.
fn hostile_display_message() -> Vec<u8> {
    b"From: ITU-T TSB <tsbsg13@itu.int>\r\nTo: statements@ietf.org\r\nMessage-ID: <esc@itu.int>\r\n\
      Subject: LS on \x1b]0;pwned\x07clocks\r\nMIME-Version: 1.0\r\n\
      Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
      Title: LS on \x1b[2J\x1b[31mclocks\xe2\x80\xae\r\nPurpose: For action\r\nDeadline: 2027-01-01\r\n\
      Contact: Jane \x1b[8mDoe <jane@itu.int>\r\n\r\nPlease look.\r\n--b\r\n\
      Content-Type: application/octet-stream\r\n\
      Content-Disposition: attachment; filename=\"a\x1b[1mb.bin\"\r\n\r\n\x1b[2Jbinary\x00\x01\r\n--b--\r\n"
        .to_vec()
}

#[test]
fn what_senders_wrote_reaches_no_terminal_as_escape_sequences() {
    // Regression (issue 13): `statements show` printed a sender's escape sequences raw, and
    // `messages attachment` wrote binary to the terminal.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "l.db", "");
    let c = config.to_str().expect("utf8");
    let out = liaisond(&["ingest", "--config", c], Some(&hostile_display_message()));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = liaisond(&["run", "--once", "--config", c], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for args in [&["statements", "show", "1"][..], &["statements", "list"], &["messages", "show", "1"]] {
        let out = liaisond(&[args, &["--config", c]].concat(), None);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        let shown = text(&out.stdout);
        assert!(shown.contains("clocks"), "{args:?}: {shown}");
        assert!(!shown.contains(['\x1b', '\x07', '\u{202e}']), "{args:?}: {shown:?}");
    }
    // To a pipe the attachment is written as it is; to a terminal it is refused.
    let out = liaisond(&["messages", "attachment", "--config", c, "1", "1"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.starts_with(b"\x1b[2Jbinary"), "{:?}", out.stdout);
    assert!(!text(&out.stderr).contains('\x1b'), "the file name is printable: {:?}", text(&out.stderr));
    let (code, on_terminal) = on_a_terminal(&["messages", "attachment", "--config", c, "1", "1"]);
    assert_eq!(code, Some(64), "{on_terminal}");
    assert!(!on_terminal.contains("binary"), "{on_terminal:?}");
    let written = dir.path().join("a.bin");
    let (code, _) =
        on_a_terminal(&["messages", "attachment", "--config", c, "1", "1", "-o", written.to_str().expect("utf8")]);
    assert_eq!(code, Some(0));
    assert!(std::fs::read(&written).expect("written").starts_with(b"\x1b[2Jbinary"));
}

#[test]
fn run_once_on_a_terminal_shows_progress_instead_of_a_line_per_message() {
    // Issue 14: a long first sync on a terminal shows a progress bar and one summary; a line
    // per message is at debug there; above MAX_TABLE_ROWS the summary stands for the table.
    // Without a terminal, the lines are there and no bar.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "l.db", "");
    let c = config.to_str().expect("utf8");
    for i in 0..150 {
        std::fs::write(dir.path().join(format!("maildir/new/{i}.M1P1.host")), sample_message("bar", i)).expect("write");
    }
    let (code, shown) = on_a_terminal(&["run", "--once", "--config", c]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("Recorded 150 new message(s)"), "{shown}");
    assert!(shown.contains("stored from ") && shown.contains("/150"), "no progress bar: {shown}");
    assert!(!shown.contains("message recorded"), "a line per message on the terminal: {shown}");
    assert!(shown.contains("0 quarantined; `liaisond statements list`"), "{shown}");
    assert!(!shown.contains("OUTCOME"), "no table of 150 rows: {shown}");
    for i in 150..153 {
        std::fs::write(dir.path().join(format!("maildir/new/{i}.M1P1.host")), sample_message("bar", i)).expect("write");
    }
    // As the daemon logs by default (the tests' helper asks for warnings only).
    let out = Command::new(common::BIN)
        .args(["run", "--once", "--config", c])
        .env_remove("LIAISOND_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run liaisond");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr).matches("message recorded").count(), 3, "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("messages/s"), "no bar without a terminal");
    assert!(text(&out.stdout).contains("messages/s)"), "the summary: {}", text(&out.stdout));
}

/// Runs liaisond with its standard output and error on a pseudo-terminal; its exit code and
/// what it wrote there.
fn on_a_terminal(args: &[&str]) -> (Option<i32>, String) {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let (mut controller, mut device) = (0, 0);
    // SAFETY: openpty fills two descriptors; the name, termios and winsize are optional.
    let rc = unsafe {
        libc::openpty(&mut controller, &mut device, std::ptr::null_mut(), std::ptr::null(), std::ptr::null())
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here.
    let (controller, device) = unsafe { (std::fs::File::from_raw_fd(controller), std::fs::File::from_raw_fd(device)) };
    let status = Command::new(common::BIN)
        .args(args)
        .env_remove("LIAISOND_LOG")
        .stdin(Stdio::null())
        .stdout(device.try_clone().expect("dup"))
        .stderr(device)
        .status()
        .expect("run liaisond");
    // The child has exited and the device is closed: reading ends (EIO) after what it wrote.
    let mut shown = Vec::new();
    let mut controller = controller;
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = controller.read(&mut buf) {
        shown.extend_from_slice(&buf[..n]);
    }
    (status.code(), String::from_utf8_lossy(&shown).into_owned())
}

#[test]
fn a_60_mb_single_line_body_stays_within_its_memory_and_disk_budget() {
    // Regression (issue 13, medium 6): this message took 660 MB of RSS and grew the database
    // by 422 MB (its title stored unclipped three times).
    const BODY: usize = 60 * 1000 * 1000;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "l.db", "");
    let c = config.to_str().expect("utf8");
    // A database with its schema, so that the growth measured is this message's.
    let out = liaisond(&["ingest", "--config", c], Some(&sample_message("first", 1)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let db = dir.path().join("l.db");
    let before = database_bytes(&db);
    let mut message = b"From: Jane <jane@sdo.example.org>\r\nTo: statements@ietf.org\r\n\
        Subject: LS on one long line\r\nMessage-ID: <long@sdo.example.org>\r\n\r\nTitle: "
        .to_vec();
    message.extend(std::iter::repeat_n(b'x', BODY));
    message.extend_from_slice(b"\r\n");
    // Stored by `ingest`, read by `run --once`: each process within the budget.
    let budget = 100 * 1024 * 1024 + BODY;
    for (args, input) in [(&["ingest", "--config", c][..], Some(message)), (&["run", "--once", "--config", c], None)] {
        let peak = peak_rss(args, input);
        eprintln!("{}: peak RSS {} MiB (budget {} MiB)", args[0], peak >> 20, budget >> 20);
        assert!(peak <= budget, "{args:?}: peak RSS {} MiB > {} MiB", peak >> 20, budget >> 20);
    }
    let rows = common::stored(&db);
    assert!(rows.iter().all(|r| r.state != "pending"), "read: {rows:?}");
    let grown = database_bytes(&db).saturating_sub(before);
    eprintln!("database grew by {grown} bytes for a message of {} bytes", BODY + 150);
    assert!(grown <= BODY + 512 * 1024, "the database grew by {grown} bytes for a {BODY}-byte message");
}

/// Runs liaisond with `args` (and `input` on its standard input) to the end; its peak RSS in
/// bytes: its own VmHWM, sampled (`benches/common/peak.rs` says why not wait4's ru_maxrss:
/// this test process, holding the 60 MB message, would pass its own high-water mark on).
fn peak_rss(args: &[&str], input: Option<Vec<u8>>) -> usize {
    let mut child = Command::new(common::BIN)
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let watch = peak::PeakWatch::start(child.id());
    let writer = child
        .stdin
        .take()
        .zip(input)
        .map(|(mut stdin, bytes)| std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes)));
    let status = child.wait().expect("wait");
    let peak = watch.finish();
    if let Some(w) = writer {
        w.join().expect("writer").expect("message written");
    }
    assert!(status.success(), "{args:?} failed: {status}");
    peak as usize
}

/// The database's size with its write-ahead log.
fn database_bytes(db: &Path) -> usize {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len() as usize).unwrap_or(0);
    size(db) + size(&db.with_extension("db-wal"))
}

#[test]
fn status_without_a_database_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "never.db", "");
    let out = liaisond(&["status", "--config", config.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no database"), "{}", text(&out.stderr));
    assert!(!dir.path().join("never.db").exists(), "status must not create a database");
}

#[test]
fn the_demo_records_the_sample_statements() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The shipped demo config, pointed at a private database.
    let demo = std::fs::read_to_string(repo_root().join("config/demo.toml")).expect("demo.toml");
    let demo = demo
        .replace("../demo-state/liaisond.db", &dir.path().join("demo.db").display().to_string())
        .replace("../fixtures/demo-maildir", &repo_root().join("fixtures/demo-maildir").display().to_string())
        .replace("../demo-state/outbox", &dir.path().join("outbox").display().to_string())
        .replace(
            "\"ietf-experts.toml\"",
            &format!("{:?}", repo_root().join("config/ietf-experts.toml").display().to_string()),
        );
    let config = dir.path().join("demo.toml");
    std::fs::write(&config, demo).expect("write");
    let out = liaisond(&["run", "--once", "--config", config.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let fixtures = std::fs::read_dir(repo_root().join("fixtures/demo-maildir/new")).expect("fixtures").count();
    assert!(stdout.contains(&format!("Recorded {fixtures} new message(s)")), "{stdout}");
    assert!(stdout.contains("ITU-T SG13"), "{stdout}");
    // What it would send is written into the outbox directory: a notification for each
    // statement, and an acknowledgement for each that gets one.
    let mut written: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
        .expect("the outbox directory")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    written.sort();
    let notifications = written.iter().filter(|n| n.ends_with("-notification.eml")).count();
    let acks = written.iter().filter(|n| n.ends_with("-ack.eml")).count();
    assert!(notifications >= 8 && acks >= 1 && acks <= notifications, "{written:?}");
    assert_eq!(
        std::fs::read_dir(repo_root().join("fixtures/demo-maildir/new")).expect("fixtures").count(),
        fixtures,
        "the demo leaves the fixtures in place"
    );

    // Each statement was read and recorded: fields, attachments (extracted by the workers).
    let config = config.to_str().expect("utf8");
    let mut with_attachment = None;
    let mut purposes = Vec::new();
    let mut classes = Vec::new();
    for id in 1..=fixtures {
        let out = liaisond(&["messages", "show", "--config", config, &id.to_string()], None);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        purposes.push(shown["statement"]["purpose"].clone());
        classes.push(shown["classification"].as_str().unwrap_or("none").to_string());
        if shown["classification"] == "statement" {
            assert!(shown["tracking_id"].as_str().is_some_and(|t| t.starts_with("LS-")), "{shown}");
        }
        if let Some(a) = shown["attachments"].as_array().and_then(|a| a.first()) {
            assert!(a["error"].is_null(), "{a}");
            assert!(a["text_chars"].as_u64().is_some_and(|n| n > 100), "{a}");
            with_attachment = Some((id, a.clone()));
        }
    }
    assert!(purposes.iter().any(|p| p == "action"), "{purposes:?}");
    classes.sort();
    assert_eq!(
        classes,
        ["auto_reply", "bounce", "duplicate", "none"]
            .into_iter()
            .chain(std::iter::repeat_n("statement", 8))
            .collect::<Vec<_>>(),
        "the demo's twelve messages: the datatracker's copy of the ITU-T statement is a duplicate; \
         the unreadable one is quarantined (no class)"
    );
    let (id, recorded) = with_attachment.expect("a demo statement with an attachment");
    // Its original bytes come back out, identical.
    let file = dir.path().join("attachment.bin");
    let out = liaisond(
        &["messages", "attachment", "--config", config, &id.to_string(), "1", "--output", file.to_str().expect("utf8")],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bytes = std::fs::read(&file).expect("written");
    assert_eq!(bytes.len() as u64, recorded["size"].as_u64().expect("size"));
    assert_eq!(liaisond_model::sha256_hex(&bytes), recorded["sha256"].as_str().expect("sha256"));
    // Routing replayed: with the stored decisions, nothing changes; without trusting
    // mail.ietf.org, every statement that had a manager would now go to the coordinators.
    let out = liaisond(&["route", "--dry-run", "--config", config], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("8 statement(s), 0 would be routed differently"), "{}", text(&out.stdout));
    let untrusting = dir.path().join("untrusting.toml");
    let body = std::fs::read_to_string(config).expect("config");
    std::fs::write(&untrusting, body.replace("trusted_authserv_ids = [\"mail.ietf.org\"]", "")).expect("write");
    let out = liaisond(&["route", "--dry-run", "--json", "--config", untrusting.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(lines.len(), 8);
    let changed = lines.iter().filter(|l| l["changed"] == true).count();
    // Not the IEEE 802 one: its chair writes from his company's domain and the organisation is
    // known only from the text, so it goes to the coordinators, trusted or not (issue 13).
    assert_eq!(changed, 5, "the five statements routed to a manager: {lines:#?}");
    assert!(lines.iter().all(|l| l["now"]["sender_verified"] == false));
    let out = liaisond(&["route", "--config", config], None);
    assert_eq!(out.status.code(), Some(64), "only --dry-run exists: a usage error (EX_USAGE)");

    // A wrong number is an error that says what exists.
    let out = liaisond(&["messages", "attachment", "--config", config, &id.to_string(), "9"], None);
    assert_eq!(out.status.code(), Some(65), "an attachment that does not exist (EX_DATAERR)");
    assert!(text(&out.stderr).contains("there is no number 9"), "{}", text(&out.stderr));
}

#[test]
fn sigterm_stops_the_daemon_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "l.db", "\n[metrics]\ntextfile = \"liaisond.prom\"\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_liaisond"))
        .args(["run", "--config", config.to_str().expect("utf8")])
        .env("LIAISOND_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let db = dir.path().join("l.db");
    let started = Instant::now();
    while !db.exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "daemon did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Issue 16: the daemon writes its metrics for node_exporter's textfile collector.
    let metrics = dir.path().join("liaisond.prom");
    while !metrics.exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "no metrics file");
        std::thread::sleep(Duration::from_millis(50));
    }
    let written = std::fs::read_to_string(&metrics).expect("metrics");
    openmetrics_parser::openmetrics::parse_openmetrics(&written).unwrap_or_else(|e| panic!("{e:?}: {written}"));
    assert!(written.contains("liaisond_daemon_running 1\n"), "{written}");
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) with a valid pid and signal number has no memory-safety preconditions.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let stopping = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(stopping.elapsed() < Duration::from_secs(10), "did not stop within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    // Stopped, it says so: a file left at 1 would tell the monitoring that it runs.
    let written = std::fs::read_to_string(&metrics).expect("metrics");
    assert!(written.contains("liaisond_daemon_running 0\n"), "{written}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("read");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
}

/// The lines under `title` in a report of indented sections, with their spacing made single.
fn report_section(shown: &str, title: &str) -> Vec<String> {
    let lines: Vec<&str> = shown.lines().collect();
    let start = lines.iter().position(|l| l.starts_with(title)).unwrap_or_else(|| panic!("no {title}:\n{shown}"));
    lines[start + 1..]
        .iter()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn relationships_diff_reports_what_the_datatracker_records_differently() {
    // Issue 15, part 7: the relationships data against saved datatracker API answers
    // (fixtures/datatracker/README.md says what differs in them). It changes nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "l.db", "");
    let c = config.to_str().expect("utf8");
    let fixture = |name: &str| repo_root().join("fixtures/datatracker").join(name).display().to_string();
    let (groups, managers) = (fixture("sdo-groups.json"), fixture("liaiman-roles.json"));
    let out = liaisond(&["relationships", "diff", "--config", c, &groups, &managers], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let section = |title: &str| report_section(&shown, title);
    assert_eq!(section("Bodies the datatracker has"), ["onf Open Networking Foundation"], "{shown}");
    assert_eq!(
        section("Liaison managers the datatracker has"),
        ["etsi erik.solberg@example.org", "mef lena.novak@example.org"],
        "{shown}"
    );
    assert_eq!(section("Liaison managers the file has"), ["broadband-forum dolores.arriaga@example.org"], "{shown}");
    assert_eq!(section("Organisations with no liaison manager"), ["GSMA"], "{shown}");
    assert!(shown.contains("AD or a WG chair: not checked"), "{shown}");

    let (wgs, busy) = (fixture("wg-groups.json"), fixture("ad-and-chair-roles.json"));
    let out = liaisond(&["relationships", "diff", "--config", c, &groups, &managers, &wgs, &busy], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let section = |title: &str| report_section(&shown, title);
    assert_eq!(
        section("Managers who are also an AD or a WG chair"),
        ["ieee-802 gunnar.holmberg@example.org (chair of detnet)", "w3c chiara.bellucci@example.org (AD of rtg)"],
        "{shown}"
    );
    assert!(!dir.path().join("l.db").exists(), "diff changes nothing, not even a database");

    // Larger than any saved answer (a sparse file): refused before it is read.
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge).expect("create").set_len((64 << 20) + 1).expect("set_len");
    let out = liaisond(&["relationships", "diff", "--config", c, huge.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("huge.json"), "{}", text(&out.stderr));

    // Not an API answer: refused, naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[1, 2]").expect("write");
    let out = liaisond(&["relationships", "diff", "--config", c, bad.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bad.json"), "{}", text(&out.stderr));

    // The experts data from saved API answers, as `scripts/ietf-experts --from DIR` makes it:
    // the built-in file is exactly that output for the fixtures.
    let experts = |name: &str| repo_root().join("fixtures/datatracker/experts").join(name).display().to_string();
    let source = "fixtures/datatracker/experts/*.json: SAMPLE DATA (invented people, real group acronyms)";
    let files = [experts("groups.json"), experts("roles.json"), experts("people.json")];
    let mut args = vec!["relationships", "experts", "--source", source];
    args.extend(files.iter().map(String::as_str));
    let out = liaisond(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let built_in = std::fs::read_to_string(repo_root().join("config/ietf-experts.toml")).expect("read");
    assert_eq!(text(&out.stdout), built_in);
    let out = liaisond(&["relationships", "experts", bad.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bad.json"), "{}", text(&out.stderr));
}
