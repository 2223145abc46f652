//! liaisond against a real Dovecot on loopback: implicit TLS, STARTTLS and plain text; move,
//! flag and leave; IDLE; UIDVALIDITY changes; `\Seen` mail; unparseable and oversized mail.

mod common;

use std::time::Duration;

use common::*;
use futures_util::TryStreamExt;
use liaisond::run;
use tokio_util::sync::CancellationToken;

async fn run_once(config: liaisond::config::Config) -> liaisond::RunReport {
    run(config, CancellationToken::new(), common::run_options(true)).await.expect("run --once")
}

fn ids(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| message_id_of(tag, i)).collect()
}

#[tokio::test]
async fn implicit_tls_stores_each_message_once_and_moves_it() {
    let tb = testbed();
    let (mut s, mailbox) = mailbox_with(tb, "tls-move", 5).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = imap_config(tb, dir.path(), &mailbox, Security::Implicit, "move", "");
    let report = run_once(config.clone()).await;
    assert_eq!(report.stored, 5);
    assert!(report.failed_sources.is_empty(), "{:?}", report.failed_sources);
    assert_stored_once(&config.database, &ids(&mailbox, 5));
    assert_eq!(count(&mut s, &mailbox).await, 0, "moved out of the watched mailbox");
    assert_eq!(count(&mut s, &format!("{mailbox}-done")).await, 5, "moved into move_to");
    assert!(stored(&config.database).iter().all(|m| m.state == "processed"));

    // New mail and a second run: only the new message is stored.
    append(&mut s, &mailbox, &sample_message(&mailbox, 5), None).await;
    let report = run_once(config.clone()).await;
    assert_eq!(report.stored, 1);
    assert_stored_once(&config.database, &ids(&mailbox, 6));
}

