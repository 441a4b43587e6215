//! Dependencies between modules point one way: no cycle among the modules of any folder.
//!
//! Every `use crate::…`, `use super::…` (brace groups expanded) and inline `crate::…` /
//! `super::…` path of every file under `src/` (test modules excluded) is an edge from the file's
//! module to the longest module the path names. An edge between A and B counts between the two
//! children of their deepest common ancestor that contain them (so `ops::resize → exec` is
//! `ops → exec`, and `cli::oneshot → cli::mfkd` stays as it is); an edge to one's own ancestor
//! (a child using its parent's items) is not a dependency between siblings. Any strongly
//! connected group of two or more siblings is a cycle, and the test names it with the edges that
//! make it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path (`["ops", "resize"]`), an edge between two, and the edges with where each was seen.
type Module = Vec<String>;
type Edges = BTreeSet<(Module, Module)>;
type Via = BTreeMap<(Module, Module), String>;
/// A cycle: the parent module, the siblings in it, the edges among them.
type Cycle = (Module, Vec<Module>, Vec<String>);

/// Module path of a file under `src/` (`src/ops/mod.rs` → `ops`, `src/lib.rs` → ``).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text without comments, string literals and `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i + 1 < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'r' && i + 1 < b.len() && (b[i + 1] == b'#' || b[i + 1] == b'"') && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
        {
            // Raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                j += 1;
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            } else {
                out.push(b[i] as char);
                i += 1;
            }
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Expands a use tree (`crate::a::{b, c::{d, e}}`) into full paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else { return vec![tree.split(" as ").next().unwrap_or("").trim().to_string()] };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).flat_map(|p| expand(p).into_iter().map(|s| format!("{prefix}{s}"))).collect()
}

/// Every path the code names that starts with `crate::`, `super::` or `self::`.
fn paths_in(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // use statements, brace groups expanded.
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        rest = &rest[i + 4..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(end) = rest.find(';') {
            out.extend(expand(&rest[..end]));
        }
    }
    // Inline paths.
    for root in ["crate::", "super::", "self::"] {
        let mut rest = code;
        while let Some(i) = rest.find(root) {
            let before = rest[..i].chars().last();
            let tail = &rest[i..];
            let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                out.push(tail[..end].trim_end_matches(':').to_string());
            }
            rest = &rest[i + root.len()..];
        }
    }
    out
}

/// The module a path names, resolved against `from` (the file's module, `is_dir_module`: a
/// mod.rs or lib.rs, whose `super` is one level up from the folder).
fn target(path: &str, from: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let segs: Vec<&str> = path.split("::").map(str::trim).filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = Vec::new();
    let mut k = 0;
    match segs.first() {
        Some(&"crate") => k = 1,
        Some(&"super") | Some(&"self") => {
            base = from.to_vec();
            while k < segs.len() && (segs[k] == "super" || segs[k] == "self") {
                if segs[k] == "super" {
                    base.pop()?;
                }
                k += 1;
            }
        }
        _ => return None,
    }
    let mut best = base.clone();
    let mut cur = base;
    for s in &segs[k..] {
        cur.push(s.to_string());
        if modules.contains(&cur) {
            best = cur.clone();
        } else {
            break;
        }
    }
    Some(best)
}

/// Cycles among siblings: (parent, members, edges inside the group).
fn cycles(edges: &Edges) -> Vec<Cycle> {
    // Sibling edges per parent.
    let mut by_parent: BTreeMap<Module, Edges> = BTreeMap::new();
    for (a, b) in edges {
        let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        if common == a.len() || common == b.len() {
            continue; // one is the other's ancestor
        }
        let (ca, cb) = (a[..=common].to_vec(), b[..=common].to_vec());
        by_parent.entry(a[..common].to_vec()).or_default().insert((ca, cb));
    }
    let mut out = Vec::new();
    for (parent, es) in by_parent {
        let nodes: BTreeSet<Vec<String>> = es.iter().flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
        let reach = |from: &Vec<String>| -> BTreeSet<Vec<String>> {
            let mut seen = BTreeSet::new();
            let mut stack = vec![from.clone()];
            while let Some(n) = stack.pop() {
                for (a, b) in &es {
                    if a == &n && seen.insert(b.clone()) {
                        stack.push(b.clone());
                    }
                }
            }
            seen
        };
        let reaches: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = nodes.iter().map(|n| (n.clone(), reach(n))).collect();
        let mut done = BTreeSet::new();
        for n in &nodes {
            if done.contains(n) || !reaches[n].contains(n) {
                continue;
            }
            let group: Vec<Vec<String>> = nodes.iter().filter(|m| reaches[n].contains(*m) && reaches[*m].contains(n)).cloned().collect();
            done.extend(group.iter().cloned());
            let inside: Vec<String> = es
                .iter()
                .filter(|(a, b)| group.contains(a) && group.contains(b))
                .map(|(a, b)| format!("{} → {}", a.join("::"), b.join("::")))
                .collect();
            out.push((parent.clone(), group, inside));
        }
    }
    out
}

