//! `liaisond parse`: what liaisond reads in message files, and how it judges them, as JSON
//! lines; nothing is stored or sent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use liaisond_core::judge::Identity;
use liaisond_core::parse::Parsed;
use liaisond_core::relationships::Relationships;
use liaisond_model::NoHistory;

use super::{EX_CONFIG, EX_FAILURE, EX_OK};
use crate::config::Config;
use crate::isolate::{Extractor, Isolation};
use crate::reader::Reader;

pub(super) fn parse(config: Option<&Path>, messages: &[PathBuf]) -> u8 {
    let config = match config.map(Config::load).transpose() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("liaisond: invalid configuration: {e}");
            return EX_CONFIG;
        }
    };
    let relationships = match config.as_ref().map(Config::load_relationships).transpose() {
        Ok(r) => r.unwrap_or_else(Relationships::builtin),
        Err(e) => {
            eprintln!("liaisond: invalid configuration: {e}");
            return EX_CONFIG;
        }
    };
    let identity = match &config {
        Some(c) => c.identity(&relationships),
        None => Identity::from_relationships(&relationships),
    };
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("liaisond: cannot find my own executable for the extraction workers: {e}");
            return EX_FAILURE;
        }
    };
    // No time budget for a message's attachments here: each has its own limit in the worker.
    let reader = Reader::new(relationships, Extractor::new(Isolation::new(program)), Duration::MAX, identity);

    // One thread per core reads messages; the lines come out in the order of the arguments.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(messages.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (send, receive) = std::sync::mpsc::sync_channel::<(usize, Result<String, String>)>(threads * 4);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut code = EX_OK;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let send = send.clone();
            let (next, stop, reader) = (&next, &stop, &reader);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= messages.len() || stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let line = parse_one(&messages[i], reader);
                    if send.send((i, line)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(send);
        let mut out = super::output::stdout();
        let mut waiting = std::collections::BTreeMap::new();
        let mut written = 0;
        for (i, line) in receive.iter() {
            waiting.insert(i, line);
            while let Some(line) = waiting.remove(&written) {
                written += 1;
                match line {
                    Ok(line) => {
                        if writeln!(out, "{line}").is_err() {
                            // A closed pipe (`| head`): stop quietly.
                            stop.store(true, std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("liaisond: {e}");
                        code = EX_FAILURE;
                    }
                }
            }
        }
    });
    code
}

/// One message file as a JSON line: what was read, its classification and its route.
fn parse_one(path: &Path, reader: &Reader) -> Result<String, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let parsed = Parsed::new(&raw);
    let analysis = reader.read(&parsed);
    let judgement = reader.judgement(&parsed.headers, &analysis, &NoHistory);
    let mut value = serde_json::to_value(&analysis).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("file".into(), path.display().to_string().into());
        obj.insert("classification".into(), judgement.classification.class.as_str().into());
        obj.insert("classification_reason".into(), judgement.classification.reason.clone().into());
        obj.insert("no_ack".into(), judgement.classification.no_ack.clone().into());
        obj.insert(
            "route".into(),
            serde_json::to_value(&judgement.route).map_err(|e| format!("{}: {e}", path.display()))?,
        );
    }
    Ok(value.to_string())
}
