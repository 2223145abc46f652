//! What kind of message this is, and why (the first half of [`judge`](crate::judge)).
//!
//! **Architecture invariant: pure, no I/O.** The inputs are the raw header section, what was read
//! from the message ([`Statement`]), the relationships data, our own identity, and a [`History`]:
//! answers about earlier messages, which the daemon looks up in the store and `liaisond parse`
//! leaves empty.
//!
//! The checks run in a fixed order and the first that applies decides; each gives its reason:
//! 1. `own_mail`: mail liaisond sent (our loop header, our Message-ID form, our sending address);
//! 2. `bounce`: a delivery report (RFC 3464 `multipart/report; report-type=delivery-status`),
//!    `MAILER-DAEMON`/`postmaster`, or an empty Return-Path without an auto-reply marker;
//! 3. `duplicate` / `statement` for the datatracker's "New Liaison Statement" copies (before the
//!    automatic-mail checks: the datatracker is a robot, but its copy is a statement);
//! 4. `auto_reply`: `Auto-Submitted` other than `no` (RFC 3834 §5), vendor out-of-office headers;
//! 5. `follow_up`: a known tracking ID in the subject, or `In-Reply-To`/`References` naming mail
//!    we sent or a stored statement;
//! 6. `duplicate`: the Message-ID of a statement already held (another alias delivered it too);
//! 7. `list`: `List-Id` and other `List-*` fields (RFC 2369, RFC 2919), `Precedence:
//!    list|bulk|junk`, `Mailing-List`; except a statement from a known organisation sent
//!    through a list (3GPP's lists at ETSI): that stays a `statement`, with no acknowledgement;
//! 8. `statement` when the message reads like one (enough statement fields), else `other`.

use std::sync::LazyLock;

use liaisond_model::{
    CheckInRequest, Class, DatatrackerRecord, History, KnownStatement, Purpose, Statement, normalize_address,
};
use regex::Regex;
use serde::Serialize;

use crate::direction::{self, Outgoing};
use crate::parse::Headers;
use crate::relationships::Relationships;
pub use crate::tracking::{MAX_TRACKING_IDS, tracking_ids_in};

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub class: Class,
    pub reason: String,
    /// The statement a follow-up or duplicate belongs to.
    pub related: Option<KnownStatement>,
    /// For a `statement` that must not be acknowledged whatever else holds (sent through a
    /// list, or by an organisation that asked for no acknowledgements), why.
    pub no_ack: Option<String>,
    /// A follow-up that is the datatracker's posting of a reply to its statement ("In
    /// Response", naming the statement as its referenced liaison).
    pub datatracker_reply: bool,
    /// The statement's record in the datatracker, when this is its "New Liaison Statement"
    /// notice.
    pub datatracker_record: Option<DatatrackerRecord>,
    /// For a `statement`: one the IETF sends to another body, not one it received.
    pub outgoing: Option<Outgoing>,
    /// For an incoming `statement`: the open outgoing statement it answers.
    pub answers_outgoing: Option<KnownStatement>,
    /// For a `follow_up`: the yearly check-in request it answers.
    pub check_in: Option<CheckInRequest>,
    /// `related` was found by a tracking ID in the body only (a quoted digest names many): a
    /// command without its own tracking ID does not act on it.
    pub related_in_body: bool,
}

/// Who we are, to recognise our own mail coming back (R41).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ours {
    /// The address liaisond sends from (normalised).
    pub from: String,
    /// The domain of the Message-IDs liaisond gives its mail (`<liaisond.…@domain>`).
    pub message_id_domain: String,
}

/// The header liaisond puts on everything it sends (its value is the kind of mail; only its
/// presence is checked).
pub const LOOP_HEADER: &str = "X-Liaisond-Loop";
/// The header naming the statement a mail liaisond sent is about (`LS-2026-0042`), for the
/// reader's mail filters.
pub const TRACKING_HEADER: &str = "X-Liaison-Tracking-ID";
/// The local-part prefix of our Message-IDs.
pub const MESSAGE_ID_PREFIX: &str = "liaisond.";

