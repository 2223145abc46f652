//! The one way untrusted text is made safe to show: on a terminal, in a log line, in a mail
//! we write. A sender controls subjects, names, titles, attachment and zip entry names; such
//! text must not move the cursor, recolour a terminal (escape sequences), reverse what follows
//! (U+202E), or start a new line that reads as ours (`\nSender: … verified`).

/// Whether `c` separates lines or is a tab: shown as a space by [`printable`].
fn breaks_line(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Unicode's format characters (general category Cf): invisible, and some reorder or hide
/// the text around them (bidirectional controls, zero-width characters, tags).
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{ad}'
        | '\u{600}'..='\u{605}'
        | '\u{61c}'
        | '\u{6dd}'
        | '\u{70f}'
        | '\u{890}'..='\u{891}'
        | '\u{8e2}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{110bd}'
        | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0001}'
        | '\u{e0020}'..='\u{e007f}')
}

/// One line of untrusted text, safe to show: line and paragraph separators and tabs become a
/// space, other control characters (Cc) and format characters (Cf) are removed.
pub fn printable(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            if breaks_line(c) {
                Some(' ')
            } else if c.is_control() || is_format(c) {
                None
            } else {
                Some(c)
            }
        })
        .collect()
}

/// Several lines of untrusted text: each line made [`printable`], joined with `\n` (a `\r\n`
/// or a lone `\r` ends a line too).
pub fn printable_lines(text: &str) -> String {
    text.split('\n').map(|l| printable(l.strip_suffix('\r').unwrap_or(l))).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_formats_and_separators_are_gone() {
        assert_eq!(printable("a\x1b[31mred\x1b[0m"), "a[31mred[0m");
        assert_eq!(printable("entry.doc\nSender: x (verified)"), "entry.doc Sender: x (verified)");
        assert_eq!(printable("cod.\u{202e}fdp.exe"), "cod.fdp.exe");
        assert_eq!(printable("zero\u{200b}width\u{feff}"), "zerowidth");
        assert_eq!(printable("line\u{2028}para\u{2029}end\u{85}x"), "line para end x");
        assert_eq!(printable("tab\there\x07\x00"), "tab here");
        assert_eq!(printable("Ünïcödé — 中文 مرحبا"), "Ünïcödé — 中文 مرحبا", "letters in any script stay");
        assert_eq!(printable_lines("one\r\ntwo\x1b\n\u{202e}three"), "one\ntwo\nthree");
    }
}
