//! Stage 3: judging a message that was read: its class (against what the history knows of
//! earlier statements), its route, and whether it answers the statement it follows up.
//!
//! [`judge`] is the one judge path: the daemon calls it inside the store's recording
//! transaction, `liaisond parse` with no history, and `liaisond route --dry-run` against the
//! store's history without the statement itself, so the three cannot disagree.

use liaisond_model::{Class, History, Purpose, Verdict, normalize_address};
use serde::Serialize;

use crate::classify::{self, Classification, Ours};
use crate::command;
use crate::follow;
use crate::parse::Headers;
use crate::read::Analysis;
use crate::relationships::Relationships;
use crate::route::{self, Route};

/// Who we are and whom we trust: what [`judge`] needs besides the message.
#[derive(Debug, Clone)]
pub struct Identity {
    pub ours: Ours,
    /// The authserv-ids whose Authentication-Results fields are believed (RFC 8601 §5).
    pub trusted_authserv_ids: Vec<String>,
    /// How many `Received` fields our own servers put above the Authentication-Results fields
    /// they add (Postfix's own, which it hides from its milters); a Received field past these
    /// is the sender's, and ends the search for ours.
    pub own_received_fields: usize,
}

/// `own_received_fields` when not configured: the receiving Postfix's own field.
pub const DEFAULT_OWN_RECEIVED_FIELDS: usize = 1;

impl Identity {
    /// Without a configured `[mail]` identity: the relationships data's first own address
    /// (else `liaisond@localhost`), and no trusted authserv-id.
    pub fn from_relationships(rel: &Relationships) -> Identity {
        let from = rel.own_addresses().first().cloned().unwrap_or_else(|| "liaisond@localhost".into());
        let domain = from.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
        Identity {
            ours: Ours { from, message_id_domain: domain },
            trusted_authserv_ids: Vec::new(),
            own_received_fields: DEFAULT_OWN_RECEIVED_FIELDS,
        }
    }
}

/// How one message was judged.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    pub classification: Classification,
    pub route: Route,
    /// For a follow-up from the IETF side: `Ok(why)` when it answers its statement (which is
    /// then done), `Err(why not)` when it looked like an answer but cannot be trusted.
    pub answers: Option<Result<String, String>>,
    /// For a reply to mail liaisond sent: the commands on its first lines, each decided.
    pub commands: Vec<liaisond_model::Command>,
    /// Whether it is a reply with commands (its sender may act on a statement it names).
    pub command_reply: bool,
    /// For a reply to a yearly check-in request: recorded, or why not.
    pub check_in_answer: Option<Result<liaisond_model::CheckInAnswer, String>>,
    /// For an incoming statement: the outgoing one it answers, when its sender is verified and
    /// of the body that outgoing statement was sent to (a forged "Reply LS" closes nothing).
    pub answers_outgoing: Option<liaisond_model::KnownStatement>,
}

impl Judgement {
    /// As the store records it (`sender` is the message's `From:` address).
    pub fn verdict(&self, sender: Option<&str>) -> Verdict {
        let (c, r) = (&self.classification, &self.route);
        Verdict {
            class: c.class,
            reason: c.reason.clone(),
            related_statement: c.related.as_ref().map(|k| k.id),
            related_tracking_id: c.related.as_ref().map(|k| k.tracking_id.clone()),
            no_ack: c.no_ack.clone(),
            sender: sender.map(str::to_string),
            sender_verified: r.sender_verified,
            verification: r.verification.clone(),
            relationship: r.relationship.clone(),
            organization: r.organization.clone(),
            rule: r.rule.map(str::to_string),
            to: r.to.clone(),
            cc: r.cc.clone(),
            route_reason: r.reason.clone(),
            candidates: r.candidates.clone(),
            answers: self.answers.clone(),
            datatracker_record: c.datatracker_record.clone(),
            // A notice's record only from a verified sender, as the store takes it.
            datatracker_url: c
                .datatracker_record
                .as_ref()
                .filter(|_| r.sender_verified)
                .map(|rec| rec.url.clone())
                .or_else(|| c.related.as_ref().and_then(|k| k.datatracker_url.clone())),
            commands: self.commands.clone(),
            command_reply: self.command_reply,
            outgoing: c.outgoing.is_some(),
            answers_outgoing: self
                .answers_outgoing
                .as_ref()
                .map(|k| liaisond_model::Target { id: k.id, tracking_id: k.tracking_id.clone() }),
            check_in_answer: self.check_in_answer.clone(),
        }
    }
}

