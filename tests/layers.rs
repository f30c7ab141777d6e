//! The layer rules of docs/design.md §"Layers", checked from the code's own `crate::` paths (so a
//! change that breaks one fails `make test`, not a review):
//!
//! * no import cycle between the top-level modules of `src/`;
//! * only `transform` imports the libvips adapter (`vips`), and the adapter imports no module of
//!   the crate (it knows no options or transform types);
//! * only `storage` builds S3 clients (`rusty_s3`) for the crate;
//! * the pure request steps (`url`, `signature`, `options`, `negotiate`) import neither the HTTP
//!   layer nor the top-level error, nor any I/O or web-framework crate (header reading stays at
//!   the edge), and only `http` (and `main.rs`) import `http`;
//! * `app` (the composition root) never imports `http`;
//! * no source file has over 600 lines of code (blank lines, comments and its `#[cfg(test)]`
//!   module not counted).
//!
//! Unit tests (`#[cfg(test)] mod tests`) are left out: they may reach across layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[path = "common/files.rs"]
mod files;

const MAX_CODE_LINES: usize = 600;
const PURE_STEPS: &[&str] = &["url", "signature", "options", "negotiate"];

/// The file's text without its unit-test module (by this repository's convention the last item,
/// introduced by `#[cfg(test)]` and `mod tests`).
fn without_tests(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let end = (0..lines.len())
        .find(|&i| {
            lines[i].trim() == "#[cfg(test)]"
                && lines.get(i + 1).is_some_and(|l| l.trim_start().starts_with("mod tests"))
        })
        .unwrap_or(lines.len());
    lines[..end].join("\n")
}

/// Code without comments (line comments and doc comments; block comments are not used here).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//"))
}

/// The top-level module a file of `src/` belongs to (`src/a.rs`, `src/a/…` → `a`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// The top-level modules a file names through `crate::` (also inside `use crate::{a, b::c}`).
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in code_lines(code) {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            // `imago::`-style paths from other crates and words such as `my_crate::` do not count.
            let before = rest[..i].chars().last();
            let after = &rest[i + "crate::".len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{a, b::{c, d}, e}`: the first segment of each top-level item.
                let mut depth = 0;
                let mut item_start = true;
                let mut name = String::new();
                for ch in group.chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            if !name.is_empty() {
                                out.insert(std::mem::take(&mut name));
                            }
                            item_start = true;
                        }
                        c if item_start && (c.is_alphanumeric() || c == '_') => name.push(c),
                        _ if !name.is_empty() => {
                            out.insert(std::mem::take(&mut name));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
                if !name.is_empty() {
                    out.insert(name);
                }
            } else {
                let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

struct Tree {
    /// Module → the modules it imports (itself left out).
    graph: BTreeMap<String, BTreeSet<String>>,
    /// File → code without its unit tests.
    files: Vec<(PathBuf, String)>,
}

fn tree() -> Tree {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let paths = files::rust_files(&src);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    for p in paths {
        let code = without_tests(&std::fs::read_to_string(&p).unwrap());
        if let Some(m) = module_of(&src, &p) {
            let mut deps = imports(&code);
            deps.remove(&m);
            graph.entry(m).or_default().extend(deps);
        }
        files.push((p, code));
    }
    // Only edges to modules that exist (`crate::Error` re-exports and the like name items).
    let names: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| names.contains(d));
    }
    Tree { graph, files }
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct S<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut S<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        let g = s.g;
        for w in g.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let l = s.low[w.as_str()].min(s.low[v]);
                s.low.insert(v, l);
            } else if s.on.contains(w.as_str()) {
                let l = s.index[w.as_str()].min(s.low[v]);
                s.low.insert(v, l);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = S {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The edges that tie a cycle, for the failure message.
fn ties(graph: &BTreeMap<String, BTreeSet<String>>, comp: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in comp {
        for b in &graph[a] {
            if comp.contains(b) {
                out.push(format!("{a} -> {b}"));
            }
        }
    }
    out
}

#[test]
fn the_checker_sees_imports_and_cycles() {
    let code =
        "use crate::a::B;\nuse crate::{c, d::{E, F}, g::H};\n// use crate::z;\nlet x = crate::k::f();\nmy_crate::q();";
    let got: Vec<String> = imports(code).into_iter().collect();
    assert_eq!(got, ["a", "c", "d", "g", "k"]);
    let g: BTreeMap<String, BTreeSet<String>> = [("a", &["b"][..]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect();
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    assert_eq!(without_tests("fn a() {}\n#[cfg(test)]\nmod tests {\n}\n"), "fn a() {}");
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let t = tree();
    let found: Vec<String> =
        cycles(&t.graph).iter().map(|c| format!("{c:?} tied by {:?}", ties(&t.graph, c))).collect();
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn only_transform_imports_the_libvips_adapter() {
    let t = tree();
    assert!(t.graph.contains_key("vips") && t.graph.contains_key("transform"), "{:?}", t.graph.keys());
    for (m, deps) in &t.graph {
        if deps.contains("vips") {
            assert_eq!(m, "transform", "{m} imports the libvips adapter");
        }
    }
    assert!(t.graph["vips"].is_empty(), "the adapter imports {:?}", t.graph["vips"]);
    for (path, code) in &t.files {
        let in_vips = path.components().any(|c| c.as_os_str() == "vips");
        if !in_vips {
            assert!(!code.contains("libvips::"), "{} uses libvips directly", path.display());
        }
    }
}

#[test]
fn only_storage_builds_s3_clients() {
    let t = tree();
    assert!(t.graph.contains_key("storage"));
    for (path, code) in &t.files {
        let in_storage = path.components().any(|c| c.as_os_str() == "storage");
        if !in_storage {
            assert!(!code.contains("rusty_s3"), "{} builds S3 requests itself", path.display());
        }
    }
}

#[test]
fn pure_request_steps_stay_pure_and_http_is_the_top() {
    let t = tree();
    for step in PURE_STEPS {
        let deps = &t.graph[*step];
        for banned in ["http", "app", "image", "error"] {
            assert!(!deps.contains(banned), "{step} imports {banned}");
        }
    }
    for (m, deps) in &t.graph {
        if m != "http" {
            assert!(!deps.contains("http"), "{m} imports the HTTP layer");
        }
    }
    assert!(!t.graph["app"].contains("http"), "the composition root imports http");
    // No I/O and no web framework in the pure steps: header reading stays at the edge.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (p, code) in &t.files {
        let Some(m) = module_of(&src, p) else { continue };
        if !PURE_STEPS.contains(&m.as_str()) {
            continue;
        }
        for banned in ["actix_web", "reqwest", "tokio", "std::fs", "std::net", "rusty_s3"] {
            assert!(!code.contains(banned), "the pure step {m} ({}) uses {banned}", p.display());
        }
    }
}

#[test]
fn no_source_file_over_the_size_limit() {
    let t = tree();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = t.files;
    for p in files::rust_files(&root.join("signing/rust/src")) {
        let code = without_tests(&std::fs::read_to_string(&p).unwrap());
        files.push((p, code));
    }
    let over: Vec<String> = files
        .iter()
        .map(|(p, code)| (p, code_lines(code).count()))
        .filter(|(_, n)| *n > MAX_CODE_LINES)
        .map(|(p, n)| format!("{}: {n}", p.strip_prefix(root).unwrap_or(p).display()))
        .collect();
    assert!(over.is_empty(), "files over {MAX_CODE_LINES} lines of code:\n{}", over.join("\n"));
}
