//! The golden corpora, read as `liaisond parse` reads them and compared field by field with
//! truth written by hand:
//! - the synthetic corpus: every `fixtures/statements/NAME.eml` with `NAME.expected.json`;
//! - the real corpus: every `fixtures/real/NAME.json`, which names a real, public document
//!   (`documents/…`, with its source) and holds its truth; the test mails the document as an
//!   attachment (the envelope is the only thing written for the test).
//!
//! For both:
//! - A field that differs fails the test, unless the fixture lists it in `known_misses` (an
//!   honest record of what the extractor gets wrong today); a listed field that now matches
//!   fails too, so the list is kept true.
//! - Every mismatch writes `NAME.actual.json` beside the fixture.
//! - `LIAISOND_BLESS_MISSES=1 cargo test --test statements` rewrites each fixture's
//!   `known_misses` to what differs today (the truth itself is never rewritten): use it after
//!   reviewing the differences, and say why in the commit.
//! - The per-field accuracy of each corpus is printed (`cargo test --test statements --
//!   --nocapture`) and written to `target/statement-accuracy.txt` and
//!   `target/real-accuracy.txt`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use liaisond::isolate::{Extractor, Isolation};
use liaisond::reader::Reader;
use liaisond_core::judge::Identity;
use liaisond_core::parse::Parsed;
use liaisond_core::relationships::Relationships;
use serde_json::Value;

/// The fields issue 12 measures on real statements.
const REAL_FIELDS: &[&str] =
    &["title", "purpose", "deadline", "from_org", "from_groups", "to_groups", "from_contacts", "reply_to"];

const FIELDS: &[&str] = &[
    "title",
    "purpose",
    "deadline",
    "from_org",
    "from_groups",
    "to_groups",
    "from_contacts",
    "reply_to",
    "technical_contacts",
    "other_identifiers",
    "related",
];

/// Every `.eml` of the corpus; each must have its `.expected.json` (a message without its
/// truth would silently not be checked).
fn corpus() -> Vec<PathBuf> {
    let dir = common::repo_root().join("fixtures/statements");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    for f in &files {
        assert!(f.with_extension("expected.json").exists(), "{} has no .expected.json", f.display());
    }
    files.sort();
    assert!(files.len() >= 50, "the corpus has {} messages; it had 52", files.len());
    files
}

/// Lists compare as sets (order carries no meaning); strings ignore case and outer spaces.
fn same(field: &str, expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Array(e), Value::Array(a)) => {
            let norm = |v: &Vec<Value>| {
                let mut s: Vec<String> =
                    v.iter().map(|x| x.as_str().unwrap_or_default().trim().to_lowercase()).collect();
                s.sort();
                s.dedup();
                s
            };
            norm(e) == norm(a)
        }
        (Value::String(e), Value::String(a)) if field == "title" => {
            let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
            norm(e) == norm(a)
        }
        (Value::String(e), Value::String(a)) => e.trim().eq_ignore_ascii_case(a.trim()),
        _ => expected == actual,
    }
}

fn extractor() -> Extractor {
    Extractor::new(Isolation::new(PathBuf::from(env!("CARGO_BIN_EXE_liaisond"))))
}

/// Reads as `liaisond parse` does: the built-in relationships data, no time budget per message.
fn reader(extractor: Extractor) -> Reader {
    let relationships = Relationships::builtin();
    let identity = Identity::from_relationships(&relationships);
    Reader::new(relationships, extractor, std::time::Duration::MAX, identity)
}

#[test]
fn the_statement_corpus_matches_its_truth() {
    let items = corpus()
        .into_iter()
        .map(|eml| Item { raw: std::fs::read(&eml).expect("read fixture"), truth: eml.with_extension("expected.json") })
        .collect();
    check(items, FIELDS, "statement corpus", "statement-accuracy.txt");
}

