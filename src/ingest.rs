//! The one path every message takes, whatever its source: parse it (once), store the raw bytes
//! (committed), read it, then judge it and record the outcome (committed).
//!
//! Sources (IMAP, Maildir, stdin) call [`Ingestor::ingest`] and change nothing on their side
//! until it has returned: by then the message is durable. mail-parser reads each message
//! exactly once ([`Parsed::new`]), before it is stored (the Message-ID is stored with the
//! bytes); what it gives is kept, and the bytes are dropped once committed. Parsing and reading
//! run on the blocking pool under one time limit and `catch_unwind`, so a message that makes a
//! stage panic or hang is stored all the same, quarantined, and the next one goes on.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use std::time::Instant;

use futures_util::StreamExt;
use liaisond_core::parse::{Parsed, header_section};
use liaisond_model::{Arrival, History, Origin, Outcome, Reading, Summary, Verdict, sha256_hex, timestamp_text};
use liaisond_store::{Accepted, MAX_PROCESSING_ATTEMPTS, StoreError};

use crate::config::Limits;
use crate::daemon::progress::Progress;
use crate::daemon::service::Heartbeat;
use crate::db::Db;
use crate::reader::{Reader, ReaderHandle, ToJudge};

/// Time allowed for the database work around one message's pipeline (storing, recording,
/// each waiting at most the busy timeout for the write lock), on top of the stage limit, when
/// a source tells its heartbeat how long the message may take.
const DATABASE_ALLOWANCE: Duration = Duration::from_secs(120);

/// At most this much of a message is read for its Message-ID when the whole could not be parsed.
const HEADER_LIMIT: usize = 1 << 20;

/// How long a stored message may stay `pending` before the background sweep picks it up:
/// normally the source that stored it processes it within milliseconds, but a slow one may
/// take up to the stage limit, and must not be read a second time meanwhile. (A message whose
/// fetch batch is still being read is skipped however long that takes: `Ingestor::in_flight`.)
pub fn pending_grace(limits: &Limits) -> Duration {
    (limits.stage_timeout * 2).max(Duration::from_secs(60))
}

/// What happened to one incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: Accepted,
    /// The outcome recorded now; `None` for a message that was already stored.
    pub outcome: Option<Outcome>,
}

#[derive(Clone, Debug)]
pub struct Ingestor {
    db: Db,
    limits: Limits,
    /// Reads statements; `None` when it could not be set up (`liaisond ingest` with unreadable
    /// relationships data): messages are then stored and left pending for the daemon. A
    /// handle, so that a reload (SIGHUP) swaps it for every source at once; each message
    /// takes the current reader once and keeps it until it is recorded.
    reader: Option<ReaderHandle>,
    /// Told when a message was recorded (it may have queued mail to send).
    outbox_waker: Option<Arc<tokio::sync::Notify>>,
    /// Where the sources count a sync's progress.
    progress: Progress,
    /// How many messages are parsed or read at once: the cores (at most 4; std reads the
    /// cgroup's quota for it, so once).
    parallel: usize,
    /// Messages stored and being read by a batch (shared by every clone): the pending sweep
    /// leaves them alone, however long their batch takes.
    in_flight: Arc<std::sync::Mutex<HashSet<i64>>>,
    /// The heartbeat of the loop this clone works for (each source has its own clone): a
    /// message in the pipeline counts as a bounded wait.
    heartbeat: Heartbeat,
}

