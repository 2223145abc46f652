//! The IMAP source. **Architecture invariant: only this module speaks IMAP.**
//!
//! One task per configured mailbox, one connection each (R08). A cycle is: connect (implicit
//! TLS, STARTTLS, or plain text on loopback only), LOGIN, SELECT, finish server actions still
//! owed from before, `UID SEARCH` past the cursor, `UID FETCH (RFC822.SIZE)`, then fetch the
//! bodies with `BODY.PEEK[]` in bounded batches (RFC 3501 §6.4.5: PEEK does not set `\Seen`),
//! committing every message before anything changes on the server; then move or flag the
//! batch; then IDLE (RFC 2177) or sleep until the next poll.
//!
//! async-imap has no timeouts of its own: every network step here is wrapped in one, and any
//! error drops the connection and reconnects with exponential backoff and jitter.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::Capabilities;
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use liaisond_core::parse::header_section;
use liaisond_model::{Cursor, Origin, SourceKind};
use liaisond_store::{PostAction, StoreError};

use crate::config::{AfterCommit, ImapConfig, TlsMode};
use crate::daemon::service::Heartbeat;
use crate::ingest::{Ingestor, Received, Receiving, ToRead};
use crate::sources::SourceReport;
use cursor::{Batch, SyncStart};

pub mod cursor;

/// Longest silence tolerated inside IDLE before the connection is presumed dead. Dovecot sends
/// `* OK Still here` every 2 minutes; most servers do something similar.
const IDLE_SILENCE_LIMIT: Duration = Duration::from_secs(5 * 60);

/// At most this many UIDs in one `UID FETCH (RFC822.SIZE)` command line.
const SIZE_QUERY_CHUNK: usize = 500;
/// A large message is fetched in parts of this many bytes ([`ImapSource::fetch_in_parts`]).
const FETCH_PART: usize = 4 << 20;

/// Assumed worst-case transfer rate for the per-message time limit of a body fetch.
const SLOWEST_RATE_BYTES_PER_SEC: u64 = 64 * 1024;

/// Any byte stream an IMAP session can run over (plain TCP or TLS).
pub trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> ImapIo for T {}

