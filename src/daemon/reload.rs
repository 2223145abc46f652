//! Reloading on SIGHUP: the relationships data and the templates, read again and put in use for
//! every message that starts from then on; every other setting needs a restart.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::reader::{Reader, ReaderHandle};

/// How long a reload (reading the files, starting the reader) may take, for its heartbeat.
pub const RELOAD_LIMIT: Duration = Duration::from_secs(60);

/// What a reload loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The relationships file (or `built-in`).
    pub relationships: String,
    pub organisations: usize,
    pub ietf_groups: usize,
    /// The templates directory (or `built-in`).
    pub templates: String,
    /// The experts file (or `none`).
    pub experts: String,
}

/// Re-reads the configuration file of `running` for its `relationships`, `experts` and
/// `[templates]` settings, loads those files, and puts a reader built from them in `readers`. Every other
/// setting stays as `running` has it (they need a restart); when the file now differs from
/// `started_with` (its text when the daemon started) in other keys, a warning names them. On
/// any error (an unreadable configuration, relationships data or template, with file and line)
/// nothing changes.
pub fn reload(
    running: &Config,
    program: Option<PathBuf>,
    readers: &ReaderHandle,
    started_with: Option<&str>,
) -> anyhow::Result<Reloaded> {
    let text = std::fs::read_to_string(&running.path)
        .with_context(|| format!("cannot read the configuration file {}", running.path.display()))?;
    // Only what a reload applies is validated: a half-edited [[imap]] or [smtp] meant for the
    // next restart (or a password file being rotated) must not block new relationships data.
    let now = Config::from_str_store_only(&text, &running.path)?;
    if let Some(before) = started_with {
        let ignored = changed_keys_needing_restart(before, &text);
        if !ignored.is_empty() {
            tracing::warn!(
                config = %running.path.display(),
                keys = %ignored.join(", "),
                "the configuration file changed in settings a reload does not apply; restart liaisond for them"
            );
        }
    }
    let mut config = running.clone();
    config.relationships = now.relationships;
    config.experts = now.experts;
    config.templates = now.templates;
    let reader = Reader::from_config(&config, program)?;
    let loaded = Reloaded {
        relationships: config.relationships.as_ref().map_or("built-in".into(), |p| p.display().to_string()),
        organisations: reader.relationships().organizations().len(),
        ietf_groups: reader.relationships().ietf_groups().len(),
        templates: config.templates.as_ref().map_or("built-in".into(), |p| p.display().to_string()),
        experts: config.experts.as_ref().map_or("none".into(), |p| p.display().to_string()),
    };
    readers.replace(reader);
    Ok(loaded)
}

/// The top-level keys and tables in which two texts of the configuration file differ, other
/// than `relationships` and `[templates]` (which a reload applies). Text that does not parse
/// as TOML gives none (the reload then fails on it anyway, with the parse error).
fn changed_keys_needing_restart(before: &str, after: &str) -> Vec<String> {
    const RELOADED: [&str; 3] = ["relationships", "experts", "templates"];
    let (Ok(before), Ok(after)) = (before.parse::<toml::Table>(), after.parse::<toml::Table>()) else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !RELOADED.contains(&k.as_str()) && before.get(*k) != after.get(*k))
        .map(|k| k.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_the_settings_it_does_not_apply() {
        let before = "relationships = \"a.toml\"\n[store]\ndatabase = \"x.db\"\n[templates]\ndirectory = \"t\"\n";
        let after = "relationships = \"b.toml\"\nexperts = \"e.toml\"\n[store]\ndatabase = \"y.db\"\n[templates]\ndirectory = \"u\"\n[smtp]\nhost = \"h\"\n";
        assert_eq!(changed_keys_needing_restart(before, after), ["smtp", "store"]);
        assert!(changed_keys_needing_restart(before, before).is_empty());
    }
}
