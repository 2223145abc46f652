//! Running under systemd: readiness, status and the watchdog, through the notification
//! protocol of sd_notify(3) (`sd-notify` crate: one datagram to `$NOTIFY_SOCKET` per state
//! change; without `$NOTIFY_SOCKET` every notification is a no-op, so this runs the same
//! outside systemd and in the tests), and [`Liveness`]: which of the daemon's loops still run.
//!
//! - `READY=1` once every source has completed one poll successfully (at once when there is
//!   no source), so `systemctl start` returns when mail is really being read. Until then
//!   `STATUS=` says what it waits for and the last error, e.g. `waiting for the first poll of
//!   imap 'main': login as liaison refused: ...`.
//! - `WATCHDOG=1` every half of `$WATCHDOG_USEC` (sd_watchdog_enabled(3) advises pinging at
//!   half the interval), but **only** when every registered loop beat within the interval:
//!   a loop that is stuck (an await without a time limit, a task that died, a runtime whose
//!   threads are all blocked) stops the pings, and systemd restarts the daemon
//!   (`WatchdogSec=` in systemd.service(5)). A ping from a timer alone would prove only that
//!   the timer runs.
//! - `RELOADING=1` … `READY=1` around a reload (SIGHUP), `STOPPING=1` on shutdown.
//!
//! How loops stay alive while they wait: a loop calls [`Heartbeat::beat`] whenever it makes
//! progress; before an await that is bounded by a time limit longer than a beat interval (an
//! IMAP step, a message in the pipeline, an SMTP delivery) it calls [`Heartbeat::busy_for`]
//! with that limit, which counts it alive until the limit passes; and a loop that waits with
//! no work to do (a sleep between polls, IMAP IDLE, the sender waiting for mail) waits through
//! [`Heartbeat::sleep`] or races its wait against [`Heartbeat::keep_beating`], which beat from
//! inside the same task every quarter interval. The beat comes from the task's own `select!`,
//! so it stops when the task stops being polled; and every such wait is itself bounded (a
//! sleep ends, IDLE is re-issued every `idle_refresh` and gives up after 5 minutes of
//! silence), so beating through it claims nothing false.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use sd_notify::NotifyState;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often a waiting loop beats when there is no watchdog (nobody checks then; a slow tick
/// costs nothing).
const IDLE_TICK: Duration = Duration::from_secs(30);

/// How often the status line is brought up to date when nothing else wakes the notifier.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The registry of the daemon's long-running loops: each one [`register`](Liveness::register)s
/// and gets a [`Heartbeat`]. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Liveness {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    loops: Mutex<Vec<Arc<Slot>>>,
    /// Told when a source reports a poll (readiness may have changed).
    changed: Notify,
    /// How often a waiting loop beats.
    tick: Duration,
}

#[derive(Debug)]
struct Slot {
    name: String,
    /// A source: READY waits for its first successful poll.
    source: bool,
    state: Mutex<SlotState>,
}

#[derive(Debug)]
struct SlotState {
    last_beat: Instant,
    /// Counted alive until then: the loop is in an await bounded by a time limit.
    busy_until: Option<Instant>,
    polled_ok: bool,
    /// The last poll's error (cleared by a successful poll).
    error: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is a few plain values, consistent after any panic.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One loop's heartbeat. Cloning it gives the same loop (for example to the ingestor the loop
/// uses). Dropping it does **not** unregister the loop: a task that ends by panicking leaves a
/// heartbeat that no longer beats, which is what stops the watchdog. Every daemon loop runs
/// until shutdown, so none ends on purpose while the daemon goes on.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    slot: Option<Arc<Slot>>,
    shared: Option<Arc<Shared>>,
    tick: Duration,
}

/// A loop that has not beaten within the interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub name: String,
    pub silent_for: Duration,
}

impl Liveness {
    /// A registry whose waiting loops beat often enough for a watchdog of `watchdog` (a
    /// quarter of it), or rarely when there is none.
    pub fn new(watchdog: Option<Duration>) -> Liveness {
        let tick = watchdog.map_or(IDLE_TICK, |w| (w / 4).clamp(Duration::from_millis(20), IDLE_TICK));
        Liveness { shared: Arc::new(Shared { loops: Mutex::new(Vec::new()), changed: Notify::new(), tick }) }
    }

    /// Registers a long-running loop (the sender, a sweep, a scheduler) under `name`; it
    /// counts as alive from now.
    pub fn register(&self, name: impl Into<String>) -> Heartbeat {
        self.add(name.into(), false)
    }

