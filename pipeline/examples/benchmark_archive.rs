//! Writes a miniature benchmark archive in TorchDrug's EC or GO layout from PDB files:
//! `benchmark_archive ec|go OUT.zip [--copies N] FILE_OR_DIR…` (used by the demo and bench/import).

use std::path::PathBuf;

use fusionprot_pipeline::import::Benchmark;
use fusionprot_pipeline::import::fixture::fixture;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut copies = 1;
    if let Some(i) = args.iter().position(|a| a == "--copies") {
        copies = args.get(i + 1).ok_or("--copies N")?.parse()?;
        args.drain(i..i + 2);
    }
    let [kind, out, inputs @ ..] = args.as_slice() else {
        return Err("usage: benchmark_archive ec|go OUT.zip [--copies N] FILE_OR_DIR…".into());
    };
    let benchmark = match kind.as_str() {
        "ec" => Benchmark::Ec,
        "go" => Benchmark::Go,
        other => return Err(format!("unknown benchmark {other:?}").into()),
    };
    let mut files = Vec::new();
    for i in inputs {
        let p = PathBuf::from(i);
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p);
        }
    }
    let f = fixture(benchmark, &files)?.scaled(copies);
    f.write_zip(std::path::Path::new(out))?;
    println!("{out}: {} chain files", f.chains.len());
    Ok(())
}