/// File-level dependency edges of the crate rooted at `src`: (from module, to module, via path).
fn edges_of(src: &Path) -> (Edges, Via) {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    // Modules compiled only for tests (`#[cfg(test)] mod x;`) are no dependencies of the crate.
    let mut test_only: Vec<Vec<String>> = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for w in lines.windows(2) {
            if w[0] == "#[cfg(test)]" {
                let decl = w[1].trim_start_matches("pub(crate) ").trim_start_matches("pub ");
                if let Some(name) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                    let mut m = module_of(src, f);
                    m.push(name.trim().to_string());
                    test_only.push(m);
                }
            }
        }
    }
    files.retain(|f| !f.components().any(|c| c.as_os_str() == "shim"));
    files.retain(|f| !test_only.iter().any(|t| module_of(src, f).starts_with(t)));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges = BTreeSet::new();
    let mut via = BTreeMap::new();
    for f in &files {
        let from = module_of(src, f);
        let is_dir = matches!(f.file_stem().and_then(|s| s.to_str()), Some("mod" | "lib" | "main"));
        // `super` of a file module a/b.rs is `a`; of a folder module a/mod.rs it is a's parent:
        // both are "pop one from the module path", which `target` does.
        let _ = is_dir;
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for p in paths_in(&code) {
            if let Some(t) = target(&p, &from, &modules) {
                if t != from && !t.is_empty() {
                    via.entry((from.clone(), t.clone())).or_insert_with(|| format!("{} ({p})", f.display()));
                    edges.insert((from.clone(), t));
                }
            }
        }
    }
    (edges, via)
}

#[test]
fn no_module_cycles_in_the_crate() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let (edges, via) = edges_of(&src);
    assert!(edges.len() > 50, "the scan found only {} edges: the parser is broken", edges.len());
    let found = cycles(&edges);
    let report: Vec<String> = found
        .iter()
        .map(|(parent, group, inside)| {
            let names: Vec<String> = group.iter().map(|g| g.join("::")).collect();
            let examples: Vec<String> = edges
                .iter()
                .filter(|(a, b)| group.iter().any(|g| a.starts_with(g)) && group.iter().any(|g| b.starts_with(g) && !a.starts_with(g)))
                .filter_map(|e| via.get(e).cloned())
                .take(6)
                .collect();
            format!(
                "in '{}': {{{}}} via {}\n    e.g. {}",
                parent.join("::"),
                names.join(", "),
                inside.join("; "),
                examples.join("\n         ")
            )
        })
        .collect();
    assert!(found.is_empty(), "module cycles:\n  {}", report.join("\n  "));
}

#[test]
fn a_planted_cycle_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for (file, text) in [
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        ("a/mod.rs", "pub mod x;\npub mod y;\nuse crate::b::thing;\n"),
        ("a/x.rs", "use super::y::f; // x → y\n"),
        ("a/y.rs", "pub fn f() { super::x::g() } // y → x: a cycle inside a\n#[cfg(test)]\nmod tests { use crate::c::z; }\n"),
        ("b.rs", "use crate::{c::{self, k}, a::x as q};\n"),
        ("c.rs", "// use crate::b; (a comment: no edge)\nconst S: &str = \"crate::b::x\";\n#[cfg(test)]\nmod checks;\n"),
        ("c/checks.rs", "use crate::b; // compiled for tests only: no edge\n"),
    ] {
        let p = src.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let (edges, _) = edges_of(&src);
    let has = |a: &str, b: &str| {
        let m = |s: &str| s.split("::").filter(|x| !x.is_empty()).map(String::from).collect::<Vec<_>>();
        edges.contains(&(m(a), m(b)))
    };
    assert!(has("a::x", "a::y") && has("a::y", "a::x") && has("a", "b") && has("b", "c") && has("b", "a::x"), "{edges:?}");
    assert!(!has("c", "b"), "comments and strings are not dependencies");
    assert!(!has("a::y", "c"), "test modules are not dependencies");
    assert!(!has("c::checks", "b"), "test-only files are not dependencies");
    let found = cycles(&edges);
    let groups: Vec<(String, Vec<String>)> =
        found.iter().map(|(p, g, _)| (p.join("::"), g.iter().map(|x| x.join("::")).collect())).collect();
    // a::x ↔ a::y inside a; and a → b → a (b uses a::x, which counts as a) at the top.
    assert!(groups.contains(&("a".into(), vec!["a::x".into(), "a::y".into()])), "{groups:?}");
    assert!(groups.contains(&("".into(), vec!["a".into(), "b".into()])), "{groups:?}");
    assert_eq!(groups.len(), 2, "{groups:?}");
}
