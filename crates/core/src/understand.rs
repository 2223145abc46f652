//! The fields of a liaison statement, from the mail's subject and
//! sender, its body texts and its attachments' texts together (the attachment that holds the
//! statement usually carries the metadata).
//!
//! **Architecture invariant: pure, no I/O.** Input is text; output is a [`Statement`] and
//! warnings. The relationships data turns names into canonical organisations and datatracker
//! group acronyms.
//!
//! Recognised shapes: the RFC 4053 and 4053bis labelled forms, the datatracker's "New Liaison
//! Statement" mail, the 3GPP template (purpose from "2. Actions"), the ITU-T template (`For
//! action to:` blocks), Broadband Forum, IEEE 802, MEF, ISO/IEC JTC 1 and ETSI statements, and a
//! generic `Label: value` fallback.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use liaisond_model::{Purpose, Statement};
use regex::Regex;

use crate::budget::{self, Budget};
use crate::relationships::{GroupRef, Relationships};

/// One text the statement may be in.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// "body", or the attachment's file name.
    pub name: &'a str,
    pub text: &'a str,
}

/// Everything the stage needs.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub subject: Option<&'a str>,
    /// The `From:` address.
    pub sender: Option<&'a str>,
    pub texts: &'a [Source<'a>],
    /// When to stop reading and keep what was found ([`Budget::unlimited`]: never).
    pub budget: &'a Budget<'a>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Understood {
    pub statement: Statement,
    pub warnings: Vec<String>,
}

/// A label as written, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Title,
    Purpose,
    Deadline,
    From,
    To,
    FromContact,
    ReplyTo,
    TechnicalContact,
    Related,
    ForAction,
    ForComment,
    ForInformation,
    /// A `Subject:` line in a letter: its title when no `Title:` label says otherwise.
    Subject,
}

/// Labels people write, lower-case, without the colon.
const LABELS: &[(&str, Field)] = &[
    ("title", Field::Title),
    ("subject", Field::Subject),
    ("purpose", Field::Purpose),
    ("deadline", Field::Deadline),
    ("response deadline", Field::Deadline),
    ("reply by", Field::Deadline),
    ("reply requested by", Field::Deadline),
    ("due date", Field::Deadline),
    ("from", Field::From),
    ("source", Field::From),
    ("submitted by", Field::From),
    ("to", Field::To),
    ("for action to", Field::ForAction),
    ("for comment to", Field::ForComment),
    ("for information to", Field::ForInformation),
    ("from-contact", Field::FromContact),
    ("contact", Field::FromContact),
    ("contacts", Field::FromContact),
    ("contact person", Field::FromContact),
    ("e-mail address", Field::FromContact),
    ("email address", Field::FromContact),
    ("e-mail", Field::FromContact),
    ("from-liaison-contact", Field::ReplyTo),
    ("response contact", Field::ReplyTo),
    ("response contacts", Field::ReplyTo),
    ("send any reply ls to", Field::ReplyTo),
    ("send reply to", Field::ReplyTo),
    ("reply to", Field::ReplyTo),
    ("send replies to", Field::ReplyTo),
    ("send any reply to", Field::ReplyTo),
    ("please send replies to", Field::ReplyTo),
    ("please send any reply to", Field::ReplyTo),
    ("technical contact", Field::TechnicalContact),
    ("technical contacts", Field::TechnicalContact),
    ("response to", Field::Related),
    ("in response to", Field::Related),
    ("referenced liaison", Field::Related),
];

/// How many lines at the top of a text count as its head (where document numbers sit).
const HEAD_LINES: usize = 15;

// What one message's reading keeps, at most. Each bounds work or output that would otherwise
// grow with the message (issue 13: a crafted body of megabytes of labelled lines); when one
// clips something, the reading says so once (`Clipped`), never once per item clipped.

/// Labelled lines read from one message, all its texts together. A statement has a few dozen
/// (the ITU-T template about 30, the datatracker's mail about 20); a forwarded thread that
/// quotes several statements, a few hundred.
pub const MAX_LABELLED_LINES: usize = 1_000;
/// Bytes of one labelled value with its continuation lines: the longest a statement writes, a
/// block of a dozen contacts with names and roles, is about 1 KiB; a title over three lines,
/// 300 bytes.
pub const MAX_VALUE_BYTES: usize = 4 * 1024;
/// Addresses in each list (contacts, reply-to, technical contacts): a statement names a
/// handful; 50 leaves room for a whole committee's officers.
pub const MAX_ADDRESSES: usize = 50;
/// Groups in each list (sending, addressed): a statement comes from one or two and goes to a
/// few (an ITU-T `For action to:` block, about ten).
pub const MAX_GROUPS: usize = 50;
/// Names looked up on the From lines, and on the To lines (each look-up tries several forms
/// of the name against the relationships data): ten times the groups kept, as most names on
/// such lines are people and roles, not groups.
pub const MAX_NAMES: usize = 500;
/// The statement's own document numbers: it has one or two (its number, a revision).
pub const MAX_IDENTIFIERS: usize = 20;
/// Characters of the title, which goes into the subject line of the mail about it: the
/// longest 3GPP and ITU-T titles have about 200.
pub const MAX_TITLE_CHARS: usize = 500;

/// The warnings of the caps that clipped something, each once however much it clipped
/// (coordinators read them).
#[derive(Debug, Default)]
struct Clipped(Vec<String>);

impl Clipped {
    fn note(&mut self, warning: String) {
        // A handful of distinct warnings at most, and each loop stops at its first: short.
        if !self.0.contains(&warning) {
            self.0.push(warning);
        }
    }
}

/// A list of addresses or groups in the order found, each once (ASCII case aside), at most
/// `cap` long. The set beside it makes each addition one step: looking through the list for
/// each made N additions cost N² (issue 13: 6 MB of `Reply to:` lines took 25 s).
#[derive(Debug)]
struct Unique {
    items: Vec<String>,
    /// The items in lower case.
    seen: HashSet<String>,
    cap: usize,
    /// What the items are, for the warning when the list is full.
    what: &'static str,
}

impl Unique {
    fn new(cap: usize, what: &'static str) -> Unique {
        Unique { items: Vec::new(), seen: HashSet::new(), cap, what }
    }

    /// Adds `v` unless the list has it; false when the list is full (`v` then is not added
    /// and the warning noted): the caller's loop can stop.
    fn push(&mut self, v: String, clipped: &mut Clipped) -> bool {
        let key = v.to_ascii_lowercase();
        if self.seen.contains(&key) {
            return true;
        }
        if self.items.len() >= self.cap {
            clipped.note(format!("more than {} {}; the rest are not kept", self.cap, self.what));
            return false;
        }
        self.seen.insert(key);
        self.items.push(v);
        true
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn into_vec(self) -> Vec<String> {
        self.items
    }
}

/// Adds the addresses in `values` that `keep` accepts to `list`, until it is full or the time
/// is up.
fn add_addresses<'v>(
    list: &mut Unique,
    values: impl Iterator<Item = &'v str>,
    keep: impl Fn(&str) -> bool,
    budget: &Budget<'_>,
    clipped: &mut Clipped,
) {
    for v in values {
        if budget.step() {
            return;
        }
        for a in emails(v).into_iter().filter(|a| keep(a)) {
            if !list.push(a, clipped) {
                return;
            }
        }
    }
}

