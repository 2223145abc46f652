//! `liaisond relationships managers|check-in`: the yearly check-in with the liaison managers.
//! The relationships data records each relationship's `last_contact`; a check-in recorded
//! here (in the database, with who recorded it) counts as well, and the digest lists the
//! managers not heard from within `[digest] check_in_after`.

use std::io::Write;

use clap::Subcommand;

use super::output::{self, Refused, operator, parse_date, today};
use super::{ConfigArg, EX_OK, open_existing, with_config};
use crate::config::Config;
use liaisond_model::normalize_address;

#[derive(Debug, Subcommand)]
pub(super) enum RelationshipsCommand {
    /// List the liaison managers with their last contact (the relationships data's
    /// `last_contact` or a recorded check-in, whichever is later) and whether a check-in is due.
    Managers {
        #[command(flatten)]
        config: ConfigArg,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Record that the coordinators were in contact with a liaison manager.
    CheckIn {
        #[command(flatten)]
        config: ConfigArg,
        /// The manager's address, as in the relationships data.
        address: String,
        /// When (YYYY-MM-DD; default: today).
        #[arg(long, value_name = "DATE")]
        date: Option<String>,
        /// A note for the history.
        #[arg(long)]
        note: Option<String>,
        /// Who records it (default: the user who ran sudo, else the Unix user).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

pub(super) fn run(command: RelationshipsCommand) -> u8 {
    match command {
        RelationshipsCommand::Managers { config, json } => with_config(&config.config, |c| managers(c, json)),
        RelationshipsCommand::CheckIn { config, address, date, note, by } => with_config(&config.config, |c| {
            check_in(c, &address, date.as_deref(), note.as_deref(), &operator(by.as_deref()))
        }),
    }
}

fn managers(config: Config, json: bool) -> anyhow::Result<u8> {
    let rel = config.load_relationships()?;
    let recorded = super::open_read_only(&config)?.check_ins()?;
    let all = liaisond_core::follow::check_ins(&rel, &recorded, today(&config), config.follow.check_in_after);
    let mut out = output::stdout();
    for c in &all {
        if json {
            output::json_line(&mut out, c)?;
        } else {
            writeln!(
                out,
                "{:<32}  {:<10}  {:<3}  {}",
                c.email,
                c.last_contact.map_or_else(|| "never".into(), |d| d.to_string()),
                if c.check_in_due { "DUE" } else { "ok" },
                c.relationships.join("; ")
            )?;
        }
    }
    Ok(EX_OK)
}

fn check_in(config: Config, address: &str, date: Option<&str>, note: Option<&str>, by: &str) -> anyhow::Result<u8> {
    let rel = config.load_relationships()?;
    let manager =
        normalize_address(address).ok_or_else(|| Refused::Usage(format!("`{address}` is not an e-mail address")))?;
    if !rel.managers().iter().any(|m| m.email == manager) {
        return Err(Refused::NotFound(format!(
            "{manager} is not a liaison manager in {} (see `liaisond relationships managers`)",
            rel.path.display()
        ))
        .into());
    }
    let on = match date {
        Some(d) => parse_date("--date", d)?,
        None => today(&config),
    };
    let note = match note {
        Some(n) => format!("{n} (recorded by {by})"),
        None => format!("recorded by {by}"),
    };
    open_existing(&config)?.check_in(&manager, &on.to_string(), Some(&note))?;
    writeln!(std::io::stdout(), "check-in with {manager} on {on} recorded")?;
    Ok(EX_OK)
}
