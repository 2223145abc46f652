//! The benchmarks' mailbox: messages shaped like a liaison mailbox's real mail, made from a
//! seed (message `i` depends only on the seed and `i`, so any message can be made again alone).
//!
//! The shape, from a measured real mailbox (issue 14): median size 17–20 KiB, mean about
//! 100 KiB, 40 % under 10 KiB, about a third carrying a PDF, Word or zip attachment, one in a
//! thousand a 20 MiB PDF. Here:
//! - every message has the header of delivered mail (Return-Path, three Received, DKIM-Signature,
//!   ARC seal, Authentication-Results, list and client fields): 3–5 KiB;
//! - two thirds carry text only: 0.3–6 KiB of it (63 %) or 9–60 KiB (log-uniform each), as text/plain or, one in three,
//!   multipart/alternative with an HTML copy; in the charsets and transfer encodings of real
//!   mail (UTF-8 8bit and quoted-printable, ISO-8859-1 and windows-1252, base64);
//! - one third carry one attachment (one in five two): PDF, Word (.docx, .doc) or zip, 20–360
//!   KiB decoded (log-uniform), base64. Below 64 KiB it is one of the real documents in
//!   `fixtures/` (so the extraction workers read real files); larger, incompressible bytes
//!   behind the format's signature (the parsers give up on them early, as on a scanned PDF);
//! - message 500 of every thousand carries a 20 MiB PDF (27 MiB encoded).

use std::fmt::Write as _;
use std::path::Path;

use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, RngCore, SeedableRng};

use super::base64;

/// What [`generate`] made, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Shape {
    pub attachments: usize,
    pub html: bool,
    pub huge: bool,
}

/// The real documents attachments below [`REAL_DOCUMENT_MAX`] are taken from.
pub struct Documents {
    pdf: Vec<Vec<u8>>,
    docx: Vec<Vec<u8>>,
    doc: Vec<Vec<u8>>,
    zip: Vec<Vec<u8>>,
}

const REAL_DOCUMENT_MAX: usize = 64 * 1024;
const HUGE_PDF: usize = 20 * 1024 * 1024;

impl Documents {
    /// The documents under `fixtures/` of the repository at `root` (missing ones are skipped).
    pub fn load(root: &Path) -> Documents {
        let read = |names: &[&str]| -> Vec<Vec<u8>> {
            names.iter().filter_map(|n| std::fs::read(root.join("fixtures").join(n)).ok()).collect()
        };
        Documents {
            pdf: read(&["attachments/itu-t-sg15-ls123.pdf", "attachments/bbf-LIAISE-640-00.pdf"]),
            docx: read(&[
                "attachments/3gpp-C4-261300.docx",
                "attachments/ieee-802-1-26-0077r0.docx",
                "attachments/mef-LS00420_001.docx",
            ]),
            doc: read(&[
                "attachments/3gpp-S2-2612345.doc",
                "real/documents/R2-1816041.doc",
                "real/documents/S2-1812758.doc",
            ]),
            zip: read(&["attachments/3gpp-C4-261300.zip", "attachments/3gpp-S2-2612345.zip"]),
        }
    }
}

struct Sdo {
    name: &'static str,
    addr: &'static str,
    doc_prefix: &'static str,
    relay: &'static str,
}

const SDOS: &[Sdo] = &[
    Sdo { name: "3GPP TSG SA WG2", addr: "3GPPLiaison@etsi.org", doc_prefix: "S2-26", relay: "mail.etsi.org" },
    Sdo { name: "3GPP TSG RAN WG3", addr: "3GPPLiaison@etsi.org", doc_prefix: "R3-26", relay: "mail.etsi.org" },
    Sdo { name: "ITU-T Study Group 13", addr: "tsbsg13@itu.int", doc_prefix: "SG13-LS", relay: "smtp.itu.int" },
    Sdo { name: "ITU-T Study Group 15", addr: "tsbsg15@itu.int", doc_prefix: "SG15-LS", relay: "smtp.itu.int" },
    Sdo { name: "ITU-T Study Group 17", addr: "tsbsg17@itu.int", doc_prefix: "SG17-LS", relay: "smtp.itu.int" },
    Sdo {
        name: "Broadband Forum",
        addr: "liaisons@broadband-forum.org",
        doc_prefix: "LIAISE-",
        relay: "mx.broadband-forum.org",
    },
    Sdo {
        name: "IEEE 802.1 Working Group",
        addr: "stds-802-1-l@ieee.org",
        doc_prefix: "LS-8021-",
        relay: "mx.ieee.org",
    },
    Sdo { name: "ETSI TC CYBER", addr: "cyber-liaisons@etsi.org", doc_prefix: "CYBER(26)", relay: "mail.etsi.org" },
    Sdo { name: "ISO/IEC JTC 1/SC 6", addr: "sc6-secretariat@kats.go.kr", doc_prefix: "6N", relay: "mx.kats.go.kr" },
    Sdo { name: "MEF Forum", addr: "liaisons@mef.net", doc_prefix: "MEF-LS-", relay: "mail.mef.net" },
    Sdo { name: "W3C", addr: "team-liaisons@w3.org", doc_prefix: "W3C-LS-", relay: "mx.w3.org" },
    Sdo { name: "Unicode Consortium", addr: "liaison@unicode.org", doc_prefix: "L2/26-", relay: "mx.unicode.org" },
];