/// At most the first `max` bytes of `s`, ending between words rather than in one (half an
/// address would read as another address: `jane@example.org` cut to `jane@example.or`), or at
/// a character boundary when the part kept has no space.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let head = &s[..s.floor_char_boundary(max)];
    if s[head.len()..].starts_with(char::is_whitespace) {
        return head;
    }
    match head.rfind(char::is_whitespace) {
        Some(at) if at > 0 => &head[..at],
        _ => head,
    }
}

/// [`cut`] at `max` characters.
fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => cut(s, at).trim_end(),
        None => s,
    }
}

/// Labels whose value may continue on the next lines (addresses and group lists).
fn continues(f: Field) -> bool {
    matches!(
        f,
        Field::Title
            | Field::Subject
            | Field::Related
            | Field::FromContact
            | Field::ReplyTo
            | Field::TechnicalContact
            | Field::ForAction
            | Field::ForComment
            | Field::ForInformation
    )
}

static LABEL_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*([A-Za-z][A-Za-z \-]{0,30}?)\s*:\s*(.*)$").expect("static regex"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    // Also addresses written to dodge harvesters: `name . surname @ company . com`.
    Regex::new(r"(?i)([a-z0-9][a-z0-9_+\-]*(?:\s?\.\s?[a-z0-9_+\-]+)*)\s?@\s?([a-z0-9\-]+(?:\s?\.\s?[a-z0-9\-]+)+)")
        .expect("static regex")
});
static IDENTIFIERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(?:",
        r"[CRS][1-6P]-\d{6,7}",                               // 3GPP: C4-261300, S2-2612345
        r"|(?:SG\d{1,2}|TSAG)-LS\d{1,4}",                     // ITU-T: SG15-LS123, TSAG-LS17
        r"|COM \d{1,2} ?[\u2013-] ?LS \d{1,4} ?[\u2013-] ?E", // ITU-T: COM 16 – LS 203 – E
        r"|LIAISE-\d{3,4}-\d{2}",                             // Broadband Forum
        r"|LS\d{5}_\d{3}",                                    // MEF
        r"|IEEE 802(?:\.\d+)?-\d{2}/\d{4}r\d+",               // IEEE 802
        r"|SC ?\d{1,2} N ?\d{3,6}",                           // ISO/IEC JTC 1/SC NN N NNNN
        r"|[A-Z]{3,8}\(\d{2}\)\d{6}(?:r\d+)?",                // ETSI: CYBER(26)041012r1
        r"|[A-Z]{2,6} LS \d{3}_\d{2}",                        // GSMA: FASG LS 031_26
        r"|SSAC-LS-\d{4}-\d{2}",                              // ICANN SSAC
        r"|L2/\d{2}-\d{3}",                                   // Unicode: L2/26-301
        r")\b"
    ))
    .expect("static regex")
});
static ACTION_TO_IETF: LazyLock<Regex> = LazyLock::new(|| {
    // "ACTION: None." is no action.
    Regex::new(r"(?is)\bTo\s+(IETF[^\n]*?|[A-Z][A-Za-z0-9 ]*\bWG)\s*\n?\s*ACTION\s*:\s*(?-i:[^N\s]|N[^o])")
        .expect("static regex")
});

