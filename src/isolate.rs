//! Runs attachment text extraction in child processes (`liaisond extract-text`), because
//! document parsers can hang, panic or allocate without bound (pdf-extract panics on purpose on
//! odd PDFs; a zip can unpack to terabytes), and a parser bug is the attacker's way in. Each
//! child starts with an empty environment (the daemon's holds the mail password) and
//! `no_new_privs`, under an address-space limit (`RLIMIT_AS`), no file size, core or process
//! (`RLIMIT_FSIZE`, `RLIMIT_CORE`, `RLIMIT_NPROC` 0), and a CPU limit: the hard `RLIMIT_CPU`
//! is the budget of all the requests of its life, and the soft one, which ends it with
//! SIGXCPU, is raised by the parent before each reuse to what it used so far plus one budget.
//! A wall-clock timeout after which the parent kills it bounds each request too; its answer is
//! read up to a limit. Before its first request the child confines itself (`sandbox`): a
//! seccomp allow-list leaves it reading stdin, writing stdout and stderr, using memory and
//! ending (no file, socket, process, thread or limit change), and if it cannot, it exits
//! without reading anything. Whatever happens to a child, the parent gets an error for that
//! one attachment and goes on.
//!
//! The children are **persistent workers**: starting a process costs about 4 ms, which was most
//! of the time spent on a small attachment (parse benchmark). An [`Extractor`] keeps idle
//! workers and reuses them; a worker that overran, crashed, panicked or answered
//! nonsense is never reused, and every worker is retired after [`MAX_REQUESTS_PER_WORKER`]
//! requests, so a slow leak in a parser cannot grow for ever.
//!
//! Protocol on the child's stdin/stdout (all lengths big-endian `u64`):
//! request `kind-name-length: u8, kind name, length, bytes` (the kind is a format's name, or
//! `probe` in debug builds); answer `length, JSON`, where the JSON is
//! `{"text": "...", "warnings": [...], "format": "docx"}` (`format` only for a zip archive,
//! which the worker reads as what it holds), `{"error": "..."}` or `{"panicked": "..."}`
//! (after which the worker exits). End of input makes the worker exit.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use liaisond_extract::{self as extract, ExtractLimits, Extracted, Format};

mod sandbox;

/// A worker is retired after this many requests.
pub const MAX_REQUESTS_PER_WORKER: u32 = 500;
/// At most this many idle workers are kept.
const MAX_IDLE_WORKERS: usize = 4;
/// The largest attachment a worker accepts (the message size limit bounds it before that).
const MAX_REQUEST_BYTES: u64 = 1 << 30;
/// The exit status of a worker that could not confine itself (sysexits' EX_CONFIG): it
/// serves no request unconfined.
const NOT_CONFINED_EXIT: u8 = 78;

/// How the children are confined.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The `liaisond` binary to run as the child.
    pub program: PathBuf,
    /// Address-space limit of the child.
    pub memory_bytes: u64,
    /// CPU seconds the child may use for one attachment.
    pub cpu_seconds: u64,
    /// Wall-clock limit for one attachment, after which the child is killed.
    pub wall: Duration,
}

impl Isolation {
    /// Defaults sized for statements: 1 GiB of address space, 20 s of CPU, 30 s of wall clock.
    pub fn new(program: PathBuf) -> Isolation {
        Isolation { program, memory_bytes: 1 << 30, cpu_seconds: 20, wall: Duration::from_secs(30) }
    }
}

/// What the child answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum ChildOutput {
    Text {
        text: String,
        warnings: Vec<String>,
        /// What a zip archive turned out to be (see [`Extracted::format`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<Format>,
    },
    Error {
        error: String,
    },
    Panicked {
        panicked: String,
    },
}

// ---------------------------------------------------------------------------------------
// The child side.

/// What the parent asks of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// The text of an attachment read as this format.
    Extract(Format),
    /// Tests only (see [`probe`]): compiled into debug builds, which the integration tests
    /// run, and out of release ones. Only the parent names a request's kind, never an
    /// attachment, and what a probe tries is what the sandbox forbids.
    #[cfg(debug_assertions)]
    Probe,
}

impl Request {
    #[cfg(debug_assertions)]
    const PROBE: &str = "probe";