impl Ingestor {
    pub fn new(db: Db, limits: Limits, reader: Option<ReaderHandle>) -> Ingestor {
        Ingestor {
            db,
            limits,
            reader,
            outbox_waker: None,
            progress: Progress::default(),
            parallel: std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4),
            in_flight: Arc::default(),
            heartbeat: Heartbeat::detached(),
        }
    }

    /// The sources count their syncs' progress in `progress`.
    pub fn with_progress(mut self, progress: Progress) -> Ingestor {
        self.progress = progress;
        self
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// How many messages are parsed or read at once.
    pub fn parallel(&self) -> usize {
        self.parallel
    }

    /// This clone beats `heartbeat` (its loop's) while it handles a message.
    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Ingestor {
        self.heartbeat = heartbeat;
        self
    }

    /// The heartbeat of the loop this clone works for (detached when none was given).
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// The reader handle (to reload it, or to read the current relationships data and
    /// templates).
    pub fn reader_handle(&self) -> Option<&ReaderHandle> {
        self.reader.as_ref()
    }

    /// The longest one message may take from storing to recording: the stage limit plus the
    /// database work.
    pub fn message_limit(&self) -> Duration {
        self.limits.stage_timeout + DATABASE_ALLOWANCE
    }

    /// The longest [`Ingestor::read`] of `messages` may take: each under the stage limit, as
    /// many at once as there are cores, plus the database work.
    pub fn read_limit(&self, messages: usize) -> Duration {
        let rounds = messages.div_ceil(self.parallel).max(1) as u32;
        self.limits.stage_timeout * rounds + DATABASE_ALLOWANCE
    }

    /// Wakes the sender task after each recorded message.
    pub fn with_outbox_waker(mut self, waker: Arc<tokio::sync::Notify>) -> Ingestor {
        self.outbox_waker = Some(waker);
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Stores a complete message, then processes it if it is new. Only a failure to *store*
    /// is an error; a failure to record the outcome leaves the message `pending` for the
    /// background sweep.
    pub async fn ingest(
        &self,
        raw: Vec<u8>,
        origin: Origin,
        internal_date: Option<String>,
    ) -> Result<Ingested, StoreError> {
        self.heartbeat.busy_for(self.message_limit());
        let result = self.ingest_complete(raw, origin, internal_date).await;
        self.heartbeat.beat();
        result
    }

    async fn ingest_complete(
        &self,
        raw: Vec<u8>,
        origin: Origin,
        internal_date: Option<String>,
    ) -> Result<Ingested, StoreError> {
        let received = self.receive(raw, origin, internal_date).await;
        let (mut accepted, to_read) = self.store(vec![received]).await?;
        let outcome = self.read(to_read).await.pop().flatten();
        // `store` answers one `Accepted` for each message given (or an error).
        let accepted = accepted.pop().expect("one Accepted per stored message");
        Ok(Ingested { accepted, outcome })
    }

    /// Parses a complete message on the blocking pool under the stage limit, before it is
    /// stored (by [`Ingestor::store`]).
    pub async fn receive(&self, raw: Vec<u8>, origin: Origin, internal_date: Option<String>) -> Received {
        let receiving = self.start_receive(raw, origin, internal_date);
        self.finish_receive(receiving).await
    }

    /// Starts parsing a message on the blocking pool at once (a source starts several while
    /// the rest of a batch arrives); [`Ingestor::finish_receive`] waits for it.
    pub fn start_receive(&self, raw: Vec<u8>, origin: Origin, internal_date: Option<String>) -> Receiving {
        let raw = Arc::new(raw);
        let shared = Arc::clone(&raw);
        let task = start_bounded(move || (sha256_hex(&shared), Box::new(Parsed::new(&shared))));
        Receiving { raw, origin, internal_date, started: Instant::now(), task }
    }

    /// Waits for a parse started by [`Ingestor::start_receive`], within the stage limit.
    pub async fn finish_receive(&self, receiving: Receiving) -> Received {
        let Receiving { raw, origin, internal_date, started, task } = receiving;
        let limit = self.limits.stage_timeout;
        let parsed = if limit.is_zero() {
            Err(overrun(limit))
        } else {
            finish_bounded(task, limit, limit.saturating_sub(started.elapsed()).max(Duration::from_millis(1))).await
        };
        let (arrival, parsed, spent) = self.parsed_arrival(raw, origin, internal_date, parsed, started.elapsed()).await;
        Received { arrival, parsed, spent }
    }

    /// Stores received messages, in order, in one transaction (one sync of the log for the
    /// whole fetch batch): once this returns, every one is durable and its source may act on
    /// it. Returns what each became, and the new ones, to be read by [`Ingestor::read`]. The
    /// message bytes are dropped here; only what was parsed of them is kept.
    pub async fn store(&self, received: Vec<Received>) -> Result<(Vec<Accepted>, ToRead), StoreError> {
        let mut arrivals = Vec::with_capacity(received.len());
        let mut parsed = Vec::with_capacity(received.len());
        for r in received {
            arrivals.push(r.arrival);
            parsed.push((r.parsed, r.spent));
        }
        let (accepted, seen) = self
            .db
            .call(move |s| {
                let accepted = s.batch(|s| arrivals.iter().map(|a| s.accept(a)).collect::<Result<Vec<_>, _>>())?;
                let seen: Vec<Seen> = arrivals.into_iter().map(|a| Seen::from(&a.origin, a.message_id)).collect();
                Ok((accepted, seen))
            })
            .await?;
        let mut unread = Vec::new();
        for ((a, seen), (parsed, spent)) in accepted.iter().zip(seen).zip(parsed) {
            if a.new {
                let in_flight = InFlight::mark(&self.in_flight, a.id);
                unread.push(Unread { id: a.id, seen, parsed, spent, in_flight });
            } else {
                tracing::debug!(
                    id = a.id,
                    source = seen.source,
                    mailbox = seen.mailbox,
                    uid = seen.uid,
                    "already stored"
                );
            }
        }
        Ok((accepted, ToRead { unread }))
    }

    /// Reads stored messages (as many at once as there are cores, each under the stage limit)
    /// and records their outcomes in order, in one transaction: the outcome of each, `None`
    /// where none was recorded (no reader, or the write failed: it stays `pending` for the
    /// sweep). In order, so that a reply read in the same batch as its statement finds it.
    pub async fn read(&self, to_read: ToRead) -> Vec<Option<Outcome>> {
        let count = to_read.unread.len();
        // One reader for the whole batch: a reload meanwhile applies to the next one.
        let Some(reader) = self.reader.as_ref().map(ReaderHandle::current) else {
            return vec![None; count];
        };
        let limit = self.limits.stage_timeout;
        // Released once recorded, or when this reading is given up (dropped).
        let mut in_flight = Vec::with_capacity(count);
        let unread: Vec<_> = to_read
            .unread
            .into_iter()
            .map(|u| {
                in_flight.push(u.in_flight);
                (u.id, u.seen, u.parsed, u.spent)
            })
            .collect();
        let decided: Vec<(i64, Seen, Decision)> = futures_util::stream::iter(unread)
            .map(|(id, seen, parsed, spent)| {
                let r = reader.clone();
                async move {
                    let decision = match parsed {
                        // Parsing and reading share the stage limit; waiting for the database
                        // does not count.
                        Ok(parsed) => {
                            bounded(limit, limit.saturating_sub(spent), move || decide(*parsed, &r, spent, limit))
                                .await
                                .unwrap_or_else(|q| q)
                        }
                        Err(quarantined) => quarantined,
                    };
                    (id, seen, decision)
                }
            })
            .buffered(self.parallel)
            .collect()
            .await;
        let outcomes = self.record_all(decided, Some(reader)).await;
        drop(in_flight);
        outcomes
    }

    /// The arrival to store (with its Message-ID) from a finished parse, and what was parsed
    /// or the decision that quarantines it (a parser panic or overrun must not stop the message
    /// from being stored: it would be fetched and fail again forever).
    async fn parsed_arrival(
        &self,
        raw: Arc<Vec<u8>>,
        origin: Origin,
        internal_date: Option<String>,
        parsed: Result<(String, Box<Parsed>), Decision>,
        spent: Duration,
    ) -> (Arrival, Result<Box<Parsed>, Decision>, Duration) {
        // The blocking thread holds its copy only when it overran (it cannot be stopped).
        let raw = Arc::try_unwrap(raw).unwrap_or_else(|shared| shared.as_ref().clone());
        let (raw, sha256, message_id, parsed) = match parsed {
            Ok((sha256, parsed)) => (raw, sha256, parsed.message_id.clone(), Ok(parsed)),
            Err(quarantined) => {
                // The Message-ID from the header section alone, so that the stored message can
                // still be found by it (duplicates, replies) once it is processed again.
                let hashed = tokio::task::spawn_blocking(move || {
                    let message_id = message_id_safely(header_section(&raw, HEADER_LIMIT));
                    (sha256_hex(&raw), message_id, raw)
                })
                .await;
                let (sha256, message_id, raw) = match hashed {
                    Ok(h) => h,
                    Err(join) => std::panic::resume_unwind(join.into_panic()),
                };
                (raw, sha256, message_id, Err(quarantined))
            }
        };
        (Arrival { raw, sha256, message_id, raw_complete: true, internal_date, origin }, parsed, spent)
    }

    /// Stores the header section of a message that is over `max_message_size` and quarantines
    /// it at once: the body was never fetched (R31), so nothing more can be done with it.
    pub async fn ingest_oversized(
        &self,
        header: Vec<u8>,
        size: u64,
        origin: Origin,
        internal_date: Option<String>,
    ) -> Result<Ingested, StoreError> {
        let limit = self.limits.max_message_size;
        let incoming = Arrival {
            sha256: sha256_hex(&header),
            message_id: message_id_safely(&header),
            raw: header,
            raw_complete: false,
            internal_date,
            origin,
        };
        let seen = Seen::from(&incoming.origin, incoming.message_id.clone());
        self.heartbeat.busy_for(self.message_limit());
        let accepted = self.db.call(move |s| s.accept(&incoming)).await?;
        if !accepted.new {
            return Ok(Ingested { accepted, outcome: None });
        }
        let decision = quarantine(format!(
            "oversized: the message is {size} bytes, over the limit of {limit}; only its header section was kept"
        ));
        let outcome = self.record_all(vec![(accepted.id, seen, decision)], None).await.into_iter().next().flatten();
        self.heartbeat.beat();
        Ok(Ingested { accepted, outcome })
    }

    /// Records outcomes in order, in one transaction (each message a savepoint of it); judged
    /// inside it (see `Store::record_judged`): the history each is judged against cannot
    /// change in between, so two copies of one statement cannot both become statements. A
    /// message whose outcome could not be written is logged and stays `pending`, to be decided
    /// again by the sweep (the decision is a pure function of the stored bytes).
    async fn record_all(
        &self,
        decided: Vec<(i64, Seen, Decision)>,
        reader: Option<Arc<Reader>>,
    ) -> Vec<Option<Outcome>> {
        if decided.is_empty() {
            return Vec::new();
        }
        let count = decided.len();
        let mut seen_list = Vec::with_capacity(count);
        let mut outcomes = Vec::with_capacity(count);
        let mut work = Vec::with_capacity(count);
        for (id, seen, Decision { outcome, summary, reading, to_judge }) in decided {
            seen_list.push((id, seen));
            outcomes.push(outcome.clone());
            work.push((id, outcome, summary, reading, to_judge));
        }
        let recorded = self
            .db
            .call(move |s| {
                s.batch(|s| {
                    Ok(work
                        .iter()
                        .map(|(id, outcome, summary, reading, to_judge)| {
                            let (judge, planner) = match (to_judge, &reader) {
                                (Some(t), Some(r)) => (Some(move |h: &dyn History| r.judge(t, h)), r.planner(t, *id)),
                                _ => (None, None),
                            };
                            s.record_judged(
                                *id,
                                outcome,
                                summary,
                                reading.as_ref(),
                                judge.as_ref().map(|f| f as liaisond_store::Judge<'_>),
                                planner.as_ref().map(|f| f as liaisond_store::Planner<'_>),
                            )
                        })
                        .collect::<Vec<_>>())
                })
            })
            .await;
        let recorded = match recorded {
            Ok(each) => each,
            Err(e) => {
                for (id, seen) in &seen_list {
                    warn_left_pending(*id, seen, &e);
                }
                return vec![None; count];
            }
        };
        let mut any = false;
        let mut result = Vec::with_capacity(count);
        for (((id, seen), outcome), recorded) in seen_list.iter().zip(outcomes).zip(recorded) {
            match recorded {
                Err(e) => {
                    warn_left_pending(*id, seen, &e);
                    result.push(None);
                }
                Ok(None) => result.push(None),
                Ok(Some(liaisond_store::Recorded { tracking_id, judged })) => {
                    any = true;
                    log_recorded(*id, seen, &outcome, tracking_id.as_deref(), judged.as_ref());
                    result.push(Some(outcome));
                }
            }
        }
        if any && let Some(waker) = &self.outbox_waker {
            waker.notify_one();
        }
        result
    }

    /// Processes messages left `pending` (by a crash, a shutdown or a failed write) that are
    /// older than `min_age`. One that was already started [`MAX_PROCESSING_ATTEMPTS`] times is
    /// quarantined instead: it probably kills the process.
    pub async fn process_pending(&self, min_age: Duration) -> Result<usize, StoreError> {
        if self.reader.is_none() {
            return Ok(0);
        }
        self.heartbeat.busy_for(self.message_limit());
        let cutoff = timestamp_text(
            jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::try_from(min_age).unwrap_or(jiff::SignedDuration::ZERO))
                .unwrap_or(jiff::Timestamp::now()),
        );
        let mut ids = self.db.call(move |s| s.pending_message_ids(Some(&cutoff))).await?;
        // A batch still reading them records them itself.
        {
            let in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            ids.retain(|id| !in_flight.contains(id));
        }
        let mut done = 0;
        for id in ids {
            if self.process_stored(id, "recovery").await.is_some() {
                done += 1;
            }
        }
        self.heartbeat.beat();
        Ok(done)
    }

    /// Processes one stored message if it is still pending: the sweep's path, and an
    /// operator's `messages reprocess` (`source` names which in the log). Returns the outcome
    /// this call recorded; `None` when the message was not pending, another process recorded
    /// it first, there is no reader, or the outcome could not be written (it stays pending).
    pub async fn process_stored(&self, id: i64, source: &str) -> Option<Outcome> {
        self.reader.as_ref()?;
        self.heartbeat.busy_for(self.message_limit());
        // A failed write (a busy database) leaves the message pending for the next sweep.
        let message = match self.db.call(move |s| s.begin_attempt(id)).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot start processing a pending message; will retry");
                return None;
            }
        };
        if message.state != "pending" {
            return None;
        }
        // The reader current now: a reload while this message is read does not change it.
        let reader = self.reader.as_ref().map(ReaderHandle::current);
        let decision = if !message.raw_complete {
            // Only the header of an oversized message was kept: there is nothing to process.
            quarantine("oversized: only its header section was kept".into())
        } else if message.attempts > MAX_PROCESSING_ATTEMPTS {
            quarantine(format!(
                "processing was started {} times and never finished (the process stopped during it)",
                message.attempts - 1
            ))
        } else {
            let r = reader.clone()?;
            let limit = self.limits.stage_timeout;
            let work = move || {
                let started = Instant::now();
                let parsed = Parsed::new(&message.raw);
                decide(parsed, &r, started.elapsed(), limit)
            };
            bounded(limit, limit, work).await.unwrap_or_else(|q| q)
        };
        let seen = Seen { source: source.into(), ..Seen::default() };
        self.record_all(vec![(id, seen, decision)], reader).await.into_iter().next().flatten()
    }
}

