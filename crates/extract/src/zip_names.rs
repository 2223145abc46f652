//! Whether a zip archive names an entry, read from its central directory (APPNOTE.TXT §4.3.12,
//! §4.3.16) by this crate's own bounded code: sniffing a `.docx` runs in the daemon, where no
//! third-party archive parser may (`extract_text` runs those in the confined worker).
//!
//! Linear in the archive: one backward scan for the end-of-central-directory record (within
//! the last 64 KiB + 22 bytes, the largest comment), then one pass over the entries it counts.

const END_OF_DIRECTORY: &[u8] = b"PK\x05\x06";
const ZIP64_LOCATOR: &[u8] = b"PK\x06\x07";
const ZIP64_END_OF_DIRECTORY: &[u8] = b"PK\x06\x06";
const DIRECTORY_ENTRY: &[u8] = b"PK\x01\x02";
/// The fixed part of an end-of-central-directory record and of a directory entry.
const END_LEN: usize = 22;
const ENTRY_LEN: usize = 46;

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?).into())
}

fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?).into())
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Whether `archive`'s central directory has an entry named exactly `name`; false when the
/// bytes are not a readable zip archive.
pub(crate) fn has_entry(archive: &[u8], name: &[u8]) -> bool {
    directory(archive).is_some_and(|(start, entries)| entries_name(archive, start, entries, name))
}

/// Where the central directory starts, and how many entries it holds.
fn directory(b: &[u8]) -> Option<(usize, u64)> {
    let last = b.len().checked_sub(END_LEN)?;
    let first = last.saturating_sub(u16::MAX as usize);
    let end = (first..=last).rev().find(|&i| b[i..].starts_with(END_OF_DIRECTORY))?;
    let (mut entries, mut size, mut offset) = (u16_at(b, end + 10)?, u32_at(b, end + 12)?, u32_at(b, end + 16)?);
    if entries == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
        // Zip64 (§4.3.14, §4.3.15): the locator just before points at the larger record.
        let locator = end.checked_sub(20)?;
        if !b[locator..].starts_with(ZIP64_LOCATOR) {
            return None;
        }
        let record = usize::try_from(u64_at(b, locator + 8)?).ok()?;
        if !b.get(record..)?.starts_with(ZIP64_END_OF_DIRECTORY) {
            return None;
        }
        (entries, size, offset) = (u64_at(b, record + 32)?, u64_at(b, record + 40)?, u64_at(b, record + 48)?);
    }
    let size = usize::try_from(size).ok()?;
    let offset = usize::try_from(offset).ok()?;
    // Data prepended to the archive (a self-extractor) shifts every offset: the directory then
    // ends where the end record starts.
    let start =
        if b.get(offset..).is_some_and(|d| d.starts_with(DIRECTORY_ENTRY)) { offset } else { end.checked_sub(size)? };
    Some((start, entries))
}

fn entries_name(b: &[u8], mut at: usize, entries: u64, name: &[u8]) -> bool {
    for _ in 0..entries {
        if !b.get(at..).is_some_and(|d| d.starts_with(DIRECTORY_ENTRY)) {
            return false;
        }
        let (Some(name_len), Some(extra_len), Some(comment_len)) =
            (u16_at(b, at + 28), u16_at(b, at + 30), u16_at(b, at + 32))
        else {
            return false;
        };
        let name_at = at + ENTRY_LEN;
        if b.get(name_at..name_at + name_len as usize) == Some(name) {
            return true;
        }
        at = name_at + (name_len + extra_len + comment_len) as usize;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_foreign_bytes_name_nothing() {
        assert!(!has_entry(b"", b"a"));
        assert!(!has_entry(b"PK\x03\x04 not an archive", b"word/document.xml"));
        // An end record that points past the end, with an absurd entry count.
        let mut fake = b"PK\x03\x04xxxx".to_vec();
        fake.extend_from_slice(b"PK\x05\x06\0\0\0\0\xff\xfe\xff\xfe\xff\xff\x00\x00\xf0\xff\xff\x7f\0\0");
        assert!(!has_entry(&fake, b"word/document.xml"));
    }
}
