//! Reader for the PDB format (wwPDB v3.3 fixed columns): the first model's atoms and the header
//! records we keep (HEADER, TITLE, EXPDTA, REMARK 2, COMPND, DBREF).

use std::collections::{BTreeMap, HashSet};

use super::error::{LineError, ParseError};
use super::model::{AtomSite, Builder, Polymer, Structure};

/// Parses PDB text (already decompressed). Lines may end in `\n` or `\r\n`.
///
/// # Errors
/// The first malformed ATOM/HETATM line, with its number and the offending columns; or no atoms.
pub fn parse(text: &[u8]) -> Result<Structure, ParseError> {
    let mut st = Structure::default();
    let mut builder = Builder::default();
    let mut header = Header::default();
    // Chains whose polymer part ended at a TER record (in this model).
    let mut terminated: Vec<Vec<u8>> = Vec::new();
    let mut atoms = 0usize;
    let mut last_atom_chain: Option<u8> = None;
    // SEQRES residue names per chain: a HETATM residue listed there belongs to the polymer even
    // without a full backbone (1GRM's C-terminal ethanolamine), as gemmi decides.
    let mut seqres: HashSet<[u8; 4]> = HashSet::new();
    // Columns 18-27 (residue name through insertion code) of the atom that made the builder's
    // pending residue: an atom line with the same bytes there belongs to it, and only its atom
    // name and numbers are read. `None` after a TER, which ends the residue.
    let mut pending: Option<[u8; 10]> = None;
    let mut start = 0usize;
    let ends = memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len()));
    for (n, end) in ends.enumerate() {
        let raw = &text[start..end];
        start = end + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let at = |cause| ParseError::At { line: n + 1, cause };
        let record = line.get(..6).unwrap_or(line);
        match record {
            b"ATOM  " | b"HETATM" => {
                let hetero = record == b"HETATM";
                if let Some(key) = &pending
                    && line.len() >= 54
                    && line[17..27] == key[..]
                    && line[12..16].is_ascii()
                {
                    // Same residue: columns 18-27 were checked on its first atom. Only the
                    // residue's first CA keeps its numbers; the others' are checked by shape,
                    // and read in full (for the error, or an unusual but valid number) only when
                    // the shape is not the usual one.
                    let name = trim_str(&line[12..16]);
                    if builder.keeps_numbers_of(name) || !numbers_have_usual_shape(line) {
                        let (pos, b_factor) = numbers(line).map_err(at)?;
                        builder.atom_of_pending(name, pos, b_factor);
                    } else {
                        builder.atom_of_pending(name, [0.0; 3], 0.0);
                    }
                    atoms += 1;
                    continue;
                }
                let a = parse_atom(line, hetero).map_err(at)?;
                let chain_id = line[21];
                let polymer = if terminated
                    .iter()
                    .any(|c| c.as_slice() == a.chain.as_bytes())
                {
                    Polymer::No
                } else if hetero && seqres.contains(&seqres_key(chain_id, a.res_name.as_bytes())) {
                    Polymer::Yes
                } else {
                    Polymer::Unknown
                };
                builder.atom(&AtomSite { polymer, ..a });
                pending = line[17..27].try_into().ok();
                last_atom_chain = Some(chain_id);
                atoms += 1;
            }
            b"TER   " | b"TER" => {
                builder.finish_residue();
                pending = None;
                // TER names its chain in column 22; older files leave it blank, then the last
                // atom's chain ends.
                let chain = line.get(21).copied().filter(|c| *c != b' ');
                if let Some(c) = chain.or(last_atom_chain) {
                    let id = if c == b' ' { Vec::new() } else { vec![c] };
                    terminated.push(id);
                }
            }
            b"ENDMDL" if atoms > 0 => break,
            b"HEADER" => header.id = field(line, 62, 66).map(str::to_owned),
            b"TITLE " => header.title.push_str(&continuation(line)),
            b"EXPDTA" => header.method.push_str(&continuation(line)),
            b"COMPND" => header.compnd.push_str(&continuation(line)),
            b"REMARK" if line.get(6..10) == Some(b"   2") => {
                if let Some(r) = resolution(line) {
                    header.resolution = Some(r);
                }
            }
            b"SEQRES" => {
                let chain_id = line.get(11).copied().unwrap_or(b' ');
                let names = line
                    .get(19..line.len().min(70))
                    .unwrap_or_default()
                    .split(|b| *b == b' ')
                    .filter(|n| !n.is_empty())
                    .map(|n| seqres_key(chain_id, n));
                seqres.extend(names);
            }
            b"DBREF " if field(line, 26, 32) == Some("UNP") => {
                header.uniprot = header.uniprot.or(field(line, 33, 41).map(str::to_owned));
            }
            _ => {}
        }
    }
    if atoms == 0 {
        return Err(ParseError::NoAtoms);
    }
    builder.finish(&mut st);
    st.entry_id = header.id;
    st.title = non_empty(header.title);
    st.method = non_empty(header.method);
    st.resolution_angstrom = header.resolution;
    st.ec_by_chain = compnd_ec_by_chain(&header.compnd);
    st.is_alphafold = st
        .title
        .as_deref()
        .is_some_and(|t| t.to_ascii_uppercase().starts_with("ALPHAFOLD"));
    if st.is_alphafold {
        st.alphafold_accession = header.uniprot;
    }
    Ok(st)
}