    fn name(self) -> &'static str {
        match self {
            Request::Extract(format) => format.as_str(),
            #[cfg(debug_assertions)]
            Request::Probe => Request::PROBE,
        }
    }

    fn parse(name: &str) -> Option<Request> {
        #[cfg(debug_assertions)]
        if name == Request::PROBE {
            return Some(Request::Probe);
        }
        Format::parse(name).map(Request::Extract)
    }
}

/// The worker loop of `liaisond extract-text`: confines itself, then serves requests from
/// stdin until it ends. Returns the process exit code.
pub fn worker_main() -> u8 {
    // A parser's panic is an expected event here (pdf-extract reports much of what it cannot
    // read by panicking), caught and answered as such: the hook writes one line, never a
    // backtrace, whatever the environment says (issue 14: symbolising a backtrace, reading the
    // binary's debug information, cost more than the parse).
    std::panic::set_hook(Box::new(|info| {
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("liaisond extract-text: a parser panicked{place}");
    }));
    // Before the first request, and so before any attachment byte is read.
    if let Err(e) = sandbox::confine() {
        eprintln!("liaisond extract-text: cannot confine itself, so it reads nothing: {e}");
        return NOT_CONFINED_EXIT;
    }
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    loop {
        let (request, bytes) = match read_request(&mut input) {
            Ok(Some(r)) => r,
            Ok(None) => return 0,
            Err(e) => {
                let _ = write_answer(&mut output, &ChildOutput::Error { error: e });
                return 1;
            }
        };
        let result = std::panic::catch_unwind(|| match request {
            Request::Extract(kind) => {
                extract::extract_text(kind, &bytes, &ExtractLimits::default()).map_err(|e| e.to_string())
            }
            #[cfg(debug_assertions)]
            Request::Probe => probe(&bytes),
        });
        let (answer, exit) = match result {
            Ok(Ok(Extracted { text, warnings, format })) => (ChildOutput::Text { text, warnings, format }, false),
            Ok(Err(error)) => (ChildOutput::Error { error }, false),
            Err(panic) => {
                let panicked = match extract::panic_message(panic.as_ref()) {
                    Some(message) => format!("the parser panicked: {message}"),
                    None => "the parser panicked".to_string(),
                };
                (ChildOutput::Panicked { panicked }, true)
            }
        };
        drop(bytes);
        if write_answer(&mut output, &answer).is_err() || exit {
            return 0;
        }
    }
}

fn read_request(input: &mut impl Read) -> Result<Option<(Request, Vec<u8>)>, String> {
    let mut len = [0u8; 1];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(format!("cannot read the request: {e}")),
    }
    let mut name = vec![0u8; usize::from(len[0])];
    input.read_exact(&mut name).map_err(|e| format!("cannot read the request: {e}"))?;
    let request = std::str::from_utf8(&name)
        .ok()
        .and_then(Request::parse)
        .ok_or_else(|| format!("unknown kind {:?}", String::from_utf8_lossy(&name)))?;
    let mut size = [0u8; 8];
    input.read_exact(&mut size).map_err(|e| format!("cannot read the request: {e}"))?;
    let size = u64::from_be_bytes(size);
    if size > MAX_REQUEST_BYTES {
        return Err(format!("an attachment of {size} bytes is over the worker's limit"));
    }
    let mut bytes = Vec::new();
    input.take(size).read_to_end(&mut bytes).map_err(|e| format!("cannot read the attachment: {e}"))?;
    if bytes.len() as u64 != size {
        return Err("the request ended early".into());
    }
    Ok(Some((request, bytes)))
}

