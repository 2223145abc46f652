//! One message, fully read: its header facts, its content, the text of each attachment
//! (extracted in the confined child process), and the statement's fields. This is what
//! `liaisond parse` prints, and what later stages (classify, route) add to.
//!
//! It touches no database and no network; the only I/O is the extraction child process.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::content::{self, AttachmentPart};
use crate::extract::{self, ExtractLimits, Kind};
use crate::isolate::Extractor;
use crate::pipeline;
use crate::relationships::Relationships;
use crate::understand::{self, Source, Statement};

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentReport {
    pub filename: String,
    pub content_type: String,
    pub size: usize,
    pub sha256: String,
    /// The format it was read as (sniffed from its name, type and first bytes).
    pub kind: Kind,
    /// Forwarded messages deep (0: attached to the message itself).
    pub depth: usize,
    /// How much text was extracted (0 when none).
    pub text_chars: usize,
    /// Why no text could be extracted, when it could not.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub sender: Option<String>,
    pub statement: Statement,
    pub attachments: Vec<AttachmentReport>,
    pub warnings: Vec<String>,
}

/// What the daemon reads messages with: the relationships data and the extraction workers.
/// Shared by every source (`Arc`); safe to use from many threads.
#[derive(Debug)]
pub struct Reader {
    relationships: Relationships,
    extractor: Extractor,
    /// How long one message's attachments may take together.
    budget: Duration,
    identity: Identity,
    /// Plans what to send about a recorded message (see `with_responder`); without one,
    /// nothing is sent.
    responder: Option<crate::respond::Responder>,
}

impl Reader {
    pub fn new(relationships: Relationships, extractor: Extractor, budget: Duration, identity: Identity) -> Reader {
        Reader { relationships, extractor, budget, identity, responder: None }
    }

    /// Also plans the mail to send about each recorded message.
    pub fn with_responder(mut self, responder: crate::respond::Responder) -> Reader {
        self.responder = Some(responder);
        self
    }