/// A stored message whose outcome could not be written: it stays `pending` for the sweep.
fn warn_left_pending(id: i64, seen: &Seen, e: &StoreError) {
    tracing::warn!(
        id,
        source = seen.source,
        message_id = seen.message_id,
        error = %e,
        "stored, but recording the outcome failed; it stays pending"
    );
}

/// The one line per message (quarantine is a warning). No body, only identifiers.
fn log_recorded(id: i64, seen: &Seen, outcome: &Outcome, tracking_id: Option<&str>, judged: Option<&Verdict>) {
    let class = judged.map(|j| j.class.as_str());
    let route = judged.map(|j| j.route_reason.as_str());
    let Seen { source, mailbox, uid, file, message_id } = seen;
    match outcome {
        Outcome::Processed => tracing::info!(
            id,
            source,
            mailbox,
            uid,
            file,
            message_id,
            outcome = "processed",
            class,
            tracking_id,
            route,
            "message recorded"
        ),
        Outcome::Quarantined { error } => tracing::warn!(
            id,
            source,
            mailbox,
            uid,
            file,
            message_id,
            outcome = "quarantined",
            error,
            "message recorded"
        ),
        Outcome::Ignored { reason } => {
            tracing::info!(id, source, mailbox, uid, file, message_id, outcome = "ignored", reason, "message recorded")
        }
    }
}

