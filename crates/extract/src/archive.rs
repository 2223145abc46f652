//! Zip archives (3GPP sends its Word files zipped): every entry's text, recursively, within
//! limits on entries, nesting depth and uncompressed bytes, because a zip can claim anything
//! and unpack to terabytes (R32, zip bombs). A `.docx` is a zip archive too: whether one is
//! Word is decided here, in the worker, from its central directory.

use std::io::{Cursor, Read};

use super::{ExtractError, ExtractLimits, Extracted, Format};

fn malformed(detail: impl ToString) -> ExtractError {
    ExtractError::Malformed { kind: "zip", detail: detail.to_string() }
}

/// A zip archive `depth` archives deep, read as a Word document when its central directory
/// names `word/document.xml` (whatever the attachment is called: 3GPP names its `.docx` files
/// by bare document numbers), else as an archive of entries.
pub(super) fn word_or_archive(bytes: &[u8], limits: &ExtractLimits, depth: usize) -> Result<Extracted, ExtractError> {
    within(bytes, limits, depth, &mut Spent::default())
}

/// What the archives of one attachment have used of the limits so far, all levels together:
/// a zip of zips must not get the entry and byte allowance afresh at each level.
#[derive(Debug, Default)]
struct Spent {
    entries: usize,
    bytes: u64,
}

fn within(bytes: &[u8], limits: &ExtractLimits, depth: usize, spent: &mut Spent) -> Result<Extracted, ExtractError> {
    let word = zip::ZipArchive::new(Cursor::new(bytes)).is_ok_and(|z| z.index_for_name("word/document.xml").is_some());
    if word {
        return Ok(Extracted { format: Some(Format::Docx), ..Extracted::text(super::docx::text(bytes, limits)?) });
    }
    Ok(Extracted { format: Some(Format::Zip), ..entries(bytes, limits, depth, spent)? })
}

/// The text of every entry, each under a `== name ==` line. An entry that cannot be read
/// becomes a warning; the archive as a whole fails only when it cannot be opened or a limit
/// is crossed.
#[cfg(test)]
fn text(bytes: &[u8], limits: &ExtractLimits, depth: usize) -> Result<Extracted, ExtractError> {
    entries(bytes, limits, depth, &mut Spent::default())
}

fn entries(bytes: &[u8], limits: &ExtractLimits, depth: usize, spent: &mut Spent) -> Result<Extracted, ExtractError> {
    if depth > limits.max_archive_depth {
        return Err(ExtractError::Limit(format!("archives nested deeper than {}", limits.max_archive_depth)));
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(malformed)?;
    spent.entries += zip.len();
    if spent.entries > limits.max_archive_entries {
        return Err(ExtractError::Limit(format!(
            "{} entries in all its archives (limit {})",
            spent.entries, limits.max_archive_entries
        )));
    }
    let mut out = Extracted::default();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(malformed)?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("entry {i}"));
        let budget = limits.max_entry_bytes.min(limits.max_archive_total_bytes.saturating_sub(spent.bytes));
        let mut data = Vec::new();
        // Read one byte past the budget: the declared size is not to be trusted.
        (&mut entry).take(budget + 1).read_to_end(&mut data).map_err(|e| malformed(format!("{name}: {e}")))?;
        if data.len() as u64 > budget {
            return Err(ExtractError::Limit(format!(
                "{name} unpacks to more than {budget} bytes (entry limit {}, archive limit {})",
                limits.max_entry_bytes, limits.max_archive_total_bytes
            )));
        }
        spent.bytes += data.len() as u64;
        drop(entry);
        let kind = super::sniff(Some(&name), "application/octet-stream", &data);
        let result = match kind {
            // One level deeper, also for a `.docx` name: it may be any archive.
            Format::Zip | Format::Docx => within(&data, limits, depth + 1, spent),
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
    fn a_zip_archive_is_read_as_what_it_holds_whatever_it_was_sniffed_as() {
        // The daemon's sniff no longer opens archives (see `sniff`): the worker must find the
        // Word document in a zip called anything, and read a zip called `.docx` as a zip.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/attachments");
        let bare = std::fs::read(dir.join("C4-261301")).expect("fixture");
        let limits = ExtractLimits::default();
        for asked in [Format::Zip, Format::Docx] {
            let out = crate::extract_text(asked, &bare, &limits).expect("word");
            assert_eq!(out.format, Some(Format::Docx));
            assert!(out.text.contains("CONNECT-UDP"), "{}", out.text);
            let zip = crate::extract_text(asked, &make_zip(&[("a.txt", b"plain entry")]), &limits).expect("zip");
            assert_eq!((zip.format, zip.text.as_str()), (Some(Format::Zip), "== a.txt ==\nplain entry\n"));
        }
        // Inside an archive too: an entry named by a bare number is Word, one named `.docx`
        // that is an archive is unpacked one level deeper (and counts against the depth).
        let out = text(&make_zip(&[("C4-261301", &bare)]), &limits, 1).expect("zip");
        assert!(out.text.starts_with("== C4-261301 ==\n") && out.text.contains("CONNECT-UDP"), "{}", out.text);
        let mut nested = make_zip(&[("x.txt", b"x")]);
        for _ in 0..5 {
            nested = make_zip(&[("n.docx", &nested)]);
        }
        assert!(matches!(text(&nested, &limits, 1), Err(ExtractError::Limit(_))));
    }

    #[test]
    fn limits_count_over_all_levels_together() {
        // Regression (issue 13): each nested archive had the whole entry and byte allowance
        // again, so three levels of 150 entries (or of 600 bytes) passed limits of 200 (1000).
        let files: Vec<(String, Vec<u8>)> = (0..150).map(|i| (format!("{i}.bin"), vec![b'x'; 4])).collect();
        let level = |extra: Option<&[u8]>| {
            let mut all: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
            if let Some(inner) = extra {
                all.push(("inner.zip", inner));
            }
            make_zip(&all)
        };
        let limits = ExtractLimits::default();
        let one = level(None);
        assert!(text(&one, &limits, 1).is_ok(), "150 entries pass");
        let two = level(Some(&one));
        match text(&two, &limits, 1) {
            Err(ExtractError::Limit(why)) => assert!(why.contains("entries in all its archives"), "{why}"),
            other => panic!("301 entries over two levels passed: {other:?}"),
        }
        let bytes = |n: usize| make_zip(&[("a.bin", &vec![b'y'; n][..])]);
        let small = ExtractLimits { max_archive_total_bytes: 1000, ..ExtractLimits::default() };
        let nested = make_zip(&[("b.zip", &bytes(300)), ("c.zip", &bytes(300)), ("d.bin", &[b'z'; 200][..])]);
        assert!(matches!(text(&nested, &small, 1), Err(ExtractError::Limit(_))), "the bytes of every level count");
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
