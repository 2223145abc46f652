//! `liaisond backup`: a consistent copy of the database while the daemon runs.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::{EX_OK, open_existing, output};
use crate::config::Config;

pub(super) fn backup(config: Config, dest: &Path) -> anyhow::Result<u8> {
    if dest.exists() {
        return Err(output::Refused::Usage(format!("{} exists already; name a new file", dest.display())).into());
    }
    let store = open_existing(&config)?;
    store.backup_into(dest).with_context(|| format!("writing the backup {}", dest.display()))?;
    drop(store);
    let health = liaisond_store::health::inspect(dest, config.busy_timeout)
        .with_context(|| format!("the backup {} was written but cannot be opened", dest.display()))?;
    if health.quick_check != ["ok"] {
        anyhow::bail!("the backup {} fails its check: {}", dest.display(), health.quick_check.join("; "));
    }
    let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    writeln!(
        std::io::stdout(),
        "backup written: {} ({size} bytes, schema {}, {} messages, quick_check ok)",
        dest.display(),
        health.schema_version,
        health.messages
    )?;
    Ok(EX_OK)
}
