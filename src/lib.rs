//! liaisond runs the IAB's liaison-coordination mailbox: it fetches every incoming message
//! (IMAP, Maildir or an MTA pipe), stores it exactly once in SQLite with its raw bytes, and
//! runs it through a pure pipeline that understands, classifies and routes liaison statements.
//!
//! See `ARCHITECTURE.md` for the map. In short:
//! - [`pipeline`] and [`cursor`] are the pure core: data in, decisions out, no I/O;
//! - [`store`] is the only module that touches SQLite;
//! - [`imap`] is the only module that speaks IMAP; [`maildir`] reads Maildirs;
//! - [`ingest`] is the one path every message takes (store, then process, then record);
//! - [`runner::run`] is the daemon's single entry point, used by `main` and the tests;
//! - [`config`] turns the TOML file into a validated [`config::Config`];
//! - [`service`] talks to systemd (readiness, status, watchdog) and knows which loops live;
//! - [`doctor`] checks an installation (`liaisond doctor`);
//! - [`cli`] is the command line.

pub mod analyse;
pub mod classify;
pub mod cli;
pub mod config;
pub mod content;
pub mod cursor;
pub mod doctor;
pub mod extract;
pub mod follow;
pub mod imap;
pub mod ingest;
pub mod isolate;
pub mod maildir;
pub mod pipeline;
pub mod relationships;
pub mod respond;
pub mod route;
pub mod runner;
pub mod schedule;
pub mod send;
pub mod service;
pub mod store;
pub mod template;
pub mod tls;
pub mod understand;

pub use runner::{RunOptions, RunReport, run};
