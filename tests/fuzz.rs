//! A mutation fuzzer over everything liaisond reads from a sender, on the stable toolchain: no
//! instrumentation, no new dependency. Seeds are the fixture corpora, read at run time; each
//! input is a seed (or two spliced) changed by a few random mutations, byte-level and with the
//! tokens that matter to mail and documents; each execution runs under `catch_unwind` and is
//! timed. The targets, each with its own counters:
//!
//! | target | what runs on the input |
//! |---|---|
//! | `mime` | `Parsed::new` (mail-parser), `read` (with only the in-process readers), `judge`, `Responder::plan`, `compose` |
//! | `understand` | `understand::understand` on a subject, a sender and texts (`\x1e` separates them) |
//! | `authres` | `authres::parse`, `authres::trusted_block` and `route::verify_sender` (each line one field) |
//! | `address` | `normalize_address`, `address_key`, `address_domain`, `printable`, `printable_lines`, `safe_filename`, `understand::emails` |
//! | `text` | the in-process extractors (`read_in_process`, text and HTML) and `sniff` |
//! | `word`, `pdf`, `zip` | the confined extraction worker (`isolate::Extractor`), as the daemon runs it |
//!
//! A pure target's input fails when it panics (a few invariants are asserted too: what
//! `printable` leaves has no control character, a safe file name has no path in it) or when it
//! takes longer than the time bound. A worker input fails when the worker answers that the
//! parser `panicked`, when the worker dies (a signal, an exit status), or when it is stopped at
//! the time bound; an extraction error is a normal answer. A failing input is written to
//! `target/fuzz-findings/<target>-<n>.bin` (what happened beside it, in `.txt`) and fails the
//! test at the end. An input still running at ten times the bound is a hang: it is written
//! down and the process exits at once (a thread cannot be stopped). A finding, made small by
//! hand, becomes a fixture in `fixtures/hostile/` (and a seed): the second test here runs each
//! of them under its target, timed.
//!
//! The time bound is 1 s per input in release builds (inputs are at most 1 MiB): reading a
//! message is linear and takes milliseconds for a megabyte (the slowest input of a release
//! campaign is about 0.1 s), so an input over a second is quadratic or worse, and the daemon's
//! whole `stage_timeout` (60 s by default, for parsing and every attachment of a message) must
//! hold many such steps. Debug builds (`cargo test`) are unoptimised, dependencies included:
//! an execution took 6 to 16 times as long as in release in our campaigns, so the bound is
//! 20 s there. The extraction worker gets the bound as its wall-clock limit.
//!
//! Settings (environment):
//! - `LIAISOND_FUZZ_SECONDS`: the campaign's wall-clock length (default 60), split between the
//!   targets by weight, the worker targets getting a smaller share; all threads run one target
//!   at a time;
//! - `LIAISOND_FUZZ_THREADS`: threads (default 2);
//! - `LIAISOND_FUZZ_SEED`: the PRNG seed (decimal or `0x` hex), printed at the start: the same
//!   seed gives each thread the same inputs in the same order;
//! - `LIAISOND_FUZZ_TARGETS`: a comma-separated subset of the targets;
//! - `LIAISOND_FUZZ_REPLAY`: a findings file (`target/fuzz-findings/mime-0.bin`): runs that one
//!   input under the target its name starts with, and fails as the campaign would.
//!
//! The long campaign: `LIAISOND_FUZZ_SECONDS=1800 cargo test --release --test fuzz -- --nocapture`.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io::{Cursor, Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use liaisond::isolate::{Extractor, Isolation};
use liaisond_core::budget::Budget;
use liaisond_core::judge::{Identity, judge};
use liaisond_core::parse::Parsed;
use liaisond_core::read::Analysis;
use liaisond_core::relationships::Relationships;
use liaisond_core::respond::{AckPolicy, RecordedMessage, Responder, Templates, compose};
use liaisond_core::{authres, command, content, parse, route, understand};
use liaisond_extract::{ExtractLimits, Format, read_in_process, sniff};
use liaisond_model::{
    AckCounts, NoHistory, address_domain, address_key, normalize_address, printable, printable_lines,
};

/// No input is larger.
const MAX_INPUT: usize = 1 << 20;
/// Header field values (Authentication-Results, addresses) are fuzzed up to this size: the
/// parsers refuse longer fields early (16 KiB), and whole headers go through `mime`.
const MAX_FIELD_INPUT: usize = 64 << 10;
/// The time bound per input in release builds, and the factor for debug builds (see the
/// module's documentation).
const BOUND_RELEASE: Duration = Duration::from_secs(1);
const DEBUG_FACTOR: u32 = 20;
/// An input still running at this many bounds is a hang.
const HANG_FACTOR: u32 = 10;
/// At most this many findings files per target and run.
const MAX_FINDINGS_PER_TARGET: u64 = 20;
/// Separates the subject, the sender and the texts of an `understand` input.
const SEPARATOR: char = '\u{1e}';
const CFB_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

// ---------------------------------------------------------------------------------------
// Adapters: the only calls to the reading APIs, kept here so that a change of their
// signatures is one change in this file.

/// Reads a parsed message as the daemon does, but with only the in-process readers (text and
/// HTML); every other attachment is an error, as a failed worker would make it.
fn read_message(parsed: &Parsed, rel: &Relationships) -> Analysis {
    let limits = ExtractLimits::default();
    // No time limit: the fuzzer times each input itself, and a slow path must show.
    let attachment_text =
        |part: &liaisond_core::content::AttachmentPart| match read_in_process(part.format, &part.bytes, &limits) {
            Some(read) => read.map_err(|e| e.to_string()),
            None => Err("not read in process by the fuzzer".into()),
        };
    liaisond_core::read::read(parsed, rel, &attachment_text, &Budget::unlimited())
}

/// The statement's fields from a subject, a sender and texts.
fn understand_texts(
    subject: Option<&str>,
    sender: Option<&str>,
    texts: &[(&str, &str)],
    rel: &Relationships,
) -> understand::Understood {
    let sources: Vec<understand::Source<'_>> =
        texts.iter().map(|(name, text)| understand::Source { name, text }).collect();
    let budget = Budget::unlimited();
    understand::understand(&understand::Input { subject, sender, texts: &sources, budget: &budget }, rel)
}

