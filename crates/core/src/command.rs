//! Commands in replies: a person answers a mail liaisond sent about a statement (its
//! notification, a reminder, a confirmation, the digest) with commands on the first lines, and
//! liaisond does what they say, when that person may.
//!
//! **Architecture invariant: pure, no I/O.** [`commands_in`] reads the lines; [`decide`] names
//! the statement of each and says whether the sender may act on it. The store applies what
//! was allowed inside the recording transaction.
//!
//! The forms, one per line, before any other text of the reply (any case):
//! `Done: <reason>`, `No reply: <reason>`, `Deadline: 2027-03-01` (or `none`),
//! `Assign: <address>` (or `none`), `Recorded: <datatracker URL>`, `Reopen`. In a reply to the
//! digest each line starts with the statement's tracking ID:
//! `LS-2026-0042 Done: answered at the interim`.
//!
//! A line that has the shape of a command (a tracking ID first, or one word and a colon) but
//! is none is an unknown command: it changes nothing and is answered. The first line that is
//! neither ends the commands (the rest is the person's text, quoted mail, a signature).

use jiff::civil::Date;
use liaisond_model::{Action, Command, History, KnownStatement, Target, normalize_address, printable};

use crate::relationships::Relationships;
use crate::tracking::tracking_ids_in;

/// At most this many command lines are taken from one reply (a digest answered line by line
/// names a dozen statements).
pub const MAX_COMMANDS: usize = 20;
/// At most this much of a command line is kept (the reason goes into the statement's history).
pub const MAX_LINE_CHARS: usize = 500;

/// One command line as read, before anyone is asked whether it may be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The line as written (printable, clipped).
    pub line: String,
    /// The tracking ID the line starts with (the digest form).
    pub tracking_id: Option<String>,
    pub action: Result<Action, String>,
}

/// The commands on the first lines of `text` (a reply's own body), in order; empty when its
/// first line is not one.
pub fn commands_in(text: &str) -> Vec<Request> {
    let mut requests = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(request) = request(line) else { break };
        requests.push(request);
        if requests.len() == MAX_COMMANDS {
            break;
        }
    }
    requests
}

/// The names of the commands, as the answer to an unknown one lists them.
const KNOWN: &str = "Done:, No reply:, Deadline:, Assign:, Recorded:, Reopen";

/// One line as a command, or `None` when it does not have the shape of one.
fn request(line: &str) -> Option<Request> {
    let shown = crate::respond::clip(line, MAX_LINE_CHARS);
    // The digest form: the tracking ID first.
    let (tracking_id, rest) = match line.split_once(char::is_whitespace) {
        Some((first, rest)) if tracking_ids_in(first).first().is_some_and(|id| id.eq_ignore_ascii_case(first)) => {
            (Some(first.to_ascii_uppercase()), rest.trim())
        }
        _ if tracking_ids_in(line).first().is_some_and(|id| id.eq_ignore_ascii_case(line)) => {
            return Some(Request {
                line: shown,
                tracking_id: Some(line.to_ascii_uppercase()),
                action: Err(format!("no command after the tracking ID (one of {KNOWN})")),
            });
        }
        _ => (None, line),
    };
    let (verb, value) = match rest.split_once(':') {
        Some((verb, value)) => (verb.trim(), Some(value.trim())),
        None => (rest, None),
    };
    let verb_lower = verb.to_ascii_lowercase();
    let verb_lower = verb_lower.split_whitespace().collect::<Vec<_>>().join(" ");
    let action = match (verb_lower.as_str(), value) {
        ("done", Some(reason)) => Ok(Action::Done(reason_or(reason, "answered"))),
        ("done", None) => Ok(Action::Done("answered".into())),
        ("no reply", Some(reason)) if !reason.is_empty() => Ok(Action::NoReply(reason.to_string())),
        ("no reply", _) => Err("No reply: needs the reason no reply is intended (it goes into the record)".into()),
        ("deadline", Some(v)) => deadline(v),
        ("assign", Some(v)) => assign(v),
        ("recorded", Some(v)) => crate::datatracker::record_url(v).map(Action::Recorded).ok_or_else(|| {
            format!("`{}` is not a datatracker liaison page (https://datatracker.ietf.org/liaison/NNNN/)", printable(v))
        }),
        ("reopen", None | Some("")) => Ok(Action::Reopen),
        ("reopen", Some(_)) => Err("Reopen takes nothing after it".into()),
        ("deadline" | "assign" | "recorded", None) => Err(format!("{verb}: needs a value after the colon")),
        _ => {
            // Only a line shaped like a command is one: a tracking ID first, or a single word
            // and a colon ("Close: ..."). Anything else ends the commands.
            let one_word = !verb.is_empty() && verb.len() <= 20 && verb.bytes().all(|b| b.is_ascii_alphabetic());
            if tracking_id.is_none() && !(one_word && value.is_some()) {
                return None;
            }
            Err(format!("`{}` is not a command (the commands are {KNOWN})", printable(verb)))
        }
    };
    Some(Request { line: shown, tracking_id, action })
}