/// The held statement a reply names: a tracking ID in its `related` field or its
/// `Referenced liaison:` line, else the title written on that line (`Referenced liaison:
/// <title> (<datatracker URL>)`; `understand` keeps only the URL in `related`).
fn referenced_statement(st: &Statement, history: &dyn History) -> Option<KnownStatement> {
    let line = st.body.lines().find_map(|l| {
        let l = l.trim();
        l.get(..19).filter(|p| p.eq_ignore_ascii_case("referenced liaison:")).map(|_| l[19..].trim())
    });
    let texts = st.related.iter().map(String::as_str).chain(line);
    if let Some(known) = texts.clone().flat_map(tracking_ids_in).find_map(|id| history.by_tracking_id(&id)) {
        return Some(known);
    }
    let title = line?.split(" (http").next()?.trim();
    (!title.is_empty() && !title.starts_with("http")).then(|| history.by_title(title)).flatten()
}

/// Everything classification looks at.
pub struct Input<'a> {
    pub headers: &'a Headers,
    pub subject: Option<&'a str>,
    /// The `From:` address (any case; `Name <address>` accepted).
    pub sender: Option<&'a str>,
    pub statement: &'a Statement,
    /// Whether an attachment yielded text (a statement usually is one).
    pub has_document: bool,
}

/// Classifies one message; a statement's direction too: one the IETF sends (outgoing: not
/// acknowledged, and the other body's answer is awaited), or one received that answers an
/// outgoing statement.
pub fn classify(input: &Input<'_>, rel: &Relationships, ours: &Ours, history: &dyn History) -> Classification {
    let mut c = classify_message(input, rel, ours, history);
    if c.class == Class::Statement {
        match direction::outgoing(&input.statement.body, rel) {
            Some(o) => {
                c.reason = format!("{}; an outgoing statement, from {} to {}", c.reason, o.from, o.to);
                c.no_ack = Some("an outgoing statement: the IETF sent it".into());
                c.outgoing = Some(o);
            }
            None => c.answers_outgoing = direction::answered_outgoing(input.statement, history),
        }
    }
    c
}

