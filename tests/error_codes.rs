//! One catalogue of stable error codes (`imago::error::CODES`): every code the source can return
//! is in it, and the README's error tables list exactly the catalogue, with the same statuses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[path = "common/files.rs"]
mod files;

use imago::error::CODES;

/// The string literals a `fn code(&self)` returns (its `=> "…"` arms, up to the function's end),
/// and the code argument of every `json_response(status, "code", …)` call.
fn codes_in_source() -> BTreeMap<String, String> {
    let files = files::rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut out = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        let lines: Vec<&str> = code.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            if lines[i].trim_start().starts_with("pub fn code(&self)") {
                let indent = lines[i].len() - lines[i].trim_start().len();
                i += 1;
                while i < lines.len() && !(lines[i].starts_with(&" ".repeat(indent)) && lines[i].trim() == "}") {
                    if let Some((_, rest)) = lines[i].split_once("=> \"") {
                        let lit = rest.split('"').next().unwrap_or_default();
                        out.insert(lit.to_string(), f.display().to_string());
                    }
                    i += 1;
                }
            }
            if lines[i.min(lines.len() - 1)].contains("json_response(") {
                // The code is the second argument, a literal on this or one of the next lines.
                let window = lines[i..(i + 4).min(lines.len())].join(" ");
                let after = window.split_once("json_response(").map(|x| x.1).unwrap_or_default();
                if let Some(lit) = after.split(',').nth(1).map(str::trim).and_then(|a| a.strip_prefix('"')) {
                    out.insert(lit.trim_end_matches('"').to_string(), f.display().to_string());
                }
            }
            i += 1;
        }
    }
    out
}

/// Rows `| status | code | when |` of the README's tables: every backquoted code of the second
/// column, with the statuses of the first (`404 / 405` pairs with `a` / `b`).
fn readme_codes() -> BTreeMap<String, BTreeSet<u16>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("## Error codes").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut out: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || cells[1].parse::<u16>().is_err() && !cells[1].contains('/') {
            continue;
        }
        let statuses: Vec<u16> = cells[1].split('/').filter_map(|s| s.trim().parse().ok()).collect();
        let codes: Vec<&str> = cells[2].split('/').map(|c| c.trim().trim_matches('`')).collect();
        for (i, c) in codes.iter().enumerate() {
            let status = if statuses.len() == codes.len() { statuses[i] } else { statuses[0] };
            out.entry(c.to_string()).or_default().insert(status);
        }
    }
    out
}

#[test]
fn the_catalogue_is_kebab_case_and_unique() {
    let mut seen = BTreeSet::new();
    for (code, statuses) in CODES {
        assert!(seen.insert(*code), "{code} twice");
        assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{code}");
        assert!(!statuses.is_empty() && statuses.iter().all(|s| (400..600).contains(s)), "{code}");
    }
}

#[test]
fn every_code_in_the_source_is_in_the_catalogue() {
    let found = codes_in_source();
    assert!(found.len() >= 30, "the scan found too few codes: {found:?}");
    for (code, file) in &found {
        assert!(CODES.iter().any(|(c, _)| c == code), "{file} returns `{code}`, which is not in error::CODES");
    }
    // And nothing stale in the catalogue.
    for (code, _) in CODES {
        assert!(found.contains_key(*code), "error::CODES lists `{code}`, which no code() returns");
    }
}

#[test]
fn the_readme_lists_the_catalogue() {
    let readme = readme_codes();
    let catalogue: BTreeMap<String, BTreeSet<u16>> =
        CODES.iter().map(|(c, s)| (c.to_string(), s.iter().copied().collect())).collect();
    assert_eq!(readme, catalogue, "README.md's error tables and error::CODES differ");
}
