//! No input makes a reader panic: real files mutated thousands of times (flipped bytes, cut files,
//! dropped and duplicated lines, garbage columns) must each give a structure or an error. A bounded,
//! seeded companion to the cargo-fuzz targets in pipeline/fuzz (scripts/fuzz).

mod common;

use fusionprot_pipeline::structure::{self, Format};

/// xorshift64*: a fixed, dependency-free generator so every run tries the same mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(text: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut t = text.to_vec();
    for _ in 0..1 + rng.below(4) {
        if t.is_empty() {
            break;
        }
        let at = rng.below(t.len());
        match rng.below(6) {
            0 => t[at] = rng.next() as u8,
            1 => t.truncate(at),
            2 => {
                let end = (at + rng.below(200)).min(t.len());
                t.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(300)).min(t.len());
                let copy = t[at..end].to_vec();
                t.splice(at..at, copy);
            }
            4 => {
                let junk: &[u8] = [
                    b"*****".as_slice(),
                    b"'",
                    b";",
                    b"\n;",
                    b"loop_\n",
                    b"\x00",
                    b"\xff\xfe",
                    b"-",
                    b"\x0c",
                    b"\t\x0b",
                ][rng.below(10)];
                t.splice(at..at, junk.iter().copied());
            }
            _ => t[at] = b' ',
        }
    }
    t
}

#[test]
fn mutated_real_files_never_panic_a_reader() {
    let dir = common::real_dir();
    let picks = [
        "1A8O.pdb",
        "1A8O.cif",
        "1pfe.cif.gz",
        "3PWP.pdb.gz",
        "1grm_single.pdb",
        "7ETN.cif.gz",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tried = 0;
    for name in picks {
        let raw = std::fs::read(dir.join(name)).expect("real file");
        let text = if name.ends_with(".gz") {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(raw.as_slice()), &mut out)
                .expect("gunzip");
            out
        } else {
            raw
        };
        let format = if name.contains(".cif") {
            Format::Mmcif
        } else {
            Format::Pdb
        };
        for _ in 0..400 {
            let m = mutate(&text, &mut rng);
            let _ = structure::parse_text(format, &m);
            let _ = structure::read_bytes(&m);
            tried += 1;
        }
    }
    assert_eq!(tried, 2400);
}