#[derive(Debug, Default)]
struct Header {
    id: Option<String>,
    title: String,
    method: String,
    compnd: String,
    resolution: Option<f32>,
    uniprot: Option<String>,
}

/// Reads one ATOM/HETATM line. Columns are 1-based in the format's documentation and 0-based here.
fn parse_atom(line: &[u8], hetero: bool) -> Result<AtomSite<'_>, LineError> {
    let record = if hetero { "HETATM" } else { "ATOM" };
    if line.len() < 54 {
        return Err(LineError::ShortAtom {
            record,
            len: line.len(),
        });
    }
    let text = |from: usize, to: usize, what: &'static str| -> Result<&str, LineError> {
        let bytes = &line[from..to.min(line.len())];
        std::str::from_utf8(bytes)
            .ok()
            .filter(|s| s.is_ascii())
            .ok_or(LineError::NonAscii { what })
    };
    let atom_name = text(12, 16, "atom name")?.trim();
    let res_name = text(17, 20, "residue name")?.trim();
    let chain = text(21, 22, "chain id")?.trim();
    let seq_text = text(22, 26, "residue number")?;
    let seq_num = parse_seq_num(seq_text).ok_or_else(|| LineError::BadColumn {
        field: "residue number",
        columns: "23-26",
        text: seq_text.to_owned(),
    })?;
    let icode = match line[26] {
        b' ' => None,
        c if c.is_ascii_graphic() => Some(char::from(c)),
        _ => {
            return Err(LineError::NonAscii {
                what: "insertion code",
            });
        }
    };
    let (pos, b_factor) = numbers(line)?;
    Ok(AtomSite {
        hetero,
        atom_name,
        res_name,
        chain,
        seq_num,
        icode,
        pos,
        b_factor,
        polymer: Polymer::Unknown,
    })
}

/// An atom line's coordinates (columns 31-54) and B-factor (61-66) of a line of at least 54
/// columns: the fixed `%8.3f` / `%6.2f` shape first, then any decimal, then the general parser.
fn numbers(line: &[u8]) -> Result<([f32; 3], f32), LineError> {
    let number =
        |from: usize, to: usize, frac: usize, field: &'static str, columns: &'static str| {
            let bytes = &line[from..to.min(line.len())];
            if let Some(v) =
                super::number::fixed(bytes, frac).or_else(|| super::number::decimal(bytes))
            {
                return Ok(v);
            }
            let s = std::str::from_utf8(bytes)
                .ok()
                .filter(|s| s.is_ascii())
                .ok_or(LineError::NonAscii { what: field })?
                .trim();
            s.parse::<f64>().map_err(|_| LineError::BadColumn {
                field,
                columns,
                text: s.to_owned(),
            })
        };
    let x = number(30, 38, 3, "x", "31-38")?;
    let y = number(38, 46, 3, "y", "39-46")?;
    let z = number(46, 54, 3, "z", "47-54")?;
    let b_factor = match b_factor_columns(line) {
        Some(_) => number(60, 66, 2, "B-factor", "61-66")?,
        None => 0.0,
    };
    Ok(([x as f32, y as f32, z as f32], b_factor as f32))
}

/// Columns 61-66 when they hold anything: the B-factor is optional in old and MD files, and
/// absent means unknown, stored as 0.
fn b_factor_columns(line: &[u8]) -> Option<&[u8]> {
    let field = line.get(60..line.len().min(66))?;
    (!field.trim_ascii().is_empty()).then_some(field)
}

/// Whether [`numbers`] reads `line` through the fixed-shape path (so it would succeed): the
/// coordinates as `%8.3f` and the B-factor, when present, as `%6.2f`.
fn numbers_have_usual_shape(line: &[u8]) -> bool {
    use super::number::fixed_shape;
    fixed_shape(&line[30..38], 3)
        && fixed_shape(&line[38..46], 3)
        && fixed_shape(&line[46..54], 3)
        && b_factor_columns(line).is_none_or(|b| fixed_shape(b, 2))
}

/// `str::trim` on ASCII bytes: the whitespace `char::is_whitespace` knows below 0x80.
fn trim_str(b: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    &b[start..end]
}

