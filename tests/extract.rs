//! Attachment text extraction through the confined child process (`liaisond extract-text`),
//! on the real files in `fixtures/attachments` (see its README for what each must yield) and
//! on hostile ones: each hostile file ends as an error within the time limit.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use liaisond::isolate::{Extractor, Isolation};
use liaisond_extract::{Format, sniff};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::repo_root().join("fixtures/attachments").join(name)).expect("fixture")
}

fn isolation() -> Isolation {
    Isolation::new(PathBuf::from(env!("CARGO_BIN_EXE_liaisond")))
}

fn extractor() -> Extractor {
    Extractor::new(isolation())
}

/// Extracts a fixture as liaisond would (sniffing its kind) and collapses white space.
fn text_of(name: &str) -> Result<String, String> {
    let bytes = fixture(name);
    let kind = sniff(Some(name), "application/octet-stream", &bytes);
    extractor().extract(kind, &bytes).map(|e| e.text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn assert_contains(name: &str, phrases: &[&str]) {
    let text = text_of(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    for p in phrases {
        let p: String = p.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(&p), "{name}: missing {p:?} in:\n{text}");
    }
}

#[test]
fn word_documents() {
    assert_contains(
        "3gpp-C4-261300.docx",
        &[
            "3GPP TSG CT WG4 Meeting #133 C4-261300",
            "LS on DetNet \u{201c}bounded latency\u{201d} information in the 5G System",
            "maria . garcia @ example-company . com",
            "To IETF DetNet WG",
            "(TS 29.244) & the Nnef/Ntsctsf",
            "< 10 ms for the \"industrial control\" traffic class",
            "CT4#134",
        ],
    );
    assert_contains(
        "ieee-802-1-26-0077r0.docx",
        &["doc.: IEEE 802.1-26/0077r0", "Purpose: For Information", "Ingrid Sørensen"],
    );
    assert_contains(
        "mef-LS00420_001.docx",
        &["LS00420_001", "January 29, 2027", "the MEF \u{201c}Bandwidth Profile Flow\u{201d}"],
    );
    // No extension: a zip to the daemon's sniff, Word to the worker, which opens it.
    assert_contains("C4-261301", &["LS on the use of HTTP CONNECT-UDP and CONNECT-IP for ATSSS", "To IETF MASQUE WG"]);
}

#[test]
fn the_worker_says_what_a_zip_archive_was() {
    // The daemon sniffs a zip without a Word name as a zip (it opens no archive itself); the
    // worker reads it as the Word document it is and says so, which is the kind recorded.
    let bare = fixture("C4-261301");
    assert_eq!(sniff(Some("C4-261301"), "application/octet-stream", &bare), Format::Zip);
    let ex = extractor();
    assert_eq!(ex.extract(Format::Zip, &bare).expect("word").format, Some(Format::Docx));
    let zipped = fixture("3gpp-C4-261300.zip");
    assert_eq!(ex.extract(Format::Zip, &zipped).expect("zip").format, Some(Format::Zip));
    assert_eq!(ex.extract(Format::Pdf, &fixture("itu-t-sg15-ls123.pdf")).expect("pdf").format, None);
}

#[test]
fn legacy_word_document() {
    assert_contains(
        "3gpp-S2-2612345.doc",
        &[
            "3GPP TSG-SA WG2 Meeting #173",
            "LS on mapping 5G network slices to IETF Network Slices",
            "Jürgen Müller",
            "José Núñez",
            "To IETF TEAS WG",
            "\u{201c}attachment circuit\u{201d}",
        ],
    );
}

#[test]
fn zips_are_read_recursively() {
    assert_contains("3gpp-C4-261300.zip", &["C4-261300.docx", "To IETF DetNet WG"]);
    assert_contains("3gpp-S2-2612345.zip", &["To IETF TEAS WG", "Meeting document archive"]);
}

#[test]
fn pdfs() {
    assert_contains(
        "itu-t-sg15-ls123.pdf",
        &[
            "SG15-LS123",
            "LIAISON STATEMENT",
            "For action to:",
            "IETF CCAMP WG",
            "1 March 2027",
            "Attachment: SG15-TD512/WP3",
        ],
    );
    assert_contains("bbf-LIAISE-640-00.pdf", &["LIAISE-640-00", "For Comment", "March 1, 2027", "Sincerely,"]);
}

#[test]
fn html() {
    assert_contains("statement.html", &["Purpose: For Action", "Deadline: 2027-04-30", "(ISO/IEC 23090\u{2013}29)"]);
}

#[test]
fn hostile_files_end_as_errors_within_the_time_limit() {
    let ex = extractor();
    let iso = ex.isolation().clone();
    for name in ["bomb.zip", "nested-bomb.zip", "truncated.docx", "truncated.doc", "garbage.pdf"] {
        let bytes = fixture(name);
        let kind = sniff(Some(name), "application/octet-stream", &bytes);
        let started = Instant::now();
        let result = ex.extract(kind, &bytes);
        assert!(result.is_err(), "{name} ({kind:?}) should fail, got {:?}", result.map(|e| e.text.len()));
        assert!(started.elapsed() < iso.wall + Duration::from_secs(2), "{name} took {:?}", started.elapsed());
    }
    // The cyclic PDF must terminate; recovering the one real page is allowed.
    let started = Instant::now();
    let _ = ex.extract(Format::Pdf, &fixture("loop.pdf"));
    assert!(started.elapsed() < iso.wall + Duration::from_secs(2));
    // A text file with a Word name is read as the text it is.
    assert_eq!(sniff(Some("not-really.docx"), "application/octet-stream", &fixture("not-really.docx")), Format::Text);
}

#[test]
fn the_child_is_confined() {
    let bytes = fixture("itu-t-sg15-ls123.pdf");
    // Wall clock: a 1 ms budget is always overrun.
    let quick = Isolation { wall: Duration::from_millis(1), ..isolation() };
    let e = Extractor::new(quick).extract(Format::Pdf, &bytes).expect_err("timeout");
    assert!(e.contains("longer than"), "{e}");
    // Memory: 16 MiB of address space is not enough to start, so it fails cleanly.
    let small = Isolation { memory_bytes: 16 << 20, ..isolation() };
    let e = Extractor::new(small).extract(Format::Pdf, &bytes).expect_err("memory");
    assert!(e.contains("crashed") || e.contains("failed") || e.contains("cannot start"), "{e}");
}

#[test]
fn workers_are_reused_and_a_failed_one_is_replaced() {
    let ex = extractor();
    let good = fixture("3gpp-C4-261300.docx");
    for _ in 0..5 {
        ex.extract(Format::Docx, &good).expect("docx");
    }
    assert_eq!(ex.workers_started(), 1, "one worker serves consecutive requests");

    // A parser error is an answer: the worker goes on serving.
    assert!(ex.extract(Format::Docx, &fixture("truncated.docx")).is_err());
    ex.extract(Format::Docx, &good).expect("docx after a parser error");
    assert_eq!(ex.workers_started(), 1);

    // A worker killed for overrunning its time is replaced, and the next request succeeds.
    let e = ex.extract_within(Format::Pdf, &fixture("itu-t-sg15-ls123.pdf"), Duration::from_millis(1));
    assert!(e.is_err_and(|e| e.contains("longer than")));
    ex.extract(Format::Docx, &good).expect("docx after a timeout");
    assert_eq!(ex.workers_started(), 2, "the overrun worker is not reused");

    // Several threads at once each get a worker of their own.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| ex.extract(Format::Docx, &good).expect("docx in parallel"));
        }
    });
    assert!(ex.workers_started() <= 4, "{}", ex.workers_started());
}

