//! The standard-input source: one message an MTA pipes to `liaisond ingest`.

use std::io::Read;

use liaisond_core::parse::header_section;
use liaisond_model::Origin;
use liaisond_store::StoreError;

use crate::ingest::{Ingested, Ingestor};

/// One message read from standard input.
#[derive(Debug)]
pub struct Piped {
    /// The whole message, or only its first `limit + 1` bytes when it is oversized.
    raw: Vec<u8>,
    /// Its size in bytes (counted to the end even when not kept).
    size: u64,
    oversized: bool,
}

/// Reads one message of at most `limit` bytes from `input`; a larger one is counted to its end
/// but only its beginning is kept (its header section is stored, and it is quarantined).
pub fn read(input: &mut impl Read, limit: u64) -> std::io::Result<Piped> {
    let mut raw = Vec::new();
    input.take(limit + 1).read_to_end(&mut raw)?;
    let oversized = raw.len() as u64 > limit;
    let size = if oversized {
        // Count the rest without keeping it, so the record says how large it was.
        raw.len() as u64 + std::io::copy(input, &mut std::io::sink()).unwrap_or(0)
    } else {
        raw.len() as u64
    };
    Ok(Piped { raw, size, oversized })
}

/// Stores (and, with a reader, processes) the piped message.
pub async fn ingest(ingestor: &Ingestor, piped: Piped) -> Result<Ingested, StoreError> {
    if piped.oversized {
        let header = header_section(&piped.raw, 1 << 20).to_vec();
        ingestor.ingest_oversized(header, piped.size, Origin::stdin(), None).await
    } else {
        ingestor.ingest(piped.raw, Origin::stdin(), None).await
    }
}