fn classify_message(input: &Input<'_>, rel: &Relationships, ours: &Ours, history: &dyn History) -> Classification {
    let h = input.headers;
    let verdict = |class: Class, reason: String| Classification {
        class,
        reason,
        related: None,
        no_ack: None,
        datatracker_reply: false,
        datatracker_record: None,
        outgoing: None,
        answers_outgoing: None,
        check_in: None,
        related_in_body: false,
    };
    // About a statement held (its reason, naming it, is written before it moves in).
    let about = |class: Class, reason: String, known: KnownStatement| Classification {
        related: Some(known),
        ..verdict(class, reason)
    };
    // Compared with our address and matched on its local part: normalised (lower case) here,
    // whatever form the caller has it in.
    let sender = input.sender.and_then(normalize_address).unwrap_or_default();
    let sender = sender.as_str();
    let subject = input.subject.unwrap_or_default();

    // 1. Our own mail (R41).
    if let Some(v) = h.get(&LOOP_HEADER.to_ascii_lowercase()) {
        return verdict(Class::OwnMail, format!("it carries our {LOOP_HEADER} header ({v})"));
    }
    if let Some(id) = h.message_ids("message-id").first()
        && is_our_message_id(id, ours)
    {
        return verdict(Class::OwnMail, format!("its Message-ID <{id}> is one liaisond gives its own mail"));
    }
    if !sender.is_empty() && sender == ours.from && !rel.is_datatracker_sender(sender) {
        return verdict(Class::OwnMail, format!("it is from our own sending address {sender}"));
    }

    // 2. Delivery reports (R39).
    if let Some(ct) = h.get("content-type") {
        let ct = ct.to_ascii_lowercase();
        if ct.starts_with("multipart/report") && ct.contains("delivery-status") {
            return verdict(Class::Bounce, "a delivery status notification (multipart/report, RFC 3464)".into());
        }
    }
    let local = sender.split('@').next().unwrap_or_default();
    if matches!(local, "mailer-daemon" | "postmaster") {
        return verdict(Class::Bounce, format!("from {sender}, a mail system"));
    }

    // 3. The datatracker's copy of a statement: a robot's mail, but a statement (or a copy of
    //    one already held).
    if rel.is_datatracker_sender(sender) && subject.to_ascii_lowercase().contains("new liaison statement") {
        let record = crate::datatracker::record_in_notice(&input.statement.body);
        // A reply posted in the datatracker to a statement we hold: "In Response", naming it
        // as the referenced liaison (by its title, or by our tracking ID when the poster
        // wrote it in).
        // (A reply to a statement the IETF sent is a statement of its own: see `classify`.)
        if input.statement.purpose == Some(Purpose::Response)
            && let Some(known) = referenced_statement(input.statement, history).filter(|k| !k.outgoing)
        {
            return Classification {
                datatracker_reply: true,
                ..about(Class::FollowUp, format!("the datatracker's notice of a reply to {}", known.tracking_id), known)
            };
        }
        // The notice of a statement we hold (it was mailed to us first): its record there.
        if let (Some(title), Some(org)) = (input.statement.title.as_deref(), input.statement.from_org.as_deref())
            && let Some(known) = history.by_notice(title, org, record.as_ref().map(|r| r.url.as_str()))
        {
            let recorded = record.as_ref().map_or(String::new(), |r| format!(", recorded as {}", r.url));
            return Classification {
                datatracker_record: record,
                ..about(
                    Class::Duplicate,
                    format!("the datatracker's notice of {} (same title, from {org}){recorded}", known.tracking_id),
                    known,
                )
            };
        }
        return Classification {
            no_ack: Some("the datatracker already confirmed it to the submitter".into()),
            datatracker_record: record,
            ..verdict(
                Class::Statement,
                "the datatracker's \"New Liaison Statement\" notice of a statement we do not hold yet".into(),
            )
        };
    }

    // 4. Automatic replies (R36, R37, R40).
    if let Some(reason) = automatic_reply(h, subject) {
        return verdict(Class::AutoReply, reason);
    }
    if h.get("return-path").is_some_and(|v| v.trim() == "<>" || v.trim().is_empty()) {
        return verdict(Class::Bounce, "an empty Return-Path (null sender): a mail system's message".into());
    }

    // 5. Follow-ups: a tracking ID we know, or threading to mail we know. A reply to the
    //    yearly check-in request first: the manager's report may name statements.
    let mut thread = h.message_ids("in-reply-to");
    thread.extend(h.message_ids("references"));
    if let Some(request) = (!thread.is_empty()).then(|| history.check_in_request(&thread)).flatten() {
        return Classification {
            reason: format!("it answers the yearly check-in request to {}", request.manager),
            check_in: Some(request),
            ..verdict(Class::FollowUp, String::new())
        };
    }
    // The IETF side may name the statement in the body of its reply rather than the subject.
    let in_subject = tracking_ids_in(subject);
    let mut named = in_subject.clone();
    if rel.is_ietf_side(sender) {
        for id in tracking_ids_in(&input.statement.body) {
            if named.len() < MAX_TRACKING_IDS && !named.contains(&id) {
                named.push(id);
            }
        }
    }
    for id in named {
        if let Some(known) = history.by_tracking_id(&id) {
            return Classification {
                related_in_body: !in_subject.contains(&id),
                ..about(Class::FollowUp, format!("it names {id}"), known)
            };
        }
    }
    if !thread.is_empty() {
        if let Some(known) = history.by_thread(&thread) {
            return about(Class::FollowUp, format!("it replies to mail about {}", known.tracking_id), known);
        }
        if let Some(id) = thread.iter().find(|id| is_our_message_id(id, ours)) {
            return verdict(Class::FollowUp, format!("it replies to our message <{id}>, whose statement is not known"));
        }
    }

    // 6. The same Message-ID as a statement already held (delivered through another alias).
    if let Some(id) = h.message_ids("message-id").first()
        && let Some(known) = history.by_message_id(id)
    {
        return about(
            Class::Duplicate,
            format!("the same Message-ID as {} (delivered again, through another address)", known.tracking_id),
            known,
        );
    }

    // 7 and 8. Lists, statements, the rest.
    let list = list_marker(h);
    let evidence = statement_evidence(input);
    let known_sender = rel.organization_by_sender(sender).is_some();
    // The statement's own mail, after the datatracker's notice of it brought it first (the
    // submitter's mail and the datatracker's notice arrive in either order).
    if evidence.len() >= 2
        && (list.is_none() || known_sender)
        && let (Some(title), Some(org)) = (input.statement.title.as_deref(), input.statement.from_org.as_deref())
        && let Some(known) = history.recorded_recently(title, org)
    {
        return about(
            Class::Duplicate,
            format!(
                "the statement recorded as {} (same title, from {org}, already in the datatracker)",
                known.tracking_id
            ),
            known,
        );
    }
    match list {
        Some(marker) if known_sender && evidence.len() >= 2 => Classification {
            no_ack: Some(format!("sent through a mailing list ({marker})")),
            ..verdict(
                Class::Statement,
                format!("reads like a statement ({}) from a known organisation, through a list", evidence.join(", ")),
            )
        },
        Some(marker) => verdict(Class::List, format!("list or bulk mail ({marker})")),
        None if evidence.len() >= 2 => {
            verdict(Class::Statement, format!("reads like a liaison statement ({})", evidence.join(", ")))
        }
        None => verdict(
            Class::Other,
            if evidence.is_empty() {
                "nothing in it reads like a liaison statement".into()
            } else {
                format!("too little reads like a liaison statement (only {})", evidence.join(", "))
            },
        ),
    }
}