    /// What decides, inside the recording transaction, what to send about message `message`
    /// once it is judged; `None` without a responder (nothing is sent).
    pub fn planner<'a>(
        &'a self,
        to_judge: &'a ToJudge,
        message: i64,
    ) -> Option<impl Fn(&crate::store::OutgoingContext<'_>) -> crate::respond::Plan + 'a> {
        let responder = self.responder.as_ref()?;
        Some(move |ctx: &crate::store::OutgoingContext<'_>| {
            let incoming = crate::respond::Incoming {
                tracking_id: ctx.tracking_id,
                message,
                judged: ctx.judged,
                analysis: &to_judge.analysis,
                headers: &to_judge.headers,
                received: ctx.received,
                now: jiff::Timestamp::now(),
                size: ctx.size,
            };
            responder.plan(&incoming, &self.relationships, ctx.counts)
        })
    }

    /// Classifies and routes a message that was read, against what `history` knows, as the
    /// store records it.
    pub fn judge(&self, to_judge: &ToJudge, history: &dyn crate::classify::History) -> crate::store::Judged {
        let j = judge_read(&to_judge.headers, &to_judge.analysis, &self.relationships, &self.identity, history);
        let answers = match &j.classification.related {
            Some(known) if j.classification.class == crate::classify::Class::FollowUp => crate::follow::answers(
                &crate::follow::Reply {
                    sender: to_judge.analysis.sender.as_deref(),
                    sender_verified: j.route.sender_verified,
                    recipients: to_judge.headers.recipients(),
                    datatracker_reply: j.classification.datatracker_reply,
                    in_response: to_judge.analysis.statement.purpose == Some(crate::understand::Purpose::Response),
                    statement: known,
                },
                &self.relationships,
            ),
            _ => None,
        };
        crate::store::Judged {
            answers,
            class: j.classification.class.as_str().to_string(),
            reason: j.classification.reason,
            related_statement: j.classification.related.as_ref().map(|k| k.id),
            related_tracking_id: j.classification.related.map(|k| k.tracking_id),
            no_ack: j.classification.no_ack,
            sender: to_judge.analysis.sender.clone(),
            sender_verified: j.route.sender_verified,
            verification: j.route.verification,
            relationship: j.route.relationship,
            organization: j.route.organization,
            rule: j.route.rule.map(str::to_string),
            to: j.route.to,
            cc: j.route.cc,
            route_reason: j.route.reason,
            candidates: j.route.candidates,
        }
    }

    /// Reads one message (blocking: run it on the blocking pool).
    pub fn read(&self, raw: &[u8]) -> Analysis {
        analyse_within(raw, &self.relationships, &self.extractor, self.budget)
    }

    /// The relationships data this reader routes with (organisations, liaison managers,
    /// coordinators).
    pub fn relationships(&self) -> &Relationships {
        &self.relationships
    }

    /// What plans the mail to send (the policy, the templates, who we are); `None` when
    /// nothing is sent.
    pub fn responder(&self) -> Option<&crate::respond::Responder> {
        self.responder.as_ref()
    }

    /// The mail templates (acknowledgement, notification, alert, reminder, digest).
    pub fn templates(&self) -> Option<&crate::respond::Templates> {
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

impl Analysis {
    /// The record the store keeps of this reading.
    pub fn to_reading(&self) -> crate::store::Reading {
        let statement_json = serde_json::to_string(&self.statement).unwrap_or_else(|_| "{}".into());
        let warnings_json = serde_json::to_string(&self.warnings).unwrap_or_else(|_| "[]".into());
        crate::store::Reading {
            attachments: self
                .attachments
                .iter()
                .map(|a| crate::store::AttachmentRecord {
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    size: a.size as i64,
                    sha256: a.sha256.clone(),
                    kind: a.kind.as_str().to_string(),
                    depth: a.depth as i64,
                    text_chars: a.text_chars as i64,
                    error: a.error.clone(),
                })
                .collect(),
            title: self.statement.title.clone(),
            purpose: self
                .statement
                .purpose
                .and_then(|p| serde_json::to_value(p).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            deadline: self.statement.deadline.clone(),
            from_org: self.statement.from_org.clone(),
            statement_json,
            warnings_json,
        }
    }
}

/// Classification and routing of one message that was read.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    pub classification: crate::classify::Classification,
    pub route: crate::route::Route,
}

/// What [`judge`] needs besides the message: who we are and whom we trust.
#[derive(Debug, Clone)]
pub struct Identity {
    pub ours: crate::classify::Ours,
    pub trusted_authserv_ids: Vec<String>,
}

impl Identity {
    /// From the configuration; without `[mail]`, our address is the relationships data's first
    /// own address.
    pub fn new(config: Option<&crate::config::Config>, rel: &Relationships) -> Identity {
        let ours = match config.and_then(|c| c.mail.as_ref()) {
            Some(m) => crate::classify::Ours { from: m.from.clone(), message_id_domain: m.message_id_domain.clone() },
            None => {
                let from = rel.own_addresses().first().cloned().unwrap_or_else(|| "liaisond@localhost".into());
                let domain = from.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
                crate::classify::Ours { from, message_id_domain: domain }
            }
        };
        Identity { ours, trusted_authserv_ids: config.map(|c| c.trusted_authserv_ids.clone()).unwrap_or_default() }
    }
}

/// Classifies and routes a message that was read (pure, given the history).
pub fn judge(
    raw: &[u8],
    analysis: &Analysis,
    rel: &Relationships,
    identity: &Identity,
    history: &dyn crate::classify::History,
) -> Judgement {
    judge_read(&crate::classify::Headers::parse(raw), analysis, rel, identity, history)
}

/// A message read and waiting to be judged against the store's history (in the same
/// database call that records it).
#[derive(Debug, Clone)]
pub struct ToJudge {
    pub headers: crate::classify::Headers,
    pub analysis: Analysis,
}

/// [`judge`] on a header section already parsed.
pub fn judge_read(
    headers: &crate::classify::Headers,
    analysis: &Analysis,
    rel: &Relationships,
    identity: &Identity,
    history: &dyn crate::classify::History,
) -> Judgement {
    let has_document = analysis.attachments.iter().any(|a| a.text_chars >= 200);
    let classification = crate::classify::classify(
        &crate::classify::Input {
            headers,
            subject: analysis.subject.as_deref(),
            sender: analysis.sender.as_deref(),
            statement: &analysis.statement,
            has_document,
        },
        rel,
        &identity.ours,
        history,
    );
    let authentication_results: Vec<&str> = headers.all("authentication-results").collect();
    let handlers = classification.related.as_ref().map(|k| k.handlers.clone()).unwrap_or_default();
    let route = crate::route::route(
        &crate::route::Input {
            class: classification.class,
            sender: analysis.sender.as_deref(),
            statement: &analysis.statement,
            authentication_results: &authentication_results,
            trusted_authserv_ids: &identity.trusted_authserv_ids,
            statement_handlers: &handlers,
        },
        rel,
    );
    Judgement { classification, route }
}

/// Reads one raw message, with no overall time limit beyond each attachment's own.
pub fn analyse(raw: &[u8], rel: &Relationships, extractor: &Extractor) -> Analysis {
    analyse_within(raw, rel, extractor, Duration::MAX)
}

/// Reads one raw message, extracting attachments only while `budget` lasts: an attachment
/// reached after that gets an error instead of its text, and the message is still read (a
/// hundred slow attachments must not lose the statement in the body).
pub fn analyse_within(raw: &[u8], rel: &Relationships, extractor: &Extractor, budget: Duration) -> Analysis {
    let deadline = Instant::now().checked_add(budget);
    let mut warnings = Vec::new();
    let parsed = match pipeline::parse(raw) {
        Ok(p) => Some(p),
        Err(e) => {
            warnings.push(e.to_string());
            None
        }
    };
    let content = content::content(raw);
    warnings.extend(content.warnings.iter().cloned());

    let mut attachments = Vec::with_capacity(content.attachments.len());
    let mut texts: Vec<(String, String)> =
        content.bodies.iter().map(|b| ("body".to_string(), b.text.clone())).collect();
    for part in &content.attachments {
        let (text, error) = match attachment_text(part, extractor, deadline, budget) {
            Ok(Some(t)) => {
                warnings.extend(t.warnings.iter().map(|w| format!("{}: {w}", part.filename)));
                (t.text, None)
            }
            Ok(None) => (String::new(), None),
            Err(e) => (String::new(), Some(e)),
        };
        attachments.push(AttachmentReport {
            filename: part.filename.clone(),
            content_type: part.content_type.clone(),
            size: part.bytes.len(),
            sha256: part.sha256.clone(),
            kind: part.kind,
            depth: part.depth,
            text_chars: text.chars().count(),
            error,
        });
        if !text.trim().is_empty() {
            texts.push((part.filename.clone(), text));
        }
    }

    let sources: Vec<Source<'_>> = texts.iter().map(|(n, t)| Source { name: n, text: t }).collect();
    let sender = parsed.as_ref().and_then(|p| p.from.as_deref()).map(bare_address);
    let understood = understand::understand(
        &understand::Input {
            subject: parsed.as_ref().and_then(|p| p.subject.as_deref()),
            sender: sender.as_deref(),
            texts: &sources,
        },
        rel,
    );
    warnings.extend(understood.warnings);
    Analysis {
        message_id: parsed.as_ref().and_then(|p| p.message_id.clone()),
        subject: parsed.as_ref().and_then(|p| p.subject.clone()),
        sender,
        statement: understood.statement,
        attachments,
        warnings,
    }
}

/// The text of one attachment: our own bounded readers in-process for text and HTML, the
/// confined child for the rest; `None` for kinds that hold no text (images). The error is
/// what the attachment records.
fn attachment_text(
    part: &AttachmentPart,
    extractor: &Extractor,
    deadline: Option<Instant>,
    budget: Duration,
) -> Result<Option<extract::Extracted>, String> {
    match part.kind {
        Kind::Other => Ok(None),
        Kind::Text | Kind::Html => extract::extract_text(part.kind, &part.bytes, &ExtractLimits::default())
            .map(Some)
            .map_err(|e| e.to_string()),
        kind => {
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(format!(
                    "not read: the message's extraction time ({}) was used up by the attachments before it",
                    humantime::format_duration(budget)
                ));
            }
            extractor.extract_within(kind, &part.bytes, left).map(Some)
        }
    }
}

/// `Name <a@b>` → `a@b`.
fn bare_address(from: &str) -> String {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(l), Some(r)) if l < r => from[l + 1..r].to_string(),
        _ => from.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_past_the_message_budget_get_an_error_and_the_body_is_still_read() {
        // No worker is ever started: the budget is spent before the first attachment.
        let extractor = Extractor::new(crate::isolate::Isolation::new("/nonexistent".into()));
        let raw = b"From: a@example.org\r\nSubject: LS on timing\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
Title: LS on timing\r\nPurpose: For action\r\n\r\n--b\r\n\
Content-Type: application/pdf; name=ls.pdf\r\nContent-Disposition: attachment; filename=ls.pdf\r\n\r\n\
%PDF-1.4 not really\r\n--b--\r\n";
        let a = analyse_within(raw, &Relationships::builtin(), &extractor, Duration::ZERO);
        assert_eq!(a.attachments.len(), 1);
        let error = a.attachments[0].error.as_deref().unwrap_or_default();
        assert!(error.starts_with("not read: the message's extraction time"), "{error}");
        assert_eq!(a.statement.title.as_deref(), Some("LS on timing"));
        assert_eq!(extractor.workers_started(), 0);
    }
}
