//! `cargo bench --bench parse -- [--messages N] [--seed S]`: how fast `liaisond parse` reads mail.
//!
//! Writes N messages (default 2,000) from the ingest benchmark's generator
//! (`benches/common/mailgen.rs`: shaped like a real liaison mailbox) into a temporary
//! directory, then runs, over the same files, the release `liaisond parse` (every message read
//! into a statement, attachments through the extraction workers) and, as the reference,
//! Python's `email` package parsing each message and decoding every part. Prints messages and
//! MiB per second and the peak resident memory of the program itself (its VmHWM, sampled:
//! `common/peak.rs`; liaisond's extraction workers are not counted).
//!
//! Target (issue 14): `liaisond parse` at least 120 MB/s over the 2,000-message mix.

#[path = "../tests/common/base64.rs"]
mod base64;
#[path = "common/mailgen.rs"]
mod mailgen;
#[path = "common/peak.rs"]
mod peak;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Python's email package, the reference: parse each file named on standard input and decode
/// every leaf part (what a reader of the message must do at least).
const PYTHON_REFERENCE: &str = "\
import sys, email, email.policy
n = 0
for line in sys.stdin:
    with open(line.rstrip('\\n'), 'rb') as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    for part in m.walk():
        if not part.is_multipart():
            part.get_payload(decode=True)
    n += 1
print(n)
";

fn main() {
    let mut n = 2000usize;
    let mut seed = 42u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--messages" => n = args.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).unwrap_or(seed),
            _ => {} // cargo passes --bench
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_liaisond"));
    let work = std::env::temp_dir().join(format!("liaisond-parse-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("cannot create {}: {e}", work.display());
        std::process::exit(1);
    }
    let documents = mailgen::Documents::load(&root);
    let mut files = Vec::with_capacity(n);
    let mut bytes = 0u64;
    let (mut with_attachments, mut with_html, mut huge) = (0, 0, 0);
    let mut sizes = Vec::with_capacity(n);
    for i in 0..n {
        let (raw, shape) = mailgen::generate(seed, i, &documents);
        with_attachments += usize::from(shape.attachments > 0);
        with_html += usize::from(shape.html);
        huge += usize::from(shape.huge);
        bytes += raw.len() as u64;
        sizes.push(raw.len());
        let path = work.join(format!("{i:05}.eml"));
        if let Err(e) = std::fs::write(&path, raw) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        files.push(path);
    }
    let mib = bytes as f64 / (1024.0 * 1024.0);
    sizes.sort_unstable();
    let median = sizes.get(n.saturating_sub(1) / 2).copied().unwrap_or(0);
    let small = sizes.iter().filter(|&&s| s < 10 * 1024).count();
    println!(
        "parse benchmark: {n} messages ({with_attachments} with attachments, {huge} of 20 MiB; {with_html} with HTML), \
         {mib:.1} MiB, median {:.1} KiB, {:.0} % under 10 KiB, seed {seed}; binary {}",
        median as f64 / 1024.0,
        100.0 * small as f64 / n.max(1) as f64,
        binary.display()
    );

    let out = work.join("out.jsonl");
    let (wall, rss, ok) = match std::fs::File::create(&out) {
        Ok(stdout) => {
            let mut cmd = Command::new(&binary);
            cmd.arg("parse").args(&files).env("LIAISOND_LOG", "off").stdin(Stdio::null()).stdout(stdout);
            measure(&mut cmd, None)
        }
        Err(_) => (Duration::ZERO, 0, false),
    };
    let lines = std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0);
    report("liaisond parse", n, mib, wall, rss, ok && lines == n, &format!("{lines} JSON lines"));

    let list: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(PYTHON_REFERENCE).stdout(Stdio::null());
    let (wall, rss, ok) = measure(&mut cmd, Some(list.as_bytes()));
    report("python3 email (reference)", n, mib, wall, rss, ok, "every part decoded");

    let _ = std::fs::remove_dir_all(&work);
}

fn report(what: &str, n: usize, mib: f64, wall: Duration, rss: u64, ok: bool, note: &str) {
    let secs = wall.as_secs_f64().max(1e-9);
    println!(
        "  {what:<26} {secs:6.2} s  {:7.1} msg/s  {:6.1} MiB/s  peak RSS {:6.1} MiB  ({note}{})",
        n as f64 / secs,
        mib / secs,
        rss as f64 / (1024.0 * 1024.0),
        if ok { "" } else { "; FAILED" }
    );
}

/// Runs `cmd` (feeding it `input`); returns wall time, peak RSS in bytes, success.
fn measure(cmd: &mut Command, input: Option<&[u8]>) -> (Duration, u64, bool) {
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let started = Instant::now();
    let Ok(mut child) = cmd.spawn() else { return (Duration::ZERO, 0, false) };
    let watch = peak::PeakWatch::start(child.id());
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(input);
    }
    // Writing ends with the standard input dropped: the reader sees its end.
    let ok = child.wait().is_ok_and(|s| s.success());
    let wall = started.elapsed();
    (wall, watch.finish(), ok)
}
