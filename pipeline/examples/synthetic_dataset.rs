//! Writes a sequences-only dataset of synthetic protein families (and the same sequences as
//! FASTA) for bench/split: `synthetic_dataset N OUT_DIR [SEED]` makes about N proteins in
//! families of 3, with chains, distant relatives and, in every 10th family, a member that shares
//! one domain (70% of its length, 60% identical) with the ancestor (pipeline::split::synthetic).

use fusionprot_pipeline::split::synthetic::{FamilySpec, synthetic_families};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(n), Some(out)) = (
        args.first().and_then(|n| n.parse::<usize>().ok()),
        args.get(1),
    ) else {
        eprintln!("usage: synthetic_dataset N OUT_DIR [SEED]");
        std::process::exit(2);
    };
    let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let spec = FamilySpec {
        families: (n * 10).div_ceil(31),
        members: 3,
        length: (80, 400),
        member_identity: 0.85,
        chain_every: 7,
        chain_identity: 0.5,
        relative_every: 5,
        relative_identity: 0.3,
        partial_every: 10,
        partial_window: 0.7,
        partial_share: 0.7,
        partial_identity: 0.6,
    };
    let set = synthetic_families(&spec, seed);
    let out = std::path::Path::new(out);
    std::fs::create_dir_all(out).expect("create OUT_DIR");
    let records: Vec<(String, String)> = set
        .iter()
        .map(|s| (s.id.clone(), s.sequence.clone()))
        .collect();
    fusionprot_pipeline::split::sequences_dataset(out, &records).expect("write dataset");
    let fasta: String = records
        .iter()
        .map(|(id, s)| format!(">{id}\n{s}\n"))
        .collect();
    std::fs::write(out.join("sequences.fasta"), fasta).expect("write FASTA");
    let groups = set.iter().map(|s| s.group).max().map_or(0, |g| g + 1);
    println!("{{\"proteins\": {}, \"groups\": {groups}}}", set.len());
}
