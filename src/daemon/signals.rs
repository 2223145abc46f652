//! The daemon's signals: SIGTERM (systemd stop) and SIGINT (Ctrl-C) ask for a graceful stop,
//! and a second one exits at once; SIGHUP (`systemctl reload`) reloads the relationships data
//! and the templates.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind, name| signal(kind).with_context(|| format!("cannot install the {name} handler"));
        Ok(Signals {
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
            hup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    pub async fn serve(mut self, shutdown: CancellationToken, reload: Arc<Notify>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => {
                    tracing::info!("SIGTERM: stopping after the message in hand");
                    break;
                }
                _ = self.int.recv() => {
                    tracing::info!("SIGINT: stopping after the message in hand");
                    break;
                }
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP: reloading the relationships data and the templates");
                    reload.notify_one();
                }
            }
        }
        shutdown.cancel();
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    }
}
