//! From a parsed structure to protein records: one per polymer chain (or one per entry with
//! `whole_entry`), nodes = residues with a CA atom, ids, header facts, filters and truncation.

use compact_str::CompactString;

use crate::residue;
use crate::structure::{Format, Structure};

/// How structures become proteins; validated by the caller's config.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ProteinOptions {
    /// Keep all chains of an entry as one graph (no sequential edges across chains).
    pub whole_entry: bool,
    /// Keep the first N residues (nodes) before edges are built.
    pub truncate: Option<usize>,
    /// Drop proteins with fewer residues (counted before truncation).
    pub min_residues: Option<usize>,
    /// Drop proteins with more residues (counted before truncation).
    pub max_residues: Option<usize>,
    /// Drop AlphaFold models whose mean pLDDT over all residues is below this.
    pub plddt_min: Option<f32>,
    /// One protein per file (all its chains, as `whole_entry`), named by the file name up to its
    /// first `_`, TorchDrug's rule for its EC / GO archives (`1A0E-A_11110.pdb` → `1A0E-A`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub file_prefix_ids: bool,
}

/// One protein: its row in `proteins` and its rows in `residues`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProteinRecord {
    pub protein_id: String,
    pub entry_id: String,
    /// The chain, or the entry's chains joined by `,` for whole-entry graphs.
    pub chain_id: String,
    pub sequence: String,
    pub num_residues_in_file: u32,
    pub source: String,
    pub source_sha256: String,
    pub format: Format,
    pub mean_plddt: Option<f32>,
    pub method: Option<String>,
    pub resolution_angstrom: Option<f32>,
    pub ec_numbers: Vec<String>,
    pub title: Option<String>,
    pub residues: ResidueColumns,
}

/// Per-node columns, in node order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResidueColumns {
    /// Residue and chain names are short: stored inline, not one allocation each.
    pub name: Vec<CompactString>,
    pub chain: Vec<CompactString>,
    pub number: Vec<i32>,
    pub insertion_code: Vec<Option<char>>,
    pub pos: Vec<[f32; 3]>,
    pub b_factor: Vec<f32>,
}

impl ResidueColumns {
    pub fn len(&self) -> usize {
        self.name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_empty()
    }

    fn truncate(&mut self, n: usize) {
        self.name.truncate(n);
        self.chain.truncate(n);
        self.number.truncate(n);
        self.insertion_code.truncate(n);
        self.pos.truncate(n);
        self.b_factor.truncate(n);
    }

    /// Chain key per node for the graph: sequential edges stay within equal keys.
    pub fn chain_keys(&self) -> Vec<u32> {
        let mut keys = Vec::with_capacity(self.len());
        let mut seen: Vec<&str> = Vec::new();
        for c in &self.chain {
            let k = seen.iter().position(|s| s == c).unwrap_or_else(|| {
                seen.push(c);
                seen.len() - 1
            });
            keys.push(k as u32);
        }
        keys
    }
}

/// Why a protein was left out; counted in the manifest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Filtered {
    TooFewResidues,
    TooManyResidues,
    LowPlddt,
    /// Not in the run's id list (`only_ids`).
    NotListed,
}

/// What one file gave: the kept proteins, and counts of what was left out.
#[derive(Debug, Default)]
pub struct FileProteins {
    pub proteins: Vec<ProteinRecord>,
    pub filtered: Vec<(String, Filtered)>,
    /// Polymer chains without any CA (nucleic acids) or without residues.
    pub non_protein_chains: usize,
    /// The entry id is the file's stem (no PDB id in the file, not an AlphaFold DB model), so
    /// another file of the same name elsewhere would give the same ids; `prepare` then derives
    /// the entry id from the path instead.
    pub entry_from_file_name: bool,
}

