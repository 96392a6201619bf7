//! The workspace's shape, checked from its sources: no two files of a crate import each other,
//! directly or around a circle (`crate::`, `super::` and `self::` paths, `use` trees included;
//! `pub use` re-exports and test modules left out), and no library function a crate exports
//! returns `Result<_, String>`. Each test also breaks a copy of the rule on purpose, so a parser
//! that saw nothing would fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's crates whose module graphs are checked.
const CRATES: [&str; 6] = ["pipeline", "trainer", "tracker", "metrics", "dist", "cli"];
/// The library crates whose public functions must return typed errors.
const LIBRARIES: [&str; 5] = ["pipeline", "trainer", "tracker", "metrics", "dist"];

type Module = Vec<String>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("a source folder")
        .map(|e| e.expect("an entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `a/b.rs` → `a::b`, `a/mod.rs` → `a`, `lib.rs` / `main.rs` → the root; another binary's root
/// (`torch_main.rs`) is a module of its own name.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

/// The code a file compiles outside its tests, without comments or `pub use` re-exports.
fn production_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    code.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("//")
                || t.starts_with("pub use ")
                || (t.starts_with("pub(") && t.contains(") use ")))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path that starts with `crate`, `super` or `self`, use trees expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let head = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|h| b[i..].starts_with(h.as_bytes()));
        match head {
            Some(h) if word_start => {
                let (trees, end) = tree(code, i + h.len() - 2, vec![h[..h.len() - 2].to_owned()]);
                out.extend(trees);
                i = end.max(i + h.len());
            }
            _ => i += 1,
        }
    }
    out
}

/// Reads `::seg::seg…` and an optional `::{…}` group after `prefix`, from byte `i`; returns the
/// expanded paths and where they end.
fn tree(code: &str, mut i: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let b = code.as_bytes();
    let mut path = prefix;
    loop {
        if !b[i..].starts_with(b"::") {
            return (vec![path], i);
        }
        i += 2;
        if b.get(i) == Some(&b'{') {
            let mut out = Vec::new();
            i += 1;
            loop {
                while b
                    .get(i)
                    .is_some_and(|c| c.is_ascii_whitespace() || *c == b',')
                {
                    i += 1;
                }
                if b.get(i).is_none_or(|c| *c == b'}') {
                    return (out, i + 1);
                }
                let start = i;
                while b
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'*')
                {
                    i += 1;
                }
                let mut item = path.clone();
                let word = &code[start..i];
                if !word.is_empty() && word != "self" && word != "*" {
                    item.push(word.to_owned());
                }
                let (more, end) = tree(code, i, item);
                out.extend(more);
                i = end;
                // `as name` and anything else up to the next item
                while b.get(i).is_some_and(|c| *c != b',' && *c != b'}') {
                    i += 1;
                }
            }
        }
        let start = i;
        while b
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            i += 1;
        }
        if start == i {
            return (vec![path], i);
        }
        path.push(code[start..i].to_owned());
    }
}

/// The module a path names: the longest prefix that is a file of the crate.
fn resolve(modules: &BTreeSet<Module>, me: &Module, is_folder: bool, path: &[String]) -> Module {
    let mut base: Module = match path[0].as_str() {
        "crate" => Vec::new(),
        "self" if is_folder => me.clone(),
        "self" => me.clone(),
        _ if is_folder => me[..me.len().saturating_sub(1)].to_vec(),
        _ => me[..me.len().saturating_sub(1)].to_vec(),
    };
    let mut rest = &path[1..];
    while let Some(("super", tail)) = rest.split_first().map(|(h, t)| (h.as_str(), t)) {
        base.pop();
        rest = tail;
    }
    let mut best = base.clone();
    for seg in rest {
        base.push(seg.clone());
        if modules.contains(&base) {
            best = base.clone();
        } else {
            break;
        }
    }
    best
}