/// A message being parsed on the blocking pool ([`Ingestor::start_receive`]).
pub struct Receiving {
    raw: Arc<Vec<u8>>,
    origin: Origin,
    internal_date: Option<String>,
    started: Instant,
    task: Bounded<(String, Box<Parsed>)>,
}

/// A message received and parsed, not stored yet ([`Ingestor::receive`]).
pub struct Received {
    arrival: Arrival,
    parsed: Result<Box<Parsed>, Decision>,
    spent: Duration,
}

impl Received {
    /// The message's size in bytes.
    pub fn size(&self) -> usize {
        self.arrival.raw.len()
    }
}

/// Stored messages, new, to be read and recorded ([`Ingestor::read`]).
#[derive(Default)]
pub struct ToRead {
    unread: Vec<Unread>,
}

impl ToRead {
    pub fn len(&self) -> usize {
        self.unread.len()
    }

    pub fn is_empty(&self) -> bool {
        self.unread.is_empty()
    }
}

struct Unread {
    id: i64,
    seen: Seen,
    parsed: Result<Box<Parsed>, Decision>,
    spent: Duration,
    in_flight: InFlight,
}

/// A stored message being read: in the ingestor's set until dropped.
struct InFlight {
    id: i64,
    set: Arc<std::sync::Mutex<HashSet<i64>>>,
}