// ---------------------------------------------------------------------------------------
// The PRNG: splitmix64, seeded.

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    /// True once in `n` times.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// splitmix64's finaliser: also how thread and target numbers become distinct seeds.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------
// The targets.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Mime,
    Understand,
    Authres,
    Address,
    Text,
    Word,
    Pdf,
    Zip,
}

impl Target {
    const ALL: [Target; 8] = [
        Target::Mime,
        Target::Understand,
        Target::Authres,
        Target::Address,
        Target::Text,
        Target::Word,
        Target::Pdf,
        Target::Zip,
    ];

    fn name(self) -> &'static str {
        match self {
            Target::Mime => "mime",
            Target::Understand => "understand",
            Target::Authres => "authres",
            Target::Address => "address",
            Target::Text => "text",
            Target::Word => "word",
            Target::Pdf => "pdf",
            Target::Zip => "zip",
        }
    }

    fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Through the extraction worker (a process per request, far fewer executions).
    fn worker(self) -> bool {
        matches!(self, Target::Word | Target::Pdf | Target::Zip)
    }

    /// Its share of the campaign's time, in percent of the whole.
    fn weight(self) -> u32 {
        match self {
            Target::Mime => 30,
            Target::Understand => 16,
            Target::Authres => 10,
            Target::Address => 8,
            Target::Text => 10,
            Target::Word => 10,
            Target::Pdf => 8,
            Target::Zip => 8,
        }
    }

    fn max_input(self) -> usize {
        match self {
            Target::Authres | Target::Address => MAX_FIELD_INPUT,
            _ => MAX_INPUT,
        }
    }

    /// The worker request's kind for an input (derived from the bytes, so that a findings
    /// file replays alone).
    fn worker_format(self, input: &[u8]) -> Format {
        match self {
            Target::Word if input.starts_with(CFB_MAGIC) => Format::Doc,
            Target::Word => Format::Docx,
            Target::Pdf => Format::Pdf,
            _ => Format::Zip,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running one input.

/// What one execution came to.
#[derive(Debug)]
enum Outcome {
    Done,
    /// A worker's extraction error: a normal answer.
    Refused,
    Panicked(String),
    /// The worker was stopped at the time bound (wall clock or CPU).
    Stopped(String),
    /// The worker died (signal, exit status, unreadable answer).
    Died(String),
}

thread_local! {
    /// Whether this thread runs an input now: its panics are kept, not printed.
    static RUNNING_INPUT: Cell<bool> = const { Cell::new(false) };
    /// The last such panic's message and location (the hook below keeps it).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keeps the panic messages of inputs instead of printing them (a campaign may meet many);
/// any other panic (a failing assertion of the test itself) goes to the usual hook.
fn quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let usual = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if RUNNING_INPUT.with(Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                usual(info);
            }
        }));
    });
}

/// Everything the targets share: built once, read by every thread.
struct Harness {
    rel: Relationships,
    identity: Identity,
    responder: Responder,
    now: jiff::Timestamp,
    limits: ExtractLimits,
    extractor: Extractor,
    bound: Duration,
}

impl Harness {
    fn new(bound: Duration) -> Harness {
        quiet_panic_hook();
        let rel = Relationships::builtin();
        let identity =
            Identity { trusted_authserv_ids: vec!["mail.ietf.org".into()], ..Identity::from_relationships(&rel) };
        let responder = Responder::new(
            AckPolicy::default(),
            Duration::from_secs(30 * 24 * 3600),
            1 << 20,
            Templates::builtin().expect("built-in templates"),
            "IAB liaison coordination <liaison-coordination@iab.org>".into(),
            "liaison-coordination@iab.org".into(),
            "iab.org".into(),
        );
        // The worker's wall clock is the bound; its CPU limit stays the daemon's (longer), so
        // a hang is stopped, and reported, by the clock.
        let isolation = Isolation { wall: bound, ..Isolation::new(PathBuf::from(env!("CARGO_BIN_EXE_liaisond"))) };
        Harness {
            rel,
            identity,
            responder,
            now: "2026-11-03T12:30:00Z".parse().expect("now"),
            limits: ExtractLimits::default(),
            extractor: Extractor::new(isolation),
            bound,
        }
    }

