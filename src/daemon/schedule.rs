//! The scheduler: once a minute it asks which reminders and which digest are due (the pure
//! rules in `follow`), and queues them in the outbox (`store`), which the sender delivers.
//!
//! Nothing here keeps state between passes: what was decided is in the database (one row per
//! statement, deadline and step; one per digest slot), so a restart, a second process, a
//! clock set back or a daemon that was down on the day all come out right. The clock is a
//! parameter ([`Clock`]), so tests run the ladder on days of their choosing.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use liaisond_core::follow::{self, DigestInput, Step};
use liaisond_model::{FollowRow, timestamp_text};
use liaisond_store::{RECORD_STEP, ReminderToQueue, StoreError};

use super::service::Heartbeat;
use crate::config::FollowConfig;
use crate::db::Db;
use crate::reader::Reader;

/// What time it is (the system clock, except in tests).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// Where the scheduler gets the relationships data and templates: the current reader (it is
/// replaced when the daemon reloads them).
pub type CurrentReader = Arc<dyn Fn() -> Arc<Reader> + Send + Sync>;

/// How often the scheduler looks: reminders and digests are planned to the minute.
const LOOK_EVERY: Duration = Duration::from_secs(60);
/// What one pass may take before the watchdog counts the loop as stuck.
const PASS_LIMIT: Duration = Duration::from_secs(120);

/// What one pass queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// (tracking ID, step) of each reminder queued.
    pub reminders: Vec<(String, String)>,
    /// The digest slot decided in this pass, and whether it had anything to report.
    pub digest: Option<(String, bool)>,
    /// The managers asked for their yearly check-in in this pass.
    pub check_ins: Vec<String>,
}

#[derive(Clone)]
pub struct Scheduler {
    db: Db,
    config: FollowConfig,
    reader: CurrentReader,
    clock: Clock,
    /// Wakes the sender when something was queued.
    sender: Option<Arc<Notify>>,
    /// Tells the watchdog this loop is alive (see `service`).
    heartbeat: Heartbeat,
}

impl Scheduler {
    pub fn new(db: Db, config: FollowConfig, reader: CurrentReader, clock: Clock) -> Scheduler {
        Scheduler { db, config, reader, clock, sender: None, heartbeat: Heartbeat::detached() }
    }

    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Scheduler {
        self.heartbeat = heartbeat;
        self
    }

    pub fn with_sender_waker(mut self, waker: Arc<Notify>) -> Scheduler {
        self.sender = Some(waker);
        self
    }

