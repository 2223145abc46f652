//! The texts liaisond sends (acknowledgement, notification, alert) are templates that operators
//! edit: `config/templates/*.txt`. A template is a header section (`Subject: ...`), a blank
//! line, and the body. Inside both:
//!
//! - `{{name}}` is replaced by the value of `name` (a multi-line value keeps its lines);
//! - `{{#if name}} ... {{else}} ... {{/if}}` keeps the first part when `name` is set and not
//!   empty, else the second (`{{else}}` is optional; blocks may nest).
//!
//! A template is checked when it is loaded: an unknown name, an unclosed block or a missing
//! `Subject:` is an error naming the file and line, so a typo fails at start-up, not when the
//! first statement arrives. Pure: no I/O (the caller reads the file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use liaisond_model::ConfigError;

/// A checked template.
#[derive(Debug, Clone)]
pub struct Template {
    pub path: PathBuf,
    subject: Vec<Node>,
    body: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Var(String),
    If { name: String, then: Vec<Node>, otherwise: Vec<Node> },
}

/// The values a template is rendered with.
pub type Values = BTreeMap<&'static str, String>;

/// What a rendered template gives: the subject and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

impl Template {
    /// Parses `text` (read from `path`), accepting only the names in `known`.
    pub fn parse(text: &str, path: &Path, known: &[&str]) -> Result<Template, ConfigError> {
        let err = |line: usize, message: String| ConfigError {
            file: path.to_path_buf(),
            line: Some(line),
            column: None,
            key: None,
            message,
        };
        let text = text.replace("\r\n", "\n");
        let (head, body, body_line) = match text.split_once("\n\n") {
            Some((h, b)) => (h, b, h.lines().count() + 2),
            None => return Err(err(1, "a template is `Subject: ...`, a blank line, then the body".into())),
        };
        let mut subject = None;
        for (i, line) in head.lines().enumerate() {
            match line.split_once(':') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("subject") => {
                    subject = Some(parse_nodes(value.trim(), i + 1, known).map_err(|(l, m)| err(l, m))?);
                }
                _ => {
                    return Err(err(
                        i + 1,
                        format!("`{line}`: only a `Subject:` line may come before the blank line that starts the body"),
                    ));
                }
            }
        }
        let subject = subject.ok_or_else(|| err(1, "the template has no `Subject:` line".into()))?;
        let body = parse_nodes(body, body_line, known).map_err(|(l, m)| err(l, m))?;
        Ok(Template { path: path.to_path_buf(), subject, body })
    }

    /// Renders the template. A name without a value renders as nothing.
    pub fn render(&self, values: &Values) -> Rendered {
        let mut subject = String::new();
        render_nodes(&self.subject, values, &mut subject);
        // A subject is one line, whatever the values held.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut body = String::new();
        render_nodes(&self.body, values, &mut body);
        Rendered { subject, body: tidy(&body) }
    }
}

/// Drops trailing spaces and runs of more than one blank line (left by empty blocks), and ends
/// the text with exactly one newline.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn render_nodes(nodes: &[Node], values: &Values, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Var(name) => out.push_str(values.get(name.as_str()).map_or("", String::as_str)),
            Node::If { name, then, otherwise } => {
                let set = values.get(name.as_str()).is_some_and(|v| !v.trim().is_empty());
                render_nodes(if set { then } else { otherwise }, values, out);
            }
        }
    }
}