fn reason_or(reason: &str, default: &str) -> String {
    if reason.is_empty() { default.to_string() } else { reason.to_string() }
}

fn deadline(v: &str) -> Result<Action, String> {
    if v.eq_ignore_ascii_case("none") {
        return Ok(Action::Deadline(None));
    }
    v.parse::<Date>()
        .ok()
        .filter(|_| v.len() == 10)
        .map(|d| Action::Deadline(Some(d.to_string())))
        .ok_or_else(|| format!("`{}` is not a date (write YYYY-MM-DD, or none)", printable(v)))
}

fn assign(v: &str) -> Result<Action, String> {
    if v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("nobody") {
        return Ok(Action::Assign(None));
    }
    let bare = v.trim_start_matches('<').trim_end_matches('>');
    match normalize_address(bare) {
        Some(a) if !bare.contains(char::is_whitespace) && a.contains('@') => Ok(Action::Assign(Some(a))),
        _ => Err(format!("`{}` is not an e-mail address (write a bare address, or none)", printable(v))),
    }
}

/// Who sent the reply, as the route found.
pub struct Sender<'a> {
    /// The `From:` address, normalised.
    pub address: Option<&'a str>,
    /// Verified as the "safe by default" rules define it (DMARC/DKIM through our own server).
    pub verified: bool,
    /// How, or why not (for the refusal).
    pub verification: &'a str,
}

/// The commands of a reply, decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decided {
    pub commands: Vec<Command>,
    /// Whether the sender may act on a statement the reply names: only then is it a reply with
    /// commands (answered with a confirmation, not notified). Otherwise its first lines only
    /// looked like commands ("Note: ...", a forged `Done:`): it is a follow-up as any other,
    /// and the refusals are events only.
    pub acting: bool,
}

/// The statement each request acts on (its own tracking ID, else the one the reply is about),
/// and whether the sender may: a verified sender who is a coordinator, or that statement's
/// manager (whom it was routed to) or assignee.
pub fn decide(
    requests: Vec<Request>,
    about: Option<&KnownStatement>,
    sender: &Sender<'_>,
    rel: &Relationships,
    history: &dyn History,
) -> Decided {
    let mut acting = false;
    let commands = requests
        .into_iter()
        .map(|r| {
            let known = match &r.tracking_id {
                Some(id) => history.by_tracking_id(id),
                None => about.cloned(),
            };
            let target = known.as_ref().map(|k| Target { id: k.id, tracking_id: k.tracking_id.clone() });
            let may = known.as_ref().map(|k| allowed(k, sender, rel));
            acting |= matches!(may, Some(Ok(())));
            let action = r.action.and_then(|action| match may {
                None => Err(match &r.tracking_id {
                    Some(id) => format!("there is no statement {id}"),
                    None => "no statement is named: write its tracking ID first (LS-2026-0042 Done: ...)".into(),
                }),
                Some(Err(why)) => Err(why),
                Some(Ok(())) => Ok(action),
            });
            Command { line: r.line, target, action }
        })
        .collect();
    Decided { commands, acting }
}

