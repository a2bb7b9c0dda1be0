//! The crate's module layers, in one table, and the check that imports go one way.
//!
//! Every top-level module of the library (`src/<name>.rs` or `src/<name>/`) has a layer; a module
//! may use modules of its own layer or below, never above, and the graph of top-level modules
//! has no cycle (not even inside one layer). The check reads the source: every `crate::<top>`
//! path (in `use` lines, grouped `use crate::{a, b}` imports and inline paths) and every
//! `super::` chain that climbs out of its top-level module. `src/bin` and `src/main.rs` are
//! binaries that see the library from outside (`sluice::`), so they are not read.
//! docs/architecture.md explains the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → layer, bottom (1) to top (6). A new module must be added here.
const LAYERS: &[(&str, u8)] = &[
    // 1 foundation: no domain types, nothing that knows of HTTP handlers or the database.
    ("util", 1),
    ("secret", 1),
    ("config", 1),
    ("logging", 1),
    ("lock", 1),
    ("metrics", 1),
    ("profiler", 1),
    ("os", 1),
    ("tasks", 1),
    ("systemd", 1),
    // 2 storage
    ("store", 2),
    // 3 domain
    ("billing", 3),
    ("formats", 3),
    ("ledger", 3),
    ("settings", 3),
    ("catalog", 3),
    ("notify", 3),
    ("ratelimit", 3),
    ("anomaly", 3),
    ("backup", 3),
    ("retention", 3),
    ("dbhealth", 3),
    ("upstream", 3),
    ("channel_health", 3),
    // 4 HTTP kit
    ("error", 4),
    ("web", 4),
    ("auth", 4),
    // 5 composition
    ("state", 5),
    // 6 entry points
    ("relay", 6),
    ("server", 6),
    ("app", 6),
    ("cli", 6),
    ("probe", 6),
    ("mock", 6),
];

/// Rust source with comments, string and char literals blanked (kept the same length, so
/// nothing else moves), so that a `crate::x` in a doc comment or a message is not an import.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(if b[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
            }
        } else if c == b'r'
            && matches!(b.get(i + 1), Some(b'"') | Some(b'#'))
            && !ident_before(b, i)
        {
            // Raw string r"..." / r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &x in &b[i..j.min(b.len())] {
                out.push(if x == b'\n' { b'\n' } else { b' ' });
            }
            i = j;
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            for &x in &b[i..(j + 1).min(b.len())] {
                out.push(if x == b'\n' { b'\n' } else { b' ' });
            }
            i = j + 1;
        } else if c == b'\'' {
            // A char literal ('a', '\n', '\u{..}'), not a lifetime ('a without a closing quote).
            let end = if b.get(i + 1) == Some(&b'\\') {
                (i + 2..b.len().min(i + 12)).find(|&j| b[j] == b'\'')
            } else {
                let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len)
            };
            match end {
                Some(e) => {
                    out.extend(std::iter::repeat_n(b' ', e + 1 - i));
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && is_ident(b[i - 1])
}

/// Tokens: identifiers, `::`, and single punctuation bytes (whitespace dropped).
fn tokens(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if is_ident(c) || c == b'$' {
            let st = i;
            i += 1;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            out.push(s[st..i].to_string());
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push("::".into());
            i += 2;
        } else {
            let len = s[i..].chars().next().map_or(1, char::len_utf8);
            out.push(s[i..i + len].to_string());
            i += len;
        }
    }
    out
}

/// The first segments after a path prefix ending in `::` at token `i`: one identifier, or
/// each entry of a `{...}` group.
fn first_segments(t: &[String], i: usize) -> Vec<String> {
    match t.get(i).map(String::as_str) {
        Some("{") => {
            let mut out = Vec::new();
            let mut depth = 0;
            let mut expect = true;
            for tok in &t[i..] {
                match tok.as_str() {
                    "{" => {
                        depth += 1;
                        if depth > 1 {
                            expect = false;
                        }
                    }
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    "," if depth == 1 => expect = true,
                    s if expect && depth == 1 => {
                        if s.as_bytes()[0].is_ascii_alphabetic() || s.starts_with('_') {
                            out.push(s.to_string());
                        }
                        expect = false;
                    }
                    _ => {}
                }
            }
            out
        }
        Some(s) if s.as_bytes()[0].is_ascii_alphabetic() || s.starts_with('_') => {
            vec![s.to_string()]
        }
        _ => Vec::new(),
    }
}

