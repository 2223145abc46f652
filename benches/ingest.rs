//! Ingest benchmark: liaisond against the loopback Dovecot testbed, next to `mbsync`.
//!
//! ```text
//! cargo bench --bench ingest -- [--messages N] [--runs R] [--seed S] [--testbed DIR] [--keep]
//! ```
//!
//! 1. starts the testbed (`scripts/testbed start DIR`, idempotent; it is never stopped here);
//! 2. generates N messages from the seed, shaped like a real liaison mailbox
//!    (`benches/common/mailgen.rs`: median about 18 KiB, 40 % under 10 KiB, a third with a PDF,
//!    Word or zip attachment, one in a thousand with a 20 MiB PDF, the charsets and encodings
//!    of real mail), and APPENDs them, as they are generated, to a fresh mailbox
//!    `bench-<pid>-<n>` of liaison@example.org over two plain IMAP connections;
//! 3. R times, alternately: `liaisond run --once` (the binary of this build profile) over that
//!    mailbox into a fresh database with `after_commit = "leave"`, measuring its wall time and
//!    peak RSS (its VmHWM, sampled: `common/peak.rs`) and checking that the database holds N `processed`
//!    messages; then `mbsync` with `FSync yes` copying the same mailbox to a fresh Maildir (the
//!    durable floor: only pulling the bytes), timed the same way, checking that N files arrived;
//! 4. prints the medians, the ratio and the peak RSS against the budget (sizes in MiB = 2^20
//!    bytes), and deletes the mailbox and the temporary directories, unless `--keep`.
//!
//! Targets (issue 14): liaisond within 2x of mbsync; peak RSS below 100 MiB plus the largest
//! message.

#[path = "../tests/common/base64.rs"]
mod base64;
#[path = "common/mailgen.rs"]
mod mailgen;
#[path = "common/peak.rs"]
mod peak;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use async_imap::Session;
use tokio::net::TcpStream;

const USER: &str = "liaison@example.org";
const DEFAULT_MESSAGES: usize = 2000;
const DEFAULT_SEED: u64 = 42;
const DEFAULT_TESTBED: &str = "/tmp/liaisond-testbed";
/// Parallel APPEND connections.
const APPEND_CONNECTIONS: usize = 2;
/// Time limit for one IMAP command issued by the bench (an APPEND of a 14 MB message included).
const IMAP_TIMEOUT: Duration = Duration::from_secs(120);
const MIB: f64 = 1024.0 * 1024.0;
/// The issue's memory budget: this much plus the largest message.
const RSS_BASE_BUDGET: u64 = 100 * 1024 * 1024;
const TARGET_RATIO: f64 = 2.0;

// ---------------------------------------------------------------------------------------------
// Command line

#[derive(Debug)]
struct Args {
    messages: usize,
    runs: usize,
    seed: u64,
    testbed: PathBuf,
    keep: bool,
}

const USAGE: &str = "usage: cargo bench --bench ingest -- [--messages N] [--runs R] [--seed S] [--testbed DIR] [--keep]\n\
    \n\
    --messages N    how many messages to generate and ingest (default 2000)\n\
    --runs R        how many times each of liaisond and mbsync runs, alternately (default 3)\n\
    --seed S        seed for the message generator (default 42)\n\
    --testbed DIR   the loopback Dovecot testbed directory (default /tmp/liaisond-testbed)\n\
    --keep          keep the bench mailbox, the database and the Maildir (paths are printed)";

fn parse_args() -> Result<Option<Args>> {
    let mut args = Args {
        messages: DEFAULT_MESSAGES,
        runs: 3,
        seed: DEFAULT_SEED,
        testbed: PathBuf::from(DEFAULT_TESTBED),
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| anyhow!("{name} needs a value ({what})\n\n{USAGE}")),
            }
        };
        match name.as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--messages" | "-n" => {
                let v = value("a number of messages")?;
                args.messages = v.parse().with_context(|| format!("--messages {v}: not a number"))?;
                ensure!(args.messages > 0, "--messages must be at least 1");
            }
            "--runs" => {
                let v = value("a number of runs")?;
                args.runs = v.parse().with_context(|| format!("--runs {v}: not a number"))?;
                ensure!(args.runs > 0, "--runs must be at least 1");
            }
            "--seed" => {
                let v = value("an integer")?;
                args.seed = v.parse().with_context(|| format!("--seed {v}: not an unsigned integer"))?;
            }
            "--testbed" => args.testbed = PathBuf::from(value("a directory")?),
            "--keep" => args.keep = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    Ok(Some(args))
}

