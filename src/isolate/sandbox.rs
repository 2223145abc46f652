//! The extraction worker confines itself before it reads its first request: it closes every
//! file descriptor but its pipes and installs a seccomp-BPF allow-list, so that a parser taken
//! over by a hostile attachment can read its request, write its answer, use memory and end,
//! and nothing else: no file, no socket, no process or thread, no change to its limits.
//!
//! The filter is installed by the worker itself and not in `pre_exec`, because it would then
//! have to allow `execve` and everything the dynamic loader and Rust's start-up do. Measured
//! with `strace -f` over `tests/extract.rs` (every fixture, the hostile ones, the failure
//! probes), extracting takes only `read`, `write`, `brk`, `mmap`, `munmap` and `mremap`; a
//! panic adds `futex`, `sigaltstack` and `exit_group`, an abort (the memory limit, a stack
//! overflow) `rt_sigprocmask`, `gettid`, `getpid` and `tgkill`. `close`, `madvise`,
//! `mprotect`, `getrandom`, `clock_gettime`, `rt_sigreturn` and `rt_sigaction` are allowed for
//! paths the tests did not take (glibc's `free` trims with `madvise`, a `HashMap` draws its
//! keys, abort(3) resets SIGABRT); none of them reaches outside the process.
//!
//! A call off the list fails with `EPERM` rather than killing the process: a parser that
//! tries something (a font file, say) then fails cleanly and the worker answers an error for
//! that attachment; a hostile one gains nothing from being told no. Only a system call of
//! another architecture (a 32-bit one, whose numbers mean other calls) kills it.

/// Closes every descriptor above standard error, sets `no_new_privs` and installs the filter.
/// The process must have one thread (it has: nothing before this starts one).
pub(super) fn confine() -> Result<(), String> {
    close_inherited_descriptors();
    // The variadic arguments as the `unsigned long` the kernel reads (it refuses non-zero
    // unused ones).
    let (one, zero): (libc::c_ulong, libc::c_ulong) = (1, 0);
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) } != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    install(&mut filter()?)
}

