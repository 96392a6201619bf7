//! Miniature benchmark archives in TorchDrug's published EC / GO layouts, built from real PDB
//! files, for tests, benchmarks and the demo (the real archives cannot be downloaded here): each
//! polymer chain becomes a chain file `<PDBID>-<CHAIN>_<n>.pdb` (its ATOM / HETATM lines),
//! labelled with its own `COMPND EC:` numbers (EC) or seeded GO terms (GO, with empty branch
//! cells). Every few chains get a two-character chain id in their name, as GO's `5MYJ-B7`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;

use super::torchdrug::Benchmark;
use super::{ImportError, io};

/// One chain file and what the fixture says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureChain {
    /// TorchDrug's id: the file name before the first `_`.
    pub id: String,
    pub file_name: String,
    /// `train`, `valid` or `test`.
    pub split: &'static str,
    /// Per task, the terms written in the annotation row.
    pub terms: Vec<Vec<String>>,
    /// Test chains: the test CSV's five flags (`<30%` … `<95%`).
    pub flags: Option<[bool; 5]>,
    pdb: Vec<u8>,
}

/// A miniature archive, before it is written.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub benchmark: Benchmark,
    /// Per task, the vocabulary in file order.
    pub vocabularies: Vec<(String, Vec<String>)>,
    pub chains: Vec<FixtureChain>,
}

fn gunzip(raw: Vec<u8>) -> Vec<u8> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        if flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .is_ok()
        {
            return out;
        }
    }
    raw
}

/// Builds the chains of a fixture from PDB-format files (plain or gzipped; others are skipped).
///
/// # Errors
/// An unreadable file.
pub fn fixture(
    benchmark: Benchmark,
    pdb_files: &[std::path::PathBuf],
) -> Result<Fixture, ImportError> {
    let mut chains = Vec::new();
    let mut seen = BTreeSet::new();
    for path in pdb_files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if !(name.ends_with(".pdb") || name.ends_with(".pdb.gz") || name.ends_with(".ent")) {
            continue;
        }
        let text = gunzip(std::fs::read(path).map_err(io(path))?);
        let Ok((_, st)) = crate::structure::read_bytes(&text) else {
            continue;
        };
        let entry = st
            .entry_id
            .clone()
            .filter(|e| e.len() == 4)
            .unwrap_or_else(|| {
                let stem = crate::protein::file_stem(&name);
                stem.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(4)
                    .collect::<String>()
                    .to_uppercase()
            });
        for chain in st
            .chains
            .iter()
            .filter(|c| c.residues.iter().any(|r| r.ca.is_some()))
        {
            let Some(c) = chain.id.chars().next().filter(|_| chain.id.len() == 1) else {
                continue;
            };
            let lines: Vec<&[u8]> = text
                .split(|&b| b == b'\n')
                .filter(|l| {
                    (l.starts_with(b"ATOM  ") || l.starts_with(b"HETATM"))
                        && l.len() > 21
                        && l[21] == c as u8
                })
                .collect();
            if lines.is_empty() {
                continue;
            }
            let k = chains.len();
            let suffix = if k % 4 == 3 {
                format!("{c}7")
            } else {
                c.to_string()
            };
            let id = format!("{}-{suffix}", entry.to_uppercase());
            if !seen.insert(id.clone()) {
                continue;
            }
            let mut pdb = Vec::new();
            for l in lines {
                pdb.extend_from_slice(l);
                pdb.push(b'\n');
            }
            pdb.extend_from_slice(b"TER\nEND\n");
            let split = match k % 5 {
                0..=2 => "train",
                3 => "valid",
                _ => "test",
            };
            let ec = st.ec_by_chain.get(&chain.id).cloned().unwrap_or_default();
            chains.push(FixtureChain {
                file_name: format!("{id}_{}.pdb", 10_000 + k),
                id,
                split,
                terms: vec![ec],
                flags: None,
                pdb,
            });
        }
    }
    let mut test = 0;
    for ch in &mut chains {
        if ch.split == "test" {
            // Monotone flags: below 30% implies below 40% …; <95% always 1, as in DeepFRI's files.
            let level = test % 5;
            ch.flags = Some(std::array::from_fn(|c| c >= level));
            test += 1;
        }
    }
    let vocabularies = match benchmark {
        Benchmark::Ec => {
            let mut vocab: BTreeSet<String> =
                chains.iter().flat_map(|c| c.terms[0].clone()).collect();
            // A term no chain carries, as real vocabularies have (all-negative columns).
            vocab.insert("9.9.9.-".to_owned());
            vec![("ec".to_owned(), vocab.into_iter().collect())]
        }
        Benchmark::Go => {
            let branches = [("go-mf", 5), ("go-bp", 7), ("go-cc", 3)];
            for (k, ch) in chains.iter_mut().enumerate() {
                ch.terms = branches
                    .iter()
                    .enumerate()
                    .map(|(b, &(_, n))| {
                        // Some cells empty: the chain stays, all negative in that branch.
                        if (k + b) % 4 == 1 {
                            return Vec::new();
                        }
                        (0..n)
                            .filter(|t| (k * 7 + t * 3 + b) % 5 < 2)
                            .map(|t| format!("GO:{:07}", 1000 * (b + 1) + t))
                            .collect()
                    })
                    .collect();
            }
            branches
                .iter()
                .enumerate()
                .map(|(b, &(task, n))| {
                    (
                        task.to_owned(),
                        (0..n)
                            .rev()
                            .map(|t| format!("GO:{:07}", 1000 * (b + 1) + t))
                            .collect(),
                    )
                })
                .collect()
        }
    };
    Ok(Fixture {
        benchmark,
        vocabularies,
        chains,
    })
}

