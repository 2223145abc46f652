//! Who hears about a message, and why (the second half of [`judge`](crate::judge)).
//!
//! **Architecture invariant: pure, no I/O.** Matching uses the relationships data in a fixed
//! order and records which rule decided: the sender's known role address, then its mail
//! domain, then the statement's own text (`from_org` and the organisations' markers). The
//! `From:` header is only a claim: the sender counts as verified only by the
//! `Authentication-Results` fields (RFC 8601) our own receiving servers put at the top of the
//! header ([`authres::trusted_block`]), when they report `dmarc=pass` for the From domain, or,
//! with no DMARC result, `dkim=pass` with a signing domain aligned with it (RFC 7489 §3.1.1,
//! relaxed). Anything doubtful in them (a field that does not parse, two DMARC results, a pass
//! that does not name the From domain) leaves the sender unverified. A statement goes to the
//! matched relationship's liaison manager(s) (primary and backup) with the coordinators in
//! copy; with no match, no manager, several candidates or an unverified sender, to the
//! coordinators, saying why.

use liaisond_model::{Class, Statement};
use serde::Serialize;

use crate::authres::{self, MethodResult, PValue, TrustedField};
use crate::relationships::{MatchRule, Organization, Relationships};

/// The routing decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The relationship that decided: the datatracker acronym of the organisation or group.
    pub relationship: Option<String>,
    /// The matched organisation's canonical name.
    pub organization: Option<String>,
    /// `address`, `domain` or `text`: which rule matched the organisation.
    pub rule: Option<&'static str>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reason: String,
    pub sender_verified: bool,
    /// How the sender's verification was decided.
    pub verification: String,
    /// With several possible organisations, their names (the coordinators decide).
    pub candidates: Vec<String>,
}

/// Everything routing looks at.
pub struct Input<'a> {
    pub class: Class,
    /// The `From:` address, normalised.
    pub sender: Option<&'a str>,
    pub statement: &'a Statement,
    /// Every header field (lower-case name, unfolded value), top first: the sender is verified
    /// by the `Authentication-Results` fields at the top.
    pub header_fields: &'a [(&'a str, &'a str)],
    /// Whether the message names exactly one author (one `From:` field, one mailbox).
    pub single_author: bool,
    /// The authserv-ids of the receiving servers we trust (our own MTA).
    pub trusted_authserv_ids: &'a [String],
    /// How many `Received` fields our own servers put above their `Authentication-Results`.
    pub own_received_fields: usize,
    /// For a follow-up: who handles its statement (from the store); else empty.
    pub statement_handlers: &'a [String],
}