    /// Registers a source: like [`Liveness::register`], and READY waits until it reports a
    /// successful poll ([`Heartbeat::polled`]).
    pub fn register_source(&self, name: impl Into<String>) -> Heartbeat {
        self.add(name.into(), true)
    }

    fn add(&self, name: String, source: bool) -> Heartbeat {
        let slot = Arc::new(Slot {
            name,
            source,
            state: Mutex::new(SlotState { last_beat: Instant::now(), busy_until: None, polled_ok: false, error: None }),
        });
        lock(&self.shared.loops).push(slot.clone());
        self.shared.changed.notify_one();
        Heartbeat { slot: Some(slot), shared: Some(self.shared.clone()), tick: self.shared.tick }
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        lock(&self.shared.loops).clone()
    }

    /// The loops that neither beat within `within` before `now` nor are in a
    /// bounded wait that lasts until after `now`.
    pub fn stale(&self, now: Instant, within: Duration) -> Vec<Stale> {
        let mut out = Vec::new();
        for slot in self.slots() {
            let s = lock(&slot.state);
            let alive_until = (s.last_beat + within).max(s.busy_until.unwrap_or(s.last_beat));
            if now > alive_until {
                out.push(Stale { name: slot.name.clone(), silent_for: now.saturating_duration_since(s.last_beat) });
            }
        }
        out
    }

    /// The sources that have not completed a poll yet, each with its last error.
    pub fn waiting_for_first_poll(&self) -> Vec<(String, Option<String>)> {
        self.slots()
            .iter()
            .filter(|slot| slot.source)
            .filter_map(|slot| {
                let s = lock(&slot.state);
                (!s.polled_ok).then(|| (slot.name.clone(), s.error.clone()))
            })
            .collect()
    }

    /// The sources whose last poll failed, with the error.
    pub fn failing_sources(&self) -> Vec<(String, String)> {
        self.slots()
            .iter()
            .filter(|slot| slot.source)
            .filter_map(|slot| lock(&slot.state).error.clone().map(|e| (slot.name.clone(), e)))
            .collect()
    }

    /// Waits until a source reports a poll or a loop registers.
    pub async fn changed(&self) {
        self.shared.changed.notified().await;
    }
}

impl Heartbeat {
    /// A heartbeat that belongs to no registry (`run --once`, `liaisond ingest`, tests).
    pub fn detached() -> Heartbeat {
        Heartbeat { slot: None, shared: None, tick: IDLE_TICK }
    }

    /// The loop made progress.
    pub fn beat(&self) {
        if let Some(slot) = &self.slot {
            let mut s = lock(&slot.state);
            s.last_beat = Instant::now();
            s.busy_until = None;
        }
    }

    /// The loop made progress and now enters an await bounded by `limit` (a network step
    /// under its timeout, a message under the stage limit): it counts as alive until `limit`
    /// has passed, even when that is longer than the watchdog interval. The await's own
    /// time limit is what makes this true.
    pub fn busy_for(&self, limit: Duration) {
        if let Some(slot) = &self.slot {
            let mut s = lock(&slot.state);
            let now = Instant::now();
            s.last_beat = now;
            s.busy_until = Some(now + limit);
        }
    }

    /// A source's poll ended: `Ok` (READY may now be due) or the error (shown in STATUS).
    pub fn polled(&self, result: Result<(), String>) {
        if let Some(slot) = &self.slot {
            {
                let mut s = lock(&slot.state);
                s.last_beat = Instant::now();
                s.busy_until = None;
                match result {
                    Ok(()) => {
                        s.polled_ok = true;
                        s.error = None;
                    }
                    Err(e) => s.error = Some(e),
                }
            }
            // Only the notifier waits here; `notify_one` keeps the wake-up if it is busy.
            if let Some(shared) = &self.shared {
                shared.changed.notify_one();
            }
        }
    }

    /// Sleeps for `duration`, beating every tick meanwhile (the sleep is bounded, so the loop
    /// is alive). Cancel it by dropping it (`select!` with the shutdown token).
    pub async fn sleep(&self, duration: Duration) {
        self.beat();
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            never = self.keep_beating() => match never {},
        }
        self.beat();
    }

    /// Beats every tick, forever: race it (`select!`) against a wait that is bounded by a
    /// time limit of its own, such as IMAP IDLE. Never completes.
    pub async fn keep_beating(&self) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(self.tick).await;
            self.beat();
        }
    }
}

/// Talks to systemd (when `$NOTIFY_SOCKET` is set). Failures to notify are logged once: the
/// daemon's work does not depend on them.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    state: Arc<Mutex<NotifierState>>,
}