    fn execute(&self, target: Target, input: &[u8]) -> Outcome {
        if target.worker() {
            return self.worker(target, input);
        }
        LAST_PANIC.with(|p| p.borrow_mut().take());
        RUNNING_INPUT.with(|r| r.set(true));
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.pure(target, input)));
        RUNNING_INPUT.with(|r| r.set(false));
        match result {
            Ok(()) => Outcome::Done,
            Err(payload) => {
                let message = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| {
                    liaisond_extract::panic_message(payload.as_ref())
                        .unwrap_or_else(|| "a panic without a message".into())
                });
                Outcome::Panicked(message)
            }
        }
    }

    fn pure(&self, target: Target, input: &[u8]) {
        match target {
            Target::Mime => self.mime(input),
            Target::Understand => self.understand(input),
            Target::Authres => self.authres(input),
            Target::Address => self.address(input),
            Target::Text => self.text(input),
            Target::Word | Target::Pdf | Target::Zip => unreachable!("a worker target"),
        }
    }

    /// A message, the way the daemon takes it: parse, read, judge, plan, and compose what it
    /// would send (the original attached).
    fn mime(&self, raw: &[u8]) {
        std::hint::black_box(parse::header_section(raw, 64 << 10));
        let parsed = Parsed::new(raw);
        let analysis = read_message(&parsed, &self.rel);
        // The stored reading, and the analysis judged again from it (`route --dry-run`).
        let again = Analysis::from_reading(&parsed, analysis.to_reading());
        std::hint::black_box(again.has_document());
        let judgement = judge(&parsed.headers, &analysis, &self.rel, &self.identity, &NoHistory);
        let verdict = judgement.verdict(analysis.sender.as_deref());
        let incoming = RecordedMessage {
            tracking_id: Some("LS-2026-0042"),
            message: 1,
            verdict: &verdict,
            analysis: &analysis,
            headers: &parsed.headers,
            received: self.now,
            now: self.now,
            nonce: 1,
            size: raw.len() as u64,
            commands: &[],
        };
        let plan = self.responder.plan(&incoming, &self.rel, &|_| AckCounts::default());
        for draft in &plan.drafts {
            let _ = std::hint::black_box(compose(draft, Some(raw), "=_liaisond-fuzz-boundary"));
        }
    }

    /// `subject \x1e sender \x1e text \x1e text …`
    fn understand(&self, input: &[u8]) {
        const NAMES: [&str; 4] = ["body", "LS.docx", "statement.pdf", "cover.txt"];
        let text = String::from_utf8_lossy(input);
        let mut parts = text.split(SEPARATOR);
        let subject = parts.next();
        let sender = parts.next().filter(|s| !s.is_empty());
        let texts: Vec<(&str, &str)> = parts.enumerate().map(|(i, t)| (NAMES[i % NAMES.len()], t)).collect();
        let understood = understand_texts(subject, sender, &texts, &self.rel);
        std::hint::black_box(understood.statement.clipped());
    }

    /// One field value; and each line as one field of a header under our `Received` field.
    fn authres(&self, input: &[u8]) {
        let value = String::from_utf8_lossy(input);
        let parsed = authres::parse(&value);
        if let Ok(ar) = &parsed {
            assert_eq!(authres::authserv_id(&value).as_deref(), Some(ar.authserv_id.as_str()), "authserv-id");
        }
        let trusted = &self.identity.trusted_authserv_ids;
        let mut fields = vec![("Received", "from relay.example by mail.ietf.org")];
        fields.extend(value.lines().map(|l| ("Authentication-Results", l)));
        std::hint::black_box(authres::trusted_block(fields.iter().copied(), trusted, 1));
        for sender in ["liaisons@3gpp.org", "jane@evil.example", value.lines().next().unwrap_or("")] {
            std::hint::black_box(route::verify_sender(sender, &fields, trusted, 1));
        }
    }

    /// The normalisers of untrusted names and addresses, with the promises they make.
    fn address(&self, input: &[u8]) {
        let s = String::from_utf8_lossy(input);
        let normal = normalize_address(&s);
        assert_eq!(address_key(&s).is_some(), normal.is_some(), "address_key and normalize_address agree");
        assert_eq!(address_domain(&s).is_some(), normal.is_some(), "address_domain and normalize_address agree");
        if let Some(a) = &normal {
            assert!(a.contains('@') && !a.chars().any(char::is_whitespace), "normalised address {a:?}");
        }
        let shown = printable(&s);
        assert!(!shown.chars().any(char::is_control), "printable left a control character: {shown:?}");
        let lines = printable_lines(&s);
        assert!(!lines.chars().any(|c| c.is_control() && c != '\n'), "printable_lines left a control: {lines:?}");
        let name = content::safe_filename(Some(&s), 1);
        assert!(
            !name.is_empty()
                && !name.starts_with('.')
                && !name.contains(['/', '\\'])
                && !name.chars().any(char::is_control),
            "unsafe file name {name:?}"
        );
        std::hint::black_box(understand::emails(&s));
    }

    /// The extractors the daemon runs in process; and the commands read from a reply's text.
    fn text(&self, input: &[u8]) {
        let requests = command::commands_in(&String::from_utf8_lossy(input));
        assert!(requests.len() <= command::MAX_COMMANDS, "{} commands", requests.len());
        for r in &requests {
            assert!(r.line.chars().count() <= command::MAX_LINE_CHARS, "a command line of {} chars", r.line.len());
            assert!(!r.line.chars().any(char::is_control), "a control character in {:?}", r.line);
        }
        std::hint::black_box(sniff(None, "application/octet-stream", input));
        std::hint::black_box(sniff(Some("LS.html"), "text/html", input));
        for format in [Format::Text, Format::Html] {
            if let Some(Ok(read)) = read_in_process(format, input, &self.limits) {
                assert!(read.text.len() <= self.limits.max_output_bytes, "output over the limit");
            }
        }
    }

    fn worker(&self, target: Target, input: &[u8]) -> Outcome {
        match self.extractor.extract_within(target.worker_format(input), input, self.bound) {
            Ok(_) => Outcome::Done,
            Err(e) if e.starts_with("the parser panicked") => Outcome::Panicked(e),
            Err(e) if e.starts_with("extraction took longer") || e.starts_with("extraction used more") => {
                Outcome::Stopped(e)
            }
            // The worker's own failures (isolate.rs): anything about "the extractor" itself.
            Err(e) if e.contains("the extractor") || e.contains("extractor's answer") => Outcome::Died(e),
            Err(_) => Outcome::Refused,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mutations.

const MAIL_TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"\n\n",
    b"--",
    b"boundary=",
    b"boundary=\"x\"",
    b"Content-Type: multipart/mixed; boundary=\"x\"\r\n",
    b"Content-Type: multipart/alternative; boundary=x\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: text/html; charset=utf-8\r\n",
    b"Content-Type: text/plain; charset=iso-2022-jp\r\n",
    b"\r\n--x\r\n",
    b"\r\n--x--\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename=\"",
    b"; filename*=utf-8''%E2%80%AE",
    b"; name=\"../LS.docx\"",
    b"MIME-Version: 1.0\r\n",
    b"=?utf-8?b?",
    b"=?iso-8859-1?q?",
    b"?=",
    b"=\r\n",
    b"=FF",
    b"=3D",
    b";",
    b"(",
    b")",
    b"\"",
    b"\\",
    b"@",
    b"<",
    b">",
    b",",
    b":",
    b" ",
    b"\t",
    b"\0",
    b"\xe2\x80\xae",
    b"\xe2\x80\xa8",
    b"\xff\xfe",
    b"\xc3",
    b"Reply to: ",
    b"Title: ",
    b"Deadline: ",
    b"Purpose: ",
    b"From: ",
    b"To: ",
    b"Cc: ",
    b"Subject: ",
    b"Message-ID: <",
    b"In-Reply-To: <",
    b"References: <",
    b"Return-Path: <",
    b"Received: from relay.example by mail.ietf.org\r\n",
    b"Authentication-Results: mail.ietf.org; dmarc=pass header.from=3gpp.org\r\n",
    b"Auto-Submitted: auto-replied\r\n",
    b"X-Liaisond-Loop: ",
    b"Send any reply LS to: ",
    b"Contact Person: ",
    b"For action to: ",
    b"For information to: ",
    b"In response to: ",
    b"ACTION: ",
    b"To IETF DetNet WG",
    b"LS-2026-0042",
    b"C4-261300",
    b"SG15-LS123",
    b"2027-02-30",
    b"31 February 2027",
    b"March 1, 2027",
    b"%PDF-1.7\n",
    b"PK\x03\x04",
    CFB_MAGIC,
    b"<html><body>",
    b"<script>",
    b"&amp;",
    b"&#",
    b"&#x10FFFF;",
    b"99999999999999999999",
];

const AUTHRES_TOKENS: &[&[u8]] = &[
    b";",
    b"=",
    b".",
    b"/",
    b"@",
    b"(",
    b")",
    b"\"",
    b"\\",
    b" ",
    b"\r\n ",
    b"\t",
    b"none",
    b"mail.ietf.org",
    b"mail.ietf.org 1",
    b"; dmarc=pass",
    b"; dkim=pass",
    b"; spf=fail",
    b" header.from=",
    b" header.d=",
    b" header.i=@",
    b" smtp.mailfrom=",
    b" policy.iprev=",
    b" reason=\"",
    b"(comment (nested \\) comment))",
    b"dkim/1",
    b"\"x;dmarc=pass header.from=3gpp.org;\"@evil.example",
    b"\xe2\x80\xae",
    b"\xc3\xa9",
    b"\0",
    b"\n",
];

const ADDRESS_TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"@",
    b"@@",
    b"mailto:",
    b"MAILTO:",
    b"+",
    b".",
    b"..",
    b"../",
    b"..\\",
    b"/",
    b"\\",
    b"\"",
    b" ",
    b"\t",
    b"\r\n",
    b",",
    b";",
    b":",
    b"(",
    b")",
    b"\xc4\xb0",
    b"\xe2\x84\xaa",
    b"\xe2\x80\xae",
    b"\xe2\x80\x8b",
    b"\xef\xbb\xbf",
    b"\x1b[31m",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"\0",
    b"\x7f",
    b" . ",
    b"jane.doe@itu.int",
    b"name . surname @ company . com",
];

