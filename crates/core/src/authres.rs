//! `Authentication-Results` (RFC 8601): one field value parsed by the grammar of §2.2, and the
//! block of fields our own receiving servers put at the top of a message (§5).
//!
//! Parsing is strict. A value that does not fit the grammar is [`Unparsable`], never read in
//! part: a field read "as well as possible" is one the sender can shape, since some of its
//! text (the envelope sender, a signature's `i=`) is copied into it by the receiving server
//! (issue 13: a `;` inside a quoted `smtp.mailfrom` made a second, forged result). Comments,
//! quoted strings and quoted-pairs are lexed as RFC 5322 §3.2 says, so neither `;` nor `(`
//! inside them means anything.
//!
//! Two narrowings of the grammar, both failing closed: no CFWS around the `@` of a property's
//! `local-part@domain-name` (RFC 5322's local-part would allow it; no server writes it), and
//! no obsolete syntax. Work is linear in the value; values over [`MAX_FIELD_LEN`] bytes, with
//! more than [`MAX_RESULTS`] results or more than [`MAX_PROPERTIES`] properties in one are
//! refused.
//!
//! No I/O.

use std::fmt;

/// The longest field value parsed, in bytes. OpenDKIM's and OpenDMARC's fields are a few
/// hundred bytes; a longer one is not from them.
pub const MAX_FIELD_LEN: usize = 16 * 1024;
/// The most results (`method=result`) one field may hold.
pub const MAX_RESULTS: usize = 32;
/// The most properties (`ptype.property=value`) one result may hold.
pub const MAX_PROPERTIES: usize = 32;
/// The deepest nesting of comments.
const MAX_COMMENT_DEPTH: usize = 16;

/// One `Authentication-Results` field value, parsed (RFC 8601 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// In lower case.
    pub authserv_id: String,
    /// `authres-version`, when given.
    pub version: Option<u32>,
    /// Empty for `none` (no authentication was performed).
    pub results: Vec<MethodResult>,
}

/// One `resinfo`: `method[/version]=result [reason=...] ptype.property=value ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// In lower case.
    pub method: String,
    pub method_version: Option<u32>,
    /// In lower case.
    pub result: String,
    pub reason: Option<String>,
    pub properties: Vec<Property>,
}

impl MethodResult {
    /// The value of the first property `ptype.property` (names in lower case).
    pub fn property(&self, ptype: &str, property: &str) -> Option<&PValue> {
        self.properties.iter().find(|p| p.ptype == ptype && p.property == property).map(|p| &p.value)
    }
}

/// One `propspec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// In lower case, e.g. `header`.
    pub ptype: String,
    /// In lower case, e.g. `from`.
    pub property: String,
    pub value: PValue,
}

/// A property's value (`pvalue`), as written (quoted-pairs resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PValue {
    /// A token or the content of a quoted-string (RFC 2045 `value`), e.g. a domain name.
    Value(String),
    /// `[local-part] "@" domain-name`, e.g. `@example.org` (DKIM's `header.i`) or
    /// `"x;y"@example.org`.
    Address { local_part: Option<String>, domain: String },
}

impl fmt::Display for PValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PValue::Value(v) => f.write_str(v),
            PValue::Address { local_part, domain } => write!(f, "{}@{domain}", local_part.as_deref().unwrap_or("")),
        }
    }
}

/// Why a field value does not fit the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (at byte {at})")]
pub struct Unparsable {
    /// The byte offset in the value where parsing stopped.
    pub at: usize,
    pub what: &'static str,
}