/// Decides who is notified of one message.
pub fn route(input: &Input<'_>, rel: &Relationships) -> Route {
    let coordinators: Vec<String> = rel.coordinators().to_vec();
    let (verified, verification) = match input.sender {
        // RFC 7489 §6.6.1: a message with several authors cannot be verified as any of them.
        Some(_) if !input.single_author => {
            (false, "the message names several From fields or mailboxes; none is verified".to_string())
        }
        Some(sender) => {
            verify_sender(sender, input.header_fields, input.trusted_authserv_ids, input.own_received_fields)
        }
        None => (false, "the message has no From address".to_string()),
    };
    let mut route = Route {
        relationship: None,
        organization: None,
        rule: None,
        to: Vec::new(),
        cc: Vec::new(),
        reason: String::new(),
        sender_verified: verified,
        verification,
        candidates: Vec::new(),
    };
    match input.class {
        Class::Statement => {}
        Class::FollowUp if !input.statement_handlers.is_empty() => {
            route.to = input.statement_handlers.to_vec();
            route.cc = without(&coordinators, &route.to);
            route.reason = "a follow-up: to whoever handles its statement".into();
            return route;
        }
        Class::FollowUp => {
            route.to = coordinators;
            route.reason = "a follow-up to a statement whose handler is not known: to the coordinators".into();
            return route;
        }
        Class::Other => {
            route.to = coordinators;
            route.reason = "not a liaison statement: to the coordinators, unacknowledged".into();
            return route;
        }
        other => {
            route.reason = format!("no notification for {} (kept, listed in the digest)", other.as_str());
            return route;
        }
    }

    // Which organisation: address, then domain, then text.
    let sender = input.sender.unwrap_or_default();
    let text_orgs = text_candidates(input.statement, rel);
    let matched: Result<Option<Matched<'_>>, Vec<String>> = match rel.organization_by_sender(sender) {
        Some(m) if m.rule == MatchRule::Address => {
            Ok(Some((m.organization, m.group.map(|g| g.acronym.clone()), MatchRule::Address)))
        }
        Some(m) => {
            // A domain is weaker than the statement's own word: when the statement names
            // another organisation, both are candidates.
            let others: Vec<&Organization> =
                text_orgs.iter().copied().filter(|o| o.name != m.organization.name).collect();
            if others.is_empty() {
                Ok(Some((m.organization, None, MatchRule::Domain)))
            } else {
                let mut names = vec![m.organization.name.clone()];
                names.extend(others.iter().map(|o| o.name.clone()));
                Err(names)
            }
        }
        None => match text_orgs.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some((*one, None, MatchRule::Text))),
            several => Err(several.iter().map(|o| o.name.clone()).collect()),
        },
    };

    match matched {
        Err(candidates) => {
            route.to = coordinators;
            route.reason = format!("several organisations match ({}): the coordinators decide", candidates.join(", "));
            route.candidates = candidates;
        }
        Ok(None) => {
            route.to = coordinators;
            route.reason = "no known relationship matches the sender or the statement: to the coordinators".into();
        }
        Ok(Some((org, sender_group, rule))) => {
            let group = sender_group.or_else(|| {
                input.statement.from_groups.iter().find(|g| org.group(g).is_some()).map(|g| g.to_ascii_lowercase())
            });
            let liaison = org.liaison_for(group.as_deref());
            let relationship = match group.as_deref().and_then(|g| org.group(g)) {
                Some(g) if g.liaison.as_ref().is_some_and(|l| l.has_manager()) => g.acronym.clone(),
                _ => org.acronym.clone(),
            };
            route.relationship = Some(relationship.clone());
            route.organization = Some(org.name.clone());
            route.rule = Some(rule.as_str());
            let managers: Vec<String> = liaison.recipients().into_iter().map(str::to_string).collect();
            let not_to = if managers.is_empty() { String::new() } else { format!(", not to {}", managers.join(", ")) };
            if !route.sender_verified {
                route.to = coordinators;
                route.reason = format!(
                    "matched {} by {} but the sender is not verified ({}): to the coordinators{not_to}",
                    org.name,
                    rule.as_str(),
                    route.verification,
                );
            } else if rule == MatchRule::Text {
                // The sender proved only its own domain; that the statement names an
                // organisation is the sender's word, and must not reach that organisation's
                // managers as a verified statement of theirs.
                let domain = liaisond_model::address_domain(sender).unwrap_or_default();
                route.to = coordinators;
                route.reason =
                    format!("verified as {domain}, organisation by text ({}): to the coordinators{not_to}", org.name);
            } else if managers.is_empty() {
                route.to = coordinators;
                route.reason = format!(
                    "matched {} ({relationship}) by {}, which has no liaison manager: to the coordinators",
                    org.name,
                    rule.as_str()
                );
            } else {
                route.cc = without(&coordinators, &managers);
                route.to = managers;
                route.reason = format!(
                    "matched {} ({relationship}) by {}: to its liaison manager{}",
                    org.name,
                    rule.as_str(),
                    if route.to.len() > 1 { "s (primary and backup)" } else { "" }
                );
            }
        }
    }
    route
}

/// An organisation matched to the sender, with the group the sender's address belongs to.
type Matched<'a> = (&'a Organization, Option<String>, MatchRule);

/// The organisations the statement's text names: its `from_org`, and any organisation whose
/// marker appears in the title. Deduplicated, in order.
fn text_candidates<'r>(statement: &Statement, rel: &'r Relationships) -> Vec<&'r Organization> {
    let mut out: Vec<&Organization> = Vec::new();
    if let Some(o) = statement.from_org.as_deref().and_then(|n| rel.organization(n)) {
        out.push(o);
    }
    if out.is_empty()
        && let Some(title) = statement.title.as_deref()
    {
        for o in rel.organizations_by_marker(title) {
            if !out.iter().any(|x| x.name == o.name) {
                out.push(o);
            }
        }
    }
    out
}

fn without(list: &[String], remove: &[String]) -> Vec<String> {
    list.iter().filter(|a| !remove.iter().any(|r| r.eq_ignore_ascii_case(a))).cloned().collect()
}

