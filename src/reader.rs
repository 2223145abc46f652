//! What the daemon reads and judges messages with: the relationships data, who we are, the
//! extraction workers, and (when mail is sent) the planner. It wires the core's pure stages to
//! the two things they take as parameters: the attachment text of the confined workers (under
//! a per-message time budget) and, when planning, the clock and a random Message-ID nonce.
//!
//! The daemon, `liaisond ingest`, `liaisond parse` and `liaisond route --dry-run` all read with
//! [`Reader::read`] and judge with [`Reader::judge`], so they cannot disagree.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use liaisond_core::budget::Budget;
use liaisond_core::content::AttachmentPart;
use liaisond_core::judge::{self, Identity, Judgement};
use liaisond_core::parse::{Headers, Parsed};
use liaisond_core::read::{self, Analysis};
use liaisond_core::relationships::Relationships;
use liaisond_core::respond::{RecordedMessage, Responder, Templates};
use liaisond_model::{History, OutgoingContext, Plan, Verdict};

use anyhow::Context;

use crate::config::Config;
use crate::isolate::{Extractor, Isolation};

/// What the daemon reads messages with. Shared by every source (`Arc`); safe to use from many
/// threads.
#[derive(Debug)]
pub struct Reader {
    relationships: Relationships,
    extractor: Extractor,
    /// How long one message's attachments may take together.
    budget: Duration,
    identity: Identity,
    /// Plans what to send about a recorded message (see `with_responder`); without one,
    /// nothing is sent.
    responder: Option<Responder>,
}

/// A message read and waiting to be judged against the store's history (in the same
/// database call that records it).
#[derive(Debug, Clone)]
pub struct ToJudge {
    pub headers: Headers,
    pub analysis: Analysis,
}

impl Reader {
    /// What messages are read with: the relationships data, the extraction workers (this binary),
    /// and the time budget for a message's attachments (three quarters of the stage limit, so the
    /// message is still recorded when its attachments are slow).
    pub fn from_config(config: &Config, program: Option<PathBuf>) -> anyhow::Result<Reader> {
        let relationships = config.load_relationships()?;
        let program = match program {
            Some(p) => p,
            None => {
                std::env::current_exe().context("cannot find liaisond's own executable for the extraction workers")?
            }
        };
        let extractor = Extractor::new(Isolation::new(program));
        let identity = config.identity(&relationships);
        let responder = config.responder(&relationships)?;
        Ok(Reader::new(relationships, extractor, config.limits.stage_timeout * 3 / 4, identity)
            .with_responder(responder))
    }

    pub fn new(relationships: Relationships, extractor: Extractor, budget: Duration, identity: Identity) -> Reader {
        Reader { relationships, extractor, budget, identity, responder: None }
    }

    /// Also plans the mail to send about each recorded message.
    pub fn with_responder(mut self, responder: Responder) -> Reader {
        self.responder = Some(responder);
        self
    }

    /// Reads one parsed message (blocking: run it on the blocking pool). Attachments are
    /// extracted only while the message's budget lasts: one reached after that gets an error
    /// instead of its text, and the message is still read (a hundred slow attachments must not
    /// lose the statement in the body).
    ///
    /// No time limit for the reading itself (`liaisond parse`): see [`read_after`](Self::read_after).
    pub fn read(&self, parsed: &Parsed) -> Analysis {
        self.read_after(parsed, Duration::ZERO, None)
    }

