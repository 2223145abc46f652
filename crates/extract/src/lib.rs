//! Text from attachments: Word (`.docx`, legacy `.doc`), PDF, HTML, plain text and zip
//! archives (recursively).
//!
//! **Architecture invariant: these functions do no I/O and hold no state; they are the only
//! code that parses attachment formats.** Two entry points, by trust in the parser:
//! - [`extract_text`] reads every format, through third-party parsers (zip, quick-xml, cfb,
//!   pdf-extract) that can hang, panic or explode: the daemon calls it only in its confined
//!   worker process (`liaisond extract-text`, under CPU, memory and wall-clock limits);
//! - [`read_in_process`] reads only plain text and HTML, with this crate's own bounded, linear
//!   code: safe to run in the daemon itself.
//!
//! Every format also has explicit [`ExtractLimits`] of its own (output size, archive entries,
//! depth and uncompressed bytes).
//!
//! The third-party document parsers are behind the `documents` feature (on by default): the
//! pure stages (`liaisond-core`) use this crate without it, for [`sniff`] and
//! [`read_in_process`], so none of those parsers (nor what they pull in) is below them.

#[cfg(feature = "documents")]
mod archive;
#[cfg(feature = "documents")]
mod doc;
#[cfg(feature = "documents")]
mod docx;
pub mod html;

use std::borrow::Cow;

/// The formats we can read (an attachment's kind, as recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Docx,
    Doc,
    Pdf,
    Html,
    Text,
    Zip,
    /// Anything else (images, executables, unknown binary): no text, not an error.
    Other,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Docx => "docx",
            Format::Doc => "doc",
            Format::Pdf => "pdf",
            Format::Html => "html",
            Format::Text => "text",
            Format::Zip => "zip",
            Format::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "docx" => Format::Docx,
            "doc" => Format::Doc,
            "pdf" => Format::Pdf,
            "html" => Format::Html,
            "text" => Format::Text,
            "zip" => Format::Zip,
            "other" => Format::Other,
            _ => return None,
        })
    }
}

/// Limits on what one extraction may produce or unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Text beyond this many bytes is cut (and a warning says so).
    pub max_output_bytes: usize,
    /// At most this many entries are read from one archive (all levels together).
    pub max_archive_entries: usize,
    /// Archives inside archives, at most this deep.
    pub max_archive_depth: usize,
    /// An archive entry (or a Word document's XML part) that unpacks to more than this is
    /// refused as a bomb.
    pub max_entry_bytes: u64,
    /// All entries of one archive together may unpack to at most this.
    pub max_archive_total_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_output_bytes: 4 * 1024 * 1024,
            max_archive_entries: 200,
            max_archive_depth: 3,
            max_entry_bytes: 64 * 1024 * 1024,
            max_archive_total_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Why no text could be extracted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("not a valid {kind} file: {detail}")]
    Malformed { kind: &'static str, detail: String },
    #[error("refused: {0}")]
    Limit(String),
    #[error("{0}")]
    Unsupported(String),
}

/// The text of one attachment, and what went wrong along the way without stopping it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub text: String,
    pub warnings: Vec<String>,
    /// What the bytes were read as, when only reading them could tell: [`sniff`] looks at no
    /// more than the first bytes and the declared name, so a zip archive is Word or not only
    /// once the worker opened it. `None`: read as the format asked for.
    pub format: Option<Format>,
}

impl Extracted {
    fn text(text: String) -> Extracted {
        Extracted { text, warnings: Vec::new(), format: None }
    }
}

/// Decides what a part is, from its first bytes first (names and declared types lie), then
/// its file name, then its declared content type.
///
/// It runs in the daemon, so it reads no more than magic numbers and the first 512 bytes: a
/// zip archive is [`Format::Docx`] when its name or type says Word, else [`Format::Zip`], and
/// [`extract_text`] (in the confined worker) opens it and reads it as what it holds.
pub fn sniff(filename: Option<&str>, content_type: &str, bytes: &[u8]) -> Format {
    const CFB_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
    let ext = filename.and_then(|f| f.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let ct = content_type.to_ascii_lowercase();
    if bytes.starts_with(b"%PDF-") {
        return Format::Pdf;
    }
    if bytes.starts_with(b"PK\x03\x04") {
        let word = matches!(ext.as_str(), "docx" | "docm" | "dotx" | "dotm")
            || ct.starts_with("application/vnd.openxmlformats-officedocument.wordprocessingml.");
        return if word { Format::Docx } else { Format::Zip };
    }
    if bytes.starts_with(CFB_MAGIC) {
        return Format::Doc;
    }
    let head = &bytes[..bytes.len().min(512)];
    let head_text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if ext == "html"
        || ext == "htm"
        || ct == "text/html"
        || head_text.trim_start().starts_with("<!doctype html")
        || head_text.contains("<html")
    {
        return Format::Html;
    }
    if looks_like_text(head) && (ext == "txt" || ct.starts_with("text/") || ext.is_empty() || !is_binary_ext(&ext)) {
        return Format::Text;
    }
    Format::Other
}

fn is_binary_ext(ext: &str) -> bool {
    matches!(ext, "png" | "jpg" | "jpeg" | "gif" | "exe" | "dll" | "bin" | "mp4" | "mp3" | "gz" | "7z" | "rar")
}

/// Mostly printable, no NUL: text in some 8-bit or UTF-8 encoding.
fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    let control = head.iter().filter(|b| **b < 0x20 && !matches!(**b, b'\n' | b'\r' | b'\t' | 0x0c)).count();
    control * 20 < head.len()
}