/// Classifies and routes a message that was read, against what `history` knows, and decides
/// whether a follow-up answers its statement.
pub fn judge(
    headers: &Headers,
    analysis: &Analysis,
    rel: &Relationships,
    identity: &Identity,
    history: &dyn History,
) -> Judgement {
    let classification = classify::classify(
        &classify::Input {
            headers,
            subject: analysis.subject.as_deref(),
            sender: analysis.sender.as_deref(),
            statement: &analysis.statement,
            has_document: analysis.has_document(),
        },
        rel,
        &identity.ours,
        history,
    );
    let header_fields: Vec<(&str, &str)> = headers.fields().collect();
    let handlers = classification.related.as_ref().map(|k| k.handlers.clone()).unwrap_or_default();
    let route = route::route(
        &route::Input {
            class: classification.class,
            sender: analysis.sender.as_deref(),
            statement: &analysis.statement,
            header_fields: &header_fields,
            single_author: headers.single_author(),
            trusted_authserv_ids: &identity.trusted_authserv_ids,
            own_received_fields: identity.own_received_fields,
            statement_handlers: &handlers,
        },
        rel,
    );
    let route = match &classification.outgoing {
        Some(o) => outgoing_route(route, o, analysis.sender.as_deref(), rel),
        None => route,
    };
    let answers = match &classification.related {
        Some(known) if classification.class == Class::FollowUp => follow::answers(
            &follow::Reply {
                sender: analysis.sender.as_deref(),
                sender_verified: route.sender_verified,
                recipients: headers.recipients(),
                datatracker_reply: classification.datatracker_reply,
                in_response: analysis.statement.purpose == Some(Purpose::Response),
                statement: known,
            },
            rel,
        ),
        _ => None,
    };
    let sender = analysis.sender.as_deref().and_then(normalize_address);
    // A manager's answer to the yearly check-in request: recorded as the check-in when the
    // manager asked sent it, verified (a From: header is only a claim).
    let check_in_answer = classification.check_in.as_ref().map(|request| match sender.clone() {
        Some(s) if s == request.manager && route.sender_verified => Ok(liaisond_model::CheckInAnswer {
            request: request.id,
            manager: s,
            report: follow::report_text(&analysis.reply_text),
        }),
        Some(s) if s == request.manager => {
            Err(format!("{s} answered the check-in, but the sender is not verified ({})", route.verification))
        }
        other => Err(format!(
            "an answer to the check-in request to {} from {}",
            request.manager,
            other.as_deref().unwrap_or("(no sender)")
        )),
    });
    // A reply to mail we sent (or naming a statement) whose first lines are commands. Its
    // commands stand in for a reply to the statement: a manager's `Done:` to the
    // coordinators is not an answer to the other body.
    let requests = if classification.class == Class::FollowUp
        && !classification.datatracker_reply
        && classification.check_in.is_none()
    {
        command::commands_in(&analysis.reply_text)
    } else {
        Vec::new()
    };
    let decided = if requests.is_empty() {
        command::Decided::default()
    } else {
        let who = command::Sender {
            address: sender.as_deref(),
            verified: route.sender_verified,
            verification: &route.verification,
        };
        // A tracking ID found only in the body (a quoted digest) names no statement for a
        // command without its own.
        let about = classification.related.as_ref().filter(|_| !classification.related_in_body);
        command::decide(requests, about, &who, rel, history)
    };
    let command_reply = decided.acting;
    let answers = if command_reply { None } else { answers };
    let commands = decided.commands;
    let answers_outgoing = classification
        .answers_outgoing
        .clone()
        .filter(|k| route.sender_verified && route.organization.is_some() && route.organization == k.organization);
    Judgement { classification, route, answers, commands, command_reply, check_in_answer, answers_outgoing }
}

