//! The parsed first model of a structure file, and the builder both readers feed atom by atom.
//! The builder owns the rules that make PDB and mmCIF agree: which residues form the polymer,
//! which conformer is kept, and how microheterogeneity is resolved.

use std::collections::{BTreeMap, HashMap};

use compact_str::CompactString;

use crate::residue;

/// The file formats we read; detected from content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Pdb,
    Mmcif,
    /// An Atom3D atom data frame (LMDB record), read by `import msp`.
    Atom3d,
}

/// The first model of a structure file: polymer chains in order of first appearance, and header
/// facts that are cheap to read.
#[derive(Debug, Clone, Default)]
pub struct Structure {
    /// PDB id from `HEADER` / `_entry.id`; `None` when the file has none.
    pub entry_id: Option<String>,
    pub title: Option<String>,
    /// Experimental method(s), e.g. `X-RAY DIFFRACTION`.
    pub method: Option<String>,
    pub resolution_angstrom: Option<f32>,
    /// EC numbers per chain id (PDB `COMPND` per `MOL_ID`; mmCIF `_entity.pdbx_ec` per entity).
    pub ec_by_chain: BTreeMap<String, Vec<String>>,
    /// UniProt accession when the file is an AlphaFold DB model.
    pub alphafold_accession: Option<String>,
    /// Whether the file says it is an AlphaFold prediction (B-factor column holds pLDDT).
    pub is_alphafold: bool,
    pub chains: Vec<Chain>,
    /// Water residues in the first model.
    pub waters: usize,
    /// Non-polymer, non-water residues (ligands, ions, free amino acids).
    pub ligands: usize,
}

/// One chain's polymer residues, in file order.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// PDB chain id / mmCIF `auth_asym_id` (may be empty).
    pub id: String,
    pub residues: Vec<Residue>,
}

/// A polymer residue: its name and numbering, and its alpha carbon when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Residue {
    /// Inline (no allocation) for names up to 24 bytes.
    pub name: CompactString,
    pub number: i32,
    /// Insertion code, `None` when blank.
    pub insertion_code: Option<char>,
    pub ca: Option<AlphaCarbon>,
}

/// The `CA` atom of the kept conformer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlphaCarbon {
    /// Cartesian coordinates in Ångström, rounded from the file's decimal to f64, then to f32.
    pub pos: [f32; 3],
    pub b_factor: f32,
}

/// What a reader knows about whether an atom's residue is part of the polymer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polymer {
    /// The file says so (mmCIF `label_seq_id` present / `.`).
    Yes,
    No,
    /// Decide by record type and backbone atoms (PDB before the chain's `TER`).
    Unknown,
}

/// One atom as a reader sees it; borrowed from the reader's line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AtomSite<'a> {
    pub hetero: bool,
    pub atom_name: &'a str,
    pub res_name: &'a str,
    pub chain: &'a str,
    pub seq_num: i32,
    pub icode: Option<char>,
    pub pos: [f32; 3],
    pub b_factor: f32,
    pub polymer: Polymer,
}

/// The residue being assembled from consecutive atoms.
#[derive(Debug)]
struct Pending {
    chain: usize,
    name: CompactString,
    number: i32,
    icode: Option<char>,
    hetero: bool,
    polymer: Polymer,
    has_n: bool,
    has_c: bool,
    ca: Option<AlphaCarbon>,
}

/// Assembles residues and chains from atoms in file order.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    chains: Vec<Chain>,
    chain_index: HashMap<String, usize>,
    pending: Option<Pending>,
    waters: usize,
    ligands: usize,
}

impl Builder {
    pub fn atom(&mut self, a: &AtomSite<'_>) {
        let same_residue = self.pending.as_ref().is_some_and(|p| {
            self.chains[p.chain].id == a.chain
                && p.number == a.seq_num
                && p.icode == a.icode
                && p.name == a.res_name
        });
        if !same_residue {
            self.finish_residue();
            let chain = self.chain_slot(a.chain);
            self.pending = Some(Pending {
                chain,
                name: CompactString::from(a.res_name),
                number: a.seq_num,
                icode: a.icode,
                hetero: a.hetero,
                polymer: a.polymer,
                has_n: false,
                has_c: false,
                ca: None,
            });
        }
        self.atom_of_pending(a.atom_name.as_bytes(), a.pos, a.b_factor);
    }

    /// Whether an atom of the pending residue named `atom_name` would keep its coordinates and
    /// B-factor (the residue's first CA); for any other atom they are not used.
    pub fn keeps_numbers_of(&self, atom_name: &[u8]) -> bool {
        atom_name == b"CA" && self.pending.as_ref().is_some_and(|p| p.ca.is_none())
    }

    /// One more atom of the pending residue (a reader that knows the atom belongs to it skips
    /// the residue's columns): only its name and, for the first CA, its numbers matter.
    pub fn atom_of_pending(&mut self, atom_name: &[u8], pos: [f32; 3], b_factor: f32) {
        let p = self
            .pending
            .as_mut()
            .expect("an atom of the pending residue comes after its first");
        match atom_name {
            b"N" => p.has_n = true,
            b"C" => p.has_c = true,
            // The first CA seen is the first conformer's (altlocs A, B… follow in file order).
            b"CA" if p.ca.is_none() => p.ca = Some(AlphaCarbon { pos, b_factor }),
            _ => {}
        }
    }