// ---------------------------------------------------------------------------------------------
// Testbed

#[derive(Debug, Clone)]
struct Testbed {
    host: String,
    imap_port: u16,
    password: String,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start_testbed(dir: &Path) -> Result<Testbed> {
    let script = repo_root().join("scripts/testbed");
    // The same users as the tests start it with (a different list would reload the servers
    // and drop the end-to-end tests' users from under them).
    let users = std::fs::read_to_string(repo_root().join("tests/testbed-users"))?;
    let status = Command::new(&script)
        .arg("start")
        .arg(dir)
        .env("TESTBED_EXTRA_USERS", users.trim())
        .stdin(Stdio::null())
        // The daemons must not inherit a pipe; stdout is not needed (stderr shows problems).
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    ensure!(status.success(), "`{} start {}` failed ({status})", script.display(), dir.display());
    let env_file = dir.join("env");
    let text = std::fs::read_to_string(&env_file).with_context(|| format!("cannot read {}", env_file.display()))?;
    let vars: HashMap<&str, &str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.strip_prefix("export ").unwrap_or(l))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim().trim_matches(|c| c == '"' || c == '\'')))
        .collect();
    let get = |k: &str| vars.get(k).copied().ok_or_else(|| anyhow!("{k} is missing from {}", env_file.display()));
    let port = get("TESTBED_IMAP_PORT")?;
    Ok(Testbed {
        host: vars.get("TESTBED_HOST").copied().unwrap_or("127.0.0.1").to_string(),
        imap_port: port.parse().with_context(|| format!("TESTBED_IMAP_PORT={port} in {}", env_file.display()))?,
        password: get("TESTBED_PASSWORD")?.to_string(),
    })
}

type ImapSession = Session<TcpStream>;

async fn imap_login(tb: &Testbed) -> Result<ImapSession> {
    let addr = format!("{}:{}", tb.host, tb.imap_port);
    let tcp = tokio::time::timeout(IMAP_TIMEOUT, TcpStream::connect((tb.host.as_str(), tb.imap_port)))
        .await
        .map_err(|_| anyhow!("connecting to {addr} timed out"))?
        .with_context(|| format!("cannot connect to the testbed IMAP server at {addr}"))?;
    // APPEND writes the literal and then a lone CRLF: without NODELAY, Nagle's algorithm and
    // delayed ACKs can hold that CRLF back for ~40 ms per message.
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let mut client = async_imap::Client::new(tcp);
    imap_step("waiting for the greeting", client.read_response())
        .await?
        .ok_or_else(|| anyhow!("{addr} closed the connection before greeting"))?;
    tokio::time::timeout(IMAP_TIMEOUT, client.login(USER, &tb.password))
        .await
        .map_err(|_| anyhow!("logging in to {addr} timed out"))?
        .map_err(|(e, _)| anyhow!("login as {USER} on {addr} failed: {e}"))
}

async fn imap_step<T, E>(what: &str, fut: impl Future<Output = std::result::Result<T, E>>) -> Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(IMAP_TIMEOUT, fut).await {
        Err(_) => bail!("IMAP: no answer within {IMAP_TIMEOUT:?} while {what}"),
        Ok(r) => r.with_context(|| format!("IMAP error while {what}")),
    }
}

/// Deletes the bench mailbox over a fresh connection (Dovecot drops a session whose selected
/// mailbox is deleted, so never reuse one that selected it).
async fn delete_mailbox(tb: &Testbed, mailbox: &str) -> Result<()> {
    let mut s = imap_login(tb).await?;
    imap_step("deleting the bench mailbox", s.delete(mailbox)).await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), s.logout()).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Appending

#[derive(Debug, Default)]
struct AppendStats {
    bytes: AtomicU64,
    largest: AtomicU64,
    with_attachments: AtomicUsize,
    attachments: AtomicUsize,
    with_html: AtomicUsize,
    huge: AtomicUsize,
    under_10k: AtomicUsize,
    /// Every message's size, to print the median.
    sizes: std::sync::Mutex<Vec<u64>>,
}

