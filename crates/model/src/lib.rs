//! liaisond's shared nouns, and nothing else: a message as it arrives (origin, bytes, hash,
//! cursor, outcome); a statement as read (purpose, fields, the reading and its attachments); how
//! a message was judged (class, verdict, what the history knows); the mail to send (drafts,
//! plans, what the planner is told); the rows the digest is written from; addresses as
//! compared; the located configuration error; the one timestamp format.
//!
//! Every other crate depends on this one and on nothing of each other's to speak about these
//! things, so the pure stages (`liaisond-core`) and the store (`liaisond-store`) never import
//! one another. See `ARCHITECTURE.md`.

pub mod address;
pub mod config_error;
pub mod message;
pub mod outgoing;
mod printable;
pub mod records;
pub mod statement;
pub mod time;
pub mod verdict;

pub use address::{address_domain, address_key, normalize_address};
pub use config_error::{ConfigError, Seg, key_error, syntax_error};
pub use message::{Arrival, Cursor, Origin, Outcome, SourceKind, Summary, sha256_hex};
pub use outgoing::{AckCounts, Draft, DraftKind, OutgoingContext, Plan};
pub use printable::{printable, printable_lines};
pub use records::{FollowRow, OutboxRow, QuarantinedRow};
pub use statement::{
    AttachmentRecord, MAX_BODY_BYTES, MAX_FIELD_BYTES, MAX_LIST_ITEMS, MAX_TITLE_BYTES, Purpose, Reading, Statement,
    clip_bytes,
};
pub use time::timestamp_text;
pub use verdict::{
    Action, CheckInAnswer, CheckInRequest, Class, Command, CommandResult, DatatrackerRecord, History, KnownStatement,
    NoHistory, Target, Verdict,
};
