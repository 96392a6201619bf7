//! A compact binary encoding of [`ProteinRecord`]s for the temporary spill files that let
//! `prepare` sort proteins by id without holding a whole dataset in memory. Private to one run:
//! no versioning, little-endian, lengths as u32.

use compact_str::CompactString;

use crate::protein::{ProteinRecord, ResidueColumns};
use crate::structure::Format;

/// Appends `p` to `buf`.
pub(crate) fn encode(p: &ProteinRecord, buf: &mut Vec<u8>) {
    let mut w = Writer(buf);
    w.str(&p.protein_id);
    w.str(&p.entry_id);
    w.str(&p.chain_id);
    w.str(&p.sequence);
    w.u32(p.num_residues_in_file);
    w.str(&p.source);
    w.str(&p.source_sha256);
    w.u8(match p.format {
        Format::Pdb => 0,
        Format::Mmcif => 1,
        Format::Atom3d => 2,
    });
    w.opt_f32(p.mean_plddt);
    w.opt_str(p.method.as_deref());
    w.opt_f32(p.resolution_angstrom);
    w.u32(p.ec_numbers.len() as u32);
    for ec in &p.ec_numbers {
        w.str(ec);
    }
    w.opt_str(p.title.as_deref());
    let r = &p.residues;
    w.u32(r.len() as u32);
    for i in 0..r.len() {
        w.str(&r.name[i]);
        w.str(&r.chain[i]);
        w.i32(r.number[i]);
        w.u32(r.insertion_code[i].map_or(0, u32::from));
        for v in r.pos[i] {
            w.f32(v);
        }
        w.f32(r.b_factor[i]);
    }
}

/// Reads back what [`encode`] wrote. Spill files are written and read by the same run, so a
/// short or malformed buffer is a bug (or a disk fault), reported as `None`.
pub(crate) fn decode(buf: &[u8]) -> Option<ProteinRecord> {
    let mut r = Reader(buf);
    let protein_id = r.str()?;
    let entry_id = r.str()?;
    let chain_id = r.str()?;
    let sequence = r.str()?;
    let num_residues_in_file = r.u32()?;
    let source = r.str()?;
    let source_sha256 = r.str()?;
    let format = match r.u8()? {
        0 => Format::Pdb,
        1 => Format::Mmcif,
        _ => Format::Atom3d,
    };
    let mean_plddt = r.opt_f32()?;
    let method = r.opt_str()?;
    let resolution_angstrom = r.opt_f32()?;
    let n_ec = r.u32()? as usize;
    let ec_numbers = (0..n_ec).map(|_| r.str()).collect::<Option<Vec<_>>>()?;
    let title = r.opt_str()?;
    let n = r.u32()? as usize;
    let mut residues = ResidueColumns::default();
    for _ in 0..n {
        residues.name.push(r.short()?);
        residues.chain.push(r.short()?);
        residues.number.push(r.i32()?);
        residues
            .insertion_code
            .push(char::from_u32(r.u32()?).filter(|c| *c != '\0'));
        residues.pos.push([r.f32()?, r.f32()?, r.f32()?]);
        residues.b_factor.push(r.f32()?);
    }
    Some(ProteinRecord {
        protein_id,
        entry_id,
        chain_id,
        sequence,
        num_residues_in_file,
        source,
        source_sha256,
        format,
        mean_plddt,
        method,
        resolution_angstrom,
        ec_numbers,
        title,
        residues,
    })
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
    fn opt_f32(&mut self, v: Option<f32>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.f32(v);
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_le_bytes)
    }
    fn f32(&mut self) -> Option<f32> {
        self.take().map(f32::from_le_bytes)
    }
    /// A length-prefixed run of bytes.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        if self.0.len() < n {
            return None;
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(s)
    }
    fn str(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    /// A string kept inline ([`CompactString`]): residue and chain names, no allocation.
    fn short(&mut self) -> Option<CompactString> {
        CompactString::from_utf8(self.bytes()?).ok()
    }
    fn opt_str(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            _ => self.str().map(Some),
        }
    }
    fn opt_f32(&mut self) -> Option<Option<f32>> {
        match self.u8()? {
            0 => Some(None),
            _ => self.f32().map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_the_round_trip() {
        let p = ProteinRecord {
            protein_id: "1ABC_A".into(),
            entry_id: "1ABC".into(),
            chain_id: "A".into(),
            sequence: "MG".into(),
            num_residues_in_file: 2,
            source: "d/1abc.cif".into(),
            source_sha256: "ab".into(),
            format: Format::Mmcif,
            mean_plddt: Some(71.5),
            method: None,
            resolution_angstrom: Some(1.5),
            ec_numbers: vec!["3.2.1.1".into()],
            title: Some("t".into()),
            residues: ResidueColumns {
                name: vec!["MSE".into(), "GLY".into()],
                chain: vec!["A".into(), "A".into()],
                number: vec![1, -2],
                insertion_code: vec![None, Some('B')],
                pos: vec![[1.0, 2.0, 3.0], [-1.5, 0.0, 9.25]],
                b_factor: vec![10.0, 20.0],
            },
        };
        let mut buf = Vec::new();
        encode(&p, &mut buf);
        assert_eq!(decode(&buf), Some(p));
        assert_eq!(decode(&buf[..buf.len() - 1]), None);
    }
}