/// Runs the stage.
pub fn understand(input: &Input<'_>, rel: &Relationships) -> Understood {
    let budget = input.budget;
    let mut warnings = Vec::new();
    let mut clipped = Clipped::default();
    let mut labels_left = MAX_LABELLED_LINES;
    let mut found: Vec<(Field, String, usize)> = Vec::new(); // field, value, source index
    for (i, src) in input.texts.iter().enumerate() {
        for (f, v) in labelled(src.text, budget, &mut labels_left, &mut clipped) {
            found.push((f, v, i));
        }
    }
    let first =
        |f: Field| found.iter().find(|(g, v, _)| *g == f && !v.trim().is_empty()).map(|(_, v, i)| (v.clone(), *i));
    let all = |f: Field| found.iter().filter(move |(g, _, _)| *g == f).map(|(_, v, _)| v.as_str());
    // Title: the label, else the `Subject:` line of a letter that is a statement (it has a
    // `Purpose:` label: a quoted mail header block has none), else the mail's subject; a
    // literal leading "Title:" is dropped. The texts with a `Purpose:` label are found once:
    // looking through every label again for each `Subject:` line cost N² (issue 13).
    let with_purpose: HashSet<usize> =
        found.iter().filter(|(f, _, _)| *f == Field::Purpose).map(|(_, _, i)| *i).collect();
    let letter_subject = || {
        found
            .iter()
            .find(|(f, v, i)| *f == Field::Subject && !v.trim().is_empty() && with_purpose.contains(i))
            .map(|(_, v, _)| v.clone())
    };
    let title = first(Field::Title)
        .map(|(v, _)| v)
        .or_else(letter_subject)
        .or_else(|| input.subject.map(subject_title))
        .map(|t| clean_title(&t))
        .filter(|t| !t.is_empty())
        .map(|t| {
            let kept = cut_chars(&t, MAX_TITLE_CHARS);
            if kept.len() < t.len() {
                clipped.note(format!("the title is longer than {MAX_TITLE_CHARS} characters; the rest is not kept"));
            }
            kept.to_string()
        });
    let mut st = Statement { title, ..Statement::default() };

    // From: the labelled sender, the organisation by address or domain, then text markers.
    let from_values: Vec<&str> = all(Field::From).collect();
    let sender_org = input.sender.and_then(|s| rel.organization_by_sender(s)).map(|m| m.organization.name.clone());
    // The stages below that read every text whole are skipped once the time is up.
    let all_text: String = if budget.check() {
        String::new()
    } else {
        input.subject.into_iter().chain(input.texts.iter().map(|s| s.text)).collect::<Vec<_>>().join("\n")
    };
    let marker_org = rel.organizations_by_marker(&all_text).first().map(|o| o.name.clone());
    // Short names (`TSAG`, `CT4`) resolve only within an organisation: the one the sender or
    // the text points at, until a full name says otherwise.
    let context = sender_org.clone().or(marker_org.clone());
    let mut label_org: Option<String> = None;
    let mut from_groups = Unique::new(MAX_GROUPS, "sending groups");
    let mut names_left = MAX_NAMES;
    'values: for v in &from_values {
        if budget.step() {
            break;
        }
        let mut resolved = Vec::new();
        let mut unresolved = Vec::new();
        for name in split_names(v) {
            if names_left == 0 {
                clipped.note(format!("more than {MAX_NAMES} names on From lines; the rest are not looked up"));
                break 'values;
            }
            names_left -= 1;
            match sender_group(rel, label_org.as_deref().or(context.as_deref()), &name) {
                Some((org, Some(acronym))) => {
                    label_org.get_or_insert(org);
                    resolved.push(acronym);
                }
                // A name of the organisation itself (`Unicode Technical Committee`) names no
                // group we know: the organisation is found, the name is kept as written.
                Some((org, None)) => {
                    label_org.get_or_insert(org);
                    unresolved.push(name);
                }
                None if !name.contains('@') && name.len() <= 80 && !name.starts_with("Question") => {
                    unresolved.push(name)
                }
                None => {}
            }
        }
        // A name we do not know is kept as written, unless the line also named a known group
        // (then it is a detail of that group: a working group, a Question).
        for g in if resolved.is_empty() { unresolved } else { resolved } {
            if !from_groups.push(g, &mut clipped) {
                break 'values;
            }
        }
    }
    st.from_org = label_org.or(sender_org).or(marker_org);
    // No `From:` label names the group (the datatracker's `From:` line names a person): the
    // group the statement's body opens with (`Body: ITU-T Study Group 15 thanks ...`).
    if from_groups.is_empty()
        && let Some(g) = input
            .texts
            .iter()
            .take_while(|_| !budget.step())
            .find_map(|s| body_opening_group(rel, s.text, st.from_org.as_deref()))
    {
        from_groups.push(g, &mut clipped);
    }
    st.from_groups = from_groups.into_vec();

    // To: the labelled addressees and the ITU-T blocks, normalised within the IETF.
    let mut to_groups = Unique::new(MAX_GROUPS, "addressed groups");
    let mut names_left = MAX_NAMES;
    'values: for v in
        all(Field::To).chain(all(Field::ForAction)).chain(all(Field::ForComment)).chain(all(Field::ForInformation))
    {
        if budget.step() {
            break;
        }
        for name in split_names(v) {
            if names_left == 0 {
                clipped.note(format!("more than {MAX_NAMES} names on To lines; the rest are not looked up"));
                break 'values;
            }
            names_left -= 1;
            if let Some(g) = ietf_group_of(rel, &name)
                && !to_groups.push(g, &mut clipped)
            {
                break 'values;
            }
        }
    }
    st.to_groups = to_groups.into_vec();

    // Purpose: the label; the ITU-T blocks; the 3GPP "2. Actions" section.
    let labelled_purpose = first(Field::Purpose).and_then(|(v, _)| purpose_of(&v));
    // The same cap on names as the To lines above (which read these values too, and say so
    // when it clips).
    let names_ietf = |f: Field| {
        let mut left = MAX_NAMES;
        all(f).take_while(|_| !budget.step()).any(|v| {
            v.to_ascii_lowercase().contains("ietf")
                || split_names(v).iter().any(|n| {
                    if left == 0 {
                        return false;
                    }
                    left -= 1;
                    rel.ietf_group(n).is_some()
                })
        })
    };
    let block_purpose = if names_ietf(Field::ForAction) {
        Some(Purpose::Action)
    } else if names_ietf(Field::ForComment) {
        Some(Purpose::Comment)
    } else if names_ietf(Field::ForInformation) {
        Some(Purpose::Information)
    } else {
        None
    };
    let actions_section = three_gpp_actions(&all_text);
    let implied = block_purpose.or(actions_section);
    st.purpose = labelled_purpose.or(implied);
    if let (Some(l), Some(i)) = (labelled_purpose, implied)
        && l != i
    {
        warnings.push(format!(
            "purpose conflict: the statement says {l:?} but addresses the IETF for {i:?}; recorded {l:?}"
        ));
    }
    if st.purpose.is_none() && st.related.is_none() && three_gpp_template(&all_text) {
        st.purpose = Some(Purpose::Information);
    }

    // Deadline.
    let deadline_text = first(Field::Deadline).map(|(v, _)| v).or_else(|| please_reply_by(&all_text));
    if let Some(d) = deadline_text {
        match parse_date(&d, st.from_org.as_deref()) {
            DateParse::Date(date) => st.deadline = Some(date),
            DateParse::Ambiguous => {
                warnings.push(format!("deadline `{}` is ambiguous (day/month); left unset", d.trim()))
            }
            DateParse::None => {
                if !matches!(d.trim().to_ascii_lowercase().as_str(), "" | "-" | "none" | "n/a" | "na") {
                    warnings.push(format!("deadline `{}` is not a date; left unset", d.trim()));
                }
            }
        }
    }

    // Contacts. A role address on a `From:` line (the SDO's, ours, the datatracker's) sent
    // the mail; a person's address there (`From: IEEE 802.1 WG (Jane Doe, Chair, jane@...)`,
    // the datatracker's `From: Jane Doe <jane@...>`) is a contact of the sending side.
    let role =
        |a: &str| rel.organization_by_address(a).is_some() || rel.is_own_address(a) || rel.is_datatracker_sender(a);
    let mut from_contacts = Unique::new(MAX_ADDRESSES, "contact addresses");
    let mut reply_to = Unique::new(MAX_ADDRESSES, "reply-to addresses");
    let mut technical = Unique::new(MAX_ADDRESSES, "technical contact addresses");
    add_addresses(&mut from_contacts, all(Field::FromContact), |_| true, budget, &mut clipped);
    add_addresses(&mut from_contacts, all(Field::From), |a| !role(a), budget, &mut clipped);
    add_addresses(&mut reply_to, all(Field::ReplyTo), |_| true, budget, &mut clipped);
    'values: for v in all(Field::TechnicalContact) {
        if budget.step() {
            break;
        }
        for a in emails(v) {
            // RFC 4053's "Technical Contact" is 4053bis's From-Contact: both lists hold it.
            from_contacts.push(a.clone(), &mut clipped);
            if !technical.push(a, &mut clipped) {
                break 'values;
            }
        }
    }
    // Only when no label names anyone: the addresses under the letter's closing.
    if from_contacts.is_empty() {
        let signatures = input.texts.iter().take_while(|_| !budget.step()).map(|s| signature_contacts(s.text));
        for addresses in signatures {
            add_addresses(&mut from_contacts, addresses.iter().map(String::as_str), |a| !role(a), budget, &mut clipped);
        }
    }
    // 4053bis §3: with no From-Liaison-Contact, a reply goes where the statement came from.
    if reply_to.is_empty()
        && let Some(sender) = input.sender.and_then(|s| emails(s).into_iter().next())
    {
        reply_to.push(sender, &mut clipped);
    }
    st.from_contacts = from_contacts.into_vec();
    st.reply_to = reply_to.into_vec();
    st.technical_contacts = technical.into_vec();

    // The statement it responds to.
    // Its document number when given, else its web page, else the words used.
    st.related = first(Field::Related)
        .map(|(v, _)| v.trim().to_string())
        .filter(|v| !matches!(v.to_ascii_lowercase().as_str(), "" | "-" | "none" | "n/a" | "na"))
        .map(|v| {
            static URL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"https?://\S+").expect("static regex"));
            IDENTIFIERS
                .find(&v)
                .map(|m| m.as_str().to_string())
                .or_else(|| URL.find(&v).map(|m| m.as_str().trim_end_matches(['.', ')', '>']).to_string()))
                .unwrap_or(v)
        });
    // Numbers compare with an en dash as a hyphen (`COM 2 – LS 88 – E` is `COM 2 - LS 88 - E`).
    let id_key = |id: &str| id.replace('\u{2013}', "-");
    // Numbers on a "Response to" line belong to the answered statement. A set: looking
    // through a list of them for each number in the text cost N² (issue 13).
    let related_ids: HashSet<String> =
        all(Field::Related).flat_map(|v| IDENTIFIERS.find_iter(v).map(|m| id_key(m.as_str()))).collect();
    if st.related.is_some() && st.purpose.is_none() {
        st.purpose = Some(Purpose::Response);
    }

    // The statement's own document numbers: in the subject, the title, and the head of each
    // text (where templates put them), not the numbers it cites further down or responds to.
    // Lines that cite other documents ("revision of S2-2611980") are skipped.
    let own_line = |l: &&str| {
        let l = l.to_ascii_lowercase();
        !["revision of", "response to", "replaces", "in response", "related to"].iter().any(|c| l.contains(c))
    };
    let heads =
        input.texts.iter().map(|s| s.text.lines().take(HEAD_LINES).filter(own_line).collect::<Vec<_>>().join("\n"));
    // The statement's own texts first: they write numbers as the SDO does (`COM 2 – LS 88 – E`),
    // a subject line often with plain hyphens.
    let places: Vec<String> = heads.chain(st.title.clone()).chain(input.subject.map(str::to_string)).collect();
    let related_key = st.related.as_deref().map(id_key);
    let mut known: HashSet<String> = HashSet::new();
    'places: for text in &places {
        if budget.step() {
            break;
        }
        for m in IDENTIFIERS.find_iter(text) {
            let key = id_key(m.as_str());
            if related_key.as_ref() == Some(&key) || related_ids.contains(&key) || known.contains(&key) {
                continue;
            }
            if known.len() == MAX_IDENTIFIERS {
                clipped.note(format!("more than {MAX_IDENTIFIERS} document numbers; the rest are not kept"));
                break 'places;
            }
            known.insert(key);
            st.other_identifiers.push(m.as_str().to_string());
        }
    }

    // The body: the text that carried the statement's labels, else the mail body.
    let carrier = found.iter().map(|(_, _, i)| *i).fold(std::collections::HashMap::new(), |mut m, i| {
        *m.entry(i).or_insert(0) += 1;
        m
    });
    let best = carrier.into_iter().max_by_key(|(i, n)| (*n, std::cmp::Reverse(*i))).map(|(i, _)| i).unwrap_or(0);
    st.body = input.texts.get(best).map(|s| s.text.trim().to_string()).unwrap_or_default();

    if st.purpose.is_some_and(|p| matches!(p, Purpose::Action | Purpose::Comment)) && st.deadline.is_none() {
        warnings.push("no deadline, although the statement asks for action or comment".into());
    }
    if budget.ran_out() {
        warnings.push(budget::STOPPED.into());
    }
    warnings.extend(clipped.0);
    Understood { statement: st, warnings }
}