/// Splits a structure into proteins. `source` is the file's name relative to its input root.
pub fn proteins_from_structure(
    st: &Structure,
    format: Format,
    source: &str,
    source_sha256: &str,
    opts: &ProteinOptions,
) -> FileProteins {
    let mut out = FileProteins::default();
    let mut ids = Ids::new(st, source);
    if opts.file_prefix_ids {
        let stem = file_stem(source);
        let id = stem.split('_').next().unwrap_or(stem).to_owned();
        ids = Ids {
            entry: id.split('-').next().unwrap_or(&id).to_owned(),
            entry_protein: id,
            alphafold: None,
            from_file_name: false,
        };
    }
    out.entry_from_file_name = ids.from_file_name;
    let protein_chains: Vec<_> = st
        .chains
        .iter()
        .filter(|c| c.residues.iter().any(|r| r.ca.is_some()))
        .collect();
    out.non_protein_chains = st.chains.len() - protein_chains.len();
    let whole_entry = opts.whole_entry || opts.file_prefix_ids;
    let groups: Vec<Vec<&crate::structure::Chain>> = if whole_entry {
        vec![protein_chains.clone()]
    } else {
        protein_chains.iter().map(|c| vec![*c]).collect()
    };
    let single = protein_chains.len() == 1;
    for group in groups.into_iter().filter(|g| !g.is_empty()) {
        let chain_ids: Vec<&str> = group.iter().map(|c| c.id.as_str()).collect();
        let protein_id = if whole_entry {
            ids.entry_protein.clone()
        } else {
            ids.chain_protein(chain_ids[0], single)
        };
        let mut residues = ResidueColumns::default();
        for chain in &group {
            let chain_id = CompactString::from(chain.id.as_str());
            for r in chain.residues.iter() {
                let Some(ca) = r.ca else { continue };
                residues.name.push(r.name.clone());
                residues.chain.push(chain_id.clone());
                residues.number.push(r.number);
                residues.insertion_code.push(r.insertion_code);
                residues.pos.push(ca.pos);
                residues.b_factor.push(ca.b_factor);
            }
        }
        let n = residues.len();
        let mean_plddt = st.is_alphafold.then(|| {
            let sum: f64 = residues.b_factor.iter().map(|b| f64::from(*b)).sum();
            (sum / n as f64) as f32
        });
        let filtered = if opts.min_residues.is_some_and(|m| n < m) {
            Some(Filtered::TooFewResidues)
        } else if opts.max_residues.is_some_and(|m| n > m) {
            Some(Filtered::TooManyResidues)
        } else if let (Some(min), Some(p)) = (opts.plddt_min, mean_plddt)
            && p < min
        {
            Some(Filtered::LowPlddt)
        } else {
            None
        };
        if let Some(why) = filtered {
            out.filtered.push((protein_id, why));
            continue;
        }
        if let Some(t) = opts.truncate {
            residues.truncate(t);
        }
        let sequence = residues
            .name
            .iter()
            .map(|name| char::from(residue::one_letter(name)))
            .collect();
        let mut ec_numbers: Vec<String> = Vec::new();
        for c in &chain_ids {
            for ec in st.ec_by_chain.get(*c).into_iter().flatten() {
                if !ec_numbers.contains(ec) {
                    ec_numbers.push(ec.clone());
                }
            }
        }
        out.proteins.push(ProteinRecord {
            protein_id,
            entry_id: ids.entry.clone(),
            chain_id: chain_ids.join(","),
            sequence,
            num_residues_in_file: n as u32,
            source: source.to_owned(),
            source_sha256: source_sha256.to_owned(),
            format,
            mean_plddt,
            method: st.method.clone(),
            resolution_angstrom: st.resolution_angstrom,
            ec_numbers,
            title: st.title.clone(),
            residues,
        });
    }
    out
}

/// Entry and protein ids of one file.
#[derive(Debug)]
struct Ids {
    entry: String,
    /// Protein id for a whole-entry graph.
    entry_protein: String,
    /// AlphaFold models are named by their UniProt accession.
    alphafold: Option<String>,
    /// `entry` is the file stem.
    from_file_name: bool,
}

