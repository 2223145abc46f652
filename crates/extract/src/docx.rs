//! `.docx` (Office Open XML): the text of `word/document.xml`, paragraphs and table cells in
//! document order. A table row becomes one line with its cells separated by tabs, so a
//! "Label | value" table reads like the labelled lines of other statements.

use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{ExtractError, ExtractLimits};

fn malformed(detail: impl ToString) -> ExtractError {
    ExtractError::Malformed { kind: "Word (.docx)", detail: detail.to_string() }
}

pub(super) fn text(bytes: &[u8], limits: &ExtractLimits) -> Result<String, ExtractError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(malformed)?;
    let mut part = zip.by_name("word/document.xml").map_err(|e| malformed(format!("word/document.xml: {e}")))?;
    if part.size() > limits.max_entry_bytes {
        return Err(ExtractError::Limit(format!(
            "word/document.xml unpacks to {} bytes (limit {})",
            part.size(),
            limits.max_entry_bytes
        )));
    }
    let mut xml = Vec::new();
    // The declared size can lie: read one byte past the limit to notice.
    (&mut part).take(limits.max_entry_bytes + 1).read_to_end(&mut xml).map_err(malformed)?;
    if xml.len() as u64 > limits.max_entry_bytes {
        return Err(ExtractError::Limit(format!(
            "word/document.xml unpacks to more than {} bytes",
            limits.max_entry_bytes
        )));
    }
    let xml = String::from_utf8(xml).map_err(|_| malformed("word/document.xml is not UTF-8"))?;
    document_text(&xml, limits.max_output_bytes)
}

/// WordprocessingML to text: `w:t` runs, `w:tab`, `w:br`/`w:cr`, paragraphs (`w:p`), table
/// cells (`w:tc`) and rows (`w:tr`).
fn document_text(xml: &str, max_output: usize) -> Result<String, ExtractError> {
    let mut reader = Reader::from_str(xml);
    let mut out = String::new();
    let mut in_text = false;
    let mut cell_depth = 0usize;
    loop {
        if out.len() > max_output {
            break;
        }
        match reader.read_event().map_err(malformed)? {
            Event::Start(e) => match e.local_name().as_ref() {
                "t" => in_text = true,
                "tc" => cell_depth += 1,
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "tab" => out.push('\t'),
                "br" | "cr" => out.push(if cell_depth > 0 { ' ' } else { '\n' }),
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                // Inside a cell, paragraphs are joined with a space so the row stays one line.
                "p" => out.push(if cell_depth > 0 { ' ' } else { '\n' }),
                "tc" => {
                    cell_depth = cell_depth.saturating_sub(1);
                    trim_end_spaces(&mut out);
                    out.push('\t');
                }
                "tr" => {
                    trim_end_spaces(&mut out);
                    if out.ends_with('\t') {
                        out.pop();
                    }
                    out.push('\n');
                }
                _ => {}
            },
            Event::Text(t) if in_text => out.push_str(&t.xml10_content()),
            Event::CData(t) if in_text => out.push_str(&t.into_inner()),
            // quick-xml ≥ 0.38 reports `&amp;` and `&#8211;` as separate events.
            Event::GeneralRef(r) if in_text => {
                if let Some(c) = r.resolve_char_ref().ok().flatten() {
                    out.push(c);
                } else if let Some(c) = super::html::named_entity(&r) {
                    out.push_str(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

fn trim_end_spaces(s: &mut String) {
    while s.ends_with(' ') {
        s.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_tables_and_entities() {
        let xml = r#"<?xml version="1.0"?><w:document xmlns:w="x"><w:body>
<w:p><w:r><w:t>Title: LS on </w:t></w:r><w:r><w:t xml:space="preserve">DetNet &amp; TSN</w:t></w:r></w:p>
<w:p><w:r><w:t>A</w:t><w:tab/><w:t>B&#8211;C</w:t><w:br/><w:t>next</w:t></w:r></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:t>From:</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>IEEE 802.1</w:t></w:r></w:p><w:p><w:r><w:t>WG</w:t></w:r></w:p></w:tc></w:tr>
<w:tr><w:tc><w:p><w:r><w:t>Purpose:</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>For &lt;action&gt;</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
</w:body></w:document>"#;
        let t = document_text(xml, 1 << 20).expect("text");
        assert_eq!(t, "Title: LS on DetNet & TSN\nA\tB\u{2013}C\nnext\nFrom:\tIEEE 802.1 WG\nPurpose:\tFor <action>\n");
    }

    #[test]
    fn broken_xml_is_an_error() {
        assert!(document_text("<w:p><w:t>unclosed</w:p>", 1000).is_err());
    }
}