impl Fixture {
    /// The annotation TSV, in the published layout.
    pub fn annotation(&self) -> String {
        let mut s = String::new();
        match self.benchmark {
            Benchmark::Ec => {
                s += "### EC-numbers\n";
                s += &self.vocabularies[0].1.join("\t");
                s += "\n### PDB-chain\tEC-numbers\n";
            }
            Benchmark::Go => {
                let names = [
                    "molecular_function",
                    "biological_process",
                    "cellular_component",
                ];
                for ((_, vocab), name) in self.vocabularies.iter().zip(names) {
                    s += &format!("### GO-terms ({name})\n{}\n", vocab.join("\t"));
                    let labels: Vec<String> =
                        vocab.iter().map(|t| format!("name of {t}")).collect();
                    s += &format!("### GO-names ({name})\n{}\n", labels.join("\t"));
                }
                s += "### PDB-chain\tGO-terms (molecular_function)\tGO-terms (biological_process)\tGO-terms (cellular_component)\n";
            }
        }
        for ch in &self.chains {
            s += &ch.id;
            for t in &ch.terms {
                s.push('\t');
                s += &t.join(",");
            }
            s.push('\n');
        }
        s
    }

    /// The test CSV, with CRLF line endings as DeepFRI's files have.
    pub fn test_csv(&self) -> String {
        let mut s = "PDB-chain,<30%,<40%,<50%,<70%,<95%\r\n".to_owned();
        for ch in &self.chains {
            if let Some(f) = ch.flags {
                let cells: Vec<&str> = f.iter().map(|&b| if b { "1" } else { "0" }).collect();
                s += &format!("{},{}\r\n", ch.id, cells.join(","));
            }
        }
        s
    }

    fn split_zip(&self, split: &str) -> Result<Vec<u8>, ImportError> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for ch in self.chains.iter().filter(|c| c.split == split) {
            zip.start_file(format!("{split}/{}", ch.file_name), opts)
                .map_err(|e| ImportError::Invalid(e.to_string()))?;
            zip.write_all(&ch.pdb)
                .map_err(|e| ImportError::Invalid(e.to_string()))?;
        }
        Ok(zip
            .finish()
            .map_err(|e| ImportError::Invalid(e.to_string()))?
            .into_inner())
    }

    fn names(&self) -> (&'static str, &'static str, &'static str) {
        match self.benchmark {
            Benchmark::Ec => (
                "EnzymeCommission",
                "nrPDB-EC_annot.tsv",
                "nrPDB-EC_test.csv",
            ),
            Benchmark::Go => ("GeneOntology", "nrPDB-GO_annot.tsv", "nrPDB-GO_test.csv"),
        }
    }

    /// Writes the archive as downloaded: `<Root>/` with the annotation, the test CSV, a sequences
    /// FASTA (not read) and the inner `train.zip` / `valid.zip` / `test.zip`.
    ///
    /// # Errors
    /// I/O.
    pub fn write_zip(&self, path: &Path) -> Result<(), ImportError> {
        let (root, annot, test) = self.names();
        let file = std::fs::File::create(path).map_err(io(path))?;
        let mut zip = zip::ZipWriter::new(file);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let mut put = |name: String, bytes: &[u8]| -> Result<(), ImportError> {
            zip.start_file(name, stored)
                .map_err(|e| ImportError::Invalid(e.to_string()))?;
            zip.write_all(bytes).map_err(io(path))
        };
        put(format!("{root}/{annot}"), self.annotation().as_bytes())?;
        put(format!("{root}/{test}"), self.test_csv().as_bytes())?;
        put(format!("{root}/nrPDB-sequences.fasta"), b">unused\nA\n")?;
        for split in ["train", "valid", "test"] {
            put(format!("{root}/{split}.zip"), &self.split_zip(split)?)?;
        }
        zip.finish()
            .map_err(|e| ImportError::Invalid(e.to_string()))?;
        Ok(())
    }

    /// Writes the folder the zip extracts to: `dir/<Root>/` with the text files, the inner zips
    /// and, with `extracted`, the `train/` … folders TorchDrug unpacks them into.
    ///
    /// # Errors
    /// I/O.
    pub fn write_folder(&self, dir: &Path, inner_zips: bool) -> Result<(), ImportError> {
        let (root, annot, test) = self.names();
        let root = dir.join(root);
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        let write = |p: &Path, b: &[u8]| std::fs::write(p, b).map_err(io(p));
        write(&root.join(annot), self.annotation().as_bytes())?;
        write(&root.join(test), self.test_csv().as_bytes())?;
        for split in ["train", "valid", "test"] {
            if inner_zips {
                write(&root.join(format!("{split}.zip")), &self.split_zip(split)?)?;
            } else {
                let d = root.join(split);
                std::fs::create_dir_all(&d).map_err(io(&d))?;
                for ch in self.chains.iter().filter(|c| c.split == split) {
                    write(&d.join(&ch.file_name), &ch.pdb)?;
                }
            }
        }
        Ok(())
    }

    /// `copies` renamed copies of every chain (`<id>x<k>`), for benchmarks at archive size.
    pub fn scaled(&self, copies: usize) -> Self {
        let mut out = self.clone();
        if copies <= 1 {
            return out;
        }
        out.chains.clear();
        for k in 0..copies {
            for ch in &self.chains {
                let mut c = ch.clone();
                let (entry, chain) = ch.id.split_once('-').unwrap_or((&ch.id, ""));
                c.id = format!("{entry}x{k}-{chain}");
                c.file_name = format!("{}_{}.pdb", c.id, k);
                out.chains.push(c);
            }
        }
        out
    }
}
