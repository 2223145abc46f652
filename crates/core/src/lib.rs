//! liaisond's pure stages: a message's bytes in, decisions out. Nothing here does I/O: no
//! runtime, no database, no file system, no environment, no clock, no randomness. "Now" and the
//! random part of a Message-ID are parameters; the attachments that need a third-party parser
//! are read through the caller's (the binary's confined workers). `clippy.toml` in this crate
//! forbids the calls (`#![deny(clippy::disallowed_methods)]` below), and `Cargo.toml` lists
//! none of the crates that would do them.
//!
//! The stages, in the order a message meets them:
//! 1. [`parse`]: mail-parser reads the message once ([`parse::Parsed`]: header facts, header
//!    fields, [`content`] with bodies and attachments);
//! 2. [`read`]: each attachment's text and the statement's fields ([`understand`]), with the
//!    [`relationships`] data naming organisations and groups;
//! 3. [`judge`]: the class ([`classify`], against the store's history), the route ([`route`],
//!    the sender verified by our own servers' [`authres`] fields), whether a follow-up
//!    answers its statement ([`follow::answers`]);
//! 4. [`respond`]: what to send about it (plan), and the bytes of each mail when it is sent
//!    (compose), from [`template`]s;
//! 5. [`follow`]: which reminder and digest are due, and their text.
//!
//! See `ARCHITECTURE.md` for how the binary wires them to the store and the network.

#![deny(clippy::disallowed_methods)]

pub mod authres;
pub mod budget;
pub mod classify;
pub mod command;
pub mod content;
pub mod datatracker;
pub mod direction;
pub mod experts;
pub mod follow;
pub mod judge;
pub mod parse;
pub mod read;
pub mod relationships;
pub mod respond;
pub mod route;
pub mod template;
pub mod tracking;
pub mod understand;
pub mod wrap;

#[cfg(test)]
mod testing;