const TOPICS: &[&str] = &[
    "IPv6-only deployment in mobile networks",
    "network slicing management interfaces",
    "time-sensitive networking over IP",
    "post-quantum cryptography migration",
    "deterministic networking for industrial automation",
    "QUIC in the 5G user plane",
    "YANG models for optical transport networks",
    "SRv6 in transport networks",
    "encrypted DNS in home gateways",
    "MPLS-TP OAM alignment",
    "energy-efficiency metrics for network equipment",
    "internationalized domain names in identifiers",
    "segment routing for 5G transport",
    "zero-touch network and service management",
    "RPKI deployment by access providers",
    "multicast in access networks",
];

const WGS: &[&str] =
    &["6MAN", "DETNET", "TEAS", "CCAMP", "OPSAWG", "QUIC", "DNSOP", "SPRING", "MPLS", "NETMOD", "SIDROPS"];

const PEOPLE: &[&str] = &[
    "María López",
    "Kenji Watanabe",
    "Olivier Dubois",
    "Priya Raman",
    "Hans Bäcker",
    "Li Wei",
    "Sara Johansson",
    "Ahmed Hassan",
    "Giulia Rossi",
    "Tomasz Nowak",
];

/// Sentences of statements; some with the non-ASCII letters and punctuation real ones have.
const SENTENCES: &[&str] = &[
    "The group thanks the IETF for its liaison statement and for the clarifications provided.",
    "At its recent meeting the group reviewed the current status of the work item and agreed on the text below.",
    "The group kindly asks the IETF to take the attached specification into account in its ongoing work.",
    "We would appreciate feedback on the proposed alignment between the two sets of specifications.",
    "The draft recommendation is expected to reach consent at the next plenary meeting – see the annex.",
    "Several contributions raised concerns about backward compatibility with deployed equipment.",
    "The group has not reached consensus on the use of the proposed extension and seeks further guidance.",
    "Operators reported interoperability problems that appear to stem from differing interpretations of the RFC.",
    "A summary of the discussion is provided for information; no action is required at this time.",
    "The editors will incorporate any comments received before the deadline given above.",
    "The group plans to reference the relevant RFCs normatively and requests confirmation of their “stability”.",
    "We note that the terminology used in both organizations differs and propose a common glossary.",
    "Test results from the recent interoperability event in Sophia Antipolis are summarized in the attached document.",
    "The group invites IETF experts to participate in the joint workshop planned for next year in Genève.",
    "Security considerations were discussed at length and are reflected in the revised annex.",
    "The management model is being updated to reflect the latest revision of the data model.",
    "The group would like to understand the IETF's plans for the next revision of this protocol.",
    "Please note that the attached documents are drafts and are subject to change.",
];

const PURPOSES: &[&str] = &["For action", "For information", "For comment", "In response"];

/// splitmix64: independent per-message seeds from (seed, i).
fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<'a, T>(rng: &mut impl Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A log-uniform size between `min` and `max`.
fn log_uniform(rng: &mut impl Rng, min: f64, max: f64) -> usize {
    (min * (max / min).powf(rng.random::<f64>())) as usize
}