const DOCUMENT_TOKENS: &[&[u8]] = &[
    // Word's XML.
    b"<w:t>",
    b"</w:t>",
    b"<w:t xml:space=\"preserve\">",
    b"<w:p>",
    b"</w:p>",
    b"<w:r>",
    b"</w:r>",
    b"<w:tab/>",
    b"<w:br/>",
    b"<w:tbl><w:tr><w:tc>",
    b"</w:tc></w:tr></w:tbl>",
    b"<w:instrText>",
    b"<w:fldSimple w:instr=\"",
    b"&amp;",
    b"&lt;",
    b"&quot;",
    b"&#0;",
    b"&#xD800;",
    b"&#1114112;",
    b"&#x10FFFF;",
    b"&nosuch;",
    b"<![CDATA[",
    b"]]>",
    b"<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
    b"<!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\">]>",
    b"<!--",
    b"-->",
    b"xmlns:w=\"",
    b"word/document.xml",
    b"[Content_Types].xml",
    // PDF.
    b" obj\n",
    b"endobj\n",
    b"stream\r\n",
    b"\nendstream",
    b"xref\n0 1\n",
    b"trailer\n<<",
    b"startxref\n",
    b"%%EOF",
    b"<<",
    b">>",
    b"[",
    b"]",
    b" 0 R",
    b"/Length ",
    b"/Filter /FlateDecode",
    b"/Filter /ASCIIHexDecode",
    b"/DecodeParms <</Predictor 12 /Columns 4>>",
    b"/Type /Page",
    b"/Type /Pages /Kids [",
    b"/Count ",
    b"/Parent 2 0 R",
    b"/Font <</F1 5 0 R>>",
    b"/Encoding /Identity-H",
    b"/ToUnicode ",
    b"/Differences [",
    b"beginbfchar\n",
    b"endbfchar\n",
    b"beginbfrange\n",
    b"BT /F1 12 Tf (",
    b") Tj ET",
    b"[(a) -250 (b)] TJ",
    b"/ObjStm",
    b"/XRefStm ",
    b"/Prev ",
    b"-1",
    b"4294967296",
    b"99999999999999999999",
    b"0.000000001",
    // Containers.
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    CFB_MAGIC,
    b"\xff\xff\xff\xff",
    b"\xfe\xff\xff\xff",
    b"\0\0\0\0",
];

const UNDERSTAND_TOKENS: &[&[u8]] = &[b"\x1e", b"\n", b"\r\n", b"\x0c", b"\t", b"  "];

/// Bytes worth writing anywhere.
const INTERESTING_BYTES: &[u8] = b"\0\x01\x7f\x80\xff\xfe\xc0\xc3\xe2\x1e\x1b\t\n\r \"\\()<>@;:=.-_/%&#[]{}*?+,'`~!Aa0";

/// Runs of one byte: blank lines, long words, deep nesting, long quoted strings.
const RUN_BYTES: &[u8] = b" \t\n=-(\"\\<[{a0\0\xff@.;";

/// Labels `understand` reads, for whole labelled lines.
const LABELS: &[&str] = &[
    "Reply to",
    "Title",
    "Deadline",
    "Purpose",
    "From",
    "To",
    "Subject",
    "Contact",
    "Contact Person",
    "Response contact",
    "Technical contact",
    "For action to",
    "For comment to",
    "For information to",
    "In response to",
    "Referenced liaison",
    "Due date",
    "Submitted by",
    "Source",
];

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551616",
    "99999999999999999999999999999999",
];

/// Makes inputs from seeds.
struct Mutator<'a> {
    seeds: &'a [Vec<u8>],
    tokens: &'a [&'a [u8]],
    max: usize,
    /// Mail: bias positions towards the header and line starts.
    lines: bool,
    /// Zip archives: sometimes mutate an entry and pack the archive again.
    archives: bool,
}