/// A descriptor the daemon opened without close-on-exec (a library's) would reach the worker.
/// The filter lets it read and write none but 0, 1 and 2 and map no file; closing the others
/// keeps it so should the list ever grow.
fn close_inherited_descriptors() {
    // SAFETY: close_range(2) closes descriptors of this process only; nothing here holds one
    // above 2.
    let closed = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } == 0;
    if !closed {
        // Before Linux 5.9: one by one, up to the descriptor limit.
        // SAFETY: sysconf reads a value; close on a descriptor that is not open is harmless.
        let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(3, 1 << 20) as libc::c_int;
        for fd in 3..max {
            unsafe { libc::close(fd) };
        }
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn filter() -> Result<Vec<libc::sock_filter>, String> {
    // linux/audit.h: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    // SAFETY: getpid has no arguments.
    let pid = unsafe { libc::getpid() } as u32;
    let rules = [
        // Requests come on standard input, answers go to standard output; a panic's message
        // to standard error (/dev/null). No other descriptor.
        Rule::arg(libc::SYS_read, Arg::OneOf(0, vec![0])),
        Rule::arg(libc::SYS_write, Arg::OneOf(0, vec![1, 2])),
        Rule::any(libc::SYS_close),
        // Memory: the allocator, never executable, never a file's.
        Rule::any(libc::SYS_brk),
        Rule::args(libc::SYS_mmap, vec![Arg::NoBits(2, libc::PROT_EXEC as u32), Arg::OneOf(4, vec![u32::MAX])]),
        Rule::arg(libc::SYS_mprotect, Arg::NoBits(2, libc::PROT_EXEC as u32)),
        Rule::any(libc::SYS_munmap),
        Rule::any(libc::SYS_mremap),
        Rule::any(libc::SYS_madvise),
        // Locks (std's Mutex and OnceLock sleep on futexes when contended).
        Rule::any(libc::SYS_futex),
        // HashMap's random keys and the clock (normally read in the vDSO, without a call).
        Rule::any(libc::SYS_getrandom),
        Rule::any(libc::SYS_clock_gettime),
        // Ending: normally, or by abort(3) (an allocation over RLIMIT_AS, a stack overflow),
        // which masks signals and sends itself SIGABRT (tgkill to its own process only).
        Rule::any(libc::SYS_exit),
        Rule::any(libc::SYS_exit_group),
        Rule::any(libc::SYS_rt_sigprocmask),
        Rule::any(libc::SYS_getpid),
        Rule::any(libc::SYS_gettid),
        Rule::arg(libc::SYS_tgkill, Arg::OneOf(0, vec![pid])),
        // Signal handling: returning from std's SIGSEGV handler (stack overflow), which runs on
        // its alternate stack, and resetting SIGSEGV, SIGBUS and SIGABRT to their default as
        // std and abort(3) do. Not SIGXCPU: the worker cannot survive its CPU limit.
        Rule::any(libc::SYS_rt_sigreturn),
        Rule::any(libc::SYS_sigaltstack),
        Rule::arg(
            libc::SYS_rt_sigaction,
            Arg::OneOf(0, vec![libc::SIGSEGV as u32, libc::SIGBUS as u32, libc::SIGABRT as u32]),
        ),
    ];
    let mut program = vec![
        load(ARCH_OFFSET),
        jump(libc::BPF_JEQ, AUDIT_ARCH_X86_64, 1, 0),
        ret(libc::SECCOMP_RET_KILL_PROCESS),
        load(NR_OFFSET),
    ];
    for rule in &rules {
        rule.compile(&mut program)?;
    }
    program.push(ret(DENY));
    if program.len() > libc::BPF_MAXINSNS as usize {
        return Err("the seccomp filter is too long".into());
    }
    Ok(program)
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn filter() -> Result<Vec<libc::sock_filter>, String> {
    Err("no seccomp filter is written for this architecture".into())
}

fn install(program: &mut [libc::sock_filter]) -> Result<(), String> {
    let len = u16::try_from(program.len()).map_err(|_| "the seccomp filter is too long".to_string())?;
    let prog = libc::sock_fprog { len, filter: program.as_mut_ptr() };
    // SAFETY: the kernel copies the program, which lives for the whole call. TSYNC would
    // report a thread left unfiltered, were there one.
    let done = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        )
    };
    if done != 0 {
        return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// What a call off the list gets.
const DENY: u32 = libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA);

/// Offsets in `struct seccomp_data` (linux/seccomp.h): `nr`, `arch`, then `args[6]` of 64 bits
/// from 16, each read by its low half (little-endian: first), which is all of an `int` or
/// `unsigned int` argument and holds the bits checked of the others.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
fn arg_offset(index: u32) -> u32 {
    16 + 8 * index
}

fn load(offset: u32) -> libc::sock_filter {
    libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: offset }
}

fn jump(op: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code: (libc::BPF_JMP | op | libc::BPF_K) as u16, jt, jf, k }
}

fn ret(k: u32) -> libc::sock_filter {
    libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k }
}

/// A condition on the low half of argument `index`.
enum Arg {
    /// It is one of these values.
    OneOf(u32, Vec<u32>),
    /// None of these bits is set.
    NoBits(u32, u32),
}

/// One allowed system call, under conditions on its arguments.
struct Rule {
    nr: libc::c_long,
    args: Vec<Arg>,
}

impl Rule {
    fn any(nr: libc::c_long) -> Rule {
        Rule { nr, args: Vec::new() }
    }

    fn arg(nr: libc::c_long, arg: Arg) -> Rule {
        Rule { nr, args: vec![arg] }
    }

    fn args(nr: libc::c_long, args: Vec<Arg>) -> Rule {
        Rule { nr, args }
    }