fn is_our_message_id(id: &str, ours: &Ours) -> bool {
    match id.rsplit_once('@') {
        Some((local, domain)) => {
            local.starts_with(MESSAGE_ID_PREFIX) && domain.eq_ignore_ascii_case(&ours.message_id_domain)
        }
        None => false,
    }
}

/// Why this is an automatic reply, if it is one.
fn automatic_reply(h: &Headers, subject: &str) -> Option<String> {
    // RFC 3834 §5: any value but "no" (parameters after ';' do not count).
    if let Some(v) = h.get("auto-submitted") {
        let value = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if value != "no" && !value.is_empty() {
            return Some(format!("Auto-Submitted: {value} (RFC 3834)"));
        }
    }
    for name in ["x-autoreply", "x-autorespond", "x-autoresponder", "x-autogenerated"] {
        if h.has(name) {
            return Some(format!("an {name} header (an autoresponder)"));
        }
    }
    if h.get("precedence").is_some_and(|v| v.trim().eq_ignore_ascii_case("auto_reply")) {
        return Some("Precedence: auto_reply".into());
    }
    if h.has("x-ms-exchange-inbox-rules-loop") && h.has("x-auto-response-suppress") {
        return Some("an Exchange inbox rule's reply (X-MS-Exchange-Inbox-Rules-Loop)".into());
    }
    if h.all("delivered-to").any(|v| v.trim().eq_ignore_ascii_case("autoresponder")) {
        return Some("Delivered-To: Autoresponder".into());
    }
    let s = subject.trim_start().to_ascii_lowercase();
    for prefix in [
        "automatic reply:",
        "auto-reply:",
        "autoreply:",
        "auto reply:",
        "out of office:",
        "out of office reply",
        "abwesenheitsnotiz:",
        "réponse automatique",
    ] {
        if s.starts_with(prefix) {
            return Some(format!("its subject starts with an out-of-office prefix ({prefix:?})"));
        }
    }
    None
}