/// Text of about `target` bytes: paragraphs of sentences wrapped at 72 columns, CRLF.
fn text(rng: &mut impl Rng, target: usize) -> String {
    let mut out = String::with_capacity(target + 200);
    while out.len() < target {
        let mut line = String::new();
        for _ in 0..rng.random_range(3..8) {
            for word in pick(rng, SENTENCES).split(' ') {
                if !line.is_empty() && line.len() + 1 + word.len() > 72 {
                    out.push_str(&line);
                    out.push_str("\r\n");
                    line.clear();
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
        }
        out.push_str(&line);
        out.push_str("\r\n\r\n");
    }
    out
}

/// The same text as simple HTML (what mail clients add as the alternative).
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    out.push_str(
        "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head>\r\n<body>\r\n",
    );
    for paragraph in text.split("\r\n\r\n").filter(|p| !p.is_empty()) {
        out.push_str("<p class=\"MsoNormal\" style=\"margin:0cm;font-size:11pt;font-family:Calibri,sans-serif\">");
        for c in paragraph.chars() {
            match c {
                '<' => out.push_str("&lt;"),
                '&' => out.push_str("&amp;"),
                '\r' => {}
                '\n' => out.push_str("\r\n"),
                c => out.push(c),
            }
        }
        out.push_str("</p>\r\n");
    }
    out.push_str("</body></html>\r\n");
    out
}

/// Quoted-printable (RFC 2045 §6.7) of `bytes`, lines of at most 76 characters, CRLF kept.
fn quoted_printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 11 / 10);
    let mut column = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            out.push_str("\r\n");
            column = 0;
            i += 2;
            continue;
        }
        let literal = (b == b' ' || (33..=126).contains(&b)) && b != b'=';
        let width = if literal { 1 } else { 3 };
        if column + width > 75 {
            out.push_str("=\r\n");
            column = 0;
        }
        if literal {
            out.push(b as char);
        } else {
            let _ = write!(out, "={b:02X}");
        }
        column += width;
        i += 1;
    }
    out
}

/// `text` in a single-byte charset (characters it lacks become `?`).
fn single_byte(text: &str, windows_1252: bool) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '–' if windows_1252 => 0x96,
            '“' if windows_1252 => 0x93,
            '”' if windows_1252 => 0x94,
            c if (c as u32) < 0x100 => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

/// A text part's header and body, in one of the charset and encoding mixes of real mail.
fn text_part(rng: &mut impl Rng, subtype: &str, body: &str) -> String {
    let roll = rng.random_range(0..100);
    let (charset, encoding, encoded) = match roll {
        0..50 => ("utf-8", "8bit", body.to_string()),
        50..70 => ("utf-8", "quoted-printable", quoted_printable(body.as_bytes())),
        70..85 => ("iso-8859-1", "quoted-printable", quoted_printable(&single_byte(body, false))),
        85..95 => ("windows-1252", "quoted-printable", quoted_printable(&single_byte(body, true))),
        _ => ("utf-8", "base64", base64::mime_lines(body.as_bytes())),
    };
    format!(
        "Content-Type: text/{subtype}; charset=\"{charset}\"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{encoded}"
    )
}

/// An attachment's bytes: a real document when one of the kind is at hand and the size is
/// small, else incompressible bytes behind the format's signature.
fn attachment_bytes(rng: &mut impl Rng, documents: &Documents, kind: usize, size: usize) -> Vec<u8> {
    let real = match kind {
        0 => &documents.pdf,
        1 => &documents.docx,
        2 => &documents.doc,
        _ => &documents.zip,
    };
    if size <= REAL_DOCUMENT_MAX && !real.is_empty() {
        return pick(rng, real).clone();
    }
    let magic: &[u8] = match kind {
        0 => b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        1 => b"PK\x03\x04\x14\x00\x06\x00",
        2 => b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        _ => b"PK\x03\x04\x14\x00\x00\x00",
    };
    let mut data = vec![0u8; size];
    SmallRng::seed_from_u64(rng.random()).fill_bytes(&mut data);
    let n = magic.len().min(size);
    data[..n].copy_from_slice(&magic[..n]);
    data
}

