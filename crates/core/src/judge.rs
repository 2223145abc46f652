//! Stage 3: judging a message that was read: its class (against what the history knows of
//! earlier statements), its route, and whether it answers the statement it follows up.
//!
//! [`judge`] is the one judge path: the daemon calls it inside the store's recording
//! transaction, `liaisond parse` with no history, and `liaisond route --dry-run` against the
//! store's history without the statement itself, so the three cannot disagree.

use liaisond_model::{Class, History, Purpose, Verdict};
use serde::Serialize;

use crate::classify::{self, Classification, Ours};
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
}

impl Identity {
    /// Without a configured `[mail]` identity: the relationships data's first own address
    /// (else `liaisond@localhost`), and no trusted authserv-id.
    pub fn from_relationships(rel: &Relationships) -> Identity {
        let from = rel.own_addresses().first().cloned().unwrap_or_else(|| "liaisond@localhost".into());
        let domain = from.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
        Identity { ours: Ours { from, message_id_domain: domain }, trusted_authserv_ids: Vec::new() }
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
    let authentication_results: Vec<&str> = headers.all("authentication-results").collect();
    let handlers = classification.related.as_ref().map(|k| k.handlers.clone()).unwrap_or_default();
    let route = route::route(
        &route::Input {
            class: classification.class,
            sender: analysis.sender.as_deref(),
            statement: &analysis.statement,
            authentication_results: &authentication_results,
            single_author: headers.single_author(),
            trusted_authserv_ids: &identity.trusted_authserv_ids,
            statement_handlers: &handlers,
        },
        rel,
    );
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
    Judgement { classification, route, answers }
}

#[cfg(test)]
mod tests {
    use liaisond_model::NoHistory;

    use super::*;
    use crate::parse::Parsed;

    /// How a message is judged with the built-in relationships, trusting `mail.ietf.org`.
    fn judged(raw: &[u8]) -> Judgement {
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
        judge(&parsed.headers, &analysis, &rel, &identity, &NoHistory)
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
}