impl InFlight {
    fn mark(set: &Arc<std::sync::Mutex<HashSet<i64>>>, id: i64) -> InFlight {
        set.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id);
        InFlight { id, set: Arc::clone(set) }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&self.id);
    }
}

/// Where a message was seen, for its log line.
#[derive(Debug, Default)]
struct Seen {
    source: String,
    mailbox: Option<String>,
    uid: Option<u32>,
    /// The Maildir file's unique name.
    file: Option<String>,
    message_id: Option<String>,
}

impl Seen {
    fn from(origin: &Origin, message_id: Option<String>) -> Seen {
        Seen {
            source: origin.source.clone(),
            mailbox: origin.mailbox.clone(),
            uid: origin.uid,
            file: origin.file_key.clone(),
            message_id,
        }
    }
}

/// What to record about one message.
#[derive(Debug)]
struct Decision {
    outcome: Outcome,
    summary: Summary,
    /// What was read from the message (its attachments and fields), for a message that parsed.
    reading: Option<Reading>,
    /// The message as read, to be classified and routed against the store's history when the
    /// outcome is recorded.
    to_judge: Option<Box<ToJudge>>,
}

fn quarantine(error: String) -> Decision {
    Decision { outcome: Outcome::Quarantined { error }, summary: Summary::default(), reading: None, to_judge: None }
}