impl Mutator<'_> {
    fn input(&self, rng: &mut Rng) -> Vec<u8> {
        let mut data = rng.pick(self.seeds).clone();
        if self.archives
            && rng.one_in(2)
            && let Some(again) = self.mutate_archive(rng, &data, 0)
        {
            data = again;
            if rng.one_in(2) {
                return data;
            }
        }
        let mut rounds = 1;
        while rounds < 16 && rng.one_in(2) {
            rounds += 1;
        }
        for _ in 0..rounds {
            self.mutate(rng, &mut data);
            data.truncate(self.max);
        }
        data
    }

    /// A position in `data` (`0..=len`), sometimes in the first 4 KiB or at a line start.
    fn position(&self, rng: &mut Rng, data: &[u8]) -> usize {
        let len = data.len();
        match rng.below(4) {
            0 if self.lines => rng.below(len.min(4096) + 1),
            1 => {
                let from = rng.below(len + 1);
                data[from..].iter().position(|&b| b == b'\n').map_or(from, |at| from + at + 1)
            }
            _ => rng.below(len + 1),
        }
    }

    /// A length for a range: mostly short, sometimes long.
    fn length(&self, rng: &mut Rng) -> usize {
        match rng.below(8) {
            0..=4 => 1 + rng.below(8),
            5 | 6 => 1 + rng.below(256),
            _ => 1 + rng.below(16 << 10),
        }
    }

    fn token(&self, rng: &mut Rng) -> &[u8] {
        if rng.one_in(4) { rng.pick::<&[u8]>(MAIL_TOKENS) } else { rng.pick::<&[u8]>(self.tokens) }
    }

    fn mutate(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        let len = data.len();
        match rng.below(15) {
            // Flip a bit.
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            // Set a byte.
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = if rng.one_in(2) { *rng.pick(INTERESTING_BYTES) } else { rng.next() as u8 };
            }
            // Insert random bytes.
            2 => {
                let at = self.position(rng, data);
                let n = 1 + rng.below(32);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            // Delete a range.
            3 if len > 0 => {
                let at = self.position(rng, data).min(len - 1);
                let n = self.length(rng).min(len - at);
                data.drain(at..at + n);
            }
            // Duplicate a range.
            4 if len > 0 => {
                let from = rng.below(len);
                let n = self.length(rng).min(len - from);
                let copy = data[from..from + n].to_vec();
                let at = self.position(rng, data);
                data.splice(at..at, copy);
            }
            // Truncate.
            5 if len > 0 && rng.one_in(2) => {
                let at = self.position(rng, data);
                data.truncate(at);
            }
            // Splice with another seed: this one's head, the other's tail.
            6 => {
                let other = rng.pick(self.seeds);
                let at = self.position(rng, data);
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            // Insert a token.
            7 | 8 => {
                let at = self.position(rng, data);
                let token = self.token(rng).to_vec();
                data.splice(at..at, token);
            }
            // Replace a range with a token.
            9 if len > 0 => {
                let at = self.position(rng, data).min(len - 1);
                let n = (1 + rng.below(16)).min(len - at);
                let token = self.token(rng).to_vec();
                data.splice(at..at + n, token);
            }
            // A long run of one byte.
            10 => {
                let at = self.position(rng, data);
                let n = match rng.below(10) {
                    0..=5 => 16 << rng.below(6),
                    6..=8 => 1024 << rng.below(6),
                    _ => rng.below(self.max / 2 + 1),
                };
                let byte = *rng.pick(RUN_BYTES);
                data.splice(at..at, std::iter::repeat_n(byte, n));
            }
            // A labelled line, with a piece of the input or a token as its value.
            11 => {
                let at = self.position(rng, data);
                let mut line = format!("\r\n{}: ", rng.pick(LABELS)).into_bytes();
                if len > 0 && rng.one_in(2) {
                    let from = rng.below(len);
                    let n = (1 + rng.below(80)).min(len - from);
                    line.extend_from_slice(&data[from..from + n]);
                } else {
                    line.extend_from_slice(self.token(rng));
                }
                line.extend_from_slice(b"\r\n");
                data.splice(at..at, line);
            }
            // A number made extreme.
            12 if len > 0 => {
                let from = rng.below(len);
                if let Some(start) = data[from..].iter().position(u8::is_ascii_digit).map(|p| from + p) {
                    let end = data[start..].iter().position(|b| !b.is_ascii_digit()).map_or(len, |p| start + p);
                    data.splice(start..end, rng.pick(NUMBERS).bytes());
                }
            }
            // Copy a range over another.
            13 if len > 1 => {
                let from = rng.below(len);
                let to = rng.below(len);
                let n = self.length(rng).min(len - from).min(len - to);
                data.copy_within(from..from + n, to);
            }
            // Change the case of a range.
            14 if len > 0 => {
                let from = rng.below(len);
                let n = self.length(rng).min(len - from);
                for b in &mut data[from..from + n] {
                    *b = if b.is_ascii_lowercase() { b.to_ascii_uppercase() } else { b.to_ascii_lowercase() };
                }
            }
            _ => {
                let at = self.position(rng, data);
                data.insert(at, *rng.pick(INTERESTING_BYTES));
            }
        }
    }

    /// A zip archive with one entry mutated (an archive inside it, sometimes, the same way),
    /// or an entry renamed, dropped or doubled, packed again: the bytes a parser of the XML or
    /// of a nested archive sees, past the checksums. `None` when the bytes are not a small zip.
    fn mutate_archive(&self, rng: &mut Rng, bytes: &[u8], depth: usize) -> Option<Vec<u8>> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
        if archive.is_empty() || archive.len() > 64 {
            return None;
        }
        let mut entries = Vec::with_capacity(archive.len());
        for i in 0..archive.len() {
            let file = archive.by_index(i).ok()?;
            if file.size() > 4 << 20 {
                return None;
            }
            let name = file.name().ok()?.into_owned();
            let mut data = Vec::new();
            file.take(4 << 20).read_to_end(&mut data).ok()?;
            entries.push((name, data));
        }
        let document = entries.iter().position(|(n, _)| n == "word/document.xml");
        let pick = match document {
            Some(d) if rng.one_in(2) => d,
            _ => rng.below(entries.len()),
        };
        match rng.below(8) {
            0 => {
                entries[pick].0 =
                    String::from_utf8_lossy(rng.pick::<&[u8]>(ADDRESS_TOKENS)).into_owned() + &entries[pick].0
            }
            1 if entries.len() > 1 => {
                entries.remove(pick);
            }
            2 => {
                let copy = entries[pick].clone();
                entries.push(copy);
            }
            _ => {
                let data = &entries[pick].1;
                let nested = (data.starts_with(b"PK\x03\x04") && depth < 2)
                    .then(|| self.mutate_archive(rng, data, depth + 1))
                    .flatten();
                entries[pick].1 = match nested {
                    Some(inner) => inner,
                    None => {
                        let mut data = data.clone();
                        for _ in 0..1 + rng.below(4) {
                            self.mutate(rng, &mut data);
                        }
                        data.truncate(self.max);
                        data
                    }
                };
            }
        }
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in &entries {
            let method = if rng.one_in(4) { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(method)
                .last_modified_time(zip::DateTime::default());
            out.start_file(name.as_str(), options).ok()?;
            out.write_all(data).ok()?;
        }
        let packed = out.finish().ok()?.into_inner();
        (packed.len() <= self.max).then_some(packed)
    }
}