/// The field a `Label: value` line names, with its value.
fn label_of(line: &str) -> Option<(Field, String)> {
    let c = LABEL_LINE.captures(line)?;
    let label = c[1].trim().to_ascii_lowercase();
    LABELS.iter().find(|(l, _)| *l == label).map(|(_, f)| (*f, c[2].trim().to_string()))
}

/// `Label: value` lines, and the lines that continue a list-like label (more addresses or
/// groups under `Contact:` or `For action to:`).
///
/// A line continues the open label unless it is empty or looks like a label or a heading of
/// its own (`Name: ...`, `1. Overall Description:`); a colon elsewhere (`(https://...)`) does
/// not end the value. The contact
/// labels also continue across an empty line when the next paragraph is one more person
/// (a short block with an address and no label), as letters list several contacts apart.
///
/// Reads at most `left` labelled lines (and counts them off), each value up to
/// [`MAX_VALUE_BYTES`], and stops when the budget is spent.
fn labelled(text: &str, budget: &Budget<'_>, left: &mut usize, clipped: &mut Clipped) -> Vec<(Field, String)> {
    let lines: Vec<Cow<'_, str>> = text
        .lines()
        .map(|l| if l.contains('\t') { Cow::Owned(l.replace('\t', " ")) } else { Cow::Borrowed(l) })
        .collect();
    let mut out: Vec<(Field, String)> = Vec::new();
    let mut open: Option<usize> = None;
    for (n, line) in lines.iter().enumerate() {
        if budget.step() {
            break;
        }
        if let Some((f, v)) = label_of(line) {
            if *left == 0 {
                clipped.note(format!("more than {MAX_LABELLED_LINES} labelled lines; the rest are not read"));
                break;
            }
            *left -= 1;
            let kept = cut(&v, MAX_VALUE_BYTES);
            if kept.len() < v.len() {
                clipped.note(value_clipped());
            }
            out.push((f, kept.to_string()));
            open = continues(f).then_some(out.len() - 1);
            continue;
        }
        let t = line.trim();
        let Some(entry) = open.and_then(|i| out.get_mut(i)) else { continue };
        let is_contact = matches!(entry.0, Field::FromContact | Field::ReplyTo | Field::TechnicalContact);
        if t.is_empty() {
            // Decided at the first empty line of a run (looking past the run once); deciding
            // again at each one made a run of N empty lines cost N² (a crafted body).
            let first_of_run = n == 0 || !lines[n - 1].trim().is_empty();
            if first_of_run && !(is_contact && contact_paragraph(&lines[n + 1..])) {
                open = None;
            }
        } else if !(LABEL_LINE.is_match(t) || t.ends_with(':')) || t.contains('@') || t.starts_with("http") {
            // Past the cap the value stays open (its lines belong to it) but keeps no more.
            if entry.1.len() + 1 + t.len() <= MAX_VALUE_BYTES {
                entry.1.push('\n');
                entry.1.push_str(t);
            } else {
                clipped.note(value_clipped());
            }
        } else {
            open = None;
        }
    }
    out
}

fn value_clipped() -> String {
    format!("a labelled value is longer than {MAX_VALUE_BYTES} bytes; the rest of it is not read")
}