#[derive(Debug, Default)]
struct NotifierState {
    ready: bool,
    /// STOPPING=1 was sent: nothing may claim readiness or change the status after it.
    stopping: bool,
    status: String,
    warned: bool,
}

impl Notifier {
    pub fn new() -> Notifier {
        Notifier::default()
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            let mut st = lock(&self.state);
            if !st.warned {
                st.warned = true;
                tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET); going on without it");
            }
        }
    }

    /// Sets `STATUS=` when it changed.
    pub fn status(&self, text: &str) {
        {
            let mut st = lock(&self.state);
            if st.stopping || st.status == text {
                return;
            }
            st.status = text.to_string();
        }
        self.send(&[NotifyState::Status(text)]);
    }

    /// Whether READY=1 was sent (and STOPPING=1 was not).
    fn is_ready(&self) -> bool {
        let st = lock(&self.state);
        st.ready && !st.stopping
    }

    fn ready(&self, status: &str) {
        {
            let mut st = lock(&self.state);
            if st.stopping {
                return;
            }
            st.ready = true;
            st.status = status.to_string();
        }
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A reload starts (sd_notify(3): `RELOADING=1` with `MONOTONIC_USEC=`, which systemd 253's
    /// `Type=notify-reload` requires and older versions ignore). Sent only once ready: before
    /// that, the READY=1 that ends a reload would claim the first poll happened.
    pub fn reloading(&self) {
        if !self.is_ready() {
            return;
        }
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now, NotifyState::Status("reloading")]),
            Err(_) => self.send(&[NotifyState::Reloading, NotifyState::Status("reloading")]),
        }
    }

    /// A reload ended (whether it took effect or not): `READY=1` again, with a status line.
    pub fn reloaded(&self, status: &str) {
        {
            let mut st = lock(&self.state);
            if !st.ready || st.stopping {
                return;
            }
            st.status = status.to_string();
        }
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// The daemon stops: STOPPING=1; after it, no READY=1 or status change (a reload that
    /// ends during shutdown must not announce the daemon ready again).
    pub fn stopping(&self) {
        lock(&self.state).stopping = true;
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing the message in hand")]);
    }

    fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }
}

/// The watchdog interval systemd asked for (`$WATCHDOG_USEC`, when `$WATCHDOG_PID` is unset or
/// this process; sd_watchdog_enabled(3)).
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// Runs until `shutdown`: sends READY=1 when every source has polled once, keeps STATUS=
/// current, pings the watchdog while every loop is alive, and sends STOPPING=1 at the end.
pub async fn notify_loop(
    liveness: Liveness,
    notifier: Notifier,
    progress: super::progress::Progress,
    watchdog: Option<Duration>,
    shutdown: CancellationToken,
) {
    let ping_every = watchdog.map(|w| w / 2);
    let mut next_ping = Instant::now();
    let mut reported_stale: Vec<String> = Vec::new();
    loop {
        let now = Instant::now();
        let stale = watchdog.map(|w| liveness.stale(now, w)).unwrap_or_default();
        if !notifier.is_ready() {
            let waiting = liveness.waiting_for_first_poll();
            if waiting.is_empty() {
                let status = running_status(&liveness, &progress);
                notifier.ready(&status);
                tracing::info!(status, "ready: every source has been polled once");
            } else {
                notifier.status(&with_progress(waiting_status(&waiting), &progress));
            }
        } else if stale.is_empty() {
            notifier.status(&running_status(&liveness, &progress));
        }
        if let (Some(every), Some(within)) = (ping_every, watchdog)
            && Instant::now() >= next_ping
        {
            if stale.is_empty() {
                notifier.watchdog();
                if !reported_stale.is_empty() {
                    tracing::info!("every loop is beating again; watchdog pings resume");
                    reported_stale.clear();
                }
            } else {
                let names: Vec<String> = stale.iter().map(|s| s.name.clone()).collect();
                let text = stale_status(&stale);
                if names != reported_stale {
                    tracing::error!(
                        stuck = %text,
                        watchdog = %humantime::format_duration(within),
                        "not pinging the watchdog: a loop has stopped; systemd will restart liaisond"
                    );
                    reported_stale = names;
                }
                notifier.status(&text);
            }
            next_ping += every;
        }
        let wake = match ping_every {
            Some(_) => next_ping.min(Instant::now() + STATUS_EVERY),
            None => Instant::now() + STATUS_EVERY,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = liveness.changed() => {}
            _ = shutdown.cancelled() => {
                notifier.stopping();
                return;
            }
        }
    }
}