/// The top-level modules `file` (module path `modpath`) refers to.
fn references(modpath: &[String], src: &str) -> BTreeSet<String> {
    let t = tokens(&strip(src));
    let mut out = BTreeSet::new();
    // Inline `mod name {` blocks nest the module path; track them by brace depth.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < t.len() {
        let tok = t[i].as_str();
        match tok {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if t.get(i + 2).map(String::as_str) == Some("{") => {
                inline.push((t[i + 1].clone(), depth));
                depth += 1;
                i += 3;
                continue;
            }
            _ => {}
        }
        let prev_is_path = i > 0 && t[i - 1] == "::";
        if (tok == "crate" || tok == "$crate")
            && !prev_is_path
            && t.get(i + 1).map(String::as_str) == Some("::")
        {
            out.extend(first_segments(&t, i + 2));
            i += 2;
            continue;
        }
        if tok == "super" && !prev_is_path {
            let mut path: Vec<String> = modpath.to_vec();
            path.extend(inline.iter().map(|(n, _)| n.clone()));
            let mut j = i;
            while t.get(j).map(String::as_str) == Some("super")
                && t.get(j + 1).map(String::as_str) == Some("::")
            {
                path.pop();
                j += 2;
            }
            if j > i && path.is_empty() {
                out.extend(first_segments(&t, j));
            }
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level module → the top-level modules it refers to.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts[0] == "bin" || parts == ["main.rs"] || parts == ["lib.rs"] {
            continue;
        }
        let mut modpath: Vec<String> = parts.clone();
        let last = modpath.pop().expect("file name");
        if last != "mod.rs" {
            modpath.push(last.trim_end_matches(".rs").to_string());
        }
        let text = std::fs::read_to_string(&f).expect("read source");
        let top = modpath[0].clone();
        let refs = references(&modpath, &text);
        let entry = g.entry(top.clone()).or_default();
        for r in refs {
            if r != top {
                entry.insert(r);
            }
        }
    }
    // Only names that are top-level modules are edges (`crate::Foo` re-exports are not used).
    let tops: BTreeSet<String> = g.keys().cloned().collect();
    for deps in g.values_mut() {
        deps.retain(|d| tops.contains(d));
    }
    g
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn imports_go_down_the_layers_and_never_in_a_cycle() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let g = graph();
    let mut problems = Vec::new();
    for (m, deps) in &g {
        let Some(&lm) = layers.get(m.as_str()) else {
            problems.push(format!(
                "module `{m}` has no layer: add it to LAYERS in tests/layers.rs"
            ));
            continue;
        };
        for d in deps {
            let Some(&ld) = layers.get(d.as_str()) else {
                continue;
            };
            if ld > lm {
                problems.push(format!(
                    "`{m}` (layer {lm}) imports `{d}` (layer {ld}), a layer above it"
                ));
            }
        }
    }
    for c in cycles(&g) {
        problems.push(format!(
            "import cycle among {} modules: {}",
            c.len(),
            c.join(", ")
        ));
    }
    let edges: Vec<String> = g
        .iter()
        .map(|(m, d)| {
            format!(
                "  {m} -> {}",
                d.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{} layer problems:\n{}\n\nthe module graph:\n{}",
        problems.len(),
        problems.join("\n"),
        edges.join("\n")
    );
}

/// The reader itself: grouped imports, inline paths, `super::` chains, comments and strings.
#[test]
fn the_reader_finds_the_imports_it_should() {
    let src = r#"
        use crate::{config::Config, store::{Store, StoreError}, util};
        use super::super::ledger::Ledger;
        // use crate::commented;
        fn f() { let _ = "crate::in_a_string"; crate::metrics::inc(); let c = 'x'; }
        fn g<'a>(x: &'a str) -> &'a str { x }
        mod tests { use super::super::super::anomaly; use super::*; }
        /* crate::in_a_block /* nested */ crate::still_in */
        macro_rules! m { () => { $crate::logging::x() } }
    "#;
    let got = references(&["relay".into(), "stream".into()], src);
    let want: BTreeSet<String> = [
        "config", "store", "util", "ledger", "metrics", "anomaly", "logging",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want);
    // In a top-level file, `super::x` is the crate's `x`.
    let got = references(
        &["relay".into()],
        "use super::ledger; mod tests { use super::*; }",
    );
    assert_eq!(got, ["ledger".to_string()].into_iter().collect());
}

/// The modules `src/lib.rs` declares (`pub mod x;` / `mod x;`).
fn declared_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("read src/lib.rs");
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))?;
            Some(rest.strip_suffix(';')?.trim().to_string())
        })
        .collect()
}

/// The table, the crate and the two maps of it say the same: every module `lib.rs` declares has
/// a layer (and the table names no module that is gone), `lib.rs`'s `//!` map links each one,
/// and docs/architecture.md's layer table puts each in the same layer as `LAYERS`.
#[test]
fn the_table_lib_rs_and_architecture_md_name_the_same_modules() {
    let declared = declared_modules();
    let table: BTreeSet<String> = LAYERS.iter().map(|(m, _)| m.to_string()).collect();
    let stale: Vec<&String> = table.difference(&declared).collect();
    let missing: Vec<&String> = declared.difference(&table).collect();
    assert!(
        stale.is_empty() && missing.is_empty(),
        "LAYERS names modules lib.rs does not declare: {stale:?}; lib.rs declares modules LAYERS \
         lacks: {missing:?}"
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("read src/lib.rs");
    let map: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let unmapped: Vec<&String> = declared
        .iter()
        .filter(|m| !map.contains(&format!("[`{m}`]")))
        .collect();
    assert!(
        unmapped.is_empty(),
        "lib.rs's //! map does not link these modules: {unmapped:?}"
    );

    // docs/architecture.md: rows `| N name | `a`, `b` | ... |` of the layer table.
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).expect("read doc");
    let mut documented: BTreeMap<String, u8> = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Some(layer) = cells[1]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u8>().ok())
        else {
            continue;
        };
        for m in cells[2].split(',') {
            documented.insert(m.trim().trim_matches('`').to_string(), layer);
        }
    }
    let want: BTreeMap<String, u8> = LAYERS.iter().map(|(m, l)| (m.to_string(), *l)).collect();
    assert_eq!(
        documented, want,
        "docs/architecture.md's layer table differs from LAYERS in tests/layers.rs"
    );
}