/// Tests only: does inside the worker what its sandbox must refuse, or how a parser can end
/// badly, as `what` says:
/// - `sandbox`: tries to open a file, connect, start a process or a thread, exec, raise its
///   CPU limit and map executable memory, and answers one line per attempt: `name: outcome`,
///   the outcome being `succeeded` or the error's kind and message;
/// - `spin`: loops for ever (its CPU limit must end it);
/// - `allocate`: asks for a terabyte (its memory limit must end it, by abort);
/// - `overflow`: recurses without end (std's stack overflow handler must end it, by abort);
/// - `panic`: panics (the worker answers so and ends).
#[cfg(debug_assertions)]
fn probe(what: &[u8]) -> Result<Extracted, String> {
    use std::hint::black_box;
    fn outcome<T>(name: &str, result: std::io::Result<T>) -> String {
        match result {
            Ok(_) => format!("{name}: succeeded\n"),
            Err(e) => format!("{name}: {:?}: {e}\n", e.kind()),
        }
    }
    fn os_result(ret: i64) -> std::io::Result<()> {
        if ret < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
    }
    fn deep(n: u64) -> u64 {
        let frame = black_box([n; 64]);
        if n == u64::MAX { 0 } else { deep(n + 1).wrapping_add(frame[7]) }
    }
    match what {
        b"sandbox" => {
            let mut text = String::new();
            text += &outcome("open /etc/passwd", std::fs::File::open("/etc/passwd"));
            text += &outcome("connect 127.0.0.1:9", std::net::TcpStream::connect("127.0.0.1:9"));
            let child = std::process::Command::new("/bin/true").spawn().map(|mut c| c.wait());
            text += &outcome("spawn /bin/true", child);
            text += &outcome("start a thread", std::thread::Builder::new().spawn(|| ()).map(|t| t.join()));
            // A path that does not exist: were execve allowed, this fails with ENOENT and the
            // worker goes on (it cannot replace itself by accident).
            // SAFETY: a NUL-terminated path, null argument and environment vectors.
            let exec =
                unsafe { libc::execve(c"/nonexistent/liaisond-probe".as_ptr(), std::ptr::null(), std::ptr::null()) };
            text += &outcome("execve", os_result(exec.into()));
            let mut cpu = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: getrlimit and setrlimit read and write the struct we own.
            let raise = unsafe {
                libc::getrlimit(libc::RLIMIT_CPU, &mut cpu);
                cpu.rlim_cur = cpu.rlim_max;
                libc::setrlimit(libc::RLIMIT_CPU, &cpu)
            };
            text += &outcome("raise its CPU limit", os_result(raise.into()));
            // SAFETY: an anonymous mapping at an address of the kernel's choice.
            let map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            text += &outcome("map executable memory", os_result(if map == libc::MAP_FAILED { -1 } else { 0 }));
            Ok(Extracted { text, ..Extracted::default() })
        }
        b"spin" => loop {
            black_box(0u64);
        },
        b"allocate" => Ok(Extracted { text: black_box(vec![1u8; 1 << 40]).len().to_string(), ..Extracted::default() }),
        b"overflow" => Ok(Extracted { text: deep(0).to_string(), ..Extracted::default() }),
        b"panic" => panic!("the probe panicked on purpose"),
        other => Err(format!("no probe {:?}", String::from_utf8_lossy(other))),
    }
}

fn write_answer(output: &mut impl Write, answer: &ChildOutput) -> std::io::Result<()> {
    let json = serde_json::to_vec(answer).map_err(std::io::Error::other)?;
    output.write_all(&(json.len() as u64).to_be_bytes())?;
    output.write_all(&json)?;
    output.flush()
}

// ---------------------------------------------------------------------------------------
// The parent side.

/// Extracts attachment text through a pool of confined worker processes. Shared by all
/// threads (`&self`); each request takes an idle worker or starts one.
#[derive(Debug)]
pub struct Extractor {
    isolation: Isolation,
    idle: Mutex<Vec<Worker>>,
    started: AtomicU64,
}

#[derive(Debug)]
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    served: u32,
    /// Its hard `RLIMIT_CPU`: the CPU seconds it may use in its whole life.
    cpu_hard: libc::rlim_t,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // An idle worker holds nothing of value; killing it is the quickest clean end.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why one request failed, and whether the worker may still be used.
struct Failure {
    reason: String,
    worker_usable: bool,
}

impl Extractor {
    pub fn new(isolation: Isolation) -> Extractor {
        Extractor { isolation, idle: Mutex::new(Vec::new()), started: AtomicU64::new(0) }
    }