/// What a `{{...}}` tag is.
enum Tag<'a> {
    Var(&'a str),
    If(&'a str),
    Else,
    End,
}

fn parse_nodes(text: &str, first_line: usize, known: &[&str]) -> Result<Vec<Node>, (usize, String)> {
    // A stack of open blocks: (name, then-part, else-part, in-else, line).
    struct Open {
        name: String,
        then: Vec<Node>,
        otherwise: Vec<Node>,
        in_else: bool,
        line: usize,
    }
    let mut root: Vec<Node> = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut rest = text;
    let mut line = first_line;
    fn current<'s>(root: &'s mut Vec<Node>, stack: &'s mut [Open]) -> &'s mut Vec<Node> {
        match stack.last_mut() {
            Some(o) if o.in_else => &mut o.otherwise,
            Some(o) => &mut o.then,
            None => root,
        }
    }
    while let Some(start) = rest.find("{{") {
        let (before, after) = rest.split_at(start);
        if !before.is_empty() {
            current(&mut root, &mut stack).push(Node::Text(before.to_string()));
        }
        line += before.matches('\n').count();
        let Some(end) = after.find("}}") else {
            return Err((line, "`{{` is not closed with `}}`".into()));
        };
        let inner = after[2..end].trim();
        let tag = if let Some(name) = inner.strip_prefix("#if ") {
            Tag::If(name.trim())
        } else if inner == "else" {
            Tag::Else
        } else if inner == "/if" {
            Tag::End
        } else {
            Tag::Var(inner)
        };
        let check = |name: &str| {
            if known.contains(&name) {
                Ok(())
            } else {
                Err((line, format!("unknown name `{name}` (known: {})", known.join(", "))))
            }
        };
        match tag {
            Tag::Var(name) => {
                check(name)?;
                current(&mut root, &mut stack).push(Node::Var(name.to_string()));
            }
            Tag::If(name) => {
                check(name)?;
                stack.push(Open {
                    name: name.to_string(),
                    then: Vec::new(),
                    otherwise: Vec::new(),
                    in_else: false,
                    line,
                });
            }
            Tag::Else => match stack.last_mut() {
                Some(o) if !o.in_else => o.in_else = true,
                _ => return Err((line, "`{{else}}` outside an `{{#if}}` block".into())),
            },
            Tag::End => {
                let Some(o) = stack.pop() else {
                    return Err((line, "`{{/if}}` without an `{{#if}}`".into()));
                };
                current(&mut root, &mut stack).push(Node::If { name: o.name, then: o.then, otherwise: o.otherwise });
            }
        }
        line += after[..end].matches('\n').count();
        rest = &after[end + 2..];
    }
    if let Some(o) = stack.last() {
        return Err((o.line, format!("`{{{{#if {}}}}}` is not closed with `{{{{/if}}}}`", o.name)));
    }
    if !rest.is_empty() {
        current(&mut root, &mut stack).push(Node::Text(rest.to_string()));
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Template, ConfigError> {
        Template::parse(text, Path::new("t.txt"), &["a", "b", "list"])
    }

    fn values(pairs: &[(&'static str, &str)]) -> Values {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn renders_values_and_blocks() {
        let t =
            parse("Subject: [{{a}}] hello\n\nDear {{b}},\n{{#if a}}A is {{a}}.{{else}}No A.{{/if}}\n{{list}}\nBye\n")
                .unwrap();
        let r = t.render(&values(&[("a", "1"), ("b", "you"), ("list", "- x\n- y")]));
        assert_eq!(r.subject, "[1] hello");
        assert_eq!(r.body, "Dear you,\nA is 1.\n- x\n- y\nBye\n");
        let r = t.render(&values(&[("b", "you")]));
        assert_eq!(r.subject, "[] hello");
        assert_eq!(r.body, "Dear you,\nNo A.\n\nBye\n");
    }

    #[test]
    fn nested_blocks_and_blank_lines_tidied() {
        let t = parse("Subject: s\n\n{{#if a}}\n{{#if b}}\nboth\n{{/if}}\n\n\n{{/if}}\nend\n").unwrap();
        assert_eq!(t.render(&values(&[("a", "1"), ("b", "1")])).body, "both\n\nend\n");
        assert_eq!(t.render(&values(&[("a", "1")])).body, "end\n");
    }

    #[test]
    fn subject_is_one_line() {
        let t = parse("Subject: Receipt of \"{{a}}\"\n\nx\n").unwrap();
        assert_eq!(t.render(&values(&[("a", "two\r\nlines")])).subject, "Receipt of \"two lines\"");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("Subject: s\n\nline\n{{nope}}\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().contains("unknown name `nope`"), "{e}");
        let e = parse("Subject: s\n\n\n{{#if a}}\nx\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().contains("not closed"), "{e}");
        let e = parse("Subject: s\n\n{{/if}}").unwrap_err();
        assert!(e.to_string().contains("without"), "{e}");
        let e = parse("Subject: {{zz}}\n\nx").unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = parse("Subject: s\nFrom: x\n\nbody").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(parse("no blank line").is_err());
        assert!(parse("X: s\n\nbody").is_err());
        let e = parse("Subject: s\n\n{{a").unwrap_err();
        assert!(e.to_string().contains("not closed"), "{e}");
    }
}