/// Chain id and residue name (at most 3 characters in this format) as one set key, so that the
/// SEQRES lookup for each HETATM atom is a hash probe rather than a scan of the sequence.
fn seqres_key(chain: u8, name: &[u8]) -> [u8; 4] {
    let mut key = [chain, b' ', b' ', b' '];
    for (k, &c) in key[1..].iter_mut().zip(name) {
        *k = c;
    }
    key
}

/// Residue number: decimal, or hybrid-36 (`A000` = 10000) as written by large MD systems.
fn parse_seq_num(s: &str) -> Option<i32> {
    let t = s.trim();
    if let Ok(v) = t.parse::<i32>() {
        return Some(v);
    }
    let b = s.as_bytes();
    if b.len() != 4 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let (offset, base_char) = if b[0].is_ascii_uppercase() {
        (10_000, b'A')
    } else if b[0].is_ascii_lowercase() {
        (10_000 + 26 * 36i32.pow(3), b'a')
    } else {
        return None;
    };
    let digit = |c: u8| -> Option<i32> {
        match c {
            b'0'..=b'9' => Some(i32::from(c - b'0')),
            c if c.is_ascii_uppercase() && base_char == b'A' => Some(i32::from(c - b'A') + 10),
            c if c.is_ascii_lowercase() && base_char == b'a' => Some(i32::from(c - b'a') + 10),
            _ => None,
        }
    };
    let mut v = 0i32;
    for &c in b {
        v = v * 36 + digit(c)?;
    }
    // Hybrid-36 with a letter first: the first value (A000) stands for 10000.
    Some(v - 10 * 36i32.pow(3) + offset)
}

/// Columns `from..to` (0-based, end exclusive), trimmed; `None` if blank or absent.
fn field(line: &[u8], from: usize, to: usize) -> Option<&str> {
    let bytes = line.get(from..to.min(line.len()))?;
    let s = std::str::from_utf8(bytes).ok()?.trim();
    (!s.is_empty()).then_some(s)
}

/// The text of a continued header record (columns 11-80), with one space joining continuations.
fn continuation(line: &[u8]) -> String {
    let body = line.get(10..line.len().min(80)).unwrap_or_default();
    let s = String::from_utf8_lossy(body);
    format!(" {}", s.trim())
}

fn non_empty(s: String) -> Option<String> {
    let t = s.split_whitespace().collect::<Vec<_>>().join(" ");
    (!t.is_empty()).then_some(t)
}

/// `REMARK   2 RESOLUTION.    2.00 ANGSTROMS.`
fn resolution(line: &[u8]) -> Option<f32> {
    let s = std::str::from_utf8(line).ok()?;
    let rest = s.split_once("RESOLUTION.")?.1;
    rest.split_whitespace().next()?.parse().ok()
}