/// Extracts text from `bytes` read as `format`. Pure: no I/O, but runs third-party parsers:
/// call it only where a hang or a panic costs nothing but this attachment (the worker process).
/// A zip archive ([`Format::Docx`] or [`Format::Zip`]) is read as what it holds, whatever it
/// was sniffed as, and [`Extracted::format`] says which.
pub fn extract_text(format: Format, bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted, ExtractError> {
    let mut out = match format {
        #[cfg(feature = "documents")]
        Format::Docx | Format::Zip => archive::word_or_archive(bytes, limits, 1)?,
        #[cfg(feature = "documents")]
        Format::Doc => Extracted::text(doc::text(bytes)?),
        #[cfg(feature = "documents")]
        Format::Pdf => Extracted::text(pdf_text(bytes)?),
        #[cfg(not(feature = "documents"))]
        Format::Docx | Format::Doc | Format::Pdf | Format::Zip => {
            return Err(ExtractError::Unsupported("built without the document readers".into()));
        }
        Format::Html => Extracted::text(html::to_text(&decode_text(bytes), limits.max_output_bytes)),
        Format::Text => Extracted::text(decode_text(bytes).into_owned()),
        Format::Other => return Err(ExtractError::Unsupported("no text in this kind of file".into())),
    };
    if out.text.len() > limits.max_output_bytes {
        let mut cut = limits.max_output_bytes;
        while !out.text.is_char_boundary(cut) {
            cut -= 1;
        }
        out.text.truncate(cut);
        out.warnings.push(format!("text cut at {} bytes", limits.max_output_bytes));
    }
    Ok(out)
}

/// Reads plain text and HTML, which need no third-party parser; `None` for every other
/// format (Word, PDF and zip need [`extract_text`] in the confined worker; the rest hold no
/// text).
pub fn read_in_process(
    format: Format,
    bytes: &[u8],
    limits: &ExtractLimits,
) -> Option<Result<Extracted, ExtractError>> {
    match format {
        Format::Text | Format::Html => Some(extract_text(format, bytes, limits)),
        _ => None,
    }
}

/// The message a panic was raised with (`panic!("...")`, `expect`), when it has one: what
/// `catch_unwind` hands back, in every crate that catches a parser's panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned())
}

/// Bytes of unknown encoding as text: UTF-8 when valid, else Windows-1252 (the usual
/// mislabel; it maps every byte, so nothing is lost).
pub fn decode_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0,
    }
}

#[cfg(feature = "documents")]
fn pdf_text(bytes: &[u8]) -> Result<String, ExtractError> {
    // pdf-extract reports much of what it cannot read by panicking (`expect` on a missing
    // object or key, `assert!` on an operator's operands, a CMap indexed past its end: the
    // fuzzer, tests/fuzz.rs, finds dozens a minute): that is its way of saying "malformed", so
    // it is an error here, and the worker goes on serving. It unwinds through nothing but
    // its own values, which it drops. A panic anywhere else is still the worker's `panicked`
    // answer, after which it ends.
    let text = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes)).map_err(|panic| {
        let message = panic_message(panic.as_ref()).unwrap_or_default();
        ExtractError::Malformed { kind: "PDF", detail: format!("the PDF reader gave up: {message}") }
    })?;
    text.map(|t| normalise_pdf_text(&t)).map_err(|e| ExtractError::Malformed { kind: "PDF", detail: e.to_string() })
}

/// Whether a hyphen at the end of a line (after `before`, which does not include it) is part
/// of the word rather than a break inside it: when the word it ends, or the word the next line
/// (`after`) starts with, is itself hyphenated (`end-to-` + `end`, `ietf-` + `network-instance`).
pub fn line_end_hyphen_is_real(before: &str, after: &str) -> bool {
    let last = before.rsplit(char::is_whitespace).next().unwrap_or("");
    let next = after.trim_start().split(char::is_whitespace).next().unwrap_or("");
    let next = next.trim_end_matches(|c: char| !c.is_alphanumeric());
    last.contains('-') || next.contains('-')
}

