//! The text of the mail liaisond writes, at 72 columns: RFC 5322 §2.1.1 asks for lines of at
//! most 78 characters, and 72 leaves room for the `> ` of a reply quoting it. Templates are
//! written with their values in place; a value (a title, a list of addresses) makes a line as
//! long as it is, so every body is wrapped after it is rendered, with textwrap.
//!
//! A wrapped line keeps its shape: a list item (`- ...`) continues under its text, a labelled
//! field (`Title:      ...`) under its value, an indented line at its indent. A word longer
//! than the line (a URL) is never broken: it stays whole on a line of its own.

use textwrap::core::display_width;
use textwrap::{Options, WordSplitter};

/// The widest line written.
pub const WIDTH: usize = 72;

/// `text` with every line wider than [`WIDTH`] wrapped. A paragraph of prose (lines that are
/// neither indented, list items nor fields) with a line too wide is filled again as a whole, so
/// a template's own line breaks do not leave a short line after each wrapped one.
pub fn body(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_prose(line) {
            let end = (i..lines.len()).find(|&j| !is_prose(lines[j])).unwrap_or(lines.len());
            let paragraph = &lines[i..end];
            if paragraph.iter().any(|l| display_width(l) > WIDTH) {
                out.extend(fill(&paragraph.join(" "), ""));
            } else {
                out.extend(paragraph.iter().map(|l| l.to_string()));
            }
            i = end;
            continue;
        }
        if display_width(line) <= WIDTH {
            out.push(line.to_string());
        } else {
            let (prefix, content) = line.split_at(hanging(line));
            out.extend(fill(content.trim_start(), prefix));
        }
        i += 1;
    }
    out.join("\n")
}

/// A line of a prose paragraph: text at the margin, not a list item or a field.
fn is_prose(line: &str) -> bool {
    !line.trim().is_empty() && !line.starts_with(' ') && !line.starts_with("- ") && label_value(line).is_none()
}

/// `content` in lines of at most [`WIDTH`], the first after `prefix`, the rest under it. Words
/// are broken only at spaces: never at a hyphen (`LS-2026-0042`, an address) nor inside one.
fn fill(content: &str, prefix: &str) -> Vec<String> {
    let indent = " ".repeat(display_width(prefix));
    let options = Options::new(WIDTH)
        .initial_indent(prefix)
        .subsequent_indent(&indent)
        .break_words(false)
        .word_splitter(WordSplitter::NoHyphenation);
    let wrapped: Vec<String> = textwrap::wrap(content, options).into_iter().map(|l| l.into_owned()).collect();
    if wrapped.is_empty() { vec![prefix.trim_end().to_string()] } else { wrapped }
}

/// Where a line's text starts, for its continuation lines: after its indent, after a list
/// item's `- `, or at a labelled field's value (`Handled by: ...`). Never past half the width:
/// a continuation must have room.
fn hanging(line: &str) -> usize {
    let lead = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[lead..];
    let at = if rest.starts_with("- ") {
        lead + 2
    } else if let Some(value) = label_value(rest) {
        lead + value
    } else {
        lead
    };
    if display_width(&line[..at]) > WIDTH / 2 { lead } else { at }
}

/// The byte offset of a field's value in `Label:   value`: a label of letters, spaces and
/// hyphens (at most 24 bytes), a colon, at least one space.
fn label_value(text: &str) -> Option<usize> {
    let colon = text.find(':')?;
    let label = &text[..colon];
    if label.is_empty()
        || label.len() > 24
        || !label.starts_with(|c: char| c.is_ascii_alphabetic())
        || !label.bytes().all(|b| b.is_ascii_alphabetic() || b == b' ' || b == b'-' || b == b'\'')
    {
        return None;
    }
    let after = &text[colon + 1..];
    let spaces = after.len() - after.trim_start_matches(' ').len();
    (spaces > 0 && spaces < after.len()).then_some(colon + 1 + spaces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widest(text: &str) -> usize {
        text.lines().map(display_width).max().unwrap_or(0)
    }

    #[test]
    fn short_lines_are_left_alone() {
        let text = "Title:  short\n\n- an item\n    indented\n";
        assert_eq!(body(text), text);
    }

    #[test]
    fn a_paragraph_line_wraps_at_72() {
        let long = "word ".repeat(40);
        let wrapped = body(long.trim_end());
        assert!(widest(&wrapped) <= WIDTH, "{wrapped}");
        assert_eq!(wrapped.split_whitespace().count(), 40, "no word lost");
    }

    #[test]
    fn a_field_continues_under_its_value_and_an_item_under_its_text() {
        let addresses = (1..=8).map(|n| format!("manager{n}@example.org")).collect::<Vec<_>>().join(", ");
        let wrapped = body(&format!("Handled by: {addresses}"));
        let lines: Vec<&str> = wrapped.lines().collect();
        assert!(lines.len() > 1 && lines[0].starts_with("Handled by: manager1@"), "{wrapped}");
        assert!(lines[1..].iter().all(|l| l.starts_with("            m")), "{wrapped}");
        let item = body(&format!("- LS-2026-0042  Example SDO: {}", "a long title ".repeat(8)));
        assert!(item.lines().skip(1).all(|l| l.starts_with("  ") && !l.starts_with("   ")), "{item}");
        assert!(widest(&item) <= WIDTH, "{item}");
        let indented = body(&format!("    {}", "quoted text ".repeat(10)));
        assert!(indented.lines().all(|l| l.starts_with("    ")), "{indented}");
    }

    #[test]
    fn a_url_is_never_broken() {
        let url = format!("https://datatracker.ietf.org/documents/LIAISON/{}.pdf", "x".repeat(80));
        let wrapped = body(&format!("Attachment: {url} and some words after it"));
        assert!(wrapped.lines().any(|l| l.ends_with(&url)), "whole, on one line: {wrapped}");
        assert!(wrapped.lines().nth(1).is_some_and(|l| l.starts_with("            and")), "{wrapped}");
    }

    #[test]
    fn a_paragraph_is_filled_again_and_nothing_breaks_at_a_hyphen() {
        let text = format!(
            "Thank you for your statement from {}. It was\nreceived and logged as LS-2026-0042; the relevant\npeople know.\n\nIAB liaison coordination\nliaison-coordination@iab.org",
            "a very long organisation name ".repeat(2)
        );
        let wrapped = body(&text);
        assert!(widest(&wrapped) <= WIDTH, "{wrapped}");
        assert!(wrapped.contains("LS-2026-0042;"), "{wrapped}");
        assert!(wrapped.lines().all(|l| !l.ends_with('-')), "{wrapped}");
        // The short paragraph after it keeps its lines.
        assert!(wrapped.ends_with("\n\nIAB liaison coordination\nliaison-coordination@iab.org"), "{wrapped}");
        let routing = body(&format!(
            "Routing:          to {}, copy to liaison-coordination@iab.org",
            "m@example.org, ".repeat(3)
        ));
        assert!(
            routing
                .lines()
                .any(|l| l.trim() == "liaison-coordination@iab.org" || l.ends_with("liaison-coordination@iab.org")),
            "{routing}"
        );
        assert!(!routing.contains("liaison-\n"), "{routing}");
    }

    #[test]
    fn prose_with_a_colon_is_not_a_field() {
        let text = format!("Note that this sentence has a colon: {}", "then more words ".repeat(6));
        let wrapped = body(&text);
        assert!(wrapped.lines().skip(1).all(|l| !l.starts_with(' ')), "{wrapped}");
    }
}