    /// [`read`](Self::read) a message on which `spent` went already (parsing it): the budget
    /// counts from the start of the message's work, so the message is still recorded within
    /// the stage limit when its attachments are slow.
    ///
    /// With a `limit` (the stage limit, counted from the same start), the reading stops when
    /// it is reached and returns what it found, with a warning: the daemon gives up on the
    /// message then, and the thread reading it must not go on using a core for nothing (it
    /// cannot be stopped from outside).
    pub fn read_after(&self, parsed: &Parsed, spent: Duration, limit: Option<Duration>) -> Analysis {
        let start = Instant::now();
        let deadline = start.checked_add(self.budget.saturating_sub(spent));
        let budget = self.budget;
        let isolated = |part: &AttachmentPart| {
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(format!(
                    "not read: the message's extraction time ({}) was used up by the attachments before it",
                    humantime::format_duration(budget)
                ));
            }
            self.extractor.extract_within(part.format, &part.bytes, left)
        };
        // `None` (no limit, or one too far to be an `Instant`): the reading never stops early.
        let stop_at = limit.and_then(|l| start.checked_add(l.saturating_sub(spent)));
        let over = || stop_at.is_some_and(|t| Instant::now() >= t);
        let reading = Budget::until(&over);
        read::read(parsed, &self.relationships, &isolated, &reading)
    }

    /// Classifies and routes a message that was read, against what `history` knows.
    pub fn judgement(&self, headers: &Headers, analysis: &Analysis, history: &dyn History) -> Judgement {
        judge::judge(headers, analysis, &self.relationships, &self.identity, history)
    }

    /// [`judgement`](Self::judgement), as the store records it.
    pub fn judge(&self, to_judge: &ToJudge, history: &dyn History) -> Verdict {
        self.judgement(&to_judge.headers, &to_judge.analysis, history).verdict(to_judge.analysis.sender.as_deref())
    }

    /// What decides, inside the recording transaction, what to send about message `message`
    /// once it is judged; `None` without a responder (nothing is sent). "Now" is when it plans,
    /// and each plan draws its own random Message-ID nonce.
    pub fn planner<'a>(
        &'a self,
        to_judge: &'a ToJudge,
        message: i64,
    ) -> Option<impl Fn(&OutgoingContext<'_>) -> Plan + 'a> {
        let responder = self.responder.as_ref()?;
        Some(move |ctx: &OutgoingContext<'_>| {
            let recorded = RecordedMessage {
                tracking_id: ctx.tracking_id,
                message,
                verdict: ctx.verdict,
                analysis: &to_judge.analysis,
                headers: &to_judge.headers,
                received: ctx.received,
                now: jiff::Timestamp::now(),
                nonce: rand::random(),
                size: ctx.size,
                commands: ctx.commands,
            };
            responder.plan(&recorded, &self.relationships, ctx.counts)
        })
    }

    /// The relationships data this reader routes with (organisations, liaison managers,
    /// coordinators).
    pub fn relationships(&self) -> &Relationships {
        &self.relationships
    }

    /// What plans the mail to send (the policy, the templates, who we are); `None` when
    /// nothing is sent.
    pub fn responder(&self) -> Option<&Responder> {
        self.responder.as_ref()
    }

    /// The mail templates (acknowledgement, notification, alert, reminder, digest).
    pub fn templates(&self) -> Option<&Templates> {
        self.responder.as_ref().map(|r| &r.templates)
    }
}

/// The daemon's current [`Reader`], swappable while it runs (SIGHUP reloads the relationships
/// data and the templates). Cheap to clone: every clone sees the same current reader.
///
/// A user takes [`ReaderHandle::current`] once and keeps that `Arc` for the whole piece of
/// work (a message from reading to recording, a reminder run), so a reload in the middle
/// never mixes old and new data; the old reader (and its extraction workers) goes away when
/// the last such user drops it.
#[derive(Debug, Clone)]
pub struct ReaderHandle {
    current: Arc<RwLock<Arc<Reader>>>,
}

impl ReaderHandle {
    pub fn new(reader: Reader) -> ReaderHandle {
        ReaderHandle::from(Arc::new(reader))
    }