/// PDF text comes with words hyphenated across line breaks and runs of blank lines: join
/// `inter-` + `national` back (only before a lower-case letter, so `ITU-` + `T` stays; and
/// keeping the hyphen of a hyphenated word, so `end-to-` + `end` is `end-to-end`) and keep at
/// most one empty line.
#[cfg(feature = "documents")]
fn normalise_pdf_text(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut blank_run = 0;
    for line in t.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run == 1 && !out.is_empty() {
                out.push('\n');
            }
            continue;
        }
        blank_run = 0;
        let hyphenated = out.ends_with("-\n")
            && line.starts_with(char::is_lowercase)
            && out[..out.len() - 2].ends_with(char::is_alphabetic);
        if hyphenated {
            let before = &out[..out.len() - 2];
            let real = line_end_hyphen_is_real(before, line);
            out.truncate(out.len() - if real { 1 } else { 2 });
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_trusts_bytes_before_names() {
        assert_eq!(sniff(Some("x.docx"), "application/octet-stream", b"%PDF-1.7 ..."), Format::Pdf);
        assert_eq!(
            sniff(Some("report.doc"), "application/msword", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest"),
            Format::Doc
        );
        assert_eq!(sniff(Some("C4-261300"), "application/octet-stream", b"plain words here\n"), Format::Text);
        assert_eq!(sniff(Some("a.html"), "text/html", b"<p>x</p>"), Format::Html);
        assert_eq!(sniff(None, "application/octet-stream", b"<!DOCTYPE html><html>"), Format::Html);
        assert_eq!(sniff(Some("img.png"), "image/png", b"\x89PNG\r\n\x1a\n\0\0"), Format::Other);
        assert_eq!(sniff(Some("not-really.docx"), "application/octet-stream", b"just text"), Format::Text);
    }

    #[test]
    fn sniffing_a_zip_reads_no_further_than_its_magic_number() {
        // The daemon does not parse a zip's central directory (only the worker parses
        // attachments): Word or not is the declared name's or type's word until then.
        let no_directory = b"PK\x03\x04 not an archive";
        assert_eq!(sniff(Some("ls.docx"), "application/octet-stream", no_directory), Format::Docx);
        let word_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        assert_eq!(sniff(Some("C4-261301"), word_type, no_directory), Format::Docx);
        assert_eq!(sniff(Some("C4-261301"), "application/octet-stream", no_directory), Format::Zip);
        assert_eq!(sniff(Some("docs.zip"), "application/zip", no_directory), Format::Zip);
    }

    #[test]
    fn text_falls_back_to_windows_1252() {
        assert_eq!(decode_text(b"M\xfcller \x93quoted\x94"), "Müller \u{201c}quoted\u{201d}");
        assert_eq!(decode_text("déjà".as_bytes()), "déjà");
    }

    #[test]
    fn output_is_cut_at_the_limit_on_a_char_boundary() {
        let limits = ExtractLimits { max_output_bytes: 5, ..ExtractLimits::default() };
        let out = extract_text(Format::Text, "ééééé".as_bytes(), &limits).expect("text");
        assert_eq!(out.text, "éé");
        assert_eq!(out.warnings.len(), 1);
    }

    #[test]
    #[cfg(feature = "documents")]
    fn pdf_hyphenation_is_undone() {
        assert_eq!(normalise_pdf_text("inter-\nnational work\n\n\n\nnext"), "international work\n\nnext\n");
        assert_eq!(normalise_pdf_text("ITU-\nT SG15"), "ITU-\nT SG15\n");
        assert_eq!(normalise_pdf_text("to end-to-\nend QoE"), "to end-to-end QoE\n");
        assert_eq!(normalise_pdf_text("and ietf-\nnetwork-instance (RFC"), "and ietf-network-instance (RFC\n");
    }

    #[test]
    #[cfg(feature = "documents")]
    fn a_pdf_the_reader_gives_up_on_is_an_error_not_a_panic() {
        // Regression (found by tests/fuzz.rs): pdf-extract panics on each of these (see
        // fixtures/hostile/README.md), which made the worker answer `panicked` and end.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/hostile");
        let mut pdfs: Vec<_> = std::fs::read_dir(dir)
            .expect("fixtures/hostile")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
            .collect();
        pdfs.sort();
        assert_eq!(pdfs.len(), 6, "{pdfs:?}");
        for pdf in pdfs {
            let bytes = std::fs::read(&pdf).expect("fixture");
            let result = std::panic::catch_unwind(|| extract_text(Format::Pdf, &bytes, &ExtractLimits::default()));
            match result {
                Ok(Err(ExtractError::Malformed { kind: "PDF", detail })) => {
                    assert!(detail.starts_with("the PDF reader gave up: "), "{}: {detail}", pdf.display());
                }
                other => panic!("{}: {other:?}", pdf.display()),
            }
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let l = ExtractLimits::default();
        assert!(extract_text(Format::Docx, b"PK\x03\x04garbage", &l).is_err());
        assert!(extract_text(Format::Doc, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1garbage", &l).is_err());
        assert!(extract_text(Format::Zip, b"PK\x03\x04garbage", &l).is_err());
    }
}
