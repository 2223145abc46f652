//! `liaisond ingest`: one message from standard input (an MTA's pipe), stored before the
//! command succeeds; the daemon reads it.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use liaisond_store::Store;

use super::{EX_OK, EX_TEMPFAIL, runtime};
use crate::config::Config;
use crate::db::Db;
use crate::ingest::Ingestor;

/// `liaisond ingest`: every failure before the commit is EX_TEMPFAIL, including a bad
/// configuration, so that the MTA keeps the message until the operator fixes it.
pub(super) fn ingest(path: &Path) -> u8 {
    // The sources and [smtp] are not checked here: an MTA pipe runs without the daemon's
    // credentials and need not see its mailboxes (it queues mail; the daemon sends it).
    let config = match Config::load_store_only(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("liaisond: invalid configuration (message not stored, MTA should retry): {e}");
            return EX_TEMPFAIL;
        }
    };
    // A panic before the commit must be a temporary failure too: any other exit status makes
    // Postfix's pipe(8) bounce the message.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ingest_stdin(config))) {
        Ok(Ok(line)) => {
            // The message is stored: a closed standard output must not turn that into a
            // failure (println! would panic, and the MTA would bounce a stored message).
            let _ = writeln!(std::io::stdout(), "{line}");
            EX_OK
        }
        Ok(Err(e)) => {
            eprintln!("liaisond: message not stored (MTA should retry): {e:#}");
            EX_TEMPFAIL
        }
        Err(_) => {
            eprintln!("liaisond: internal error (panic); message not stored (MTA should retry)");
            EX_TEMPFAIL
        }
    }
}

fn ingest_stdin(config: Config) -> anyhow::Result<String> {
    let piped = crate::sources::stdin::read(&mut std::io::stdin().lock(), config.limits.max_message_size)
        .context("cannot read the message from standard input")?;
    let rt = runtime()?;
    let result = rt.block_on(async {
        let store = Store::open(&config.database, config.busy_timeout)?;
        // Stored only, never read here: reading parses what senders wrote (and extracting
        // attachments starts workers), which belongs inside the daemon's sandbox, not in the
        // MTA's pipe. The daemon's pending sweep reads it, two to four minutes later at the
        // default stage_timeout (`ingest::pending_grace`).
        let ingestor = Ingestor::new(Db::new(store), config.limits.clone(), None);
        let result = crate::sources::stdin::ingest(&ingestor, piped).await?;
        Ok(match (result.accepted.new, result.outcome) {
            (false, _) => format!("already stored as message {}", result.accepted.id),
            (true, Some(o)) => format!("stored as message {} ({o:?})", result.accepted.id),
            (true, None) => format!("stored as message {} (to be read by the daemon)", result.accepted.id),
        })
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}