/// Whether the sender's From domain was authenticated by a trusted receiving server, and why
/// (the reason is shown to the coordinators and recorded). `fields` is the whole header, top
/// first; only the block of trusted `Authentication-Results` fields at its top is read
/// ([`authres::trusted_block`]).
pub fn verify_sender(
    sender: &str,
    fields: &[(&str, &str)],
    trusted: &[String],
    own_received_fields: usize,
) -> (bool, String) {
    let Some(domain) = sender.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()) else {
        return (false, format!("{sender} is not an address"));
    };
    if trusted.is_empty() {
        return (false, "no trusted receiving server is configured (routing.trusted_authserv_ids)".into());
    }
    let block = authres::trusted_block(fields.iter().copied(), trusted, own_received_fields);
    if block.is_empty() {
        return (
            false,
            format!(
                "no Authentication-Results from a trusted server ({}) at the top of the header",
                trusted.join(", ")
            ),
        );
    }
    // Fail closed: a field of ours that cannot be read may hold the result that decides.
    let mut results: Vec<(&str, &MethodResult)> = Vec::new();
    for TrustedField { authserv_id, parsed } in &block {
        match parsed {
            Ok(ar) => results.extend(ar.results.iter().map(|r| (authserv_id.as_str(), r))),
            Err(e) => {
                return (false, format!("an Authentication-Results field from {authserv_id} could not be parsed: {e}"));
            }
        }
    }
    // DMARC (RFC 7489) decides when it was evaluated: one message has one DMARC result, so two
    // mean that something other than our DMARC filter wrote one of them.
    let dmarc: Vec<&(&str, &MethodResult)> = results.iter().filter(|(_, r)| r.method == "dmarc").collect();
    match dmarc.as_slice() {
        [] => {}
        // `none`: the domain publishes no DMARC policy (RFC 8601 §2.7.1 via RFC 7489), so
        // aligned DKIM below decides, as the "DMARC pass, or aligned DKIM" asks.
        [(_, r)] if r.result == "none" => {}
        [(id, r)] => {
            if r.result != "pass" {
                return (false, format!("{id} reports dmarc={} for {domain}", r.result));
            }
            // RFC 7489 §11.2: `header.from` is the domain DMARC evaluated; without it, what
            // passed is unknown.
            let Some(from) = r.property("header", "from").map(value_domain) else {
                return (false, format!("{id} reports dmarc=pass without header.from"));
            };
            if !from.eq_ignore_ascii_case(&domain) {
                return (false, format!("{id} reports dmarc=pass for {from}, not for the From domain {domain}"));
            }
            return (true, format!("DMARC pass for {domain} ({id})"));
        }
        several => {
            return (
                false,
                format!("{} DMARC results in the trusted Authentication-Results; one is expected", several.len()),
            );
        }
    }
    for (id, r) in &results {
        if r.method == "dkim" && r.result == "pass" {
            // The signing domain (`d=`), else the domain of the identity (`i=`, RFC 6376 §3.5).
            let d = r.property("header", "d").map(value_domain).or_else(|| {
                r.property("header", "i").and_then(|i| match i {
                    PValue::Address { domain, .. } => Some(domain.as_str()),
                    PValue::Value(v) => v.rsplit_once('@').map(|(_, d)| d),
                })
            });
            if let Some(d) = d
                && aligned(&d.to_ascii_lowercase(), &domain)
            {
                return (true, format!("DKIM pass for {d}, aligned with {domain} ({id})"));
            }
        }
    }
    let mut ids: Vec<&str> = block.iter().map(|f| f.authserv_id.as_str()).collect();
    ids.dedup();
    let summary: Vec<String> = results.iter().map(|(_, r)| format!("{}={}", r.method, r.result)).collect();
    (
        false,
        format!(
            "{} reports {} for {domain}",
            ids.join(", "),
            if summary.is_empty() { "nothing".into() } else { summary.join(" ") }
        ),
    )
}

/// The domain a property names: a domain-name value as written, or the domain of an address.
fn value_domain(value: &PValue) -> &str {
    match value {
        PValue::Value(v) => v,
        PValue::Address { domain, .. } => domain,
    }
}