#[test]
fn a_pdf_the_reader_panics_on_is_an_error_and_the_worker_goes_on() {
    // Regression (found by tests/fuzz.rs): pdf-extract panics on malformed PDFs (missing
    // objects and keys, unknown encodings, short operand lists); the worker answered
    // `panicked` and ended, one process per such attachment. Now each is a malformed PDF.
    let ex = extractor();
    for name in ["pdf-no-basefont.pdf", "pdf-unknown-encoding.pdf", "pdf-no-mediabox.pdf", "pdf-operands.pdf"] {
        let bytes = std::fs::read(common::repo_root().join("fixtures/hostile").join(name)).expect("fixture");
        let e = ex.extract(Format::Pdf, &bytes).expect_err(name);
        assert!(e.starts_with("not a valid PDF file: the PDF reader gave up"), "{name}: {e}");
    }
    ex.extract(Format::Pdf, &fixture("itu-t-sg15-ls123.pdf")).expect("a good PDF after them");
    assert_eq!(ex.workers_started(), 1, "one worker served them all");
}

#[test]
fn a_worker_that_died_while_idle_is_not_used() {
    let ex = extractor();
    let good = fixture("3gpp-C4-261300.docx");
    ex.extract(Format::Docx, &good).expect("docx");
    // Kill the idle worker (as the OOM killer would).
    let pids = ex.idle_worker_pids();
    assert_eq!(pids.len(), 1);
    for pid in pids {
        let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
        assert!(status.success());
    }
    std::thread::sleep(Duration::from_millis(100));
    ex.extract(Format::Docx, &good).expect("a fresh worker is started");
    assert_eq!(ex.workers_started(), 2);
}