/// Reads a parsed message (`spent` went on it already, of the stage's `limit`): quarantined
/// when its bytes are not a message liaisond can process, else read and ready to be judged.
/// The reading stops at the stage limit, when [`bounded`] stops waiting for it.
fn decide(parsed: Parsed, reader: &Reader, spent: Duration, limit: Duration) -> Decision {
    let summary = match &parsed.header {
        Ok(header) => header.summary(),
        Err(e) => return quarantine(e.to_string()),
    };
    let analysis = reader.read_after(&parsed, spent, Some(limit));
    Decision {
        outcome: Outcome::Processed,
        summary,
        reading: Some(analysis.to_reading()),
        to_judge: Some(Box::new(ToJudge { headers: parsed.headers, analysis })),
    }
}

/// Runs `work` on the blocking pool, catching panics, for at most `left` (what remains of the
/// message's `limit`). A panic or an overrun is the decision to quarantine the message.
async fn bounded<T: Send + 'static>(
    limit: Duration,
    left: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Decision> {
    if left.is_zero() {
        return Err(overrun(limit));
    }
    finish_bounded(start_bounded(work), limit, left).await
}

/// Work started on the blocking pool under `catch_unwind` ([`start_bounded`]).
type Bounded<T> = tokio::task::JoinHandle<std::thread::Result<T>>;

/// Starts `work` on the blocking pool at once, catching panics; [`finish_bounded`] waits for it.
fn start_bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Bounded<T> {
    tokio::task::spawn_blocking(move || std::panic::catch_unwind(AssertUnwindSafe(work)))
}

/// Waits at most `left` (what remains of the message's `limit`) for started work. A panic or
/// an overrun is the decision to quarantine the message.
async fn finish_bounded<T>(task: Bounded<T>, limit: Duration, left: Duration) -> Result<T, Decision> {
    match tokio::time::timeout(left, task).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(panic))) => Err(quarantine(format!(
            "pipeline panicked: {}",
            liaisond_extract::panic_message(panic.as_ref()).unwrap_or_else(|| "(no message)".into())
        ))),
        Ok(Err(join)) => Err(quarantine(format!("pipeline task failed: {join}"))),
        // The blocking thread cannot be stopped from here, and its result is dropped. The
        // attachment parsers, known to hang, run in a child process under their own budget;
        // the reading stops itself at the same limit (`decide`: the deadline is checked in
        // its loops), and everything in it is linear in a capped input (issue 13: quadratic
        // paths kept a core busy for hours after the overrun). Parsing (mail-parser, linear
        // on every hostile shape tried for issue 13) is the one step that runs to its end.
        Err(_) => Err(overrun(limit)),
    }
}

fn overrun(limit: Duration) -> Decision {
    quarantine(format!("pipeline took longer than {}", humantime::format_duration(limit)))
}

