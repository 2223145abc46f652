//! E-mail addresses, as compared everywhere.

/// Normalises an address for comparison: the part inside `<...>` if any, without `mailto:`,
/// without whitespace, lower case, without a trailing dot. `None` when it is not an address
/// (no `@`, nothing before or after it).
pub fn normalize_address(s: &str) -> Option<String> {
    let s = s.trim();
    let s = match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    };
    // ASCII only: Unicode lower-casing maps look-alikes onto ASCII (the Kelvin sign K to k), and
    // a look-alike must stay another address.
    let mut a: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix("mailto:") {
        a = rest.to_string();
    }
    let a = a.trim_end_matches('.');
    let (local, domain) = a.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some(a.to_string())
}

/// The key acknowledgement limits count by: the normalised address with a `+tag` removed from
/// its local part, so that `victim+1@x.org` and `Victim+2@x.org` count as `victim@x.org` (the
/// per-address limit must not be escaped by varying the tag).
pub fn address_key(s: &str) -> Option<String> {
    let a = normalize_address(s)?;
    let (local, domain) = a.rsplit_once('@')?;
    let base = local.split_once('+').map_or(local, |(base, _)| base);
    let base = if base.is_empty() { local } else { base };
    Some(format!("{base}@{domain}"))
}

/// The domain of an address, normalised (lower case), or `None` when it is not an address.
pub fn address_domain(s: &str) -> Option<String> {
    normalize_address(s).and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_stay_other_addresses() {
        // Regression (issue 13): Unicode lower-casing turned the Kelvin sign into an ASCII k,
        // so `a@no\u{212a}ia.com` compared equal to `a@nokia.com`.
        assert_ne!(normalize_address("a@no\u{212a}ia.com").as_deref(), Some("a@nokia.com"));
        assert_ne!(address_domain("a@NO\u{212a}IA.COM").as_deref(), Some("nokia.com"));
        assert_eq!(normalize_address("A@NOKIA.COM").as_deref(), Some("a@nokia.com"));
    }

    #[test]
    fn keys_drop_the_tag_and_the_case() {
        assert_eq!(address_key("Victim+1@X.org").as_deref(), Some("victim@x.org"));
        assert_eq!(address_key("<victim+a+b@x.org>").as_deref(), Some("victim@x.org"));
        assert_eq!(address_key("victim@x.org").as_deref(), Some("victim@x.org"));
        // A local part that is only a tag keeps it: there is nothing else to count by.
        assert_eq!(address_key("+1@x.org").as_deref(), Some("+1@x.org"));
        assert_eq!(address_key("not an address"), None);
        assert_eq!(address_domain("Jane <Jane@Sub.Example.ORG>").as_deref(), Some("sub.example.org"));
    }
}
