//! The configuration error every file liaisond reads reports (the configuration, the
//! relationships data, the templates): the file, the line and column, and the dotted key.

use std::path::{Path, PathBuf};

/// A configuration error, located in the file.
#[derive(Debug, thiserror::Error)]
#[error("{file}{location}: {message}", location = self.location())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the offending key, e.g. `imap[0].tls`.
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!(":{l}:{c}"),
            (Some(l), None) => format!(":{l}"),
            _ => String::new(),
        }
    }

    /// An error about the whole file (it cannot be read, a value spans it).
    pub fn whole_file(file: &Path, message: String) -> Self {
        ConfigError { file: file.to_path_buf(), line: None, column: None, key: None, message }
    }
}

/// A TOML syntax or type error (from serde), located in the file. Shared by every TOML file
/// liaisond reads (the configuration, the relationships data).
pub fn syntax_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let (line, column) = e.span().map(|span| line_col(text, span.start)).unzip();
    let mut message = e.message().trim().to_string();
    // serde quotes the value it could not take (`invalid type: integer `123``): never a
    // password's, whatever its type.
    if message.starts_with("invalid")
        && let Some(span) = e.span()
        && names_a_password(text, span.start)
    {
        message = hide_quoted(&message);
    }
    // A type error (`per_hour = "x"`) is about one key: name it, as a validation error does.
    let key = e.span().and_then(|span| key_at(text, span.start));
    if let Some(k) = &key {
        message = format!("`{k}`: {message}");
    }
    ConfigError { file: path.to_path_buf(), line, column, key, message }
}

/// The dotted key (`imap[0].port`) whose value holds byte `offset`, when the text parses as
/// TOML (a type error: the syntax was fine).
fn key_at(text: &str, offset: usize) -> Option<String> {
    // The deepest value holding `offset`: a child first, else the table or array itself.
    fn within(value: &toml::Spanned<toml::de::DeValue<'_>>, offset: usize, path: &mut String) -> bool {
        let child = match value.get_ref() {
            toml::de::DeValue::Table(table) => table.iter().any(|(k, v)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k.get_ref());
                if within(v, offset, path) {
                    return true;
                }
                path.truncate(len);
                false
            }),
            toml::de::DeValue::Array(items) => items.iter().enumerate().any(|(i, v)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if within(v, offset, path) {
                    return true;
                }
                path.truncate(len);
                false
            }),
            _ => false,
        };
        child || value.span().contains(&offset)
    }
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut path = String::new();
    let root = toml::Spanned::new(0..text.len(), toml::de::DeValue::Table(doc.into_inner()));
    (within(&root, offset, &mut path) && !path.is_empty()).then_some(path)
}

/// Whether the line up to `offset` names a password key (`password = …`, `{ password = … }`).
fn names_a_password(text: &str, offset: usize) -> bool {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |n| n + 1);
    text.get(start..offset).is_some_and(|line| line.to_ascii_lowercase().contains("password"))
}

/// `message` with every `quoted` part replaced by `(value hidden)`.
fn hide_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, part) in message.split('`').enumerate() {
        out.push_str(if i % 2 == 1 { "(value hidden)" } else { part });
    }
    out
}

/// A validation error about the value at `key` (or, when that key is absent, its deepest
/// existing parent), naming the file, line, column and dotted key.
pub fn key_error(text: &str, path: &Path, key: &[Seg<'_>], message: impl Into<String>) -> ConfigError {
    let dotted = key.iter().fold(String::new(), |mut acc, s| {
        match s {
            Seg::Key(k) => {
                if !acc.is_empty() {
                    acc.push('.');
                }
                acc.push_str(k);
            }
            Seg::Index(i) => acc.push_str(&format!("[{i}]")),
        }
        acc
    });
    let (line, column) = locate(text, key).map(|offset| line_col(text, offset)).unzip();
    ConfigError {
        file: path.to_path_buf(),
        line,
        column,
        key: Some(dotted.clone()),
        message: format!("`{dotted}`: {}", message.into()),
    }
}

/// Byte offset where the value at `key` (or its deepest existing ancestor) starts.
fn locate(text: &str, key: &[Seg<'_>]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut best = None;
    let mut current: Option<&toml::Spanned<toml::de::DeValue<'_>>> = None;
    for (i, seg) in key.iter().enumerate() {
        let next = match (i, seg, current) {
            (0, Seg::Key(k), _) => doc.get_ref().get(*k),
            (_, Seg::Key(k), Some(v)) => v.get_ref().get(*k),
            (_, Seg::Index(n), Some(v)) => v.get_ref().get(*n),
            _ => None,
        };
        match next {
            Some(v) => {
                best = Some(v.span().start);
                current = Some(v);
            }
            None => break,
        }
    }
    best
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}
