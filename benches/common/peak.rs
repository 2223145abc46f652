//! The peak resident memory of a child process, as `/proc/<pid>/status` shows it (VmHWM).
//!
//! Not `wait4`'s `ru_maxrss`: Linux carries a process's high-water mark across fork and exec
//! (the child starts as a copy of the parent, or on its memory with posix_spawn's vfork), so
//! a benchmark that has held 130 MiB of generated mail would report at least that for every
//! program it starts (measured: mbsync and liaisond both "127.8 MiB" after appending 10,000
//! messages). VmHWM belongs to the program's own address space, made at exec.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Samples the VmHWM of `pid` every 10 ms until [`PeakWatch::finish`].
pub struct PeakWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl PeakWatch {
    pub fn start(pid: u32) -> PeakWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = std::fs::read_to_string(&path).ok().as_deref().and_then(vm_hwm_kib) {
                    p.fetch_max(kib * 1024, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        PeakWatch { stop, peak, thread: Some(thread) }
    }

    /// The highest VmHWM seen, in bytes (call after the child was waited for).
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// `VmHWM:   123456 kB` → 123456.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