#[test]
fn a_worker_is_retired_after_its_request_quota() {
    let ex = extractor();
    for i in 0..liaisond::isolate::MAX_REQUESTS_PER_WORKER + 1 {
        ex.extract(Format::Text, format!("line {i}").as_bytes()).expect("text");
    }
    assert_eq!(ex.workers_started(), 2, "the first worker served its quota and was replaced");
}

#[test]
fn the_cpu_limit_applies_to_each_request_not_to_the_worker_s_life() {
    // Each PDF takes tens of milliseconds of CPU; sixty of them add up to well over the
    // one-second budget, which a cumulative limit would enforce by killing the worker.
    let ex = Extractor::new(Isolation { cpu_seconds: 1, ..isolation() });
    let pdf = fixture("itu-t-sg15-ls123.pdf");
    let started = Instant::now();
    for i in 0..60 {
        if let Err(e) = ex.extract(Format::Pdf, &pdf) {
            panic!("request {i} failed after {:?}: {e}", started.elapsed());
        }
    }
    assert_eq!(ex.workers_started(), 1);
}

/// The soft and hard limits in `/proc/<pid>/limits`, by name (`Max cpu time`: `("20", "10000")`).
fn proc_limits(pid: &str) -> std::collections::HashMap<String, (String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    text.lines()
        .skip(1)
        .filter(|l| l.len() > 26)
        .map(|l| {
            // A 26-column name, then soft, hard and the unit.
            let mut values = l[26..].split_whitespace().map(str::to_string);
            let soft = values.next().expect("soft");
            let hard = values.next().expect("hard");
            (l[..26].trim().to_string(), (soft, hard))
        })
        .collect()
}

/// A running idle worker of `ex` (after one request), as a `/proc` name.
fn running_worker(ex: &Extractor) -> String {
    ex.extract(Format::Text, b"start a worker").expect("text");
    let pids = ex.idle_worker_pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    pids[0].to_string()
}

#[test]
fn a_worker_gets_none_of_the_daemon_s_environment() {
    // This process has an environment (cargo's variables, PATH); the daemon's holds the mail
    // password (`password_env`) and CREDENTIALS_DIRECTORY.
    assert!(std::env::vars_os().next().is_some(), "the test runs with an environment");
    let ex = extractor();
    let pid = running_worker(&ex);
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    assert!(environ.is_empty(), "{:?}", String::from_utf8_lossy(&environ));
}