    /// Appends `if nr == N { <checks>; allow }`, entered with the call number in the
    /// accumulator and leaving it there when the call is another: every path through the
    /// body returns. A failed check jumps to the body's own `deny` at its end.
    fn compile(&self, program: &mut Vec<libc::sock_filter>) -> Result<(), String> {
        let nr = u32::try_from(self.nr).map_err(|_| format!("system call number {}", self.nr))?;
        let mut body = Vec::new();
        // Indexes of the jumps whose false branch goes to `deny`, and of those whose true one does.
        let (mut false_to_deny, mut true_to_deny) = (Vec::new(), Vec::new());
        for arg in &self.args {
            match arg {
                Arg::OneOf(index, values) => {
                    body.push(load(arg_offset(*index)));
                    for (i, value) in values.iter().enumerate() {
                        let left = u8::try_from(values.len() - 1 - i).map_err(|_| "too many values".to_string())?;
                        // A match skips the comparisons left; the last one's mismatch denies.
                        body.push(jump(libc::BPF_JEQ, *value, left, 0));
                        if left == 0 {
                            false_to_deny.push(body.len() - 1);
                        }
                    }
                }
                Arg::NoBits(index, bits) => {
                    body.push(load(arg_offset(*index)));
                    body.push(jump(libc::BPF_JSET, *bits, 0, 0));
                    true_to_deny.push(body.len() - 1);
                }
            }
        }
        body.push(ret(libc::SECCOMP_RET_ALLOW));
        if !self.args.is_empty() {
            let deny = body.len();
            body.push(ret(DENY));
            let offset = |at: usize| u8::try_from(deny - at - 1).map_err(|_| "a rule too long".to_string());
            for at in false_to_deny {
                body[at].jf = offset(at)?;
            }
            for at in true_to_deny {
                body[at].jt = offset(at)?;
            }
        }
        let skip = u8::try_from(body.len()).map_err(|_| "a rule too long".to_string())?;
        program.push(jump(libc::BPF_JEQ, nr, 0, skip));
        program.extend(body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `program` over one call as the kernel would (the few instructions it uses).
    fn run(program: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let word = |offset: u32| -> u32 {
            match offset {
                NR_OFFSET => nr,
                ARCH_OFFSET => arch,
                o => args[((o - 16) / 8) as usize] as u32,
            }
        };
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = program[pc];
            let code = u32::from(i.code);
            pc += 1;
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                a = word(i.k);
            } else if code == libc::BPF_RET | libc::BPF_K {
                return i.k;
            } else {
                let taken = match code & 0xf0 {
                    c if c == libc::BPF_JEQ => a == i.k,
                    c if c == libc::BPF_JSET => a & i.k != 0,
                    c => panic!("unexpected jump {c:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_filter_allows_the_list_and_denies_the_rest() {
        let program = filter().expect("filter");
        let x86_64 = 0xC000_003E;
        let call = |nr: libc::c_long, args: [u64; 6]| run(&program, x86_64, nr as u32, args);
        let allow = libc::SECCOMP_RET_ALLOW;
        assert_eq!(call(libc::SYS_read, [0, 0, 0, 0, 0, 0]), allow);
        assert_eq!(call(libc::SYS_read, [3, 0, 0, 0, 0, 0]), DENY, "only standard input");
        assert_eq!(call(libc::SYS_write, [1, 0, 0, 0, 0, 0]), allow);
        assert_eq!(call(libc::SYS_write, [2, 0, 0, 0, 0, 0]), allow);
        assert_eq!(call(libc::SYS_write, [0, 0, 0, 0, 0, 0]), DENY);
        let anonymous = [0, 4096, (libc::PROT_READ | libc::PROT_WRITE) as u64, 0x22, u64::MAX, 0];
        assert_eq!(call(libc::SYS_mmap, anonymous), allow);
        let executable = [0, 4096, (libc::PROT_READ | libc::PROT_EXEC) as u64, 0x22, u64::MAX, 0];
        assert_eq!(call(libc::SYS_mmap, executable), DENY);
        assert_eq!(call(libc::SYS_mmap, [0, 4096, libc::PROT_READ as u64, 0x02, 3, 0]), DENY, "a file");
        assert_eq!(call(libc::SYS_mprotect, [0, 4096, libc::PROT_EXEC as u64, 0, 0, 0]), DENY);
        assert_eq!(call(libc::SYS_rt_sigaction, [libc::SIGABRT as u64, 0, 0, 0, 0, 0]), allow);
        assert_eq!(call(libc::SYS_rt_sigaction, [libc::SIGXCPU as u64, 0, 0, 0, 0, 0]), DENY);
        // SAFETY: getpid has no arguments.
        let own = unsafe { libc::getpid() } as u64;
        assert_eq!(call(libc::SYS_tgkill, [own, own, libc::SIGABRT as u64, 0, 0, 0]), allow);
        assert_eq!(call(libc::SYS_tgkill, [1, 1, libc::SIGKILL as u64, 0, 0, 0]), DENY);
        for nr in [
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_prlimit64,
            libc::SYS_setrlimit,
            libc::SYS_ptrace,
            libc::SYS_kill,
        ] {
            assert_eq!(call(nr, [0; 6]), DENY, "{nr}");
        }
        // The x32 numbering (bit 30) is another table: none of it is on the list.
        assert_eq!(call(libc::SYS_read | 0x4000_0000, [0; 6]), DENY);
        // Another architecture: killed.
        assert_eq!(run(&program, 0x4000_0003, 3, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
    }
}
