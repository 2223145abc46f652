//! Which way a statement goes: sent *to* the IETF (incoming, the usual case), or sent *by* the
//! IETF to another body (outgoing: the datatracker copies the coordinators on those since
//! 2025, and chairs copy the mailbox), and which outgoing statement an incoming one answers.
//!
//! **Architecture invariant: pure, no I/O.**
//!
//! An outgoing statement is one whose own `From:` line (the datatracker's notice writes it
//! `From: <group name> <address>`, as a statement's header block does) names the IETF side (an
//! IETF group, the IAB, the IESG, or an address in an IETF domain) and whose `To:` line names a
//! body the relationships data knows. The mail's own sender does not decide: a manager who
//! forwards an incoming statement is on the IETF side too.

use liaisond_model::{History, KnownStatement, Statement, normalize_address};

use crate::relationships::Relationships;
use crate::tracking::tracking_ids_in;

/// An outgoing statement: who sent it and to whom.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outgoing {
    /// The IETF side, as named ("Operations and Management Area Working Group (opsawg)").
    pub from: String,
    /// The addressed organisation's canonical name (`Broadband Forum`).
    pub to: String,
    /// The addressed group of it, when one is named (its acronym): it may have its own manager.
    pub to_group: Option<String>,
}

/// How many lines from the top of a text the `From:`/`To:` block is looked for in.
const HEADER_LINES: usize = 60;

/// The value of the first `label:` line among the first lines of `text`.
fn labelled<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines().take(HEADER_LINES).find_map(|line| {
        let line = line.trim();
        let name = line.get(..label.len())?;
        let value = line.get(label.len()..)?.strip_prefix(':')?;
        name.eq_ignore_ascii_case(label).then(|| value.trim())
    })
}

/// The entries of a `From:`/`To:` value, at most 16, each as (name, address): the datatracker
/// writes `IETF OPSAWG (Joe Clarke <joe@example.com>)` and `Broadband Forum (liaisons@bbf.org)`
/// (its `liaisons/liaison_mail.txt`), a statement's own block `Name <address>`. Commas inside
/// parentheses or angle brackets do not split.
fn entries(value: &str) -> Vec<(String, Option<String>)> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in value.char_indices() {
        match c {
            '(' | '<' => depth += 1,
            ')' | '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if parts.len() == 16 {
            break;
        }
    }
    if parts.len() < 16 {
        parts.push(&value[start..]);
    }
    parts
        .into_iter()
        .map(|part| {
            let part = part.trim();
            // The name is what comes before a `(` or a `<`; the address, the first one inside.
            let cut = part.find(['(', '<']).unwrap_or(part.len());
            let name = part[..cut].trim().trim_matches('"').to_string();
            let address =
                crate::understand::emails(&part[cut..]).into_iter().next().and_then(|a| normalize_address(&a));
            if cut == part.len() && part.contains('@') && !part.contains(' ') {
                return (String::new(), normalize_address(part));
            }
            (name, address)
        })
        .collect()
}

/// The IETF group or body an entry names, labelled "Name (acronym)", or by its IETF address.
fn ietf_side(rel: &Relationships, name: &str, address: Option<&str>) -> Option<String> {
    let name = name.trim_start_matches("IETF ").trim_start_matches("the ");
    if !name.is_empty()
        && let Some(g) = rel.ietf_group(name)
    {
        return Some(format!("{} ({})", g.name, g.acronym));
    }
    let address = address?;
    // A group's list or role address: opsawg@ietf.org, opsawg-chairs@ietf.org, iab@iab.org.
    let local = address.split('@').next().unwrap_or_default();
    let acronym = local.strip_suffix("-chairs").or_else(|| local.strip_suffix("-ads")).unwrap_or(local);
    if let Some(g) = rel.ietf_group(acronym).filter(|_| rel.is_ietf_side(address)) {
        return Some(format!("{} ({})", g.name, g.acronym));
    }
    (rel.is_ietf_side(address) && !rel.is_datatracker_sender(address) && !rel.is_manager(address))
        .then(|| address.to_string())
}

/// The organisation an entry names (by name, group name, or address), and the group when a
/// group is named.
fn organization(rel: &Relationships, name: &str, address: Option<&str>) -> Option<(String, Option<String>)> {
    if !name.is_empty() {
        if let Some(o) = rel.organization(name) {
            return Some((o.name.clone(), None));
        }
        if let Some(g) = rel.resolve_group(None, name)
            && let Some(o) = g.organization()
        {
            let group = (g.acronym() != o.acronym).then(|| g.acronym().to_string());
            return Some((o.name.clone(), group));
        }
    }
    address.and_then(|a| rel.organization_by_sender(a)).map(|m| (m.organization.name.clone(), None))
}

