//! Legacy binary Word (`.doc`, Word 97–2003): the document text from the compound file.
//!
//! [MS-DOC] §2.4.1 "Retrieving Text": the File Information Block (FIB) at the start of the
//! `WordDocument` stream says which table stream to use (`0Table` or `1Table`) and where the
//! `Clx` is in it; the `Clx` holds the piece table (`PlcPcd`), which maps character positions to
//! byte offsets in `WordDocument`, each piece either 8-bit "compressed" (Windows-1252) or
//! UTF-16LE. Special characters (§2.3.3) are mapped to plain text and field codes dropped.

use std::io::{Cursor, Read};

use super::ExtractError;

fn malformed(detail: impl ToString) -> ExtractError {
    ExtractError::Malformed { kind: "Word (.doc)", detail: detail.to_string() }
}

/// A piece table with more pieces than this is not a real document.
const MAX_PIECES: usize = 100_000;

pub(super) fn text(bytes: &[u8]) -> Result<String, ExtractError> {
    let mut cfb = cfb::CompoundFile::open(Cursor::new(bytes)).map_err(malformed)?;
    let word = read_stream(&mut cfb, "WordDocument")?;
    let fib = Fib::parse(&word)?;
    if fib.encrypted {
        return Err(ExtractError::Unsupported("the Word document is encrypted".into()));
    }
    let table = read_stream(&mut cfb, if fib.table_one { "1Table" } else { "0Table" })?;
    let clx = table
        .get(fib.fc_clx..fib.fc_clx.saturating_add(fib.lcb_clx))
        .ok_or_else(|| malformed("Clx outside the table stream"))?;
    let pieces = piece_table(clx)?;
    let mut raw = String::new();
    for p in pieces {
        let chars = p.cp_end.saturating_sub(p.cp_start) as usize;
        if p.compressed {
            let start = (p.fc / 2) as usize;
            let bytes =
                word.get(start..start.saturating_add(chars)).ok_or_else(|| malformed("piece outside WordDocument"))?;
            raw.push_str(&encoding_rs::WINDOWS_1252.decode(bytes).0);
        } else {
            let start = p.fc as usize;
            let bytes = word
                .get(start..start.saturating_add(chars * 2))
                .ok_or_else(|| malformed("piece outside WordDocument"))?;
            let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            raw.push_str(&String::from_utf16_lossy(&units));
        }
    }
    Ok(plain(&raw))
}

fn read_stream(cfb: &mut cfb::CompoundFile<Cursor<&[u8]>>, name: &str) -> Result<Vec<u8>, ExtractError> {
    let mut stream = cfb.open_stream(name).map_err(|e| malformed(format!("{name}: {e}")))?;
    let mut out = Vec::new();
    // A compound file cannot hold a stream larger than itself; the cursor bounds this read.
    stream.read_to_end(&mut out).map_err(|e| malformed(format!("{name}: {e}")))?;
    Ok(out)
}