    /// The reader in use now.
    pub fn current(&self) -> Arc<Reader> {
        // A panic while the lock was held cannot leave a half-written `Arc` behind.
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Puts `reader` in use for every piece of work that starts from now on; returns the one
    /// it replaces.
    pub fn replace(&self, reader: Reader) -> Arc<Reader> {
        let mut slot = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::replace(&mut *slot, Arc::new(reader))
    }
}

impl From<Arc<Reader>> for ReaderHandle {
    fn from(reader: Arc<Reader>) -> ReaderHandle {
        ReaderHandle { current: Arc::new(RwLock::new(reader)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolate::Isolation;

    #[test]
    fn attachments_past_the_message_budget_get_an_error_and_the_body_is_still_read() {
        // No worker is ever started: the budget is spent before the first attachment.
        let rel = Relationships::builtin();
        let identity = Identity::from_relationships(&rel);
        let reader = Reader::new(rel, Extractor::new(Isolation::new("/nonexistent".into())), Duration::ZERO, identity);
        let raw = b"From: a@example.org\r\nSubject: LS on timing\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
Title: LS on timing\r\nPurpose: For action\r\n\r\n--b\r\n\
Content-Type: application/pdf; name=ls.pdf\r\nContent-Disposition: attachment; filename=ls.pdf\r\n\r\n\
%PDF-1.4 not really\r\n--b--\r\n";
        let a = reader.read(&Parsed::new(raw));
        assert_eq!(a.attachments.len(), 1);
        let error = a.attachments[0].error.as_deref().unwrap_or_default();
        assert!(error.starts_with("not read: the message's extraction time"), "{error}");
        assert_eq!(a.statement.title.as_deref(), Some("LS on timing"));
        assert_eq!(reader.extractor.workers_started(), 0);
        // The time spent parsing counts against the budget (review: it did not, so a slow
        // parse left the attachments more time than the stage limit had).
        let rel = Relationships::builtin();
        let identity = Identity::from_relationships(&rel);
        let hour = Duration::from_secs(3600);
        let reader = Reader::new(rel, Extractor::new(Isolation::new("/nonexistent".into())), hour, identity);
        let a = reader.read_after(&Parsed::new(raw), hour, None);
        let error = a.attachments[0].error.as_deref().unwrap_or_default();
        assert!(error.starts_with("not read: the message's extraction time"), "{error}");
        assert_eq!(reader.extractor.workers_started(), 0);
    }

    #[test]
    fn a_reading_past_the_stage_limit_stops_at_once_and_says_so() {
        // Issue 13: when the stage limit passed, the daemon quarantined the message but the
        // thread reading it ran on (for hours on a crafted message). The parse used up the
        // limit here: the reading returns at once, having read nothing more.
        let rel = Relationships::builtin();
        let identity = Identity::from_relationships(&rel);
        let hour = Duration::from_secs(3600);
        let reader = Reader::new(rel, Extractor::new(Isolation::new("/nonexistent".into())), hour, identity);
        let mut raw = String::from(
            "From: a@example.org\r\nSubject: LS on timing\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n",
        );
        for n in 0..200_000 {
            raw.push_str(&format!("Reply to: someone{n}@example.org\r\n"));
        }
        raw.push_str(
            "--b\r\nContent-Type: application/pdf; name=ls.pdf\r\n\
             Content-Disposition: attachment; filename=ls.pdf\r\n\r\n%PDF-1.4 not really\r\n--b--\r\n",
        );
        let parsed = Parsed::new(raw.as_bytes());
        let limit = Duration::from_secs(5);
        let started = Instant::now();
        let a = reader.read_after(&parsed, limit, Some(limit));
        // At once: it took minutes before. (A debug build takes milliseconds here.)
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(a.warnings.iter().any(|w| w.starts_with("reading stopped at the time limit")), "{:?}", a.warnings);
        assert_eq!(a.attachments[0].error.as_deref(), Some("not read: reading stopped at the time limit"));
        assert_eq!(a.statement.reply_to, ["a@example.org"]);
        assert_eq!(reader.extractor.workers_started(), 0);
        // Within the limit, the same message is read.
        let a = reader.read_after(&parsed, Duration::ZERO, Some(hour));
        assert!(!a.warnings.iter().any(|w| w.starts_with("reading stopped")), "{:?}", a.warnings);
        assert_eq!(a.statement.reply_to.len(), liaisond_core::understand::MAX_ADDRESSES);
    }
}
