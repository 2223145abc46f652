//! `liaisond route --dry-run`: how each recorded statement would be judged and routed now
//! (after the relationships data changed), next to how it was; nothing is sent.

use std::io::Write;

use liaisond_core::judge;
use liaisond_core::parse::Parsed;
use liaisond_core::read::Analysis;

use super::{EX_OK, open_read_only, output};
use crate::config::Config;

pub(super) fn route(config: Config, dry_run: bool, json: bool) -> anyhow::Result<u8> {
    if !dry_run {
        let why = "only `route --dry-run` exists: routing is decided when a message is recorded";
        return Err(output::Refused::Usage(why.into()).into());
    }
    let relationships = config.load_relationships()?;
    let identity = config.identity(&relationships);
    let store = open_read_only(&config)?;
    let mut out = output::stdout();
    let mut changed = 0;
    let statements = store.statements()?;
    for st in &statements {
        // Judged as the daemon would judge it now, on what was read from it then (attachments
        // are not extracted again), against the statements recorded before it.
        let parsed = Parsed::new(&store.raw_message(st.message)?);
        let reading = store.reading(st.message)?.unwrap_or_default();
        let analysis = Analysis::from_reading(&parsed, reading);
        let history = store.history_before(st.message);
        let now = judge::judge(&parsed.headers, &analysis, &relationships, &identity, &history).route;
        let same = now.to == st.route_to;
        if !same {
            changed += 1;
        }
        if json {
            let line = serde_json::json!({
                "tracking_id": st.tracking_id,
                "then": { "to": st.route_to, "reason": st.route_reason },
                "now": now,
                "changed": !same,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(
                out,
                "{}  {}  to {}  ({}){}",
                st.tracking_id,
                if same { "same   " } else { "CHANGED" },
                now.to.join(", "),
                now.reason,
                if same { String::new() } else { format!("; was to {}", st.route_to.join(", ")) }
            )?;
        }
    }
    if !json {
        writeln!(
            out,
            "{} statement(s), {changed} would be routed differently now (nothing was sent)",
            statements.len()
        )?;
    }
    Ok(EX_OK)
}
