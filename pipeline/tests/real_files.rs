//! Parsing agrees with an independent parser (gemmi 0.7.5, `../shared/data/real/expected.tsv`):
//! for every real file, the chains that have polymer residues with a CA atom, their counts and their
//! one-letter sequences ("parent" convention: MSE → M, unknown → X).

mod common;

use std::collections::BTreeMap;

use fusionprot_pipeline::structure::{self, Format};

#[derive(Debug)]
struct Expected {
    format: String,
    n_polymer_ca: usize,
    seq_ca: String,
}

/// file → chain → expected row
fn expected() -> BTreeMap<String, BTreeMap<String, Expected>> {
    let text =
        std::fs::read_to_string(common::real_dir().join("expected.tsv")).expect("expected.tsv");
    let mut out: BTreeMap<String, BTreeMap<String, Expected>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        out.entry(f[0].to_owned()).or_default().insert(
            f[2].to_owned(),
            Expected {
                format: f[1].to_owned(),
                n_polymer_ca: f[4].parse().expect("n_polymer_ca"),
                seq_ca: f[5].to_owned(),
            },
        );
    }
    out
}

#[test]
fn every_real_file_matches_gemmi_chain_by_chain() {
    let expected = expected();
    assert!(
        expected.len() >= 45,
        "{} files in expected.tsv",
        expected.len()
    );
    let mut failures = Vec::new();
    for (file, chains) in &expected {
        let bytes = std::fs::read(common::real_dir().join(file)).expect("read real file");
        let (format, st) = match structure::read_bytes(&bytes) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        let want_format = if format == Format::Pdb { "pdb" } else { "cif" };
        let any = chains.values().next().expect("a chain");
        if any.format != want_format {
            failures.push(format!(
                "{file}: format {want_format}, gemmi says {}",
                any.format
            ));
        }
        let ours: BTreeMap<&str, String> = st
            .chains
            .iter()
            .map(|c| {
                let seq: String = c
                    .residues
                    .iter()
                    .filter(|r| r.ca.is_some())
                    .map(|r| char::from(fusionprot_pipeline::residue::one_letter(&r.name)))
                    .collect();
                (c.id.as_str(), seq)
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        for (chain, want) in chains {
            let got = ours.get(chain.as_str()).map_or("", String::as_str);
            if got.len() != want.n_polymer_ca || got != want.seq_ca {
                failures.push(format!(
                    "{file} chain {chain:?}: {} residues with CA, gemmi {}\n  ours  {got}\n  gemmi {}",
                    got.len(),
                    want.n_polymer_ca,
                    want.seq_ca
                ));
            }
        }
        for chain in ours.keys() {
            if !chains.contains_key(*chain) {
                failures.push(format!("{file}: chain {chain:?} is not in gemmi's output"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
