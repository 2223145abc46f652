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
    let mut a: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
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