/// Whether the lines start with a paragraph that names one more contact: at most three lines
/// up to the next empty line, with an address, no label and no sentence (`Name, Role,` then
/// `address`).
fn contact_paragraph(lines: &[Cow<'_, str>]) -> bool {
    let para: Vec<&str> =
        lines.iter().map(|l| l.trim()).skip_while(|l| l.is_empty()).take_while(|l| !l.is_empty()).take(4).collect();
    !para.is_empty()
        && para.len() <= 3
        && para.iter().any(|l| !emails(l).is_empty())
        && para.iter().all(|l| label_of(l).is_none() && !l.ends_with(['.', '?', '!', ':']))
}

/// Names in a list: split at commas, semicolons and new lines outside parentheses (so
/// `ETSI TC CYBER (WG QSC, Quantum-Safe Cryptography)` stays one name).
fn split_names(v: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in v.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' | ';' | '\n' if depth == 0 => {
                names.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    names.push(current);
    names.into_iter().map(|p| p.trim().trim_end_matches('.').trim().to_string()).filter(|p| !p.is_empty()).collect()
}

/// The sending group a name means: the name itself, then without a parenthesised remark,
/// then its parents (`ISO/IEC JTC 1/SC 27/WG 5` → `SC 27`), within `org` when known. The
/// organisation's canonical name, and the group's acronym (`None` when the name is one of the
/// organisation itself).
fn sender_group(rel: &Relationships, org: Option<&str>, name: &str) -> Option<(String, Option<String>)> {
    let mut candidate = name.split('(').next().unwrap_or(name).trim().to_string();
    for _ in 0..4 {
        for attempt in [candidate.as_str(), name] {
            if let Some(g) = rel.resolve_group(org, attempt).or_else(|| rel.resolve_group(None, attempt))
                && let Some(o) = g.organization()
            {
                let group = matches!(g, GroupRef::Group(..)).then(|| g.acronym().to_string());
                return Some((o.name.clone(), group));
            }
        }
        match candidate.rfind(['/', ',']) {
            Some(cut) => candidate = candidate[..cut].trim().to_string(),
            None => break,
        }
    }
    None
}

/// An IETF-side group named in a list entry: by its name (without a `<list@ietf.org>` part),
/// or by the list address's local part (`teas@ietf.org` → `teas`).
fn ietf_group_of(rel: &Relationships, entry: &str) -> Option<String> {
    let name = entry.split('<').next().unwrap_or(entry).trim();
    let ietf =
        |n: &str| rel.resolve_group(None, n).filter(|g| g.organization().is_none()).map(|g| g.acronym().to_string());
    if let Some(g) = ietf(name) {
        return Some(g);
    }
    // `IETF Applications and Real-Time Area (ART)`: the acronym in parentheses; `IETF DetNet
    // WG (chairs: ...)`: the name before a remark.
    let (before, inner) = match name.split_once('(') {
        Some((b, r)) => (b.trim(), r.split_once(')').map(|(i, _)| i.trim())),
        None => (name, None),
    };
    if let Some(g) = inner.and_then(ietf).or_else(|| ietf(before)) {
        return Some(g);
    }
    if let Some(address) = emails(entry).into_iter().find(|a| a.ends_with("@ietf.org")) {
        let local = address.split('@').next().unwrap_or("");
        if let Some(g) = rel.ietf_group(local.trim_end_matches("-chairs").trim_end_matches("-ads")) {
            return Some(g.acronym.clone());
        }
    }
    // An IETF group the relationships data does not know yet: kept as written.
    (before.starts_with("IETF ") && before.len() <= 80 && !before.contains('@')).then(|| before.to_string())
}

/// The sending group a statement's `Body:` opens with, as the subject of its first sentence
/// (`The IEEE 802.3 Working Group would like ...`, `ITU-T Study Group 15 (Question 14/15)
/// thanks ...`): the capitalised words (and numbers, and `of`/`and`/`for` between them) before
/// the first other word or parenthesis. Taken only when it resolves to a known group, or when
/// it is the sending organisation's name followed by more (`Broadband Forum Technical
/// Committee`, kept as written).
fn body_opening_group(rel: &Relationships, text: &str, org: Option<&str>) -> Option<String> {
    static BODY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?m)^\s*Body\s*:\s*").expect("static regex"));
    let start = BODY.find(text)?.end();
    let opening: String = text[start..].split_whitespace().take(20).collect::<Vec<_>>().join(" ");
    let mut words: Vec<&str> = Vec::new();
    for (i, w) in opening.split(' ').enumerate() {
        if i == 0 && w.eq_ignore_ascii_case("the") {
            continue;
        }
        let bare = w.trim_end_matches([',', ';', ':', '.']);
        let named = bare.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit());
        if bare.is_empty() || !(named || matches!(bare, "of" | "and" | "for" | "on")) {
            break;
        }
        words.push(bare);
        if bare.len() != w.len() {
            break;
        }
    }
    while words.last().is_some_and(|w| matches!(*w, "of" | "and" | "for" | "on")) {
        words.pop();
    }
    if words.len() < 2 {
        return None;
    }
    let name = words.join(" ");
    match sender_group(rel, org, &name) {
        Some((_, Some(acronym))) => Some(acronym),
        _ => {
            let o = rel.organization(org?)?;
            let lower = name.to_lowercase();
            std::iter::once(&o.name)
                .chain(&o.names)
                .any(|n| lower.strip_prefix(&n.to_lowercase()).is_some_and(|rest| rest.starts_with(' ')))
                .then_some(name)
        }
    }
}

/// Addresses in a signature block (after "Sincerely," or "Kind regards,"), up to the next
/// label or separator line: the sender's contacts when no label names any.
fn signature_contacts(text: &str) -> Vec<String> {
    const CLOSINGS: &[&str] =
        &["sincerely", "kind regards", "best regards", "regards", "yours faithfully", "yours sincerely"];
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().rposition(|l| {
        let l = l.trim().trim_end_matches(',').to_ascii_lowercase();
        CLOSINGS.contains(&l.as_str())
    }) else {
        return Vec::new();
    };
    let ends = |l: &&&str| {
        let t = l.trim();
        label_of(t).is_some_and(|(f, _)| f != Field::FromContact)
            || t.to_ascii_lowercase().starts_with("cc:")
            || (t.len() >= 4 && t.chars().all(|c| matches!(c, '-' | '_' | '=' | '*')))
    };
    lines[start..lines.len().min(start + 10)].iter().take_while(|l| !ends(l)).flat_map(|l| emails(l)).collect()
}

/// Addresses in a text, spaced-out ones (`name . surname @ company . com`) and spelt-out
/// ones (`name (at) example (dot) org`) recovered, lower-cased.
pub fn emails(text: &str) -> Vec<String> {
    static SPELT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\s*(?:\(\s*(at|dot)\s*\)|\[\s*(at|dot)\s*\])\s*").expect("static regex"));
    let text = SPELT.replace_all(text, |c: &regex::Captures<'_>| {
        let word = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        if word.eq_ignore_ascii_case("at") { "@" } else { "." }
    });
    EMAIL
        .captures_iter(&text)
        .map(|c| format!("{}@{}", c[1].replace(' ', ""), c[2].replace(' ', "")).to_ascii_lowercase())
        .filter(|a| {
            a.rsplit('.').next().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
        })
        .collect()
}

fn subject_title(subject: &str) -> String {
    let s = subject.trim();
    // The datatracker's notification: New Liaison Statement, "<title>"
    if let Some(rest) = s.strip_prefix("New Liaison Statement, ") {
        return rest.trim().trim_matches('"').to_string();
    }
    s.to_string()
}

