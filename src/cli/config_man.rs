//! `liaisond generate config-man`: liaisond.toml(5), the configuration reference, made from the
//! example configuration. Its comments are already the documentation of every key (the README
//! sends operators there), so the page says what the file says and a key added to one is in
//! the other: there is no second text to keep true.
//!
//! The example's shape, which this relies on (a test renders the page with man(1)):
//! comment paragraphs, separated by a blank line or a lone `#`; a section line `[name]` or
//! `[[name]]`, maybe commented out; a key line `name = value`, maybe commented out, whose value
//! may go on over lines up to a lone `]`. The paragraphs before a section describe it, those
//! before a key describe the key.

/// The example configuration, as the package installs it as /etc/liaisond/liaisond.toml.
const EXAMPLE: &str = include_str!("../../config/liaisond.example.toml");

/// The page, in roff with the man(7) macros.
pub fn render(version: &str) -> String {
    let mut page = String::new();
    page.push_str(&format!(".TH LIAISOND.TOML 5 \"\" \"liaisond {}\" \"File Formats Manual\"\n", escape(version)));
    page.push_str(".SH NAME\nliaisond.toml \\- the configuration of liaisond\n");
    page.push_str(".SH SYNOPSIS\n/etc/liaisond/liaisond.toml\n");
    page.push_str(".SH DESCRIPTION\n");

    let mut paragraphs: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    // The first block of comments, up to the first blank line, is the page's description.
    let mut in_description = true;
    let mut heading_written = false;
    let mut lines = EXAMPLE.lines();
    while let Some(line) = lines.next() {
        let text = uncomment(line);
        if line.trim().is_empty() || text.is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            if line.trim().is_empty() && in_description {
                in_description = false;
                write_paragraphs(&mut page, &mut paragraphs, ".PP\n");
                page.push_str(
                    ".PP\nBelow, each key is followed by its line in the example configuration (the \
                     file the package installs): a line written there as a comment shows the \
                     key's default or an example value.\n",
                );
            }
            continue;
        }
        if let Some(section) = section_name(text) {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            page.push_str(&format!(".SH \"{}\"\n", escape(section)));
            heading_written = true;
            write_paragraphs(&mut page, &mut paragraphs, ".PP\n");
            continue;
        }
        if let Some(key) = key_name(text) {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            if !heading_written {
                page.push_str(".SH \"TOP-LEVEL KEYS\"\n");
                heading_written = true;
            }
            page.push_str(&format!(".TP\n.B {}\n", escape(key)));
            write_paragraphs(&mut page, &mut paragraphs, ".IP\n");
            page.push_str(".IP\n.nf\n");
            page.push_str(&code(text));
            // A list value goes on to its closing bracket.
            let value = text.split_once('=').map_or("", |(_, v)| v.trim());
            if value.starts_with('[') && !value.ends_with(']') {
                for more in lines.by_ref() {
                    let more = uncomment(more);
                    page.push_str(&code(more));
                    if more.trim() == "]" {
                        break;
                    }
                }
            }
            page.push_str(".fi\n");
            continue;
        }
        current.push(text);
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    write_paragraphs(&mut page, &mut paragraphs, ".PP\n");

    page.push_str(
        ".SH FILES\n\
         .TP\n/etc/liaisond/liaisond.toml\n\
         This file (mode 0640, owner root, group liaisond: the daemon and the operator \
         commands run as liaisond read it).\n\
         .TP\n/etc/liaisond/imap-password\n\
         The IMAP password (mode 0600, root): systemd hands it to the daemon as the credential \
         imap\\-password (LoadCredential= in the unit).\n\
         .TP\n/usr/share/liaisond/relationships.toml\n\
         A copy of the built-in relationships data; copy it to /etc/liaisond and name it with \
         relationships to change it.\n\
         .TP\n/usr/share/liaisond/templates/\n\
         Copies of the built-in mail templates; copy the directory to /etc/liaisond and name it \
         with [templates] directory to change them.\n\
         .TP\n/var/lib/liaisond/liaisond.db\n\
         The database (the unit's StateDirectory=).\n\
         .SH \"SEE ALSO\"\n\
         .BR liaisond (8),\n\
         .BR systemd.exec (5)\n",
    );
    page
}

/// A comment line's text (without `#` and one space), or the line itself.
fn uncomment(line: &str) -> &str {
    match line.strip_prefix('#') {
        Some(rest) => rest.strip_prefix(' ').unwrap_or(rest),
        None => line,
    }
    .trim_end()
}

/// `[store]` or `[[imap]]`: the section's name as written.
fn section_name(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner.strip_prefix('[').and_then(|i| i.strip_suffix(']')).unwrap_or(inner);
    let is_name = !inner.is_empty() && inner.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
    is_name.then_some(text)
}

/// `name = value`: the key's name.
fn key_name(text: &str) -> Option<&str> {
    let (name, _) = text.split_once(" = ")?;
    let is_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    is_name.then_some(name)
}

/// Writes and empties the paragraphs, each after `separator`.
fn write_paragraphs(page: &mut String, paragraphs: &mut Vec<Vec<&str>>, separator: &str) {
    for (i, paragraph) in paragraphs.drain(..).enumerate() {
        if i > 0 || separator == ".PP\n" {
            page.push_str(separator);
        }
        for line in paragraph {
            page.push_str(&escape(line));
            page.push('\n');
        }
    }
}

/// A line of the file, shown as written (in no-fill mode, bold). The characters groff would
/// otherwise print typographically (a minus as a hyphen, quotes curly, `^` and `~` as
/// accents) are named, so that a line copied from the page works in the file.
fn code(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    for c in escape(line).chars() {
        match c {
            '-' => out.push_str("\\-"),
            '\'' => out.push_str("\\(aq"),
            '`' => out.push_str("\\(ga"),
            '^' => out.push_str("\\(ha"),
            '~' => out.push_str("\\(ti"),
            c => out.push(c),
        }
    }
    format!("\\fB{out}\\fR\n")
}

/// Text safe on a roff line: a backslash is `\e`, and a line starting with a control
/// character (`.` or `'`) is protected by `\&`.
fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e");
    if escaped.starts_with('.') || escaped.starts_with('\'') { format!("\\&{escaped}") } else { escaped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_and_section_of_the_example_is_on_the_page() {
        let page = render("0.1.0");
        for line in EXAMPLE.lines() {
            let text = uncomment(line);
            if let Some(key) = key_name(text) {
                assert!(page.contains(&format!(".B {key}\n")), "{key} missing");
            }
            if let Some(section) = section_name(text) {
                assert!(page.contains(&format!(".SH \"{section}\"\n")), "{section} missing");
            }
        }
        for section in ["[store]", "[[imap]]", "[smtp]", "[acknowledgements]", "[metrics]"] {
            assert!(page.contains(&format!(".SH \"{section}\"")), "{section}");
        }
    }

    #[test]
    fn roff_control_characters_are_escaped() {
        assert_eq!(escape(".starts with a dot"), "\\&.starts with a dot");
        assert_eq!(escape("'quoted"), "\\&'quoted");
        assert_eq!(escape(r"a\b"), r"a\eb");
        assert_eq!(key_name("never_to = ["), Some("never_to"));
        assert_eq!(key_name("Default: 465 for \"implicit\""), None);
        assert_eq!(section_name("[[imap]]"), Some("[[imap]]"));
        assert_eq!(section_name("[Unit]"), None);
        assert_eq!(section_name("[a, b]"), None);
        assert_eq!(code("'^a-b~'"), "\\fB\\&\\(aq\\(haa\\-b\\(ti\\(aq\\fR\n");
    }
}