/// Parses one `Authentication-Results` field value (unfolded, without the field name) by the
/// grammar of RFC 8601 §2.2:
///
/// ```text
/// authres-payload = [CFWS] authserv-id [ CFWS authres-version ]
///                   ( no-result / 1*resinfo ) [CFWS] CRLF
/// no-result       = [CFWS] ";" [CFWS] "none"
/// resinfo         = [CFWS] ";" methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]
/// methodspec      = [CFWS] method [CFWS] "=" [CFWS] result
/// method          = Keyword [ [CFWS] "/" [CFWS] method-version ]
/// reasonspec      = "reason" [CFWS] "=" [CFWS] value
/// propspec        = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
/// pvalue          = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
/// ```
pub fn parse(value: &str) -> Result<AuthResults, Unparsable> {
    if value.len() > MAX_FIELD_LEN {
        return Err(Unparsable { at: MAX_FIELD_LEN, what: "the field is longer than 16 KiB" });
    }
    let mut p = Parser { s: value.as_bytes(), pos: 0 };
    p.cfws()?;
    let authserv_id = p.value("expected an authserv-id")?.to_ascii_lowercase();
    let mut version = None;
    if p.cfws()? && p.peek().is_some_and(|c| c.is_ascii_digit()) {
        version = Some(p.number()?);
    }
    let mut results: Vec<MethodResult> = Vec::new();
    let mut none = false;
    loop {
        p.cfws()?;
        match p.peek() {
            None => break,
            Some(b';') => p.pos += 1,
            Some(_) => return Err(p.err("expected `;`")),
        }
        p.cfws()?;
        let method = p.keyword("expected a method")?;
        p.cfws()?;
        // §2.2 no-result: `none`, alone and last, says that nothing was checked.
        if method == "none" && results.is_empty() && p.peek().is_none() {
            none = true;
            break;
        }
        let mut method_version = None;
        if p.peek() == Some(b'/') {
            p.pos += 1;
            p.cfws()?;
            method_version = Some(p.number()?);
            p.cfws()?;
        }
        p.expect(b'=', "expected `=` after the method")?;
        p.cfws()?;
        let result = p.keyword("expected a result")?;
        let mut reason = None;
        let mut properties: Vec<Property> = Vec::new();
        // CFWS is required after the result and after a reason; a pvalue ends in [CFWS].
        let mut need_separator = true;
        loop {
            let separated = p.cfws()?;
            if matches!(p.peek(), None | Some(b';')) {
                break;
            }
            if need_separator && !separated {
                return Err(p.err("expected a space before a reason or property"));
            }
            let at = p.pos;
            let word = p.keyword("expected `ptype.property=value` or `reason=`")?;
            p.cfws()?;
            match p.peek() {
                Some(b'.') => {
                    p.pos += 1;
                    p.cfws()?;
                    let property = p.keyword("expected a property after `.`")?;
                    p.cfws()?;
                    p.expect(b'=', "expected `=` after the property")?;
                    p.cfws()?;
                    let value = p.pvalue()?;
                    if properties.len() == MAX_PROPERTIES {
                        return Err(Unparsable { at, what: "a result has too many properties" });
                    }
                    properties.push(Property { ptype: word, property, value });
                    need_separator = false;
                }
                Some(b'=') if word == "reason" && reason.is_none() && properties.is_empty() => {
                    p.pos += 1;
                    p.cfws()?;
                    reason = Some(p.value("expected a reason")?);
                    need_separator = true;
                }
                _ => return Err(Unparsable { at, what: "expected `ptype.property=value`" }),
            }
        }
        if results.len() == MAX_RESULTS {
            return Err(p.err("the field has too many results"));
        }
        results.push(MethodResult { method, method_version, result, reason, properties });
    }
    if results.is_empty() && !none {
        return Err(p.err("no result and not `none`"));
    }
    Ok(AuthResults { authserv_id, version, results })
}

/// The authserv-id of a field value (in lower case), read without parsing the rest: enough to
/// say whether a trusted server wrote it. `None` when the value does not even begin with one.
pub fn authserv_id(value: &str) -> Option<String> {
    let mut p = Parser { s: value.as_bytes(), pos: 0 };
    p.cfws().ok()?;
    p.value("").ok().map(|id| id.to_ascii_lowercase())
}

/// A field of the trusted block: who wrote it and what it says, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedField {
    /// In lower case.
    pub authserv_id: String,
    pub parsed: Result<AuthResults, Unparsable>,
}