fn waiting_status(waiting: &[(String, Option<String>)]) -> String {
    let parts: Vec<String> = waiting
        .iter()
        .map(|(name, error)| match error {
            Some(e) => format!("{name}: {e}"),
            None => name.clone(),
        })
        .collect();
    format!("waiting for the first poll of {}", parts.join("; "))
}

fn running_status(liveness: &Liveness, progress: &super::progress::Progress) -> String {
    let failing = liveness.failing_sources();
    if failing.is_empty() {
        return with_progress("running".to_string(), progress);
    }
    let parts: Vec<String> = failing.iter().map(|(name, e)| format!("{name}: {e}")).collect();
    with_progress(format!("running; retrying {}", parts.join("; ")), progress)
}

/// A long first sync's progress after the status: "running; stored 1200 of 10000 from INBOX".
fn with_progress(status: String, progress: &super::progress::Progress) -> String {
    match progress.status_text() {
        Some(p) => format!("{status}; {p}"),
        None => status,
    }
}

fn stale_status(stale: &[Stale]) -> String {
    let parts: Vec<String> = stale
        .iter()
        .map(|s| {
            format!("{} silent for {}", s.name, humantime::format_duration(Duration::from_secs(s.silent_for.as_secs())))
        })
        .collect();
    format!("stuck: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_is_stale_after_the_interval_unless_busy_within_a_limit() {
        let liveness = Liveness::new(Some(Duration::from_secs(2)));
        let a = liveness.register("a");
        let b = liveness.register_source("b");
        let now = Instant::now();
        assert!(liveness.stale(now, Duration::from_secs(2)).is_empty());
        let later = now + Duration::from_secs(3);
        let stale: Vec<String> = liveness.stale(later, Duration::from_secs(2)).into_iter().map(|s| s.name).collect();
        assert_eq!(stale, ["a", "b"]);
        a.busy_for(Duration::from_secs(10));
        b.beat();
        assert!(
            liveness
                .stale(Instant::now() + Duration::from_secs(5), Duration::from_secs(2))
                .iter()
                .all(|s| s.name != "a")
        );
        assert!(
            liveness
                .stale(Instant::now() + Duration::from_secs(11), Duration::from_secs(2))
                .iter()
                .any(|s| s.name == "a")
        );
    }

    #[test]
    fn the_status_shows_a_sync_in_progress() {
        // Issue 14: a long first sync says how far it is in STATUS=.
        let liveness = Liveness::new(None);
        let progress = super::super::progress::Progress::default();
        assert_eq!(running_status(&liveness, &progress), "running");
        progress.start("imap 'main'", "INBOX", 10_000);
        progress.stored("imap 'main'", 1200, 0);
        assert_eq!(running_status(&liveness, &progress), "running; stored 1200 of 10000 from INBOX");
        progress.finish("imap 'main'");
        assert_eq!(running_status(&liveness, &progress), "running");
    }

    #[test]
    fn readiness_waits_for_every_source_and_shows_the_last_error() {
        let liveness = Liveness::new(None);
        let _sender = liveness.register("sender");
        let imap = liveness.register_source("imap 'main'");
        let maildir = liveness.register_source("maildir 'local'");
        imap.polled(Err("login refused".into()));
        assert_eq!(
            waiting_status(&liveness.waiting_for_first_poll()),
            "waiting for the first poll of imap 'main': login refused; maildir 'local'"
        );
        maildir.polled(Ok(()));
        imap.polled(Ok(()));
        assert!(liveness.waiting_for_first_poll().is_empty());
        assert_eq!(running_status(&liveness, &Default::default()), "running");
        imap.polled(Err("connection reset".into()));
        assert_eq!(running_status(&liveness, &Default::default()), "running; retrying imap 'main': connection reset");
        assert!(liveness.waiting_for_first_poll().is_empty(), "once polled, a later error does not unready");
    }

    #[tokio::test]
    async fn a_sleeping_loop_keeps_beating_and_a_plain_sleep_does_not() {
        let interval = Duration::from_millis(200);
        let liveness = Liveness::new(Some(interval));
        let beating = liveness.register("beating");
        let silent = liveness.register("silent");
        let sleeping = tokio::spawn(async move { beating.sleep(Duration::from_secs(60)).await });
        tokio::time::sleep(Duration::from_millis(700)).await;
        let stale: Vec<String> = liveness.stale(Instant::now(), interval).into_iter().map(|s| s.name).collect();
        assert_eq!(stale, ["silent"]);
        sleeping.abort();
        drop(silent);
    }
}