#[test]
fn the_real_corpus_matches_its_truth() {
    let dir = common::repo_root().join("fixtures/real");
    let mut truths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the real corpus {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !name(p).ends_with(".actual.json"))
        .collect();
    truths.sort();
    assert!(!truths.is_empty(), "no statement in {}", dir.display());
    let items = truths.into_iter().map(|truth| Item { raw: mailed(&dir, &truth), truth }).collect();
    check(items, REAL_FIELDS, "real corpus", "real-accuracy.txt");
}

/// The real document `truth` names, mailed as an attachment from its `mailed_from`.
fn mailed(dir: &Path, truth: &Path) -> Vec<u8> {
    let t: Value = serde_json::from_str(&std::fs::read_to_string(truth).expect("read truth"))
        .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", truth.display()));
    let document = dir.join(t["document"].as_str().expect("document"));
    let bytes = std::fs::read(&document).unwrap_or_else(|e| panic!("{}: {e}", document.display()));
    let file = name(&document);
    let stem = file.rsplit_once('.').map_or(file.as_str(), |(s, _)| s);
    format!(
        "From: {from}\r\nTo: statements@ietf.org\r\nSubject: Liaison statement {stem}\r\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <real-{stem}@fixtures.invalid>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"real\"\r\n\r\n--real\r\nContent-Type: text/plain\r\n\r\n\
         Please find attached the liaison statement {stem}.\r\n\r\n--real\r\n\
         Content-Type: application/octet-stream; name=\"{file}\"\r\n\
         Content-Disposition: attachment; filename=\"{file}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {body}--real--\r\n",
        from = t["mailed_from"].as_str().expect("mailed_from"),
        body = common::base64::mime_lines(&bytes),
    )
    .into_bytes()
}

/// One message of a corpus and the file holding its truth (`statement`, `known_misses`).
struct Item {
    raw: Vec<u8>,
    truth: PathBuf,
}