/// Whether `sender` may act on `known`, or why not.
fn allowed(known: &KnownStatement, sender: &Sender<'_>, rel: &Relationships) -> Result<(), String> {
    let Some(address) = sender.address else { return Err("the reply has no sender address".into()) };
    if !sender.verified {
        return Err(format!("the sender {address} is not verified ({})", sender.verification));
    }
    let may = rel.is_coordinator(address)
        || known.routed_to.iter().any(|a| a == address)
        || known.assignee.as_deref() == Some(address);
    if may {
        Ok(())
    } else {
        Err(format!("{address} is not a liaison coordinator, nor {}'s manager or assignee", known.tracking_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaisond_model::NoHistory;

    fn actions(text: &str) -> Vec<Result<Action, String>> {
        commands_in(text).into_iter().map(|r| r.action).collect()
    }

    #[test]
    fn each_form_is_read() {
        let text = "Done: answered at the interim\nno reply:  out of scope for the IETF\nDEADLINE: 2027-03-01\n\
                    Assign: <Jane.Doe@Example.org>\nRecorded: https://datatracker.ietf.org/liaison/2099/\nReopen\n";
        assert_eq!(
            actions(text),
            [
                Ok(Action::Done("answered at the interim".into())),
                Ok(Action::NoReply("out of scope for the IETF".into())),
                Ok(Action::Deadline(Some("2027-03-01".into()))),
                Ok(Action::Assign(Some("jane.doe@example.org".into()))),
                Ok(Action::Recorded(liaisond_model::DatatrackerRecord {
                    url: "https://datatracker.ietf.org/liaison/2099/".into(),
                    number: 2099
                })),
                Ok(Action::Reopen),
            ]
        );
        assert_eq!(actions("Deadline: none\nAssign: none"), [Ok(Action::Deadline(None)), Ok(Action::Assign(None))]);
    }

    #[test]
    fn commands_are_the_first_lines_only() {
        // Prose first: no commands, even when one follows.
        assert!(commands_in("Thanks, I will look at it.\nDone: answered\n").is_empty());
        assert!(commands_in("Hi all,\n\nDone: x").is_empty());
        // The commands end at the first other line; quoted mail is never read.
        let text = "\n\nDone: answered\n\nThanks!\nReopen\n> Done: quoted\n";
        assert_eq!(actions(text), [Ok(Action::Done("answered".into()))]);
        assert!(commands_in("> Done: quoted\n").is_empty());
        assert!(commands_in("").is_empty());
    }

    #[test]
    fn unknown_and_malformed_commands_are_refused_with_a_reason() {
        let got = actions(
            "Close: it\nDeadline: next week\nAssign: not an address\nNo reply:\nRecorded: https://example.org/liaison/1/",
        );
        assert_eq!(got.len(), 5, "{got:?}");
        let why: Vec<String> = got.into_iter().map(|a| a.expect_err("refused")).collect();
        assert!(why[0].contains("`Close` is not a command"), "{why:?}");
        assert!(why[1].contains("not a date"), "{why:?}");
        assert!(why[2].contains("not an e-mail address"), "{why:?}");
        assert!(why[3].contains("needs the reason"), "{why:?}");
        assert!(why[4].contains("not a datatracker liaison page"), "{why:?}");
        // Two words and a colon is prose ("Dear all:"), not an unknown command.
        assert!(commands_in("Dear all: see below").is_empty());
        assert!(commands_in("Deadline: 2027-02-30").first().is_some_and(|r| r.action.is_err()));
        assert_eq!(actions("Reopen: now"), [Err("Reopen takes nothing after it".to_string())]);
    }

    #[test]
    fn the_digest_form_names_the_statement_on_each_line() {
        let r = commands_in("LS-2026-0042 Done: answered at the interim\nls-2026-0043 Frob: x\nLS-2026-0044\n");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].tracking_id.as_deref(), Some("LS-2026-0042"));
        assert_eq!(r[0].action, Ok(Action::Done("answered at the interim".into())));
        assert_eq!(r[1].tracking_id.as_deref(), Some("LS-2026-0043"));
        assert!(r[1].action.as_ref().is_err_and(|e| e.contains("`Frob` is not a command")));
        assert!(r[2].action.as_ref().is_err_and(|e| e.contains("no command after")));
    }

    #[test]
    fn commands_per_reply_and_line_length_are_bounded() {
        let text = "Done: x\n".repeat(MAX_COMMANDS * 3);
        assert_eq!(commands_in(&text).len(), MAX_COMMANDS);
        let long = format!("Done: {}", "y".repeat(100_000));
        assert!(commands_in(&long)[0].line.chars().count() <= MAX_LINE_CHARS);
    }

    #[test]
    fn only_a_verified_coordinator_manager_or_assignee_may_act() {
        let rel = Relationships::builtin();
        let coordinator = rel.coordinators()[0].clone();
        let known = KnownStatement {
            id: 7,
            tracking_id: "LS-2026-0007".into(),
            routed_to: vec!["manager@example.org".into()],
            assignee: Some("helper@example.org".into()),
            ..KnownStatement::default()
        };
        let run = |address: &str, verified: bool| {
            let sender = Sender { address: Some(address), verified, verification: "dmarc=pass" };
            decide(commands_in("Done: answered"), Some(&known), &sender, &rel, &NoHistory).commands.remove(0)
        };
        for who in [coordinator.as_str(), "manager@example.org", "helper@example.org"] {
            let c = run(who, true);
            assert_eq!(c.action, Ok(Action::Done("answered".into())), "{who}");
            assert_eq!(c.target.map(|t| t.id), Some(7));
        }
        assert!(run("manager@example.org", false).action.is_err_and(|e| e.contains("not verified")));
        let forged = Sender { address: Some("manager@example.org"), verified: false, verification: "none" };
        assert!(!decide(commands_in("Done: x"), Some(&known), &forged, &rel, &NoHistory).acting);
        let manager = Sender { address: Some("manager@example.org"), verified: true, verification: "" };
        let unknown = decide(commands_in("Frobnicate: x"), Some(&known), &manager, &rel, &NoHistory);
        assert!(unknown.acting, "an allowed sender's unknown command is answered");
        assert!(run("someone@example.org", true).action.is_err_and(|e| e.contains("not a liaison coordinator")));
        // A digest line naming a statement the history does not hold.
        let sender = Sender { address: Some("manager@example.org"), verified: true, verification: "" };
        let d = decide(commands_in("LS-2026-0999 Done: x"), Some(&known), &sender, &rel, &NoHistory);
        assert!(!d.acting, "no statement it may act on");
        let c = d.commands[0].clone();
        assert!(c.action.is_err_and(|e| e.contains("there is no statement LS-2026-0999")));
        assert_eq!(c.target, None);
    }
}
