//! liaisond's state as OpenMetrics text: what `liaisond status --format openmetrics` prints
//! and what the daemon writes to `[metrics] textfile` for node_exporter's textfile collector.
//!
//! Every family is a gauge (the counts are read from the database, not counted in memory), so
//! that the same text is valid OpenMetrics and valid Prometheus text format (which the
//! textfile collector parses, and where `# EOF` is a comment).

use std::fmt::Write;

use liaisond_store::StatusReport;

/// Counts by state as samples with a `state` label.
fn by_state(counts: &[(String, i64)]) -> Vec<(Vec<(&str, &str)>, f64)> {
    counts.iter().map(|(state, n)| (vec![("state", state.as_str())], *n as f64)).collect()
}

/// The text of `status`, from a daemon that is (or is not) running.
pub fn render(status: &StatusReport, daemon_running: bool) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: &[(Vec<(&str, &str)>, f64)]| {
        // A family with no sample (no message yet) is left out: not every parser takes one.
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# TYPE liaisond_{name} gauge");
        let _ = writeln!(out, "# HELP liaisond_{name} {help}");
        for (labels, value) in samples {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
            let _ = writeln!(out, "liaisond_{name}{labels} {value}");
        }
    };
    family(
        "daemon_running",
        "Whether a daemon holds the database's instance lock.",
        &[(vec![], f64::from(u8::from(daemon_running)))],
    );
    family("schema_version", "The database's schema version.", &[(vec![], status.schema_version as f64)]);
    let messages: Vec<(Vec<(&str, &str)>, f64)> = status
        .by_state_and_class
        .iter()
        .map(|(state, class, n)| {
            (vec![("state", state.as_str()), ("class", class.as_deref().unwrap_or("none"))], *n as f64)
        })
        .collect();
    family("messages", "Stored messages by state and class.", &messages);
    family("statements", "Statements by state.", &by_state(&status.statements));
    family(
        "statements_overdue",
        "Open statements whose deadline has passed.",
        &[(vec![], status.statements_overdue as f64)],
    );
    family("outbox", "Outgoing mail by state.", &by_state(&status.outbox));
    family(
        "server_actions_owed",
        "Moves or flags on a mail server not done yet.",
        &[(vec![], status.pending_server_actions as f64)],
    );
    family(
        "acknowledgement_pauses",
        "Times acknowledgements were paused (alerts sent).",
        &[(vec![], status.ack_pauses as f64)],
    );
    let polls: Vec<(Vec<(&str, &str)>, f64)> = status
        .cursors
        .iter()
        .filter_map(|c| {
            let at = seconds(c.last_poll_ok.as_deref()?)?;
            Some((vec![("source", c.source.as_str()), ("mailbox", c.mailbox.as_str())], at))
        })
        .collect();
    family("last_poll_success_timestamp_seconds", "When each mailbox was last polled successfully.", &polls);
    let pending: Vec<(Vec<(&str, &str)>, f64)> = status
        .oldest_pending
        .iter()
        .filter_map(|(source, at)| Some((vec![("source", source.as_str())], seconds(at)?)))
        .collect();
    family(
        "oldest_pending_timestamp_seconds",
        "When the oldest message still waiting to be read arrived, per source.",
        &pending,
    );
    out.push_str("# EOF\n");
    out
}

/// Seconds since the epoch of an RFC 3339 time.
fn seconds(stored: &str) -> Option<f64> {
    stored.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond() as f64 / 1000.0)
}

/// A label value as OpenMetrics writes it: backslash, double quote and line feed escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(seconds("2026-12-07T10:00:00Z"), Some(1_796_637_600.0));
        assert_eq!(seconds("not a time"), None);
    }
}