#[tokio::test]
async fn starttls_flags_messages_seen_and_never_duplicates() {
    let tb = testbed();
    let (mut s, mailbox) = mailbox_with(tb, "starttls-seen", 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = imap_config(tb, dir.path(), &mailbox, Security::StartTls, "seen", "");
    run_once(config.clone()).await;
    run_once(config.clone()).await;
    assert_stored_once(&config.database, &ids(&mailbox, 3));
    let flags = flags(&mut s, &mailbox).await;
    assert_eq!(flags.len(), 3);
    assert!(flags.iter().all(|(_, f)| f.iter().any(|x| x == "Seen")), "{flags:?}");
}

#[tokio::test]
async fn plain_loopback_leave_changes_nothing_on_the_server() {
    let tb = testbed();
    let (mut s, mailbox) = mailbox_with(tb, "plain-leave", 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = imap_config(tb, dir.path(), &mailbox, Security::None, "leave", "");
    run_once(config.clone()).await;
    assert_stored_once(&config.database, &ids(&mailbox, 3));
    // BODY.PEEK[] must not set \Seen (RFC 3501 §6.4.5).
    let flags = flags(&mut s, &mailbox).await;
    assert!(flags.iter().all(|(_, f)| f.is_empty()), "fetching must not change flags: {flags:?}");
    let report = run_once(config.clone()).await;
    assert_eq!(report.stored, 0, "the cursor remembers what was read");
}

#[tokio::test]
async fn messages_already_seen_by_another_client_are_ingested() {
    let tb = testbed();
    let mailbox = unique_mailbox("all-seen");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    for i in 0..4 {
        append(&mut s, &mailbox, &sample_message(&mailbox, i), Some("(\\Seen)")).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = imap_config(tb, dir.path(), &mailbox, Security::Implicit, "move", "");
    run_once(config.clone()).await;
    assert_stored_once(&config.database, &ids(&mailbox, 4));
    assert_eq!(count(&mut s, &mailbox).await, 0);
}

#[tokio::test]
async fn an_unparseable_message_is_quarantined_and_the_rest_processed() {
    let tb = testbed();
    let mailbox = unique_mailbox("garbage");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    append(&mut s, &mailbox, &sample_message(&mailbox, 0), None).await;
    append(&mut s, &mailbox, &garbage_message(), None).await;
    append(&mut s, &mailbox, &sample_message(&mailbox, 1), None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = imap_config(tb, dir.path(), &mailbox, Security::Implicit, "move", "");
    run_once(config.clone()).await;
    let rows = stored(&config.database);
    assert_eq!(rows.len(), 3);
    let quarantined: Vec<_> = rows.iter().filter(|m| m.state == "quarantined").collect();
    assert_eq!(quarantined.len(), 1, "{rows:?}");
    assert!(quarantined[0].detail.as_deref().is_some_and(|d| d.starts_with("parse:")), "{quarantined:?}");
    assert_eq!(rows.iter().filter(|m| m.state == "processed").count(), 2);
    assert_eq!(count(&mut s, &mailbox).await, 0, "the quarantined message is stored, so it is moved too");
}

#[tokio::test]
async fn uidvalidity_change_rescans_without_duplicates() {
    let tb = testbed();
    let mailbox = unique_mailbox("uidvalidity");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    let messages: Vec<Vec<u8>> = (0..6).map(|i| sample_message(&mailbox, i)).collect();
    for m in &messages[..5] {
        append(&mut s, &mailbox, m, None).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = imap_config(tb, dir.path(), &mailbox, Security::Implicit, "leave", "");
    run_once(config.clone()).await;
    let old = s.examine(&mailbox).await.expect("examine").uid_validity;

    // The mailbox is deleted and recreated with the same five messages and one new one.
    s.delete(&mailbox).await.expect("delete");
    // Dovecot closes a session whose selected mailbox was deleted; use a fresh one.
    let mut s = imap(tb).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // Dovecot derives UIDVALIDITY from the clock
    create_mailbox(&mut s, &mailbox).await;
    for m in &messages {
        append(&mut s, &mailbox, m, None).await;
    }
    let new = s.examine(&mailbox).await.expect("examine").uid_validity;
    assert_ne!(old, new, "the test needs a new UIDVALIDITY");
    let report = run_once(config.clone()).await;
    assert_eq!(report.stored, 1, "only the new message is new");
    assert_stored_once(&config.database, &ids(&mailbox, 6));
    let status =
        liaisond_store::Store::open(&config.database, Duration::from_secs(5)).expect("db").status(50).expect("status");
    assert!(status.last_events.iter().any(|e| e.kind == "uidvalidity_changed"), "{:?}", status.last_events);
    assert_eq!(status.cursors[0].uidvalidity, new.map(i64::from));
}

#[tokio::test]
async fn an_oversized_message_keeps_its_header_and_does_not_block_the_rest() {
    let tb = testbed();
    let mailbox = unique_mailbox("oversized");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    append(&mut s, &mailbox, &sample_message(&mailbox, 0), None).await;
    let mut big = sample_message(&mailbox, 1);
    big.extend(
        std::iter::repeat_n(b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n".as_slice(), 3000)
            .flatten(),
    );
    append(&mut s, &mailbox, &big, None).await;
    append(&mut s, &mailbox, &sample_message(&mailbox, 2), None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = imap_config(tb, dir.path(), &mailbox, Security::Implicit, "move", "");
    config.limits.max_message_size = 50_000;
    run_once(config.clone()).await;
    assert_stored_once(&config.database, &ids(&mailbox, 3));
    let rows = stored(&config.database);
    let over = rows.iter().find(|m| m.message_id.as_deref() == Some(message_id_of(&mailbox, 1).as_str())).expect("row");
    assert_eq!(over.state, "quarantined");
    assert!(over.detail.as_deref().is_some_and(|d| d.starts_with("oversized")), "{over:?}");
    assert!(over.size < 2000, "only the header was fetched and kept: {} bytes", over.size);
    assert_eq!(count(&mut s, &mailbox).await, 0);
}

#[tokio::test]
async fn a_large_message_is_fetched_in_parts_byte_for_byte() {
    // Issue 14: a message of more than half a batch is fetched in parts of half a batch
    // (BODY.PEEK[]<offset.length>), so that it is not in memory twice. One ends exactly at a
    // part's end (the next part is empty), one in the middle of a part.
    let tb = testbed();
    let mailbox = unique_mailbox("in-parts");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    let part = 100_000;
    let mut sent = Vec::new();
    for (i, size) in [(0, 3 * part), (1, 3 * part + 12_345)] {
        let mut m = sample_message(&mailbox, i);
        let line = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n";
        while m.len() + line.len() <= size - 2 {
            m.extend_from_slice(line);
        }
        m.resize(size - 2, b'x');
        m.extend_from_slice(b"\r\n");
        append(&mut s, &mailbox, &m, None).await;
        sent.push(m);
    }
    append(&mut s, &mailbox, &sample_message(&mailbox, 2), None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = imap_config(tb, dir.path(), &mailbox, Security::None, "move", "");
    config.limits.fetch_batch_size = 2 * part as u64;
    let (port, commands) = recording_proxy(format!("{}:{}", tb.host, tb.imap_port)).await;
    config.imap[0].port = port;
    let report = run_once(config.clone()).await;
    assert_eq!(report.stored, 3);
    let commands = String::from_utf8_lossy(&commands.lock().expect("commands")).into_owned();
    for range in ["BODY.PEEK[]<0.100000>", "BODY.PEEK[]<100000.100000>", "BODY.PEEK[]<300000.100000>"] {
        assert!(commands.contains(range), "no {range} among the commands:\n{commands}");
    }
    assert_stored_once(&config.database, &ids(&mailbox, 3));
    let db = rusqlite::Connection::open(&config.database).expect("open");
    for (i, m) in sent.iter().enumerate() {
        let raw: Vec<u8> = db
            .query_row(
                "SELECT r.raw FROM message_raw r JOIN messages m ON m.id = r.message WHERE m.message_id = ?1",
                [message_id_of(&mailbox, i)],
                |r| r.get(0),
            )
            .expect("raw");
        assert_eq!(raw.len(), m.len(), "message {i}");
        assert!(raw == *m, "message {i} was not stored byte for byte");
    }
    assert!(stored(&config.database).iter().all(|m| m.state == "processed"));
    assert_eq!(count(&mut s, &mailbox).await, 0, "all moved after the commit");
}

/// A proxy in front of the testbed's plain IMAP port that keeps what the client sends. Returns
/// its port and the bytes.
async fn recording_proxy(upstream: String) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = sent.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { return };
            let kept = kept.clone();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                    kept.lock().expect("kept").extend_from_slice(&buf[..n]);
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, sent)
}

/// A proxy in front of the testbed's plain IMAP port that makes the server lie: every
/// `RFC822.SIZE n` it answers becomes `RFC822.SIZE 1`. Returns its port.
async fn size_lying_proxy(upstream: String) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let lie = regex::bytes::Regex::new(r"RFC822\.SIZE [0-9]+").expect("regex");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { return };
            let lie = lie.clone();
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
                // Whole lines only, so that a size is never split between two reads.
                let (mut pending, mut buf) = (Vec::new(), vec![0u8; 64 * 1024]);
                while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                    pending.extend_from_slice(&buf[..n]);
                    let Some(end) = pending.windows(2).rposition(|w| w == b"\r\n") else { continue };
                    let lines: Vec<u8> = pending.drain(..end + 2).collect();
                    let lines = lie.replace_all(&lines, &b"RFC822.SIZE 1"[..]);
                    if client_write.write_all(&lines).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_message_larger_than_the_server_said_keeps_only_its_header() {
    // Regression (issue 13, medium 6): the size checked was the server's word; a message
    // whose size the server understated (or gave none for) was stored and read whole.
    let tb = testbed();
    let mailbox = unique_mailbox("understated");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    let mut big = sample_message(&mailbox, 0);
    big.extend(
        std::iter::repeat_n(b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab\r\n".as_slice(), 3000)
            .flatten(),
    );
    append(&mut s, &mailbox, &big, None).await;
    append(&mut s, &mailbox, &sample_message(&mailbox, 1), None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = imap_config(tb, dir.path(), &mailbox, Security::None, "leave", "");
    config.limits.max_message_size = 50_000;
    config.imap[0].port = size_lying_proxy(format!("{}:{}", tb.host, tb.imap_port)).await;
    run_once(config.clone()).await;
    assert_stored_once(&config.database, &ids(&mailbox, 2));
    let rows = stored(&config.database);
    let over = rows.iter().find(|m| m.message_id.as_deref() == Some(message_id_of(&mailbox, 0).as_str())).expect("row");
    assert_eq!(over.state, "quarantined", "{over:?}");
    assert!(over.detail.as_deref().is_some_and(|d| d.starts_with("oversized")), "{over:?}");
    assert!(over.size < 2000, "only the header was kept: {} bytes", over.size);
}

#[tokio::test]
async fn idle_picks_up_a_new_message_without_waiting_for_a_poll() {
    let tb = testbed();
    let mailbox = unique_mailbox("idle");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = imap_config(tb, dir.path(), &mailbox, Security::Implicit, "move", "");
    config.imap[0].poll_interval = Duration::from_secs(3600);
    let db = config.database.clone();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(config, shutdown.clone(), common::run_options(false)));

    // Wait for the first (empty) sync, then deliver.
    let db2 = db.clone();
    eventually(Duration::from_secs(20), "first poll", move || {
        db2.exists()
            && liaisond_store::Store::open(&db2, Duration::from_secs(5))
                .and_then(|s| s.status(1))
                .is_ok_and(|st| st.cursors.iter().any(|c| c.last_poll_ok.is_some()))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // let the daemon enter IDLE
    let delivered = std::time::Instant::now();
    append(&mut s, &mailbox, &sample_message(&mailbox, 0), None).await;
    let db3 = db.clone();
    eventually(Duration::from_secs(10), "the new message stored through IDLE", move || row_count(&db3) == 1).await;
    assert!(delivered.elapsed() < Duration::from_secs(10), "IDLE, not the one-hour poll, found it");

    shutdown.cancel();
    let report = tokio::time::timeout(Duration::from_secs(15), daemon)
        .await
        .expect("stops promptly")
        .expect("join")
        .expect("run");
    assert_eq!(report.stored, 1);
    assert_stored_once(&db, &ids(&mailbox, 1));
    // Found through IDLE, not through a reconnect after a failed IDLE.
    let status = liaisond_store::Store::open(&db, Duration::from_secs(5)).expect("db").status(1000).expect("status");
    assert!(!status.last_events.iter().any(|e| e.kind == "source_error"), "{:?}", status.last_events);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let tb = testbed();
    let mailbox = unique_mailbox("untrusted");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = imap_config(tb, dir.path(), &mailbox, Security::Implicit, "leave", "");
    config.imap[0].ca_file = None; // the system trust store does not know the testbed's CA
    let report = run_once(config.clone()).await;
    assert_eq!(report.failed_sources.len(), 1);
    assert!(report.failed_sources[0].contains("TLS"), "{:?}", report.failed_sources);
}

#[tokio::test]
async fn a_wrong_password_fails_without_retrying_fast() {
    let tb = testbed();
    let mailbox = unique_mailbox("badpw");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = imap_config(tb, dir.path(), &mailbox, Security::Implicit, "leave", "");
    config.imap[0].password = liaisond::config::Secret::new("wrong");
    let started = std::time::Instant::now();
    let report = run_once(config.clone()).await;
    assert!(report.failed_sources[0].contains("login"), "{:?}", report.failed_sources);
    assert!(started.elapsed() < Duration::from_secs(10), "a refused login is not retried in --once");
    let status =
        liaisond_store::Store::open(&config.database, Duration::from_secs(5)).expect("db").status(5).expect("status");
    assert!(status.cursors[0].last_error.as_deref().is_some_and(|e| e.contains("login")), "status shows the error");
}

#[tokio::test]
async fn a_second_instance_on_the_same_database_is_refused() {
    let tb = testbed();
    let mailbox = unique_mailbox("two");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = imap_config(tb, dir.path(), &mailbox, Security::Implicit, "leave", "");
    let shutdown = CancellationToken::new();
    let first = tokio::spawn(run(config.clone(), shutdown.clone(), common::run_options(false)));
    let db = config.database.clone();
    eventually(Duration::from_secs(10), "first instance started", move || db.exists()).await;
    let second = run(config.clone(), CancellationToken::new(), common::run_options(true)).await;
    let err = second.expect_err("second instance must be refused");
    assert!(format!("{err:#}").contains("already runs"), "{err:#}");
    shutdown.cancel();
    first.await.expect("join").expect("first run");
}

#[tokio::test]
async fn without_move_it_copies_and_expunges_only_its_own_messages() {
    // R19: with no MOVE, COPY + \Deleted + UID EXPUNGE (RFC 4315 §2.1); a bare EXPUNGE would
    // also remove what another client marked \Deleted.
    let tb = testbed();
    let mailbox = unique_mailbox("nomove");
    let mut s = imap(tb).await;
    create_mailbox(&mut s, &mailbox).await;
    append(&mut s, &mailbox, &sample_message(&mailbox, 0), None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = imap_config(tb, dir.path(), &mailbox, Security::None, "leave", "");
    config.imap[0].host = tb.nomove_host.clone();
    config.imap[0].port = tb.nomove_port;
    run_once(config.clone()).await;

    // Another client marks the first message \Deleted (and does not expunge); new mail arrives.
    s.select(&mailbox).await.expect("select");
    let st: Vec<_> =
        s.uid_store("1:*", "+FLAGS.SILENT (\\Deleted)").await.expect("store").try_collect().await.expect("drain");
    drop(st);
    for i in 1..3 {
        append(&mut s, &mailbox, &sample_message(&mailbox, i), None).await;
    }
    // Store them as if the process had died after the commit (UID 2's move still owed) and,
    // for UID 3, after COPY but before EXPUNGE (its copy is already in the move folder).
    run_once(config.clone()).await;
    let done = format!("{mailbox}-done");
    create_mailbox(&mut s, &done).await;
    append(&mut s, &done, &sample_message(&mailbox, 2), None).await;
    let db = rusqlite::Connection::open(&config.database).expect("db");
    db.execute("UPDATE message_sources SET post_action = 'pending' WHERE uid = 2", []).expect("owe");
    db.execute("UPDATE message_sources SET post_action = 'copied' WHERE uid = 3", []).expect("copied");
    drop(db);
    config.imap[0].after_commit = liaisond::config::AfterCommit::Move(done.clone());
    run_once(config.clone()).await;
    assert_stored_once(&config.database, &ids(&mailbox, 3));
    let left = flags(&mut s, &mailbox).await;
    assert_eq!(left.len(), 1, "only the other client's \\Deleted message stays: {left:?}");
    assert!(left[0].1.iter().any(|f| f == "Deleted"), "{left:?}");
    assert_eq!(count(&mut s, &done).await, 2, "each message copied exactly once");
}

#[tokio::test]
async fn a_refused_move_stays_owed_and_visible_in_status() {
    // R16: the server refuses the post-processing (here: it cannot create the folder, a "."
    // in the name being refused by the testbed's Maildir++ layout). The
    // messages are stored, the move stays owed, and the error stays visible (a regression:
    // the successful poll right after cleared it).
    let tb = testbed();
    let (_s, mailbox) = mailbox_with(tb, "refused-move", 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = imap_config(tb, dir.path(), &mailbox, Security::None, "leave", "");
    config.imap[0].after_commit = liaisond::config::AfterCommit::Move(format!("{mailbox}.refused"));
    let report = run_once(config.clone()).await;
    assert_eq!(report.stored, 2);
    assert_stored_once(&config.database, &ids(&mailbox, 2));
    let status = liaisond_store::Store::open(&config.database, std::time::Duration::from_secs(5))
        .expect("open")
        .status(20)
        .expect("status");
    assert_eq!(status.pending_server_actions, 2, "the move stays owed");
    let cursor = &status.cursors[0];
    assert!(cursor.last_poll_ok.is_some());
    assert!(cursor.last_error.as_deref().is_some_and(|e| e.contains("NO")), "{cursor:?}");
}