/// Whether `text` (the statement's own text: the datatracker's notice, or the mail body that
/// carries the statement's header block) is a statement the IETF side sends to another body.
pub fn outgoing(text: &str, rel: &Relationships) -> Option<Outgoing> {
    let from = entries(labelled(text, "from")?).into_iter().next()?;
    let from = ietf_side(rel, &from.0, from.1.as_deref())?;
    let (to, to_group) = entries(labelled(text, "to")?)
        .into_iter()
        .find_map(|(name, address)| organization(rel, &name, address.as_deref()))?;
    Some(Outgoing { from, to, to_group })
}

/// Title prefixes of a reply to a statement ("Reply LS on X" answers "LS on X").
const REPLY_PREFIXES: [&str; 6] =
    ["reply ls on ", "reply ls to ", "reply to ls on ", "reply to ", "response to ", "ls reply on "];

/// The open outgoing statement an incoming one answers: the one its `related` field names (a
/// datatracker URL, a tracking ID, or a title), or whose title its own "Reply LS on ..."
/// title repeats.
pub fn answered_outgoing(st: &Statement, history: &dyn History) -> Option<KnownStatement> {
    let outgoing = |k: KnownStatement| k.outgoing.then_some(k);
    if let Some(related) = st.related.as_deref() {
        for word in related.split_whitespace() {
            if let Some(record) = crate::datatracker::record_url(word)
                && let Some(k) = history.by_record(&record.url).and_then(outgoing)
            {
                return Some(k);
            }
        }
        if let Some(k) = tracking_ids_in(related).iter().find_map(|id| history.by_tracking_id(id).and_then(outgoing)) {
            return Some(k);
        }
        let title = related.split(" (http").next().unwrap_or(related).trim().trim_matches('"');
        if let Some(k) = history.outgoing_by_title(title) {
            return Some(k);
        }
    }
    // The datatracker's notice of the answer: `Referenced liaison: <title> (<URL>)`.
    if let Some(k) = referenced_title(&st.body).and_then(|t| history.outgoing_by_title(t)) {
        return Some(k);
    }
    let title = st.title.as_deref()?.trim();
    let lower = title.to_ascii_lowercase();
    let prefix = REPLY_PREFIXES.iter().find(|p| lower.starts_with(*p))?;
    let rest = title[prefix.len()..].trim().trim_matches('"');
    // "Reply LS on X" answers "LS on X" (3GPP's form); "Reply to X" answers "X".
    let candidates = if prefix.contains("ls on") || prefix.ends_with("on ") {
        vec![format!("LS on {rest}"), rest.to_string()]
    } else {
        vec![rest.to_string()]
    };
    candidates.iter().find_map(|t| history.outgoing_by_title(t))
}