    /// Looks once a minute until `shutdown` (or once, with `once`).
    pub async fn run(self, shutdown: CancellationToken, once: bool) {
        loop {
            // A pass is a few queries per open statement; a busy database is the slowest part.
            self.heartbeat.busy_for(PASS_LIMIT);
            match self.pass().await {
                Ok(report) => {
                    if (!report.reminders.is_empty()
                        || !report.check_ins.is_empty()
                        || report.digest.as_ref().is_some_and(|d| d.1))
                        && let Some(w) = &self.sender
                    {
                        w.notify_one();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "planning reminders and digests failed; will try again"),
            }
            if once {
                return;
            }
            self.heartbeat.beat();
            tokio::select! {
                _ = self.heartbeat.sleep(LOOK_EVERY) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Queues the reminders and the digest due now.
    pub async fn pass(&self) -> Result<PassReport, StoreError> {
        let now = (self.clock)();
        let reader = (self.reader)();
        let mut report = PassReport::default();
        if reader.responder().is_none() {
            return Ok(report);
        }
        if self.config.reminders_enabled {
            report.reminders = self.reminders(now, reader.clone()).await?;
        }
        if self.config.check_in_requests {
            report.check_ins = self.check_ins(now, reader.clone()).await?;
        }
        if self.config.digest_enabled {
            report.digest = self.digest(now, reader).await?;
        }
        Ok(report)
    }

    async fn reminders(&self, now: Timestamp, reader: Arc<Reader>) -> Result<Vec<(String, String)>, StoreError> {
        let cfg = self.config.clone();
        self.db
            .call(move |store| {
                let Some(responder) = reader.responder() else { return Ok(Vec::new()) };
                let today = follow::schedule_day(now, &cfg.time_zone, cfg.reminders_at);
                let mut queued = Vec::new();
                for s in store.statements_owing_reply()? {
                    let Some((deadline, step)) = due(&s, &cfg, today) else { continue };
                    let (deadline_text, key) = (deadline.to_string(), step.key());
                    if store.reminder_decided(s.id, &deadline_text, &key)? {
                        continue;
                    }
                    let draft = follow::reminder_draft(
                        responder,
                        reader.relationships(),
                        &s,
                        deadline,
                        step,
                        &cfg.ladder,
                        today,
                        now,
                        rand::random(),
                    );
                    let due_on = step.due_on(deadline).to_string();
                    let r = ReminderToQueue {
                        statement: s.id,
                        deadline: &deadline_text,
                        step: &key,
                        due_on: &due_on,
                        draft: &draft,
                    };
                    if store.queue_reminder(&r)? {
                        tracing::info!(
                            tracking_id = %s.tracking_id,
                            step = %key,
                            deadline = %deadline_text,
                            to = %draft.to.join(", "),
                            "reminder queued"
                        );
                        queued.push((s.tracking_id.clone(), key));
                    }
                }
                // The one reminder of a statement not recorded in the datatracker in time, from
                // the day's send time like the others.
                let unrecorded = if sending_hours(now, &cfg) {
                    store.statements_unrecorded(&record_cutoff(now, &cfg), true)?
                } else {
                    Vec::new()
                };
                for s in unrecorded {
                    if store.reminder_decided(s.id, "", RECORD_STEP)? {
                        continue;
                    }
                    let draft = follow::record_reminder_draft(
                        responder,
                        reader.relationships(),
                        &s,
                        cfg.record_within,
                        now,
                        rand::random(),
                    );
                    if store.queue_record_reminder(s.id, &today.to_string(), &draft)? {
                        tracing::info!(
                            tracking_id = %s.tracking_id,
                            to = %draft.to.join(", "),
                            "reminder queued: not recorded in the datatracker"
                        );
                        queued.push((s.tracking_id.clone(), RECORD_STEP.to_string()));
                    }
                }
                Ok(queued)
            })
            .await
    }

    /// The yearly check-in requests due: one per manager whose check-in is due and who was
    /// not asked within the year, from the send time of the reminders' day.
    async fn check_ins(&self, now: Timestamp, reader: Arc<Reader>) -> Result<Vec<String>, StoreError> {
        let cfg = self.config.clone();
        self.db
            .call(move |store| {
                let Some(responder) = reader.responder() else { return Ok(Vec::new()) };
                if !sending_hours(now, &cfg) {
                    return Ok(Vec::new());
                }
                let rel = reader.relationships();
                let today = follow::schedule_day(now, &cfg.time_zone, cfg.reminders_at);
                let recorded = store.check_ins()?;
                let asked = store.check_ins_asked()?;
                let year_ago = timestamp_text(now - jiff::SignedDuration::from_hours(365 * 24));
                let a_year_before = today.checked_sub(jiff::ToSpan::years(1)).unwrap_or(today).to_string();
                let mut queued = Vec::new();
                for c in follow::check_ins(rel, &recorded, today, cfg.check_in_after) {
                    // Asked within the year and not answered: the digest says so; no second mail.
                    if !c.check_in_due || asked.get(&c.email).is_some_and(|on| *on > a_year_before) {
                        continue;
                    }
                    let rows = store.statements_of_relationships(&c.acronyms, &year_ago)?;
                    let summary = follow::relationship_summary(&rows, today);
                    let draft = follow::check_in_draft(responder, rel, &c, &summary, now, rand::random());
                    if store.queue_check_in(&c.email, &today.to_string(), &draft)? {
                        tracing::info!(manager = %c.email, "yearly check-in request queued");
                        queued.push(c.email.clone());
                    }
                }
                Ok(queued)
            })
            .await
    }

    async fn digest(&self, now: Timestamp, reader: Arc<Reader>) -> Result<Option<(String, bool)>, StoreError> {
        let cfg = self.config.clone();
        self.db
            .call(move |store| {
                let Some(responder) = reader.responder() else { return Ok(None) };
                let Some(slot) = follow::latest_digest_slot(now, &cfg.time_zone, &cfg.digest) else {
                    return Ok(None);
                };
                let key = follow::slot_key(slot);
                let last = store.last_digest()?;
                let since = match last {
                    Some((last_slot, end)) if last_slot < key => end,
                    Some((last_slot, _)) => {
                        // A slot at or before the last one decided: the clock went back, and
                        // nothing is new. Unless the last one is more than a week ahead: then
                        // the clock was wrong when it was decided, and waiting for that date
                        // would stop the digests; they go on from now.
                        let far_ahead = last_slot
                            .parse::<jiff::civil::DateTime>()
                            .ok()
                            .zip(slot.checked_add(jiff::ToSpan::days(8)).ok())
                            .is_some_and(|(last, limit)| last > limit);
                        if !far_ahead {
                            return Ok(None);
                        }
                        tracing::warn!(
                            last = %last_slot,
                            now = %key,
                            "the last digest was decided for a time more than a week ahead (the clock was wrong); digests go on from now"
                        );
                        timestamp_text(now - jiff::SignedDuration::from_hours(7 * 24))
                    }
                    // The first time, the slot only marks where the first digest's period
                    // starts: a first start (perhaps over an old mailbox) sends no digest off
                    // schedule; the first one goes out at the next slot.
                    None => {
                        let now_text = timestamp_text(now);
                        let note = format!("digests start: the first goes out at the slot after {key}");
                        store.record_digest(&key, &now_text, &now_text, None, &note)?;
                        return Ok(Some((key, false)));
                    }
                };
                let open = store.open_statements()?;
                let received = store.statements_since(&since)?;
                let quarantined = store.quarantined_since(&since)?;
                let failed = store.outbox_problems_since(&since)?;
                let check_ins = store.check_ins()?;
                let check_ins_asked = store.check_ins_asked()?;
                let unrecorded = store.statements_unrecorded(&record_cutoff(now, &cfg), true)?;
                let today = now.to_zoned(cfg.time_zone.clone()).date();
                let input = DigestInput {
                    since: &since,
                    today,
                    time_zone: &cfg.time_zone,
                    open: &open,
                    received: &received,
                    quarantined: &quarantined,
                    failed: &failed,
                    check_ins: &check_ins,
                    check_ins_asked: &check_ins_asked,
                    check_in_after: cfg.check_in_after,
                    unrecorded: &unrecorded,
                    record_within: cfg.record_within,
                };
                let draft = follow::digest_draft(responder, reader.relationships(), &input, now, rand::random());
                let end = timestamp_text(now);
                let note = format!("digest for {key}: nothing to report, no mail");
                if !store.record_digest(&key, &since, &end, draft.as_ref(), &note)? {
                    return Ok(None);
                }
                tracing::info!(slot = %key, mail = draft.is_some(), "digest decided");
                Ok(Some((key, draft.is_some())))
            })
            .await
    }
}

/// Whether mail that is not tied to a deadline's day (the "not recorded" reminder, check-in
/// requests) may go out now: from the reminders' send time to the end of the local day, not
/// at three in the morning after a restart.
fn sending_hours(now: Timestamp, cfg: &FollowConfig) -> bool {
    now.to_zoned(cfg.time_zone.clone()).time() >= cfg.reminders_at
}

/// Statements recorded here before this time and not in the datatracker are late.
pub fn record_cutoff(now: Timestamp, cfg: &FollowConfig) -> String {
    let within = jiff::SignedDuration::try_from(cfg.record_within).unwrap_or(jiff::SignedDuration::MAX);
    timestamp_text(now.checked_sub(within).unwrap_or(Timestamp::MIN))
}

/// The statement's deadline and the reminder step current on `today` (`s` owes a reply: see
/// `Store::statements_owing_reply`).
fn due(s: &FollowRow, cfg: &FollowConfig, today: Date) -> Option<(Date, Step)> {
    let deadline: Date = s.deadline.as_deref()?.parse().ok()?;
    let received_on = s.received.parse::<Timestamp>().map(|t| follow::local_date(t, &cfg.time_zone)).unwrap_or(today);
    follow::current_step(&cfg.ladder, deadline, received_on, today).map(|step| (deadline, step))
}