struct Fib {
    encrypted: bool,
    table_one: bool,
    fc_clx: usize,
    lcb_clx: usize,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ExtractError> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or_else(|| malformed("FIB too short"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ExtractError> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(|| malformed("FIB too short"))
}

impl Fib {
    /// [MS-DOC] §2.5.1: FibBase (32 bytes), then csw + FibRgW97, cslw + FibRgLw97, then
    /// cbRgFcLcb + FibRgFcLcb97, in which fcClx/lcbClx are the 34th pair.
    fn parse(word: &[u8]) -> Result<Fib, ExtractError> {
        if u16_at(word, 0)? != 0xA5EC {
            return Err(malformed("no Word FIB signature (0xA5EC)"));
        }
        let flags = u16_at(word, 0x0A)?;
        let mut pos = 32;
        let csw = u16_at(word, pos)? as usize;
        pos += 2 + csw * 2;
        let cslw = u16_at(word, pos)? as usize;
        pos += 2 + cslw * 4;
        let cb_rg_fc_lcb = u16_at(word, pos)? as usize;
        pos += 2;
        if cb_rg_fc_lcb < 34 {
            return Err(malformed("FIB has no Clx entry (pre-Word 97 file?)"));
        }
        Ok(Fib {
            encrypted: flags & 0x0100 != 0,
            table_one: flags & 0x0200 != 0,
            fc_clx: u32_at(word, pos + 33 * 8)? as usize,
            lcb_clx: u32_at(word, pos + 33 * 8 + 4)? as usize,
        })
    }
}

struct Piece {
    cp_start: u32,
    cp_end: u32,
    fc: u32,
    compressed: bool,
}

/// [MS-DOC] §2.9.38 Clx: any number of Prc (0x01, cbGrpprl, grpprl), then one Pcdt (0x02,
/// lcb, PlcPcd). PlcPcd: n+1 character positions, then n 8-byte piece descriptors.
fn piece_table(clx: &[u8]) -> Result<Vec<Piece>, ExtractError> {
    let mut pos = 0;
    while clx.get(pos) == Some(&0x01) {
        let cb = i16::from_le_bytes([*clx.get(pos + 1).unwrap_or(&0), *clx.get(pos + 2).unwrap_or(&0)]);
        if cb < 0 {
            return Err(malformed("negative Prc size"));
        }
        pos += 3 + cb as usize;
    }
    if clx.get(pos) != Some(&0x02) {
        return Err(malformed("no piece table (Pcdt) in the Clx"));
    }
    let lcb = u32_at(clx, pos + 1)? as usize;
    let plc = clx.get(pos + 5..pos + 5 + lcb).ok_or_else(|| malformed("PlcPcd outside the Clx"))?;
    if plc.len() < 4 || (plc.len() - 4) % 12 != 0 {
        return Err(malformed("PlcPcd has an impossible size"));
    }
    let n = (plc.len() - 4) / 12;
    if n > MAX_PIECES {
        return Err(ExtractError::Limit(format!("{n} pieces in the piece table")));
    }
    let mut pieces = Vec::with_capacity(n);
    for i in 0..n {
        let cp_start = u32_at(plc, i * 4)?;
        let cp_end = u32_at(plc, (i + 1) * 4)?;
        let fc_raw = u32_at(plc, (n + 1) * 4 + i * 8 + 2)?;
        pieces.push(Piece { cp_start, cp_end, fc: fc_raw & 0x3FFF_FFFF, compressed: fc_raw & 0x4000_0000 != 0 });
    }
    Ok(pieces)
}

/// Word's control characters ([MS-DOC] §2.3.3) to plain text; field codes are dropped and
/// field results kept.
fn plain(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    // For each open field: whether we are still in its code part (before 0x14).
    let mut fields: Vec<bool> = Vec::new();
    let mut previous = '\0';
    for c in raw.chars() {
        match c {
            '\u{13}' => fields.push(true),
            '\u{14}' => {
                if let Some(code) = fields.last_mut() {
                    *code = false;
                }
            }
            '\u{15}' => {
                fields.pop();
            }
            _ if fields.last().copied().unwrap_or(false) => {}
            '\r' | '\u{0B}' | '\u{0C}' => out.push('\n'),
            // Cell end; two in a row end a table row.
            '\u{07}' => {
                if previous == '\u{07}' {
                    if out.ends_with('\t') {
                        out.pop();
                    }
                    out.push('\n');
                } else {
                    out.push('\t');
                }
            }
            '\u{1E}' => out.push('-'),
            '\u{A0}' => out.push(' '),
            '\u{01}' | '\u{08}' | '\u{1F}' | '\u{02}' | '\u{05}' => {}
            c => out.push(c),
        }
        previous = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_fields() {
        let raw = "Title: LS\rSee \u{13} HYPERLINK \"http://x\" \u{14}the site\u{15} now\u{0B}next\rA\u{07}B\u{07}\u{07}C\u{1E}D";
        assert_eq!(plain(raw), "Title: LS\nSee the site now\nnext\nA\tB\nC-D");
    }

    #[test]
    fn piece_table_parsing() {
        // One Prc of 2 bytes, then a Pcdt with two pieces.
        let mut clx = vec![0x01, 0x02, 0x00, 0xAA, 0xBB, 0x02];
        let mut plc = Vec::new();
        for cp in [0u32, 5, 9] {
            plc.extend(cp.to_le_bytes());
        }
        for (fc, compressed) in [(0x800u32, true), (0x400, false)] {
            plc.extend([0, 0]);
            plc.extend((fc | if compressed { 0x4000_0000 } else { 0 }).to_le_bytes());
            plc.extend([0, 0]);
        }
        clx.extend((plc.len() as u32).to_le_bytes());
        clx.extend(plc);
        let p = piece_table(&clx).expect("pieces");
        assert_eq!(p.len(), 2);
        assert!(p[0].compressed && !p[1].compressed);
        assert_eq!((p[0].cp_start, p[0].cp_end, p[0].fc), (0, 5, 0x800));
        assert!(piece_table(&[0x02, 0xFF, 0xFF, 0xFF, 0x7F]).is_err(), "a huge lcb is refused, not allocated");
    }
}