/// What marks list or bulk mail (RFC 2369, RFC 2919, `Precedence`).
fn list_marker(h: &Headers) -> Option<String> {
    if let Some(v) = h.get("list-id") {
        return Some(format!("List-Id: {v}"));
    }
    for name in ["list-post", "list-unsubscribe", "list-help", "list-archive", "list-subscribe", "mailing-list"] {
        if h.has(name) {
            return Some(format!("a {name} header"));
        }
    }
    if let Some(v) = h.get("precedence") {
        let p = v.trim().to_ascii_lowercase();
        if matches!(p.as_str(), "list" | "bulk" | "junk") {
            return Some(format!("Precedence: {p}"));
        }
    }
    None
}

/// What in the message reads like a liaison statement.
fn statement_evidence(input: &Input<'_>) -> Vec<&'static str> {
    let s = input.statement;
    let mut found = Vec::new();
    if s.purpose.is_some() {
        found.push("a purpose");
    }
    if s.deadline.is_some() {
        found.push("a deadline");
    }
    if !s.to_groups.is_empty() {
        found.push("addressed groups");
    }
    if s.from_org.is_some() {
        found.push("a sending organisation");
    }
    if !s.other_identifiers.is_empty() {
        found.push("a document number");
    }
    let subject = input.subject.unwrap_or_default().to_ascii_lowercase();
    if subject.contains("liaison") || LS_WORD.is_match(&subject) {
        found.push("\"liaison\" or \"LS\" in the subject");
    }
    if input.has_document {
        found.push("an attached document");
    }
    found
}

static LS_WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)(^|[^a-z])ls([^a-z]|$)").expect("static regex"));

#[cfg(test)]
mod tests {
    use liaisond_model::NoHistory;

    use super::*;

    fn ours() -> Ours {
        Ours { from: "liaison-coordination@iab.org".into(), message_id_domain: "iab.org".into() }
    }

    fn statement() -> Statement {
        Statement {
            title: Some("LS on DetNet".into()),
            purpose: Some(Purpose::Action),
            from_org: Some("3GPP".into()),
            to_groups: vec!["detnet".into()],
            ..Statement::default()
        }
    }

    struct Held;
    impl History for Held {
        fn by_tracking_id(&self, id: &str) -> Option<KnownStatement> {
            (id == "LS-2026-0042").then(|| KnownStatement {
                id: 42,
                tracking_id: id.into(),
                handlers: vec![],
                ..KnownStatement::default()
            })
        }
        fn by_thread(&self, ids: &[String]) -> Option<KnownStatement> {
            ids.iter().any(|i| i == "liaisond.ack.42@iab.org").then(|| KnownStatement {
                id: 42,
                tracking_id: "LS-2026-0042".into(),
                handlers: vec![],
                ..KnownStatement::default()
            })
        }
        fn by_message_id(&self, id: &str) -> Option<KnownStatement> {
            (id == "orig@3gpp.org").then(|| KnownStatement {
                id: 42,
                tracking_id: "LS-2026-0042".into(),
                handlers: vec![],
                ..KnownStatement::default()
            })
        }
        fn by_title_and_org(&self, title: &str, org: &str) -> Option<KnownStatement> {
            (title == "LS on DetNet" && org == "3GPP").then(|| KnownStatement {
                id: 42,
                tracking_id: "LS-2026-0042".into(),
                handlers: vec![],
                ..KnownStatement::default()
            })
        }
    }

    fn run(headers: &str, st: &Statement, history: &dyn History) -> Classification {
        let raw = format!("{headers}\r\n\r\nbody\r\n");
        let h = crate::parse::Parsed::new(raw.as_bytes()).headers;
        // The From field as written: classify normalises it (case, angle brackets).
        let sender = h.get("from").map(str::to_string);
        let subject = h.get("subject").map(str::to_string);
        classify(
            &Input {
                headers: &h,
                subject: subject.as_deref(),
                sender: sender.as_deref(),
                statement: st,
                has_document: false,
            },
            &Relationships::builtin(),
            &ours(),
            history,
        )
    }