/// The Message-ID of a header section (an oversized message's, or one whose whole parse
/// failed), read before it is stored. A parser panic here must not stop it from being stored:
/// it is stored without one.
fn message_id_safely(header: &[u8]) -> Option<String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| Parsed::new(header).message_id)).unwrap_or(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaisond_core::judge::Identity;
    use liaisond_model::Class;
    use liaisond_store::Store;

    /// An ingestor on a new database with the default limits and [`test_reader`].
    fn test_ingestor() -> (tempfile::TempDir, Ingestor) {
        let d = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&d.path().join("t.db"), Duration::from_secs(1)).expect("open");
        (d, Ingestor::new(Db::new(store), Limits::default(), Some(test_reader())))
    }

    /// A reader whose extraction program does not exist: these tests need no attachments.
    fn test_reader() -> ReaderHandle {
        let extractor = crate::isolate::Extractor::new(crate::isolate::Isolation::new("/nonexistent".into()));
        let rel = liaisond_core::relationships::Relationships::builtin();
        let identity = Identity::from_relationships(&rel);
        ReaderHandle::new(Reader::new(rel, extractor, Duration::from_secs(5), identity))
    }

    #[tokio::test]
    async fn a_message_that_keeps_killing_the_process_is_quarantined() {
        // Every start that finds it pending counts an attempt before processing it; after
        // MAX_PROCESSING_ATTEMPTS it is given up on instead of crashing the daemon forever.
        let d = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&d.path().join("a.db"), Duration::from_secs(1)).expect("open");
        let raw = b"From: a@example.org\r\nSubject: poison\r\n\r\nbody".to_vec();
        let id = store.accept(&Arrival::new(raw, Origin::stdin())).expect("accept").id;
        // Three starts that died while processing it (accept counted the first).
        for _ in 0..MAX_PROCESSING_ATTEMPTS - 1 {
            store.begin_attempt(id).expect("attempt");
        }
        let ingestor = Ingestor::new(Db::new(store), Limits::default(), Some(test_reader()));
        ingestor.process_pending(Duration::ZERO).await.expect("recover");
        let rows = ingestor.db().call(|s| s.message_overview(None)).await.expect("rows");
        assert_eq!(rows[0].state, "quarantined", "{rows:?}");
        assert!(rows[0].detail.as_deref().is_some_and(|d| d.contains("started 3 times")), "{rows:?}");
    }

    #[tokio::test]
    async fn a_message_whose_parse_overran_keeps_its_message_id() {
        // Regression (review of the one-pass parse): when the whole parse failed, the message
        // was stored without a Message-ID, so once reprocessed it could be found by none. A
        // zero stage limit makes the parse overrun every time.
        let d = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&d.path().join("o.db"), Duration::from_secs(1)).expect("open");
        let limits = Limits { stage_timeout: Duration::ZERO, ..Limits::default() };
        let ingestor = Ingestor::new(Db::new(store), limits, Some(test_reader()));
        let raw = b"From: a@example.org\r\nMessage-ID: <slow@example.org>\r\nSubject: LS\r\n\r\nbody".to_vec();
        let done = ingestor.ingest(raw, Origin::stdin(), None).await.expect("stored");
        assert!(
            matches!(&done.outcome, Some(Outcome::Quarantined { error }) if error.starts_with("pipeline took longer"))
        );
        let rows = ingestor.db().call(|s| s.message_overview(None)).await.expect("rows");
        assert_eq!(rows[0].message_id.as_deref(), Some("slow@example.org"), "{rows:?}");
    }

    #[tokio::test]
    async fn recovery_never_processes_a_header_only_message() {
        // Regression: an oversized message committed, then a crash before its quarantine was
        // recorded; recovery ran the pipeline on the header alone and marked it processed.
        let d = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&d.path().join("r.db"), Duration::from_secs(1)).expect("open");
        let header = b"From: a@example.org\r\nSubject: big\r\n\r\n".to_vec();
        store.accept(&Arrival { raw_complete: false, ..Arrival::new(header, Origin::stdin()) }).expect("accept");
        let ingestor = Ingestor::new(Db::new(store), Limits::default(), Some(test_reader()));
        assert_eq!(ingestor.process_pending(Duration::ZERO).await.expect("recover"), 1);
        let rows = ingestor.db().call(|s| s.message_overview(None)).await.expect("rows");
        assert_eq!(rows[0].state, "quarantined");
        assert!(rows[0].detail.as_deref().is_some_and(|d| d.starts_with("oversized")), "{rows:?}");
    }

    #[tokio::test]
    async fn a_reply_stored_in_the_same_batch_as_its_statement_follows_it() {
        // Issue 14: a batch is stored at once and read with several messages in flight; the
        // outcomes are recorded in order, so the reply finds the statement recorded before it.
        let (_d, ingestor) = test_ingestor();
        let statement = "From: TSB <tsbsg13@itu.int>\r\nTo: liaison@example.org\r\nSubject: LS on network slicing\r\n\
            Message-ID: <ls7@itu.int>\r\n\r\nTitle: LS on network slicing\r\nFrom: ITU-T Study Group 13\r\n\
            To: IETF TEAS WG\r\nPurpose: For action\r\nDeadline: 2027-03-01\r\n\r\nPlease comment.\r\n";
        let reply = "From: someone@example.com\r\nSubject: Re: LS on network slicing\r\nMessage-ID: <r7@example.com>\r\n\
            In-Reply-To: <ls7@itu.int>\r\n\r\nThanks\r\n";
        let mut received = Vec::new();
        for raw in [statement, reply] {
            received.push(ingestor.receive(raw.as_bytes().to_vec(), Origin::stdin(), None).await);
        }
        let (accepted, to_read) = ingestor.store(received).await.expect("stored");
        assert_eq!(to_read.len(), 2);
        let outcomes = ingestor.read(to_read).await;
        assert_eq!(outcomes, vec![Some(Outcome::Processed), Some(Outcome::Processed)]);
        let store = ingestor.db();
        let statements = store.call(|s| s.statements()).await.expect("statements");
        assert_eq!(statements.len(), 1, "{statements:?}");
        let reply_id = accepted[1].id;
        let (class, _, linked) = store.call(move |s| s.message_class(reply_id)).await.expect("class");
        assert_eq!((class, linked), (Some(Class::FollowUp), Some(statements[0].id)));
    }

    #[tokio::test]
    async fn the_sweep_leaves_a_batch_being_read_alone() {
        // Review of issue 14: a long batch's messages passed the sweep's grace while the batch
        // still read them, and the sweep read them a second time.
        let (_d, ingestor) = test_ingestor();
        let mut received = Vec::new();
        for i in 0..2 {
            let raw = format!("From: a@example.org\r\nMessage-ID: <f{i}@x>\r\nSubject: f\r\n\r\nbody\r\n");
            received.push(ingestor.receive(raw.into_bytes(), Origin::stdin(), None).await);
        }
        let (_, to_read) = ingestor.store(received).await.expect("stored");
        assert_eq!(ingestor.process_pending(Duration::ZERO).await.expect("sweep"), 0, "both are being read");
        drop(to_read); // the reading given up (a shutdown): the sweep takes them
        assert_eq!(ingestor.process_pending(Duration::ZERO).await.expect("sweep"), 2);
    }

    #[tokio::test]
    async fn messages_are_classified_against_what_is_already_held() {
        let (_d, ingestor) = test_ingestor();
        let statement = "From: TSB <tsbsg13@itu.int>\r\nTo: liaison@example.org\r\nSubject: LS on network slicing\r\n\
            Message-ID: <ls42@itu.int>\r\n{extra}\r\n\r\nTitle: LS on network slicing\r\nFrom: ITU-T Study Group 13\r\n\
            To: IETF TEAS WG\r\nPurpose: For action\r\nDeadline: 2027-03-01\r\n\r\nPlease comment.\r\n";
        let ingest = |raw: String| {
            let ingestor = ingestor.clone();
            async move { ingestor.ingest(raw.into_bytes(), Origin::stdin(), None).await.expect("ingest").accepted.id }
        };
        let first = ingest(statement.replace("{extra}", "X-Copy: 1")).await;
        // The same Message-ID through another alias (other bytes).
        let again = ingest(statement.replace("{extra}", "X-Copy: 2")).await;
        let store = ingestor.db();
        let statements = store.call(|s| s.statements()).await.expect("statements");
        assert_eq!(statements.len(), 1, "{statements:?}");
        let tracking = statements[0].tracking_id.clone();
        assert!(tracking.starts_with("LS-") && tracking.len() == 12, "{tracking}");
        let class = |id| store.call(move |s| s.message_class(id));
        assert_eq!(class(first).await.expect("class").0, Some(Class::Statement));
        let (c, _, linked) = class(again).await.expect("class");
        assert_eq!((c, linked), (Some(Class::Duplicate), Some(statements[0].id)));
        // A reply naming the tracking ID; an out-of-office reply to it.
        let reply = ingest(format!(
            "From: someone@example.com\r\nSubject: Re: [{tracking}] Receipt\r\nMessage-ID: <r1@example.com>\r\n\r\nThanks\r\n"
        ))
        .await;
        let (c, _, linked) = class(reply).await.expect("class");
        assert_eq!((c, linked), (Some(Class::FollowUp), Some(statements[0].id)));
        let ooo = ingest(
            "From: someone@example.com\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\
             Message-ID: <o1@example.com>\r\nIn-Reply-To: <r1@example.com>\r\n\r\nAway\r\n"
                .to_string(),
        )
        .await;
        assert_eq!(class(ooo).await.expect("class").0, Some(Class::AutoReply));
        // A second, different statement gets the next number.
        let other = statement.replace("ls42@itu.int", "ls43@itu.int").replace("network slicing", "timing");
        ingest(other.replace("{extra}", "X-Copy: 3")).await;
        let statements = store.call(|s| s.statements()).await.expect("statements");
        assert_eq!(statements.len(), 2);
        let n = |t: &str| t[8..].parse::<u32>().expect("number");
        assert_eq!(n(&statements[1].tracking_id), n(&statements[0].tracking_id) + 1);
    }
}