/// EC numbers per chain from the COMPND specification list: `MOL_ID: 1; …; CHAIN: A, B; EC: 3.2.1.1;`.
fn compnd_ec_by_chain(compnd: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut chains: Vec<String> = Vec::new();
    let mut ecs: Vec<String> = Vec::new();
    let mut flush = |chains: &mut Vec<String>, ecs: &mut Vec<String>| {
        if !ecs.is_empty() {
            for c in chains.iter() {
                out.insert(c.clone(), ecs.clone());
            }
        }
        chains.clear();
        ecs.clear();
    };
    for spec in compnd.split(';') {
        let Some((key, value)) = spec.split_once(':') else {
            continue;
        };
        match key.trim() {
            "MOL_ID" => flush(&mut chains, &mut ecs),
            "CHAIN" => chains = value.split(',').map(|c| c.trim().to_owned()).collect(),
            "EC" => {
                for ec in value.split(',').map(str::trim).filter(|e| is_ec(e)) {
                    if !ecs.iter().any(|e| e == ec) {
                        ecs.push(ec.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    flush(&mut chains, &mut ecs);
    out
}

/// `3.2.1.1`, `3.4.17.-`, `1.1.1.n1`: four dot-separated parts, the first numeric.
pub(crate) fn is_ec(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts[0].chars().all(|c| c.is_ascii_digit())
        && !parts[0].is_empty()
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_RESIDUES: &str = "\
HEADER    HYDROLASE                               01-JAN-00   1ABC              
COMPND    MOL_ID: 1;                                                            
COMPND   2 MOLECULE: LYSOZYME;                                                  
COMPND   3 CHAIN: A, B;                                                         
COMPND   4 EC: 3.2.1.17;                                                        
EXPDTA    X-RAY DIFFRACTION                                                     
REMARK   2 RESOLUTION.    1.80 ANGSTROMS.                                       
ATOM      1  N   LYS A   1       3.294  10.164  10.266  1.00 11.18           N  
ATOM      2  CA  LYS A   1       2.388  10.533   9.168  1.00  9.68           C  
ATOM      3  C   LYS A   1       2.438  12.049   8.889  1.00 14.00           C  
ATOM      4  CA  VAL A   2A      1.000   2.000   3.000  1.00 20.00           C  
TER       5      VAL A   2A                                                     
HETATM    6 CA    CA A 101      -1.000  -2.000  -3.000  1.00 30.00          CA  
HETATM    7  O   HOH A 201       0.000   0.000   0.000  1.00 30.00           O  
END
";

    #[test]
    fn reads_residues_header_and_stops_polymer_at_ter() {
        let st = parse(TWO_RESIDUES.as_bytes()).expect("valid PDB");
        assert_eq!(st.entry_id.as_deref(), Some("1ABC"));
        assert_eq!(st.method.as_deref(), Some("X-RAY DIFFRACTION"));
        assert_eq!(st.resolution_angstrom, Some(1.8));
        assert_eq!(st.ec_by_chain["A"], ["3.2.1.17"]);
        assert_eq!(st.ec_by_chain["B"], ["3.2.1.17"]);
        let chain = &st.chains[0];
        assert_eq!(chain.residues.len(), 2);
        assert_eq!(chain.residues[1].insertion_code, Some('A'));
        let ca = chain.residues[0].ca.expect("LYS has CA");
        assert_eq!(ca.pos, [2.388, 10.533, 9.168]);
        assert_eq!(ca.b_factor, 9.68);
        assert_eq!((st.ligands, st.waters), (1, 1));
    }

    #[test]
    fn rejects_atom_record_shorter_than_54_columns_naming_the_line() {
        let text = "ATOM      1  CA  LYS A   1       2.388  10.533\n";
        let err = parse(text.as_bytes()).expect_err("short line");
        assert_eq!(
            err.to_string(),
            "line 1: ATOM record has 46 columns, needs at least 54 (through z)"
        );
    }

    #[test]
    fn rejects_overflowed_coordinates_naming_line_and_columns() {
        let text = "REMARK\nATOM      2  CA  LYS A   1    ********  10.533   9.168  1.00  9.68           C\n";
        let err = parse(text.as_bytes()).expect_err("overflow");
        let msg = err.to_string();
        assert!(msg.starts_with("line 2: x (columns 31-38)"), "{msg}");
    }

    /// Atoms after a residue's first are read by the short path (residue columns not re-read,
    /// numbers only checked unless kept): a bad number there is still the same error, and an
    /// unusual but valid one still reads.
    #[test]
    fn later_atoms_of_a_residue_are_checked_like_the_first() {
        let bad = TWO_RESIDUES.replace("   2.438  12.049", "   2.4x8  12.049");
        let err = parse(bad.as_bytes()).expect_err("bad x on the third atom");
        assert_eq!(
            err.to_string(),
            "line 10: x (columns 31-38) is not a number: \"2.4x8\""
        );
        let bad_b = TWO_RESIDUES.replace("  1.00 14.00", "  1.00 14.0?");
        let err = parse(bad_b.as_bytes()).expect_err("bad B-factor");
        assert!(
            err.to_string()
                .starts_with("line 10: B-factor (columns 61-66)"),
            "{err}"
        );
        // Exponents and long decimals are not the usual shape but are numbers.
        let odd = TWO_RESIDUES.replace("   2.438  12.049", " 2438e-3 12.0490");
        let st = parse(odd.as_bytes()).expect("valid numbers");
        assert_eq!(st.chains[0].residues.len(), 2);
    }

    #[test]
    fn only_the_first_model_is_read() {
        let text = "MODEL        1\n\
ATOM      2  CA  LYS A   1       1.000   1.000   1.000  1.00  9.68           C\n\
ENDMDL\nMODEL        2\n\
ATOM      2  CA  LYS A   1       9.000   9.000   9.000  1.00  9.68           C\n\
ATOM      3  CA  GLY A   2       9.000   9.000   9.000  1.00  9.68           C\n\
ENDMDL\n";
        let st = parse(text.as_bytes()).expect("two models");
        assert_eq!(st.chains[0].residues.len(), 1);
    }

    #[test]
    fn hybrid_36_residue_numbers() {
        assert_eq!(parse_seq_num("   1"), Some(1));
        assert_eq!(parse_seq_num("-999"), Some(-999));
        assert_eq!(parse_seq_num("A000"), Some(10_000));
        assert_eq!(parse_seq_num("A001"), Some(10_001));
        assert_eq!(parse_seq_num("12x4"), None);
    }

    #[test]
    fn ec_numbers_follow_their_mol_id() {
        let m = compnd_ec_by_chain(
            " MOL_ID: 1; MOLECULE: X; CHAIN: A; EC: 3.4.17.23, 3.4.17.-; MOL_ID: 2; CHAIN: C;",
        );
        assert_eq!(m.get("A").map(Vec::len), Some(2));
        assert!(!m.contains_key("C"));
    }
}