fn clean_title(t: &str) -> String {
    // A title wrapped over lines: join them, undoing a hyphen at a line end (`measure-` +
    // `ment`) unless it belongs to a hyphenated word (`end-to-` + `end`).
    static HYPHEN: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(\S*\p{L})-[^\S\n]*\n\s*(\p{Ll}\S*)").expect("static regex"));
    let joined = HYPHEN.replace_all(t, |c: &regex::Captures<'_>| {
        let sep = if liaisond_extract::line_end_hyphen_is_real(&c[1], &c[2]) { "-" } else { "" };
        format!("{}{sep}{}", &c[1], &c[2])
    });
    let mut t = joined.trim();
    while let Some(rest) = t.strip_prefix("Title:").or_else(|| t.strip_prefix("TITLE:")) {
        t = rest.trim();
    }
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn purpose_of(v: &str) -> Option<Purpose> {
    let v = v.to_ascii_lowercase();
    if v.contains("action") {
        Some(Purpose::Action)
    } else if v.contains("comment") {
        Some(Purpose::Comment)
    } else if v.contains("response") || v.contains("reply") {
        Some(Purpose::Response)
    } else if v.contains("information") || v.contains("info") {
        Some(Purpose::Information)
    } else {
        None
    }
}

/// The 3GPP template: "2. Actions:" with "To IETF ... ACTION:" means For Action.
fn three_gpp_actions(text: &str) -> Option<Purpose> {
    let start = text.find("2. Actions")?;
    let section = &text[start..];
    let end = section.find("3. ").unwrap_or(section.len());
    ACTION_TO_IETF.is_match(&section[..end]).then_some(Purpose::Action)
}

fn three_gpp_template(text: &str) -> bool {
    text.contains("1. Overall Description") && text.contains("2. Actions")
}

/// "Please reply by <date>" (the datatracker's notification) or "before <date>".
fn please_reply_by(text: &str) -> Option<String> {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)please reply by\s+([^\n]{6,40})").expect("static regex"));
    RE.captures(text).map(|c| c[1].trim().to_string())
}

#[derive(Debug, PartialEq, Eq)]
enum DateParse {
    Date(String),
    Ambiguous,
    None,
}