/// The `Authentication-Results` fields our own receiving servers added: from the top of the
/// header (`fields`: name and unfolded value, top first), past the delivery agent's
/// `Return-Path`, `Delivered-To` and `X-Original-To` and at most `own_received` `Received`
/// fields (ours: Postfix hides its own from the milters, so OpenDKIM's and OpenDMARC's fields
/// are inserted below it), every contiguous field whose authserv-id is in `trusted`. The block
/// ends at the first field from any other authserv-id, at a `Received` field or at any other
/// field; a trusted-looking field below it came with the message and is not read (RFC 8601
/// §5). Empty when the first field after the trace fields is not a trusted one.
pub fn trusted_block<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    trusted: &[String],
    own_received: usize,
) -> Vec<TrustedField> {
    let mut block = Vec::new();
    let mut received = 0usize;
    for (name, value) in fields {
        let name = name.to_ascii_lowercase();
        if name == "authentication-results" {
            match authserv_id(value) {
                Some(id) if trusted.iter().any(|t| t.eq_ignore_ascii_case(&id)) => {
                    block.push(TrustedField { authserv_id: id, parsed: parse(value) });
                    continue;
                }
                _ => break,
            }
        }
        if !block.is_empty() {
            break;
        }
        match name.as_str() {
            "return-path" | "delivered-to" | "x-original-to" => {}
            "received" if received < own_received => received += 1,
            _ => break,
        }
    }
    block
}

/// A cursor over the value's bytes. The grammar's delimiters are all ASCII; bytes of other
/// characters appear only inside quoted strings and comments (RFC 6532) and are copied whole.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn err(&self, what: &'static str) -> Unparsable {
        Unparsable { at: self.pos, what }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), Unparsable> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// `[CFWS]` (RFC 5322 §3.2.2): spaces, tabs and comments. Whether anything was skipped.
    fn cfws(&mut self) -> Result<bool, Unparsable> {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.pos += 1,
                Some(b'(') => self.comment()?,
                _ => return Ok(self.pos > start),
            }
        }
    }

    /// A comment: `(` ctext, quoted-pairs and nested comments `)`. A `;`, `"` or `=` in it
    /// is text.
    fn comment(&mut self) -> Result<(), Unparsable> {
        let start = self.pos;
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None => return Err(Unparsable { at: start, what: "a comment is not closed" }),
                Some(b'(') => {
                    depth += 1;
                    if depth > MAX_COMMENT_DEPTH {
                        return Err(self.err("comments are nested too deep"));
                    }
                }
                Some(b')') => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.quoted_pair()?;
                    continue;
                }
                Some(c) if is_ctl(c) => return Err(self.err("a control character in a comment")),
                Some(_) => {}
            }
            self.pos += 1;
        }
    }

    /// The character after a `\` (RFC 5322 §3.2.1: VCHAR or WSP), which is taken literally.
    fn quoted_pair(&mut self) -> Result<u8, Unparsable> {
        match self.peek() {
            Some(c) if !is_ctl(c) => {
                self.pos += 1;
                Ok(c)
            }
            _ => Err(self.err("a `\\` not followed by a character")),
        }
    }

    /// A quoted-string (RFC 5322 §3.2.4), its content with quoted-pairs resolved.
    fn quoted_string(&mut self) -> Result<String, Unparsable> {
        let start = self.pos;
        self.expect(b'"', "expected `\"`")?;
        let mut content = Vec::new();
        loop {
            match self.peek() {
                None => return Err(Unparsable { at: start, what: "a quoted string is not closed" }),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    content.push(self.quoted_pair()?);
                }
                Some(c) if is_ctl(c) => return Err(self.err("a control character in a quoted string")),
                Some(c) => {
                    content.push(c);
                    self.pos += 1;
                }
            }
        }
        // Only ASCII `\` and `"` were left out of valid UTF-8, so this cannot fail; no panic.
        String::from_utf8(content).map_err(|_| Unparsable { at: start, what: "a quoted string is not UTF-8" })
    }

    /// The longest run of bytes satisfying `ok`.
    fn run(&mut self, ok: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&ok) {
            self.pos += 1;
        }
        // The run is ASCII (every `ok` here accepts ASCII only), so this cannot fail.
        std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default()
    }

    /// RFC 2045 `value`: a token or a quoted-string.
    fn value(&mut self, what: &'static str) -> Result<String, Unparsable> {
        if self.peek() == Some(b'"') {
            return self.quoted_string();
        }
        let token = self.run(is_token_char);
        if token.is_empty() { Err(self.err(what)) } else { Ok(token.to_string()) }
    }

    /// RFC 5321 `Keyword` (`Ldh-str`: letters, digits and hyphens, not ending in a hyphen),
    /// in lower case.
    fn keyword(&mut self, what: &'static str) -> Result<String, Unparsable> {
        let start = self.pos;
        let word = self.run(|c| c.is_ascii_alphanumeric() || c == b'-');
        if word.is_empty() || word.ends_with('-') {
            return Err(Unparsable { at: start, what });
        }
        Ok(word.to_ascii_lowercase())
    }

    /// `1*DIGIT`, a version number.
    fn number(&mut self) -> Result<u32, Unparsable> {
        let start = self.pos;
        let digits = self.run(|c| c.is_ascii_digit());
        digits.parse().map_err(|_| Unparsable { at: start, what: "expected a version number" })
    }

    /// `pvalue` without its surrounding CFWS: `value / [ [ local-part ] "@" ] domain-name`.
    fn pvalue(&mut self) -> Result<PValue, Unparsable> {
        match self.peek() {
            Some(b'"') => {
                let quoted = self.quoted_string()?;
                if self.peek() == Some(b'@') {
                    self.pos += 1;
                    Ok(PValue::Address { local_part: Some(quoted), domain: self.domain_name()? })
                } else {
                    Ok(PValue::Value(quoted))
                }
            }
            Some(b'@') => {
                self.pos += 1;
                Ok(PValue::Address { local_part: None, domain: self.domain_name()? })
            }
            _ => {
                let start = self.pos;
                // Either a token or a dot-atom local-part: the longest run either may hold,
                // then decided by whether an `@` follows.
                let word = self.run(|c| is_token_char(c) || is_atext(c));
                if word.is_empty() {
                    return Err(Unparsable { at: start, what: "expected a property value" });
                }
                if self.peek() == Some(b'@') {
                    if !is_dot_atom_text(word) {
                        return Err(Unparsable { at: start, what: "a local-part that is not a dot-atom" });
                    }
                    self.pos += 1;
                    Ok(PValue::Address { local_part: Some(word.to_string()), domain: self.domain_name()? })
                } else if word.bytes().all(is_token_char) {
                    Ok(PValue::Value(word.to_string()))
                } else {
                    Err(Unparsable { at: start, what: "a value with `/`, `=` or `?` that is not quoted" })
                }
            }
        }
    }

    /// RFC 6376 `domain-name`: `sub-domain 1*("." sub-domain)`, each a letter or digit,
    /// then letters, digits and hyphens, not ending in a hyphen.
    fn domain_name(&mut self) -> Result<String, Unparsable> {
        let start = self.pos;
        let mut labels = 0usize;
        loop {
            let label = self.run(|c| c.is_ascii_alphanumeric() || c == b'-');
            if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
                return Err(Unparsable { at: start, what: "expected a domain name after `@`" });
            }
            labels += 1;
            if self.peek() != Some(b'.') {
                break;
            }
            self.pos += 1;
        }
        if labels < 2 {
            return Err(Unparsable { at: start, what: "a domain name after `@` needs a dot" });
        }
        std::str::from_utf8(&self.s[start..self.pos])
            .map(str::to_ascii_lowercase)
            .map_err(|_| Unparsable { at: start, what: "expected a domain name after `@`" })
    }
}