    #[test]
    fn a_statement_and_a_question() {
        let c = run("From: a@3gpp.org\r\nSubject: LS on DetNet\r\nMessage-ID: <x@3gpp.org>", &statement(), &NoHistory);
        assert_eq!(c.class, Class::Statement, "{c:?}");
        let c = run("From: bob@example.com\r\nSubject: How do I send a liaison?", &Statement::default(), &NoHistory);
        assert_eq!(c.class, Class::Other, "{c:?}");
    }

    #[test]
    fn auto_submitted_values() {
        // R36/R37: every value but "no", with case, whitespace and parameters.
        for v in
            ["auto-replied", "Auto-Generated", " auto-notified ", "auto-replied; owner-email=\"a@b.c\"", "x-vendor"]
        {
            let c = run(
                &format!("From: a@3gpp.org\r\nSubject: LS on DetNet\r\nAuto-Submitted: {v}"),
                &statement(),
                &NoHistory,
            );
            assert_eq!(c.class, Class::AutoReply, "{v}: {c:?}");
        }
        let c = run("From: a@3gpp.org\r\nSubject: LS on DetNet\r\nAuto-Submitted: No", &statement(), &NoHistory);
        assert_eq!(c.class, Class::Statement, "{c:?}");
    }

    #[test]
    fn vendor_autoresponders() {
        for h in [
            "X-Autoreply: yes",
            "X-Autorespond: on",
            "Precedence: auto_reply",
            "X-Auto-Response-Suppress: All\r\nX-MS-Exchange-Inbox-Rules-Loop: a@b.c",
            "Delivered-To: Autoresponder",
        ] {
            let c = run(&format!("From: a@3gpp.org\r\nSubject: Re: LS\r\n{h}"), &statement(), &NoHistory);
            assert_eq!(c.class, Class::AutoReply, "{h}: {c:?}");
        }
        let c = run("From: a@b.org\r\nSubject: Automatic reply: LS on DetNet", &Statement::default(), &NoHistory);
        assert_eq!(c.class, Class::AutoReply);
    }

    #[test]
    fn bounces() {
        let c =
            run("From: MAILER-DAEMON@mx.example.com\r\nSubject: Undelivered Mail", &Statement::default(), &NoHistory);
        assert_eq!(c.class, Class::Bounce);
        let c = run(
            "From: x@mx.example.com\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b",
            &Statement::default(),
            &NoHistory,
        );
        assert_eq!(c.class, Class::Bounce);
        let c = run("Return-Path: <>\r\nFrom: x@example.com\r\nSubject: LS", &statement(), &NoHistory);
        assert_eq!(c.class, Class::Bounce);
    }

    #[test]
    fn lists() {
        for h in ["List-Id: <detnet.ietf.org>", "List-Unsubscribe: <mailto:x@y>", "Precedence: bulk", "Mailing-List: x"]
        {
            let c =
                run(&format!("From: someone@example.com\r\nSubject: news\r\n{h}"), &Statement::default(), &NoHistory);
            assert_eq!(c.class, Class::List, "{h}: {c:?}");
        }
        // A known organisation's statement through its list stays a statement, unacknowledged.
        let c = run(
            "From: 3GPPLiaison@etsi.org\r\nSubject: LS on DetNet\r\nList-Id: <3gpp.list.etsi.org>",
            &statement(),
            &NoHistory,
        );
        assert_eq!(c.class, Class::Statement, "{c:?}");
        assert!(c.no_ack.is_some());
    }

