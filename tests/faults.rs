//! Faults: the process killed with SIGKILL in the middle of ingesting 500 messages, and the
//! IMAP server restarted in the middle of a batch. After each, every message must be stored
//! exactly once and moved exactly once.
//!
//! These tests restart the shared Dovecot, so they live in their own test binary (cargo runs
//! test binaries one after another) and run one at a time.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use liaisond::run;
use tokio_util::sync::CancellationToken;

/// The two tests must not overlap: one restarts the server the other uses.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A statement with a ~20 KB body, so that a batch takes long enough to be interrupted.
fn bulky(tag: &str, i: usize) -> Vec<u8> {
    let mut m = sample_message(tag, i);
    m.extend(format!("Annex line {i}: {}\r\n", "x".repeat(200)).repeat(90).into_bytes());
    m
}

#[tokio::test]
async fn sigkill_during_ingest_then_restart_stores_every_message_once() {
    let _serial = SERIAL.lock().await;
    const N: usize = 500;
    let tb = testbed();
    let mailbox = unique_mailbox("sigkill");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    for i in 0..N {
        append(&mut s, &mailbox, &bulky(&mailbox, i), None).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = imap_config(tb, dir.path(), &mailbox, Security::Implicit, "move", "");
    let config_path = dir.path().join("liaisond.toml");
    let db = config.database.clone();

    // Kill it twice, at different points, while it is busy.
    let mut killed_at = Vec::new();
    for threshold in [60, 250] {
        let mut child = spawn_daemon(&config_path, "warn", Stdio::inherit());
        let db2 = db.clone();
        eventually(Duration::from_secs(60), "ingest under way", move || row_count(&db2) >= threshold).await;
        child.kill().expect("SIGKILL"); // std's kill() sends SIGKILL
        child.wait().expect("reap");
        killed_at.push(row_count(&db));
    }
    assert!(killed_at[1] < N, "the second kill must land before the end (at {killed_at:?}); make messages larger");

    // Restart and let it finish.
    let report = run(config.clone(), CancellationToken::new(), common::run_options(true)).await.expect("restart");
    assert!(report.failed_sources.is_empty(), "{:?}", report.failed_sources);
    let expected: Vec<String> = (0..N).map(|i| message_id_of(&mailbox, i)).collect();
    assert_stored_once(&db, &expected);
    assert!(stored(&db).iter().all(|m| m.state == "processed"));
    assert_eq!(count(&mut s, &mailbox).await, 0, "every message left the watched mailbox");
    assert_eq!(count(&mut s, &format!("{mailbox}-done")).await, N as u32, "every message moved exactly once");
}

#[tokio::test]
async fn imap_server_restart_during_a_batch_loses_and_duplicates_nothing() {
    let _serial = SERIAL.lock().await;
    const N: usize = 800;
    let tb = testbed();
    let mailbox = unique_mailbox("restart");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    for i in 0..N {
        append(&mut s, &mailbox, &bulky(&mailbox, i), None).await;
    }
    drop(s);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = imap_config(tb, dir.path(), &mailbox, Security::StartTls, "move", "");
    config.limits.fetch_batch_messages = 100;
    let db = config.database.clone();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(config, shutdown.clone(), common::run_options(false)));

    let db2 = db.clone();
    eventually(Duration::from_secs(60), "ingest under way", move || row_count(&db2) >= 40).await;
    let at_restart = row_count(&db);
    let restart = tokio::task::spawn_blocking(|| {
        Command::new(repo_root().join("scripts/testbed"))
            .arg("restart-imap")
            .arg(testbed_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("restart-imap")
    })
    .await
    .expect("join");
    assert!(restart.success());
    assert!(at_restart < N / 2, "the restart must start mid-ingest (at {at_restart})");
    // The daemon backs off before reconnecting, so the restart really cut the ingest short.
    let after_restart = row_count(&db);
    assert!(after_restart < N, "the restart must interrupt the ingest (all {N} were stored already)");

    let db3 = db.clone();
    eventually(Duration::from_secs(90), "all messages stored after reconnecting", move || row_count(&db3) >= N).await;
    // Give the daemon a moment to finish moving the last batch, then stop it.
    let mut s = imap(tb).await;
    for _ in 0..100 {
        if count(&mut s, &mailbox).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let report =
        tokio::time::timeout(Duration::from_secs(20), daemon).await.expect("stops").expect("join").expect("run");
    assert!(report.failed_sources.is_empty());
    let expected: Vec<String> = (0..N).map(|i| message_id_of(&mailbox, i)).collect();
    assert_stored_once(&db, &expected);
    assert_eq!(count(&mut s, &mailbox).await, 0);
    assert_eq!(count(&mut s, &format!("{mailbox}-done")).await, N as u32);
    let status = liaisond_store::Store::open(&db, Duration::from_secs(5)).expect("db").status(100_000).expect("status");
    assert!(
        status.last_events.iter().any(|e| e.kind == "source_error"),
        "the dropped connection is visible to the operator: {:?}",
        status.last_events
    );
}
