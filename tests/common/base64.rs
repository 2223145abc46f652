//! Base64 (RFC 4648 §4) for building test messages; shared by tests and benchmarks.

/// Encodes `data` as standard base64 with padding, on one line.
pub fn encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            out.push(if k <= c.len() { T[((v >> (18 - 6 * k)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// `data` as a base64 MIME body: lines of 76 characters, each ending in CRLF (RFC 2045 §6.8).
pub fn mime_lines(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() / 57 * 78 + 80);
    for chunk in data.chunks(57) {
        out.push_str(&encode(chunk));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc4648_vectors() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(super::encode(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn mime_lines_are_76_characters() {
        let text = super::mime_lines(&[7u8; 200]);
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.iter().map(|l| l.len()).collect::<Vec<_>>(), vec![76, 76, 76, 40]);
        assert_eq!(lines.concat(), super::encode(&[7u8; 200]));
    }
}