/// An outgoing statement goes to the addressed body's liaison manager (its group's, when the
/// group has its own), who should know what the IETF asked of the body they follow, the
/// coordinators in copy; to the coordinators only when the sender is not a verified sender of
/// the IETF side (anyone can write a statement's header block).
fn outgoing_route(
    mut route: Route,
    o: &crate::direction::Outgoing,
    sender: Option<&str>,
    rel: &Relationships,
) -> Route {
    let coordinators = rel.coordinators().to_vec();
    let org = rel.organization(&o.to);
    let liaison = org.map(|g| g.liaison_for(o.to_group.as_deref()));
    let managers: Vec<String> =
        liaison.map(|l| l.recipients().into_iter().map(str::to_string).collect()).unwrap_or_default();
    // The relationship whose manager it is: the group's own, else the organisation's.
    let own_group = o.to_group.as_ref().filter(|_| org.zip(liaison).is_some_and(|(g, l)| !std::ptr::eq(l, &g.liaison)));
    route.organization = Some(o.to.clone());
    route.relationship = own_group.cloned().or_else(|| org.map(|g| g.acronym.clone()));
    route.rule = Some("outgoing");
    route.candidates = Vec::new();
    let ours = sender.and_then(normalize_address).is_some_and(|s| rel.is_ietf_side(&s));
    if route.sender_verified && ours && !managers.is_empty() {
        route.cc = coordinators.into_iter().filter(|c| !managers.contains(c)).collect();
        route.reason = format!("an outgoing statement to {}: its liaison manager is told", o.to);
        route.to = managers;
    } else {
        route.reason = if managers.is_empty() {
            format!("an outgoing statement to {}, which has no liaison manager: to the coordinators", o.to)
        } else {
            format!("an outgoing statement to {}, but not from a verified IETF sender: to the coordinators", o.to)
        };
        route.to = coordinators;
        route.cc = Vec::new();
    }
    route
}

#[cfg(test)]
mod tests {
    use liaisond_model::{DraftKind, NoHistory};

    use super::*;
    use crate::parse::Parsed;

    /// A message read and judged with the built-in relationships, trusting `mail.ietf.org`.
    fn read_and_judge(raw: &[u8]) -> (Relationships, Parsed, Analysis, Judgement) {
        let rel = Relationships::builtin();
        let identity =
            Identity { trusted_authserv_ids: vec!["mail.ietf.org".into()], ..Identity::from_relationships(&rel) };
        let parsed = Parsed::new(raw);
        let analysis = crate::read::read(
            &parsed,
            &rel,
            &|_| Err("no worker in this test".into()),
            &crate::budget::Budget::unlimited(),
        );
        let judgement = judge(&parsed.headers, &analysis, &rel, &identity, &NoHistory);
        (rel, parsed, analysis, judgement)
    }

    fn judged(raw: &[u8]) -> Judgement {
        read_and_judge(raw).3
    }

    /// What the responder plans for a message judged as in [`judged`].
    fn planned(raw: &[u8]) -> liaisond_model::Plan {
        use crate::respond::{AckPolicy, RecordedMessage, Responder, Templates};
        let (rel, parsed, analysis, judgement) = read_and_judge(raw);
        let verdict = judgement.verdict(analysis.sender.as_deref());
        let responder = Responder::new(
            AckPolicy::default(),
            std::time::Duration::from_secs(30 * 24 * 3600),
            1 << 20,
            Templates::builtin().expect("built-in templates"),
            "liaison-coordination@iab.org".into(),
            "liaison-coordination@iab.org".into(),
            "iab.org".into(),
        );
        let now: jiff::Timestamp = "2026-11-03T12:30:00Z".parse().expect("now");
        let incoming = RecordedMessage {
            tracking_id: Some("LS-2026-0042"),
            message: 1,
            verdict: &verdict,
            analysis: &analysis,
            headers: &parsed.headers,
            received: now,
            now,
            nonce: 1,
            size: raw.len() as u64,
            commands: &[],
        };
        responder.plan(&incoming, &rel, &|_| liaisond_model::AckCounts::default())
    }