/// RFC 5322 controls other than the tab (which is whitespace).
fn is_ctl(c: u8) -> bool {
    (c < 0x20 && c != b'\t') || c == 0x7f
}

/// RFC 2045 §5.1: any printable ASCII character except the tspecials.
fn is_token_char(c: u8) -> bool {
    (0x21..=0x7e).contains(&c) && !b"()<>@,;:\\\"/[]?=".contains(&c)
}

/// RFC 5322 §3.2.3 `atext`.
fn is_atext(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c)
}

/// RFC 5322 §3.2.3 `dot-atom-text`: atext runs separated by single dots.
fn is_dot_atom_text(s: &str) -> bool {
    s.split('.').all(|part| !part.is_empty() && part.bytes().all(is_atext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str) -> AuthResults {
        parse(value).unwrap_or_else(|e| panic!("{value}: {e}"))
    }

    fn summary(ar: &AuthResults) -> Vec<String> {
        ar.results
            .iter()
            .map(|r| {
                let props: Vec<String> =
                    r.properties.iter().map(|p| format!(" {}.{}={}", p.ptype, p.property, p.value)).collect();
                format!("{}={}{}", r.method, r.result, props.concat())
            })
            .collect()
    }

    #[test]
    fn opendkim_and_opendmarc_fields() {
        let dkim = ok("mail.ietf.org;\tdkim=pass (2048-bit key; unprotected) header.d=3gpp.org \
                       header.i=@3gpp.org header.a=rsa-sha256 header.s=s1 header.b=\"Cf/DTIQD\"");
        assert_eq!(dkim.authserv_id, "mail.ietf.org");
        assert_eq!(
            summary(&dkim),
            ["dkim=pass header.d=3gpp.org header.i=@3gpp.org header.a=rsa-sha256 header.s=s1 header.b=Cf/DTIQD"]
        );
        assert_eq!(
            dkim.results[0].property("header", "i"),
            Some(&PValue::Address { local_part: None, domain: "3gpp.org".into() })
        );
        let dmarc = ok("Mail.IETF.org; DMARC=Pass (p=reject dis=none) header.from=3gpp.org");
        assert_eq!(
            (dmarc.authserv_id.as_str(), summary(&dmarc)),
            ("mail.ietf.org", vec!["dmarc=pass header.from=3gpp.org".to_string()])
        );
        let spf = ok("mail.ietf.org; spf=pass (sender SPF authorized) smtp.mailfrom=SRS0=ab=cd=x.org=u@fwd.example");
        assert_eq!(summary(&spf), ["spf=pass smtp.mailfrom=SRS0=ab=cd=x.org=u@fwd.example"]);
        assert_eq!(ok("mail.ietf.org 1; none").results, vec![]);
        assert_eq!(ok(" mail.ietf.org (our MX) 1 ; none (nothing checked) ").version, Some(1));
    }

    #[test]
    fn the_rfc_8601_examples() {
        // Appendix B.
        for value in [
            "example.com; none",
            "example.com; spf=pass smtp.mailfrom=example.net",
            "example.com; auth=pass (cram-md5) smtp.auth=sender@example.net; spf=pass smtp.mailfrom=example.net",
            "example.com; sender-id=pass header.from=example.net",
            "example.com; iprev=pass policy.iprev=192.0.2.200",
            "example.com; dkim=pass (good signature) header.d=example.com",
            "example.com; dkim=pass reason=\"good signature\" header.i=@mail-router.example.net; \
             dkim=fail reason=\"bad signature\" header.i=@newyork.example.com",
            "example.net; dkim=pass (good signature) header.i=@newyork.example.com",
            "foo.example.net (foobar) 1 (baz); dkim (Because I like it) / 1 (One yay) = (wait for it) fail \
             policy (A dot can go here) . (like that) expired (this surprised me) = (as I wasn't expecting it) 1362471462",
        ] {
            ok(value);
        }
        let odd = ok("foo.example.net (foobar) 1 (baz); dkim (Because I like it) / 1 (One yay) = (wait for it) fail \
                      policy (A dot can go here) . (like that) expired (this surprised me) = (as I wasn't expecting it) 1362471462");
        assert_eq!((odd.version, odd.results[0].method_version), (Some(1), Some(1)));
        assert_eq!(summary(&odd), ["dkim=fail policy.expired=1362471462"]);
    }

    #[test]
    fn a_quoted_semicolon_is_text() {
        // Regression (issue 13): splitting on every `;` read a second, forged result.
        let ar = ok("mail.ietf.org; spf=pass smtp.mailfrom=\"x;dmarc=pass header.from=3gpp.org;\"@evil.example; \
                     dmarc=fail header.from=3gpp.org");
        assert_eq!(
            summary(&ar),
            [
                "spf=pass smtp.mailfrom=x;dmarc=pass header.from=3gpp.org;@evil.example",
                "dmarc=fail header.from=3gpp.org"
            ]
        );
        assert_eq!(
            ar.results[0].property("smtp", "mailfrom").map(ToString::to_string).as_deref(),
            Some("x;dmarc=pass header.from=3gpp.org;@evil.example")
        );
    }

    #[test]
    fn parentheses_in_a_quoted_string_and_nested_comments() {
        // Regression (issue 13): `(` inside quotes opened a comment that hid the real result.
        let ar = ok("mail.ietf.org; spf=pass smtp.mailfrom=\"a(b\"@evil.example; dmarc=fail header.from=3gpp.org; \
                     x=y header.q=\")\"");
        assert_eq!(ar.results.len(), 3);
        assert_eq!(ar.results[1].result, "fail");
        let ar = ok("mail.ietf.org (a (nested; dmarc=pass) \\) comment\\(); dkim=pass (x (y) z) header.d=3gpp.org");
        assert_eq!(summary(&ar), ["dkim=pass header.d=3gpp.org"]);
        // A quoted `"` and `\` inside a quoted string.
        let ar = ok(r#"mail.ietf.org; spf=pass smtp.mailfrom="a\"; dmarc=pass\\"@evil.example"#);
        assert_eq!(ar.results.len(), 1);
        assert_eq!(
            ar.results[0].property("smtp", "mailfrom"),
            Some(&PValue::Address { local_part: Some(r#"a"; dmarc=pass\"#.into()), domain: "evil.example".into() })
        );
        // A reason in quotes holding what looks like a result.
        let ar = ok("mail.ietf.org; dkim=fail reason=\"x; dmarc=pass\" header.d=3gpp.org");
        assert_eq!(ar.results[0].reason.as_deref(), Some("x; dmarc=pass"));
        // Non-ASCII text in comments and quoted strings (RFC 6532).
        ok("mail.ietf.org; dkim=pass (clé vérifiée) header.d=3gpp.org header.x=\"ß\"");
    }

    #[test]
    fn what_does_not_fit_the_grammar_is_refused() {
        for value in [
            "",
            "   ",
            "mail.ietf.org",
            "mail.ietf.org;",
            "mail.ietf.org; dmarc=pass header.from=3gpp.org;",
            "mail.ietf.org; dmarc=pass;; dkim=pass",
            "mail.ietf.org; dmarc",
            "mail.ietf.org; dmarc=",
            "mail.ietf.org; dmarc=pass header.from",
            "mail.ietf.org; dmarc=pass header.from=",
            "mail.ietf.org; dmarc=pass header=3gpp.org",
            "mail.ietf.org; dmarc=pass action=none header.from=3gpp.org",
            "mail.ietf.org; dmarc=passheader.from=3gpp.org",
            "mail.ietf.org; dmarc=pass header.from=3gpp.org reason=x",
            "mail.ietf.org; dmarc=pass reason=a reason=b",
            "mail.ietf.org; dmarc=pass header.from=\"3gpp.org",
            "mail.ietf.org; dmarc=pass (header.from=3gpp.org",
            "mail.ietf.org; dmarc=pass header.from=3gpp.org)",
            "mail.ietf.org; dmarc=pass header.b=ab/cd",
            "mail.ietf.org; spf=pass smtp.mailfrom=a@localhost",
            "mail.ietf.org; spf=pass smtp.mailfrom=a@-x.example",
            "mail.ietf.org; spf=pass smtp.mailfrom=a..b@x.example",
            "mail.ietf.org; spf=pass smtp.mailfrom=a @x.example",
            "mail.ietf.org; none; dkim=pass",
            "mail.ietf.org; dkim=pass; none",
            "mail.ietf.org x; none",
            "mail.ietf.org; dkim/x=pass",
            "mail.ietf.org; dkim-=pass",
            "mail.ietf.org; dkim=pass header.d=a\u{1}b",
            "mail.ietf.org; dkim=pass header.d=\"a\\",
            "\"mail.ietf.org; dmarc=pass",
        ] {
            assert!(parse(value).is_err(), "{value:?} parsed: {:?}", parse(value));
        }
    }

    #[test]
    fn the_work_is_bounded() {
        let long = format!("mail.ietf.org; dkim=pass header.d=3gpp.org ({})", "x".repeat(MAX_FIELD_LEN));
        assert_eq!(parse(&long).map_err(|e| e.what), Err("the field is longer than 16 KiB"));
        let many = format!("mail.ietf.org{}", "; dkim=pass".repeat(MAX_RESULTS + 1));
        assert_eq!(parse(&many).map_err(|e| e.what), Err("the field has too many results"));
        assert!(parse(&format!("mail.ietf.org{}", "; dkim=pass".repeat(MAX_RESULTS))).is_ok());
        let props = format!("mail.ietf.org; dkim=pass{}", " header.d=x".repeat(MAX_PROPERTIES + 1));
        assert_eq!(parse(&props).map_err(|e| e.what), Err("a result has too many properties"));
        let deep =
            format!("mail.ietf.org {}{}; none", "(".repeat(MAX_COMMENT_DEPTH + 1), ")".repeat(MAX_COMMENT_DEPTH + 1));
        assert_eq!(parse(&deep).map_err(|e| e.what), Err("comments are nested too deep"));
        // Unclosed comments and quotes are found in one pass, not by backtracking.
        assert!(parse(&format!("mail.ietf.org; dkim=pass header.d=\"{}", "(".repeat(MAX_FIELD_LEN - 64))).is_err());
    }

    #[test]
    fn the_authserv_id_alone() {
        assert_eq!(authserv_id(" (x) Mail.IETF.org; dmarc=pass").as_deref(), Some("mail.ietf.org"));
        assert_eq!(authserv_id("\"mail.ietf.org\"; none").as_deref(), Some("mail.ietf.org"));
        // Microsoft's fields begin with a result, not an authserv-id: not one we trust.
        assert_eq!(authserv_id("spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=x.example").as_deref(), Some("spf"));
        assert_eq!(authserv_id("; dmarc=pass"), None);
        assert_eq!(authserv_id("(unclosed mail.ietf.org; dmarc=pass"), None);
    }

    #[test]
    fn the_trusted_block_at_the_top() {
        let trusted = ["mail.ietf.org".to_string()];
        let ids = |fields: &[(&str, &str)], own: usize| -> Vec<String> {
            trusted_block(fields.iter().copied(), &trusted, own)
                .into_iter()
                .map(|f| {
                    format!(
                        "{}:{}",
                        f.authserv_id,
                        f.parsed.map(|a| summary(&a).join(",")).unwrap_or_else(|e| e.to_string())
                    )
                })
                .collect()
        };
        let ours = ("received", "from x by mail.ietf.org (Postfix); Tue, 3 Nov 2026 12:12:49 +0000");
        let theirs = ("received", "from y by mx.evil.example; Tue, 3 Nov 2026 12:12:48 +0000");
        let dkim = ("authentication-results", "mail.ietf.org; dkim=pass header.d=3gpp.org");
        let dmarc = ("authentication-results", "mail.ietf.org; dmarc=pass header.from=3gpp.org");
        let delivery =
            [("return-path", "<a@3gpp.org>"), ("delivered-to", "s@ietf.org"), ("x-original-to", "s@ietf.org")];
        // OpenDKIM's and OpenDMARC's fields below our Received, under the delivery agent's.
        let mut top = delivery.to_vec();
        top.extend([ours, dkim, dmarc, theirs]);
        assert_eq!(
            ids(&top, 1),
            ["mail.ietf.org:dkim=pass header.d=3gpp.org", "mail.ietf.org:dmarc=pass header.from=3gpp.org"]
        );
        // Our MTA added none: the sender's forged copy below its own Received is not read.
        assert!(ids(&[ours, theirs, dmarc], 1).is_empty());
        assert!(ids(&[ours, theirs, dmarc], 0).is_empty());
        // Two of our own Received when configured so; not a third.
        assert_eq!(ids(&[ours, ours, dmarc], 2).len(), 1);
        assert!(ids(&[ours, ours, dmarc], 1).is_empty());
        assert!(ids(&[ours, dmarc], 0).is_empty(), "no Received of ours is expected");
        assert_eq!(ids(&[dmarc], 0).len(), 1);
        // The block ends at an untrusted authserv-id, at a Received, at any other field.
        let other = ("authentication-results", "mx.evil.example; dmarc=pass header.from=3gpp.org");
        assert_eq!(ids(&[ours, dkim, other, dmarc], 1).len(), 1);
        assert!(ids(&[ours, other, dmarc], 1).is_empty());
        assert_eq!(ids(&[ours, dkim, ours, dmarc], 1).len(), 1);
        assert_eq!(ids(&[ours, dkim, ("from", "a@3gpp.org"), dmarc], 1).len(), 1);
        assert_eq!(ids(&[ours, dkim, ("return-path", "<x@y.example>"), dmarc], 1).len(), 1);
        assert!(ids(&[("x-spam", "no"), dmarc], 1).is_empty());
        // An unparsable trusted field is part of the block, to fail closed.
        let broken = ("authentication-results", "mail.ietf.org; dmarc=pass header.from=\"3gpp.org");
        assert_eq!(ids(&[ours, dkim, broken], 1)[1], "mail.ietf.org:a quoted string is not closed (at byte 38)");
        // Field names in any case.
        assert_eq!(ids(&[("Received", ours.1), ("Authentication-Results", dmarc.1)], 1).len(), 1);
    }
}