/// File-to-file edges of one crate's `src` (the root and self-references left out).
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(src, f)).collect();
    let mut g = BTreeMap::new();
    for f in &files {
        let me = module_of(src, f);
        let is_folder = f
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs");
        let code = production_code(&std::fs::read_to_string(f).expect("a source file"));
        let edges: BTreeSet<Module> = paths(&code)
            .iter()
            .map(|p| resolve(&modules, &me, is_folder, p))
            .filter(|t| !t.is_empty() && *t != me && modules.contains(t))
            .collect();
        g.insert(me, edges);
    }
    g
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Module) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        for w in &t.g[v] {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.stack.contains(&w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                comp.push(w.join("::"));
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_two_files_of_a_crate_import_each_other() {
    let root = workspace();
    let mut found = Vec::new();
    for c in CRATES {
        let g = graph(&root.join(c).join("src"));
        assert!(g.len() >= 3, "{c}: too few modules found");
        for comp in cycles(&g) {
            found.push(format!("{c}: {}", comp.join(" ⇄ ")));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_finder_sees_a_cycle_through_use_trees_and_super() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).expect("a folder");
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").expect("lib");
    std::fs::write(
        src.join("a/mod.rs"),
        "mod x;\nmod y;\npub use x::X;\n// crate::b in a comment\n",
    )
    .expect("a");
    std::fs::write(
        src.join("a/x.rs"),
        "use super::{y::{self, Y}, *};\npub struct X;\n",
    )
    .expect("x");
    std::fs::write(src.join("a/y.rs"), "pub struct Y(crate::b::B);\n").expect("y");
    std::fs::write(
        src.join("b.rs"),
        "pub struct B;\nfn f() { let _ = crate::a::x::X; }\n#[cfg(test)]\nmod tests { use crate::a::y::Y; }\n",
    )
    .expect("b");
    let g = graph(src);
    assert_eq!(
        cycles(&g),
        vec![vec!["a::x".to_owned(), "a::y".to_owned(), "b".to_owned()]]
    );
    // the comment, the re-export and the test module add no edge
    assert!(g[&vec!["a".to_owned()]].is_empty(), "{g:?}");
    std::fs::write(src.join("a/y.rs"), "pub struct Y;\n").expect("y");
    assert!(cycles(&graph(src)).is_empty());
}

/// `pub fn name(…) -> Result<T, String>` in `text` (multi-line signatures included).
fn string_errors(text: &str) -> Vec<String> {
    let code = production_code(text);
    let mut out = Vec::new();
    for (i, _) in code.match_indices("pub fn ") {
        let sig_end = code[i..].find(['{', ';']).map_or(code.len(), |e| i + e);
        let sig: String = code[i..sig_end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(ret) = sig.split("-> ").nth(1)
            && ret.starts_with("Result<")
            && ret
                .trim_end()
                .trim_end_matches('>')
                .trim_end()
                .ends_with(", String")
        {
            let name = sig["pub fn ".len()..]
                .split(['(', '<'])
                .next()
                .unwrap_or_default();
            out.push(name.to_owned());
        }
    }
    out
}

#[test]
fn library_functions_return_typed_errors() {
    let root = workspace();
    let mut found = Vec::new();
    for c in LIBRARIES {
        let mut files = Vec::new();
        rust_files(&root.join(c).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).expect("a source file");
            for name in string_errors(&text) {
                found.push(format!(
                    "{}: {name}",
                    f.strip_prefix(&root).unwrap_or(&f).display()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "public functions returning Result<_, String>:\n{}",
        found.join("\n")
    );
    // the scan itself finds one
    assert_eq!(
        string_errors("pub fn parse(\n    s: &str,\n) -> Result<Vec<u8>, String> {\n"),
        vec!["parse"]
    );
    assert!(string_errors("pub(crate) fn p() -> Result<(), String> {").is_empty());
    assert!(string_errors("pub fn p() -> Result<String, E> {").is_empty());
}