impl Ids {
    fn new(st: &Structure, source: &str) -> Self {
        let stem = file_stem(source);
        let af_name = parse_alphafold_name(stem);
        if st.is_alphafold || af_name.is_some() {
            // The accession from the file (DBREF / _ma_target_ref_db_details) wins over the name.
            let (name_accession, fragment) = af_name
                .or_else(|| st.entry_id.as_deref().and_then(parse_alphafold_name))
                .unwrap_or_else(|| (stem.to_owned(), 1));
            let accession = st.alphafold_accession.clone().unwrap_or(name_accession);
            let protein = if fragment == 1 {
                accession.clone()
            } else {
                format!("{accession}-F{fragment}")
            };
            return Self {
                entry: format!("AF-{accession}-F{fragment}"),
                entry_protein: protein.clone(),
                alphafold: Some(protein),
                from_file_name: false,
            };
        }
        let pdb_id = st.entry_id.as_deref().filter(|id| is_pdb_id(id));
        let entry = pdb_id.unwrap_or(stem).to_owned();
        Self {
            entry_protein: entry.clone(),
            entry,
            alphafold: None,
            from_file_name: pdb_id.is_none(),
        }
    }

    fn chain_protein(&self, chain: &str, single_chain: bool) -> String {
        match &self.alphafold {
            Some(p) if single_chain => p.clone(),
            Some(p) => format!("{p}_{chain}"),
            None if chain.is_empty() => self.entry.clone(),
            None => format!("{}_{chain}", self.entry),
        }
    }
}

/// `1ABC`, or an extended id `pdb_00001abc`.
fn is_pdb_id(id: &str) -> bool {
    let alnum = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric());
    (id.len() == 4 && alnum(id) && id.as_bytes()[0].is_ascii_digit())
        || (id.len() == 12 && id.to_ascii_lowercase().starts_with("pdb_") && alnum(&id[4..]))
}

/// The file name without folders and without `.gz` and the structure extension.
pub fn file_stem(source: &str) -> &str {
    let name = source.rsplit('/').next().unwrap_or(source);
    let name = strip_suffix_ci(name, ".gz").unwrap_or(name);
    [".pdb", ".ent", ".cif", ".mmcif"]
        .iter()
        .find_map(|ext| strip_suffix_ci(name, ext))
        .unwrap_or(name)
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(cut) && s[cut..].eq_ignore_ascii_case(suffix)).then(|| &s[..cut])
}

