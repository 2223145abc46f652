//! `liaisond check-config`: the configuration as liaisond understood it.

use std::io::Write;

use super::EX_OK;
use crate::config::{AfterCommit, Config, MaildirAfter, TlsMode};

pub(super) fn check_config(config: Config) -> anyhow::Result<u8> {
    // Everything the daemon would refuse to start with is checked before "valid" is said
    // (issue 16: a bad template was found after it).
    let relationships = config.load_relationships()?;
    config.responder(&relationships)?;
    crate::daemon::transport(&config)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: valid", config.path.display())?;
    for exposed in config.exposed_secrets() {
        writeln!(out, "warning: {exposed}")?;
    }
    writeln!(
        out,
        "relationships: {} ({} organisations, {} IETF groups)",
        config.relationships.as_ref().map_or("built-in".to_string(), |p| p.display().to_string()),
        relationships.organizations().len(),
        relationships.ietf_groups().len()
    )?;
    writeln!(out, "database: {}", config.database.display())?;
    let l = &config.limits;
    writeln!(
        out,
        "limits: max_message_size={} bytes, fetch batch ≤ {} messages / {} bytes, stage_timeout={}",
        l.max_message_size,
        l.fetch_batch_messages,
        l.fetch_batch_size,
        humantime::format_duration(l.stage_timeout)
    )?;
    for i in &config.imap {
        let tls = match i.tls {
            TlsMode::Implicit => "implicit TLS",
            TlsMode::StartTls => "STARTTLS",
            TlsMode::None => "no TLS (loopback)",
        };
        let after = match &i.after_commit {
            AfterCommit::Move(f) => format!("move to {f}"),
            AfterCommit::Seen => "flag \\Seen".into(),
            AfterCommit::Leave => "leave".into(),
        };
        writeln!(
            out,
            "imap {}: {}@{}:{} ({tls}{}), mailbox {}, after commit: {after}, {}, password from {}",
            i.name,
            i.username,
            i.host,
            i.port,
            i.ca_file.as_ref().map(|p| format!(", CA {}", p.display())).unwrap_or_default(),
            i.mailbox,
            if i.idle {
                format!(
                    "IDLE when offered (refresh {}), else poll every {}",
                    humantime::format_duration(i.idle_refresh),
                    humantime::format_duration(i.poll_interval)
                )
            } else {
                format!("poll every {}", humantime::format_duration(i.poll_interval))
            },
            i.password_source
        )?;
    }
    for m in &config.maildir {
        let after = match m.after_commit {
            MaildirAfter::Cur => "move new/ to cur/",
            MaildirAfter::Leave => "leave files",
        };
        writeln!(
            out,
            "maildir {}: {}, after commit: {after}, poll every {}",
            m.name,
            m.path.display(),
            humantime::format_duration(m.poll_interval)
        )?;
    }
    if config.imap.is_empty() && config.maildir.is_empty() {
        writeln!(out, "no sources: only `liaisond ingest` will bring messages")?;
    }
    writeln!(
        out,
        "templates: {} (valid)",
        config.templates.as_ref().map_or("built-in".to_string(), |p| p.display().to_string())
    )?;
    match (&config.smtp, &config.outbox.directory) {
        (Some(s), _) => writeln!(
            out,
            "smtp: {}:{} ({}{}), {}, timeout {}",
            s.host,
            s.port,
            match s.tls {
                TlsMode::Implicit => "implicit TLS",
                TlsMode::StartTls => "STARTTLS",
                TlsMode::None => "no TLS (loopback)",
            },
            s.ca_file.as_ref().map(|p| format!(", CA {}", p.display())).unwrap_or_default(),
            match (&s.credentials, &s.password_source) {
                (Some((user, _)), Some(source)) => format!("AUTH as {user}, password from {source}"),
                _ => "no AUTH".to_string(),
            },
            humantime::format_duration(s.timeout)
        )?,
        (None, Some(dir)) => writeln!(out, "outgoing mail: written to {} (dry run, nothing is sent)", dir.display())?,
        (None, None) => writeln!(out, "outgoing mail: no [smtp] configured; it waits in the outbox")?,
    }
    let a = &config.acknowledgements;
    writeln!(
        out,
        "acknowledgements: {}; receipts to unverified senders {}; at most {} per address and {} per domain a day, \
         {} receipts an hour; none for mail older than {}",
        if a.enabled { "on" } else { "off" },
        if a.unverified_receipts { "on" } else { "off" },
        a.per_sender_per_day,
        a.per_domain_per_day,
        a.per_hour,
        humantime::format_duration(a.max_age)
    )?;
    let f = &config.follow;
    let ladder = &f.ladder;
    if f.reminders_enabled {
        writeln!(
            out,
            "reminders: {} days before the deadline, then overdue every {} day(s) for {} days, from {} ({})",
            ladder.days_before.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
            ladder.overdue_every,
            ladder.overdue_for,
            f.reminders_at.strftime("%H:%M"),
            f.time_zone_name
        )?;
    } else {
        writeln!(out, "reminders: off")?;
    }
    if f.digest_enabled && !f.digest.days.is_empty() {
        writeln!(
            out,
            "digest: {} at {} ({}), managers listed after {} days without contact",
            f.digest.days.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(", "),
            f.digest.send_at.strftime("%H:%M"),
            f.time_zone_name,
            f.check_in_after.as_secs() / 86_400
        )?;
    } else {
        writeln!(out, "digest: off")?;
    }
    Ok(EX_OK)
}