// ---------------------------------------------------------------------------------------
// The seeds: the fixture corpora, read at run time.

#[derive(Debug, Default)]
struct Corpus {
    mails: Vec<Vec<u8>>,
    understand: Vec<Vec<u8>>,
    authres: Vec<Vec<u8>>,
    addresses: Vec<Vec<u8>>,
    texts: Vec<Vec<u8>>,
    word: Vec<Vec<u8>>,
    pdf: Vec<Vec<u8>>,
    zip: Vec<Vec<u8>>,
}

/// Authentication-Results values shaped after RFC 8601's grammar and examples, beside the
/// fixtures' own.
const AUTHRES_SEEDS: &[&str] = &[
    "example.org; none",
    "example.org 1; none",
    "mail.ietf.org; spf=pass smtp.mailfrom=example.net",
    "mail.ietf.org 1; dkim=pass (2048-bit key; unprotected) header.d=example.org header.i=@example.org \
     header.b=\"abcd1234\"; dmarc=pass (p=reject dis=none) header.from=example.org",
    "mail.ietf.org; spf=fail reason=\"sender not permitted\" smtp.mailfrom=\"a;b\"@evil.example",
    "(a comment) mail.ietf.org (another (nested) comment); auth=pass (cram-md5) smtp.auth=sender@example.net",
    "mail.ietf.org; dkim/1=pass header.d=example.com; arc=pass (i=1) smtp.remote-ip=192.0.2.1",
    "mail.ietf.org; iprev=pass policy.iprev=192.0.2.200",
    "mail.ietf.org; dmarc=none header.from=example.com; dkim=neutral (no signature) header.d=example.com",
    "mail.ietf.org; sender-id=hardfail header.from=example.com; dkim=pass header.d=example.com\n\
     mail.ietf.org; dmarc=pass header.from=example.com",
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The files of `dir` (and of its subdirectories when `deep`), sorted.
fn files(dir: &Path, deep: bool, suffix: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("directory entry").path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if deep {
                files(&path, deep, suffix, out);
            }
        } else if path.to_string_lossy().ends_with(suffix) {
            out.push(path);
        }
    }
}

impl Corpus {
    fn load(harness: &Harness) -> Corpus {
        let root = fixtures();
        let mut mails = Vec::new();
        files(&root.join("statements"), false, ".eml", &mut mails);
        files(&root.join("hostile"), false, ".eml", &mut mails);
        files(&root.join("demo-maildir/new"), false, "", &mut mails);
        let mut documents = Vec::new();
        files(&root.join("real/documents"), false, "", &mut documents);
        files(&root.join("attachments"), true, "", &mut documents);
        // The documents earlier campaigns found.
        files(&root.join("hostile"), false, ".pdf", &mut documents);
        assert!(mails.len() >= 40 && documents.len() >= 20, "the fixture corpora are missing");

        let mut c = Corpus::default();
        for path in &mails {
            let raw = std::fs::read(path).expect("fixture");
            c.add_mail(harness, raw);
        }
        for path in &documents {
            let bytes = std::fs::read(path).expect("fixture");
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            c.add_document(harness, name.as_deref(), &bytes);
        }
        c.authres.extend(AUTHRES_SEEDS.iter().map(|s| s.as_bytes().to_vec()));
        for name in ["../../etc/passwd", "..", ".hidden", "C:\\Users\\x\\LS 42.docx", "LS\u{202e}cod.exe"] {
            c.addresses.push(name.as_bytes().to_vec());
        }
        for list in [
            &mut c.mails,
            &mut c.understand,
            &mut c.authres,
            &mut c.addresses,
            &mut c.texts,
            &mut c.word,
            &mut c.pdf,
            &mut c.zip,
        ] {
            let mut seen = HashSet::new();
            list.retain(|s| s.len() <= MAX_INPUT && seen.insert(s.clone()));
            assert!(!list.is_empty(), "a target without seeds");
        }
        c
    }

    /// A message, and what it holds: field values, texts, attachments.
    fn add_mail(&mut self, harness: &Harness, raw: Vec<u8>) {
        let parsed = Parsed::new(&raw);
        for (name, value) in parsed.headers.fields() {
            match name.to_ascii_lowercase().as_str() {
                "authentication-results" => self.authres.push(value.as_bytes().to_vec()),
                "from" | "to" | "cc" | "reply-to" | "sender" | "return-path" => {
                    self.addresses.push(value.as_bytes().to_vec());
                }
                _ => {}
            }
        }
        let header = parsed.header.as_ref().ok();
        let mut framed = format!(
            "{}{SEPARATOR}{}",
            header.and_then(|h| h.subject.as_deref()).unwrap_or(""),
            header.and_then(|h| h.from.as_deref()).unwrap_or("")
        );
        for body in &parsed.content.bodies {
            framed.push(SEPARATOR);
            framed.push_str(&body.text);
            self.texts.push(body.text.as_bytes().to_vec());
        }
        for part in &parsed.content.attachments {
            self.addresses.push(part.filename.as_bytes().to_vec());
            if let Some(Ok(read)) = read_in_process(part.format, &part.bytes, &harness.limits) {
                framed.push(SEPARATOR);
                framed.push_str(&read.text);
            }
            self.add_document(harness, Some(&part.filename), &part.bytes);
        }
        self.understand.push(framed.into_bytes());
        self.mails.push(raw);
    }

    /// A document: a worker target's seed (and its text, read by the worker, an `understand`
    /// seed), or a text seed.
    fn add_document(&mut self, harness: &Harness, name: Option<&str>, bytes: &[u8]) {
        let format = sniff(name, "application/octet-stream", bytes);
        let list = match format {
            Format::Doc | Format::Docx => &mut self.word,
            Format::Pdf => &mut self.pdf,
            Format::Zip => &mut self.zip,
            Format::Text | Format::Html => {
                self.texts.push(bytes.to_vec());
                let text = String::from_utf8_lossy(bytes);
                self.understand.push(format!("{SEPARATOR}{SEPARATOR}{text}").into_bytes());
                return;
            }
            Format::Other => return,
        };
        list.push(bytes.to_vec());
        if let Ok(read) = harness.extractor.extract(format, bytes) {
            let subject = name.unwrap_or("");
            self.understand.push(format!("{subject}{SEPARATOR}{SEPARATOR}{}", read.text).into_bytes());
        }
    }