async fn append_all(tb: &Testbed, mailbox: &str, n: usize, seed: u64) -> Result<(Arc<AppendStats>, Duration)> {
    let stats = Arc::new(AppendStats::default());
    let documents = Arc::new(mailgen::Documents::load(&repo_root()));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..APPEND_CONNECTIONS.min(n) {
        let (tb, mailbox, stats, next) = (tb.clone(), mailbox.to_string(), stats.clone(), next.clone());
        let documents = documents.clone();
        workers.spawn(async move {
            let mut s = imap_login(&tb).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let documents = documents.clone();
                let (raw, shape) = tokio::task::spawn_blocking(move || mailgen::generate(seed, i, &documents))
                    .await
                    .map_err(|e| anyhow!("generating message {i} failed: {e}"))?;
                let len = raw.len() as u64;
                imap_step("appending", s.append(&mailbox, None, None, &raw))
                    .await
                    .with_context(|| format!("APPEND of message {i} ({len} bytes) to {mailbox}"))?;
                stats.bytes.fetch_add(len, Ordering::Relaxed);
                stats.largest.fetch_max(len, Ordering::Relaxed);
                if shape.attachments > 0 {
                    stats.with_attachments.fetch_add(1, Ordering::Relaxed);
                }
                if shape.html {
                    stats.with_html.fetch_add(1, Ordering::Relaxed);
                }
                if shape.huge {
                    stats.huge.fetch_add(1, Ordering::Relaxed);
                }
                if len < 10 * 1024 {
                    stats.under_10k.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut sizes) = stats.sizes.lock() {
                    sizes.push(len);
                }
                stats.attachments.fetch_add(shape.attachments, Ordering::Relaxed);
                let done = i + 1;
                if done % 500 == 0 {
                    eprintln!("  ... {done}/{n} generated and appending");
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), s.logout()).await;
            anyhow::Ok(())
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.map_err(|e| anyhow!("an append task failed: {e}"))??;
    }
    let elapsed = started.elapsed();
    // Check the server's count.
    let mut s = imap_login(tb).await?;
    let status = imap_step("reading the mailbox status", s.status(mailbox, "(MESSAGES)")).await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), s.logout()).await;
    ensure!(status.exists as usize == n, "the mailbox {mailbox} holds {} messages after appending {n}", status.exists);
    Ok((stats, elapsed))
}

// ---------------------------------------------------------------------------------------------
// Child processes, measured

#[derive(Debug)]
struct Measured {
    wall: Duration,
    /// Peak resident set size of the program itself, bytes (its VmHWM; see `peak.rs`).
    max_rss: u64,
    user: Duration,
    sys: Duration,
    /// Exit code, or the signal that killed it.
    exit: std::result::Result<i32, i32>,
}

impl Measured {
    fn describe_exit(&self) -> String {
        match self.exit {
            Ok(c) => format!("exit code {c}"),
            Err(sig) => format!("killed by signal {sig}"),
        }
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

/// Spawns `cmd` and waits for exactly that child with `wait4`, for its own resource usage.
/// Dirty pages left by an earlier step (appending, the other run) are flushed first, untimed,
/// so that neither run pays for the other's writeback.
fn run_measured(cmd: &mut Command, what: &str) -> Result<Measured> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let started = Instant::now();
    let child = cmd.spawn().with_context(|| format!("cannot start {what}"))?;
    let watch = peak::PeakWatch::start(child.id());
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own child, not waited for elsewhere
        // (std's `Child` only waits when asked to, and it is dropped without that).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("wait4 for {what} (pid {pid})"));
        }
    }
    let wall = started.elapsed();
    drop(child);
    let exit = if libc::WIFEXITED(status) { Ok(libc::WEXITSTATUS(status)) } else { Err(libc::WTERMSIG(status)) };
    Ok(Measured { wall, max_rss: watch.finish(), user: timeval(usage.ru_utime), sys: timeval(usage.ru_stime), exit })
}

fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// liaisond

struct LiaisondRun {
    m: Measured,
    db_bytes: u64,
    stored_bytes: u64,
}