const MONTHS: &[&str] = &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Dates as people write them: `2026-03-01`, `1 March 2026`, `March 1, 2026`, `1st of March
/// 2026`, `01.03.2026` (day first, the dotted convention), `01/03/2026` (ambiguous unless a
/// part is over 12 or the sender's convention is known: day first in Europe and at the ITU).
fn parse_date(s: &str, org: Option<&str>) -> DateParse {
    static ISO: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b").expect("static regex"));
    static DMY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?\s+([a-z]{3,9})\.?,?\s+(\d{4})\b").expect("static regex")
    });
    static MDY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b").expect("static regex")
    });
    static NUMERIC: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b(\d{1,2})([./])(\d{1,2})[./](\d{4})\b").expect("static regex"));
    let month = |name: &str| {
        let n = name.to_ascii_lowercase();
        MONTHS.iter().position(|m| n.starts_with(m)).map(|i| i as u32 + 1)
    };
    let make = |y: &str, m: u32, d: &str| -> DateParse {
        match (y.parse::<i16>(), d.parse::<i8>()) {
            (Ok(y), Ok(d)) => match jiff::civil::Date::new(y, m as i8, d) {
                Ok(date) => DateParse::Date(date.to_string()),
                Err(_) => DateParse::None,
            },
            _ => DateParse::None,
        }
    };
    if let Some(c) = ISO.captures(s) {
        return c[2].parse().map_or(DateParse::None, |m| make(&c[1], m, &c[3]));
    }
    if let Some(c) = DMY.captures(s)
        && let Some(m) = month(&c[2])
    {
        return make(&c[3], m, &c[1]);
    }
    if let Some(c) = MDY.captures(s)
        && let Some(m) = month(&c[1])
    {
        return make(&c[3], m, &c[2]);
    }
    if let Some(c) = NUMERIC.captures(s) {
        let (a, b): (u32, u32) = (c[1].parse().unwrap_or(0), c[3].parse().unwrap_or(0));
        let day_first = match org {
            _ if &c[2] == "." => true,
            _ if a > 12 => true,
            _ if b > 12 => false,
            Some("ITU-T" | "ETSI" | "3GPP" | "ISO/IEC JTC 1" | "GSMA") => true,
            _ => return DateParse::Ambiguous,
        };
        let (d, m) = if day_first { (a, b) } else { (b, a) };
        return make(&c[4], m, &d.to_string());
    }
    DateParse::None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::within;

    #[test]
    fn dates() {
        let d = |s: &str, o: Option<&str>| parse_date(s, o);
        let ok = |s: &str| DateParse::Date(s.to_string());
        assert_eq!(d("2026-03-01", None), ok("2026-03-01"));
        assert_eq!(d("1 March 2026", None), ok("2026-03-01"));
        assert_eq!(d("March 1, 2026", None), ok("2026-03-01"));
        assert_eq!(d("1st of March 2026", None), ok("2026-03-01"));
        assert_eq!(d("01.03.2026", None), ok("2026-03-01"));
        assert_eq!(d("13/03/2026", None), ok("2026-03-13"));
        assert_eq!(d("03/13/2026", None), ok("2026-03-13"));
        assert_eq!(d("01/03/2026", None), DateParse::Ambiguous);
        assert_eq!(d("01/03/2026", Some("ITU-T")), ok("2026-03-01"));
        assert_eq!(d("31 February 2026", None), DateParse::None);
        assert_eq!(d("as soon as possible", None), DateParse::None);
    }

    #[test]
    fn spaced_out_addresses_are_recovered() {
        assert_eq!(
            emails("E-mail Address: maria . garcia @ example-company . com"),
            vec!["maria.garcia@example-company.com"]
        );
        assert_eq!(emails("<3GPPLiaison@etsi.org>, b@x.org"), vec!["3gppliaison@etsi.org", "b@x.org"]);
    }

    #[test]
    fn lists_keep_parentheses_together() {
        assert_eq!(
            split_names("ETSI TC CYBER (WG QSC, Quantum-Safe Cryptography), IETF LAMPS; IETF TLS"),
            vec!["ETSI TC CYBER (WG QSC, Quantum-Safe Cryptography)", "IETF LAMPS", "IETF TLS"]
        );
    }

    #[test]
    fn signature_blocks() {
        let letter = "text\nSincerely,\n\nAna Duarte\nChair\nana.duarte@example-operator.com\n";
        assert_eq!(signature_contacts(letter), vec!["ana.duarte@example-operator.com"]);
        assert!(signature_contacts("no closing here a@b.org").is_empty());
    }

    #[test]
    fn titles() {
        assert_eq!(clean_title("Title: Title: LS on DNS"), "LS on DNS");
        assert_eq!(clean_title("IP measure-\n  ment methods"), "IP measurement methods");
        assert_eq!(clean_title("methods to end-to-\n   end QoE"), "methods to end-to-end QoE");
        assert_eq!(subject_title("New Liaison Statement, \"LS on slicing\""), "LS on slicing");
    }

    fn rel() -> Relationships {
        Relationships::builtin()
    }

    fn run(subject: &str, sender: &str, text: &str) -> Statement {
        let texts = [Source { name: "body", text }];
        let budget = Budget::unlimited();
        understand(&Input { subject: Some(subject), sender: Some(sender), texts: &texts, budget: &budget }, &rel())
            .statement
    }

    #[test]
    fn a_subject_line_in_the_letter_is_the_title_when_no_title_label() {
        let st = run("REF-1: short", "a@example.org", "From: X\nSubject: The real title\nPurpose: For Information\n");
        assert_eq!(st.title.as_deref(), Some("The real title"));
        let st = run("s", "a@example.org", "Subject: Not this\nTitle: This one\n");
        assert_eq!(st.title.as_deref(), Some("This one"));
        // Wrapped, like a title.
        let st = run(
            "s",
            "a@example.org",
            "Purpose: For Comment\nSubject: WT-512 \"YANG Modules for\n  SAPs\" - comments\n\nDear",
        );
        assert_eq!(st.title.as_deref(), Some("WT-512 \"YANG Modules for SAPs\" - comments"));
        // A quoted mail header (a bounce, a forward) is no letter.
        let st =
            run("Undelivered", "mailer-daemon@example.org", "From: a@example.org\nSubject: LS on X\nDate: today\n");
        assert_eq!(st.title.as_deref(), Some("Undelivered"));
    }

    /// The statement and warnings read from one body with `budget`.
    fn run_within(text: &str, budget: &Budget<'_>) -> Understood {
        let texts = [Source { name: "body", text }];
        understand(&Input { subject: Some("s"), sender: Some("a@example.org"), texts: &texts, budget }, &rel())
    }

    /// The warnings that contain `part`.
    fn warned<'w>(u: &'w Understood, part: &str) -> Vec<&'w String> {
        u.warnings.iter().filter(|w| w.contains(part)).collect()
    }

    #[test]
    fn a_passed_deadline_stops_the_reading_at_once_with_a_warning() {
        // The daemon's stage limit passed (issue 13: a reading it had given up on kept a core
        // busy for hours). 6 MB of labelled lines: nothing of them is read, and the reading
        // returns at once with what it has (the title from the mail's subject, the sender).
        let text = (0..200_000).map(|n| format!("Reply to: someone{n}@example.org\n")).collect::<String>();
        let u = within(Duration::from_secs(2), "a reading past its deadline", move || {
            let over = || true;
            run_within(&text, &Budget::until(&over))
        });
        assert_eq!(u.statement.title.as_deref(), Some("s"));
        assert_eq!(u.statement.reply_to, ["a@example.org"]);
        assert_eq!(u.warnings, [budget::STOPPED]);
    }

    #[test]
    fn a_reading_stopped_midway_keeps_what_it_found() {
        // The time is up at the second question, 256 lines in: the labels before are read.
        let asked = std::cell::Cell::new(0);
        let over = || {
            asked.set(asked.get() + 1);
            asked.get() > 1
        };
        let text =
            format!("Title: LS on clocks\nPurpose: For action\n{}Deadline: 2027-03-01\n", "filler\n".repeat(1000));
        let u = run_within(&text, &Budget::until(&over));
        assert_eq!(u.statement.title.as_deref(), Some("LS on clocks"));
        assert_eq!(u.statement.purpose, Some(Purpose::Action));
        assert_eq!(u.statement.deadline, None);
        assert_eq!(warned(&u, budget::STOPPED).len(), 1, "{:?}", u.warnings);
        // With time enough, the deadline is read too.
        let u = run_within(&text, &Budget::unlimited());
        assert_eq!(u.statement.deadline.as_deref(), Some("2027-03-01"));
        assert!(warned(&u, budget::STOPPED).is_empty());
    }

    #[test]
    fn each_cap_clips_with_one_warning() {
        let unlimited = Budget::unlimited();
        let lines = |n: usize, line: &dyn Fn(usize) -> String| (0..n).map(|i| line(i) + "\n").collect::<String>();
        // Addresses: the first MAX_ADDRESSES, one warning for the rest.
        let u = run_within(&lines(MAX_ADDRESSES + 10, &|i| format!("Reply to: r{i}@example.org")), &unlimited);
        assert_eq!(u.statement.reply_to.len(), MAX_ADDRESSES);
        assert_eq!(warned(&u, "reply-to addresses").len(), 1, "{:?}", u.warnings);
        let u = run_within(&lines(MAX_ADDRESSES + 10, &|i| format!("Technical contact: t{i}@example.org")), &unlimited);
        assert_eq!(
            (u.statement.technical_contacts.len(), u.statement.from_contacts.len()),
            (MAX_ADDRESSES, MAX_ADDRESSES)
        );
        assert_eq!(u.warnings.len(), 2, "{:?}", u.warnings);
        // Labelled lines.
        let u = run_within(&lines(MAX_LABELLED_LINES + 10, &|_| "Contact: same@example.org".into()), &unlimited);
        assert_eq!(u.statement.from_contacts, ["same@example.org"]);
        assert_eq!(warned(&u, "labelled lines").len(), 1, "{:?}", u.warnings);
        // Groups, and names looked up.
        let to = (0..MAX_GROUPS + 10).map(|i| format!("IETF G{i}")).collect::<Vec<_>>().join(", ");
        let u = run_within(&format!("To: {to}\n"), &unlimited);
        assert_eq!(u.statement.to_groups.len(), MAX_GROUPS);
        assert_eq!(u.statement.to_groups[0], "IETF G0");
        assert_eq!(warned(&u, "addressed groups").len(), 1, "{:?}", u.warnings);
        let u = run_within(&lines(MAX_GROUPS + 10, &|i| format!("From: Group {i}")), &unlimited);
        assert_eq!(u.statement.from_groups.len(), MAX_GROUPS);
        assert_eq!(warned(&u, "sending groups").len(), 1, "{:?}", u.warnings);
        // Addresses are names that name no group: only the names cap stops them.
        let u = run_within(
            &lines(MAX_NAMES / 2 + 10, &|i| format!("From: p{i}@example.org, q{i}@example.org")),
            &unlimited,
        );
        assert!(u.statement.from_groups.is_empty());
        assert_eq!(warned(&u, "names on From lines").len(), 1, "{:?}", u.warnings);
        // A value's continuation lines, and the title.
        let u = run_within(&format!("Title: {}\n", "word ".repeat(MAX_TITLE_CHARS)), &unlimited);
        let title = u.statement.title.clone().unwrap_or_default();
        assert!(title.len() <= MAX_TITLE_CHARS && title.ends_with("word"), "{title}");
        assert_eq!(warned(&u, "title is longer").len(), 1, "{:?}", u.warnings);
        let u = run_within(
            &format!("Contact: a@example.org\n{}", lines(500, &|i| format!("p{i}@example.org"))),
            &unlimited,
        );
        assert!(u.statement.from_contacts.len() < 500);
        assert_eq!(warned(&u, "labelled value is longer").len(), 1, "{:?}", u.warnings);
        // Document numbers.
        let ids = (0..MAX_IDENTIFIERS + 5).map(|i| format!("C4-26{i:04}")).collect::<Vec<_>>().join(" ");
        let u = run_within(&format!("{ids}\n"), &unlimited);
        assert_eq!(u.statement.other_identifiers.len(), MAX_IDENTIFIERS);
        assert_eq!(warned(&u, "document numbers").len(), 1, "{:?}", u.warnings);
    }

    #[test]
    fn more_deadline_and_reply_labels() {
        let st = run("s", "a@example.org", "Due date: 03/15/2027\nPlease send any reply to: r@example.org\n");
        assert_eq!(st.deadline.as_deref(), Some("2027-03-15"));
        assert_eq!(st.reply_to, vec!["r@example.org"]);
        let st = run("s", "a@example.org", "Reply requested by: 01/03/2027\nPlease send replies to: q@example.org\n");
        assert_eq!(st.deadline, None, "day/month ambiguous without a known convention");
        assert_eq!(st.reply_to, vec!["q@example.org"]);
    }

    #[test]
    fn spelt_out_addresses_are_recovered() {
        assert_eq!(
            emails("Contact: N. Eze, ngozi.eze (at) example-registry (dot) org"),
            vec!["ngozi.eze@example-registry.org"]
        );
        assert_eq!(emails("j.doe [AT] example [DOT] com"), vec!["j.doe@example.com"]);
        assert!(emails("the meeting (at) noon").is_empty());
    }

    /// The labelled lines of one text, without a limit.
    fn labelled(text: &str) -> Vec<(Field, String)> {
        let mut left = usize::MAX;
        super::labelled(text, &Budget::unlimited(), &mut left, &mut Clipped::default())
    }

    #[test]
    fn a_colon_inside_a_continued_value_does_not_end_it() {
        let l = labelled(
            "Response to: IETF EMU WG statement \"X and\n  Y\" (https://datatracker.ietf.org/liaison/2079/)\nDeadline: none\n",
        );
        assert_eq!(l[0].0, Field::Related);
        assert!(l[0].1.ends_with("(https://datatracker.ietf.org/liaison/2079/)"), "{:?}", l[0].1);
        // A label-shaped line still ends it.
        let l = labelled("Contact Person:\nName: Kenji Sato\nE-mail Address: k@example.com\n");
        assert_eq!(l[0], (Field::FromContact, String::new()));
    }

    #[test]
    fn a_long_run_of_empty_lines_after_a_contact_is_read_in_linear_time() {
        // Regression: every empty line looked past the whole run again (N² for N lines; a
        // crafted body of a few megabytes pinned a core far past the stage time limit).
        let text = format!("Contact: a@example.org\n{}Jane Doe\njane@example.org\n", "\n".repeat(300_000));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(labelled(&text));
        });
        let l = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("finished (it took minutes when quadratic)");
        assert_eq!(l, vec![(Field::FromContact, "a@example.org\nJane Doe\njane@example.org".to_string())]);
    }

    #[test]
    fn contacts_listed_in_separate_paragraphs_stay_together() {
        let text = "Contact: Linda Okafor, Chair,\nlinda@example-isp.net\n\nTomasz K, Vice-Chair,\ntomasz@example-vendor.pl\n\n\
                    Send reply to: liaisons@broadband-forum.org\n\nDear chairs,\nwrite to x@example.org.\n";
        let st = run("s", "liaisons@broadband-forum.org", text);
        assert_eq!(st.from_contacts, vec!["linda@example-isp.net", "tomasz@example-vendor.pl"]);
        // A paragraph of prose after the block is not a contact.
        let st = run("s", "a@example.org", "Contact: Ann, ann@example.org\n\nPlease also copy bob@example.org.\n");
        assert_eq!(st.from_contacts, vec!["ann@example.org"]);
    }

    #[test]
    fn people_on_a_from_line_are_contacts_role_addresses_are_not() {
        let st = run(
            "s",
            "sven@example-research.org",
            "From: IEEE 802.1 Working Group (Sven E, Chair, sven@example-research.org)\nTo: IETF DetNet WG (chairs: A, B)\n",
        );
        assert_eq!(st.from_contacts, vec!["sven@example-research.org"]);
        assert_eq!(st.from_groups, vec!["ieee-802-1"]);
        assert_eq!(st.to_groups, vec!["detnet"]);
        let st = run("s", "3GPPLiaison@etsi.org", "From: 3GPP Liaisons <3GPPLiaison@etsi.org>\nTitle: LS\n");
        assert!(st.from_contacts.is_empty(), "{:?}", st.from_contacts);
    }

    #[test]
    fn the_signature_ends_at_the_next_label() {
        let text = "Dear chairs,\n\nKind regards,\nRSSAC Staff\n\nFrom: ICANN RSSAC\nResponse Contact: staff@example.org\n\
                    Technical Contact: Ingrid <ingrid@example-rootops.no>\n";
        let st = run("s", "staff@example.org", text);
        assert_eq!(st.from_contacts, vec!["ingrid@example-rootops.no"]);
        assert_eq!(
            signature_contacts("Regards,\nAna\nE-mail: ana@example.org\n----\nx@example.org"),
            vec!["ana@example.org"]
        );
    }

    #[test]
    fn unknown_ietf_groups_are_kept_as_written() {
        let r = rel();
        assert_eq!(ietf_group_of(&r, "IETF MASQUE WG").as_deref(), Some("IETF MASQUE WG"));
        assert_eq!(ietf_group_of(&r, "IETF DetNet WG (chairs: A, B)").as_deref(), Some("detnet"));
        assert_eq!(ietf_group_of(&r, "SA WG2"), None);
    }

    #[test]
    fn a_name_of_the_organisation_itself_is_kept_as_written() {
        let st = run("s", "x@unicode.org", "From: Unicode Technical Committee\nTo: IETF ART\n");
        assert_eq!(st.from_org.as_deref(), Some("Unicode Consortium"));
        assert_eq!(st.from_groups, vec!["Unicode Technical Committee"]);
    }

    #[test]
    fn the_group_a_datatracker_body_opens_with() {
        let dt = |body: &str| {
            format!(
                "Title: T\nURL of the IETF Web page: https://datatracker.ietf.org/liaison/1/\n\n\
                 From: Jane Doe <jane@example-operator.de>\nTo: TEAS <teas@ietf.org>\nPurpose: For information\n\nBody: {body}\n"
            )
        };
        let st = run(
            "New Liaison Statement, \"T\"",
            "statements@ietf.org",
            &dt("ITU-T Study Group 15 (Question 14/15) thanks the IETF."),
        );
        assert_eq!(st.from_groups, vec!["itu-t-sg-15"]);
        assert_eq!(st.from_contacts, vec!["jane@example-operator.de"]);
        let st = run("s", "statements@ietf.org", &dt("The IEEE 802.3 Working Group would like to inform the IETF."));
        assert_eq!(st.from_groups, vec!["ieee-802-3"]);
        let st = run("s", "statements@ietf.org", &dt("The Broadband Forum Technical Committee (LIAISE-655-00) asks."));
        assert_eq!(st.from_groups, vec!["Broadband Forum Technical Committee"]);
        // Only the organisation, or words that are no group: nothing.
        let st = run("s", "statements@ietf.org", &dt("The Broadband Forum asks the IETF."));
        assert!(st.from_groups.is_empty(), "{:?}", st.from_groups);
        let st = run("s", "statements@ietf.org", &dt("Please Find Attached our statement."));
        assert!(st.from_groups.is_empty(), "{:?}", st.from_groups);
    }
}
