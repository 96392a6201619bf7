//! The Gene Ontology in OBO 1.2 (`go-basic.obo`, `go.obo`), for `import go --obo`: each term's
//! namespace, name, alternative ids and `is_a` parents, and from them GOATOOLS' two distances to
//! the namespace's root: `depth`, the longest `is_a` path, and `level`, the shortest (root 0).
//! Only `is_a` counts (GOATOOLS' default: `part_of` and other relationships are not followed);
//! obsolete terms are left out. Errors name the file and line.

use std::collections::{BTreeMap, HashMap};

use super::ImportError;
use crate::dataset::terms::TermRow;

/// A parsed ontology: the rows (sorted by term id) and the header's versions.
#[derive(Debug, Clone)]
pub struct Ontology {
    pub rows: Vec<TermRow>,
    /// `format-version` and `data-version` of the header, when given.
    pub format_version: Option<String>,
    pub data_version: Option<String>,
    /// Primary (non-obsolete) terms.
    pub terms: usize,
}

#[derive(Default)]
struct Term {
    id: String,
    line: usize,
    name: String,
    namespace: String,
    alt: Vec<String>,
    is_a: Vec<String>,
    obsolete: bool,
}

/// Parses `text` (the file `file`).
///
/// # Errors
/// A term without id or namespace, an `is_a` to a term the file does not define, a cycle of
/// `is_a`, no term at all: each naming the file and the line.
pub fn parse(file: &str, text: &str) -> Result<Ontology, ImportError> {
    let err = |line: usize, message: String| ImportError::File {
        file: file.to_owned(),
        line: (line > 0).then_some(line),
        message,
    };
    let mut header: HashMap<&str, String> = HashMap::new();
    let mut terms: Vec<Term> = Vec::new();
    // None: the header; Some(true): a [Term]; Some(false): another stanza ([Typedef], …).
    let mut stanza: Option<bool> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('!') {
            continue;
        }
        if l.starts_with('[') {
            let is_term = l == "[Term]";
            if is_term {
                terms.push(Term {
                    line,
                    ..Term::default()
                });
            }
            stanza = Some(is_term);
            continue;
        }
        let Some((tag, value)) = l.split_once(':') else {
            return Err(err(line, format!("expected `tag: value`, found {l:?}")));
        };
        // Trailing modifiers `{…}` and comments ` ! …` are not part of the value.
        let value = value.split(" ! ").next().unwrap_or("").trim();
        let value = value.split(" {").next().unwrap_or("").trim();
        match stanza {
            None => {
                header.insert(tag.trim(), value.to_owned());
            }
            Some(false) => {}
            Some(true) => {
                let t = terms.last_mut().expect("a [Term] stanza is open");
                match tag.trim() {
                    "id" => t.id = value.to_owned(),
                    "name" => t.name = value.to_owned(),
                    "namespace" => t.namespace = value.to_owned(),
                    "alt_id" => t.alt.push(value.to_owned()),
                    "is_a" => t.is_a.push(value.to_owned()),
                    "is_obsolete" => t.obsolete = value == "true",
                    _ => {}
                }
            }
        }
    }
    let live: Vec<&Term> = terms.iter().filter(|t| !t.obsolete).collect();
    if live.is_empty() {
        return Err(err(
            0,
            "no [Term] stanza that is not obsolete: not an OBO ontology".into(),
        ));
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (k, t) in live.iter().enumerate() {
        if t.id.is_empty() {
            return Err(err(t.line, "a [Term] without `id`".into()));
        }
        if t.namespace.is_empty() {
            return Err(err(t.line, format!("term {} has no `namespace`", t.id)));
        }
        if index.insert(t.id.as_str(), k).is_some() {
            return Err(err(t.line, format!("term {} is defined twice", t.id)));
        }
    }
    let mut parents: Vec<Vec<usize>> = Vec::with_capacity(live.len());
    for t in &live {
        let mut ps = Vec::new();
        for p in &t.is_a {
            let Some(&k) = index.get(p.as_str()) else {
                return Err(err(
                    t.line,
                    format!(
                        "term {} is_a {p}, which the file does not define (or marks obsolete)",
                        t.id
                    ),
                ));
            };
            ps.push(k);
        }
        parents.push(ps);
    }
    let (depth, level) = distances(&live, &parents).map_err(|k| {
        err(
            live[k].line,
            format!(
                "term {} is its own ancestor through is_a (a cycle)",
                live[k].id
            ),
        )
    })?;
    let mut rows: BTreeMap<String, TermRow> = BTreeMap::new();
    for (k, t) in live.iter().enumerate() {
        for id in std::iter::once(&t.id).chain(&t.alt) {
            rows.entry(id.clone()).or_insert_with(|| TermRow {
                term_id: id.clone(),
                primary_id: t.id.clone(),
                namespace: t.namespace.clone(),
                name: t.name.clone(),
                depth: depth[k],
                level: level[k],
            });
        }
    }
    Ok(Ontology {
        rows: rows.into_values().collect(),
        format_version: header.get("format-version").cloned(),
        data_version: header.get("data-version").cloned(),
        terms: live.len(),
    })
}