    fn seeds(&self, target: Target) -> &[Vec<u8>] {
        match target {
            Target::Mime => &self.mails,
            Target::Understand => &self.understand,
            Target::Authres => &self.authres,
            Target::Address => &self.addresses,
            Target::Text => &self.texts,
            Target::Word => &self.word,
            Target::Pdf => &self.pdf,
            Target::Zip => &self.zip,
        }
    }

    fn mutator(&self, target: Target) -> Mutator<'_> {
        let tokens = match target {
            Target::Mime => MAIL_TOKENS,
            Target::Understand => UNDERSTAND_TOKENS,
            Target::Authres => AUTHRES_TOKENS,
            Target::Address => ADDRESS_TOKENS,
            Target::Text | Target::Word | Target::Pdf | Target::Zip => DOCUMENT_TOKENS,
        };
        Mutator {
            seeds: self.seeds(target),
            tokens,
            max: target.max_input(),
            lines: matches!(target, Target::Mime | Target::Understand),
            archives: matches!(target, Target::Word | Target::Zip),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Counting, findings, the watchdog.

#[derive(Debug, Default)]
struct Stats {
    executions: AtomicU64,
    panics: AtomicU64,
    over_bound: AtomicU64,
    /// Worker targets: the worker died.
    died: AtomicU64,
    /// Worker targets: extraction errors (normal answers).
    refused: AtomicU64,
    slowest_ns: AtomicU64,
    findings: AtomicU64,
    seconds: Mutex<f64>,
}

impl Stats {
    fn failures(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
            + self.over_bound.load(Ordering::Relaxed)
            + self.died.load(Ordering::Relaxed)
    }
}

/// What a thread is running now, for the watchdog.
struct Running {
    target: Target,
    started: Instant,
    input: Arc<[u8]>,
}

struct Campaign<'a> {
    harness: &'a Harness,
    corpus: &'a Corpus,
    seed: u64,
    threads: usize,
    stats: Vec<Stats>,
    slots: Vec<Mutex<Option<Running>>>,
    findings_dir: PathBuf,
    written: Mutex<Vec<String>>,
}

impl Campaign<'_> {
    fn stats(&self, target: Target) -> &Stats {
        &self.stats[target as usize]
    }

    /// One thread's share of one target's phase: first its share of the seeds as they are,
    /// then mutated inputs until the deadline.
    fn run(&self, target: Target, thread: usize, deadline: Instant) {
        let mutator = self.corpus.mutator(target);
        let mut rng = Rng::new(mix(self.seed ^ mix(((thread as u64) << 8) | target as u64)));
        for seed in mutator.seeds.iter().skip(thread).step_by(self.threads) {
            self.execute(target, thread, seed.clone());
        }
        while Instant::now() < deadline {
            let input = mutator.input(&mut rng);
            self.execute(target, thread, input);
        }
    }

    fn execute(&self, target: Target, thread: usize, input: Vec<u8>) {
        let input: Arc<[u8]> = input.into();
        let started = Instant::now();
        *self.slots[thread].lock().expect("slot") = Some(Running { target, started, input: Arc::clone(&input) });
        let outcome = self.harness.execute(target, &input);
        let took = started.elapsed();
        *self.slots[thread].lock().expect("slot") = None;
        let stats = self.stats(target);
        stats.executions.fetch_add(1, Ordering::Relaxed);
        stats.slowest_ns.fetch_max(took.as_nanos() as u64, Ordering::Relaxed);
        let count = |counter: &AtomicU64, what: String| {
            counter.fetch_add(1, Ordering::Relaxed);
            Some(what)
        };
        let what = match outcome {
            Outcome::Panicked(why) => count(&stats.panics, format!("panicked: {why}")),
            Outcome::Died(why) => count(&stats.died, format!("the worker died: {why}")),
            Outcome::Stopped(why) => count(&stats.over_bound, format!("stopped at the bound: {why}")),
            Outcome::Done | Outcome::Refused if took > self.harness.bound => {
                count(&stats.over_bound, format!("over the time bound ({:?})", self.harness.bound))
            }
            Outcome::Refused => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
            Outcome::Done => None,
        };
        if let Some(what) = what {
            self.write_finding(target, &input, &format!("{what}\ntook {took:?}, {} bytes\n", input.len()));
        }
    }

    /// `target/fuzz-findings/<target>-<n>.bin`, and what happened in `.txt` beside it.
    fn write_finding(&self, target: Target, input: &[u8], what: &str) {
        if self.stats(target).findings.fetch_add(1, Ordering::Relaxed) >= MAX_FINDINGS_PER_TARGET {
            return;
        }
        std::fs::create_dir_all(&self.findings_dir).expect("findings directory");
        for n in 0.. {
            let path = self.findings_dir.join(format!("{}-{n}.bin", target.name()));
            let Ok(mut file) = std::fs::OpenOptions::new().write(true).create_new(true).open(&path) else {
                continue;
            };
            file.write_all(input).expect("write a finding");
            std::fs::write(path.with_extension("txt"), what).expect("write a finding");
            eprintln!("fuzz: {}: {} ({})", target.name(), what.lines().next().unwrap_or(""), path.display());
            self.written.lock().expect("findings").push(path.display().to_string());
            break;
        }
    }