    /// Ends the residue in progress, e.g. at a PDB `TER` record.
    pub fn finish_residue(&mut self) {
        let Some(p) = self.pending.take() else {
            return;
        };
        if residue::is_water(&p.name) {
            self.waters += 1;
            return;
        }
        let polymer = match p.polymer {
            Polymer::Yes => true,
            Polymer::No => false,
            // HETATM residues inside a chain are polymer when they carry a backbone (MSE, CAS,
            // other modified amino acids); ions and ligands do not.
            Polymer::Unknown => !p.hetero || (p.has_n && p.ca.is_some() && p.has_c),
        };
        if !polymer {
            self.ligands += 1;
            return;
        }
        let chain = &mut self.chains[p.chain];
        // Microheterogeneity: a second residue at the same position right after the first
        // (1EJG PRO/SER 22). Keep the first, as gemmi's remove_alternative_conformations does.
        if chain
            .residues
            .last()
            .is_some_and(|last| last.number == p.number && last.insertion_code == p.icode)
        {
            return;
        }
        chain.residues.push(Residue {
            name: p.name,
            number: p.number,
            insertion_code: p.icode,
            ca: p.ca,
        });
    }

    fn chain_slot(&mut self, id: &str) -> usize {
        if let Some(&i) = self.chain_index.get(id) {
            return i;
        }
        self.chains.push(Chain {
            id: id.to_owned(),
            residues: Vec::new(),
        });
        self.chain_index
            .insert(id.to_owned(), self.chains.len() - 1);
        self.chains.len() - 1
    }

    /// Finishes the last residue and moves the chains into `structure`.
    pub fn finish(mut self, structure: &mut Structure) {
        self.finish_residue();
        structure.chains = self.chains;
        structure.waters = self.waters;
        structure.ligands = self.ligands;
    }
}

impl Structure {
    /// Total residues with an alpha carbon over all chains.
    pub fn residues_with_ca(&self) -> usize {
        self.chains
            .iter()
            .flat_map(|c| &c.residues)
            .filter(|r| r.ca.is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom<'a>(name: &'a str, res: &'a str, num: i32, hetero: bool) -> AtomSite<'a> {
        AtomSite {
            hetero,
            atom_name: name,
            res_name: res,
            chain: "A",
            seq_num: num,
            icode: None,
            pos: [num as f32, 0.0, 0.0],
            b_factor: 1.0,
            polymer: Polymer::Unknown,
        }
    }

    fn build(atoms: &[AtomSite<'_>]) -> Structure {
        let mut b = Builder::default();
        for a in atoms {
            b.atom(a);
        }
        let mut s = Structure::default();
        b.finish(&mut s);
        s
    }

    #[test]
    fn hetatm_with_a_backbone_is_polymer_and_an_ion_named_ca_is_not() {
        let s = build(&[
            atom("N", "MSE", 1, true),
            atom("CA", "MSE", 1, true),
            atom("C", "MSE", 1, true),
            atom("CA", "CA", 2, true),
            atom("O", "HOH", 3, true),
        ]);
        assert_eq!(s.chains[0].residues.len(), 1);
        assert_eq!(s.chains[0].residues[0].name, "MSE");
        assert_eq!((s.ligands, s.waters), (1, 1));
    }

    #[test]
    fn second_residue_at_the_same_position_is_dropped() {
        let mut ser = atom("CA", "SER", 22, false);
        ser.pos = [9.0, 9.0, 9.0];
        let s = build(&[
            atom("CA", "PRO", 22, false),
            ser,
            atom("CA", "GLY", 23, false),
        ]);
        let names: Vec<&str> = s.chains[0]
            .residues
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["PRO", "GLY"]);
        assert_eq!(
            s.chains[0].residues[0].ca.map(|c| c.pos),
            Some([22.0, 0.0, 0.0])
        );
    }

    #[test]
    fn first_conformer_of_ca_is_kept() {
        // altloc A then B: readers pass atoms in file order, and the first CA wins.
        let mut b = atom("CA", "ALA", 5, false);
        b.pos = [7.0, 7.0, 7.0];
        let s = build(&[atom("CA", "ALA", 5, false), b]);
        assert_eq!(
            s.chains[0].residues[0].ca.map(|c| c.pos),
            Some([5.0, 0.0, 0.0])
        );
    }

    #[test]
    fn chain_parts_with_the_same_id_are_merged_in_first_appearance_order() {
        let mut b1 = atom("CA", "GLY", 1, false);
        b1.chain = "B";
        let s = build(&[b1, atom("CA", "GLY", 1, false), {
            let mut b2 = atom("CA", "ALA", 2, false);
            b2.chain = "B";
            b2
        }]);
        let ids: Vec<(&str, usize)> = s
            .chains
            .iter()
            .map(|c| (c.id.as_str(), c.residues.len()))
            .collect();
        assert_eq!(ids, [("B", 2), ("A", 1)]);
    }
}
