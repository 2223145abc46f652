//! `liaisond relationships managers|check-in|diff`: the yearly check-in with the liaison
//! managers, and the relationships data against the datatracker's record.
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
    /// Compare the relationships data with the datatracker's, saved as JSON from its API:
    /// `/api/v1/group/group/?type=sdo&limit=0` (the SDO groups) and
    /// `/api/v1/group/role/?name=liaiman&limit=0` (the liaison managers); add the lists of
    /// `?name=ad` and `?name=chair` roles (and of `?type=wg` groups) to find managers who are
    /// also an AD or a chair without a backup. Prints what differs; changes nothing.
    Diff {
        #[command(flatten)]
        config: ConfigArg,
        /// The saved API answers (JSON lists).
        #[arg(required = true, value_name = "FILE.json")]
        files: Vec<std::path::PathBuf>,
    },
    /// Print the experts data (`config/ietf-experts.toml`: each IETF group's chairs and
    /// responsible AD, named in notifications) made from saved datatracker API answers: the
    /// groups (`/api/v1/group/group/?type__in=wg,rg,area`), the chair and AD roles
    /// (`/api/v1/group/role/?name__in=chair,ad`) and, for names, the people
    /// (`/api/v1/person/person/`). `scripts/ietf-experts` fetches them and runs this.
    Experts {
        /// The saved API answers (JSON lists).
        #[arg(required = true, value_name = "FILE.json")]
        files: Vec<std::path::PathBuf>,
        /// Where they came from, for the file's head (default: the file names).
        #[arg(long, value_name = "TEXT")]
        source: Option<String>,
    },
}

/// A saved API answer larger than this is refused (the whole role list is a few MB).
const MAX_EXPORT_BYTES: u64 = 64 << 20;

pub(super) fn run(command: RelationshipsCommand) -> u8 {
    match command {
        RelationshipsCommand::Managers { config, json } => with_config(&config.config, |c| managers(c, json)),
        RelationshipsCommand::CheckIn { config, address, date, note, by } => with_config(&config.config, |c| {
            check_in(c, &address, date.as_deref(), note.as_deref(), &operator(by.as_deref()))
        }),
        RelationshipsCommand::Diff { config, files } => with_config(&config.config, |c| diff(c, &files)),
        RelationshipsCommand::Experts { files, source } => super::exit_code(experts(&files, source.as_deref()), true),
    }
}

/// The saved API answers in `files`, read into one export (each file size-checked).
fn read_export(files: &[std::path::PathBuf]) -> anyhow::Result<liaisond_core::datatracker::Export> {
    let mut export = liaisond_core::datatracker::Export::default();
    for file in files {
        let size = std::fs::metadata(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?.len();
        if size > MAX_EXPORT_BYTES {
            return Err(
                Refused::Usage(format!("{}: {size} bytes, more than a saved API answer", file.display())).into()
            );
        }
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        export.add_list(&text).map_err(|e| Refused::Usage(format!("{}: {e}", file.display())))?;
    }
    Ok(export)
}

fn experts(files: &[std::path::PathBuf], source: Option<&str>) -> anyhow::Result<u8> {
    let export = read_export(files)?;
    let names = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
    let text = liaisond_core::experts::toml_from_export(&export, source.unwrap_or(&names));
    let mut out = output::stdout();
    out.write_all(text.as_bytes())?;
    Ok(EX_OK)
}

fn diff(config: Config, files: &[std::path::PathBuf]) -> anyhow::Result<u8> {
    use liaisond_core::datatracker::diff;
    let rel = config.load_relationships()?;
    let export = read_export(files)?;
    let d = diff(&rel, &export);
    let mut out = output::stdout();
    writeln!(
        out,
        "{} against {} group(s) and {} role(s) of the datatracker:",
        rel.path.display(),
        export.groups.len(),
        export.roles.len()
    )?;
    let section = |out: &mut dyn Write, title: &str, lines: Vec<String>| -> std::io::Result<()> {
        writeln!(out, "\n{title}:")?;
        if lines.is_empty() {
            writeln!(out, "  none")?;
        }
        for line in lines {
            writeln!(out, "  {line}")?;
        }
        Ok(())
    };
    section(
        &mut out,
        "Bodies the datatracker has and the file does not (active SDO groups)",
        d.unknown_bodies.iter().map(|(a, n)| format!("{a:<24} {n}")).collect(),
    )?;
    section(
        &mut out,
        "Liaison managers the datatracker has and the file does not",
        d.managers_added.iter().map(|(a, m)| format!("{a:<24} {m}")).collect(),
    )?;
    section(
        &mut out,
        "Liaison managers the file has and the datatracker does not",
        d.managers_removed.iter().map(|(a, m)| format!("{a:<24} {m}")).collect(),
    )?;
    section(
        &mut out,
        "Organisations with no liaison manager, in the file or the datatracker",
        d.without_manager.clone(),
    )?;
    if d.checked_busy {
        section(
            &mut out,
            "Managers who are also an AD or a WG chair, without a backup",
            d.busy_without_backup.iter().map(|(a, m, r)| format!("{a:<24} {m} ({r})")).collect(),
        )?;
    } else {
        writeln!(
            out,
            "\nManagers who are also an AD or a WG chair: not checked (no `ad` or `chair` role among the files)."
        )?;
    }
    Ok(EX_OK)
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
