//! How long one reading may go on. The core reads no clock (ARCHITECTURE.md): the caller says
//! whether the time is up, and the reading's loops ask it every so many steps, so that a
//! reading past the stage limit stops and returns what it found instead of keeping a core busy
//! after the daemon has given up on it.

use std::cell::Cell;

/// Steps of work (lines, names, addresses) between two questions to the caller. Asking is a
/// clock read (tens of nanoseconds); a step is a regular expression over a line (a microsecond
/// or more), so asking every 256 steps costs nothing measurable and answers within a
/// millisecond or so.
pub const CHECK_EVERY: u32 = 256;

/// The warning a reading that ran out of time carries (shown to the coordinators).
pub const STOPPED: &str = "reading stopped at the time limit; the fields found before it are kept";

/// The time one reading may take, as the caller's answer to "is it over?".
pub struct Budget<'a> {
    /// `None`: no limit (`liaisond parse`, tests).
    over: Option<&'a dyn Fn() -> bool>,
    /// Steps counted since the start; the caller is asked when it is a multiple of
    /// [`CHECK_EVERY`].
    steps: Cell<u32>,
    /// Once the caller said the time is up it stays up: later checks need not ask.
    spent: Cell<bool>,
}

impl Budget<'static> {
    /// No limit.
    pub fn unlimited() -> Budget<'static> {
        Budget { over: None, steps: Cell::new(0), spent: Cell::new(false) }
    }
}

impl<'a> Budget<'a> {
    /// Until `over` says the time is up (it reads the caller's clock).
    pub fn until(over: &'a dyn Fn() -> bool) -> Budget<'a> {
        Budget { over: Some(over), steps: Cell::new(0), spent: Cell::new(false) }
    }

    /// Counts one step of work; whether the reading must stop. The first step asks, then
    /// every [`CHECK_EVERY`]th.
    pub fn step(&self) -> bool {
        let n = self.steps.get();
        self.steps.set(n.wrapping_add(1));
        if n.is_multiple_of(CHECK_EVERY) { self.check() } else { self.spent.get() }
    }

    /// Whether the reading must stop, asking now: before a stage that reads a whole text.
    pub fn check(&self) -> bool {
        if !self.spent.get() && self.over.is_some_and(|over| over()) {
            self.spent.set(true);
        }
        self.spent.get()
    }

    /// Whether a check found the time up (asks nothing): the reading then says it stopped.
    pub fn ran_out(&self) -> bool {
        self.spent.get()
    }
}

impl std::fmt::Debug for Budget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("limited", &self.over.is_some())
            .field("steps", &self.steps.get())
            .field("spent", &self.spent.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_is_asked_at_the_first_step_then_every_so_often() {
        let asked = Cell::new(0);
        let over = || {
            asked.set(asked.get() + 1);
            false
        };
        let budget = Budget::until(&over);
        for _ in 0..CHECK_EVERY * 3 {
            assert!(!budget.step());
        }
        assert_eq!(asked.get(), 3);
        assert!(!budget.check());
        assert_eq!(asked.get(), 4);
        assert!(!budget.ran_out());
    }

    #[test]
    fn once_over_it_stays_over_without_asking_again() {
        let asked = Cell::new(0);
        let over = || {
            asked.set(asked.get() + 1);
            true
        };
        let budget = Budget::until(&over);
        assert!(budget.step());
        assert!(budget.step());
        assert!(budget.check());
        assert!(budget.ran_out());
        assert_eq!(asked.get(), 1);
        let unlimited = Budget::unlimited();
        assert!(!unlimited.step() && !unlimited.check() && !unlimited.ran_out());
    }
}
