//! The layering ARCHITECTURE.md promises, checked so that it cannot rot:
//! - no import cycle between the modules (files) of any crate of the workspace;
//! - the attachment parsers run only in the confined worker (`extract_text` is called only in
//!   `src/isolate.rs`);
//! - only the daemon spawns tasks (`tokio::spawn` and `JoinSet` only under `src/daemon/`).
//!
//! The crate graph itself (only the store has SQLite; the core has no runtime, clock or
//! randomness) is checked by `scripts/test` with `cargo tree` and the core's clippy.
//!
//! A module uses another when its code (comments and unit tests excluded) names it by a
//! `crate::` or `super::` path, as `use` or inline; a path is resolved to the deepest module
//! file it names. A parent naming its own child modules (`child::f`) is how Rust splits one
//! module into files, not an import, and is not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The library source directories of the workspace: `src/` and each `crates/*/src/`.
fn source_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![root().join("src")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .expect("crates/")
        .map(|e| e.expect("entry").path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    crates.sort();
    dirs.extend(crates);
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file is: `lib.rs` is the root (`[]`), `a/mod.rs` and `a.rs` are `[a]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    match last.as_str() {
        "lib.rs" | "main.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_string()),
    }
    parts
}

/// The code of a file without its comments (a doc link is not a use) and its unit tests (the
/// `#[cfg(test)] mod tests` that ends it).
fn code_without_tests(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Every path the code starts with `crate::` or `super::`, as its segments (`use` groups
/// `crate::{a, b::c}` give one path per member).
fn paths(code: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            // Not the tail of a longer word (`liaisond_crate::`) or of a path (`x::super::`).
            if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let head = start.trim_end_matches("::").to_string();
            let rest = &code[from..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = matching_brace(group);
                for member in split_top_level(&group[..end]) {
                    found.push((head.clone(), segments(member)));
                }
            } else {
                found.push((head, segments(rest)));
            }
        }
    }
    found
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// `a::b::C` → `[a, b, C]`; stops at the first character that is not part of a path.
fn segments(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        out.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) if !next.starts_with('{') => rest = next,
            _ => break,
        }
    }
    out
}

/// The modules of one crate and which of them each one uses.
fn graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        if file.file_name().is_some_and(|n| n == "main.rs") {
            continue;
        }
        let me = module_of(src, file);
        let text = std::fs::read_to_string(file).expect("read");
        for (head, segs) in paths(&code_without_tests(&text)) {
            let mut base = if head == "crate" {
                Vec::new()
            } else {
                // `super` of `a::b` (in a/b.rs) is `a`.
                let mut parent = me.clone();
                parent.pop();
                parent
            };
            let mut segs = segs.as_slice();
            while let Some(rest) = segs.strip_prefix(&["super".to_string()][..]) {
                base.pop();
                segs = rest;
            }
            // The deepest module the path names.
            let mut target = base.clone();
            for s in segs {
                let mut deeper = target.clone();
                deeper.push(s.clone());
                if !modules.contains(&deeper) {
                    break;
                }
                target = deeper;
            }
            if target != me {
                edges.entry(me.clone()).or_default().insert(target);
            }
        }
        edges.entry(me).or_default();
    }
    edges
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        found: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Vec<String>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn name(m: &[String]) -> String {
    if m.is_empty() { "(root)".into() } else { m.join("::") }
}

#[test]
fn no_module_import_cycle_in_any_crate() {
    let mut report = Vec::new();
    for src in source_dirs() {
        for cycle in cycles(&graph(&src)) {
            let names: Vec<String> = cycle.iter().map(|m| name(m)).collect();
            report.push(format!("{}: {}", src.display(), names.join(", ")));
        }
    }
    assert!(report.is_empty(), "modules that use each other (directly or around a cycle):\n{}", report.join("\n"));
}

#[test]
fn the_checker_finds_a_cycle() {
    // The checker itself: two modules naming each other, one through `super::`.
    let module = |s: &str| -> Vec<String> { s.split("::").map(str::to_string).collect() };
    let mut edges = BTreeMap::new();
    edges.insert(module("a"), BTreeSet::from([module("a::b")]));
    edges.insert(module("a::b"), BTreeSet::from([module("a")]));
    edges.insert(module("c"), BTreeSet::from([module("a")]));
    assert_eq!(cycles(&edges).len(), 1);
    let found = paths("use crate::{a::b, c};\nuse super::super::d::E;\nlet x = crate::f::g(1);");
    let found: Vec<String> = found.iter().map(|(h, s)| format!("{h}::{}", s.join("::"))).collect();
    assert_eq!(found, ["crate::a::b", "crate::c", "crate::f::g", "super::super::d::E"]);
}

/// The files under `dir` whose code (tests excluded) contains `needle`, relative to the root.
fn files_naming(dir: &Path, needle: &str) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    files
        .into_iter()
        .filter(|f| code_without_tests(&std::fs::read_to_string(f).expect("read")).contains(needle))
        .map(|f| f.strip_prefix(root()).expect("under the root").display().to_string())
        .collect()
}

#[test]
fn attachment_parsers_run_only_in_the_confined_worker() {
    let callers: BTreeSet<String> = source_dirs()
        .iter()
        .flat_map(|d| files_naming(d, "extract_text("))
        .filter(|f| !f.starts_with("crates/extract/"))
        .collect();
    assert_eq!(callers, BTreeSet::from(["src/isolate.rs".to_string()]));
}

#[test]
fn only_the_daemon_spawns_tasks() {
    for needle in ["tokio::spawn(", "JoinSet"] {
        for dir in source_dirs() {
            for file in files_naming(&dir, needle) {
                assert!(file.starts_with("src/daemon/"), "{file} names `{needle}`: only src/daemon/ spawns tasks");
            }
        }
    }
}
