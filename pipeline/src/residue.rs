//! Residue vocabularies: TorchDrug's residue types and 21-d one-hot (spec §1.2, §2.3), and the
//! one-letter code of each amino-acid residue name, modified ones mapped to their parent.

/// TorchDrug's 20 residue types, in id order (`data/protein.py::residue_symbol2id`): the
/// `residue_type` column and the ESM token mapping use these ids.
pub const TORCHDRUG_RESIDUES: [&str; 20] = [
    "GLY", "ALA", "SER", "PRO", "VAL", "THR", "CYS", "ILE", "LEU", "ASN", "ASP", "GLN", "LYS",
    "GLU", "MET", "HIS", "PHE", "ARG", "TYR", "TRP",
];

/// One-letter codes of [`TORCHDRUG_RESIDUES`], same order.
pub const TORCHDRUG_LETTERS: [u8; 20] = *b"GASPVTCILNDQKEMHFRYW";

/// Index of the "unknown" bit of the 21-d residue one-hot.
pub const ONEHOT_UNKNOWN: u8 = 20;

/// TorchDrug residue type of a residue name. Non-standard names are typed GLY (0), as TorchDrug
/// does when it builds a protein (spec §2.3); see [`onehot_index`] for the feature.
pub fn residue_type(name: &str) -> u8 {
    standard_index(name).unwrap_or(0)
}

/// Index of the hot bit in the 21-d residue feature: the TorchDrug id of a standard name, else
/// [`ONEHOT_UNKNOWN`]. For MSE this gives "unknown" while [`residue_type`] gives GLY: the
/// reference's quirk, kept for parity with its checkpoints.
pub fn onehot_index(name: &str) -> u8 {
    standard_index(name).unwrap_or(ONEHOT_UNKNOWN)
}

fn standard_index(name: &str) -> Option<u8> {
    TORCHDRUG_RESIDUES
        .iter()
        .position(|r| *r == name)
        .map(|i| i as u8)
}

/// One-letter code in the "parent" convention: standard residues their letter, modified amino
/// acids their parent's (MSE → M, SEP → S), anything else `X`.
pub fn one_letter(name: &str) -> u8 {
    amino_acid(name).unwrap_or(b'X')
}

/// Whether `name` is an amino acid (standard, modified or unknown) in the table below.
pub fn is_amino_acid(name: &str) -> bool {
    amino_acid(name).is_some()
}

fn amino_acid(name: &str) -> Option<u8> {
    AMINO_ACIDS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| AMINO_ACIDS[i].1)
}

/// Water residue names; waters are never part of a protein.
pub fn is_water(name: &str) -> bool {
    matches!(
        name,
        "HOH" | "WAT" | "H2O" | "DOD" | "D2O" | "TIP" | "TIP3" | "SOL"
    )
}