/// `AF-Q5VSL9-F1-model_v2` or `AF-Q5VSL9-F1` → (`Q5VSL9`, 1).
fn parse_alphafold_name(s: &str) -> Option<(String, u32)> {
    let rest = s.strip_prefix("AF-")?;
    let mut parts = rest.split('-');
    let accession = parts.next().filter(|a| !a.is_empty())?;
    let fragment = parts.next()?.strip_prefix('F')?.parse().ok()?;
    Some((accession.to_owned(), fragment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::{AlphaCarbon, Chain, Residue};

    fn chain(id: &str, names: &[&str]) -> Chain {
        Chain {
            id: id.to_owned(),
            residues: names
                .iter()
                .enumerate()
                .map(|(i, n)| Residue {
                    name: (*n).into(),
                    number: i as i32 + 1,
                    insertion_code: None,
                    ca: (*n != "DA").then_some(AlphaCarbon {
                        pos: [i as f32, 0.0, 0.0],
                        b_factor: 50.0 + i as f32,
                    }),
                })
                .collect(),
        }
    }

    fn structure(chains: Vec<Chain>) -> Structure {
        Structure {
            entry_id: Some("1ABC".into()),
            chains,
            ..Structure::default()
        }
    }

    #[test]
    fn one_protein_per_chain_with_ids_and_parent_sequence() {
        let st = structure(vec![
            chain("A", &["MET", "MSE", "GLY"]),
            chain("B", &["DA", "DA"]),
        ]);
        let got =
            proteins_from_structure(&st, Format::Pdb, "x/1abc.pdb.gz", "h", &Default::default());
        assert_eq!(got.proteins.len(), 1);
        assert_eq!(got.non_protein_chains, 1);
        let p = &got.proteins[0];
        assert_eq!(
            (p.protein_id.as_str(), p.entry_id.as_str()),
            ("1ABC_A", "1ABC")
        );
        assert_eq!(p.sequence, "MMG");
        assert_eq!(p.mean_plddt, None);
    }

    #[test]
    fn whole_entry_keeps_chains_in_one_graph() {
        let st = structure(vec![chain("A", &["ALA"]), chain("B", &["GLY", "SER"])]);
        let opts = ProteinOptions {
            whole_entry: true,
            ..Default::default()
        };
        let got = proteins_from_structure(&st, Format::Mmcif, "1abc.cif", "h", &opts);
        let p = &got.proteins[0];
        assert_eq!(
            (p.protein_id.as_str(), p.chain_id.as_str()),
            ("1ABC", "A,B")
        );
        assert_eq!(p.residues.chain_keys(), [0, 1, 1]);
    }

    #[test]
    fn filters_count_before_truncation_and_truncation_keeps_the_first_residues() {
        let st = structure(vec![chain("A", &["ALA"; 10])]);
        let opts = ProteinOptions {
            truncate: Some(4),
            max_residues: Some(9),
            ..Default::default()
        };
        let got = proteins_from_structure(&st, Format::Pdb, "1abc.pdb", "h", &opts);
        assert_eq!(
            got.filtered,
            [("1ABC_A".to_owned(), Filtered::TooManyResidues)]
        );
        let opts = ProteinOptions {
            truncate: Some(4),
            ..Default::default()
        };
        let got = proteins_from_structure(&st, Format::Pdb, "1abc.pdb", "h", &opts);
        assert_eq!(got.proteins[0].residues.len(), 4);
        assert_eq!(got.proteins[0].num_residues_in_file, 10);
    }

    #[test]
    fn file_prefix_ids_make_one_protein_per_file_named_before_the_first_underscore() {
        let st = structure(vec![chain("A", &["ALA", "GLY"]), chain("B", &["SER"])]);
        let opts = ProteinOptions {
            file_prefix_ids: true,
            ..Default::default()
        };
        let got = proteins_from_structure(&st, Format::Pdb, "test/5MYJ-B7_30219.pdb", "h", &opts);
        assert_eq!(got.proteins.len(), 1);
        let p = &got.proteins[0];
        assert_eq!(p.protein_id, "5MYJ-B7");
        assert_eq!(p.entry_id, "5MYJ");
        assert_eq!(p.chain_id, "A,B");
        assert_eq!(p.residues.len(), 3);
        assert!(!got.entry_from_file_name);
    }

    #[test]
    fn alphafold_models_are_named_by_accession_with_mean_plddt() {
        let mut st = structure(vec![chain("A", &["ALA", "GLY"])]);
        st.entry_id = None;
        st.is_alphafold = true;
        let opts = ProteinOptions {
            plddt_min: Some(60.0),
            ..Default::default()
        };
        let got =
            proteins_from_structure(&st, Format::Pdb, "AF-Q5VSL9-F1-model_v2.pdb.gz", "h", &opts);
        assert_eq!(got.filtered, [("Q5VSL9".to_owned(), Filtered::LowPlddt)]);
        let got = proteins_from_structure(
            &st,
            Format::Pdb,
            "AF-Q5VSL9-F2-model_v4.cif",
            "h",
            &Default::default(),
        );
        let p = &got.proteins[0];
        assert_eq!(
            (p.protein_id.as_str(), p.entry_id.as_str()),
            ("Q5VSL9-F2", "AF-Q5VSL9-F2")
        );
        assert_eq!(p.mean_plddt, Some(50.5));
    }

    #[test]
    fn entry_falls_back_to_the_file_stem_without_a_pdb_id() {
        let mut st = structure(vec![chain("", &["ALA"])]);
        st.entry_id = Some("model".into());
        let got = proteins_from_structure(
            &st,
            Format::Mmcif,
            "runs/adk_open.PDB",
            "h",
            &Default::default(),
        );
        assert_eq!(got.proteins[0].protein_id, "adk_open");
    }
}
