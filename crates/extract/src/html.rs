//! HTML to readable text, without building a tree (so no depth to blow up): a single pass that
//! drops `script`/`style`/`head` content and comments, turns block elements into line breaks,
//! table cells into tab-separated columns and rows into lines, and decodes entities.

/// Converts HTML to text; stops once `max_output` bytes are produced.
pub fn to_text(html: &str, max_output: usize) -> String {
    let mut out = String::with_capacity(html.len().min(max_output) / 2);
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    let mut in_pre = false;
    while !rest.is_empty() && out.len() <= max_output {
        let Some(lt) = rest.find('<') else {
            if skip_until.is_none() {
                push_text(&mut out, rest, in_pre);
            }
            break;
        };
        if skip_until.is_none() {
            push_text(&mut out, &rest[..lt], in_pre);
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if let Some(end) = skip_until {
            if closing && name == end {
                skip_until = None;
            }
            continue;
        }
        match name.as_str() {
            "script" | "style" | "head" | "title" if !closing && !tag.ends_with('/') => {
                skip_until = Some(match name.as_str() {
                    "script" => "script",
                    "style" => "style",
                    "head" => "head",
                    _ => "title",
                });
            }
            "pre" => {
                in_pre = !closing;
                newline(&mut out);
            }
            "td" | "th" if closing => {
                trim_spaces(&mut out);
                out.push('\t');
            }
            "tr" if closing => {
                trim_spaces(&mut out);
                if out.ends_with('\t') {
                    out.pop();
                }
                out.push('\n');
            }
            "br" => out.push('\n'),
            "p" | "div" | "li" | "ul" | "ol" | "table" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
            | "blockquote" | "hr" | "section" | "article" | "header" | "footer" | "dl" | "dt" | "dd" | "address" => {
                newline(&mut out)
            }
            _ => {}
        }
    }
    // Tidy: no trailing spaces on lines, at most one empty line in a row.
    let mut tidy = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let line = line.trim_end_matches([' ', '\t']);
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 || tidy.is_empty() {
                continue;
            }
        } else {
            blank = 0;
        }
        tidy.push_str(line.trim_start_matches(' '));
        tidy.push('\n');
    }
    tidy
}

fn newline(out: &mut String) {
    trim_spaces(out);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn trim_spaces(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

/// Appends text with entities decoded; outside `<pre>`, runs of white space become one space.
fn push_text(out: &mut String, text: &str, pre: bool) {
    let decoded = decode_entities(text);
    if pre {
        out.push_str(&decoded);
        return;
    }
    for c in decoded.chars() {
        if c.is_whitespace() && c != '\u{A0}' {
            if !out.is_empty() && !out.ends_with([' ', '\n', '\t']) {
                out.push(' ');
            }
        } else if c == '\u{A0}' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
}

/// Decodes `&name;`, `&#NNN;` and `&#xHH;`; anything else is left as written.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(|c: char| c == ';' || c.is_whitespace() || c == '&').map(|e| e + 1);
        match end {
            Some(e) if rest.as_bytes().get(e) == Some(&b';') && e > 1 => {
                let name = &rest[1..e];
                let decoded = if let Some(num) = name.strip_prefix('#') {
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse().ok(),
                    };
                    code.and_then(char::from_u32).map(String::from)
                } else {
                    named_entity(name).map(String::from)
                };
                match decoded {
                    Some(d) => {
                        out.push_str(&d);
                        rest = &rest[e + 1..];
                    }
                    None => {
                        out.push('&');
                        rest = &rest[1..];
                    }
                }
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The named entities that occur in statements (XML's five and common HTML ones).
pub fn named_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        "nbsp" => " ",
        "ndash" => "\u{2013}",
        "mdash" => "\u{2014}",
        "lsquo" => "\u{2018}",
        "rsquo" => "\u{2019}",
        "ldquo" => "\u{201C}",
        "rdquo" => "\u{201D}",
        "hellip" => "\u{2026}",
        "bull" => "\u{2022}",
        "middot" => "\u{B7}",
        "copy" => "\u{A9}",
        "reg" => "\u{AE}",
        "trade" => "\u{2122}",
        "eacute" => "é",
        "egrave" => "è",
        "aacute" => "á",
        "agrave" => "à",
        "ouml" => "ö",
        "uuml" => "ü",
        "auml" => "ä",
        "szlig" => "ß",
        "ccedil" => "ç",
        "ntilde" => "ñ",
        "oacute" => "ó",
        "iacute" => "í",
        "uacute" => "ú",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_tables_entities_and_skipped_content() {
        let html = "<html><head><title>x</title><style>p{}</style></head><body>\
            <p>Dear   colleagues,<br>please find</p><!-- hidden -->\
            <table><tr><td>From:</td><td>ITU-T&nbsp;SG15</td></tr>\
            <tr><th>Deadline</th><td>1&#160;March 2027 &amp; later &#x2013; ok</td></tr></table>\
            <script>alert(1)</script><div>Fish &chips; &unknown; 5 &lt; 6</div></body></html>";
        assert_eq!(
            to_text(html, 10_000),
            "Dear colleagues,\nplease find\nFrom:\tITU-T SG15\nDeadline\t1 March 2027 & later \u{2013} ok\nFish &chips; &unknown; 5 < 6\n"
        );
    }

    #[test]
    fn unterminated_markup_does_not_hang_or_panic() {
        assert_eq!(to_text("text <b", 100), "text\n");
        assert_eq!(to_text("a <!-- never closed", 100), "a\n");
        assert_eq!(to_text("<script>forever", 100), "");
        let deep = "<div>".repeat(100_000) + "x";
        assert_eq!(to_text(&deep, 1000).trim(), "x");
    }
}