fn run_liaisond(tb: &Testbed, mailbox: &str, dir: &Path, n: usize) -> Result<LiaisondRun> {
    let db = dir.join("liaisond.db");
    let config = dir.join("liaisond.toml");
    let text = format!(
        "# written by benches/ingest.rs\n\
         [store]\n\
         database = {db}\n\
         \n\
         [[imap]]\n\
         name = \"bench\"\n\
         host = {host}\n\
         port = {port}\n\
         tls = \"none\"\n\
         username = {user}\n\
         password_env = \"LIAISOND_BENCH_IMAP_PASSWORD\"\n\
         mailbox = {mailbox}\n\
         after_commit = \"leave\"\n",
        db = toml_str(&db.to_string_lossy()),
        host = toml_str(&tb.host),
        port = tb.imap_port,
        user = toml_str(USER),
        mailbox = toml_str(mailbox),
    );
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    let log = dir.join("liaisond.log");
    let out = dir.join("liaisond.out");
    let bin = env!("CARGO_BIN_EXE_liaisond");
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg("--once")
        .arg("--config")
        .arg(&config)
        .env("LIAISOND_BENCH_IMAP_PASSWORD", &tb.password)
        .env_remove("LIAISOND_CONFIG")
        .stdin(Stdio::null())
        .stdout(File::create(&out).with_context(|| format!("cannot create {}", out.display()))?)
        .stderr(File::create(&log).with_context(|| format!("cannot create {}", log.display()))?);
    if std::env::var_os("LIAISOND_LOG").is_none() {
        cmd.env("LIAISOND_LOG", "info");
    }
    let m = run_measured(&mut cmd, "liaisond")?;
    if m.exit != Ok(0) {
        bail!(
            "`{bin} run --once --config {}` failed ({}) after {:.1} s; last lines of {}:\n{}",
            config.display(),
            m.describe_exit(),
            m.wall.as_secs_f64(),
            log.display(),
            tail(&log, 20)
        );
    }

    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {} read-only", db.display()))?;
    let mut stmt = conn
        .prepare("SELECT state, count(*), coalesce(sum(size), 0) FROM messages GROUP BY state")
        .context("querying the database")?;
    let rows: Vec<(String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .context("querying the database")?
        .collect::<rusqlite::Result<_>>()
        .context("reading the database")?;
    let total: i64 = rows.iter().map(|r| r.1).sum();
    let processed = rows.iter().find(|r| r.0 == "processed").map_or(0, |r| r.1);
    ensure!(
        total as usize == n && processed as usize == n,
        "the database {} holds {total} messages ({}), expected {n} all processed; last lines of {}:\n{}",
        db.display(),
        rows.iter().map(|(s, c, _)| format!("{c} {s}")).collect::<Vec<_>>().join(", "),
        log.display(),
        tail(&log, 10)
    );
    let stored_bytes = rows.iter().map(|r| r.2 as u64).sum();
    drop(stmt);
    drop(conn);
    let db_bytes = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    Ok(LiaisondRun { m, db_bytes, stored_bytes })
}

// ---------------------------------------------------------------------------------------------
// mbsync

fn run_mbsync(tb: &Testbed, mailbox: &str, dir: &Path, n: usize) -> Result<Measured> {
    let maildir = dir.join("maildir");
    std::fs::create_dir_all(&maildir).with_context(|| format!("cannot create {}", maildir.display()))?;
    let rc = dir.join("mbsyncrc");
    // isync 1.4 syntax: Far/Near, SSLType (TLSType is 1.5).
    let text = format!(
        "# Every message is flushed to disk before the server is told (the durable floor).\n\
         FSync yes\n\
         \n\
         IMAPAccount bench\n\
         Host {host}\n\
         Port {port}\n\
         User {USER}\n\
         Pass {pass}\n\
         SSLType None\n\
         AuthMechs LOGIN\n\
         \n\
         IMAPStore remote\n\
         Account bench\n\
         \n\
         MaildirStore local\n\
         Path {path}/\n\
         Inbox {path}/INBOX\n\
         SubFolders Verbatim\n\
         \n\
         Channel bench\n\
         Far :remote:{mailbox}\n\
         Near :local:{mailbox}\n\
         Create Near\n\
         Sync Pull\n\
         SyncState *\n",
        host = tb.host,
        port = tb.imap_port,
        pass = tb.password,
        path = maildir.display(),
    );
    std::fs::write(&rc, text).with_context(|| format!("cannot write {}", rc.display()))?;
    let log = dir.join("mbsync.log");
    let logf = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut cmd = Command::new("mbsync");
    cmd.arg("-c")
        .arg(&rc)
        .arg("bench")
        .stdin(Stdio::null())
        .stdout(logf.try_clone().context("duplicating the log file handle")?)
        .stderr(logf);
    let m = run_measured(&mut cmd, "mbsync (Debian package isync)")?;
    if m.exit != Ok(0) {
        bail!(
            "`mbsync -c {} bench` failed ({}) after {:.1} s; last lines of {}:\n{}",
            rc.display(),
            m.describe_exit(),
            m.wall.as_secs_f64(),
            log.display(),
            tail(&log, 20)
        );
    }
    let target = maildir.join(mailbox);
    let mut files = 0;
    for sub in ["new", "cur"] {
        let d = target.join(sub);
        for entry in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let entry = entry.with_context(|| format!("cannot list {}", d.display()))?;
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                files += 1;
            }
        }
    }
    ensure!(files == n, "mbsync left {files} files in {}, expected {n}", target.display());
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Main

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

