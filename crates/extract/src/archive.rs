//! Zip archives (3GPP sends its Word files zipped): every entry's text, recursively, within
//! limits on entries, nesting depth and uncompressed bytes, because a zip can claim anything
//! and unpack to terabytes (R32, zip bombs).

use std::io::{Cursor, Read};

use super::{ExtractError, ExtractLimits, Extracted, Format};

fn malformed(detail: impl ToString) -> ExtractError {
    ExtractError::Malformed { kind: "zip", detail: detail.to_string() }
}

/// Whether a zip is a Word document (has `word/document.xml`).
/// The text of every entry, each under a `== name ==` line. An entry that cannot be read
/// becomes a warning; the archive as a whole fails only when it cannot be opened or a limit
/// is crossed.
pub(super) fn text(bytes: &[u8], limits: &ExtractLimits, depth: usize) -> Result<Extracted, ExtractError> {
    if depth > limits.max_archive_depth {
        return Err(ExtractError::Limit(format!("archives nested deeper than {}", limits.max_archive_depth)));
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(malformed)?;
    if zip.len() > limits.max_archive_entries {
        return Err(ExtractError::Limit(format!("{} entries (limit {})", zip.len(), limits.max_archive_entries)));
    }
    let mut out = Extracted::default();
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(malformed)?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("entry {i}"));
        let budget = limits.max_entry_bytes.min(limits.max_archive_total_bytes.saturating_sub(total));
        let mut data = Vec::new();
        // Read one byte past the budget: the declared size is not to be trusted.
        (&mut entry).take(budget + 1).read_to_end(&mut data).map_err(|e| malformed(format!("{name}: {e}")))?;
        if data.len() as u64 > budget {
            return Err(ExtractError::Limit(format!(
                "{name} unpacks to more than {budget} bytes (entry limit {}, archive limit {})",
                limits.max_entry_bytes, limits.max_archive_total_bytes
            )));
        }
        total += data.len() as u64;
        drop(entry);
        let kind = super::sniff(Some(&name), "application/octet-stream", &data);
        let result = match kind {
            Format::Zip => text(&data, limits, depth + 1),
            Format::Other => continue,
            other => super::extract_text(other, &data, limits),
        };
        match result {
            Ok(inner) => {
                out.text.push_str(&format!("== {name} ==\n"));
                out.text.push_str(&inner.text);
                if !out.text.ends_with('\n') {
                    out.text.push('\n');
                }
                out.warnings.extend(inner.warnings.into_iter().map(|w| format!("{name}: {w}")));
            }
            // A bomb inside is a bomb: stop.
            Err(e @ ExtractError::Limit(_)) => return Err(e),
            Err(e) => out.warnings.push(format!("{name}: {e}")),
        }
        if out.text.len() > limits.max_output_bytes {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn make_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).expect("start");
            w.write_all(data).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    #[test]
    fn the_own_directory_reader_follows_zip64_and_prepended_data() {
        // The two detours of `zip_names` (APPNOTE §4.3.14–15; a self-extractor's stub in front),
        // each checked against the zip crate.
        let by_zip = |b: &[u8]| {
            zip::ZipArchive::new(Cursor::new(b)).is_ok_and(|z| z.index_for_name("word/document.xml").is_some())
        };
        // A Zip64 archive: the end record's counts say "see the Zip64 record", which a locator
        // just before it points at (the zip crate writes one only for very large archives).
        let plain = make_zip(&[("a.txt", b"x"), ("word/document.xml", b"<w/>")]);
        let end = plain.len() - 22;
        let u64le = |v: usize| (v as u64).to_le_bytes();
        // The central directory: from its offset in the end record up to the end record.
        let offset = u32::from_le_bytes(plain[end + 16..end + 20].try_into().expect("4 bytes")) as usize;
        let (entries, size) = (2, end - offset);
        let mut zip64 = plain[..end].to_vec();
        let record = zip64.len();
        zip64.extend(b"PK\x06\x06");
        zip64.extend(u64le(44));
        zip64.extend([45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        zip64.extend(u64le(entries));
        zip64.extend(u64le(entries));
        zip64.extend(u64le(size));
        zip64.extend(u64le(offset));
        zip64.extend(b"PK\x06\x07\0\0\0\0");
        zip64.extend(u64le(record));
        zip64.extend([1, 0, 0, 0]);
        zip64.extend(b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\0\0");
        assert!(by_zip(&zip64), "the zip crate reads the hand-made Zip64 archive");
        assert!(crate::zip_names::has_entry(&zip64, b"word/document.xml"));
        assert!(!crate::zip_names::has_entry(&zip64, b"word/missing.xml"));
        let mut prepended = b"#!/bin/sh\nexit 0\n".to_vec();
        prepended.extend(make_zip(&[("word/document.xml", b"<w/>")]));
        assert_eq!(crate::zip_names::has_entry(&prepended, b"word/document.xml"), by_zip(&prepended));
        assert!(crate::zip_names::has_entry(&prepended, b"word/document.xml"));
    }

    #[test]
    fn sniffing_finds_the_word_document_as_the_zip_crate_does() {
        // Regression guard for `zip_names`, the daemon's own reader of central directories:
        // it must see a `.docx` exactly where the zip crate (in the worker) sees one.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/attachments");
        let mut archives = 0;
        for entry in std::fs::read_dir(&dir).expect("fixtures/attachments") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                continue;
            }
            let bytes = std::fs::read(&path).expect("read");
            if !bytes.starts_with(b"PK\x03\x04") {
                continue;
            }
            archives += 1;
            let by_zip = zip::ZipArchive::new(Cursor::new(&bytes[..]))
                .is_ok_and(|z| z.index_for_name("word/document.xml").is_some());
            assert_eq!(crate::zip_names::has_entry(&bytes, b"word/document.xml"), by_zip, "{}", path.display());
        }
        let built = make_zip(&[("a.txt", b"x"), ("word/document.xml", b"<w/>")]);
        assert!(crate::zip_names::has_entry(&built, b"word/document.xml"));
        assert!(!crate::zip_names::has_entry(&built, b"word/document.xm"));
        assert!(archives >= 5, "{archives}");
    }
    #[test]
    fn entries_nested_archives_and_bad_entries() {
        let inner = make_zip(&[("inner.txt", b"deep text")]);
        let z = make_zip(&[
            ("cover.txt", b"Cover note"),
            ("pic.png", b"\x89PNG\r\n\x1a\n\0\0\0"),
            ("bad.doc", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1broken"),
            ("nested.zip", &inner),
        ]);
        let out = text(&z, &ExtractLimits::default(), 1).expect("zip");
        assert_eq!(out.text, "== cover.txt ==\nCover note\n== nested.zip ==\n== inner.txt ==\ndeep text\n");
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert!(out.warnings[0].starts_with("bad.doc:"));
    }

    #[test]
    fn bombs_are_refused() {
        let zeros = vec![0u8; 3_000_000];
        let z = make_zip(&[("zeros.txt", &zeros)]);
        let limits = ExtractLimits { max_entry_bytes: 1_000_000, ..ExtractLimits::default() };
        assert!(matches!(text(&z, &limits, 1), Err(ExtractError::Limit(_))));
        let limits = ExtractLimits { max_archive_total_bytes: 4_000_000, ..ExtractLimits::default() };
        let z = make_zip(&[("a.txt", &zeros), ("b.txt", &zeros)]);
        assert!(matches!(text(&z, &limits, 1), Err(ExtractError::Limit(_))));
        let mut nested = make_zip(&[("x.txt", b"x")]);
        for _ in 0..5 {
            nested = make_zip(&[("n.zip", &nested)]);
        }
        assert!(matches!(text(&nested, &ExtractLimits::default(), 1), Err(ExtractError::Limit(_))));
        let many: Vec<(String, Vec<u8>)> = (0..300).map(|i| (format!("{i}.txt"), b"x".to_vec())).collect();
        let refs: Vec<(&str, &[u8])> = many.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        assert!(matches!(text(&make_zip(&refs), &ExtractLimits::default(), 1), Err(ExtractError::Limit(_))));
    }
}
