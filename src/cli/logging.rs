//! Where log lines go: the journal (structured) under systemd, else standard error.

use std::io::IsTerminal;

/// Crates whose debug and trace output carries secrets or message bodies: async-imap logs
/// `LOGIN "user" "password"`, lettre `AUTH PLAIN <credentials>` and the whole message data.
/// Whatever `LIAISOND_LOG` asks, nothing below `info` is taken from them.
const SECRET_TARGETS: &[&str] = &["async_imap", "imap_proto", "lettre"];

/// Whether an event or span may be logged at all (see [`SECRET_TARGETS`]).
fn not_secret(meta: &tracing::Metadata<'_>) -> bool {
    // `Level` orders by verbosity: TRACE is the greatest.
    *meta.level() <= tracing::Level::INFO
        || !SECRET_TARGETS
            .iter()
            .any(|t| meta.target().strip_prefix(t).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")))
}

pub(super) fn init(default_level: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIAISOND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let registry = tracing_subscriber::registry().with(filter).with(tracing_subscriber::filter::filter_fn(not_secret));
    // Under systemd, stderr is connected to the journal: send the journal structured entries
    // instead (each field as a journal field, `F_TRACKING_ID=...`; tracing-journald prefixes
    // them with `F_` so that a field can never pass for one of the journal's own, such as
    // MESSAGE_ID, the catalog ID).
    if stderr_is_the_journal()
        && let Ok(journal) = tracing_journald::layer()
    {
        let journal = journal.with_syslog_identifier("liaisond".to_string()).with_priority_mappings(priorities());
        let _ = registry.with(journal).try_init();
        return;
    }
    // Logs go to stderr (in a terminal, a pipe, or the journal as plain lines); stdout is for
    // command output.
    let colour = std::io::stderr().is_terminal() && !no_color(std::env::var_os("NO_COLOR").as_deref());
    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colour);
    let _ = registry.with(stderr).try_init();
}

/// syslog(3) priorities as a Debian daemon's operator expects them: what happens to each
/// message at info (6), problems at warning (4) and error (3). tracing-journald's default puts
/// info at notice (5), so `journalctl -p notice` would list every message.
fn priorities() -> tracing_journald::PriorityMappings {
    use tracing_journald::Priority;
    tracing_journald::PriorityMappings {
        error: Priority::Error,
        warn: Priority::Warning,
        info: Priority::Informational,
        debug: Priority::Debug,
        trace: Priority::Debug,
    }
}

/// Whether `NO_COLOR` (no-color.org) asks for no colours: set and not empty.
fn no_color(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Whether stderr is the journal's stream: systemd.exec(5) says a service whose stderr goes to
/// the journal gets `$JOURNAL_STREAM` = `DEVICE:INODE` (decimal) of that stream, and that a
/// program should compare it with its own stderr (a child whose stderr was redirected
/// inherits the variable, but not the stream).
fn stderr_is_the_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(expected) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Some((dev, ino)) = expected.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd).metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_priorities_are_a_daemons() {
        // Regression (issue 16): every per-message line was notice (5).
        let p = priorities();
        let digit = |p: tracing_journald::Priority| p as u8 - b'0';
        assert_eq!([digit(p.error), digit(p.warn), digit(p.info), digit(p.debug)], [3, 4, 6, 7]);
    }

    #[test]
    fn no_color_is_honoured_when_set_and_not_empty() {
        assert!(no_color(Some(std::ffi::OsStr::new("1"))));
        assert!(!no_color(Some(std::ffi::OsStr::new(""))), "no-color.org: an empty value does not count");
        assert!(!no_color(None));
    }
}