fn main() -> Result<()> {
    let Some(args) = parse_args()? else { return Ok(()) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;

    let profile = if cfg!(debug_assertions) { "debug (unoptimised)" } else { "release (optimised, bench profile)" };
    let bin = env!("CARGO_BIN_EXE_liaisond");
    eprintln!(
        "liaisond ingest bench: {} messages, seed {}, testbed {}",
        args.messages,
        args.seed,
        args.testbed.display()
    );
    eprintln!("binary: {bin} [{profile}]");

    let tb = start_testbed(&args.testbed)?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mailbox = format!("bench-{}-{}", std::process::id(), nanos % 1_000_000_000);
    let work =
        tempfile::Builder::new().prefix("liaisond-bench-").tempdir().context("cannot create a temporary directory")?;

    rt.block_on(async {
        let mut s = imap_login(&tb).await?;
        imap_step("creating the bench mailbox", s.create(&mailbox))
            .await
            .with_context(|| format!("cannot create the mailbox {mailbox}"))?;
        let _ = tokio::time::timeout(Duration::from_secs(5), s.logout()).await;
        anyhow::Ok(())
    })?;
    eprintln!("mailbox {mailbox} of {USER} on {}:{}; work directory {}", tb.host, tb.imap_port, work.path().display());

    let result = bench(&rt, &args, &tb, &mailbox, work.path());

    if args.keep {
        let kept = work.keep();
        eprintln!("--keep: left the mailbox {mailbox} and the directory {} (database, Maildir, logs)", kept.display());
    } else {
        let deleted = rt.block_on(delete_mailbox(&tb, &mailbox));
        if let Err(e) = &deleted {
            eprintln!("warning: cannot delete the bench mailbox {mailbox}: {e:#}");
        }
        let path = work.path().to_path_buf();
        if let Err(e) = work.close() {
            eprintln!("warning: cannot remove {}: {e}", path.display());
        }
        if result.is_ok() {
            deleted?;
        }
    }
    result
}

/// The median of `values` (the lower middle one for an even count).
fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    sorted[(sorted.len() - 1) / 2]
}

