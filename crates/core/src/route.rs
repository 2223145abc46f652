//! Who hears about a message, and why (the second half of [`judge`](crate::judge)).
//!
//! **Architecture invariant: pure, no I/O.** Matching uses the relationships data in a fixed
//! order and records which rule decided: the sender's known role address, then its mail
//! domain, then the statement's own text (`from_org` and the organisations' markers). The
//! `From:` header is only a claim: the sender counts as verified when the topmost
//! `Authentication-Results` field (RFC 8601) whose authserv-id is one of the configured trusted
//! receiving servers says `dmarc=pass` for the From domain, or `dkim=pass` with a signing domain
//! aligned with it (RFC 7489 §3.1.1, relaxed). A statement goes to the matched relationship's
//! liaison manager(s) (primary and backup) with the coordinators in copy; with no match, no
//! manager, several candidates or an unverified sender, to the coordinators, saying why.

use liaisond_model::{Class, Statement};
use serde::Serialize;

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
    /// Every `Authentication-Results` field, top first.
    pub authentication_results: &'a [&'a str],
    /// Whether the message names exactly one author (one `From:` field, one mailbox).
    pub single_author: bool,
    /// The authserv-ids of the receiving servers we trust (our own MTA).
    pub trusted_authserv_ids: &'a [String],
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
        Some(sender) => verify_sender(sender, input.authentication_results, input.trusted_authserv_ids),
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
            if !route.sender_verified {
                route.to = coordinators;
                route.reason = format!(
                    "matched {} by {} but the sender is not verified ({}): to the coordinators{}",
                    org.name,
                    rule.as_str(),
                    route.verification,
                    if managers.is_empty() { String::new() } else { format!(", not to {}", managers.join(", ")) }
                );
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

/// One `Authentication-Results` field, parsed (RFC 8601 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthResults {
    authserv_id: String,
    results: Vec<MethodResult>,
}

/// `(method, result, properties)`, e.g. `("dkim", "pass", [("header.d", "ietf.org")])`.
type MethodResult = (String, String, Vec<(String, String)>);

fn parse_authentication_results(value: &str) -> Option<AuthResults> {
    let cleaned = strip_comments(value);
    let mut parts = cleaned.split(';');
    let authserv_id = parts.next()?.split_whitespace().next()?.to_ascii_lowercase();
    let mut results = Vec::new();
    for part in parts {
        let mut tokens = part.split_whitespace();
        let Some((method, result)) = tokens.next().and_then(|t| t.split_once('=')) else { continue };
        let props = tokens
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim_matches('"').to_ascii_lowercase()))
            .collect();
        results.push((method.to_ascii_lowercase(), result.to_ascii_lowercase(), props));
    }
    Some(AuthResults { authserv_id, results })
}

