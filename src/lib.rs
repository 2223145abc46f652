//! liaisond runs the IAB's liaison-coordination mailbox: it fetches every incoming message
//! (IMAP, Maildir or an MTA pipe), stores it exactly once in SQLite with its raw bytes, reads,
//! judges and routes it with the pure stages of `liaisond-core`, and sends what they plan.
//!
//! This crate is the I/O shell around the libraries (see `ARCHITECTURE.md` for the map):
//! - [`config`] turns the TOML file into a validated [`config::Config`], once;
//! - [`sources`] fetch messages: IMAP (with its cursor), Maildir, standard input;
//! - [`ingest`] is the one path every message takes: parse once, store, read, judge, record;
//! - [`reader`] holds what a message is read and judged with, swappable on reload;
//! - [`isolate`] runs attachment extraction in confined worker processes;
//! - [`db`] shares the store between async tasks;
//! - [`outbox`] sends what was planned (SMTP, or a directory);
//! - [`daemon`] is the service: [`daemon::run`] is its single entry point, used by `main` and
//!   the tests, and the only place that spawns tasks;
//! - [`cli`] is the command line, one file per command group.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod db;
pub mod ingest;
pub mod isolate;
pub mod metrics;
pub mod outbox;
pub mod reader;
pub mod sources;
pub mod tls;

pub use daemon::{RunOptions, RunReport, run};
