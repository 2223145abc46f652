//! Runs attachment text extraction in a child process (`liaisond extract-text --kind K`),
//! because document parsers can hang, panic or allocate without bound (pdf-extract panics on
//! purpose on odd PDFs; a zip can unpack to terabytes). The child gets an address-space limit
//! (`RLIMIT_AS`), a CPU-time limit (`RLIMIT_CPU`) and a wall-clock timeout after which it is
//! killed; its output is read up to a limit. Whatever happens to it, the parent gets an error
//! for that one attachment and goes on.
//!
//! Protocol: the attachment's bytes on the child's stdin; one JSON object on its stdout,
//! `{"text": "...", "warnings": [...]}` or `{"error": "..."}`.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::extract::{self, ExtractLimits, Extracted, Kind};

/// How the child is confined.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The `liaisond` binary to run as the child.
    pub program: PathBuf,
    /// Address-space limit of the child.
    pub memory_bytes: u64,
    /// CPU seconds the child may use.
    pub cpu_seconds: u64,
    /// Wall-clock limit, after which the child is killed.
    pub wall: Duration,
}

impl Isolation {
    /// Defaults sized for statements: 1 GiB of address space, 20 s of CPU, 30 s of wall clock.
    pub fn new(program: PathBuf) -> Isolation {
        Isolation { program, memory_bytes: 1 << 30, cpu_seconds: 20, wall: Duration::from_secs(30) }
    }
}

/// What the child writes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChildOutput {
    Text { text: String, warnings: Vec<String> },
    Error { error: String },
}

/// The child side: reads stdin, extracts, prints one JSON object. Used by
/// `liaisond extract-text`. Returns the process exit code.
pub fn child_main(kind: Kind) -> u8 {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut bytes) {
        return print(&ChildOutput::Error { error: format!("cannot read the attachment: {e}") });
    }
    let output = match extract::extract_text(kind, &bytes, &ExtractLimits::default()) {
        Ok(Extracted { text, warnings }) => ChildOutput::Text { text, warnings },
        Err(e) => ChildOutput::Error { error: e.to_string() },
    };
    print(&output)
}

fn print(output: &ChildOutput) -> u8 {
    let mut out = std::io::stdout().lock();
    match serde_json::to_writer(&mut out, output).and_then(|()| out.flush().map_err(serde_json::Error::io)) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Extracts text from `bytes` in a confined child process. An `Err` is the reason the
/// attachment has no text (recorded on the attachment).
pub fn extract_isolated(iso: &Isolation, kind: Kind, bytes: &[u8]) -> Result<Extracted, String> {
    let mut cmd = Command::new(&iso.program);
    cmd.args(["extract-text", "--kind", kind.as_str()])
        .env("LIAISOND_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let (memory, cpu) = (iso.memory_bytes, iso.cpu_seconds);
    // SAFETY: runs between fork and exec, where only async-signal-safe calls are allowed;
    // setrlimit(2) is one, and nothing here allocates.
    unsafe {
        cmd.pre_exec(move || {
            let limit = |resource, value: u64| {
                let r = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
                if libc::setrlimit(resource, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            limit(libc::RLIMIT_AS, memory)?;
            limit(libc::RLIMIT_CPU, cpu)?;
            limit(libc::RLIMIT_CORE, 0)
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the extractor {}: {e}", iso.program.display()))?;
    let started = Instant::now();

    // Feed stdin and drain stdout on threads, so a child that stops reading (or writes a lot)
    // cannot block us; the limit on what is kept bounds memory.
    let stdin = child.stdin.take();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // The child may exit early (a bad file); a broken pipe then is expected.
            let _ = stdin.write_all(&input);
        }
    });
    let stdout = child.stdout.take();
    let max_output = (ExtractLimits::default().max_output_bytes as u64) * 2 + 65536;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(stdout) = stdout {
            let _ = stdout.take(max_output).read_to_end(&mut out);
        }
        out
    });

    // Poll, starting fast: most extractions end within a few milliseconds, and a fixed 5 ms
    // sleep was most of the cost of reading a small attachment (parse benchmark).
    let mut pause = Duration::from_micros(100);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= iso.wall => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = writer.join();
                let _ = reader.join();
                return Err(format!(
                    "extraction took longer than {} and was stopped",
                    humantime::format_duration(iso.wall)
                ));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("cannot wait for the extractor: {e}")),
        }
    };
    let _ = writer.join();
    let output = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(match status.signal() {
            Some(libc::SIGXCPU) => format!("extraction used more than {} s of CPU and was stopped", iso.cpu_seconds),
            Some(libc::SIGKILL) => "the extractor was killed".to_string(),
            Some(sig) => format!("the extractor crashed (signal {sig}; over the memory limit?)"),
            None => format!("the extractor failed (exit status {}; a parser panic?)", status.code().unwrap_or(-1)),
        });
    }
    match serde_json::from_slice::<ChildOutput>(&output) {
        Ok(ChildOutput::Text { text, warnings }) => Ok(Extracted { text, warnings }),
        Ok(ChildOutput::Error { error }) => Err(error),
        Err(e) => Err(format!("the extractor's answer is unreadable: {e}")),
    }
}