/// RFC 5322 comments `( ... )`, nested, removed.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether the sender's From domain was authenticated by a trusted receiving server, and why.
pub fn verify_sender(sender: &str, fields: &[&str], trusted: &[String]) -> (bool, String) {
    let Some(domain) = sender.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()) else {
        return (false, format!("{sender} is not an address"));
    };
    if trusted.is_empty() {
        return (false, "no trusted receiving server is configured (routing.trusted_authserv_ids)".into());
    }
    // The topmost field from a trusted server is the one it added; any lower one with the same
    // authserv-id came with the message from outside and is ignored (RFC 8601 §5).
    let Some(ar) = fields
        .iter()
        .filter_map(|f| parse_authentication_results(f))
        .find(|ar| trusted.iter().any(|t| t.eq_ignore_ascii_case(&ar.authserv_id)))
    else {
        return (false, "no Authentication-Results from a trusted server".into());
    };
    let prop = |props: &Vec<(String, String)>, key: &str| props.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    for (method, result, props) in &ar.results {
        if method == "dmarc" && result == "pass" {
            let from = prop(props, "header.from").unwrap_or_else(|| domain.clone());
            if from == domain {
                return (true, format!("DMARC pass for {domain} ({})", ar.authserv_id));
            }
        }
    }
    for (method, result, props) in &ar.results {
        if method == "dkim" && result == "pass" {
            let d = prop(props, "header.d")
                .or_else(|| prop(props, "header.i").and_then(|i| i.rsplit_once('@').map(|(_, d)| d.to_string())));
            if let Some(d) = d
                && aligned(&d, &domain)
            {
                return (true, format!("DKIM pass for {d}, aligned with {domain} ({})", ar.authserv_id));
            }
        }
    }
    let summary: Vec<String> = ar.results.iter().map(|(m, r, _)| format!("{m}={r}")).collect();
    (
        false,
        format!(
            "{} reports {} for {domain}",
            ar.authserv_id,
            if summary.is_empty() { "nothing".into() } else { summary.join(" ") }
        ),
    )
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

    fn route_of(sender: &str, st: &Statement, ar: &[&str]) -> Route {
        route(
            &Input {
                class: Class::Statement,
                sender: Some(sender),
                statement: st,
                authentication_results: ar,
                single_author: true,
                trusted_authserv_ids: &[TRUSTED.to_string()],
                statement_handlers: &[],
            },
            &Relationships::builtin(),
        )
    }

    fn pass(domain: &str) -> String {
        format!(
            "{TRUSTED}; dkim=pass header.d={domain}; spf=pass smtp.mailfrom={domain}; dmarc=pass header.from={domain}"
        )
    }

    #[test]
    fn verification() {
        let t = [TRUSTED.to_string()];
        assert!(verify_sender("a@3gpp.org", &[&pass("3gpp.org")], &t).0);
        // (b) no field; an untrusted server's field.
        assert!(!verify_sender("a@3gpp.org", &[], &t).0);
        assert!(!verify_sender("a@3gpp.org", &["mx.evil.example; dmarc=pass header.from=3gpp.org"], &t).0);
        // (c) a forged field with our authserv-id below the real one does not count.
        let real = format!("{TRUSTED}; dmarc=fail header.from=3gpp.org");
        let forged = pass("3gpp.org");
        assert!(!verify_sender("a@3gpp.org", &[&real, &forged], &t).0);
        // (d) the attacker's own domain passing, with a forged From.
        assert!(!verify_sender("a@3gpp.org", &[&pass("attacker.example")], &t).0);
        // Aligned DKIM alone; comments and case.
        assert!(
            verify_sender("a@list.etsi.org", &["Mail.IETF.org (v=1); dkim=pass (good sig) header.d=etsi.org"], &t).0
        );
        assert!(!verify_sender("a@3gpp.org", &[&pass("3gpp.org")], &[]).0, "nothing is trusted by default");
    }

    #[test]
    fn a_verified_sender_reaches_the_managers_with_the_coordinators_in_copy() {
        let rel = Relationships::builtin();
        let org = rel.organizations().iter().find(|o| o.has_manager()).expect("a managed organisation").clone();
        let domain_sender = format!("someone@{}", "example.invalid");
        // By text: the statement names the organisation; the sender's own domain is verified.
        let r = route_of(&domain_sender, &statement(Some(&org.name)), &[&pass("example.invalid")]);
        assert!(r.sender_verified, "{r:?}");
        assert_eq!(r.rule, Some("text"));
        assert_eq!(r.to, org.liaison_for(None).recipients());
        assert_eq!(r.cc, rel.coordinators());
        assert_eq!(r.organization.as_deref(), Some(org.name.as_str()));
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
        let follow_up = |handlers: &[String]| {
            route(
                &Input {
                    class: Class::FollowUp,
                    sender: Some("a@b.example"),
                    statement: &st,
                    authentication_results: &[],
                    single_author: true,
                    trusted_authserv_ids: &[],
                    statement_handlers: handlers,
                },
                &rel,
            )
        };
        let handlers = vec!["manager@example.org".to_string()];
        let r = follow_up(&handlers);
        assert_eq!((r.to, r.cc), (handlers, rel.coordinators().to_vec()));
        assert_eq!(follow_up(&[]).to, rel.coordinators(), "unknown handler: the coordinators");
    }

    #[test]
    fn automatic_mail_is_not_routed() {
        for class in [Class::AutoReply, Class::Bounce, Class::List, Class::OwnMail, Class::Duplicate] {
            let st = statement(None);
            let r = route(
                &Input {
                    class,
                    sender: Some("a@b.example"),
                    statement: &st,
                    authentication_results: &[],
                    single_author: true,
                    trusted_authserv_ids: &[],
                    statement_handlers: &[],
                },
                &Relationships::builtin(),
            );
            assert!(r.to.is_empty(), "{class:?}");
        }
    }
}
