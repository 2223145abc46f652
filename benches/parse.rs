//! `cargo bench --bench parse -- [--messages N]`: how fast `liaisond parse` reads statements.
//!
//! Generates N messages (default 2,000) in a temporary directory, twice: a corpus without PDF
//! attachments (statements in the body, and Word, legacy Word, zip and HTML attachments from
//! `fixtures/attachments`) and the same with every fifth message carrying a PDF. Runs the
//! release `liaisond parse` over each corpus and prints messages per second, MB per second and
//! the peak resident memory of the largest process (wait4's ru_maxrss covers the extraction
//! children it waited for).

#[path = "../tests/common/base64.rs"]
mod base64;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let mut n = 2000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--messages" => n = args.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            s if s.starts_with("--messages=") => n = s["--messages=".len()..].parse().unwrap_or(n),
            _ => {} // cargo passes --bench
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_liaisond"));
    let work = std::env::temp_dir().join(format!("liaisond-parse-bench-{}", std::process::id()));
    println!("liaisond parse benchmark: {n} messages per corpus, binary {}", binary.display());
    for with_pdf in [false, true] {
        let dir = work.join(if with_pdf { "with-pdf" } else { "without-pdf" });
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("cannot create {}: {e}", dir.display());
            std::process::exit(1);
        }
        let (files, bytes) = generate(&root, &dir, n, with_pdf);
        let out = dir.join("out.jsonl");
        let m = measure(&binary, &files, &out);
        let lines = std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0);
        let mib = bytes as f64 / (1024.0 * 1024.0);
        let secs = m.0.as_secs_f64();
        println!(
            "  {:<12} {n} messages, {mib:7.1} MiB: {secs:6.2} s  {:7.1} msg/s  {:6.1} MiB/s  peak RSS {:6.1} MiB  ({lines} JSON lines{})",
            if with_pdf { "with PDF" } else { "without PDF" },
            n as f64 / secs,
            mib / secs,
            m.1 as f64 / (1024.0 * 1024.0),
            if m.2 { "" } else { ", exit status not 0" }
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// Writes the corpus; returns the file paths and their total size.
fn generate(root: &Path, dir: &Path, n: usize, with_pdf: bool) -> (Vec<PathBuf>, u64) {
    let att = |name: &str| std::fs::read(root.join("fixtures/attachments").join(name)).unwrap_or_default();
    let attachments: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "C4-261300.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            att("3gpp-C4-261300.docx"),
        ),
        ("S2-2612345.doc", "application/msword", att("3gpp-S2-2612345.doc")),
        ("C4-261300.zip", "application/zip", att("3gpp-C4-261300.zip")),
        (
            "ieee-802-1-26-0077r0.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            att("ieee-802-1-26-0077r0.docx"),
        ),
        ("statement.html", "text/html", att("statement.html")),
    ];
    let pdfs: Vec<(&str, &str, Vec<u8>)> = vec![
        ("SG15-LS123.pdf", "application/pdf", att("itu-t-sg15-ls123.pdf")),
        ("LIAISE-640-00.pdf", "application/pdf", att("bbf-LIAISE-640-00.pdf")),
    ];
    let mut files = Vec::with_capacity(n);
    let mut total = 0u64;
    for i in 0..n {
        let body = statement_body(i);
        let attachment = if with_pdf && i % 5 == 0 {
            Some(&pdfs[(i / 5) % pdfs.len()])
        } else if i % 2 == 1 {
            Some(&attachments[(i / 2) % attachments.len()])
        } else {
            None
        };
        let raw = message(i, &body, attachment.map(|(n, ct, b)| (*n, *ct, b.as_slice())));
        let path = dir.join(format!("{i:05}.eml"));
        total += raw.len() as u64;
        if std::fs::write(&path, raw).is_ok() {
            files.push(path);
        }
    }
    (files, total)
}

fn statement_body(i: usize) -> String {
    format!(
        "From: ITU-T Study Group {sg}\r\nTo: IETF TEAS WG\r\nPurpose: For Action\r\nDeadline: {d} March 2027\r\n\
         Title: LS number {i} on network slicing\r\nContact: Jane Doe, jane.doe{i}@example-telecom.com\r\n\
         Send reply to: tsbsg{sg}@itu.int\r\n\r\n{}",
        "ITU-T Study Group informs the IETF of its progress and asks for comments on the draft. ".repeat(20 + i % 60),
        sg = 11 + i % 9,
        d = 1 + i % 28,
    )
}

fn message(i: usize, body: &str, attachment: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let mut m = format!(
        "From: TSB <tsbsg13@itu.int>\r\nTo: liaison-coordination@iab.org\r\nSubject: LS {i} on network slicing\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <parse-bench-{i}@itu.int>\r\nMIME-Version: 1.0\r\n"
    );
    match attachment {
        None => m.push_str(&format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")),
        Some((name, ct, bytes)) => {
            m.push_str("Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n--b0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
            m.push_str(body);
            m.push_str(&format!(
                "\r\n--b0\r\nContent-Type: {ct}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n"
            ));
            m.push_str(&base64::mime_lines(bytes));
            m.push_str("--b0--\r\n");
        }
    }
    m.into_bytes()
}

/// Runs `liaisond parse` over the files; returns wall time, peak RSS in bytes, success.
fn measure(binary: &Path, files: &[PathBuf], out: &Path) -> (Duration, u64, bool) {
    let Ok(stdout) = std::fs::File::create(out) else { return (Duration::ZERO, 0, false) };
    let started = Instant::now();
    let child = Command::new(binary)
        .arg("parse")
        .args(files)
        .env("LIAISOND_LOG", "off")
        .stdin(Stdio::null())
        .stdout(stdout)
        .spawn();
    let Ok(child) = child else { return (Duration::ZERO, 0, false) };
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own child, waited for only here.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    drop(child);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (started.elapsed(), (usage.ru_maxrss.max(0) as u64) * 1024, ok)
}