/// Amino-acid residue names and their parent one-letter codes, sorted by name. The set and the
/// codes are those gemmi 0.7.5 tabulates as amino acids (L and D forms), so that our sequences
/// agree with gemmi's "parent" convention; names without a code there are `X` here.
const AMINO_ACIDS: [(&str, u8); 129] = [
    ("0AF", b'W'),
    ("0TD", b'D'),
    ("3FG", b'X'),
    ("ABA", b'A'),
    ("AGM", b'R'),
    ("AIB", b'A'),
    ("ALA", b'A'),
    ("ALC", b'A'),
    ("ALY", b'K'),
    ("ARG", b'R'),
    ("ASN", b'N'),
    ("ASP", b'D'),
    ("ASX", b'B'),
    ("B3E", b'E'),
    ("BFD", b'D'),
    ("BMT", b'T'),
    ("CAF", b'C'),
    ("CAS", b'C'),
    ("CGU", b'E'),
    ("CIR", b'R'),
    ("CME", b'C'),
    ("CR2", b'G'),
    ("CR8", b'H'),
    ("CRF", b'T'),
    ("CRO", b'T'),
    ("CRQ", b'Q'),
    ("CSD", b'C'),
    ("CSH", b'S'),
    ("CSO", b'C'),
    ("CSS", b'C'),
    ("CSX", b'C'),
    ("CXM", b'M'),
    ("CYS", b'C'),
    ("DAB", b'A'),
    ("DAL", b'A'),
    ("DAR", b'R'),
    ("DAS", b'D'),
    ("DCY", b'C'),
    ("DGL", b'E'),
    ("DGN", b'Q'),
    ("DHA", b'S'),
    ("DHI", b'H'),
    ("DIL", b'I'),
    ("DLE", b'L'),
    ("DLY", b'K'),
    ("DPN", b'F'),
    ("DPR", b'P'),
    ("DSG", b'N'),
    ("DSN", b'S'),
    ("DTH", b'T'),
    ("DTR", b'W'),
    ("DTY", b'Y'),
    ("DVA", b'V'),
    ("FGA", b'E'),
    ("FME", b'M'),
    ("FVA", b'V'),
    ("GHP", b'G'),
    ("GL3", b'G'),
    ("GLN", b'Q'),
    ("GLU", b'E'),
    ("GLX", b'Z'),
    ("GLY", b'G'),
    ("GYS", b'S'),
    ("HIC", b'H'),
    ("HIS", b'H'),
    ("HYP", b'P'),
    ("IAS", b'D'),
    ("ILE", b'I'),
    ("KCX", b'K'),
    ("KPI", b'K'),
    ("LEU", b'L'),
    ("LLP", b'K'),
    ("LYS", b'K'),
    ("M3L", b'K'),
    ("MAA", b'A'),
    ("MDO", b'A'),
    ("MEA", b'F'),
    ("MED", b'M'),
    ("MEN", b'N'),
    ("MEQ", b'Q'),
    ("MET", b'M'),
    ("MHO", b'M'),
    ("MHS", b'H'),
    ("MK8", b'L'),
    ("MLE", b'L'),
    ("MLU", b'X'),
    ("MLY", b'K'),
    ("MLZ", b'K'),
    ("MSE", b'M'),
    ("MVA", b'V'),
    ("NEP", b'H'),
    ("NLE", b'L'),
    ("NRQ", b'M'),
    ("OAS", b'S'),
    ("OCS", b'C'),
    ("OMY", b'Y'),
    ("OMZ", b'X'),
    ("ORN", b'A'),
    ("PCA", b'E'),
    ("PHD", b'D'),
    ("PHE", b'F'),
    ("PHI", b'F'),
    ("PHL", b'F'),
    ("PRO", b'P'),
    ("PTR", b'Y'),
    ("PYL", b'O'),
    ("SAC", b'S'),
    ("SAR", b'G'),
    ("SCH", b'C'),
    ("SCY", b'C'),
    ("SEC", b'U'),
    ("SEP", b'S'),
    ("SER", b'S'),
    ("SMC", b'C'),
    ("SME", b'M'),
    ("SNC", b'C'),
    ("SNN", b'N'),
    ("THR", b'T'),
    ("TOX", b'W'),
    ("TPO", b'T'),
    ("TPQ", b'Y'),
    ("TRP", b'W'),
    ("TRQ", b'W'),
    ("TRY", b'W'),
    ("TYR", b'Y'),
    ("TYS", b'Y'),
    ("UNK", b'X'),
    ("VAL", b'V'),
    ("YCM", b'C'),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amino_acid_table_is_sorted_for_binary_search() {
        assert!(AMINO_ACIDS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn standard_residues_get_torchdrug_ids_and_their_letters() {
        for (i, name) in TORCHDRUG_RESIDUES.iter().enumerate() {
            assert_eq!(usize::from(residue_type(name)), i);
            assert_eq!(usize::from(onehot_index(name)), i);
            assert_eq!(one_letter(name), TORCHDRUG_LETTERS[i], "{name}");
        }
    }

    #[test]
    fn selenomethionine_is_typed_glycine_with_the_unknown_bit_and_reads_as_m() {
        assert_eq!(residue_type("MSE"), 0);
        assert_eq!(onehot_index("MSE"), ONEHOT_UNKNOWN);
        assert_eq!(one_letter("MSE"), b'M');
    }

    #[test]
    fn unknown_names_read_as_x_and_are_not_amino_acids() {
        assert_eq!(one_letter("N2C"), b'X');
        assert!(!is_amino_acid("HOH"));
        assert!(!is_amino_acid("CA"));
        assert!(is_amino_acid("UNK"));
        assert_eq!(one_letter("UNK"), b'X');
        assert_eq!(one_letter("SEP"), b'S');
    }
}