    /// The process IDs of the idle workers (for diagnostics and tests).
    pub fn idle_worker_pids(&self) -> Vec<u32> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|w| w.child.id()).collect()
    }

    /// How many worker processes this extractor has started (reuse keeps it low).
    pub fn workers_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// Extracts text from `bytes` in a confined worker. An `Err` is the reason the attachment
    /// has no text (recorded on the attachment).
    pub fn extract(&self, kind: Format, bytes: &[u8]) -> Result<Extracted, String> {
        self.extract_within(kind, bytes, self.isolation.wall)
    }

    /// Like [`Extractor::extract`], with a wall-clock limit of at most `wall` (a message's
    /// remaining time budget).
    pub fn extract_within(&self, kind: Format, bytes: &[u8], wall: Duration) -> Result<Extracted, String> {
        self.serve(Request::Extract(kind), bytes, wall)
    }

    /// Tests only: runs the worker's probe `what` (see the worker's `probe`) the way an
    /// attachment is extracted, on an idle worker or a new one.
    #[cfg(debug_assertions)]
    #[doc(hidden)]
    pub fn probe(&self, what: &str) -> Result<Extracted, String> {
        self.serve(Request::Probe, what.as_bytes(), self.isolation.wall)
    }

    fn serve(&self, request: Request, bytes: &[u8], wall: Duration) -> Result<Extracted, String> {
        let wall = wall.min(self.isolation.wall);
        let mut worker = match self.take_idle() {
            Some(w) => w,
            None => self.start()?,
        };
        match self.request(&mut worker, request, bytes, wall) {
            Ok(extracted) => {
                self.give_back(worker);
                Ok(extracted)
            }
            Err(Failure { reason, worker_usable }) => {
                if worker_usable {
                    self.give_back(worker);
                }
                Err(reason)
            }
        }
    }

    fn take_idle(&self) -> Option<Worker> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(mut w) = idle.pop() {
            // A worker that died while idle (the OOM killer, an operator) is not reused, nor
            // one that cannot be given the CPU time of one more request.
            if matches!(w.child.try_wait(), Ok(None)) && self.allow_cpu_for_one_request(&w) {
                return Some(w);
            }
        }
        None
    }

    /// Sets a reused worker's soft `RLIMIT_CPU` to what it has used so far plus one request's
    /// budget, from outside: the worker itself cannot change its limits (its seccomp filter
    /// denies prlimit64), so a parser taken over cannot raise them either. False when that is
    /// not possible (the worker's life allowance, its hard limit, is spent; `/proc` unreadable):
    /// the worker is then retired and a fresh one, whose soft limit is the budget, started.
    fn allow_cpu_for_one_request(&self, worker: &Worker) -> bool {
        let Some(used) = cpu_seconds_used(worker.child.id()) else {
            return false;
        };
        let soft = used.saturating_add(self.isolation.cpu_seconds) as libc::rlim_t;
        if soft > worker.cpu_hard {
            return false;
        }
        let Ok(pid) = libc::pid_t::try_from(worker.child.id()) else {
            return false;
        };
        let r = libc::rlimit { rlim_cur: soft, rlim_max: worker.cpu_hard };
        // SAFETY: prlimit reads the struct we own. `pid` is our child and not yet reaped, so
        // it cannot name another process.
        unsafe { libc::prlimit(pid, libc::RLIMIT_CPU, &r, std::ptr::null_mut()) == 0 }
    }

    fn give_back(&self, mut worker: Worker) {
        worker.served += 1;
        if worker.served >= MAX_REQUESTS_PER_WORKER {
            return; // dropped: killed and reaped
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_WORKERS {
            idle.push(worker);
        }
    }

    fn start(&self) -> Result<Worker, String> {
        let iso = &self.isolation;
        let mut cmd = Command::new(&iso.program);
        cmd.arg("extract-text")
            // None of the daemon's environment: it holds the mail password (`password_env`)
            // and systemd's CREDENTIALS_DIRECTORY, and the worker needs nothing from it (its
            // log filter is off by default).
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let memory = iso.memory_bytes as libc::rlim_t;
        let (cpu_soft, cpu_hard) = cpu_limits(iso.cpu_seconds);
        // SAFETY: runs between fork and exec, where only async-signal-safe calls are allowed;
        // prctl(2) and setrlimit(2) are plain system calls, and nothing here allocates.
        unsafe {
            cmd.pre_exec(move || {
                let limit = |resource, soft: libc::rlim_t, hard: libc::rlim_t| {
                    let r = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                    if libc::setrlimit(resource, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                };
                // No set-user-ID or file-capability program can raise its privileges, and it
                // may install its seccomp filter without any. (The variadic arguments are the
                // `unsigned long` the kernel reads.)
                let (one, zero): (libc::c_ulong, libc::c_ulong) = (1, 0);
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                limit(libc::RLIMIT_AS, memory, memory)?;
                // The hard limit is the worker's whole life (the parent raises the soft one
                // before each request, see `allow_cpu_for_one_request`).
                limit(libc::RLIMIT_CPU, cpu_soft, cpu_hard)?;
                // It writes no file: a write to one ends it (SIGXFSZ).
                limit(libc::RLIMIT_FSIZE, 0, 0)?;
                // It starts no process or thread. The count is per user, but the limit is the
                // forking process's own: this one stops only the worker's fork and clone
                // (unless it runs as root), never the daemon's next worker, and exec does not
                // check it.
                limit(libc::RLIMIT_NPROC, 0, 0)?;
                limit(libc::RLIMIT_CORE, 0, 0)
            });
        }
        let mut child =
            cmd.spawn().map_err(|e| format!("cannot start the extractor {}: {e}", iso.program.display()))?;
        self.started.fetch_add(1, Ordering::Relaxed);
        match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => Ok(Worker { child, stdin, stdout, served: 0, cpu_hard }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err("the extractor has no pipes".into())
            }
        }
    }

    /// One request on one worker, under the wall-clock limit.
    fn request(
        &self,
        worker: &mut Worker,
        request: Request,
        bytes: &[u8],
        wall: Duration,
    ) -> Result<Extracted, Failure> {
        let deadline = Instant::now() + wall;
        let max_answer = (ExtractLimits::default().max_output_bytes as u64) * 6 + 65536;
        let Worker { child, stdin, stdout, .. } = worker;
        let name = request.name().as_bytes();
        let answer = std::thread::scope(|scope| {
            // Write on a thread: a large attachment fills the pipe, and the child may stop
            // reading (hung, dead); killing the child then ends the write with EPIPE.
            let writer = scope.spawn(move || -> std::io::Result<()> {
                stdin.write_all(&[name.len() as u8])?;
                stdin.write_all(name)?;
                stdin.write_all(&(bytes.len() as u64).to_be_bytes())?;
                stdin.write_all(bytes)?;
                stdin.flush()
            });
            let answer = read_answer(stdout, deadline, max_answer);
            // A closed pipe means the worker already died (its status says why); otherwise
            // it is still running and must be stopped before the writer can end.
            if matches!(answer, Err(ReadFailure::Timeout | ReadFailure::TooLarge(_) | ReadFailure::Io(_))) {
                let _ = child.kill();
            }
            let _ = writer.join();
            answer
        });
        let json = match answer {
            Ok(json) => json,
            Err(ReadFailure::Timeout) => {
                let _ = child.wait();
                return Err(Failure {
                    reason: format!("extraction took longer than {} and was stopped", humantime::format_duration(wall)),
                    worker_usable: false,
                });
            }
            Err(ReadFailure::TooLarge(n)) => {
                let _ = child.wait();
                return Err(Failure {
                    reason: format!("the extractor's answer ({n} bytes) is over the limit"),
                    worker_usable: false,
                });
            }
            Err(ReadFailure::Closed) => {
                return Err(Failure { reason: death_reason(child, self.isolation.cpu_seconds), worker_usable: false });
            }
            Err(ReadFailure::Io(e)) => {
                let _ = child.wait();
                return Err(Failure {
                    reason: format!("cannot read the extractor's answer: {e}"),
                    worker_usable: false,
                });
            }
        };
        match serde_json::from_slice::<ChildOutput>(&json) {
            Ok(ChildOutput::Text { text, warnings, format }) => Ok(Extracted { text, warnings, format }),
            Ok(ChildOutput::Error { error }) => Err(Failure { reason: error, worker_usable: true }),
            Ok(ChildOutput::Panicked { panicked }) => Err(Failure { reason: panicked, worker_usable: false }),
            Err(e) => {
                Err(Failure { reason: format!("the extractor's answer is unreadable: {e}"), worker_usable: false })
            }
        }
    }
}