const KINDS: [(&str, &str); 4] = [
    ("pdf", "application/pdf"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("doc", "application/msword"),
    ("zip", "application/zip"),
];

/// Message `i` of the mailbox seeded with `seed`.
pub fn generate(seed: u64, i: usize, documents: &Documents) -> (Vec<u8>, Shape) {
    let mut rng = StdRng::seed_from_u64(mix(seed, i as u64));
    let sdo = pick(&mut rng, SDOS);
    let topic = pick(&mut rng, TOPICS);
    let wg = pick(&mut rng, WGS);
    let person = pick(&mut rng, PEOPLE);
    let purpose = pick(&mut rng, PURPOSES);
    let doc = format!("{}{:05}", sdo.doc_prefix, rng.random_range(0..100_000));
    // Dates spread over 2026, in order of i (one message every ~4 hours, some jitter).
    let ts = 1_767_225_600 + (i as i64) * 14_400 + rng.random_range(0..7_200);
    let date = jiff::Timestamp::from_second(ts).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let date_header = date.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string();
    let deadline = jiff::Timestamp::from_second(ts + 86_400 * rng.random_range(30..120))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%d")
        .to_string();
    let domain = sdo.addr.rsplit_once('@').map_or("example.net", |(_, d)| d);
    let message_id = format!("<bench.{seed}.{i}.{:016x}@{domain}>", rng.random::<u64>());
    let subject = match rng.random_range(0..4) {
        0 => format!("LS on {topic} ({doc})"),
        1 => format!("Reply LS on {topic} ({doc})"),
        2 => format!("New Liaison Statement, \"{}: {topic}\"", sdo.name),
        _ => format!("Liaison statement from {} to the IETF {wg} WG: {topic}", sdo.name),
    };
    let huge = i % 1000 == 500;
    let attachments = if huge {
        1
    } else if rng.random_bool(0.34) {
        if rng.random_bool(0.2) { 2 } else { 1 }
    } else {
        0
    };
    let alternative = attachments == 0 && rng.random_bool(1.0 / 3.0);
    let mut shape = Shape { attachments, html: alternative, huge };

    let person_addr = format!("{}@{domain}", person.split(' ').next().unwrap_or("x").to_lowercase());
    let mut h = String::with_capacity(6 * 1024);
    let hex =
        |rng: &mut StdRng, n: usize| -> String { (0..n).map(|_| format!("{:x}", rng.random_range(0..16u8))).collect() };
    let b64 = |rng: &mut StdRng, n: usize| -> String {
        let mut raw = vec![0u8; n * 3 / 4];
        rng.fill_bytes(&mut raw);
        base64::encode(&raw)
    };
    let _ = write!(
        h,
        "Return-Path: <{addr}>\r\n\
         Delivered-To: liaison-coordination@iab.org\r\n\
         Received: from mx.example.org (localhost [127.0.0.1])\r\n\tby imap.example.org (Dovecot) with LMTP id {lmtp}\r\n\
         \tfor <liaison-coordination@iab.org>; {date_header}\r\n\
         Received: from {relay} ({relay} [192.0.2.{octet}])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n\
         \t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\r\n\
         \t(No client certificate requested)\r\n\tby mx.example.org (Postfix) with ESMTPS id {qid:010X}\r\n\
         \tfor <liaison-coordination@iab.org>; {date_header}\r\n\
         Authentication-Results: mx.example.org;\r\n\tdkim=pass (2048-bit key; unprotected) header.d={domain} header.i=@{domain} header.b=\"{bshort}\";\r\n\
         \tdmarc=pass (p=quarantine dis=none) header.from={domain};\r\n\tspf=pass smtp.mailfrom={domain}\r\n\
         Received: from [10.{o2}.{o3}.{o4}] (unknown [10.{o2}.{o3}.{o4}])\r\n\tby {relay} (Postfix) with ESMTPSA id {qid2:010X}\r\n\
         \tfor <liaison-coordination@iab.org>; {date_header}\r\n\
         DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain};\r\n\ts=selector1; t={ts}; h=from:to:cc:subject:date:message-id:mime-version:content-type;\r\n\
         \tbh={bh};\r\n\tb={sig1}\r\n\t {sig2}\r\n\t {sig3}\r\n\
         ARC-Seal: i=1; a=rsa-sha256; d={domain}; s=arc; t={ts}; cv=none;\r\n\tb={sig4}\r\n\t {sig5}\r\n\
         From: {name} <{addr}>\r\n\
         To: liaison-coordination@iab.org\r\n\
         Cc: {wg_lower}-chairs@ietf.org, statements@ietf.org, {person_addr}\r\n\
         Subject: {subject}\r\n\
         Date: {date_header}\r\n\
         Message-ID: {message_id}\r\n\
         Thread-Topic: {topic}\r\n\
         Thread-Index: {thread}\r\n\
         Accept-Language: en-US\r\n\
         Content-Language: en-US\r\n\
         X-MS-Has-Attach: {has_attach}\r\n\
         X-Originating-IP: [10.{o2}.{o3}.{o4}]\r\n\
         MIME-Version: 1.0\r\n",
        addr = sdo.addr,
        relay = sdo.relay,
        lmtp = b64(&mut rng, 22),
        octet = rng.random_range(1..255),
        qid = rng.random::<u64>() & 0xFF_FFFF_FFFF,
        qid2 = rng.random::<u64>() & 0xFF_FFFF_FFFF,
        o2 = rng.random_range(0..255),
        o3 = rng.random_range(0..255),
        o4 = rng.random_range(1..255),
        bshort = b64(&mut rng, 8),
        bh = b64(&mut rng, 44),
        sig1 = b64(&mut rng, 68),
        sig2 = b64(&mut rng, 76),
        sig3 = b64(&mut rng, 200),
        sig4 = b64(&mut rng, 76),
        sig5 = b64(&mut rng, 264),
        name = sdo.name,
        wg_lower = wg.to_ascii_lowercase(),
        person_addr = person_addr,
        thread = hex(&mut rng, 44),
        has_attach = if attachments > 0 { "yes" } else { "no" },
    );
    let intro = format!(
        "Title: {topic}\r\n\
         Submission date: {}\r\n\
         From: {} ({person})\r\n\
         To: IETF {wg} WG; IAB\r\n\
         Purpose: {purpose}\r\n\
         Deadline: {deadline}\r\n\
         Technical contact: {person} <{}.{}@{domain}>\r\n\
         Document: {doc}\r\n\
         \r\n",
        date.strftime("%Y-%m-%d"),
        sdo.name,
        person.split(' ').next().unwrap_or("x").to_lowercase(),
        person.rsplit(' ').next().unwrap_or("y").to_lowercase(),
    );

    let mut m = Vec::new();
    if attachments == 0 {
        // Short notes and forwarded statements: two populations (a single log-uniform range
        // cannot give both 40 % under 10 KiB and a median near 18 KiB).
        let size = if rng.random_bool(0.63) {
            log_uniform(&mut rng, 270.0, 6.0 * 1024.0)
        } else {
            log_uniform(&mut rng, 9.0 * 1024.0, 60.0 * 1024.0)
        };
        let body = intro + &text(&mut rng, size.saturating_sub(300));
        if alternative {
            let boundary = format!("_000_{:016x}", rng.random::<u64>());
            let _ = write!(h, "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n");
            m.extend_from_slice(h.as_bytes());
            let plain = text_part(&mut rng, "plain", &body);
            let rich = text_part(&mut rng, "html", &html(&body));
            m.extend_from_slice(
                format!("--{boundary}\r\n{plain}\r\n--{boundary}\r\n{rich}\r\n--{boundary}--\r\n").as_bytes(),
            );
        } else {
            let part = text_part(&mut rng, "plain", &body);
            m.extend_from_slice(h.as_bytes());
            m.extend_from_slice(part.as_bytes());
        }
        return (m, shape);
    }

    let boundary = format!("_004_{:016x}", rng.random::<u64>());
    let _ = write!(h, "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n");
    m.extend_from_slice(h.as_bytes());
    let size = log_uniform(&mut rng, 600.0, 4.0 * 1024.0);
    let body = intro + &text(&mut rng, size);
    m.extend_from_slice(format!("--{boundary}\r\n{}\r\n", text_part(&mut rng, "plain", &body)).as_bytes());
    for a in 0..attachments {
        let kind = if huge { 0 } else { rng.random_range(0..KINDS.len()) };
        let size = if huge { HUGE_PDF } else { log_uniform(&mut rng, 20.0 * 1024.0, 360.0 * 1024.0) };
        let (ext, mime) = KINDS[kind];
        let name = if a == 0 { format!("{doc}.{ext}") } else { format!("{doc}-annex{a}.{ext}") };
        let data = attachment_bytes(&mut rng, documents, kind, size);
        m.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: {mime}; name=\"{name}\"\r\n\
                 Content-Description: {name}\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"; size={}\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n",
                data.len()
            )
            .as_bytes(),
        );
        m.extend_from_slice(base64::mime_lines(&data).as_bytes());
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    shape.attachments = attachments;
    (m, shape)
}