/// Reads every item, compares `fields` with its truth, prints and writes the accuracy as
/// `title` to `target/<report_file>`, and fails on every difference not in `known_misses`.
fn check(items: Vec<Item>, fields: &[&'static str], title: &str, report_file: &str) {
    let reader = reader(extractor());
    let mut right: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for item in &items {
        let eml = &item.truth;
        let raw = &item.raw;
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(eml).expect("read truth"))
            .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", eml.display()));
        let known: Vec<&str> = expected["known_misses"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let analysis = reader.read(&Parsed::new(raw));
        let actual = serde_json::to_value(&analysis).expect("serialise");
        let mut mismatched = false;
        let mut misses_now: Vec<&str> = Vec::new();
        for field in fields {
            let ok = same(field, &expected["statement"][field], &actual["statement"][field]);
            if ok {
                *right.entry(field).or_default() += 1;
            } else {
                misses_now.push(field);
            }
            if ok == known.contains(field) {
                mismatched = true;
                failures.push(format!(
                    "{}: {field}: expected {} got {}{}",
                    name(eml),
                    expected["statement"][field],
                    actual["statement"][field],
                    if ok { " (listed in known_misses but now right: remove it)" } else { "" }
                ));
            }
        }
        // Attachments that must fail extraction (hostile inputs) must fail, and the others not.
        let mut attachments_ok = true;
        if let Some(atts) = expected["attachments"].as_array() {
            for want in atts {
                let filename = want["filename"].as_str().unwrap_or_default();
                let got = actual["attachments"].as_array().and_then(|a| a.iter().find(|x| x["filename"] == filename));
                let problem = match (got, want["error"].as_bool()) {
                    (None, _) => Some(format!("attachment {filename} not found")),
                    (Some(g), Some(err)) if g["error"].is_null() == err => {
                        Some(format!("attachment {filename}: error expected {err}, got {}", g["error"]))
                    }
                    _ => None,
                };
                if let Some(p) = problem {
                    attachments_ok = false;
                    if !known.contains(&"attachments") {
                        mismatched = true;
                        failures.push(format!("{}: {p}", name(eml)));
                    }
                }
            }
        }
        if attachments_ok && known.contains(&"attachments") {
            mismatched = true;
            failures.push(format!("{}: attachments listed in known_misses but now right: remove it", name(eml)));
        }
        if !attachments_ok {
            misses_now.push("attachments");
        }
        if std::env::var_os("LIAISOND_BLESS_MISSES").is_some() {
            let mut updated = expected.clone();
            if misses_now.is_empty() {
                updated.as_object_mut().map(|o| o.remove("known_misses"));
            } else {
                updated["known_misses"] = Value::from(misses_now.clone());
            }
            if updated != expected {
                let text = serde_json::to_string_pretty(&updated).expect("serialise") + "\n";
                std::fs::write(eml, text).expect("bless");
            }
            let prefix = name(eml);
            failures.retain(|f| !f.starts_with(&prefix));
        }
        let actual_path = actual_path(eml);
        if mismatched {
            let _ = std::fs::write(&actual_path, serde_json::to_string_pretty(&actual).unwrap_or_default());
        } else {
            let _ = std::fs::remove_file(&actual_path);
        }
    }
    let mut report = format!("{title}: {} messages\n", items.len());
    let mut total = 0;
    for field in fields {
        let n = right.get(field).copied().unwrap_or(0);
        total += n;
        report.push_str(&format!(
            "  {field:<20} {n:>3}/{}  {:5.1}%\n",
            items.len(),
            100.0 * n as f64 / items.len() as f64
        ));
    }
    report.push_str(&format!(
        "  {:<20} {total:>3}/{}  {:5.1}%\n",
        "all fields",
        items.len() * fields.len(),
        100.0 * total as f64 / (items.len() * fields.len()) as f64
    ));
    eprintln!("{report}");
    let _ = std::fs::write(common::repo_root().join("target").join(report_file), &report);
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}

/// Where the reading of a message whose truth is in `truth` is written when it differs:
/// `NAME.actual.json` beside it.
fn actual_path(truth: &Path) -> PathBuf {
    let file = name(truth);
    let stem = file.strip_suffix(".expected.json").or_else(|| file.strip_suffix(".json")).unwrap_or(&file);
    truth.with_file_name(format!("{stem}.actual.json"))
}

fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A 50 MB attachment (built here, never committed) ends as an error on that attachment
/// within the time limit, and the Word attachment beside it is still read.
#[test]
fn a_50_mb_attachment_fails_alone() {
    let docx = std::fs::read(common::repo_root().join("fixtures/attachments/3gpp-C4-261300.docx")).expect("docx");
    let mut big = b"%PDF-1.7\n".to_vec();
    let mut x: u32 = 0x1234_5678;
    big.extend((0..50 * 1024 * 1024).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    let part = |name: &str, ct: &str, bytes: &[u8]| {
        let mut p = format!(
            "--b\r\nContent-Type: {ct}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        );
        p.push_str(&common::base64::mime_lines(bytes));
        p
    };
    let raw = format!(
        "From: 3GPPLiaison@etsi.org\r\nSubject: LS with a huge annex\r\nMessage-ID: <big@etsi.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nPlease find attached.\r\n{}{}--b--\r\n",
        part("C4-261300.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", &docx),
        part("annex.pdf", "application/pdf", &big)
    );
    let started = std::time::Instant::now();
    let iso = extractor();
    let wall = iso.isolation().wall;
    let a = reader(iso).read(&Parsed::new(raw.as_bytes()));
    assert!(started.elapsed() < wall * 2, "took {:?}", started.elapsed());
    assert_eq!(a.attachments.len(), 2);
    assert!(a.attachments[0].error.is_none() && a.attachments[0].text_chars > 1000, "{:?}", a.attachments[0]);
    assert_eq!(a.attachments[1].size, big.len() as i64);
    assert!(a.attachments[1].error.is_some(), "{:?}", a.attachments[1]);
    assert_eq!(
        a.statement.title.as_deref(),
        Some("LS on DetNet \u{201c}bounded latency\u{201d} information in the 5G System")
    );
}