/// A new worker's soft and hard `RLIMIT_CPU`: one request's budget, and the budget of every
/// request it may serve (but no more than this process's own hard limit, which it cannot
/// exceed).
fn cpu_limits(budget: u64) -> (libc::rlim_t, libc::rlim_t) {
    let life = budget.saturating_mul(u64::from(MAX_REQUESTS_PER_WORKER)) as libc::rlim_t;
    let hard = current_hard_cpu_limit().min(life);
    ((budget as libc::rlim_t).min(hard), hard)
}

fn current_hard_cpu_limit() -> libc::rlim_t {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_CPU, &mut r) } != 0 {
        return libc::RLIM_INFINITY;
    }
    r.rlim_max
}

/// The CPU seconds (user and system, rounded up) process `pid` has used, from fields 14 and
/// 15 of `/proc/<pid>/stat`, in clock ticks.
fn cpu_seconds_used(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2, the command name in parentheses, may hold spaces and parentheses: count the
    // fields from its end (field 3 is the first after it).
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|t| *t > 0)?;
    Some(user.saturating_add(system).div_ceil(ticks))
}

/// Why a worker closed its output: reaps it and reads its exit status.
fn death_reason(child: &mut Child, cpu_seconds: u64) -> String {
    let status = match child.wait() {
        Ok(s) => s,
        Err(e) => return format!("the extractor stopped answering: {e}"),
    };
    match status.signal() {
        Some(libc::SIGXCPU) => format!("extraction used more than {cpu_seconds} s of CPU and was stopped"),
        Some(libc::SIGKILL) => "the extractor was killed".to_string(),
        Some(sig) => format!("the extractor crashed (signal {sig}; over the memory limit?)"),
        None => match status.code() {
            Some(code) if code == i32::from(NOT_CONFINED_EXIT) => {
                "the extractor could not confine itself (seccomp), so it read nothing".to_string()
            }
            // Rust aborts an allocation failure (the address-space limit) with SIGABRT, and a
            // failed start (the limit too small to load the program) with a status.
            Some(code) => format!("the extractor failed (exit status {code}; over the memory limit?)"),
            None => "the extractor stopped".to_string(),
        },
    }
}

