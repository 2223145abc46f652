//! The Maildir source: for the demo, and for running on the mail host itself.
//!
//! Files in `new/` and `cur/` are read in name order. A file is known by its unique name (the
//! part before `:`), so a message is stored once however often it is seen or renamed. Once a
//! file from `new/` is committed it is renamed to `cur/<name>:2,` (the Maildir convention for
//! "seen by a client"), or left in place when `after_commit = "leave"` (a read-only Maildir).
//! Files in `tmp/` are still being written by the delivery agent and are never read.

use std::io::Read;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use liaisond_core::parse::header_section;
use liaisond_model::{Origin, SourceKind};
use liaisond_store::StoreError;

use crate::config::{MaildirAfter, MaildirConfig};
use crate::ingest::Ingestor;
use crate::sources::SourceReport;

#[derive(Debug, thiserror::Error)]
pub enum MaildirError {
    #[error("Maildir {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MaildirError {
    pub fn is_transient(&self) -> bool {
        match self {
            MaildirError::Io { .. } => true,
            MaildirError::Store(e) => e.is_transient(),
        }
    }
}

pub struct MaildirSource {
    cfg: MaildirConfig,
    ingestor: Ingestor,
}

impl MaildirSource {
    pub fn new(cfg: MaildirConfig, ingestor: Ingestor) -> MaildirSource {
        MaildirSource { cfg, ingestor }
    }

    /// Scans until shutdown (or once).
    pub async fn run(self, shutdown: CancellationToken, once: bool) -> Result<SourceReport, MaildirError> {
        let mut report = SourceReport::default();
        loop {
            let result = self.scan(&shutdown, &mut report).await;
            let mailbox = self.cfg.path.display().to_string();
            let name = self.cfg.name.clone();
            let heartbeat = self.ingestor.heartbeat();
            let recorded = match &result {
                Ok(()) => {
                    heartbeat.polled(Ok(()));
                    self.ingestor.db().call(move |s| s.poll_ok(&name, &mailbox, false)).await
                }
                Err(e) => {
                    tracing::warn!(source = self.cfg.name, mailbox, error = %e, "Maildir scan failed");
                    let text = e.to_string();
                    heartbeat.polled(Err(text.clone()));
                    self.ingestor.db().call(move |s| s.poll_error(&name, &mailbox, &text)).await
                }
            };
            // Only bookkeeping failed (a busy database): the next scan records it again.
            if let Err(e) = recorded {
                tracing::warn!(source = self.cfg.name, error = %e, "cannot record the scan's result");
            }
            if once {
                return result.map(|()| report);
            }
            tokio::select! {
                _ = heartbeat.sleep(self.cfg.poll_interval) => {}
                _ = shutdown.cancelled() => return Ok(report),
            }
        }
    }

    async fn scan(&self, shutdown: &CancellationToken, report: &mut SourceReport) -> Result<(), MaildirError> {
        let progress = self.ingestor.progress().clone();
        let label = format!("maildir '{}'", self.cfg.name);
        progress.start(&label, &self.cfg.path.display().to_string(), 0);
        let result = self.scan_files(shutdown, report, &label).await;
        progress.finish(&label);
        result
    }

    async fn scan_files(
        &self,
        shutdown: &CancellationToken,
        report: &mut SourceReport,
        label: &str,
    ) -> Result<(), MaildirError> {
        let progress = self.ingestor.progress();
        let mut first_error = None;
        for sub in ["new", "cur"] {
            let dir = self.cfg.path.join(sub);
            let mut names = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.'))
                    .collect::<Vec<_>>(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && sub == "cur" => continue,
                Err(source) => return Err(MaildirError::Io { path: dir, source }),
            };
            names.sort();
            progress.found(label, names.len());
            for name in names {
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                // Progress for the watchdog: a large Maildir of files already stored (left
                // in place) takes a while to scan without storing anything.
                self.ingestor.heartbeat().beat();
                let outcome = self.one(&dir, &name, sub == "new", report).await;
                progress.stored(label, 1, 0);
                match outcome {
                    Ok(()) => {}
                    // Without the database nothing can be stored: stop and retry later.
                    Err(e @ MaildirError::Store(_)) => return Err(e),
                    // One unreadable or unmovable file must not hold up the others; it is
                    // tried again at the next scan.
                    Err(e) => {
                        tracing::warn!(source = self.cfg.name, error = %e, "skipping a Maildir file for now");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn one(&self, dir: &Path, name: &str, in_new: bool, report: &mut SourceReport) -> Result<(), MaildirError> {
        let key = name.split(':').next().unwrap_or(name).to_string();
        let path = dir.join(name);
        let source = self.cfg.name.clone();
        let k = key.clone();
        let known = self.ingestor.db().call(move |s| s.maildir_file_known(&source, &k)).await?;
        if known {
            report.already_known += 1;
        } else {
            let limit = self.ingestor.limits().max_message_size;
            let origin = Origin {
                source: self.cfg.name.clone(),
                kind: SourceKind::Maildir,
                mailbox: Some(self.cfg.path.display().to_string()),
                uidvalidity: None,
                uid: None,
                file_key: Some(key),
                post_action_pending: false,
            };
            let p = path.clone();
            let read = tokio::task::spawn_blocking(move || read_limited(&p, limit)).await;
            let (raw, size) = match read {
                Ok(Ok(r)) => r,
                // Vanished between listing and reading (another reader moved it): next scan.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Ok(Err(source)) => return Err(MaildirError::Io { path, source }),
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            };
            let result = if size > limit {
                let header = header_section(&raw, raw.len()).to_vec();
                self.ingestor.ingest_oversized(header, size, origin, None).await?
            } else {
                self.ingestor.ingest(raw, origin, None).await?
            };
            if result.accepted.new {
                report.stored += 1;
            } else {
                report.already_known += 1;
            }
        }
        if in_new && self.cfg.after_commit == MaildirAfter::Cur {
            let cur = self.cfg.path.join("cur");
            std::fs::create_dir_all(&cur).map_err(|source| MaildirError::Io { path: cur.clone(), source })?;
            let target = cur.join(format!("{name}:2,"));
            std::fs::rename(&path, &target).map_err(|source| MaildirError::Io { path, source })?;
        }
        Ok(())
    }
}

/// How much of an oversized file is read to find its header section.
const OVERSIZED_HEADER_READ: u64 = 1 << 20;

/// Reads the whole file when it is within `limit`, else only its first megabyte (enough for
/// the header section). Returns the bytes read and the file's size.
fn read_limited(path: &Path, limit: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let want = if size > limit { OVERSIZED_HEADER_READ } else { limit + 1 };
    let mut raw = Vec::with_capacity(size.min(want) as usize);
    file.take(want).read_to_end(&mut raw)?;
    // A file that grew after stat() is judged by what was read.
    let read = raw.len() as u64;
    Ok((raw, size.max(read)))
}