fn bench(rt: &tokio::runtime::Runtime, args: &Args, tb: &Testbed, mailbox: &str, work: &Path) -> Result<()> {
    let n = args.messages;
    eprintln!("generating and appending {n} messages over {APPEND_CONNECTIONS} connections ...");
    let (stats, append_time) = rt.block_on(append_all(tb, mailbox, n, args.seed))?;
    let total = stats.bytes.load(Ordering::Relaxed);
    let largest = stats.largest.load(Ordering::Relaxed);
    let with_att = stats.with_attachments.load(Ordering::Relaxed);
    let sizes = stats.sizes.lock().map(|s| s.clone()).unwrap_or_default();
    let median_size = if sizes.is_empty() { 0 } else { median(&sizes) };
    eprintln!(
        "appended {n} messages ({} text only, {} of them with HTML; {with_att} with {} attachments, {} of 20 MiB), \
         {:.1} MiB, median {:.1} KiB, {:.0} % under 10 KiB, largest {:.2} MiB, in {:.1} s",
        n - with_att,
        stats.with_html.load(Ordering::Relaxed),
        stats.attachments.load(Ordering::Relaxed),
        stats.huge.load(Ordering::Relaxed),
        mib(total),
        median_size as f64 / 1024.0,
        100.0 * stats.under_10k.load(Ordering::Relaxed) as f64 / n as f64,
        mib(largest),
        append_time.as_secs_f64(),
    );

    // Alternately, so that both see the same state of the page cache and the disk.
    let mut runs_l = Vec::new();
    let mut runs_m = Vec::new();
    for round in 1..=args.runs {
        let ldir = work.join(format!("liaisond-{round}"));
        std::fs::create_dir_all(&ldir).with_context(|| format!("cannot create {}", ldir.display()))?;
        let l = run_liaisond(tb, mailbox, &ldir, n)?;
        eprintln!(
            "run {round}: liaisond {:.2} s, peak RSS {:.1} MiB, database {:.1} MiB",
            l.m.wall.as_secs_f64(),
            mib(l.m.max_rss),
            mib(l.db_bytes)
        );
        if l.stored_bytes != total {
            eprintln!("note: the database holds {} message bytes, {} were appended", l.stored_bytes, total);
        }
        let mdir = work.join(format!("mbsync-{round}"));
        std::fs::create_dir_all(&mdir).with_context(|| format!("cannot create {}", mdir.display()))?;
        let mb = run_mbsync(tb, mailbox, &mdir, n)?;
        eprintln!("run {round}: mbsync {:.2} s, peak RSS {:.1} MiB", mb.wall.as_secs_f64(), mib(mb.max_rss));
        // Only the last round's files are kept (--keep); the others would fill the disk at N=10,000.
        if round < args.runs {
            let _ = std::fs::remove_dir_all(&ldir);
            let _ = std::fs::remove_dir_all(&mdir);
        }
        runs_l.push(l);
        runs_m.push(mb);
    }

    let secs = median(&runs_l.iter().map(|l| l.m.wall.as_secs_f64()).collect::<Vec<_>>());
    let mb_secs = median(&runs_m.iter().map(|m| m.wall.as_secs_f64()).collect::<Vec<_>>());
    let rss = median(&runs_l.iter().map(|l| l.m.max_rss).collect::<Vec<_>>());
    let rss_max = runs_l.iter().map(|l| l.m.max_rss).max().unwrap_or(0);
    let user = median(&runs_l.iter().map(|l| l.m.user.as_secs_f64()).collect::<Vec<_>>());
    let sys = median(&runs_l.iter().map(|l| l.m.sys.as_secs_f64()).collect::<Vec<_>>());
    let mb_rss = median(&runs_m.iter().map(|m| m.max_rss).collect::<Vec<_>>());
    let db_bytes = runs_l.last().map_or(0, |l| l.db_bytes);
    let budget = RSS_BASE_BUDGET + largest;
    let within = rss_max <= budget;
    let ratio = secs / mb_secs;
    let list = |v: Vec<f64>| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ");
    let mut t = String::new();
    let row = |t: &mut String, k: &str, v: String| {
        let _ = writeln!(t, "  {k:<38} {v}");
    };
    let _ = writeln!(t, "\nliaisond ingest benchmark (MiB = 2^20 bytes; medians of {} alternating runs)", args.runs);
    row(&mut t, "liaisond binary", env!("CARGO_BIN_EXE_liaisond").to_string());
    row(
        &mut t,
        "profile",
        (if cfg!(debug_assertions) { "debug (unoptimised)" } else { "release (bench profile)" }).to_string(),
    );
    row(&mut t, "seed", args.seed.to_string());
    row(&mut t, "messages", format!("{n} ({} text only, {with_att} with attachments)", n - with_att));
    row(&mut t, "total size", format!("{:.1} MiB ({total} bytes)", mib(total)));
    row(
        &mut t,
        "median / largest message",
        format!("{:.1} KiB / {:.2} MiB", median_size as f64 / 1024.0, mib(largest)),
    );
    row(&mut t, "appending (2 IMAP connections)", format!("{:.2} s", append_time.as_secs_f64()));
    row(
        &mut t,
        "liaisond run --once: wall",
        format!("{secs:.2} s ({} s)", list(runs_l.iter().map(|l| l.m.wall.as_secs_f64()).collect())),
    );
    row(&mut t, "liaisond CPU (user + sys)", format!("{user:.2} s + {sys:.2} s"));
    row(&mut t, "messages/s", format!("{:.1}", n as f64 / secs));
    row(&mut t, "MiB/s", format!("{:.1}", mib(total) / secs));
    row(&mut t, "peak RSS (median, max)", format!("{:.1} MiB, {:.1} MiB", mib(rss), mib(rss_max)));
    row(
        &mut t,
        "budget: 100 MiB + largest",
        format!("{:.1} MiB -> {}", mib(budget), if within { "WITHIN" } else { "OVER" }),
    );
    row(&mut t, "database on disk", format!("{:.1} MiB", mib(db_bytes)));
    row(
        &mut t,
        "mbsync (FSync yes) to Maildir: wall",
        format!("{mb_secs:.2} s ({} s)", list(runs_m.iter().map(|m| m.wall.as_secs_f64()).collect())),
    );
    row(&mut t, "mbsync peak RSS", format!("{:.1} MiB", mib(mb_rss)));
    row(
        &mut t,
        "ratio liaisond / mbsync",
        format!("{ratio:.2} (target <= {TARGET_RATIO:.1}) -> {}", if ratio <= TARGET_RATIO { "OK" } else { "SLOWER" }),
    );
    print!("{t}");
    std::io::stdout().flush().context("writing the table")?;
    Ok(())
}