#[test]
fn a_worker_s_hard_limits_are_set() {
    let iso = Isolation { cpu_seconds: 7, ..isolation() };
    let ex = Extractor::new(iso.clone());
    let pid = running_worker(&ex);
    let limits = proc_limits(&pid);
    let limit = |name: &str| limits.get(name).cloned().unwrap_or_else(|| panic!("{name} in {limits:?}"));
    let zero = ("0".to_string(), "0".to_string());
    assert_eq!(limit("Max file size"), zero, "it writes no file");
    assert_eq!(limit("Max core file size"), zero);
    assert_eq!(limit("Max processes"), zero, "it starts no process or thread");
    let memory = iso.memory_bytes.to_string();
    assert_eq!(limit("Max address space"), (memory.clone(), memory));
    // CPU: one request's budget now, the budget of every request it may serve at most (this
    // process's own hard limit permitting); the worker cannot raise either.
    let life = 7 * u64::from(liaisond::isolate::MAX_REQUESTS_PER_WORKER);
    let own_hard = proc_limits("self").remove("Max cpu time").expect("own cpu").1;
    let hard = own_hard.parse::<u64>().map_or(life, |own| own.min(life));
    assert_eq!(limit("Max cpu time"), ("7".to_string(), hard.to_string()));
    // A second request raises the soft limit from outside, to what it used plus the budget.
    ex.extract(Format::Text, b"again").expect("text");
    assert_eq!(ex.idle_worker_pids(), vec![pid.parse::<u32>().expect("pid")]);
    let (soft, hard_now) = proc_limits(&pid).remove("Max cpu time").expect("cpu");
    assert!(soft.parse::<u64>().is_ok_and(|s| (7..=9).contains(&s)), "{soft}");
    assert_eq!(hard_now, hard.to_string());
}

#[test]
#[cfg(debug_assertions)] // the probe request exists in debug builds only
fn a_worker_cannot_open_connect_spawn_or_raise_its_limits() {
    let ex = extractor();
    let report = ex.probe("sandbox").expect("the probe answers").text;
    for attempt in [
        "open /etc/passwd",
        "connect 127.0.0.1:9",
        "spawn /bin/true",
        "start a thread",
        "execve",
        "raise its CPU limit",
        "map executable memory",
    ] {
        let line =
            report.lines().find(|l| l.starts_with(&format!("{attempt}: "))).unwrap_or_else(|| panic!("{report}"));
        assert!(line.ends_with("PermissionDenied: Operation not permitted (os error 1)"), "{line}");
    }
    // The filter is on (mode 2), and the worker still serves requests after the attempts.
    let pid = ex.idle_worker_pids().pop().expect("the worker is still there");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(status.lines().any(|l| l.split_whitespace().eq(["Seccomp:", "2"])), "{status}");
    ex.extract(Format::Docx, &fixture("3gpp-C4-261300.docx")).expect("docx after the probe");
    assert_eq!(ex.workers_started(), 1);
}

#[test]
#[cfg(debug_assertions)]
fn a_worker_that_ends_badly_inside_the_sandbox_ends_at_once() {
    // The filter must let each way of dying finish as it should: a denied call on the way
    // would end it by another signal (abort(3) falls back to a faulting instruction) or leave
    // it looping until the wall-clock limit, 30 s here.
    let ex = Extractor::new(Isolation { cpu_seconds: 1, wall: Duration::from_secs(30), ..isolation() });
    let started = Instant::now();
    let e = ex.probe("panic").expect_err("panic");
    assert!(e.contains("the probe panicked on purpose"), "{e}");
    for probe in ["allocate", "overflow"] {
        let e = ex.probe(probe).expect_err(probe);
        assert!(e.contains(&format!("signal {}", libc::SIGABRT)), "{probe}: {e}");
    }
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    // A reused worker that spins is stopped by the soft CPU limit its parent set (about 2 s
    // of CPU), which it can neither raise nor catch, long before the wall-clock limit.
    ex.extract(Format::Text, b"first").expect("text");
    let e = ex.probe("spin").expect_err("spin");
    assert!(e.contains("more than 1 s of CPU"), "{e}");
}