    #[test]
    fn a_forged_statement_is_never_acknowledged_at_an_address_it_names() {
        // Regression (issue 13, high): the acknowledgement went to the body's reply address,
        // with the forger's title in its subject, whatever the verification said.
        let raw = include_bytes!("../../../fixtures/hostile/ack-to-a-third-party.eml");
        let plan = planned(raw);
        let why = plan.ack.as_ref().expect_err("no acknowledgement");
        assert!(why.contains("not in the From domain"), "{why}");
        assert!(plan.drafts.iter().all(|d| d.kind != DraftKind::Ack), "{plan:?}");
        // With an envelope sender in the From domain: a receipt there, with nothing of the message.
        let text = String::from_utf8_lossy(raw).replace("<bounces@evil.example>", "<Liaisons@ETSI.org>");
        let plan = planned(text.as_bytes());
        assert_eq!(plan.ack.as_deref(), Ok("liaisons@etsi.org"));
        let receipt = plan.drafts.iter().find(|d| d.kind == DraftKind::Ack).expect("a receipt");
        assert!(receipt.receipt);
        let all = format!("{:?}", receipt);
        for taken in ["watches", "evil.example", "victim", "third-party"] {
            assert!(!all.contains(taken), "{taken:?} in the receipt: {all}");
        }
    }

    #[test]
    fn a_message_with_several_authors_is_never_verified() {
        // Regression (issue 13): with two From fields mail-parser reads the last one, and a
        // trusted `dmarc=pass` for either made the other one "verified".
        for raw in [
            &include_bytes!("../../../fixtures/hostile/two-from-fields.eml")[..],
            include_bytes!("../../../fixtures/hostile/from-two-mailboxes.eml"),
        ] {
            let route = judged(raw).route;
            assert!(!route.sender_verified, "{}", route.verification);
            assert!(route.verification.contains("several From"), "{}", route.verification);
        }
        // The same message with one author is verified: the fixture's verdict is the rule's.
        let text = String::from_utf8_lossy(include_bytes!("../../../fixtures/hostile/from-two-mailboxes.eml"))
            .replace(", 3GPP Liaisons Coordinator <3GPPLiaison@etsi.org>", "");
        assert!(judged(text.as_bytes()).route.sender_verified);
    }

    #[test]
    fn a_quoted_semicolon_in_the_trusted_field_forges_no_pass() {
        // Regression (issue 13): the quoted envelope sender's `;dmarc=pass header.from=3gpp.org;`
        // was read as a result of its own, and won over the field's real `dmarc=fail`.
        let raw = include_bytes!("../../../fixtures/hostile/ar-quoted-semicolon.eml");
        let route = judged(raw).route;
        assert!(!route.sender_verified, "{}", route.verification);
        assert_eq!(route.verification, "mail.ietf.org reports dmarc=fail for 3gpp.org");
        assert_eq!(route.to, Relationships::builtin().coordinators(), "{}", route.reason);
        // The same message with DMARC passing is verified and goes to 3GPP's managers: the
        // fixture's verdict is the parser's, not something else in it.
        let text = String::from_utf8_lossy(raw).replace("dmarc=fail", "dmarc=pass");
        let route = judged(text.as_bytes()).route;
        assert!(route.sender_verified, "{}", route.verification);
        assert_eq!(route.relationship.as_deref(), Some("3gpp"), "{}", route.reason);
    }
}
