//! What the operator commands share: their exit codes beyond success and failure, who is
//! running them, the dates they read, and how they write to a terminal or a pipe.

use std::io::IsTerminal;

/// Writes `value` as one line of JSON (the `--json` listings: one object per line).
pub fn json_line(out: &mut impl std::io::Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// sysexits(3) EX_USAGE: a value on the command line has the wrong form (a date, an address, a
/// purpose). clap's own parse errors (an unknown option, a missing argument, a choice not among
/// those listed) keep clap's exit status, 2.
pub const EX_USAGE: u8 = 64;
/// sysexits(3) EX_DATAERR: the statement or message named does not exist.
pub const EX_DATAERR: u8 = 65;

/// An operator command refused, with the exit code that says why.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Exit 64.
    #[error("{0}")]
    Usage(String),
    /// Exit 65.
    #[error("{0}")]
    NotFound(String),
}

impl Refused {
    pub fn code(&self) -> u8 {
        match self {
            Refused::Usage(_) => EX_USAGE,
            Refused::NotFound(_) => EX_DATAERR,
        }
    }
}

/// The exit code of a refusal anywhere in the error's chain.
pub fn refusal_code(e: &anyhow::Error) -> Option<u8> {
    e.chain().find_map(|c| c.downcast_ref::<Refused>()).map(Refused::code)
}

/// Whether the error is a write to a closed pipe (`liaisond status | head`): the reader has
/// what it wanted, so the command ends quietly with success. Rust ignores SIGPIPE, so the write
/// fails with EPIPE instead of killing the process.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            // serde_json keeps the io::Error inside and does not give it out as its source.
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

/// Who runs the command, for the history: `--by` when given, else the user who ran `sudo`,
/// else the Unix user name (`$USER`, then the password database), else the numeric uid.
pub fn operator(by: Option<&str>) -> String {
    if let Some(by) = by.map(str::trim).filter(|b| !b.is_empty()) {
        return by.to_string();
    }
    for var in ["SUDO_USER", "USER"] {
        if let Ok(name) = std::env::var(var)
            && !name.trim().is_empty()
        {
            return name.trim().to_string();
        }
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

/// The name of `uid` in the password database (getpwuid_r: getpwuid's static buffer is not
/// safe with other threads).
fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut buffer = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain old data; getpwuid_r fills it, pointing into `buffer`.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buffer.len()` is its true size.
    let rc = unsafe { libc::getpwuid_r(uid, &mut entry, buffer.as_mut_ptr().cast(), buffer.len(), &mut found) };
    if rc != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name is a NUL-terminated string inside `buffer`, alive here.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}

/// Today's date for deadlines and `--overdue`, in the configured `time_zone` (as the reminders
/// count days).
pub fn today(config: &crate::config::Config) -> jiff::civil::Date {
    jiff::Timestamp::now().to_zoned(config.follow.time_zone.clone()).date()
}

/// The UTC date of a time.
pub fn utc_date(t: jiff::Timestamp) -> jiff::civil::Date {
    t.to_zoned(jiff::tz::TimeZone::UTC).date()
}

/// A date given on the command line: exactly `YYYY-MM-DD`, and a real date.
pub fn parse_date(what: &str, text: &str) -> Result<jiff::civil::Date, Refused> {
    let t = text.trim();
    let shaped = t.len() == 10
        && t.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    let date = shaped.then(|| t.parse::<jiff::civil::Date>().ok()).flatten();
    date.ok_or_else(|| Refused::Usage(format!("{what}: `{text}` is not a date of the form YYYY-MM-DD")))
}

/// The date (UTC) of a stored time: RFC 3339, with any offset (an IMAP INTERNALDATE keeps the
/// server's). A time that does not parse keeps its first ten characters.
pub fn date_of(stored: &str) -> String {
    match stored.parse::<jiff::Timestamp>() {
        Ok(t) => utc_date(t).to_string(),
        Err(_) => stored.chars().take(10).collect(),
    }
}

/// Standard output for what the commands print, through [`Printable`].
pub fn stdout() -> Printable<std::io::StdoutLock<'static>> {
    Printable(std::io::stdout().lock())
}

/// A writer that lets no control character but the line feed through (a tab is a space), no
/// Unicode format character (U+202E and the like): the commands print what senders wrote
/// (titles, names, file names), which must not reach a terminal as escape sequences. Each
/// `write` is one formatted piece (`write!` writes whole `str`s); bytes that are not UTF-8
/// are shown as U+FFFD.
pub struct Printable<W: std::io::Write>(pub W);

impl<W: std::io::Write> std::io::Write for Printable<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(liaisond_model::printable_lines(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A progress bar on standard error, `of` steps long, its line ending in `msg` (the bar's
/// own placeholders allowed: `{per_sec}`, `{msg}`). One look for every command that shows one.
pub fn progress_bar(of: u64, msg: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(of);
    let style = indicatif::ProgressStyle::with_template(&format!("{{spinner}} [{{bar:30}}] {{pos}}/{{len}} {msg}"))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}

/// Whether standard output is a terminal (a person reading) rather than a pipe or a file.
pub fn to_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// The terminal's width in columns, when standard output is one.
pub fn terminal_width() -> Option<usize> {
    if !to_terminal() {
        return None;
    }
    // SAFETY: winsize is plain old data, and TIOCGWINSZ only fills it.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: a valid file descriptor and a pointer to a winsize, as TIOCGWINSZ expects.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then_some(size.ws_col as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict() {
        assert_eq!(parse_date("--since", "2026-11-03").expect("date").to_string(), "2026-11-03");
        for bad in ["2026-02-30", "2026-1-3", "03/11/2026", "2026-11-03T00:00:00Z", "", "tomorrow"] {
            let e = parse_date("--since", bad).expect_err(bad);
            assert_eq!(e.code(), EX_USAGE);
            assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
        }
    }

    #[test]
    fn today_and_stored_dates_are_utc() {
        let t: jiff::Timestamp = "2026-11-23T23:30:00-05:00".parse().expect("time");
        assert_eq!(utc_date(t).to_string(), "2026-11-24");
        assert_eq!(date_of("2026-11-23T23:30:00-05:00"), "2026-11-24");
        assert_eq!(date_of("2026-11-23T10:00:00.000Z"), "2026-11-23");
        assert_eq!(date_of("garbage-in"), "garbage-in");
    }

    #[test]
    fn the_operator_is_named() {
        assert_eq!(operator(Some(" ana ")), "ana");
        assert!(!operator(None).is_empty());
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        assert!(user_name(uid).is_some(), "the test user has a passwd entry");
    }

    #[test]
    fn broken_pipes_are_recognised_through_context_and_serde() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(io).context("writing")));
        let json = serde_json::to_writer(Closed, &serde_json::json!({"a": 1})).expect_err("closed");
        assert!(is_broken_pipe(&anyhow::Error::new(json)));
        assert!(!is_broken_pipe(&anyhow::anyhow!("something else")));
    }

    struct Closed;
    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