/// The title on a `Referenced liaison: <title> (<URL>)` line.
fn referenced_title(body: &str) -> Option<&str> {
    let value = labelled(body, "referenced liaison")?;
    let title = value.split(" (http").next().unwrap_or(value).trim();
    (!title.is_empty() && !title.starts_with("http")).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaisond_model::NoHistory;

    fn rel() -> Relationships {
        Relationships::builtin()
    }

    #[test]
    fn a_datatracker_notice_of_an_outgoing_statement() {
        let text = "Title: LS on YANG data models\nURL of the IETF Web page: https://datatracker.ietf.org/liaison/3001/\n\n\
                    From: Operations and Management Area Working Group <opsawg@ietf.org>\n\
                    To: Broadband Forum <liaisons@broadband-forum.org>\nPurpose: For action\n";
        let o = outgoing(text, &rel()).expect("outgoing");
        assert_eq!(o.to, "Broadband Forum");
        assert!(o.from.contains("(opsawg)"), "{o:?}");
    }

    #[test]
    fn the_datatracker_template_form() {
        // ietf/templates/liaisons/liaison_mail.txt: `From: <from_name> (<person> <address>)`,
        // `To: <to_name> (<to_contact>)`.
        let text = "From: IETF OPSAWG (Joe Clarke <jclarke@example.com>)\n\
                    To: Broadband Forum (liaisons@broadband-forum.org, other@broadband-forum.org)\n";
        let o = outgoing(text, &rel()).expect("outgoing");
        assert_eq!((o.to.as_str(), o.to_group.as_deref()), ("Broadband Forum", None));
        assert!(o.from.contains("(opsawg)"), "{o:?}");
        // An incoming one in the same form.
        assert_eq!(
            outgoing("From: ITU-T SG15 (Jane Doe <tsbsg15@itu.int>)\nTo: IETF CCAMP (ccamp@ietf.org)\n", &rel()),
            None
        );
        // A group of the addressed body is kept: it may have its own manager.
        let g = outgoing("From: IETF DetNet (x <detnet-chairs@ietf.org>)\nTo: IEEE 802.1 (y@ieee.org)\n", &rel())
            .expect("out");
        assert_eq!(g.to, "IEEE 802");
        assert!(g.to_group.is_some(), "{g:?}");
    }

    #[test]
    fn the_iab_and_a_chairs_address_are_the_ietf_side() {
        let iab = outgoing("From: Internet Architecture Board\nTo: ITU-T SG15\n", &rel()).expect("outgoing");
        assert_eq!(iab.to, "ITU-T");
        let chairs = outgoing("From: OPSAWG Chairs <opsawg-chairs@ietf.org>\nTo: 3GPP SA5\n", &rel()).expect("chairs");
        assert_eq!(chairs.to, "3GPP");
    }

    #[test]
    fn a_multibyte_character_where_the_colon_would_be_is_no_label() {
        // Found by the fuzzer: the label's length fell inside a character.
        assert_eq!(labelled("fromé: x\nto\u{e9}x\nFrom: y", "from"), Some("y"));
        assert_eq!(labelled("Fro\u{e9}", "from"), None);
    }

    #[test]
    fn the_header_block_is_looked_for_in_the_first_lines_only() {
        let late =
            format!("{}From: IETF OPSAWG <opsawg@ietf.org>\nTo: Broadband Forum\n", "text\n".repeat(HEADER_LINES));
        assert_eq!(outgoing(&late, &rel()), None);
        let early = format!("{}From: IETF OPSAWG <opsawg@ietf.org>\nTo: Broadband Forum\n", "text\n".repeat(10));
        assert!(outgoing(&early, &rel()).is_some());
    }

    #[test]
    fn incoming_statements_are_not_outgoing() {
        let r = rel();
        assert_eq!(outgoing("From: ITU-T SG15\nTo: IETF CCAMP\nPurpose: For action\n", &r), None);
        assert_eq!(outgoing("From: Jane Doe <jane@example-operator.de>\nTo: TEAS <teas@ietf.org>\n", &r), None);
        // From the IETF side but to nobody outside it: not a liaison statement going out.
        assert_eq!(outgoing("From: OPSAWG <opsawg@ietf.org>\nTo: IESG <iesg@ietf.org>\n", &r), None);
        assert_eq!(outgoing("no header block at all", &r), None);
    }

    #[test]
    fn reply_titles_name_the_statement_they_answer() {
        struct One(KnownStatement);
        impl History for One {
            fn by_tracking_id(&self, _: &str) -> Option<KnownStatement> {
                None
            }
            fn by_thread(&self, _: &[String]) -> Option<KnownStatement> {
                None
            }
            fn by_message_id(&self, _: &str) -> Option<KnownStatement> {
                None
            }
            fn by_title_and_org(&self, _: &str, _: &str) -> Option<KnownStatement> {
                None
            }
            fn outgoing_by_title(&self, title: &str) -> Option<KnownStatement> {
                title.eq_ignore_ascii_case("LS on YANG data models").then(|| self.0.clone())
            }
            fn by_record(&self, url: &str) -> Option<KnownStatement> {
                (url == "https://datatracker.ietf.org/liaison/3001/").then(|| self.0.clone())
            }
        }
        let known = KnownStatement { id: 3, tracking_id: "LS-2026-0003".into(), outgoing: true, ..Default::default() };
        let h = One(known);
        let st = |title: &str, related: Option<&str>| Statement {
            title: Some(title.into()),
            related: related.map(str::to_string),
            ..Statement::default()
        };
        for (title, related) in [
            ("Reply LS on YANG data models", None),
            ("Reply to LS on YANG data models", None),
            ("Response to LS on YANG data models", None),
            ("Something else", Some("LS on YANG data models (https://datatracker.ietf.org/liaison/3001/)")),
            ("Something else", Some("https://datatracker.ietf.org/liaison/3001/")),
        ] {
            assert_eq!(answered_outgoing(&st(title, related), &h).map(|k| k.id), Some(3), "{title} / {related:?}");
        }
        assert_eq!(answered_outgoing(&st("LS on YANG data models", None), &h), None, "not a reply");
        assert_eq!(answered_outgoing(&st("Reply LS on YANG data models", None), &NoHistory), None);
    }
}