enum ReadFailure {
    Timeout,
    Closed,
    TooLarge(u64),
    Io(std::io::Error),
}

/// Reads one framed answer, waiting at most until `deadline` (poll(2) on the pipe).
fn read_answer(stdout: &mut ChildStdout, deadline: Instant, max: u64) -> Result<Vec<u8>, ReadFailure> {
    let mut head = [0u8; 8];
    read_full(stdout, &mut head, deadline)?;
    let len = u64::from_be_bytes(head);
    if len > max {
        return Err(ReadFailure::TooLarge(len));
    }
    let mut body = vec![0u8; len as usize];
    read_full(stdout, &mut body, deadline)?;
    Ok(body)
}

fn read_full(stdout: &mut ChildStdout, buf: &mut [u8], deadline: Instant) -> Result<(), ReadFailure> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadFailure::Timeout);
        }
        let mut pfd = libc::pollfd { fd: stdout.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: one pollfd we own, for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(ReadFailure::Io(e));
        }
        if ready == 0 {
            continue; // the loop re-checks the deadline
        }
        match stdout.read(&mut buf[filled..]) {
            Ok(0) => return Err(ReadFailure::Closed),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadFailure::Io(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let mut wire = Vec::new();
        wire.push(4u8);
        wire.extend_from_slice(b"text");
        wire.extend_from_slice(&5u64.to_be_bytes());
        wire.extend_from_slice(b"hello");
        let mut r = &wire[..];
        let (request, bytes) = read_request(&mut r).expect("ok").expect("one request");
        assert_eq!((request, bytes.as_slice()), (Request::Extract(Format::Text), &b"hello"[..]));
        assert!(read_request(&mut r).expect("eof").is_none(), "end of input ends the worker");
        let mut short = &wire[..wire.len() - 2];
        assert!(read_request(&mut short).is_err(), "a cut request is an error");
    }
}