    /// Ends the process when an input has run for `limit`: it is written down first, with
    /// the summary so far.
    fn watch(&self, limit: Duration, done: &AtomicBool) {
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            for slot in &self.slots {
                let slot = slot.lock().expect("slot");
                let Some(running) = slot.as_ref() else { continue };
                if running.started.elapsed() > limit {
                    let what = format!("hang: still running after {limit:?}, {} bytes\n", running.input.len());
                    self.write_finding(running.target, &running.input, &what);
                    self.stats(running.target).over_bound.fetch_add(1, Ordering::Relaxed);
                    eprintln!("{}", self.summary(Duration::ZERO));
                    eprintln!("fuzz: {} hangs; the process ends now", running.target.name());
                    std::process::exit(101);
                }
            }
        }
    }

    fn summary(&self, elapsed: Duration) -> String {
        let mut out = String::new();
        let (mut executions, mut panics, mut over, mut died, mut slowest) = (0, 0, 0, 0, 0);
        for target in Target::ALL {
            let s = self.stats(target);
            let e = s.executions.load(Ordering::Relaxed);
            if e == 0 {
                continue;
            }
            let (p, o, d, ns) = (
                s.panics.load(Ordering::Relaxed),
                s.over_bound.load(Ordering::Relaxed),
                s.died.load(Ordering::Relaxed),
                s.slowest_ns.load(Ordering::Relaxed),
            );
            let seconds = *s.seconds.lock().expect("seconds");
            let worker = if target.worker() {
                format!("  worker errors {}  worker deaths {d}", s.refused.load(Ordering::Relaxed))
            } else {
                String::new()
            };
            out += &format!(
                "fuzz {:<10} executions {e:>11}  panics {p}  over the bound {o}  slowest {:>9.3} ms  ({seconds:.0} s){worker}\n",
                target.name(),
                ns as f64 / 1e6,
            );
            (executions, panics, over, died, slowest) =
                (executions + e, panics + p, over + o, died + d, slowest.max(ns));
        }
        out += &format!(
            "fuzz total      executions {executions:>11}  panics {panics}  over the bound {over}  worker deaths {died}  \
             slowest {:.3} ms; seed {:#x}, {:.1} s, {} threads, bound {:?}, {} build\n",
            slowest as f64 / 1e6,
            self.seed,
            elapsed.as_secs_f64(),
            self.threads,
            self.harness.bound,
            if cfg!(debug_assertions) { "debug" } else { "release" },
        );
        out
    }
}

/// Sets its flag when dropped.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The target directory this test binary was built in (`target/<profile>/deps/fuzz-…`).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not valid")),
        Err(_) => default,
    }
}

fn bound() -> Duration {
    if cfg!(debug_assertions) { BOUND_RELEASE * DEBUG_FACTOR } else { BOUND_RELEASE }
}

#[test]
fn fuzz() {
    if let Ok(path) = std::env::var("LIAISOND_FUZZ_REPLAY") {
        replay(Path::new(&path));
        return;
    }
    let seed = match std::env::var("LIAISOND_FUZZ_SEED") {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("LIAISOND_FUZZ_SEED={v:?} is not a number"))
        }
        Err(_) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            mix(now.as_nanos() as u64 ^ u64::from(std::process::id()))
        }
    };
    let seconds: f64 = setting("LIAISOND_FUZZ_SECONDS", 60.0);
    let threads: usize = setting("LIAISOND_FUZZ_THREADS", 2usize).max(1);
    let targets: Vec<Target> = match std::env::var("LIAISOND_FUZZ_TARGETS") {
        Ok(list) => list
            .split(',')
            .map(|n| Target::from_name(n.trim()).unwrap_or_else(|| panic!("no fuzz target {n:?}")))
            .collect(),
        Err(_) => Target::ALL.to_vec(),
    };
    println!("fuzz: seed {seed:#x} (LIAISOND_FUZZ_SEED replays it), {seconds} s, {threads} threads");

    let harness = Harness::new(bound());
    let corpus = Corpus::load(&harness);
    let campaign = Campaign {
        harness: &harness,
        corpus: &corpus,
        seed,
        threads,
        stats: Target::ALL.iter().map(|_| Stats::default()).collect(),
        slots: (0..threads).map(|_| Mutex::new(None)).collect(),
        findings_dir: target_dir().join("fuzz-findings"),
        written: Mutex::new(Vec::new()),
    };
    for target in &targets {
        println!("fuzz: {} seeds for {}", corpus.seeds(*target).len(), target.name());
    }

    let started = Instant::now();
    let total_weight: u32 = targets.iter().map(|t| t.weight()).sum();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| campaign.watch(harness.bound * HANG_FACTOR, &done));
        // The watchdog ends with the campaign, however the campaign ends.
        let _stop = Stop(&done);
        for &target in &targets {
            let share = Duration::from_secs_f64(seconds * f64::from(target.weight()) / f64::from(total_weight));
            let phase = Instant::now();
            let deadline = phase + share;
            std::thread::scope(|threads| {
                for thread in 0..campaign.threads {
                    let campaign = &campaign;
                    threads.spawn(move || campaign.run(target, thread, deadline));
                }
            });
            *campaign.stats(target).seconds.lock().expect("seconds") = phase.elapsed().as_secs_f64();
        }
    });

    let summary = campaign.summary(started.elapsed());
    println!("{summary}");
    std::fs::write(target_dir().join("fuzz-summary.txt"), &summary).expect("write the summary");
    let failures: u64 = campaign.stats.iter().map(Stats::failures).sum();
    let written = campaign.written.lock().expect("findings");
    assert!(
        failures == 0,
        "the fuzzer found {failures} failing input(s) (seed {seed:#x}); written:\n{}\n{summary}",
        written.join("\n")
    );
}

/// The fixtures earlier campaigns found (`fixtures/hostile/`: messages and documents), each
/// run once under its target: no panic, none over the bound. The regression test of each
/// finding's time bound (the core's own tests cannot read a clock).
#[test]
fn hostile_fixtures_pass_within_the_bound() {
    let harness = Harness::new(bound());
    let mut paths = Vec::new();
    files(&fixtures().join("hostile"), false, "", &mut paths);
    let mut checked = 0;
    for path in paths {
        let target = match path.extension().and_then(|e| e.to_str()) {
            Some("eml") => Target::Mime,
            Some("pdf") => Target::Pdf,
            _ => continue,
        };
        let input = std::fs::read(&path).expect("fixture");
        let started = Instant::now();
        let outcome = harness.execute(target, &input);
        let took = started.elapsed();
        let name = path.display();
        assert!(matches!(outcome, Outcome::Done | Outcome::Refused), "{name}: {outcome:?}");
        assert!(took <= harness.bound, "{name}: {took:?}, over the bound of {:?}", harness.bound);
        checked += 1;
    }
    assert!(checked >= 10, "{checked} fixtures");
}

/// Runs one findings file under the target its name starts with.
fn replay(path: &Path) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let target = name
        .split(['-', '.'])
        .next()
        .and_then(Target::from_name)
        .unwrap_or_else(|| panic!("{name}: the file name does not start with a target's name"));
    let input = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let harness = Harness::new(bound());
    let started = Instant::now();
    let outcome = harness.execute(target, &input);
    let took = started.elapsed();
    println!("fuzz replay: {} on {} bytes: {outcome:?} in {took:?}", target.name(), input.len());
    assert!(matches!(outcome, Outcome::Done | Outcome::Refused), "{outcome:?}");
    assert!(took <= harness.bound, "over the bound of {:?}: {took:?}", harness.bound);
}