/// Relaxed alignment (RFC 7489 §3.1.1), approximated without the public suffix list: the same
/// domain, or one a subdomain of the other.
fn aligned(a: &str, b: &str) -> bool {
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

#[cfg(test)]
mod tests {
    use liaisond_model::Purpose;

    use super::*;

    const TRUSTED: &str = "mail.ietf.org";

    fn statement(org: Option<&str>) -> Statement {
        Statement {
            title: Some("LS on DetNet".into()),
            purpose: Some(Purpose::Action),
            from_org: org.map(str::to_string),
            ..Statement::default()
        }
    }

    /// The header fields of a message whose top holds these Authentication-Results values.
    fn at_top<'a>(ar: &[&'a str]) -> Vec<(&'static str, &'a str)> {
        ar.iter().map(|v| ("authentication-results", *v)).collect()
    }

    fn route_of(sender: &str, st: &Statement, ar: &[&str]) -> Route {
        routed(Class::Statement, sender, st, ar, &[])
    }

    /// How a message of `class` from `sender`, under these Authentication-Results fields at
    /// the top, is routed with the built-in relationships, trusting [`TRUSTED`].
    fn routed(class: Class, sender: &str, st: &Statement, ar: &[&str], handlers: &[String]) -> Route {
        routed_with(&Relationships::builtin(), class, sender, st, ar, handlers)
    }

    fn routed_with(
        rel: &Relationships,
        class: Class,
        sender: &str,
        st: &Statement,
        ar: &[&str],
        handlers: &[String],
    ) -> Route {
        route(
            &Input {
                class,
                sender: Some(sender),
                statement: st,
                header_fields: &at_top(ar),
                single_author: true,
                trusted_authserv_ids: &[TRUSTED.to_string()],
                own_received_fields: 1,
                statement_handlers: handlers,
            },
            rel,
        )
    }

    fn pass(domain: &str) -> String {
        format!(
            "{TRUSTED}; dkim=pass header.d={domain}; spf=pass smtp.mailfrom={domain}; dmarc=pass header.from={domain}"
        )
    }

    /// `verify_sender` for a@3gpp.org with these header fields, trusting mail.ietf.org, one
    /// Received field of ours.
    fn verify(fields: &[(&str, &str)]) -> (bool, String) {
        verify_sender("a@3gpp.org", fields, &[TRUSTED.to_string()], 1)
    }

    /// `verify` with these Authentication-Results values at the top.
    fn verify_top(ar: &[&str]) -> (bool, String) {
        verify(&at_top(ar))
    }

    const OUR_RECEIVED: (&str, &str) = (
        "received",
        "from mail.evil.example (mail.evil.example [192.0.2.66]) by mail.ietf.org (Postfix) with ESMTPS id 4Lq7Tz0kQb \
         for <statements@ietf.org>; Tue, 03 Nov 2026 12:12:49 +0000",
    );
    const SENDER_RECEIVED: (&str, &str) = (
        "received",
        "from [10.0.0.5] (unknown [10.0.0.5]) by mail.evil.example (Postfix) with ESMTPSA id 77AB1 \
         for <statements@ietf.org>; Tue, 03 Nov 2026 12:12:47 +0000",
    );

    #[test]
    fn verification() {
        let t = [TRUSTED.to_string()];
        assert_eq!(verify_top(&[&pass("3gpp.org")]), (true, format!("DMARC pass for 3gpp.org ({TRUSTED})")));
        // (b) no field; an untrusted server's field.
        assert!(!verify_top(&[]).0);
        assert!(!verify_top(&["mx.evil.example; dmarc=pass header.from=3gpp.org"]).0);
        // (c) a forged field with our authserv-id below the real one does not count.
        let real = format!("{TRUSTED}; dmarc=fail header.from=3gpp.org");
        let forged = pass("3gpp.org");
        assert!(!verify_top(&[&real, &forged]).0);
        // (d) the attacker's own domain passing, with a forged From.
        let (verified, why) = verify_top(&[&pass("attacker.example")]);
        assert!(!verified);
        assert_eq!(why, "mail.ietf.org reports dmarc=pass for attacker.example, not for the From domain 3gpp.org");
        // Aligned DKIM alone; comments and case.
        assert!(
            verify_sender(
                "a@list.etsi.org",
                &at_top(&["Mail.IETF.org (v=1); DKIM=pass (good sig) header.d=ETSI.org"]),
                &t,
                1
            )
            .0
        );
        assert!(verify_top(&[&format!("{TRUSTED}; dkim=pass header.i=@sub.3gpp.org")]).0, "header.i");
        assert!(!verify_top(&[&format!("{TRUSTED}; dkim=pass header.d=3gpp.org.evil.example")]).0);
        assert!(!verify_top(&[&format!("{TRUSTED}; dkim=fail header.d=3gpp.org")]).0);
        assert!(!verify_top(&[&format!("{TRUSTED}; none")]).0);
        assert!(!verify_sender("a@3gpp.org", &at_top(&[&pass("3gpp.org")]), &[], 1).0, "nothing is trusted by default");
    }

    #[test]
    fn a_quoted_semicolon_forges_nothing() {
        // Regression (issue 13): splitting on every `;` read `dmarc=pass` out of the quoted
        // envelope sender, and it won over the field's real `dmarc=fail`.
        let field = format!(
            "{TRUSTED}; spf=pass smtp.mailfrom=\"x;dmarc=pass header.from=3gpp.org;\"@evil.example; \
             dmarc=fail (p=reject dis=none) header.from=3gpp.org"
        );
        assert_eq!(verify_top(&[&field]), (false, format!("{TRUSTED} reports dmarc=fail for 3gpp.org")));
    }

    #[test]
    fn parentheses_in_quoted_strings_and_comments() {
        // A `(` inside a quoted string opens no comment: the real pass after it counts
        // (it hid everything after it before)...
        let field = format!("{TRUSTED}; spf=pass smtp.mailfrom=\"a(b\"@3gpp.org; dmarc=pass header.from=3gpp.org");
        assert!(verify_top(&[&field]).0, "{:?}", verify_top(&[&field]));
        // ... and so does the real fail.
        let field = format!(
            "{TRUSTED}; spf=pass smtp.mailfrom=\"a(b\"@evil.example; dmarc=fail header.from=3gpp.org; \
             dkim=pass header.d=evil.example header.s=\")\""
        );
        assert!(!verify_top(&[&field]).0);
        // Regression: an envelope sender copied into a nested comment, its parentheses escaped
        // as quoted-pairs; ending the comment at the `\)` read the forged result.
        let field = format!(
            "{TRUSTED}; spf=pass ({TRUSTED} (v1): domain of x\\); dmarc=pass header.from=3gpp.org; \\(y@evil.example \
             designates 192.0.2.66 as permitted sender) smtp.mailfrom=evil.example; \
             dmarc=fail (p=reject (enforced)) header.from=3gpp.org"
        );
        assert_eq!(verify_top(&[&field]), (false, format!("{TRUSTED} reports dmarc=fail for 3gpp.org")));
    }

    #[test]
    fn doubtful_dmarc_results_verify_nothing() {
        // Regression: two DMARC results, the first one read.
        let two = format!("{TRUSTED}; dmarc=pass header.from=3gpp.org; dmarc=fail header.from=3gpp.org");
        assert_eq!(
            verify_top(&[&two]),
            (false, "2 DMARC results in the trusted Authentication-Results; one is expected".into())
        );
        // Also across the block's fields.
        let fail = format!("{TRUSTED}; dmarc=fail header.from=3gpp.org");
        assert!(!verify_top(&[&pass("3gpp.org"), &fail]).0);
        // Regression: a pass without header.from was taken to be for the From domain.
        let bare = format!("{TRUSTED}; dmarc=pass");
        assert_eq!(verify_top(&[&bare]), (false, format!("{TRUSTED} reports dmarc=pass without header.from")));
        // Regression: DKIM passing does not overrule DMARC failing.
        let field = format!("{TRUSTED}; dkim=pass header.d=3gpp.org; dmarc=fail header.from=3gpp.org");
        assert!(!verify_top(&[&field]).0);
        let field = format!("{TRUSTED}; dkim=pass header.d=3gpp.org; dmarc=temperror header.from=3gpp.org");
        assert!(!verify_top(&[&field]).0);
        // `none` (no DMARC policy published): aligned DKIM decides.
        let field = format!("{TRUSTED}; dkim=pass header.d=3gpp.org; dmarc=none header.from=3gpp.org");
        assert!(verify_top(&[&field]).0);
        let field = format!("{TRUSTED}; dkim=pass header.d=evil.example; dmarc=none header.from=3gpp.org");
        assert!(!verify_top(&[&field]).0);
    }

    #[test]
    fn an_unparsable_trusted_field_verifies_nothing() {
        // Regression: read as well as possible, this one said dmarc=pass.
        let field = format!("{TRUSTED}; dmarc=pass action=none header.from=3gpp.org");
        let (verified, why) = verify_top(&[&field]);
        assert!(!verified);
        assert!(
            why.starts_with(&format!("an Authentication-Results field from {TRUSTED} could not be parsed: ")),
            "{why}"
        );
        // Below a good field of the same block, too.
        let broken = format!("{TRUSTED}; spf=pass smtp.mailfrom=\"a@evil.example");
        assert!(!verify_top(&[&pass("3gpp.org"), &broken]).0);
        // An untrusted field that does not parse ends the block and is otherwise ignored.
        assert!(verify_top(&[&pass("3gpp.org"), "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=x.example"]).0);
    }

    #[test]
    fn opendkim_then_opendmarc() {
        // Regression: each adds its own field; only the topmost was read, and OpenDKIM's
        // pass for a third-party signer is not aligned. DMARC passed (by SPF).
        let dkim =
            format!("{TRUSTED}; dkim=pass (2048-bit key; unprotected) header.d=esp.example header.i=@esp.example");
        let dmarc = format!("{TRUSTED}; dmarc=pass (p=reject dis=none) header.from=3gpp.org");
        let fields = [("return-path", "<bounce@3gpp.org>"), ("delivered-to", "statements@ietf.org"), OUR_RECEIVED];
        let mut fields = fields.to_vec();
        fields.extend([("authentication-results", dkim.as_str()), ("authentication-results", dmarc.as_str())]);
        assert_eq!(verify(&fields), (true, format!("DMARC pass for 3gpp.org ({TRUSTED})")));
        // Either order.
        fields.swap(3, 4);
        assert!(verify(&fields).0);
    }

    #[test]
    fn only_the_fields_at_the_top_count() {
        let good = pass("3gpp.org");
        let ar = ("authentication-results", good.as_str());
        // Our Received above our field: read.
        assert!(verify(&[OUR_RECEIVED, ar, SENDER_RECEIVED]).0);
        // Regression: our MTA added none; the sender's own field, below its Received, was read.
        let (verified, why) = verify(&[OUR_RECEIVED, SENDER_RECEIVED, ar]);
        assert!(!verified);
        assert_eq!(
            why,
            format!("no Authentication-Results from a trusted server ({TRUSTED}) at the top of the header")
        );
        // Regression: with no Received of ours expected, a Received first ends the search.
        assert!(!verify_sender("a@3gpp.org", &[OUR_RECEIVED, ar], &[TRUSTED.to_string()], 0).0);
        assert!(verify_sender("a@3gpp.org", &[ar, OUR_RECEIVED], &[TRUSTED.to_string()], 0).0);
        // Two of ours when so configured.
        assert!(verify_sender("a@3gpp.org", &[OUR_RECEIVED, OUR_RECEIVED, ar], &[TRUSTED.to_string()], 2).0);
        assert!(!verify(&[OUR_RECEIVED, OUR_RECEIVED, ar]).0);
        // Below another server's field or another field: ignored.
        let other = ("authentication-results", "mx.example.net; dmarc=pass header.from=3gpp.org");
        assert!(!verify(&[OUR_RECEIVED, other, ar]).0);
        assert!(!verify(&[OUR_RECEIVED, ("subject", "hi"), ar]).0);
    }

    #[test]
    fn a_verified_sender_reaches_the_managers_with_the_coordinators_in_copy() {
        let rel = Relationships::builtin();
        let org = rel.organizations().iter().find(|o| o.has_manager()).expect("a managed organisation").clone();
        let domain = org.domains.first().expect("a domain").clone();
        let r = route_of(&format!("someone@{domain}"), &statement(None), &[&pass(&domain)]);
        assert!(r.sender_verified, "{r:?}");
        assert_eq!(r.rule, Some("domain"));
        assert_eq!(r.to, org.liaison_for(None).recipients());
        assert_eq!(r.cc, rel.coordinators());
        assert_eq!(r.organization.as_deref(), Some(org.name.as_str()));
    }

    #[test]
    fn an_organisation_named_only_in_the_text_does_not_reach_its_managers() {
        // Regression (issue 13): a sender verified for its own domain, whose statement named a
        // managed organisation, reached that organisation's managers as "verified".
        let rel = Relationships::builtin();
        let org = rel.organizations().iter().find(|o| o.has_manager()).expect("a managed organisation").clone();
        let r = route_of("someone@example.invalid", &statement(Some(&org.name)), &[&pass("example.invalid")]);
        assert!(r.sender_verified, "{r:?}");
        assert_eq!(r.rule, Some("text"));
        assert_eq!(r.to, rel.coordinators());
        assert!(
            r.reason.starts_with(&format!("verified as example.invalid, organisation by text ({})", org.name)),
            "{}",
            r.reason
        );
    }

    #[test]
    fn look_alike_domains_never_match() {
        // Regression (issue 13): a domain is compared as ASCII; a Unicode look-alike (Cyrillic
        // і, the Kelvin sign K that lower-cases to k, fullwidth letters) or its punycode is
        // another domain. The domain has an `i` and a `k`, so that every look-alike is made.
        let domain = "kiwi-sdo.example";
        let rel = Relationships::from_str_at(
            &format!(
                "[ietf]\ncoordinators = [\"coord@iab.org\"]\n\n[[organization]]\nname = \"Kiwi SDO\"\n\
                 acronym = \"kiwi-sdo\"\ndomains = [\"{domain}\"]\n\
                 managers = [{{ name = \"M\", email = \"m@example.org\" }}]\n"
            ),
            std::path::Path::new("test.toml"),
        )
        .expect("relationships");
        let route_of = |sender: &str| {
            routed_with(
                &rel,
                Class::Statement,
                sender,
                &statement(None),
                &[&pass(sender.rsplit_once('@').map_or("", |(_, d)| d))],
                &[],
            )
        };
        // The real domain reaches the manager: what the look-alikes must not.
        assert_eq!(route_of(&format!("someone@{domain}")).to, ["m@example.org"]);
        let fakes = [
            domain.replacen('i', "\u{456}", 1),
            domain.replacen('k', "\u{212a}", 1),
            domain.to_uppercase().replacen('K', "\u{212a}", 1),
            domain
                .chars()
                .map(|c| if c.is_ascii_lowercase() { char::from_u32(c as u32 - 0x61 + 0xff41).unwrap_or(c) } else { c })
                .collect(),
            format!("xn--{domain}"),
        ];
        for fake in fakes {
            assert!(!fake.eq_ignore_ascii_case(domain), "{fake} is no look-alike");
            let r = route_of(&format!("someone@{fake}"));
            assert!(r.organization.is_none() && r.to == rel.coordinators(), "{fake}: {r:?}");
        }
    }

    #[test]
    fn unverified_unknown_and_ambiguous_go_to_the_coordinators() {
        let rel = Relationships::builtin();
        let coordinators = rel.coordinators().to_vec();
        let managed = rel.organizations().iter().find(|o| o.has_manager()).expect("managed").name.clone();
        // Spoofed: names a managed organisation, no DMARC pass.
        let r = route_of("manager@example.invalid", &statement(Some(&managed)), &[]);
        assert!(!r.sender_verified);
        assert_eq!(r.to, coordinators);
        assert!(r.reason.contains("not verified"), "{}", r.reason);
        // Unknown.
        let r = route_of("x@example.invalid", &statement(None), &[&pass("example.invalid")]);
        assert_eq!(r.to, coordinators);
        assert!(r.reason.contains("no known relationship"), "{}", r.reason);
        // Domain of one organisation, text of another: candidates.
        let r = route_of("someone@etsi.org", &statement(Some("ITU-T")), &[&pass("etsi.org")]);
        assert_eq!(r.to, coordinators);
        assert!(r.candidates.len() >= 2, "{r:?}");
    }

    #[test]
    fn a_follow_up_goes_to_whoever_handles_its_statement() {
        let st = statement(None);
        let rel = Relationships::builtin();
        let follow_up = |handlers: &[String]| routed(Class::FollowUp, "a@b.example", &st, &[], handlers);
        let handlers = vec!["manager@example.org".to_string()];
        let r = follow_up(&handlers);
        assert_eq!((r.to, r.cc), (handlers, rel.coordinators().to_vec()));
        assert_eq!(follow_up(&[]).to, rel.coordinators(), "unknown handler: the coordinators");
    }

    #[test]
    fn automatic_mail_is_not_routed() {
        for class in [Class::AutoReply, Class::Bounce, Class::List, Class::OwnMail, Class::Duplicate] {
            let r = routed(class, "a@b.example", &statement(None), &[], &[]);
            assert!(r.to.is_empty(), "{class:?}");
        }
    }
}