    #[test]
    fn own_mail_by_header_message_id_or_sender() {
        for h in [
            "From: x@example.com\r\nX-Liaisond-Loop: iab.org",
            "From: x@example.com\r\nMessage-ID: <liaisond.ack.7@iab.org>",
            "From: Liaison Coordination <liaison-coordination@iab.org>",
        ] {
            let c = run(&format!("{h}\r\nSubject: LS on DetNet"), &statement(), &NoHistory);
            assert_eq!(c.class, Class::OwnMail, "{h}: {c:?}");
        }
    }

    #[test]
    fn recipients_are_the_addresses_not_the_display_names() {
        let raw = "To: 'a@x.org' <A@x.org>, \"Doe, Jane <jane@fake.org>\" <jane@y.org>\r\nCc: team: b@z.org, a@x.org;\r\n\r\nx";
        let h = crate::parse::Parsed::new(raw.as_bytes()).headers;
        assert_eq!(h.recipients(), ["a@x.org", "jane@y.org", "b@z.org"]);
    }

    #[test]
    fn follow_ups_and_duplicates() {
        let c = run("From: a@3gpp.org\r\nSubject: Re: [LS-2026-0042] Receipt of \"LS on DetNet\"", &statement(), &Held);
        assert_eq!((c.class, c.related.map(|k| k.id)), (Class::FollowUp, Some(42)));
        let c = run(
            "From: a@3gpp.org\r\nSubject: thanks\r\nIn-Reply-To: <liaisond.ack.42@iab.org>",
            &Statement::default(),
            &Held,
        );
        assert_eq!(c.class, Class::FollowUp, "{c:?}");
        // An autoresponder answering our acknowledgement is an auto-reply, never a follow-up.
        let c = run(
            "From: a@3gpp.org\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: <liaisond.ack.42@iab.org>",
            &Statement::default(),
            &Held,
        );
        assert_eq!(c.class, Class::AutoReply);
        let c = run("From: a@3gpp.org\r\nSubject: LS on DetNet\r\nMessage-ID: <orig@3gpp.org>", &statement(), &Held);
        assert_eq!(c.class, Class::Duplicate, "{c:?}");
        // Regression: a Message-ID written without angle brackets (stored so by mail-parser)
        // was not looked up, so a second copy became a second statement and acknowledgement.
        let c = run("From: a@3gpp.org\r\nSubject: LS on DetNet\r\nMessage-ID: orig@3gpp.org", &statement(), &Held);
        assert_eq!(c.class, Class::Duplicate, "{c:?}");
        // The datatracker's copy of a statement we hold, and of one we do not.
        let dt = "From: Liaison Statement Management Tool <statements@ietf.org>\r\nSubject: New Liaison Statement, \"LS on DetNet\"";
        assert_eq!(run(dt, &statement(), &Held).class, Class::Duplicate);
        let c = run(dt, &statement(), &NoHistory);
        assert_eq!(c.class, Class::Statement);
        assert!(c.no_ack.is_some());
    }

    #[test]
    fn tracking_ids_are_looked_up_once_each_and_at_most_sixteen() {
        // Regression (issue 13): every ID written in a message was a database lookup, repeats
        // included; a body of a million IDs was a million queries.
        let repeated = "LS-2026-0042 ".repeat(100_000);
        assert_eq!(tracking_ids_in(&repeated), ["LS-2026-0042"]);
        let distinct: String = (0..1000).map(|i| format!("ls-2026-{i:04} ")).collect();
        let ids = tracking_ids_in(&distinct);
        assert_eq!(ids.len(), MAX_TRACKING_IDS);
        assert_eq!((ids[0].as_str(), ids[15].as_str()), ("LS-2026-0000", "LS-2026-0015"));
    }

    #[test]
    fn tracking_ids_are_found_in_any_case() {
        assert_eq!(tracking_ids_in("Re: [ls-2026-0042] x, LS-2027-00001"), vec!["LS-2026-0042", "LS-2027-00001"]);
        assert!(tracking_ids_in("LS-26-1").is_empty());
    }
}