type ImapSession = Session<Box<dyn ImapIo>>;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {host} failed: {source}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS setup: {0}")]
    TlsConfig(String),
    #[error("{host} refused STARTTLS ({detail}); not continuing without TLS")]
    StartTlsRefused { host: String, detail: String },
    #[error("login as {user} refused: {detail}")]
    Auth { user: String, detail: String },
    #[error("no answer within {} while {step}", humantime::format_duration(*.limit))]
    Timeout { step: &'static str, limit: Duration },
    #[error("the server closed the connection while {0}")]
    Closed(&'static str),
    #[error("IMAP error while {step}: {source}")]
    Protocol {
        step: &'static str,
        #[source]
        source: async_imap::error::Error,
    },
    #[error("{0}")]
    Server(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImapError {
    /// Whether reconnecting soon may help. Authentication and TLS refusals are not transient:
    /// they are retried too, but slowly, so as not to lock the account (R06).
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Auth { .. } | ImapError::TlsConfig(_) | ImapError::StartTlsRefused { .. } => false,
            ImapError::Tls { source, .. } => source.kind() != std::io::ErrorKind::InvalidData,
            ImapError::Store(e) => e.is_transient(),
            _ => true,
        }
    }
}

/// Runs `fut` under a time limit named after the step, for the error message.
async fn step<T, E>(
    limit: Duration,
    step: &'static str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, ImapError>
where
    E: Into<StepError>,
{
    match tokio::time::timeout(limit, fut).await {
        Err(_) => Err(ImapError::Timeout { step, limit }),
        Ok(Err(e)) => Err(match e.into() {
            StepError::Imap(async_imap::error::Error::ConnectionLost) => ImapError::Closed(step),
            StepError::Imap(source) => ImapError::Protocol { step, source },
            StepError::Io(source) => ImapError::Protocol { step, source: async_imap::error::Error::Io(source) },
        }),
        Ok(Ok(v)) => Ok(v),
    }
}

/// The two error types IMAP steps produce.
pub enum StepError {
    Imap(async_imap::error::Error),
    Io(std::io::Error),
}
impl From<async_imap::error::Error> for StepError {
    fn from(e: async_imap::error::Error) -> Self {
        StepError::Imap(e)
    }
}
impl From<std::io::Error> for StepError {
    fn from(e: std::io::Error) -> Self {
        StepError::Io(e)
    }
}

/// Exponential backoff with jitter: 1 s doubling to 5 min for transient errors, 5 min
/// doubling to 1 h for refusals (bad password, TLS).
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn next_delay(&mut self, transient: bool) -> Duration {
        let (base, cap) = if transient { (1u64, 300u64) } else { (300, 3600) };
        let exp = base.saturating_mul(1u64 << self.failures.min(16)).min(cap);
        self.failures = self.failures.saturating_add(1);
        // ±25% jitter so that several daemons (or mailboxes) do not reconnect in step.
        let jitter = rand::rng().random_range(0.75..1.25);
        Duration::from_secs_f64(exp as f64 * jitter)
    }
}

/// What post-processing the server supports (read after LOGIN; servers advertise more then).
#[derive(Debug, Clone, Copy)]
struct ServerCaps {
    idle: bool,
    mv: bool,
    uidplus: bool,
}

impl ServerCaps {
    fn from(c: &Capabilities) -> Self {
        ServerCaps { idle: c.has_str("IDLE"), mv: c.has_str("MOVE"), uidplus: c.has_str("UIDPLUS") }
    }
}

/// One configured mailbox.
pub struct ImapSource {
    cfg: ImapConfig,
    ingestor: Ingestor,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// This source's loop (the ingestor's): every step says how long it may take.
    hb: Heartbeat,
    warned_no_expunge: bool,
    /// The server refused to post-process during this sync (the error must stay visible).
    deferred_this_sync: bool,
}

/// A stored batch to read and record, and how long that may take (each message under the
/// stage limit).
struct Reading {
    to_read: ToRead,
    limit: Duration,
}

/// Reads and records a batch while the source fetches the next one (both futures of one task,
/// `tokio::join!`): bounded by the batch's limit, and beating the heartbeat meanwhile, as a
/// bounded wait may (`service`).
/// On shutdown, or past the batch's limit, what is not recorded yet stays pending and is read
/// at the next start (or by the sweep): a batch may take minutes.
async fn read_alongside(ingestor: Ingestor, heartbeat: Heartbeat, reading: Reading, shutdown: CancellationToken) {
    tokio::select! {
        _ = tokio::time::timeout(reading.limit, ingestor.read(reading.to_read)) => {}
        _ = shutdown.cancelled() => {
            tracing::info!("stopping: the batch being read stays pending until the next start");
        }
        never = heartbeat.keep_beating() => match never {},
    }
    release_free_memory();
}

/// Gives the memory freed by a batch back to the system. glibc keeps freed blocks of a few
/// MiB in its heaps, so without this the resident size stays near the high-water mark of the
/// largest batches so far (the 10,000-message benchmark: a peak of 125 MiB without, 111 MiB
/// with; no change in its time). Once per batch: it walks the heap.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused memory of the allocator's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What one FETCH stored.
struct Fetched {
    committed: Vec<u32>,
    /// The lowest requested UID that is not stored but still on the server: the cursor must
    /// stop before it.
    stopped_at: Option<u32>,
}

impl Fetched {
    fn new(committed: HashSet<u32>, stopped_at: Option<u32>) -> Fetched {
        let mut committed: Vec<u32> = committed.into_iter().collect();
        committed.sort_unstable();
        Fetched { committed, stopped_at }
    }
}

impl ImapSource {
    pub fn new(cfg: ImapConfig, ingestor: Ingestor) -> Result<ImapSource, ImapError> {
        let tls = tls_config(&cfg)?;
        let hb = ingestor.heartbeat().clone();
        Ok(ImapSource { cfg, ingestor, tls, hb, warned_no_expunge: false, deferred_this_sync: false })
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    /// This source in the progress of a sync (`STATUS=`, the progress bar).
    fn progress_name(&self) -> String {
        format!("imap '{}'", self.cfg.name)
    }

    /// Stores only the header section of a message over `max_message_size` (R31), quarantined.
    async fn keep_header_only(
        &self,
        uid: u32,
        header: Vec<u8>,
        size: u64,
        origin: Origin,
        internal_date: Option<String>,
        report: &mut SourceReport,
    ) -> Result<(), ImapError> {
        tracing::warn!(source = self.name(), uid, size, "message over max_message_size; keeping its header only");
        let result = self.ingestor.ingest_oversized(header, size, origin, internal_date).await?;
        self.counted(report, result.accepted.new, size);
        Ok(())
    }

    /// One more message of the sync stored (or found already stored).
    fn counted(&self, report: &mut SourceReport, new: bool, bytes: u64) {
        if new {
            report.stored += 1;
        } else {
            report.already_known += 1;
        }
        self.ingestor.progress().stored(&self.progress_name(), 1, bytes);
    }

    /// [`step`], telling the heartbeat first that this may take up to `limit`.
    async fn step<T, E>(
        &self,
        limit: Duration,
        what: &'static str,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, ImapError>
    where
        E: Into<StepError>,
    {
        self.hb.busy_for(limit);
        let result = step(limit, what, fut).await;
        self.hb.beat();
        result
    }

    /// Runs until `shutdown` (or, with `once`, until the mailbox has been drained once).
    /// With `once`, transient errors are retried a few times, then returned.
    pub async fn run(mut self, shutdown: CancellationToken, once: bool) -> Result<SourceReport, ImapError> {
        let mut backoff = Backoff::default();
        let mut report = SourceReport::default();
        let mut failures_in_once = 0;
        loop {
            if shutdown.is_cancelled() {
                return Ok(report);
            }
            match self.session(&shutdown, once, &mut report, &mut backoff).await {
                Ok(()) => return Ok(report),
                Err(e) => {
                    tracing::warn!(source = self.name(), mailbox = self.cfg.mailbox, error = %e, "IMAP session failed");
                    self.hb.polled(Err(e.to_string()));
                    let (name, mailbox, text) = (self.cfg.name.clone(), self.cfg.mailbox.clone(), e.to_string());
                    if let Err(se) = self.ingestor.db().call(move |s| s.poll_error(&name, &mailbox, &text)).await {
                        tracing::error!(error = %se, "cannot record the IMAP error");
                    }
                    failures_in_once += 1;
                    if once && (!e.is_transient() || failures_in_once >= 4) {
                        return Err(e);
                    }
                    let delay = backoff.next_delay(e.is_transient());
                    tracing::info!(source = self.name(), delay = %humantime::format_duration(round_secs(delay)), "reconnecting later");
                    tokio::select! {
                        _ = self.hb.sleep(delay) => {}
                        _ = shutdown.cancelled() => return Ok(report),
                    }
                }
            }
        }
    }

    /// One connection's life: returns Ok when done (once, or shutdown), Err to reconnect.
    async fn session(
        &mut self,
        shutdown: &CancellationToken,
        once: bool,
        report: &mut SourceReport,
        backoff: &mut Backoff,
    ) -> Result<(), ImapError> {
        let t = self.cfg.timeout;
        let mut session = self.connect().await?;
        let caps = ServerCaps::from(&self.step(t, "reading capabilities", session.capabilities()).await?);
        if let AfterCommit::Move(folder) = &self.cfg.after_commit {
            // CREATE answers NO when the folder exists (RFC 3501 §6.3.3); that is fine.
            match self.step(t, "creating the move_to folder", session.create(folder)).await {
                Ok(()) | Err(ImapError::Protocol { source: async_imap::error::Error::No(_), .. }) => {}
                Err(e) => return Err(e),
            }
        }
        loop {
            self.deferred_this_sync = false;
            let seen_before = report.stored + report.already_known;
            self.sync(&mut session, caps, shutdown, report).await?;
            backoff.reset();
            let (name, mailbox, keep_error) =
                (self.cfg.name.clone(), self.cfg.mailbox.clone(), self.deferred_this_sync);
            self.ingestor.db().call(move |s| s.poll_ok(&name, &mailbox, keep_error)).await?;
            self.hb.polled(Ok(()));
            if once || shutdown.is_cancelled() {
                // Best effort: the server cleans up a dropped connection anyway.
                let _ = tokio::time::timeout(t, session.logout()).await;
                return Ok(());
            }
            // New mail announced while the sync ran (an EXISTS during a FETCH or MOVE) went to
            // the unsolicited channel; the server will not announce it again in IDLE. That
            // channel holds only 100 responses (async-imap drops the rest: a batch of MOVEs
            // fills it with EXPUNGEs), so after a sync that found mail, look once more.
            let found_mail = report.stored + report.already_known > seen_before;
            if mailbox_changed_meanwhile(&session) || found_mail {
                continue;
            }
            session = if caps.idle && self.cfg.idle {
                match self.idle(session, shutdown).await? {
                    Some(s) => s,
                    None => return Ok(()),
                }
            } else {
                tokio::select! {
                    _ = self.hb.sleep(self.cfg.poll_interval) => session,
                    _ = shutdown.cancelled() => {
                        let _ = tokio::time::timeout(t, session.logout()).await;
                        return Ok(());
                    }
                }
            };
        }
    }

    /// Connects, protects and logs in.
    async fn connect(&self) -> Result<ImapSession, ImapError> {
        // TCP, TLS, the greeting, STARTTLS and LOGIN: at most five steps.
        self.hb.busy_for(self.cfg.timeout.saturating_mul(5));
        let session = connect(&self.cfg, self.tls.as_ref()).await;
        self.hb.beat();
        session
    }

    /// Brings the database up to date with the mailbox.
    async fn sync(
        &mut self,
        session: &mut ImapSession,
        caps: ServerCaps,
        shutdown: &CancellationToken,
        report: &mut SourceReport,
    ) -> Result<(), ImapError> {
        let t = self.cfg.timeout;
        let mailbox = self.cfg.mailbox.clone();
        let selected = self.step(t, "selecting the mailbox", session.select(&mailbox)).await?;
        let uidvalidity = selected.uid_validity.ok_or_else(|| {
            ImapError::Server(format!("the server gave no UIDVALIDITY for {mailbox}; cannot track messages safely"))
        })?;
        let (name, mb) = (self.cfg.name.clone(), mailbox.clone());
        let stored = self.ingestor.db().call(move |s| s.cursor(&name, &mb)).await?;
        let start = cursor::sync_start(stored, uidvalidity);
        match start {
            SyncStart::Rescan { old } => {
                tracing::warn!(
                    source = self.name(),
                    mailbox,
                    old,
                    new = uidvalidity,
                    "UIDVALIDITY changed; rescanning the mailbox"
                );
                let (name, mb) = (self.cfg.name.clone(), mailbox.clone());
                self.ingestor.db().call(move |s| s.uidvalidity_changed(&name, &mb, old, uidvalidity)).await?;
            }
            SyncStart::Fresh => {
                let (name, mb) = (self.cfg.name.clone(), mailbox.clone());
                self.ingestor
                    .db()
                    .call(move |s| s.set_cursor(&name, &mb, Cursor { uidvalidity: Some(uidvalidity), last_uid: 0 }))
                    .await?;
            }
            SyncStart::After(_) => {}
        }

        // Server actions owed by an earlier run that stopped between commit and move (R12).
        let (name, mb) = (self.cfg.name.clone(), mailbox.clone());
        let owed = self.ingestor.db().call(move |s| s.pending_post_actions(&name, &mb, uidvalidity)).await?;
        if !owed.is_empty() {
            tracing::info!(source = self.name(), count = owed.len(), "finishing server actions left from before");
            self.post_action_or_defer(session, caps, uidvalidity, &owed).await?;
        }

        let first = start.first_uid();
        let found = self.step(t, "searching for new messages", session.uid_search(format!("UID {first}:*"))).await?;
        let uids = cursor::new_uids(found, first);
        if uids.is_empty() {
            return Ok(());
        }
        let (name, mb, check) = (self.cfg.name.clone(), mailbox.clone(), uids.clone());
        let known = self.ingestor.db().call(move |s| s.known_uids(&name, &mb, uidvalidity, &check)).await?;
        let todo: Vec<u32> = uids.iter().copied().filter(|u| !known.contains(u)).collect();
        report.already_known += known.len();
        let sizes = self.sizes(session, &todo).await?;
        let limits = self.ingestor.limits().clone();
        let batches = cursor::plan_batches(
            &sizes,
            limits.fetch_batch_messages as usize,
            limits.fetch_batch_size,
            limits.max_message_size,
        );
        tracing::debug!(source = self.name(), new = todo.len(), batches = batches.len(), "fetching");

        // Each batch is stored in one transaction, then read and recorded while the next batch
        // is fetched; one batch's reading ends before the next one's starts, so messages are
        // recorded in UID order. Finished at every exit: nothing is left half done.
        let mut reading: Option<Reading> = None;
        let progress = self.ingestor.progress().clone();
        progress.start(&self.progress_name(), &mailbox, todo.len());
        let result =
            self.fetch_batches(session, caps, uidvalidity, &batches, &sizes, shutdown, report, &mut reading).await;
        if let Some(last) = reading.take() {
            self.read_now(last, shutdown).await;
        }
        progress.finish(&self.progress_name());
        result?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        // Every batch is complete, so UIDs that were already known count as done too.
        if let Some(&last) = uids.last() {
            self.advance(uidvalidity, last).await?;
        }
        Ok(())
    }

    /// Reads and records a stored batch now (nothing fetched meanwhile), as
    /// [`read_alongside`] does.
    async fn read_now(&self, reading: Reading, shutdown: &CancellationToken) {
        read_alongside(self.ingestor.clone(), self.hb.clone(), reading, shutdown.clone()).await;
        self.hb.beat();
    }

    /// Fetches, stores and hands over for reading each batch in turn; returns early (`Ok`) on
    /// shutdown.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_batches(
        &mut self,
        session: &mut ImapSession,
        caps: ServerCaps,
        uidvalidity: u32,
        batches: &[Batch],
        sizes: &[(u32, u64)],
        shutdown: &CancellationToken,
        report: &mut SourceReport,
        reading: &mut Option<Reading>,
    ) -> Result<(), ImapError> {
        let half_batch = self.ingestor.limits().fetch_batch_size / 2;
        let size_of: HashMap<u32, u64> = sizes.iter().copied().collect();
        for batch in batches {
            // A batch holding a message of more than half a batch's bytes (a large one, alone
            // by `plan_batches`) is neither fetched while the previous batch is read nor read
            // while the next one is fetched: memory stays within the largest message plus a
            // little, not two large amounts at once.
            let large = match batch {
                Batch::Bodies(batch_uids) => batch_uids.iter().filter_map(|u| size_of.get(u)).sum::<u64>() > half_batch,
                Batch::Oversized { .. } => false,
            };
            if large && let Some(previous) = reading.take() {
                self.read_now(previous, shutdown).await;
            }
            if shutdown.is_cancelled() {
                // What is committed stays committed; the rest is fetched next time.
                return Ok(());
            }
            let fetch = async {
                match batch {
                    Batch::Bodies(batch_uids) if large && batch_uids.len() == 1 => {
                        let uid = batch_uids[0];
                        let size = size_of.get(&uid).copied().unwrap_or(0);
                        self.fetch_in_parts(session, uidvalidity, uid, size, shutdown, report).await
                    }
                    Batch::Bodies(batch_uids) => {
                        self.fetch_bodies(session, uidvalidity, batch_uids, sizes, shutdown, report).await
                    }
                    Batch::Oversized { uid, size } => self
                        .fetch_oversized(session, uidvalidity, *uid, *size, report)
                        .await
                        .map(|f| (f, ToRead::default())),
                }
            };
            // The previous batch is read while this one is fetched and stored.
            let fetched = match reading.take() {
                Some(previous) => {
                    let alongside = read_alongside(self.ingestor.clone(), self.hb.clone(), previous, shutdown.clone());
                    tokio::join!(fetch, alongside).0
                }
                None => fetch.await,
            };
            let (fetched, to_read) = fetched?;
            if !to_read.is_empty() {
                let limit = self.ingestor.read_limit(to_read.len());
                *reading = Some(Reading { to_read, limit });
            }
            if let Some(first_missing) = fetched.stopped_at {
                // The cursor stops just before the first message not stored (RFC 3501 §2.3.1.1:
                // UIDs only grow, so everything below it is settled).
                self.advance(uidvalidity, first_missing.saturating_sub(1)).await?;
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                return Err(ImapError::Server(format!(
                    "the server did not deliver UID {first_missing}, which still exists; trying again"
                )));
            }
            if large && let Some(current) = reading.take() {
                self.read_now(current, shutdown).await;
            }
            self.post_action_or_defer(session, caps, uidvalidity, &fetched.committed).await?;
            self.advance(uidvalidity, batch.last_uid()).await?;
        }
        Ok(())
    }

    /// Of `uids` (which the server did not deliver when asked), the lowest that still exists.
    /// The others were expunged by another client meanwhile (R14).
    async fn first_still_present(&self, session: &mut ImapSession, uids: &[u32]) -> Result<Option<u32>, ImapError> {
        if uids.is_empty() {
            return Ok(None);
        }
        let found = self
            .step(
                self.cfg.timeout,
                "checking for messages that were not delivered",
                session.uid_search(format!("UID {}", cursor::uid_set(uids))),
            )
            .await?;
        let wanted: HashSet<u32> = uids.iter().copied().collect();
        let present = found.into_iter().filter(|u| wanted.contains(u)).min();
        if present.is_none() {
            tracing::info!(source = self.name(), count = uids.len(), "messages vanished before they could be fetched");
        }
        Ok(present)
    }

    async fn advance(&self, uidvalidity: u32, last_uid: u32) -> Result<(), ImapError> {
        let (name, mb) = (self.cfg.name.clone(), self.cfg.mailbox.clone());
        self.ingestor
            .db()
            .call(move |s| {
                let current = s.cursor(&name, &mb)?.map_or(0, |c| c.last_uid);
                if last_uid > current {
                    s.set_cursor(&name, &mb, Cursor { uidvalidity: Some(uidvalidity), last_uid })?;
                }
                Ok(())
            })
            .await
            .map_err(Into::into)
    }

    /// RFC822.SIZE for each UID, in UID order (R31: sizes are checked before fetching bodies).
    async fn sizes(&self, session: &mut ImapSession, uids: &[u32]) -> Result<Vec<(u32, u64)>, ImapError> {
        let t = self.cfg.timeout;
        let mut out = Vec::with_capacity(uids.len());
        for chunk in uids.chunks(SIZE_QUERY_CHUNK) {
            let wanted: HashSet<u32> = chunk.iter().copied().collect();
            let stream = self
                .step(t, "asking for message sizes", session.uid_fetch(cursor::uid_set(chunk), "(UID RFC822.SIZE)"))
                .await?;
            let fetched: Vec<_> = self.step(t, "reading message sizes", stream.try_collect::<Vec<_>>()).await?;
            for f in fetched {
                // Unsolicited FETCH responses (flag changes by other clients) carry no size.
                if let (Some(uid), Some(size)) = (f.uid, f.size)
                    && wanted.contains(&uid)
                {
                    out.push((uid, u64::from(size)));
                }
            }
        }
        out.sort_unstable();
        out.dedup_by_key(|(uid, _)| *uid);
        // A UID the server gave no size for is still fetched (size unknown, so 0): whether it
        // exists is settled by the body fetch, never by skipping it.
        let sized: HashSet<u32> = out.iter().map(|(u, _)| *u).collect();
        out.extend(uids.iter().filter(|u| !sized.contains(u)).map(|u| (*u, 0)));
        out.sort_unstable();
        Ok(out)
    }

    fn origin(&self, uidvalidity: u32, uid: u32) -> Origin {
        Origin {
            source: self.cfg.name.clone(),
            kind: SourceKind::Imap,
            mailbox: Some(self.cfg.mailbox.clone()),
            uidvalidity: Some(uidvalidity),
            uid: Some(uid),
            file_key: None,
            post_action_pending: self.cfg.after_commit != AfterCommit::Leave,
        }
    }

    /// Fetches whole messages, parsing each as it arrives (as many at once as there are
    /// cores), then stores them all in one transaction, in UID order, and hands them to a
    /// reading task (after the previous batch's has ended). Stops receiving on shutdown: what
    /// arrived is stored, the rest is fetched next time.
    async fn fetch_bodies(
        &self,
        session: &mut ImapSession,
        uidvalidity: u32,
        uids: &[u32],
        sizes: &[(u32, u64)],
        shutdown: &CancellationToken,
        report: &mut SourceReport,
    ) -> Result<(Fetched, ToRead), ImapError> {
        let wanted: HashSet<u32> = uids.iter().copied().collect();
        let largest = sizes.iter().filter(|(u, _)| wanted.contains(u)).map(|(_, s)| *s).max().unwrap_or(0);
        // Time for one message to arrive: the step limit plus its size at a slow link's rate.
        let per_message = self.cfg.timeout + Duration::from_secs(largest / SLOWEST_RATE_BYTES_PER_SEC);
        let mut committed: HashSet<u32> = HashSet::with_capacity(uids.len());
        let parallel = self.ingestor.parallel();
        let mut parsing: VecDeque<(u32, Receiving)> = VecDeque::with_capacity(parallel);
        let mut received: Vec<(u32, Received)> = Vec::with_capacity(uids.len());
        {
            let mut stream = self
                .step(
                    self.cfg.timeout,
                    "asking for messages",
                    session.uid_fetch(cursor::uid_set(uids), "(UID INTERNALDATE BODY.PEEK[])"),
                )
                .await?;
            while let Some(fetch) = self.step(per_message, "receiving messages", stream.try_next()).await? {
                let Some(uid) = fetch.uid.filter(|u| wanted.contains(u)) else {
                    continue; // an unsolicited FETCH (another client changed flags)
                };
                let Some(body) = fetch.body() else {
                    continue; // a flags-only update for a UID we asked for
                };
                let internal_date = fetch.internal_date().map(|d| d.to_rfc3339());
                let origin = self.origin(uidvalidity, uid);
                let max = self.ingestor.limits().max_message_size;
                // The size asked before is the server's word, and a UID it gave none for was
                // fetched whole: what arrived is checked again (R31).
                if body.len() as u64 > max {
                    let header = header_section(body, 1 << 20).to_vec();
                    let size = body.len() as u64;
                    self.keep_header_only(uid, header, size, origin, internal_date, report).await?;
                    committed.insert(uid);
                } else {
                    let raw = body.to_vec();
                    drop(fetch);
                    // At most `parallel` parsed at once: the oldest is waited for first.
                    if parsing.len() >= parallel
                        && let Some((uid, oldest)) = parsing.pop_front()
                    {
                        self.hb.busy_for(self.ingestor.message_limit());
                        received.push((uid, self.ingestor.finish_receive(oldest).await));
                    }
                    parsing.push_back((uid, self.ingestor.start_receive(raw, origin, internal_date)));
                }
                if shutdown.is_cancelled() {
                    break; // the connection is dropped with the rest of the answer unread
                }
            }
        }
        for (uid, receiving) in parsing {
            // Each parse is bounded by the stage limit: a bounded wait for the watchdog.
            self.hb.busy_for(self.ingestor.message_limit());
            received.push((uid, self.ingestor.finish_receive(receiving).await));
        }
        let to_read = self.store_received(received, &mut committed, report).await?;
        let missing: Vec<u32> = uids.iter().copied().filter(|u| !committed.contains(u)).collect();
        if shutdown.is_cancelled() {
            return Ok((Fetched::new(committed, missing.first().copied()), to_read));
        }
        let stopped_at = self.first_still_present(session, &missing).await?;
        Ok((Fetched::new(committed, stopped_at), to_read))
    }

    /// Stores the received messages of a batch in one transaction; returns the new ones, to
    /// be read.
    async fn store_received(
        &self,
        received: Vec<(u32, Received)>,
        committed: &mut HashSet<u32>,
        report: &mut SourceReport,
    ) -> Result<ToRead, ImapError> {
        if received.is_empty() {
            return Ok(ToRead::default());
        }
        let mut batch_uids = Vec::with_capacity(received.len());
        let mut batch = Vec::with_capacity(received.len());
        for (uid, r) in received {
            batch_uids.push((uid, r.size() as u64));
            batch.push(r);
        }
        self.hb.busy_for(self.ingestor.message_limit());
        let (accepted, to_read) = self.ingestor.store(batch).await?;
        self.hb.beat();
        for ((uid, size), a) in batch_uids.into_iter().zip(&accepted) {
            self.counted(report, a.new, size);
            committed.insert(uid);
        }
        Ok(to_read)
    }

    /// Fetches one large message in parts of at most [`FETCH_PART`] bytes (RFC 3501 §6.4.5,
    /// `BODY.PEEK[]<origin.octets>`) into one buffer, then stores it and hands it to reading.
    /// Fetched whole, it would sit in the client's response buffer and again in the copy taken
    /// from it: twice the message in memory instead of once and a part.
    async fn fetch_in_parts(
        &self,
        session: &mut ImapSession,
        uidvalidity: u32,
        uid: u32,
        size: u64,
        shutdown: &CancellationToken,
        report: &mut SourceReport,
    ) -> Result<(Fetched, ToRead), ImapError> {
        let max = self.ingestor.limits().max_message_size;
        // No part larger than half a batch: a part is what the client buffers at once.
        let part_size = usize::try_from(self.ingestor.limits().fetch_batch_size / 2)
            .unwrap_or(FETCH_PART)
            .clamp(64 << 10, FETCH_PART);
        let mut raw: Vec<u8> = Vec::new();
        let mut internal_date = None;
        loop {
            let offset = raw.len();
            let items = if offset == 0 {
                format!("(UID INTERNALDATE BODY.PEEK[]<0.{part_size}>)")
            } else {
                format!("(UID BODY.PEEK[]<{offset}.{part_size}>)")
            };
            let limit = self.cfg.timeout + Duration::from_secs(part_size as u64 / SLOWEST_RATE_BYTES_PER_SEC);
            let stream = self
                .step(self.cfg.timeout, "asking for a part of a message", session.uid_fetch(uid.to_string(), &items))
                .await?;
            let fetched: Vec<_> =
                self.step(limit, "receiving a part of a message", stream.try_collect::<Vec<_>>()).await?;
            let Some(fetch) = fetched.iter().find(|f| f.uid == Some(uid) && f.body().is_some()) else {
                if offset == 0 {
                    // Expunged meanwhile, or not delivered: settled as for a whole fetch.
                    let stopped_at = self.first_still_present(session, &[uid]).await?;
                    return Ok((Fetched::new(HashSet::new(), stopped_at), ToRead::default()));
                }
                break; // past the end (a server may answer nothing there)
            };
            if offset == 0 {
                internal_date = fetch.internal_date().map(|d| d.to_rfc3339());
            }
            let part = fetch.body().unwrap_or_default();
            if part.len() > part_size {
                // It ignored the range: the parts would repeat the message.
                return Err(ImapError::Server(format!(
                    "the server answered {} bytes to a request for at most {part_size} (BODY.PEEK[]<{offset}.{part_size}>)",
                    part.len()
                )));
            }
            raw.extend_from_slice(part);
            if part.len() < part_size || raw.len() as u64 > max {
                break;
            }
        }
        if (raw.len() as u64) < size {
            // Short of its RFC822.SIZE: expunged between two parts (Dovecot then answers
            // nothing), or a server whose size is wrong. Never stored cut short: if it is still
            // there, it is fetched whole, as any other message.
            drop(raw);
            if self.first_still_present(session, &[uid]).await?.is_none() {
                return Ok((Fetched::new(HashSet::new(), None), ToRead::default()));
            }
            tracing::warn!(
                source = self.name(),
                uid,
                size,
                "a message fetched in parts came short of its size; fetching it whole"
            );
            return self.fetch_bodies(session, uidvalidity, &[uid], &[(uid, size)], shutdown, report).await;
        }
        let origin = self.origin(uidvalidity, uid);
        if raw.len() as u64 > max {
            // Larger than RFC822.SIZE said (R31): only its header section is kept.
            let header = header_section(&raw, 1 << 20).to_vec();
            let size = raw.len() as u64;
            drop(raw);
            self.keep_header_only(uid, header, size, origin, internal_date, report).await?;
            return Ok((Fetched::new(HashSet::from([uid]), None), ToRead::default()));
        }
        let received = self.ingestor.receive(raw, origin, internal_date).await;
        let mut committed = HashSet::new();
        let to_read = self.store_received(vec![(uid, received)], &mut committed, report).await?;
        Ok((Fetched::new(committed, None), to_read))
    }

    /// Keeps only the header section of an oversized message (R31): no body bytes are fetched.
    async fn fetch_oversized(
        &self,
        session: &mut ImapSession,
        uidvalidity: u32,
        uid: u32,
        size: u64,
        report: &mut SourceReport,
    ) -> Result<Fetched, ImapError> {
        let t = self.cfg.timeout;
        let stream = self
            .step(t, "asking for a header", session.uid_fetch(uid.to_string(), "(UID INTERNALDATE BODY.PEEK[HEADER])"))
            .await?;
        let fetched: Vec<_> = self.step(t, "receiving a header", stream.try_collect::<Vec<_>>()).await?;
        let Some(fetch) = fetched.into_iter().find(|f| f.uid == Some(uid) && f.header().is_some()) else {
            let stopped_at = self.first_still_present(session, &[uid]).await?;
            return Ok(Fetched::new(HashSet::new(), stopped_at));
        };
        let header = fetch.header().map(|h| header_section(h, 1 << 20).to_vec()).unwrap_or_default();
        let internal_date = fetch.internal_date().map(|d| d.to_rfc3339());
        self.keep_header_only(uid, header, size, self.origin(uidvalidity, uid), internal_date, report).await?;
        Ok(Fetched::new(HashSet::from([uid]), None))
    }

    /// [`Self::post_action`], except that a server that refuses (NO: over quota, no right to
    /// the folder) does not stop ingestion: the action stays owed, the error is recorded for
    /// the operator, and it is tried again at the next sync (reliability case R16).
    async fn post_action_or_defer(
        &mut self,
        session: &mut ImapSession,
        caps: ServerCaps,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<(), ImapError> {
        match self.post_action(session, caps, uidvalidity, uids).await {
            Err(e @ ImapError::Protocol { source: async_imap::error::Error::No(_), .. }) => {
                tracing::warn!(source = self.name(), error = %e, "server refused the post-processing; it stays owed");
                self.deferred_this_sync = true;
                let (name, mb, text) = (self.cfg.name.clone(), self.cfg.mailbox.clone(), e.to_string());
                self.ingestor.db().call(move |s| s.poll_error(&name, &mb, &text)).await?;
                Ok(())
            }
            other => other,
        }
    }

    /// Moves or flags committed messages, as configured, and records that it was done.
    async fn post_action(
        &mut self,
        session: &mut ImapSession,
        caps: ServerCaps,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<(), ImapError> {
        if uids.is_empty() || self.cfg.after_commit == AfterCommit::Leave {
            return Ok(());
        }
        let t = self.cfg.timeout;
        let set = cursor::uid_set(uids);
        match &self.cfg.after_commit {
            AfterCommit::Leave => {}
            AfterCommit::Seen => {
                add_flag(&self.hb, session, t, &set, "\\Seen", "setting \\Seen").await?;
            }
            AfterCommit::Move(folder) if caps.mv => {
                // RFC 6851 MOVE: atomic, and leaves no \Deleted message behind.
                self.step(t, "moving messages", session.uid_mv(&set, folder)).await?;
            }
            AfterCommit::Move(folder) => {
                // COPY is not idempotent: messages copied before a crash are not copied again.
                let (name, mb, asked) = (self.cfg.name.clone(), self.cfg.mailbox.clone(), uids.to_vec());
                let copied = self.ingestor.db().call(move |s| s.copied_uids(&name, &mb, uidvalidity, &asked)).await?;
                let to_copy: Vec<u32> = uids.iter().copied().filter(|u| !copied.contains(u)).collect();
                if !to_copy.is_empty() {
                    self.step(t, "copying messages", session.uid_copy(cursor::uid_set(&to_copy), folder)).await?;
                    let (name, mb) = (self.cfg.name.clone(), self.cfg.mailbox.clone());
                    self.ingestor
                        .db()
                        .call(move |s| s.set_post_action(&name, &mb, uidvalidity, &to_copy, PostAction::Copied))
                        .await?;
                }
                if caps.uidplus {
                    // RFC 4315 §2.1: UID EXPUNGE removes only these UIDs. A bare EXPUNGE would
                    // also remove what other clients marked \Deleted (R19).
                    add_flag(&self.hb, session, t, &set, "\\Deleted", "marking copied messages deleted").await?;
                    let s = self.step(t, "expunging moved messages", session.uid_expunge(&set)).await?;
                    self.step(t, "expunging moved messages", s.try_collect::<Vec<_>>()).await?;
                } else {
                    if !self.warned_no_expunge {
                        tracing::warn!(
                            source = self.name(),
                            "the server has neither MOVE nor UIDPLUS: messages are copied and marked \\Seen, not removed"
                        );
                        self.warned_no_expunge = true;
                    }
                    add_flag(&self.hb, session, t, &set, "\\Seen", "setting \\Seen").await?;
                }
            }
        }
        let (name, mb, done) = (self.cfg.name.clone(), self.cfg.mailbox.clone(), uids.to_vec());
        self.ingestor.db().call(move |s| s.set_post_action(&name, &mb, uidvalidity, &done, PostAction::Done)).await?;
        Ok(())
    }

    /// Waits in IDLE (RFC 2177) until the server reports a change, the refresh interval ends
    /// (IDLE is re-issued well before the 29-minute limit of §3), or shutdown. Returns the
    /// session, or `None` on shutdown.
    async fn idle(&self, session: ImapSession, shutdown: &CancellationToken) -> Result<Option<ImapSession>, ImapError> {
        let t = self.cfg.timeout;
        let mut handle = session.idle();
        self.step(t, "starting IDLE", handle.init()).await?;
        let stop = {
            let (wait, stop) = handle.wait_with_timeout(IDLE_SILENCE_LIMIT);
            tokio::select! {
                r = wait => match r {
                    Ok(IdleResponse::NewData(_)) => tracing::debug!(source = self.name(), "IDLE: the mailbox changed"),
                    Ok(IdleResponse::Timeout) => tracing::debug!(source = self.name(), "IDLE: silent for too long; checking"),
                    Ok(IdleResponse::ManualInterrupt) => {}
                    Err(e) => return Err(ImapError::Protocol { step: "waiting in IDLE", source: e }),
                },
                _ = tokio::time::sleep(self.cfg.idle_refresh) => {}
                _ = shutdown.cancelled() => {}
                // The wait is bounded (the silence limit, the refresh), so the loop is alive.
                never = self.hb.keep_beating() => match never {},
            }
            stop
        };
        drop(stop);
        let session = self.step(t, "ending IDLE", handle.done()).await?;
        if shutdown.is_cancelled() {
            let mut session = session;
            let _ = tokio::time::timeout(t, session.logout()).await;
            return Ok(None);
        }
        Ok(Some(session))
    }
}

/// The TLS settings for a mailbox (`None` without TLS).
fn tls_config(cfg: &ImapConfig) -> Result<Option<Arc<rustls::ClientConfig>>, ImapError> {
    Ok(match cfg.tls {
        TlsMode::None => None,
        TlsMode::Implicit | TlsMode::StartTls => {
            Some(crate::tls::client_config(cfg.ca_file.as_deref()).map_err(ImapError::TlsConfig)?)
        }
    })
}

/// Connects to the server of `cfg`, protects the connection as configured and logs in.
async fn connect(cfg: &ImapConfig, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<ImapSession, ImapError> {
    let t = cfg.timeout;
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let tcp = match tokio::time::timeout(t, TcpStream::connect((cfg.host.as_str(), cfg.port))).await {
        Err(_) => return Err(ImapError::Timeout { step: "connecting", limit: t }),
        Ok(Err(source)) => return Err(ImapError::Connect { addr, source }),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn ImapIo> = match (cfg.tls, tls) {
        (TlsMode::Implicit, Some(tls)) => Box::new(handshake(cfg, tls.clone(), tcp).await?),
        (TlsMode::StartTls, Some(tls)) => {
            // RFC 3501 §6.2.1: STARTTLS before LOGIN; if it is refused we stop (no fallback
            // to clear text, R05).
            let mut plain = Client::new(tcp);
            greeting(&mut plain, t).await?;
            match step(t, "asking for STARTTLS", plain.run_command_and_check_ok("STARTTLS", None)).await {
                Ok(()) => {}
                Err(ImapError::Protocol { source, .. }) => {
                    return Err(ImapError::StartTlsRefused { host: cfg.host.clone(), detail: source.to_string() });
                }
                Err(e) => return Err(e),
            }
            Box::new(handshake(cfg, tls.clone(), plain.into_inner()).await?)
        }
        _ => Box::new(tcp),
    };
    let mut client = Client::new(stream);
    if cfg.tls != TlsMode::StartTls {
        greeting(&mut client, t).await?;
    }
    match tokio::time::timeout(t, client.login(&cfg.username, cfg.password.expose())).await {
        Err(_) => Err(ImapError::Timeout { step: "logging in", limit: t }),
        Ok(Err((async_imap::error::Error::No(detail), _))) => {
            Err(ImapError::Auth { user: cfg.username.clone(), detail })
        }
        Ok(Err((source, _))) => Err(ImapError::Protocol { step: "logging in", source }),
        Ok(Ok(session)) => Ok(session),
    }
}

async fn handshake(
    cfg: &ImapConfig,
    tls: Arc<rustls::ClientConfig>,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let host = cfg.host.trim_start_matches('[').trim_end_matches(']').to_string();
    let server_name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| ImapError::TlsConfig(format!("`{host}` is not a valid TLS server name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    match tokio::time::timeout(cfg.timeout, connector.connect(server_name, tcp)).await {
        Err(_) => Err(ImapError::Timeout { step: "the TLS handshake", limit: cfg.timeout }),
        Ok(Err(source)) => Err(ImapError::Tls { host, source }),
        Ok(Ok(s)) => Ok(s),
    }
}

/// The step name of EXAMINE in [`probe`]: a NO there means the mailbox does not exist (or may
/// not be read).
pub const EXAMINE_STEP: &str = "examining the mailbox";

/// What [`probe`] found in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxProbe {
    /// Messages in the mailbox (EXISTS).
    pub messages: u32,
    /// Whether the connection is encrypted.
    pub tls: bool,
    /// The INTERNALDATE of the last message (the most recently arrived), when there is one.
    pub newest_internal_date: Option<jiff::Timestamp>,
}

/// Checks a mailbox as the daemon would reach it, changing nothing: connect, TLS, LOGIN (the
/// same code as the source), EXAMINE (RFC 3501 §6.3.2: read-only, so not even `\Recent`
/// changes), the INTERNALDATE of the last message (`FETCH n (INTERNALDATE)`), LOGOUT.
pub async fn probe(cfg: &ImapConfig) -> Result<MailboxProbe, ImapError> {
    let tls = tls_config(cfg)?;
    let t = cfg.timeout;
    let mut session = connect(cfg, tls.as_ref()).await?;
    let mailbox = step(t, EXAMINE_STEP, session.examine(&cfg.mailbox)).await?;
    let mut newest = None;
    if mailbox.exists > 0 {
        let stream =
            step(t, "asking for the newest arrival time", session.fetch(mailbox.exists.to_string(), "(INTERNALDATE)"))
                .await?;
        let fetched: Vec<_> = step(t, "reading the newest arrival time", stream.try_collect::<Vec<_>>()).await?;
        newest = fetched
            .iter()
            .filter_map(|f| f.internal_date())
            .filter_map(|d| jiff::Timestamp::from_second(d.timestamp()).ok())
            .max();
    }
    let _ = tokio::time::timeout(t, session.logout()).await;
    Ok(MailboxProbe { messages: mailbox.exists, tls: cfg.tls != TlsMode::None, newest_internal_date: newest })
}

/// `UID STORE set +FLAGS.SILENT (flag)`, with its responses drained (RFC 3501 §6.4.6).
async fn add_flag(
    hb: &Heartbeat,
    session: &mut ImapSession,
    limit: Duration,
    set: &str,
    flag: &str,
    what: &'static str,
) -> Result<(), ImapError> {
    hb.busy_for(limit.saturating_mul(2));
    let responses = step(limit, what, session.uid_store(set, format!("+FLAGS.SILENT ({flag})"))).await?;
    step(limit, what, responses.try_collect::<Vec<_>>()).await?;
    hb.beat();
    Ok(())
}

/// Drains the unsolicited responses and says whether any announced new mail.
fn mailbox_changed_meanwhile(session: &ImapSession) -> bool {
    use async_imap::types::UnsolicitedResponse;
    let mut changed = false;
    while let Ok(r) = session.unsolicited_responses.try_recv() {
        changed |= matches!(r, UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_));
    }
    changed
}

/// Reads the server greeting (RFC 3501 §7.1): OK or PREAUTH go on; BYE or nothing is an error.
async fn greeting<T: ImapIo>(client: &mut Client<T>, limit: Duration) -> Result<(), ImapError> {
    use async_imap::imap_proto::{Response, Status};
    let response = step(limit, "waiting for the server greeting", client.read_response()).await?;
    match response.as_ref().map(|r| r.parsed()) {
        None => Err(ImapError::Closed("waiting for the server greeting")),
        Some(Response::Data { status: Status::Bye, .. }) => {
            Err(ImapError::Server("the server greeted with BYE (refusing connections)".into()))
        }
        Some(_) => Ok(()),
    }
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_resets() {
        let mut b = Backoff::default();
        let first = b.next_delay(true);
        assert!(first >= Duration::from_millis(750) && first <= Duration::from_millis(1250), "{first:?}");
        for _ in 0..20 {
            b.next_delay(true);
        }
        let capped = b.next_delay(true);
        assert!(capped <= Duration::from_secs(375), "{capped:?}");
        b.reset();
        assert!(b.next_delay(true) <= Duration::from_millis(1250));
        let refused = Backoff::default().next_delay(false);
        assert!(refused >= Duration::from_secs(225), "a refused login waits minutes: {refused:?}");
    }
}