/// Longest and shortest `is_a` distance of every term to a root (a term without parents), by a
/// depth-first walk that memoises; `Err(k)`: term k lies on a cycle.
fn distances(live: &[&Term], parents: &[Vec<usize>]) -> Result<(Vec<i32>, Vec<i32>), usize> {
    const UNSEEN: i32 = -1;
    const OPEN: i32 = -2;
    let n = live.len();
    let mut depth = vec![UNSEEN; n];
    let mut level = vec![UNSEEN; n];
    for start in 0..n {
        if depth[start] >= 0 {
            continue;
        }
        // Explicit stack: (term, next parent to visit).
        let mut stack = vec![(start, 0usize)];
        depth[start] = OPEN;
        while let Some(&mut (k, ref mut next)) = stack.last_mut() {
            if let Some(&p) = parents[k].get(*next) {
                *next += 1;
                match depth[p] {
                    OPEN => return Err(p),
                    UNSEEN => {
                        depth[p] = OPEN;
                        stack.push((p, 0));
                    }
                    _ => {}
                }
                continue;
            }
            let ps = &parents[k];
            depth[k] = ps.iter().map(|&p| depth[p] + 1).max().unwrap_or(0);
            level[k] = ps.iter().map(|&p| level[p] + 1).min().unwrap_or(0);
            stack.pop();
        }
    }
    Ok((depth, level))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBO: &str = "format-version: 1.2\ndata-version: releases/2019-01-01\n\n\
        [Term]\nid: GO:0008150\nname: biological_process\nnamespace: biological_process\nalt_id: GO:0000004\n\n\
        [Term]\nid: GO:0000001\nname: a\nnamespace: biological_process\nis_a: GO:0008150 ! biological_process\n\n\
        [Term]\nid: GO:0000002\nname: b\nnamespace: biological_process\nis_a: GO:0000001 ! a\n\n\
        [Term]\nid: GO:0000003\nname: c\nnamespace: biological_process\nis_a: GO:0000002\nis_a: GO:0008150\n\
        relationship: part_of GO:0000001\n\n\
        [Term]\nid: GO:0000009\nname: old\nnamespace: biological_process\nis_obsolete: true\n\n\
        [Typedef]\nid: part_of\nname: part of\n";

    #[test]
    fn depth_is_the_longest_is_a_path_and_level_the_shortest() {
        let o = parse("go.obo", OBO).expect("parses");
        let get = |id: &str| o.rows.iter().find(|r| r.term_id == id).expect(id);
        assert_eq!((get("GO:0008150").depth, get("GO:0008150").level), (0, 0));
        assert_eq!((get("GO:0000002").depth, get("GO:0000002").level), (2, 2));
        // c: is_a b (depth 2) and is_a the root: depth 3, level 1; part_of is not followed
        assert_eq!((get("GO:0000003").depth, get("GO:0000003").level), (3, 1));
        assert_eq!(get("GO:0000004").primary_id, "GO:0008150", "alt_id row");
        assert!(
            o.rows.iter().all(|r| r.term_id != "GO:0000009"),
            "obsolete left out"
        );
        assert_eq!(o.terms, 4);
        assert_eq!(o.data_version.as_deref(), Some("releases/2019-01-01"));
    }

    #[test]
    fn bad_files_name_the_line() {
        let dangling = "[Term]\nid: GO:1\nnamespace: x\nis_a: GO:2\n";
        let e = parse("go.obo", dangling)
            .expect_err("dangling is_a")
            .to_string();
        assert!(e.contains("go.obo, line 1") && e.contains("GO:2"), "{e}");
        let cycle = "[Term]\nid: GO:1\nnamespace: x\nis_a: GO:2\n\n[Term]\nid: GO:2\nnamespace: x\nis_a: GO:1\n";
        let e = parse("go.obo", cycle).expect_err("cycle").to_string();
        assert!(e.contains("cycle"), "{e}");
        let e = parse("go.obo", "[Term]\nid: GO:1\n")
            .expect_err("no namespace")
            .to_string();
        assert!(e.contains("line 1") && e.contains("namespace"), "{e}");
        let e = parse("x.txt", "hello world\n")
            .expect_err("not obo")
            .to_string();
        assert!(e.contains("x.txt, line 1"), "{e}");
        assert!(parse("e.obo", "").is_err());
    }
}
