//! Parse-only throughput of the structure readers (no graph, no output): reads each file given on
//! the command line into memory, then parses all of them `--repeat N` times and prints MB/s of
//! decompressed text. Used by bench/prepare; not a test.

use std::time::Instant;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 5usize;
    if let Some(i) = args.iter().position(|a| a == "--repeat") {
        repeat = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(repeat);
        args.drain(i..=(i + 1).min(args.len() - 1));
    }
    let files: Vec<(String, Vec<u8>)> = args
        .iter()
        .map(|p| {
            (
                p.clone(),
                std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}")),
            )
        })
        .collect();
    let start = Instant::now();
    let mut residues = 0usize;
    for _ in 0..repeat {
        for (name, bytes) in &files {
            match fusionprot_pipeline::structure::read_bytes(bytes) {
                Ok((_, st)) => residues += st.residues_with_ca(),
                Err(e) => eprintln!("{name}: {e}"),
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum::<usize>() * repeat;
    println!(
        "{{\"files\": {}, \"bytes\": {bytes}, \"seconds\": {secs:.4}, \"residues\": {residues}}}",
        files.len() * repeat
    );
}
